//! `RtcConnection`: the ICE agents on the connection's sockets, SRTP keyed
//! from the two descriptions, one RTP session, and the streams. A driver
//! task moves time into the agents and the session; socket read tasks move
//! datagrams in; writers send from their own task. Every piece of protocol
//! is in the lower crates.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use rtc_candidate::{Candidate, Component};
use rtc_codecs::{Agreement, Codec, Kind, Options, PayloadType, negotiate};
use rtc_ice::{Agent, AgentConfig, Credentials, Event as IceEvent, Receive, Role};
use rtc_srtp::session::{Session, SessionConfig, SessionEvent};
use rtc_srtp::{Context, RtpPacket};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::desc::{ConnectionDescription, Direction, StreamDescription, TrackDescription};
use crate::dtls::{DtlsSrtp, is_dtls};
use crate::error::Error;
use crate::events::{ConnectionEvent, Emitter, Events, RtpStats, SocketEvent, TrackReport};
use crate::keys::{DEFAULT_SUITES, Keying, select};
use crate::media::{Frame, RtcMediaStream, RtcMediaStreamTrack};
use crate::packetize::{
    H264Assembler, Packetization, VP8_DESCRIPTOR, Vp8Assembler, fragments, fu_a_header, is_sendable_nal, nal_units,
    vp8_descriptor, vp8_is_key_frame,
};
use crate::socket::{RtcSocket, SocketInner, lock};

/// The most media octets per RTP packet: RTP header, descriptor and SRTP tag
/// then fit a 1200-octet datagram.
const MAX_PAYLOAD: usize = 1100;
/// Room for one datagram and SRTP's tail.
const BUF: usize = 65_536;

/// The default codec options: Opus (RFC 7587) and VP8 (RFC 7741).
pub fn default_options() -> Options {
    let mut opus = Codec::new(PayloadType::new(111).unwrap_or(PayloadType::PCMU), Kind::Audio, "opus", 48_000, Some(2));
    opus.parameters.insert("minptime", "10");
    opus.parameters.insert("useinbandfec", "1");
    let vp8 = Codec::new(PayloadType::new(96).unwrap_or(PayloadType::PCMU), Kind::Video, "VP8", 90_000, None);
    Options { codecs: vec![opus, vp8], ..Options::default() }
}

struct Transport {
    socket: Arc<SocketInner>,
    agent: Agent,
    /// Events of the socket itself come from the agent of the first
    /// connection on it (forks share its candidates).
    primary: bool,
    ice_connected: bool,
    /// DTLS-SRTP keying, when the remote description has no `keys`.
    dtls: Option<DtlsSrtp>,
    tx: Option<Context>,
    rx: Option<Context>,
}

struct OutTrack {
    media_time: u32,
    picture_id: u16,
    /// How this track's frames are sent, until the agreement, the sockets
    /// or the track's description change.
    plan: Option<Plan>,
}

#[derive(Clone, Copy)]
struct Plan {
    pt: u8,
    clock: u32,
    pack: Packetization,
    transport: usize,
    conn_gen: u64,
    track_gen: u64,
}

struct InTrack {
    stream: RtcMediaStream,
    track: RtcMediaStreamTrack,
    vp8: Vp8Assembler,
    h264: H264Assembler,
    receiving: bool,
    connected: bool,
}

pub(crate) struct ConnState {
    cname: String,
    context_id: String,
    secret: String,
    /// The local ICE credentials changed (an ICE restart) since the remote
    /// description was set: the peer's new ones are awaited.
    restart_pending: bool,
    local_keys: Vec<Keying>,
    remote: Option<ConnectionDescription>,
    remote_keys: Vec<Keying>,
    local_options: Options,
    remote_options: Option<Options>,
    agreement: Option<Agreement>,
    transports: Vec<Transport>,
    session: Option<Session>,
    send_streams: Vec<RtcMediaStream>,
    out_tracks: HashMap<u32, OutTrack>,
    remote_streams: Vec<RtcMediaStream>,
    in_tracks: HashMap<u32, InTrack>,
    connected: bool,
    created: Instant,
    connected_after: Option<Duration>,
    report_interval: Duration,
    next_report: Option<Instant>,
    buf: Vec<u8>,
    scratch: Vec<u8>,
    /// Bumped when the agreement or the transports change (send plans are stale).
    plan_gen: u64,
    closed: bool,
}

pub(crate) struct ConnShared {
    state: Mutex<ConnState>,
    wake: Arc<Notify>,
    events: Emitter<ConnectionEvent>,
    task: Mutex<Option<JoinHandle<()>>>,
    dropped: AtomicU64,
}

impl std::fmt::Debug for ConnShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnShared").finish_non_exhaustive()
    }
}

/// The seeds' RTCConnection. Cloning gives another handle to the same
/// connection; dropping the last handle closes it (as [`close`](Self::close)).
#[derive(Debug, Clone)]
pub struct RtcConnection {
    shared: Arc<ConnShared>,
    _handles: Arc<Handles>,
}

/// Shared by a connection's handles: the last one dropped closes it (its
/// sockets and tracks hold the connection too, so a count of `shared`
/// cannot tell).
#[derive(Debug)]
struct Handles(std::sync::Weak<ConnShared>);

impl Drop for Handles {
    fn drop(&mut self) {
        if let Some(s) = self.0.upgrade() {
            s.close();
        }
    }
}

impl RtcConnection {
    /// A connection. `cname`, `context-id` (the ICE ufrag) and `secret` (the
    /// ICE password) are drawn from a CSPRNG when absent; `options` default
    /// to [`default_options`] (Opus and VP8). Must run inside a tokio
    /// runtime (it starts the connection's driver task).
    pub fn new(description: Option<ConnectionDescription>, options: Option<Options>) -> Result<Self, Error> {
        let d = description.unwrap_or_default();
        let generated = Credentials::random(&mut rand::rng());
        let creds = Credentials {
            ufrag: d.context_id.clone().unwrap_or(generated.ufrag),
            pwd: d.secret.clone().unwrap_or(generated.pwd),
        };
        creds.validate().map_err(|e| Error::InvalidDescription(format!("context-id/secret: {e}")))?;
        let options = options.unwrap_or_else(default_options);
        options.validate().map_err(|e| Error::InvalidOptions(e.to_string()))?;
        let mut local_keys = Vec::new();
        for k in &d.keys {
            local_keys.push(Keying::from_crypto(k)?);
        }
        let cname = d.cname.clone().unwrap_or_else(|| crate::random_id(16));
        let state = ConnState::fresh(cname, creds.ufrag, creds.pwd, local_keys, options, Duration::from_secs(1));
        Ok(Self::start(state))
    }

    fn start(state: ConnState) -> Self {
        let shared = Arc::new(ConnShared {
            state: Mutex::new(state),
            wake: Arc::new(Notify::new()),
            events: Emitter::new(),
            task: Mutex::new(None),
            dropped: AtomicU64::new(0),
        });
        let task = tokio::spawn(drive(Arc::downgrade(&shared), shared.wake.clone()));
        *lock(&shared.task) = Some(task);
        let handles = Arc::new(Handles(Arc::downgrade(&shared)));
        Self { shared, _handles: handles }
    }

    /// The connection's events (the union of both seeds' events).
    pub fn events(&self) -> Events<ConnectionEvent> {
        self.shared.events.subscribe()
    }

