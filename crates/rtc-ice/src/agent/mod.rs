//! The sans-IO ICE agent (RFC 8445) with consent freshness (RFC 7675).
//!
//! This file holds the agent's state and its public API; the rest is split
//! by concern: `config` (the public types: configuration, events,
//! statistics), `receive` (requests, responses, and the routing test),
//! `checklist` (pairs, priorities, pacing, failure), `transactions`
//! (requests in flight and their retransmission), `nomination` and
//! `consent` (RFC 7675 checks and keepalives).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand::rngs::{OsRng, StdRng};
use rand::{Rng, RngCore, SeedableRng, TryRngCore};
use rtc_candidate::{
    Address, Candidate, CandidateType, Component, Foundation, Transport, TransportKind, TypePreference,
    candidate_priority,
};
use stun_rs::HMACKey;

use crate::error::Error;
use crate::stun::{self, Class, DecodeError};

/// Logs an event about candidate pair `$pi` of `$agent`, with the pair's
/// local and remote addresses, their candidate types and the component as
/// fields (the local candidate is the valid one once the pair succeeded:
/// peer-reflexive when the peer saw another address than our base).
macro_rules! pair_event {
    ($level:expr, $agent:expr, $pi:expr, $($arg:tt)+) => {{
        let agent = &$agent;
        let p = &agent.pairs[$pi];
        let local = &agent.locals[p.valid_local.unwrap_or(p.local)];
        let remote = &agent.remotes[p.remote];
        tracing::event!(
            $level,
            local = %local.addr,
            local_type = %local.cand.kind,
            remote = %remote.addr,
            remote_type = %remote.cand.kind,
            component = p.component,
            $($arg)+
        );
    }};
}

mod checklist;
mod config;
mod consent;
mod mdns;
mod nomination;
mod receive;
mod relay;
mod tcp;
mod transactions;

