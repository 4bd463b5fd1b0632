//! Prompts: the checkpoint's chat template, its tokenizer, image-placeholder expansion, and the
//! Qwen2-VL-style 3D positions of the resulting tokens.
//!
//! Nothing here knows a token id: the template, the special-token strings and the ids all come from
//! the checkpoint's files (`chat_template.jinja` / `tokenizer_config.json`, `tokenizer.json`,
//! `config.json`, `generation_config.json`).

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Map, Value};
use tokenizers::Tokenizer;

use super::config::{Config, OneOrMany};
use super::text::Position3;
use super::vision::PatchGrid;

/// The recognition tasks PaddleOCR-VL was trained on, and the prompt each one takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Ocr,
    Table,
    Formula,
    Chart,
}

impl Task {
    pub fn prompt(self) -> &'static str {
        match self {
            Task::Ocr => "OCR:",
            Task::Table => "Table Recognition:",
            Task::Formula => "Formula Recognition:",
            Task::Chart => "Chart Recognition:",
        }
    }

    /// The task whose prompt `instruction` is (surrounding white space aside), if any.
    pub fn from_prompt(instruction: &str) -> Option<Task> {
        let instruction = instruction.trim();
        [Task::Ocr, Task::Table, Task::Formula, Task::Chart].into_iter().find(|t| t.prompt() == instruction)
    }

    /// The task's short name (`ocr`, `table`, `formula`, `chart`), as `--task` and `folio.json` take it.
    pub fn name(self) -> &'static str {
        match self {
            Task::Ocr => "ocr",
            Task::Table => "table",
            Task::Formula => "formula",
            Task::Chart => "chart",
        }
    }
}

impl std::str::FromStr for Task {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "ocr" | "text" => Task::Ocr,
            "table" => Task::Table,
            "formula" => Task::Formula,
            "chart" => Task::Chart,
            other => bail!("unknown task '{other}' (expected ocr, table, formula or chart)"),
        })
    }
}

/// Turns (images, instruction) into token ids, and generated ids back into text.
pub struct PromptBuilder {
    tokenizer: Tokenizer,
    template: String,
    /// Special-token strings from tokenizer_config.json, offered to the template as variables.
    template_vars: Map<String, Value>,
    image_token_id: u32,
    stop_token_ids: Vec<u32>,
    /// Which ids are byte-fallback pieces (`<0x41>`): their text depends on the bytes that follow.
    byte_tokens: Vec<bool>,
}

impl PromptBuilder {
    /// Reads `tokenizer.json`, `tokenizer_config.json`, the chat template and `generation_config.json`
    /// from a checkpoint directory.
    pub fn from_dir(dir: &Path, cfg: &Config) -> Result<Self> {
        let tok_path = dir.join("tokenizer.json");
        let tokenizer = Tokenizer::from_file(&tok_path).map_err(|e| anyhow!("loading {}: {e}", tok_path.display()))?;
        let tok_cfg: Value = read_json(&dir.join("tokenizer_config.json"))?.unwrap_or_default();
        let template = match std::fs::read_to_string(dir.join("chat_template.jinja")) {
            Ok(t) => t,
            Err(_) => match tok_cfg.get("chat_template") {
                Some(Value::String(t)) => t.clone(),
                _ => {
                    bail!("{} has no chat_template.jinja and tokenizer_config.json has no chat_template", dir.display())
                }
            },
        };
        let mut template_vars = Map::new();
        for key in ["bos_token", "eos_token", "pad_token", "unk_token", "cls_token", "sep_token"] {
            if let Some(s) = tok_cfg.get(key).and_then(token_string) {
                template_vars.insert(key.to_string(), Value::String(s));
            }
        }
        let mut stop_token_ids = cfg.eos_token_ids.clone();
        if let Some(gen) = read_json(&dir.join("generation_config.json"))? {
            if let Some(ids) =
                gen.get("eos_token_id").cloned().and_then(|v| serde_json::from_value::<OneOrMany>(v).ok())
            {
                stop_token_ids.extend(ids.into_vec());
            }
        }
        if let Some(eos) = template_vars.get("eos_token").and_then(Value::as_str).and_then(|s| tokenizer.token_to_id(s))
        {
            stop_token_ids.push(eos);
        }
        stop_token_ids.sort_unstable();
        stop_token_ids.dedup();
        if stop_token_ids.is_empty() {
            bail!("no end-of-sequence token in config.json, generation_config.json or tokenizer_config.json");
        }
        let mut byte_tokens = vec![false; tokenizer.get_vocab_size(true)];
        for (piece, id) in tokenizer.get_vocab(true) {
            let is_byte = piece.len() == 6 && piece.starts_with("<0x") && piece.ends_with('>');
            if let Some(slot) = byte_tokens.get_mut(id as usize) {
                *slot = is_byte;
            }
        }
        Ok(Self {
            tokenizer,
            template,
            template_vars,
            image_token_id: cfg.tokens.image_token_id,
            stop_token_ids,
            byte_tokens,
        })
    }

    pub fn stop_token_ids(&self) -> &[u32] {
        &self.stop_token_ids
    }

    pub fn image_token_id(&self) -> u32 {
        self.image_token_id
    }

