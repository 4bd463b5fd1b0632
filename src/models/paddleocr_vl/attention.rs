//! Plain scaled-dot-product attention over one sequence, with grouped-query heads.
//!
//! Used by the vision encoder (bidirectional, per image) and by the contiguous KV cache. Queries are
//! processed in chunks so that the score matrix of a large page (tens of thousands of patches) never
//! materialises at once: memory is bounded by `SCORE_BUDGET`, time is unchanged.

use candle_core::{DType, Result, Tensor};

/// Upper bound on the elements of one score block (heads × query rows × keys): 32M f32 = 128 MiB.
const SCORE_BUDGET: usize = 32 << 20;

/// `q`: `(L, heads, d)`, `k`/`v`: `(S, kv_heads, d)`; returns `(L, heads, d)`.
///
/// With `causal = Some(offset)`, query `i` sits at absolute position `offset + i` and sees keys
/// `0..=offset + i` (the keys of earlier steps come first in `k`/`v`).
pub fn dense_attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64, causal: Option<usize>) -> Result<Tensor> {
    let (l, heads, d) = q.dims3()?;
    let (s, kv_heads, _) = k.dims3()?;
    if kv_heads == 0 || heads % kv_heads != 0 {
        candle_core::bail!("{heads} query heads cannot share {kv_heads} key/value heads");
    }
    let group = heads / kv_heads;
    // (kv_heads, S, d): heads [j*group, (j+1)*group) read key/value head j.
    let k = k.transpose(0, 1)?.contiguous()?;
    let v = v.transpose(0, 1)?.contiguous()?;
    let q = q.transpose(0, 1)?.contiguous()?; // (heads, L, d)
    let rows_per_chunk = (SCORE_BUDGET / (heads * s.max(1))).clamp(1, l.max(1));
    let mut outs = Vec::with_capacity(l.div_ceil(rows_per_chunk));
    let mut start = 0;
    while start < l {
        let rows = rows_per_chunk.min(l - start);
        // (kv_heads, group * rows, d), row r of group g is query head j*group+g at position start+r.
        let qc = q.narrow(1, start, rows)?.reshape((kv_heads, group * rows, d))?;
        let scores = (qc.matmul(&k.t()?)? * scale)?;
        let scores = match causal {
            Some(offset) => apply_causal_mask(&scores, group, rows, offset + start, s)?,
            None => scores,
        };
        let probs = crate::models::ops::softmax_last_dim(&scores.to_dtype(DType::F32)?)?.to_dtype(v.dtype())?;
        let out = probs.matmul(&v)?.reshape((heads, rows, d))?;
        outs.push(out);
        start += rows;
    }
    Tensor::cat(&outs, 1)?.transpose(0, 1)?.contiguous()
}

/// Masks key `j` for query row `r` (position `first + r % rows`) when `j > first + r % rows`.
fn apply_causal_mask(scores: &Tensor, group: usize, rows: usize, first: usize, keys: usize) -> Result<Tensor> {
    if first + 1 >= keys {
        return Ok(scores.clone()); // even the first query sees every key (a decode step)
    }
    let mask: Vec<f32> = (0..group * rows)
        .flat_map(|r| {
            let pos = first + r % rows;
            (0..keys).map(move |j| if j > pos { f32::NEG_INFINITY } else { 0.0 })
        })
        .collect();
    let mask = Tensor::from_vec(mask, (1, group * rows, keys), scores.device())?.to_dtype(scores.dtype())?;
    scores.broadcast_add(&mask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Straight from the definition, one head and one query at a time.
    fn naive(
        q: &[Vec<Vec<f32>>],
        k: &[Vec<Vec<f32>>],
        v: &[Vec<Vec<f32>>],
        scale: f32,
        offset: Option<usize>,
    ) -> Vec<Vec<Vec<f32>>> {
        let (heads, kv) = (q[0].len(), k[0].len());
        q.iter()
            .enumerate()
            .map(|(i, qi)| {
                (0..heads)
                    .map(|h| {
                        let kh = h / (heads / kv);
                        let visible = offset.map_or(k.len(), |o| o + i + 1);
                        let s: Vec<f32> = (0..visible)
                            .map(|j| qi[h].iter().zip(&k[j][kh]).map(|(a, b)| a * b).sum::<f32>() * scale)
                            .collect();
                        let m = s.iter().cloned().fold(f32::MIN, f32::max);
                        let e: Vec<f32> = s.iter().map(|x| (x - m).exp()).collect();
                        let z: f32 = e.iter().sum();
                        (0..qi[h].len()).map(|c| (0..visible).map(|j| e[j] / z * v[j][kh][c]).sum()).collect()
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn matches_definition_with_gqa_and_causal_offset() -> Result<()> {
        let dev = Device::Cpu;
        for (l, s, heads, kv, causal) in
            [(5, 5, 4, 2, None), (3, 7, 6, 2, Some(4)), (1, 9, 4, 1, Some(8)), (4, 4, 2, 2, Some(0))]
        {
            let q = Tensor::randn(0f32, 1.0, (l, heads, 8), &dev)?;
            let k = Tensor::randn(0f32, 1.0, (s, kv, 8), &dev)?;
            let v = Tensor::randn(0f32, 1.0, (s, kv, 8), &dev)?;
            let got = dense_attention(&q, &k, &v, 0.3, causal)?.to_vec3::<f32>()?;
            let want = naive(&q.to_vec3()?, &k.to_vec3()?, &v.to_vec3()?, 0.3, causal);
            for (a, b) in got.iter().flatten().flatten().zip(want.iter().flatten().flatten()) {
                assert!((a - b).abs() < 1e-5, "{a} vs {b} for l={l} s={s} causal={causal:?}");
            }
        }
        Ok(())
    }
}
