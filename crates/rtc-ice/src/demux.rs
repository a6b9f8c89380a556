//! Many agents behind shared UDP sockets: the router ([`Demux`]).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::agent::{Transmit, split_username};
use crate::stun::{Class, is_stun, peek, request_username};

/// The ufrag a STUN request is addressed to: USERNAME up to its first
/// colon. Reads the attributes in place; `None` for anything that is not a
/// well-framed STUN request with a USERNAME holding a colon. Never panics.
pub fn request_ufrag(data: &[u8]) -> Option<&[u8]> {
    request_usernames(data).map(|(local, _)| local)
}

/// The two halves of a STUN request's USERNAME, split at its first colon:
/// the receiver's ufrag and the sender's (RFC 8445 section 7.2.2). Read in
/// place; `None` for anything that is not a well-framed STUN request with a
/// USERNAME holding a colon. Never panics.
pub fn request_usernames(data: &[u8]) -> Option<(&[u8], &[u8])> {
    request_username(data).and_then(split_username)
}

/// A 4-tuple: the local socket address and the remote one.
type FourTuple = (SocketAddr, SocketAddr);

/// Counters of a [`Demux`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DemuxStats {
    /// 4-tuples a key asked for in [`Demux::set_paths`] that another key
    /// already owned (they stay with the first owner, and pass to the next
    /// key asking for them when it lets them go).
    pub path_conflicts: u64,
    /// Transactions forgotten before their lifetime because
    /// [`Demux::max_transactions`] were remembered.
    pub transactions_evicted: u64,
    /// Transactions forgotten because they outlived
    /// [`Demux::transaction_lifetime`].
    pub transactions_expired: u64,
    /// Datagrams [`Demux::route_datagram`] or [`Demux::route`] found no key
    /// for.
    pub unrouted: u64,
}

/// What one key holds, so that [`Demux::unregister_key`] costs only its own
/// entries.
#[derive(Debug)]
struct KeyRoutes {
    /// This registration of the key: transactions noted under an earlier
    /// one (before [`Demux::unregister_key`]) never route to it.
    epoch: u64,
    /// Local ufrags routed to the key from any sender.
    ufrags: Vec<Box<[u8]>>,
    /// `local:remote` USERNAMEs routed to the key.
    usernames: Vec<Box<[u8]>>,
    /// The 4-tuples the key asked for, sorted; `true` when it owns it.
    paths: Vec<(FourTuple, bool)>,
}

#[derive(Debug, Clone, Copy)]
struct PendingTx<K> {
    key: K,
    epoch: u64,
    /// Matches the entry of `Demux::tx_order` that noted it.
    seq: u64,
}

