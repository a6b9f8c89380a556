//! AV1 (the Alliance for Open Media's "RTP Payload Format for AV1", v1.0).
//!
//! Frames are temporal units in the low-overhead bitstream format (AV1
//! specification section 5.2): OBUs with `obu_has_size_field = 1`, as
//! encoders write them and IVF files hold them.
//!
//! Sending (section 5): every payload starts with the aggregation header
//! `Z|Y|W|N|-|-|-` and carries OBU elements, each preceded by its LEB128
//! length (W = 0). An element is an OBU without its size field (the sender
//! clears `obu_has_size_field` and drops the size: the element's length
//! says it). Temporal delimiters, tile lists and padding are not sent
//! (section 5.1). An OBU longer than what is left of a payload is split:
//! Y = 1 on the packet it starts in, Z = 1 on the one it continues in. N = 1
//! on the first packet of a temporal unit that holds a sequence header (a
//! new coded video sequence, as key frames start). The marker bit is on the
//! temporal unit's last packet.
//!
//! Receiving (section 6): any W, fragments across consecutive packets of
//! one timestamp; each OBU comes out with its size field again, after a
//! temporal delimiter, so that a received temporal unit is what an encoder
//! wrote (and an IVF file holds). A key frame is a temporal unit whose first
//! packet has N = 1.

use crate::framing::State;
use crate::sequence::Order;
use crate::{Assembly, Error, FrameInfo, PacketInfo, Payload};

const Z: u8 = 0x80;
const Y: u8 = 0x40;
const W_SHIFT: u8 = 4;
const N: u8 = 0x08;

/// OBU types (AV1 specification section 6.2.2).
const OBU_SEQUENCE_HEADER: u8 = 1;
const OBU_TEMPORAL_DELIMITER: u8 = 2;
const OBU_TILE_LIST: u8 = 8;
const OBU_PADDING: u8 = 15;

/// `obu_has_size_field` and `obu_extension_flag` in the OBU header.
const HAS_SIZE: u8 = 0x02;
const HAS_EXTENSION: u8 = 0x04;
/// The forbidden bit.
const FORBIDDEN: u8 = 0x80;

/// A temporal delimiter OBU with its (zero) size: what every received
/// temporal unit starts with.
const TEMPORAL_DELIMITER: [u8; 2] = [OBU_TEMPORAL_DELIMITER << 3 | HAS_SIZE, 0];

/// Reads an unsigned LEB128 value (AV1 specification section 4.10.5: at
/// most 8 octets, at most 2^32 - 1): the value and its length.
fn read_leb128(data: &[u8]) -> Option<(usize, usize)> {
    let mut value: u64 = 0;
    for (i, b) in data.iter().take(8).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let value = u32::try_from(value).ok()?;
            return Some((usize::try_from(value).ok()?, i + 1));
        }
    }
    None
}

/// The length of `value` in LEB128.
fn leb128_len(mut value: usize) -> usize {
    let mut n = 1;
    while value >= 0x80 {
        value >>= 7;
        n += 1;
    }
    n
}

/// Writes `value` in LEB128 at the start of `out`; its length.
fn write_leb128(mut value: usize, out: &mut [u8]) -> usize {
    let mut i = 0;
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        out[i] = if value == 0 { byte } else { byte | 0x80 };
        i += 1;
        if value == 0 {
            return i;
        }
    }
}

/// One OBU of a frame as it goes on the wire.
#[derive(Debug, Clone, Copy)]
struct Obu {
    /// Its header octets with `obu_has_size_field` cleared.
    header: [u8; 2],
    header_len: usize,
    /// Its payload in the frame.
    start: usize,
    end: usize,
    kind: u8,
}

impl Obu {
    /// Its length as an element: header and payload.
    fn element_len(&self) -> usize {
        self.header_len + (self.end - self.start)
    }

    /// Octet `i` of its element.
    fn copy(&self, frame: &[u8], from: usize, out: &mut [u8]) {
        for (k, o) in out.iter_mut().enumerate() {
            let i = from + k;
            *o = if i < self.header_len { self.header[i] } else { frame[self.start + i - self.header_len] };
        }
    }