pub use config::{
    AgentConfig, Credentials, DropReason, Event, Limits, Nomination, PairCounters, PairInfo, PairState, Path, Receive,
    Reflexive, RelayedTransmit, Role, State, Stats, StreamCommand, TcpCommand, Timing, Transmit,
};
pub use tcp::TCP_CHECK_TIMEOUT;
use tcp::{Tcp, TcpConnect};
use transactions::{Tx, TxKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LocalKind {
    Host,
    ServerReflexive,
    PeerReflexive,
    /// A TURN relayed candidate: its own base (RFC 8445 section 5.1.1.2);
    /// what goes from it is framed for its allocation's server.
    Relayed,
}

#[derive(Debug)]
struct LocalCand {
    cand: Candidate,
    kind: LocalKind,
    addr: SocketAddr,
    base: SocketAddr,
    component: u16,
    local_pref: u16,
    /// UDP, or which TCP candidate (RFC 6544) or connection it is.
    tcp: Tcp,
}

#[derive(Debug)]
struct RemoteCand {
    cand: Candidate,
    addr: SocketAddr,
    component: u16,
    peer_reflexive: bool,
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
    /// A check of the peer's (signed with our password, from its ufrag)
    /// came over this pair.
    heard: bool,
    /// What went over it.
    counters: PairCounters,
}

impl CheckPair {
    /// Whether application data is taken over this pair: once a check
    /// went through it either way (ours succeeded, or the peer's came).
    /// A pair formed only from a signaled candidate is not enough: a peer
    /// could list another party's address (another fork's peer sharing the
    /// socket) and take that party's traffic.
    fn carries_data(&self) -> bool {
        self.state == PairState::Succeeded || self.heard
    }
}

/// A check request that arrived before the peer's credentials were known
/// (RFC 8445 section 7.3): answered at once, the rest of its processing
/// waits for them.
#[derive(Debug)]
struct EarlyRequest {
    local: SocketAddr,
    src: SocketAddr,
    priority: u32,
    use_candidate: bool,
    /// The sender's ufrag, from USERNAME (`ours:sender`).
    sender: String,
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
    /// When the last new check went out; the next one waits for
    /// [`Agent::pacing`] after it.
    last_check: Option<Instant>,
    /// The peer's proposed Ta (RFC 8839 `a=ice-pacing`); `None`: none
    /// proposed (yet), which counts as 50 ms.
    remote_pacing: Option<Duration>,
    /// An authenticated check from the peer arrived (under the current
    /// local credentials): the peer holds our description.
    peer_checked: bool,
    /// Requests answered before the peer's credentials were known.
    early: Vec<EarlyRequest>,
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
    /// Every pair failed while more remote candidates may come; said once
    /// in the logs until a new pair forms.
    stalled: bool,
    /// TURN allocations, one per (host base, server); empty without TURN
    /// servers.
    turn: Vec<crate::turn::Client>,
    /// Allocations lost after they were made, to make again (see
    /// `relay.rs`), and their relayed addresses, no longer signaled.
    reallocs: Vec<relay::Realloc>,
    retired: Vec<SocketAddr>,
    /// The longest round trip a check or consent request took (answered
    /// without a retransmission): the checks' RTO follows it.
    max_rtt: Option<Duration>,
    /// `max_rtt` holds a true measurement (not only guesses from
    /// retransmitted requests).
    rtt_measured: bool,
    /// Replacement allocations in flight: (base, server, transport, attempt).
    turn_attempts: Vec<(SocketAddr, SocketAddr, crate::url::TurnTransport, u32)>,
    /// Streams to TURN servers to open or close (TURN over TCP or TLS).
    stream_commands: VecDeque<StreamCommand>,
    /// The peer is an ICE lite agent ([`Agent::set_remote_lite`]): this
    /// agent controls and keeps that role.
    remote_lite: bool,
    /// Remote candidates named by an mDNS name, waiting for it to be
    /// resolved; empty otherwise.
    mdns: Vec<mdns::Held>,
    /// Names the driver must resolve ([`Agent::poll_mdns_query`]).
    mdns_queries: VecDeque<String>,
    /// The names concealing our host addresses, each with its address.
    mdns_own: Vec<(String, IpAddr)>,
    /// Those the driver has not taken yet ([`Agent::poll_mdns_host_name`]).
    mdns_own_new: usize,
    /// ICE-TCP connections being opened for checks (RFC 6544 section 7.1),
    /// and what the driver must do about TCP connections.
    tcp_connecting: Vec<TcpConnect>,
    tcp_commands: VecDeque<TcpCommand>,
    /// The TCP connections of the pairs not selected were closed.
    tcp_pruned: bool,
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
        if config.lite && (!config.stun_servers.is_empty() || !config.turn_servers.is_empty() || config.relay_only) {
            return Err(Error::Lite(
                "a lite agent gathers host candidates only (RFC 8445 section 5.2): no STUN or TURN servers, no \
                 relay_only",
            ));
        }
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
        config.timing.ta = config.timing.ta.clamp(Timing::MIN_PACING, Timing::MAX_PACING);
        let tiebreaker = rng.random();
        Self {
            // RFC 8445 section 6.1.1: a lite agent is always controlled.
            controlling: config.role == Role::Controlling && !config.lite,
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
            last_check: None,
            remote_pacing: None,
            peer_checked: false,
            early: Vec::new(),
            gather_deadline: None,
            local_done: false,
            remote_done: false,
            candidates_done: false,
            reflexive: Vec::new(),
            last_now: None,
            stats: Stats::default(),
            previous: Vec::new(),
            paths_generation: 0,
            stalled: false,
            turn: Vec::new(),
            reallocs: Vec::new(),
            retired: Vec::new(),
            turn_attempts: Vec::new(),
            max_rtt: None,
            rtt_measured: false,
            stream_commands: VecDeque::new(),
            remote_lite: false,
            mdns: Vec::new(),
            mdns_queries: VecDeque::new(),
            mdns_own: Vec::new(),
            mdns_own_new: 0,
            tcp_connecting: Vec::new(),
            tcp_commands: VecDeque::new(),
            tcp_pruned: false,
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

    /// Sets the role (RFC 8445 section 6.1.1), for a caller that learns it
    /// late: an answerer that created its agent and gathered before it knew
    /// whether it controls. It may be called at any time, before or after
    /// checks started. Setting the current role does nothing. Otherwise
    /// pair priorities are recomputed (RFC 8445 section 6.1.2.3), a
    /// nomination under way is dropped, and connectivity checks in flight
    /// are not retransmitted with the old ICE-CONTROLLING/ICE-CONTROLLED
    /// attribute: their pairs are checked again as new transactions that
    /// carry the new role, as after a role conflict (RFC 8445 section
    /// 7.2.5.1). The tiebreaker stays. A peer that silently drops requests
    /// carrying the wrong role thus still gets a check it answers.
    ///
    /// ICE lite fixes the role (RFC 8445 section 6.1.1): a lite agent
    /// ([`AgentConfig::lite`]) stays controlled and one whose peer is lite
    /// ([`Agent::set_remote_lite`]) stays controlling; asking them for the
    /// other role does nothing.
    pub fn set_role(&mut self, now: Instant, role: Role) {
        let controlling = role == Role::Controlling;
        if controlling == self.controlling {
            return;
        }
        if self.role_pinned() {
            tracing::debug!(
                ?role,
                lite = self.cfg.lite,
                remote_lite = self.remote_lite,
                "ICE role kept: lite fixes it"
            );
            return;
        }
        self.switch_role(controlling);
        self.handle_timeout(now);
    }

    /// Whether this agent is an ICE lite agent ([`AgentConfig::lite`]).
    pub fn is_lite(&self) -> bool {
        self.cfg.lite
    }

    /// Whether the peer is an ICE lite agent, as [`Agent::set_remote_lite`]
    /// said.
    pub fn remote_lite(&self) -> bool {
        self.remote_lite
    }

    /// Says whether the peer is an ICE lite agent (it signaled SDP's
    /// session-level `a=ice-lite`, RFC 8839 section 5.3). Call it before
    /// [`Agent::set_remote_credentials`], so that the first check already
    /// carries the right role. Against a lite peer (RFC 8445 section
    /// 6.1.1) this agent takes the controlling role (checks in flight with
    /// the other role are sent again, as [`Agent::set_role`] does) and
    /// keeps it: a role conflict is answered with 487 instead of switching,
    /// and a 487 from the lite peer fails the pair. It checks and nominates
    /// as usual, and expects no checks from the peer: data before a pair is
    /// selected ([`Agent::early_path`]) waits for the selection, which a
    /// lite peer makes on our nominating check. Consent checks (RFC 7675)
    /// go on: the lite peer answers them.
    ///
    /// A lite agent refuses a lite peer ([`Error::Lite`]): with neither
    /// side checking, there is no consent to send (RFC 7675 section 1:
    /// consent is obtained by full agents only), which WebRTC requires.
    /// The value stays across an ICE restart until set again (RFC 8445
    /// section 9: changing between lite and full takes a restart).
    pub fn set_remote_lite(&mut self, now: Instant, lite: bool) -> Result<(), Error> {
        self.check_open()?;
        if lite && self.cfg.lite {
            return Err(Error::Lite(
                "both agents are lite: neither would check connectivity nor obtain consent (RFC 7675)",
            ));
        }
        if lite != self.remote_lite {
            tracing::debug!(remote_lite = lite, "ICE the peer is {}", if lite { "lite" } else { "full" });
        }
        self.remote_lite = lite;
        if lite && !self.controlling {
            self.switch_role(true);
            self.handle_timeout(now);
        }
        Ok(())
    }

    /// Whether ICE lite fixes the role: this agent is lite (controlled), or
    /// its peer is (controlling).
    fn role_pinned(&self) -> bool {
        self.cfg.lite || self.remote_lite
    }

    /// Sets the Ta the peer proposed, as it signaled it (RFC 8839 section
    /// 5.5, SDP's session-level `a=ice-pacing`), or `None` when it
    /// proposed none. RFC 8445 section 14.2: both agents use the larger of
    /// the two proposals, and an agent that proposes nothing counts as the
    /// default, 50 ms; so the agent paces at the larger of its own
    /// [`Timing::ta`] and `pacing` (50 ms when `None`), never under
    /// [`Timing::MIN_PACING`] (section 14.2's 5 ms floor). Until this is
    /// called the peer counts as having proposed nothing: a driver that
    /// signals no pacing gets RFC 8445's 50 ms whatever `Timing::ta` says.
    ///
    /// It may be called at any time, also while checks run: the next new
    /// check waits the new pacing after the last one (see
    /// [`Agent::poll_timeout`]). The value stays across an ICE restart until
    /// set again. A proposal under 5 ms counts as 5 ms; one above
    /// [`Timing::MAX_PACING`] is refused with [`Error::InvalidPacing`] and
    /// changes nothing.
    pub fn set_remote_pacing(&mut self, pacing: Option<Duration>) -> Result<(), Error> {
        if let Some(p) = pacing
            && p > Timing::MAX_PACING
        {
            return Err(Error::InvalidPacing(p));
        }
        self.remote_pacing = pacing.map(|p| p.max(Timing::MIN_PACING));
        tracing::debug!(remote = ?self.remote_pacing, pacing = ?self.pacing(), "ICE pacing (Ta) agreed");
        Ok(())
    }

    /// Ta, the pacing of new checks in use (RFC 8445 section 14.2): the
    /// larger of this agent's [`Timing::ta`] and the peer's proposal
    /// ([`Agent::set_remote_pacing`]; 50 ms when it made none), within
    /// [`Timing::MIN_PACING`]..=[`Timing::MAX_PACING`].
    pub fn pacing(&self) -> Duration {
        let remote = self.remote_pacing.unwrap_or(Timing::DEFAULT_PACING);
        self.cfg.timing.ta.max(remote).clamp(Timing::MIN_PACING, Timing::MAX_PACING)
    }

    /// When the next new check may go out: [`Agent::pacing`] after the
    /// last one; `None` before the first (which goes out at once).
    fn next_check_at(&self) -> Option<Instant> {
        self.last_check.map(|t| t.checked_add(self.pacing()).unwrap_or(t))
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

    /// The local candidates to signal: host, server-reflexive and relayed;
    /// with [`AgentConfig::relay_only`], the relayed ones only (the host
    /// bases of the allocations are not signaled). Peer-reflexive ones,
    /// learned from the peer's answers, are not: the peer already paired
    /// them, and a description that listed them would tell the peer's
    /// side (a NAT's or a relay's address as the peer saw it) back to it as
    /// ours.
    pub fn local_candidates(&self) -> impl Iterator<Item = &Candidate> {
        self.locals
            .iter()
            .filter(|l| self.usable(l) && l.tcp != Tcp::Conn && l.kind != LocalKind::PeerReflexive)
            .map(|l| &l.cand)
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

    /// A path over which data MAY go before a pair is selected (RFC 8445
    /// section 12.1: "An ICE agent MAY send data on any valid pair before
    /// selected pairs have been produced"): while the agent is checking and
    /// `component` has neither a selected pair nor one kept through an ICE
    /// restart, the valid pair the controlling agent is nominating, else the
    /// valid pair of highest priority. Its check succeeded, which is the
    /// peer's consent (RFC 7675 section 5.1); it counts for at most the
    /// consent timeout after the component's first valid pair. `None`
    /// otherwise, and always once the agent is connected, disconnected,
    /// failed or closed: then [`Agent::path`] is the only path (section
    /// 12.1: once selected pairs are produced, data goes on them only).
    ///
    /// It is also `None` until a check from the peer arrived, authenticated
    /// with the local password: an agent answers checks before it knows the
    /// peer's description (the answerer's checks may arrive before the
    /// answer does), so a valid pair alone does not say that the peer is
    /// ready for data; a check of its own does (it holds our description).
    /// A peer that never checks (ICE lite) gets data once a pair is selected.
    ///
    /// For a handshake that may run ahead of nomination (DTLS-SRTP, as
    /// WebRTC stacks start it on the first valid pair); media waits for
    /// [`Agent::path`] and [`Event::Connected`].
    pub fn early_path(&self, component: Component) -> Option<Path> {
        if self.state != State::Checking || !self.previous.is_empty() {
            return None;
        }
        let c = self.comps.get(usize::from(component.get()).checked_sub(1)?)?;
        let fresh = c
            .first_valid
            .zip(self.last_now)
            .is_some_and(|(f, now)| now.saturating_duration_since(f) < self.cfg.timing.consent_timeout);
        if c.selected.is_some() || !fresh || !self.peer_checked {
            return None;
        }
        let valid = |p: &CheckPair| {
            p.component == component.get() && p.state == PairState::Succeeded && p.valid_local.is_some()
        };
        let pi = c.nominating.filter(|&pi| valid(&self.pairs[pi])).or_else(|| {
            self.pairs.iter().enumerate().filter(|(_, p)| valid(p)).max_by_key(|(_, p)| p.priority).map(|(i, _)| i)
        })?;
        let p = &self.pairs[pi];
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
        // TCP connections but the kept paths' close (RFC 6544 section 9.2
        // keeps those).
        let kept: Vec<(SocketAddr, SocketAddr)> = self.previous.iter().map(|(_, p)| (p.local, p.remote)).collect();
        self.tcp_close_all_but(&kept);
        self.tcp_pruned = false;
        // Peer-reflexive local candidates belonged to the old checks, and
        // so did the TCP connections opened for them.
        self.locals.retain(|l| l.kind != LocalKind::PeerReflexive && l.tcp != Tcp::Conn);
        self.remotes.clear();
        self.forget_mdns();
        self.pairs.clear();
        self.max_rtt = None;
        self.rtt_measured = false;
        self.paths_generation += 1;
        self.triggered.clear();
        self.txs.retain(|t| matches!(t.kind, TxKind::Gather { .. }));
        for c in &mut self.comps {
            // The old path's consent clock keeps running.
            *c = Comp { consent_last: c.consent_last, last_sent: c.last_sent, ..Comp::default() };
        }
        self.last_check = None;
        self.peer_checked = false;
        self.early = Vec::new();
        self.remote_done = false;
        self.stalled = false;
        tracing::debug!(
            ufrag = %self.local_creds.ufrag,
            kept_paths = self.previous.len(),
            "ICE restart: new local credentials, checks start over"
        );
        self.state = State::Checking;
        let again: Vec<Candidate> =
            self.locals.iter().filter(|l| self.usable(l) && l.tcp != Tcp::Conn).map(|l| l.cand.clone()).collect();
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
        tracing::debug!(
            remote_ufrag = %creds.ufrag,
            role = ?self.role(),
            pairs = self.pairs.len(),
            "ICE checking: the peer's credentials are known"
        );
        self.remote_key = Some(key);
        self.remote_creds = Some(creds);
        self.replay_early_requests(now);
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
        self.last_now = Some(now);
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
        let address = match self.cfg.mdns_host_names {
            true => Address::Mdns(self.conceal(addr.ip())),
            false => Address::Ip(addr.ip()),
        };
        let cand =
            Candidate::new(foundation, component, Transport::UDP, priority, address, addr.port(), CandidateType::HOST);
        self.locals.reserve_exact(1);
        self.locals.push(LocalCand {
            cand: cand.clone(),
            kind: LocalKind::Host,
            addr,
            base: addr,
            component: c,
            local_pref,
            tcp: Tcp::No,
        });
        let li = self.locals.len() - 1;
        tracing::debug!(%addr, component = c, relay_only = self.cfg.relay_only, "ICE local host candidate");
        if !self.cfg.relay_only {
            self.push_event(Event::Candidate(cand.clone()));
            // A lite agent forms no check list: its pairs are those the
            // peer's checks come over.
            let paired = if self.cfg.lite { 0 } else { self.remotes.len() };
            for ri in 0..paired {
                let r = &self.remotes[ri];
                if r.component == c && same_family(r.addr, addr) && !r.is_tcp() {
                    self.add_pair(li, ri);
                }
            }
        }
        let servers: Vec<SocketAddr> =
            self.cfg.stun_servers.iter().copied().filter(|s| !self.cfg.relay_only && same_family(*s, addr)).collect();
        for server in servers {
            self.send_gather(now, addr, server);
        }
        self.start_allocations(now, addr);
        self.handle_timeout(now);
        Ok(cand)
    }

    /// Says that every host candidate has been added. `CandidatesDone`
    /// follows once server-reflexive gathering ends or times out.
    pub fn end_of_local_candidates(&mut self, now: Instant) {
        self.local_done = true;
        self.handle_timeout(now);
    }

    /// Adds a remote candidate (at any time: trickle ICE, RFC 8838): UDP,
    /// or TCP with its `tcptype` (RFC 6544; a passive one is paired with
    /// this agent's active TCP candidates, active and simultaneous-open
    /// ones are kept but checked only when the peer connects).
    pub fn add_remote_candidate(&mut self, now: Instant, cand: &Candidate) -> Result<(), Error> {
        self.check_open()?;
        // Pairs formed here may start TURN permissions, timed from now.
        self.last_now = Some(now);
        if cand.transport.kind() == TransportKind::Tcp && cand.tcp_type().is_none() {
            return Err(Error::UnsupportedCandidate("a TCP candidate without tcptype"));
        }
        if !matches!(cand.transport.kind(), TransportKind::Udp | TransportKind::Tcp) {
            return Err(Error::UnsupportedCandidate("transport is neither UDP nor TCP"));
        }
        if cand.port == 0 {
            return Err(Error::UnsupportedCandidate("port 0"));
        }
        let c = cand.component.get();
        if c == 0 || c > self.cfg.components {
            return Err(Error::InvalidComponent(c));
        }
        if let Address::Mdns(name) = &cand.address {
            return self.hold_mdns(now, cand, name);
        }
        let Some(ip) = cand.address.ip() else {
            return Err(Error::UnsupportedCandidate("address is not an IP address"));
        };
        let addr = SocketAddr::new(ip, cand.port);
        let tcp = cand.transport.kind() == TransportKind::Tcp;
        if let Some(ri) = self.remotes.iter().position(|r| r.addr == addr && r.component == c && r.is_tcp() == tcp) {
            // A signaled candidate replaces what a check taught us.
            let r = &mut self.remotes[ri];
            if r.peer_reflexive {
                r.cand = cand.clone();
                r.peer_reflexive = false;
                self.recompute_priorities();
                self.reannounce_selected(ri);
            }
            return Ok(());
        }
        if self.remotes.len() >= self.cfg.limits.remote_candidates {
            self.stats.limit_hits += 1;
            return Err(Error::LimitReached("remote candidates"));
        }
        self.remotes.reserve_exact(1);
        self.remotes.push(RemoteCand { cand: cand.clone(), addr, component: c, peer_reflexive: false });
        let ri = self.remotes.len() - 1;
        tracing::debug!(%addr, kind = %cand.kind, component = c, "ICE remote candidate");
        // A lite agent forms no check list (see `add_host_candidate`).
        let paired = if self.cfg.lite { 0 } else { self.locals.len() };
        for li in 0..paired {
            let l = &self.locals[li];
            if l.is_base() && self.usable(l) && l.component == c && same_family(l.base, addr) && l.tcp.pairs_with(cand)
            {
                self.add_pair(li, ri);
            }
        }
        self.handle_timeout(now);
        Ok(())
    }

    /// The peer signaled end-of-candidates.
    pub fn end_of_remote_candidates(&mut self, now: Instant) {
        tracing::debug!(remote_candidates = self.remotes.len(), "ICE end of remote candidates");
        self.remote_done = true;
        self.handle_timeout(now);
    }

    /// Stops the agent: no more transmits, timers or events.
    pub fn close(&mut self) {
        if self.state != State::Closed {
            // A closed agent takes no datagram: its data paths are gone.
            self.paths_generation += 1;
            tracing::debug!("ICE agent closed");
        }
        self.tcp_close_all_but(&[]);
        self.state = State::Closed;
        self.txs.clear();
        self.triggered.clear();
        self.transmits.clear();
        // Deallocate (RFC 8656 section 7: a Refresh with LIFETIME 0).
        self.close_allocations();
        self.reallocs.clear();
        self.forget_mdns();
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
        for c in &self.turn {
            at(c.poll_timeout());
        }
        at(self.reallocs.iter().map(|r| r.at).min());
        if self.has_check_work() {
            at(self.next_check_at().or(self.last_now));
        }
        at(self.gather_deadline);
        at(self.tcp_deadline());
        at(self.mdns.iter().map(|h| h.deadline).min());
        for ci in 0..self.comps.len() {
            at(self.nomination_due(ci).map(|(_, due)| due));
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
        self.tcp_timeout(now);
        self.expire_mdns(now);
        self.turn_timeout(now);
        self.realloc_timeout(now);
        if !self.previous.is_empty() {
            let (comps, timeout) = (&self.comps, self.cfg.timing.consent_timeout);
            let before = self.previous.len();
            self.previous.retain(|(comp, _)| {
                let last = comps.get(usize::from(*comp).saturating_sub(1)).and_then(|c| c.consent_last);
                last.is_some_and(|l| now < l + timeout)
            });
            if self.previous.len() < before {
                tracing::info!(
                    timeout = ?self.cfg.timing.consent_timeout,
                    "ICE consent lost on the path kept through the restart; no new pair selected yet"
                );
                // Application data must stop (RFC 7675); checks go on.
                self.previous = Vec::new();
                self.paths_generation += 1;
                self.push_event(Event::Disconnected);
            }
        }
        if self.gather_deadline.is_some_and(|d| now >= d) {
            self.gather_deadline = None;
            for t in self.txs.iter().filter(|t| matches!(t.kind, TxKind::Gather { .. })) {
                tracing::debug!(server = %t.destination, "ICE gathering: the STUN server did not answer in time");
            }
            self.txs.retain(|t| !matches!(t.kind, TxKind::Gather { .. }));
            self.abandon_allocations();
        }
        self.maybe_nominate(now);
        if self.state == State::Connected && !self.tcp_pruned {
            self.tcp_pruned = true;
            self.tcp_prune();
        }
        if !self.cfg.lite
            && self.next_check_at().is_none_or(|t| now >= t)
            && self.remote_key.is_some()
            && let Some(p) = self.next_pair()
            && self.send_check(now, p)
        {
            self.last_check = Some(now);
        }
        self.consent(now);
        if !self.candidates_done
            && self.local_done
            && !self.txs.iter().any(|t| matches!(t.kind, TxKind::Gather { .. }))
            && !self.allocating()
        {
            self.candidates_done = true;
            self.gather_deadline = None;
            tracing::debug!(candidates = self.locals.len(), "ICE gathering done");
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
        if let Some(r) = self.receive_from_relay(now, local, remote, data) {
            return r;
        }
        self.receive_on(now, local, remote, data)
    }

    /// [`Agent::handle_receive`] for a datagram on `local` (a host base, or
    /// a relayed address when a TURN server relayed it) from `remote`.
    fn receive_on(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr, data: &[u8]) -> Receive {
        if !stun::is_stun(data) {
            let pair =
                self.pairs.iter_mut().find(|p| p.base == local && p.remote_addr == remote && p.carries_data()).map(
                    |p| {
                        p.counters.packets_received += 1;
                        p.counters.bytes_received += data.len() as u64;
                        p.component
                    },
                );
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
            // A keepalive (RFC 8445 section 11): taken over a data path only,
            // and it changes nothing, so time is not moved for it.
            Class::Indication if !self.is_data_path(local, remote) => return self.drop_with(DropReason::UnknownPath),
            Class::Indication => {
                return match stun::decode(data, None) {
                    Ok(_) => Receive::Stun,
                    Err(e) => self.drop_decode(e),
                };
            }
        };
        if r == Receive::Stun {
            self.handle_timeout(now);
        }
        r
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
            self.push_transmit(Transmit::udp(local, src, out));
        }
    }

    fn push_transmit(&mut self, t: Transmit) {
        if self.relay_send(&t) {
            return;
        }
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
        tracing::trace!(?reason, "ICE dropped a datagram");
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
        self.pairs.iter().map(|p| {
            let local = &self.locals[p.valid_local.unwrap_or(p.local)];
            PairInfo {
                local: p.base,
                remote: p.remote_addr,
                component: p.component,
                state: p.state,
                priority: p.priority,
                nominated: p.nominated,
                local_kind: local.cand.kind.kind(),
                remote_kind: self.remotes[p.remote].cand.kind.kind(),
                relay_protocol: self.turn.iter().find(|c| c.relayed() == Some(p.base)).map(|c| c.transport()),
                tcp_type: local.cand.tcp_type(),
                counters: p.counters,
            }
        })
    }

    /// The longest round trip a check or consent request took (one answered
    /// without a retransmission) on any pair since the agent started or
    /// restarted; until there is one, a guess from retransmitted requests
    /// (from their last transmission to the response); `None` before any
    /// response.
    pub fn round_trip(&self) -> Option<Duration> {
        self.max_rtt
    }

    /// The selected pair of `component`, as [`Agent::candidate_pairs`]
    /// shows it (while connected, or kept through an ICE restart: the pair
    /// [`Agent::path`] gives).
    pub fn selected_pair(&self, component: Component) -> Option<PairInfo> {
        let path = self.path(component)?;
        self.candidate_pairs().find(|p| p.local == path.local && p.remote == path.remote)
    }

    /// Counts an application datagram the driver sent from `local` to
    /// `remote` (its first octet says it is not STUN: RFC 7983) in the
    /// counters of that pair, if it is one (see [`PairCounters`]). The
    /// selected pairs are looked at first.
    pub fn count_sent(&mut self, local: SocketAddr, remote: SocketAddr, datagram: &[u8]) {
        if datagram.first().is_none_or(|&b| b < 4) {
            return;
        }
        let on = |p: &CheckPair| p.base == local && p.remote_addr == remote;
        let pi = self.comps.iter().filter_map(|c| c.selected).find(|&pi| on(&self.pairs[pi]));
        let Some(pi) = pi.or_else(|| self.pairs.iter().position(on)) else { return };
        let c = &mut self.pairs[pi].counters;
        c.packets_sent += 1;
        c.bytes_sent += datagram.len() as u64;
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
    use std::time::Duration;

    use super::*;
    use crate::stun::CheckAttrs;

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
        let tcp = Candidate::parse("candidate:1 1 tcp 1 127.0.0.1 9 typ host").unwrap();
        assert_eq!(
            a.add_remote_candidate(now, &tcp),
            Err(Error::UnsupportedCandidate("a TCP candidate without tcptype"))
        );
        let sctp = Candidate::parse("candidate:1 1 sctp 1 127.0.0.1 9 typ host").unwrap();
        assert_eq!(
            a.add_remote_candidate(now, &sctp),
            Err(Error::UnsupportedCandidate("transport is neither UDP nor TCP"))
        );
        let active = Candidate::parse("candidate:1 1 tcp 1 127.0.0.1 9 typ host tcptype active").unwrap();
        assert_eq!(a.add_remote_candidate(now, &active), Ok(()));
        assert_eq!(a.pair_count(), 0);
        let mdns = Candidate::parse("candidate:1 1 udp 1 a.b.local 9 typ host").unwrap();
        assert_eq!(
            a.add_remote_candidate(now, &mdns),
            Err(Error::UnsupportedCandidate("an mDNS name that is not one label and .local"))
        );
        let fqdn = Candidate::parse("candidate:1 1 udp 1 host.example.com 9 typ host").unwrap();
        assert!(a.add_remote_candidate(now, &fqdn).is_err());
        // A browser's name is held until it is resolved.
        let mdns = Candidate::parse("candidate:1 1 udp 1 abc.local 9 typ host").unwrap();
        assert_eq!(a.add_remote_candidate(now, &mdns), Ok(()));
        assert_eq!((a.mdns_pending(), a.poll_mdns_query().as_deref()), (1, Some("abc.local")));
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

    /// The configured Ta is clamped to 5 ms..=10 s; without a proposal from
    /// the peer the agent paces at 50 ms at least (RFC 8445 section 14.2).
    #[test]
    fn the_local_ta_is_clamped_and_the_peer_defaults_to_50_ms() {
        let ms = Duration::from_millis;
        for (ta, alone, with_5) in [
            (ms(0), ms(50), ms(5)),
            (ms(5), ms(50), ms(5)),
            (ms(70), ms(70), ms(70)),
            (Duration::MAX, Timing::MAX_PACING, Timing::MAX_PACING),
        ] {
            let timing = Timing { ta, ..Timing::default() };
            let mut a = Agent::new(AgentConfig { timing, ..AgentConfig::default() }).unwrap();
            assert_eq!(a.pacing(), alone, "{ta:?}");
            a.set_remote_pacing(Some(ms(5))).unwrap();
            assert_eq!(a.pacing(), with_5, "{ta:?}");
            a.set_remote_pacing(None).unwrap();
            assert_eq!(a.pacing(), alone, "{ta:?}");
        }
        assert_eq!(Timing::default().ta, Timing::MIN_PACING, "rtc proposes 5 ms");
        let mut a = Agent::new(AgentConfig::default()).unwrap();
        assert_eq!(a.set_remote_pacing(Some(ms(10_001))), Err(Error::InvalidPacing(ms(10_001))));
        a.set_remote_pacing(Some(ms(1))).unwrap();
        assert_eq!(a.pacing(), ms(5), "under the floor: 5 ms");
    }

    /// RFC 8445 section 7.3: requests that come before the peer's
    /// credentials are answered at once; learning their sender, the
    /// triggered check and the data path wait for the credentials, and a
    /// request from another sender than the peer (a fork's sibling shares
    /// our credentials) is then forgotten, never a path of ours.
    #[test]
    fn requests_before_the_peers_credentials_wait_and_strangers_are_forgotten() {
        let t0 = Instant::now();
        let cfg = AgentConfig { role: Role::Controlled, seed: Some(9), ..AgentConfig::default() };
        let mut a = Agent::new(cfg).unwrap();
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        a.add_host_candidate(t0, Component::RTP, local).unwrap();
        let key = stun::short_term_key(&a.local_credentials().pwd).unwrap();
        let ours = a.local_credentials().ufrag.clone();
        let request = |sender: &str, id: u8| {
            let mut out = Vec::new();
            let attrs = CheckAttrs { priority: 1234, controlling: true, tiebreaker: 1, use_candidate: false };
            stun::binding_request(&mut out, [id; 12], Some((&format!("{ours}:{sender}"), &key)), Some(attrs)).unwrap();
            out
        };
        let peer: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let stranger: SocketAddr = "127.0.0.1:7001".parse().unwrap();
        assert_eq!(a.handle_receive(t0, local, peer, &request("peer", 1)), Receive::Stun);
        assert_eq!(a.handle_receive(t0, local, stranger, &request("strg", 2)), Receive::Stun);
        assert_eq!(a.handle_receive(t0, local, peer, &request("peer", 3)), Receive::Stun);
        let answered: Vec<SocketAddr> = std::iter::from_fn(|| a.poll_transmit()).map(|t| t.destination).collect();
        assert_eq!(answered, [peer, stranger, peer], "each answered at once");
        assert_eq!((a.pair_count(), a.remote_candidate_count(), a.data_paths().count()), (0, 0, 0));
        assert_eq!(a.early.len(), 2, "one per path and sender");
        assert_eq!(a.early_path(Component::RTP), None);
        let creds = Credentials { ufrag: "peer".into(), pwd: "peerpasswordpeerpassword".into() };
        a.set_remote_credentials(t0, creds).unwrap();
        assert_eq!(a.remote_peer_reflexive_count(), 1);
        assert_eq!(a.data_paths().collect::<Vec<_>>(), [(local, peer)], "the stranger's address is not ours");
        let sent: Vec<Transmit> = std::iter::from_fn(|| a.poll_transmit()).collect();
        assert_eq!(sent.len(), 1, "the triggered check");
        assert_eq!(sent[0].destination, peer);
        assert!(a.early.is_empty() && a.peer_checked);
    }

    /// ICE lite fixes the roles (RFC 8445 section 6.1.1): a lite agent
    /// answers a check carrying ICE-CONTROLLED with 487 whatever the
    /// tiebreakers, and a full agent whose peer is lite fails the pair on a
    /// 487 instead of turning controlled.
    #[test]
    fn lite_roles_are_kept_through_role_conflicts() {
        let t0 = Instant::now();
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let peer_addr: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let peer = Credentials { ufrag: "peer".into(), pwd: "peerpasswordpeerpassword".into() };
        let peer_key = stun::short_term_key(&peer.pwd).unwrap();
        // The lite agent, and a check from a peer that thinks it is
        // controlled with the largest tiebreaker there is.
        let mut lite = Agent::new(AgentConfig { lite: true, seed: Some(11), ..AgentConfig::default() }).unwrap();
        lite.add_host_candidate(t0, Component::RTP, local).unwrap();
        lite.set_remote_credentials(t0, peer.clone()).unwrap();
        let key = stun::short_term_key(&lite.local_credentials().pwd).unwrap();
        let username = format!("{}:peer", lite.local_credentials().ufrag);
        let attrs = CheckAttrs { priority: 1, controlling: false, tiebreaker: u64::MAX, use_candidate: false };
        let mut check = Vec::new();
        stun::binding_request(&mut check, [3; 12], Some((&username, &key)), Some(attrs)).unwrap();
        assert_eq!(lite.handle_receive(t0, local, peer_addr, &check), Receive::Stun);
        let answer = lite.poll_transmit().unwrap();
        assert_eq!(answer.contents[..2], [0x01, 0x11], "a Binding error response");
        assert_eq!(stun::decode(&answer.contents, Some(&key)).unwrap().error_code, Some(487));
        assert_eq!((lite.role(), lite.stats().role_conflicts, lite.pair_count()), (Role::Controlled, 1, 0));
        // The full agent with a lite peer: a 487 to its check fails the pair.
        let mut full =
            Agent::new(AgentConfig { role: Role::Controlled, seed: Some(12), ..AgentConfig::default() }).unwrap();
        full.set_remote_lite(t0, true).unwrap();
        full.add_host_candidate(t0, Component::RTP, local).unwrap();
        let cand = Candidate::parse("candidate:1 1 udp 2130706431 127.0.0.1 7000 typ host").unwrap();
        full.add_remote_candidate(t0, &cand).unwrap();
        full.set_remote_credentials(t0, peer).unwrap();
        let sent = full.poll_transmit().unwrap();
        let d = stun::decode(&sent.contents, Some(&peer_key)).unwrap();
        assert!(d.controlling.is_some() && d.controlled.is_none(), "controlling from the first check");
        let tid: [u8; 12] = sent.contents[8..20].try_into().unwrap();
        let mut error = Vec::new();
        stun::binding_error(&mut error, tid, 487, "Role Conflict", &peer_key).unwrap();
        assert_eq!(full.handle_receive(t0, local, peer_addr, &error), Receive::Stun);
        assert_eq!(full.role(), Role::Controlling);
        assert_eq!(full.candidate_pairs().next().unwrap().state, PairState::Failed);
        assert_eq!(full.stats().role_conflicts, 1);
    }

    /// A controlling agent with checks in flight on two pairs (foundations
    /// differ, so neither is frozen), sent at `t0` and `t0` + Ta.
    fn checking_two_pairs(limits: Limits) -> (Agent, Instant) {
        let t0 = Instant::now();
        let cfg = AgentConfig { seed: Some(5), limits, ..AgentConfig::default() };
        let mut a = Agent::new(cfg).unwrap();
        let peer = Credentials { ufrag: "peer".into(), pwd: "peerpasswordpeerpassword".into() };
        a.set_remote_credentials(t0, peer).unwrap();
        a.add_host_candidate(t0, Component::RTP, "127.0.0.1:5000".parse().unwrap()).unwrap();
        for line in [
            "candidate:1 1 udp 2130706431 127.0.0.1 7000 typ host",
            "candidate:2 1 udp 2130706175 127.0.0.1 7001 typ host",
        ] {
            a.add_remote_candidate(t0, &Candidate::parse(line).unwrap()).unwrap();
        }
        a.handle_timeout(t0 + a.pacing());
        while a.poll_transmit().is_some() {}
        assert_eq!(a.txs.len(), 2);
        assert!(a.pairs.iter().all(|p| p.state == PairState::InProgress));
        (a, t0)
    }

    /// RFC 8445 7.2.5.1 and 7.3.1.4: a role switch cancels the checks in
    /// flight (no retransmission, kept until the transaction would have
    /// ended) and queues their pairs for new checks with the new role.
    #[test]
    fn a_role_switch_cancels_the_checks_in_flight_and_queues_their_pairs() {
        let (mut a, t0) = checking_two_pairs(Limits::default());
        let old: Vec<[u8; 12]> = a.txs.iter().map(|t| t.id).collect();
        a.switch_role(false);
        assert!(a.txs.iter().all(|t| t.cancelled && t.sends == t.max_sends));
        // Sent at t0: 4 x 500 + 1000 + 2000 + 3200 ms (one RTO after each
        // of the first four transmissions, then doubling, capped; 7 in
        // all), as if it had been retransmitted to the end.
        let first = a.txs.iter().find(|t| t.id == old[0]).unwrap();
        assert_eq!(first.next_at - t0, Duration::from_millis(8_200));
        assert!(a.pairs.iter().all(|p| p.state == PairState::Waiting));
        assert_eq!(a.triggered.len(), 2);
        // Switching again does not cancel twice nor queue twice.
        a.switch_role(true);
        a.switch_role(false);
        assert_eq!(a.triggered.len(), 2);
        let t = t0 + Duration::from_millis(100);
        a.handle_timeout(t);
        a.handle_timeout(t + a.pacing());
        let live: Vec<&Tx> = a.txs.iter().filter(|t| !t.cancelled).collect();
        assert_eq!(live.len(), 2);
        for tx in live {
            assert!(!old.contains(&tx.id));
            assert!(matches!(tx.kind, TxKind::Check { controlling: false, .. }));
            let d = stun::decode(&tx.contents, a.remote_key.as_ref()).unwrap();
            assert!(d.integrity && d.controlling.is_none());
            assert_eq!(d.controlled, Some(a.tiebreaker));
        }
        // The cancelled ones are never sent again, and their end fails no
        // pair: the new checks (sent at 100 and 150 ms) are still running.
        let mut now = t;
        while let Some(next) = a.poll_timeout() {
            if next > t0 + Duration::from_millis(8_250) {
                break;
            }
            now = next;
            a.handle_timeout(now);
            while let Some(out) = a.poll_transmit() {
                let id: [u8; 12] = out.contents[8..20].try_into().unwrap();
                assert!(!old.contains(&id), "a cancelled check was retransmitted");
            }
        }
        assert!(now >= t0 + Duration::from_millis(8_200));
        assert!(a.txs.iter().all(|t| !old.contains(&t.id)), "gone once their time is up");
        assert_eq!(a.txs.len(), 2);
        assert!(a.pairs.iter().all(|p| p.state == PairState::InProgress));
    }

    /// Cancelled checks make room under the transaction cap for the checks
    /// that redo them.
    #[test]
    fn cancelled_checks_make_room_under_the_transaction_cap() {
        let (mut a, t0) = checking_two_pairs(Limits { transactions: 2, ..Limits::default() });
        a.set_role(t0 + Duration::from_millis(60), Role::Controlled);
        // One new check per Ta, each taking the place of a cancelled one.
        a.handle_timeout(t0 + Duration::from_millis(100));
        assert_eq!((a.txs.len(), a.txs.iter().filter(|t| t.cancelled).count()), (2, 1));
        a.handle_timeout(t0 + Duration::from_millis(150));
        assert_eq!(a.txs.len(), 2);
        assert!(a.txs.iter().all(|t| !t.cancelled && matches!(t.kind, TxKind::Check { controlling: false, .. })));
        assert_eq!(a.stats.limit_hits, 0);
    }

    /// Timers from a hostile or careless configuration: a cancelled check's
    /// end is computed without looping over every transmission it had left,
    /// and without overflow.
    #[test]
    fn cancelling_with_extreme_timing_never_panics() {
        let timing =
            Timing { max_transmits: u32::MAX, max_rto: Duration::from_secs(u64::MAX / 4), ..Timing::default() };
        let t0 = Instant::now();
        let mut a = Agent::new(AgentConfig { timing, seed: Some(6), ..AgentConfig::default() }).unwrap();
        let peer = Credentials { ufrag: "peer".into(), pwd: "peerpasswordpeerpassword".into() };
        a.set_remote_credentials(t0, peer).unwrap();
        a.add_host_candidate(t0, Component::RTP, "127.0.0.1:5000".parse().unwrap()).unwrap();
        let cand = Candidate::parse("candidate:1 1 udp 2130706431 127.0.0.1 7000 typ host").unwrap();
        a.add_remote_candidate(t0, &cand).unwrap();
        assert_eq!(a.txs.len(), 1);
        a.set_role(t0, Role::Controlled);
        assert!(a.txs[0].cancelled && a.txs[0].next_at > t0);
        assert_eq!(a.role(), Role::Controlled);
        // A closed agent takes the role and sends nothing.
        a.close();
        a.set_role(t0, Role::Controlling);
        assert_eq!(a.role(), Role::Controlling);
        assert!(a.poll_transmit().is_none());
    }
}
