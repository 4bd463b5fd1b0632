//! Checkpoint configuration for PaddleOCR-VL (`config.json`, `preprocessor_config.json`).
//!
//! Two spellings of `config.json` exist: the released checkpoint keeps the ERNIE text fields at the
//! top level next to `vision_config`, while transformers 5 may save them nested under `text_config`
//! with `rope_parameters`. Both are accepted; the values are read, never assumed.

use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_nn::Activation;
use serde::Deserialize;

/// The NaViT (SigLIP-style) vision encoder.
#[derive(Debug, Clone, Deserialize)]
pub struct VisionConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default = "default_channels")]
    pub num_channels: usize,
    /// Side of the square image the learned position table was trained for.
    pub image_size: usize,
    pub patch_size: usize,
    #[serde(default = "default_vision_act")]
    pub hidden_act: Activation,
    #[serde(default = "default_vision_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_merge")]
    pub spatial_merge_size: usize,
}

impl VisionConfig {
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Side of the learned position grid: `image_size / patch_size` rounded down (384 / 14 → 27).
    pub fn position_grid_side(&self) -> usize {
        self.image_size / self.patch_size
    }
}

/// The ERNIE-4.5 decoder.
#[derive(Debug, Clone, Deserialize)]
pub struct TextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    #[serde(default = "default_text_act")]
    pub hidden_act: Activation,
    #[serde(default = "default_rms_eps")]
    pub rms_norm_eps: f64,
    #[serde(default)]
    pub use_bias: bool,
    pub rope_theta: f64,
    /// How `head_dim / 2` rotary frequencies split over the (temporal, height, width) positions.
    pub mrope_section: [usize; 3],
    pub tie_word_embeddings: bool,
}

/// Ids that tie the decoder to the vision tower; they come from the checkpoint.
#[derive(Debug, Clone, Copy)]
pub struct SpecialTokens {
    pub image_token_id: u32,
    pub vision_start_token_id: Option<u32>,
    pub vision_end_token_id: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub vision: VisionConfig,
    pub text: TextConfig,
    pub tokens: SpecialTokens,
    /// `eos_token_id` from config.json, when present (generation_config.json may add more).
    pub eos_token_ids: Vec<u32>,
}

fn default_channels() -> usize {
    3
}
fn default_vision_act() -> Activation {
    Activation::GeluPytorchTanh
}
fn default_vision_eps() -> f64 {
    1e-6
}
fn default_merge() -> usize {
    2
}
fn default_text_act() -> Activation {
    Activation::Silu
}
fn default_rms_eps() -> f64 {
    1e-5
}

/// Where the text fields live: flat in the released checkpoint, nested in transformers 5 saves.
#[derive(Deserialize)]
struct RawText {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    #[serde(default = "default_text_act")]
    hidden_act: Activation,
    #[serde(default = "default_rms_eps")]
    rms_norm_eps: f64,
    #[serde(default)]
    use_bias: bool,
    rope_theta: Option<f64>,
    rope_scaling: Option<RawRope>,
    rope_parameters: Option<RawRope>,
    tie_word_embeddings: Option<bool>,
    eos_token_id: Option<OneOrMany>,
}

#[derive(Deserialize)]
struct RawRope {
    mrope_section: Option<Vec<usize>>,
    rope_theta: Option<f64>,
}

#[derive(Deserialize, Clone)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(u32),
    Many(Vec<u32>),
}

impl OneOrMany {
    pub(crate) fn into_vec(self) -> Vec<u32> {
        match self {
            OneOrMany::One(id) => vec![id],
            OneOrMany::Many(ids) => ids,
        }
    }
}

#[derive(Deserialize)]
struct RawConfig {
    vision_config: VisionConfig,
    text_config: Option<serde_json::Value>,
    image_token_id: u32,
    vision_start_token_id: Option<u32>,
    vision_end_token_id: Option<u32>,
    tie_word_embeddings: Option<bool>,
    #[serde(flatten)]
    rest: serde_json::Value,
}

