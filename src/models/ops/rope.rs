//! Rotary embedding in the split-halves (neox, `rotate_half`) form on `(batch, tokens, heads, d)`:
//! with `x = [x1, x2]` (halves of the last dimension) and `c`, `s` the token's cos/sin row,
//! `y = [x1 c − x2 s, x1 s + x2 c]`. The map is a rotation, so its backward is the rotation by the
//! opposite angle: the same kernel with `s` negated.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, WithDType};

use super::{by_dtype, for_rows, slice, Acc, Elem};

/// Same contract as `candle_nn::rotary_emb::rope_thd`: `x` is `(b, t, h, d)`, `cos`/`sin` are
/// `(t', d/2)` with `t' >= t` (token `i` uses row `i`) or `(b, t, d/2)`. The gradient flows to `x`
/// only; `cos` and `sin` are treated as constants.
pub fn rope_thd(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let (b, t, _, d) = x.dims4()?;
    for cs in [cos, sin] {
        let ok = match *cs.dims() {
            [rows, half] => rows >= t && half * 2 == d,
            [cb, rows, half] => cb == b && rows == t && half * 2 == d,
            _ => false,
        };
        if !ok || cs.dtype() != x.dtype() {
            candle_core::bail!(
                "rope_thd: cos/sin {:?} {:?} do not fit x {:?} {:?}",
                cs.shape(),
                cs.dtype(),
                x.shape(),
                x.dtype()
            );
        }
    }
    if !x.device().is_cpu() {
        return rope_thd_composite(x, cos, sin);
    }
    x.contiguous()?.apply_op3(&cos.contiguous()?, &sin.contiguous()?, RopeOp { inverse: false })
}

/// [`rope_thd`] from plain candle ops.
pub fn rope_thd_composite(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let (b, t, _, d) = x.dims4()?;
    let per_token = |cs: &Tensor| -> Result<Tensor> {
        match cs.rank() {
            2 => cs.narrow(0, 0, t)?.reshape((1, t, 1, d / 2)),
            _ => cs.reshape((b, t, 1, d / 2)),
        }
    };
    let (c, s) = (per_token(cos)?, per_token(sin)?);
    let x1 = x.narrow(3, 0, d / 2)?;
    let x2 = x.narrow(3, d / 2, d / 2)?;
    let y1 = (x1.broadcast_mul(&c)? - x2.broadcast_mul(&s)?)?;
    let y2 = (x1.broadcast_mul(&s)? + x2.broadcast_mul(&c)?)?;
    Tensor::cat(&[y1, y2], 3)
}

struct RopeOp {
    /// Rotate by the opposite angle (the backward).
    inverse: bool,
}

impl CustomOp3 for RopeOp {
    fn name(&self) -> &'static str {
        "folio-rope-thd"
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
        let (_, t, h, d) = l1.shape().dims4()?;
        let half = d / 2;
        // Row stride of cos/sin per batch entry: 0 when one table serves every batch entry.
        let batch_stride = if l2.dims().len() == 3 { t } else { 0 };
        by_dtype!(s1.dtype(), self.name(), T => {
            let (x, cos, sin) = (slice::<T>(s1, l1)?, slice::<T>(s2, l2)?, slice::<T>(s3, l3)?);
            let mut y = vec![T::from_f64(0.0); x.len()];
            let sign = if self.inverse { -1.0 } else { 1.0 };
            // One row per token: all its heads share the token's cos/sin.
            for_rows(&mut y, h * d, || (), |row, y, _| {
                let cs = (row / t * batch_stride + row % t) * half;
                let (c, s) = (&cos[cs..cs + half], &sin[cs..cs + half]);
                let x = &x[row * h * d..(row + 1) * h * d];
                for (y, x) in y.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
                    let (y1, y2) = y.split_at_mut(half);
                    let (x1, x2) = x.split_at(half);
                    for (((((y1, y2), &x1), &x2), &c), &s) in y1.iter_mut().zip(y2).zip(x1).zip(x2).zip(c).zip(s) {
                        let (x1, x2, c, s) = (x1.up(), x2.up(), c.up(), <T as Elem>::A::of(sign) * s.up());
                        *y1 = T::down(x1 * c - x2 * s);
                        *y2 = T::down(x1 * s + x2 * c);
                    }
                }
            });
            Ok((T::to_cpu_storage_owned(y), l1.shape().clone()))
        })
    }

    fn bwd(
        &self,
        _x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        _y: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dx = g.contiguous()?.apply_op3_no_bwd(cos, sin, &RopeOp { inverse: !self.inverse })?;
        Ok((Some(dx), None, None))
    }
}
