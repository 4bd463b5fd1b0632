//! Paged attention over a block-table KV cache, for prefill, chunked prefill and decode at once.
//!
//! # Design
//! * **Layout.** K/V live in fixed-size blocks addressed through per-sequence block tables — the
//!   PagedAttention scheme of Kwon et al. (2023) used by vLLM; see [`crate::cache`].
//! * **Softmax.** Each query row streams over its blocks with the online (running max, running
//!   sum) softmax of FlashAttention (Dao et al., 2022): per block, scores for up to `block_size`
//!   keys go to a `block_size`-sized scratch row, the running max is updated, the accumulator and
//!   sum are rescaled by `exp(old_max - new_max)` only when the max grows, then `exp(score - max)`
//!   weights the block's value rows. Scratch is O(rows × (head_dim + block_size)) per work item,
//!   independent of the context length. All arithmetic is in `f32`.
//! * **Causality.** A sequence's `query_len` new tokens are the last `query_len` of its
//!   `context_len`; query `i` sees keys `0 ..= context_len - query_len + i`.
//! * **Work split.** A work item is (sequence, kv head, tile of consecutive query tokens) and holds
//!   every query head of that kv head's GQA group, so each key/value row is read once per tile and
//!   reused by `group × tile_tokens` query rows (decode: one tile = one token = the whole group).
//!   Items run in parallel on rayon's pool. Each query row's arithmetic is a fixed sequence of
//!   operations over its own inputs (block order, in-block key order, lane order of the dot
//!   products), so the output for a sequence is bit-identical whatever else is in the batch and
//!   however items are scheduled.
//! * **Vectorization.** The inner loops live in the private `vecops` module: dot products with 16 fixed
//!   lanes (row groups of 4 share each key load), and a block-wise weighted sum of value rows that
//!   keeps accumulators in registers across the block's keys. Two flavours ([`Isa`]): `Portable`
//!   (baseline target, `f32::exp`) and, on x86_64, `Avx2Fma` (AVX2 intrinsics, fused
//!   multiply-adds, a vectorized `exp`), detected once per call. Each key/value row of the next
//!   block is software-prefetched while the current block is scored (block tables scatter blocks
//!   over the pool, and hardware prefetchers stop at page boundaries).
//!
//! # Complexity
//! Time O(Σ_seq query_len · (context_len − query_len/2) · heads · head_dim); memory traffic reads
//! each sequence's K/V once per (kv head, query tile); allocation O(tokens · kv_heads) for the
//! output bookkeeping plus the per-thread scratch above.

mod kernel;

use rayon::prelude::*;

use crate::cache::KvCache;
use crate::element::Element;
use crate::error::KernelError;
use kernel::{Job, Scratch, Tile};

/// One sequence's share of a [`paged_attention`] call.
#[derive(Debug, Clone, Copy)]
pub struct SeqAttn<'a> {
    /// First row of this sequence's queries (and outputs) in the packed token dimension.
    pub query_start: usize,
    /// Number of new tokens (1 for decode; the chunk length for (chunked) prefill).
    pub query_len: usize,
    /// Tokens in the cache for this sequence, including the new ones (`>= query_len`).
    pub context_len: usize,
    /// Physical block of each logical block; needs at least `ceil(context_len / block_size)` entries.
    pub block_table: &'a [u32],
}

/// Instruction-set flavour of the attention inner loops.
///
/// Results are deterministic for a given flavour; the two flavours differ in the last bits
/// (fused vs separate multiply-add), so pin [`Isa::Portable`] if outputs must match across
/// machines with and without AVX2/FMA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Baseline target features, separate multiply and add.
    Portable,
    /// x86_64 AVX2 + FMA (runtime-detected).
    Avx2Fma,
}

impl Isa {
    /// The best flavour this CPU supports.
    pub fn detect() -> Self {
        if Isa::Avx2Fma.is_available() {
            Isa::Avx2Fma
        } else {
            Isa::Portable
        }
    }

    /// Whether this CPU can run the flavour.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2Fma => false,
        }
    }
}

/// Query rows a work item aims for (tile tokens × GQA group); bounds the scratch to a few KiB.
const TILE_ROWS: usize = 16;

/// Below this many multiply-adds in total, run on the calling thread (rayon overhead dominates).
const SERIAL_MACS: usize = 1 << 18;

