//! Fused ops (`folio::models::ops`) against candle_nn's kernels (forward) and against the same
//! function composed of plain candle ops (forward + backward), side by side in one run; the
//! varlen attention against per-sequence slices through composed ops.
//!
//! `cargo bench --bench ops [-- QUICK]`; `RAYON_NUM_THREADS=1` for one thread. Prints the median of
//! several runs per case.

use std::hint::black_box;
use std::time::{Duration, Instant};

use candle_core::{DType, Device, Result, Tensor, Var};
use folio::models::ops::{self, composite};

fn median(mut f: impl FnMut() -> Result<()>, runs: usize) -> Duration {
    f().unwrap(); // warm-up
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f().unwrap();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() -> Result<()> {
    let quick = std::env::args().any(|a| a == "QUICK");
    let runs = if quick { 5 } else { 21 };
    let dev = Device::Cpu;
    println!("threads: {}", candle_core::utils::get_num_threads());
    for dtype in [DType::F32, DType::BF16] {
        let (rows, n) = (4096, 1024);
        let x = Tensor::randn(0f32, 1.0, (rows, n), &dev)?.to_dtype(dtype)?;
        let w = Tensor::randn(1f32, 0.2, n, &dev)?.to_dtype(dtype)?;
        let b = Tensor::randn(0f32, 0.2, n, &dev)?.to_dtype(dtype)?;
        // Rope on (1, 4096 tokens, 8 heads, 128): as many elements as the norms.
        let xr = x.reshape((1, rows, 8, 128))?;
        let angles = Tensor::randn(0f32, 3.0, (rows, 64), &dev)?;
        let (cos, sin) = (angles.cos()?.to_dtype(dtype)?, angles.sin()?.to_dtype(dtype)?);
        println!("\n{dtype:?}, ({rows}, {n}) — forward, ms (median of {runs}): candle_nn kernel | fused | ratio");
        type Run<'a> = Box<dyn Fn() -> Result<Tensor> + 'a>;
        let cases: [(&str, Run, Run); 4] = [
            ("rms_norm", Box::new(|| candle_nn::ops::rms_norm(&x, &w, 1e-5)), Box::new(|| ops::rms_norm(&x, &w, 1e-5))),
            (
                "layer_norm",
                Box::new(|| candle_nn::ops::layer_norm(&x, &w, &b, 1e-5)),
                Box::new(|| ops::layer_norm(&x, &w, &b, 1e-5)),
            ),
            (
                "softmax_last_dim",
                Box::new(|| candle_nn::ops::softmax_last_dim(&x)),
                Box::new(|| ops::softmax_last_dim(&x)),
            ),
            (
                "rope_thd",
                Box::new(|| candle_nn::rotary_emb::rope_thd(&xr, &cos, &sin)),
                Box::new(|| ops::rope_thd(&xr, &cos, &sin)),
            ),
        ];
        for (name, theirs, ours) in &cases {
            let a = median(|| theirs().map(|t| drop(black_box(t))), runs);
            let f = median(|| ours().map(|t| drop(black_box(t))), runs);
            println!("  {name:<18} {:8.2} | {:8.2} | {:.2}x", ms(a), ms(f), ms(a) / ms(f));
        }
        if dtype != DType::F32 {
            continue;
        }
        println!("\nF32, ({rows}, {n}) — forward + backward, ms: composed candle ops | fused | ratio");
        let (xv, wv, bv) = (Var::from_tensor(&x)?, Var::from_tensor(&w)?, Var::from_tensor(&b)?);
        let up = Tensor::randn(0f32, 1.0, (rows, n), &dev)?;
        let step = |f: &dyn Fn(&Tensor, &Tensor, &Tensor) -> Result<Tensor>| -> Result<()> {
            let y = f(xv.as_tensor(), wv.as_tensor(), bv.as_tensor())?;
            let grads = (y.reshape((rows, n))? * &up)?.sum_all()?.backward()?;
            black_box(grads);
            Ok(())
        };
        type Op<'a> = &'a dyn Fn(&Tensor, &Tensor, &Tensor) -> Result<Tensor>;
        let pairs: [(&str, Op, Op); 4] = [
            ("rms_norm", &|x, w, _| composite::rms_norm(x, w, 1e-5), &|x, w, _| ops::rms_norm(x, w, 1e-5)),
            ("layer_norm", &|x, w, b| composite::layer_norm(x, w, b, 1e-5), &|x, w, b| ops::layer_norm(x, w, b, 1e-5)),
            ("softmax_last_dim", &|x, _, _| composite::softmax_last_dim(x), &|x, _, _| ops::softmax_last_dim(x)),
            ("rope_thd", &|x, _, _| composite::rope_thd(&x.reshape((1, rows, 8, 128))?, &cos, &sin), &|x, _, _| {
                ops::rope_thd(&x.reshape((1, rows, 8, 128))?, &cos, &sin)
            }),
        ];
        for (name, slow, fast) in pairs {
            let s = median(|| step(slow), runs);
            let f = median(|| step(fast), runs);
            println!("  {name:<18} {:8.2} | {:8.2} | {:.2}x", ms(s), ms(f), ms(s) / ms(f));
        }
    }
    varlen_attention(&dev, runs)
}

/// Attention within 32 packed sequences, shaped like a training step of folio-ocr-small: the
/// vision tower's line images (3 heads of 64) and the decoder's sequences (4 query and 2 key/value
/// heads of 64, causal).
fn varlen_attention(dev: &Device, runs: usize) -> Result<()> {
    println!(
        "\nF32 varlen attention, 32 sequences, head dim 64 — ms: per-sequence narrow + composed ops | fused | ratio"
    );
    for (name, heads, kv_heads, causal, (shortest, longest)) in
        [("vision", 3, 3, false, (120, 380)), ("decoder", 4, 2, true, (60, 220))]
    {
        let lens = (0..32).map(|i| shortest + (i * 37) % (longest - shortest));
        let spans: Vec<(usize, usize)> = lens
            .scan(0, |start, len| {
                *start += len;
                Some((*start - len, len))
            })
            .collect();
        let n: usize = spans.iter().map(|s| s.1).sum();
        let var = |h: usize| Var::from_tensor(&Tensor::randn(0f32, 1.0, (n, h, 64), dev)?);
        let (q, k, v) = (var(heads)?, var(kv_heads)?, var(kv_heads)?);
        let up = Tensor::randn(0f32, 1.0, (n, heads, 64), dev)?;
        let run = |fused: bool, backward: bool| -> Result<()> {
            let f = if fused { ops::varlen_attention } else { composite::varlen_attention };
            let y = f(q.as_tensor(), k.as_tensor(), v.as_tensor(), &spans, 0.125, causal)?;
            if backward {
                black_box((y * &up)?.sum_all()?.backward()?);
            }
            Ok(())
        };
        for (what, backward) in [("forward", false), ("fwd + bwd", true)] {
            let s = median(|| run(false, backward), runs);
            let f = median(|| run(true, backward), runs);
            println!("  {name:<8} {what:<10} {:8.2} | {:8.2} | {:.2}x", ms(s), ms(f), ms(s) / ms(f));
        }
    }
    Ok(())
}