impl Config {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading model config {}", path.display()))?;
        Self::from_json(&text).with_context(|| format!("parsing model config {}", path.display()))
    }

    pub fn from_json(json: &str) -> Result<Self> {
        let raw: RawConfig = serde_json::from_str(json)?;
        let text_value = raw.text_config.unwrap_or(raw.rest);
        let t: RawText = serde_json::from_value(text_value).context("text (decoder) fields")?;
        let rope = t.rope_parameters.or(t.rope_scaling);
        let rope_theta =
            t.rope_theta.or_else(|| rope.as_ref().and_then(|r| r.rope_theta)).context("rope_theta is missing")?;
        let section = rope.and_then(|r| r.mrope_section).context("rope_scaling.mrope_section is missing")?;
        let head_dim = t.head_dim.unwrap_or(t.hidden_size / t.num_attention_heads);
        let mrope_section: [usize; 3] = match section.as_slice() {
            &[a, b, c] if a + b + c == head_dim / 2 => [a, b, c],
            other => bail!("mrope_section {other:?} must be three numbers summing to head_dim/2 = {}", head_dim / 2),
        };
        let text = TextConfig {
            vocab_size: t.vocab_size,
            hidden_size: t.hidden_size,
            intermediate_size: t.intermediate_size,
            num_hidden_layers: t.num_hidden_layers,
            num_attention_heads: t.num_attention_heads,
            num_key_value_heads: t.num_key_value_heads.unwrap_or(t.num_attention_heads),
            head_dim,
            hidden_act: t.hidden_act,
            rms_norm_eps: t.rms_norm_eps,
            use_bias: t.use_bias,
            rope_theta,
            mrope_section,
            // The outer flag wins, as in transformers; absent everywhere means untied.
            tie_word_embeddings: raw.tie_word_embeddings.or(t.tie_word_embeddings).unwrap_or(false),
        };
        let cfg = Config {
            vision: raw.vision_config,
            text,
            tokens: SpecialTokens {
                image_token_id: raw.image_token_id,
                vision_start_token_id: raw.vision_start_token_id,
                vision_end_token_id: raw.vision_end_token_id,
            },
            eos_token_ids: t.eos_token_id.map(OneOrMany::into_vec).unwrap_or_default(),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<()> {
        let (v, t) = (&self.vision, &self.text);
        if v.num_attention_heads == 0 || v.hidden_size % v.num_attention_heads != 0 {
            bail!("vision hidden_size {} is not divisible by {} heads", v.hidden_size, v.num_attention_heads);
        }
        if v.head_dim() % 4 != 0 {
            bail!("vision head_dim {} must be a multiple of 4 for the 2D rotary embedding", v.head_dim());
        }
        // The released model has image_size 384 and patch 14: a 27×27 table (the remainder is unused).
        if v.patch_size == 0 || v.image_size < v.patch_size || v.spatial_merge_size == 0 {
            bail!(
                "vision image_size {} / patch_size {} / merge {} are inconsistent",
                v.image_size,
                v.patch_size,
                v.spatial_merge_size
            );
        }
        if t.num_key_value_heads == 0 || t.num_attention_heads % t.num_key_value_heads != 0 {
            bail!(
                "{} attention heads cannot be grouped over {} key/value heads",
                t.num_attention_heads,
                t.num_key_value_heads
            );
        }
        if self.tokens.image_token_id as usize >= t.vocab_size {
            bail!("image_token_id {} is outside the vocabulary ({})", self.tokens.image_token_id, t.vocab_size);
        }
        Ok(())
    }
}

/// `preprocessor_config.json`: how images become patches.
#[derive(Debug, Clone)]
pub struct PreprocessorConfig {
    pub min_pixels: usize,
    pub max_pixels: usize,
    pub patch_size: usize,
    pub merge_size: usize,
    pub temporal_patch_size: usize,
    pub rescale_factor: f32,
    pub image_mean: [f32; 3],
    pub image_std: [f32; 3],
}

#[derive(Deserialize)]
struct RawPreprocessor {
    min_pixels: Option<usize>,
    max_pixels: Option<usize>,
    size: Option<RawSize>,
    patch_size: Option<usize>,
    merge_size: Option<usize>,
    temporal_patch_size: Option<usize>,
    rescale_factor: Option<f32>,
    image_mean: Option<[f32; 3]>,
    image_std: Option<[f32; 3]>,
}

#[derive(Deserialize)]
struct RawSize {
    shortest_edge: Option<usize>,
    longest_edge: Option<usize>,
    min_pixels: Option<usize>,
    max_pixels: Option<usize>,
}

impl PreprocessorConfig {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading preprocessor config {}", path.display()))?;
        Self::from_json(&text).with_context(|| format!("parsing preprocessor config {}", path.display()))
    }

    pub fn from_json(json: &str) -> Result<Self> {
        let raw: RawPreprocessor = serde_json::from_str(json)?;
        let size = raw.size.as_ref();
        let min_pixels = raw
            .min_pixels
            .or_else(|| size.and_then(|s| s.min_pixels.or(s.shortest_edge)))
            .context("min_pixels (or size.shortest_edge) is missing")?;
        let max_pixels = raw
            .max_pixels
            .or_else(|| size.and_then(|s| s.max_pixels.or(s.longest_edge)))
            .context("max_pixels (or size.longest_edge) is missing")?;
        let cfg = PreprocessorConfig {
            min_pixels,
            max_pixels,
            patch_size: raw.patch_size.unwrap_or(14),
            merge_size: raw.merge_size.unwrap_or(2),
            temporal_patch_size: raw.temporal_patch_size.unwrap_or(1),
            rescale_factor: raw.rescale_factor.unwrap_or(1.0 / 255.0),
            image_mean: raw.image_mean.unwrap_or([0.5; 3]),
            image_std: raw.image_std.unwrap_or([0.5; 3]),
        };
        if cfg.min_pixels == 0 || cfg.min_pixels > cfg.max_pixels {
            bail!("min_pixels {} / max_pixels {} are inconsistent", cfg.min_pixels, cfg.max_pixels);
        }
        if cfg.temporal_patch_size != 1 {
            bail!("temporal_patch_size {} is not supported (images only)", cfg.temporal_patch_size);
        }
        if cfg.image_std.iter().any(|s| *s <= 0.0) {
            bail!("image_std must be positive");
        }
        Ok(cfg)
    }

    /// Side of the square that resized images are multiples of (28 for the released model).
    pub fn factor(&self) -> usize {
        self.patch_size * self.merge_size
    }
}
