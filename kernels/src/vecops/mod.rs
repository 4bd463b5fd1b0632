//! Fixed-order `f32` vector primitives for the attention inner loops.
//!
//! * `dot` keeps 16 independent partial sums (lane `l` accumulates elements `l, l+16, …`), then
//!   folds them in a fixed tree order (`l + (l+8)`, then `l + (l+4)`, then `(0+2) + (1+3)`), then
//!   adds a scalar tail for `len % 16`. The result depends only on the two input vectors — never
//!   on threads or batch composition — which is what batch invariance needs.
//! * `axpy` (and `axpy_block`, its many-keys × many-rows form) is element-wise: each accumulator
//!   element receives its terms in ascending key order, so any vector width or row grouping gives
//!   identical results. `axpy_block` keeps 16 columns × 4 rows of accumulators in registers
//!   across a block's keys, so accumulators are loaded and stored once per block, not per key.
//! * `exp_sum` exponentiates a block's scores and sums them in index order.
//!
//! Two flavours ([`VecOps`]): [`Portable`] (separate multiply and add, `f32::exp`; SSE2
//! intrinsics for `dot` on x86_64, plain Rust elsewhere — bit-identical) and, on x86_64,
//! `Avx2Fma` (AVX2 intrinsics, fused multiply-add, several rows per K/V load, a vectorized
//! `exp`). `dot` uses intrinsics because LLVM's SLP vectorizer, given the lane reduction, splits
//! the 16 lanes into 2-wide pieces with shuffles in the loop (~2× slower).

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod sse2;

use crate::element::Element;

#[cfg(target_arch = "x86_64")]
pub(crate) use avx2::Avx2Fma;

/// Lanes of the partial-sum accumulator in `dot` (4 SSE or 2 AVX registers).
pub(crate) const LANES: usize = 16;

/// The vector operations the attention kernel is generic over.
///
/// The `*_rows` methods apply the single-row operation to several rows that share one K/V row
/// (SIMD versions keep several rows in registers to load the K/V row once); each row's result is
/// bit-identical to the single-row operation, so how rows are grouped never changes results.
pub(crate) trait VecOps {
    /// `Σ q[i] * k[i]` over `min(q.len(), k.len())` elements, in the fixed order above.
    fn dot<C: Element>(q: &[f32], k: &[C]) -> f32;

    /// `acc[i] += p * v[i]` over `min(acc.len(), v.len())` elements.
    fn axpy<C: Element>(acc: &mut [f32], p: f32, v: &[C]);

    /// `out[r * stride] = dot(q_r, k) * scale` for each row `q_r` of `q` (`q.len() / k.len()`
    /// rows of `k.len()` elements).
    #[inline(always)]
    fn dot_rows<C: Element>(q: &[f32], k: &[C], scale: f32, out: &mut [f32], stride: usize) {
        let hd = k.len().max(1);
        for (r, q) in q.chunks_exact(hd).enumerate() {
            if let Some(o) = out.get_mut(r * stride) {
                *o = Self::dot(q, k) * scale;
            }
        }
    }

    /// Weighted sum of a block of value rows into several accumulator rows:
    /// `acc_r += Σ_{j < counts[r]} w[r * w_stride + j] · v[j * v_stride ..][..hd]` for each
    /// `hd`-element row `acc_r` of `acc` (one row per entry of `counts`), adding the terms in
    /// ascending `j` element by element — the same operations as `counts[r]` calls of `axpy`.
    #[inline(always)]
    fn axpy_block<C: Element>(acc: &mut [f32], w: &[f32], w_stride: usize, v: &[C], v_stride: usize, counts: &[usize]) {
        let hd = acc.len() / counts.len().max(1);
        for ((r, acc), &n) in acc.chunks_exact_mut(hd.max(1)).enumerate().zip(counts) {
            for j in 0..n {
                if let (Some(&p), Some(row)) = (w.get(r * w_stride + j), v.get(j * v_stride..j * v_stride + hd)) {
                    Self::axpy(acc, p, row);
                }
            }
        }
    }

    /// `x[i] = exp(x[i] - m)` in place; returns `Σ x[i]` summed in index order.
    #[inline(always)]
    fn exp_sum(x: &mut [f32], m: f32) -> f32 {
        let mut sum = 0.0f32;
        for v in x.iter_mut() {
            *v = (*v - m).exp();
            sum += *v;
        }
        sum
    }
}

/// Baseline target features; `a * b + c` with two roundings.
pub(crate) struct Portable;

