//! The driver of a connection and its forks: one [`rtc_proto::Endpoint`]
//! behind one lock, and one task that receives a batch of datagrams from
//! every socket, takes the lock once to hand them in, fire timers and drain
//! what the core wants sent, delivered and reported, then sends and
//! delivers with the lock released. Also the state the handles share.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Instant;

use crossbeam_queue::ArrayQueue;
use rtc_ice::TcpCommand;
use rtc_ice::net::{Inputs, Network};
use rtc_ice::tcp::{StreamKey, TlsConfig};
use rtc_ice::udp::Bound;
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
        let (udp, tcp) = (std::mem::take(&mut *lock(&self.unbound)), std::mem::take(&mut *lock(&self.unbound_tcp)));
        st.joined.push((id, udp, tcp, self.tls.clone()));
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
    /// Sockets whose UDP sockets and ICE-TCP listeners the task takes on,
    /// and sockets whose ports it frees, once the lock is released.
    joined: Vec<(SocketId, Vec<Bound>, Vec<std::net::TcpListener>, TlsConfig)>,
    left: Vec<SocketId>,
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
        self.left.push(id);
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

/// The core, as the network hands it what it read.
struct Core<'a>(Instant, &'a mut Endpoint);

impl Inputs<SocketId> for Core<'_> {
    fn datagram(&mut self, socket: SocketId, local: SocketAddr, remote: SocketAddr, data: &mut [u8]) {
        let _ = self.1.handle_datagram(self.0, socket, local, remote, data);
    }

    fn stream_connected(&mut self, socket: SocketId, key: StreamKey) {
        self.1.stream_connected(self.0, TurnStream::of(socket, key));
    }

    fn stream_closed(&mut self, socket: SocketId, key: StreamKey) {
        self.1.stream_closed(self.0, TurnStream::of(socket, key));
    }

    fn stream_message(&mut self, socket: SocketId, key: StreamKey, message: &mut [u8]) {
        let _ = self.1.handle_stream_message(self.0, TurnStream::of(socket, key), message);
    }

    fn tcp_connected(&mut self, socket: SocketId, opened: (SocketAddr, SocketAddr), connection: SocketAddr) -> bool {
        self.1.tcp_connected(self.0, socket, opened, connection)
    }

    fn tcp_closed(&mut self, socket: SocketId, local: SocketAddr, remote: SocketAddr) {
        self.1.tcp_closed(self.0, socket, local, remote);
    }

    fn mdns(&mut self, from: SocketAddr, data: &[u8]) {
        self.1.handle_mdns_datagram(self.0, from, data);
    }
}

/// What one turn of the lock produced, to act on with the lock released.
#[derive(Default)]
struct Turn {
    /// Datagrams in `out`: from, to, where, how long, and the TURN stream
    /// they go on (a relay reached over TCP or TLS) if any.
    transmit: Vec<(SocketAddr, SocketAddr, usize, usize, Option<rtc_ice::TurnTransport>)>,
    /// ICE-TCP connections to open or close, then messages for streams to
    /// TURN servers, and streams to open or close.
    to_tcp: Vec<(SocketId, TcpCommand)>,
    to_streams: Vec<StreamOutput>,
    deliveries: Vec<Delivery>,
    frames: Vec<(Arc<TrackInner>, Frame)>,
    messages: Vec<(Arc<DataInner>, DataStreamMessage)>,
    ended: Vec<Ending>,
    /// mDNS queries and answers, and whether names of ours are answered.
    mdns: Vec<rtc_ice::mdns::MdnsTransmit>,
    mdns_responding: bool,
}

impl Turn {
    /// Under the lock: what the network read, timers, and everything out.
    fn take(
        &mut self,
        st: &mut State,
        net: &mut Network<SocketId>,
        out: &mut [u8],
        home: &Arc<ArrayQueue<Vec<u8>>>,
    ) -> bool {
        let now = Instant::now();
        net.take(&mut Core(now, &mut st.endpoint));
        st.endpoint.handle_timeout(now);
        while let Some(q) = st.endpoint.poll_mdns_transmit(now) {
            self.mdns.push(q);
        }
        self.mdns_responding = st.endpoint.mdns_responding();
        let (mut at, mut more) = (0, false);
        while at + MIN_TRANSMIT_BUFFER <= out.len() {
            let Some((_, t)) = st.endpoint.poll_transmit(now, &mut out[at..]) else { break };
            self.transmit.push((t.source, t.destination, at, t.len, t.turn_stream));
            at += t.len;
            more = at + MIN_TRANSMIT_BUFFER > out.len();
        }
        while let Some((_, o)) = st.endpoint.poll_stream() {
            match o {
                StreamOutput::Tcp(socket, c) => self.to_tcp.push((socket, c)),
                o => self.to_streams.push(o),
            }
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
    fn act(&mut self, net: &mut Network<SocketId>, out: &[u8]) {
        net.mdns(&mut self.mdns, self.mdns_responding);
        for (socket, c) in self.to_tcp.drain(..) {
            net.tcp_command(socket, c);
        }
        for (source, destination, at, len, turn_stream) in self.transmit.drain(..) {
            net.send(source, destination, turn_stream, &out[at..at + len]);
        }
        // In order: a close comes after the messages before it.
        for o in self.to_streams.drain(..) {
            match o {
                StreamOutput::Transmit(_, t) => net.stream((t.source, t.destination, t.transport), t.contents),
                StreamOutput::Command(socket, c) => net.stream_command(socket, c),
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

async fn run(driver: Weak<Driver>) {
    // UDP sockets, streams to TURN servers and ICE-TCP connections (read
    // and written by tasks of their own), and the mDNS socket.
    let mut net = match Network::new() {
        Ok(n) => n,
        Err(e) => {
            tracing::error!("driver task ended: no TLS configuration: {e}");
            return;
        }
    };
    let mut out = vec![0u8; TRANSMIT_BATCH * MIN_TRANSMIT_BUFFER];
    let mut turn = Turn::default();
    // Frame buffers circulate: the core fills one, a reader drops it, and it
    // comes back here.
    let home = Arc::new(ArrayQueue::<Vec<u8>>::new(FRAME_POOL));
    loop {
        let Some(d) = driver.upgrade() else {
            tracing::debug!("driver task ended: its connections are gone");
            return;
        };
        let (timeout, more, done, joined, left) = {
            let mut st = d.state();
            let more = turn.take(&mut st, &mut net, &mut out, &home);
            // Sockets to take on or drop, acted on once the lock is released
            // (registering and closing them are syscalls).
            let (joined, left) = (std::mem::take(&mut st.joined), std::mem::take(&mut st.left));
            (st.endpoint.poll_timeout(), more, st.retired && st.conns.is_empty() && st.sockets.is_empty(), joined, left)
        };
        for (socket, udp, tcp, tls) in joined {
            net.add(socket, udp, tcp, tls);
        }
        // The last datagrams of a socket left (close_notify) go out first.
        turn.act(&mut net, &out);
        for socket in left {
            net.remove(socket);
        }
        if done {
            tracing::debug!("driver task ended: every connection closed, every socket gone");
            return;
        }
        if more {
            continue;
        }
        // The task keeps the driver while it waits: it ends once every
        // connection is closed and every socket gone (`done`).
        net.wait(timeout, d.wake.notified()).await;
    }
}
