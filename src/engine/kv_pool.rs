//! The paged KV cache: one allocation per layer for keys and values, made once at start-up and never
//! grown, addressed through block tables. [`PagedStep`] is the view of it one forward step gets; it
//! implements the model's [`KvCache`] interface on top of the `folio-kernels` CPU kernels.

use anyhow::{bail, Result};
use candle_core::{CpuStorage, DType, Layout, Storage, Tensor};
use folio_kernels::{bf16, paged_attention, write_kv, CacheGeometry, Element, KvCacheMut, SeqAttn};

use crate::models::kv::{KvCache, StepLayout};

enum Rows {
    F32(Vec<f32>),
    Bf16(Vec<bf16>),
}

impl Rows {
    fn zeros(dtype: DType, len: usize) -> Result<Self> {
        Ok(match dtype {
            DType::F32 => Rows::F32(resident(vec![0.0; len])),
            DType::BF16 => Rows::Bf16(resident(vec![bf16::ZERO; len])),
            other => bail!("KV cache dtype {other:?} is not supported (f32, bf16)"),
        })
    }
}

/// Touches every page so the pool is resident from start-up: a zeroed allocation is otherwise
/// mapped lazily and RSS would creep up as the cache fills, which is what we promise not to do.
fn resident<T: Copy>(mut v: Vec<T>) -> Vec<T> {
    let per_page = (4096 / std::mem::size_of::<T>().max(1)).max(1);
    for i in (0..v.len()).step_by(per_page) {
        let p: *mut T = &mut v[i];
        // SAFETY: `p` points at an initialised element of `v`; rewriting its own value is a no-op
        // the compiler must still perform because the write is volatile.
        unsafe { std::ptr::write_volatile(p, std::ptr::read_volatile(p)) };
    }
    v
}

pub struct KvPool {
    /// `[layer]` → (keys, values), each `num_blocks × block_size × kv_heads × head_dim`.
    layers: Vec<(Rows, Rows)>,
    geom: CacheGeometry,
    num_blocks: usize,
    dtype: DType,
}

impl KvPool {
    /// Bytes one block costs across all layers (keys and values).
    pub fn block_bytes(layers: usize, geom: CacheGeometry, dtype: DType) -> usize {
        2 * layers * geom.block_len() * dtype.size_in_bytes()
    }

    pub fn new(layers: usize, num_blocks: usize, geom: CacheGeometry, dtype: DType) -> Result<Self> {
        let Some(len) = geom.pool_len(num_blocks) else { bail!("KV pool of {num_blocks} blocks overflows") };
        let layers =
            (0..layers).map(|_| Ok((Rows::zeros(dtype, len)?, Rows::zeros(dtype, len)?))).collect::<Result<_>>()?;
        Ok(Self { layers, geom, num_blocks, dtype })
    }

    pub fn geometry(&self) -> CacheGeometry {
        self.geom
    }

    pub fn num_blocks(&self) -> usize {
        self.num_blocks
    }

    pub fn bytes(&self) -> usize {
        self.num_blocks * Self::block_bytes(self.layers.len(), self.geom, self.dtype)
    }

    /// The cache as one step sees it: `tables[i]` is the block table of the sequence that
    /// [`StepLayout`] chunks name `seq == i`.
    pub fn step<'a>(&'a mut self, tables: Vec<&'a [u32]>, layout: &StepLayout) -> Result<PagedStep<'a>> {
        let bs = self.geom.block_size();
        let mut slots = Vec::with_capacity(layout.total_new());
        for c in &layout.chunks {
            let Some(table) = tables.get(c.seq) else { bail!("no block table for sequence {}", c.seq) };
            for t in c.cached..c.cached + c.new {
                let Some(&block) = table.get(t / bs) else {
                    bail!("sequence {} has {} blocks, token {t} needs more", c.seq, table.len())
                };
                slots.push(block * bs as u32 + (t % bs) as u32);
            }
        }
        Ok(PagedStep { pool: self, tables, slots })
    }
}

pub struct PagedStep<'a> {
    pool: &'a mut KvPool,
    tables: Vec<&'a [u32]>,
    /// Cache slot of every new token of the step, in packed order (the same for every layer).
    slots: Vec<u32>,
}

