//! Two agents whose only path to each other is a TURN relay: a small fake
//! TURN server (RFC 8656 over UDP, or over a TCP/TLS stream whose bytes
//! arrive in chunks cut at random boundaries; long-term credentials) in
//! simulated time. Each agent is given only the other's relayed candidate.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rtc_candidate::{CandidateKind, CandidateType, Component};
use rtc_ice::framing::Deframer;
use rtc_ice::turn::{AllocationState, RELAY_OVERHEAD};
use rtc_ice::{
    Agent, AgentConfig, DropReason, Event, PairState, Receive, Role, State, StreamCommand, TurnServer, TurnTransport,
};
use stun_rs::attributes::stun::{ErrorCode, MessageIntegrity, Nonce, Realm, UserName, XorMappedAddress};
use stun_rs::attributes::turn::{ChannelNumber, Data, LifeTime, XorPeerAddress, XorRelayedAddress};
use stun_rs::methods::{ALLOCATE, CHANNEL_BIND, CREATE_PERMMISSION, DATA, REFRESH, SEND};
use stun_rs::{
    Algorithm, AlgorithmId, DecoderContextBuilder, HMACKey, MessageClass, MessageDecoderBuilder, MessageEncoderBuilder,
    StunMessage, StunMessageBuilder,
};

const SERVER: &str = "192.0.2.50:3478";
const A_HOST: &str = "10.0.0.1:5000";
const B_HOST: &str = "10.0.1.1:7000";
const REALM: &str = "rtc";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn key() -> HMACKey {
    HMACKey::new_long_term("u", REALM, "p", Algorithm::from(AlgorithmId::MD5)).unwrap()
}

struct Alloc {
    relayed: SocketAddr,
    perms: Vec<IpAddr>,
    channels: HashMap<u16, SocketAddr>,
}

/// What the fake server saw.
#[derive(Default, Debug)]
struct Counts {
    allocates: usize,
    unauthenticated: usize,
    refreshes: usize,
    deallocations: usize,
    permissions: usize,
    binds: usize,
    send_indications: usize,
    channel_data_in: usize,
    channel_data_out: usize,
    data_indications: usize,
    /// Send indications to a peer without a permission (the client's
    /// fault).
    denied_send: usize,
    /// Datagrams to a relayed address from a relayed address without a
    /// permission (checks that did not wait for theirs).
    denied_relayed: usize,
    /// Datagrams to a relayed address from elsewhere (the host
    /// candidates, which no permission names).
    denied_other: usize,
}

struct FakeTurn {
    addr: SocketAddr,
    allocs: HashMap<SocketAddr, Alloc>,
    /// The nonce of each client (its 5-tuple).
    nonces: HashMap<SocketAddr, String>,
    /// Answer the next authenticated request with 438 and a new nonce.
    stale_next: bool,
    next_port: u16,
    counts: Counts,
}

struct Packet {
    src: SocketAddr,
    dst: SocketAddr,
    data: Vec<u8>,
    kind: Kind,
}

/// What travels on the simulated network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A UDP datagram.
    Datagram,
    /// A piece of the byte stream between a host and the server.
    Chunk,
    /// The stream from host `dst` to the server is open (after one
    /// round trip).
    Connected,
}

fn datagram(src: SocketAddr, dst: SocketAddr, data: Vec<u8>) -> Packet {
    Packet { src, dst, data, kind: Kind::Datagram }
}

fn encode(msg: &StunMessage) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    let n = MessageEncoderBuilder::default().build().encode(&mut buf, msg).unwrap();
    buf.truncate(n);
    buf
}

impl FakeTurn {
    fn new() -> Self {
        Self {
            addr: addr(SERVER),
            allocs: HashMap::new(),
            nonces: HashMap::new(),
            stale_next: false,
            next_port: 49152,
            counts: Counts::default(),
        }
    }

    fn relayed_owner(&self, relayed: SocketAddr) -> Option<SocketAddr> {
        self.allocs.iter().find(|(_, a)| a.relayed == relayed).map(|(c, _)| *c)
    }

