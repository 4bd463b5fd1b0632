//! `paged_attention` rejects malformed calls with an error and leaves `out` unwritten.

mod common;

use common::{decode, prefill, Problem};
use folio_kernels::{paged_attention, paged_attention_with, Isa, KernelError, SeqAttn};

fn problem() -> Problem<f32, f32> {
    Problem::new(7, 4, 2, 2, 8, &[prefill(6), decode(9)], 1.0)
}

/// Runs with modified sequences / heads / scale and returns the error; checks `out` is untouched.
fn fails(p: &Problem<f32, f32>, edit: impl FnOnce(&mut Vec<SeqAttn<'_>>, &mut usize, &mut f32)) -> KernelError {
    let mut seqs = p.seqs();
    let (mut heads, mut scale) = (p.heads, p.scale);
    edit(&mut seqs, &mut heads, &mut scale);
    let mut out = vec![-3.0f32; p.queries.len()];
    let err = paged_attention(&mut out, &p.queries, p.cache(), &seqs, heads, scale).expect_err("call should fail");
    assert!(out.iter().all(|&x| x == -3.0), "out written despite {err}");
    err
}

#[test]
fn malformed_calls_are_errors() {
    let p = problem();
    let e = fails(&p, |_, h, _| *h = 3);
    assert!(matches!(e, KernelError::HeadsNotMultipleOfKvHeads { heads: 3, kv_heads: 2 }));
    let e = fails(&p, |_, h, _| *h = 0);
    assert!(matches!(e, KernelError::HeadsNotMultipleOfKvHeads { .. }));
    let e = fails(&p, |_, h, _| *h = 8); // queries no longer a whole number of rows
    assert!(matches!(e, KernelError::NotAMultiple { .. }));
    let e = fails(&p, |_, _, s| *s = f32::NAN);
    assert!(matches!(e, KernelError::NonFiniteScale(_)));
    let e = fails(&p, |s, _, _| s[1].query_len = 0);
    assert!(matches!(e, KernelError::InvalidQueryLen { seq: 1, .. }));
    let e = fails(&p, |s, _, _| s[0].context_len = 5); // query_len 6 > context 5
    assert!(matches!(e, KernelError::InvalidQueryLen { seq: 0, query_len: 6, context_len: 5 }));
    let e = fails(&p, |s, _, _| s[1].query_start = 7);
    assert!(matches!(e, KernelError::QueryOutOfRange { seq: 1, start: 7, len: 1, tokens: 7 }));
    let e = fails(&p, |s, _, _| s[1].query_start = usize::MAX);
    assert!(matches!(e, KernelError::QueryOutOfRange { .. }));
    let e = fails(&p, |s, _, _| s[1].query_start = 5);
    assert!(matches!(e, KernelError::OverlappingQueries { seq: 1, token: 5 }));
    let e = fails(&p, |s, _, _| s[1].context_len = 13); // needs 4 blocks of 4
    assert!(matches!(e, KernelError::BlockTableTooShort { seq: 1, needed: 4, .. }));
    let e = fails(&p, |s, _, _| s[0].block_table = &[0, 99]);
    assert!(matches!(e, KernelError::BlockOutOfRange { seq: 0, block: 99, .. }));
}

#[test]
fn mismatched_buffers_are_errors() {
    let p = problem();
    let mut short = vec![0.0f32; p.queries.len() - 16];
    let e = paged_attention(&mut short, &p.queries, p.cache(), &p.seqs(), p.heads, p.scale);
    assert!(matches!(e, Err(KernelError::LengthMismatch { .. })));
    let mut out = vec![0.0f32; p.queries.len()];
    let e = paged_attention(&mut out, &p.queries[..5], p.cache(), &p.seqs(), p.heads, p.scale);
    assert!(matches!(e, Err(KernelError::NotAMultiple { .. })));
}

#[test]
fn empty_batch_is_a_no_op() {
    let p = problem();
    let mut out = vec![-3.0f32; p.queries.len()];
    paged_attention(&mut out, &p.queries, p.cache(), &[], p.heads, p.scale).expect("no seqs");
    assert!(out.iter().all(|&x| x == -3.0));
    paged_attention::<f32, f32>(&mut [], &[], p.cache(), &[], p.heads, p.scale).expect("no tokens");
}

#[test]
fn unavailable_isa_is_an_error() {
    let p = problem();
    let mut out = vec![0.0f32; p.queries.len()];
    let r = paged_attention_with(Isa::Avx2Fma, &mut out, &p.queries, p.cache(), &p.seqs(), p.heads, p.scale);
    if Isa::Avx2Fma.is_available() {
        r.expect("available ISA runs");
    } else {
        assert!(matches!(r, Err(KernelError::IsaUnavailable(Isa::Avx2Fma))));
    }
}
