//! Two agents over a simulated network (see `sim/mod.rs`).

mod sim;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtc_candidate::{CandidateKind, Component};
use rtc_ice::{Agent, AgentConfig, Credentials, DropReason, Event, Limits, Nomination, Receive, Role, State, Timing};
use sim::{Nat, NetConfig, Pair};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn cfg(role: Role, seed: u64) -> AgentConfig {
    AgentConfig { role, seed: Some(seed), ..AgentConfig::default() }
}

fn fast(role: Role, seed: u64) -> AgentConfig {
    let timing = Timing { rto: Duration::from_millis(100), max_rto: Duration::from_millis(800), ..Timing::default() };
    AgentConfig { role, seed: Some(seed), timing, ..AgentConfig::default() }
}

const A: &str = "10.0.0.1:5000";
const B: &str = "198.51.100.2:7000";

fn simple(a: AgentConfig, b: AgentConfig, net: NetConfig) -> Pair {
    Pair::new(a, &[(1, addr(A))], b, &[(1, addr(B))], net)
}

fn active(events: &[(Instant, Event)]) -> Vec<(rtc_candidate::Candidate, rtc_candidate::Candidate)> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::ActiveCandidate { local, remote, .. } => Some((local.clone(), remote.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn connects_and_carries_data() {
    let mut p = simple(cfg(Role::Controlling, 1), cfg(Role::Controlled, 2), NetConfig::default());
    assert!(p.run_until(Duration::from_secs(10), Pair::both_connected));
    assert_eq!(p.a.agent.state(), State::Connected);
    assert_eq!(p.b.agent.state(), State::Connected);
    let pa = p.a.agent.path(Component::RTP).unwrap();
    let pb = p.b.agent.path(Component::RTP).unwrap();
    assert_eq!((pa.local, pa.remote), (addr(A), addr(B)));
    assert_eq!((pb.local, pb.remote), (addr(B), addr(A)));
    // Seeds' events: candidate, candidatesdone, activecandidate, connected.
    assert!(p.a.has(|e| matches!(e, Event::Candidate(_))));
    assert!(p.a.has(|e| *e == Event::CandidatesDone));
    let act = active(&p.a.events);
    assert_eq!(act.len(), 1);
    assert_eq!(act[0].0.port, 5000);
    assert_eq!(act[0].1.port, 7000);
    // Data over the selected pairs, recognised as data (RFC 7983).
    p.send_data(Component::RTP, b"hello from a", b"hello from b");
    p.run_for(Duration::from_millis(100));
    assert_eq!(p.b.data, vec![b"hello from a".to_vec()]);
    assert_eq!(p.a.data, vec![b"hello from b".to_vec()]);
    // Connected within a few round trips of a 20 ms network.
    let t = p.a.connected_at().unwrap().max(p.b.connected_at().unwrap()) - p.start;
    assert!(t < Duration::from_secs(2), "{t:?}");
}

#[test]
fn candidate_pair_counters_follow_checks_round_trips_and_data() {
    // 20 ms each way: every round trip measured is 40 ms.
    let mut p = simple(cfg(Role::Controlling, 1), cfg(Role::Controlled, 2), NetConfig::default());
    assert!(p.run_until(Duration::from_secs(10), Pair::both_connected));
    for _ in 0..3 {
        p.send_data(Component::RTP, b"0123456789", b"abc");
    }
    p.run_for(Duration::from_millis(100));
    let (a, b) = (p.a.agent.selected_pair(Component::RTP).unwrap(), p.b.agent.selected_pair(Component::RTP).unwrap());
    assert_eq!((a.local_kind, a.remote_kind, a.relay_protocol), (CandidateKind::Host, CandidateKind::Host, None));
    for (x, y) in [(&a, &b), (&b, &a)] {
        let c = x.counters;
        assert!(c.requests_sent >= 1 && c.responses_received >= 1, "{c:?}");
        // No loss: every check and consent request arrives.
        assert_eq!(c.requests_received, y.counters.requests_sent + y.counters.consent_requests_sent, "{c:?}");
        assert_eq!(c.responses_sent, c.requests_received);
        assert_eq!(c.current_round_trip_time, Some(Duration::from_millis(40)));
        assert_eq!(c.total_round_trip_time, Duration::from_millis(40) * c.round_trip_time_measurements as u32);
        assert_eq!(c.packets_sent, 3);
        assert_eq!((c.packets_received, c.bytes_received), (y.counters.packets_sent, y.counters.bytes_sent));
    }
    assert_eq!((a.counters.bytes_sent, b.counters.bytes_sent), (30, 9));
    // Consent requests go on every 5 s or so, and are answered.
    let before = a.counters.responses_received;
    p.run_for(Duration::from_secs(12));
    let a = p.a.agent.selected_pair(Component::RTP).unwrap();
    assert!(a.counters.consent_requests_sent >= 2, "{:?}", a.counters);
    assert!(a.counters.responses_received >= before + 2, "{:?}", a.counters);
    // STUN (first octet 0 or 1) is not counted as data.
    let path = p.a.agent.path(Component::RTP).unwrap();
    p.a.agent.count_sent(path.local, path.remote, &[0, 1, 0, 0]);
    assert_eq!(p.a.agent.selected_pair(Component::RTP).unwrap().counters.packets_sent, 3);
}

/// B's first host address (ranked above `B`), which some tests make
/// unreachable.
const B_UNREACHABLE: &str = "198.51.100.9:7000";

#[test]
fn regular_nomination_does_not_wait_for_checks_that_are_overdue() {
    // B's best candidate is unreachable (a private address behind a NAT):
    // A's checks to it are never answered. A nominates the pair that works
    // once those checks are overdue (twice its 40 ms round trip and 100 ms),
    // not after the whole 500 ms nomination delay.
    let b_addrs = [(1, addr(B_UNREACHABLE)), (1, addr(B))];
    for seed in 0..4 {
        let mut p = Pair::new(
            cfg(Role::Controlling, seed),
            &[(1, addr(A))],
            cfg(Role::Controlled, seed + 10),
            &b_addrs,
            NetConfig::default(),
        );
        p.drop_at_b = Some(|pkt, _| pkt.dst == addr(B_UNREACHABLE));
        let pairs: Vec<_> = p.a.agent.candidate_pairs().collect();
        let unreachable = pairs.iter().find(|x| x.remote == addr(B_UNREACHABLE)).unwrap();
        let reachable = pairs.iter().find(|x| x.remote == addr(B)).unwrap();
        assert!(unreachable.priority > reachable.priority, "the test needs the unreachable pair ranked first");
        assert!(p.run_until(Duration::from_secs(5), Pair::both_connected), "seed {seed}");
        let t = p.a.connected_at().unwrap() - p.start;
        // (680 ms when the whole nomination delay was waited.)
        assert!(t < Duration::from_millis(350), "seed {seed}: connected after {t:?}");
        assert_eq!(p.a.agent.path(Component::RTP).unwrap().remote, addr(B));
        assert!(p.dropped_at_b > 0);
    }
}

#[test]
fn regular_nomination_waits_for_a_better_pair_that_answers_in_time() {
    // Both of B's addresses work, over a link whose delay varies by up to
    // 30 ms a datagram: the better pair's check may be answered after the
    // other's, but not overdue, and A waits for it and nominates it.
    let b_addrs = [(1, addr(B_UNREACHABLE)), (1, addr(B))];
    for seed in 0..8 {
        let net = NetConfig { jitter: Duration::from_millis(30), seed, ..NetConfig::default() };
        let mut p =
            Pair::new(cfg(Role::Controlling, seed), &[(1, addr(A))], cfg(Role::Controlled, seed + 10), &b_addrs, net);
        assert!(p.run_until(Duration::from_secs(5), Pair::both_connected), "seed {seed}");
        assert_eq!(p.a.agent.path(Component::RTP).unwrap().remote, addr(B_UNREACHABLE), "seed {seed}");
    }
}

#[test]
fn connects_with_30_percent_loss_reordering_and_nat() {
    for seed in 0..25u64 {
        let net = NetConfig {
            loss: 0.3,
            latency: Duration::from_millis(30),
            jitter: Duration::from_millis(40),
            nat: Some(Nat { inside: addr(A), public: addr("203.0.113.1:6000") }),
            seed,
        };
        let (ra, rb) =
            if seed % 2 == 0 { (Role::Controlling, Role::Controlled) } else { (Role::Controlled, Role::Controlling) };
        let mut p = simple(cfg(ra, seed * 2 + 10), cfg(rb, seed * 2 + 11), net);
        assert!(p.run_until(Duration::from_secs(60), Pair::both_connected), "seed {seed} did not connect");
        // B only ever saw A's public address: it learned it as peer-reflexive,
        // and A learned its own mapping as a local peer-reflexive candidate.
        let b_act = active(&p.b.events);
        let (_, remote) = b_act.last().unwrap();
        assert_eq!(remote.kind.kind(), CandidateKind::PeerReflexive, "seed {seed}");
        assert_eq!(remote.port, 6000);
        let a_act = active(&p.a.events);
        let (local, _) = a_act.last().unwrap();
        assert_eq!(local.kind.kind(), CandidateKind::PeerReflexive, "seed {seed}");
        assert!(p.a.agent.local_kind_is_prflx(local));
        // It is not signaled: a description taken now lists the host
        // candidate alone (the NAT's address is not ours to give).
        let signaled: Vec<_> = p.a.agent.local_candidates().map(|c| c.kind.kind()).collect();
        assert_eq!(signaled, [CandidateKind::Host], "seed {seed}");
        assert_eq!(p.b.agent.path(Component::RTP).unwrap().remote, addr("203.0.113.1:6000"));
        // The controlled side follows the controlling side's nomination.
        let (ca, cb) = (p.a.agent.path(Component::RTP).unwrap(), p.b.agent.path(Component::RTP).unwrap());
        assert_eq!(ca.remote, cb.local);
    }
}

#[test]
fn two_components_without_mux() {
    let a = AgentConfig { components: 2, ..cfg(Role::Controlling, 3) };
    let b = AgentConfig { components: 2, ..cfg(Role::Controlled, 4) };
    let mut p = Pair::new(
        a,
        &[(1, addr("10.0.0.1:5000")), (2, addr("10.0.0.1:5001"))],
        b,
        &[(1, addr("198.51.100.2:7000")), (2, addr("198.51.100.2:7001"))],
        NetConfig { loss: 0.1, seed: 9, ..NetConfig::default() },
    );
    assert!(p.run_until(Duration::from_secs(30), Pair::both_connected));
    assert_eq!(p.a.agent.path(Component::RTCP).unwrap().remote, addr("198.51.100.2:7001"));
    assert_eq!(p.b.agent.path(Component::RTP).unwrap().remote, addr("10.0.0.1:5000"));
    assert_eq!(active(&p.a.events).len(), 2);
}

#[test]
fn aggressive_nomination_is_handled_by_the_controlled_side() {
    let a = AgentConfig { nomination: Nomination::Aggressive, ..cfg(Role::Controlling, 5) };
    // Two host candidates on A, so the controlled side sees USE-CANDIDATE on
    // more than one pair and must keep the best.
    let mut p = Pair::new(
        a,
        &[(1, addr("10.0.0.1:5000")), (1, addr("10.0.0.2:5000"))],
        cfg(Role::Controlled, 6),
        &[(1, addr(B))],
        NetConfig::default(),
    );
    assert!(p.run_until(Duration::from_secs(10), Pair::both_connected));
    p.run_for(Duration::from_secs(2));
    let (pa, pb) = (p.a.agent.path(Component::RTP).unwrap(), p.b.agent.path(Component::RTP).unwrap());
    assert_eq!(pb.remote, pa.local, "both ends agree on the pair");
}

#[test]
fn role_conflict_is_repaired() {
    for (ra, rb, seed) in [(Role::Controlling, Role::Controlling, 20), (Role::Controlled, Role::Controlled, 30)] {
        let mut p = simple(cfg(ra, seed), cfg(rb, seed + 1), NetConfig { seed, ..NetConfig::default() });
        assert!(p.run_until(Duration::from_secs(20), Pair::both_connected), "{ra:?}/{rb:?}");
        let (a, b) = (p.a.agent.role(), p.b.agent.role());
        assert_ne!(a, b, "exactly one side ends up controlling");
        // The larger tiebreaker wins control (RFC 8445 7.3.1.1).
        let a_wins = p.a.agent.tiebreaker() >= p.b.agent.tiebreaker();
        assert_eq!(a == Role::Controlling, a_wins);
        assert!(p.a.agent.stats().role_conflicts + p.b.agent.stats().role_conflicts > 0);
    }
}

#[test]
fn consent_expires_30_s_after_the_last_response() {
    let mut p = simple(cfg(Role::Controlling, 40), cfg(Role::Controlled, 41), NetConfig::default());
    assert!(p.run_until(Duration::from_secs(10), Pair::both_connected));
    // Consent is kept while the network works.
    p.run_for(Duration::from_secs(120));
    assert_eq!(p.a.agent.state(), State::Connected);
    assert_eq!(p.b.agent.state(), State::Connected);
    let checks = p.a.agent.stats().consent_checks;
    // One check every 4 to 6 s over two minutes.
    assert!((20..=31).contains(&checks), "{checks} consent checks");
    // Cut the network: both sides lose consent 30 s after their last response.
    p.blackhole = true;
    let cut = p.now;
    assert!(p.run_until(Duration::from_secs(60), |p| {
        p.a.agent.state() == State::Disconnected && p.b.agent.state() == State::Disconnected
    }));
    for node in [&p.a, &p.b] {
        let (t, _) = node.events.iter().find(|(_, e)| *e == Event::Disconnected).unwrap();
        let after = *t - cut;
        assert!(after >= Duration::from_secs(24) && after <= Duration::from_secs(30), "{after:?}");
        assert_eq!(node.agent.path(Component::RTP), None, "application data must stop");
    }
}

#[test]
fn keepalives_when_nothing_else_is_sent() {
    let timing = Timing { consent_interval: Duration::from_secs(20), ..Timing::default() };
    let a = AgentConfig { timing, ..cfg(Role::Controlling, 50) };
    let mut p = simple(a, cfg(Role::Controlled, 51), NetConfig::default());
    assert!(p.run_until(Duration::from_secs(10), Pair::both_connected));
    p.run_for(Duration::from_secs(100));
    assert!(p.a.agent.stats().keepalives >= 1);
    assert_eq!(p.a.agent.state(), State::Connected);
    // B keeps its 5 s consent checks, so never needs a keepalive.
    assert_eq!(p.b.agent.stats().keepalives, 0);
}

#[test]
fn fails_when_nothing_is_reachable() {
    let mut p = simple(fast(Role::Controlling, 60), fast(Role::Controlled, 61), NetConfig::default());
    p.blackhole = true;
    assert!(p.run_until(Duration::from_secs(60), |p| p.a.agent.state() == State::Failed));
    assert!(p.a.has(|e| *e == Event::Failed));
    assert!(!p.a.has(|e| *e == Event::Connected));
}

#[test]
fn server_reflexive_gathering_through_a_nat() {
    let a = AgentConfig { stun_servers: vec![addr("192.0.2.100:3478")], ..cfg(Role::Controlling, 70) };
    let net =
        NetConfig { nat: Some(Nat { inside: addr(A), public: addr("203.0.113.1:6000") }), ..NetConfig::default() };
    let mut p = sim::Pair::new(a, &[(1, addr(A))], cfg(Role::Controlled, 71), &[(1, addr(B))], net);
    p.stun = Some(sim::StunServer { addr: addr("192.0.2.100:3478"), requests: 0 });
    assert!(p.run_until(Duration::from_secs(10), |p| p.a.has(|e| *e == Event::CandidatesDone)));
    let srflx: Vec<_> =
        p.a.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Candidate(c) if c.kind.kind() == CandidateKind::ServerReflexive => Some(c.clone()),
                _ => None,
            })
            .collect();
    assert_eq!(srflx.len(), 1);
    assert_eq!(srflx[0].to_string().split(' ').nth(4), Some("203.0.113.1"));
    assert_eq!(srflx[0].port, 6000);
    assert_eq!(srflx[0].related_port, Some(5000));
    let m = p.a.agent.reflexive_mappings();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].mapped, addr("203.0.113.1:6000"));
    assert!(p.stun.as_ref().unwrap().requests >= 1);
    // CandidatesDone only after the srflx candidate.
    let done = p.a.events.iter().position(|(_, e)| *e == Event::CandidatesDone).unwrap();
    let cand =
        p.a.events
            .iter()
            .position(|(_, e)| matches!(e, Event::Candidate(c) if c.kind.kind() == CandidateKind::ServerReflexive))
            .unwrap();
    assert!(cand < done);
    assert!(p.run_until(Duration::from_secs(10), Pair::both_connected));
}

