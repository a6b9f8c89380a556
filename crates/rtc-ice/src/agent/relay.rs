//! Relayed candidates (RFC 8445 section 5.1.1.2, RFC 8656): the agent's
//! TURN allocations, one per (host base, TURN server) of the same family,
//! their relayed candidates, and the framing of what goes from and comes to
//! a relayed address (Send/Data indications, ChannelData).

use std::net::SocketAddr;
use std::time::Instant;

use rand::Rng;

use crate::error::Error;
use crate::turn::{AllocationState, Client, TurnEvent, TurnReceive, TurnServer};

use super::{Agent, DropReason, LocalCand, LocalKind, Receive, RelayedTransmit, Transmit, same_family};

impl LocalCand {
    /// A candidate that is its own base: host or relayed (what checks
    /// arrive on and pairs are formed with).
    pub(super) fn is_base(&self) -> bool {
        matches!(self.kind, LocalKind::Host | LocalKind::Relayed)
    }
}

impl Agent {
    /// Whether a local candidate is signaled, paired and takes checks: all
    /// of them, or only relayed ones with
    /// [`AgentConfig::relay_only`](super::AgentConfig::relay_only).
    pub(super) fn usable(&self, l: &LocalCand) -> bool {
        !self.cfg.relay_only || l.kind == LocalKind::Relayed
    }
}

fn active(c: &Client) -> bool {
    matches!(c.state(), AllocationState::Allocating | AllocationState::Allocated)
}