/// Routes datagrams arriving on shared sockets to one of many agents (or
/// connections), identified by a caller-chosen key `K`:
///
/// - A STUN request carries USERNAME `<receiver's ufrag>:<sender's ufrag>`
///   (RFC 8445 section 7.2.2). It routes by both halves first
///   ([`Demux::register_from`]: several forks of one connection share a
///   local ufrag and differ by their peer's), then by the receiver's ufrag
///   alone ([`Demux::register`]: a peer whose ufrag is not known yet).
/// - A STUN success or error response carries no USERNAME. It routes by the
///   transaction id of the request the agent sent, recorded by
///   [`Demux::note_request`] and used once.
/// - A STUN indication, and any datagram that is not STUN (RFC 7983: DTLS,
///   SRTP), route by their 4-tuple `(local, remote)` among the paths each
///   key declared with [`Demux::set_paths`] (for an [`Agent`], its
///   [`Agent::data_paths`], refreshed when [`Agent::paths_generation`]
///   moves).
///
/// Routing reads no key material: a routed datagram still has to be
/// authenticated by the agent it reaches ([`Agent::handle_receive`]), and
/// [`Agent::accepts`] answers the same question for one agent.
///
/// Lookups are hash-map reads: a request costs one or two (its USERNAME is
/// read in place), a response one, anything else one, whatever the number
/// of keys. Remembered transactions are capped ([`Demux::max_transactions`])
/// and expire ([`Demux::transaction_lifetime`]), so a flood of requests
/// cannot grow the router without bound; routes and paths are added only
/// by the caller.
///
/// [`Agent`]: crate::Agent
/// [`Agent::data_paths`]: crate::Agent::data_paths
/// [`Agent::paths_generation`]: crate::Agent::paths_generation
/// [`Agent::handle_receive`]: crate::Agent::handle_receive
/// [`Agent::accepts`]: crate::Agent::accepts
#[derive(Debug)]
pub struct Demux<K> {
    by_ufrag: HashMap<Box<[u8]>, K>,
    by_username: HashMap<Box<[u8]>, K>,
    by_path: HashMap<FourTuple, K>,
    /// Keys that asked for a 4-tuple another key owns, first asker first.
    waiting: HashMap<FourTuple, Vec<K>>,
    by_tid: HashMap<[u8; 12], PendingTx<K>>,
    /// Noted transactions in the order they were noted, for expiry and
    /// eviction; entries whose transaction was used or replaced are skipped.
    tx_order: VecDeque<([u8; 12], u64, Instant)>,
    keys: HashMap<K, KeyRoutes>,
    next_epoch: u64,
    next_seq: u64,
    stats: DemuxStats,
    /// Transactions older than this are forgotten (when new ones are noted,
    /// and by [`Demux::expire`]).
    pub transaction_lifetime: Duration,
    /// At most this many transactions are remembered; noting one more
    /// forgets the oldest (counted in [`DemuxStats::transactions_evicted`]).
    pub max_transactions: usize,
}

impl<K: Copy + Eq + Hash> Default for Demux<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Copy + Eq + Hash> Demux<K> {
    /// An empty router; transactions live 40 s (longer than any agent
    /// retransmits or awaits a consent response), at most 4096 at a time.
    pub fn new() -> Self {
        Self {
            by_ufrag: HashMap::new(),
            by_username: HashMap::new(),
            by_path: HashMap::new(),
            waiting: HashMap::new(),
            by_tid: HashMap::new(),
            tx_order: VecDeque::new(),
            keys: HashMap::new(),
            next_epoch: 0,
            next_seq: 0,
            stats: DemuxStats::default(),
            transaction_lifetime: Duration::from_secs(40),
            max_transactions: 4096,
        }
    }

    fn routes(&mut self, key: K) -> &mut KeyRoutes {
        let next_epoch = &mut self.next_epoch;
        self.keys.entry(key).or_insert_with(|| {
            *next_epoch += 1;
            KeyRoutes { epoch: *next_epoch, ufrags: Vec::new(), usernames: Vec::new(), paths: Vec::new() }
        })
    }

    /// Routes requests addressed to the local `ufrag`, from any sender, to
    /// `key`, unless [`Demux::register_from`] names the sender. A ufrag
    /// registered before goes to `key` now.
    pub fn register(&mut self, ufrag: &str, key: K) {
        let name: Box<[u8]> = ufrag.as_bytes().into();
        if let Some(old) = self.by_ufrag.insert(name.clone(), key)
            && old != key
            && let Some(r) = self.keys.get_mut(&old)
        {
            r.ufrags.retain(|u| *u != name);
        }
        let r = self.routes(key);
        if !r.ufrags.contains(&name) {
            r.ufrags.push(name);
        }
    }

