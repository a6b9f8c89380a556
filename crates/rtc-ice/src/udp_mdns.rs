//! The mDNS socket of the UDP layer (feature `tokio`): where the queries of
//! a [`crate::mdns::Resolver`] go out and the answers come in.

use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::task::Poll;

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::io::ReadBuf;
use tokio::net::UdpSocket;

use crate::mdns::{MDNS_PORT, MDNS_V4, MDNS_V6, MdnsTransmit};

/// A UDP socket per address family for one-shot mDNS queries (RFC 6762),
/// joined to the mDNS group on the interfaces given.
///
/// It binds port 5353 on every address, sharing the port with the
/// system's responder (avahi, mDNSResponder) and browsers
/// (`SO_REUSEADDR` and `SO_REUSEPORT`), because responders answer by
/// multicast to port 5353 (Chromium's always does, whatever the query
/// asks). Where 5353 cannot be bound, it binds an ephemeral port: a query
/// from a port other than 5353 is a legacy unicast query (section 6.7),
/// answered by unicast by responders that follow the RFC, though not by
/// Chromium's. Queries go out on each interface with IP TTL (hop limit)
/// 255 (section 11) and multicast loopback on, so a responder on the same
/// machine hears them.
#[derive(Debug)]
pub struct MdnsSocket {
    v4: Option<UdpSocket>,
    v4_interfaces: Vec<Ipv4Addr>,
    v6: Option<UdpSocket>,
    v6_interfaces: Vec<u32>,
    on_5353: bool,
}

fn group_v4() -> Ipv4Addr {
    match MDNS_V4.ip() {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => Ipv4Addr::new(224, 0, 0, 251),
    }
}

fn group_v6() -> Ipv6Addr {
    match MDNS_V6.ip() {
        IpAddr::V6(a) => a,
        IpAddr::V4(_) => Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb),
    }
}

