//! Command-line front ends. Each subcommand lives in its own file; shared flags live here.

pub mod bench;
mod bench_layout;
pub mod eval;
pub mod ocr;
pub mod parse;
pub mod serve;

use std::sync::Arc;

use anyhow::Result;
use bytesize::ByteSize;
use candle_core::{DType, Device};
use clap::{Args, ValueEnum};

use folio::engine::{Engine, EngineConfig};
use folio::layout::{LayoutChoice, LayoutDetector};
use folio::models::hub::resolve_model;
use folio::models::paddleocr_vl::Checkpoint;
use folio::pipeline::pieces::MAX_LINE_WIDTH;
use folio::pipeline::reader::ReadOptions;

#[derive(Clone, Copy, ValueEnum)]
pub enum Precision {
    F32,
    Bf16,
}

/// Which checkpoint, in which precision.
#[derive(Args, Clone)]
pub struct ModelArgs {
    /// Checkpoint directory in the Hugging Face layout, or a Hub repository id (e.g.
    /// PaddlePaddle/PaddleOCR-VL). Default: folio's own small model, built into the binary.
    #[arg(long, env = "FOLIO_MODEL")]
    pub model: Option<String>,
    /// Weight and activation precision.
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: Precision,
}

impl ModelArgs {
    pub fn load(&self) -> Result<Arc<Checkpoint>> {
        let dir = match self.model.as_deref() {
            Some(spec) => resolve_model(spec)?,
            None => folio::models::embedded::model_dir()?,
        };
        let dtype = match self.dtype {
            Precision::F32 => DType::F32,
            Precision::Bf16 => DType::BF16,
        };
        let started = std::time::Instant::now();
        let ck = Checkpoint::load(&dir, dtype, &Device::Cpu)?;
        tracing::info!(model = %dir.display(), secs = started.elapsed().as_secs_f32(), "model loaded");
        Ok(Arc::new(ck))
    }
}

/// Engine limits: the KV pool is reserved once from `--kv-cache-memory` and never grows.
#[derive(Args, Clone)]
pub struct EngineArgs {
    /// Memory reserved for the KV cache at start-up, e.g. 512MiB or 2GiB.
    #[arg(long, default_value = "1GiB", value_parser = parse_bytes)]
    pub kv_cache_memory: u64,
    /// Tokens per KV block.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub block_size: u32,
    /// Most sequences decoding at once.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_num_seqs: u32,
    /// Most tokens (prefill chunks + decodes) per step.
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_num_batched_tokens: u32,
    /// Most vision patches encoded per step (one whole image always fits).
    #[arg(long, default_value_t = 16384, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub max_vision_patches_per_step: u32,
}

impl EngineArgs {
    pub fn config(&self) -> EngineConfig {
        EngineConfig {
            kv_cache_memory: self.kv_cache_memory as usize,
            block_size: self.block_size as usize,
            max_num_seqs: self.max_num_seqs as usize,
            max_num_batched_tokens: self.max_num_batched_tokens as usize,
            max_vision_patches_per_step: self.max_vision_patches_per_step as usize,
        }
    }

    pub fn start(&self, ck: Arc<Checkpoint>) -> Result<Engine> {
        Engine::start(ck, self.config())
    }
}

fn parse_bytes(s: &str) -> Result<u64, String> {
    let b: ByteSize = s.parse().map_err(|e| format!("'{s}' is not a size like 512MiB or 2GiB: {e}"))?;
    if b.as_u64() < 1 << 20 || b.as_u64() > 1 << 40 {
        return Err(format!("{s}: the KV cache must be between 1 MiB and 1 TiB"));
    }
    Ok(b.as_u64())
}

/// Which layout detector finds a page's regions (`ocr --page`, `parse`).
#[derive(Args, Clone)]
pub struct LayoutArgs {
    /// `default`: the CDLA PP-PicoDet model that scripts/setup.sh installs (FOLIO_LAYOUT_MODEL
    /// points to another copy); a path: another PaddleDetection PicoDet layout export (.onnx);
    /// `none`: each page is one column of text, no detection.
    #[arg(long = "layout", default_value = "default")]
    pub layout: LayoutChoice,
    /// Threads the layout model runs on (default: all cores).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub layout_threads: Option<u32>,
}

impl LayoutArgs {
    pub fn load(&self) -> Result<Box<dyn LayoutDetector>> {
        let threads = self
            .layout_threads
            .map(|n| n as usize)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        self.layout.load(threads)
    }
}

/// How pages are cut into line pieces and read (`ocr --page`, `parse`).
#[derive(Args, Clone)]
pub struct PageReadingArgs {
    /// Lines wider than this many pixels once scaled to the model's 48 px line height are split at
    /// word gaps (about 15 characters per piece at the default; shorter pieces read better, see
    /// `pipeline::pieces::MAX_LINE_WIDTH`). Pages only.
    #[arg(long, default_value_t = MAX_LINE_WIDTH, value_parser = clap::value_parser!(u32).range(200..=20000))]
    pub max_line_width: u32,
    /// Decide the space at each cut from the gap's width alone, without reading a window across
    /// the cut (faster; mixed-face lines such as "filename.bz2" may gain spaces). Pages only.
    #[arg(long)]
    pub no_seams: bool,
}

impl PageReadingArgs {
    /// Reading options with these flags; `max_tokens` per piece (default 128).
    pub fn options(&self, max_tokens: Option<u32>) -> ReadOptions {
        let defaults = ReadOptions::default();
        ReadOptions {
            max_tokens: max_tokens.map_or(defaults.max_tokens, |n| n as usize),
            max_line_width: self.max_line_width,
            seams: !self.no_seams,
            ..defaults
        }
    }
}
