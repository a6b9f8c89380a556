//! A deterministic network for whole calls in simulated time: hosts each
//! holding an [`Endpoint`], links with seeded loss, latency and jitter (so
//! reordering), an optional bandwidth cap, a full-cone NAT in front of a
//! host, and cut links. [`Net::run_until`] jumps from one wake-up (a
//! timer or a delivery) to the next, so a 30-second consent expiry takes
//! milliseconds.

#![allow(dead_code, unreachable_pub)]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rtc_candidate::Component;
use rtc_proto::{
    ConnHandle, Connection, ConnectionConfig, ConnectionDescription, ConnectionEvent, DataMessage, Direction, Endpoint,
    Event, FrameInfo, MIN_TRANSMIT_BUFFER, SocketConfig, SocketEvent, SocketId, SocketOptions,
};

/// How the links behave.
#[derive(Debug, Clone)]
pub struct Link {
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// One-way delay.
    pub latency: Duration,
    /// Extra random delay, 0 to this (datagrams overtake each other).
    pub jitter: Duration,
    /// Bits per second leaving each host (0: unlimited); datagrams queue
    /// behind each other and are dropped when 200 ms behind.
    pub bandwidth: u64,
}

impl Default for Link {
    fn default() -> Self {
        Self { loss: 0.0, latency: Duration::from_millis(10), jitter: Duration::ZERO, bandwidth: 0 }
    }
}

/// A full-cone NAT in front of a host: datagrams from its private address
/// leave from `public` (same port); datagrams to `public` reach the host
/// once it has sent from that port. The host's private address is not
/// reachable from outside.
#[derive(Debug, Clone, Copy)]
pub struct Nat {
    pub public: IpAddr,
}

pub struct Host {
    pub name: &'static str,
    pub endpoint: Endpoint,
    /// Local address → socket.
    pub addrs: HashMap<SocketAddr, SocketId>,
    pub nat: Option<Nat>,
    /// Ports the NAT has opened (private port).
    pub nat_open: Vec<u16>,
    pub events: Vec<(Instant, ConnHandle, Event)>,
    pub frames: Vec<(Instant, ConnHandle, FrameInfo, Vec<u8>)>,
    pub data: Vec<(Instant, ConnHandle, DataMessage, Vec<u8>)>,
    /// When the host's uplink is free again (bandwidth cap).
    pub busy_until: Instant,
    /// The longest a datagram of this host queued behind others for its
    /// uplink (bandwidth cap) since the test last reset it.
    pub max_queue_delay: Duration,
    pub sent: u64,
}

impl Host {
    /// The connection events of `h`, in order.
    pub fn conn_events(&self, h: ConnHandle) -> Vec<ConnectionEvent> {
        self.events
            .iter()
            .filter(|(_, c, _)| *c == h)
            .filter_map(|(_, _, e)| match e {
                Event::Connection(e) => Some(e.clone()),
                _ => None,
            })
            .collect()
    }

    /// The socket events, in order.
    pub fn socket_events(&self) -> Vec<SocketEvent> {
        self.events
            .iter()
            .filter_map(|(_, _, e)| match e {
                Event::Socket { event, .. } => Some(event.clone()),
                _ => None,
            })
            .collect()
    }

    /// When `h` fired an event matching `f` first.
    pub fn when(&self, h: ConnHandle, f: impl Fn(&ConnectionEvent) -> bool) -> Option<Instant> {
        self.events.iter().find_map(|(t, c, e)| match e {
            Event::Connection(e) if *c == h && f(e) => Some(*t),
            _ => None,
        })
    }

    pub fn has(&self, h: ConnHandle, f: impl Fn(&ConnectionEvent) -> bool) -> bool {
        self.when(h, f).is_some()
    }

    /// The frames `h` received on its remote track with SSRC `ssrc`.
    pub fn frames_of(&self, h: ConnHandle, ssrc: u32) -> Vec<&[u8]> {
        self.frames.iter().filter(|(_, c, f, _)| *c == h && f.ssrc == ssrc).map(|(_, _, _, d)| d.as_slice()).collect()
    }

    pub fn conn(&self, h: ConnHandle) -> &Connection {
        self.endpoint.connection(h).expect("connection")
    }
}

struct Flight {
    from: SocketAddr,
    to: SocketAddr,
    data: Vec<u8>,
}

pub struct Net {
    pub start: Instant,
    pub now: Instant,
    pub link: Link,
    pub hosts: Vec<Host>,
    /// Every datagram is dropped (a cut cable).
    pub cut: bool,
    /// Datagrams between these two hosts are dropped.
    pub cut_between: Option<(usize, usize)>,
    /// Datagrams for which this says true are dropped (a filter).
    pub drop_if: Option<fn(&[u8]) -> bool>,
    rng: StdRng,
    in_flight: BinaryHeap<Reverse<(Instant, u64)>>,
    flights: HashMap<u64, Flight>,
    seq: u64,
    next_port: u16,
    buf: Vec<u8>,
    frame_buf: Vec<u8>,
    pub delivered: u64,
    pub lost: u64,
    /// When set, every datagram a host sends is logged here (time, host,
    /// the datagram), lost or not.
    pub sent_log: Option<Vec<(Instant, usize, Vec<u8>)>>,
    /// Steps in a row that did not move time (a timer that never settles).
    stuck: u32,
}

