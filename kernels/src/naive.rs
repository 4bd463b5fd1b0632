//! Definition-level attention, for tests and benchmarks only.
//!
//! Gathers each sequence's K/V from the paged cache into contiguous buffers, then computes
//! `softmax(scale · q·Kᵀ) · V` row by row in `f64` with the textbook two-pass softmax (max, then
//! exponentials). Slow and allocating — O(context) per query — but obviously correct, which is the
//! point.

use crate::attention::{validate, SeqAttn};
use crate::cache::KvCache;
use crate::element::Element;
use crate::error::KernelError;

/// Reference for [`crate::paged_attention`]: same inputs, returns `tokens × heads × head_dim`
/// outputs in `f32` (rows no sequence owns are zero).
pub fn reference_attention<Q: Element, C: Element>(
    queries: &[Q],
    cache: KvCache<'_, C>,
    seqs: &[SeqAttn<'_>],
    heads: usize,
    scale: f32,
) -> Result<Vec<f32>, KernelError> {
    validate(queries.len(), queries.len(), &cache, seqs, heads, scale)?;
    let geom = cache.geometry();
    let (bs, kvh, hd) = (geom.block_size(), geom.kv_heads(), geom.head_dim());
    let group = heads / kvh;
    let mut out = vec![0.0f32; queries.len()];
    for s in seqs {
        // Gather K and V as [token][kv_head][dim].
        let gather = |pool: &[C]| -> Vec<f64> {
            (0..s.context_len)
                .flat_map(|t| {
                    let slot = s.block_table[t / bs] as usize * bs + t % bs;
                    pool[slot * kvh * hd..(slot + 1) * kvh * hd].iter()
                })
                .map(|x| f64::from(x.to_f32()))
                .collect()
        };
        let (k, v) = (gather(cache.keys), gather(cache.values));
        let past = s.context_len - s.query_len;
        for i in 0..s.query_len {
            let tok = s.query_start + i;
            let visible = past + i + 1;
            for h in 0..heads {
                let kv = h / group;
                let row = (tok * heads + h) * hd;
                let q: Vec<f64> = queries[row..row + hd].iter().map(|x| f64::from(x.to_f32())).collect();
                let scores: Vec<f64> = (0..visible)
                    .map(|j| {
                        let kj = &k[(j * kvh + kv) * hd..(j * kvh + kv + 1) * hd];
                        q.iter().zip(kj).map(|(a, b)| a * b).sum::<f64>() * f64::from(scale)
                    })
                    .collect();
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let weights: Vec<f64> = scores.iter().map(|x| (x - max).exp()).collect();
                let total: f64 = weights.iter().sum();
                for d in 0..hd {
                    let acc: f64 = weights.iter().enumerate().map(|(j, w)| w * v[(j * kvh + kv) * hd + d]).sum();
                    out[row + d] = (acc / total) as f32;
                }
            }
        }
    }
    Ok(out)
}
