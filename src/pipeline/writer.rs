//! Writers: a read document as Markdown or JSON, written atomically (a temporary file renamed into
//! place), so an interrupted run never leaves a half-written output that a rerun would skip.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::ValueEnum;
use serde::Serialize;

use super::page::{ParsedPage, ParsedRegion};
use crate::layout::RegionClass;
use crate::searchable::SearchablePdf;

/// An output format of `folio parse`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Markdown: each page's regions in reading order (headings, paragraphs, tables, formulas,
    /// linked pictures), pages marked by `<!-- page N -->` comments.
    Md,
    /// JSON: per page its size and regions (class, box, reading index, score, text, lines with
    /// boxes in pixels at the rendering dpi, the model's task).
    Json,
    /// Searchable PDF: the original pages (a PDF's own content, or the image) with the recognised
    /// text as an invisible layer over each line.
    Pdf,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Md => "md",
            Format::Json => "json",
            Format::Pdf => "pdf",
        }
    }
}

/// A document once read: its source and its pages in order.
pub struct ReadDocument<'a> {
    pub source: &'a Path,
    pub dpi: f32,
    pub pages: Vec<ParsedPage>,
}

/// The Markdown of one region; empty for page furniture and for regions with nothing to show.
fn region_markdown(r: &ParsedRegion) -> String {
    if r.class.is_furniture() {
        return String::new();
    }
    if let Some(image) = &r.image {
        let alt = format!("{:?}", r.class).to_lowercase();
        return format!("![{alt}]({})", image.replace(' ', "%20"));
    }
    let text = r.text.trim();
    if text.is_empty() {
        return String::new();
    }
    match (r.class, r.read_as) {
        (RegionClass::DocTitle, _) => format!("# {}", text.replace('\n', " ")),
        (RegionClass::Title, _) => format!("## {}", text.replace('\n', " ")),
        (RegionClass::Code, _) => format!("```\n{text}\n```"),
        (RegionClass::Formula, "formula") => format!("$$\n{text}\n$$"),
        _ => text.to_string(),
    }
}

/// The Markdown of page `index` (0-based) of a `count`-page document: its regions in reading
/// order, blocks apart by a blank line (titles as headings, tables as pipe tables or HTML, formulas
/// as `$$…$$`, pictures linked); headers, footers and page numbers are left out. Pages of a longer
/// document start with a `<!-- page N -->` comment.
pub fn page_markdown(index: usize, page: &ParsedPage, count: usize) -> String {
    let mut out = String::new();
    if count > 1 {
        if index > 0 {
            out.push('\n');
        }
        out.push_str(&format!("<!-- page {} -->\n\n", index + 1));
    }
    let blocks: Vec<String> = page.regions.iter().map(region_markdown).filter(|b| !b.is_empty()).collect();
    for (k, b) in blocks.iter().enumerate() {
        if k > 0 {
            out.push('\n');
        }
        out.push_str(b.trim_end());
        out.push('\n');
    }
    out
}

/// The Markdown of a whole document ([`page_markdown`] of each page).
pub fn markdown(doc: &ReadDocument) -> String {
    doc.pages.iter().enumerate().map(|(i, page)| page_markdown(i, page, doc.pages.len())).collect()
}

#[derive(Serialize)]
struct JsonPage<'a> {
    page: usize,
    #[serde(flatten)]
    parsed: &'a ParsedPage,
}

/// The JSON of a document: `{source, dpi, pages: [{page, width, height, layout, regions: [{index,
/// class, label, bbox, score, caption_of, read_as, text, lines: [{bbox, pieces, text}], table,
/// image, note}]}]}`; boxes are `[x0, y0, x1, y1]` in pixels of the page as read.
pub fn json(doc: &ReadDocument) -> Result<String> {
    let pages: Vec<JsonPage> =
        doc.pages.iter().enumerate().map(|(i, parsed)| JsonPage { page: i + 1, parsed }).collect();
    let value = serde_json::json!({
        "source": doc.source.display().to_string(),
        "dpi": doc.dpi,
        "pages": pages,
    });
    Ok(serde_json::to_string_pretty(&value)? + "\n")
}

