//! The tokio UDP layer over 127.0.0.1: binding, batches, truncation,
//! sending without waiting, `stun:` resolution, and no allocation per
//! received datagram.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use rtc_candidate::Component;
use rtc_ice::udp::{
    RecvBatch, UdpSocketSet, host_addrs, interface_addrs, resolve_stun, resolve_stun_all, resolve_turn,
};
use rtc_ice::{Error, TurnTransport};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

async fn set_of(components: u16) -> UdpSocketSet {
    UdpSocketSet::bind(&[LOOPBACK], components, false).await.unwrap().into_iter().collect()
}

/// Receives until `n` datagrams arrived (one or more batches), within 5 s.
async fn recv_n(set: &UdpSocketSet, batch: &mut RecvBatch, n: usize) -> Vec<(SocketAddr, SocketAddr, Vec<u8>)> {
    let mut got = Vec::new();
    while got.len() < n {
        tokio::time::timeout(Duration::from_secs(5), set.recv_batch(batch)).await.expect("datagrams within 5 s");
        got.extend(batch.iter().map(|(l, r, d)| (l, r, d.to_vec())));
    }
    got
}

#[tokio::test]
async fn binds_one_socket_per_address_and_component() {
    let bound = UdpSocketSet::bind(&[LOOPBACK], 2, false).await.unwrap();
    assert_eq!(bound.len(), 2);
    assert_eq!((bound[0].component, bound[1].component), (Component::RTP, Component::RTCP));
    assert!(bound.iter().all(|b| b.local.ip() == LOOPBACK && b.local.port() != 0));
    assert_ne!(bound[0].local, bound[1].local);
    // An address this machine lacks: skipped, or the error.
    let absent = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 77));
    let e = UdpSocketSet::bind(&[absent], 1, false).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AddrNotAvailable);
    let one = UdpSocketSet::bind(&[absent, LOOPBACK], 1, true).await.unwrap();
    assert_eq!(one.len(), 1);
    let e = UdpSocketSet::bind(&[absent], 1, true).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AddrNotAvailable, "nothing bound");
    assert_eq!(UdpSocketSet::bind(&[LOOPBACK], 0, true).await.unwrap_err().kind(), ErrorKind::InvalidInput);
    // add, get, remove, iter.
    let mut set: UdpSocketSet = bound.into_iter().collect();
    let locals: Vec<SocketAddr> = set.iter().map(|b| b.local).collect();
    assert_eq!(set.len(), 2);
    assert!(set.get(locals[1]).is_some());
    let b = set.remove(locals[1]).unwrap();
    assert!(set.get(locals[1]).is_none() && set.remove(locals[1]).is_none());
    set.add(b.clone());
    set.add(b);
    assert_eq!(set.len(), 2, "the same local address is replaced");
}

#[tokio::test]
async fn one_batch_holds_what_every_socket_has_ready() {
    let set = set_of(2).await;
    let locals: Vec<SocketAddr> = set.iter().map(|b| b.local).collect();
    let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let from = peer.local_addr().unwrap();
    for i in 0..10u8 {
        peer.send_to(&[0x80, i], locals[usize::from(i % 2)]).await.unwrap();
    }
    // Give loopback a moment so one batch can see them all.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut batch = RecvBatch::new();
    let n = set.recv_batch(&mut batch).await;
    assert_eq!(n, 10);
    assert_eq!(batch.len(), 10);
    let mut seen: Vec<(SocketAddr, u8)> = batch.iter().map(|(l, r, d)| (assert_eq_ret(r, from, l), d[1])).collect();
    seen.sort_by_key(|x| x.1);
    for (i, (l, b)) in seen.iter().enumerate() {
        assert_eq!((*l, usize::from(*b)), (locals[i % 2], i));
    }
    // In place and mutable: the consumer may rewrite a datagram.
    for (_, _, d) in batch.iter_mut() {
        d[0] = 0x81;
        assert_eq!(d.len(), 2);
    }
    assert!(batch.iter().all(|(_, _, d)| d[0] == 0x81));
    assert_eq!(batch.stats().datagrams, 10);
    // The next call starts afresh.
    peer.send_to(b"\x80z", locals[0]).await.unwrap();
    let got = recv_n(&set, &mut batch, 1).await;
    assert_eq!(got, vec![(locals[0], from, b"\x80z".to_vec())]);
    assert_eq!(batch.len(), 1);
}

