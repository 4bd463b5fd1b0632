//! The AVX2 + FMA flavour of [`VecOps`] (x86_64, selected at run time).
//!
//! Summation orders are those of the parent module's definitions (`dot_scalar` with `mul_add`,
//! element-wise `axpy`), so the multi-row versions give each row exactly the single-row result.
//! `exp` is a vectorized range-reduction + Taylor polynomial (see [`exp8`]), accurate to a few
//! ulp, deterministic, and used only by this flavour.

use super::{VecOps, LANES};
use crate::element::Element;
use std::arch::x86_64::*;

/// AVX2 + FMA. Only instantiated inside `#[target_feature(enable = "avx2,fma")]` code that is
/// reached after a run-time feature check (`Isa::is_available`); every method relies on that.
pub(crate) struct Avx2Fma;

/// Rows processed together by the multi-row operations (8 + 2 registers for `dot_rows`).
const ROWS: usize = 4;

impl VecOps for Avx2Fma {
    #[inline(always)]
    fn dot<C: Element>(q: &[f32], k: &[C]) -> f32 {
        // SAFETY: AVX2 and FMA are present (type invariant).
        unsafe { dot(q, k) }
    }

    #[inline(always)]
    fn axpy<C: Element>(acc: &mut [f32], p: f32, v: &[C]) {
        // Element-wise, so the compiler vectorizes it fully; `mul_add` becomes `vfmadd`.
        for (a, &x) in acc.iter_mut().zip(v) {
            *a = p.mul_add(x.to_f32(), *a);
        }
    }

    #[inline(always)]
    fn dot_rows<C: Element>(q: &[f32], k: &[C], scale: f32, out: &mut [f32], stride: usize) {
        let hd = k.len();
        if hd == 0 {
            return;
        }
        let rows = q.len() / hd;
        let full = hd / LANES * LANES;
        let mut r = 0;
        while r + ROWS <= rows && (r + ROWS - 1) * stride < out.len() {
            let block = &q[r * hd..(r + ROWS) * hd];
            let mut lo = [zero(); ROWS];
            let mut hi = [zero(); ROWS];
            // SAFETY: AVX2/FMA present (type invariant). Offsets `c + 16 <= full <= hd` stay in
            // `k` and, plus `i * hd` for `i < ROWS`, in `block` (`ROWS * hd` elements).
            unsafe {
                for c in (0..full).step_by(LANES) {
                    let k0 = C::load8_avx2(k.as_ptr().add(c));
                    let k1 = C::load8_avx2(k.as_ptr().add(c + 8));
                    for i in 0..ROWS {
                        let qp = block.as_ptr().add(i * hd + c);
                        lo[i] = _mm256_fmadd_ps(_mm256_loadu_ps(qp), k0, lo[i]);
                        hi[i] = _mm256_fmadd_ps(_mm256_loadu_ps(qp.add(8)), k1, hi[i]);
                    }
                }
            }
            for (i, q_row) in block.chunks_exact(hd).enumerate() {
                // SAFETY: AVX2 present (type invariant).
                let lanes = unsafe { reduce(lo[i], hi[i]) };
                out[(r + i) * stride] = (lanes + tail(&q_row[full..], &k[full..])) * scale;
            }
            r += ROWS;
        }
        for (i, q_row) in q[r * hd..].chunks_exact(hd).enumerate() {
            if let Some(o) = out.get_mut((r + i) * stride) {
                *o = Self::dot(q_row, k) * scale;
            }
        }
    }

