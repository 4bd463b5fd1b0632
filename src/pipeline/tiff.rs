//! Multi-page TIFF, the usual format of scanners and fax archives: each image file directory (IFD)
//! is a page, unless it is marked as a reduced-resolution copy (a thumbnail). The `tiff` crate
//! walks the chain of directories (it refuses cycles); each page is then decoded by `image`'s TIFF
//! decoder, with its colour conversions and limits, reading the file through [`HeaderPointsAt`], a
//! view whose header names that page's directory as the first one. No TIFF decoding is written
//! here.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use image::{DynamicImage, ImageFormat, ImageReader};
use tiff::tags::Tag;

use super::source::decode_with_limits;

/// Whether a file starting with `head` (at least 4 bytes) is a TIFF or BigTIFF.
pub fn is_tiff(head: &[u8]) -> bool {
    matches!(head.get(..4), Some(b"II*\0" | b"MM\0*" | b"II+\0" | b"MM\0+"))
}

/// The pages of a TIFF file, decoded one at a time.
pub struct TiffPages {
    path: PathBuf,
    header: Header,
    /// Offsets of the pages' directories, in file order.
    pages: Vec<u64>,
    next: usize,
}

/// Where a TIFF header keeps the offset of the first directory, and how it is written.
#[derive(Clone, Copy)]
struct Header {
    big_endian: bool,
    bigtiff: bool,
}

impl Header {
    fn read(head: &[u8; 4]) -> Header {
        Header { big_endian: head[0] == b'M', bigtiff: head[2] == b'+' || head[3] == b'+' }
    }

    /// The header bytes that make `ifd` the first directory, and where they go.
    fn first_ifd_field(&self, ifd: u64) -> Result<(u64, Vec<u8>)> {
        Ok(match (self.bigtiff, self.big_endian) {
            (true, true) => (8, ifd.to_be_bytes().to_vec()),
            (true, false) => (8, ifd.to_le_bytes().to_vec()),
            (false, big_endian) => {
                let ifd = u32::try_from(ifd).context("directory offset beyond 4 GiB in a classic TIFF")?;
                (4, if big_endian { ifd.to_be_bytes() } else { ifd.to_le_bytes() }.to_vec())
            }
        })
    }
}

impl TiffPages {
    /// Opens `path` and finds its pages (reading directories only, not image data).
    pub fn open(path: &Path) -> Result<Self> {
        let mut file = File::open(path).context("cannot open file")?;
        let mut head = [0u8; 4];
        file.read_exact(&mut head).context("not a readable TIFF (too short)")?;
        let header = Header::read(&head);
        file.rewind().context("cannot read file")?;
        let mut decoder = tiff::decoder::Decoder::new(BufReader::new(file)).map_err(explain)?;
        let mut pages = Vec::new();
        for directory in 1.. {
            let ifd = decoder.ifd_pointer().context("not a readable TIFF (no image directory)")?;
            // Bit 0 of NewSubfileType marks a reduced-resolution copy (a thumbnail) of a page.
            let subfile = decoder.find_tag_unsigned::<u32>(Tag::NewSubfileType).map_err(explain)?;
            if subfile.unwrap_or(0) & 1 == 0 {
                pages.push(ifd.0);
            }
            if !decoder.more_images() {
                break;
            }
            decoder.next_image().map_err(explain).with_context(|| format!("image {}", directory + 1))?;
        }
        if pages.is_empty() {
            bail!("the TIFF holds only reduced-resolution images (thumbnails), no page");
        }
        Ok(TiffPages { path: path.to_path_buf(), header, pages, next: 0 })
    }

    pub fn page_count(&self) -> usize {
        self.pages.len()
    }

    fn decode(&self, ifd: u64) -> Result<DynamicImage> {
        let (at, bytes) = self.header.first_ifd_field(ifd)?;
        let file = File::open(&self.path).context("cannot open file")?;
        let view = HeaderPointsAt { inner: file, pos: 0, at, bytes };
        decode_with_limits(ImageReader::with_format(BufReader::new(view), ImageFormat::Tiff))
    }
}

impl Iterator for TiffPages {
    type Item = Result<DynamicImage>;

    fn next(&mut self) -> Option<Self::Item> {
        let ifd = *self.pages.get(self.next)?;
        self.next += 1;
        Some(self.decode(ifd).with_context(|| format!("page {}", self.next)))
    }
}

