//! ICE-TCP (RFC 6544): passive and active host candidates, their pairing
//! and priorities, connections opened for checks, and connections closed.
//!
//! The agent names a TCP connection by its two addresses, as it names a
//! UDP path: a connection it accepted by the listener's address (the
//! passive candidate's base) and the peer's, one it opened by the
//! connection's own local address and the peer's passive candidate. Those
//! local addresses are TCP sockets', never a UDP base of the agent, so a
//! pair's `(base, remote)` names its path whatever the transport. The
//! connection's local address becomes a base of its own (`Tcp::Conn`),
//! which takes the peer's checks and data and is never signaled.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtc_candidate::{
    Address, Candidate, CandidateType, Component, Extension, Foundation, TcpType, Transport, TransportKind,
    TypePreference, candidate_priority,
};

use super::{Agent, CheckPair, Event, LocalCand, LocalKind, PairState, RemoteCand, TcpCommand, TxKind};
use crate::error::Error;

/// How long a connectivity check over TCP waits for its response. It is
/// sent once (RFC 6544 section 7.1: TCP delivers it or the connection
/// fails), so this is the whole transaction.
pub const TCP_CHECK_TIMEOUT: Duration = Duration::from_secs(8);

/// How long opening a connection for a check may take before its pair
/// fails.
const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(8);

/// Type preference of TCP host candidates: below UDP host (126) and
/// server-reflexive (100) ones, as RFC 6544 section 4.2 recommends for RTP
/// (any working UDP path first), above relayed ones (0): a direct TCP path
/// beats a relay.
const HOST_TCP: u8 = 90;

/// Type preference of the peer-reflexive candidates TCP checks announce
/// (PRIORITY): below UDP's 110 in the same way.
pub(super) const PRFLX_TCP: u8 = 80;

/// RFC 6544 section 4.2: the direction preference of host candidates,
/// active 6, passive 4, in the top three bits of the local preference.
const ACTIVE_PREF: u16 = 6 << 13;
const PASSIVE_PREF: u16 = 4 << 13;

/// What a local candidate is, as far as TCP goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tcp {
    /// UDP.
    No,
    /// A passive TCP candidate: its base is a listener's address.
    Passive,
    /// An active TCP candidate: its base is its IP address with port 9, no
    /// socket's; its checks open connections.
    Active,
    /// A connection this agent opened from an active candidate: its base
    /// is the connection's local address. Never signaled.
    Conn,
}

impl Tcp {
    /// Whether the candidate is a TCP one.
    pub(super) fn is_tcp(self) -> bool {
        self != Tcp::No
    }

    /// Whether a local candidate of this kind is paired with the remote
    /// candidate `remote` when either is added: UDP with UDP, active with
    /// passive (RFC 6544 section 6.2). A passive candidate's pairs are made
    /// by the peer's checks, which come over the connection it opened.
    pub(super) fn pairs_with(self, remote: &Candidate) -> bool {
        let tcp = remote.transport.kind() == TransportKind::Tcp;
        match self {
            Tcp::No => !tcp,
            Tcp::Active => tcp && remote.tcp_type() == Some(TcpType::Passive),
            Tcp::Passive | Tcp::Conn => false,
        }
    }
}

impl RemoteCand {
    /// Whether it is a TCP candidate.
    pub(super) fn is_tcp(&self) -> bool {
        self.cand.transport.kind() == TransportKind::Tcp
    }
}

/// A connection being opened for the check of a pair.
#[derive(Debug)]
pub(super) struct TcpConnect {
    pair: usize,
    deadline: Instant,
}

impl CheckPair {
    /// Whether the pair runs over a TCP connection that exists: one the
    /// agent opened, or one the peer opened to a passive candidate (its
    /// check came over it).
    fn has_connection(&self, locals: &[LocalCand]) -> bool {
        match locals[self.local].tcp {
            Tcp::Conn => true,
            Tcp::Passive => self.heard,
            Tcp::No | Tcp::Active => false,
        }
    }
}

