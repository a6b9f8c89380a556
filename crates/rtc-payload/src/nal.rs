//! What H.264 (RFC 6184) and H.265 (RFC 7798) share: access units in
//! Annex B form split into NAL units, sent as single NAL unit packets,
//! aggregation packets (STAP-A; AP) of consecutive units that fit one
//! payload together, and fragmentation units (FU-A; FU) of a unit longer
//! than a payload, its body split evenly; received back into Annex B
//! access units with 4-octet start codes. A [`Syntax`] says how each
//! format writes its headers.

use crate::fragment::Split;
use crate::sequence::Order;
use crate::{Assembly, Error, FrameInfo, PacketInfo, Payload};

/// The start code written before each NAL unit of a reassembled access unit.
pub(crate) const START_CODE: [u8; 4] = [0, 0, 0, 1];
/// The largest NAL unit an aggregation unit can carry: its size field has
/// 16 bits (RFC 6184 section 5.7.1, RFC 7798 section 4.4.2).
const MAX_AGGREGATED: usize = 0xffff;

/// What a received packet (or an aggregated unit) is, by its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A NAL unit of the codec itself, sent as it is.
    Single,
    /// An aggregation packet (STAP-A; AP).
    Aggregate,
    /// A fragmentation unit (FU-A; FU).
    Fragment,
    /// A type receivers ignore.
    Ignored,
    /// A type this implementation does not take (H.264's interleaved mode,
    /// H.265's PACI): the access unit is dropped.
    Unsupported,
}

/// How one format writes its NAL unit, aggregation and fragmentation
/// headers.
pub(crate) trait Syntax: Copy + std::fmt::Debug {
    /// Octets of a NAL unit header (H.264: 1, H.265: 2).
    const HEADER: usize;
    /// Octets before a fragment's piece of the unit body (H.264: the FU
    /// indicator and FU header, 2; H.265: the payload header and FU
    /// header, 3).
    const FU_HEADER: usize;
    /// What `header` (at least [`Syntax::HEADER`] octets) makes a packet
    /// or an aggregated unit.
    fn kind(header: &[u8]) -> Kind;
    /// The NAL unit type in `header`.
    fn nal_type(header: &[u8]) -> u8;
    /// Whether a unit with this header may go out as it is or in
    /// fragments: the forbidden bit clear and a type of the codec itself.
    /// Anything else in an access unit means the input is not Annex B
    /// (length-prefixed AVCC or HVCC data, say).
    fn sendable(header: &[u8]) -> bool;
    /// The headers of one fragment of the unit with `header`, in the first
    /// [`Syntax::FU_HEADER`] octets.
    fn fragment_header(header: &[u8], start: bool, end: bool) -> [u8; 3];
    /// A fragment's start and end bits and the header of the unit it is a
    /// piece of (first [`Syntax::HEADER`] octets), from its headers.
    fn fragment_parts(payload: &[u8]) -> Option<(bool, bool, [u8; 2])>;
    /// The aggregation packet header for units whose headers were folded
    /// into `acc` by [`Syntax::fold`] (first [`Syntax::HEADER`] octets).
    fn aggregate_header(acc: [u8; 2]) -> [u8; 2];
    /// Folds one more aggregated unit's header into `acc` (the first
    /// unit's header to start with).
    fn fold(acc: [u8; 2], header: &[u8]) -> [u8; 2];
    /// Whether a unit with this header makes its access unit a key frame.
    fn key(header: &[u8]) -> bool;
    /// Why an access unit with a unit that is not [`Syntax::sendable`] is
    /// refused.
    const NOT_ANNEX_B: &'static str;
}

/// A header's first two octets (the second 0 for a one-octet header).
fn header_of(unit: &[u8]) -> [u8; 2] {
    [unit.first().copied().unwrap_or(0), unit.get(1).copied().unwrap_or(0)]
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

/// A NAL unit going out in fragments.
#[derive(Debug, Clone, Copy)]
struct Fragmenting {
    unit: Unit,
    /// The split of the unit's body, after its header.
    split: Split,
    /// The next fragment.
    index: usize,
}

/// The send state of one access unit: a cursor over its NAL units.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sender<S> {
    /// Aggregation packets are sent (H.264 mode 0 has none).
    aggregate: bool,
    /// Fragmentation units are sent (H.264 mode 0 has none).
    fragment: bool,
    max: usize,
    /// Where the search for the next unit starts.
    pos: usize,
    /// The next unit, once found (so a unit looked at to decide on
    /// aggregation is not searched for again).
    peeked: Option<Unit>,
    fu: Option<Fragmenting>,
    syntax: std::marker::PhantomData<S>,
}

