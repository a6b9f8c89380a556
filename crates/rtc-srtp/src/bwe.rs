//! Send-side bandwidth estimation from transport feedback, sans-IO, after
//! Google Congestion Control (draft-ietf-rmcat-gcc-02): a delay-based
//! estimate (the variation of one-way delay between groups of packets,
//! smoothed and fitted to a trend line, compared with an adaptive threshold
//! to tell overuse, and an additive-increase/multiplicative-decrease rate
//! controller around the throughput the receiver acknowledged), and a
//! loss-based one (section 6: up 5% while under 2% is lost, down by half
//! the loss over 10%). The estimate is the lower of the two. There is no
//! probing: until the first sign of congestion the rates grow 50% a second
//! instead of 8%, never past half as much again as the receiver
//! acknowledged.
//!
//! Call order: [`Bwe::on_sent`] for every packet sent with a transport-wide
//! sequence number, [`Bwe::on_feedback`] with every transport feedback
//! message; [`Bwe::estimate`] is the bitrate the sender may use.
//!
//! The same estimator runs on the receiving side for a sender that takes
//! REMB (draft-alvestrand-rmcat-remb) rather than transport feedback:
//! [`Bwe::on_received`] with every packet that carries `abs-send-time`;
//! [`Bwe::estimate`] is then the bitrate to send the peer in REMB.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::twcc::TransportFeedback;

/// Limits of the estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BweConfig {
    /// The estimate before any feedback, in bits per second.
    pub start_bitrate: u64,
    /// The estimate never goes below this.
    pub min_bitrate: u64,
    /// Nor above this.
    pub max_bitrate: u64,
}

impl Default for BweConfig {
    fn default() -> Self {
        Self { start_bitrate: 300_000, min_bitrate: 30_000, max_bitrate: 10_000_000 }
    }
}

/// Packets sent and not yet reported on, at most.
const MAX_SENT: usize = 8192;
/// Packets sent within this span form one group (section 5.2).
const BURST: Duration = Duration::from_millis(5);
/// Points in the trend line (libwebrtc's default window).
const TREND_WINDOW: usize = 20;
/// Smoothing of the accumulated delay.
const SMOOTHING: f64 = 0.9;
/// Gain applied to the trend before it is compared with the threshold.
const TREND_GAIN: f64 = 4.0;
/// Adaptive threshold: gains up and down (section 5.4), bounds in ms.
const K_UP: f64 = 0.0087;
const K_DOWN: f64 = 0.039;
/// Overuse must last this long (section 5.4).
const OVERUSE_TIME: f64 = 10.0;
/// Multiplicative decrease factor of the delay-based rate (section 5.5).
const BETA: f64 = 0.85;
/// Throughput window for the acknowledged bitrate.
const ACKED_WINDOW: Duration = Duration::from_millis(500);
/// Receiving side: the rates are updated this often.
const RECEIVE_UPDATE: Duration = Duration::from_millis(100);
/// Receiving side: `abs-send-time` units a second (6.18 fixed point).
const ABS_SEND_TIME_HZ: i64 = 1 << 18;

/// What the delay-based detector says (section 5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Usage {
    /// Delay steady: the link keeps up.
    #[default]
    Normal,
    /// Delay growing: queues build up.
    Overusing,
    /// Delay shrinking: queues drain.
    Underusing,
}

#[derive(Debug, Clone, Copy)]
struct Sent {
    at: Instant,
    size: u32,
}

/// A group of packets sent within [`BURST`]: its last send and arrival.
#[derive(Debug, Clone, Copy)]
struct Group {
    first_send: Instant,
    last_send: Instant,
    /// Receiver clock, microseconds.
    last_arrival: i64,
}

