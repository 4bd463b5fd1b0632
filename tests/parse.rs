//! `folio parse` end to end on the embedded model: PDFs and images in a directory tree become
//! Markdown and JSON; bad files are listed and skipped; a rerun does only what is missing.
//! Needs libpdfium (scripts/setup.sh installs it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

use anyhow::{ensure, Context, Result};
use common::default_engine;
use folio::layout::WholePage;
use folio::pipeline::bulk::{parse_documents, plan, BulkOptions, Event};
use folio::pipeline::metrics::{normalize_whitespace, CerTally};
use folio::pipeline::reader::ReadOptions;
use folio::pipeline::writer::Format;

const TWO_PAGES: [&str; 2] = [
    "Licensed under the Apache License, Version 2.0 (the\n\"License\"); you may not use this file except in\ncompliance with the License.",
    "Unless required by applicable law or agreed to in writing,\nsoftware distributed under the License is distributed on\nan \"AS IS\" BASIS, WITHOUT WARRANTIES OR CONDITIONS.",
];

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(rel)
}

fn parse(args: &[&Path]) -> Result<Output> {
    parse_with_password(args, None)
}

fn parse_with_password(args: &[&Path], password: Option<&str>) -> Result<Output> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_folio"));
    command.arg("parse").args(args).env_remove("FOLIO_PDF_PASSWORD");
    if let Some(password) = password {
        command.env("FOLIO_PDF_PASSWORD", password);
    }
    let out = command.output()?;
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    Ok(out)
}

fn cer(reference: &str, text: &str) -> f64 {
    let mut tally = CerTally::default();
    tally.add(&normalize_whitespace(reference), &normalize_whitespace(text));
    tally.cer()
}

/// A scratch directory removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("folio-parse-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_bulk_run_reads_the_good_documents_lists_the_bad_and_resumes() -> Result<()> {
    let scratch = Scratch::new("bulk")?;
    let (input, out) = (scratch.0.join("in"), scratch.0.join("out"));
    std::fs::create_dir_all(input.join("scans"))?;
    std::fs::copy(fixture("pdfs/two-pages.pdf"), input.join("two-pages.pdf"))?;
    std::fs::copy(fixture("pdfs/encrypted.pdf"), input.join("encrypted.pdf"))?;
    std::fs::copy(fixture("pages/bzip2-manual-p6.png"), input.join("scans/bzip2-p6.PNG"))?;
    std::fs::write(input.join("broken.pdf"), b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog")?;
    std::fs::write(input.join("empty.png"), b"")?;
    std::fs::write(input.join("notes.txt"), b"not a document")?;

    let run = parse(&[&input, Path::new("--out"), &out, Path::new("--format"), Path::new("md,json")])?;
    let stderr = String::from_utf8_lossy(&run.stderr);
    ensure!(!run.status.success(), "a run with failures exits non-zero");
    ensure!(stderr.contains("ignoring 1 files"), "the text file is ignored and said so");

    // The two-page PDF: both pages, in order, marked.
    let md = std::fs::read_to_string(out.join("two-pages.md"))?;
    let (p1, p2) = md.split_once("<!-- page 2 -->").context("a page 2 marker")?;
    let p1 = p1.strip_prefix("<!-- page 1 -->").context("starts with a page 1 marker")?;
    for (reference, text) in TWO_PAGES.iter().zip([p1, p2]) {
        let c = cer(reference, text);
        ensure!(c <= 0.03, "page read at CER {:.2}%: {text:?}", 100.0 * c);
    }
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("two-pages.json"))?)?;
    let pages = json["pages"].as_array().context("pages")?;
    ensure!(pages.len() == 2 && json["dpi"] == 150.0);
    for page in pages {
        // Letter at 150 dpi.
        ensure!(page["width"] == 1275 && page["height"] == 1650, "{page}");
        // Every line of the page's text regions, each with a box inside the page.
        let regions = page["regions"].as_array().context("regions")?;
        let lines: Vec<&serde_json::Value> = regions.iter().filter_map(|r| r["lines"].as_array()).flatten().collect();
        ensure!(lines.len() == 3, "{page}");
        for line in lines {
            let b: Vec<u64> = serde_json::from_value(line["bbox"].clone())?;
            ensure!(b[0] < b[2] && b[2] <= 1275 && b[1] < b[3] && b[3] <= 1650, "{line}");
        }
    }

    // The image in a subdirectory keeps its place in the tree.
    let scan = std::fs::read_to_string(out.join("scans/bzip2-p6.md"))?;
    let reference = std::fs::read_to_string(fixture("pages/bzip2-manual-p6.txt"))?;
    let c = cer(&reference, &scan);
    ensure!(c <= 0.02, "sample page read at CER {:.2}%", 100.0 * c);

    // The bad files: listed with their reasons, no outputs.
    let failures = std::fs::read_to_string(out.join("failures.tsv"))?;
    let reason = |name: &str| failures.lines().find(|l| l.contains(name)).map(str::to_owned);
    ensure!(failures.lines().count() == 3, "{failures}");
    ensure!(reason("encrypted.pdf").is_some_and(|r| r.contains("password")), "{failures}");
    ensure!(reason("broken.pdf").is_some_and(|r| r.contains("not a readable PDF")), "{failures}");
    ensure!(reason("empty.png").is_some_and(|r| r.contains("empty")), "{failures}");
    for name in ["encrypted.md", "broken.md", "empty.md", "notes.md"] {
        ensure!(!out.join(name).exists(), "{name} written for a failed document");
    }

    // A rerun skips what is done and leaves it untouched.
    let written_at = std::fs::metadata(out.join("two-pages.md"))?.modified()?;
    let rerun = parse(&[&input, Path::new("--out"), &out, Path::new("--format"), Path::new("md,json")])?;
    ensure!(!rerun.status.success());
    ensure!(String::from_utf8_lossy(&rerun.stderr).contains("2 skipped"));
    ensure!(std::fs::metadata(out.join("two-pages.md"))?.modified()? == written_at);

    // Once the bad files are gone and the encrypted PDF's password is given (in the environment),
    // the run succeeds and the failure list goes.
    for name in ["broken.pdf", "empty.png"] {
        std::fs::remove_file(input.join(name))?;
    }
    let clean = parse_with_password(&[&input, Path::new("--out"), &out], Some("folio"))?;
    ensure!(clean.status.success());
    ensure!(!out.join("failures.tsv").exists());
    let decrypted = std::fs::read_to_string(out.join("encrypted.md"))?;
    let c = cer(&TWO_PAGES.join("\n"), &decrypted.replace("<!-- page 1 -->", "").replace("<!-- page 2 -->", ""));
    ensure!(c <= 0.03, "the encrypted PDF read at CER {:.2}%: {decrypted:?}", 100.0 * c);
    Ok(())
}

