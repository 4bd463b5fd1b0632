//! Shared test fixtures: a tiny deterministic PRNG and random paged-attention problems.
#![allow(dead_code)]

use folio_kernels::naive::reference_attention;
use folio_kernels::{CacheGeometry, Element, KvCache, SeqAttn};

/// SplitMix64 (Steele, Lea & Flood, 2014): tiny, deterministic, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[-1, 1)`.
    pub fn unit(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }

    pub fn vec<T: Element>(&mut self, n: usize, amplitude: f32) -> Vec<T> {
        (0..n).map(|_| T::from_f32(self.unit() * amplitude)).collect()
    }
}

/// One sequence of a [`Problem`]: `context_len` cached tokens, the last `query_len` new.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub context_len: usize,
    pub query_len: usize,
}

pub fn decode(context_len: usize) -> Spec {
    Spec { context_len, query_len: 1 }
}

pub fn prefill(context_len: usize) -> Spec {
    Spec { context_len, query_len: context_len }
}

pub fn chunk(context_len: usize, query_len: usize) -> Spec {
    Spec { context_len, query_len }
}

/// A random paged-attention problem: random pools (unused blocks hold garbage too), shuffled
/// non-contiguous block tables, random packed queries.
pub struct Problem<Q, C> {
    pub geom: CacheGeometry,
    pub heads: usize,
    pub scale: f32,
    pub keys: Vec<C>,
    pub values: Vec<C>,
    pub queries: Vec<Q>,
    pub specs: Vec<Spec>,
    pub tables: Vec<Vec<u32>>,
    pub starts: Vec<usize>,
    pub tokens: usize,
}

impl<Q: Element, C: Element> Problem<Q, C> {
    /// `amplitude` scales queries (larger → peakier softmax).
    pub fn new(
        seed: u64,
        block_size: usize,
        kv_heads: usize,
        group: usize,
        head_dim: usize,
        specs: &[Spec],
        amplitude: f32,
    ) -> Self {
        let mut rng = Rng::new(seed);
        let geom = CacheGeometry::new(block_size, kv_heads, head_dim).expect("geometry");
        let heads = kv_heads * group;
        let needed: usize = specs.iter().map(|s| geom.blocks_for(s.context_len)).sum();
        let num_blocks = needed + 3;
        let mut free: Vec<u32> = (0..num_blocks as u32).collect();
        rng.shuffle(&mut free);
        let mut tables = Vec::new();
        for s in specs {
            let n = geom.blocks_for(s.context_len);
            let mut table: Vec<u32> = free.drain(..n).collect();
            if rng.below(2) == 0 {
                table.push(free[0]); // a spare trailing entry must be ignored
            }
            tables.push(table);
        }
        let pool = geom.pool_len(num_blocks).expect("pool size");
        let keys = rng.vec(pool, 1.0);
        let values = rng.vec(pool, 1.0);
        let mut starts = Vec::new();
        let mut tokens = 0;
        for s in specs {
            starts.push(tokens);
            tokens += s.query_len;
        }
        let queries = rng.vec(tokens * heads * head_dim, amplitude);
        Self {
            geom,
            heads,
            scale: 1.0 / (head_dim as f32).sqrt(),
            keys,
            values,
            queries,
            specs: specs.to_vec(),
            tables,
            starts,
            tokens,
        }
    }

    pub fn cache(&self) -> KvCache<'_, C> {
        KvCache::new(&self.keys, &self.values, self.geom).expect("cache view")
    }

    pub fn seqs(&self) -> Vec<SeqAttn<'_>> {
        self.specs
            .iter()
            .zip(&self.tables)
            .zip(&self.starts)
            .map(|((s, t), &start)| SeqAttn {
                query_start: start,
                query_len: s.query_len,
                context_len: s.context_len,
                block_table: t,
            })
            .collect()
    }

    pub fn row_len(&self) -> usize {
        self.heads * self.geom.head_dim()
    }

    /// Rows of `out` belonging to sequence `i` (its packed query rows).
    pub fn rows_of<'o, T>(&self, out: &'o [T], i: usize) -> &'o [T] {
        let r = self.row_len();
        &out[self.starts[i] * r..(self.starts[i] + self.specs[i].query_len) * r]
    }

    /// The same pools with only sequences `order` (in that order), their queries packed anew.
    pub fn select(&self, order: &[usize]) -> Self {
        let mut queries = Vec::new();
        let mut starts = Vec::new();
        for &i in order {
            starts.push(queries.len() / self.row_len());
            queries.extend_from_slice(self.rows_of(&self.queries, i));
        }
        Self {
            geom: self.geom,
            heads: self.heads,
            scale: self.scale,
            keys: self.keys.clone(),
            values: self.values.clone(),
            tokens: queries.len() / self.row_len(),
            queries,
            specs: order.iter().map(|&i| self.specs[i]).collect(),
            tables: order.iter().map(|&i| self.tables[i].clone()).collect(),
            starts,
        }
    }

    pub fn reference(&self) -> Vec<f32> {
        reference_attention(&self.queries, self.cache(), &self.seqs(), self.heads, self.scale).expect("reference")
    }
}

/// Largest `|a - b|`, and whether every element is within `abs + rel·|b|`.
pub fn compare<Q: Element>(got: &[Q], want: &[f32], abs: f32, rel: f32) -> (f32, bool) {
    assert_eq!(got.len(), want.len());
    let mut max = 0.0f32;
    let mut ok = true;
    for (g, &w) in got.iter().zip(want) {
        let g = g.to_f32();
        let e = (g - w).abs();
        if !e.is_finite() || e > abs + rel * w.abs() {
            ok = false;
        }
        max = max.max(if e.is_nan() { f32::INFINITY } else { e });
    }
    (max, ok)
}

/// Bit patterns, for exact comparisons.
pub fn bits<Q: Element>(v: &[Q]) -> Vec<u32> {
    v.iter().map(|x| x.to_f32().to_bits()).collect()
}
