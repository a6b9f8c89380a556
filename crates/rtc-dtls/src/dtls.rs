//! The DTLS-SRTP association: a sans-IO machine over dimpl's DTLS 1.2 engine.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use dimpl::{Config, Output};

use crate::keys::profile_of;
use crate::{Certificate, Error, Fingerprint, HashAlgorithm, SrtpKeys};

/// The largest datagram the handshake produces (dimpl fragments flights to
/// it), as browsers use.
pub const MTU: usize = 1200;

/// The longest application data [`Dtls::send_application_data`] takes in
/// one call: an SCTP packet (RFC 8261) of up to this size goes out as one
/// record in one datagram of at most [`MAX_TRANSMIT`] octets.
pub const MAX_APPLICATION_DATA: usize = 1200;

/// DTLS 1.2 record overhead with the engine's AEAD suites: 13 octets of
/// header, an explicit nonce of up to 8 and a tag of 16.
const RECORD_OVERHEAD: usize = 13 + 8 + 16;

/// The largest datagram [`Dtls::poll_transmit`] returns: [`MTU`] during the
/// handshake, a record of [`MAX_APPLICATION_DATA`] afterwards.
pub const MAX_TRANSMIT: usize = MAX_APPLICATION_DATA + RECORD_OVERHEAD;

/// At most this many octets of received application data wait for
/// [`Dtls::poll_application_data`]; more is dropped and counted.
pub const MAX_RECEIVED_APPLICATION_DATA: usize = 1 << 20;

/// At most this many received application data records wait.
const MAX_RECEIVED_RECORDS: usize = 4096;

/// The largest datagram taken in: one record of the largest ciphertext
/// DTLS 1.2 allows (RFC 6347 section 4.1: 2^14 + 2048) with its header.
const MAX_DATAGRAM: usize = 13 + (1 << 14) + 2048;

/// At most this many datagrams wait for [`Dtls::poll_transmit`]; beyond it
/// the oldest is dropped (a stale retransmission).
const MAX_TRANSMITS: usize = 64;

/// At most this many events wait (only a few can ever happen).
const MAX_EVENTS: usize = 8;

/// Spare buffers kept for reuse, and the largest one kept.
const MAX_FREE: usize = 8;
const MAX_FREE_CAPACITY: usize = 4096;

/// The engine writes into a buffer of this size on the stack, or, when it
/// needs more, into one on the heap that grows on demand up to
/// `MAX_OUTPUT`.
const SCRATCH: usize = 2048;
const MAX_OUTPUT: usize = 1 << 16;

/// Polls of the engine per call; every poll cycle ends in a timeout well
/// before this, the bound only guards against a misbehaving engine.
const MAX_POLLS: usize = 4096;

/// Engine timers further out than this mean "nothing scheduled".
const IDLE: Duration = Duration::from_secs(24 * 60 * 60);

/// The engine configuration every association shares: defaults (DTLS 1.2,
/// ECDHE-ECDSA AES-GCM and ChaCha20 suites, a cookie exchange, client
/// certificates required, 1 s initial retransmission timeout, 4 retries,
/// a 40 s handshake deadline) with the [`MTU`].
pub(crate) fn config() -> Option<Arc<Config>> {
    built(true, RTO_STEPS.len() - 1)
}

/// Initial retransmission timeouts an association can start with (see
/// [`Dtls::set_round_trip`]), and the retries each gets: a shorter start
/// retries more, so that every one keeps retransmitting for 25 to 31 s of
/// the 40 s deadline. The last is RFC 6347's 1 s, the default.
const RTO_STEPS: [(Duration, usize); 6] = [
    (Duration::from_millis(50), 8),
    (Duration::from_millis(100), 7),
    (Duration::from_millis(200), 6),
    (Duration::from_millis(400), 5),
    (Duration::from_millis(800), 4),
    (Duration::from_millis(1000), 4),
];

/// A configuration with (or without) the cookie exchange for one of
/// [`RTO_STEPS`]: building one takes a few milliseconds (the engine checks
/// its crypto provider), so each is built once, on first use. The default
/// two (1 s) are asked for when a certificate is created
/// (`Certificate::from_der`), before any call; another step's, by the
/// first handshake that needs it.
fn built(cookie: bool, step: usize) -> Option<Arc<Config>> {
    static CONFIGS: [[OnceLock<Option<Arc<Config>>>; RTO_STEPS.len()]; 2] =
        [const { [const { OnceLock::new() }; RTO_STEPS.len()] }; 2];
    let (rto, retries) = *RTO_STEPS.get(step)?;
    CONFIGS[usize::from(!cookie)][step]
        .get_or_init(|| {
            Config::builder()
                .mtu(MTU)
                .use_server_cookie(cookie)
                .flight_start_rto(rto)
                .flight_retries(retries)
                .build()
                .ok()
                .map(Arc::new)
        })
        .clone()
}

/// Both default configurations, with and without the cookie exchange
/// (built when a certificate is created, see [`built`]).
pub(crate) fn configs() -> Option<[Arc<Config>; 2]> {
    let last = RTO_STEPS.len() - 1;
    Some([built(true, last)?, built(false, last)?])
}

/// The configuration for an association with (or without) the cookie
/// exchange whose first retransmission waits about `rto`: the first of
/// [`RTO_STEPS`] at least as long, the last if none is.
fn config_for(cookie: bool, rto: Duration) -> Option<Arc<Config>> {
    let i = RTO_STEPS.iter().position(|&(r, _)| r >= rto).unwrap_or(RTO_STEPS.len() - 1);
    built(cookie, i)
}

