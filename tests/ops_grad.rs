//! The fused ops of `folio::models::ops`: forward equal to candle_nn's kernels, gradients equal to
//! finite differences (f64) and to the same function composed of plain candle ops (f32, f64, bf16).

use candle_core::{DType, Device, Result, Tensor, Var};
use folio::models::ops::{self, composite};

/// Deterministic normal-ish numbers (splitmix64 → sum of uniforms), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn tensor(&mut self, shape: &[usize], mean: f64, std: f64, dtype: DType) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f64> =
            (0..n).map(|_| mean + std * ((0..4).map(|_| self.uniform()).sum::<f64>() - 2.0) * 1.73).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap().to_dtype(dtype).unwrap()
    }
}

fn max_abs(t: &Tensor) -> f64 {
    t.to_dtype(DType::F64).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f64>().unwrap()
}

/// max |a − b| / max(max |b|, 1e-3): relative to the tensor's scale, floored so that gradients that
/// are all but zero (e.g. RMSNorm of a single element) compare absolutely.
fn rel_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    let d = (a.to_dtype(DType::F64).unwrap() - b.to_dtype(DType::F64).unwrap()).unwrap();
    max_abs(&d) / max_abs(b).max(1e-3)
}

fn abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    max_abs(&(a.to_dtype(DType::F64).unwrap() - b.to_dtype(DType::F64).unwrap()).unwrap())
}

/// One of the fused ops with its inputs; `params` are the differentiable inputs after `x`.
#[derive(Clone, Copy, Debug)]
enum Op {
    Rms,
    Layer,
    Softmax,
    Rope,
    Gelu,
}

struct Case {
    op: Op,
    /// Differentiable inputs: x, then weight (and bias).
    inputs: Vec<Tensor>,
    /// Constant inputs (cos, sin).
    consts: Vec<Tensor>,
}

const EPS: f64 = 1e-5;

impl Case {
    fn new(op: Op, shape: &[usize], dtype: DType, rng: &mut Rng) -> Self {
        let n = *shape.last().unwrap();
        let mut inputs = vec![rng.tensor(shape, 0.3, 1.0, dtype)];
        let mut consts = vec![];
        match op {
            Op::Rms => inputs.push(rng.tensor(&[n], 1.0, 0.5, dtype)),
            Op::Layer => {
                inputs.push(rng.tensor(&[n], 1.0, 0.5, dtype));
                inputs.push(rng.tensor(&[n], 0.0, 0.5, dtype));
            }
            Op::Softmax | Op::Gelu => {}
            Op::Rope => {
                let t = shape[1];
                let angles = rng.tensor(&[t + 2, n / 2], 0.0, 3.0, DType::F64);
                consts.push(angles.cos().unwrap().to_dtype(dtype).unwrap());
                consts.push(angles.sin().unwrap().to_dtype(dtype).unwrap());
            }
        }
        Self { op, inputs, consts }
    }

    fn fused(&self, i: &[Tensor]) -> Result<Tensor> {
        match self.op {
            Op::Rms => ops::rms_norm(&i[0], &i[1], EPS),
            Op::Layer => ops::layer_norm(&i[0], &i[1], &i[2], EPS),
            Op::Softmax => ops::softmax_last_dim(&i[0]),
            Op::Rope => ops::rope_thd(&i[0], &self.consts[0], &self.consts[1]),
            Op::Gelu => ops::gelu_tanh(&i[0]),
        }
    }

    fn composite(&self, i: &[Tensor]) -> Result<Tensor> {
        match self.op {
            Op::Rms => composite::rms_norm(&i[0], &i[1], EPS),
            Op::Layer => composite::layer_norm(&i[0], &i[1], &i[2], EPS),
            Op::Softmax => composite::softmax_last_dim(&i[0]),
            Op::Rope => composite::rope_thd(&i[0], &self.consts[0], &self.consts[1]),
            Op::Gelu => composite::gelu_tanh(&i[0]),
        }
    }

    fn candle_nn(&self, i: &[Tensor]) -> Result<Tensor> {
        match self.op {
            Op::Rms => candle_nn::ops::rms_norm(&i[0], &i[1], EPS as f32),
            Op::Layer => candle_nn::ops::layer_norm(&i[0], &i[1], &i[2], EPS as f32),
            Op::Softmax => candle_nn::ops::softmax_last_dim(&i[0]),
            Op::Rope => {
                let t = i[0].dim(1)?;
                let cs = |c: &Tensor| c.narrow(0, 0, t).unwrap().contiguous().unwrap();
                candle_nn::rotary_emb::rope_thd(&i[0], &cs(&self.consts[0]), &cs(&self.consts[1]))
            }
            Op::Gelu => i[0].apply(&candle_nn::Activation::GeluPytorchTanh),
        }
    }

