//! IVF: a 32-octet file header, then per frame a 12-octet header (length,
//! timestamp) and the frame.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use crate::{MediaError, read_exact, read_or_end};

/// The most octets an IVF frame may claim (4 MiB); a larger claim is
/// [`MediaError::TooLarge`] before anything is allocated.
pub const MAX_IVF_FRAME: usize = 4 << 20;

/// The IVF file header (32 octets, little-endian).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IvfHeader {
    /// The codec: `VP80`, `VP90` (or another a reader passes through).
    pub fourcc: [u8; 4],
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// Time base denominator: timestamps count `scale / rate` seconds.
    pub rate: u32,
    /// Time base numerator.
    pub scale: u32,
    /// The number of frames the header claims (0 when the writer could not
    /// patch it in); readers do not rely on it.
    pub frame_count: u32,
}

impl IvfHeader {
    /// A header for `fourcc` frames of `width`x`height` whose timestamps
    /// count `scale / rate` seconds (e.g. 30, 1 for frame numbers at 30
    /// frames a second; 90000, 1 for RTP's video clock), frame count 0.
    pub fn new(fourcc: [u8; 4], width: u16, height: u16, rate: u32, scale: u32) -> Self {
        Self { fourcc, width, height, rate, scale, frame_count: 0 }
    }

    /// The time `timestamp` stands for (saturating; a zero rate counts as 1).
    pub fn time_of(&self, timestamp: u64) -> Duration {
        let nanos = u128::from(timestamp) * u128::from(self.scale) * 1_000_000_000 / u128::from(self.rate.max(1));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    fn to_bytes(&self) -> [u8; 32] {
        let mut h = [0u8; 32];
        h[..4].copy_from_slice(b"DKIF");
        h[6..8].copy_from_slice(&32u16.to_le_bytes());
        h[8..12].copy_from_slice(&self.fourcc);
        h[12..14].copy_from_slice(&self.width.to_le_bytes());
        h[14..16].copy_from_slice(&self.height.to_le_bytes());
        h[16..20].copy_from_slice(&self.rate.to_le_bytes());
        h[20..24].copy_from_slice(&self.scale.to_le_bytes());
        h[24..28].copy_from_slice(&self.frame_count.to_le_bytes());
        h
    }
}

/// One IVF frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IvfFrame {
    /// Its timestamp in the header's time base ([`IvfHeader::time_of`]).
    pub timestamp: u64,
    /// The encoded frame.
    pub data: Vec<u8>,
}

/// Reads an IVF file frame by frame from any [`Read`].
#[derive(Debug)]
pub struct IvfReader<R> {
    reader: R,
    header: IvfHeader,
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl<R: Read> IvfReader<R> {
    /// Reads the file header (`DKIF`, version 0; a header longer than 32
    /// octets has the rest skipped).
    pub fn new(mut reader: R) -> Result<Self, MediaError> {
        let mut h = [0u8; 32];
        read_exact(&mut reader, &mut h, "the IVF file header")?;
        if &h[..4] != b"DKIF" {
            return Err(MediaError::Invalid("not an IVF file (no DKIF signature)"));
        }
        if le16(&h, 4) != 0 {
            return Err(MediaError::Invalid("IVF version is not 0"));
        }
        let header_len = le16(&h, 6);
        if header_len < 32 {
            return Err(MediaError::Invalid("IVF header length below 32"));
        }
        let extra = u64::from(header_len - 32);
        if std::io::copy(&mut (&mut reader).take(extra), &mut std::io::sink())? < extra {
            return Err(MediaError::Truncated("the IVF file header"));
        }
        let header = IvfHeader {
            fourcc: [h[8], h[9], h[10], h[11]],
            width: le16(&h, 12),
            height: le16(&h, 14),
            rate: le32(&h, 16),
            scale: le32(&h, 20),
            frame_count: le32(&h, 24),
        };
        Ok(Self { reader, header })
    }

    /// The file header.
    pub fn header(&self) -> &IvfHeader {
        &self.header
    }

    /// The next frame; `None` at the end of the file (the file ending
    /// inside a frame is [`MediaError::Truncated`]).
    pub fn next_frame(&mut self) -> Result<Option<IvfFrame>, MediaError> {
        let mut h = [0u8; 12];
        if !read_or_end(&mut self.reader, &mut h, "an IVF frame header")? {
            return Ok(None);
        }
        let len = le32(&h, 0);
        if len as usize > MAX_IVF_FRAME {
            return Err(MediaError::TooLarge { what: "an IVF frame", len: len.into(), limit: MAX_IVF_FRAME as u64 });
        }
        let timestamp = u64::from_le_bytes([h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11]]);
        let mut data = vec![0u8; len as usize];
        read_exact(&mut self.reader, &mut data, "an IVF frame")?;
        Ok(Some(IvfFrame { timestamp, data }))
    }

