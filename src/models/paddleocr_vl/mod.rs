//! PaddleOCR-VL ("PaddleOCR-VL: Boosting Multilingual Document Parsing via a 0.9B Ultra-Compact
//! Vision-Language Model", Cui et al. 2025): NaViT vision encoder → `mlp_AR` projector → ERNIE-4.5
//! decoder. Loads the Hugging Face checkpoint layout (`visual.vision_model.`, `mlp_AR.`, `model.`,
//! `lm_head`).

pub mod attention;
pub mod config;
pub mod processor;
pub mod projector;
pub mod prompt;
pub mod reading;
pub mod text;
pub mod vision;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

pub use config::{Config, PreprocessorConfig};
pub use processor::{ImageProcessor, PreparedImage};
pub use prompt::{prompt_positions, PromptBuilder, Task};
pub use reading::{LineCrop, ReadingSpec, Reads, Route};
pub use text::{Position3, TextModel};
pub use vision::{PatchGrid, VisionModel};

use crate::models::kv::{KvCache, StepLayout};
use projector::Projector;

pub struct PaddleOcrVl {
    pub cfg: Config,
    vision: VisionModel,
    projector: Projector,
    text: TextModel,
    device: Device,
}

impl PaddleOcrVl {
    /// Builds the model from a checkpoint root `vb` (tensor names as in the released checkpoint).
    pub fn new(cfg: Config, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(Self {
            vision: VisionModel::new(&cfg.vision, vb.pp("visual.vision_model"))?,
            projector: Projector::new(&cfg, vb.pp("mlp_AR"))?,
            text: TextModel::new(&cfg.text, vb.clone())?,
            device: vb.device().clone(),
            cfg,
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Decoder tokens one image of this patch grid turns into.
    pub fn image_tokens(&self, grid: PatchGrid) -> usize {
        self.projector.tokens_for(grid)
    }

    /// Vision features after the encoder's final LayerNorm, all images packed in one pass.
    pub fn vision_features(&self, images: &[&PreparedImage]) -> Result<Tensor> {
        let patches: Vec<&Tensor> = images.iter().map(|i| &i.patches).collect();
        let grids: Vec<PatchGrid> = images.iter().map(|i| i.grid).collect();
        let patches = Tensor::cat(&patches, 0)?.to_device(&self.device)?;
        Ok(self.vision.forward(&patches, &grids)?)
    }

    /// Decoder-space embeddings of each image, `(image_tokens, text_hidden)`, encoded together.
    pub fn encode_images(&self, images: &[&PreparedImage]) -> Result<Vec<Tensor>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let grids: Vec<PatchGrid> = images.iter().map(|i| i.grid).collect();
        self.project(&self.vision_features(images)?, &grids)
    }

    /// Projects packed vision features (of images with these grids) into decoder space, one
    /// tensor per image.
    pub fn project(&self, features: &Tensor, grids: &[PatchGrid]) -> Result<Vec<Tensor>> {
        let merged = self.projector.forward(features, grids)?;
        let mut start = 0;
        grids
            .iter()
            .map(|&g| {
                let n = self.image_tokens(g);
                let part = merged.narrow(0, start, n);
                start += n;
                Ok(part?)
            })
            .collect()
    }

    /// Embeddings of `ids[range]`, with image-token positions taken from `image_embeds` (all images
    /// of the prompt concatenated, in order; row `k` belongs to the `k`-th image token of `ids`).
    pub fn prompt_embeddings(
        &self,
        ids: &[u32],
        range: std::ops::Range<usize>,
        image_embeds: Option<&Tensor>,
    ) -> Result<Tensor> {
        let image_id = self.cfg.tokens.image_token_id;
        let mut image_row = ids[..range.start].iter().filter(|&&id| id == image_id).count();
        let mut parts = Vec::new();
        let mut i = range.start;
        while i < range.end {
            let is_image = ids[i] == image_id;
            let run = ids[i..range.end].iter().take_while(|&&id| (id == image_id) == is_image).count();
            if is_image {
                let embeds = image_embeds.context("prompt has image tokens but no image embeddings")?;
                parts.push(embeds.narrow(0, image_row, run).context("fewer image embeddings than image tokens")?);
                image_row += run;
            } else {
                let t = Tensor::new(&ids[i..i + run], &self.device)?;
                parts.push(self.text.embed(&t)?);
            }
            i += run;
        }
        let parts: Vec<Tensor> =
            parts.into_iter().map(|p| p.to_dtype(self.text_dtype())).collect::<candle_core::Result<_>>()?;
        Ok(Tensor::cat(&parts, 0)?)
    }

    /// The dtype the decoder computes in (its KV cache holds this dtype too).
    pub fn text_dtype(&self) -> DType {
        self.text.dtype()
    }

    /// One decoder step over a packed batch; returns final hidden states `(tokens, hidden)`.
    pub fn decode_step(
        &self,
        embeds: &Tensor,
        positions: &[Position3],
        layout: &StepLayout,
        cache: &mut dyn KvCache,
    ) -> Result<Tensor> {
        Ok(self.text.forward(embeds, positions, layout, cache)?)
    }

    pub fn embed_tokens(&self, ids: &[u32]) -> Result<Tensor> {
        Ok(self.text.embed(&Tensor::new(ids, &self.device)?)?)
    }

    /// f32 logits of the given hidden rows.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        Ok(self.text.logits(hidden)?)
    }
}

/// The safetensors files of a checkpoint: `model.safetensors`, or the shards its index lists.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index_path = dir.join("model.safetensors.index.json");
    let index: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&index_path)
            .with_context(|| format!("{} has neither model.safetensors nor an index", dir.display()))?,
    )
    .with_context(|| format!("parsing {}", index_path.display()))?;
    let map = index.get("weight_map").and_then(|m| m.as_object()).context("index without weight_map")?;
    let mut files: Vec<PathBuf> = map.values().filter_map(|v| v.as_str()).map(|f| dir.join(f)).collect();
    files.sort();
    files.dedup();
    if files.is_empty() {
        bail!("{} lists no weight files", index_path.display());
    }
    Ok(files)
}

/// Everything a checkpoint directory holds, loaded: model, image processor and prompt builder.
pub struct Checkpoint {
    /// Where it was loaded from.
    pub dir: PathBuf,
    pub model: PaddleOcrVl,
    pub images: ImageProcessor,
    pub prompts: PromptBuilder,
    /// What the model reads and how it wants its crops (its `folio.json`).
    pub reading: ReadingSpec,
}

impl Checkpoint {
    pub fn load(dir: &Path, dtype: DType, device: &Device) -> Result<Self> {
        let cfg = Config::from_file(&dir.join("config.json"))?;
        let pre = PreprocessorConfig::from_file(&dir.join("preprocessor_config.json"))?;
        let prompts = PromptBuilder::from_dir(dir, &cfg)?;
        let reading = ReadingSpec::from_dir(dir)?;
        let files = weight_files(dir)?;
        // SAFETY: the files are memory-mapped read-only; folio never writes them while mapped, and
        // a checkpoint modified underneath a running process is outside what we can defend against.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&files, dtype, device)? };
        let model = PaddleOcrVl::new(cfg, vb).with_context(|| format!("loading weights from {}", dir.display()))?;
        Ok(Self { dir: dir.to_path_buf(), model, images: ImageProcessor::new(pre), prompts, reading })
    }
}
