//! The tokio UDP layer (feature `tokio`) shared by [`IceSocket`] and the
//! facade's connections: resolving `stun:` URLs, listing interface
//! addresses and choosing the ones to bind, binding sockets, sending
//! without waiting, and receiving every datagram that is ready on a set of
//! sockets in one batch.
//!
//! The receive path allocates nothing per datagram: [`RecvBatch`] is one
//! caller-owned buffer, filled by [`UdpSocketSet::recv_batch`] and handed
//! back in place (mutable, so SRTP can be unprotected where it lies).
//!
//! [`IceSocket`]: crate::IceSocket

use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use rtc_candidate::Component;
use tokio::net::UdpSocket;

use crate::error::Error;
use crate::iface::{InterfaceAddr, select_host_addrs};
use crate::turn::TurnServer;
pub use crate::udp_mdns::{MdnsLink, MdnsSocket};
use crate::url::{StunUrl, TurnUrl};

/// What each socket asks for as its receive and send buffers: a burst of
/// datagrams (a video key frame, an SCTP window of data) must wait there
/// while the driver task is busy. The kernel caps it (Linux at
/// `net.core.rmem_max` / `wmem_max`, about 208 KiB unless raised, doubled
/// for bookkeeping); failing to widen is not an error.
const SOCKET_BUFFER: usize = 4 << 20;

fn widen_buffers(socket: &UdpSocket) {
    let s = socket2::SockRef::from(socket);
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    tracing::trace!(
        recv = s.recv_buffer_size().unwrap_or(0),
        send = s.send_buffer_size().unwrap_or(0),
        "UDP socket buffers"
    );
}

/// The largest UDP payload (an IPv4 datagram's 65,535 octets less the
/// headers fit below this).
pub const MAX_DATAGRAM: usize = 65_535;

/// Consecutive receive errors after which [`UdpSocketSet::recv_batch`]
/// pauses ([`RECV_BACKOFF`]) before trying again.
const MAX_RECV_ERRORS: u32 = 8;
/// The pause of a set whose sockets keep failing.
const RECV_BACKOFF: Duration = Duration::from_millis(10);

/// Resolves a `stun:` URL (RFC 7064, parsed by [`StunUrl::parse`]) to the
/// first address its host resolves to. See [`resolve_stun_all`] for every
/// address (a name with both IPv4 and IPv6 addresses).
pub async fn resolve_stun(url: &str) -> Result<SocketAddr, Error> {
    let u = StunUrl::parse(url)?;
    let mut addrs =
        tokio::net::lookup_host((u.host.as_str(), u.port)).await.map_err(|_| Error::Resolve("name lookup failed"))?;
    addrs.next().ok_or(Error::Resolve("no address"))
}

/// Resolves a `stun:` URL to every address its host resolves to (at least
/// one), in the resolver's order.
pub async fn resolve_stun_all(url: &str) -> Result<Vec<SocketAddr>, Error> {
    let u = StunUrl::parse(url)?;
    lookup_all(&u.host, u.port).await
}

/// Every address `host` resolves to (at least one), with `port`.
async fn lookup_all(host: &str, port: u16) -> Result<Vec<SocketAddr>, Error> {
    let addrs: Vec<SocketAddr> =
        tokio::net::lookup_host((host, port)).await.map_err(|_| Error::Resolve("name lookup failed"))?.collect();
    if addrs.is_empty() {
        return Err(Error::Resolve("no address"));
    }
    Ok(addrs)
}

/// Resolves a `turn:` or `turns:` URL (RFC 7065: UDP, `?transport=tcp`,
/// or TLS for `turns:`; `turns:…?transport=udp` is refused with
/// [`Error::Unsupported`]) with its credentials to the [`TurnServer`]s of
/// every address its host resolves to (at least one), in the resolver's
/// order, each with the URL's transport and host (the TLS server name): put
/// them in [`AgentConfig::turn_servers`](crate::AgentConfig::turn_servers)
/// (each host base allocates on the servers of its family).
pub async fn resolve_turn(url: &str, username: &str, credential: &str) -> Result<Vec<TurnServer>, Error> {
    let u = TurnUrl::parse(url)?;
    let addrs = lookup_all(&u.host, u.port).await?;
    let server = |addr| TurnServer {
        addr,
        transport: u.transport,
        host: u.host.clone(),
        username: username.to_owned(),
        password: credential.to_owned(),
    };
    Ok(addrs.into_iter().map(server).collect())
}

