//! Documents: sources → pages → layout → regions → engine → assembly → writers.
//!
//! Documents and their pages ([`source`]: PDFs rendered by PDFium, [`pdf_source`]; multi-page
//! TIFFs, [`tiff`]; images), pages laid out and their regions read by the model ([`page`]) through
//! the block reader ([`reader`]: line pieces cut at word gaps, [`pieces`]; line texts put
//! together, [`text`]; lone CJK misreadings on Latin pages read again, [`script`]), tables as
//! grids ([`table`]), bulk runs over many documents ([`bulk`]) into Markdown, JSON and searchable
//! PDF ([`writer`]), and the accuracy arithmetic used to measure it ([`metrics`]).

pub mod bulk;
pub mod metrics;
pub mod page;
pub mod pdf_source;
pub mod pieces;
pub mod reader;
pub mod script;
pub mod source;
pub mod table;
pub mod text;
pub mod tiff;
pub mod writer;
