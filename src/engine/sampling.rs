//! Sampling parameters and next-token selection: greedy, temperature, top-k, top-p, repetition
//! penalty, seeded randomness, and a guard against the runaway repetition loops PaddleOCR-VL is
//! known for (the reference pipeline truncates repeated content; we stop and truncate here).

use anyhow::{bail, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingParams {
    /// Most new tokens.
    pub max_tokens: usize,
    /// 0 selects greedy decoding.
    pub temperature: f32,
    /// Nucleus sampling mass in (0, 1]; 1 disables it.
    pub top_p: f32,
    /// Keep only the k most likely tokens; 0 disables it.
    pub top_k: usize,
    /// Seed of this request's random stream; without one, a seed is drawn at submission.
    pub seed: Option<u64>,
    /// > 1 discourages tokens already in the sequence (CTRL-style, as in transformers and vLLM).
    pub repetition_penalty: f32,
    /// Stop when the text contains one of these; the stop string is not returned.
    pub stop: Vec<String>,
    /// Stop on these tokens in addition to the model's end-of-sequence tokens.
    pub stop_token_ids: Vec<u32>,
    /// Stop a generation caught in a loop and drop the repeated tail.
    pub repetition_guard: bool,
    /// Generate at least this many tokens: end-of-sequence and stop tokens are masked and the
    /// repetition guard waits until then (vLLM's `min_tokens`).
    pub min_tokens: usize,
    /// Tokens never to generate (as `suppress_tokens` in transformers' `generate`), e.g. a
    /// script the page is known not to contain.
    pub suppress_tokens: Vec<u32>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            max_tokens: 1024,
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            seed: None,
            repetition_penalty: 1.0,
            stop: Vec::new(),
            stop_token_ids: Vec::new(),
            repetition_guard: true,
            min_tokens: 0,
            suppress_tokens: Vec::new(),
        }
    }
}

/// Hard limits that keep a single request from asking for absurd work.
pub const MAX_TOKENS_LIMIT: usize = 32_768;
const MAX_STOP_STRINGS: usize = 16;

impl SamplingParams {
    pub fn greedy(max_tokens: usize) -> Self {
        Self { max_tokens, ..Self::default() }
    }

    pub fn validate(&self) -> Result<()> {
        if self.max_tokens == 0 || self.max_tokens > MAX_TOKENS_LIMIT {
            bail!("max_tokens must be in 1..={MAX_TOKENS_LIMIT}, got {}", self.max_tokens);
        }
        if self.min_tokens > self.max_tokens {
            bail!("min_tokens ({}) must not exceed max_tokens ({})", self.min_tokens, self.max_tokens);
        }
        if !self.temperature.is_finite() || !(0.0..=100.0).contains(&self.temperature) {
            bail!("temperature must be in [0, 100], got {}", self.temperature);
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            bail!("top_p must be in (0, 1], got {}", self.top_p);
        }
        if !self.repetition_penalty.is_finite() || self.repetition_penalty <= 0.0 {
            bail!("repetition_penalty must be positive, got {}", self.repetition_penalty);
        }
        if self.stop.len() > MAX_STOP_STRINGS || self.stop.iter().any(|s| s.is_empty() || s.len() > 256) {
            bail!("stop: at most {MAX_STOP_STRINGS} non-empty strings of at most 256 bytes");
        }
        Ok(())
    }
}

/// Per-sequence sampling state: the parameters and the random stream.
pub struct Sampler {
    params: SamplingParams,
    rng: ChaCha8Rng,
}

