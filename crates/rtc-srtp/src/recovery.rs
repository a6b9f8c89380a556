//! Loss recovery for RTP, sans-IO: what a sender keeps to answer negative
//! acknowledgements ([`SendHistory`], RFC 4585 section 6.2.1, RFC 4588),
//! and a receiver's [`JitterBuffer`] that restores sequence order, says
//! which packets to ask for again and when, and gives up on them in time.
//!
//! Both work on plaintext RTP (before SRTP protection, after unprotection)
//! and on sequence numbers; neither parses payloads. Memory is bounded by
//! their configuration and allocated only as packets are held, once per
//! slot: a steady stream without loss goes through the jitter buffer
//! without a copy.

use std::time::{Duration, Instant};

use crate::SequenceUnwrapper;

/// Slots of a ring indexed by sequence number: a power of two, so that
/// `seq % len` stays consistent across the 16-bit wrap.
fn ring_len(n: usize) -> usize {
    n.clamp(16, 1 << 15).next_power_of_two()
}

/// A packet sent, kept for retransmission.
#[derive(Debug, Default)]
struct Sent {
    seq: u16,
    at: Option<Instant>,
    resent: Option<Instant>,
    data: Vec<u8>,
}

/// The packets a sender sent last, by sequence number, for answering
/// generic NACKs (RFC 4585 section 6.2.1).
///
/// Holds the newest `packets` packets (rounded up to a power of two) and
/// none older than `max_age`; a packet is handed out for retransmission at
/// most once per `min_interval` (a NACK repeated within a round trip is
/// not answered twice). Memory: `packets` times the longest packet
/// recorded, allocated as slots are first used.
#[derive(Debug)]
pub struct SendHistory {
    slots: Vec<Sent>,
    len: usize,
    max_age: Duration,
}

impl SendHistory {
    /// A history of `packets` packets (16 to 32,768, rounded up to a
    /// power of two) of at most `max_age`. Nothing is allocated yet.
    pub fn new(packets: usize, max_age: Duration) -> Self {
        Self { slots: Vec::new(), len: ring_len(packets), max_age }
    }

    /// Records a packet just sent (its whole plaintext RTP packet).
    pub fn record(&mut self, now: Instant, seq: u16, packet: &[u8]) {
        let i = usize::from(seq) % self.len;
        if self.slots.len() <= i {
            // Every slot at once (one allocation; their buffers come as
            // they are used).
            self.slots.resize_with(self.len, Sent::default);
        }
        let s = &mut self.slots[i];
        s.seq = seq;
        s.at = Some(now);
        s.resent = None;
        s.data.clear();
        s.data.extend_from_slice(packet);
    }

    /// The packet sent as `seq`, if it is still held, is not older than
    /// the maximum age and was not handed out within `min_interval`;
    /// marks it handed out.
    pub fn resend(&mut self, now: Instant, seq: u16, min_interval: Duration) -> Option<&[u8]> {
        let s = self.slots.get_mut(usize::from(seq) % self.len)?;
        let at = s.at.filter(|_| s.seq == seq)?;
        if now.saturating_duration_since(at) > self.max_age
            || s.resent.is_some_and(|r| now.saturating_duration_since(r) < min_interval)
        {
            return None;
        }
        s.resent = Some(now);
        Some(&s.data)
    }

    /// Forgets every packet (the stream restarted); keeps the buffers.
    pub fn clear(&mut self) {
        for s in &mut self.slots {
            s.at = None;
        }
    }
}

/// How a [`JitterBuffer`] behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// Sequence numbers it can hold or wait for at once (rounded up to a
    /// power of two, 16 to 32,768). A packet further ahead of the next one
    /// due than this restarts the buffer there.
    pub capacity: usize,
    /// How long a missing packet is waited for before the packets after it
    /// are released without it.
    pub max_wait: Duration,
    /// Whether missing packets are asked for ([`JitterBuffer::poll_nack`]).
    pub nack: bool,
    /// How many times one packet is asked for.
    pub max_nacks: u8,
    /// Octets of buffer the held packets may take together; a packet that
    /// would need more is dropped (and counted).
    pub max_bytes: usize,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self { capacity: 512, max_wait: Duration::from_millis(200), nack: true, max_nacks: 10, max_bytes: 1 << 20 }
    }
}

