//! Whole calls between `Endpoint`s in simulated time (tests/sim): ICE,
//! SDES or DTLS-SRTP keying, SRTP media both ways, RTCP, the seeds' events,
//! fork, ICE restart, consent expiry, bad input, loss, reordering and NAT.
//! No sockets and no sleeping: a 30-second consent expiry runs in
//! milliseconds.

mod sim;

use std::time::Duration;

use rtc_codecs::{Codec, Kind, Options, PayloadType};
use rtc_proto::{
    ConnHandle, ConnectionConfig, ConnectionDescription, ConnectionEvent, CryptoKey, Direction, Error, Event,
    SocketEvent, SocketOptions, StreamDescription, TrackDescription, TrackId, default_options,
};
use sim::Net;

/// A peer: host, connection, and its sent audio and video tracks.
#[derive(Clone, Copy)]
struct Peer {
    host: usize,
    conn: ConnHandle,
    audio: TrackId,
    video: TrackId,
}

impl Peer {
    fn at(self) -> (usize, ConnHandle) {
        (self.host, self.conn)
    }
}

fn peer_with(net: &mut Net, name: &'static str, ip: [u8; 4], options: SocketOptions, codecs: Option<Options>) -> Peer {
    peer_on(net, name, ip, options, codecs, rtc_dtls::Engine::Dimpl)
}

/// [`peer_with`] whose DTLS runs on `engine`.
fn peer_on(
    net: &mut Net,
    name: &'static str,
    ip: [u8; 4],
    options: SocketOptions,
    codecs: Option<Options>,
    engine: rtc_dtls::Engine,
) -> Peer {
    let host = net.host_on(name, ip, options, engine);
    let seed = 1000 + net.hosts.len() as u64;
    let conn = net.connect(host, ConnectionConfig::new(None, codecs), seed);
    let now = net.now;
    let stream = StreamDescription {
        stream_id: String::new(),
        tracks: vec![TrackDescription::new(Kind::Audio), TrackDescription::new(Kind::Video)],
    };
    let (_, tracks) = net.conn_mut(host, conn).send_stream(now, stream).expect("send stream");
    Peer { host, conn, audio: tracks[0], video: tracks[1] }
}

fn peer(net: &mut Net, name: &'static str, ip: [u8; 4]) -> Peer {
    peer_with(net, name, ip, SocketOptions::default(), None)
}

fn ssrc(net: &Net, p: Peer, t: TrackId) -> u32 {
    net.hosts[p.host].conn(p.conn).track_description(t).and_then(|d| d.ssrc).expect("ssrc")
}

fn both_connected(net: &mut Net, a: Peer, b: Peer, within: Duration) -> bool {
    net.run_until(within, |n| n.connected(a.host, a.conn) && n.connected(b.host, b.conn))
}

fn audio_frame(i: u32) -> Vec<u8> {
    let mut f: Vec<u8> = (0..160u32).map(|k| (k * 31 + i) as u8).collect();
    f[..4].copy_from_slice(&i.to_be_bytes());
    f
}

fn vp8_frame(i: u32, len: usize) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|k| (k as u32 ^ i) as u8).collect();
    f[0] = u8::from(!i.is_multiple_of(10)); // P bit: a key frame every 10
    f[1..5].copy_from_slice(&i.to_be_bytes());
    f
}

/// Both peers send `n` audio frames at 50/s and a 5000-octet VP8 frame
/// every other tick, in simulated time.
fn talk(net: &mut Net, peers: &[Peer], n: u32) {
    for i in 0..n {
        let now = net.now;
        for p in peers {
            let mut c = net.conn_mut(p.host, p.conn);
            assert_eq!(c.write_frame(now, p.audio, &audio_frame(i), Duration::from_millis(20)).expect("audio"), 1);
            if i.is_multiple_of(2) {
                // 5000 octets: five RTP packets (RFC 7741 fragmentation).
                let sent = c.write_frame(now, p.video, &vp8_frame(i / 2, 5000), Duration::from_millis(40));
                assert_eq!(sent.expect("video"), 5);
            }
        }
        net.run_for(Duration::from_millis(20));
    }
}

#[test]
fn a_call_connects_carries_media_both_ways_and_reports() {
    let mut net = Net::new(1);
    let a = peer(&mut net, "alice", [10, 0, 0, 1]);
    let b = peer(&mut net, "bob", [10, 0, 0, 2]);
    net.conn_mut(a.host, a.conn).set_report_interval(Duration::from_millis(300));
    net.signal(a.at(), b.at());
    assert!(both_connected(&mut net, a, b, Duration::from_secs(5)), "connected");
    let took = net.hosts[a.host].conn(a.conn).connected_after().expect("time to connected");
    assert!(took < Duration::from_millis(200), "{took:?}");
    talk(&mut net, &[a, b], 50);
    net.run_for(Duration::from_millis(200));
    for (from, to) in [(a, b), (b, a)] {
        let audio = net.hosts[to.host].frames_of(to.conn, ssrc(&net, from, from.audio));
        assert_eq!(audio.len(), 50);
        for (i, f) in audio.iter().enumerate() {
            assert_eq!(*f, audio_frame(i as u32), "audio frame {i}");
        }
        let video = net.hosts[to.host].frames_of(to.conn, ssrc(&net, from, from.video));
        assert_eq!(video.len(), 25);
        for (i, f) in video.iter().enumerate() {
            assert_eq!(*f, vp8_frame(i as u32, 5000), "video frame {i}");
        }
        let keys: Vec<bool> = net.hosts[to.host]
            .frames
            .iter()
            .filter(|(_, c, f, _)| *c == to.conn && f.ssrc == ssrc(&net, from, from.video))
            .map(|(_, _, f, _)| f.key_frame)
            .collect();
        assert_eq!(keys, (0..25).map(|i| i % 10 == 0).collect::<Vec<_>>());
    }
    // Statistics: what one side sent, the other received.
    let find = |r: &[rtc_proto::TrackReport], kind, dir| {
        r.iter().find(|x| x.kind == kind && x.direction == dir).expect("report").stats
    };
    let (sa, sb) = (net.hosts[a.host].conn(a.conn).stats(), net.hosts[b.host].conn(b.conn).stats());
    let sent = find(&sa, Kind::Video, Direction::Local);
    let recv = find(&sb, Kind::Video, Direction::Remote);
    assert_eq!((sent.packets_sent, recv.packets_received), (Some(125), Some(125)));
    assert_eq!(sent.bytes_sent, recv.bytes_received);
    assert_eq!(recv.packets_lost, 0);
    assert_eq!(find(&sb, Kind::Audio, Direction::Remote).bytes_received, Some(50 * 160));
    // RTCP: a round-trip time on each sent track after a few reports.
    net.run_for(Duration::from_secs(3));
    let rtt = find(&net.hosts[a.host].conn(a.conn).stats(), Kind::Audio, Direction::Local).round_trip_time;
    assert!(rtt.is_some_and(|r| (0.015..0.03).contains(&r)), "20 ms simulated round trip: {rtt:?}");
    // The candidate pairs: one selected, host to host, with the checks,
    // the round trip and the media that went over it.
    let selected = |p: Peer| {
        let pairs = net.hosts[p.host].conn(p.conn).candidate_pairs();
        let sel: Vec<_> = pairs.iter().filter(|x| x.selected).cloned().collect();
        assert_eq!(sel.len(), 1, "{pairs:#?}");
        sel[0].clone()
    };
    let (pa, pb) = (selected(a), selected(b));
    for (x, y) in [(&pa, &pb), (&pb, &pa)] {
        assert_eq!((x.local_candidate_type, x.remote_candidate_type, x.state), ("host", "host", "succeeded"));
        assert_eq!((x.local_address, x.remote_address), (y.remote_address, y.local_address));
        assert_eq!(x.relay_protocol, None);
        let (c, d) = (x.counters, y.counters);
        assert!(c.requests_sent >= 1 && c.responses_received >= 1 && c.requests_received >= 1, "{x:?}");
        let rtt = c.current_round_trip_time;
        assert_eq!(rtt, Some(Duration::from_millis(20)), "20 ms simulated round trip");
        // 50 audio and 125 video packets at least (and RTCP, DTLS none: SDES).
        assert!(c.packets_received >= 175 && c.packets_received <= d.packets_sent, "{x:?} / {y:?}");
        assert!(c.bytes_received > 50 * 160 + 25 * 5000 && c.bytes_received <= d.bytes_sent, "{x:?} / {y:?}");
    }
    let json = serde_json::to_value(&pa).unwrap();
    for key in ["socket-id", "localCandidateType", "requestsSent", "bytesReceived", "currentRoundTripTime"] {
        assert!(json.get(key).is_some(), "{key} in {json}");
    }
    assert_eq!(json["currentRoundTripTime"], 0.02);
    // The seeds' events, in order.
    let ev = net.hosts[a.host].conn_events(a.conn);
    let pos = |f: &dyn Fn(&ConnectionEvent) -> bool| ev.iter().position(f).expect("event");
    let connected = pos(&|e| *e == ConnectionEvent::Connected);
    let stream_up = pos(&|e| matches!(e, ConnectionEvent::StreamConnected { direction: Direction::Local, .. }));
    let remote_up = pos(&|e| matches!(e, ConnectionEvent::StreamConnected { direction: Direction::Remote, .. }));
    assert!(pos(&|e| matches!(e, ConnectionEvent::ActiveConnectionCandidate { .. })) < connected);
    assert!(connected < stream_up && stream_up < remote_up);
    assert!(ev.iter().filter(|e| matches!(e, ConnectionEvent::StreamReport { .. })).count() >= 5);
    let sock = net.hosts[a.host].socket_events();
    assert!(matches!(sock[0], SocketEvent::Candidate { .. }) && sock.contains(&SocketEvent::Connected));
    assert_eq!(net.hosts[a.host].conn(a.conn).dropped() + net.hosts[b.host].conn(b.conn).dropped(), 0);
    // Close: A's streams go down at once; B, keyed by SDES (no DTLS to say
    // goodbye), notices when consent expires (RFC 7675: 30 s).
    let closed_at = net.now;
    let now = net.now;
    net.conn_mut(a.host, a.conn).close(now);
    net.drain();
    let ev = net.hosts[a.host].conn_events(a.conn);
    let bc = net.hosts[b.host].conn(b.conn);
    let b_stream = bc.stream_description(bc.streams(Direction::Local)[0]).unwrap().stream_id;
    let tail = ConnectionEvent::StreamDisconnected { stream_id: b_stream, direction: Direction::Remote };
    assert_eq!(ev.last(), Some(&tail), "{ev:#?}");
    assert!(net.run_until(Duration::from_secs(40), |n| !n.connected(b.host, b.conn)));
    let gone = net.now - closed_at;
    assert!((Duration::from_secs(24)..Duration::from_secs(36)).contains(&gone), "{gone:?}");
    assert!(net.hosts[b.host].has(b.conn, |e| *e == ConnectionEvent::Disconnected));
}

