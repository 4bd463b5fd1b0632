//! The folio command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use clap::{Parser, Subcommand, ValueEnum};

use folio::engine::greedy::{generate_greedy, ImageRequest};
use folio::models::hub::resolve_model;
use folio::models::paddleocr_vl::{Checkpoint, PreparedImage, Task};

#[derive(Parser)]
#[command(name = "folio", version, about = "Vision-language document parser (PaddleOCR-VL architecture)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read images with the VLM and print each one's text, in input order.
    Ocr(OcrArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum Precision {
    F32,
    Bf16,
}

#[derive(clap::Args)]
struct OcrArgs {
    /// Image files (PNG, JPEG, TIFF, BMP, WebP).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// What to read: ocr, table (OTSL), formula (LaTeX) or chart.
    #[arg(long, default_value = "ocr", value_parser = parse_task)]
    task: Task,
    /// Checkpoint directory in the Hugging Face layout, or a Hub repository id.
    #[arg(long, env = "FOLIO_MODEL")]
    model: Option<String>,
    /// Most new tokens per image.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=32768))]
    max_tokens: u32,
    /// Weight and activation precision.
    #[arg(long, value_enum, default_value = "f32")]
    dtype: Precision,
}

fn parse_task(s: &str) -> Result<Task> {
    s.parse()
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Ocr(args) => ocr(args),
    }
}

fn ocr(args: OcrArgs) -> Result<ExitCode> {
    let Some(spec) = args.model.as_deref() else {
        bail!("no model given: pass --model DIR (a checkpoint directory) or a Hugging Face repo id, or set FOLIO_MODEL");
    };
    let dir = resolve_model(spec)?;
    let dtype = match args.dtype {
        Precision::F32 => DType::F32,
        Precision::Bf16 => DType::BF16,
    };
    let started = Instant::now();
    let ck = Checkpoint::load(&dir, dtype, &Device::Cpu)?;
    tracing::info!(model = %dir.display(), secs = started.elapsed().as_secs_f32(), "model loaded");

    // A bad image is reported and skipped; the others are still read.
    let mut failed = 0;
    let prepared: Vec<Option<PreparedImage>> = args
        .images
        .iter()
        .map(|path| match load_image(path).and_then(|img| ck.images.prepare(&img)) {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("error: {}: {e:#}", path.display());
                failed += 1;
                None
            }
        })
        .collect();
    let requests: Vec<ImageRequest> = prepared
        .iter()
        .flatten()
        .map(|image| ImageRequest { image, instruction: args.task.prompt(), max_new_tokens: args.max_tokens as usize })
        .collect();
    let outputs = generate_greedy(&ck, &requests)?;
    let mut outputs = outputs.into_iter();
    let many = args.images.len() > 1;
    for (path, image) in args.images.iter().zip(&prepared) {
        if image.is_none() {
            continue;
        }
        let out = outputs.next().context("one output per readable image")?;
        let text = ck.prompts.decode(&out.tokens)?;
        if many {
            println!("==> {} <==", path.display());
        }
        println!("{text}");
    }
    tracing::info!(secs = started.elapsed().as_secs_f32(), "done");
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Decodes an image with limits, so a hostile file cannot ask for gigabytes.
fn load_image(path: &std::path::Path) -> Result<image::DynamicImage> {
    let mut reader = image::ImageReader::open(path)
        .with_context(|| "cannot open file")?
        .with_guessed_format()
        .context("cannot read file")?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(20_000);
    limits.max_image_height = Some(20_000);
    limits.max_alloc = Some(1 << 30);
    reader.limits(limits);
    reader.decode().context("not a readable image")
}
