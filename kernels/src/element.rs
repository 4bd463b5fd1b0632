//! Storage element types (`f32`, `bf16`). All arithmetic happens in `f32`.

use half::bf16;

mod sealed {
    /// Crate-private operations of the element types (not nameable outside the crate).
    pub trait Sealed {
        /// Loads 8 consecutive elements widened to `f32`.
        ///
        /// # Safety
        /// `src` must be valid for reading 8 elements, and the CPU must support AVX2; only call
        /// from code compiled with `#[target_feature(enable = "avx2")]`.
        #[cfg(target_arch = "x86_64")]
        unsafe fn load8_avx2(src: *const Self) -> std::arch::x86_64::__m256;

        /// Loads 4 consecutive elements widened to `f32` (SSE2 is baseline on x86_64).
        ///
        /// # Safety
        /// `src` must be valid for reading 4 elements.
        #[cfg(target_arch = "x86_64")]
        unsafe fn load4_sse2(src: *const Self) -> std::arch::x86_64::__m128;
    }

    #[cfg(target_arch = "x86_64")]
    use std::arch::x86_64::*;

    impl Sealed for f32 {
        #[cfg(target_arch = "x86_64")]
        #[inline(always)]
        unsafe fn load8_avx2(src: *const Self) -> __m256 {
            _mm256_loadu_ps(src)
        }

        #[cfg(target_arch = "x86_64")]
        #[inline(always)]
        unsafe fn load4_sse2(src: *const Self) -> __m128 {
            _mm_loadu_ps(src)
        }
    }

    impl Sealed for half::bf16 {
        /// Zero-extends the 16-bit patterns to 32 bits and shifts them into the high half.
        #[cfg(target_arch = "x86_64")]
        #[inline(always)]
        unsafe fn load8_avx2(src: *const Self) -> __m256 {
            let raw = _mm_loadu_si128(src.cast::<__m128i>());
            _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(raw)))
        }

        /// Interleaves zeros below the 16-bit patterns: each becomes the high half of an f32.
        #[cfg(target_arch = "x86_64")]
        #[inline(always)]
        unsafe fn load4_sse2(src: *const Self) -> __m128 {
            let raw = _mm_loadl_epi64(src.cast::<__m128i>());
            _mm_castsi128_ps(_mm_unpacklo_epi16(_mm_setzero_si128(), raw))
        }
    }
}

/// A storage element type: converts losslessly to `f32` and (rounding) from it.
///
/// Sealed: the kernels rely on `to_f32` being a cheap, branch-free conversion that the compiler
/// vectorizes inside the hot loops.
pub trait Element: Copy + Send + Sync + 'static + sealed::Sealed {
    /// Widens to `f32` (exact for both implementors).
    fn to_f32(self) -> f32;
    /// Narrows from `f32` (round to nearest even for `bf16`).
    fn from_f32(x: f32) -> Self;
}

impl Element for f32 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }

    #[inline(always)]
    fn from_f32(x: f32) -> Self {
        x
    }
}

impl Element for bf16 {
    /// bf16 is the top half of an f32, so widening is a 16-bit shift (NaN payloads are kept as
    /// they are rather than quieted, which keeps this branch-free).
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f32::from_bits(u32::from(self.to_bits()) << 16)
    }

    #[inline(always)]
    fn from_f32(x: f32) -> Self {
        bf16::from_f32(x)
    }
}
