//! A [`KvCache`] that stores nothing: every sequence of the step is attended causally over its own
//! new tokens only. For whole-sequence forwards — training steps and scoring — where nothing was
//! cached before and nothing will be decoded after. Unlike [`DenseKvCache`](super::kv::DenseKvCache)
//! it writes nothing in place, so gradients flow through it to q, k and v.

use candle_core::{Result, Tensor};

use super::kv::{KvCache, StepLayout};
use super::ops::varlen_attention;

/// Causal attention within each chunk of the step; fails on a chunk that claims cached tokens.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoKvCache;

impl KvCache for NoKvCache {
    fn attend(
        &mut self,
        layer: usize,
        layout: &StepLayout,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        scale: f64,
    ) -> Result<Tensor> {
        let mut spans = Vec::with_capacity(layout.chunks.len());
        for (start, c) in layout.packed() {
            if c.cached != 0 {
                candle_core::bail!(
                    "NoKvCache: sequence {} has {} cached tokens at layer {layer}; it keeps none",
                    c.seq,
                    c.cached
                );
            }
            spans.push((start, c.new));
        }
        varlen_attention(q, k, v, &spans, scale, true)
    }
}