/// [`config`] without the server's cookie exchange, for
/// [`Dtls::over_ice`].
fn config_without_cookie() -> Option<Arc<Config>> {
    config_for(false, Duration::MAX)
}

/// Which DTLS implementation runs an association
/// ([`Dtls::with_engine`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Engine {
    /// dimpl: pure Rust and sans-IO down to its timers, so deterministic in
    /// simulated time; ECDHE-ECDSA suites only, so the peer's certificate
    /// must be ECDSA (browsers, pion, aiortc, rtc).
    #[default]
    Dimpl,
    /// OpenSSL through the `openssl` crate (cargo feature `openssl`):
    /// ECDHE-ECDSA and ECDHE-RSA suites, so peers with RSA certificates
    /// (GStreamer webrtcbin, many SIP gateways and media servers) connect
    /// too, in either role. Its retransmission timer runs on the system
    /// clock: for real-time drivers. Without the feature an association on
    /// it fails at once ([`Engine::available`]).
    OpenSsl,
}

impl Engine {
    /// Whether this build has the engine (OpenSSL needs feature `openssl`).
    pub fn available(self) -> bool {
        match self {
            Engine::Dimpl => true,
            Engine::OpenSsl => cfg!(feature = "openssl"),
        }
    }
}

/// The running engine of an association. dimpl's stays inline (an
/// association is boxed by its owner already; one more allocation per
/// association would cost the many-connection server).
#[allow(clippy::large_enum_variant, reason = "dimpl inline, the rarer OpenSSL engine boxed")]
enum Inner {
    Dimpl(dimpl::Dtls),
    #[cfg(feature = "openssl")]
    OpenSsl(Box<crate::ossl::Ossl>),
}

/// One operation on the engine, for [`Dtls::step`].
#[derive(Clone, Copy)]
enum Op<'a> {
    /// Time passes (and a client's first flight).
    Timeout(Instant),
    /// A datagram from the peer.
    Packet(Instant, &'a [u8]),
    /// Application data out.
    Send(&'a [u8]),
    /// close_notify out.
    Close(Instant),
}

/// Which end of the DTLS handshake this side is (from SDP `a=setup`,
/// RFC 5763 section 5: `active` is the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Sends the ClientHello.
    Client,
    /// Answers it.
    Server,
}

/// Where an association is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Created; a client waits for [`Dtls::start`], a server for the
    /// ClientHello.
    New,
    /// The handshake runs.
    Handshaking,
    /// The handshake completed with a verified peer certificate and SRTP is
    /// keyed; application data flows.
    Connected,
    /// Closed by [`Dtls::close`] or by the peer's close_notify.
    Closed,
    /// The handshake or the association failed.
    Failed,
}

/// What an association reports through [`Dtls::poll_event`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Handshake done, the peer's certificate matched one of the
    /// fingerprints: SRTP keys.
    Connected(SrtpKeys),
    /// The peer sent close_notify (the association is over; keys stay valid
    /// for media already keyed).
    Closed,
    /// The handshake or the association failed; nothing more happens. The
    /// reason.
    ///
    /// After [`Event::Connected`] this ends only the DTLS association
    /// (application data): the SRTP keys already delivered stay valid.
    Failed(&'static str),
}

/// RFC 7983 demultiplexing: whether a datagram is DTLS (first octet 20 to
/// 63), as opposed to STUN, RTP/RTCP or TURN channel data.
pub fn is_dtls(datagram: &[u8]) -> bool {
    matches!(datagram.first(), Some(20..=63))
}

/// Whether a datagram is a run of whole DTLS 1.2 records (RFC 6347 section
/// 4.1) of the content types DTLS-SRTP uses: change_cipher_spec, alert,
/// handshake, application_data.
fn well_formed(mut datagram: &[u8]) -> bool {
    if datagram.is_empty() || datagram.len() > MAX_DATAGRAM {
        return false;
    }
    while !datagram.is_empty() {
        let [content_type, major, _minor, _, _, _, _, _, _, _, _, hi, lo, body @ ..] = datagram else {
            return false;
        };
        if !(20..=23).contains(content_type) || *major != 0xFE {
            return false;
        }
        let Some(rest) = body.get(usize::from(u16::from_be_bytes([*hi, *lo]))..) else {
            return false;
        };
        datagram = rest;
    }
    true
}

/// Whether `data` starts with a plaintext (epoch 0) handshake record that
/// holds a ClientHello or a fragment of one (RFC 6347 section 4.2.2:
/// msg_type 1): all a server that has not started takes. Anything else is
/// a flight meant for an earlier association (one that failed and was
/// replaced) or forged, and would derail the handshake the client is
/// about to start over.
fn starts_client_hello(data: &[u8]) -> bool {
    data.len() > 13 && data[0] == 22 && data[3..5] == [0, 0] && data[13] == 1
}

/// How long a handshake may still complete after a plaintext fatal alert.
pub const ALERT_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether `data` is one plaintext (epoch 0) DTLS record of a fatal alert
/// (RFC 6347 section 4.1, RFC 5246 section 7.2: level 2).
fn is_plain_fatal_alert(data: &[u8]) -> bool {
    data.len() == 15 && data[0] == 21 && data[3..5] == [0, 0] && data[11..13] == [0, 2] && data[13] == 2
}

