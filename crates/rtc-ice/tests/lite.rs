//! ICE lite (RFC 8445 section 2.5) against a full agent, over the simulated
//! network of `sim/mod.rs`: the full agent controls and nominates, the lite
//! agent only answers, never sends a Binding request, and selects the pair
//! the full agent nominates.

mod sim;

use std::net::SocketAddr;
use std::time::Duration;

use rtc_candidate::{CandidateKind, Component};
use rtc_ice::{Agent, AgentConfig, Error, Event, Role, State, TurnServer};
use sim::{Nat, NetConfig, Pair};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The full agent's address (behind a NAT in some tests).
const FULL: &str = "10.0.0.1:5000";
/// The lite agent's public address.
const LITE: &str = "198.51.100.2:7000";

fn full(role: Role, seed: u64) -> AgentConfig {
    AgentConfig { role, seed: Some(seed), ..AgentConfig::default() }
}

/// A lite agent configured as controlling, which it ignores.
fn lite(seed: u64) -> AgentConfig {
    AgentConfig { role: Role::Controlling, lite: true, seed: Some(seed), ..AgentConfig::default() }
}

/// The full agent is `a`, the lite one `b`; lite is signaled.
fn pair(full_role: Role, seed: u64, net: NetConfig) -> Pair {
    Pair::new(full(full_role, seed), &[(1, addr(FULL))], lite(seed + 1), &[(1, addr(LITE))], net)
}

/// Binding requests (checks, consent checks) a side sent: STUN class
/// request, method Binding (RFC 8489 section 5: the first two octets 0x0001).
fn requests_sent(p: &Pair, by_a: bool) -> usize {
    p.sent.iter().filter(|(_, a, pk)| *a == by_a && pk.data.starts_with(&[0x00, 0x01])).count()
}

/// Binding success responses (0x0101) a side sent.
fn responses_sent(p: &Pair, by_a: bool) -> usize {
    p.sent.iter().filter(|(_, a, pk)| *a == by_a && pk.data.starts_with(&[0x01, 0x01])).count()
}

fn connected_events(node: &sim::Node) -> usize {
    node.events.iter().filter(|(_, e)| *e == Event::Connected).count()
}

/// Whatever role the full agent was configured with (the offerer's or the
/// answerer's), it controls a lite peer and nominates; the lite agent is
/// controlled, sends no Binding request, and selects the nominated pair.
#[test]
fn lite_and_full_connect_with_the_full_side_controlling() {
    for (full_role, seed) in [(Role::Controlling, 1), (Role::Controlled, 3)] {
        let mut p = pair(full_role, seed, NetConfig::default());
        assert!(p.run_until(Duration::from_secs(10), Pair::both_connected), "{full_role:?}");
        assert_eq!((p.a.agent.role(), p.b.agent.role()), (Role::Controlling, Role::Controlled), "{full_role:?}");
        assert!(p.b.agent.is_lite() && p.a.agent.remote_lite());
        // Learned before the first check: no role conflict to repair.
        assert_eq!(p.a.agent.stats().role_conflicts + p.b.agent.stats().role_conflicts, 0);
        let (pa, pb) = (p.a.agent.path(Component::RTP).unwrap(), p.b.agent.path(Component::RTP).unwrap());
        assert_eq!((pa.local, pa.remote), (addr(FULL), addr(LITE)));
        assert_eq!((pb.local, pb.remote), (addr(LITE), addr(FULL)));
        // The full side nominated: its check with USE-CANDIDATE selected the
        // pair on the lite side, one Ta (50 ms: the lite peer proposes no
        // pacing) after the first check, plus the 20 ms crossing.
        let nominated: Vec<_> = p.b.agent.candidate_pairs().filter(|i| i.nominated).collect();
        assert_eq!(nominated.len(), 1);
        let connected = p.b.connected_at().unwrap() - p.start;
        assert_eq!(connected, Duration::from_millis(70), "{full_role:?}");
        p.send_data(Component::RTP, b"to lite", b"to full");
        p.run_for(Duration::from_secs(1));
        assert_eq!(p.b.data, vec![b"to lite".to_vec()]);
        assert_eq!(p.a.data, vec![b"to full".to_vec()]);
        // The lite side only answered.
        assert_eq!(requests_sent(&p, false), 0);
        assert_eq!((p.b.agent.stats().checks_sent, p.b.agent.stats().consent_checks), (0, 0));
        assert_eq!(responses_sent(&p, false), requests_sent(&p, true));
        assert!(p.b.agent.stats().responses_sent >= 2, "the first check and the nominating one");
        // Host candidates only, one event each.
        assert!(p.b.events.iter().all(|(_, e)| match e {
            Event::Candidate(c) => c.kind.kind() == CandidateKind::Host,
            _ => true,
        }));
    }
}