impl Agent {
    /// The TURN allocations (one per host base and TURN server of its
    /// family), with their state, relayed address and counters.
    pub fn relay_allocations(&self) -> impl Iterator<Item = &Client> + '_ {
        self.turn.iter()
    }

    /// Whether `local` is one of the agent's relayed addresses: data on a
    /// [`Path`](super::Path) from it must be framed with
    /// [`Agent::frame_relayed`] and sent to the TURN server.
    pub fn is_relayed(&self, local: SocketAddr) -> bool {
        self.locals.iter().any(|l| l.kind == LocalKind::Relayed && l.addr == local)
    }

    /// Frames, in place, the `len` octets at the start of `buf` that the
    /// driver would send from `local` to `remote` (a [`Path`](super::Path)):
    /// `Ok(None)` when `local` is not a relayed address (send them as they
    /// are); otherwise ChannelData (once the agent bound a channel to the
    /// peer, which it does when a relayed pair succeeds) or a Send
    /// indication, and where to send the framed datagram (from the
    /// allocation's host base to the TURN server). `buf` needs
    /// [`RELAY_OVERHEAD`](crate::turn::RELAY_OVERHEAD) octets of room past
    /// `len`. Fails with [`Error::Relay`] without an allocation, a
    /// permission for the peer or that room.
    pub fn frame_relayed(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        buf: &mut [u8],
        len: usize,
    ) -> Result<Option<RelayedTransmit>, Error> {
        if !self.is_relayed(local) {
            return Ok(None);
        }
        let Some(c) = self.turn.iter_mut().find(|c| c.relayed() == Some(local)) else {
            return Err(Error::Relay("the allocation is gone"));
        };
        let len = c.frame(remote, buf, len)?;
        Ok(Some(RelayedTransmit { source: c.base(), destination: c.server(), len }))
    }

    /// Starts an allocation from the new host base `base` on every TURN
    /// server of its family.
    pub(super) fn start_allocations(&mut self, now: Instant, base: SocketAddr) {
        let servers: Vec<TurnServer> =
            self.cfg.turn_servers.iter().filter(|s| same_family(s.addr, base)).cloned().collect();
        for server in servers {
            if self.turn.iter().any(|c| c.base() == base && c.server() == server.addr) {
                continue;
            }
            if self.turn.len() >= self.cfg.limits.local_candidates {
                self.stats.limit_hits += 1;
                break;
            }
            let mut c = Client::new(base, server, self.cfg.timing, self.rng.random());
            c.start(now);
            self.turn.push(c);
            self.paths_generation += 1;
            self.gather_deadline.get_or_insert(now + self.cfg.timing.gather_timeout);
            self.drain_turn(self.turn.len() - 1);
        }
    }

    /// An allocation is still being made (gathering waits for it).
    pub(super) fn allocating(&self) -> bool {
        self.turn.iter().any(|c| c.state() == AllocationState::Allocating)
    }

    /// Gathering timed out: allocations not made by now are given up.
    pub(super) fn abandon_allocations(&mut self) {
        let mut any = false;
        for c in &mut self.turn {
            if c.state() == AllocationState::Allocating {
                c.abandon();
                any = true;
            }
        }
        if any {
            self.paths_generation += 1;
        }
    }

    /// The agent closes: every allocation is released (a Refresh with
    /// LIFETIME 0, sent once).
    pub(super) fn close_allocations(&mut self) {
        let Some(now) = self.last_now else { return };
        for ci in 0..self.turn.len() {
            self.turn[ci].close(now);
            while let Some(t) = self.turn[ci].poll_transmit() {
                self.transmits.push_back(t);
            }
        }
    }

    /// Timers of the allocations, and what came of them.
    pub(super) fn turn_timeout(&mut self, now: Instant) {
        if self.turn.is_empty() {
            return;
        }
        for c in &mut self.turn {
            c.handle_timeout(now);
        }
        self.after_turn(now);
    }

    /// Whether `(local, remote)` is an active allocation's host base and
    /// server.
    pub(super) fn is_relay_server(&self, local: SocketAddr, remote: SocketAddr) -> bool {
        self.turn.iter().any(|c| active(c) && c.base() == local && c.server() == remote)
    }

    /// The `(host base, server)` paths of the active allocations.
    pub(super) fn relay_paths(&self) -> impl Iterator<Item = (SocketAddr, SocketAddr)> + '_ {
        self.turn.iter().filter(|c| active(c)).map(|c| (c.base(), c.server()))
    }

    /// A datagram from an allocation's server: its responses are taken,
    /// what peers sent is unwrapped and handled as arriving on the relayed
    /// address. `None`: not from a server, or not the allocation's (a
    /// Binding response to srflx gathering from the same server).
    pub(super) fn receive_from_relay(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        data: &[u8],
    ) -> Option<Receive> {
        let ci = self.turn.iter().position(|c| active(c) && c.base() == local && c.server() == remote)?;
        match self.turn[ci].handle_receive(now, data) {
            TurnReceive::Consumed => {
                self.after_turn(now);
                self.handle_timeout(now);
                Some(Receive::Stun)
            }
            TurnReceive::Peer { peer, offset, len } => {
                let relayed = self.turn[ci].relayed();
                let inner = offset.checked_add(len).and_then(|end| data.get(offset..end));
                let (Some(relayed), Some(inner)) = (relayed, inner) else {
                    return Some(self.drop_with(DropReason::Relay));
                };
                tracing::trace!(%peer, %relayed, len, "ICE datagram through the relay");
                Some(match self.receive_on(now, relayed, peer, inner) {
                    Receive::Data { component } => Receive::RelayedData { component, offset, len },
                    r => r,
                })
            }
            TurnReceive::Dropped => Some(self.drop_with(DropReason::Relay)),
            _ => None,
        }
    }

    /// A transmit from a relayed address goes through its allocation
    /// (framed for the server, or held until the peer's permission is
    /// installed). False when `t` is not from a relayed address.
    pub(super) fn relay_send(&mut self, t: &Transmit) -> bool {
        if !self.is_relayed(t.source) {
            return false;
        }
        let (Some(ci), Some(now)) = (self.turn.iter().position(|c| c.relayed() == Some(t.source)), self.last_now)
        else {
            // The allocation is gone: nothing can be sent from its address.
            return true;
        };
        self.turn[ci].send_to(now, t.destination, &t.contents);
        self.drain_turn(ci);
        true
    }

    /// A pair from relayed address `relayed` to `remote` formed: the
    /// permission for the peer's IP is installed at once, so that its
    /// checks reach us.
    pub(super) fn relay_permission(&mut self, relayed: SocketAddr, remote: SocketAddr) {
        let Some(now) = self.last_now else { return };
        if let Some(ci) = self.turn.iter().position(|c| c.relayed() == Some(relayed)) {
            self.turn[ci].create_permission(now, remote.ip());
            self.drain_turn(ci);
        }
    }

    /// A relayed pair succeeded: a channel is bound to its peer.
    pub(super) fn bind_relay_channel(&mut self, now: Instant, relayed: SocketAddr, remote: SocketAddr) {
        if let Some(ci) = self.turn.iter().position(|c| c.relayed() == Some(relayed)) {
            self.turn[ci].bind_channel(now, remote);
            self.drain_turn(ci);
        }
    }

    fn drain_turn(&mut self, ci: usize) {
        while let Some(t) = self.turn[ci].poll_transmit() {
            if self.transmits.len() < self.cfg.limits.queue {
                self.transmits.push_back(t);
            } else {
                self.stats.limit_hits += 1;
            }
        }
    }

    /// Moves the allocations' datagrams out and acts on their events.
    fn after_turn(&mut self, now: Instant) {
        for ci in 0..self.turn.len() {
            self.drain_turn(ci);
            while let Some(e) = self.turn[ci].poll_event() {
                match e {
                    TurnEvent::Allocated { relayed, mapped } => self.on_allocated(ci, relayed, mapped),
                    TurnEvent::Failed { .. } => self.paths_generation += 1,
                }
            }
            self.drain_turn(ci);
        }
        let _ = now;
    }

    /// RFC 8445 section 5.1.1.2: the relayed candidate (type preference 0,
    /// related address the mapped one), paired with the remote candidates
    /// of its component and family; the mapped address is a
    /// server-reflexive candidate as from a STUN server.
    fn on_allocated(&mut self, ci: usize, relayed: SocketAddr, mapped: Option<SocketAddr>) {
        let (base, server) = (self.turn[ci].base(), self.turn[ci].server());
        if let Some(m) = mapped {
            self.on_reflexive(server, base, m);
        }
        if self.locals.iter().any(|l| l.addr == relayed && l.base == relayed) {
            return;
        }
        let related = mapped.unwrap_or(base);
        let Some(li) = self.add_server_candidate(LocalKind::Relayed, base, server, relayed, related) else { return };
        tracing::debug!(%server, %base, %relayed, "ICE local relayed candidate");
        let component = self.locals[li].component;
        for ri in 0..self.remotes.len() {
            if self.remotes[ri].component == component && same_family(self.remotes[ri].addr, relayed) {
                self.add_pair(li, ri);
            }
        }
    }
}