/// The machine's interface addresses as the OS lists them, each with its
/// interface's name and state: what [`select_host_addrs`] chooses from.
/// IPv6 link-local addresses are left out already (the enumeration, if-addrs,
/// drops them).
pub fn interfaces() -> io::Result<Vec<InterfaceAddr>> {
    Ok(if_addrs::get_if_addrs()?
        .into_iter()
        .map(|i| InterfaceAddr { up: i.is_oper_up(), loopback: i.is_loopback(), ip: i.ip(), name: i.name })
        .collect())
}

/// The machine's interface addresses, sorted, without IPv6 link-local ones
/// (they need a scope id a candidate line cannot carry), whatever the
/// interface's state. [`host_addrs`] is the choice a socket binds.
pub fn interface_addrs() -> io::Result<Vec<IpAddr>> {
    let mut v: Vec<IpAddr> = interfaces()?.into_iter().map(|i| i.ip).filter(|ip| !is_v6_link_local(ip)).collect();
    v.sort();
    v.dedup();
    Ok(v)
}

fn is_v6_link_local(ip: &IpAddr) -> bool {
    matches!(ip, IpAddr::V6(a) if a.is_unicast_link_local())
}

/// The addresses a socket binds when the application names none: the
/// machine's [`interfaces`] through [`select_host_addrs`] (every usable
/// IPv4 and IPv6 address of an interface that is up, link-local and
/// loopback ones skipped; loopback added with `include_loopback`; 127.0.0.1
/// and ::1 when nothing else is left; at most `max`). When the interfaces
/// cannot be listed, the loopback pair, with a warning.
pub fn host_addrs(include_loopback: bool, max: usize) -> Vec<IpAddr> {
    let listed = interfaces().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "UDP: the interfaces could not be listed; loopback only");
        Vec::new()
    });
    let v = select_host_addrs(&listed, include_loopback, max);
    tracing::debug!(addrs = ?v, "UDP: host addresses");
    v
}

/// A bound UDP socket and the ICE component it serves.
#[derive(Debug, Clone)]
pub struct Bound {
    /// The address it is bound to (the host candidate's base).
    pub local: SocketAddr,
    /// The component.
    pub component: Component,
    /// The socket.
    pub socket: Arc<UdpSocket>,
}

/// A set of bound UDP sockets, received from together and sent from by
/// local address.
///
/// One task receives from a set ([`UdpSocketSet::recv_batch`]; tokio keeps
/// one read waker per socket); any number may send
/// ([`UdpSocketSet::try_send_to`]). The sockets are found by a linear search
/// of the set, which holds a socket or two per interface.
#[derive(Debug, Clone, Default)]
pub struct UdpSocketSet {
    sockets: Vec<Bound>,
}