    /// The chat-templated text of one user turn: one image per entry of `images`, then `instruction`.
    pub fn render(&self, images: usize, instruction: &str) -> Result<String> {
        let mut content: Vec<Value> = (0..images).map(|_| json!({"type": "image"})).collect();
        content.push(json!({"type": "text", "text": instruction}));
        let mut ctx = self.template_vars.clone();
        ctx.insert("messages".into(), json!([{"role": "user", "content": content}]));
        ctx.insert("add_generation_prompt".into(), Value::Bool(true));
        let mut env = minijinja::Environment::new();
        env.add_template("chat", &self.template).context("parsing the chat template")?;
        let tmpl = env.get_template("chat")?;
        tmpl.render(Value::Object(ctx)).context("rendering the chat template")
    }

    /// Token ids of a user turn whose `i`-th image becomes `image_tokens[i]` image tokens.
    pub fn encode(&self, image_tokens: &[usize], instruction: &str) -> Result<Vec<u32>> {
        let text = self.render(image_tokens.len(), instruction)?;
        let enc = self.tokenizer.encode(text.as_str(), false).map_err(|e| anyhow!("tokenizing the prompt: {e}"))?;
        let placeholders = enc.get_ids().iter().filter(|&&id| id == self.image_token_id).count();
        if placeholders != image_tokens.len() {
            bail!("the chat template produced {placeholders} image placeholders for {} images", image_tokens.len());
        }
        let mut counts = image_tokens.iter();
        let mut ids = Vec::with_capacity(enc.len() + image_tokens.iter().sum::<usize>());
        for &id in enc.get_ids() {
            match (id == self.image_token_id).then(|| counts.next()).flatten() {
                Some(&n) => ids.extend(std::iter::repeat_n(id, n)),
                None => ids.push(id),
            }
        }
        Ok(ids)
    }

    /// Whether `id` is a byte-fallback piece, whose text can change when more bytes follow.
    pub fn is_byte_token(&self, id: u32) -> bool {
        self.byte_tokens.get(id as usize).copied().unwrap_or(false)
    }

    /// Ids of the tokens whose text satisfies `select`, in id order (special tokens included).
    pub fn token_ids_where(&self, select: impl Fn(&str) -> bool) -> Vec<u32> {
        let mut ids: Vec<u32> =
            self.tokenizer.get_vocab(true).into_iter().filter(|(piece, _)| select(piece)).map(|(_, id)| id).collect();
        ids.sort_unstable();
        ids
    }

    /// Token ids of plain text (no template, no special tokens): what the model should answer.
    pub fn encode_text(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.tokenizer.encode(text, false).map_err(|e| anyhow!("tokenizing: {e}"))?.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer.decode(ids, true).map_err(|e| anyhow!("decoding tokens: {e}"))
    }
}

/// 3D positions of a prompt: text tokens count up on all three axes; the `k`-th run of image tokens
/// lays out its merged grid `(rows/merge, cols/merge)` from the current position, after which the
/// counter advances by the larger side of that grid (not by its token count). Returns the positions
/// and the position of the next token.
pub fn prompt_positions(
    ids: &[u32],
    image_token_id: u32,
    grids: &[PatchGrid],
    merge: usize,
) -> Result<(Vec<Position3>, u32)> {
    let mut out = Vec::with_capacity(ids.len());
    let mut grids = grids.iter();
    let mut next = 0u32;
    let mut i = 0;
    while i < ids.len() {
        if ids[i] != image_token_id {
            out.push([next; 3]);
            next += 1;
            i += 1;
            continue;
        }
        let g = grids.next().context("more image-token runs than images")?;
        let (rows, cols) = (g.rows / merge, g.cols / merge);
        let run = ids[i..].iter().take_while(|&&id| id == image_token_id).count();
        if run != rows * cols {
            bail!("an image run of {run} tokens does not match its {rows}x{cols} merged grid");
        }
        for r in 0..rows as u32 {
            for c in 0..cols as u32 {
                out.push([next, next + r, next + c]);
            }
        }
        next += rows.max(cols) as u32;
        i += run;
    }
    if grids.next().is_some() {
        bail!("fewer image-token runs than images");
    }
    Ok((out, next))
}

fn read_json(path: &Path) -> Result<Option<Value>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// A special token in tokenizer_config.json is either a string or `{"content": "..."}`.
fn token_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_runs_advance_by_the_longer_side() {
        // text, text, 2x3 merged image (6 tokens), text
        let ids = [5, 6, 9, 9, 9, 9, 9, 9, 7];
        let (pos, next) = prompt_positions(&ids, 9, &[PatchGrid { rows: 4, cols: 6 }], 2).unwrap();
        assert_eq!(&pos[..3], &[[0, 0, 0], [1, 1, 1], [2, 2, 2]]);
        assert_eq!(pos[7], [2, 3, 4]); // row 1, col 2
        assert_eq!(pos[8], [5, 5, 5]); // 2 + max(2, 3)
        assert_eq!(next, 6);
    }

    #[test]
    fn mismatched_runs_are_errors() {
        assert!(prompt_positions(&[9, 9, 9], 9, &[PatchGrid { rows: 4, cols: 4 }], 2).is_err());
        assert!(prompt_positions(&[1, 2], 9, &[PatchGrid { rows: 2, cols: 2 }], 2).is_err());
    }
}
