//! Batched greedy decoding over a [`DenseKvCache`]: all prompts prefill in one packed step, then every
//! unfinished sequence decodes one token per step until a stop token or its token limit.

use anyhow::{Context, Result};
use candle_core::{DType, Tensor};

use crate::models::kv::{DenseKvCache, SeqChunk, StepLayout};
use crate::models::paddleocr_vl::{prompt_positions, Checkpoint, Position3, PreparedImage};

/// One image and the instruction to apply to it.
pub struct ImageRequest<'a> {
    pub image: &'a PreparedImage,
    pub instruction: &'a str,
    pub max_new_tokens: usize,
}

/// What one request produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub prompt_len: usize,
    /// New tokens, the stop token included when one ended the sequence.
    pub tokens: Vec<u32>,
    pub stopped: bool,
}

struct Seq {
    ids: Vec<u32>,
    positions: Vec<Position3>,
    next_position: u32,
    out: Vec<u32>,
    max_new: usize,
    stopped: bool,
}

impl Seq {
    fn done(&self) -> bool {
        self.stopped || self.out.len() >= self.max_new
    }
}

pub fn generate_greedy(ck: &Checkpoint, requests: &[ImageRequest]) -> Result<Vec<Generated>> {
    let model = &ck.model;
    let images: Vec<&PreparedImage> = requests.iter().map(|r| r.image).collect();
    let image_embeds = model.encode_images(&images)?;
    let merge = model.cfg.vision.spatial_merge_size;
    let image_id = ck.prompts.image_token_id();
    let mut seqs = Vec::with_capacity(requests.len());
    for r in requests {
        let ids = ck.prompts.encode(&[model.image_tokens(r.image.grid)], r.instruction)?;
        let (positions, next_position) = prompt_positions(&ids, image_id, &[r.image.grid], merge)?;
        seqs.push(Seq { ids, positions, next_position, out: Vec::new(), max_new: r.max_new_tokens, stopped: false });
    }
    let capacity = seqs.iter().map(|s| s.ids.len() + s.max_new).max().unwrap_or(0);
    let t = &model.cfg.text;
    let mut cache = DenseKvCache::new(
        seqs.len(),
        t.num_hidden_layers,
        capacity,
        t.num_key_value_heads,
        t.head_dim,
        model.text_dtype(),
        model.device(),
    )?;

    // Prefill: every prompt in one packed step.
    let mut embeds = Vec::with_capacity(seqs.len());
    let mut positions = Vec::new();
    let mut layout = StepLayout::default();
    for (i, (s, img)) in seqs.iter().zip(&image_embeds).enumerate() {
        embeds.push(model.prompt_embeddings(&s.ids, 0..s.ids.len(), Some(img))?);
        positions.extend_from_slice(&s.positions);
        layout.chunks.push(SeqChunk { seq: i, cached: 0, new: s.ids.len() });
    }
    let mut active: Vec<usize> = (0..seqs.len()).filter(|&i| seqs[i].max_new > 0).collect();
    let mut step_embeds = Tensor::cat(&embeds, 0)?;
    let mut rows_of: Vec<usize> = (0..seqs.len()).collect();
    loop {
        if active.is_empty() {
            break;
        }
        let hidden = model.decode_step(&step_embeds, &positions, &layout, &mut cache)?;
        let last = Tensor::new(layout.last_rows(), hidden.device())?;
        let logits = model.logits(&hidden.index_select(&last, 0)?)?;
        let next: Vec<u32> = logits.argmax(1)?.to_dtype(DType::U32)?.to_vec1()?;
        for (row, &seq) in rows_of.iter().enumerate() {
            let s = &mut seqs[seq];
            if s.done() {
                continue; // asked for no tokens at all
            }
            let tok = *next.get(row).context("missing logits row")?;
            s.out.push(tok);
            s.stopped = ck.prompts.stop_token_ids().contains(&tok);
        }
        active.retain(|&i| !seqs[i].done());
        if active.is_empty() {
            break;
        }
        // Decode: one token per unfinished sequence.
        layout.chunks.clear();
        positions.clear();
        let mut tokens = Vec::with_capacity(active.len());
        for &i in &active {
            let s = &mut seqs[i];
            let cached = s.ids.len() + s.out.len() - 1;
            layout.chunks.push(SeqChunk { seq: i, cached, new: 1 });
            positions.push([s.next_position; 3]);
            s.next_position += 1;
            tokens.push(*s.out.last().context("decode without a token")?);
        }
        step_embeds = model.embed_tokens(&tokens)?;
        rows_of = active.clone();
    }
    Ok(seqs.into_iter().map(|s| Generated { prompt_len: s.ids.len(), tokens: s.out, stopped: s.stopped }).collect())
}
