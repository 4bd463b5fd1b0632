//! Image preprocessing: smart_resize → bicubic resize → rescale/normalise → 14×14 patches.
//!
//! Follows the reference image processor (transformers' `PaddleOCRVLImageProcessor`): sizes snap to
//! multiples of `patch × merge` (28) inside `[min_pixels, max_pixels]`, rounding half to even as
//! Python's `round` does, and extreme aspect ratios are refused.

use anyhow::{bail, Result};
use candle_core::{Device, Tensor};
use image::{DynamicImage, RgbImage};

use super::config::PreprocessorConfig;
use super::vision::PatchGrid;

/// The reference refuses images more elongated than this.
pub const MAX_ASPECT_RATIO: f64 = 200.0;

/// One image ready for the vision tower.
#[derive(Debug, Clone)]
pub struct PreparedImage {
    /// `(patches, 3 * patch * patch)` f32, raster order, each patch flattened as (channel, y, x).
    pub patches: Tensor,
    pub grid: PatchGrid,
}

/// Target (height, width): multiples of `factor`, area within `[min_pixels, max_pixels]`, aspect
/// ratio kept as closely as possible.
pub fn smart_resize(
    height: usize,
    width: usize,
    factor: usize,
    min_pixels: usize,
    max_pixels: usize,
) -> Result<(usize, usize)> {
    if height == 0 || width == 0 {
        bail!("image is empty ({width}x{height})");
    }
    let (mut h, mut w, f) = (height as f64, width as f64, factor as f64);
    if h < f {
        w = (w * f / h).round_ties_even();
        h = f;
    }
    if w < f {
        h = (h * f / w).round_ties_even();
        w = f;
    }
    let ratio = h.max(w) / h.min(w);
    if ratio > MAX_ASPECT_RATIO {
        bail!("image aspect ratio {ratio:.1} exceeds {MAX_ASPECT_RATIO}: crop or split it first");
    }
    let (mut h_bar, mut w_bar) = ((h / f).round_ties_even() * f, (w / f).round_ties_even() * f);
    if h_bar * w_bar > max_pixels as f64 {
        let beta = (h * w / max_pixels as f64).sqrt();
        h_bar = f.max((h / beta / f).floor() * f);
        w_bar = f.max((w / beta / f).floor() * f);
    } else if h_bar * w_bar < min_pixels as f64 {
        let beta = (min_pixels as f64 / (h * w)).sqrt();
        h_bar = (h * beta / f).ceil() * f;
        w_bar = (w * beta / f).ceil() * f;
    }
    Ok((h_bar as usize, w_bar as usize))
}

#[derive(Debug, Clone)]
pub struct ImageProcessor {
    pub cfg: PreprocessorConfig,
}

impl ImageProcessor {
    pub fn new(cfg: PreprocessorConfig) -> Self {
        Self { cfg }
    }

    /// Patch grid an image of this size becomes.
    pub fn grid_for(&self, width: usize, height: usize) -> Result<PatchGrid> {
        let c = &self.cfg;
        let (h, w) = smart_resize(height, width, c.factor(), c.min_pixels, c.max_pixels)?;
        Ok(PatchGrid { rows: h / c.patch_size, cols: w / c.patch_size })
    }

    pub fn prepare(&self, image: &DynamicImage) -> Result<PreparedImage> {
        let c = &self.cfg;
        let grid = self.grid_for(image.width() as usize, image.height() as usize)?;
        let (h, w) = (grid.rows * c.patch_size, grid.cols * c.patch_size);
        // Borrow 8-bit RGB as it is; anything else is converted once.
        let converted;
        let rgb = match image.as_rgb8() {
            Some(rgb) => rgb,
            None => {
                converted = image.to_rgb8();
                &converted
            }
        };
        let resized;
        let pixels: &[u8] = if rgb.dimensions() == (w as u32, h as u32) {
            rgb.as_raw()
        } else {
            resized = resize_bicubic(rgb, w as u32, h as u32)?;
            &resized
        };
        let patches = self.patchify(pixels, w, grid);
        let dim = 3 * c.patch_size * c.patch_size;
        Ok(PreparedImage { patches: Tensor::from_vec(patches, (grid.patches(), dim), &Device::Cpu)?, grid })
    }

    /// Rescales and normalises the packed RGB `pixels` (`width` wide) into flattened patches, in one
    /// pass: a 256-entry table per channel, then row runs of each patch copied out.
    fn patchify(&self, pixels: &[u8], width: usize, grid: PatchGrid) -> Vec<f32> {
        let c = &self.cfg;
        let p = c.patch_size;
        let table: [[f32; 256]; 3] = std::array::from_fn(|ch| {
            let (scale, shift) = (c.rescale_factor / c.image_std[ch], c.image_mean[ch] / c.image_std[ch]);
            std::array::from_fn(|v| v as f32 * scale - shift)
        });
        let mut out = vec![0f32; grid.patches() * 3 * p * p];
        for (i, patch) in out.chunks_exact_mut(3 * p * p).enumerate() {
            let (gr, gc) = (i / grid.cols, i % grid.cols);
            for (ch, plane) in patch.chunks_exact_mut(p * p).enumerate() {
                for (y, row) in plane.chunks_exact_mut(p).enumerate() {
                    let start = ((gr * p + y) * width + gc * p) * 3;
                    for (dst, px) in row.iter_mut().zip(pixels[start..start + 3 * p].chunks_exact(3)) {
                        *dst = table[ch][px[ch] as usize];
                    }
                }
            }
        }
        out
    }
}

/// Bicubic (Catmull-Rom, a = -0.5) resampling with an antialiasing support scaled by the shrink
/// factor, in 8-bit fixed point: the convolution PIL's `BICUBIC` does, SIMD-accelerated.
fn resize_bicubic(src: &RgbImage, width: u32, height: u32) -> Result<Vec<u8>> {
    use fast_image_resize::{images::Image, images::ImageRef, FilterType, PixelType, ResizeAlg, ResizeOptions};
    let from = ImageRef::new(src.width(), src.height(), src.as_raw(), PixelType::U8x3)?;
    let mut to = Image::new(width, height, PixelType::U8x3);
    let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::CatmullRom));
    fast_image_resize::Resizer::new().resize(&from, &mut to, &opts)?;
    Ok(to.into_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smart_resize_matches_reference_cases() {
        // Values worked out with the reference implementation's formula.
        assert_eq!(smart_resize(56, 140, 28, 3136, 37632).unwrap(), (56, 140));
        assert_eq!(smart_resize(1000, 1000, 28, 147384, 2822400).unwrap(), (1008, 1008));
        // Half-to-even: 70 / 28 = 2.5 rounds to 2, not 3.
        assert_eq!(smart_resize(70, 2800, 28, 28 * 28, 28 * 28 * 10_000).unwrap(), (56, 2800));
        assert_eq!(smart_resize(4000, 3000, 28, 147384, 2822400).unwrap(), (1932, 1428));
        assert_eq!(smart_resize(10, 10, 28, 147384, 2822400).unwrap(), (392, 392));
    }

    #[test]
    fn refuses_empty_and_elongated_images() {
        assert!(smart_resize(0, 10, 28, 1, 10_000).is_err());
        let err = smart_resize(10, 2010, 28, 1, 1 << 30).unwrap_err().to_string();
        assert!(err.contains("aspect ratio"), "{err}");
    }
}