pub fn wallclock() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

impl Net {
    pub fn new(seed: u64) -> Self {
        let start = Instant::now();
        Self {
            start,
            now: start,
            link: Link::default(),
            hosts: Vec::new(),
            cut: false,
            drop_if: None,
            cut_between: None,
            rng: StdRng::seed_from_u64(seed),
            in_flight: BinaryHeap::new(),
            flights: HashMap::new(),
            seq: 0,
            next_port: 40_000,
            buf: vec![0; MIN_TRANSMIT_BUFFER],
            frame_buf: Vec::new(),
            delivered: 0,
            lost: 0,
            sent_log: None,
            stuck: 0,
        }
    }

    /// A host with one socket on `ip` (one address; two without mux).
    pub fn host(&mut self, name: &'static str, ip: [u8; 4], options: SocketOptions) -> usize {
        self.host_on(name, ip, options, rtc_dtls::Engine::Dimpl)
    }

    /// [`Net::host`] whose DTLS associations run on `engine`.
    pub fn host_on(
        &mut self,
        name: &'static str,
        ip: [u8; 4],
        options: SocketOptions,
        engine: rtc_dtls::Engine,
    ) -> usize {
        let mut h = Host {
            name,
            endpoint: Endpoint::new(),
            addrs: HashMap::new(),
            nat: None,
            nat_open: Vec::new(),
            events: Vec::new(),
            frames: Vec::new(),
            data: Vec::new(),
            busy_until: self.now,
            max_queue_delay: Duration::ZERO,
            sent: 0,
        };
        let components = if options.mux { 1 } else { 2 };
        let mut locals = Vec::new();
        for c in 1..=components {
            let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), self.next_port);
            self.next_port += 1;
            locals.push((Component::new(c).expect("component"), addr));
        }
        let cert = rtc_dtls::Certificate::generate().expect("certificate");
        let mut config = SocketConfig::new(format!("{name}-s0"), locals.clone(), options, cert);
        config.dtls_engine = engine;
        let id = h.endpoint.add_socket(config);
        for (_, a) in locals {
            h.addrs.insert(a, id);
        }
        self.hosts.push(h);
        self.hosts.len() - 1
    }

    /// The host's first socket.
    pub fn socket(&self, host: usize) -> SocketId {
        *self.hosts[host].addrs.values().min().expect("socket")
    }

    /// A new connection on host `host`'s first socket, seeded.
    pub fn connect(&mut self, host: usize, mut config: ConnectionConfig, seed: u64) -> ConnHandle {
        config.seed = Some(seed);
        let now = self.now;
        let socket = self.socket(host);
        let ep = &mut self.hosts[host].endpoint;
        let h = ep.insert(Connection::new(config, now, wallclock()).expect("connection"));
        ep.add_socket_to(now, h, socket).expect("add socket");
        h
    }

    pub fn conn_mut(&mut self, host: usize, h: ConnHandle) -> rtc_proto::ConnectionMut<'_> {
        self.hosts[host].endpoint.connection_mut(h).expect("connection")
    }

    /// Sends `a`'s local description to `b` as JSON, through `edit`.
    pub fn signal_one(
        &mut self,
        a: (usize, ConnHandle),
        b: (usize, ConnHandle),
        edit: impl Fn(&mut ConnectionDescription),
    ) -> Result<(), rtc_proto::Error> {
        let mut d = self.hosts[a.0].conn(a.1).description(Direction::Local).expect("local description");
        edit(&mut d);
        let json = d.to_json();
        let now = self.now;
        self.conn_mut(b.0, b.1).set_description(now, ConnectionDescription::from_json(&json)?, Direction::Remote)
    }

    /// Exchanges descriptions both ways (JSON), with `edit` applied to each.
    pub fn signal_with(
        &mut self,
        a: (usize, ConnHandle),
        b: (usize, ConnHandle),
        edit: impl Fn(&mut ConnectionDescription),
    ) {
        self.signal_one(a, b, &edit).expect("a → b");
        self.signal_one(b, a, &edit).expect("b → a");
    }

    pub fn signal(&mut self, a: (usize, ConnHandle), b: (usize, ConnHandle)) {
        self.signal_with(a, b, |_| {});
    }

    /// DTLS-SRTP signaling: descriptions without `keys`.
    pub fn signal_dtls(&mut self, a: (usize, ConnHandle), b: (usize, ConnHandle)) {
        self.signal_with(a, b, |d| d.keys.clear());
    }

    /// Puts host `i` behind a NAT with public address `public`.
    pub fn nat(&mut self, i: usize, public: [u8; 4]) {
        self.hosts[i].nat = Some(Nat { public: IpAddr::V4(Ipv4Addr::from(public)) });
    }

    fn host_of(&self, addr: SocketAddr) -> Option<(usize, SocketAddr)> {
        for (i, h) in self.hosts.iter().enumerate() {
            if let Some(n) = h.nat {
                if addr.ip() == n.public && h.nat_open.contains(&addr.port()) {
                    let private = h.addrs.keys().find(|a| a.port() == addr.port())?;
                    return Some((i, *private));
                }
                continue; // a private address behind a NAT is not reachable
            }
            if h.addrs.contains_key(&addr) {
                return Some((i, addr));
            }
        }
        None
    }

    /// Drains every host's output: datagrams into the network, events and
    /// frames into the hosts' logs.
    pub fn drain(&mut self) {
        for i in 0..self.hosts.len() {
            while let Some((_, t)) = self.hosts[i].endpoint.poll_transmit(self.now, &mut self.buf) {
                let data = self.buf[..t.len].to_vec();
                self.send(i, t.source, t.destination, data);
            }
            let now = self.now;
            let h = &mut self.hosts[i];
            while let Some((c, e)) = h.endpoint.poll_event() {
                h.events.push((now, c, e));
            }
            while let Some((c, f)) = h.endpoint.poll_frame(&mut self.frame_buf) {
                h.frames.push((now, c, f, std::mem::take(&mut self.frame_buf)));
            }
            while let Some((c, m)) = h.endpoint.poll_data(&mut self.frame_buf) {
                h.data.push((now, c, m, std::mem::take(&mut self.frame_buf)));
            }
        }
    }

    fn send(&mut self, from_host: usize, mut from: SocketAddr, to: SocketAddr, data: Vec<u8>) {
        if let Some(log) = self.sent_log.as_mut() {
            log.push((self.now, from_host, data.clone()));
        }
        let h = &mut self.hosts[from_host];
        h.sent += 1;
        if let Some(n) = h.nat {
            if !h.nat_open.contains(&from.port()) {
                h.nat_open.push(from.port());
            }
            from = SocketAddr::new(n.public, from.port());
        }
        let mut at = self.now + self.link.latency;
        if self.link.bandwidth > 0 {
            let wire = Duration::from_secs_f64((data.len() as f64 + 28.0) * 8.0 / self.link.bandwidth as f64);
            let start = h.busy_until.max(self.now);
            if start > self.now + Duration::from_millis(200) {
                self.lost += 1;
                return;
            }
            h.max_queue_delay = h.max_queue_delay.max(start - self.now);
            h.busy_until = start + wire;
            at = h.busy_until + self.link.latency;
        }
        if !self.link.jitter.is_zero() {
            at += self.link.jitter.mul_f64(self.rng.random::<f64>());
        }
        let cut_pair = self.cut_between.is_some_and(|(a, b)| {
            let dst = self.host_of(to).map(|(i, _)| i);
            dst.is_some_and(|d| (from_host, d) == (a, b) || (from_host, d) == (b, a))
        });
        let filtered = self.drop_if.is_some_and(|f| f(&data));
        if self.cut || cut_pair || filtered || self.rng.random::<f64>() < self.link.loss {
            self.lost += 1;
            return;
        }
        self.seq += 1;
        self.flights.insert(self.seq, Flight { from, to, data });
        self.in_flight.push(Reverse((at, self.seq)));
    }

    /// The next instant something happens.
    fn next_wakeup(&self) -> Option<Instant> {
        let timers = self.hosts.iter().filter_map(|h| h.endpoint.poll_timeout()).min();
        let flight = self.in_flight.peek().map(|Reverse((t, _))| *t);
        match (timers, flight) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
        .map(|t| t.max(self.now))
    }

    /// One step: to the next wake-up (not past `limit`), deliveries, timers,
    /// output.
    pub fn step(&mut self, limit: Instant) -> bool {
        self.drain();
        let Some(t) = self.next_wakeup().filter(|t| *t <= limit) else {
            self.now = limit;
            return false;
        };
        if t == self.now {
            self.stuck += 1;
            assert!(self.stuck < 10_000, "time does not move: a timer stays due at {:?}", self.now - self.start);
        } else {
            self.stuck = 0;
        }
        self.now = t;
        while let Some(Reverse((at, id))) = self.in_flight.peek().copied() {
            if at > self.now {
                break;
            }
            self.in_flight.pop();
            let Some(mut f) = self.flights.remove(&id) else { continue };
            let Some((i, local)) = self.host_of(f.to) else {
                self.lost += 1;
                continue;
            };
            let socket = self.hosts[i].addrs[&local];
            self.delivered += 1;
            let now = self.now;
            let _ = self.hosts[i].endpoint.handle_datagram(now, socket, local, f.from, &mut f.data);
        }
        for h in &mut self.hosts {
            h.endpoint.handle_timeout(self.now);
        }
        self.drain();
        true
    }

    /// Runs until `done` holds or `limit` of simulated time has passed;
    /// whether `done` held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Net) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            self.drain();
            if done(self) {
                return true;
            }
            if !self.step(end) {
                return done(self);
            }
        }
    }

    /// Runs for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.step(end) {}
    }

    pub fn connected(&self, host: usize, h: ConnHandle) -> bool {
        self.hosts[host].endpoint.connection(h).is_some_and(Connection::is_connected)
    }

    /// Simulated time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }
}
