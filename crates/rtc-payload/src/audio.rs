//! Audio: one frame per packet.
//!
//! - Opus (RFC 7587 section 4.2): "An RTP payload MUST contain exactly one
//!   Opus packet", the encoder's output as it is.
//! - G.711 PCMU and PCMA, G.722 (RFC 3551 sections 4.5.14 and 4.5.2): octets
//!   of samples, one block of them per packet.
//! - Any other audio codec whose payload is the encoder's frame unchanged.
//!
//! Audio frames are never fragmented: a frame longer than a packet is
//! refused. The marker bit is set on every packet. RFC 3551 section 4.1 (to
//! which RFC 7587 section 4.1 refers) reserves it for the first packet of a
//! talkspurt; a sender that does not use silence suppression can call every
//! packet such a start, and receivers use the marker only as a hint for
//! their playout buffer. Setting it always is what this stack has done.

use crate::sequence::Order;
use crate::{Assembly, Error, FrameInfo, PacketInfo, Payload};

/// The send state of one audio frame.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sender {
    /// The frame's one packet is still to be written.
    pending: bool,
}

impl Sender {
    /// Checks a frame: not empty, fits one payload.
    pub(crate) fn begin(frame: &[u8], max: usize) -> Result<(Self, usize), Error> {
        if frame.is_empty() {
            return Err(Error::Empty);
        }
        if frame.len() > max {
            return Err(Error::InvalidFrame("audio frame longer than max_payload (audio is never fragmented)"));
        }
        Ok((Self { pending: true }, 1))
    }

    /// Copies the frame into `out` (long enough: checked by the caller).
    pub(crate) fn next(&mut self, frame: &[u8], out: &mut [u8]) -> Option<Payload> {
        if !self.pending {
            return None;
        }
        out.get_mut(..frame.len())?.copy_from_slice(frame);
        self.pending = false;
        Some(Payload { len: frame.len(), marker: true })
    }
}

/// Every packet is a frame: a late one too (the caller orders by
/// timestamp), a duplicate not (RFC 7587 section 4.1: at most one copy goes
/// to the decoder). An empty payload or one longer than the largest frame is
/// discarded.
pub(crate) fn push(
    order: Order,
    packet: PacketInfo,
    payload: &[u8],
    asm: &mut Assembly,
    frame: &mut impl FnMut(FrameInfo, &mut Vec<u8>),
) {
    if matches!(order, Order::Duplicate | Order::Stray) {
        return;
    }
    asm.buf.clear();
    if payload.is_empty() || !asm.append(&[payload]) {
        asm.discard();
        return;
    }
    asm.deliver(FrameInfo { timestamp: packet.timestamp, key_frame: true }, frame);
}

#[cfg(test)]
mod tests {
    use crate::testing::{packetize, push};
    use crate::{Depacketizer, Error, Format, Packetizer};

    /// RFC 7587 section 4.2: "An RTP payload MUST contain exactly one Opus
    /// packet"; the marker on every packet, as this stack has always sent.
    #[test]
    fn one_frame_per_packet() {
        let mut p = Packetizer::new(Format::Audio, 1200, 0);
        for frame in [&[0xfcu8, 0xff, 0xfe][..], &[0x55; 160], &[7; 1200]] {
            assert_eq!(packetize(&mut p, frame).unwrap(), vec![(frame.to_vec(), true)]);
        }
        assert_eq!(p.begin(&[]), Err(Error::Empty));
        assert!(matches!(p.begin(&[0; 1201]), Err(Error::InvalidFrame(_))), "audio is never fragmented");
    }

    /// RFC 3551 section 4.5.14: a 20 ms G.711 frame at 8000 Hz is 160
    /// octets, one per sample, carried as they are.
    #[test]
    fn g711_frame() {
        let frame: Vec<u8> = (0..160u8).collect();
        let mut p = Packetizer::new(Format::Audio, 1200, 0);
        let packets = packetize(&mut p, &frame).unwrap();
        let mut d = Depacketizer::new(Format::Audio, 1500);
        assert_eq!(push(&mut d, 1, 160, true, &packets[0].0), vec![(frame, true)]);
    }

    #[test]
    fn receive() {
        let mut d = Depacketizer::new(Format::Audio, 100);
        assert_eq!(push(&mut d, 10, 960, false, &[1, 2]), vec![(vec![1, 2], true)], "the marker is not needed");
        // RFC 7587 section 4.1: at most one copy of a duplicate.
        assert!(push(&mut d, 10, 960, true, &[1, 2]).is_empty());
        assert_eq!(push(&mut d, 12, 2880, true, &[3]), vec![(vec![3], true)], "after a gap");
        assert_eq!(push(&mut d, 11, 1920, true, &[4]), vec![(vec![4], true)], "late, still a frame");
        assert!(push(&mut d, 11, 1920, true, &[4]).is_empty(), "late duplicate");
        assert_eq!(d.discarded(), 0);
        assert!(push(&mut d, 13, 3840, true, &[]).is_empty());
        assert!(push(&mut d, 14, 4800, true, &[0; 101]).is_empty());
        assert_eq!(d.discarded(), 2, "empty and too long");
        assert_eq!(push(&mut d, 15, 5760, true, &[0; 100]), vec![(vec![0; 100], true)]);
    }
}
