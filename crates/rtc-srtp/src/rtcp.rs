//! RTCP compound packets (RFC 3550 section 6) and the feedback messages of
//! RFC 4585 (generic NACK, PLI), RFC 5104 (FIR) and REMB
//! (draft-alvestrand-rmcat-remb): an iterator over checked borrowed views,
//! and a writer into a caller's buffer.

use crate::Error;

/// An RTCP packet type (RFC 3550 section 12.1, RFC 4585 section 6.1);
/// unknown values are kept as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PacketType(pub u8);

impl PacketType {
    /// Sender report.
    pub const SR: Self = Self(200);
    /// Receiver report.
    pub const RR: Self = Self(201);
    /// Source description.
    pub const SDES: Self = Self(202);
    /// Goodbye.
    pub const BYE: Self = Self(203);
    /// Application-defined.
    pub const APP: Self = Self(204);
    /// Transport-layer feedback (RFC 4585).
    pub const RTPFB: Self = Self(205);
    /// Payload-specific feedback (RFC 4585).
    pub const PSFB: Self = Self(206);
}

/// RTPFB FMT of the generic NACK (RFC 4585 section 6.2.1).
pub const FMT_NACK: u8 = 1;
/// PSFB FMT of the picture loss indication (RFC 4585 section 6.3.1).
pub const FMT_PLI: u8 = 1;
/// PSFB FMT of the full intra request (RFC 5104 section 4.3.1).
pub const FMT_FIR: u8 = 4;
/// PSFB FMT of application-layer feedback, which carries REMB.
pub const FMT_AFB: u8 = 15;
/// SDES item type of the canonical name.
pub const SDES_CNAME: u8 = 1;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// One RTCP packet of a compound packet, with its length checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpPacket<'a> {
    raw: &'a [u8],
    body_end: usize,
}

impl<'a> RtcpPacket<'a> {
    /// The packet's octets, header and padding included.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The 5-bit count (RC, SC) or feedback message type (FMT).
    pub fn count(&self) -> u8 {
        self.raw[0] & 0x1f
    }

    /// The packet type.
    pub fn packet_type(&self) -> PacketType {
        PacketType(self.raw[1])
    }

