//! `net::Network` on loopback: datagrams reach the owner of the address
//! they came in on, transmits take the ICE-TCP connection their two
//! addresses name, and a connection nobody waits for is closed again.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtc_ice::TcpCommand;
use rtc_ice::net::{Inputs, Network};
use rtc_ice::tcp::{StreamKey, tls_config};
use rtc_ice::udp::UdpSocketSet;

/// What the network handed in, with each input's owner.
#[derive(Default)]
struct Seen {
    datagrams: Vec<(u8, SocketAddr, SocketAddr, Vec<u8>)>,
    connected: Vec<(u8, (SocketAddr, SocketAddr), SocketAddr)>,
    closed: Vec<(u8, SocketAddr, SocketAddr)>,
    /// What `tcp_connected` answers.
    accept: bool,
}

impl Inputs<u8> for Seen {
    fn datagram(&mut self, owner: u8, local: SocketAddr, remote: SocketAddr, data: &mut [u8]) {
        self.datagrams.push((owner, local, remote, data.to_vec()));
    }
    fn stream_connected(&mut self, _: u8, _: StreamKey) {}
    fn stream_closed(&mut self, _: u8, _: StreamKey) {}
    fn stream_message(&mut self, _: u8, _: StreamKey, _: &mut [u8]) {}
    fn tcp_connected(&mut self, owner: u8, opened: (SocketAddr, SocketAddr), connection: SocketAddr) -> bool {
        self.connected.push((owner, opened, connection));
        self.accept
    }
    fn tcp_closed(&mut self, owner: u8, local: SocketAddr, remote: SocketAddr) {
        self.closed.push((owner, local, remote));
    }
    fn mdns(&mut self, _: SocketAddr, _: &[u8]) {}
}

/// Waits and takes until `done` holds (at most 5 s).
async fn until(net: &mut Network<u8>, seen: &mut Seen, done: impl Fn(&Seen) -> bool) {
    let end = Instant::now() + Duration::from_secs(5);
    while !done(seen) {
        assert!(Instant::now() < end, "the network did not hand it in within 5 s");
        net.wait(Some(Instant::now() + Duration::from_millis(50)), std::future::pending()).await;
        net.take(seen);
    }
}

#[tokio::test]
async fn inputs_carry_their_owner_and_transmits_take_the_connection_they_name() {
    let lo = "127.0.0.1".parse().unwrap();
    let tls = tls_config(&[]).unwrap();
    let mut net = Network::<u8>::new().unwrap();
    let one = UdpSocketSet::bind(&[lo], 1, false).await.unwrap();
    let two = UdpSocketSet::bind(&[lo], 1, false).await.unwrap();
    let (a, b) = (one[0].local, two[0].local);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let passive = listener.local_addr().unwrap();
    net.add(1, one, vec![listener], tls.clone());
    net.add(2, two, Vec::new(), tls);
    let mut seen = Seen { accept: true, ..Seen::default() };

    // UDP, to each owner's address.
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let from = peer.local_addr().unwrap();
    peer.send_to(b"to one", a).unwrap();
    peer.send_to(b"to two", b).unwrap();
    until(&mut net, &mut seen, |s| s.datagrams.len() == 2).await;
    seen.datagrams.sort();
    assert_eq!(seen.datagrams, [(1, a, from, b"to one".to_vec()), (2, b, from, b"to two".to_vec())]);
    seen.datagrams.clear();
    net.send(a, from, None, b"back");
    let mut buf = [0u8; 16];
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(peer.recv_from(&mut buf).unwrap(), (4, a));

    // Owner 2 opens an ICE-TCP connection to owner 1's listener: it is
    // owner 2's, and a transmit between its two addresses goes on it,
    // reaching owner 1 at its listener's address.
    let active = SocketAddr::new(lo, 9);
    net.tcp_command(2, TcpCommand::Connect { local: active, remote: passive });
    until(&mut net, &mut seen, |s| !s.connected.is_empty()).await;
    let (owner, opened, connection) = seen.connected[0];
    assert_eq!((owner, opened), (2, (active, passive)));
    net.send(connection, passive, None, b"check");
    until(&mut net, &mut seen, |s| !s.datagrams.is_empty()).await;
    assert_eq!(seen.datagrams[0].0, 1);
    assert_eq!((seen.datagrams[0].1, seen.datagrams[0].3.as_slice()), (passive, &b"check"[..]));
    let accepted_from = seen.datagrams[0].2;
    assert_eq!(accepted_from, connection);
    // The answer back on the accepted connection reaches owner 2 at the
    // connection's address.
    net.send(passive, connection, None, b"answer");
    until(&mut net, &mut seen, |s| s.datagrams.len() == 2).await;
    assert_eq!(seen.datagrams[1], (2, connection, passive, b"answer".to_vec()));

    // Removing owner 2 closes its connection: owner 1's end sees it close.
    net.remove(2);
    until(&mut net, &mut seen, |s| s.closed.contains(&(1, passive, connection))).await;

    // A connection opened for an owner whose core refuses it is closed
    // again.
    seen.accept = false;
    net.tcp_command(1, TcpCommand::Connect { local: active, remote: passive });
    until(&mut net, &mut seen, |s| s.connected.len() == 2).await;
    let refused = seen.connected[1].2;
    until(&mut net, &mut seen, |s| s.closed.contains(&(1, passive, refused))).await;
}
