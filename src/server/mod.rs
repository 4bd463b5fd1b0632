//! `folio serve`: an OpenAI-compatible HTTP server on the engine, a drop-in for vLLM serving
//! PaddleOCR-VL (the clients of PaddleX, PaddleOCR and MinerU talk to it unchanged).
//!
//! axum on tokio. The server talks to the engine only through [`Engine`]'s API: submit, read the
//! event stream, drop it to abort, read the stats. Routes: `POST /v1/chat/completions`
//! ([`chat`]), `GET /v1/models`, `GET /health` (ready once the model is loaded), `GET /metrics`
//! ([`metrics`]). Errors are OpenAI-shaped ([`error`]). Capacity is bounded: a request beyond
//! `max_admitted` in progress gets a 429 at once rather than a queue that grows without end. On
//! shutdown the server stops accepting, lets requests in progress finish within a grace period,
//! then drops what is left (which aborts it in the engine).

pub mod chat;
pub mod error;
pub mod images;
pub mod metrics;
pub mod request;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Result;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::engine::Engine;
use crate::layout::LayoutDetector;
use crate::pipeline::reader::ReadOptions;
use error::ApiError;
pub use images::RemoteImages;

/// How the server behaves; see `folio serve --help`.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The name clients use in `model`; requests naming another model get a 404.
    pub model_name: String,
    /// Bearer key every `/v1` request must carry, when set.
    pub api_key: Option<String>,
    /// Most requests in progress (running or waiting in the engine); more get a 429.
    pub max_admitted: usize,
    pub max_body_bytes: usize,
    /// `http(s)` image URLs are fetched only when this is set.
    pub remote_images: Option<RemoteImages>,
    /// `max_tokens` when a request sets none.
    pub default_max_tokens: usize,
    /// How long requests in progress may run on after a shutdown signal.
    pub shutdown_grace: Duration,
}

/// What the server needs once the model is loaded.
pub struct Ready {
    pub engine: Arc<Engine>,
    /// Finds a page's regions when a line model reads an image as a page.
    pub detector: Arc<dyn LayoutDetector>,
    pub read: ReadOptions,
}

/// Pages read at once (a line model's `OCR:` requests): each holds a page image, its layout and a
/// blocking thread, so more in parallel would only add memory; their line requests still batch
/// together in the engine.
const MAX_PAGE_READS: usize = 4;

pub struct AppState {
    pub cfg: ServerConfig,
    ready: OnceLock<Ready>,
    admitted: Arc<Semaphore>,
    page_reads: Arc<Semaphore>,
    stopping: AtomicBool,
    created: u64,
}

impl AppState {
    pub fn new(cfg: ServerConfig) -> Arc<Self> {
        let admitted = Arc::new(Semaphore::new(cfg.max_admitted.max(1)));
        let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Arc::new(AppState {
            cfg,
            ready: OnceLock::new(),
            admitted,
            page_reads: Arc::new(Semaphore::new(MAX_PAGE_READS)),
            stopping: AtomicBool::new(false),
            created,
        })
    }

    /// The model is loaded: requests are served from now on.
    pub fn set_ready(&self, ready: Ready) {
        if self.ready.set(ready).is_err() {
            tracing::warn!("the server was made ready twice; the first model stays");
        }
    }

    /// The engine, once loaded.
    pub fn engine(&self) -> Option<Arc<Engine>> {
        self.ready.get().map(|r| r.engine.clone())
    }

    /// The engine, when it is loaded and the server is not stopping (else a 503).
    fn ready(&self) -> Result<&Ready, ApiError> {
        if self.stopping.load(Ordering::Relaxed) {
            return Err(ApiError::Unavailable("the server is shutting down".into()));
        }
        self.ready.get().ok_or_else(|| ApiError::Unavailable("the model is still loading".into()))
    }

    /// Checks the bearer key, when one is set.
    fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(key) = &self.cfg.api_key else { return Ok(()) };
        let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        match given.and_then(|v| v.strip_prefix("Bearer ")) {
            Some(given) if given.trim() == key => Ok(()),
            Some(_) => Err(ApiError::Unauthorized("the API key is not valid".into())),
            None => Err(ApiError::Unauthorized("an API key is needed: send `Authorization: Bearer KEY`".into())),
        }
    }
}

/// The routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat::chat))
        .route("/v1/models", get(models))
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(state.cfg.max_body_bytes))
        .with_state(state)
}

async fn models(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let response = match state.authorize(&headers) {
        Err(e) => e.into_response(),
        Ok(()) => Json(serde_json::json!({
            "object": "list",
            "data": [{"id": state.cfg.model_name, "object": "model", "created": state.created, "owned_by": "folio"}],
        }))
        .into_response(),
    };
    metrics::request_done("models", response.status().as_u16());
    response
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let status = match state.ready() {
        Ok(_) => (StatusCode::OK, "ok"),
        Err(_) if state.stopping.load(Ordering::Relaxed) => (StatusCode::SERVICE_UNAVAILABLE, "stopping"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "loading"),
    };
    (status.0, Json(serde_json::json!({"status": status.1}))).into_response()
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    let stats = state.ready.get().map(|r| r.engine.stats());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics::render(stats)).into_response()
}

async fn not_found() -> Response {
    ApiError::NotFound("no such route: the API is under /v1 (chat/completions, models)".into()).into_response()
}

/// Serves on `listener` until `shutdown` completes, then lets requests in progress finish for up
/// to the grace period; whatever is left is dropped (and so aborted in the engine) when the
/// caller drops the runtime.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    metrics::handle();
    let began = Arc::new(tokio::sync::Notify::new());
    let (signal_state, signal_began) = (state.clone(), began.clone());
    let graceful = async move {
        shutdown.await;
        signal_state.stopping.store(true, Ordering::Relaxed);
        tracing::info!("shutting down: no new requests; those in progress may finish");
        signal_began.notify_one();
    };
    let grace = state.cfg.shutdown_grace;
    let server = axum::serve(listener, router(state)).with_graceful_shutdown(graceful);
    tokio::select! {
        served = server => served?,
        _ = async { began.notified().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_s = grace.as_secs_f64(), "grace period over: aborting the requests still in progress");
        }
    }
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