    /// Octets after the 4-octet header, without padding.
    pub fn body(&self) -> &'a [u8] {
        &self.raw[4..self.body_end]
    }

    /// The typed message; types and formats this crate does not know are
    /// [`Rtcp::Other`], not errors.
    pub fn parse(&self) -> Result<Rtcp<'a>, Error> {
        let b = self.body();
        let need = |n: usize, what: &'static str| if b.len() < n { Err(Error::Truncated(what)) } else { Ok(()) };
        Ok(match (self.packet_type(), self.count()) {
            (PacketType::SR, rc) => {
                need(24 + 24 * usize::from(rc), "sender report")?;
                Rtcp::SenderReport(SenderReport {
                    ssrc: u32_at(b, 0),
                    info: SenderInfo {
                        ntp_time: (u64::from(u32_at(b, 4)) << 32) | u64::from(u32_at(b, 8)),
                        rtp_time: u32_at(b, 12),
                        packet_count: u32_at(b, 16),
                        octet_count: u32_at(b, 20),
                    },
                    reports: ReportBlocks { data: &b[24..24 + 24 * usize::from(rc)] },
                })
            }
            (PacketType::RR, rc) => {
                need(4 + 24 * usize::from(rc), "receiver report")?;
                Rtcp::ReceiverReport(ReceiverReport {
                    ssrc: u32_at(b, 0),
                    reports: ReportBlocks { data: &b[4..4 + 24 * usize::from(rc)] },
                })
            }
            (PacketType::SDES, sc) => Rtcp::SourceDescription(Sdes::new(b, sc)?),
            (PacketType::BYE, sc) => {
                let n = 4 * usize::from(sc);
                need(n, "BYE SSRC list")?;
                let reason = match b.get(n) {
                    Some(&len) => Some(b.get(n + 1..n + 1 + usize::from(len)).ok_or(Error::Truncated("BYE reason"))?),
                    None => None,
                };
                Rtcp::Goodbye(Bye { ssrcs: Ssrcs { data: &b[..n] }, reason })
            }
            (PacketType::APP, subtype) => {
                need(8, "APP packet")?;
                Rtcp::App(App { subtype, ssrc: u32_at(b, 0), name: [b[4], b[5], b[6], b[7]], data: &b[8..] })
            }
            (PacketType::RTPFB, FMT_NACK) => {
                need(8, "generic NACK")?;
                if !(b.len() - 8).is_multiple_of(4) {
                    return Err(Error::Invalid("generic NACK FCI is not a multiple of 4 octets"));
                }
                Rtcp::Nack(Nack { sender_ssrc: u32_at(b, 0), media_ssrc: u32_at(b, 4), fci: &b[8..] })
            }
            (PacketType::PSFB, FMT_PLI) => {
                need(8, "PLI")?;
                Rtcp::Pli(Pli { sender_ssrc: u32_at(b, 0), media_ssrc: u32_at(b, 4) })
            }
            (PacketType::PSFB, FMT_FIR) => {
                need(8, "FIR")?;
                if !(b.len() - 8).is_multiple_of(8) {
                    return Err(Error::Invalid("FIR FCI is not a multiple of 8 octets"));
                }
                Rtcp::Fir(Fir { sender_ssrc: u32_at(b, 0), fci: &b[8..] })
            }
            (PacketType::PSFB, FMT_AFB) if b.len() >= 16 && &b[8..12] == b"REMB" => {
                let n = usize::from(b[12]);
                need(16 + 4 * n, "REMB SSRC list")?;
                let exp = b[13] >> 2;
                let mantissa = (u64::from(b[13] & 3) << 16) | u64::from(u16_at(b, 14));
                Rtcp::Remb(Remb {
                    sender_ssrc: u32_at(b, 0),
                    bitrate: mantissa.checked_shl(u32::from(exp)).filter(|v| v >> exp == mantissa).unwrap_or(u64::MAX),
                    ssrcs: Ssrcs { data: &b[16..16 + 4 * n] },
                })
            }
            _ => Rtcp::Other(*self),
        })
    }
}

/// Iterates over the packets of a compound RTCP packet. A packet whose
/// header or length is malformed yields one error and ends the iteration
/// (the rest cannot be framed); packets of unknown types are yielded like
/// any other.
#[derive(Debug, Clone)]
pub struct Compound<'a> {
    rest: &'a [u8],
}

impl<'a> Compound<'a> {
    /// Iterates over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { rest: data }
    }
}

