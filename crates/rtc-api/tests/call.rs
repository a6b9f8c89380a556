//! Whole calls over real UDP on 127.0.0.1: signaling by JSON, ICE, SRTP,
//! media both ways, events, statistics, close, bad input, fork.

use std::net::UdpSocket as StdUdp;
use std::time::Duration;

use rtc_api::{
    ConnectionDescription, ConnectionEvent, CryptoKey, Direction, Error, Events, RtcConnection, RtcMediaStream,
    RtcMediaStreamTrack, RtcSocket, SocketEvent, SocketOptions, SocketServers, StreamDescription,
};
use rtc_candidate::Candidate;
use rtc_codecs::Kind;

struct Peer {
    conn: RtcConnection,
    socket: RtcSocket,
    audio: RtcMediaStreamTrack,
    video: RtcMediaStreamTrack,
    events: Events<ConnectionEvent>,
}

async fn peer_with(options: SocketOptions) -> Peer {
    peer_with_codecs(options, None).await
}

async fn peer_with_codecs(options: SocketOptions, codecs: Option<rtc_codecs::Options>) -> Peer {
    let conn = RtcConnection::new(None, codecs).unwrap();
    let socket = RtcSocket::new(SocketServers::loopback_v4(), options).await.unwrap();
    let events = conn.events();
    let stream = RtcMediaStream::new(StreamDescription::default());
    let audio = RtcMediaStreamTrack::of_kind(Kind::Audio);
    let video = RtcMediaStreamTrack::of_kind(Kind::Video);
    stream.add_track(audio.clone()).unwrap();
    stream.add_track(video.clone()).unwrap();
    conn.send_stream(&stream, true).unwrap();
    conn.add_socket(&socket).unwrap();
    Peer { conn, socket, audio, video, events }
}

async fn peer() -> Peer {
    peer_with(SocketOptions::default()).await
}

/// Exchanges descriptions (with their candidates) as JSON text.
fn signal(a: &RtcConnection, b: &RtcConnection) {
    for (from, to) in [(a, b), (b, a)] {
        let json = from.description(Direction::Local).unwrap().to_json();
        to.set_description(ConnectionDescription::from_json(&json).unwrap(), Direction::Remote).unwrap();
    }
}

async fn wait_for(events: &mut Events<ConnectionEvent>, want: impl Fn(&ConnectionEvent) -> bool) -> ConnectionEvent {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let e = events.next().await.expect("event stream ended");
            if want(&e) {
                return e;
            }
        }
    })
    .await
    .expect("event did not fire within 5 s")
}

/// Two default peers, signaled as JSON, once both fired `Connected`.
async fn connected_pair() -> (Peer, Peer) {
    let (mut a, mut b) = (peer().await, peer().await);
    signal(&a.conn, &b.conn);
    wait_for(&mut a.events, |e| *e == ConnectionEvent::Connected).await;
    wait_for(&mut b.events, |e| *e == ConnectionEvent::Connected).await;
    (a, b)
}

fn vp8_frame(i: u32, len: usize) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|k| (k as u32 ^ i) as u8).collect();
    f[0] = u8::from(!i.is_multiple_of(10)); // P bit: key frame every 10
    f
}

/// Sends `n` frames of each kind from `p` at 50/s (audio) and every other tick (video).
async fn send_media(p: &Peer, n: u32) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for i in 0..n {
        tick.tick().await;
        assert_eq!(p.audio.write_frame(&[i as u8; 160], Duration::from_millis(20)).unwrap(), 1);
        if i.is_multiple_of(2) {
            // 5000 octets: five RTP packets (RFC 7741 fragmentation).
            assert_eq!(p.video.write_frame(&vp8_frame(i, 5000), Duration::from_millis(40)).unwrap(), 5);
        }
    }
}

