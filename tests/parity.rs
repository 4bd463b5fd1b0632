//! Numerical parity with the HF transformers reference on a tiny random PaddleOCR-VL checkpoint.
//!
//! The fixtures come from `tools/reference/make_fixtures.py` (transformers 5.23, eager attention,
//! f32). The checkpoint uses the released model's tensor names and file layout and is loaded through
//! the same code path as real weights.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use candle_core::{DType, Device, Tensor};

use folio::engine::greedy::{generate_greedy, ImageRequest};
use folio::models::kv::{DenseKvCache, SeqChunk, StepLayout};
use folio::models::paddleocr_vl::{prompt_positions, Checkpoint, PatchGrid, PreparedImage, Task};

const IMAGES: [&str; 3] = ["wide", "tall", "square"];
const TOL: f32 = 1e-4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

struct Reference {
    tensors: HashMap<String, Tensor>,
}

impl Reference {
    fn load() -> Result<Self> {
        let path = fixtures().join("tiny-paddleocr-vl-reference/reference.safetensors");
        Ok(Self { tensors: candle_core::safetensors::load(path, &Device::Cpu)? })
    }

    fn get(&self, image: &str, what: &str) -> Tensor {
        let key = format!("{image}.{what}");
        self.tensors.get(&key).unwrap_or_else(|| panic!("reference has no {key}")).clone()
    }

    fn ids(&self, image: &str, what: &str) -> Vec<u32> {
        let t = self.get(image, what).flatten_all().unwrap().to_dtype(DType::I64).unwrap();
        t.to_vec1::<i64>().unwrap().into_iter().map(|v| v as u32).collect()
    }

    /// The processor's own patches for `image`, so model parity does not depend on resizing.
    fn prepared(&self, image: &str) -> PreparedImage {
        let g = self.ids(image, "grid_thw");
        assert_eq!(g[0], 1);
        PreparedImage {
            patches: self.get(image, "pixel_values"),
            grid: PatchGrid { rows: g[1] as usize, cols: g[2] as usize },
        }
    }
}

