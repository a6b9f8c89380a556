//! The tokio driver over real UDP on 127.0.0.1: a few whole calls that
//! prove the sockets, the driver task, the handles and their events. The
//! protocol cases (fork routing, ICE restart, consent expiry, bad input,
//! H.264, loss) run in simulated time in rtc-proto's tests.

use std::net::UdpSocket as StdUdp;
use std::time::Duration;

use rtc_api::{
    Certificate, ConnectionDescription, ConnectionEvent, DataEvent, DataState, DataStreamDescription, Direction, Error,
    Events, RtcConnection, RtcMediaStream, RtcMediaStreamTrack, RtcSocket, SdpType, SocketEvent, SocketOptions,
    SocketServers, StreamDescription,
};
use rtc_codecs::Kind;

struct Peer {
    conn: RtcConnection,
    socket: RtcSocket,
    audio: RtcMediaStreamTrack,
    video: RtcMediaStreamTrack,
    events: Events<ConnectionEvent>,
}

async fn peer() -> Peer {
    let conn = RtcConnection::new(None, None).unwrap();
    let socket = RtcSocket::new(SocketServers::loopback_v4(), SocketOptions::default()).await.unwrap();
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

/// Exchanges descriptions as JSON text; without `keys` when `dtls`.
fn signal(a: &RtcConnection, b: &RtcConnection, dtls: bool) {
    for (from, to) in [(a, b), (b, a)] {
        let mut d = from.description(Direction::Local).unwrap();
        if dtls {
            d.keys.clear();
        }
        to.set_description(ConnectionDescription::from_json(&d.to_json()).unwrap(), Direction::Remote).unwrap();
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

async fn connected_pair(dtls: bool) -> (Peer, Peer) {
    let (mut a, mut b) = (peer().await, peer().await);
    signal(&a.conn, &b.conn, dtls);
    wait_for(&mut a.events, |e| *e == ConnectionEvent::Connected).await;
    wait_for(&mut b.events, |e| *e == ConnectionEvent::Connected).await;
    (a, b)
}

fn vp8_frame(i: u32, len: usize) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|k| (k as u32 ^ i) as u8).collect();
    f[0] = u8::from(!i.is_multiple_of(10)); // P bit: key frame every 10
    f
}

fn remote_track(p: &Peer, kind: Kind) -> RtcMediaStreamTrack {
    p.conn.remote_streams().iter().flat_map(|s| s.tracks()).find(|t| t.kind() == kind).expect("remote track")
}

async fn read(t: &RtcMediaStreamTrack) -> rtc_api::Frame {
    tokio::time::timeout(Duration::from_secs(2), t.read_frame()).await.expect("a frame within 2 s").expect("a frame")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_over_udp_with_media_statistics_and_close() {
    let (mut a, b) = connected_pair(false).await;
    assert!(a.conn.time_to_connected().is_some());
    a.conn.set_report_interval(Duration::from_millis(200));
    let (b_audio, b_video, a_audio) =
        (remote_track(&b, Kind::Audio), remote_track(&b, Kind::Video), remote_track(&a, Kind::Audio));
    assert_eq!(b_audio.ssrc(), a.audio.ssrc());
    // Alice's audio carries its level (RFC 6464), bob's none.
    a.audio.set_audio_level(Some((42, true))).unwrap();
    assert!(a.video.set_audio_level(Some((42, true))).is_err());
    for i in 0..50u32 {
        assert_eq!(a.audio.write_frame(&[i as u8; 160], Duration::from_millis(20)).unwrap(), 1);
        assert_eq!(b.audio.write_frame(&[i as u8; 100], Duration::from_millis(20)).unwrap(), 1);
        if i.is_multiple_of(2) {
            // 5000 octets: five RTP packets (RFC 7741 fragmentation).
            assert_eq!(a.video.write_frame(&vp8_frame(i, 5000), Duration::from_millis(40)).unwrap(), 5);
        }
        if i.is_multiple_of(10) {
            tokio::time::sleep(Duration::from_millis(20)).await; // let the socket buffers drain
        }
    }
    for i in 0..50u32 {
        let f = read(&b_audio).await;
        assert_eq!((f.data.as_ref(), f.audio_level), (&[i as u8; 160][..], Some(42)));
        let f = read(&a_audio).await;
        assert_eq!((f.data.as_ref(), f.audio_level), (&[i as u8; 100][..], None));
    }
    for i in (0..50u32).step_by(2) {
        let f = read(&b_video).await;
        assert_eq!(f.data, vp8_frame(i, 5000));
        assert_eq!(f.key_frame, i.is_multiple_of(10));
    }
    // Statistics: what one side sent, the other received.
    let find = |v: &[rtc_api::TrackReport], kind, dir| v.iter().find(|r| r.kind == kind && r.direction == dir).cloned();
    let sent = find(&a.conn.stats(), Kind::Video, Direction::Local).unwrap().stats;
    let recv = find(&b.conn.stats(), Kind::Video, Direction::Remote).unwrap().stats;
    assert_eq!((sent.packets_sent, recv.packets_received), (Some(125), Some(125)));
    assert_eq!(sent.bytes_sent, recv.bytes_received);
    let r = wait_for(&mut a.events, |e| matches!(e, ConnectionEvent::StreamReport { .. })).await;
    assert!(matches!(r, ConnectionEvent::StreamReport { tracks, .. } if !tracks.is_empty()));
    assert_eq!(a.conn.dropped() + b.conn.dropped(), 0);
    assert_eq!(a.socket.dropped() + b.socket.dropped(), 0);
    // close() ends the streams, refuses frames, ends received tracks and
    // frees the UDP ports.
    let ports = a.socket.local_addrs();
    let mut a_stream = a.conn.remote_streams()[0].events();
    a.conn.close();
    assert!(a.audio.write_frame(&[0; 10], Duration::from_millis(20)).is_err());
    wait_for(&mut a.events, |e| *e == ConnectionEvent::Disconnected).await;
    assert!(
        tokio::time::timeout(Duration::from_secs(2), async { while a_stream.next().await.is_some() {} }).await.is_ok()
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(2), async { while a_audio.read_frame().await.is_some() {} })
            .await
            .is_ok()
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    for addr in ports {
        StdUdp::bind(addr).expect("port freed by close()");
    }
    b.conn.close();
}

/// Offer and answer in SDP keyed by DTLS-SRTP, as with a browser: the offer
/// says `a=setup:actpass`, the answerer takes `active`, media flows once the
/// handshake keys SRTP, and close() reaches the peer through close_notify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dtls_srtp_call_signaled_in_sdp() {
    let (mut a, mut b) = (peer().await, peer().await);
    // a offers, b answers (RFC 3264 offer/answer in SDP).
    let offer = a.conn.local_sdp().unwrap();
    assert!(
        offer.contains("UDP/TLS/RTP/SAVPF") && offer.contains("a=fingerprint:sha-256 ") && !offer.contains("a=crypto")
    );
    b.conn.set_remote_sdp(SdpType::Offer, &offer).unwrap();
    let answer = b.conn.local_sdp().unwrap();
    a.conn.set_remote_sdp(SdpType::Answer, &answer).unwrap();
    let setups: Vec<&str> =
        [&offer, &answer].iter().map(|s| s.lines().find(|l| l.starts_with("a=setup:")).unwrap()).collect();
    assert_eq!(setups, ["a=setup:actpass", "a=setup:active"]);
    wait_for(&mut a.events, |e| *e == ConnectionEvent::Connected).await;
    wait_for(&mut b.events, |e| *e == ConnectionEvent::Connected).await;
    a.video.write_frame(&vp8_frame(0, 3000), Duration::from_millis(33)).unwrap();
    b.video.write_frame(&vp8_frame(1, 3000), Duration::from_millis(33)).unwrap();
    assert_eq!(read(&remote_track(&b, Kind::Video)).await.data, vp8_frame(0, 3000));
    assert_eq!(read(&remote_track(&a, Kind::Video)).await.data, vp8_frame(1, 3000));
    let mut b_socket = b.socket.events();
    a.conn.close();
    wait_for(&mut b.events, |e| *e == ConnectionEvent::Disconnected).await;
    assert!(
        tokio::time::timeout(Duration::from_secs(2), async {
            while b_socket.next().await != Some(SocketEvent::Disconnected) {}
        })
        .await
        .is_ok()
    );
}

/// Fork over the shared socket: each fork runs its own DTLS handshake with
/// its own callee; closing the fork keeps the socket for the caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fork_with_dtls_srtp_reaches_two_callees_over_one_socket() {
    let caller = peer().await;
    let fork = caller.conn.fork().unwrap();
    let mut fork_events = fork.events();
    assert_eq!(fork.sockets()[0].id(), caller.socket.id());
    let fork_stream = RtcMediaStream::new(StreamDescription::default());
    let fork_audio = RtcMediaStreamTrack::of_kind(Kind::Audio);
    fork_stream.add_track(fork_audio.clone()).unwrap();
    fork.send_stream(&fork_stream, true).unwrap();
    let (mut b, mut c) = (peer().await, peer().await);
    let mut caller_events = caller.events;
    signal(&caller.conn, &b.conn, true);
    signal(&fork, &c.conn, true);
    for ev in [&mut caller_events, &mut fork_events, &mut b.events, &mut c.events] {
        wait_for(ev, |e| *e == ConnectionEvent::Connected).await;
    }
    caller.audio.write_frame(b"to b", Duration::from_millis(20)).unwrap();
    fork_audio.write_frame(b"to c", Duration::from_millis(20)).unwrap();
    b.audio.write_frame(b"from b", Duration::from_millis(20)).unwrap();
    c.audio.write_frame(b"from c", Duration::from_millis(20)).unwrap();
    assert_eq!(read(&remote_track(&b, Kind::Audio)).await.data, b"to b");
    assert_eq!(read(&remote_track(&c, Kind::Audio)).await.data, b"to c");
    assert_eq!(read(&caller.conn.remote_streams()[0].tracks()[0]).await.data, b"from b");
    assert_eq!(read(&fork.remote_streams()[0].tracks()[0]).await.data, b"from c");
    assert_eq!(caller.conn.dropped() + fork.dropped() + caller.socket.dropped(), 0);
    fork.close();
    caller.audio.write_frame(b"still", Duration::from_millis(20)).unwrap();
    assert_eq!(read(&remote_track(&b, Kind::Audio)).await.data, b"still");
    // A socket serves one connection family.
    let other = RtcConnection::new(None, None).unwrap();
    assert!(matches!(other.add_socket(&caller.socket), Err(Error::InvalidOptions(_))));
}

