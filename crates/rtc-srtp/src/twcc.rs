//! Transport-wide congestion control feedback
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01), sans-IO: the
//! receiver side records each packet's transport-wide sequence number (the
//! RTP header extension of section 2) and arrival, and writes the RTCP
//! transport feedback of section 3.1 (RTPFB, FMT 15) that a sender's
//! bandwidth estimator reads; [`parse`] reads one back.
//!
//! Encoding: status vector chunks with two-bit symbols (section 3.1.4),
//! receive deltas in 250 µs units (one octet when 0 to 63.75 ms, else two,
//! signed), relative to the reference time (64 ms units, 24 bits) and then
//! to the previous received packet.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::rtcp::{PacketType, Writer};
use crate::{Error, SequenceUnwrapper};

/// The RTPFB format of transport feedback (section 3.1).
pub const FMT_TRANSPORT_CC: u8 = 15;
/// How often feedback goes out while packets arrive.
pub const FEEDBACK_INTERVAL: Duration = Duration::from_millis(100);
/// Arrivals waiting to be reported, at most; older ones are reported lost.
const MAX_PENDING: usize = 1024;
/// Packets one feedback message covers, at most.
const MAX_PER_FEEDBACK: usize = 400;

/// Records arrivals and writes transport feedback.
///
/// Call order: [`record`](Self::record) each received packet's
/// transport-wide sequence number; when [`poll_timeout`](Self::poll_timeout)
/// passes (or with many packets pending), [`write`](Self::write) a feedback
/// packet into a compound RTCP packet. Memory: at most 1024 arrivals.
#[derive(Debug)]
pub struct TwccRecorder {
    start: Instant,
    unwrap: SequenceUnwrapper,
    /// Arrivals not yet reported, in sequence order: (extended sequence
    /// number, arrival).
    pending: VecDeque<(u64, Instant)>,
    /// The first sequence number the next feedback starts from.
    next_base: Option<u64>,
    fb_count: u8,
    last_feedback: Option<Instant>,
}

impl TwccRecorder {
    /// A recorder whose reference times count from `start`.
    pub fn new(start: Instant) -> Self {
        Self {
            start,
            unwrap: SequenceUnwrapper::new(),
            pending: VecDeque::new(),
            next_base: None,
            fb_count: 0,
            last_feedback: None,
        }
    }

    /// A packet with transport-wide sequence number `seq` arrived at `now`.
    /// A number already reported, or seen, is ignored.
    pub fn record(&mut self, now: Instant, seq: u16) {
        let ext = self.unwrap.unwrap(seq);
        if self.next_base.is_some_and(|b| ext < b) {
            return;
        }
        let at = self.pending.partition_point(|(s, _)| *s < ext);
        if self.pending.get(at).is_some_and(|(s, _)| *s == ext) {
            return;
        }
        if self.pending.len() >= MAX_PENDING {
            // The oldest is reported lost: the base moves past it.
            if let Some((s, _)) = self.pending.pop_front() {
                self.next_base = Some(s + 1);
            }
            if self.next_base.is_some_and(|b| ext < b) {
                return;
            }
        }
        let at = self.pending.partition_point(|(s, _)| *s < ext);
        self.pending.insert(at, (ext, now));
    }

