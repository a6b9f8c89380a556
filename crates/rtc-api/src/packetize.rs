//! Frames to RTP payloads and back: one frame per packet (Opus, RFC 7587,
//! and other audio), VP8 with its payload descriptor (RFC 7741), and H.264
//! access units in Annex B form (RFC 6184: single NAL unit packets, FU-A
//! fragments, and STAP-A aggregates on receipt).

use rtc_codecs::{Codec, Kind};

/// How a codec's frames map to RTP payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Packetization {
    /// The whole frame in one packet (RFC 7587 section 4.2 for Opus).
    Whole,
    /// RFC 7741.
    Vp8,
    /// RFC 6184. `fragment` when packetization-mode 1 was agreed (FU-A
    /// allowed); in mode 0 every NAL unit must fit one packet.
    H264 {
        /// FU-A fragmentation allowed.
        fragment: bool,
    },
}

impl Packetization {
    pub(crate) fn for_codec(codec: &Codec) -> Option<Self> {
        if codec.name.eq_ignore_ascii_case("vp8") {
            Some(Self::Vp8)
        } else if codec.name.eq_ignore_ascii_case("h264") {
            // RFC 6184 section 8.1: packetization-mode absent means 0.
            let mode = codec.parameters.get("packetization-mode").map(str::trim);
            Some(Self::H264 { fragment: mode == Some("1") })
        } else if codec.kind == Kind::Audio {
            Some(Self::Whole)
        } else {
            None
        }
    }
}

/// RFC 6184 section 5.4 NAL unit types used by the payload format.
const STAP_A: u8 = 24;
const FU_A: u8 = 28;
/// The NAL unit type of an IDR picture's slice (H.264 table 7-1).
const IDR: u8 = 5;
/// The start code written before each NAL unit of a reassembled frame.
const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// The NAL units of an H.264 access unit in Annex B form: each starts after
/// a `00 00 01` start code and ends before the next one, without trailing
/// zero bytes (the zero of a 4-byte start code, `trailing_zero_8bits`; a NAL
/// unit never ends in zero). Bytes before the first start code, such as a
/// frame with no start code at all, count as one NAL unit. Units of zeros
/// only are skipped.
pub(crate) fn nal_units(frame: &[u8]) -> NalUnits<'_> {
    NalUnits { rest: frame }
}

/// Iterator of [`nal_units`].
pub(crate) struct NalUnits<'a> {
    rest: &'a [u8],
}

/// Where the first `00 00 01` in `b` starts.
fn find_start_code(b: &[u8]) -> Option<usize> {
    b.windows(3).position(|w| w == [0, 0, 1])
}

impl<'a> Iterator for NalUnits<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while !self.rest.is_empty() {
            let (unit, rest) = match find_start_code(self.rest) {
                Some(at) => (&self.rest[..at], &self.rest[at + 3..]),
                None => (self.rest, &[][..]),
            };
            self.rest = rest;
            // Zero bytes before a start code are the first byte of a 4-byte
            // one or trailing_zero_8bits (H.264 Annex B), not the unit's.
            let end = unit.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            if end > 0 {
                return Some(&unit[..end]);
            }
        }
        None
    }
}

/// Whether a NAL unit header may go out as a single NAL unit packet or in
/// FU-A fragments: forbidden bit clear and a type the payload format does
/// not use for itself (1 to 23; 0 and 24 to 31 would be read as something
/// else, RFC 6184 section 5.2).
pub(crate) fn is_sendable_nal(header: u8) -> bool {
    header & 0x80 == 0 && matches!(header & 0x1f, 1..=23)
}

/// The FU-A indicator and header of one fragment of a NAL unit whose header
/// byte is `nal_header` (RFC 6184 section 5.8).
pub(crate) fn fu_a_header(nal_header: u8, start: bool, end: bool) -> [u8; 2] {
    let indicator = (nal_header & 0xe0) | FU_A;
    let header = (u8::from(start) << 7) | (u8::from(end) << 6) | (nal_header & 0x1f);
    [indicator, header]
}