#[test]
fn gathering_times_out_without_a_server() {
    let timing = Timing { gather_timeout: Duration::from_secs(3), ..Timing::default() };
    let a = AgentConfig { stun_servers: vec![addr("192.0.2.100:3478")], timing, ..cfg(Role::Controlling, 80) };
    let mut p = simple(a, cfg(Role::Controlled, 81), NetConfig::default());
    assert!(p.run_until(Duration::from_secs(10), |p| p.a.has(|e| *e == Event::CandidatesDone)));
    let (t, _) = p.a.events.iter().find(|(_, e)| *e == Event::CandidatesDone).unwrap();
    assert_eq!(*t - p.start, Duration::from_secs(3));
}

// ----- hostile input -----

fn lone_agent(seed: u64) -> (Agent, Credentials, Instant) {
    let now = Instant::now();
    let mut a = Agent::new(cfg(Role::Controlled, seed)).unwrap();
    let peer = Credentials { ufrag: "peer".into(), pwd: "peerpasswordpeerpassword".into() };
    a.set_remote_credentials(now, peer.clone()).unwrap();
    a.add_host_candidate(now, Component::RTP, addr("127.0.0.1:5000")).unwrap();
    a.end_of_local_candidates(now);
    (a, peer, now)
}

/// A check as the peer would send it, built with stun-rs directly.
fn check(username: &str, pwd: &str, tid: [u8; 12], use_candidate: bool) -> Vec<u8> {
    use stun_rs::attributes::ice::{IceControlling, Priority, UseCandidate};
    use stun_rs::attributes::stun::{Fingerprint, MessageIntegrity, UserName};
    let mut b = stun_rs::StunMessageBuilder::new(stun_rs::methods::BINDING, stun_rs::MessageClass::Request)
        .with_transaction_id(stun_rs::TransactionId::from(tid))
        .with_attribute(UserName::new(username).unwrap())
        .with_attribute(Priority::new(1_845_501_695))
        .with_attribute(IceControlling::new(u64::MAX));
    if use_candidate {
        b = b.with_attribute(UseCandidate::default());
    }
    let msg = b
        .with_attribute(MessageIntegrity::new(stun_rs::HMACKey::new_short_term(pwd).unwrap()))
        .with_attribute(Fingerprint::default())
        .build();
    let mut buf = [0u8; 512];
    let n = stun_rs::MessageEncoderBuilder::default().build().encode(&mut buf, &msg).unwrap();
    buf[..n].to_vec()
}

