//! `paged_attention` against the definition-level reference, and batch invariance.
//!
//! Error bounds (reference computed in f64 from the same stored values):
//! * f32 storage and f32 outputs: max |error| ≤ 1e-5.
//! * bf16 cache with f32 queries/outputs: also ≤ 1e-5 (bf16 → f32 widening is exact, so only the
//!   f32 accumulation differs from the reference).
//! * bf16 outputs: ≤ 1e-5 + 2⁻⁸·|reference| (one bf16 rounding of the output is 2⁻⁹ relative).

mod common;

use common::{bits, chunk, compare, decode, prefill, Problem, Spec};
use folio_kernels::{bf16, paged_attention, paged_attention_with, Element, Isa};

const F32_TOL: f32 = 1e-5;
const BF16_REL: f32 = 1.0 / 256.0;

/// Runs `p` with `isa` and returns the outputs (rows start as NaN to catch unwritten ones).
fn run<Q: Element, C: Element>(p: &Problem<Q, C>, isa: Isa) -> Vec<Q> {
    let mut out = vec![Q::from_f32(f32::NAN); p.queries.len()];
    paged_attention_with(isa, &mut out, &p.queries, p.cache(), &p.seqs(), p.heads, p.scale).expect("paged_attention");
    out
}

fn isas() -> Vec<Isa> {
    let mut v = vec![Isa::Portable];
    if Isa::Avx2Fma.is_available() {
        v.push(Isa::Avx2Fma);
    }
    v
}

/// Checks `p` against the reference on every available ISA; returns the max error seen.
fn check<Q: Element, C: Element>(p: &Problem<Q, C>, abs: f32, rel: f32, label: &str) -> f32 {
    let want = p.reference();
    let mut worst = 0.0f32;
    for isa in isas() {
        let got = run(p, isa);
        let (err, ok) = compare(&got, &want, abs, rel);
        assert!(ok, "{label} {isa:?}: max error {err:e} exceeds bound ({:?})", p.specs);
        worst = worst.max(err);
    }
    worst
}

const BOUNDARY_LENS: [usize; 6] = [1, 15, 16, 17, 33, 64];

#[test]
fn decode_across_block_boundaries_gqa_and_head_dims() {
    let mut worst = 0.0f32;
    for (seed, &(group, head_dim)) in [(1, 8), (2, 64), (8, 128), (1, 128), (2, 8), (8, 64)].iter().enumerate() {
        let specs: Vec<Spec> = BOUNDARY_LENS.iter().map(|&n| decode(n)).collect();
        let p = Problem::<f32, f32>::new(seed as u64, 16, 2, group, head_dim, &specs, 1.0);
        worst = worst.max(check(&p, F32_TOL, 0.0, "decode"));
    }
    println!("decode f32 max abs error: {worst:e}");
}

#[test]
fn prefill_across_block_boundaries_gqa_and_head_dims() {
    let mut worst = 0.0f32;
    for (seed, &(group, head_dim)) in [(1, 64), (2, 128), (8, 8), (8, 128)].iter().enumerate() {
        let specs: Vec<Spec> = BOUNDARY_LENS.iter().map(|&n| prefill(n)).collect();
        let p = Problem::<f32, f32>::new(100 + seed as u64, 16, 2, group, head_dim, &specs, 1.0);
        worst = worst.max(check(&p, F32_TOL, 0.0, "prefill"));
    }
    println!("prefill f32 max abs error: {worst:e}");
}

#[test]
fn chunked_prefill_with_cached_context() {
    // Chunks starting and ending on, inside and across block boundaries.
    let specs =
        [chunk(32, 16), chunk(33, 17), chunk(40, 7), chunk(17, 2), chunk(64, 31), chunk(100, 50), chunk(16, 15)];
    let mut worst = 0.0f32;
    for (seed, &(group, head_dim)) in [(1, 128), (2, 64), (8, 8)].iter().enumerate() {
        let p = Problem::<f32, f32>::new(200 + seed as u64, 16, 2, group, head_dim, &specs, 1.0);
        worst = worst.max(check(&p, F32_TOL, 0.0, "chunked prefill"));
    }
    println!("chunked prefill f32 max abs error: {worst:e}");
}

#[test]
fn mixed_ragged_batch_in_one_call() {
    let specs = [decode(1), prefill(37), chunk(81, 9), decode(16), decode(200), chunk(48, 32), prefill(3), decode(17)];
    for (seed, &(kv_heads, group, head_dim)) in [(2, 8, 128), (1, 2, 64), (4, 1, 8)].iter().enumerate() {
        let p = Problem::<f32, f32>::new(300 + seed as u64, 16, kv_heads, group, head_dim, &specs, 1.0);
        let err = check(&p, F32_TOL, 0.0, "mixed batch");
        println!("mixed batch kv_heads {kv_heads} group {group} head_dim {head_dim}: max abs error {err:e}");
    }
}

