//! A media server's cost per idle connection: N connections (default
//! 10,000), each with one audio and one video track sent both ways but no
//! media written, on ONE server address driven from one thread; rtc-proto's
//! `Endpoint` side by side with str0m 0.25's `Rtc` in the same run.
//!
//! The network is in memory (no sockets, no syscalls) and time is simulated:
//! it jumps to the next wake-up of either side or the next delivery (at
//! least 1 ms ahead), datagrams take 5 ms one way. The server has one
//! address; each of the N peers has its own synthetic address, so every
//! connection has its own 4-tuple as it would on the Internet. Peers are
//! the same stack as the server (rtc-proto peers in one second `Endpoint`
//! with one socket each; str0m peers are `Rtc`s), keyed by DTLS-SRTP, full
//! ICE on both sides; they are connected in batches.
//!
//! Only the SERVER side is measured. Every server-side call (building a
//! connection, signaling, datagrams in, timeouts, draining output, and for
//! str0m the routing and timer bookkeeping a server loop needs around
//! `Rtc`, which rtc-proto's `Endpoint` does inside) runs inside
//! `Meter::run`, which
//!
//! - times it (wall time of the call: `Instant` before and after), and
//! - sums allocation-counter's `bytes_current` of the call: the bytes it
//!   allocated minus the bytes it freed. What a server-side call hands out
//!   (a transmit buffer, an event, an SDP or JSON string) is dropped inside
//!   a server-side call too, as a server loop would after sending or
//!   reading it, so the sum is the heap the server side holds. Parsing the
//!   peer's description is also inside, so what the server keeps of it is
//!   counted.
//!
//! The same heap figure is cross-checked at the end by dropping the whole
//! server side under allocation-counter (the bytes freed).
//!
//! Run: `cd benches && cargo bench --bench endpoint`
//! (`RTC_EP_CONNECTIONS=N`, default 10000; `RTC_EP_BATCH=B` connections
//! connected at a time, default 500; `RTC_EP_HOLD=SECS` simulated idle
//! hold, default 30; `RTC_EP_STR0M_ICE_LITE=1` makes the str0m server
//! ICE-lite; `RTC_EP_ONLY=rtc-proto` or `str0m` runs one stack alone, for
//! profiling; `RTC_EP_SDES=1` keys rtc-proto's connections by SDES keys in
//! the descriptions instead of DTLS-SRTP, with `RTC_EP_ONLY=rtc-proto`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rtc_candidate::Component;
use rtc_codecs::Kind;
use rtc_proto::{
    ConnHandle, Connection, ConnectionConfig, ConnectionDescription, Direction, Endpoint, MIN_TRANSMIT_BUFFER,
    SocketConfig, SocketId, SocketOptions, StreamDescription, TrackDescription,
};

const LATENCY: Duration = Duration::from_millis(5);
const QUANTUM: Duration = Duration::from_millis(1);

/// Time and heap of the server-side calls.
#[derive(Default)]
struct Meter {
    time: Duration,
    heap: i64,
    calls: u64,
}

impl Meter {
    fn run<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let mut out = None;
        let t = Instant::now();
        let info = allocation_counter::measure(|| out = Some(f()));
        self.time += t.elapsed();
        self.heap += info.bytes_current;
        self.calls += 1;
        out.expect("ran")
    }
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn server_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 3478)
}

/// Peer `i`'s address: 10.a.b.c:40000 with c in 1..=250.
fn peer_addr(i: usize) -> SocketAddr {
    let (hi, c) = (i / 250, (i % 250) as u8 + 1);
    let (a, b) = (1 + (hi / 250) as u8, (hi % 250) as u8);
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, a, b, c)), 40_000)
}

fn wallclock() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// Datagrams in flight, in order of arrival (the latency is constant).
#[derive(Default)]
struct Wire {
    flights: VecDeque<Flight>,
    pool: Vec<Vec<u8>>,
}

struct Flight {
    at: Instant,
    from: SocketAddr,
    to: SocketAddr,
    data: Vec<u8>,
}

impl Wire {
    fn send(&mut self, at: Instant, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        let mut data = self.pool.pop().unwrap_or_else(|| Vec::with_capacity(MIN_TRANSMIT_BUFFER));
        data.clear();
        data.extend_from_slice(bytes);
        self.flights.push_back(Flight { at: at + LATENCY, from, to, data });
    }

