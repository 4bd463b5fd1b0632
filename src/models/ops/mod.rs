//! Fused CPU ops with a backward pass: the one forward path for inference and training.
//!
//! candle_nn's fast kernels (`softmax_last_dim`, `rms_norm`, `layer_norm`, `rope_thd`) have no
//! backward: a loss computed through them silently gets no gradient upstream. These ops compute the
//! same values (to rounding) on row slices, in parallel over rows, and carry a hand-written backward
//! that is itself a fused kernel. Three more replace slow candle compositions: `gelu_tanh` (candle's
//! calls scalar libm `tanhf`), `weighted_gather` (the position table's bilinear resampling) and
//! `varlen_attention` (attention within each of many packed sequences, whose per-sequence `narrow`s
//! made candle's backward quadratic in the batch). Everything else the model uses (matmul,
//! gelu_erf, silu, index_select, broadcasts, narrow, cat, sum, to_dtype, …) already has a backward
//! in candle 0.11.1.
//!
//! Arithmetic happens in f32 for f32, bf16 and f16 tensors (16-bit values are widened, accumulated in
//! f32 and rounded once on store) and in f64 for f64 tensors, which makes finite-difference gradient
//! checks meaningful. Inputs may be strided; they are made contiguous first. On a non-CPU device the
//! ops fall back to the equivalent composition of plain candle ops in [`composite`].
//!
//! Each row is computed the same way whatever the batch around it, so results are batch-invariant;
//! the weight gradients of the norms are summed over fixed row blocks in a fixed order, so they do not
//! depend on the thread count either.

mod gather;
mod gelu;
mod norm;
mod rope;
mod softmax;
mod varlen_attention;

use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

use candle_core::{CpuStorage, Layout, Module, Result, Tensor, WithDType};
use candle_nn::{Init, VarBuilder};
use half::{bf16, f16};
use rayon::prelude::*;

pub use gather::weighted_gather;
pub use gelu::gelu_tanh;
pub use norm::{layer_norm, rms_norm};
pub use rope::rope_thd;
pub use softmax::softmax_last_dim;
pub use varlen_attention::varlen_attention;

/// The same functions composed of plain (differentiable, slower) candle ops: the reference the fused
/// ops are tested against, and their implementation on devices other than the CPU.
pub mod composite {
    pub use super::gather::weighted_gather_composite as weighted_gather;
    pub use super::gelu::gelu_tanh_composite as gelu_tanh;
    pub use super::norm::{layer_norm_composite as layer_norm, rms_norm_composite as rms_norm};
    pub use super::rope::rope_thd_composite as rope_thd;
    pub use super::softmax::softmax_composite as softmax_last_dim;
    pub use super::varlen_attention::varlen_attention_composite as varlen_attention;
}

/// RMSNorm over the last dimension with a learned scale (`weight`), loaded under the checkpoint name
/// `weight` (`gamma` in old state dicts); a fresh variable starts at 1.
#[derive(Clone, Debug)]
pub struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    pub fn new(weight: Tensor, eps: f64) -> Self {
        Self { weight, eps }
    }

    pub fn load(size: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(Self::new(norm_param(&vb, size, ["weight", "gamma"], 1.0)?, eps))
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
}

impl Module for RmsNorm {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        rms_norm(xs, &self.weight, self.eps)
    }
}

/// LayerNorm over the last dimension with `weight` and `bias` (`gamma`/`beta` in old state dicts);
/// fresh variables start at 1 and 0.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    pub fn new(weight: Tensor, bias: Tensor, eps: f64) -> Self {
        Self { weight, bias, eps }
    }

    pub fn load(size: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        let weight = norm_param(&vb, size, ["weight", "gamma"], 1.0)?;
        let bias = norm_param(&vb, size, ["bias", "beta"], 0.0)?;
        Ok(Self::new(weight, bias, eps))
    }
}

impl Module for LayerNorm {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        layer_norm(xs, &self.weight, &self.bias, self.eps)
    }
}

