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
        // One gather puts every image's patches in 2×2-block order (a row per block after the
        // reshape): per-image slices would cost a full-size pass each in the backward.
        let mut order = Vec::with_capacity(normed.dim(0)?);
        let mut start = 0;
        for g in grids {
            if g.rows % m != 0 || g.cols % m != 0 {
                candle_core::bail!("patch grid {}x{} is not a multiple of the merge size {m}", g.rows, g.cols);
            }
            // Block (br, bc) in raster order; within it, row i's m patches side by side.
            for (br, bc) in (0..g.rows / m).flat_map(|br| (0..g.cols / m).map(move |bc| (br, bc))) {
                for i in 0..m {
                    let first = start + (br * m + i) * g.cols + bc * m;
                    order.extend((first..first + m).map(|p| p as u32));
                }
            }
            start += g.patches();
        }
        let blocks = order.len() / (m * m);
        let order = Tensor::from_vec(order, blocks * m * m, normed.device())?;
        let x = normed.index_select(&order, 0)?.reshape((blocks, m * m * hidden))?;
        let x = self.linear_1.forward(&x)?.gelu_erf()?;
        self.linear_2.forward(&x)
    }
}
