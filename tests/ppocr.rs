//! PP-OCR parity with rapidocr (tools/fixtures/make_ppocr_fixtures.py): DB post-processing of the
//! same probability map (the PP-OCRv6 detector's output on the bundled sample, stored quantised)
//! gives rapidocr's boxes and scores.

use std::path::Path;

use anyhow::{ensure, Context, Result};
use folio::classic::db::{text_boxes, DbParams, TextBox};

/// A reference box's four corners.
fn corners_of(b: &serde_json::Value) -> Result<Vec<[f32; 2]>> {
    let points = b.as_array().context("box")?;
    let coord = |v: &serde_json::Value| v.as_f64().map(|v| v as f32).context("a coordinate");
    points.iter().map(|p| Ok([coord(&p[0])?, coord(&p[1])?])).collect()
}

/// The largest difference, along x or y, between `ours`' corners and `corners`.
fn corner_distance(ours: &TextBox, corners: &[[f32; 2]]) -> f32 {
    ours.corners.iter().zip(corners).map(|(a, b)| (a[0] - b[0]).abs().max((a[1] - b[1]).abs())).fold(0f32, f32::max)
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ppocr").join(name)
}

#[test]
fn db_post_processing_matches_rapidocr_on_the_sample() -> Result<()> {
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("sample-det-boxes.json"))?)?;
    let map = image::open(fixture("sample-det-map.png"))?.to_luma8();
    let (w, h) = map.dimensions();
    let prob: Vec<f32> = map.pixels().map(|p| p[0] as f32 / 255.0).collect();
    let src = &reference["src"];
    let src = (src[0].as_u64().context("src")? as u32, src[1].as_u64().context("src")? as u32);
    let ours = text_boxes(&prob, (w as usize, h as usize), src, &DbParams::default());

    let boxes = reference["boxes"].as_array().context("boxes")?;
    let scores = reference["scores"].as_array().context("scores")?;
    ensure!(ours.len() == boxes.len(), "{} boxes, rapidocr {}", ours.len(), boxes.len());
    let (mut worst_corner, mut worst_score, mut exact) = (0f32, 0f32, 0usize);
    for (b, s) in boxes.iter().zip(scores) {
        let corners = corners_of(b)?;
        let distance = |o: &TextBox| corner_distance(o, &corners);
        let nearest = ours.iter().min_by(|a, b| distance(a).total_cmp(&distance(b))).context("no boxes")?;
        worst_corner = worst_corner.max(distance(nearest));
        let diff = (nearest.score - s.as_f64().unwrap_or(f64::NAN) as f32).abs();
        worst_score = worst_score.max(diff);
        exact += usize::from(diff <= 1e-4);
    }
    eprintln!(
        "{} boxes; largest corner difference {worst_corner} px; {exact} scores equal to 1e-4, largest score \
         difference {worst_score}",
        ours.len()
    );
    // Same boxes to 2 px. Scores: 27 of 42 equal; the others are boxes a pixel off upright, where
    // OpenCV's minAreaRect and fillPoly settle near-ties and slanted edges otherwise than folio
    // (not yet matched: issue 21 stays open on it). The bounds below are today's, so a change that
    // moves folio further from rapidocr fails here.
    ensure!(worst_corner <= 2.0, "corner {worst_corner} px");
    ensure!(exact * 100 >= ours.len() * 60 && worst_score <= 0.1, "{exact} exact scores, worst {worst_score}");
    Ok(())
}

/// The recogniser that scripts/setup.sh installs carries its dictionary: blank + characters +
/// space make exactly its output classes, and a one-hot path through them decodes.
#[test]
fn the_recogniser_dictionary_matches_its_output_classes() -> Result<()> {
    use folio::classic::ctc::{decode, Dictionary};
    let model = folio::onnx::OnnxModel::load(&folio::assets::PPOCR_REC.locate()?, 1)?;
    let dict = Dictionary::from_metadata(&model.metadata("character")?.context("no character metadata")?)?;
    // One step of a blank-filled input through the network gives its class count.
    let (name, _) = model.input()?;
    let outputs = model.run_f32(&name, &[1, 3, 48, 64], vec![1.0; 3 * 48 * 64])?;
    let (_, shape, _) = outputs.first().context("an output")?;
    ensure!(shape.last() == Some(&dict.len()), "output {shape:?}, dictionary {} classes", dict.len());
    let mut probs = vec![0.0; 2 * dict.len()];
    probs[dict.len() - 1] = 1.0; // the space, last
    probs[dict.len() + 1] = 1.0; // the first character
    ensure!(decode(&probs, &dict)?.text.chars().count() == 2);
    Ok(())
}

/// The detector end to end (resize, network, post-processing) on the sample finds rapidocr's
/// boxes: the reference came from the 8-bit map, so a box may move by a few pixels.
#[test]
fn the_detector_finds_rapidocrs_boxes_on_the_sample() -> Result<()> {
    use folio::classic::detector::TextDetector;
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("sample-det-boxes.json"))?)?;
    let page = image::open(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pages/sample-two-columns.png"))?;
    let detector = TextDetector::load(&folio::assets::PPOCR_DET.locate()?, 2)?;
    let ours = detector.detect(&page.to_rgb8())?;
    let boxes = reference["boxes"].as_array().context("boxes")?;
    let mut worst = 0f32;
    for b in boxes {
        let corners = corners_of(b)?;
        let distance = |o: &TextBox| corner_distance(o, &corners);
        worst = worst.max(ours.iter().map(distance).fold(f32::MAX, f32::min));
    }
    eprintln!("{} boxes (rapidocr {}); largest corner difference {worst} px", ours.len(), boxes.len());
    ensure!(ours.len() == boxes.len() && worst <= 3.0, "{} vs {} boxes, worst {worst} px", ours.len(), boxes.len());
    Ok(())
}