/// A DTLS handshake that fails before keying (here every DTLS record is
/// lost for its whole retransmission budget while ICE stays up) is started
/// over with a fresh association, and keys the call once DTLS gets
/// through; the socket is not left unkeyed.
#[test]
fn a_dtls_handshake_that_failed_before_keying_is_started_over() {
    let mut net = Net::new(3);
    let a = peer(&mut net, "alice", [10, 0, 0, 1]);
    let b = peer(&mut net, "bob", [10, 0, 0, 2]);
    net.drop_if = Some(|d| (20..=63).contains(&d[0]));
    net.signal_dtls(a.at(), b.at());
    let start = net.now;
    // The client gives up once its retransmissions are spent (about 25 s
    // at this round trip), then starts again; DTLS gets through from 30 s.
    net.run_for(Duration::from_secs(30));
    assert!(!net.connected(a.host, a.conn) && !net.connected(b.host, b.conn));
    net.drop_if = None;
    assert!(both_connected(&mut net, a, b, Duration::from_secs(20)), "keyed after the restart");
    let took = net.now - start;
    assert!(took < Duration::from_secs(40), "{took:?}");
    for p in [a, b] {
        assert!(!net.hosts[p.host].socket_events().contains(&SocketEvent::Disconnected), "never left unkeyed");
    }
    talk(&mut net, &[a, b], 10);
    net.run_for(Duration::from_millis(200));
    assert_eq!(net.hosts[b.host].frames_of(b.conn, ssrc(&net, a, a.audio)).len(), 10);
}

/// RFC 5763/5764: no `keys` signaled, so each side runs a DTLS handshake
/// over the ICE path, checks the peer's certificate against its
/// fingerprint, and keys SRTP from the exported material; close() sends
/// close_notify and the peer stops at once.
#[test]
fn dtls_srtp_keys_the_call_and_close_notify_ends_it() {
    let mut net = Net::new(2);
    let a = peer(&mut net, "alice", [10, 0, 0, 1]);
    let b = peer(&mut net, "bob", [10, 0, 0, 2]);
    let fp =
        net.hosts[a.host].conn(a.conn).description(Direction::Local).unwrap().sockets[0].options.fingerprints.clone();
    assert!(fp.len() == 1 && fp[0].starts_with("sha-256 ") && fp[0].len() == 8 + 32 * 3 - 1, "{fp:?}");
    net.signal_dtls(a.at(), b.at());
    assert!(both_connected(&mut net, a, b, Duration::from_secs(5)));
    // The larger context-id is the DTLS client; each says so in `setup`.
    let setup = |p: Peer, n: &Net| {
        n.hosts[p.host].conn(p.conn).description(Direction::Local).unwrap().sockets[0].options.setup.clone()
    };
    let setups = [setup(a, &net), setup(b, &net)];
    assert!(setups.contains(&Some("active".into())) && setups.contains(&Some("passive".into())), "{setups:?}");
    talk(&mut net, &[a, b], 10);
    net.run_for(Duration::from_millis(100));
    for (from, to) in [(a, b), (b, a)] {
        assert_eq!(net.hosts[to.host].frames_of(to.conn, ssrc(&net, from, from.video)).len(), 5);
        assert_eq!(net.hosts[to.host].frames_of(to.conn, ssrc(&net, from, from.audio)).len(), 10);
    }
    let now = net.now;
    net.conn_mut(a.host, a.conn).close(now);
    assert!(net.run_until(Duration::from_secs(1), |n| !n.connected(b.host, b.conn)), "close_notify reached the peer");
    assert!(net.hosts[b.host].socket_events().contains(&SocketEvent::Disconnected));
    assert_eq!(net.hosts[a.host].conn(a.conn).dropped() + net.hosts[b.host].conn(b.conn).dropped(), 0);
}

/// The OpenSSL engine (feature `openssl`) against dimpl, OpenSSL taking
/// each DTLS role once: SRTP keyed, media both ways, close_notify ends it.
#[cfg(feature = "openssl")]
#[test]
fn dtls_srtp_on_openssl_against_dimpl_in_both_roles() {
    use rtc_dtls::Engine;
    let mut roles = Vec::new();
    for engines in [(Engine::OpenSsl, Engine::Dimpl), (Engine::Dimpl, Engine::OpenSsl)] {
        let mut net = Net::new(4);
        let a = peer_on(&mut net, "alice", [10, 0, 0, 1], SocketOptions::default(), None, engines.0);
        let b = peer_on(&mut net, "bob", [10, 0, 0, 2], SocketOptions::default(), None, engines.1);
        net.signal_dtls(a.at(), b.at());
        assert!(both_connected(&mut net, a, b, Duration::from_secs(5)), "{engines:?}");
        let openssl = if engines.0 == Engine::OpenSsl { a } else { b };
        let setup = net.hosts[openssl.host].conn(openssl.conn).description(Direction::Local).unwrap().sockets[0]
            .options
            .setup
            .clone();
        roles.push(setup);
        talk(&mut net, &[a, b], 10);
        net.run_for(Duration::from_millis(100));
        for (from, to) in [(a, b), (b, a)] {
            assert_eq!(net.hosts[to.host].frames_of(to.conn, ssrc(&net, from, from.video)).len(), 5, "{engines:?}");
            assert_eq!(net.hosts[to.host].frames_of(to.conn, ssrc(&net, from, from.audio)).len(), 10, "{engines:?}");
        }
        let now = net.now;
        net.conn_mut(openssl.host, openssl.conn).close(now);
        let other = if engines.0 == Engine::OpenSsl { b } else { a };
        assert!(net.run_until(Duration::from_secs(1), |n| !n.connected(other.host, other.conn)), "close_notify");
    }
    roles.sort();
    assert_eq!(roles, [Some("active".to_string()), Some("passive".to_string())], "OpenSSL took both DTLS roles");
}

