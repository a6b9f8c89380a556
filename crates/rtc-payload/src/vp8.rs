//! VP8 (RFC 7741).
//!
//! Sending: each packet starts with a 4-octet payload descriptor (section
//! 4.2): X = 1, then I = 1 with M = 1 and a 15-bit PictureID; S = 1 on the
//! frame's first packet only and PID = 0 throughout (section 4.4: the frame is
//! split without regard to partition boundaries, evenly). The PictureID
//! increases by one per frame and wraps from 0x7fff to 0. The marker bit is
//! on the frame's last packet (section 4.4).
//!
//! Receiving: any legal descriptor (X, I with a 7- or 15-bit PictureID, L,
//! T, K). A frame is complete (section 4.5.1) when its packets share one
//! timestamp, run over consecutive sequence numbers, the first has S = 1 and
//! PID = 0 and the last the marker bit. A packet with S = 1 and PID > 0 starts
//! a later partition of the same frame and is simply appended.

use crate::fragment::Split;
use crate::framing::State;
use crate::sequence::Order;
use crate::{Assembly, Error, FrameInfo, PacketInfo, Payload};

/// Length of the payload descriptor written: X, then I with a 15-bit
/// PictureID (RFC 7741 section 4.2).
pub(crate) const DESCRIPTOR_LEN: usize = 4;

/// The largest 15-bit PictureID (RFC 7741 section 4.2: wraps to 0 after it).
const PICTURE_ID_MASK: u16 = 0x7fff;

/// The payload descriptor of one packet of a frame.
fn descriptor(start: bool, picture_id: u16) -> [u8; DESCRIPTOR_LEN] {
    let [hi, lo] = (picture_id & PICTURE_ID_MASK).to_be_bytes();
    [
        0x80 | if start { 0x10 } else { 0 }, // X, S; N = 0, PID = 0
        0x80,                                // I: PictureID present
        0x80 | hi,                           // M: 15-bit PictureID
        lo,
    ]
}

/// The send state of one frame.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sender {
    split: Split,
    /// The next piece to write.
    index: usize,
    picture_id: u16,
}

impl Sender {
    /// Splits a frame into payloads of at most `max` octets (`max` >
    /// [`DESCRIPTOR_LEN`]) under `picture_id`.
    pub(crate) fn begin(frame: &[u8], max: usize, picture_id: u16) -> Result<(Self, usize), Error> {
        if frame.is_empty() {
            return Err(Error::Empty);
        }
        let split = Split::new(frame.len(), max.saturating_sub(DESCRIPTOR_LEN));
        Ok((Self { split, index: 0, picture_id: picture_id & PICTURE_ID_MASK }, split.count()))
    }

    /// The next PictureID after `picture_id` (15 bits, wrapping).
    pub(crate) fn next_picture_id(picture_id: u16) -> u16 {
        picture_id.wrapping_add(1) & PICTURE_ID_MASK
    }

    /// Writes the next packet into `out`.
    pub(crate) fn next(&mut self, frame: &[u8], out: &mut [u8]) -> Option<Payload> {
        if self.index >= self.split.count() {
            return None;
        }
        let (offset, len) = self.split.piece(self.index);
        let piece = frame.get(offset..offset.checked_add(len)?)?;
        let total = DESCRIPTOR_LEN + len;
        let out = out.get_mut(..total)?;
        out[..DESCRIPTOR_LEN].copy_from_slice(&descriptor(self.index == 0, self.picture_id));
        out[DESCRIPTOR_LEN..].copy_from_slice(piece);
        self.index += 1;
        Some(Payload { len: total, marker: self.index == self.split.count() })
    }
}

/// A parsed payload descriptor (RFC 7741 section 4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Descriptor {
    /// S = 1 and PID = 0: the first packet of a frame.
    pub(crate) frame_start: bool,
    /// The PictureID, 7 or 15 bits, when I = 1.
    pub(crate) picture_id: Option<u16>,
    /// The descriptor's length: the VP8 data starts here.
    pub(crate) len: usize,
}