    /// Routes requests addressed to the local `local_ufrag` by the peer
    /// whose ufrag is `remote_ufrag` (USERNAME `local_ufrag:remote_ufrag`)
    /// to `key`. Takes precedence over [`Demux::register`] of the same local
    /// ufrag: this is how forks sharing one local ufrag are told apart. A
    /// pair registered before goes to `key` now. (ICE ufrags hold no colon;
    /// a `local_ufrag` with one never matches.)
    pub fn register_from(&mut self, local_ufrag: &str, remote_ufrag: &str, key: K) {
        let mut name = Vec::with_capacity(local_ufrag.len() + 1 + remote_ufrag.len());
        name.extend_from_slice(local_ufrag.as_bytes());
        name.push(b':');
        name.extend_from_slice(remote_ufrag.as_bytes());
        let name: Box<[u8]> = name.into();
        if let Some(old) = self.by_username.insert(name.clone(), key)
            && old != key
            && let Some(r) = self.keys.get_mut(&old)
        {
            r.usernames.retain(|u| *u != name);
        }
        let r = self.routes(key);
        if !r.usernames.contains(&name) {
            r.usernames.push(name);
        }
    }

    /// Forgets the any-sender route of the local `ufrag` (see
    /// [`Demux::register`]) and the transactions of the key it led to.
    /// [`Demux::unregister_key`] forgets everything of a key.
    pub fn unregister(&mut self, ufrag: &str) {
        let Some(key) = self.by_ufrag.remove(ufrag.as_bytes()) else { return };
        self.next_epoch += 1;
        let epoch = self.next_epoch;
        if let Some(r) = self.keys.get_mut(&key) {
            r.ufrags.retain(|u| **u != *ufrag.as_bytes());
            // Its noted transactions no longer route.
            r.epoch = epoch;
        }
    }

    /// Forgets every route of `key`: its ufrags (both kinds), its paths
    /// (each passes to the next key that asked for it) and its
    /// transactions. Costs the number of entries `key` holds, not a scan of
    /// the router: its transactions are not searched for but disowned, and
    /// leave when used, expired or evicted, routing nowhere meanwhile.
    pub fn unregister_key(&mut self, key: K) {
        let Some(r) = self.keys.remove(&key) else { return };
        for u in r.ufrags {
            if let Entry::Occupied(e) = self.by_ufrag.entry(u)
                && *e.get() == key
            {
                e.remove();
            }
        }
        for u in r.usernames {
            if let Entry::Occupied(e) = self.by_username.entry(u)
                && *e.get() == key
            {
                e.remove();
            }
        }
        for (p, owned) in r.paths {
            if owned {
                self.release_path(p, key);
            } else {
                self.stop_waiting(p, key);
            }
        }
    }

    /// Declares the 4-tuples `(local, remote)` over which indications and
    /// datagrams that are not STUN route to `key`, replacing those declared
    /// before (for an [`Agent`](crate::Agent): its
    /// [`data_paths`](crate::Agent::data_paths)). A 4-tuple another key
    /// already owns stays with it and is counted in
    /// [`DemuxStats::path_conflicts`]; `key` gets it when the owner lets it
    /// go. Costs the number of old and new paths of `key` (sorted once).
    pub fn set_paths(&mut self, key: K, paths: impl IntoIterator<Item = (SocketAddr, SocketAddr)>) {
        let mut new: Vec<FourTuple> = paths.into_iter().collect();
        new.sort_unstable();
        new.dedup();
        let old = std::mem::take(&mut self.routes(key).paths);
        let mut next = Vec::with_capacity(new.len());
        let (mut i, mut j) = (0, 0);
        while i < old.len() || j < new.len() {
            match (old.get(i), new.get(j)) {
                (Some(&(o, owned)), Some(&n)) if o == n => {
                    next.push((o, owned));
                    i += 1;
                    j += 1;
                }
                (Some(&(o, owned)), n) if n.is_none_or(|&n| o < n) => {
                    if owned {
                        self.release_path(o, key);
                    } else {
                        self.stop_waiting(o, key);
                    }
                    i += 1;
                }
                (_, Some(&n)) => {
                    let owned = self.take_path(n, key);
                    next.push((n, owned));
                    j += 1;
                }
                (_, None) => break,
            }
        }
        self.routes(key).paths = next;
    }