/// A certificate that does not match the signaled fingerprint: no SRTP
/// keys, no Connected, and nothing can be sent.
#[test]
fn dtls_with_a_wrong_fingerprint_never_keys_srtp() {
    let mut net = Net::new(3);
    let a = peer(&mut net, "alice", [10, 0, 0, 1]);
    let b = peer(&mut net, "bob", [10, 0, 0, 2]);
    let wrong = format!("sha-256 {}", ["AB"; 32].join(":"));
    net.signal_with(a.at(), b.at(), |d| {
        d.keys.clear();
        for s in &mut d.sockets {
            s.options.fingerprints = vec![wrong.clone()];
        }
    });
    let failed = |n: &Net, p: Peer| n.hosts[p.host].socket_events().contains(&SocketEvent::Disconnected);
    assert!(net.run_until(Duration::from_secs(3), |n| failed(n, a) || failed(n, b)), "a socket reports the failure");
    net.run_for(Duration::from_secs(2));
    assert!(!net.connected(a.host, a.conn) && !net.connected(b.host, b.conn));
    let now = net.now;
    let e = net.conn_mut(a.host, a.conn).write_frame(now, a.audio, b"secret", Duration::from_millis(20)).unwrap_err();
    assert!(matches!(e, Error::NotConnected(_)), "{e}");
}

/// Opus and H.264 (constrained baseline) with the given packetization-mode.
fn h264_options(mode: &str) -> Options {
    let mut options = default_options();
    options.codecs.retain(|c| c.kind == Kind::Audio);
    let mut h264 = Codec::new(PayloadType::new(102).unwrap(), Kind::Video, "H264", 90_000, None);
    h264.parameters.insert("level-asymmetry-allowed", "1");
    h264.parameters.insert("packetization-mode", mode);
    h264.parameters.insert("profile-level-id", "42e01f");
    options.codecs.push(h264);
    options
}

/// A NAL unit of `len` octets with header `header`; no zero octets, so no
/// start code can appear inside it.
fn nal(header: u8, len: usize, seed: u32) -> Vec<u8> {
    let mut unit: Vec<u8> = (0..len as u32).map(|k| ((k * 31 + seed) % 255 + 1) as u8).collect();
    unit[0] = header;
    unit
}

fn annex_b(units: &[Vec<u8>]) -> Vec<u8> {
    units.iter().flat_map(|u| [0, 0, 0, 1].iter().chain(u)).copied().collect()
}

/// Writes each access unit (its octets, whether it is a key frame, how many
/// packets it must make) on `from`'s video track, one every 33 ms; returns
/// them with their key-frame flags.
fn send_access_units(
    net: &mut Net,
    from: Peer,
    units: impl Iterator<Item = (Vec<u8>, bool, usize)>,
) -> Vec<(Vec<u8>, bool)> {
    let mut sent = Vec::new();
    for (i, (frame, key, packets)) in units.enumerate() {
        let now = net.now;
        let n = net.conn_mut(from.host, from.conn).write_frame(now, from.video, &frame, Duration::from_millis(33));
        assert_eq!(n.unwrap(), packets, "access unit {i}");
        sent.push((frame, key));
        net.run_for(Duration::from_millis(33));
    }
    sent
}

/// The frames of `from`'s video track that `to` received, with their
/// key-frame flags.
fn video_received(net: &Net, from: Peer, to: Peer) -> Vec<(Vec<u8>, bool)> {
    let video = ssrc(net, from, from.video);
    let frames = net.hosts[to.host].frames.iter().filter(|(_, c, f, _)| *c == to.conn && f.ssrc == video);
    frames.map(|(_, _, f, d)| (d.clone(), f.key_frame)).collect()
}

/// RFC 6184: SPS and PPS aggregated in one STAP-A, long slices in FU-A
/// fragments, short ones alone; every access unit arrives byte for byte
/// with the right key-frame flag; AVCC input is refused.
#[test]
fn h264_access_units_cross_in_rfc_6184_packets() {
    let mut net = Net::new(4);
    let a = peer_with(&mut net, "alice", [10, 0, 0, 1], SocketOptions::default(), Some(h264_options("1")));
    let b = peer_with(&mut net, "bob", [10, 0, 0, 2], SocketOptions::default(), Some(h264_options("1")));
    net.signal(a.at(), b.at());
    assert!(both_connected(&mut net, a, b, Duration::from_secs(5)));
    assert!(net.hosts[a.host].conn(a.conn).agreement().unwrap().codecs.iter().any(|c| c.name == "H264"));
    // Every fourth unit a key frame: SPS and PPS (one STAP-A) and a
    // 5000-octet IDR slice (five FU-A fragments); the others a 40-octet SEI
    // (alone: it does not fit with the slice) and a 1500-octet slice (two
    // fragments).
    let units = (0..12u32).map(|i| match i % 4 {
        0 => (annex_b(&[nal(0x67, 12, i), nal(0x68, 4, i), nal(0x65, 5000, i)]), true, 6),
        _ => (annex_b(&[nal(0x06, 40, i), nal(0x41, 1500, i)]), false, 3),
    });
    let sent = send_access_units(&mut net, a, units);
    let now = net.now;
    let avcc = [0, 0, 0x0f, 0xa0, 0x65, 1, 2];
    let refused = net.conn_mut(a.host, a.conn).write_frame(now, a.video, &avcc, Duration::from_millis(33));
    assert!(matches!(refused, Err(Error::InvalidFrame(_))), "{refused:?}");
    net.run_for(Duration::from_millis(100));
    assert_eq!(video_received(&net, a, b), sent);
    assert_eq!(net.hosts[b.host].conn(b.conn).dropped(), 0);
}

/// RFC 7798: H.265 between two connections: VPS, SPS and PPS aggregated in
/// one AP, long slices in FUs, short units alone; every access unit arrives
/// byte for byte, IRAP pictures (IDR_W_RADL) flagged as key frames.
#[test]
fn h265_access_units_cross_in_rfc_7798_packets() {
    let h265_options = || {
        let mut options = default_options();
        options.codecs.retain(|c| c.kind == Kind::Audio);
        let mut h265 = Codec::new(PayloadType::new(49).unwrap(), Kind::Video, "H265", 90_000, None);
        h265.parameters.insert("level-id", "93");
        h265.parameters.insert("profile-id", "1");
        h265.parameters.insert("tier-flag", "0");
        h265.parameters.insert("tx-mode", "SRST");
        options.codecs.push(h265);
        options
    };
    // Two-octet headers: type in bits 1 to 6 of the first, TemporalId + 1
    // in the low bits of the second (the generated body never has a zero).
    let unit = |nal_type: u8, len: usize, seed: u32| {
        let mut u = nal(nal_type << 1, len, seed);
        u[1] = 1;
        u
    };
    let mut net = Net::new(17);
    let a = peer_with(&mut net, "alice", [10, 0, 0, 1], SocketOptions::default(), Some(h265_options()));
    let b = peer_with(&mut net, "bob", [10, 0, 0, 2], SocketOptions::default(), Some(h265_options()));
    net.signal(a.at(), b.at());
    assert!(both_connected(&mut net, a, b, Duration::from_secs(5)));
    assert!(net.hosts[a.host].conn(a.conn).agreement().unwrap().codecs.iter().any(|c| c.name == "H265"));
    // Every fourth access unit a key frame: VPS, SPS and PPS (one AP) and
    // a 5000-octet IDR_W_RADL slice (five FUs); the others a 40-octet
    // prefix SEI (alone) and a 1500-octet TRAIL_R slice (two FUs).
    let units = (0..12u32).map(|i| match i % 4 {
        0 => (annex_b(&[unit(32, 20, i), unit(33, 40, i), unit(34, 8, i), unit(19, 5000, i)]), true, 6),
        _ => (annex_b(&[unit(39, 40, i), unit(1, 1500, i)]), false, 3),
    });
    let sent = send_access_units(&mut net, a, units);
    net.run_for(Duration::from_millis(100));
    assert_eq!(video_received(&net, a, b), sent);
    assert_eq!(net.hosts[b.host].conn(b.conn).dropped(), 0);
}

