//! RMSNorm and LayerNorm over the last dimension.
//!
//! With `r = 1 / sqrt(mean(x²) + eps)` (RMS) or `r = 1 / sqrt(var(x) + eps)`, `x̂ = (x − mean) r`
//! (Layer), `y = x̂ w (+ b)` and upstream gradient `g`:
//! - RMS: `dx = r (g w − x r² mean(g w x))`, `dw = Σ_rows g x r`;
//! - Layer: `dx = r (g w − mean(g w) − x̂ mean(g w x̂))`, `dw = Σ_rows g x̂`, `db = Σ_rows g`.
//!
//! The backward kernels return `dx` and the parameter gradients packed in one `(rows + k, n)` tensor
//! (a custom op has one output), split with `narrow`.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor, WithDType, D};

use super::{by_dtype, for_rows, last_dim, slice, sum_map, sum_map2, Acc, Elem};

/// `x / sqrt(mean(x², last dim) + eps) * weight`; `weight` has the size of the last dimension.
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    check_param("rms_norm", x, weight)?;
    if !x.device().is_cpu() {
        return rms_norm_composite(x, weight, eps);
    }
    x.contiguous()?.apply_op2(&weight.contiguous()?, RmsNormOp { eps })
}

/// `(x − mean) / sqrt(var + eps) * weight + bias` over the last dimension (biased variance).
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    check_param("layer_norm", x, weight)?;
    check_param("layer_norm", x, bias)?;
    if !x.device().is_cpu() {
        return layer_norm_composite(x, weight, bias, eps);
    }
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, LayerNormOp { eps })
}

fn check_param(op: &str, x: &Tensor, p: &Tensor) -> Result<()> {
    let n = x.dim(D::Minus1)?;
    if p.dims() != [n] || p.dtype() != x.dtype() {
        candle_core::bail!(
            "{op}: parameter {:?} {:?} does not fit input {:?} {:?}",
            p.shape(),
            p.dtype(),
            x.shape(),
            x.dtype()
        );
    }
    Ok(())
}

/// Statistics are taken in f32 for 16-bit inputs.
fn compute_dtype(dtype: DType) -> DType {
    match dtype {
        DType::BF16 | DType::F16 => DType::F32,
        d => d,
    }
}

/// [`rms_norm`] from plain candle ops.
pub fn rms_norm_composite(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    let xc = x.to_dtype(compute_dtype(x.dtype()))?;
    let r = (xc.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?.recip()?;
    xc.broadcast_mul(&r)?.to_dtype(x.dtype())?.broadcast_mul(weight)
}

/// [`layer_norm`] from plain candle ops.
pub fn layer_norm_composite(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    let xc = x.to_dtype(compute_dtype(x.dtype()))?;
    let centred = xc.broadcast_sub(&xc.mean_keepdim(D::Minus1)?)?;
    let r = (centred.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?.recip()?;
    centred.broadcast_mul(&r)?.to_dtype(x.dtype())?.broadcast_mul(weight)?.broadcast_add(bias)
}

struct RmsNormOp {
    eps: f64,
}

impl CustomOp2 for RmsNormOp {
    fn name(&self) -> &'static str {
        "folio-rms-norm"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let n = last_dim(l1)?;
        by_dtype!(s1.dtype(), self.name(), T => {
            let (x, w) = (slice::<T>(s1, l1)?, slice::<T>(s2, l2)?);
            let eps = <T as Elem>::A::of(self.eps);
            let nf = <T as Elem>::A::of(n as f64);
            let mut y = vec![T::from_f64(0.0); x.len()];
            for_rows(&mut y, n, || (), |i, y, _| {
                let x = &x[i * n..(i + 1) * n];
                let r = <T as Elem>::A::ONE / (sum_map(x, |v| v * v) / nf + eps).sqrt();
                for ((y, &x), &w) in y.iter_mut().zip(x).zip(w) {
                    *y = T::down(x.up() * r * w.up());
                }
            });
            Ok((T::to_cpu_storage_owned(y), l1.shape().clone()))
        })
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _y: &Tensor, g: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let packed = x.apply_op3_no_bwd(w, &g.contiguous()?, &RmsNormBwd { eps: self.eps })?;
        let rows = x.elem_count() / w.elem_count();
        let dx = packed.narrow(0, 0, rows)?.reshape(x.shape())?;
        let dw = packed.narrow(0, rows, 1)?.reshape(w.shape())?;
        Ok((Some(dx), Some(dw)))
    }
}

/// `(x, w, g)` → `(rows + 1, n)`: `dx` rows, then `dw`.
struct RmsNormBwd {
    eps: f64,
}

impl CustomOp3 for RmsNormBwd {
    fn name(&self) -> &'static str {
        "folio-rms-norm-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let n = last_dim(l1)?;
        by_dtype!(s1.dtype(), self.name(), T => {
            let (x, w, g) = (slice::<T>(s1, l1)?, slice::<T>(s2, l2)?, slice::<T>(s3, l3)?);
            let eps = <T as Elem>::A::of(self.eps);
            let nf = <T as Elem>::A::of(n as f64);
            let rows = x.len() / n;
            let mut out = vec![T::from_f64(0.0); (rows + 1) * n];
            let (dx, dw) = out.split_at_mut(rows * n);
            let partials = for_rows(dx, n, || vec![<T as Elem>::A::ZERO; n], |i, dx, dw_part| {
                let (x, g) = (&x[i * n..(i + 1) * n], &g[i * n..(i + 1) * n]);
                let r = <T as Elem>::A::ONE / (sum_map(x, |v| v * v) / nf + eps).sqrt();
                let m = dot3(g, w, x) / nf;
                let c = r * r * m;
                for ((((dx, &x), &g), &w), dw) in dx.iter_mut().zip(x).zip(g).zip(w).zip(dw_part.iter_mut()) {
                    let (x, g) = (x.up(), g.up());
                    *dx = T::down(r * (g * w.up() - x * c));
                    *dw += g * x * r;
                }
            });
            sum_blocks(&partials, dw);
            Ok((T::to_cpu_storage_owned(out), Shape::from((rows + 1, n))))
        })
    }
}

