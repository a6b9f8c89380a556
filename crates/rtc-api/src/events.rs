//! The streams that deliver the seeds' events (the events themselves are
//! rtc-proto's).

use tokio::sync::broadcast;

/// Takes a lock even if a panic poisoned it: the state behind it stays
/// consistent (every change is the core's, which does not panic half way).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A stream of events from one object. Events fired before it was made are
/// not in it; a receiver that falls more than 256 events behind loses the
/// oldest ones (counted in [`Events::lagged`]).
#[derive(Debug)]
pub struct Events<T> {
    rx: broadcast::Receiver<T>,
    lagged: u64,
}

impl<T: Clone> Events<T> {
    pub(crate) fn new(rx: broadcast::Receiver<T>) -> Self {
        Self { rx, lagged: 0 }
    }

    /// The next event; `None` once the object is closed and every event was
    /// read.
    pub async fn next(&mut self) -> Option<T> {
        loop {
            match self.rx.recv().await {
                Ok(e) => return Some(e),
                Err(broadcast::error::RecvError::Lagged(n)) => self.lagged += n,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next event if one is ready.
    pub fn try_next(&mut self) -> Option<T> {
        loop {
            match self.rx.try_recv() {
                Ok(e) => return Some(e),
                Err(broadcast::error::TryRecvError::Lagged(n)) => self.lagged += n,
                Err(_) => return None,
            }
        }
    }

    /// Events lost because this receiver fell behind.
    pub fn lagged(&self) -> u64 {
        self.lagged
    }
}

/// Capacity of each object's event ring.
pub(crate) const EVENT_RING: usize = 256;

enum Ring<T> {
    /// Nobody subscribed yet: no ring is allocated (events fired now reach
    /// no one).
    Idle,
    Open(broadcast::Sender<T>),
    Closed,
}

/// One object's event source: a broadcast ring, made on the first
/// subscription, that closes with the object.
pub(crate) struct Emitter<T> {
    ring: std::sync::Mutex<Ring<T>>,
}

impl<T> std::fmt::Debug for Emitter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter").finish_non_exhaustive()
    }
}

impl<T: Clone> Emitter<T> {
    pub(crate) fn new() -> Self {
        Self { ring: std::sync::Mutex::new(Ring::Idle) }
    }

    /// Fires an event; nobody listening is fine.
    pub(crate) fn emit(&self, e: T) {
        if let Ring::Open(tx) = &*lock(&self.ring) {
            let _ = tx.send(e);
        }
    }

    /// A new listener (closed at once if the object is).
    pub(crate) fn subscribe(&self) -> Events<T> {
        let mut ring = lock(&self.ring);
        match &*ring {
            Ring::Open(tx) => Events::new(tx.subscribe()),
            Ring::Closed => Events::new(broadcast::channel(1).1),
            Ring::Idle => {
                let (tx, rx) = broadcast::channel(EVENT_RING);
                *ring = Ring::Open(tx);
                Events::new(rx)
            }
        }
    }

    /// Ends every listener's stream after the events already fired.
    pub(crate) fn close(&self) {
        *lock(&self.ring) = Ring::Closed;
    }
}
