//! One optimisation step: the loss of a batch (teacher-forced cross-entropy of the label tokens
//! plus the auxiliary CTC loss on the vision tower) and its gradient, computed data-parallel over
//! shards of the batch on scoped threads, then one AdamW update.
//!
//! Why shards: candle's CPU backend runs element-wise ops and the backward pass's gradient
//! accumulation on the calling thread; only matrix products and folio's own kernels spread over
//! cores, so one thread kept 1.3 of 2 cores busy. Each shard's loss is divided by the whole
//! batch's denominators (its label tokens; its examples that admit a CTC alignment), so the
//! shards' gradients add up to the gradient of the batch's mean loss, whatever the split.

use anyhow::{anyhow, Result};
use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor};
use candle_nn::{Module, VarBuilder};

use super::adamw::AdamW;
use super::{ctc, Example};
use crate::models::kv::{SeqChunk, StepLayout};
use crate::models::no_cache::NoKvCache;
use crate::models::paddleocr_vl::{prompt_positions, Config, PaddleOcrVl, PreparedImage};

/// The auxiliary CTC head (see [`ctc`]): a linear map from each patch column of the vision
/// features (mean over the column's patches) to the vocabulary plus a blank. Its weights live in
/// the run's checkpoint under `aux_ctc.` (the inference loader never asks for them; shipping drops
/// them).
pub(super) struct CtcHead {
    proj: candle_nn::Linear,
    classes: usize,
    weight: f64,
}

impl CtcHead {
    pub(super) const PREFIX: &'static str = "aux_ctc";

    pub(super) fn new(cfg: &Config, vb: VarBuilder, weight: f64) -> Result<Self> {
        let classes = cfg.text.vocab_size + 1;
        let proj = candle_nn::linear(cfg.vision.hidden_size, classes, vb.pp(Self::PREFIX).pp("proj"))?;
        Ok(Self { proj, classes, weight })
    }

