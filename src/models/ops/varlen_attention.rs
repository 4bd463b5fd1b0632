//! Attention over sequences packed back to back ("varlen" layout, as in FlashAttention's
//! `flash_attn_varlen_func`), fused with its backward.
//!
//! Why a kernel: the model packs many images (vision tower) or sequences (decoder training step)
//! into one tensor. Composed of candle ops, attention takes each sequence's rows with `narrow`, and
//! candle's backward of `narrow` pads the slice's gradient with zeros to the size of the whole
//! packed tensor and adds it to the running sum: one full-size pass per sequence, per q/k/v, per
//! layer. For a training batch of 32 lines that was most of the step's time. Here the whole packed
//! tensor is one op: forward and backward cost O(Σ len² · d), with no full-size pass per sequence.
//!
//! Per (sequence, head), queries are taken in row blocks so that the score block stays under
//! [`SCORE_BUDGET`] elements whatever the sequence length (a page of tens of thousands of patches).
//! Scores and probabilities are recomputed in the backward from q and k (FlashAttention's trade:
//! nothing of size len² is kept between forward and backward). With `D_i = Σ_j P_ij dP_ij` (which
//! equals `dO_i · O_i`) the backward needs neither the output nor its logsumexp.
//!
//! Sequences × heads are spread over rayon; each task runs its matrix products single-threaded
//! through `gemm` and returns its own buffers, which are then scattered into the packed result.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, WithDType};
use gemm::Parallelism;
use rayon::prelude::*;

use super::{by_dtype, slice, Acc, Elem};

/// Most elements of one task's score block (rows × keys): 1M (4 MiB in f32).
const SCORE_BUDGET: usize = 1 << 20;

/// Scaled dot-product attention within each `(start, len)` span of the packed rows.
///
/// `q`: `(N, heads, d)`, `k`/`v`: `(N, kv_heads, d)` with `heads` a multiple of `kv_heads` (grouped
/// queries); returns `(N, heads, d)`. Spans must be in order, disjoint and within `N`; rows outside
/// every span get zeros. With `causal`, row `i` of a span sees the span's rows `0..=i`.
pub fn varlen_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    spans: &[(usize, usize)],
    scale: f64,
    causal: bool,
) -> Result<Tensor> {
    if !q.device().is_cpu() {
        return varlen_attention_composite(q, k, v, spans, scale, causal);
    }
    let op = VarlenAttention { geometry: Geometry::of(q, k, v, spans)?, spans: spans.to_vec(), scale, causal };
    q.contiguous()?.apply_op3(&k.contiguous()?, &v.contiguous()?, op)
}

/// [`varlen_attention`] from plain candle ops (one `narrow` per span): the reference the kernel
/// is tested against, and its implementation on devices other than the CPU.
pub fn varlen_attention_composite(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    spans: &[(usize, usize)],
    scale: f64,
    causal: bool,
) -> Result<Tensor> {
    let g = Geometry::of(q, k, v, spans)?;
    let mut parts = Vec::with_capacity(2 * spans.len() + 1);
    let mut done = 0;
    for &(start, len) in spans.iter().filter(|s| s.1 > 0) {
        if start > done {
            parts.push(q.narrow(0, done, start - done)?.zeros_like()?);
        }
        // (heads, len, d) queries against (heads, len, d) keys, each kv head repeated `group` times.
        let heads_first = |t: &Tensor, n: usize| -> Result<Tensor> {
            let t = t.narrow(0, start, len)?.transpose(0, 1)?;
            let (h, l, d) = t.dims3()?;
            t.unsqueeze(1)?.expand((h, n / h, l, d))?.reshape((n, l, d))
        };
        let (qs, ks, vs) = (heads_first(q, g.heads)?, heads_first(k, g.heads)?, heads_first(v, g.heads)?);
        let mut scores = (qs.matmul(&ks.t()?)? * scale)?;
        if causal {
            let mask: Vec<f64> =
                (0..len).flat_map(|i| (0..len).map(move |j| if j > i { f64::NEG_INFINITY } else { 0.0 })).collect();
            let mask = Tensor::from_vec(mask, (1, len, len), q.device())?.to_dtype(scores.dtype())?;
            scores = scores.broadcast_add(&mask)?;
        }
        let probs = super::composite::softmax_last_dim(&scores)?;
        parts.push(probs.matmul(&vs)?.transpose(0, 1)?);
        done = start + len;
    }
    if done < g.rows {
        parts.push(q.narrow(0, done, g.rows - done)?.zeros_like()?);
    }
    Tensor::cat(&parts, 0)
}

/// Sizes shared by the kernels, checked once.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    rows: usize,
    heads: usize,
    kv_heads: usize,
    d: usize,
}

