//! STUN transactions in flight: starting requests (checks, consent,
//! server-reflexive gathering), retransmitting them with RTO back-off,
//! cancelling checks whose role went stale, and their timeouts.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::stun;

use super::{Agent, PairState, Transmit};

/// Transmissions of a connectivity check after each of which it waits one
/// RTO (see `Agent::wait_after`); the waits double after that.
const FLAT_CHECK_SENDS: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TxKind {
    Check { pair: usize, use_candidate: bool, controlling: bool, priority: u32 },
    Consent { pair: usize },
    Gather { server: SocketAddr },
}

#[derive(Debug)]
pub(super) struct Tx {
    pub(super) id: [u8; 12],
    pub(super) kind: TxKind,
    pub(super) source: SocketAddr,
    pub(super) destination: SocketAddr,
    pub(super) contents: Vec<u8>,
    pub(super) sends: u32,
    pub(super) max_sends: u32,
    pub(super) next_at: Instant,
    /// When it was first sent: a response to a request sent once gives
    /// the pair's round trip.
    pub(super) first_sent: Instant,
    /// When it was last sent.
    pub(super) last_sent: Instant,
    /// A check cancelled in the sense of RFC 8445 section 7.3.1.4: it is not
    /// retransmitted, and its pair was (or needs no longer be) checked again
    /// by a new transaction; a response may still arrive until the time the
    /// transaction would have ended.
    pub(super) cancelled: bool,
}

impl Agent {
    pub(super) fn send_gather(&mut self, now: Instant, base: SocketAddr, server: SocketAddr) {
        if !self.room_for_tx() {
            self.stats.limit_hits += 1;
            return;
        }
        let id = self.new_tid();
        let mut contents = Vec::new();
        if stun::binding_request(&mut contents, id, None, None).is_err() {
            return;
        }
        self.gather_deadline.get_or_insert(now + self.cfg.timing.gather_timeout);
        self.start_tx_with_id(
            now,
            id,
            TxKind::Gather { server },
            base,
            server,
            contents,
            self.cfg.timing.max_transmits,
        );
    }