/// With packetization-mode 0 a NAL unit must fit one packet: a frame with a
/// longer one is refused before any of it is queued.
#[test]
fn h264_mode_0_refuses_long_units_before_sending() {
    let mut net = Net::new(5);
    let a = peer_with(&mut net, "alice", [10, 0, 0, 1], SocketOptions::default(), Some(h264_options("0")));
    let b = peer_with(&mut net, "bob", [10, 0, 0, 2], SocketOptions::default(), Some(h264_options("0")));
    net.signal(a.at(), b.at());
    assert!(both_connected(&mut net, a, b, Duration::from_secs(5)));
    let key = annex_b(&[nal(0x67, 12, 0), nal(0x68, 4, 0), nal(0x65, 5000, 0)]);
    let now = net.now;
    let refused = net.conn_mut(a.host, a.conn).write_frame(now, a.video, &key, Duration::from_millis(33));
    assert!(matches!(refused, Err(Error::NotSupported(_))), "{refused:?}");
    let small = annex_b(&[nal(0x67, 12, 1), nal(0x68, 4, 1), nal(0x65, 900, 1)]);
    // Mode 0 has no aggregation: three single NAL unit packets.
    assert_eq!(net.conn_mut(a.host, a.conn).write_frame(now, a.video, &small, Duration::from_millis(33)).unwrap(), 3);
    net.run_for(Duration::from_millis(100));
    assert_eq!(net.hosts[b.host].frames_of(b.conn, ssrc(&net, a, a.video)), vec![small.as_slice()]);
}

/// An ICE restart (RFC 8445 section 9) through descriptions: A takes new
/// credentials; media keeps the old path until the peer restarts too and a
/// new pair is selected.
#[test]
fn ice_restart_through_descriptions_keeps_media_flowing() {
    let mut net = Net::new(6);
    let a = peer(&mut net, "alice", [10, 0, 0, 1]);
    let b = peer(&mut net, "bob", [10, 0, 0, 2]);
    net.signal(a.at(), b.at());
    assert!(both_connected(&mut net, a, b, Duration::from_secs(5)));
    let old_b = net.hosts[b.host].conn(b.conn).context_id().to_owned();
    let now = net.now;
    let mut d = net.hosts[a.host].conn(a.conn).description(Direction::Local).unwrap();
    d.context_id = Some("restart1".into());
    d.secret = Some("aNewSecretOf26CharsAbcdef".into());
    net.conn_mut(a.host, a.conn).set_description(now, d, Direction::Local).unwrap();
    assert_eq!(net.hosts[a.host].conn(a.conn).context_id(), "restart1");
    // The peer does not know yet: media goes over the old path meanwhile.
    assert_eq!(
        net.conn_mut(a.host, a.conn).write_frame(now, a.video, &vp8_frame(0, 3000), Duration::from_millis(40)).unwrap(),
        3
    );
    net.run_for(Duration::from_millis(50));
    let actives = |n: &Net, p: Peer| {
        n.hosts[p.host]
            .conn_events(p.conn)
            .iter()
            .filter(|e| matches!(e, ConnectionEvent::ActiveConnectionCandidate { .. }))
            .count()
    };
    let before = (actives(&net, a), actives(&net, b));
    net.signal(a.at(), b.at());
    assert_ne!(net.hosts[b.host].conn(b.conn).context_id(), old_b, "the peer restarted with new credentials");
    assert!(net.run_until(Duration::from_secs(5), |n| actives(n, a) > before.0 && actives(n, b) > before.1));
    let now = net.now;
    assert_eq!(
        net.conn_mut(a.host, a.conn).write_frame(now, a.video, &vp8_frame(1, 3000), Duration::from_millis(40)).unwrap(),
        3
    );
    net.run_for(Duration::from_millis(100));
    let got = net.hosts[b.host].frames_of(b.conn, ssrc(&net, a, a.video));
    assert_eq!(got, vec![vp8_frame(0, 3000).as_slice(), vp8_frame(1, 3000).as_slice()]);
    assert!(net.connected(a.host, a.conn) && net.connected(b.host, b.conn));
}

#[test]
fn bad_remote_input_is_refused_and_the_connection_stays_usable() {
    let mut net = Net::new(7);
    let a = peer(&mut net, "alice", [10, 0, 0, 1]);
    let b = peer(&mut net, "bob", [10, 0, 0, 2]);
    let good = net.hosts[b.host].conn(b.conn).description(Direction::Local).unwrap();
    let mut refuse = |d: ConnectionDescription, what: &str| {
        let now = net.now;
        net.conn_mut(a.host, a.conn).set_description(now, d, Direction::Remote).expect_err(what).to_string()
    };
    let mut d = good.clone();
    d.keys.clear();
    for s in &mut d.sockets {
        s.options.fingerprints.clear();
    }
    assert!(refuse(d, "neither keys nor fingerprints").contains("unprotected"));
    let mut d = good.clone();
    d.keys = vec![CryptoKey::parse("1 AES_CM_128_HMAC_SHA1_80 inline:AAAA").unwrap()];
    assert!(refuse(d, "short key").contains("wrong length"));
    let mut d = good.clone();
    d.secret = Some("short".into());
    assert!(refuse(d, "bad secret").contains("secret"));
    let mut d = good.clone();
    d.keys = vec![CryptoKey::parse("1 NULL_CIPHER inline:AAAA").unwrap()];
    assert!(refuse(d, "unknown suite").contains("in common"));
    let mut d = good.clone();
    d.streams = (0..100)
        .map(|i| StreamDescription {
            stream_id: format!("s{i}"),
            tracks: vec![TrackDescription { ssrc: Some(i + 1), ..TrackDescription::new(Kind::Audio) }],
        })
        .collect();
    assert!(refuse(d, "too many streams").contains("more remote streams"));
    assert!(
        net.hosts[a.host].conn(a.conn).description(Direction::Remote).is_none(),
        "a refused description changed nothing"
    );
    // A candidate the agent cannot use is refused with its reason.
    let tcp = rtc_candidate::Candidate::parse("candidate:1 1 tcp 2130706431 10.0.0.2 9 typ host").unwrap();
    let now = net.now;
    let socket = net.socket(a.host);
    let e = net.conn_mut(a.host, a.conn).add_remote_candidate(now, socket, &tcp).unwrap_err();
    assert!(matches!(e, Error::InvalidCandidate(_)), "{e}");
    // Garbage datagrams are dropped and counted, never a panic.
    let local = *net.hosts[a.host].addrs.keys().next().unwrap();
    for junk in [&[][..], &[0], &[0x80; 40], &[22; 13], &[0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42]] {
        let mut j = junk.to_vec();
        let now = net.now;
        let _ =
            net.hosts[a.host].endpoint.handle_datagram(now, socket, local, "10.0.0.2:40001".parse().unwrap(), &mut j);
    }
    // Still usable: the good description connects and media flows.
    net.signal(a.at(), b.at());
    assert!(both_connected(&mut net, a, b, Duration::from_secs(5)));
    let now = net.now;
    net.conn_mut(a.host, a.conn).write_frame(now, a.audio, b"hello", Duration::from_millis(20)).unwrap();
    net.run_for(Duration::from_millis(50));
    assert_eq!(net.hosts[b.host].frames_of(b.conn, ssrc(&net, a, a.audio)), vec![&b"hello"[..]]);
}

