//! [`Connection`]: one RTCConnection, sans-IO.

mod config;
mod data;
mod dcep;
pub(crate) mod extensions;
mod keying;
mod media;
mod negotiation;
mod pacer;
mod recovery;
mod stats;
mod stream;
mod timer;
mod tracks;
mod transport;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rtc_candidate::{Candidate, Component};
use rtc_codecs::{Agreement, Options};
use rtc_ice::{Agent, AgentConfig, Credentials, Role};
use rtc_srtp::session::Session;

pub use config::{ConnectionConfig, Limits, MAX_PAYLOAD_LIMIT, SocketConfig, default_options};
#[doc(hidden)]
pub use data::fuzz_data;
pub use data::{DataMessage, DataState};
use media::{FrameQueue, SendQueue};
pub use stream::{StreamOutput, TurnStream};
use tracks::{Sending, State, Tracks};
use transport::{Kind as DatagramKind, Transport, classify};

use crate::desc::{ConnectionDescription, Direction, StreamDescription, TrackDescription};
use crate::error::Error;
use crate::events::{CandidatePairReport, Event, TrackReport};
use crate::keys::Keying;
use crate::{SocketId, StreamId, TrackId, random_id, random_ssrc};

/// The smallest buffer [`Connection::poll_transmit`] writes into: room for
/// the largest datagram it makes (an RTP packet of [`MAX_PAYLOAD_LIMIT`]
/// payload octets with its header, 15 CSRCs and SRTP tag; DTLS records of at
/// most 1200 octets). A shorter buffer gets nothing out.
pub const MIN_TRANSMIT_BUFFER: usize = 1500;

/// A datagram [`Connection::poll_transmit`] wrote into the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// The socket to send from.
    pub socket: SocketId,
    /// The local address (of that socket) to send from.
    pub source: SocketAddr,
    /// Where to send it.
    pub destination: SocketAddr,
    /// Its length: the datagram is `buf[..len]`.
    pub len: usize,
    /// `None`: a UDP datagram (or a message for the ICE-TCP connection
    /// `source`–`destination` names, when the driver holds one). TCP or
    /// TLS: a datagram framed for a TURN server reached over that stream,
    /// to write on the stream opened for `source` (the socket's host
    /// address) to `destination` (the server); see [`StreamOutput`].
    pub turn_stream: Option<rtc_ice::TurnTransport>,
}

impl Transmit {
    /// A UDP datagram of `len` octets for `socket` over `path`.
    pub(crate) fn on(socket: SocketId, path: rtc_ice::Path, len: usize) -> Self {
        Self { socket, source: path.local, destination: path.remote, len, turn_stream: None }
    }
}

/// A frame [`Connection::poll_frame`] handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// The remote track it was received on.
    pub track: TrackId,
    /// The SSRC it came from.
    pub ssrc: u32,
    /// Its RTP timestamp.
    pub timestamp: u32,
    /// A key frame (VP8 with the P bit clear, H.264 with an IDR slice);
    /// always for audio.
    pub key_frame: bool,
    /// Audio: its level in -dBov (0 loudest, 127 silence) when the sender
    /// put one in the RFC 6464 extension and it was negotiated.
    pub audio_level: Option<u8>,
}

/// What [`Connection::handle_datagram`] did with a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Receive {
    /// STUN, taken by the socket's ICE agent.
    Stun,
    /// DTLS, taken by the socket's association.
    Dtls,
    /// SRTP, authenticated; the track it belongs to.
    Rtp {
        /// The remote track (none once it was removed).
        track: Option<TrackId>,
    },
    /// SRTCP, authenticated.
    Rtcp,
    /// Dropped and counted.
    Dropped(DropReason),
}

/// Why a received datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// A socket this connection does not have.
    UnknownSocket,
    /// The ICE agent dropped it (counted in its own statistics too).
    Ice(rtc_ice::DropReason),
    /// Media before SRTP is keyed.
    NotKeyed,
    /// SRTP or SRTCP authentication or replay check failed.
    Srtp,
    /// Malformed RTP, or an SSRC the session refuses.
    Rtp,
    /// Malformed RTCP.
    Rtcp,
    /// DTLS with no association to take it (SRTP keyed from `keys`, or an
    /// RTCP component).
    Dtls,
    /// An RTP payload type not agreed, or of a codec without a payload
    /// format.
    PayloadType,
    /// A new SSRC beyond [`Limits::remote_tracks`].
    TooManyTracks,
    /// Neither STUN, DTLS nor RTP/RTCP by its first octet (RFC 7983).
    Unknown,
    /// The connection is closed.
    Closed,
}

impl DropReason {
    const COUNTED: usize = 11;

    fn index(self) -> usize {
        match self {
            DropReason::UnknownSocket => 0,
            DropReason::Ice(_) => 1,
            DropReason::NotKeyed => 2,
            DropReason::Srtp => 3,
            DropReason::Rtp => 4,
            DropReason::Rtcp => 5,
            DropReason::Dtls => 6,
            DropReason::PayloadType => 7,
            DropReason::TooManyTracks => 8,
            DropReason::Unknown => 9,
            DropReason::Closed => 10,
        }
    }
}

