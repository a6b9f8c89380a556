//! `RtcSocket`: the UDP sockets of one ICE transport. Bound when made; once
//! added to a connection they belong to its driver, which receives from
//! them, and to the connection's forks.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rtc_candidate::{Candidate, Component};
use rtc_dtls::Certificate;
use rtc_ice::udp::{self, UdpSocketSet, resolve_stun};
use rtc_proto::{Error, SocketConfig, SocketDescription, SocketEvent, SocketOptions, SocketServers};

use crate::driver::SocketShared;
use crate::events::{Emitter, Events, lock};

/// How many interface addresses an empty bind list binds: half the ICE
/// agent's local candidates at `components` sockets each, the other half
/// left for server- and peer-reflexive candidates.
fn max_host_addrs(components: usize) -> usize {
    rtc_ice::Limits::default().local_candidates / (2 * components)
}

/// The seeds' RTCSocket: the UDP sockets of one ICE transport, gathering
/// candidates once added to a connection (its ICE credentials are the
/// connection's `context-id` and `secret`).
#[derive(Debug, Clone)]
pub struct RtcSocket {
    pub(crate) inner: Arc<SocketShared>,
}

impl RtcSocket {
    /// Binds one UDP socket per address of `servers.bind` (two without
    /// `mux`) on an ephemeral port, or on `servers.port` (RTCP on the next
    /// one without `mux`). An empty list binds the machine's
    /// interfaces: [`RtcSocket::host_addrs`]`(false)`, every usable IPv4 and
    /// IPv6 address of an interface that is up (link-local and loopback
    /// ones skipped; 127.0.0.1 and ::1 when there is nothing else; at most
    /// 8 with `mux`, 4 without), so a peer on another machine can reach a
    /// host candidate. A call that must stay on the machine lists loopback
    /// itself ([`SocketServers::loopback_v4`], or `[127.0.0.1, ::1]`).
    /// STUN URLs (`stun:host[:port]`) are resolved here, and TURN URLs
    /// (`turn:host[:port][?transport=udp|tcp]`, `turns:host[:port]` over
    /// TLS with the roots of `servers.turn_ca` besides Mozilla's, with
    /// `servers.username` and `servers.credential`) for relayed candidates
    /// (`servers.relay_only`: those only). The socket makes
    /// a self-signed DTLS certificate (ECDSA P-256) and lists its SHA-256
    /// fingerprint in its options' `fingerprints` (so `fingerprints` given
    /// here are refused). With `options.ice_lite` (ICE lite, RFC 8445
    /// section 2.5: a server on a public address) the socket gathers host
    /// candidates only: STUN and TURN URLs and `relay_only` are refused.
    pub async fn new(servers: SocketServers, options: SocketOptions) -> Result<Self, Error> {
        Self::with_certificate(servers, options, Certificate::generate()?).await
    }

    /// As [`RtcSocket::new`], with a certificate of the application's (kept
    /// with [`Certificate::to_pem`] and read back with
    /// [`Certificate::from_pem`], so the fingerprint stays the same across
    /// restarts).
    pub async fn with_certificate(
        servers: SocketServers,
        options: SocketOptions,
        certificate: Certificate,
    ) -> Result<Self, Error> {
        SocketConfig::check(&servers, &options)?;
        let mut stun_servers = Vec::new();
        let mut turn_servers = Vec::new();
        for url in &servers.urls {
            let scheme = url.split(':').next().unwrap_or_default().to_ascii_lowercase();
            if scheme == "turn" || scheme == "turns" {
                let (user, pass) = (servers.username.as_deref(), servers.credential.as_deref());
                let found = udp::resolve_turn(url, user.unwrap_or_default(), pass.unwrap_or_default()).await;
                turn_servers.extend(found.map_err(|e| Error::InvalidOptions(format!("TURN server {url:?}: {e}")))?);
                continue;
            }
            let addr =
                resolve_stun(url).await.map_err(|e| Error::InvalidOptions(format!("STUN server {url:?}: {e}")))?;
            stun_servers.push(addr);
        }
        // The roots for `turns:` servers, checked here.
        let tls =
            rtc_ice::tcp::tls_config(&servers.turn_ca).map_err(|e| Error::InvalidOptions(format!("turn-ca: {e}")))?;
        let components: u16 = if options.mux { 1 } else { 2 };
        // An address that went away since it was listed (or an IPv6 one
        // still in duplicate address detection) is skipped.
        let (ips, any) = if servers.bind.is_empty() {
            (udp::host_addrs(false, max_host_addrs(usize::from(components))), true)
        } else {
            (servers.bind.clone(), false)
        };
        let addrs: Vec<SocketAddr> = ips.iter().map(|ip| SocketAddr::new(*ip, servers.port.unwrap_or(0))).collect();
        let bound = UdpSocketSet::bind_addrs(&addrs, components, any).await?;
        let locals: Vec<(Component, SocketAddr)> = bound.iter().map(|b| (b.component, b.local)).collect();
        let mut listeners = Vec::new();
        if servers.ice_tcp {
            let udp: Vec<SocketAddr> = locals.iter().map(|(_, a)| *a).collect();
            for (component, addr) in &locals {
                listeners.push((*component, rtc_ice::ice_tcp::listener_beside(*addr, &udp)?));
            }
        }
        let mut config = SocketConfig::new(crate::media::random_id(12), locals, options, certificate).with_servers(
            &servers,
            stun_servers,
            turn_servers,
        );
        config.tcp_locals = listeners.iter().map(|(c, l)| l.local_addr().map(|a| (*c, a))).collect::<Result<_, _>>()?;
        tracing::debug!(
            socket = %config.socket_id,
            locals = ?config.locals,
            stun = ?config.stun_servers,
            turn = ?config.turn_servers,
            fingerprint = %config.certificate.fingerprint(),
            "socket bound"
        );
        Ok(Self {
            inner: Arc::new(SocketShared {
                config,
                unbound: Mutex::new(bound),
                unbound_tcp: Mutex::new(listeners.into_iter().map(|(_, l)| l).collect()),
                link: Mutex::new(None),
                events: Emitter::new(),
                closed: AtomicBool::new(false),
                tls,
            }),
        })
    }

