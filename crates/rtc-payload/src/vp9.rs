//! VP9 (RFC 9628).
//!
//! Sending, in non-flexible mode with one spatial and one temporal layer (as
//! libvpx's real-time mode encodes by default): each packet starts with the
//! payload descriptor of section 4.2, I = 1 with M = 1 and a 15-bit PictureID
//! that increases by one per frame and wraps from 0x7fff to 0; P = 0 for a key
//! frame (its uncompressed header's frame_type, VP9 bitstream specification
//! section 6.2), else 1; L = 0 and F = 0 (no layer indices, no reference
//! indices); B = 1 on the frame's first packet, E = 1 on its last, which also
//! carries the RTP marker bit (section 4.1: the last packet of the picture).
//! A key frame's first packet has V = 1 and the scalability structure of
//! section 4.2.1: one spatial layer with its resolution (Y = 1, read from the
//! uncompressed header), no picture group (G = 0); when the resolution cannot
//! be read, V = 0. The frame is split evenly, descriptors included.
//!
//! Receiving: any legal descriptor. The PictureID (7 or 15 bits), the layer
//! indices (with TL0PICIDX in non-flexible mode), flexible mode's one to three
//! reference indices and the scalability structure are parsed, every length
//! checked against the payload, and skipped. A picture is complete when its
//! packets share one timestamp, run over consecutive sequence numbers from a
//! packet with B = 1, and end with the marker bit, or with E = 1 on a packet
//! without layer indices (a single-layer stream, where the layer frame is the
//! picture). The layer frames of a picture with several spatial layers (each
//! from B to E, the next B = 1 right after an E = 1) are concatenated, as a
//! VP9 decoder takes them. A picture is a key frame when its first packet has
//! P = 0 and its first frame's uncompressed header has frame_type KEY_FRAME.

use crate::fragment::Split;
use crate::framing::State;
use crate::sequence::Order;
use crate::{Assembly, Error, FrameInfo, PacketInfo, Payload};

/// Length of the payload descriptor written: the flags, then the 15-bit
/// PictureID (RFC 9628 section 4.2).
pub(crate) const DESCRIPTOR_LEN: usize = 3;

/// Length of the scalability structure written on a key frame's first
/// packet: N_S = 0, Y = 1, G = 0, then one WIDTH and HEIGHT.
const SS_LEN: usize = 5;

/// The largest 15-bit PictureID.
const PICTURE_ID_MASK: u16 = 0x7fff;

// The flags of the descriptor's first octet (section 4.2, figures 2 and 3).
const I: u8 = 0x80;
const P: u8 = 0x40;
const L: u8 = 0x20;
const F: u8 = 0x10;
const B: u8 = 0x08;
const E: u8 = 0x04;
const V: u8 = 0x02;

/// The send state of one frame.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sender {
    /// The split of the frame with [`SS_LEN`] octets before it when the
    /// first packet carries the scalability structure: every packet then
    /// has as many octets after its 3-octet descriptor.
    split: Split,
    /// The next piece to write.
    index: usize,
    picture_id: u16,
    /// The frame uses inter-picture prediction (P).
    predicted: bool,
    /// The key frame's width and height, for the scalability structure.
    resolution: Option<(u16, u16)>,
}

impl Sender {
    /// Splits a frame into payloads of at most `max` octets (`max` >=
    /// [`DESCRIPTOR_LEN`] + [`SS_LEN`] + 1) under `picture_id`.
    pub(crate) fn begin(frame: &[u8], max: usize, picture_id: u16) -> Result<(Self, usize), Error> {
        let first = *frame.first().ok_or(Error::Empty)?;
        if first >> 6 != FRAME_MARKER {
            return Err(Error::InvalidFrame("not a VP9 frame (frame_marker is not 2)"));
        }
        let header = Header::parse(frame);
        let key = header.is_some_and(|h| h.key_frame);
        let resolution = header.and_then(|h| h.resolution);
        let prefix = if resolution.is_some() { SS_LEN } else { 0 };
        // With the structure as a prefix of the run, piece 0 is at least
        // SS_LEN octets long: alone it holds the whole frame after the
        // prefix; of two or more pieces each holds more than half of
        // `max - DESCRIPTOR_LEN` >= 13.
        let split = Split::new(frame.len() + prefix, max.saturating_sub(DESCRIPTOR_LEN));
        let sender = Self { split, index: 0, picture_id: picture_id & PICTURE_ID_MASK, predicted: !key, resolution };
        Ok((sender, split.count()))
    }

