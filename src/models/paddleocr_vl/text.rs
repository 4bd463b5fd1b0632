//! The ERNIE-4.5 decoder of PaddleOCR-VL ("ERNIE 4.5 Technical Report", Baidu 2025): pre-norm
//! RMSNorm blocks, grouped-query attention, SiLU-gated MLP, and the multimodal 3D rotary embedding
//! of Qwen2-VL ("Qwen2-VL", Wang et al. 2024) in its split-halves (neox) form.
//!
//! One forward path takes a packed batch of new tokens from any number of sequences; keys and values
//! go through the [`KvCache`] it is handed.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{embedding, Embedding, VarBuilder};

use super::config::TextConfig;
use crate::models::kv::{KvCache, StepLayout};
use crate::models::linear::{linear_b, linear_no_bias, Linear};
use crate::models::ops::{self, RmsNorm};

/// 3D positions (temporal, height, width) of one token. Text tokens have three equal components.
pub type Position3 = [u32; 3];

/// Multimodal rotary embedding: frequency `j` of `head_dim / 2` rotates by the position component its
/// `mrope_section` assigns it (the first 16 by t, the next 24 by h, the last 24 by w in the release).
struct MultimodalRope {
    inv_freq: Vec<f32>,
    component: Vec<usize>,
}

impl MultimodalRope {
    fn new(cfg: &TextConfig) -> Self {
        let half = cfg.head_dim / 2;
        let inv_freq =
            (0..half).map(|i| 1.0 / (cfg.rope_theta as f32).powf((2 * i) as f32 / cfg.head_dim as f32)).collect();
        let component = (0..3).flat_map(|c| std::iter::repeat_n(c, cfg.mrope_section[c])).collect();
        Self { inv_freq, component }
    }

    /// cos and sin, `(tokens, head_dim / 2)` each, in f32.
    fn cos_sin(&self, positions: &[Position3], dev: &Device) -> Result<(Tensor, Tensor)> {
        let half = self.inv_freq.len();
        let angles: Vec<f32> = positions
            .iter()
            .flat_map(|p| (0..half).map(move |j| p[self.component[j]] as f32 * self.inv_freq[j]))
            .collect();
        let angles = Tensor::from_vec(angles, (positions.len(), half), dev)?;
        Ok((angles.cos()?, angles.sin()?))
    }
}

struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

impl Attention {
    fn new(cfg: &TextConfig, vb: VarBuilder) -> Result<Self> {
        let (h, d, b) = (cfg.hidden_size, cfg.head_dim, cfg.use_bias);
        let (heads, kv) = (cfg.num_attention_heads, cfg.num_key_value_heads);
        Ok(Self {
            q_proj: linear_b(h, heads * d, b, vb.pp("q_proj"))?,
            k_proj: linear_b(h, kv * d, b, vb.pp("k_proj"))?,
            v_proj: linear_b(h, kv * d, b, vb.pp("v_proj"))?,
            o_proj: linear_b(heads * d, h, b, vb.pp("o_proj"))?,
            heads,
            kv_heads: kv,
            head_dim: d,
        })
    }

    fn forward(
        &self,
        xs: &Tensor,
        rope: &(Tensor, Tensor),
        layer: usize,
        layout: &StepLayout,
        cache: &mut dyn KvCache,
    ) -> Result<Tensor> {
        let (t, _) = xs.dims2()?;
        let d = self.head_dim;
        let rotate = |x: Tensor, heads: usize| -> Result<Tensor> {
            let x = x.reshape((1, t, heads, d))?;
            ops::rope_thd(&x, &rope.0, &rope.1)?.squeeze(0)
        };
        let q = rotate(self.q_proj.forward(xs)?, self.heads)?;
        let k = rotate(self.k_proj.forward(xs)?, self.kv_heads)?;
        let v = self.v_proj.forward(xs)?.reshape((t, self.kv_heads, d))?;
        let out = cache.attend(layer, layout, &q, &k, &v, 1.0 / (d as f64).sqrt())?;
        self.o_proj.forward(&out.reshape((t, self.heads * d))?)
    }
}

struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
    act: candle_nn::Activation,
}

