//! The driver of a connection and its forks: one [`rtc_proto::Endpoint`]
//! behind one lock, and one task that receives a batch of datagrams from
//! every socket, takes the lock once to hand them in, fire timers and drain
//! what the core wants sent, delivered and reported, then sends and
//! delivers with the lock released. Also the state the handles share.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Instant;

use crossbeam_queue::ArrayQueue;
use rtc_ice::ice_tcp::{IceTcp, IceTcpEvent};
use rtc_ice::tcp::{StreamEvent, TlsConfig, TurnStreams};
use rtc_ice::udp::{Bound, MdnsLink, RecvBatch, UdpSocketSet};
use rtc_ice::{StreamCommand, TcpCommand};
use rtc_proto::{
    ConnHandle, ConnectionEvent, DataEvent, DataStreamId, Direction, Endpoint, Error, Event, MIN_TRANSMIT_BUFFER,
    SocketConfig, SocketEvent, SocketId, StreamId, StreamOutput, TrackDescription, TrackId, TurnStream,
};
use tokio::sync::Notify;

use crate::events::{Emitter, lock};
use crate::frame::Octets;
use crate::frame::{Frame, FrameData, Inbox};
use crate::messages::{DataStreamMessage, MESSAGE_BYTES, MESSAGE_QUEUE};

/// Received frames queued on a track before new ones are dropped.
const FRAME_QUEUE: usize = 512;
/// Octets of received frames queued on a track before new ones are dropped.
const FRAME_BYTES: usize = 16 << 20;
/// Frame buffers kept for reuse.
const FRAME_POOL: usize = 256;
/// Datagrams sent per turn of the lock.
const TRANSMIT_BATCH: usize = 64;

/// One connection family's driver.
#[derive(Debug)]
pub(crate) struct Driver {
    state: Mutex<State>,
    pub(crate) wake: Notify,
}

/// What a track handle holds.
#[derive(Debug)]
pub(crate) struct TrackInner {
    pub(crate) desc: Mutex<TrackDescription>,
    pub(crate) playing: AtomicBool,
    /// The driver of the connection the track is (or was) sent on: a track
    /// belongs to one connection family.
    pub(crate) driver: OnceLock<Weak<Driver>>,
    pub(crate) contributors: Mutex<Vec<u32>>,
    /// The audio level of the frames written next (see
    /// `RtcMediaStreamTrack::set_audio_level`).
    pub(crate) audio_level: Mutex<Option<(u8, bool)>>,
    /// Received frames (a received track only).
    pub(crate) inbox: Option<Inbox<Frame>>,
}

impl TrackInner {
    pub(crate) fn new(desc: TrackDescription, inbox: Option<Inbox<Frame>>) -> Arc<Self> {
        let (playing, driver, contributors) = (AtomicBool::new(true), OnceLock::new(), Mutex::new(Vec::new()));
        let audio_level = Mutex::new(None);
        Arc::new(Self { desc: Mutex::new(desc), playing, driver, contributors, audio_level, inbox })
    }

    /// The key of the track in [`State::sent`].
    pub(crate) fn key(self: &Arc<Self>) -> usize {
        Arc::as_ptr(self) as usize
    }

    /// Whether the track may join `driver`'s connections.
    pub(crate) fn fits(&self, driver: &Arc<Driver>) -> bool {
        self.driver.get().is_none_or(|d| std::ptr::eq(d.as_ptr(), Arc::as_ptr(driver)))
    }

    /// The driver and the connection's track it is sent as, if it is.
    pub(crate) fn sent(self: &Arc<Self>) -> Option<(Arc<Driver>, ConnHandle, TrackId)> {
        let d = self.driver.get()?.upgrade()?;
        let (h, t) = *d.state().sent.get(&self.key())?;
        Some((d, h, t))
    }

    /// Binds the track to a connection's track.
    pub(crate) fn attach(self: &Arc<Self>, driver: &Arc<Driver>, st: &mut State, h: ConnHandle, t: TrackId) {
        let _ = self.driver.set(Arc::downgrade(driver));
        st.sent.insert(self.key(), (h, t));
        if let Some(mut c) = st.endpoint.connection_mut(h) {
            let _ = c.set_contributors(t, &lock(&self.contributors));
            let _ = c.set_audio_level(t, *lock(&self.audio_level));
            if let Some(d) = c.track_description(t) {
                *lock(&self.desc) = d.clone();
            }
        }
    }
}

