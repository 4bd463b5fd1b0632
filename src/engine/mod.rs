//! The engine: a paged KV cache reserved once at start-up and a continuous-batching scheduler, run
//! by one owner thread. Clients (the CLI, the pipeline, the server) talk to it only through
//! [`Engine`]: submit a request and read its event stream, abort it, read the stats.
//!
//! Pieces, after vLLM v1's core: [`block_pool`] (block ids, RAII tables), [`kv_pool`] (the cache
//! memory and the paged-attention step view), [`scheduler`] (who runs next), [`sequence`] (one
//! request's state), [`sampling`] (next-token choice), [`core`] (one step). [`greedy`] is the plain
//! contiguous-cache loop kept as the reference the engine is tested against.

pub mod block_pool;
pub mod core;
pub mod greedy;
pub mod kv_pool;
pub mod sampling;
pub mod scheduler;
pub mod sequence;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{bail, Context, Result};
use folio_kernels::CacheGeometry;
use image::DynamicImage;
use serde::Serialize;
use tokio::sync::{mpsc as tokio_mpsc, watch};

use self::block_pool::BlockPool;
use self::core::EngineCore;
use self::kv_pool::KvPool;
use self::sampling::{Sampler, SamplingParams};
use self::scheduler::{Scheduler, SchedulerConfig};
use self::sequence::NewRequest;
pub use self::sequence::{Event, FinishReason, Usage};
use crate::models::paddleocr_vl::{prompt_positions, Checkpoint};

#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    /// Bytes reserved for the KV cache at start-up; the pool never grows.
    pub kv_cache_memory: usize,
    pub block_size: usize,
    pub max_num_seqs: usize,
    pub max_num_batched_tokens: usize,
    pub max_vision_patches_per_step: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            kv_cache_memory: 1 << 30,
            block_size: 16,
            max_num_seqs: 64,
            max_num_batched_tokens: 2048,
            max_vision_patches_per_step: 16_384,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct EngineStats {
    pub waiting: usize,
    pub running: usize,
    pub blocks_total: usize,
    pub blocks_used: usize,
    pub preemptions: usize,
    pub generated_tokens: u64,
    /// Generated tokens per second over the last few seconds.
    pub tokens_per_s: f64,
    pub steps: u64,
    pub kv_cache_bytes: usize,
}

/// What a client submits: images (decoded) and the instruction that follows them.
pub struct Request {
    pub images: Vec<DynamicImage>,
    pub instruction: String,
    pub sampling: SamplingParams,
}

/// A submitted request's events, in order, ending with `Done` or `Error`.
pub struct RequestStream {
    pub id: u64,
    events: tokio_mpsc::UnboundedReceiver<Event>,
}

impl RequestStream {
    pub async fn next(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// For synchronous callers (not inside an async runtime).
    pub fn blocking_next(&mut self) -> Option<Event> {
        self.events.blocking_recv()
    }

    /// Waits for the end and returns the whole text with the finish reason and usage.
    pub fn blocking_collect(mut self) -> Result<(String, Vec<u32>, FinishReason, Usage)> {
        let (mut text, mut tokens) = (String::new(), Vec::new());
        while let Some(ev) = self.blocking_next() {
            match ev {
                Event::Delta { text: t, tokens: ids } => {
                    text.push_str(&t);
                    tokens.extend(ids);
                }
                Event::Done { reason, usage } => return Ok((text, tokens, reason, usage)),
                Event::Error(e) => bail!("request {} failed: {e}", self.id),
            }
        }
        bail!("request {}: the engine stopped before it finished", self.id)
    }
}

enum Command {
    Submit(Box<NewRequest>),
    Abort(u64),
}

pub struct Engine {
    ck: Arc<Checkpoint>,
    commands: Option<mpsc::Sender<Command>>,
    stats: watch::Receiver<EngineStats>,
    next_id: AtomicU64,
    pool_tokens: usize,
    thread: Option<JoinHandle<()>>,
}

impl Engine {
    /// Reserves the KV pool and starts the engine thread.
    pub fn start(ck: Arc<Checkpoint>, cfg: EngineConfig) -> Result<Self> {
        let t = &ck.model.cfg.text;
        let geom = CacheGeometry::new(cfg.block_size, t.num_key_value_heads, t.head_dim)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let dtype = ck.model.text_dtype();
        let per_block = KvPool::block_bytes(t.num_hidden_layers, geom, dtype);
        let num_blocks = cfg.kv_cache_memory / per_block;
        if num_blocks == 0 || cfg.max_num_seqs == 0 || cfg.max_num_batched_tokens == 0 {
            bail!("engine limits leave no room: {num_blocks} KV blocks of {per_block} bytes, max_num_seqs {}, max_num_batched_tokens {}", cfg.max_num_seqs, cfg.max_num_batched_tokens);
        }
        let pool = KvPool::new(t.num_hidden_layers, num_blocks, geom, dtype)?;
        tracing::info!(blocks = num_blocks, block_size = cfg.block_size, mib = pool.bytes() >> 20, "KV cache reserved");
        let (tx, rx) = mpsc::channel();
        let initial = EngineStats { blocks_total: num_blocks, kv_cache_bytes: pool.bytes(), ..EngineStats::default() };
        let (stats_tx, stats_rx) = watch::channel(initial);
        let sched_cfg = SchedulerConfig {
            block_size: cfg.block_size,
            max_num_seqs: cfg.max_num_seqs,
            max_num_batched_tokens: cfg.max_num_batched_tokens,
            max_vision_patches_per_step: cfg.max_vision_patches_per_step,
        };
        let core_ck = ck.clone();
        // The loop runs on a worker of the engine's own rayon pool: the parallel parts of a step
        // (matrix multiplies, attention, fused ops) then fork from a worker, which keeps working
        // and lets the others steal, instead of a foreign thread that must inject the job and
        // sleep until a worker has finished it (a futex round trip per op).
        let workers = rayon::ThreadPoolBuilder::new().thread_name(|i| format!("folio-engine-{i}")).build()?;
        let thread = std::thread::Builder::new().name("folio-engine".into()).spawn(move || {
            workers.install(move || {
                let core = EngineCore {
                    ck: core_ck,
                    pool,
                    blocks: BlockPool::new(num_blocks),
                    sched: Scheduler::new(sched_cfg),
                    generated_tokens: 0,
                    steps: 0,
                    stats_tx,
                    rate_window: Default::default(),
                };
                run_loop(core, rx);
            })
        })?;
        Ok(Self {
            ck,
            commands: Some(tx),
            stats: stats_rx,
            next_id: AtomicU64::new(1),
            pool_tokens: num_blocks * cfg.block_size,
            thread: Some(thread),
        })
    }

