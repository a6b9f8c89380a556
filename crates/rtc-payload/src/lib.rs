//! RTP payload formats: media frames to RTP payloads and back, sans-IO.
//!
//! A [`Packetizer`] turns one encoded frame into the payloads of its RTP
//! packets, written straight into a buffer of the caller's; a
//! [`Depacketizer`] takes received payloads in arrival order and hands out
//! each frame they complete. Neither sends, receives, keeps time or writes
//! RTP headers: the caller puts each payload behind a header with the
//! returned marker bit (and its own sequence number and timestamp), and
//! passes each received packet's header fields in a [`PacketInfo`].
//!
//! | [`Format`] | codecs | payload format |
//! |---|---|---|
//! | [`Format::Audio`] | Opus, PCMU, PCMA, G.722, other audio | the frame as it is, one per packet (RFC 7587 section 4.2, RFC 3551) |
//! | [`Format::Vp8`] | VP8 | RFC 7741: payload descriptor, frame split evenly over packets |
//! | [`Format::Vp9`] | VP9 | RFC 9628: payload descriptor (non-flexible mode, scalability structure on key frames), frame split evenly over packets |
//! | [`Format::H264`] | H.264 | RFC 6184 modes 0 and 1: single NAL unit, STAP-A, FU-A |
//! | [`Format::H265`] | H.265 (HEVC) | RFC 7798 without decoding order numbers: single NAL unit, AP, FU |
//!
//! # Example
//!
//! ```
//! use rtc_payload::{Depacketizer, Format, FrameInfo, PacketInfo, Packetizer};
//!
//! // The negotiated codec decides the format.
//! let format = Format::for_codec("VP8", false, |_| None).unwrap();
//! let mut packetizer = Packetizer::new(format, 1200, 0x1234);
//! let mut depacketizer = Depacketizer::new(format, 1 << 20);
//!
//! // A 3000-octet frame (its first octet even: a key frame) is three packets.
//! let frame: Vec<u8> = (0..3000u32).map(|i| (i * 2) as u8).collect();
//! assert_eq!(packetizer.begin(&frame)?, 3);
//! let mut out = [0u8; 1200];
//! let mut received = Vec::new();
//! let mut sequence_number = 65535u16;
//! while let Some(payload) = packetizer.next(&frame, &mut out) {
//!     // A sender puts `out[..payload.len]` behind an RTP header with
//!     // `payload.marker`; here it goes straight to the receiving side.
//!     let packet = PacketInfo { sequence_number, timestamp: 90_000, marker: payload.marker };
//!     depacketizer.push(packet, &out[..payload.len], &mut |info: FrameInfo, f: &mut Vec<u8>| {
//!         assert!(info.key_frame);
//!         // Take the frame without copying (a swap with an empty Vec).
//!         received.push((info.timestamp, std::mem::take(f)));
//!     });
//!     sequence_number = sequence_number.wrapping_add(1);
//! }
//! assert_eq!(received, [(90_000, frame)]);
//! assert_eq!(depacketizer.discarded(), 0);
//! # Ok::<(), rtc_payload::Error>(())
//! ```
//!
//! # Guarantees
//!
//! - **No heap in the packetizer.** A [`Packetizer`] holds a few integers;
//!   [`Packetizer::begin`] and [`Packetizer::next`] never allocate and write
//!   each payload once, straight into the caller's buffer.
//! - **No allocation per packet in the depacketizer** once its one frame
//!   buffer has grown to the frame size, as long as the callee hands back a
//!   `Vec` with capacity (swapping in a recycled one, or copying out).
//! - **Refusals before anything is sent.** [`Packetizer::begin`] checks the
//!   whole frame first, so a frame is sent completely or not at all.
//! - **No panic on any input.** Hostile payloads, arbitrary frames, a buffer
//!   too short, or other bytes passed to [`Packetizer::next`] than to
//!   [`Packetizer::begin`] are refused or produce garbage payloads, never a
//!   panic. Malformed packets, gaps and over-long frames drop the frame they
//!   belong to and are counted ([`Depacketizer::discarded`]); the memory a
//!   peer can make the depacketizer hold is bounded by its `max_frame`.
//! - **Typed errors.** [`Error`] says why a frame was refused.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod audio;
mod av1;
mod fragment;
mod framing;
mod h264;
mod h265;
mod nal;
mod sequence;
mod vp8;
mod vp9;