/// Where a stream is sent: the connection and the core's stream.
#[derive(Debug, Clone)]
pub(crate) struct StreamLink {
    pub(crate) driver: Weak<Driver>,
    pub(crate) conn: ConnHandle,
    pub(crate) stream: StreamId,
}

/// What a stream handle holds.
#[derive(Debug)]
pub(crate) struct StreamInner {
    pub(crate) id: Mutex<String>,
    pub(crate) tracks: Mutex<Vec<Arc<TrackInner>>>,
    pub(crate) events: Emitter<ConnectionEvent>,
    pub(crate) link: Mutex<Option<StreamLink>>,
}

impl StreamInner {
    pub(crate) fn new(id: String, tracks: Vec<Arc<TrackInner>>) -> Arc<Self> {
        Arc::new(Self {
            id: Mutex::new(id),
            tracks: Mutex::new(tracks),
            events: Emitter::new(),
            link: Mutex::new(None),
        })
    }

    pub(crate) fn link(&self) -> Option<(Arc<Driver>, StreamLink)> {
        let l = lock(&self.link).clone()?;
        Some((l.driver.upgrade()?, l))
    }
}

/// What a data stream handle holds.
#[derive(Debug)]
pub(crate) struct DataInner {
    pub(crate) driver: Weak<Driver>,
    pub(crate) conn: ConnHandle,
    pub(crate) id: DataStreamId,
    pub(crate) events: Emitter<DataEvent>,
    pub(crate) messages: Inbox<DataStreamMessage>,
}

/// A data stream handle counts nothing against the inbox of streams
/// waiting to be accepted (that inbox is capped by their number).
impl Octets for Arc<DataInner> {
    fn octets(&self) -> usize {
        0
    }
}

impl DataInner {
    pub(crate) fn new(driver: Weak<Driver>, conn: ConnHandle, id: DataStreamId) -> Arc<Self> {
        Arc::new(Self { driver, conn, id, events: Emitter::new(), messages: Inbox::new(MESSAGE_QUEUE) })
    }

    fn end(&self) {
        self.messages.close();
        self.events.close();
    }
}

/// What a socket handle holds.
#[derive(Debug)]
pub(crate) struct SocketShared {
    pub(crate) config: SocketConfig,
    /// The bound sockets until the socket is added to a connection (then the
    /// driver's task owns them).
    pub(crate) unbound: Mutex<Vec<Bound>>,
    /// Its ICE-TCP listeners until then.
    pub(crate) unbound_tcp: Mutex<Vec<std::net::TcpListener>>,
    /// The driver it was added to, and its id there.
    pub(crate) link: Mutex<Option<(Weak<Driver>, SocketId)>>,
    pub(crate) events: Emitter<SocketEvent>,
    pub(crate) closed: AtomicBool,
    /// The TLS roots of its `turns:` servers.
    pub(crate) tls: TlsConfig,
}

impl SocketShared {
    /// The driver and id, while the socket is added to a live one.
    pub(crate) fn linked(&self) -> Option<(Arc<Driver>, SocketId)> {
        let (d, id) = lock(&self.link).clone()?;
        Some((d.upgrade()?, id))
    }

    /// Joins `driver` (its first connection adds it): the driver's task takes
    /// the UDP sockets. Fails when the socket is closed or serves another
    /// driver.
    pub(crate) fn join(self: &Arc<Self>, driver: &Arc<Driver>, st: &mut State) -> Result<SocketId, Error> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let mut link = lock(&self.link);
        if let Some((d, id)) = link.as_ref() {
            if std::ptr::eq(d.as_ptr(), Arc::as_ptr(driver)) {
                return Ok(*id);
            }
            let why = "the socket serves another connection; fork() that connection to share its sockets";
            return Err(Error::InvalidOptions(why.into()));
        }
        let id = st.endpoint.add_socket(self.config.clone());
        for b in std::mem::take(&mut *lock(&self.unbound)) {
            st.addrs.insert(b.local, id);
            st.add_udp.push(b);
        }
        for l in std::mem::take(&mut *lock(&self.unbound_tcp)) {
            if let Ok(a) = l.local_addr() {
                st.tcp_addrs.insert(a, id);
                st.add_tcp.push(l);
            }
        }
        st.sockets.insert(id, self.clone());
        *link = Some((Arc::downgrade(driver), id));
        Ok(id)
    }
}

