//! H.264 (RFC 6184), packetization modes 0 and 1.
//!
//! Sending takes an access unit in Annex B form (H.264 Annex B: NAL units each
//! after a `00 00 01` or `00 00 00 01` start code) and sends its NAL units in
//! order (section 6.1):
//!
//! - mode 1 (non-interleaved, section 6.3): consecutive units that fit one
//!   payload together go in a single-time aggregation packet, STAP-A (section
//!   5.7.1), as many as fit, when at least two do; any other unit that fits
//!   goes alone as a single NAL unit packet (section 5.6); a longer one goes
//!   in FU-A fragments (section 5.8), its body split evenly;
//! - mode 0 (single NAL unit, section 6.2): single NAL unit packets only, so
//!   every unit must fit one payload.
//!
//! The marker bit is on the access unit's last packet (section 5.1).
//!
//! Receiving takes single NAL unit packets, STAP-A and FU-A (section 7.1) in
//! either mode, and hands out each access unit in Annex B form with 4-octet
//! start codes.

use crate::fragment::Split;
use crate::sequence::Order;
use crate::{Assembly, Error, FrameInfo, H264Mode, PacketInfo, Payload};

/// RFC 6184 section 5.2, table 1: the packet types this payload format adds.
const STAP_A: u8 = 24;
/// Fragmentation unit A.
const FU_A: u8 = 28;
/// The NAL unit type of a coded slice of an IDR picture (H.264 table 7-1).
const IDR: u8 = 5;
/// The start code written before each NAL unit of a reassembled access unit.
const START_CODE: [u8; 4] = [0, 0, 0, 1];
/// The largest NAL unit an aggregation unit can carry: its size field has
/// 16 bits (section 5.2).
const MAX_AGGREGATED: usize = 0xffff;

/// The NAL unit type, the low 5 bits of its header octet (section 5.3).
fn nal_type(header: u8) -> u8 {
    header & 0x1f
}

/// Whether a NAL unit with this header may be sent as it is or in FU-A
/// fragments: forbidden_zero_bit clear and a type of H.264 itself, 1 to 23
/// (section 5.2). Types 0 and 24 to 31 would be read as something else; in an
/// access unit handed to the packetizer they mean the input is not Annex B
/// (for example AVCC, where each unit is prefixed by its length).
fn is_sendable(header: u8) -> bool {
    header & 0x80 == 0 && matches!(nal_type(header), 1..=23)
}

/// One NAL unit of an access unit: `frame[start..end]`; the search for the
/// next one resumes at `resume`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Unit {
    start: usize,
    end: usize,
    resume: usize,
}

/// Where the first `00 00 01` in `b` starts.
fn find_start_code(b: &[u8]) -> Option<usize> {
    b.windows(3).position(|w| w == [0, 0, 1])
}

/// The first NAL unit at or after `pos`: it ends before the next start code,
/// without trailing zero octets (the first octet of a 4-octet start code, or
/// trailing_zero_8bits: a NAL unit never ends in a zero octet). Octets before
/// the first start code, such as an access unit without any, are a unit too.
/// Runs of zeros only (leading_zero_8bits) are skipped.
fn unit_at(frame: &[u8], mut pos: usize) -> Option<Unit> {
    while let Some(rest) = frame.get(pos..).filter(|r| !r.is_empty()) {
        let (len, skip) = match find_start_code(rest) {
            Some(at) => (at, at + 3),
            None => (rest.len(), rest.len()),
        };
        let resume = pos + skip;
        if let Some(last) = rest[..len].iter().rposition(|&b| b != 0) {
            return Some(Unit { start: pos, end: pos + last + 1, resume });
        }
        pos = resume;
    }
    None
}

/// The NAL units of an Annex B access unit.
pub(crate) fn nal_units(frame: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        let unit = unit_at(frame, pos)?;
        pos = unit.resume;
        frame.get(unit.start..unit.end)
    })
}

/// The FU indicator and FU header of one fragment of the NAL unit whose
/// header octet is `nal_header` (section 5.8): F and NRI from the unit, type
/// 28; then S, E, R = 0 and the unit's type.
fn fu_a_header(nal_header: u8, start: bool, end: bool) -> [u8; 2] {
    [(nal_header & 0xe0) | FU_A, (u8::from(start) << 7) | (u8::from(end) << 6) | nal_type(nal_header)]
}

/// Where the packets of a payload go: written, or only counted.
trait Sink {
    /// Puts `bytes` at `at`; false when they do not fit.
    fn put(&mut self, at: usize, bytes: &[u8]) -> bool;
}

/// Counts packets without writing them.
struct Count;

impl Sink for Count {
    fn put(&mut self, _: usize, _: &[u8]) -> bool {
        true
    }
}