/// RFC 5246 section 7.2 alert descriptions.
const UNEXPECTED_MESSAGE: u8 = 10;
const HANDSHAKE_FAILURE: u8 = 40;
pub(crate) const BAD_CERTIFICATE: u8 = 42;
pub(crate) const INTERNAL_ERROR: u8 = 80;

/// The fatal alert to send for an engine error; none when the peer ended
/// the handshake itself (its own alert) or is gone (a timeout).
fn alert_for(e: &dimpl::Error) -> Option<u8> {
    match e {
        dimpl::Error::Timeout(_) | dimpl::Error::ConnectionClosed => None,
        dimpl::Error::SecurityError(dimpl::SecurityError::FatalAlert { .. }) => None,
        dimpl::Error::CertificateError(_) => Some(BAD_CERTIFICATE),
        dimpl::Error::UnexpectedMessage(_) => Some(UNEXPECTED_MESSAGE),
        dimpl::Error::CryptoError(_) | dimpl::Error::ReceiveQueueFull | dimpl::Error::TransmitQueueFull => {
            Some(INTERNAL_ERROR)
        }
        _ => Some(HANDSHAKE_FAILURE),
    }
}

/// A fatal alert as a plaintext DTLS 1.2 record of epoch 0 (RFC 6347
/// section 4.1), as alerts go before the handshake completes. Its sequence
/// number is far beyond any the handshake used, so that a peer's replay
/// window takes it.
fn fatal_alert(description: u8) -> [u8; 15] {
    [21, 0xFE, 0xFD, 0, 0, 0, 0, 0x7F, 0xFF, 0xFF, 0xFF, 0, 2, 2, description]
}

/// The reason [`Event::Failed`] gives when the peer's certificate matches
/// none of the signaled fingerprints (logged with both fingerprints where
/// it is found), with either engine: the one failure a new handshake would
/// meet again.
pub const CERT_MISMATCH: &str = "the peer's DTLS certificate matches none of its fingerprints";

/// Fingerprints as one log field: `sha-256 AB:…, sha-1 CD:…`.
struct Fingerprints<'a>(&'a [Fingerprint]);

impl fmt::Display for Fingerprints<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, fp) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{fp}")?;
        }
        if self.0.is_empty() {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// A fixed text for a fatal engine error.
fn reason(e: &dimpl::Error) -> &'static str {
    match e {
        dimpl::Error::Timeout(_) => "the DTLS handshake timed out",
        dimpl::Error::SecurityError(dimpl::SecurityError::FatalAlert { .. }) => "the DTLS peer sent a fatal alert",
        dimpl::Error::SecurityError(_) => "the DTLS peer broke a security requirement",
        dimpl::Error::CertificateError(_) => "the peer's DTLS certificate is unusable",
        dimpl::Error::CryptoError(_) => "a DTLS cryptographic operation failed",
        dimpl::Error::UnexpectedMessage(_) => "an unexpected DTLS handshake message",
        dimpl::Error::ReceiveQueueFull => "too many DTLS datagrams waiting",
        dimpl::Error::TransmitQueueFull => "too many DTLS datagrams to send",
        dimpl::Error::RenegotiationAttempt => "the DTLS peer attempted renegotiation",
        dimpl::Error::ConnectionClosed => "the DTLS association is closed",
        _ => "the DTLS engine failed",
    }
}

/// One DTLS-SRTP association (RFC 5763, RFC 5764) as a sans-IO machine.
///
/// Datagrams and time go in through [`Dtls::handle_datagram`],
/// [`Dtls::handle_timeout`] and [`Dtls::start`]; datagrams to send, events
/// and the next timer come out through [`Dtls::poll_transmit`],
/// [`Dtls::poll_event`] and [`Dtls::poll_timeout`]. The handshake is
/// DTLS 1.2 (dimpl), both sides present certificates, and the peer's must
/// match one of the fingerprints given to [`Dtls::new`] before any SRTP key
/// comes out.
pub struct Dtls {
    /// `None` once the association ended (or if the engine could not be
    /// configured).
    engine: Option<Inner>,
    role: Role,
    state: State,
    started: bool,
    /// Fingerprints the peer's certificate may match.
    remote: Vec<Fingerprint>,
    /// The peer's certificate matched.
    verified: bool,
    keys: Option<SrtpKeys>,
    /// The engine's clock: the latest `now` seen.
    now: Instant,
    timeout: Option<Instant>,
    /// The engine's output buffer when one on the stack is too small (empty
    /// until then).
    scratch: Vec<u8>,
    /// The spare buffers and queues were trimmed after the handshake.
    trimmed: bool,
    transmits: VecDeque<Vec<u8>>,
    received: VecDeque<Vec<u8>>,
    received_bytes: usize,
    free: Vec<Vec<u8>>,
    events: VecDeque<Event>,
    dropped: u64,
    /// A plaintext fatal alert came during the handshake: it fails the
    /// association at this instant unless the handshake completes first.
    alert_at: Option<Instant>,
    /// The server exchanges cookies (not [`Dtls::over_ice`]).
    cookie: bool,
}

impl Dtls {
    /// An association with our certificate, as client or server, accepting
    /// a peer certificate matching one of `remote`.
    ///
    /// With no fingerprint in `remote`, no peer can be accepted and the
    /// handshake fails when the peer's certificate arrives.
    pub fn new(certificate: &Certificate, role: Role, remote: Vec<Fingerprint>, now: Instant) -> Self {
        let mut dtls = Self::with_config(config(), certificate, role, remote, now);
        dtls.cookie = true;
        dtls
    }

