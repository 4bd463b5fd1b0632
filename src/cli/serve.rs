//! `folio serve`: the OpenAI-compatible server ([`folio::server`]). It listens at once (so
//! `/health` answers "loading" while the model loads), loads the model and the layout detector,
//! then serves until Ctrl-C or SIGTERM, and exits 0 after the grace period.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use folio::server::{serve, shutdown_signal, AppState, Ready, RemoteImages, ServerConfig};

use super::{EngineArgs, LayoutArgs, ModelArgs, PageReadingArgs};

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default: give 0.0.0.0 to serve other machines).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Bearer key every /v1 request must carry (the environment variable keeps it out of the
    /// process list).
    #[arg(long, env = "FOLIO_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// The model's name in /v1/models and in requests (default: the --model given, or
    /// folio-ocr-small for the embedded model).
    #[arg(long)]
    pub served_model_name: Option<String>,
    /// Most requests in progress at once; more get 429 (retry later).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_concurrent_requests: u32,
    /// Largest request body, in MiB (images come base64-encoded inside it).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_body_mib: u32,
    /// `max_tokens` for requests that set none.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=32768))]
    pub default_max_tokens: u32,
    /// Fetch `http(s)` image URLs (off by default; `file:` URLs and paths are never read).
    #[arg(long)]
    pub allow_remote_images: bool,
    /// Timeout of one remote image fetch, in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=600))]
    pub remote_image_timeout: u32,
    /// Largest remote image, in MiB.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub remote_image_max_mib: u32,
    /// Seconds requests in progress may run on after Ctrl-C or SIGTERM.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(0..=3600))]
    pub shutdown_grace: u32,
    #[command(flatten)]
    pub layout: LayoutArgs,
    #[command(flatten)]
    pub reading: PageReadingArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

pub fn run(args: ServeArgs) -> Result<ExitCode> {
    let name = args
        .served_model_name
        .clone()
        .or_else(|| args.model.model.clone())
        .unwrap_or_else(|| folio::models::embedded::NAME.to_string());
    let remote_images = args.allow_remote_images.then(|| RemoteImages {
        timeout: Duration::from_secs(args.remote_image_timeout as u64),
        max_bytes: args.remote_image_max_mib as usize * (1 << 20),
    });
    let cfg = ServerConfig {
        model_name: name,
        api_key: args.api_key.clone().filter(|k| !k.is_empty()),
        max_admitted: args.max_concurrent_requests as usize,
        max_body_bytes: args.max_body_mib as usize * (1 << 20),
        remote_images,
        default_max_tokens: args.default_max_tokens as usize,
        shutdown_grace: Duration::from_secs(args.shutdown_grace as u64),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let addr = format!("{}:{}", args.host, args.port);
    let listener =
        runtime.block_on(tokio::net::TcpListener::bind(&addr)).with_context(|| format!("cannot listen on {addr}"))?;
    let state = AppState::new(cfg);
    eprintln!("folio serve: listening on http://{addr} (loading the model)");
    let loading = state.clone();
    runtime.spawn_blocking(move || match load(&args) {
        Ok(ready) => {
            loading.set_ready(ready);
            eprintln!("folio serve: ready, serving {:?}", loading.cfg.model_name);
        }
        Err(e) => {
            eprintln!("error: cannot load the model: {e:#}");
            std::process::exit(1);
        }
    });
    runtime.block_on(serve(listener, state, shutdown_signal()))?;
    // Dropping the runtime drops the requests still in progress, which aborts them in the engine.
    runtime.shutdown_timeout(Duration::from_secs(5));
    eprintln!("folio serve: stopped");
    Ok(ExitCode::SUCCESS)
}

fn load(args: &ServeArgs) -> Result<Ready> {
    let detector = args.layout.load()?;
    let ck = args.model.load()?;
    let engine = Arc::new(args.engine.start(ck)?);
    Ok(Ready { engine, detector: Arc::from(detector), read: args.reading.options(None) })
}