    /// Writes the next packet into `out`.
    pub(crate) fn next(&mut self, frame: &[u8], out: &mut [u8]) -> Option<Payload> {
        if self.index >= self.split.count() {
            return None;
        }
        let (offset, len) = self.split.piece(self.index);
        let ss = self.resolution.filter(|_| self.index == 0);
        // The structure takes the first SS_LEN octets of the run.
        let prefix = if self.resolution.is_some() { SS_LEN } else { 0 };
        let (start, media) = match ss {
            Some(_) => (0, len.checked_sub(SS_LEN)?),
            None => (offset.checked_sub(prefix)?, len),
        };
        let piece = frame.get(start..start.checked_add(media)?)?;
        let last = self.index + 1 == self.split.count();
        let total = DESCRIPTOR_LEN + len;
        let out = out.get_mut(..total)?;
        let [hi, lo] = self.picture_id.to_be_bytes();
        let flags = I
            | if self.predicted { P } else { 0 }
            | if self.index == 0 { B } else { 0 }
            | if last { E } else { 0 }
            | if ss.is_some() { V } else { 0 };
        out[..DESCRIPTOR_LEN].copy_from_slice(&[flags, 0x80 | hi, lo]);
        let mut at = DESCRIPTOR_LEN;
        if let Some((width, height)) = ss {
            let [w0, w1] = width.to_be_bytes();
            let [h0, h1] = height.to_be_bytes();
            // N_S = 0 (one spatial layer), Y = 1, G = 0.
            out[at..at + SS_LEN].copy_from_slice(&[0x10, w0, w1, h0, h1]);
            at += SS_LEN;
        }
        out[at..].copy_from_slice(piece);
        self.index += 1;
        Some(Payload { len: total, marker: last })
    }
}

/// A parsed payload descriptor (RFC 9628 section 4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Descriptor {
    /// P: inter-picture predicted.
    pub(crate) predicted: bool,
    /// L: layer indices present.
    pub(crate) layered: bool,
    /// B: the first packet of a layer frame.
    pub(crate) start: bool,
    /// E: the last packet of a layer frame.
    pub(crate) end: bool,
    /// The PictureID, 7 or 15 bits, when I = 1.
    pub(crate) picture_id: Option<u16>,
    /// The resolution of the lowest spatial layer, from a scalability
    /// structure with Y = 1.
    pub(crate) resolution: Option<(u16, u16)>,
    /// The descriptor's length: the VP9 data starts here.
    pub(crate) len: usize,
}

/// Reads octets off the front of a payload, every length checked.
struct Octets<'a> {
    data: &'a [u8],
    at: usize,
}

impl Octets<'_> {
    fn octet(&mut self) -> Option<u8> {
        let b = *self.data.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.octet()?, self.octet()?]))
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        let at = self.at.checked_add(n)?;
        if at > self.data.len() {
            return None;
        }
        self.at = at;
        Some(())
    }
}

/// The most reference indices of a flexible-mode descriptor (section 4.2:
/// up to 3).
const MAX_REFERENCES: usize = 3;

