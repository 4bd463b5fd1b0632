//! Error type shared by all kernels.
//!
//! Every kernel validates its whole input before touching any output, so an `Err` always means
//! "nothing was written". Kernels never panic on bad input.

/// Why a kernel rejected its input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KernelError {
    /// A cache dimension is zero or the block row size overflows `usize`.
    #[error(
        "invalid cache geometry: block_size {block_size}, kv_heads {kv_heads}, head_dim {head_dim} (all must be > 0)"
    )]
    InvalidGeometry { block_size: usize, kv_heads: usize, head_dim: usize },

    /// A buffer has the wrong number of elements.
    #[error("{what}: expected {expected} elements, got {actual}")]
    LengthMismatch { what: &'static str, expected: usize, actual: usize },

    /// A buffer's length is not a whole number of `unit`-sized pieces (blocks, tokens, …).
    #[error("{what}: length {len} is not a multiple of {unit}")]
    NotAMultiple { what: &'static str, len: usize, unit: usize },

    /// `write_kv` was given a slot outside the cache.
    #[error("token {token}: slot {slot} is out of range (cache has {num_slots} slots)")]
    SlotOutOfRange { token: usize, slot: u32, num_slots: usize },

    /// The number of query heads is zero or not a multiple of the number of KV heads.
    #[error("{heads} query heads is not a positive multiple of {kv_heads} kv heads")]
    HeadsNotMultipleOfKvHeads { heads: usize, kv_heads: usize },

    /// The softmax scale is NaN or infinite.
    #[error("attention scale {0} is not finite")]
    NonFiniteScale(f32),

    /// A sequence asks for no query tokens, or for more than its context holds.
    #[error("sequence {seq}: query_len {query_len} must be in 1..={context_len} (its context_len)")]
    InvalidQueryLen { seq: usize, query_len: usize, context_len: usize },

    /// A sequence's query rows fall outside the packed query buffer.
    #[error("sequence {seq}: query rows {start}..{start}+{len} exceed the {tokens} packed query tokens")]
    QueryOutOfRange { seq: usize, start: usize, len: usize, tokens: usize },

    /// Two sequences claim the same query row.
    #[error("sequence {seq}: query token {token} is already claimed by another sequence")]
    OverlappingQueries { seq: usize, token: usize },

    /// A block table has fewer entries than the context needs.
    #[error("sequence {seq}: block table has {len} blocks, context needs {needed}")]
    BlockTableTooShort { seq: usize, needed: usize, len: usize },

    /// [`crate::paged_attention_with`] was asked for an instruction set this CPU lacks.
    #[error("instruction set {0:?} is not available on this CPU")]
    IsaUnavailable(crate::attention::Isa),

    /// A block table names a block outside the cache.
    #[error("sequence {seq}: block {block} is out of range (cache has {num_blocks} blocks)")]
    BlockOutOfRange { seq: usize, block: u32, num_blocks: usize },
}