/// Reassembles H.264 access units from packets in arrival order: every
/// packet of a timestamp, over consecutive sequence numbers, up to the one
/// with the marker bit. Single NAL unit packets, STAP-A and FU-A are
/// accepted; the frame comes out in Annex B form (`00 00 00 01` before each
/// NAL unit). A gap, a malformed packet or another packet type drops the
/// access unit it belongs to.
#[derive(Debug, Default)]
pub(crate) struct H264Assembler {
    buf: Vec<u8>,
    /// The timestamp of the access unit being built.
    timestamp: Option<u32>,
    /// The sequence number of the last packet taken, across access units.
    last_seq: Option<u16>,
    /// Inside a fragmented NAL unit.
    in_fu: bool,
    /// The NAL unit type of that fragmented unit.
    fu_type: u8,
    /// The access unit holds an IDR slice.
    key: bool,
    /// The access unit lost a packet or had a malformed one.
    broken: bool,
    /// Access units dropped for a gap or a malformed packet.
    pub(crate) discarded: u64,
}

impl H264Assembler {
    /// Takes one packet's payload and hands each access unit it completes to
    /// `done` (the frame, whether it holds an IDR picture, and its RTP
    /// timestamp): the unit the
    /// packet ends with its marker bit, or the previous one, complete and in
    /// sequence, when the packet starts a new timestamp without that unit
    /// having seen a marker (RFC 6184 section 5.1: receivers must not rely
    /// on the marker).
    pub(crate) fn push(
        &mut self,
        seq: u16,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
        done: &mut impl FnMut(&[u8], bool, u32),
    ) {
        let follows = self.last_seq.is_none_or(|last| last.wrapping_add(1) == seq);
        self.last_seq = Some(seq);
        if let Some(t) = self.timestamp.filter(|t| *t != timestamp) {
            if follows && self.complete() {
                done(&self.buf, self.key, t);
                self.timestamp = None;
            } else {
                self.drop_unit();
            }
        }
        if self.timestamp.is_none() {
            self.timestamp = Some(timestamp);
            self.buf.clear();
            self.in_fu = false;
            self.fu_type = 0;
            self.key = false;
            self.broken = false;
        }
        if !follows || self.take(payload).is_none() || self.buf.len() > MAX_FRAME {
            self.broken = true;
        }
        if !marker {
            return;
        }
        if self.complete() {
            done(&self.buf, self.key, timestamp);
            self.timestamp = None;
        } else {
            self.drop_unit();
        }
    }

    /// The unit being built is whole: nothing lost or malformed, no
    /// fragment left open, something in it.
    fn complete(&self) -> bool {
        !self.broken && !self.in_fu && !self.buf.is_empty()
    }

    /// Appends the NAL units of one payload; `None` when it is malformed:
    /// a bad header, a unit type the payload format does not carry inside
    /// (RFC 6184 sections 5.7 and 5.8), an empty aggregate, or a fragment
    /// out of place.
    fn take(&mut self, payload: &[u8]) -> Option<()> {
        if self.broken {
            return Some(());
        }
        let first = *payload.first()?;
        if first & 0x80 != 0 {
            return None; // forbidden_zero_bit
        }
        match first & 0x1f {
            1..=23 => {
                if self.in_fu {
                    return None;
                }
                self.nal(payload);
            }
            STAP_A => {
                if self.in_fu || payload.len() < 4 {
                    return None;
                }
                let mut rest = &payload[1..];
                while !rest.is_empty() {
                    let size = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
                    let unit = rest.get(2..2 + size).filter(|u| u.first().is_some_and(|&h| is_sendable_nal(h)))?;
                    self.nal(unit);
                    rest = &rest[2 + size..];
                }
            }
            FU_A => {
                let fu = *payload.get(1)?;
                let (start, end, nal_type) = (fu & 0x80 != 0, fu & 0x40 != 0, fu & 0x1f);
                let header = (first & 0xe0) | nal_type;
                if start == self.in_fu || (start && end) || !is_sendable_nal(header) {
                    return None;
                }
                if start {
                    self.nal(&[header]);
                    self.in_fu = true;
                    self.fu_type = nal_type;
                } else if nal_type != self.fu_type {
                    return None;
                }
                self.buf.extend_from_slice(&payload[2..]);
                if end {
                    self.in_fu = false;
                }
            }
            _ => return None, // STAP-B, MTAP, FU-B: interleaved mode only; 0, 30, 31: reserved
        }
        Some(())
    }