/// Attention of packed queries against the paged cache, with the best [`Isa`] for this CPU.
///
/// `queries` and `out` are `tokens × heads × head_dim` (row-major); sequence `s` owns rows
/// `seqs[s].query_start .. + query_len`, which must not overlap between sequences. Rows no
/// sequence owns are left untouched. Query head `h` attends with kv head `h / (heads / kv_heads)`.
/// `scale` multiplies the raw `q·k` scores (usually `1/sqrt(head_dim)`). The new tokens' K/V must
/// already be in the cache ([`crate::write_kv`]). Everything is validated before `out` is written.
pub fn paged_attention<Q: Element, C: Element>(
    out: &mut [Q],
    queries: &[Q],
    cache: KvCache<'_, C>,
    seqs: &[SeqAttn<'_>],
    heads: usize,
    scale: f32,
) -> Result<(), KernelError> {
    paged_attention_with(Isa::detect(), out, queries, cache, seqs, heads, scale)
}

/// [`paged_attention`] with an explicit instruction-set flavour (errors if it is unavailable).
pub fn paged_attention_with<Q: Element, C: Element>(
    isa: Isa,
    out: &mut [Q],
    queries: &[Q],
    cache: KvCache<'_, C>,
    seqs: &[SeqAttn<'_>],
    heads: usize,
    scale: f32,
) -> Result<(), KernelError> {
    if !isa.is_available() {
        return Err(KernelError::IsaUnavailable(isa));
    }
    let tokens = validate(queries.len(), out.len(), &cache, seqs, heads, scale)?;
    let geom = cache.geom;
    let group = heads / geom.kv_heads();
    let tile_tokens = (TILE_ROWS / group).max(1);
    let tiles = build_tiles(out, tokens, seqs, geom.kv_heads(), group * geom.head_dim(), tile_tokens)?;

    let job = Job {
        queries,
        keys: cache.keys,
        values: cache.values,
        seqs,
        heads,
        kv_heads: geom.kv_heads(),
        group,
        head_dim: geom.head_dim(),
        block_size: geom.block_size(),
        scale,
        isa,
    };
    let macs: usize = seqs
        .iter()
        .map(|s| s.query_len.saturating_mul(s.context_len))
        .fold(0usize, usize::saturating_add)
        .saturating_mul(heads.saturating_mul(geom.head_dim()));
    if macs < SERIAL_MACS {
        let mut scratch = Scratch::default();
        for mut tile in tiles {
            job.run(&mut tile, &mut scratch);
        }
    } else {
        tiles.into_par_iter().for_each_init(Scratch::default, |scratch, mut tile| job.run(&mut tile, scratch));
    }
    Ok(())
}

/// Checks shapes, heads and every sequence against the cache; returns the packed token count.
pub(crate) fn validate<C>(
    queries_len: usize,
    out_len: usize,
    cache: &KvCache<'_, C>,
    seqs: &[SeqAttn<'_>],
    heads: usize,
    scale: f32,
) -> Result<usize, KernelError> {
    let geom = cache.geom;
    if heads == 0 || !heads.is_multiple_of(geom.kv_heads()) {
        return Err(KernelError::HeadsNotMultipleOfKvHeads { heads, kv_heads: geom.kv_heads() });
    }
    if !scale.is_finite() {
        return Err(KernelError::NonFiniteScale(scale));
    }
    let row = heads.checked_mul(geom.head_dim()).ok_or(KernelError::NotAMultiple {
        what: "queries",
        len: queries_len,
        unit: usize::MAX,
    })?;
    if !queries_len.is_multiple_of(row) {
        return Err(KernelError::NotAMultiple {
            what: "queries (tokens × heads × head_dim)",
            len: queries_len,
            unit: row,
        });
    }
    if out_len != queries_len {
        return Err(KernelError::LengthMismatch {
            what: "out (must match queries)",
            expected: queries_len,
            actual: out_len,
        });
    }
    let tokens = queries_len / row;
    for (i, s) in seqs.iter().enumerate() {
        if s.query_len == 0 || s.query_len > s.context_len {
            return Err(KernelError::InvalidQueryLen { seq: i, query_len: s.query_len, context_len: s.context_len });
        }
        if s.query_start.checked_add(s.query_len).is_none_or(|end| end > tokens) {
            return Err(KernelError::QueryOutOfRange { seq: i, start: s.query_start, len: s.query_len, tokens });
        }
        let needed = geom.blocks_for(s.context_len);
        let table = s.block_table.get(..needed).ok_or(KernelError::BlockTableTooShort {
            seq: i,
            needed,
            len: s.block_table.len(),
        })?;
        if let Some(&block) = table.iter().find(|&&b| b as usize >= cache.num_blocks) {
            return Err(KernelError::BlockOutOfRange { seq: i, block, num_blocks: cache.num_blocks });
        }
    }
    Ok(tokens)
}

/// Splits `out` into work items, each owning the output rows of its (sequence, kv head, tokens).
///
/// `out` is viewed as `tokens × kv_heads` pieces of `group_len` (= group × head_dim) elements: the
/// outputs of one kv head's query heads for one token are contiguous.
fn build_tiles<'o, Q>(
    out: &'o mut [Q],
    tokens: usize,
    seqs: &[SeqAttn<'_>],
    kv_heads: usize,
    group_len: usize,
    tile_tokens: usize,
) -> Result<Vec<Tile<'o, Q>>, KernelError> {
    let mut pieces: Vec<Option<&'o mut [Q]>> = out.chunks_exact_mut(group_len).map(Some).collect();
    debug_assert_eq!(pieces.len(), tokens * kv_heads);
    let count: usize = seqs.iter().map(|s| s.query_len.div_ceil(tile_tokens) * kv_heads).sum();
    let mut tiles = Vec::with_capacity(count);
    for (si, s) in seqs.iter().enumerate() {
        for kv_head in 0..kv_heads {
            for first in (0..s.query_len).step_by(tile_tokens) {
                let n = tile_tokens.min(s.query_len - first);
                let mut outs = Vec::with_capacity(n);
                for token in s.query_start + first..s.query_start + first + n {
                    let piece = pieces
                        .get_mut(token * kv_heads + kv_head)
                        .and_then(Option::take)
                        .ok_or(KernelError::OverlappingQueries { seq: si, token })?;
                    outs.push(piece);
                }
                tiles.push(Tile { seq: si, kv_head, first, outs });
            }
        }
    }
    Ok(tiles)
}
