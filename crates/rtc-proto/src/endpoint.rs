//! [`Endpoint`]: many connections on shared sockets, with one router.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::ops::{Deref, DerefMut};
use std::time::Instant;

use rtc_ice::Demux;
use rtc_ice::mdns::{MdnsEvent, MdnsTransmit, Resolver, Responder};

use crate::SocketId;
use crate::connection::{
    Connection, DataMessage, FrameInfo, Receive, SocketConfig, StreamOutput, Transmit, TurnStream,
};
use crate::error::Error;
use crate::events::Event;

/// A connection of an [`Endpoint`]. A handle of a removed connection never
/// names a later one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnHandle {
    index: u32,
    generation: u32,
}

impl ConnHandle {
    /// A small number unique among the endpoint's live connections.
    pub fn index(self) -> usize {
        self.index as usize
    }
}

struct Entry {
    conn: Connection,
    /// The deadline last pushed on the timer heap.
    deadline: Option<Instant>,
    queued_transmit: bool,
    queued_event: bool,
    queued_frame: bool,
    queued_data: bool,
    queued_stream: bool,
    /// What the router was told: local ufrag, remote ufrag, paths.
    route_local: String,
    route_remote: Option<String>,
    /// The connection's route generation those were read at.
    route_gen: Option<u64>,
    route_paths: Option<u64>,
}

struct Slot {
    generation: u32,
    /// Boxed: a free slot costs 16 octets, and the slot vector's growth
    /// does not double the connections' own size.
    entry: Option<Box<Entry>>,
}

struct SocketEntry {
    config: SocketConfig,
    users: Vec<ConnHandle>,
    unrouted: u64,
}

/// Everything but the connections, so a [`ConnectionMut`] can hold one
/// connection and this at once.
struct Core {
    free: Vec<u32>,
    sockets: Vec<Option<SocketEntry>>,
    router: Demux<ConnHandle>,
    timers: BinaryHeap<Reverse<(Instant, ConnHandle)>>,
    transmit_ready: VecDeque<ConnHandle>,
    event_ready: VecDeque<ConnHandle>,
    frame_ready: VecDeque<ConnHandle>,
    data_ready: VecDeque<ConnHandle>,
    /// Connections that allocate through TURN servers over TCP or TLS.
    stream_ready: VecDeque<ConnHandle>,
    /// Which connection each open stream to a TURN server is for.
    streams: HashMap<TurnStream, ConnHandle>,
    /// ICE-TCP connections being opened, by socket, active candidate and
    /// remote: which connection asked.
    tcp_connects: HashMap<(SocketId, SocketAddr, SocketAddr), ConnHandle>,
    /// Connections per local ufrag, to hand a freed "any sender" route to
    /// a fork still waiting for its remote description.
    ufrags: HashMap<String, u32>,
    rescan: Vec<String>,
    live: usize,
    /// Due timers of one handle_timeout call (kept to reuse its memory).
    due: Vec<(Instant, ConnHandle)>,
    /// When the router last forgot old transactions.
    expired: Option<Instant>,
    /// The mDNS names connections asked for, not yet given to the resolver.
    mdns_asked: VecDeque<(ConnHandle, String)>,
    /// Who waits for which name (lowercase).
    mdns_waiting: Vec<(String, ConnHandle)>,
    mdns: Resolver,
    /// Answers for the names concealing the connections' host addresses.
    responder: Responder,
}

/// mDNS names asked for and not yet given to the resolver, and connections
/// waiting for a name; beyond these a name is not asked for (its candidate
/// is dropped by its agent's timeout).
const MDNS_ASKED: usize = 256;
const MDNS_WAITING: usize = 1024;

/// Many [`Connection`]s on shared sockets: forks of one call, or a media
/// server holding thousands of peers on one UDP port. Datagrams are routed
/// in O(1) by one [`rtc_ice::Demux`]: STUN requests by the ufrags of
/// USERNAME (the receiver's, then the sender's: forks share a local ufrag),
/// responses by the transaction id of the request the connection sent,
/// DTLS, SRTP and indications by the 4-tuple of a candidate pair the
/// connection's agent knows. Timers are kept in a heap and output in ready
/// queues, so an idle connection costs nothing per call.
///
/// The contract is [`Connection`]'s, for all connections at once: feed
/// [`Endpoint::handle_datagram`] and [`Endpoint::handle_timeout`], drain
/// [`Endpoint::poll_transmit`], [`Endpoint::poll_event`] and
/// [`Endpoint::poll_frame`] and [`Endpoint::poll_data`] after each, and wake at
/// [`Endpoint::poll_timeout`]. Commands go through
/// [`Endpoint::connection_mut`], whose guard tells the endpoint when it is
/// done.
#[derive(Default)]
pub struct Endpoint {
    slots: Vec<Slot>,
    core: Core,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").field("connections", &self.core.live).finish_non_exhaustive()
    }
}