/// The stream handles: track events on the stream (seed 000), contributors,
/// pause and receive_stream on a received track, remove_track and stop().
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_events_contributors_pause_and_stop() {
    let (mut a, b) = connected_pair(false).await;
    let t = remote_track(&b, Kind::Audio);
    let mut b_stream_events = b.conn.remote_streams()[0].events();
    assert!(a.audio.set_contributors(&[0; 16]).is_err());
    a.audio.set_contributors(&[11, 22]).unwrap();
    a.audio.write_frame(b"mixed", Duration::from_millis(20)).unwrap();
    let e = wait_for(&mut b_stream_events, |e| matches!(e, ConnectionEvent::TrackContributors { .. })).await;
    assert!(
        matches!(e, ConnectionEvent::TrackContributors { contributors, track_id, .. } if contributors == [11, 22] && track_id == a.audio.id())
    );
    assert_eq!(read(&t).await.data, b"mixed");
    // A paused received track delivers nothing; playing again it does.
    t.pause();
    a.audio.write_frame(b"unheard", Duration::from_millis(20)).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(t.try_read_frame().is_none());
    t.play();
    a.audio.write_frame(b"heard", Duration::from_millis(20)).unwrap();
    assert_eq!(read(&t).await.data, b"heard");
    // Removing a sent track stops it and says so; stop() ends the stream.
    let stream = a.conn.local_streams()[0].clone();
    stream.remove_track(&a.video);
    let e = wait_for(&mut a.events, |e| matches!(e, ConnectionEvent::TrackDisconnected { .. })).await;
    assert!(matches!(e, ConnectionEvent::TrackDisconnected { ssrc, .. } if ssrc == a.video.ssrc()));
    assert!(matches!(a.video.write_frame(b"x", Duration::from_millis(20)), Err(Error::NotConnected(_))));
    stream.stop();
    wait_for(&mut a.events, |e| matches!(e, ConnectionEvent::StreamDisconnected { direction: Direction::Local, .. }))
        .await;
    assert_eq!(a.audio.write_frame(b"x", Duration::from_millis(20)).unwrap(), 0, "paused by stop()");
    assert!(a.conn.local_streams().is_empty());
    a.conn.close();
    b.conn.close();
}

