//! Remote candidates named by mDNS `.local` names (as browsers signal their
//! host candidates), in simulated time (see `sim/mod.rs`): the test plays
//! the driver's resolver, answering the agent's queries after a delay or
//! never.

mod sim;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rtc_candidate::{Address, Candidate, CandidateKind, Component};
use rtc_ice::{AgentConfig, Error, Event, Limits, Role, State};
use sim::{NetConfig, Pair};

const A: &str = "10.0.0.1:5000";
const B: &str = "10.0.0.2:6000";
const NAME: &str = "4c5a0b8e-2f61-4d7a-9e3c-1b2d3f4a5c6e.local";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn cfg(role: Role, seed: u64) -> AgentConfig {
    AgentConfig { role, seed: Some(seed), ..AgentConfig::default() }
}

fn candidates(node: &sim::Node) -> Vec<Candidate> {
    node.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Candidate(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

/// A candidate as a browser signals it: its address hidden behind `name`.
fn concealed(c: &Candidate, name: &str) -> Candidate {
    let mut c = c.clone();
    c.address = Address::Mdns(name.to_owned());
    c
}

/// A, the browser, signals its host candidate behind NAME; B (rtc) holds
/// it and asks for the name. With `b_to_a`, A knows B's candidate and
/// checks it (so B learns A as peer-reflexive first); otherwise only B's
/// checks, after the name is resolved, can connect.
fn browser_pair(b_to_a: bool, seed: u64) -> Pair {
    let mut p = Pair::without_signaling(
        cfg(Role::Controlled, seed),
        &[(1, addr(A))],
        cfg(Role::Controlling, seed + 1),
        &[(1, addr(B))],
        NetConfig::default(),
    );
    let now = p.now;
    for c in candidates(&p.a) {
        p.b.agent.add_remote_candidate(now, &concealed(&c, NAME)).unwrap();
    }
    p.b.agent.end_of_remote_candidates(now);
    if b_to_a {
        for c in candidates(&p.b) {
            p.a.agent.add_remote_candidate(now, &c).unwrap();
        }
        p.a.agent.end_of_remote_candidates(now);
    }
    assert_eq!(p.b.agent.mdns_pending(), 1);
    assert_eq!(p.b.agent.poll_mdns_query().as_deref(), Some(NAME));
    assert_eq!(p.b.agent.poll_mdns_query(), None, "each name is asked for once");
    p
}

#[test]
fn a_name_resolved_later_becomes_a_host_pair_and_connects() {
    let mut p = browser_pair(false, 300);
    // Nothing to check until the name is known.
    p.run_for(Duration::from_millis(400));
    assert_eq!(p.b.agent.pair_count(), 0);
    assert!(!p.both_connected());
    let resolved = p.now;
    p.b.agent.mdns_resolved(resolved, &NAME.to_uppercase(), Some(addr(A).ip()));
    assert_eq!(p.b.agent.mdns_pending(), 0);
    assert!(p.run_until(Duration::from_secs(5), Pair::both_connected));
    let took = p.b.connected_at().unwrap() - resolved;
    assert!(took < Duration::from_millis(200), "connected {took:?} after the name was resolved");
    assert_eq!(p.b.agent.path(Component::RTP).unwrap().remote, addr(A));
    assert_eq!(p.b.agent.remote_peer_reflexive_count(), 0);
    let remote =
        p.b.events
            .iter()
            .find_map(|(_, e)| match e {
                Event::ActiveCandidate { remote, .. } => Some(remote.clone()),
                _ => None,
            })
            .unwrap();
    // The browser's candidate with its address: foundation, priority and
    // port as signaled.
    let signaled = candidates(&p.a).remove(0);
    assert_eq!(remote.kind.kind(), CandidateKind::Host);
    assert_eq!(remote.address, Address::Ip(addr(A).ip()));
    assert_eq!((&remote.foundation, remote.priority, remote.port), (&signaled.foundation, signaled.priority, 5000));
    p.send_data(Component::RTP, b"from a", b"from b");
    p.run_for(Duration::from_millis(100));
    assert_eq!((p.a.data.len(), p.b.data.len()), (1, 1));
}

#[test]
fn a_resolved_name_replaces_the_peer_reflexive_candidate_its_checks_made() {
    let mut p = browser_pair(true, 310);
    // A's checks reach B first: B learns A as peer-reflexive and connects.
    assert!(p.run_until(Duration::from_secs(5), Pair::both_connected));
    assert_eq!(p.b.agent.remote_peer_reflexive_count(), 1);
    let now = p.now;
    p.b.agent.mdns_resolved(now, NAME, Some(addr(A).ip()));
    p.run_for(Duration::from_secs(1));
    assert_eq!(p.b.agent.remote_peer_reflexive_count(), 0, "the resolved candidate replaced the learned one");
    assert_eq!(p.b.agent.remote_candidate_count(), 1);
    assert_eq!(p.b.agent.state(), State::Connected);
    assert_eq!(p.b.agent.path(Component::RTP).unwrap().remote, addr(A));
    // The selected pair is announced again with the resolved candidate.
    let kinds: Vec<CandidateKind> =
        p.b.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::ActiveCandidate { remote, .. } => Some(remote.kind.kind()),
                _ => None,
            })
            .collect();
    assert_eq!(kinds, [CandidateKind::PeerReflexive, CandidateKind::Host]);
}