impl Sink for [u8] {
    fn put(&mut self, at: usize, bytes: &[u8]) -> bool {
        match at.checked_add(bytes.len()).and_then(|end| self.get_mut(at..end)) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                true
            }
            None => false,
        }
    }
}

/// A NAL unit going out in FU-A fragments.
#[derive(Debug, Clone, Copy)]
struct Fragmenting {
    unit: Unit,
    /// The split of the unit's body, after its header octet.
    split: Split,
    /// The next fragment.
    index: usize,
}

/// The send state of one access unit: a cursor over its NAL units.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sender {
    mode: H264Mode,
    max: usize,
    /// Where the search for the next unit starts.
    pos: usize,
    /// The next unit, once found (so a unit looked at to decide on
    /// aggregation is not searched for again).
    peeked: Option<Unit>,
    fu: Option<Fragmenting>,
}

impl Sender {
    /// Checks an access unit and counts its packets.
    pub(crate) fn begin(frame: &[u8], max: usize, mode: H264Mode) -> Result<(Self, usize), Error> {
        let mut any = false;
        for unit in nal_units(frame) {
            any = true;
            if !unit.first().is_some_and(|&h| is_sendable(h)) {
                return Err(Error::InvalidFrame(
                    "not H.264 NAL units in Annex B form (forbidden bit set, or type 0 or 24 to 31)",
                ));
            }
            if mode == H264Mode::SingleNal && unit.len() > max {
                return Err(Error::UnitTooLong { len: unit.len(), max });
            }
        }
        if !any {
            return Err(Error::Empty);
        }
        let sender = Self { mode, max, pos: 0, peeked: None, fu: None };
        let mut counter = sender;
        let mut count = 0;
        while counter.packet(frame, &mut Count).is_some() {
            count += 1;
        }
        Ok((sender, count))
    }

    /// Writes the next packet into `out`.
    pub(crate) fn next(&mut self, frame: &[u8], out: &mut [u8]) -> Option<Payload> {
        // Written on a copy: a payload that does not fit `out` (only when
        // the caller passed other bytes than to `begin`) changes nothing.
        let mut state = *self;
        let payload = state.packet(frame, out)?;
        *self = state;
        Some(payload)
    }

    fn peek(&mut self, frame: &[u8]) -> Option<Unit> {
        if self.peeked.is_none() {
            self.peeked = unit_at(frame, self.pos);
        }
        self.peeked
    }

    fn advance(&mut self, unit: Unit) {
        self.pos = unit.resume;
        self.peeked = None;
    }

    /// The next packet: an FU-A fragment, a STAP-A, or a single NAL unit.
    /// `None` at the end of the access unit (or, only when the frame's bytes
    /// changed since `begin`, at a unit that cannot be sent).
    fn packet(&mut self, frame: &[u8], out: &mut (impl Sink + ?Sized)) -> Option<Payload> {
        if let Some(mut fu) = self.fu {
            let (offset, len) = fu.split.piece(fu.index);
            let header = *frame.get(fu.unit.start)?;
            let body = frame.get(fu.unit.start + 1..fu.unit.end)?;
            let piece = body.get(offset..offset.checked_add(len)?)?;
            let last = fu.index + 1 == fu.split.count();
            if !(out.put(0, &fu_a_header(header, fu.index == 0, last)) && out.put(2, piece)) {
                return None;
            }
            fu.index += 1;
            self.fu = if last { None } else { Some(fu) };
            let marker = last && self.peek(frame).is_none();
            return Some(Payload { len: 2 + len, marker });
        }
        let first = self.peek(frame)?;
        let unit = frame.get(first.start..first.end)?;
        let header = *unit.first()?;
        if !is_sendable(header) {
            return None;
        }
        if unit.len() > self.max {
            if self.mode == H264Mode::SingleNal {
                return None;
            }
            // Section 5.8: the body after the header octet, split evenly over
            // fragments of at most max - 2 octets. The unit is longer than
            // max, so there are at least two: S and E never share one.
            self.advance(first);
            let split = Split::new(unit.len() - 1, self.max - 2);
            self.fu = Some(Fragmenting { unit: first, split, index: 0 });
            return self.packet(frame, out);
        }
        self.advance(first);
        if self.mode == H264Mode::NonInterleaved {
            match self.aggregate(frame, unit, out) {
                Aggregate::Yes(len) => return Some(Payload { len, marker: self.peek(frame).is_none() }),
                Aggregate::Failed => return None,
                Aggregate::No => {}
            }
        }
        if !out.put(0, unit) {
            return None;
        }
        Some(Payload { len: unit.len(), marker: self.peek(frame).is_none() })
    }