    /// Output and the gradients of `Σ f(inputs) ⊙ upstream` w.r.t. every differentiable input.
    fn grads(&self, f: impl Fn(&[Tensor]) -> Result<Tensor>, upstream: &Tensor) -> (Tensor, Vec<Tensor>) {
        let vars: Vec<Var> = self.inputs.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
        let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let y = f(&ts).unwrap();
        let loss = (&y * upstream.to_dtype(y.dtype()).unwrap()).unwrap().sum_all().unwrap();
        let store = loss.backward().unwrap();
        let grads = ts.iter().map(|t| store.get(t).expect("every input gets a gradient").clone()).collect();
        (y, grads)
    }
}

const OPS: [Op; 5] = [Op::Rms, Op::Layer, Op::Softmax, Op::Rope, Op::Gelu];

/// Shapes per op: last dims that are and are not multiples of 8, and sizes past the single-thread
/// threshold. Rope shapes are (b, t, heads, d).
fn shapes(op: Op) -> Vec<Vec<usize>> {
    match op {
        Op::Rope => {
            vec![vec![1, 1, 1, 2], vec![1, 5, 3, 6], vec![2, 7, 4, 16], vec![1, 33, 5, 18], vec![2, 70, 4, 130]]
        }
        _ => vec![vec![1, 1], vec![3, 7], vec![2, 5, 13], vec![4, 100], vec![64, 1027], vec![300, 64], vec![2, 3, 33]],
    }
}

#[test]
fn forward_matches_candle_nn_kernels_f32() {
    let mut rng = Rng(1);
    for op in OPS {
        let mut worst = 0f64;
        for shape in shapes(op) {
            let case = Case::new(op, &shape, DType::F32, &mut rng);
            let got = case.fused(&case.inputs).unwrap();
            let want = case.candle_nn(&case.inputs).unwrap();
            let d = abs_diff(&got, &want) / max_abs(&want).max(1.0);
            assert!(d < 1e-6, "{op:?} {shape:?}: {d:e}");
            worst = worst.max(d);
        }
        println!("{op:?}: f32 forward vs candle_nn max |Δ| / max(|y|, 1) = {worst:e}");
    }
}

#[test]
fn softmax_gives_masked_entries_exactly_zero() {
    let x = Tensor::new(
        &[
            [0.5f32, f32::NEG_INFINITY, -1.0, f32::NEG_INFINITY],
            [f32::NEG_INFINITY, 2.0, f32::NEG_INFINITY, f32::NEG_INFINITY],
        ],
        &Device::Cpu,
    )
    .unwrap();
    let got = ops::softmax_last_dim(&x).unwrap();
    let want = candle_nn::ops::softmax_last_dim(&x).unwrap();
    assert!(abs_diff(&got, &want) < 1e-7);
    let rows = got.to_vec2::<f32>().unwrap();
    assert_eq!((rows[0][1], rows[0][3], rows[1][0], rows[1][1]), (0.0, 0.0, 0.0, 1.0));
}

#[test]
fn gradients_match_finite_differences_f64() {
    let mut rng = Rng(2);
    for op in OPS {
        let mut worst = 0f64;
        let small = match op {
            Op::Rope => vec![vec![2, 3, 2, 6], vec![1, 4, 3, 10]],
            _ => vec![vec![3, 5], vec![2, 2, 13], vec![1, 9]],
        };
        for shape in small {
            let case = Case::new(op, &shape, DType::F64, &mut rng);
            let upstream = rng.tensor(case.inputs[0].dims(), 0.0, 1.0, DType::F64);
            let (_, analytic) = case.grads(|i| case.fused(i), &upstream);
            let loss = |inputs: &[Tensor]| -> f64 {
                (case.fused(inputs).unwrap() * &upstream).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap()
            };
            for (k, grad) in analytic.iter().enumerate() {
                let base: Vec<f64> = case.inputs[k].flatten_all().unwrap().to_vec1().unwrap();
                let h = 1e-6;
                let numeric: Vec<f64> = (0..base.len())
                    .map(|j| {
                        let at = |delta: f64| {
                            let mut v = base.clone();
                            v[j] += delta;
                            let mut inputs = case.inputs.clone();
                            inputs[k] = Tensor::from_vec(v, case.inputs[k].shape(), &Device::Cpu).unwrap();
                            loss(&inputs)
                        };
                        (at(h) - at(-h)) / (2.0 * h)
                    })
                    .collect();
                let numeric = Tensor::from_vec(numeric, grad.shape(), &Device::Cpu).unwrap();
                let d = rel_diff(grad, &numeric);
                assert!(d < 1e-7, "{op:?} {shape:?} input {k}: analytic vs numeric {d:e}");
                worst = worst.max(d);
            }
        }
        println!("{op:?}: f64 gradient vs central differences, max rel |Δ| = {worst:e}");
    }
}