/// One RTCConnection of the seeds as a sans-IO state machine.
///
/// # Contract
///
/// Like quinn-proto's connection, in four groups:
///
/// - **Getters** ([`Connection::description`], [`Connection::stats`], …)
///   change nothing.
/// - **Inputs**: [`Connection::handle_datagram`] for every datagram that
///   arrives on one of the connection's sockets, and
///   [`Connection::handle_timeout`] once the instant
///   [`Connection::poll_timeout`] named has come.
/// - **Commands** (`set_description`, `add_socket`, `add_remote_candidate`,
///   `send_stream`, `receive_stream`, `write_frame`, `set_contributors`,
///   `close`, …) change state and may queue output.
/// - **Outputs**, to drain after every input or command, in any order:
///   [`Connection::poll_transmit`] until `None` (each datagram is written
///   into the caller's buffer; send it from [`Transmit::source`]),
///   [`Connection::poll_event`], [`Connection::poll_frame`] and [`Connection::poll_data`] until
///   `None`, then [`Connection::poll_timeout`] for the next wake-up.
///
/// Every `now` must not go backwards. Nothing here blocks, reads a clock or
/// does I/O.
pub struct Connection {
    rng: StdRng,
    seeded: bool,
    cname: String,
    context_id: String,
    secret: String,
    /// The local ICE credentials changed (an ICE restart) since the remote
    /// description was set: the peer's new ones are awaited.
    restart_pending: bool,
    local_keys: Vec<Keying>,
    /// Keys for the default suites, drawn once: what the description
    /// carries, and what is used, when no socket or override named suites.
    fallback_keys: Vec<Keying>,
    pub(crate) remote: Option<ConnectionDescription>,
    remote_keys: Vec<Keying>,
    /// Shared with the config it came from and with forks.
    pub(crate) local_options: Arc<Options>,
    pub(crate) remote_options: Option<Box<Options>>,
    pub(crate) agreement: Option<Agreement>,
    transports: Vec<Transport>,
    session: Option<Session>,
    tracks: Tracks,
    send: SendQueue,
    /// Transport feedback for what arrives, when negotiated.
    twcc: Option<Box<rtc_srtp::twcc::TwccRecorder>>,
    /// The next transport-wide sequence number sent.
    twcc_seq: u16,
    /// The send-side bandwidth estimate from the peer's transport feedback.
    bwe: Option<Box<rtc_srtp::bwe::Bwe>>,
    /// The estimate the application was last told of, and when.
    bitrate_told: Option<(u64, Instant)>,
    /// The latest REMB bitrate the peer sent, when no transport feedback
    /// is agreed (see `available_outgoing_bitrate`).
    remb: Option<u64>,
    /// Our receiving side's estimate for the peer, sent as REMB, when
    /// `goog-remb` is agreed and transport feedback is not (see
    /// `extensions.rs`), with the first arrival it took and the last REMB
    /// sent (bitrate, when).
    remb_rx: Option<Box<rtc_srtp::bwe::Bwe>>,
    remb_first: Option<Instant>,
    remb_sent: Option<(u64, Instant)>,
    /// Paces media at a multiple of the estimate.
    pacer: pacer::Pacer,
    /// The agreed header extensions' identifiers, audio and video.
    ext_ids: [extensions::ExtIds; 2],
    frames: FrameQueue,
    events: VecDeque<Event>,
    events_dropped: u64,
    connected: bool,
    created: Instant,
    /// The wall clock at `created` (for RTCP sender reports).
    wallclock: SystemTime,
    last_now: Instant,
    connected_after: Option<Duration>,
    report_interval: Duration,
    next_report: Option<Instant>,
    /// Bumped when the agreement or the transports change: send plans are
    /// stale.
    plan_gen: u64,
    closed: bool,
    /// Bumped when what STUN requests route by changes (the ufrags, close).
    route_gen: u64,
    /// Messages and commands for streams to TURN servers (TURN over TCP or
    /// TLS), for [`Connection::poll_stream`].
    stream_out: VecDeque<StreamOutput>,
    limits: Limits,
    max_payload: usize,
    dropped: [u64; DropReason::COUNTED],
    /// Data streams, once taken (boxed: most connections carry media only).
    data: Option<Box<data::Data>>,
    /// The peer's SDP offer, which [`Connection::local_sdp`] answers.
    pub(crate) remote_offer: Option<Box<crate::answer::OfferLayout>>,
    /// This side's SDP sections, kept across offers and answers.
    pub(crate) sdp_sections: Vec<crate::offer::Section>,
    /// Simulcast layers of ours that the peer's answer paused or does not
    /// take (RFC 8853 section 5.3), and why: not sent.
    pub(crate) held_layers: Vec<(TrackId, &'static str)>,
    /// The `o=` version of this side's SDP.
    pub(crate) sdp_version: u64,
    /// The DTLS role (client: `true`) and ICE role, fixed by the first
    /// exchange: a later one renegotiates media, not the transport.
    pub(crate) dtls_role: Option<bool>,
    pub(crate) ice_role_fixed: Option<rtc_ice::Role>,
    /// In an SDP offer/answer exchange, whether this side offered.
    pub(crate) sdp_offerer: Option<bool>,
    /// The logs' `conn` span (`id`: the context-id at creation; `fork`;
    /// `remote`: the peer's context-id, once known), entered by every input
    /// and command so that whatever is logged beneath (ICE, DTLS, SCTP) is
    /// attributed. Made once, at level ERROR (so that it exists whenever
    /// anything of rtc_proto is logged); disabled, it costs nothing per
    /// packet.
    pub(crate) span: tracing::Span,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("context_id", &self.context_id)
            .field("transports", &self.transports)
            .field("connected", &self.connected)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A connection created at `now`, when the wall clock reads `wallclock`
    /// (for the NTP time in RTCP sender reports). `cname`, `context-id` and
    /// `secret` not in `config.description` are drawn from the connection's
    /// CSPRNG. Fails on invalid credentials, keys or options.
    pub fn new(config: ConnectionConfig, now: Instant, wallclock: SystemTime) -> Result<Self, Error> {
        let mut rng = match config.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_os_rng(),
        };
        let d = config.description;
        let generated = Credentials::random(&mut rng);
        let creds = Credentials {
            ufrag: d.context_id.clone().unwrap_or(generated.ufrag),
            pwd: d.secret.clone().unwrap_or(generated.pwd),
        };
        creds.validate().map_err(|e| Error::InvalidDescription(format!("context-id/secret: {e}")))?;
        config.options.validate().map_err(|e| Error::InvalidOptions(e.to_string()))?;
        let mut local_keys = Vec::new();
        for k in &d.keys {
            local_keys.push(Keying::from_crypto(k)?);
        }
        let cname = d.cname.clone().unwrap_or_else(|| random_id(&mut rng, 16));
        // At level ERROR: a span's level only decides whether it is made,
        // and this one must be there for whatever is logged beneath it
        // (warnings under the default `warn` filter too).
        let span = tracing::error_span!(
            parent: None,
            "conn",
            id = %creds.ufrag,
            fork = tracing::field::Empty,
            remote = tracing::field::Empty
        );
        span.in_scope(|| tracing::debug!("connection created"));
        let fallback_keys = if local_keys.is_empty() { Keying::defaults(&mut rng) } else { Vec::new() };
        Ok(Self {
            rng,
            seeded: config.seed.is_some(),
            cname,
            context_id: creds.ufrag,
            secret: creds.pwd,
            restart_pending: false,
            local_keys,
            fallback_keys,
            remote: None,
            remote_keys: Vec::new(),
            local_options: config.options,
            remote_options: None,
            agreement: None,
            transports: Vec::new(),
            session: None,
            tracks: Tracks::default(),
            send: SendQueue::default(),
            twcc: None,
            twcc_seq: 0,
            bwe: None,
            bitrate_told: None,
            remb: None,
            remb_rx: None,
            remb_first: None,
            remb_sent: None,
            pacer: pacer::Pacer::default(),
            ext_ids: Default::default(),
            frames: FrameQueue::default(),
            events: VecDeque::new(),
            events_dropped: 0,
            connected: false,
            created: now,
            wallclock,
            last_now: now,
            connected_after: None,
            report_interval: config.report_interval.max(Duration::from_millis(10)),
            next_report: None,
            plan_gen: 0,
            closed: false,
            route_gen: 0,
            stream_out: VecDeque::new(),
            limits: config.limits,
            max_payload: config.max_payload.clamp(200, MAX_PAYLOAD_LIMIT),
            dropped: [0; DropReason::COUNTED],
            data: None,
            remote_offer: None,
            sdp_sections: Vec::new(),
            held_layers: Vec::new(),
            sdp_version: 0,
            dtls_role: None,
            ice_role_fixed: None,
            sdp_offerer: None,
            span,
        })
    }