    /// The local or remote description.
    pub fn description(&self, direction: Direction) -> Option<ConnectionDescription> {
        let st = self.shared.state();
        match direction {
            Direction::Remote => st.remote.clone(),
            Direction::Local => Some(st.local_description()),
        }
    }

    /// Sets the remote description (the peer's `context-id`, `secret`,
    /// `keys`, `sockets` and `streams`): ICE checks start and SRTP is keyed.
    /// Or, before any socket is added, overrides local `cname`,
    /// `context-id`, `secret` or `keys`. A refused description changes
    /// nothing.
    pub fn set_description(&self, description: ConnectionDescription, direction: Direction) -> Result<(), Error> {
        let r = match direction {
            Direction::Remote => self.shared.state().set_remote(&self.shared, description),
            Direction::Local => self.shared.state().set_local(description),
        };
        self.shared.wake.notify_one();
        r
    }

    /// The local or remote codec options.
    pub fn options(&self, direction: Direction) -> Option<Options> {
        let st = self.shared.state();
        match direction {
            Direction::Local => Some(st.local_options.clone()),
            Direction::Remote => st.remote_options.clone(),
        }
    }

    /// Sets the local or remote codec options (`codecs`, `required`,
    /// `optional`). When both sides are known they are negotiated at once; a
    /// refused dictionary changes nothing.
    pub fn set_options(&self, options: Options, direction: Direction) -> Result<(), Error> {
        options.validate().map_err(|e| Error::InvalidOptions(e.to_string()))?;
        let mut st = self.shared.state();
        let (mut local, mut remote) = (st.local_options.clone(), st.remote_options.clone());
        match direction {
            Direction::Local => local = options,
            Direction::Remote => remote = Some(options),
        }
        let agreement = if st.remote.is_some() {
            Some(agree(&st.context_id, st.remote_context(), &local, remote.as_ref())?)
        } else {
            None
        };
        st.local_options = local;
        st.remote_options = remote;
        if agreement.is_some() {
            st.agreement = agreement;
            st.plan_gen += 1;
        }
        Ok(())
    }

    /// Seed 001's name for [`options`](Self::options).
    pub fn constraints(&self, direction: Direction) -> Option<Options> {
        self.options(direction)
    }

    /// Seed 001's name for [`set_options`](Self::set_options).
    pub fn set_constraints(&self, constraints: Options, direction: Direction) -> Result<(), Error> {
        self.set_options(constraints, direction)
    }

    /// The agreed codecs and constraints, once the remote side is known.
    pub fn agreement(&self) -> Option<Agreement> {
        self.shared.state().agreement.clone()
    }

    /// Adds a socket: an ICE agent with this connection's credentials
    /// starts on it and its candidates fire on the socket's events.
    pub fn add_socket(&self, socket: &RtcSocket) -> Result<(), Error> {
        self.shared.add_socket(socket.inner.clone())
    }

    /// The sockets.
    pub fn sockets(&self) -> Vec<RtcSocket> {
        self.shared.state().transports.iter().map(|t| RtcSocket { inner: t.socket.clone() }).collect()
    }

    /// Adds a remote candidate to the socket with `socket_id` (this side's
    /// id), or to the first socket when `None`.
    pub fn set_remote_candidate(&self, socket_id: Option<&str>, candidate: &Candidate) -> Result<(), Error> {
        let id = match socket_id {
            Some(id) => id.to_owned(),
            None => self
                .shared
                .state()
                .transports
                .first()
                .map(|t| t.socket.id.clone())
                .ok_or(Error::NotConnected("no socket added"))?,
        };
        self.shared.add_remote_candidate(&id, candidate)
    }

    /// Sends a stream (`true`) or stops sending it (`false`).
    pub fn send_stream(&self, stream: &RtcMediaStream, send: bool) -> Result<(), Error> {
        if send {
            self.shared.send_stream(stream)
        } else {
            self.shared.stream_stopped(stream);
            Ok(())
        }
    }

    /// Receives a remote stream (`true`), or stops delivering its frames
    /// (`false`). A stream the remote description does not list is
    /// registered by its tracks' SSRCs.
    pub fn receive_stream(&self, stream: &StreamDescription, receive: bool) -> Result<(), Error> {
        let mut st = self.shared.state();
        let known = st.remote_streams.iter().any(|s| s.id() == stream.stream_id);
        if !known {
            if !receive {
                return Ok(());
            }
            st.add_remote_stream(stream.clone())?;
        }
        for t in &stream.tracks {
            if let Some(ssrc) = t.ssrc
                && let Some(it) = st.in_tracks.get_mut(&ssrc)
            {
                it.receiving = receive;
            }
        }
        if stream.tracks.is_empty() {
            for it in st.in_tracks.values_mut().filter(|it| it.stream.id() == stream.stream_id) {
                it.receiving = receive;
            }
        }
        Ok(())
    }

    /// The streams being sent.
    pub fn local_streams(&self) -> Vec<RtcMediaStream> {
        self.shared.state().send_streams.clone()
    }

    /// The streams received (or announced by the remote description).
    pub fn remote_streams(&self) -> Vec<RtcMediaStream> {
        self.shared.state().remote_streams.clone()
    }

    /// A connection to another peer sharing this one's context (`cname`,
    /// `context-id`, `secret`), options and sockets, with its own remote
    /// description, candidates, streams and SRTP keys. Incoming STUN
    /// requests reach it by their sender's ufrag, media by its source.
    pub fn fork(&self) -> Result<Self, Error> {
        let (state, sockets) = {
            let st = self.shared.state();
            if st.closed {
                return Err(Error::Closed);
            }
            let local_keys = st.local_keys.iter().map(|k| Keying::random(k.tag, k.profile)).collect();
            let sockets: Vec<Arc<SocketInner>> = st.transports.iter().map(|t| t.socket.clone()).collect();
            let state = ConnState::fresh(
                st.cname.clone(),
                st.context_id.clone(),
                st.secret.clone(),
                local_keys,
                st.local_options.clone(),
                st.report_interval,
            );
            (state, sockets)
        };
        let fork = Self::start(state);
        for s in sockets {
            fork.shared.add_socket(s)?;
        }
        Ok(fork)
    }

    /// Sets how often StreamReport and TrackReport fire (1 s by default).
    pub fn set_report_interval(&self, interval: Duration) {
        let mut st = self.shared.state();
        st.report_interval = interval.max(Duration::from_millis(10));
        st.next_report = None;
        drop(st);
        self.shared.wake.notify_one();
    }

    /// The statistics of every sent and received track now.
    pub fn stats(&self) -> Vec<TrackReport> {
        let st = self.shared.state();
        let mut out = Vec::new();
        for s in &st.send_streams {
            out.extend(st.stream_reports(s, Direction::Local));
        }
        for s in &st.remote_streams {
            out.extend(st.stream_reports(s, Direction::Remote));
        }
        out
    }

    /// How long after its creation the connection fired Connected.
    pub fn time_to_connected(&self) -> Option<Duration> {
        self.shared.state().connected_after
    }

    /// Whether media can flow (ICE connected with consent, SRTP keyed).
    pub fn is_connected(&self) -> bool {
        self.shared.state().connected
    }

