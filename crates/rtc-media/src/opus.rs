//! Ogg Opus (RFC 7845): one Opus stream in Ogg pages.

use std::io::{Read, Write};
use std::time::Duration;

use ogg::reading::{BasePacketReader, PageParser};
use ogg::{PacketWriteEndInfo, PacketWriter};

use crate::{MediaError, read_exact, read_or_end};

/// The most octets an Ogg packet may have, however many pages it spans
/// (1 MiB: an Opus packet is at most 61 440 octets (RFC 6716 section 3.4);
/// the rest leaves room for comment headers with pictures).
pub const MAX_OGG_PACKET: usize = 1 << 20;

/// The identification header (RFC 7845 section 5.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpusHead {
    /// Output channels (1 or 2 with mapping family 0).
    pub channels: u8,
    /// Samples (at 48 kHz) to drop from the start of the decoded output.
    pub pre_skip: u16,
    /// The sample rate of the original input (informational only).
    pub input_sample_rate: u32,
    /// Gain to apply to the output, Q7.8 dB.
    pub output_gain: i16,
    /// Channel mapping family (0: mono or stereo, one stream).
    pub mapping_family: u8,
    /// The channel mapping table (empty for family 0).
    pub mapping: Vec<u8>,
}

impl OpusHead {
    /// A header for `channels` (1 or 2) channels: pre-skip 312 (libopus's
    /// encoder delay), input 48 kHz, no gain, mapping family 0.
    pub fn new(channels: u8) -> Self {
        Self {
            channels,
            pre_skip: 312,
            input_sample_rate: 48_000,
            output_gain: 0,
            mapping_family: 0,
            mapping: Vec::new(),
        }
    }

    fn parse(p: &[u8]) -> Result<Self, MediaError> {
        if p.len() < 19 || &p[..8] != b"OpusHead" {
            return Err(MediaError::Invalid("not an Ogg Opus file (no OpusHead)"));
        }
        if p[8] >> 4 != 0 {
            return Err(MediaError::Invalid("OpusHead: unsupported major version"));
        }
        let channels = p[9];
        if channels == 0 {
            return Err(MediaError::Invalid("OpusHead: no channels"));
        }
        let mapping_family = p[18];
        let mapping = match mapping_family {
            0 if channels > 2 => {
                return Err(MediaError::Invalid("OpusHead: mapping family 0 with more than 2 channels"));
            }
            0 => Vec::new(),
            _ => p
                .get(19..21 + usize::from(channels))
                .ok_or(MediaError::Invalid("OpusHead: short mapping table"))?
                .to_vec(),
        };
        Ok(Self {
            channels,
            pre_skip: u16::from_le_bytes([p[10], p[11]]),
            input_sample_rate: u32::from_le_bytes([p[12], p[13], p[14], p[15]]),
            output_gain: i16::from_le_bytes([p[16], p[17]]),
            mapping_family,
            mapping,
        })
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut p = b"OpusHead".to_vec();
        p.push(1);
        p.push(self.channels);
        p.extend_from_slice(&self.pre_skip.to_le_bytes());
        p.extend_from_slice(&self.input_sample_rate.to_le_bytes());
        p.extend_from_slice(&self.output_gain.to_le_bytes());
        p.push(self.mapping_family);
        if self.mapping_family != 0 {
            p.extend_from_slice(&self.mapping);
        }
        p
    }
}

/// One Opus packet of an Ogg Opus file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpusPacket {
    /// The Opus packet.
    pub data: Vec<u8>,
    /// The granule position at its end: 48 kHz samples decoded by then,
    /// pre-skip included (RFC 7845 section 4). Counted from the packets'
    /// durations and set to each page's granule position at the page's end
    /// (but the last page's, which may trim the end).
    pub granule: u64,
    /// Its duration in 48 kHz samples (from its TOC, [`opus_packet_samples`]).
    pub samples: u32,
}

impl OpusPacket {
    /// The time from the start of the stream (pre-skip included) to its
    /// start, when it is to be played.
    pub fn start(&self) -> Duration {
        Duration::from_micros(self.granule.saturating_sub(u64::from(self.samples)).saturating_mul(1000) / 48)
    }
}