#[test]
fn gradients_match_composed_candle_ops() {
    // f64: the two agree to rounding.
    let mut rng = Rng(3);
    for op in OPS {
        let mut worst = (0f64, 0f64);
        for shape in shapes(op) {
            let case = Case::new(op, &shape, DType::F64, &mut rng);
            let upstream = rng.tensor(case.inputs[0].dims(), 0.0, 1.0, DType::F64);
            let (y1, g1) = case.grads(|i| case.fused(i), &upstream);
            let (y2, g2) = case.grads(|i| case.composite(i), &upstream);
            worst.0 = worst.0.max(rel_diff(&y1, &y2));
            for (a, b) in g1.iter().zip(&g2) {
                worst.1 = worst.1.max(rel_diff(a, b));
            }
            // candle's gelu backward rounds its constants to six digits (0.797885, 0.0535161, …):
            // ~2e-7 off. The fused gradient matches central differences to 1e-7 in the test above.
            let grad_tol = if matches!(op, Op::Gelu) { 1e-6 } else { 1e-12 };
            assert!(worst.0 < 1e-13 && worst.1 < grad_tol, "{op:?} {shape:?}: {worst:?}");
        }
        println!("{op:?} f64: fused vs composed ops, max rel |Δ| forward {:e}, gradients {:e}", worst.0, worst.1);
    }
    // f32: both against the f64 result on the same values; the fused op is at least as accurate.
    let mut rng = Rng(3);
    for op in OPS {
        let mut worst = [0f64; 4];
        for shape in shapes(op) {
            let case = Case::new(op, &shape, DType::F32, &mut rng);
            let upstream = rng.tensor(case.inputs[0].dims(), 0.0, 1.0, DType::F32);
            let widen = |ts: &[Tensor]| -> Vec<Tensor> { ts.iter().map(|t| t.to_dtype(DType::F64).unwrap()).collect() };
            let truth = Case { op, inputs: widen(&case.inputs), consts: widen(&case.consts) };
            let (y0, g0) = truth.grads(|i| truth.fused(i), &upstream.to_dtype(DType::F64).unwrap());
            let (y1, g1) = case.grads(|i| case.fused(i), &upstream);
            let (y2, g2) = case.grads(|i| case.composite(i), &upstream);
            let (fy, cy) = (rel_diff(&y1, &y0), rel_diff(&y2, &y0));
            assert!(fy <= 1e-6_f64.max(1.5 * cy), "{op:?} {shape:?}: forward error {fy:e} (composed {cy:e})");
            worst[0] = worst[0].max(fy);
            worst[1] = worst[1].max(cy);
            for (k, ((a, b), t)) in g1.iter().zip(&g2).zip(&g0).enumerate() {
                let (fe, ce) = (rel_diff(a, t), rel_diff(b, t));
                assert!(
                    fe <= 2e-6_f64.max(1.5 * ce),
                    "{op:?} {shape:?}: gradient of input {k} error {fe:e} (composed {ce:e})"
                );
                worst[2] = worst[2].max(fe);
                worst[3] = worst[3].max(ce);
            }
        }
        println!(
            "{op:?} f32 vs f64 truth, max rel |Δ|: forward fused {:e} / composed {:e}; gradients fused {:e} / composed {:e}",
            worst[0], worst[1], worst[2], worst[3]
        );
    }
}

