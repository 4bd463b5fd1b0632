//! `write_kv` placement, conversion and input validation; write-then-attend round trips.

mod common;

use common::{bits, Rng};
use folio_kernels::naive::reference_attention;
use folio_kernels::{bf16, paged_attention, write_kv, CacheGeometry, KernelError, KvCache, KvCacheMut, SeqAttn};

fn geom() -> CacheGeometry {
    CacheGeometry::new(4, 2, 3).expect("geometry") // slot row = 6 elements, block = 24
}

#[test]
fn rows_land_in_their_slots_and_nothing_else_changes() {
    let g = geom();
    let len = g.pool_len(3).expect("len");
    let (mut kp, mut vp) = (vec![-1.0f32; len], vec![-2.0f32; len]);
    let mut cache = KvCacheMut::new(&mut kp, &mut vp, g).expect("view");
    assert_eq!(cache.num_slots(), 12);
    let slots = [9u32, 0, 4, 11];
    let keys: Vec<f32> = (0..slots.len() * 6).map(|i| i as f32).collect();
    let values: Vec<f32> = keys.iter().map(|x| 100.0 + x).collect();
    write_kv(&mut cache, &keys, &values, &slots).expect("write");
    for slot in 0..12 {
        let row_k = &kp[slot * 6..slot * 6 + 6];
        let row_v = &vp[slot * 6..slot * 6 + 6];
        match slots.iter().position(|&s| s as usize == slot) {
            Some(tok) => {
                assert_eq!(row_k, &keys[tok * 6..tok * 6 + 6], "key slot {slot}");
                assert_eq!(row_v, &values[tok * 6..tok * 6 + 6], "value slot {slot}");
            }
            None => {
                assert!(row_k.iter().all(|&x| x == -1.0), "key slot {slot} touched");
                assert!(row_v.iter().all(|&x| x == -2.0), "value slot {slot} touched");
            }
        }
    }
}

#[test]
fn block_and_offset_addressing() {
    // Slot 6 = block 1, offset 2: kv head 1, dim 0 is element ((1*4 + 2)*2 + 1)*3 = 39.
    let g = geom();
    let len = g.pool_len(2).expect("len");
    let (mut kp, mut vp) = (vec![0.0f32; len], vec![0.0f32; len]);
    let mut cache = KvCacheMut::new(&mut kp, &mut vp, g).expect("view");
    let k = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    write_kv(&mut cache, &k, &k, &[6]).expect("write");
    assert_eq!(&kp[36..42], &k);
    assert_eq!(kp[39], 4.0);
    assert_eq!(kp.iter().filter(|&&x| x != 0.0).count(), 6);
}

#[test]
fn f32_into_bf16_rounds_to_nearest_even() {
    let g = CacheGeometry::new(1, 1, 4).expect("geometry");
    let (mut kp, mut vp) = (vec![bf16::ZERO; 4], vec![bf16::ZERO; 4]);
    let mut cache = KvCacheMut::new(&mut kp, &mut vp, g).expect("view");
    let x = [1.0f32, 1.0 + 1.0 / 256.0, 1.0 + 3.0 / 256.0, -0.1];
    write_kv(&mut cache, &x, &x, &[0]).expect("write");
    let want: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
    assert_eq!(kp, want);
    assert_eq!(kp[1], bf16::from_f32(1.0)); // tie → even
    assert_eq!(kp[2], bf16::from_f32(1.0 + 4.0 / 256.0)); // tie → even (up)
}

#[test]
fn bad_inputs_are_errors_and_leave_the_cache_alone() {
    let g = geom();
    let len = g.pool_len(2).expect("len");
    let (mut kp, mut vp) = (vec![0.0f32; len], vec![0.0f32; len]);
    let mut cache = KvCacheMut::new(&mut kp, &mut vp, g).expect("view");
    let row = [1.0f32; 12];
    let err = write_kv(&mut cache, &row, &row, &[0, 8]).expect_err("slot 8 of 8");
    assert!(matches!(err, KernelError::SlotOutOfRange { token: 1, slot: 8, num_slots: 8 }));
    let err = write_kv(&mut cache, &row, &row, &[0, u32::MAX]).expect_err("huge slot");
    assert!(matches!(err, KernelError::SlotOutOfRange { .. }));
    let err = write_kv(&mut cache, &row[..11], &row, &[0, 1]).expect_err("short keys");
    assert!(matches!(err, KernelError::LengthMismatch { what: "keys", expected: 12, actual: 11 }));
    let err = write_kv(&mut cache, &row, &row[..6], &[0, 1]).expect_err("short values");
    assert!(matches!(err, KernelError::LengthMismatch { what: "values", .. }));
    let err = write_kv(&mut cache, &row, &row, &[0]).expect_err("too many rows");
    assert!(matches!(err, KernelError::LengthMismatch { .. }));
    assert!(kp.iter().chain(&vp).all(|&x| x == 0.0), "a failed write changed the cache");
    // Nothing to write is fine.
    let mut cache = KvCacheMut::new(&mut kp, &mut vp, g).expect("view");
    write_kv::<f32, f32>(&mut cache, &[], &[], &[]).expect("empty write");
}

