//! Training folio's small PaddleOCR-VL-architecture OCR model on synthetic text lines, with candle
//! on CPU, through exactly the model code that serves inference.
//!
//! A run lives in one directory: `model/` is the checkpoint in the Hugging Face layout (what ships),
//! `state/` the optimizer moments and step (for resuming), `log.jsonl` one line per logged step.
//! Data are a pure function of (seed, index), so resuming at step `s` sees the same batches an
//! uninterrupted run would.

pub mod adamw;
pub mod ctc;
pub mod export;
mod init;
pub mod tokenizer;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{Module, VarBuilder, VarMap};
use clap::Args;
use image::{imageops::FilterType, DynamicImage, RgbImage};
use serde_json::json;

use crate::models::kv::{SeqChunk, StepLayout};
use crate::models::no_cache::NoKvCache;
use crate::models::paddleocr_vl::{
    prompt_positions, Config, ImageProcessor, PaddleOcrVl, PreparedImage, PreprocessorConfig, PromptBuilder, Task,
};
use crate::synth::{Generator, Split, SynthConfig};
use adamw::AdamW;
use init::{initialise, load_present};

/// Line crops are scaled to this height before preprocessing, in training and in `ocr --page`.
pub const LINE_HEIGHT: u32 = 48;

/// Scales a text-line crop to [`LINE_HEIGHT`], keeping its aspect ratio.
pub fn normalize_line(img: &RgbImage) -> DynamicImage {
    let (w, h) = img.dimensions();
    let w2 = ((w as f64 * LINE_HEIGHT as f64 / h.max(1) as f64).round() as u32).clamp(1, 4000);
    DynamicImage::ImageRgb8(image::imageops::resize(img, w2, LINE_HEIGHT, FilterType::Triangle))
}

#[derive(Args, Clone)]
pub struct TrainArgs {
    /// Run directory (created; resumed when it holds a run).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 6000)]
    pub steps: usize,
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    #[arg(long, default_value_t = 200)]
    pub warmup: usize,
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    /// Seed of the weights' initialisation and of the data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Save model and optimizer state every N steps.
    #[arg(long, default_value_t = 100)]
    pub checkpoint_every: usize,
    /// Log every N steps.
    #[arg(long, default_value_t = 10)]
    pub log_every: usize,
    /// Data curriculum: comma-separated `STEP:MAX_CHARS:AUGMENT` stages, each in force from its step
    /// on. Short clean lines first let the decoder find the image-to-text alignment quickly; a model
    /// started on full lines spends thousands of steps as a pure language model.
    #[arg(long, default_value = "0:8:0.2,800:16:0.4,1600:32:0.7,2400:60:1")]
    pub curriculum: Curriculum,
    /// Weight of the auxiliary CTC loss on the vision tower's patch columns (0 turns it off).
    #[arg(long, default_value_t = 1.0)]
    pub ctc_weight: f64,
    /// Start a new run from this model directory's weights and files (a run's `model/` or a
    /// shipped model) instead of random ones, with a fresh optimizer and learning-rate schedule.
    /// Weights it lacks (a shipped model has no CTC head) start from the usual initialisation.
    /// Give a new `--seed` so the run does not see the batches the first one saw.
    #[arg(long)]
    pub init_from: Option<PathBuf>,
    /// Share of the training lines that are simplified Chinese (0 to 1). Above 0, the Chinese
    /// characters join the vocabulary: a new run's tokenizer, or `--init-from`'s grown.
    #[arg(long, default_value_t = 0.0)]
    pub chinese: f32,
}

/// Stages of the training data, sorted by the step they start at.
#[derive(Clone, Debug, PartialEq)]
pub struct Curriculum(Vec<Stage>);

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stage {
    pub from_step: usize,
    pub max_chars: usize,
    pub augment: f32,
}