    /// A datagram from a client to the server.
    fn on_client(&mut self, src: SocketAddr, data: &[u8]) -> Vec<Packet> {
        if (0x40..=0x4f).contains(&data[0]) {
            let number = u16::from_be_bytes([data[0], data[1]]);
            let len = usize::from(u16::from_be_bytes([data[2], data[3]]));
            let Some(a) = self.allocs.get(&src) else { return vec![] };
            let Some(peer) = a.channels.get(&number) else { return vec![] };
            self.counts.channel_data_in += 1;
            return vec![datagram(a.relayed, *peer, data[4..4 + len].to_vec())];
        }
        let ctx = DecoderContextBuilder::default().with_key(key()).with_validation().build();
        let Ok((msg, _)) = MessageDecoderBuilder::default().with_context(ctx).build().decode(data) else {
            // MESSAGE-INTEGRITY that does not verify: 401 (RFC 8489 9.2.4).
            let Ok((msg, _)) = MessageDecoderBuilder::default().build().decode(data) else { return vec![] };
            self.counts.unauthenticated += 1;
            let b = StunMessageBuilder::new(msg.method(), MessageClass::ErrorResponse)
                .with_transaction_id(*msg.transaction_id())
                .with_attribute(ErrorCode::from(stun_rs::ErrorCode::new(401, "Unauthorized").unwrap()))
                .with_attribute(Realm::new(REALM).unwrap())
                .with_attribute(Nonce::new("nonce-1").unwrap());
            return vec![datagram(self.addr, src, encode(&b.build()))];
        };
        if msg.class() == MessageClass::Indication && msg.method() == SEND {
            self.counts.send_indications += 1;
            let peer = *msg.get::<XorPeerAddress>().unwrap().as_xor_peer_address().unwrap().socket_address();
            let payload = msg.get::<Data>().unwrap().as_data().unwrap().as_bytes().to_vec();
            let Some(a) = self.allocs.get(&src) else { return vec![] };
            if !a.perms.contains(&peer.ip()) {
                self.counts.denied_send += 1;
                return vec![];
            }
            return vec![datagram(a.relayed, peer, payload)];
        }
        if msg.class() != MessageClass::Request {
            return vec![];
        }
        let nonce = self.nonces.entry(src).or_insert_with(|| "nonce-1".into()).clone();
        let reply = |b: StunMessageBuilder| datagram(self.addr, src, encode(&b.build()));
        let builder = |class| StunMessageBuilder::new(msg.method(), class).with_transaction_id(*msg.transaction_id());
        if msg.get::<MessageIntegrity>().is_none() {
            self.counts.unauthenticated += 1;
            let b = builder(MessageClass::ErrorResponse)
                .with_attribute(ErrorCode::from(stun_rs::ErrorCode::new(401, "Unauthorized").unwrap()))
                .with_attribute(Realm::new(REALM).unwrap())
                .with_attribute(Nonce::new(&nonce).unwrap());
            return vec![reply(b)];
        }
        assert_eq!(msg.get::<UserName>().unwrap().as_user_name().unwrap().as_str(), "u");
        assert_eq!(msg.get::<Realm>().unwrap().as_realm().unwrap().as_str(), REALM);
        let used = msg.get::<Nonce>().unwrap().as_nonce().unwrap().as_str().to_owned();
        if self.stale_next || used != nonce {
            self.stale_next = false;
            let fresh = format!("{nonce}x");
            self.nonces.insert(src, fresh.clone());
            let b = builder(MessageClass::ErrorResponse)
                .with_attribute(ErrorCode::from(stun_rs::ErrorCode::new(438, "Stale Nonce").unwrap()))
                .with_attribute(Realm::new(REALM).unwrap())
                .with_attribute(Nonce::new(&fresh).unwrap());
            return vec![reply(b)];
        }
        let ok = |b: StunMessageBuilder| {
            let b = b.with_attribute(MessageIntegrity::new(key()));
            datagram(self.addr, src, encode(&b.build()))
        };
        let peer = msg.get::<XorPeerAddress>().map(|a| *a.as_xor_peer_address().unwrap().socket_address());
        match msg.method() {
            m if m == ALLOCATE => {
                self.counts.allocates += 1;
                let relayed = SocketAddr::new(self.addr.ip(), self.next_port);
                self.next_port += 1;
                self.allocs.insert(src, Alloc { relayed, perms: vec![], channels: HashMap::new() });
                let b = builder(MessageClass::SuccessResponse)
                    .with_attribute(XorRelayedAddress::from(relayed))
                    .with_attribute(XorMappedAddress::from(src))
                    .with_attribute(LifeTime::from(600));
                vec![ok(b)]
            }
            m if m == REFRESH => {
                let lifetime = msg.get::<LifeTime>().unwrap().as_life_time().unwrap().as_u32();
                if lifetime == 0 {
                    self.counts.deallocations += 1;
                    self.allocs.remove(&src);
                } else {
                    self.counts.refreshes += 1;
                }
                vec![ok(builder(MessageClass::SuccessResponse).with_attribute(LifeTime::from(lifetime)))]
            }
            m if m == CREATE_PERMMISSION => {
                self.counts.permissions += 1;
                let a = self.allocs.get_mut(&src).unwrap();
                let ip = peer.unwrap().ip();
                if !a.perms.contains(&ip) {
                    a.perms.push(ip);
                }
                vec![ok(builder(MessageClass::SuccessResponse))]
            }
            m if m == CHANNEL_BIND => {
                self.counts.binds += 1;
                let number = msg.get::<ChannelNumber>().unwrap().as_channel_number().unwrap().number();
                assert!((0x4000..=0x4fff).contains(&number));
                let a = self.allocs.get_mut(&src).unwrap();
                let peer = peer.unwrap();
                a.channels.insert(number, peer);
                if !a.perms.contains(&peer.ip()) {
                    a.perms.push(peer.ip());
                }
                vec![ok(builder(MessageClass::SuccessResponse))]
            }
            _ => vec![],
        }
    }

    /// A datagram from a peer to one of the relayed addresses.
    fn on_peer(&mut self, src: SocketAddr, relayed: SocketAddr, data: &[u8]) -> Vec<Packet> {
        let Some(client) = self.relayed_owner(relayed) else { return vec![] };
        let a = &self.allocs[&client];
        if !a.perms.contains(&src.ip()) {
            if self.relayed_owner(src).is_some() {
                self.counts.denied_relayed += 1;
            } else {
                self.counts.denied_other += 1;
            }
            return vec![];
        }
        if let Some((&number, _)) = a.channels.iter().find(|(_, p)| **p == src) {
            self.counts.channel_data_out += 1;
            let mut out = number.to_be_bytes().to_vec();
            out.extend_from_slice(&(data.len() as u16).to_be_bytes());
            out.extend_from_slice(data);
            return vec![datagram(self.addr, client, out)];
        }
        self.counts.data_indications += 1;
        let msg = StunMessageBuilder::new(DATA, MessageClass::Indication)
            .with_attribute(XorPeerAddress::from(src))
            .with_attribute(Data::new(data))
            .build();
        vec![datagram(self.addr, client, encode(&msg))]
    }
}

struct Node {
    agent: Agent,
    host: SocketAddr,
    events: Vec<(Instant, Event)>,
    data: Vec<Vec<u8>>,
    /// What the server sends on the stream, split into messages.
    deframer: Deframer,
    /// The stream to the server is open.
    stream_open: bool,
    /// Stream commands the agent gave.
    commands: Vec<StreamCommand>,
}

impl Node {
    fn new(agent: Agent, host: &str) -> Self {
        Self {
            agent,
            host: addr(host),
            events: vec![],
            data: vec![],
            deframer: Deframer::default(),
            stream_open: false,
            commands: vec![],
        }
    }
}

