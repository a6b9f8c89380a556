//! A deterministic two-agent harness: simulated time, a simulated network
//! with latency, jitter (so reordering), loss, and an optional NAT in front
//! of agent A. `Pair::run_until` jumps straight to the next wake-up.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rtc_candidate::Component;
use rtc_ice::{Agent, AgentConfig, Event, Receive, TcpCommand};

/// A datagram in flight.
#[derive(Debug, Clone)]
pub struct Packet {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub data: Vec<u8>,
}

/// A full-cone NAT: one inside address mapped to one public address.
#[derive(Debug, Clone, Copy)]
pub struct Nat {
    pub inside: SocketAddr,
    pub public: SocketAddr,
}

/// Network behaviour.
#[derive(Debug, Clone)]
pub struct NetConfig {
    pub loss: f64,
    pub latency: Duration,
    pub jitter: Duration,
    pub nat: Option<Nat>,
    pub seed: u64,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self { loss: 0.0, latency: Duration::from_millis(20), jitter: Duration::ZERO, nat: None, seed: 1 }
    }
}

pub struct Node {
    pub agent: Agent,
    pub addrs: Vec<SocketAddr>,
    pub events: Vec<(Instant, Event)>,
    pub data: Vec<Vec<u8>>,
    /// The data paths and their generation when last looked at.
    paths_seen: (u64, Vec<(SocketAddr, SocketAddr)>),
}

impl Node {
    fn new(agent: Agent, addrs: Vec<SocketAddr>) -> Self {
        Self { agent, addrs, events: vec![], data: vec![], paths_seen: (0, vec![]) }
    }

    /// Records a broken promise of `data_paths`/`paths_generation`: the
    /// set changed while the generation stayed.
    fn check_paths(&mut self, who: &str, broken: &mut Vec<String>) {
        let mut now: Vec<_> = self.agent.data_paths().collect();
        now.sort();
        let n = now.len();
        now.dedup();
        if n != now.len() {
            broken.push(format!("{who}: data_paths repeats a path"));
        }
        let generation = self.agent.paths_generation();
        if now != self.paths_seen.1 && generation == self.paths_seen.0 {
            broken.push(format!("{who}: data_paths changed, generation {generation} did not"));
        }
        self.paths_seen = (generation, now);
    }
}

impl Node {
    pub fn connected_at(&self) -> Option<Instant> {
        self.events.iter().find(|(_, e)| *e == Event::Connected).map(|(t, _)| *t)
    }
    pub fn has(&self, pred: impl Fn(&Event) -> bool) -> bool {
        self.events.iter().any(|(_, e)| pred(e))
    }
}

/// A simulated STUN server answering Binding requests with the source
/// address it saw.
pub struct StunServer {
    pub addr: SocketAddr,
    pub requests: usize,
}

pub struct Pair {
    pub start: Instant,
    pub now: Instant,
    pub a: Node,
    pub b: Node,
    pub net: NetConfig,
    rng: StdRng,
    in_flight: Vec<(Instant, u64, Packet)>,
    seq: u64,
    /// Drop every datagram (a cut cable).
    pub blackhole: bool,
    pub stun: Option<StunServer>,
    /// Forward candidates and end-of-candidates between the agents.
    pub signaling: bool,
    /// Where `Agent::accepts`, `data_paths` or `paths_generation` disagreed
    /// with what `handle_receive` did (checked on every delivery).
    pub broken_promises: Vec<String>,
    /// Every datagram the agents sent, before loss or NAT: when, whether A
    /// sent it, and the datagram.
    pub sent: Vec<(Instant, bool, Packet)>,
    /// A peer quirk at B: datagrams for which this returns true (given the
    /// datagram and B's agent) reach B's socket but are silently dropped,
    /// unanswered, before B's agent sees them.
    pub drop_at_b: Option<fn(&Packet, &Agent) -> bool>,
    /// How many datagrams `drop_at_b` dropped.
    pub dropped_at_b: usize,
    /// ICE-TCP: the TCP listeners' addresses (either side), ...
    pub listeners: Vec<SocketAddr>,
    /// ... the open connections (the opener's local address, the listener's),
    pub connections: Vec<(SocketAddr, SocketAddr)>,
    /// ... connections opened and closed so far, ...
    pub tcp_opened: usize,
    pub tcp_closed: usize,
    /// ... connection outcomes due (when, side A, the active candidate,
    /// the listener, the connection's address or `None` for refused), and
    /// closes due at the other end (when, side A, local, remote).
    tcp_due: Vec<(Instant, bool, SocketAddr, SocketAddr, Option<SocketAddr>)>,
    close_due: Vec<(Instant, bool, SocketAddr, SocketAddr)>,
    /// Drop every UDP datagram (a firewall that lets TCP through).
    pub block_udp: bool,
    /// Refuse every TCP connection.
    pub refuse_tcp: bool,
    /// Every TCP address there was: listeners and connections' ends.
    tcp_addrs: Vec<SocketAddr>,
}