impl Agent {
    /// Adds ICE-TCP host candidates (RFC 6544 section 5.1) for a TCP
    /// listener the driver bound at `listen`, and signals them as
    /// [`Event::Candidate`]: a passive candidate at `listen` and an active
    /// one at its IP address (port 9, as section 4.5 says: its connections
    /// come from any port). A lite agent opens no connection and adds the
    /// passive one only. Returns the candidates added.
    ///
    /// The driver accepts connections on `listen`, frames what goes over
    /// them as RFC 4571 says, and hands each message that arrives to
    /// [`Agent::handle_receive`] with `listen` and the peer's address; it
    /// opens connections when [`Agent::poll_tcp_command`] says so. `listen`
    /// must not be the address of any UDP socket of the agent.
    pub fn add_tcp_host_candidates(
        &mut self,
        now: Instant,
        component: Component,
        listen: SocketAddr,
    ) -> Result<Vec<Candidate>, Error> {
        self.check_open()?;
        self.last_now = Some(now);
        let c = component.get();
        if c == 0 || c > self.cfg.components {
            return Err(Error::InvalidComponent(c));
        }
        if listen.port() == 0 || listen.ip().is_unspecified() {
            return Err(Error::UnsupportedCandidate("a TCP listener needs its own address and port"));
        }
        let active_base = SocketAddr::new(listen.ip(), 9);
        if self.locals.iter().any(|l| l.base == listen || (l.tcp == Tcp::Active && l.base == active_base)) {
            return Err(Error::Duplicate("TCP host candidate address"));
        }
        let kinds: &[Tcp] = if self.cfg.lite { &[Tcp::Passive] } else { &[Tcp::Passive, Tcp::Active] };
        if self.locals.len() + kinds.len() > self.cfg.limits.local_candidates {
            self.stats.limit_hits += 1;
            return Err(Error::LimitReached("local candidates"));
        }
        let earlier = self.locals.iter().filter(|l| l.tcp == Tcp::Passive && l.component == c).count();
        // Later interfaces get lower preferences; IPv6 first (RFC 8421).
        let other: u16 = if listen.is_ipv6() { 8191 } else { 8191 - 256 };
        let other = other.saturating_sub(u16::try_from(earlier).unwrap_or(u16::MAX));
        let foundation = Foundation::compute(&CandidateType::HOST, listen.ip(), None, &Transport::TCP);
        let address = match self.cfg.mdns_host_names {
            true => Address::Mdns(self.conceal(listen.ip())),
            false => Address::Ip(listen.ip()),
        };
        let mut added = Vec::with_capacity(kinds.len());
        for &tcp in kinds {
            let (base, dir, tcp_type) = match tcp {
                Tcp::Active => (active_base, ACTIVE_PREF, TcpType::Active),
                _ => (listen, PASSIVE_PREF, TcpType::Passive),
            };
            let local_pref = dir | other;
            let priority = candidate_priority(TypePreference::new(HOST_TCP), local_pref, component);
            let mut cand = Candidate::new(
                foundation,
                component,
                Transport::TCP,
                priority,
                address.clone(),
                base.port(),
                CandidateType::HOST,
            );
            cand.set_extension(Extension::TcpType(tcp_type));
            self.locals.reserve_exact(1);
            self.locals.push(LocalCand {
                cand: cand.clone(),
                kind: LocalKind::Host,
                addr: base,
                base,
                component: c,
                local_pref,
                tcp,
            });
            let li = self.locals.len() - 1;
            tracing::debug!(%base, component = c, tcptype = tcp_type.as_str(), "ICE local TCP host candidate");
            if self.cfg.relay_only {
                continue;
            }
            self.push_event(Event::Candidate(cand.clone()));
            added.push(cand);
            if tcp == Tcp::Active {
                for ri in 0..self.remotes.len() {
                    let r = &self.remotes[ri];
                    if r.component == c && super::same_family(r.addr, listen) && tcp.pairs_with(&r.cand) {
                        self.add_pair(li, ri);
                    }
                }
            }
        }
        self.handle_timeout(now);
        Ok(added)
    }

    /// Whether the agent has TCP candidates (so
    /// [`Agent::poll_tcp_command`] may have something).
    pub fn uses_tcp(&self) -> bool {
        self.locals.iter().any(|l| l.tcp.is_tcp())
    }

