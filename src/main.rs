//! The folio command line.

mod cli;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "folio", version, about = "Vision-language document parser (PaddleOCR-VL architecture)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse PDFs and images (files or directories) into one Markdown/JSON file per document.
    Parse(cli::parse::ParseArgs),
    /// Read images with the VLM and print each one's text, in input order.
    Ocr(cli::ocr::OcrArgs),
    /// Serve the model over an OpenAI-compatible HTTP API (a drop-in for vLLM).
    Serve(cli::serve::ServeArgs),
    /// Measure the engine: batching throughput, memory over a long run.
    Bench(cli::bench::BenchArgs),
    /// Write synthetic text-line images and labels (training / evaluation data).
    Synth(folio::synth::cli::SynthArgs),
    /// Train (or resume training) folio's small OCR model on synthetic lines.
    Train(folio::train::TrainArgs),
    /// Copy a training run's checkpoint into a shippable model directory (f16 weights).
    ExportModel {
        /// The run's checkpoint directory (RUN/model). Given more than once, the checkpoints'
        /// weights are averaged (same model: same tokenizer and tensors).
        #[arg(long, required = true)]
        from: Vec<std::path::PathBuf>,
        /// Destination, e.g. models/folio-ocr-small.
        #[arg(long)]
        to: std::path::PathBuf,
    },
    /// Measure accuracy: CER on synthetic lines, or of a text against a reference.
    Eval(cli::eval::EvalArgs),
}

fn main() -> ExitCode {
    pin_thread_count();
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
        Command::Parse(args) => cli::parse::run(args),
        Command::Ocr(args) => cli::ocr::run(args),
        Command::Serve(args) => cli::serve::run(args),
        Command::Bench(args) => cli::bench::run(args),
        Command::Synth(args) => folio::synth::cli::run(args).map(|()| ExitCode::SUCCESS),
        Command::Train(args) => folio::train::run(args).map(|()| ExitCode::SUCCESS),
        Command::Eval(args) => cli::eval::run(args),
        Command::ExportModel { from, to } => {
            let bytes = folio::train::export::ship(&from, &to)?;
            eprintln!("wrote {} ({:.1} MB of weights)", to.display(), bytes as f64 / 1e6);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Thread counts, set once before any thread exists (explicit settings are left alone):
/// - candle 0.11.1 works out its default thread count from /proc/cpuinfo on every matrix multiply
///   unless RAYON_NUM_THREADS is set — a 6× slowdown of small decode steps measured here; setting
///   it makes the count a constant for candle, rayon and our kernels alike;
/// - candle's element-wise ops run on a barrier pool whose workers spin between ops; on a 2-core
///   machine with anything else running, that made batched decoding slower than one-at-a-time
///   (0.55× vs 1.5× with CANDLE_NUM_THREADS=1 in one side-by-side run). Matrix multiplies and
///   attention keep all cores through rayon.
fn pin_thread_count() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}