fn remote_track(p: &Peer, kind: Kind) -> RtcMediaStreamTrack {
    p.conn.remote_streams().iter().flat_map(|s| s.tracks()).find(|t| t.kind() == kind).expect("remote track")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_end_to_end_over_udp_loopback() {
    let (mut a, b) = connected_pair().await;
    assert!(a.conn.time_to_connected().is_some());
    a.conn.set_report_interval(Duration::from_millis(300));
    let (a_audio, a_video) = (remote_track(&a, Kind::Audio), remote_track(&a, Kind::Video));
    let (b_audio, b_video) = (remote_track(&b, Kind::Audio), remote_track(&b, Kind::Video));
    assert_eq!(b_audio.ssrc(), a.audio.ssrc());
    tokio::join!(send_media(&a, 50), send_media(&b, 50));
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Every frame arrives intact both ways: audio whole, VP8 reassembled.
    for (audio, video) in [(&a_audio, &a_video), (&b_audio, &b_video)] {
        for i in 0..50u32 {
            let f = audio.try_read_frame().expect("audio frame");
            assert_eq!(f.data, vec![i as u8; 160]);
        }
        for i in (0..50u32).step_by(2) {
            let f = video.try_read_frame().expect("video frame");
            assert_eq!(f.data, vp8_frame(i, 5000));
            assert_eq!(f.key_frame, i.is_multiple_of(10));
        }
        assert!(audio.try_read_frame().is_none());
    }
    // Statistics: what one side sent, the other received.
    let stats_a = a.conn.stats();
    let stats_b = b.conn.stats();
    let find = |v: &[rtc_api::TrackReport], kind, dir| v.iter().find(|r| r.kind == kind && r.direction == dir).cloned();
    let sent = find(&stats_a, Kind::Video, Direction::Local).unwrap().stats;
    let recv = find(&stats_b, Kind::Video, Direction::Remote).unwrap().stats;
    assert_eq!(sent.packets_sent, Some(125));
    assert_eq!(recv.packets_received, Some(125));
    assert_eq!(sent.bytes_sent, recv.bytes_received);
    assert_eq!(recv.packets_lost, 0);
    let audio_in = find(&stats_b, Kind::Audio, Direction::Remote).unwrap().stats;
    assert_eq!(audio_in.packets_received, Some(50));
    assert_eq!(audio_in.bytes_received, Some(50 * 160));
    // Reports fire with the same figures.
    let r = wait_for(&mut a.events, |e| matches!(e, ConnectionEvent::StreamReport { .. })).await;
    let ConnectionEvent::StreamReport { tracks, .. } = r else { unreachable!() };
    assert!(!tracks.is_empty());
    assert_eq!(a.conn.dropped() + b.conn.dropped(), 0);
    // close() stops the tasks and frees the UDP ports.
    let ports: Vec<_> = a.socket.local_addrs();
    a.conn.close();
    assert!(a.audio.write_frame(&[0; 10], Duration::from_millis(20)).is_err());
    tokio::time::sleep(Duration::from_millis(50)).await;
    for addr in ports {
        StdUdp::bind(addr).expect("port freed by close()");
    }
    // The peer notices consent loss only after its timeout; close it too.
    b.conn.close();
}

/// Opus and H.264 (constrained baseline, packetization-mode 1) only.
fn h264_options() -> rtc_codecs::Options {
    h264_options_mode("1")
}

/// Opus and H.264 with the given packetization-mode.
fn h264_options_mode(mode: &str) -> rtc_codecs::Options {
    let mut options = rtc_api::default_options();
    options.codecs.retain(|c| c.kind == Kind::Audio);
    let pt = rtc_codecs::PayloadType::new(102).unwrap();
    let mut h264 = rtc_codecs::Codec::new(pt, Kind::Video, "H264", 90_000, None);
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

/// NAL units after 4-byte start codes (Annex B).
fn annex_b(units: &[Vec<u8>]) -> Vec<u8> {
    units.iter().flat_map(|u| [0, 0, 0, 1].iter().chain(u)).copied().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_access_units_cross_in_rfc_6184_packets() {
    let a = peer_with_codecs(SocketOptions::default(), Some(h264_options())).await;
    let mut b = peer_with_codecs(SocketOptions::default(), Some(h264_options())).await;
    signal(&a.conn, &b.conn);
    let mut a_events = a.conn.events();
    wait_for(&mut a_events, |e| *e == ConnectionEvent::Connected).await;
    wait_for(&mut b.events, |e| *e == ConnectionEvent::Connected).await;
    let agreed = a.conn.agreement().unwrap();
    assert!(agreed.codecs.iter().any(|c| c.name == "H264"), "{agreed:?}");
    let video = remote_track(&b, Kind::Video);
    let mut sent = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(33));
    for i in 0..12u32 {
        tick.tick().await;
        // Every fourth unit a key frame: SPS and PPS (single NAL unit
        // packets) and a 5000-octet IDR slice (five FU-A fragments); the
        // others one 1500-octet slice (two fragments) and a 40-octet SEI.
        let (units, packets) = if i % 4 == 0 {
            (vec![nal(0x67, 12, i), nal(0x68, 4, i), nal(0x65, 5000, i)], 7)
        } else {
            (vec![nal(0x06, 40, i), nal(0x41, 1500, i)], 3)
        };
        let frame = annex_b(&units);
        assert_eq!(a.video.write_frame(&frame, Duration::from_millis(33)).unwrap(), packets, "unit {i}");
        sent.push((frame, i % 4 == 0));
    }
    // Length-prefixed (AVCC) data is not Annex B: its first "NAL unit" has
    // type 0, and it is refused rather than sent as something else.
    let avcc = [0, 0, 0x0f, 0xa0, 0x65, 1, 2];
    assert!(matches!(a.video.write_frame(&avcc, Duration::from_millis(33)), Err(Error::InvalidFrame(_))));
    tokio::time::sleep(Duration::from_millis(200)).await;
    for (i, (frame, key)) in sent.iter().enumerate() {
        let f = video.try_read_frame().unwrap_or_else(|| panic!("access unit {i}"));
        assert_eq!((&f.data, f.key_frame), (frame, *key), "access unit {i}");
    }
    assert!(video.try_read_frame().is_none());
    assert_eq!(a.conn.dropped() + b.conn.dropped(), 0);
    a.conn.close();
    b.conn.close();
}

/// An ICE restart (RFC 8445 section 9) through descriptions: A sets new
/// credentials in its local description; B, seeing them, restarts too; media
/// keeps flowing over the old path and then over the newly selected one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_restart_through_descriptions_keeps_media_flowing() {
    let (mut a, mut b) = connected_pair().await;
    let video = remote_track(&b, Kind::Video);
    let old_b = b.conn.description(Direction::Local).unwrap().context_id;
    let mut d = a.conn.description(Direction::Local).unwrap();
    d.context_id = Some("restart1".into());
    d.secret = Some("aNewSecretOf26CharsAbcdef".into());
    a.conn.set_description(d, Direction::Local).unwrap();
    assert_eq!(a.conn.description(Direction::Local).unwrap().context_id.as_deref(), Some("restart1"));
    // The peer does not know yet: media goes over the old path meanwhile.
    assert_eq!(a.video.write_frame(&vp8_frame(0, 3000), Duration::from_millis(40)).unwrap(), 3);
    // A's description reaches B, which restarts too; B's new one comes back.
    signal(&a.conn, &b.conn);
    let new_b = b.conn.description(Direction::Local).unwrap().context_id;
    assert_ne!(new_b, old_b, "the peer restarted with new credentials");
    // The new checks select a pair again.
    wait_for(&mut a.events, |e| matches!(e, ConnectionEvent::ActiveConnectionCandidate { .. })).await;
    wait_for(&mut b.events, |e| matches!(e, ConnectionEvent::ActiveConnectionCandidate { .. })).await;
    assert_eq!(a.video.write_frame(&vp8_frame(1, 3000), Duration::from_millis(40)).unwrap(), 3);
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..2 {
        let f = video.try_read_frame().unwrap_or_else(|| panic!("frame {i}"));
        assert_eq!(f.data, vp8_frame(i, 3000));
    }
    assert!(a.conn.is_connected() && b.conn.is_connected());
    assert_eq!(a.conn.dropped() + b.conn.dropped(), 0);
    a.conn.close();
    b.conn.close();
}

/// With packetization-mode 0 a NAL unit must fit one packet: a frame with a
/// longer one is refused before any of its units is sent, so nothing of it
/// reaches the peer under the next frame's timestamp.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_mode_0_refuses_long_units_before_sending() {
    let a = peer_with_codecs(SocketOptions::default(), Some(h264_options_mode("0"))).await;
    let mut b = peer_with_codecs(SocketOptions::default(), Some(h264_options_mode("0"))).await;
    signal(&a.conn, &b.conn);
    let mut a_events = a.conn.events();
    wait_for(&mut a_events, |e| *e == ConnectionEvent::Connected).await;
    wait_for(&mut b.events, |e| *e == ConnectionEvent::Connected).await;
    let video = remote_track(&b, Kind::Video);
    let key = annex_b(&[nal(0x67, 12, 0), nal(0x68, 4, 0), nal(0x65, 5000, 0)]);
    let refused = a.video.write_frame(&key, Duration::from_millis(33));
    assert!(matches!(refused, Err(Error::NotSupported(_))), "{refused:?}");
    let small = annex_b(&[nal(0x67, 12, 1), nal(0x68, 4, 1), nal(0x65, 900, 1)]);
    assert_eq!(a.video.write_frame(&small, Duration::from_millis(33)).unwrap(), 3);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(video.try_read_frame().expect("the small frame").data, small);
    assert!(video.try_read_frame().is_none());
    a.conn.close();
    b.conn.close();
}