    pub fn checkpoint(&self) -> &Checkpoint {
        &self.ck
    }

    /// Prepares the request on the caller's thread (image preprocessing, prompt) and queues it.
    pub fn submit(&self, req: Request) -> Result<RequestStream> {
        req.sampling.validate()?;
        let ck = &self.ck;
        let vocab = ck.model.cfg.text.vocab_size;
        if let Some(bad) = req.sampling.suppress_tokens.iter().find(|&&t| t as usize >= vocab) {
            bail!("suppress_tokens: token {bad} is outside the vocabulary ({vocab} tokens)");
        }
        let images = req.images.iter().map(|img| ck.images.prepare(img)).collect::<Result<Vec<_>>>()?;
        let grids: Vec<_> = images.iter().map(|i| i.grid).collect();
        let counts: Vec<usize> = grids.iter().map(|&g| ck.model.image_tokens(g)).collect();
        let prompt = ck.prompts.encode(&counts, &req.instruction)?;
        let merge = ck.model.cfg.vision.spatial_merge_size;
        let (positions, next_position) = prompt_positions(&prompt, ck.prompts.image_token_id(), &grids, merge)?;
        let need = prompt.len() + req.sampling.max_tokens;
        if need > self.pool_tokens {
            bail!("the request needs up to {need} tokens of KV cache ({} prompt + {} max_tokens) but the pool holds {}: lower max_tokens or raise --kv-cache-memory", prompt.len(), req.sampling.max_tokens, self.pool_tokens);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = tokio_mpsc::unbounded_channel();
        let seed = rand::random::<u64>();
        let new = NewRequest {
            id,
            prompt,
            positions,
            next_position,
            images,
            sampler: Sampler::new(req.sampling, seed),
            events: tx,
        };
        self.send(Command::Submit(Box::new(new)))?;
        Ok(RequestStream { id, events: rx })
    }

    /// Stops a request and frees its blocks at once; its stream ends with `Done { Aborted }`.
    pub fn abort(&self, id: u64) -> Result<()> {
        self.send(Command::Abort(id))
    }

    /// The latest stats, as of the end of the last step.
    pub fn stats(&self) -> EngineStats {
        *self.stats.borrow()
    }

    fn send(&self, cmd: Command) -> Result<()> {
        self.commands.as_ref().context("engine stopped")?.send(cmd).ok().context("the engine thread has stopped")
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.commands.take(); // closes the channel: the loop finishes and exits
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run_loop(mut core: EngineCore, rx: mpsc::Receiver<Command>) {
    let handle = |core: &mut EngineCore, cmd| match cmd {
        Command::Submit(req) => core.add(*req),
        Command::Abort(id) => core.abort(id),
    };
    let mut progressed = false;
    loop {
        if !progressed {
            // Nothing ran: sleep until a command arrives (or every client is gone), never spin.
            match rx.recv() {
                Ok(cmd) => handle(&mut core, cmd),
                Err(_) => break,
            }
        }
        loop {
            match rx.try_recv() {
                Ok(cmd) => handle(&mut core, cmd),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    // The Engine handle is gone: nobody can submit or wait any more.
                    core.abort_all();
                    return;
                }
            }
        }
        progressed = core.step();
    }
}
