//! The PaddleOCR-VL vision encoder: a SigLIP-style ViT run NaViT-fashion on native resolutions.
//!
//! Papers: "Sigmoid Loss for Language Image Pre-Training" (SigLIP, Zhai et al. 2023), "Patch n' Pack:
//! NaViT" (Dehghani et al. 2023), "PaddleOCR-VL" (Cui et al. 2025).
//!
//! Images of different sizes are packed into one sequence of patches; attention stays within each
//! image. Positions enter twice: a learned 2D table bilinearly resampled to each image's grid
//! (half-pixel centres, i.e. `align_corners=False` as in transformers 5.23 and vLLM) and a 2D rotary
//! embedding on (row, column).

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::config::VisionConfig;
use crate::models::linear::{linear, Linear};
use crate::models::ops::{self, LayerNorm};

/// Patch grid of one image, in patches (the `grid_thw` of the reference with t = 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchGrid {
    pub rows: usize,
    pub cols: usize,
}

impl PatchGrid {
    pub fn patches(&self) -> usize {
        self.rows * self.cols
    }
}

struct PatchEmbedding {
    /// Conv2d(kernel = stride = patch) is a matmul over flattened (channel, y, x) patches.
    proj: Linear,
    position_table: Tensor,
    grid_side: usize,
}

impl PatchEmbedding {
    fn new(cfg: &VisionConfig, vb: VarBuilder) -> Result<Self> {
        let (h, c, p) = (cfg.hidden_size, cfg.num_channels, cfg.patch_size);
        let conv = vb.pp("patch_embedding");
        let weight = conv.get((h, c, p, p), "weight")?.reshape((h, c * p * p))?;
        let bias = conv.get(h, "bias")?;
        let side = cfg.position_grid_side();
        let position_table = vb.pp("position_embedding").get((side * side, h), "weight")?;
        Ok(Self { proj: Linear::new(weight, Some(bias))?, position_table, grid_side: side })
    }

    fn forward(&self, patches: &Tensor, grids: &[PatchGrid]) -> Result<Tensor> {
        let embeds = self.proj.forward(&patches.to_dtype(self.position_table.dtype())?)?;
        let (idx, weights) = bilinear_taps(grids, self.grid_side);
        embeds + ops::weighted_gather(&self.position_table, idx, weights, 4)?
    }
}

/// Four (index, weight) taps per patch that resample the learned `side`×`side` position table to
/// each image's grid, as `F.interpolate(mode="bilinear", align_corners=False)` does.
fn bilinear_taps(grids: &[PatchGrid], side: usize) -> (Vec<u32>, Vec<f32>) {
    let axis = |i: usize, len: usize| -> [(usize, f32); 2] {
        let src = (i as f32 + 0.5) * side as f32 / len as f32 - 0.5;
        let floor = src.floor();
        let frac = src - floor;
        let clamp = |v: f32| v.clamp(0.0, (side - 1) as f32) as usize;
        [(clamp(floor), 1.0 - frac), (clamp(floor + 1.0), frac)]
    };
    let total: usize = grids.iter().map(PatchGrid::patches).sum();
    let (mut idx, mut w) = (Vec::with_capacity(total * 4), Vec::with_capacity(total * 4));
    for g in grids {
        for r in 0..g.rows {
            let rows = axis(r, g.rows);
            for c in 0..g.cols {
                for (ri, rw) in rows {
                    for (ci, cw) in axis(c, g.cols) {
                        idx.push((ri * side + ci) as u32);
                        w.push(rw * cw);
                    }
                }
            }
        }
    }
    (idx, w)
}

/// cos/sin of the 2D rotary embedding, `(patches, head_dim / 2)`: the first half of the frequencies
/// rotate by the patch row, the second by its column.
fn rotary_2d(grids: &[PatchGrid], head_dim: usize, dev: &Device) -> Result<(Tensor, Tensor)> {
    const THETA: f32 = 10_000.0;
    let dim = head_dim / 2;
    let inv_freq: Vec<f32> = (0..dim / 2).map(|i| 1.0 / THETA.powf((2 * i) as f32 / dim as f32)).collect();
    let total: usize = grids.iter().map(PatchGrid::patches).sum();
    let mut angles = Vec::with_capacity(total * dim);
    for g in grids {
        for r in 0..g.rows {
            for c in 0..g.cols {
                angles.extend(inv_freq.iter().map(|f| r as f32 * f));
                angles.extend(inv_freq.iter().map(|f| c as f32 * f));
            }
        }
    }
    let angles = Tensor::from_vec(angles, (total, dim), dev)?;
    Ok((angles.cos()?, angles.sin()?))
}

struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    num_heads: usize,
    head_dim: usize,
}

impl Attention {
    fn new(cfg: &VisionConfig, vb: VarBuilder) -> Result<Self> {
        let h = cfg.hidden_size;
        Ok(Self {
            q_proj: linear(h, h, vb.pp("q_proj"))?,
            k_proj: linear(h, h, vb.pp("k_proj"))?,
            v_proj: linear(h, h, vb.pp("v_proj"))?,
            out_proj: linear(h, h, vb.pp("out_proj"))?,
            num_heads: cfg.num_attention_heads,
            head_dim: cfg.head_dim(),
        })
    }