    fn due(&mut self, now: Instant) -> Option<Flight> {
        if self.flights.front().is_some_and(|f| f.at <= now) { self.flights.pop_front() } else { None }
    }

    fn recycle(&mut self, f: Flight) {
        self.pool.push(f.data);
    }

    fn next(&self) -> Option<Instant> {
        self.flights.front().map(|f| f.at)
    }
}

/// Counts of the server's datagrams.
#[derive(Default, Clone, Copy)]
struct Packets {
    sent: u64,
    received: u64,
    /// Sent by kind (RFC 7983 first octet): STUN, DTLS, RTCP, RTP.
    kinds: [u64; 4],
}

impl Packets {
    fn sent(&mut self, d: &[u8]) {
        self.sent += 1;
        let k = match d.first() {
            Some(0..=3) => 0,
            Some(20..=63) => 1,
            Some(128..=191) if d.get(1).is_some_and(|pt| (192..=223).contains(pt)) => 2,
            _ => 3,
        };
        self.kinds[k] += 1;
    }

    fn since(self, b: Packets) -> Packets {
        let mut kinds = self.kinds;
        for (k, o) in kinds.iter_mut().zip(b.kinds) {
            *k -= o;
        }
        Packets { sent: self.sent - b.sent, received: self.received - b.received, kinds }
    }
}

// ---------------------------------------------------------------- rtc-proto

struct Ours {
    now: Instant,
    wire: Wire,
    meter: Meter,
    packets: Packets,
    server: Endpoint,
    server_socket: SocketId,
    server_conns: Vec<ConnHandle>,
    peers: Endpoint,
    peer_sockets: HashMap<SocketAddr, SocketId>,
    peer_conns: Vec<ConnHandle>,
    peer_cert: rtc_dtls::Certificate,
    /// The server's codec options, one copy shared by its connections (as
    /// a server would make them).
    options: std::sync::Arc<rtc_codecs::Options>,
    /// Key by SDES (keys in the descriptions) instead of DTLS-SRTP.
    sdes: bool,
    tx: Vec<u8>,
    frame: Vec<u8>,
}

fn av_stream() -> StreamDescription {
    StreamDescription {
        stream_id: String::new(),
        tracks: vec![TrackDescription::new(Kind::Audio), TrackDescription::new(Kind::Video)],
    }
}

impl Ours {
    fn new(start: Instant, sdes: bool) -> Self {
        let mut meter = Meter::default();
        let cert = rtc_dtls::Certificate::generate().expect("certificate");
        let options = meter.run(|| ConnectionConfig::default().options);
        let mut server = Endpoint::new();
        let server_socket = meter.run(|| {
            server.add_socket(SocketConfig::new(
                "server",
                vec![(Component::RTP, server_addr())],
                SocketOptions::default(),
                cert,
            ))
        });
        Self {
            now: start,
            wire: Wire::default(),
            meter,
            packets: Packets::default(),
            server,
            server_socket,
            server_conns: Vec::new(),
            peers: Endpoint::new(),
            peer_sockets: HashMap::new(),
            peer_conns: Vec::new(),
            peer_cert: rtc_dtls::Certificate::generate().expect("certificate"),
            options,
            sdes,
            tx: vec![0; MIN_TRANSMIT_BUFFER],
            frame: Vec::new(),
        }
    }