/// Parses the payload descriptor at the start of `payload`; `None` when it
/// runs past the payload. Reserved bits are ignored as section 4.2 requires.
pub(crate) fn parse_descriptor(payload: &[u8]) -> Option<Descriptor> {
    let b0 = *payload.first()?;
    let frame_start = b0 & 0x10 != 0 && b0 & 0x07 == 0;
    let mut len = 1;
    let mut picture_id = None;
    if b0 & 0x80 != 0 {
        let x = *payload.get(len)?;
        len += 1;
        if x & 0x80 != 0 {
            let m = *payload.get(len)?;
            if m & 0x80 != 0 {
                picture_id = Some(u16::from_be_bytes([m & 0x7f, *payload.get(len + 1)?]));
                len += 2;
            } else {
                picture_id = Some(u16::from(m));
                len += 1;
            }
        }
        if x & 0x40 != 0 {
            len += 1; // L: TL0PICIDX
        }
        if x & 0x30 != 0 {
            len += 1; // T or K: TID/Y/KEYIDX
        }
    }
    (len <= payload.len()).then_some(Descriptor { frame_start, picture_id, len })
}

/// Whether a VP8 frame is a key frame: the P bit, the low bit of the first
/// octet of the frame tag, is clear (RFC 6386 section 9.1, RFC 7741 section
/// 4.3).
pub(crate) fn is_key_frame(frame: &[u8]) -> bool {
    frame.first().is_some_and(|b| b & 1 == 0)
}

/// Reassembles VP8 frames from packets in arrival order.
#[derive(Debug, Default)]
pub(crate) struct Receiver {
    state: State<()>,
}

