//! `RtcSocket`: UDP sockets shared by the ICE agents of a connection and its
//! forks. Each datagram goes to one agent: STUN requests by the remote ufrag
//! in USERNAME, responses to the agent that knows the transaction, media to
//! the agent whose selected pair it came over.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use rtc_candidate::Candidate;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

use crate::connection::ConnShared;
use crate::desc::{SocketDescription, SocketOptions, SocketServers};
use crate::error::Error;
use crate::events::{Emitter, Events, SocketEvent};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves state no worse than dropping it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One bound UDP socket.
#[derive(Debug)]
pub(crate) struct Udp {
    pub(crate) local: SocketAddr,
    pub(crate) component: u16,
    pub(crate) socket: Arc<UdpSocket>,
}

#[derive(Debug)]
pub(crate) struct SocketInner {
    pub(crate) id: String,
    pub(crate) options: SocketOptions,
    /// The DTLS certificate whose fingerprint `options.fingerprints` lists.
    pub(crate) certificate: crate::dtls::Certificate,
    pub(crate) stun_servers: Vec<SocketAddr>,
    pub(crate) udp: Mutex<Vec<Udp>>,
    pub(crate) conns: Mutex<Vec<Arc<ConnShared>>>,
    pub(crate) events: Emitter<SocketEvent>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    closed: AtomicBool,
    /// Datagrams no agent took.
    pub(crate) dropped: AtomicU64,
}

/// The seeds' RTCSocket: the UDP sockets of one ICE transport, gathering
/// candidates once added to a connection (its ICE credentials are the
/// connection's `context-id` and `secret`).
#[derive(Debug, Clone)]
pub struct RtcSocket {
    pub(crate) inner: Arc<SocketInner>,
}

/// Largest datagram read.
const MAX_DATAGRAM: usize = 65_535;

impl RtcSocket {
    /// Binds one UDP socket per address of `servers.bind` (two without
    /// `mux`) on an ephemeral port; 127.0.0.1 and ::1 when the list is
    /// empty. STUN URLs (`stun:host:port`) are resolved here. The socket
    /// makes a self-signed DTLS certificate and lists its SHA-256
    /// fingerprint in its options' `fingerprints` (so `fingerprints` given
    /// here are refused): a peer that signals no `keys` is keyed by
    /// DTLS-SRTP against it.
    pub async fn new(servers: SocketServers, options: SocketOptions) -> Result<Self, Error> {
        if !options.fingerprints.is_empty() {
            return Err(Error::InvalidOptions(
                "`fingerprints` are the socket's own certificate's and are filled in; leave them empty".into(),
            ));
        }
        let certificate = crate::dtls::Certificate::generate()?;
        let mut options = options;
        options.fingerprints = vec![certificate.fingerprint.clone()];
        for k in &options.keys {
            crate::keys::profile(&k.crypto_suite).map_err(|e| Error::InvalidOptions(e.to_string()))?;
            if k.key_params.is_some() {
                crate::keys::Keying::from_crypto(k).map_err(|e| Error::InvalidOptions(e.to_string()))?;
            }
        }
        let mut stun_servers = Vec::new();
        for url in &servers.urls {
            stun_servers.push(resolve_stun(url).await?);
        }
        let bind = if servers.bind.is_empty() {
            vec![IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)]
        } else {
            servers.bind.clone()
        };
        let components = if options.mux { 1 } else { 2 };
        let mut udp = Vec::new();
        for ip in bind {
            for component in 1..=components {
                let socket = match UdpSocket::bind(SocketAddr::new(ip, 0)).await {
                    Ok(s) => s,
                    // A family the machine lacks (no ::1) is skipped.
                    Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable && servers.bind.is_empty() => {
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                udp.push(Udp { local: socket.local_addr()?, component, socket: Arc::new(socket) });
            }
        }
        if udp.is_empty() {
            return Err(Error::Io(std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "no address bound")));
        }
        let inner = Arc::new(SocketInner {
            id: crate::random_id(12),
            options,
            certificate,
            stun_servers,
            udp: Mutex::new(Vec::new()),
            conns: Mutex::new(Vec::new()),
            events: Emitter::new(),
            tasks: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        });
        let mut tasks = Vec::new();
        for u in &udp {
            tasks.push(tokio::spawn(read_loop(Arc::downgrade(&inner), u.local, u.socket.clone())));
        }
        *lock(&inner.udp) = udp;
        *lock(&inner.tasks) = tasks;
        Ok(Self { inner })
    }

