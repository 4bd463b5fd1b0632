//! The per-work-item attention loop (see the parent module for the design).
//!
//! A tile is `n` consecutive query tokens of one sequence × the `group` query heads of one kv
//! head: `rows = n × group` query rows, row `r = t × group + h`. For each block of the context the
//! tile (1) scores every visible key against every row that may see it, (2) updates each row's
//! running max and sum and rescales its accumulator when the max grows, (3) adds the block's
//! weighted value rows. Rows of later tokens see more keys (causal), so key `j` is scored only for
//! the rows from the first token that sees it on, and row `r` adds only its `counts[r]` visible
//! values. Every per-row step is a fixed sequence of operations on that row's own data.

use super::{Isa, SeqAttn};
use crate::element::Element;
use crate::vecops::{prefetch_rows, scale, Portable, VecOps};

/// Everything shared by all work items of one call (validated by the caller).
pub(crate) struct Job<'a, Q, C> {
    pub queries: &'a [Q],
    pub keys: &'a [C],
    pub values: &'a [C],
    pub seqs: &'a [SeqAttn<'a>],
    pub heads: usize,
    pub kv_heads: usize,
    pub group: usize,
    pub head_dim: usize,
    pub block_size: usize,
    pub scale: f32,
    pub isa: Isa,
}

/// One work item: query tokens `first .. first + outs.len()` of sequence `seq`, kv head `kv_head`.
pub(crate) struct Tile<'o, Q> {
    pub seq: usize,
    pub kv_head: usize,
    pub first: usize,
    /// Per token: the `group × head_dim` output elements of this kv head's query heads.
    pub outs: Vec<&'o mut [Q]>,
}

/// Per-thread scratch, reused across work items.
#[derive(Default)]
pub(crate) struct Scratch {
    /// `rows × head_dim` queries in f32.
    q: Vec<f32>,
    /// `rows × head_dim` unnormalized outputs.
    acc: Vec<f32>,
    /// `rows × block_size` scores, then softmax weights, of the current block.
    scores: Vec<f32>,
    /// Per row: running max of the scaled scores.
    max: Vec<f32>,
    /// Per row: running sum of `exp(score - max)`.
    sum: Vec<f32>,
    /// Per row: keys of the current block it sees.
    counts: Vec<usize>,
}

impl<Q: Element, C: Element> Job<'_, Q, C> {
    /// Runs one tile with this job's instruction-set flavour.
    pub fn run(&self, tile: &mut Tile<'_, Q>, scratch: &mut Scratch) {
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `paged_attention_with` only builds a job with `Isa::Avx2Fma` after
            // `Isa::is_available` confirmed AVX2 and FMA at run time.
            Isa::Avx2Fma => unsafe { self.run_avx2_fma(tile, scratch) },
            _ => self.run_tile::<Portable>(tile, scratch),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2_fma(&self, tile: &mut Tile<'_, Q>, scratch: &mut Scratch) {
        self.run_tile::<crate::vecops::Avx2Fma>(tile, scratch)
    }

    #[inline(always)]
    fn run_tile<V: VecOps>(&self, tile: &mut Tile<'_, Q>, s: &mut Scratch) {
        let Some(seq) = self.seqs.get(tile.seq) else {
            return;
        };
        let (hd, g, bs) = (self.head_dim, self.group, self.block_size);
        let slot_len = self.kv_heads * hd;
        let n_tok = tile.outs.len();
        let rows = n_tok * g;
        // Keys visible to tile token t: `seen + t + 1`.
        let seen = seq.context_len - seq.query_len + tile.first;
        let last_visible = seen + n_tok;

        s.q.clear();
        for t in 0..n_tok {
            let start = ((seq.query_start + tile.first + t) * self.heads + tile.kv_head * g) * hd;
            let src = &self.queries[start..start + g * hd];
            s.q.extend(src.iter().map(|x| x.to_f32()));
        }
        s.acc.clear();
        s.acc.resize(rows * hd, 0.0);
        s.scores.clear();
        s.scores.resize(rows * bs, 0.0);
        s.max.clear();
        s.max.resize(rows, f32::NEG_INFINITY);
        s.sum.clear();
        s.sum.resize(rows, 0.0);

        let n_blocks = last_visible.div_ceil(bs);
        let table = &seq.block_table[..n_blocks];
        let row_base = |block: u32| block as usize * bs * slot_len + tile.kv_head * hd;
        if let Some(&first) = table.first() {
            let n = bs.min(last_visible);
            prefetch_rows(self.keys, row_base(first), slot_len, n, hd);
            prefetch_rows(self.values, row_base(first), slot_len, n, hd);
        }
        for (b, &block) in table.iter().enumerate() {
            let pos0 = b * bs;
            let in_block = bs.min(last_visible - pos0);
            let base = row_base(block);
            // The next block's K/V rows are prefetched one row per key of this block, spreading
            // the misses over the block's work.
            let next = table.get(b + 1).map(|&nb| (row_base(nb), bs.min(last_visible - pos0 - bs)));
            // First row that sees key `pos`: token t sees it iff pos < seen + t + 1.
            let first_row = |pos: usize| pos.saturating_sub(seen) * g;

            // (1) Scores: every row that sees key j, against key j.
            let keys = &self.keys[base..base + (in_block - 1) * slot_len + hd];
            for (j, k) in keys.chunks(slot_len).enumerate() {
                // A block with a successor is full, so j covers all of the next block's rows.
                if let Some((next_base, _)) = next.filter(|&(_, len)| j < len) {
                    prefetch_rows(self.keys, next_base + j * slot_len, 0, 1, hd);
                    prefetch_rows(self.values, next_base + j * slot_len, 0, 1, hd);
                }
                let r0 = first_row(pos0 + j);
                let out = &mut s.scores[r0 * bs + j..];
                V::dot_rows(&s.q[r0 * hd..], &k[..hd], self.scale, out, bs);
            }

            // (2) Online softmax update.
            for t in 0..n_tok {
                let visible = seen + t + 1;
                if visible <= pos0 {
                    continue;
                }
                let n = in_block.min(visible - pos0);
                for r in t * g..(t + 1) * g {
                    let sc = &mut s.scores[r * bs..r * bs + n];
                    let block_max = sc.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
                    let old = s.max[r];
                    if block_max > old {
                        if old != f32::NEG_INFINITY {
                            let corr = (old - block_max).exp();
                            s.sum[r] *= corr;
                            scale(&mut s.acc[r * hd..(r + 1) * hd], corr);
                        }
                        s.max[r] = block_max;
                    }
                    s.sum[r] += V::exp_sum(sc, s.max[r]);
                }
            }

            // (3) Weighted values: row r adds values 0..counts[r] of the block.
            s.counts.clear();
            for t in 0..n_tok {
                let n = (seen + t + 1).saturating_sub(pos0).min(in_block);
                s.counts.extend(std::iter::repeat_n(n, g));
            }
            let values = &self.values[base..base + (in_block - 1) * slot_len + hd];
            V::axpy_block(&mut s.acc, &s.scores, bs, values, slot_len, &s.counts);
        }

        // Normalize and store.
        let accs = s.acc.chunks_exact(g * hd);
        let sums = s.sum.chunks_exact(g);
        for ((out, acc), sums) in tile.outs.iter_mut().zip(accs).zip(sums) {
            for ((o, a), &l) in out.chunks_exact_mut(hd).zip(acc.chunks_exact(hd)).zip(sums) {
                let inv = 1.0 / l;
                for (o, &a) in o.iter_mut().zip(a) {
                    *o = Q::from_f32(a * inv);
                }
            }
        }
    }
}
