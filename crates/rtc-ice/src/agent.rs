//! The sans-IO ICE agent (RFC 8445) with consent freshness (RFC 7675).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand::rngs::{OsRng, StdRng};
use rand::{Rng, RngCore, SeedableRng, TryRngCore};
use rtc_candidate::{
    Address, Candidate, CandidateType, Component, Foundation, Transport, TransportKind, TypePreference,
    candidate_priority, pair_priority,
};
use stun_rs::HMACKey;

use crate::error::Error;
use crate::stun::{self, CheckAttrs, Class, DecodeError};

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
    /// Ta: the pacing between two new checks (RFC 8445 section 14.2).
    pub ta: Duration,
    /// The initial retransmission timeout of a check or gathering request.
    pub rto: Duration,
    /// The cap on the doubled retransmission timeout.
    pub max_rto: Duration,
    /// How many times a request is sent before its transaction fails (Rc).
    pub max_transmits: u32,
    /// The controlling agent's longest wait, after its first valid pair, for
    /// a better pair before it nominates (regular nomination).
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
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            ta: Duration::from_millis(50),
            rto: Duration::from_millis(500),
            max_rto: Duration::from_millis(3200),
            max_transmits: 7,
            nomination_delay: Duration::from_millis(500),
            consent_interval: Duration::from_secs(5),
            consent_timeout: Duration::from_secs(30),
            keepalive: Duration::from_secs(15),
            gather_timeout: Duration::from_secs(5),
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
        }
    }
}

/// How to build an [`Agent`].
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The initial role; a role conflict may change it (RFC 8445 7.3.1.1).
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
            timing: Timing::default(),
            limits: Limits::default(),
            seed: None,
        }
    }
}

/// A datagram the driver must send from the local `source` address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The local address (a host candidate's base) to send from.
    pub source: SocketAddr,
    /// Where to send it.
    pub destination: SocketAddr,
    /// The datagram.
    pub contents: Vec<u8>,
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
    /// [`Agent::close`] was called.
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

/// What [`Agent::handle_receive`] did with a datagram.
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
    /// Dropped and counted.
    Dropped(DropReason),
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
}

impl DropReason {
    const ALL: [DropReason; 8] = [
        DropReason::Malformed,
        DropReason::Unauthenticated,
        DropReason::BadFingerprint,
        DropReason::BadUsername,
        DropReason::UnknownTransaction,
        DropReason::Unexpected,
        DropReason::UnknownPath,
        DropReason::Closed,
    ];

    fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// Counters of what the agent saw and did.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    dropped: [u64; 8],
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LocalKind {
    Host,
    ServerReflexive,
    PeerReflexive,
}

#[derive(Debug)]
struct LocalCand {
    cand: Candidate,
    kind: LocalKind,
    addr: SocketAddr,
    base: SocketAddr,
    component: u16,
    local_pref: u16,
}

#[derive(Debug)]
struct RemoteCand {
    cand: Candidate,
    addr: SocketAddr,
    component: u16,
    peer_reflexive: bool,
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
}

#[derive(Debug)]
struct CheckPair {
    local: usize,
    remote: usize,
    base: SocketAddr,
    remote_addr: SocketAddr,
    component: u16,
    foundation: (Foundation, Foundation),
    priority: u64,
    state: PairState,
    /// The local candidate of the valid pair (RFC 8445 7.2.5.3.2): the one
    /// whose address the peer saw, peer-reflexive when it differs.
    valid_local: Option<usize>,
    nominated: bool,
    /// Controlled: USE-CANDIDATE arrived before our check succeeded.
    nominate_on_success: bool,
    /// Controlling: the next check carries USE-CANDIDATE.
    use_candidate_pending: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxKind {
    Check { pair: usize, use_candidate: bool, controlling: bool, priority: u32 },
    Consent { pair: usize },
    Gather { server: SocketAddr },
}

#[derive(Debug)]
struct Tx {
    id: [u8; 12],
    kind: TxKind,
    source: SocketAddr,
    destination: SocketAddr,
    contents: Vec<u8>,
    sends: u32,
    max_sends: u32,
    next_at: Instant,
}

/// The agent's CSPRNG: the operating system's, or (tests) a seeded ChaCha
/// kept on the heap so the common case costs no memory per agent.
#[derive(Debug)]
enum Csprng {
    Os,
    Seeded(Box<StdRng>),
}

impl RngCore for Csprng {
    fn next_u32(&mut self) -> u32 {
        match self {
            Csprng::Os => OsRng.unwrap_err().next_u32(),
            Csprng::Seeded(r) => r.next_u32(),
        }
    }
    fn next_u64(&mut self) -> u64 {
        match self {
            Csprng::Os => OsRng.unwrap_err().next_u64(),
            Csprng::Seeded(r) => r.next_u64(),
        }
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        match self {
            Csprng::Os => OsRng.unwrap_err().fill_bytes(dst),
            Csprng::Seeded(r) => r.fill_bytes(dst),
        }
    }
}

impl rand::CryptoRng for Csprng {}

#[derive(Debug, Default, Clone, Copy)]
struct Comp {
    selected: Option<usize>,
    first_valid: Option<Instant>,
    nominating: Option<usize>,
    consent_last: Option<Instant>,
    consent_next: Option<Instant>,
    last_sent: Option<Instant>,
}

/// A sans-IO ICE agent for one data stream with one or two components.
#[derive(Debug)]
pub struct Agent {
    cfg: AgentConfig,
    rng: Csprng,
    local_creds: Credentials,
    local_key: HMACKey,
    remote_creds: Option<Credentials>,
    remote_key: Option<HMACKey>,
    /// `remote:local`, the USERNAME of our requests.
    username_out: String,
    controlling: bool,
    tiebreaker: u64,
    state: State,
    locals: Vec<LocalCand>,
    remotes: Vec<RemoteCand>,
    pairs: Vec<CheckPair>,
    triggered: VecDeque<usize>,
    txs: Vec<Tx>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    comps: Vec<Comp>,
    next_check: Option<Instant>,
    gather_deadline: Option<Instant>,
    local_done: bool,
    remote_done: bool,
    candidates_done: bool,
    reflexive: Vec<Reflexive>,
    last_now: Option<Instant>,
    stats: Stats,
    /// After an ICE restart, the previously selected path of each component
    /// that had one, used for application data until a new pair is selected
    /// or its consent runs out. Empty otherwise (no memory held).
    previous: Vec<(u16, Path)>,
    /// Moves whenever the set of [`Agent::data_paths`] changes.
    paths_generation: u64,
}

impl Agent {
    /// A new agent. Credentials, tiebreaker and transaction ids come from a
    /// CSPRNG seeded by the OS (or by `config.seed` in tests). Fails when
    /// `config.credentials` are not valid ICE credentials.
    pub fn new(config: AgentConfig) -> Result<Self, Error> {
        let mut rng = match config.seed {
            Some(s) => Csprng::Seeded(Box::new(StdRng::seed_from_u64(s))),
            None => Csprng::Os,
        };
        let mut config = config;
        let local_creds = match config.credentials.take() {
            Some(c) => {
                c.validate()?;
                c
            }
            None => Credentials::random(&mut rng),
        };
        let local_key =
            stun::short_term_key(&local_creds.pwd).ok_or(Error::InvalidCredentials("pwd refused by PRECIS"))?;
        Ok(Self::build(config, rng, local_creds, local_key))
    }

