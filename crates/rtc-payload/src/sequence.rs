//! Where a packet's sequence number stands relative to the packets before it.
//!
//! Depacketizers take packets in arrival order. RFC 3550 section 5.1 numbers
//! packets so that receivers can detect loss and restore order; RFC 6184
//! section 7 has duplicated and outdated packets removed, and RFC 7587
//! section 4.1 has a receiver give at most one copy of a duplicated packet to
//! the decoder. This tracker tells a packet that follows the last one from a
//! gap, a duplicate and a late (reordered) packet, remembering which of the
//! last 64 sequence numbers were seen.

/// How a packet's sequence number relates to the newest one seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// The first packet, or the one right after the newest.
    Next,
    /// Newer than the newest, with packets missing in between.
    Gap,
    /// Seen already (within the last 64).
    Duplicate,
    /// Older than the newest, within the last 64, and not seen before.
    Late,
    /// Far behind the newest (or a jump of exactly half the number space):
    /// ignored, unless the packet after it follows on, which restarts the
    /// tracking there (as in RFC 3550 appendix A.1, a source that jumped).
    Stray,
}

/// How many sequence numbers behind the newest are remembered.
const WINDOW: u16 = 64;

/// The tracker. Copyable and allocation-free.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sequence {
    /// The newest sequence number taken.
    newest: Option<u16>,
    /// Bit `i` set: `newest - i` was seen.
    seen: u64,
    /// After a stray packet: the number that, arriving next, restarts here.
    restart: Option<u16>,
}

impl Sequence {
    /// Classifies `seq` and records it.
    pub(crate) fn take(&mut self, seq: u16) -> Order {
        let Some(newest) = self.newest else {
            self.restart_at(seq);
            return Order::Next;
        };
        let ahead = seq.wrapping_sub(newest);
        if ahead == 0 {
            return Order::Duplicate;
        }
        if ahead < 0x8000 {
            self.seen = if ahead >= WINDOW { 0 } else { self.seen << ahead };
            self.seen |= 1;
            self.newest = Some(seq);
            self.restart = None;
            return if ahead == 1 { Order::Next } else { Order::Gap };
        }
        let behind = newest.wrapping_sub(seq);
        if behind < WINDOW {
            let bit = 1u64 << behind;
            if self.seen & bit != 0 {
                return Order::Duplicate;
            }
            self.seen |= bit;
            return Order::Late;
        }
        if self.restart == Some(seq) {
            self.restart_at(seq);
            return Order::Gap;
        }
        self.restart = Some(seq.wrapping_add(1));
        Order::Stray
    }

    fn restart_at(&mut self, seq: u16) {
        *self = Self { newest: Some(seq), seen: 1, restart: None };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders() {
        let mut s = Sequence::default();
        assert_eq!(s.take(65534), Order::Next);
        assert_eq!(s.take(65535), Order::Next);
        assert_eq!(s.take(0), Order::Next, "wraps");
        assert_eq!(s.take(0), Order::Duplicate);
        assert_eq!(s.take(3), Order::Gap);
        assert_eq!(s.take(2), Order::Late);
        assert_eq!(s.take(2), Order::Duplicate);
        assert_eq!(s.take(65535), Order::Duplicate, "seen before the wrap");
        assert_eq!(s.take(1), Order::Late);
        assert_eq!(s.take(4), Order::Next);
        // 64 behind is outside the window: stray, ignored ...
        assert_eq!(s.take(4u16.wrapping_sub(64)), Order::Stray);
        assert_eq!(s.take(5), Order::Next);
        // ... unless the source really jumped back: the next one follows on.
        assert_eq!(s.take(5u16.wrapping_sub(30000)), Order::Stray);
        assert_eq!(s.take(6u16.wrapping_sub(30000)), Order::Gap);
        assert_eq!(s.take(7u16.wrapping_sub(30000)), Order::Next);
        // A jump forward of more than the window forgets what was seen.
        let mut s = Sequence::default();
        assert_eq!(s.take(10), Order::Next);
        assert_eq!(s.take(200), Order::Gap);
        assert_eq!(s.take(150), Order::Late);
        assert_eq!(s.take(10), Order::Stray);
    }
}