/// Parses the payload descriptor at the start of `payload`; `None` when a
/// field runs past the payload or more than three reference indices
/// follow. Reserved bits are ignored.
pub(crate) fn parse_descriptor(payload: &[u8]) -> Option<Descriptor> {
    let mut r = Octets { data: payload, at: 0 };
    let flags = r.octet()?;
    let mut picture_id = None;
    if flags & I != 0 {
        let m = r.octet()?;
        picture_id = Some(if m & 0x80 != 0 { u16::from_be_bytes([m & 0x7f, r.octet()?]) } else { u16::from(m) });
    }
    if flags & L != 0 {
        r.octet()?; // TID, U, SID, D
        if flags & F == 0 {
            r.octet()?; // TL0PICIDX (non-flexible mode only)
        }
    }
    if flags & F != 0 && flags & P != 0 {
        // P_DIFF and N: another index follows while N = 1.
        let mut n = 0;
        while r.octet()? & 1 != 0 {
            n += 1;
            if n == MAX_REFERENCES {
                return None;
            }
        }
    }
    let mut resolution = None;
    if flags & V != 0 {
        let ss = r.octet()?;
        let layers = usize::from(ss >> 5) + 1; // N_S + 1
        if ss & 0x10 != 0 {
            // Y: WIDTH and HEIGHT of each spatial layer.
            resolution = Some((r.u16()?, r.u16()?));
            r.skip((layers - 1) * 4)?;
        }
        if ss & 0x08 != 0 {
            // G: N_G pictures, each an octet (T, U, R) and R P_DIFF octets.
            for _ in 0..r.octet()? {
                let references = usize::from(r.octet()? >> 2) & 3;
                r.skip(references)?;
            }
        }
    }
    Some(Descriptor {
        predicted: flags & P != 0,
        layered: flags & L != 0,
        start: flags & B != 0,
        end: flags & E != 0,
        picture_id,
        resolution,
        len: r.at,
    })
}

/// The frame_marker every VP9 frame starts with (bitstream specification
/// section 6.2).
const FRAME_MARKER: u8 = 2;

/// The frame_sync_code of a key frame (section 6.2.1).
const SYNC_CODE: u32 = 0x49_83_42;

/// Reads bits, most significant first, as the VP9 bitstream's f(n).
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: usize) -> Option<u32> {
        let mut v = 0;
        for _ in 0..n {
            let b = (self.data.get(self.at / 8)? >> (7 - self.at % 8)) & 1;
            v = (v << 1) | u32::from(b);
            self.at += 1;
        }
        Some(v)
    }
}

/// What the uncompressed header of a frame's first octets tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// frame_type KEY_FRAME (and not show_existing_frame).
    pub(crate) key_frame: bool,
    /// A key frame's frame_width and frame_height, when they fit 16 bits.
    pub(crate) resolution: Option<(u16, u16)>,
}

impl Header {
    /// Reads the start of the uncompressed header (VP9 bitstream
    /// specification section 6.2): frame_marker, profile, reserved_zero
    /// for profile 3, show_existing_frame, frame_type, show_frame,
    /// error_resilient_mode; for a key frame the sync code, color_config
    /// (section 6.2.2) and frame_size (section 6.2.3). `None` when the
    /// frame does not start with the frame marker or ends first.
    pub(crate) fn parse(frame: &[u8]) -> Option<Header> {
        let mut r = Bits { data: frame, at: 0 };
        if r.read(2)? != u32::from(FRAME_MARKER) {
            return None;
        }
        let profile = r.read(1)? | (r.read(1)? << 1); // low bit first
        if profile == 3 {
            r.read(1)?; // reserved_zero
        }
        if r.read(1)? == 1 {
            return Some(Header { key_frame: false, resolution: None }); // show_existing_frame
        }
        if r.read(1)? != 0 {
            return Some(Header { key_frame: false, resolution: None }); // NON_KEY_FRAME
        }
        r.read(2)?; // show_frame, error_resilient_mode
        let resolution = (|| {
            if r.read(24)? != SYNC_CODE {
                return None;
            }
            if profile >= 2 {
                r.read(1)?; // ten_or_twelve_bit
            }
            let color_space = r.read(3)?;
            let extra = match (color_space != 7, profile % 2 == 1) {
                (true, true) => 4,  // color_range, subsampling_x and _y, reserved_zero
                (true, false) => 1, // color_range
                (false, true) => 1, // CS_RGB: reserved_zero
                (false, false) => 0,
            };
            r.read(extra)?;
            let width = u16::try_from(r.read(16)? + 1).ok()?;
            let height = u16::try_from(r.read(16)? + 1).ok()?;
            Some((width, height))
        })();
        Some(Header { key_frame: true, resolution })
    }
}