fn drain(a: &mut Agent) -> (usize, Vec<Event>) {
    let mut n = 0;
    while a.poll_transmit().is_some() {
        n += 1;
    }
    (n, std::iter::from_fn(|| a.poll_event()).collect())
}

#[test]
fn hostile_input_never_panics_nor_selects_a_pair() {
    use rand::{Rng, SeedableRng};
    let (mut a, peer, now) = lone_agent(90);
    let local = addr("127.0.0.1:5000");
    let me = a.local_credentials().clone();
    let evil = addr("127.0.0.1:6666");
    let mut rng = rand::rngs::StdRng::seed_from_u64(90);
    let mut sent = 0u64;
    // Random bytes, many starting like STUN.
    for i in 0..2000 {
        let len = rng.random_range(0..200);
        let mut d: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if i % 2 == 0 && len > 8 {
            d[0] &= 0x01;
            d[4..8].copy_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
        }
        let r = a.handle_receive(now, local, evil, &d);
        assert!(matches!(r, Receive::Dropped(_)), "{r:?}");
        sent += 1;
    }
    // Wrong password, wrong username, truncations of a good check.
    let good_user = format!("{}:{}", me.ufrag, peer.ufrag);
    let wrong_pwd = check(&good_user, "not-the-password-at-all", [1; 12], true);
    assert_eq!(a.handle_receive(now, local, evil, &wrong_pwd), Receive::Dropped(DropReason::Unauthenticated));
    let wrong_user = check(&format!("{}:{}", me.ufrag, "nope"), &me.pwd, [2; 12], true);
    assert_eq!(a.handle_receive(now, local, evil, &wrong_user), Receive::Dropped(DropReason::BadUsername));
    let good = check(&good_user, &me.pwd, [3; 12], true);
    for cut in 0..good.len() {
        let r = a.handle_receive(now, local, evil, &good[..cut]);
        assert!(matches!(r, Receive::Dropped(_)), "cut {cut}: {r:?}");
    }
    sent += 2 + good.len() as u64;
    // Responses to transactions we never started.
    let mut resp = wrong_pwd.clone();
    resp[1] = 0x01; // success class
    resp[0] = 0x01;
    assert_eq!(a.handle_receive(now, local, evil, &resp), Receive::Dropped(DropReason::UnknownTransaction));
    sent += 1;
    assert_eq!(a.stats().dropped_total(), sent);
    let (_, events) = drain(&mut a);
    assert!(!events.iter().any(|e| matches!(e, Event::Connected | Event::ActiveCandidate { .. })));
    assert_eq!(a.path(Component::RTP), None);
    assert_eq!(a.remote_candidate_count(), 0, "nothing learned from unauthenticated input");
    // Forged responses to our real transactions: the checks the agent is now
    // sending to a signaled candidate get answers signed with the wrong key.
    a.add_remote_candidate(
        now,
        &rtc_candidate::Candidate::parse("candidate:1 1 udp 2130706431 127.0.0.1 7000 typ host").unwrap(),
    )
    .unwrap();
    let mut forged = 0;
    for step in 0..50u64 {
        let t = now + Duration::from_millis(50 * step);
        a.handle_timeout(t);
        while let Some(tx) = a.poll_transmit() {
            let mut f = check(&good_user, "not-the-password-at-all", [0; 12], false);
            f[0] = 0x01;
            f[1] = 0x01;
            f[8..20].copy_from_slice(&tx.contents[8..20]);
            assert!(matches!(a.handle_receive(t, local, tx.destination, &f), Receive::Dropped(_)));
            forged += 1;
        }
    }
    assert!(forged > 0);
    assert_eq!(a.path(Component::RTP), None);
    assert!(
        !std::iter::from_fn(|| a.poll_event()).any(|e| matches!(e, Event::Connected | Event::ActiveCandidate { .. }))
    );
}

#[test]
fn memory_stays_bounded_under_a_flood_of_authenticated_checks() {
    let limits = Limits { peer_reflexive: 4, pairs: 8, transactions: 6, ..Limits::default() };
    let now = Instant::now();
    let mut a = Agent::new(AgentConfig { limits, ..cfg(Role::Controlled, 100) }).unwrap();
    let peer = Credentials { ufrag: "peer".into(), pwd: "peerpasswordpeerpassword".into() };
    a.set_remote_credentials(now, peer.clone()).unwrap();
    let local = addr("127.0.0.1:5000");
    a.add_host_candidate(now, Component::RTP, local).unwrap();
    let me = a.local_credentials().clone();
    let user = format!("{}:{}", me.ufrag, peer.ufrag);
    for i in 0..500u16 {
        let from = SocketAddr::new("127.0.0.1".parse().unwrap(), 10_000 + i);
        let mut tid = [7u8; 12];
        tid[..2].copy_from_slice(&i.to_be_bytes());
        assert_eq!(
            a.handle_receive(now + Duration::from_millis(u64::from(i)), local, from, &check(&user, &me.pwd, tid, true)),
            Receive::Stun
        );
        let _ = drain(&mut a);
    }
    assert_eq!(a.remote_peer_reflexive_count(), 4);
    assert!(a.pair_count() <= 8);
    assert!(a.transaction_count() <= 6);
    assert!(a.stats().limit_hits > 0);
}

#[test]
fn requests_are_answered_only_when_authenticated() {
    let (mut a, peer, now) = lone_agent(110);
    let local = addr("127.0.0.1:5000");
    let me = a.local_credentials().clone();
    let from = addr("127.0.0.1:7000");
    let good = check(&format!("{}:{}", me.ufrag, peer.ufrag), &me.pwd, [9; 12], false);
    let _ = drain(&mut a);
    assert_eq!(a.handle_receive(now, local, from, &good), Receive::Stun);
    let resp = a.poll_transmit().expect("a response");
    assert_eq!((resp.source, resp.destination), (local, from));
    assert_eq!(&resp.contents[8..20], &[9; 12]);
    assert_eq!(&resp.contents[..2], &[0x01, 0x01], "Binding success response");
    // Its XOR-MAPPED-ADDRESS is the source we saw, and it is signed with our pwd.
    let ctx = stun_rs::DecoderContextBuilder::default()
        .with_key(stun_rs::HMACKey::new_short_term(&me.pwd).unwrap())
        .with_validation()
        .build();
    let (msg, _) = stun_rs::MessageDecoderBuilder::default().with_context(ctx).build().decode(&resp.contents).unwrap();
    let x = msg.get::<stun_rs::attributes::stun::XorMappedAddress>().unwrap().as_xor_mapped_address().unwrap();
    assert_eq!(*x.socket_address(), from);
    // The source became a peer-reflexive remote candidate, checked at once.
    assert_eq!(a.remote_peer_reflexive_count(), 1);
    let trig = a.poll_transmit().expect("a triggered check");
    assert_eq!(trig.destination, from);
    // Data from a known path is data, from elsewhere dropped.
    assert!(matches!(a.handle_receive(now, local, from, b"\x80rtp"), Receive::Data { .. }));
    // A keepalive indication: over the path only (from anywhere else it
    // is dropped, and wakes nothing).
    assert_eq!(a.handle_receive(now, local, from, &indication([5; 12])), Receive::Stun);
    let stranger = a.handle_receive(now, local, addr("127.0.0.1:1"), &indication([6; 12]));
    assert!(matches!(stranger, Receive::Dropped(_)), "{stranger:?}");
    assert_eq!(
        a.handle_receive(now, local, addr("127.0.0.1:1"), b"\x80rtp"),
        Receive::Dropped(DropReason::UnknownPath)
    );
}

/// A success response from the peer, signed with the peer's password.
fn success(tid: &[u8], mapped: SocketAddr, pwd: &str) -> Vec<u8> {
    use stun_rs::attributes::stun::{Fingerprint, MessageIntegrity, XorMappedAddress};
    let mut id = [0u8; 12];
    id.copy_from_slice(tid);
    let msg = stun_rs::StunMessageBuilder::new(stun_rs::methods::BINDING, stun_rs::MessageClass::SuccessResponse)
        .with_transaction_id(stun_rs::TransactionId::from(id))
        .with_attribute(XorMappedAddress::from(mapped))
        .with_attribute(MessageIntegrity::new(stun_rs::HMACKey::new_short_term(pwd).unwrap()))
        .with_attribute(Fingerprint::default())
        .build();
    let mut buf = [0u8; 512];
    let n = stun_rs::MessageEncoderBuilder::default().build().encode(&mut buf, &msg).unwrap();
    buf[..n].to_vec()
}