impl Pair {
    /// Two agents with host candidates on `a_addrs` / `b_addrs`
    /// (component 1 unless given otherwise), credentials exchanged.
    pub fn new(
        a_cfg: AgentConfig,
        a_addrs: &[(u16, SocketAddr)],
        b_cfg: AgentConfig,
        b_addrs: &[(u16, SocketAddr)],
        net: NetConfig,
    ) -> Self {
        Self::build(a_cfg, a_addrs, b_cfg, b_addrs, net, true)
    }

    /// As `new`, but candidates (and ICE lite) are not signaled: the test
    /// does it.
    pub fn without_signaling(
        a_cfg: AgentConfig,
        a_addrs: &[(u16, SocketAddr)],
        b_cfg: AgentConfig,
        b_addrs: &[(u16, SocketAddr)],
        net: NetConfig,
    ) -> Self {
        Self::build(a_cfg, a_addrs, b_cfg, b_addrs, net, false)
    }

    fn build(
        a_cfg: AgentConfig,
        a_addrs: &[(u16, SocketAddr)],
        b_cfg: AgentConfig,
        b_addrs: &[(u16, SocketAddr)],
        net: NetConfig,
        signaling: bool,
    ) -> Self {
        let start = Instant::now();
        let mut a = Agent::new(a_cfg).unwrap();
        let mut b = Agent::new(b_cfg).unwrap();
        // ICE lite is signaled with the credentials (SDP's `a=ice-lite`).
        if signaling {
            let (a_lite, b_lite) = (a.is_lite(), b.is_lite());
            a.set_remote_lite(start, b_lite).unwrap();
            b.set_remote_lite(start, a_lite).unwrap();
        }
        a.set_remote_credentials(start, b.local_credentials().clone()).unwrap();
        b.set_remote_credentials(start, a.local_credentials().clone()).unwrap();
        let rng = StdRng::seed_from_u64(net.seed);
        let mut pair = Pair {
            start,
            now: start,
            a: Node::new(a, a_addrs.iter().map(|x| x.1).collect()),
            b: Node::new(b, b_addrs.iter().map(|x| x.1).collect()),
            net,
            rng,
            in_flight: vec![],
            seq: 0,
            blackhole: false,
            stun: None,
            signaling,
            broken_promises: vec![],
            sent: vec![],
            drop_at_b: None,
            dropped_at_b: 0,
            listeners: vec![],
            connections: vec![],
            tcp_opened: 0,
            tcp_closed: 0,
            tcp_due: vec![],
            close_due: vec![],
            block_udp: false,
            refuse_tcp: false,
            tcp_addrs: vec![],
        };
        for &(c, addr) in a_addrs {
            pair.a.agent.add_host_candidate(start, Component::new(c).unwrap(), addr).unwrap();
        }
        pair.a.agent.end_of_local_candidates(start);
        for &(c, addr) in b_addrs {
            pair.b.agent.add_host_candidate(start, Component::new(c).unwrap(), addr).unwrap();
        }
        pair.b.agent.end_of_local_candidates(start);
        pair.pump();
        pair
    }