fn reference_json() -> serde_json::Value {
    let path = fixtures().join("tiny-paddleocr-vl-reference/reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn checkpoint() -> Checkpoint {
    Checkpoint::load(&fixtures().join("tiny-paddleocr-vl"), DType::F32, &Device::Cpu).expect("fixture checkpoint loads")
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn vision_features_match_reference() {
    let (ck, r) = (checkpoint(), Reference::load().unwrap());
    for name in IMAGES {
        let img = r.prepared(name);
        let got = ck.model.vision_features(&[&img]).unwrap();
        let diff = max_abs_diff(&got, &r.get(name, "vision_features"));
        println!("{name}: vision max |Δ| = {diff:e}");
        assert!(diff <= TOL, "{name}: vision features differ by {diff}");
    }
}

#[test]
fn packed_images_equal_each_alone() {
    let (ck, r) = (checkpoint(), Reference::load().unwrap());
    let imgs: Vec<PreparedImage> = IMAGES.iter().map(|n| r.prepared(n)).collect();
    let refs: Vec<&PreparedImage> = imgs.iter().collect();
    let packed = ck.model.vision_features(&refs).unwrap();
    let batched_ref = r.tensors["batched.vision_features"].clone();
    assert!(max_abs_diff(&packed, &batched_ref) <= TOL);
    let alone: Vec<Tensor> = imgs.iter().map(|i| ck.model.vision_features(&[i]).unwrap()).collect();
    let diff = max_abs_diff(&packed, &Tensor::cat(&alone, 0).unwrap());
    println!("packed vs alone max |Δ| = {diff:e}");
    assert!(diff <= 1e-5);
}

#[test]
fn projector_matches_reference() {
    let (ck, r) = (checkpoint(), Reference::load().unwrap());
    for name in IMAGES {
        let img = r.prepared(name);
        let got = ck.model.encode_images(&[&img]).unwrap().remove(0);
        let diff = max_abs_diff(&got, &r.get(name, "projector"));
        println!("{name}: projector max |Δ| = {diff:e}");
        assert!(diff <= TOL, "{name}: projector output differs by {diff}");
    }
}

#[test]
fn prompt_ids_and_positions_match_reference() {
    let (ck, r) = (checkpoint(), Reference::load().unwrap());
    for name in IMAGES {
        let img = r.prepared(name);
        let ids = ck.prompts.encode(&[ck.model.image_tokens(img.grid)], Task::Ocr.prompt()).unwrap();
        assert_eq!(ids, r.ids(name, "input_ids"), "{name}: prompt ids");
        let merge = ck.model.cfg.vision.spatial_merge_size;
        let (pos, _) = prompt_positions(&ids, ck.prompts.image_token_id(), &[img.grid], merge).unwrap();
        let want = r.get(name, "position_ids").to_dtype(DType::I64).unwrap().to_vec2::<i64>().unwrap();
        for (i, p) in pos.iter().enumerate() {
            assert_eq!(p.map(i64::from), [want[0][i], want[1][i], want[2][i]], "{name}: position of token {i}");
        }
    }
}

#[test]
fn prompt_logits_match_reference() {
    let (ck, r) = (checkpoint(), Reference::load().unwrap());
    let m = &ck.model;
    let t = &m.cfg.text;
    for name in IMAGES {
        let img = r.prepared(name);
        let ids = r.ids(name, "input_ids");
        let embeds = m.encode_images(&[&img]).unwrap().remove(0);
        let x = m.prompt_embeddings(&ids, 0..ids.len(), Some(&embeds)).unwrap();
        let (pos, _) = prompt_positions(&ids, ck.prompts.image_token_id(), &[img.grid], 2).unwrap();
        let layout = StepLayout { chunks: vec![SeqChunk { seq: 0, cached: 0, new: ids.len() }] };
        let mut cache = DenseKvCache::new(
            1,
            t.num_hidden_layers,
            ids.len(),
            t.num_key_value_heads,
            t.head_dim,
            DType::F32,
            &Device::Cpu,
        )
        .unwrap();
        let hidden = m.decode_step(&x, &pos, &layout, &mut cache).unwrap();
        let diff = max_abs_diff(&m.logits(&hidden).unwrap(), &r.get(name, "prompt_logits"));
        println!("{name}: prompt logits max |Δ| = {diff:e}");
        assert!(diff <= TOL, "{name}: logits differ by {diff}");
    }
}

#[test]
fn greedy_tokens_match_reference_alone_and_batched() {
    let (ck, r) = (checkpoint(), Reference::load().unwrap());
    let imgs: Vec<PreparedImage> = IMAGES.iter().map(|n| r.prepared(n)).collect();
    let request = |image| ImageRequest { image, instruction: Task::Ocr.prompt(), max_new_tokens: 20 };
    let batched = generate_greedy(&ck, &imgs.iter().map(request).collect::<Vec<_>>()).unwrap();
    for ((name, img), together) in IMAGES.iter().zip(&imgs).zip(&batched) {
        let alone = generate_greedy(&ck, &[request(img)]).unwrap().remove(0);
        assert_eq!(alone.tokens, r.ids(name, "greedy_tokens"), "{name}: greedy tokens alone");
        assert_eq!(together, &alone, "{name}: batched differs from alone");
        let text = ck.prompts.decode(&alone.tokens).unwrap();
        let reference = reference_json();
        let entry = reference["images"].as_array().unwrap().iter().find(|e| e["name"] == *name).unwrap().clone();
        assert_eq!(text, entry["greedy_text"].as_str().unwrap(), "{name}: decoded text");
    }
}

#[test]
fn preprocessing_matches_reference_processor() {
    let (ck, r) = (checkpoint(), Reference::load().unwrap());
    for name in IMAGES {
        let img = image::open(fixtures().join(format!("images/{name}.png"))).unwrap();
        let ours = ck.images.prepare(&img).unwrap();
        let theirs = r.prepared(name);
        assert_eq!(ours.grid, theirs.grid, "{name}: grid");
        let diff = (&ours.patches - &theirs.patches).unwrap().abs().unwrap();
        let max = diff.flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        let mean = diff.mean_all().unwrap().to_scalar::<f32>().unwrap();
        println!("{name}: pixel max |Δ| = {max:e}, mean |Δ| = {mean:e}");
        if name == "wide" {
            // Already the target size: no resampling, so the values must be identical.
            assert!(max < 1e-6, "{name}: {max}");
        } else {
            // PIL's fixed-point bicubic and the image crate's differ by a few levels on edges.
            assert!(mean < 0.02, "{name}: mean |Δ| {mean}");
        }
    }
}