    /// A new server connection and its peer, signaled (the peer's
    /// description first, as an offer would be; DTLS-SRTP keying).
    fn add(&mut self, i: usize) {
        let now = self.now;
        // The peer: its own socket and address.
        let addr = peer_addr(i);
        let ps = self.peers.add_socket(SocketConfig::new(
            format!("p{i}"),
            vec![(Component::RTP, addr)],
            SocketOptions::default(),
            self.peer_cert.clone(),
        ));
        self.peer_sockets.insert(addr, ps);
        let pc = self.peers.insert(Connection::new(ConnectionConfig::default(), now, wallclock()).expect("peer"));
        self.peers.add_socket_to(now, pc, ps).expect("peer socket");
        self.peers.connection_mut(pc).expect("peer").send_stream(now, av_stream()).expect("peer stream");
        self.peer_conns.push(pc);
        // The server's connection.
        let (server, socket, options) = (&mut self.server, self.server_socket, self.options.clone());
        let sc = self.meter.run(|| {
            let config = ConnectionConfig { options, ..ConnectionConfig::default() };
            let c = Connection::new(config, now, wallclock()).expect("server connection");
            let h = server.insert(c);
            server.add_socket_to(now, h, socket).expect("server socket");
            server.connection_mut(h).expect("conn").send_stream(now, av_stream()).expect("server stream");
            h
        });
        self.server_conns.push(sc);
        // Peer → server.
        let sdes = self.sdes;
        let mut d = self.peers.connection(pc).expect("peer").description(Direction::Local).expect("description");
        if !sdes {
            d.keys.clear();
        }
        let offer = d.to_json();
        let server = &mut self.server;
        self.meter.run(|| {
            let d = ConnectionDescription::from_json(&offer).expect("parse");
            server.connection_mut(sc).expect("conn").set_description(now, d, Direction::Remote).expect("remote");
        });
        // Server → peer.
        let answer = self.meter.run(|| {
            let mut d = server.connection(sc).expect("conn").description(Direction::Local).expect("description");
            if !sdes {
                d.keys.clear();
            }
            d.to_json()
        });
        let d = ConnectionDescription::from_json(&answer).expect("parse");
        self.meter.run(|| drop(answer));
        self.peers.connection_mut(pc).expect("peer").set_description(now, d, Direction::Remote).expect("remote");
        self.drain();
    }

    fn drain(&mut self) {
        let now = self.now;
        loop {
            let (server, tx) = (&mut self.server, &mut self.tx);
            let Some((_, t)) = self.meter.run(|| server.poll_transmit(now, tx)) else { break };
            self.packets.sent(&self.tx[..t.len]);
            self.wire.send(now, t.source, t.destination, &self.tx[..t.len]);
        }
        let (server, frame) = (&mut self.server, &mut self.frame);
        self.meter.run(|| {
            while server.poll_event().is_some() {}
            while server.poll_frame(frame).is_some() {}
        });
        while let Some((_, t)) = self.peers.poll_transmit(now, &mut self.tx) {
            self.wire.send(now, t.source, t.destination, &self.tx[..t.len]);
        }
        while self.peers.poll_event().is_some() {}
        while self.peers.poll_frame(&mut self.frame).is_some() {}
    }

    /// One wake-up: deliveries, then timers, then output. Returns the next
    /// wake-up.
    fn step(&mut self) -> Instant {
        let now = self.now;
        while let Some(mut f) = self.wire.due(now) {
            if f.to == server_addr() {
                self.packets.received += 1;
                let (server, socket) = (&mut self.server, self.server_socket);
                self.meter.run(|| server.handle_datagram(now, socket, f.to, f.from, &mut f.data));
            } else if let Some(&s) = self.peer_sockets.get(&f.to) {
                self.peers.handle_datagram(now, s, f.to, f.from, &mut f.data);
            }
            self.wire.recycle(f);
        }
        let server = &mut self.server;
        self.meter.run(|| server.handle_timeout(now));
        self.peers.handle_timeout(now);
        self.drain();
        let server = &self.server;
        let st = self.meter.run(|| server.poll_timeout());
        [st, self.peers.poll_timeout(), self.wire.next()].into_iter().flatten().min().unwrap_or(now + QUANTUM)
    }

    fn run_until(&mut self, end: Instant, done: &dyn Fn(&Self) -> bool) -> bool {
        loop {
            let next = self.step();
            if done(self) {
                return true;
            }
            if self.now >= end {
                return false;
            }
            self.now = next.max(self.now + QUANTUM).min(end);
        }
    }

    fn connected(&self, i: usize) -> bool {
        self.server.connection(self.server_conns[i]).is_some_and(Connection::is_connected)
            && self.peers.connection(self.peer_conns[i]).is_some_and(Connection::is_connected)
    }
}

// -------------------------------------------------------------------- str0m