/// What the facade keeps per connection.
#[derive(Debug)]
pub(crate) struct ConnLink {
    pub(crate) events: Arc<Emitter<ConnectionEvent>>,
    /// The streams sent, in order.
    pub(crate) local: Vec<Arc<StreamInner>>,
    /// The remote streams made so far, by the core's id.
    pub(crate) remote: Vec<(StreamId, Arc<StreamInner>)>,
    /// Data streams the peer opened, not yet accepted.
    pub(crate) incoming: Arc<Inbox<Arc<DataInner>>>,
}

/// Everything behind the driver's lock.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) endpoint: Endpoint,
    add_udp: Vec<Bound>,
    drop_udp: Vec<SocketAddr>,
    addrs: HashMap<SocketAddr, SocketId>,
    /// ICE-TCP: listeners to take on and to drop, and the socket of each
    /// listener's address and of each connection an agent opened (its
    /// local address; the active candidate's and the remote while it is
    /// being opened).
    add_tcp: Vec<std::net::TcpListener>,
    drop_tcp: Vec<SocketAddr>,
    tcp_addrs: HashMap<SocketAddr, SocketId>,
    tcp_conns: HashMap<SocketAddr, SocketId>,
    tcp_opening: HashMap<(SocketAddr, SocketAddr), SocketId>,
    pub(crate) sockets: HashMap<SocketId, Arc<SocketShared>>,
    pub(crate) conns: HashMap<ConnHandle, ConnLink>,
    /// Sent tracks by their handle's address: `write_frame`'s lookup.
    pub(crate) sent: HashMap<usize, (ConnHandle, TrackId)>,
    /// Received tracks: where their frames go.
    sinks: HashMap<(ConnHandle, TrackId), Arc<TrackInner>>,
    /// Data streams, local and remote: where their messages and events go.
    pub(crate) data: HashMap<(ConnHandle, DataStreamId), Arc<DataInner>>,
    /// The driver itself (for the data streams the peer opens).
    pub(crate) me: Weak<Driver>,
    closing: Vec<ConnHandle>,
    /// Its last connection was closed: the task ends once the sockets are
    /// gone (a driver never gets connections again).
    retired: bool,
}

/// Objects whose event streams end once the events before are delivered.
enum Ending {
    Connection(ConnLink, Vec<Arc<DataInner>>),
    Socket(Arc<SocketShared>),
}

/// An event resolved to the objects that fire it.
enum Delivery {
    Socket(Arc<SocketShared>, SocketEvent),
    Connection(Arc<Emitter<ConnectionEvent>>, Option<Arc<StreamInner>>, ConnectionEvent),
    Data(Arc<DataInner>, DataEvent),
    Incoming(Arc<Inbox<Arc<DataInner>>>, Arc<DataInner>),
}

impl State {
    /// Forgets a socket: the task drops its UDP sockets (the ports are free).
    pub(crate) fn drop_socket(&mut self, now: Instant, id: SocketId) {
        self.endpoint.remove_socket(now, id);
        if let Some(s) = self.sockets.remove(&id) {
            tracing::debug!(socket = %s.config.socket_id, "socket closed: its UDP ports are freed");
        }
        let addrs: Vec<SocketAddr> = self.addrs.iter().filter(|(_, s)| **s == id).map(|(a, _)| *a).collect();
        for a in addrs {
            self.addrs.remove(&a);
            self.drop_udp.push(a);
        }
        let tcp: Vec<SocketAddr> = self.tcp_addrs.iter().filter(|(_, s)| **s == id).map(|(a, _)| *a).collect();
        for a in tcp {
            self.tcp_addrs.remove(&a);
            self.drop_tcp.push(a);
        }
        let conns: Vec<SocketAddr> = self.tcp_conns.iter().filter(|(_, s)| **s == id).map(|(a, _)| *a).collect();
        for a in conns {
            self.tcp_conns.remove(&a);
            self.drop_tcp.push(a);
        }
        self.tcp_opening.retain(|_, s| *s != id);
    }

