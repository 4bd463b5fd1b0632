//! Accuracy tooling: CER arithmetic, `folio eval cer`, and reading a rendered page line by line
//! (`ocr --page`) with the tiny random fixture model — structure only (lines found, their order,
//! the split of a too-wide line), never the text, which random weights make up.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use candle_core::{DType, Device};
use image::{DynamicImage, Rgb, RgbImage};

use common::{bare_style, fixture_dir, line_model_fixture, paste_dark, whole_pages};
use folio::engine::{Engine, EngineConfig};
use folio::models::paddleocr_vl::Checkpoint;
use folio::pipeline::metrics::{levenshtein, normalize_whitespace, CerTally};
use folio::pipeline::page::read_pages;
use folio::pipeline::reader::ReadOptions;
use folio::synth::{Generator, Style, SynthConfig};
use folio::train::LINE_CROP;

const LINE_HEIGHT: u32 = LINE_CROP.height;

fn folio() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_folio"));
    c.env_remove("FOLIO_MODEL");
    c
}

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("folio-eval-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn cer_counts_unicode_characters_over_total_reference_length() {
    assert_eq!(levenshtein("kitten", "sitting"), 3);
    assert_eq!(levenshtein("Straße", "Strasse"), 2);
    assert_eq!(levenshtein("", "abc"), 3);
    let mut t = CerTally::default();
    t.add("The quick brown fox", "The quick brown fox"); // 19 chars, exact
    t.add("jumps over", "jumps ovr"); // 10 chars, 1 edit
    t.add("the lazy dog.", "the 1azy dog"); // 13 chars, 2 edits
    assert_eq!((t.edits, t.chars, t.items, t.exact), (3, 42, 3, 1));
    assert!((t.cer() - 3.0 / 42.0).abs() < 1e-12, "total edits / total chars, not a mean of rates");
    assert_eq!(normalize_whitespace("  a  b\n\n\tc\u{c}\n"), "a b c");
}

#[test]
fn eval_cer_normalises_whitespace_of_pages() {
    let dir = tmp_dir("cer");
    let (r, h) = (dir.join("ref.txt"), dir.join("hyp.txt"));
    std::fs::write(&r, "   Chapter 1          3\n\nFirst  line of text.\n\u{c}").unwrap();
    std::fs::write(&h, "Chapter 1 3\nFirst line of test.").unwrap();
    let out =
        folio().args(["eval", "cer", "--json", "--reference"]).arg(&r).arg("--hypothesis").arg(&h).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // "Chapter 1 3 First line of text." (31 chars) vs "... of test.": one substitution.
    assert_eq!(v["edits"], 1);
    assert_eq!(v["chars"], 31);
    assert!((v["cer"].as_f64().unwrap() - 1.0 / 31.0).abs() < 1e-9);
    std::fs::remove_dir_all(dir).ok();
}

/// The widest piece (px at [`LINE_HEIGHT`]) in these tests, wider than the default so that only
/// the page's one long line needs a split.
const MAX_LINE_WIDTH: u32 = 1500;

/// A single-column page: a heading, body lines, and one line too wide for the model in one piece.
/// Returns the page and each line's (centre y, needs a split).
fn rendered_page() -> (RgbImage, Vec<(f32, bool)>) {
    let gen = Generator::new(SynthConfig::default()).expect("synthetic-data fonts (run scripts/setup.sh)");
    let serif = gen.face_index("Liberation Serif", Style::Regular).expect("Liberation Serif");
    let bold = gen.face_index("DejaVu Sans", Style::Bold).expect("DejaVu Sans Bold");
    let lines: [(&str, usize, f32); 5] = [
        ("1. Introduction", bold, 34.0),
        ("folio reads pages line by line with a small model.", serif, 22.0),
        ("A line much wider than the model was trained on, such as this one, is cut at a word gap near its middle and read in two pieces.", serif, 22.0),
        ("Short lines stay whole.", serif, 22.0),
        ("The end (of the page).", serif, 22.0),
    ];
    let mut page = RgbImage::from_pixel(1700, 420, Rgb([255, 255, 255]));
    let mut expected = Vec::new();
    let mut y = 30;
    for (text, face, px) in lines {
        let img = gen.draw(text, &bare_style(face, px)).expect("draw").image;
        paste_dark(&mut page, &img, 40, y);
        let wide = img.width() as u64 * LINE_HEIGHT as u64 > MAX_LINE_WIDTH as u64 * img.height() as u64;
        expected.push((y as f32 + img.height() as f32 / 2.0, wide));
        y += img.height() + 22;
    }
    assert!(expected.iter().filter(|e| e.1).count() == 1, "exactly one line is too wide: {expected:?}");
    (page, expected)
}

