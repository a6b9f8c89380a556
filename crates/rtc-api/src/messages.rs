//! Queues of received data messages and of data streams the peer opened:
//! bounded, filled by the driver, drained by handles.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crossbeam_queue::ArrayQueue;
use tokio::sync::Notify;

use crate::events::lock;

/// Received messages queued on a data stream before new ones are dropped.
pub(crate) const MESSAGE_QUEUE: usize = 4096;
/// Octets of received messages queued on a data stream before new ones are
/// dropped.
pub(crate) const MESSAGE_BYTES: usize = 16 << 20;

/// A message received on a data stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataStreamMessage {
    /// Its content.
    pub data: Vec<u8>,
    /// Binary (else a UTF-8 string, as the peer sent it).
    pub binary: bool,
}

impl DataStreamMessage {
    /// The content as text, for a string message that is valid UTF-8.
    pub fn text(&self) -> Option<&str> {
        if self.binary { None } else { std::str::from_utf8(&self.data).ok() }
    }
}

/// A data stream's received messages: lock-free, capped in messages and
/// octets; a reader that falls behind loses messages (counted).
#[derive(Debug)]
pub(crate) struct MessageQueue {
    queue: ArrayQueue<DataStreamMessage>,
    queued: AtomicUsize,
    pub(crate) dropped: AtomicU64,
    notify: Notify,
    closed: AtomicBool,
}

impl MessageQueue {
    pub(crate) fn new() -> Self {
        Self {
            queue: ArrayQueue::new(MESSAGE_QUEUE),
            queued: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            notify: Notify::new(),
            closed: AtomicBool::new(false),
        }
    }

    pub(crate) fn push(&self, m: DataStreamMessage) {
        let len = m.data.len();
        if self.queued.fetch_add(len, Ordering::AcqRel) + len > MESSAGE_BYTES || self.queue.push(m).is_err() {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.notify.notify_one();
    }

    pub(crate) fn pop(&self) -> Option<DataStreamMessage> {
        let m = self.queue.pop()?;
        self.queued.fetch_sub(m.data.len(), Ordering::AcqRel);
        Some(m)
    }

    /// The next message; `None` once closed and empty.
    pub(crate) async fn next(&self) -> Option<DataStreamMessage> {
        loop {
            let woken = self.notify.notified();
            if let Some(m) = self.pop() {
                return Some(m);
            }
            if self.closed.load(Ordering::Acquire) {
                return self.pop();
            }
            woken.await;
        }
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.notify.notify_waiters();
        self.notify.notify_one();
    }
}

/// At most this many opened streams wait to be accepted.
const INCOMING: usize = 1024;

/// Objects waiting to be taken (data streams the peer opened), bounded.
#[derive(Debug)]
pub(crate) struct Incoming<T> {
    queue: Mutex<VecDeque<T>>,
    notify: Notify,
    closed: AtomicBool,
}

impl<T> Default for Incoming<T> {
    fn default() -> Self {
        Self { queue: Mutex::new(VecDeque::new()), notify: Notify::new(), closed: AtomicBool::new(false) }
    }
}

impl<T> Incoming<T> {
    pub(crate) fn push(&self, s: T) {
        let mut q = lock(&self.queue);
        if q.len() < INCOMING {
            q.push_back(s);
        }
        drop(q);
        self.notify.notify_one();
    }

    pub(crate) async fn next(&self) -> Option<T> {
        loop {
            let woken = self.notify.notified();
            if let Some(s) = lock(&self.queue).pop_front() {
                return Some(s);
            }
            if self.closed.load(Ordering::Acquire) {
                return None;
            }
            woken.await;
        }
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.notify.notify_waiters();
        self.notify.notify_one();
    }
}
