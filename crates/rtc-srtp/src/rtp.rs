//! RTP packets (RFC 3550 section 5.1) with RFC 8285 header extensions: a
//! zero-copy checked view, a writer into a caller's buffer, and extended
//! sequence numbers.

use crate::Error;

/// Length of the fixed RTP header.
pub const HEADER_LEN: usize = 12;
/// The one-byte header extension profile (RFC 8285 section 4.2).
pub const ONE_BYTE_PROFILE: u16 = 0xBEDE;
/// The two-byte header extension profile, without its 4 `appbits` (RFC 8285 section 4.3).
pub const TWO_BYTE_PROFILE: u16 = 0x1000;

/// The length of the RTP header (fixed part, CSRC list and header
/// extension) at the start of `pkt`, checking the version and that the
/// header fits. Padding is not looked at (in SRTP it is encrypted).
#[inline]
pub fn header_len(pkt: &[u8]) -> Result<usize, Error> {
    if pkt.len() < HEADER_LEN {
        return Err(Error::Truncated("RTP header shorter than 12 octets"));
    }
    let b0 = pkt[0];
    if b0 >> 6 != 2 {
        return Err(Error::Invalid("RTP version is not 2"));
    }
    let mut len = HEADER_LEN + 4 * usize::from(b0 & 0x0f);
    if b0 & 0x10 != 0 {
        if pkt.len() < len + 4 {
            return Err(Error::Truncated("RTP header extension header"));
        }
        len += 4 + 4 * usize::from(u16::from_be_bytes([pkt[len + 2], pkt[len + 3]]));
    }
    if pkt.len() < len {
        return Err(Error::Truncated("RTP CSRC list or header extension"));
    }
    Ok(len)
}

/// A checked view of an RTP packet over any byte buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<T: AsRef<[u8]>> {
    buf: T,
    header_len: u16,
    payload_end: u16,
}

impl<T: AsRef<[u8]>> RtpPacket<T> {
    /// Checks the version, the CSRC list, the header extension and the
    /// padding against the buffer's length.
    #[inline]
    pub fn new_checked(buf: T) -> Result<Self, Error> {
        let b = buf.as_ref();
        if b.len() > usize::from(u16::MAX) {
            return Err(Error::Invalid("RTP packet longer than 65535 octets"));
        }
        let header_len = header_len(b)?;
        let mut payload_end = b.len();
        if b[0] & 0x20 != 0 {
            let pad = usize::from(b[b.len() - 1]);
            if pad == 0 || pad > b.len() - header_len {
                return Err(Error::Invalid("RTP padding count"));
            }
            payload_end -= pad;
        }
        Ok(Self { buf, header_len: header_len as u16, payload_end: payload_end as u16 })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buf
    }

    /// The whole packet.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// The version field (always 2 once checked).
    pub fn version(&self) -> u8 {
        self.b()[0] >> 6
    }

    /// The padding bit.
    pub fn has_padding(&self) -> bool {
        self.b()[0] & 0x20 != 0
    }

    /// The extension bit.
    pub fn has_extension(&self) -> bool {
        self.b()[0] & 0x10 != 0
    }

    /// The marker bit.
    pub fn marker(&self) -> bool {
        self.b()[1] & 0x80 != 0
    }

    /// The payload type.
    pub fn payload_type(&self) -> u8 {
        self.b()[1] & 0x7f
    }

    /// The sequence number.
    pub fn sequence_number(&self) -> u16 {
        u16::from_be_bytes([self.b()[2], self.b()[3]])
    }

    /// The RTP timestamp.
    pub fn timestamp(&self) -> u32 {
        u32::from_be_bytes([self.b()[4], self.b()[5], self.b()[6], self.b()[7]])
    }

    /// The synchronization source.
    pub fn ssrc(&self) -> u32 {
        u32::from_be_bytes([self.b()[8], self.b()[9], self.b()[10], self.b()[11]])
    }

    /// The number of contributing sources (0 to 15).
    pub fn csrc_count(&self) -> usize {
        usize::from(self.b()[0] & 0x0f)
    }

