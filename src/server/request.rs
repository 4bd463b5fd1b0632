//! The body of `POST /v1/chat/completions`, as OpenAI's SDK and vLLM's clients (PaddleX, MinerU)
//! send it, checked and turned into a [`Job`]: one image, an instruction and sampling parameters.
//!
//! Fields that would change what the answer means and that folio cannot honour (`n` > 1, tools,
//! log-probabilities, structured output) are refused with a 400; other unknown fields are
//! ignored, as vLLM ignores them.

use serde::Deserialize;
use serde_json::Value;

use super::error::ApiError;
use crate::engine::sampling::{SamplingParams, MAX_TOKENS_LIMIT};

#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    pub model: Option<String>,
    pub messages: Vec<Message>,
    pub max_tokens: Option<i64>,
    pub max_completion_tokens: Option<i64>,
    /// vLLM's extension: generate at least this many tokens.
    pub min_tokens: Option<i64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<i64>,
    pub seed: Option<i64>,
    pub stop: Option<Stop>,
    pub repetition_penalty: Option<f64>,
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
    /// Special tokens never appear in folio's text; `true` (vLLM's default) and `false` are both
    /// accepted.
    pub skip_special_tokens: Option<bool>,
    pub mm_processor_kwargs: Option<MmProcessorKwargs>,
    // Refused when they ask for something folio does not do.
    pub n: Option<i64>,
    pub tools: Option<Value>,
    pub functions: Option<Value>,
    pub tool_choice: Option<Value>,
    pub logprobs: Option<bool>,
    pub top_logprobs: Option<i64>,
    pub response_format: Option<Value>,
    pub best_of: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct Message {
    pub role: String,
    #[serde(default)]
    pub content: Content,
}

#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
    #[default]
    Empty,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    Text { text: String },
    ImageUrl { image_url: ImageUrl },
}

/// `{"url": …}`, or the URL alone as some clients send it.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ImageUrl {
    Object { url: String },
    Url(String),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct MmProcessorKwargs {
    pub min_pixels: Option<i64>,
    pub max_pixels: Option<i64>,
}

/// A checked request.
#[derive(Debug)]
pub struct Job {
    pub image_url: String,
    pub instruction: String,
    pub sampling: SamplingParams,
    pub stream: bool,
    pub include_usage: bool,
    /// Bounds on the image's pixel count (`mm_processor_kwargs`): it is scaled into them.
    pub min_pixels: Option<u64>,
    pub max_pixels: Option<u64>,
}

impl ChatRequest {
    /// Checks the request and takes out what the model needs. `default_max_tokens` applies when
    /// the client sets none.
    pub fn into_job(self, default_max_tokens: usize) -> Result<Job, ApiError> {
        self.refuse_unsupported()?;
        let (image_url, instruction) = single_turn(self.messages)?;
        let max_tokens = match self.max_completion_tokens.or(self.max_tokens) {
            None => default_max_tokens,
            Some(n) if (1..=MAX_TOKENS_LIMIT as i64).contains(&n) => n as usize,
            Some(n) => {
                return Err(ApiError::bad_param(
                    "max_tokens",
                    format!("max_tokens must be in 1..={MAX_TOKENS_LIMIT}, got {n}"),
                ))
            }
        };
        let top_k = match self.top_k {
            None | Some(-1) | Some(0) => 0,
            Some(k) if k > 0 => k as usize,
            Some(k) => return Err(ApiError::bad_param("top_k", format!("top_k must be -1, 0 or positive, got {k}"))),
        };
        let min_tokens = match self.min_tokens {
            None => 0,
            Some(n) if (0..=max_tokens as i64).contains(&n) => n as usize,
            Some(n) => {
                return Err(ApiError::bad_param("min_tokens", format!("min_tokens must be in 0..=max_tokens, got {n}")))
            }
        };
        let seed = self.seed.map(|s| s as u64);
        let stop = match self.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s],
            Some(Stop::Many(v)) => v,
        };
        let sampling = SamplingParams {
            max_tokens,
            temperature: self.temperature.unwrap_or(0.0) as f32,
            top_p: self.top_p.unwrap_or(1.0) as f32,
            top_k,
            seed,
            repetition_penalty: self.repetition_penalty.unwrap_or(1.0) as f32,
            stop,
            min_tokens,
            ..SamplingParams::default()
        };
        sampling.validate().map_err(|e| ApiError::bad(format!("{e:#}")))?;
        let (min_pixels, max_pixels) = match self.mm_processor_kwargs {
            None => (None, None),
            Some(kw) => (pixels("min_pixels", kw.min_pixels)?, pixels("max_pixels", kw.max_pixels)?),
        };
        if let (Some(lo), Some(hi)) = (min_pixels, max_pixels) {
            if lo > hi {
                return Err(ApiError::bad(format!("mm_processor_kwargs: min_pixels {lo} is above max_pixels {hi}")));
            }
        }
        let include_usage = self.stream_options.is_some_and(|o| o.include_usage);
        Ok(Job { image_url, instruction, sampling, stream: self.stream, include_usage, min_pixels, max_pixels })
    }

    fn refuse_unsupported(&self) -> Result<(), ApiError> {
        if self.n.is_some_and(|n| n != 1) || self.best_of.is_some_and(|n| n != 1) {
            return Err(ApiError::bad_param("n", "only one choice per request is supported (n = 1)"));
        }
        let present = |v: &Option<Value>| v.as_ref().is_some_and(|v| !v.is_null() && v != &Value::Array(Vec::new()));
        if present(&self.tools) || present(&self.functions) {
            return Err(ApiError::bad_param("tools", "tools and function calling are not supported"));
        }
        if self.tool_choice.as_ref().is_some_and(|v| !v.is_null() && v != "none" && v != "auto") {
            return Err(ApiError::bad_param("tool_choice", "tools and function calling are not supported"));
        }
        if self.logprobs == Some(true) || self.top_logprobs.is_some_and(|n| n > 0) {
            return Err(ApiError::bad_param("logprobs", "log-probabilities are not supported"));
        }
        let structured = self.response_format.as_ref().and_then(|f| f.get("type")).is_some_and(|t| t != "text");
        if structured {
            return Err(ApiError::bad_param("response_format", "only text responses are supported"));
        }
        Ok(())
    }
}

