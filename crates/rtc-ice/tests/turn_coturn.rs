//! Two `IceSocket`s whose only path is a real TURN relay: coturn
//! (Debian's `turnserver`, installed by scripts/install-peers.sh) started
//! by the test on 127.0.0.1 with a static long-term user, each socket given
//! only the other's relayed candidate. Data flows both ways through the
//! relay, reached over UDP, over TCP and over TLS (`turns:`, a self-signed
//! certificate made by the test with rcgen and given to the sockets as a
//! root; without it the handshake fails and no relay is allocated).
//! Skipped (with a message) where `turnserver` is not installed.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rtc_candidate::{Candidate, CandidateType, Component};
use rtc_ice::turn::AllocationState;
use rtc_ice::udp::resolve_turn;
use rtc_ice::{AgentConfig, Event, IceSocket, Nomination, Role, SocketConfig, State, TurnTransport};

struct Coturn {
    child: Child,
    dir: std::path::PathBuf,
    /// UDP and TCP.
    addr: SocketAddr,
    /// TLS.
    tls_addr: SocketAddr,
    /// The self-signed certificate of the TLS listener (for 127.0.0.1 and
    /// localhost), PEM.
    cert_pem: String,
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A PEM block (RFC 7468): base64 in lines of 64.
fn pem(label: &str, der: &[u8]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::new();
    for chunk in der.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                text.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                text.push('=');
            }
        }
    }
    let lines: Vec<&str> = text.as_bytes().chunks(64).map(|l| std::str::from_utf8(l).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
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

/// coturn on 127.0.0.1 only (listening and relaying), ephemeral listening
/// ports (UDP and TCP on one, TLS on another, with a self-signed
/// certificate made here), user `u:p` in realm `rtc`, loopback peers
/// allowed, no DTLS listener, no CLI. Waits until both TCP listeners take
/// connections. `None` when `turnserver` is missing.
fn start_coturn() -> Option<Coturn> {
    let (port, tls_port) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("rtc-ice-turn-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let cert_pem = pem("CERTIFICATE", cert.cert.der());
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, &cert_pem).unwrap();
    std::fs::write(&key_file, pem("PRIVATE KEY", &cert.signing_key.serialize_der())).unwrap();
    let spawned = Command::new("turnserver")
        .args(["-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1"])
        .arg(format!("--listening-port={port}"))
        .arg(format!("--tls-listening-port={tls_port}"))
        .arg(format!("--cert={}", cert_file.display()))
        .arg(format!("--pkey={}", key_file.display()))
        .args(["--lt-cred-mech", "--user=u:p", "--realm=rtc", "--allow-loopback-peers"])
        .args(["--no-dtls", "--no-cli", "--simple-log", "--min-port=40000", "--max-port=60000"])
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
    let deadline = Instant::now() + Duration::from_secs(10);
    for a in [addr, tls_addr] {
        while std::net::TcpStream::connect_timeout(&a, Duration::from_millis(100)).is_err() {
            assert!(Instant::now() < deadline, "coturn does not listen on {a}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Some(coturn)
}

async fn socket(role: Role, url: &str, ca: Option<&str>) -> IceSocket {
    let agent = AgentConfig {
        role,
        nomination: Nomination::Regular,
        // On loopback the relay's IP is the hosts' too: a host-to-relay
        // pair would work through the peer's permission. Relayed only.
        relay_only: true,
        turn_servers: resolve_turn(url, "u", "p").await.unwrap(),
        ..AgentConfig::default()
    };
    let config = SocketConfig {
        bind: vec!["127.0.0.1:0".parse().unwrap()],
        turn_ca_pem: ca.into_iter().map(str::to_owned).collect(),
        ..SocketConfig::loopback(agent)
    };
    IceSocket::bind(config).await.unwrap()
}

/// Waits for the socket's relayed candidate (and the end of gathering).
async fn relayed(s: &mut IceSocket) -> rtc_candidate::Candidate {
    let mut relay = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), s.next_event()).await {
            Ok(Some(Event::Candidate(c))) => {
                assert_eq!(c.kind, CandidateType::RELAY, "relay_only signals relayed candidates only");
                relay = Some(c);
            }
            Ok(Some(Event::CandidatesDone)) => break,
            Ok(Some(_)) => {}
            other => panic!("no end of gathering: {other:?}"),
        }
    }
    relay.expect("a relayed candidate from coturn")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sockets_connect_through_coturn_and_exchange_data() {
    let Some(coturn) = start_coturn() else { return };
    call_through(&coturn, &format!("turn:{}?transport=udp", coturn.addr), None, TurnTransport::Udp).await;
}

/// TURN over TCP (RFC 8656 section 12.5 framing on the stream; the
/// relayed address is UDP).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sockets_connect_through_coturn_over_tcp() {
    let Some(coturn) = start_coturn() else { return };
    call_through(&coturn, &format!("turn:{}?transport=tcp", coturn.addr), None, TurnTransport::Tcp).await;
}

/// TURN over TLS (`turns:`): coturn's self-signed certificate is the
/// sockets' root, verified for 127.0.0.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sockets_connect_through_coturn_over_tls() {
    let Some(coturn) = start_coturn() else { return };
    let url = format!("turns:{}", coturn.tls_addr);
    call_through(&coturn, &url, Some(&coturn.cert_pem), TurnTransport::Tls).await;
}

