//! Scatter one step's new K/V rows into their cache slots.
//!
//! Each new token is one contiguous row of `kv_heads * head_dim` elements in the input and one
//! contiguous row in the pool (see [`crate::cache`]), so the write is one (converting) row copy per
//! token: O(tokens · kv_heads · head_dim) time, no allocation.

use crate::cache::KvCacheMut;
use crate::element::Element;
use crate::error::KernelError;

/// Writes token `i`'s key and value rows to slot `slots[i]` of `cache`.
///
/// `keys` and `values` are `slots.len() × kv_heads × head_dim`, row-major. The input element type
/// `T` may differ from the cache type `C` (e.g. `f32` activations into a `bf16` cache; narrowing
/// rounds to nearest even). Everything is validated before anything is written, so on `Err` the
/// cache is unchanged. If a slot appears twice, the later token wins.
pub fn write_kv<T: Element, C: Element>(
    cache: &mut KvCacheMut<'_, C>,
    keys: &[T],
    values: &[T],
    slots: &[u32],
) -> Result<(), KernelError> {
    let row = cache.geom.slot_len();
    let expected = slots.len().checked_mul(row).ok_or(KernelError::LengthMismatch {
        what: "keys",
        expected: usize::MAX,
        actual: keys.len(),
    })?;
    for (what, len) in [("keys", keys.len()), ("values", values.len())] {
        if len != expected {
            return Err(KernelError::LengthMismatch { what, expected, actual: len });
        }
    }
    let num_slots = cache.num_slots();
    if let Some((token, &slot)) =
        slots.iter().enumerate().find(|(_, &s)| usize::try_from(s).map_or(true, |s| s >= num_slots))
    {
        return Err(KernelError::SlotOutOfRange { token, slot, num_slots });
    }

    let rows = keys.chunks_exact(row).zip(values.chunks_exact(row));
    for (&slot, (k_row, v_row)) in slots.iter().zip(rows) {
        // In range: checked above, and `num_slots * row` is the pool length.
        let start = slot as usize * row;
        copy_row(&mut cache.keys[start..start + row], k_row);
        copy_row(&mut cache.values[start..start + row], v_row);
    }
    Ok(())
}

#[inline]
fn copy_row<T: Element, C: Element>(dst: &mut [C], src: &[T]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = C::from_f32(s.to_f32());
    }
}
