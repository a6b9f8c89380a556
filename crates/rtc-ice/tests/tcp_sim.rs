//! ICE-TCP (RFC 6544) between two agents over the simulated network of
//! `sim/mod.rs`: TCP connections open in one round trip, are reliable and in
//! order; UDP may be blocked.

mod sim;

use std::net::SocketAddr;
use std::time::Duration;

use rtc_candidate::{Component, TcpType, TransportKind};
use rtc_ice::{AgentConfig, Event, Role, State};
use sim::{NetConfig, Pair};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn cfg(role: Role, seed: u64) -> AgentConfig {
    AgentConfig { role, seed: Some(seed), ..AgentConfig::default() }
}

const A: &str = "10.0.0.1:5000";
const B: &str = "198.51.100.2:7000";
const A_TCP: &str = "10.0.0.1:5001";
const B_TCP: &str = "198.51.100.2:7001";

fn pair(seed: u64) -> Pair {
    let mut p = Pair::new(
        cfg(Role::Controlling, seed),
        &[(1, addr(A))],
        cfg(Role::Controlled, seed + 1),
        &[(1, addr(B))],
        NetConfig::default(),
    );
    p.add_tcp(addr(A_TCP), addr(B_TCP));
    p
}

/// RFC 6544 section 4.5: a passive candidate at the listener, an active
/// one at port 9; priorities from section 4.2 (active before passive, both
/// below UDP host).
#[test]
fn tcp_candidates_are_signaled_as_rfc_6544_says() {
    let p = pair(1);
    let cands: Vec<_> =
        p.a.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Candidate(c) => Some(c.clone()),
                _ => None,
            })
            .collect();
    let udp = cands.iter().find(|c| c.transport.kind() == TransportKind::Udp).unwrap();
    let passive = cands.iter().find(|c| c.tcp_type() == Some(TcpType::Passive)).unwrap();
    let active = cands.iter().find(|c| c.tcp_type() == Some(TcpType::Active)).unwrap();
    assert_eq!(passive.port, 5001);
    assert_eq!(active.port, 9);
    assert!(passive.to_string().contains(" tcp ") && passive.to_string().ends_with("tcptype passive"), "{passive}");
    assert!(udp.priority > active.priority && active.priority > passive.priority);
    assert_eq!(active.priority >> 24, 90);
    assert_eq!((active.priority >> 8) & 0xffff, (6 << 13) | (8191 - 256));
    assert_eq!(passive.foundation, active.foundation);
    assert_ne!(passive.foundation, udp.foundation);
}

/// With UDP working, UDP is chosen and the TCP connections opened for
/// checks are closed once the pair is selected (RFC 6544 section 8).
#[test]
fn udp_is_chosen_when_it_works() {
    let mut p = pair(3);
    assert!(p.run_until(Duration::from_secs(10), Pair::both_connected));
    p.run_for(Duration::from_secs(2));
    let path = p.a.agent.path(Component::RTP).unwrap();
    assert_eq!((path.local, path.remote), (addr(A), addr(B)));
    assert_eq!(p.a.agent.selected_pair(Component::RTP).unwrap().tcp_type, None);
    assert!(p.connections.is_empty(), "{:?}", p.connections);
}

/// UDP blocked: the call connects over a TCP connection, data goes both
/// ways over it, the other connection is closed, and no check over TCP is
/// ever retransmitted.
#[test]
fn tcp_connects_when_udp_is_blocked() {
    for seed in [5, 7, 9, 11] {
        let mut p = pair(seed);
        p.block_udp = true;
        assert!(p.run_until(Duration::from_secs(10), Pair::both_connected), "seed {seed}");
        let t = p.a.connected_at().unwrap().max(p.b.connected_at().unwrap()) - p.start;
        assert!(t < Duration::from_secs(2), "seed {seed}: {t:?}");
        p.run_for(Duration::from_secs(1));
        let (pa, pb) = (p.a.agent.path(Component::RTP).unwrap(), p.b.agent.path(Component::RTP).unwrap());
        assert_eq!((pa.local, pa.remote), (pb.remote, pb.local), "seed {seed}");
        assert_eq!(p.connections.len(), 1, "seed {seed}: {:?}", p.connections);
        let c = p.connections[0];
        assert!([c, (c.1, c.0)].contains(&(pa.local, pa.remote)), "seed {seed}");
        let (sa, sb) =
            (p.a.agent.selected_pair(Component::RTP).unwrap(), p.b.agent.selected_pair(Component::RTP).unwrap());
        let types = [sa.tcp_type, sb.tcp_type];
        assert!(types.contains(&Some(TcpType::Active)) && types.contains(&Some(TcpType::Passive)), "{types:?}");
        p.send_data(Component::RTP, b"over tcp from a", b"over tcp from b");
        p.run_for(Duration::from_millis(100));
        assert_eq!(p.b.data, vec![b"over tcp from a".to_vec()], "seed {seed}");
        assert_eq!(p.a.data, vec![b"over tcp from b".to_vec()], "seed {seed}");
        // Consent keeps the call up over TCP.
        p.run_for(Duration::from_secs(40));
        assert_eq!(p.a.agent.state(), State::Connected, "seed {seed}");
        assert_eq!(p.b.agent.state(), State::Connected, "seed {seed}");
        let mut seen = std::collections::HashSet::new();
        for (_, _, pk) in &p.sent {
            if pk.src.port() > 40_000 || pk.dst.port() > 40_000 || [A_TCP, B_TCP].contains(&pk.src.to_string().as_str())
            {
                assert!(seen.insert(pk.data.clone()), "seed {seed}: a request sent twice over TCP");
            }
        }
    }
}