fn pixels(name: &'static str, value: Option<i64>) -> Result<Option<u64>, ApiError> {
    match value {
        None => Ok(None),
        Some(v) if (1..=1_000_000_000).contains(&v) => Ok(Some(v as u64)),
        Some(v) => Err(ApiError::bad_param(name, format!("mm_processor_kwargs.{name} must be in 1..=1e9, got {v}"))),
    }
}

/// The image and the instruction of a one-turn conversation: system messages are refused
/// (PaddleOCR-VL has no system prompt), and so are earlier turns.
fn single_turn(messages: Vec<Message>) -> Result<(String, String), ApiError> {
    let mut user = None;
    for message in messages {
        match message.role.as_str() {
            "user" if user.is_none() => user = Some(message.content),
            "user" | "assistant" => {
                return Err(ApiError::bad_param("messages", "conversations are not supported: send one user message"))
            }
            "system" | "developer" => {
                return Err(ApiError::bad_param("messages", "system prompts are not supported by this model"))
            }
            other => return Err(ApiError::bad_param("messages", format!("unknown role {other:?}"))),
        }
    }
    let content = user.ok_or_else(|| ApiError::bad_param("messages", "no user message"))?;
    let (mut images, mut texts) = (Vec::new(), Vec::new());
    match content {
        Content::Text(text) => texts.push(text),
        Content::Parts(parts) => {
            for part in parts {
                match part {
                    Part::Text { text } => texts.push(text),
                    Part::ImageUrl { image_url: ImageUrl::Object { url } | ImageUrl::Url(url) } => images.push(url),
                }
            }
        }
        Content::Empty => {}
    }
    let image = match images.len() {
        1 => images.remove(0),
        0 => return Err(ApiError::bad_param("messages", "the user message has no image (an image_url part)")),
        n => return Err(ApiError::bad_param("messages", format!("one image per request, got {n}"))),
    };
    let instruction = texts.join("\n").trim().to_string();
    if instruction.is_empty() {
        return Err(ApiError::bad_param("messages", "no instruction: send a text part such as \"OCR:\""));
    }
    Ok((image, instruction))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(body: Value) -> Result<Job, ApiError> {
        let request: ChatRequest = serde_json::from_value(body).map_err(|e| ApiError::bad(e.to_string()))?;
        request.into_job(1024)
    }

    fn image_message(text: &str) -> Value {
        serde_json::json!([{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "text", "text": text}]}])
    }

    #[test]
    fn a_paddlex_request_becomes_a_job() -> Result<(), ApiError> {
        let j = job(serde_json::json!({
            "model": "PaddleOCR-VL-0.9B", "messages": image_message("OCR:"), "max_completion_tokens": 4096,
            "temperature": 0, "skip_special_tokens": true, "stream": true,
            "stream_options": {"include_usage": true},
            "mm_processor_kwargs": {"min_pixels": 112896, "max_pixels": 2822400}, "extra_body_field": 1
        }))?;
        assert_eq!(
            (j.instruction.as_str(), j.sampling.max_tokens, j.stream, j.include_usage),
            ("OCR:", 4096, true, true)
        );
        assert_eq!((j.min_pixels, j.max_pixels), (Some(112896), Some(2822400)));
        assert!(j.image_url.starts_with("data:image/png"));
        Ok(())
    }

    #[test]
    fn meaning_changing_and_absurd_fields_are_refused() {
        for body in [
            serde_json::json!({"messages": image_message("OCR:"), "n": 2}),
            serde_json::json!({"messages": image_message("OCR:"), "tools": [{"type": "function"}]}),
            serde_json::json!({"messages": image_message("OCR:"), "logprobs": true}),
            serde_json::json!({"messages": image_message("OCR:"), "max_tokens": 0}),
            serde_json::json!({"messages": image_message("OCR:"), "max_tokens": 10_000_000}),
            serde_json::json!({"messages": image_message("OCR:"), "temperature": -1}),
            serde_json::json!({"messages": image_message("OCR:"), "top_p": 0}),
            serde_json::json!({"messages": image_message("OCR:"), "top_k": -5}),
            serde_json::json!({"messages": image_message("OCR:"), "mm_processor_kwargs": {"max_pixels": -1}}),
            serde_json::json!({"messages": image_message("")}),
            serde_json::json!({"messages": [{"role": "user", "content": "OCR:"}]}),
            serde_json::json!({"messages": [{"role": "system", "content": "be nice"}]}),
            serde_json::json!({"messages": []}),
        ] {
            let e = job(body.clone()).err();
            assert!(matches!(e, Some(ApiError::BadRequest { .. })), "{body}: {e:?}");
        }
    }
}
