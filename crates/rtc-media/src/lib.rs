//! Media files for rtc: read and write IVF (VP8, VP9) and Ogg Opus (RFC 7845)
//! over any [`std::io::Read`] or [`std::io::Write`], so a track can be fed
//! from a file and a received track recorded to one; read H.264 and H.265
//! byte streams (Annex B) one access unit at a time.
//!
//! - [`IvfReader`] / [`IvfWriter`]: the 32-octet IVF file header
//!   ([`IvfHeader`]: fourcc, size, time base, frame count) and per frame a
//!   12-octet header (length, timestamp) and the frame.
//! - [`OggOpusReader`] / [`OggOpusWriter`]: Ogg pages (the `ogg` crate) of
//!   one Opus stream: the identification header ([`OpusHead`]), the comment
//!   header (OpusTags), then one Opus packet at a time with its granule
//!   position (48 kHz samples, RFC 7845 section 4).
//! - [`AnnexBReader`]: H.264 or H.265 ([`NalCodec`]) NAL units after start
//!   codes, grouped into access units ([`AccessUnit`]) where the standards
//!   put the boundaries, key pictures flagged.
//!
//! # Example
//!
//! ```
//! use std::io::Cursor;
//! use rtc_media::{IvfHeader, IvfReader, IvfWriter, OggOpusReader, OggOpusWriter, OpusHead};
//!
//! // Two VP8 frames at 30 frames a second into an in-memory IVF file.
//! let mut ivf = IvfWriter::new(Cursor::new(Vec::new()), &IvfHeader::new(*b"VP80", 160, 120, 30, 1))?;
//! ivf.write_frame(0, &[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a])?;
//! ivf.write_frame(1, &[0x31, 0x00, 0x00])?;
//! let file = ivf.finish_seekable()?.into_inner(); // the frame count patched in
//!
//! let mut reader = IvfReader::new(file.as_slice())?;
//! assert_eq!(reader.header().frame_count, 2);
//! let second = loop {
//!     let frame = reader.next_frame()?.expect("two frames");
//!     if frame.timestamp == 1 {
//!         break frame;
//!     }
//! };
//! assert_eq!(reader.header().time_of(second.timestamp).as_millis(), 33);
//!
//! // Opus: 20 ms packets (TOC 0xf8: CELT fullband, one frame) in Ogg.
//! let mut ogg = OggOpusWriter::new(Vec::new(), &OpusHead::new(2), 7)?;
//! for _ in 0..3 {
//!     ogg.write_packet(&[0xf8, 0xff, 0xfe])?;
//! }
//! let file = ogg.finish()?;
//! let mut reader = OggOpusReader::new(file.as_slice())?;
//! assert_eq!(reader.head().channels, 2);
//! let mut ends = Vec::new();
//! while let Some(p) = reader.next_packet()? {
//!     ends.push(p.granule);
//! }
//! assert_eq!(ends, [960, 1920, 2880]); // samples decoded by the end of each
//! # Ok::<(), rtc_media::MediaError>(())
//! ```
//!
//! # Guarantees
//!
//! - No `unsafe` code; malformed, truncated or hostile input is a
//!   [`MediaError`] naming what was wrong (a `&'static str`), never a panic.
//! - Every length a file claims is checked against a budget before
//!   anything is allocated for it: an IVF frame at most [`MAX_IVF_FRAME`]
//!   octets, an Ogg packet (however many pages it spans) at most
//!   [`MAX_OGG_PACKET`]; an Ogg page is at most 65 307 octets by its format;
//!   a NAL unit at most [`MAX_NAL_UNIT`], an access unit at most
//!   [`MAX_ACCESS_UNIT`].
//! - Readers read as they go (one frame or page at a time), so files of any
//!   length can be played; writers write as they go and need [`std::io::Seek`]
//!   only to patch the IVF frame count ([`IvfWriter::finish_seekable`]).
//! - Ogg pages' CRCs are checked on reading and written on writing.

#![forbid(unsafe_code)]

mod annexb;
mod ivf;
mod opus;

pub use annexb::{AccessUnit, AnnexBReader, MAX_ACCESS_UNIT, MAX_NAL_UNIT, NalCodec};
pub use ivf::{IvfFrame, IvfHeader, IvfReader, IvfWriter, MAX_IVF_FRAME, vp8_key_frame_size, vp9_key_frame_size};
pub use opus::{MAX_OGG_PACKET, OggOpusReader, OggOpusWriter, OpusHead, OpusPacket, opus_packet_samples};

/// Why a media file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The underlying reader or writer failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The file ended inside the named structure.
    #[error("truncated: the file ends inside {0}")]
    Truncated(&'static str),
    /// The named structure is not what the format says it must be.
    #[error("invalid: {0}")]
    Invalid(&'static str),
    /// The named structure claims more octets than its budget allows.
    #[error("too large: {what} claims {len} octets, more than the {limit} allowed")]
    TooLarge {
        /// What claimed the length.
        what: &'static str,
        /// The length it claimed.
        len: u64,
        /// The budget.
        limit: u64,
    },
}

/// Reads exactly `buf.len()` octets; the file ending first is
/// [`MediaError::Truncated`] naming `what`.
fn read_exact<R: std::io::Read>(r: &mut R, buf: &mut [u8], what: &'static str) -> Result<(), MediaError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => MediaError::Truncated(what),
        _ => MediaError::Io(e),
    })
}

/// Reads `buf.len()` octets, or none at a clean end of the file (`false`);
/// ending part way is [`MediaError::Truncated`] naming `what`.
fn read_or_end<R: std::io::Read>(r: &mut R, buf: &mut [u8], what: &'static str) -> Result<bool, MediaError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(MediaError::Truncated(what)),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(MediaError::Io(e)),
        }
    }
    Ok(true)
}