use sequence::Sequence;

/// How a codec's frames map to RTP payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// The whole frame in one packet, the marker bit set on every packet:
    /// Opus (RFC 7587 section 4.2), G.711 PCMU and PCMA and G.722 (RFC
    /// 3551), and other audio codecs whose payload is the encoder's output
    /// as it is.
    Audio,
    /// VP8 (RFC 7741).
    Vp8,
    /// VP9 (RFC 9628), sent in non-flexible mode with one spatial and one
    /// temporal layer.
    Vp9,
    /// AV1 (the AOM RTP payload format for AV1): temporal units in the
    /// low-overhead bitstream format, OBU elements with their lengths.
    Av1,
    /// H.264 (RFC 6184) in the packetization mode agreed.
    H264 {
        /// The packetization mode.
        mode: H264Mode,
    },
    /// H.265 / HEVC (RFC 7798) on one RTP stream, without decoding order
    /// numbers (`sprop-max-don-diff` 0).
    H265,
}

/// An H.264 packetization mode (RFC 6184 section 5.4). Mode 2, interleaved,
/// is not supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum H264Mode {
    /// `packetization-mode=0` or absent (section 6.2): single NAL unit
    /// packets only, so every NAL unit must fit one payload.
    SingleNal,
    /// `packetization-mode=1` (section 6.3): single NAL unit packets,
    /// STAP-A aggregates and FU-A fragments.
    NonInterleaved,
}

impl Format {
    /// The format of an SDP codec. `name` is the encoding name of its
    /// `a=rtpmap` line (any case); `audio` whether it is an audio codec;
    /// `fmtp` looks a parameter of its `a=fmtp` line up by name.
    ///
    /// - `opus`, `PCMU`, `PCMA`, `G722`, and any other audio codec:
    ///   [`Format::Audio`];
    /// - `VP8`: [`Format::Vp8`];
    /// - `VP9`: [`Format::Vp9`] (any `profile-id`: the payload format is the
    ///   same; RFC 9628 section 6 has the profiles agreed in negotiation);
    /// - `AV1`: [`Format::Av1`] (any `profile`);
    /// - `H264`: [`Format::H264`] in the mode of its `packetization-mode`
    ///   parameter (RFC 6184 section 8.1: absent means 0), `None` for a mode
    ///   other than 0 and 1;
    /// - `H265`: [`Format::H265`] unless `sprop-max-don-diff` is above 0
    ///   (decoding order numbers in every packet, RFC 7798 section 7.1) or
    ///   `tx-mode` is not `SRST` (one RTP stream);
    /// - any other video codec: `None`.
    ///
    /// ```
    /// use rtc_payload::{Format, H264Mode};
    ///
    /// assert_eq!(Format::for_codec("opus", true, |_| None), Some(Format::Audio));
    /// let fmtp = |name: &str| (name == "packetization-mode").then_some("1");
    /// assert_eq!(Format::for_codec("h264", false, fmtp), Some(Format::H264 { mode: H264Mode::NonInterleaved }));
    /// assert_eq!(Format::for_codec("H264", false, |_| Some("2")), None);
    /// assert_eq!(Format::for_codec("vp9", false, |_| Some("0")), Some(Format::Vp9));
    /// assert_eq!(Format::for_codec("AV1", false, |_| None), Some(Format::Av1));
    /// assert_eq!(Format::for_codec("H265", false, |_| None), Some(Format::H265));
    /// assert_eq!(Format::for_codec("H265", false, |k| (k == "sprop-max-don-diff").then_some("2")), None);
    /// ```
    pub fn for_codec<'a>(name: &str, audio: bool, fmtp: impl Fn(&str) -> Option<&'a str>) -> Option<Format> {
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if ["opus", "PCMU", "PCMA", "G722"].into_iter().any(is) {
            Some(Format::Audio)
        } else if is("VP8") {
            Some(Format::Vp8)
        } else if is("VP9") {
            Some(Format::Vp9)
        } else if is("AV1") {
            Some(Format::Av1)
        } else if is("H264") {
            let mode = match fmtp("packetization-mode").map(str::trim) {
                None | Some("0") => H264Mode::SingleNal,
                Some("1") => H264Mode::NonInterleaved,
                Some(_) => return None,
            };
            Some(Format::H264 { mode })
        } else if is("H265") {
            let don = fmtp("sprop-max-don-diff").map(str::trim).is_some_and(|v| v != "0");
            let multi = fmtp("tx-mode").map(str::trim).is_some_and(|m| !m.eq_ignore_ascii_case("SRST"));
            (!don && !multi).then_some(Format::H265)
        } else {
            audio.then_some(Format::Audio)
        }
    }
}