impl Geometry {
    fn of(q: &Tensor, k: &Tensor, v: &Tensor, spans: &[(usize, usize)]) -> Result<Self> {
        let (rows, heads, d) = q.dims3()?;
        let (kr, kv_heads, kd) = k.dims3()?;
        if k.dims() != v.dims() || kr != rows || kd != d {
            candle_core::bail!("varlen attention: q {:?}, k {:?}, v {:?} do not fit", q.dims(), k.dims(), v.dims());
        }
        if kv_heads == 0 || heads % kv_heads != 0 {
            candle_core::bail!("varlen attention: {heads} query heads cannot share {kv_heads} key/value heads");
        }
        let mut end = 0;
        for &(start, len) in spans {
            if start < end || start + len > rows {
                candle_core::bail!(
                    "varlen attention: spans {spans:?} are not ordered, disjoint and within {rows} rows"
                );
            }
            end = start + len;
        }
        Ok(Self { rows, heads, kv_heads, d })
    }

    fn q_row(&self) -> usize {
        self.heads * self.d
    }

    fn kv_row(&self) -> usize {
        self.kv_heads * self.d
    }

    /// Query rows per block for a sequence of `len` keys.
    fn block_rows(&self, len: usize) -> usize {
        (SCORE_BUDGET / len.max(1)).clamp(1, len.max(1))
    }
}

/// A strided matrix inside a slice: element `(r, c)` at `offset + r·rs + c·cs`.
#[derive(Clone, Copy, Debug)]
struct Mat {
    offset: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl Mat {
    /// A row-major `rows × cols` buffer.
    fn dense(rows: usize, cols: usize) -> Self {
        Self { offset: 0, rows, cols, rs: cols, cs: 1 }
    }

    /// Head `head` of rows `row0..row0 + rows` of a packed `(N, heads, d)` tensor with row length
    /// `row_len`: a `rows × d` matrix.
    fn head(row0: usize, rows: usize, head: usize, d: usize, row_len: usize) -> Self {
        Self { offset: row0 * row_len + head * d, rows, cols: d, rs: row_len, cs: 1 }
    }

    fn t(self) -> Self {
        Self { rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs, ..self }
    }

    /// One past the last element it touches (0 when empty).
    fn end(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            return 0;
        }
        self.offset + (self.rows - 1) * self.rs + (self.cols - 1) * self.cs + 1
    }
}

/// `dst = beta·lhs·rhs` (or `dst += beta·lhs·rhs` when `accumulate`), single-threaded.
fn matmul<A: Acc>((dst, d): (&mut [A], Mat), accumulate: bool, (lhs, l): (&[A], Mat), (rhs, r): (&[A], Mat), beta: A) {
    assert!(l.rows == d.rows && r.cols == d.cols && l.cols == r.rows, "matmul shapes {l:?} × {r:?} -> {d:?}");
    assert!(d.end() <= dst.len() && l.end() <= lhs.len() && r.end() <= rhs.len(), "matmul out of bounds");
    if d.rows == 0 || d.cols == 0 {
        return;
    }
    if l.cols == 0 {
        if !accumulate {
            for i in 0..d.rows {
                for j in 0..d.cols {
                    dst[d.offset + i * d.rs + j * d.cs] = A::ZERO;
                }
            }
        }
        return;
    }
    // SAFETY: the three views lie within their slices (checked above); `dst` is borrowed mutably,
    // so it aliases neither operand. `gemm` reads and writes only the elements of the views.
    unsafe {
        gemm::gemm(
            d.rows,
            d.cols,
            l.cols,
            dst.as_mut_ptr().add(d.offset),
            d.cs as isize,
            d.rs as isize,
            accumulate,
            lhs.as_ptr().add(l.offset),
            l.cs as isize,
            l.rs as isize,
            rhs.as_ptr().add(r.offset),
            r.cs as isize,
            r.rs as isize,
            A::ONE,
            beta,
            false,
            false,
            false,
            Parallelism::None,
        )
    }
}

/// Turns each `keys`-wide row of scores into probabilities; with `causal`, row `i` of the block
/// (absolute row `row0 + i`) keeps only keys `0..=row0 + i` and the others become exactly 0.
fn softmax_rows<A: Acc>(scores: &mut [A], keys: usize, row0: usize, causal: bool) {
    for (i, row) in scores.chunks_mut(keys).enumerate() {
        let live = if causal { (row0 + i + 1).min(keys) } else { keys };
        let (live, masked) = row.split_at_mut(live);
        let max = live.iter().fold(A::NEG_INFINITY, |m, &x| if x > m { x } else { m });
        let mut sum = A::ZERO;
        for x in live.iter_mut() {
            *x = (*x - max).exp_nonpositive();
            sum += *x;
        }
        let inv = A::ONE / sum;
        for x in live.iter_mut() {
            *x = *x * inv;
        }
        masked.fill(A::ZERO);
    }
}

