//! Message buffers that circulate between a driver and its I/O tasks (or
//! its application), so that a warm path allocates nothing per message.

use std::sync::Arc;

/// Buffers kept for reuse.
const POOL: usize = 512;

/// A lock-free pool of byte buffers, cheap to clone (the clones share
/// it). A buffer taken is empty; a buffer put back is cleared and kept
/// unless the pool is full.
#[derive(Clone)]
pub(crate) struct Pool(Arc<crossbeam_queue::ArrayQueue<Vec<u8>>>);

impl Pool {
    pub(crate) fn new() -> Self {
        Self(Arc::new(crossbeam_queue::ArrayQueue::new(POOL)))
    }

    /// An empty buffer, reused when one is there.
    pub(crate) fn take(&self) -> Vec<u8> {
        self.0.pop().unwrap_or_default()
    }

    /// Keeps `v` for reuse (dropped when the pool is full).
    pub(crate) fn put(&self, mut v: Vec<u8>) {
        v.clear();
        let _ = self.0.push(v);
    }
}

impl Default for Pool {
    fn default() -> Self {
        Self::new()
    }
}