#[test]
fn strided_inputs_and_upstream_gradients() {
    let mut rng = Rng(4);
    // A transposed x and a transposed upstream gradient (from a later transpose in the graph).
    for op in [Op::Rms, Op::Layer, Op::Softmax, Op::Gelu] {
        let case = Case::new(op, &[37, 19], DType::F32, &mut rng);
        let xt = case.inputs[0].t().unwrap().contiguous().unwrap(); // (19, 37)
        let f = |i: &[Tensor], fused: bool| -> Result<Tensor> {
            let mut i = i.to_vec();
            i[0] = i[0].t()?; // back to (37, 19), strided
            let y = if fused { case.fused(&i)? } else { case.composite(&i)? };
            y.t()?.sqr() // the upstream gradient of y arrives strided
        };
        let mut inputs = case.inputs.clone();
        inputs[0] = xt;
        let case = Case { op, inputs, consts: vec![] };
        let up = rng.tensor(&[19, 37], 0.0, 1.0, DType::F32);
        let (y1, g1) = case.grads(|i| f(i, true), &up);
        let (y2, g2) = case.grads(|i| f(i, false), &up);
        assert!(rel_diff(&y1, &y2) < 2e-6);
        for (a, b) in g1.iter().zip(&g2) {
            assert!(rel_diff(a, b) < 2e-6, "{op:?}: {:e}", rel_diff(a, b));
        }
    }
}

#[test]
fn half_precision_matches_f32_to_its_precision() {
    let mut rng = Rng(5);
    // (dtype, unit roundoff u): the output is one rounding of an f32 result, within u relative.
    for (dtype, u) in [(DType::BF16, 2f64.powi(-8)), (DType::F16, 2f64.powi(-11))] {
        for op in OPS {
            for shape in shapes(op) {
                let case32 = Case::new(op, &shape, DType::F32, &mut rng);
                let narrow = |t: &Tensor| t.to_dtype(dtype).unwrap();
                let widen =
                    |ts: &[Tensor]| -> Vec<Tensor> { ts.iter().map(|t| t.to_dtype(DType::F32).unwrap()).collect() };
                // The same (representable) values in both precisions.
                let case16 = Case {
                    op,
                    inputs: case32.inputs.iter().map(narrow).collect(),
                    consts: case32.consts.iter().map(narrow).collect(),
                };
                let case32 = Case { op, inputs: widen(&case16.inputs), consts: widen(&case16.consts) };
                let up = rng.tensor(case32.inputs[0].dims(), 0.0, 1.0, dtype);
                let (y16, g16) = case16.grads(|i| case16.fused(i), &up);
                let (y32, g32) = case32.grads(|i| case32.fused(i), &up);
                let fwd = abs_diff(&y16, &y32) / max_abs(&y32);
                assert!(fwd <= u, "{op:?} {shape:?} {dtype:?}: forward {fwd:e}");
                for (k, (a, b)) in g16.iter().zip(&g32).enumerate() {
                    // Weight gradients sum over rows in f32 and round once; dx also rounds once.
                    let d = rel_diff(a, b);
                    assert!(d <= 2.0 * u, "{op:?} {shape:?} {dtype:?}: gradient of input {k} {d:e}");
                }
                // candle_nn's 16-bit norms and rope agree within a few ulps. Its 16-bit softmax
                // exponentiates and sums in 16 bits (off by tens of percent on long rows in bf16).
                if !matches!(op, Op::Softmax) {
                    let nn = case16.candle_nn(&case16.inputs).unwrap();
                    let d = abs_diff(&y16, &nn) / max_abs(&y32);
                    assert!(d <= 4.0 * u, "{op:?} {shape:?} {dtype:?}: vs candle_nn {d:e}");
                }
            }
        }
    }
}

#[test]
fn rope_backward_is_the_inverse_rotation() {
    // Rotating then rotating back: the gradient of Σ rope(x) ⊙ rope(u) is u (a rotation is
    // orthogonal), for any x.
    let mut rng = Rng(6);
    let case = Case::new(Op::Rope, &[2, 9, 3, 20], DType::F64, &mut rng);
    let u = rng.tensor(&[2, 9, 3, 20], 0.0, 1.0, DType::F64);
    let ru = ops::rope_thd(&u, &case.consts[0], &case.consts[1]).unwrap();
    let (_, g) = case.grads(|i| case.fused(i), &ru);
    assert!(abs_diff(&g[0], &u) < 1e-12);
}