    /// Moves transmits into the network and events out of the agents
    /// (candidates go to the other side over reliable signaling).
    fn pump(&mut self) {
        loop {
            let mut any = false;
            for side in 0..2 {
                let (me, other) = if side == 0 { (&mut self.a, &mut self.b) } else { (&mut self.b, &mut self.a) };
                while let Some(c) = me.agent.poll_tcp_command() {
                    any = true;
                    let rtt = 2 * self.net.latency;
                    match c {
                        TcpCommand::Connect { local, remote } => {
                            let ok = !self.refuse_tcp && self.listeners.contains(&remote);
                            let conn = ok.then(|| {
                                self.tcp_opened += 1;
                                let port = 40_000 + u16::try_from(self.tcp_opened).unwrap();
                                SocketAddr::new(local.ip(), port)
                            });
                            self.tcp_due.push((self.now + rtt, side == 0, local, remote, conn));
                        }
                        TcpCommand::Close { local, remote } => {
                            let n = self.connections.len();
                            self.connections.retain(|&(x, y)| (x, y) != (local, remote) && (y, x) != (local, remote));
                            if self.connections.len() < n {
                                self.tcp_closed += 1;
                                self.close_due.push((self.now + self.net.latency, side != 0, remote, local));
                            }
                        }
                        _ => {}
                    }
                }
                while let Some(t) = me.agent.poll_transmit() {
                    any = true;
                    let mut p = Packet { src: t.source, dst: t.destination, data: t.contents };
                    self.sent.push((self.now, side == 0, p.clone()));
                    let tcp =
                        self.connections.iter().any(|&(x, y)| (x, y) == (p.src, p.dst) || (y, x) == (p.src, p.dst));
                    if !tcp && (self.block_udp || self.tcp_addrs.contains(&p.src)) {
                        // UDP blocked, or a TCP connection that is gone.
                        continue;
                    }
                    if tcp {
                        // Reliable and in order.
                        self.seq += 1;
                        self.in_flight.push((self.now + self.net.latency, self.seq, p));
                        continue;
                    }
                    if side == 0
                        && let Some(nat) = self.net.nat
                        && p.src == nat.inside
                    {
                        p.src = nat.public;
                    }
                    if self.blackhole || self.rng.random_bool(self.net.loss) {
                        continue;
                    }
                    let jitter = if self.net.jitter.is_zero() {
                        Duration::ZERO
                    } else {
                        self.net.jitter.mul_f64(self.rng.random::<f64>())
                    };
                    self.seq += 1;
                    self.in_flight.push((self.now + self.net.latency + jitter, self.seq, p));
                }
                while let Some(e) = me.agent.poll_event() {
                    any = true;
                    if self.signaling {
                        match &e {
                            Event::Candidate(c) => {
                                let _ = other.agent.add_remote_candidate(self.now, c);
                            }
                            Event::CandidatesDone => other.agent.end_of_remote_candidates(self.now),
                            _ => {}
                        }
                    }
                    me.events.push((self.now, e));
                }
            }
            if !any {
                break;
            }
        }
    }

    fn deliver(&mut self, mut p: Packet) {
        let tcp = self.connections.iter().any(|&(x, y)| (x, y) == (p.src, p.dst) || (y, x) == (p.src, p.dst));
        if !tcp && (self.block_udp || self.tcp_addrs.contains(&p.dst)) {
            return;
        }
        if let Some(stun) = &mut self.stun
            && p.dst == stun.addr
        {
            stun.requests += 1;
            if let Some(resp) = stun_reply(&p.data, p.src) {
                self.seq += 1;
                let back = Packet { src: stun.addr, dst: p.src, data: resp };
                self.in_flight.push((self.now + self.net.latency, self.seq, back));
            }
            return;
        }
        if let Some(nat) = self.net.nat {
            if p.dst == nat.public {
                p.dst = nat.inside;
            } else if p.dst == nat.inside {
                // The private address is not routable from outside.
                return;
            }
        }
        let now = self.now;
        let (node, who) = if self.a.addrs.contains(&p.dst) {
            (&mut self.a, "a")
        } else if self.b.addrs.contains(&p.dst) {
            if self.drop_at_b.is_some_and(|drop| drop(&p, &self.b.agent)) {
                self.dropped_at_b += 1;
                return;
            }
            (&mut self.b, "b")
        } else {
            return;
        };
        // `accepts` is side-effect free and, with nobody forging traffic,
        // says exactly what `handle_receive` will take.
        let before = format!("{:?}", node.agent.stats());
        let accepts = node.agent.accepts(p.dst, p.src, &p.data);
        if format!("{:?}", node.agent.stats()) != before {
            self.broken_promises.push(format!("{who}: accepts changed the statistics"));
        }
        let on_path = node.agent.data_paths().any(|x| x == (p.dst, p.src));
        let r = node.agent.handle_receive(now, p.dst, p.src, &p.data);
        if accepts == matches!(r, Receive::Dropped(_)) {
            self.broken_promises.push(format!("{who}: accepts said {accepts}, handle_receive {r:?}"));
        }
        if let Receive::Data { .. } = r {
            if !on_path {
                self.broken_promises.push(format!("{who}: data over a path not in data_paths"));
            }
            node.data.push(p.data);
        }
        node.check_paths(who, &mut self.broken_promises);
    }