    /// Arrivals waiting to be reported.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// When feedback is next due: a feedback interval after the last one
    /// while arrivals wait.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.pending.is_empty() {
            return None;
        }
        Some(self.last_feedback.map_or(self.pending[0].1, |l| l + FEEDBACK_INTERVAL))
    }

    /// Writes one transport feedback packet about the arrivals pending into
    /// `w`, when due at `now`; returns whether it wrote one. A packet
    /// covers at most 400 sequence numbers, and what the room left in `w`
    /// allows; the rest goes in the next one.
    pub fn write(
        &mut self,
        now: Instant,
        sender_ssrc: u32,
        media_ssrc: u32,
        w: &mut Writer<'_>,
    ) -> Result<bool, Error> {
        if self.poll_timeout().is_none_or(|t| t > now) {
            return Ok(false);
        }
        let Some(&(first, first_at)) = self.pending.front() else { return Ok(false) };
        let base = self.next_base.map_or(first, |b| b.min(first));
        // Reference time: the first arrival, floored to 64 ms.
        let ticks = |t: Instant| (t.saturating_duration_since(self.start).as_micros() / 250) as i64;
        let reference = ticks(first_at) / 256;
        // Room: 20 octets of header and fixed fields, then per packet at
        // most 2 octets of delta and 2/7 of a chunk.
        let room = w.room().saturating_sub(4 + 16 + 4);
        let fit = (room * 7 / 16).min(MAX_PER_FEEDBACK);
        if fit == 0 {
            return Err(Error::NoTailRoom(24));
        }
        // Statuses from `base`, up to the last pending arrival that fits.
        let mut statuses: [u8; MAX_PER_FEEDBACK] = [0; MAX_PER_FEEDBACK];
        let mut deltas: [i16; MAX_PER_FEEDBACK] = [0; MAX_PER_FEEDBACK];
        let mut count = 0usize;
        let mut prev = reference * 256;
        let mut taken = 0usize;
        for &(seq, at) in &self.pending {
            let index = (seq - base) as usize;
            if index >= fit {
                break;
            }
            let t = ticks(at);
            let delta = t - prev;
            let Ok(d) = i16::try_from(delta) else { break };
            // Not received, in between.
            statuses[count..index].fill(0);
            statuses[index] = if (0..=255).contains(&d) { 1 } else { 2 };
            deltas[index] = d;
            count = index + 1;
            prev = t;
            taken += 1;
        }
        if taken == 0 {
            // The first arrival's delta cannot be written (cannot happen: it
            // defines the reference); drop it rather than stall.
            self.pending.pop_front();
            return Ok(false);
        }
        let chunks = count.div_ceil(7);
        let delta_octets: usize = statuses[..count].iter().map(|s| usize::from(*s)).sum();
        let body = (16 + 2 * chunks + delta_octets).div_ceil(4) * 4;
        let b = w.packet(FMT_TRANSPORT_CC, PacketType::RTPFB, body)?;
        b[0..4].copy_from_slice(&sender_ssrc.to_be_bytes());
        b[4..8].copy_from_slice(&media_ssrc.to_be_bytes());
        b[8..10].copy_from_slice(&(base as u16).to_be_bytes());
        b[10..12].copy_from_slice(&(count as u16).to_be_bytes());
        let r = (reference as u32) & 0x00ff_ffff;
        b[12..15].copy_from_slice(&r.to_be_bytes()[1..]);
        b[15] = self.fb_count;
        let mut o = 16;
        for c in statuses[..count].chunks(7) {
            // Status vector chunk, two-bit symbols (section 3.1.4).
            let mut v: u16 = 0xc000;
            for (i, s) in c.iter().enumerate() {
                v |= u16::from(*s) << (12 - 2 * i);
            }
            b[o..o + 2].copy_from_slice(&v.to_be_bytes());
            o += 2;
        }
        for (s, d) in statuses[..count].iter().zip(&deltas[..count]) {
            match s {
                1 => {
                    b[o] = *d as u8;
                    o += 1;
                }
                2 => {
                    b[o..o + 2].copy_from_slice(&d.to_be_bytes());
                    o += 2;
                }
                _ => {}
            }
        }
        b[o..].fill(0);
        self.fb_count = self.fb_count.wrapping_add(1);
        self.next_base = Some(base + count as u64);
        self.pending.drain(..taken);
        self.last_feedback = Some(now);
        Ok(true)
    }
}

/// One transport feedback message, read (and checked whole) without
/// allocating; [`TransportFeedback::arrivals`] walks its packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportFeedback<'a> {
    /// The feedback's sender.
    pub sender_ssrc: u32,
    /// The media source (informational; feedback is transport-wide).
    pub media_ssrc: u32,
    /// The first sequence number covered.
    pub base_seq: u16,
    /// How many sequence numbers it covers.
    pub status_count: u16,
    /// The reference time, in 64 ms units (24 bits).
    pub reference_time: u32,
    /// The feedback packet count.
    pub fb_count: u8,
    /// The packet chunks, then the receive deltas.
    rest: &'a [u8],
    /// Where the receive deltas start in `rest`.
    deltas_at: usize,
}

