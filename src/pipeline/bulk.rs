//! Bulk parsing: many documents (PDFs, images) → pages → engine → one output per document.
//!
//! A planner turns the inputs (files and directories, walked in name order) into documents with
//! their output stems, refusing two documents that would write the same file. A renderer thread
//! opens documents and renders their pages into a bounded channel, so rendering overlaps reading
//! and at most a few page images exist at once; the reader gathers pages into batches (across
//! documents, so single-page images still decode together) and reads each batch with
//! [`read_pages`]. A document's outputs are written page by page as its pages are read (a
//! [`DocumentSink`]) and moved into place when the last is, so they appear whole or not at all and a
//! long document never sits in memory; a document that fails (unreadable, encrypted, a page that
//! cannot be rendered or read) is reported, its Markdown and JSON are not written (pictures of the
//! pages read before the failure may be), and the run goes on. Documents whose outputs exist are skipped, so rerunning a run that
//! was stopped or had failures does only the missing work.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use anyhow::{bail, Context, Result};
use image::DynamicImage;

use super::page::{lay_out, read_pages, LaidOutPage};
use super::reader::ReadOptions;
use super::source::{is_document_name, Pages};
use super::writer::{output_path, DocumentSink, Format};
use crate::engine::Engine;
use crate::layout::LayoutDetector;

/// One document of a run and where its outputs go (`stem` + `.md`, `.json`).
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    pub source: PathBuf,
    pub stem: PathBuf,
}

/// Documents found in `inputs`: a file is a document named by its file stem; a directory
/// contributes every document file below it (by extension), named by its path relative to that
/// directory. Other files in directories are counted in the second value.
pub fn plan(inputs: &[PathBuf], out: &Path) -> Result<(Vec<Document>, usize)> {
    let mut docs = Vec::new();
    let mut ignored = 0;
    for input in inputs {
        if input.is_dir() {
            let walk = walkdir::WalkDir::new(input).follow_links(true).sort_by_file_name();
            for entry in walk {
                let entry = entry.map_err(|e| anyhow::anyhow!("{}: {e}", input.display()))?;
                if !entry.file_type().is_file() {
                    continue;
                }
                if !is_document_name(entry.path()) {
                    ignored += 1;
                    continue;
                }
                let rel = entry.path().strip_prefix(input).unwrap_or(entry.path());
                docs.push(Document { source: entry.path().to_path_buf(), stem: out.join(rel.with_extension("")) });
            }
        } else if input.exists() {
            let name = input.file_stem().unwrap_or(input.as_os_str());
            docs.push(Document { source: input.clone(), stem: out.join(name) });
        } else {
            bail!("{}: no such file or directory", input.display());
        }
    }
    // The same file named twice (say, a file and its directory) is one document.
    let mut sources = std::collections::HashSet::new();
    docs.retain(|d| sources.insert(std::fs::canonicalize(&d.source).unwrap_or_else(|_| d.source.clone())));
    let mut seen: HashMap<&Path, &Path> = HashMap::new();
    for doc in &docs {
        if let Some(first) = seen.insert(&doc.stem, &doc.source) {
            bail!(
                "{} and {} would both write {}.*; parse them into different --out directories",
                first.display(),
                doc.source.display(),
                doc.stem.display()
            );
        }
    }
    Ok((docs, ignored))
}

/// How a bulk run reads and writes.
#[derive(Clone, Debug)]
pub struct BulkOptions {
    pub formats: Vec<Format>,
    /// PDF rendering resolution.
    pub dpi: f32,
    /// Opens encrypted PDFs (those of the run that need a password to open; the others ignore it).
    pub password: Option<String>,
    /// Pages read together (also bounds the rendered pages waiting).
    pub batch_pages: usize,
    /// Parse documents whose outputs already exist.
    pub overwrite: bool,
    pub read: ReadOptions,
}

/// What a run reports as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// This many documents are skipped: their outputs exist (sent first).
    Skipped(usize),
    /// A document was opened and has this many pages.
    Opened { pages: usize },
    /// A batch of this many pages was read.
    PagesRead(usize),
    /// A document was written or failed.
    Finished(Outcome<'a>),
}

/// What became of one document.
#[derive(Debug)]
pub struct Outcome<'a> {
    pub doc: &'a Document,
    pub pages: usize,
    /// The files written, or why the document failed.
    pub result: std::result::Result<Vec<PathBuf>, String>,
}

/// A run's totals.
#[derive(Debug, Default)]
pub struct Summary {
    pub written: usize,
    pub skipped: usize,
    pub failed: Vec<(PathBuf, String)>,
    pub pages: usize,
}

/// Whether every output of `doc` exists.
pub fn is_done(doc: &Document, formats: &[Format]) -> bool {
    formats.iter().all(|&f| output_path(&doc.stem, f).is_file())
}

enum Rendered {
    Opened {
        doc: usize,
        pages: usize,
    },
    Page {
        doc: usize,
        page: Box<LaidOutPage>,
    },
    /// The document stops here: it ended, or failed with this error.
    End {
        doc: usize,
        error: Option<String>,
    },
}