/// With the roles the other way round in the simulation (the lite agent is
/// `a`), and two host addresses on the full side: the lite agent pairs
/// nothing itself, takes the one pair nominated, and the full agent's other
/// pair is never selected by the lite side.
#[test]
fn a_lite_agent_selects_only_what_the_full_agent_nominates() {
    let mut p = Pair::new(
        lite(10),
        &[(1, addr(LITE))],
        full(Role::Controlled, 11),
        &[(1, addr("10.0.0.1:5000")), (1, addr("10.0.0.2:5000"))],
        NetConfig::default(),
    );
    assert!(p.run_until(Duration::from_secs(10), Pair::both_connected));
    p.run_for(Duration::from_secs(3));
    let (pa, pb) = (p.a.agent.path(Component::RTP).unwrap(), p.b.agent.path(Component::RTP).unwrap());
    assert_eq!((pa.remote, pb.remote), (pb.local, pa.local), "both ends agree on the pair");
    assert_eq!(p.a.agent.candidate_pairs().filter(|i| i.nominated).count(), 1);
    assert_eq!(connected_events(&p.a), 1);
    assert_eq!(requests_sent(&p, true), 0);
    assert_eq!(p.b.agent.role(), Role::Controlling);
}

/// 30% loss with reordering, and a NAT in front of the full side, for 25
/// seeds in both configured roles: the lite side learns the full side's
/// public address from its checks (peer-reflexive) and selects it; the
/// full side retransmits until a response comes; the lite side never sends
/// a request.
#[test]
fn lite_and_full_connect_over_loss_and_nat() {
    let nat = Some(Nat { inside: addr(FULL), public: addr("203.0.113.1:6000") });
    let (latency, jitter) = (Duration::from_millis(30), Duration::from_millis(40));
    for seed in 0..25u64 {
        let net = NetConfig { loss: 0.3, latency, jitter, nat, seed };
        let role = if seed % 2 == 0 { Role::Controlling } else { Role::Controlled };
        let mut p = pair(role, seed * 2 + 100, net);
        assert!(p.run_until(Duration::from_secs(60), Pair::both_connected), "seed {seed} did not connect");
        assert_eq!(p.b.agent.path(Component::RTP).unwrap().remote, addr("203.0.113.1:6000"), "seed {seed}");
        assert_eq!(p.a.agent.path(Component::RTP).unwrap().remote, addr(LITE), "seed {seed}");
        assert_eq!(p.a.agent.role(), Role::Controlling);
        assert_eq!(requests_sent(&p, false), 0, "seed {seed}");
        assert!(p.a.agent.stats().checks_sent >= 2, "seed {seed}");
    }
}

/// RFC 7675 section 1: the lite agent sends no consent checks and answers
/// the full agent's, which keep both sides connected for two minutes; when
/// the network is cut, the full side loses consent 24 to 36 s later and the
/// lite side, hearing no more checks, gives the peer up 30 s after the last
/// one.
#[test]
fn the_full_sides_consent_checks_keep_a_lite_call_up() {
    let mut p = pair(Role::Controlling, 20, NetConfig::default());
    assert!(p.run_until(Duration::from_secs(10), Pair::both_connected));
    let connected = p.now;
    p.run_for(Duration::from_secs(120));
    assert_eq!((p.a.agent.state(), p.b.agent.state()), (State::Connected, State::Connected));
    assert!(p.a.agent.stats().consent_checks >= 20, "{}", p.a.agent.stats().consent_checks);
    assert_eq!((p.b.agent.stats().consent_checks, p.b.agent.stats().checks_sent), (0, 0));
    assert_eq!(requests_sent(&p, false), 0);
    assert!(p.now - connected >= Duration::from_secs(120));
    // Cut: the full side's consent runs out, and the lite side's clock too.
    p.blackhole = true;
    let cut = p.now;
    let last_check = p.sent.iter().rev().find(|(_, a, pk)| *a && pk.data.starts_with(&[0x00, 0x01])).unwrap().0;
    assert!(p.run_until(Duration::from_secs(60), |p| {
        p.a.agent.state() == State::Disconnected && p.b.agent.state() == State::Disconnected
    }));
    let when = |n: &sim::Node| n.events.iter().find(|(_, e)| *e == Event::Disconnected).unwrap().0;
    let (full_lost, lite_lost) = (when(&p.a) - cut, when(&p.b) - last_check);
    assert!(full_lost >= Duration::from_secs(24) && full_lost <= Duration::from_secs(36), "{full_lost:?}");
    // The last check left 20 ms before it would have arrived.
    assert!(lite_lost >= Duration::from_secs(30) && lite_lost <= Duration::from_millis(30_030), "{lite_lost:?}");
    assert_eq!(p.b.agent.path(Component::RTP), None);
}

