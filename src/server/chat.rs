//! `POST /v1/chat/completions`: a request checked, its image decoded, then answered the way the
//! model's own rule says ([`ReadingSpec::route`](crate::models::paddleocr_vl::ReadingSpec::route)):
//! straight through the engine, or, for a line model asked `OCR:`, by reading the image as a page.
//! The answer comes whole or as server-sent events in OpenAI's chunk format; a streamed answer's
//! pieces join into the whole one. A client that goes away drops its engine stream, which aborts
//! the request and returns its KV blocks.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use image::DynamicImage;
use serde_json::{json, Value};
use tokio::sync::OwnedSemaphorePermit;

use super::error::ApiError;
use super::images::{decode, fetch, fit_pixels};
use super::metrics;
use super::request::{ChatRequest, Job};
use super::{AppState, Ready};
use crate::engine::{Event, FinishReason, Request, RequestStream, Usage};
use crate::models::paddleocr_vl::{Route, Task};
use crate::pipeline::page::{lay_out, read_pages};

pub async fn chat(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let response = match answer(&state, &headers, body).await {
        Ok(response) => response,
        Err(e) => {
            if e.status().is_server_error() {
                tracing::warn!("chat request failed: {e}");
            }
            e.into_response()
        }
    };
    metrics::request_done("chat", response.status().as_u16());
    response
}

async fn answer(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    state.authorize(headers)?;
    let ready = state.ready()?;
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::TooLarge(format!("the request body is over {} bytes", state.cfg.max_body_bytes))
        }
        _ => ApiError::bad(e.body_text()),
    })?;
    let request: ChatRequest =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad(format!("the body is not a valid request: {e}")))?;
    drop(body);
    if let Some(model) = request.model.as_deref().filter(|m| *m != state.cfg.model_name) {
        return Err(ApiError::NotFound(format!(
            "the model {model:?} does not exist: this server serves {:?}",
            state.cfg.model_name
        )));
    }
    let job = request.into_job(state.cfg.default_max_tokens)?;
    let permit = state.admitted.clone().try_acquire_owned().map_err(|_| ApiError::QueueFull(state.cfg.max_admitted))?;
    let image = load_image(state, &job).await?;
    let route = ready.engine.checkpoint().reading.route(Task::from_prompt(&job.instruction));
    let source = match route {
        Route::Unsupported(why) => return Err(ApiError::bad(why)),
        Route::Model => Source::Engine(submit(ready, image, &job).await?),
        Route::PageReader => {
            let _reading = state.page_reads.acquire().await.map_err(|_| ApiError::Unavailable("stopping".into()))?;
            read_as_page(ready, image).await?
        }
    };
    let meta = Meta::new(&state.cfg.model_name, started);
    if job.stream {
        Ok(stream(source, meta, job.include_usage, permit).into_response())
    } else {
        whole(source, meta).await.map(|v| Json(v).into_response())
    }
}

/// Fetches and decodes the job's image off the async threads.
async fn load_image(state: &AppState, job: &Job) -> Result<DynamicImage, ApiError> {
    let (url, remote, bounds) =
        (job.image_url.clone(), state.cfg.remote_images.clone(), (job.min_pixels, job.max_pixels));
    let loaded = tokio::task::spawn_blocking(move || {
        let image = decode(&fetch(&url, remote.as_ref())?)?;
        Ok::<_, ApiError>(fit_pixels(image, bounds.0, bounds.1))
    });
    loaded.await.map_err(|e| ApiError::Internal(format!("image task: {e}")))?
}

/// Submits to the engine (which prepares the image on the calling thread: a blocking task).
async fn submit(ready: &Ready, image: DynamicImage, job: &Job) -> Result<RequestStream, ApiError> {
    let engine = ready.engine.clone();
    let request = Request { images: vec![image], instruction: job.instruction.clone(), sampling: job.sampling.clone() };
    let submitted = tokio::task::spawn_blocking(move || engine.submit(request));
    submitted
        .await
        .map_err(|e| ApiError::Internal(format!("submit task: {e}")))?
        .map_err(|e| ApiError::bad(format!("{e:#}")))
}

/// Reads the image as a page (a line model's `OCR:`): layout, then every region's lines.
async fn read_as_page(ready: &Ready, image: DynamicImage) -> Result<Source, ApiError> {
    let (engine, detector, opts) = (ready.engine.clone(), ready.detector.clone(), ready.read.clone());
    let read = tokio::task::spawn_blocking(move || {
        let page = lay_out(detector.as_ref(), image).map_err(|e| ApiError::Internal(format!("layout: {e:#}")))?;
        let mut pages = read_pages(&engine, vec![page], &opts);
        pages.pop().ok_or_else(|| ApiError::Internal("the page was not read".into()))
    });
    let page = read.await.map_err(|e| ApiError::Internal(format!("page task: {e}")))??;
    let text = page.text();
    if text.is_empty() && !page.errors.is_empty() {
        return Err(ApiError::Internal(page.errors.join("; ")));
    }
    let events =
        [Event::Delta { text, tokens: Vec::new() }, Event::Done { reason: FinishReason::Stop, usage: page.usage }];
    Ok(Source::Finished(events.into()))
}