/// What a [`JitterBuffer`] has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JitterStats {
    /// Packets given up on: the packets after them were released without
    /// them.
    pub lost: u64,
    /// Packets asked for by NACK (each time asked counts).
    pub nacks: u64,
    /// Packets that arrived after they had been asked for (at least half a
    /// round trip after).
    pub recovered: u64,
    /// Packets that arrived after their turn (given up on, or already
    /// released: duplicates), ignored.
    pub late: u64,
    /// Packets held twice (a duplicate), ignored.
    pub duplicates: u64,
    /// Packets dropped because holding them would pass `max_bytes`.
    pub overflow: u64,
    /// Times the buffer restarted for a packet far ahead of the next due.
    pub restarts: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum SlotState {
    #[default]
    Free,
    /// Not received; packets after it were.
    Missing {
        since: Instant,
        asked: u8,
        last: Option<Instant>,
    },
    Held,
}

#[derive(Debug, Default)]
struct Slot {
    ext: u64,
    state: SlotState,
    timestamp: u32,
    marker: bool,
    payload_type: u8,
    data: Vec<u8>,
}

/// What [`JitterBuffer::push`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// The packet is the next due and nothing waits before it: the caller
    /// hands it on itself (it was not copied).
    Deliver,
    /// Held until the packets before it come or are given up on.
    Held,
    /// Ignored: its turn has passed, it is held already, or it would pass
    /// the byte budget.
    Ignored,
}

/// A packet [`JitterBuffer::pop`] releases, in sequence order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Released<'a> {
    /// The RTP sequence number.
    pub sequence_number: u16,
    /// The RTP timestamp.
    pub timestamp: u32,
    /// The marker bit.
    pub marker: bool,
    /// The payload type.
    pub payload_type: u8,
    /// What was pushed as the payload.
    pub payload: &'a [u8],
}

/// A receiver's reorder buffer for one RTP stream.
///
/// Call order: [`push`](Self::push) each packet (after SRTP, in arrival
/// order); then [`pop`](Self::pop) until `None` and hand what comes out to
/// the depacketizer; when [`poll_timeout`](Self::poll_timeout) passes, `pop`
/// again (missing packets are given up on) and call
/// [`poll_nack`](Self::poll_nack) for the sequence numbers to ask for in a
/// NACK. Sequence numbers come out in order with gaps only where a packet
/// was given up on, so the depacketizer sees the loss.
#[derive(Debug)]
pub struct JitterBuffer {
    config: JitterConfig,
    len: usize,
    slots: Vec<Slot>,
    unwrap: SequenceUnwrapper,
    /// The next extended sequence number due.
    next: Option<u64>,
    /// The highest extended sequence number pushed.
    highest: u64,
    held: usize,
    missing: usize,
    /// Capacity of the slots' buffers, in octets.
    allocated: usize,
    /// When the first packet came, while none has been released: packets
    /// from before it may still arrive (reordered) and start the stream.
    start: Option<Instant>,
    /// How late packets came that were missing and not yet asked for (a
    /// slowly decaying maximum): reordering, not loss. A missing packet is
    /// first asked for after half as long again.
    reorder: Duration,
    /// The round-trip time [`JitterBuffer::poll_nack`] was last given.
    rtt: Duration,
    stats: JitterStats,
}

/// How long the first packet waits for packets sent before it that are
/// overtaken on the way (at most the maximum wait).
const START_WAIT: Duration = Duration::from_millis(30);

impl JitterBuffer {
    /// An empty buffer; nothing is allocated until a packet must be held.
    pub fn new(config: JitterConfig) -> Self {
        Self {
            len: ring_len(config.capacity),
            config,
            slots: Vec::new(),
            unwrap: SequenceUnwrapper::new(),
            next: None,
            highest: 0,
            held: 0,
            missing: 0,
            allocated: 0,
            start: None,
            reorder: Duration::ZERO,
            rtt: Duration::from_millis(100),
            stats: JitterStats::default(),
        }
    }

    /// How long a missing packet is waited for before it is first asked
    /// for: the reordering seen, with a margin, and at most a quarter of
    /// the maximum wait.
    fn nack_delay(&self) -> Duration {
        (self.reorder * 3 / 2).min(self.config.max_wait / 4)
    }

    /// The configuration.
    pub fn config(&self) -> &JitterConfig {
        &self.config
    }

    /// Changes how long missing packets are waited for (as the round-trip
    /// time becomes known).
    pub fn set_max_wait(&mut self, max_wait: Duration) {
        self.config.max_wait = max_wait;
    }

    /// What it has seen.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Packets held, waiting for one before them.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Packets missing (being waited for).
    pub fn missing(&self) -> usize {
        self.missing
    }

