//! A sans-IO RTP session (RFC 3550): sequence numbers and timestamps of the
//! streams it sends, reception statistics of the streams it receives (under
//! their W3C webrtc-stats names), round-trip times from report blocks, and
//! SR/RR generation on the RFC 3550 appendix A.7 interval.
//!
//! The session never reads a clock or a socket: every call takes `now`, RTCP
//! to send comes out of [`Session::poll_transmit`], the next deadline out of
//! [`Session::poll_timeout`] and notifications out of [`Session::poll_event`].

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::rtcp::{Compound, ReportBlock, Rtcp, SenderInfo, Writer};
use crate::rtp::{RtpHeader, RtpPacket, SequenceUnwrapper};
use crate::{Error, Extension};

/// Seconds between 1900-01-01 (NTP era 0) and 1970-01-01.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
/// IP + UDP overhead counted in the average RTCP packet size (RFC 3550 section 6.2).
const UDP_IP_OVERHEAD: f64 = 28.0;
/// RFC 3550 appendix A.7: the compensation for timer reconsideration, e - 3/2.
const COMPENSATION: f64 = std::f64::consts::E - 1.5;

/// Session options.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The SSRC that sends receiver reports when no local stream sends.
    pub rtcp_ssrc: u32,
    /// The canonical name put in SDES.
    pub cname: String,
    /// Session bandwidth in bits per second; RTCP gets 5% of it (RFC 3550 section 6.2).
    pub session_bandwidth: u32,
    /// Clock rate of each payload type received, for jitter.
    pub clock_rates: Vec<(u8, u32)>,
    /// The most incoming SSRCs tracked; packets of further ones are refused.
    pub max_incoming: usize,
    /// Seed for the randomization of the RTCP interval.
    pub seed: u64,
    /// Use the reduced minimum RTCP interval of RFC 3550 section 6.2, 360 s
    /// divided by the session bandwidth in kbit/s (0.36 s at 1 Mbit/s, never
    /// more than the fixed 5 s), with half of it before the first report,
    /// while media flows either way (a session where nothing was sent or
    /// received since its last report waits the fixed minimum: idle
    /// connections cost little). RFC 8834 section 4.1 requires WebRTC
    /// endpoints to support it; on by default. Off, the fixed minimum of 5 s
    /// (2.5 s before the first report) applies.
    pub reduced_minimum: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            rtcp_ssrc: 1,
            cname: String::new(),
            session_bandwidth: 1_000_000,
            clock_rates: Vec::new(),
            max_incoming: 64,
            seed: 0x5eed,
            reduced_minimum: true,
        }
    }
}

/// Statistics of a stream this session sends (webrtc-stats `outbound-rtp`
/// and, from the peer's report blocks, `remote-inbound-rtp`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct OutboundStats {
    /// `packetsSent`.
    pub packets_sent: u64,
    /// `bytesSent`: payload octets, without headers or padding.
    pub bytes_sent: u64,
    /// `packetsLost` as last reported by the receiver.
    pub packets_lost: i64,
    /// `fractionLost` as last reported by the receiver (0.0 to 1.0).
    pub fraction_lost: f64,
    /// `jitter` as last reported by the receiver, in seconds.
    pub jitter: f64,
    /// `roundTripTime` from the last report block with an LSR, in seconds.
    pub round_trip_time: Option<f64>,
}

/// Statistics of a stream this session receives (webrtc-stats `inbound-rtp`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct InboundStats {
    /// `packetsReceived`.
    pub packets_received: u64,
    /// `bytesReceived`: payload octets, without headers or padding.
    pub bytes_received: u64,
    /// `packetsLost` (RFC 3550 appendix A.3; negative with duplicates).
    pub packets_lost: i64,
    /// `fractionLost` over the last report interval (0.0 to 1.0).
    pub fraction_lost: f64,
    /// `jitter` in seconds (RFC 3550 appendix A.8).
    pub jitter: f64,
}

/// Something the application should know.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// The first packet of an incoming SSRC arrived.
    NewStream {
        /// The SSRC.
        ssrc: u32,
    },
    /// An incoming stream's CSRC list (its contributors) changed.
    ContributorsChanged {
        /// The stream.
        ssrc: u32,
        /// The new list.
        csrcs: Vec<u32>,
    },
    /// A source said goodbye.
    Bye {
        /// The SSRC leaving.
        ssrc: u32,
    },
}