    /// Enters the connection's span (see [`Connection::span`]) until the
    /// guard drops.
    pub(crate) fn entered(&self) -> tracing::span::EnteredSpan {
        self.span.clone().entered()
    }

    /// The connection's span in the logs (`conn`, with its `id`, and the
    /// peer's `remote` context-id once known): a parent for the
    /// application's own spans and events about this connection.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// A connection to another peer sharing this one's context (`cname`,
    /// `context-id`, `secret`), options, report interval and limits, with
    /// fresh SRTP keys for the same suites, and no socket, stream or remote
    /// description yet: add this connection's sockets to it (an
    /// [`Endpoint`](crate::Endpoint) does, and routes STUN requests to it by
    /// the sender's ufrag).
    pub fn fork(&mut self, now: Instant) -> Result<Connection, Error> {
        if self.closed {
            return Err(Error::Closed);
        }
        let seed = self.seeded.then(|| rand::Rng::random(&mut self.rng));
        let config = ConnectionConfig {
            description: ConnectionDescription {
                cname: Some(self.cname.clone()),
                context_id: Some(self.context_id.clone()),
                secret: Some(self.secret.clone()),
                ..ConnectionDescription::default()
            },
            options: self.local_options.clone(),
            seed,
            report_interval: self.report_interval,
            max_payload: self.max_payload,
            limits: self.limits,
        };
        let wallclock = self.wallclock + now.saturating_duration_since(self.created);
        let mut fork = Connection::new(config, now, wallclock)?;
        fork.span.record("fork", true);
        fork.local_keys = self.local_keys.iter().map(|k| Keying::random(k.tag, k.profile, &mut fork.rng)).collect();
        Ok(fork)
    }

    // ----- getters -----

    /// The local description (credentials, keys, sockets with candidates,
    /// streams sent), or the remote one once set.
    pub fn description(&self, direction: Direction) -> Option<ConnectionDescription> {
        match direction {
            Direction::Local => Some(self.local_description()),
            Direction::Remote => self.remote.clone(),
        }
    }

    /// The local or remote codec options.
    pub fn options(&self, direction: Direction) -> Option<&Options> {
        match direction {
            Direction::Local => Some(&self.local_options),
            Direction::Remote => self.remote_options.as_deref(),
        }
    }

    /// The agreed codecs, once the remote description is known.
    pub fn agreement(&self) -> Option<&Agreement> {
        self.agreement.as_ref()
    }

    /// The local ICE ufrag (`context-id`).
    pub fn context_id(&self) -> &str {
        &self.context_id
    }

    /// The peer's ICE ufrag, once its description is set.
    pub fn remote_context_id(&self) -> Option<&str> {
        self.remote.as_ref().and_then(|r| r.context_id.as_deref())
    }