/// Why a frame was refused by [`Packetizer::begin`]. Nothing of it was
/// begun.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The frame is empty (an H.264 access unit: holds no NAL unit).
    #[error("empty frame")]
    Empty,
    /// The frame cannot be sent in this format: what is wrong.
    #[error("invalid frame: {0}")]
    InvalidFrame(&'static str),
    /// An H.264 NAL unit longer than a payload, with packetization mode 0
    /// (which cannot fragment).
    #[error("H.264 NAL unit of {len} octets longer than a {max}-octet payload (packetization-mode 0)")]
    UnitTooLong {
        /// The unit's length.
        len: usize,
        /// The most octets of one payload.
        max: usize,
    },
}

/// One payload written by [`Packetizer::next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payload {
    /// Its length: the payload is `out[..len]`.
    pub len: usize,
    /// The RTP marker bit of its packet: the frame's last packet (every
    /// audio packet).
    pub marker: bool,
}

/// The smallest `max_payload`: room for a VP8 descriptor, a VP9 descriptor
/// with its scalability structure, or an FU-A header with some media.
const MIN_PAYLOAD: usize = 16;

/// Splits frames into RTP payloads. Holds no heap memory.
#[derive(Debug, Clone)]
pub struct Packetizer {
    format: Format,
    max: usize,
    /// The PictureID of the next VP8 or VP9 frame.
    picture_id: u16,
    /// The length of the frame given to `begin`.
    frame_len: usize,
    sending: Sending,
}

/// The frame being packetized.
#[derive(Debug, Clone, Copy)]
enum Sending {
    Idle,
    Audio(audio::Sender),
    Vp8(vp8::Sender),
    Vp9(vp9::Sender),
    Av1(av1::Sender),
    H264(h264::Sender),
    H265(h265::Sender),
}

impl Packetizer {
    /// A packetizer for `format`. `max_payload`: the most octets of one RTP
    /// payload, VP8 or VP9 descriptor and FU-A header included; at least 16
    /// (a smaller value is taken as 16). `picture_id`: the first 15-bit
    /// PictureID of VP8 or VP9, which RFC 7741 section 4.2 and RFC 9628
    /// section 4.2 let start at a random value (the caller draws it; the top
    /// bit is ignored).
    pub fn new(format: Format, max_payload: usize, picture_id: u16) -> Self {
        Self {
            format,
            max: max_payload.max(MIN_PAYLOAD),
            picture_id: picture_id & 0x7fff,
            frame_len: 0,
            sending: Sending::Idle,
        }
    }

    /// The format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The most octets of one payload (after the clamp of [`Packetizer::new`]):
    /// the least length of the `out` buffer of [`Packetizer::next`].
    pub fn max_payload(&self) -> usize {
        self.max
    }