/// Parses `docs` through `engine`, pages laid out by `detector` on the renderer thread (so layout
/// overlaps reading); `report` hears of documents opened, pages read and documents finished.
pub fn parse_documents<'d>(
    engine: &Engine,
    detector: &dyn LayoutDetector,
    docs: &'d [Document],
    opts: &BulkOptions,
    mut report: impl FnMut(&Event<'d>),
) -> Summary {
    let mut summary = Summary::default();
    let todo: Vec<usize> = (0..docs.len()).filter(|&i| opts.overwrite || !is_done(&docs[i], &opts.formats)).collect();
    summary.skipped = docs.len() - todo.len();
    report(&Event::Skipped(summary.skipped));
    let batch = opts.batch_pages.max(1);
    let (tx, rx) = sync_channel(batch);
    std::thread::scope(|scope| {
        let (dpi, password) = (opts.dpi, opts.password.as_deref());
        let sources: Vec<(usize, &Path)> = todo.iter().map(|&i| (i, docs[i].source.as_path())).collect();
        scope.spawn(move || render_documents(&sources, tx, |path| open_pages(path, dpi, password), detector));
        read_rendered(engine, docs, opts, rx, &mut summary, &mut report);
    });
    summary
}

/// A document's page count and its pages, rendered one at a time.
type PageIter = (usize, Box<dyn Iterator<Item = Result<DynamicImage>>>);

fn open_pages(path: &Path, dpi: f32, password: Option<&str>) -> Result<PageIter> {
    let pages = Pages::open(path, dpi, password)?;
    Ok((pages.page_count(), Box::new(pages)))
}

/// The renderer thread: opens each document and sends its pages; stops when the reader is gone.
/// A panic while rendering one document (a decoder's bug met by a hostile file) fails that
/// document only.
fn render_documents(
    sources: &[(usize, &Path)],
    tx: SyncSender<Rendered>,
    open: impl Fn(&Path) -> Result<PageIter>,
    detector: &dyn LayoutDetector,
) {
    for &(doc, path) in sources {
        let rendered = std::panic::catch_unwind(AssertUnwindSafe(|| render_document(doc, path, &open, detector, &tx)));
        let end = match rendered {
            Ok(Some(error)) => error,
            Ok(None) => return, // the reader is gone
            Err(panic) => {
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned());
                Some(format!("internal error while rendering: {}", why.unwrap_or_else(|| "panic".into())))
            }
        };
        if tx.send(Rendered::End { doc, error: end }).is_err() {
            return;
        }
    }
}

/// Sends one document's pages; returns how it ended (`Some(None)`: all pages sent, `Some(Some(e))`:
/// failed), or `None` when the reader is gone.
fn render_document(
    doc: usize,
    path: &Path,
    open: &impl Fn(&Path) -> Result<PageIter>,
    detector: &dyn LayoutDetector,
    tx: &SyncSender<Rendered>,
) -> Option<Option<String>> {
    let (count, pages) = match open(path) {
        Ok(pages) => pages,
        Err(e) => return Some(Some(format!("{e:#}"))),
    };
    tx.send(Rendered::Opened { doc, pages: count }).ok()?;
    for (index, page) in pages.enumerate() {
        match page.and_then(|image| lay_out(detector, image).context("layout")) {
            Ok(page) => tx.send(Rendered::Page { doc, page: Box::new(page) }).ok()?,
            Err(e) => return Some(Some(format!("page {}: {e:#}", index + 1))),
        }
    }
    Some(None)
}

/// A document being read: its outputs so far (written page by page as pages are read, in order),
/// pages sent to be read and pages written, and whether the renderer is done with it.
#[derive(Default)]
struct Progress {
    sink: Option<DocumentSink>,
    sent: usize,
    written: usize,
    ended: bool,
    error: Option<String>,
}