    /// Hands an ICE-TCP report to the endpoint, for the socket whose
    /// listener or connection it is about; a connection nobody waits for
    /// any more is closed again. Returns a message's buffer, done with.
    fn ice_tcp_event(&mut self, now: Instant, e: IceTcpEvent, close: &mut Vec<TcpCommand>) -> Option<Vec<u8>> {
        match e {
            IceTcpEvent::Connected { local, remote, connection } => {
                let Some(socket) = self.tcp_opening.remove(&(local, remote)) else {
                    close.push(TcpCommand::Close { local: connection, remote });
                    return None;
                };
                if self.endpoint.tcp_connected(now, socket, (local, remote), connection) {
                    self.tcp_conns.insert(connection, socket);
                } else {
                    close.push(TcpCommand::Close { local: connection, remote });
                }
            }
            IceTcpEvent::Message((local, remote), mut data) => {
                if let Some(&socket) = self.tcp_addrs.get(&local).or_else(|| self.tcp_conns.get(&local)) {
                    let _ = self.endpoint.handle_datagram(now, socket, local, remote, &mut data);
                }
                return Some(data);
            }
            IceTcpEvent::Closed((local, remote)) => {
                let socket = self
                    .tcp_opening
                    .remove(&(local, remote))
                    .or_else(|| self.tcp_conns.remove(&local))
                    .or_else(|| self.tcp_addrs.get(&local).copied());
                if let Some(socket) = socket {
                    self.endpoint.tcp_closed(now, socket, local, remote);
                }
            }
            _ => {}
        }
        None
    }

    /// Marks a connection for removal once its last datagrams (DTLS
    /// close_notify) are out.
    pub(crate) fn close(&mut self, now: Instant, h: ConnHandle) {
        if let Some(mut c) = self.endpoint.connection_mut(h) {
            c.close(now);
        }
        if !self.closing.contains(&h) {
            self.closing.push(h);
        }
    }

    /// Stops sending a stream on connection `h` (send_stream false, stop()).
    pub(crate) fn stop_sending(&mut self, h: ConnHandle, stream: &Arc<StreamInner>) {
        let Some(l) = lock(&stream.link).take() else { return };
        for t in lock(&stream.tracks).iter() {
            self.sent.remove(&t.key());
        }
        if let Some(mut c) = self.endpoint.connection_mut(h) {
            c.stop_stream(Instant::now(), l.stream);
        }
        if let Some(link) = self.conns.get_mut(&h) {
            link.local.retain(|s| !Arc::ptr_eq(s, stream));
        }
    }

    /// Makes handle objects for the remote streams and tracks the core
    /// knows and the facade does not yet.
    pub(crate) fn sync_remote(&mut self, h: ConnHandle) {
        let Some(conn) = self.endpoint.connection(h) else { return };
        let Some(link) = self.conns.get_mut(&h) else { return };
        for sid in conn.streams(Direction::Remote) {
            let Some(desc) = conn.stream_description(sid).filter(|_| !link.remote.iter().any(|(s, _)| *s == sid))
            else {
                continue;
            };
            let mut tracks = Vec::new();
            for &tid in conn.stream_tracks(sid) {
                let Some(d) = conn.track_description(tid) else { continue };
                let track = TrackInner::new(d.clone(), Some(Inbox::new(FRAME_QUEUE)));
                self.sinks.insert((h, tid), track.clone());
                tracks.push(track);
            }
            link.remote.push((sid, StreamInner::new(desc.stream_id, tracks)));
        }
    }