    /// [`Dtls::new`] for an association whose datagrams travel only over an
    /// ICE path the peer consented to (RFC 7675; DTLS-SRTP as RFC 5763 and
    /// WebRTC run it): as a server it answers the ClientHello at once, with
    /// no cookie exchange (HelloVerifyRequest), which saves the client a
    /// round trip: keys after two round trips instead of three.
    ///
    /// RFC 6347 section 4.2.1: servers SHOULD exchange cookies, but "if the
    /// server is being operated in an environment where amplification is
    /// not a problem, the server MAY be configured not to". The cookie
    /// proves that the client receives at the address it sends from; over
    /// ICE that proof is the connectivity check the peer answered, with
    /// MESSAGE-INTEGRITY under the signaled password, and the caller must
    /// send this association's datagrams only to such an address (a
    /// selected or valid pair), so it cannot be turned against a spoofed
    /// victim. A client behaves the same either way.
    pub fn over_ice(certificate: &Certificate, role: Role, remote: Vec<Fingerprint>, now: Instant) -> Self {
        Self::with_config(config_without_cookie(), certificate, role, remote, now)
    }

    /// [`Dtls::over_ice`] on the chosen [`Engine`]. An engine this build
    /// lacks ([`Engine::available`]) gives an association that has already
    /// failed ([`Event::Failed`]).
    pub fn with_engine(
        engine: Engine,
        certificate: &Certificate,
        role: Role,
        remote: Vec<Fingerprint>,
        now: Instant,
    ) -> Self {
        match engine {
            Engine::Dimpl => Self::over_ice(certificate, role, remote, now),
            #[cfg(feature = "openssl")]
            Engine::OpenSsl => {
                let built = certificate
                    .openssl_context()
                    .ok_or("OpenSSL could not load the certificate")
                    .and_then(|c| crate::ossl::Ossl::new(c, role, MTU, remote.clone()));
                let mut dtls = Self::bare(None, role, remote, now);
                match built {
                    Ok(e) => dtls.engine = Some(Inner::OpenSsl(Box::new(e))),
                    Err(why) => dtls.fail(why),
                }
                dtls
            }
            #[cfg(not(feature = "openssl"))]
            Engine::OpenSsl => {
                let mut dtls = Self::bare(None, role, remote, now);
                dtls.fail("this build has no OpenSSL DTLS engine (cargo feature `openssl`)");
                dtls
            }
        }
    }

    fn with_config(
        config: Option<Arc<Config>>,
        certificate: &Certificate,
        role: Role,
        remote: Vec<Fingerprint>,
        now: Instant,
    ) -> Self {
        let mut engine = config.map(|c| dimpl::Dtls::new_12(c, certificate.dtls().clone(), now));
        if let Some(e) = engine.as_mut() {
            e.set_active(role == Role::Client);
        }
        let mut dtls = Self::bare(engine.map(Inner::Dimpl), role, remote, now);
        if dtls.engine.is_none() {
            dtls.fail("the DTLS engine configuration is invalid");
        }
        dtls
    }

    fn bare(engine: Option<Inner>, role: Role, remote: Vec<Fingerprint>, now: Instant) -> Self {
        Self {
            engine,
            role,
            state: State::New,
            started: false,
            remote,
            verified: false,
            keys: None,
            now,
            timeout: None,
            scratch: Vec::new(),
            trimmed: false,
            transmits: VecDeque::new(),
            received: VecDeque::new(),
            received_bytes: 0,
            free: Vec::new(),
            events: VecDeque::new(),
            dropped: 0,
            alert_at: None,
            cookie: false,
        }
    }

    /// This side's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Where the association is.
    pub fn state(&self) -> State {
        self.state
    }

    /// The SRTP keys, once [`State::Connected`] was reached (they stay
    /// after a later close or failure).
    pub fn srtp_keys(&self) -> Option<&SrtpKeys> {
        self.keys.as_ref()
    }

    /// The round trip of the path the handshake will take (ICE measured it
    /// with its check), given before the handshake starts: the first
    /// retransmission then waits twice it, 50 ms to 1 s (RFC 6347's 1 s is
    /// for when nothing is known of the path; WebRTC stacks derive it from
    /// ICE's round trip likewise), and a shorter wait retries more often,
    /// so a lossy path loses less time to a lost flight. With the dimpl
    /// engine only (OpenSSL keeps its own timer); ignored once started.
    pub fn set_round_trip(&mut self, rtt: Duration, certificate: &Certificate) {
        if self.state != State::New || !matches!(self.engine, Some(Inner::Dimpl(_))) {
            return;
        }
        let Some(c) = config_for(self.cookie, rtt.saturating_mul(2)) else { return };
        let mut engine = dimpl::Dtls::new_12(c, certificate.dtls().clone(), self.now);
        engine.set_active(self.role == Role::Client);
        self.engine = Some(Inner::Dimpl(engine));
        tracing::trace!(?rtt, "DTLS retransmission timer from the path's round trip");
    }

    /// The client sends its first flight (no-op for a server or once
    /// started). The caller calls it once the ICE path exists.
    pub fn start(&mut self, now: Instant) {
        if self.role != Role::Client || self.started || self.state != State::New {
            return;
        }
        self.started = true;
        self.state = State::Handshaking;
        tracing::debug!(role = ?self.role, "DTLS handshake start");
        let now = self.clock(now);
        self.step(Op::Timeout(now));
    }

