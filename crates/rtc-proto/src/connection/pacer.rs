//! Pacing: with a bandwidth estimate, media leaves at 2.5 times it (as
//! libwebrtc paces) in bursts of at most 5 ms worth, instead of a whole
//! frame at once; a large key frame spreads over tens of milliseconds
//! rather than filling the bottleneck's queue in one go. Audio goes ahead
//! of video the pacer holds back (and still counts against the budget);
//! retransmissions are sent at once and counted. Frames are not made to
//! wait more than 2 s: past that the rate rises to send them in time.
//! Without transport-cc there is no estimate and nothing is paced.

use std::time::{Duration, Instant};

use super::Connection;

/// Pacing rate over the estimate.
const FACTOR: f64 = 2.5;
/// The most that leaves back to back.
const BURST: Duration = Duration::from_millis(5);
/// The longest the queued frames are made to wait: past it the pacing rate
/// rises to send them within it (as libwebrtc's pacer does), whatever the
/// estimate; an application that writes more than the estimate gets late
/// frames, not lost ones.
const MAX_QUEUE_TIME: Duration = Duration::from_secs(2);

/// A leaky bucket of octets.
#[derive(Debug, Default)]
pub(crate) struct Pacer {
    /// Octets that may leave now; negative after a packet larger than what
    /// was left.
    budget: f64,
    last: Option<Instant>,
    /// The rate of the last refill, octets per second.
    rate: f64,
}

impl Pacer {
    /// Adds what `rate` (bits per second) allows since the last refill.
    pub(crate) fn refill(&mut self, now: Instant, rate: f64) {
        self.rate = rate / 8.0;
        let dt = self.last.map_or(0.0, |l| now.saturating_duration_since(l).as_secs_f64());
        self.last = Some(now);
        self.budget = (self.budget + self.rate * dt).min(self.rate * BURST.as_secs_f64());
    }

    /// Whether a packet may leave now.
    pub(crate) fn allows(&self) -> bool {
        self.budget >= 0.0
    }

    /// A packet of `len` octets left.
    pub(crate) fn consume(&mut self, len: usize) {
        self.budget -= len as f64;
    }

    /// When a packet may leave again, if not now.
    pub(crate) fn next(&self) -> Option<Instant> {
        if self.allows() || self.rate <= 0.0 {
            return None;
        }
        // Rounded up, and a microsecond more: the refill then certainly
        // covers the deficit (time moves in nanoseconds, the budget in
        // fractions of an octet).
        let wait = (-self.budget / self.rate * 1e6).ceil() as u64 + 1;
        Some(self.last? + Duration::from_micros(wait))
    }
}

impl Connection {
    /// The pacing rate in bits per second, when there is an estimate:
    /// [`FACTOR`] times it, or what sends the queued frames within
    /// [`MAX_QUEUE_TIME`] if that is more.
    pub(crate) fn pacing_rate(&self) -> Option<f64> {
        let drain = self.send.bytes() as f64 * 8.0 / MAX_QUEUE_TIME.as_secs_f64();
        self.bwe.as_ref().map(|b| (b.estimate() as f64 * FACTOR).max(drain))
    }

    /// When the pacer lets the frames waiting go on.
    pub(crate) fn pacer_timeout(&self) -> Option<Instant> {
        if self.send.is_empty() || self.bwe.is_none() {
            return None;
        }
        self.pacer.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refills_at_the_rate_and_bursts_are_capped() {
        let t = Instant::now();
        let mut p = Pacer::default();
        p.refill(t, 8_000_000.0); // 1,000,000 octets a second
        assert!(p.allows());
        p.consume(1200);
        assert!(!p.allows());
        assert_eq!(p.next(), Some(t + Duration::from_micros(1201)));
        p.refill(t + Duration::from_millis(100), 8_000_000.0);
        assert!((p.budget - 5000.0).abs() < 1e-6, "at most 5 ms worth: {}", p.budget);
    }
}