mod theirs {
    use super::*;
    use str0m::change::{SdpAnswer, SdpOffer};
    use str0m::media::{Direction as MDir, MediaKind};
    use str0m::net::{Protocol, Receive};
    use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

    /// One side's Rtcs and the timer heap a str0m loop keeps for them.
    #[derive(Default)]
    pub(super) struct Side {
        pub rtcs: Vec<Rtc>,
        pub connected: Vec<bool>,
        deadline: Vec<Option<Instant>>,
        timers: BinaryHeap<Reverse<(Instant, u32)>>,
        due: Vec<u32>,
    }

    impl Side {
        fn schedule(&mut self, i: u32, t: Instant) {
            if self.deadline[i as usize] != Some(t) {
                self.deadline[i as usize] = Some(t);
                self.timers.push(Reverse((t, i)));
            }
        }

        fn next(&self) -> Option<Instant> {
            self.timers.peek().map(|Reverse((t, _))| *t)
        }

        /// The due Rtcs (stale heap entries skipped), and the heap kept
        /// proportional to the Rtcs.
        fn take_due(&mut self, now: Instant) -> Vec<u32> {
            let mut due = std::mem::take(&mut self.due);
            while let Some(Reverse((t, i))) = self.timers.peek().copied() {
                if t > now {
                    break;
                }
                self.timers.pop();
                if self.deadline[i as usize] == Some(t) {
                    self.deadline[i as usize] = None;
                    due.push(i);
                }
            }
            if self.timers.len() > 4 * self.rtcs.len() + 64 {
                let deadline = &self.deadline;
                self.timers.retain(|Reverse((t, i))| deadline[*i as usize] == Some(*t));
            }
            due
        }
    }

    enum Out {
        Timeout,
        Transmit(str0m::net::Transmit),
        Event,
    }

    fn poll(side: &mut Side, i: u32) -> Out {
        match side.rtcs[i as usize].poll_output().expect("poll_output") {
            Output::Timeout(t) => {
                side.schedule(i, t);
                Out::Timeout
            }
            Output::Transmit(t) => Out::Transmit(t),
            Output::Event(e) => {
                if matches!(e, Event::Connected) {
                    side.connected[i as usize] = true;
                }
                Out::Event
            }
        }
    }

    pub(super) struct Theirs {
        pub now: Instant,
        wire: Wire,
        pub meter: Meter,
        pub packets: Packets,
        pub server: Side,
        /// The server's router: remote address → Rtc, once known.
        router: HashMap<SocketAddr, u32>,
        /// Server Rtcs whose peer address is not known yet (the batch being
        /// connected): the only ones `Rtc::accepts` is asked about.
        unrouted: Vec<u32>,
        pub peers: Side,
        peer_by_addr: HashMap<SocketAddr, u32>,
        server_cert: str0m::config::DtlsCert,
        peer_cert: str0m::config::DtlsCert,
        ice_lite: bool,
        pub unknown: u64,
    }

    fn config() -> RtcConfig {
        // The same codecs as rtc-proto's defaults: Opus and VP8.
        RtcConfig::new().clear_codecs().enable_opus(true, false).enable_vp8(true)
    }

    impl Theirs {
        pub(super) fn new(start: Instant, ice_lite: bool) -> Self {
            let provider = str0m::crypto::from_feature_flags();
            let server_cert = provider.dtls_provider.generate_certificate().expect("certificate");
            let peer_cert = provider.dtls_provider.generate_certificate().expect("certificate");
            provider.install_process_default();
            Self {
                now: start,
                wire: Wire::default(),
                meter: Meter::default(),
                packets: Packets::default(),
                server: Side::default(),
                router: HashMap::new(),
                unrouted: Vec::new(),
                peers: Side::default(),
                peer_by_addr: HashMap::new(),
                server_cert,
                peer_cert,
                ice_lite,
                unknown: 0,
            }
        }

