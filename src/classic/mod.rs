//! The classic OCR pipelines folio is compared against (`folio compare`, issue 21).
//!
//! PP-OCR, the classic PaddleOCR pipeline, runs in-process on the same ONNX Runtime as the layout
//! detector: text detection by DB ([`db`]: probability map → boxes), then CTC recognition of each
//! box ([`ctc`]: per-step classes → text, with the dictionary from the ONNX file's metadata).
//! So far the detector ([`detector`]) and the recogniser's decoding exist; the recogniser's run,
//! the angle classifier and tesseract's driver come next.

pub mod ctc;
pub mod db;
pub mod detector;