    /// The reader, after the frames read so far.
    pub fn into_inner(self) -> R {
        self.reader
    }
}

impl<R: Read> Iterator for IvfReader<R> {
    type Item = Result<IvfFrame, MediaError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_frame().transpose()
    }
}

/// Writes an IVF file frame by frame to any [`Write`].
#[derive(Debug)]
pub struct IvfWriter<W: Write> {
    writer: W,
    frames: u32,
    /// Octets written, the header included (to find the header again).
    written: u64,
}

impl<W: Write> IvfWriter<W> {
    /// Writes the file header (its frame count as given, usually 0).
    pub fn new(mut writer: W, header: &IvfHeader) -> Result<Self, MediaError> {
        writer.write_all(&header.to_bytes())?;
        Ok(Self { writer, frames: 0, written: 32 })
    }

    /// Writes a frame with its timestamp (in the header's time base).
    pub fn write_frame(&mut self, timestamp: u64, frame: &[u8]) -> Result<(), MediaError> {
        if frame.len() > MAX_IVF_FRAME {
            return Err(MediaError::TooLarge {
                what: "an IVF frame",
                len: frame.len() as u64,
                limit: MAX_IVF_FRAME as u64,
            });
        }
        let mut h = [0u8; 12];
        h[..4].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        h[4..].copy_from_slice(&timestamp.to_le_bytes());
        self.writer.write_all(&h)?;
        self.writer.write_all(frame)?;
        self.frames = self.frames.saturating_add(1);
        self.written += 12 + frame.len() as u64;
        Ok(())
    }

    /// The number of frames written.
    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// Flushes and returns the writer; the header's frame count stays as
    /// it was written (for writers that cannot seek, such as pipes).
    pub fn finish(mut self) -> Result<W, MediaError> {
        self.writer.flush()?;
        Ok(self.writer)
    }
}

impl<W: Write + Seek> IvfWriter<W> {
    /// Patches the number of frames written into the header, flushes and
    /// returns the writer positioned at the end of the file.
    pub fn finish_seekable(mut self) -> Result<W, MediaError> {
        let end = self.writer.stream_position()?;
        let header_at = end.checked_sub(self.written).ok_or(MediaError::Invalid("the IVF writer's position moved"))?;
        self.writer.seek(SeekFrom::Start(header_at + 24))?;
        self.writer.write_all(&self.frames.to_le_bytes())?;
        self.writer.seek(SeekFrom::Start(end))?;
        self.finish()
    }
}

/// A VP8 key frame's width and height (RFC 6386 section 9.1: the frame
/// tag, the start code, then 14-bit sizes); `None` for anything else.
pub fn vp8_key_frame_size(frame: &[u8]) -> Option<(u16, u16)> {
    let f = frame.get(..10)?;
    if f[0] & 1 != 0 || f[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    Some((le16(f, 6) & 0x3fff, le16(f, 8) & 0x3fff))
}

/// A VP9 key frame's width and height (VP9 bitstream specification
/// section 6.2: the uncompressed header up to `frame_size()`); `None` for
/// anything else.
pub fn vp9_key_frame_size(frame: &[u8]) -> Option<(u16, u16)> {
    let mut bits = Bits { data: frame, at: 0 };
    if bits.read(2)? != 2 {
        return None; // frame_marker
    }
    let profile = bits.read(1)? | (bits.read(1)? << 1);
    if profile == 3 {
        bits.read(1)?; // reserved_zero
    }
    if bits.read(1)? == 1 || bits.read(1)? != 0 {
        return None; // show_existing_frame, or not a key frame
    }
    bits.read(2)?; // show_frame, error_resilient_mode
    if bits.read(24)? != 0x49_83_42 {
        return None; // frame_sync_code
    }
    // color_config()
    if profile >= 2 {
        bits.read(1)?; // ten_or_twelve_bit
    }
    let color_space = bits.read(3)?;
    if color_space != 7 {
        bits.read(1)?; // color_range
        if profile == 1 || profile == 3 {
            bits.read(3)?; // subsampling_x, subsampling_y, reserved_zero
        }
    } else if profile == 1 || profile == 3 {
        bits.read(1)?; // reserved_zero
    }
    let width = bits.read(16)? + 1;
    let height = bits.read(16)? + 1;
    Some((u16::try_from(width).ok()?, u16::try_from(height).ok()?))
}

/// Big-endian bits of a slice.
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: u32) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.at / 8)?;
            v = (v << 1) | u32::from((byte >> (7 - self.at % 8)) & 1);
            self.at += 1;
        }
        Some(v)
    }
}