#[test]
fn page_lines_are_found_split_and_read_in_order() {
    let (page, expected) = rendered_page();
    let dir = line_model_fixture("lines").unwrap();
    let ck = Arc::new(Checkpoint::load(&dir, DType::F32, &Device::Cpu).expect("fixture checkpoint"));
    let engine = Engine::start(ck, EngineConfig { kv_cache_memory: 16 << 20, ..EngineConfig::default() }).unwrap();
    let opts = ReadOptions { max_tokens: 3, max_line_width: MAX_LINE_WIDTH, ..ReadOptions::default() };
    // Two pages at once (the second a copy): every line of both goes to the engine together.
    let pages = whole_pages([DynamicImage::ImageRgb8(page.clone()), DynamicImage::ImageRgb8(page)]).unwrap();
    let results = read_pages(&engine, pages, &opts);
    assert_eq!(results.len(), 2);
    let mut texts = Vec::new();
    for page in results {
        assert!(page.errors.is_empty(), "{:?}", page.errors);
        assert_eq!(page.regions.len(), 1, "one region: the whole page");
        let p = &page.regions[0];
        assert_eq!(p.read_as, "lines");
        assert_eq!(p.lines.len(), expected.len(), "{:?}", p.lines.iter().map(|l| l.bbox).collect::<Vec<_>>());
        for (line, &(cy, wide)) in p.lines.iter().zip(&expected) {
            assert!((line.bbox.center_y() - cy).abs() < 6.0, "{:?} vs centre {cy}", line.bbox);
            assert_eq!(line.pieces.len() > 1, wide, "{line:?}");
            // Pieces lie inside the line, left to right, each narrow enough once normalised.
            for w in line.pieces.windows(2) {
                assert!(w[0].x1 <= w[1].x0, "{line:?}");
            }
            for piece in &line.pieces {
                assert!(line.bbox.x0 <= piece.x0 && piece.x1 <= line.bbox.x1, "{line:?}");
                assert!(
                    (piece.x1 - piece.x0) as u64 * LINE_HEIGHT as u64
                        <= MAX_LINE_WIDTH as u64 * line.bbox.height() as u64,
                    "{line:?}"
                );
            }
        }
        assert!(p.lines.windows(2).all(|w| w[0].bbox.center_y() < w[1].bbox.center_y()), "top to bottom");
        texts.push(page.text());
    }
    // Greedy decoding is batch-invariant: the same crops read the same whichever page they are on.
    assert_eq!(texts[0], texts[1]);
    assert_eq!(engine.stats().blocks_used, 0);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn ocr_page_cli_prints_json_per_page() {
    let (page, expected) = rendered_page();
    let dir = tmp_dir("page");
    let path = dir.join("page.png");
    page.save(&path).unwrap();
    let model = line_model_fixture("cli").unwrap();
    let out = folio()
        .args(["ocr", "--page", "--json", "--layout", "none", "--max-tokens", "3", "--kv-cache-memory", "16MiB"])
        .args(["--max-line-width", &MAX_LINE_WIDTH.to_string(), "--model"])
        .arg(&model)
        .arg(&path)
        .output()
        .unwrap();
    std::fs::remove_dir_all(model).ok();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pages = v.as_array().unwrap();
    assert_eq!(pages.len(), 1);
    let lines = pages[0]["page"]["regions"][0]["lines"].as_array().unwrap();
    assert_eq!(lines.len(), expected.len());
    for (l, &(_, wide)) in lines.iter().zip(&expected) {
        assert_eq!(l["bbox"].as_array().unwrap().len(), 4);
        assert_eq!(l["pieces"].as_array().unwrap().len() > 1, wide, "{l}");
        assert!(l["text"].is_string());
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn eval_lines_cli_reports_cer_on_synthetic_lines() {
    let out = folio()
        .args([
            "eval",
            "lines",
            "--split",
            "eval-font",
            "--count",
            "3",
            "--max-tokens",
            "3",
            "--kv-cache-memory",
            "16MiB",
            "--json",
            "--model",
        ])
        .arg(fixture_dir())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["count"], 3);
    assert_eq!(v["split"], "eval-font");
    assert!(v["chars"].as_u64().unwrap() > 0);
    assert!(v["cer"].as_f64().unwrap() >= 0.0);
    assert_eq!(v["worst"].as_array().unwrap().len(), 3);
    // The held-out font family only.
    for f in v["by_family"].as_array().unwrap() {
        assert!(f["family"].as_str().unwrap().starts_with("Latin Modern Roman"), "{f}");
    }
}