#[derive(Debug)]
struct Outgoing {
    clock_rate: u32,
    seq: u16,
    timestamp_base: u32,
    last_rtp_time: u32,
    last_sent: Option<Instant>,
    sent_since_report: bool,
    /// An SR went out for it before its first packet ([`Session::announce`]).
    announced: bool,
    stats: OutboundStats,
}

impl Outgoing {
    fn sent(&mut self, now: Instant, timestamp: u32, payload_len: usize) {
        self.seq = self.seq.wrapping_add(1);
        self.last_rtp_time = timestamp;
        self.last_sent = Some(now);
        self.sent_since_report = true;
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += payload_len as u64;
    }
}

#[derive(Debug)]
struct Incoming {
    seq: SequenceUnwrapper,
    base: u64,
    received: u64,
    bytes: u64,
    expected_prior: u64,
    received_prior: u64,
    fraction_lost: u8,
    /// Jitter in timestamp units, times 16 (RFC 3550 appendix A.8).
    jitter_q4: u64,
    last_transit: Option<i64>,
    clock_rate: u32,
    csrcs: [u32; 15],
    csrc_count: u8,
    /// Middle 32 bits of the NTP time of the last SR, and when it arrived.
    last_sr: Option<(u32, Instant)>,
}

impl Incoming {
    fn expected(&self) -> u64 {
        self.seq.highest().map_or(0, |h| h - self.base + 1)
    }

    fn lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// The report block about this source, closing the interval for `fractionLost`.
    fn report(&mut self, ssrc: u32, now: Instant) -> ReportBlock {
        let expected = self.expected();
        let expected_interval = expected - self.expected_prior;
        let received_interval = self.received - self.received_prior;
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        self.fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        let (last_sr, delay) = match self.last_sr {
            Some((lsr, at)) => (lsr, (now.saturating_duration_since(at).as_secs_f64() * 65536.0) as u32),
            None => (0, 0),
        };
        ReportBlock {
            ssrc,
            fraction_lost: self.fraction_lost,
            cumulative_lost: self.lost().clamp(-0x80_0000, 0x7f_ffff) as i32,
            highest_seq: self.seq.highest().unwrap_or(0) as u32,
            jitter: (self.jitter_q4 >> 4) as u32,
            last_sr,
            delay_since_last_sr: delay,
        }
    }
}

/// The RTP session.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    start: Instant,
    start_ntp: u64,
    outgoing: HashMap<u32, Outgoing>,
    incoming: HashMap<u32, Incoming>,
    /// The keys of `outgoing` and `incoming`, sorted (reports list them in
    /// this order, without sorting per report).
    outgoing_order: Vec<u32>,
    incoming_order: Vec<u32>,
    events: VecDeque<SessionEvent>,
    next_report: Instant,
    avg_rtcp_size: f64,
    initial: bool,
    rng: u64,
}

