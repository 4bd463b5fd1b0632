//! The attention/KV-cache interface the decoder is handed, and a contiguous implementation of it.
//!
//! A forward step packs the new tokens of several sequences back to back (prefill chunks and decode
//! tokens alike). The model computes q/k/v for all of them at once and asks the cache, layer by
//! layer, to store the new keys/values and attend each sequence's queries over everything that
//! sequence has cached so far. Where the keys live — contiguous rows here, paged blocks in the
//! engine — is the cache's business; the model never sees it.

use candle_core::{DType, Device, Result, Tensor};

use super::paddleocr_vl::attention::dense_attention;

/// One sequence's share of a forward step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqChunk {
    /// Which sequence (an id the cache understands: a slot, a block-table row, …).
    pub seq: usize,
    /// Tokens of this sequence already in the cache before this step.
    pub cached: usize,
    /// New tokens of this sequence in this step, packed in layout order.
    pub new: usize,
}

/// The sequences of one forward step, in the order their tokens are packed.
#[derive(Debug, Clone, Default)]
pub struct StepLayout {
    pub chunks: Vec<SeqChunk>,
}

impl StepLayout {
    pub fn total_new(&self) -> usize {
        self.chunks.iter().map(|c| c.new).sum()
    }

    /// Row of each sequence's last new token in the packed step (where its next-token logits are).
    pub fn last_rows(&self) -> Vec<u32> {
        self.packed().map(|(start, c)| (start + c.new - 1) as u32).collect()
    }

    /// Each chunk with the row where its new tokens start in the packed step.
    pub fn packed(&self) -> impl Iterator<Item = (usize, &SeqChunk)> {
        self.chunks.iter().scan(0, |start, c| {
            let at = *start;
            *start += c.new;
            Some((at, c))
        })
    }
}

pub trait KvCache {
    /// `q`: `(tokens, heads, head_dim)`; `k`, `v`: `(tokens, kv_heads, head_dim)` for this step's new
    /// tokens packed as in `layout`. Stores `k`/`v` for `layer` and returns `(tokens, heads, head_dim)`:
    /// each token attends causally over its own sequence's cached and new keys.
    fn attend(
        &mut self,
        layer: usize,
        layout: &StepLayout,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        scale: f64,
    ) -> Result<Tensor>;
}

/// Each sequence owns preallocated contiguous rows of `capacity` tokens per layer. Simple and exact;
/// the engine's paged cache replaces it where memory must be shared.
pub struct DenseKvCache {
    /// `[seq][layer]` → (keys, values), each `(capacity, kv_heads, head_dim)`.
    slots: Vec<Vec<(Tensor, Tensor)>>,
    capacity: usize,
}

impl DenseKvCache {
    pub fn new(
        seqs: usize,
        layers: usize,
        capacity: usize,
        kv_heads: usize,
        head_dim: usize,
        dtype: DType,
        dev: &Device,
    ) -> Result<Self> {
        let rows = || Tensor::zeros((capacity, kv_heads, head_dim), dtype, dev);
        let slots = (0..seqs)
            .map(|_| (0..layers).map(|_| Ok((rows()?, rows()?))).collect::<Result<Vec<_>>>())
            .collect::<Result<_>>()?;
        Ok(Self { slots, capacity })
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

impl KvCache for DenseKvCache {
    fn attend(
        &mut self,
        layer: usize,
        layout: &StepLayout,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        scale: f64,
    ) -> Result<Tensor> {
        let mut outs = Vec::with_capacity(layout.chunks.len());
        for (start, c) in layout.packed() {
            let Some((keys, values)) = self.slots.get(c.seq).and_then(|s| s.get(layer)) else {
                candle_core::bail!("no cache slot for sequence {} layer {layer}", c.seq);
            };
            let end = c.cached + c.new;
            if end > self.capacity {
                candle_core::bail!("sequence {} needs {end} cached tokens, capacity is {}", c.seq, self.capacity);
            }
            keys.slice_set(&k.narrow(0, start, c.new)?.contiguous()?, 0, c.cached)?;
            values.slice_set(&v.narrow(0, start, c.new)?.contiguous()?, 0, c.cached)?;
            let q = q.narrow(0, start, c.new)?;
            outs.push(dense_attention(
                &q,
                &keys.narrow(0, 0, end)?,
                &values.narrow(0, 0, end)?,
                scale,
                Some(c.cached),
            )?);
        }
        Tensor::cat(&outs, 0)
    }
}