    /// The contributing sources.
    pub fn csrcs(&self) -> impl ExactSizeIterator<Item = u32> + '_ {
        self.b()[HEADER_LEN..HEADER_LEN + 4 * self.csrc_count()]
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }

    /// The header extension's profile and data, when the X bit is set.
    pub fn extension(&self) -> Option<(u16, &[u8])> {
        if !self.has_extension() {
            return None;
        }
        let at = HEADER_LEN + 4 * self.csrc_count();
        let b = self.b();
        Some((u16::from_be_bytes([b[at], b[at + 1]]), &b[at + 4..usize::from(self.header_len)]))
    }

    /// The RFC 8285 header extension elements (one-byte or two-byte form);
    /// empty when there is no extension or its profile is another one.
    pub fn extensions(&self) -> Extensions<'_> {
        match self.extension() {
            Some((ONE_BYTE_PROFILE, data)) => Extensions { data, two_byte: false, failed: false },
            Some((p, data)) if p & 0xfff0 == TWO_BYTE_PROFILE => Extensions { data, two_byte: true, failed: false },
            _ => Extensions { data: &[], two_byte: false, failed: false },
        }
    }

    /// Length of the header (fixed part, CSRCs and extension).
    pub fn header_len(&self) -> usize {
        usize::from(self.header_len)
    }

    /// The payload, without padding.
    pub fn payload(&self) -> &[u8] {
        &self.b()[usize::from(self.header_len)..usize::from(self.payload_end)]
    }

    /// The number of padding octets (including the count octet).
    pub fn padding_len(&self) -> usize {
        self.b().len() - usize::from(self.payload_end)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> RtpPacket<T> {
    /// Overwrites the data of the RFC 8285 extension element `id` with
    /// `data` of the same length (a retransmission's new transport-wide
    /// sequence number, say); false when there is no such element or its
    /// length differs.
    pub fn set_extension(&mut self, id: u8, data: &[u8]) -> bool {
        let Some((at, len, _)) = self.element(id) else { return false };
        if len != data.len() {
            return false;
        }
        self.buf.as_mut()[at..at + len].copy_from_slice(data);
        true
    }

    /// Gives the RFC 8285 extension element `id` the identifier `to`, its
    /// data unchanged (a retransmission's RtpStreamId becoming its
    /// RepairedRtpStreamId, RFC 8852 section 3.2); false when there is no
    /// such element or `to` does not fit the packet's form (1-14 in the
    /// one-byte form, 1-255 in the two-byte form).
    pub fn rename_extension(&mut self, id: u8, to: u8) -> bool {
        let Some((at, _, two_byte)) = self.element(id) else { return false };
        let b = self.buf.as_mut();
        match two_byte {
            true if to != 0 => b[at - 2] = to,
            false if (1..=14).contains(&to) => b[at - 1] = (to << 4) | (b[at - 1] & 0x0f),
            _ => return false,
        }
        true
    }

    /// Where element `id`'s data starts, its length, and whether the
    /// packet uses the two-byte form.
    fn element(&self, id: u8) -> Option<(usize, usize, bool)> {
        let (profile, _) = self.extension()?;
        let two_byte = match profile {
            ONE_BYTE_PROFILE => false,
            p if p & 0xfff0 == TWO_BYTE_PROFILE => true,
            _ => return None,
        };
        let start = HEADER_LEN + 4 * self.csrc_count() + 4;
        let end = usize::from(self.header_len);
        let b = self.buf.as_ref();
        let mut i = start;
        while i < end {
            if b[i] == 0 {
                i += 1;
                continue;
            }
            let (eid, len, at) = if two_byte {
                let &len = b.get(i + 1)?;
                (b[i], usize::from(len), i + 2)
            } else {
                if b[i] >> 4 == 15 {
                    return None;
                }
                (b[i] >> 4, usize::from(b[i] & 0x0f) + 1, i + 1)
            };
            if at + len > end {
                return None;
            }
            if eid == id {
                return Some((at, len, two_byte));
            }
            i = at + len;
        }
        None
    }
}

/// One RFC 8285 header extension element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension<'a> {
    /// The local identifier (1-14 in the one-byte form, 1-255 in the two-byte form).
    pub id: u8,
    /// The element's data.
    pub data: &'a [u8],
}