    /// Puts `first` (already taken) and as many of the units after it as
    /// fit into a STAP-A (section 5.7.1), when at least one more fits.
    fn aggregate(&mut self, frame: &[u8], first: &[u8], out: &mut (impl Sink + ?Sized)) -> Aggregate {
        let max = self.max;
        let fits = |at: usize, unit: &[u8]| {
            unit.first().is_some_and(|&h| is_sendable(h)) && unit.len() <= MAX_AGGREGATED && at + 2 + unit.len() <= max
        };
        if !fits(1, first) {
            return Aggregate::No;
        }
        let Some(second) = self.peek(frame) else { return Aggregate::No };
        if !frame.get(second.start..second.end).is_some_and(|unit| fits(3 + first.len(), unit)) {
            return Aggregate::No;
        }
        if !put_aggregation_unit(out, 1, first) {
            return Aggregate::Failed;
        }
        // Section 5.7: F is the OR of the units' F bits (all clear here:
        // only sendable units are aggregated), NRI the highest of theirs.
        let (mut f, mut nri) = (first[0] & 0x80, first[0] & 0x60);
        let mut at = 3 + first.len();
        while let Some(next) = self.peek(frame) {
            let Some(unit) = frame.get(next.start..next.end).filter(|unit| fits(at, unit)) else { break };
            if !put_aggregation_unit(out, at, unit) {
                return Aggregate::Failed;
            }
            at += 2 + unit.len();
            f |= unit[0] & 0x80;
            nri = nri.max(unit[0] & 0x60);
            self.advance(next);
        }
        if out.put(0, &[f | nri | STAP_A]) { Aggregate::Yes(at) } else { Aggregate::Failed }
    }
}

/// What [`Sender::aggregate`] did.
enum Aggregate {
    /// Fewer than two units fit: nothing written.
    No,
    /// A STAP-A of this length.
    Yes(usize),
    /// `out` was too short.
    Failed,
}

/// A single-time aggregation unit (section 5.7.1, figure 6): the unit's size
/// in 16 bits, then the unit with its header octet.
fn put_aggregation_unit(out: &mut (impl Sink + ?Sized), at: usize, unit: &[u8]) -> bool {
    let Ok(size) = u16::try_from(unit.len()) else { return false };
    out.put(at, &size.to_be_bytes()) && out.put(at + 2, unit)
}

/// How a received packet's NAL unit type is handled (section 5.4, table 3,
/// non-interleaved mode).
enum Received {
    /// 1 to 23: a single NAL unit packet.
    Single,
    /// 24.
    StapA,
    /// 28.
    FuA,
    /// 0, 30, 31: reserved, "MUST be ignored by a receiver".
    Reserved,
    /// 25, 26, 27, 29: STAP-B, MTAP16, MTAP24, FU-B, interleaved mode only.
    Interleaved,
}

fn received(nal_type: u8) -> Received {
    match nal_type {
        1..=23 => Received::Single,
        STAP_A => Received::StapA,
        FU_A => Received::FuA,
        25..=27 | 29 => Received::Interleaved,
        _ => Received::Reserved,
    }
}

/// Reassembles access units from packets in arrival order.
#[derive(Debug, Default)]
pub(crate) struct Receiver {
    /// The timestamp of the access unit being built.
    timestamp: Option<u32>,
    /// Inside a fragmented NAL unit (between the FU-A with S and the one
    /// with E).
    in_fu: bool,
    /// The type of that unit.
    fu_type: u8,
    /// The access unit holds a slice of an IDR picture.
    key: bool,
    /// The access unit lost a packet or had a malformed one.
    broken: bool,
}

impl Receiver {
    /// Takes one packet. An access unit comes out when the packet with its
    /// marker bit completes it, or, complete and in sequence, when the next
    /// packet carries a new timestamp (section 5.1: receivers must not rely
    /// on the marker). Every access unit that got a packet and does not
    /// come out whole is counted once in `asm.discarded`.
    pub(crate) fn push(
        &mut self,
        order: Order,
        packet: PacketInfo,
        payload: &[u8],
        asm: &mut Assembly,
        frame: &mut impl FnMut(FrameInfo, &mut Vec<u8>),
    ) {
        // Section 7: duplicated and outdated packets are removed.
        if !matches!(order, Order::Next | Order::Gap) {
            return;
        }
        let follows = order == Order::Next;
        if let Some(t) = self.timestamp.filter(|t| *t != packet.timestamp) {
            if follows && self.complete(asm) {
                self.deliver(t, asm, frame);
            } else {
                self.drop_unit(asm);
            }
        }
        if self.timestamp.is_none() {
            asm.buf.clear();
            *self = Self { timestamp: Some(packet.timestamp), ..Self::default() };
        }
        // A gap before an access unit's first packet drops it too: its
        // first units may have been lost with no way to tell.
        if !follows || (!self.broken && self.take(payload, asm).is_none()) {
            self.broken = true;
            asm.buf.clear();
        }
        if !packet.marker {
            return;
        }
        if self.complete(asm) {
            self.deliver(packet.timestamp, asm, frame);
        } else {
            self.drop_unit(asm);
        }
    }

