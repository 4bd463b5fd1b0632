//! What happens to a line's ink mask after drawing: a change of stroke weight, the loss of detail
//! of a low-resolution scan, blur, paper and ink colours with a brightness gradient, pixel noise and
//! JPEG artefacts.

use anyhow::{Context, Result};
use image::RgbImage;

use super::render::LineStyle;

/// The RGB image of a `w` × `h` ink mask (0 = paper, 1 = ink) under `style`'s degradations.
pub(super) fn finish(mut mask: Vec<f32>, w: usize, h: usize, style: &LineStyle) -> Result<RgbImage> {
    if style.stroke.abs() > 0.01 {
        mask = reweight(&mask, w, h, style.stroke);
    }
    if style.resample > 0.0 && style.resample < 0.999 {
        let sw = ((w as f32 * style.resample).round() as usize).max(1);
        let sh = ((h as f32 * style.resample).round() as usize).max(1);
        let small = resize_area(&mask, w, h, sw, sh);
        mask = resize_bilinear(&small, sw, sh, w, h);
    }
    if style.blur_sigma > 0.05 {
        gaussian_blur(&mut mask, w, h, style.blur_sigma);
    }
    let img = compose(&mask, w, h, style);
    match style.jpeg_quality {
        Some(q) => jpeg_roundtrip(&img, q),
        None => Ok(img),
    }
}

/// Moves every stroke edge of an anti-aliased mask out (`px` > 0) or in (`px` < 0) by `|px|`
/// pixels: whole pixels by grey dilation or erosion over the pixel and its four neighbours, the
/// fraction by blending with one more step. An eroded hairline fades rather than vanishing at
/// fractions below one, as the thin strokes of a light face do at 150 dpi.
fn reweight(mask: &[f32], w: usize, h: usize, px: f32) -> Vec<f32> {
    let grow = px > 0.0;
    let mut m = mask.to_vec();
    for _ in 0..px.abs().floor() as usize {
        m = morph(&m, w, h, grow);
    }
    let frac = px.abs().fract();
    if frac > 0.0 {
        let next = morph(&m, w, h, grow);
        for (a, b) in m.iter_mut().zip(next) {
            *a += (b - *a) * frac;
        }
    }
    m
}

/// One step of grey dilation (`grow`) or erosion over the 4-neighbourhood; outside the image
/// counts as paper.
fn morph(m: &[f32], w: usize, h: usize, grow: bool) -> Vec<f32> {
    let pick = |a: f32, b: f32| if grow { a.max(b) } else { a.min(b) };
    let at = |x: usize, y: usize, dx: isize, dy: isize| -> f32 {
        match (x.checked_add_signed(dx), y.checked_add_signed(dy)) {
            (Some(x), Some(y)) if x < w && y < h => m[y * w + x],
            _ => 0.0,
        }
    };
    let mut out = vec![0f32; m.len()];
    for y in 0..h {
        for x in 0..w {
            let mut v = m[y * w + x];
            for (dx, dy) in [(-1, 0), (1, 0), (0, -1), (0, 1)] {
                v = pick(v, at(x, y, dx, dy));
            }
            out[y * w + x] = v;
        }
    }
    out
}

/// Paper, ink and noise → RGB.
fn compose(mask: &[f32], w: usize, h: usize, style: &LineStyle) -> RgbImage {
    let mut img = RgbImage::new(w as u32, h as u32);
    let mut noise = NoiseStream::new(style.noise_seed);
    let sigma = style.noise_sigma;
    for y in 0..h {
        for x in 0..w {
            let m = mask[y * w + x];
            let g = 1.0 + style.gradient * ((x as f32 + 0.5) / w as f32 - 0.5);
            let n = if sigma > 0.0 { sigma * noise.normal() } else { 0.0 };
            let mut px = [0u8; 3];
            for (ch, out) in px.iter_mut().enumerate() {
                let bg = (style.background[ch] * g).clamp(0.0, 1.0);
                let v = bg + (style.ink[ch] - bg) * m + n;
                *out = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            }
            img.put_pixel(x as u32, y as u32, image::Rgb(px));
        }
    }
    img
}

