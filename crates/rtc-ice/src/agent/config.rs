//! The agent's public types: roles, credentials, configuration (timers and
//! caps), what goes out (transmits, events, paths), what came of a
//! datagram, statistics, and views of pairs.

use std::net::SocketAddr;
use std::time::Duration;

use rand::Rng;
use rtc_candidate::{Candidate, CandidateKind, Component};

use crate::error::Error;
use crate::turn::TurnServer;
use crate::url::TurnTransport;

/// The ICE role (RFC 8445 section 6.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Nominates the pairs.
    Controlling,
    /// Follows the controlling agent's nominations.
    Controlled,
}

/// How the controlling agent nominates (RFC 8445 section 8.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Nomination {
    /// Check first, then repeat a check with USE-CANDIDATE on the chosen pair.
    #[default]
    Regular,
    /// USE-CANDIDATE on every check (RFC 5245 aggressive nomination).
    Aggressive,
}

/// Short-term credentials: `ice-ufrag` and `ice-pwd` (RFC 8445 section 5.3).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The username fragment, 4 to 256 ice-chars.
    pub ufrag: String,
    /// The password, 22 to 256 ice-chars.
    pub pwd: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("ufrag", &self.ufrag).field("pwd", &"…").finish()
    }
}

const ICE_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

impl Credentials {
    /// Fresh random credentials (8-character ufrag, 24-character password)
    /// from `rng`, which must be a CSPRNG.
    pub fn random(rng: &mut impl rand::CryptoRng) -> Self {
        let mut word = |n: usize| (0..n).map(|_| ICE_CHARS[rng.random_range(0..ICE_CHARS.len())] as char).collect();
        Self { ufrag: word(8), pwd: word(24) }
    }

    /// Checks the lengths and characters RFC 8839 section 5.4 allows.
    pub fn validate(&self) -> Result<(), Error> {
        let ice = |s: &str| s.bytes().all(|b| ICE_CHARS.contains(&b));
        if !(4..=256).contains(&self.ufrag.len()) || !ice(&self.ufrag) {
            return Err(Error::InvalidCredentials("ufrag must be 4 to 256 ice-chars"));
        }
        if !(22..=256).contains(&self.pwd.len()) || !ice(&self.pwd) {
            return Err(Error::InvalidCredentials("pwd must be 22 to 256 ice-chars"));
        }
        Ok(())
    }
}

/// Timers of the agent. The defaults follow RFC 8445 section 14 and RFC 7675.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// The Ta this agent proposes: the pacing between two new checks
    /// (RFC 8445 section 14.2) that a driver signals to the peer, as SDP's
    /// `a=ice-pacing` (RFC 8839 section 5.5). It is a proposal, not the
    /// pacing used: both agents use the larger of the two proposals, and a
    /// peer that proposes nothing counts as 50 ms
    /// ([`Timing::DEFAULT_PACING`]), so the agent paces at
    /// [`Agent::pacing`](super::Agent::pacing), 50 ms until the peer's
    /// proposal is known ([`Agent::set_remote_pacing`](super::Agent::set_remote_pacing)).
    /// Clamped to [`Timing::MIN_PACING`]..=[`Timing::MAX_PACING`].
    /// Default 5 ms: two agents that both signal it check every 5 ms.
    pub ta: Duration,
    /// The initial retransmission timeout of a check or gathering request.
    pub rto: Duration,
    /// The cap on the doubled retransmission timeout.
    pub max_rto: Duration,
    /// How many times a request is sent before its transaction fails (Rc).
    pub max_transmits: u32,
    /// The controlling agent's longest wait, after its first valid pair, for
    /// a better pair before it nominates (regular nomination). A better
    /// pair whose check is overdue (unanswered for twice the valid pair's
    /// round trip and 100 ms) is not waited for.
    pub nomination_delay: Duration,
    /// The basic consent-check period; each interval is randomized between
    /// 0.8 and 1.2 times it, and never below 4 s (RFC 7675 section 5.1).
    pub consent_interval: Duration,
    /// Consent expires when no response arrived for this long (30 s).
    pub consent_timeout: Duration,
    /// Tr: a Binding indication is sent on the selected pair when the agent
    /// sent nothing on it for this long (RFC 8445 section 11).
    pub keepalive: Duration,
    /// Server-reflexive gathering ends by this time after it starts.
    pub gather_timeout: Duration,
    /// How long a remote candidate named by an mDNS `.local` name waits
    /// for [`Agent::mdns_resolved`](super::Agent::mdns_resolved) before it
    /// is dropped (3 s, as [`crate::mdns::ResolverConfig::timeout`]).
    pub mdns_timeout: Duration,
}