/// The op's settings; its inputs are `(q, k, v)`.
struct VarlenAttention {
    geometry: Geometry,
    spans: Vec<(usize, usize)>,
    scale: f64,
    causal: bool,
}

impl VarlenAttention {
    /// Keys a block of queries `row0..row0 + rows` needs.
    fn keys(&self, len: usize, row0: usize, rows: usize) -> usize {
        if self.causal {
            row0 + rows
        } else {
            len
        }
    }

    /// Output of one (span, head): `len × d`, row-major.
    fn forward_task<A: Acc>(&self, q: &[A], k: &[A], v: &[A], (start, len): (usize, usize), h: usize) -> Vec<A> {
        let g = self.geometry;
        let kvh = h / (g.heads / g.kv_heads);
        let mut out = vec![A::ZERO; len * g.d];
        let block = g.block_rows(len);
        let mut p = vec![A::ZERO; block * len];
        for row0 in (0..len).step_by(block) {
            let rows = block.min(len - row0);
            let keys = self.keys(len, row0, rows);
            let p = &mut p[..rows * keys];
            let qm = Mat::head(start + row0, rows, h, g.d, g.q_row());
            let km = Mat::head(start, keys, kvh, g.d, g.kv_row());
            matmul((p, Mat::dense(rows, keys)), false, (q, qm), (k, km.t()), A::of(self.scale));
            softmax_rows(p, keys, row0, self.causal);
            let om = Mat { offset: row0 * g.d, ..Mat::dense(rows, g.d) };
            matmul((&mut out, om), false, (p, Mat::dense(rows, keys)), (v, km), A::ONE);
        }
        out
    }

    /// Gradients of one (span, kv head): `dq` of its `group` query heads (`group × len × d`), `dk`
    /// and `dv` (`len × d` each), row-major.
    fn backward_task<A: Acc>(
        &self,
        [q, k, v, dout]: [&[A]; 4],
        (start, len): (usize, usize),
        kvh: usize,
    ) -> (Vec<A>, Vec<A>, Vec<A>) {
        let g = self.geometry;
        let group = g.heads / g.kv_heads;
        let scale = A::of(self.scale);
        let (mut dq, mut dk, mut dv) =
            (vec![A::ZERO; group * len * g.d], vec![A::ZERO; len * g.d], vec![A::ZERO; len * g.d]);
        let block = g.block_rows(len);
        let (mut p, mut ds) = (vec![A::ZERO; block * len], vec![A::ZERO; block * len]);
        for (gi, h) in (kvh * group..(kvh + 1) * group).enumerate() {
            for row0 in (0..len).step_by(block) {
                let rows = block.min(len - row0);
                let keys = self.keys(len, row0, rows);
                let (p, ds) = (&mut p[..rows * keys], &mut ds[..rows * keys]);
                let sm = Mat::dense(rows, keys);
                let qm = Mat::head(start + row0, rows, h, g.d, g.q_row());
                let km = Mat::head(start, keys, kvh, g.d, g.kv_row());
                matmul((p, sm), false, (q, qm), (k, km.t()), scale);
                softmax_rows(p, keys, row0, self.causal);
                // dP = dO·Vᵀ, then dS = P ⊙ (dP − D) with D_i = Σ_j P_ij dP_ij.
                matmul((ds, sm), false, (dout, qm), (v, km.t()), A::ONE);
                for (pr, dr) in p.chunks(keys).zip(ds.chunks_mut(keys)) {
                    let d_i = pr.iter().zip(dr.iter()).fold(A::ZERO, |s, (&a, &b)| s + a * b);
                    for (x, &pv) in dr.iter_mut().zip(pr) {
                        *x = pv * (*x - d_i);
                    }
                }
                let dqm = Mat { offset: (gi * len + row0) * g.d, ..Mat::dense(rows, g.d) };
                matmul((&mut dq, dqm), false, (ds, sm), (k, km), scale);
                let dkv = Mat::dense(keys, g.d);
                matmul((&mut dk, dkv), true, (ds, sm.t()), (q, qm), scale);
                matmul((&mut dv, dkv), true, (p, sm.t()), (dout, qm), A::ONE);
            }
        }
        (dq, dk, dv)
    }

    fn forward<A: Acc>(&self, q: &[A], k: &[A], v: &[A]) -> Vec<A> {
        let g = self.geometry;
        let tasks: Vec<_> = self.spans.iter().flat_map(|&s| (0..g.heads).map(move |h| (s, h))).collect();
        let outs: Vec<Vec<A>> = tasks.par_iter().map(|&(s, h)| self.forward_task(q, k, v, s, h)).collect();
        let mut out = vec![A::ZERO; g.rows * g.q_row()];
        for (&((start, _), h), o) in tasks.iter().zip(&outs) {
            scatter_head(&mut out, o, start, h, g.d, g.q_row());
        }
        out
    }

