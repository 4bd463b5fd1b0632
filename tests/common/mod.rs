//! Helpers shared by the integration tests: the engine on the embedded model, and pages composed
//! from rendered lines. Each test crate uses some of them.
#![allow(dead_code)]

use std::sync::Arc;

use anyhow::Result;
use candle_core::{DType, Device};
use folio::engine::{Engine, EngineConfig};
use folio::models::embedded;
use folio::models::paddleocr_vl::Checkpoint;
use folio::synth::LineStyle;
use image::{Rgb, RgbImage};

/// An engine on the embedded default model with a small KV pool.
pub fn default_engine() -> Result<Engine> {
    let ck = Arc::new(Checkpoint::load(&embedded::model_dir()?, DType::F32, &Device::Cpu)?);
    Engine::start(ck, EngineConfig { kv_cache_memory: 64 << 20, ..EngineConfig::default() })
}

/// Pastes the dark pixels of `img` onto `page` at (x, y): the darker of the two per channel, so
/// lines drawn on white compose like ink on paper.
pub fn paste_dark(page: &mut RgbImage, img: &RgbImage, x: u32, y: u32) {
    for (ix, iy, p) in img.enumerate_pixels() {
        if let Some(q) = page.get_pixel_mut_checked(x + ix, y + iy) {
            *q = Rgb([q.0[0].min(p.0[0]), q.0[1].min(p.0[1]), q.0[2].min(p.0[2])]);
        }
    }
}

/// A clean style with no padding and no line box: a line as it is drawn onto a page.
pub fn bare_style(face: usize, px: f32) -> LineStyle {
    LineStyle { pad: [0.0; 4], line_box: false, ..LineStyle::clean(face, px) }
}
