//! Relayed candidates (RFC 8445 section 5.1.1.2, RFC 8656): the agent's
//! TURN allocations, one per (host base, TURN server) of the same family,
//! their relayed candidates, and the framing of what goes from and comes to
//! a relayed address (Send/Data indications, ChannelData). Over TCP or TLS
//! the driver opens and closes the streams to the servers as
//! [`StreamCommand`]s ask and hands back whole messages
//! ([`Agent::handle_stream_receive`]); everything else is as over UDP.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::error::Error;
use crate::turn::{AllocationState, Client, TurnEvent, TurnReceive, TurnServer};
use crate::url::TurnTransport;

use super::{Agent, DropReason, LocalCand, LocalKind, Receive, RelayedTransmit, StreamCommand, Transmit, same_family};

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
        if l.kind == LocalKind::Relayed && self.retired.contains(&l.addr) {
            return false;
        }
        !self.cfg.relay_only || l.kind == LocalKind::Relayed
    }
}

/// The first wait before an allocation lost after it was made is asked
/// for again; it doubles with each failed attempt.
const REALLOC_BACKOFF: Duration = Duration::from_secs(1);
/// Attempts to make a lost allocation again (after 1, 2, 4 and 8 s).
const REALLOC_ATTEMPTS: u32 = 4;

/// An allocation to make again: from `base` on `server`, at `at`, the
/// `attempt`-th time; once `started`, `at` is when that attempt is given
/// up if it is not allocated by then (the gathering timeout).
#[derive(Debug, Clone)]
pub(super) struct Realloc {
    base: SocketAddr,
    server: TurnServer,
    pub(super) at: Instant,
    attempt: u32,
    started: bool,
}

fn active(c: &Client) -> bool {
    matches!(c.state(), AllocationState::Connecting | AllocationState::Allocating | AllocationState::Allocated)
}

/// An active allocation over UDP: its server's datagrams come on its base.
fn udp_active(c: &Client) -> bool {
    active(c) && !c.transport().is_stream()
}