    fn build(mut config: AgentConfig, mut rng: Csprng, local_creds: Credentials, local_key: HMACKey) -> Self {
        config.components = config.components.clamp(1, 2);
        config.timing.max_transmits = config.timing.max_transmits.max(1);
        let tiebreaker = rng.random();
        Self {
            controlling: config.role == Role::Controlling,
            comps: vec![Comp::default(); usize::from(config.components)],
            cfg: config,
            rng,
            local_creds,
            local_key,
            remote_creds: None,
            remote_key: None,
            username_out: String::new(),
            tiebreaker,
            state: State::Checking,
            locals: Vec::new(),
            remotes: Vec::new(),
            pairs: Vec::new(),
            triggered: VecDeque::new(),
            txs: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_check: None,
            gather_deadline: None,
            local_done: false,
            remote_done: false,
            candidates_done: false,
            reflexive: Vec::new(),
            last_now: None,
            stats: Stats::default(),
            previous: Vec::new(),
            paths_generation: 0,
        }
    }

    /// The local credentials to signal.
    pub fn local_credentials(&self) -> &Credentials {
        &self.local_creds
    }

    /// The current role.
    pub fn role(&self) -> Role {
        if self.controlling { Role::Controlling } else { Role::Controlled }
    }

    /// The 64-bit tiebreaker used in role conflicts.
    pub fn tiebreaker(&self) -> u64 {
        self.tiebreaker
    }

    /// The overall state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Server-reflexive mappings learned so far, including ones equal to
    /// their base (redundant, so not signaled as candidates).
    pub fn reflexive_mappings(&self) -> &[Reflexive] {
        &self.reflexive
    }

    /// The local candidates (host, server- and peer-reflexive).
    pub fn local_candidates(&self) -> impl Iterator<Item = &Candidate> {
        self.locals.iter().map(|l| &l.cand)
    }

    /// The path application data may take for `component`: the selected
    /// pair, while the agent is connected with consent; during an ICE restart
    /// ([`Agent::restart`]), the pair selected before it, until a new one is
    /// selected or the old one's consent runs out. `None` otherwise: the
    /// driver must not send application data then.
    pub fn path(&self, component: Component) -> Option<Path> {
        if self.state == State::Checking {
            return self.previous.iter().find(|(c, _)| *c == component.get()).map(|(_, p)| *p);
        }
        if self.state != State::Connected {
            return None;
        }
        let p = &self.pairs[self.comps.get(usize::from(component.get()).checked_sub(1)?)?.selected?];
        Some(Path { local: p.base, remote: p.remote_addr })
    }

    /// An ICE restart (RFC 8445 section 9): new local credentials (random
    /// when `credentials` is `None`), to be signaled with the local
    /// candidates again, which are re-announced as [`Event::Candidate`]s
    /// (then [`Event::CandidatesDone`] if gathering had finished). The peer's
    /// credentials and candidates are forgotten: set its new ones with
    /// [`Agent::set_remote_credentials`] and [`Agent::add_remote_candidate`],
    /// and checks start over. Until a new pair is selected for a component,
    /// [`Agent::path`] keeps giving the pair selected before, while that
    /// pair's consent (RFC 7675) lasts (then [`Event::Disconnected`] fires and
    /// the checks go on); data arriving over it is still accepted. Checks and responses that use the old credentials are
    /// dropped. This also recovers from [`State::Disconnected`] or
    /// [`State::Failed`]. When the peer restarts (its credentials change),
    /// call this before setting its new credentials. The role and the
    /// tiebreaker stay.
    pub fn restart(&mut self, now: Instant, credentials: Option<Credentials>) -> Result<(), Error> {
        self.check_open()?;
        let creds = match credentials {
            Some(c) => {
                c.validate()?;
                c
            }
            None => Credentials::random(&mut self.rng),
        };
        let key = stun::short_term_key(&creds.pwd).ok_or(Error::InvalidCredentials("pwd refused by PRECIS"))?;
        self.previous.clear();
        if self.state == State::Connected {
            for (ci, c) in self.comps.iter().enumerate() {
                if let (Some(pi), Ok(comp)) = (c.selected, u16::try_from(ci + 1)) {
                    let p = &self.pairs[pi];
                    self.previous.push((comp, Path { local: p.base, remote: p.remote_addr }));
                }
            }
        }
        self.local_creds = creds;
        self.local_key = key;
        self.remote_creds = None;
        self.remote_key = None;
        self.username_out.clear();
        // Peer-reflexive local candidates belonged to the old checks.
        self.locals.retain(|l| l.kind != LocalKind::PeerReflexive);
        self.remotes.clear();
        self.pairs.clear();
        self.paths_generation += 1;
        self.triggered.clear();
        self.txs.retain(|t| matches!(t.kind, TxKind::Gather { .. }));
        for c in &mut self.comps {
            // The old path's consent clock keeps running.
            *c = Comp { consent_last: c.consent_last, last_sent: c.last_sent, ..Comp::default() };
        }
        self.next_check = None;
        self.remote_done = false;
        self.state = State::Checking;
        let again: Vec<Candidate> = self.locals.iter().map(|l| l.cand.clone()).collect();
        for cand in again {
            self.push_event(Event::Candidate(cand));
        }
        if self.candidates_done {
            self.push_event(Event::CandidatesDone);
        }
        self.handle_timeout(now);
        Ok(())
    }

    /// Sets the peer's credentials; checks start once they are known.
    pub fn set_remote_credentials(&mut self, now: Instant, creds: Credentials) -> Result<(), Error> {
        creds.validate()?;
        let key = stun::short_term_key(&creds.pwd).ok_or(Error::InvalidCredentials("pwd refused by PRECIS"))?;
        self.username_out = format!("{}:{}", creds.ufrag, self.local_creds.ufrag);
        self.remote_key = Some(key);
        self.remote_creds = Some(creds);
        self.handle_timeout(now);
        Ok(())
    }

    /// Adds a host candidate on a socket the driver bound at `addr`, signals
    /// it as an [`Event::Candidate`], and starts server-reflexive gathering
    /// from it towards the configured STUN servers of the same family.
    pub fn add_host_candidate(
        &mut self,
        now: Instant,
        component: Component,
        addr: SocketAddr,
    ) -> Result<Candidate, Error> {
        self.check_open()?;
        let c = component.get();
        if c == 0 || c > self.cfg.components {
            return Err(Error::InvalidComponent(c));
        }
        if self.locals.iter().any(|l| l.kind == LocalKind::Host && l.base == addr) {
            return Err(Error::Duplicate("host candidate address"));
        }
        if self.locals.len() >= self.cfg.limits.local_candidates {
            self.stats.limit_hits += 1;
            return Err(Error::LimitReached("local candidates"));
        }
        let hosts = self.locals.iter().filter(|l| l.kind == LocalKind::Host && l.component == c).count();
        // Later interfaces get lower local preferences; IPv6 first (RFC 8421).
        let base_pref: u16 = if addr.is_ipv6() { 65535 } else { 65279 };
        let local_pref = base_pref.saturating_sub(u16::try_from(hosts).unwrap_or(u16::MAX));
        let priority = candidate_priority(TypePreference::HOST, local_pref, component);
        let foundation = Foundation::compute(&CandidateType::HOST, addr.ip(), None, &Transport::UDP);
        let cand = Candidate::new(
            foundation,
            component,
            Transport::UDP,
            priority,
            Address::Ip(addr.ip()),
            addr.port(),
            CandidateType::HOST,
        );
        self.locals.push(LocalCand {
            cand: cand.clone(),
            kind: LocalKind::Host,
            addr,
            base: addr,
            component: c,
            local_pref,
        });
        let li = self.locals.len() - 1;
        self.push_event(Event::Candidate(cand.clone()));
        for ri in 0..self.remotes.len() {
            if self.remotes[ri].component == c && same_family(self.remotes[ri].addr, addr) {
                self.add_pair(li, ri);
            }
        }
        let servers: Vec<SocketAddr> =
            self.cfg.stun_servers.iter().copied().filter(|s| same_family(*s, addr)).collect();
        for server in servers {
            self.send_gather(now, addr, server);
        }
        self.handle_timeout(now);
        Ok(cand)
    }

