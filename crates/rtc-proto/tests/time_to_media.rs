//! Time to media in simulated time (tests/sim): from the moment both
//! descriptions are set to the Connected event (ICE selected, SRTP keyed by
//! DTLS-SRTP) on a loopback-like link and on a 100 ms round trip, and the
//! pacing of checks (RFC 8445 section 14.2, RFC 8839 `ice-pacing`): 5 ms
//! between two rtc peers that both signal it, 50 ms against a peer that
//! signals nothing.

mod sim;

use std::time::{Duration, Instant};

use rtc_codecs::Kind;
use rtc_proto::{
    ConnHandle, ConnectionConfig, ConnectionDescription, ConnectionEvent, Direction, Error, SocketOptions,
    StreamDescription, TrackDescription,
};
use sim::{Link, Net};

/// A host with one socket and a connection sending audio and video.
fn peer(net: &mut Net, name: &'static str, ip: [u8; 4], options: SocketOptions) -> (usize, ConnHandle) {
    let host = net.host(name, ip, options);
    let seed = 2000 + net.hosts.len() as u64;
    let conn = net.connect(host, ConnectionConfig::new(None, None), seed);
    let now = net.now;
    let stream = StreamDescription {
        stream_id: String::new(),
        tracks: vec![TrackDescription::new(Kind::Audio), TrackDescription::new(Kind::Video)],
    };
    net.conn_mut(host, conn).send_stream(now, stream).expect("send stream");
    (host, conn)
}

/// A net whose links take `one_way`, with every datagram logged.
fn new_net(seed: u64, one_way: Duration) -> Net {
    let mut net = Net::new(seed);
    net.link = Link { latency: one_way, ..Link::default() };
    net.sent_log = Some(Vec::new());
    net
}