impl Timing {
    /// RFC 8445 section 14.2's default Ta, and the value of an agent that
    /// proposes none (RFC 8839 section 5.5: an absent `a=ice-pacing` is
    /// 50 ms).
    pub const DEFAULT_PACING: Duration = Duration::from_millis(50);
    /// The floor of Ta (RFC 8445 section 14.2: transactions are never sent
    /// more often than every 5 ms).
    pub const MIN_PACING: Duration = Duration::from_millis(5);
    /// The largest Ta the agent takes, from its configuration (clamped) or
    /// from a peer ([`Agent::set_remote_pacing`](super::Agent::set_remote_pacing)
    /// refuses more). Neither RFC sets a ceiling; a check every 10 s is
    /// already slower than the 500 ms retransmission timeout by far, and a
    /// larger value only stalls the checks.
    pub const MAX_PACING: Duration = Duration::from_secs(10);
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            ta: Timing::MIN_PACING,
            rto: Duration::from_millis(500),
            max_rto: Duration::from_millis(3200),
            max_transmits: 7,
            nomination_delay: Duration::from_millis(500),
            consent_interval: Duration::from_secs(5),
            consent_timeout: Duration::from_secs(30),
            keepalive: Duration::from_secs(15),
            gather_timeout: Duration::from_secs(5),
            mdns_timeout: Duration::from_secs(3),
        }
    }
}

/// Caps that bound the agent's memory whatever a peer sends.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Local candidates (host, server- and peer-reflexive).
    pub local_candidates: usize,
    /// Remote candidates, signaled and peer-reflexive.
    pub remote_candidates: usize,
    /// Remote peer-reflexive candidates learned from checks.
    pub peer_reflexive: usize,
    /// Candidate pairs.
    pub pairs: usize,
    /// Outstanding STUN transactions.
    pub transactions: usize,
    /// Queued outgoing datagrams and events.
    pub queue: usize,
    /// Remote candidates waiting for their mDNS name to be resolved.
    pub mdns_candidates: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            local_candidates: 16,
            remote_candidates: 32,
            peer_reflexive: 8,
            pairs: 128,
            transactions: 32,
            queue: 256,
            mdns_candidates: 8,
        }
    }
}

/// How to build an [`Agent`](super::Agent).
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The initial role; a role conflict (RFC 8445 7.3.1.1) or
    /// [`Agent::set_role`](super::Agent::set_role) may change it.
    pub role: Role,
    /// Components: 1 with mux (RTP and RTCP on one), 2 without.
    pub components: u16,
    /// Nomination when controlling.
    pub nomination: Nomination,
    /// Local credentials; fresh random ones when `None`.
    pub credentials: Option<Credentials>,
    /// STUN servers for server-reflexive candidates (the seeds' `stun:` URLs,
    /// resolved by the driver).
    pub stun_servers: Vec<SocketAddr>,
    /// TURN servers (the seeds' `turn:` and `turns:` URLs with their
    /// credentials, resolved by the driver): each host base allocates a
    /// relayed candidate on every server of its address family (RFC 8656,
    /// over UDP, or over a TCP or TLS stream that the driver opens when
    /// [`Agent::poll_stream_command`](super::Agent::poll_stream_command)
    /// says so).
    pub turn_servers: Vec<TurnServer>,
    /// Conceal the host candidates behind random `<uuid>.local` names
    /// (draft-ietf-mmusic-mdns-ice-candidates), as browsers do: they are
    /// signaled with the name ([`Agent::poll_mdns_host_name`](super::Agent::poll_mdns_host_name)
    /// gives each name and address for the driver's
    /// [`crate::mdns::Responder`]), and server-reflexive candidates with
    /// 0.0.0.0:9 as their related address.
    pub mdns_host_names: bool,
    /// Use relayed candidates only (WebRTC's `iceTransportPolicy: "relay"`):
    /// host candidates are bases for the TURN allocations but are neither
    /// signaled nor paired, no server-reflexive candidate is gathered, and
    /// checks that arrive on a host base are dropped; only relayed
    /// candidates are signaled and checked. Without TURN servers nothing
    /// can connect.
    pub relay_only: bool,
    /// ICE lite (RFC 8445 section 2.5), for an agent on a public address
    /// (an SFU): host candidates only, no connectivity checks of its own
    /// (no check list, no triggered checks, no consent checks), always
    /// controlled whatever `role` says (section 6.1.1: the full peer
    /// controls, and a lite agent never switches role), answering the
    /// peer's checks and selecting the pair a check with USE-CANDIDATE came
    /// over (sections 7.3.2 and 8.2). Signal it (SDP's session-level
    /// `a=ice-lite`, RFC 8839 section 5.3) so that the peer calls
    /// [`Agent::set_remote_lite`](super::Agent::set_remote_lite). With STUN
    /// or TURN servers, or `relay_only`, [`Agent::new`](super::Agent::new)
    /// refuses the configuration ([`Error::Lite`]).
    pub lite: bool,
    /// Timers.
    pub timing: Timing,
    /// Memory caps.
    pub limits: Limits,
    /// Seeds the agent's CSPRNG (credentials, tiebreaker, transaction ids,
    /// consent jitter) for reproducible tests; from the OS when `None`.
    pub seed: Option<u64>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            role: Role::Controlling,
            components: 1,
            nomination: Nomination::Regular,
            credentials: None,
            stun_servers: Vec::new(),
            turn_servers: Vec::new(),
            mdns_host_names: false,
            relay_only: false,
            lite: false,
            timing: Timing::default(),
            limits: Limits::default(),
            seed: None,
        }
    }
}

