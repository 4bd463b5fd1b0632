//! `folio ocr`: read images with the VLM through the engine; all images decode together and print
//! in input order.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use folio::engine::sampling::SamplingParams;
use folio::engine::{Request, RequestStream};
use folio::models::paddleocr_vl::Task;

use super::{load_image, EngineArgs, ModelArgs};

#[derive(Args)]
pub struct OcrArgs {
    /// Image files (PNG, JPEG, TIFF, BMP, WebP).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// What to read: ocr, table (OTSL), formula (LaTeX) or chart.
    #[arg(long, default_value = "ocr", value_parser = parse_task)]
    pub task: Task,
    /// Most new tokens per image.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=32768))]
    pub max_tokens: u32,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

fn parse_task(s: &str) -> Result<Task> {
    s.parse()
}

pub fn run(args: OcrArgs) -> Result<ExitCode> {
    let ck = args.model.load()?;
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
                    sampling: SamplingParams::greedy(args.max_tokens as usize),
                })
            });
            submitted.map_err(|e| {
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