    fn forward(&self, xs: &Tensor, rope: &(Tensor, Tensor), spans: &[(usize, usize)]) -> Result<Tensor> {
        let (n, hidden) = xs.dims2()?;
        let shape = (1, n, self.num_heads, self.head_dim);
        let rotate = |t: Tensor| -> Result<Tensor> {
            let t = t.reshape(shape)?.to_dtype(DType::F32)?;
            ops::rope_thd(&t, &rope.0, &rope.1)?.to_dtype(xs.dtype())?.squeeze(0)
        };
        let q = rotate(self.q_proj.forward(xs)?)?;
        let k = rotate(self.k_proj.forward(xs)?)?;
        let v = self.v_proj.forward(xs)?.reshape((n, self.num_heads, self.head_dim))?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let out = ops::varlen_attention(&q, &k, &v, spans, scale, false)?.reshape((n, hidden))?;
        self.out_proj.forward(&out)
    }
}

struct EncoderLayer {
    layer_norm1: LayerNorm,
    self_attn: Attention,
    layer_norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    act: candle_nn::Activation,
}

impl EncoderLayer {
    fn new(cfg: &VisionConfig, vb: VarBuilder) -> Result<Self> {
        let (h, eps) = (cfg.hidden_size, cfg.layer_norm_eps);
        Ok(Self {
            layer_norm1: LayerNorm::load(h, eps, vb.pp("layer_norm1"))?,
            self_attn: Attention::new(cfg, vb.pp("self_attn"))?,
            layer_norm2: LayerNorm::load(h, eps, vb.pp("layer_norm2"))?,
            fc1: linear(h, cfg.intermediate_size, vb.pp("mlp.fc1"))?,
            fc2: linear(cfg.intermediate_size, h, vb.pp("mlp.fc2"))?,
            act: cfg.hidden_act,
        })
    }

    fn forward(&self, xs: &Tensor, rope: &(Tensor, Tensor), spans: &[(usize, usize)]) -> Result<Tensor> {
        let attn = self.self_attn.forward(&self.layer_norm1.forward(xs)?, rope, spans)?;
        let xs = (xs + attn)?;
        let mlp = self.fc2.forward(&activation(&self.fc1.forward(&self.layer_norm2.forward(&xs)?)?, self.act)?)?;
        xs + mlp
    }
}

/// The vision MLP's activation; its tanh GELU (the released checkpoint's) runs as a fused op.
fn activation(xs: &Tensor, act: candle_nn::Activation) -> Result<Tensor> {
    match act {
        candle_nn::Activation::GeluPytorchTanh | candle_nn::Activation::NewGelu => ops::gelu_tanh(xs),
        other => xs.apply(&other),
    }
}

/// `visual.vision_model` of the checkpoint.
pub struct VisionModel {
    embeddings: PatchEmbedding,
    layers: Vec<EncoderLayer>,
    post_layernorm: LayerNorm,
    head_dim: usize,
}

impl VisionModel {
    pub fn new(cfg: &VisionConfig, vb: VarBuilder) -> Result<Self> {
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| EncoderLayer::new(cfg, vb.pp(format!("encoder.layers.{i}"))))
            .collect::<Result<_>>()?;
        Ok(Self {
            embeddings: PatchEmbedding::new(cfg, vb.pp("embeddings"))?,
            layers,
            post_layernorm: LayerNorm::load(cfg.hidden_size, cfg.layer_norm_eps, vb.pp("post_layernorm"))?,
            head_dim: cfg.head_dim(),
        })
    }

    /// `patches`: `(total_patches, channels * patch * patch)`, the images' patches in raster order,
    /// one image after another as listed in `grids`. Returns `(total_patches, hidden)`.
    pub fn forward(&self, patches: &Tensor, grids: &[PatchGrid]) -> Result<Tensor> {
        let total: usize = grids.iter().map(PatchGrid::patches).sum();
        let (n, _) = patches.dims2()?;
        if n != total {
            candle_core::bail!("{n} patches given for grids holding {total}");
        }
        let spans: Vec<(usize, usize)> = grids
            .iter()
            .scan(0, |start, g| {
                let span = (*start, g.patches());
                *start += g.patches();
                Some(span)
            })
            .collect();
        let rope = rotary_2d(grids, self.head_dim, patches.device())?;
        let mut xs = self.embeddings.forward(patches, grids)?;
        for layer in &self.layers {
            xs = layer.forward(&xs, &rope, &spans)?;
        }
        self.post_layernorm.forward(&xs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_taps_sum_to_one_and_hit_the_table_exactly_when_sizes_match() {
        let side = 4;
        let (idx, w) = bilinear_taps(&[PatchGrid { rows: side, cols: side }], side);
        for p in 0..side * side {
            let weights = &w[p * 4..p * 4 + 4];
            assert!((weights.iter().sum::<f32>() - 1.0).abs() < 1e-6);
            // Same size: every patch reads its own table entry with full weight.
            let mass: f32 = (0..4).filter(|&t| idx[p * 4 + t] as usize == p).map(|t| weights[t]).sum();
            assert!((mass - 1.0).abs() < 1e-6, "patch {p}");
        }
    }

    #[test]
    fn rotary_rows_then_columns() {
        let (cos, _) = rotary_2d(&[PatchGrid { rows: 2, cols: 3 }], 8, &Device::Cpu).unwrap();
        let cos = cos.to_vec2::<f32>().unwrap();
        // Patch (row 1, col 2): first half rotates by 1·f, second by 2·f with f = [1, 0.01].
        let expect = [1f32.cos(), 0.01f32.cos(), 2f32.cos(), 0.02f32.cos()];
        for (got, want) in cos[5].iter().zip(expect) {
            assert!((got - want).abs() < 1e-6);
        }
    }
}
