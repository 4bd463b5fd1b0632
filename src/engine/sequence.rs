//! One request's state inside the engine: its tokens and positions, how many of them are in the KV
//! cache, the blocks it owns, its image embeddings while its prefill needs them, and its output.

use candle_core::Tensor;
use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;

use super::block_pool::BlockTable;
use super::sampling::{loop_tail, Sampler};
use crate::models::paddleocr_vl::{Position3, PreparedImage};

/// Why a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An end-of-sequence token or a stop string.
    Stop,
    /// `max_tokens` reached.
    Length,
    /// The repetition guard cut a loop.
    Repetition,
    /// Aborted by the client (or its stream was dropped).
    Aborted,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    /// Times this request was preempted and recomputed.
    pub preemptions: usize,
}

impl std::ops::AddAssign for Usage {
    /// Totals over several requests (a page read as many pieces).
    fn add_assign(&mut self, other: Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.preemptions += other.preemptions;
    }
}

/// What a request's stream receives.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// New text (possibly empty while a multi-byte character is incomplete) and the tokens behind it.
    Delta {
        text: String,
        tokens: Vec<u32>,
    },
    Done {
        reason: FinishReason,
        usage: Usage,
    },
    Error(String),
}

/// Everything a request brings to the engine, prepared on the client's thread.
pub struct NewRequest {
    pub id: u64,
    pub prompt: Vec<u32>,
    pub positions: Vec<Position3>,
    pub next_position: u32,
    pub images: Vec<PreparedImage>,
    pub sampler: Sampler,
    pub events: UnboundedSender<Event>,
}

pub struct Sequence {
    pub id: u64,
    /// Prompt then generated tokens.
    pub tokens: Vec<u32>,
    pub positions: Vec<Position3>,
    pub next_position: u32,
    pub prompt_len: usize,
    /// Leading tokens whose keys/values are in the cache.
    pub computed: usize,
    pub blocks: BlockTable,
    pub images: Vec<PreparedImage>,
    /// All images' decoder embeddings, concatenated; only while the prefill still needs them.
    pub image_embeds: Option<Tensor>,
    /// One past the last image token (0 without images): prefill past it drops the embeddings.
    pub image_end: usize,
    pub sampler: Sampler,
    pub events: UnboundedSender<Event>,
    pub preemptions: usize,
    pub text: TextStream,
    /// Generated tokens already sent in events.
    pub released: usize,
    pub finished: Option<FinishReason>,
}

impl Sequence {
    pub fn new(req: NewRequest, blocks: BlockTable, image_token_id: u32) -> Self {
        let image_end = req.prompt.iter().rposition(|&t| t == image_token_id).map_or(0, |i| i + 1);
        Self {
            id: req.id,
            prompt_len: req.prompt.len(),
            tokens: req.prompt,
            positions: req.positions,
            next_position: req.next_position,
            computed: 0,
            blocks,
            images: req.images,
            image_embeds: None,
            image_end,
            sampler: req.sampler,
            events: req.events,
            preemptions: 0,
            text: TextStream::default(),
            released: 0,
            finished: None,
        }
    }

    pub fn generated(&self) -> &[u32] {
        &self.tokens[self.prompt_len..]
    }

    /// Whether the next chunk needs image embeddings that are not there.
    pub fn needs_vision(&self) -> bool {
        self.computed < self.image_end && self.image_embeds.is_none()
    }

    /// Patches the vision tower must encode before this sequence can prefill.
    pub fn vision_patches(&self) -> usize {
        if self.needs_vision() {
            self.images.iter().map(|i| i.grid.patches()).sum()
        } else {
            0
        }
    }

    /// Gives back the blocks and forgets the cache contents; the sequence will be recomputed from
    /// its tokens (prompt and what it generated so far).
    pub fn preempt(&mut self) {
        self.blocks.release();
        self.computed = 0;
        self.image_embeds = None;
        self.preemptions += 1;
    }

    /// Records `n` more tokens as cached; drops image embeddings once the prefill is past them.
    pub fn advance(&mut self, n: usize) {
        self.computed += n;
        if self.computed >= self.image_end {
            self.image_embeds = None;
        }
    }

