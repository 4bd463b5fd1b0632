//! `folio eval`: measure accuracy.
//!
//! - `eval lines`: character error rate on rendered synthetic lines (the same generator and
//!   defaults as training), through the engine exactly as `ocr --page` reads a line.
//! - `eval cer`: page-level CER of a hypothesis text against a reference text, whitespace
//!   normalised, or removed for Chinese (used by `tools/eval/pdf_vs_tesseract.sh` for PDF pages).

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use rayon::prelude::*;
use serde::Serialize;

use folio::engine::sampling::SamplingParams;
use folio::engine::Request;
use folio::models::paddleocr_vl::Task;
use folio::pipeline::metrics::{char_count, levenshtein, normalize_whitespace, remove_whitespace, word_f1, CerTally};
use folio::synth::{Generator, Split, SynthConfig};
use folio::train::LINE_CROP;

use super::{EngineArgs, ModelArgs};

#[derive(Args)]
pub struct EvalArgs {
    #[command(subcommand)]
    pub what: EvalCommand,
}

#[derive(Subcommand)]
pub enum EvalCommand {
    /// CER and exact-line accuracy on rendered synthetic lines.
    Lines(LinesArgs),
    /// Page-level CER of a hypothesis text file against a reference text file.
    Cer(CerArgs),
}

#[derive(Args)]
pub struct LinesArgs {
    /// Which data: eval-text (held-out text, training fonts), eval-font (held-out text and font
    /// families), eval-zh (held-out Chinese text) or train.
    #[arg(long, value_enum)]
    pub split: Split,
    /// Number of lines.
    #[arg(long, default_value_t = 200)]
    pub count: u64,
    /// First sample index.
    #[arg(long, default_value_t = 0)]
    pub start: u64,
    /// Data seed (`SynthConfig::seed`; training uses 1).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Most new tokens per line.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=32768))]
    pub max_tokens: u32,
    /// How many of the worst lines to show.
    #[arg(long, default_value_t = 10)]
    pub worst: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Args)]
pub struct CerArgs {
    /// The ground truth (UTF-8 text).
    #[arg(long)]
    pub reference: PathBuf,
    /// The text read (UTF-8 text).
    #[arg(long)]
    pub hypothesis: PathBuf,
    /// Remove all whitespace from both texts instead of collapsing it: for Chinese and Japanese,
    /// which do not put spaces between words (tesseract and `pdftotext -layout` put spaces between
    /// some of their characters).
    #[arg(long)]
    pub no_whitespace: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: EvalArgs) -> Result<ExitCode> {
    match args.what {
        EvalCommand::Lines(a) => lines(a),
        EvalCommand::Cer(a) => cer(a),
    }
}

#[derive(Serialize)]
struct LineResult {
    index: u64,
    font: String,
    edits: usize,
    chars: usize,
    reference: String,
    hypothesis: String,
}

#[derive(Serialize)]
struct FamilyTally {
    family: String,
    cer: f64,
    #[serde(flatten)]
    tally: CerTally,
}

#[derive(Serialize)]
struct LinesReport {
    model: String,
    split: String,
    seed: u64,
    start: u64,
    count: u64,
    cer: f64,
    exact: f64,
    edits: usize,
    chars: usize,
    exact_lines: usize,
    secs: f64,
    lines_per_sec: f64,
    by_family: Vec<FamilyTally>,
    worst: Vec<LineResult>,
}

/// "Nimbus Roman Bold Italic" → "Nimbus Roman".
fn family_of(font: &str) -> &str {
    for suffix in [" Bold Italic", " Bold", " Italic"] {
        if let Some(f) = font.strip_suffix(suffix) {
            return f;
        }
    }
    font
}