/// Without the certificate as a root, the TLS handshake fails (Mozilla's
/// roots do not vouch for it): no relayed candidate, gathering ends at
/// once, and nothing is sent to the server but the handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_tls_certificate_is_refused() {
    let Some(coturn) = start_coturn() else { return };
    let started = Instant::now();
    let mut a = socket(Role::Controlling, &format!("turns:{}", coturn.tls_addr), None).await;
    let done = async {
        while let Some(e) = a.next_event().await {
            assert!(!matches!(e, Event::Candidate(_)), "no candidate: {e:?}");
            if e == Event::CandidatesDone {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), done).await.expect("gathering ends");
    assert!(started.elapsed() < Duration::from_secs(4), "ended by the failed handshake, not the timeout");
    a.with_agent(|ag| {
        let alloc = ag.relay_allocations().next().unwrap();
        assert_eq!((alloc.state(), alloc.stats().requests), (AllocationState::Failed, 0));
    });
}

async fn call_through(coturn: &Coturn, url: &str, ca: Option<&str>, transport: TurnTransport) {
    let server = if transport == TurnTransport::Tls { coturn.tls_addr } else { coturn.addr };
    // Over UDP coturn may need a moment to open its listener; the Allocate
    // is retransmitted anyway (500 ms RTO).
    let started = Instant::now();
    let mut a = socket(Role::Controlling, url, ca).await;
    let mut b = socket(Role::Controlled, url, ca).await;
    let (ra, rb) = (relayed(&mut a).await, relayed(&mut b).await);
    println!(
        "{transport:?}: relayed a {}:{} (took {:?}), b {}:{}",
        ra.address,
        ra.port,
        started.elapsed(),
        rb.address,
        rb.port
    );
    assert_eq!(ra.priority >> 24, 0, "type preference 0");
    assert_eq!(ra.transport.as_str(), "udp", "the relayed address is UDP");
    let pref = (ra.priority >> 8) & 0xFFFF;
    let rank = match transport {
        TurnTransport::Udp => 3,
        TurnTransport::Tcp => 2,
        _ => 1,
    };
    assert_eq!(pref >> 14, rank, "local preference {pref:#x} ranks the transport");
    for s in [&a, &b] {
        s.with_agent(|ag| {
            let alloc = ag.relay_allocations().next().unwrap();
            assert_eq!(alloc.state(), AllocationState::Allocated);
            assert_eq!((alloc.server(), alloc.transport()), (server, transport));
        });
    }
    connect_relayed(&mut a, &mut b, (&ra, &rb)).await;
    println!("{transport:?}: connected through coturn after {:?}", started.elapsed());
    // Data both ways through the relay (Send indications, then ChannelData
    // once the channels are bound).
    let mut got_a = Vec::new();
    let mut got_b = Vec::new();
    for i in 0..50u32 {
        a.send(Component::RTP, format!("from a {i}").as_bytes()).await.unwrap();
        b.send(Component::RTP, format!("from b {i}").as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while (got_a.len() < 50 || got_b.len() < 50) && Instant::now() < deadline {
        tokio::select! {
            Some(d) = a.recv() => got_a.push(String::from_utf8(d.to_vec()).unwrap()),
            Some(d) = b.recv() => got_b.push(String::from_utf8(d.to_vec()).unwrap()),
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
    // Loopback loses nothing; allow a little for socket buffers anyway.
    assert!(got_a.len() >= 48 && got_b.len() >= 48, "a got {}, b got {}", got_a.len(), got_b.len());
    assert!(got_b.iter().all(|m| m.starts_with("from a ")));
    assert!(got_a.iter().all(|m| m.starts_with("from b ")));
    for s in [&a, &b] {
        s.with_agent(|ag| {
            let alloc = ag.relay_allocations().next().unwrap();
            let st = alloc.stats();
            println!(
                "{:?}: relayed out {}, in {}, dropped {}",
                alloc.relayed(),
                st.relayed_out,
                st.relayed_in,
                st.dropped
            );
            assert!(st.relayed_out >= 50 && st.relayed_in >= 48, "{st:?}");
            assert_eq!(st.dropped, 0);
            if transport.is_stream() {
                assert_eq!(st.retransmits, 0, "nothing retransmitted on a stream");
            }
            let peer = ag.path(Component::RTP).unwrap().remote;
            assert!(alloc.channel(peer).is_some(), "a channel is bound to the peer");
        });
    }
    println!("{transport:?}: {} and {} datagrams through coturn", got_a.len(), got_b.len());
    a.close();
    b.close();
}

/// Connects `a` and `b` over their relayed candidates `ra` and `rb` only
/// (the host addresses are never checked): both select a relay/relay
/// pair.
async fn connect_relayed(a: &mut IceSocket, b: &mut IceSocket, (ra, rb): (&Candidate, &Candidate)) {
    a.set_remote_credentials(b.local_credentials()).unwrap();
    b.set_remote_credentials(a.local_credentials()).unwrap();
    a.add_remote_candidate(rb).unwrap();
    b.add_remote_candidate(ra).unwrap();
    a.end_of_remote_candidates();
    b.end_of_remote_candidates();
    for s in [a, b] {
        let connected = async {
            let mut active = None;
            while let Some(e) = s.next_event().await {
                match e {
                    Event::ActiveCandidate { local, remote, .. } => active = Some((local.kind, remote.kind)),
                    Event::Connected => return active,
                    Event::Failed => panic!("ICE failed"),
                    _ => {}
                }
            }
            None
        };
        let active = tokio::time::timeout(Duration::from_secs(10), connected).await.expect("connected in time");
        assert_eq!(active, Some((CandidateType::RELAY, CandidateType::RELAY)));
        assert_eq!(s.state(), State::Connected);
    }
}

/// Once warm, a datagram through the relay each way (framed for coturn
/// into a reused buffer, sent over UDP or the TCP stream, the server's
/// message read into a pooled buffer, unframed) allocates nothing. The
/// sockets' drivers run on this thread (a current-thread runtime), so
/// allocation-counter sees them.
#[test]
fn relayed_datagrams_do_not_allocate_once_warm() {
    let Some(coturn) = start_coturn() else { return };
    // Over TLS, rustls buffers each record it writes in a vector of its
    // own (measured: two allocations per datagram relayed), so TLS is left
    // out here.
    for transport in ["udp", "tcp"] {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (url, ca) = match transport {
            "tls" => (format!("turns:{}", coturn.tls_addr), Some(coturn.cert_pem.as_str())),
            t => (format!("turn:{}?transport={t}", coturn.addr), None),
        };
        let (mut a, mut b) = rt.block_on(async {
            let mut a = socket(Role::Controlling, &url, ca).await;
            let mut b = socket(Role::Controlled, &url, ca).await;
            let (ra, rb) = (relayed(&mut a).await, relayed(&mut b).await);
            connect_relayed(&mut a, &mut b, (&ra, &rb)).await;
            (a, b)
        });
        let payload = [0x80u8; 1000];
        let mut echoes = |n: u32| {
            rt.block_on(async {
                for _ in 0..n {
                    a.send(Component::RTP, &payload).await.unwrap();
                    let d = tokio::time::timeout(Duration::from_secs(2), b.recv()).await.unwrap().unwrap();
                    b.send(d.component(), &d).await.unwrap();
                    drop(d);
                    let e = tokio::time::timeout(Duration::from_secs(2), a.recv()).await.unwrap().unwrap();
                    assert_eq!(e.len(), payload.len());
                }
            })
        };
        // Warm up: the channels get bound (ChannelData from then on).
        echoes(200);
        let info = allocation_counter::measure(|| echoes(500));
        println!("TURN over {transport}: 500 echoes through coturn: {info:?}");
        assert!(info.count_total <= 20, "{transport}: {info:?}");
        a.close();
        b.close();
    }
}

/// The TURN server goes away under a TCP allocation: the stream ends and
/// the allocation is lost at once (RFC 8656 section 3.1), not at the next
/// refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_tcp_stream_loses_the_allocation() {
    let Some(coturn) = start_coturn() else { return };
    let mut a = socket(Role::Controlling, &format!("turn:{}?transport=tcp", coturn.addr), None).await;
    relayed(&mut a).await;
    let state = |s: &IceSocket| s.with_agent(|ag| ag.relay_allocations().next().unwrap().state());
    assert_eq!(state(&a), AllocationState::Allocated);
    drop(coturn);
    let deadline = Instant::now() + Duration::from_secs(5);
    while state(&a) != AllocationState::Failed {
        assert!(Instant::now() < deadline, "the allocation outlived its stream");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