        pub(super) fn add(&mut self, i: usize) {
            let now = self.now;
            let addr = peer_addr(i);
            // The peer offers one audio and one video m-line, both ways.
            let mut peer = config().set_dtls_cert(self.peer_cert.clone()).build(now);
            peer.add_local_candidate(Candidate::host(addr, "udp").expect("candidate"));
            let mut change = peer.sdp_api();
            change.add_media(MediaKind::Audio, MDir::SendRecv, None, None, None);
            change.add_media(MediaKind::Video, MDir::SendRecv, None, None, None);
            let (offer, pending) = change.apply().expect("offer");
            let offer = offer.to_sdp_string();
            let k = u32::try_from(i).expect("fits");
            // The server answers: a new Rtc on the server address, the same
            // certificate for all (as rtc-proto's socket has one).
            let (server, cert, lite, unrouted) =
                (&mut self.server, &self.server_cert, self.ice_lite, &mut self.unrouted);
            let answer = self.meter.run(|| {
                let mut rtc = config().set_dtls_cert(cert.clone()).set_ice_lite(lite).build(now);
                rtc.add_local_candidate(Candidate::host(server_addr(), "udp").expect("candidate"));
                let offer = SdpOffer::from_sdp_string(&offer).expect("parse offer");
                let answer = rtc.sdp_api().accept_offer(offer).expect("accept offer");
                server.rtcs.push(rtc);
                server.connected.push(false);
                server.deadline.push(None);
                unrouted.push(k);
                answer.to_sdp_string()
            });
            let parsed = SdpAnswer::from_sdp_string(&answer).expect("parse answer");
            self.meter.run(|| drop(answer));
            peer.sdp_api().accept_answer(pending, parsed).expect("accept answer");
            self.peers.rtcs.push(peer);
            self.peers.connected.push(false);
            self.peers.deadline.push(None);
            self.peer_by_addr.insert(addr, k);
            self.drain_server(k);
            self.drain_peer(k);
        }

        fn drain_server(&mut self, k: u32) {
            loop {
                let server = &mut self.server;
                match self.meter.run(|| poll(server, k)) {
                    Out::Timeout => break,
                    Out::Event => {}
                    Out::Transmit(t) => {
                        self.packets.sent(&t.contents);
                        self.wire.send(self.now, t.source, t.destination, &t.contents);
                        // What a server loop does once sent: drop it.
                        self.meter.run(|| drop(t));
                    }
                }
            }
        }

        fn drain_peer(&mut self, k: u32) {
            loop {
                match poll(&mut self.peers, k) {
                    Out::Timeout => break,
                    Out::Event => {}
                    Out::Transmit(t) => self.wire.send(self.now, t.source, t.destination, &t.contents),
                }
            }
        }

        pub(super) fn step(&mut self) -> Instant {
            let now = self.now;
            while let Some(f) = self.wire.due(now) {
                if f.to == server_addr() {
                    self.packets.received += 1;
                    let (server, router, unrouted) = (&mut self.server, &mut self.router, &mut self.unrouted);
                    let routed = self.meter.run(|| {
                        let r = Receive::new(Protocol::Udp, f.from, f.to, &f.data).ok()?;
                        let input = Input::Receive(now, r);
                        let k = match router.get(&f.from) {
                            Some(&k) => k,
                            None => {
                                let pos = unrouted.iter().position(|&k| server.rtcs[k as usize].accepts(&input))?;
                                let k = unrouted.swap_remove(pos);
                                router.insert(f.from, k);
                                k
                            }
                        };
                        server.rtcs[k as usize].handle_input(input).expect("handle_input");
                        Some(k)
                    });
                    match routed {
                        Some(k) => self.drain_server(k),
                        None => self.unknown += 1,
                    }
                } else if let Some(&k) = self.peer_by_addr.get(&f.to) {
                    let r = Receive::new(Protocol::Udp, f.from, f.to, &f.data).expect("datagram");
                    self.peers.rtcs[k as usize].handle_input(Input::Receive(now, r)).expect("handle_input");
                    self.drain_peer(k);
                }
                self.wire.recycle(f);
            }
            let server = &mut self.server;
            let due = self.meter.run(|| server.take_due(now));
            for &k in &due {
                let server = &mut self.server;
                self.meter.run(|| server.rtcs[k as usize].handle_input(Input::Timeout(now)).expect("timeout"));
                self.drain_server(k);
            }
            self.server.due = due;
            self.server.due.clear();
            let due = self.peers.take_due(now);
            for &k in &due {
                self.peers.rtcs[k as usize].handle_input(Input::Timeout(now)).expect("timeout");
                self.drain_peer(k);
            }
            self.peers.due = due;
            self.peers.due.clear();
            let server = &self.server;
            let st = self.meter.run(|| server.next());
            [st, self.peers.next(), self.wire.next()].into_iter().flatten().min().unwrap_or(now + QUANTUM)
        }