    /// The access unit being built is whole: nothing lost or malformed, no
    /// fragment left open, something in it.
    fn complete(&self, asm: &Assembly) -> bool {
        !self.broken && !self.in_fu && !asm.buf.is_empty()
    }

    fn deliver(&mut self, timestamp: u32, asm: &mut Assembly, frame: &mut impl FnMut(FrameInfo, &mut Vec<u8>)) {
        asm.deliver(FrameInfo { timestamp, key_frame: self.key }, frame);
        *self = Self::default();
    }

    fn drop_unit(&mut self, asm: &mut Assembly) {
        if self.timestamp.is_some() {
            asm.discard();
        }
        asm.buf.clear();
        *self = Self::default();
    }

    /// Appends the NAL units of one payload; `None` when it is malformed:
    /// the forbidden bit set, a packet type of the interleaved mode, an
    /// aggregation or fragmentation unit inside an aggregate or fragment
    /// (sections 5.7 and 5.8: no nesting), an empty or truncated aggregate,
    /// a fragment out of place, or an access unit growing past the limit.
    fn take(&mut self, payload: &[u8], asm: &mut Assembly) -> Option<()> {
        let first = *payload.first()?;
        if first & 0x80 != 0 {
            return None; // forbidden_zero_bit (section 5.3)
        }
        match received(nal_type(first)) {
            Received::Single => {
                if self.in_fu {
                    return None; // section 5.8: fragments are consecutive
                }
                self.nal(payload, &[], asm)?;
            }
            Received::StapA => {
                if self.in_fu {
                    return None;
                }
                let mut rest = &payload[1..];
                let mut units = 0;
                while !rest.is_empty() {
                    let size = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
                    let unit = rest.get(2..2 + size)?;
                    let header = *unit.first()?; // a unit has at least its header
                    if header & 0x80 != 0 {
                        return None;
                    }
                    match received(nal_type(header)) {
                        Received::Single => self.nal(unit, &[], asm)?,
                        Received::Reserved => {}
                        _ => return None,
                    }
                    units += 1;
                    rest = &rest[2 + size..];
                }
                if units == 0 {
                    return None; // section 5.7.1: at least one aggregation unit
                }
            }
            Received::FuA => {
                let fu = *payload.get(1)?;
                let (start, end, unit_type) = (fu & 0x80 != 0, fu & 0x40 != 0, nal_type(fu));
                // Section 5.8: S and E never both set; a start only outside
                // a fragmented unit, the rest only inside one, of its type.
                if start == self.in_fu || (start && end) || (!start && unit_type != self.fu_type) {
                    return None;
                }
                let keep = match received(unit_type) {
                    Received::Single => true,
                    Received::Reserved => false,
                    _ => return None, // no nested aggregates or fragments
                };
                let body = &payload[2..];
                if keep {
                    if start {
                        self.nal(&[(first & 0xe0) | unit_type], body, asm)?;
                    } else if !asm.append(&[body]) {
                        return None;
                    }
                }
                self.in_fu = !end;
                self.fu_type = unit_type;
            }
            Received::Reserved => {
                if self.in_fu {
                    return None;
                }
            }
            Received::Interleaved => return None,
        }
        Some(())
    }

    /// Appends a start code and a NAL unit (`unit` then `more`).
    fn nal(&mut self, unit: &[u8], more: &[u8], asm: &mut Assembly) -> Option<()> {
        if unit.first().is_some_and(|&h| nal_type(h) == IDR) {
            self.key = true;
        }
        asm.append(&[&START_CODE, unit, more]).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sendable_nal_headers() {
        assert!(is_sendable(0x65) && is_sendable(0x67) && is_sendable(0x01) && is_sendable(0x17));
        for h in [0x00, 0x7c, 0x78, 0xe5, 0x18, 0x1f, 0x80 | 0x41] {
            assert!(!is_sendable(h), "{h:#x}");
        }
    }

    #[test]
    fn nal_units_split_at_both_start_codes() {
        let frame = [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5, 6];
        let units: Vec<&[u8]> = nal_units(&frame).collect();
        assert_eq!(units, vec![&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 4, 5, 6]]);
        assert_eq!(nal_units(&[0x65, 9, 9]).collect::<Vec<_>>(), vec![&[0x65, 9, 9][..]]);
        assert_eq!(nal_units(&[0, 0, 1, 0, 0, 1]).count(), 0);
        // leading_zero_8bits and trailing_zero_8bits are not part of a unit.
        let padded = [0, 0, 0, 0, 1, 0x67, 1, 0, 0, 0, 0, 1, 0x65, 2, 0, 0];
        assert_eq!(nal_units(&padded).collect::<Vec<_>>(), vec![&[0x67, 1][..], &[0x65, 2]]);
        assert_eq!(nal_units(&[]).count(), 0);
        assert_eq!(nal_units(&[0, 0]).count(), 0);
        // Bytes before the first start code are a unit; emulation
        // prevention (00 00 03) is not a start code.
        let frame = [0x09, 0x10, 0, 0, 1, 0x41, 0, 0, 3, 1, 7];
        assert_eq!(nal_units(&frame).collect::<Vec<_>>(), vec![&[0x09, 0x10][..], &[0x41, 0, 0, 3, 1, 7]]);
        // A start code at the very end.
        assert_eq!(nal_units(&[0, 0, 1, 0x41, 5, 0, 0, 1]).collect::<Vec<_>>(), vec![&[0x41, 5][..]]);
    }