    /// `[dq | dk | dv]`, each packed like its input.
    fn backward<A: Acc>(&self, inputs: [&[A]; 4]) -> Vec<A> {
        let g = self.geometry;
        let group = g.heads / g.kv_heads;
        let tasks: Vec<_> = self.spans.iter().flat_map(|&s| (0..g.kv_heads).map(move |h| (s, h))).collect();
        let grads: Vec<_> = tasks.par_iter().map(|&(s, kvh)| self.backward_task(inputs, s, kvh)).collect();
        let (nq, nkv) = (g.rows * g.q_row(), g.rows * g.kv_row());
        let mut out = vec![A::ZERO; nq + 2 * nkv];
        let (dq, rest) = out.split_at_mut(nq);
        let (dk, dv) = rest.split_at_mut(nkv);
        for (&((start, len), kvh), (tq, tk, tv)) in tasks.iter().zip(&grads) {
            for gi in 0..group {
                let head = &tq[gi * len * g.d..(gi + 1) * len * g.d];
                scatter_head(dq, head, start, kvh * group + gi, g.d, g.q_row());
            }
            scatter_head(dk, tk, start, kvh, g.d, g.kv_row());
            scatter_head(dv, tv, start, kvh, g.d, g.kv_row());
        }
        out
    }
}

/// Copies a row-major `len × d` block into head `h` of rows `start..` of a packed tensor.
fn scatter_head<A: Copy>(packed: &mut [A], block: &[A], start: usize, h: usize, d: usize, row_len: usize) {
    for (r, src) in block.chunks(d).enumerate() {
        let at = (start + r) * row_len + h * d;
        packed[at..at + d].copy_from_slice(src);
    }
}

/// Widens a contiguous operand to the arithmetic type.
fn widen<T: Elem>(s: &CpuStorage, l: &Layout) -> Result<Vec<T::A>> {
    Ok(slice::<T>(s, l)?.iter().map(|&x| x.up()).collect())
}

fn narrow_all<T: Elem>(v: Vec<T::A>) -> Vec<T> {
    v.into_iter().map(T::down).collect()
}

impl CustomOp3 for VarlenAttention {
    fn name(&self) -> &'static str {
        "folio-varlen-attention"
    }

    fn cpu_fwd(
        &self,
        sq: &CpuStorage,
        lq: &Layout,
        sk: &CpuStorage,
        lk: &Layout,
        sv: &CpuStorage,
        lv: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        by_dtype!(sq.dtype(), self.name(), T => {
            let (q, k, v) = (widen::<T>(sq, lq)?, widen::<T>(sk, lk)?, widen::<T>(sv, lv)?);
            let out = narrow_all::<T>(self.forward(&q, &k, &v));
            Ok((T::to_cpu_storage_owned(out), lq.shape().clone()))
        })
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _out: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        // Four inputs for a three-input op: q and the upstream gradient travel stacked.
        let q_and_grad = Tensor::stack(&[q, &grad.contiguous()?], 0)?;
        let op = VarlenAttentionBwd(VarlenAttention { spans: self.spans.clone(), ..*self });
        let packed = q_and_grad.apply_op3_no_bwd(k, v, &op)?;
        let (nq, nkv) = (q.elem_count(), k.elem_count());
        let dq = packed.narrow(0, 0, nq)?.reshape(q.shape())?;
        let dk = packed.narrow(0, nq, nkv)?.reshape(k.shape())?;
        let dv = packed.narrow(0, nq + nkv, nkv)?.reshape(v.shape())?;
        Ok((Some(dq), Some(dk), Some(dv)))
    }
}

/// `((q, dout) stacked, k, v)` → `[dq | dk | dv]` flattened.
struct VarlenAttentionBwd(VarlenAttention);

impl CustomOp3 for VarlenAttentionBwd {
    fn name(&self) -> &'static str {
        "folio-varlen-attention-bwd"
    }

    fn cpu_fwd(
        &self,
        sqg: &CpuStorage,
        lqg: &Layout,
        sk: &CpuStorage,
        lk: &Layout,
        sv: &CpuStorage,
        lv: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        by_dtype!(sqg.dtype(), self.name(), T => {
            let qg = widen::<T>(sqg, lqg)?;
            let (k, v) = (widen::<T>(sk, lk)?, widen::<T>(sv, lv)?);
            let (q, dout) = qg.split_at(qg.len() / 2);
            let out = narrow_all::<T>(self.0.backward([q, &k, &v, dout]));
            let n = out.len();
            Ok((T::to_cpu_storage_owned(out), Shape::from(n)))
        })
    }
}
