//! Model code. Each model is a directory of parts; they share the KV-cache interface in [`kv`].

pub mod embedded;
pub mod hub;
pub mod kv;
pub mod linear;
pub mod no_cache;
pub mod ops;
pub mod paddleocr_vl;