    /// Appends a sampled token, applies the stop rules, and returns the stream event. Text and
    /// token ids are released only once the repetition guard can no longer take them back.
    pub fn push_token(&mut self, token: u32, stop_ids: &[u32], text: &dyn Detokenizer) -> Event {
        self.tokens.push(token);
        self.positions.push([self.next_position; 3]);
        self.next_position += 1;
        let params = self.sampler.params();
        // Generated tokens that are text (a stop token is not), and how many of them at the end a
        // loop found later could still remove.
        let mut text_len = self.generated().len();
        let mut unsettled = 0;
        if stop_ids.contains(&token) || params.stop_token_ids.contains(&token) {
            self.finished = Some(FinishReason::Stop);
            text_len -= 1;
        } else if params.repetition_guard && text_len > params.min_tokens {
            let tail = loop_tail(self.generated());
            match tail.cut {
                Some(keep) => {
                    self.tokens.truncate(self.prompt_len + keep);
                    text_len = keep;
                    self.finished = Some(FinishReason::Repetition);
                }
                None => unsettled = tail.unsettled,
            }
        }
        if self.finished.is_none() && text_len >= params.max_tokens {
            self.finished = Some(FinishReason::Length);
        }
        if self.finished.is_some() {
            unsettled = 0;
        }
        let text_tokens = &self.tokens[self.prompt_len..self.prompt_len + text_len];
        let mut settled = text_len - unsettled;
        let stops = &params.stop;
        let mut delta = self.text.update(&text_tokens[..settled], text, stops);
        if let Some(cut) = self.text.find_stop(stops) {
            delta.push_str(&self.text.truncate_to(cut));
            self.finished = Some(FinishReason::Stop);
            settled = text_len;
        } else if self.finished.is_some() {
            delta.push_str(&self.text.flush(text_tokens, text));
        }
        let emitted = text_tokens.get(self.released..settled).unwrap_or_default().to_vec();
        self.released = self.released.max(settled);
        Event::Delta { text: delta, tokens: emitted }
    }

    pub fn usage(&self) -> Usage {
        Usage {
            prompt_tokens: self.prompt_len,
            completion_tokens: self.generated().len(),
            preemptions: self.preemptions,
        }
    }
}

/// Token ids to text, as the tokenizer does it.
pub trait Detokenizer {
    fn decode(&self, tokens: &[u32]) -> String;
    /// Byte-fallback pieces decode differently depending on the bytes after them.
    fn is_byte_token(&self, token: u32) -> bool;
}

/// The text of the generated tokens, released to the client only when it is final: never the text
/// of a trailing run of byte-fallback pieces (a following byte can turn them into another
/// character, or into replacement characters), and never a tail that may yet become a stop string.
///
/// Decoding is incremental (each step decodes a window of a few tokens, as TGI and vLLM do): the
/// text of `tokens[prefix..read]` is decoded again with the new tokens and only the difference is
/// appended, so boundary effects of the decoder (a stripped leading space) cancel out.
#[derive(Debug, Default)]
pub struct TextStream {
    /// Text of `tokens[..read]`.
    full: String,
    /// Bytes of `full` already sent.
    sent: usize,
    prefix: usize,
    read: usize,
}

impl TextStream {
    /// Re-decodes the stable prefix of the generated tokens and returns the newly releasable text.
    fn update(&mut self, tokens: &[u32], text: &dyn Detokenizer, stops: &[String]) -> String {
        let trailing_bytes = tokens.iter().rev().take_while(|&&t| text.is_byte_token(t)).count();
        self.advance(tokens, tokens.len() - trailing_bytes, text);
        let held = stops.iter().map(|s| partial_suffix(&self.full, s)).max().unwrap_or(0);
        let upto = self.find_stop(stops).unwrap_or(self.full.len()).min(self.full.len() - held);
        self.release(upto)
    }

    /// Releases everything (the sequence ended).
    fn flush(&mut self, tokens: &[u32], text: &dyn Detokenizer) -> String {
        self.advance(tokens, tokens.len(), text);
        self.release(self.full.len())
    }

    /// Extends `full` to the text of `tokens[..end]`.
    fn advance(&mut self, tokens: &[u32], end: usize, text: &dyn Detokenizer) {
        if end <= self.read {
            return;
        }
        let before = text.decode(&tokens[self.prefix..self.read]);
        let after = text.decode(&tokens[self.prefix..end]);
        match after.strip_prefix(before.as_str()) {
            Some(delta) => self.full.push_str(delta),
            // The window's text changed retroactively (should not happen with the stable rule
            // above): fall back to decoding everything.
            None => self.full = text.decode(&tokens[..end]),
        }
        self.prefix = self.read;
        self.read = end;
    }

    fn release(&mut self, upto: usize) -> String {
        let delta = self.full.get(self.sent..upto).unwrap_or_default().to_string();
        self.sent = self.sent.max(upto);
        delta
    }

    /// Byte offset of the first stop string in the text, if any. Only the unsent tail (plus room
    /// for a stop string straddling it) is searched: earlier text was checked before it was sent.
    fn find_stop(&self, stops: &[String]) -> Option<usize> {
        stops
            .iter()
            .filter_map(|s| {
                let mut from = self.sent.saturating_sub(s.len());
                while !self.full.is_char_boundary(from) {
                    from -= 1;
                }
                self.full[from..].find(s.as_str()).map(|i| from + i)
            })
            .min()
    }

    /// Ends the text just before a stop string and returns what remains to be sent before it.
    fn truncate_to(&mut self, cut: usize) -> String {
        self.full.truncate(cut);
        self.sent = self.sent.min(cut);
        self.release(cut)
    }

    pub fn text(&self) -> &str {
        &self.full
    }
}