/// What a receiver keeps of the picture being built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Picture {
    /// The first packet had P = 1.
    predicted: bool,
    /// The last packet taken ended a layer frame (E = 1).
    layer_end: bool,
}

/// Reassembles VP9 pictures from packets in arrival order.
#[derive(Debug, Default)]
pub(crate) struct Receiver {
    state: State<Picture>,
}

impl Receiver {
    /// Takes one packet. Every picture that got a packet and does not come
    /// out whole is counted once in `asm.discarded`.
    pub(crate) fn push(
        &mut self,
        order: Order,
        packet: PacketInfo,
        payload: &[u8],
        asm: &mut Assembly,
        frame: &mut impl FnMut(FrameInfo, &mut Vec<u8>),
    ) {
        let ts = packet.timestamp;
        // Duplicates and late packets are ignored; a picture of another
        // timestamp still open lost its last packet.
        if !self.state.take(order, ts, asm) {
            return;
        }
        let Some(d) = parse_descriptor(payload) else {
            return self.state.fail(ts, asm);
        };
        let data = &payload[d.len..];
        match self.state {
            State::Idle if d.start => {
                self.state.start(ts, Picture { predicted: d.predicted, layer_end: false }, data, asm);
            }
            // The next packet of the layer frame, or the first of the
            // picture's next layer frame right after the end of one.
            State::Building(_, p) if order == Order::Next && d.start == p.layer_end => {
                self.state.append(ts, data, asm);
            }
            // A gap, a first packet missing, or B out of place.
            State::Idle | State::Building(..) => self.state.fail(ts, asm),
            State::Broken(_) => {}
        }
        if packet.marker || (d.end && !d.layered) {
            let key = |p: &Picture, f: &[u8]| !p.predicted && Header::parse(f).is_some_and(|h| h.key_frame);
            self.state.finish(asm, key, frame);
        } else if let State::Building(_, p) = &mut self.state {
            p.layer_end = d.end;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unusual_byte_groupings, reason = "binary literals grouped by the descriptor's fields")]
mod tests {
    use super::*;
    use crate::testing::{packetize, push, receive};
    use crate::{Depacketizer, Format, Packetizer};

    /// The real VP9 clip (30 frames, 160x120, a key frame every 10; see
    /// conformance/fixtures/media/README.md).
    const CLIP: &[u8] = include_bytes!("../../../conformance/fixtures/media/vp9-160x120.ivf");

    /// The clip's frames: after the 32-octet IVF header, each has a 12-octet
    /// header starting with its length.
    fn clip_frames() -> Vec<&'static [u8]> {
        assert_eq!((&CLIP[..4], &CLIP[8..12]), (&b"DKIF"[..], &b"VP90"[..]));
        let mut frames = Vec::new();
        let mut at = 32;
        while at < CLIP.len() {
            let len = u32::from_le_bytes(CLIP[at..at + 4].try_into().unwrap()) as usize;
            frames.push(&CLIP[at + 12..at + 12 + len]);
            at += 12 + len;
        }
        frames
    }

    /// A key frame's first octets: frame_marker 2, profile 0,
    /// show_existing_frame 0, frame_type 0, show_frame 1, error_resilient 0,
    /// the sync code, color_space 0 and color_range 0 (4 bits), then
    /// frame_width_minus_1 and frame_height_minus_1 (16 bits each) at a bit
    /// offset of 4.
    fn key_frame(width: u16, height: u16) -> Vec<u8> {
        let size = ((u32::from(width - 1) << 16) | u32::from(height - 1)).to_be_bytes();
        let mut f = vec![0x82, 0x49, 0x83, 0x42, size[0] >> 4];
        for i in 0..3 {
            f.push((size[i] << 4) | (size[i + 1] >> 4));
        }
        f.extend([size[3] << 4, 0xaa, 0xbb]);
        f
    }