#[test]
fn norm_modules_load_checkpoint_names_and_initialise_fresh_vars() {
    use candle_core::Module;
    use candle_nn::{VarBuilder, VarMap};
    let map = VarMap::new();
    let vb = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
    let ln = ops::LayerNorm::load(6, 1e-6, vb.pp("ln")).unwrap();
    let rms = ops::RmsNorm::load(6, 1e-6, vb.pp("rms")).unwrap();
    let mut names: Vec<String> = map.data().lock().unwrap().keys().cloned().collect();
    names.sort();
    assert_eq!(names, ["ln.bias", "ln.weight", "rms.weight"]);
    let x = Tensor::new(&[[1f32, 2., 3., 4., 5., 6.]], &Device::Cpu).unwrap();
    let want = candle_nn::LayerNorm::new(
        Tensor::ones(6, DType::F32, &Device::Cpu).unwrap(),
        Tensor::zeros(6, DType::F32, &Device::Cpu).unwrap(),
        1e-6,
    );
    assert!(abs_diff(&ln.forward(&x).unwrap(), &want.forward(&x).unwrap()) < 1e-6);
    let want = candle_nn::RmsNorm::new(Tensor::ones(6, DType::F32, &Device::Cpu).unwrap(), 1e-6);
    assert!(abs_diff(&rms.forward(&x).unwrap(), &want.forward(&x).unwrap()) < 1e-6);
}

#[test]
fn weighted_gather_matches_composed_ops_and_finite_differences() {
    let mut rng = Rng(7);
    let (rows, width, n, taps) = (9, 13, 40, 4);
    let idx: Vec<u32> = (0..n * taps).map(|i| ((i * 7 + i / 3) % rows) as u32).collect();
    let w: Vec<f32> = (0..n * taps).map(|_| rng.uniform() as f32).collect();
    // f64: gradient against central differences (the loss is linear in the table: exact up to rounding).
    let table = rng.tensor(&[rows, width], 0.0, 1.0, DType::F64);
    let up = rng.tensor(&[n, width], 0.0, 1.0, DType::F64);
    let case = |t: &Tensor| ops::weighted_gather(t, idx.clone(), w.clone(), taps);
    let var = Var::from_tensor(&table).unwrap();
    let loss = (case(var.as_tensor()).unwrap() * &up).unwrap().sum_all().unwrap();
    let grad = loss.backward().unwrap().get(var.as_tensor()).unwrap().clone();
    let base: Vec<f64> = table.flatten_all().unwrap().to_vec1().unwrap();
    let numeric: Vec<f64> = (0..base.len())
        .map(|j| {
            let at = |d: f64| {
                let mut v = base.clone();
                v[j] += d;
                let t = Tensor::from_vec(v, (rows, width), &Device::Cpu).unwrap();
                (case(&t).unwrap() * &up).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap()
            };
            (at(1e-6) - at(-1e-6)) / 2e-6
        })
        .collect();
    let numeric = Tensor::from_vec(numeric, (rows, width), &Device::Cpu).unwrap();
    assert!(rel_diff(&grad, &numeric) < 1e-7, "{:e}", rel_diff(&grad, &numeric));
    // f32 and bf16: forward and gradient equal to index_select → broadcast_mul → sum.
    for (dtype, tol) in [(DType::F32, 1e-6), (DType::BF16, 1e-2)] {
        let table = table.to_dtype(dtype).unwrap();
        let up = up.to_dtype(dtype).unwrap();
        let run = |fused: bool| {
            let var = Var::from_tensor(&table).unwrap();
            let y = if fused {
                case(var.as_tensor()).unwrap()
            } else {
                composite::weighted_gather(var.as_tensor(), &idx, &w, taps).unwrap()
            };
            let g = (&y * &up).unwrap().sum_all().unwrap().backward().unwrap().get(var.as_tensor()).unwrap().clone();
            (y, g)
        };
        let ((y1, g1), (y2, g2)) = (run(true), run(false));
        assert!(rel_diff(&y1, &y2) < tol && rel_diff(&g1, &g2) < tol, "{dtype:?}");
    }
    assert!(ops::weighted_gather(&table, vec![rows as u32; 4], vec![0.25; 4], 4).is_err(), "index out of range");
}

/// (rows, heads, kv_heads, d, spans): rows outside every span, grouped queries, one-row and empty
/// spans, and a 1,100-row span whose score matrix exceeds the kernel's block budget (its queries go
/// in several blocks).
type VarlenCase = (usize, usize, usize, usize, Vec<(usize, usize)>);

fn varlen_cases() -> Vec<VarlenCase> {
    vec![
        (7, 1, 1, 4, vec![(0, 7)]),
        (20, 4, 2, 8, vec![(0, 5), (5, 1), (8, 0), (9, 11)]),
        (30, 3, 3, 6, vec![(2, 9), (12, 14)]),
        (1100, 2, 1, 4, vec![(0, 1100)]),
    ]
}