    /// The next thing the driver must do about ICE-TCP connections.
    #[must_use]
    pub fn poll_tcp_command(&mut self) -> Option<TcpCommand> {
        let c = self.tcp_commands.pop_front();
        if c.is_none() && self.tcp_commands.capacity() > 0 {
            self.tcp_commands = std::collections::VecDeque::new();
        }
        c
    }

    /// The connection [`TcpCommand::Connect`] asked for, from the active
    /// candidate `local` to `remote`, is open, from `connection` (its local
    /// address): the pair's check goes over it now. A connection the agent
    /// no longer waits for is closed again.
    pub fn tcp_connected(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr, connection: SocketAddr) {
        self.last_now = Some(now);
        let Some(i) = self.connecting(local, remote) else {
            self.push_tcp_command(TcpCommand::Close { local: connection, remote });
            return;
        };
        let pi = self.tcp_connecting.swap_remove(i).pair;
        let clash = self.locals.iter().any(|l| l.base == connection);
        // A connection opened again (RFC 6544 section 11.1) takes the place
        // of the one that closed, if no pair uses that any more.
        let unused = (0..self.locals.len()).find(|&li| {
            let l = &self.locals[li];
            l.tcp == Tcp::Conn
                && l.component == self.pairs[pi].component
                && l.base.ip() == connection.ip()
                && !self.pairs.iter().any(|p| p.local == li || p.valid_local == Some(li))
        });
        if !clash && let Some(li) = unused {
            let l = &mut self.locals[li];
            (l.addr, l.base) = (connection, connection);
            let p = &mut self.pairs[pi];
            (p.local, p.base, p.state) = (li, connection, PairState::Waiting);
            self.paths_generation += 1;
            pair_event!(tracing::Level::DEBUG, self, pi, %connection, "ICE-TCP connection open again: checking the pair over it");
            if self.send_check(now, pi) {
                self.last_check = Some(now);
            }
            self.handle_timeout(now);
            return;
        }
        if clash || self.locals.len() >= self.cfg.limits.local_candidates {
            // Its address is another base's (a UDP socket with the same
            // port number): the agent could not tell their paths apart.
            self.stats.limit_hits += u64::from(!clash);
            self.push_tcp_command(TcpCommand::Close { local: connection, remote });
            self.pairs[pi].state = PairState::Failed;
            pair_event!(tracing::Level::DEBUG, self, pi, %connection, "ICE pair failed: its TCP connection is unusable");
            self.handle_timeout(now);
            return;
        }
        let l = &self.locals[self.pairs[pi].local];
        let conn = LocalCand {
            cand: l.cand.clone(),
            kind: LocalKind::Host,
            addr: connection,
            base: connection,
            component: l.component,
            local_pref: l.local_pref,
            tcp: Tcp::Conn,
        };
        self.locals.reserve_exact(1);
        self.locals.push(conn);
        let p = &mut self.pairs[pi];
        p.local = self.locals.len() - 1;
        p.base = connection;
        p.state = PairState::Waiting;
        self.paths_generation += 1;
        pair_event!(tracing::Level::DEBUG, self, pi, %connection, "ICE-TCP connection open: checking the pair over it");
        if self.send_check(now, pi) {
            self.last_check = Some(now);
        }
        self.handle_timeout(now);
    }