    /// The stream an event is about, for seed 000's stream events.
    fn stream_of(&mut self, h: ConnHandle, e: &ConnectionEvent) -> Option<Arc<StreamInner>> {
        let (id, direction) = match e {
            ConnectionEvent::StreamConnected { stream_id, direction }
            | ConnectionEvent::StreamDisconnected { stream_id, direction }
            | ConnectionEvent::TrackConnected { stream_id, direction, .. }
            | ConnectionEvent::TrackDisconnected { stream_id, direction, .. } => (stream_id, *direction),
            ConnectionEvent::TrackContributors { stream_id, .. } => (stream_id, Direction::Remote),
            ConnectionEvent::TrackReport(r) => (&r.stream_id, r.direction),
            ConnectionEvent::KeyFrameRequest { stream_id, .. } => (stream_id, Direction::Local),
            _ => return None,
        };
        if direction == Direction::Remote {
            self.sync_remote(h);
        }
        let link = self.conns.get(&h)?;
        let named = |s: &&Arc<StreamInner>| *lock(&s.id) == *id;
        match direction {
            Direction::Local => link.local.iter().find(named).cloned(),
            Direction::Remote => link.remote.iter().map(|(_, s)| s).find(named).cloned(),
        }
    }

    fn resolve(&mut self, h: ConnHandle, e: Event) -> Option<Delivery> {
        match e {
            Event::Socket { socket, event } => Some(Delivery::Socket(self.sockets.get(&socket)?.clone(), event)),
            Event::Connection(e) => {
                let stream = self.stream_of(h, &e);
                Some(Delivery::Connection(self.conns.get(&h)?.events.clone(), stream, e))
            }
            Event::Data { stream, event: DataEvent::Incoming } => {
                let inner = self.data_stream(h, stream);
                Some(Delivery::Incoming(self.conns.get(&h)?.incoming.clone(), inner))
            }
            Event::Data { stream, event } => Some(Delivery::Data(self.data.get(&(h, stream))?.clone(), event)),
            _ => None,
        }
    }

    /// The handle state of a data stream, made on first sight.
    pub(crate) fn data_stream(&mut self, h: ConnHandle, id: DataStreamId) -> Arc<DataInner> {
        let me = self.me.clone();
        self.data.entry((h, id)).or_insert_with(|| DataInner::new(me, h, id)).clone()
    }

    /// Removes the closed connections, their frame queues (readers see the
    /// end) and the sockets no connection uses any more.
    fn reap(&mut self, now: Instant, ended: &mut Vec<Ending>) {
        for h in std::mem::take(&mut self.closing) {
            if let Some(c) = self.endpoint.remove(h) {
                c.span().in_scope(|| tracing::debug!("connection removed from its driver"));
            }
            self.sinks.retain(|(c, _), _| *c != h);
            self.sent.retain(|_, (c, _)| *c != h);
            let data: Vec<Arc<DataInner>> =
                self.data.iter().filter(|((c, _), _)| *c == h).map(|(_, d)| d.clone()).collect();
            self.data.retain(|(c, _), _| *c != h);
            if let Some(link) = self.conns.remove(&h) {
                ended.push(Ending::Connection(link, data));
            }
            self.retired |= self.conns.is_empty();
        }
        let unused: Vec<SocketId> =
            self.sockets.keys().copied().filter(|s| self.endpoint.socket_users(*s).is_empty()).collect();
        for s in unused {
            if let Some(shared) = self.sockets.get(&s) {
                shared.closed.store(true, Ordering::Release);
                ended.push(Ending::Socket(shared.clone()));
            }
            self.drop_socket(now, s);
        }
    }
}

impl Driver {
    /// A driver with an empty endpoint, its task started on the current
    /// tokio runtime.
    pub(crate) fn start() -> Result<Arc<Self>, Error> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::NotSupported("a connection outside a tokio runtime"))?;
        let d = Arc::new(Driver { state: Mutex::new(State::default()), wake: Notify::new() });
        d.state().me = Arc::downgrade(&d);
        tracing::debug!("driver task started");
        runtime.spawn(run(Arc::downgrade(&d)));
        Ok(d)
    }

    pub(crate) fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }
}

