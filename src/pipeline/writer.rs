//! Writers: a read document as Markdown or JSON, written atomically (a temporary file renamed into
//! place), so an interrupted run never leaves a half-written output that a rerun would skip.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::ValueEnum;
use serde::Serialize;

use super::page::PageText;

/// An output format of `folio parse`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Markdown: each page's text, pages marked by `<!-- page N -->` comments.
    Md,
    /// JSON: per page its size and lines with boxes (pixels at the rendering dpi) and texts.
    Json,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Md => "md",
            Format::Json => "json",
        }
    }
}

/// A document once read: its source and its pages in order.
pub struct ReadDocument<'a> {
    pub source: &'a Path,
    pub dpi: f32,
    pub pages: &'a [PageText],
}

/// The Markdown of a document. Until layout detection exists, a page is its lines of text.
pub fn markdown(doc: &ReadDocument) -> String {
    let mut out = String::new();
    for (i, page) in doc.pages.iter().enumerate() {
        if doc.pages.len() > 1 {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&format!("<!-- page {} -->\n\n", i + 1));
        }
        let text = page.text();
        if !text.is_empty() {
            out.push_str(&text);
            out.push('\n');
        }
    }
    out
}

#[derive(Serialize)]
struct JsonPage<'a> {
    page: usize,
    #[serde(flatten)]
    text: &'a PageText,
}

/// The JSON of a document: `{source, dpi, pages: [{page, width, height, lines: [{bbox, pieces,
/// text}]}]}`.
pub fn json(doc: &ReadDocument) -> Result<String> {
    let pages: Vec<JsonPage> = doc.pages.iter().enumerate().map(|(i, text)| JsonPage { page: i + 1, text }).collect();
    let value = serde_json::json!({
        "source": doc.source.display().to_string(),
        "dpi": doc.dpi,
        "pages": pages,
    });
    Ok(serde_json::to_string_pretty(&value)? + "\n")
}

/// `stem` with `format`'s extension: `out/report` → `out/report.md`.
pub fn output_path(stem: &Path, format: Format) -> PathBuf {
    let mut name = stem.as_os_str().to_owned();
    name.push(".");
    name.push(format.extension());
    PathBuf::from(name)
}

/// Writes `doc` in every format next to `stem`; returns the files written.
pub fn write_document(doc: &ReadDocument, stem: &Path, formats: &[Format]) -> Result<Vec<PathBuf>> {
    let mut written = Vec::with_capacity(formats.len());
    for &format in formats {
        let contents = match format {
            Format::Md => markdown(doc),
            Format::Json => json(doc)?,
        };
        let path = output_path(stem, format);
        write_atomically(&path, contents.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}

/// Writes `bytes` to a temporary file beside `path`, then renames it into place.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot move {} into place", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::lines::LineBox;
    use crate::pipeline::page::PageLine;

    fn page(lines: &[&str]) -> PageText {
        let lines = lines
            .iter()
            .enumerate()
            .map(|(i, t)| PageLine {
                bbox: LineBox { x0: 10, y0: 20 * i as u32, x1: 300, y1: 20 * i as u32 + 16 },
                pieces: Vec::new(),
                text: t.to_string(),
            })
            .collect();
        PageText { width: 1275, height: 1650, lines, errors: Vec::new() }
    }

    #[test]
    fn one_page_is_its_lines_and_pages_are_marked() {
        let one = [page(&["Title", "", "body text"])];
        let doc = ReadDocument { source: Path::new("a.png"), dpi: 150.0, pages: &one };
        assert_eq!(markdown(&doc), "Title\nbody text\n");
        let two = [page(&["first"]), page(&[]), page(&["third"])];
        let doc = ReadDocument { source: Path::new("a.pdf"), dpi: 150.0, pages: &two };
        assert_eq!(markdown(&doc), "<!-- page 1 -->\n\nfirst\n\n<!-- page 2 -->\n\n\n<!-- page 3 -->\n\nthird\n");
    }

    #[test]
    fn json_numbers_pages_and_keeps_boxes() -> Result<()> {
        let pages = [page(&["a", "b"])];
        let doc = ReadDocument { source: Path::new("in/a.png"), dpi: 150.0, pages: &pages };
        let v: serde_json::Value = serde_json::from_str(&json(&doc)?)?;
        assert_eq!(v["source"], "in/a.png");
        assert_eq!(v["pages"][0]["page"], 1);
        assert_eq!(v["pages"][0]["width"], 1275);
        assert_eq!(v["pages"][0]["lines"][1]["bbox"], serde_json::json!([10, 20, 300, 36]));
        assert_eq!(v["pages"][0]["lines"][1]["text"], "b");
        Ok(())
    }

    #[test]
    fn outputs_replace_old_ones_whole() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("folio-writer-{}", std::process::id()));
        let stem = dir.join("sub").join("report.v2");
        let pages = [page(&["new text"])];
        let doc = ReadDocument { source: Path::new("report.v2.pdf"), dpi: 150.0, pages: &pages };
        std::fs::create_dir_all(dir.join("sub"))?;
        std::fs::write(dir.join("sub/report.v2.md"), "old text that is longer\n")?;
        let written = write_document(&doc, &stem, &[Format::Md, Format::Json])?;
        assert_eq!(written, vec![dir.join("sub/report.v2.md"), dir.join("sub/report.v2.json")]);
        assert_eq!(std::fs::read_to_string(&written[0])?, "new text\n");
        let leftovers = std::fs::read_dir(dir.join("sub"))?.count();
        assert_eq!(leftovers, 2, "no temporary files stay behind");
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