    /// Says that every host candidate has been added. `CandidatesDone`
    /// follows once server-reflexive gathering ends or times out.
    pub fn end_of_local_candidates(&mut self, now: Instant) {
        self.local_done = true;
        self.handle_timeout(now);
    }

    /// Adds a remote candidate (at any time: trickle ICE, RFC 8838). Only UDP
    /// candidates with an IP address are used.
    pub fn add_remote_candidate(&mut self, now: Instant, cand: &Candidate) -> Result<(), Error> {
        self.check_open()?;
        if cand.transport.kind() != TransportKind::Udp {
            return Err(Error::UnsupportedCandidate("transport is not UDP"));
        }
        let Some(ip) = cand.address.ip() else {
            return Err(Error::UnsupportedCandidate("address is not an IP address"));
        };
        if cand.port == 0 {
            return Err(Error::UnsupportedCandidate("port 0"));
        }
        let c = cand.component.get();
        if c == 0 || c > self.cfg.components {
            return Err(Error::InvalidComponent(c));
        }
        let addr = SocketAddr::new(ip, cand.port);
        if let Some(r) = self.remotes.iter_mut().find(|r| r.addr == addr && r.component == c) {
            // A signaled candidate replaces what a check taught us.
            if r.peer_reflexive {
                r.cand = cand.clone();
                r.peer_reflexive = false;
                self.recompute_priorities();
            }
            return Ok(());
        }
        if self.remotes.len() >= self.cfg.limits.remote_candidates {
            self.stats.limit_hits += 1;
            return Err(Error::LimitReached("remote candidates"));
        }
        self.remotes.push(RemoteCand { cand: cand.clone(), addr, component: c, peer_reflexive: false });
        let ri = self.remotes.len() - 1;
        for li in 0..self.locals.len() {
            let l = &self.locals[li];
            if l.kind == LocalKind::Host && l.component == c && same_family(l.base, addr) {
                self.add_pair(li, ri);
            }
        }
        self.handle_timeout(now);
        Ok(())
    }

    /// The peer signaled end-of-candidates.
    pub fn end_of_remote_candidates(&mut self, now: Instant) {
        self.remote_done = true;
        self.handle_timeout(now);
    }

    /// Stops the agent: no more transmits, timers or events.
    pub fn close(&mut self) {
        if self.state != State::Closed {
            // A closed agent takes no datagram: its data paths are gone.
            self.paths_generation += 1;
        }
        self.state = State::Closed;
        self.txs.clear();
        self.triggered.clear();
        self.transmits.clear();
    }

    /// The next datagram to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = self.transmits.pop_front();
        if t.is_none() && self.transmits.capacity() > 0 {
            // An idle agent holds no queue memory.
            self.transmits = VecDeque::new();
        }
        t
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        let e = self.events.pop_front();
        if e.is_none() && self.events.capacity() > 0 {
            self.events = VecDeque::new();
        }
        e
    }

