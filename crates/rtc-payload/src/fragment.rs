//! Even splitting of a run of octets over packets.
//!
//! Used for a VP8 frame over packets (RFC 7741 section 4.4, without regard to
//! partition boundaries) and for the body of an H.264 NAL unit over FU-A
//! fragments (RFC 6184 section 5.8). Pieces are as even as possible so that no
//! packet is a short tail: with at most 1000 octets a packet, 2001 octets go as
//! 667 + 667 + 667 rather than 1000 + 1000 + 1.

/// The split of `len` octets into the fewest pieces of at most `max` octets,
/// the first `len % count` of them one octet longer than the others.
///
/// Pieces are addressed by index, so a packetizer keeps only the index of the
/// next piece as its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Split {
    count: usize,
    base: usize,
    extra: usize,
}

impl Split {
    /// Splits `len` octets into pieces of at most `max` octets (`max` below 1
    /// counts as 1). Zero octets are one empty piece.
    pub(crate) fn new(len: usize, max: usize) -> Self {
        let count = len.div_ceil(max.max(1)).max(1);
        Self { count, base: len / count, extra: len % count }
    }

    /// How many pieces.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// The offset and length of piece `i` (`i < count`). No overflow:
    /// `i * base <= len`.
    pub(crate) fn piece(&self, i: usize) -> (usize, usize) {
        let offset = i.saturating_mul(self.base).saturating_add(i.min(self.extra));
        (offset, self.base + usize::from(i < self.extra))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_run_evenly() {
        for (len, max) in [(0, 10), (1, 10), (10, 10), (11, 10), (6000, 1100), (2201, 1100), (2001, 1000), (5, 0)] {
            let s = Split::new(len, max);
            let pieces: Vec<(usize, usize)> = (0..s.count()).map(|i| s.piece(i)).collect();
            assert_eq!(pieces.iter().map(|p| p.1).sum::<usize>(), len, "{len}/{max}");
            assert!(pieces.iter().all(|p| p.1 <= max.max(1)), "{len}/{max}");
            // Contiguous, in order.
            let mut at = 0;
            for (offset, n) in &pieces {
                assert_eq!(*offset, at);
                at += n;
            }
            let (lo, hi) = (pieces.iter().map(|p| p.1).min().unwrap(), pieces.iter().map(|p| p.1).max().unwrap());
            assert!(hi - lo <= 1, "{len}/{max}");
            // The fewest pieces.
            assert_eq!(s.count(), len.div_ceil(max.max(1)).max(1));
        }
        assert_eq!(Split::new(2001, 1000).piece(2), (1334, 667));
    }
}