/// The local preference of a relayed candidate (RFC 8445 section 5.1.2.1)
/// made from a host base of preference `host`: the transport to the server
/// ranks first (UDP, then TCP, then TLS: what a relay over a stream costs,
/// as browsers rank them), then the base's own order (IPv6 first, then the
/// interfaces' order). Over UDP this is the host's preference unchanged.
pub(super) fn relay_local_pref(transport: TurnTransport, host: u16) -> u16 {
    let rank: u16 = match transport {
        TurnTransport::Udp => 3,
        TurnTransport::Tcp => 2,
        _ => 1,
    };
    (rank << 14) | (host & 0x3FFF)
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
        Ok(Some(RelayedTransmit { source: c.base(), destination: c.server(), len, transport: c.transport() }))
    }

    /// What the driver must do about streams to TURN servers (TURN over
    /// TCP or TLS): open one, or close one once the transmits polled so far
    /// are written. Drain it with [`Agent::poll_transmit`] after each call.
    #[must_use]
    pub fn poll_stream_command(&mut self) -> Option<StreamCommand> {
        self.stream_commands.pop_front()
    }

    /// The stream the agent asked for ([`StreamCommand::Connect`]) is open:
    /// its allocation starts.
    pub fn stream_connected(&mut self, now: Instant, local: SocketAddr, server: SocketAddr, transport: TurnTransport) {
        self.on_stream(now, (local, server, transport), Client::connected);
    }

    /// A stream to a TURN server could not be opened, closed, or broke its
    /// framing ([`Error::Framing`] from the deframer): its allocation is
    /// lost (RFC 8656 section 3.1) and its relayed candidate's pairs fail
    /// by their checks' and consent's timeouts.
    pub fn stream_closed(&mut self, now: Instant, local: SocketAddr, server: SocketAddr, transport: TurnTransport) {
        self.on_stream(now, (local, server, transport), Client::stream_closed);
    }

    /// What the driver said of a stream, given to its allocation.
    fn on_stream(
        &mut self,
        now: Instant,
        (local, server, transport): (SocketAddr, SocketAddr, TurnTransport),
        f: fn(&mut Client, Instant),
    ) {
        self.last_now = Some(now);
        if let Some(ci) = self.stream_client(local, server, transport) {
            f(&mut self.turn[ci], now);
            self.after_turn(now);
            self.handle_timeout(now);
        }
    }

    /// Takes one whole message (from [`crate::framing::Deframer`]) that
    /// came on the stream to `server` opened for the host base `local`:
    /// as [`Agent::handle_receive`] does with a datagram from a TURN
    /// server (responses taken, what peers sent unwrapped:
    /// [`Receive::RelayedData`] indexes into `data`). Anything not for an
    /// open stream is dropped and counted.
    pub fn handle_stream_receive(
        &mut self,
        now: Instant,
        local: SocketAddr,
        server: SocketAddr,
        transport: TurnTransport,
        data: &[u8],
    ) -> Receive {
        self.last_now = Some(now);
        if self.state == super::State::Closed {
            return self.drop_with(DropReason::Closed);
        }
        let ci = self.stream_client(local, server, transport).filter(|&ci| active(&self.turn[ci]));
        let Some(ci) = ci else { return self.drop_with(DropReason::UnknownPath) };
        self.receive_from_client(now, ci, data).unwrap_or_else(|| self.drop_with(DropReason::Relay))
    }

    fn stream_client(&self, local: SocketAddr, server: SocketAddr, transport: TurnTransport) -> Option<usize> {
        if !transport.is_stream() {
            return None;
        }
        self.turn.iter().position(|c| c.base() == local && c.server() == server && c.transport() == transport)
    }

    fn close_stream(&mut self, ci: usize) {
        let c = &self.turn[ci];
        if c.transport().is_stream() && self.stream_commands.len() < self.cfg.limits.queue {
            self.stream_commands.push_back(StreamCommand::Close {
                local: c.base(),
                server: c.server(),
                transport: c.transport(),
            });
        }
    }

    /// Starts an allocation from the new host base `base` on every TURN
    /// server of its family.
    pub(super) fn start_allocations(&mut self, now: Instant, base: SocketAddr) {
        let servers: Vec<TurnServer> =
            self.cfg.turn_servers.iter().filter(|s| same_family(s.addr, base)).cloned().collect();
        for server in servers {
            let transport = server.transport;
            if self.turn.iter().any(|c| c.base() == base && c.server() == server.addr && c.transport() == transport) {
                continue;
            }
            if self.turn.len() >= self.cfg.limits.local_candidates {
                self.stats.limit_hits += 1;
                break;
            }
            if transport.is_stream() {
                // The allocation starts once the driver opened the stream.
                let (addr, host) = (server.addr, server.host.clone());
                self.stream_commands.push_back(StreamCommand::Connect { local: base, server: addr, transport, host });
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
        self.turn.iter().any(|c| matches!(c.state(), AllocationState::Connecting | AllocationState::Allocating))
    }

    /// Gathering timed out: allocations not made by now are given up.
    pub(super) fn abandon_allocations(&mut self) {
        let mut any = false;
        for ci in 0..self.turn.len() {
            if matches!(self.turn[ci].state(), AllocationState::Connecting | AllocationState::Allocating) {
                self.turn[ci].abandon();
                self.close_stream(ci);
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
            let open = active(&self.turn[ci]);
            self.turn[ci].close(now);
            while let Some(t) = self.turn[ci].poll_transmit() {
                self.transmits.push_back(t);
            }
            if open {
                self.close_stream(ci);
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

    /// Whether `(local, remote)` is an active UDP allocation's host base
    /// and server.
    pub(super) fn is_relay_server(&self, local: SocketAddr, remote: SocketAddr) -> bool {
        self.turn.iter().any(|c| udp_active(c) && c.base() == local && c.server() == remote)
    }

    /// The `(host base, server)` paths of the active UDP allocations
    /// (datagrams; a stream's messages come to the agent by their stream).
    pub(super) fn relay_paths(&self) -> impl Iterator<Item = (SocketAddr, SocketAddr)> + '_ {
        self.turn.iter().filter(|c| udp_active(c)).map(|c| (c.base(), c.server()))
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
        let ci = self.turn.iter().position(|c| udp_active(c) && c.base() == local && c.server() == remote)?;
        self.receive_from_client(now, ci, data)
    }

    /// A datagram or stream message from allocation `ci`'s server.
    fn receive_from_client(&mut self, now: Instant, ci: usize, data: &[u8]) -> Option<Receive> {
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
                    TurnEvent::Failed { .. } => {
                        self.paths_generation += 1;
                        self.close_stream(ci);
                        self.on_allocation_failed(now, ci);
                    }
                }
            }
            self.drain_turn(ci);
        }
    }

    /// Allocation `ci` failed. One lost after it was made (its refresh
    /// failed, or its stream closed) is made again: its relayed candidate
    /// is no longer signaled and its pairs fail, and a new allocation is
    /// asked for on the same server after [`REALLOC_BACKOFF`], its relayed
    /// candidate trickled as a new [`Event::Candidate`](super::Event). A
    /// replacement that fails is tried again, the wait doubled, up to
    /// [`REALLOC_ATTEMPTS`] times. (One that never succeeded at gathering is
    /// not: gathering ended without it.)
    fn on_allocation_failed(&mut self, now: Instant, ci: usize) {
        if self.state == super::State::Closed {
            return;
        }
        let c = &self.turn[ci];
        let (base, server_addr, transport) = (c.base(), c.server(), c.transport());
        let lost = c.last_relayed().filter(|r| !self.retired.contains(r));
        let replacing = self.turn_attempt(base, server_addr, transport);
        let attempt = match (lost, replacing) {
            (Some(relayed), _) => {
                tracing::debug!(%server_addr, %relayed, "TURN allocation lost: its relayed candidate is retired, a new one will be asked for");
                self.retired.push(relayed);
                for p in self.pairs.iter_mut().filter(|p| p.base == relayed) {
                    p.state = super::PairState::Failed;
                }
                1
            }
            (None, Some(n)) if n < REALLOC_ATTEMPTS => n + 1,
            (None, Some(_)) => {
                tracing::debug!(%server_addr, "TURN allocation not made again: attempts exhausted");
                return;
            }
            (None, None) => return,
        };
        let Some(server) =
            self.cfg.turn_servers.iter().find(|s| s.addr == server_addr && s.transport == transport).cloned()
        else {
            return;
        };
        let at = now + REALLOC_BACKOFF * 2u32.pow(attempt - 1);
        self.reallocs.retain(|r| !(r.base == base && r.server.addr == server_addr && r.server.transport == transport));
        self.reallocs.push(Realloc { base, server, at, attempt, started: false });
    }

    /// The attempt a replacement allocation on `(base, server, transport)`
    /// is (`None` for the first allocation).
    fn turn_attempt(&self, base: SocketAddr, server: SocketAddr, transport: TurnTransport) -> Option<u32> {
        self.turn_attempts.iter().find(|a| (a.0, a.1, a.2) == (base, server, transport)).map(|a| a.3)
    }

    /// Makes the lost allocations whose wait is over again, and gives up
    /// the attempts not allocated within the gathering timeout (the next
    /// attempt follows, as after a failure).
    pub(super) fn realloc_timeout(&mut self, now: Instant) {
        if self.reallocs.iter().all(|r| r.at > now) {
            return;
        }
        let due: Vec<Realloc> = self.reallocs.iter().filter(|r| r.at <= now).cloned().collect();
        self.reallocs.retain(|r| r.at > now);
        for r in due {
            let (base, addr, transport) = (r.base, r.server.addr, r.server.transport);
            let same = |c: &Client| c.base() == base && c.server() == addr && c.transport() == transport;
            if r.started {
                let Some(ci) = self.turn.iter().position(|c| same(c) && active(c)) else { continue };
                if self.turn[ci].state() != AllocationState::Allocated {
                    self.turn[ci].abandon();
                    self.close_stream(ci);
                    self.paths_generation += 1;
                    self.on_allocation_failed(now, ci);
                }
                continue;
            }
            self.turn.retain(|c| !same(c) || active(c));
            self.turn_attempts.retain(|a| (a.0, a.1, a.2) != (base, addr, transport));
            self.turn_attempts.push((base, addr, transport, r.attempt));
            tracing::debug!(server = %addr, attempt = r.attempt, "TURN allocation asked for again");
            if transport.is_stream() {
                let host = r.server.host.clone();
                self.stream_commands.push_back(StreamCommand::Connect { local: base, server: addr, transport, host });
            }
            let give_up = now + self.cfg.timing.gather_timeout;
            self.reallocs.push(Realloc { at: give_up, started: true, ..r.clone() });
            let mut c = Client::new(base, r.server, self.cfg.timing, self.rng.random());
            c.start(now);
            self.turn.push(c);
            self.paths_generation += 1;
            self.drain_turn(self.turn.len() - 1);
        }
    }

    /// RFC 8445 section 5.1.1.2: the relayed candidate (type preference 0,
    /// related address the mapped one, local preference by the transport
    /// to the server), paired with the remote candidates of its component
    /// and family; over UDP the mapped address is a server-reflexive
    /// candidate as from a STUN server (over a stream it is the TCP
    /// connection's, no UDP mapping).
    fn on_allocated(&mut self, ci: usize, relayed: SocketAddr, mapped: Option<SocketAddr>) {
        let (base, server, transport) = (self.turn[ci].base(), self.turn[ci].server(), self.turn[ci].transport());
        if let Some(m) = mapped
            && !transport.is_stream()
        {
            self.on_reflexive(server, base, m);
        }
        self.turn_attempts.retain(|a| (a.0, a.1, a.2) != (base, server, transport));
        self.reallocs
            .retain(|r| !(r.started && r.base == base && r.server.addr == server && r.server.transport == transport));
        if let Some(li) = self.locals.iter().position(|l| l.addr == relayed && l.base == relayed) {
            // A replacement given the address the lost one had: signaled
            // again, its pairs checked again.
            if let Some(i) = self.retired.iter().position(|r| *r == relayed) {
                self.retired.swap_remove(i);
                self.push_event(super::Event::Candidate(self.locals[li].cand.clone()));
                for p in self.pairs.iter_mut().filter(|p| p.base == relayed) {
                    p.state = super::PairState::Waiting;
                }
            }
            return;
        }
        let related = mapped.unwrap_or(base);
        let Some(li) = self.add_server_candidate(LocalKind::Relayed, base, (server, transport), relayed, related)
        else {
            return;
        };
        tracing::debug!(%server, %base, %relayed, transport = transport.as_str(), "ICE local relayed candidate");
        let component = self.locals[li].component;
        for ri in 0..self.remotes.len() {
            let r = &self.remotes[ri];
            if r.component == component && same_family(r.addr, relayed) && !r.is_tcp() {
                self.add_pair(li, ri);
            }
        }
    }
}