    /// RFC 6184 section 5.8, figure 14: FU indicator (F, NRI of the unit,
    /// type 28) and FU header (S, E, R = 0, the unit's type).
    #[test]
    fn fu_a_headers() {
        assert_eq!(fu_a_header(0x65, true, false), [0x7c, 0x85]);
        assert_eq!(fu_a_header(0x65, false, false), [0x7c, 0x05]);
        assert_eq!(fu_a_header(0x65, false, true), [0x7c, 0x45]);
        assert_eq!(fu_a_header(0x41, true, false), [0x5c, 0x81]);
    }

    use crate::testing::{packetize, push as h, receive};
    use crate::{Depacketizer, Format, H264Mode, Packetizer};

    const MODE0: Format = Format::H264 { mode: H264Mode::SingleNal };
    const MODE1: Format = Format::H264 { mode: H264Mode::NonInterleaved };

    /// The same units, each after a 4-octet start code.
    fn annex_b(units: &[&[u8]]) -> Vec<u8> {
        units.iter().flat_map(|u| START_CODE.iter().chain(u.iter())).copied().collect()
    }

    fn unit(header: u8, len: usize) -> Vec<u8> {
        let mut u = vec![header];
        u.extend((1..len).map(|i| (i % 251) as u8 + 1));
        u
    }

    /// RFC 6184 section 5.7.1 (figure 7): SPS and PPS in one STAP-A, each
    /// after its 16-bit size; section 5.7: F is the OR, NRI the highest of
    /// the units'. Section 5.8 (figure 14): the IDR slice in FU-A fragments,
    /// S on the first, E on the last. Section 5.1: the marker on the last.
    #[test]
    fn stap_a_then_fu_a() {
        let (sei, pps, idr) = (unit(0x06, 5), unit(0x48, 4), unit(0x65, 3000));
        let frame = annex_b(&[&sei, &pps, &idr]);
        let mut p = Packetizer::new(MODE1, 1200, 0);
        let packets = packetize(&mut p, &frame).unwrap();
        let mut stap = vec![0x40 | STAP_A, 0, 5];
        stap.extend(&sei);
        stap.extend([0, 4]);
        stap.extend(&pps);
        assert_eq!(packets[0], (stap, false));
        // The body after the header octet, 2999 octets, in 3 even fragments.
        assert_eq!(packets.len(), 4);
        assert_eq!(packets[1].0[..2], [0x7c, 0x85]);
        assert_eq!(packets[2].0[..2], [0x7c, 0x05]);
        assert_eq!(packets[3].0[..2], [0x7c, 0x45]);
        assert_eq!(packets[1..].iter().map(|(p, _)| p.len() - 2).collect::<Vec<_>>(), [1000, 1000, 999]);
        assert_eq!(packets[1..].iter().map(|(_, m)| *m).collect::<Vec<_>>(), [false, false, true]);
        let mut d = Depacketizer::new(MODE1, 1 << 20);
        assert_eq!(receive(&mut d, 7, 90, &packets), vec![(annex_b(&[&sei, &pps, &idr]), true)]);
    }

