//! GELU in its tanh form (`gelu_pytorch_tanh`, the SigLIP vision MLP's activation):
//! `y = ½x(1 + tanh u) = x σ(2u)` with `u = √(2/π)(x + 0.044715x³)`, backward
//! `dx = g (σ + x σ(1 − σ) · 2u')`, `u' = √(2/π)(1 + 3·0.044715x²)`.
//!
//! candle's own `gelu` calls the scalar libm `tanhf` per element (a third of the vision encoder's
//! time on small models); here σ comes from the branch-free [`exp_nonpositive`](super::Acc), so the
//! loops vectorise.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, WithDType};

use super::{by_dtype, for_rows, slice, Acc, Elem};

/// Elements per row handed to [`for_rows`]; the op is elementwise, rows are only work units.
const ROW: usize = 1024;

pub fn gelu_tanh(x: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return gelu_tanh_composite(x);
    }
    x.contiguous()?.apply_op1(GeluTanh)
}

/// [`gelu_tanh`] from plain candle ops.
pub fn gelu_tanh_composite(x: &Tensor) -> Result<Tensor> {
    x.gelu()
}

/// σ(2u) and 1 − σ(2u) for `x`, from `e = exp(−2|u|) ∈ (0, 1]` (no overflow, no cancellation).
#[inline(always)]
fn sigmoids<A: Acc>(x: A) -> (A, A, A) {
    let c = A::of(0.797_884_560_802_865_4); // √(2/π)
    let k = A::of(0.044_715);
    let u = c * (x + k * x * x * x);
    let two_abs = if u < A::ZERO { u + u } else { -(u + u) };
    let e = two_abs.exp_nonpositive();
    let big = A::ONE / (A::ONE + e); // σ(2|u|)
    let small = e * big; // 1 − σ(2|u|)
    let (s, one_minus_s) = if u < A::ZERO { (small, big) } else { (big, small) };
    (s, one_minus_s, c * (A::ONE + A::of(3.0) * k * x * x))
}

struct GeluTanh;

impl CustomOp1 for GeluTanh {
    fn name(&self) -> &'static str {
        "folio-gelu-tanh"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        by_dtype!(s.dtype(), self.name(), T => {
            let x = slice::<T>(s, l)?;
            let mut y = vec![T::from_f64(0.0); x.len()];
            for_rows(&mut y, ROW, || (), |i, y, _| {
                for (y, &x) in y.iter_mut().zip(&x[i * ROW..]) {
                    let x = x.up();
                    *y = T::down(x * sigmoids(x).0);
                }
            });
            Ok((T::to_cpu_storage_owned(y), l.shape().clone()))
        })
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(&g.contiguous()?, &GeluTanhBwd)?))
    }
}

/// `(x, g)` → `dx`.
struct GeluTanhBwd;

impl CustomOp2 for GeluTanhBwd {
    fn name(&self) -> &'static str {
        "folio-gelu-tanh-bwd"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        by_dtype!(s1.dtype(), self.name(), T => {
            let (x, g) = (slice::<T>(s1, l1)?, slice::<T>(s2, l2)?);
            let mut dx = vec![T::from_f64(0.0); x.len()];
            for_rows(&mut dx, ROW, || (), |i, dx, _| {
                for ((dx, &x), &g) in dx.iter_mut().zip(&x[i * ROW..]).zip(&g[i * ROW..]) {
                    let x = x.up();
                    let (s, one_minus_s, du) = sigmoids(x);
                    *dx = T::down(g.up() * (s + x * s * one_minus_s * (du + du)));
                }
            });
            Ok((T::to_cpu_storage_owned(dx), l1.shape().clone()))
        })
    }
}
