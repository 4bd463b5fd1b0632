//! A PDF made searchable in place: the original file, byte for byte, followed by an incremental
//! update (ISO 32000-1 §7.5.6) that gives each page an invisible text layer.
//!
//! Per page the update holds a text content stream and the page dictionary re-issued under its own
//! object number, its `/Contents` now `[q, original…, Q, text]` and its resources given the layer's
//! font. Nothing of the original is parsed beyond the page tree (`lopdf`, stream data dropped on
//! load), so the original's content, fonts, images, links and forms stay exactly as they were,
//! and memory holds only the page dictionaries: pages are written as they are read.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use lopdf::{Dictionary, Document, LoadOptions, Object, ObjectId};

use super::font::write_font;
use super::layer::{text_layer, PlacedLine, Placement};
use super::objects::{ObjectWriter, XrefKind};

/// How deep a page may sit in the page tree when looking up inherited attributes.
const MAX_TREE_DEPTH: usize = 64;

/// One original page, ready to be re-issued with a text layer.
struct PageTarget {
    id: ObjectId,
    /// The page dictionary with the layer's font added to its resources; `/Contents` still the
    /// original's.
    dict: Dictionary,
    /// The original content streams, in order.
    contents: Vec<Object>,
    /// The name the layer's font has in this page's resources.
    font: String,
    crop: [f32; 4],
    rotate: i64,
}

/// An original PDF being made searchable, page by page.
pub struct AppendedPdf {
    writer: ObjectWriter<BufWriter<File>>,
    pages: std::vec::IntoIter<PageTarget>,
    /// The streams that wrap the original content in `q … Q`, so its graphics state cannot leak
    /// into the layer; written once and shared by every page.
    save: u32,
    restore: u32,
    kind: XrefKind,
    trailer: Vec<u8>,
}

impl AppendedPdf {
    /// Copies `source` to `out` and prepares its `pages` pages. Fails, saying why, when the file
    /// cannot be updated in place: encrypted, a cross-reference table that had to be rebuilt, or a
    /// page tree that does not hold `pages` pages.
    pub fn create(source: &Path, out: &Path, pages: usize) -> Result<Self> {
        let file = File::open(source).with_context(|| format!("cannot open {}", source.display()))?;
        // SAFETY: the map is read only while this function runs; a file changed underneath by
        // another process gives wrong bytes, which the parser reports, not undefined behaviour in
        // safe code that keeps no reference past this call.
        let map = unsafe { memmap2::Mmap::map(&file) }.with_context(|| format!("cannot map {}", source.display()))?;
        let doc = Document::load_mem_with_options(&map, LoadOptions::with_filter(drop_stream_data))
            .map_err(|e| anyhow::anyhow!("lopdf cannot read the file: {e}"))?;
        if doc.was_encrypted() || doc.trailer.has(b"Encrypt") {
            bail!("the PDF is encrypted");
        }
        if doc.xref_recovery.is_some() {
            bail!("its cross-reference table is damaged");
        }
        let page_ids: Vec<ObjectId> = doc.page_iter().collect();
        if page_ids.len() != pages {
            bail!("its page tree lists {} pages where the renderer found {pages}", page_ids.len());
        }
        let kind = match doc.reference_table.cross_reference_type {
            lopdf::xref::XrefType::CrossReferenceStream => XrefKind::Stream,
            lopdf::xref::XrefType::CrossReferenceTable => XrefKind::Table,
        };
        let mut trailer = format!("/Prev {}", doc.xref_start).into_bytes();
        for key in [&b"Root"[..], b"Info", b"ID"] {
            if let Ok(value) = doc.trailer.get(key) {
                trailer.extend_from_slice(b" /");
                trailer.extend_from_slice(key);
                trailer.push(b' ');
                trailer.extend(serialise(value)?);
            }
        }
        let next_id = doc.max_id.max(doc.reference_table.size.saturating_sub(1)) + 1;

        let mut out_file =
            BufWriter::new(File::create(out).with_context(|| format!("cannot write {}", out.display()))?);
        out_file.write_all(&map).with_context(|| format!("cannot write {}", out.display()))?;
        let mut len = map.len() as u64;
        if !map.ends_with(b"\n") {
            out_file.write_all(b"\n")?;
            len += 1;
        }
        let mut writer = ObjectWriter::update(out_file, len, next_id);
        let font = write_font(&mut writer)?;
        let (save, restore) = (writer.reserve(), writer.reserve());
        writer.stream(save, "", b"q\n")?;
        writer.stream(restore, "", b"\nQ\n")?;
        let targets = page_ids
            .iter()
            .enumerate()
            .map(|(k, &id)| prepare(&doc, id, font).with_context(|| format!("page {}", k + 1)))
            .collect::<Result<Vec<_>>>()?;
        Ok(AppendedPdf { writer, pages: targets.into_iter(), save, restore, kind, trailer })
    }