/// A datagram the driver must send from the local `source` address (checks
/// on relayed pairs come out already framed for the TURN server, from the
/// allocation's host base), or, when `transport` is TCP or TLS, a message
/// to write on the stream to the TURN server `destination` opened for the
/// host base `source` ([`StreamCommand::Connect`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The local address (a host candidate's base) to send from.
    pub source: SocketAddr,
    /// Where to send it.
    pub destination: SocketAddr,
    /// The datagram (or the whole message, padded, for a stream).
    pub contents: Vec<u8>,
    /// UDP for a datagram; TCP or TLS: on the stream to a TURN server.
    pub transport: TurnTransport,
}

impl Transmit {
    /// A UDP datagram.
    pub fn udp(source: SocketAddr, destination: SocketAddr, contents: Vec<u8>) -> Self {
        Self { source, destination, contents, transport: TurnTransport::Udp }
    }
}

/// What the agent asks of its driver about streams to TURN servers (TURN
/// over TCP or TLS), from [`Agent::poll_stream_command`](super::Agent::poll_stream_command).
/// A stream is named by the host base it was opened for (`local`), the
/// server's address and the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamCommand {
    /// Open a stream to `server`, from the IP address of the host base
    /// `local` (any port): TCP, with TLS on it for [`TurnTransport::Tls`]
    /// (the server certificate checked for `host`). Then call
    /// [`Agent::stream_connected`](super::Agent::stream_connected), or
    /// [`Agent::stream_closed`](super::Agent::stream_closed) when it cannot
    /// be opened.
    Connect {
        /// The host base the allocation is made for.
        local: SocketAddr,
        /// The TURN server.
        server: SocketAddr,
        /// TCP or TLS.
        transport: TurnTransport,
        /// The server's name (the TLS server name).
        host: String,
    },
    /// Close the stream, once the transmits polled before this command are
    /// written (the deallocation is among them).
    Close {
        /// The host base the stream was opened for.
        local: SocketAddr,
        /// The TURN server.
        server: SocketAddr,
        /// TCP or TLS.
        transport: TurnTransport,
    },
}

