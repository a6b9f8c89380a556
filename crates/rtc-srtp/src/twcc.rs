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

/// One transport feedback message, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportFeedback {
    /// The feedback's sender.
    pub sender_ssrc: u32,
    /// The media source (informational; feedback is transport-wide).
    pub media_ssrc: u32,
    /// The first sequence number covered.
    pub base_seq: u16,
    /// The reference time, in 64 ms units (24 bits).
    pub reference_time: u32,
    /// The feedback packet count.
    pub fb_count: u8,
    /// Each sequence number from `base_seq` on: its arrival relative to
    /// the reference time, in microseconds, or `None` when not received.
    pub arrivals: Vec<(u16, Option<i64>)>,
}

/// Reads the body (after the 4-octet RTCP header) of a transport feedback
/// packet. Status counts are capped at 65,535 by their field; a run-length
/// chunk cannot name more than the status count.
pub fn parse(body: &[u8]) -> Result<TransportFeedback, Error> {
    let need = |n: usize| if body.len() < n { Err(Error::Truncated("transport feedback")) } else { Ok(()) };
    need(16)?;
    let u16_at = |i: usize| u16::from_be_bytes([body[i], body[i + 1]]);
    let count = usize::from(u16_at(10));
    let base = u16_at(8);
    let mut symbols: Vec<u8> = Vec::with_capacity(count.min(body.len() * 7));
    let mut o = 16;
    while symbols.len() < count {
        need(o + 2)?;
        let c = u16_at(o);
        o += 2;
        if c & 0x8000 == 0 {
            // Run length chunk.
            let s = ((c >> 13) & 3) as u8;
            let run = usize::from(c & 0x1fff).min(count - symbols.len());
            symbols.extend(std::iter::repeat_n(s, run));
        } else if c & 0x4000 == 0 {
            for i in 0..14 {
                symbols.push(((c >> (13 - i)) & 1) as u8);
            }
        } else {
            for i in 0..7 {
                symbols.push(((c >> (12 - 2 * i)) & 3) as u8);
            }
        }
    }
    symbols.truncate(count);
    let mut t: i64 = 0;
    let mut arrivals = Vec::with_capacity(count);
    for (i, s) in symbols.iter().enumerate() {
        let seq = base.wrapping_add(i as u16);
        match s {
            1 => {
                need(o + 1)?;
                t += i64::from(body[o]);
                o += 1;
                arrivals.push((seq, Some(t * 250)));
            }
            2 => {
                need(o + 2)?;
                t += i64::from(u16_at(o) as i16);
                o += 2;
                arrivals.push((seq, Some(t * 250)));
            }
            0 => arrivals.push((seq, None)),
            _ => return Err(Error::Invalid("transport feedback status symbol 3 is reserved")),
        }
    }
    Ok(TransportFeedback {
        sender_ssrc: u32::from_be_bytes([body[0], body[1], body[2], body[3]]),
        media_ssrc: u32::from_be_bytes([body[4], body[5], body[6], body[7]]),
        base_seq: base,
        reference_time: u32::from_be_bytes([0, body[12], body[13], body[14]]),
        fb_count: body[15],
        arrivals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtcp::Compound;

    fn feedback(r: &mut TwccRecorder, now: Instant) -> Option<TransportFeedback> {
        let mut buf = [0u8; 1200];
        let mut w = Writer::new(&mut buf);
        if !r.write(now, 1, 2, &mut w).unwrap() {
            return None;
        }
        let p = Compound::new(w.finish()).next().unwrap().unwrap();
        assert_eq!((p.packet_type(), p.count()), (PacketType::RTPFB, FMT_TRANSPORT_CC));
        Some(parse(p.body()).unwrap())
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