/// Exchanges descriptions without `keys`, as a DTLS-SRTP peer (a browser)
/// signals them: `fingerprints` only.
fn signal_dtls(a: &RtcConnection, b: &RtcConnection, tamper: impl Fn(&mut ConnectionDescription)) {
    for (from, to) in [(a, b), (b, a)] {
        let mut d = from.description(Direction::Local).unwrap();
        d.keys.clear();
        tamper(&mut d);
        let json = d.to_json();
        to.set_description(ConnectionDescription::from_json(&json).unwrap(), Direction::Remote).unwrap();
    }
}

/// RFC 5763/5764: with no `keys` signaled, each socket runs a DTLS
/// handshake over the ICE path, checks the peer's certificate against its
/// fingerprint, and keys SRTP from the exported material.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtls_srtp_keys_media_when_no_keys_are_signaled() {
    let (mut a, mut b) = (peer().await, peer().await);
    let fp = &a.socket.description().options.fingerprints;
    assert!(fp.len() == 1 && fp[0].starts_with("sha-256 ") && fp[0].len() == 8 + 32 * 3 - 1, "{fp:?}");
    signal_dtls(&a.conn, &b.conn, |_| {});
    wait_for(&mut a.events, |e| *e == ConnectionEvent::Connected).await;
    wait_for(&mut b.events, |e| *e == ConnectionEvent::Connected).await;
    let (a_video, b_video) = (remote_track(&a, Kind::Video), remote_track(&b, Kind::Video));
    tokio::join!(send_media(&a, 10), send_media(&b, 10));
    tokio::time::sleep(Duration::from_millis(200)).await;
    for video in [&a_video, &b_video] {
        for i in (0..10u32).step_by(2) {
            assert_eq!(video.try_read_frame().expect("video frame").data, vp8_frame(i, 5000));
        }
    }
    assert_eq!(a.conn.dropped() + b.conn.dropped(), 0);
    a.conn.close();
    b.conn.close();
}