/// The duration of an Opus packet in 48 kHz samples from its TOC octet and
/// frame count (RFC 6716 section 3.1); `None` for an empty packet or a
/// code 3 packet without its frame count octet.
pub fn opus_packet_samples(packet: &[u8]) -> Option<u32> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    // Frame sizes in 48 kHz samples: SILK, hybrid, CELT configurations.
    let frame: u32 = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        12..=15 => [480, 960][usize::from(config % 2)],
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(packet.get(1)? & 0x3f),
    };
    Some(frame * frames)
}

/// Reads an Ogg Opus file packet by packet from any [`Read`]: the
/// identification and comment headers first, then the audio packets. Pages
/// of other logical streams (multiplexed into the same file) are skipped.
pub struct OggOpusReader<R> {
    reader: R,
    packets: BasePacketReader,
    head: OpusHead,
    serial: u32,
    /// Octets of pages read since the last packet was handed out.
    pending: usize,
    granule: u64,
}

impl<R> std::fmt::Debug for OggOpusReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OggOpusReader").field("head", &self.head).field("serial", &self.serial).finish_non_exhaustive()
    }
}

/// A packet as the `ogg` crate hands it out.
type RawPacket = ogg::Packet;

fn ogg_error(e: ogg::OggReadError) -> MediaError {
    match e {
        ogg::OggReadError::ReadError(e) => MediaError::Io(e),
        ogg::OggReadError::NoCapturePatternFound => MediaError::Invalid("Ogg: no page where one should start"),
        ogg::OggReadError::InvalidStreamStructVer(_) => MediaError::Invalid("Ogg: page version is not 0"),
        ogg::OggReadError::HashMismatch(..) => MediaError::Invalid("Ogg: page CRC mismatch"),
        _ => MediaError::Invalid("Ogg: pages out of order (continued packets or streams)"),
    }
}

impl<R: Read> OggOpusReader<R> {
    /// Reads the identification header (OpusHead) and the comment header
    /// (OpusTags) of the file's first logical stream.
    pub fn new(reader: R) -> Result<Self, MediaError> {
        let mut me = Self {
            reader,
            packets: BasePacketReader::new(),
            head: OpusHead::new(1),
            serial: 0,
            pending: 0,
            granule: 0,
        };
        let first = me.raw_packet()?.ok_or(MediaError::Truncated("the Ogg Opus headers"))?;
        me.head = OpusHead::parse(&first.data)?;
        me.serial = first.stream_serial();
        let tags = me.stream_packet()?.ok_or(MediaError::Truncated("the Ogg Opus headers"))?;
        if !tags.data.starts_with(b"OpusTags") {
            return Err(MediaError::Invalid("Ogg Opus: no OpusTags after OpusHead"));
        }
        Ok(me)
    }

    /// The identification header.
    pub fn head(&self) -> &OpusHead {
        &self.head
    }

    /// The next audio packet; `None` at the end of the file. Empty packets
    /// (which carry no audio) are skipped.
    pub fn next_packet(&mut self) -> Result<Option<OpusPacket>, MediaError> {
        while let Some(p) = self.stream_packet()? {
            if p.data.is_empty() {
                continue;
            }
            let samples = opus_packet_samples(&p.data)
                .ok_or(MediaError::Invalid("Opus: code 3 packet without its frame count"))?;
            self.granule = self.granule.saturating_add(u64::from(samples));
            if p.last_in_page() && !p.last_in_stream() && p.absgp_page() != u64::MAX {
                self.granule = p.absgp_page();
            }
            return Ok(Some(OpusPacket { data: p.data, granule: self.granule, samples }));
        }
        Ok(None)
    }

    /// The next packet of the Opus stream.
    fn stream_packet(&mut self) -> Result<Option<RawPacket>, MediaError> {
        while let Some(p) = self.raw_packet()? {
            if p.stream_serial() == self.serial {
                return Ok(Some(p));
            }
        }
        Ok(None)
    }