impl VecOps for Portable {
    #[inline(always)]
    fn dot<C: Element>(q: &[f32], k: &[C]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        {
            sse2::dot_sse2(q, k)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            dot_scalar(q, k, |a, b, c| a * b + c)
        }
    }

    #[inline(always)]
    fn axpy<C: Element>(acc: &mut [f32], p: f32, v: &[C]) {
        for (a, &x) in acc.iter_mut().zip(v) {
            *a += p * x.to_f32();
        }
    }
}

/// Scalar definition of `dot` with the given multiply-add; the SIMD versions must match it
/// bit for bit (checked by the tests below).
#[inline(always)]
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
pub(crate) fn dot_scalar<C: Element>(q: &[f32], k: &[C], madd: impl Fn(f32, f32, f32) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let qc = q.chunks_exact(LANES);
    let kc = k.chunks_exact(LANES);
    let (q_tail, k_tail) = (qc.remainder(), kc.remainder());
    for (qa, ka) in qc.zip(kc) {
        for ((a, &x), &y) in acc.iter_mut().zip(qa).zip(ka) {
            *a = madd(x, y.to_f32(), *a);
        }
    }
    let mut h8 = [0.0f32; 8];
    for l in 0..8 {
        h8[l] = acc[l] + acc[l + 8];
    }
    let mut h4 = [0.0f32; 4];
    for l in 0..4 {
        h4[l] = h8[l] + h8[l + 4];
    }
    let mut tail = 0.0f32;
    for (&x, &y) in q_tail.iter().zip(k_tail) {
        tail = madd(x, y.to_f32(), tail);
    }
    ((h4[0] + h4[2]) + (h4[1] + h4[3])) + tail
}

