//! Received frames: their pooled buffers, and a received track's inbox.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crossbeam_queue::ArrayQueue;
use tokio::sync::Notify;

/// The octets of a received frame. Derefs to `[u8]`; its buffer goes back
/// to the connection's pool when dropped, so receiving does not allocate
/// per frame.
pub struct FrameData {
    buf: Vec<u8>,
    home: Option<Arc<ArrayQueue<Vec<u8>>>>,
}

impl FrameData {
    pub(crate) fn pooled(buf: Vec<u8>, home: Arc<ArrayQueue<Vec<u8>>>) -> Self {
        Self { buf, home: Some(home) }
    }

    /// The octets as a vector (taken out of the pool).
    pub fn into_vec(mut self) -> Vec<u8> {
        self.home = None;
        std::mem::take(&mut self.buf)
    }
}

impl Drop for FrameData {
    fn drop(&mut self) {
        if let Some(home) = self.home.take() {
            let mut buf = std::mem::take(&mut self.buf);
            buf.clear();
            let _ = home.push(buf); // a full pool frees it
        }
    }
}

impl std::ops::Deref for FrameData {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf
    }
}

impl Clone for FrameData {
    fn clone(&self) -> Self {
        Self { buf: self.buf.clone(), home: None }
    }
}

impl std::fmt::Debug for FrameData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.buf.fmt(f)
    }
}

impl PartialEq for FrameData {
    fn eq(&self, o: &Self) -> bool {
        self.buf == o.buf
    }
}

impl Eq for FrameData {}

impl PartialEq<Vec<u8>> for FrameData {
    fn eq(&self, o: &Vec<u8>) -> bool {
        self.buf == *o
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for FrameData {
    fn eq(&self, o: &&[u8; N]) -> bool {
        self.buf == *o
    }
}

/// An encoded media frame received on a track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The encoded frame (reassembled from its packets; H.264 in Annex B
    /// form).
    pub data: FrameData,
    /// Its RTP timestamp.
    pub timestamp: u32,
    /// The SSRC it came from.
    pub ssrc: u32,
    /// Whether it is a key frame (VP8, VP9, H.264); `true` for audio.
    pub key_frame: bool,
    /// Audio: its level in -dBov (0 loudest, 127 silence), when the sender
    /// sent one (RFC 6464) and it was negotiated.
    pub audio_level: Option<u8>,
}

/// What an [`Inbox`] counts against its octet cap.
pub(crate) trait Octets {
    fn octets(&self) -> usize;
}

impl Octets for Frame {
    fn octets(&self) -> usize {
        self.data.len()
    }
}

/// Received items (a track's frames, a data stream's messages, the data
/// streams a peer opened): a bounded lock-free queue the driver fills and
/// readers drain, capped in items and octets, made when the first item
/// arrives (an object that receives nothing costs no queue). A reader that
/// falls behind loses new items, counted.
#[derive(Debug)]
pub(crate) struct Inbox<T> {
    capacity: usize,
    queue: OnceLock<ArrayQueue<T>>,
    /// Octets of the items in `queue`.
    queued: AtomicUsize,
    dropped: AtomicU64,
    notify: Notify,
    closed: AtomicBool,
}

impl<T: Octets> Inbox<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        let (queue, queued, dropped) = (OnceLock::new(), AtomicUsize::new(0), AtomicU64::new(0));
        Self { capacity, queue, queued, dropped, notify: Notify::new(), closed: AtomicBool::new(false) }
    }

    /// Queues an item within `max` octets; a full queue drops it (as a
    /// jitter buffer would a frame) and counts it.
    pub(crate) fn push(&self, item: T, max: usize) {
        let len = item.octets();
        let queue = self.queue.get_or_init(|| ArrayQueue::new(self.capacity));
        if self.queued.fetch_add(len, Ordering::AcqRel) + len > max || queue.push(item).is_err() {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.notify.notify_one();
    }

    pub(crate) fn pop(&self) -> Option<T> {
        let item = self.queue.get()?.pop()?;
        self.queued.fetch_sub(item.octets(), Ordering::AcqRel);
        Some(item)
    }

    /// The next item; `None` once closed and empty.
    pub(crate) async fn next(&self) -> Option<T> {
        loop {
            let woken = self.notify.notified();
            if let Some(item) = self.pop() {
                return Some(item);
            }
            if self.closed.load(Ordering::Acquire) {
                return self.pop();
            }
            woken.await;
        }
    }

    /// Items dropped because the queue was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// No more items will come (the connection closed).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.notify.notify_waiters();
        self.notify.notify_one();
    }
}