impl std::str::FromStr for Curriculum {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let mut stages = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let fields: Vec<&str> = part.split(':').collect();
            let [step, chars, augment] = fields.as_slice() else {
                return Err(format!("stage {part:?} is not STEP:MAX_CHARS:AUGMENT"));
            };
            let bad = |what: &str| format!("stage {part:?}: bad {what}");
            let stage = Stage {
                from_step: step.parse().map_err(|_| bad("step"))?,
                max_chars: chars.parse().map_err(|_| bad("max chars"))?,
                augment: augment.parse().map_err(|_| bad("augment"))?,
            };
            if stage.max_chars == 0 || !(0.0..=4.0).contains(&stage.augment) {
                return Err(format!("stage {part:?}: need max chars >= 1 and 0 <= augment <= 4"));
            }
            if stages.last().is_some_and(|p: &Stage| p.from_step >= stage.from_step) {
                return Err("stages must start at increasing steps".into());
            }
            stages.push(stage);
        }
        match stages.first() {
            Some(first) if first.from_step == 0 => Ok(Curriculum(stages)),
            Some(_) => Err("the first stage must start at step 0".into()),
            None => Err("empty curriculum".into()),
        }
    }
}

impl Curriculum {
    /// Index of the stage in force at `step`.
    fn stage_at(&self, step: usize) -> usize {
        self.0.iter().rposition(|s| s.from_step <= step).unwrap_or(0)
    }
}

struct Example {
    image: PreparedImage,
    ids: Vec<u32>,
    prompt_len: usize,
}

fn lr_at(args: &TrainArgs, step: usize) -> f64 {
    if step < args.warmup {
        return args.lr * (step + 1) as f64 / args.warmup as f64;
    }
    let t = (step - args.warmup) as f64 / (args.steps - args.warmup).max(1) as f64;
    args.lr * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos()))
}

/// Turns rendered lines into training examples, as inference would see them.
struct Preparer {
    images: ImageProcessor,
    prompts: PromptBuilder,
    merge: usize,
    eos: u32,
}

impl Preparer {
    fn load(dir: &Path, cfg: &Config) -> Result<Self> {
        let prompts = PromptBuilder::from_dir(dir, cfg)?;
        let eos = *prompts.stop_token_ids().first().context("no EOS token")?;
        let images = ImageProcessor::new(PreprocessorConfig::from_file(&dir.join("preprocessor_config.json"))?);
        Ok(Self { images, prompts, merge: cfg.vision.spatial_merge_size, eos })
    }

    /// Batch `index`: render, normalise, preprocess, prompt + label + EOS.
    fn batch(&self, gen: &Generator, index: u64, batch: usize) -> Result<Vec<Example>> {
        (0..batch as u64)
            .map(|i| {
                let sample = gen.sample(Split::Train, index * batch as u64 + i)?;
                let image = self.images.prepare(&normalize_line(&sample.image))?;
                let tokens = image.grid.patches() / (self.merge * self.merge);
                let mut ids = self.prompts.encode(&[tokens], Task::Ocr.prompt())?;
                let prompt_len = ids.len();
                ids.extend(self.prompts.encode_text(&sample.text)?);
                ids.push(self.eos);
                Ok(Example { image, ids, prompt_len })
            })
            .collect()
    }
}

/// The auxiliary CTC head (see [`ctc`]): a linear map from each patch column of the vision
/// features (mean over the column's patches) to the vocabulary plus a blank. Its weights live in
/// the run's checkpoint under `aux_ctc.` (the inference loader never asks for them; shipping drops
/// them).
struct CtcHead {
    proj: candle_nn::Linear,
    classes: usize,
    weight: f64,
}

impl CtcHead {
    const PREFIX: &'static str = "aux_ctc";

    fn new(cfg: &Config, vb: VarBuilder, weight: f64) -> Result<Self> {
        let classes = cfg.text.vocab_size + 1;
        let proj = candle_nn::linear(cfg.vision.hidden_size, classes, vb.pp(Self::PREFIX).pp("proj"))?;
        Ok(Self { proj, classes, weight })
    }