#[test]
fn checks_retransmit_with_rto_back_off_then_fail() {
    // RFC 8489 6.2.1 with this agent's defaults: RTO 500 ms, one RTO after
    // each of the first four transmissions of a check, then doubling, capped
    // at 3.2 s, 7 transmissions, then the transaction (and the pair) fails.
    let (mut a, _, t0) = lone_agent(120);
    let _ = drain(&mut a);
    let c = rtc_candidate::Candidate::parse("candidate:1 1 udp 2130706431 127.0.0.1 7000 typ host").unwrap();
    a.add_remote_candidate(t0, &c).unwrap();
    a.end_of_remote_candidates(t0);
    let mut sends = Vec::new();
    while let Some(tx) = a.poll_transmit() {
        sends.push((0, tx.contents[8..20].to_vec()));
    }
    let mut now = t0;
    while let Some(t) = a.poll_timeout() {
        if t > t0 + Duration::from_secs(60) {
            break;
        }
        now = t;
        a.handle_timeout(now);
        while let Some(tx) = a.poll_transmit() {
            sends.push(((now - t0).as_millis(), tx.contents[8..20].to_vec()));
        }
        if a.state() == State::Failed {
            break;
        }
    }
    let at: Vec<u128> = sends.iter().map(|s| s.0).collect();
    assert_eq!(at, vec![0, 500, 1000, 1500, 2000, 3000, 5000]);
    assert!(sends.iter().all(|s| s.1 == sends[0].1), "retransmissions reuse the transaction id");
    assert_eq!((now - t0).as_millis(), 8200);
    assert_eq!(a.state(), State::Failed);
    assert_eq!(a.candidate_pairs().next().unwrap().state, rtc_ice::PairState::Failed);
}

#[test]
fn frozen_pairs_thaw_when_their_foundation_succeeds() {
    // Two components on one IP: both pairs share a foundation, so only the
    // component-1 pair starts Waiting (RFC 8445 6.1.2.6).
    let now = Instant::now();
    let mut a = Agent::new(AgentConfig { components: 2, ..cfg(Role::Controlling, 130) }).unwrap();
    let peer = Credentials { ufrag: "peer".into(), pwd: "peerpasswordpeerpassword".into() };
    a.add_host_candidate(now, Component::RTP, addr("127.0.0.1:5000")).unwrap();
    a.add_host_candidate(now, Component::RTCP, addr("127.0.0.1:5001")).unwrap();
    for line in
        ["candidate:9 1 udp 2130706431 127.0.0.1 7000 typ host", "candidate:9 2 udp 2130706430 127.0.0.1 7001 typ host"]
    {
        a.add_remote_candidate(now, &rtc_candidate::Candidate::parse(line).unwrap()).unwrap();
    }
    let states = |a: &Agent| a.candidate_pairs().map(|p| (p.component, p.state)).collect::<Vec<_>>();
    assert_eq!(states(&a), vec![(1, rtc_ice::PairState::Waiting), (2, rtc_ice::PairState::Frozen)]);
    a.set_remote_credentials(now, peer.clone()).unwrap();
    let check = a.poll_transmit().unwrap();
    assert_eq!(check.destination, addr("127.0.0.1:7000"));
    assert!(a.poll_transmit().is_none(), "one check per Ta");
    let r = a.handle_receive(
        now,
        check.source,
        check.destination,
        &success(&check.contents[8..20], check.source, &peer.pwd),
    );
    assert_eq!(r, Receive::Stun);
    assert_eq!(states(&a), vec![(1, rtc_ice::PairState::Succeeded), (2, rtc_ice::PairState::Waiting)]);
}

#[test]
fn trickled_candidates_arrive_late() {
    // A learns B only from B's checks (peer-reflexive), connects, and B's
    // host candidate trickles in 2 s later and replaces the learned one.
    let mut p = Pair::without_signaling(
        cfg(Role::Controlling, 140),
        &[(1, addr(A))],
        cfg(Role::Controlled, 141),
        &[(1, addr(B))],
        NetConfig::default(),
    );
    let a_cands: Vec<_> =
        p.a.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Candidate(c) => Some(c.clone()),
                _ => None,
            })
            .collect();
    let b_cands: Vec<_> =
        p.b.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Candidate(c) => Some(c.clone()),
                _ => None,
            })
            .collect();
    let now = p.now;
    for c in &a_cands {
        p.b.agent.add_remote_candidate(now, c).unwrap();
    }
    assert!(p.run_until(Duration::from_secs(10), Pair::both_connected));
    assert_eq!(p.a.agent.remote_peer_reflexive_count(), 1);
    let (_, remote) = active(&p.a.events).pop().unwrap();
    assert_eq!(remote.kind.kind(), CandidateKind::PeerReflexive);
    p.run_for(Duration::from_secs(2));
    let now = p.now;
    for c in &b_cands {
        p.a.agent.add_remote_candidate(now, c).unwrap();
    }
    p.a.agent.end_of_remote_candidates(now);
    p.run_for(Duration::from_secs(10));
    assert_eq!(p.a.agent.remote_peer_reflexive_count(), 0, "the signaled candidate replaced the learned one");
    assert_eq!(p.a.agent.remote_candidate_count(), 1);
    assert_eq!(p.a.agent.state(), State::Connected);
    assert_eq!(p.a.agent.path(Component::RTP).unwrap().remote, addr(B));
}

fn connected_events(node: &sim::Node) -> usize {
    node.events.iter().filter(|(_, e)| *e == Event::Connected).count()
}

/// Both sides restart and trade their new credentials (candidates follow by
/// signaling, as the agents re-announce them).
fn restart_both(p: &mut Pair) -> (Credentials, Credentials) {
    let now = p.now;
    p.a.agent.restart(now, None).unwrap();
    p.b.agent.restart(now, None).unwrap();
    let (ca, cb) = (p.a.agent.local_credentials().clone(), p.b.agent.local_credentials().clone());
    p.a.agent.set_remote_credentials(now, cb.clone()).unwrap();
    p.b.agent.set_remote_credentials(now, ca.clone()).unwrap();
    (ca, cb)
}

/// RFC 8445 section 9: after a restart, application data keeps the old
/// path until the new checks select a pair; the old credentials stop
/// working; the candidates are announced again.
#[test]
fn ice_restart_keeps_the_old_path_until_a_new_pair_is_selected() {
    let mut p = simple(cfg(Role::Controlling, 60), cfg(Role::Controlled, 61), NetConfig::default());
    assert!(p.run_until(Duration::from_secs(10), Pair::both_connected));
    let (old_a, old_b) = (p.a.agent.local_credentials().clone(), p.b.agent.local_credentials().clone());
    let old_path = p.a.agent.path(Component::RTP).unwrap();
    let candidates_before = p.a.events.iter().filter(|(_, e)| matches!(e, Event::Candidate(_))).count();
    let (new_a, new_b) = restart_both(&mut p);
    assert_ne!(new_a, old_a);
    assert_ne!(new_b, old_b);
    assert_eq!(p.a.agent.state(), State::Checking);
    assert_eq!(p.a.agent.pair_count(), 0, "the old check list is gone");
    // Media continues over the old path, both ways, while checks run.
    assert_eq!(p.a.agent.path(Component::RTP), Some(old_path));
    p.send_data(Component::RTP, b"during a", b"during b");
    assert!(p.run_until(Duration::from_secs(10), |p| connected_events(&p.a) == 2 && connected_events(&p.b) == 2));
    assert_eq!(p.b.data, vec![b"during a".to_vec()]);
    assert_eq!(p.a.data, vec![b"during b".to_vec()]);
    assert_eq!(p.a.agent.state(), State::Connected);
    assert_eq!(p.a.agent.path(Component::RTP), Some(old_path), "same candidates, same pair");
    let candidates_after = p.a.events.iter().filter(|(_, e)| matches!(e, Event::Candidate(_))).count();
    assert_eq!(candidates_after, 2 * candidates_before, "candidates announced again");
    // A check signed with the old password is dropped, unanswered.
    let (local, from) = (addr(A), addr(B));
    let stale = check(&format!("{}:{}", old_a.ufrag, old_b.ufrag), &old_a.pwd, [7; 12], false);
    let _ = drain(&mut p.a.agent);
    assert!(matches!(p.a.agent.handle_receive(p.now, local, from, &stale), Receive::Dropped(_)));
    assert!(p.a.agent.poll_transmit().is_none());
    let fresh = check(&format!("{}:{}", new_a.ufrag, new_b.ufrag), &new_a.pwd, [8; 12], false);
    assert_eq!(p.a.agent.handle_receive(p.now, local, from, &fresh), Receive::Stun);
    assert!(p.a.agent.poll_transmit().is_some(), "answered with the new credentials");
}