/// Iterator over RFC 8285 extension elements. Padding octets are skipped; a
/// one-byte element with ID 15 ends the list (RFC 8285 section 4.2); an
/// element running past the end yields one error and ends the iteration.
#[derive(Debug, Clone)]
pub struct Extensions<'a> {
    data: &'a [u8],
    two_byte: bool,
    failed: bool,
}

impl<'a> Iterator for Extensions<'a> {
    type Item = Result<Extension<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            let (&first, rest) = self.data.split_first()?;
            if first == 0 {
                self.data = rest;
                continue;
            }
            let (id, len, rest) = if self.two_byte {
                let Some((&len, rest)) = rest.split_first() else {
                    self.failed = true;
                    return Some(Err(Error::Truncated("two-byte extension element header")));
                };
                (first, usize::from(len), rest)
            } else {
                let id = first >> 4;
                if id == 15 {
                    self.data = &[];
                    return None;
                }
                (id, usize::from(first & 0x0f) + 1, rest)
            };
            if rest.len() < len {
                self.failed = true;
                self.data = &[];
                return Some(Err(Error::Truncated("extension element longer than the extension")));
            }
            let (data, rest) = rest.split_at(len);
            self.data = rest;
            return Some(Ok(Extension { id, data }));
        }
    }
}

/// The header fields of a packet to write.
#[derive(Debug, Clone, Copy, Default)]
pub struct RtpHeader<'a> {
    /// Marker bit.
    pub marker: bool,
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence_number: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// Synchronization source.
    pub ssrc: u32,
    /// Contributing sources (at most 15).
    pub csrcs: &'a [u32],
    /// Header extension elements.
    pub extensions: &'a [Extension<'a>],
}