/// What one turn of the lock produced, to act on with the lock released.
#[derive(Default)]
struct Turn {
    /// Datagrams in `out`: from, to, where, how long, and the TURN stream
    /// they go on (a relay reached over TCP or TLS) if any.
    transmit: Vec<(SocketAddr, SocketAddr, usize, usize, Option<rtc_ice::TurnTransport>)>,
    /// Buffers of stream messages handed in, to give back to their pool.
    stream_spent: Vec<Vec<u8>>,
    /// Stream events (TURN over TCP or TLS) for the endpoint.
    from_streams: Vec<StreamEvent>,
    /// ICE-TCP reports for the endpoint, and commands for the connections.
    from_tcp: Vec<IceTcpEvent>,
    to_tcp: Vec<TcpCommand>,
    /// Buffers of ICE-TCP messages handed in, to give back to their pool.
    tcp_spent: Vec<Vec<u8>>,
    /// Messages for streams, and streams to open (with their socket's
    /// roots) or close.
    to_streams: Vec<(StreamOutput, Option<TlsConfig>)>,
    deliveries: Vec<Delivery>,
    frames: Vec<(Arc<TrackInner>, Frame)>,
    messages: Vec<(Arc<DataInner>, DataStreamMessage)>,
    ended: Vec<Ending>,
    /// mDNS queries, and the host addresses whose interfaces they go out
    /// on.
    mdns: Vec<rtc_ice::mdns::MdnsTransmit>,
    mdns_interfaces: Vec<IpAddr>,
}

impl Turn {
    /// Under the lock: datagrams in, timers, and everything out.
    fn take(
        &mut self,
        st: &mut State,
        batch: &mut RecvBatch,
        mdns: &mut MdnsLink,
        out: &mut [u8],
        home: &Arc<ArrayQueue<Vec<u8>>>,
    ) -> bool {
        let now = Instant::now();
        for e in self.from_streams.drain(..) {
            let (local, server, transport) = match &e {
                StreamEvent::Connected(k) | StreamEvent::Closed(k) | StreamEvent::Message(k, _) => *k,
                _ => continue,
            };
            let Some(&socket) = st.addrs.get(&local) else { continue };
            let stream = TurnStream::of(socket, (local, server, transport));
            match e {
                StreamEvent::Connected(_) => st.endpoint.stream_connected(now, stream),
                StreamEvent::Closed(_) => st.endpoint.stream_closed(now, stream),
                StreamEvent::Message(_, mut m) => {
                    let _ = st.endpoint.handle_stream_message(now, stream, &mut m);
                    self.stream_spent.push(m);
                }
                _ => {}
            }
        }
        for e in self.from_tcp.drain(..) {
            if let Some(spent) = st.ice_tcp_event(now, e, &mut self.to_tcp) {
                self.tcp_spent.push(spent);
            }
        }
        if let Some((from, data)) = mdns.take() {
            st.endpoint.handle_mdns_datagram(now, from, data);
        }
        for (local, remote, data) in batch.iter_mut() {
            if let Some(&socket) = st.addrs.get(&local) {
                let _ = st.endpoint.handle_datagram(now, socket, local, remote, data);
            }
        }
        batch.clear();
        st.endpoint.handle_timeout(now);
        while let Some(q) = st.endpoint.poll_mdns_transmit(now) {
            self.mdns.push(q);
        }
        if (!self.mdns.is_empty() || st.endpoint.mdns_responding()) && mdns.socket().is_none() && !mdns.failed() {
            self.mdns_interfaces = st.addrs.keys().map(SocketAddr::ip).collect();
        }
        let (mut at, mut more) = (0, false);
        while at + MIN_TRANSMIT_BUFFER <= out.len() {
            let Some((_, t)) = st.endpoint.poll_transmit(now, &mut out[at..]) else { break };
            self.transmit.push((t.source, t.destination, at, t.len, t.turn_stream));
            at += t.len;
            more = at + MIN_TRANSMIT_BUFFER > out.len();
        }
        while let Some((_, o)) = st.endpoint.poll_stream() {
            if let StreamOutput::Tcp(socket, c) = o {
                match c {
                    TcpCommand::Connect { local, remote } => {
                        st.tcp_opening.insert((local, remote), socket);
                    }
                    TcpCommand::Close { local, remote } => {
                        st.tcp_opening.remove(&(local, remote));
                        st.tcp_conns.remove(&local);
                    }
                    _ => {}
                }
                self.to_tcp.push(c);
                continue;
            }
            let tls = match &o {
                StreamOutput::Command(socket, StreamCommand::Connect { .. }) => {
                    st.sockets.get(socket).map(|s| s.tls.clone())
                }
                _ => None,
            };
            self.to_streams.push((o, tls));
        }
        while let Some((h, e)) = st.endpoint.poll_event() {
            if let Some(d) = st.resolve(h, e) {
                self.deliveries.push(d);
            }
        }
        loop {
            let mut buf = home.pop().unwrap_or_default();
            let Some((h, info)) = st.endpoint.poll_frame(&mut buf) else {
                let _ = home.push(buf);
                break;
            };
            if !st.sinks.contains_key(&(h, info.track)) {
                st.sync_remote(h);
            }
            match st.sinks.get(&(h, info.track)).filter(|s| s.playing.load(Ordering::Acquire)) {
                Some(sink) => {
                    let data = FrameData::pooled(buf, home.clone());
                    let (timestamp, ssrc, key_frame, audio_level) =
                        (info.timestamp, info.ssrc, info.key_frame, info.audio_level);
                    self.frames.push((sink.clone(), Frame { data, timestamp, ssrc, key_frame, audio_level }));
                }
                None => {
                    buf.clear();
                    let _ = home.push(buf);
                }
            }
        }
        let mut buf = Vec::new();
        while let Some((h, m)) = st.endpoint.poll_data(&mut buf) {
            let Some(inner) = st.data.get(&(h, m.stream)) else { continue };
            self.messages.push((inner.clone(), DataStreamMessage { data: std::mem::take(&mut buf), binary: m.binary }));
        }
        if !more {
            st.reap(now, &mut self.ended);
        }
        more
    }