impl KvCache for PagedStep<'_> {
    fn attend(
        &mut self,
        layer: usize,
        layout: &StepLayout,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        scale: f64,
    ) -> candle_core::Result<Tensor> {
        let (tokens, heads, head_dim) = q.dims3()?;
        let seqs: Vec<SeqAttn> = layout
            .packed()
            .map(|(start, c)| SeqAttn {
                query_start: start,
                query_len: c.new,
                context_len: c.cached + c.new,
                block_table: self.tables[c.seq],
            })
            .collect();
        let geom = self.pool.geom;
        let Some((keys, values)) = self.pool.layers.get_mut(layer) else { candle_core::bail!("no KV layer {layer}") };
        let shape = (tokens, heads, head_dim);
        match (keys, values) {
            (Rows::F32(kp), Rows::F32(vp)) => {
                Tensor::from_vec(run(kp, vp, geom, &self.slots, &seqs, q, k, v, heads, scale)?, shape, q.device())
            }
            (Rows::Bf16(kp), Rows::Bf16(vp)) => {
                Tensor::from_vec(run(kp, vp, geom, &self.slots, &seqs, q, k, v, heads, scale)?, shape, q.device())
            }
            _ => candle_core::bail!("mixed KV pool dtypes"),
        }
    }
}

/// Writes the step's keys/values into their slots, then attends. Queries and outputs are in the
/// pool's element type, like the model's activations.
#[allow(clippy::too_many_arguments)]
fn run<C: Element + candle_core::WithDType>(
    kp: &mut [C],
    vp: &mut [C],
    geom: CacheGeometry,
    slots: &[u32],
    seqs: &[SeqAttn],
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    scale: f64,
) -> candle_core::Result<Vec<C>> {
    let err = |e: folio_kernels::KernelError| candle_core::Error::Msg(e.to_string());
    let (q, k, v) = (q.contiguous()?, k.contiguous()?, v.contiguous()?);
    let (qs, ql) = q.storage_and_layout();
    let (ks, kl) = k.storage_and_layout();
    let (vs, vl) = v.storage_and_layout();
    let mut cache = KvCacheMut::new(kp, vp, geom).map_err(err)?;
    write_kv(&mut cache, cpu_slice::<C>(&ks, kl)?, cpu_slice::<C>(&vs, vl)?, slots).map_err(err)?;
    let mut out = vec![<C as candle_core::WithDType>::from_f64(0.0); q.elem_count()];
    paged_attention(&mut out, cpu_slice::<C>(&qs, ql)?, cache.as_view(), seqs, heads, scale as f32).map_err(err)?;
    Ok(out)
}

/// The elements of a contiguous CPU tensor.
fn cpu_slice<'a, T: candle_core::WithDType>(storage: &'a Storage, layout: &Layout) -> candle_core::Result<&'a [T]> {
    let Storage::Cpu(cpu) = storage else { candle_core::bail!("paged attention runs on CPU tensors") };
    let all: &[T] = CpuStorage::as_slice(cpu)?;
    let Some((a, b)) = layout.contiguous_offsets() else { candle_core::bail!("tensor is not contiguous") };
    Ok(&all[a..b])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::kv::{DenseKvCache, SeqChunk};
    use candle_core::Device;

    /// The paged cache must give what the contiguous one gives, step after step, for ragged
    /// sequences whose blocks are scattered over the pool.
    #[test]
    fn paged_steps_match_the_dense_cache() -> Result<()> {
        let dev = Device::Cpu;
        let (heads, kv_heads, d, bs) = (4, 2, 16, 4);
        let geom = CacheGeometry::new(bs, kv_heads, d).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut pool = KvPool::new(2, 32, geom, DType::F32)?;
        let mut dense = DenseKvCache::new(3, 2, 64, kv_heads, d, DType::F32, &dev)?;
        let tables: Vec<Vec<u32>> = vec![vec![7, 3, 12, 1, 30], vec![0, 21, 5, 9, 2], vec![31, 4, 8, 16, 17]];
        // (cached, new) per sequence for three steps: prefill chunks of different sizes, then decodes.
        let steps = [[(0, 5), (0, 3), (0, 9)], [(5, 6), (3, 1), (9, 1)], [(11, 1), (4, 1), (10, 1)]];
        for step in steps {
            let layout = StepLayout {
                chunks: step.iter().enumerate().map(|(i, &(cached, new))| SeqChunk { seq: i, cached, new }).collect(),
            };
            let t = layout.total_new();
            let q = Tensor::randn(0f32, 1.0, (t, heads, d), &dev)?;
            let k = Tensor::randn(0f32, 1.0, (t, kv_heads, d), &dev)?;
            let v = Tensor::randn(0f32, 1.0, (t, kv_heads, d), &dev)?;
            for layer in 0..2 {
                let refs: Vec<&[u32]> = tables.iter().map(Vec::as_slice).collect();
                let paged = pool.step(refs, &layout)?.attend(layer, &layout, &q, &k, &v, 0.25)?;
                let want = dense.attend(layer, &layout, &q, &k, &v, 0.25)?;
                let diff = (paged - want)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
                assert!(diff < 1e-5, "layer {layer}: {diff}");
            }
        }
        Ok(())
    }
}