    /// Checks `frame` and starts packetizing it; returns how many payloads
    /// it makes. The previous frame's state is dropped, finished or not.
    ///
    /// # Errors
    ///
    /// Nothing is begun:
    /// - [`Error::Empty`]: an empty frame, or an H.264 access unit without a
    ///   NAL unit;
    /// - [`Error::InvalidFrame`]: an audio frame longer than `max_payload`
    ///   (audio is never fragmented); VP9 that does not start with the
    ///   uncompressed header's frame_marker; H.264 input that is not Annex B NAL
    ///   units (forbidden bit set, or NAL unit type 0 or 24 to 31, as in
    ///   AVCC length-prefixed data);
    /// - [`Error::UnitTooLong`]: H.264 packetization mode 0 with a NAL unit
    ///   longer than `max_payload`.
    pub fn begin(&mut self, frame: &[u8]) -> Result<usize, Error> {
        self.sending = Sending::Idle;
        let (sending, count) = match self.format {
            Format::Audio => {
                let (s, n) = audio::Sender::begin(frame, self.max)?;
                (Sending::Audio(s), n)
            }
            Format::Vp8 => {
                let (s, n) = vp8::Sender::begin(frame, self.max, self.picture_id)?;
                // RFC 7741 section 4.2: increases by 1 for each frame.
                self.picture_id = vp8::Sender::next_picture_id(self.picture_id);
                (Sending::Vp8(s), n)
            }
            Format::Vp9 => {
                let (s, n) = vp9::Sender::begin(frame, self.max, self.picture_id)?;
                // RFC 9628 section 4.2: 15 bits, one more per picture, as VP8's.
                self.picture_id = vp8::Sender::next_picture_id(self.picture_id);
                (Sending::Vp9(s), n)
            }
            Format::Av1 => {
                let (s, n) = av1::Sender::begin(frame, self.max)?;
                (Sending::Av1(s), n)
            }
            Format::H264 { mode } => {
                // Mode 0 sends single NAL unit packets only (RFC 6184 section 6.2).
                let more = mode == H264Mode::NonInterleaved;
                let (s, n) = h264::Sender::begin(frame, self.max, more, more)?;
                (Sending::H264(s), n)
            }
            Format::H265 => {
                let (s, n) = h265::Sender::begin(frame, self.max, true, true)?;
                (Sending::H265(s), n)
            }
        };
        self.frame_len = frame.len();
        self.sending = sending;
        Ok(count)
    }

    /// Writes the next payload of the frame given to [`Packetizer::begin`]
    /// (pass the same bytes again) into `out`, and returns its length and
    /// marker bit; `None` when the frame is finished (or none was begun).
    ///
    /// `out` must have at least [`Packetizer::max_payload`] octets: when it
    /// is shorter, or `frame` is not as long as the frame begun, `None`
    /// comes back and nothing changes.
    #[must_use]
    pub fn next(&mut self, frame: &[u8], out: &mut [u8]) -> Option<Payload> {
        if frame.len() != self.frame_len {
            return None;
        }
        let out = out.get_mut(..self.max)?;
        let payload = match &mut self.sending {
            Sending::Idle => None,
            Sending::Audio(s) => s.next(frame, out),
            Sending::Vp8(s) => s.next(frame, out),
            Sending::Vp9(s) => s.next(frame, out),
            Sending::Av1(s) => s.next(frame, out),
            Sending::H264(s) => s.next(frame, out),
            Sending::H265(s) => s.next(frame, out),
        };
        if payload.is_none_or(|p| p.marker) {
            self.sending = Sending::Idle;
        }
        payload
    }
}

/// The RTP header fields of a received packet a [`Depacketizer`] needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketInfo {
    /// The sequence number.
    pub sequence_number: u16,
    /// The timestamp.
    pub timestamp: u32,
    /// The marker bit.
    pub marker: bool,
}

/// What is known of a frame a [`Depacketizer`] completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// The RTP timestamp of its packets.
    pub timestamp: u32,
    /// A frame decodable on its own: always for audio; for VP8 the P bit of
    /// the frame tag is clear (RFC 6386 section 9.1); for VP9 the first
    /// packet has P = 0 and the uncompressed header frame_type KEY_FRAME
    /// (VP9 bitstream specification section 6.2); for H.264 the access
    /// unit holds a slice of an IDR picture (NAL unit type 5); for H.265 a
    /// slice of an IRAP picture (NAL unit types 16 to 23: BLA, IDR, CRA).
    pub key_frame: bool,
}

/// The frame being reassembled: one buffer, its limit, the count of frames
/// dropped.
#[derive(Debug)]
pub(crate) struct Assembly {
    pub(crate) buf: Vec<u8>,
    max: usize,
    discarded: u64,
}

impl Assembly {
    /// Whether `extra` more octets would keep the frame within the limit.
    pub(crate) fn fits(&self, extra: usize) -> bool {
        self.buf.len().saturating_add(extra) <= self.max
    }