#[test]
fn without_mux_two_components_connect_and_each_direction_uses_the_senders_suite() {
    let cm80 = SocketOptions {
        mux: false,
        keys: vec![CryptoKey::suite(1, "AES_CM_128_HMAC_SHA1_80"), CryptoKey::suite(2, "AEAD_AES_128_GCM")],
        ..SocketOptions::default()
    };
    let gcm = SocketOptions {
        keys: vec![CryptoKey::suite(1, "AEAD_AES_128_GCM"), CryptoKey::suite(2, "AES_CM_128_HMAC_SHA1_80")],
        ..cm80.clone()
    };
    let mut net = Net::new(8);
    let a = peer_with(&mut net, "alice", [10, 0, 0, 1], cm80, None);
    let b = peer_with(&mut net, "bob", [10, 0, 0, 2], gcm, None);
    assert_eq!(net.hosts[a.host].addrs.len(), 2);
    let da = net.hosts[a.host].conn(a.conn).description(Direction::Local).unwrap();
    assert_eq!(
        da.keys.iter().map(|k| k.crypto_suite.as_str()).collect::<Vec<_>>(),
        ["AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM"]
    );
    net.signal(a.at(), b.at());
    assert!(both_connected(&mut net, a, b, Duration::from_secs(5)));
    talk(&mut net, &[a, b], 10);
    // Idle after the talk: reports come at the fixed minimum (up to 6.2 s).
    net.run_for(Duration::from_secs(8));
    for (from, to) in [(a, b), (b, a)] {
        assert_eq!(net.hosts[to.host].frames_of(to.conn, ssrc(&net, from, from.audio)).len(), 10);
    }
    // RTCP went over component 2: a round-trip time came back.
    let stats = net.hosts[a.host].conn(a.conn).stats();
    assert!(stats.iter().any(|r| r.direction == Direction::Local && r.stats.round_trip_time.is_some()));
}

/// Fork: one caller's connection and its fork share a socket and its
/// local ufrag; each reaches its own callee, with SDES or DTLS keys.
#[test]
fn fork_reaches_two_callees_over_the_same_socket() {
    fork_case(false);
}

#[test]
fn fork_with_dtls_srtp_keys_each_callee_separately() {
    fork_case(true);
}

fn fork_case(dtls: bool) {
    let mut net = Net::new(9);
    let caller = peer(&mut net, "caller", [10, 0, 0, 1]);
    let now = net.now;
    let fork = net.hosts[caller.host].endpoint.fork(now, caller.conn).unwrap();
    let (dc, df) = {
        let ep = &net.hosts[caller.host].endpoint;
        (
            ep.connection(caller.conn).unwrap().description(Direction::Local).unwrap(),
            ep.connection(fork).unwrap().description(Direction::Local).unwrap(),
        )
    };
    assert_eq!((&dc.cname, &dc.context_id, &dc.secret), (&df.cname, &df.context_id, &df.secret));
    assert_ne!(dc.keys, df.keys, "a fork never encrypts with the caller's keys");
    assert!(df.streams.is_empty());
    let stream = StreamDescription { stream_id: String::new(), tracks: vec![TrackDescription::new(Kind::Audio)] };
    let (_, t) = net.conn_mut(caller.host, fork).send_stream(now, stream).unwrap();
    let fork_peer = Peer { host: caller.host, conn: fork, audio: t[0], video: t[0] };
    let b = peer(&mut net, "b", [10, 0, 0, 2]);
    let c = peer(&mut net, "c", [10, 0, 0, 3]);
    if dtls {
        net.signal_dtls(caller.at(), b.at());
        net.signal_dtls(fork_peer.at(), c.at());
    } else {
        net.signal(caller.at(), b.at());
        net.signal(fork_peer.at(), c.at());
    }
    assert!(
        net.run_until(Duration::from_secs(5), |n| [caller, fork_peer, b, c]
            .iter()
            .all(|p| n.connected(p.host, p.conn)))
    );
    let now = net.now;
    for (p, what) in [(caller, &b"to b"[..]), (fork_peer, b"to c"), (b, b"from b"), (c, b"from c")] {
        net.conn_mut(p.host, p.conn).write_frame(now, p.audio, what, Duration::from_millis(20)).unwrap();
    }
    net.run_for(Duration::from_millis(50));
    assert_eq!(net.hosts[b.host].frames_of(b.conn, ssrc(&net, caller, caller.audio)), vec![&b"to b"[..]]);
    assert_eq!(net.hosts[c.host].frames_of(c.conn, ssrc(&net, fork_peer, fork_peer.audio)), vec![&b"to c"[..]]);
    assert_eq!(net.hosts[caller.host].frames_of(caller.conn, ssrc(&net, b, b.audio)), vec![&b"from b"[..]]);
    assert_eq!(net.hosts[caller.host].frames_of(fork, ssrc(&net, c, c.audio)), vec![&b"from c"[..]]);
    // Each side received only its own peer's media, and nothing was
    // misrouted or dropped.
    let ep = &net.hosts[caller.host].endpoint;
    assert_eq!(ep.connection(caller.conn).unwrap().streams(Direction::Remote).len(), 1);
    assert_eq!(ep.connection(fork).unwrap().streams(Direction::Remote).len(), 1);
    assert_eq!(ep.connection(caller.conn).unwrap().dropped() + ep.connection(fork).unwrap().dropped(), 0);
    assert_eq!(ep.unrouted(net.socket(caller.host)), 0);
    // Only the socket's first connection reports its candidates.
    let candidates = net.hosts[caller.host]
        .events
        .iter()
        .filter(|(_, _, e)| matches!(e, Event::Socket { event: SocketEvent::Candidate { .. }, .. }));
    assert!(candidates.clone().all(|(_, h, _)| *h == caller.conn) && candidates.count() == 1);
    // Closing the fork keeps the shared socket working for the caller.
    net.conn_mut(caller.host, fork).close(now);
    net.run_for(Duration::from_millis(50));
    let now = net.now;
    net.conn_mut(caller.host, caller.conn).write_frame(now, caller.audio, b"still", Duration::from_millis(20)).unwrap();
    net.run_for(Duration::from_millis(50));
    assert_eq!(net.hosts[b.host].frames_of(b.conn, ssrc(&net, caller, caller.audio)).last(), Some(&&b"still"[..]));
}

