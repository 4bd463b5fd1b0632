//! The files of folio's small model in the Hugging Face layout of PaddleOCR-VL — the same spelling
//! as the released checkpoint, so it loads through the same code path.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use candle_core::{DType, Device, Tensor};
use serde_json::{json, Value};

use super::tokenizer::{self, special_id};
use crate::models::paddleocr_vl::{reading, ReadingSpec};

/// Widths and depths of a model of the PaddleOCR-VL architecture.
#[derive(Debug, Clone, Copy)]
pub struct Dims {
    pub vision_hidden: usize,
    pub vision_layers: usize,
    pub vision_heads: usize,
    pub text_hidden: usize,
    pub text_layers: usize,
}

impl Dims {
    /// folio's default model: ~6M parameters.
    pub const SMALL: Dims =
        Dims { vision_hidden: 192, vision_layers: 4, vision_heads: 3, text_hidden: 256, text_layers: 4 };
    /// For tests of the training path: trains in seconds.
    pub const TINY: Dims =
        Dims { vision_hidden: 64, vision_layers: 2, vision_heads: 1, text_hidden: 128, text_layers: 2 };
}

/// The architecture of a small model: PaddleOCR-VL's, scaled down. Heads are 64 wide.
pub fn config_json(vocab_size: usize, d: Dims) -> Value {
    json!({
        "architectures": ["PaddleOCRVLForConditionalGeneration"],
        "model_type": "paddleocr_vl",
        "vocab_size": vocab_size,
        "hidden_size": d.text_hidden,
        "intermediate_size": 3 * d.text_hidden,
        "num_hidden_layers": d.text_layers,
        "num_attention_heads": d.text_hidden / 64,
        "num_key_value_heads": (d.text_hidden / 128).max(1),
        "head_dim": 64,
        "hidden_act": "silu",
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5,
        "rope_theta": 500000,
        "rope_scaling": {"mrope_section": [8, 12, 12], "rope_type": "default", "type": "default"},
        "use_bias": false,
        "tie_word_embeddings": false,
        "pad_token_id": special_id(tokenizer::PAD),
        "bos_token_id": special_id(tokenizer::BOS),
        "eos_token_id": special_id(tokenizer::EOS),
        "image_token_id": special_id(tokenizer::IMAGE),
        "vision_start_token_id": special_id(tokenizer::IMAGE_START),
        "vision_end_token_id": special_id(tokenizer::IMAGE_END),
        "torch_dtype": "float32",
        "vision_config": {
            "model_type": "paddleocr_vl_vision",
            "hidden_size": d.vision_hidden,
            "intermediate_size": 4 * d.vision_hidden,
            "num_hidden_layers": d.vision_layers,
            "num_attention_heads": d.vision_heads,
            "num_channels": 3,
            "image_size": 384,
            "patch_size": 14,
            "hidden_act": "gelu_pytorch_tanh",
            "layer_norm_eps": 1e-6,
            "spatial_merge_size": 2,
            "temporal_patch_size": 1
        }
    })
}

/// Pixels are normalised so that white paper is 0 and ink is negative: with PaddleOCR-VL's own
/// (0.5, 0.5) normalisation, paper is +1 and every background patch embeds to the same large vector;
/// a from-scratch model then sees nearly identical image tokens, its decoder learns to ignore them
/// within a few dozen steps and the vision tower stops getting gradients (measured: loss with real
/// images equal to loss with blank ones after 1,100 steps). With paper at 0 the same model uses the
/// image from the first steps. Only the values change; the preprocessing code is PaddleOCR-VL's.
fn preprocessor_json() -> Value {
    json!({
        "image_processor_type": "PaddleOCRVLImageProcessor",
        "processor_class": "PaddleOCRVLProcessor",
        "do_convert_rgb": true, "do_resize": true, "do_rescale": true, "do_normalize": true,
        "image_mean": [1.0, 1.0, 1.0], "image_std": [0.5, 0.5, 0.5],
        "rescale_factor": 1.0 / 255.0,
        "min_pixels": 28 * 28 * 2,
        "max_pixels": 28 * 28 * 1280,
        "patch_size": 14, "temporal_patch_size": 1, "merge_size": 2, "resample": 3
    })
}