    /// Appends `parts` if the frame stays within the limit; false (nothing
    /// appended) otherwise.
    pub(crate) fn append(&mut self, parts: &[&[u8]]) -> bool {
        let add = parts.iter().fold(0usize, |n, p| n.saturating_add(p.len()));
        if self.buf.len().saturating_add(add) > self.max {
            return false;
        }
        for p in parts {
            self.buf.extend_from_slice(p);
        }
        true
    }

    /// Counts a dropped frame and empties the buffer.
    pub(crate) fn discard(&mut self) {
        self.discarded = self.discarded.saturating_add(1);
        self.buf.clear();
    }

    /// Hands the frame in the buffer to `frame`, then clears whatever
    /// buffer comes back.
    pub(crate) fn deliver(&mut self, info: FrameInfo, frame: &mut impl FnMut(FrameInfo, &mut Vec<u8>)) {
        frame(info, &mut self.buf);
        self.buf.clear();
    }
}

/// Reassembles frames from RTP payloads in arrival order.
///
/// Packets are expected in sequence-number order, as a jitter buffer would
/// deliver them, but need not be: a duplicate, or a late packet after its
/// frame was dropped for the gap it left, is ignored (RFC 3550 section 5.1,
/// RFC 6184 section 7); a late audio packet, being a whole frame, still comes
/// out.
#[derive(Debug)]
pub struct Depacketizer {
    format: Format,
    frame: Assembly,
    sequence: Sequence,
    receiving: Receiving,
}

/// The per-format receive state.
#[derive(Debug)]
enum Receiving {
    Audio,
    Vp8(vp8::Receiver),
    Vp9(vp9::Receiver),
    Av1(av1::Receiver),
    H264(h264::Receiver),
    H265(h265::Receiver),
}

impl Depacketizer {
    /// A depacketizer for `format`. `max_frame`: frames longer than this
    /// are discarded (and counted), which bounds the memory a peer can make
    /// it hold. No memory is allocated until the first frame.
    pub fn new(format: Format, max_frame: usize) -> Self {
        let receiving = match format {
            Format::Audio => Receiving::Audio,
            Format::Vp8 => Receiving::Vp8(vp8::Receiver::default()),
            Format::Vp9 => Receiving::Vp9(vp9::Receiver::default()),
            Format::Av1 => Receiving::Av1(av1::Receiver::default()),
            Format::H264 { .. } => Receiving::H264(h264::Receiver::default()),
            Format::H265 => Receiving::H265(h265::Receiver::default()),
        };
        Self {
            format,
            frame: Assembly { buf: Vec::new(), max: max_frame, discarded: 0 },
            sequence: Sequence::default(),
            receiving,
        }
    }