fn assert_eq_ret(r: SocketAddr, from: SocketAddr, l: SocketAddr) -> SocketAddr {
    assert_eq!(r, from);
    l
}

#[tokio::test]
async fn a_datagram_that_may_be_cut_short_is_dropped_and_counted() {
    let set = set_of(1).await;
    let local = set.iter().next().unwrap().local;
    let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut batch = RecvBatch::with_capacity(100, 4);
    assert_eq!(batch.min_room(), 100);
    peer.send_to(&[7u8; 150], local).await.unwrap();
    peer.send_to(&[8u8; 100], local).await.unwrap(); // fills the room exactly: may be cut
    peer.send_to(&[9u8; 10], local).await.unwrap();
    let got = recv_n(&set, &mut batch, 1).await;
    assert_eq!(got[0].2, vec![9u8; 10]);
    assert_eq!(batch.stats().truncated, 2);
    // At most `datagrams` per batch; the rest waits for the next call.
    for i in 0..6u8 {
        peer.send_to(&[i], local).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut small = RecvBatch::with_capacity(4096, 4);
    assert_eq!(set.recv_batch(&mut small).await, 4);
    assert_eq!(set.recv_batch(&mut small).await, 2);
}

#[tokio::test]
async fn try_send_to_never_waits_and_needs_a_known_source() {
    let set = set_of(1).await;
    let local = set.iter().next().unwrap().local;
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dst = peer.local_addr().unwrap();
    assert_eq!(set.try_send_to(local, dst, b"\x80hello").unwrap(), 6);
    let mut buf = [0u8; 16];
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (n, from) = peer.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"\x80hello"[..], local));
    let e = set.try_send_to("127.0.0.1:1".parse().unwrap(), dst, b"x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    // Never blocks: a flood either goes out or is refused at once.
    for _ in 0..2000 {
        let _ = set.try_send_to(local, dst, &[0u8; 1200]);
    }
}

