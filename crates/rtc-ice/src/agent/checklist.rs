//! The check list: forming pairs, their priorities and states, pacing
//! checks (Ta), the triggered-check queue, role switches, and failure.

use std::time::Instant;

use rtc_candidate::{Component, TypePreference, candidate_priority, pair_priority};

use crate::stun::{self, CheckAttrs};

use super::{Agent, CheckPair, Comp, Event, Nomination, PairCounters, PairState, Role, State, TxKind};

impl Agent {
    pub(super) fn add_pair(&mut self, li: usize, ri: usize) -> Option<usize> {
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
        self.pairs.reserve_exact(1);
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
            heard: false,
            nominated: false,
            nominate_on_success: false,
            use_candidate_pending: false,
            counters: PairCounters::default(),
        });
        let pi = self.pairs.len() - 1;
        self.pairs[pi].priority = self.priority_of(pi);
        self.paths_generation += 1;
        self.stalled = false;
        if self.locals[li].kind == super::LocalKind::Relayed {
            // The server drops what the peer sends to the relayed address
            // until a permission for its IP is installed.
            self.relay_permission(base, remote_addr);
        }
        pair_event!(tracing::Level::TRACE, self, pi, state = ?self.pairs[pi].state, "ICE pair formed");
        Some(pi)
    }

    pub(super) fn priority_of(&self, pi: usize) -> u64 {
        let p = &self.pairs[pi];
        let l = self.locals[p.valid_local.unwrap_or(p.local)].cand.priority;
        let r = self.remotes[p.remote].cand.priority;
        if self.controlling { pair_priority(l, r) } else { pair_priority(r, l) }
    }

    pub(super) fn recompute_priorities(&mut self) {
        for pi in 0..self.pairs.len() {
            self.pairs[pi].priority = self.priority_of(pi);
        }
    }

    /// Switches role: after a 487 (RFC 8445 7.2.5.1), on a request that
    /// wins a role conflict (7.3.1.1), or by [`Agent::set_role`].
    ///
    /// Priorities depend on the role (6.1.2.3) and a nomination under way is
    /// the old role's. Checks in flight carry the old ICE-CONTROLLING or
    /// ICE-CONTROLLED attribute, and a retransmission repeats the request
    /// byte for byte under the same transaction id, so a peer that drops
    /// wrong-role requests would never answer them: they are cancelled
    /// (7.3.1.4) and each In-Progress pair is set Waiting and put on the
    /// triggered-check queue, so that it is checked again as a new
    /// transaction carrying the new role, as 7.2.5.1 does for the pair that
    /// got the 487. Pairs of components already selected are not checked
    /// again (8.1.2); their cancelled checks may still be answered.
    pub(super) fn switch_role(&mut self, controlling: bool) {
        tracing::debug!(role = ?if controlling { Role::Controlling } else { Role::Controlled }, "ICE role switch");
        self.controlling = controlling;
        self.recompute_priorities();
        for c in &mut self.comps {
            c.nominating = None;
        }
        for p in &mut self.pairs {
            p.use_candidate_pending = false;
        }
        for pi in self.cancel_checks() {
            let p = &self.pairs[pi];
            let selected = self.comps[usize::from(p.component - 1)].selected.is_some();
            if p.state == PairState::InProgress && !selected {
                self.pairs[pi].state = PairState::Waiting;
                self.enqueue_triggered(pi);
            }
        }
    }

    pub(super) fn enqueue_triggered(&mut self, pi: usize) {
        if !self.triggered.contains(&pi) && self.triggered.len() < self.cfg.limits.pairs {
            self.triggered.push_back(pi);
        }
    }

    pub(super) fn has_check_work(&self) -> bool {
        // A lite agent never checks (RFC 8445 section 2.5).
        !self.cfg.lite
            && self.remote_key.is_some()
            && (!self.triggered.is_empty()
                || self.pairs.iter().any(|p| {
                    matches!(p.state, PairState::Waiting | PairState::Frozen)
                        && self.comps[usize::from(p.component - 1)].selected.is_none()
                }))
    }

    /// The pair to check next: the triggered queue first, then the
    /// highest-priority Waiting pair, then (none Waiting) the highest-priority
    /// Frozen one, of components not yet selected.
    pub(super) fn next_pair(&mut self) -> Option<usize> {
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

    pub(super) fn send_check(&mut self, now: Instant, pi: usize) -> bool {
        if self.locals[self.pairs[pi].local].tcp == super::Tcp::Active {
            // RFC 6544 section 7.1: the connection first, then the check.
            return self.tcp_connect(now, pi);
        }
        if !self.room_for_tx() {
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
        let prflx =
            if l.tcp.is_tcp() { TypePreference::new(super::tcp::PRFLX_TCP) } else { TypePreference::PEER_REFLEXIVE };
        let priority = candidate_priority(prflx, l.local_pref, comp);
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
        pair_event!(tracing::Level::TRACE, self, pi, use_candidate, "ICE check sent");
        let kind = TxKind::Check { pair: pi, use_candidate, controlling: self.controlling, priority };
        self.start_tx(now, kind, source, destination, contents, self.cfg.timing.max_transmits);
        true
    }

    pub(super) fn check_failed(&mut self) {
        // A lite agent runs no check list and so never fails: it waits for
        // the peer's checks (RFC 8445 section 6.1.1: its state is Running).
        if self.cfg.lite
            || self.state != State::Checking
            || !self.candidates_done
            || self.remote_key.is_none()
            || (self.stalled && !self.remote_done)
        {
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
        if !hopeless {
            return;
        }
        if !self.remote_done || !self.mdns.is_empty() {
            // More remote candidates may come (trickle ICE, or an mDNS name
            // being resolved): not failed yet,
            // but worth saying once, since a call stuck here never connects.
            if !self.stalled && !self.pairs.is_empty() {
                self.stalled = true;
                tracing::info!(
                    pairs = self.pairs.len(),
                    local_candidates = self.locals.len(),
                    remote_candidates = self.remotes.len(),
                    "ICE has no path yet: every one of the {} candidate pairs checked failed; waiting for more remote \
                     candidates",
                    self.pairs.len()
                );
            }
            return;
        }
        tracing::warn!(
            pairs = self.pairs.len(),
            local_candidates = self.locals.len(),
            remote_candidates = self.remotes.len(),
            "ICE failed: no candidate pair succeeded after checking {} pairs",
            self.pairs.len()
        );
        self.state = State::Failed;
        self.txs.clear();
        self.push_event(Event::Failed);
    }
}
