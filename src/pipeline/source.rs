//! Document sources: which files are documents, and their pages as images (a PDF's pages rendered
//! by [`super::pdf_source`]; an image file is one page).

use std::io::{BufRead, Read, Seek};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use image::{DynamicImage, ImageReader};

use super::pdf_source::{PdfPages, MAX_PAGE_PIXELS, MAX_PAGE_SIDE};
use super::tiff::{is_tiff, TiffPages};

/// File name extensions taken as documents when a directory is walked (lower case).
pub const DOCUMENT_EXTENSIONS: &[&str] = &["pdf", "png", "jpg", "jpeg", "tif", "tiff", "bmp", "webp"];

/// Whether a directory walk should pick up `path` (by its extension, any case).
pub fn is_document_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| DOCUMENT_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// A document's pages, rendered or decoded one at a time.
pub enum Pages {
    Pdf(Box<PdfPages>),
    Tiff(TiffPages),
    Image(Option<PathBuf>),
}

impl Pages {
    /// Opens `path` as a PDF, a TIFF (every page) or another image (one page). PDFs and TIFFs are
    /// known by their signature, so a misnamed file still works. `dpi` and `password` are for PDFs
    /// (see [`PdfPages::open`]).
    pub fn open(path: &Path, dpi: f32, password: Option<&str>) -> Result<Self> {
        let mut head = [0u8; 5];
        let n = std::fs::File::open(path).and_then(|mut f| f.read(&mut head)).context("cannot open file")?;
        if n == 0 {
            bail!("the file is empty");
        }
        if head.starts_with(b"%PDF") || path.extension().is_some_and(|e| e.eq_ignore_ascii_case("pdf")) {
            return Ok(Pages::Pdf(Box::new(PdfPages::open(path, dpi, password)?)));
        }
        if is_tiff(&head[..n]) {
            return Ok(Pages::Tiff(TiffPages::open(path)?));
        }
        Ok(Pages::Image(Some(path.to_path_buf())))
    }

    pub fn page_count(&self) -> usize {
        match self {
            Pages::Pdf(pdf) => pdf.page_count(),
            Pages::Tiff(tiff) => tiff.page_count(),
            Pages::Image(_) => 1,
        }
    }
}

impl Iterator for Pages {
    type Item = Result<DynamicImage>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Pages::Pdf(pdf) => pdf.next(),
            Pages::Tiff(tiff) => tiff.next(),
            Pages::Image(path) => path.take().map(|p| load_image(&p)),
        }
    }
}

/// Decodes an image (the first page of a multi-page TIFF) with limits, so a hostile file cannot
/// ask for gigabytes: its size is read from its header first, and a page over the pixel budget
/// ([`MAX_PAGE_PIXELS`], [`MAX_PAGE_SIDE`]) is refused with its size before any decoding.
pub fn load_image(path: &Path) -> Result<DynamicImage> {
    let open = || -> Result<ImageReader<std::io::BufReader<std::fs::File>>> {
        image::ImageReader::open(path).context("cannot open file")?.with_guessed_format().context("cannot read file")
    };
    let (w, h) = open()?.into_dimensions().context("not a readable image")?;
    check_budget(w, h)?;
    decode_with_limits(open()?)
}

/// Refuses a `w`×`h` page over the pixel budget, saying by how much.
pub fn check_budget(w: u32, h: u32) -> Result<()> {
    let pixels = w as u64 * h as u64;
    if pixels > MAX_PAGE_PIXELS || w.max(h) > MAX_PAGE_SIDE {
        bail!(
            "the image is {w} x {h} pixels ({:.0} Mpx), over folio's page budget of {} Mpx and {} pixels a side: \
             scale it down first (e.g. to 300 dpi)",
            pixels as f64 / 1e6,
            MAX_PAGE_PIXELS / 1_000_000,
            MAX_PAGE_SIDE
        );
    }
    Ok(())
}

/// Decodes what `reader` reads, within the limits of [`load_image`].
pub fn decode_with_limits<R: BufRead + Seek>(mut reader: ImageReader<R>) -> Result<DynamicImage> {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(20_000);
    limits.max_image_height = Some(20_000);
    limits.max_alloc = Some(1 << 30);
    reader.limits(limits);
    reader.decode().context("not a readable image")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_picked_by_extension_in_any_case() {
        for name in ["a.pdf", "b.PNG", "scan.Jpeg", "x.tif", "y.webp"] {
            assert!(is_document_name(Path::new(name)), "{name}");
        }
        for name in ["notes.txt", "README", "a.pdf.part", ".pdf"] {
            assert!(!is_document_name(Path::new(name)), "{name}");
        }
    }

    #[test]
    fn empty_and_missing_files_are_refused_with_a_reason() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("folio-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let empty = dir.join("empty.png");
        std::fs::write(&empty, b"")?;
        let e = Pages::open(&empty, 150.0, None).err().map(|e| format!("{e:#}"));
        assert_eq!(e.as_deref(), Some("the file is empty"));
        let e = Pages::open(&dir.join("missing.png"), 150.0, None).err().map(|e| format!("{e:#}"));
        assert!(e.is_some_and(|e| e.starts_with("cannot open file")));
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    /// A 30000 x 30000 PNG header (a poster scan) is refused from its header, with its size.
    #[test]
    fn a_huge_image_is_refused_from_its_header() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("folio-source-huge-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("poster.png");
        // Signature, IHDR (30000 x 30000, 8-bit RGB), then an empty IDAT and IEND: no pixel data.
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend(30_000u32.to_be_bytes());
        ihdr.extend(30_000u32.to_be_bytes());
        ihdr.extend([8, 2, 0, 0, 0]);
        png.extend(13u32.to_be_bytes());
        png.extend(&ihdr);
        png.extend(crc32fast::hash(&ihdr).to_be_bytes());
        for name in [b"IDAT", b"IEND"] {
            png.extend(0u32.to_be_bytes());
            png.extend(name);
            png.extend(crc32fast::hash(name).to_be_bytes());
        }
        std::fs::write(&path, png)?;
        let e = load_image(&path).err().map(|e| format!("{e:#}"));
        assert!(e.as_deref().is_some_and(|e| e.contains("30000 x 30000") && e.contains("budget")), "{e:?}");
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn an_image_file_is_one_page() -> Result<()> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pages/bzip2-manual-p6.png");
        let mut pages = Pages::open(&path, 150.0, None)?;
        assert_eq!(pages.page_count(), 1);
        let page = pages.next().context("one page")??;
        assert!(page.width() > 1000);
        assert!(pages.next().is_none());
        Ok(())
    }
}
