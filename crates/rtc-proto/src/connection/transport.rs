//! One socket of a connection: its ICE agent, its DTLS association and its
//! SRTP contexts, and what its agent's events mean to the connection.

use std::net::SocketAddr;
use std::time::Instant;

use rtc_candidate::Component;
use rtc_dtls::{Certificate, Dtls, Role as DtlsRole};
use rtc_ice::{Agent, Event as IceEvent, Path};
use rtc_srtp::Context;

use super::Connection;
use crate::SocketId;
use crate::desc::{Direction, SocketOptions};
use crate::events::{ConnectionEvent, Event, SocketEvent};

/// A socket as one connection uses it.
pub(crate) struct Transport {
    pub(crate) id: SocketId,
    pub(crate) socket_id: String,
    pub(crate) locals: Vec<(Component, SocketAddr)>,
    pub(crate) options: SocketOptions,
    pub(crate) certificate: Certificate,
    /// The DTLS engine its association runs on.
    pub(crate) dtls_engine: rtc_dtls::Engine,
    pub(crate) agent: Agent,
    /// Reports the socket's own events (candidates, state); forks sharing
    /// the socket do not.
    pub(crate) primary: bool,
    pub(crate) ice_connected: bool,
    /// DTLS-SRTP keying, when the remote description has no `keys`. Kept
    /// after a failure or close so that a queued alert still goes out.
    /// Boxed: a connection keyed by SDES holds none.
    pub(crate) dtls: Option<Box<Dtls>>,
    /// The association a restart replaced, until its fatal alert is out
    /// (the peer then starts over too, instead of retransmitting into the
    /// fresh association until it gives up).
    pub(crate) dtls_replaced: Option<Box<Dtls>>,
    pub(crate) tx: Option<Context>,
    pub(crate) rx: Option<Context>,
    /// The RTP path when the connection closed, for DTLS close_notify.
    pub(crate) final_path: Option<Path>,
    /// DTLS handshakes restarted after one failed before keying (at most
    /// [`DTLS_RESTARTS`]).
    pub(crate) dtls_restarts: u8,
    /// The logs' `socket` span (`id`: the socket-id), a child of the
    /// connection's, entered around what its agent and association do.
    pub(crate) span: tracing::Span,
}

/// How many times a DTLS handshake that failed before keying is started
/// over (a fresh association, the same certificates and role) before the
/// socket is left unkeyed: a handshake whose flights were all lost for its
/// 40 s, or that records forged from the peer's address derailed, gets
/// another chance rather than ending keying for good. A certificate that
/// matches no signaled fingerprint is not retried: it would fail again.
pub(crate) const DTLS_RESTARTS: u8 = 3;

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("id", &self.id)
            .field("socket_id", &self.socket_id)
            .field("locals", &self.locals)
            .field("primary", &self.primary)
            .field("ice_connected", &self.ice_connected)
            .field("keyed", &self.tx.is_some())
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// The path DTLS records take: the selected RTP pair, or the last one
    /// once the connection is closed; before a pair is selected, the valid
    /// pair [`Agent::early_path`] gives (RFC 8445 section 12.1 lets data
    /// go on any valid pair until then), so the handshake runs while the
    /// controlling agent nominates.
    pub(crate) fn dtls_path(&self) -> Option<Path> {
        self.agent.path(Component::RTP).or_else(|| self.agent.early_path(Component::RTP)).or(self.final_path)
    }

    /// The round trip ICE measured for DTLS's path ([`Transport::dtls_path`])
    /// or, when there is none or that pair has none (its checks were
    /// retransmitted), the longest any check took.
    pub(crate) fn ice_round_trip(&self) -> Option<std::time::Duration> {
        let path = self.dtls_path();
        path.and_then(|path| self.agent.candidate_pairs().find(|p| p.local == path.local && p.remote == path.remote))
            .and_then(|p| p.counters.current_round_trip_time)
            .or_else(|| self.agent.round_trip())
    }

    /// The path RTCP takes: component 1 with mux, else component 2.
    pub(crate) fn rtcp_path(&self) -> Option<Path> {
        self.agent.path(if self.options.mux { Component::RTP } else { Component::RTCP })
    }

    /// Whether the socket has the local address.
    pub(crate) fn has_local(&self, local: SocketAddr) -> bool {
        self.locals.iter().any(|(_, l)| *l == local)
    }
}

/// RFC 7983 section 7: what the first octet of a non-STUN datagram says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Dtls,
    Media,
    Other,
}

pub(crate) fn classify(data: &[u8]) -> Kind {
    match data.first() {
        Some(20..=63) => Kind::Dtls,
        Some(128..=191) => Kind::Media,
        _ => Kind::Other,
    }
}