#[test]
fn contributors_stream_events_receive_stream_and_remove_track() {
    let mut net = Net::new(10);
    let a = peer(&mut net, "alice", [10, 0, 0, 1]);
    let b = peer(&mut net, "bob", [10, 0, 0, 2]);
    net.signal(a.at(), b.at());
    assert!(both_connected(&mut net, a, b, Duration::from_secs(5)));
    assert!(net.conn_mut(a.host, a.conn).set_contributors(a.audio, &[0; 16]).is_err());
    net.conn_mut(a.host, a.conn).set_contributors(a.audio, &[11, 22]).unwrap();
    let now = net.now;
    net.conn_mut(a.host, a.conn).write_frame(now, a.audio, b"mixed", Duration::from_millis(20)).unwrap();
    net.run_for(Duration::from_millis(50));
    let contributors = |n: &Net| -> Vec<Vec<u32>> {
        n.hosts[b.host]
            .conn_events(b.conn)
            .into_iter()
            .filter_map(|e| match e {
                ConnectionEvent::TrackContributors { contributors, .. } => Some(contributors),
                _ => None,
            })
            .collect()
    };
    assert_eq!(contributors(&net), vec![vec![11, 22]]);
    net.conn_mut(a.host, a.conn).set_contributors(a.audio, &[]).unwrap();
    let now = net.now;
    net.conn_mut(a.host, a.conn).write_frame(now, a.audio, b"solo", Duration::from_millis(20)).unwrap();
    net.run_for(Duration::from_millis(50));
    assert_eq!(contributors(&net), vec![vec![11, 22], vec![]]);
    // Receiving turned off and on.
    let remote = {
        let c = net.hosts[b.host].conn(b.conn);
        c.stream_description(c.streams(Direction::Remote)[0]).unwrap()
    };
    net.conn_mut(b.host, b.conn).receive_stream(&remote, false).unwrap();
    let now = net.now;
    net.conn_mut(a.host, a.conn).write_frame(now, a.audio, b"dropped", Duration::from_millis(20)).unwrap();
    net.run_for(Duration::from_millis(50));
    net.conn_mut(b.host, b.conn).receive_stream(&remote, true).unwrap();
    let now = net.now;
    net.conn_mut(a.host, a.conn).write_frame(now, a.audio, b"delivered", Duration::from_millis(20)).unwrap();
    net.run_for(Duration::from_millis(50));
    let got = net.hosts[b.host].frames_of(b.conn, ssrc(&net, a, a.audio));
    assert_eq!(got, vec![&b"mixed"[..], b"solo", b"delivered"]);
    // Removing a sent track says so and stops it.
    let now = net.now;
    net.conn_mut(a.host, a.conn).remove_track(now, a.video);
    net.drain();
    assert!(matches!(
        net.hosts[a.host].conn_events(a.conn).last(),
        Some(ConnectionEvent::TrackDisconnected { direction: Direction::Local, .. })
    ));
    assert!(net.conn_mut(a.host, a.conn).write_frame(now, a.video, b"x", Duration::from_millis(20)).is_err());
    // Stopping the stream fires its events.
    let s = net.hosts[a.host].conn(a.conn).streams(Direction::Local)[0];
    net.conn_mut(a.host, a.conn).stop_stream(now, s);
    net.drain();
    assert!(matches!(
        net.hosts[a.host].conn_events(a.conn).last(),
        Some(ConnectionEvent::StreamDisconnected { direction: Direction::Local, .. })
    ));
}

#[test]
fn calls_signaled_in_sdp_with_sdes_and_with_dtls() {
    for dtls in [false, true] {
        let mut net = Net::new(11);
        let a = peer(&mut net, "alice", [10, 0, 0, 1]);
        let b = peer(&mut net, "bob", [10, 0, 0, 2]);
        let mut setups = Vec::new();
        for (from, to) in [(a, b), (b, a)] {
            let c = net.hosts[from.host].conn(from.conn);
            let mut local = c.description(Direction::Local).unwrap();
            if dtls {
                local.keys.clear();
            }
            let sdp = local.to_sdp(c.options(Direction::Local).unwrap()).unwrap();
            assert_eq!(sdp.contains("a=crypto:"), !dtls, "{sdp}");
            if dtls {
                setups.push(sdp.lines().find(|l| l.starts_with("a=setup:")).unwrap().to_owned());
            }
            let (d, options) = ConnectionDescription::from_sdp(&sdp).unwrap();
            let now = net.now;
            let mut c = net.conn_mut(to.host, to.conn);
            c.set_options(options, Direction::Remote).unwrap();
            c.set_description(now, d, Direction::Remote).unwrap();
        }
        if dtls {
            assert_eq!(setups, ["a=setup:actpass", "a=setup:active"]);
        }
        assert!(both_connected(&mut net, a, b, Duration::from_secs(5)), "dtls: {dtls}");
        let now = net.now;
        net.conn_mut(a.host, a.conn).write_frame(now, a.video, &vp8_frame(0, 3000), Duration::from_millis(33)).unwrap();
        net.conn_mut(b.host, b.conn).write_frame(now, b.video, &vp8_frame(1, 3000), Duration::from_millis(33)).unwrap();
        net.run_for(Duration::from_millis(50));
        assert_eq!(net.hosts[b.host].frames_of(b.conn, ssrc(&net, a, a.video)), vec![vp8_frame(0, 3000).as_slice()]);
        assert_eq!(net.hosts[a.host].frames_of(a.conn, ssrc(&net, b, b.video)), vec![vp8_frame(1, 3000).as_slice()]);
    }
}

/// Each sent stream's first packet is preceded by an SR for its SSRC, so a
/// receiver knows the source from RTCP first (GStreamer's rtpsession
/// otherwise reports one packet more received than expected, a negative
/// loss). Read off the wire: SRTP and SRTCP leave those SSRCs in the clear.
#[test]
fn a_sender_report_announces_each_stream_before_its_first_packet() {
    let mut net = Net::new(14);
    let a = peer(&mut net, "alice", [10, 0, 0, 1]);
    let b = peer(&mut net, "bob", [10, 0, 0, 2]);
    net.signal(a.at(), b.at());
    assert!(both_connected(&mut net, a, b, Duration::from_secs(5)));
    net.sent_log = Some(Vec::new());
    talk(&mut net, &[a, b], 3);
    net.run_for(Duration::from_millis(100));
    let log = net.sent_log.take().unwrap();
    for t in [a.audio, a.video] {
        let ssrc = ssrc(&net, a, t).to_be_bytes();
        let from_alice = log.iter().filter(|(_, h, d)| *h == a.host && d.len() >= 12 && d[0] >> 6 == 2);
        let first_rtp = from_alice.clone().position(|(_, _, d)| !(192..=223).contains(&d[1]) && d[8..12] == ssrc);
        let first_sr = from_alice.clone().position(|(_, _, d)| d[1] == 200 && d[4..8] == ssrc);
        let (Some(rtp), Some(sr)) = (first_rtp, first_sr) else { panic!("{t:?}: RTP {first_rtp:?}, SR {first_sr:?}") };
        assert!(sr < rtp, "{t:?}: the SR (datagram {sr}) comes before the first packet (datagram {rtp})");
        let sr_count = from_alice.filter(|(_, _, d)| d[1] == 200 && d[4..8] == ssrc).count();
        assert!(sr_count <= 2, "{t:?}: one announcement, not one per frame ({sr_count} SRs)");
    }
}

