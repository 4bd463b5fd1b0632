//! Hot CPU kernels for folio: paged KV-cache writes and paged attention.
//!
//! Pure Rust over slices (no candle), generic over the storage [`Element`] (`f32`, `bf16`) with
//! `f32` accumulation, parallel on rayon's global pool.
//!
//! * [`CacheGeometry`], [`KvCache`], [`KvCacheMut`] — the paged pool layout and validated views
//!   (module [`cache`] describes the layout).
//! * [`write_kv`] — scatter a step's new K/V rows into their slots.
//! * [`paged_attention`] — causal attention of packed queries (prefill, chunked prefill and decode
//!   mixed in one call) against the paged cache, batch-invariant (module [`attention`]).
//! * [`naive::reference_attention`] — the slow definition, for tests and benchmarks.
//!
//! ```
//! use folio_kernels::{paged_attention, write_kv, CacheGeometry, KvCacheMut, SeqAttn};
//!
//! let geom = CacheGeometry::new(16, 1, 4)?; // 16 tokens per block, 1 kv head, head_dim 4
//! let len = geom.pool_len(2).unwrap_or_default(); // 2 blocks
//! let (mut k_pool, mut v_pool) = (vec![0.0f32; len], vec![0.0f32; len]);
//! let mut cache = KvCacheMut::new(&mut k_pool, &mut v_pool, geom)?;
//! // One sequence whose 2 tokens live in physical block 1 (slots 16 and 17).
//! let (k, v) = ([1.0f32, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0], [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
//! write_kv(&mut cache, &k, &v, &[16, 17])?;
//! let q = [0.0f32; 8]; // 2 tokens × 1 head × 4: all-zero queries → uniform causal weights
//! let mut out = [0.0f32; 8];
//! let seq = SeqAttn { query_start: 0, query_len: 2, context_len: 2, block_table: &[1] };
//! paged_attention(&mut out, &q, cache.as_view(), &[seq], 1, 0.5)?;
//! assert_eq!(out, [1.0, 2.0, 3.0, 4.0, 3.0, 4.0, 5.0, 6.0]);
//! # Ok::<(), folio_kernels::KernelError>(())
//! ```

pub mod attention;
pub mod cache;
mod element;
mod error;
pub mod naive;
mod vecops;
mod write;

pub use attention::{paged_attention, paged_attention_with, Isa, SeqAttn};
pub use cache::{CacheGeometry, KvCache, KvCacheMut};
pub use element::Element;
pub use error::KernelError;
pub use write::write_kv;

/// Re-export so callers can name the bf16 storage type without their own `half` dependency.
pub use half::bf16;