    /// One step: deliver what is due, fire due timers, then jump to the next
    /// wake-up. Returns false when nothing will ever happen again.
    pub fn step(&mut self) -> bool {
        self.pump();
        let now = self.now;
        let due: Vec<_> = self.tcp_due.iter().filter(|d| d.0 <= now).cloned().collect();
        self.tcp_due.retain(|d| d.0 > now);
        for (_, is_a, local, remote, conn) in due {
            let node = if is_a { &mut self.a } else { &mut self.b };
            match conn {
                Some(conn) => {
                    self.connections.push((conn, remote));
                    self.tcp_addrs.push(conn);
                    node.addrs.push(conn);
                    node.agent.tcp_connected(now, local, remote, conn);
                }
                None => node.agent.tcp_closed(now, local, remote),
            }
        }
        let closes: Vec<_> = self.close_due.iter().filter(|d| d.0 <= now).cloned().collect();
        self.close_due.retain(|d| d.0 > now);
        for (_, is_a, local, remote) in closes {
            let node = if is_a { &mut self.a } else { &mut self.b };
            node.agent.tcp_closed(now, local, remote);
        }
        self.pump();
        self.in_flight.sort_by_key(|(t, s, _)| (*t, *s));
        while self.in_flight.first().is_some_and(|(t, _, _)| *t <= self.now) {
            let (_, _, p) = self.in_flight.remove(0);
            self.deliver(p);
            self.pump();
            self.in_flight.sort_by_key(|(t, s, _)| (*t, *s));
        }
        for node in [&mut self.a, &mut self.b] {
            if node.agent.poll_timeout().is_some_and(|t| t <= self.now) {
                node.agent.handle_timeout(self.now);
            }
        }
        self.pump();
        self.a.check_paths("a", &mut self.broken_promises);
        self.b.check_paths("b", &mut self.broken_promises);
        let next = [
            self.a.agent.poll_timeout(),
            self.b.agent.poll_timeout(),
            self.in_flight.first().map(|x| x.0),
            self.tcp_due.iter().map(|d| d.0).min(),
            self.close_due.iter().map(|d| d.0).min(),
        ]
        .into_iter()
        .flatten()
        .min();
        match next {
            Some(t) => {
                self.now = self.now.max(t);
                true
            }
            None => false,
        }
    }

    /// Steps until `pred` holds or `limit` of simulated time passed.
    pub fn run_until(&mut self, limit: Duration, mut pred: impl FnMut(&Pair) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            if pred(self) {
                return true;
            }
            if self.now >= end || !self.step() {
                return pred(self);
            }
        }
    }

    /// Runs for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            if !self.step() {
                break;
            }
        }
    }

    pub fn both_connected(&self) -> bool {
        self.a.connected_at().is_some() && self.b.connected_at().is_some()
    }

    /// Adds ICE-TCP candidates on both sides: listeners at `a` and `b`.
    pub fn add_tcp(&mut self, a: SocketAddr, b: SocketAddr) {
        self.listeners.extend([a, b]);
        self.tcp_addrs.extend([a, b]);
        self.a.addrs.push(a);
        self.b.addrs.push(b);
        self.a.agent.add_tcp_host_candidates(self.now, Component::RTP, a).unwrap();
        self.b.agent.add_tcp_host_candidates(self.now, Component::RTP, b).unwrap();
        self.pump();
    }

    /// Closes an open TCP connection as the network would (a reset): both
    /// ends hear of it.
    pub fn reset_connection(&mut self, i: usize) {
        let (x, y) = self.connections.remove(i);
        self.tcp_closed += 1;
        let a_has = self.a.addrs.contains(&x);
        self.close_due.push((self.now, a_has, x, y));
        self.close_due.push((self.now, !a_has, y, x));
    }

    /// Sends one application datagram each way over the selected pairs.
    pub fn send_data(&mut self, component: Component, a_msg: &[u8], b_msg: &[u8]) {
        for (node, msg, is_a) in [(&mut self.a, a_msg, true), (&mut self.b, b_msg, false)] {
            let path = node.agent.path(component).expect("a selected path");
            node.agent.count_sent(path.local, path.remote, msg);
            let mut p = Packet { src: path.local, dst: path.remote, data: msg.to_vec() };
            if is_a
                && let Some(nat) = self.net.nat
                && p.src == nat.inside
            {
                p.src = nat.public;
            }
            self.seq += 1;
            self.in_flight.push((self.now + self.net.latency, self.seq, p));
        }
    }
}

/// Answers a Binding request like a STUN server: a success response with
/// XOR-MAPPED-ADDRESS and the same transaction id.
fn stun_reply(req: &[u8], src: SocketAddr) -> Option<Vec<u8>> {
    use stun_rs::attributes::stun::XorMappedAddress;
    use stun_rs::methods::BINDING;
    use stun_rs::{MessageClass, MessageDecoderBuilder, MessageEncoderBuilder, StunMessageBuilder};
    let (msg, _) = MessageDecoderBuilder::default().build().decode(req).ok()?;
    if msg.class() != MessageClass::Request {
        return None;
    }
    let resp = StunMessageBuilder::new(BINDING, MessageClass::SuccessResponse)
        .with_transaction_id(*msg.transaction_id())
        .with_attribute(XorMappedAddress::from(src))
        .build();
    let mut buf = [0u8; 256];
    let n = MessageEncoderBuilder::default().build().encode(&mut buf, &resp).ok()?;
    Some(buf[..n].to_vec())
}

impl Drop for Pair {
    /// Every simulation also checks the routing promises of the agents.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert!(self.broken_promises.is_empty(), "broken promises: {:#?}", self.broken_promises);
        }
    }
}
