//! Continuous-batching scheduler in the shape of vLLM v1's: one token budget per step shared by
//! prefill chunks and decodes; running sequences first (oldest first), then admissions from the
//! waiting queue in arrival order. When a running sequence cannot get a block, the newest running
//! sequence is preempted (its blocks freed, recomputed later from its tokens) — memory is never
//! allocated beyond the pool. Oldest-first service with preempted sequences going back to the front
//! of the queue means nobody starves.
//!
//! Per step the work is O(running + admitted) plus the blocks moved.

use std::collections::VecDeque;

use super::sequence::Sequence;

#[derive(Debug, Clone, Copy)]
pub struct SchedulerConfig {
    pub block_size: usize,
    pub max_num_seqs: usize,
    /// Tokens per forward step (prefill chunks + decodes).
    pub max_num_batched_tokens: usize,
    /// Vision patches encoded per step (at least one whole image is always allowed).
    pub max_vision_patches_per_step: usize,
}

/// One sequence's share of the next step: `running[index]` processes `tokens` new tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheduled {
    pub index: usize,
    pub tokens: usize,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub chunks: Vec<Scheduled>,
    pub preempted: usize,
}

pub struct Scheduler {
    pub cfg: SchedulerConfig,
    pub waiting: VecDeque<Sequence>,
    /// In arrival order: index 0 is the oldest.
    pub running: Vec<Sequence>,
    pub total_preemptions: usize,
}

impl Scheduler {
    pub fn new(cfg: SchedulerConfig) -> Self {
        Self { cfg, waiting: VecDeque::new(), running: Vec::new(), total_preemptions: 0 }
    }

    pub fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.running.is_empty()
    }

    pub fn schedule(&mut self) -> Plan {
        let mut plan = Plan::default();
        let mut budget = self.cfg.max_num_batched_tokens;
        let bs = self.cfg.block_size;

        // Running sequences, oldest first; victims come from the newest end.
        let mut i = 0;
        while i < self.running.len() && budget > 0 {
            let seq = &self.running[i];
            let tokens = (seq.tokens.len() - seq.computed).min(budget);
            let need = (seq.computed + tokens).div_ceil(bs);
            loop {
                if self.running[i].blocks.grow_to(need) {
                    break;
                }
                let victim = self.running.len() - 1;
                self.preempt(victim);
                plan.preempted += 1;
                if victim == i {
                    break;
                }
            }
            if i >= self.running.len() {
                break; // sequence i preempted itself
            }
            plan.chunks.push(Scheduled { index: i, tokens });
            budget -= tokens;
            i += 1;
        }

        // Admissions: only when nothing had to be preempted (memory is tight otherwise).
        let mut vision = 0;
        while plan.preempted == 0 && budget > 0 && self.running.len() < self.cfg.max_num_seqs {
            let Some(seq) = self.waiting.front_mut() else { break };
            let patches = seq.vision_patches();
            if vision > 0 && vision + patches > self.cfg.max_vision_patches_per_step {
                break;
            }
            let tokens = (seq.tokens.len() - seq.computed).min(budget);
            if !seq.blocks.grow_to((seq.computed + tokens).div_ceil(bs)) {
                break;
            }
            vision += patches;
            budget -= tokens;
            let Some(seq) = self.waiting.pop_front() else { break };
            self.running.push(seq);
            plan.chunks.push(Scheduled { index: self.running.len() - 1, tokens });
        }
        plan
    }

    fn preempt(&mut self, index: usize) {
        let mut seq = self.running.remove(index);
        seq.preempt();
        self.total_preemptions += 1;
        // Back to the front: it arrived before everything still waiting.
        self.waiting.push_front(seq);
    }

    /// Removes finished sequences (their blocks return to the pool as they drop).
    pub fn retire_finished(&mut self) -> Vec<Sequence> {
        let (done, running): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.running).into_iter().partition(|s| s.finished.is_some());
        self.running = running;
        done
    }

    /// Takes a sequence out wherever it is (abort).
    pub fn remove(&mut self, id: u64) -> Option<Sequence> {
        if let Some(i) = self.running.iter().position(|s| s.id == id) {
            return Some(self.running.remove(i));
        }
        let i = self.waiting.iter().position(|s| s.id == id)?;
        self.waiting.remove(i)
    }
}
