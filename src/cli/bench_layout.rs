//! `folio bench layout`: what layout costs per page — the detector's network (preprocessing and
//! decoding included), then fitting boxes to the ink, finding uncovered text and ordering — on
//! the user's own page images, with the detector's load time.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;

use folio::layout::order::reading_order;
use folio::layout::refine::{fit_to_ink, uncovered_text};
use folio::pipeline::source::load_image;

use super::LayoutArgs;

#[derive(Args)]
pub struct LayoutBenchArgs {
    /// Page images.
    #[arg(required = true)]
    pub pages: Vec<PathBuf>,
    /// Timed rounds over all pages, after one untimed warm-up round; medians are reported.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub rounds: u32,
    #[command(flatten)]
    pub layout: LayoutArgs,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn layout(a: LayoutBenchArgs) -> Result<()> {
    let started = Instant::now();
    let detector = a.layout.load()?;
    let load = started.elapsed().as_secs_f64();
    let pages =
        a.pages.iter().map(|p| load_image(p).with_context(|| p.display().to_string())).collect::<Result<Vec<_>>>()?;
    let (mut detect, mut refine) = (Vec::new(), Vec::new());
    for round in 0..=a.rounds {
        for page in &pages {
            let t = Instant::now();
            let mut regions = detector.detect(page)?;
            let d = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let gray = page.to_luma8();
            fit_to_ink(&mut regions, &gray);
            let missed = uncovered_text(&regions, &gray);
            regions.extend(missed);
            let ordered = reading_order(regions, page.width(), page.height());
            let r = t.elapsed().as_secs_f64();
            if round > 0 {
                detect.push(d);
                refine.push(r);
            }
            std::hint::black_box(ordered);
        }
    }
    let out = serde_json::json!({
        "detector": detector.name(),
        "pages": pages.len(),
        "rounds": a.rounds,
        "load_s": load,
        "detect_ms_median": 1e3 * median(detect),
        "refine_and_order_ms_median": 1e3 * median(refine),
    });
    println!("{out:#}");
    Ok(())
}