    /// CTC loss per label token, averaged over the examples that admit an alignment (an example
    /// whose line has fewer columns than it needs is skipped), as a value and as a tensor whose
    /// gradient is the CTC gradient.
    fn loss(&self, features: &Tensor, batch: &[Example]) -> Result<(f64, Tensor)> {
        // Columns are numbered across the batch; one scatter-add sums each column's patches (a
        // slice per image would cost a full-size pass each in the backward).
        let (mut column_of, mut inv_rows, mut total) = (Vec::new(), Vec::new(), 0);
        for e in batch {
            let (rows, cols) = (e.image.grid.rows, e.image.grid.cols);
            column_of.extend((0..rows * cols).map(|p| (total + p % cols) as u32));
            inv_rows.extend(std::iter::repeat_n(1.0 / rows as f32, cols));
            total += cols;
        }
        let (dev, hidden) = (features.device(), features.dim(1)?);
        let column_of = Tensor::from_vec(column_of, features.dim(0)?, dev)?;
        let sums = Tensor::zeros((total, hidden), features.dtype(), dev)?.index_add(&column_of, features, 0)?;
        let columns = sums.broadcast_mul(&Tensor::from_vec(inv_rows, (total, 1), dev)?)?;
        let logits = self.proj.forward(&columns)?;
        let values: Vec<f32> = logits.flatten_all()?.to_vec1()?;
        let blank = (self.classes - 1) as u32;
        // Per-label-token gradients of the examples that admit an alignment; 0 for the others.
        let mut grad = vec![0f32; values.len()];
        let (mut total, mut valid, mut row) = (0.0, 0usize, 0usize);
        for e in batch {
            let cols = e.image.grid.cols;
            let labels = &e.ids[e.prompt_len..e.ids.len() - 1]; // without EOS
            let span = row * self.classes..(row + cols) * self.classes;
            if let Some(out) = ctc::ctc(&values[span.clone()], self.classes, labels, blank) {
                let n = labels.len().max(1) as f32;
                total += out.loss / n as f64;
                valid += 1;
                for (dst, src) in grad[span].iter_mut().zip(out.grad) {
                    *dst = src / n;
                }
            }
            row += cols;
        }
        let valid = valid.max(1) as f64;
        let grad = (Tensor::from_vec(grad, logits.shape(), logits.device())? / valid)?;
        // d/dlogits of sum(logits ⊙ grad) is grad: the exact CTC gradient, flowing back from here.
        let surrogate = (logits * grad)?.sum_all()?;
        Ok((total / valid, surrogate))
    }
}

/// Losses of one step: the total to minimise, and its parts for the log.
struct Losses {
    total: Tensor,
    ce: f64,
    ctc: Option<f64>,
}

/// Mean cross-entropy of the label tokens (teacher forcing), all examples packed in one step, plus
/// the weighted auxiliary CTC loss when a head is given.
fn loss(model: &PaddleOcrVl, batch: &[Example], ctc_head: Option<&CtcHead>) -> Result<Losses> {
    let image_id = model.cfg.tokens.image_token_id;
    let merge = model.cfg.vision.spatial_merge_size;
    let images: Vec<&PreparedImage> = batch.iter().map(|e| &e.image).collect();
    let grids: Vec<_> = images.iter().map(|i| i.grid).collect();
    let features = model.vision_features(&images)?;
    let embeds = model.project(&features, &grids)?;
    let (mut xs, mut positions, mut chunks, mut rows, mut labels) = (vec![], vec![], vec![], vec![], vec![]);
    let mut start = 0u32;
    for (i, (e, img)) in batch.iter().zip(&embeds).enumerate() {
        xs.push(model.prompt_embeddings(&e.ids, 0..e.ids.len(), Some(img))?);
        positions.extend(prompt_positions(&e.ids, image_id, &[e.image.grid], merge)?.0);
        chunks.push(SeqChunk { seq: i, cached: 0, new: e.ids.len() });
        for j in e.prompt_len..e.ids.len() {
            rows.push(start + j as u32 - 1);
            labels.push(e.ids[j]);
        }
        start += e.ids.len() as u32;
    }
    let layout = StepLayout { chunks };
    let hidden = model.decode_step(&Tensor::cat(&xs, 0)?, &positions, &layout, &mut NoKvCache)?;
    let logits = model.logits(&hidden.index_select(&Tensor::new(rows.as_slice(), &Device::Cpu)?, 0)?)?;
    let ce = candle_nn::loss::cross_entropy(&logits, &Tensor::new(labels.as_slice(), &Device::Cpu)?)?;
    let ce_value = ce.to_scalar::<f32>()? as f64;
    match ctc_head {
        Some(head) if head.weight > 0.0 => {
            let (value, surrogate) = head.loss(&features, batch)?;
            Ok(Losses { total: (ce + (surrogate * head.weight)?)?, ce: ce_value, ctc: Some(value) })
        }
        _ => Ok(Losses { total: ce, ce: ce_value, ctc: None }),
    }
}