impl<S: Syntax> Sender<S> {
    /// Checks an access unit and counts its packets. Without `fragment`,
    /// every unit must fit one payload.
    pub(crate) fn begin(frame: &[u8], max: usize, aggregate: bool, fragment: bool) -> Result<(Self, usize), Error> {
        let mut any = false;
        for unit in nal_units(frame) {
            any = true;
            if unit.len() < S::HEADER || !S::sendable(unit) {
                return Err(Error::InvalidFrame(S::NOT_ANNEX_B));
            }
            if !fragment && unit.len() > max {
                return Err(Error::UnitTooLong { len: unit.len(), max });
            }
        }
        if !any {
            return Err(Error::Empty);
        }
        let sender =
            Self { aggregate, fragment, max, pos: 0, peeked: None, fu: None, syntax: std::marker::PhantomData };
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

    /// The next packet: a fragment, an aggregation packet, or a single NAL
    /// unit. `None` at the end of the access unit (or, only when the
    /// frame's bytes changed since `begin`, at a unit that cannot be sent).
    fn packet(&mut self, frame: &[u8], out: &mut (impl Sink + ?Sized)) -> Option<Payload> {
        if let Some(mut fu) = self.fu {
            let (offset, len) = fu.split.piece(fu.index);
            let unit = frame.get(fu.unit.start..fu.unit.end)?;
            let piece = unit.get(S::HEADER..)?.get(offset..offset.checked_add(len)?)?;
            let last = fu.index + 1 == fu.split.count();
            let headers = S::fragment_header(unit, fu.index == 0, last);
            if !(out.put(0, &headers[..S::FU_HEADER]) && out.put(S::FU_HEADER, piece)) {
                return None;
            }
            fu.index += 1;
            self.fu = if last { None } else { Some(fu) };
            let marker = last && self.peek(frame).is_none();
            return Some(Payload { len: S::FU_HEADER + len, marker });
        }
        let first = self.peek(frame)?;
        let unit = frame.get(first.start..first.end)?;
        if unit.len() < S::HEADER || !S::sendable(unit) {
            return None;
        }
        if unit.len() > self.max {
            if !self.fragment {
                return None;
            }
            // The body after the header, split evenly over fragments of at
            // most max - FU_HEADER octets. The unit is longer than max, so
            // there are at least two: start and end never share one.
            self.advance(first);
            let split = Split::new(unit.len() - S::HEADER, self.max - S::FU_HEADER);
            self.fu = Some(Fragmenting { unit: first, split, index: 0 });
            return self.packet(frame, out);
        }
        self.advance(first);
        if self.aggregate {
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
    /// fit into an aggregation packet, when at least one more fits.
    fn aggregate(&mut self, frame: &[u8], first: &[u8], out: &mut (impl Sink + ?Sized)) -> Aggregate {
        let max = self.max;
        let fits = |at: usize, unit: &[u8]| {
            unit.len() >= S::HEADER && S::sendable(unit) && unit.len() <= MAX_AGGREGATED && at + 2 + unit.len() <= max
        };
        if !fits(S::HEADER, first) {
            return Aggregate::No;
        }
        let Some(second) = self.peek(frame) else { return Aggregate::No };
        let at_second = S::HEADER + 2 + first.len();
        if !frame.get(second.start..second.end).is_some_and(|unit| fits(at_second, unit)) {
            return Aggregate::No;
        }
        if !put_aggregation_unit(out, S::HEADER, first) {
            return Aggregate::Failed;
        }
        let mut acc = header_of(first);
        let mut at = at_second;
        while let Some(next) = self.peek(frame) {
            let Some(unit) = frame.get(next.start..next.end).filter(|unit| fits(at, unit)) else { break };
            if !put_aggregation_unit(out, at, unit) {
                return Aggregate::Failed;
            }
            at += 2 + unit.len();
            acc = S::fold(acc, unit);
            self.advance(next);
        }
        if out.put(0, &S::aggregate_header(acc)[..S::HEADER]) { Aggregate::Yes(at) } else { Aggregate::Failed }
    }
}

/// What [`Sender::aggregate`] did.
enum Aggregate {
    /// Fewer than two units fit: nothing written.
    No,
    /// An aggregation packet of this length.
    Yes(usize),
    /// `out` was too short.
    Failed,
}

/// An aggregation unit (RFC 6184 figure 6, RFC 7798 figure 8, without DON):
/// the unit's size in 16 bits, then the unit with its header.
fn put_aggregation_unit(out: &mut (impl Sink + ?Sized), at: usize, unit: &[u8]) -> bool {
    let Ok(size) = u16::try_from(unit.len()) else { return false };
    out.put(at, &size.to_be_bytes()) && out.put(at + 2, unit)
}

/// Reassembles access units from packets in arrival order.
#[derive(Debug)]
pub(crate) struct Receiver<S> {
    /// The timestamp of the access unit being built.
    timestamp: Option<u32>,
    /// Inside a fragmented NAL unit (between the fragment with S and the
    /// one with E).
    in_fu: bool,
    /// The type of that unit.
    fu_type: u8,
    /// The access unit holds a key picture's slice.
    key: bool,
    /// The access unit lost a packet or had a malformed one.
    broken: bool,
    syntax: std::marker::PhantomData<S>,
}

impl<S> Default for Receiver<S> {
    fn default() -> Self {
        Self { timestamp: None, in_fu: false, fu_type: 0, key: false, broken: false, syntax: std::marker::PhantomData }
    }
}

impl<S: Syntax> Receiver<S> {
    /// Takes one packet. An access unit comes out when the packet with its
    /// marker bit completes it, or, complete and in sequence, when the next
    /// packet carries a new timestamp (RFC 6184 section 5.1, RFC 7798
    /// section 4.1: receivers must not rely on the marker). Every access
    /// unit that got a packet and does not come out whole is counted once
    /// in `asm.discarded`.
    pub(crate) fn push(
        &mut self,
        order: Order,
        packet: PacketInfo,
        payload: &[u8],
        asm: &mut Assembly,
        frame: &mut impl FnMut(FrameInfo, &mut Vec<u8>),
    ) {
        // Duplicated and outdated packets are removed (RFC 6184 section 7).
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
    /// the forbidden bit set, a packet type not taken, an aggregation or
    /// fragmentation unit inside an aggregate or fragment (no nesting), an
    /// empty or truncated aggregate, a fragment out of place, or an access
    /// unit growing past the limit.
    fn take(&mut self, payload: &[u8], asm: &mut Assembly) -> Option<()> {
        let header = payload.get(..S::HEADER)?;
        if header[0] & 0x80 != 0 {
            return None; // forbidden_zero_bit
        }
        match S::kind(header) {
            Kind::Single => {
                if self.in_fu {
                    return None; // fragments are consecutive
                }
                self.nal(payload, &[], asm)?;
            }
            Kind::Aggregate => {
                if self.in_fu {
                    return None;
                }
                let mut rest = &payload[S::HEADER..];
                let mut units = 0;
                while !rest.is_empty() {
                    let size = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
                    let unit = rest.get(2..2 + size)?;
                    let header = unit.get(..S::HEADER)?; // a unit has at least its header
                    if header[0] & 0x80 != 0 {
                        return None;
                    }
                    match S::kind(header) {
                        Kind::Single => self.nal(unit, &[], asm)?,
                        Kind::Ignored => {}
                        _ => return None,
                    }
                    units += 1;
                    rest = &rest[2 + size..];
                }
                if units == 0 {
                    return None; // at least one aggregation unit
                }
            }
            Kind::Fragment => {
                let (start, end, unit_header) = S::fragment_parts(payload)?;
                let unit_header = &unit_header[..S::HEADER];
                // Start and end never both set; a start only outside a
                // fragmented unit, the rest only inside one, of its type.
                let unit_type = S::nal_type(unit_header);
                if start == self.in_fu || (start && end) || (!start && unit_type != self.fu_type) {
                    return None;
                }
                let keep = match S::kind(unit_header) {
                    Kind::Single => true,
                    Kind::Ignored => false,
                    _ => return None, // no nested aggregates or fragments
                };
                let body = payload.get(S::FU_HEADER..)?;
                if keep {
                    if start {
                        self.nal(unit_header, body, asm)?;
                    } else if !asm.append(&[body]) {
                        return None;
                    }
                }
                self.in_fu = !end;
                self.fu_type = unit_type;
            }
            Kind::Ignored => {
                if self.in_fu {
                    return None;
                }
            }
            Kind::Unsupported => return None,
        }
        Some(())
    }

    /// Appends a start code and a NAL unit (`unit` then `more`).
    fn nal(&mut self, unit: &[u8], more: &[u8], asm: &mut Assembly) -> Option<()> {
        if S::key(unit) {
            self.key = true;
        }
        asm.append(&[&START_CODE, unit, more]).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
