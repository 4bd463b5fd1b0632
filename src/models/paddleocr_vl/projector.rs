//! `mlp_AR`: maps vision features to decoder embeddings, merging each 2×2 block of patches into one
//! token (LayerNorm → merge → Linear → GELU (exact erf) → Linear).

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::config::Config;
use super::vision::PatchGrid;
use crate::models::linear::{linear, Linear};
use crate::models::ops::LayerNorm;

pub struct Projector {
    pre_norm: LayerNorm,
    linear_1: Linear,
    linear_2: Linear,
    merge: usize,
}

impl Projector {
    pub fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let (v, m) = (cfg.vision.hidden_size, cfg.vision.spatial_merge_size);
        let merged = v * m * m;
        Ok(Self {
            // The reference hard-codes this epsilon; it is not the vision tower's.
            pre_norm: LayerNorm::load(v, 1e-5, vb.pp("pre_norm"))?,
            linear_1: linear(merged, merged, vb.pp("linear_1"))?,
            linear_2: linear(merged, cfg.text.hidden_size, vb.pp("linear_2"))?,
            merge: m,
        })
    }

    /// Tokens one image turns into.
    pub fn tokens_for(&self, grid: PatchGrid) -> usize {
        grid.patches() / (self.merge * self.merge)
    }

    /// `features`: `(total_patches, vision_hidden)` packed as in `grids` (raster order per image).
    /// Returns `(total_tokens, text_hidden)`, each image's tokens in raster order of its 2×2 blocks.
    pub fn forward(&self, features: &Tensor, grids: &[PatchGrid]) -> Result<Tensor> {
        let (_, hidden) = features.dims2()?;
        let m = self.merge;
        let normed = self.pre_norm.forward(features)?;
        let mut merged = Vec::with_capacity(grids.len());
        let mut start = 0;
        for g in grids {
            if g.rows % m != 0 || g.cols % m != 0 {
                candle_core::bail!("patch grid {}x{} is not a multiple of the merge size {m}", g.rows, g.cols);
            }
            let x = normed.narrow(0, start, g.patches())?;
            // (rows/m, m, cols/m, m, d) → (rows/m, cols/m, m, m, d): one row per 2×2 block.
            let x = x.reshape((g.rows / m, m, g.cols / m, m, hidden))?.transpose(1, 2)?;
            merged.push(x.reshape((g.patches() / (m * m), m * m * hidden))?);
            start += g.patches();
        }
        let x = Tensor::cat(&merged, 0)?;
        let x = self.linear_1.forward(&x)?.gelu_erf()?;
        self.linear_2.forward(&x)
    }
}