    pub(super) fn start_tx(
        &mut self,
        now: Instant,
        kind: TxKind,
        source: SocketAddr,
        destination: SocketAddr,
        contents: Vec<u8>,
        max_sends: u32,
    ) {
        let mut id = [0u8; 12];
        id.copy_from_slice(&contents[8..20]);
        self.start_tx_with_id(now, id, kind, source, destination, contents, max_sends);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn start_tx_with_id(
        &mut self,
        now: Instant,
        id: [u8; 12],
        kind: TxKind,
        source: SocketAddr,
        destination: SocketAddr,
        contents: Vec<u8>,
        max_sends: u32,
    ) {
        let tcp = self.is_tcp_base(source);
        let wait = match kind {
            // Consent requests are sent once; a late answer still counts
            // until the next one goes out (RFC 7675 section 5.1).
            TxKind::Consent { .. } => self.cfg.timing.consent_interval,
            // Over TCP a request is sent once (RFC 6544 section 7.1).
            _ if tcp => super::TCP_CHECK_TIMEOUT,
            _ => self.cfg.timing.rto,
        };
        let max_sends = if tcp { 1 } else { max_sends };
        self.note_sent(now, source, destination);
        match kind {
            TxKind::Check { pair, .. } => self.pairs[pair].counters.requests_sent += 1,
            TxKind::Consent { pair } => self.pairs[pair].counters.consent_requests_sent += 1,
            TxKind::Gather { .. } => {}
        }
        self.push_transmit(Transmit::udp(source, destination, contents.clone()));
        // Exact growth: a connected agent holds one or two transactions.
        self.txs.reserve_exact(1);
        self.txs.push(Tx {
            id,
            kind,
            source,
            destination,
            contents,
            sends: 1,
            max_sends,
            next_at: now + wait,
            first_sent: now,
            last_sent: now,
            cancelled: false,
        });
    }

    /// Makes room for one more transaction under
    /// [`Limits::transactions`](super::Limits::transactions): at the cap, a
    /// cancelled check, which only waits for a late response, is forgotten.
    /// False when the cap is reached and no check is cancelled.
    pub(super) fn room_for_tx(&mut self) -> bool {
        if self.txs.len() < self.cfg.limits.transactions {
            return true;
        }
        match self.txs.iter().position(|t| t.cancelled) {
            Some(i) => {
                self.txs.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// The wait after the `sends`-th transmission of a request of `kind`:
    /// RTO doubled for each retransmission, capped at the maximum (RFC 8489
    /// 6.2.1). A connectivity check waits one RTO after each of its first
    /// [`FLAT_CHECK_SENDS`] transmissions before it doubles: RFC 8445
    /// section 14.3 lets the agent choose each transaction's RTO (never
    /// under 500 ms), and on a path losing a fifth of the datagrams a check
    /// or its response lost twice would otherwise hold the call for 1.5 s,
    /// three times for 3.5 s.
    fn wait_after(&self, kind: &TxKind, sends: u32) -> Duration {
        let flat = if matches!(kind, TxKind::Check { .. }) { FLAT_CHECK_SENDS } else { 1 };
        let shift = sends.saturating_sub(flat).min(16);
        self.cfg.timing.rto.saturating_mul(1 << shift).min(self.cfg.timing.max_rto)
    }

    /// Cancels every connectivity check in flight, because the role its
    /// ICE-CONTROLLING/ICE-CONTROLLED attribute carries is no longer ours
    /// (RFC 8445 7.2.5.1, 7.3.1.1). Cancellation is that of RFC 8445 7.3.1.4:
    /// no more retransmissions of the stale request, no failure for the lack
    /// of a response, but a response is still taken until the transaction
    /// would have timed out. Returns the pairs those checks were for; the
    /// caller checks them again as new transactions.
    pub(super) fn cancel_checks(&mut self) -> Vec<usize> {
        let mut pairs = Vec::new();
        for i in 0..self.txs.len() {
            let tx = &self.txs[i];
            let TxKind::Check { pair, .. } = tx.kind else { continue };
            if tx.cancelled {
                continue;
            }
            self.cancel_tx(i);
            if !pairs.contains(&pair) {
                pairs.push(pair);
            }
        }
        pairs
    }

    /// Cancels the check in flight on `pair`, if any (RFC 8445 7.3.1.4, as
    /// [`Agent::cancel_checks`] does); whether there was one.
    pub(super) fn cancel_check_of(&mut self, pair: usize) -> bool {
        let mut any = false;
        for i in 0..self.txs.len() {
            let tx = &self.txs[i];
            if matches!(tx.kind, TxKind::Check { pair: p, .. } if p == pair) && !tx.cancelled {
                self.cancel_tx(i);
                any = true;
            }
        }
        any
    }

    /// Cancellation of transaction `i`: no more retransmissions, no failure
    /// for the lack of a response, a response still taken until the
    /// transaction would have ended.
    fn cancel_tx(&mut self, i: usize) {
        let tx = &self.txs[i];
        // The end of the transaction: the current wait, then the waits
        // of the retransmissions it had left.
        let left = tx.max_sends.saturating_sub(tx.sends);
        let doubling = left.min(17);
        let mut end = tx.next_at;
        for k in 1..=doubling {
            end = end.checked_add(self.wait_after(&tx.kind, tx.sends + k)).unwrap_or(end);
        }
        let rest = self.wait_after(&tx.kind, tx.sends.saturating_add(18)).saturating_mul(left - doubling);
        end = end.checked_add(rest).unwrap_or(end);
        let tx = &mut self.txs[i];
        tx.cancelled = true;
        tx.max_sends = tx.sends;
        tx.next_at = end;
        // Never sent again: the request's bytes are not needed.
        tx.contents = Vec::new();
    }

    pub(super) fn retransmit(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.txs.len() {
            if self.txs[i].next_at > now {
                i += 1;
                continue;
            }
            if self.txs[i].sends < self.txs[i].max_sends {
                let wait = self.wait_after(&self.txs[i].kind, self.txs[i].sends + 1);
                let tx = &mut self.txs[i];
                tx.sends += 1;
                tx.next_at = now + wait;
                tx.last_sent = now;
                let t = Transmit::udp(tx.source, tx.destination, tx.contents.clone());
                self.stats.retransmits += 1;
                tracing::trace!(destination = %t.destination, sends = tx.sends, "ICE request retransmitted");
                self.note_sent(now, t.source, t.destination);
                self.push_transmit(t);
                i += 1;
            } else {
                let tx = self.txs.swap_remove(i);
                self.on_tx_timeout(tx);
            }
        }
    }

    pub(super) fn on_tx_timeout(&mut self, tx: Tx) {
        if let TxKind::Gather { server } = tx.kind {
            tracing::debug!(%server, sends = tx.sends, "ICE gathering: the STUN server did not answer");
        }
        if let TxKind::Check { pair, use_candidate, .. } = tx.kind {
            let still = self.txs.iter().any(|t| matches!(t.kind, TxKind::Check { pair: p, .. } if p == pair));
            if !still {
                if self.pairs[pair].state == PairState::InProgress && !tx.cancelled {
                    pair_event!(
                        tracing::Level::DEBUG,
                        self,
                        pair,
                        sends = tx.sends,
                        "ICE pair failed: no response to {} check transmissions",
                        tx.sends
                    );
                }
                let p = &mut self.pairs[pair];
                if p.state == PairState::InProgress {
                    p.state = PairState::Failed;
                }
                if use_candidate && self.controlling && !tx.cancelled {
                    // The nomination did not go through: forget this pair.
                    p.state = PairState::Failed;
                    p.valid_local = None;
                    let ci = usize::from(p.component - 1);
                    if self.comps[ci].nominating == Some(pair) {
                        self.comps[ci].nominating = None;
                    }
                }
            }
        }
    }
}