/// The status symbols of the chunks in `rest`, in order, at most `count`;
/// calls `each` with every symbol and returns the octets the chunks took.
fn walk_chunks(rest: &[u8], count: usize, mut each: impl FnMut(u8)) -> Result<usize, Error> {
    let mut n = 0;
    let mut o = 0;
    while n < count {
        let c = rest.get(o..o + 2).ok_or(Error::Truncated("transport feedback chunks"))?;
        let c = u16::from_be_bytes([c[0], c[1]]);
        o += 2;
        if c & 0x8000 == 0 {
            // Run length chunk.
            let s = ((c >> 13) & 3) as u8;
            let run = usize::from(c & 0x1fff).min(count - n);
            for _ in 0..run {
                each(s);
            }
            n += run;
        } else if c & 0x4000 == 0 {
            for i in 0..14.min(count - n) {
                each(((c >> (13 - i)) & 1) as u8);
            }
            n += 14.min(count - n);
        } else {
            for i in 0..7.min(count - n) {
                each(((c >> (12 - 2 * i)) & 3) as u8);
            }
            n += 7.min(count - n);
        }
    }
    Ok(o)
}

/// Reads the body (after the 4-octet RTCP header) of a transport feedback
/// packet, checking its chunks and deltas; allocates nothing.
pub fn parse(body: &[u8]) -> Result<TransportFeedback<'_>, Error> {
    if body.len() < 16 {
        return Err(Error::Truncated("transport feedback"));
    }
    let count = u16::from_be_bytes([body[10], body[11]]);
    let rest = &body[16..];
    let (mut delta_octets, mut reserved) = (0usize, false);
    let deltas_at = walk_chunks(rest, usize::from(count), |s| match s {
        1 | 2 => delta_octets += usize::from(s),
        3 => reserved = true,
        _ => {}
    })?;
    if reserved {
        return Err(Error::Invalid("transport feedback status symbol 3 is reserved"));
    }
    if rest.len() < deltas_at + delta_octets {
        return Err(Error::Truncated("transport feedback deltas"));
    }
    Ok(TransportFeedback {
        sender_ssrc: u32::from_be_bytes([body[0], body[1], body[2], body[3]]),
        media_ssrc: u32::from_be_bytes([body[4], body[5], body[6], body[7]]),
        base_seq: u16::from_be_bytes([body[8], body[9]]),
        status_count: count,
        reference_time: u32::from_be_bytes([0, body[12], body[13], body[14]]),
        fb_count: body[15],
        rest,
        deltas_at,
    })
}