/// Where an answer's events come from: the engine as it generates, or an answer already made.
enum Source {
    Engine(RequestStream),
    Finished(VecDeque<Event>),
}

impl Source {
    async fn next(&mut self) -> Option<Event> {
        match self {
            Source::Engine(stream) => stream.next().await,
            Source::Finished(events) => events.pop_front(),
        }
    }
}

/// What every response and chunk of one answer carries.
struct Meta {
    id: String,
    created: u64,
    model: String,
    started: Instant,
}

impl Meta {
    fn new(model: &str, started: Instant) -> Self {
        let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Meta { id: format!("chatcmpl-{:032x}", rand::random::<u128>()), created, model: model.to_string(), started }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
               "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
    }

    fn usage_chunk(&self, usage: Usage) -> Value {
        json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
               "choices": [], "usage": usage_json(usage)})
    }
}

fn usage_json(u: Usage) -> Value {
    json!({"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
           "total_tokens": u.prompt_tokens + u.completion_tokens})
}

/// OpenAI's finish reason; `None` for an aborted request (the server is stopping).
fn finish_reason(reason: FinishReason) -> Option<&'static str> {
    match reason {
        FinishReason::Stop | FinishReason::Repetition => Some("stop"),
        FinishReason::Length => Some("length"),
        FinishReason::Aborted => None,
    }
}

/// The whole answer as one `chat.completion`.
async fn whole(mut source: Source, meta: Meta) -> Result<Value, ApiError> {
    let mut text = String::new();
    let mut first = true;
    loop {
        match source.next().await {
            Some(Event::Delta { text: t, .. }) => {
                if first && !t.is_empty() {
                    metrics::time_to_first_token(meta.started.elapsed().as_secs_f64());
                    first = false;
                }
                text.push_str(&t);
            }
            Some(Event::Done { reason, usage }) => {
                let finish =
                    finish_reason(reason).ok_or_else(|| ApiError::Unavailable("the server is stopping".into()))?;
                metrics::request_latency(meta.started.elapsed().as_secs_f64());
                return Ok(json!({
                    "id": meta.id, "object": "chat.completion", "created": meta.created, "model": meta.model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "logprobs": null, "finish_reason": finish}],
                    "usage": usage_json(usage),
                }));
            }
            Some(Event::Error(e)) => return Err(ApiError::Internal(e)),
            None => return Err(ApiError::Unavailable("the engine stopped before the answer was finished".into())),
        }
    }
}

/// Where a streamed answer is.
enum Phase {
    Role,
    Body,
    Usage(Usage),
    Done,
    End,
}

struct Streaming {
    source: Source,
    meta: Meta,
    include_usage: bool,
    phase: Phase,
    first_token: bool,
    /// Held until the stream ends, so the request counts against the server's capacity.
    _permit: OwnedSemaphorePermit,
}

/// The answer as server-sent events: a role chunk, content chunks, a chunk with the finish reason,
/// the usage chunk when asked, then `[DONE]`.
fn stream(
    source: Source,
    meta: Meta,
    include_usage: bool,
    permit: OwnedSemaphorePermit,
) -> Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>> {
    let state = Streaming { source, meta, include_usage, phase: Phase::Role, first_token: true, _permit: permit };
    let events = futures_util::stream::unfold(state, |mut s| async move {
        let data = next_data(&mut s).await?;
        Some((Ok(SseEvent::default().data(data)), s))
    });
    Sse::new(events)
}

async fn next_data(s: &mut Streaming) -> Option<String> {
    match std::mem::replace(&mut s.phase, Phase::End) {
        Phase::Role => {
            s.phase = Phase::Body;
            Some(s.meta.chunk(json!({"role": "assistant", "content": ""}), None).to_string())
        }
        Phase::Body => loop {
            match s.source.next().await {
                Some(Event::Delta { text, .. }) if text.is_empty() => continue,
                Some(Event::Delta { text, .. }) => {
                    if s.first_token {
                        metrics::time_to_first_token(s.meta.started.elapsed().as_secs_f64());
                        s.first_token = false;
                    }
                    s.phase = Phase::Body;
                    return Some(s.meta.chunk(json!({"content": text}), None).to_string());
                }
                Some(Event::Done { reason, usage }) => {
                    metrics::request_latency(s.meta.started.elapsed().as_secs_f64());
                    s.phase = if s.include_usage { Phase::Usage(usage) } else { Phase::Done };
                    let finish = finish_reason(reason).unwrap_or("abort");
                    return Some(s.meta.chunk(json!({}), Some(finish)).to_string());
                }
                Some(Event::Error(e)) => {
                    s.phase = Phase::Done;
                    return Some(ApiError::Internal(e).body().to_string());
                }
                None => {
                    s.phase = Phase::Done;
                    let e = ApiError::Unavailable("the engine stopped before the answer was finished".into());
                    return Some(e.body().to_string());
                }
            }
        },
        Phase::Usage(usage) => {
            s.phase = Phase::Done;
            Some(s.meta.usage_chunk(usage).to_string())
        }
        Phase::Done => Some("[DONE]".to_string()),
        Phase::End => None,
    }
}