    /// With the lock released: send, fire events, deliver frames, end
    /// streams.
    fn act(
        &mut self,
        udp: &UdpSocketSet,
        streams: &mut TurnStreams,
        tcp: &mut IceTcp,
        mdns: &mut MdnsLink,
        out: &[u8],
    ) {
        let interfaces = std::mem::take(&mut self.mdns_interfaces);
        if self.mdns.is_empty() && !interfaces.is_empty() {
            // Names to answer for: the socket listens from now on.
            mdns.open(|| interfaces);
        } else {
            mdns.send(&mut self.mdns, || interfaces);
        }
        for c in self.to_tcp.drain(..) {
            tcp.command(c);
        }
        for b in self.tcp_spent.drain(..) {
            tcp.recycle(b);
        }
        for b in self.stream_spent.drain(..) {
            streams.recycle(b);
        }
        for (source, destination, at, len, turn_stream) in self.transmit.drain(..) {
            if let Some(transport) = turn_stream {
                // A full queue drops it, as a full socket buffer would.
                streams.send_slice((source, destination, transport), &out[at..at + len]);
                continue;
            }
            // Over an ICE-TCP connection when its two addresses name one.
            if tcp.send(source, destination, &out[at..at + len]) {
                continue;
            }
            // A full socket buffer drops the datagram, as the network would.
            if let Err(e) = udp.try_send_to(source, destination, &out[at..at + len]) {
                tracing::trace!(%source, %destination, len, "UDP send failed: {e}");
            }
        }
        // In order: a close comes after the messages before it.
        for (o, tls) in self.to_streams.drain(..) {
            match (o, tls) {
                (StreamOutput::Transmit(_, t), _) => {
                    streams.send((t.source, t.destination, t.transport), t.contents);
                }
                (StreamOutput::Command(_, c), Some(tls)) => streams.command_with(c, &tls),
                (StreamOutput::Command(_, c), None) => streams.command(c),
                _ => {}
            }
        }
        for delivery in self.deliveries.drain(..) {
            match delivery {
                Delivery::Socket(s, e) => s.events.emit(e),
                Delivery::Connection(events, stream, e) => {
                    if let Some(s) = stream {
                        s.events.emit(e.clone());
                    }
                    events.emit(e);
                }
                Delivery::Data(d, e) => d.events.emit(e),
                Delivery::Incoming(q, d) => q.push(d, 0),
            }
        }
        for (d, m) in self.messages.drain(..) {
            d.messages.push(m, MESSAGE_BYTES);
        }
        for (track, frame) in self.frames.drain(..) {
            if let Some(inbox) = &track.inbox {
                inbox.push(frame, FRAME_BYTES);
            }
        }
        for e in self.ended.drain(..) {
            match e {
                Ending::Connection(link, data) => {
                    link.events.close();
                    link.incoming.close();
                    for d in data {
                        d.end();
                    }
                    for (_, s) in link.remote {
                        s.events.close();
                        for t in lock(&s.tracks).iter() {
                            if let Some(inbox) = &t.inbox {
                                inbox.close();
                            }
                        }
                    }
                }
                Ending::Socket(s) => s.events.close(),
            }
        }
    }
}