    fn take_path(&mut self, p: FourTuple, key: K) -> bool {
        match self.by_path.entry(p) {
            Entry::Vacant(e) => {
                e.insert(key);
                true
            }
            Entry::Occupied(e) if *e.get() == key => true,
            Entry::Occupied(_) => {
                self.stats.path_conflicts += 1;
                let w = self.waiting.entry(p).or_default();
                if !w.contains(&key) {
                    w.push(key);
                }
                false
            }
        }
    }

    /// `key` lets `p` go: the first key waiting for it gets it.
    fn release_path(&mut self, p: FourTuple, key: K) {
        if self.by_path.get(&p) != Some(&key) {
            return;
        }
        self.by_path.remove(&p);
        let Entry::Occupied(mut w) = self.waiting.entry(p) else { return };
        let mut heir = None;
        while heir.is_none() && !w.get().is_empty() {
            let next = w.get_mut().remove(0);
            if let Some(r) = self.keys.get_mut(&next)
                && let Ok(at) = r.paths.binary_search_by(|(q, _)| q.cmp(&p))
            {
                r.paths[at].1 = true;
                heir = Some(next);
            }
        }
        if w.get().is_empty() {
            w.remove();
        }
        if let Some(h) = heir {
            self.by_path.insert(p, h);
        }
    }

    fn stop_waiting(&mut self, p: FourTuple, key: K) {
        if let Entry::Occupied(mut w) = self.waiting.entry(p) {
            w.get_mut().retain(|k| *k != key);
            if w.get().is_empty() {
                w.remove();
            }
        }
    }

    /// Records a datagram `key` sends: when it is a STUN request, the
    /// response carrying its transaction id will route back to `key` (once).
    /// A retransmission of a noted request changes nothing. Forgets
    /// transactions older than [`Demux::transaction_lifetime`], and the
    /// oldest one when [`Demux::max_transactions`] are remembered.
    pub fn note_request(&mut self, now: Instant, key: K, data: &[u8]) {
        let Some((Class::Request, tid)) = peek(data) else { return };
        self.expire(now);
        if self.by_tid.contains_key(&tid) {
            return;
        }
        let cap = self.max_transactions.max(1);
        while self.by_tid.len() >= cap || self.tx_order.len() >= cap.saturating_mul(2) {
            let Some((old, seq, _)) = self.tx_order.pop_front() else { break };
            if self.by_tid.get(&old).is_some_and(|t| t.seq == seq) {
                self.by_tid.remove(&old);
                self.stats.transactions_evicted += 1;
            }
        }
        let epoch = self.routes(key).epoch;
        self.next_seq += 1;
        let seq = self.next_seq;
        self.by_tid.insert(tid, PendingTx { key, epoch, seq });
        self.tx_order.push_back((tid, seq, now));
    }

    /// Records an agent's outgoing datagram (see [`Demux::note_request`]).
    pub fn note_transmit(&mut self, now: Instant, key: K, t: &Transmit) {
        self.note_request(now, key, &t.contents);
    }

    /// The key a datagram that arrived on the local socket `local` from
    /// `remote` belongs to:
    ///
    /// - a STUN request by its USERNAME: the [`Demux::register_from`] of
    ///   both ufrags, else the [`Demux::register`] of the local one;
    /// - a STUN success or error response by its transaction id (forgotten
    ///   once used);
    /// - a STUN indication, or anything that is not STUN (RFC 7983), by the
    ///   4-tuple ([`Demux::set_paths`]).
    ///
    /// `None` (counted in [`DemuxStats::unrouted`]) for anything else,
    /// including a datagram whose first byte says STUN but whose header is
    /// not. Never panics, whatever `data` holds.
    pub fn route_datagram(&mut self, local: SocketAddr, remote: SocketAddr, data: &[u8]) -> Option<K> {
        let k = if is_stun(data) {
            match peek(data) {
                Some((Class::Request, _)) => self.route_request(data),
                Some((Class::Success | Class::Error, tid)) => self.route_response(tid),
                Some((Class::Indication, _)) => self.by_path.get(&(local, remote)).copied(),
                None => None,
            }
        } else {
            self.by_path.get(&(local, remote)).copied()
        };
        if k.is_none() {
            self.stats.unrouted += 1;
        }
        k
    }