impl<'a> Iterator for Compound<'a> {
    type Item = Result<RtcpPacket<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let r = frame(self.rest);
        match r {
            Ok((p, rest)) => {
                self.rest = rest;
                Some(Ok(p))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

fn frame(data: &[u8]) -> Result<(RtcpPacket<'_>, &[u8]), Error> {
    if data.len() < 4 {
        return Err(Error::Truncated("RTCP header"));
    }
    if data[0] >> 6 != 2 {
        return Err(Error::Invalid("RTCP version is not 2"));
    }
    let len = 4 * (usize::from(u16_at(data, 2)) + 1);
    if data.len() < len {
        return Err(Error::Truncated("RTCP packet shorter than its length field"));
    }
    let (raw, rest) = data.split_at(len);
    let mut body_end = len;
    if raw[0] & 0x20 != 0 {
        let pad = usize::from(raw[len - 1]);
        if pad == 0 || pad > len - 4 {
            return Err(Error::Invalid("RTCP padding count"));
        }
        body_end -= pad;
    }
    Ok((RtcpPacket { raw, body_end }, rest))
}

/// A typed RTCP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rtcp<'a> {
    /// SR (RFC 3550 section 6.4.1).
    SenderReport(SenderReport<'a>),
    /// RR (RFC 3550 section 6.4.2).
    ReceiverReport(ReceiverReport<'a>),
    /// SDES (RFC 3550 section 6.5).
    SourceDescription(Sdes<'a>),
    /// BYE (RFC 3550 section 6.6).
    Goodbye(Bye<'a>),
    /// APP (RFC 3550 section 6.7).
    App(App<'a>),
    /// Generic NACK (RFC 4585 section 6.2.1).
    Nack(Nack<'a>),
    /// Picture loss indication (RFC 4585 section 6.3.1).
    Pli(Pli),
    /// Full intra request (RFC 5104 section 4.3.1).
    Fir(Fir<'a>),
    /// Receiver estimated maximum bitrate.
    Remb(Remb<'a>),
    /// A packet of another type or format, kept as it is.
    Other(RtcpPacket<'a>),
}

/// The sender information of an SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// NTP timestamp (64-bit fixed point, seconds since 1900).
    pub ntp_time: u64,
    /// RTP timestamp corresponding to `ntp_time`.
    pub rtp_time: u32,
    /// Packets sent.
    pub packet_count: u32,
    /// Payload octets sent.
    pub octet_count: u32,
}

/// A sender report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderReport<'a> {
    /// The sender's SSRC.
    pub ssrc: u32,
    /// Sender information.
    pub info: SenderInfo,
    /// Reception report blocks.
    pub reports: ReportBlocks<'a>,
}

/// A receiver report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverReport<'a> {
    /// The reporter's SSRC.
    pub ssrc: u32,
    /// Reception report blocks.
    pub reports: ReportBlocks<'a>,
}

/// One reception report block (RFC 3550 section 6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source reported on.
    pub ssrc: u32,
    /// Fraction lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed; duplicates can make it negative).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received (0 for none).
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 seconds.
    pub delay_since_last_sr: u32,
}

/// The report blocks of an SR or RR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlocks<'a> {
    data: &'a [u8],
}

impl<'a> ReportBlocks<'a> {
    /// Iterates over the blocks.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = ReportBlock> + 'a {
        self.data.chunks_exact(24).map(|c| {
            let lost = u32_at(c, 4) & 0x00ff_ffff;
            ReportBlock {
                ssrc: u32_at(c, 0),
                fraction_lost: c[4],
                cumulative_lost: ((lost << 8) as i32) >> 8,
                highest_seq: u32_at(c, 8),
                jitter: u32_at(c, 12),
                last_sr: u32_at(c, 16),
                delay_since_last_sr: u32_at(c, 20),
            }
        })
    }
}

/// A list of SSRCs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ssrcs<'a> {
    data: &'a [u8],
}

impl<'a> Ssrcs<'a> {
    /// Iterates over the SSRCs.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        self.data.chunks_exact(4).map(|c| u32_at(c, 0))
    }
}

/// An SDES packet: chunks of items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sdes<'a> {
    data: &'a [u8],
    count: u8,
}

/// One SDES chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesChunk<'a> {
    /// The source described.
    pub ssrc: u32,
    items: &'a [u8],
}

impl<'a> Sdes<'a> {
    /// Checks every chunk's framing up front, so iteration cannot fail.
    fn new(data: &'a [u8], count: u8) -> Result<Self, Error> {
        let mut rest = data;
        for _ in 0..count {
            let (_, r) = sdes_chunk(rest)?;
            rest = r;
        }
        Ok(Self { data, count })
    }

