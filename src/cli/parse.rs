//! `folio parse`: PDFs and images (files or whole directories) → one Markdown (and/or JSON) file per
//! document, with a progress bar, a failure list, and resumption (finished documents are skipped).
//! See [`folio::pipeline::bulk`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use folio::pipeline::bulk::{parse_documents, plan, BulkOptions, Event};
use folio::pipeline::pdf_source::DPI_RANGE;
use folio::pipeline::writer::{write_atomically, Format};

use super::{EngineArgs, LayoutArgs, ModelArgs, PageReadingArgs};

/// The failure list a run leaves in its output directory (removed by a run without failures).
const FAILURES_FILE: &str = "failures.tsv";

#[derive(Args)]
pub struct ParseArgs {
    /// PDFs, images (PNG, JPEG, TIFF with all its pages, BMP, WebP) or directories of them (walked
    /// recursively; other files are ignored).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output directory: DOC.md (DOC.json, DOC.pdf) per document; a directory input keeps its tree.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Output formats, comma-separated: md, json, pdf (searchable: the original pages with an
    /// invisible text layer; an image input becomes a page at 300 dpi).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "md")]
    pub format: Vec<Format>,
    /// Resolution PDF pages are rendered at (the shipped model reads 150 dpi pages best).
    #[arg(long, default_value_t = 150.0, value_parser = parse_dpi)]
    pub dpi: f32,
    /// Pages read together; more keeps the engine's batches full, each costs a page image of memory.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub batch_pages: u32,
    /// Parse documents again even when their outputs exist (by default they are skipped, so a
    /// stopped run resumes where it was).
    #[arg(long)]
    pub overwrite: bool,
    /// Password of encrypted PDFs (tried on each PDF of the run that needs one to open). The
    /// environment variable keeps it out of the process list.
    #[arg(long, env = "FOLIO_PDF_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Most new tokens per line piece.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=32768))]
    pub max_tokens: Option<u32>,
    #[command(flatten)]
    pub layout: LayoutArgs,
    #[command(flatten)]
    pub reading: PageReadingArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

fn parse_dpi(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(d) if DPI_RANGE.contains(&d) => Ok(d),
        _ => Err(format!("'{s}': the dpi must be a number from {} to {}", DPI_RANGE.start(), DPI_RANGE.end())),
    }
}

pub fn run(args: ParseArgs) -> Result<ExitCode> {
    let mut formats = args.format.clone();
    formats.sort();
    formats.dedup();
    if args.out.exists() && !args.out.is_dir() {
        bail!("--out {}: exists and is not a directory", args.out.display());
    }
    let (docs, ignored) = plan(&args.inputs, &args.out)?;
    if ignored > 0 {
        eprintln!("ignoring {ignored} files that are neither PDFs nor images");
    }
    if docs.is_empty() {
        bail!("no PDFs or images found in the inputs");
    }
    let opts = BulkOptions {
        formats,
        dpi: args.dpi,
        password: args.password.clone(),
        batch_pages: args.batch_pages as usize,
        overwrite: args.overwrite,
        read: args.reading.options(args.max_tokens),
    };
    let detector = args.layout.load()?;
    let ck = args.model.load()?;
    let engine = args.engine.start(ck)?;
    let started = Instant::now();
    let bar = ProgressBar::new(docs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} documents, {msg} [{elapsed_precise}, eta {eta}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (mut found, mut read) = (0, 0);
    let summary = parse_documents(&engine, detector.as_ref(), &docs, &opts, |event| match event {
        Event::Skipped(n) => bar.set_length((docs.len() - n) as u64),
        Event::Opened { pages } => found += pages,
        Event::PagesRead(n) => {
            read += n;
            bar.set_message(format!("{read}/{found} pages of the documents opened"));
        }
        Event::Finished(outcome) => {
            if let Err(e) = &outcome.result {
                bar.suspend(|| eprintln!("error: {}: {e}", outcome.doc.source.display()));
            }
            bar.inc(1);
        }
    });
    bar.finish_and_clear();
    let stats = engine.stats();
    tracing::info!(
        steps = stats.steps,
        generated_tokens = stats.generated_tokens,
        preemptions = stats.preemptions,
        "engine totals"
    );
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "parsed {} documents ({} pages) in {secs:.1} s into {}; {} skipped (already parsed), {} failed",
        summary.written,
        summary.pages,
        args.out.display(),
        summary.skipped,
        summary.failed.len()
    );
    let failures = args.out.join(FAILURES_FILE);
    if summary.failed.is_empty() {
        if failures.exists() {
            std::fs::remove_file(&failures)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let list: String = summary
        .failed
        .iter()
        .map(|(path, why)| format!("{}\t{}\n", path.display(), why.replace(['\t', '\n'], " ")))
        .collect();
    write_atomically(&failures, list.as_bytes())?;
    eprintln!("the failed documents are listed in {} (rerun to retry them)", failures.display());
    Ok(ExitCode::FAILURE)
}