#[test]
fn inputs_that_would_overwrite_each_other_are_refused_before_any_work() -> Result<()> {
    let scratch = Scratch::new("clash")?;
    let (a, b) = (scratch.0.join("a"), scratch.0.join("b"));
    std::fs::create_dir_all(&a)?;
    std::fs::create_dir_all(&b)?;
    std::fs::copy(fixture("pdfs/two-pages.pdf"), a.join("report.pdf"))?;
    std::fs::copy(fixture("pages/bzip2-manual-p6.png"), b.join("report.png"))?;
    let out = scratch.0.join("out");
    let run = parse(&[&a.join("report.pdf"), &b.join("report.png"), Path::new("--out"), &out])?;
    ensure!(!run.status.success());
    ensure!(String::from_utf8_lossy(&run.stderr).contains("would both write"));
    ensure!(!out.exists(), "nothing was written");
    Ok(())
}

#[test]
fn a_run_reports_documents_opened_pages_read_and_documents_finished() -> Result<()> {
    let scratch = Scratch::new("events")?;
    let inputs = [fixture("pdfs/two-pages.pdf"), fixture("pdfs/encrypted.pdf")];
    let (docs, _) = plan(&inputs, &scratch.0)?;
    let opts = BulkOptions {
        formats: vec![Format::Md],
        dpi: 150.0,
        password: None,
        batch_pages: 1,
        overwrite: false,
        read: ReadOptions::default(),
    };
    let engine = default_engine()?;
    let mut events = Vec::new();
    let summary = parse_documents(&engine, &WholePage, &docs, &opts, |e| {
        events.push(match e {
            Event::Skipped(n) => format!("skipped {n}"),
            Event::Opened { pages } => format!("opened {pages}"),
            Event::PagesRead(n) => format!("read {n}"),
            Event::Finished(o) => format!("finished {} {}", o.pages, o.result.is_ok()),
        })
    });
    // One page a batch. The encrypted PDF fails to open and finishes with no pages; when is up to
    // the renderer thread, so it is taken out before the order is checked.
    let failed = events.iter().filter(|e| *e == "finished 0 false").count();
    events.retain(|e| e != "finished 0 false");
    ensure!(failed == 1, "{events:?}");
    ensure!(events == ["skipped 0", "opened 2", "read 1", "read 1", "finished 2 true"], "{events:?}");
    ensure!(summary.written == 1 && summary.failed.len() == 1 && summary.pages == 2, "{summary:?}");

    // Run again: the written document is skipped and nothing is read.
    let mut again = Vec::new();
    let summary = parse_documents(&engine, &WholePage, &docs, &opts, |e| {
        if let Event::Skipped(n) | Event::PagesRead(n) = e {
            again.push(*n);
        }
    });
    ensure!(again == [1] && summary.skipped == 1, "{again:?} {summary:?}");
    Ok(())
}
