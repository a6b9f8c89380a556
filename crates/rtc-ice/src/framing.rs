//! STUN and ChannelData on a byte stream: TURN over TCP or TLS (RFC 8656
//! section 12.5, RFC 8489 section 6.2.2).
//!
//! On a stream to a TURN server, STUN messages and ChannelData messages go
//! back to back without any other framing: a STUN message carries its own
//! length (20-octet header plus the length field, a multiple of 4), a
//! ChannelData message its payload length (4-octet header plus the length,
//! padded to a multiple of 4 over a stream). The first two bits tell them
//! apart (`00` STUN, `01` ChannelData; RFC 7983).
//!
//! [`Deframer`] takes the stream's bytes in chunks of any size and yields
//! whole messages, in place in its own buffer. It is bounded: a message
//! longer than its limit, or more buffered bytes than its cap, is an error
//! ([`Error::Framing`]), and so is anything that is neither STUN nor
//! ChannelData (a peer that sends that has lost the framing: the
//! connection must end). It never panics on input.
//!
//! ICE-TCP (RFC 6544 section 7.1) frames every message, STUN or not, as
//! RFC 4571 says: a 16-bit length in network order, then that many octets.
//! [`Deframer::rfc4571`] reads that framing the same way, and
//! [`frame_rfc4571`] writes it.

use crate::error::Error;
use crate::stun::HEADER_LEN;

/// The longest message the stream can express: a STUN message whose length
/// field is 65,532 (the largest multiple of 4) after its 20-octet header.
/// A ChannelData message is at most 4 + 65,535 + 1 octets of padding.
pub const MAX_STREAM_MESSAGE: usize = HEADER_LEN + 65_532;

const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];

/// Splits a TURN stream (TCP or TLS) into STUN and ChannelData messages.
///
/// Read into [`Deframer::spare`] and [`Deframer::commit`] the count read
/// (or hand chunks to [`Deframer::push`]), then take messages with
/// [`Deframer::next_message`] until it gives `Ok(None)`. The buffer never
/// holds more than [`Deframer::cap`] octets.
#[derive(Debug)]
pub struct Deframer {
    buf: Vec<u8>,
    /// Bytes before `start` were handed out already.
    start: usize,
    /// Bytes up to `end` are filled.
    end: usize,
    max_message: usize,
    /// RFC 4571 framing (ICE-TCP) rather than TURN's.
    rfc4571: bool,
}

impl Default for Deframer {
    fn default() -> Self {
        Self::new(MAX_STREAM_MESSAGE)
    }
}

impl Deframer {
    /// A deframer that takes messages of at most `max_message` octets
    /// (clamped to 4..=[`MAX_STREAM_MESSAGE`]); its buffer grows, on
    /// demand, up to twice that.
    pub fn new(max_message: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            end: 0,
            max_message: max_message.clamp(4, MAX_STREAM_MESSAGE),
            rfc4571: false,
        }
    }

    /// A deframer for an ICE-TCP connection (RFC 4571 framing): messages of
    /// any content, of at most `max_message` octets (clamped to
    /// 4..=[`MAX_RFC4571_MESSAGE`]), handed out without their length
    /// field. Empty frames are skipped.
    pub fn rfc4571(max_message: usize) -> Self {
        let max_message = max_message.clamp(4, MAX_RFC4571_MESSAGE) + 2;
        Self { buf: Vec::new(), start: 0, end: 0, max_message, rfc4571: true }
    }

    /// The most octets the deframer holds.
    pub fn cap(&self) -> usize {
        2 * self.max_message
    }

    /// The longest message taken.
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// Octets received and not yet handed out as messages.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Room to read into: at least `want` octets (fewer when the cap leaves
    /// less), or an error when the cap leaves none. Messages handed out are
    /// compacted away first. Pass the count read to [`Deframer::commit`].
    pub fn spare(&mut self, want: usize) -> Result<&mut [u8], Error> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let room = self.cap() - self.end;
        if room == 0 {
            return Err(Error::Framing("the stream's buffer is full"));
        }
        let target = self.end + want.clamp(1, room);
        if self.buf.len() < target {
            self.buf.resize(target, 0);
        }
        Ok(&mut self.buf[self.end..])
    }

    /// Says that `n` octets were read into [`Deframer::spare`]'s room
    /// (more than the room is an error).
    pub fn commit(&mut self, n: usize) -> Result<(), Error> {
        match self.end.checked_add(n) {
            Some(end) if end <= self.buf.len() => {
                self.end = end;
                Ok(())
            }
            _ => Err(Error::Framing("more octets committed than there was room for")),
        }
    }

    /// Appends a chunk of the stream. More than the cap holds is an error
    /// (nothing of the chunk is kept then).
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), Error> {
        if chunk.is_empty() {
            return Ok(());
        }
        if self.buffered() + chunk.len() > self.cap() {
            return Err(Error::Framing("the stream's buffer is full"));
        }
        let room = self.spare(chunk.len())?;
        room[..chunk.len()].copy_from_slice(chunk);
        self.commit(chunk.len())
    }

    /// The next whole message (its padding included for ChannelData), in
    /// place and mutable; `Ok(None)` until more bytes come. An error means
    /// the stream is not STUN and ChannelData, or a message is longer than
    /// the limit: end the connection.
    pub fn next_message(&mut self) -> Result<Option<&mut [u8]>, Error> {
        if self.rfc4571 {
            return self.next_rfc4571();
        }
        let Some(len) = message_len(&self.buf[self.start..self.end], self.max_message)? else {
            if self.start == self.end {
                // Nothing held: the buffer is released.
                (self.start, self.end) = (0, 0);
            }
            return Ok(None);
        };
        let at = self.start;
        self.start += len;
        Ok(Some(&mut self.buf[at..at + len]))
    }
}