impl RtpHeader<'_> {
    /// The length of the header these fields make: 12 octets, the CSRCs,
    /// and the extension block. Errors as [`RtpHeader::write`] would.
    pub fn header_len(&self) -> Result<usize, Error> {
        Ok(self.layout()?.0)
    }

    /// Checks the fields and returns (header length, one-byte form, extension words).
    fn layout(&self) -> Result<(usize, bool, usize), Error> {
        if self.csrcs.len() > 15 {
            return Err(Error::Invalid("more than 15 CSRCs"));
        }
        if self.payload_type > 0x7f {
            return Err(Error::Invalid("payload type above 127"));
        }
        let one_byte = self.extensions.iter().all(|e| (1..=14).contains(&e.id) && (1..=16).contains(&e.data.len()));
        let mut ext_len = 0usize;
        for e in self.extensions {
            if e.id == 0 || (!one_byte && e.data.len() > 255) {
                return Err(Error::Invalid("extension element ID 0 or longer than 255 octets"));
            }
            ext_len += if one_byte { 1 } else { 2 } + e.data.len();
        }
        let ext_words = ext_len.div_ceil(4);
        if ext_words > usize::from(u16::MAX) {
            return Err(Error::Invalid("header extension too long"));
        }
        let ext_total = if self.extensions.is_empty() { 0 } else { 4 + 4 * ext_words };
        Ok((HEADER_LEN + 4 * self.csrcs.len() + ext_total, one_byte, ext_words))
    }

    /// Writes the header, `payload` and `padding` padding octets (0 for
    /// none) into `out` and returns the packet's length. Extension elements
    /// use the one-byte form when every ID is 1-14 and every length 1-16,
    /// the two-byte form otherwise.
    pub fn write(&self, payload: &[u8], padding: u8, out: &mut [u8]) -> Result<usize, Error> {
        let hlen = self.header_len()?;
        let total = hlen + payload.len() + usize::from(padding);
        if out.len() < total {
            return Err(Error::NoTailRoom(total - out.len()));
        }
        out[hlen..hlen + payload.len()].copy_from_slice(payload);
        self.write_before(payload.len(), padding, out)
    }

    /// Writes the header into `out` in front of a payload of `payload_len`
    /// octets that is already in place right after it (at
    /// `out[self.header_len()?..]`), then `padding` padding octets, and returns the
    /// packet's length: a packetizer writes straight into the datagram
    /// buffer, with no copy.
    pub fn write_before(&self, payload_len: usize, padding: u8, out: &mut [u8]) -> Result<usize, Error> {
        let (hlen, one_byte, ext_words) = self.layout()?;
        let total = hlen + payload_len + usize::from(padding);
        if out.len() < total {
            return Err(Error::NoTailRoom(total - out.len()));
        }
        let has_ext = !self.extensions.is_empty();
        out[0] = 0x80 | if padding > 0 { 0x20 } else { 0 } | if has_ext { 0x10 } else { 0 } | self.csrcs.len() as u8;
        out[1] = if self.marker { 0x80 } else { 0 } | self.payload_type;
        out[2..4].copy_from_slice(&self.sequence_number.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        let mut at = HEADER_LEN;
        for c in self.csrcs {
            out[at..at + 4].copy_from_slice(&c.to_be_bytes());
            at += 4;
        }
        if has_ext {
            let profile = if one_byte { ONE_BYTE_PROFILE } else { TWO_BYTE_PROFILE };
            out[at..at + 2].copy_from_slice(&profile.to_be_bytes());
            out[at + 2..at + 4].copy_from_slice(&(ext_words as u16).to_be_bytes());
            at += 4;
            let end = at + 4 * ext_words;
            for e in self.extensions {
                if one_byte {
                    out[at] = (e.id << 4) | (e.data.len() as u8 - 1);
                    at += 1;
                } else {
                    out[at] = e.id;
                    out[at + 1] = e.data.len() as u8;
                    at += 2;
                }
                out[at..at + e.data.len()].copy_from_slice(e.data);
                at += e.data.len();
            }
            out[at..end].fill(0);
            at = end;
        }
        at += payload_len;
        if padding > 0 {
            let p = usize::from(padding);
            out[at..at + p - 1].fill(0);
            out[at + p - 1] = padding;
            at += p;
        }
        Ok(at)
    }
}

/// Extends 16-bit sequence numbers to 64 bits, counting rollovers: each
/// number is taken as the one closest to the highest seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SequenceUnwrapper {
    highest: Option<u64>,
}

impl SequenceUnwrapper {
    /// A fresh unwrapper.
    pub const fn new() -> Self {
        Self { highest: None }
    }

    /// The extended sequence number of `seq`. The first number starts at
    /// 2^16 + `seq` so that numbers a little before it stay representable.
    pub fn unwrap(&mut self, seq: u16) -> u64 {
        let Some(h) = self.highest else {
            let v = (1u64 << 16) | u64::from(seq);
            self.highest = Some(v);
            return v;
        };
        let delta = seq.wrapping_sub(h as u16) as i16;
        let v = h.wrapping_add_signed(i64::from(delta));
        if v > h {
            self.highest = Some(v);
        }
        v
    }