    #[inline(always)]
    fn axpy_block<C: Element>(acc: &mut [f32], w: &[f32], w_stride: usize, v: &[C], v_stride: usize, counts: &[usize]) {
        let rows = counts.len();
        let n_max = counts.iter().copied().max().unwrap_or(0);
        if rows == 0 || n_max == 0 || !acc.len().is_multiple_of(rows) {
            return;
        }
        let hd = acc.len() / rows;
        let fits =
            (n_max - 1).checked_mul(v_stride).and_then(|x| x.checked_add(hd)).is_some_and(|need| need <= v.len())
                && counts.iter().enumerate().all(|(r, &n)| n == 0 || r * w_stride + n <= w.len());
        if !fits || hd < 16 {
            for ((r, row), &n) in acc.chunks_exact_mut(hd).enumerate().zip(counts) {
                for j in 0..n {
                    if let (Some(&p), Some(x)) = (w.get(r * w_stride + j), v.get(j * v_stride..j * v_stride + hd)) {
                        Self::axpy(row, p, x);
                    }
                }
            }
            return;
        }
        let cols = hd / 16 * 16;
        let geo = Geo { hd, cols, w_stride, v_stride };
        // Groups of ROWS rows share keys 0..min(count); each row then finishes alone. Per element
        // the terms still arrive in ascending j, so grouping never changes a row's result.
        let mut r = 0;
        while r < rows {
            let group = ROWS.min(rows - r);
            let common = counts[r..r + group].iter().copied().min().unwrap_or(0);
            // SAFETY: AVX2/FMA present (type invariant); `fits` bounds every access (see `Geo`).
            unsafe {
                if group == ROWS {
                    block::<C, ROWS>(acc, w, v, &geo, r, 0..common);
                } else {
                    for i in 0..group {
                        block::<C, 1>(acc, w, v, &geo, r + i, 0..common);
                    }
                }
                for i in 0..group {
                    block::<C, 1>(acc, w, v, &geo, r + i, common..counts[r + i]);
                }
            }
            r += group;
        }
        // Columns past the last full 16 (head_dim not a multiple of 16), scalar, ascending j.
        if cols < hd {
            for ((r, row), &n) in acc.chunks_exact_mut(hd).enumerate().zip(counts) {
                for j in 0..n {
                    let p = w[r * w_stride + j];
                    let x = &v[j * v_stride + cols..j * v_stride + hd];
                    Self::axpy(&mut row[cols..], p, x);
                }
            }
        }
    }

    #[inline(always)]
    fn exp_sum(x: &mut [f32], m: f32) -> f32 {
        // SAFETY: AVX2/FMA present (type invariant); loads/stores stay in 8-element chunks.
        unsafe {
            let mv = _mm256_set1_ps(m);
            let mut chunks = x.chunks_exact_mut(8);
            for c in &mut chunks {
                let e = exp8(_mm256_sub_ps(_mm256_loadu_ps(c.as_ptr()), mv));
                _mm256_storeu_ps(c.as_mut_ptr(), e);
            }
            let rest = chunks.into_remainder();
            if !rest.is_empty() {
                // Same vector code on a padded copy, so an element's value never depends on
                // whether it sits in a full chunk.
                let mut buf = [m; 8];
                buf[..rest.len()].copy_from_slice(rest);
                let e = exp8(_mm256_sub_ps(_mm256_loadu_ps(buf.as_ptr()), mv));
                _mm256_storeu_ps(buf.as_mut_ptr(), e);
                rest.copy_from_slice(&buf[..rest.len()]);
            }
        }
        let mut sum = 0.0f32;
        for &v in x.iter() {
            sum += v;
        }
        sum
    }
}

/// Shape of an `axpy_block` call: rows of `hd` accumulators, of which the first `cols` (a
/// multiple of 16) are done with SIMD; weight rows `w_stride` apart, value rows `v_stride` apart.
struct Geo {
    hd: usize,
    cols: usize,
    w_stride: usize,
    v_stride: usize,
}

/// Adds keys `js` of the value block into accumulator rows `r .. r + R`, 16 columns at a time
/// with the `2R` accumulators held in registers across all keys.
///
/// # Safety
/// AVX2 and FMA present; `acc` holds rows `r .. r + R` of `hd`; for `j` in `js`, `w` holds
/// `(r + R - 1) * w_stride + j` and `v` holds `j * v_stride + cols` elements.
#[inline(always)]
unsafe fn block<C: Element, const R: usize>(
    acc: &mut [f32],
    w: &[f32],
    v: &[C],
    g: &Geo,
    r: usize,
    js: std::ops::Range<usize>,
) {
    if js.is_empty() {
        return;
    }
    let a_base = acc.as_mut_ptr().add(r * g.hd);
    let w_base = w.as_ptr().add(r * g.w_stride);
    for c in (0..g.cols).step_by(16) {
        let mut a = [[zero(); 2]; R];
        for (i, ai) in a.iter_mut().enumerate() {
            let p = a_base.add(i * g.hd + c);
            *ai = [_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))];
        }
        for j in js.clone() {
            let vp = v.as_ptr().add(j * g.v_stride + c);
            let (v0, v1) = (C::load8_avx2(vp), C::load8_avx2(vp.add(8)));
            for (i, ai) in a.iter_mut().enumerate() {
                let p = _mm256_broadcast_ss(&*w_base.add(i * g.w_stride + j));
                ai[0] = _mm256_fmadd_ps(p, v0, ai[0]);
                ai[1] = _mm256_fmadd_ps(p, v1, ai[1]);
            }
        }
        for (i, ai) in a.iter().enumerate() {
            let p = a_base.add(i * g.hd + c);
            _mm256_storeu_ps(p, ai[0]);
            _mm256_storeu_ps(p.add(8), ai[1]);
        }
    }
}

