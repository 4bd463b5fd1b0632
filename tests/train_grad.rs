//! Training through the inference forward path: a cross-entropy loss on the tiny fixture model
//! reaches every weight (vision tower, projector, decoder, lm_head) with a finite, non-zero and
//! correct gradient. Two image prompts are packed in one step, attended with [`NoKvCache`].

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};

use folio::models::kv::{DenseKvCache, KvCache, SeqChunk, StepLayout};
use folio::models::no_cache::NoKvCache;
use folio::models::paddleocr_vl::{
    prompt_positions, Config, ImageProcessor, PaddleOcrVl, PreparedImage, PreprocessorConfig, PromptBuilder, Task,
};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-paddleocr-vl")
}

/// The fixture model with every weight a variable of `map`, set from the checkpoint.
fn trainable_model() -> (PaddleOcrVl, VarMap) {
    let dir = fixture();
    let cfg = Config::from_file(&dir.join("config.json")).unwrap();
    let map = VarMap::new();
    let model = PaddleOcrVl::new(cfg, VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu)).unwrap();
    let mut map = map;
    map.load(dir.join("model.safetensors")).unwrap();
    (model, map)
}

/// Two (image, prompt ++ target) samples packed as one step.
struct Batch {
    images: Vec<PreparedImage>,
    ids: Vec<Vec<u32>>,
    prompt_len: Vec<usize>,
}

fn batch(model: &PaddleOcrVl) -> Batch {
    let dir = fixture();
    let prompts = PromptBuilder::from_dir(&dir, &model.cfg).unwrap();
    let processor = ImageProcessor::new(PreprocessorConfig::from_file(&dir.join("preprocessor_config.json")).unwrap());
    let targets: [&[u32]; 2] = [&[17, 301, 42, 99, 7], &[250, 3, 77]];
    let mut b = Batch { images: vec![], ids: vec![], prompt_len: vec![] };
    for (name, target) in ["square", "wide"].into_iter().zip(targets) {
        let img = image::open(dir.join(format!("../images/{name}.png"))).unwrap();
        let img = processor.prepare(&img).unwrap();
        let mut ids = prompts.encode(&[model.image_tokens(img.grid)], Task::Ocr.prompt()).unwrap();
        b.prompt_len.push(ids.len());
        ids.extend_from_slice(target);
        b.ids.push(ids);
        b.images.push(img);
    }
    b
}

/// Final hidden states of the packed batch through `cache`, and the mean cross-entropy of the
/// targets.
fn forward(model: &PaddleOcrVl, b: &Batch, cache: &mut dyn KvCache) -> (Tensor, Tensor) {
    let image_id = model.cfg.tokens.image_token_id;
    let merge = model.cfg.vision.spatial_merge_size;
    let embeds = model.encode_images(&b.images.iter().collect::<Vec<_>>()).unwrap();
    let (mut xs, mut positions, mut chunks, mut rows, mut labels) = (vec![], vec![], vec![], vec![], vec![]);
    let mut start = 0u32;
    for (i, ids) in b.ids.iter().enumerate() {
        xs.push(model.prompt_embeddings(ids, 0..ids.len(), Some(&embeds[i])).unwrap());
        positions.extend(prompt_positions(ids, image_id, &[b.images[i].grid], merge).unwrap().0);
        chunks.push(SeqChunk { seq: i, cached: 0, new: ids.len() });
        // Row p−1+j predicts target token j.
        for (j, &label) in ids.iter().enumerate().skip(b.prompt_len[i]) {
            rows.push(start + j as u32 - 1);
            labels.push(label);
        }
        start += ids.len() as u32;
    }
    let layout = StepLayout { chunks };
    let hidden = model.decode_step(&Tensor::cat(&xs, 0).unwrap(), &positions, &layout, cache).unwrap();
    let rows = Tensor::new(rows.as_slice(), &Device::Cpu).unwrap();
    let logits = model.logits(&hidden.index_select(&rows, 0).unwrap()).unwrap();
    let labels = Tensor::new(labels.as_slice(), &Device::Cpu).unwrap();
    let loss = candle_nn::loss::cross_entropy(&logits, &labels).unwrap();
    (hidden, loss)
}

