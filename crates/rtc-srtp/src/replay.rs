//! The replay list of RFC 3711 section 3.3.2, as a sliding bitmap over packet
//! indices.

use crate::Error;

/// A sliding window over the highest `size` indices seen: an index above the
/// window is new, one inside it is new unless its bit is set, one below it is
/// too old. The bitmap is a ring of 64-bit words allocated once per stream.
#[derive(Clone, Debug)]
pub(crate) struct ReplayWindow {
    /// Highest index accepted so far; `None` before the first packet.
    top: Option<u64>,
    bits: Box<[u64]>,
}

impl ReplayWindow {
    /// A window of at least `size` indices (rounded up to a multiple of 64).
    pub(crate) fn new(size: usize) -> Self {
        let words = size.div_ceil(64).max(1);
        Self { top: None, bits: vec![0; words].into_boxed_slice() }
    }

    fn size(&self) -> u64 {
        self.bits.len() as u64 * 64
    }

    fn bit(&self, index: u64) -> (usize, u64) {
        let pos = index % self.size();
        ((pos / 64) as usize, 1u64 << (pos % 64))
    }

    /// Whether `index` may be accepted (call [`Self::accept`] once it authenticates).
    pub(crate) fn check(&self, index: u64) -> Result<(), Error> {
        let Some(top) = self.top else { return Ok(()) };
        if index > top {
            return Ok(());
        }
        if top - index >= self.size() {
            return Err(Error::TooOld);
        }
        let (w, m) = self.bit(index);
        if self.bits[w] & m != 0 { Err(Error::Replayed) } else { Ok(()) }
    }

    /// Records `index` as received.
    pub(crate) fn accept(&mut self, index: u64) {
        match self.top {
            Some(top) if index <= top => {}
            Some(top) => {
                let delta = index - top;
                if delta >= self.size() {
                    self.bits.iter_mut().for_each(|w| *w = 0);
                } else {
                    for i in top + 1..index {
                        let (w, m) = self.bit(i);
                        self.bits[w] &= !m;
                    }
                    let (w, m) = self.bit(index);
                    self.bits[w] &= !m;
                }
                self.top = Some(index);
            }
            None => self.top = Some(index),
        }
        let (w, m) = self.bit(index);
        self.bits[w] |= m;
    }

    /// The highest index accepted.
    pub(crate) fn top(&self) -> Option<u64> {
        self.top
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_semantics() {
        let mut w = ReplayWindow::new(128);
        assert!(w.check(1000).is_ok());
        w.accept(1000);
        assert_eq!(w.check(1000), Err(Error::Replayed));
        assert!(w.check(999).is_ok());
        assert!(w.check(1000 - 127).is_ok());
        assert_eq!(w.check(1000 - 128), Err(Error::TooOld));
        w.accept(990);
        assert_eq!(w.check(990), Err(Error::Replayed));
        // Moving forward clears stale bits that alias in the ring.
        w.accept(1000 + 128 + 5);
        assert!(w.check(1000 + 128).is_ok());
        assert_eq!(w.check(1000), Err(Error::TooOld));
        // A jump larger than the window clears it all.
        w.accept(1_000_000);
        assert!(w.check(1_000_000 - 1).is_ok());
        assert_eq!(w.check(1_000_000), Err(Error::Replayed));
    }

    #[test]
    fn configurable_size() {
        let mut w = ReplayWindow::new(1024);
        w.accept(5000);
        assert!(w.check(5000 - 1000).is_ok());
        assert_eq!(w.check(5000 - 1024), Err(Error::TooOld));
        w.accept(5000 - 1000);
        assert_eq!(w.check(5000 - 1000), Err(Error::Replayed));
    }
}
