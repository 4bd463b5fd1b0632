//! The files of folio's small model in the Hugging Face layout of PaddleOCR-VL — the same spelling
//! as the released checkpoint, so it loads through the same code path.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Result;
use serde_json::{json, Value};

use super::tokenizer::{self, special_id};

/// The architecture of the small model: PaddleOCR-VL's, scaled down (~6M parameters).
pub fn config_json(vocab_size: usize) -> Value {
    json!({
        "architectures": ["PaddleOCRVLForConditionalGeneration"],
        "model_type": "paddleocr_vl",
        "vocab_size": vocab_size,
        "hidden_size": 256,
        "intermediate_size": 768,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
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
            "hidden_size": 192,
            "intermediate_size": 768,
            "num_hidden_layers": 4,
            "num_attention_heads": 3,
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

fn preprocessor_json() -> Value {
    json!({
        "image_processor_type": "PaddleOCRVLImageProcessor",
        "processor_class": "PaddleOCRVLProcessor",
        "do_convert_rgb": true, "do_resize": true, "do_rescale": true, "do_normalize": true,
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
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
pub fn write_model_files(dir: &Path, chars: &BTreeSet<char>) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let tok = tokenizer::tokenizer_json(chars);
    let vocab = tok["model"]["vocab"].as_object().map_or(0, |v| v.len());
    let write = |name: &str, v: &Value| -> Result<()> {
        std::fs::write(dir.join(name), serde_json::to_string_pretty(v)? + "\n")?;
        Ok(())
    };
    write("tokenizer.json", &tok)?;
    write("tokenizer_config.json", &tokenizer::tokenizer_config_json())?;
    write("config.json", &config_json(vocab))?;
    write("preprocessor_config.json", &preprocessor_json())?;
    write(
        "generation_config.json",
        &json!({"bos_token_id": special_id(tokenizer::BOS), "eos_token_id": special_id(tokenizer::EOS), "pad_token_id": special_id(tokenizer::PAD)}),
    )?;
    std::fs::write(dir.join("chat_template.jinja"), CHAT_TEMPLATE)?;
    Ok(())
}