    #[test]
    fn uncompressed_headers() {
        let key = |f: &[u8]| Header::parse(f).map(|h| h.key_frame);
        assert_eq!(Header::parse(&key_frame(160, 120)), Some(Header { key_frame: true, resolution: Some((160, 120)) }));
        assert_eq!(Header::parse(&key_frame(65535, 1)).unwrap().resolution, Some((65535, 1)));
        assert_eq!(key(&[0x86, 0x00]), Some(false), "frame_type NON_KEY_FRAME");
        assert_eq!(key(&[0x88]), Some(false), "show_existing_frame");
        assert_eq!(key(&[0x40]), None, "frame_marker 1");
        assert_eq!(key(&[]), None);
        // Profile 1: subsampling bits after color_range; profile 3: a
        // reserved bit first; profile 2: ten_or_twelve_bit.
        let p1 = [0xa2, 0x49, 0x83, 0x42, 0x00, 0x01, 0x3e, 0x00, 0xee];
        assert_eq!(Header::parse(&p1).unwrap().resolution, Some((160, 120)));
        let truncated = Header::parse(&key_frame(160, 120)[..6]).unwrap();
        assert_eq!(truncated, Header { key_frame: true, resolution: None }, "a key frame without its size");
        assert_eq!(Header::parse(&[0x82, 0x49, 0x83, 0x43, 0, 0, 0, 0, 0, 0]).unwrap().resolution, None, "sync code");
        assert_eq!(key(&[0xb2]), Some(false), "profile 3, NON_KEY_FRAME");
        // Every frame of the real clip: key frames every 10, 160x120.
        let frames = clip_frames();
        assert_eq!(frames.len(), 30);
        for (i, f) in frames.iter().enumerate() {
            let h = Header::parse(f).unwrap();
            assert_eq!(h.key_frame, i % 10 == 0, "frame {i}");
            assert_eq!(h.resolution, h.key_frame.then_some((160, 120)), "frame {i}");
        }
    }

    /// Figures 2, 3 and 4 of section 4.2: every optional field parsed, its
    /// length checked, and skipped.
    #[test]
    fn descriptors() {
        let d = parse_descriptor(&[0x8c, 0x80 | 0x12, 0x34, 0xaa]).unwrap();
        let want = Descriptor {
            predicted: false,
            layered: false,
            start: true,
            end: true,
            picture_id: Some(0x1234),
            resolution: None,
            len: 3,
        };
        assert_eq!(d, want);
        // No PictureID; a 7-bit one.
        assert_eq!(
            parse_descriptor(&[0x48, 1]).unwrap(),
            Descriptor { predicted: true, picture_id: None, len: 1, end: false, ..want }
        );
        assert_eq!(parse_descriptor(&[0x80, 0x05]).unwrap().picture_id, Some(5));
        // Non-flexible layer indices: TID/U/SID/D and TL0PICIDX.
        let d = parse_descriptor(&[I | L | B, 0x80, 1, 0b001_1_000_0, 7, 0xaa]).unwrap();
        assert_eq!((d.layered, d.len), (true, 5));
        // Flexible: one octet of layer indices, then P_DIFF with N.
        let d = parse_descriptor(&[I | P | L | F | B, 0x80, 1, 0x20, 0x03, 0x05, 0x04, 0xaa]).unwrap();
        assert_eq!(d.len, 7, "three reference indices");
        assert_eq!(parse_descriptor(&[I | P | F, 0x80, 1, 0x02]).unwrap().len, 4);
        assert_eq!(parse_descriptor(&[F, 0x02]).unwrap().len, 1, "no P: no reference indices");
        assert_eq!(parse_descriptor(&[P | F, 0x03, 0x03, 0x03, 0x02]), None, "a fourth reference index");
        // SS: N_S = 1 with Y (two resolutions), G with N_G = 2 (one picture
        // with two P_DIFF octets, one with none).
        let ss = [0x38, 0, 80, 0, 60, 0, 160, 0, 120, 2, 0b000_1_10_00, 1, 2, 0b001_0_00_00];
        let mut p = vec![I | B | V, 0x80, 1];
        p.extend(ss);
        p.push(0xaa);
        let d = parse_descriptor(&p).unwrap();
        assert_eq!((d.resolution, d.len), (Some((80, 60)), 3 + ss.len()));
        // SS without Y or G; with G and N_G = 0.
        assert_eq!(
            parse_descriptor(&[V | B, 0x00]).unwrap(),
            Descriptor { picture_id: None, len: 2, end: false, ..want }
        );
        assert_eq!(parse_descriptor(&[V, 0x08, 0]).unwrap().len, 3);
        // Every truncation of those is refused.
        let whole: [&[u8]; 4] = [
            &p[..p.len() - 1],
            &[I | L | B, 0x80, 1, 0x30, 7],
            &[I | P | L | F, 0x80, 1, 0x20, 0x03, 0x02],
            &[0x80, 0x80, 1],
        ];
        for w in whole {
            assert!(parse_descriptor(w).is_some());
            for n in 0..w.len() {
                assert_eq!(parse_descriptor(&w[..n]), None, "{:?}", &w[..n]);
            }
        }
    }