    /// The socket's identifier (`socket-id`).
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The bound local addresses.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        lock(&self.inner.udp).iter().map(|u| u.local).collect()
    }

    /// The socket's events (subscribe before adding it to a connection to
    /// see every candidate).
    pub fn events(&self) -> Events<SocketEvent> {
        self.inner.events.subscribe()
    }

    /// The socket's description: id, local candidates, options.
    pub fn description(&self) -> SocketDescription {
        let conns = lock(&self.inner.conns).clone();
        let candidates = conns.first().map(|c| c.local_candidates(&self.inner.id)).unwrap_or_default();
        SocketDescription { socket_id: self.inner.id.clone(), candidates, options: self.inner.options.clone() }
    }

    /// Adds a remote candidate (trickle ICE). With forks on this socket, the
    /// candidate goes to the connection whose remote `context-id` equals its
    /// `ufrag` extension, else to the first connection.
    pub fn set_remote_candidate(&self, candidate: &Candidate) -> Result<(), Error> {
        let conns = lock(&self.inner.conns).clone();
        let target = conns
            .iter()
            .find(|c| candidate.ufrag().is_some() && c.remote_ufrag().as_deref() == candidate.ufrag())
            .or(conns.first())
            .ok_or(Error::NotConnected("the socket is not added to a connection"))?;
        target.add_remote_candidate(&self.inner.id, candidate)
    }

    /// Closes the socket: stops its tasks, frees its UDP ports, and detaches
    /// it from its connections.
    pub fn close(&self) {
        self.inner.close();
    }

    /// Datagrams that reached no agent (not STUN for a known ufrag or
    /// transaction, not media over a selected pair).
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }
}

