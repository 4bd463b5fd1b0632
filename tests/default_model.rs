//! Keeps the embedded default model honest: it must read held-out synthetic lines — unseen text in
//! the training fonts, unseen text in the held-out font family, and unseen simplified-Chinese
//! text — under a CER bar, through the same engine path `folio ocr --page` uses. The full figures
//! (more lines, real PDF pages next to tesseract) are in models/folio-ocr-small/README.md.

use std::sync::Arc;

use anyhow::Result;
use candle_core::{DType, Device};

use folio::engine::sampling::SamplingParams;
use folio::engine::{Engine, EngineConfig, Request};
use folio::models::embedded;
use folio::models::paddleocr_vl::{Checkpoint, Task};
use folio::pipeline::metrics::CerTally;
use folio::synth::{Generator, Split, SynthConfig};
use folio::train::normalize_line;

const LINES: u64 = 50;

/// CER of the first `LINES` lines of `split` (data seed 1, as `folio eval lines` uses).
fn cer_on(engine: &Engine, gen: &Generator, split: Split) -> Result<CerTally> {
    let streams = (0..LINES)
        .map(|i| {
            let sample = gen.sample(split, i)?;
            let req = Request {
                images: vec![normalize_line(&sample.image)],
                instruction: Task::Ocr.prompt().to_string(),
                sampling: SamplingParams::greedy(128),
            };
            Ok((sample.text, engine.submit(req)?))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut tally = CerTally::default();
    for (reference, stream) in streams {
        let (text, ..) = stream.blocking_collect()?;
        tally.add(&reference, text.trim());
    }
    Ok(tally)
}

#[test]
fn the_default_model_reads_held_out_lines() -> Result<()> {
    let ck = Arc::new(Checkpoint::load(&embedded::model_dir()?, DType::F32, &Device::Cpu)?);
    let engine = Engine::start(ck, EngineConfig { kv_cache_memory: 64 << 20, ..EngineConfig::default() })?;
    // Able to draw eval-zh; the Chinese share shapes only the train split, so the Latin splits are
    // the ones `folio eval lines` draws.
    let gen = Generator::new(SynthConfig { seed: 1, ..SynthConfig::default() }.able_to_draw(Split::EvalZh))?;
    // Bars a little above the measured figures (model card), so a regression fails the test.
    for (split, bar) in [(Split::EvalText, 0.02), (Split::EvalFont, 0.06), (Split::EvalZh, 0.10)] {
        let tally = cer_on(&engine, &gen, split)?;
        eprintln!("{}: CER {:.2}% over {} chars", split.name(), 100.0 * tally.cer(), tally.chars);
        assert!(
            tally.cer() <= bar,
            "{}: CER {:.2}% above the bar {:.1}%",
            split.name(),
            100.0 * tally.cer(),
            100.0 * bar
        );
    }
    Ok(())
}