struct Net {
    start: Instant,
    now: Instant,
    a: Node,
    b: Node,
    server: FakeTurn,
    in_flight: Vec<(Instant, u64, Packet)>,
    seq: u64,
    latency: Duration,
    /// Drop this many of the next datagrams to the server.
    drop_to_server: usize,
    /// When datagrams (or stream messages) reached the server.
    server_arrivals: Vec<Instant>,
    /// The transport to the server.
    transport: TurnTransport,
    /// Cuts the streams into chunks.
    rng: StdRng,
    /// The server's side of each client's stream.
    server_deframers: HashMap<SocketAddr, Deframer>,
    /// Stream messages from the clients, each a multiple of 4 octets
    /// (ChannelData padded, RFC 8656 section 12.5).
    stream_messages: usize,
}

fn turn_cfg_over(role: Role, seed: u64, transport: TurnTransport) -> AgentConfig {
    let server = TurnServer { transport, ..TurnServer::udp(addr(SERVER), "u", "p") };
    AgentConfig { role, seed: Some(seed), turn_servers: vec![server], ..AgentConfig::default() }
}

impl Net {
    fn new(stale: bool, drop_first: usize) -> Self {
        Self::build(stale, drop_first, false)
    }

    fn build(stale: bool, drop_first: usize, relay_only: bool) -> Self {
        Self::build_over(stale, drop_first, relay_only, TurnTransport::Udp, 0)
    }

    fn build_over(stale: bool, drop_first: usize, relay_only: bool, transport: TurnTransport, seed: u64) -> Self {
        let start = Instant::now();
        let mut a = Agent::new(AgentConfig { relay_only, ..turn_cfg_over(Role::Controlling, 1, transport) }).unwrap();
        let mut b = Agent::new(AgentConfig { relay_only, ..turn_cfg_over(Role::Controlled, 2, transport) }).unwrap();
        a.set_remote_credentials(start, b.local_credentials().clone()).unwrap();
        b.set_remote_credentials(start, a.local_credentials().clone()).unwrap();
        let mut server = FakeTurn::new();
        server.stale_next = stale;
        let mut net = Net {
            start,
            now: start,
            a: Node::new(a, A_HOST),
            b: Node::new(b, B_HOST),
            server,
            in_flight: vec![],
            seq: 0,
            latency: Duration::from_millis(20),
            drop_to_server: drop_first,
            server_arrivals: vec![],
            transport,
            rng: StdRng::seed_from_u64(seed),
            server_deframers: HashMap::new(),
            stream_messages: 0,
        };
        for n in [&mut net.a, &mut net.b] {
            n.agent.add_host_candidate(start, Component::RTP, n.host).unwrap();
            n.agent.end_of_local_candidates(start);
        }
        net
    }

    fn send(&mut self, p: Packet) {
        self.seq += 1;
        self.in_flight.push((self.now + self.latency, self.seq, p));
    }

    /// A message on the stream between a host and the server, cut into
    /// chunks at random boundaries (in order: the same latency, later
    /// sequence numbers). The server pads its ChannelData (RFC 8656
    /// section 12.5); the clients must pad theirs.
    fn send_stream(&mut self, src: SocketAddr, dst: SocketAddr, mut data: Vec<u8>) {
        if (0x40..=0x4F).contains(&data[0]) {
            data.resize(data.len().div_ceil(4) * 4, 0);
        }
        let mut at = 0;
        while at < data.len() {
            let n = self.rng.random_range(1..=(data.len() - at).min(48));
            self.send(Packet { src, dst, data: data[at..at + n].to_vec(), kind: Kind::Chunk });
            at += n;
        }
    }

    /// A packet from the server to a client: a datagram, or on the stream.
    fn send_to_client(&mut self, p: Packet) {
        if self.transport.is_stream() && p.src == self.server.addr {
            self.send_stream(p.src, p.dst, p.data);
        } else {
            self.send(p);
        }
    }

    /// Transmits into the network; candidates over signaling, relayed ones
    /// only (so the relay is the only path).
    fn pump(&mut self) {
        loop {
            let mut any = false;
            for side in 0..2 {
                let (me, other) = if side == 0 { (&mut self.a, &mut self.b) } else { (&mut self.b, &mut self.a) };
                let mut out = vec![];
                while let Some(t) = me.agent.poll_transmit() {
                    assert_eq!(t.source, me.host, "everything leaves from the host socket");
                    if t.transport.is_stream() {
                        assert_eq!((t.transport, t.destination), (self.transport, addr(SERVER)));
                        assert!(me.stream_open, "nothing on the stream before it opened");
                        assert_eq!(t.contents.len() % 4, 0, "padded on the stream");
                        self.stream_messages += 1;
                        out.push(Packet { src: t.source, dst: t.destination, data: t.contents, kind: Kind::Chunk });
                    } else {
                        out.push(datagram(t.source, t.destination, t.contents));
                    }
                }
                while let Some(c) = me.agent.poll_stream_command() {
                    any = true;
                    if let StreamCommand::Connect { local, server, transport, ref host } = c {
                        assert_eq!((local, server, transport), (me.host, addr(SERVER), self.transport));
                        assert_eq!(host, "192.0.2.50");
                        // Open after a round trip.
                        out.push(Packet { src: server, dst: local, data: vec![], kind: Kind::Connected });
                    }
                    if let StreamCommand::Close { local, .. } = c {
                        assert_eq!(local, me.host);
                        me.stream_open = false;
                    }
                    me.commands.push(c);
                }
                while let Some(e) = me.agent.poll_event() {
                    any = true;
                    match &e {
                        Event::Candidate(c) if c.kind == CandidateType::RELAY => {
                            other.agent.add_remote_candidate(self.now, c).unwrap();
                        }
                        Event::CandidatesDone => other.agent.end_of_remote_candidates(self.now),
                        _ => {}
                    }
                    me.events.push((self.now, e));
                }
                for p in out {
                    any = true;
                    match p.kind {
                        Kind::Chunk => self.send_stream(p.src, p.dst, p.data),
                        Kind::Connected => {
                            self.seq += 1;
                            self.in_flight.push((self.now + 2 * self.latency, self.seq, p));
                        }
                        Kind::Datagram => self.send(p),
                    }
                }
            }
            if !any {
                break;
            }
        }
    }

