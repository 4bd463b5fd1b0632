//! A searchable PDF made from page images: each page the image, with the invisible text layer over
//! it. Used for image inputs (scans, photos, TIFF pages) and for PDFs that cannot be updated in
//! place. A JPEG file goes in as it is (no second lossy compression); other pages are stored
//! deflated, in grey when the page has no colour.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use anyhow::{Context, Result};
use image::RgbImage;

use super::font::write_font;
use super::layer::{text_layer, PlacedLine, Placement};
use super::objects::{deflate, ObjectWriter, XrefKind};

/// A page's picture as the PDF stores it.
pub enum PageImage<'a> {
    /// The bytes of a JPEG file, `width`×`height`, with `components` colour channels (1 or 3).
    Jpeg { bytes: &'a [u8], width: u32, height: u32, components: u8 },
    /// Pixels.
    Pixels(&'a RgbImage),
}

/// A new PDF being written page by page.
pub struct ImagePdf {
    writer: ObjectWriter<BufWriter<File>>,
    catalog: u32,
    page_tree: u32,
    font: u32,
    kids: Vec<u32>,
    /// Pixels per inch of the images: a page is its image's size at this resolution.
    dpi: f32,
}

impl ImagePdf {
    pub fn create(out: &Path, dpi: f32) -> Result<Self> {
        let file = File::create(out).with_context(|| format!("cannot write {}", out.display()))?;
        let mut writer = ObjectWriter::new_file(BufWriter::new(file))?;
        let (catalog, page_tree) = (writer.reserve(), writer.reserve());
        let font = write_font(&mut writer)?;
        Ok(ImagePdf { writer, catalog, page_tree, font, kids: Vec::new(), dpi: dpi.max(1.0) })
    }

    /// Adds a page showing `image` with `lines` (in the image's pixels) as its text layer.
    pub fn add_page(&mut self, image: PageImage, lines: &[PlacedLine]) -> Result<()> {
        let (id_image, id_content, id_page) = (self.writer.reserve(), self.writer.reserve(), self.writer.reserve());
        let (w, h) = match image {
            PageImage::Jpeg { bytes, width, height, components } => {
                let space = if components == 1 { "/DeviceGray" } else { "/DeviceRGB" };
                let entries = format!(
                    "/Type /XObject /Subtype /Image /Width {width} /Height {height} /ColorSpace {space} \
                     /BitsPerComponent 8 /Filter /DCTDecode"
                );
                self.writer.stream(id_image, &entries, bytes)?;
                (width, height)
            }
            PageImage::Pixels(rgb) => {
                let (width, height) = rgb.dimensions();
                let grey = rgb.pixels().all(|p| p[0] == p[1] && p[1] == p[2]);
                let (space, data) = if grey {
                    ("/DeviceGray", deflate(&rgb.pixels().map(|p| p[0]).collect::<Vec<u8>>())?)
                } else {
                    ("/DeviceRGB", deflate(rgb.as_raw())?)
                };
                let entries = format!(
                    "/Type /XObject /Subtype /Image /Width {width} /Height {height} /ColorSpace {space} \
                     /BitsPerComponent 8 /Filter /FlateDecode"
                );
                self.writer.stream(id_image, &entries, &data)?;
                (width, height)
            }
        };
        let size = (w as f32 * 72.0 / self.dpi, h as f32 * 72.0 / self.dpi);
        let mut content = format!("q {:.3} 0 0 {:.3} 0 0 cm /Page Do Q\n", size.0, size.1).into_bytes();
        content.extend(text_layer(lines, &Placement::of_image((w, h), size), "FolioOCR"));
        self.writer.flate_stream(id_content, "", &content)?;
        let page = format!(
            "<< /Type /Page /Parent {} 0 R /MediaBox [0 0 {:.3} {:.3}] /Contents {id_content} 0 R \
             /Resources << /XObject << /Page {id_image} 0 R >> /Font << /FolioOCR {} 0 R >> >> >>",
            self.page_tree, size.0, size.1, self.font
        );
        self.writer.object(id_page, 0, page.as_bytes())?;
        self.kids.push(id_page);
        Ok(())
    }

    /// Writes the page tree, the catalog and the cross-reference table.
    pub fn finish(mut self) -> Result<()> {
        let kids: Vec<String> = self.kids.iter().map(|id| format!("{id} 0 R")).collect();
        let tree = format!("<< /Type /Pages /Kids [{}] /Count {} >>", kids.join(" "), kids.len());
        self.writer.object(self.page_tree, 0, tree.as_bytes())?;
        let catalog = format!("<< /Type /Catalog /Pages {} 0 R >>", self.page_tree);
        self.writer.object(self.catalog, 0, catalog.as_bytes())?;
        let root = format!("/Root {} 0 R", self.catalog);
        let out = self.writer.finish(XrefKind::Table, root.as_bytes())?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        Ok(())
    }
}

/// The size and colour channels of a baseline or progressive JPEG, from its frame header; `None`
/// when `bytes` is not a JPEG a PDF can show as it is (CMYK, 12-bit, lossless, arithmetic coded).
pub fn jpeg_info(bytes: &[u8]) -> Option<(u32, u32, u8)> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut i = 2;
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xFF {
            return None;
        }
        let marker = bytes[i + 1];
        if marker == 0xFF {
            i += 1; // fill byte
            continue;
        }
        let len = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
        // SOF0 (baseline), SOF1 (extended) and SOF2 (progressive), Huffman coded.
        if matches!(marker, 0xC0..=0xC2) {
            let frame = bytes.get(i + 4..i + 2 + len)?;
            let (precision, components) = (*frame.first()?, *frame.get(5)?);
            let height = u16::from_be_bytes([*frame.get(1)?, *frame.get(2)?]) as u32;
            let width = u16::from_be_bytes([*frame.get(3)?, *frame.get(4)?]) as u32;
            let usable = precision == 8 && matches!(components, 1 | 3) && width > 0 && height > 0;
            return usable.then_some((width, height, components));
        }
        if matches!(marker, 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF | 0xDA) {
            return None; // another coding, or scan data before any frame header
        }
        i += 2 + len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jpeg_frame_header_gives_size_and_channels() -> Result<()> {
        let image = RgbImage::from_pixel(37, 21, image::Rgb([200, 30, 30]));
        let mut jpeg = Vec::new();
        image.write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)?;
        assert_eq!(jpeg_info(&jpeg), Some((37, 21, 3)));
        let grey = image::GrayImage::from_pixel(5, 8, image::Luma([9]));
        let mut jpeg = Vec::new();
        grey.write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)?;
        assert_eq!(jpeg_info(&jpeg), Some((5, 8, 1)));
        assert_eq!(jpeg_info(b"\x89PNG\r\n"), None);
        assert_eq!(jpeg_info(&jpeg[..20]), None);
        Ok(())
    }
}