/// A socket of `domain` bound to port 5353 with address sharing, else to an
/// ephemeral port; says which.
fn bind(domain: Domain, any: IpAddr) -> io::Result<(Socket, bool)> {
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if domain == Domain::IPV6 {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    #[cfg(unix)]
    if let Err(e) = s.set_reuse_port(true) {
        tracing::debug!("mDNS socket: SO_REUSEPORT refused: {e}");
    }
    s.set_nonblocking(true)?;
    match s.bind(&SocketAddr::new(any, MDNS_PORT).into()) {
        Ok(()) => Ok((s, true)),
        Err(e) => {
            tracing::debug!("mDNS socket: port 5353 refused ({e}); an ephemeral port (legacy unicast queries)");
            s.bind(&SocketAddr::new(any, 0).into())?;
            Ok((s, false))
        }
    }
}

/// Sends on the non-blocking socket at once: through the socket itself,
/// not tokio's readiness, which a socket just opened does not have yet
/// (its first sends would fail with `WouldBlock`).
fn send_now(s: &UdpSocket, data: &[u8], to: SocketAddr) -> io::Result<usize> {
    SockRef::from(s).send_to(data, &to.into())
}

/// The index of the interface that holds the IPv6 address `ip`.
fn v6_index(ip: Ipv6Addr) -> Option<u32> {
    let list = if_addrs::get_if_addrs().ok()?;
    list.into_iter().find(|i| i.ip() == IpAddr::V6(ip)).and_then(|i| i.index)
}

impl MdnsSocket {
    /// Opens the socket of each family that `interfaces` (the host
    /// addresses in use) has, joined to 224.0.0.251 on each IPv4 address's
    /// interface and to ff02::fb on each IPv6 address's. Must run in a
    /// tokio runtime. Fails when no family could be opened and joined.
    pub fn open(interfaces: &[IpAddr]) -> io::Result<Self> {
        let mut v4_interfaces: Vec<Ipv4Addr> = interfaces
            .iter()
            .filter_map(|ip| match ip {
                IpAddr::V4(a) if !a.is_unspecified() => Some(*a),
                _ => None,
            })
            .collect();
        v4_interfaces.sort_unstable();
        v4_interfaces.dedup();
        let mut v6_interfaces: Vec<u32> = interfaces
            .iter()
            .filter_map(|ip| match ip {
                IpAddr::V6(a) if !a.is_unspecified() => v6_index(*a),
                _ => None,
            })
            .collect();
        v6_interfaces.sort_unstable();
        v6_interfaces.dedup();
        let mut on_5353 = true;
        let mut last_error = None;
        let v4 = if v4_interfaces.is_empty() {
            None
        } else {
            let opened = bind(Domain::IPV4, IpAddr::V4(Ipv4Addr::UNSPECIFIED)).and_then(|(s, port)| {
                s.set_multicast_ttl_v4(255)?;
                s.set_multicast_loop_v4(true)?;
                v4_interfaces.retain(|ip| match s.join_multicast_v4(&group_v4(), ip) {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::debug!(interface = %ip, "mDNS socket: joining 224.0.0.251 failed: {e}");
                        false
                    }
                });
                if v4_interfaces.is_empty() {
                    return Err(io::Error::new(io::ErrorKind::AddrNotAvailable, "no interface joined 224.0.0.251"));
                }
                on_5353 &= port;
                UdpSocket::from_std(s.into())
            });
            opened.map_err(|e| last_error = Some(e)).ok()
        };
        let v6 = if v6_interfaces.is_empty() {
            None
        } else {
            let opened = bind(Domain::IPV6, IpAddr::V6(Ipv6Addr::UNSPECIFIED)).and_then(|(s, port)| {
                s.set_multicast_hops_v6(255)?;
                s.set_multicast_loop_v6(true)?;
                v6_interfaces.retain(|i| match s.join_multicast_v6(&group_v6(), *i) {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::debug!(interface = i, "mDNS socket: joining ff02::fb failed: {e}");
                        false
                    }
                });
                if v6_interfaces.is_empty() {
                    return Err(io::Error::new(io::ErrorKind::AddrNotAvailable, "no interface joined ff02::fb"));
                }
                on_5353 &= port;
                UdpSocket::from_std(s.into())
            });
            opened.map_err(|e| last_error = Some(e)).ok()
        };
        if v4.is_none() && v6.is_none() {
            return Err(
                last_error.unwrap_or_else(|| io::Error::new(io::ErrorKind::AddrNotAvailable, "no interface for mDNS"))
            );
        }
        if v4.is_none() {
            v4_interfaces.clear();
        }
        if v6.is_none() {
            v6_interfaces.clear();
        }
        tracing::debug!(ipv4 = ?v4_interfaces, ipv6 = ?v6_interfaces, on_5353, "mDNS socket open");
        Ok(Self { v4, v4_interfaces, v6, v6_interfaces, on_5353 })
    }

    /// Whether every family's socket has port 5353 (else some send legacy
    /// unicast queries from an ephemeral port).
    pub fn on_5353(&self) -> bool {
        self.on_5353
    }

    /// The local addresses of the sockets.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        [&self.v4, &self.v6].into_iter().flatten().filter_map(|s| s.local_addr().ok()).collect()
    }

    /// Sends a query to the mDNS group on every joined interface of each
    /// family, without waiting (a full buffer drops it). Returns how many
    /// copies went out.
    pub fn send(&self, query: &[u8]) -> usize {
        let mut sent = 0;
        if let Some(s) = &self.v4 {
            for ip in &self.v4_interfaces {
                let r = SockRef::from(s).set_multicast_if_v4(ip).and_then(|()| send_now(s, query, MDNS_V4));
                match r {
                    Ok(_) => sent += 1,
                    Err(e) => tracing::debug!(interface = %ip, "mDNS query not sent: {e}"),
                }
            }
        }
        if let Some(s) = &self.v6 {
            for i in &self.v6_interfaces {
                let r = SockRef::from(s).set_multicast_if_v6(*i).and_then(|()| send_now(s, query, MDNS_V6));
                match r {
                    Ok(_) => sent += 1,
                    Err(e) => tracing::debug!(interface = i, "mDNS query not sent: {e}"),
                }
            }
        }
        sent
    }

    /// Sends a datagram by unicast to `destination` (a legacy unicast or QU
    /// answer), from the socket of its family.
    pub fn send_to(&self, data: &[u8], destination: SocketAddr) -> io::Result<usize> {
        let s = if destination.is_ipv4() { &self.v4 } else { &self.v6 };
        let s =
            s.as_ref().ok_or_else(|| io::Error::new(io::ErrorKind::AddrNotAvailable, "no socket of that family"))?;
        send_now(s, data, destination)
    }

    /// Waits for a datagram on either socket; returns its length in `buf`
    /// and its source. Size `buf` at [`crate::mdns::MAX_MESSAGE`].
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        poll_fn(|cx| {
            for s in [&self.v4, &self.v6].into_iter().flatten() {
                let mut rb = ReadBuf::new(&mut buf[..]);
                if let Poll::Ready(r) = s.poll_recv_from(cx, &mut rb) {
                    return Poll::Ready(r.map(|from| (rb.filled().len(), from)));
                }
            }
            Poll::Pending
        })
        .await
    }
}

/// A driver's mDNS link: an [`MdnsSocket`] opened on first use (when the
/// first query is sent) and the datagram last received on it. Used by
/// `IceSocket` and by rtc-api's driver.
#[derive(Debug, Default)]
pub struct MdnsLink {
    socket: Option<MdnsSocket>,
    open_failed: bool,
    buf: Vec<u8>,
    received: Option<(usize, SocketAddr)>,
}

impl MdnsLink {
    /// A link whose socket is not open yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The socket, once open.
    pub fn socket(&self) -> Option<&MdnsSocket> {
        self.socket.as_ref()
    }