/// Where a document's pictures go: `stem` + `_images/`.
pub fn images_dir(stem: &Path) -> PathBuf {
    let mut name = stem.as_os_str().to_owned();
    name.push("_images");
    PathBuf::from(name)
}

/// Saves every picture of page `index` into [`images_dir`] (`page-P-region-R-CLASS.png`),
/// records the file, relative to the Markdown, in its region and drops the pixels.
fn save_page_pictures(index: usize, page: &mut ParsedPage, stem: &Path) -> Result<Vec<PathBuf>> {
    let dir = images_dir(stem);
    let rel_dir = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut written = Vec::new();
    for r in &mut page.regions {
        let Some(crop) = r.crop.take() else { continue };
        let class = format!("{:?}", r.class).to_lowercase();
        let name = format!("page-{}-region-{}-{class}.png", index + 1, r.index + 1);
        let mut png = Vec::new();
        crop.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .with_context(|| format!("encoding {name}"))?;
        let path = dir.join(&name);
        write_atomically(&path, &png)?;
        r.image = Some(format!("{rel_dir}/{name}"));
        written.push(path);
    }
    Ok(written)
}

/// A document's outputs written page by page as its pages are read, so a 2,000-page document
/// never sits in memory: each page's pictures are saved at once, its Markdown and JSON appended to
/// temporary files that are renamed into place by [`finish`](Self::finish). Dropped unfinished
/// (the document failed), it removes its temporary files; pictures already saved stay, and are
/// written again by a rerun.
pub struct DocumentSink {
    stem: PathBuf,
    page_count: usize,
    pages: usize,
    /// Per text format: the temporary file, its final path and the open writer.
    outputs: Vec<(Format, PathBuf, PathBuf, std::io::BufWriter<std::fs::File>)>,
    /// The searchable PDF: its temporary file, final path and writer.
    pdf: Option<(PathBuf, PathBuf, SearchablePdf)>,
    pictures: Vec<PathBuf>,
}

impl DocumentSink {
    /// Starts the outputs of a `page_count`-page document read from `source` at `dpi`.
    pub fn create(source: &Path, dpi: f32, stem: &Path, formats: &[Format], page_count: usize) -> Result<Self> {
        if let Some(dir) = stem.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let mut sink = DocumentSink {
            stem: stem.to_path_buf(),
            page_count,
            pages: 0,
            outputs: Vec::new(),
            pdf: None,
            pictures: Vec::new(),
        };
        for &format in formats {
            let path = output_path(stem, format);
            let tmp = temporary_path(&path);
            if format == Format::Pdf {
                let pdf = SearchablePdf::create(source, page_count, dpi, &tmp);
                let pdf = pdf.inspect_err(|_| {
                    let _ = std::fs::remove_file(&tmp);
                })?;
                sink.pdf = Some((tmp, path, pdf));
                continue;
            }
            let file = std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
            sink.outputs.push((format, tmp, path, std::io::BufWriter::new(file)));
        }
        let head = format!(
            "{{\n  \"source\": {},\n  \"dpi\": {},\n  \"pages\": [",
            serde_json::to_string(&source.display().to_string())?,
            serde_json::to_string(&dpi)?
        );
        sink.append(Format::Json, head.as_bytes())?;
        Ok(sink)
    }

