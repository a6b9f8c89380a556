//! H.264 and H.265 byte streams (ITU-T H.264 and H.265 Annex B): NAL units
//! after `00 00 01` start codes, as encoders (x264, x265, ffmpeg's `-f h264`
//! and `-f hevc`) and IP cameras write them, read one access unit at a
//! time, which is what a video track's `write_frame` takes.
//!
//! Where an access unit starts is found as the standards say: H.264 section
//! 7.4.1.2.3 and H.265 section 7.4.2.4.4. After the access unit has a coded
//! slice, the next access unit begins with the first of: an access unit
//! delimiter, a parameter set, a prefix SEI (and the other NAL unit types
//! those sections list), or a slice that is the first of its picture
//! (H.264 `first_mb_in_slice` 0; H.265 `first_slice_segment_in_pic_flag`
//! 1: in both the first bit after the NAL unit header).

use std::io::Read;

use crate::MediaError;

/// The largest NAL unit read: a longer one is [`MediaError::TooLarge`]
/// before it is held whole.
pub const MAX_NAL_UNIT: usize = 8 << 20;
/// The largest access unit read.
pub const MAX_ACCESS_UNIT: usize = 16 << 20;
/// Octets read from the file at once.
const CHUNK: usize = 64 << 10;

/// The codec of a byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NalCodec {
    /// H.264 / AVC: one-octet NAL unit headers.
    H264,
    /// H.265 / HEVC: two-octet NAL unit headers.
    H265,
}

/// One access unit: its NAL units in Annex B form, each after a 4-octet
/// start code (`00 00 00 01`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    /// The NAL units.
    pub data: Vec<u8>,
    /// Whether it holds a picture decodable on its own: H.264 an IDR slice
    /// (type 5); H.265 an IRAP slice (types 16 to 23: BLA, IDR, CRA).
    pub key: bool,
}

/// What a NAL unit is for access unit boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A coded slice; `first` when it is the first of its picture.
    Slice { first: bool, key: bool },
    /// A unit that, after a slice, starts the next access unit.
    Opens,
    /// Any other unit: it belongs to the access unit it follows.
    Follows,
}

fn role(codec: NalCodec, unit: &[u8]) -> Role {
    // The first bit after the header: first_mb_in_slice is ue(v), so 0 is
    // the single bit 1; first_slice_segment_in_pic_flag is that bit.
    let first_bit = |at: usize| unit.get(at).is_some_and(|b| b & 0x80 != 0);
    match codec {
        NalCodec::H264 => match unit[0] & 0x1f {
            t @ 1..=5 => Role::Slice { first: first_bit(1), key: t == 5 },
            // SEI, SPS, PPS, access unit delimiter, 14 to 18 (H.264
            // 7.4.1.2.3).
            6..=9 | 14..=18 => Role::Opens,
            _ => Role::Follows,
        },
        NalCodec::H265 => match (unit[0] >> 1) & 0x3f {
            t @ 0..=31 => Role::Slice { first: first_bit(2), key: (16..=23).contains(&t) },
            // VPS, SPS, PPS, access unit delimiter, prefix SEI, 41 to 44,
            // 48 to 55 (H.265 7.4.2.4.4).
            32..=35 | 39 | 41..=44 | 48..=55 => Role::Opens,
            _ => Role::Follows,
        },
    }
}

/// Reads access units from an H.264 or H.265 Annex B byte stream, a
/// chunk of the file at a time.
#[derive(Debug)]
pub struct AnnexBReader<R> {
    reader: R,
    codec: NalCodec,
    /// Octets read and not yet taken; once the first start code is found,
    /// from the start of the current NAL unit (after its start code).
    buf: Vec<u8>,
    /// Where the search for the next start code resumes in `buf`.
    scan: usize,
    /// The first start code was found.
    started: bool,
    /// The reader is at its end.
    eof: bool,
    /// The access unit being built, and whether it has a slice yet.
    unit: Vec<u8>,
    has_slice: bool,
    key: bool,
}

impl<R: Read> AnnexBReader<R> {
    /// A reader of `codec`'s byte stream. Nothing is read yet.
    pub fn new(reader: R, codec: NalCodec) -> Self {
        Self {
            reader,
            codec,
            buf: Vec::new(),
            scan: 0,
            started: false,
            eof: false,
            unit: Vec::new(),
            has_slice: false,
            key: false,
        }
    }