/// The first of `names` the checkpoint holds (else the first name, created as `init` if the builder
/// can create variables).
fn norm_param(vb: &VarBuilder, size: usize, names: [&str; 2], init: f64) -> Result<Tensor> {
    let name = names.into_iter().find(|n| vb.contains_tensor(n)).unwrap_or(names[0]);
    vb.get_with_hints(size, name, Init::Const(init))
}

// ---------------------------------------------------------------------------------------------
// Kernel plumbing shared by the ops.

/// The type arithmetic happens in: f32, or f64 for f64 tensors.
trait Acc:
    Copy
    + Send
    + Sync
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    const NEG_INFINITY: Self;
    fn of(v: f64) -> Self;
    fn sqrt(self) -> Self;
    /// `exp(x)` for `x <= 0` (softmax arguments); 0 below the smallest normal result.
    fn exp_nonpositive(self) -> Self;
}

impl Acc for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NEG_INFINITY: Self = f32::NEG_INFINITY;
    fn of(v: f64) -> Self {
        v as f32
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    fn exp_nonpositive(self) -> Self {
        exp_f32(self)
    }
}

impl Acc for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NEG_INFINITY: Self = f64::NEG_INFINITY;
    fn of(v: f64) -> Self {
        v
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    fn exp_nonpositive(self) -> Self {
        f64::exp(self)
    }
}

/// A tensor element type the kernels accept, with its widening to [`Acc`] and rounding back.
trait Elem: WithDType {
    type A: Acc;
    fn up(self) -> Self::A;
    fn down(a: Self::A) -> Self;
}

macro_rules! elem {
    ($t:ty, $a:ty, |$x:ident| $up:expr, |$y:ident| $down:expr) => {
        impl Elem for $t {
            type A = $a;
            #[inline(always)]
            fn up(self) -> $a {
                let $x = self;
                $up
            }
            #[inline(always)]
            fn down($y: $a) -> Self {
                $down
            }
        }
    };
}
elem!(f32, f32, |x| x, |y| y);
elem!(f64, f64, |x| x, |y| y);
// bf16 by bit operations (exact widening; round-to-nearest-even narrowing, NaN kept NaN): the same
// results as `half`'s conversions, but branch-free so the row loops vectorise.
elem!(bf16, f32, |x| f32::from_bits((x.to_bits() as u32) << 16), |y| bf16_from_f32(y));
elem!(f16, f32, |x| x.to_f32(), |y| f16::from_f32(y));

#[inline(always)]
fn bf16_from_f32(y: f32) -> bf16 {
    let bits = y.to_bits();
    let rounded = (bits.wrapping_add(0x7FFF + ((bits >> 16) & 1)) >> 16) as u16;
    let nan = ((bits >> 16) as u16) | 0x0040;
    bf16::from_bits(if y.is_nan() { nan } else { rounded })
}

/// Runs `$body` with `$T` bound to the element type of `$dtype` (f32, f64, bf16, f16).
macro_rules! by_dtype {
    ($dtype:expr, $op:expr, $T:ident => $body:block) => {
        match $dtype {
            candle_core::DType::F32 => {
                type $T = f32;
                $body
            }
            candle_core::DType::F64 => {
                type $T = f64;
                $body
            }
            candle_core::DType::BF16 => {
                type $T = half::bf16;
                $body
            }
            candle_core::DType::F16 => {
                type $T = half::f16;
                $body
            }
            dtype => candle_core::bail!("{}: unsupported dtype {dtype:?}", $op),
        }
    };
}
use by_dtype;

/// The elements of a contiguous operand.
fn slice<'a, T: Elem>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&s.as_slice::<T>()?[start..end]),
        None => candle_core::bail!("fused op operand is not contiguous"),
    }
}

/// Size of the last dimension of `l`, which must not be zero.
fn last_dim(l: &Layout) -> Result<usize> {
    match l.dims().last() {
        Some(&n) if n > 0 => Ok(n),
        _ => candle_core::bail!("fused op needs a non-empty last dimension, got shape {:?}", l.shape()),
    }
}

/// Below this many elements a kernel stays on the calling thread; above it, rows go to rayon in
/// blocks of about this many elements.
const TASK_ELEMS: usize = 16 * 1024;