    /// The chunks.
    pub fn chunks(&self) -> impl Iterator<Item = SdesChunk<'a>> + 'a {
        let mut rest = self.data;
        (0..self.count).map_while(move |_| {
            let (c, r) = sdes_chunk(rest).ok()?;
            rest = r;
            Some(c)
        })
    }
}

fn sdes_chunk(data: &[u8]) -> Result<(SdesChunk<'_>, &[u8]), Error> {
    if data.len() < 4 {
        return Err(Error::Truncated("SDES chunk"));
    }
    let mut at = 4;
    loop {
        match data.get(at) {
            None => return Err(Error::Truncated("SDES items")),
            Some(0) => break,
            Some(_) => {
                let len = usize::from(*data.get(at + 1).ok_or(Error::Truncated("SDES item"))?);
                at += 2 + len;
            }
        }
    }
    let items = &data[4..at];
    // The null item, then padding to the next 32-bit boundary.
    let end = (at + 1).next_multiple_of(4);
    if data.len() < end {
        return Err(Error::Truncated("SDES chunk padding"));
    }
    Ok((SdesChunk { ssrc: u32_at(data, 0), items }, &data[end..]))
}

impl<'a> SdesChunk<'a> {
    /// The items as (type, value).
    pub fn items(&self) -> impl Iterator<Item = (u8, &'a [u8])> + 'a {
        let mut rest = self.items;
        std::iter::from_fn(move || {
            let (&t, r) = rest.split_first()?;
            let (&len, r) = r.split_first()?;
            let (v, r) = r.split_at_checked(usize::from(len))?;
            rest = r;
            Some((t, v))
        })
    }

    /// The CNAME item, if present.
    pub fn cname(&self) -> Option<&'a [u8]> {
        self.items().find(|(t, _)| *t == SDES_CNAME).map(|(_, v)| v)
    }
}

/// A BYE packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bye<'a> {
    /// The sources leaving.
    pub ssrcs: Ssrcs<'a>,
    /// The reason for leaving.
    pub reason: Option<&'a [u8]>,
}

/// An APP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct App<'a> {
    /// The 5-bit subtype.
    pub subtype: u8,
    /// The source.
    pub ssrc: u32,
    /// The four-character name.
    pub name: [u8; 4],
    /// Application data.
    pub data: &'a [u8],
}

/// A generic NACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nack<'a> {
    /// The SSRC of the packet's sender.
    pub sender_ssrc: u32,
    /// The SSRC of the media source with losses.
    pub media_ssrc: u32,
    fci: &'a [u8],
}

impl<'a> Nack<'a> {
    /// The (PID, BLP) pairs.
    pub fn pairs(&self) -> impl Iterator<Item = (u16, u16)> + 'a {
        self.fci.chunks_exact(4).map(|c| (u16_at(c, 0), u16_at(c, 2)))
    }

    /// Every sequence number reported lost, in order.
    pub fn lost(&self) -> impl Iterator<Item = u16> + 'a {
        self.pairs().flat_map(|(pid, blp)| {
            std::iter::once(pid)
                .chain((0..16u16).filter(move |i| blp & (1 << i) != 0).map(move |i| pid.wrapping_add(i + 1)))
        })
    }
}

/// A picture loss indication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pli {
    /// The SSRC of the packet's sender.
    pub sender_ssrc: u32,
    /// The SSRC of the media source.
    pub media_ssrc: u32,
}

/// A full intra request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fir<'a> {
    /// The SSRC of the packet's sender.
    pub sender_ssrc: u32,
    fci: &'a [u8],
}

impl<'a> Fir<'a> {
    /// The (media SSRC, command sequence number) entries.
    pub fn entries(&self) -> impl Iterator<Item = (u32, u8)> + 'a {
        self.fci.chunks_exact(8).map(|c| (u32_at(c, 0), c[4]))
    }
}

/// A receiver estimated maximum bitrate message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remb<'a> {
    /// The SSRC of the packet's sender.
    pub sender_ssrc: u32,
    /// Bits per second (saturating at `u64::MAX`).
    pub bitrate: u64,
    /// The media sources the estimate applies to.
    pub ssrcs: Ssrcs<'a>,
}