    /// Received datagrams dropped by this connection (SRTP authentication
    /// or replay failures, malformed RTP or RTCP).
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Closes the connection: its agents stop, its driver task ends, it
    /// leaves its sockets, and sockets no other fork uses are closed (their
    /// UDP ports are free once the runtime has dropped the aborted read
    /// tasks).
    pub fn close(&self) {
        self.shared.close();
    }
}

/// The offerer of the symmetric seeds' model is the side with the smaller
/// `context-id`, so both peers negotiate in the same order and agree on the
/// same payload types.
fn agree(local_id: &str, remote_id: &str, local: &Options, remote: Option<&Options>) -> Result<Agreement, Error> {
    let remote = remote.unwrap_or(local);
    Ok(if local_id <= remote_id { negotiate(local, remote)? } else { negotiate(remote, local)? })
}

impl ConnShared {
    fn state(&self) -> MutexGuard<'_, ConnState> {
        lock(&self.state)
    }

    pub(crate) fn remote_ufrag(&self) -> Option<String> {
        self.state().remote.as_ref().and_then(|r| r.context_id.clone())
    }

    pub(crate) fn local_candidates(&self, socket_id: &str) -> Vec<Candidate> {
        let st = self.state();
        st.transports
            .iter()
            .filter(|t| t.socket.id == socket_id)
            .flat_map(|t| t.agent.local_candidates().cloned())
            .map(|mut c| {
                c.socket_id = Some(socket_id.to_owned());
                c
            })
            .collect()
    }

    fn add_socket(self: &Arc<Self>, socket: Arc<SocketInner>) -> Result<(), Error> {
        if socket.is_closed() {
            return Err(Error::Closed);
        }
        let primary = lock(&socket.conns).is_empty();
        {
            let mut st = self.state();
            if st.closed {
                return Err(Error::Closed);
            }
            if st.transports.iter().any(|t| Arc::ptr_eq(&t.socket, &socket)) {
                return Err(Error::InvalidOptions("the socket is already added".into()));
            }
            let components = if socket.options.mux { 1 } else { 2 };
            let mut cfg = AgentConfig {
                role: Role::Controlling,
                components,
                credentials: Some(Credentials { ufrag: st.context_id.clone(), pwd: st.secret.clone() }),
                stun_servers: socket.stun_servers.clone(),
                ..AgentConfig::default()
            };
            if let Some(t) = socket.options.ice_timing {
                cfg.timing = t;
            }
            let mut agent = Agent::new(cfg)?;
            let now = Instant::now();
            for u in lock(&socket.udp).iter() {
                let c = Component::new(u.component).map_err(|_| Error::Ice(rtc_ice::Error::InvalidComponent(0)))?;
                agent.add_host_candidate(now, c, u.local)?;
            }
            agent.end_of_local_candidates(now);
            st.merge_local_keys(&socket)?;
            let mut t = Transport {
                socket: socket.clone(),
                agent,
                primary,
                ice_connected: false,
                dtls: None,
                tx: None,
                rx: None,
            };
            if let Some(remote) = &st.remote {
                let creds = remote_credentials(remote)?;
                t.agent.set_remote_credentials(now, creds)?;
                st.key_transport(&mut t, now)?;
            }
            st.transports.push(t);
            st.plan_gen += 1;
        }
        lock(&socket.conns).push(self.clone());
        self.wake.notify_one();
        Ok(())
    }

    pub(crate) fn add_remote_candidate(&self, socket_id: &str, candidate: &Candidate) -> Result<(), Error> {
        let mut st = self.state();
        let t = st
            .transports
            .iter_mut()
            .find(|t| t.socket.id == socket_id)
            .ok_or_else(|| Error::InvalidCandidate(format!("no socket {socket_id:?} on this connection")))?;
        t.agent.add_remote_candidate(Instant::now(), candidate).map_err(|e| Error::InvalidCandidate(e.to_string()))?;
        drop(st);
        self.wake.notify_one();
        Ok(())
    }

    /// A datagram from a socket's read task. `false` when it is not this
    /// connection's (another fork may take it).
    pub(crate) fn on_datagram(
        &self,
        socket_id: &str,
        now: Instant,
        local: SocketAddr,
        from: SocketAddr,
        data: &mut [u8],
    ) -> bool {
        let mut st = self.state();
        let Some(ti) = st.transports.iter().position(|t| t.socket.id == socket_id) else { return false };
        match st.transports[ti].agent.handle_receive(now, local, from, data) {
            Receive::Stun => {
                drop(st);
                self.wake.notify_one();
                true
            }
            Receive::Data { component } if is_dtls(data) => {
                // RFC 7983: DTLS, for the association keying SRTP.
                let t = &mut st.transports[ti];
                match t.dtls.as_mut() {
                    Some(dtls) if component == Component::RTP => {
                        let socket = &t.socket;
                        dtls.handle_packet(now, data, &mut |p| {
                            socket.send(local, from, p);
                        });
                        st.take_dtls_keys(self, ti);
                        drop(st);
                        self.wake.notify_one();
                    }
                    _ => {
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                true
            }
            Receive::Data { component } => {
                if !st.on_media(self, ti, component.get(), now, data) {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
                true
            }
            Receive::Dropped(_) => false,
            _ => false,
        }
    }

    pub(crate) fn send_frame(
        &self,
        track: &RtcMediaStreamTrack,
        frame: &[u8],
        duration: Duration,
    ) -> Result<usize, Error> {
        let (ssrc, track_gen) = {
            let d = lock(&track.inner.desc);
            (d.ssrc.unwrap_or_default(), track.inner.generation.load(Ordering::Acquire))
        };
        let (csrcs, ncsrc) = *lock(&track.inner.contributors);
        let mut st = self.state();
        if st.closed {
            return Err(Error::Closed);
        }
        let conn_gen = st.plan_gen;
        let cached = st.out_tracks.get(&ssrc).and_then(|o| o.plan);
        let plan = match cached.filter(|p| p.conn_gen == conn_gen && p.track_gen == track_gen) {
            Some(p) => p,
            None => {
                let desc = track.description();
                let (pt, clock, pack) = st.send_codec(&desc)?;
                let transport = st.transport_for(&desc).ok_or(Error::NotConnected("no socket carries this track"))?;
                let p = Plan { pt, clock, pack, transport, conn_gen, track_gen };
                st.out_track(ssrc).plan = Some(p);
                p
            }
        };
        let Plan { pt, clock, pack, transport: ti, .. } = plan;
        let now = Instant::now();
        let ConnState { session, transports, out_tracks, buf, scratch, .. } = &mut *st;
        let session = session.as_mut().ok_or(Error::NotConnected("no remote description yet"))?;
        let t = &mut transports[ti];
        let path = t.agent.path(Component::RTP).ok_or(Error::NotConnected("no selected ICE pair with consent"))?;
        let tx = t.tx.as_mut().ok_or(Error::NotConnected("SRTP is not keyed"))?;
        let out = out_tracks.get_mut(&ssrc).ok_or(Error::NotConnected("the track is not attached"))?;
        let mut sent = 0;
        let mut send = |payload: &[u8], marker: bool, buf: &mut Vec<u8>| -> Result<(), Error> {
            let n = session.write_rtp(now, ssrc, pt, marker, out.media_time, &csrcs[..ncsrc], &[], payload, buf)?;
            let n = tx.protect_rtp(buf, n)?;
            t.socket.send(path.local, path.remote, &buf[..n]);
            sent += 1;
            Ok(())
        };
        match pack {
            Packetization::Whole => send(frame, true, buf)?,
            Packetization::Vp8 => {
                let count = fragments(frame.len(), MAX_PAYLOAD).count();
                let mut at = 0;
                for (i, len) in fragments(frame.len(), MAX_PAYLOAD).enumerate() {
                    let mut d = [0; VP8_DESCRIPTOR];
                    vp8_descriptor(&mut d, i == 0, out.picture_id);
                    scratch.clear();
                    scratch.extend_from_slice(&d);
                    scratch.extend_from_slice(&frame[at..at + len]);
                    at += len;
                    send(scratch, i + 1 == count, buf)?;
                }
            }
            Packetization::H264 { fragment } => {
                // RFC 6184: a NAL unit that fits goes alone (section 5.6),
                // a longer one in FU-A fragments (section 5.8); the marker
                // is on the last packet of the access unit.
                if !nal_units(frame).all(|u| is_sendable_nal(u[0])) {
                    return Err(Error::InvalidFrame(
                        "not H.264 NAL units in Annex B form (forbidden bit set, or type 0 or 24 to 31)",
                    ));
                }
                // Checked before anything is sent: a refusal half-way would
                // leave units of this frame under the next frame's timestamp.
                if !fragment && nal_units(frame).any(|u| u.len() > MAX_PAYLOAD) {
                    return Err(Error::NotSupported(
                        "an H.264 NAL unit longer than a packet with packetization-mode 0",
                    ));
                }
                let mut units = nal_units(frame).peekable();
                while let Some(unit) = units.next() {
                    let last_unit = units.peek().is_none();
                    if unit.len() <= MAX_PAYLOAD {
                        send(unit, last_unit, buf)?;
                        continue;
                    }
                    let body = &unit[1..];
                    let count = fragments(body.len(), MAX_PAYLOAD - 2).count();
                    let mut at = 0;
                    for (i, len) in fragments(body.len(), MAX_PAYLOAD - 2).enumerate() {
                        let end = i + 1 == count;
                        scratch.clear();
                        scratch.extend_from_slice(&fu_a_header(unit[0], i == 0, end));
                        scratch.extend_from_slice(&body[at..at + len]);
                        at += len;
                        send(scratch, last_unit && end, buf)?;
                    }
                }
            }
        }
        out.picture_id = (out.picture_id + 1) & 0x7fff;
        let ticks = (duration.as_secs_f64() * f64::from(clock)).round() as u64;
        out.media_time = out.media_time.wrapping_add(ticks as u32);
        Ok(sent)
    }

    fn send_stream(self: &Arc<Self>, stream: &RtcMediaStream) -> Result<(), Error> {
        {
            let current = lock(&stream.inner.conn).upgrade();
            if let Some(c) = current
                && !Arc::ptr_eq(&c, self)
            {
                return Err(Error::InvalidOptions("the stream is sent on another connection".into()));
            }
        }
        let mut st = self.state();
        if st.closed {
            return Err(Error::Closed);
        }
        if st.send_streams.iter().any(|s| Arc::ptr_eq(&s.inner, &stream.inner)) {
            return Ok(());
        }
        for t in stream.tracks() {
            st.attach_track(self, &t)?;
        }
        *lock(&stream.inner.conn) = Arc::downgrade(self);
        st.send_streams.push(stream.clone());
        if st.connected {
            st.stream_up(self, stream, Direction::Local);
        }
        Ok(())
    }

    pub(crate) fn track_added(self: &Arc<Self>, stream: &RtcMediaStream, track: &RtcMediaStreamTrack) {
        let mut st = self.state();
        if st.attach_track(self, track).is_ok() && st.connected {
            st.track_event(self, stream, track, Direction::Local, true);
        }
    }

    pub(crate) fn track_removed(&self, stream: &RtcMediaStream, track: &RtcMediaStreamTrack) {
        let mut st = self.state();
        *lock(&track.inner.conn) = std::sync::Weak::new();
        st.out_tracks.remove(&track.ssrc());
        if st.connected {
            st.track_event(self, stream, track, Direction::Local, false);
        }
    }

    pub(crate) fn stream_stopped(&self, stream: &RtcMediaStream) {
        let mut st = self.state();
        let before = st.send_streams.len();
        st.send_streams.retain(|s| !Arc::ptr_eq(&s.inner, &stream.inner));
        if before == st.send_streams.len() {
            return;
        }
        *lock(&stream.inner.conn) = std::sync::Weak::new();
        for t in stream.tracks() {
            *lock(&t.inner.conn) = std::sync::Weak::new();
        }
        if st.connected {
            st.stream_down(self, stream, Direction::Local);
        }
    }

    pub(crate) fn socket_closed(&self, socket_id: &str) {
        let mut st = self.state();
        st.transports.retain(|t| t.socket.id != socket_id);
        st.plan_gen += 1;
        if st.connected {
            st.connected = false;
            st.all_down(self);
        }
    }

    fn close(self: &Arc<Self>) {
        let sockets = {
            let mut st = self.state();
            if st.closed {
                return;
            }
            st.closed = true;
            if st.connected {
                st.connected = false;
                st.all_down(self);
            }
            for t in &mut st.transports {
                t.agent.close();
            }
            for s in &st.send_streams {
                *lock(&s.inner.conn) = std::sync::Weak::new();
            }
            let sockets: Vec<Arc<SocketInner>> = st.transports.drain(..).map(|t| t.socket).collect();
            sockets
        };
        for s in sockets {
            if s.detach(self) {
                s.close();
            }
        }
        if let Some(t) = lock(&self.task).take() {
            t.abort();
        }
        self.events.close();
        self.wake.notify_one();
    }
}

/// The DTLS certificate fingerprints a description's sockets list.
fn fingerprints(d: &ConnectionDescription) -> impl Iterator<Item = &String> {
    d.sockets.iter().flat_map(|s| &s.options.fingerprints)
}

fn remote_credentials(remote: &ConnectionDescription) -> Result<Credentials, Error> {
    let creds = Credentials {
        ufrag: remote.context_id.clone().unwrap_or_default(),
        pwd: remote.secret.clone().unwrap_or_default(),
    };
    creds.validate().map_err(|e| Error::InvalidDescription(format!("remote context-id/secret: {e}")))?;
    Ok(creds)
}

impl ConnState {
    /// A connection's state before any remote description, stream or socket:
    /// what `new` and `fork` share.
    fn fresh(
        cname: String,
        context_id: String,
        secret: String,
        local_keys: Vec<Keying>,
        local_options: Options,
        report_interval: Duration,
    ) -> Self {
        ConnState {
            cname,
            context_id,
            secret,
            restart_pending: false,
            local_keys,
            remote: None,
            remote_keys: Vec::new(),
            local_options,
            remote_options: None,
            agreement: None,
            transports: Vec::new(),
            session: None,
            send_streams: Vec::new(),
            out_tracks: HashMap::new(),
            remote_streams: Vec::new(),
            in_tracks: HashMap::new(),
            connected: false,
            created: Instant::now(),
            connected_after: None,
            report_interval,
            next_report: None,
            buf: vec![0; BUF],
            scratch: Vec::with_capacity(MAX_PAYLOAD + VP8_DESCRIPTOR),
            plan_gen: 0,
            closed: false,
        }
    }

    fn out_track(&mut self, ssrc: u32) -> &mut OutTrack {
        self.out_tracks.entry(ssrc).or_insert_with(|| OutTrack {
            media_time: 0,
            picture_id: rand::random::<u16>() & 0x7fff,
            plan: None,
        })
    }

    fn remote_context(&self) -> &str {
        self.remote.as_ref().and_then(|r| r.context_id.as_deref()).unwrap_or_default()
    }

    fn local_description(&self) -> ConnectionDescription {
        let mut sockets = Vec::new();
        for t in &self.transports {
            let candidates = t
                .agent
                .local_candidates()
                .cloned()
                .map(|mut c| {
                    c.socket_id = Some(t.socket.id.clone());
                    c
                })
                .collect();
            let mut options = t.socket.options.clone();
            options.setup = self.dtls_client().map(|client| if client { "active" } else { "passive" }.to_owned());
            sockets.push(crate::desc::SocketDescription { socket_id: t.socket.id.clone(), candidates, options });
        }
        let keys = if self.local_keys.is_empty() {
            DEFAULT_SUITES.iter().enumerate().map(|(i, p)| Keying::random(i as u32 + 1, *p).to_crypto()).collect()
        } else {
            self.local_keys.iter().map(Keying::to_crypto).collect()
        };
        ConnectionDescription {
            cname: Some(self.cname.clone()),
            context_id: Some(self.context_id.clone()),
            secret: Some(self.secret.clone()),
            keys,
            sockets,
            streams: self.send_streams.iter().map(RtcMediaStream::description).collect(),
        }
    }

    /// Adds the socket's suites (or the default ones) to the local keys,
    /// keeping the material of suites already there.
    fn merge_local_keys(&mut self, socket: &SocketInner) -> Result<(), Error> {
        let wanted: Vec<Keying> = if socket.options.keys.is_empty() {
            DEFAULT_SUITES.iter().map(|p| Keying::random(0, *p)).collect()
        } else {
            let mut v = Vec::new();
            for k in &socket.options.keys {
                v.push(match k.key_params {
                    Some(_) => Keying::from_crypto(k)?,
                    None => Keying::random(0, crate::keys::profile(&k.crypto_suite)?),
                });
            }
            v
        };
        if self.remote.is_some() {
            // Already keyed: a later socket uses the same keys.
            return Ok(());
        }
        for mut k in wanted {
            if !self.local_keys.iter().any(|l| l.profile == k.profile) {
                k.tag = self.local_keys.len() as u32 + 1;
                self.local_keys.push(k);
            }
        }
        Ok(())
    }

    fn set_local(&mut self, d: ConnectionDescription) -> Result<(), Error> {
        let changes_ice = d.context_id.as_ref().is_some_and(|c| *c != self.context_id)
            || d.secret.as_ref().is_some_and(|s| *s != self.secret);
        let creds = Credentials {
            ufrag: d.context_id.clone().unwrap_or_else(|| self.context_id.clone()),
            pwd: d.secret.clone().unwrap_or_else(|| self.secret.clone()),
        };
        creds.validate().map_err(|e| Error::InvalidDescription(format!("context-id/secret: {e}")))?;
        let mut keys = Vec::new();
        for k in &d.keys {
            keys.push(Keying::from_crypto(k)?);
        }
        if !keys.is_empty() && self.remote.is_some() && keys != self.local_keys {
            return Err(Error::NotSupported("changing SRTP keys once the remote description is set (rekeying)"));
        }
        if d.cname.as_ref().is_some_and(|c| *c != self.cname) && self.session.is_some() {
            return Err(Error::NotSupported("changing the cname once media started"));
        }
        if changes_ice && !self.transports.is_empty() {
            // An ICE restart (RFC 8445 section 9) on every socket; media
            // keeps the old path until the new checks select a pair.
            self.restart_ice(creds.clone())?;
            self.restart_pending = self.remote.is_some();
        }
        self.context_id = creds.ufrag;
        self.secret = creds.pwd;
        if let Some(c) = d.cname {
            self.cname = c;
        }
        if !keys.is_empty() {
            self.local_keys = keys;
        }
        Ok(())
    }

    /// Restarts ICE on every socket with new local credentials.
    fn restart_ice(&mut self, creds: Credentials) -> Result<(), Error> {
        let now = Instant::now();
        for t in &mut self.transports {
            t.agent.restart(now, Some(creds.clone()))?;
        }
        Ok(())
    }

    fn set_remote(&mut self, shared: &ConnShared, d: ConnectionDescription) -> Result<(), Error> {
        if self.closed {
            return Err(Error::Closed);
        }
        let creds = remote_credentials(&d)?;
        let dtls = d.keys.is_empty();
        if dtls {
            // RFC 5763: keyed by a DTLS handshake against these.
            if !fingerprints(&d).any(|f| crate::dtls::parse_sha256_fingerprint(f).is_some()) {
                return Err(Error::InvalidDescription(
                    "the remote description has neither SRTP keys nor a sha-256 fingerprint; media is never sent \
                     unprotected"
                        .into(),
                ));
            }
            if self.transports.iter().any(|t| !t.socket.options.mux) {
                return Err(Error::NotSupported("DTLS-SRTP on a socket without mux"));
            }
        }
        let mut remote_keys = Vec::new();
        for k in &d.keys {
            // Suites this side does not implement are skipped, as RFC 4568
            // answerers skip unknown crypto attributes.
            match Keying::from_crypto(k) {
                Ok(k) => remote_keys.push(k),
                Err(e) if crate::keys::profile(&k.crypto_suite).is_ok() => return Err(e),
                Err(_) => {}
            }
        }
        if self.local_keys.is_empty() {
            self.local_keys =
                DEFAULT_SUITES.iter().enumerate().map(|(i, p)| Keying::random(i as u32 + 1, *p)).collect();
        }
        if !dtls && select(&self.local_keys, &remote_keys).is_none() {
            let names = |v: &[Keying]| v.iter().map(|k| k.profile.name()).collect::<Vec<_>>().join(", ");
            return Err(Error::InvalidDescription(format!(
                "no SRTP crypto-suite in common: local lists [{}], remote lists [{}]",
                names(&self.local_keys),
                names(&remote_keys)
            )));
        }
        for s in &d.streams {
            for t in &s.tracks {
                if t.ssrc.is_none() {
                    return Err(Error::InvalidDescription(format!("remote track {:?} has no ssrc", t.track_id)));
                }
            }
        }
        let remote_restart =
            self.remote.as_ref().is_some_and(|old| old.context_id != d.context_id || old.secret != d.secret);
        if self.remote.as_ref().is_some_and(|old| old.keys != d.keys) {
            return Err(Error::NotSupported("changing the remote SRTP keys (rekeying)"));
        }
        let agreement = agree(
            &self.context_id,
            d.context_id.as_deref().unwrap_or_default(),
            &self.local_options,
            self.remote_options.as_ref(),
        )?;
        // Everything is checked: apply.
        if remote_restart {
            // The peer restarted ICE. Unless this side restarted first and
            // awaits exactly this, it restarts too, with new credentials
            // that its next local description carries (RFC 8445 section 9).
            if !self.restart_pending {
                let fresh = Credentials::random(&mut rand::rng());
                self.restart_ice(fresh.clone())?;
                self.context_id = fresh.ufrag;
                self.secret = fresh.pwd;
            }
            self.restart_pending = false;
            let now = Instant::now();
            for t in &mut self.transports {
                t.agent.set_remote_credentials(now, creds.clone())?;
            }
        }
        let first = self.remote.is_none();
        self.remote_keys = remote_keys;
        self.remote = Some(d.clone());
        self.agreement = Some(agreement);
        self.plan_gen += 1;
        let now = Instant::now();
        if first {
            let mut transports = std::mem::take(&mut self.transports);
            let keyed = transports.iter_mut().try_for_each(|t| {
                t.agent.set_remote_credentials(now, creds.clone())?;
                self.key_transport(t, now)
            });
            self.transports = transports;
            keyed?;
            let mut clock_rates: Vec<(u8, u32)> = Vec::new();
            if let Some(a) = &self.agreement {
                clock_rates.extend(a.codecs.iter().map(|c| (c.payload_id.get(), c.hz_rate)));
            }
            let mut session = Session::new(
                SessionConfig {
                    rtcp_ssrc: crate::random_ssrc(),
                    cname: self.cname.clone(),
                    clock_rates,
                    seed: rand::random(),
                    ..SessionConfig::default()
                },
                now,
                SystemTime::now(),
            );
            for s in &self.send_streams {
                for t in s.tracks() {
                    let clock = self.clock_of(t.kind());
                    session.add_outgoing(t.ssrc(), clock, rand::random(), rand::random());
                }
            }
            self.session = Some(session);
        }
        // Candidates listed in the description go to the socket at the same
        // position; ones the agent cannot use (TCP, mDNS names) are skipped.
        for (i, s) in d.sockets.iter().enumerate() {
            if let Some(t) = self.transports.get_mut(i) {
                for c in &s.candidates {
                    let _ = t.agent.add_remote_candidate(now, c);
                }
            }
        }
        for s in d.streams {
            if !self.remote_streams.iter().any(|r| r.id() == s.stream_id) {
                self.add_remote_stream(s)?;
            }
        }
        self.check_connected(shared);
        Ok(())
    }

    /// Keys a transport once the remote description is known: SRTP
    /// contexts from the signaled `keys`, or a DTLS-SRTP association when
    /// the remote sent none (its role from [`ConnState::dtls_client`]).
    fn key_transport(&self, t: &mut Transport, now: Instant) -> Result<(), Error> {
        if let (Some(client), Some(remote)) = (self.dtls_client(), &self.remote) {
            t.dtls = Some(DtlsSrtp::new(&t.socket.certificate, client, fingerprints(remote), now));
        } else {
            let (tx, rx) = self.srtp_contexts()?;
            t.tx = Some(tx);
            t.rx = Some(rx);
        }
        Ok(())
    }

    /// With DTLS-SRTP keying (a remote description without `keys`), whether
    /// this side is the DTLS client: the peer's `setup` decides (RFC 8842:
    /// `active` makes us the server, `passive` the client, `actpass` is an
    /// offer we answer as `active`); without one, the larger `context-id`
    /// is the client.
    fn dtls_client(&self) -> Option<bool> {
        let remote = self.remote.as_ref().filter(|r| r.keys.is_empty())?;
        let setup = remote.sockets.iter().find_map(|s| s.options.setup.as_deref());
        Some(match setup {
            Some(s) if s.eq_ignore_ascii_case("active") => false,
            Some(s) if s.eq_ignore_ascii_case("passive") => true,
            Some(_) => true,
            None => self.context_id.as_str() > self.remote_context(),
        })
    }

    /// Drives a transport's DTLS association: the client starts once ICE
    /// gives a path, timers fire, and SRTP is keyed when it completes.
    fn drive_dtls(&mut self, shared: &ConnShared, ti: usize, now: Instant) -> Option<Instant> {
        let t = &mut self.transports[ti];
        let dtls = t.dtls.as_mut()?;
        let path = t.agent.path(Component::RTP);
        let socket = &t.socket;
        let mut send = |p: &[u8]| {
            if let Some(path) = path {
                let _ = socket.send(path.local, path.remote, p);
            }
        };
        if dtls.is_client() && !dtls.started() && path.is_some() {
            dtls.start(now, &mut send);
        }
        if dtls.poll_timeout().is_some_and(|at| at <= now) {
            dtls.handle_timeout(now, &mut send);
        }
        let next = dtls.poll_timeout();
        self.take_dtls_keys(shared, ti);
        next
    }

    /// Installs the SRTP contexts of a completed DTLS association; a failed
    /// one (a certificate that does not match the fingerprint, a handshake
    /// error) is dropped, its socket reports `Disconnected`, and the
    /// connection stays unkeyed: nothing is ever sent unprotected.
    fn take_dtls_keys(&mut self, shared: &ConnShared, ti: usize) {
        let t = &mut self.transports[ti];
        if let Some((tx, rx)) = t.dtls.as_mut().and_then(DtlsSrtp::take_keys) {
            t.tx = Some(tx);
            t.rx = Some(rx);
            self.check_connected(shared);
        } else if t.dtls.as_ref().and_then(DtlsSrtp::failure).is_some() {
            t.dtls = None;
            t.socket.events.emit(SocketEvent::Disconnected);
        }
    }

    fn srtp_contexts(&self) -> Result<(Context, Context), Error> {
        let (li, _) = select(&self.local_keys, &self.remote_keys).ok_or(Error::NotConnected("no SRTP suite"))?;
        let (ri, _) = select(&self.remote_keys, &self.local_keys).ok_or(Error::NotConnected("no SRTP suite"))?;
        let l = &self.local_keys[li];
        let r = &self.remote_keys[ri];
        Ok((Context::new(l.profile, &l.key, &l.salt)?, Context::new(r.profile, &r.key, &r.salt)?))
    }

    fn add_remote_stream(&mut self, s: StreamDescription) -> Result<(), Error> {
        let stream = RtcMediaStream::new(StreamDescription { stream_id: s.stream_id.clone(), tracks: Vec::new() });
        for t in s.tracks {
            let ssrc = t.ssrc.ok_or_else(|| Error::InvalidDescription("remote track without ssrc".into()))?;
            let track = RtcMediaStreamTrack::new(t);
            stream.add_track(track.clone())?;
            self.in_tracks.insert(
                ssrc,
                InTrack {
                    stream: stream.clone(),
                    track,
                    vp8: Vp8Assembler::default(),
                    h264: H264Assembler::default(),
                    receiving: true,
                    connected: false,
                },
            );
        }
        self.remote_streams.push(stream);
        Ok(())
    }

    fn clock_of(&self, kind: Kind) -> u32 {
        let codecs = self.agreement.as_ref().map(|a| a.codecs.as_slice()).unwrap_or(&self.local_options.codecs);
        codecs.iter().find(|c| c.kind == kind).map_or(90_000, |c| c.hz_rate)
    }

    /// The payload type, clock rate and packetization for a track: the
    /// first agreed codec of its kind that its own options (if any) list.
    fn send_codec(&self, d: &TrackDescription) -> Result<(u8, u32, Packetization), Error> {
        let a = self.agreement.as_ref().ok_or(Error::NotConnected("no remote description yet"))?;
        let codec = a
            .codecs_of(d.kind)
            .find(|c| d.options.as_ref().is_none_or(|o| o.codecs.iter().any(|t| t.is(&c.name))))
            .ok_or_else(|| Error::InvalidOptions(format!("no agreed {} codec for track {:?}", d.kind, d.track_id)))?;
        let pack = Packetization::for_codec(codec)
            .ok_or(Error::NotSupported("RTP packetization of this video codec (VP8 and H.264 only)"))?;
        Ok((codec.payload_id.get(), codec.hz_rate, pack))
    }

    fn transport_for(&self, d: &TrackDescription) -> Option<usize> {
        match &d.socket_id {
            Some(id) => self.transports.iter().position(|t| t.socket.id == *id),
            None => self
                .transports
                .iter()
                .position(|t| t.socket.options.kind.is_empty() || t.socket.options.kind.contains(&d.kind)),
        }
    }

    fn attach_track(&mut self, shared: &Arc<ConnShared>, track: &RtcMediaStreamTrack) -> Result<(), Error> {
        let mut d = track.description();
        if d.socket_id.is_none()
            && let Some(i) = self.transport_for(&d)
        {
            d.socket_id = Some(self.transports[i].socket.id.clone());
            let _ = track.set_description(d.clone());
        }
        let ssrc = d.ssrc.unwrap_or_default();
        let clock = self.clock_of(d.kind);
        if let Some(s) = &mut self.session {
            s.add_outgoing(ssrc, clock, rand::random(), rand::random());
        }
        *lock(&track.inner.conn) = Arc::downgrade(shared);
        Ok(())
    }

    fn on_media(&mut self, shared: &ConnShared, ti: usize, component: u16, now: Instant, data: &mut [u8]) -> bool {
        // RFC 5761 section 4: payload types 64-95 with the marker bit are RTCP.
        let rtcp = component == 2 || data.get(1).is_some_and(|b| (192..=223).contains(b));
        let ConnState { transports, session, .. } = self;
        let (Some(rx), Some(session)) = (transports[ti].rx.as_mut(), session.as_mut()) else { return false };
        if rtcp {
            let Ok(n) = rx.unprotect_rtcp(data) else { return false };
            let ok = session.handle_rtcp(now, &data[..n]).is_ok();
            self.session_events(shared);
            return ok;
        }
        let Ok(n) = rx.unprotect_rtp(data) else { return false };
        if session.handle_rtp(now, &data[..n]).is_err() {
            return false;
        }
        let Ok(p) = RtpPacket::new_checked(&data[..n]) else { return false };
        let ssrc = p.ssrc();
        if !self.in_tracks.contains_key(&ssrc) {
            // A stream the remote description did not announce.
            let kind = self.codec_by_pt(p.payload_type()).map_or(Kind::Video, |c| c.kind);
            let desc = TrackDescription {
                track_id: format!("ssrc-{ssrc}"),
                socket_id: None,
                ssrc: Some(ssrc),
                kind,
                options: None,
            };
            let s = StreamDescription { stream_id: format!("ssrc-{ssrc}"), tracks: vec![desc] };
            if self.add_remote_stream(s).is_err() {
                return false;
            }
        }
        self.session_events(shared);
        let pack = self.codec_by_pt(p.payload_type()).and_then(Packetization::for_codec);
        let Some(it) = self.in_tracks.get_mut(&ssrc) else { return false };
        if !it.receiving || !it.track.is_playing() {
            return true;
        }
        let frame = match pack {
            Some(Packetization::Whole) => {
                Some(Frame { data: p.payload().to_vec(), timestamp: p.timestamp(), ssrc, key_frame: true })
            }
            Some(Packetization::Vp8) => it
                .vp8
                .push(p.sequence_number(), p.timestamp(), p.marker(), p.payload())
                .map(|f| Frame { data: f.to_vec(), timestamp: p.timestamp(), ssrc, key_frame: vp8_is_key_frame(f) }),
            Some(Packetization::H264 { .. }) => {
                let frames = &it.track.inner.frames_tx;
                it.h264.push(p.sequence_number(), p.timestamp(), p.marker(), p.payload(), &mut |f, key_frame, ts| {
                    let _ = frames.try_send(Frame { data: f.to_vec(), timestamp: ts, ssrc, key_frame });
                });
                None
            }
            None => return false,
        };
        if let Some(f) = frame {
            // A reader that falls behind loses frames, as a jitter buffer would.
            let _ = it.track.inner.frames_tx.try_send(f);
        }
        true
    }

    fn codec_by_pt(&self, pt: u8) -> Option<&Codec> {
        self.agreement.as_ref()?.codecs.iter().find(|c| c.payload_id.get() == pt)
    }

    fn session_events(&mut self, shared: &ConnShared) {
        while let Some(e) = self.session.as_mut().and_then(Session::poll_event) {
            match e {
                SessionEvent::NewStream { ssrc } => {
                    if let Some(it) = self.in_tracks.get_mut(&ssrc)
                        && !it.connected
                    {
                        it.connected = true;
                        let (stream, track) = (it.stream.clone(), it.track.clone());
                        let first = !self.in_tracks.values().any(|o| {
                            o.connected && o.stream.id() == stream.id() && !Arc::ptr_eq(&o.track.inner, &track.inner)
                        });
                        if first {
                            emit(
                                shared,
                                &stream,
                                ConnectionEvent::StreamConnected {
                                    stream_id: stream.id(),
                                    direction: Direction::Remote,
                                },
                            );
                        }
                        self.track_event(shared, &stream, &track, Direction::Remote, true);
                    }
                }
                SessionEvent::ContributorsChanged { ssrc, csrcs } => {
                    if let Some(it) = self.in_tracks.get(&ssrc) {
                        emit(
                            shared,
                            &it.stream,
                            ConnectionEvent::TrackContributors {
                                stream_id: it.stream.id(),
                                track_id: it.track.id(),
                                contributors: csrcs,
                            },
                        );
                    }
                }
                SessionEvent::Bye { ssrc } => {
                    if let Some(it) = self.in_tracks.get_mut(&ssrc)
                        && it.connected
                    {
                        it.connected = false;
                        let (stream, track) = (it.stream.clone(), it.track.clone());
                        self.track_event(shared, &stream, &track, Direction::Remote, false);
                    }
                }
                _ => {}
            }
        }
    }

    fn track_event(
        &self,
        shared: &ConnShared,
        stream: &RtcMediaStream,
        track: &RtcMediaStreamTrack,
        direction: Direction,
        up: bool,
    ) {
        let (stream_id, track_id, ssrc) = (stream.id(), track.id(), track.ssrc());
        let e = if up {
            ConnectionEvent::TrackConnected { stream_id, track_id, ssrc, direction }
        } else {
            ConnectionEvent::TrackDisconnected { stream_id, track_id, ssrc, direction }
        };
        emit(shared, stream, e);
    }

    fn stream_up(&self, shared: &ConnShared, stream: &RtcMediaStream, direction: Direction) {
        emit(shared, stream, ConnectionEvent::StreamConnected { stream_id: stream.id(), direction });
        for t in stream.tracks() {
            self.track_event(shared, stream, &t, direction, true);
        }
    }

    fn stream_down(&self, shared: &ConnShared, stream: &RtcMediaStream, direction: Direction) {
        for t in stream.tracks() {
            self.track_event(shared, stream, &t, direction, false);
        }
        emit(shared, stream, ConnectionEvent::StreamDisconnected { stream_id: stream.id(), direction });
    }

    fn check_connected(&mut self, shared: &ConnShared) {
        let ready = !self.transports.is_empty()
            && self.transports.iter().all(|t| t.ice_connected && t.tx.is_some())
            && self.session.is_some();
        if ready && !self.connected {
            self.connected = true;
            if self.connected_after.is_none() {
                self.connected_after = Some(self.created.elapsed());
            }
            shared.events.emit(ConnectionEvent::Connected);
            for s in &self.send_streams {
                self.stream_up(shared, s, Direction::Local);
            }
        }
    }

    fn all_down(&mut self, shared: &ConnShared) {
        shared.events.emit(ConnectionEvent::Disconnected);
        for s in &self.send_streams {
            self.stream_down(shared, s, Direction::Local);
        }
        let mut streams: Vec<RtcMediaStream> = Vec::new();
        let mut downs = Vec::new();
        for it in self.in_tracks.values_mut().filter(|it| it.connected) {
            it.connected = false;
            downs.push((it.stream.clone(), it.track.clone()));
            if !streams.iter().any(|s| Arc::ptr_eq(&s.inner, &it.stream.inner)) {
                streams.push(it.stream.clone());
            }
        }
        for (s, t) in downs {
            self.track_event(shared, &s, &t, Direction::Remote, false);
        }
        for s in streams {
            emit(shared, &s, ConnectionEvent::StreamDisconnected { stream_id: s.id(), direction: Direction::Remote });
        }
    }

    fn on_ice_event(&mut self, shared: &ConnShared, ti: usize, e: IceEvent) {
        let t = &mut self.transports[ti];
        let socket = t.socket.clone();
        let primary = t.primary;
        match e {
            IceEvent::Candidate(mut c) => {
                c.socket_id = Some(socket.id.clone());
                if primary {
                    socket.events.emit(SocketEvent::Candidate { candidate: c });
                }
            }
            IceEvent::CandidatesDone if primary => socket.events.emit(SocketEvent::CandidatesDone),
            IceEvent::ActiveCandidate { mut local, mut remote, .. } => {
                local.socket_id = Some(socket.id.clone());
                remote.socket_id = None;
                if primary {
                    socket.events.emit(SocketEvent::ActiveCandidate { local: local.clone(), remote: remote.clone() });
                }
                shared.events.emit(ConnectionEvent::ActiveConnectionCandidate {
                    socket_id: socket.id.clone(),
                    local,
                    remote,
                });
            }
            IceEvent::Connected => {
                t.ice_connected = true;
                if primary {
                    socket.events.emit(SocketEvent::Connected);
                }
                self.check_connected(shared);
            }
            IceEvent::Disconnected | IceEvent::Failed => {
                t.ice_connected = false;
                if primary {
                    socket.events.emit(SocketEvent::Disconnected);
                }
                if self.connected {
                    self.connected = false;
                    self.all_down(shared);
                }
            }
            _ => {}
        }
    }

    fn stream_reports(&self, s: &RtcMediaStream, direction: Direction) -> Vec<TrackReport> {
        let Some(session) = &self.session else { return Vec::new() };
        let mut out = Vec::new();
        for t in s.tracks() {
            let ssrc = t.ssrc();
            let stats = match direction {
                Direction::Local => session.outbound_stats(ssrc).map(|o| RtpStats {
                    packets_sent: Some(o.packets_sent),
                    bytes_sent: Some(o.bytes_sent),
                    packets_lost: o.packets_lost,
                    fraction_lost: o.fraction_lost,
                    jitter: o.jitter,
                    round_trip_time: o.round_trip_time,
                    ..RtpStats::default()
                }),
                Direction::Remote => session.inbound_stats(ssrc).map(|i| RtpStats {
                    packets_received: Some(i.packets_received),
                    bytes_received: Some(i.bytes_received),
                    packets_lost: i.packets_lost,
                    fraction_lost: i.fraction_lost,
                    jitter: i.jitter,
                    ..RtpStats::default()
                }),
            };
            if let Some(stats) = stats {
                out.push(TrackReport { stream_id: s.id(), track_id: t.id(), ssrc, kind: t.kind(), direction, stats });
            }
        }
        out
    }

    fn reports(&self, shared: &ConnShared) {
        let streams = self
            .send_streams
            .iter()
            .map(|s| (s, Direction::Local))
            .chain(self.remote_streams.iter().map(|s| (s, Direction::Remote)));
        for (s, direction) in streams {
            let tracks = self.stream_reports(s, direction);
            if tracks.is_empty() {
                continue;
            }
            for r in &tracks {
                emit(shared, s, ConnectionEvent::TrackReport(r.clone()));
            }
            shared.events.emit(ConnectionEvent::StreamReport { stream_id: s.id(), direction, tracks });
        }
    }

    /// One round of the driver: timers into the agents and the session,
    /// their datagrams out, their events dispatched. Returns when to run
    /// again.
    fn poll(&mut self, shared: &ConnShared, now: Instant) -> Instant {
        let mut next = now + Duration::from_secs(1);
        for ti in 0..self.transports.len() {
            if self.transports[ti].agent.poll_timeout().is_some_and(|t| t <= now) {
                self.transports[ti].agent.handle_timeout(now);
            }
            while let Some(tr) = self.transports[ti].agent.poll_transmit() {
                // Loss is the agent's business (it retransmits).
                self.transports[ti].socket.send(tr.source, tr.destination, &tr.contents);
            }
            while let Some(e) = self.transports[ti].agent.poll_event() {
                self.on_ice_event(shared, ti, e);
            }
            if let Some(t) = self.transports[ti].agent.poll_timeout() {
                next = next.min(t);
            }
            if let Some(t) = self.drive_dtls(shared, ti, now) {
                next = next.min(t);
            }
        }
        if self.connected {
            self.send_rtcp(now);
            if let Some(t) = self.session.as_ref().and_then(Session::poll_timeout) {
                next = next.min(t);
            }
            let due = *self.next_report.get_or_insert(now + self.report_interval);
            if now >= due {
                self.reports(shared);
                self.next_report = Some(now + self.report_interval);
            }
            next = next.min(self.next_report.unwrap_or(next));
        }
        self.session_events(shared);
        next.max(now + Duration::from_millis(1))
    }

    fn send_rtcp(&mut self, now: Instant) {
        let ConnState { session, transports, buf, .. } = self;
        let Some(session) = session.as_mut() else { return };
        let Some(t) = transports.iter_mut().find(|t| t.ice_connected) else { return };
        let Some(tx) = t.tx.as_mut() else { return };
        let component = if t.socket.options.mux { Component::RTP } else { Component::RTCP };
        let Some(path) = t.agent.path(component) else { return };
        let room = buf.len() - tx.profile().rtcp_overhead();
        if let Some(n) = session.poll_transmit(now, &mut buf[..room])
            && let Ok(n) = tx.protect_rtcp(buf, n)
        {
            t.socket.send(path.local, path.remote, &buf[..n]);
        }
    }
}

fn emit(shared: &ConnShared, stream: &RtcMediaStream, e: ConnectionEvent) {
    stream.inner.events.emit(e.clone());
    shared.events.emit(e);
}

async fn drive(shared: std::sync::Weak<ConnShared>, wake: Arc<Notify>) {
    loop {
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let next = {
            let Some(s) = shared.upgrade() else { return };
            let mut st = s.state();
            if st.closed {
                return;
            }
            st.poll(&s, Instant::now())
        };
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(next.into()) => {}
        }
    }
}