/// Loss on `batch` with every image replaced by blank paper. Logged next to the training loss: a
/// model that reads has a blank loss far above its real one; equal losses mean the decoder has
/// learnt to ignore the image (the failure this curriculum and preprocessing are set up to avoid).
fn blank_image_loss(model: &PaddleOcrVl, batch: &[Example], paper: f32) -> Result<f64> {
    let blank = batch
        .iter()
        .map(|e| -> Result<Example> {
            let patches = (e.image.patches.zeros_like()? + paper as f64)?;
            Ok(Example {
                image: PreparedImage { patches, grid: e.image.grid },
                ids: e.ids.clone(),
                prompt_len: e.prompt_len,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(loss(model, &blank, None)?.ce)
}

/// One optimizer step on `batch`; returns the losses and the gradient norm before clipping.
fn train_step(
    model: &PaddleOcrVl,
    ctc_head: Option<&CtcHead>,
    opt: &mut AdamW,
    batch: &[Example],
    lr: f64,
) -> Result<(Losses, f64)> {
    let l = loss(model, batch, ctc_head)?;
    let norm = opt.step(&l.total.backward()?, lr, 1.0)?;
    Ok((l, norm))
}

pub fn run(args: TrainArgs) -> Result<()> {
    if args.batch == 0 || args.steps == 0 || args.warmup >= args.steps {
        bail!("need batch > 0 and 0 <= warmup < steps");
    }
    let model_dir = args.out.join("model");
    let state_dir = args.out.join("state");
    std::fs::create_dir_all(&state_dir)?;
    let base = Generator::new(SynthConfig { seed: args.seed, chinese: args.chinese, ..SynthConfig::default() })?;
    let gens =
        args.curriculum.0.iter().map(|st| base.with_stage(st.max_chars, st.augment)).collect::<Result<Vec<_>>>()?;
    let charset = base.charset();
    let resuming = model_dir.join("model.safetensors").is_file() && state_dir.join("optimizer.safetensors").is_file();
    if !resuming {
        match &args.init_from {
            Some(from) if from.canonicalize().ok() == model_dir.canonicalize().ok() && model_dir.exists() => {
                bail!("--init-from {} is this run's own model directory", from.display())
            }
            Some(from) => {
                export::copy_model_files(from, &model_dir)?;
                let added = export::grow_vocab(&model_dir, &charset)?;
                if !added.is_empty() {
                    let shown: String = added.iter().take(40).collect();
                    eprintln!(
                        "the tokenizer of {} lacks {} characters of the training data ({shown}{}); they get new ids and fresh embedding rows",
                        from.display(),
                        added.len(),
                        if added.len() > 40 { "…" } else { "" }
                    );
                }
            }
            None => export::write_model_files(&model_dir, &charset, export::Dims::SMALL)?,
        }
    }
    let lacking = export::lacking_chars(&model_dir, &charset)?;
    if !lacking.is_empty() {
        // Only a resumed run gets here: a new one has just written or grown its tokenizer.
        bail!(
            "the tokenizer of {} lacks {} characters of the training data ({}); resume with the options the run started with (--chinese)",
            model_dir.display(),
            lacking.len(),
            lacking.iter().take(20).collect::<String>()
        );
    }
    let cfg = Config::from_file(&model_dir.join("config.json"))?;
    let prep = Preparer::load(&model_dir, &cfg)?;
    let pre = &prep.images.cfg;
    let paper = (pre.rescale_factor * 255.0 - pre.image_mean[0]) / pre.image_std[0];
    let map = VarMap::new();
    let vb = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
    let ctc_head = CtcHead::new(&cfg, vb.clone(), args.ctc_weight)?;
    let model = PaddleOcrVl::new(cfg, vb)?;
    let mut map = map;
    let mut opt;
    if resuming {
        map.load(model_dir.join("model.safetensors"))?;
        opt = AdamW::new(&map, args.weight_decay)?;
        opt.load(&state_dir.join("optimizer.safetensors"))?;
        tracing::info!(step = opt.step, "resuming");
    } else {
        initialise(&map, args.seed)?;
        if let Some(from) = &args.init_from {
            let kept = load_present(&map, &from.join("model.safetensors"), CtcHead::PREFIX)?;
            let model_vars = map.data().lock().map_err(|_| anyhow::anyhow!("variable map poisoned"))?.len();
            if kept == 0 {
                bail!("{} holds none of this model's weights (is it a folio model directory?)", from.display());
            }
            eprintln!("initialised {kept} of {model_vars} tensors from {}", from.display());
        }
        opt = AdamW::new(&map, args.weight_decay)?;
    }
    let params: usize = map.all_vars().iter().map(|v| v.as_tensor().elem_count()).sum();
    eprintln!("model: {params} parameters; starting at step {} of {}", opt.step, args.steps);

    // A prefetch thread renders and preprocesses upcoming batches while the model trains.
    let (tx, rx) = mpsc::sync_channel::<Result<Vec<Example>>>(2);
    let first = opt.step;
    let (steps, batch, curriculum) = (args.steps, args.batch, args.curriculum.clone());
    let producer = std::thread::spawn(move || {
        for s in first..steps {
            let gen = &gens[curriculum.stage_at(s)];
            if tx.send(prep.batch(gen, s as u64, batch)).is_err() {
                break;
            }
        }
    });

    let mut log = std::fs::OpenOptions::new().create(true).append(true).open(args.out.join("log.jsonl"))?;
    let (mut ce_sum, mut ctc_sum, mut n, mut since) = (0.0, 0.0, 0usize, Instant::now());
    while opt.step < args.steps {
        let examples = rx.recv().context("data thread stopped")??;
        let lr = lr_at(&args, opt.step);
        let (l, norm) = train_step(&model, Some(&ctc_head), &mut opt, &examples, lr)?;
        ce_sum += l.ce;
        ctc_sum += l.ctc.unwrap_or(0.0);
        n += 1;
        if opt.step % args.log_every == 0 {
            let secs = since.elapsed().as_secs_f64() / n as f64;
            let stage = args.curriculum.stage_at(opt.step - 1);
            let mut line = json!({"step": opt.step, "stage": stage, "loss": ce_sum / n as f64, "lr": lr, "grad_norm": norm, "secs_per_step": secs});
            if args.ctc_weight > 0.0 {
                line["ctc_loss"] = json!(ctc_sum / n as f64);
            }
            if opt.step % (args.log_every * 5) == 0 {
                line["blank_image_loss"] = json!(blank_image_loss(&model, &examples, paper)?);
            }
            eprintln!("{line}");
            use std::io::Write;
            writeln!(log, "{line}")?;
            (ce_sum, ctc_sum, n, since) = (0.0, 0.0, 0, Instant::now());
        }
        if opt.step % args.checkpoint_every == 0 || opt.step == args.steps {
            save(&map, &opt, &model_dir, &state_dir)?;
        }
    }
    drop(rx);
    let _ = producer.join();
    Ok(())
}

/// Writes weights and optimizer state atomically (temp file + rename), so a run killed mid-save
/// resumes from the previous checkpoint.
fn save(map: &VarMap, opt: &AdamW, model_dir: &Path, state_dir: &Path) -> Result<()> {
    let tmp = model_dir.join("model.safetensors.tmp");
    map.save(&tmp)?;
    let otmp = state_dir.join("optimizer.safetensors.tmp");
    opt.save(&otmp)?;
    std::fs::rename(&tmp, model_dir.join("model.safetensors"))?;
    std::fs::rename(&otmp, state_dir.join("optimizer.safetensors"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::greedy::{generate_greedy, ImageRequest};
    use crate::models::paddleocr_vl::Checkpoint;

    #[test]
    fn curriculum_stages_parse_and_apply_from_their_step() {
        let c: Curriculum = "0:12:0.3, 600:24:0.6,1500:60:1".parse().unwrap();
        assert_eq!(c.0.len(), 3);
        assert_eq!(c.0[1], Stage { from_step: 600, max_chars: 24, augment: 0.6 });
        assert_eq!((c.stage_at(0), c.stage_at(599), c.stage_at(600), c.stage_at(99_999)), (0, 0, 1, 2));
        for bad in ["", "5:12:0.3", "0:12", "0:0:1", "0:12:9", "0:12:1,0:20:1", "0:x:1"] {
            assert!(bad.parse::<Curriculum>().is_err(), "{bad:?} was accepted");
        }
    }

    /// The whole training path — rendering, preprocessing, prompt, loss, backward, AdamW, export,
    /// reload through the inference loader — must be able to memorise a few lines.
    #[test]
    fn a_tiny_model_memorises_four_lines() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("folio-overfit-{}", std::process::id()));
        let gen = Generator::new(SynthConfig { seed: 3, augment: 0.0, max_chars: 12, ..SynthConfig::default() })?;
        let samples: Vec<_> = (0..4).map(|i| gen.sample(Split::Train, i)).collect::<Result<_>>()?;
        let chars = samples.iter().flat_map(|s| s.text.chars()).collect();
        export::write_model_files(&dir, &chars, export::Dims::TINY)?;
        let cfg = Config::from_file(&dir.join("config.json"))?;
        let prep = Preparer::load(&dir, &cfg)?;
        let batch = prep.batch(&gen, 0, 4)?;
        let map = VarMap::new();
        let vb = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
        let head = CtcHead::new(&cfg, vb.clone(), 1.0)?;
        let model = PaddleOcrVl::new(cfg, vb)?;
        initialise(&map, 7)?;
        let mut opt = AdamW::new(&map, 0.0)?;
        let mut last = f64::MAX;
        for _ in 0..150 {
            last = train_step(&model, Some(&head), &mut opt, &batch, 3e-3)?.0.ce;
        }
        // Low enough that no token is a guess between lines (one 50/50 token alone costs ~0.02):
        // the model must tell the lines apart by their pixels, not only by their image sizes.
        assert!(last < 0.01, "loss after 150 steps on 4 lines: {last}");
        map.save(dir.join("model.safetensors"))?;
        let ck = Checkpoint::load(&dir, DType::F32, &Device::Cpu)?;
        let requests: Vec<ImageRequest> = batch
            .iter()
            .map(|e| ImageRequest { image: &e.image, instruction: Task::Ocr.prompt(), max_new_tokens: 20 })
            .collect();
        let outputs = generate_greedy(&ck, &requests)?;
        for (out, sample) in outputs.iter().zip(&samples) {
            let text = ck.prompts.decode(&out.tokens)?;
            assert_eq!(text, sample.text);
        }
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