fn read_rendered<'d>(
    engine: &Engine,
    docs: &'d [Document],
    opts: &BulkOptions,
    rx: Receiver<Rendered>,
    summary: &mut Summary,
    report: &mut impl FnMut(&Event<'d>),
) {
    let batch_size = opts.batch_pages.max(1);
    let mut open: HashMap<usize, Progress> = HashMap::new();
    let mut batch: Vec<(usize, usize, LaidOutPage)> = Vec::with_capacity(batch_size);
    let mut finished_input = false;
    while !finished_input || !batch.is_empty() {
        // Gather a batch; a document that ends with nothing in flight is settled at once.
        while batch.len() < batch_size && !finished_input {
            match rx.recv() {
                Ok(Rendered::Opened { doc, pages }) => {
                    // No allocation by the page count: it comes from the file.
                    let p = open.entry(doc).or_default();
                    let d = &docs[doc];
                    match DocumentSink::create(&d.source, opts.dpi, &d.stem, &opts.formats, pages) {
                        Ok(sink) => p.sink = Some(sink),
                        Err(e) => p.error = Some(format!("{e:#}")),
                    }
                    report(&Event::Opened { pages });
                }
                Ok(Rendered::Page { doc, page }) => {
                    let p = open.entry(doc).or_default();
                    batch.push((doc, p.sent, *page));
                    p.sent += 1;
                }
                Ok(Rendered::End { doc, error }) => {
                    let p = open.entry(doc).or_default();
                    p.ended = true;
                    p.error = p.error.take().or(error);
                    settle_if_complete(doc, &mut open, docs, summary, report);
                }
                Err(_) => finished_input = true,
            }
        }
        if batch.is_empty() {
            continue;
        }
        let (read, pages): (Vec<(usize, usize)>, Vec<LaidOutPage>) =
            batch.drain(..).map(|(doc, index, page)| ((doc, index), page)).unzip();
        let texts = read_pages(engine, pages, &opts.read);
        report(&Event::PagesRead(read.len()));
        // A document's pages come back in the order they were sent, so they are written in order.
        for (&(doc, index), text) in read.iter().zip(texts) {
            let Some(p) = open.get_mut(&doc) else { continue };
            p.written += 1;
            if p.error.is_none() && !text.errors.is_empty() {
                p.error = Some(format!("page {}: {}", index + 1, text.errors.join("; ")));
            }
            if p.error.is_some() {
                p.sink = None; // removes its temporary files
                continue;
            }
            if let Some(Err(e)) = p.sink.as_mut().map(|sink| sink.add_page(text)) {
                p.error = Some(format!("page {}: {e:#}", index + 1));
                p.sink = None;
            }
        }
        for &(doc, _) in &read {
            settle_if_complete(doc, &mut open, docs, summary, report);
        }
    }
}

/// Writes (or reports the failure of) `doc` once the renderer has ended it and every page is read.
fn settle_if_complete<'d>(
    doc: usize,
    open: &mut HashMap<usize, Progress>,
    docs: &'d [Document],
    summary: &mut Summary,
    report: &mut impl FnMut(&Event<'d>),
) {
    let complete = open.get(&doc).is_some_and(|p| p.ended && p.written == p.sent);
    if !complete {
        return;
    }
    let Some(p) = open.remove(&doc) else { return };
    let count = p.written;
    let d = &docs[doc];
    let result = match (p.error, p.sink) {
        (Some(e), _) => Err(e),
        (None, Some(sink)) => sink.finish().map_err(|e| format!("{e:#}")),
        (None, None) => Err("internal error: the document was never opened".to_string()),
    };
    match &result {
        Ok(_) => summary.written += 1,
        Err(e) => summary.failed.push((d.source.clone(), e.clone())),
    }
    summary.pages += count;
    report(&Event::Finished(Outcome { doc: d, pages: count, result }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_named_by_stem_and_directories_keep_their_tree() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("folio-plan-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("in/sub"))?;
        for name in ["in/b.pdf", "in/a.png", "in/sub/c.JPG", "in/readme.txt", "single.tiff"] {
            std::fs::write(dir.join(name), b"x")?;
        }
        let out = Path::new("out");
        let (docs, ignored) = plan(&[dir.join("in"), dir.join("single.tiff"), dir.join("in/b.pdf")], out)?;
        let got: Vec<(PathBuf, PathBuf)> = docs.into_iter().map(|d| (d.source, d.stem)).collect();
        let want = [
            ("in/a.png", "out/a"),
            ("in/b.pdf", "out/b"),
            ("in/sub/c.JPG", "out/sub/c"),
            ("single.tiff", "out/single"),
        ];
        let want: Vec<(PathBuf, PathBuf)> = want.iter().map(|(s, o)| (dir.join(s), PathBuf::from(o))).collect();
        assert_eq!(got, want);
        assert_eq!(ignored, 1);
        assert!(plan(&[dir.join("missing.pdf")], out).is_err());
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn a_panic_while_rendering_fails_that_document_only() {
        let (tx, rx) = sync_channel(8);
        let sources = [(0, Path::new("hostile.png")), (1, Path::new("fine.png"))];
        let open = |path: &Path| -> Result<PageIter> {
            if path == Path::new("hostile.png") {
                panic!("decoder bug");
            }
            let page = DynamicImage::new_rgb8(4, 4);
            Ok((1, Box::new(std::iter::once(Ok(page)))))
        };
        render_documents(&sources, tx, open, &crate::layout::WholePage);
        let got: Vec<String> = rx
            .iter()
            .map(|m| match m {
                Rendered::Opened { doc, pages } => format!("{doc} opened {pages}"),
                Rendered::Page { doc, .. } => format!("{doc} page"),
                Rendered::End { doc, error } => format!("{doc} end {error:?}"),
            })
            .collect();
        let want =
            ["0 end Some(\"internal error while rendering: decoder bug\")", "1 opened 1", "1 page", "1 end None"];
        assert_eq!(got, want);
    }

    #[test]
    fn two_documents_with_one_output_name_are_refused() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("folio-plan-clash-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("r.pdf"), b"x")?;
        std::fs::write(dir.join("r.png"), b"x")?;
        let e = plan(std::slice::from_ref(&dir), Path::new("out")).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("would both write")));
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