    /// The highest extended sequence number seen.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_extension_element_is_overwritten_in_place() {
        for (a, b) in [(3u8, 5u8), (3, 200)] {
            let ext = [Extension { id: a, data: &[1, 2, 3] }, Extension { id: b, data: &[7, 8] }];
            let h = RtpHeader { payload_type: 96, extensions: &ext, ..RtpHeader::default() };
            let mut buf = [0u8; 64];
            let n = h.write(b"payload", 0, &mut buf).unwrap();
            let mut p = RtpPacket::new_checked(&mut buf[..n]).unwrap();
            assert!(p.set_extension(b, &[9, 9]));
            assert!(!p.set_extension(b, &[9]), "another length");
            assert!(!p.set_extension(4, &[9, 9]), "no such element");
            let got: Vec<(u8, Vec<u8>)> = p.extensions().map(|e| e.map(|e| (e.id, e.data.to_vec())).unwrap()).collect();
            assert_eq!(got, vec![(a, vec![1, 2, 3]), (b, vec![9, 9])]);
            assert_eq!(p.payload(), b"payload");
        }
    }

    /// RFC 8852 section 3.2: a retransmission's RtpStreamId element becomes
    /// its RepairedRtpStreamId, in both forms.
    #[test]
    fn an_extension_element_is_renamed_in_place() {
        for (a, b, to) in [(3u8, 10u8, 11u8), (3, 200, 201)] {
            let ext = [Extension { id: a, data: &[1, 2, 3] }, Extension { id: b, data: b"h" }];
            let h = RtpHeader { payload_type: 96, extensions: &ext, ..RtpHeader::default() };
            let mut buf = [0u8; 64];
            let n = h.write(b"payload", 0, &mut buf).unwrap();
            let mut p = RtpPacket::new_checked(&mut buf[..n]).unwrap();
            assert!(p.rename_extension(b, to));
            assert!(!p.rename_extension(4, 5), "no such element");
            assert!(!p.rename_extension(a, 0), "id 0 is padding");
            let got: Vec<(u8, Vec<u8>)> = p.extensions().map(|e| e.map(|e| (e.id, e.data.to_vec())).unwrap()).collect();
            assert_eq!(got, vec![(a, vec![1, 2, 3]), (to, b"h".to_vec())]);
            assert_eq!(p.payload(), b"payload");
        }
        // The one-byte form has no room for 15 and up.
        let ext = [Extension { id: 10, data: b"h" }];
        let mut buf = [0u8; 64];
        let n = RtpHeader { extensions: &ext, ..RtpHeader::default() }.write(b"x", 0, &mut buf).unwrap();
        assert!(!RtpPacket::new_checked(&mut buf[..n]).unwrap().rename_extension(10, 16));
    }

    #[test]
    fn parse_with_csrcs_one_byte_extensions_and_padding() {
        let csrcs = [0x11111111, 0x22222222];
        let exts = [Extension { id: 1, data: &[0xaa] }, Extension { id: 3, data: &[1, 2, 3, 4] }];
        let h = RtpHeader {
            marker: true,
            payload_type: 111,
            sequence_number: 0xfffe,
            timestamp: 0xdeadbeef,
            ssrc: 0x12345678,
            csrcs: &csrcs,
            extensions: &exts,
        };
        let mut buf = [0u8; 128];
        let n = h.write(b"hello", 3, &mut buf).unwrap();
        let p = RtpPacket::new_checked(&buf[..n]).unwrap();
        assert_eq!(p.version(), 2);
        assert!(p.marker() && p.has_padding() && p.has_extension());
        assert_eq!(p.payload_type(), 111);
        assert_eq!(p.sequence_number(), 0xfffe);
        assert_eq!(p.timestamp(), 0xdeadbeef);
        assert_eq!(p.ssrc(), 0x12345678);
        assert_eq!(p.csrcs().collect::<Vec<_>>(), csrcs);
        assert_eq!(p.extension().unwrap().0, ONE_BYTE_PROFILE);
        let got: Vec<_> = p.extensions().map(Result::unwrap).collect();
        assert_eq!(got, exts);
        assert_eq!(p.payload(), b"hello");
        assert_eq!(p.padding_len(), 3);
    }

    #[test]
    fn two_byte_extensions() {
        let long = [7u8; 20];
        let exts = [Extension { id: 200, data: &long }, Extension { id: 2, data: &[] }];
        let h = RtpHeader { ssrc: 1, extensions: &exts, ..Default::default() };
        let mut buf = [0u8; 128];
        let n = h.write(b"", 0, &mut buf).unwrap();
        let p = RtpPacket::new_checked(&buf[..n]).unwrap();
        assert_eq!(p.extension().unwrap().0 & 0xfff0, TWO_BYTE_PROFILE);
        let got: Vec<_> = p.extensions().map(Result::unwrap).collect();
        assert_eq!(got, exts);
    }

    /// RFC 8285 section 4.2: padding octets between elements and ID 15 ending the list.
    #[test]
    fn one_byte_padding_and_terminator() {
        let mut pkt = vec![0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xbe, 0xde, 0, 2];
        pkt.extend_from_slice(&[0x10, 0xaa, 0, 0, 0x21, 1, 2, 0xf0]);
        let p = RtpPacket::new_checked(&pkt[..]).unwrap();
        let got: Vec<_> = p.extensions().collect();
        assert_eq!(got, vec![Ok(Extension { id: 1, data: &[0xaa] }), Ok(Extension { id: 2, data: &[1, 2] })]);
        // An element that runs past the extension is an error, once.
        let mut bad = pkt.clone();
        bad[16 + 4] = 0x2f;
        let p = RtpPacket::new_checked(&bad[..]).unwrap();
        let got: Vec<_> = p.extensions().collect();
        assert_eq!(got.len(), 2);
        assert!(got[1].is_err());
    }

    #[test]
    fn checked_lengths() {
        assert!(RtpPacket::new_checked(&[0x80u8; 11][..]).is_err());
        assert!(RtpPacket::new_checked(&[0x40u8; 12][..]).is_err(), "version 1");
        let mut p = [0u8; 12];
        p[0] = 0x81; // one CSRC, none present
        assert!(RtpPacket::new_checked(&p[..]).is_err());
        p[0] = 0x90; // extension bit, no extension
        assert!(RtpPacket::new_checked(&p[..]).is_err());
        let mut q = [0u8; 16];
        q[0] = 0x90;
        q[14..16].copy_from_slice(&1u16.to_be_bytes()); // one word promised, none there
        assert!(RtpPacket::new_checked(&q[..]).is_err());
        let mut r = [0u8; 14];
        r[0] = 0xa0;
        r[13] = 3; // padding larger than the payload
        assert!(RtpPacket::new_checked(&r[..]).is_err());
        r[13] = 0;
        assert!(RtpPacket::new_checked(&r[..]).is_err(), "zero padding count");
        r[13] = 2;
        assert_eq!(RtpPacket::new_checked(&r[..]).unwrap().payload(), &[] as &[u8]);
    }

    #[test]
    fn write_before_matches_write() {
        let ext = [Extension { id: 3, data: &[1, 2, 3] }];
        let h = RtpHeader {
            marker: true,
            payload_type: 96,
            sequence_number: 9,
            timestamp: 77,
            ssrc: 5,
            csrcs: &[1, 2],
            extensions: &ext,
        };
        let mut a = [0u8; 100];
        let n = h.write(b"payload", 2, &mut a).unwrap();
        let mut b = [0u8; 100];
        let hlen = h.header_len().unwrap();
        assert_eq!(hlen, 12 + 8 + 8);
        b[hlen..hlen + 7].copy_from_slice(b"payload");
        assert_eq!(h.write_before(7, 2, &mut b), Ok(n));
        assert_eq!(a[..n], b[..n]);
        assert_eq!(h.write_before(7, 0, &mut b[..hlen + 6]), Err(Error::NoTailRoom(1)));
    }

    #[test]
    fn writer_refuses_what_it_cannot_write() {
        let csrcs = [0u32; 16];
        let h = RtpHeader { csrcs: &csrcs, ..Default::default() };
        assert!(h.write(b"", 0, &mut [0u8; 200]).is_err());
        let h = RtpHeader::default();
        assert_eq!(h.write(b"abc", 0, &mut [0u8; 14]), Err(Error::NoTailRoom(1)));
    }

    #[test]
    fn sequence_unwrapping() {
        let mut u = SequenceUnwrapper::new();
        let a = u.unwrap(65534);
        assert_eq!(u.unwrap(65535), a + 1);
        assert_eq!(u.unwrap(0), a + 2);
        assert_eq!(u.unwrap(65533), a - 1, "a late packet from before the wrap");
        assert_eq!(u.unwrap(1), a + 3);
        assert_eq!(u.highest(), Some(a + 3));
        for i in 0..300_000u64 {
            u.unwrap((i as u16).wrapping_add(2));
        }
        assert_eq!(u.highest(), Some(a + 4 + 299_999));
    }
}