/// What the agent asks of its driver about ICE-TCP connections (RFC 6544),
/// from [`Agent::poll_tcp_command`](super::Agent::poll_tcp_command).
///
/// Everything sent or received on such a connection is framed as RFC 4571
/// says (a 16-bit length before each message; see
/// [`Deframer::rfc4571`](crate::framing::Deframer::rfc4571)). The agent names a connection by
/// its two addresses: a [`Transmit`] whose `source` is the local address
/// of a TCP connection the driver holds (a listener's address for
/// connections it accepted) goes on that connection to `destination`, and
/// what arrives on one is given to
/// [`Agent::handle_receive`](super::Agent::handle_receive) with the same
/// two addresses, one message at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TcpCommand {
    /// Open a TCP connection to `remote` from the IP address of the
    /// active candidate `local` (its port is 9, as signaled), from any
    /// port. Then call
    /// [`Agent::tcp_connected`](super::Agent::tcp_connected) with the
    /// connection's local address, or
    /// [`Agent::tcp_closed`](super::Agent::tcp_closed) with `local` when it
    /// cannot be opened.
    Connect {
        /// The active candidate's address (the IP to connect from, port 9).
        local: SocketAddr,
        /// The peer's passive candidate.
        remote: SocketAddr,
    },
    /// Close the connection between `local` and `remote` once the
    /// transmits polled before this command are written: a connection no
    /// pair needs any more (RFC 6544 section 8), or the agent closed.
    Close {
        /// The connection's local address (a listener's, for an accepted
        /// connection).
        local: SocketAddr,
        /// The peer's address on it.
        remote: SocketAddr,
    },
}

/// What the agent tells its driver (the seeds' RTCSocket events).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant, reason = "events are rare; boxing would cost more than it saves")]
pub enum Event {
    /// A local candidate to signal to the peer.
    Candidate(Candidate),
    /// Local gathering finished (or timed out): no more `Candidate` events.
    CandidatesDone,
    /// The selected pair of a component changed.
    ActiveCandidate {
        /// The component.
        component: Component,
        /// The local candidate of the pair.
        local: Candidate,
        /// The remote candidate of the pair.
        remote: Candidate,
    },
    /// Every component has a selected pair with consent.
    Connected,
    /// Consent was lost (RFC 7675): application data must stop.
    Disconnected,
    /// Every pair failed and no candidate can come: ICE failed.
    Failed,
}

/// The agent's overall state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// Not connected yet (gathering and checking).
    Checking,
    /// Every component has a selected pair with consent.
    Connected,
    /// Consent was lost.
    Disconnected,
    /// ICE failed.
    Failed,
    /// [`Agent::close`](super::Agent::close) was called.
    Closed,
}

/// The path application data takes for a component: the selected pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Path {
    /// The local base address to send from.
    pub local: SocketAddr,
    /// The remote address to send to.
    pub remote: SocketAddr,
}

/// What [`Agent::handle_receive`](super::Agent::handle_receive) did with a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Receive {
    /// A STUN message the agent consumed.
    Stun,
    /// Not STUN (RFC 7983): application data from a known path, for the
    /// driver to pass on.
    Data {
        /// The component whose path it arrived on.
        component: Component,
    },
    /// Not STUN, from a peer through a TURN relay over a known pair: the
    /// application data is `datagram[offset..offset + len]` (the relay's
    /// ChannelData header or Data indication around it is the agent's).
    RelayedData {
        /// The component whose path it arrived on.
        component: Component,
        /// Where the payload starts in the datagram.
        offset: usize,
        /// The payload's length.
        len: usize,
    },
    /// Dropped and counted.
    Dropped(DropReason),
}

/// A datagram framed for a TURN relay by
/// [`Agent::frame_relayed`](super::Agent::frame_relayed): send the first
/// `len` octets of the buffer from `source` to `destination` over
/// `transport` (a UDP datagram, or a message on the stream to the server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayedTransmit {
    /// The host base the allocation was made from.
    pub source: SocketAddr,
    /// The TURN server.
    pub destination: SocketAddr,
    /// The framed length.
    pub len: usize,
    /// The transport to the server.
    pub transport: TurnTransport,
}

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// Not a well-formed STUN Binding message.
    Malformed,
    /// MESSAGE-INTEGRITY missing or wrong.
    Unauthenticated,
    /// FINGERPRINT missing or wrong.
    BadFingerprint,
    /// USERNAME missing or not `local:remote`.
    BadUsername,
    /// A response to no transaction of ours.
    UnknownTransaction,
    /// A response whose credentials are not known yet, or a request missing
    /// an ICE attribute.
    Unexpected,
    /// From or to an address pair the agent does not know.
    UnknownPath,
    /// The agent is closed.
    Closed,
    /// From a TURN server: malformed, unauthenticated, on an unknown
    /// channel, or answering nothing of ours (see
    /// [`TurnStats`](crate::turn::TurnStats)).
    Relay,
}