/// Writes a compound RTCP packet into a caller's buffer, one packet per call.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Writer<'a> {
    /// Writes into `buf` from its start.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// Octets written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The compound packet written so far.
    pub fn finish(self) -> &'a [u8] {
        &self.buf[..self.len]
    }

    /// Octets left in the buffer.
    pub fn room(&self) -> usize {
        self.buf.len() - self.len
    }

    /// Reserves a packet of `body` octets (a multiple of 4) with `count` in
    /// its header's count field, and returns the body to fill.
    pub(crate) fn packet(&mut self, count: u8, pt: PacketType, body: usize) -> Result<&mut [u8], Error> {
        self.begin(count, pt, body)
    }

    /// Reserves a packet of `body` octets (a multiple of 4) and writes its header.
    fn begin(&mut self, count: u8, pt: PacketType, body: usize) -> Result<&mut [u8], Error> {
        debug_assert_eq!(body % 4, 0);
        let total = 4 + body;
        if total / 4 - 1 > usize::from(u16::MAX) {
            return Err(Error::Invalid("RTCP packet too long"));
        }
        let end = self.len + total;
        if self.buf.len() < end {
            return Err(Error::NoTailRoom(end - self.buf.len()));
        }
        let p = &mut self.buf[self.len..end];
        p[0] = 0x80 | (count & 0x1f);
        p[1] = pt.0;
        p[2..4].copy_from_slice(&((total / 4 - 1) as u16).to_be_bytes());
        self.len = end;
        Ok(&mut p[4..])
    }

    fn report_blocks(out: &mut [u8], reports: &[ReportBlock]) {
        for (c, r) in out.chunks_exact_mut(24).zip(reports) {
            c[0..4].copy_from_slice(&r.ssrc.to_be_bytes());
            let lost = r.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32 & 0x00ff_ffff;
            c[4..8].copy_from_slice(&((u32::from(r.fraction_lost) << 24) | lost).to_be_bytes());
            c[8..12].copy_from_slice(&r.highest_seq.to_be_bytes());
            c[12..16].copy_from_slice(&r.jitter.to_be_bytes());
            c[16..20].copy_from_slice(&r.last_sr.to_be_bytes());
            c[20..24].copy_from_slice(&r.delay_since_last_sr.to_be_bytes());
        }
    }

    /// A sender report with up to 31 report blocks.
    pub fn sender_report(&mut self, ssrc: u32, info: &SenderInfo, reports: &[ReportBlock]) -> Result<(), Error> {
        if reports.len() > 31 {
            return Err(Error::Invalid("more than 31 report blocks"));
        }
        let b = self.begin(reports.len() as u8, PacketType::SR, 24 + 24 * reports.len())?;
        b[0..4].copy_from_slice(&ssrc.to_be_bytes());
        b[4..12].copy_from_slice(&info.ntp_time.to_be_bytes());
        b[12..16].copy_from_slice(&info.rtp_time.to_be_bytes());
        b[16..20].copy_from_slice(&info.packet_count.to_be_bytes());
        b[20..24].copy_from_slice(&info.octet_count.to_be_bytes());
        Self::report_blocks(&mut b[24..], reports);
        Ok(())
    }

    /// A receiver report with up to 31 report blocks.
    pub fn receiver_report(&mut self, ssrc: u32, reports: &[ReportBlock]) -> Result<(), Error> {
        if reports.len() > 31 {
            return Err(Error::Invalid("more than 31 report blocks"));
        }
        let b = self.begin(reports.len() as u8, PacketType::RR, 4 + 24 * reports.len())?;
        b[0..4].copy_from_slice(&ssrc.to_be_bytes());
        Self::report_blocks(&mut b[4..], reports);
        Ok(())
    }

    /// An SDES packet with one chunk holding a CNAME (at most 255 octets).
    pub fn sdes_cname(&mut self, ssrc: u32, cname: &[u8]) -> Result<(), Error> {
        if cname.len() > 255 {
            return Err(Error::Invalid("CNAME longer than 255 octets"));
        }
        let chunk = (4 + 2 + cname.len() + 1).next_multiple_of(4);
        let b = self.begin(1, PacketType::SDES, chunk)?;
        b[0..4].copy_from_slice(&ssrc.to_be_bytes());
        b[4] = SDES_CNAME;
        b[5] = cname.len() as u8;
        b[6..6 + cname.len()].copy_from_slice(cname);
        b[6 + cname.len()..].fill(0);
        Ok(())
    }

    /// A BYE for up to 31 sources with an optional reason (at most 255 octets).
    pub fn bye(&mut self, ssrcs: &[u32], reason: Option<&[u8]>) -> Result<(), Error> {
        if ssrcs.len() > 31 || reason.is_some_and(|r| r.len() > 255) {
            return Err(Error::Invalid("BYE with more than 31 SSRCs or a reason over 255 octets"));
        }
        let n = 4 * ssrcs.len();
        let body = n + reason.map_or(0, |r| (1 + r.len()).next_multiple_of(4));
        let b = self.begin(ssrcs.len() as u8, PacketType::BYE, body)?;
        for (c, s) in b.chunks_exact_mut(4).zip(ssrcs) {
            c.copy_from_slice(&s.to_be_bytes());
        }
        if let Some(r) = reason {
            b[n] = r.len() as u8;
            b[n + 1..n + 1 + r.len()].copy_from_slice(r);
            b[n + 1 + r.len()..].fill(0);
        }
        Ok(())
    }

    /// An APP packet; `data` must be a multiple of 4 octets.
    pub fn app(&mut self, subtype: u8, ssrc: u32, name: [u8; 4], data: &[u8]) -> Result<(), Error> {
        if !data.len().is_multiple_of(4) || subtype > 31 {
            return Err(Error::Invalid("APP data not a multiple of 4 octets, or subtype above 31"));
        }
        let b = self.begin(subtype, PacketType::APP, 8 + data.len())?;
        b[0..4].copy_from_slice(&ssrc.to_be_bytes());
        b[4..8].copy_from_slice(&name);
        b[8..].copy_from_slice(data);
        Ok(())
    }

    /// A generic NACK for the lost sequence numbers `lost` (in increasing
    /// order, modulo 2^16); numbers within 16 of a PID share its BLP.
    pub fn nack(&mut self, sender_ssrc: u32, media_ssrc: u32, lost: &[u16]) -> Result<(), Error> {
        let mut pairs = 0;
        let mut pid: Option<u16> = None;
        for &s in lost {
            match pid {
                Some(p) if (1..=16).contains(&s.wrapping_sub(p)) => {}
                _ => {
                    pairs += 1;
                    pid = Some(s);
                }
            }
        }
        if pairs == 0 {
            return Err(Error::Invalid("NACK without lost packets"));
        }
        let b = self.begin(FMT_NACK, PacketType::RTPFB, 8 + 4 * pairs)?;
        b[0..4].copy_from_slice(&sender_ssrc.to_be_bytes());
        b[4..8].copy_from_slice(&media_ssrc.to_be_bytes());
        let mut at = 4; // advanced to 8 by the first PID
        let mut pid: Option<u16> = None;
        for &s in lost {
            match pid {
                Some(p) if (1..=16).contains(&s.wrapping_sub(p)) => {
                    let bit = s.wrapping_sub(p) - 1;
                    let blp = u16_at(b, at + 2) | (1 << bit);
                    b[at + 2..at + 4].copy_from_slice(&blp.to_be_bytes());
                }
                _ => {
                    at += 4;
                    pid = Some(s);
                    b[at..at + 2].copy_from_slice(&s.to_be_bytes());
                    b[at + 2..at + 4].fill(0);
                }
            }
        }
        Ok(())
    }

    /// A picture loss indication.
    pub fn pli(&mut self, sender_ssrc: u32, media_ssrc: u32) -> Result<(), Error> {
        let b = self.begin(FMT_PLI, PacketType::PSFB, 8)?;
        b[0..4].copy_from_slice(&sender_ssrc.to_be_bytes());
        b[4..8].copy_from_slice(&media_ssrc.to_be_bytes());
        Ok(())
    }

    /// A full intra request with (media SSRC, command sequence number) entries.
    pub fn fir(&mut self, sender_ssrc: u32, entries: &[(u32, u8)]) -> Result<(), Error> {
        let b = self.begin(FMT_FIR, PacketType::PSFB, 8 + 8 * entries.len())?;
        b[0..4].copy_from_slice(&sender_ssrc.to_be_bytes());
        b[4..8].fill(0); // RFC 5104 section 4.3.1.2: the media source SSRC is 0
        for (c, (ssrc, seq)) in b[8..].chunks_exact_mut(8).zip(entries) {
            c[0..4].copy_from_slice(&ssrc.to_be_bytes());
            c[4] = *seq;
            c[5..8].fill(0);
        }
        Ok(())
    }

    /// A REMB for up to 255 media sources.
    pub fn remb(&mut self, sender_ssrc: u32, bitrate: u64, ssrcs: &[u32]) -> Result<(), Error> {
        if ssrcs.len() > 255 {
            return Err(Error::Invalid("REMB with more than 255 SSRCs"));
        }
        let mut exp = 0u8;
        while bitrate >> exp >= 1 << 18 {
            exp += 1;
        }
        let mantissa = (bitrate >> exp) as u32;
        let b = self.begin(FMT_AFB, PacketType::PSFB, 16 + 4 * ssrcs.len())?;
        b[0..4].copy_from_slice(&sender_ssrc.to_be_bytes());
        b[4..8].fill(0);
        b[8..12].copy_from_slice(b"REMB");
        b[12] = ssrcs.len() as u8;
        b[13] = (exp << 2) | (mantissa >> 16) as u8;
        b[14..16].copy_from_slice(&(mantissa as u16).to_be_bytes());
        for (c, s) in b[16..].chunks_exact_mut(4).zip(ssrcs) {
            c.copy_from_slice(&s.to_be_bytes());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(data: &[u8]) -> Vec<Rtcp<'_>> {
        Compound::new(data).map(|p| p.unwrap().parse().unwrap()).collect()
    }

    #[test]
    fn write_and_read_every_type() {
        let mut buf = [0u8; 1024];
        let mut w = Writer::new(&mut buf);
        let info = SenderInfo { ntp_time: 0x0102030405060708, rtp_time: 9, packet_count: 10, octet_count: 11 };
        let rb = ReportBlock {
            ssrc: 5,
            fraction_lost: 25,
            cumulative_lost: -3,
            highest_seq: 70_000,
            jitter: 12,
            last_sr: 0x03040506,
            delay_since_last_sr: 65536,
        };
        w.sender_report(1, &info, &[rb]).unwrap();
        w.receiver_report(2, &[rb, rb]).unwrap();
        w.sdes_cname(1, b"user@example.com").unwrap();
        w.bye(&[1, 2], Some(b"done")).unwrap();
        w.app(3, 1, *b"TEST", &[1, 2, 3, 4]).unwrap();
        w.nack(1, 5, &[100, 101, 116, 117, 65535, 3]).unwrap();
        w.pli(1, 5).unwrap();
        w.fir(1, &[(5, 7)]).unwrap();
        w.remb(1, 1_500_000, &[5, 6]).unwrap();
        let data = w.finish();
        let got = all(data);
        assert_eq!(got.len(), 9);
        let Rtcp::SenderReport(sr) = got[0] else { panic!("{:?}", got[0]) };
        assert_eq!((sr.ssrc, sr.info), (1, info));
        assert_eq!(sr.reports.iter().collect::<Vec<_>>(), vec![rb]);
        let Rtcp::ReceiverReport(rr) = got[1] else { panic!() };
        assert_eq!(rr.reports.iter().count(), 2);
        let Rtcp::SourceDescription(sdes) = got[2] else { panic!() };
        let chunks: Vec<_> = sdes.chunks().collect();
        assert_eq!((chunks.len(), chunks[0].ssrc, chunks[0].cname()), (1, 1, Some(&b"user@example.com"[..])));
        let Rtcp::Goodbye(bye) = got[3] else { panic!() };
        assert_eq!(bye.ssrcs.iter().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(bye.reason, Some(&b"done"[..]));
        let Rtcp::App(app) = got[4] else { panic!() };
        assert_eq!((app.subtype, app.ssrc, app.name, app.data), (3, 1, *b"TEST", &[1u8, 2, 3, 4][..]));
        let Rtcp::Nack(nack) = got[5] else { panic!() };
        assert_eq!(nack.media_ssrc, 5);
        assert_eq!(nack.lost().collect::<Vec<_>>(), vec![100, 101, 116, 117, 65535, 3]);
        assert_eq!(nack.pairs().count(), 3);
        assert_eq!(got[6], Rtcp::Pli(Pli { sender_ssrc: 1, media_ssrc: 5 }));
        let Rtcp::Fir(fir) = got[7] else { panic!() };
        assert_eq!(fir.entries().collect::<Vec<_>>(), vec![(5, 7)]);
        let Rtcp::Remb(remb) = got[8] else { panic!() };
        assert_eq!(remb.ssrcs.iter().collect::<Vec<_>>(), vec![5, 6]);
        // 1.5 Mbit/s needs an exponent: the mantissa keeps 18 bits.
        assert!(remb.bitrate <= 1_500_000 && 1_500_000 - remb.bitrate < 8);
    }

    #[test]
    fn unknown_types_are_kept_and_skipped() {
        let mut data = vec![0x80, 210, 0, 1, 1, 2, 3, 4]; // unknown type 210
        data.extend_from_slice(&[0x8f, 205, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2]); // RTPFB FMT 15
        data.extend_from_slice(&[0x81, 201, 0, 7]);
        data.extend_from_slice(&[0; 28]);
        let got = all(&data);
        assert_eq!(got.len(), 3);
        assert!(matches!(got[0], Rtcp::Other(p) if p.packet_type() == PacketType(210) && p.body() == [1, 2, 3, 4]));
        assert!(matches!(got[1], Rtcp::Other(p) if p.count() == 15));
        assert!(matches!(got[2], Rtcp::ReceiverReport(_)));
    }

    #[test]
    fn malformed_packets_are_errors() {
        // Length field past the end.
        assert!(Compound::new(&[0x80, 200, 0, 9, 0, 0, 0, 0]).next().unwrap().is_err());
        // Wrong version.
        assert!(Compound::new(&[0x40, 200, 0, 0]).next().unwrap().is_err());
        // Report count larger than the body.
        let p = Compound::new(&[0x82, 201, 0, 1, 0, 0, 0, 1]).next().unwrap().unwrap();
        assert!(p.parse().is_err());
        // Padding larger than the packet.
        assert!(Compound::new(&[0xa0, 201, 0, 1, 0, 0, 0, 9]).next().unwrap().is_err());
        // An SDES item running past the chunk.
        let p = Compound::new(&[0x81, 202, 0, 2, 0, 0, 0, 1, 1, 9, 0, 0]).next().unwrap().unwrap();
        assert!(p.parse().is_err());
        // After an error the iterator stops.
        let mut it = Compound::new(&[0x80, 200, 0, 9, 0, 0, 0, 0]);
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
    }

    #[test]
    fn writer_checks_room() {
        let mut buf = [0u8; 8];
        let mut w = Writer::new(&mut buf);
        assert_eq!(w.pli(1, 2).err(), Some(Error::NoTailRoom(4)));
        assert!(w.is_empty());
    }
}