    /// Not sent (section 5.1).
    fn dropped(&self) -> bool {
        matches!(self.kind, OBU_TEMPORAL_DELIMITER | OBU_TILE_LIST | OBU_PADDING)
    }
}

/// The OBU at `pos` and where the next one starts. An OBU without a size
/// field takes the rest of the frame.
fn parse_obu(frame: &[u8], pos: usize) -> Result<(Obu, usize), Error> {
    let bad = Error::InvalidFrame("not AV1 OBUs in the low-overhead bitstream format");
    let h = *frame.get(pos).ok_or(bad.clone())?;
    if h & FORBIDDEN != 0 {
        return Err(bad);
    }
    let header_len = if h & HAS_EXTENSION != 0 { 2 } else { 1 };
    let ext = if header_len == 2 { *frame.get(pos + 1).ok_or(bad.clone())? } else { 0 };
    let after_header = pos + header_len;
    let (start, end) = if h & HAS_SIZE != 0 {
        let (size, n) = read_leb128(frame.get(after_header..).ok_or(bad.clone())?).ok_or(bad.clone())?;
        let start = after_header + n;
        (start, start.checked_add(size).filter(|e| *e <= frame.len()).ok_or(bad)?)
    } else {
        (after_header.min(frame.len()), frame.len())
    };
    let obu = Obu { header: [h & !HAS_SIZE, ext], header_len, start, end, kind: (h >> 3) & 0x0f };
    Ok((obu, end))
}

/// Where the sender stands in the frame: the OBU at `pos`, `done` octets of
/// its element already sent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sender {
    max: usize,
    pos: usize,
    done: usize,
    new_sequence: bool,
    index: usize,
    count: usize,
}

impl Sender {
    pub(crate) fn begin(frame: &[u8], max: usize) -> Result<(Self, usize), Error> {
        let mut pos = 0;
        let (mut any, mut new_sequence) = (false, false);
        while pos < frame.len() {
            let (obu, next) = parse_obu(frame, pos)?;
            any |= !obu.dropped();
            new_sequence |= obu.kind == OBU_SEQUENCE_HEADER;
            pos = next;
        }
        if !any {
            return Err(Error::Empty);
        }
        let mut s = Self { max, pos: 0, done: 0, new_sequence, index: 0, count: 0 };
        let mut counting = s;
        while let Some((_, last)) = counting.fill(frame, None) {
            s.count += 1;
            if last {
                break;
            }
        }
        Ok((s, s.count))
    }

    /// Fills one payload (into `out`, or only counts without it); its
    /// length and whether it ends the frame. `None` once the frame is out.
    fn fill(&mut self, frame: &[u8], mut out: Option<&mut [u8]>) -> Option<(usize, bool)> {
        let mut header = if self.done > 0 { Z } else { 0 };
        let mut w = 1;
        loop {
            if self.done == 0 {
                // Skip what is not sent.
                while self.pos < frame.len() {
                    let (obu, next) = parse_obu(frame, self.pos).ok()?;
                    if !obu.dropped() {
                        break;
                    }
                    self.pos = next;
                }
            }
            if self.pos >= frame.len() {
                break;
            }
            let (obu, next) = parse_obu(frame, self.pos).ok()?;
            let remaining = obu.element_len() - self.done;
            let room = self.max.checked_sub(w)?;
            if room < 2 {
                break;
            }
            let whole = leb128_len(remaining) + remaining <= room;
            let part = if whole { remaining } else { room - leb128_len(room) };
            if let Some(o) = out.as_deref_mut() {
                w += write_leb128(part, &mut o[w..]);
                obu.copy(frame, self.done, &mut o[w..w + part]);
            } else {
                w += leb128_len(part);
            }
            w += part;
            if whole {
                self.pos = next;
                self.done = 0;
            } else {
                self.done += part;
                header |= Y;
                break;
            }
        }
        if w == 1 {
            return None;
        }
        if self.index == 0 && self.new_sequence {
            header |= N;
        }
        if let Some(o) = out {
            o[0] = header; // W = 0: every element has its length
        }
        self.index += 1;
        // The frame ends when nothing but dropped OBUs is left.
        let mut rest = self.pos;
        while self.done == 0 && rest < frame.len() {
            match parse_obu(frame, rest) {
                Ok((obu, next)) if obu.dropped() => rest = next,
                _ => break,
            }
        }
        Some((w, self.done == 0 && rest >= frame.len()))
    }