impl Connection {
    /// An mDNS name one of the connection's ICE agents waits for: a remote
    /// candidate whose address a browser concealed behind `<uuid>.local`
    /// (draft-ietf-mmusic-mdns-ice-candidates) is held until the name is
    /// resolved. Resolve it (with an [`rtc_ice::mdns::Resolver`]; an
    /// [`Endpoint`](crate::Endpoint) does it for its connections) and hand
    /// the outcome to [`Connection::mdns_resolved`]; each name comes once.
    #[must_use]
    pub fn poll_mdns_query(&mut self) -> Option<String> {
        self.transports.iter_mut().find_map(|t| t.agent.poll_mdns_query())
    }

    /// A name that conceals one of the connection's host addresses (a
    /// socket with `mdns_host_names`), with the address: answer mDNS
    /// queries for it (an [`rtc_ice::mdns::Responder`]; an
    /// [`Endpoint`](crate::Endpoint) does it for its connections). Each
    /// comes once.
    #[must_use]
    pub fn poll_mdns_host_name(&mut self) -> Option<(String, std::net::IpAddr)> {
        self.transports.iter_mut().find_map(|t| t.agent.poll_mdns_host_name())
    }

    /// The outcome of resolving an mDNS name (any case): with an address,
    /// the remote candidates waiting for it become host candidates at that
    /// address and are checked; `None` drops them. Unresolved names are
    /// dropped after 3 s anyway.
    pub fn mdns_resolved(&mut self, now: Instant, name: &str, addr: Option<std::net::IpAddr>) {
        let _span = self.entered();
        self.last_now = now;
        for t in &mut self.transports {
            let _entered = t.span.clone().entered();
            t.agent.mdns_resolved(now, name, addr);
        }
        self.drive_transports(now);
    }

    /// Handles what the transports' agents and DTLS associations report,
    /// starts DTLS clients once ICE gives them a path, and installs keys.
    pub(crate) fn drive_transports(&mut self, now: Instant) {
        for ti in 0..self.transports.len() {
            let _entered = self.transports[ti].span.clone().entered();
            while let Some(e) = self.transports[ti].agent.poll_event() {
                self.on_ice_event(ti, e);
            }
            self.drive_dtls(now, ti);
        }
    }

    fn on_ice_event(&mut self, ti: usize, e: IceEvent) {
        let t = &mut self.transports[ti];
        let (socket, primary, socket_id) = (t.id, t.primary, t.socket_id.clone());
        match e {
            IceEvent::Candidate(mut c) => {
                c.socket_id = Some(socket_id);
                if primary {
                    self.push_event(Event::Socket { socket, event: SocketEvent::Candidate { candidate: c } });
                }
            }
            IceEvent::CandidatesDone if primary => {
                self.push_event(Event::Socket { socket, event: SocketEvent::CandidatesDone });
            }
            IceEvent::ActiveCandidate { mut local, mut remote, .. } => {
                local.socket_id = Some(socket_id.clone());
                remote.socket_id = None;
                if primary {
                    let event = SocketEvent::ActiveCandidate { local: local.clone(), remote: remote.clone() };
                    self.push_event(Event::Socket { socket, event });
                }
                self.push_event(Event::Connection(ConnectionEvent::ActiveConnectionCandidate {
                    socket_id,
                    local,
                    remote,
                }));
            }
            IceEvent::Connected => {
                t.ice_connected = true;
                if primary {
                    self.push_event(Event::Socket { socket, event: SocketEvent::Connected });
                }
                self.check_connected();
            }
            IceEvent::Disconnected | IceEvent::Failed => {
                t.ice_connected = false;
                if primary {
                    self.push_event(Event::Socket { socket, event: SocketEvent::Disconnected });
                }
                self.go_down(if e == IceEvent::Failed { "ICE failed" } else { "ICE lost consent" });
            }
            _ => {}
        }
    }