    /// The sent descriptor: I = 1 with M = 1 and the 15-bit PictureID, P = 0
    /// on key frames only, B on the first packet, E and the marker on the
    /// last, SS with the resolution on a key frame's first packet.
    #[test]
    fn sent_descriptors() {
        let mut frame = key_frame(640, 480);
        frame.extend((0..3000u32).map(|i| (i * 7) as u8));
        let mut p = Packetizer::new(Format::Vp9, 1000, 0x7fff);
        let packets = packetize(&mut p, &frame).unwrap();
        assert_eq!(packets.len(), 4);
        assert_eq!(packets[0].0[..8], [I | B | V, 0xff, 0xff, 0x10, 0x02, 0x80, 0x01, 0xe0]);
        assert_eq!(packets[1].0[..3], [I, 0xff, 0xff]);
        assert_eq!(packets[3].0[..3], [I | E, 0xff, 0xff]);
        // Even: 4 descriptors, the SS and 3011 octets over 4 packets.
        let sizes: Vec<usize> = packets.iter().map(|(p, _)| p.len()).collect();
        assert_eq!(sizes, [757; 4]);
        let media: Vec<u8> =
            packets.iter().enumerate().flat_map(|(i, (p, _))| p[if i == 0 { 8 } else { 3 }..].to_vec()).collect();
        assert_eq!(media, frame);
        // An interframe: P = 1, no SS; the PictureID wrapped to 0.
        let packets = packetize(&mut p, &[0x86, 1, 2]).unwrap();
        assert_eq!(packets, [(vec![I | P | B | E, 0x80, 0x00, 0x86, 1, 2], true)]);
        // A key frame whose size cannot be read: V = 0.
        let packets = packetize(&mut p, &key_frame(160, 120)[..6]).unwrap();
        assert_eq!(packets[0].0[..3], [I | B | E, 0x80, 0x01]);
        // Refused: empty, and not VP9.
        assert_eq!(p.begin(&[]), Err(Error::Empty));
        assert!(matches!(p.begin(&[0x10, 0x02, 0x00]), Err(Error::InvalidFrame(_))));
        assert_eq!(parse_descriptor(&packetize(&mut p, &[0x86]).unwrap()[0].0).unwrap().picture_id, Some(2));
    }