/// NTP 64-bit fixed point from a duration since the Unix epoch.
fn ntp_from_unix(d: Duration) -> u64 {
    let secs = d.as_secs() + NTP_UNIX_OFFSET;
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

impl Session {
    /// A session starting at `now`, when the wall clock reads `wallclock`
    /// (for the NTP timestamps of sender reports).
    pub fn new(config: SessionConfig, now: Instant, wallclock: SystemTime) -> Self {
        let unix = wallclock.duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut s = Self {
            start: now,
            start_ntp: ntp_from_unix(unix),
            outgoing: HashMap::new(),
            incoming: HashMap::new(),
            outgoing_order: Vec::new(),
            incoming_order: Vec::new(),
            events: VecDeque::new(),
            next_report: now,
            avg_rtcp_size: 100.0,
            initial: true,
            rng: config.seed | 1,
            config,
        };
        s.next_report = now + s.interval(false);
        s
    }

    /// Its configuration (the RTCP SSRC and CNAME that feedback packets
    /// carry too).
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The NTP time at `now`.
    pub fn ntp_time(&self, now: Instant) -> u64 {
        let d = now.saturating_duration_since(self.start);
        let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
        self.start_ntp.wrapping_add((d.as_secs() << 32) + frac)
    }

    fn random_unit(&mut self) -> f64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// RFC 3550 appendix A.7: the randomized interval until the next report.
    /// `active`: media went either way since the last report.
    fn interval(&mut self, active: bool) -> Duration {
        let members = (1 + self.incoming.len()) as f64;
        let senders = self.incoming.values().filter(|s| s.received > 0).count() as f64
            + if self.outgoing.values().any(|o| o.sent_since_report) { 1.0 } else { 0.0 };
        let we_sent = self.outgoing.values().any(|o| o.sent_since_report);
        let mut rtcp_bw = f64::from(self.config.session_bandwidth) * 0.05 / 8.0;
        let mut n = members;
        if senders > 0.0 && senders <= members * 0.25 {
            if we_sent {
                rtcp_bw *= 0.25;
                n = senders;
            } else {
                rtcp_bw *= 0.75;
                n = members - senders;
            }
        }
        let mut t_min = 5.0;
        // The reduced minimum while media flows (and for the first report);
        // an idle session reports at the fixed minimum (section 6.2 leaves
        // the choice to unicast participants).
        if self.config.reduced_minimum && (active || self.initial) {
            let kbps = f64::from(self.config.session_bandwidth) / 1000.0;
            t_min = (360.0 / kbps.max(1e-3)).min(t_min);
        }
        if self.initial {
            t_min /= 2.0;
        }
        let t = (self.avg_rtcp_size * n / rtcp_bw.max(1.0)).max(t_min);
        let t = t * (self.random_unit() + 0.5) / COMPENSATION;
        Duration::from_secs_f64(t)
    }

    /// Starts sending a stream: its clock rate, first sequence number and
    /// first timestamp (pick the latter two at random, RFC 3550 section 5.1).
    pub fn add_outgoing(&mut self, ssrc: u32, clock_rate: u32, first_seq: u16, first_timestamp: u32) {
        if let Err(i) = self.outgoing_order.binary_search(&ssrc) {
            self.outgoing_order.insert(i, ssrc);
        }
        self.outgoing.insert(
            ssrc,
            Outgoing {
                clock_rate,
                seq: first_seq,
                timestamp_base: first_timestamp,
                last_rtp_time: first_timestamp,
                last_sent: None,
                sent_since_report: false,
                announced: false,
                stats: OutboundStats::default(),
            },
        );
    }

    /// Writes the next RTP packet of outgoing stream `ssrc` into `out` and
    /// returns its length. `media_time` is the sample's time in clock-rate
    /// units since the stream started; the session adds the random base.
    #[allow(clippy::too_many_arguments)]
    pub fn write_rtp(
        &mut self,
        now: Instant,
        ssrc: u32,
        payload_type: u8,
        marker: bool,
        media_time: u32,
        csrcs: &[u32],
        extensions: &[Extension<'_>],
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        let hlen = RtpHeader { csrcs, extensions, ..RtpHeader::default() }.header_len()?;
        let total = hlen + payload.len();
        let short = total.saturating_sub(out.len());
        out.get_mut(hlen..total).ok_or(Error::NoTailRoom(short))?.copy_from_slice(payload);
        self.write_rtp_header(now, ssrc, payload_type, marker, media_time, csrcs, extensions, payload.len(), out)
    }

    /// As [`Session::write_rtp`], for a payload of `payload_len` octets that
    /// is already in `out` where the header ends (at
    /// [`RtpHeader::header_len`] of these fields): writes only the header, so a
    /// packetizer can write the payload straight into the datagram buffer.
    #[allow(clippy::too_many_arguments)]
    pub fn write_rtp_header(
        &mut self,
        now: Instant,
        ssrc: u32,
        payload_type: u8,
        marker: bool,
        media_time: u32,
        csrcs: &[u32],
        extensions: &[Extension<'_>],
        payload_len: usize,
        out: &mut [u8],
    ) -> Result<usize, Error> {
        let s = self.outgoing.get_mut(&ssrc).ok_or(Error::Invalid("no such outgoing SSRC"))?;
        let timestamp = s.timestamp_base.wrapping_add(media_time);
        let h = RtpHeader { marker, payload_type, sequence_number: s.seq, timestamp, ssrc, csrcs, extensions };
        let n = h.write_before(payload_len, 0, out)?;
        s.sent(now, timestamp, payload_len);
        Ok(n)
    }

    /// Before the first packet of outgoing stream `ssrc`: makes a report
    /// due at once, with a sender report (no packets yet) and SDES for
    /// `ssrc`, so that the receiver learns the stream from RTCP before its
    /// RTP. A receiver that first sees a source in RTP puts it on
    /// probation (RFC 3550 appendix A.1) and some (GStreamer's rtpsession)
    /// then report one packet more received than expected, a negative
    /// loss. Returns whether it did (once per stream, and only before its
    /// first packet); poll [`Session::poll_transmit`] before writing the
    /// packet.
    pub fn announce(&mut self, now: Instant, ssrc: u32) -> bool {
        let Some(o) = self.outgoing.get_mut(&ssrc) else { return false };
        if o.announced || o.last_sent.is_some() {
            return false;
        }
        o.announced = true;
        o.sent_since_report = true;
        self.next_report = self.next_report.min(now);
        true
    }

    /// Whether an outgoing stream is registered.
    pub fn has_outgoing(&self, ssrc: u32) -> bool {
        self.outgoing.contains_key(&ssrc)
    }

    /// Stops sending a stream: it leaves the reports.
    pub fn remove_outgoing(&mut self, ssrc: u32) {
        self.outgoing.remove(&ssrc);
        self.outgoing_order.retain(|s| *s != ssrc);
    }

    /// Takes in a received (already unprotected) RTP packet.
    pub fn handle_rtp(&mut self, now: Instant, packet: &[u8]) -> Result<(), Error> {
        let p = RtpPacket::new_checked(packet)?;
        let ssrc = p.ssrc();
        if !self.incoming.contains_key(&ssrc) {
            if self.incoming.len() >= self.config.max_incoming {
                return Err(Error::TooManySsrcs(self.config.max_incoming));
            }
            let clock_rate =
                self.config.clock_rates.iter().find(|(pt, _)| *pt == p.payload_type()).map_or(90_000, |(_, r)| *r);
            let mut seq = SequenceUnwrapper::new();
            let base = seq.unwrap(p.sequence_number());
            if let Err(i) = self.incoming_order.binary_search(&ssrc) {
                self.incoming_order.insert(i, ssrc);
            }
            self.incoming.insert(
                ssrc,
                Incoming {
                    seq,
                    base,
                    received: 0,
                    bytes: 0,
                    expected_prior: 0,
                    received_prior: 0,
                    fraction_lost: 0,
                    jitter_q4: 0,
                    last_transit: None,
                    clock_rate,
                    csrcs: [0; 15],
                    csrc_count: 0,
                    last_sr: None,
                },
            );
            self.events.push_back(SessionEvent::NewStream { ssrc });
        }
        let arrival = now.saturating_duration_since(self.start);
        let s = self.incoming.get_mut(&ssrc).ok_or(Error::Invalid("stream vanished"))?;
        let ext = s.seq.unwrap(p.sequence_number());
        if ext < s.base {
            s.base = ext;
        }
        s.received += 1;
        s.bytes += p.payload().len() as u64;
        // RFC 3550 appendix A.8, in timestamp units.
        let arrival_ts = (arrival.as_secs_f64() * f64::from(s.clock_rate)) as i64;
        let transit = arrival_ts.wrapping_sub(i64::from(p.timestamp()));
        if let Some(last) = s.last_transit {
            let d = (transit - last).unsigned_abs();
            // J += (|D| - J) / 16, kept scaled by 16.
            s.jitter_q4 = s.jitter_q4 + d - ((s.jitter_q4 + 8) >> 4);
        }
        s.last_transit = Some(transit);
        let n = p.csrc_count();
        let mut csrcs = [0u32; 15];
        for (slot, c) in csrcs.iter_mut().zip(p.csrcs()) {
            *slot = c;
        }
        if n != usize::from(s.csrc_count) || csrcs[..n] != s.csrcs[..n] {
            s.csrcs = csrcs;
            s.csrc_count = n as u8;
            self.events.push_back(SessionEvent::ContributorsChanged { ssrc, csrcs: csrcs[..n].to_vec() });
        }
        Ok(())
    }

    /// Takes in a received (already unprotected) compound RTCP packet.
    /// Packets of unknown types are skipped.
    pub fn handle_rtcp(&mut self, now: Instant, packet: &[u8]) -> Result<(), Error> {
        let ntp_mid = (self.ntp_time(now) >> 16) as u32;
        self.avg_rtcp_size = (packet.len() as f64 + UDP_IP_OVERHEAD) / 16.0 + self.avg_rtcp_size * 15.0 / 16.0;
        for p in Compound::new(packet) {
            let p = p?;
            let Ok(msg) = p.parse() else { continue };
            let blocks = match msg {
                Rtcp::SenderReport(sr) => {
                    if let Some(s) = self.incoming.get_mut(&sr.ssrc) {
                        s.last_sr = Some(((sr.info.ntp_time >> 16) as u32, now));
                    }
                    Some(sr.reports)
                }
                Rtcp::ReceiverReport(rr) => Some(rr.reports),
                Rtcp::Goodbye(bye) => {
                    for ssrc in bye.ssrcs.iter() {
                        self.incoming.remove(&ssrc);
                        self.incoming_order.retain(|s| *s != ssrc);
                        self.events.push_back(SessionEvent::Bye { ssrc });
                    }
                    None
                }
                _ => None,
            };
            for b in blocks.iter().flat_map(|r| r.iter()) {
                let Some(o) = self.outgoing.get_mut(&b.ssrc) else { continue };
                o.stats.packets_lost = i64::from(b.cumulative_lost);
                o.stats.fraction_lost = f64::from(b.fraction_lost) / 256.0;
                o.stats.jitter = f64::from(b.jitter) / f64::from(o.clock_rate.max(1));
                if b.last_sr != 0 {
                    // RFC 3550 section 6.4.1: A - LSR - DLSR, in 1/65536 s.
                    let rtt = ntp_mid.wrapping_sub(b.last_sr).wrapping_sub(b.delay_since_last_sr);
                    if rtt < 0x8000_0000 {
                        o.stats.round_trip_time = Some(f64::from(rtt) / 65536.0);
                    }
                }
            }
        }
        Ok(())
    }

    /// When [`Session::poll_transmit`] next has a report to send.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        Some(self.next_report)
    }

    /// Writes the compound RTCP report due at `now` (an SR per stream that
    /// sent since the last report, else an RR; then SDES with the CNAME)
    /// into `out`, and returns its length; `None` when nothing is due.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, out: &mut [u8]) -> Option<usize> {
        if now < self.next_report {
            return None;
        }
        let active = self.outgoing.values().any(|o| o.sent_since_report)
            || self.incoming.values().any(|s| s.received > s.received_prior);
        let n = self.write_report(now, out).ok()?;
        self.avg_rtcp_size = (n as f64 + UDP_IP_OVERHEAD) / 16.0 + self.avg_rtcp_size * 15.0 / 16.0;
        self.initial = false;
        self.next_report = now + self.interval(active);
        for o in self.outgoing.values_mut() {
            o.sent_since_report = false;
        }
        Some(n)
    }

    fn write_report(&mut self, now: Instant, out: &mut [u8]) -> Result<usize, Error> {
        // No allocation: the report blocks on the stack, the SSRCs in the
        // order kept sorted as streams come and go.
        let mut blocks = [ReportBlock::default(); 31];
        let mut n = 0;
        for ssrc in &self.incoming_order {
            if n == blocks.len() {
                break;
            }
            if let Some(s) = self.incoming.get_mut(ssrc).filter(|s| s.received > 0) {
                blocks[n] = s.report(*ssrc, now);
                n += 1;
            }
        }
        let blocks = &blocks[..n];
        let ntp = self.ntp_time(now);
        let mut w = Writer::new(out);
        let mut first = None;
        for ssrc in &self.outgoing_order {
            let Some(o) = self.outgoing.get(ssrc).filter(|o| o.sent_since_report) else { continue };
            let since = o.last_sent.map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
            let info = SenderInfo {
                ntp_time: ntp,
                rtp_time: o.last_rtp_time.wrapping_add((since.as_secs_f64() * f64::from(o.clock_rate)) as u64 as u32),
                packet_count: o.stats.packets_sent as u32,
                octet_count: o.stats.bytes_sent as u32,
            };
            w.sender_report(*ssrc, &info, if first.is_none() { blocks } else { &[] })?;
            first.get_or_insert(*ssrc);
        }
        if first.is_none() {
            w.receiver_report(self.config.rtcp_ssrc, blocks)?;
        }
        w.sdes_cname(first.unwrap_or(self.config.rtcp_ssrc), self.config.cname.as_bytes())?;
        Ok(w.len())
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// Statistics of an outgoing stream.
    pub fn outbound_stats(&self, ssrc: u32) -> Option<OutboundStats> {
        self.outgoing.get(&ssrc).map(|o| o.stats)
    }

    /// Statistics of an incoming stream.
    pub fn inbound_stats(&self, ssrc: u32) -> Option<InboundStats> {
        self.incoming.get(&ssrc).map(|s| InboundStats {
            packets_received: s.received,
            bytes_received: s.bytes,
            packets_lost: s.lost(),
            fraction_lost: f64::from(s.fraction_lost) / 256.0,
            jitter: (s.jitter_q4 as f64 / 16.0) / f64::from(s.clock_rate.max(1)),
        })
    }

    /// The current CSRC list (contributors) of an incoming stream.
    pub fn contributors(&self, ssrc: u32) -> Option<&[u32]> {
        self.incoming.get(&ssrc).map(|s| &s.csrcs[..usize::from(s.csrc_count)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Session, Session, Instant) {
        let now = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let a = Session::new(
            SessionConfig { rtcp_ssrc: 0xa, cname: "a".into(), clock_rates: vec![(111, 48_000)], ..Default::default() },
            now,
            wall,
        );
        let b = Session::new(
            SessionConfig { rtcp_ssrc: 0xb, cname: "b".into(), clock_rates: vec![(111, 48_000)], ..Default::default() },
            now,
            wall,
        );
        (a, b, now)
    }

    #[test]
    fn counts_loss_jitter_and_rtt() {
        let (mut a, mut b, t0) = pair();
        a.add_outgoing(100, 48_000, 65530, 12345);
        let mut buf = [0u8; 1500];
        let mut delivered = 0;
        for i in 0..100u32 {
            let now = t0 + Duration::from_millis(20 * u64::from(i));
            let n = a.write_rtp(now, 100, 111, false, 960 * i, &[], &[], &[0u8; 50], &mut buf).unwrap();
            // Drop every tenth packet; delay every other by 5 ms.
            if i % 10 == 3 {
                continue;
            }
            let arrive = now + Duration::from_millis(if i % 2 == 0 { 0 } else { 5 });
            b.handle_rtp(arrive, &buf[..n]).unwrap();
            delivered += 1;
        }
        assert_eq!(b.poll_event(), Some(SessionEvent::NewStream { ssrc: 100 }));
        let out = a.outbound_stats(100).unwrap();
        assert_eq!((out.packets_sent, out.bytes_sent), (100, 5000));
        let inb = b.inbound_stats(100).unwrap();
        assert_eq!(inb.packets_received, delivered);
        assert_eq!(inb.bytes_received, 50 * delivered);
        assert_eq!(inb.packets_lost, 10, "RFC 3550 A.3 across the sequence wrap");
        // Alternating 0/5 ms delays: |D| is 5 ms each time, so J tends to 5 ms.
        assert!((inb.jitter - 0.005).abs() < 0.001, "jitter {}", inb.jitter);

        // A sends an SR; B answers with an RR carrying LSR/DLSR; A measures RTT.
        let t1 = t0 + Duration::from_secs(10);
        let n = a.poll_transmit(t1, &mut buf).expect("report due");
        let sr = buf[..n].to_vec();
        let first = Compound::new(&sr).next().unwrap().unwrap().parse().unwrap();
        assert!(matches!(first, Rtcp::SenderReport(s) if s.ssrc == 100 && s.info.packet_count == 100));
        b.handle_rtcp(t1 + Duration::from_millis(40), &sr).unwrap();
        let t2 = t1 + Duration::from_millis(40 + 100);
        let n = b.poll_transmit(t2, &mut buf).expect("report due");
        let rr = buf[..n].to_vec();
        let Rtcp::ReceiverReport(r) = Compound::new(&rr).next().unwrap().unwrap().parse().unwrap() else {
            panic!("expected an RR")
        };
        let block = r.reports.iter().next().unwrap();
        assert_eq!(block.ssrc, 100);
        assert_eq!(block.cumulative_lost, 10);
        assert_eq!(block.fraction_lost, (10 * 256 / 100) as u8);
        assert_eq!(b.inbound_stats(100).unwrap().fraction_lost, f64::from(block.fraction_lost) / 256.0);
        a.handle_rtcp(t2 + Duration::from_millis(40), &rr).unwrap();
        let out = a.outbound_stats(100).unwrap();
        let rtt = out.round_trip_time.expect("rtt");
        assert!((rtt - 0.080).abs() < 0.002, "rtt {rtt}");
        assert_eq!(out.packets_lost, 10);
    }

    /// Before a stream's first packet, `announce` makes an SR for it (no
    /// packets yet) and SDES due at once; the receiver then knows the
    /// source from RTCP when its first packet comes, skips probation and
    /// counts no packet twice. Once per stream, never after it sent.
    #[test]
    fn a_stream_is_announced_by_an_sr_before_its_first_packet() {
        let (mut a, mut b, t0) = pair();
        a.add_outgoing(100, 48_000, 7, 1000);
        assert!(a.poll_transmit(t0, &mut [0u8; 1500]).is_none(), "no report due yet");
        assert!(a.announce(t0, 100));
        assert!(!a.announce(t0, 100), "once");
        assert!(!a.announce(t0, 555), "no such stream");
        let mut buf = [0u8; 1500];
        let n = a.poll_transmit(t0, &mut buf).expect("a report at once");
        let mut parts = Compound::new(&buf[..n]);
        let sr = parts.next().unwrap().unwrap().parse().unwrap();
        assert!(matches!(sr, Rtcp::SenderReport(s) if s.ssrc == 100 && s.info.packet_count == 0), "{sr:?}");
        assert!(matches!(parts.next().unwrap().unwrap().parse().unwrap(), Rtcp::SourceDescription(_)));
        b.handle_rtcp(t0, &buf[..n]).unwrap();
        let n = a.write_rtp(t0, 100, 111, false, 0, &[], &[], &[0u8; 50], &mut buf).unwrap();
        b.handle_rtp(t0, &buf[..n]).unwrap();
        assert_eq!(b.inbound_stats(100).unwrap().packets_received, 1);
        // A stream that already sent is not announced.
        a.add_outgoing(200, 48_000, 7, 1000);
        a.write_rtp(t0, 200, 111, false, 0, &[], &[], &[0u8; 50], &mut buf).unwrap();
        assert!(!a.announce(t0, 200));
    }

    /// The reduced minimum (RFC 3550 section 6.2, RFC 8834 section 4.1):
    /// 360 / 1000 kbit/s = 0.36 s, half of it before the first report, and
    /// the same randomization.
    #[test]
    fn reduced_minimum_interval() {
        let (mut a, _, t0) = pair();
        assert!(a.config.reduced_minimum, "on by default");
        let first = a.poll_timeout().unwrap();
        let secs = first.duration_since(t0).as_secs_f64();
        assert!((0.18 * 0.5 / COMPENSATION..=0.18 * 1.5 / COMPENSATION).contains(&secs), "{secs}");
        let mut buf = [0u8; 1500];
        let mut at = first;
        a.add_outgoing(5, 48_000, 1, 1);
        for _ in 0..20 {
            // Media flows: the reduced minimum.
            let mut pkt = [0u8; 100];
            a.write_rtp(at, 5, 111, false, 0, &[], &[], b"media", &mut pkt).unwrap();
            assert!(a.poll_transmit(at, &mut buf).is_some());
            let next = a.poll_timeout().unwrap();
            let gap = next.duration_since(at).as_secs_f64();
            assert!((0.36 * 0.5 / COMPENSATION..=0.36 * 1.5 / COMPENSATION).contains(&gap), "{gap}");
            at = next;
        }
        // Idle since the last report: the fixed minimum.
        assert!(a.poll_transmit(at, &mut buf).is_some());
        let idle = a.poll_timeout().unwrap().duration_since(at).as_secs_f64();
        assert!((5.0 * 0.5 / COMPENSATION..=5.0 * 1.5 / COMPENSATION).contains(&idle), "{idle}");
        // Below 72 kbit/s the fixed 5 s is the smaller.
        let mut slow = Session::new(
            SessionConfig { session_bandwidth: 64_000, ..Default::default() },
            t0,
            std::time::SystemTime::now(),
        );
        let first = slow.poll_timeout().unwrap();
        assert!(slow.poll_transmit(first, &mut buf).is_some());
        let gap = slow.poll_timeout().unwrap().duration_since(first).as_secs_f64();
        assert!((5.0 * 0.5 / COMPENSATION..=5.0 * 1.5 / COMPENSATION).contains(&gap), "{gap}");
    }

    #[test]
    fn report_interval_and_contributors() {
        let (mut a, mut b, t0) = pair();
        a.config.reduced_minimum = false;
        a.next_report = t0 + a.interval(false);
        let first = a.poll_timeout().unwrap();
        // RFC 3550 A.7: the initial minimum is 2.5 s, randomized by [0.5, 1.5] / (e - 3/2).
        let secs = first.duration_since(t0).as_secs_f64();
        assert!((2.5 * 0.5 / COMPENSATION..=2.5 * 1.5 / COMPENSATION).contains(&secs), "{secs}");
        let mut buf = [0u8; 1500];
        assert_eq!(a.poll_transmit(t0, &mut buf), None, "nothing due yet");
        let n = a.poll_transmit(first, &mut buf).unwrap();
        let kinds: Vec<_> = Compound::new(&buf[..n]).map(|p| p.unwrap().packet_type()).collect();
        assert_eq!(kinds, vec![crate::rtcp::PacketType::RR, crate::rtcp::PacketType::SDES]);
        let next = a.poll_timeout().unwrap().duration_since(first).as_secs_f64();
        assert!((5.0 * 0.5 / COMPENSATION..=5.0 * 1.5 / COMPENSATION).contains(&next), "{next}");

        b.add_outgoing(7, 48_000, 1, 1);
        for (i, csrcs) in [&[1u32, 2][..], &[1, 2], &[1, 3], &[]].iter().enumerate() {
            let n = b.write_rtp(t0, 7, 111, false, 0, csrcs, &[], b"x", &mut buf).unwrap();
            a.handle_rtp(t0 + Duration::from_millis(i as u64), &buf[..n]).unwrap();
        }
        let events: Vec<_> = std::iter::from_fn(|| a.poll_event()).collect();
        assert_eq!(
            events,
            vec![
                SessionEvent::NewStream { ssrc: 7 },
                SessionEvent::ContributorsChanged { ssrc: 7, csrcs: vec![1, 2] },
                SessionEvent::ContributorsChanged { ssrc: 7, csrcs: vec![1, 3] },
                SessionEvent::ContributorsChanged { ssrc: 7, csrcs: vec![] },
            ]
        );
        assert_eq!(a.contributors(7), Some(&[][..]));
        let mut w = Writer::new(&mut buf);
        w.bye(&[7], None).unwrap();
        let n = w.len();
        a.handle_rtcp(t0, &buf[..n]).unwrap();
        assert_eq!(a.poll_event(), Some(SessionEvent::Bye { ssrc: 7 }));
        assert_eq!(a.inbound_stats(7), None);
    }

    #[test]
    fn incoming_cap_and_bad_packets() {
        let (mut a, _, t0) = pair();
        a.config.max_incoming = 2;
        let mut buf = [0u8; 64];
        for ssrc in 0..3u32 {
            let h = RtpHeader { ssrc, ..Default::default() };
            let n = h.write(b"", 0, &mut buf).unwrap();
            let r = a.handle_rtp(t0, &buf[..n]);
            assert_eq!(r.is_err(), ssrc == 2);
        }
        assert!(a.handle_rtp(t0, &[0x80, 0]).is_err());
        assert!(a.handle_rtcp(t0, &[0x80, 200, 0, 9]).is_err());
        assert!(a.write_rtp(t0, 99, 0, false, 0, &[], &[], b"", &mut buf).is_err());
    }

    #[test]
    fn ntp_time_follows_the_wall_clock() {
        let (a, _, t0) = pair();
        let ntp = a.ntp_time(t0 + Duration::from_millis(1500));
        assert_eq!(ntp >> 32, 1_700_000_000 + NTP_UNIX_OFFSET + 1);
        assert_eq!((ntp & 0xffff_ffff) >> 31, 1, "half a second");
    }
}