    /// A DTLS datagram from the peer (RFC 7983 first byte 20..=63).
    ///
    /// Datagrams that are not whole DTLS 1.2 records, that arrive before a
    /// client started or after the association ended, are dropped and
    /// counted (see [`Dtls::dropped`]); records the engine finds bad
    /// (authentication, replay, malformed handshake fragments) it drops
    /// itself, silently. A fatal engine error (a fatal alert, a failed
    /// handshake check) gives [`Event::Failed`]. Never panics.
    pub fn handle_datagram(&mut self, now: Instant, data: &[u8]) {
        let now = self.clock(now);
        let accepting = match self.state {
            State::New => self.role == Role::Server,
            State::Handshaking | State::Connected => true,
            State::Closed | State::Failed => false,
        };
        if !accepting || !well_formed(data) || (self.state == State::New && !starts_client_hello(data)) {
            tracing::trace!(state = ?self.state, len = data.len(), "DTLS dropped a datagram");
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        if self.state == State::Handshaking && is_plain_fatal_alert(data) {
            // Unauthenticated (epoch 0): anyone who can send from the
            // peer's address can forge one. The peer that really gave up
            // sends nothing more; a forged one is followed by the peer's
            // flights, and the handshake completes.
            tracing::debug!(role = ?self.role, "DTLS fatal alert before keying: the handshake gets {ALERT_GRACE:?} to complete");
            self.dropped = self.dropped.saturating_add(1);
            self.alert_at.get_or_insert(now + ALERT_GRACE);
            return;
        }
        if self.state == State::New {
            self.started = true;
            self.state = State::Handshaking;
            tracing::debug!(role = ?self.role, "DTLS handshake start: the peer's first flight arrived");
        }
        // The engine wants its clock refreshed before each datagram; a
        // dimpl 0.9 server that never saw `handle_timeout` even panics on a
        // ClientHello, so this order is load-bearing.
        self.step(Op::Packet(now, data));
    }

    /// Time passes: retransmissions when the engine's timer is due, and the
    /// handshake deadline (40 s, or 4 unanswered retransmissions).
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock(now);
        if !self.started {
            return;
        }
        if self.state != State::Handshaking {
            self.alert_at = None;
        } else if self.alert_at.is_some_and(|at| now >= at) {
            self.fail_alert("the DTLS peer sent a fatal alert", None);
            return;
        }
        self.step(Op::Timeout(now));
    }

    /// Next datagram to send, copied into `buf` (returns its length); `None`
    /// when nothing is queued.
    ///
    /// If `buf` is shorter than the datagram ([`Dtls::next_transmit_len`]),
    /// the datagram stays queued and `None` is returned: pass at least
    /// [`MAX_TRANSMIT`] octets (1500 always suffices).
    #[must_use]
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<usize> {
        let Some(len) = self.transmits.front().map(Vec::len) else {
            self.trim();
            return None;
        };
        let out = buf.get_mut(..len)?;
        let datagram = self.transmits.pop_front()?;
        out.copy_from_slice(&datagram);
        recycle(&mut self.free, datagram);
        Some(len)
    }

    /// Once the handshake is over and its flights are out, gives back what
    /// they needed: the spare buffers (but one) and the queues' room. An
    /// idle association then holds little beyond the engine's own state.
    fn trim(&mut self) {
        if self.trimmed || matches!(self.state, State::New | State::Handshaking) {
            return;
        }
        self.trimmed = true;
        self.free.truncate(1);
        self.free.shrink_to_fit();
        self.transmits.shrink_to_fit();
        self.scratch = Vec::new();
    }

    /// The length of the datagram [`Dtls::poll_transmit`] would return next.
    pub fn next_transmit_len(&self) -> Option<usize> {
        self.transmits.front().map(Vec::len)
    }