/// A connection of an [`Endpoint`] borrowed for commands; when dropped, the
/// endpoint updates its routes, timers and ready queues for it.
pub struct ConnectionMut<'a> {
    entry: &'a mut Entry,
    core: &'a mut Core,
    handle: ConnHandle,
}

impl Deref for ConnectionMut<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.entry.conn
    }
}

impl DerefMut for ConnectionMut<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.entry.conn
    }
}

impl Drop for ConnectionMut<'_> {
    fn drop(&mut self) {
        self.core.touch(self.handle, self.entry);
    }
}

impl std::fmt::Debug for ConnectionMut<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionMut").field("handle", &self.handle).finish_non_exhaustive()
    }
}

impl Default for Core {
    fn default() -> Self {
        Self {
            free: Vec::new(),
            sockets: Vec::new(),
            router: Demux::new(),
            timers: BinaryHeap::new(),
            transmit_ready: VecDeque::new(),
            event_ready: VecDeque::new(),
            frame_ready: VecDeque::new(),
            data_ready: VecDeque::new(),
            stream_ready: VecDeque::new(),
            streams: HashMap::new(),
            tcp_connects: HashMap::new(),
            ufrags: HashMap::new(),
            rescan: Vec::new(),
            live: 0,
            due: Vec::new(),
            expired: None,
            mdns_asked: VecDeque::new(),
            mdns_waiting: Vec::new(),
            mdns: Resolver::default(),
            responder: Responder::default(),
        }
    }
}

impl Core {
    /// After anything happened to a connection: its routes, its timer, and
    /// the ready queues.
    fn touch(&mut self, h: ConnHandle, e: &mut Entry) {
        let closed = e.conn.is_closed();
        let local = e.conn.context_id();
        let remote = e.conn.remote_context_id();
        let changed = e.route_gen != Some(e.conn.route_generation())
            && (e.route_local != local || e.route_remote.as_deref() != remote || e.route_gen.is_none() || closed);
        e.route_gen = Some(e.conn.route_generation());
        if changed {
            self.router.unregister_key(h);
            if e.route_remote.is_none() && self.ufrags.get(&e.route_local).is_some_and(|n| *n > 1) {
                self.rescan.push(e.route_local.clone());
            }
            if e.route_local != local {
                self.forget_ufrag(&e.route_local.clone());
                *self.ufrags.entry(local.to_owned()).or_default() += 1;
            }
            if !closed {
                match remote {
                    Some(r) => self.router.register_from(local, r, h),
                    None => self.router.register(local, h),
                }
            }
            e.route_local = local.to_owned();
            e.route_remote = remote.map(str::to_owned);
            e.route_paths = None;
        }
        let generation = e.conn.paths_generation();
        if e.route_paths != Some(generation) {
            let (generation, paths) = e.conn.data_paths();
            self.router.set_paths(h, paths);
            e.route_paths = Some(generation);
        }
        while let Some((name, ip)) = e.conn.poll_mdns_host_name() {
            if let Err(err) = self.responder.register(&name, ip) {
                tracing::debug!(%name, "mDNS name not answered for: {err}");
            }
        }
        while let Some(name) = e.conn.poll_mdns_query() {
            if self.mdns_asked.len() < MDNS_ASKED {
                self.mdns_asked.push_back((h, name));
            }
        }
        let t = e.conn.poll_timeout();
        if t != e.deadline {
            e.deadline = t;
            if let Some(t) = t {
                self.timers.push(Reverse((t, h)));
            }
        }
        if !e.queued_transmit {
            e.queued_transmit = true;
            self.transmit_ready.push_back(h);
        }
        if e.conn.has_output() {
            if !e.queued_event {
                e.queued_event = true;
                self.event_ready.push_back(h);
            }
            if !e.queued_frame {
                e.queued_frame = true;
                self.frame_ready.push_back(h);
            }
            if !e.queued_data {
                e.queued_data = true;
                self.data_ready.push_back(h);
            }
        }
        self.stream_check(h, e);
    }