/// A socket made with the application's certificate signals its
/// fingerprint, and a call keys against it; fingerprints cannot be given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supplied_certificate_keeps_its_fingerprint() {
    let pem = Certificate::generate().unwrap().to_pem();
    let cert = Certificate::from_pem(&pem).unwrap();
    let socket = RtcSocket::with_certificate(SocketServers::loopback_v4(), SocketOptions::default(), cert.clone())
        .await
        .unwrap();
    assert_eq!(socket.description().options.fingerprints, vec![cert.fingerprint().to_string()]);
    let fp = SocketOptions { fingerprints: vec!["sha-256 AB:CD".into()], ..SocketOptions::default() };
    assert!(matches!(RtcSocket::new(SocketServers::loopback_v4(), fp).await, Err(Error::InvalidOptions(_))));
    let bad_url = SocketServers { urls: vec!["stun:host/path".into()], ..SocketServers::loopback_v4() };
    assert!(matches!(RtcSocket::new(bad_url, SocketOptions::default()).await, Err(Error::InvalidOptions(_))));
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

/// `f` within `secs` seconds.
async fn within<T>(secs: u64, f: impl std::future::Future<Output = T>) -> Result<T, tokio::time::error::Elapsed> {
    tokio::time::timeout(Duration::from_secs(secs), f).await
}

