//! Frames to RTP payloads and back: one frame per packet (Opus, RFC 7587,
//! and other audio), VP8 with its payload descriptor (RFC 7741).

/// How a codec's frames map to RTP payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Packetization {
    /// The whole frame in one packet (RFC 7587 section 4.2 for Opus).
    Whole,
    /// RFC 7741.
    Vp8,
}

impl Packetization {
    pub(crate) fn for_codec(name: &str, audio: bool) -> Option<Self> {
        if name.eq_ignore_ascii_case("vp8") {
            Some(Self::Vp8)
        } else if audio {
            Some(Self::Whole)
        } else {
            None
        }
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

#[cfg(test)]
mod tests {
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
}