struct LayerNormOp {
    eps: f64,
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "folio-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let n = last_dim(l1)?;
        by_dtype!(s1.dtype(), self.name(), T => {
            let (x, w, b) = (slice::<T>(s1, l1)?, slice::<T>(s2, l2)?, slice::<T>(s3, l3)?);
            let eps = <T as Elem>::A::of(self.eps);
            let nf = <T as Elem>::A::of(n as f64);
            let mut y = vec![T::from_f64(0.0); x.len()];
            for_rows(&mut y, n, || (), |i, y, _| {
                let x = &x[i * n..(i + 1) * n];
                let (mean, r) = moments(x, nf, eps);
                for (((y, &x), &w), &b) in y.iter_mut().zip(x).zip(w).zip(b) {
                    *y = T::down((x.up() - mean) * r * w.up() + b.up());
                }
            });
            Ok((T::to_cpu_storage_owned(y), l1.shape().clone()))
        })
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let packed = x.apply_op3_no_bwd(w, &g.contiguous()?, &LayerNormBwd { eps: self.eps })?;
        let rows = x.elem_count() / w.elem_count();
        let dx = packed.narrow(0, 0, rows)?.reshape(x.shape())?;
        let dw = packed.narrow(0, rows, 1)?.reshape(w.shape())?;
        let db = packed.narrow(0, rows + 1, 1)?.reshape(b.shape())?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

/// `(x, w, g)` → `(rows + 2, n)`: `dx` rows, then `dw`, then `db`.
struct LayerNormBwd {
    eps: f64,
}

impl CustomOp3 for LayerNormBwd {
    fn name(&self) -> &'static str {
        "folio-layer-norm-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let n = last_dim(l1)?;
        by_dtype!(s1.dtype(), self.name(), T => {
            type A = <T as Elem>::A;
            let (x, w, g) = (slice::<T>(s1, l1)?, slice::<T>(s2, l2)?, slice::<T>(s3, l3)?);
            let eps = A::of(self.eps);
            let nf = A::of(n as f64);
            let rows = x.len() / n;
            let mut out = vec![T::from_f64(0.0); (rows + 2) * n];
            let (dx, dwb) = out.split_at_mut(rows * n);
            let partials = for_rows(dx, n, || vec![A::ZERO; 2 * n], |i, dx, part| {
                let (x, g) = (&x[i * n..(i + 1) * n], &g[i * n..(i + 1) * n]);
                let (mean, r) = moments(x, nf, eps);
                let m1 = sum_map2(g, w, |g, w| g * w) / nf;
                let m2 = dot3_centred(g, w, x, mean) * r / nf;
                let (dw, db) = part.split_at_mut(n);
                for (((((dx, &x), &g), &w), dw), db) in dx.iter_mut().zip(x).zip(g).zip(w).zip(dw).zip(db) {
                    let (xh, g) = ((x.up() - mean) * r, g.up());
                    *dx = T::down(r * (g * w.up() - m1 - xh * m2));
                    *dw += g * xh;
                    *db += g;
                }
            });
            sum_blocks(&partials, dwb);
            Ok((T::to_cpu_storage_owned(out), Shape::from((rows + 2, n))))
        })
    }
}

/// Mean and `1 / sqrt(var + eps)` of a row (two passes: the row is in cache, and it is exact for
/// rows with a large mean).
#[inline(always)]
fn moments<T: Elem>(x: &[T], nf: T::A, eps: T::A) -> (T::A, T::A) {
    let mean = sum_map(x, |v| v) / nf;
    let var = sum_map(x, |v| (v - mean) * (v - mean)) / nf;
    (mean, T::A::ONE / (var + eps).sqrt())
}

/// Σ g w x.
#[inline(always)]
fn dot3<T: Elem>(g: &[T], w: &[T], x: &[T]) -> T::A {
    dot3_centred(g, w, x, T::A::ZERO)
}

/// Σ g w (x − c), with eight partial sums.
#[inline(always)]
fn dot3_centred<T: Elem>(g: &[T], w: &[T], x: &[T], c: T::A) -> T::A {
    let mut acc = [T::A::ZERO; 8];
    let mut tail = T::A::ZERO;
    let (cg, cw, cx) = (g.chunks_exact(8), w.chunks_exact(8), x.chunks_exact(8));
    for ((&g, &w), &x) in cg.remainder().iter().zip(cw.remainder()).zip(cx.remainder()) {
        tail += g.up() * w.up() * (x.up() - c);
    }
    for ((cg, cw), cx) in cg.zip(cw).zip(cx) {
        for (((a, &g), &w), &x) in acc.iter_mut().zip(cg).zip(cw).zip(cx) {
            *a += g.up() * w.up() * (x.up() - c);
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Sums per-block partial gradients (in block order) into `out`.
fn sum_blocks<T: Elem>(partials: &[Vec<T::A>], out: &mut [T]) {
    let mut sum = vec![T::A::ZERO; out.len()];
    for p in partials {
        for (s, &v) in sum.iter_mut().zip(p) {
            *s += v;
        }
    }
    for (o, s) in out.iter_mut().zip(sum) {
        *o = T::down(s);
    }
}