    fn deliver(&mut self, p: Packet) {
        match p.kind {
            Kind::Connected => {
                let node = if p.dst == self.a.host { &mut self.a } else { &mut self.b };
                node.stream_open = true;
                node.agent.stream_connected(self.now, p.dst, p.src, self.transport);
                return;
            }
            Kind::Chunk if p.dst == self.server.addr => {
                let d = self.server_deframers.entry(p.src).or_default();
                d.push(&p.data).unwrap();
                let mut msgs = vec![];
                while let Some(m) = d.next_message().unwrap() {
                    msgs.push(m.to_vec());
                }
                for m in msgs {
                    self.server_arrivals.push(self.now);
                    if self.drop_to_server > 0 {
                        self.drop_to_server -= 1;
                        continue;
                    }
                    for out in self.server.on_client(p.src, &m) {
                        self.send_to_client(out);
                    }
                }
                return;
            }
            Kind::Chunk => {
                let (now, transport) = (self.now, self.transport);
                let node = if p.dst == self.a.host { &mut self.a } else { &mut self.b };
                assert_eq!(p.src, self.server.addr);
                if node.agent.state() == State::Closed || !node.stream_open {
                    return;
                }
                node.deframer.push(&p.data).unwrap();
                while let Some(m) = node.deframer.next_message().unwrap() {
                    match node.agent.handle_stream_receive(now, p.dst, p.src, transport, m) {
                        Receive::RelayedData { offset, len, .. } => node.data.push(m[offset..offset + len].to_vec()),
                        Receive::Dropped(DropReason::UnknownTransaction) => {}
                        Receive::Dropped(r) => panic!("dropped: {r:?}"),
                        _ => {}
                    }
                }
                return;
            }
            Kind::Datagram => {}
        }
        if p.dst == self.server.addr {
            self.server_arrivals.push(self.now);
            if std::env::var("TURN_SIM_TRACE").is_ok() {
                eprintln!("{:?} {} -> server {:02x?}", self.now - self.start, p.src, &p.data[..p.data.len().min(20)]);
            }
            if self.drop_to_server > 0 {
                self.drop_to_server -= 1;
                return;
            }
            for out in self.server.on_client(p.src, &p.data) {
                self.send(out);
            }
            return;
        }
        if self.server.relayed_owner(p.dst).is_some() {
            for out in self.server.on_peer(p.src, p.dst, &p.data) {
                self.send_to_client(out);
            }
            return;
        }
        if p.dst.ip() == self.server.addr.ip() {
            // A relayed address no allocation holds any more: the server
            // drops what comes to it.
            return;
        }
        let node = if p.dst == self.a.host {
            &mut self.a
        } else if p.dst == self.b.host {
            &mut self.b
        } else {
            panic!("a datagram to {} that only the relay could carry", p.dst);
        };
        assert_eq!(p.src, self.server.addr, "hosts hear only from the server");
        if node.agent.state() == State::Closed {
            // The answer to the deallocation.
            return;
        }
        assert!(node.agent.accepts(p.dst, p.src, &p.data));
        if std::env::var("TURN_SIM_TRACE").is_ok() {
            eprintln!("{:?} server -> {} {:02x?}", self.now - self.start, p.dst, &p.data[..p.data.len().min(20)]);
        }
        match node.agent.handle_receive(self.now, p.dst, p.src, &p.data) {
            Receive::RelayedData { offset, len, .. } => node.data.push(p.data[offset..offset + len].to_vec()),
            // A retransmitted check may be answered twice.
            Receive::Dropped(DropReason::UnknownTransaction) => {}
            Receive::Dropped(r) => panic!("dropped: {r:?}"),
            _ => {}
        }
    }

    fn step(&mut self) -> bool {
        self.pump();
        self.in_flight.sort_by_key(|(t, s, _)| (*t, *s));
        while self.in_flight.first().is_some_and(|(t, _, _)| *t <= self.now) {
            let (_, _, p) = self.in_flight.remove(0);
            self.deliver(p);
            self.pump();
            self.in_flight.sort_by_key(|(t, s, _)| (*t, *s));
        }
        for n in [&mut self.a, &mut self.b] {
            if n.agent.poll_timeout().is_some_and(|t| t <= self.now) {
                n.agent.handle_timeout(self.now);
            }
        }
        self.pump();
        let next = [self.a.agent.poll_timeout(), self.b.agent.poll_timeout(), self.in_flight.first().map(|x| x.0)]
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

    fn run_until(&mut self, limit: Duration, pred: impl Fn(&Net) -> bool) -> bool {
        let end = self.now + limit;
        while !pred(self) {
            if self.now >= end || !self.step() {
                return pred(self);
            }
        }
        true
    }

    /// When both agents said Connected (the clock may have moved on to the
    /// next wake-up since).
    fn connected_after(&self) -> Duration {
        let at = |n: &Node| n.events.iter().find(|(_, e)| *e == Event::Connected).map(|(t, _)| *t).unwrap();
        at(&self.a).max(at(&self.b)) - self.start
    }

    fn connected(&self) -> bool {
        self.a.agent.state() == State::Connected && self.b.agent.state() == State::Connected
    }

    /// One application datagram each way over the selected (relayed) pairs.
    fn send_data(&mut self, a_msg: &[u8], b_msg: &[u8]) {
        for (side, msg) in [(0, a_msg), (1, b_msg)] {
            let node = if side == 0 { &mut self.a } else { &mut self.b };
            let path = node.agent.path(Component::RTP).expect("a selected path");
            assert!(node.agent.is_relayed(path.local));
            let mut buf = vec![0u8; msg.len() + RELAY_OVERHEAD];
            buf[..msg.len()].copy_from_slice(msg);
            let t = node.agent.frame_relayed(path.local, path.remote, &mut buf, msg.len()).unwrap().unwrap();
            assert_eq!((t.source, t.destination, t.transport), (node.host, addr(SERVER), self.transport));
            buf.truncate(t.len);
            if t.transport.is_stream() {
                assert_eq!(t.len % 4, 0, "ChannelData padded on a stream");
                self.send_stream(t.source, t.destination, buf);
            } else {
                self.send(datagram(t.source, t.destination, buf));
            }
        }
    }
}

fn selected_types(events: &[(Instant, Event)]) -> Vec<(CandidateType, CandidateType)> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::ActiveCandidate { local, remote, .. } => Some((local.kind.clone(), remote.kind.clone())),
            _ => None,
        })
        .collect()
}