    fn slot(&mut self, ext: u64) -> &mut Slot {
        let i = (ext % self.len as u64) as usize;
        if self.slots.len() <= i {
            self.slots.resize_with(self.len, Slot::default);
        }
        &mut self.slots[i]
    }

    /// Takes one packet.
    pub fn push(&mut self, now: Instant, seq: u16, timestamp: u32, marker: bool, pt: u8, payload: &[u8]) -> Push {
        let ext = self.unwrap.unwrap(seq);
        let Some(mut next) = self.next else {
            // The first packet waits a little for any sent before it.
            self.next = Some(ext);
            self.highest = ext;
            self.start = Some(now);
            for s in &mut self.slots {
                s.state = SlotState::Free;
            }
            return self.hold(now, ext, timestamp, marker, pt, payload);
        };
        if ext < next && self.start.is_some() && self.highest - ext < self.len as u64 {
            // Sent before the first packet, and nothing released yet: the
            // stream starts earlier.
            for e in ext + 1..next {
                let s = self.slot(e);
                s.ext = e;
                s.state = SlotState::Missing { since: now, asked: 0, last: None };
                self.missing += 1;
            }
            self.next = Some(ext);
            next = ext;
        }
        if ext < next {
            self.stats.late += 1;
            return Push::Ignored;
        }
        if ext == next && self.held == 0 {
            // Nothing held waits for it: handed on directly. It may have been
            // marked missing (a later packet came and could not be held).
            let len = self.len as u64;
            if let Some(slot) = self.slots.get_mut((ext % len) as usize)
                && slot.ext == ext
                && matches!(slot.state, SlotState::Missing { .. })
            {
                slot.state = SlotState::Free;
                self.missing -= 1;
            }
            self.next = Some(ext + 1);
            self.highest = self.highest.max(ext);
            return Push::Deliver;
        }
        if ext - next >= self.len as u64 {
            // Far ahead (a source that jumped, or a long outage): what was
            // held cannot be completed in order; start over here.
            self.restart(ext);
            return Push::Deliver;
        }
        let since = now;
        if ext > self.highest {
            // Every number up to this one is missing until it is held
            // (this one too, should it not fit the byte budget).
            for e in self.highest + 1..=ext {
                if e >= next {
                    self.slot(e).ext = e;
                    self.slot(e).state = SlotState::Missing { since, asked: 0, last: None };
                    self.missing += 1;
                }
            }
            self.highest = ext;
        }
        self.hold(now, ext, timestamp, marker, pt, payload)
    }

    /// Holds a packet in its slot (within the byte budget).
    fn hold(&mut self, now: Instant, ext: u64, timestamp: u32, marker: bool, pt: u8, payload: &[u8]) -> Push {
        let (max_bytes, allocated) = (self.config.max_bytes, self.allocated);
        let s = self.slot(ext);
        let before = s.state;
        if s.ext == ext && before == SlotState::Held {
            self.stats.duplicates += 1;
            return Push::Ignored;
        }
        let grow = payload.len().saturating_sub(s.data.capacity());
        if allocated.saturating_add(grow) > max_bytes {
            self.stats.overflow += 1;
            return Push::Ignored;
        }
        let cap = s.data.capacity();
        s.data.clear();
        s.data.extend_from_slice(payload);
        let grown = s.data.capacity() - cap;
        s.ext = ext;
        s.state = SlotState::Held;
        s.timestamp = timestamp;
        s.marker = marker;
        s.payload_type = pt;
        self.allocated += grown;
        self.held += 1;
        if let SlotState::Missing { since, last, .. } = before {
            self.missing -= 1;
            // Asked for, and here sooner than half a round trip after: the
            // original, late, rather than the retransmission.
            let original = last.is_none_or(|l| now.saturating_duration_since(l) < self.rtt / 2);
            if !original {
                self.stats.recovered += 1;
            } else if now > since {
                // (The packet that opened a gap was marked missing and held
                // at once: that is no reordering.)
                let late = now.saturating_duration_since(since);
                self.reorder = late.max(self.reorder - self.reorder / 16);
            }
        }
        Push::Held
    }

    fn restart(&mut self, ext: u64) {
        self.stats.restarts += 1;
        self.stats.lost += self.missing as u64;
        for s in &mut self.slots {
            s.state = SlotState::Free;
        }
        self.held = 0;
        self.missing = 0;
        self.start = None;
        self.next = Some(ext + 1);
        self.highest = ext;
    }