    /// The next access unit; `None` at the end of the stream.
    ///
    /// # Errors
    ///
    /// [`MediaError::Invalid`] when the stream does not start with a start
    /// code (leading zero octets are allowed), or a NAL unit header is
    /// malformed (forbidden bit set, too short); [`MediaError::TooLarge`]
    /// for a NAL unit over [`MAX_NAL_UNIT`] or an access unit over
    /// [`MAX_ACCESS_UNIT`]; [`MediaError::Io`] from the reader.
    pub fn next_access_unit(&mut self) -> Result<Option<AccessUnit>, MediaError> {
        loop {
            let Some(nal) = self.next_nal()? else {
                if self.unit.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(self.take()));
            };
            let header = match self.codec {
                NalCodec::H264 => 1,
                NalCodec::H265 => 2,
            };
            if nal.len() < header || nal[0] & 0x80 != 0 {
                return Err(MediaError::Invalid("a NAL unit header (forbidden bit set, or too short)"));
            }
            let role = role(self.codec, &nal);
            let opens = match role {
                Role::Slice { first, .. } => first,
                Role::Opens => true,
                Role::Follows => false,
            };
            let done = (opens && self.has_slice).then(|| self.take());
            if self.unit.len() + 4 + nal.len() > MAX_ACCESS_UNIT {
                return Err(MediaError::TooLarge {
                    what: "an access unit",
                    len: (self.unit.len() + 4 + nal.len()) as u64,
                    limit: MAX_ACCESS_UNIT as u64,
                });
            }
            self.unit.extend_from_slice(&[0, 0, 0, 1]);
            self.unit.extend_from_slice(&nal);
            if let Role::Slice { key, .. } = role {
                self.has_slice = true;
                self.key |= key;
            }
            if done.is_some() {
                return Ok(done);
            }
        }
    }

    fn take(&mut self) -> AccessUnit {
        let unit = AccessUnit { data: std::mem::take(&mut self.unit), key: self.key };
        self.has_slice = false;
        self.key = false;
        unit
    }

    /// Reads more of the file; false at its end.
    fn fill(&mut self) -> Result<bool, MediaError> {
        if self.eof {
            return Ok(false);
        }
        let at = self.buf.len();
        self.buf.resize(at + CHUNK, 0);
        let n = loop {
            match self.reader.read(&mut self.buf[at..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(at);
                    return Err(MediaError::Io(e));
                }
            }
        };
        self.buf.truncate(at + n);
        self.eof = n == 0;
        Ok(n > 0)
    }

    /// The next NAL unit, without trailing zero octets (a 4-octet start
    /// code's first, or trailing_zero_8bits).
    fn next_nal(&mut self) -> Result<Option<Vec<u8>>, MediaError> {
        while !self.started {
            match find_start_code(&self.buf) {
                Some(at) => {
                    if self.buf[..at].iter().any(|&b| b != 0) {
                        return Err(MediaError::Invalid("an Annex B byte stream (it must begin with a start code)"));
                    }
                    self.buf.drain(..at + 3);
                    self.started = true;
                }
                None => {
                    if self.buf.iter().any(|&b| b != 0) {
                        return Err(MediaError::Invalid("an Annex B byte stream (it must begin with a start code)"));
                    }
                    if !self.fill()? {
                        return Ok(None);
                    }
                }
            }
        }
        loop {
            if let Some(at) = find_start_code(&self.buf[self.scan..]).map(|i| i + self.scan) {
                let nal = trimmed(&self.buf[..at]).to_vec();
                self.buf.drain(..at + 3);
                self.scan = 0;
                if nal.is_empty() {
                    continue; // two start codes in a row
                }
                return Ok(Some(nal));
            }
            self.scan = self.buf.len().saturating_sub(2);
            if self.buf.len() > MAX_NAL_UNIT {
                return Err(MediaError::TooLarge {
                    what: "a NAL unit",
                    len: self.buf.len() as u64,
                    limit: MAX_NAL_UNIT as u64,
                });
            }
            if !self.fill()? {
                let nal = trimmed(&self.buf).to_vec();
                self.buf.clear();
                self.scan = 0;
                return Ok((!nal.is_empty()).then_some(nal));
            }
        }
    }
}

/// Where the first `00 00 01` in `b` starts.
fn find_start_code(b: &[u8]) -> Option<usize> {
    b.windows(3).position(|w| w == [0, 0, 1])
}

