//! Forks behind one socket: two agents sharing one local address and one
//! set of local credentials, each connecting to a different peer, with every
//! datagram to the shared address routed by one `Demux` (requests by the
//! sender's ufrag, responses by transaction id, data by 4-tuple). Simulated
//! time, no loss.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtc_candidate::Component;
use rtc_ice::{Agent, AgentConfig, Credentials, Demux, Receive, Role, State};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

struct Packet {
    src: SocketAddr,
    dst: SocketAddr,
    data: Vec<u8>,
}

struct World {
    now: Instant,
    shared: SocketAddr,
    forks: Vec<Agent>,
    peers: Vec<(SocketAddr, Agent)>,
    demux: Demux<usize>,
    /// The paths generation of each fork the router last synced.
    synced: Vec<Option<u64>>,
    net: Vec<Packet>,
    data: Vec<(usize, Vec<u8>)>,
    /// Every fork's `accepts` agrees with the router (not so for a fork
    /// without its peer's credentials, which cannot tell senders apart).
    check_accepts: bool,
}

impl World {
    /// `n` forks on `shared` with the same credentials, each facing its own
    /// peer; candidates and credentials already exchanged.
    fn new(n: usize, register_any: bool) -> Self {
        let now = Instant::now();
        let shared = addr("10.0.0.1:5000");
        let creds = Credentials { ufrag: "fork".into(), pwd: "forkpasswordforkpassword".into() };
        let mut w = World {
            now,
            shared,
            forks: vec![],
            peers: vec![],
            demux: Demux::new(),
            synced: vec![None; n],
            net: vec![],
            data: vec![],
            check_accepts: true,
        };
        if register_any {
            // Requests from a sender no fork names go to fork 0.
            w.demux.register(&creds.ufrag, 0);
        }
        for i in 0..n {
            let fork_cfg = AgentConfig {
                role: Role::Controlled,
                credentials: Some(creds.clone()),
                seed: Some(i as u64),
                ..AgentConfig::default()
            };
            let mut fork = Agent::new(fork_cfg).unwrap();
            let peer_addr = addr(&format!("192.0.2.{}:7000", i + 1));
            let peer_cfg =
                AgentConfig { role: Role::Controlling, seed: Some(100 + i as u64), ..AgentConfig::default() };
            let mut peer = Agent::new(peer_cfg).unwrap();
            let hf = fork.add_host_candidate(now, Component::RTP, shared).unwrap();
            let hp = peer.add_host_candidate(now, Component::RTP, peer_addr).unwrap();
            fork.end_of_local_candidates(now);
            peer.end_of_local_candidates(now);
            if !register_any || i > 0 {
                w.demux.register_from(&creds.ufrag, &peer.local_credentials().ufrag, i);
            }
            fork.set_remote_credentials(now, peer.local_credentials().clone()).unwrap();
            peer.set_remote_credentials(now, fork.local_credentials().clone()).unwrap();
            fork.add_remote_candidate(now, &hp).unwrap();
            peer.add_remote_candidate(now, &hf).unwrap();
            fork.end_of_remote_candidates(now);
            peer.end_of_remote_candidates(now);
            w.forks.push(fork);
            w.peers.push((peer_addr, peer));
        }
        w
    }

    fn pump(&mut self) {
        for (k, fork) in self.forks.iter_mut().enumerate() {
            while let Some(t) = fork.poll_transmit() {
                assert_eq!(t.source, self.shared);
                self.demux.note_transmit(self.now, k, &t);
                self.net.push(Packet { src: t.source, dst: t.destination, data: t.contents });
            }
            while fork.poll_event().is_some() {}
            // The router re-reads a fork's paths only when they moved.
            let g = fork.paths_generation();
            if self.synced[k] != Some(g) {
                self.demux.set_paths(k, fork.data_paths());
                self.synced[k] = Some(g);
            }
        }
        for (_, peer) in &mut self.peers {
            while let Some(t) = peer.poll_transmit() {
                self.net.push(Packet { src: t.source, dst: t.destination, data: t.contents });
            }
            while peer.poll_event().is_some() {}
        }
    }