    /// The format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Takes one RTP packet's payload (padding removed), in arrival order.
    ///
    /// Each frame it completes is handed to `frame` as its [`FrameInfo`] and
    /// a `Vec` holding exactly the frame. The callee may [`std::mem::swap`]
    /// that `Vec` with one of its own (no copy) or copy from it; the
    /// depacketizer clears whatever `Vec` it gets back and builds the next
    /// frame in it. One packet can complete two frames: with H.264 and
    /// H.265 the previous access unit completes when a packet of a new
    /// timestamp follows it in sequence without it having had a marker (RFC
    /// 6184 section 5.1, RFC 7798 section 4.1), and the new packet may
    /// complete its own.
    ///
    /// - Audio: each payload is a frame.
    /// - VP8: RFC 7741 section 4.5.1: one timestamp, consecutive sequence
    ///   numbers, from a packet with S = 1 and PID = 0 to the marker bit.
    /// - AV1: one timestamp, consecutive sequence numbers, from a packet
    ///   with Z = 0 to the marker bit; OBU fragments (Y, Z) joined; each OBU
    ///   comes out with its size field, after a temporal delimiter.
    /// - VP9: RFC 9628: one timestamp, consecutive sequence numbers, from a
    ///   packet with B = 1 to the marker bit (or E = 1 without layer
    ///   indices); the layer frames of several spatial layers are
    ///   concatenated. Layer indices, reference indices and the
    ///   scalability structure are read and skipped.
    /// - H.264: single NAL unit packets, STAP-A and FU-A, in either mode;
    ///   the access unit comes out in Annex B form with 4-octet start codes
    ///   (`00 00 00 01`). Packets of reserved types (0, 30, 31) are ignored
    ///   as RFC 6184 section 5.4 requires; the interleaved mode's types
    ///   drop the access unit.
    /// - H.265: single NAL unit packets, APs and FUs, the access unit in
    ///   Annex B form as for H.264; types 51 to 63 are ignored, a PACI drops
    ///   the access unit.
    ///
    /// A gap or a malformed packet drops the frame it belongs to (counted
    /// in [`Depacketizer::discarded`]), as does a frame longer than
    /// `max_frame` or an empty one.
    pub fn push(&mut self, packet: PacketInfo, payload: &[u8], frame: &mut impl FnMut(FrameInfo, &mut Vec<u8>)) {
        let order = self.sequence.take(packet.sequence_number);
        match &mut self.receiving {
            Receiving::Audio => audio::push(order, packet, payload, &mut self.frame, frame),
            Receiving::Vp8(r) => r.push(order, packet, payload, &mut self.frame, frame),
            Receiving::Vp9(r) => r.push(order, packet, payload, &mut self.frame, frame),
            Receiving::Av1(r) => r.push(order, packet, payload, &mut self.frame, frame),
            Receiving::H264(r) => r.push(order, packet, payload, &mut self.frame, frame),
            Receiving::H265(r) => r.push(order, packet, payload, &mut self.frame, frame),
        }
    }

    /// Frames dropped so far: for a gap, a malformed packet, or a length
    /// over `max_frame`.
    pub fn discarded(&self) -> u64 {
        self.frame.discarded
    }
}

/// Helpers for the unit tests of the formats.
#[cfg(test)]
mod testing {
    use super::*;

    /// Every payload of `frame` with its marker bit.
    pub(crate) fn packetize(p: &mut Packetizer, frame: &[u8]) -> Result<Vec<(Vec<u8>, bool)>, Error> {
        let count = p.begin(frame)?;
        let mut out = vec![0; p.max_payload()];
        let mut packets = Vec::new();
        while let Some(payload) = p.next(frame, &mut out) {
            assert!(payload.len <= p.max_payload());
            packets.push((out[..payload.len].to_vec(), payload.marker));
        }
        assert_eq!(packets.len(), count, "begin's count");
        assert!(packets.iter().rev().skip(1).all(|(_, m)| !m), "the marker only on the last packet");
        assert!(packets.last().is_some_and(|(_, m)| *m), "the marker on the last packet");
        Ok(packets)
    }