impl DropReason {
    const ALL: [DropReason; 9] = [
        DropReason::Malformed,
        DropReason::Unauthenticated,
        DropReason::BadFingerprint,
        DropReason::BadUsername,
        DropReason::UnknownTransaction,
        DropReason::Unexpected,
        DropReason::UnknownPath,
        DropReason::Closed,
        DropReason::Relay,
    ];

    pub(super) fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// Counters of what the agent saw and did.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub(super) dropped: [u64; 9],
    /// Connectivity checks sent (first transmissions).
    pub checks_sent: u64,
    /// Retransmissions of checks and gathering requests.
    pub retransmits: u64,
    /// Requests answered with a success response.
    pub responses_sent: u64,
    /// Role conflicts seen (487 sent or received, or a role switch).
    pub role_conflicts: u64,
    /// Inputs refused because a cap in [`Limits`] was reached.
    pub limit_hits: u64,
    /// Consent checks sent.
    pub consent_checks: u64,
    /// Keepalive indications sent.
    pub keepalives: u64,
}

impl Stats {
    /// Datagrams dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }

    /// All dropped datagrams.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }
}

/// A server-reflexive mapping learned from a STUN server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reflexive {
    /// The STUN server.
    pub server: SocketAddr,
    /// The local base the request went from.
    pub base: SocketAddr,
    /// The XOR-MAPPED-ADDRESS the server saw.
    pub mapped: SocketAddr,
}

/// The state of a candidate pair (RFC 8445 section 6.1.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PairState {
    /// Not checked until a pair with its foundation succeeds.
    Frozen,
    /// To be checked.
    Waiting,
    /// A check is outstanding.
    InProgress,
    /// A check succeeded.
    Succeeded,
    /// Checks failed (or the pair was pruned after nomination).
    Failed,
}

/// What went over one candidate pair, with webrtc-stats' names
/// (`RTCIceCandidatePairStats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PairCounters {
    /// Connectivity checks sent (`requestsSent`; retransmissions not
    /// counted, consent requests neither).
    pub requests_sent: u64,
    /// Binding requests received from the peer over the pair, checks and
    /// consent requests, retransmissions included (`requestsReceived`).
    pub requests_received: u64,
    /// Success responses sent to them (`responsesSent`).
    pub responses_sent: u64,
    /// Success responses received to checks and consent requests
    /// (`responsesReceived`).
    pub responses_received: u64,
    /// Consent requests sent (RFC 7675; `consentRequestsSent`).
    pub consent_requests_sent: u64,
    /// Application datagrams sent over the pair (`packetsSent`), as told by
    /// [`Agent::count_sent`](super::Agent::count_sent).
    pub packets_sent: u64,
    /// Their octets (`bytesSent`).
    pub bytes_sent: u64,
    /// Application datagrams received over the pair (`packetsReceived`).
    pub packets_received: u64,
    /// Their octets (`bytesReceived`).
    pub bytes_received: u64,
    /// The round trip of the latest request answered without a
    /// retransmission (`currentRoundTripTime`).
    pub current_round_trip_time: Option<Duration>,
    /// The sum of every such round trip (`totalRoundTripTime`).
    pub total_round_trip_time: Duration,
    /// How many round trips the sum holds (`responsesReceived` less those
    /// to retransmitted requests).
    pub round_trip_time_measurements: u64,
}

/// A view of one candidate pair, for statistics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairInfo {
    /// The local base address.
    pub local: SocketAddr,
    /// The remote address.
    pub remote: SocketAddr,
    /// The component.
    pub component: u16,
    /// The state.
    pub state: PairState,
    /// The pair priority (RFC 8445 section 6.1.2.3).
    pub priority: u64,
    /// Nominated.
    pub nominated: bool,
    /// The local candidate's type: the valid pair's (peer-reflexive when
    /// the peer saw another address than the candidate's), else the
    /// pair's.
    pub local_kind: CandidateKind,
    /// The remote candidate's type.
    pub remote_kind: CandidateKind,
    /// For a local relayed candidate, how the agent reaches its TURN
    /// server (webrtc-stats' `relayProtocol`).
    pub relay_protocol: Option<TurnTransport>,
    /// The local candidate's `tcptype` for a pair over TCP (ICE-TCP, RFC
    /// 6544; `Active` also for a connection opened from it); `None` for UDP.
    pub tcp_type: Option<rtc_candidate::TcpType>,
    /// What went over the pair.
    pub counters: PairCounters,
}