/// Consent lost, then the network comes back: a restart connects again.
/// Without it the old path stays closed; with it and no network, the old
/// path is not offered either (its consent is gone).
#[test]
fn ice_restart_recovers_after_consent_is_lost() {
    let mut p = simple(cfg(Role::Controlling, 62), cfg(Role::Controlled, 63), NetConfig::default());
    assert!(p.run_until(Duration::from_secs(10), Pair::both_connected));
    p.blackhole = true;
    assert!(p.run_until(Duration::from_secs(60), |p| {
        p.a.agent.state() == State::Disconnected && p.b.agent.state() == State::Disconnected
    }));
    p.blackhole = false;
    p.run_for(Duration::from_secs(5));
    assert_eq!(p.a.agent.state(), State::Disconnected, "consent is not regained by itself");
    restart_both(&mut p);
    assert_eq!(p.a.agent.path(Component::RTP), None, "no path with consent to fall back on");
    assert!(p.run_until(Duration::from_secs(10), |p| connected_events(&p.a) == 2 && connected_events(&p.b) == 2));
    p.send_data(Component::RTP, b"back a", b"back b");
    p.run_for(Duration::from_millis(100));
    assert_eq!(p.b.data, vec![b"back a".to_vec()]);
    assert_eq!(p.a.data, vec![b"back b".to_vec()]);
}

/// During a restart that never completes, the old path is given up when its
/// consent would have expired (30 s after the last response).
#[test]
fn ice_restart_old_path_ends_with_its_consent() {
    let mut p = simple(cfg(Role::Controlling, 64), cfg(Role::Controlled, 65), NetConfig::default());
    assert!(p.run_until(Duration::from_secs(10), Pair::both_connected));
    let now = p.now;
    // Only A restarts and B never learns A's new credentials: no new pair.
    p.signaling = false;
    p.a.agent.restart(now, None).unwrap();
    assert!(p.a.agent.path(Component::RTP).is_some());
    // A has no check list now; data over the old path is still taken.
    p.send_data(Component::RTP, b"old path a", b"old path b");
    p.run_for(Duration::from_millis(100));
    assert_eq!(p.a.data, vec![b"old path b".to_vec()]);
    assert_eq!(p.b.data, vec![b"old path a".to_vec()]);
    p.run_for(Duration::from_secs(20));
    assert!(p.a.agent.path(Component::RTP).is_some(), "within 30 s of the last consent response");
    let before = p.a.events.iter().filter(|(_, e)| *e == Event::Disconnected).count();
    p.run_for(Duration::from_secs(15));
    assert_eq!(p.a.agent.path(Component::RTP), None);
    assert_eq!(p.a.agent.state(), State::Checking);
    let after = p.a.events.iter().filter(|(_, e)| *e == Event::Disconnected).count();
    assert_eq!(after, before + 1, "application data must stop: Disconnected fires once");
}

// ----- routing promises: accepts, data_paths, paths_generation -----

/// A Binding indication (a keepalive), built with stun-rs directly.
fn indication(tid: [u8; 12]) -> Vec<u8> {
    use stun_rs::attributes::stun::Fingerprint;
    let msg = stun_rs::StunMessageBuilder::new(stun_rs::methods::BINDING, stun_rs::MessageClass::Indication)
        .with_transaction_id(stun_rs::TransactionId::from(tid))
        .with_attribute(Fingerprint::default())
        .build();
    let mut buf = [0u8; 64];
    let n = stun_rs::MessageEncoderBuilder::default().build().encode(&mut buf, &msg).unwrap();
    buf[..n].to_vec()
}

#[test]
fn accepts_is_a_routing_test_without_side_effects() {
    let (mut a, peer, now) = lone_agent(120);
    let local = addr("127.0.0.1:5000");
    let me = a.local_credentials().clone();
    let from = addr("127.0.0.1:7000");
    let generation = a.paths_generation();
    assert_eq!(a.data_paths().count(), 0);
    let cand = rtc_candidate::Candidate::parse("candidate:1 1 udp 2130706431 127.0.0.1 7000 typ host").unwrap();
    a.add_remote_candidate(now, &cand).unwrap();
    assert_eq!(a.data_paths().count(), 0, "a pair no check went through carries no data");
    let request = a.poll_transmit().expect("a check");
    let _ = drain(&mut a);
    let stats = format!("{:?}", a.stats());
    let user = format!("{}:{}", me.ufrag, peer.ufrag);
    // Requests: USERNAME ours and the peer's, to a host base.
    assert!(a.accepts(local, from, &check(&user, &me.pwd, [1; 12], false)));
    assert!(a.accepts(local, addr("192.0.2.9:1"), &check(&user, &me.pwd, [1; 12], false)));
    // Routing reads no key: a wrong password is still this agent's to drop.
    assert!(a.accepts(local, from, &check(&user, "wrongpasswordwrongpassword", [1; 12], false)));
    assert!(!a.accepts(local, from, &check(&format!("{}:other", me.ufrag), &me.pwd, [1; 12], false)));
    assert!(!a.accepts(local, from, &check(&format!("other:{}", peer.ufrag), &me.pwd, [1; 12], false)));
    assert!(!a.accepts(addr("127.0.0.1:5001"), from, &check(&user, &me.pwd, [1; 12], false)));
    // Responses: by our outstanding transactions.
    let tid = &request.contents[8..20];
    assert!(a.accepts(local, from, &success(tid, local, &peer.pwd)));
    assert!(!a.accepts(local, from, &success(&[3; 12], local, &peer.pwd)));
    // Indications and data: over a path a check went through; none yet
    // (a signaled candidate alone could be anyone's address).
    assert!(!a.accepts(local, from, &indication([4; 12])));
    assert!(!a.accepts(local, from, b"\x80rtp"));
    assert!(!a.accepts(local, from, &[0, 1, 0, 0]), "STUN's first byte, no STUN header");
    assert_eq!(format!("{:?}", a.stats()), stats, "accepts changes nothing");
    assert!(a.poll_transmit().is_none() && a.poll_event().is_none());
    assert!(matches!(a.handle_receive(now, local, from, b"\x80rtp"), Receive::Dropped(_)));
    // The peer's check comes over it: from then on it carries data.
    assert_eq!(a.handle_receive(now, local, from, &check(&user, &me.pwd, [1; 12], false)), Receive::Stun);
    assert_ne!(a.paths_generation(), generation, "a path opened");
    assert_eq!(a.data_paths().collect::<Vec<_>>(), vec![(local, from)]);
    assert!(a.accepts(local, from, &indication([4; 12])));
    assert!(!a.accepts(local, addr("127.0.0.1:1"), &indication([4; 12])));
    assert!(a.accepts(local, from, b"\x80rtp"));
    assert!(a.accepts(local, from, b""));
    assert!(!a.accepts(local, addr("127.0.0.1:1"), b"\x80rtp"));
    assert!(matches!(a.handle_receive(now, local, from, b"\x80rtp"), Receive::Data { .. }));
    assert_eq!(a.handle_receive(now, local, from, &success(tid, local, &peer.pwd)), Receive::Stun);
    assert!(!a.accepts(local, from, &success(tid, local, &peer.pwd)), "used once");
    // A closed agent takes nothing and has no paths.
    let generation = a.paths_generation();
    a.close();
    assert_ne!(a.paths_generation(), generation);
    assert_eq!(a.data_paths().count(), 0);
    assert!(!a.accepts(local, from, b"\x80rtp"));
    assert!(!a.accepts(local, from, &check(&user, &me.pwd, [1; 12], false)));
}

#[test]
fn accepts_any_sender_until_the_peer_is_known() {
    let now = Instant::now();
    let mut a = Agent::new(cfg(Role::Controlled, 121)).unwrap();
    let local = addr("127.0.0.1:5000");
    a.add_host_candidate(now, Component::RTP, local).unwrap();
    let me = a.local_credentials().clone();
    let from = addr("127.0.0.1:7000");
    assert!(a.accepts(local, from, &check(&format!("{}:anyone", me.ufrag), &me.pwd, [1; 12], false)));
    assert!(!a.accepts(local, from, &check(&format!("{}anyone", me.ufrag), &me.pwd, [1; 12], false)));
    let peer = Credentials { ufrag: "peer".into(), pwd: "peerpasswordpeerpassword".into() };
    a.set_remote_credentials(now, peer).unwrap();
    assert!(!a.accepts(local, from, &check(&format!("{}:anyone", me.ufrag), &me.pwd, [1; 12], false)));
    assert!(a.accepts(local, from, &check(&format!("{}:peer", me.ufrag), &me.pwd, [1; 12], false)));
}