    /// Aggregation is greedy and needs two units that fit together; the
    /// 16-bit size field of an aggregation unit limits the units in it.
    #[test]
    fn aggregation_rules() {
        let mut p = Packetizer::new(MODE1, 16, 0);
        let (a, b, c) = (unit(0x41, 4), unit(0x41, 4), unit(0x41, 4));
        // 1 + 6 + 6 = 13 fits 16; a third unit would make 19.
        let packets = packetize(&mut p, &annex_b(&[&a, &b, &c])).unwrap();
        assert_eq!(packets, vec![(vec![0x58, 0, 4, 0x41, 2, 3, 4, 0, 4, 0x41, 2, 3, 4], false), (c.clone(), true)]);
        // A unit that fits only alone goes alone; one of exactly 16 too.
        let (big, exact) = (unit(0x41, 14), unit(0x65, 16));
        let packets = packetize(&mut p, &annex_b(&[&a, &big, &exact, &c])).unwrap();
        assert_eq!(packets, vec![(a.clone(), false), (big.clone(), false), (exact, false), (c.clone(), true)]);
        // Two-octet units: three to a STAP-A (1 + 3 * 4 = 13); what is left
        // goes as a pair, or alone.
        let tiny = unit(0x01, 2);
        let packets = packetize(&mut p, &annex_b(&[&tiny[..]; 8])).unwrap();
        assert_eq!(packets.iter().map(|(p, _)| p.len()).collect::<Vec<_>>(), [13, 13, 9]);
        assert!(packets.iter().all(|(p, _)| p[0] == STAP_A), "NRI 0");
        let packets = packetize(&mut p, &annex_b(&[&tiny[..]; 7])).unwrap();
        assert_eq!(packets.iter().map(|(p, _)| p.len()).collect::<Vec<_>>(), [13, 13, 2]);
        assert_eq!(packets[2], (tiny, true));
        // Before a fragmented unit and after it.
        let packets = packetize(&mut p, &annex_b(&[&a, &unit(0x65, 40), &b, &c])).unwrap();
        let types: Vec<u8> = packets.iter().map(|(p, _)| p[0] & 0x1f).collect();
        assert_eq!(types, [1, FU_A, FU_A, FU_A, STAP_A]);
        // A unit over 65535 octets is never aggregated, even with room.
        let mut p = Packetizer::new(MODE1, 70000, 0);
        let huge = unit(0x65, 65536);
        let packets = packetize(&mut p, &annex_b(&[&huge, &a])).unwrap();
        assert_eq!(packets, vec![(huge.clone(), false), (a.clone(), true)]);
        let packets = packetize(&mut p, &annex_b(&[&a, &unit(0x65, 65535)])).unwrap();
        assert_eq!(packets.len(), 1, "65535 octets still fit the size field");
    }

    /// RFC 6184 section 6.2: single NAL unit packets only in mode 0, so a
    /// unit longer than a payload is refused before anything is sent.
    #[test]
    fn mode_0_sends_single_nal_units_only() {
        let (sps, pps, idr) = (unit(0x67, 10), unit(0x68, 4), unit(0x65, 1200));
        let frame = annex_b(&[&sps, &pps, &idr]);
        let mut p = Packetizer::new(MODE0, 1200, 0);
        let packets = packetize(&mut p, &frame).unwrap();
        assert_eq!(packets, vec![(sps.clone(), false), (pps.clone(), false), (idr, true)]);
        let long = annex_b(&[&sps, &unit(0x65, 1201)]);
        assert_eq!(p.begin(&long), Err(Error::UnitTooLong { len: 1201, max: 1200 }));
        let mut out = [0; 1200];
        assert_eq!(p.next(&long, &mut out), None, "nothing begun");
    }

    #[test]
    fn refused_access_units() {
        for mode in [MODE0, MODE1] {
            let mut p = Packetizer::new(mode, 1200, 0);
            for bad in [
                &[0, 0, 0, 5, 0x65, 1, 2, 3, 4][..],   // AVCC: a 4-octet length prefix
                &[0, 0, 1, 0xe5, 1],                   // forbidden bit
                &[0, 0, 1, 0x67, 1, 0, 0, 1, 0x78, 1], // STAP-A type
                &[0, 0, 1, 0x7c, 0x85, 1],             // FU-A type
                &[0, 0, 1, 0x1f, 1],                   // reserved type 31
                &[0, 0, 1, 0x00, 0x41],                // a zero before the header: type 0
            ] {
                assert!(matches!(p.begin(bad), Err(Error::InvalidFrame(_))), "{bad:?}");
            }
            for empty in [&[][..], &[0, 0, 0, 1], &[0, 0, 0, 0], &[0, 0, 1, 0, 0, 1]] {
                assert_eq!(p.begin(empty), Err(Error::Empty), "{empty:?}");
            }
        }
    }