    /// Next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Dtls::handle_timeout`] is due next; `None` before the
    /// handshake starts, after the association ended, or when the engine
    /// has nothing scheduled.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.started || self.engine.is_none() {
            return None;
        }
        let alert = self.alert_at.filter(|_| self.state == State::Handshaking);
        match (self.timeout.filter(|&t| t.saturating_duration_since(self.now) < IDLE), alert) {
            (Some(t), Some(a)) => Some(t.min(a)),
            (t, a) => t.or(a),
        }
    }

    /// Application data out (once Connected), for SCTP data channels
    /// (RFC 8261): one record of at most [`MAX_APPLICATION_DATA`] octets,
    /// queued as one datagram. Empty data sends nothing.
    ///
    /// Refused with [`Error::NotConnected`] before the handshake completes
    /// or after the association ended, [`Error::TooLarge`], or
    /// [`Error::QueueFull`] while the transmit queue is full. An engine
    /// error ([`Error::Engine`]) also fails the association.
    pub fn send_application_data(&mut self, data: &[u8]) -> Result<(), Error> {
        match self.state {
            State::Connected => {}
            State::New | State::Handshaking => return Err(Error::NotConnected("the handshake has not completed")),
            State::Closed => return Err(Error::NotConnected("the association is closed")),
            State::Failed => return Err(Error::NotConnected("the association failed")),
        }
        if data.len() > MAX_APPLICATION_DATA {
            return Err(Error::TooLarge(data.len()));
        }
        if data.is_empty() {
            return Ok(());
        }
        if self.transmits.len() >= MAX_TRANSMITS {
            return Err(Error::QueueFull);
        }
        self.step(Op::Send(data)).map_or(Ok(()), |r| Err(Error::Engine(r)))
    }

    /// Application data received, copied into `out`; `None` when none is
    /// queued.
    ///
    /// If `out` is shorter than the record ([`Dtls::next_application_data_len`]),
    /// it stays queued and `None` is returned. At most
    /// [`MAX_RECEIVED_APPLICATION_DATA`] octets wait; records past that are
    /// dropped and counted in [`Dtls::dropped`].
    #[must_use]
    pub fn poll_application_data(&mut self, out: &mut [u8]) -> Option<usize> {
        let len = self.received.front()?.len();
        let dst = out.get_mut(..len)?;
        let data = self.received.pop_front()?;
        dst.copy_from_slice(&data);
        self.received_bytes = self.received_bytes.saturating_sub(len);
        recycle(&mut self.free, data);
        Some(len)
    }

    /// The length of the record [`Dtls::poll_application_data`] would
    /// return next.
    pub fn next_application_data_len(&self) -> Option<usize> {
        self.received.front().map(Vec::len)
    }

    /// Sends close_notify (RFC 5246 section 7.2.1) and stops; idempotent.
    ///
    /// During the handshake nothing is sent (there is no authenticated
    /// channel yet). The state becomes [`State::Closed`]; no event is
    /// reported for a local close. Received application data not yet
    /// polled stays available.
    pub fn close(&mut self, now: Instant) {
        if matches!(self.state, State::Closed | State::Failed) {
            return;
        }
        let now = self.clock(now);
        if self.started {
            // Errors do not matter: the association ends either way.
            let _ = self.step(Op::Close(now));
        }
        if self.state != State::Failed {
            tracing::debug!(state = ?self.state, "DTLS closed");
            self.state = State::Closed;
        }
        self.engine = None;
        self.timeout = None;
    }

    /// Datagrams dropped without reaching the engine (not whole DTLS
    /// records, before a client started, after the association ended) and
    /// received application data dropped over the cap.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn clock(&mut self, now: Instant) -> Instant {
        self.now = self.now.max(now);
        self.now
    }

    /// Runs one engine operation, then collects what it produced; a fatal
    /// engine error fails the association (its reason is returned).
    fn step(&mut self, op: Op<'_>) -> Option<&'static str> {
        match self.engine.as_mut()? {
            Inner::Dimpl(engine) => {
                let result = match op {
                    Op::Timeout(now) => engine.handle_timeout(now),
                    // The engine wants its clock refreshed before each
                    // datagram; a dimpl 0.9 server that never saw
                    // `handle_timeout` even panics on a ClientHello, so
                    // this order is load-bearing.
                    Op::Packet(now, data) => engine.handle_timeout(now).and_then(|()| engine.handle_packet(data)),
                    Op::Send(data) => engine.send_application_data(data).map(|_| ()),
                    Op::Close(now) => {
                        let _ = engine.handle_timeout(now);
                        let _ = engine.close();
                        Ok(())
                    }
                };
                if let Err(e) = result {
                    let why = reason(&e);
                    self.fail_alert(why, alert_for(&e));
                    return Some(why);
                }
            }
            #[cfg(feature = "openssl")]
            Inner::OpenSsl(_) => return self.step_openssl(op),
        }
        self.collect()
    }

    /// After an engine step: drains the engine, fails the association on
    /// our own checks.
    fn collect(&mut self) -> Option<&'static str> {
        if let Err(why) = self.drain() {
            // Our own checks: the peer's certificate, or a handshake that
            // cannot key SRTP.
            let alert = if why.contains("certificate") { BAD_CERTIFICATE } else { HANDSHAKE_FAILURE };
            self.fail_alert(why, Some(alert));
            return Some(why);
        } else if self.state == State::Closed {
            self.engine = None;
            self.timeout = None;
        }
        None
    }

    /// [`Dtls::step`] on OpenSSL: datagrams move from its pipe to the
    /// transmit queue, records to the received queue, and a completed
    /// handshake is checked as dimpl's is (peer certificate, then keys).
    #[cfg(feature = "openssl")]
    fn step_openssl(&mut self, op: Op<'_>) -> Option<&'static str> {
        let Some(Inner::OpenSsl(engine)) = self.engine.as_mut() else { return None };
        let mut buf = [0u8; crate::ossl::READ_BUFFER];
        let accepting = self.state == State::Connected;
        let (received, received_bytes, free, dropped) =
            (&mut self.received, &mut self.received_bytes, &mut self.free, &mut self.dropped);
        let deliver = |data: &[u8]| accept_record(accepting, received, received_bytes, free, dropped, data);
        let result = match op {
            Op::Timeout(now) if self.state == State::Handshaking && engine.timeout().is_none() => engine.start(now),
            Op::Timeout(now) => engine.handle_timeout(now),
            Op::Packet(now, data) => engine.handle_packet(now, data, &mut buf, deliver),
            Op::Send(data) => engine.send(data).map(|()| None),
            Op::Close(_) => {
                engine.close();
                Ok(None)
            }
        };
        let peer_closed = engine.peer_closed() && !matches!(op, Op::Close(_));
        self.timeout = engine.timeout();
        let outcome = match result {
            Err(f) => {
                self.fail_alert(f.reason, f.alert);
                Some(f.reason)
            }
            Ok(Some(done)) => self.completed_openssl(done).err(),
            Ok(None) => None,
        };
        // What OpenSSL wrote goes out, its own fatal alert included.
        if let Some(Inner::OpenSsl(engine)) = self.engine.as_mut() {
            let pipe = engine.pipe();
            while let Some(d) = pipe.outgoing.pop_front() {
                if self.transmits.len() >= MAX_TRANSMITS
                    && let Some(old) = self.transmits.pop_front()
                {
                    recycle(&mut self.free, old);
                }
                self.transmits.push_back(d);
            }
            while pipe.pool.len() < 2
                && let Some(b) = self.free.pop()
            {
                pipe.pool.push(b);
            }
        }
        if peer_closed && matches!(self.state, State::Handshaking | State::Connected) {
            tracing::debug!("DTLS closed by the peer (close_notify)");
            self.state = State::Closed;
            push_event(&mut self.events, Event::Closed);
        }
        if matches!(self.state, State::Closed | State::Failed) {
            self.engine = None;
            self.timeout = None;
        }
        outcome
    }

    /// The OpenSSL handshake completed: the peer's certificate was checked
    /// by the engine's callback; checked again here, then SRTP is keyed.
    #[cfg(feature = "openssl")]
    fn completed_openssl(&mut self, done: crate::ossl::Completed) -> Result<(), &'static str> {
        let result = self
            .peer_certificate(&done.peer_certificate)
            .and_then(|()| done.profile.ok_or("the DTLS peer agreed no SRTP profile (use_srtp)"))
            .and_then(|profile| self.keyed(profile, &done.material));
        if let Err(why) = result {
            self.fail_alert(why, None);
        }
        result
    }

    /// The peer's certificate must match a signaled fingerprint.
    fn peer_certificate(&mut self, der: &[u8]) -> Result<(), &'static str> {
        if !matches_any(&self.remote, der) {
            if tracing::enabled!(tracing::Level::WARN) {
                let algorithm = self.remote.first().map_or(HashAlgorithm::Sha256, Fingerprint::algorithm);
                tracing::warn!(
                    peer = %Fingerprint::of(algorithm, der),
                    signaled = %Fingerprints(&self.remote),
                    "DTLS failed: the peer's certificate matches none of the signaled fingerprints"
                );
            }
            return Err(CERT_MISMATCH);
        }
        tracing::debug!("DTLS peer certificate matches a signaled fingerprint");
        self.verified = true;
        Ok(())
    }

    /// Keying material came out: SRTP keys once the peer was verified.
    fn keyed(&mut self, profile: rtc_srtp::Profile, material: &[u8]) -> Result<(), &'static str> {
        if !self.verified {
            return Err("DTLS keys before a verified peer certificate");
        }
        let keys = SrtpKeys::from_keying_material(profile, material, self.role)
            .map_err(|_| "the DTLS keying material does not fit the SRTP profile")?;
        if self.state == State::Handshaking {
            tracing::debug!(role = ?self.role, %profile, "DTLS connected: SRTP keyed");
            self.state = State::Connected;
            self.keys = Some(keys.clone());
            push_event(&mut self.events, Event::Connected(keys));
        }
        Ok(())
    }

    /// Polls the engine until its next timeout, queueing datagrams, events
    /// and application data.
    fn drain(&mut self) -> Result<(), &'static str> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let result = self.drain_into(&mut scratch);
        self.scratch = scratch;
        result
    }

    fn drain_into(&mut self, scratch: &mut Vec<u8>) -> Result<(), &'static str> {
        let mut engine_connected = false;
        let mut stack = [0u8; SCRATCH];
        for _ in 0..MAX_POLLS {
            let Some(Inner::Dimpl(engine)) = self.engine.as_mut() else { return Ok(()) };
            let room = if scratch.is_empty() { SCRATCH } else { scratch.len() };
            let output = if scratch.is_empty() { engine.poll_output(&mut stack) } else { engine.poll_output(scratch) };
            match output {
                Output::Packet(p) => {
                    if self.transmits.len() >= MAX_TRANSMITS
                        && let Some(old) = self.transmits.pop_front()
                    {
                        recycle(&mut self.free, old);
                    }
                    self.transmits.push_back(filled(&mut self.free, p));
                }
                Output::BufferTooSmall { needed } => {
                    if needed > MAX_OUTPUT || needed <= room {
                        return Err("the DTLS engine produced an oversized datagram");
                    }
                    scratch.resize(needed, 0);
                }
                Output::Timeout(t) => {
                    self.timeout = Some(t);
                    break;
                }
                Output::PeerCert(der) => self.peer_certificate(der)?,
                Output::Connected => engine_connected = true,
                Output::KeyingMaterial(material, profile) => {
                    let profile = profile_of(profile).ok_or("the DTLS peer agreed an SRTP profile rtc-srtp lacks")?;
                    self.keyed(profile, &material)?;
                }
                Output::ApplicationData(data) => accept_record(
                    self.state == State::Connected,
                    &mut self.received,
                    &mut self.received_bytes,
                    &mut self.free,
                    &mut self.dropped,
                    data,
                ),
                Output::CloseNotify => {
                    if matches!(self.state, State::Handshaking | State::Connected) {
                        tracing::debug!("DTLS closed by the peer (close_notify)");
                        self.state = State::Closed;
                        push_event(&mut self.events, Event::Closed);
                    }
                }
                _ => {}
            }
        }
        if engine_connected && self.state == State::Handshaking {
            return Err("the DTLS peer agreed no SRTP profile (use_srtp)");
        }
        Ok(())
    }

    fn fail(&mut self, why: &'static str) {
        self.fail_alert(why, None);
    }

    /// Fails the association; during the handshake a fatal `alert` goes
    /// out (RFC 5246 section 7.2.2), so the peer stops at once instead of
    /// retransmitting its flight until it times out.
    fn fail_alert(&mut self, why: &'static str, alert: Option<u8>) {
        if matches!(self.state, State::Closed | State::Failed) {
            return;
        }
        let handshaking = self.state == State::Handshaking;
        if why != CERT_MISMATCH {
            // (A fingerprint mismatch was logged where it was found, with
            // both fingerprints.)
            tracing::warn!(
                role = ?self.role,
                state = ?self.state,
                alert = ?alert.filter(|_| handshaking),
                "DTLS failed: {why}"
            );
        }
        self.state = State::Failed;
        self.engine = None;
        self.timeout = None;
        while let Some(d) = self.transmits.pop_front() {
            recycle(&mut self.free, d);
        }
        if let Some(description) = alert.filter(|_| handshaking) {
            self.transmits.push_back(fatal_alert(description).to_vec());
        }
        push_event(&mut self.events, Event::Failed(why));
    }
}