impl UdpSocketSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Binds `components` sockets (1 for RTP and RTCP multiplexed, 2 without)
    /// on each of `ips`, each on an ephemeral port. With `skip_unavailable`,
    /// an address the machine lacks (`AddrNotAvailable`, such as `::1` on a
    /// host without IPv6) is skipped; any other error fails. Fails too when
    /// nothing could be bound.
    pub async fn bind(ips: &[IpAddr], components: u16, skip_unavailable: bool) -> io::Result<Vec<Bound>> {
        let addrs: Vec<SocketAddr> = ips.iter().map(|ip| SocketAddr::new(*ip, 0)).collect();
        Self::bind_addrs(&addrs, components, skip_unavailable).await
    }

    /// As [`UdpSocketSet::bind`], on socket addresses: port 0 is an
    /// ephemeral port, another port is bound as given; with two components
    /// the second socket (RTCP) takes the next port (RFC 3550 section 11's
    /// convention), port 65535 then failing.
    pub async fn bind_addrs(addrs: &[SocketAddr], components: u16, skip_unavailable: bool) -> io::Result<Vec<Bound>> {
        if components == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no component to bind"));
        }
        let mut out = Vec::new();
        'addrs: for &addr in addrs {
            for c in 1..=components {
                let component = Component::new(c)
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "component not in 1..=256"))?;
                let addr = if addr.port() == 0 {
                    addr
                } else {
                    let port = addr.port().checked_add(c - 1).ok_or_else(|| {
                        io::Error::new(io::ErrorKind::InvalidInput, "no port after 65535 for the second component")
                    })?;
                    SocketAddr::new(addr.ip(), port)
                };
                let socket = match UdpSocket::bind(addr).await {
                    Ok(s) => s,
                    Err(e) if skip_unavailable && e.kind() == io::ErrorKind::AddrNotAvailable => {
                        tracing::debug!(%addr, "UDP: no such local address here, skipped");
                        continue 'addrs;
                    }
                    Err(e) => {
                        tracing::warn!(%addr, error = %e, "UDP: binding failed");
                        return Err(e);
                    }
                };
                widen_buffers(&socket);
                // tokio learns that a new socket is writable from the
                // reactor; until then `try_send_to` would refuse to send.
                socket.writable().await?;
                let local = socket.local_addr()?;
                tracing::debug!(%local, component = c, "UDP socket bound");
                out.push(Bound { local, component, socket: Arc::new(socket) });
            }
        }
        if out.is_empty() {
            return Err(io::Error::new(io::ErrorKind::AddrNotAvailable, "no local address could be bound"));
        }
        Ok(out)
    }

    /// Adds a bound socket; one already in the set at the same local
    /// address is replaced.
    pub fn add(&mut self, bound: Bound) {
        self.sockets.retain(|b| b.local != bound.local);
        self.sockets.push(bound);
    }

    /// Removes the socket bound to `local`.
    pub fn remove(&mut self, local: SocketAddr) -> Option<Bound> {
        let at = self.sockets.iter().position(|b| b.local == local)?;
        Some(self.sockets.remove(at))
    }

    /// The socket bound to `local`.
    pub fn get(&self, local: SocketAddr) -> Option<&Bound> {
        self.sockets.iter().find(|b| b.local == local)
    }

    /// The sockets, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = &Bound> + '_ {
        self.sockets.iter()
    }

    /// How many sockets the set holds.
    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    /// The set holds no socket.
    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    /// Sends `data` from the socket bound to `source` to `destination`,
    /// without waiting: when the socket's send buffer is full the datagram
    /// is dropped, as the network would drop it, and the `WouldBlock` error
    /// says so. `NotFound` when no socket of the set is bound to `source`.
    ///
    /// tokio sends only on a socket its reactor has seen writable: a socket
    /// bound elsewhere and [added](UdpSocketSet::add) at once may refuse
    /// its first datagrams until the runtime has run (await
    /// `socket.writable()` first; [`UdpSocketSet::bind`] does).
    pub fn try_send_to(&self, source: SocketAddr, destination: SocketAddr, data: &[u8]) -> io::Result<usize> {
        let b = self.get(source).ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no socket at source"))?;
        b.socket.try_send_to(data, destination)
    }

    /// Waits until at least one socket of the set is readable, then reads
    /// every datagram ready on any of them right now into `batch` (cleared
    /// first), until the batch is full; returns how many it holds (never 0).
    ///
    /// - The sockets are visited in turn, starting from a different one on
    ///   each call, so a flooded socket cannot starve the others.
    /// - A datagram that filled the space left in the batch exactly may have
    ///   been cut short: it is dropped and counted
    ///   ([`RecvStats::truncated`]). Reading stops while less than
    ///   [`RecvBatch::min_room`] is left, so with the default 64 KiB batch
    ///   only a datagram larger than 2 KiB can meet that end.
    /// - Receive errors (ICMP errors such as `ConnectionRefused`, where the
    ///   platform reports them on receive; Linux reports them on the next
    ///   send of a connected socket instead) are counted
    ///   ([`RecvStats::errors`]) and skipped. When more than 8 come in a row
    ///   with no datagram, the call pauses 10 ms before reading again
    ///   instead of spinning.
    ///
    /// Allocates nothing. Cancel safe: a datagram is never read by a call
    /// that does not return it. An empty set never becomes readable: the
    /// call waits forever (select it against whatever adds sockets).
    pub async fn recv_batch(&self, batch: &mut RecvBatch) -> usize {
        batch.clear();
        loop {
            poll_fn(|cx| {
                // Every socket registers the waker; any one ready will do.
                let mut ready = false;
                for b in &self.sockets {
                    ready |= b.socket.poll_recv_ready(cx).is_ready();
                }
                if ready { Poll::Ready(()) } else { Poll::Pending }
            })
            .await;
            let n = self.drain(batch);
            if n > 0 {
                return n;
            }
            if batch.failures > MAX_RECV_ERRORS {
                tokio::time::sleep(RECV_BACKOFF).await;
            }
        }
    }

    /// Reads what is ready, without waiting.
    fn drain(&self, batch: &mut RecvBatch) -> usize {
        let n = self.sockets.len();
        if n == 0 {
            return 0;
        }
        let first = batch.next_socket % n;
        batch.next_socket = (first + 1) % n;
        for i in 0..n {
            let b = &self.sockets[(first + i) % n];
            let mut errors_here = 0u32;
            loop {
                if batch.meta.len() >= batch.max_datagrams || batch.room() < batch.min_room() {
                    return batch.meta.len();
                }
                let start = batch.filled;
                let Some(room) = batch.buf.get_mut(start..) else { return batch.meta.len() };
                let space = room.len();
                match b.socket.try_recv_from(room) {
                    Ok((len, remote)) => {
                        batch.failures = 0;
                        if len >= space {
                            batch.stats.truncated += 1;
                            continue;
                        }
                        batch.meta.push(Meta { local: b.local, remote, start, len });
                        batch.filled = start + len;
                        batch.stats.datagrams += 1;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        tracing::trace!(local = %b.local, error = %e, "UDP receive error");
                        batch.stats.errors += 1;
                        batch.failures = batch.failures.saturating_add(1);
                        errors_here += 1;
                        if errors_here > MAX_RECV_ERRORS {
                            break;
                        }
                    }
                }
            }
        }
        batch.meta.len()
    }
}