impl Sampler {
    pub fn new(params: SamplingParams, seed: u64) -> Self {
        Self { rng: ChaCha8Rng::seed_from_u64(params.seed.unwrap_or(seed)), params }
    }

    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// Picks the next token from `logits` given the sequence so far (`history`, for the penalty).
    pub fn sample(&mut self, logits: &mut [f32], history: &[u32]) -> u32 {
        let p = &self.params;
        for &t in &p.suppress_tokens {
            if let Some(l) = logits.get_mut(t as usize) {
                *l = f32::NEG_INFINITY;
            }
        }
        if p.repetition_penalty != 1.0 {
            for &t in history {
                if let Some(l) = logits.get_mut(t as usize) {
                    *l = if *l > 0.0 { *l / p.repetition_penalty } else { *l * p.repetition_penalty };
                }
            }
        }
        if p.temperature == 0.0 {
            return argmax(logits);
        }
        let mut cands: Vec<(u32, f32)> =
            logits.iter().enumerate().map(|(i, &l)| (i as u32, l / p.temperature)).collect();
        cands.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if p.top_k > 0 {
            cands.truncate(p.top_k);
        }
        let max = cands[0].1;
        let mut total = 0.0f64;
        for c in cands.iter_mut() {
            c.1 = (c.1 - max).exp();
            total += c.1 as f64;
        }
        if p.top_p < 1.0 {
            let mut kept = 0.0f64;
            let cut = cands
                .iter()
                .position(|c| {
                    kept += c.1 as f64;
                    kept >= p.top_p as f64 * total
                })
                .map_or(cands.len(), |i| i + 1);
            cands.truncate(cut);
            total = cands.iter().map(|c| c.1 as f64).sum();
        }
        let mut r = self.rng.random::<f64>() * total;
        for &(id, w) in &cands {
            r -= w as f64;
            if r <= 0.0 {
                return id;
            }
        }
        cands[cands.len() - 1].0
    }
}

/// Index of the largest logit (the first one on ties, so results never depend on thread timing).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Where a generation's tail stands with respect to loops (see [`loop_tail`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopTail {
    /// Trailing tokens a loop found later could still remove: the longest run of tokens each equal
    /// to the one a period before it. Their text is held back until the run breaks.
    pub unsettled: usize,
    /// Set when the tail is a loop: the length to truncate the tokens to. The whole repeated run
    /// goes, one copy of its unit stays.
    pub cut: Option<usize>,
}