/// Hints the CPU to fetch `rows` rows of `len` elements, `stride` elements apart, starting at
/// `pool[start]`, into cache. Rows outside `pool` are skipped; never faults; no-op off x86_64.
///
/// The K/V rows of one kv head are `kv_heads * head_dim` elements apart and every block sits at
/// an unrelated address, so hardware prefetchers (which stop at 4 KiB pages) miss most of them;
/// fetching the next block while the current one is computed hides that latency.
#[inline(always)]
pub(crate) fn prefetch_rows<C>(pool: &[C], start: usize, stride: usize, rows: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let step = (64 / std::mem::size_of::<C>().max(1)).max(1);
        for r in 0..rows {
            let begin = start + r * stride;
            let Some(row) = pool.get(begin..begin + len) else {
                return;
            };
            for i in (0..len).step_by(step) {
                // SAFETY: prefetch is only a hint and cannot fault; the address is in `row`.
                unsafe {
                    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                    _mm_prefetch::<_MM_HINT_T0>(row.as_ptr().add(i).cast::<i8>());
                }
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (pool, start, stride, rows, len);
}

/// `acc[i] *= s`.
#[inline(always)]
pub(crate) fn scale(acc: &mut [f32], s: f32) {
    for a in acc.iter_mut() {
        *a *= s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::bf16;

    fn data(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let x = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed.wrapping_mul(97));
                (x >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    fn to_bf16(v: &[f32]) -> Vec<bf16> {
        v.iter().map(|&x| bf16::from_f32(x)).collect()
    }

    const LENS: [usize; 12] = [0, 1, 7, 8, 15, 16, 17, 31, 64, 72, 128, 130];

    #[test]
    fn portable_dot_matches_scalar_definition_bitwise() {
        let plain = |a: f32, b: f32, c: f32| a * b + c;
        for n in LENS {
            let (q, k) = (data(n, 1), data(n, 2));
            let kb = to_bf16(&k);
            assert_eq!(Portable::dot(&q, &k).to_bits(), dot_scalar(&q, &k, plain).to_bits(), "n {n}");
            assert_eq!(Portable::dot(&q, &kb).to_bits(), dot_scalar(&q, &kb, plain).to_bits());
            let exact: f64 = q.iter().zip(&k).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum();
            assert!((f64::from(Portable::dot(&q, &k)) - exact).abs() < 1e-5);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_dots_match_their_definition_bitwise() {
        use avx2::checked;
        if !crate::Isa::Avx2Fma.is_available() {
            return;
        }
        let fused = |a: f32, b: f32, c: f32| a.mul_add(b, c);
        for n in LENS.into_iter().filter(|&n| n > 0) {
            let k = data(n, 2);
            let kb = to_bf16(&k);
            for rows in [1, 3, 4, 5, 8, 9] {
                let q = data(rows * n, 4);
                let stride = 3;
                // SAFETY: AVX2 and FMA were just detected.
                unsafe {
                    let mut out = vec![0.0f32; rows * stride];
                    checked::dot_rows(&q, &k, &mut out, stride);
                    let mut out_b = vec![0.0f32; rows * stride];
                    checked::dot_rows(&q, &kb, &mut out_b, stride);
                    for (r, q_row) in q.chunks_exact(n).enumerate() {
                        let d = dot_scalar(q_row, &k, fused);
                        assert_eq!(checked::dot(q_row, &k).to_bits(), d.to_bits(), "n {n}");
                        assert_eq!(out[r * stride].to_bits(), (d * 0.5).to_bits(), "n {n} rows {rows}");
                        let db = dot_scalar(q_row, &kb, fused) * 0.5;
                        assert_eq!(out_b[r * stride].to_bits(), db.to_bits());
                    }
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_axpy_block_matches_definition_bitwise() {
        use avx2::checked;
        if !crate::Isa::Avx2Fma.is_available() {
            return;
        }
        for hd in [8, 16, 17, 64, 72, 128] {
            let (v_stride, w_stride, keys) = (hd + 5, 16, 16);
            let v = data((keys - 1) * v_stride + hd, 7);
            let vb = to_bf16(&v);
            for counts in [vec![16; 8], vec![3, 3, 4, 9, 16], vec![0, 1, 2], vec![5], vec![0, 0, 16, 16, 16, 16, 2]] {
                let rows = counts.len();
                let w = data(rows * w_stride, 8);
                let acc0 = data(rows * hd, 9);
                // Definition: per row, per key in order, element-wise fused multiply-add.
                let mut want = acc0.clone();
                let mut want_b = acc0.clone();
                for (r, &n) in counts.iter().enumerate() {
                    for j in 0..n {
                        let p = w[r * w_stride + j];
                        for d in 0..hd {
                            let a = &mut want[r * hd + d];
                            *a = p.mul_add(v[j * v_stride + d], *a);
                            let b = &mut want_b[r * hd + d];
                            *b = p.mul_add(vb[j * v_stride + d].to_f32(), *b);
                        }
                    }
                }
                let (mut got, mut got_b) = (acc0.clone(), acc0.clone());
                // SAFETY: AVX2 and FMA were just detected.
                unsafe {
                    checked::axpy_block(&mut got, &w, w_stride, &v, v_stride, &counts);
                    checked::axpy_block(&mut got_b, &w, w_stride, &vb, v_stride, &counts);
                }
                assert_eq!(got, want, "hd {hd} counts {counts:?}");
                assert_eq!(got_b, want_b, "bf16 hd {hd} counts {counts:?}");
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_exp_is_accurate_and_position_independent() {
        if !crate::Isa::Avx2Fma.is_available() {
            return;
        }
        let xs: Vec<f32> = (0..20_000).map(|i| -90.0 + i as f32 * 0.0045).collect();
        let mut worst = 0.0f64;
        for chunk in xs.chunks(13) {
            let mut e = chunk.to_vec();
            // SAFETY: AVX2 and FMA were just detected.
            let sum = unsafe { avx2::checked::exp_sum(&mut e, 0.0) };
            assert_eq!(sum, e.iter().fold(0.0f32, |s, &v| s + v));
            for (&x, &y) in chunk.iter().zip(&e) {
                let want = f64::from(x).exp();
                if x > -87.0 {
                    worst = worst.max((f64::from(y) - want).abs() / want);
                } else {
                    assert!(y < 2e-38, "exp({x}) = {y}");
                }
            }
            // The same element alone (padded tail path) gives the same bits.
            let mut one = [chunk[0]];
            // SAFETY: as above.
            unsafe { avx2::checked::exp_sum(&mut one, 0.0) };
            assert_eq!(one[0].to_bits(), e[0].to_bits());
        }
        println!("avx2 exp max relative error on [-87, 0]: {worst:e}");
        assert!(worst < 4e-7, "max relative error {worst:e}");
        // Subtracting the max first: exp(x - m).
        let mut e = [3.0f32, 1.0];
        // SAFETY: as above.
        unsafe { avx2::checked::exp_sum(&mut e, 3.0) };
        assert_eq!(e[0], 1.0);
        assert!((f64::from(e[1]) - (-2.0f64).exp()).abs() < 1e-7);
    }
}