impl FromIterator<Bound> for UdpSocketSet {
    fn from_iter<I: IntoIterator<Item = Bound>>(iter: I) -> Self {
        let mut set = Self::new();
        for b in iter {
            set.add(b);
        }
        set
    }
}

/// Counters of a [`RecvBatch`], over every call it served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecvStats {
    /// Datagrams received.
    pub datagrams: u64,
    /// Datagrams dropped because they may have been cut short.
    pub truncated: u64,
    /// Receive errors (ICMP errors and others), skipped.
    pub errors: u64,
}

#[derive(Debug, Clone, Copy)]
struct Meta {
    local: SocketAddr,
    remote: SocketAddr,
    start: usize,
    len: usize,
}

/// A caller-owned receive buffer for [`UdpSocketSet::recv_batch`]: the
/// datagrams of one batch, back to back in one contiguous buffer, each with
/// the local address it arrived on and its sender. Allocated once; reused
/// by every call.
#[derive(Debug)]
pub struct RecvBatch {
    buf: Box<[u8]>,
    filled: usize,
    meta: Vec<Meta>,
    max_datagrams: usize,
    next_socket: usize,
    /// Receive errors in a row, for the back-off.
    failures: u32,
    stats: RecvStats,
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    /// The default buffer: 64 KiB (any datagram fits when it comes first).
    pub const DEFAULT_BYTES: usize = 65_536;
    /// The default cap on datagrams per batch.
    pub const DEFAULT_DATAGRAMS: usize = 256;
    /// Reading stops while less than this is left (2 KiB, more than a
    /// datagram of a 1500-octet MTU), or the whole buffer if smaller.
    pub const MIN_ROOM: usize = 2048;