fn trimmed(unit: &[u8]) -> &[u8] {
    &unit[..unit.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An access unit's NAL units and its key flag.
    type Units = (Vec<Vec<u8>>, bool);

    fn read_all(codec: NalCodec, stream: &[u8]) -> Result<Vec<Units>, MediaError> {
        let mut r = AnnexBReader::new(stream, codec);
        let mut out = Vec::new();
        while let Some(au) = r.next_access_unit()? {
            out.push((split(&au.data), au.key));
        }
        Ok(out)
    }

    /// The NAL units of an access unit as the reader writes it.
    fn split(au: &[u8]) -> Vec<Vec<u8>> {
        let mut units: Vec<Vec<u8>> = Vec::new();
        let mut i = 0;
        while i < au.len() {
            assert_eq!(au[i..i + 4], [0, 0, 0, 1]);
            let end = au[i + 4..].windows(4).position(|w| w == [0, 0, 0, 1]).map_or(au.len(), |p| p + i + 4);
            units.push(au[i + 4..end].to_vec());
            i = end;
        }
        units
    }

    fn stream(units: &[&[u8]]) -> Vec<u8> {
        // Both start code lengths, trailing zeros after one unit.
        let mut s = vec![0, 0];
        for (i, u) in units.iter().enumerate() {
            s.extend_from_slice(if i % 2 == 0 { &[0, 0, 0, 1] } else { &[0, 0, 1] });
            s.extend_from_slice(u);
            if i == 1 {
                s.extend_from_slice(&[0, 0]);
            }
        }
        s
    }

    /// H.264 7.4.1.2.3: SPS, PPS and SEI open an access unit after a slice;
    /// a slice with first_mb_in_slice 0 (its first bit 1) does too, a
    /// later slice of the same picture does not.
    #[test]
    fn h264_access_units() {
        let (sps, pps, idr, idr2) = (&[0x67, 0x42, 1][..], &[0x68, 0xce][..], &[0x65, 0x88, 1][..], &[0x65, 0x10][..]);
        let (p1, p2, sei) = (&[0x41, 0x9a, 2][..], &[0x41, 0x9b][..], &[0x06, 5, 0x80][..]);
        let s = stream(&[sps, pps, idr, idr2, p1, sei, p2]);
        let got = read_all(NalCodec::H264, &s).unwrap();
        let want = vec![
            (vec![sps.to_vec(), pps.to_vec(), idr.to_vec(), idr2.to_vec()], true),
            (vec![p1.to_vec()], false),
            (vec![sei.to_vec(), p2.to_vec()], false),
        ];
        assert_eq!(got, want);
    }

    /// H.265 7.4.2.4.4: VPS, SPS, PPS and prefix SEI open an access unit
    /// after a slice; first_slice_segment_in_pic_flag 1 does too; a
    /// suffix SEI follows its picture.
    #[test]
    fn h265_access_units() {
        let (vps, sps, pps) = (&[0x40, 1, 0x0c][..], &[0x42, 1, 1][..], &[0x44, 1, 0xc1][..]);
        let (cra, cra2, suffix) = (&[0x2a, 1, 0xaf][..], &[0x2a, 1, 0x2f][..], &[0x50, 1, 7][..]);
        let (trail, prefix, trail2) = (&[0x02, 1, 0xd0][..], &[0x4e, 1, 5][..], &[0x02, 1, 0xc4][..]);
        let s = stream(&[vps, sps, pps, cra, cra2, suffix, trail, prefix, trail2]);
        let got = read_all(NalCodec::H265, &s).unwrap();
        let v = |u: &[&[u8]]| u.iter().map(|x| x.to_vec()).collect::<Vec<_>>();
        let want =
            vec![(v(&[vps, sps, pps, cra, cra2, suffix]), true), (v(&[trail]), false), (v(&[prefix, trail2]), false)];
        assert_eq!(got, want);
    }

    #[test]
    fn bad_streams_are_errors() {
        assert!(read_all(NalCodec::H264, &[]).unwrap().is_empty());
        assert!(read_all(NalCodec::H264, &[0, 0, 0]).unwrap().is_empty());
        assert!(matches!(read_all(NalCodec::H264, &[9, 0, 0, 1, 0x65, 0x88]), Err(MediaError::Invalid(_))));
        assert!(matches!(read_all(NalCodec::H264, &[0, 0, 1, 0xe5, 0x88]), Err(MediaError::Invalid(_))));
        assert!(matches!(read_all(NalCodec::H265, &[0, 0, 1, 0x26]), Err(MediaError::Invalid(_))));
        // A NAL unit over the budget is refused before it is held whole.
        let mut huge = vec![0, 0, 1, 0x65, 0x88];
        huge.resize(MAX_NAL_UNIT + CHUNK * 2, 7);
        assert!(matches!(read_all(NalCodec::H264, &huge), Err(MediaError::TooLarge { .. })));
    }

    /// Start codes split across reads are found: the file read one octet
    /// at a time gives the same access units.
    #[test]
    fn start_codes_across_reads() {
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let Some((first, rest)) = self.0.split_first() else { return Ok(0) };
                buf[0] = *first;
                self.0 = rest;
                Ok(1)
            }
        }
        let s = stream(&[&[0x67, 1], &[0x68, 2], &[0x65, 0x88, 0, 0, 3, 1], &[0x41, 0x9a], &[0x41, 0x9b]]);
        let mut whole = AnnexBReader::new(s.as_slice(), NalCodec::H264);
        let mut trickle = AnnexBReader::new(Trickle(&s), NalCodec::H264);
        let mut n = 0;
        loop {
            let (a, b) = (whole.next_access_unit().unwrap(), trickle.next_access_unit().unwrap());
            assert_eq!(a, b);
            if a.is_none() {
                break;
            }
            n += 1;
        }
        assert_eq!(n, 3);
    }
}
