//! `folio synth`: writes samples as PNG files plus a `labels.jsonl`.

use std::io::Write;

use image::GenericImageView;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use super::{Generator, LineStyle, Split, Style, SynthConfig};

#[derive(clap::Args, Debug)]
pub struct SynthArgs {
    /// Output directory (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of samples.
    #[arg(long, default_value_t = 100)]
    pub count: u64,
    /// First sample index (indices `start..start+count`).
    #[arg(long, default_value_t = 0)]
    pub start: u64,
    /// Which data: train, eval-text (held-out text), eval-font (held-out text and font family) or
    /// eval-zh (held-out Chinese text).
    #[arg(long, value_enum, default_value = "train")]
    pub split: Split,
    /// Data seed (default: the config file's, else 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// A JSON file with `SynthConfig` fields (--seed overrides its seed).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Also write a contact sheet of the first N samples (each with its label drawn underneath in
    /// red) to DIR/montage.png, for eyeballing.
    #[arg(long, value_name = "N")]
    pub montage: Option<usize>,
    /// Write only labels.jsonl, no PNG files (label statistics; generation speed).
    #[arg(long)]
    pub labels_only: bool,
}

/// file, text, font, width, height
type Row = (String, String, String, u32, u32);

#[derive(serde::Serialize)]
struct Label<'a> {
    file: &'a str,
    text: &'a str,
    font: &'a str,
    width: u32,
    height: u32,
}

pub fn run(args: SynthArgs) -> Result<()> {
    let mut cfg: SynthConfig = match &args.config {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
        }
        None => SynthConfig::default(),
    };
    if let Some(seed) = args.seed {
        cfg.seed = seed;
    }
    let cfg = cfg.able_to_draw(args.split);
    let seed = cfg.seed;
    let started = Instant::now();
    let gen = Generator::new(cfg)?;
    let load_secs = started.elapsed().as_secs_f64();
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;

    let pool = rayon::ThreadPoolBuilder::new().num_threads(args.jobs.unwrap_or(0)).build()?;
    let pb = ProgressBar::new(args.count);
    pb.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} [{elapsed_precise} < {eta_precise}] {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let t0 = Instant::now();
    let results: Vec<Result<Row>> = pool.install(|| {
        (args.start..args.start + args.count)
            .into_par_iter()
            .map(|i| {
                let s = gen.sample(args.split, i)?;
                let file = format!("{}-{i:08}.png", args.split.name());
                if !args.labels_only {
                    s.image.save(args.out.join(&file)).with_context(|| format!("writing {file}"))?;
                }
                pb.inc(1);
                Ok((file, s.text, s.font, s.image.width(), s.image.height()))
            })
            .collect()
    });
    pb.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();

    if let Some(n) = args.montage {
        let n = (n as u64).min(args.count);
        let sheet = montage(&gen, args.split, args.start..args.start + n)?;
        let path = args.out.join("montage.png");
        sheet.save(&path).with_context(|| format!("writing {}", path.display()))?;
    }

    let path = args.out.join("labels.jsonl");
    let mut out =
        std::io::BufWriter::new(std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?);
    for r in results {
        let (file, text, font, width, height) = r?;
        let line = serde_json::to_string(&Label { file: &file, text: &text, font: &font, width, height })?;
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    eprintln!(
        "wrote {} samples of split {} (seed {}) to {} in {:.1} s ({:.0} samples/s; fonts and corpus loaded in {:.2} s)",
        args.count,
        args.split,
        seed,
        args.out.display(),
        secs,
        args.count as f64 / secs.max(1e-9),
        load_secs
    );
    Ok(())
}

/// Stacks samples vertically, each followed by its label in red DejaVu Sans Mono (or the first
/// face), on a gray sheet at most 1600 pixels wide (wider samples are cut at the right).
pub fn montage(gen: &Generator, split: Split, indices: std::ops::Range<u64>) -> Result<image::RgbImage> {
    const MAX_W: u32 = 1600;
    let label_face = gen.face_index("DejaVu Sans Mono", Style::Regular).unwrap_or(0);
    let mut rows = Vec::new();
    for i in indices {
        let s = gen.sample(split, i)?;
        let mut st = LineStyle::clean(label_face, 14.0);
        st.ink = [0.8, 0.0, 0.0];
        st.pad = [0.1, 0.1, 0.1, 0.1];
        let caption = format!("{i}: {} [{}] {}x{}", s.text, s.font, s.image.width(), s.image.height());
        let label = gen.draw(&caption, &st)?.image;
        rows.push(s.image);
        rows.push(label);
    }
    let width = rows.iter().map(|r| r.width()).max().unwrap_or(1).min(MAX_W) + 8;
    let height: u32 = rows.iter().map(|r| r.height() + 4).sum::<u32>() + 4;
    let mut sheet = image::RgbImage::from_pixel(width, height, image::Rgb([150, 150, 150]));
    let mut y = 4;
    for (k, r) in rows.iter().enumerate() {
        image::imageops::replace(&mut sheet, &r.view(0, 0, r.width().min(MAX_W), r.height()).to_image(), 4, y as i64);
        y += r.height() + if k % 2 == 1 { 6 } else { 2 };
    }
    Ok(sheet)
}