fn scalar(t: &Tensor) -> f64 {
    t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
}

#[test]
fn no_kv_cache_forward_equals_the_dense_cache() {
    let (model, _map) = trainable_model();
    let b = batch(&model);
    let (fresh, _) = forward(&model, &b, &mut NoKvCache);
    let t = &model.cfg.text;
    let longest = b.ids.iter().map(Vec::len).max().unwrap();
    let mut dense =
        DenseKvCache::new(2, t.num_hidden_layers, longest, t.num_key_value_heads, t.head_dim, DType::F32, &Device::Cpu)
            .unwrap();
    let (cached, _) = forward(&model, &b, &mut dense);
    // The two attention paths sum in different orders (a fused kernel vs candle matmuls): equal to
    // f32 rounding, relative to the size of the hidden states.
    let scale = scalar(&cached.abs().unwrap().max_all().unwrap());
    let diff = scalar(&(fresh - cached).unwrap().abs().unwrap().max_all().unwrap()) / scale;
    assert!(diff < 1e-6, "NoKvCache vs DenseKvCache max |Δ| / max |h| = {diff:e}");
}

#[test]
fn no_kv_cache_refuses_cached_tokens() {
    let q = Tensor::zeros((2, 4, 8), DType::F32, &Device::Cpu).unwrap();
    let k = Tensor::zeros((2, 2, 8), DType::F32, &Device::Cpu).unwrap();
    let layout = StepLayout { chunks: vec![SeqChunk { seq: 0, cached: 3, new: 2 }] };
    assert!(NoKvCache.attend(0, &layout, &q, &k, &k, 1.0).is_err());
}

#[test]
fn every_weight_gets_a_correct_gradient() {
    let (model, map) = trainable_model();
    let b = batch(&model);
    let (_, loss) = forward(&model, &b, &mut NoKvCache);
    let l0 = scalar(&loss);
    let grads = loss.backward().unwrap();
    let vars: Vec<(String, Var)> = {
        let data = map.data().lock().unwrap();
        let mut v: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    for prefix in ["visual.vision_model.", "mlp_AR.", "model.", "lm_head."] {
        assert!(vars.iter().any(|(n, _)| n.starts_with(prefix)), "no variables under {prefix}");
    }
    let mut worst = (0f64, String::new());
    for (name, var) in &vars {
        let g = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("{name}: no gradient"));
        let norm = scalar(&g.sqr().unwrap().sum_all().unwrap()).sqrt();
        assert!(norm.is_finite() && norm > 0.0, "{name}: gradient norm {norm}");
        // The loss along the unit gradient direction changes at rate |g| (central difference; the
        // step shrinks where |g| is large, as the curvature tends to be too).
        let w = var.as_tensor().copy().unwrap();
        let dir = (g / norm).unwrap();
        let eps = 1e-2 / norm.max(1.0);
        let at = |s: f64| {
            var.set(&(&w + (&dir * s).unwrap()).unwrap()).unwrap();
            scalar(&forward(&model, &b, &mut NoKvCache).1)
        };
        let slope = (at(eps) - at(-eps)) / (2.0 * eps);
        var.set(&w).unwrap();
        let err = (slope - norm).abs() / norm;
        if err > worst.0 {
            worst = (err, name.clone());
        }
        assert!(err < 5e-3, "{name}: |g| = {norm:e}, finite-difference slope {slope:e}");
    }
    println!(
        "loss {l0:.4}; {} variables, all with gradients; worst |slope − |g|| / |g| = {:e} ({})",
        vars.len(),
        worst.0,
        worst.1
    );
}
