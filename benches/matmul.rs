//! What batching can buy on this machine: GFLOP/s of a decoder's projections when one sequence
//! decodes (m = 1, a matrix-vector product bound by reading the weights) against many decoding
//! together (m = 16, 64, 256, matrix-matrix products bound by arithmetic). On a GPU the m = 1 rate
//! is a few percent of the m = 64 rate, which is where vLLM's large batching gains come from; on a
//! CPU the gap, and so the most continuous batching can give a decode step, is this ratio.
//!
//! `cargo bench --bench matmul [-- HIDDEN INTERMEDIATE]` (default 256 768: folio-ocr-small's
//! decoder); `RAYON_NUM_THREADS` sets the threads. Prints the median of 21 runs per case.

use std::hint::black_box;
use std::time::Instant;

use candle_core::{Device, Result, Tensor};

fn main() -> Result<()> {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (hidden, inter) = match args[..] {
        [h, i, ..] => (h, i),
        _ => (256, 768),
    };
    let dev = Device::Cpu;
    println!("threads: {}, hidden {hidden}, intermediate {inter}", candle_core::utils::get_num_threads());
    // A decoder layer's projections as (in, out): q/k/v/o folded to hidden × hidden, gate+up, down.
    let shapes = [(hidden, hidden), (hidden, 2 * inter), (inter, hidden)];
    let weights = shapes.iter().map(|&(i, o)| Tensor::randn(0f32, 0.02, (i, o), &dev)).collect::<Result<Vec<_>>>()?;
    let mut base = None;
    for m in [1usize, 4, 16, 64, 256] {
        let xs = shapes.iter().map(|&(i, _)| Tensor::randn(0f32, 1.0, (m, i), &dev)).collect::<Result<Vec<_>>>()?;
        let flops: usize = shapes.iter().map(|&(i, o)| 2 * m * i * o).sum();
        let mut times = Vec::with_capacity(21);
        for run in 0..22 {
            let t = Instant::now();
            for _ in 0..20 {
                for (x, w) in xs.iter().zip(&weights) {
                    black_box(x.matmul(w)?);
                }
            }
            if run > 0 {
                times.push(t.elapsed().as_secs_f64() / 20.0);
            }
        }
        times.sort_by(f64::total_cmp);
        let secs = times[times.len() / 2];
        let gflops = flops as f64 / secs / 1e9;
        let per_row = secs / m as f64 * 1e6;
        let b = *base.get_or_insert(per_row);
        println!("m = {m:>3}: {gflops:>6.1} GFLOP/s, {per_row:>7.2} µs per row, {:>5.1}× m = 1's rows/s", b / per_row);
    }
    Ok(())
}