/// Looks for a loop at the end of the generated tokens. For each period `p` up to 64 it counts the
/// trailing tokens equal to the token `p` before them; the tail is a loop when that run and one unit
/// span at least `max(3p, 48)` tokens: short runs such as `-----` in a table rule survive, a line
/// repeated three times in a row does not. O(64 + Σ runs) per call.
pub fn loop_tail(tokens: &[u32]) -> LoopTail {
    const MAX_PERIOD: usize = 64;
    const MIN_SPAN: usize = 48;
    let n = tokens.len();
    let (mut unsettled, mut looped) = (0, None);
    for p in 1..=MAX_PERIOD.min(n.saturating_sub(1)) {
        let run = (p..n).rev().take_while(|&j| tokens[j] == tokens[j - p]).count();
        unsettled = unsettled.max(run);
        if run + p >= MIN_SPAN.max(3 * p) {
            // Of several periods (3, 6, 9… in a loop of 3), the longest run keeps the shortest unit.
            looped = Some(looped.map_or(run, |r: usize| r.max(run)));
        }
    }
    LoopTail { unsettled, cut: looped.map(|run| n - run) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_is_argmax_with_first_tie() {
        let mut s = Sampler::new(SamplingParams::greedy(5), 0);
        assert_eq!(s.sample(&mut [0.1, 3.0, 3.0, -1.0], &[]), 1);
    }

    #[test]
    fn suppressed_tokens_are_never_chosen() {
        let params = SamplingParams { suppress_tokens: vec![1, 3], ..SamplingParams::greedy(5) };
        assert_eq!(Sampler::new(params.clone(), 0).sample(&mut [0.1, 3.0, 2.0, 9.0], &[]), 2);
        let sampled = SamplingParams { temperature: 1.0, seed: Some(3), ..params };
        let mut s = Sampler::new(sampled, 0);
        assert!((0..200).all(|_| !matches!(s.sample(&mut [0.1, 3.0, 2.0, 9.0], &[]), 1 | 3)));
    }

    #[test]
    fn repetition_penalty_changes_the_choice() {
        let mut s = Sampler::new(SamplingParams { repetition_penalty: 2.0, ..SamplingParams::greedy(5) }, 0);
        assert_eq!(s.sample(&mut [1.0, 3.0, 2.0], &[1]), 2);
    }

    #[test]
    fn seeded_sampling_is_reproducible_and_respects_top_k() {
        let params = SamplingParams { temperature: 1.0, top_k: 2, seed: Some(7), ..SamplingParams::default() };
        let logits = [2.0, 1.9, 1.8, 5.0, -3.0];
        let draw = |params: &SamplingParams| {
            let mut s = Sampler::new(params.clone(), 99);
            (0..200).map(|_| s.sample(&mut logits.clone(), &[])).collect::<Vec<_>>()
        };
        let a = draw(&params);
        assert_eq!(a, draw(&params));
        assert!(a.iter().all(|&t| t == 3 || t == 0), "top-k 2 keeps tokens 3 and 0");
        assert!(a.contains(&0) && a.contains(&3));
    }

    #[test]
    fn top_p_keeps_the_nucleus_only() {
        let params = SamplingParams { temperature: 1.0, top_p: 0.5, seed: Some(1), ..SamplingParams::default() };
        let mut s = Sampler::new(params, 0);
        // Token 2 holds ~84% of the mass: a 0.5 nucleus is just that token.
        for _ in 0..50 {
            assert_eq!(s.sample(&mut [0.0, 1.0, 3.0], &[]), 2);
        }
    }

    #[test]
    fn invalid_parameters_are_refused() {
        for bad in [
            SamplingParams { max_tokens: 0, ..Default::default() },
            SamplingParams { temperature: f32::NAN, ..Default::default() },
            SamplingParams { top_p: 0.0, ..Default::default() },
            SamplingParams { repetition_penalty: -1.0, ..Default::default() },
            SamplingParams { stop: vec![String::new()], ..Default::default() },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        assert!(SamplingParams::default().validate().is_ok());
    }

    #[test]
    fn loops_are_cut_but_short_runs_survive() {
        let mut tokens: Vec<u32> = (0..10).collect();
        tokens.extend(std::iter::repeat_n(7, 20));
        let tail = loop_tail(&tokens);
        assert_eq!(tail.cut, None, "20 dashes are a table rule, not a loop");
        assert_eq!(tail.unsettled, 19, "but they could still become one");
        let unit = [100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115];
        let mut looped: Vec<u32> = vec![1, 2, 3];
        for _ in 0..3 {
            looped.extend(unit);
        }
        assert_eq!(loop_tail(&looped).cut, Some(3 + 16));
    }

    #[test]
    fn a_loop_is_cut_back_to_the_start_of_its_run() {
        // "7.88.1-10-10-10…": every copy but the first goes, not only the ones that proved the loop.
        let mut text = String::from("curl (7.88.1");
        for _ in 0..40 {
            text.push_str("-10");
        }
        let tokens: Vec<u32> = text.chars().map(u32::from).collect();
        let tail = loop_tail(&tokens);
        assert_eq!(tail.cut, Some("curl (7.88.1-10".len()));
        assert_eq!(loop_tail(&tokens[..tokens.len() - 1]).cut, tail.cut, "any phase of the unit");
    }

    #[test]
    fn plain_text_leaves_little_unsettled() {
        let text = "The quick brown fox jumps over the lazy dog, then naps.";
        let tokens: Vec<u32> = text.chars().map(u32::from).collect();
        let tail = loop_tail(&tokens);
        assert_eq!(tail.cut, None);
        assert!(tail.unsettled <= 2, "{tail:?}");
    }
}