    /// The next packet of any stream, reading pages as needed.
    fn raw_packet(&mut self) -> Result<Option<RawPacket>, MediaError> {
        loop {
            if let Some(p) = self.packets.read_packet() {
                self.pending = 0;
                return Ok(Some(p));
            }
            let mut header = [0u8; 27];
            if !read_or_end(&mut self.reader, &mut header, "an Ogg page header")? {
                return Ok(None);
            }
            if &header[..4] != b"OggS" {
                return Err(MediaError::Invalid("Ogg: no page where one should start"));
            }
            let (mut parser, segments) = PageParser::new(header).map_err(ogg_error)?;
            let mut table = vec![0u8; segments]; // at most 255
            read_exact(&mut self.reader, &mut table, "an Ogg page's segment table")?;
            let body_len = parser.parse_segments(table); // at most 255 * 255
            self.pending += body_len;
            if self.pending > MAX_OGG_PACKET {
                return Err(MediaError::TooLarge {
                    what: "an Ogg packet",
                    len: self.pending as u64,
                    limit: MAX_OGG_PACKET as u64,
                });
            }
            let mut body = vec![0u8; body_len];
            read_exact(&mut self.reader, &mut body, "an Ogg page")?;
            let page = parser.parse_packet_data(body).map_err(ogg_error)?;
            self.packets.push_page(page).map_err(ogg_error)?;
        }
    }
}

impl<R: Read> Iterator for OggOpusReader<R> {
    type Item = Result<OpusPacket, MediaError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_packet().transpose()
    }
}

/// Writes an Ogg Opus file packet by packet to any [`Write`]: a page per
/// header, then pages of up to 50 packets (a second of 20 ms packets) with
/// the granule position at their end; [`OggOpusWriter::finish`] marks the
/// last page as the end of the stream.
pub struct OggOpusWriter<W: Write> {
    writer: PacketWriter<'static, W>,
    serial: u32,
    granule: u64,
    /// The last packet, held back so the end of the stream can be marked on it.
    held: Option<(Vec<u8>, u64)>,
    in_page: u32,
}

impl<W: Write> std::fmt::Debug for OggOpusWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OggOpusWriter")
            .field("serial", &self.serial)
            .field("granule", &self.granule)
            .finish_non_exhaustive()
    }
}

/// Packets on a page before it is closed.
const PACKETS_PER_PAGE: u32 = 50;

impl<W: Write> OggOpusWriter<W> {
    /// Writes the identification header `head` and a comment header (vendor
    /// `rtc-media`) as the logical stream `serial`.
    pub fn new(writer: W, head: &OpusHead, serial: u32) -> Result<Self, MediaError> {
        let mut writer = PacketWriter::new(writer);
        writer.write_packet(head.to_bytes(), serial, PacketWriteEndInfo::EndPage, 0)?;
        let vendor = b"rtc-media";
        let mut tags = b"OpusTags".to_vec();
        tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        tags.extend_from_slice(vendor);
        tags.extend_from_slice(&0u32.to_le_bytes());
        writer.write_packet(tags, serial, PacketWriteEndInfo::EndPage, 0)?;
        Ok(Self { writer, serial, granule: 0, held: None, in_page: 0 })
    }

    /// Writes an Opus packet; its duration (from its TOC) moves the granule
    /// position on.
    pub fn write_packet(&mut self, packet: &[u8]) -> Result<(), MediaError> {
        let samples = opus_packet_samples(packet)
            .ok_or(MediaError::Invalid("Opus: empty or code 3 packet without its frame count"))?;
        if packet.len() > MAX_OGG_PACKET {
            return Err(MediaError::TooLarge {
                what: "an Ogg packet",
                len: packet.len() as u64,
                limit: MAX_OGG_PACKET as u64,
            });
        }
        self.flush_held(false)?;
        self.granule += u64::from(samples);
        self.held = Some((packet.to_vec(), self.granule));
        Ok(())
    }

    /// The granule position after the packets written so far.
    pub fn granule(&self) -> u64 {
        self.granule
    }

    fn flush_held(&mut self, last: bool) -> Result<(), MediaError> {
        let Some((packet, granule)) = self.held.take() else { return Ok(()) };
        self.in_page += 1;
        let end = if last {
            PacketWriteEndInfo::EndStream
        } else if self.in_page >= PACKETS_PER_PAGE {
            self.in_page = 0;
            PacketWriteEndInfo::EndPage
        } else {
            PacketWriteEndInfo::NormalPacket
        };
        self.writer.write_packet(packet, self.serial, end, granule)?;
        Ok(())
    }

    /// Writes the last packet on a page marked as the end of the stream,
    /// flushes and returns the writer. (With no audio packet written the
    /// file ends after its headers, without an end-of-stream page.)
    pub fn finish(mut self) -> Result<W, MediaError> {
        self.flush_held(true)?;
        let mut w = self.writer.into_inner();
        w.flush()?;
        Ok(w)
    }
}