/// Calls `f(row, out_row, state)` for every `width`-wide row of `out`, in parallel blocks of rows.
/// Each block gets its own `state()`; the states come back in block order. The block size depends
/// only on `width`, so reductions over the states are deterministic.
fn for_rows<T: Send, S: Send>(
    out: &mut [T],
    width: usize,
    state: impl Fn() -> S + Sync,
    f: impl Fn(usize, &mut [T], &mut S) + Sync,
) -> Vec<S> {
    let rows_per_block = (TASK_ELEMS / width.max(1)).max(1);
    let block = |(b, chunk): (usize, &mut [T])| {
        let mut s = state();
        for (i, row) in chunk.chunks_mut(width).enumerate() {
            f(b * rows_per_block + i, row, &mut s);
        }
        s
    };
    if width == 0 || out.is_empty() {
        return Vec::new();
    }
    if out.len() <= TASK_ELEMS {
        out.chunks_mut(width * rows_per_block).enumerate().map(block).collect()
    } else {
        out.par_chunks_mut(width * rows_per_block).enumerate().map(block).collect()
    }
}

/// Σ f(x_i) in `A` with eight independent partial sums (vectorisable, and more accurate than one
/// running sum).
#[inline(always)]
fn sum_map<T: Elem>(x: &[T], f: impl Fn(T::A) -> T::A) -> T::A {
    let mut acc = [T::A::ZERO; 8];
    let chunks = x.chunks_exact(8);
    let mut tail = T::A::ZERO;
    for &v in chunks.remainder() {
        tail += f(v.up());
    }
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v.up());
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Σ f(a_i, b_i), as [`sum_map`].
#[inline(always)]
fn sum_map2<T: Elem>(a: &[T], b: &[T], f: impl Fn(T::A, T::A) -> T::A) -> T::A {
    let mut acc = [T::A::ZERO; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let mut tail = T::A::ZERO;
    for (&u, &v) in ca.remainder().iter().zip(cb.remainder()) {
        tail += f(u.up(), v.up());
    }
    for (ca, cb) in ca.zip(cb) {
        for ((s, &u), &v) in acc.iter_mut().zip(ca).zip(cb) {
            *s += f(u.up(), v.up());
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// `exp(x)` in f32 for `x <= 0`, branch-free so that loops over it vectorise: `x = n ln2 + r` with
/// |r| <= ln2/2, `exp(r)` by its Taylor series to degree 7 (truncation < 6e-9 relative), times
/// `2^n` built in the exponent bits. Within 2 ulp of `f32::exp`; exactly 0 below −87.3 (where the
/// result would be subnormal) and for −∞.
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4; // few mantissa bits: n·LN2_HI is exact
    const LN2_LO: f32 = (std::f64::consts::LN_2 - 0.693_359_375) as f32;
    const ROUND: f32 = 12_582_912.0; // 1.5·2^23: adding it rounds to an integer in the low bits
    let xc = if x < -87.3 { -87.3 } else { x };
    let t = xc * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    let scale = f32::from_bits(t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23);
    let y = p * scale;
    if x < -87.3 {
        0.0
    } else {
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_within_two_ulp_of_std() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x <= 0.0 {
            let (got, want) = (exp_f32(x) as f64, (x as f64).exp());
            worst = worst.max(((got - want) / want).abs());
            x += 0.000_37;
        }
        assert!(worst < 2.5e-7, "worst relative error {worst:e}");
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(-100.0), 0.0);
        assert_eq!(exp_f32(0.0), 1.0);
        assert!(exp_f32(f32::NAN).is_nan());
    }

    #[test]
    fn bf16_conversions_match_half() {
        let mut bits = 0u32;
        loop {
            let y = f32::from_bits(bits);
            let (ours, theirs) = (bf16_from_f32(y), bf16::from_f32(y));
            assert!(
                ours.to_bits() == theirs.to_bits() || (ours.is_nan() && theirs.is_nan()),
                "{y:e}: {ours} vs {theirs}"
            );
            let back = ours.up();
            assert!(back.to_bits() == ours.to_f32().to_bits() || (back.is_nan() && y.is_nan()));
            bits = match bits.checked_add(4093) {
                Some(b) => b,
                None => break,
            };
        }
    }
}
