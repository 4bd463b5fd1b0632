//! One engine step: schedule, encode the images the step needs (batched), run the decoder over the
//! packed prefill chunks and decodes against the paged cache, sample, stream the results.

use std::sync::Arc;

use anyhow::{Context, Result};
use candle_core::Tensor;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::block_pool::BlockPool;
use super::kv_pool::KvPool;
use super::scheduler::{Plan, Scheduler};
use super::sequence::{Detokenizer, Event, FinishReason, NewRequest, Sequence};
use super::EngineStats;
use crate::models::kv::{SeqChunk, StepLayout};
use crate::models::paddleocr_vl::{Checkpoint, PreparedImage, PromptBuilder};

pub struct EngineCore {
    pub ck: Arc<Checkpoint>,
    pub pool: KvPool,
    pub blocks: BlockPool,
    pub sched: Scheduler,
    pub generated_tokens: u64,
    pub steps: u64,
    /// Latest stats for clients; published before any request's final event, so a client that
    /// saw its request end also sees its blocks back in the pool.
    pub stats_tx: watch::Sender<EngineStats>,
    /// (time, generated_tokens) at recent steps, for the tokens/s over the last few seconds.
    pub rate_window: VecDeque<(Instant, u64)>,
}

/// Span of the tokens/s reported in the stats.
const RATE_WINDOW: Duration = Duration::from_secs(5);

impl EngineCore {
    pub fn add(&mut self, req: NewRequest) {
        let seq = Sequence::new(req, self.blocks.table(), self.ck.prompts.image_token_id());
        self.sched.waiting.push_back(seq);
    }

    pub fn abort(&mut self, id: u64) {
        if let Some(seq) = self.sched.remove(id) {
            let (events, usage) = (seq.events.clone(), seq.usage());
            drop(seq); // frees its blocks
            self.publish_stats();
            let _ = events.send(Event::Done { reason: FinishReason::Aborted, usage });
        }
    }

    /// Ends every request (shutdown); their streams get `Done { Aborted }`.
    pub fn abort_all(&mut self) {
        let ids: Vec<u64> = self.sched.running.iter().chain(self.sched.waiting.iter()).map(|s| s.id).collect();
        for id in ids {
            self.abort(id);
        }
    }

    fn tokens_per_s(&self) -> f64 {
        match (self.rate_window.front(), self.rate_window.back()) {
            (Some(&(t0, n0)), Some(&(t1, n1))) if t1 > t0 => (n1 - n0) as f64 / (t1 - t0).as_secs_f64(),
            _ => 0.0,
        }
    }

    fn record_rate(&mut self) {
        let now = Instant::now();
        self.rate_window.push_back((now, self.generated_tokens));
        while self.rate_window.front().is_some_and(|&(t, _)| now.duration_since(t) > RATE_WINDOW) {
            self.rate_window.pop_front();
        }
    }

    pub fn publish_stats(&self) {
        self.stats_tx.send_replace(self.stats());
    }

    pub fn stats(&self) -> EngineStats {
        EngineStats {
            waiting: self.sched.waiting.len(),
            running: self.sched.running.len(),
            blocks_total: self.blocks.total(),
            blocks_used: self.blocks.used(),
            preemptions: self.sched.total_preemptions,
            generated_tokens: self.generated_tokens,
            tokens_per_s: self.tokens_per_s(),
            steps: self.steps,
            kv_cache_bytes: self.pool.bytes(),
        }
    }

    /// Runs one step and says whether anything ran. On a model error the step's sequences are
    /// failed and dropped (their blocks freed); the engine itself carries on.
    pub fn step(&mut self) -> bool {
        let plan = self.sched.schedule();
        if plan.chunks.is_empty() {
            return false;
        }
        self.steps += 1;
        if let Err(e) = self.run(&plan) {
            let msg = format!("{e:#}");
            tracing::error!(error = %msg, "engine step failed");
            for c in &plan.chunks {
                let seq = &mut self.sched.running[c.index];
                let _ = seq.events.send(Event::Error(msg.clone()));
                seq.finished = Some(FinishReason::Aborted);
            }
        }
        self.record_rate();
        let endings: Vec<_> = self
            .sched
            .retire_finished()
            .into_iter()
            .filter_map(|seq| {
                seq.finished.filter(|r| *r != FinishReason::Aborted).map(|r| (seq.events.clone(), r, seq.usage()))
            })
            .collect(); // the retired sequences drop here, returning their blocks
        self.publish_stats();
        for (events, reason, usage) in endings {
            let _ = events.send(Event::Done { reason, usage });
        }
        true
    }