/// Output and gradients (q, k, v) of `Σ attention(q, k, v) ⊙ upstream`.
fn varlen_grads(fused: bool, qkv: &[Tensor], up: &Tensor, spans: &[(usize, usize)], causal: bool) -> Vec<Tensor> {
    let vars: Vec<Var> = qkv.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
    let [q, k, v] = [0, 1, 2].map(|i| vars[i].as_tensor().clone());
    let f = if fused { ops::varlen_attention } else { composite::varlen_attention };
    let y = f(&q, &k, &v, spans, 0.4, causal).unwrap();
    let store = (&y * up).unwrap().sum_all().unwrap().backward().unwrap();
    let grads = [&q, &k, &v].map(|t| store.get(t).expect("every input gets a gradient").clone());
    std::iter::once(y).chain(grads).collect()
}

#[test]
fn varlen_attention_matches_composed_ops() {
    let mut rng = Rng(11);
    for (dtype, tol) in [(DType::F64, 1e-10), (DType::F32, 1e-5), (DType::BF16, 2e-2)] {
        for (rows, heads, kv_heads, d, spans) in varlen_cases() {
            for causal in [false, true] {
                let qkv = [heads, kv_heads, kv_heads].map(|h| rng.tensor(&[rows, h, d], 0.0, 1.0, dtype));
                let up = rng.tensor(&[rows, heads, d], 0.0, 1.0, dtype);
                // The reference runs in f64 on the same (rounded) inputs.
                let wide: Vec<Tensor> = qkv.iter().map(|t| t.to_dtype(DType::F64).unwrap()).collect();
                let want = varlen_grads(false, &wide, &up.to_dtype(DType::F64).unwrap(), &spans, causal);
                let got = varlen_grads(true, &qkv, &up, &spans, causal);
                for (what, (g, w)) in ["out", "dq", "dk", "dv"].iter().zip(got.iter().zip(&want)) {
                    let diff = rel_diff(g, w);
                    assert!(
                        diff < tol,
                        "{dtype:?} {rows}x{heads}/{kv_heads}x{d} {spans:?} causal {causal}: {what} off by {diff:e}"
                    );
                }
                // Rows outside every span get zeros and no gradient.
                for r in (0..rows).filter(|r| !spans.iter().any(|&(s, l)| (s..s + l).contains(r))) {
                    for t in &got {
                        assert_eq!(max_abs(&t.get(r).unwrap()), 0.0, "row {r} outside the spans {spans:?}");
                    }
                }
            }
        }
    }
    let t = |h: usize| Tensor::zeros((6, h, 4), DType::F32, &Device::Cpu).unwrap();
    for (heads, kv, spans) in [(4, 3, vec![(0, 6)]), (2, 1, vec![(0, 4), (3, 3)]), (2, 1, vec![(2, 5)])] {
        assert!(
            ops::varlen_attention(&t(heads), &t(kv), &t(kv), &spans, 1.0, false).is_err(),
            "{heads}/{kv} {spans:?}"
        );
    }
}

#[test]
fn varlen_attention_gradients_match_finite_differences() {
    let mut rng = Rng(12);
    let spans = [(0, 2), (3, 4)];
    for causal in [false, true] {
        let qkv = [2, 1, 1].map(|h| rng.tensor(&[7, h, 3], 0.0, 1.0, DType::F64));
        let up = rng.tensor(&[7, 2, 3], 0.0, 1.0, DType::F64);
        let analytic = varlen_grads(true, &qkv, &up, &spans, causal);
        for (i, grad) in analytic[1..].iter().enumerate() {
            let base: Vec<f64> = qkv[i].flatten_all().unwrap().to_vec1().unwrap();
            let numeric: Vec<f64> = (0..base.len())
                .map(|j| {
                    let at = |delta: f64| {
                        let mut inputs = qkv.clone();
                        let mut v = base.clone();
                        v[j] += delta;
                        inputs[i] = Tensor::from_vec(v, qkv[i].shape(), &Device::Cpu).unwrap();
                        let y = ops::varlen_attention(&inputs[0], &inputs[1], &inputs[2], &spans, 0.4, causal).unwrap();
                        (y * &up).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap()
                    };
                    (at(1e-6) - at(-1e-6)) / 2e-6
                })
                .collect();
            let numeric = Tensor::from_vec(numeric, grad.shape(), &Device::Cpu).unwrap();
            let diff = rel_diff(grad, &numeric);
            assert!(diff < 1e-7, "input {i} causal {causal}: analytic vs numeric {diff:e}");
        }
    }
}