/// The estimator.
#[derive(Debug)]
pub struct Bwe {
    config: BweConfig,
    /// Sent packets by extended transport-wide sequence number, from
    /// `sent_base` on.
    sent: VecDeque<Option<Sent>>,
    sent_base: u64,
    /// The newest extended sequence number sent.
    newest: Option<u64>,
    group: Option<Group>,
    prev_group: Option<Group>,
    // Trend line.
    first_arrival: Option<i64>,
    acc_delay: f64,
    smoothed: f64,
    points: VecDeque<(f64, f64)>,
    deltas: u32,
    // Detector.
    threshold: f64,
    last_threshold_update: Option<Instant>,
    over_time: f64,
    over_count: u32,
    prev_trend: f64,
    usage: Usage,
    // Rates.
    delay_rate: f64,
    loss_rate: f64,
    last_rate_update: Option<Instant>,
    /// No increase before this (after a decrease, the queue drains).
    hold_until: Option<Instant>,
    /// Until the first sign of congestion (overuse or heavy loss) the
    /// delay-based rate grows 50% a second rather than 8% (there is no
    /// probing: a sender following the estimate would otherwise take
    /// twenty seconds to go from 300 kbit/s to 1.5 Mbit/s).
    ramping: bool,
    last_loss_decrease: Option<Instant>,
    /// Packets reported received and lost since the loss-based rate was
    /// last looked at, and when that was.
    loss_counts: (u32, u32),
    last_loss_update: Option<Instant>,
    /// Received packets' (receiver arrival µs, size) for the acknowledged
    /// throughput.
    acked: VecDeque<(i64, u32)>,
    acked_bytes: u64,
    feedbacks: u64,
    /// Receiving side: the first arrival, the clock both times count from.
    recv_epoch: Option<Instant>,
    /// Receiving side: the newest `abs-send-time` (24 bits) and its
    /// unwrapped value in 2^-18 s, and packets since the last rate update.
    recv_send_time: Option<(u32, i64)>,
    recv_count: u32,
}

impl Bwe {
    /// An estimator starting at `config.start_bitrate`.
    pub fn new(config: BweConfig) -> Self {
        let start = config.start_bitrate.clamp(config.min_bitrate, config.max_bitrate) as f64;
        Self {
            config,
            sent: VecDeque::new(),
            sent_base: 0,
            newest: None,
            group: None,
            prev_group: None,
            first_arrival: None,
            acc_delay: 0.0,
            smoothed: 0.0,
            points: VecDeque::with_capacity(TREND_WINDOW),
            deltas: 0,
            threshold: 12.5,
            last_threshold_update: None,
            over_time: -1.0,
            over_count: 0,
            prev_trend: 0.0,
            usage: Usage::Normal,
            delay_rate: start,
            loss_rate: start,
            last_rate_update: None,
            hold_until: None,
            ramping: true,
            last_loss_decrease: None,
            loss_counts: (0, 0),
            last_loss_update: None,
            acked: VecDeque::new(),
            acked_bytes: 0,
            feedbacks: 0,
            recv_epoch: None,
            recv_send_time: None,
            recv_count: 0,
        }
    }

    /// The estimate, in bits per second.
    pub fn estimate(&self) -> u64 {
        (self.delay_rate.min(self.loss_rate) as u64).clamp(self.config.min_bitrate, self.config.max_bitrate)
    }

    /// Transport feedback messages taken.
    pub fn feedbacks(&self) -> u64 {
        self.feedbacks
    }

    /// What the delay-based detector last said.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// The throughput the receiver acknowledged over the last half second,
    /// in bits per second, once there is enough of it to tell.
    pub fn acked_bitrate(&self) -> Option<u64> {
        let (first, last) = (self.acked.front()?.0, self.acked.back()?.0);
        let span = (last - first).max(0) as u64;
        if span < 100_000 {
            return None;
        }
        Some((u128::from(self.acked_bytes) * 8_000_000 / u128::from(span)).min(u128::from(u64::MAX)) as u64)
    }

    /// A packet of `size` octets went out at `now` with transport-wide
    /// sequence number `seq`.
    pub fn on_sent(&mut self, now: Instant, seq: u16, size: usize) {
        let ext = match self.newest {
            None => {
                self.sent_base = u64::from(seq) + (1 << 16);
                self.sent_base
            }
            Some(n) => n.wrapping_add_signed(i64::from(seq.wrapping_sub(n as u16) as i16)),
        };
        if self.newest.is_some_and(|n| ext <= n) || ext < self.sent_base {
            return; // Sent twice, or older than kept: not tracked.
        }
        self.newest = Some(ext);
        while ext - self.sent_base >= self.sent.len() as u64 {
            self.sent.push_back(None);
        }
        let i = (ext - self.sent_base) as usize;
        self.sent[i] = Some(Sent { at: now, size: size as u32 });
        while self.sent.len() > MAX_SENT {
            self.sent.pop_front();
            self.sent_base += 1;
        }
    }