    /// The sockets, in the order they were added.
    pub fn sockets(&self) -> impl Iterator<Item = SocketId> + '_ {
        self.transports.iter().map(|t| t.id)
    }

    /// A socket's local candidates gathered so far, with its `socket-id`.
    pub fn local_candidates(&self, socket: SocketId) -> Vec<Candidate> {
        let Some(t) = self.transports.iter().find(|t| t.id == socket) else { return Vec::new() };
        t.agent
            .local_candidates()
            .cloned()
            .map(|mut c| {
                c.socket_id = Some(t.socket_id.clone());
                c
            })
            .collect()
    }

    /// A socket's ICE agent (statistics, pairs, state).
    pub fn ice_agent(&self, socket: SocketId) -> Option<&Agent> {
        self.transports.iter().find(|t| t.id == socket).map(|t| &t.agent)
    }

    /// The streams sent (`Local`) or received (`Remote`), in order.
    pub fn streams(&self, direction: Direction) -> Vec<StreamId> {
        self.tracks.stream_ids(direction)
    }

    /// A stream's description: its id and its tracks'.
    pub fn stream_description(&self, stream: StreamId) -> Option<StreamDescription> {
        self.tracks.describe(stream)
    }

    /// A stream's tracks.
    pub fn stream_tracks(&self, stream: StreamId) -> &[TrackId] {
        self.tracks.stream(stream).map(|s| s.tracks.as_slice()).unwrap_or_default()
    }

    /// The stream a track belongs to.
    pub fn stream_of(&self, track: TrackId) -> Option<StreamId> {
        self.tracks.tracks.get(&track).map(|t| t.stream)
    }

    /// A track's description.
    pub fn track_description(&self, track: TrackId) -> Option<&TrackDescription> {
        self.tracks.tracks.get(&track).map(|t| &t.desc)
    }

    /// The statistics of every sent, then every received, track.
    pub fn stats(&self) -> Vec<TrackReport> {
        let mut out = Vec::new();
        for d in [Direction::Local, Direction::Remote] {
            for s in self.tracks.stream_ids(d) {
                out.extend(self.stream_reports(s));
            }
        }
        out
    }

    /// Every ICE candidate pair of every socket, in the order they were
    /// formed: state, candidate types, checks, round trips and what went
    /// over each (webrtc-stats' `candidate-pair`).
    pub fn candidate_pairs(&self) -> Vec<CandidatePairReport> {
        let mut out = Vec::new();
        for t in &self.transports {
            let selected: Vec<_> =
                [Component::RTP, Component::RTCP].into_iter().filter_map(|c| t.agent.path(c)).collect();
            out.extend(t.agent.candidate_pairs().map(|p| {
                let sel = selected.iter().any(|s| s.local == p.local && s.remote == p.remote);
                CandidatePairReport::new(&t.socket_id, &p, sel)
            }));
        }
        out
    }

    /// Whether media can flow: every socket has ICE with consent and SRTP
    /// keys.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Whether [`Connection::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// How long after its creation the connection first fired Connected.
    pub fn connected_after(&self) -> Option<Duration> {
        self.connected_after
    }

    /// Received datagrams dropped by the connection (all reasons but ICE's,
    /// which its agents count).
    pub fn dropped(&self) -> u64 {
        let ice = self.dropped[DropReason::Ice(rtc_ice::DropReason::Closed).index()];
        self.dropped.iter().sum::<u64>() - ice
    }

    /// Received datagrams dropped for `reason` (any ICE reason for
    /// [`DropReason::Ice`]).
    pub fn dropped_for(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }

    /// Frames lost inside the connection: received ones dropped because
    /// [`Connection::poll_frame`] fell behind its budget, written ones
    /// dropped because their path or keys went away before they left, and
    /// events dropped because [`Connection::poll_event`] fell behind.
    pub fn lost(&self) -> (u64, u64, u64) {
        (self.frames.dropped, self.send.dropped, self.events_dropped)
    }

    /// Whether a datagram is this connection's, without taking it (no state
    /// changes): a STUN request to its ufrag from its peer's, a response to
    /// one of its transactions, or other data over one of its socket's
    /// candidate pairs. A cheap routing test, not an authentication.
    pub fn accepts(&self, socket: SocketId, local: SocketAddr, remote: SocketAddr, data: &[u8]) -> bool {
        !self.closed
            && self
                .transports
                .iter()
                .any(|t| t.id == socket && t.has_local(local) && t.agent.accepts(local, remote, data))
    }

    // ----- commands -----

    /// Adds a socket: an ICE agent with this connection's credentials starts
    /// on its addresses, and its candidates come out as socket events (when
    /// `primary`: forks sharing a socket leave that to its first
    /// connection).
    pub fn add_socket(
        &mut self,
        now: Instant,
        id: SocketId,
        socket: &SocketConfig,
        primary: bool,
    ) -> Result<(), Error> {
        let _span = self.entered();
        self.last_now = now;
        if self.closed {
            return Err(Error::Closed);
        }
        if self.transports.iter().any(|t| t.id == id || t.socket_id == socket.socket_id) {
            return Err(Error::InvalidOptions("the socket is already added".into()));
        }
        if self.transports.len() >= self.limits.sockets {
            return Err(Error::LimitReached("sockets"));
        }
        if socket.locals.is_empty() {
            return Err(Error::InvalidOptions("a socket needs at least one local address".into()));
        }
        let span = tracing::error_span!("socket", id = %socket.socket_id);
        let socket_span = span.clone().entered();
        tracing::debug!(locals = ?socket.locals, mux = socket.options.mux, primary, "socket added");
        let components = if socket.options.mux { 1 } else { 2 };
        let mut cfg = AgentConfig {
            role: Role::Controlling,
            components,
            credentials: Some(Credentials { ufrag: self.context_id.clone(), pwd: self.secret.clone() }),
            stun_servers: socket.stun_servers.clone(),
            turn_servers: socket.turn_servers.clone(),
            relay_only: socket.relay_only,
            mdns_host_names: socket.mdns_host_names,
            lite: socket.options.ice_lite,
            seed: self.seeded.then(|| rand::Rng::random(&mut self.rng)),
            ..AgentConfig::default()
        };
        if let Some(t) = socket.options.ice_timing {
            cfg.timing = t;
        }
        // The Ta this side proposes; the agent paces at the larger of it and
        // the peer's (50 ms until the remote description says otherwise).
        cfg.timing.ta = socket.options.local_pacing();
        let mut agent = Agent::new(cfg)?;
        for (component, addr) in socket.locals.iter().filter(|_| socket.udp_candidates) {
            agent.add_host_candidate(now, *component, *addr)?;
        }
        for (component, addr) in &socket.tcp_locals {
            agent.add_tcp_host_candidates(now, *component, *addr)?;
        }
        agent.end_of_local_candidates(now);
        self.merge_local_keys(socket)?;
        let mut t = Transport {
            id,
            socket_id: socket.socket_id.clone(),
            locals: socket.locals.clone(),
            options: socket.options.clone(),
            certificate: socket.certificate.clone(),
            dtls_engine: socket.dtls_engine,
            agent,
            primary,
            ice_connected: false,
            dtls: None,
            dtls_replaced: None,
            tx: None,
            rx: None,
            final_path: None,
            dtls_restarts: 0,
            span,
        };
        if let Some(remote) = &self.remote {
            let creds = keying::remote_credentials(remote)?;
            let index = self.transports.len();
            t.agent.set_remote_pacing(keying::remote_pacing(remote, index)?)?;
            t.agent.set_remote_lite(now, keying::remote_lite(remote, index))?;
            t.agent.set_role(now, self.ice_role());
            t.agent.set_remote_credentials(now, creds)?;
            self.key_transport(&mut t, now)?;
        }
        self.transports.push(t);
        self.plan_gen += 1;
        drop(socket_span);
        self.drive_transports(now);
        Ok(())
    }

    /// Removes a socket (it was closed): media over it stops.
    pub fn remove_socket(&mut self, now: Instant, id: SocketId) {
        let _span = self.entered();
        self.last_now = now;
        let before = self.transports.len();
        self.transports.retain(|t| {
            if t.id == id {
                t.span.in_scope(|| tracing::debug!("socket removed"));
            }
            t.id != id
        });
        if self.transports.len() != before {
            self.plan_gen += 1;
            self.go_down("a socket was removed");
        }
    }

    /// Adds a remote candidate (trickle ICE) to a socket.
    pub fn add_remote_candidate(&mut self, now: Instant, socket: SocketId, candidate: &Candidate) -> Result<(), Error> {
        let _span = self.entered();
        self.last_now = now;
        let t = self
            .transports
            .iter_mut()
            .find(|t| t.id == socket)
            .ok_or_else(|| Error::InvalidCandidate(format!("no socket {socket:?} on this connection")))?;
        let socket_span = t.span.clone().entered();
        t.agent.add_remote_candidate(now, candidate).map_err(|e| {
            tracing::debug!(%candidate, "remote candidate refused: {e}");
            Error::InvalidCandidate(e.to_string())
        })?;
        drop(socket_span);
        self.drive_transports(now);
        Ok(())
    }

    /// Sets the remote description (the peer's `context-id`, `secret`,
    /// `keys` or fingerprints, `sockets` and `streams`): ICE checks start
    /// and SRTP is keyed. Or, locally, overrides `cname`, `context-id`,
    /// `secret` or `keys` (new credentials once sockets are added restart
    /// ICE). A refused description changes nothing.
    pub fn set_description(
        &mut self,
        now: Instant,
        description: ConnectionDescription,
        direction: Direction,
    ) -> Result<(), Error> {
        let _span = self.entered();
        let r = self.apply_description(now, description, direction);
        if let Err(e) = &r {
            match direction {
                Direction::Remote => tracing::warn!("remote description refused: {e}"),
                Direction::Local => tracing::warn!("local description refused: {e}"),
            }
        }
        r
    }

    /// [`Connection::set_description`] without its log of a refusal.
    pub(crate) fn apply_description(
        &mut self,
        now: Instant,
        description: ConnectionDescription,
        direction: Direction,
    ) -> Result<(), Error> {
        self.last_now = now;
        let r = match direction {
            Direction::Remote => self.set_remote(now, description),
            Direction::Local => self.set_local(now, description),
        };
        self.drive_transports(now);
        r
    }

    /// Sets the local or remote codec options (`codecs`, `required`,
    /// `optional`); with both sides known they are negotiated at once. A
    /// refused dictionary changes nothing.
    pub fn set_options(&mut self, options: Options, direction: Direction) -> Result<(), Error> {
        self.apply_options(options, direction)
    }

    /// Starts sending a stream: its tracks (ids and SSRCs drawn where
    /// absent; each SSRC must be new to this connection) are attached to
    /// the socket their description names, else the first that carries
    /// their kind. Returns the stream and its tracks, in order.
    pub fn send_stream(&mut self, now: Instant, stream: StreamDescription) -> Result<(StreamId, Vec<TrackId>), Error> {
        let _span = self.entered();
        self.last_now = now;
        if self.closed {
            return Err(Error::Closed);
        }
        let mut descs = stream.tracks;
        for d in &mut descs {
            self.fill_track(d);
        }
        for (i, d) in descs.iter().enumerate() {
            let ssrc = d.ssrc.unwrap_or_default();
            if self.tracks.local_by_ssrc.contains_key(&ssrc) || descs[..i].iter().any(|o| o.ssrc == d.ssrc) {
                return Err(Error::InvalidDescription(format!("ssrc {ssrc} is already sent on this connection")));
            }
            check_rid(d, descs[..i].iter())?;
        }
        if self.tracks.count(Direction::Local) + descs.len() > self.limits.local_tracks {
            return Err(Error::LimitReached("local tracks"));
        }
        let stream_id = if stream.stream_id.is_empty() { random_id(&mut self.rng, 16) } else { stream.stream_id };
        let id = self.tracks.new_stream(stream_id, Direction::Local);
        let tracks = descs.into_iter().map(|d| self.attach_local(id, d)).collect();
        if self.connected {
            self.stream_up(id);
        }
        Ok((id, tracks))
    }

    /// Stops sending a stream: its tracks leave, their queued frames are
    /// dropped.
    pub fn stop_stream(&mut self, now: Instant, stream: StreamId) {
        let _span = self.entered();
        self.last_now = now;
        let Some(s) = self.tracks.stream(stream).filter(|s| s.direction == Direction::Local) else { return };
        let tracks = s.tracks.clone();
        if self.connected {
            self.stream_down(stream);
        }
        for t in tracks {
            self.tracks.remove(t);
        }
        self.tracks.streams.retain(|s| s.id != stream);
    }

    /// Adds a track to a sent stream.
    pub fn add_track(&mut self, now: Instant, stream: StreamId, mut track: TrackDescription) -> Result<TrackId, Error> {
        let _span = self.entered();
        self.last_now = now;
        if self.tracks.stream(stream).is_none_or(|s| s.direction != Direction::Local) {
            return Err(Error::Unknown("sent stream"));
        }
        self.fill_track(&mut track);
        let ssrc = track.ssrc.unwrap_or_default();
        if self.tracks.local_by_ssrc.contains_key(&ssrc) {
            return Err(Error::InvalidDescription(format!("ssrc {ssrc} is already sent on this connection")));
        }
        check_rid(&track, self.stream_tracks(stream).iter().filter_map(|t| self.track_description(*t)))?;
        if self.tracks.count(Direction::Local) >= self.limits.local_tracks {
            return Err(Error::LimitReached("local tracks"));
        }
        let id = self.attach_local(stream, track);
        if self.connected {
            self.track_event(id, true);
        }
        Ok(id)
    }

    /// Removes a sent track: TrackDisconnected while connected.
    pub fn remove_track(&mut self, now: Instant, track: TrackId) {
        let _span = self.entered();
        self.last_now = now;
        if !matches!(self.tracks.tracks.get(&track), Some(t) if matches!(t.state, State::Send(_))) {
            return;
        }
        if self.connected {
            self.track_event(track, false);
        }
        self.tracks.remove(track);
    }

    /// Replaces a sent track's description; its `kind` and `ssrc` cannot
    /// change.
    pub fn set_track_description(&mut self, track: TrackId, mut description: TrackDescription) -> Result<(), Error> {
        if description.track_id.is_empty() {
            description.track_id = random_id(&mut self.rng, 16);
        }
        let t = self.tracks.tracks.get_mut(&track).ok_or(Error::Unknown("track"))?;
        if description.kind != t.desc.kind || description.ssrc.is_some_and(|s| Some(s) != t.desc.ssrc) {
            return Err(Error::InvalidDescription("kind and ssrc cannot change while the track is sent".into()));
        }
        description.ssrc = t.desc.ssrc;
        description.rtx_ssrc = t.desc.rtx_ssrc;
        t.desc = description;
        if let State::Send(s) = &mut t.state {
            s.plan = None;
        }
        Ok(())
    }

    /// Receives a remote stream (`true`), or stops delivering its frames
    /// (`false`). A stream the remote description does not list is
    /// registered by its tracks' SSRCs.
    pub fn receive_stream(&mut self, stream: &StreamDescription, receive: bool) -> Result<(), Error> {
        self.set_receiving(stream, receive)
    }

    /// Writes one encoded frame lasting `duration` on a sent track: it is
    /// copied once and goes out of [`Connection::poll_transmit`] as RTP with
    /// the negotiated payload type (Opus and other audio one frame per
    /// packet, VP8 per RFC 7741, H.264 access units in Annex B form per RFC
    /// 6184). Returns how many packets it makes. Refused before anything is
    /// queued when the frame does not fit its format, or the connection
    /// cannot send yet.
    pub fn write_frame(
        &mut self,
        now: Instant,
        track: TrackId,
        frame: &[u8],
        duration: Duration,
    ) -> Result<usize, Error> {
        self.last_now = now;
        self.queue_frame(track, frame, duration)
    }

    /// Sets the contributing sources (the CSRC list, RFC 3550 section 5.1)
    /// of a sent track's next frames, as a mixer does; at most 15.
    pub fn set_contributors(&mut self, track: TrackId, csrcs: &[u32]) -> Result<(), Error> {
        if csrcs.len() > 15 {
            return Err(Error::InvalidOptions(format!("{} contributors: RTP carries at most 15", csrcs.len())));
        }
        let Some(State::Send(s)) = self.tracks.tracks.get_mut(&track).map(|t| &mut t.state) else {
            return Err(Error::Unknown("sent track"));
        };
        s.csrcs[..csrcs.len()].copy_from_slice(csrcs);
        s.ncsrc = csrcs.len() as u8;
        Ok(())
    }

    /// Sets the audio level (RFC 6464: `level` 0 to 127 in -dBov, 127 for
    /// silence, and whether the frames hold voice) of an audio track's next
    /// frames, sent in the `ssrc-audio-level` header extension when it was
    /// negotiated (a mixer or an SFU reads it without decoding); `None`
    /// stops it. The receiver finds it in `FrameInfo::audio_level`.
    pub fn set_audio_level(&mut self, track: TrackId, level: Option<(u8, bool)>) -> Result<(), Error> {
        let Some(t) = self.tracks.tracks.get_mut(&track) else { return Err(Error::Unknown("sent track")) };
        if t.desc.kind != rtc_codecs::Kind::Audio {
            return Err(Error::InvalidOptions("an audio level is for audio tracks".into()));
        }
        let State::Send(s) = &mut t.state else { return Err(Error::Unknown("sent track")) };
        if level.is_some_and(|(l, _)| l > 127) {
            return Err(Error::InvalidOptions("an audio level is 0 to 127 (-dBov)".into()));
        }
        s.audio_level = level.map(|(l, voice)| l | if voice { 0x80 } else { 0 });
        Ok(())
    }

    /// Sets how often StreamReport and TrackReport fire (at least 10 ms).
    pub fn set_report_interval(&mut self, interval: Duration) {
        self.report_interval = interval.max(Duration::from_millis(10));
        self.next_report = None;
    }

    /// Closes the connection: Disconnected and the streams' events (while
    /// connected), DTLS close_notify on each association (still to drain
    /// from [`Connection::poll_transmit`]), and the agents stop. Idempotent.
    pub fn close(&mut self, now: Instant) {
        let _span = self.entered();
        self.last_now = now;
        if self.closed {
            return;
        }
        tracing::debug!("connection closed");
        self.close_data(now);
        self.go_down("the connection was closed");
        self.closed = true;
        self.route_gen += 1;
        for t in &mut self.transports {
            let _entered = t.span.clone().entered();
            t.final_path = t.agent.path(Component::RTP);
            if let Some(d) = t.dtls.as_mut() {
                d.close(now);
            }
            t.agent.close();
        }
        self.send.clear();
        self.next_report = None;
    }

    // ----- inputs -----

    /// Takes one datagram that arrived on `socket` at its local address
    /// `local` from `remote`: STUN to the socket's ICE agent, DTLS to its
    /// association, SRTP and SRTCP unprotected in place (RFC 7983, RFC
    /// 5761). Bad input is dropped and counted, never an error or a panic.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        socket: SocketId,
        local: SocketAddr,
        remote: SocketAddr,
        data: &mut [u8],
    ) -> Receive {
        let _span = self.entered();
        let ti = match self.receiving(now, socket) {
            Ok(ti) => ti,
            Err(r) => return r,
        };
        // The socket's span for what its agent and association do (media
        // goes by with the connection's alone).
        let socket_span = (classify(data) != DatagramKind::Media).then(|| self.transports[ti].span.clone().entered());
        let got = self.transports[ti].agent.handle_receive(now, local, remote, data);
        self.after_ice(now, ti, got, data, socket_span)
    }

    /// The clock, and the index of `socket`'s transport for what arrived
    /// on it, or why it is dropped.
    fn receiving(&mut self, now: Instant, socket: SocketId) -> Result<usize, Receive> {
        self.last_now = now;
        if self.closed {
            return Err(self.drop_with(DropReason::Closed));
        }
        let ti = self.transports.iter().position(|t| t.id == socket);
        ti.ok_or_else(|| self.drop_with(DropReason::UnknownSocket))
    }

    /// What the socket's ICE agent made of a datagram (or of a message on a
    /// stream to a TURN server), acted on: DTLS to the association, media
    /// unprotected in place.
    fn after_ice(
        &mut self,
        now: Instant,
        ti: usize,
        got: rtc_ice::Receive,
        data: &mut [u8],
        socket_span: Option<tracing::span::EnteredSpan>,
    ) -> Receive {
        // Through a TURN relay: the payload inside the ChannelData or Data
        // indication, handled in place like a datagram of its own.
        let (got, data) = match got {
            rtc_ice::Receive::RelayedData { component, offset, len } => {
                let end = offset.checked_add(len).filter(|&e| e <= data.len()).unwrap_or(offset);
                match data.get_mut(offset..end) {
                    Some(inner) if end > offset => (rtc_ice::Receive::Data { component }, inner),
                    _ => (rtc_ice::Receive::Dropped(rtc_ice::DropReason::Relay), data),
                }
            }
            other => (other, data),
        };
        let r = match got {
            rtc_ice::Receive::Stun => Receive::Stun,
            rtc_ice::Receive::Data { component } => match classify(data) {
                DatagramKind::Dtls => match self.transports[ti].dtls.as_deref().map(rtc_dtls::Dtls::state) {
                    Some(state) if component == Component::RTP => {
                        let t = &mut self.transports[ti];
                        if state == rtc_dtls::State::New
                            && let Some(rtt) = t.ice_round_trip()
                            && let Some(d) = t.dtls.as_mut()
                        {
                            // A server's first datagram: its retransmissions
                            // wait twice ICE's round trip.
                            d.set_round_trip(rtt, &t.certificate);
                        }
                        if let Some(d) = t.dtls.as_mut() {
                            d.handle_datagram(now, data);
                        }
                        Receive::Dtls
                    }
                    _ => self.drop_with(DropReason::Dtls),
                },
                DatagramKind::Media => return self.receive_media(now, ti, component, data),
                DatagramKind::Other => self.drop_with(DropReason::Unknown),
            },
            rtc_ice::Receive::Dropped(reason) => self.drop_with(DropReason::Ice(reason)),
            _ => self.drop_with(DropReason::Unknown),
        };
        drop(socket_span);
        if matches!(r, Receive::Stun | Receive::Dtls) {
            self.drive_transports(now);
        }
        if r == Receive::Dtls {
            self.drive_data(now);
        }
        r
    }

    // ----- outputs -----

    /// The next datagram to send, written into `buf` (at least
    /// [`MIN_TRANSMIT_BUFFER`] octets): STUN first, then DTLS, RTCP when a
    /// report is due, then the RTP packets of the frames written, each
    /// packetized and protected in place.
    ///
    /// Over a relayed pair (a TURN relayed candidate, rtc-ice) the datagram
    /// comes framed for the TURN server (ChannelData or a Send indication,
    /// `rtc_ice::turn::RELAY_OVERHEAD` octets at most, from the socket's
    /// host address to the server); one that does not fit is dropped. For
    /// a server reached over TCP or TLS, `turn_stream` says so: the framed
    /// datagram goes on that stream.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        loop {
            let t = self.poll_unframed(now, buf)?;
            let Some(tr) = self.transports.iter_mut().find(|tr| tr.id == t.socket) else { return Some(t) };
            tr.agent.count_sent(t.source, t.destination, buf.get(..t.len).unwrap_or_default());
            match tr.agent.frame_relayed(t.source, t.destination, buf, t.len) {
                Ok(None) => return Some(t),
                // A relay reached over TCP or TLS: the framed datagram goes
                // on the stream (`turn_stream`), from the caller's buffer.
                Ok(Some(r)) => {
                    return Some(Transmit {
                        socket: t.socket,
                        source: r.source,
                        destination: r.destination,
                        len: r.len,
                        turn_stream: r.transport.is_stream().then_some(r.transport),
                    });
                }
                Err(e) => tracing::trace!("a datagram over a relayed pair was dropped: {e}"),
            }
        }
    }

    /// [`Connection::poll_transmit`] before the framing for a relay.
    fn poll_unframed(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if buf.len() < MIN_TRANSMIT_BUFFER {
            return None;
        }
        for t in &mut self.transports {
            while let Some(tr) = t.agent.poll_transmit() {
                if tr.transport.is_stream() {
                    stream::push(&mut self.stream_out, StreamOutput::Transmit(t.id, tr));
                    continue;
                }
                // A STUN message longer than the buffer cannot happen (the
                // agent writes short Binding messages); it would be lost.
                if let Some(dst) = buf.get_mut(..tr.contents.len()) {
                    dst.copy_from_slice(&tr.contents);
                    return Some(Transmit {
                        socket: t.id,
                        source: tr.source,
                        destination: tr.destination,
                        len: tr.contents.len(),
                        turn_stream: None,
                    });
                }
            }
        }
        if self.data.is_some() {
            let _span = self.entered();
            self.pump_data(now);
        }
        for t in &mut self.transports {
            let Some(path) = t.dtls_path() else { continue };
            if let Some(replaced) = t.dtls_replaced.as_mut() {
                if let Some(n) = replaced.poll_transmit(buf) {
                    return Some(Transmit::on(t.id, path, n));
                }
                t.dtls_replaced = None;
            }
            if let Some(n) = t.dtls.as_mut().and_then(|d| d.poll_transmit(buf)) {
                return Some(Transmit::on(t.id, path, n));
            }
        }
        if self.closed {
            return None;
        }
        if self.connected
            && let Some(t) = self.poll_rtcp(now, buf)
        {
            return Some(t);
        }
        if let Some(t) = self.poll_feedback(now, buf) {
            return Some(t);
        }
        if let Some(t) = self.poll_transport_feedback(now, buf) {
            return Some(t);
        }
        if let Some(t) = self.poll_remb(now, buf) {
            return Some(t);
        }
        if let Some(t) = self.poll_resend(now, buf) {
            return Some(t);
        }
        self.poll_media(now, buf)
    }

    fn poll_rtcp(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let Connection { session, transports, .. } = self;
        let session = session.as_mut()?;
        let t = transports.iter_mut().find(|t| t.ice_connected && t.tx.is_some())?;
        let path = t.rtcp_path()?;
        let tx = t.tx.as_mut()?;
        let room = buf.len().saturating_sub(tx.profile().rtcp_overhead());
        let n = session.poll_transmit(now, &mut buf[..room])?;
        let n = tx.protect_rtcp(buf, n).ok()?;
        Some(Transmit::on(t.id, path, n))
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        let e = self.events.pop_front();
        if e.is_none() && self.events.capacity() > 0 {
            // An idle connection holds no queue memory (events come in
            // bursts: candidates, state changes, reports).
            self.events = VecDeque::new();
        }
        e
    }

    /// The next received frame: `out` is cleared and swapped with the
    /// buffer the frame was assembled in (pass an emptied buffer back each
    /// time and, once warm, no frame allocates).
    #[must_use]
    pub fn poll_frame(&mut self, out: &mut Vec<u8>) -> Option<FrameInfo> {
        self.frames.pop(out)
    }

    /// Whether output may be waiting (transmits, events or frames).
    pub(crate) fn has_output(&self) -> bool {
        !self.events.is_empty() || !self.frames.is_empty() || !self.send.is_empty() || self.data_has_output()
    }

    // ----- internals -----

    fn drop_with(&mut self, reason: DropReason) -> Receive {
        tracing::trace!(?reason, "datagram dropped");
        self.dropped[reason.index()] += 1;
        Receive::Dropped(reason)
    }

    pub(crate) fn push_event(&mut self, e: Event) {
        if self.events.len() >= self.limits.events {
            self.events.pop_front();
            self.events_dropped += 1;
        }
        self.events.push_back(e);
    }

    /// Draws a track's missing id and SSRC.
    fn fill_track(&mut self, d: &mut TrackDescription) {
        if d.track_id.is_empty() {
            d.track_id = random_id(&mut self.rng, 16);
        }
        if d.ssrc.is_none() {
            let mut ssrc = random_ssrc(&mut self.rng);
            while self.tracks.local_by_ssrc.contains_key(&ssrc) {
                ssrc = random_ssrc(&mut self.rng);
            }
            d.ssrc = Some(ssrc);
        }
        if d.kind == rtc_codecs::Kind::Video && d.rtx_ssrc.is_none() {
            let mut rtx = random_ssrc(&mut self.rng);
            while Some(rtx) == d.ssrc || self.tracks.local_by_ssrc.contains_key(&rtx) {
                rtx = random_ssrc(&mut self.rng);
            }
            d.rtx_ssrc = Some(rtx);
        }
    }

    /// Attaches a local track: its socket chosen, its RTP stream in the
    /// session.
    fn attach_local(&mut self, stream: StreamId, mut d: TrackDescription) -> TrackId {
        if d.socket_id.is_none()
            && let Some(i) = self.transport_for(&d)
        {
            d.socket_id = Some(self.transports[i].socket_id.clone());
        }
        let ssrc = d.ssrc.unwrap_or_default();
        let clock = self.clock_of(d.kind);
        let (seq, ts) = (rand::Rng::random(&mut self.rng), rand::Rng::random(&mut self.rng));
        if let Some(s) = self.session.as_mut()
            && !s.has_outgoing(ssrc)
        {
            s.add_outgoing(ssrc, clock, seq, ts);
        }
        let picture_id = rand::Rng::random::<u16>(&mut self.rng) & 0x7fff;
        let state = State::Send(Box::new(Sending {
            media_time: 0,
            plan: None,
            packetizer: None,
            picture_id,
            csrcs: [0; 15],
            ncsrc: 0,
            audio_level: None,
            history: None,
            rtx_seq: rand::Rng::random(&mut self.rng),
            feedback: tracks::FeedbackCounts::default(),
            key_frame_told: None,
            last_fir: None,
        }));
        self.tracks.add(stream, d, state)
    }

    /// Changes whenever the ufrags STUN requests route by change.
    pub(crate) fn route_generation(&self) -> u64 {
        self.route_gen
    }

    /// Routing facts for an [`Endpoint`](crate::Endpoint): the 4-tuples
    /// its agents take data on, and a generation that changes with them.
    pub(crate) fn data_paths(&self) -> (u64, Vec<(SocketAddr, SocketAddr)>) {
        let mut generation = self.transports.len() as u64;
        let mut paths = Vec::new();
        for t in &self.transports {
            generation = generation.wrapping_mul(1_000_003).wrapping_add(t.agent.paths_generation());
            paths.extend(t.agent.data_paths());
        }
        (generation, paths)
    }

    /// The generation of [`Connection::data_paths`] alone (cheap).
    pub(crate) fn paths_generation(&self) -> u64 {
        let mut generation = self.transports.len() as u64;
        for t in &self.transports {
            generation = generation.wrapping_mul(1_000_003).wrapping_add(t.agent.paths_generation());
        }
        generation
    }
}

/// A sent simulcast layer's `rid` must be an RFC 8851 `rid-id` that fits
/// the one-byte header extension (1 to 16 alphanumerics, `-`, `_`), and
/// differ from the other layers' of its stream and kind (`others`).
fn check_rid<'a>(d: &TrackDescription, mut others: impl Iterator<Item = &'a TrackDescription>) -> Result<(), Error> {
    let Some(rid) = &d.rid else { return Ok(()) };
    if !crate::sdp::valid_rid(rid) {
        return Err(Error::InvalidDescription(format!(
            "rid {rid:?}: 1 to 16 letters, digits, '-' or '_' (RFC 8851, one-byte header extension)"
        )));
    }
    if others.any(|o| o.kind == d.kind && o.rid.as_ref() == Some(rid)) {
        return Err(Error::InvalidDescription(format!("rid {rid:?} is already a layer of this stream")));
    }
    Ok(())
}