    /// Whether opening the socket failed (it is not tried again).
    pub fn failed(&self) -> bool {
        self.open_failed
    }

    /// Waits for a datagram on the socket (forever while it is not open);
    /// [`MdnsLink::take`] gives it.
    pub async fn recv(&mut self) {
        let Some(s) = &self.socket else { return std::future::pending().await };
        if self.buf.len() < crate::mdns::MAX_MESSAGE {
            self.buf.resize(crate::mdns::MAX_MESSAGE, 0);
        }
        match s.recv_from(&mut self.buf).await {
            Ok(r) => self.received = Some(r),
            Err(e) => tracing::debug!("mDNS receive: {e}"),
        }
    }

    /// The datagram received (its source and bytes), once.
    pub fn take(&mut self) -> Option<(SocketAddr, &[u8])> {
        let (n, from) = self.received.take()?;
        Some((from, self.buf.get(..n)?))
    }

    /// Opens the socket on the interfaces of `interfaces` (the host
    /// addresses in use) unless it is open or opening failed before.
    pub fn open(&mut self, interfaces: impl FnOnce() -> Vec<IpAddr>) {
        if self.socket.is_none() && !self.open_failed {
            match MdnsSocket::open(&interfaces()) {
                Ok(s) => self.socket = Some(s),
                Err(e) => {
                    tracing::warn!("mDNS: no socket ({e}); .local names will be neither resolved nor answered");
                    self.open_failed = true;
                }
            }
        }
    }

    /// Sends `transmits` (drained): to the groups, or by unicast to their
    /// destination, opening the socket first if need be (see
    /// [`MdnsLink::open`]); once opening failed, they are dropped (names
    /// asked for fail by timeout).
    pub fn send(&mut self, transmits: &mut Vec<MdnsTransmit>, interfaces: impl FnOnce() -> Vec<IpAddr>) {
        if transmits.is_empty() {
            return;
        }
        self.open(interfaces);
        for t in transmits.drain(..) {
            let Some(s) = &self.socket else { continue };
            match t.destination {
                None => {
                    s.send(&t.contents);
                }
                Some(to) => {
                    if let Err(e) = s.send_to(&t.contents, to) {
                        tracing::debug!(%to, "mDNS answer not sent: {e}");
                    }
                }
            }
        }
    }
}

/// An [`IceSocket`](crate::IceSocket)'s mDNS side: a resolver for its
/// agent's names and a responder for the names concealing its host
/// addresses; what they send goes over the socket's
/// [`Network`](crate::net::Network).
#[derive(Debug, Default)]
pub(crate) struct AgentMdns {
    resolver: crate::mdns::Resolver,
    responder: crate::mdns::Responder,
    /// Queries and answers to send.
    pub(crate) out: Vec<MdnsTransmit>,
}

impl AgentMdns {
    /// A datagram received on the mDNS socket: a query for the responder,
    /// else a response for the resolver.
    pub(crate) fn received(&mut self, now: std::time::Instant, from: SocketAddr, data: &[u8]) {
        if crate::mdns::is_query(data) {
            self.responder.handle_query(now, from, data);
        } else {
            self.resolver.handle_response(from, data);
        }
    }

    /// Under the agent's lock: the names the agent asks for and conceals
    /// its addresses behind, the resolver's timers, and the outcomes back
    /// to the agent. Returns when the resolver wants time next.
    pub(crate) fn exchange(&mut self, now: std::time::Instant, agent: &mut crate::Agent) -> Option<std::time::Instant> {
        use crate::mdns::MdnsEvent;
        while let Some((name, ip)) = agent.poll_mdns_host_name() {
            if let Err(e) = self.responder.register(&name, ip) {
                tracing::debug!(%name, "mDNS name not answered for: {e}");
            }
        }
        while let Some(name) = agent.poll_mdns_query() {
            if let Err(e) = self.resolver.query(now, &name) {
                tracing::debug!(%name, "mDNS name not asked for: {e}");
                agent.mdns_resolved(now, &name, None);
            }
        }
        if self.resolver.poll_timeout().is_some_and(|t| t <= now) {
            self.resolver.handle_timeout(now);
        }
        while let Some(e) = self.resolver.poll_event() {
            match e {
                MdnsEvent::Resolved { name, addr } => agent.mdns_resolved(now, &name, Some(addr)),
                MdnsEvent::Failed { name } => agent.mdns_resolved(now, &name, None),
            }
        }
        while let Some(contents) = self.resolver.poll_transmit() {
            self.out.push(MdnsTransmit { destination: None, contents });
        }
        while let Some(t) = self.responder.poll_transmit() {
            self.out.push(t);
        }
        self.resolver.poll_timeout()
    }

    /// Whether names of the agent's are answered for (the socket opens
    /// then, with nothing to send yet).
    pub(crate) fn responding(&self) -> bool {
        self.responder.is_active()
    }
}
