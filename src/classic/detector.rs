//! PP-OCR's text detector on ONNX Runtime: a page → the DB network's probability map → text boxes
//! ([`super::db`]). Preprocessing as rapidocr 3.10.0 does it: the short side scaled up to 736 when
//! below it, both sides rounded to multiples of 32, OpenCV-style bilinear resize, BGR,
//! `(x/255 − 0.5) / 0.5`.

use std::path::Path;

use anyhow::{bail, Context, Result};
use image::RgbImage;

use super::db::{text_boxes, DbParams, TextBox};
use crate::layout::picodet::resize_bilinear;
use crate::onnx::OnnxModel;

/// The short side a page is scaled up to (rapidocr's `limit_side_len`, `limit_type: min`).
pub const LIMIT_SIDE: u32 = 736;

pub struct TextDetector {
    model: OnnxModel,
    input: String,
    pub params: DbParams,
}

impl TextDetector {
    pub fn load(path: &Path, threads: usize) -> Result<Self> {
        let model = OnnxModel::load(path, threads)?;
        let (input, shape) = model.input()?;
        if shape.len() != 4 || shape[1] != 3 {
            bail!("{} is not a PP-OCR text detector (input {shape:?})", path.display());
        }
        Ok(TextDetector { model, input, params: DbParams::default() })
    }

    /// The network's input size for a `w`×`h` page; `None` for a page too small to scale.
    pub fn input_size(w: u32, h: u32) -> Option<(u32, u32)> {
        let short = w.min(h);
        let ratio = if short < LIMIT_SIDE { LIMIT_SIDE as f64 / short.max(1) as f64 } else { 1.0 };
        // Python's round: ties to even.
        let side = |v: u32| (((v as f64 * ratio).trunc() / 32.0).round_ties_even() * 32.0) as u32;
        let (rw, rh) = (side(w), side(h));
        (rw > 0 && rh > 0).then_some((rw, rh))
    }

    /// The page's text boxes, in page pixels.
    pub fn detect(&self, page: &RgbImage) -> Result<Vec<TextBox>> {
        let (w, h) = page.dimensions();
        let (iw, ih) = Self::input_size(w, h).context("the page is too small to read")?;
        let resized = resize_bilinear(page, iw, ih);
        let plane = (iw * ih) as usize;
        let mut input = vec![0f32; 3 * plane];
        for (i, p) in resized.pixels().enumerate() {
            for c in 0..3 {
                input[c * plane + i] = (p.0[2 - c] as f32 / 255.0 - 0.5) / 0.5;
            }
        }
        let outputs = self.model.run_f32(&self.input, &[1, 3, ih as usize, iw as usize], input)?;
        let (_, shape, map) = outputs.into_iter().next().context("the detector gave no output")?;
        let (mh, mw) = match shape.as_slice() {
            [1, 1, mh, mw] => (*mh, *mw),
            other => bail!("unexpected detector output {other:?}"),
        };
        Ok(text_boxes(&map, (mw, mh), (w, h), &self.params))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_sizes_follow_rapidocr() {
        // A 150-dpi letter page: short side 1275 is over 736, kept; sides to multiples of 32.
        assert_eq!(TextDetector::input_size(1275, 1651), Some((1280, 1664)));
        // A small crop is scaled up so its short side is 736.
        assert_eq!(TextDetector::input_size(368, 100), Some((2720, 736)));
        assert_eq!(TextDetector::input_size(0, 0), None);
    }
}