#[test]
fn other_block_sizes() {
    let specs = [prefill(10), chunk(23, 5), decode(7), decode(1), chunk(9, 9)];
    for (seed, &bs) in [1usize, 3, 5, 32].iter().enumerate() {
        let p = Problem::<f32, f32>::new(400 + seed as u64, bs, 2, 2, 64, &specs, 1.0);
        check(&p, F32_TOL, 0.0, "block size");
    }
}

#[test]
fn peaky_softmax_is_stable() {
    // Query amplitude 60 with scale 1/sqrt(64) gives scores up to ~±60·√64·…: exp would overflow
    // without max subtraction, and the running max changes across blocks (rescaling path).
    let specs = [prefill(50), decode(300), chunk(90, 20)];
    let p = Problem::<f32, f32>::new(500, 16, 2, 2, 64, &specs, 60.0);
    let err = check(&p, F32_TOL, 0.0, "peaky");
    println!("peaky softmax f32 max abs error: {err:e}");
}

#[test]
fn bf16_cache_f32_activations() {
    let specs = [decode(1), decode(33), prefill(40), chunk(70, 21), decode(64)];
    let mut worst = 0.0f32;
    for (seed, &(group, head_dim)) in [(8, 128), (1, 64), (2, 8)].iter().enumerate() {
        let p = Problem::<f32, bf16>::new(600 + seed as u64, 16, 2, group, head_dim, &specs, 1.0);
        worst = worst.max(check(&p, F32_TOL, 0.0, "bf16 cache"));
    }
    println!("bf16 cache, f32 out max abs error: {worst:e}");
}

#[test]
fn bf16_everywhere() {
    let specs = [decode(1), decode(33), prefill(40), chunk(70, 21), decode(64)];
    let mut worst = 0.0f32;
    for (seed, &(group, head_dim)) in [(8, 128), (1, 64), (2, 8)].iter().enumerate() {
        let p = Problem::<bf16, bf16>::new(700 + seed as u64, 16, 2, group, head_dim, &specs, 1.0);
        worst = worst.max(check(&p, F32_TOL, BF16_REL, "bf16"));
    }
    println!("bf16 queries/cache/out max abs error: {worst:e}");
}

#[test]
fn unowned_rows_are_untouched() {
    // Leave a gap of 2 tokens between the sequences' query rows.
    let mut p = Problem::<f32, f32>::new(800, 16, 2, 2, 8, &[decode(5), decode(20)], 1.0);
    let row = p.row_len();
    p.queries.splice(row..row, vec![0.5f32; 2 * row]);
    p.tokens += 2;
    p.starts[1] += 2;
    let mut out = vec![-7.0f32; p.queries.len()];
    paged_attention(&mut out, &p.queries, p.cache(), &p.seqs(), p.heads, p.scale).expect("run");
    assert!(out[row..3 * row].iter().all(|&x| x == -7.0));
    assert!(out[..row].iter().chain(&out[3 * row..]).all(|&x| x != -7.0));
}

#[test]
fn batch_invariance_bitwise() {
    // Each sequence computed alone must equal, bit for bit, the same sequence inside a large mixed
    // batch (other query rows, other neighbours, parallel scheduling), on every ISA.
    let specs =
        [decode(513), prefill(70), chunk(300, 40), decode(17), decode(1), chunk(64, 16), decode(1000), prefill(5)];
    let big = Problem::<f32, bf16>::new(900, 16, 2, 8, 128, &specs, 1.0);
    let reversed_order: Vec<usize> = (0..specs.len()).rev().collect();
    let reversed = big.select(&reversed_order);
    for isa in isas() {
        let batched = run(&big, isa);
        let batched_rev = run(&reversed, isa);
        for i in 0..specs.len() {
            let alone = big.select(&[i]);
            let single = run(&alone, isa);
            let want = bits(big.rows_of(&batched, i));
            assert_eq!(want, bits(&single), "{isa:?}: sequence {i} differs alone vs batched");
            let j = specs.len() - 1 - i;
            let got = bits(reversed.rows_of(&batched_rev, j));
            assert_eq!(want, got, "{isa:?}: sequence {i} differs in reversed batch");
        }
    }
}

#[test]
fn thread_count_does_not_change_results() {
    let specs = [decode(700), prefill(120), chunk(500, 64), decode(33)];
    let p = Problem::<f32, f32>::new(1000, 16, 2, 8, 128, &specs, 1.0);
    let multi = run(&p, Isa::detect());
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("pool");
    let single = pool.install(|| run(&p, Isa::detect()));
    assert_eq!(bits(&multi), bits(&single));
}
