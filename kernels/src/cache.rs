//! Paged KV-cache geometry and validated views over one layer's key/value pools.
//!
//! Layout (the PagedAttention layout of Kwon et al., 2023, "Efficient Memory Management for Large
//! Language Model Serving with PagedAttention", as used by vLLM): each pool is one contiguous
//! buffer of `num_blocks * block_size * kv_heads * head_dim` elements, indexed
//! `[block][slot_in_block][kv_head][dim]`. A *slot* is `block * block_size + offset`; token `t`
//! of a sequence lives at block `block_table[t / block_size]`, offset `t % block_size`. One
//! slot's K (or V) for all kv heads is therefore one contiguous row of `kv_heads * head_dim`
//! elements, so writing a token is a single row copy, and attention over a block reads
//! `block_size` rows that are `kv_heads * head_dim` apart.

use crate::error::KernelError;

/// Shape of one paged KV pool: tokens per block, KV heads and head dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheGeometry {
    block_size: usize,
    kv_heads: usize,
    head_dim: usize,
}

impl CacheGeometry {
    /// Validates that every dimension is positive and that a block's element count fits `usize`.
    pub fn new(block_size: usize, kv_heads: usize, head_dim: usize) -> Result<Self, KernelError> {
        let invalid = KernelError::InvalidGeometry { block_size, kv_heads, head_dim };
        if block_size == 0 || kv_heads == 0 || head_dim == 0 {
            return Err(invalid);
        }
        let block = block_size.checked_mul(kv_heads).and_then(|n| n.checked_mul(head_dim));
        match block {
            Some(_) => Ok(Self { block_size, kv_heads, head_dim }),
            None => Err(invalid),
        }
    }

    /// Tokens per block.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Number of KV heads.
    pub fn kv_heads(&self) -> usize {
        self.kv_heads
    }

    /// Elements per head vector.
    pub fn head_dim(&self) -> usize {
        self.head_dim
    }

    /// Elements of one slot (one token, all kv heads): `kv_heads * head_dim`.
    pub fn slot_len(&self) -> usize {
        self.kv_heads * self.head_dim
    }

    /// Elements of one block: `block_size * kv_heads * head_dim`.
    pub fn block_len(&self) -> usize {
        self.block_size * self.slot_len()
    }

    /// Elements of a pool with `num_blocks` blocks, or `None` on overflow.
    pub fn pool_len(&self, num_blocks: usize) -> Option<usize> {
        num_blocks.checked_mul(self.block_len())
    }

    /// Number of blocks a context of `tokens` tokens occupies.
    pub fn blocks_for(&self, tokens: usize) -> usize {
        tokens.div_ceil(self.block_size)
    }

    /// Checks that two pools have equal length, a whole number of blocks, and returns that number.
    fn num_blocks(&self, key_len: usize, value_len: usize) -> Result<usize, KernelError> {
        if key_len != value_len {
            return Err(KernelError::LengthMismatch {
                what: "value cache (must match key cache)",
                expected: key_len,
                actual: value_len,
            });
        }
        let block = self.block_len();
        if !key_len.is_multiple_of(block) {
            return Err(KernelError::NotAMultiple { what: "key/value cache", len: key_len, unit: block });
        }
        Ok(key_len / block)
    }
}

/// Read-only view of one layer's paged key and value pools (see the module docs for the layout).
#[derive(Debug, Clone, Copy)]
pub struct KvCache<'a, C> {
    pub(crate) keys: &'a [C],
    pub(crate) values: &'a [C],
    pub(crate) geom: CacheGeometry,
    pub(crate) num_blocks: usize,
}

impl<'a, C> KvCache<'a, C> {
    /// Wraps the pools after checking they have equal length and hold whole blocks.
    pub fn new(keys: &'a [C], values: &'a [C], geom: CacheGeometry) -> Result<Self, KernelError> {
        let num_blocks = geom.num_blocks(keys.len(), values.len())?;
        Ok(Self { keys, values, geom, num_blocks })
    }

    /// The pool geometry.
    pub fn geometry(&self) -> CacheGeometry {
        self.geom
    }

    /// Number of blocks in each pool.
    pub fn num_blocks(&self) -> usize {
        self.num_blocks
    }
}

/// Mutable view of one layer's paged key and value pools, for [`crate::write_kv`].
#[derive(Debug)]
pub struct KvCacheMut<'a, C> {
    pub(crate) keys: &'a mut [C],
    pub(crate) values: &'a mut [C],
    pub(crate) geom: CacheGeometry,
    pub(crate) num_blocks: usize,
}

impl<'a, C> KvCacheMut<'a, C> {
    /// Wraps the pools after checking they have equal length and hold whole blocks.
    pub fn new(keys: &'a mut [C], values: &'a mut [C], geom: CacheGeometry) -> Result<Self, KernelError> {
        let num_blocks = geom.num_blocks(keys.len(), values.len())?;
        Ok(Self { keys, values, geom, num_blocks })
    }

    /// The pool geometry.
    pub fn geometry(&self) -> CacheGeometry {
        self.geom
    }

    /// Number of blocks in each pool.
    pub fn num_blocks(&self) -> usize {
        self.num_blocks
    }

    /// Number of slots (`num_blocks * block_size`) in each pool.
    pub fn num_slots(&self) -> usize {
        self.num_blocks * self.geom.block_size
    }

    /// Reborrows as a read-only view (e.g. to run attention right after a write).
    pub fn as_view(&self) -> KvCache<'_, C> {
        KvCache { keys: self.keys, values: self.values, geom: self.geom, num_blocks: self.num_blocks }
    }
}