        pub(super) fn run_until(&mut self, end: Instant, done: &dyn Fn(&Self) -> bool) -> bool {
            loop {
                let next = self.step();
                if done(self) {
                    return true;
                }
                if self.now >= end {
                    return false;
                }
                self.now = next.max(self.now + QUANTUM).min(end);
            }
        }

        pub(super) fn connected(&self, i: usize) -> bool {
            self.server.connected[i]
                && self.peers.connected[i]
                && self.server.rtcs[i].is_connected()
                && self.peers.rtcs[i].is_connected()
        }

        /// The whole server side, dropped under allocation-counter: the
        /// bytes it held.
        pub(super) fn drop_server(&mut self) -> i64 {
            let server = std::mem::take(&mut self.server);
            let router = std::mem::take(&mut self.router);
            let unrouted = std::mem::take(&mut self.unrouted);
            -allocation_counter::measure(|| drop((server, router, unrouted))).bytes_current
        }
    }
}

/// One stack's server and peers, as `main` drives them.
trait Stack {
    const NAME: &'static str;
    fn add(&mut self, i: usize);
    fn now(&self) -> Instant;
    fn run_for(&mut self, d: Duration, done: &dyn Fn(&Self) -> bool) -> bool;
    fn connected(&self, i: usize) -> bool;
    fn meter(&self) -> &Meter;
    fn packets(&self) -> Packets;
    /// Datagrams to the server that no connection took.
    fn unrouted(&self) -> u64;
    /// Drops the server side under allocation-counter: the bytes it held.
    fn drop_server(&mut self) -> i64;
}

impl Stack for Ours {
    const NAME: &'static str = "rtc-proto";
    fn add(&mut self, i: usize) {
        Ours::add(self, i);
    }
    fn now(&self) -> Instant {
        self.now
    }
    fn run_for(&mut self, d: Duration, done: &dyn Fn(&Self) -> bool) -> bool {
        let end = self.now + d;
        self.run_until(end, done)
    }
    fn connected(&self, i: usize) -> bool {
        Ours::connected(self, i)
    }
    fn meter(&self) -> &Meter {
        &self.meter
    }
    fn packets(&self) -> Packets {
        self.packets
    }
    fn unrouted(&self) -> u64 {
        self.server.unrouted(self.server_socket)
    }
    fn drop_server(&mut self) -> i64 {
        let server = std::mem::take(&mut self.server);
        -allocation_counter::measure(|| drop(server)).bytes_current
    }
}

impl Stack for theirs::Theirs {
    const NAME: &'static str = "str0m";
    fn add(&mut self, i: usize) {
        theirs::Theirs::add(self, i);
    }
    fn now(&self) -> Instant {
        self.now
    }
    fn run_for(&mut self, d: Duration, done: &dyn Fn(&Self) -> bool) -> bool {
        let end = self.now + d;
        self.run_until(end, done)
    }
    fn connected(&self, i: usize) -> bool {
        theirs::Theirs::connected(self, i)
    }
    fn meter(&self) -> &Meter {
        &self.meter
    }
    fn packets(&self) -> Packets {
        self.packets
    }
    fn unrouted(&self) -> u64 {
        self.unknown
    }
    fn drop_server(&mut self) -> i64 {
        theirs::Theirs::drop_server(self)
    }
}

/// What one stack measured.
#[derive(Default)]
struct Report {
    connected: usize,
    connect_secs: f64,
    connect_wall: f64,
    heap_connected: i64,
    heap_after_hold: i64,
    heap_dropped: i64,
    hold_secs: f64,
    hold_cpu: Duration,
    hold_calls: u64,
    connect_cpu: Duration,
    hold_packets: Packets,
    still: usize,
    unrouted: u64,
    // Marks at the start of the hold.
    t0: Duration,
    c0: u64,
    p0: Packets,
    s0: Option<Instant>,
}

