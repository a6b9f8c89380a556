//! ICE lite (RFC 8445 section 2.5) in whole calls, in simulated time
//! (tests/sim): a connection whose socket says `ice-lite` against a full
//! one, signaled in SDP (`a=ice-lite`, RFC 8839 section 5.3) or JSON
//! (`"ice-lite": true`), in both offer directions. The full side controls
//! and nominates, the lite side is controlled, never sends a Binding
//! request, and the call keys DTLS-SRTP and carries media.

mod sim;

use std::time::Duration;

use rtc_codecs::Kind;
use rtc_proto::{
    ConnHandle, ConnectionConfig, ConnectionEvent, Direction, Error, SdpType, SocketConfig, SocketOptions,
    StreamDescription, TrackDescription, TrackId,
};
use sim::Net;

/// A host with one connection sending one audio track.
#[derive(Clone, Copy)]
struct Peer {
    host: usize,
    conn: ConnHandle,
    audio: TrackId,
}

/// Where a peer's descriptions come from and go to.
fn at(p: Peer) -> (usize, ConnHandle) {
    (p.host, p.conn)
}

fn peer(net: &mut Net, name: &'static str, ip: [u8; 4], lite: bool) -> Peer {
    let host = net.host(name, ip, SocketOptions { ice_lite: lite, ..SocketOptions::default() });
    let seed = 2000 + net.hosts.len() as u64;
    let conn = net.connect(host, ConnectionConfig::new(None, None), seed);
    let now = net.now;
    let stream = StreamDescription { stream_id: String::new(), tracks: vec![TrackDescription::new(Kind::Audio)] };
    let (_, tracks) = net.conn_mut(host, conn).send_stream(now, stream).expect("send stream");
    Peer { host, conn, audio: tracks[0] }
}

/// A network seeded with `seed` that logs every datagram, a full peer at
/// 10.0.0.1 (behind a NAT at 203.0.113.5 with `nat`, on a lossy link) and a
/// lite one on a public address.
fn full_and_lite(seed: u64, nat: bool) -> (Net, Peer, Peer) {
    let mut net = Net::new(seed);
    net.sent_log = Some(Vec::new());
    if nat {
        net.link.loss = 0.1;
        net.link.jitter = Duration::from_millis(30);
    }
    let full = peer(&mut net, "full", [10, 0, 0, 1], false);
    if nat {
        net.nat(full.host, [203, 0, 113, 5]);
    }
    let lite = peer(&mut net, "lite", [198, 51, 100, 7], true);
    (net, full, lite)
}

/// `from` offers in SDP, `to` answers.
fn sdp_call(net: &mut Net, from: Peer, to: Peer) -> (String, String) {
    let now = net.now;
    let offer = net.hosts[from.host].conn(from.conn).local_sdp().expect("offer");
    net.conn_mut(to.host, to.conn).set_remote_sdp(now, SdpType::Offer, &offer).expect("offer taken");
    let answer = net.hosts[to.host].conn(to.conn).local_sdp().expect("answer");
    net.conn_mut(from.host, from.conn).set_remote_sdp(now, SdpType::Answer, &answer).expect("answer taken");
    (offer, answer)
}

fn agent(net: &Net, p: Peer) -> &rtc_ice::Agent {
    let c = net.hosts[p.host].conn(p.conn);
    c.ice_agent(c.sockets().next().unwrap()).unwrap()
}

/// STUN Binding requests (0x0001) host `host` sent, from the log.
fn requests_sent(net: &Net, host: usize) -> usize {
    net.sent_log.as_ref().unwrap().iter().filter(|(_, h, d)| *h == host && d.starts_with(&[0x00, 0x01])).count()
}

fn both_connected(net: &mut Net, a: Peer, b: Peer, within: Duration) -> bool {
    net.run_until(within, |n| n.connected(a.host, a.conn) && n.connected(b.host, b.conn))
}

fn audio_frame(i: u32) -> Vec<u8> {
    let mut f: Vec<u8> = (0..160u32).map(|k| (k * 7 + i) as u8).collect();
    f[..4].copy_from_slice(&i.to_be_bytes());
    f
}

/// `n` audio frames each way, 20 ms apart; returns how many arrived at
/// each side (full's, lite's) since the call began.
fn talk(net: &mut Net, full: Peer, lite: Peer, n: u32) -> (usize, usize) {
    for i in 0..n {
        let now = net.now;
        for p in [full, lite] {
            net.conn_mut(p.host, p.conn).write_frame(now, p.audio, &audio_frame(i), Duration::from_millis(20)).unwrap();
        }
        net.run_for(Duration::from_millis(20));
    }
    net.run_for(Duration::from_millis(200));
    let ssrc = |p: Peer| net.hosts[p.host].conn(p.conn).track_description(p.audio).and_then(|d| d.ssrc).unwrap();
    (
        net.hosts[full.host].frames_of(full.conn, ssrc(lite)).len(),
        net.hosts[lite.host].frames_of(lite.conn, ssrc(full)).len(),
    )
}