/// PaddleOCR-VL's chat template (current form, ending in `Assistant:\n`).
const CHAT_TEMPLATE: &str = r#"{%- if not add_generation_prompt is defined -%}{%- set add_generation_prompt = true -%}{%- endif -%}
{%- if not cls_token is defined -%}{%- set cls_token = "<|begin_of_sentence|>" -%}{%- endif -%}
{%- if not eos_token is defined -%}{%- set eos_token = "</s>" -%}{%- endif -%}
{{- cls_token -}}
{%- for message in messages -%}
{%- if message["role"] == "user" -%}
{{- "User: " -}}
{%- for content in message["content"] -%}{%- if content["type"] == "image" -%}{{- "<|IMAGE_START|><|IMAGE_PLACEHOLDER|><|IMAGE_END|>" -}}{%- endif -%}{%- endfor -%}
{%- for content in message["content"] -%}{%- if content["type"] == "text" -%}{{- content["text"] -}}{%- endif -%}{%- endfor -%}
{{- "\n" -}}
{%- elif message["role"] == "assistant" -%}
{{- "Assistant: " -}}
{%- for content in message["content"] -%}{%- if content["type"] == "text" -%}{{- content["text"] -}}{%- endif -%}{%- endfor -%}
{{- eos_token -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- "Assistant:\n" -}}{%- endif -%}
"#;

/// Writes everything but the weights into `dir`.
pub fn write_model_files(dir: &Path, chars: &BTreeSet<char>, dims: Dims) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let tok = tokenizer::tokenizer_json(chars);
    let vocab = tok["model"]["vocab"].as_object().map_or(0, |v| v.len());
    let write = |name: &str, v: &Value| -> Result<()> {
        std::fs::write(dir.join(name), serde_json::to_string_pretty(v)? + "\n")?;
        Ok(())
    };
    write("tokenizer.json", &tok)?;
    write("tokenizer_config.json", &tokenizer::tokenizer_config_json())?;
    write("config.json", &config_json(vocab, dims))?;
    write("preprocessor_config.json", &preprocessor_json())?;
    write(
        "generation_config.json",
        &json!({"bos_token_id": special_id(tokenizer::BOS), "eos_token_id": special_id(tokenizer::EOS), "pad_token_id": special_id(tokenizer::PAD)}),
    )?;
    std::fs::write(dir.join("chat_template.jinja"), CHAT_TEMPLATE)?;
    std::fs::write(dir.join(reading::FILE), ReadingSpec::lines(super::LINE_CROP.height).to_json())?;
    Ok(())
}

/// The files besides the weights that a shipped model directory holds.
const SHIPPED: [&str; 7] = [
    reading::FILE,
    "config.json",
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "generation_config.json",
    "chat_template.jinja",
];

/// Copies a model directory's files besides the weights (config, tokenizer, preprocessor, ...).
pub fn copy_model_files(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for name in SHIPPED {
        std::fs::copy(from.join(name), to.join(name))
            .with_context(|| format!("copying {name} from {}", from.display()))?;
    }
    Ok(())
}

/// Adds to the model directory's tokenizer the characters of `chars` it lacks (new ids after the
/// old ones) and raises `vocab_size` in its config (and `text_config`'s, in the nested layout) to
/// cover them. Returns the characters added.
pub fn grow_vocab(dir: &Path, chars: &BTreeSet<char>) -> Result<Vec<char>> {
    let mut tok = read_json(&dir.join("tokenizer.json"))?;
    let added = tokenizer::extend_vocab(&mut tok, chars)?;
    if added.is_empty() {
        return Ok(added);
    }
    let vocab = tok["model"]["vocab"].as_object().map_or(0, |v| v.len()) as u64;
    let mut config = read_json(&dir.join("config.json"))?;
    for pointer in ["/vocab_size", "/text_config/vocab_size"] {
        if let Some(size) = config.pointer_mut(pointer) {
            // A checkpoint may pad its embedding beyond the tokenizer; never shrink it.
            *size = json!(size.as_u64().unwrap_or(0).max(vocab));
        }
    }
    std::fs::write(dir.join("tokenizer.json"), serde_json::to_string_pretty(&tok)? + "\n")?;
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&config)? + "\n")?;
    Ok(added)
}