impl fmt::Debug for Dtls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dtls")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("remote", &self.remote)
            .field("transmits", &self.transmits.len())
            .field("received", &self.received.len())
            .field("events", &self.events)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

/// Whether `der` matches one of `remote`, hashing it at most once per hash
/// function however many fingerprints the peer signaled.
pub(crate) fn matches_any(remote: &[Fingerprint], der: &[u8]) -> bool {
    let mut hashed: Vec<Fingerprint> = Vec::new();
    remote.iter().any(|f| {
        let own = match hashed.iter().find(|h| h.algorithm() == f.algorithm()) {
            Some(h) => h,
            None => {
                hashed.push(Fingerprint::of(f.algorithm(), der));
                &hashed[hashed.len() - 1]
            }
        };
        own == f
    })
}

/// A received application data record into the queue when `accepting` and
/// within the caps, else dropped and counted.
fn accept_record(
    accepting: bool,
    received: &mut VecDeque<Vec<u8>>,
    received_bytes: &mut usize,
    free: &mut Vec<Vec<u8>>,
    dropped: &mut u64,
    data: &[u8],
) {
    let fits = received.len() < MAX_RECEIVED_RECORDS
        && received_bytes.saturating_add(data.len()) <= MAX_RECEIVED_APPLICATION_DATA;
    if accepting && fits {
        *received_bytes += data.len();
        received.push_back(filled(free, data));
    } else {
        tracing::trace!(len = data.len(), "DTLS dropped received application data");
        *dropped = dropped.saturating_add(1);
    }
}