/// A socket that draws ICMP errors (port unreachable, on a connected
/// socket) does not stop the set: whether the platform reports them on
/// receive (counted and skipped) or, as Linux does through tokio, on the
/// next send, the other sockets keep receiving.
#[tokio::test]
async fn icmp_errors_do_not_stop_the_set() {
    let mut set = set_of(1).await;
    let good = set.iter().next().unwrap().local;
    // A port nothing listens on.
    let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let refused = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    refused.connect(closed_addr).await.unwrap();
    refused.writable().await.unwrap();
    let refused_addr = refused.local_addr().unwrap();
    set.add(rtc_ice::udp::Bound {
        local: refused_addr,
        component: Component::RTP,
        socket: std::sync::Arc::new(refused),
    });
    let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut batch = RecvBatch::new();
    let mut refusals = 0;
    for round in 0..12u8 {
        if let Err(e) = set.try_send_to(refused_addr, closed_addr, b"x") {
            refusals += usize::from(e.kind() == ErrorKind::ConnectionRefused);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        if round % 4 == 3 {
            peer.send_to(&[0x80, round], good).await.unwrap();
            let got = recv_n(&set, &mut batch, 1).await;
            assert_eq!(got[0].2, vec![0x80, round]);
        }
    }
    assert!(refusals as u64 + batch.stats().errors > 0, "the ICMP errors were seen somewhere");
}

#[tokio::test]
async fn stun_urls_resolve_through_the_one_parser() {
    assert_eq!(resolve_stun("stun:127.0.0.1:19302").await, Ok("127.0.0.1:19302".parse().unwrap()));
    assert_eq!(resolve_stun("STUN:[::1]").await, Ok("[::1]:3478".parse().unwrap()));
    assert_eq!(resolve_stun_all("stun:127.0.0.1").await, Ok(vec!["127.0.0.1:3478".parse().unwrap()]));
    assert!(matches!(resolve_stun("stun:host/path").await, Err(Error::InvalidUrl(_))));
    assert!(matches!(resolve_stun("turn:127.0.0.1").await, Err(Error::InvalidUrl(_))));
    if let Ok(a) = resolve_stun("stun:localhost:5000").await {
        assert!(a.ip().is_loopback() && a.port() == 5000);
    }
}

#[tokio::test]
async fn turn_urls_resolve_with_their_credentials() {
    let s = resolve_turn("turn:127.0.0.1:3479?transport=udp", "u", "p").await.unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(
        (s[0].addr, s[0].username.as_str(), s[0].password.as_str()),
        ("127.0.0.1:3479".parse().unwrap(), "u", "p")
    );
    assert!(!format!("{:?}", s[0]).contains("\"p\""), "the password stays out of Debug");
    assert_eq!(resolve_turn("TURN:[::1]", "u", "p").await.unwrap()[0].addr, "[::1]:3478".parse().unwrap());
    assert_eq!(s[0].transport, TurnTransport::Udp);
    let tls = resolve_turn("turns:localhost", "u", "p").await.unwrap();
    assert!(tls.iter().all(|s| s.transport == TurnTransport::Tls && s.host == "localhost" && s.addr.port() == 5349));
    let tcp = resolve_turn("turn:127.0.0.1:3480?transport=tcp", "u", "p").await.unwrap();
    assert_eq!((tcp[0].transport, tcp[0].host.as_str()), (TurnTransport::Tcp, "127.0.0.1"));
    assert!(matches!(resolve_turn("turns:127.0.0.1?transport=udp", "u", "p").await, Err(Error::Unsupported(_))));
    assert!(matches!(resolve_turn("stun:127.0.0.1", "u", "p").await, Err(Error::InvalidUrl(_))));
}

#[test]
fn interface_addresses_skip_ipv6_link_local() {
    let v = interface_addrs().unwrap();
    assert!(v.iter().all(|ip| match ip {
        IpAddr::V6(a) => (a.segments()[0] & 0xffc0) != 0xfe80,
        IpAddr::V4(_) => true,
    }));
    assert!(v.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
}

/// The machine's own choice (nothing is sent): never a link-local address,
/// loopback only as the whole fallback or when asked for, and last then.
#[test]
fn host_addresses_of_this_machine() {
    let fallback = rtc_ice::iface::LOOPBACK.to_vec();
    let v = host_addrs(false, 8);
    assert!(!v.is_empty() && v.len() <= 8);
    assert!(v == fallback || v.iter().all(|ip| !ip.is_loopback()), "{v:?}");
    let link_local = |ip: &IpAddr| match ip {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => a.is_unicast_link_local(),
    };
    assert!(!v.iter().any(link_local), "{v:?}");
    let w = host_addrs(true, 8);
    assert!(w.starts_with(&v) || w == fallback, "{w:?} after {v:?}");
    assert!(w[v.len().min(w.len())..].iter().all(|ip| ip.is_loopback()), "{w:?}");
    assert_eq!(host_addrs(false, 1).len(), 1);
}

/// Once the batch exists, receiving allocates nothing per datagram:
/// counted by allocation-counter (this thread only) on a current-thread
/// runtime, where the sockets, the reactor and the receiving task all run.
#[test]
fn recv_batch_does_not_allocate_per_datagram() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let set = rt.block_on(set_of(2));
    let locals: Vec<SocketAddr> = set.iter().map(|b| b.local).collect();
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut batch = RecvBatch::new();
    let payload = [0x80u8; 1200];
    let round = |batch: &mut RecvBatch| {
        for i in 0..8 {
            peer.send_to(&payload, locals[i % 2]).unwrap();
        }
        let mut got = 0;
        while got < 8 {
            got += rt.block_on(set.recv_batch(batch));
            for (_, _, d) in batch.iter_mut() {
                d[1] ^= 1;
            }
        }
    };
    for _ in 0..5 {
        round(&mut batch);
    }
    let info = allocation_counter::measure(|| {
        for _ in 0..200 {
            round(&mut batch);
        }
    });
    assert_eq!(info.count_total, 0, "{info:?}");
    assert_eq!(batch.stats().datagrams, 205 * 8);
}