/// Whoever offers, the full side controls and nominates and the lite side
/// is controlled; the lite side's SDP says `a=ice-lite` and no
/// `a=ice-pacing`; DTLS-SRTP keys and audio flows both ways; the lite side
/// sends no Binding request at all.
#[test]
fn lite_and_full_in_sdp_in_both_offer_directions() {
    for lite_offers in [false, true] {
        let (mut net, full, lite) = full_and_lite(41, false);
        let (offer, answer) = if lite_offers { sdp_call(&mut net, lite, full) } else { sdp_call(&mut net, full, lite) };
        let (lite_sdp, full_sdp) = if lite_offers { (&offer, &answer) } else { (&answer, &offer) };
        assert!(lite_sdp.contains("\r\na=ice-lite\r\n") && !lite_sdp.contains("ice-pacing"), "{lite_sdp}");
        assert!(!full_sdp.contains("ice-lite") && full_sdp.contains("a=ice-pacing:5"), "{full_sdp}");
        assert!(both_connected(&mut net, full, lite, Duration::from_secs(5)), "lite offers: {lite_offers}");
        let (fa, la) = (agent(&net, full), agent(&net, lite));
        assert_eq!((fa.role(), la.role()), (rtc_ice::Role::Controlling, rtc_ice::Role::Controlled));
        assert!(la.is_lite() && fa.remote_lite());
        assert_eq!(fa.stats().role_conflicts + la.stats().role_conflicts, 0, "lite offers: {lite_offers}");
        // The full side nominated the pair the lite side selected.
        assert_eq!(la.candidate_pairs().filter(|p| p.nominated).count(), 1);
        let took = net.hosts[lite.host].conn(lite.conn).connected_after().unwrap();
        assert!(took < Duration::from_millis(300), "lite offers: {lite_offers}: {took:?}");
        let (got_full, got_lite) = talk(&mut net, full, lite, 50);
        assert_eq!((got_full, got_lite), (50, 50), "lite offers: {lite_offers}");
        let la = agent(&net, lite);
        assert_eq!((la.stats().checks_sent, la.stats().consent_checks), (0, 0));
        assert_eq!(requests_sent(&net, lite.host), 0, "lite offers: {lite_offers}");
        assert!(requests_sent(&net, full.host) >= 2);
        assert_eq!(net.hosts[full.host].conn(full.conn).dropped() + net.hosts[lite.host].conn(lite.conn).dropped(), 0);
    }
}