    /// The addresses a socket binds when `servers.bind` is empty
    /// (`include_loopback` false): every IPv4 and IPv6 address of the
    /// machine's interfaces that are up, in the order the OS lists them,
    /// without link-local ones (169.254/16, fe80::/10) and without loopback;
    /// 127.0.0.1 and ::1 when the machine has nothing else. With
    /// `include_loopback`, the loopback addresses follow the others: give
    /// that list as `servers.bind` to gather on the interfaces and on
    /// loopback. At most 8 (each costs the connection's ICE agent a local
    /// candidate per component; see [`rtc_ice::Limits`]). The interfaces
    /// are listed anew on each call.
    pub fn host_addrs(include_loopback: bool) -> Vec<IpAddr> {
        udp::host_addrs(include_loopback, max_host_addrs(1))
    }

    /// The socket's identifier (`socket-id`).
    pub fn id(&self) -> &str {
        &self.inner.config.socket_id
    }

    /// The bound local addresses.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.inner.config.locals.iter().map(|(_, a)| *a).collect()
    }

    /// The DTLS certificate (its fingerprint is in the options).
    pub fn certificate(&self) -> &Certificate {
        &self.inner.config.certificate
    }

    /// The socket's events (subscribe before adding it to a connection to
    /// see every candidate).
    pub fn events(&self) -> Events<SocketEvent> {
        self.inner.events.subscribe()
    }

    /// The socket's description: id, local candidates (gathered once it is
    /// added to a connection), options.
    pub fn description(&self) -> SocketDescription {
        let candidates = self.inner.linked().map_or_else(Vec::new, |(d, id)| {
            let st = d.state();
            let first = st.endpoint.socket_users(id).first().copied();
            first.and_then(|h| st.endpoint.connection(h)).map(|c| c.local_candidates(id)).unwrap_or_default()
        });
        let c = &self.inner.config;
        SocketDescription { socket_id: c.socket_id.clone(), candidates, options: c.options.clone() }
    }

    /// Adds a remote candidate (trickle ICE). With forks on this socket, the
    /// candidate goes to the connection whose remote `context-id` equals its
    /// `ufrag` extension, else to the first connection.
    pub fn set_remote_candidate(&self, candidate: &Candidate) -> Result<(), Error> {
        let (d, id) = self.inner.linked().ok_or(Error::NotConnected("the socket is not added to a connection"))?;
        d.state().endpoint.add_remote_candidate(Instant::now(), id, candidate)?;
        d.wake.notify_one();
        Ok(())
    }

    /// Closes the socket: its UDP ports are freed and its connections lose
    /// it.
    pub fn close(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        lock(&self.inner.unbound).clear();
        lock(&self.inner.unbound_tcp).clear();
        if let Some((d, id)) = self.inner.linked() {
            d.state().drop_socket(Instant::now(), id);
            d.wake.notify_one();
        }
        self.inner.events.close();
    }

    /// Datagrams that arrived and no connection took (not STUN for a known
    /// ufrag or transaction, not over a known candidate pair).
    pub fn dropped(&self) -> u64 {
        self.inner.linked().map_or(0, |(d, id)| d.state().endpoint.unrouted(id))
    }
}

impl Drop for RtcSocket {
    fn drop(&mut self) {
        // The last handle of a socket no connection uses closes it; one a
        // connection uses lives as long as that connection.
        if Arc::strong_count(&self.inner) == 1 {
            self.close();
        }
    }
}