    #[test]
    fn stap_a_single_and_fu_a_received() {
        let mut d = Depacketizer::new(MODE1, 1 << 20);
        // STAP-A with SPS and PPS, then an IDR slice in three FU-A fragments.
        let stap = [STAP_A | 0x60, 0, 3, 0x67, 1, 2, 0, 2, 0x68, 3];
        assert!(h(&mut d, 10, 900, false, &stap).is_empty());
        assert!(h(&mut d, 11, 900, false, &[0x7c, 0x80 | 5, 7, 7]).is_empty());
        assert!(h(&mut d, 12, 900, false, &[0x7c, 5, 8]).is_empty());
        let want = annex_b(&[&[0x67, 1, 2], &[0x68, 3], &[0x65, 7, 7, 8, 9]]);
        assert_eq!(h(&mut d, 13, 900, true, &[0x7c, 0x40 | 5, 9]), vec![(want, true)]);
        // A receiver in mode 0 takes them too (senders should not send them
        // there, section 6.2, but they are unambiguous).
        let mut d0 = Depacketizer::new(MODE0, 1 << 20);
        assert_eq!(h(&mut d0, 1, 9, true, &stap), vec![(annex_b(&[&[0x67, 1, 2], &[0x68, 3]]), false)]);
        // A single non-IDR slice is not a key frame.
        assert_eq!(h(&mut d, 14, 1800, true, &[0x41, 1]), vec![(vec![0, 0, 0, 1, 0x41, 1], false)]);
        // Empty FU-A payloads are allowed (section 5.8).
        assert!(h(&mut d, 15, 2700, false, &[0x5c, 0x81]).is_empty());
        assert!(h(&mut d, 16, 2700, false, &[0x5c, 0x01, 4]).is_empty());
        assert_eq!(h(&mut d, 17, 2700, true, &[0x5c, 0x41]), vec![(vec![0, 0, 0, 1, 0x41, 4], false)]);
        assert_eq!(d.discarded(), 0);
        // Without markers, a unit comes out when the next timestamp starts
        // in sequence (RFC 6184 section 5.1).
        assert!(h(&mut d, 18, 3600, false, &[0x41, 2]).is_empty());
        assert_eq!(h(&mut d, 19, 4500, false, &[0x41, 3]), vec![(vec![0, 0, 0, 1, 0x41, 2], false)]);
        assert_eq!(
            h(&mut d, 20, 5400, true, &[0x41, 4]),
            vec![(vec![0, 0, 0, 1, 0x41, 3], false), (vec![0, 0, 0, 1, 0x41, 4], false)]
        );
        // ... but not across a gap.
        assert!(h(&mut d, 21, 6300, false, &[0x41, 5]).is_empty());
        assert!(h(&mut d, 23, 7200, true, &[0x41, 6]).is_empty());
        assert_eq!(d.discarded(), 2);
    }

    #[test]
    fn loss_and_malformed_packets_drop_the_unit() {
        let frame = annex_b(&[&[0x65; 3000], &[0x41, 2]]);
        let mut p = Packetizer::new(MODE1, 1000, 0);
        let packets = packetize(&mut p, &frame).unwrap();
        assert_eq!(packets.len(), 5);
        let mut d = Depacketizer::new(MODE1, 1 << 20);
        // The third packet is lost: the unit is dropped.
        for (i, (pkt, m)) in packets.iter().enumerate().filter(|(i, _)| *i != 2) {
            assert!(h(&mut d, i as u16, 1, *m, pkt).is_empty());
        }
        assert_eq!(d.discarded(), 1);
        // The next unit follows on in sequence and comes out whole.
        assert_eq!(receive(&mut d, 5, 2, &packets), vec![(frame.clone(), true)]);
        // The marker lost: the next timestamp drops the unfinished unit.
        assert!(h(&mut d, 10, 3, false, &packets[0].0).is_empty());
        assert_eq!(h(&mut d, 11, 4, true, &[0x41, 1]).len(), 1);
        assert_eq!(d.discarded(), 2);
        // A gap before a unit's first packet (its start may be lost) drops it.
        assert!(h(&mut d, 13, 5, true, &[0x41, 1]).is_empty());
        assert_eq!(d.discarded(), 3);
        let bad: [&[u8]; 17] = [
            &[],                      // nothing
            &[0x80 | 1, 1],           // forbidden bit
            &[STAP_A, 0, 5, 1],       // STAP-A unit runs past the payload
            &[STAP_A, 0, 0],          // empty STAP-A unit
            &[STAP_A, 0, 1, 0x41, 0], // a truncated size field
            &[STAP_A],                // STAP-A with no unit
            &[STAP_A, 0, 2, 0x7c, 1], // an FU inside a STAP-A
            &[STAP_A, 0, 2, 0x78, 1], // a STAP-A inside a STAP-A
            &[STAP_A, 0, 2, 0xc1, 1], // forbidden bit inside a STAP-A
            &[FU_A],                  // FU-A without its header
            &[FU_A, 0xc0 | 5, 1],     // S and E both set
            &[FU_A, 5, 1],            // middle fragment with no start
            &[FU_A, 0x40 | 5, 1],     // end fragment with no start
            &[FU_A, 0x80 | 24, 1],    // an FU of type 24
            &[FU_A, 0x80 | 28, 1],    // an FU of an FU
            &[25, 0, 1, 0, 1, 1],     // STAP-B (interleaved mode)
            &[29, 0x80 | 5, 0, 1, 1], // FU-B (interleaved mode)
        ];
        for (i, pkt) in bad.into_iter().enumerate() {
            let before = d.discarded();
            assert!(h(&mut d, 14 + i as u16, 6 + i as u32, true, pkt).is_empty(), "{pkt:?}");
            assert_eq!(d.discarded(), before + 1, "{pkt:?}");
        }
        // Fragments out of place: a new start inside a fragmented unit, a
        // single NAL unit or a STAP-A between fragments, a type change.
        for (i, second) in
            [&[0x7c, 0x85, 1][..], &[0x41, 1], &[STAP_A, 0, 1, 0x41], &[0x7c, 0x41, 1]].iter().enumerate()
        {
            let (seq, ts) = (100 + 2 * i as u16, 100 + i as u32);
            assert!(h(&mut d, seq, ts, false, &[0x7c, 0x85, 1]).is_empty());
            let before = d.discarded();
            assert!(h(&mut d, seq + 1, ts, true, second).is_empty(), "{second:?}");
            assert_eq!(d.discarded(), before + 1, "{second:?}");
        }
        // The marker inside a fragmented unit: incomplete.
        assert!(h(&mut d, 200, 200, true, &[0x7c, 0x85, 1]).is_empty());
        assert_eq!(d.discarded(), 3 + 17 + 4 + 1);
    }