    /// Queues a connection that allocates over TCP or TLS for
    /// [`Endpoint::poll_stream`].
    fn stream_check(&mut self, h: ConnHandle, e: &mut Entry) {
        if !e.queued_stream && e.conn.uses_turn_streams() {
            e.queued_stream = true;
            self.stream_ready.push_back(h);
        }
    }

    fn forget_ufrag(&mut self, ufrag: &str) {
        if let Some(n) = self.ufrags.get_mut(ufrag) {
            *n -= 1;
            if *n == 0 {
                self.ufrags.remove(ufrag);
            }
        }
    }
}

impl Endpoint {
    /// An endpoint with no socket or connection.
    pub fn new() -> Self {
        Self::default()
    }

    fn entry(&self, h: ConnHandle) -> Option<&Entry> {
        self.slots.get(h.index()).filter(|s| s.generation == h.generation)?.entry.as_deref()
    }

    fn parts(&mut self, h: ConnHandle) -> Option<(&mut Entry, &mut Core)> {
        let slot = self.slots.get_mut(h.index()).filter(|s| s.generation == h.generation)?;
        Some((slot.entry.as_deref_mut()?, &mut self.core))
    }

    /// Registers a socket (its addresses, options and certificate) for
    /// connections to use.
    pub fn add_socket(&mut self, config: SocketConfig) -> SocketId {
        let s = SocketEntry { config, users: Vec::new(), unrouted: 0 };
        match self.core.sockets.iter().position(Option::is_none) {
            Some(i) => {
                self.core.sockets[i] = Some(s);
                SocketId(i as u32)
            }
            None => {
                self.core.sockets.push(Some(s));
                SocketId((self.core.sockets.len() - 1) as u32)
            }
        }
    }

    /// A socket's configuration.
    pub fn socket(&self, id: SocketId) -> Option<&SocketConfig> {
        Some(&self.core.sockets.get(id.0 as usize)?.as_ref()?.config)
    }

    /// The connections a socket serves; the first is its primary (it
    /// reports the socket's candidates and state).
    pub fn socket_users(&self, id: SocketId) -> &[ConnHandle] {
        self.core.sockets.get(id.0 as usize).and_then(Option::as_ref).map(|s| s.users.as_slice()).unwrap_or_default()
    }

    /// Datagrams that arrived on a socket and no connection took.
    pub fn unrouted(&self, id: SocketId) -> u64 {
        self.core.sockets.get(id.0 as usize).and_then(Option::as_ref).map_or(0, |s| s.unrouted)
    }

    /// Removes a socket (it was closed): every connection using it loses it.
    pub fn remove_socket(&mut self, now: Instant, id: SocketId) {
        let Some(s) = self.core.sockets.get_mut(id.0 as usize).and_then(Option::take) else { return };
        for h in s.users {
            if let Some(mut c) = self.connection_mut(h) {
                c.remove_socket(now, id);
            }
        }
    }

    /// Adds a remote candidate (trickle ICE) that arrived for a socket: it
    /// goes to the connection whose peer's ufrag equals the candidate's
    /// `ufrag` extension, else to the socket's first connection. Returns
    /// which.
    pub fn add_remote_candidate(
        &mut self,
        now: Instant,
        socket: SocketId,
        candidate: &rtc_candidate::Candidate,
    ) -> Result<ConnHandle, Error> {
        let users = self.socket_users(socket);
        let target = candidate
            .ufrag()
            .and_then(|u| {
                users.iter().copied().find(|h| {
                    self.connection(*h)
                        .and_then(Connection::remote_context_id)
                        .is_some_and(|r| r.as_bytes() == u.as_bytes())
                })
            })
            .or_else(|| users.first().copied())
            .ok_or(Error::NotConnected("the socket is not added to a connection"))?;
        let mut c = self.connection_mut(target).ok_or(Error::Unknown("connection"))?;
        c.add_remote_candidate(now, socket, candidate)?;
        Ok(target)
    }