    fn append(&mut self, format: Format, bytes: &[u8]) -> Result<()> {
        use std::io::Write;
        for (f, tmp, _, w) in &mut self.outputs {
            if *f == format {
                w.write_all(bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
            }
        }
        Ok(())
    }

    /// Writes the next page.
    pub fn add_page(&mut self, mut page: ParsedPage) -> Result<()> {
        let index = self.pages;
        if let Some((tmp, _, pdf)) = &mut self.pdf {
            pdf.add_page(&page).with_context(|| format!("cannot write {}", tmp.display()))?;
        }
        page.image = None;
        self.pictures.extend(save_page_pictures(index, &mut page, &self.stem)?);
        self.append(Format::Md, page_markdown(index, &page, self.page_count).as_bytes())?;
        let json = serde_json::to_string_pretty(&JsonPage { page: index + 1, parsed: &page })?;
        let json = format!("{}\n    {}", if index > 0 { "," } else { "" }, json.replace('\n', "\n    "));
        self.append(Format::Json, json.as_bytes())?;
        self.pages += 1;
        Ok(())
    }

    /// Closes the outputs and moves them into place; returns every file written.
    pub fn finish(mut self) -> Result<Vec<PathBuf>> {
        self.append(Format::Json, b"\n  ]\n}\n")?;
        let mut written = std::mem::take(&mut self.pictures);
        for (_, tmp, path, w) in std::mem::take(&mut self.outputs) {
            let file = w.into_inner().map_err(|e| anyhow::anyhow!("cannot write {}: {}", tmp.display(), e.error()))?;
            file.sync_all().ok();
            drop(file);
            if let Err(e) = std::fs::rename(&tmp, &path) {
                let _ = std::fs::remove_file(&tmp);
                return Err(e).with_context(|| format!("cannot move {} into place", path.display()));
            }
            written.push(path);
        }
        if let Some((tmp, path, pdf)) = self.pdf.take() {
            let moved = pdf.finish().and_then(|()| {
                std::fs::rename(&tmp, &path).with_context(|| format!("cannot move {} into place", path.display()))
            });
            if let Err(e) = moved {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            written.push(path);
        }
        Ok(written)
    }
}

impl Drop for DocumentSink {
    fn drop(&mut self) {
        let pdf = self.pdf.take().map(|(tmp, _, _)| tmp);
        for tmp in self.outputs.drain(..).map(|(_, tmp, _, _)| tmp).chain(pdf) {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    PathBuf::from(tmp)
}

/// `stem` with `format`'s extension: `out/report` → `out/report.md`.
pub fn output_path(stem: &Path, format: Format) -> PathBuf {
    let mut name = stem.as_os_str().to_owned();
    name.push(".");
    name.push(format.extension());
    PathBuf::from(name)
}

/// Writes `doc` in every format next to `stem` (through a [`DocumentSink`]); returns the files
/// written, pictures first.
pub fn write_document(doc: &mut ReadDocument, stem: &Path, formats: &[Format]) -> Result<Vec<PathBuf>> {
    let mut sink = DocumentSink::create(doc.source, doc.dpi, stem, formats, doc.pages.len())?;
    for page in std::mem::take(&mut doc.pages) {
        sink.add_page(page)?;
    }
    sink.finish()
}

/// Writes `bytes` to a temporary file beside `path`, then renames it into place.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = temporary_path(path);
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
    use crate::layout::lines::LineBox;
    use crate::layout::BBox;
    use crate::pipeline::reader::PageLine;
    use crate::pipeline::table::Table;

    fn region(index: usize, class: RegionClass, text: &str) -> ParsedRegion {
        let y = 40.0 * index as f32;
        ParsedRegion {
            index,
            class,
            label: format!("{class:?}").to_lowercase(),
            bbox: BBox::new(10.0, y, 300.0, y + 30.0),
            score: 0.9,
            caption_of: None,
            read_as: "lines",
            text: text.to_string(),
            lines: vec![PageLine {
                bbox: LineBox { x0: 10, y0: y as u32, x1: 300, y1: y as u32 + 16 },
                pieces: Vec::new(),
                text: text.to_string(),
            }],
            table: None,
            image: None,
            note: None,
            crop: None,
        }
    }

    fn page(regions: Vec<ParsedRegion>) -> ParsedPage {
        ParsedPage { width: 1275, height: 1650, layout: "test".into(), regions, ..ParsedPage::default() }
    }

    #[test]
    fn markdown_has_headings_tables_and_no_furniture() {
        let mut table = region(3, RegionClass::Table, "");
        let t = Table::from_otsl("<fcel>a<fcel>b<nl><fcel>1<fcel>2<nl>");
        table.text = t.render();
        table.table = Some(t);
        let mut formula = region(4, RegionClass::Formula, "E = mc^2");
        formula.read_as = "formula";
        let pages = vec![page(vec![
            region(0, RegionClass::Header, "Journal of Things"),
            region(1, RegionClass::DocTitle, "A Title"),
            region(2, RegionClass::Text, "first line\nsecond line"),
            table,
            formula,
            region(5, RegionClass::PageNumber, "7"),
        ])];
        let doc = ReadDocument { source: Path::new("a.png"), dpi: 150.0, pages };
        assert_eq!(
            markdown(&doc),
            "# A Title\n\nfirst line\nsecond line\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n$$\nE = mc^2\n$$\n"
        );
    }

    #[test]
    fn pages_are_marked() {
        let pages = vec![
            page(vec![region(0, RegionClass::Text, "first")]),
            page(vec![]),
            page(vec![region(0, RegionClass::Text, "third")]),
        ];
        let doc = ReadDocument { source: Path::new("a.pdf"), dpi: 150.0, pages };
        assert_eq!(markdown(&doc), "<!-- page 1 -->\n\nfirst\n\n<!-- page 2 -->\n\n\n<!-- page 3 -->\n\nthird\n");
    }

    #[test]
    fn json_keeps_regions_in_order_with_boxes_and_lines() -> Result<()> {
        let pages = vec![page(vec![region(0, RegionClass::Title, "a"), region(1, RegionClass::Footer, "b")])];
        let doc = ReadDocument { source: Path::new("in/a.png"), dpi: 150.0, pages };
        let v: serde_json::Value = serde_json::from_str(&json(&doc)?)?;
        assert_eq!(v["source"], "in/a.png");
        assert_eq!(v["pages"][0]["page"], 1);
        assert_eq!(v["pages"][0]["width"], 1275);
        let footer = &v["pages"][0]["regions"][1];
        assert_eq!(footer["class"], "footer");
        assert_eq!(footer["index"], 1);
        assert_eq!(footer["text"], "b", "furniture stays in the JSON");
        assert_eq!(footer["bbox"], serde_json::json!([10.0, 40.0, 300.0, 70.0]));
        assert_eq!(footer["lines"][0]["bbox"], serde_json::json!([10, 40, 300, 56]));
        assert_eq!(footer["read_as"], "lines");
        Ok(())
    }

    #[test]
    fn pictures_are_saved_and_linked() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("folio-writer-pictures-{}", std::process::id()));
        let mut figure = region(0, RegionClass::Figure, "");
        figure.crop = Some(image::RgbImage::from_pixel(20, 10, image::Rgb([200, 30, 30])));
        let mut doc = ReadDocument { source: Path::new("r.pdf"), dpi: 150.0, pages: vec![page(vec![figure])] };
        let written = write_document(&mut doc, &dir.join("r"), &[Format::Md, Format::Json])?;
        let png = dir.join("r_images/page-1-region-1-figure.png");
        assert_eq!(written, vec![png.clone(), dir.join("r.md"), dir.join("r.json")]);
        let saved = image::open(&png)?;
        assert_eq!((saved.width(), saved.height()), (20, 10));
        assert_eq!(std::fs::read_to_string(dir.join("r.md"))?, "![figure](r_images/page-1-region-1-figure.png)\n");
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("r.json"))?)?;
        assert_eq!(v["pages"][0]["regions"][0]["image"], "r_images/page-1-region-1-figure.png");
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn outputs_replace_old_ones_whole() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("folio-writer-{}", std::process::id()));
        let stem = dir.join("sub").join("report.v2");
        let pages = vec![page(vec![region(0, RegionClass::Text, "new text")])];
        let mut doc = ReadDocument { source: Path::new("report.v2.pdf"), dpi: 150.0, pages };
        std::fs::create_dir_all(dir.join("sub"))?;
        std::fs::write(dir.join("sub/report.v2.md"), "old text that is longer\n")?;
        let written = write_document(&mut doc, &stem, &[Format::Md, Format::Json])?;
        assert_eq!(written, vec![dir.join("sub/report.v2.md"), dir.join("sub/report.v2.json")]);
        assert_eq!(std::fs::read_to_string(&written[0])?, "new text\n");
        let leftovers = std::fs::read_dir(dir.join("sub"))?.count();
        assert_eq!(leftovers, 2, "no temporary files stay behind");
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
