//! Micro-benchmark of `paged_attention` (one layer), plain `std::time`, no harness.
//!
//! `cargo bench -p folio-kernels --bench paged_attention [-- [QUICK] [FILTER…]]`
//! (QUICK: fewer rounds; FILTERs, e.g. `decode bf16 Avx2Fma`, must all occur in a row's label;
//! `seqs=N ctx=N` change the decode batch.)
//!
//! Decode: 32 sequences × 512 context × 16 query heads × 2 kv heads × head_dim 128 (the ERNIE
//! decoder's attention shape), block size 16, shuffled block tables. Reports the median of
//! several timed batches for each (storage type, ISA) side by side, as decode tokens/s for one
//! layer and the K/V bytes streamed per second. Also times one 1024-token prefill.

use std::hint::black_box;
use std::time::{Duration, Instant};

use folio_kernels::{bf16, paged_attention_with, CacheGeometry, Element, Isa, KvCache, SeqAttn};

const BLOCK: usize = 16;
const HEADS: usize = 16;
const KV_HEADS: usize = 2;
const HEAD_DIM: usize = 128;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn below(&mut self, n: usize) -> usize {
        ((self.next() + 1.0) * 0.5 * n as f32) as usize % n
    }
}

struct Setup<C> {
    geom: CacheGeometry,
    keys: Vec<C>,
    values: Vec<C>,
    queries: Vec<f32>,
    tables: Vec<Vec<u32>>,
    /// (query_len, context_len) per sequence.
    shape: Vec<(usize, usize)>,
}

impl<C: Element> Setup<C> {
    fn new(shape: Vec<(usize, usize)>) -> Self {
        let mut rng = Rng(7);
        let geom = CacheGeometry::new(BLOCK, KV_HEADS, HEAD_DIM).expect("geometry");
        let blocks: usize = shape.iter().map(|&(_, c)| geom.blocks_for(c)).sum();
        let mut free: Vec<u32> = (0..blocks as u32).collect();
        for i in (1..free.len()).rev() {
            free.swap(i, rng.below(i + 1));
        }
        let tables = shape.iter().map(|&(_, c)| free.drain(..geom.blocks_for(c)).collect()).collect();
        let pool = geom.pool_len(blocks).expect("pool");
        let tokens: usize = shape.iter().map(|&(q, _)| q).sum();
        Self {
            geom,
            keys: (0..pool).map(|_| C::from_f32(rng.next())).collect(),
            values: (0..pool).map(|_| C::from_f32(rng.next())).collect(),
            queries: (0..tokens * HEADS * HEAD_DIM).map(|_| rng.next()).collect(),
            tables,
            shape,
        }
    }

    fn run(&self, isa: Isa, out: &mut [f32]) {
        let mut start = 0;
        let seqs: Vec<SeqAttn<'_>> = self
            .shape
            .iter()
            .zip(&self.tables)
            .map(|(&(q, c), t)| {
                start += q;
                SeqAttn { query_start: start - q, query_len: q, context_len: c, block_table: t }
            })
            .collect();
        let cache = KvCache::new(&self.keys, &self.values, self.geom).expect("cache");
        let scale = 1.0 / (HEAD_DIM as f32).sqrt();
        paged_attention_with(isa, out, &self.queries, cache, &seqs, HEADS, scale).expect("attention");
    }

    /// Median (wall, CPU) seconds per call over `rounds` rounds of `iters` calls. CPU time is
    /// summed over all threads (Linux only; 0 elsewhere) and is less disturbed by other load.
    fn time(&self, isa: Isa, rounds: usize, iters: usize) -> (f64, f64) {
        let mut out = vec![0.0f32; self.queries.len()];
        self.run(isa, &mut out); // warm-up
        let mut wall = Vec::new();
        let mut cpu = Vec::new();
        for _ in 0..rounds {
            let (t, c) = (Instant::now(), cpu_time());
            for _ in 0..iters {
                self.run(isa, black_box(&mut out));
            }
            wall.push(t.elapsed() / iters as u32);
            cpu.push((cpu_time() - c) / iters as u32);
        }
        (median(wall), median(cpu))
    }
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64()
}

/// CPU time of all threads of this process, from `/proc/self/task/*/schedstat` (nanoseconds on
/// the CPU is the first field). Includes rayon's brief idle spinning.
fn cpu_time() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let ns: u64 = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(ns)
}

fn isas() -> Vec<Isa> {
    [Isa::Portable, Isa::Avx2Fma].into_iter().filter(|i| i.is_available()).collect()
}

/// Whether every command-line filter word occurs in `label`.
fn selected(label: &str) -> bool {
    std::env::args()
        .skip(1)
        .filter(|a| a != "QUICK" && !a.starts_with('-') && !a.contains('='))
        .all(|f| label.contains(&f))
}

/// A `name=value` command-line override, e.g. `seqs=8`.
fn setting(name: &str, default: usize) -> usize {
    let prefix = format!("{name}=");
    std::env::args().find_map(|a| a.strip_prefix(&prefix).and_then(|v| v.parse().ok())).unwrap_or(default)
}

fn decode<C: Element>(name: &str, rounds: usize) {
    let (seqs, ctx) = (setting("seqs", 32), setting("ctx", 512));
    let s = Setup::<C>::new(vec![(1, ctx); seqs]);
    let kv_bytes = (2 * seqs * ctx * KV_HEADS * HEAD_DIM * std::mem::size_of::<C>()) as f64;
    for isa in isas() {
        if !selected(&format!("decode {name} {isa:?}")) {
            continue;
        }
        let (t, cpu) = s.time(isa, rounds, 20);
        println!(
            "decode  {name:<4} {isa:<9?} {:>7.3} ms/step (cpu {:>7.3} ms) {:>7.0} tokens/s/layer {:>5.1} GB/s K+V",
            t * 1e3,
            cpu * 1e3,
            seqs as f64 / t,
            kv_bytes / t / 1e9,
        );
    }
}

fn prefill<C: Element>(name: &str, rounds: usize) {
    let n = 1024;
    let s = Setup::<C>::new(vec![(n, n)]);
    for isa in isas() {
        if !selected(&format!("prefill {name} {isa:?}")) {
            continue;
        }
        let (t, cpu) = s.time(isa, rounds, 1);
        println!(
            "prefill {name:<4} {isa:<9?} {:>7.1} ms (cpu {:>7.1} ms) for {n} tokens, one layer",
            t * 1e3,
            cpu * 1e3
        );
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "QUICK");
    let rounds = if quick { 3 } else { 9 };
    println!(
        "paged_attention, {} threads; {HEADS} heads, {KV_HEADS} kv heads, head_dim {HEAD_DIM}, block {BLOCK}",
        rayon::current_num_threads()
    );
    println!("decode: {} seqs x {} context; median of {rounds} rounds", setting("seqs", 32), setting("ctx", 512));
    decode::<f32>("f32", rounds);
    decode::<bf16>("bf16", rounds);
    prefill::<f32>("f32", rounds.min(5));
    prefill::<bf16>("bf16", rounds.min(5));
}