/// A certificate that does not match the signaled fingerprint: no SRTP
/// keys, no Connected, and nothing sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtls_with_a_wrong_fingerprint_never_keys_srtp() {
    let (a, b) = (peer().await, peer().await);
    let (mut a_socket, mut b_socket) = (a.socket.events(), b.socket.events());
    let wrong = format!("sha-256 {}", ["AB"; 32].join(":"));
    signal_dtls(&a.conn, &b.conn, |d| {
        for s in &mut d.sockets {
            s.options.fingerprints = vec![wrong.clone()];
        }
    });
    // The side that sees the other's certificate first gives up at once.
    let failed = tokio::time::timeout(Duration::from_secs(3), async {
        tokio::select! {
            _ = async { while a_socket.next().await != Some(SocketEvent::Disconnected) {} } => {}
            _ = async { while b_socket.next().await != Some(SocketEvent::Disconnected) {} } => {}
        }
    });
    assert!(failed.await.is_ok(), "a socket reports the failed DTLS handshake");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!a.conn.is_connected() && !b.conn.is_connected());
    let e = a.audio.write_frame(b"secret", Duration::from_millis(20)).unwrap_err();
    assert!(matches!(e, Error::NotConnected(_)), "{e}");
    a.conn.close();
    b.conn.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_remote_input_is_refused_and_the_connection_stays_usable() {
    let (mut a, mut b) = (peer().await, peer().await);
    let good = b.conn.description(Direction::Local).unwrap();
    let refuse = |d: ConnectionDescription, what: &str| {
        let e = a.conn.set_description(d, Direction::Remote).expect_err(what);
        let text = e.to_string();
        assert!(!text.is_empty());
        text
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
    d.streams[0].tracks[0].ssrc = None;
    assert!(refuse(d, "no ssrc").contains("ssrc"));
    let mut d = good.clone();
    d.keys = vec![CryptoKey::parse("1 NULL_CIPHER inline:AAAA").unwrap()];
    assert!(refuse(d, "unknown suite").contains("in common"));
    assert!(ConnectionDescription::from_json(r#"{"context-id": 5}"#).is_err());
    assert!(a.conn.description(Direction::Remote).is_none(), "a refused description changed nothing");
    // A bad candidate is refused with its reason.
    let tcp = Candidate::parse("candidate:1 1 tcp 2130706431 127.0.0.1 9 typ host tcptype active").unwrap();
    let e = a.socket.set_remote_candidate(&tcp).unwrap_err();
    assert!(matches!(e, Error::InvalidCandidate(_)), "{e}");
    // A socket's fingerprints are its own certificate's, not given.
    let fp = SocketOptions { fingerprints: vec!["sha-256 AB:CD".into()], ..SocketOptions::default() };
    assert!(matches!(RtcSocket::new(SocketServers::loopback_v4(), fp).await, Err(Error::InvalidOptions(_))));
    // Still usable: the good description connects and media flows.
    signal(&a.conn, &b.conn);
    wait_for(&mut a.events, |e| *e == ConnectionEvent::Connected).await;
    wait_for(&mut b.events, |e| *e == ConnectionEvent::Connected).await;
    a.audio.write_frame(b"hello", Duration::from_millis(20)).unwrap();
    let f = tokio::time::timeout(Duration::from_secs(2), remote_track(&b, Kind::Audio).read_frame()).await.unwrap();
    assert_eq!(f.unwrap().data, b"hello");
    a.conn.close();
    b.conn.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_mux_two_components_connect_and_each_direction_uses_the_senders_suite() {
    let cm80 = SocketOptions {
        mux: false,
        keys: vec![CryptoKey::suite(1, "AES_CM_128_HMAC_SHA1_80"), CryptoKey::suite(2, "AEAD_AES_128_GCM")],
        ..SocketOptions::default()
    };
    // a sends AES-CM (its first suite b lists), b sends AES-GCM.
    let gcm = SocketOptions {
        keys: vec![CryptoKey::suite(1, "AEAD_AES_128_GCM"), CryptoKey::suite(2, "AES_CM_128_HMAC_SHA1_80")],
        ..cm80.clone()
    };
    let (mut a, mut b) = (peer_with(cm80).await, peer_with(gcm).await);
    assert_eq!(a.socket.local_addrs().len(), 2);
    let da = a.conn.description(Direction::Local).unwrap();
    assert_eq!(da.keys.len(), 2);
    assert!(da.keys.iter().all(|k| k.key_params.as_deref().is_some_and(|p| p.starts_with("inline:"))));
    signal(&a.conn, &b.conn);
    wait_for(&mut a.events, |e| *e == ConnectionEvent::Connected).await;
    wait_for(&mut b.events, |e| *e == ConnectionEvent::Connected).await;
    a.audio.write_frame(b"x", Duration::from_millis(20)).unwrap();
    b.audio.write_frame(b"y", Duration::from_millis(20)).unwrap();
    let fa = tokio::time::timeout(Duration::from_secs(2), remote_track(&a, Kind::Audio).read_frame()).await.unwrap();
    let fb = tokio::time::timeout(Duration::from_secs(2), remote_track(&b, Kind::Audio).read_frame()).await.unwrap();
    assert_eq!((fa.unwrap().data, fb.unwrap().data), (b"y".to_vec(), b"x".to_vec()));
    a.conn.close();
    b.conn.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fork_reaches_two_callees_over_the_same_sockets() {
    fork_case(false).await;
}

/// The same with DTLS-SRTP: each fork runs its own handshake with its own
/// peer over the shared socket (and its one certificate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fork_with_dtls_srtp_keys_each_callee_separately() {
    fork_case(true).await;
}

async fn fork_case(dtls: bool) {
    let signal = |a: &RtcConnection, b: &RtcConnection| {
        if dtls {
            signal_dtls(a, b, |_| {});
        } else {
            signal(a, b);
        }
    };
    let caller = peer().await;
    let fork = caller.conn.fork().unwrap();
    let mut fork_events = fork.events();
    // The fork shares the context and the sockets, not the streams or keys.
    let (dc, df) = (caller.conn.description(Direction::Local).unwrap(), fork.description(Direction::Local).unwrap());
    assert_eq!((&dc.cname, &dc.context_id, &dc.secret), (&df.cname, &df.context_id, &df.secret));
    assert_eq!(fork.sockets()[0].id(), caller.socket.id());
    assert_ne!(dc.keys, df.keys);
    assert!(fork.local_streams().is_empty());
    let fork_stream = RtcMediaStream::new(StreamDescription::default());
    let fork_audio = RtcMediaStreamTrack::of_kind(Kind::Audio);
    fork_stream.add_track(fork_audio.clone()).unwrap();
    fork.send_stream(&fork_stream, true).unwrap();
    let (mut b, mut c) = (peer().await, peer().await);
    let mut caller_events = caller.events;
    signal(&caller.conn, &b.conn);
    signal(&fork, &c.conn);
    for ev in [&mut caller_events, &mut fork_events, &mut b.events, &mut c.events] {
        wait_for(ev, |e| *e == ConnectionEvent::Connected).await;
    }
    caller.audio.write_frame(b"to b", Duration::from_millis(20)).unwrap();
    fork_audio.write_frame(b"to c", Duration::from_millis(20)).unwrap();
    b.audio.write_frame(b"from b", Duration::from_millis(20)).unwrap();
    c.audio.write_frame(b"from c", Duration::from_millis(20)).unwrap();
    let read = |t: RtcMediaStreamTrack| async move {
        tokio::time::timeout(Duration::from_secs(2), t.read_frame()).await.unwrap().unwrap().data
    };
    assert_eq!(read(remote_track(&b, Kind::Audio)).await, b"to b");
    assert_eq!(read(remote_track(&c, Kind::Audio)).await, b"to c");
    let from = |conn: &RtcConnection| conn.remote_streams()[0].tracks()[0].clone();
    assert_eq!(read(from(&caller.conn)).await, b"from b");
    assert_eq!(read(from(&fork)).await, b"from c");
    // Each side received only its own peer's media.
    assert_eq!(caller.conn.remote_streams().len(), 1);
    assert_eq!(fork.remote_streams().len(), 1);
    assert_eq!(caller.conn.dropped() + fork.dropped(), 0);
    // Closing the fork keeps the shared socket open for the caller.
    fork.close();
    caller.audio.write_frame(b"still", Duration::from_millis(20)).unwrap();
    assert_eq!(read(remote_track(&b, Kind::Audio)).await, b"still");
    for p in [&caller.conn, &b.conn, &c.conn] {
        p.close();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contributors_and_stream_events() {
    let (mut a, b) = (peer().await, peer().await);
    signal(&a.conn, &b.conn);
    let mut b_stream_events = b.conn.remote_streams()[0].events();
    wait_for(&mut a.events, |e| *e == ConnectionEvent::Connected).await;
    assert!(a.audio.set_contributors(&[0; 16]).is_err());
    a.audio.set_contributors(&[11, 22]).unwrap();
    a.audio.write_frame(b"mixed", Duration::from_millis(20)).unwrap();
    // Seed 000: the stream fires its track events too.
    let e = wait_for(&mut b_stream_events, |e| matches!(e, ConnectionEvent::TrackContributors { .. })).await;
    let ConnectionEvent::TrackContributors { contributors, track_id, .. } = e else { unreachable!() };
    assert_eq!(contributors, vec![11, 22]);
    assert_eq!(track_id, a.audio.id());
    a.audio.set_contributors(&[]).unwrap();
    a.audio.write_frame(b"solo", Duration::from_millis(20)).unwrap();
    let e = wait_for(&mut b_stream_events, |e| matches!(e, ConnectionEvent::TrackContributors { .. })).await;
    assert!(matches!(e, ConnectionEvent::TrackContributors { contributors, .. } if contributors.is_empty()));
    // Pausing a received track stops delivery; stopping a sent stream fires its events.
    let t = remote_track(&b, Kind::Audio);
    while t.try_read_frame().is_some() {}
    t.pause();
    a.audio.write_frame(b"unheard", Duration::from_millis(20)).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(t.try_read_frame().is_none());
    a.conn.local_streams()[0].stop();
    wait_for(&mut a.events, |e| matches!(e, ConnectionEvent::StreamDisconnected { direction: Direction::Local, .. }))
        .await;
    assert!(a.audio.write_frame(b"x", Duration::from_millis(20)).is_ok_and(|n| n == 0), "paused by stop()");
    a.conn.close();
    b.conn.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_signaled_in_sdp() {
    let (mut a, mut b) = (peer().await, peer().await);
    for (from, to) in [(&a.conn, &b.conn), (&b.conn, &a.conn)] {
        let local = from.description(Direction::Local).unwrap();
        let sdp = local.to_sdp(&from.options(Direction::Local).unwrap()).unwrap();
        assert!(sdp.contains("a=crypto:"), "{sdp}");
        let (d, options) = ConnectionDescription::from_sdp(&sdp).unwrap();
        to.set_options(options, Direction::Remote).unwrap();
        to.set_description(d, Direction::Remote).unwrap();
    }
    wait_for(&mut a.events, |e| *e == ConnectionEvent::Connected).await;
    wait_for(&mut b.events, |e| *e == ConnectionEvent::Connected).await;
    a.video.write_frame(&vp8_frame(0, 3000), Duration::from_millis(33)).unwrap();
    let t = remote_track(&b, Kind::Video);
    assert_eq!(t.ssrc(), a.video.ssrc());
    let f = tokio::time::timeout(Duration::from_secs(2), t.read_frame()).await.unwrap().unwrap();
    assert_eq!(f.data, vp8_frame(0, 3000));
    a.conn.close();
    b.conn.close();
}

/// Offer and answer in SDP keyed by DTLS-SRTP, as with a browser: the
/// offer says `a=setup:actpass`, the answerer takes `active` (the DTLS
/// client), and media flows once the handshake keys SRTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dtls_srtp_call_signaled_in_sdp() {
    let (mut a, mut b) = (peer().await, peer().await);
    let mut setups = Vec::new();
    for (from, to) in [(&a.conn, &b.conn), (&b.conn, &a.conn)] {
        let mut local = from.description(Direction::Local).unwrap();
        local.keys.clear();
        let sdp = local.to_sdp(&from.options(Direction::Local).unwrap()).unwrap();
        assert!(
            sdp.contains("UDP/TLS/RTP/SAVPF") && sdp.contains("a=fingerprint:sha-256 ") && !sdp.contains("a=crypto")
        );
        setups.push(sdp.lines().find(|l| l.starts_with("a=setup:")).unwrap().to_owned());
        let (d, options) = ConnectionDescription::from_sdp(&sdp).unwrap();
        to.set_options(options, Direction::Remote).unwrap();
        to.set_description(d, Direction::Remote).unwrap();
    }
    assert_eq!(setups, ["a=setup:actpass", "a=setup:active"]);
    wait_for(&mut a.events, |e| *e == ConnectionEvent::Connected).await;
    wait_for(&mut b.events, |e| *e == ConnectionEvent::Connected).await;
    a.video.write_frame(&vp8_frame(0, 3000), Duration::from_millis(33)).unwrap();
    b.video.write_frame(&vp8_frame(1, 3000), Duration::from_millis(33)).unwrap();
    for (p, i) in [(&b, 0), (&a, 1)] {
        let t = remote_track(p, Kind::Video);
        let f = tokio::time::timeout(Duration::from_secs(2), t.read_frame()).await.unwrap().unwrap();
        assert_eq!(f.data, vp8_frame(i, 3000));
    }
    a.conn.close();
    b.conn.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_stream_off_and_on_and_remove_track() {
    let (mut a, b) = connected_pair().await;
    let remote = b.conn.remote_streams()[0].description();
    let t = remote_track(&b, Kind::Audio);
    b.conn.receive_stream(&remote, false).unwrap();
    a.audio.write_frame(b"dropped", Duration::from_millis(20)).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(t.try_read_frame().is_none(), "a stream not received delivers nothing");
    b.conn.receive_stream(&remote, true).unwrap();
    a.audio.write_frame(b"delivered", Duration::from_millis(20)).unwrap();
    let f = tokio::time::timeout(Duration::from_secs(2), t.read_frame()).await.unwrap().unwrap();
    assert_eq!(f.data, b"delivered");
    // Removing a sent track stops it and says so.
    let stream = a.conn.local_streams()[0].clone();
    stream.remove_track(&a.video);
    let e = wait_for(&mut a.events, |e| matches!(e, ConnectionEvent::TrackDisconnected { .. })).await;
    assert!(matches!(e, ConnectionEvent::TrackDisconnected { ssrc, .. } if ssrc == a.video.ssrc()));
    assert!(matches!(a.video.write_frame(b"x", Duration::from_millis(20)), Err(Error::NotConnected(_))));
    assert_eq!(stream.tracks().len(), 1);
    a.conn.close();
    b.conn.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handle_closes_the_connection() {
    let a = peer().await;
    let addrs = a.socket.local_addrs();
    let (conn, socket) = (a.conn, a.socket);
    let again = conn.clone();
    drop(conn);
    assert!(!again.sockets().is_empty(), "another handle keeps it open");
    drop((again, socket));
    tokio::time::sleep(Duration::from_millis(50)).await;
    for addr in addrs {
        StdUdp::bind(addr).expect("port freed when the last handle went");
    }
}