impl TransportFeedback<'_> {
    /// Each sequence number from `base_seq` on, in order, with its arrival
    /// relative to the reference time in microseconds, or `None` when it
    /// was not received.
    pub fn arrivals(&self, mut each: impl FnMut(u16, Option<i64>)) {
        let (mut i, mut o, mut t) = (0u16, self.deltas_at, 0i64);
        let rest = self.rest;
        let _ = walk_chunks(rest, usize::from(self.status_count), |s| {
            let seq = self.base_seq.wrapping_add(i);
            i = i.wrapping_add(1);
            let d = match s {
                1 => rest.get(o).map(|b| {
                    o += 1;
                    i64::from(*b)
                }),
                2 => rest.get(o..o + 2).map(|b| {
                    o += 2;
                    i64::from(i16::from_be_bytes([b[0], b[1]]))
                }),
                _ => None,
            };
            match d {
                Some(d) => {
                    t += d;
                    each(seq, Some(t * 250));
                }
                None => each(seq, None),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtcp::Compound;

    fn feedback(r: &mut TwccRecorder, now: Instant) -> Option<Read> {
        let mut buf = [0u8; 1200];
        let mut w = Writer::new(&mut buf);
        if !r.write(now, 1, 2, &mut w).unwrap() {
            return None;
        }
        let p = Compound::new(w.finish()).next().unwrap().unwrap();
        assert_eq!((p.packet_type(), p.count()), (PacketType::RTPFB, FMT_TRANSPORT_CC));
        let f = parse(p.body()).unwrap();
        let mut arrivals = Vec::new();
        f.arrivals(|s, a| arrivals.push((s, a)));
        assert_eq!(arrivals.len(), usize::from(f.status_count));
        Some(Read { base_seq: f.base_seq, fb_count: f.fb_count, reference_time: f.reference_time, arrivals })
    }

    /// What a feedback packet said, collected.
    struct Read {
        base_seq: u16,
        fb_count: u8,
        reference_time: u32,
        arrivals: Vec<(u16, Option<i64>)>,
    }

    #[test]
    fn arrivals_and_gaps_come_back_as_written() {
        let t0 = Instant::now();
        let mut r = TwccRecorder::new(t0);
        let ms = |m: u64| t0 + Duration::from_millis(m) + Duration::from_micros(100);
        // 65534, 65535, 0 (wrap), a gap at 1, then 2 a long 87 ms later, and
        // 3 having overtaken it (a negative delta).
        r.record(ms(1000), 65534);
        r.record(ms(1001), 65535);
        r.record(ms(1003), 0);
        r.record(ms(1083), 3);
        r.record(ms(1090), 2);
        assert_eq!(r.poll_timeout(), Some(ms(1000)));
        let f = feedback(&mut r, ms(1100)).expect("due");
        assert_eq!((f.base_seq, f.fb_count, f.reference_time), (65534, 0, 1000 / 64));
        let base = i64::from(f.reference_time) * 64_000;
        let got: Vec<(u16, Option<i64>)> = f.arrivals.iter().map(|(s, a)| (*s, a.map(|a| (base + a) / 1000))).collect();
        let want =
            [(65534, Some(1000)), (65535, Some(1001)), (0, Some(1003)), (1, None), (2, Some(1090)), (3, Some(1083))];
        assert_eq!(got, want);
        assert_eq!(r.pending(), 0);
        assert_eq!(r.poll_timeout(), None);
        r.record(ms(1101), 1);
        assert_eq!(r.pending(), 0, "reported (lost) already");
        r.record(ms(1150), 4);
        assert_eq!(r.poll_timeout(), Some(ms(1100) + FEEDBACK_INTERVAL));
        assert!(feedback(&mut r, ms(1150)).is_none(), "not due yet");
        let f = feedback(&mut r, ms(1200)).expect("due");
        assert_eq!((f.base_seq, f.fb_count, f.arrivals.len()), (4, 1, 1));
    }

    #[test]
    fn many_arrivals_split_across_feedback_packets_and_pending_is_bounded() {
        let t0 = Instant::now();
        let mut r = TwccRecorder::new(t0);
        for i in 0..2000u16 {
            r.record(t0 + Duration::from_micros(u64::from(i) * 500), i);
        }
        assert_eq!(r.pending(), MAX_PENDING);
        let mut covered = 0;
        let mut now = t0 + Duration::from_secs(1);
        while let Some(f) = feedback(&mut r, now) {
            if covered == 0 {
                assert_eq!(f.base_seq, 2000 - MAX_PENDING as u16, "the oldest left pending as lost");
            }
            covered += f.arrivals.iter().filter(|(_, a)| a.is_some()).count();
            now += FEEDBACK_INTERVAL;
        }
        assert_eq!(covered, MAX_PENDING);
    }

    #[test]
    fn truncated_or_reserved_feedback_is_an_error() {
        assert!(parse(&[0; 15]).is_err());
        // One packet, a status vector chunk with symbol 3.
        let mut b = [0u8; 20];
        b[11] = 1;
        b[16..18].copy_from_slice(&0xf000u16.to_be_bytes());
        assert!(parse(&b).is_err());
        // Run length of 5 "small delta" with no deltas.
        b[16..18].copy_from_slice(&(0x2000u16 | 5).to_be_bytes());
        b[11] = 5;
        assert!(parse(&b[..18]).is_err());
    }
}