/// The seeds' JSON descriptions carry `"ice-lite": true` in the socket
/// options, and two rtc peers agree on the roles whichever sends first;
/// the full side's consent checks, answered by the lite side, keep the
/// call up for a minute (past the 30 s consent timeout) with media
/// flowing; cut the link and both sides go down within 24 to 37 s.
#[test]
fn lite_in_json_stays_up_on_the_full_sides_consent_checks() {
    for lite_first in [false, true] {
        let (mut net, full, lite) = full_and_lite(42, false);
        let d = net.hosts[lite.host].conn(lite.conn).description(Direction::Local).unwrap();
        let json = d.to_json();
        assert!(json.contains(r#""ice-lite":true"#) && !json.contains("ice-pacing"), "{json}");
        let dtls = |d: &mut rtc_proto::ConnectionDescription| d.keys.clear();
        if lite_first {
            net.signal_with(at(lite), at(full), dtls);
        } else {
            net.signal_with(at(full), at(lite), dtls);
        }
        assert!(both_connected(&mut net, full, lite, Duration::from_secs(5)), "lite first: {lite_first}");
        assert_eq!(agent(&net, full).role(), rtc_ice::Role::Controlling);
        assert_eq!(agent(&net, lite).role(), rtc_ice::Role::Controlled);
        for k in 1..=3 {
            net.run_for(Duration::from_secs(20));
            assert_eq!(talk(&mut net, full, lite, 5), (5 * k, 5 * k), "lite first: {lite_first}");
        }
        assert!(net.connected(full.host, full.conn) && net.connected(lite.host, lite.conn));
        assert!(agent(&net, full).stats().consent_checks >= 10);
        assert_eq!(requests_sent(&net, lite.host), 0);
        net.cut = true;
        let cut = net.now;
        assert!(net.run_until(Duration::from_secs(60), |n| {
            !n.connected(full.host, full.conn) && !n.connected(lite.host, lite.conn)
        }));
        let took = net.now - cut;
        assert!((Duration::from_secs(24)..Duration::from_secs(37)).contains(&took), "{took:?}");
        assert!(net.hosts[lite.host].has(lite.conn, |e| *e == ConnectionEvent::Disconnected));
    }
}

/// 10% loss with 30 ms of jitter and the full side behind a NAT (the lite
/// side is on a public address, as RFC 8445 section 2.5 wants): the lite
/// side learns the full side's public address from its checks, DTLS
/// retransmits through the loss, audio mostly arrives.
#[test]
fn lite_over_loss_and_nat() {
    for seed in [43, 44, 45] {
        let (mut net, full, lite) = full_and_lite(seed, true);
        if seed % 2 == 0 {
            sdp_call(&mut net, full, lite);
        } else {
            sdp_call(&mut net, lite, full);
        }
        assert!(both_connected(&mut net, full, lite, Duration::from_secs(20)), "seed {seed}");
        let (got_full, got_lite) = talk(&mut net, full, lite, 100);
        assert!(got_full >= 75 && got_lite >= 75, "seed {seed}: {got_full} and {got_lite} of 100");
        let la = agent(&net, lite);
        let selected = la.candidate_pairs().find(|p| p.nominated).unwrap();
        assert_eq!(selected.remote.ip(), std::net::IpAddr::from([203, 0, 113, 5]), "seed {seed}");
        assert_eq!(requests_sent(&net, lite.host), 0, "seed {seed}");
        assert!(net.lost > 0);
    }
}

/// An ICE restart through descriptions with a lite side: the full side
/// restarts (new credentials), the lite side answers with new ones of its
/// own, media keeps the old path meanwhile, the full side nominates the
/// new pair and the lite side selects it; still no request from the lite
/// side and the roles unchanged.
#[test]
fn ice_restart_with_a_lite_side() {
    let (mut net, full, lite) = full_and_lite(46, false);
    net.signal_dtls(at(full), at(lite));
    assert!(both_connected(&mut net, full, lite, Duration::from_secs(5)));
    let old_lite = net.hosts[lite.host].conn(lite.conn).context_id().to_owned();
    // New local credentials are an ICE restart (RFC 8445 section 9).
    let restarted = rtc_proto::ConnectionDescription {
        context_id: Some("liteRestart".into()),
        secret: Some("aFreshSecretForTheRestart".into()),
        ..net.hosts[full.host].conn(full.conn).description(Direction::Local).unwrap()
    };
    let now = net.now;
    net.conn_mut(full.host, full.conn).set_description(now, restarted, Direction::Local).unwrap();
    assert_eq!(talk(&mut net, full, lite, 3), (3, 3), "the old path while the peer does not know");
    assert_eq!(agent(&net, full).state(), rtc_ice::State::Checking);
    net.signal_dtls(at(full), at(lite));
    assert_ne!(net.hosts[lite.host].conn(lite.conn).context_id(), old_lite, "the lite side restarted too");
    assert_eq!(agent(&net, lite).pair_count(), 0, "the lite agent's pairs went with the restart");
    let selected = |n: &Net, p: Peer| agent(n, p).state() == rtc_ice::State::Connected;
    assert!(net.run_until(Duration::from_secs(5), |n| selected(n, full) && selected(n, lite)));
    assert_eq!(agent(&net, lite).candidate_pairs().filter(|p| p.nominated).count(), 1, "nominated anew");
    assert_eq!(talk(&mut net, full, lite, 3), (6, 6));
    assert_eq!(agent(&net, full).role(), rtc_ice::Role::Controlling);
    assert_eq!(agent(&net, lite).role(), rtc_ice::Role::Controlled);
    assert_eq!(requests_sent(&net, lite.host), 0);
    assert!(net.connected(full.host, full.conn) && net.connected(lite.host, lite.conn));
}

/// Refusals: a lite socket with a STUN server (it gathers host candidates
/// only), and both sides lite (no one would check).
#[test]
fn lite_with_servers_and_both_lite_are_refused() {
    let mut net = Net::new(47);
    let now = net.now;
    let locals = vec![(rtc_candidate::Component::RTP, "198.51.100.9:4000".parse().unwrap())];
    let options = SocketOptions { ice_lite: true, ..SocketOptions::default() };
    let mut config = SocketConfig::new("lite-stun", locals, options, rtc_dtls::Certificate::generate().unwrap());
    config.stun_servers = vec!["192.0.2.1:3478".parse().unwrap()];
    let mut c = rtc_proto::Connection::new(ConnectionConfig::new(None, None), now, sim::wallclock()).unwrap();
    let e = c.add_socket(now, rtc_proto::SocketId(99), &config, true).unwrap_err();
    assert!(matches!(e, Error::Ice(rtc_ice::Error::Lite(_))), "{e}");
    let a = peer(&mut net, "a", [198, 51, 100, 1], true);
    let b = peer(&mut net, "b", [198, 51, 100, 2], true);
    let e = net.signal_one(at(a), at(b), |d| d.keys.clear()).unwrap_err();
    assert!(matches!(e, Error::InvalidDescription(_)), "{e}");
    let offer = net.hosts[a.host].conn(a.conn).local_sdp().unwrap();
    let e = net.conn_mut(b.host, b.conn).set_remote_sdp(now, SdpType::Offer, &offer).unwrap_err();
    assert!(e.to_string().contains("ICE lite"), "{e}");
}