    /// The key a STUN datagram belongs to, without its addresses: requests
    /// by USERNAME and responses by transaction id as
    /// [`Demux::route_datagram`] does; `None` for indications and anything
    /// else.
    pub fn route(&mut self, data: &[u8]) -> Option<K> {
        let k = match peek(data) {
            Some((Class::Request, _)) => self.route_request(data),
            Some((Class::Success | Class::Error, tid)) => self.route_response(tid),
            Some((Class::Indication, _)) | None => None,
        };
        if k.is_none() {
            self.stats.unrouted += 1;
        }
        k
    }

    fn route_request(&self, data: &[u8]) -> Option<K> {
        let username = request_username(data)?;
        if let Some(k) = self.by_username.get(username) {
            return Some(*k);
        }
        let (local, _) = split_username(username)?;
        self.by_ufrag.get(local).copied()
    }

    fn route_response(&mut self, tid: [u8; 12]) -> Option<K> {
        let t = self.by_tid.remove(&tid)?;
        // The order queue's entry goes when it reaches the front; drop the
        // used ones there now so the queue stays short.
        while let Some(&(front, seq, _)) = self.tx_order.front() {
            if self.by_tid.get(&front).is_some_and(|t| t.seq == seq) {
                break;
            }
            self.tx_order.pop_front();
        }
        let live = self.keys.get(&t.key).is_some_and(|r| r.epoch == t.epoch);
        live.then_some(t.key)
    }

    /// Forgets transactions older than [`Demux::transaction_lifetime`]
    /// (`now` must not go backwards between calls), and releases spare
    /// memory after a burst.
    pub fn expire(&mut self, now: Instant) {
        let life = self.transaction_lifetime;
        while let Some(&(tid, seq, at)) = self.tx_order.front() {
            let live = self.by_tid.get(&tid).is_some_and(|t| t.seq == seq);
            if live && now.saturating_duration_since(at) < life {
                break;
            }
            self.tx_order.pop_front();
            if live {
                self.by_tid.remove(&tid);
                self.stats.transactions_expired += 1;
            }
        }
        if self.tx_order.capacity() > 64 && self.tx_order.len() < self.tx_order.capacity() / 4 {
            self.tx_order.shrink_to(self.tx_order.len() * 2);
            self.by_tid.shrink_to(self.by_tid.len() * 2);
        }
    }

    /// Registered ufrag routes (both kinds) and remembered transactions.
    pub fn len(&self) -> (usize, usize) {
        (self.by_ufrag.len() + self.by_username.len(), self.by_tid.len())
    }

    /// The 4-tuples routed (each owned by one key).
    pub fn path_count(&self) -> usize {
        self.by_path.len()
    }

    /// No ufrag route and no path registered.
    pub fn is_empty(&self) -> bool {
        self.by_ufrag.is_empty() && self.by_username.is_empty() && self.by_path.is_empty()
    }

    /// Counters.
    pub fn stats(&self) -> DemuxStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stun::{CheckAttrs, binding_indication, binding_request, binding_success, short_term_key};

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn request(username: &str, tid: [u8; 12]) -> Vec<u8> {
        let key = short_term_key("0123456789012345678901").unwrap();
        let attrs = CheckAttrs { priority: 1, controlling: true, tiebreaker: 2, use_candidate: false };
        let mut req = Vec::new();
        binding_request(&mut req, tid, Some((username, &key)), Some(attrs)).unwrap();
        req
    }