#[test]
fn an_unresolved_name_is_dropped_after_the_timeout() {
    let mut p = browser_pair(false, 320);
    let start = p.now;
    // Waiting for the name, the agent does not fail though no pair exists
    // and the peer's candidates have ended.
    p.run_until(Duration::from_secs(10), |p| p.b.agent.mdns_pending() == 0);
    let dropped = p.now - start;
    assert!(dropped >= Duration::from_secs(3) && dropped < Duration::from_millis(3100), "{dropped:?}");
    assert!(p.run_until(Duration::from_secs(1), |p| p.b.agent.state() == State::Failed));
    // A late answer changes nothing.
    let now = p.now;
    p.b.agent.mdns_resolved(now, NAME, Some(addr(A).ip()));
    assert_eq!((p.b.agent.remote_candidate_count(), p.b.agent.pair_count()), (0, 0));
}

#[test]
fn a_failed_name_is_dropped_at_once() {
    let mut p = browser_pair(false, 330);
    let now = p.now + Duration::from_millis(500);
    p.run_for(Duration::from_millis(500));
    p.b.agent.mdns_resolved(now, "other.local", None);
    assert_eq!(p.b.agent.mdns_pending(), 1, "another name changes nothing");
    p.b.agent.mdns_resolved(now, NAME, None);
    assert_eq!(p.b.agent.mdns_pending(), 0);
    assert!(p.run_until(Duration::from_millis(100), |p| p.b.agent.state() == State::Failed));
}

#[test]
fn a_flood_of_names_is_capped() {
    let mut p = browser_pair(false, 340);
    let c = candidates(&p.a).remove(0);
    let now = p.now;
    let limit = Limits::default().mdns_candidates;
    let mut refused = 0;
    for i in 0..1000 {
        let name = format!("flood-{i}.local");
        match p.b.agent.add_remote_candidate(now, &concealed(&c, &name)) {
            Ok(()) => {}
            Err(Error::LimitReached(_)) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(p.b.agent.mdns_pending(), limit);
    assert_eq!(refused, 1000 - (limit - 1));
    let mut asked = 0;
    while p.b.agent.poll_mdns_query().is_some() {
        asked += 1;
    }
    assert_eq!(asked, limit - 1);
    // The same name and port again is not another candidate; names that
    // are not one label and .local are refused.
    p.b.agent.add_remote_candidate(now, &concealed(&c, NAME)).unwrap();
    assert!(matches!(
        p.b.agent.add_remote_candidate(now, &concealed(&c, "a.b.local")),
        Err(Error::UnsupportedCandidate(_))
    ));
    // Resolving them all with addresses nobody answers on stays within
    // the remote-candidate cap, and an ICE restart forgets the rest.
    for i in 0..200u32 {
        let ip = IpAddr::from([10, 1, (i >> 8) as u8, i as u8]);
        p.b.agent.mdns_resolved(now, &format!("flood-{i}.local"), Some(ip));
    }
    assert_eq!(p.b.agent.mdns_pending(), 1);
    assert!(p.b.agent.remote_candidate_count() <= Limits::default().remote_candidates);
    p.b.agent.restart(now, None).unwrap();
    assert_eq!((p.b.agent.mdns_pending(), p.b.agent.poll_mdns_query()), (0, None));
}

#[test]
fn our_host_candidates_concealed_behind_names_are_resolved_by_the_peer() {
    let concealing = AgentConfig { mdns_host_names: true, ..cfg(Role::Controlling, 350) };
    let mut p =
        Pair::new(concealing, &[(1, addr(A))], cfg(Role::Controlled, 351), &[(1, addr(B))], NetConfig::default());
    // A signals its host candidate under a name, and gives the driver the
    // name with its address, once.
    let signaled = candidates(&p.a).remove(0);
    let Address::Mdns(name) = signaled.address.clone() else { panic!("not concealed: {signaled}") };
    assert!(rtc_ice::mdns::is_candidate_name(&name));
    assert_eq!(p.a.agent.poll_mdns_host_name(), Some((name.clone(), addr(A).ip())));
    assert_eq!(p.a.agent.poll_mdns_host_name(), None);
    // B (signaled by the harness) asks for the name; "its resolver" finds
    // A's address, and the call connects over host candidates.
    assert_eq!(p.b.agent.poll_mdns_query(), Some(name.clone()));
    let now = p.now;
    p.b.agent.mdns_resolved(now, &name, Some(addr(A).ip()));
    assert!(p.run_until(Duration::from_secs(5), Pair::both_connected));
    assert_eq!(p.b.agent.path(Component::RTP).unwrap().remote, addr(A));
    // A restart announces the same name again.
    p.a.agent.restart(p.now, None).unwrap();
    let again: Vec<Candidate> = p.a.agent.local_candidates().cloned().collect();
    assert_eq!(again[0].address, Address::Mdns(name));
}

#[test]
fn a_concealed_host_address_is_not_the_related_address_of_a_server_reflexive_candidate() {
    let stun = addr("192.0.2.100:3478");
    let a = AgentConfig { stun_servers: vec![stun], mdns_host_names: true, ..cfg(Role::Controlling, 360) };
    let net =
        NetConfig { nat: Some(sim::Nat { inside: addr(A), public: addr("203.0.113.1:6000") }), ..NetConfig::default() };
    let mut p = Pair::new(a, &[(1, addr(A))], cfg(Role::Controlled, 361), &[(1, addr(B))], net);
    p.stun = Some(sim::StunServer { addr: stun, requests: 0 });
    assert!(p.run_until(Duration::from_secs(10), |p| p.a.has(|e| *e == Event::CandidatesDone)));
    let srflx = candidates(&p.a).into_iter().find(|c| c.kind.kind() == CandidateKind::ServerReflexive).unwrap();
    assert_eq!(srflx.address, Address::Ip(IpAddr::from([203, 0, 113, 1])));
    assert_eq!((srflx.related_address, srflx.related_port), (Some(Address::Ip(IpAddr::from([0, 0, 0, 0]))), Some(9)));
    assert!(!candidates(&p.a).iter().any(|c| c.to_string().contains("10.0.0.1")), "the host address never shows");
}