/// During an ICE restart the old credentials are refused and data still
/// routes over the old path; the generation moves at the restart and when
/// the new pairs come.
#[test]
fn accepts_and_data_paths_across_an_ice_restart() {
    let mut p = simple(cfg(Role::Controlling, 66), cfg(Role::Controlled, 67), NetConfig::default());
    assert!(p.run_until(Duration::from_secs(10), Pair::both_connected));
    let (local, from) = (addr(A), addr(B));
    let (old_a, old_b) = (p.a.agent.local_credentials().clone(), p.b.agent.local_credentials().clone());
    let g0 = p.a.agent.paths_generation();
    assert_eq!(p.a.agent.data_paths().collect::<Vec<_>>(), vec![(local, from)]);
    let (new_a, new_b) = restart_both(&mut p);
    let g1 = p.a.agent.paths_generation();
    assert_ne!(g0, g1);
    assert_eq!(p.a.agent.pair_count(), 0);
    assert_eq!(p.a.agent.data_paths().collect::<Vec<_>>(), vec![(local, from)], "the old path");
    let stale = check(&format!("{}:{}", old_a.ufrag, old_b.ufrag), &old_a.pwd, [7; 12], false);
    assert!(!p.a.agent.accepts(local, from, &stale));
    let fresh = check(&format!("{}:{}", new_a.ufrag, new_b.ufrag), &new_a.pwd, [8; 12], false);
    assert!(p.a.agent.accepts(local, from, &fresh));
    assert!(p.a.agent.accepts(local, from, b"\x80rtp"));
    assert!(p.run_until(Duration::from_secs(10), |p| connected_events(&p.a) == 2));
    assert_ne!(p.a.agent.paths_generation(), g1);
    assert_eq!(p.a.agent.data_paths().collect::<Vec<_>>(), vec![(local, from)], "once, as a pair");
}

// ----- role switches (RFC 8445 7.2.5.1, 7.3.1.1) and Agent::set_role -----

/// The role attribute of a STUN Binding request (ICE-CONTROLLING or
/// ICE-CONTROLLED, RFC 8445 section 7.1.1) and the tiebreaker in it; `None`
/// for anything that is not a request carrying one.
fn request_role(data: &[u8]) -> Option<(Role, u64)> {
    use stun_rs::attributes::ice::{IceControlled, IceControlling};
    let (msg, _) = stun_rs::MessageDecoderBuilder::default().build().decode(data).ok()?;
    if msg.class() != stun_rs::MessageClass::Request {
        return None;
    }
    if let Some(a) = msg.get::<IceControlling>() {
        return Some((Role::Controlling, a.as_ice_controlling().ok()?.as_u64()));
    }
    let a = msg.get::<IceControlled>()?;
    Some((Role::Controlled, a.as_ice_controlled().ok()?.as_u64()))
}

/// A 487 (Role Conflict) error response from the peer, signed with the
/// peer's password (RFC 8445 section 7.3.1.1).
fn role_conflict(tid: &[u8], pwd: &str) -> Vec<u8> {
    use stun_rs::attributes::stun::{ErrorCode, Fingerprint, MessageIntegrity};
    let mut id = [0u8; 12];
    id.copy_from_slice(tid);
    let msg = stun_rs::StunMessageBuilder::new(stun_rs::methods::BINDING, stun_rs::MessageClass::ErrorResponse)
        .with_transaction_id(stun_rs::TransactionId::from(id))
        .with_attribute(ErrorCode::from(stun_rs::ErrorCode::new(487, "Role Conflict").unwrap()))
        .with_attribute(MessageIntegrity::new(stun_rs::HMACKey::new_short_term(pwd).unwrap()))
        .with_attribute(Fingerprint::default())
        .build();
    let mut buf = [0u8; 512];
    let n = stun_rs::MessageEncoderBuilder::default().build().encode(&mut buf, &msg).unwrap();
    buf[..n].to_vec()
}

/// One request an agent sent: when (ms after the start), where to, its
/// transaction id and its role attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sent {
    at_ms: u128,
    to: SocketAddr,
    tid: Vec<u8>,
    role: Role,
    tiebreaker: u64,
}

/// Drains the agent's transmits, keeping the requests that carry a role.
fn requests(a: &mut Agent, at: Instant, t0: Instant) -> Vec<Sent> {
    std::iter::from_fn(|| a.poll_transmit())
        .filter_map(|t| {
            let (role, tiebreaker) = request_role(&t.contents)?;
            Some(Sent {
                at_ms: (at - t0).as_millis(),
                to: t.destination,
                tid: t.contents[8..20].to_vec(),
                role,
                tiebreaker,
            })
        })
        .collect()
}

/// Runs the agent's timers (no network) until `end`, collecting requests.
fn run_alone(a: &mut Agent, t0: Instant, end: Instant) -> Vec<Sent> {
    let mut out = Vec::new();
    while let Some(t) = a.poll_timeout() {
        if t > end {
            break;
        }
        a.handle_timeout(t);
        out.extend(requests(a, t, t0));
    }
    out
}

/// A controlling agent checking two remote candidates, both checks in
/// flight: (agent, peer credentials, start, request to 7000, request to 7001).
fn two_checks_in_flight(seed: u64) -> (Agent, Credentials, Instant, Sent, Sent) {
    let t0 = Instant::now();
    let mut a = Agent::new(cfg(Role::Controlling, seed)).unwrap();
    let peer = Credentials { ufrag: "peer".into(), pwd: "peerpasswordpeerpassword".into() };
    a.set_remote_credentials(t0, peer.clone()).unwrap();
    a.add_host_candidate(t0, Component::RTP, addr("127.0.0.1:5000")).unwrap();
    a.end_of_local_candidates(t0);
    let _ = drain(&mut a);
    // Different foundations, so neither pair is frozen behind the other.
    for line in
        ["candidate:1 1 udp 2130706431 127.0.0.1 7000 typ host", "candidate:2 1 udp 2130706175 127.0.0.1 7001 typ host"]
    {
        a.add_remote_candidate(t0, &rtc_candidate::Candidate::parse(line).unwrap()).unwrap();
    }
    let mut sent = requests(&mut a, t0, t0);
    sent.extend(run_alone(&mut a, t0, t0 + Duration::from_millis(60)));
    assert_eq!(sent.len(), 2, "{sent:?}");
    let (first, second) = (sent[0].clone(), sent[1].clone());
    assert_eq!((first.to, second.to), (addr("127.0.0.1:7000"), addr("127.0.0.1:7001")));
    assert!(sent.iter().all(|s| s.role == Role::Controlling && s.tiebreaker == a.tiebreaker()));
    (a, peer, t0, first, second)
}

/// RFC 8445 7.2.5.1: on a 487 the agent switches role, and the pair that
/// got it is checked again as a new transaction with the new role. Checks
/// of other pairs that were in flight are not retransmitted with the old
/// role either: they are redone as new transactions too (as 7.3.1.4 redoes
/// an In-Progress pair).
#[test]
fn after_a_487_in_flight_checks_are_new_transactions_with_the_new_role() {
    let (mut a, peer, t0, first, second) = two_checks_in_flight(150);
    let local = addr("127.0.0.1:5000");
    let t1 = t0 + Duration::from_millis(60);
    assert_eq!(a.handle_receive(t1, local, first.to, &role_conflict(&first.tid, &peer.pwd)), Receive::Stun);
    assert_eq!(a.role(), Role::Controlled, "487 to an ICE-CONTROLLING check: switch to controlled");
    assert_eq!(a.stats().role_conflicts, 1);
    let mut after = requests(&mut a, t1, t0);
    after.extend(run_alone(&mut a, t0, t0 + Duration::from_millis(400)));
    // Both pairs are checked again at once (paced by Ta), long before the
    // 500 ms retransmission the old transactions would have made.
    let redo = |after: &[Sent], to: SocketAddr| after.iter().find(|s| s.to == to).cloned().unwrap();
    let (again_first, again_second) = (redo(&after, first.to), redo(&after, second.to));
    assert!(again_first.at_ms <= 200 && again_second.at_ms <= 200, "{after:?}");
    assert_ne!(again_first.tid, again_second.tid);
    // The new transaction is the one that counts: its success makes the pair valid.
    let t2 = t0 + Duration::from_millis(400);
    let ok = success(&again_first.tid, local, &peer.pwd);
    assert_eq!(a.handle_receive(t2, local, first.to, &ok), Receive::Stun);
    let pair = a.candidate_pairs().find(|p| p.remote == first.to).unwrap();
    assert_eq!(pair.state, rtc_ice::PairState::Succeeded);
    after.extend(requests(&mut a, t2, t0));
    after.extend(run_alone(&mut a, t0, t0 + Duration::from_secs(20)));
    // Nothing goes out with the old role, nor under an old transaction id.
    for s in &after {
        assert_eq!((s.role, s.tiebreaker), (Role::Controlled, a.tiebreaker()), "{s:?}");
        assert!(s.tid != first.tid && s.tid != second.tid, "an old transaction was retransmitted: {s:?}");
    }
    assert!(
        after.iter().any(|s| s.to == second.to && s.tid == again_second.tid && s.at_ms >= 500),
        "the new one is retransmitted"
    );
}

/// A late 487 to a transaction that was already redone changes nothing: no
/// second switch back, no extra check.
#[test]
fn a_late_487_to_a_redone_check_is_ignored() {
    let (mut a, peer, t0, first, second) = two_checks_in_flight(151);
    let local = addr("127.0.0.1:5000");
    let t1 = t0 + Duration::from_millis(60);
    assert_eq!(a.handle_receive(t1, local, first.to, &role_conflict(&first.tid, &peer.pwd)), Receive::Stun);
    let redone = run_alone(&mut a, t0, t0 + Duration::from_millis(200));
    assert_eq!(redone.len(), 2, "{redone:?}");
    // The peer's 487 to the old check of the other pair arrives late.
    let t2 = t0 + Duration::from_millis(250);
    assert_eq!(a.handle_receive(t2, local, second.to, &role_conflict(&second.tid, &peer.pwd)), Receive::Stun);
    assert_eq!(a.role(), Role::Controlled, "the old transaction's role is stale: no switch back");
    assert!(requests(&mut a, t2, t0).is_empty(), "the pair was already checked again");
    // A response to the redone transaction still counts.
    let ok = success(&redone.iter().find(|s| s.to == second.to).unwrap().tid, local, &peer.pwd);
    assert_eq!(a.handle_receive(t2, local, second.to, &ok), Receive::Stun);
    let pair = a.candidate_pairs().find(|p| p.remote == second.to).unwrap();
    assert_eq!(pair.state, rtc_ice::PairState::Succeeded);
}

