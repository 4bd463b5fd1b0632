//! Searchable PDF (`folio parse --format pdf`): the pages as they were, with the recognised text
//! drawn invisibly over each line, as OCRmyPDF makes them.
//!
//! - A PDF input keeps its original bytes; an incremental update adds each page's text layer
//!   ([`append`]). Pages that already carry text (born-digital pages, or a PDF made searchable
//!   before) keep theirs and get no second layer. A PDF that cannot be updated in place
//!   (encrypted, damaged cross-references) is written as page images with the layer instead, and
//!   the log says why.
//! - An image input becomes a PDF of its pages, a JPEG stored as it is ([`images`]).
//!
//! The layer's font ([`font`]) maps every character back to Unicode, so Chinese selects and
//! copies as well as Latin. Pages are written as they are read ([`objects`] keeps only offsets):
//! a 2,000-page document never sits in memory.

pub mod append;
pub mod font;
pub mod images;
pub mod layer;
pub mod objects;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::pipeline::page::ParsedPage;
use crate::pipeline::pdf_source::PdfPages;
use append::AppendedPdf;
use images::{jpeg_info, ImagePdf, PageImage};
pub use layer::{page_lines, PlacedLine};

/// Resolution an image input is taken to have: its pixels become a page of that size (images
/// rarely state their real resolution, and scans are mostly made at 300 dpi).
pub const IMAGE_DPI: f32 = 300.0;

/// A document's searchable PDF, written page by page.
pub struct SearchablePdf {
    target: Target,
    source: PathBuf,
    /// Pages added so far.
    pages: usize,
    /// Pages whose original text was kept instead of adding a layer.
    kept_text: usize,
    /// Whether the source is a JPEG file, which a one-page PDF stores as it is.
    jpeg_source: bool,
}

enum Target {
    /// The original PDF updated in place; `pdf` tells which pages already hold text.
    Appended {
        out: AppendedPdf,
        pdf: Box<PdfPages>,
    },
    Images(ImagePdf),
}

impl SearchablePdf {
    /// Starts the searchable PDF of `source` (a `pages`-page document read at `dpi`) in `out`.
    pub fn create(source: &Path, pages: usize, dpi: f32, out: &Path) -> Result<Self> {
        let target = if starts_with(source, b"%PDF") {
            let appended =
                PdfPages::open(source, dpi, None).and_then(|pdf| Ok((AppendedPdf::create(source, out, pages)?, pdf)));
            match appended {
                Ok((out, pdf)) => Target::Appended { out, pdf: Box::new(pdf) },
                Err(e) => {
                    tracing::warn!(
                        source = %source.display(),
                        "the PDF cannot be made searchable in place ({e:#}); its pages are written as images \
                         with the text layer"
                    );
                    Target::Images(ImagePdf::create(out, dpi)?)
                }
            }
        } else {
            Target::Images(ImagePdf::create(out, IMAGE_DPI)?)
        };
        let jpeg_source = starts_with(source, &[0xFF, 0xD8, 0xFF]);
        Ok(SearchablePdf { target, source: source.to_path_buf(), pages: 0, kept_text: 0, jpeg_source })
    }

    /// Adds the next page: its text layer, and for a new PDF its image (`page.image`, or the
    /// source JPEG itself).
    pub fn add_page(&mut self, page: &ParsedPage) -> Result<()> {
        let index = self.pages;
        self.pages += 1;
        let lines = page_lines(page);
        match &mut self.target {
            Target::Appended { out, pdf } => {
                if pdf.has_text(index).unwrap_or(false) {
                    self.kept_text += 1;
                    return out.add_page((page.width, page.height), &[]);
                }
                out.add_page((page.width, page.height), &lines)
            }
            Target::Images(out) => {
                let jpeg = (index == 0 && self.jpeg_source).then(|| std::fs::read(&self.source).ok()).flatten();
                let info = jpeg.as_deref().and_then(jpeg_info);
                match (jpeg.as_deref(), info) {
                    (Some(bytes), Some((width, height, components)))
                        if (width, height) == (page.width, page.height) =>
                    {
                        out.add_page(PageImage::Jpeg { bytes, width, height, components }, &lines)
                    }
                    _ => {
                        let image = page.image.as_ref().context("the page's image was not kept")?;
                        out.add_page(PageImage::Pixels(image), &lines)
                    }
                }
            }
        }
    }

    /// Ends the file.
    pub fn finish(self) -> Result<()> {
        if self.kept_text > 0 {
            tracing::info!(
                source = %self.source.display(),
                pages = self.kept_text,
                "pages that already hold text keep it; no second text layer was added to them"
            );
        }
        match self.target {
            Target::Appended { out, .. } => out.finish(),
            Target::Images(out) => out.finish(),
        }
    }
}

/// Whether the file at `path` begins with `signature`.
fn starts_with(path: &Path, signature: &[u8]) -> bool {
    use std::io::Read;
    let mut head = vec![0u8; signature.len()];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head));
    read.is_ok() && head == signature
}
