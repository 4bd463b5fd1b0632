//! `folio ocr`: read images with the VLM through the engine; all images decode together and print
//! in input order. With `--page`, each image is a page: laid out into regions, each read as its
//! class and the model call for ([`folio::pipeline::page`]), every region of every page decoding
//! together.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use folio::engine::sampling::SamplingParams;
use folio::engine::{Request, RequestStream};
use folio::models::paddleocr_vl::{Checkpoint, Route, Task};
use folio::pipeline::page::{lay_out, read_pages};
use folio::pipeline::source::load_image;

use super::{EngineArgs, LayoutArgs, ModelArgs, PageReadingArgs};

#[derive(Args)]
pub struct OcrArgs {
    /// Image files (PNG, JPEG, TIFF, BMP, WebP; a multi-page TIFF's first page: `parse` reads all).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// What to read: ocr, table (OTSL), formula (LaTeX) or chart.
    #[arg(long, default_value = "ocr", value_parser = parse_task)]
    pub task: Task,
    /// Most new tokens per image (default 1024), or per line piece with --page (default 128).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=32768))]
    pub max_tokens: Option<u32>,
    /// Treat each image as a page: find its regions (--layout), read each (a line model reads the
    /// lines of text regions, lines wider than it was trained on split at a word gap) and print the
    /// regions' texts in reading order. A model that reads lines only (the embedded one) always
    /// reads this way.
    #[arg(long)]
    pub page: bool,
    /// With --page: print JSON (per page: size, regions with class, bbox [x0,y0,x1,y1], lines and
    /// text).
    #[arg(long, requires = "page")]
    pub json: bool,
    #[command(flatten)]
    pub layout: LayoutArgs,
    #[command(flatten)]
    pub reading: PageReadingArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

fn parse_task(s: &str) -> Result<Task> {
    s.parse()
}

pub fn run(args: OcrArgs) -> Result<ExitCode> {
    if args.page {
        if !matches!(args.task, Task::Ocr) {
            anyhow::bail!("--page chooses the task of each region from its class: it takes no --task");
        }
        let ck = args.model.load()?;
        return run_pages(args, ck);
    }
    let ck = args.model.load()?;
    // The model's own rule: a line model reads an image as a page; a task it cannot do is refused.
    match ck.reading.route(Some(args.task)) {
        Route::Model => {}
        Route::PageReader => {
            tracing::info!("this model reads lines: each image is read as a page (as with --page)");
            return run_pages(args, ck);
        }
        Route::Unsupported(why) => anyhow::bail!("{why}"),
    }
    if args.reading.no_seams || args.reading.max_line_width != folio::pipeline::pieces::MAX_LINE_WIDTH {
        anyhow::bail!("--max-line-width and --no-seams cut pages into lines: they need --page");
    }
    let max_tokens = args.max_tokens.unwrap_or(1024) as usize;
    let engine = args.engine.start(ck)?;
    // Submit everything first so the images decode together; a bad image is reported and skipped.
    let mut failed = 0;
    let streams: Vec<Option<RequestStream>> = args
        .images
        .iter()
        .map(|path| {
            let submitted = load_image(path).and_then(|image| {
                engine.submit(Request {
                    images: vec![image],
                    instruction: args.task.prompt().to_string(),
                    sampling: SamplingParams::greedy(max_tokens),
                })
            });
            submitted
                .map_err(|e| {
                    eprintln!("error: {}: {e:#}", path.display());
                    failed += 1;
                })
                .ok()
        })
        .collect();
    let many = args.images.len() > 1;
    for (path, stream) in args.images.iter().zip(streams) {
        let Some(stream) = stream else { continue };
        match stream.blocking_collect() {
            Ok((text, ..)) => {
                if many {
                    println!("==> {} <==", path.display());
                }
                println!("{text}");
            }
            Err(e) => {
                eprintln!("error: {}: {e:#}", path.display());
                failed += 1;
            }
        }
    }
    let stats = engine.stats();
    tracing::info!(steps = stats.steps, tokens = stats.generated_tokens, preemptions = stats.preemptions, "done");
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn run_pages(args: OcrArgs, ck: Arc<Checkpoint>) -> Result<ExitCode> {
    let detector = args.layout.load()?;
    let engine = args.engine.start(ck)?;
    let started = Instant::now();
    let mut failed = 0;
    // Unreadable images are reported and skipped; the rest are read together.
    let (mut paths, mut pages) = (Vec::new(), Vec::new());
    for path in &args.images {
        match load_image(path).and_then(|img| lay_out(detector.as_ref(), img)) {
            Ok(page) => {
                paths.push(path);
                pages.push(page);
            }
            Err(e) => {
                eprintln!("error: {}: {e:#}", path.display());
                failed += 1;
            }
        }
    }
    let opts = args.reading.options(args.max_tokens);
    let results = read_pages(&engine, pages, &opts);
    let many = args.images.len() > 1;
    let mut json = Vec::new();
    for (path, page) in paths.iter().zip(results) {
        for e in &page.errors {
            eprintln!("error: {}: {e}", path.display());
        }
        if !page.errors.is_empty() {
            failed += 1;
        }
        if args.json {
            json.push(serde_json::json!({"path": path.display().to_string(), "text": page.text(), "page": page}));
        } else {
            if many {
                println!("==> {} <==", path.display());
            }
            println!("{}", page.text());
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    }
    let stats = engine.stats();
    tracing::info!(
        pages = paths.len(),
        secs = started.elapsed().as_secs_f32(),
        steps = stats.steps,
        tokens = stats.generated_tokens,
        preemptions = stats.preemptions,
        "done"
    );
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