    pub(crate) fn next(&mut self, frame: &[u8], out: &mut [u8]) -> Option<Payload> {
        if self.index >= self.count {
            return None;
        }
        let (len, last) = self.fill(frame, Some(out))?;
        Some(Payload { len, marker: last || self.index == self.count })
    }
}

/// Reassembly: the frame's state (N of its first packet kept) and the OBU
/// element that continues in the next packet.
#[derive(Debug, Default)]
pub(crate) struct Receiver {
    state: State<bool>,
    pending: Vec<u8>,
}

impl Receiver {
    pub(crate) fn push(
        &mut self,
        order: Order,
        packet: PacketInfo,
        payload: &[u8],
        asm: &mut Assembly,
        frame: &mut impl FnMut(FrameInfo, &mut Vec<u8>),
    ) {
        let ts = packet.timestamp;
        if !self.state.take(order, ts, asm) {
            return;
        }
        let Some((&agg, elements)) = payload.split_first() else {
            self.fail(ts, asm);
            return;
        };
        let continues = agg & Z != 0;
        match self.state {
            State::Broken(_) => return,
            // The start of the temporal unit or of the element is lost.
            State::Idle if continues => {
                self.fail(ts, asm);
                return;
            }
            State::Idle => {
                self.pending.clear();
                self.state.start(ts, agg & N != 0, &TEMPORAL_DELIMITER, asm);
            }
            // (`take` ended a frame of another timestamp.)
            State::Building(..) if order == Order::Next => {}
            // A packet of this temporal unit is missing.
            State::Building(..) => {
                self.fail(ts, asm);
                return;
            }
        }
        if continues == self.pending.is_empty() {
            self.fail(ts, asm);
            return;
        }
        if self.elements(agg, elements, asm).is_none() {
            self.fail(ts, asm);
            return;
        }
        if packet.marker {
            if !self.pending.is_empty() {
                self.fail(ts, asm);
                return;
            }
            self.state.finish(asm, |key, _| *key, frame);
        }
    }

    /// The packet's elements into the frame; `None` for a malformed packet.
    fn elements(&mut self, agg: u8, mut data: &[u8], asm: &mut Assembly) -> Option<()> {
        let w = usize::from((agg >> W_SHIFT) & 0x03);
        let mut i = 0;
        while !data.is_empty() {
            i += 1;
            let element = if w != 0 && i == w {
                std::mem::take(&mut data)
            } else {
                let (len, n) = read_leb128(data)?;
                let e = data.get(n..n.checked_add(len)?)?;
                data = &data[n + len..];
                e
            };
            let first = i == 1 && agg & Z != 0;
            let last = data.is_empty() && agg & Y != 0;
            if first || last {
                if !asm.fits(self.pending.len().saturating_add(element.len())) {
                    return None;
                }
                self.pending.extend_from_slice(element);
            }
            if last {
                break;
            }
            if first {
                let r = write_obu(&self.pending, asm);
                self.pending.clear();
                r?;
            } else {
                write_obu(element, asm)?;
            }
        }
        Some(())
    }

    fn fail(&mut self, ts: u32, asm: &mut Assembly) {
        self.pending.clear();
        self.state.fail(ts, asm);
    }
}