    /// Receiving side: a packet of `size` octets arrived at `now`, stamped
    /// by its sender with `abs-send-time` `send_time` (24-bit 6.18
    /// fixed-point seconds; the value wraps every 64 s). The delay-based
    /// rate and the throughput follow arrivals as they follow transport
    /// feedback on the sending side, the rates are updated every 100 ms,
    /// and loss is left to the sender (REMB is delay-based). Returns the
    /// estimate.
    pub fn on_received(&mut self, now: Instant, send_time: u32, size: usize) -> u64 {
        let epoch = *self.recv_epoch.get_or_insert(now);
        let ticks = self.unwrap_send_time(send_time);
        let Ok(nanos) = u64::try_from(ticks.saturating_mul(1_000_000_000) / ABS_SEND_TIME_HZ) else {
            return self.estimate();
        };
        let sent = Sent { at: epoch + Duration::from_nanos(nanos), size: u32::try_from(size).unwrap_or(u32::MAX) };
        let arrival = i64::try_from(now.saturating_duration_since(epoch).as_micros()).unwrap_or(i64::MAX);
        self.on_arrival(now, sent, arrival);
        self.recv_count = self.recv_count.saturating_add(1);
        if self.last_rate_update.is_none_or(|l| now.saturating_duration_since(l) >= RECEIVE_UPDATE) {
            let received = std::mem::take(&mut self.recv_count);
            self.update_rates(now, received, 0);
        }
        self.estimate()
    }

    /// `abs-send-time` (24 bits) unwrapped, in 2^-18 s: from the newest
    /// value seen, within half the 64 s range either way; the first counts
    /// as 1000 s, so that a reordered older packet still has a time after
    /// the epoch.
    fn unwrap_send_time(&mut self, send_time: u32) -> i64 {
        let raw = send_time & 0x00ff_ffff;
        let ticks = match self.recv_send_time {
            None => 1000 * ABS_SEND_TIME_HZ,
            Some((last_raw, last)) => last + i64::from(((raw.wrapping_sub(last_raw) << 8) as i32) >> 8),
        };
        if self.recv_send_time.is_none_or(|(_, last)| ticks > last) {
            self.recv_send_time = Some((raw, ticks));
        }
        ticks
    }

    /// Takes one transport feedback message at `now`; returns the estimate
    /// after it.
    pub fn on_feedback(&mut self, now: Instant, fb: &TransportFeedback<'_>) -> u64 {
        self.feedbacks += 1;
        let Some(newest) = self.newest else { return self.estimate() };
        let reference = i64::from(fb.reference_time) * 64_000;
        let (mut received, mut lost) = (0u32, 0u32);
        let mut reported: Option<u64> = None;
        fb.arrivals(|seq, arrival| {
            let ext = newest.wrapping_sub(u64::from((newest as u16).wrapping_sub(seq)));
            if ext < self.sent_base || ext > newest {
                return;
            }
            reported = Some(reported.map_or(ext, |r| r.max(ext)));
            let Some(sent) = self.sent[(ext - self.sent_base) as usize] else { return };
            match arrival {
                None => lost += 1,
                Some(a) => {
                    received += 1;
                    self.on_arrival(now, sent, reference + a);
                }
            }
        });
        // What was reported on is forgotten.
        if let Some(r) = reported {
            while self.sent_base <= r && !self.sent.is_empty() {
                self.sent.pop_front();
                self.sent_base += 1;
            }
        }
        self.update_rates(now, received, lost);
        self.estimate()
    }

    /// One packet's arrival (receiver clock, µs).
    fn on_arrival(&mut self, now: Instant, sent: Sent, arrival: i64) {
        self.acked.push_back((arrival, sent.size));
        self.acked_bytes += u64::from(sent.size);
        while let Some(&(a, s)) = self.acked.front() {
            if arrival - a <= ACKED_WINDOW.as_micros() as i64 && self.acked.len() <= MAX_SENT {
                break;
            }
            self.acked.pop_front();
            self.acked_bytes -= u64::from(s);
        }
        match &mut self.group {
            Some(g) if sent.at.saturating_duration_since(g.first_send) <= BURST && sent.at >= g.first_send => {
                g.last_send = g.last_send.max(sent.at);
                g.last_arrival = g.last_arrival.max(arrival);
            }
            _ => {
                let done = self.group.replace(Group { first_send: sent.at, last_send: sent.at, last_arrival: arrival });
                if let Some(done) = done {
                    if let Some(prev) = self.prev_group {
                        self.on_group_delta(now, prev, done);
                    }
                    self.prev_group = Some(done);
                }
            }
        }
    }