/// The whole life of a relayed call: the 401 challenge, relayed
/// candidates (type preference 0, rel-addr the mapped address),
/// permissions, checks through Send/Data indications, a channel bound on
/// success and data as ChannelData both ways, refreshes of the allocation
/// (before its 600 s), of the permissions (every 240 s) and of the
/// channels, consent kept for 15 minutes, and deallocation on close.
#[test]
fn a_call_connects_over_relayed_candidates_alone() {
    let mut net = Net::new(false, 0);
    assert!(net.run_until(Duration::from_secs(5), Net::connected), "connected through the relay");
    let took = net.connected_after();
    // The host-to-relay pairs (checked first: higher priority) fail, the
    // server having no permission for host addresses; the relayed pair is
    // nominated once the controlling agent stops waiting for them.
    println!("connected after {took:?}");
    assert!(took < Duration::from_secs(2), "connected after {took:?}");
    for node in [&net.a, &net.b] {
        let relay = node.agent.local_candidates().find(|c| c.kind == CandidateType::RELAY).unwrap().clone();
        assert_eq!(relay.priority >> 24, 0, "type preference 0 for relayed candidates");
        assert_eq!(relay.related_address.unwrap().to_string(), node.host.ip().to_string());
        assert_eq!(relay.related_port, Some(node.host.port()));
        let types = selected_types(&node.events);
        assert_eq!(types, [(CandidateType::RELAY, CandidateType::RELAY)]);
        let alloc = node.agent.relay_allocations().next().unwrap();
        assert_eq!(alloc.state(), AllocationState::Allocated);
        assert_eq!(alloc.relayed(), Some(SocketAddr::new(relay.address.ip().unwrap(), relay.port)));
    }
    let c = &net.server.counts;
    assert_eq!((c.unauthenticated, c.allocates), (2, 2), "one 401 and one authenticated Allocate each");
    assert!(c.permissions >= 2 && c.send_indications > 0 && c.data_indications > 0, "{c:?}");
    assert_eq!((c.denied_send, c.denied_relayed), (0, 0), "checks waited for their permission: {c:?}");
    assert!(c.denied_other > 0, "the host-to-relay pairs were tried: {c:?}");
    // Channels are bound once the relayed pairs succeeded.
    assert!(net.run_until(Duration::from_secs(1), |n| n.server.counts.binds >= 2));
    for i in 0..20u8 {
        net.send_data(&[b'a', i], &[b'b', i]);
        net.run_until(Duration::from_millis(100), |_| false);
    }
    assert_eq!(net.b.data.len(), 20);
    assert_eq!(net.a.data.len(), 20);
    assert!(net.b.data.iter().enumerate().all(|(i, d)| d == &[b'a', i as u8]));
    assert!(net.a.data.iter().enumerate().all(|(i, d)| d == &[b'b', i as u8]));
    let c = &net.server.counts;
    assert!(c.channel_data_in >= 40 && c.channel_data_out >= 40, "data goes as ChannelData once bound: {c:?}");
    // 15 minutes: refreshes keep the allocation, permissions and channels.
    let (refresh0, perm0, bind0) =
        (net.server.counts.refreshes, net.server.counts.permissions, net.server.counts.binds);
    net.run_until(Duration::from_secs(900), |_| false);
    assert!(net.connected(), "consent kept through the relay");
    let c = &net.server.counts;
    assert!(c.refreshes - refresh0 >= 2, "allocation refreshed at 540 s: {c:?}");
    assert!(c.permissions - perm0 >= 6, "permissions refreshed every 240 s: {c:?}");
    assert!(c.binds - bind0 >= 4, "channels refreshed every 300 s: {c:?}");
    assert_eq!((c.denied_send, c.denied_relayed), (0, 0));
    net.send_data(b"late a", b"late b");
    net.run_until(Duration::from_millis(100), |_| false);
    assert_eq!(net.b.data.last().unwrap(), b"late a");
    assert_eq!(net.a.data.last().unwrap(), b"late b");
    // Close: a Refresh with LIFETIME 0 from each.
    net.a.agent.close();
    net.b.agent.close();
    net.pump();
    net.run_until(Duration::from_secs(1), |_| false);
    assert_eq!(net.server.counts.deallocations, 2);
    assert!(net.server.allocs.is_empty());
    for node in [&net.a, &net.b] {
        assert_eq!(node.agent.relay_allocations().next().unwrap().state(), AllocationState::Closed);
    }
}