impl Receiver {
    /// Takes one packet. Every frame that got a packet and does not come out
    /// whole is counted once in `asm.discarded`.
    pub(crate) fn push(
        &mut self,
        order: Order,
        packet: PacketInfo,
        payload: &[u8],
        asm: &mut Assembly,
        frame: &mut impl FnMut(FrameInfo, &mut Vec<u8>),
    ) {
        let ts = packet.timestamp;
        // A frame of another timestamp that is still open lost its marker
        // packet (section 4.5.1 step 3: complete only with the marker).
        if !self.state.take(order, ts, asm) {
            return;
        }
        match parse_descriptor(payload) {
            None => self.state.fail(ts, asm),
            Some(d) if d.frame_start => {
                if let State::Building(..) = self.state {
                    asm.discard(); // a new frame before the open one ended
                }
                self.state.start(ts, (), &payload[d.len..], asm);
            }
            Some(d) => match self.state {
                State::Building(..) if order == Order::Next => self.state.append(ts, &payload[d.len..], asm),
                // A gap inside the frame, or its first packet missing.
                State::Building(..) | State::Idle => self.state.fail(ts, asm),
                State::Broken(_) => {}
            },
        }
        if packet.marker {
            self.state.finish(asm, |_, f| is_key_frame(f), frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7741 section 4.6: the descriptors of the example streams.
    #[test]
    fn rfc7741_example_descriptors() {
        // 4.6.1: X = 1; S = 1; PID = 0 / I = 1 / PictureID = 17.
        let d = parse_descriptor(&[0b1001_0000, 0b1000_0000, 0b0001_0001, 0xaa]).unwrap();
        assert_eq!(d, Descriptor { frame_start: true, picture_id: Some(17), len: 3 });
        // 4.6.2: X = 0; S = 1; PID = 0, no PictureID.
        let d = parse_descriptor(&[0b0001_0000, 0xaa]).unwrap();
        assert_eq!(d, Descriptor { frame_start: true, picture_id: None, len: 1 });
        // 4.6.3, second packet: S = 1; PID = 1: a partition start, not a frame start.
        let d = parse_descriptor(&[0b1001_0001, 0b1000_0000, 0b0001_0001]).unwrap();
        assert_eq!(d, Descriptor { frame_start: false, picture_id: Some(17), len: 3 });
        // 4.6.4, third packet: S = 0; PID = 1.
        let d = parse_descriptor(&[0b1000_0001, 0b1000_0000, 0b0001_0001, 1]).unwrap();
        assert_eq!(d, Descriptor { frame_start: false, picture_id: Some(17), len: 3 });
        // 4.6.5: long PictureID 4711 = 0b0010010_01100111.
        let d = parse_descriptor(&[0b1001_0000, 0b1000_0000, 0b1001_0010, 0b0110_0111, 0xaa]).unwrap();
        assert_eq!(d, Descriptor { frame_start: true, picture_id: Some(4711), len: 4 });
        // The sender's descriptor for the same PictureID is that one.
        assert_eq!(descriptor(true, 4711), [0b1001_0000, 0b1000_0000, 0b1001_0010, 0b0110_0111]);
        assert_eq!(descriptor(false, 4711)[0], 0b1000_0000);
        // L, T and K each add their octet (section 4.2, figure 2).
        let d = parse_descriptor(&[0x90, 0xf0, 0x05, 0x33, 0x40, 0xaa]).unwrap();
        assert_eq!((d.picture_id, d.len), (Some(5), 5));
        let d = parse_descriptor(&[0x90, 0x10, 0x40]).unwrap();
        assert_eq!((d.picture_id, d.len), (None, 3), "K alone still has the TID/Y/KEYIDX octet");
        // Reserved bits are ignored (R in the first octet, RSV in X).
        let d = parse_descriptor(&[0x90 | 0x40 | 0x08, 0x0f]).unwrap();
        assert_eq!(d, Descriptor { frame_start: true, picture_id: None, len: 2 });
        // Truncated descriptors.
        for p in [&[][..], &[0x80], &[0x80, 0x80], &[0x80, 0x80, 0x80], &[0x80, 0x40], &[0x80, 0x20]] {
            assert_eq!(parse_descriptor(p), None, "{p:?}");
        }
    }

    /// RFC 6386 section 9.1: P = 0 is a key frame (the RFC 7741 section
    /// 4.6.1 example); P = 1 an interframe (section 4.6.2).
    #[test]
    fn key_frames() {
        assert!(is_key_frame(&[0b0001_0000, 0x02, 0x00, 0x9d, 0x01, 0x2a]));
        assert!(!is_key_frame(&[0b0001_0001, 0x02, 0x00]));
        assert!(!is_key_frame(&[]));
    }

    use crate::testing::{packetize, push, receive};
    use crate::{Depacketizer, Format, Packetizer};

    /// The sent descriptor: X = 1, I = 1, M = 1 with the 15-bit PictureID,
    /// S = 1 on the first packet only, PID = 0 (RFC 7741 sections 4.2 and
    /// 4.4); the frame split evenly; the PictureID one more per frame.
    #[test]
    fn sent_descriptors() {
        let frame: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let mut p = Packetizer::new(Format::Vp8, 1104, 0x7ffe);
        let packets = packetize(&mut p, &frame).unwrap();
        assert_eq!(packets.len(), 5);
        for (i, (pkt, marker)) in packets.iter().enumerate() {
            let s = if i == 0 { 0x10 } else { 0 };
            assert_eq!(pkt[..4], [0x80 | s, 0x80, 0xff, 0xfe], "packet {i}");
            assert_eq!(pkt.len(), 4 + 1000, "even split");
            assert_eq!(*marker, i == 4);
        }
        let concatenated: Vec<u8> = packets.iter().flat_map(|(p, _)| p[4..].iter().copied()).collect();
        assert_eq!(concatenated, frame);
        // 0x7ffe, 0x7fff, then wrapping to 0.
        for want in [0x7fff, 0] {
            let packets = packetize(&mut p, &[0x10, 1, 2]).unwrap();
            let d = parse_descriptor(&packets[0].0).unwrap();
            assert_eq!((d.frame_start, d.picture_id, d.len), (true, Some(want), 4));
        }
        // A refused frame takes no PictureID.
        assert!(p.begin(&[]).is_err());
        let packets = packetize(&mut p, &[0x10]).unwrap();
        assert_eq!(parse_descriptor(&packets[0].0).unwrap().picture_id, Some(1));
        // The top bit of the first PictureID is ignored.
        let mut p = Packetizer::new(Format::Vp8, 1200, 0x8005);
        assert_eq!(packetize(&mut p, &[1]).unwrap()[0].0[..4], [0x90, 0x80, 0x80, 0x05]);
    }

    #[test]
    fn round_trip_and_loss() {
        let frame: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let mut p = Packetizer::new(Format::Vp8, 1104, 300);
        let packets = packetize(&mut p, &frame).unwrap();
        let mut d = Depacketizer::new(Format::Vp8, 1 << 20);
        assert_eq!(receive(&mut d, 100, 9000, &packets), vec![(frame.clone(), true)]);
        // Losing the middle packet discards the frame; the next one still comes.
        for (i, (pkt, m)) in packets.iter().enumerate().filter(|(i, _)| *i != 2) {
            assert!(push(&mut d, 200 + i as u16, 12000, *m, pkt).is_empty());
        }
        assert_eq!(d.discarded(), 1);
        let small = packetize(&mut p, b"\x11abc").unwrap();
        assert_eq!(push(&mut d, 300, 15000, true, &small[0].0), vec![(b"\x11abc".to_vec(), false)], "P = 1");
        // Truncated descriptors are refused without panicking.
        for (i, pkt) in [&[][..], &[0x80], &[0x80, 0x80], &[0x80, 0x80, 0x80]].into_iter().enumerate() {
            assert!(push(&mut d, 301 + i as u16, 16000 + i as u32, true, pkt).is_empty());
        }
        assert_eq!(d.discarded(), 5);
    }

    /// RFC 7741 section 4.6.3 and 4.6.4: partitions in separate packets, S =
    /// 1 with PID = 1 in the middle of the frame, 7-bit PictureID 17.
    #[test]
    fn partitions_in_separate_packets() {
        let mut d = Depacketizer::new(Format::Vp8, 1 << 20);
        let first = [0x90, 0x80, 17, 0x01, 0x02, 0x00, 0xaa]; // P = 1: an interframe
        let second = [0x91, 0x80, 17, 0xbb, 0xbb];
        let third = [0x81, 0x80, 17, 0xcc];
        assert!(push(&mut d, 1, 3000, false, &first).is_empty());
        assert!(push(&mut d, 2, 3000, false, &second).is_empty());
        let want = vec![0x01, 0x02, 0x00, 0xaa, 0xbb, 0xbb, 0xcc];
        assert_eq!(push(&mut d, 3, 3000, true, &third), vec![(want, false)]);
        // Section 4.6.2: no X, a key frame in one packet.
        assert_eq!(push(&mut d, 4, 6000, true, &[0x10, 0x10, 0x02, 0x00]), vec![(vec![0x10, 0x02, 0x00], true)]);
        assert_eq!(d.discarded(), 0);
    }

    #[test]
    fn incomplete_frames_are_counted_once() {
        let mut d = Depacketizer::new(Format::Vp8, 10);
        // The first packet lost: the rest of the frame is dropped, once.
        assert!(push(&mut d, 1, 100, false, &[0x80, 0x00, 1]).is_empty());
        assert!(push(&mut d, 2, 100, true, &[0x80, 0x00, 2]).is_empty());
        assert_eq!(d.discarded(), 1);
        // The marker packet lost: the next frame's start drops it.
        assert!(push(&mut d, 3, 200, false, &[0x90, 0x00, 1]).is_empty());
        assert_eq!(push(&mut d, 5, 300, true, &[0x90, 0x00, 2]), vec![(vec![2], true)]);
        assert_eq!(d.discarded(), 2);
        // A frame over max_frame.
        assert!(push(&mut d, 6, 400, false, &[0x10, 0, 1, 2, 3, 4, 5, 6, 7]).is_empty());
        assert!(push(&mut d, 7, 400, false, &[0x00, 8, 9, 10]).is_empty());
        assert!(push(&mut d, 8, 400, true, &[0x00, 11]).is_empty());
        assert_eq!(d.discarded(), 3);
        // A frame without any VP8 data.
        assert!(push(&mut d, 9, 500, true, &[0x90, 0x80, 1]).is_empty());
        assert_eq!(d.discarded(), 4);
        // Duplicates and late packets are ignored, not counted.
        assert!(push(&mut d, 10, 600, false, &[0x10, 1]).is_empty());
        assert!(push(&mut d, 10, 600, false, &[0x10, 1]).is_empty());
        assert!(push(&mut d, 9, 500, true, &[0x90, 0x80, 1]).is_empty());
        assert_eq!(push(&mut d, 11, 600, true, &[0x00, 2]), vec![(vec![1, 2], false)]);
        assert_eq!(d.discarded(), 4);
    }
}
