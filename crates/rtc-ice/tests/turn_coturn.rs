//! Two `IceSocket`s whose only path is a real TURN relay: coturn
//! (Debian's `turnserver`, installed by scripts/install-peers.sh) started
//! by the test on 127.0.0.1 with a static long-term user, each socket given
//! only the other's relayed candidate. Data flows both ways through the
//! relay. Skipped (with a message) where `turnserver` is not installed.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rtc_candidate::{CandidateType, Component};
use rtc_ice::turn::AllocationState;
use rtc_ice::udp::resolve_turn;
use rtc_ice::{AgentConfig, Event, IceSocket, Nomination, Role, SocketConfig, State};

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

/// coturn on 127.0.0.1 only (listening and relaying), an ephemeral
/// listening port, user `u:p` in realm `rtc`, loopback peers allowed, no
/// TLS/DTLS listeners, no CLI. `None` when `turnserver` is missing.
fn start_coturn() -> Option<Coturn> {
    let port = std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).unwrap().port();
    let dir = std::env::temp_dir().join(format!("rtc-ice-turn-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spawned = Command::new("turnserver")
        .args(["-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1"])
        .arg(format!("--listening-port={port}"))
        .args(["--lt-cred-mech", "--user=u:p", "--realm=rtc", "--allow-loopback-peers"])
        .args(["--no-tls", "--no-dtls", "--no-cli", "--simple-log", "--min-port=40000", "--max-port=60000"])
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

async fn socket(role: Role, url: &str) -> IceSocket {
    let agent = AgentConfig {
        role,
        nomination: Nomination::Regular,
        // On loopback the relay's IP is the hosts' too: a host-to-relay
        // pair would work through the peer's permission. Relayed only.
        relay_only: true,
        turn_servers: resolve_turn(url, "u", "p").await.unwrap(),
        ..AgentConfig::default()
    };
    let config = SocketConfig { agent, bind: vec!["127.0.0.1:0".parse().unwrap()], stun_urls: vec![] };
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
    let url = format!("turn:{}?transport=udp", coturn.addr);
    // coturn needs a moment to open its listener; the Allocate is
    // retransmitted anyway (500 ms RTO).
    let started = Instant::now();
    let mut a = socket(Role::Controlling, &url).await;
    let mut b = socket(Role::Controlled, &url).await;
    let (ra, rb) = (relayed(&mut a).await, relayed(&mut b).await);
    println!("relayed: a {}:{} (took {:?}), b {}:{}", ra.address, ra.port, started.elapsed(), rb.address, rb.port);
    assert_eq!(ra.priority >> 24, 0, "type preference 0");
    for s in [&a, &b] {
        s.with_agent(|ag| {
            let alloc = ag.relay_allocations().next().unwrap();
            assert_eq!(alloc.state(), AllocationState::Allocated);
            assert_eq!(alloc.server(), coturn.addr);
        });
    }
    a.set_remote_credentials(b.local_credentials()).unwrap();
    b.set_remote_credentials(a.local_credentials()).unwrap();
    // Only the relayed candidates: the host addresses are never checked.
    a.add_remote_candidate(&rb).unwrap();
    b.add_remote_candidate(&ra).unwrap();
    a.end_of_remote_candidates();
    b.end_of_remote_candidates();
    for s in [&mut a, &mut b] {
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
    }
    assert_eq!((a.state(), b.state()), (State::Connected, State::Connected));
    println!("connected through coturn after {:?}", started.elapsed());
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
            let peer = ag.path(Component::RTP).unwrap().remote;
            assert!(alloc.channel(peer).is_some(), "a channel is bound to the peer");
        });
    }
    println!("{} and {} datagrams through coturn", got_a.len(), got_b.len());
    a.close();
    b.close();
}