    fn response(tid: [u8; 12]) -> Vec<u8> {
        let key = short_term_key("0123456789012345678901").unwrap();
        let mut resp = Vec::new();
        binding_success(&mut resp, tid, addr("127.0.0.1:1"), &key).unwrap();
        resp
    }

    #[test]
    fn routes_requests_by_ufrag_and_responses_by_transaction() {
        let req = request("bob1:alice", [1; 12]);
        assert_eq!(request_ufrag(&req), Some(&b"bob1"[..]));
        assert_eq!(request_usernames(&req), Some((&b"bob1"[..], &b"alice"[..])));
        let mut d = Demux::new();
        d.register("bob1", 7u32);
        d.register("carl", 8u32);
        assert_eq!(d.route(&req), Some(7));
        // Alice (key 1) sent the request; the answer routes back to her once.
        let now = Instant::now();
        let t = Transmit::udp(addr("127.0.0.1:1"), addr("127.0.0.1:2"), req);
        d.note_transmit(now, 1, &t);
        let resp = response([1; 12]);
        assert_eq!(d.route(&resp), Some(1));
        assert_eq!(d.route(&resp), None);
        d.note_transmit(now, 1, &t);
        d.expire(now + Duration::from_secs(41));
        assert_eq!(d.len(), (2, 0));
        assert_eq!(d.stats().transactions_expired, 1);
        d.unregister("bob1");
        assert_eq!(d.len(), (1, 0));
    }

    #[test]
    fn forks_sharing_a_local_ufrag_route_by_sender() {
        let (l, r) = (addr("10.0.0.1:5000"), addr("10.0.0.2:6000"));
        let mut d = Demux::new();
        // Fork 1 and 2 answer peers "peerA" and "peerB" with the ufrag
        // "mine"; key 3 takes "mine" from anyone else.
        d.register_from("mine", "peerA", 1u32);
        d.register_from("mine", "peerB", 2u32);
        d.register("mine", 3u32);
        assert_eq!(d.route_datagram(l, r, &request("mine:peerA", [1; 12])), Some(1));
        assert_eq!(d.route_datagram(l, r, &request("mine:peerB", [2; 12])), Some(2));
        assert_eq!(d.route_datagram(l, r, &request("mine:peerC", [3; 12])), Some(3));
        assert_eq!(d.route(&request("mine:peerB", [2; 12])), Some(2));
        // A sender with a colon in its ufrag is still "the rest".
        assert_eq!(d.route_datagram(l, r, &request("mine:peerA:x", [3; 12])), Some(3));
        assert_eq!(d.route_datagram(l, r, &request("other:peerA", [4; 12])), None);
        // Without the fallback, an unknown sender routes nowhere.
        d.unregister("mine");
        assert_eq!(d.route_datagram(l, r, &request("mine:peerC", [3; 12])), None);
        assert_eq!(d.route_datagram(l, r, &request("mine:peerA", [1; 12])), Some(1));
        assert_eq!(d.stats().unrouted, 2);
        // Re-registering a pair moves it.
        d.register_from("mine", "peerA", 2);
        assert_eq!(d.route_datagram(l, r, &request("mine:peerA", [1; 12])), Some(2));
        d.unregister_key(2);
        assert_eq!(d.route_datagram(l, r, &request("mine:peerA", [1; 12])), None);
        assert!(d.is_empty());
    }