fn jpeg_roundtrip(img: &RgbImage, quality: u8) -> Result<RgbImage> {
    let mut buf = Vec::with_capacity(img.len() / 4);
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality.clamp(1, 100));
    img.write_with_encoder(enc).context("JPEG encode")?;
    Ok(image::load_from_memory_with_format(&buf, image::ImageFormat::Jpeg).context("JPEG decode")?.to_rgb8())
}

/// A small xorshift-based normal stream for pixel noise (cheaper than ChaCha per pixel).
struct NoiseStream(u64);

impl NoiseStream {
    fn new(seed: u64) -> Self {
        NoiseStream(super::rng::mix64(seed) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// Approximately normal (Irwin–Hall of 4 uniforms, rescaled to unit variance).
    fn normal(&mut self) -> f32 {
        let r = self.next();
        let s: u32 = (0..4).map(|i| ((r >> (16 * i)) & 0xFFFF) as u32).sum();
        (s as f32 / 65535.0 - 2.0) * (3.0f32).sqrt()
    }
}

fn gaussian_blur(data: &mut [f32], w: usize, h: usize, sigma: f32) {
    let r = (3.0 * sigma).ceil() as usize;
    let mut k: Vec<f32> =
        (0..=2 * r).map(|i| (-((i as f32 - r as f32).powi(2)) / (2.0 * sigma * sigma)).exp()).collect();
    let s: f32 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= s);
    let mut tmp = vec![0.0f32; w * h];
    for y in 0..h {
        let row = &data[y * w..(y + 1) * w];
        for x in 0..w {
            let mut acc = 0.0;
            for (i, kv) in k.iter().enumerate() {
                let xx = (x + i) as isize - r as isize;
                if xx >= 0 && (xx as usize) < w {
                    acc += kv * row[xx as usize];
                }
            }
            tmp[y * w + x] = acc;
        }
    }
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for (i, kv) in k.iter().enumerate() {
                let yy = (y + i) as isize - r as isize;
                if yy >= 0 && (yy as usize) < h {
                    acc += kv * tmp[yy as usize * w + x];
                }
            }
            data[y * w + x] = acc;
        }
    }
}

/// Area-average downscale.
fn resize_area(src: &[f32], w: usize, h: usize, nw: usize, nh: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; nw * nh];
    let (sx, sy) = (w as f32 / nw as f32, h as f32 / nh as f32);
    for y in 0..nh {
        let (y0, y1) = (y as f32 * sy, (y + 1) as f32 * sy);
        for x in 0..nw {
            let (x0, x1) = (x as f32 * sx, (x + 1) as f32 * sx);
            let mut acc = 0.0;
            let mut area = 0.0;
            let mut yy = y0.floor() as usize;
            while (yy as f32) < y1 && yy < h {
                let fy = (y1.min(yy as f32 + 1.0) - y0.max(yy as f32)).max(0.0);
                let mut xx = x0.floor() as usize;
                while (xx as f32) < x1 && xx < w {
                    let fx = (x1.min(xx as f32 + 1.0) - x0.max(xx as f32)).max(0.0);
                    acc += src[yy * w + xx] * fx * fy;
                    area += fx * fy;
                    xx += 1;
                }
                yy += 1;
            }
            out[y * nw + x] = if area > 0.0 { acc / area } else { 0.0 };
        }
    }
    out
}

fn resize_bilinear(src: &[f32], w: usize, h: usize, nw: usize, nh: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; nw * nh];
    let (sx, sy) = (w as f32 / nw as f32, h as f32 / nh as f32);
    for y in 0..nh {
        let fy = ((y as f32 + 0.5) * sy - 0.5).clamp(0.0, (h - 1) as f32);
        let (y0, ty) = (fy.floor() as usize, fy - fy.floor());
        let y1 = (y0 + 1).min(h - 1);
        for x in 0..nw {
            let fx = ((x as f32 + 0.5) * sx - 0.5).clamp(0.0, (w - 1) as f32);
            let (x0, tx) = (fx.floor() as usize, fx - fx.floor());
            let x1 = (x0 + 1).min(w - 1);
            let a = src[y0 * w + x0] * (1.0 - tx) + src[y0 * w + x1] * tx;
            let b = src[y1 * w + x0] * (1.0 - tx) + src[y1 * w + x1] * tx;
            out[y * nw + x] = a * (1.0 - ty) + b * ty;
        }
    }
    out
}