    /// The delay variation between two groups, into the trend line and the
    /// detector (sections 5.3, 5.4).
    fn on_group_delta(&mut self, now: Instant, prev: Group, group: Group) {
        if group.last_send < prev.last_send {
            return; // Reordered groups say nothing about queues.
        }
        let send_delta = group.last_send.duration_since(prev.last_send).as_secs_f64() * 1000.0;
        let arrival_delta = (group.last_arrival - prev.last_arrival) as f64 / 1000.0;
        let d = arrival_delta - send_delta;
        let first = *self.first_arrival.get_or_insert(group.last_arrival);
        self.deltas = self.deltas.saturating_add(1);
        self.acc_delay += d;
        self.smoothed = SMOOTHING * self.smoothed + (1.0 - SMOOTHING) * self.acc_delay;
        self.points.push_back(((group.last_arrival - first) as f64 / 1000.0, self.smoothed));
        if self.points.len() > TREND_WINDOW {
            self.points.pop_front();
        }
        let trend =
            if self.points.len() == TREND_WINDOW { slope(&self.points).unwrap_or(self.prev_trend) } else { 0.0 };
        self.detect(now, trend, send_delta);
    }

    fn detect(&mut self, now: Instant, trend: f64, send_delta: f64) {
        let modified = f64::from(self.deltas.min(60)) * trend * TREND_GAIN;
        if modified > self.threshold {
            if self.over_time < 0.0 {
                self.over_time = send_delta / 2.0;
            } else {
                self.over_time += send_delta;
            }
            self.over_count += 1;
            if self.over_time > OVERUSE_TIME && self.over_count > 1 && trend >= self.prev_trend {
                self.over_time = 0.0;
                self.over_count = 0;
                self.usage = Usage::Overusing;
            }
        } else if modified < -self.threshold {
            self.over_time = -1.0;
            self.over_count = 0;
            self.usage = Usage::Underusing;
        } else {
            self.over_time = -1.0;
            self.over_count = 0;
            self.usage = Usage::Normal;
        }
        self.prev_trend = trend;
        // The threshold follows the trend (section 5.4), not on spikes.
        let dt = self.last_threshold_update.map_or(0.0, |l| now.saturating_duration_since(l).as_secs_f64() * 1000.0);
        self.last_threshold_update = Some(now);
        if modified.abs() <= self.threshold + 15.0 {
            let k = if modified.abs() < self.threshold { K_DOWN } else { K_UP };
            self.threshold = (self.threshold + k * (modified.abs() - self.threshold) * dt.min(100.0)).clamp(6.0, 600.0);
        }
    }

