//! `folio bench`: engine throughput and memory, measured side by side in one run.
//!
//! * `throughput`: the same crops (rendered text lines, or region-sized patterned crops) one request
//!   at a time, then all submitted at once (continuous batching); tokens/s of each, their ratio, and
//!   the fraction of KV blocks in use.
//! * `soak`: many requests of mixed sizes (up to the largest image the preprocessor allows) kept
//!   in flight, RSS and page faults sampled from /proc; drift between an early and a late window.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use image::{DynamicImage, Rgb, RgbImage};
use serde_json::json;

use folio::engine::sampling::SamplingParams;
use folio::engine::{Engine, Request, RequestStream};
use folio::models::paddleocr_vl::Task;
use folio::synth::{Generator, Split, SynthConfig};
use folio::train::LINE_CROP;

use super::{EngineArgs, ModelArgs};

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchKind,
}

#[derive(Subcommand)]
pub enum BenchKind {
    /// Continuous batching vs one request at a time on the same crops.
    Throughput(ThroughputArgs),
    /// Memory over a long run of mixed-size requests.
    Soak(SoakArgs),
    /// Layout detection, box fitting and reading order per page.
    Layout(super::bench_layout::LayoutBenchArgs),
}

#[derive(Args)]
pub struct ThroughputArgs {
    /// Number of crops.
    #[arg(long, default_value_t = 64)]
    pub requests: usize,
    /// New tokens per crop.
    #[arg(long, default_value_t = 24)]
    pub max_tokens: usize,
    /// Rounds of (one at a time, then batched), after an untimed warm-up of both; each round's
    /// ratio is reported, and the medians.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// What the crops are: `lines`, held-out synthetic text lines prepared as `ocr --page` prepares
    /// a line (what a reading model is for: outputs end where the text ends); `regions`, patterned
    /// crops the size of layout regions (lines and short paragraphs) that need no fonts.
    #[arg(long, value_enum, default_value_t = CropKind::Lines)]
    pub crops: CropKind,
    /// Also write the crops as PNGs here (for running the same crops through another engine).
    #[arg(long)]
    pub save_crops: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum CropKind {
    Lines,
    Regions,
}

#[derive(Args)]
pub struct SoakArgs {
    #[arg(long, default_value_t = 1000)]
    pub requests: usize,
    /// Requests kept in flight.
    #[arg(long, default_value_t = 96)]
    pub in_flight: usize,
    #[arg(long, default_value_t = 32)]
    pub max_tokens: usize,
    /// RSS sampling period in milliseconds.
    #[arg(long, default_value_t = 20)]
    pub interval_ms: u64,
    /// Write every sample (seconds, RSS bytes, minor faults, major faults) to this CSV.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

pub fn run(args: BenchArgs) -> Result<ExitCode> {
    match args.what {
        BenchKind::Throughput(a) => throughput(a),
        BenchKind::Soak(a) => soak(a),
        BenchKind::Layout(a) => super::bench_layout::layout(a),
    }?;
    Ok(ExitCode::SUCCESS)
}

/// A deterministic crop: sizes spread from small text lines to the largest allowed page.
fn crop(i: usize, max_side: u32) -> DynamicImage {
    let shapes = [(1.0, 0.12), (0.5, 0.5), (0.25, 0.9), (0.8, 0.3), (0.15, 0.15), (1.0, 1.0), (0.6, 0.08), (0.35, 0.6)];
    let (fw, fh) = shapes[i % shapes.len()];
    let jitter = 1.0 - 0.05 * ((i / shapes.len()) % 5) as f32;
    let (w, h) = (((max_side as f32 * fw * jitter) as u32).max(28), ((max_side as f32 * fh * jitter) as u32).max(28));
    DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
        let v = ((x * 31 + y * 17 + i as u32 * 97) % 255) as u8;
        Rgb([v, v.wrapping_mul(3), 255 - v])
    }))
}