/// A spare buffer (or a new one) holding `data`.
fn filled(free: &mut Vec<Vec<u8>>, data: &[u8]) -> Vec<u8> {
    let mut buf = free.pop().unwrap_or_default();
    buf.clear();
    buf.extend_from_slice(data);
    buf
}

fn recycle(free: &mut Vec<Vec<u8>>, buf: Vec<u8>) {
    if free.len() < MAX_FREE && buf.capacity() <= MAX_FREE_CAPACITY {
        free.push(buf);
    }
}

fn push_event(events: &mut VecDeque<Event>, event: Event) {
    if events.len() < MAX_EVENTS {
        events.push_back(event);
    }
}

/// Feeds arbitrary datagrams to a DTLS server and a started DTLS client,
/// for a fuzz target; not part of the API. `data` is a run of datagrams,
/// each 2 octets of length then its bytes, with the clock moved on by the
/// length's low octet in milliseconds before each. Nothing may panic and no
/// keys may come out: without the private key of a certificate matching
/// the fingerprint, no handshake can complete.
#[doc(hidden)]
pub fn fuzz_datagrams(data: &[u8]) {
    fuzz_datagrams_on(Engine::Dimpl, data);
}

/// [`fuzz_datagrams`] with both sides on `engine` (without the cookie
/// exchange, as [`Dtls::with_engine`] makes them); not part of the API.
#[doc(hidden)]
pub fn fuzz_datagrams_on(engine: Engine, data: &[u8]) {
    static CERT: OnceLock<Option<Certificate>> = OnceLock::new();
    let Some(cert) = CERT.get_or_init(|| Certificate::generate().ok()) else { return };
    let mut now = Instant::now();
    let remote = vec![cert.fingerprint().clone()];
    let make = |role, remote| match engine {
        Engine::Dimpl => Dtls::new(cert, role, remote, now),
        _ => Dtls::with_engine(engine, cert, role, remote, now),
    };
    let mut sides = [make(Role::Server, remote.clone()), make(Role::Client, remote)];
    sides[1].start(now);
    let mut buf = [0u8; MAX_TRANSMIT];
    let mut rest = data;
    while let [hi, lo, tail @ ..] = rest {
        let (datagram, next) = tail.split_at(usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len()));
        now += Duration::from_millis(u64::from(*lo));
        for side in &mut sides {
            side.handle_timeout(now);
            side.handle_datagram(now, datagram);
            while side.poll_transmit(&mut buf).is_some() {}
            while let Some(event) = side.poll_event() {
                assert!(!matches!(event, Event::Connected(_)), "SRTP keys from a forged handshake");
            }
            assert!(side.srtp_keys().is_none(), "SRTP keys from a forged handshake");
        }
        rest = next;
    }
}
