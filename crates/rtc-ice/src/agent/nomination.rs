//! Nomination (RFC 8445 section 8): choosing the pair to nominate,
//! selecting nominated pairs, and becoming connected.

use std::time::Instant;

use rtc_candidate::Component;

use super::{Agent, Event, Nomination, PairState, State};

impl Agent {
    pub(super) fn maybe_nominate(&mut self, now: Instant) {
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
                pair_event!(tracing::Level::DEBUG, self, bi, "ICE nominating pair");
                self.comps[ci].nominating = Some(bi);
                self.pairs[bi].use_candidate_pending = true;
                self.triggered.retain(|&p| p != bi);
                self.triggered.push_front(bi);
            }
        }
    }

    /// Marks `pi` nominated and selects, for its component, the
    /// highest-priority nominated valid pair.
    pub(super) fn nominate(&mut self, now: Instant, pi: usize) {
        if matches!(self.state, State::Disconnected | State::Failed | State::Closed) {
            return;
        }
        if !self.pairs[pi].nominated {
            pair_event!(tracing::Level::DEBUG, self, pi, "ICE pair nominated");
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
            // A lite agent sends no consent checks (RFC 7675 section 1).
            c.consent_next = (!self.cfg.lite).then(|| now + interval);
            c.last_sent = Some(now);
            pair_event!(tracing::Level::DEBUG, self, best, "ICE pair selected");
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
            tracing::debug!(pairs = self.pairs.len(), role = ?self.role(), "ICE connected");
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
    pub(super) fn compact(&mut self) {
        self.locals.shrink_to_fit();
        self.remotes.shrink_to_fit();
        self.pairs.shrink_to_fit();
        self.txs.shrink_to_fit();
        self.triggered.shrink_to_fit();
        self.reflexive.shrink_to_fit();
        self.cfg.stun_servers.shrink_to_fit();
    }

    /// Announces again the selected pairs whose remote candidate `ri` was
    /// just signaled (or resolved from an mDNS name) after a check had made
    /// it peer-reflexive: the pair is the same, its remote candidate is now
    /// the signaled one.
    pub(super) fn reannounce_selected(&mut self, ri: usize) {
        for ci in 0..self.comps.len() {
            let Some(pi) = self.comps[ci].selected.filter(|pi| self.pairs[*pi].remote == ri) else { continue };
            let p = &self.pairs[pi];
            let local = self.locals[p.valid_local.unwrap_or(p.local)].cand.clone();
            let remote = self.remotes[ri].cand.clone();
            if let Ok(component) = u16::try_from(ci + 1).map_err(|_| ()).and_then(|c| Component::new(c).map_err(|_| ()))
            {
                self.push_event(Event::ActiveCandidate { component, local, remote });
            }
        }
    }
}
