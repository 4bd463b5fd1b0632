//! Fixed pool of KV-cache block ids with O(1) allocate/free and RAII ownership.
//!
//! The design follows vLLM's block manager (PagedAttention, Kwon et al. 2023): the cache is split
//! into equal blocks of `block_size` tokens, and a sequence owns a table of block ids. Here the free
//! list is a stack (allocate = pop, free = push, both O(1)); a [`BlockTable`] returns its blocks to
//! the pool when dropped, so finishing, aborting or preempting a sequence cannot leak blocks.
//!
//! The pool lives on the engine thread only (`Rc<RefCell<…>>`, no locks): clients never touch it.

use std::cell::RefCell;
use std::rc::Rc;

#[derive(Debug)]
struct FreeList {
    free: Vec<u32>,
    total: usize,
}

/// Shared handle to the free list; cloning it is cheap.
#[derive(Debug, Clone)]
pub struct BlockPool {
    inner: Rc<RefCell<FreeList>>,
}

impl BlockPool {
    pub fn new(total: usize) -> Self {
        // Reversed so that blocks are handed out 0, 1, 2, … on a fresh pool (easier to read in tests).
        let free = (0..total as u32).rev().collect();
        Self { inner: Rc::new(RefCell::new(FreeList { free, total })) }
    }

    pub fn total(&self) -> usize {
        self.inner.borrow().total
    }

    pub fn free(&self) -> usize {
        self.inner.borrow().free.len()
    }

    pub fn used(&self) -> usize {
        self.total() - self.free()
    }

    /// An empty table that allocates from this pool.
    pub fn table(&self) -> BlockTable {
        BlockTable { blocks: Vec::new(), pool: self.clone() }
    }
}

/// The blocks one sequence owns, in token order. Dropping it frees them.
#[derive(Debug)]
pub struct BlockTable {
    blocks: Vec<u32>,
    pool: BlockPool,
}

impl BlockTable {
    pub fn blocks(&self) -> &[u32] {
        &self.blocks
    }

    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Grows the table to `n` blocks. All or nothing: on shortage nothing is taken and `false` is
    /// returned, so the caller can preempt or wait.
    pub fn grow_to(&mut self, n: usize) -> bool {
        let need = n.saturating_sub(self.blocks.len());
        let mut pool = self.pool.inner.borrow_mut();
        if need > pool.free.len() {
            return false;
        }
        let at = pool.free.len() - need;
        self.blocks.extend(pool.free.drain(at..).rev());
        true
    }

    /// Returns every block to the pool (as dropping does) and leaves the table empty.
    pub fn release(&mut self) {
        if self.blocks.is_empty() {
            return;
        }
        let mut pool = self.pool.inner.borrow_mut();
        pool.free.extend(self.blocks.drain(..).rev());
    }
}

impl Drop for BlockTable {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn allocation_is_all_or_nothing_and_drop_frees() {
        let pool = BlockPool::new(4);
        let mut a = pool.table();
        assert!(a.grow_to(3));
        assert_eq!(a.blocks(), &[0, 1, 2]);
        let mut b = pool.table();
        assert!(!b.grow_to(2), "only one block left");
        assert_eq!((pool.used(), pool.free()), (3, 1));
        assert!(b.grow_to(1));
        drop(a);
        assert_eq!(pool.free(), 3);
        assert!(b.grow_to(4));
        assert_eq!(pool.free(), 0);
        b.release();
        assert_eq!(pool.free(), 4);
    }

    #[test]
    fn random_churn_keeps_the_books_balanced() {
        let pool = BlockPool::new(64);
        let mut tables: Vec<BlockTable> = Vec::new();
        let mut state = 12345u64;
        let mut rand = |n: u64| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        for _ in 0..10_000 {
            match rand(3) {
                0 => {
                    let mut t = pool.table();
                    let _ = t.grow_to(rand(9) as usize);
                    tables.push(t);
                }
                1 if !tables.is_empty() => {
                    let i = rand(tables.len() as u64) as usize;
                    let want = tables[i].len() + rand(4) as usize;
                    let _ = tables[i].grow_to(want);
                }
                _ if !tables.is_empty() => {
                    let i = rand(tables.len() as u64) as usize;
                    tables.swap_remove(i);
                }
                _ => {}
            }
            let owned: Vec<u32> = tables.iter().flat_map(|t| t.blocks().to_vec()).collect();
            let unique: HashSet<u32> = owned.iter().copied().collect();
            assert_eq!(unique.len(), owned.len(), "a block is owned twice");
            assert_eq!(owned.len() + pool.free(), pool.total(), "used + free != total");
        }
        tables.clear();
        assert_eq!(pool.free(), 64);
    }
}
