//! folio: a vLLM-style vision-language document parser (PaddleOCR-VL architecture) on candle.
//!
//! See `../shared/DESIGN.md` for the layout of the crate and the engine's contracts.

pub mod assets;
pub mod classic;
pub mod engine;
pub mod layout;
pub mod models;
pub mod onnx;
pub mod pipeline;
pub mod searchable;
pub mod server;
pub mod synth;
pub mod train;