    /// CTC loss per label token of each example of `shard` that admits an alignment (a line with
    /// fewer columns than it needs is skipped), summed and divided by `examples`, the batch's count
    /// of such examples: as a value, and as a tensor whose gradient is the CTC gradient.
    fn loss(&self, features: &Tensor, shard: &[Example], examples: usize) -> Result<(f64, Tensor)> {
        // Columns are numbered across the shard; one scatter-add sums each column's patches (a
        // slice per image would cost a full-size pass each in the backward).
        let (mut column_of, mut inv_rows, mut total) = (Vec::new(), Vec::new(), 0);
        for e in shard {
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
        let scale = 1.0 / examples.max(1) as f64;
        let mut grad = vec![0f32; values.len()];
        let (mut total, mut row) = (0.0, 0usize);
        for e in shard {
            let cols = e.image.grid.cols;
            let span = row * self.classes..(row + cols) * self.classes;
            if let Some(out) = ctc::ctc(&values[span.clone()], self.classes, e.label_ids(), blank) {
                let n = e.label_ids().len().max(1) as f64;
                total += out.loss / n * scale;
                for (dst, src) in grad[span].iter_mut().zip(out.grad) {
                    *dst = (src as f64 / n * scale) as f32;
                }
            }
            row += cols;
        }
        let grad = Tensor::from_vec(grad, logits.shape(), logits.device())?;
        // d/dlogits of sum(logits ⊙ grad) is grad: the exact CTC gradient, flowing back from here.
        let surrogate = (logits * grad)?.sum_all()?;
        Ok((total, surrogate))
    }
}

/// A shard's part of its batch's losses: the total to minimise, and its parts for the log.
struct Losses {
    total: Tensor,
    ce: f64,
    ctc: Option<f64>,
}

/// A step's mean losses over the batch, for the log.
pub(super) struct StepLosses {
    pub ce: f64,
    pub ctc: Option<f64>,
}

/// A batch's denominators: every shard divides by these, not by its own counts.
#[derive(Clone, Copy)]
struct Denominators {
    label_tokens: usize,
    ctc_examples: usize,
}

impl Denominators {
    fn of(batch: &[Example]) -> Self {
        Self {
            label_tokens: batch.iter().map(|e| e.ids.len() - e.prompt_len).sum(),
            ctc_examples: batch.iter().filter(|e| ctc::alignable(e.image.grid.cols, e.label_ids())).count(),
        }
    }
}

/// `shard`'s part of its batch's mean loss: cross-entropy of the label tokens (teacher forcing, all
/// examples packed in one step) plus the weighted CTC loss when a head is given.
fn loss(model: &PaddleOcrVl, shard: &[Example], ctc_head: Option<&CtcHead>, den: Denominators) -> Result<Losses> {
    let image_id = model.cfg.tokens.image_token_id;
    let merge = model.cfg.vision.spatial_merge_size;
    let images: Vec<&PreparedImage> = shard.iter().map(|e| &e.image).collect();
    let grids: Vec<_> = images.iter().map(|i| i.grid).collect();
    let features = model.vision_features(&images)?;
    let embeds = model.project(&features, &grids)?;
    let (mut xs, mut positions, mut chunks, mut rows, mut labels) = (vec![], vec![], vec![], vec![], vec![]);
    let mut start = 0u32;
    for (i, (e, img)) in shard.iter().zip(&embeds).enumerate() {
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
    let share = labels.len() as f64 / den.label_tokens.max(1) as f64;
    let ce = (candle_nn::loss::cross_entropy(&logits, &Tensor::new(labels.as_slice(), &Device::Cpu)?)? * share)?;
    let ce_value = ce.to_scalar::<f32>()? as f64;
    match ctc_head {
        Some(head) if head.weight > 0.0 => {
            let (value, surrogate) = head.loss(&features, shard, den.ctc_examples)?;
            Ok(Losses { total: (ce + (surrogate * head.weight)?)?, ce: ce_value, ctc: Some(value) })
        }
        _ => Ok(Losses { total: ce, ce: ce_value, ctc: None }),
    }
}

/// Cross-entropy on `batch` with every image replaced by blank paper (value `paper` after
/// normalisation). Logged next to the training loss: a model that reads has a blank loss far above
/// its real one; equal losses mean the decoder has learnt to ignore the image (the failure the
/// curriculum and preprocessing are set up to avoid).
pub(super) fn blank_image_loss(model: &PaddleOcrVl, batch: &[Example], paper: f32) -> Result<f64> {
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
    Ok(loss(model, &blank, None, Denominators::of(&blank))?.ce)
}

/// One AdamW step on `batch`, its loss and gradient computed over `shards` threads (1 computes on
/// the calling thread). Returns the batch's mean losses and the gradient norm before clipping.
pub(super) fn train_step(
    model: &PaddleOcrVl,
    ctc_head: Option<&CtcHead>,
    opt: &mut AdamW,
    batch: &[Example],
    lr: f64,
    shards: usize,
) -> Result<(StepLosses, f64)> {
    let (losses, grads) = batch_gradient(model, ctc_head, batch, shards)?;
    let norm = opt.step(&grads, lr, 1.0)?;
    Ok((losses, norm))
}

/// The batch's mean losses and their gradient, computed over `shards` threads.
pub(super) fn batch_gradient(
    model: &PaddleOcrVl,
    ctc_head: Option<&CtcHead>,
    batch: &[Example],
    shards: usize,
) -> Result<(StepLosses, GradStore)> {
    let den = Denominators::of(batch);
    let run = |shard: &[Example]| -> Result<(StepLosses, GradStore)> {
        let l = loss(model, shard, ctc_head, den)?;
        let grads = l.total.backward()?;
        Ok((StepLosses { ce: l.ce, ctc: l.ctc }, grads))
    };
    let size = batch.len().div_ceil(shards.max(1)).max(1);
    let mut parts = if size >= batch.len() {
        vec![run(batch)?]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = batch.chunks(size).map(|shard| s.spawn(move || run(shard))).collect();
            handles
                .into_iter()
                .map(|h| h.join().map_err(|_| anyhow!("a training shard's thread panicked"))?)
                .collect::<Result<Vec<_>>>()
        })?
    }
    .into_iter();
    let (mut sum, mut grads) = parts.next().ok_or_else(|| anyhow!("empty batch"))?;
    for (l, g) in parts {
        grads.extend(g)?;
        sum.ce += l.ce;
        sum.ctc = sum.ctc.zip(l.ctc).map(|(a, b)| a + b);
    }
    Ok((sum, grads))
}