/// Stream events taken in one turn at most.
const STREAM_BATCH: usize = 64;

async fn run(driver: Weak<Driver>) {
    let mut udp = UdpSocketSet::new();
    // Streams to TURN servers (TURN over TCP or TLS): opened, written and
    // read by tasks of their own; their events come in below.
    let (mut streams, mut stream_events) = match TurnStreams::new(&[]) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("driver task ended: no TLS configuration: {e}");
            return;
        }
    };
    let mut batch = RecvBatch::new();
    let mut out = vec![0u8; TRANSMIT_BATCH * MIN_TRANSMIT_BUFFER];
    let mut turn = Turn::default();
    let mut mdns = MdnsLink::new();
    let mut tcp = IceTcp::new();
    // Frame buffers circulate: the core fills one, a reader drops it, and it
    // comes back here.
    let home = Arc::new(ArrayQueue::<Vec<u8>>::new(FRAME_POOL));
    loop {
        let Some(d) = driver.upgrade() else {
            tracing::debug!("driver task ended: its connections are gone");
            return;
        };
        let (timeout, more, done, sockets) = {
            let mut st = d.state();
            // Sockets to take on or drop, acted on once the lock is released
            // (registering and closing them are syscalls).
            let sockets = (
                std::mem::take(&mut st.add_udp),
                std::mem::take(&mut st.drop_udp),
                std::mem::take(&mut st.add_tcp),
                std::mem::take(&mut st.drop_tcp),
            );
            while turn.from_tcp.len() < STREAM_BATCH
                && let Some(e) = tcp.try_recv()
            {
                turn.from_tcp.push(e);
            }
            while turn.from_streams.len() < STREAM_BATCH
                && let Ok(e) = stream_events.try_recv()
            {
                turn.from_streams.push(e);
            }
            let more = turn.take(&mut st, &mut batch, &mut mdns, &mut out, &home);
            (st.endpoint.poll_timeout(), more, st.retired && st.conns.is_empty() && st.sockets.is_empty(), sockets)
        };
        let (add_udp, drop_udp, add_tcp, drop_tcp) = sockets;
        for b in add_udp {
            udp.add(b);
        }
        for a in drop_udp {
            udp.remove(a);
        }
        for l in add_tcp {
            if let Err(e) = tcp.adopt(l) {
                tracing::warn!("an ICE-TCP listener could not be taken on: {e}");
            }
        }
        for a in drop_tcp {
            tcp.unlisten(a);
        }
        turn.act(&udp, &mut streams, &mut tcp, &mut mdns, &out);
        if done {
            tracing::debug!("driver task ended: every connection closed, every socket gone");
            return;
        }
        if more {
            continue;
        }
        // The task keeps the driver while it waits: it ends once every
        // connection is closed and every socket gone (`done`).
        let wake = d.wake.notified();
        let until = timeout.unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(3600));
        tokio::select! {
            _ = udp.recv_batch(&mut batch) => {}
            Some(e) = stream_events.recv() => turn.from_streams.push(e),
            Some(e) = tcp.recv() => turn.from_tcp.push(e),
            () = wake => {}
            () = mdns.recv() => {}
            () = tokio::time::sleep_until(until.into()) => {}
        }
    }
}