    #[test]
    fn paths_route_data_and_indications_and_conflicts_keep_the_first_owner() {
        let l = addr("10.0.0.1:5000");
        let (ra, rb, rc) = (addr("192.0.2.1:1"), addr("192.0.2.2:2"), addr("192.0.2.3:3"));
        let mut d = Demux::new();
        d.set_paths(1u32, [(l, ra), (l, rb), (l, ra)]);
        d.set_paths(2u32, [(l, rb), (l, rc)]);
        assert_eq!(d.stats().path_conflicts, 1);
        assert_eq!(d.path_count(), 3);
        let rtp = [0x80u8, 0, 0, 1];
        let dtls = [22u8, 0xfe, 0xfd];
        assert_eq!(d.route_datagram(l, ra, &rtp), Some(1));
        assert_eq!(d.route_datagram(l, rb, &dtls), Some(1));
        assert_eq!(d.route_datagram(l, rc, &rtp), Some(2));
        assert_eq!(d.route_datagram(addr("10.0.0.1:5001"), ra, &rtp), None);
        let mut ind = Vec::new();
        binding_indication(&mut ind, [9; 12]).unwrap();
        assert_eq!(d.route_datagram(l, rc, &ind), Some(2));
        assert_eq!(d.route(&ind), None);
        // Not STUN past the first byte: nobody's.
        assert_eq!(d.route_datagram(l, ra, &[0, 1, 0, 0]), None);
        // Key 1 lets rb go: key 2, waiting for it, gets it.
        d.set_paths(1, [(l, ra)]);
        assert_eq!(d.route_datagram(l, rb, &rtp), Some(2));
        // Keeping a path across set_paths keeps it, even with waiters.
        d.set_paths(1, [(l, ra), (l, rb)]);
        assert_eq!(d.stats().path_conflicts, 2);
        d.set_paths(1, [(l, rb), (l, ra)]);
        assert_eq!(d.route_datagram(l, rb, &rtp), Some(2));
        // Unregistering key 2 hands rb to key 1 and forgets rc.
        d.unregister_key(2);
        assert_eq!(d.route_datagram(l, rb, &rtp), Some(1));
        assert_eq!(d.route_datagram(l, rc, &rtp), None);
        d.set_paths(1, []);
        assert_eq!(d.path_count(), 0);
        assert!(d.waiting.is_empty());
    }

    #[test]
    fn unregister_key_forgets_everything_of_that_key_only() {
        let now = Instant::now();
        let (l, r) = (addr("10.0.0.1:5000"), addr("10.0.0.2:6000"));
        let mut d = Demux::new();
        d.register("a1", 1u32);
        d.register_from("a1", "zz", 1);
        d.set_paths(1, [(l, r)]);
        d.note_request(now, 1, &request("zz:a1", [1; 12]));
        d.register("b1", 2u32);
        d.note_request(now, 2, &request("yy:b1", [2; 12]));
        d.unregister_key(1);
        assert_eq!(d.route_datagram(l, r, &request("a1:zz", [5; 12])), None);
        assert_eq!(d.route_datagram(l, r, &[0x80]), None);
        assert_eq!(d.route_datagram(l, r, &response([1; 12])), None);
        // A key reused later does not inherit the old transactions.
        d.note_request(now, 2, &request("yy:b1", [2; 12]));
        d.register("a2", 1);
        assert_eq!(d.route(&response([1; 12])), None);
        assert_eq!(d.route(&response([2; 12])), Some(2));
        assert_eq!(d.route(&request("b1:yy", [3; 12])), Some(2));
        assert_eq!(d.len(), (2, 0));
    }

    #[test]
    fn transactions_are_capped_and_expire() {
        let t0 = Instant::now();
        let mut d = Demux::new();
        d.max_transactions = 8;
        for i in 0..100u8 {
            let req = request("x:y", [i; 12]);
            d.note_request(t0, 1u32, &req);
            // A retransmission is the same transaction.
            d.note_request(t0, 1u32, &req);
            assert!(d.len().1 <= 8);
            assert!(d.tx_order.len() <= 16);
        }
        assert_eq!(d.stats().transactions_evicted, 92);
        assert_eq!(d.route(&response([0; 12])), None);
        assert_eq!(d.route(&response([99; 12])), Some(1));
        // Only requests are noted.
        d.note_request(t0, 1, &response([200; 12]));
        d.note_request(t0, 1, b"\x80rtp");
        assert_eq!(d.len().1, 7);
        // Responses used in order leave nothing behind.
        for i in 92..99u8 {
            assert_eq!(d.route(&response([i; 12])), Some(1));
        }
        assert!(d.tx_order.is_empty());
        d.note_request(t0, 1, &request("x:y", [1; 12]));
        d.note_request(t0 + Duration::from_secs(30), 1, &request("x:y", [2; 12]));
        // Noting a request expires what is too old.
        d.note_request(t0 + Duration::from_secs(45), 1, &request("x:y", [3; 12]));
        assert_eq!(d.len().1, 2);
        assert_eq!(d.route(&response([1; 12])), None);
    }