/// Emulates a peer (pion does this) that never answers 487 but silently
/// drops every request whose role attribute equals its own role.
fn drops_requests_with_its_own_role(p: &sim::Packet, receiver: &Agent) -> bool {
    request_role(&p.data).is_some_and(|(role, _)| role == receiver.role())
}

/// The role attributes of A's requests, in the order A sent them.
fn roles_sent_by_a(p: &Pair) -> Vec<Role> {
    p.sent
        .iter()
        .filter(|(_, from_a, _)| *from_a)
        .filter_map(|(_, _, pk)| request_role(&pk.data).map(|(r, _)| r))
        .collect()
}

/// RFC 8445 7.3.1.1 with a peer that drops wrong-role requests: both sides
/// start controlling; B's tiebreaker is larger, so A switches to controlled
/// on B's first check. A's check already in flight carried ICE-CONTROLLING
/// and B dropped it: A must redo it with ICE-CONTROLLED rather than
/// retransmit the stale request until the transaction fails.
#[test]
fn a_peer_that_drops_wrong_role_requests_connects_once_we_switch() {
    let (ca, cb) = (cfg(Role::Controlling, 160), cfg(Role::Controlling, 161));
    let mut p = simple(ca, cb, NetConfig::default());
    assert!(p.b.agent.tiebreaker() > p.a.agent.tiebreaker(), "the test needs B to win the conflict");
    p.drop_at_b = Some(drops_requests_with_its_own_role);
    assert!(p.run_until(Duration::from_secs(2), Pair::both_connected), "no connection within 2 s");
    assert_eq!((p.a.agent.role(), p.b.agent.role()), (Role::Controlled, Role::Controlling));
    assert_eq!(p.a.agent.stats().role_conflicts, 1, "A switched on B's ICE-CONTROLLING (7.3.1.1)");
    let a_pair = p.a.agent.candidate_pairs().next().unwrap();
    assert_eq!((a_pair.state, a_pair.nominated), (rtc_ice::PairState::Succeeded, true));
    let t = p.a.connected_at().unwrap() - p.start;
    assert!(t < Duration::from_millis(500), "before the stale check's first retransmission: {t:?}");
    assert_eq!(p.b.agent.stats().role_conflicts, 0, "B never saw a conflict: it dropped A's requests");
    assert!(p.dropped_at_b >= 1, "A's first check, with the stale role, was dropped");
    p.run_for(Duration::from_secs(10));
    assert_eq!((p.a.agent.state(), p.b.agent.state()), (State::Connected, State::Connected));
    // Once A's requests carry ICE-CONTROLLED, none carries ICE-CONTROLLING again.
    let a_roles = roles_sent_by_a(&p);
    let switched = a_roles.iter().position(|r| *r == Role::Controlled).unwrap();
    assert!(switched >= 1);
    assert!(a_roles[switched..].iter().all(|r| *r == Role::Controlled), "{a_roles:?}");
    let (pa, pb) = (p.a.agent.path(Component::RTP).unwrap(), p.b.agent.path(Component::RTP).unwrap());
    assert_eq!((pa.remote, pb.remote), (pb.local, pa.local));
}

/// `Agent::set_role` before checks start: the first checks carry the new
/// role and pair priorities are those of that role (RFC 8445 6.1.2.3).
#[test]
fn set_role_before_checks_start() {
    let now = Instant::now();
    let peer = Credentials { ufrag: "peer".into(), pwd: "peerpasswordpeerpassword".into() };
    let cand = rtc_candidate::Candidate::parse("candidate:1 1 udp 2130706431 127.0.0.1 7000 typ host").unwrap();
    let build = |role: Role| {
        let mut a = Agent::new(cfg(role, 170)).unwrap();
        a.add_host_candidate(now, Component::RTP, addr("127.0.0.1:5000")).unwrap();
        a.add_remote_candidate(now, &cand).unwrap();
        let _ = drain(&mut a);
        a
    };
    let mut late = build(Role::Controlling);
    late.set_role(now, Role::Controlling);
    assert_eq!(late.role(), Role::Controlling, "setting the same role changes nothing");
    late.set_role(now, Role::Controlled);
    assert_eq!(late.role(), Role::Controlled);
    assert!(late.poll_transmit().is_none(), "no peer credentials yet: no check");
    let born = build(Role::Controlled);
    let priorities = |a: &Agent| a.candidate_pairs().map(|p| p.priority).collect::<Vec<_>>();
    assert_eq!(priorities(&late), priorities(&born));
    late.set_remote_credentials(now, peer).unwrap();
    let first = requests(&mut late, now, now);
    assert_eq!(first.len(), 1);
    assert_eq!((first[0].role, first[0].tiebreaker), (Role::Controlled, late.tiebreaker()));
    assert_eq!(late.stats().role_conflicts, 0, "a role set by the application is no conflict");
}

/// `Agent::set_role` while a check is being retransmitted: the old
/// transaction stops and the pair is checked again as a new transaction
/// with the new role.
#[test]
fn set_role_after_checks_started_redoes_them() {
    let (mut a, peer, t0) = lone_agent(171);
    assert_eq!(a.role(), Role::Controlled);
    let _ = drain(&mut a);
    let c = rtc_candidate::Candidate::parse("candidate:1 1 udp 2130706431 127.0.0.1 7000 typ host").unwrap();
    a.add_remote_candidate(t0, &c).unwrap();
    let mut before = requests(&mut a, t0, t0);
    before.extend(run_alone(&mut a, t0, t0 + Duration::from_millis(700)));
    assert_eq!(before.iter().map(|s| s.at_ms).collect::<Vec<_>>(), vec![0, 500], "sent, then retransmitted");
    assert!(before.iter().all(|s| s.tid == before[0].tid && s.role == Role::Controlled));
    let t1 = t0 + Duration::from_millis(700);
    a.set_role(t1, Role::Controlling);
    assert_eq!(a.role(), Role::Controlling);
    let local = addr("127.0.0.1:5000");
    let mut after = requests(&mut a, t1, t0);
    assert_eq!(after.len(), 1, "checked again at once");
    assert_ne!(after[0].tid, before[0].tid, "a new transaction");
    assert_eq!((after[0].role, after[0].tiebreaker), (Role::Controlling, a.tiebreaker()));
    after.extend(run_alone(&mut a, t0, t0 + Duration::from_millis(1300)));
    assert!(after.len() >= 2, "the new transaction is retransmitted in its turn");
    assert!(after.iter().all(|s| s.tid != before[0].tid), "the old transaction is not retransmitted");
    assert!(after.iter().all(|s| (s.role, s.tiebreaker) == (Role::Controlling, a.tiebreaker())), "{after:?}");
    // The new transaction completes the check.
    let t2 = t0 + Duration::from_millis(1300);
    assert_eq!(
        a.handle_receive(t2, local, addr("127.0.0.1:7000"), &success(&after[0].tid, local, &peer.pwd)),
        Receive::Stun
    );
    assert_eq!(a.candidate_pairs().next().unwrap().state, rtc_ice::PairState::Succeeded);
    assert_eq!(a.stats().role_conflicts, 0, "a role set by the application is no conflict");
}

/// An answerer that gathered before it knew its role (so it started as the
/// default, controlling) learns it is controlled after its first check went
/// out. The peer is controlling and drops wrong-role requests: set_role
/// must redo the check with ICE-CONTROLLED, and no conflict arises.
#[test]
fn set_role_late_answerer_connects_to_a_strict_peer() {
    let (ca, cb) = (cfg(Role::Controlling, 172), cfg(Role::Controlling, 173));
    let mut p = simple(ca, cb, NetConfig::default());
    p.drop_at_b = Some(drops_requests_with_its_own_role);
    let a_roles = roles_sent_by_a(&p);
    assert_eq!(a_roles.len(), 1, "A's first check is in flight");
    assert_eq!(a_roles[0], Role::Controlling);
    let now = p.now;
    p.a.agent.set_role(now, Role::Controlled);
    assert!(p.run_until(Duration::from_secs(2), Pair::both_connected), "no connection within 2 s");
    assert_eq!(p.a.agent.stats().role_conflicts + p.b.agent.stats().role_conflicts, 0);
    let a_roles = roles_sent_by_a(&p);
    assert!(a_roles[1..].iter().all(|r| *r == Role::Controlled), "{a_roles:?}");
    assert_eq!(p.dropped_at_b, 1, "only the check sent before set_role was dropped");
}