impl Mlp {
    fn new(cfg: &TextConfig, vb: VarBuilder) -> Result<Self> {
        let (h, i, b) = (cfg.hidden_size, cfg.intermediate_size, cfg.use_bias);
        Ok(Self {
            gate_proj: linear_b(h, i, b, vb.pp("gate_proj"))?,
            up_proj: linear_b(h, i, b, vb.pp("up_proj"))?,
            down_proj: linear_b(i, h, b, vb.pp("down_proj"))?,
            act: cfg.hidden_act,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let gate = self.gate_proj.forward(xs)?.apply(&self.act)?;
        self.down_proj.forward(&(gate * self.up_proj.forward(xs)?)?)
    }
}

struct DecoderLayer {
    input_layernorm: RmsNorm,
    self_attn: Attention,
    post_attention_layernorm: RmsNorm,
    mlp: Mlp,
}

impl DecoderLayer {
    fn new(cfg: &TextConfig, vb: VarBuilder) -> Result<Self> {
        let (h, eps) = (cfg.hidden_size, cfg.rms_norm_eps);
        Ok(Self {
            input_layernorm: RmsNorm::load(h, eps, vb.pp("input_layernorm"))?,
            self_attn: Attention::new(cfg, vb.pp("self_attn"))?,
            post_attention_layernorm: RmsNorm::load(h, eps, vb.pp("post_attention_layernorm"))?,
            mlp: Mlp::new(cfg, vb.pp("mlp"))?,
        })
    }
}

/// `model.*` and `lm_head` of the checkpoint.
pub struct TextModel {
    embed_tokens: Embedding,
    layers: Vec<DecoderLayer>,
    norm: RmsNorm,
    lm_head: Linear,
    rope: MultimodalRope,
    dtype: DType,
}

impl TextModel {
    /// `vb` is the checkpoint root: the decoder lives under `model.`, the head under `lm_head`.
    pub fn new(cfg: &TextConfig, vb: VarBuilder) -> Result<Self> {
        let m = vb.pp("model");
        let embed_tokens = embedding(cfg.vocab_size, cfg.hidden_size, m.pp("embed_tokens"))?;
        let lm_head = if cfg.tie_word_embeddings {
            Linear::tied(embed_tokens.embeddings())?
        } else {
            linear_no_bias(cfg.hidden_size, cfg.vocab_size, vb.pp("lm_head"))?
        };
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| DecoderLayer::new(cfg, m.pp(format!("layers.{i}"))))
            .collect::<Result<_>>()?;
        Ok(Self {
            embed_tokens,
            layers,
            norm: RmsNorm::load(cfg.hidden_size, cfg.rms_norm_eps, m.pp("norm"))?,
            lm_head,
            rope: MultimodalRope::new(cfg),
            dtype: vb.dtype(),
        })
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn embed(&self, ids: &Tensor) -> Result<Tensor> {
        self.embed_tokens.forward(ids)
    }

    /// `embeds`: `(tokens, hidden)` packed as in `layout`, `positions` one per token.
    /// Returns the final-normed hidden states `(tokens, hidden)`.
    pub fn forward(
        &self,
        embeds: &Tensor,
        positions: &[Position3],
        layout: &StepLayout,
        cache: &mut dyn KvCache,
    ) -> Result<Tensor> {
        let (t, _) = embeds.dims2()?;
        if t != positions.len() || t != layout.total_new() {
            candle_core::bail!(
                "{t} embeddings, {} positions, layout of {} tokens",
                positions.len(),
                layout.total_new()
            );
        }
        let (cos, sin) = self.rope.cos_sin(positions, embeds.device())?;
        let rope = (cos.to_dtype(self.dtype)?, sin.to_dtype(self.dtype)?);
        let mut xs = embeds.to_dtype(self.dtype)?;
        for (i, layer) in self.layers.iter().enumerate() {
            let attn = layer.self_attn.forward(&layer.input_layernorm.forward(&xs)?, &rope, i, layout, cache)?;
            xs = (xs + attn)?;
            let mlp = layer.mlp.forward(&layer.post_attention_layernorm.forward(&xs)?)?;
            xs = (xs + mlp)?;
        }
        self.norm.forward(&xs)
    }

    /// Next-token logits (f32) for the given hidden rows.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        self.lm_head.forward(hidden)?.to_dtype(DType::F32)
    }
}