    /// When [`Agent::handle_timeout`] must be called next, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if matches!(self.state, State::Closed | State::Failed) {
            return None;
        }
        let mut t: Option<Instant> = None;
        let mut at = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        for tx in &self.txs {
            at(Some(tx.next_at));
        }
        if self.has_check_work() {
            at(self.next_check.or(self.last_now));
        }
        at(self.gather_deadline);
        if self.controlling && self.cfg.nomination == Nomination::Regular {
            for c in &self.comps {
                if c.selected.is_none() && c.nominating.is_none() {
                    at(c.first_valid.map(|f| f + self.cfg.timing.nomination_delay));
                }
            }
        }
        if self.state == State::Checking {
            for (comp, _) in &self.previous {
                let c = self.comps.get(usize::from(*comp).saturating_sub(1));
                at(c.and_then(|c| c.consent_last).map(|l| l + self.cfg.timing.consent_timeout));
            }
        }
        if self.state == State::Connected {
            for c in &self.comps {
                at(c.consent_next);
                at(c.consent_last.map(|l| l + self.cfg.timing.consent_timeout));
                at(c.last_sent.map(|l| l + self.cfg.timing.keepalive));
            }
        }
        t
    }

    /// Advances timers: retransmissions, paced checks, nomination, consent
    /// checks and expiry, keepalives, end of gathering and failure.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = Some(now);
        if matches!(self.state, State::Closed | State::Failed) {
            return;
        }
        self.retransmit(now);
        if !self.previous.is_empty() {
            let (comps, timeout) = (&self.comps, self.cfg.timing.consent_timeout);
            let before = self.previous.len();
            self.previous.retain(|(comp, _)| {
                let last = comps.get(usize::from(*comp).saturating_sub(1)).and_then(|c| c.consent_last);
                last.is_some_and(|l| now < l + timeout)
            });
            if self.previous.len() < before {
                // Application data must stop (RFC 7675); checks go on.
                self.previous = Vec::new();
                self.paths_generation += 1;
                self.push_event(Event::Disconnected);
            }
        }
        if self.gather_deadline.is_some_and(|d| now >= d) {
            self.gather_deadline = None;
            self.txs.retain(|t| !matches!(t.kind, TxKind::Gather { .. }));
        }
        self.maybe_nominate(now);
        if self.next_check.is_none_or(|t| now >= t)
            && self.remote_key.is_some()
            && let Some(p) = self.next_pair()
            && self.send_check(now, p)
        {
            self.next_check = Some(now + self.cfg.timing.ta);
        }
        self.consent(now);
        if !self.candidates_done && self.local_done && !self.txs.iter().any(|t| matches!(t.kind, TxKind::Gather { .. }))
        {
            self.candidates_done = true;
            self.gather_deadline = None;
            self.push_event(Event::CandidatesDone);
        }
        self.check_failed();
    }

    /// Takes one datagram that arrived on the local socket `local` from
    /// `remote`. STUN is consumed; anything else is application data when it
    /// comes over a known pair. Nothing here panics or errors: bad input is
    /// dropped and counted.
    pub fn handle_receive(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr, data: &[u8]) -> Receive {
        self.last_now = Some(now);
        if self.state == State::Closed {
            return self.drop_with(DropReason::Closed);
        }
        if !stun::is_stun(data) {
            let pair = self.pairs.iter().find(|p| p.base == local && p.remote_addr == remote).map(|p| p.component);
            let old = || self.previous.iter().find(|(_, p)| p.local == local && p.remote == remote).map(|(c, _)| *c);
            return match pair.or_else(old).map(Component::new) {
                Some(Ok(component)) => Receive::Data { component },
                _ => self.drop_with(DropReason::UnknownPath),
            };
        }
        let Some((class, tid)) = stun::peek(data) else {
            return self.drop_with(DropReason::Malformed);
        };
        let r = match class {
            Class::Request => self.on_request(now, local, remote, data, tid),
            Class::Success | Class::Error => self.on_response(now, local, remote, data, class, tid),
            Class::Indication => match stun::decode(data, None) {
                Ok(_) => Receive::Stun,
                Err(e) => self.drop_decode(e),
            },
        };
        if r == Receive::Stun {
            self.handle_timeout(now);
        }
        r
    }

    /// Would [`Agent::handle_receive`] take this datagram, which arrived on
    /// the local socket `local` from `remote`? A cheap routing test for a
    /// driver that holds many agents on one socket: it reads the agent and
    /// changes nothing (no statistics, no state).
    ///
    /// - A STUN request: its USERNAME is `<local ufrag>:<sender>` and, once
    ///   the peer's credentials are known, the sender is the peer's ufrag;
    ///   `local` is one of the agent's host bases. During an ICE restart the
    ///   old credentials are refused, as `handle_receive` refuses them.
    /// - A STUN success or error response: its transaction id is one of the
    ///   agent's outstanding transactions.
    /// - A STUN indication, or a datagram that is not STUN (RFC 7983): it
    ///   came over one of [`Agent::data_paths`].
    ///
    /// MESSAGE-INTEGRITY and FINGERPRINT are *not* checked, nor is the rest
    /// of the message decoded: `true` says whose datagram it is, not that it
    /// is genuine. [`Agent::handle_receive`] authenticates, and drops and
    /// counts what fails. A closed agent takes nothing.
    pub fn accepts(&self, local: SocketAddr, remote: SocketAddr, data: &[u8]) -> bool {
        if self.state == State::Closed {
            return false;
        }
        if !stun::is_stun(data) {
            return self.is_data_path(local, remote);
        }
        let Some((class, tid)) = stun::peek(data) else { return false };
        match class {
            Class::Request => {
                let Some((ours, sender)) = stun::request_username(data).and_then(split_username) else {
                    return false;
                };
                ours == self.local_creds.ufrag.as_bytes()
                    && self.remote_creds.as_ref().is_none_or(|rc| sender == rc.ufrag.as_bytes())
                    && self.locals.iter().any(|l| l.kind == LocalKind::Host && l.base == local)
            }
            Class::Success | Class::Error => self.txs.iter().any(|t| t.id == tid),
            Class::Indication => self.is_data_path(local, remote),
        }
    }

    /// The `(local base, remote)` address pairs over which
    /// [`Agent::handle_receive`] takes application data (datagrams that are
    /// not STUN): every candidate pair, whatever its state, and during an ICE
    /// restart the paths selected before it (see [`Agent::restart`]). Each
    /// appears once. Empty once the agent is closed. A router keeps a table
    /// of these and refreshes it when [`Agent::paths_generation`] moves.
    pub fn data_paths(&self) -> impl Iterator<Item = (SocketAddr, SocketAddr)> + '_ {
        let open = self.state != State::Closed;
        let pairs = self.pairs.iter().map(|p| (p.base, p.remote_addr));
        let old = self
            .previous
            .iter()
            .map(|(_, p)| (p.local, p.remote))
            .filter(|&(l, r)| !self.pairs.iter().any(|p| p.base == l && p.remote_addr == r));
        pairs.chain(old).filter(move |_| open)
    }

    /// A counter that changes whenever the set given by
    /// [`Agent::data_paths`] may have changed: a pair formed (pairs are
    /// never removed one by one), an ICE restart, the pre-restart paths
    /// given up (a new pair selected, or their consent expired), the agent
    /// closed. A router compares it with the value it last saw and re-reads
    /// the paths only when it moved.
    pub fn paths_generation(&self) -> u64 {
        self.paths_generation
    }

    /// The rule of `handle_receive` for data: a known pair or a
    /// pre-restart path.
    fn is_data_path(&self, local: SocketAddr, remote: SocketAddr) -> bool {
        self.pairs.iter().any(|p| p.base == local && p.remote_addr == remote)
            || self.previous.iter().any(|(_, p)| p.local == local && p.remote == remote)
    }

    // ----- receiving -----

    fn on_request(&mut self, now: Instant, local: SocketAddr, src: SocketAddr, data: &[u8], tid: [u8; 12]) -> Receive {
        let d = match stun::decode(data, Some(&self.local_key)) {
            Ok(d) => d,
            Err(e) => return self.drop_decode(e),
        };
        if !d.integrity {
            return self.drop_with(DropReason::Unauthenticated);
        }
        if !d.fingerprint {
            return self.drop_with(DropReason::BadFingerprint);
        }
        let user_ok = match (d.username.as_deref().and_then(|u| u.split_once(':')), &self.remote_creds) {
            (Some((l, r)), Some(rc)) => l == self.local_creds.ufrag && r == rc.ufrag,
            (Some((l, _)), None) => l == self.local_creds.ufrag,
            (None, _) => false,
        };
        if !user_ok {
            return self.drop_with(DropReason::BadUsername);
        }
        let Some(prio) = d.priority else {
            return self.drop_with(DropReason::Unexpected);
        };
        if d.controlling.is_none() && d.controlled.is_none() {
            return self.drop_with(DropReason::Unexpected);
        }
        let Some(li) = self.locals.iter().position(|l| l.kind == LocalKind::Host && l.base == local) else {
            return self.drop_with(DropReason::UnknownPath);
        };
        // Role conflict, RFC 8445 section 7.3.1.1.
        if self.controlling {
            if let Some(theirs) = d.controlling {
                self.stats.role_conflicts += 1;
                if self.tiebreaker >= theirs {
                    self.respond_error(local, src, tid, 487, "Role Conflict");
                    return Receive::Stun;
                }
                self.switch_role(false);
            }
        } else if let Some(theirs) = d.controlled {
            self.stats.role_conflicts += 1;
            if self.tiebreaker >= theirs {
                self.switch_role(true);
            } else {
                self.respond_error(local, src, tid, 487, "Role Conflict");
                return Receive::Stun;
            }
        }
        let mut out = Vec::new();
        if stun::binding_success(&mut out, tid, src, &self.local_key).is_ok() {
            self.stats.responses_sent += 1;
            self.push_transmit(Transmit { source: local, destination: src, contents: out });
        }
        let component = self.locals[li].component;
        // RFC 8445 7.3.1.3: learn a peer-reflexive remote candidate.
        let ri = match self.remotes.iter().position(|r| r.addr == src && r.component == component) {
            Some(ri) => ri,
            None => {
                let prflx = self.remotes.iter().filter(|r| r.peer_reflexive).count();
                if prflx >= self.cfg.limits.peer_reflexive || self.remotes.len() >= self.cfg.limits.remote_candidates {
                    self.stats.limit_hits += 1;
                    return Receive::Stun;
                }
                let Ok(comp) = Component::new(component) else { return Receive::Stun };
                let mut cand = Candidate::new(
                    Foundation::from_u32(self.rng.random()),
                    comp,
                    Transport::UDP,
                    prio,
                    Address::Ip(src.ip()),
                    src.port(),
                    CandidateType::PRFLX,
                );
                cand.socket_id = None;
                self.remotes.push(RemoteCand { cand, addr: src, component, peer_reflexive: true });
                self.remotes.len() - 1
            }
        };
        // RFC 8445 7.3.1.4: triggered checks.
        let pi = match self.pairs.iter().position(|p| p.base == local && p.remote_addr == src) {
            Some(pi) => pi,
            None => match self.add_pair(li, ri) {
                Some(pi) => pi,
                None => return Receive::Stun,
            },
        };
        let ci = usize::from(component - 1);
        let done = self.comps[ci].selected.is_some();
        let nominate = d.use_candidate && !self.controlling;
        match self.pairs[pi].state {
            PairState::Succeeded | PairState::InProgress => {}
            PairState::Waiting | PairState::Frozen | PairState::Failed => {
                if !done || nominate {
                    self.pairs[pi].state = PairState::Waiting;
                    self.enqueue_triggered(pi);
                }
            }
        }
        if nominate {
            if self.pairs[pi].state == PairState::Succeeded && self.pairs[pi].valid_local.is_some() {
                self.nominate(now, pi);
            } else {
                self.pairs[pi].nominate_on_success = true;
            }
        }
        Receive::Stun
    }

    fn on_response(
        &mut self,
        now: Instant,
        local: SocketAddr,
        src: SocketAddr,
        data: &[u8],
        class: Class,
        tid: [u8; 12],
    ) -> Receive {
        let Some(ti) = self.txs.iter().position(|t| t.id == tid) else {
            return self.drop_with(DropReason::UnknownTransaction);
        };
        let gather = matches!(self.txs[ti].kind, TxKind::Gather { .. });
        let key = if gather {
            None
        } else {
            match &self.remote_key {
                Some(k) => Some(k.clone()),
                None => return self.drop_with(DropReason::Unexpected),
            }
        };
        let d = match stun::decode(data, key.as_ref()) {
            Ok(d) => d,
            Err(e) => return self.drop_decode(e),
        };
        if !gather && !d.integrity {
            return self.drop_with(DropReason::Unauthenticated);
        }
        if !gather && !d.fingerprint {
            return self.drop_with(DropReason::BadFingerprint);
        }
        let tx = self.txs.swap_remove(ti);
        // RFC 8445 7.2.5.2.1: the response must come back on the same path.
        if src != tx.destination || local != tx.source {
            if let TxKind::Check { pair, .. } = tx.kind {
                self.pairs[pair].state = PairState::Failed;
            }
            return self.drop_with(DropReason::UnknownPath);
        }
        match tx.kind {
            TxKind::Gather { server } => {
                if class == Class::Success
                    && let Some(mapped) = d.mapped
                {
                    self.on_reflexive(server, tx.source, mapped);
                }
            }
            TxKind::Consent { pair } => {
                if class == Class::Success {
                    let ci = usize::from(self.pairs[pair].component - 1);
                    if self.comps[ci].selected == Some(pair) && self.state == State::Connected {
                        self.comps[ci].consent_last = Some(now);
                    }
                }
            }
            TxKind::Check { pair, use_candidate, controlling, priority } => {
                if class == Class::Error {
                    if d.error_code == Some(487) {
                        self.stats.role_conflicts += 1;
                        if controlling == self.controlling {
                            self.switch_role(!controlling);
                        }
                        self.pairs[pair].state = PairState::Waiting;
                        self.enqueue_triggered(pair);
                    } else {
                        self.pairs[pair].state = PairState::Failed;
                    }
                    return Receive::Stun;
                }
                let Some(mapped) = d.mapped else {
                    self.pairs[pair].state = PairState::Failed;
                    return self.drop_with(DropReason::Malformed);
                };
                self.on_check_success(now, pair, mapped, priority, use_candidate && controlling && self.controlling);
            }
        }
        Receive::Stun
    }

    fn on_check_success(&mut self, now: Instant, pi: usize, mapped: SocketAddr, prflx_priority: u32, nominated: bool) {
        let base = self.pairs[pi].base;
        let component = self.pairs[pi].component;
        // RFC 8445 7.2.5.3.1: a mapped address we do not know is a local
        // peer-reflexive candidate.
        let vl = match self.locals.iter().position(|l| l.addr == mapped && l.base == base) {
            Some(vl) => vl,
            None if self.locals.len() < self.cfg.limits.local_candidates => {
                let (Ok(comp), local_pref) = (Component::new(component), self.locals[self.pairs[pi].local].local_pref)
                else {
                    return;
                };
                let mut cand = Candidate::new(
                    Foundation::compute(&CandidateType::PRFLX, base.ip(), None, &Transport::UDP),
                    comp,
                    Transport::UDP,
                    prflx_priority,
                    Address::Ip(mapped.ip()),
                    mapped.port(),
                    CandidateType::PRFLX,
                );
                cand.related_address = Some(Address::Ip(base.ip()));
                cand.related_port = Some(base.port());
                self.locals.push(LocalCand {
                    cand,
                    kind: LocalKind::PeerReflexive,
                    addr: mapped,
                    base,
                    component,
                    local_pref,
                });
                self.locals.len() - 1
            }
            None => {
                self.stats.limit_hits += 1;
                self.pairs[pi].local
            }
        };
        let fnd = self.pairs[pi].foundation;
        {
            let p = &mut self.pairs[pi];
            p.state = PairState::Succeeded;
            p.valid_local = Some(vl);
        }
        self.pairs[pi].priority = self.priority_of(pi);
        // RFC 8445 7.2.5.3.3: unfreeze pairs with the same foundation.
        for p in &mut self.pairs {
            if p.state == PairState::Frozen && p.foundation == fnd {
                p.state = PairState::Waiting;
            }
        }
        let ci = usize::from(component - 1);
        if self.comps[ci].first_valid.is_none() {
            self.comps[ci].first_valid = Some(now);
        }
        if self.comps[ci].selected == Some(pi) && self.state == State::Connected {
            self.comps[ci].consent_last = Some(now);
        }
        if nominated || (!self.controlling && self.pairs[pi].nominate_on_success) {
            self.nominate(now, pi);
        }
    }

    fn on_reflexive(&mut self, server: SocketAddr, base: SocketAddr, mapped: SocketAddr) {
        if self.reflexive.len() < self.cfg.limits.local_candidates {
            self.reflexive.push(Reflexive { server, base, mapped });
        }
        // RFC 8445 5.1.3: a candidate with the address and base of another
        // is redundant.
        if self.locals.iter().any(|l| l.addr == mapped && l.base == base) {
            return;
        }
        if self.locals.len() >= self.cfg.limits.local_candidates {
            self.stats.limit_hits += 1;
            return;
        }
        let Some(host) = self.locals.iter().find(|l| l.kind == LocalKind::Host && l.base == base) else { return };
        let (component, local_pref) = (host.component, host.local_pref);
        let Ok(comp) = Component::new(component) else { return };
        let mut cand = Candidate::new(
            Foundation::compute(&CandidateType::SRFLX, base.ip(), Some(server.ip()), &Transport::UDP),
            comp,
            Transport::UDP,
            candidate_priority(TypePreference::SERVER_REFLEXIVE, local_pref, comp),
            Address::Ip(mapped.ip()),
            mapped.port(),
            CandidateType::SRFLX,
        );
        cand.related_address = Some(Address::Ip(base.ip()));
        cand.related_port = Some(base.port());
        self.locals.push(LocalCand {
            cand: cand.clone(),
            kind: LocalKind::ServerReflexive,
            addr: mapped,
            base,
            component,
            local_pref,
        });
        self.push_event(Event::Candidate(cand));
    }

    // ----- check list -----

    fn add_pair(&mut self, li: usize, ri: usize) -> Option<usize> {
        let (base, remote_addr) = (self.locals[li].base, self.remotes[ri].addr);
        if let Some(pi) = self.pairs.iter().position(|p| p.base == base && p.remote_addr == remote_addr) {
            return Some(pi);
        }
        if self.pairs.len() >= self.cfg.limits.pairs {
            self.stats.limit_hits += 1;
            return None;
        }
        let foundation = (self.locals[li].cand.foundation, self.remotes[ri].cand.foundation);
        // RFC 8445 6.1.2.6 and RFC 8838: a pair starts Waiting unless a pair
        // with its foundation is already being checked.
        let busy = self
            .pairs
            .iter()
            .any(|p| p.foundation == foundation && matches!(p.state, PairState::Waiting | PairState::InProgress));
        self.pairs.push(CheckPair {
            local: li,
            remote: ri,
            base,
            remote_addr,
            component: self.locals[li].component,
            foundation,
            priority: 0,
            state: if busy { PairState::Frozen } else { PairState::Waiting },
            valid_local: None,
            nominated: false,
            nominate_on_success: false,
            use_candidate_pending: false,
        });
        let pi = self.pairs.len() - 1;
        self.pairs[pi].priority = self.priority_of(pi);
        self.paths_generation += 1;
        Some(pi)
    }

    fn priority_of(&self, pi: usize) -> u64 {
        let p = &self.pairs[pi];
        let l = self.locals[p.valid_local.unwrap_or(p.local)].cand.priority;
        let r = self.remotes[p.remote].cand.priority;
        if self.controlling { pair_priority(l, r) } else { pair_priority(r, l) }
    }

    fn recompute_priorities(&mut self) {
        for pi in 0..self.pairs.len() {
            self.pairs[pi].priority = self.priority_of(pi);
        }
    }

    fn switch_role(&mut self, controlling: bool) {
        self.controlling = controlling;
        self.recompute_priorities();
        for c in &mut self.comps {
            c.nominating = None;
        }
        for p in &mut self.pairs {
            p.use_candidate_pending = false;
        }
    }

    fn enqueue_triggered(&mut self, pi: usize) {
        if !self.triggered.contains(&pi) && self.triggered.len() < self.cfg.limits.pairs {
            self.triggered.push_back(pi);
        }
    }

    fn has_check_work(&self) -> bool {
        self.remote_key.is_some()
            && (!self.triggered.is_empty()
                || self.pairs.iter().any(|p| {
                    matches!(p.state, PairState::Waiting | PairState::Frozen)
                        && self.comps[usize::from(p.component - 1)].selected.is_none()
                }))
    }

    /// The pair to check next: the triggered queue first, then the
    /// highest-priority Waiting pair, then (none Waiting) the highest-priority
    /// Frozen one, of components not yet selected.
    fn next_pair(&mut self) -> Option<usize> {
        while let Some(pi) = self.triggered.pop_front() {
            let p = &self.pairs[pi];
            if p.state == PairState::Waiting || p.use_candidate_pending {
                return Some(pi);
            }
        }
        let open = |p: &CheckPair, comps: &[Comp]| comps[usize::from(p.component - 1)].selected.is_none();
        let best = |state: PairState| {
            self.pairs
                .iter()
                .enumerate()
                .filter(|(_, p)| p.state == state && open(p, &self.comps))
                .max_by_key(|(_, p)| p.priority)
                .map(|(i, _)| i)
        };
        best(PairState::Waiting).or_else(|| best(PairState::Frozen))
    }

    fn send_check(&mut self, now: Instant, pi: usize) -> bool {
        if self.txs.len() >= self.cfg.limits.transactions {
            self.stats.limit_hits += 1;
            // Try again after Ta.
            if !self.triggered.contains(&pi) {
                self.triggered.push_front(pi);
            }
            return true;
        }
        let Some(key) = self.remote_key.clone() else { return false };
        let p = &self.pairs[pi];
        let l = &self.locals[p.local];
        let Ok(comp) = Component::new(p.component) else { return false };
        let priority = candidate_priority(TypePreference::PEER_REFLEXIVE, l.local_pref, comp);
        let use_candidate =
            self.controlling && (self.cfg.nomination == Nomination::Aggressive || p.use_candidate_pending);
        let attrs = CheckAttrs { priority, controlling: self.controlling, tiebreaker: self.tiebreaker, use_candidate };
        let (source, destination) = (p.base, p.remote_addr);
        let id = self.new_tid();
        let mut contents = Vec::new();
        if stun::binding_request(&mut contents, id, Some((&self.username_out, &key)), Some(attrs)).is_err() {
            return false;
        }
        let p = &mut self.pairs[pi];
        p.use_candidate_pending = false;
        if p.state != PairState::Succeeded {
            p.state = PairState::InProgress;
        }
        self.stats.checks_sent += 1;
        let kind = TxKind::Check { pair: pi, use_candidate, controlling: self.controlling, priority };
        self.start_tx(now, kind, source, destination, contents, self.cfg.timing.max_transmits);
        true
    }

    fn send_gather(&mut self, now: Instant, base: SocketAddr, server: SocketAddr) {
        if self.txs.len() >= self.cfg.limits.transactions {
            self.stats.limit_hits += 1;
            return;
        }
        let id = self.new_tid();
        let mut contents = Vec::new();
        if stun::binding_request(&mut contents, id, None, None).is_err() {
            return;
        }
        self.gather_deadline.get_or_insert(now + self.cfg.timing.gather_timeout);
        self.start_tx_with_id(
            now,
            id,
            TxKind::Gather { server },
            base,
            server,
            contents,
            self.cfg.timing.max_transmits,
        );
    }

    fn start_tx(
        &mut self,
        now: Instant,
        kind: TxKind,
        source: SocketAddr,
        destination: SocketAddr,
        contents: Vec<u8>,
        max_sends: u32,
    ) {
        let mut id = [0u8; 12];
        id.copy_from_slice(&contents[8..20]);
        self.start_tx_with_id(now, id, kind, source, destination, contents, max_sends);
    }

    #[allow(clippy::too_many_arguments)]
    fn start_tx_with_id(
        &mut self,
        now: Instant,
        id: [u8; 12],
        kind: TxKind,
        source: SocketAddr,
        destination: SocketAddr,
        contents: Vec<u8>,
        max_sends: u32,
    ) {
        let wait = match kind {
            // Consent requests are sent once; a late answer still counts
            // until the next one goes out (RFC 7675 section 5.1).
            TxKind::Consent { .. } => self.cfg.timing.consent_interval,
            _ => self.cfg.timing.rto,
        };
        self.note_sent(now, source, destination);
        self.push_transmit(Transmit { source, destination, contents: contents.clone() });
        // Exact growth: a connected agent holds one or two transactions.
        self.txs.reserve_exact(1);
        self.txs.push(Tx { id, kind, source, destination, contents, sends: 1, max_sends, next_at: now + wait });
    }

    fn retransmit(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.txs.len() {
            if self.txs[i].next_at > now {
                i += 1;
                continue;
            }
            if self.txs[i].sends < self.txs[i].max_sends {
                let tx = &mut self.txs[i];
                tx.sends += 1;
                let shift = (tx.sends - 1).min(16);
                let wait = self.cfg.timing.rto.saturating_mul(1 << shift).min(self.cfg.timing.max_rto);
                tx.next_at = now + wait;
                let t = Transmit { source: tx.source, destination: tx.destination, contents: tx.contents.clone() };
                self.stats.retransmits += 1;
                self.note_sent(now, t.source, t.destination);
                self.push_transmit(t);
                i += 1;
            } else {
                let tx = self.txs.swap_remove(i);
                self.on_tx_timeout(tx);
            }
        }
    }

    fn on_tx_timeout(&mut self, tx: Tx) {
        if let TxKind::Check { pair, use_candidate, .. } = tx.kind {
            let still = self.txs.iter().any(|t| matches!(t.kind, TxKind::Check { pair: p, .. } if p == pair));
            if !still {
                let p = &mut self.pairs[pair];
                if p.state == PairState::InProgress {
                    p.state = PairState::Failed;
                }
                if use_candidate && self.controlling {
                    // The nomination did not go through: forget this pair.
                    p.state = PairState::Failed;
                    p.valid_local = None;
                    let ci = usize::from(p.component - 1);
                    if self.comps[ci].nominating == Some(pair) {
                        self.comps[ci].nominating = None;
                    }
                }
            }
        }
    }

    fn maybe_nominate(&mut self, now: Instant) {
        if !self.controlling || self.cfg.nomination != Nomination::Regular || self.remote_key.is_none() {
            return;
        }
        for ci in 0..self.comps.len() {
            let c = self.comps[ci];
            if c.selected.is_some() || c.nominating.is_some() {
                continue;
            }
            let comp = u16::try_from(ci + 1).unwrap_or(1);
            let best = self
                .pairs
                .iter()
                .enumerate()
                .filter(|(_, p)| p.component == comp && p.valid_local.is_some() && p.state == PairState::Succeeded)
                .max_by_key(|(_, p)| p.priority)
                .map(|(i, p)| (i, p.priority));
            let Some((bi, bprio)) = best else { continue };
            let better_pending = self.pairs.iter().any(|p| {
                p.component == comp
                    && p.priority > bprio
                    && matches!(p.state, PairState::Frozen | PairState::Waiting | PairState::InProgress)
            });
            let waited = c.first_valid.is_some_and(|f| now >= f + self.cfg.timing.nomination_delay);
            if !better_pending || waited {
                self.comps[ci].nominating = Some(bi);
                self.pairs[bi].use_candidate_pending = true;
                self.triggered.retain(|&p| p != bi);
                self.triggered.push_front(bi);
            }
        }
    }

    /// Marks `pi` nominated and selects, for its component, the
    /// highest-priority nominated valid pair.
    fn nominate(&mut self, now: Instant, pi: usize) {
        if matches!(self.state, State::Disconnected | State::Failed | State::Closed) {
            return;
        }
        self.pairs[pi].nominated = true;
        let comp = self.pairs[pi].component;
        let ci = usize::from(comp - 1);
        let Some(best) = self
            .pairs
            .iter()
            .enumerate()
            .filter(|(_, p)| p.component == comp && p.nominated && p.valid_local.is_some())
            .max_by_key(|(_, p)| p.priority)
            .map(|(i, _)| i)
        else {
            return;
        };
        if self.comps[ci].selected != Some(best) {
            let interval = self.consent_interval();
            let c = &mut self.comps[ci];
            c.selected = Some(best);
            c.nominating = None;
            c.consent_last = Some(now);
            c.consent_next = Some(now + interval);
            c.last_sent = Some(now);
            let p = &self.pairs[best];
            let local = self.locals[p.valid_local.unwrap_or(p.local)].cand.clone();
            let remote = self.remotes[p.remote].cand.clone();
            if let Ok(component) = Component::new(comp) {
                self.push_event(Event::ActiveCandidate { component, local, remote });
            }
            // RFC 8445 8.1.2: stop checking the component's other pairs.
            for p in &mut self.pairs {
                if p.component == comp && matches!(p.state, PairState::Frozen | PairState::Waiting) {
                    p.state = PairState::Failed;
                }
            }
        }
        if self.state == State::Checking && self.comps.iter().all(|c| c.selected.is_some()) {
            self.state = State::Connected;
            if !self.previous.is_empty() {
                self.previous = Vec::new();
                self.paths_generation += 1;
            }
            self.push_event(Event::Connected);
            self.compact();
        }
    }

    /// Releases spare capacity once connected: the lists stop growing then
    /// (short of a late candidate), and thousands of agents may be held.
    fn compact(&mut self) {
        self.locals.shrink_to_fit();
        self.remotes.shrink_to_fit();
        self.pairs.shrink_to_fit();
        self.txs.shrink_to_fit();
        self.triggered.shrink_to_fit();
        self.reflexive.shrink_to_fit();
        self.cfg.stun_servers.shrink_to_fit();
    }

    fn consent_interval(&mut self) -> Duration {
        let base = self.cfg.timing.consent_interval.max(Duration::from_secs(4));
        // 0.8 to 1.2 times the period, never below 4 s (RFC 7675 5.1).
        base.mul_f64(self.rng.random_range(0.8..1.2)).max(Duration::from_secs(4))
    }

    fn consent(&mut self, now: Instant) {
        if self.state != State::Connected {
            return;
        }
        for ci in 0..self.comps.len() {
            let c = self.comps[ci];
            let Some(pi) = c.selected else { continue };
            if c.consent_last.is_some_and(|l| now >= l + self.cfg.timing.consent_timeout) {
                self.state = State::Disconnected;
                self.txs.retain(|t| !matches!(t.kind, TxKind::Consent { .. }));
                self.push_event(Event::Disconnected);
                return;
            }
            if c.consent_next.is_some_and(|n| now >= n) {
                let interval = self.consent_interval();
                self.comps[ci].consent_next = Some(now + interval);
                self.send_consent(now, pi);
            }
            if self.comps[ci].last_sent.is_some_and(|l| now >= l + self.cfg.timing.keepalive) {
                let p = &self.pairs[pi];
                let (source, destination) = (p.base, p.remote_addr);
                let id = self.new_tid();
                let mut contents = Vec::new();
                if stun::binding_indication(&mut contents, id).is_ok() {
                    self.stats.keepalives += 1;
                    self.note_sent(now, source, destination);
                    self.push_transmit(Transmit { source, destination, contents });
                }
            }
        }
    }

    fn send_consent(&mut self, now: Instant, pi: usize) {
        // Old consent transactions make room: each is sent once only.
        while self.txs.len() >= self.cfg.limits.transactions {
            match self.txs.iter().position(|t| matches!(t.kind, TxKind::Consent { .. })) {
                Some(i) => {
                    self.txs.swap_remove(i);
                }
                None => {
                    self.stats.limit_hits += 1;
                    return;
                }
            }
        }
        let Some(key) = self.remote_key.clone() else { return };
        let p = &self.pairs[pi];
        let Ok(comp) = Component::new(p.component) else { return };
        let priority = candidate_priority(TypePreference::PEER_REFLEXIVE, self.locals[p.local].local_pref, comp);
        let attrs =
            CheckAttrs { priority, controlling: self.controlling, tiebreaker: self.tiebreaker, use_candidate: false };
        let (source, destination) = (p.base, p.remote_addr);
        let id = self.new_tid();
        let mut contents = Vec::new();
        if stun::binding_request(&mut contents, id, Some((&self.username_out, &key)), Some(attrs)).is_ok() {
            self.stats.consent_checks += 1;
            self.start_tx(now, TxKind::Consent { pair: pi }, source, destination, contents, 1);
        }
    }

    fn check_failed(&mut self) {
        if self.state != State::Checking || !self.remote_done || !self.candidates_done || self.remote_key.is_none() {
            return;
        }
        let pending = !self.triggered.is_empty()
            || self.txs.iter().any(|t| matches!(t.kind, TxKind::Check { .. }))
            || self
                .pairs
                .iter()
                .any(|p| matches!(p.state, PairState::Frozen | PairState::Waiting | PairState::InProgress));
        if pending {
            return;
        }
        let hopeless = (1..=self.cfg.components).any(|comp| {
            !self
                .pairs
                .iter()
                .any(|p| p.component == comp && p.valid_local.is_some() && p.state == PairState::Succeeded)
        });
        if hopeless {
            self.state = State::Failed;
            self.txs.clear();
            self.push_event(Event::Failed);
        }
    }

    // ----- helpers -----

    fn note_sent(&mut self, now: Instant, source: SocketAddr, destination: SocketAddr) {
        for c in &mut self.comps {
            if let Some(pi) = c.selected {
                let p = &self.pairs[pi];
                if p.base == source && p.remote_addr == destination {
                    c.last_sent = Some(now);
                }
            }
        }
    }

    fn respond_error(&mut self, local: SocketAddr, src: SocketAddr, tid: [u8; 12], code: u16, reason: &str) {
        let mut out = Vec::new();
        if stun::binding_error(&mut out, tid, code, reason, &self.local_key).is_ok() {
            self.push_transmit(Transmit { source: local, destination: src, contents: out });
        }
    }

    fn push_transmit(&mut self, t: Transmit) {
        if self.transmits.len() < self.cfg.limits.queue {
            self.transmits.push_back(t);
        } else {
            self.stats.limit_hits += 1;
        }
    }

    fn push_event(&mut self, e: Event) {
        if self.events.len() < self.cfg.limits.queue {
            self.events.push_back(e);
        } else {
            self.stats.limit_hits += 1;
        }
    }

    fn new_tid(&mut self) -> [u8; 12] {
        let mut id = [0u8; 12];
        self.rng.fill(&mut id);
        id
    }

    fn drop_with(&mut self, reason: DropReason) -> Receive {
        self.stats.dropped[reason.index()] += 1;
        Receive::Dropped(reason)
    }

    fn drop_decode(&mut self, e: DecodeError) -> Receive {
        self.drop_with(match e {
            DecodeError::Malformed => DropReason::Malformed,
            DecodeError::Integrity => DropReason::Unauthenticated,
            DecodeError::Fingerprint => DropReason::BadFingerprint,
        })
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.state == State::Closed { Err(Error::Closed) } else { Ok(()) }
    }

    /// The kind of a local candidate, for tests and drivers.
    #[doc(hidden)]
    pub fn local_kind_is_prflx(&self, c: &Candidate) -> bool {
        self.locals.iter().any(|l| l.kind == LocalKind::PeerReflexive && &l.cand == c)
    }

    /// How many remote candidates the agent holds (signaled and learned).
    pub fn remote_candidate_count(&self) -> usize {
        self.remotes.len()
    }

    /// How many remote peer-reflexive candidates the agent learned.
    pub fn remote_peer_reflexive_count(&self) -> usize {
        self.remotes.iter().filter(|r| r.peer_reflexive).count()
    }

    /// How many candidate pairs the agent holds.
    pub fn pair_count(&self) -> usize {
        self.pairs.len()
    }

    /// How many STUN transactions are outstanding.
    pub fn transaction_count(&self) -> usize {
        self.txs.len()
    }

    /// The candidate pairs, in the order they were formed.
    pub fn candidate_pairs(&self) -> impl Iterator<Item = PairInfo> + '_ {
        self.pairs.iter().map(|p| PairInfo {
            local: p.base,
            remote: p.remote_addr,
            component: p.component,
            state: p.state,
            priority: p.priority,
            nominated: p.nominated,
        })
    }
}