    /// Appends a start code and the NAL unit (or its first bytes).
    fn nal(&mut self, unit: &[u8]) {
        if unit.first().is_some_and(|h| h & 0x1f == IDR) {
            self.key = true;
        }
        self.buf.extend_from_slice(&START_CODE);
        self.buf.extend_from_slice(unit);
    }

    fn drop_unit(&mut self) {
        if self.timestamp.take().is_some() {
            self.discarded += 1;
        }
        self.buf.clear();
        self.in_fu = false;
    }
}

/// Length of the VP8 payload descriptor written: X, then I with a 15-bit
/// PictureID (RFC 7741 section 4.2).
pub(crate) const VP8_DESCRIPTOR: usize = 4;

/// Writes the VP8 payload descriptor of one packet of a frame: S on the first
/// packet (partition index 0: the frame is not split by partition).
pub(crate) fn vp8_descriptor(out: &mut [u8; VP8_DESCRIPTOR], start: bool, picture_id: u16) {
    out[0] = 0x80 | if start { 0x10 } else { 0 };
    out[1] = 0x80; // I: PictureID present
    out[2] = 0x80 | ((picture_id >> 8) as u8 & 0x7f); // M: 15-bit PictureID
    out[3] = picture_id as u8;
}

/// The fragment lengths of a `len`-octet frame whose packets carry at most
/// `max` octets of it each, as even as possible.
pub(crate) fn fragments(len: usize, max: usize) -> impl Iterator<Item = usize> {
    let max = max.max(1);
    let n = len.div_ceil(max).max(1);
    let (base, extra) = (len / n, len % n);
    (0..n).map(move |i| base + usize::from(i < extra))
}

/// The VP8 payload descriptor of a received packet: (start of a partition
/// with index 0, descriptor length). `None` when it runs past the payload.
pub(crate) fn parse_vp8(payload: &[u8]) -> Option<(bool, usize)> {
    let b0 = *payload.first()?;
    let start = b0 & 0x10 != 0 && b0 & 0x07 == 0;
    let mut at = 1;
    if b0 & 0x80 != 0 {
        let x = *payload.get(at)?;
        at += 1;
        if x & 0x80 != 0 {
            let pid = *payload.get(at)?;
            at += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            at += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            at += 1; // TID / Y / KEYIDX
        }
    }
    (at <= payload.len()).then_some((start, at))
}

/// Reassembles VP8 frames from packets in arrival order: a frame starts at a
/// packet with S set and partition index 0, continues over consecutive
/// sequence numbers with the same timestamp, and ends at the marker bit.
/// A gap discards the frame being built; the next start begins a new one.
#[derive(Debug, Default)]
pub(crate) struct Vp8Assembler {
    buf: Vec<u8>,
    building: Option<(u32, u16)>,
    /// Frames discarded for a gap or a malformed descriptor.
    pub(crate) discarded: u64,
}

/// The longest frame reassembled; longer ones are discarded.
const MAX_FRAME: usize = 4 << 20;

impl Vp8Assembler {
    /// Takes one packet's payload; returns a complete frame when the packet
    /// ends one.
    pub(crate) fn push(&mut self, seq: u16, timestamp: u32, marker: bool, payload: &[u8]) -> Option<&[u8]> {
        let Some((start, skip)) = parse_vp8(payload) else {
            self.discard();
            return None;
        };
        let data = &payload[skip..];
        if start {
            if self.building.is_some() {
                self.discard();
            }
            self.buf.clear();
            self.building = Some((timestamp, seq));
        } else {
            match self.building {
                Some((ts, last)) if ts == timestamp && last.wrapping_add(1) == seq => {
                    self.building = Some((ts, seq));
                }
                Some(_) => {
                    self.discard();
                    return None;
                }
                None => return None,
            }
        }
        if self.buf.len() + data.len() > MAX_FRAME {
            self.discard();
            return None;
        }
        self.buf.extend_from_slice(data);
        if marker {
            self.building = None;
            return Some(&self.buf);
        }
        None
    }

    fn discard(&mut self) {
        if self.building.take().is_some() {
            self.discarded += 1;
        }
        self.buf.clear();
    }
}

/// Whether a VP8 frame is a key frame (RFC 6386 section 9.1: P bit clear).
pub(crate) fn vp8_is_key_frame(frame: &[u8]) -> bool {
    frame.first().is_some_and(|b| b & 1 == 0)
}

