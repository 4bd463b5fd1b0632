//! Running requests through the model. For now a batched greedy loop over a contiguous KV cache;
//! the paged, continuously batched engine (DESIGN.md, "Engine contracts") replaces it.

pub mod greedy;