impl Deframer {
    fn next_rfc4571(&mut self) -> Result<Option<&mut [u8]>, Error> {
        loop {
            let held = &self.buf[self.start..self.end];
            let Some(&[a, b]) = held.get(..2) else {
                if self.start == self.end {
                    (self.start, self.end) = (0, 0);
                }
                return Ok(None);
            };
            let len = usize::from(u16::from_be_bytes([a, b]));
            if len + 2 > self.max_message {
                return Err(Error::Framing("a message longer than the limit"));
            }
            if held.len() < len + 2 {
                return Ok(None);
            }
            let at = self.start + 2;
            self.start = at + len;
            if len > 0 {
                return Ok(Some(&mut self.buf[at..at + len]));
            }
        }
    }
}

/// The longest message RFC 4571 framing can carry.
pub const MAX_RFC4571_MESSAGE: usize = 65_535;

/// Appends `message` to `out` framed as RFC 4571 says (ICE-TCP): its
/// length in two octets, then the message. Longer than
/// [`MAX_RFC4571_MESSAGE`] is an error (nothing is appended then).
pub fn frame_rfc4571(message: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    let len = u16::try_from(message.len()).map_err(|_| Error::Framing("a message longer than RFC 4571 carries"))?;
    out.reserve(message.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(message);
    Ok(())
}

/// The length of the message at the start of `data`, its padding included,
/// once its header is there (`Ok(None)` before).
pub fn message_len(data: &[u8], max_message: usize) -> Result<Option<usize>, Error> {
    let Some(&first) = data.first() else { return Ok(None) };
    let len = match first >> 6 {
        0 => {
            let Some(head) = data.get(..8) else { return Ok(None) };
            if head[4..8] != MAGIC_COOKIE {
                return Err(Error::Framing("a STUN message without the magic cookie"));
            }
            let body = usize::from(u16::from_be_bytes([head[2], head[3]]));
            if body % 4 != 0 {
                return Err(Error::Framing("a STUN length that is not a multiple of 4"));
            }
            HEADER_LEN + body
        }
        1 => {
            let Some(head) = data.get(..4) else { return Ok(None) };
            if first > 0x4F {
                // 0x5000..=0x7FFF are reserved channel numbers (RFC 8656
                // section 12).
                return Err(Error::Framing("ChannelData on a reserved channel number"));
            }
            let payload = usize::from(u16::from_be_bytes([head[2], head[3]]));
            4 + payload.div_ceil(4) * 4
        }
        _ => return Err(Error::Framing("neither STUN nor ChannelData")),
    };
    if len > max_message {
        return Err(Error::Framing("a message longer than the limit"));
    }
    Ok((data.len() >= len).then_some(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stun(body: usize) -> Vec<u8> {
        let mut m = vec![0x01, 0x01, 0, 0, 0x21, 0x12, 0xA4, 0x42];
        m[2..4].copy_from_slice(&(body as u16).to_be_bytes());
        m.extend((0..12 + body).map(|i| i as u8));
        m
    }

    fn channel(len: usize) -> Vec<u8> {
        let mut m = vec![0x40, 0x01];
        m.extend_from_slice(&(len as u16).to_be_bytes());
        m.extend((0..len).map(|i| i as u8 ^ 0x5A));
        m.resize(4 + len.div_ceil(4) * 4, 0);
        m
    }

    /// The messages `d` takes from `stream` handed to it `chunk` octets at
    /// a time; nothing may be left over.
    fn read_in_chunks(mut d: Deframer, stream: &[u8], chunk: usize) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        for c in stream.chunks(chunk) {
            d.push(c).unwrap();
            while let Some(m) = d.next_message().unwrap() {
                got.push(m.to_vec());
            }
        }
        assert_eq!(d.buffered(), 0, "chunks of {chunk}: octets left over");
        got
    }

    /// Every way of cutting a stream of mixed messages into chunks yields
    /// the same messages.
    #[test]
    fn messages_come_whole_whatever_the_chunks() {
        let msgs = [stun(0), channel(1), channel(0), stun(8), channel(5), channel(8), stun(40)];
        let stream: Vec<u8> = msgs.concat();
        for chunk in 1..=stream.len() {
            assert_eq!(read_in_chunks(Deframer::default(), &stream, chunk), msgs, "chunks of {chunk}");
        }
        // Through spare/commit, a byte at a time.
        let mut d = Deframer::default();
        let mut got = 0;
        for b in &stream {
            let room = d.spare(1).unwrap();
            room[0] = *b;
            d.commit(1).unwrap();
            while d.next_message().unwrap().is_some() {
                got += 1;
            }
        }
        assert_eq!(got, msgs.len());
        assert!(d.commit(usize::MAX).is_err());
    }

    #[test]
    fn bad_framing_and_over_long_messages_are_errors() {
        for bad in [&[0x80u8, 0, 0, 0][..], &[0xC0, 1], &[0x50, 0, 0, 0], &[0x7F, 0xFF, 0, 0]] {
            let mut d = Deframer::default();
            d.push(bad).unwrap();
            assert!(d.next_message().is_err(), "{bad:?}");
        }
        let mut no_cookie = stun(4);
        no_cookie[4] = 0;
        let mut odd = stun(4);
        odd[3] = 5;
        for m in [no_cookie, odd] {
            let mut d = Deframer::default();
            d.push(&m).unwrap();
            assert!(d.next_message().is_err());
        }
        // A header announcing more than the limit fails at once, before the
        // body is buffered.
        let mut d = Deframer::new(100);
        d.push(&channel(200)[..4]).unwrap();
        assert_eq!(d.next_message(), Err(Error::Framing("a message longer than the limit")));
        let mut d = Deframer::new(100);
        d.push(&stun(96)[..8]).unwrap();
        assert!(d.next_message().is_err());
        let mut d = Deframer::new(100);
        d.push(&stun(80)).unwrap();
        assert_eq!(d.next_message().unwrap().map(|m| m.len()), Some(100));
    }

    /// RFC 4571 framing: any content, whatever the chunks; empty frames
    /// skipped; a length over the limit fails before its body comes.
    #[test]
    fn rfc4571_frames_come_whole_whatever_the_chunks() {
        let msgs: Vec<Vec<u8>> =
            vec![stun(8), vec![0x16, 0xfe, 0xfd, 1, 2], vec![0x80; 1200], vec![7], channel(3), vec![0xff; 3]];
        let mut stream = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            frame_rfc4571(m, &mut stream).unwrap();
            if i == 2 {
                frame_rfc4571(&[], &mut stream).unwrap();
            }
        }
        for chunk in [1, 2, 3, 7, 100, stream.len()] {
            let d = Deframer::rfc4571(MAX_RFC4571_MESSAGE);
            assert_eq!(read_in_chunks(d, &stream, chunk), msgs, "chunks of {chunk}");
        }
        assert!(frame_rfc4571(&vec![0; 65_536], &mut Vec::new()).is_err());
        let mut d = Deframer::rfc4571(1000);
        d.push(&1001u16.to_be_bytes()).unwrap();
        assert_eq!(d.next_message(), Err(Error::Framing("a message longer than the limit")));
        let mut d = Deframer::rfc4571(1000);
        let mut one = Vec::new();
        frame_rfc4571(&[1; 1000], &mut one).unwrap();
        d.push(&one).unwrap();
        assert_eq!(d.next_message().unwrap().map(|m| m.len()), Some(1000));
        // The buffer holds at most two whole messages.
        assert!(d.push(&vec![0; 2 * 1002 + 1]).is_err());
    }

    #[test]
    fn the_buffer_is_capped() {
        let mut d = Deframer::new(64);
        assert_eq!(d.cap(), 128);
        // Whole messages are taken, so the cap is never in the way of a
        // reader that drains.
        for _ in 0..100 {
            d.push(&channel(60)).unwrap();
            assert_eq!(d.next_message().unwrap().map(|m| m.len()), Some(64));
        }
        // A reader that does not drain hits the cap.
        let mut d = Deframer::new(64);
        d.push(&[0x40, 0x01, 0, 60]).unwrap();
        assert!(d.push(&[0u8; 200]).is_err());
        d.push(&[0u8; 124]).unwrap();
        assert!(d.spare(1).is_err());
        assert!(d.push(&[0]).is_err());
        assert!(d.buf.len() <= d.cap());
    }
}