/// A crop the size of what a layout detector cuts from a 150-dpi page: lines and short paragraphs.
fn region_crop(i: usize) -> DynamicImage {
    let sizes = [(900, 48), (600, 40), (400, 56), (800, 120), (300, 32), (700, 200), (500, 90), (1000, 60)];
    let (w, h) = sizes[i % sizes.len()];
    let shrink = 1.0 - 0.07 * ((i / sizes.len()) % 5) as f32;
    let (w, h) = (((w as f32 * shrink) as u32).max(28), ((h as f32 * shrink) as u32).max(28));
    DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
        let v = ((x * 31 + y * 17 + i as u32 * 97) % 255) as u8;
        Rgb([v, v.wrapping_mul(3), 255 - v])
    }))
}

/// Held-out synthetic text lines (eval-text split, training's data seed), normalised as a page's
/// lines are before they reach the engine.
fn text_lines(n: usize) -> Result<Vec<DynamicImage>> {
    let gen = Generator::new(SynthConfig { seed: 1, ..SynthConfig::default() })
        .context("synthetic-data generator for --crops lines (fonts: run scripts/setup.sh, or use --crops regions)")?;
    (0..n as u64).map(|i| Ok(LINE_CROP.normalize(&gen.sample(Split::EvalText, i)?.image))).collect()
}

/// Side of the largest square the checkpoint's preprocessor accepts without shrinking.
fn max_side(engine: &Engine) -> u32 {
    (engine.checkpoint().images.cfg.max_pixels as f64).sqrt() as u32
}

fn submit(engine: &Engine, image: DynamicImage, max_tokens: usize) -> Result<RequestStream> {
    // Greedy, no repetition guard: requests decode until EOS or max_tokens whatever the model says.
    let sampling = SamplingParams { repetition_guard: false, ..SamplingParams::greedy(max_tokens) };
    engine.submit(Request { images: vec![image], instruction: Task::Ocr.prompt().into(), sampling })
}

/// Tokens/s and KV use of one pass over the crops.
struct Pass {
    tokens: usize,
    seconds: f64,
    peak_blocks: usize,
    /// Mean fraction of KV blocks in use while requests were waiting for room, and its sample count.
    saturated: (f64, usize),
}

impl Pass {
    fn tokens_per_s(&self) -> f64 {
        self.tokens as f64 / self.seconds
    }
}

/// One request at a time: each is submitted (and preprocessed) only after the previous one ended.
fn serial_pass(engine: &Engine, crops: &[DynamicImage], max_tokens: usize) -> Result<Pass> {
    let start = Instant::now();
    let mut tokens = 0;
    for c in crops {
        tokens += submit(engine, c.clone(), max_tokens)?.blocking_collect()?.1.len();
    }
    Ok(Pass { tokens, seconds: start.elapsed().as_secs_f64(), peak_blocks: 0, saturated: (0.0, 0) })
}