    fn deliver(&mut self) {
        for p in std::mem::take(&mut self.net) {
            if p.dst == self.shared {
                let k = self.demux.route_datagram(p.dst, p.src, &p.data).expect("every datagram routes");
                for (j, fork) in self.forks.iter().enumerate().filter(|_| self.check_accepts) {
                    assert_eq!(fork.accepts(p.dst, p.src, &p.data), j == k, "fork {j}, routed to {k}");
                }
                if let Receive::Data { .. } = self.forks[k].handle_receive(self.now, p.dst, p.src, &p.data) {
                    self.data.push((k, p.data));
                }
            } else if let Some((_, peer)) = self.peers.iter_mut().find(|(a, _)| *a == p.dst) {
                let _ = peer.handle_receive(self.now, p.dst, p.src, &p.data);
            }
        }
    }

    /// Runs until `done` or `limit` of simulated time; 10 ms latency.
    fn run_until(&mut self, limit: Duration, done: impl Fn(&World) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            self.pump();
            if done(self) {
                return true;
            }
            self.now += Duration::from_millis(10);
            self.deliver();
            let now = self.now;
            for a in self.forks.iter_mut().chain(self.peers.iter_mut().map(|(_, a)| a)) {
                if a.poll_timeout().is_some_and(|t| t <= now) {
                    a.handle_timeout(now);
                }
            }
        }
        done(self)
    }

    fn all_connected(&self) -> bool {
        self.forks.iter().chain(self.peers.iter().map(|(_, a)| a)).all(|a| a.state() == State::Connected)
    }
}

fn forks_connect_and_carry_data(register_any: bool) {
    let mut w = World::new(3, register_any);
    assert!(w.run_until(Duration::from_secs(10), World::all_connected));
    // Data from each peer reaches its own fork, by 4-tuple.
    for (i, (_, peer)) in w.peers.iter().enumerate() {
        let path = peer.path(Component::RTP).unwrap();
        assert_eq!(path.remote, w.shared);
        w.net.push(Packet { src: path.local, dst: path.remote, data: format!("\u{80}to fork {i}").into_bytes() });
    }
    w.deliver();
    let mut got = w.data.clone();
    got.sort();
    let want: Vec<_> = (0..3).map(|i| (i, format!("\u{80}to fork {i}").into_bytes())).collect();
    assert_eq!(got, want);
    // Consent keeps flowing for a minute, still routed.
    assert!(!w.run_until(Duration::from_secs(60), |w| !w.all_connected()));
    // No fork saw a datagram meant for a sibling: nothing dropped anywhere.
    for f in &w.forks {
        assert_eq!(f.stats().dropped_total(), 0, "{:?}", f.stats());
        assert!(f.stats().consent_checks > 0);
    }
    let s = w.demux.stats();
    assert_eq!((s.unrouted, s.path_conflicts, s.transactions_evicted), (0, 0, 0));
    assert_eq!(w.demux.path_count(), 3);
    // A fork that goes away takes its routes with it.
    w.demux.unregister_key(2);
    let path = w.peers[2].1.path(Component::RTP).unwrap();
    assert_eq!(w.demux.route_datagram(path.remote, path.local, b"\x80"), None);
    assert_eq!(w.demux.path_count(), 2);
}

#[test]
fn forks_sharing_a_local_ufrag_are_routed_by_sender() {
    forks_connect_and_carry_data(false);
}

#[test]
fn a_fork_registered_for_any_sender_is_the_fallback() {
    forks_connect_and_carry_data(true);
}

