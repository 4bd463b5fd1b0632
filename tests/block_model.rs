//! The block-model path on the tiny random PaddleOCR-VL fixture (no `folio.json`: it reads whole
//! regions and all four tasks, as the released checkpoint): each region goes to the model whole
//! with its class's prompt, tables come back through OTSL, formulas as `$$…$$`, figures are kept
//! as images. The weights are random, so the structure is checked, never the text.

mod common;

use std::sync::Arc;

use anyhow::{ensure, Result};
use candle_core::{DType, Device};
use common::fixture_dir;
use folio::engine::{Engine, EngineConfig};
use folio::layout::order::Ordered;
use folio::layout::{BBox, Region, RegionClass};
use folio::models::paddleocr_vl::{Checkpoint, Reads};
use folio::pipeline::page::{read_pages, LaidOutPage};
use folio::pipeline::reader::ReadOptions;
use folio::pipeline::writer::{markdown, ReadDocument};
use image::{DynamicImage, Rgb, RgbImage};

fn region(class: RegionClass, bbox: BBox) -> Ordered {
    Ordered { region: Region { class, label: format!("{class:?}").to_lowercase(), bbox, score: 0.9 }, caption_of: None }
}

#[test]
fn a_block_model_reads_each_region_whole_with_its_task() -> Result<()> {
    let ck = Arc::new(Checkpoint::load(&fixture_dir(), DType::F32, &Device::Cpu)?);
    ensure!(ck.reading.reads == Reads::Blocks, "the fixture is a block model");
    let engine = Engine::start(ck, EngineConfig { kv_cache_memory: 16 << 20, ..EngineConfig::default() })?;
    // A page with four patterned blocks where the regions are.
    let page =
        RgbImage::from_fn(
            600,
            400,
            |x, y| if (x / 7 + y / 5) % 3 == 0 { Rgb([30, 30, 30]) } else { Rgb([250, 250, 250]) },
        );
    let regions = vec![
        region(RegionClass::Title, BBox::new(20.0, 10.0, 300.0, 40.0)),
        region(RegionClass::Table, BBox::new(20.0, 60.0, 580.0, 200.0)),
        region(RegionClass::Formula, BBox::new(100.0, 220.0, 500.0, 260.0)),
        region(RegionClass::Figure, BBox::new(20.0, 280.0, 300.0, 390.0)),
    ];
    let laid_out = LaidOutPage { image: DynamicImage::ImageRgb8(page), regions, layout: "test".into() };
    let opts = ReadOptions { max_block_tokens: 6, ..ReadOptions::default() };
    let mut pages = read_pages(&engine, vec![laid_out], &opts);
    let page = &pages[0];
    ensure!(page.errors.is_empty(), "{:?}", page.errors);
    let read_as: Vec<&str> = page.regions.iter().map(|r| r.read_as).collect();
    ensure!(read_as == ["ocr", "table", "formula", "none"], "{read_as:?}");
    // One request per region: each text region is one "line", the region itself.
    ensure!(page.regions[0].lines.len() == 1 && page.regions[0].lines[0].bbox.x0 <= 20);
    ensure!(page.regions[1].table.is_some(), "the table's OTSL is parsed into a grid");
    ensure!(page.regions[3].crop.is_some() && page.regions[3].text.is_empty(), "figures are kept, not read");
    let formula = page.regions[2].text.clone();
    let doc = ReadDocument { source: std::path::Path::new("page.png"), dpi: 150.0, pages: std::mem::take(&mut pages) };
    let md = markdown(&doc);
    if !formula.trim().is_empty() {
        ensure!(md.contains(&format!("$$\n{}\n$$", formula.trim())), "{md}");
    }
    ensure!(engine.stats().blocks_used == 0);
    Ok(())
}
