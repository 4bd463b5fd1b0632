//! Documents: sources → pages → regions → engine → assembly → writers.
//!
//! Today: documents and their pages ([`source`]; PDFs rendered by PDFium, [`pdf`];
//! multi-page TIFFs, [`tiff`]), a
//! projection-profile line finder for single-column pages ([`lines`]), reading such a page line by
//! line through the engine ([`page`]) in pieces cut at word gaps ([`pieces`]), putting each line's
//! text together from its pieces ([`text`]), with lone CJK misreadings on Latin pages read again
//! ([`script`]), bulk runs over many documents ([`bulk`]) into Markdown and JSON ([`writer`]), and
//! the accuracy arithmetic used to measure it ([`metrics`]).

pub mod bulk;
pub mod lines;
pub mod metrics;
pub mod page;
pub mod pdf;
pub mod pieces;
pub mod rules;
pub mod script;
pub mod source;
pub mod text;
pub mod tiff;
pub mod writer;