/// When A (or B) sent each new Binding request (retransmissions left out),
/// from the start.
fn new_checks(p: &Pair, from_a: bool) -> Vec<Duration> {
    let mut seen: Vec<Vec<u8>> = Vec::new();
    let mut times = Vec::new();
    for (at, a, pkt) in &p.sent {
        if *a != from_a || pkt.data.len() < 20 || pkt.data[..2] != [0x00, 0x01] {
            continue;
        }
        let id = pkt.data[8..20].to_vec();
        if !seen.contains(&id) {
            seen.push(id);
            times.push(*at - p.start);
        }
    }
    times
}

/// RFC 8445 section 14.2 with RFC 8839's `ice-pacing`: each agent proposes
/// a Ta, both use the larger proposal, one that proposes nothing counts as
/// 50 ms, and nothing goes under 5 ms. The controlling agent's nominating
/// check is a new check: it waits one agreed Ta after the first.
#[test]
fn checks_are_paced_at_the_larger_of_the_proposed_tas() {
    let ms = Duration::from_millis;
    // (A's own Ta, what A read from B, B's own Ta, what B read from A,
    // the Ta both end up with).
    let cases = [
        (None, None, None, None, 50),      // nobody signals: RFC 8445's default, today's behaviour
        (None, Some(5), None, Some(5), 5), // both signal rtc's default 5 ms
        (Some(20), Some(5), None, Some(20), 20), // A proposes 20: both use 20
        (None, Some(0), None, Some(5), 5), // 0 counts as the 5 ms floor
        (Some(1), Some(5), Some(1), Some(5), 5), // a local 1 ms is clamped to 5
    ];
    for (i, (a_ta, a_read, b_ta, b_read, want)) in cases.into_iter().enumerate() {
        let with_ta = |c: AgentConfig, ta: Option<u64>| match ta {
            Some(t) => AgentConfig { timing: Timing { ta: ms(t), ..c.timing }, ..c },
            None => c,
        };
        let net = NetConfig { latency: Duration::from_micros(100), ..NetConfig::default() };
        let mut p = simple(with_ta(cfg(Role::Controlling, 70), a_ta), with_ta(cfg(Role::Controlled, 71), b_ta), net);
        p.a.agent.set_remote_pacing(a_read.map(ms)).unwrap();
        p.b.agent.set_remote_pacing(b_read.map(ms)).unwrap();
        assert_eq!((p.a.agent.pacing(), p.b.agent.pacing()), (ms(want), ms(want)), "case {i}");
        assert!(p.run_until(Duration::from_secs(5), Pair::both_connected), "case {i}");
        let a = new_checks(&p, true);
        assert_eq!(&a[..2], &[Duration::ZERO, ms(want)], "case {i}: A's first check, then the nominating one");
        let connected = p.a.connected_at().unwrap() - p.start;
        assert!(connected >= ms(want) && connected < ms(want + 1), "case {i}: {connected:?}");
    }
}

/// The pacing may change while checks run (the peer's answer arrives after
/// the first check went out): the next check waits the new Ta after the
/// last one. A proposal above 10 s is refused and changes nothing.
#[test]
fn the_pacing_may_change_while_checking_and_a_huge_one_is_refused() {
    let ms = Duration::from_millis;
    let net = NetConfig { latency: ms(1), ..NetConfig::default() };
    let mut p = simple(cfg(Role::Controlling, 72), cfg(Role::Controlled, 73), net);
    assert_eq!(p.a.agent.pacing(), ms(50), "nothing read yet: 50 ms");
    assert_eq!(p.a.agent.set_remote_pacing(Some(ms(10_001))), Err(rtc_ice::Error::InvalidPacing(ms(10_001))));
    assert_eq!(p.a.agent.pacing(), ms(50));
    assert!(p.a.agent.set_remote_pacing(Some(Duration::MAX)).is_err());
    p.a.agent.set_remote_pacing(Some(Timing::MAX_PACING)).unwrap();
    assert_eq!(p.a.agent.pacing(), Timing::MAX_PACING, "10 s is taken");
    p.a.agent.set_remote_pacing(Some(ms(5))).unwrap();
    assert!(p.run_until(Duration::from_secs(5), Pair::both_connected));
    assert_eq!(&new_checks(&p, true)[..2], &[Duration::ZERO, ms(5)]);
}

/// RFC 8445 section 12.1: data MAY go on a valid pair before a pair is
/// selected. `early_path` is that pair while checking, and gives way to
/// `path` (the selected pair) once there is one.
#[test]
fn early_path_is_the_valid_pair_until_one_is_selected() {
    let ms = Duration::from_millis;
    let net = NetConfig { latency: ms(50), ..NetConfig::default() };
    let mut p = simple(cfg(Role::Controlling, 74), cfg(Role::Controlled, 75), net);
    // Handles everything due up to `at` from the start (the harness then
    // waits at its next wake-up).
    let advance_to = |p: &mut Pair, at: Duration| while p.now - p.start <= at && p.step() {};
    let early = |p: &Pair| (p.a.agent.early_path(Component::RTP), p.b.agent.early_path(Component::RTP));
    for agent in [&mut p.a.agent, &mut p.b.agent] {
        agent.set_remote_pacing(Some(ms(5))).unwrap();
    }
    advance_to(&mut p, ms(99));
    assert_eq!(early(&p), (None, None), "no valid pair before a response");
    // Both checks answered after one round trip: both have a valid pair,
    // neither has selected one (the nomination is on its way).
    advance_to(&mut p, ms(100));
    let (Some(a), Some(b)) = early(&p) else { panic!("valid pairs after one round trip: {:?}", early(&p)) };
    assert_eq!(((a.local, a.remote), (b.local, b.remote)), ((addr(A), addr(B)), (addr(B), addr(A))));
    assert_eq!((p.a.agent.path(Component::RTP), p.b.agent.path(Component::RTP)), (None, None));
    assert_eq!(p.a.agent.early_path(Component::RTCP), None, "one component");
    // B is nominated after 1.5 round trips: from then on only its selected
    // pair; A hears back after 2.
    advance_to(&mut p, ms(150));
    assert!(p.b.agent.path(Component::RTP).is_some());
    assert_eq!(early(&p), (Some(a), None));
    advance_to(&mut p, ms(200));
    assert_eq!(early(&p), (None, None));
    assert_eq!(p.a.agent.path(Component::RTP).map(|x| x.remote), Some(addr(B)));
    let at = |n: &sim::Node| n.connected_at().map(|t| t - p.start);
    assert_eq!((at(&p.a), at(&p.b)), (Some(ms(200)), Some(ms(150))));
}

/// An agent answers checks before it holds the peer's description, so a
/// valid pair does not say the peer is ready for data: `early_path` waits
/// for an authenticated check from the peer (proof that it holds ours).
#[test]
fn early_path_waits_for_a_check_from_the_peer() {
    let ms = Duration::from_millis;
    let net = NetConfig { latency: ms(10), ..NetConfig::default() };
    let mut p = simple(cfg(Role::Controlling, 76), cfg(Role::Controlled, 77), net);
    for agent in [&mut p.a.agent, &mut p.b.agent] {
        agent.set_remote_pacing(Some(ms(5))).unwrap();
    }
    // B never sees A's requests (as if A had not checked yet).
    p.drop_at_b = Some(|pkt, _| pkt.data.len() >= 2 && pkt.data[..2] == [0x00, 0x01]);
    p.run_for(ms(100));
    assert!(p.b.agent.candidate_pairs().any(|x| x.state == rtc_ice::PairState::Succeeded), "B's check succeeded");
    assert_eq!(p.b.agent.early_path(Component::RTP), None, "but A never checked");
    // A's check is retransmitted after its 500 ms RTO and now reaches B:
    // the valid pair is usable, before A's nomination (one Ta later).
    p.drop_at_b = None;
    assert!(p.run_until(ms(1000), |p| p.b.agent.early_path(Component::RTP).is_some()
        || p.b.agent.path(Component::RTP).is_some()));
    assert!(p.b.agent.early_path(Component::RTP).is_some(), "{:?}", p.b.agent.path(Component::RTP));
    assert!(p.run_until(ms(100), Pair::both_connected));
}

/// RFC 8445 section 7.3.1.4: when the peer's check arrives on a pair whose
/// own check is in progress, that check is cancelled and the pair checked
/// again at once. Here A's first check is lost; B's check then shows A the
/// path works, and A connects about a round trip later instead of waiting
/// for the 500 ms retransmission of its lost check.
#[test]
fn a_check_from_the_peer_retries_a_pair_whose_check_is_in_progress() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static DROPPED: AtomicBool = AtomicBool::new(false);
    // B's socket loses the first Binding request A sends.
    fn lose_first_request(p: &sim::Packet, _: &Agent) -> bool {
        p.data.starts_with(&[0x00, 0x01]) && !DROPPED.swap(true, Ordering::SeqCst)
    }
    let mut p = simple(cfg(Role::Controlling, 70), cfg(Role::Controlled, 71), NetConfig::default());
    p.drop_at_b = Some(lose_first_request);
    assert!(p.run_until(Duration::from_secs(5), Pair::both_connected));
    assert_eq!(p.dropped_at_b, 1);
    let took = p.a.connected_at().unwrap() - p.start;
    assert!(took < Duration::from_millis(300), "A connected after {took:?}, not after its retransmission");
}