/// Forks share their credentials, so another fork's peer (anyone who saw
/// the offer) can sign checks that reach a fork still waiting for its own
/// peer. Those checks are answered (RFC 8445 section 7.3) but teach the
/// fork nothing: no peer-reflexive candidate, no pair, no path for data, no
/// role switch (a role conflict before the peer is known is answered with
/// 487); and once its own peer is known the fork connects to that peer
/// alone.
#[test]
fn a_fork_waiting_for_its_peer_learns_nothing_from_another_peers_checks() {
    let mut w = World::new(1, false);
    w.check_accepts = false;
    let creds = w.forks[0].local_credentials().clone();
    let now = w.now;
    // Fork 1: same socket and credentials, no peer yet; requests from a
    // sender no fork names reach it.
    let mut fork = Agent::new(AgentConfig {
        role: Role::Controlled,
        credentials: Some(creds.clone()),
        seed: Some(7),
        ..AgentConfig::default()
    })
    .unwrap();
    let hf = fork.add_host_candidate(now, Component::RTP, w.shared).unwrap();
    fork.end_of_local_candidates(now);
    w.forks.push(fork);
    w.synced.push(None);
    w.demux.register(&creds.ufrag, 1);
    // A stranger holding the offer: signs with the forks' password, also
    // claims the controlled role (a conflict the fork would resolve).
    let evil_addr = addr("198.51.100.66:6666");
    let mut evil =
        Agent::new(AgentConfig { role: Role::Controlled, seed: Some(66), ..AgentConfig::default() }).unwrap();
    evil.add_host_candidate(now, Component::RTP, evil_addr).unwrap();
    evil.end_of_local_candidates(now);
    evil.set_remote_credentials(now, creds.clone()).unwrap();
    evil.add_remote_candidate(now, &hf).unwrap();
    evil.end_of_remote_candidates(now);
    w.peers.push((evil_addr, evil));
    w.run_until(Duration::from_secs(3), |_| false);
    let f = &w.forks[1];
    assert!(f.stats().responses_sent > 0, "the stranger's checks arrived and were answered");
    assert!(f.stats().role_conflicts > 0, "with a role conflict");
    assert_eq!(f.role(), Role::Controlled, "which does not turn the fork's role (a 487 answers it)");
    assert_eq!((f.remote_candidate_count(), f.remote_peer_reflexive_count()), (0, 0), "nothing learned");
    assert_eq!(f.path(Component::RTP), None);
    assert!(!f.accepts(w.shared, evil_addr, b"\x80data"), "no data path from the stranger");
    assert_ne!(f.state(), State::Connected);

    // Its own peer's description arrives: the role from the descriptions,
    // its credentials and candidate.
    let good_addr = addr("192.0.2.50:7000");
    let mut good =
        Agent::new(AgentConfig { role: Role::Controlling, seed: Some(50), ..AgentConfig::default() }).unwrap();
    let hg = good.add_host_candidate(now, Component::RTP, good_addr).unwrap();
    good.end_of_local_candidates(now);
    good.set_remote_credentials(now, creds.clone()).unwrap();
    good.add_remote_candidate(now, &hf).unwrap();
    good.end_of_remote_candidates(now);
    let now = w.now;
    let f = &mut w.forks[1];
    f.set_role(now, Role::Controlled);
    f.set_remote_credentials(now, good.local_credentials().clone()).unwrap();
    f.add_remote_candidate(now, &hg).unwrap();
    f.end_of_remote_candidates(now);
    w.demux.register_from(&creds.ufrag, &good.local_credentials().ufrag, 1);
    w.peers.push((good_addr, good));
    let connected = |w: &World| w.forks[1].state() == State::Connected && w.peers[2].1.state() == State::Connected;
    assert!(w.run_until(Duration::from_secs(10), connected));
    let f = &w.forks[1];
    assert_eq!(f.role(), Role::Controlled);
    assert_eq!(f.path(Component::RTP).map(|p| p.remote), Some(good_addr));
    assert!(!f.accepts(w.shared, evil_addr, b"\x80data"), "still no data path from the stranger");
    assert_eq!(f.remote_peer_reflexive_count(), 0);
}