    /// The next packet in order, if it is held; packets missing for longer
    /// than the maximum wait are given up on first.
    pub fn pop(&mut self, now: Instant) -> Option<Released<'_>> {
        if let Some(start) = self.start {
            if now.saturating_duration_since(start) < START_WAIT.min(self.config.max_wait) {
                return None;
            }
            self.start = None;
        }
        loop {
            let e = self.next?;
            if e > self.highest {
                return None;
            }
            let max_wait = self.config.max_wait;
            let i = (e % self.len as u64) as usize;
            let s = self.slots.get_mut(i)?;
            match s.state {
                SlotState::Held if s.ext == e => {
                    s.state = SlotState::Free;
                    self.held -= 1;
                    self.next = Some(e + 1);
                    let s = &self.slots[i];
                    return Some(Released {
                        sequence_number: e as u16,
                        timestamp: s.timestamp,
                        marker: s.marker,
                        payload_type: s.payload_type,
                        payload: &s.data,
                    });
                }
                SlotState::Missing { since, .. } if s.ext == e => {
                    if now.saturating_duration_since(since) < max_wait {
                        return None;
                    }
                    s.state = SlotState::Free;
                    self.missing -= 1;
                    self.stats.lost += 1;
                    self.next = Some(e + 1);
                }
                // Cannot happen (every number between `next` and `highest`
                // is held or missing); moving on keeps the buffer live.
                _ => self.next = Some(e + 1),
            }
        }
    }

    /// Missing packets to ask for now, at most `out.len()`, written into
    /// `out`; returns how many. Each is asked for at most
    /// [`JitterConfig::max_nacks`] times, again only after `rtt`, and not
    /// once it is given up on.
    pub fn poll_nack(&mut self, now: Instant, rtt: Duration, out: &mut [u16]) -> usize {
        if !self.config.nack || self.missing == 0 {
            return 0;
        }
        let Some(next) = self.next else { return 0 };
        self.rtt = rtt;
        let (max_wait, max_nacks, len) = (self.config.max_wait, self.config.max_nacks, self.len as u64);
        let delay = self.nack_delay();
        let mut n = 0;
        for e in next..=self.highest {
            if n == out.len() {
                break;
            }
            let Some(s) = self.slots.get_mut((e % len) as usize) else { continue };
            let SlotState::Missing { since, asked, last } = &mut s.state else { continue };
            if s.ext != e || *asked >= max_nacks || now.saturating_duration_since(*since) >= max_wait {
                continue;
            }
            let due = match last {
                Some(l) => now.saturating_duration_since(*l) >= rtt,
                None => now.saturating_duration_since(*since) >= delay,
            };
            if !due {
                continue;
            }
            *asked += 1;
            *last = Some(now);
            out[n] = e as u16;
            n += 1;
        }
        self.stats.nacks += n as u64;
        n
    }

    /// When something is next due: a missing packet to give up on, or one
    /// to ask for again after `rtt`.
    pub fn poll_timeout(&self, rtt: Duration) -> Option<Instant> {
        if let Some(start) = self.start {
            return Some(start + START_WAIT.min(self.config.max_wait));
        }
        if self.missing == 0 {
            return None;
        }
        let next = self.next?;
        let len = self.len as u64;
        let delay = self.nack_delay();
        let mut at: Option<Instant> = None;
        let mut first = true;
        for e in next..=self.highest {
            let Some(s) = self.slots.get((e % len) as usize) else { continue };
            let SlotState::Missing { since, asked, last } = s.state else { continue };
            let mut due = |t: Instant| at = Some(at.map_or(t, |a| a.min(t)));
            if first {
                // Only the first missing packet's deadline matters: the
                // others are given up on no earlier.
                due(since + self.config.max_wait);
                first = false;
            }
            if self.config.nack && asked < self.config.max_nacks {
                match last {
                    Some(l) => due(l + rtt),
                    None => due(since + delay),
                }
            }
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn popped(j: &mut JitterBuffer, now: Instant) -> Vec<u16> {
        let mut out = Vec::new();
        while let Some(r) = j.pop(now) {
            out.push(r.sequence_number);
        }
        out
    }

    /// A buffer past its start: `first` pushed and released.
    fn started(config: JitterConfig, t: Instant, first: u16) -> JitterBuffer {
        let mut j = JitterBuffer::new(config);
        assert_eq!(j.push(t, first, 0, false, 96, b"x"), Push::Held, "the first packet waits");
        assert_eq!(j.poll_timeout(Duration::ZERO), Some(t + START_WAIT));
        assert_eq!(popped(&mut j, t), Vec::<u16>::new());
        assert_eq!(popped(&mut j, t + START_WAIT), vec![first]);
        j
    }

    #[test]
    fn in_order_packets_pass_without_a_copy() {
        let t = Instant::now();
        let mut j = started(JitterConfig::default(), t, 65_529);
        let allocated = j.allocated;
        for seq in 65_530u16..=65_535 {
            assert_eq!(j.push(t, seq, 0, false, 96, b"x"), Push::Deliver);
        }
        assert_eq!(j.push(t, 0, 0, false, 96, b"x"), Push::Deliver, "across the wrap");
        assert_eq!(j.allocated, allocated, "nothing more held");
        assert_eq!(j.poll_timeout(Duration::from_millis(50)), None);
    }

    #[test]
    fn packets_overtaking_the_first_one_start_the_stream() {
        let t = Instant::now();
        let mut j = JitterBuffer::new(JitterConfig::default());
        assert_eq!(j.push(t, 102, 0, false, 96, b"c"), Push::Held);
        assert_eq!(j.push(t, 100, 0, false, 96, b"a"), Push::Held, "sent before the first to arrive");
        assert_eq!(j.missing(), 1, "101 is awaited");
        assert_eq!(j.push(t, 101, 0, false, 96, b"b"), Push::Held);
        assert_eq!(popped(&mut j, t + START_WAIT), vec![100, 101, 102]);
        assert_eq!(j.push(t, 99, 0, false, 96, b"z"), Push::Ignored, "once released, the start is fixed");
    }

    #[test]
    fn reordered_packets_come_out_in_order() {
        let t = Instant::now();
        let mut j = started(JitterConfig::default(), t, 10);
        assert_eq!(j.push(t, 12, 0, false, 96, b"c"), Push::Held);
        assert_eq!(j.push(t, 13, 0, true, 96, b"d"), Push::Held);
        assert_eq!(popped(&mut j, t), Vec::<u16>::new(), "11 is awaited");
        assert_eq!(j.missing(), 1);
        assert_eq!(j.push(t, 11, 0, false, 96, b"b"), Push::Held);
        let got: Vec<(u16, Vec<u8>, bool)> =
            std::iter::from_fn(|| j.pop(t).map(|r| (r.sequence_number, r.payload.to_vec(), r.marker))).collect();
        assert_eq!(got, vec![(11, b"b".to_vec(), false), (12, b"c".to_vec(), false), (13, b"d".to_vec(), true)]);
        assert_eq!(j.push(t, 12, 0, false, 96, b"c"), Push::Ignored, "after its turn");
        assert_eq!(j.push(t, 14, 0, false, 96, b"e"), Push::Deliver, "nothing waits any more");
        assert_eq!(j.stats().late, 1);
        assert_eq!(j.stats().lost, 0);
    }

    #[test]
    fn missing_packets_are_asked_for_once_per_rtt_then_given_up_on() {
        let t = Instant::now();
        let rtt = Duration::from_millis(40);
        let config = JitterConfig { max_wait: Duration::from_millis(100), ..JitterConfig::default() };
        let mut j = started(config, t, 1);
        j.push(t, 4, 0, false, 96, b"4");
        let mut out = [0u16; 8];
        assert_eq!(j.poll_timeout(rtt), Some(t), "asking is due at once");
        let n = j.poll_nack(t, rtt, &mut out);
        assert_eq!(&out[..n], &[2, 3]);
        assert_eq!(j.poll_nack(t + Duration::from_millis(10), rtt, &mut out), 0, "not again within an RTT");
        assert_eq!(j.poll_timeout(rtt), Some(t + rtt));
        // 2 comes back; 3 does not.
        assert_eq!(j.push(t + Duration::from_millis(30), 2, 0, false, 96, b"2"), Push::Held);
        assert_eq!(popped(&mut j, t + Duration::from_millis(30)), vec![2]);
        let n = j.poll_nack(t + rtt, rtt, &mut out);
        assert_eq!(&out[..n], &[3], "asked again after an RTT");
        assert_eq!(j.poll_timeout(rtt), Some(t + Duration::from_millis(80)));
        assert_eq!(popped(&mut j, t + Duration::from_millis(99)), Vec::<u16>::new());
        assert_eq!(popped(&mut j, t + Duration::from_millis(100)), vec![4], "3 given up on");
        let s = j.stats();
        assert_eq!((s.lost, s.nacks, s.recovered), (1, 3, 1));
        assert_eq!(j.poll_timeout(rtt), None);
        assert_eq!(j.push(t, 3, 0, false, 96, b"3"), Push::Ignored, "too late");
    }

    #[test]
    fn a_far_jump_restarts_and_memory_stays_within_the_budget() {
        let t = Instant::now();
        let config = JitterConfig { capacity: 16, max_bytes: 100, ..JitterConfig::default() };
        let mut j = started(config, t, 0);
        for seq in 2..10 {
            j.push(t, seq, 0, false, 96, &[0; 40]);
        }
        assert_eq!(j.held(), 2, "two of 40 octets fit in 100 (with the first packet's)");
        assert_eq!(j.stats().overflow, 6);
        assert!(j.allocated <= 100);
        assert_eq!(j.push(t, 1000, 0, false, 96, b"x"), Push::Deliver, "a restart");
        assert_eq!((j.held(), j.missing(), j.stats().restarts), (0, 0, 1));
        assert_eq!(j.push(t, 1001, 0, false, 96, b"x"), Push::Deliver);
    }

    #[test]
    fn reordering_seen_delays_the_first_nack() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let mut j = started(JitterConfig::default(), t, 1);
        let mut out = [0u16; 4];
        // 2 overtaken by 3, arriving 8 ms late without having been asked
        // for (poll_nack not called): reordering.
        j.push(t, 3, 0, false, 96, b"3");
        j.push(t + ms(8), 2, 0, false, 96, b"2");
        assert_eq!(popped(&mut j, t + ms(8)), vec![2, 3]);
        // Now a gap is asked for only after 12 ms.
        j.push(t + ms(20), 5, 0, false, 96, b"5");
        assert_eq!(j.poll_timeout(ms(50)), Some(t + ms(32)));
        assert_eq!(j.poll_nack(t + ms(31), ms(50), &mut out), 0);
        assert_eq!(j.poll_nack(t + ms(32), ms(50), &mut out), 1);
        assert_eq!(out[0], 4);
    }

    /// With the byte budget spent, a packet after a gap cannot be held and
    /// stays missing; the packet due next then goes straight through and
    /// the counts stay right (found by fuzzing).
    #[test]
    fn a_packet_due_next_goes_through_when_what_follows_could_not_be_held() {
        let t = Instant::now();
        let config = JitterConfig { capacity: 16, max_bytes: 40, ..JitterConfig::default() };
        let mut j = started(config, t, 0);
        assert_eq!(j.push(t, 2, 0, false, 96, &[0; 60]), Push::Ignored, "over the budget");
        assert_eq!((j.held(), j.missing()), (0, 2), "1 and 2 are missing");
        assert_eq!(j.push(t, 1, 0, false, 96, b"1"), Push::Deliver);
        assert_eq!((j.held(), j.missing()), (0, 1), "only 2 now");
        assert_eq!(j.push(t, 2, 0, false, 96, b"2"), Push::Deliver);
        assert_eq!((j.held(), j.missing()), (0, 0));
        assert_eq!(j.push(t, 3, 0, false, 96, b"3"), Push::Deliver);
    }

    #[test]
    fn without_nack_it_only_reorders() {
        let t = Instant::now();
        let mut j = started(JitterConfig { nack: false, ..JitterConfig::default() }, t, 1);
        j.push(t, 3, 0, false, 96, b"3");
        assert_eq!(j.poll_nack(t, Duration::ZERO, &mut [0; 4]), 0);
        assert_eq!(j.poll_timeout(Duration::ZERO), Some(t + JitterConfig::default().max_wait));
    }

    #[test]
    fn history_answers_each_packet_once_per_interval_and_not_when_old() {
        let t = Instant::now();
        let mut h = SendHistory::new(16, Duration::from_secs(1));
        for seq in 0..20u16 {
            h.record(t, seq, &[seq as u8; 3]);
        }
        let i = Duration::from_millis(50);
        assert_eq!(h.resend(t, 2, i), None, "overwritten by 18");
        assert_eq!(h.resend(t, 18, i), Some(&[18u8; 3][..]));
        assert_eq!(h.resend(t + Duration::from_millis(10), 18, i), None, "not twice within the interval");
        assert!(h.resend(t + i, 18, i).is_some());
        assert_eq!(h.resend(t + Duration::from_secs(2), 19, i), None, "too old");
        h.clear();
        assert_eq!(h.resend(t, 17, i), None);
    }
}