/// Length of the longest proper prefix of `stop` that `text` ends with (text that may yet become
/// the stop string, so it is held back).
fn partial_suffix(text: &str, stop: &str) -> usize {
    (1..stop.len()).rev().find(|&k| stop.is_char_boundary(k) && text.ends_with(&stop[..k])).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids below 0x110000 are characters; 0x200000 + b is the byte piece b (ASCII only here, and a
    /// run of byte pieces followed by 0xFF decodes to replacement characters, as byte fallback does).
    struct Chars;

    impl Detokenizer for Chars {
        fn decode(&self, tokens: &[u32]) -> String {
            let mut out = String::new();
            let mut i = 0;
            while i < tokens.len() {
                let run = tokens[i..].iter().take_while(|&&t| t >= 0x200000).count();
                if run == 0 {
                    out.push(char::from_u32(tokens[i]).unwrap_or('?'));
                    i += 1;
                    continue;
                }
                let bytes: Vec<u8> = tokens[i..i + run].iter().map(|t| (t - 0x200000) as u8).collect();
                match String::from_utf8(bytes) {
                    Ok(s) => out.push_str(&s),
                    Err(_) => out.extend(std::iter::repeat_n('\u{FFFD}', run)),
                }
                i += run;
            }
            out
        }

        fn is_byte_token(&self, token: u32) -> bool {
            token >= 0x200000
        }
    }

    fn ids(s: &str) -> Vec<u32> {
        s.chars().map(|c| c as u32).collect()
    }

    #[test]
    fn stop_strings_are_held_back_then_cut() {
        let mut ts = TextStream::default();
        let stops = vec!["END".to_string()];
        let mut sent = String::new();
        let mut toks = Vec::new();
        for c in ids("abcEN") {
            toks.push(c);
            sent.push_str(&ts.update(&toks, &Chars, &stops));
        }
        assert_eq!(sent, "abc", "'EN' may start 'END'");
        toks.push('D' as u32);
        sent.push_str(&ts.update(&toks, &Chars, &stops));
        let cut = ts.find_stop(&stops).unwrap();
        sent.push_str(&ts.truncate_to(cut));
        assert_eq!(sent, "abc");
        assert_eq!(ts.text(), "abc");
    }

    /// Feeds `tokens` to a fresh sequence until it finishes; returns the streamed text and ids.
    fn stream(tokens: &[u32], stop_ids: &[u32]) -> (String, Vec<u32>, Option<FinishReason>) {
        use super::super::block_pool::BlockPool;
        use super::super::sampling::SamplingParams;
        let (events, _rx) = tokio::sync::mpsc::unbounded_channel();
        let req = NewRequest {
            id: 0,
            prompt: vec![1],
            positions: vec![[0; 3]],
            next_position: 1,
            images: Vec::new(),
            sampler: Sampler::new(SamplingParams::greedy(500), 0),
            events,
        };
        let mut seq = Sequence::new(req, BlockPool::new(4).table(), 9);
        let (mut text, mut ids) = (String::new(), Vec::new());
        for &t in tokens {
            if let Event::Delta { text: delta, tokens } = seq.push_token(t, stop_ids, &Chars) {
                text.push_str(&delta);
                ids.extend(tokens);
            }
            if seq.finished.is_some() {
                break;
            }
        }
        (text, ids, seq.finished)
    }

    #[test]
    fn a_loop_never_reaches_the_stream() {
        let mut looped = String::from("curl (7.88.1");
        for _ in 0..40 {
            looped.push_str("-10");
        }
        let (text, sent, reason) = stream(&ids(&looped), &[]);
        assert_eq!(reason, Some(FinishReason::Repetition));
        assert_eq!(text, "curl (7.88.1-10", "the copies that came before the proof go too");
        assert_eq!(sent, ids(&text), "ids match the text");
    }

    #[test]
    fn ordinary_text_streams_whole() {
        let line = "a table rule ---------- and the end";
        let mut tokens = ids(line);
        tokens.push(3);
        let (text, sent, reason) = stream(&tokens, &[3]);
        assert_eq!((text.as_str(), reason), (line, Some(FinishReason::Stop)));
        assert_eq!(sent, ids(line));
    }

    #[test]
    fn byte_pieces_wait_for_what_follows() {
        let mut ts = TextStream::default();
        let t = 0x200000 + b't' as u32;
        assert_eq!(ts.update(&[b'a' as u32, t], &Chars, &[]), "a", "'t' as a byte piece is not final yet");
        // A following invalid byte turns the run into replacement characters, 't' included.
        let mut all = vec![b'a' as u32, t, 0x200000 + 0xBE];
        assert_eq!(ts.update(&all, &Chars, &[]), "");
        all.push(b'z' as u32);
        assert_eq!(ts.update(&all, &Chars, &[]), "\u{FFFD}\u{FFFD}z");
        all.push(t);
        assert_eq!(ts.flush(&all, &Chars), "t");
    }
}