impl Report {
    fn per(&self, bytes: i64) -> f64 {
        bytes as f64 / self.connected.max(1) as f64
    }
    fn per_second(&self, x: f64) -> f64 {
        x / (self.connected.max(1) as f64 * self.hold_secs)
    }
    fn cpu(&self) -> f64 {
        self.per_second(self.hold_cpu.as_secs_f64() * 1e6)
    }
}

/// Connects `n` connections in batches; what it took.
fn connect<S: Stack>(s: &mut S, n: usize, batch: usize) -> Report {
    let (start, wall) = (s.now(), Instant::now());
    let mut k = 0;
    while k < n {
        let end = (k + batch).min(n);
        for i in k..end {
            s.add(i);
        }
        if !s.run_for(Duration::from_secs(30), &|w| (k..end).all(|i| w.connected(i))) {
            let missing = (k..end).filter(|&i| !s.connected(i)).count();
            println!("  {}: batch {k}..{end}: {missing} not connected after 30 simulated s", S::NAME);
        }
        k = end;
    }
    let r = Report {
        connected: (0..n).filter(|&i| s.connected(i)).count(),
        connect_secs: (s.now() - start).as_secs_f64(),
        connect_wall: wall.elapsed().as_secs_f64(),
        heap_connected: s.meter().heap,
        connect_cpu: s.meter().time,
        ..Report::default()
    };
    println!(
        "  {}: {}/{n} connected in {:.1} simulated s ({:.1} s of wall time)",
        S::NAME,
        r.connected,
        r.connect_secs,
        r.connect_wall
    );
    r
}

fn hold_mark<S: Stack>(s: &S, r: &mut Report) {
    r.t0 = s.meter().time;
    r.c0 = s.meter().calls;
    r.p0 = s.packets();
    r.s0 = Some(s.now());
}

fn finish<S: Stack>(s: &mut S, r: &mut Report, n: usize) {
    r.hold_secs = (s.now() - r.s0.expect("marked")).as_secs_f64();
    r.hold_cpu = s.meter().time - r.t0;
    r.hold_calls = s.meter().calls - r.c0;
    r.hold_packets = s.packets().since(r.p0);
    r.heap_after_hold = s.meter().heap;
    r.still = (0..n).filter(|&i| s.connected(i)).count();
    r.unrouted = s.unrouted();
    r.heap_dropped = s.drop_server();
    let p = r.hold_packets;
    println!(
        "  {}: heap {} B once connected, {} B after the hold, {} B freed when the server side is dropped; \
         hold {:.1} simulated s: {}/{n} still connected, {:.3} s in server calls; server datagrams sent {} \
         (STUN {}, DTLS {}, RTCP {}, RTP {}), received {}; {} to the server routed nowhere",
        S::NAME,
        r.heap_connected,
        r.heap_after_hold,
        r.heap_dropped,
        r.hold_secs,
        r.still,
        r.hold_cpu.as_secs_f64(),
        p.sent,
        p.kinds[0],
        p.kinds[1],
        p.kinds[2],
        p.kinds[3],
        p.received,
        r.unrouted,
    );
}