    /// The frames one packet completes, with their key-frame flag.
    pub(crate) fn push(d: &mut Depacketizer, seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Vec<(Vec<u8>, bool)> {
        let mut out = Vec::new();
        let packet = PacketInfo { sequence_number: seq, timestamp: ts, marker };
        d.push(packet, payload, &mut |info: FrameInfo, f: &mut Vec<u8>| out.push((std::mem::take(f), info.key_frame)));
        out
    }

    /// Pushes packets with consecutive sequence numbers from `seq`, all of
    /// timestamp `ts`; the frames they complete.
    pub(crate) fn receive(
        d: &mut Depacketizer,
        seq: u16,
        ts: u32,
        packets: &[(Vec<u8>, bool)],
    ) -> Vec<(Vec<u8>, bool)> {
        let mut frames = Vec::new();
        for (i, (p, m)) in packets.iter().enumerate() {
            frames.extend(push(d, seq.wrapping_add(i as u16), ts, *m, p));
        }
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_of_sdp_codecs() {
        let none = |_: &str| None;
        for name in ["opus", "OPUS", "PCMU", "pcma", "G722", "telephone-event", "L16"] {
            assert_eq!(Format::for_codec(name, true, none), Some(Format::Audio), "{name}");
        }
        assert_eq!(Format::for_codec("opus", false, none), Some(Format::Audio));
        assert_eq!(Format::for_codec("vp8", false, none), Some(Format::Vp8));
        // RFC 6184 section 8.1: packetization-mode absent is mode 0.
        let single = Some(Format::H264 { mode: H264Mode::SingleNal });
        let non_interleaved = Some(Format::H264 { mode: H264Mode::NonInterleaved });
        assert_eq!(Format::for_codec("H264", false, none), single);
        let mode = |m: &'static str| move |k: &str| (k == "packetization-mode").then_some(m);
        assert_eq!(Format::for_codec("H264", false, mode("0")), single);
        assert_eq!(Format::for_codec("H264", false, mode("1")), non_interleaved);
        assert_eq!(Format::for_codec("H264", false, mode(" 1 ")), non_interleaved);
        for m in ["2", "", "one", "01"] {
            assert_eq!(Format::for_codec("H264", false, mode(m)), None, "interleaved or unknown mode {m:?}");
        }
        assert_eq!(Format::for_codec("VP9", false, none), Some(Format::Vp9));
        assert_eq!(Format::for_codec("AV1", false, none), Some(Format::Av1));
        assert_eq!(Format::for_codec("H265", false, none), Some(Format::H265));
        let fmtp = |k: &'static str, v: &'static str| move |n: &str| (n == k).then_some(v);
        assert_eq!(Format::for_codec("h265", false, fmtp("sprop-max-don-diff", "0")), Some(Format::H265));
        assert_eq!(Format::for_codec("H265", false, fmtp("sprop-max-don-diff", "1")), None);
        assert_eq!(Format::for_codec("H265", false, fmtp("tx-mode", "SRST")), Some(Format::H265));
        assert_eq!(Format::for_codec("H265", false, fmtp("tx-mode", "MRST")), None);
        for name in ["H266", "rtx", "red"] {
            assert_eq!(Format::for_codec(name, false, none), None, "{name}");
        }
    }

    #[test]
    fn max_payload_is_at_least_16() {
        assert_eq!(Packetizer::new(Format::Vp8, 0, 0).max_payload(), 16);
        assert_eq!(Packetizer::new(Format::Vp8, 1200, 0).max_payload(), 1200);
        let mut p = Packetizer::new(Format::Vp8, 5, 0);
        assert_eq!(p.begin(&[1; 24]).unwrap(), 2, "12 media octets a packet");
    }

    #[test]
    fn next_needs_the_frame_and_a_long_enough_buffer() {
        let frame = [0x10u8; 100];
        let mut p = Packetizer::new(Format::Vp8, 40, 0);
        let mut out = [0u8; 40];
        assert_eq!(p.next(&frame, &mut out), None, "nothing begun");
        assert_eq!(p.begin(&frame).unwrap(), 3);
        assert_eq!(p.next(&frame, &mut out[..39]), None, "shorter than max_payload");
        assert_eq!(p.next(&frame[1..], &mut out), None, "another frame");
        // Nothing changed: the first packet is still next.
        assert_eq!(p.next(&frame, &mut out), Some(Payload { len: 4 + 34, marker: false }));
        assert_eq!(out[0], 0x90, "S on the first packet");
        // A longer buffer is fine; only max_payload octets are written.
        let mut long = [0xeeu8; 100];
        assert_eq!(p.next(&frame, &mut long), Some(Payload { len: 4 + 33, marker: false }));
        assert_eq!(long[37..], [0xee; 63]);
        assert_eq!(p.next(&frame, &mut out), Some(Payload { len: 4 + 33, marker: true }));
        assert_eq!(p.next(&frame, &mut out), None);
        // A refused frame drops the one in progress.
        assert_eq!(p.begin(&frame).unwrap(), 3);
        assert_eq!(p.begin(&[]), Err(Error::Empty));
        assert_eq!(p.next(&[], &mut out), None);
        assert_eq!(p.next(&frame, &mut out), None);
    }

    #[test]
    fn errors_display() {
        assert_eq!(Error::Empty.to_string(), "empty frame");
        assert_eq!(Error::InvalidFrame("x").to_string(), "invalid frame: x");
        assert_eq!(
            Error::UnitTooLong { len: 2000, max: 1200 }.to_string(),
            "H.264 NAL unit of 2000 octets longer than a 1200-octet payload (packetization-mode 0)"
        );
    }
}