/// Drives the receive-side depacketizers with arbitrary packets, for the
/// `depacketize` fuzz target; not part of the API. `data` is a run of
/// packets, each 2 octets of sequence number, 1 of timestamp, 1 of flags
/// (bit 0: marker), 1 of payload length, then the payload. Then `data` as an
/// Annex B access unit is packetized at a packet size taken from its first
/// octet and must reassemble to its sendable NAL units.
#[doc(hidden)]
pub fn fuzz_depacketize(data: &[u8]) {
    let mut vp8 = Vp8Assembler::default();
    let mut h264 = H264Assembler::default();
    let mut rest = data;
    while let [s0, s1, ts, flags, len, tail @ ..] = rest {
        let (payload, next) = tail.split_at(usize::from(*len).min(tail.len()));
        let (seq, ts, marker) = (u16::from_be_bytes([*s0, *s1]), u32::from(*ts), flags & 1 != 0);
        h264.push(seq, ts, marker, payload, &mut |frame, key, _| {
            assert!(frame.starts_with(&START_CODE) && frame.len() <= MAX_FRAME);
            assert!(!key || nal_units(frame).any(|u| u[0] & 0x1f == IDR));
        });
        if let Some(frame) = vp8.push(seq, ts, marker, payload) {
            assert!(frame.len() <= MAX_FRAME);
        }
        rest = next;
    }
    let units: Vec<&[u8]> = nal_units(data).filter(|u| is_sendable_nal(u[0])).collect();
    let max = usize::from(data.first().copied().unwrap_or(0)).max(3);
    let mut want = Vec::new();
    let mut packets = Vec::new();
    for unit in &units {
        want.extend_from_slice(&START_CODE);
        want.extend_from_slice(unit);
        if unit.len() <= max {
            packets.push(unit.to_vec());
            continue;
        }
        let n = fragments(unit.len() - 1, max - 2).count();
        let mut at = 1;
        for (i, len) in fragments(unit.len() - 1, max - 2).enumerate() {
            let mut p = fu_a_header(unit[0], i == 0, i + 1 == n).to_vec();
            p.extend_from_slice(&unit[at..at + len]);
            at += len;
            packets.push(p);
        }
    }
    let mut a = H264Assembler::default();
    let mut got = None;
    for (i, p) in packets.iter().enumerate() {
        assert!(p.len() <= max);
        a.push(i as u16, 1, i + 1 == packets.len(), p, &mut |frame, _, _| got = Some(frame.to_vec()));
    }
    assert_eq!(got, (!units.is_empty()).then_some(want));
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn packetize(frame: &[u8], max: usize, pid: u16) -> Vec<Vec<u8>> {
        let mut at = 0;
        fragments(frame.len(), max)
            .enumerate()
            .map(|(i, n)| {
                let mut d = [0; VP8_DESCRIPTOR];
                vp8_descriptor(&mut d, i == 0, pid);
                let mut p = d.to_vec();
                p.extend_from_slice(&frame[at..at + n]);
                at += n;
                p
            })
            .collect()
    }

    #[test]
    fn fragments_cover_the_frame() {
        for (len, max) in [(0, 10), (1, 10), (10, 10), (11, 10), (6000, 1100), (2201, 1100)] {
            let f: Vec<usize> = fragments(len, max).collect();
            assert_eq!(f.iter().sum::<usize>(), len);
            assert!(f.iter().all(|&n| n <= max));
            assert!(f.iter().max().unwrap() - f.iter().min().unwrap() <= 1);
        }
    }

    #[test]
    fn vp8_round_trip_and_loss() {
        let frame: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let pkts = packetize(&frame, 1100, 300);
        assert_eq!(pkts.len(), 5);
        assert_eq!(parse_vp8(&pkts[0]), Some((true, 4)));
        assert_eq!(parse_vp8(&pkts[1]), Some((false, 4)));
        let mut a = Vp8Assembler::default();
        let last = pkts.len() - 1;
        let mut got = None;
        for (i, p) in pkts.iter().enumerate() {
            if let Some(f) = a.push(100 + i as u16, 9000, i == last, p) {
                got = Some(f.to_vec());
            }
        }
        assert_eq!(got.as_deref(), Some(&frame[..]));
        // Losing the middle packet discards the frame; the next one still comes.
        for (i, p) in pkts.iter().enumerate().filter(|(i, _)| *i != 2) {
            assert!(a.push(200 + i as u16, 12000, i == last, p).is_none());
        }
        assert_eq!(a.discarded, 1);
        let small = packetize(b"\x10abc", 1100, 301);
        assert_eq!(a.push(300, 15000, true, &small[0]), Some(&b"\x10abc"[..]));
        // Truncated descriptors are refused without panicking.
        for p in [&[][..], &[0x80], &[0x80, 0x80], &[0x80, 0x80, 0x80]] {
            assert!(parse_vp8(p).is_none());
            assert!(a.push(1, 1, true, p).is_none());
        }
    }

    /// Packetizes an access unit as the send path does: single NAL unit
    /// packets, FU-A for units longer than `max`; the marker on the last.
    fn h264_packets(frame: &[u8], max: usize) -> Vec<(Vec<u8>, bool)> {
        let mut out = Vec::new();
        for unit in nal_units(frame) {
            if unit.len() <= max {
                out.push((unit.to_vec(), false));
                continue;
            }
            let body = &unit[1..];
            let n = fragments(body.len(), max - 2).count();
            let mut at = 0;
            for (i, len) in fragments(body.len(), max - 2).enumerate() {
                let mut p = fu_a_header(unit[0], i == 0, i + 1 == n).to_vec();
                p.extend_from_slice(&body[at..at + len]);
                at += len;
                out.push((p, false));
            }
        }
        if let Some(last) = out.last_mut() {
            last.1 = true;
        }
        out
    }

    /// The same units, each after a 4-byte start code.
    fn annex_b(units: &[Vec<u8>]) -> Vec<u8> {
        units.iter().flat_map(|u| START_CODE.iter().chain(u)).copied().collect()
    }

    #[test]
    fn sendable_nal_headers() {
        assert!(is_sendable_nal(0x65) && is_sendable_nal(0x67) && is_sendable_nal(0x01));
        assert!(!is_sendable_nal(0x00) && !is_sendable_nal(0x7c) && !is_sendable_nal(0x78) && !is_sendable_nal(0xe5));
        // The fuzz body's own checks hold on a few inputs.
        for data in [&[][..], &[0, 0, 1, 0x65, 1, 2, 0, 0, 0, 1, 0x41, 9], &[3, 0, 0, 1, 0x65, 7, 7, 7, 7, 7, 7]] {
            fuzz_depacketize(data);
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
    }

    /// The access units one packet completes.
    fn h(a: &mut H264Assembler, seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Vec<(Vec<u8>, bool)> {
        let mut out = Vec::new();
        a.push(seq, ts, marker, payload, &mut |f, k, _| out.push((f.to_vec(), k)));
        out
    }

    #[test]
    fn h264_stap_a_single_and_fu_a() {
        let mut a = H264Assembler::default();
        // STAP-A with SPS and PPS, then an IDR slice in three FU-A fragments.
        let stap = [STAP_A | 0x60, 0, 3, 0x67, 1, 2, 0, 2, 0x68, 3];
        assert!(h(&mut a, 10, 900, false, &stap).is_empty());
        let idr_header = 0x65;
        assert!(h(&mut a, 11, 900, false, &[0x7c, 0x80 | 5, 7, 7]).is_empty());
        assert!(h(&mut a, 12, 900, false, &[0x7c, 5, 8]).is_empty());
        let want = annex_b(&[vec![0x67, 1, 2], vec![0x68, 3], vec![idr_header, 7, 7, 8, 9]]);
        assert_eq!(h(&mut a, 13, 900, true, &[0x7c, 0x40 | 5, 9]), vec![(want, true)]);
        // A single non-IDR slice is not a key frame.
        assert_eq!(h(&mut a, 14, 1800, true, &[0x41, 1]), vec![(vec![0, 0, 0, 1, 0x41, 1], false)]);
        assert_eq!(a.discarded, 0);
        // Without markers, a unit comes out when the next timestamp starts
        // in sequence (RFC 6184 section 5.1).
        assert!(h(&mut a, 15, 2700, false, &[0x41, 2]).is_empty());
        assert_eq!(h(&mut a, 16, 3600, false, &[0x41, 3]), vec![(vec![0, 0, 0, 1, 0x41, 2], false)]);
        assert_eq!(
            h(&mut a, 17, 4500, true, &[0x41, 4]),
            vec![(vec![0, 0, 0, 1, 0x41, 3], false), (vec![0, 0, 0, 1, 0x41, 4], false)]
        );
        // ... but not across a gap.
        assert!(h(&mut a, 18, 5400, false, &[0x41, 5]).is_empty());
        assert!(h(&mut a, 20, 6300, true, &[0x41, 6]).is_empty());
        assert_eq!(a.discarded, 2);
    }

    #[test]
    fn h264_loss_and_malformed_packets_drop_the_unit() {
        let frame = annex_b(&[vec![0x65; 3000], vec![0x41, 2]]);
        let pkts = h264_packets(&frame, 1000);
        assert_eq!(pkts.len(), 5);
        let mut a = H264Assembler::default();
        // The third packet is lost: the unit is dropped, the next one comes.
        for (i, (p, m)) in pkts.iter().enumerate().filter(|(i, _)| *i != 2) {
            assert!(h(&mut a, i as u16, 1, *m, p).is_empty());
        }
        assert_eq!(a.discarded, 1);
        // The next unit follows on in sequence and comes out whole.
        for (i, (p, m)) in pkts.iter().enumerate() {
            let got = h(&mut a, 5 + i as u16, 2, *m, p);
            assert_eq!(got, if *m { vec![(frame.clone(), true)] } else { vec![] });
        }
        // The marker lost: the next timestamp drops the unfinished unit.
        assert!(h(&mut a, 10, 3, false, &pkts[0].0).is_empty());
        assert_eq!(h(&mut a, 11, 4, true, &[0x41, 1]).len(), 1);
        assert_eq!(a.discarded, 2);
        // A gap before a unit's first packet (its start may be lost) drops it.
        assert!(h(&mut a, 13, 5, true, &[0x41, 1]).is_empty());
        assert_eq!(a.discarded, 3);
        for bad in [
            &[][..],
            &[0x80 | 1, 1],           // forbidden bit
            &[STAP_A, 0, 5, 1],       // STAP-A unit runs past the payload
            &[STAP_A, 0, 0],          // empty STAP-A unit
            &[FU_A],                  // FU-A without its header
            &[FU_A, 0xc0 | 5, 1],     // S and E both set
            &[FU_A, 5, 1],            // middle fragment with no start
            &[25, 0, 1, 1],           // STAP-B
            &[0, 1],                  // type 0
            &[STAP_A],                // STAP-A with no unit
            &[STAP_A, 0, 2, 0x7c, 1], // an FU inside a STAP-A
            &[FU_A, 0x80 | 24, 1],    // an FU of type 24
        ] {
            a.last_seq = None;
            let before = a.discarded;
            assert!(h(&mut a, 300, 5, true, bad).is_empty(), "{bad:?}");
            assert_eq!(a.discarded, before + 1, "{bad:?}");
        }
    }

    proptest! {
        /// Any access unit survives packetization at any packet size.
        #[test]
        fn h264_round_trip(
            units in prop::collection::vec(
                (0u8..32, prop::collection::vec(1u8..=255, 0..3000)).prop_map(|(t, mut body)| {
                    let nal_type = [1u8, 5, 6, 7, 8][usize::from(t) % 5];
                    body.insert(0, 0x60 | nal_type);
                    body
                }),
                1..6,
            ),
            max in 3usize..1500,
            seq in any::<u16>(),
        ) {
            let frame = annex_b(&units);
            let mut a = H264Assembler::default();
            let mut got = Vec::new();
            for (i, (p, m)) in h264_packets(&frame, max).iter().enumerate() {
                prop_assert!(p.len() <= max.max(1));
                got.extend(h(&mut a, seq.wrapping_add(i as u16), 77, *m, p));
            }
            let key = units.iter().any(|u| u[0] & 0x1f == IDR);
            prop_assert_eq!(got, vec![(frame, key)]);
        }

        /// Arbitrary payloads never panic and never leave a unit half built.
        #[test]
        fn h264_arbitrary_payloads(packets in prop::collection::vec((any::<u16>(), any::<bool>(), prop::collection::vec(any::<u8>(), 0..64)), 0..40)) {
            let mut a = H264Assembler::default();
            for (seq, marker, p) in &packets {
                for (f, _) in h(&mut a, *seq, 1, *marker, p) {
                    prop_assert!(f.starts_with(&START_CODE));
                }
            }
        }
    }
}
