//! `folio parse --format pdf`: searchable PDFs read back with poppler's `pdftotext -bbox`, the
//! words and their boxes checked against what folio recognised (its JSON). Scanned PDFs with a
//! classic cross-reference table and with a cross-reference stream, a page shown turned by
//! `/Rotate`, a born-digital PDF (keeps its own text, no second layer), an encrypted PDF (written
//! as page images) and a JPEG (stored as it is). Needs libpdfium, ONNX Runtime, the layout model and
//! poppler-utils (scripts/setup.sh).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{bail, ensure, Context, Result};

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(path)
}

/// The inputs, parsed once into one output directory.
fn parsed() -> Result<&'static Path> {
    static OUT: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    let out = OUT.get_or_init(|| parse_all().map_err(|e| format!("{e:#}")));
    out.as_deref().map_err(|e| anyhow::anyhow!("{e}"))
}

fn parse_all() -> Result<PathBuf> {
    let out = std::env::temp_dir().join(format!("folio-searchable-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let inputs = out.join("in");
    std::fs::create_dir_all(&inputs)?;
    for name in ["pdfs/scanned-table-xref.pdf", "pdfs/scanned-xref-stream.pdf", "pages/sample-two-columns.pdf"] {
        std::fs::copy(fixture(name), inputs.join(Path::new(name).file_name().context("name")?))?;
    }
    let scan = image::open(fixture("pages/sample-two-columns.png"))?.to_rgb8();
    scan.save_with_format(inputs.join("photo.jpg"), image::ImageFormat::Jpeg)?;
    let run = Command::new(env!("CARGO_BIN_EXE_folio"))
        .arg("parse")
        .arg(&inputs)
        .arg(fixture("pdfs/encrypted.pdf"))
        .args(["--format", "json,pdf", "--password", "folio", "--out"])
        .arg(out.join("out"))
        .env_remove("FOLIO_MODEL")
        .output()?;
    ensure!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    Ok(out)
}

/// A word with its box (points, origin at the displayed page's top left).
#[derive(Debug, Clone)]
struct Word {
    text: String,
    x0: f32,
    y0: f32,
    x1: f32,
    y1: f32,
}

/// `pdftotext -bbox` of page `page` (1-based): the page's size in points and its words.
fn pdftotext_words(pdf: &Path, page: usize) -> Result<((f32, f32), Vec<Word>)> {
    let p = page.to_string();
    let run = Command::new("pdftotext")
        .args(["-bbox", "-f", &p, "-l", &p])
        .arg(pdf)
        .arg("-")
        .output()
        .context("pdftotext (poppler-utils, installed by scripts/setup.sh)")?;
    ensure!(run.status.success(), "pdftotext: {}", String::from_utf8_lossy(&run.stderr));
    let xml = String::from_utf8(run.stdout)?;
    let attr = |tag: &str, name: &str| -> Result<f32> {
        let start = tag.find(&format!("{name}=\"")).context(name.to_string())? + name.len() + 2;
        let end = tag[start..].find('"').context("quote")? + start;
        Ok(tag[start..end].parse()?)
    };
    let page_tag = xml.lines().find(|l| l.trim_start().starts_with("<page ")).context("no page")?;
    let size = (attr(page_tag, "width")?, attr(page_tag, "height")?);
    let mut words = Vec::new();
    for line in xml.lines().map(str::trim).filter(|l| l.starts_with("<word ")) {
        let text = line.split('>').nth(1).and_then(|t| t.split('<').next()).unwrap_or("");
        let text = text.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"");
        let (x0, y0, x1, y1) = (attr(line, "xMin")?, attr(line, "yMin")?, attr(line, "xMax")?, attr(line, "yMax")?);
        words.push(Word { text, x0, y0, x1, y1 });
    }
    Ok((size, words))
}

/// What folio recognised on page `page` (0-based) of its JSON: each line's words with the line's box
/// in points of a `size` page.
fn recognised_words(json: &serde_json::Value, page: usize, size: (f32, f32)) -> Result<Vec<Word>> {
    let p = &json["pages"][page];
    let (w, h) = (p["width"].as_f64().context("width")? as f32, p["height"].as_f64().context("height")? as f32);
    // pdftotext gives a turned page's size unturned, and its words as displayed.
    let size = if (w > h) != (size.0 > size.1) { (size.1, size.0) } else { size };
    let (sx, sy) = (size.0 / w, size.1 / h);
    let mut words = Vec::new();
    for region in p["regions"].as_array().context("regions")? {
        for line in region["lines"].as_array().into_iter().flatten() {
            let b: Vec<f32> =
                line["bbox"].as_array().context("bbox")?.iter().filter_map(|v| v.as_f64()).map(|v| v as f32).collect();
            ensure!(b.len() == 4, "bbox {b:?}");
            for text in line["text"].as_str().unwrap_or("").split_whitespace() {
                let text = text.to_string();
                words.push(Word { text, x0: b[0] * sx, y0: b[1] * sy, x1: b[2] * sx, y1: b[3] * sy });
            }
        }
    }
    Ok(words)
}

/// The layer of page `page` holds exactly the recognised words, each inside its line's box.
fn check_layer(pdf: &Path, json: &serde_json::Value, page: usize) -> Result<Vec<Word>> {
    let (size, found) = pdftotext_words(pdf, page + 1)?;
    let expected = recognised_words(json, page, size)?;
    ensure!(expected.len() > 100, "page {}: only {} words recognised", page + 1, expected.len());
    let sorted = |words: &[Word]| {
        let mut t: Vec<String> = words.iter().map(|w| w.text.clone()).collect();
        t.sort();
        t
    };
    ensure!(
        sorted(&found) == sorted(&expected),
        "page {}: the layer's words differ from the recognised ones",
        page + 1
    );
    for word in &found {
        let (cx, cy) = ((word.x0 + word.x1) / 2.0, (word.y0 + word.y1) / 2.0);
        let inside = expected.iter().any(|e| {
            e.text == word.text
                && e.x0 - 1.0 <= word.x0
                && word.x1 <= e.x1 + 1.0
                && e.y0 <= cy
                && cy <= e.y1
                && e.x0 <= cx
        });
        ensure!(inside, "page {}: {word:?} is not inside a recognised line that holds it", page + 1);
    }
    Ok(found)
}

fn json_of(out: &Path, stem: &str) -> Result<serde_json::Value> {
    Ok(serde_json::from_str(&std::fs::read_to_string(out.join(format!("out/{stem}.json")))?)?)
}

#[test]
fn a_scanned_pdf_gets_a_text_layer_on_its_original_bytes() -> Result<()> {
    let out = parsed()?;
    for stem in ["scanned-table-xref", "scanned-xref-stream"] {
        let original = std::fs::read(out.join(format!("in/{stem}.pdf")))?;
        let pdf = out.join(format!("out/{stem}.pdf"));
        let written = std::fs::read(&pdf)?;
        ensure!(written.starts_with(&original), "{stem}: the original bytes are not kept as they were");
        let json = json_of(out, stem)?;
        let upright = check_layer(&pdf, &json, 0)?;
        // Page 2 is the same image on a landscape page shown turned by /Rotate 90: its words land
        // where page 1's do on the page as displayed.
        let turned = check_layer(&pdf, &json, 1)?;
        let first = |words: &[Word]| words.iter().map(|w| (w.x0, w.y0)).take(20).collect::<Vec<_>>();
        for ((a, b), (c, d)) in first(&upright).into_iter().zip(first(&turned)) {
            ensure!((a - c).abs() < 1.0 && (b - d).abs() < 1.0, "{stem}: rotated page words moved");
        }
    }
    Ok(())
}

#[test]
fn a_born_digital_pdf_keeps_its_own_text_and_gets_no_second_layer() -> Result<()> {
    let out = parsed()?;
    let text = |pdf: &Path| -> Result<String> {
        let run = Command::new("pdftotext").arg(pdf).arg("-").output()?;
        Ok(String::from_utf8(run.stdout)?)
    };
    let original = out.join("in/sample-two-columns.pdf");
    let pdf = out.join("out/sample-two-columns.pdf");
    ensure!(std::fs::read(&pdf)?.starts_with(&std::fs::read(&original)?));
    let (before, after) = (text(&original)?, text(&pdf)?);
    ensure!(before.len() > 1000 && before == after, "the text changed:\n{before}\n---\n{after}");
    Ok(())
}

#[test]
fn an_encrypted_pdf_becomes_page_images_with_the_layer() -> Result<()> {
    let out = parsed()?;
    let pdf = out.join("out/encrypted.pdf");
    let json = json_of(out, "encrypted")?;
    let (_, words) = pdftotext_words(&pdf, 1)?;
    let (_, expected) = pdftotext_words(&fixture("pdfs/two-pages.pdf"), 1)?;
    ensure!(!words.is_empty() && words.len() == recognised_words(&json, 0, (612.0, 792.0))?.len());
    // The plain original's words, found again by reading the page.
    let hits = expected.iter().filter(|e| words.iter().any(|w| w.text == e.text)).count();
    ensure!(hits * 10 >= expected.len() * 8, "{hits} of {} words found: {words:?}", expected.len());
    Ok(())
}

#[test]
fn a_jpeg_is_stored_as_it_is_under_its_layer() -> Result<()> {
    let out = parsed()?;
    let jpeg = std::fs::read(out.join("in/photo.jpg"))?;
    let pdf = out.join("out/photo.pdf");
    let written = std::fs::read(&pdf)?;
    if !written.windows(jpeg.len()).any(|w| w == jpeg.as_slice()) {
        bail!("the JPEG's bytes are not in the PDF");
    }
    let json = json_of(out, "photo")?;
    let words = check_layer(&pdf, &json, 0)?;
    // 1275 x 1650 pixels at 300 dpi: a 306 x 396 point page.
    let (size, _) = pdftotext_words(&pdf, 1)?;
    ensure!((size.0 - 306.0).abs() < 0.5 && (size.1 - 396.0).abs() < 0.5, "{size:?}");
    ensure!(words.iter().any(|w| w.text == "Tables"), "{words:?}");
    Ok(())
}

/// Chinese selects and copies as the characters recognised: every code maps back through the
/// font's ToUnicode map.
#[test]
fn chinese_text_in_the_layer_reads_back_as_itself() -> Result<()> {
    use folio::layout::BBox;
    use folio::searchable::images::{ImagePdf, PageImage};
    use folio::searchable::PlacedLine;
    let dir = std::env::temp_dir().join(format!("folio-searchable-zh-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let pdf = dir.join("zh.pdf");
    let mut out = ImagePdf::create(&pdf, 300.0)?;
    let page = image::RgbImage::from_pixel(1200, 600, image::Rgb([255, 255, 255]));
    let lines = [
        PlacedLine { bbox: BBox::new(100.0, 100.0, 700.0, 160.0), text: "文档解析 与 搜索".into() },
        PlacedLine { bbox: BBox::new(100.0, 300.0, 900.0, 350.0), text: "PaddleOCR-VL 模型".into() },
    ];
    out.add_page(PageImage::Pixels(&page), &lines)?;
    out.finish()?;
    let (_, words) = pdftotext_words(&pdf, 1)?;
    let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
    ensure!(texts == ["文档解析", "与", "搜索", "PaddleOCR-VL", "模型"], "{texts:?}");
    // 300 dpi: pixel 100 is 24 points in; the first line spans 24..168 points.
    ensure!((words[0].x0 - 24.0).abs() < 0.5 && (words[2].x1 - 168.0).abs() < 0.5, "{words:?}");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
