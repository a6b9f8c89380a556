//! Remote candidates named by mDNS `.local` names
//! (draft-ietf-mmusic-mdns-ice-candidates): held until the driver resolves
//! the name ([`Agent::poll_mdns_query`], [`Agent::mdns_resolved`]), then
//! added as host candidates with the address found; dropped when no
//! address comes within [`Timing::mdns_timeout`](super::Timing).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Instant;

use rtc_candidate::{Address, Candidate};

use super::Agent;
use crate::error::Error;

/// A remote candidate waiting for its name.
#[derive(Debug)]
pub(super) struct Held {
    cand: Candidate,
    /// The name, lowercase.
    name: String,
    pub(super) deadline: Instant,
}

impl Agent {
    /// [`Agent::add_remote_candidate`] for a candidate whose address is an
    /// mDNS name (its port and component already checked): held, its name
    /// asked for once.
    pub(super) fn hold_mdns(&mut self, now: Instant, cand: &Candidate, name: &str) -> Result<(), Error> {
        if !crate::mdns::is_candidate_name(name) {
            return Err(Error::UnsupportedCandidate("an mDNS name that is not one label and .local"));
        }
        let c = cand.component.get();
        let name = name.to_ascii_lowercase();
        if self.mdns.iter().any(|h| h.name == name && h.cand.component == cand.component && h.cand.port == cand.port) {
            return Ok(());
        }
        if self.mdns.len() >= self.cfg.limits.mdns_candidates {
            self.stats.limit_hits += 1;
            return Err(Error::LimitReached("remote candidates waiting for an mDNS name"));
        }
        tracing::debug!(%name, port = cand.port, component = c, "ICE remote candidate waits for its mDNS name");
        if !self.mdns.iter().any(|h| h.name == name) {
            self.mdns_queries.push_back(name.clone());
        }
        self.mdns.reserve_exact(1);
        self.mdns.push(Held { cand: cand.clone(), name, deadline: now + self.cfg.timing.mdns_timeout });
        self.handle_timeout(now);
        Ok(())
    }

    /// An mDNS name the driver must resolve (each once), for a remote
    /// candidate that waits for it: query it (see [`crate::mdns::Resolver`])
    /// and call [`Agent::mdns_resolved`] with the outcome.
    #[must_use]
    pub fn poll_mdns_query(&mut self) -> Option<String> {
        let q = self.mdns_queries.pop_front();
        if q.is_none() && self.mdns_queries.capacity() > 0 {
            self.mdns_queries = VecDeque::new();
        }
        q
    }

    /// The outcome of resolving `name` (any case): with an address, every
    /// remote candidate waiting for that name becomes a host candidate at
    /// that address, its foundation, priority, component and port kept,
    /// and is paired as any signaled candidate; `None` (no answer) drops
    /// them. A name nothing waits for is ignored.
    pub fn mdns_resolved(&mut self, now: Instant, name: &str, addr: Option<IpAddr>) {
        if !self.mdns.iter().any(|h| h.name.eq_ignore_ascii_case(name)) {
            return;
        }
        let mut i = 0;
        while i < self.mdns.len() {
            if !self.mdns[i].name.eq_ignore_ascii_case(name) {
                i += 1;
                continue;
            }
            let held = self.mdns.swap_remove(i);
            let Some(ip) = addr else {
                tracing::debug!(name = %held.name, "ICE remote candidate dropped: its mDNS name was not resolved");
                continue;
            };
            let mut cand = held.cand;
            cand.address = Address::Ip(ip);
            tracing::debug!(name = %held.name, %ip, port = cand.port, "ICE remote candidate's mDNS name resolved");
            if let Err(e) = self.add_remote_candidate(now, &cand) {
                tracing::debug!(candidate = %cand, "ICE resolved remote candidate refused: {e}");
            }
        }
        self.handle_timeout(now);
    }

    /// Remote candidates waiting for an mDNS name.
    pub fn mdns_pending(&self) -> usize {
        self.mdns.len()
    }

    /// Drops the candidates whose name was not resolved in time.
    pub(super) fn expire_mdns(&mut self, now: Instant) {
        if self.mdns.iter().all(|h| now < h.deadline) {
            return;
        }
        self.mdns.retain(|h| {
            let keep = now < h.deadline;
            if !keep {
                tracing::debug!(name = %h.name, "ICE remote candidate dropped: its mDNS name was not resolved in time");
            }
            keep
        });
        if self.mdns.is_empty() {
            self.mdns = Vec::new();
        }
    }

    /// Forgets the held candidates and the names not yet asked for (ICE
    /// restart, close).
    pub(super) fn forget_mdns(&mut self) {
        self.mdns = Vec::new();
        self.mdns_queries = VecDeque::new();
    }

    /// The name that conceals the host address `ip` (one per address, kept
    /// across restarts, as browsers keep theirs).
    pub(super) fn conceal(&mut self, ip: IpAddr) -> String {
        if let Some((name, _)) = self.mdns_own.iter().find(|(_, a)| *a == ip) {
            return name.clone();
        }
        let name = crate::mdns::random_name(&mut self.rng);
        self.mdns_own.push((name.clone(), ip));
        self.mdns_own_new += 1;
        name
    }

    /// A name that conceals one of our host addresses
    /// ([`AgentConfig::mdns_host_names`](super::AgentConfig::mdns_host_names)),
    /// with the address: register it with the driver's
    /// [`crate::mdns::Responder`] so that the peer can resolve it. Each
    /// comes once.
    #[must_use]
    pub fn poll_mdns_host_name(&mut self) -> Option<(String, IpAddr)> {
        let n = self.mdns_own_new.checked_sub(1)?;
        self.mdns_own_new = n;
        self.mdns_own.get(self.mdns_own.len() - 1 - n).cloned()
    }
}