/// RFC 8445 section 9 with a lite side: both restart, data keeps the old
/// path, the full agent checks and nominates again and the lite agent
/// selects the new pair, still controlled and still without a request.
#[test]
fn ice_restart_with_a_lite_side() {
    let mut p = pair(Role::Controlled, 30, NetConfig::default());
    assert!(p.run_until(Duration::from_secs(10), Pair::both_connected));
    let old = p.b.agent.path(Component::RTP).unwrap();
    let now = p.now;
    p.a.agent.restart(now, None).unwrap();
    p.b.agent.restart(now, None).unwrap();
    let (ca, cb) = (p.a.agent.local_credentials().clone(), p.b.agent.local_credentials().clone());
    p.a.agent.set_remote_credentials(now, cb).unwrap();
    p.b.agent.set_remote_credentials(now, ca).unwrap();
    assert_eq!(p.b.agent.pair_count(), 0, "the lite agent's pairs are gone and none is formed from candidates");
    assert_eq!(p.b.agent.path(Component::RTP), Some(old), "the old path until a new pair is selected");
    p.send_data(Component::RTP, b"during a", b"during b");
    assert!(p.run_until(Duration::from_secs(10), |p| connected_events(&p.a) == 2 && connected_events(&p.b) == 2));
    assert_eq!((p.a.data.len(), p.b.data.len()), (1, 1));
    assert_eq!((p.a.agent.role(), p.b.agent.role()), (Role::Controlling, Role::Controlled));
    assert!(p.a.agent.remote_lite(), "the peer's lite flag stays across the restart");
    assert_eq!(p.b.agent.path(Component::RTP), Some(old));
    assert_eq!(requests_sent(&p, false), 0);
    p.run_for(Duration::from_secs(40));
    assert_eq!((p.a.agent.state(), p.b.agent.state()), (State::Connected, State::Connected));
}

/// A full agent that was not told its peer is lite and took the controlled
/// role: its checks carry ICE-CONTROLLED, the lite agent (which may not
/// switch) answers 487, and the full agent takes control (RFC 8445 section
/// 7.2.5.1) and nominates.
#[test]
fn a_full_agent_unaware_of_lite_is_turned_controlling_by_487() {
    let mut p = Pair::without_signaling(
        full(Role::Controlled, 40),
        &[(1, addr(FULL))],
        lite(41),
        &[(1, addr(LITE))],
        NetConfig::default(),
    );
    let c = p.b.agent.local_candidates().next().unwrap().clone();
    let now = p.now;
    p.a.agent.add_remote_candidate(now, &c).unwrap();
    p.a.agent.end_of_remote_candidates(now);
    assert!(p.run_until(Duration::from_secs(10), Pair::both_connected));
    assert_eq!((p.a.agent.role(), p.b.agent.role()), (Role::Controlling, Role::Controlled));
    assert!(p.b.agent.stats().role_conflicts >= 1);
    assert!(!p.a.agent.remote_lite());
    assert_eq!(requests_sent(&p, false), 0);
}

/// A lite agent gathers host candidates only: STUN servers, TURN servers
/// and `relay_only` are refused, and so is a lite peer.
#[test]
fn lite_refuses_servers_and_a_lite_peer() {
    let refused = |cfg: AgentConfig| matches!(Agent::new(cfg), Err(Error::Lite(_)));
    assert!(refused(AgentConfig { stun_servers: vec![addr("192.0.2.1:3478")], ..lite(1) }));
    let turn = TurnServer::udp(addr("192.0.2.1:3478"), "u", "p");
    assert!(refused(AgentConfig { turn_servers: vec![turn], ..lite(1) }));
    assert!(refused(AgentConfig { relay_only: true, ..lite(1) }));
    let now = std::time::Instant::now();
    let mut a = Agent::new(lite(2)).unwrap();
    assert_eq!(a.role(), Role::Controlled, "configured controlling, but lite");
    a.set_role(now, Role::Controlling);
    assert_eq!(a.role(), Role::Controlled, "a lite agent never switches role");
    assert!(matches!(a.set_remote_lite(now, true), Err(Error::Lite(_))));
    assert!(!a.remote_lite());
    a.set_remote_lite(now, false).unwrap();
    // A full agent with a lite peer controls and keeps it.
    let mut f = Agent::new(full(Role::Controlled, 3)).unwrap();
    f.set_remote_lite(now, true).unwrap();
    assert_eq!(f.role(), Role::Controlling);
    f.set_role(now, Role::Controlled);
    assert_eq!(f.role(), Role::Controlling);
}
