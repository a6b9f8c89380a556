//! A call through a real TURN relay: coturn (Debian's `turnserver`,
//! installed by scripts/install-peers.sh) started by the test on 127.0.0.1
//! only, a static long-term user; both sockets name it with a `turn:` URL,
//! username and credential in their RTCSocketServers and use relayed
//! candidates only, so audio flows both ways through the relay. Skipped
//! with a message where `turnserver` is missing.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rtc_api::{
    ConnectionEvent, Direction, Events, RtcConnection, RtcMediaStream, RtcMediaStreamTrack, RtcSocket, SocketEvent,
    SocketOptions, SocketServers, StreamDescription,
};
use rtc_codecs::Kind;

struct Coturn {
    child: Child,
    dir: std::path::PathBuf,
    addr: SocketAddr,
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_coturn() -> Option<Coturn> {
    let port = std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).unwrap().port();
    let dir = std::env::temp_dir().join(format!("rtc-api-turn-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spawned = Command::new("turnserver")
        .args(["-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1"])
        .arg(format!("--listening-port={port}"))
        .args(["--lt-cred-mech", "--user=u:p", "--realm=rtc", "--allow-loopback-peers"])
        .args(["--no-tls", "--no-dtls", "--no-cli", "--simple-log"])
        .arg(format!("--log-file={}", dir.join("turnserver.log").display()))
        .arg(format!("--pidfile={}", dir.join("turnserver.pid").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match spawned {
        Ok(child) => Some(Coturn { child, dir, addr: SocketAddr::from(([127, 0, 0, 1], port)) }),
        Err(e) => {
            println!("skipped: cannot run turnserver ({e}); install coturn (scripts/install-peers.sh)");
            let _ = std::fs::remove_dir_all(&dir);
            None
        }
    }
}

struct Peer {
    conn: RtcConnection,
    audio: RtcMediaStreamTrack,
    events: Events<ConnectionEvent>,
}

async fn peer(url: &str) -> Peer {
    let servers = SocketServers {
        urls: vec![url.to_owned()],
        username: Some("u".into()),
        credential: Some("p".into()),
        relay_only: true,
        ..SocketServers::loopback_v4()
    };
    let socket = RtcSocket::new(servers, SocketOptions::default()).await.unwrap();
    let mut socket_events = socket.events();
    let conn = RtcConnection::new(None, None).unwrap();
    let events = conn.events();
    let stream = RtcMediaStream::new(StreamDescription::default());
    let audio = RtcMediaStreamTrack::of_kind(Kind::Audio);
    stream.add_track(audio.clone()).unwrap();
    conn.send_stream(&stream, true).unwrap();
    conn.add_socket(&socket).unwrap();
    // The relayed candidate comes once coturn answered: signal after it.
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(e) = socket_events.next().await {
            if e == SocketEvent::CandidatesDone {
                return;
            }
        }
    })
    .await
    .expect("gathering ends");
    Peer { conn, audio, events }
}

async fn wait_for(events: &mut Events<ConnectionEvent>, want: impl Fn(&ConnectionEvent) -> bool) -> ConnectionEvent {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let e = events.next().await.expect("event stream ended");
            if want(&e) {
                return e;
            }
        }
    })
    .await
    .expect("event did not fire within 10 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_through_coturn_over_relayed_candidates() {
    let Some(coturn) = start_coturn() else { return };
    let url = format!("turn:{}?transport=udp", coturn.addr);
    let (mut a, mut b) = (peer(&url).await, peer(&url).await);
    for (from, to) in [(&a.conn, &b.conn), (&b.conn, &a.conn)] {
        let d = from.description(Direction::Local).unwrap();
        let candidates: Vec<_> = d.sockets.iter().flat_map(|s| s.candidates.iter()).collect();
        assert!(!candidates.is_empty());
        assert!(candidates.iter().all(|c| c.kind.as_str() == "relay"), "relayed candidates only: {candidates:?}");
        to.set_description(d, Direction::Remote).unwrap();
    }
    for p in [&mut a, &mut b] {
        let e = wait_for(&mut p.events, |e| matches!(e, ConnectionEvent::ActiveConnectionCandidate { .. })).await;
        let ConnectionEvent::ActiveConnectionCandidate { local, remote, .. } = e else { unreachable!() };
        assert_eq!((local.kind.as_str(), remote.kind.as_str()), ("relay", "relay"));
        wait_for(&mut p.events, |e| *e == ConnectionEvent::Connected).await;
    }
    let remote_audio =
        |p: &Peer| p.conn.remote_streams().iter().flat_map(|s| s.tracks()).find(|t| t.kind() == Kind::Audio).unwrap();
    let (a_in, b_in) = (remote_audio(&a), remote_audio(&b));
    for i in 0..30u8 {
        a.audio.write_frame(&[i; 160], Duration::from_millis(20)).unwrap();
        b.audio.write_frame(&[i.wrapping_add(100); 120], Duration::from_millis(20)).unwrap();
    }
    for i in 0..30u8 {
        let f = tokio::time::timeout(Duration::from_secs(2), b_in.read_frame()).await.unwrap().unwrap();
        assert_eq!(f.data, vec![i; 160]);
        let f = tokio::time::timeout(Duration::from_secs(2), a_in.read_frame()).await.unwrap().unwrap();
        assert_eq!(f.data, vec![i.wrapping_add(100); 120]);
    }
    println!("30 audio frames each way through coturn at {}", coturn.addr);
    a.conn.close();
    b.conn.close();
}

/// TURN over TCP (`?transport=tcp`) and TLS (`turns:`) run under rtc-ice's
/// `IceSocket`; RTCSocket's driver moves datagrams only, so it refuses
/// those URLs with a message saying so rather than gathering nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_over_tcp_and_tls_urls_are_refused_for_now() {
    for url in ["turn:127.0.0.1:3478?transport=tcp", "turns:127.0.0.1:5349"] {
        let servers = SocketServers {
            urls: vec![url.into()],
            username: Some("u".into()),
            credential: Some("p".into()),
            ..SocketServers::loopback_v4()
        };
        match RtcSocket::new(servers, SocketOptions::default()).await {
            Err(rtc_api::Error::InvalidOptions(m)) => assert!(m.contains("TCP or TLS"), "{m}"),
            other => panic!("{url}: {:?}", other.map(|_| ())),
        }
    }
}
