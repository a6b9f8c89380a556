//! Receiving: connectivity-check requests (answered, learning
//! peer-reflexive candidates, triggering checks, repairing role conflicts),
//! responses (checks, consent, server-reflexive gathering), and the
//! side-effect-free routing test `accepts` with the data paths it uses.

use std::net::SocketAddr;
use std::time::Instant;

use rand::Rng;
use rtc_candidate::{
    Address, Candidate, CandidateType, Component, Foundation, Transport, TypePreference, candidate_priority,
};

use crate::stun::{self, Class};
use crate::url::TurnTransport;

use super::{
    Agent, DropReason, EarlyRequest, Event, LocalCand, LocalKind, Nomination, PairState, Receive, Reflexive,
    RemoteCand, State, Tcp, Transmit, TxKind, split_username,
};

impl Agent {
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
        if self.is_relay_server(local, remote) {
            // What the agent's TURN server sends to the allocation's base.
            return true;
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
                    && self.locals.iter().any(|l| l.is_base() && self.usable(l) && l.base == local)
            }
            Class::Success | Class::Error => self.txs.iter().any(|t| t.id == tid),
            Class::Indication => self.is_data_path(local, remote),
        }
    }

    /// The `(local base, remote)` address pairs over which
    /// [`Agent::handle_receive`] takes application data (datagrams that are
    /// not STUN): every candidate pair a check went through, either way (our
    /// check succeeded, or the peer's came over it), and during an ICE
    /// restart the paths selected before it (see [`Agent::restart`]). A pair
    /// formed only from a signaled candidate does not carry data: a peer
    /// could list another party's address. Each appears once. Empty once
    /// the agent is closed. A router keeps a table of these and refreshes
    /// it when [`Agent::paths_generation`] moves.
    pub fn data_paths(&self) -> impl Iterator<Item = (SocketAddr, SocketAddr)> + '_ {
        let open = self.state != State::Closed;
        let relays = self.relay_paths();
        let pairs = self.pairs.iter().filter(|p| p.carries_data()).map(|p| (p.base, p.remote_addr)).chain(relays);
        let old = self
            .previous
            .iter()
            .map(|(_, p)| (p.local, p.remote))
            .filter(|&(l, r)| !self.pairs.iter().any(|p| p.base == l && p.remote_addr == r && p.carries_data()));
        pairs.chain(old).filter(move |_| open)
    }

    /// A counter that changes whenever the set given by
    /// [`Agent::data_paths`] may have changed: a pair's first check went
    /// through (pairs are never removed one by one), an ICE restart, the pre-restart paths
    /// given up (a new pair selected, or their consent expired), the agent
    /// closed. A router compares it with the value it last saw and re-reads
    /// the paths only when it moved.
    pub fn paths_generation(&self) -> u64 {
        self.paths_generation
    }

    /// The rule of `handle_receive` for data: a pair a check went through,
    /// or a pre-restart path.
    pub(super) fn is_data_path(&self, local: SocketAddr, remote: SocketAddr) -> bool {
        self.pairs.iter().any(|p| p.base == local && p.remote_addr == remote && p.carries_data())
            || self.previous.iter().any(|(_, p)| p.local == local && p.remote == remote)
    }

    pub(super) fn on_request(
        &mut self,
        now: Instant,
        local: SocketAddr,
        src: SocketAddr,
        data: &[u8],
        tid: [u8; 12],
    ) -> Receive {
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
        let Some(li) = self.locals.iter().position(|l| l.is_base() && self.usable(l) && l.base == local) else {
            return self.drop_with(DropReason::UnknownPath);
        };
        // Role conflict, RFC 8445 section 7.3.1.1. ICE lite fixes the role
        // (section 6.1.1): the side that may not switch answers 487, so the
        // peer does. So does an agent that does not know its peer yet: the
        // request may come from another peer holding the same credentials
        // (forks share them), which must not turn this one's role; with the
        // real peer the 487 resolves the conflict all the same.
        let known = self.remote_creds.is_some();
        if self.controlling {
            if let Some(theirs) = d.controlling {
                self.stats.role_conflicts += 1;
                if self.remote_lite || self.tiebreaker >= theirs || !known {
                    tracing::debug!(
                        %src,
                        remote_lite = self.remote_lite,
                        "ICE role conflict: both controlling; we keep the role (tiebreaker, or the peer is lite), 487 sent"
                    );
                    self.respond_error(local, src, tid, 487, "Role Conflict");
                    return Receive::Stun;
                }
                tracing::debug!(%src, "ICE role conflict: both controlling; the peer's tiebreaker wins");
                self.switch_role(false);
            }
        } else if let Some(theirs) = d.controlled {
            self.stats.role_conflicts += 1;
            if !self.cfg.lite && self.tiebreaker >= theirs && known {
                tracing::debug!(%src, "ICE role conflict: both controlled; our tiebreaker wins");
                self.switch_role(true);
            } else {
                tracing::debug!(
                    %src,
                    lite = self.cfg.lite,
                    "ICE role conflict: both controlled; the peer must control (its tiebreaker, or we are lite), 487 sent"
                );
                self.respond_error(local, src, tid, 487, "Role Conflict");
                return Receive::Stun;
            }
        }
        let mut out = Vec::new();
        if stun::binding_success(&mut out, tid, src, &self.local_key).is_ok() {
            self.stats.responses_sent += 1;
            self.push_transmit(Transmit::udp(local, src, out));
        }
        if self.remote_creds.is_none() {
            // RFC 8445 section 7.3: a request that arrives before the
            // peer's description is answered at once, and the rest (7.3.1.3
            // to 7.3.1.5) waits for that description. It may be from another
            // peer altogether (forks share credentials), so nothing is
            // learned from it until its sender proves to be ours.
            let sender = d.username.as_deref().and_then(|u| u.split_once(':')).map_or("", |(_, r)| r);
            self.defer_request(local, src, prio, d.use_candidate, sender);
            return Receive::Stun;
        }
        self.after_request(now, li, src, prio, d.use_candidate);
        Receive::Stun
    }

    /// Keeps a request that arrived before the peer's credentials, for
    /// [`Agent::replay_early_requests`]; at most
    /// [`Limits::peer_reflexive`](super::Limits::peer_reflexive) of them,
    /// one per path and sender.
    fn defer_request(&mut self, local: SocketAddr, src: SocketAddr, priority: u32, use_candidate: bool, sender: &str) {
        if let Some(e) = self.early.iter_mut().find(|e| e.local == local && e.src == src && e.sender == sender) {
            e.priority = priority;
            e.use_candidate |= use_candidate;
            return;
        }
        if self.early.len() >= self.cfg.limits.peer_reflexive {
            self.stats.limit_hits += 1;
            return;
        }
        self.early.push(EarlyRequest { local, src, priority, use_candidate, sender: sender.to_owned() });
    }

    /// The peer's credentials are known: the requests that came before from
    /// it (its ufrag as the sender in USERNAME) go through the steps they
    /// skipped; those from anyone else are forgotten.
    pub(super) fn replay_early_requests(&mut self, now: Instant) {
        let Some(ufrag) = self.remote_creds.as_ref().map(|c| c.ufrag.clone()) else { return };
        for e in std::mem::take(&mut self.early) {
            if e.sender != ufrag {
                tracing::debug!(src = %e.src, "ICE early check from another peer than ours: forgotten");
                continue;
            }
            if let Some(li) = self.locals.iter().position(|l| l.is_base() && self.usable(l) && l.base == e.local) {
                self.after_request(now, li, e.src, e.priority, e.use_candidate);
            }
        }
    }

    /// RFC 8445 sections 7.3.1.3 to 7.3.1.5 for a request from the peer
    /// that arrived on host candidate `li` from `src`: a peer-reflexive
    /// remote candidate, a triggered check, and the nomination it carries.
    fn after_request(&mut self, now: Instant, li: usize, src: SocketAddr, prio: u32, use_candidate: bool) {
        // Signed with our password by the peer: it holds our description.
        self.peer_checked = true;
        let local = self.locals[li].base;
        let component = self.locals[li].component;
        // RFC 8445 7.3.1.3: learn a peer-reflexive remote candidate.
        let tcp = self.locals[li].tcp.is_tcp();
        let ri = match self.remotes.iter().position(|r| r.addr == src && r.component == component && r.is_tcp() == tcp)
        {
            Some(ri) => ri,
            None => {
                let prflx = self.remotes.iter().filter(|r| r.peer_reflexive).count();
                if prflx >= self.cfg.limits.peer_reflexive || self.remotes.len() >= self.cfg.limits.remote_candidates {
                    self.stats.limit_hits += 1;
                    return;
                }
                let Ok(comp) = Component::new(component) else { return };
                let mut cand = Candidate::new(
                    Foundation::from_u32(self.rng.random()),
                    comp,
                    if tcp { Transport::TCP } else { Transport::UDP },
                    prio,
                    Address::Ip(src.ip()),
                    src.port(),
                    CandidateType::PRFLX,
                );
                cand.socket_id = None;
                if tcp {
                    // RFC 6544 section 7.2: it connected to us.
                    cand.set_extension(rtc_candidate::Extension::TcpType(rtc_candidate::TcpType::Active));
                }
                tracing::debug!(addr = %src, component, "ICE remote peer-reflexive candidate (learned from a check)");
                self.remotes.reserve_exact(1);
                self.remotes.push(RemoteCand { cand, addr: src, component, peer_reflexive: true });
                self.remotes.len() - 1
            }
        };
        // RFC 8445 7.3.1.4: triggered checks.
        let pi = match self.pairs.iter().position(|p| p.base == local && p.remote_addr == src) {
            Some(pi) => pi,
            None => match self.add_pair(li, ri) {
                Some(pi) => pi,
                None => return,
            },
        };
        if !self.pairs[pi].heard {
            self.pairs[pi].heard = true;
            self.paths_generation += 1;
        }
        // It was answered with success before coming here.
        self.pairs[pi].counters.requests_received += 1;
        self.pairs[pi].counters.responses_sent += 1;
        let ci = usize::from(component - 1);
        if self.cfg.lite {
            self.lite_request(now, li, pi, use_candidate);
            return;
        }
        // A connection the peer reopened for the selected pair is checked
        // as if nothing were selected (RFC 6544 section 11.1).
        let done = self.comps[ci].selected.is_some() && self.tcp_reopened(pi).is_none();
        let nominate = use_candidate && !self.controlling;
        pair_event!(tracing::Level::TRACE, self, pi, use_candidate = use_candidate, "ICE check received");
        match self.pairs[pi].state {
            PairState::Succeeded => {}
            // RFC 8445 7.3.1.4: a check in flight on the pair is cancelled
            // (a response is still taken) and the pair checked again at
            // once: the peer's check shows the path works now, while ours
            // may have been lost (sent before the peer's permission or NAT
            // binding existed) and would wait for its retransmission.
            PairState::InProgress => {
                // (A nominating check leaves ours alone: the pair is
                // nominated when ours succeeds; so does aggressive
                // nomination, whose every check nominates.)
                let aggressive = self.controlling && self.cfg.nomination == Nomination::Aggressive;
                if !done && !nominate && !aggressive {
                    self.cancel_check_of(pi);
                    self.pairs[pi].state = PairState::Waiting;
                    self.enqueue_triggered(pi);
                }
            }
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
    }

    /// RFC 8445 sections 7.3.2 and 8.2 for a lite agent: a check with
    /// USE-CANDIDATE puts its pair (the local host candidate it arrived on,
    /// the address it came from) into the valid list, nominated, and a
    /// nominated pair for every component concludes ICE. No triggered
    /// check. A check over the selected pair also says the peer is still
    /// there: it refreshes the selected pair's liveness clock, which a lite
    /// agent keeps in place of consent (see `consent.rs`).
    fn lite_request(&mut self, now: Instant, li: usize, pi: usize, use_candidate: bool) {
        let ci = usize::from(self.pairs[pi].component - 1);
        pair_event!(tracing::Level::TRACE, self, pi, use_candidate = use_candidate, "ICE check received");
        if use_candidate {
            let p = &mut self.pairs[pi];
            if p.state != PairState::Succeeded || p.valid_local.is_none() {
                p.state = PairState::Succeeded;
                p.valid_local = Some(li);
                pair_event!(tracing::Level::DEBUG, self, pi, "ICE pair valid: the peer nominated it (lite)");
            }
            if self.comps[ci].first_valid.is_none() {
                self.comps[ci].first_valid = Some(now);
            }
            self.nominate(now, pi);
        }
        if self.comps[ci].selected == Some(pi) && self.state == State::Connected {
            self.comps[ci].consent_last = Some(now);
        }
    }

    pub(super) fn on_response(
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
                pair_event!(
                    tracing::Level::DEBUG,
                    self,
                    pair,
                    from = %src,
                    "ICE pair failed: the response came from another address"
                );
            }
            return self.drop_with(DropReason::UnknownPath);
        }
        if let (TxKind::Check { pair, .. } | TxKind::Consent { pair }, Class::Success) = (tx.kind, class) {
            let c = &mut self.pairs[pair].counters;
            c.responses_received += 1;
            // A request sent once gives the round trip; a retransmitted
            // one only a guess (the response may answer an earlier send),
            // taken for the agent's estimate while it has no better one.
            let rtt = now.saturating_duration_since(tx.last_sent);
            if tx.sends == 1 {
                c.current_round_trip_time = Some(rtt);
                c.total_round_trip_time += rtt;
                c.round_trip_time_measurements += 1;
                self.max_rtt = Some(self.max_rtt.map_or(rtt, |m| m.max(rtt)));
                self.rtt_measured = true;
            } else if !self.rtt_measured {
                self.max_rtt = Some(self.max_rtt.map_or(rtt, |m| m.max(rtt)));
            }
        }
        match tx.kind {
            TxKind::Gather { server } => match (class, d.mapped) {
                (Class::Success, Some(mapped)) => self.on_reflexive(server, tx.source, mapped),
                _ => tracing::debug!(
                    %server,
                    code = ?d.error_code,
                    "ICE gathering: the STUN server gave no mapped address"
                ),
            },
            TxKind::Consent { pair } => {
                if class == Class::Success {
                    let ci = usize::from(self.pairs[pair].component - 1);
                    if self.comps[ci].selected == Some(pair) && self.state == State::Connected {
                        self.comps[ci].consent_last = Some(now);
                        pair_event!(tracing::Level::TRACE, self, pair, "ICE consent refreshed");
                    }
                }
            }
            TxKind::Check { pair, use_candidate, controlling, priority } => {
                if class == Class::Error {
                    let conflict = d.error_code == Some(487);
                    self.stats.role_conflicts += u64::from(conflict);
                    // A lite peer is controlled and this agent keeps
                    // controlling (RFC 8445 section 6.1.1): its 487 fails
                    // the pair as any other error does.
                    if conflict && (tx.cancelled || !self.remote_lite) {
                        if tx.cancelled {
                            // Its role was already stale: the switch that
                            // cancelled it queued the pair again.
                            return Receive::Stun;
                        }
                        // RFC 8445 7.2.5.1: take the other role (this also
                        // redoes the other checks in flight), then check
                        // this pair again with the new role.
                        if controlling == self.controlling {
                            tracing::debug!(%src, "ICE role conflict: the peer answered 487");
                            self.switch_role(!controlling);
                        }
                        self.pairs[pair].state = PairState::Waiting;
                        self.enqueue_triggered(pair);
                    } else {
                        self.pairs[pair].state = PairState::Failed;
                        pair_event!(
                            tracing::Level::DEBUG,
                            self,
                            pair,
                            code = ?d.error_code,
                            "ICE pair failed: the peer answered the check with an error"
                        );
                    }
                    return Receive::Stun;
                }
                let Some(mapped) = d.mapped else {
                    self.pairs[pair].state = PairState::Failed;
                    pair_event!(
                        tracing::Level::DEBUG,
                        self,
                        pair,
                        "ICE pair failed: a response without a mapped address"
                    );
                    return self.drop_with(DropReason::Malformed);
                };
                // A cancelled check may still succeed (RFC 8445 7.3.1.4), but
                // it nominates nothing: its USE-CANDIDATE was the old role's.
                let nominated = use_candidate && controlling && self.controlling && !tx.cancelled;
                self.on_check_success(now, pair, mapped, priority, nominated);
            }
        }
        Receive::Stun
    }

    pub(super) fn on_check_success(
        &mut self,
        now: Instant,
        pi: usize,
        mapped: SocketAddr,
        prflx_priority: u32,
        nominated: bool,
    ) {
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
                let tcp = self.locals[self.pairs[pi].local].tcp;
                let transport = if tcp.is_tcp() { Transport::TCP } else { Transport::UDP };
                let mut cand = Candidate::new(
                    Foundation::compute(&CandidateType::PRFLX, base.ip(), None, &transport),
                    comp,
                    transport.clone(),
                    prflx_priority,
                    Address::Ip(mapped.ip()),
                    mapped.port(),
                    CandidateType::PRFLX,
                );
                cand.related_address = Some(Address::Ip(base.ip()));
                cand.related_port = Some(base.port());
                if tcp.is_tcp() {
                    let t = if tcp == Tcp::Passive {
                        rtc_candidate::TcpType::Passive
                    } else {
                        rtc_candidate::TcpType::Active
                    };
                    cand.set_extension(rtc_candidate::Extension::TcpType(t));
                }
                self.locals.reserve_exact(1);
                self.locals.push(LocalCand {
                    cand,
                    kind: LocalKind::PeerReflexive,
                    addr: mapped,
                    base,
                    component,
                    local_pref,
                    tcp,
                });
                self.locals.len() - 1
            }
            None => {
                self.stats.limit_hits += 1;
                self.pairs[pi].local
            }
        };
        let fnd = self.pairs[pi].foundation;
        let first = self.pairs[pi].state != PairState::Succeeded || self.pairs[pi].valid_local.is_none();
        {
            let p = &mut self.pairs[pi];
            p.state = PairState::Succeeded;
            p.valid_local = Some(vl);
        }
        if first {
            pair_event!(tracing::Level::DEBUG, self, pi, "ICE pair succeeded");
            self.paths_generation += 1;
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
        if first && self.locals[self.pairs[pi].local].kind == LocalKind::Relayed {
            // Data to a peer we reach through the relay goes as ChannelData.
            self.bind_relay_channel(now, base, self.pairs[pi].remote_addr);
        }
        if nominated || (!self.controlling && self.pairs[pi].nominate_on_success) {
            self.nominate(now, pi);
        }
        self.tcp_adopt(now, pi);
    }

    pub(super) fn on_reflexive(&mut self, server: SocketAddr, base: SocketAddr, mapped: SocketAddr) {
        if self.cfg.relay_only {
            return;
        }
        if self.reflexive.len() < self.cfg.limits.local_candidates {
            self.reflexive.push(Reflexive { server, base, mapped });
        }
        // RFC 8445 5.1.3: a candidate with the address and base of another
        // is redundant.
        if self.locals.iter().any(|l| l.addr == mapped && l.base == base) {
            return;
        }
        if self
            .add_server_candidate(LocalKind::ServerReflexive, base, (server, TurnTransport::Udp), mapped, base)
            .is_some()
        {
            tracing::debug!(%server, %base, %mapped, "ICE local server-reflexive candidate");
        }
    }

    /// Adds and signals a local candidate a server gave the host base
    /// `base`: server-reflexive (its base the host's) or relayed (its own
    /// base), at `addr`, with `related` as its related address. Returns its
    /// index; `None` at the cap or without that host.
    pub(super) fn add_server_candidate(
        &mut self,
        kind: LocalKind,
        base: SocketAddr,
        (server, transport): (SocketAddr, TurnTransport),
        addr: SocketAddr,
        related: SocketAddr,
    ) -> Option<usize> {
        if self.locals.len() >= self.cfg.limits.local_candidates {
            self.stats.limit_hits += 1;
            return None;
        }
        let host = self.locals.iter().find(|l| l.kind == LocalKind::Host && l.base == base)?;
        let (component, mut local_pref) = (host.component, host.local_pref);
        let comp = Component::new(component).ok()?;
        let (ctype, pref, own_base) = match kind {
            LocalKind::Relayed => {
                local_pref = super::relay::relay_local_pref(transport, local_pref);
                (CandidateType::RELAY, TypePreference::RELAYED, addr)
            }
            _ => (CandidateType::SRFLX, TypePreference::SERVER_REFLEXIVE, base),
        };
        // RFC 8445 section 5.1.1.3: the transport to the server is part of
        // the foundation (a relay over TCP is not one over UDP).
        let server_transport = Transport::new(transport.as_str()).unwrap_or(Transport::UDP);
        let mut cand = Candidate::new(
            Foundation::compute(&ctype, base.ip(), Some(server.ip()), &server_transport),
            comp,
            Transport::UDP,
            candidate_priority(pref, local_pref, comp),
            Address::Ip(addr.ip()),
            addr.port(),
            ctype,
        );
        // A concealed host address is not shown as the related address
        // either (0.0.0.0:9, as browsers write it).
        let related = match kind {
            LocalKind::ServerReflexive if self.cfg.mdns_host_names => SocketAddr::from(([0, 0, 0, 0], 9)),
            _ => related,
        };
        cand.related_address = Some(Address::Ip(related.ip()));
        cand.related_port = Some(related.port());
        self.locals.reserve_exact(1);
        self.locals.push(LocalCand {
            cand: cand.clone(),
            kind,
            addr,
            base: own_base,
            component,
            local_pref,
            tcp: Tcp::No,
        });
        self.push_event(Event::Candidate(cand));
        Some(self.locals.len() - 1)
    }
}
