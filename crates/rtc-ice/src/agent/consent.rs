//! Consent freshness (RFC 7675) on the selected pairs, and keepalives
//! (RFC 8445 section 11).
//!
//! A lite agent sends no consent checks: RFC 7675 section 1 says consent
//! is obtained by full agents only, a lite agent answering the checks it
//! receives. Its selected pairs still lapse: each authenticated check from
//! the peer over a selected pair (the full peer's consent checks, every 4
//! to 6 s) renews it, and none for the consent timeout (30 s) means the
//! peer is gone (`Disconnected`), as SFUs running ICE lite do. Keepalives
//! (Binding indications, not checks) are sent as by a full agent.

use std::time::{Duration, Instant};

use rand::Rng;
use rtc_candidate::{Component, TypePreference, candidate_priority};

use crate::stun::{self, CheckAttrs};

use super::{Agent, Event, State, Transmit, TxKind};

impl Agent {
    pub(super) fn consent_interval(&mut self) -> Duration {
        let base = self.cfg.timing.consent_interval.max(Duration::from_secs(4));
        // 0.8 to 1.2 times the period, never below 4 s (RFC 7675 5.1).
        base.mul_f64(self.rng.random_range(0.8..1.2)).max(Duration::from_secs(4))
    }

    pub(super) fn consent(&mut self, now: Instant) {
        if self.state != State::Connected {
            return;
        }
        for ci in 0..self.comps.len() {
            let c = self.comps[ci];
            let Some(pi) = c.selected else { continue };
            if c.consent_last.is_some_and(|l| now >= l + self.cfg.timing.consent_timeout) {
                let timeout = self.cfg.timing.consent_timeout;
                if self.cfg.lite {
                    pair_event!(
                        tracing::Level::WARN,
                        self,
                        pi,
                        ?timeout,
                        "ICE peer gone: no check from it for {:.0?} on the selected pair (lite)",
                        timeout
                    );
                } else {
                    pair_event!(
                        tracing::Level::WARN,
                        self,
                        pi,
                        ?timeout,
                        "ICE consent lost: no response for {:.0?} on the selected pair",
                        timeout
                    );
                }
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
                    tracing::trace!(%destination, "ICE keepalive");
                    self.stats.keepalives += 1;
                    self.note_sent(now, source, destination);
                    self.push_transmit(Transmit::udp(source, destination, contents));
                }
            }
        }
    }

    pub(super) fn send_consent(&mut self, now: Instant, pi: usize) {
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
            tracing::trace!(%destination, "ICE consent check sent");
            self.start_tx(now, TxKind::Consent { pair: pi }, source, destination, contents, 1);
        }
    }
}