/// Everything submitted at once (preprocessing included), then every stream read to its end.
fn batched_pass(engine: &Engine, crops: &[DynamicImage], max_tokens: usize) -> Result<Pass> {
    let start = Instant::now();
    let streams = crops.iter().map(|c| submit(engine, c.clone(), max_tokens)).collect::<Result<Vec<_>>>()?;
    let (mut tokens, mut peak_blocks) = (0, 0);
    let (mut saturated_sum, mut saturated_n) = (0.0, 0usize);
    for mut s in streams {
        while let Some(ev) = s.blocking_next() {
            let st = engine.stats();
            peak_blocks = peak_blocks.max(st.blocks_used);
            if st.waiting > 0 {
                saturated_sum += st.blocks_used as f64 / st.blocks_total as f64;
                saturated_n += 1;
            }
            if let folio::engine::Event::Delta { tokens: t, .. } = ev {
                tokens += t.len();
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let saturated = (if saturated_n > 0 { saturated_sum / saturated_n as f64 } else { 0.0 }, saturated_n);
    Ok(Pass { tokens, seconds, peak_blocks, saturated })
}

/// One round: both modes to `max_tokens`, then both stopped after the first token.
struct Round {
    serial: Pass,
    batched: Pass,
    serial_first: f64,
    batched_first: f64,
}

impl Round {
    fn speedup(&self) -> f64 {
        self.batched.tokens_per_s() / self.serial.tokens_per_s()
    }

    /// Batched over serial on the time after the first token (decode steps alone); `None` when
    /// that time is lost in the noise of a pass (a difference that is not positive).
    fn decode_speedup(&self) -> Option<f64> {
        let (serial, batched) = (self.serial.seconds - self.serial_first, self.batched.seconds - self.batched_first);
        (serial > 0.0 && batched > 0.0).then(|| serial / batched)
    }

    /// The speedup if batched decoding took no time at all: serial time over the batched time to
    /// first tokens (Amdahl's bound for these crops on this machine).
    fn ceiling(&self) -> f64 {
        self.serial.seconds / self.batched_first.max(1e-9)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn throughput(a: ThroughputArgs) -> Result<()> {
    let engine = a.engine.start(a.model.load()?)?;
    // The crops are the input, rendered before anything is timed; preprocessing them (resize,
    // normalise, patchify in `Engine::submit`) is part of every request and stays inside the timing.
    let crops: Vec<DynamicImage> = match a.crops {
        CropKind::Regions => (0..a.requests).map(region_crop).collect(),
        CropKind::Lines => text_lines(a.requests)?,
    };
    if let Some(dir) = &a.save_crops {
        std::fs::create_dir_all(dir)?;
        for (i, c) in crops.iter().enumerate() {
            c.save(dir.join(format!("crop_{i:04}.png")))?;
        }
    }
    // Warm-up, untimed: page in the weights, touch the pool, grow the allocator's arenas, both modes.
    serial_pass(&engine, &crops[..crops.len().min(4)], a.max_tokens)?;
    batched_pass(&engine, &crops, a.max_tokens)?;

    let preempted_before = engine.stats().preemptions;
    let mut rounds = Vec::with_capacity(a.rounds);
    for _ in 0..a.rounds.max(1) {
        let serial = serial_pass(&engine, &crops, a.max_tokens)?;
        let batched = batched_pass(&engine, &crops, a.max_tokens)?;
        // The same passes stopped after the first token: preprocessing, vision and prefill only,
        // the part of a request that decoding's batching cannot amortise.
        let serial_first = serial_pass(&engine, &crops, 1)?.seconds;
        let batched_first = batched_pass(&engine, &crops, 1)?.seconds;
        rounds.push(Round { serial, batched, serial_first, batched_first });
    }
    let stats = engine.stats();
    let medians = |f: &dyn Fn(&Round) -> f64| median(rounds.iter().map(f).collect());
    let peak_blocks = rounds.iter().map(|r| r.batched.peak_blocks).max().unwrap_or(0);
    let (sat_sum, sat_n) = rounds
        .iter()
        .map(|r| r.batched.saturated)
        .fold((0.0, 0), |(s, n), (mean, count)| (s + mean * count as f64, n + count));
    let decode_speedups: Vec<f64> = rounds.iter().filter_map(Round::decode_speedup).collect();
    let decode_median = (!decode_speedups.is_empty()).then(|| median(decode_speedups));
    let report = json!({
        "requests": a.requests,
        "max_tokens": a.max_tokens,
        "rounds": rounds.iter().map(|r| json!({
            "serial": {"tokens": r.serial.tokens, "seconds": r.serial.seconds, "tokens_per_s": r.serial.tokens_per_s()},
            "batched": {"tokens": r.batched.tokens, "seconds": r.batched.seconds, "tokens_per_s": r.batched.tokens_per_s()},
            "first_token_only": {"serial_seconds": r.serial_first, "batched_seconds": r.batched_first},
            "speedup": r.speedup(),
            "decode_speedup": r.decode_speedup(),
            "speedup_ceiling": r.ceiling(),
        })).collect::<Vec<_>>(),
        // Medians over the rounds; `serial`/`batched` keep the keys tools/bench/hf_compare.py reads.
        "serial": {"tokens_per_s": medians(&|r| r.serial.tokens_per_s())},
        "batched": {"tokens_per_s": medians(&|r| r.batched.tokens_per_s())},
        "speedup_median": medians(&Round::speedup),
        "decode_speedup_median": decode_median,
        "speedup_ceiling_median": medians(&Round::ceiling),
        "batched_preemptions": stats.preemptions - preempted_before,
        "kv_blocks_total": stats.blocks_total,
        "kv_blocks_peak_used": peak_blocks,
        "kv_peak_fraction": peak_blocks as f64 / stats.blocks_total as f64,
        "kv_mean_fraction_while_requests_wait": if sat_n > 0 { Some(sat_sum / sat_n as f64) } else { None },
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Resident set size (bytes) and fault counts of this process, from /proc.
fn memory_sample() -> Result<(u64, u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("VmRSS missing")?;
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the parenthesised command name; minflt and majflt are the 10th and 12th fields.
    let rest = stat.rsplit_once(')').context("bad /proc/self/stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Ok((rss_kb * 1024, num(7), num(9)))
}

fn soak(a: SoakArgs) -> Result<()> {
    let ck = a.model.load()?;
    let weights: u64 = folio::models::paddleocr_vl::weight_files(&ck.dir)?
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let engine = a.engine.start(ck)?;
    let pool = engine.stats().kv_cache_bytes as u64;
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let sampler = {
        let stop = stop.clone();
        let interval = Duration::from_millis(a.interval_ms.max(1));
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if let Ok(s) = memory_sample() {
                    samples.push((t0.elapsed().as_secs_f64(), s.0, s.1, s.2));
                }
                std::thread::sleep(interval);
            }
            samples
        })
    };

    let mut in_flight = std::collections::VecDeque::new();
    let mut tokens = 0;
    for i in 0..a.requests {
        if in_flight.len() >= a.in_flight {
            let s: RequestStream = in_flight.pop_front().context("in flight")?;
            tokens += s.blocking_collect()?.1.len();
        }
        in_flight.push_back(submit(&engine, crop(i, max_side(&engine)), a.max_tokens)?);
    }
    for s in in_flight {
        tokens += s.blocking_collect()?.1.len();
    }
    let secs = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().map_err(|_| anyhow::anyhow!("sampler thread panicked"))?;

    if let Some(path) = &a.csv {
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        writeln!(f, "seconds,rss_bytes,minor_faults,major_faults")?;
        for (t, rss, minf, majf) in &samples {
            writeln!(f, "{t:.3},{rss},{minf},{majf}")?;
        }
    }
    // Windows: the first and last 10% of the run after the first 10% (warm-up).
    let n = samples.len();
    let window = (n / 10).max(1);
    let mean = |s: &[(f64, u64, u64, u64)]| s.iter().map(|x| x.1 as f64).sum::<f64>() / s.len().max(1) as f64;
    let early = mean(&samples[window.min(n)..(2 * window).min(n)]);
    let late = mean(&samples[n.saturating_sub(window)..]);
    let peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let faults = |s: Option<&(f64, u64, u64, u64)>| s.map_or(0, |x| x.2);
    let report = json!({
        "requests": a.requests, "in_flight": a.in_flight, "tokens": tokens, "seconds": secs,
        "tokens_per_s": tokens as f64 / secs,
        "samples": n,
        "rss_early_mib": early / 1048576.0, "rss_late_mib": late / 1048576.0,
        "drift_percent": 100.0 * (late - early) / early.max(1.0),
        "rss_peak_mib": peak as f64 / 1048576.0,
        "kv_pool_mib": pool as f64 / 1048576.0,
        "weights_mib": weights as f64 / 1048576.0,
        "minor_faults_early_window": faults(samples.get(2 * window)).saturating_sub(faults(samples.get(window))),
        "minor_faults_late_window": faults(samples.last()).saturating_sub(faults(samples.get(n.saturating_sub(window)))),
        "preemptions": engine.stats().preemptions,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
