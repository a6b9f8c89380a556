//! A call through a real TURN relay: coturn (Debian's `turnserver`,
//! installed by scripts/install-peers.sh) started by the test on 127.0.0.1
//! only, a static long-term user; both sockets name it with a `turn:` URL
//! (UDP, or `?transport=tcp`) or a `turns:` one (TLS, the certificate made
//! by the test with rcgen and given as `turn-ca`), username and credential
//! in their RTCSocketServers and use relayed candidates only, so audio
//! flows both ways through the relay. Skipped with a message where
//! `turnserver` is missing.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rtc_api::{
    Certificate, ConnectionEvent, Direction, Events, RtcConnection, RtcMediaStream, RtcMediaStreamTrack, RtcSocket,
    SocketEvent, SocketOptions, SocketServers, StreamDescription,
};
use rtc_codecs::Kind;

struct Coturn {
    child: Child,
    dir: std::path::PathBuf,
    /// UDP and TCP.
    addr: SocketAddr,
    /// TLS.
    tls_addr: SocketAddr,
    /// The TLS listener's self-signed certificate (for 127.0.0.1), PEM.
    cert_pem: String,
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port free for UDP and TCP on 127.0.0.1 (as far as one can tell).
fn free_port() -> u16 {
    loop {
        let port = std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// coturn with UDP and TCP on one port and TLS on another (a self-signed
/// certificate for 127.0.0.1 made here); waits until the TCP listeners
/// take connections.
fn start_coturn() -> Option<Coturn> {
    let (port, tls_port) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("rtc-api-turn-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    // The certificate and its key in one PEM file, for coturn's --cert
    // and --pkey; its CERTIFICATE block is the sockets' root.
    let cert_pem = Certificate::from_der(made.cert.der(), &made.signing_key.serialize_der()).unwrap().to_pem();
    let pem = dir.join("cert.pem");
    std::fs::write(&pem, &cert_pem).unwrap();
    let spawned = Command::new("turnserver")
        .args(["-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1"])
        .arg(format!("--listening-port={port}"))
        .arg(format!("--tls-listening-port={tls_port}"))
        .arg(format!("--cert={}", pem.display()))
        .arg(format!("--pkey={}", pem.display()))
        .args(["--lt-cred-mech", "--user=u:p", "--realm=rtc", "--allow-loopback-peers"])
        .args(["--no-dtls", "--no-cli", "--simple-log"])
        .arg(format!("--log-file={}", dir.join("turnserver.log").display()))
        .arg(format!("--pidfile={}", dir.join("turnserver.pid").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let child = match spawned {
        Ok(child) => child,
        Err(e) => {
            println!("skipped: cannot run turnserver ({e}); install coturn (scripts/install-peers.sh)");
            let _ = std::fs::remove_dir_all(&dir);
            return None;
        }
    };
    let (addr, tls_addr) = (SocketAddr::from(([127, 0, 0, 1], port)), SocketAddr::from(([127, 0, 0, 1], tls_port)));
    let coturn = Coturn { child, dir, addr, tls_addr, cert_pem };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    for a in [addr, tls_addr] {
        while std::net::TcpStream::connect_timeout(&a, Duration::from_millis(100)).is_err() {
            assert!(std::time::Instant::now() < deadline, "coturn does not listen on {a}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Some(coturn)
}

struct Peer {
    conn: RtcConnection,
    audio: RtcMediaStreamTrack,
    events: Events<ConnectionEvent>,
}

async fn peer(url: &str, ca: Option<&str>) -> Peer {
    let servers = SocketServers {
        urls: vec![url.to_owned()],
        username: Some("u".into()),
        credential: Some("p".into()),
        relay_only: true,
        turn_ca: ca.into_iter().map(str::to_owned).collect(),
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
    call(&format!("turn:{}?transport=udp", coturn.addr), None).await;
}

/// The relay reached over TCP (RFC 8656 section 12.5 framing; the relayed
/// address is UDP): the same call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_through_coturn_over_tcp() {
    let Some(coturn) = start_coturn() else { return };
    call(&format!("turn:{}?transport=tcp", coturn.addr), None).await;
}

/// The relay reached over TLS (`turns:`), coturn's certificate the
/// socket's root (`turn-ca`): the same call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_through_coturn_over_tls() {
    let Some(coturn) = start_coturn() else { return };
    call(&format!("turns:{}", coturn.tls_addr), Some(&coturn.cert_pem)).await;
}

async fn call(url: &str, ca: Option<&str>) {
    let (mut a, mut b) = (peer(url, ca).await, peer(url, ca).await);
    for (from, to) in [(&a.conn, &b.conn), (&b.conn, &a.conn)] {
        let d = from.description(Direction::Local).unwrap();
        let candidates: Vec<_> = d.sockets.iter().flat_map(|s| s.candidates.iter()).collect();
        assert!(!candidates.is_empty());
        assert!(candidates.iter().all(|c| c.kind.as_str() == "relay"), "relayed candidates only: {candidates:?}");
        // The local preference ranks the transport to the server (UDP 3,
        // TCP 2, TLS 1 in its top two bits).
        let rank = if url.starts_with("turns:") {
            1
        } else if url.ends_with("tcp") {
            2
        } else {
            3
        };
        assert!(candidates.iter().all(|c| (c.priority >> 22) & 3 == rank), "{candidates:?}");
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
    println!("30 audio frames each way through coturn at {url}");
    a.conn.close();
    b.conn.close();
}

/// A `turn-ca` that is not a certificate is refused when the socket is
/// made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_ca_that_is_no_certificate_is_refused() {
    let servers = SocketServers { turn_ca: vec!["not a certificate".into()], ..SocketServers::loopback_v4() };
    match RtcSocket::new(servers, SocketOptions::default()).await {
        Err(rtc_api::Error::InvalidOptions(m)) => assert!(m.contains("turn-ca"), "{m}"),
        other => panic!("{:?}", other.map(|_| ())),
    }
}
