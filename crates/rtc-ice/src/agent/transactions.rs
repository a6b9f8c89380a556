//! STUN transactions in flight: starting requests (checks, consent,
//! server-reflexive gathering), retransmitting them with RTO back-off, and
//! their timeouts.

use std::net::SocketAddr;
use std::time::Instant;

use crate::stun;

use super::{Agent, PairState, Transmit};

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
}

impl Agent {
    pub(super) fn send_gather(&mut self, now: Instant, base: SocketAddr, server: SocketAddr) {
        if self.txs.len() >= self.cfg.limits.transactions {
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
        let wait = match kind {
            // Consent requests are sent once; a late answer still counts
            // until the next one goes out (RFC 7675 section 5.1).
            TxKind::Consent { .. } => self.cfg.timing.consent_interval,
            _ => self.cfg.timing.rto,
        };
        self.note_sent(now, source, destination);
        self.push_transmit(Transmit { source, destination, contents: contents.clone() });
        // Exact growth: a connected agent holds one or two transactions.
        self.txs.reserve_exact(1);
        self.txs.push(Tx { id, kind, source, destination, contents, sends: 1, max_sends, next_at: now + wait });
    }

    pub(super) fn retransmit(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.txs.len() {
            if self.txs[i].next_at > now {
                i += 1;
                continue;
            }
            if self.txs[i].sends < self.txs[i].max_sends {
                let tx = &mut self.txs[i];
                tx.sends += 1;
                let shift = (tx.sends - 1).min(16);
                let wait = self.cfg.timing.rto.saturating_mul(1 << shift).min(self.cfg.timing.max_rto);
                tx.next_at = now + wait;
                let t = Transmit { source: tx.source, destination: tx.destination, contents: tx.contents.clone() };
                self.stats.retransmits += 1;
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
        if let TxKind::Check { pair, use_candidate, .. } = tx.kind {
            let still = self.txs.iter().any(|t| matches!(t.kind, TxKind::Check { pair: p, .. } if p == pair));
            if !still {
                let p = &mut self.pairs[pair];
                if p.state == PairState::InProgress {
                    p.state = PairState::Failed;
                }
                if use_candidate && self.controlling {
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