    /// The TCP connection between `local` and `remote` closed (or, with an
    /// active candidate's address as `local`, could not be opened): the
    /// pairs over it fail, with the checks in flight on it. RFC 6544
    /// section 11.1: a selected pair whose connection this agent opened is
    /// opened again at once and checked over the new connection (it stays
    /// selected; data waits meanwhile); one the peer opened waits for the
    /// peer to reopen it (see `tcp_adopt`). Should that not happen, consent
    /// runs out and the application restarts ICE.
    pub fn tcp_closed(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr) {
        self.last_now = Some(now);
        if let Some(i) = self.connecting(local, remote) {
            let pi = self.tcp_connecting.swap_remove(i).pair;
            self.pairs[pi].state = PairState::Failed;
            pair_event!(tracing::Level::DEBUG, self, pi, "ICE pair failed: the TCP connection could not be opened");
            self.handle_timeout(now);
            return;
        }
        let mut any = false;
        let mut reopen = Vec::new();
        for pi in 0..self.pairs.len() {
            let p = &self.pairs[pi];
            if p.base != local || p.remote_addr != remote || !p.has_connection(&self.locals) {
                continue;
            }
            any = true;
            let selected = self.comps[usize::from(p.component - 1)].selected == Some(pi);
            if selected && let Some(active) = self.active_of(p.local) {
                let base = self.locals[active].base;
                let p = &mut self.pairs[pi];
                (p.local, p.base, p.valid_local, p.state) = (active, base, None, PairState::Waiting);
                pair_event!(
                    tracing::Level::INFO,
                    self,
                    pi,
                    "ICE-TCP connection of the selected pair closed: reopening it"
                );
                reopen.push(pi);
                continue;
            }
            let p = &mut self.pairs[pi];
            p.state = PairState::Failed;
            p.heard = false;
            pair_event!(tracing::Level::DEBUG, self, pi, "ICE pair failed: its TCP connection closed");
        }
        if !any {
            return;
        }
        self.txs.retain(|t| {
            !(t.source == local
                && t.destination == remote
                && matches!(t.kind, TxKind::Check { .. } | TxKind::Consent { .. }))
        });
        self.paths_generation += 1;
        for pi in reopen {
            self.tcp_connect(now, pi);
        }
        self.handle_timeout(now);
    }

    /// Whether pair `pi` runs over a connection the peer opened to the
    /// passive candidate of its component's selected pair, from that
    /// pair's remote IP address, while the selected pair's own connection
    /// is gone: the peer reopened it (RFC 6544 section 11.1). The selected
    /// pair, if so. Its checks are answered with a triggered check although
    /// the component has its selected pair.
    pub(super) fn tcp_reopened(&self, pi: usize) -> Option<usize> {
        let p = &self.pairs[pi];
        if self.state != super::State::Connected || self.locals[p.local].tcp != Tcp::Passive {
            return None;
        }
        let si = self.comps[usize::from(p.component - 1)].selected.filter(|&si| si != pi)?;
        let s = &self.pairs[si];
        (s.local == p.local && s.remote_addr.ip() == p.remote_addr.ip() && !s.has_connection(&self.locals))
            .then_some(si)
    }

    /// The active candidate a connection (local candidate `li`, `Tcp::Conn`)
    /// was opened from.
    fn active_of(&self, li: usize) -> Option<usize> {
        let c = &self.locals[li];
        if c.tcp != Tcp::Conn {
            return None;
        }
        self.locals
            .iter()
            .position(|l| l.tcp == Tcp::Active && l.component == c.component && l.base.ip() == c.base.ip())
    }

    /// RFC 6544 section 11.1, the side that accepted the connection: once
    /// the selected pair's connection (to a passive candidate) closed, a
    /// check that succeeds over a new connection from the same peer address
    /// to the same passive candidate makes that pair the selected one: the
    /// peer reopened the connection.
    pub(super) fn tcp_adopt(&mut self, now: Instant, pi: usize) {
        let Some(si) = self.tcp_reopened(pi) else { return };
        let ci = usize::from(self.pairs[pi].component - 1);
        self.pairs[si].nominated = false;
        self.pairs[pi].nominated = true;
        let c = &mut self.comps[ci];
        (c.selected, c.consent_last, c.last_sent) = (Some(pi), Some(now), Some(now));
        self.paths_generation += 1;
        pair_event!(tracing::Level::INFO, self, pi, "ICE-TCP connection of the selected pair reopened by the peer");
        let p = &self.pairs[pi];
        let local = self.locals[p.valid_local.unwrap_or(p.local)].cand.clone();
        let remote = self.remotes[p.remote].cand.clone();
        if let Ok(component) = Component::new(p.component) {
            self.push_event(Event::ActiveCandidate { component, local, remote });
        }
    }

    /// Whether a path from `local` (a [`Path`](super::Path)'s) runs over an
    /// ICE-TCP connection, rather than a UDP socket or a relay.
    pub fn is_tcp_path(&self, local: SocketAddr) -> bool {
        self.is_tcp_base(local)
    }

    /// Whether `base` is the base of a TCP candidate or connection: its
    /// requests are sent once.
    pub(super) fn is_tcp_base(&self, base: SocketAddr) -> bool {
        self.locals.iter().any(|l| l.tcp.is_tcp() && l.base == base)
    }