/// The characters of `chars` that the model directory's tokenizer has no token for.
pub fn lacking_chars(dir: &Path, chars: &BTreeSet<char>) -> Result<Vec<char>> {
    tokenizer::extend_vocab(&mut read_json(&dir.join("tokenizer.json"))?, chars)
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Copies a training checkpoint (`RUN/model`) to `to` for shipping, weights stored as f16 (half
/// the size; the loader converts to the precision asked for). Given several checkpoints of one
/// model (same tokenizer, same tensors), it ships the mean of their weights: checkpoint averaging,
/// as in stochastic weight averaging (Izmailov et al., 2018, "Averaging Weights Leads to Wider
/// Optima and Better Generalization"). Returns the weights' size in bytes.
pub fn ship(from: &[PathBuf], to: &Path) -> Result<u64> {
    let first = from.first().context("no checkpoint to export")?;
    let weights = mean_weights(from, |name| !name.starts_with("aux_"))?
        .into_iter()
        .map(|(name, t)| Ok((name, t.to_dtype(DType::F16)?)))
        .collect::<Result<HashMap<_, _>>>()?;
    copy_model_files(first, to)?;
    let mut config = read_json(&first.join("config.json"))?;
    config["torch_dtype"] = json!("float16");
    std::fs::write(to.join("config.json"), serde_json::to_string_pretty(&config)? + "\n")?;
    let out = to.join("model.safetensors");
    candle_core::safetensors::save(&weights, &out)?;
    Ok(std::fs::metadata(&out)?.len())
}

/// The mean, in f32, of the weights named `keep` of several checkpoints of one model (same
/// tokenizer, same tensors and shapes; refused otherwise).
pub fn mean_weights(from: &[PathBuf], keep: impl Fn(&str) -> bool) -> Result<HashMap<String, Tensor>> {
    let (first, rest) = from.split_first().context("no checkpoint given")?;
    let tokenizer =
        std::fs::read(first.join("tokenizer.json")).with_context(|| format!("reading {}", first.display()))?;
    let mut sum = weights_of(first, &keep)?;
    for dir in rest {
        let same_tokenizer = std::fs::read(dir.join("tokenizer.json")).is_ok_and(|t| t == tokenizer);
        ensure!(same_tokenizer, "{} has another tokenizer than {}: not one model", dir.display(), first.display());
        let mut other = weights_of(dir, &keep)?;
        ensure!(other.len() == sum.len(), "{} and {} hold different tensors", dir.display(), first.display());
        for (name, acc) in sum.iter_mut() {
            let t = other.remove(name).with_context(|| format!("{} lacks {name}", dir.display()))?;
            ensure!(
                t.dims() == acc.dims(),
                "{name}: shape {:?} in {}, {:?} in {}",
                t.dims(),
                dir.display(),
                acc.dims(),
                first.display()
            );
            *acc = (&*acc + t)?;
        }
    }
    let n = from.len() as f64;
    sum.into_iter().map(|(name, t)| Ok((name, (t / n)?))).collect()
}

/// A checkpoint's weights named `keep`, in f32.
fn weights_of(dir: &Path, keep: impl Fn(&str) -> bool) -> Result<HashMap<String, Tensor>> {
    let path = dir.join("model.safetensors");
    candle_core::safetensors::load(&path, &Device::Cpu)
        .with_context(|| format!("reading {}", path.display()))?
        .into_iter()
        .filter(|(name, _)| keep(name))
        .map(|(name, t)| Ok((name, t.to_dtype(DType::F32)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model directory with folio's files for `chars` and the given weights.
    fn checkpoint(dir: &Path, chars: &str, weights: &[(&str, Vec<f32>)]) -> Result<()> {
        write_model_files(dir, &chars.chars().collect(), Dims::TINY)?;
        let tensors: HashMap<String, Tensor> = weights
            .iter()
            .map(|(name, v)| Ok((name.to_string(), Tensor::new(v.as_slice(), &Device::Cpu)?)))
            .collect::<Result<_>>()?;
        candle_core::safetensors::save(&tensors, dir.join("model.safetensors"))?;
        Ok(())
    }

    #[test]
    fn several_checkpoints_ship_as_their_mean_in_f16() -> Result<()> {
        let root = std::env::temp_dir().join(format!("folio-ship-{}", std::process::id()));
        let (a, b, c, d, out) = (root.join("a"), root.join("b"), root.join("c"), root.join("d"), root.join("out"));
        checkpoint(&a, "abc", &[("w", vec![1.0, 2.0]), ("aux_ctc", vec![5.0])])?;
        checkpoint(&b, "abc", &[("w", vec![3.0, 6.0]), ("aux_ctc", vec![7.0])])?;
        ship(&[a.clone(), b.clone()], &out)?;
        let shipped = candle_core::safetensors::load(out.join("model.safetensors"), &Device::Cpu)?;
        assert_eq!(shipped.len(), 1, "training-only heads are dropped");
        let w = shipped.get("w").context("w shipped")?;
        assert_eq!(w.dtype(), DType::F16);
        assert_eq!(w.to_dtype(DType::F32)?.to_vec1::<f32>()?, vec![2.0, 4.0]);
        assert_eq!(read_json(&out.join("config.json"))?["torch_dtype"], "float16");

        checkpoint(&c, "ab中", &[("w", vec![1.0, 2.0])])?;
        let e = ship(&[a.clone(), c], &out).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("another tokenizer")));
        checkpoint(&d, "abc", &[("w", vec![1.0, 2.0, 3.0]), ("aux_ctc", vec![0.0])])?;
        let e = ship(&[a, d], &out).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("shape")));
        std::fs::remove_dir_all(&root)?;
        Ok(())
    }
}