/// Splits a USERNAME value `local:remote` at its first colon.
pub(crate) fn split_username(username: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = username.iter().position(|&b| b == b':')?;
    Some((&username[..at], &username[at + 1..]))
}

fn same_family(a: SocketAddr, b: SocketAddr) -> bool {
    matches!((a.ip(), b.ip()), (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_ice_chars_of_the_right_length() {
        let mut rng = StdRng::seed_from_u64(7);
        let c = Credentials::random(&mut rng);
        assert!(c.validate().is_ok());
        assert_eq!((c.ufrag.len(), c.pwd.len()), (8, 24));
        assert!(Credentials { ufrag: "abc".into(), pwd: "x".repeat(22) }.validate().is_err());
        assert!(Credentials { ufrag: "abcd".into(), pwd: "x".repeat(21) }.validate().is_err());
        assert!(Credentials { ufrag: "ab:d".into(), pwd: "x".repeat(22) }.validate().is_err());
        assert!(Credentials { ufrag: "abcd".into(), pwd: "x".repeat(22) }.validate().is_ok());
        let a = Agent::new(AgentConfig::default()).unwrap();
        let b = Agent::new(AgentConfig::default()).unwrap();
        assert_ne!(a.local_credentials(), b.local_credentials());
        assert_ne!(a.tiebreaker(), b.tiebreaker());
    }

    #[test]
    fn bad_candidates_are_refused() {
        let now = Instant::now();
        let mut a = Agent::new(AgentConfig::default()).unwrap();
        let tcp = Candidate::parse("candidate:1 1 tcp 1 127.0.0.1 9 typ host tcptype active").unwrap();
        assert_eq!(a.add_remote_candidate(now, &tcp), Err(Error::UnsupportedCandidate("transport is not UDP")));
        let mdns = Candidate::parse("candidate:1 1 udp 1 abc.local 9 typ host").unwrap();
        assert!(a.add_remote_candidate(now, &mdns).is_err());
        let rtcp = Candidate::parse("candidate:1 2 udp 1 127.0.0.1 9 typ host").unwrap();
        assert_eq!(a.add_remote_candidate(now, &rtcp), Err(Error::InvalidComponent(2)));
        let addr: SocketAddr = "127.0.0.1:1000".parse().unwrap();
        a.add_host_candidate(now, Component::RTP, addr).unwrap();
        assert!(a.add_host_candidate(now, Component::RTP, addr).is_err());
    }

    #[test]
    fn remote_candidates_are_capped() {
        let now = Instant::now();
        let cfg =
            AgentConfig { limits: Limits { remote_candidates: 3, ..Limits::default() }, ..AgentConfig::default() };
        let mut a = Agent::new(cfg).unwrap();
        for port in 1..=3 {
            let c = Candidate::parse(&format!("candidate:1 1 udp 1 127.0.0.1 {port} typ host")).unwrap();
            a.add_remote_candidate(now, &c).unwrap();
        }
        let c = Candidate::parse("candidate:1 1 udp 1 127.0.0.1 4 typ host").unwrap();
        assert_eq!(a.add_remote_candidate(now, &c), Err(Error::LimitReached("remote candidates")));
        assert_eq!(a.remote_candidate_count(), 3);
    }
}
