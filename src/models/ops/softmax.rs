//! Softmax over the last dimension: `y = exp(x − max) / Σ exp(x − max)`, backward
//! `dx = y (g − Σ g y)`. Rows may hold −∞ (masked keys): those get probability exactly 0.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, WithDType, D};

use super::{by_dtype, for_rows, last_dim, slice, sum_map2, Acc, Elem};

pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return softmax_composite(x);
    }
    x.contiguous()?.apply_op1(SoftmaxOp)
}

/// [`softmax_last_dim`] from plain candle ops.
pub fn softmax_composite(x: &Tensor) -> Result<Tensor> {
    // The shift cancels out of the value and the gradient; detaching it keeps the graph simple.
    let e = x.broadcast_sub(&x.max_keepdim(D::Minus1)?.detach())?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

struct SoftmaxOp;

impl CustomOp1 for SoftmaxOp {
    fn name(&self) -> &'static str {
        "folio-softmax-last-dim"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let n = last_dim(l)?;
        by_dtype!(s.dtype(), self.name(), T => {
            type A = <T as Elem>::A;
            let x = slice::<T>(s, l)?;
            let mut y = vec![T::from_f64(0.0); x.len()];
            for_rows(&mut y, n, || vec![A::ZERO; n], |i, y, e| {
                let x = &x[i * n..(i + 1) * n];
                let max = row_max(x);
                for (e, &x) in e.iter_mut().zip(x) {
                    *e = (x.up() - max).exp_nonpositive();
                }
                let total = lane_sum(e);
                let inv = A::ONE / total;
                for (y, &e) in y.iter_mut().zip(e.iter()) {
                    *y = T::down(e * inv);
                }
            });
            Ok((T::to_cpu_storage_owned(y), l.shape().clone()))
        })
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(y.apply_op2_no_bwd(&g.contiguous()?, &SoftmaxBwd)?))
    }
}

/// `(y, g)` → `dx`.
struct SoftmaxBwd;

impl CustomOp2 for SoftmaxBwd {
    fn name(&self) -> &'static str {
        "folio-softmax-last-dim-bwd"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let n = last_dim(l1)?;
        by_dtype!(s1.dtype(), self.name(), T => {
            let (y, g) = (slice::<T>(s1, l1)?, slice::<T>(s2, l2)?);
            let mut dx = vec![T::from_f64(0.0); y.len()];
            for_rows(&mut dx, n, || (), |i, dx, _| {
                let (y, g) = (&y[i * n..(i + 1) * n], &g[i * n..(i + 1) * n]);
                let dot = sum_map2(g, y, |g, y| g * y);
                for ((dx, &y), &g) in dx.iter_mut().zip(y).zip(g) {
                    *dx = T::down(y.up() * (g.up() - dot));
                }
            });
            Ok((T::to_cpu_storage_owned(dx), l1.shape().clone()))
        })
    }
}

/// Σ v with eight partial sums.
#[inline(always)]
fn lane_sum<A: Acc>(v: &[A]) -> A {
    let mut acc = [A::ZERO; 8];
    let chunks = v.chunks_exact(8);
    let tail = chunks.remainder().iter().fold(A::ZERO, |s, &v| s + v);
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Largest element of a row (eight running maxima; NaN-free rows assumed, as in candle's kernel).
#[inline(always)]
fn row_max<T: Elem>(x: &[T]) -> T::A {
    let mut m = [T::A::NEG_INFINITY; 8];
    let cx = x.chunks_exact(8);
    let mut tail = T::A::NEG_INFINITY;
    for &v in cx.remainder() {
        tail = max(tail, v.up());
    }
    for c in cx {
        for (m, &v) in m.iter_mut().zip(c) {
            *m = max(*m, v.up());
        }
    }
    m.into_iter().fold(tail, max)
}

#[inline(always)]
fn max<A: Acc>(a: A, b: A) -> A {
    if b > a {
        b
    } else {
        a
    }
}