    /// RFC 6184 section 5.4: NAL unit types 0, 30 and 31 "MUST be ignored by
    /// a receiver", as packets, as aggregation units and as fragmented
    /// units.
    #[test]
    fn reserved_types_are_ignored() {
        let mut d = Depacketizer::new(MODE1, 1 << 20);
        assert!(h(&mut d, 1, 10, false, &[0x41, 1]).is_empty());
        assert!(h(&mut d, 2, 10, false, &[0x00, 9, 9]).is_empty());
        assert!(h(&mut d, 3, 10, false, &[0x1e, 9]).is_empty());
        assert!(h(&mut d, 4, 10, false, &[STAP_A, 0, 2, 0x1f, 9, 0, 2, 0x41, 2]).is_empty());
        assert!(h(&mut d, 5, 10, false, &[0x7c, 0x80, 9]).is_empty());
        assert!(h(&mut d, 6, 10, false, &[0x7c, 0x40, 9]).is_empty());
        assert_eq!(h(&mut d, 7, 10, true, &[0x65, 3]), vec![(annex_b(&[&[0x41, 1], &[0x41, 2], &[0x65, 3]]), true)]);
        assert_eq!(d.discarded(), 0);
        // An access unit of nothing else has nothing to hand out.
        assert!(h(&mut d, 8, 20, true, &[0x00, 1]).is_empty());
        assert_eq!(d.discarded(), 1);
    }

    /// RFC 6184 section 7: duplicated and outdated packets are removed.
    #[test]
    fn duplicates_and_late_packets_are_ignored() {
        let mut d = Depacketizer::new(MODE1, 1 << 20);
        assert!(h(&mut d, 1, 10, false, &[0x7c, 0x85, 1]).is_empty());
        assert!(h(&mut d, 1, 10, false, &[0x7c, 0x85, 1]).is_empty());
        assert!(h(&mut d, 2, 10, false, &[0x7c, 0x05, 2]).is_empty());
        assert!(h(&mut d, 1, 10, false, &[0x7c, 0x85, 1]).is_empty());
        assert_eq!(h(&mut d, 3, 10, true, &[0x7c, 0x45, 3]), vec![(vec![0, 0, 0, 1, 0x65, 1, 2, 3], true)]);
        // Reordered: the gap drops the unit, the late packet is ignored and
        // does not spoil the next unit.
        assert!(h(&mut d, 5, 20, true, &[0x41, 5]).is_empty());
        assert!(h(&mut d, 4, 20, false, &[0x41, 4]).is_empty());
        assert_eq!(h(&mut d, 6, 30, true, &[0x41, 6]), vec![(vec![0, 0, 0, 1, 0x41, 6], false)]);
        assert_eq!(d.discarded(), 1);
    }

    #[test]
    fn max_frame() {
        let mut d = Depacketizer::new(MODE1, 12);
        assert_eq!(h(&mut d, 1, 10, true, &[0x41; 8]), vec![(annex_b(&[&[0x41; 8]]), false)], "exactly 12");
        assert!(h(&mut d, 2, 20, true, &[0x41; 9]).is_empty());
        assert!(h(&mut d, 3, 30, false, &[0x7c, 0x81, 1, 2, 3, 4, 5, 6]).is_empty());
        assert!(h(&mut d, 4, 30, true, &[0x7c, 0x41, 7, 8]).is_empty());
        assert!(h(&mut d, 5, 40, true, &[STAP_A, 0, 3, 0x41, 1, 1, 0, 3, 0x41, 2, 2]).is_empty());
        assert_eq!(d.discarded(), 3);
    }
}