    /// Adds the next page's layer (`lines` on a `pixels` render of it); a page without lines is
    /// left as it was.
    pub fn add_page(&mut self, pixels: (u32, u32), lines: &[PlacedLine]) -> Result<()> {
        let Some(mut page) = self.pages.next() else { bail!("more pages than the PDF has") };
        let at = Placement::of_page(pixels, page.crop, page.rotate);
        let layer = text_layer(lines, &at, &page.font);
        if layer.is_empty() {
            return Ok(());
        }
        let text = self.writer.reserve();
        self.writer.flate_stream(text, "", &layer)?;
        let mut contents = Vec::with_capacity(page.contents.len() + 3);
        if !page.contents.is_empty() {
            contents.push(Object::Reference((self.save, 0)));
            contents.append(&mut page.contents);
            contents.push(Object::Reference((self.restore, 0)));
        }
        contents.push(Object::Reference((text, 0)));
        page.dict.set("Contents", Object::Array(contents));
        let body = serialise(&Object::Dictionary(page.dict))?;
        self.writer.object(page.id.0, page.id.1, &body)?;
        Ok(())
    }

    /// Writes the update's cross-reference section and trailer.
    pub fn finish(self) -> Result<()> {
        let out = self.writer.finish(self.kind, &self.trailer)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        Ok(())
    }
}

/// Keeps every object but drops stream data: the page tree is all this reads. Object streams keep
/// theirs, as objects are unpacked from them. (lopdf keeps a top-level object as the filter left
/// it, and an object-stream member as the filter returns it.)
fn drop_stream_data(id: ObjectId, object: &mut Object) -> Option<(ObjectId, Object)> {
    if let Object::Stream(stream) = object {
        if !stream.dict.has_type(b"ObjStm") {
            stream.content = Vec::new();
        }
    }
    Some((id, object.clone()))
}

/// `object` in PDF syntax.
fn serialise(object: &Object) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    lopdf::Writer::write_object(&mut bytes, object).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(bytes)
}

/// Page `id`'s target: its dictionary with a font for the layer, its contents and its geometry.
fn prepare(doc: &Document, id: ObjectId, font_id: u32) -> Result<PageTarget> {
    let mut dict = doc.get_dictionary(id).map_err(|e| anyhow::anyhow!("{e}"))?.clone();
    let mut resources = match inherited(doc, &dict, b"Resources") {
        Some(Object::Dictionary(d)) => d.clone(),
        _ => Dictionary::new(),
    };
    let mut fonts = match resources.get(b"Font").ok().map(|o| resolve(doc, o)) {
        Some(Object::Dictionary(d)) => d.clone(),
        _ => Dictionary::new(),
    };
    let font = (0..).map(|k| if k == 0 { "FolioOCR".to_string() } else { format!("FolioOCR{k}") });
    let font = font.into_iter().find(|name| !fonts.has(name.as_bytes())).unwrap_or_default();
    fonts.set(font.as_bytes().to_vec(), Object::Reference((font_id, 0)));
    resources.set("Font", Object::Dictionary(fonts));
    dict.set("Resources", Object::Dictionary(resources));

    let contents = match dict.get(b"Contents").ok() {
        Some(Object::Array(items)) => items.clone(),
        Some(reference @ Object::Reference(_)) => match resolve(doc, reference) {
            Object::Array(items) => items.clone(),
            _ => vec![reference.clone()],
        },
        _ => Vec::new(),
    };
    let boxed = |key: &[u8]| inherited(doc, &dict, key).and_then(|o| rect(doc, o));
    let crop = boxed(b"CropBox").or_else(|| boxed(b"MediaBox")).unwrap_or([0.0, 0.0, 612.0, 792.0]);
    let rotate = inherited(doc, &dict, b"Rotate").and_then(|o| o.as_i64().ok()).unwrap_or(0);
    Ok(PageTarget { id, dict, contents, font, crop, rotate })
}

/// `object`, followed through references.
fn resolve<'a>(doc: &'a Document, object: &'a Object) -> &'a Object {
    doc.dereference(object).map(|(_, o)| o).unwrap_or(&Object::Null)
}

/// Attribute `key` of a page, looked up the page tree (`/Parent`) when the page does not set it
/// (`/Resources`, `/MediaBox`, `/CropBox` and `/Rotate` are inheritable), resolved.
fn inherited<'a>(doc: &'a Document, page: &'a Dictionary, key: &[u8]) -> Option<&'a Object> {
    let mut node = page;
    for _ in 0..MAX_TREE_DEPTH {
        if let Ok(value) = node.get(key) {
            return Some(resolve(doc, value));
        }
        let parent = node.get(b"Parent").ok()?.as_reference().ok()?;
        node = doc.get_dictionary(parent).ok()?;
    }
    None
}

/// A rectangle `[x0 y0 x1 y1]`.
fn rect(doc: &Document, object: &Object) -> Option<[f32; 4]> {
    let items = object.as_array().ok()?;
    if items.len() != 4 {
        return None;
    }
    let mut r = [0.0; 4];
    for (v, item) in r.iter_mut().zip(items) {
        *v = resolve(doc, item).as_float().ok()?;
    }
    r.iter().all(|v| v.is_finite()).then_some(r)
}
