//! Many agents behind one UDP socket: routing datagrams to agents by ufrag.
//!
//! A request's USERNAME starts with the receiving agent's ufrag
//! (RFC 8445 section 7.2.2), so requests route by it. Responses carry no
//! USERNAME; they route by the transaction id of the request the agent sent,
//! which [`Demux::note_transmit`] records. Application data routes by the
//! remote address of the selected pair, which the driver knows.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use crate::agent::Transmit;
use crate::stun::{Class, HEADER_LEN, peek};

/// The ufrag a STUN request is addressed to: USERNAME up to its colon.
/// Reads the attributes in place; `None` for anything that is not a
/// well-framed STUN request with a USERNAME. Never panics.
pub fn request_ufrag(data: &[u8]) -> Option<&[u8]> {
    let (class, _) = peek(data)?;
    if class != Class::Request {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([data[2], data[3]]));
    let body = data.get(HEADER_LEN..HEADER_LEN.checked_add(len)?)?;
    let mut at = 0usize;
    while let Some(head) = body.get(at..at + 4) {
        let t = u16::from_be_bytes([head[0], head[1]]);
        let l = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let value = body.get(at + 4..at + 4 + l)?;
        if t == 0x0006 {
            let end = value.iter().position(|&b| b == b':')?;
            return Some(&value[..end]);
        }
        // Attributes are padded to 4 bytes (RFC 8489 section 14).
        at += 4 + l.div_ceil(4) * 4;
    }
    None
}

/// Routes datagrams arriving on a shared socket to one of many agents,
/// identified by `K`.
#[derive(Debug)]
pub struct Demux<K> {
    by_ufrag: HashMap<Box<[u8]>, K>,
    by_tid: HashMap<[u8; 12], (K, Instant)>,
    /// Transactions older than this are forgotten by [`Demux::expire`].
    pub transaction_lifetime: Duration,
}

impl<K: Copy + Eq + Hash> Default for Demux<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Copy + Eq + Hash> Demux<K> {
    /// An empty demultiplexer; transactions live 40 s (longer than any
    /// agent retransmits or awaits a consent response).
    pub fn new() -> Self {
        Self { by_ufrag: HashMap::new(), by_tid: HashMap::new(), transaction_lifetime: Duration::from_secs(40) }
    }

    /// Routes requests carrying `ufrag` (the agent's local ufrag) to `key`.
    pub fn register(&mut self, ufrag: &str, key: K) {
        self.by_ufrag.insert(ufrag.as_bytes().into(), key);
    }

    /// Forgets an agent.
    pub fn unregister(&mut self, ufrag: &str) {
        if let Some(k) = self.by_ufrag.remove(ufrag.as_bytes()) {
            self.by_tid.retain(|_, (v, _)| *v != k);
        }
    }

    /// Records an agent's outgoing datagram: when it is a request, its
    /// response will route back to `key`.
    pub fn note_transmit(&mut self, now: Instant, key: K, t: &Transmit) {
        if let Some((Class::Request, tid)) = peek(&t.contents) {
            self.by_tid.insert(tid, (key, now));
        }
    }

    /// The agent a STUN datagram belongs to, if any.
    pub fn route(&mut self, data: &[u8]) -> Option<K> {
        match peek(data)? {
            (Class::Request, _) => self.by_ufrag.get(request_ufrag(data)?).copied(),
            (Class::Success | Class::Error, tid) => self.by_tid.remove(&tid).map(|(k, _)| k),
            (Class::Indication, _) => None,
        }
    }

    /// Drops transactions older than [`Demux::transaction_lifetime`].
    pub fn expire(&mut self, now: Instant) {
        let life = self.transaction_lifetime;
        self.by_tid.retain(|_, (_, t)| now.saturating_duration_since(*t) < life);
    }

    /// Registered agents and remembered transactions.
    pub fn len(&self) -> (usize, usize) {
        (self.by_ufrag.len(), self.by_tid.len())
    }

    /// No agent registered.
    pub fn is_empty(&self) -> bool {
        self.by_ufrag.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stun::{CheckAttrs, binding_request, binding_success, short_term_key};

    #[test]
    fn routes_requests_by_ufrag_and_responses_by_transaction() {
        let key = short_term_key("0123456789012345678901").unwrap();
        let attrs = CheckAttrs { priority: 1, controlling: true, tiebreaker: 2, use_candidate: false };
        let mut req = Vec::new();
        binding_request(&mut req, [1; 12], Some(("bob1:alice", &key)), Some(attrs)).unwrap();
        assert_eq!(request_ufrag(&req), Some(&b"bob1"[..]));
        let mut d = Demux::new();
        d.register("bob1", 7u32);
        d.register("carl", 8u32);
        assert_eq!(d.route(&req), Some(7));
        // Alice (key 1) sent the request; the answer routes back to her once.
        let now = Instant::now();
        let t = Transmit {
            source: "127.0.0.1:1".parse().unwrap(),
            destination: "127.0.0.1:2".parse().unwrap(),
            contents: req,
        };
        d.note_transmit(now, 1, &t);
        let mut resp = Vec::new();
        binding_success(&mut resp, [1; 12], "127.0.0.1:1".parse().unwrap(), &key).unwrap();
        assert_eq!(d.route(&resp), Some(1));
        assert_eq!(d.route(&resp), None);
        d.note_transmit(now, 1, &t);
        d.expire(now + Duration::from_secs(41));
        assert_eq!(d.len(), (2, 0));
        d.unregister("bob1");
        assert_eq!(d.len(), (1, 0));
    }

    #[test]
    fn hostile_framing_is_refused() {
        // A request whose USERNAME is "evtj:h6vY" (as in RFC 5769 2.1).
        let mut m = vec![0x00, 0x01, 0x00, 0x10, 0x21, 0x12, 0xa4, 0x42];
        m.extend_from_slice(&[0; 12]);
        m.extend_from_slice(&[0x00, 0x06, 0x00, 0x09]);
        m.extend_from_slice(b"evtj:h6vY\0\0\0");
        assert_eq!(request_ufrag(&m), Some(&b"evtj"[..]));
        for cut in 0..m.len() {
            let _ = request_ufrag(&m[..cut]);
        }
        let mut long = m.clone();
        long[3] = 0xff; // length beyond the datagram
        assert_eq!(request_ufrag(&long), None);
        let mut bad = m.clone();
        bad[23] = 0xf0; // attribute length beyond the body
        assert_eq!(request_ufrag(&bad), None);
        let mut nocolon = m;
        nocolon[28] = b'x';
        assert_eq!(request_ufrag(&nocolon), None);
    }
}