/// One whole OBU element into the frame, with its size field again;
/// temporal delimiters are left out (the frame starts with one).
fn write_obu(element: &[u8], asm: &mut Assembly) -> Option<()> {
    let &h = element.first()?;
    if h & FORBIDDEN != 0 {
        return None;
    }
    let header_len = if h & HAS_EXTENSION != 0 { 2 } else { 1 };
    let header = element.get(..header_len)?;
    let payload = &element[header_len..];
    if (h >> 3) & 0x0f == OBU_TEMPORAL_DELIMITER {
        return Some(());
    }
    let mut size = [0u8; 8];
    let n = write_leb128(payload.len(), &mut size);
    let first = [h | HAS_SIZE];
    let ext = &header[1..];
    asm.append(&[&first, ext, &size[..n], payload]).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{packetize, receive};
    use crate::{Depacketizer, Format, Packetizer};

    /// An OBU with its size field.
    fn obu(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut o = vec![kind << 3 | HAS_SIZE];
        let mut size = [0u8; 8];
        let n = write_leb128(payload.len(), &mut size);
        o.extend_from_slice(&size[..n]);
        o.extend_from_slice(payload);
        o
    }

    /// A temporal unit as an encoder writes it: a temporal delimiter, then
    /// `obus`.
    fn temporal_unit(obus: &[Vec<u8>]) -> Vec<u8> {
        let mut tu = TEMPORAL_DELIMITER.to_vec();
        for o in obus {
            tu.extend_from_slice(o);
        }
        tu
    }

    /// The real AV1 clip (30 temporal units, 160x120, a key frame every
    /// 10, aomenc; see conformance/fixtures/media/README.md): after the
    /// 32-octet IVF header, each frame has a 12-octet header starting with
    /// its length.
    const CLIP: &[u8] = include_bytes!("../../../conformance/fixtures/media/av1-160x120.ivf");

    #[test]
    fn a_real_clip_goes_through_at_every_payload_size() {
        assert_eq!((&CLIP[..4], &CLIP[8..12]), (&b"DKIF"[..], &b"AV01"[..]));
        let mut units = Vec::new();
        let mut at = 32;
        while at < CLIP.len() {
            let len = u32::from_le_bytes(CLIP[at..at + 4].try_into().unwrap()) as usize;
            units.push(&CLIP[at + 12..at + 12 + len]);
            at += 12 + len;
        }
        assert_eq!(units.len(), 30);
        for max in [60usize, 300, 1200] {
            let mut p = Packetizer::new(Format::Av1, max, 0);
            let mut d = Depacketizer::new(Format::Av1, 1 << 20);
            let mut seq = 100u16;
            let mut keys = Vec::new();
            for (i, tu) in units.iter().enumerate() {
                let packets = packetize(&mut p, tu).unwrap();
                let frames = receive(&mut d, seq, i as u32 * 3000, &packets);
                seq = seq.wrapping_add(packets.len() as u16);
                assert_eq!(frames.len(), 1, "unit {i} at {max}");
                assert_eq!(frames[0].0, *tu, "unit {i} at {max}: octet for octet");
                if frames[0].1 {
                    keys.push(i);
                }
            }
            assert_eq!(keys, [0, 10, 20], "the key frames carry a sequence header (N = 1)");
        }
    }

    #[test]
    fn leb128_round_trips_and_refuses_overlong_values() {
        for v in [0usize, 1, 127, 128, 300, 16_383, 16_384, 1 << 20, u32::MAX as usize] {
            let mut b = [0u8; 8];
            let n = write_leb128(v, &mut b);
            assert_eq!(n, leb128_len(v));
            assert_eq!(read_leb128(&b[..n]), Some((v, n)));
        }
        assert_eq!(read_leb128(&[0x80; 8]), None, "no end in 8 octets");
        assert_eq!(read_leb128(&[0xff, 0xff, 0xff, 0xff, 0x7f]), None, "over 2^32 - 1");
        assert_eq!(read_leb128(&[]), None);
        // Non-minimal encodings are allowed (section 4.10.5).
        assert_eq!(read_leb128(&[0x85, 0x00]), Some((5, 2)));
    }

    #[test]
    fn a_small_temporal_unit_is_one_packet_and_comes_back_the_same() {
        let tu = temporal_unit(&[obu(OBU_SEQUENCE_HEADER, &[1, 2, 3]), obu(6, &[9; 40])]);
        let mut p = Packetizer::new(Format::Av1, 1200, 0);
        let packets = packetize(&mut p, &tu).unwrap();
        assert_eq!(packets.len(), 1);
        let payload = &packets[0].0;
        assert_eq!(payload[0], N, "W = 0, N for the sequence header, no Z or Y");
        // Elements: length 4 (header + 3), the header without its size bit.
        assert_eq!(&payload[1..6], &[4, OBU_SEQUENCE_HEADER << 3, 1, 2, 3]);
        assert_eq!(&payload[6..8], &[41, 6 << 3], "the temporal delimiter is not sent");
        let mut d = Depacketizer::new(Format::Av1, 1 << 20);
        let frames = receive(&mut d, 7, 1000, &packets);
        assert_eq!(frames, vec![(tu, true)]);
    }

    #[test]
    fn long_obus_are_fragmented_with_z_and_y_and_reassembled() {
        let big: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let tu = temporal_unit(&[obu(6, &[1; 10]), obu(6, &big), obu(4, &[2; 30])]);
        for max in [16usize, 100, 1200] {
            let mut p = Packetizer::new(Format::Av1, max, 0);
            let packets = packetize(&mut p, &tu).unwrap();
            assert!(packets.iter().all(|(b, _)| b.len() <= max));
            assert!(packets.iter().all(|(b, _)| b[0] & N == 0), "no sequence header: no N");
            assert_eq!(packets[0].0[0] & Z, 0);
            for pair in packets.windows(2) {
                assert_eq!(pair[0].0[0] & Y != 0, pair[1].0[0] & Z != 0, "Y on one packet, Z on the next");
            }
            let mut d = Depacketizer::new(Format::Av1, 1 << 20);
            let frames = receive(&mut d, 65_530, 90_000, &packets);
            assert_eq!(frames, vec![(tu.clone(), false)], "max {max}");
            assert_eq!(d.discarded(), 0);
        }
    }

    #[test]
    fn a_lost_packet_drops_its_temporal_unit_and_the_next_one_comes_through() {
        let tu = temporal_unit(&[obu(6, &[5; 3000])]);
        let mut p = Packetizer::new(Format::Av1, 1000, 0);
        let packets = packetize(&mut p, &tu).unwrap();
        assert!(packets.len() >= 4);
        let mut d = Depacketizer::new(Format::Av1, 1 << 20);
        let mut frames = Vec::new();
        for (i, (b, m)) in packets.iter().enumerate() {
            if i == 1 {
                continue;
            }
            frames.extend(crate::testing::push(&mut d, i as u16, 10, *m, b));
        }
        assert!(frames.is_empty());
        assert_eq!(d.discarded(), 1);
        let next = packets.len() as u16;
        let frames = receive(&mut d, next, 20, &packets);
        assert_eq!(frames, vec![(tu, false)]);
    }

    #[test]
    fn elements_with_w_set_are_read() {
        // W = 2: the first element has a length, the last takes the rest.
        let payload = [2 << W_SHIFT | N, 2, 6 << 3, 0xaa, 4 << 3, 0xbb, 0xcc];
        let mut d = Depacketizer::new(Format::Av1, 1 << 20);
        let frames = receive(&mut d, 1, 5, &[(payload.to_vec(), true)]);
        let want = temporal_unit(&[obu(6, &[0xaa]), obu(4, &[0xbb, 0xcc])]);
        assert_eq!(frames, vec![(want, true)]);
    }

    #[test]
    fn bad_input_is_refused_or_dropped() {
        let mut p = Packetizer::new(Format::Av1, 1200, 0);
        assert_eq!(p.begin(&[]), Err(Error::Empty));
        assert_eq!(p.begin(&TEMPORAL_DELIMITER), Err(Error::Empty), "nothing to send");
        assert!(matches!(p.begin(&[0x80]), Err(Error::InvalidFrame(_))), "forbidden bit");
        assert!(matches!(p.begin(&[6 << 3 | HAS_SIZE, 50, 1]), Err(Error::InvalidFrame(_))), "size past the end");
        let mut d = Depacketizer::new(Format::Av1, 100);
        for bad in [&[][..], &[Z], &[0, 5, 1], &[0, 0x80], &[0, 1, 0x80], &[Y, 3, 6 << 3, 1, 2]] {
            assert!(receive(&mut d, 1, 1, &[(bad.to_vec(), true)]).is_empty(), "{bad:?}");
        }
        // Longer than max_frame.
        let tu = temporal_unit(&[obu(6, &[1; 500])]);
        let packets = packetize(&mut Packetizer::new(Format::Av1, 200, 0), &tu).unwrap();
        assert!(receive(&mut d, 50, 9, &packets).is_empty());
    }
}