    /// The rate controllers, once per feedback message.
    fn update_rates(&mut self, now: Instant, received: u32, lost: u32) {
        let dt = self.last_rate_update.map_or(0.0, |l| now.saturating_duration_since(l).as_secs_f64().min(1.0));
        self.last_rate_update = Some(now);
        let acked = self.acked_bitrate().map(|a| a as f64);
        match self.usage {
            Usage::Overusing => {
                // Section 5.5: below what got through.
                let base = acked.unwrap_or(self.delay_rate);
                self.delay_rate = self.delay_rate.min(BETA * base);
                self.usage = Usage::Normal;
                self.ramping = false;
                self.hold_until = Some(now + Duration::from_millis(300));
            }
            Usage::Underusing => {}
            Usage::Normal => {
                if self.hold_until.is_none_or(|h| now >= h) {
                    // Multiplicative increase, 8% a second, not far past
                    // what the receiver acknowledges; and at least what got
                    // through without the delay growing.
                    let gain: f64 = if self.ramping { 1.5 } else { 1.08 };
                    let grown = self.delay_rate * gain.powf(dt);
                    let cap = acked.map_or(f64::MAX, |a| 1.5 * a + 10_000.0);
                    let floor = acked.unwrap_or(0.0).min(cap);
                    self.delay_rate = grown.min(cap.max(self.delay_rate)).max(floor);
                }
            }
        }
        // Loss-based (section 6), over at least 20 packets.
        self.loss_counts.0 += received;
        self.loss_counts.1 += lost;
        let (r, l) = self.loss_counts;
        if r + l >= 20 {
            let loss = f64::from(l) / f64::from(r + l);
            let dt = self
                .last_loss_update
                .replace(now)
                .map_or(0.0, |t| now.saturating_duration_since(t).as_secs_f64().min(1.0));
            if loss < 0.02 {
                // Back up towards the delay-based rate, 8% a second (as the
                // delay-based one while it ramps), and at once to what got
                // through.
                let gain: f64 = if self.ramping { 1.5 } else { 1.08 };
                let up = (self.loss_rate * gain.powf(dt)).max(acked.unwrap_or(0.0));
                self.loss_rate = up.min(self.delay_rate.max(self.loss_rate));
                self.loss_counts = (0, 0);
            } else if loss > 0.1 {
                if self
                    .last_loss_decrease
                    .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_millis(300))
                {
                    self.loss_rate = self.loss_rate.min(self.delay_rate) * (1.0 - 0.5 * loss);
                    self.last_loss_decrease = Some(now);
                    self.ramping = false;
                }
                self.loss_counts = (0, 0);
            } else {
                self.loss_counts = (0, 0);
            }
        }
        let (min, max) = (self.config.min_bitrate as f64, self.config.max_bitrate as f64);
        self.delay_rate = self.delay_rate.clamp(min, max);
        self.loss_rate = self.loss_rate.clamp(min, max);
    }
}