    #[test]
    fn hostile_framing_is_refused() {
        // A request whose USERNAME is "evtj:h6vY" (as in RFC 5769 2.1).
        let mut m = vec![0x00, 0x01, 0x00, 0x10, 0x21, 0x12, 0xa4, 0x42];
        m.extend_from_slice(&[0; 12]);
        m.extend_from_slice(&[0x00, 0x06, 0x00, 0x09]);
        m.extend_from_slice(b"evtj:h6vY\0\0\0");
        assert_eq!(request_ufrag(&m), Some(&b"evtj"[..]));
        assert_eq!(request_usernames(&m), Some((&b"evtj"[..], &b"h6vY"[..])));
        for cut in 0..m.len() {
            let _ = request_usernames(&m[..cut]);
        }
        let mut long = m.clone();
        long[3] = 0xff; // length beyond the datagram
        assert_eq!(request_ufrag(&long), None);
        let mut bad = m.clone();
        bad[23] = 0xf0; // attribute length beyond the body
        assert_eq!(request_ufrag(&bad), None);
        let mut nocolon = m.clone();
        nocolon[28] = b'x';
        assert_eq!(request_ufrag(&nocolon), None);
        let mut response = m;
        response[1] = 0x01;
        response[0] = 0x01; // a success response carries no routing USERNAME
        assert_eq!(request_usernames(&response), None);
    }

    mod prop {
        use proptest::prelude::*;

        use super::*;

        fn demux() -> Demux<u8> {
            let mut d = Demux::new();
            d.register("evtj", 1);
            d.register_from("evtj", "h6vY", 2);
            d.set_paths(3, [(addr("127.0.0.1:1"), addr("127.0.0.1:2"))]);
            d
        }

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
                let mut d = demux();
                let (l, r) = (addr("127.0.0.1:1"), addr("127.0.0.1:2"));
                let _ = request_usernames(&data);
                let _ = d.route_datagram(l, r, &data);
                let _ = d.route(&data);
                d.note_request(Instant::now(), 4, &data);
            }

            /// A STUN header with the magic cookie followed by arbitrary
            /// attributes, the length field arbitrary or true.
            #[test]
            fn arbitrary_attributes_never_panic(
                class in 0u8..4,
                len in proptest::option::of(any::<u16>()),
                body in proptest::collection::vec(any::<u8>(), 0..120),
            ) {
                let t: u16 = 0x0001 | (u16::from(class & 1) << 4) | (u16::from(class >> 1) << 8);
                let n = len.unwrap_or(u16::try_from(body.len()).unwrap());
                let mut m = Vec::new();
                m.extend_from_slice(&t.to_be_bytes());
                m.extend_from_slice(&n.to_be_bytes());
                m.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
                m.extend_from_slice(&[7; 12]);
                m.extend_from_slice(&body);
                let mut d = demux();
                if let Some((l, s)) = request_usernames(&m) {
                    prop_assert!(!l.contains(&b':'));
                    prop_assert!(l.len() + s.len() < m.len());
                }
                let _ = d.route_datagram(addr("127.0.0.1:1"), addr("127.0.0.1:2"), &m);
                d.note_request(Instant::now(), 4, &m);
                let _ = d.route(&m);
            }
        }
    }
}