/// A section that sends without `a=ssrc` lines (JSEP makes them optional;
/// GStreamer's webrtcbin leaves them out of its audio section): the track
/// `a=msid` names is announced without an SSRC and takes the first
/// unannounced one of its kind, so frames and events belong to it rather
/// than to a stream made up for an unknown SSRC.
#[test]
fn a_section_without_ssrc_lines_takes_the_first_ssrc_of_its_kind() {
    let mut net = Net::new(13);
    let a = peer(&mut net, "alice", [10, 0, 0, 1]);
    let b = peer(&mut net, "bob", [10, 0, 0, 2]);
    for (from, to) in [(a, b), (b, a)] {
        let c = net.hosts[from.host].conn(from.conn);
        let mut sdp = c.description(Direction::Local).unwrap().to_sdp(c.options(Direction::Local).unwrap()).unwrap();
        if from.host == a.host {
            sdp = sdp.split_inclusive("\r\n").filter(|l| !l.starts_with("a=ssrc")).collect();
            assert!(sdp.contains("a=msid:"), "{sdp}");
        }
        let (d, options) = ConnectionDescription::from_sdp(&sdp).unwrap();
        let tracks: Vec<_> = d.streams.iter().flat_map(|s| &s.tracks).collect();
        assert_eq!(tracks.len(), 2);
        assert_eq!(tracks.iter().all(|t| t.ssrc.is_none()), from.host == a.host, "{tracks:?}");
        let now = net.now;
        let mut c = net.conn_mut(to.host, to.conn);
        c.set_options(options, Direction::Remote).unwrap();
        c.set_description(now, d, Direction::Remote).unwrap();
    }
    assert!(both_connected(&mut net, a, b, Duration::from_secs(5)));
    let now = net.now;
    net.conn_mut(a.host, a.conn).write_frame(now, a.video, &vp8_frame(0, 3000), Duration::from_millis(33)).unwrap();
    net.conn_mut(a.host, a.conn).write_frame(now, a.audio, &audio_frame(0), Duration::from_millis(20)).unwrap();
    net.run_for(Duration::from_millis(50));
    let bc = net.hosts[b.host].conn(b.conn);
    let remote = bc.streams(Direction::Remote);
    assert_eq!(remote.len(), 1, "no stream made up for an unknown SSRC");
    let desc = bc.stream_description(remote[0]).unwrap();
    let (audio, video) = (ssrc(&net, a, a.audio), ssrc(&net, a, a.video));
    let by_kind = |k: Kind| desc.tracks.iter().find(|t| t.kind == k).and_then(|t| t.ssrc);
    assert_eq!((by_kind(Kind::Audio), by_kind(Kind::Video)), (Some(audio), Some(video)), "{desc:?}");
    assert_eq!(net.hosts[b.host].frames_of(b.conn, video), vec![vp8_frame(0, 3000).as_slice()]);
    assert_eq!(net.hosts[b.host].frames_of(b.conn, audio), vec![audio_frame(0).as_slice()]);
    let alice = net.hosts[a.host].conn(a.conn);
    let sent = alice.stream_description(alice.streams(Direction::Local)[0]).unwrap();
    let connected: Vec<String> = net.hosts[b.host]
        .conn_events(b.conn)
        .into_iter()
        .filter_map(|e| match e {
            ConnectionEvent::TrackConnected { track_id, direction: Direction::Remote, .. } => Some(track_id),
            _ => None,
        })
        .collect();
    let mut want: Vec<String> = sent.tracks.iter().map(|t| t.track_id.clone()).collect();
    let mut got = connected.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want, "the announced tracks connected, by the names a=msid gave");
}

/// RFC 7675: when the network is cut, consent expires after 30 s on both
/// sides and every stream goes down; simulated, so it takes milliseconds.
#[test]
fn consent_expires_when_the_link_is_cut() {
    let mut net = Net::new(12);
    let a = peer(&mut net, "alice", [10, 0, 0, 1]);
    let b = peer(&mut net, "bob", [10, 0, 0, 2]);
    net.signal(a.at(), b.at());
    assert!(both_connected(&mut net, a, b, Duration::from_secs(5)));
    talk(&mut net, &[a, b], 5);
    net.cut = true;
    let cut_at = net.now;
    assert!(net.run_until(Duration::from_secs(60), |n| !n.connected(a.host, a.conn) && !n.connected(b.host, b.conn)));
    let took = net.now - cut_at;
    assert!((Duration::from_secs(24)..Duration::from_secs(37)).contains(&took), "{took:?}");
    for p in [a, b] {
        let ev = net.hosts[p.host].conn_events(p.conn);
        assert!(ev.contains(&ConnectionEvent::Disconnected));
        assert!(
            ev.iter().any(|e| matches!(e, ConnectionEvent::TrackDisconnected { direction: Direction::Remote, .. }))
        );
        assert!(net.hosts[p.host].socket_events().contains(&SocketEvent::Disconnected));
    }
    let now = net.now;
    let e = net.conn_mut(a.host, a.conn).write_frame(now, a.audio, b"x", Duration::from_millis(20)).unwrap_err();
    assert!(matches!(e, Error::NotConnected(_)));
}

/// A lossy, reordering network with one side behind a NAT: ICE finds the
/// peer-reflexive path, DTLS retransmits through the loss, and audio
/// mostly arrives (there is no retransmission of media yet).
#[test]
fn loss_reordering_and_nat() {
    let mut net = Net::new(13);
    net.link.loss = 0.1;
    net.link.jitter = Duration::from_millis(30);
    let a = peer(&mut net, "alice", [192, 168, 1, 10]);
    net.nat(a.host, [203, 0, 113, 5]);
    let b = peer(&mut net, "bob", [198, 51, 100, 7]);
    net.signal_dtls(a.at(), b.at());
    assert!(both_connected(&mut net, a, b, Duration::from_secs(20)), "connected through loss and NAT");
    talk(&mut net, &[a, b], 200);
    net.run_for(Duration::from_millis(300));
    for (from, to) in [(a, b), (b, a)] {
        let got = net.hosts[to.host].frames_of(to.conn, ssrc(&net, from, from.audio)).len();
        assert!((150..=200).contains(&got), "{} got {got} of 200 audio frames", net.hosts[to.host].name);
    }
    // B saw A only at its public address.
    let pairs = net.hosts[b.host]
        .conn(b.conn)
        .ice_agent(net.socket(b.host))
        .unwrap()
        .candidate_pairs()
        .filter(|p| p.nominated)
        .count();
    assert!(pairs >= 1);
    assert!(net.lost > 0);
}

/// Every event of a call over a link losing `loss` of the datagrams (SDES
/// keys, or DTLS-SRTP with `dtls`), connected within `within`, with its
/// simulated instant.
fn call_events(seed: u64, loss: f64, dtls: bool, within: Duration) -> Vec<(Duration, String)> {
    let mut net = Net::new(seed);
    net.link.loss = loss;
    net.link.jitter = Duration::from_millis(10);
    let a = peer(&mut net, "alice", [10, 0, 0, 1]);
    let b = peer(&mut net, "bob", [10, 0, 0, 2]);
    if dtls {
        net.signal_dtls(a.at(), b.at());
    } else {
        net.signal(a.at(), b.at());
    }
    assert!(both_connected(&mut net, a, b, within));
    talk(&mut net, &[a, b], 50);
    let start = net.start;
    net.hosts
        .iter()
        .flat_map(|h| h.events.iter().map(move |(t, _, e)| (*t - start, format!("{}: {e:?}", h.name))))
        .collect()
}

/// The same seeds give the same call: every event at the same simulated
/// instant.
#[test]
fn simulated_calls_are_deterministic() {
    let run = || call_events(14, 0.05, false, Duration::from_secs(10));
    let (first, second) = (run(), run());
    assert!(first.len() > 20);
    assert_eq!(first, second);
}

/// The same seeds give the same DTLS-SRTP call over a link losing a fifth
/// of the datagrams: every event at the same simulated instant, the
/// handshake's retransmissions included (the DTLS engine's timers run on
/// the `now` it is given). Its key exchange and signatures still draw on
/// the OS's randomness, so the octets differ from run to run.
#[test]
fn simulated_dtls_calls_are_deterministic() {
    let run = || call_events(16, 0.2, true, Duration::from_secs(30));
    let (first, second) = (run(), run());
    assert!(first.len() > 20);
    assert_eq!(first, second);
}

/// A media server: one socket, many peers, each routed in O(1) to its own
/// connection (distinct ufrags).
#[test]
fn one_endpoint_socket_serves_many_peers() {
    let mut net = Net::new(15);
    let server = net.host("server", [10, 0, 0, 100], SocketOptions::default());
    let mut pairs = Vec::new();
    for i in 0..20u8 {
        let conn = net.connect(server, ConnectionConfig::default(), 500 + u64::from(i));
        let now = net.now;
        let stream = StreamDescription { stream_id: String::new(), tracks: vec![TrackDescription::new(Kind::Audio)] };
        let (_, t) = net.conn_mut(server, conn).send_stream(now, stream).unwrap();
        let s = Peer { host: server, conn, audio: t[0], video: t[0] };
        let names: &'static str = Box::leak(format!("client{i}").into_boxed_str());
        let c = peer(&mut net, names, [10, 0, 1, i + 1]);
        net.signal_dtls(s.at(), c.at());
        pairs.push((s, c));
    }
    assert!(net.run_until(Duration::from_secs(10), |n| {
        pairs.iter().all(|(s, c)| n.connected(s.host, s.conn) && n.connected(c.host, c.conn))
    }));
    let now = net.now;
    for (i, (s, c)) in pairs.iter().enumerate() {
        net.conn_mut(s.host, s.conn)
            .write_frame(now, s.audio, &audio_frame(i as u32), Duration::from_millis(20))
            .unwrap();
        net.conn_mut(c.host, c.conn)
            .write_frame(now, c.audio, &audio_frame(100 + i as u32), Duration::from_millis(20))
            .unwrap();
    }
    net.run_for(Duration::from_millis(50));
    for (i, (s, c)) in pairs.iter().enumerate() {
        assert_eq!(
            net.hosts[c.host].frames_of(c.conn, ssrc(&net, *s, s.audio)),
            vec![audio_frame(i as u32).as_slice()]
        );
        assert_eq!(
            net.hosts[server].frames_of(s.conn, ssrc(&net, *c, c.audio)),
            vec![audio_frame(100 + i as u32).as_slice()]
        );
    }
    assert_eq!(net.hosts[server].endpoint.unrouted(net.socket(server)), 0);
    assert_eq!(net.hosts[server].endpoint.len(), 20);
}

