//! PDF pages as images, rendered by PDFium (the renderer of Chrome; `pdfium-render` bindings).
//!
//! libpdfium is loaded at run time, once per process: from `FOLIO_PDFIUM` (the library file), else
//! from folio's data directory where `scripts/setup.sh` unpacks it from the `pypdfium2` wheel, else
//! from the system's library path. Pages render lazily, one at a time, so a 1,000-page PDF never
//! holds more than one page image.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::assets;
use anyhow::{anyhow, bail, Context, Result};
use image::DynamicImage;
use pdfium_render::prelude::{PdfDocument, PdfRenderConfig, Pdfium, PdfiumError, PdfiumInternalError};

/// Most pixels of one rendered page; larger pages (posters, drawings) are rendered smaller.
pub const MAX_PAGE_PIXELS: u64 = 40_000_000;
/// Longest side of a rendered page, in pixels.
pub const MAX_PAGE_SIDE: u32 = 20_000;
/// Rendering resolutions accepted, in dots per inch.
pub const DPI_RANGE: std::ops::RangeInclusive<f32> = 36.0..=1200.0;

static PDFIUM: OnceLock<std::result::Result<Pdfium, String>> = OnceLock::new();

/// The process's PDFium, bound on first use.
fn pdfium() -> Result<&'static Pdfium> {
    PDFIUM.get_or_init(bind).as_ref().map_err(|e| anyhow!("{e}"))
}

fn bind() -> std::result::Result<Pdfium, String> {
    let mut tried = Vec::new();
    let chosen = std::env::var_os(assets::PDFIUM.env).map(PathBuf::from).or_else(|| assets::PDFIUM.installed_path());
    if let Some(path) = chosen {
        match Pdfium::bind_to_library(&path) {
            Ok(bindings) => return Ok(Pdfium::new(bindings)),
            Err(e) => tried.push(format!("{}: {e}", path.display())),
        }
    }
    let bindings = Pdfium::bind_to_system_library().map_err(|e| {
        tried.push(format!("system library path: {e}"));
        format!(
            "reading PDFs needs libpdfium, which was not found ({}); run scripts/setup.sh (it \
             installs libpdfium from the pypdfium2 wheel) or set FOLIO_PDFIUM to the library file",
            tried.join("; ")
        )
    })?;
    Ok(Pdfium::new(bindings))
}

/// An open PDF whose pages render on demand.
pub struct PdfPages {
    doc: PdfDocument<'static>,
    next: i32,
    len: i32,
    dpi: f32,
}

impl PdfPages {
    /// Opens `path`; `dpi` is the rendering resolution (150 suits the shipped model), `password`
    /// opens an encrypted PDF (and is ignored by one that is not).
    pub fn open(path: &Path, dpi: f32, password: Option<&str>) -> Result<Self> {
        if !DPI_RANGE.contains(&dpi) {
            bail!("dpi {dpi} is out of range ({} to {})", DPI_RANGE.start(), DPI_RANGE.end());
        }
        let pdfium = pdfium()?;
        let is_password_error =
            |e: &PdfiumError| matches!(e, PdfiumError::PdfiumLibraryInternalError(PdfiumInternalError::PasswordError));
        // PDFium tries a given password as the owner's and the user's, never as no password: a PDF
        // that restricts only copying or printing opens without one, so that is tried too.
        let doc = match pdfium.load_pdf_from_file(path, password) {
            Err(e) if password.is_some() && is_password_error(&e) => pdfium.load_pdf_from_file(path, None),
            loaded => loaded,
        }
        .map_err(|e| match (is_password_error(&e), password) {
            (true, None) => anyhow!("the PDF is encrypted: give its password with --password or FOLIO_PDF_PASSWORD"),
            (true, Some(_)) => anyhow!("the PDF is encrypted and the password given does not open it"),
            (false, _) => explain(e),
        })?;
        let len = doc.pages().len();
        if len == 0 {
            bail!("the PDF has no pages");
        }
        Ok(PdfPages { doc, next: 0, len, dpi })
    }

    pub fn page_count(&self) -> usize {
        self.len as usize
    }

    /// Whether page `index` (0-based) already holds text: characters that are not white space,
    /// drawn or invisible.
    pub fn has_text(&self, index: usize) -> Result<bool> {
        let index = i32::try_from(index).context("page index")?;
        let page = self.doc.pages().get(index).map_err(explain)?;
        let text = page.text().map_err(explain)?;
        Ok(text.all().chars().any(|c| !c.is_whitespace()))
    }