fn explain(e: tiff::TiffError) -> anyhow::Error {
    anyhow::anyhow!("not a readable TIFF: {e}")
}

/// A file read with `bytes` put over its contents at offset `at` (the header's first-directory
/// field), so a TIFF decoder that reads only the first directory reads the one chosen.
struct HeaderPointsAt<R> {
    inner: R,
    /// The position of `inner`, tracked here so reads cost no seek.
    pos: u64,
    at: u64,
    bytes: Vec<u8>,
}

impl<R: Read> Read for HeaderPointsAt<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let (start, end) = (self.pos, self.pos + n as u64);
        for (i, &b) in self.bytes.iter().enumerate() {
            let at = self.at + i as u64;
            if (start..end).contains(&at) {
                buf[(at - start) as usize] = b;
            }
        }
        self.pos = end;
        Ok(n)
    }
}

impl<R: Seek> Seek for HeaderPointsAt<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = self.inner.seek(to)?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiff::encoder::{colortype, TiffEncoder, TiffKind};

    /// Three pages: a gray gradient, an RGB page with a red square, a small gray page; and a
    /// thumbnail before the last.
    fn write_pages<K: TiffKind>(mut encoder: TiffEncoder<File, K>) -> Result<()> {
        let gradient: Vec<u8> = (0..40 * 30).map(|i| (i % 40 * 6) as u8).collect();
        encoder.write_image::<colortype::Gray8>(40, 30, &gradient)?;
        let mut rgb = vec![255u8; 50 * 20 * 3];
        for y in 5..10 {
            for x in 5..10 {
                rgb[(y * 50 + x) * 3 + 1] = 0;
                rgb[(y * 50 + x) * 3 + 2] = 0;
            }
        }
        encoder.write_image::<colortype::RGB8>(50, 20, &rgb)?;
        // A thumbnail of the first page, which is not a page of its own.
        let mut thumbnail = encoder.new_image::<colortype::Gray8>(4, 3)?;
        thumbnail.encoder().write_tag(Tag::NewSubfileType, 1u32)?;
        thumbnail.write_data(&[0u8; 12])?;
        encoder.write_image::<colortype::Gray8>(8, 8, &[7u8; 64])?;
        Ok(())
    }

    fn check_pages(path: &Path) -> Result<()> {
        let pages = TiffPages::open(path)?;
        assert_eq!(pages.page_count(), 3);
        let pages: Vec<DynamicImage> = pages.collect::<Result<_>>()?;
        let sizes: Vec<_> = pages.iter().map(|p| (p.width(), p.height())).collect();
        assert_eq!(sizes, [(40, 30), (50, 20), (8, 8)]);
        let gray = pages[0].to_luma8();
        assert_eq!((gray.get_pixel(0, 0)[0], gray.get_pixel(39, 29)[0]), (0, 234));
        let rgb = pages[1].to_rgb8();
        assert_eq!((rgb.get_pixel(7, 7).0, rgb.get_pixel(20, 7).0), ([255, 0, 0], [255, 255, 255]));
        assert_eq!(pages[2].to_luma8().get_pixel(3, 3)[0], 7);
        Ok(())
    }

    #[test]
    fn every_page_of_a_tiff_and_a_bigtiff_is_read() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("folio-tiff-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let (classic, big) = (dir.join("scan.tif"), dir.join("scan-big.tif"));
        write_pages(TiffEncoder::new(File::create(&classic)?)?)?;
        write_pages(TiffEncoder::new_big(File::create(&big)?)?)?;
        check_pages(&classic)?;
        check_pages(&big)?;
        // A document source finds TIFFs by their signature, whatever their name.
        let misnamed = dir.join("scan.png");
        std::fs::copy(&big, &misnamed)?;
        assert_eq!(super::super::source::Pages::open(&misnamed, 150.0, None)?.page_count(), 3);

        // A file cut short is refused with a reason.
        let bytes = std::fs::read(&classic)?;
        assert!(is_tiff(&bytes) && is_tiff(&std::fs::read(&big)?));
        std::fs::write(&classic, &bytes[..20])?;
        assert!(TiffPages::open(&classic).is_err_and(|e| format!("{e:#}").contains("not a readable TIFF")));
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