/// `relay_only` (iceTransportPolicy "relay"): only relayed candidates are
/// signaled and paired, so no host-to-relay pair is ever tried and the
/// relayed pair is nominated on its first response.
#[test]
fn relay_only_signals_and_checks_relayed_candidates_alone() {
    let mut net = Net::build(false, 0, true);
    assert!(net.run_until(Duration::from_secs(5), Net::connected));
    let took = net.connected_after();
    println!("relay only: connected after {took:?}");
    assert!(took < Duration::from_millis(500), "connected after {took:?}");
    for node in [&net.a, &net.b] {
        let signaled: Vec<CandidateType> = node
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Candidate(c) => Some(c.kind.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(signaled, [CandidateType::RELAY]);
        assert_eq!(node.agent.pair_count(), 1);
        assert_eq!(selected_types(&node.events), [(CandidateType::RELAY, CandidateType::RELAY)]);
    }
    let c = &net.server.counts;
    assert_eq!((c.denied_send, c.denied_relayed, c.denied_other), (0, 0, 0), "{c:?}");
}

/// 438 Stale Nonce: the request is retried with the new nonce.
#[test]
fn a_stale_nonce_is_retried_with_the_new_one() {
    let mut net = Net::new(true, 0);
    assert!(net.run_until(Duration::from_secs(5), Net::connected));
    assert_eq!(net.server.counts.allocates, 2);
    assert_eq!(net.server.nonces.values().filter(|n| *n == "nonce-1x").count(), 1);
}

/// A lost Allocate is retransmitted after the agent's RTO (500 ms, then
/// doubled).
#[test]
fn allocate_requests_are_retransmitted_with_the_rto() {
    let mut net = Net::new(false, 3);
    assert!(net.run_until(Duration::from_secs(5), Net::connected));
    let t = |i: usize| net.server_arrivals[i] - net.start;
    let ms = Duration::from_millis;
    // Both first Allocates at 20 ms, lost; A's and B's retransmission at
    // 520 ms (one of them lost again), the last at 1520 ms.
    assert_eq!((t(0), t(1)), (ms(20), ms(20)));
    assert_eq!((t(2), t(3)), (ms(520), ms(520)));
    assert!(net.server_arrivals.iter().any(|&x| x - net.start == ms(1520)));
    let retransmits: u64 =
        [&net.a, &net.b].iter().map(|n| n.agent.relay_allocations().next().unwrap().stats().retransmits).sum();
    assert_eq!(
        retransmits,
        3,
        "{:?} {:?} {:?}",
        net.a.agent.relay_allocations().next().unwrap().stats(),
        net.b.agent.relay_allocations().next().unwrap().stats(),
        net.a.agent.stats()
    );
}

/// Forged and broken datagrams from the server's address are dropped and
/// counted; the allocation goes on.
#[test]
fn bad_responses_are_dropped_and_counted() {
    let mut net = Net::new(false, 0);
    // Let the first 401 through, then forge a success for the
    // authenticated Allocate signed with another password.
    assert!(net.run_until(Duration::from_millis(100), |n| n.server.counts.unauthenticated == 2));
    let from_a = |n: &Net| n.in_flight.iter().any(|(_, _, p)| p.dst == addr(SERVER) && p.src == addr(A_HOST));
    assert!(net.run_until(Duration::from_millis(100), from_a));
    let pending = net.in_flight.iter().find(|(_, _, p)| p.dst == addr(SERVER) && p.src == addr(A_HOST));
    let request = &pending.expect("A's authenticated Allocate in flight").2.data;
    let (msg, _) = MessageDecoderBuilder::default().build().decode(request).unwrap();
    let wrong = HMACKey::new_long_term("u", REALM, "not p", Algorithm::from(AlgorithmId::MD5)).unwrap();
    let forged = StunMessageBuilder::new(ALLOCATE, MessageClass::SuccessResponse)
        .with_transaction_id(*msg.transaction_id())
        .with_attribute(XorRelayedAddress::from(addr("203.0.113.66:1")))
        .with_attribute(MessageIntegrity::new(wrong))
        .build();
    let now = net.now;
    let (a, server) = (&mut net.a.agent, addr(SERVER));
    assert_eq!(a.handle_receive(now, addr(A_HOST), server, &encode(&forged)), Receive::Dropped(DropReason::Relay));
    // Unsigned, truncated, unknown channel, garbage: dropped or not ours,
    // never a panic.
    let unsigned = StunMessageBuilder::new(ALLOCATE, MessageClass::SuccessResponse)
        .with_transaction_id(*msg.transaction_id())
        .with_attribute(XorRelayedAddress::from(addr("203.0.113.66:1")))
        .build();
    assert_eq!(a.handle_receive(now, addr(A_HOST), server, &encode(&unsigned)), Receive::Dropped(DropReason::Relay));
    let bytes = encode(&unsigned);
    for cut in 0..bytes.len() {
        let _ = a.handle_receive(now, addr(A_HOST), server, &bytes[..cut]);
    }
    assert!(matches!(a.handle_receive(now, addr(A_HOST), server, &[0x40, 0x07, 0, 0]), Receive::Dropped(_)));
    let stats = a.relay_allocations().next().unwrap().stats().clone();
    assert!(stats.dropped >= 3, "{stats:?}");
    assert!(a.stats().dropped(DropReason::Relay) >= 3);
    assert_eq!(a.relay_allocations().next().unwrap().state(), AllocationState::Allocating);
    assert!(net.run_until(Duration::from_secs(5), Net::connected), "the genuine answer still counts");
    assert_ne!(net.a.agent.relay_allocations().next().unwrap().relayed(), Some(addr("203.0.113.66:1")));
}

/// A server that refuses the credentials (401 again) fails the allocation:
/// gathering ends without a relayed candidate.
#[test]
fn wrong_credentials_fail_the_allocation() {
    let start = Instant::now();
    let server = TurnServer::udp(addr(SERVER), "u", "wrong");
    let cfg = AgentConfig { seed: Some(3), turn_servers: vec![server], ..AgentConfig::default() };
    let mut a = Agent::new(cfg).unwrap();
    a.add_host_candidate(start, Component::RTP, addr(A_HOST)).unwrap();
    a.end_of_local_candidates(start);
    let mut fake = FakeTurn::new();
    let mut now = start;
    for _ in 0..4 {
        while let Some(t) = a.poll_transmit() {
            for p in fake.on_client(t.source, &t.contents) {
                let _ = a.handle_receive(now, p.dst, p.src, &p.data);
            }
        }
        now += Duration::from_millis(10);
        a.handle_timeout(now);
    }
    // The retry with the credentials was answered 401 again: failed, and
    // gathering ends at once.
    assert_eq!(fake.counts.unauthenticated, 2);
    assert_eq!(a.relay_allocations().next().unwrap().state(), AllocationState::Failed);
    assert!(now - start < Duration::from_millis(100));
    let events: Vec<Event> = std::iter::from_fn(|| a.poll_event()).collect();
    assert!(events.contains(&Event::CandidatesDone));
    assert!(!events.iter().any(|e| matches!(e, Event::Candidate(c) if c.kind == CandidateType::RELAY)));
    assert_eq!(a.data_paths().count(), 0);
}

/// The relayed candidate's local preference (bits 8..24 of its priority)
/// for a relay reached over `transport` from the IPv4 host base (local
/// preference 65279): UDP keeps it, TCP and TLS rank below.
fn relay_local_pref(transport: TurnTransport) -> u32 {
    match transport {
        TurnTransport::Udp => 65279,
        TurnTransport::Tcp => 0x8000 | (65279 & 0x3FFF),
        _ => 0x4000 | (65279 & 0x3FFF),
    }
}

/// TURN over TCP and over TLS (one framing; TLS is the driver's): the
/// allocation waits for the stream the agent asked for, every message is
/// cut into chunks at random boundaries on the way, requests go once (no
/// retransmission on a stream), ChannelData is padded to a multiple of 4
/// both ways; both agents connect over relay/relay, data flows both ways
/// as ChannelData, and close deallocates and then closes the stream.
#[test]
fn a_call_connects_through_relays_over_streams() {
    for transport in [TurnTransport::Tcp, TurnTransport::Tls] {
        for seed in 0..6 {
            let mut net = Net::build_over(false, 0, true, transport, seed);
            assert!(net.run_until(Duration::from_secs(5), Net::connected), "{transport:?} seed {seed}");
            let took = net.connected_after();
            assert!(took < Duration::from_millis(600), "{transport:?}: connected after {took:?}");
            for node in [&net.a, &net.b] {
                let cands: Vec<_> = node.agent.local_candidates().collect();
                assert_eq!(cands.len(), 1, "the relayed candidate alone: {cands:?}");
                let relay = cands[0];
                assert_eq!(relay.kind, CandidateType::RELAY);
                assert_eq!(relay.transport.as_str(), "udp", "the relayed address is UDP");
                assert_eq!(relay.priority >> 24, 0, "type preference 0");
                assert_eq!((relay.priority >> 8) & 0xFFFF, relay_local_pref(transport));
                assert_eq!(selected_types(&node.events), [(CandidateType::RELAY, CandidateType::RELAY)]);
                assert!(
                    matches!(node.commands[..], [StreamCommand::Connect { .. }]),
                    "one stream asked for: {:?}",
                    node.commands
                );
                let alloc = node.agent.relay_allocations().next().unwrap();
                assert_eq!((alloc.transport(), alloc.state()), (transport, AllocationState::Allocated));
                assert_eq!(alloc.stats().retransmits, 0, "nothing retransmitted on a stream");
                // The selected pair's statistics say how the relay is reached.
                let pair = node.agent.selected_pair(Component::RTP).unwrap();
                assert_eq!((pair.local_kind, pair.remote_kind), (CandidateKind::Relayed, CandidateKind::Relayed));
                assert_eq!(pair.relay_protocol, Some(transport));
                // The stream is no UDP path: nothing routes by it.
                assert!(!node.agent.data_paths().any(|(_, r)| r == addr(SERVER)));
            }
            let c = &net.server.counts;
            assert_eq!((c.unauthenticated, c.allocates), (2, 2), "{c:?}");
            assert!(net.run_until(Duration::from_secs(1), |n| n.server.counts.binds >= 2));
            for i in 0..20u8 {
                // Lengths 1 to 8: every padding.
                let a_msg: Vec<u8> = (0..=i % 8).map(|k| b'a' ^ k ^ i).collect();
                let b_msg: Vec<u8> = (0..=(i + 3) % 8).map(|k| b'b' ^ k ^ i).collect();
                net.send_data(&a_msg, &b_msg);
                net.run_until(Duration::from_millis(100), |_| false);
                assert_eq!(net.b.data.last(), Some(&a_msg));
                assert_eq!(net.a.data.last(), Some(&b_msg));
            }
            let c = &net.server.counts;
            assert!(c.channel_data_in >= 40 && c.channel_data_out >= 40, "{c:?}");
            assert!(net.stream_messages > 10, "{}", net.stream_messages);
            // A minute more: consent checks through the streams.
            net.run_until(Duration::from_secs(60), |_| false);
            assert!(net.connected());
            net.a.agent.close();
            net.b.agent.close();
            net.pump();
            net.run_until(Duration::from_secs(1), |_| false);
            assert_eq!(net.server.counts.deallocations, 2);
            for node in [&net.a, &net.b] {
                assert!(matches!(node.commands[..], [StreamCommand::Connect { .. }, StreamCommand::Close { .. }]));
            }
        }
    }
}

/// A UDP relay outranks a TCP one, which outranks a TLS one, whatever
/// the order of the servers (RFC 8445 section 5.1.2.1 local preference).
#[test]
fn relays_over_streams_rank_below_udp_relays() {
    for transport in [TurnTransport::Udp, TurnTransport::Tcp, TurnTransport::Tls] {
        let mut net = Net::build_over(false, 0, true, transport, 7);
        assert!(net.run_until(Duration::from_secs(5), Net::connected));
        let relay = net.a.agent.local_candidates().next().unwrap().clone();
        assert_eq!((relay.priority >> 8) & 0xFFFF, relay_local_pref(transport), "{transport:?}");
    }
    assert!(relay_local_pref(TurnTransport::Udp) > relay_local_pref(TurnTransport::Tcp));
    assert!(relay_local_pref(TurnTransport::Tcp) > relay_local_pref(TurnTransport::Tls));
}

/// The stream to the server closes after the call connected: the
/// allocation is lost with it (RFC 8656 section 3.1), the agent asks for
/// nothing more on it, and consent through the relay runs out.
#[test]
fn a_closed_stream_loses_its_allocation() {
    let mut net = Net::build_over(false, 0, true, TurnTransport::Tcp, 3);
    assert!(net.run_until(Duration::from_secs(5), Net::connected));
    let now = net.now;
    net.a.stream_open = false;
    net.a.agent.stream_closed(now, addr(A_HOST), addr(SERVER), TurnTransport::Tcp);
    assert_eq!(net.a.agent.relay_allocations().next().unwrap().state(), AllocationState::Failed);
    net.pump();
    assert!(matches!(net.a.commands[..], [StreamCommand::Connect { .. }, StreamCommand::Close { .. }]));
    // Messages for a closed stream are not the agent's.
    let r = net.a.agent.handle_stream_receive(now, addr(A_HOST), addr(SERVER), TurnTransport::Tcp, &[0x40, 0, 0, 0]);
    assert_eq!(r, Receive::Dropped(DropReason::UnknownPath));
    assert!(net.run_until(Duration::from_secs(40), |n| n.a.agent.state() == State::Disconnected));
    assert!(net.a.agent.poll_transmit().is_none_or(|t| !t.transport.is_stream()));
}

/// An allocation lost after it was made (here its stream closed) is made
/// again a second later: the lost relayed candidate is no longer signaled
/// and its pairs fail, the new one is trickled (the peer takes it), and an
/// ICE restart, once consent over the lost one has run out, signals only
/// the new one.
#[test]
fn a_lost_allocation_is_made_again_and_its_candidate_trickled() {
    let mut net = Net::build_over(false, 0, true, TurnTransport::Tcp, 5);
    assert!(net.run_until(Duration::from_secs(5), Net::connected));
    let old = net.a.agent.relay_allocations().next().unwrap().relayed().unwrap();
    let lost_at = net.now;
    net.a.stream_open = false;
    net.a.agent.stream_closed(lost_at, addr(A_HOST), addr(SERVER), TurnTransport::Tcp);
    net.pump();
    assert!(net.a.agent.local_candidates().next().is_none(), "the lost relayed candidate is not signaled");
    let pairs: Vec<_> = net.a.agent.candidate_pairs().filter(|p| p.local == old).collect();
    assert!(!pairs.is_empty() && pairs.iter().all(|p| p.state == PairState::Failed), "{pairs:?}");
    assert!(net.run_until(Duration::from_secs(3), |n| n.a.agent.relay_allocations().any(|c| c.relayed().is_some())));
    let new = net.a.agent.relay_allocations().find_map(|c| c.relayed()).unwrap();
    assert_ne!(new, old);
    let took = net.now - lost_at;
    assert!((Duration::from_secs(1)..Duration::from_millis(1500)).contains(&took), "{took:?}");
    assert!(matches!(
        net.a.commands[..],
        [StreamCommand::Connect { .. }, StreamCommand::Close { .. }, StreamCommand::Connect { .. }]
    ));
    let trickled: Vec<_> =
        net.a.events.iter().filter(|(t, e)| *t > lost_at && matches!(e, Event::Candidate(_))).collect();
    assert!(
        matches!(&trickled[..], [(_, Event::Candidate(c))] if c.port == new.port() && c.kind == CandidateType::RELAY),
        "{trickled:?}"
    );
    let cands: Vec<u16> = net.a.agent.local_candidates().map(|c| c.port).collect();
    assert_eq!(cands, [new.port()]);
    // The selected pair went through the lost allocation: consent runs out.
    assert!(net.run_until(Duration::from_secs(40), |n| n.a.agent.state() == State::Disconnected));
    let now = net.now;
    let before = net.a.events.len();
    net.a.agent.restart(now, None).unwrap();
    net.pump();
    let again: Vec<u16> = net.a.events[before..]
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Candidate(c) => Some(c.port),
            _ => None,
        })
        .collect();
    assert_eq!(again, [new.port()], "the restart signals the live relayed candidate only");
}