    fn run(&mut self, plan: &Plan) -> Result<()> {
        self.encode_images(plan)?;
        let ck = self.ck.clone();
        let model = &ck.model;

        // Pack the step: embeddings, positions and layout, in plan order.
        let mut text_ids = Vec::new();
        let mut pieces: Vec<Result<Tensor, (usize, usize)>> = Vec::with_capacity(plan.chunks.len());
        let mut positions = Vec::new();
        let mut layout = StepLayout::default();
        for (slot, c) in plan.chunks.iter().enumerate() {
            let seq = &self.sched.running[c.index];
            let range = seq.computed..seq.computed + c.tokens;
            // Image placeholders exist only in the prompt: a generated token that happens to have
            // the same id is text (this matters when a preempted sequence is recomputed).
            let split = range.end.min(seq.image_end).max(range.start);
            if range.start < split {
                let prompt = &seq.tokens[..seq.image_end];
                pieces.push(Ok(model.prompt_embeddings(prompt, range.start..split, seq.image_embeds.as_ref())?));
            }
            if split < range.end {
                pieces.push(Err((text_ids.len(), range.end - split)));
                text_ids.extend_from_slice(&seq.tokens[split..range.end]);
            }
            positions.extend_from_slice(&seq.positions[range]);
            layout.chunks.push(SeqChunk { seq: slot, cached: seq.computed, new: c.tokens });
        }
        let text = if text_ids.is_empty() { None } else { Some(model.embed_tokens(&text_ids)?) };
        let embeds = pieces
            .into_iter()
            .map(|p| match p {
                Ok(t) => Ok(t),
                Err((start, len)) => Ok(text.as_ref().context("text embeddings")?.narrow(0, start, len)?),
            })
            .collect::<Result<Vec<_>>>()?;
        let embeds = Tensor::cat(&embeds, 0)?;

        let tables: Vec<&[u32]> = plan.chunks.iter().map(|c| self.sched.running[c.index].blocks.blocks()).collect();
        let mut cache = self.pool.step(tables, &layout)?;
        let hidden = model.decode_step(&embeds, &positions, &layout, &mut cache)?;

        // Logits only where a sequence's last known token was processed.
        let mut rows = Vec::new();
        let mut sampling = Vec::new();
        let mut end = 0u32;
        for c in &plan.chunks {
            end += c.tokens as u32;
            let seq = &self.sched.running[c.index];
            if seq.computed + c.tokens == seq.tokens.len() {
                rows.push(end - 1);
                sampling.push(c.index);
            }
        }
        for c in &plan.chunks {
            self.sched.running[c.index].advance(c.tokens);
        }
        if rows.is_empty() {
            return Ok(());
        }
        let logits = model.logits(&hidden.index_select(&Tensor::new(rows.as_slice(), hidden.device())?, 0)?)?;
        let logits: Vec<Vec<f32>> = logits.to_vec2()?;
        let prompts = &ck.prompts;
        let stop_ids = prompts.stop_token_ids();
        for (mut row, index) in logits.into_iter().zip(sampling) {
            let seq = &mut self.sched.running[index];
            let params = seq.sampler.params();
            if seq.generated().len() < params.min_tokens {
                for &t in stop_ids.iter().chain(&params.stop_token_ids) {
                    if let Some(l) = row.get_mut(t as usize) {
                        *l = f32::NEG_INFINITY;
                    }
                }
            }
            let token = seq.sampler.sample(&mut row, &seq.tokens);
            let event = seq.push_token(token, stop_ids, prompts);
            self.generated_tokens += 1;
            if seq.events.send(event).is_err() {
                seq.finished = Some(FinishReason::Aborted); // nobody listens any more
            }
        }
        Ok(())
    }

    /// Encodes, in one vision batch, the images of every scheduled sequence that needs them.
    fn encode_images(&mut self, plan: &Plan) -> Result<()> {
        let needy: Vec<usize> =
            plan.chunks.iter().map(|c| c.index).filter(|&i| self.sched.running[i].needs_vision()).collect();
        if needy.is_empty() {
            return Ok(());
        }
        let images: Vec<&PreparedImage> = needy.iter().flat_map(|&i| self.sched.running[i].images.iter()).collect();
        let embeds = self.ck.model.encode_images(&images)?;
        let mut embeds = embeds.into_iter();
        for &i in &needy {
            let seq = &mut self.sched.running[i];
            let mine: Vec<Tensor> = embeds.by_ref().take(seq.images.len()).collect();
            seq.image_embeds = Some(Tensor::cat(&mine, 0)?);
        }
        Ok(())
    }
}

impl Detokenizer for PromptBuilder {
    fn decode(&self, tokens: &[u32]) -> String {
        // Ids come from our own sampler over the model's vocabulary; a failure here is a bug, and an
        // empty string keeps the stream alive rather than killing the request.
        PromptBuilder::decode(self, tokens).unwrap_or_default()
    }

    fn is_byte_token(&self, token: u32) -> bool {
        PromptBuilder::is_byte_token(self, token)
    }
}