/// RFC 8445 section 6.1.1: both sides derive the ICE roles from the
/// descriptions (the offerer controls; with neither an SDP offer, the
/// smaller `context-id` plays the offerer), so no role conflict (487) is
/// needed; an SDP answerer is controlled.
#[test]
fn ice_roles_come_from_the_descriptions_without_a_conflict() {
    let agent = |p: Peer, n: &Net| {
        let c = n.hosts[p.host].conn(p.conn);
        let s = c.sockets().next().unwrap();
        let ag = c.ice_agent(s).unwrap();
        (ag.role(), ag.stats().role_conflicts, c.context_id().to_owned())
    };
    // Descriptions sent one after the other (the first's, then the
    // other's answering it: with DTLS that one carries its `setup`), with
    // SDES and with DTLS, the first sender's context-id the smaller or the
    // larger.
    let mut orders = std::collections::HashSet::new();
    for first_is_a in [true, false] {
        for dtls in [false, true] {
            let mut net = Net::new(31);
            let a = peer(&mut net, "alice", [10, 0, 0, 1]);
            let b = peer(&mut net, "bob", [10, 0, 0, 2]);
            let (x, y) = if first_is_a { (a, b) } else { (b, a) };
            if dtls {
                net.signal_dtls(x.at(), y.at());
            } else {
                net.signal(x.at(), y.at());
            }
            assert!(both_connected(&mut net, a, b, Duration::from_secs(5)));
            let (rx, cx, idx) = agent(x, &net);
            let (ry, cy, idy) = agent(y, &net);
            assert_ne!(rx, ry);
            // The smaller context-id plays the offerer, which controls.
            assert_eq!(rx == rtc_ice::Role::Controlling, idx < idy, "first {} dtls {dtls}", idx);
            assert_eq!(cx + cy, 0, "no role conflict (first is a: {first_is_a}, dtls {dtls})");
            orders.insert(idx < idy);
        }
    }
    assert_eq!(orders.len(), 2, "both orders of context-ids were tried");

    // An SDP offer (setup:actpass) makes this side the controlled answerer.
    let mut net = Net::new(32);
    let a = peer(&mut net, "alice", [10, 0, 0, 1]);
    let b = peer(&mut net, "bob", [10, 0, 0, 2]);
    net.signal_one(a.at(), b.at(), |d| {
        d.keys.clear();
        d.sockets[0].options.setup = Some("actpass".into());
    })
    .unwrap();
    net.signal_one(b.at(), a.at(), |d| d.keys.clear()).unwrap();
    assert!(both_connected(&mut net, a, b, Duration::from_secs(5)));
    assert_eq!(agent(b, &net).0, rtc_ice::Role::Controlled);
    assert_eq!(agent(a, &net).0, rtc_ice::Role::Controlling);
    assert_eq!(agent(a, &net).1 + agent(b, &net).1, 0, "no role conflict");
}

/// A server socket shared by two connections; the second peer lists the
/// first peer's address as a candidate of its own (RFC 8445 does not stop
/// it). Its connection pairs with that address, but a pair no check went
/// through carries no data: the first peer's DTLS and media still reach
/// the first connection only, and the second connection takes nothing of
/// it.
#[test]
fn a_peer_listing_another_peers_address_does_not_capture_its_traffic() {
    let mut net = Net::new(17);
    let server = net.host("server", [10, 0, 0, 100], SocketOptions::default());
    let mut server_side = Vec::new();
    for i in 0..2u8 {
        let conn = net.connect(server, ConnectionConfig::default(), 700 + u64::from(i));
        let now = net.now;
        let stream = StreamDescription { stream_id: String::new(), tracks: vec![TrackDescription::new(Kind::Audio)] };
        let (_, t) = net.conn_mut(server, conn).send_stream(now, stream).unwrap();
        server_side.push(Peer { host: server, conn, audio: t[0], video: t[0] });
    }
    let victim = peer(&mut net, "victim", [10, 0, 1, 1]);
    let hostile = peer(&mut net, "hostile", [10, 0, 1, 2]);
    let victim_addr = net.hosts[victim.host].addrs.keys().next().copied().unwrap();
    // The hostile peer's description, with the victim's address first.
    let forged = rtc_candidate::Candidate::parse(&format!(
        "candidate:9 1 udp 2130706431 {} {} typ host",
        victim_addr.ip(),
        victim_addr.port()
    ))
    .unwrap();
    net.signal_with(server_side[1].at(), hostile.at(), |d| {
        if let Some(s) = d.sockets.first_mut()
            && s.candidates.iter().any(|c| c.address.to_string() == "10.0.1.2")
        {
            s.candidates.insert(0, forged.clone());
        }
    });
    net.signal(server_side[0].at(), victim.at());
    assert!(net.run_until(Duration::from_secs(10), |n| {
        [server_side[0], victim, server_side[1], hostile].iter().all(|p| n.connected(p.host, p.conn))
    }));
    let now = net.now;
    net.conn_mut(victim.host, victim.conn)
        .write_frame(now, victim.audio, b"victim", Duration::from_millis(20))
        .unwrap();
    net.run_for(Duration::from_millis(50));
    assert_eq!(
        net.hosts[server].frames_of(server_side[0].conn, ssrc(&net, victim, victim.audio)),
        vec![&b"victim"[..]]
    );
    assert!(net.hosts[server].frames_of(server_side[1].conn, ssrc(&net, victim, victim.audio)).is_empty());
}

/// RFC 6464: an audio track's level set with `set_audio_level` goes out in
/// the `ssrc-audio-level` extension (negotiated by default) and comes out
/// of the receiver's frames; `None` stops it; video tracks and levels over
/// 127 are refused.
#[test]
fn the_audio_level_of_sent_frames_reaches_the_receiver() {
    let mut net = Net::new(15);
    let a = peer(&mut net, "alice", [10, 0, 0, 1]);
    let b = peer(&mut net, "bob", [10, 0, 0, 2]);
    net.signal(a.at(), b.at());
    assert!(both_connected(&mut net, a, b, Duration::from_secs(5)));
    let levels = |net: &Net| -> Vec<Option<u8>> {
        let s = ssrc(net, a, a.audio);
        net.hosts[b.host].frames.iter().filter(|(_, _, f, _)| f.ssrc == s).map(|(_, _, f, _)| f.audio_level).collect()
    };
    for (i, level) in [Some((30, true)), Some((127, false)), None].into_iter().enumerate() {
        let now = net.now;
        {
            let mut c = net.conn_mut(a.host, a.conn);
            c.set_audio_level(a.audio, level).unwrap();
            c.write_frame(now, a.audio, &audio_frame(i as u32), Duration::from_millis(20)).unwrap();
        }
        net.run_for(Duration::from_millis(40));
    }
    assert_eq!(levels(&net), [Some(30), Some(127), None]);
    let mut c = net.conn_mut(a.host, a.conn);
    assert!(c.set_audio_level(a.video, Some((10, true))).is_err(), "not for video");
    assert!(c.set_audio_level(a.audio, Some((128, true))).is_err(), "0 to 127");
}
