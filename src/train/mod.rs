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
mod step;
pub mod tokenizer;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use clap::Args;
use serde_json::json;

use crate::models::paddleocr_vl::{
    Config, ImageProcessor, LineCrop, PaddleOcrVl, PreparedImage, PreprocessorConfig, PromptBuilder, Task,
};
use crate::synth::{Generator, Split, SynthConfig};
use adamw::AdamW;
use init::{initialise, load_present};
use step::{blank_image_loss, train_step, CtcHead};

/// Most shards per step unless `--jobs` asks for more: past a few, shards only add gradient copies
/// (matrix products already spread over the cores). Measured on 2 cores: 2.29 s per step with one
/// shard, 1.75 with 2, 1.65 with 3, 1.64 with 4.
const DEFAULT_MAX_JOBS: usize = 8;

/// The line crops folio's models are trained on: 48 px high. A trained checkpoint declares it in
/// its `folio.json` ([`ReadingSpec`]), which is where the serving path reads it from.
pub const LINE_CROP: LineCrop = LineCrop { height: 48 };

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
    /// Given several times (checkpoints of one model), the run starts from the mean of their
    /// weights. Give a new `--seed` so the run does not see the batches the first one saw.
    #[arg(long)]
    pub init_from: Vec<PathBuf>,
    /// Share of the training lines that are simplified Chinese (0 to 1). Above 0, the Chinese
    /// characters join the vocabulary: a new run's tokenizer, or `--init-from`'s grown.
    #[arg(long, default_value_t = 0.0)]
    pub chinese: f32,
    /// Threads that share each batch's forward and backward, a shard each (default: the cores, at
    /// most 8). The split changes only the floating-point summation order of the gradient. Each
    /// shard holds a full gradient copy (30 MB for the small model).
    #[arg(long)]
    pub jobs: Option<usize>,
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
    /// Prompt, label and EOS.
    ids: Vec<u32>,
    prompt_len: usize,
}

impl Example {
    /// The label's token ids, without the prompt and the EOS.
    fn label_ids(&self) -> &[u32] {
        &self.ids[self.prompt_len..self.ids.len() - 1]
    }
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
                let image = self.images.prepare(&LINE_CROP.normalize(&sample.image))?;
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
        let own = |from: &PathBuf| model_dir.exists() && from.canonicalize().ok() == model_dir.canonicalize().ok();
        if let Some(from) = args.init_from.iter().find(|f| own(f)) {
            bail!("--init-from {} is this run's own model directory", from.display())
        }
        match args.init_from.first() {
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
        if !args.init_from.is_empty() {
            let from = args.init_from.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" + ");
            let kept = load_present(&map, &export::mean_weights(&args.init_from, |_| true)?, CtcHead::PREFIX)?;
            let model_vars = map.data().lock().map_err(|_| anyhow::anyhow!("variable map poisoned"))?.len();
            if kept == 0 {
                bail!("{from} holds none of this model's weights (is it a folio model directory?)");
            }
            let mean = if args.init_from.len() > 1 { "the mean of " } else { "" };
            eprintln!("initialised {kept} of {model_vars} tensors from {mean}{from}");
        }
        opt = AdamW::new(&map, args.weight_decay)?;
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()).min(DEFAULT_MAX_JOBS))
        .max(1);
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
        let (l, norm) = train_step(&model, Some(&ctc_head), &mut opt, &examples, lr, jobs)?;
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

    /// A tiny random model (with its CTC head) written to `dir`, and a batch of `n` clean train
    /// lines of at most 12 characters.
    struct Tiny {
        map: VarMap,
        head: CtcHead,
        model: PaddleOcrVl,
        batch: Vec<Example>,
        texts: Vec<String>,
    }

    fn tiny(dir: &Path, n: usize) -> Result<Tiny> {
        let gen = Generator::new(SynthConfig { seed: 3, augment: 0.0, max_chars: 12, ..SynthConfig::default() })?;
        let texts: Vec<String> = (0..n as u64).map(|i| Ok(gen.sample(Split::Train, i)?.text)).collect::<Result<_>>()?;
        let chars = texts.iter().flat_map(|t| t.chars()).collect();
        export::write_model_files(dir, &chars, export::Dims::TINY)?;
        let cfg = Config::from_file(&dir.join("config.json"))?;
        let batch = Preparer::load(dir, &cfg)?.batch(&gen, 0, n)?;
        let map = VarMap::new();
        let vb = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
        let head = CtcHead::new(&cfg, vb.clone(), 1.0)?;
        let model = PaddleOcrVl::new(cfg, vb)?;
        initialise(&map, 7)?;
        Ok(Tiny { map, head, model, batch, texts })
    }

    /// Shards divide by the whole batch's denominators, so any split gives the batch's gradient.
    #[test]
    fn sharded_gradients_equal_the_whole_batch_gradient() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("folio-shards-{}", std::process::id()));
        let t = tiny(&dir, 5)?;
        let (whole, g1) = step::batch_gradient(&t.model, Some(&t.head), &t.batch, 1)?;
        for shards in [2, 3, 5] {
            let (split, g) = step::batch_gradient(&t.model, Some(&t.head), &t.batch, shards)?;
            assert!((split.ce - whole.ce).abs() < 1e-5, "{shards} shards: ce {} vs {}", split.ce, whole.ce);
            let (a, b) = (split.ctc.unwrap_or(f64::NAN), whole.ctc.unwrap_or(f64::NAN));
            assert!((a - b).abs() < 1e-5, "{shards} shards: ctc {a} vs {b}");
            for var in t.map.all_vars() {
                let (Some(x), Some(y)) = (g.get(var.as_tensor()), g1.get(var.as_tensor())) else {
                    panic!("a gradient is missing with {shards} shards");
                };
                let diff = (x - y)?.abs()?.max_all()?.to_scalar::<f32>()?;
                let scale = y.abs()?.max_all()?.to_scalar::<f32>()?;
                assert!(diff <= 1e-4 * scale.max(1e-3), "{shards} shards: gradient off by {diff} (max {scale})");
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    /// The whole training path — rendering, preprocessing, prompt, loss, backward, AdamW, export,
    /// reload through the inference loader — must be able to memorise a few lines.
    #[test]
    fn a_tiny_model_memorises_four_lines() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("folio-overfit-{}", std::process::id()));
        let Tiny { map, head, model, batch, texts } = tiny(&dir, 4)?;
        let mut opt = AdamW::new(&map, 0.0)?;
        let mut last = f64::MAX;
        for _ in 0..150 {
            last = train_step(&model, Some(&head), &mut opt, &batch, 3e-3, 2)?.0.ce;
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
        for (out, want) in outputs.iter().zip(&texts) {
            assert_eq!(&ck.prompts.decode(&out.tokens)?, want);
        }
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
