//! Helpers shared by the integration tests: the engine on the embedded model, and pages composed
//! from rendered lines. Each test crate uses some of them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use candle_core::{DType, Device};
use folio::engine::{Engine, EngineConfig};
use folio::layout::WholePage;
use folio::models::embedded;
use folio::models::paddleocr_vl::{reading, Checkpoint, ReadingSpec};
use folio::pipeline::page::{lay_out, LaidOutPage};
use folio::synth::LineStyle;
use folio::train::LINE_CROP;
use image::{DynamicImage, Rgb, RgbImage};

/// An engine on the embedded default model with a small KV pool.
pub fn default_engine() -> Result<Engine> {
    let ck = Arc::new(Checkpoint::load(&embedded::model_dir()?, DType::F32, &Device::Cpu)?);
    Engine::start(ck, EngineConfig { kv_cache_memory: 64 << 20, ..EngineConfig::default() })
}

/// The tiny random fixture checkpoint (a block model, as the released PaddleOCR-VL).
pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-paddleocr-vl")
}

/// A copy of the tiny fixture that declares itself a line model (48 px lines, OCR only), in a
/// directory of its own under the system's temporary directory.
pub fn line_model_fixture(name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("folio-line-fixture-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    for entry in std::fs::read_dir(fixture_dir())? {
        let entry = entry?;
        std::fs::copy(entry.path(), dir.join(entry.file_name()))?;
    }
    std::fs::write(dir.join(reading::FILE), ReadingSpec::lines(LINE_CROP.height).to_json())?;
    Ok(dir)
}

/// Pages as one text region each (no layout detection).
pub fn whole_pages(images: impl IntoIterator<Item = DynamicImage>) -> Result<Vec<LaidOutPage>> {
    images.into_iter().map(|image| lay_out(&WholePage, image)).collect()
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