    /// The check of pair `pi`, whose local candidate is active: opens its
    /// connection first (RFC 6544 section 7.1). False when one is already
    /// being opened.
    pub(super) fn tcp_connect(&mut self, now: Instant, pi: usize) -> bool {
        if self.tcp_connecting.iter().any(|c| c.pair == pi) || self.tcp_connecting.len() >= self.cfg.limits.pairs {
            return false;
        }
        let p = &mut self.pairs[pi];
        p.state = PairState::InProgress;
        let (local, remote) = (p.base, p.remote_addr);
        pair_event!(tracing::Level::TRACE, self, pi, "ICE-TCP connection asked for, for a check");
        self.tcp_connecting.push(TcpConnect { pair: pi, deadline: now + TCP_CONNECT_TIMEOUT });
        self.push_tcp_command(TcpCommand::Connect { local, remote });
        true
    }

    /// Connections not opened in time: their pairs fail.
    pub(super) fn tcp_timeout(&mut self, now: Instant) {
        while let Some(i) = self.tcp_connecting.iter().position(|c| c.deadline <= now) {
            let pi = self.tcp_connecting.swap_remove(i).pair;
            let (local, remote) = (self.pairs[pi].base, self.pairs[pi].remote_addr);
            self.push_tcp_command(TcpCommand::Close { local, remote });
            self.pairs[pi].state = PairState::Failed;
            pair_event!(tracing::Level::DEBUG, self, pi, "ICE pair failed: its TCP connection was not opened in time");
        }
    }

    /// When [`Agent::tcp_timeout`] has work.
    pub(super) fn tcp_deadline(&self) -> Option<Instant> {
        self.tcp_connecting.iter().map(|c| c.deadline).min()
    }

    /// Asks the driver to close every TCP connection but those of `keep`
    /// (RFC 6544 section 8: once ICE selected its pairs; all of them when
    /// the agent closes).
    pub(super) fn tcp_close_all_but(&mut self, keep: &[(SocketAddr, SocketAddr)]) {
        let mut close = Vec::new();
        for p in &self.pairs {
            if p.has_connection(&self.locals) && !keep.contains(&(p.base, p.remote_addr)) {
                close.push((p.base, p.remote_addr));
            }
        }
        for c in &self.tcp_connecting {
            let p = &self.pairs[c.pair];
            close.push((p.base, p.remote_addr));
        }
        self.tcp_connecting.clear();
        for (local, remote) in close {
            self.push_tcp_command(TcpCommand::Close { local, remote });
        }
    }

    /// Once every component has its selected pair: the TCP connections of
    /// the other pairs are closed, and their pairs set Failed (nothing goes
    /// over them any more).
    pub(super) fn tcp_prune(&mut self) {
        let keep: Vec<(SocketAddr, SocketAddr)> = self
            .comps
            .iter()
            .filter_map(|c| c.selected)
            .map(|pi| (self.pairs[pi].base, self.pairs[pi].remote_addr))
            .collect();
        let before = self.tcp_commands.len();
        self.tcp_close_all_but(&keep);
        if self.tcp_commands.len() == before {
            return;
        }
        for pi in 0..self.pairs.len() {
            let p = &self.pairs[pi];
            if p.has_connection(&self.locals) && !keep.contains(&(p.base, p.remote_addr)) {
                let p = &mut self.pairs[pi];
                p.state = PairState::Failed;
                p.heard = false;
            }
        }
        self.paths_generation += 1;
        tracing::debug!(closed = self.tcp_commands.len() - before, "ICE-TCP connections of pairs not selected closed");
    }

    fn connecting(&self, local: SocketAddr, remote: SocketAddr) -> Option<usize> {
        self.tcp_connecting.iter().position(|c| {
            let p = &self.pairs[c.pair];
            p.base == local && p.remote_addr == remote
        })
    }

    fn push_tcp_command(&mut self, c: TcpCommand) {
        if self.tcp_commands.len() < self.cfg.limits.queue {
            self.tcp_commands.push_back(c);
        } else {
            self.stats.limit_hits += 1;
        }
    }
}