/// A replacement that the server never answers is given up after the
/// gathering timeout (5 s) and tried again after 2, 4 and 8 s: four
/// attempts, then no more.
#[test]
fn a_lost_allocation_is_tried_again_four_times() {
    let mut net = Net::build_over(false, 0, true, TurnTransport::Tcp, 6);
    assert!(net.run_until(Duration::from_secs(5), Net::connected));
    let lost_at = net.now;
    net.a.stream_open = false;
    net.a.agent.stream_closed(lost_at, addr(A_HOST), addr(SERVER), TurnTransport::Tcp);
    net.drop_to_server = usize::MAX;
    net.run_until(Duration::from_secs(120), |_| false);
    let connects = net.a.commands.iter().filter(|c| matches!(c, StreamCommand::Connect { .. })).count();
    assert_eq!(connects, 1 + 4, "{:?}", net.a.commands);
    assert!(net.a.agent.relay_allocations().all(|c| c.relayed().is_none()));
    assert!(net.a.agent.poll_timeout().is_none_or(|t| t > net.now), "nothing due: no busy loop");
}

/// A stream that cannot be opened fails its allocation at once: gathering
/// ends without a relayed candidate. A request lost on a stream is not
/// retransmitted; the allocation is abandoned when gathering times out,
/// and its stream closed.
#[test]
fn streams_that_fail_end_gathering() {
    let start = Instant::now();
    let mut a = Agent::new(turn_cfg_over(Role::Controlling, 4, TurnTransport::Tls)).unwrap();
    a.add_host_candidate(start, Component::RTP, addr(A_HOST)).unwrap();
    a.end_of_local_candidates(start);
    let connect = a.poll_stream_command().unwrap();
    assert_eq!(
        connect,
        StreamCommand::Connect {
            local: addr(A_HOST),
            server: addr(SERVER),
            transport: TurnTransport::Tls,
            host: "192.0.2.50".into()
        }
    );
    assert!(a.poll_transmit().is_none(), "nothing before the stream opens");
    a.stream_closed(start, addr(A_HOST), addr(SERVER), TurnTransport::Tls);
    let events: Vec<Event> = std::iter::from_fn(|| a.poll_event()).collect();
    assert!(events.contains(&Event::CandidatesDone), "{events:?}");
    assert_eq!(a.relay_allocations().next().unwrap().state(), AllocationState::Failed);

    let mut net = Net::build_over(false, 2, true, TurnTransport::Tcp, 5);
    net.run_until(Duration::from_secs(6), |_| false);
    assert_eq!(net.server_arrivals.len(), 2, "each first Allocate sent once and lost");
    for node in [&net.a, &net.b] {
        assert_eq!(node.agent.relay_allocations().next().unwrap().state(), AllocationState::Closed);
        assert!(matches!(node.commands[..], [StreamCommand::Connect { .. }, StreamCommand::Close { .. }]));
        assert!(
            node.events.iter().any(|(t, e)| *e == Event::CandidatesDone && *t - net.start == Duration::from_secs(5))
        );
    }
}