#[test]
fn bad_pools_and_geometry_are_errors() {
    assert!(CacheGeometry::new(0, 1, 1).is_err());
    assert!(CacheGeometry::new(16, 0, 1).is_err());
    assert!(CacheGeometry::new(16, 1, 0).is_err());
    assert!(CacheGeometry::new(usize::MAX, 2, 2).is_err());
    let g = geom();
    let (mut a, mut b) = (vec![0.0f32; 24], vec![0.0f32; 48]);
    assert!(matches!(KvCacheMut::new(&mut a, &mut b, g), Err(KernelError::LengthMismatch { .. })));
    let (a, b) = (vec![0.0f32; 30], vec![0.0f32; 30]);
    assert!(matches!(KvCache::new(&a, &b, g), Err(KernelError::NotAMultiple { .. })));
    let empty: [f32; 0] = [];
    assert_eq!(KvCache::new(&empty, &empty, g).expect("empty pool").num_blocks(), 0);
}

/// Writes a sequence's K/V step by step (prefill chunk, then decodes) into a paged pool with the
/// given block table, attending after each step; returns all outputs.
fn stepwise(table: &[u32], k: &[f32], v: &[f32], q: &[f32], steps: &[usize]) -> Vec<f32> {
    let (g, heads) = (CacheGeometry::new(4, 2, 8).expect("geometry"), 4);
    let len = g.pool_len(8).expect("len");
    let (mut kp, mut vp) = (vec![f32::NAN; len], vec![f32::NAN; len]);
    let (slot_row, q_row) = (g.slot_len(), heads * g.head_dim());
    let mut outputs = Vec::new();
    let mut done = 0;
    for &n in steps {
        let slots: Vec<u32> = (done..done + n).map(|t| table[t / 4] * 4 + (t % 4) as u32).collect();
        let mut cache = KvCacheMut::new(&mut kp, &mut vp, g).expect("view");
        let (kr, vr) = (&k[done * slot_row..(done + n) * slot_row], &v[done * slot_row..(done + n) * slot_row]);
        write_kv(&mut cache, kr, vr, &slots).expect("write");
        let seq = SeqAttn { query_start: 0, query_len: n, context_len: done + n, block_table: table };
        let qs = &q[done * q_row..(done + n) * q_row];
        let mut out = vec![0.0f32; qs.len()];
        paged_attention(&mut out, qs, cache.as_view(), &[seq], heads, 0.35).expect("attend");
        let want = reference_attention(qs, cache.as_view(), &[seq], heads, 0.35).expect("ref");
        let (err, ok) = common::compare(&out, &want, 1e-5, 0.0);
        assert!(ok, "step error {err:e}");
        outputs.extend(out);
        done += n;
    }
    outputs
}

#[test]
fn write_then_attend_is_independent_of_physical_blocks() {
    // Unwritten slots hold NaN, so reading anything not written would poison the output.
    let mut rng = Rng::new(42);
    let tokens = 21;
    let k: Vec<f32> = rng.vec(tokens * 16, 1.0);
    let v: Vec<f32> = rng.vec(tokens * 16, 1.0);
    let q: Vec<f32> = rng.vec(tokens * 32, 1.0);
    let steps = [9, 1, 1, 3, 1, 6];
    let contiguous = stepwise(&[0, 1, 2, 3, 4, 5], &k, &v, &q, &steps);
    let scattered = stepwise(&[7, 2, 5, 0, 3, 6], &k, &v, &q, &steps);
    assert!(contiguous.iter().all(|x| x.is_finite()));
    assert_eq!(bits(&contiguous), bits(&scattered));
}