    /// Starts the DTLS client once the RTP component has a valid pair (RFC
    /// 5763 section 5 runs the handshake over the path ICE found; RFC 8445
    /// section 12.1 allows data on a valid pair before one is selected, as
    /// WebRTC stacks start DTLS on the first writable pair) and takes the
    /// association's events: keys installed, or a failure that leaves the
    /// socket unkeyed (nothing is ever sent unprotected).
    fn drive_dtls(&mut self, now: Instant, ti: usize) {
        let t = &mut self.transports[ti];
        let has_path = t.dtls_path().is_some();
        let rtt = t.ice_round_trip();
        let Some(dtls) = t.dtls.as_mut() else { return };
        if dtls.role() == DtlsRole::Client && dtls.state() == rtc_dtls::State::New && !self.closed && has_path {
            // The first retransmission waits twice ICE's round trip.
            if let Some(rtt) = rtt {
                dtls.set_round_trip(rtt, &t.certificate);
            }
            dtls.start(now);
        }
        let mut restarted = false;
        while let Some(e) = self.transports[ti].dtls.as_deref_mut().and_then(Dtls::poll_event) {
            let t = &mut self.transports[ti];
            let socket = t.id;
            match e {
                rtc_dtls::Event::Connected(keys) => match keys.contexts() {
                    Ok((tx, rx)) => {
                        t.tx = Some(tx);
                        t.rx = Some(rx);
                        self.check_connected();
                    }
                    Err(e) => {
                        tracing::warn!(profile = %keys.profile, "SRTP cannot be keyed from the DTLS keys: {e}");
                        self.push_event(Event::Socket { socket, event: SocketEvent::Disconnected });
                    }
                },
                // A handshake that failed leaves the socket unkeyed; a failure
                // after keying ends only the association (media stays keyed
                // and flowing, so the socket does not say Disconnected).
                rtc_dtls::Event::Failed(why)
                    if t.tx.is_none()
                        && why != rtc_dtls::CERT_MISMATCH
                        && t.dtls_restarts < DTLS_RESTARTS
                        && !self.closed
                        && let Some(remote) = self.remote.as_ref() =>
                {
                    // Before keying: start over with a fresh association.
                    let role = t.dtls.as_deref().map_or(DtlsRole::Client, Dtls::role);
                    t.dtls_restarts += 1;
                    tracing::info!(
                        attempt = t.dtls_restarts,
                        ?role,
                        "DTLS handshake failed before keying ({why}): started over"
                    );
                    let fresh = Dtls::with_engine(
                        t.dtls_engine,
                        &t.certificate,
                        role,
                        super::keying::fingerprints(remote),
                        now,
                    );
                    t.dtls_replaced = t.dtls.replace(Box::new(fresh));
                    restarted = true;
                }
                rtc_dtls::Event::Failed(why) if t.tx.is_none() => {
                    tracing::info!("media cannot flow on this socket: SRTP is not keyed ({why})");
                    self.push_event(Event::Socket { socket, event: SocketEvent::Disconnected });
                }
                rtc_dtls::Event::Failed(_) if ti == 0 => self.data_lost(Some("the DTLS association failed")),
                rtc_dtls::Event::Closed => {
                    // The peer ended the association (a closed browser
                    // tab): media stops both ways, and data streams close.
                    t.tx = None;
                    t.rx = None;
                    if ti == 0 {
                        self.data_lost(None);
                    }
                    self.push_event(Event::Socket { socket, event: SocketEvent::Disconnected });
                    self.go_down("the peer closed DTLS");
                }
                _ => {}
            }
        }
        if restarted {
            // A fresh client sends its ClientHello now, not at the next
            // wake-up (at most DTLS_RESTARTS deep).
            self.drive_dtls(now, ti);
        }
    }

    /// Fires Connected (and the local streams' events) once every socket
    /// has ICE with consent and SRTP keys and the RTP session exists.
    pub(crate) fn check_connected(&mut self) {
        let ready = !self.transports.is_empty()
            && self.transports.iter().all(|t| t.ice_connected && t.tx.is_some())
            && self.session.is_some()
            && !self.closed;
        if ready && !self.connected {
            self.connected = true;
            if self.connected_after.is_none() {
                self.connected_after = Some(self.last_now.saturating_duration_since(self.created));
            }
            tracing::debug!(
                after = ?self.last_now.saturating_duration_since(self.created),
                sockets = self.transports.len(),
                "connected: every socket has ICE with consent and SRTP keys"
            );
            self.push_event(Event::Connection(ConnectionEvent::Connected));
            for s in self.tracks.stream_ids(Direction::Local) {
                self.stream_up(s);
            }
        }
    }

    /// Media stopped (`why`: consent lost, a socket failed or closed, the
    /// peer closed DTLS, close()): Disconnected and every stream's and
    /// track's events.
    pub(crate) fn go_down(&mut self, why: &'static str) {
        if !self.connected {
            return;
        }
        tracing::debug!("disconnected: {why}");
        self.connected = false;
        self.push_event(Event::Connection(ConnectionEvent::Disconnected));
        for s in self.tracks.stream_ids(Direction::Local) {
            self.stream_down(s);
        }
        self.remote_all_down();
    }
}