/// [`new_net`] with two peers of default options, at 10.0.0.1 and 10.0.0.2.
fn two_peers(
    seed: u64,
    one_way: Duration,
    names: [&'static str; 2],
) -> (Net, (usize, ConnHandle), (usize, ConnHandle)) {
    let mut net = new_net(seed, one_way);
    let a = peer(&mut net, names[0], [10, 0, 0, 1], SocketOptions::default());
    let b = peer(&mut net, names[1], [10, 0, 0, 2], SocketOptions::default());
    (net, a, b)
}

/// Exchanges DTLS-SRTP descriptions (no `keys`) through `edit`, runs until
/// both sides are connected, and returns when each fired Connected,
/// measured from the moment both descriptions were set.
fn call(
    net: &mut Net,
    a: (usize, ConnHandle),
    b: (usize, ConnHandle),
    edit: impl Fn(&mut ConnectionDescription),
) -> [Duration; 2] {
    net.signal_with(a, b, |d| {
        d.keys.clear();
        edit(d);
    });
    let set = net.now;
    assert!(
        net.run_until(Duration::from_secs(5), |n| n.connected(a.0, a.1) && n.connected(b.0, b.1)),
        "both connected"
    );
    [a, b].map(|(host, conn)| {
        let at = net.hosts[host].when(conn, |e| *e == ConnectionEvent::Connected).expect("Connected");
        at - set
    })
}

/// The times at which `host` sent a new STUN Binding request (a new
/// transaction id; retransmissions left out), from the net's log.
fn new_checks(net: &Net, host: usize) -> Vec<Instant> {
    let mut seen: Vec<[u8; 12]> = Vec::new();
    let mut times = Vec::new();
    for (at, from, data) in net.sent_log.as_deref().unwrap_or_default() {
        if *from != host || data.len() < 20 || data[..2] != [0x00, 0x01] {
            continue;
        }
        let id: [u8; 12] = data[8..20].try_into().expect("transaction id");
        if !seen.contains(&id) {
            seen.push(id);
            times.push(*at);
        }
    }
    times
}

/// The shortest gap between two new checks of `host`, and how many it sent.
fn spacing(net: &Net, host: usize) -> (Option<Duration>, usize) {
    let t = new_checks(net, host);
    (t.windows(2).map(|w| w[1] - w[0]).min(), t.len())
}

/// No two new checks of either host closer than `ta`, and two exactly `ta`
/// apart: the controlling side's first check and its nominating one.
fn assert_paced(net: &Net, hosts: [usize; 2], ta: Duration) {
    let gaps = hosts.map(|h| spacing(net, h));
    assert!(gaps.iter().all(|(g, _)| g.is_none_or(|g| g >= ta)), "checks closer than {ta:?}: {gaps:?}");
    assert!(gaps.iter().any(|(g, _)| *g == Some(ta)), "no two checks {ta:?} apart: {gaps:?}");
}

/// Each side's description says `ice-pacing: 5`: rtc's default Ta.
#[test]
fn descriptions_carry_the_proposed_pacing() {
    let mut net = new_net(1, Duration::from_micros(100));
    let a = peer(&mut net, "alice", [10, 0, 0, 1], SocketOptions::default());
    let b = peer(&mut net, "bob", [10, 0, 0, 2], SocketOptions { ice_pacing: Some(20), ..SocketOptions::default() });
    let desc = |n: &Net, p: (usize, ConnHandle)| n.hosts[p.0].conn(p.1).description(Direction::Local).unwrap();
    assert_eq!(desc(&net, a).sockets[0].options.ice_pacing, Some(5));
    assert!(desc(&net, a).to_json().contains("\"ice-pacing\":5"));
    assert_eq!(desc(&net, b).sockets[0].options.ice_pacing, Some(20), "a socket's own choice is signaled");
    // Both use the larger proposal: 20 ms between checks on each side.
    call(&mut net, a, b, |_| {});
    assert_paced(&net, [a.0, b.0], Duration::from_millis(20));
}

/// Two rtc peers on a loopback-like link (0.1 ms each way): ICE checks 5 ms
/// apart (both signal 5), DTLS on the first valid pair while the
/// controlling agent waits one Ta to nominate. Media-ready in about 5 ms,
/// at most 15.
#[test]
fn two_rtc_peers_on_loopback_are_media_ready_within_15_ms() {
    let (mut net, a, b) = two_peers(2, Duration::from_micros(100), ["alice", "bob"]);
    let took = call(&mut net, a, b, |_| {});
    for t in took {
        assert!(t <= Duration::from_millis(15), "connected {t:?} after the descriptions");
        // One Ta (5 ms) before the nominating check: RFC 8445's pacing holds.
        assert!(t >= Duration::from_millis(5), "connected {t:?}: faster than one Ta");
    }
    assert_paced(&net, [a.0, b.0], Duration::from_millis(5));
}

/// A 100 ms round trip (50 ms each way): the check and its response take
/// one round trip, then the DTLS client (the controlled side) starts on
/// that valid pair while the controlling agent's nominating check travels;
/// the server answers the ClientHello at once (no cookie exchange over
/// ICE), so DTLS 1.2 keys the server after 1.5 more round trips and the
/// client after two. Media-ready 300 ms after the descriptions on the
/// slower side: within 3 RTT + 10 ms.
#[test]
fn a_100_ms_round_trip_is_media_ready_within_3_rtt_and_10_ms() {
    let (mut net, a, b) = two_peers(3, Duration::from_millis(50), ["alice", "bob"]);
    let took = call(&mut net, a, b, |_| {});
    let slower = took[0].max(took[1]);
    assert!(slower <= Duration::from_millis(310), "connected after {took:?}");
    // Nothing can be faster than ICE's round trip and DTLS 1.2's two.
    assert!(slower >= Duration::from_millis(300), "connected after {took:?}");
    let faster = took[0].min(took[1]);
    assert_eq!(faster, Duration::from_millis(250), "the DTLS server is keyed half a round trip earlier");
}

/// A peer whose description has no `ice-pacing` (a browser, or any stack
/// that does not signal it) counts as proposing RFC 8445's 50 ms: checks
/// towards it stay 50 ms apart, exactly today's behaviour, while the rtc
/// peer that read `ice-pacing: 5` from the other side paces at 5.
#[test]
fn a_peer_that_signals_no_pacing_gets_checks_50_ms_apart() {
    let (mut net, a, b) = two_peers(4, Duration::from_micros(100), ["alice", "bob"]);
    // Neither description says anything: both sides keep 50 ms.
    let took = call(&mut net, a, b, |d| {
        for s in &mut d.sockets {
            s.options.ice_pacing = None;
        }
    });
    assert_paced(&net, [a.0, b.0], Duration::from_millis(50));
    for t in took {
        assert!(t >= Duration::from_millis(50), "the nominating check waits 50 ms: connected after {t:?}");
    }

    // Only one description lacks it. The controlling agent (the smaller
    // context-id offers, RFC 8445 section 6.1.1) sends the nominating check
    // one Ta after its first: when it read nothing it waits 50 ms, when it
    // read the peer's 5 it waits 5 ms, whatever the other side read.
    for controlling_reads_nothing in [true, false] {
        let (mut net, a, b) = two_peers(5, Duration::from_micros(100), ["alice", "bob"]);
        let ufrag = |n: &Net, p: (usize, ConnHandle)| {
            n.hosts[p.0].conn(p.1).description(Direction::Local).unwrap().context_id.unwrap()
        };
        let (controlling, controlled) = if ufrag(&net, a) < ufrag(&net, b) { (a, b) } else { (b, a) };
        // The description the silent side sends: read by the other.
        let silent = if controlling_reads_nothing { controlled } else { controlling };
        for (from, to) in [(a, b), (b, a)] {
            net.signal_one(from, to, |d| {
                d.keys.clear();
                if from == silent {
                    d.sockets[0].options.ice_pacing = None;
                }
            })
            .expect("description");
        }
        let set = net.now;
        assert!(net.run_until(Duration::from_secs(5), |n| n.connected(a.0, a.1) && n.connected(b.0, b.1)));
        let checks = new_checks(&net, controlling.0);
        assert!(checks.len() >= 2, "the controlling side checks, then nominates: {checks:?}");
        let ta = if controlling_reads_nothing { 50 } else { 5 };
        assert_eq!(
            checks[1] - checks[0],
            Duration::from_millis(ta),
            "controlling_reads_nothing {controlling_reads_nothing}"
        );
        assert_eq!(new_checks(&net, controlled.0).len(), 1, "the controlled side's one check succeeded at once");
        let connected = net.hosts[controlling.0].when(controlling.1, |e| *e == ConnectionEvent::Connected).unwrap();
        assert!(connected - set >= Duration::from_millis(ta), "{:?}", connected - set);
    }
}

/// `ice-pacing` from the peer is checked before anything changes: above
/// 10 s refused with a typed error, the connection still usable; 0 is
/// taken as the 5 ms floor.
#[test]
fn a_huge_or_zero_ice_pacing_is_refused_or_clamped() {
    let (mut net, a, b) = two_peers(6, Duration::from_micros(100), ["alice", "bob"]);
    for huge in [10_001, u64::from(u32::MAX), u64::MAX] {
        let r = net.signal_one(a, b, |d| {
            d.keys.clear();
            d.sockets[0].options.ice_pacing = Some(huge);
        });
        assert!(matches!(r, Err(Error::InvalidDescription(_))), "{huge}: {r:?}");
        assert!(net.hosts[b.0].conn(b.1).description(Direction::Remote).is_none(), "nothing changed");
    }
    let took = call(&mut net, a, b, |d| d.sockets[0].options.ice_pacing = Some(0));
    assert_paced(&net, [a.0, b.0], Duration::from_millis(5));
    assert!(took.iter().all(|t| *t <= Duration::from_millis(15)), "{took:?}");
    // JSON: absent when none, a number when set, read back.
    let json = r#"{"mux":true,"ice-pacing":7}"#;
    let o: SocketOptions = serde_json::from_str(json).expect("options");
    assert_eq!(o.ice_pacing, Some(7));
    assert!(!serde_json::to_string(&SocketOptions::default()).unwrap().contains("ice-pacing"));
    assert!(serde_json::from_str::<SocketOptions>(r#"{"ice-pacing":-1}"#).is_err());
    assert!(serde_json::from_str::<SocketOptions>(r#"{"ice-pacing":"5"}"#).is_err());
}

/// The same over SDP offer/answer: offer and answer carry the session-level
/// `a=ice-pacing:5` (RFC 8839 section 5.5), so two rtc peers check 5 ms
/// apart and are media-ready within 15 ms.
#[test]
fn sdp_offer_and_answer_carry_ice_pacing() {
    use rtc_proto::SdpType;
    let (mut net, a, b) = two_peers(7, Duration::from_micros(100), ["offerer", "answerer"]);
    let now = net.now;
    let offer = net.hosts[a.0].conn(a.1).local_sdp().unwrap();
    net.conn_mut(b.0, b.1).set_remote_sdp(now, SdpType::Offer, &offer).unwrap();
    let answer = net.hosts[b.0].conn(b.1).local_sdp().unwrap();
    net.conn_mut(a.0, a.1).set_remote_sdp(now, SdpType::Answer, &answer).unwrap();
    for sdp in [&offer, &answer] {
        let session = &sdp[..sdp.find("\r\nm=").expect("a section")];
        assert!(session.contains("\r\na=ice-pacing:5\r\n") || session.ends_with("\r\na=ice-pacing:5"), "{sdp}");
        assert_eq!(sdp.matches("a=ice-pacing").count(), 1, "{sdp}");
    }
    assert!(net.run_until(Duration::from_secs(5), |n| n.connected(a.0, a.1) && n.connected(b.0, b.1)));
    assert!(net.elapsed() <= Duration::from_millis(15), "{:?}", net.elapsed());
    assert_paced(&net, [a.0, b.0], Duration::from_millis(5));
    // An offer without it (a browser's): the answerer's checks stay 50 ms
    // apart, and a bad value is refused.
    let (mut net, a, b) = two_peers(8, Duration::from_micros(100), ["offerer", "answerer"]);
    let now = net.now;
    let offer = net.hosts[a.0].conn(a.1).local_sdp().unwrap();
    for bad in ["a=ice-pacing:fast", "a=ice-pacing:12345678901", "a=ice-pacing:-5", "a=ice-pacing:99999"] {
        let r = net.conn_mut(b.0, b.1).set_remote_sdp(now, SdpType::Offer, &offer.replace("a=ice-pacing:5", bad));
        assert!(matches!(r, Err(Error::InvalidDescription(_))), "{bad}: {r:?}");
    }
    let silent = offer.replace("a=ice-pacing:5\r\n", "");
    net.conn_mut(b.0, b.1).set_remote_sdp(now, SdpType::Offer, &silent).unwrap();
    let answer = net.hosts[b.0].conn(b.1).local_sdp().unwrap();
    net.conn_mut(a.0, a.1).set_remote_sdp(now, SdpType::Answer, &answer).unwrap();
    assert!(net.run_until(Duration::from_secs(5), |n| n.connected(a.0, a.1) && n.connected(b.0, b.1)));
    // The offerer controls and read the answer's 5: it nominates after 5 ms.
    assert_eq!(spacing(&net, a.0).0, Some(Duration::from_millis(5)));
    assert!(spacing(&net, b.0).0.is_none_or(|g| g >= Duration::from_millis(50)), "{:?}", spacing(&net, b.0));
}

/// The answer reaches the offerer well after the answerer started checking
/// (signaling is slower than the direct path): the answerer's checks are
/// answered by an offerer that has no DTLS association yet, so the DTLS
/// client must not start on that valid pair until the offerer shows it
/// holds the answer (its own authenticated check); a ClientHello sent
/// earlier would be lost and wait a 1 s retransmission.
#[test]
fn a_late_answer_does_not_cost_a_dtls_retransmission() {
    use rtc_proto::SdpType;
    let (mut net, a, b) = two_peers(9, Duration::from_millis(10), ["offerer", "answerer"]);
    let now = net.now;
    let offer = net.hosts[a.0].conn(a.1).local_sdp().unwrap();
    net.conn_mut(b.0, b.1).set_remote_sdp(now, SdpType::Offer, &offer).unwrap();
    let answer = net.hosts[b.0].conn(b.1).local_sdp().unwrap();
    // The answer travels 100 ms; the answerer's checks 10.
    net.run_for(Duration::from_millis(100));
    let now = net.now;
    net.conn_mut(a.0, a.1).set_remote_sdp(now, SdpType::Answer, &answer).unwrap();
    let set = net.now;
    assert!(net.run_until(Duration::from_secs(5), |n| n.connected(a.0, a.1) && n.connected(b.0, b.1)));
    // From the answer: the offerer's first check reaches the answerer after
    // 10 ms, whose ClientHello then goes on its valid pair; the offerer is
    // keyed at 40 ms (also selected then), the answerer at 50: two and a
    // half round trips, not a 1 s retransmission.
    let took = net.now - set;
    assert!(took <= Duration::from_millis(60), "{took:?}");
}

/// Call setup survives loss: with 20% of every datagram lost (STUN and
/// DTLS too) on a 50 ms round trip, ICE and DTLS complete within 3 s in at
/// least 95% of 100 seeded runs.
#[test]
fn with_20_percent_loss_ice_and_dtls_complete_within_3_s_in_95_percent_of_runs() {
    const RUNS: u64 = 100;
    let mut took = Vec::new();
    for seed in 0..RUNS {
        let (mut net, a, b) = two_peers(500 + seed, Duration::from_millis(25), ["alice", "bob"]);
        net.sent_log = None;
        net.link.loss = 0.2;
        net.signal_with(a, b, |d| d.keys.clear());
        let set = net.now;
        let done = net.run_until(Duration::from_secs(10), |n| n.connected(a.0, a.1) && n.connected(b.0, b.1));
        took.push(done.then(|| net.now - set));
    }
    let within = took.iter().filter(|t| t.is_some_and(|t| t <= Duration::from_secs(3))).count();
    let mut ms: Vec<u128> = took.iter().map(|t| t.map_or(u128::MAX, |t| t.as_millis())).collect();
    ms.sort_unstable();
    println!("20% loss: {within} of {RUNS} connected within 3 s; times (ms): {ms:?}");
    assert!(within * 100 >= RUNS as usize * 95, "{within} of {RUNS} within 3 s: {ms:?}");
}