#[inline(always)]
fn zero() -> __m256 {
    // SAFETY: AVX is implied by the AVX2 type invariant of every caller.
    unsafe { _mm256_setzero_ps() }
}

/// Fixed fold of 16 lane sums: `l + (l+8)`, then `l + (l+4)`, then `(0+2) + (1+3)`.
#[inline(always)]
unsafe fn reduce(lo: __m256, hi: __m256) -> f32 {
    let h8 = _mm256_add_ps(lo, hi);
    let h4 = _mm_add_ps(_mm256_castps256_ps128(h8), _mm256_extractf128_ps::<1>(h8));
    let h2 = _mm_add_ps(h4, _mm_movehl_ps(h4, h4));
    _mm_cvtss_f32(_mm_add_ss(h2, _mm_movehdup_ps(h2)))
}

/// Scalar fused tail of a dot product (elements past the last full 16-lane chunk).
#[inline(always)]
fn tail<C: Element>(q: &[f32], k: &[C]) -> f32 {
    let mut t = 0.0f32;
    for (&x, &y) in q.iter().zip(k) {
        t = x.mul_add(y.to_f32(), t);
    }
    t
}

/// `dot` for one row: 2 registers × 8 lanes, bit-identical to `dot_scalar` with `mul_add`.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[inline(always)]
unsafe fn dot<C: Element>(q: &[f32], k: &[C]) -> f32 {
    let qc = q.chunks_exact(LANES);
    let kc = k.chunks_exact(LANES);
    let (q_tail, k_tail) = (qc.remainder(), kc.remainder());
    let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    for (qa, ka) in qc.zip(kc) {
        // In bounds: each chunk has exactly 16 elements.
        let (q0, q1) = (_mm256_loadu_ps(qa.as_ptr()), _mm256_loadu_ps(qa.as_ptr().add(8)));
        let (k0, k1) = (C::load8_avx2(ka.as_ptr()), C::load8_avx2(ka.as_ptr().add(8)));
        lo = _mm256_fmadd_ps(q0, k0, lo);
        hi = _mm256_fmadd_ps(q1, k1, hi);
    }
    reduce(lo, hi) + tail(q_tail, k_tail)
}

/// `e^x` for 8 lanes. Cody–Waite range reduction `x = n·ln2 + r`, `|r| <= ln2/2` (ln2 split
/// into a 9-bit head, so `n·LN2_HI` is exact, and a correction), then the degree-7 Taylor
/// polynomial of `e^r` (truncation error `< r^8/8! ≈ 5e-9`), scaled by `2^n` through the exponent
/// bits. Inputs are clamped to `[-87.3, 88]`: below, the true result is under `2^-126` and we
/// return about that (negligible in a softmax whose largest term is 1).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[inline(always)]
pub(super) unsafe fn exp8(x: __m256) -> __m256 {
    const LN2_HI: f32 = 0.693_359_4; // 355 / 512
    const LN2_LO: f32 = -2.121_944_4e-4; // ln 2 - LN2_HI
    let x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3)), _mm256_set1_ps(88.0));
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        x,
        _mm256_set1_ps(std::f32::consts::LOG2_E),
    ));
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
    // 1/2! + r/3! + … + r^5/7!, then e^r ≈ 1 + r + r²·p.
    let mut p = _mm256_set1_ps(1.0 / 5040.0);
    for c in [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5] {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
    }
    let y = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0)));
    let bits = _mm256_slli_epi32::<23>(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)));
    _mm256_mul_ps(y, _mm256_castsi256_ps(bits))
}

/// Test entry points compiled with the features enabled.
#[cfg(test)]
pub(super) mod checked {
    use super::*;

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot<C: Element>(q: &[f32], k: &[C]) -> f32 {
        Avx2Fma::dot(q, k)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_rows<C: Element>(q: &[f32], k: &[C], out: &mut [f32], stride: usize) {
        Avx2Fma::dot_rows(q, k, 0.5, out, stride)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn axpy_block<C: Element>(
        acc: &mut [f32],
        w: &[f32],
        w_stride: usize,
        v: &[C],
        v_stride: usize,
        counts: &[usize],
    ) {
        Avx2Fma::axpy_block(acc, w, w_stride, v, v_stride, counts)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn exp_sum(x: &mut [f32], m: f32) -> f32 {
        Avx2Fma::exp_sum(x, m)
    }
}