    /// Takes a connection in.
    pub fn insert(&mut self, conn: Connection) -> ConnHandle {
        let entry = Entry {
            conn,
            deadline: None,
            queued_transmit: false,
            queued_event: false,
            queued_frame: false,
            queued_data: false,
            queued_stream: false,
            route_local: String::new(),
            route_remote: None,
            route_gen: None,
            route_paths: None,
        };
        let index = match self.core.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot { generation: 0, entry: None });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.entry = Some(Box::new(entry));
        let h = ConnHandle { index, generation: slot.generation };
        self.core.live += 1;
        if let Some((e, core)) = self.parts(h) {
            core.touch(h, e);
        }
        h
    }

    /// Adds a registered socket to a connection (the first connection a
    /// socket is added to is its primary).
    pub fn add_socket_to(&mut self, now: Instant, h: ConnHandle, socket: SocketId) -> Result<(), Error> {
        let Endpoint { slots, core } = self;
        let slot =
            slots.get_mut(h.index()).filter(|s| s.generation == h.generation).ok_or(Error::Unknown("connection"))?;
        let e = slot.entry.as_deref_mut().ok_or(Error::Unknown("connection"))?;
        let s = core.sockets.get_mut(socket.0 as usize).and_then(Option::as_mut).ok_or(Error::Unknown("socket"))?;
        let primary = s.users.is_empty();
        let r = e.conn.add_socket(now, socket, &s.config, primary);
        if r.is_ok() {
            s.users.push(h);
        }
        core.touch(h, e);
        r
    }

    /// A fork of a connection (see [`Connection::fork`]) on the same
    /// sockets.
    pub fn fork(&mut self, now: Instant, of: ConnHandle) -> Result<ConnHandle, Error> {
        let (fork, sockets) = {
            let (e, _) = self.parts(of).ok_or(Error::Unknown("connection"))?;
            let sockets: Vec<SocketId> = e.conn.sockets().collect();
            (e.conn.fork(now)?, sockets)
        };
        let h = self.insert(fork);
        for s in sockets {
            self.add_socket_to(now, h, s)?;
        }
        Ok(h)
    }

    /// Removes a connection (close it first and drain its output for a
    /// clean end) and gives it back.
    pub fn remove(&mut self, h: ConnHandle) -> Option<Connection> {
        let slot = self.slots.get_mut(h.index()).filter(|s| s.generation == h.generation)?;
        let e = slot.entry.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.core.free.push(h.index);
        self.core.live -= 1;
        self.core.router.unregister_key(h);
        self.core.forget_ufrag(&e.route_local);
        if e.route_remote.is_none() {
            self.core.rescan.push(e.route_local.clone());
        }
        for s in self.core.sockets.iter_mut().flatten() {
            s.users.retain(|u| *u != h);
        }
        self.core.streams.retain(|_, c| *c != h);
        self.core.tcp_connects.retain(|_, c| *c != h);
        self.settle();
        Some(e.conn)
    }

    /// The live connections.
    pub fn connections(&self) -> impl Iterator<Item = ConnHandle> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.entry.is_some())
            .map(|(i, s)| ConnHandle { index: i as u32, generation: s.generation })
    }

    /// How many connections are live.
    pub fn len(&self) -> usize {
        self.core.live
    }

    /// No connection is live.
    pub fn is_empty(&self) -> bool {
        self.core.live == 0
    }

    /// A connection.
    pub fn connection(&self, h: ConnHandle) -> Option<&Connection> {
        self.entry(h).map(|e| &e.conn)
    }

    /// A connection, for commands.
    pub fn connection_mut(&mut self, h: ConnHandle) -> Option<ConnectionMut<'_>> {
        let (entry, core) = self.parts(h)?;
        Some(ConnectionMut { entry, core, handle: h })
    }

    /// Re-registers "any sender" routes that a connection gave up, for
    /// forks still without a remote description.
    fn settle(&mut self) {
        while let Some(ufrag) = self.core.rescan.pop() {
            let waiting = self.slots.iter().enumerate().find_map(|(i, s)| {
                let e = s.entry.as_ref()?;
                (e.route_local == ufrag && e.route_remote.is_none() && !e.conn.is_closed())
                    .then_some(ConnHandle { index: i as u32, generation: s.generation })
            });
            if let Some(h) = waiting {
                self.core.router.register(&ufrag, h);
            }
        }
    }

    // ----- inputs -----

    /// Routes one datagram that arrived on `socket` at `local` from
    /// `remote` to its connection and hands it over; returns which, or
    /// `None` when no connection takes it (counted per socket).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        socket: SocketId,
        local: SocketAddr,
        remote: SocketAddr,
        data: &mut [u8],
    ) -> Option<ConnHandle> {
        self.settle();
        let routed = self.core.router.route_datagram(local, remote, data);
        let Some((h, (e, core))) = routed.and_then(|h| Some((h, self.parts(h)?))) else {
            if let Some(s) = self.core.sockets.get_mut(socket.0 as usize).and_then(Option::as_mut) {
                tracing::trace!(%local, %remote, len = data.len(), "datagram for no connection");
                s.unrouted += 1;
            }
            return None;
        };
        let r = e.conn.handle_datagram(now, socket, local, remote, data);
        core.touch(h, e);
        (!matches!(r, Receive::Dropped(_))).then_some(h)
    }

    /// Moves time on for every connection whose timer is due (each once:
    /// a deadline that only [`Endpoint::poll_transmit`] clears, such as a
    /// due RTCP report, waits for it).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.settle();
        let mut due = std::mem::take(&mut self.core.due);
        while let Some(Reverse((t, h))) = self.core.timers.peek().copied() {
            if t > now {
                break;
            }
            self.core.timers.pop();
            due.push((t, h));
        }
        for (t, h) in due.drain(..) {
            let Some((e, core)) = self.parts(h) else { continue };
            if e.deadline != Some(t) {
                continue; // superseded
            }
            e.deadline = None;
            e.conn.handle_timeout(now);
            core.touch(h, e);
        }
        self.core.due = due;
        self.mdns_timeout(now);
        if self.core.expired.is_none_or(|t| now.saturating_duration_since(t) >= std::time::Duration::from_secs(1)) {
            self.core.router.expire(now);
            self.core.expired = Some(now);
        }
        if self.core.timers.len() > 4 * self.core.live + 64 {
            // Superseded entries pile up when deadlines move; keep the
            // heap proportional to the connections.
            let slots = &self.slots;
            self.core.timers.retain(|Reverse((t, h))| {
                slots
                    .get(h.index())
                    .filter(|s| s.generation == h.generation)
                    .and_then(|s| s.entry.as_ref())
                    .is_some_and(|e| e.deadline == Some(*t))
            });
        }
    }

    /// Takes a datagram that arrived on the driver's mDNS socket
    /// (`rtc_ice::udp::MdnsSocket`, with feature `tokio` of rtc-ice) from
    /// `source`: answers resolve the `.local` names of remote candidates
    /// the connections wait for, and queries for the names concealing the
    /// connections' host addresses are answered (see
    /// [`Endpoint::poll_mdns_transmit`]).
    pub fn handle_mdns_datagram(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        if rtc_ice::mdns::is_query(data) {
            self.core.responder.handle_query(now, source, data);
            return;
        }
        self.core.mdns.handle_response(source, data);
        self.deliver_mdns(now);
    }

    /// Whether a connection's host addresses are concealed behind names the
    /// endpoint answers for: the driver must then keep its mDNS socket open
    /// and feed it to [`Endpoint::handle_mdns_datagram`].
    pub fn mdns_responding(&self) -> bool {
        self.core.responder.is_active()
    }

    /// Gives the names asked for to the resolver, moves its timers, and
    /// hands its outcomes to the connections waiting.
    fn mdns_timeout(&mut self, now: Instant) {
        while let Some((h, name)) = self.core.mdns_asked.pop_front() {
            let lower = name.to_ascii_lowercase();
            let waiting = self.core.mdns_waiting.len() < MDNS_WAITING;
            match self.core.mdns.query(now, &name) {
                Ok(()) if waiting => self.core.mdns_waiting.push((lower, h)),
                r => {
                    if let Err(e) = r {
                        tracing::debug!(%name, "mDNS name not asked for: {e}");
                    }
                    if let Some(mut c) = self.connection_mut(h) {
                        c.mdns_resolved(now, &name, None);
                    }
                }
            }
        }
        if self.core.mdns.poll_timeout().is_some_and(|t| t <= now) {
            self.core.mdns.handle_timeout(now);
        }
        self.deliver_mdns(now);
    }

    fn deliver_mdns(&mut self, now: Instant) {
        while let Some(e) = self.core.mdns.poll_event() {
            let (name, addr): (String, Option<IpAddr>) = match e {
                MdnsEvent::Resolved { name, addr } => (name, Some(addr)),
                MdnsEvent::Failed { name } => (name, None),
                _ => continue,
            };
            let mut i = 0;
            while i < self.core.mdns_waiting.len() {
                if self.core.mdns_waiting[i].0 != name {
                    i += 1;
                    continue;
                }
                let (_, h) = self.core.mdns_waiting.swap_remove(i);
                if let Some(mut c) = self.connection_mut(h) {
                    c.mdns_resolved(now, &name, addr);
                }
            }
        }
    }

    // ----- outputs -----

    /// The next mDNS datagram: a one-question query for a `.local` name a
    /// connection's remote candidate waits for (or its retransmission), or
    /// an answer for one of the names concealing the connections' host
    /// addresses. Send it to `destination`, or, when that is `None`, to
    /// [`rtc_ice::mdns::MDNS_V4`] (and [`rtc_ice::mdns::MDNS_V6`]) on the
    /// interfaces of the sockets' addresses, and feed what arrives to
    /// [`Endpoint::handle_mdns_datagram`]. A driver without an mDNS socket
    /// may leave these undrained: the names then fail after 3 s.
    #[must_use]
    pub fn poll_mdns_transmit(&mut self, now: Instant) -> Option<MdnsTransmit> {
        if !self.core.mdns_asked.is_empty() {
            self.mdns_timeout(now);
        }
        if let Some(t) = self.core.responder.poll_transmit() {
            return Some(t);
        }
        let contents = self.core.mdns.poll_transmit()?;
        Some(MdnsTransmit { destination: None, contents })
    }

    /// The next datagram of any connection, written into `buf` (see
    /// [`Connection::poll_transmit`]).
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<(ConnHandle, Transmit)> {
        while let Some(&h) = self.core.transmit_ready.front() {
            let Some((e, core)) = self.parts(h) else {
                self.core.transmit_ready.pop_front();
                continue;
            };
            match e.conn.poll_transmit(now, buf) {
                Some(t) => {
                    // A request's answer comes back to this connection.
                    core.router.note_request(now, h, &buf[..t.len]);
                    return Some((h, t));
                }
                None => {
                    e.queued_transmit = false;
                    core.transmit_ready.pop_front();
                    // Messages for streams to TURN servers were set aside.
                    core.stream_check(h, e);
                    // Sending may have moved its timers (RTCP).
                    let t = e.conn.poll_timeout();
                    if t != e.deadline {
                        e.deadline = t;
                        if let Some(t) = t {
                            core.timers.push(Reverse((t, h)));
                        }
                    }
                }
            }
        }
        None
    }

    /// The next message or command for a stream to a TURN server (TURN
    /// over TCP or TLS) of any connection (see [`Connection::poll_stream`]);
    /// drain it after [`Endpoint::poll_transmit`].
    #[must_use]
    pub fn poll_stream(&mut self) -> Option<(ConnHandle, StreamOutput)> {
        loop {
            let h = *self.core.stream_ready.front()?;
            let out = self.parts(h).and_then(|(e, _)| {
                let o = e.conn.poll_stream();
                e.queued_stream = o.is_some();
                o
            });
            let Some(o) = out else {
                self.core.stream_ready.pop_front();
                continue;
            };
            // Which connection a stream's events are for.
            if let StreamOutput::Command(socket, c) = &o {
                match c {
                    rtc_ice::StreamCommand::Connect { local, server, transport, .. } => {
                        self.core.streams.insert(TurnStream::of(*socket, (*local, *server, *transport)), h);
                    }
                    rtc_ice::StreamCommand::Close { local, server, transport } => {
                        self.core.streams.remove(&TurnStream::of(*socket, (*local, *server, *transport)));
                    }
                    _ => {}
                }
            }
            if let StreamOutput::Tcp(socket, c) = &o {
                match c {
                    rtc_ice::TcpCommand::Connect { local, remote } => {
                        self.core.tcp_connects.insert((*socket, *local, *remote), h);
                    }
                    rtc_ice::TcpCommand::Close { local, remote } => {
                        self.core.tcp_connects.remove(&(*socket, *local, *remote));
                    }
                    _ => {}
                }
            }
            return Some((h, o));
        }
    }

    /// The stream is open (see [`Connection::stream_connected`]).
    pub fn stream_connected(&mut self, now: Instant, stream: TurnStream) {
        self.on_stream(stream, |c| c.stream_connected(now, stream));
    }

    /// The stream could not be opened or ended (see
    /// [`Connection::stream_closed`]).
    pub fn stream_closed(&mut self, now: Instant, stream: TurnStream) {
        self.on_stream(stream, |c| c.stream_closed(now, stream));
        self.core.streams.remove(&stream);
    }

    /// One whole message from a stream to a TURN server, for the
    /// connection that opened it (see [`Connection::handle_stream_message`]);
    /// `None` when no connection has that stream or it dropped the message.
    pub fn handle_stream_message(&mut self, now: Instant, stream: TurnStream, data: &mut [u8]) -> Option<ConnHandle> {
        let mut taken = false;
        let h = self.on_stream(stream, |c| {
            taken = !matches!(c.handle_stream_message(now, stream, data), Receive::Dropped(_));
        })?;
        taken.then_some(h)
    }

    fn on_stream(&mut self, stream: TurnStream, f: impl FnOnce(&mut Connection)) -> Option<ConnHandle> {
        self.settle();
        let h = *self.core.streams.get(&stream)?;
        let (e, core) = self.parts(h)?;
        f(&mut e.conn);
        core.touch(h, e);
        Some(h)
    }

    /// The ICE-TCP connection a [`StreamOutput::Tcp`] connect of `socket`
    /// asked for, from the active candidate `local` to `remote`, is open
    /// from `connection` (see [`Connection::tcp_connected`]). False when no
    /// connection waits for it: close it.
    pub fn tcp_connected(
        &mut self,
        now: Instant,
        socket: SocketId,
        (local, remote): (SocketAddr, SocketAddr),
        connection: SocketAddr,
    ) -> bool {
        self.settle();
        let Some(h) = self.core.tcp_connects.remove(&(socket, local, remote)) else { return false };
        let Some((e, core)) = self.parts(h) else { return false };
        e.conn.tcp_connected(now, socket, (local, remote), connection);
        core.touch(h, e);
        true
    }

    /// An ICE-TCP connection of `socket` between `local` and `remote`
    /// closed, or could not be opened (see [`Connection::tcp_closed`]): it
    /// goes to the connection that opened it, or for one the peer opened,
    /// to every connection on the socket (only the one whose pair it
    /// carried takes note).
    pub fn tcp_closed(&mut self, now: Instant, socket: SocketId, local: SocketAddr, remote: SocketAddr) {
        self.settle();
        let users: Vec<ConnHandle> = match self.core.tcp_connects.remove(&(socket, local, remote)) {
            Some(h) => vec![h],
            None => self.socket_users(socket).to_vec(),
        };
        for h in users {
            if let Some((e, core)) = self.parts(h) {
                e.conn.tcp_closed(now, socket, local, remote);
                core.touch(h, e);
            }
        }
    }

    /// The next event of any connection.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<(ConnHandle, Event)> {
        while let Some(&h) = self.core.event_ready.front() {
            let Some((e, core)) = self.parts(h) else {
                self.core.event_ready.pop_front();
                continue;
            };
            match e.conn.poll_event() {
                Some(ev) => return Some((h, ev)),
                None => {
                    e.queued_event = false;
                    core.event_ready.pop_front();
                }
            }
        }
        None
    }

    /// The next received frame of any connection (see
    /// [`Connection::poll_frame`]).
    #[must_use]
    pub fn poll_frame(&mut self, out: &mut Vec<u8>) -> Option<(ConnHandle, FrameInfo)> {
        while let Some(&h) = self.core.frame_ready.front() {
            let Some((e, core)) = self.parts(h) else {
                self.core.frame_ready.pop_front();
                continue;
            };
            match e.conn.poll_frame(out) {
                Some(f) => return Some((h, f)),
                None => {
                    e.queued_frame = false;
                    core.frame_ready.pop_front();
                }
            }
        }
        None
    }

    /// The next received data message of any connection (see
    /// [`Connection::poll_data`]).
    #[must_use]
    pub fn poll_data(&mut self, out: &mut Vec<u8>) -> Option<(ConnHandle, DataMessage)> {
        while let Some(&h) = self.core.data_ready.front() {
            let Some((e, core)) = self.parts(h) else {
                self.core.data_ready.pop_front();
                continue;
            };
            match e.conn.poll_data(out) {
                Some(m) => return Some((h, m)),
                None => {
                    e.queued_data = false;
                    core.data_ready.pop_front();
                }
            }
        }
        None
    }

    /// When [`Endpoint::handle_timeout`] is due next (possibly early: a
    /// superseded timer wakes the caller once for nothing).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timers = self.core.timers.peek().map(|Reverse((t, _))| *t);
        [timers, self.core.mdns.poll_timeout()].into_iter().flatten().min()
    }
}
