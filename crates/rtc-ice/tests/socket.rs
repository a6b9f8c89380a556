//! Two `IceSocket`s over the loopback interface (binds only 127.0.0.1/::1).

use std::net::SocketAddr;
use std::time::Duration;

use rtc_candidate::Component;
use rtc_ice::{AgentConfig, Event, IceSocket, Role, SocketConfig, State};

/// With `tcp`, both gather ICE-TCP candidates and signal only those.
async fn pair_with(bind: &str, tcp: bool) -> (IceSocket, IceSocket) {
    let addr: SocketAddr = bind.parse().unwrap();
    let mk = |role| SocketConfig {
        agent: AgentConfig { role, ..AgentConfig::default() },
        bind: vec![addr],
        stun_urls: vec![],
        turn_ca_pem: vec![],
        tcp,
    };
    let a = IceSocket::bind(mk(Role::Controlling)).await.unwrap();
    let b = IceSocket::bind(mk(Role::Controlled)).await.unwrap();
    a.set_remote_credentials(b.local_credentials()).unwrap();
    b.set_remote_credentials(a.local_credentials()).unwrap();
    let signaled = |c: &rtc_candidate::Candidate| !tcp || c.tcp_type().is_some();
    for c in a.local_candidates().iter().filter(|c| signaled(c)) {
        b.add_remote_candidate(c).unwrap();
    }
    for c in b.local_candidates().iter().filter(|c| signaled(c)) {
        a.add_remote_candidate(c).unwrap();
    }
    a.end_of_remote_candidates();
    b.end_of_remote_candidates();
    (a, b)
}

async fn until_connected(s: &mut IceSocket) -> Vec<Event> {
    let mut seen = Vec::new();
    while let Some(e) = s.next_event().await {
        let done = e == Event::Connected;
        seen.push(e);
        if done {
            return seen;
        }
    }
    panic!("events ended before Connected: {seen:?}");
}

async fn connect_and_echo(bind: &str) {
    connect_and_echo_with(bind, false).await;
}

async fn connect_and_echo_with(bind: &str, tcp: bool) {
    let (mut a, mut b) = pair_with(bind, tcp).await;
    let (ea, eb) = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(until_connected(&mut a), until_connected(&mut b))
    })
    .await
    .expect("connected within 10 s");
    assert!(ea.iter().any(|e| matches!(e, Event::ActiveCandidate { .. })));
    assert!(eb.contains(&Event::CandidatesDone));
    assert_eq!(a.state(), State::Connected);
    for i in 0..20u32 {
        let msg = format!("ping {i}");
        a.send(Component::RTP, msg.as_bytes()).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), b.recv()).await.unwrap().unwrap();
        assert_eq!((got.component(), &*got), (Component::RTP, msg.as_bytes()));
        b.send(Component::RTP, &got).await.unwrap();
        let echo = tokio::time::timeout(Duration::from_secs(5), a.recv()).await.unwrap().unwrap();
        assert_eq!(&*echo, msg.as_bytes());
    }
    assert_eq!(a.with_agent(|ag| ag.stats().dropped_total()), 0);
    let pair = a.with_agent(|ag| ag.selected_pair(Component::RTP)).unwrap();
    assert_eq!(pair.tcp_type.is_some(), tcp, "{pair:?}");
    assert_eq!(a.with_agent(|ag| ag.is_tcp_path(pair.local)), tcp);
}

#[tokio::test]
async fn connects_over_ipv4_loopback() {
    connect_and_echo("127.0.0.1:0").await;
}

#[tokio::test]
async fn connects_over_ipv6_loopback() {
    // Machines without ::1 cannot run this; the bind error says so.
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("no ::1 on this machine");
        return;
    }
    connect_and_echo("[::1]:0").await;
}

/// ICE-TCP alone (only TCP candidates signaled): the pair selected runs
/// over a TCP connection, and datagrams are echoed over it.
#[tokio::test]
async fn connects_over_ice_tcp() {
    connect_and_echo_with("127.0.0.1:0", true).await;
}

#[tokio::test]
async fn send_before_connected_is_refused() {
    let cfg = SocketConfig::loopback(AgentConfig::default());
    let s = IceSocket::bind(cfg).await.unwrap();
    assert!(!s.local_addrs().is_empty());
    assert!(s.local_addrs().iter().all(|a| a.ip().is_loopback()));
    let err = s.send(Component::RTP, b"x").await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotConnected);
}

/// Once warm, an application datagram through two `IceSocket`s (send,
/// batch receive, agent, pooled `Datagram`, echo) allocates nothing.
/// Everything runs on this thread (a current-thread runtime), so
/// allocation-counter sees the driver tasks too.
#[test]
fn datagrams_do_not_allocate_once_warm() {
    datagrams_do_not_allocate_once_warm_over(false);
}

/// The same over an ICE-TCP connection (framing, the connection's tasks
/// and their buffers included).
#[test]
fn datagrams_over_ice_tcp_do_not_allocate_once_warm() {
    datagrams_do_not_allocate_once_warm_over(true);
}

fn datagrams_do_not_allocate_once_warm_over(tcp: bool) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (mut a, mut b) = rt.block_on(async {
        let (mut a, mut b) = pair_with("127.0.0.1:0", tcp).await;
        tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(until_connected(&mut a), until_connected(&mut b))
        })
        .await
        .expect("connected within 10 s");
        (a, b)
    });
    let payload = [0x80u8; 1200];
    let mut echoes = |n: u32| {
        rt.block_on(async {
            for _ in 0..n {
                a.send(Component::RTP, &payload).await.unwrap();
                let d = b.recv().await.unwrap();
                b.send(d.component(), &d).await.unwrap();
                drop(d);
                assert_eq!(a.recv().await.unwrap().len(), payload.len());
            }
        })
    };
    echoes(100);
    let info = allocation_counter::measure(|| echoes(500));
    // The agent's own timers may fire meanwhile (consent every 4 to 6 s);
    // nothing may be paid per datagram.
    assert!(info.count_total <= 10, "{info:?}");
    let over_tcp = a.with_agent(|ag| ag.path(Component::RTP).is_some_and(|p| ag.is_tcp_path(p.local)));
    assert_eq!(over_tcp, tcp);
}