/// A data-only connection over UDP: one side opens a data stream, the other
/// accepts it; strings and binary go both ways; closing ends the peer's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_streams_over_udp_open_carry_messages_and_close() {
    let (a, b) = (RtcConnection::new(None, None).unwrap(), RtcConnection::new(None, None).unwrap());
    let mut a_events = a.events();
    for c in [&a, &b] {
        let socket = RtcSocket::new(SocketServers::loopback_v4(), SocketOptions::default()).await.unwrap();
        c.add_socket(&socket).unwrap();
    }
    let chat = a.create_data_stream(DataStreamDescription::new("chat")).unwrap();
    let mut chat_events = chat.events();
    b.enable_data();
    signal(&a, &b, true);
    wait_for(&mut a_events, |e| *e == ConnectionEvent::Connected).await;
    assert_eq!(within(5, chat_events.next()).await.unwrap(), Some(DataEvent::Open));
    let theirs = within(5, b.accept_data_stream()).await.unwrap().expect("the peer's stream");
    assert_eq!(theirs.description().unwrap().label, "chat");
    assert_eq!(theirs.state(), DataState::Open);
    chat.send_text("hello").unwrap();
    chat.send(&[0u8; 70_000]).unwrap();
    let m = within(5, theirs.recv()).await.unwrap().unwrap();
    assert_eq!(m.text(), Some("hello"));
    let m = within(5, theirs.recv()).await.unwrap().unwrap();
    assert!(m.binary && m.data.len() == 70_000);
    theirs.send_text("back").unwrap();
    assert_eq!(within(5, chat.recv()).await.unwrap().unwrap().text(), Some("back"));
    assert_eq!(a.data_streams().len(), 1);
    theirs.close();
    loop {
        match within(5, chat_events.next()).await.unwrap() {
            Some(DataEvent::Closed) => break,
            Some(_) => {}
            None => panic!("events ended before close"),
        }
    }
    assert_eq!(chat.state(), DataState::Closed);
    a.close();
    assert!(within(5, chat.recv()).await.unwrap().is_none(), "messages end with the connection");
}

/// `SocketServers::port` binds that port on every address (RTCP on the next
/// one without mux); a port already taken fails the socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_binds_the_port_it_is_given() {
    // Two free consecutive ports: the kernel's pick and the one after,
    // both checked free (retried a few times if another program has one).
    let mut port = None;
    for _ in 0..20 {
        let a = StdUdp::bind("127.0.0.1:0").unwrap();
        let p = a.local_addr().unwrap().port();
        if p < 65535 && StdUdp::bind(("127.0.0.1", p + 1)).is_ok() {
            port = Some(p);
            break;
        }
    }
    let port = port.expect("two free consecutive ports");
    let servers = SocketServers { port: Some(port), ..SocketServers::loopback_v4() };
    let options = SocketOptions { mux: false, ..SocketOptions::default() };
    let socket = RtcSocket::new(servers.clone(), options).await.unwrap();
    let ports: Vec<u16> = socket.local_addrs().iter().map(|a| a.port()).collect();
    assert_eq!(ports, [port, port + 1]);
    let taken = RtcSocket::new(servers, SocketOptions::default()).await;
    assert!(taken.is_err(), "the port is in use");
    drop(socket);
}
