//! Remote candidates behind mDNS names (as browsers signal their host
//! candidates) through an `Endpoint`, in simulated time (tests/sim): the
//! endpoint's resolver asks for the name and the test answers as the
//! browser's responder would, or never.

mod sim;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rtc_candidate::{Address, CandidateKind};
use rtc_proto::{ConnectionConfig, ConnectionEvent, SocketOptions};
use sim::Net;

const NAME: &str = "0b7c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3.local";

/// An mDNS response carrying `name`'s A record, as a responder sends it.
fn response(name: &str, ip: [u8; 4]) -> Vec<u8> {
    let mut m = vec![0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0];
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0x80, 1, 0, 0, 0, 120, 0, 4]);
    m.extend_from_slice(&ip);
    m
}

/// Host 0 (the "browser", 10.0.0.1) signals its candidates behind NAME;
/// host 1 (rtc, 10.0.0.2) must resolve it.
fn setup() -> (Net, (usize, rtc_proto::ConnHandle), (usize, rtc_proto::ConnHandle)) {
    let mut net = Net::new(7);
    let a = net.host("browser", [10, 0, 0, 1], SocketOptions::default());
    let b = net.host("rtc", [10, 0, 0, 2], SocketOptions::default());
    let ca = net.connect(a, ConnectionConfig::new(None, None), 1);
    let cb = net.connect(b, ConnectionConfig::new(None, None), 2);
    net.signal_one((a, ca), (b, cb), |d| {
        for s in &mut d.sockets {
            for c in &mut s.candidates {
                c.address = Address::Mdns(NAME.to_owned());
            }
        }
    })
    .unwrap();
    (net, (a, ca), (b, cb))
}

#[test]
fn the_endpoint_asks_for_the_name_and_connects_over_the_resolved_candidate() {
    let (mut net, a, b) = setup();
    let now = net.now;
    let query = net.hosts[b.0].endpoint.poll_mdns_transmit(now).expect("an mDNS query").contents;
    assert!(query.windows(36).any(|w| w == &NAME.as_bytes()[..36]), "the query names the candidate's name");
    let aaaa = net.hosts[b.0].endpoint.poll_mdns_transmit(now).expect("the AAAA query").contents;
    assert_ne!(query, aaaa);
    assert!(net.hosts[b.0].endpoint.poll_mdns_transmit(now).is_none());
    // The browser does not have rtc's description yet: only rtc's checks,
    // after the name is resolved, can connect.
    net.run_for(Duration::from_millis(300));
    assert!(!net.connected(b.0, b.1));
    let responder: SocketAddr = "10.0.0.1:5353".parse().unwrap();
    let now = net.now;
    net.hosts[b.0].endpoint.handle_mdns_datagram(now, responder, &response(NAME, [10, 0, 0, 1]));
    net.signal_one(b, a, |_| {}).unwrap();
    assert!(net.run_until(Duration::from_secs(5), |n| n.connected(a.0, a.1) && n.connected(b.0, b.1)));
    let remote = net.hosts[b.0]
        .conn_events(b.1)
        .into_iter()
        .rev()
        .find_map(|e| match e {
            ConnectionEvent::ActiveConnectionCandidate { remote, .. } => Some(remote),
            _ => None,
        })
        .expect("a selected pair");
    assert_eq!(remote.kind.kind(), CandidateKind::Host);
    assert_eq!(remote.address, Address::Ip(IpAddr::from([10, 0, 0, 1])));
    // Resolved: no retransmission.
    net.run_for(Duration::from_secs(2));
    let now = net.now;
    assert!(net.hosts[b.0].endpoint.poll_mdns_transmit(now).is_none());
}

#[test]
fn an_unanswered_name_is_asked_again_then_given_up() {
    let (mut net, _, b) = setup();
    let t0 = net.now;
    let mut sent = Vec::new();
    let end = t0 + Duration::from_secs(4);
    while net.now < end {
        let now = net.now;
        while net.hosts[b.0].endpoint.poll_mdns_transmit(now).is_some() {
            sent.push(now - t0);
        }
        let next = net.hosts[b.0].endpoint.poll_timeout().unwrap_or(end).min(end).max(now + Duration::from_millis(1));
        net.run_for(next - now);
    }
    // A and AAAA at once, again 1 s later (RFC 6762 section 5.2), then
    // nothing: the name failed at 3 s.
    assert_eq!(sent.len(), 4, "{sent:?}");
    assert!(sent[2] >= Duration::from_secs(1) && sent[2] < Duration::from_millis(1100), "{sent:?}");
    // A late answer changes nothing.
    let now = net.now;
    let responder: SocketAddr = "10.0.0.1:5353".parse().unwrap();
    net.hosts[b.0].endpoint.handle_mdns_datagram(now, responder, &response(NAME, [10, 0, 0, 1]));
    net.run_for(Duration::from_millis(500));
    assert!(!net.connected(b.0, b.1));
}