    /// Frames of many sizes at several payload sizes come back whole, key
    /// frames with their SS.
    #[test]
    fn round_trips() {
        let mut d = Depacketizer::new(Format::Vp9, 1 << 20);
        let (mut seq, mut ts) = (65530u16, 0u32);
        for max in [16, 17, 20, 100, 1200] {
            let mut p = Packetizer::new(Format::Vp9, max, 0x7ff0);
            for len in [1, 2, 7, 8, 12, 13, 14, 15, 100, 1000, 5000] {
                for key in [true, false] {
                    let mut frame = if key { key_frame(320, 240) } else { vec![0x86] };
                    frame.extend((0..len).map(|i| (i * 13) as u8));
                    frame.truncate(len.max(1));
                    let packets = packetize(&mut p, &frame).unwrap();
                    let sizes: Vec<usize> = packets.iter().map(|(p, _)| p.len()).collect();
                    assert!(sizes.iter().all(|s| *s <= max.max(16)), "{max} {len}");
                    assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "{sizes:?}");
                    ts = ts.wrapping_add(3000);
                    let got = receive(&mut d, seq, ts, &packets);
                    seq = seq.wrapping_add(packets.len() as u16);
                    let is_key = Header::parse(&frame).is_some_and(|h| h.key_frame);
                    assert_eq!(got, vec![(frame, is_key)], "{max} {len} {key}");
                }
            }
        }
        assert_eq!(d.discarded(), 0);
    }

    /// Every frame of the real clip, byte for byte, at three payload sizes;
    /// key frames detected.
    #[test]
    fn real_frames() {
        for max in [64, 300, 1200] {
            let mut p = Packetizer::new(Format::Vp9, max, 100);
            let mut d = Depacketizer::new(Format::Vp9, 1 << 20);
            let mut seq = 0u16;
            for (i, f) in clip_frames().into_iter().enumerate() {
                let packets = packetize(&mut p, f).unwrap();
                let first = parse_descriptor(&packets[0].0).unwrap();
                assert_eq!(first.predicted, i % 10 != 0);
                assert_eq!(first.resolution, (i % 10 == 0).then_some((160, 120)));
                assert_eq!(first.picture_id, Some(100 + i as u16));
                let got = receive(&mut d, seq, i as u32 * 3000, &packets);
                seq = seq.wrapping_add(packets.len() as u16);
                assert_eq!(got, vec![(f.to_vec(), i % 10 == 0)], "frame {i} at {max}");
            }
            assert_eq!(d.discarded(), 0);
        }
    }

    #[test]
    fn gaps_duplicates_and_malformed_packets() {
        let mut frame = key_frame(160, 120);
        frame.extend([7; 300]);
        let packets = packetize(&mut Packetizer::new(Format::Vp9, 100, 0), &frame).unwrap();
        assert_eq!(packets.len(), 4);
        let mut d = Depacketizer::new(Format::Vp9, 1 << 20);
        // A lost middle packet drops the frame, once; the next comes whole.
        for (i, (pkt, m)) in packets.iter().enumerate().filter(|(i, _)| *i != 1) {
            assert!(push(&mut d, 10 + i as u16, 1000, *m, pkt).is_empty());
        }
        assert_eq!(d.discarded(), 1);
        assert_eq!(receive(&mut d, 20, 2000, &packets), vec![(frame.clone(), true)]);
        // The first packet lost: the rest is dropped, counted once.
        assert!(receive(&mut d, 31, 3000, &packets[1..]).is_empty());
        assert_eq!(d.discarded(), 2);
        // The last packet lost: the next picture's start drops it.
        assert!(receive(&mut d, 40, 4000, &packets[..3]).is_empty());
        assert_eq!(push(&mut d, 44, 5000, true, &[I | P | B | E, 0x80, 1, 0x86]), vec![(vec![0x86], false)]);
        assert_eq!(d.discarded(), 3);
        // Duplicates and late packets are ignored, not counted.
        assert!(push(&mut d, 45, 6000, false, &packets[0].0).is_empty());
        assert!(push(&mut d, 45, 6000, false, &packets[0].0).is_empty());
        assert!(push(&mut d, 44, 5000, true, &[I | P | B | E, 0x80, 1, 0x86]).is_empty());
        assert_eq!(receive(&mut d, 46, 6000, &packets[1..]), vec![(frame.clone(), true)]);
        // Truncated descriptors drop their picture without panicking.
        for (i, pkt) in
            [&[][..], &[I], &[I, 0x80], &[I | L, 0x05], &[I | V | B, 1, 0x10, 0, 160]].into_iter().enumerate()
        {
            assert!(push(&mut d, 50 + i as u16, 7000 + i as u32, true, pkt).is_empty());
        }
        assert_eq!(d.discarded(), 8);
        // B in the middle of a layer frame; a picture with no data.
        assert!(push(&mut d, 60, 8000, false, &[I | B, 1, 0x86]).is_empty());
        assert!(push(&mut d, 61, 8000, true, &[I | B | E, 1, 0x86]).is_empty());
        assert!(push(&mut d, 62, 9000, true, &[I | B | E, 1]).is_empty());
        assert_eq!(d.discarded(), 10);
        // Over max_frame.
        let mut d = Depacketizer::new(Format::Vp9, 100);
        assert!(receive(&mut d, 0, 0, &packets).is_empty());
        assert_eq!(d.discarded(), 1);
    }

    /// Layer indices, flexible mode and SS are skipped; the layer frames of
    /// two spatial layers make one picture; the marker or, without layer
    /// indices, E ends it.
    #[test]
    fn layered_and_flexible_streams() {
        let mut d = Depacketizer::new(Format::Vp9, 1 << 20);
        let key = key_frame(160, 120);
        // Non-flexible, two spatial layers, SS with both resolutions on the
        // first packet; the base layer in two packets.
        let mut first = vec![I | L | B | V, 0x80, 9, 0b000_0_000_0, 0];
        first.extend([0x38, 0, 80, 0, 60, 0, 160, 0, 120, 1, 0b000_1_00_00]);
        first.extend(&key[..4]);
        let second = [&[I | L | E, 0x80, 9, 0b000_0_000_0, 0][..], &key[4..]].concat();
        let upper = [I | L | B | E, 0x80, 9, 0b000_0_001_1, 0, 0x86, 0x55];
        assert!(push(&mut d, 1, 100, false, &first).is_empty());
        assert!(push(&mut d, 2, 100, false, &second).is_empty(), "E with layer indices is not the picture's end");
        let want = [&key[..], &[0x86, 0x55]].concat();
        assert_eq!(push(&mut d, 3, 100, true, &upper), vec![(want, true)]);
        // Flexible mode with reference indices; P = 1 is never a key frame.
        let flexible = [I | P | L | F | B | E, 0x80, 10, 0b001_0_000_0, 0x03, 0x02, 0x86, 1];
        assert_eq!(push(&mut d, 4, 200, true, &flexible), vec![(vec![0x86, 1], false)]);
        let not_key = [&[I | P | B | E, 11][..], &key].concat();
        assert_eq!(push(&mut d, 5, 300, true, &not_key), vec![(key.clone(), false)]);
        // Without layer indices, E ends the picture even without the marker.
        assert_eq!(push(&mut d, 6, 400, false, &[B | E, 0x86, 2]), vec![(vec![0x86, 2], false)]);
        assert_eq!(push(&mut d, 7, 500, false, &[I | B, 12, 0x86]), vec![]);
        assert_eq!(push(&mut d, 8, 500, false, &[I | E, 12, 3]), vec![(vec![0x86, 3], false)]);
        // The upper layer lost: the base alone does not make the picture.
        assert!(push(&mut d, 9, 600, false, &first).is_empty());
        assert!(push(&mut d, 10, 600, false, &second).is_empty());
        assert!(push(&mut d, 12, 700, true, &[I | B | E, 13, 0x86]).len() == 1);
        assert_eq!(d.discarded(), 1);
    }
}