impl SocketInner {
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn close(self: &Arc<Self>) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
        lock(&self.udp).clear();
        let conns = std::mem::take(&mut *lock(&self.conns));
        for c in conns {
            c.socket_closed(&self.id);
        }
        self.events.close();
    }

    /// Sends one datagram now without waiting (a full socket buffer drops
    /// it, as the network would).
    pub(crate) fn send(&self, from: SocketAddr, to: SocketAddr, data: &[u8]) -> bool {
        let udp = lock(&self.udp);
        match udp.iter().find(|u| u.local == from) {
            Some(u) => u.socket.try_send_to(data, to).is_ok(),
            None => false,
        }
    }

    pub(crate) fn detach(&self, conn: &Arc<ConnShared>) -> bool {
        let mut conns = lock(&self.conns);
        conns.retain(|c| !Arc::ptr_eq(c, conn));
        conns.is_empty()
    }

    fn dispatch(&self, local: SocketAddr, from: SocketAddr, data: &mut [u8]) {
        let conns = lock(&self.conns);
        let now = Instant::now();
        let taken = match (conns.len(), stun_class(data)) {
            (0, _) => false,
            (1, _) => conns[0].on_datagram(&self.id, now, local, from, data),
            (_, Some(StunClass::Request)) => {
                let remote = stun_username_remote(data);
                let to = conns
                    .iter()
                    .find(|c| remote.is_some() && c.remote_ufrag().as_deref().map(str::as_bytes) == remote)
                    .or_else(|| conns.iter().find(|c| c.remote_ufrag().is_none()));
                to.is_some_and(|c| c.on_datagram(&self.id, now, local, from, data))
            }
            // Responses go to the agent that knows the transaction; media to
            // the one whose selected pair it came over (the others refuse).
            (_, _) => conns.iter().any(|c| c.on_datagram(&self.id, now, local, from, data)),
        };
        if !taken {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn read_loop(inner: std::sync::Weak<SocketInner>, local: SocketAddr, socket: Arc<UdpSocket>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut errors = 0u32;
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            // ICMP errors surface as receive errors on some systems; a socket
            // that keeps failing is retried at a slower pace, not spun on.
            Err(_) => {
                errors = errors.saturating_add(1);
                if errors > 8 {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                continue;
            }
        };
        errors = 0;
        let Some(inner) = inner.upgrade() else { return };
        inner.dispatch(local, from, &mut buf[..n]);
    }
}

async fn resolve_stun(url: &str) -> Result<SocketAddr, Error> {
    let bad = || Error::InvalidOptions(format!("STUN server {url:?}: expected stun:host[:port]"));
    let rest = url.strip_prefix("stun:").ok_or_else(bad)?;
    let with_port =
        if rest.parse::<SocketAddr>().is_ok() || rest.rsplit_once(':').is_some_and(|(h, _)| !h.contains(':')) {
            rest.to_owned()
        } else {
            format!("{rest}:3478")
        };
    tokio::net::lookup_host(with_port).await?.next().ok_or_else(bad)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StunClass {
    Request,
    Other,
}

/// RFC 7983 / RFC 8489 section 5: the first two bits zero and the magic
/// cookie. `None` for anything else.
pub(crate) fn stun_class(data: &[u8]) -> Option<StunClass> {
    if data.len() < 20 || data[0] >= 4 || data[4..8] != [0x21, 0x12, 0xa4, 0x42] {
        return None;
    }
    let t = u16::from_be_bytes([data[0], data[1]]);
    Some(if t & 0x0110 == 0 { StunClass::Request } else { StunClass::Other })
}

/// The part of a request's USERNAME after the colon: the sender's ufrag
/// (RFC 8445 section 7.2.2). Reads attributes in place; `None` when absent
/// or malformed.
pub(crate) fn stun_username_remote(data: &[u8]) -> Option<&[u8]> {
    let len = usize::from(u16::from_be_bytes([*data.get(2)?, *data.get(3)?]));
    let body = data.get(20..20usize.checked_add(len)?)?;
    let mut at = 0usize;
    while let Some(head) = body.get(at..at + 4) {
        let (t, l) = (u16::from_be_bytes([head[0], head[1]]), usize::from(u16::from_be_bytes([head[2], head[3]])));
        let value = body.get(at + 4..at + 4 + l)?;
        if t == 0x0006 {
            let colon = value.iter().position(|&b| b == b':')?;
            return Some(&value[colon + 1..]);
        }
        at += 4 + l.div_ceil(4) * 4;
    }
    None
}

impl Drop for RtcSocket {
    fn drop(&mut self) {
        // The last handle outside the connections closes the socket; the
        // read tasks hold only weak references.
        if Arc::strong_count(&self.inner) == 1 {
            self.inner.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_remote_part() {
        let mut m = vec![0x00, 0x01, 0x00, 0x10, 0x21, 0x12, 0xa4, 0x42];
        m.extend_from_slice(&[0; 12]);
        m.extend_from_slice(&[0x00, 0x06, 0x00, 0x09]);
        m.extend_from_slice(b"evtj:h6vY\0\0\0");
        assert_eq!(stun_class(&m), Some(StunClass::Request));
        assert_eq!(stun_username_remote(&m), Some(&b"h6vY"[..]));
        for cut in 0..m.len() {
            let _ = stun_username_remote(&m[..cut]);
            let _ = stun_class(&m[..cut]);
        }
        m[3] = 0xff;
        assert_eq!(stun_username_remote(&m), None);
        assert_eq!(stun_class(&[0x80, 0, 0, 0]), None);
    }
}