/// Every connection refused, UDP blocked: ICE fails (it does not wait for
/// the check timeouts of connections that never opened).
#[test]
fn refused_connections_fail_their_pairs() {
    let mut p = pair(13);
    p.block_udp = true;
    p.refuse_tcp = true;
    assert!(p.run_until(Duration::from_secs(60), |p| p.a.agent.state() == State::Failed));
    assert!(!p.a.has(|e| *e == Event::Connected));
    assert!(p.now - p.start < Duration::from_secs(45), "{:?}", p.now - p.start);
}

/// RFC 6544 section 11.1: the selected connection reset. The side that
/// opened it opens it again and checks over it, the other side takes the
/// new connection for the selected pair, and the call goes on without a
/// Disconnected, whichever side is active. When it cannot be opened
/// again, consent runs out and both ends say so.
#[test]
fn a_reset_connection_is_reopened_and_the_call_goes_on() {
    for seed in [15, 19, 21, 23] {
        let mut p = pair(seed);
        p.block_udp = true;
        assert!(p.run_until(Duration::from_secs(10), Pair::both_connected));
        p.run_for(Duration::from_secs(1));
        let before = p.a.agent.path(Component::RTP).unwrap();
        p.reset_connection(0);
        p.run_for(Duration::from_secs(2));
        assert_eq!(p.connections.len(), 1, "seed {seed}");
        let (pa, pb) = (p.a.agent.path(Component::RTP).unwrap(), p.b.agent.path(Component::RTP).unwrap());
        assert_ne!((pa.local, pa.remote), (before.local, before.remote), "seed {seed}: a new connection");
        assert_eq!((pa.local, pa.remote), (pb.remote, pb.local), "seed {seed}");
        p.send_data(Component::RTP, b"after the reset, from a", b"after the reset, from b");
        p.run_for(Duration::from_millis(100));
        assert_eq!(p.b.data, vec![b"after the reset, from a".to_vec()], "seed {seed}");
        assert_eq!(p.a.data, vec![b"after the reset, from b".to_vec()], "seed {seed}");
        p.run_for(Duration::from_secs(40));
        for n in [&p.a, &p.b] {
            assert!(!n.has(|e| *e == Event::Disconnected || *e == Event::Failed), "seed {seed}");
            assert_eq!(n.agent.state(), State::Connected, "seed {seed}");
        }
    }
    // The side that accepted the connection controls: A is given only B's
    // active candidate, B only A's passive one.
    let mut p = Pair::without_signaling(
        cfg(Role::Controlling, 27),
        &[(1, addr(A))],
        cfg(Role::Controlled, 28),
        &[(1, addr(B))],
        NetConfig::default(),
    );
    p.block_udp = true;
    p.add_tcp(addr(A_TCP), addr(B_TCP));
    let tcp_of =
        |n: &sim::Node, t: TcpType| n.agent.local_candidates().find(|c| c.tcp_type() == Some(t)).cloned().unwrap();
    let (a_passive, b_active) = (tcp_of(&p.a, TcpType::Passive), tcp_of(&p.b, TcpType::Active));
    let now = p.now;
    p.a.agent.add_remote_candidate(now, &b_active).unwrap();
    p.b.agent.add_remote_candidate(now, &a_passive).unwrap();
    assert!(p.run_until(Duration::from_secs(10), Pair::both_connected));
    assert_eq!(p.a.agent.selected_pair(Component::RTP).unwrap().tcp_type, Some(TcpType::Passive));
    let before = p.a.agent.path(Component::RTP).unwrap();
    p.reset_connection(0);
    p.run_for(Duration::from_secs(2));
    let (pa, pb) = (p.a.agent.path(Component::RTP).unwrap(), p.b.agent.path(Component::RTP).unwrap());
    assert_ne!(pa.remote, before.remote, "A takes the connection B opened again");
    assert_eq!((pa.local, pa.remote), (pb.remote, pb.local));
    p.send_data(Component::RTP, b"a", b"b");
    p.run_for(Duration::from_secs(40));
    assert_eq!((p.a.data.len(), p.b.data.len()), (1, 1));
    for n in [&p.a, &p.b] {
        assert!(!n.has(|e| *e == Event::Disconnected || *e == Event::Failed));
    }
    drop(p);
    let mut p = pair(25);
    p.block_udp = true;
    assert!(p.run_until(Duration::from_secs(10), Pair::both_connected));
    p.refuse_tcp = true;
    p.reset_connection(0);
    assert!(p.run_until(Duration::from_secs(60), |p| {
        p.a.has(|e| *e == Event::Disconnected || *e == Event::Failed)
            && p.b.has(|e| *e == Event::Disconnected || *e == Event::Failed)
    }));
}

/// A lite agent (RFC 8445 section 2.5) offers a passive candidate only and
/// is reached over it.
#[test]
fn a_lite_agent_is_reached_over_its_passive_candidate() {
    let lite = AgentConfig { lite: true, ..cfg(Role::Controlled, 18) };
    let mut p = Pair::new(cfg(Role::Controlling, 17), &[(1, addr(A))], lite, &[(1, addr(B))], NetConfig::default());
    p.add_tcp(addr(A_TCP), addr(B_TCP));
    p.block_udp = true;
    let b_tcp: Vec<_> = p.b.agent.local_candidates().filter(|c| c.tcp_type().is_some()).cloned().collect();
    assert_eq!(b_tcp.len(), 1);
    assert_eq!(b_tcp[0].tcp_type(), Some(TcpType::Passive));
    assert!(p.run_until(Duration::from_secs(10), Pair::both_connected));
    assert_eq!(p.b.agent.path(Component::RTP).unwrap().local, addr(B_TCP));
}
