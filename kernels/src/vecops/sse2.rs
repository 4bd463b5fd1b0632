//! `dot` with SSE2 (part of the x86_64 baseline, so always available).

use super::LANES;
use crate::element::Element;
use std::arch::x86_64::*;

/// `dot` with SSE2 (part of the x86_64 baseline, so always available): 4 registers × 4 lanes,
/// separate multiply and add, bit-identical to `dot_scalar` with `a * b + c`.
#[inline(always)]
pub(crate) fn dot_sse2<C: Element>(q: &[f32], k: &[C]) -> f32 {
    let qc = q.chunks_exact(LANES);
    let kc = k.chunks_exact(LANES);
    let (q_tail, k_tail) = (qc.remainder(), kc.remainder());
    // SAFETY: SSE2 is enabled for every x86_64 target; every load reads inside a 16-element
    // chunk from `chunks_exact` (offsets 0, 4, 8, 12).
    let h1 = unsafe {
        let mut acc = [_mm_setzero_ps(); 4];
        for (qa, ka) in qc.zip(kc) {
            for (i, a) in acc.iter_mut().enumerate() {
                let x = _mm_loadu_ps(qa.as_ptr().add(4 * i));
                let y = C::load4_sse2(ka.as_ptr().add(4 * i));
                *a = _mm_add_ps(*a, _mm_mul_ps(x, y));
            }
        }
        // Lanes l + (l + 8) for l in 0..8, then l + (l + 4), then (0 + 2) + (1 + 3).
        let h8 = [_mm_add_ps(acc[0], acc[2]), _mm_add_ps(acc[1], acc[3])];
        let h4 = _mm_add_ps(h8[0], h8[1]);
        let h2 = _mm_add_ps(h4, _mm_movehl_ps(h4, h4));
        let h1 = _mm_add_ss(h2, _mm_shuffle_ps::<0b01>(h2, h2));
        _mm_cvtss_f32(h1)
    };
    let mut tail = 0.0f32;
    for (&x, &y) in q_tail.iter().zip(k_tail) {
        tail += x * y.to_f32();
    }
    h1 + tail
}