    /// A 64 KiB batch of at most 256 datagrams.
    pub fn new() -> Self {
        Self::with_capacity(Self::DEFAULT_BYTES, Self::DEFAULT_DATAGRAMS)
    }

    /// A batch of `bytes` (at least 1) holding at most `datagrams` (at least
    /// 1). Below [`MAX_DATAGRAM`] + 1 bytes, a large datagram may not fit
    /// even alone: it is dropped and counted as truncated.
    pub fn with_capacity(bytes: usize, datagrams: usize) -> Self {
        let datagrams = datagrams.max(1);
        Self {
            buf: vec![0u8; bytes.max(1)].into_boxed_slice(),
            filled: 0,
            meta: Vec::with_capacity(datagrams),
            max_datagrams: datagrams,
            next_socket: 0,
            failures: 0,
            stats: RecvStats::default(),
        }
    }

    /// Reading stops while less than this is left in the buffer:
    /// [`RecvBatch::MIN_ROOM`], or the whole buffer when it is smaller.
    pub fn min_room(&self) -> usize {
        Self::MIN_ROOM.min(self.buf.len())
    }

    fn room(&self) -> usize {
        self.buf.len().saturating_sub(self.filled)
    }

    /// Forgets the datagrams held (keeping the memory).
    pub fn clear(&mut self) {
        self.filled = 0;
        self.meta.clear();
    }

    /// How many datagrams the batch holds.
    pub fn len(&self) -> usize {
        self.meta.len()
    }

    /// The batch holds no datagram.
    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    /// The datagrams: `(local, remote, bytes)`, in the order they were read.
    pub fn iter(&self) -> impl Iterator<Item = (SocketAddr, SocketAddr, &[u8])> + '_ {
        self.meta.iter().filter_map(|m| Some((m.local, m.remote, self.buf.get(m.start..m.start.checked_add(m.len)?)?)))
    }

    /// The datagrams, mutable in place: `(local, remote, bytes)`, in the
    /// order they were read.
    pub fn iter_mut(&mut self) -> IterMut<'_> {
        IterMut { meta: self.meta.iter(), rest: &mut self.buf[..self.filled], offset: 0 }
    }

    /// Counters over every call this batch served.
    pub fn stats(&self) -> RecvStats {
        self.stats
    }
}

/// The datagrams of a [`RecvBatch`], mutable in place (see
/// [`RecvBatch::iter_mut`]).
#[derive(Debug)]
pub struct IterMut<'a> {
    meta: std::slice::Iter<'a, Meta>,
    rest: &'a mut [u8],
    offset: usize,
}

impl<'a> Iterator for IterMut<'a> {
    type Item = (SocketAddr, SocketAddr, &'a mut [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let m = self.meta.next()?;
        // The datagrams lie back to back in the order of `meta`.
        let rest = std::mem::take(&mut self.rest);
        let (_, rest) = rest.split_at_mut_checked(m.start.checked_sub(self.offset)?)?;
        let (data, rest) = rest.split_at_mut_checked(m.len)?;
        self.rest = rest;
        self.offset = m.start + m.len;
        Some((m.local, m.remote, data))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.meta.size_hint()
    }
}

#[cfg(test)]
mod buffer_tests {
    use super::*;

    /// Each socket asks for wide buffers and gets what the kernel allows
    /// (on Linux up to `net.core.rmem_max`, which it doubles).
    #[tokio::test]
    async fn sockets_ask_for_wide_buffers() {
        let bound = UdpSocketSet::bind(&[IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)], 1, false).await.unwrap();
        let got = socket2::SockRef::from(&*bound[0].socket).recv_buffer_size().unwrap();
        let max = std::fs::read_to_string("/proc/sys/net/core/rmem_max").ok().and_then(|v| v.trim().parse().ok());
        if let Some(max) = max {
            // Linux doubles what it grants (room for its bookkeeping): more
            // than the default (`rmem_default`, at most `rmem_max`) shows
            // the request was made.
            let max: usize = max;
            assert!(got >= 2 * max.min(SOCKET_BUFFER), "receive buffer {got} with rmem_max {max}");
        }
    }
}