fn lines(args: LinesArgs) -> Result<ExitCode> {
    let gen = Generator::new(SynthConfig { seed: args.seed, ..SynthConfig::default() }.able_to_draw(args.split))
        .context("synthetic-data generator (fonts: run scripts/setup.sh)")?;
    let ck = args.model.load()?;
    let model_dir = ck.dir.display().to_string();
    // A line model's own rule; a block model reads the lines as folio's models are trained on them.
    let line_crop = ck.reading.line_crop().unwrap_or(LINE_CROP);
    let engine = args.engine.start(ck)?;
    let started = Instant::now();
    let indices: Vec<u64> = (args.start..args.start + args.count).collect();
    // Rendered in parallel, lazily in windows, so a large --count does not hold every prepared
    // image at once.
    const WINDOW: usize = 256;
    let sampling = SamplingParams::greedy(args.max_tokens as usize);
    let mut results: Vec<LineResult> = Vec::with_capacity(indices.len());
    let mut in_flight = VecDeque::new();
    for chunk in indices.chunks(WINDOW / 2) {
        let samples =
            chunk.par_iter().map(|&i| gen.sample(args.split, i).map(|s| (i, s))).collect::<Result<Vec<_>>>()?;
        for (i, s) in samples {
            let req = Request {
                images: vec![line_crop.normalize(&s.image)],
                instruction: Task::Ocr.prompt().to_string(),
                sampling: sampling.clone(),
            };
            in_flight.push_back((i, s.font, s.text, engine.submit(req)?));
        }
        while in_flight.len() > WINDOW / 2 {
            results.push(finish(in_flight.pop_front())?);
        }
    }
    while !in_flight.is_empty() {
        results.push(finish(in_flight.pop_front())?);
    }
    let secs = started.elapsed().as_secs_f64();

    let mut total = CerTally::default();
    let mut families: BTreeMap<String, CerTally> = BTreeMap::new();
    for r in &results {
        total.add_counts(r.edits, r.chars);
        families.entry(family_of(&r.font).to_string()).or_default().add_counts(r.edits, r.chars);
    }
    let by_family =
        families.into_iter().map(|(family, tally)| FamilyTally { family, cer: tally.cer(), tally }).collect();
    results.sort_by(|a, b| {
        b.edits
            .cmp(&a.edits)
            .then_with(|| (b.edits * a.chars.max(1)).cmp(&(a.edits * b.chars.max(1))))
            .then(a.index.cmp(&b.index))
    });
    results.truncate(args.worst);
    let report = LinesReport {
        model: model_dir,
        split: args.split.name().to_string(),
        seed: args.seed,
        start: args.start,
        count: args.count,
        cer: total.cer(),
        exact: total.exact_rate(),
        edits: total.edits,
        chars: total.chars,
        exact_lines: total.exact,
        secs,
        lines_per_sec: args.count as f64 / secs.max(1e-9),
        by_family,
        worst: results,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_lines_report(&report);
    }
    Ok(ExitCode::SUCCESS)
}

type InFlight = (u64, String, String, folio::engine::RequestStream);

fn finish(item: Option<InFlight>) -> Result<LineResult> {
    let (index, font, reference, stream) = item.context("nothing in flight")?;
    let (text, ..) = stream.blocking_collect().with_context(|| format!("sample {index}"))?;
    let hypothesis = text.trim().to_string();
    let edits = levenshtein(&reference, &hypothesis);
    Ok(LineResult { index, font, edits, chars: char_count(&reference), reference, hypothesis })
}

fn print_lines_report(r: &LinesReport) {
    println!("model {}  split {}  seed {}  samples {}..{}", r.model, r.split, r.seed, r.start, r.start + r.count);
    println!(
        "CER {:.2}% ({} edits / {} chars)   exact lines {:.1}% ({}/{})   {:.1} s, {:.1} lines/s",
        100.0 * r.cer,
        r.edits,
        r.chars,
        100.0 * r.exact,
        r.exact_lines,
        r.count,
        r.secs,
        r.lines_per_sec
    );
    println!("\nby font family:");
    for f in &r.by_family {
        println!(
            "  {:<28} CER {:>6.2}%  lines {:>4}  chars {:>6}",
            f.family,
            100.0 * f.cer,
            f.tally.items,
            f.tally.chars
        );
    }
    if !r.worst.is_empty() {
        println!("\nworst {} lines:", r.worst.len());
        for w in &r.worst {
            println!("  #{} [{}] {} edits / {} chars", w.index, w.font, w.edits, w.chars);
            println!("    ref: {}", w.reference);
            println!("    hyp: {}", w.hypothesis);
        }
    }
}

fn cer(args: CerArgs) -> Result<ExitCode> {
    let read =
        |p: &PathBuf| std::fs::read_to_string(p).with_context(|| format!("{}: cannot read as UTF-8 text", p.display()));
    let normalise = if args.no_whitespace { remove_whitespace } else { normalize_whitespace };
    let reference = normalise(&read(&args.reference)?);
    let hypothesis = normalise(&read(&args.hypothesis)?);
    let edits = levenshtein(&reference, &hypothesis);
    let mut t = CerTally::default();
    t.add_counts(edits, char_count(&reference));
    // Words are taken from the texts as read (whitespace kept), so order-free F1 sees the words.
    let f = word_f1(&read(&args.reference)?, &read(&args.hypothesis)?);
    if args.json {
        let out = serde_json::json!({
            "cer": t.cer(),
            "edits": edits,
            "chars": t.chars,
            "hypothesis_chars": char_count(&hypothesis),
            "word_f1": f.f1,
            "word_precision": f.precision,
            "word_recall": f.recall,
        });
        println!("{out}");
    } else {
        println!(
            "CER {:.2}% ({} edits / {} reference chars; hypothesis {} chars); order-free word F1 {:.2}%",
            100.0 * t.cer(),
            edits,
            t.chars,
            char_count(&hypothesis),
            100.0 * f.f1
        );
    }
    Ok(ExitCode::SUCCESS)
}