    fn render(&self, index: i32) -> Result<DynamicImage> {
        let page = self.doc.pages().get(index).map_err(explain)?;
        let (w, h) = (page.width().value, page.height().value);
        let scale = render_scale(w, h, self.dpi).with_context(|| format!("page {}", index + 1))?;
        let config = PdfRenderConfig::new().scale_page_by_factor(scale).render_form_data(true);
        let bitmap = page.render_with_config(&config).map_err(explain)?;
        let image = bitmap.as_image().map_err(explain)?;
        Ok(DynamicImage::ImageRgb8(image.to_rgb8()))
    }
}

impl Iterator for PdfPages {
    type Item = Result<DynamicImage>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.len {
            return None;
        }
        let index = self.next;
        self.next += 1;
        Some(self.render(index).with_context(|| format!("page {}", index + 1)))
    }
}

/// Points-to-pixels factor for a `w`×`h`-point page at `dpi`, lowered so the page stays within
/// [`MAX_PAGE_SIDE`] and [`MAX_PAGE_PIXELS`].
pub fn render_scale(w: f32, h: f32, dpi: f32) -> Result<f32> {
    if !(w.is_finite() && h.is_finite() && w >= 1.0 && h >= 1.0) {
        bail!("the page has no usable size ({w} x {h} points)");
    }
    let mut scale = dpi / 72.0;
    let side = w.max(h) * scale;
    if side > MAX_PAGE_SIDE as f32 {
        scale *= MAX_PAGE_SIDE as f32 / side;
    }
    let pixels = (w * scale) as f64 * (h * scale) as f64;
    if pixels > MAX_PAGE_PIXELS as f64 {
        scale *= (MAX_PAGE_PIXELS as f64 / pixels).sqrt() as f32;
    }
    if scale < dpi / 72.0 {
        tracing::warn!(w, h, dpi = scale * 72.0, "large page rendered below the requested dpi");
    }
    Ok(scale)
}

/// PDFium's errors in the words a user needs.
fn explain(e: PdfiumError) -> anyhow::Error {
    match e {
        PdfiumError::PdfiumLibraryInternalError(PdfiumInternalError::FormatError) => {
            anyhow!("not a readable PDF (damaged, truncated or not a PDF at all)")
        }
        PdfiumError::PdfiumLibraryInternalError(PdfiumInternalError::SecurityError) => {
            anyhow!("the PDF uses an unsupported security handler")
        }
        PdfiumError::IoError(e) => anyhow!("cannot read file: {e}"),
        other => anyhow!("PDFium: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letter_page_at_150_dpi_keeps_its_resolution() -> Result<()> {
        let s = render_scale(612.0, 792.0, 150.0)?;
        assert!((s - 150.0 / 72.0).abs() < 1e-6);
        Ok(())
    }

    #[test]
    fn huge_pages_are_rendered_within_the_limits() -> Result<()> {
        // A 5 m banner and a 2 m x 2 m poster.
        for (w, h) in [(14_000.0, 500.0), (5_700.0, 5_700.0)] {
            let s = render_scale(w, h, 150.0)?;
            assert!(s < 150.0 / 72.0);
            assert!((w * s).max(h * s) <= MAX_PAGE_SIDE as f32 + 1.0);
            assert!(((w * s) as f64) * ((h * s) as f64) <= MAX_PAGE_PIXELS as f64 * 1.001);
        }
        Ok(())
    }

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pdfs").join(name)
    }

    fn first_page(path: &Path, password: Option<&str>) -> Result<DynamicImage> {
        PdfPages::open(path, 100.0, password)?.next().context("a first page")?
    }

    /// Needs libpdfium (scripts/setup.sh). The encrypted fixtures are two-pages.pdf under the user
    /// password "folio" and under an owner password only (tools/fixtures/make_pdfs.py).
    #[test]
    fn an_encrypted_pdf_opens_with_its_password_only() -> Result<()> {
        let encrypted = fixture("encrypted.pdf");
        let error = |password| PdfPages::open(&encrypted, 100.0, password).err().map(|e| e.to_string());
        assert!(error(None).is_some_and(|e| e.contains("--password")));
        assert!(error(Some("guess")).is_some_and(|e| e.contains("does not open it")));
        let opened = first_page(&encrypted, Some("folio"))?;
        // A PDF without encryption ignores a password, and so does one encrypted with only an
        // owner password (it restricts copying and printing, not opening).
        let plain = first_page(&fixture("two-pages.pdf"), Some("folio"))?;
        assert!(opened.as_bytes() == plain.as_bytes(), "the decrypted page renders as the plain one");
        for password in [None, Some("folio")] {
            let restricted = first_page(&fixture("restricted.pdf"), password)?;
            assert!(restricted.as_bytes() == plain.as_bytes(), "restricted.pdf with {password:?}");
        }
        Ok(())
    }

    #[test]
    fn pages_without_a_size_are_refused() {
        assert!(render_scale(0.0, 792.0, 150.0).is_err());
        assert!(render_scale(f32::NAN, 792.0, 150.0).is_err());
    }
}
