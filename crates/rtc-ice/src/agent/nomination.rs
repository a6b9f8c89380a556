//! Nomination (RFC 8445 section 8): choosing the pair to nominate,
//! selecting nominated pairs, and becoming connected.

use std::time::{Duration, Instant};

use rtc_candidate::Component;

use super::{Agent, Event, Nomination, PairState, State, TxKind};

/// How long past twice the best valid pair's round trip a better pair's
/// check may stay unanswered before regular nomination stops waiting for it
/// (see `Agent::nomination_due`).
pub(super) const OVERDUE_MARGIN: Duration = Duration::from_millis(100);

impl Agent {
    pub(super) fn maybe_nominate(&mut self, now: Instant) {
        for ci in 0..self.comps.len() {
            let Some((bi, due)) = self.nomination_due(ci) else { continue };
            if now >= due {
                pair_event!(tracing::Level::DEBUG, self, bi, "ICE nominating pair");
                self.comps[ci].nominating = Some(bi);
                self.pairs[bi].use_candidate_pending = true;
                self.triggered.retain(|&p| p != bi);
                self.triggered.push_front(bi);
            }
        }
    }

    /// Regular nomination, controlling: the best valid pair of component
    /// `ci` and when to nominate it (RFC 8445 section 8.1.1 leaves the
    /// choice to the agent). At once when no pair of higher priority may
    /// still succeed. A pair not checked yet may: it is waited for until
    /// [`Timing::nomination_delay`](super::Timing::nomination_delay) after
    /// the first valid pair. So is a pair whose check is in flight, but
    /// only until its check is overdue: twice the best pair's round trip,
    /// plus [`OVERDUE_MARGIN`], after it was sent. (Behind a NAT, checks
    /// to the peer's private addresses are never answered; they would
    /// hold the call for the whole delay.) `None` when nothing is to be
    /// nominated.
    pub(super) fn nomination_due(&self, ci: usize) -> Option<(usize, Instant)> {
        if !self.controlling || self.cfg.nomination != Nomination::Regular || self.remote_key.is_none() {
            return None;
        }
        let c = self.comps.get(ci)?;
        if c.selected.is_some() || c.nominating.is_some() {
            return None;
        }
        let cap = c.first_valid? + self.cfg.timing.nomination_delay;
        let comp = u16::try_from(ci + 1).unwrap_or(1);
        let (bi, best) = self
            .pairs
            .iter()
            .enumerate()
            .filter(|(_, p)| p.component == comp && p.valid_local.is_some() && p.state == PairState::Succeeded)
            .max_by_key(|(_, p)| p.priority)?;
        let rtt = best.counters.current_round_trip_time;
        let mut due = c.first_valid?;
        for (pi, p) in self.pairs.iter().enumerate() {
            if p.component != comp || p.priority <= best.priority {
                continue;
            }
            match p.state {
                PairState::Frozen | PairState::Waiting => return Some((bi, cap)),
                PairState::InProgress => {
                    let sent = self.txs.iter().find_map(|t| match t.kind {
                        TxKind::Check { pair, .. } if pair == pi && !t.cancelled => Some(t.first_sent),
                        _ => None,
                    });
                    let (Some(sent), Some(rtt)) = (sent, rtt) else { return Some((bi, cap)) };
                    due = due.max(sent + rtt * 2 + OVERDUE_MARGIN);
                }
                PairState::Succeeded | PairState::Failed => {}
            }
        }
        Some((bi, due.min(cap)))
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