/// The least-squares slope of `points`.
fn slope(points: &VecDeque<(f64, f64)>) -> Option<f64> {
    let n = points.len() as f64;
    let (sx, sy) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) =
        points.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + (x - mx) * (y - my), b + (x - mx) * (x - mx)));
    (den != 0.0).then(|| num / den)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtcp::{Compound, Writer};
    use crate::twcc::{self, TwccRecorder};

    /// A sender writing `rate` bits per second in 1200-octet packets over
    /// a link of `capacity` (a FIFO queue, 20 ms one way, dropping a share
    /// `loss` at random), feedback every 100 ms; the estimate each second.
    fn run(rate: f64, capacity: f64, loss: f64, seconds: u32) -> Vec<u64> {
        let t0 = Instant::now();
        let mut bwe = Bwe::new(BweConfig::default());
        let mut rx = TwccRecorder::new(t0);
        let (size, gap) = (1200usize, Duration::from_secs_f64(1200.0 * 8.0 / rate));
        let mut link_free = t0;
        let mut arrivals: VecDeque<(Instant, u16)> = VecDeque::new();
        let (mut now, mut seq, mut rng) = (t0, 0u16, 0x2545_f491_4f6c_dd1du64);
        let mut next_feedback = t0 + Duration::from_millis(100);
        let mut out = Vec::new();
        let mut next_second = t0 + Duration::from_secs(1);
        while now < t0 + Duration::from_secs(u64::from(seconds)) {
            bwe.on_sent(now, seq, size);
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            if (rng % 10_000) as f64 >= loss * 10_000.0 {
                let start = link_free.max(now);
                link_free = start + Duration::from_secs_f64(size as f64 * 8.0 / capacity);
                arrivals.push_back((link_free + Duration::from_millis(20), seq));
            }
            seq = seq.wrapping_add(1);
            now += gap;
            while arrivals.front().is_some_and(|(a, _)| *a <= now) {
                let (a, s) = arrivals.pop_front().unwrap();
                rx.record(a, s);
            }
            if now >= next_feedback {
                let mut buf = [0u8; 1500];
                let mut w = Writer::new(&mut buf);
                if rx.write(now, 1, 2, &mut w).unwrap() {
                    let p = Compound::new(w.finish()).next().unwrap().unwrap();
                    let fb = twcc::parse(p.body()).unwrap();
                    // The feedback takes 20 ms back.
                    bwe.on_feedback(now + Duration::from_millis(20), &fb);
                }
                next_feedback += Duration::from_millis(100);
            }
            if now >= next_second {
                out.push(bwe.estimate());
                next_second += Duration::from_secs(1);
            }
        }
        out
    }

    #[test]
    fn the_estimate_climbs_to_what_a_wide_link_carries() {
        let e = run(2_000_000.0, 10_000_000.0, 0.0, 10);
        let last = *e.last().unwrap();
        assert!((1_900_000..=3_100_000).contains(&last), "2 Mbit/s through 10: {e:?}");
        assert!(e.windows(2).skip(2).all(|w| w[1] * 10 >= w[0] * 9), "no collapse without congestion: {e:?}");
    }

    #[test]
    fn a_narrow_link_brings_the_estimate_down_to_its_capacity() {
        let e = run(3_000_000.0, 1_000_000.0, 0.0, 15);
        let last = *e.last().unwrap();
        assert!((500_000..=1_300_000).contains(&last), "3 Mbit/s into 1: {e:?}");
    }

    #[test]
    fn heavy_loss_brings_the_estimate_down() {
        let e = run(2_000_000.0, 10_000_000.0, 0.2, 10);
        let last = *e.last().unwrap();
        assert!(last < 1_000_000, "20% loss: {e:?}");
    }

    /// The receiving side: a sender writing `rate` bits per second in
    /// 1200-octet packets stamped with `abs-send-time` (starting at
    /// `start` seconds), over a link of `capacity` (a FIFO queue, 20 ms one
    /// way); the receiver's estimate each second.
    fn run_receiving(rate: f64, capacity: f64, start: f64, seconds: u32) -> Vec<u64> {
        let t0 = Instant::now();
        let mut bwe = Bwe::new(BweConfig::default());
        let (size, gap) = (1200usize, Duration::from_secs_f64(1200.0 * 8.0 / rate));
        let mut link_free = t0;
        let mut arrivals: VecDeque<(Instant, u32)> = VecDeque::new();
        let mut now = t0;
        let mut out = Vec::new();
        let mut next_second = t0 + Duration::from_secs(1);
        while now < t0 + Duration::from_secs(u64::from(seconds)) {
            let stamp = ((start + (now - t0).as_secs_f64()) * 262_144.0) as u64 as u32 & 0x00ff_ffff;
            let begin = link_free.max(now);
            link_free = begin + Duration::from_secs_f64(size as f64 * 8.0 / capacity);
            arrivals.push_back((link_free + Duration::from_millis(20), stamp));
            now += gap;
            while arrivals.front().is_some_and(|(a, _)| *a <= now) {
                let (a, stamp) = arrivals.pop_front().unwrap();
                bwe.on_received(a, stamp, size);
            }
            if now >= next_second {
                out.push(bwe.estimate());
                next_second += Duration::from_secs(1);
            }
        }
        out
    }

    #[test]
    fn the_receiving_side_estimates_a_narrow_link_and_a_wide_one() {
        // 3 Mbit/s into 1: the queue grows, the estimate comes down to it.
        let e = run_receiving(3_000_000.0, 1_000_000.0, 5.0, 15);
        let last = *e.last().unwrap();
        assert!((500_000..=1_300_000).contains(&last), "3 Mbit/s into 1: {e:?}");
        // 2 Mbit/s through 10: the estimate climbs to what arrives.
        let e = run_receiving(2_000_000.0, 10_000_000.0, 5.0, 10);
        let last = *e.last().unwrap();
        assert!((1_900_000..=3_100_000).contains(&last), "2 Mbit/s through 10: {e:?}");
    }

    #[test]
    fn the_receiving_side_unwraps_abs_send_time() {
        // The 24-bit time wraps every 64 s; a packet reordered across the
        // wrap goes back in time, not 64 s ahead.
        let mut bwe = Bwe::new(BweConfig::default());
        let base = 1000 * ABS_SEND_TIME_HZ;
        assert_eq!(bwe.unwrap_send_time(0x00ff_fff0), base);
        assert_eq!(bwe.unwrap_send_time(0x0000_0010), base + 0x20);
        assert_eq!(bwe.unwrap_send_time(0x00ff_fff8), base + 0x8);
        // Bits above the 24 are ignored; a whole turn later counts.
        assert_eq!(bwe.unwrap_send_time(0xff00_0020), base + 0x30);
        for k in 1..=4i64 {
            // Steps of 16 s, four of them: one turn of 64 s.
            let raw = (0x20 + k * 16 * ABS_SEND_TIME_HZ) as u32 & 0x00ff_ffff;
            assert_eq!(bwe.unwrap_send_time(raw), base + 0x30 + k * 16 * ABS_SEND_TIME_HZ);
        }
    }
}