fn main() {
    let n: usize = env("RTC_EP_CONNECTIONS", 10_000);
    let batch: usize = env("RTC_EP_BATCH", 500).max(1);
    let hold: u64 = env("RTC_EP_HOLD", 30);
    let lite = env("RTC_EP_STR0M_ICE_LITE", 0u8) == 1;
    // For profiling one stack alone: `rtc-proto` or `str0m`.
    let only: String = env("RTC_EP_ONLY", String::new());
    // rtc-proto keyed by SDES instead of DTLS-SRTP (str0m has no SDES).
    let sdes = env("RTC_EP_SDES", 0u8) == 1;
    let (run_ours, run_theirs) = (only != "str0m", only != "rtc-proto");
    println!(
        "endpoint: {n} idle connections (audio + video both ways, {}, full ICE{}) on one server address, \
         in-memory network, simulated time; batches of {batch}; hold {hold} simulated s",
        if sdes { "rtc-proto keyed by SDES" } else { "DTLS-SRTP" },
        if lite { "; str0m server ICE-lite" } else { "" }
    );
    let start = Instant::now();

    // Connect both stacks, one after the other.
    let mut ours = run_ours.then(|| Ours::new(start, sdes));
    let mut theirs = run_theirs.then(|| theirs::Theirs::new(start, lite));
    let mut a = ours.as_mut().map(|s| connect(s, n, batch)).unwrap_or_default();
    let mut b = theirs.as_mut().map(|s| connect(s, n, batch)).unwrap_or_default();

    // Hold: both idle, in alternating one-second slices so that both see
    // the machine's load alike; two seconds first to settle, not counted.
    let second = Duration::from_secs(1);
    let wall = Instant::now();
    for s in 0..2 + hold {
        if s == 2 {
            if let Some(o) = &ours {
                hold_mark(o, &mut a);
            }
            if let Some(t) = &theirs {
                hold_mark(t, &mut b);
            }
        }
        if let Some(o) = ours.as_mut() {
            o.run_for(second, &|_| false);
        }
        if let Some(t) = theirs.as_mut() {
            t.run_for(second, &|_| false);
        }
    }
    println!("  hold: {:.1} s of wall time", wall.elapsed().as_secs_f64());
    if let Some(o) = ours.as_mut() {
        finish(o, &mut a, n);
    }
    if let Some(t) = theirs.as_mut() {
        finish(t, &mut b, n);
    }
    if !(run_ours && run_theirs) {
        return;
    }

    println!();
    println!("| server side, per connection | rtc-proto | str0m 0.25 | ratio |");
    println!("| --- | --- | --- | --- |");
    let row = |what: &str, x: f64, y: f64, digits: usize| {
        println!("| {what} | {x:.digits$} | {y:.digits$} | {:.3} |", x / y);
    };
    row("heap bytes once connected (sum over server calls)", a.per(a.heap_connected), b.per(b.heap_connected), 0);
    row("heap bytes after the hold (sum over server calls)", a.per(a.heap_after_hold), b.per(b.heap_after_hold), 0);
    row("heap bytes freed by dropping the server side", a.per(a.heap_dropped), b.per(b.heap_dropped), 0);
    row("CPU µs per connection-second, idle", a.cpu(), b.cpu(), 2);
    row(
        "CPU µs to connect one connection (server calls while connecting, per connection)",
        a.connect_cpu.as_secs_f64() * 1e6 / a.connected.max(1) as f64,
        b.connect_cpu.as_secs_f64() * 1e6 / b.connected.max(1) as f64,
        1,
    );
    row(
        "server-side calls per connection-second (each timed and counted)",
        a.per_second(a.hold_calls as f64),
        b.per_second(b.hold_calls as f64),
        2,
    );
    let pps = |r: &Report| r.per_second((r.hold_packets.sent + r.hold_packets.received) as f64);
    row("datagrams per connection-second (server sent + received)", pps(&a), pps(&b), 3);
    println!(
        "| of which sent: STUN / RTCP per connection-second | {:.3} / {:.3} | {:.3} / {:.3} | |",
        a.per_second(a.hold_packets.kinds[0] as f64),
        a.per_second(a.hold_packets.kinds[2] as f64),
        b.per_second(b.hold_packets.kinds[0] as f64),
        b.per_second(b.hold_packets.kinds[2] as f64),
    );
    println!(
        "| CPU µs per server datagram (sent or received) | {:.2} | {:.2} | {:.3} |",
        a.hold_cpu.as_secs_f64() * 1e6 / (a.hold_packets.sent + a.hold_packets.received).max(1) as f64,
        b.hold_cpu.as_secs_f64() * 1e6 / (b.hold_packets.sent + b.hold_packets.received).max(1) as f64,
        (a.hold_cpu.as_secs_f64() / (a.hold_packets.sent + a.hold_packets.received).max(1) as f64)
            / (b.hold_cpu.as_secs_f64() / (b.hold_packets.sent + b.hold_packets.received).max(1) as f64),
    );
    println!();
    println!(
        "inline sizes: rtc_proto::Connection {} B, str0m::Rtc {} B (included above)",
        std::mem::size_of::<Connection>(),
        std::mem::size_of::<str0m::Rtc>()
    );
    println!("goal (issue): rtc-proto heap ≤ 16384 bytes per connection: {:.0} bytes", a.per(a.heap_connected));
}
