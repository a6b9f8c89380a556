//! `RtcConnection`: a handle on one connection of a driver's endpoint.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rtc_candidate::Candidate;
use rtc_codecs::{Agreement, Options};
use rtc_proto::{
    CandidatePairReport, ConnHandle, Connection, ConnectionConfig, ConnectionDescription, ConnectionEvent,
    ConnectionMut, DataStreamDescription, Direction, Error, SdpType, StreamDescription, TrackReport,
};

use crate::data::RtcDataStream;
use crate::driver::{ConnLink, Driver, StreamLink};
use crate::events::{Emitter, Events, lock};
use crate::frame::Inbox;
use crate::media::RtcMediaStream;
use crate::messages::INCOMING;
use crate::socket::RtcSocket;

#[derive(Debug)]
struct ConnInner {
    driver: Arc<Driver>,
    handle: ConnHandle,
    events: Arc<Emitter<ConnectionEvent>>,
}

impl Drop for ConnInner {
    fn drop(&mut self) {
        // The last handle closes the connection.
        self.driver.state().close(Instant::now(), self.handle);
        self.driver.wake.notify_one();
    }
}

/// The seeds' RTCConnection. Cloning gives another handle to the same
/// connection; dropping the last handle closes it (as [`close`](Self::close)).
#[derive(Debug, Clone)]
pub struct RtcConnection {
    inner: Arc<ConnInner>,
}

impl RtcConnection {
    /// A connection. `cname`, `context-id` (the ICE ufrag) and `secret` (the
    /// ICE password) are drawn from a CSPRNG when absent; `options` default
    /// to [`default_options`](crate::default_options) (Opus and VP8). Must
    /// run inside a tokio runtime (its driver task starts on it).
    pub fn new(description: Option<ConnectionDescription>, options: Option<Options>) -> Result<Self, Error> {
        let conn = Connection::new(ConnectionConfig::new(description, options), Instant::now(), SystemTime::now())?;
        let driver = Driver::start()?;
        let handle = driver.state().endpoint.insert(conn);
        Ok(Self::register(driver, handle))
    }

    fn register(driver: Arc<Driver>, handle: ConnHandle) -> Self {
        let events = Arc::new(Emitter::new());
        let link = ConnLink {
            events: events.clone(),
            local: Vec::new(),
            remote: Vec::new(),
            incoming: Arc::new(Inbox::new(INCOMING)),
        };
        driver.state().conns.insert(handle, link);
        Self { inner: Arc::new(ConnInner { driver, handle, events }) }
    }

    /// Runs `f` on the connection under the driver's lock, then wakes the
    /// driver to act on what changed.
    fn with<T>(&self, f: impl FnOnce(&mut ConnectionMut<'_>, Instant) -> Result<T, Error>) -> Result<T, Error> {
        let r = {
            let mut st = self.inner.driver.state();
            let now = Instant::now();
            let mut c = st.endpoint.connection_mut(self.inner.handle).ok_or(Error::Closed)?;
            f(&mut c, now)
        };
        self.inner.driver.wake.notify_one();
        r
    }

    /// Reads the connection under the driver's lock.
    fn read<T: Default>(&self, f: impl FnOnce(&Connection) -> T) -> T {
        let st = self.inner.driver.state();
        st.endpoint.connection(self.inner.handle).map(f).unwrap_or_default()
    }

    /// The connection's events (the union of both seeds' events).
    pub fn events(&self) -> Events<ConnectionEvent> {
        self.inner.events.subscribe()
    }

    /// The local or remote description.
    pub fn description(&self, direction: Direction) -> Option<ConnectionDescription> {
        self.read(|c| c.description(direction))
    }

    /// Sets the remote description (the peer's `context-id`, `secret`,
    /// `keys`, `sockets` and `streams`): ICE checks start and SRTP is keyed.
    /// Or, locally, overrides `cname`, `context-id`, `secret` or `keys` (new
    /// credentials once sockets are added restart ICE). A refused
    /// description changes nothing.
    pub fn set_description(&self, description: ConnectionDescription, direction: Direction) -> Result<(), Error> {
        self.with(|c, now| c.set_description(now, description, direction))?;
        self.inner.driver.state().sync_remote(self.inner.handle);
        Ok(())
    }

    /// Takes the peer's SDP, an offer (answer it with
    /// [`local_sdp`](Self::local_sdp)) or the answer to this side's offer:
    /// its codec options and description become the remote ones. A refused
    /// SDP changes nothing.
    pub fn set_remote_sdp(&self, kind: SdpType, sdp: &str) -> Result<(), Error> {
        self.with(|c, now| c.set_remote_sdp(now, kind, sdp))?;
        self.inner.driver.state().sync_remote(self.inner.handle);
        Ok(())
    }

    /// This side's SDP: the answer to the peer's offer (section for
    /// section, as RFC 3264 and JSEP say), or with no offer to answer an
    /// offer (DTLS-SRTP). Candidates gathered so far are in it.
    pub fn local_sdp(&self) -> Result<String, Error> {
        let st = self.inner.driver.state();
        st.endpoint.connection(self.inner.handle).ok_or(Error::Closed)?.local_sdp()
    }

    /// A new offer, to start an exchange or to renegotiate one (a stream
    /// added or stopped mid-call): one section per sent track, the sections
    /// of earlier exchanges kept in their places, the transport (ICE pair,
    /// DTLS association) unchanged. Apply the peer's answer with
    /// [`RtcConnection::set_remote_sdp`].
    pub fn create_offer(&self) -> Result<String, Error> {
        self.with(|c, _| c.create_offer())
    }

    /// The local or remote codec options.
    pub fn options(&self, direction: Direction) -> Option<Options> {
        self.read(|c| c.options(direction).cloned())
    }

    /// Sets the local or remote codec options (`codecs`, `required`,
    /// `optional`). When both sides are known they are negotiated at once; a
    /// refused dictionary changes nothing.
    pub fn set_options(&self, options: Options, direction: Direction) -> Result<(), Error> {
        self.with(|c, _| c.set_options(options, direction))
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
        self.read(|c| c.agreement().cloned())
    }

    /// Adds a socket: an ICE agent with this connection's credentials
    /// starts on it and its candidates fire on the socket's events. A
    /// socket serves one connection and that connection's forks.
    pub fn add_socket(&self, socket: &RtcSocket) -> Result<(), Error> {
        let d = &self.inner.driver;
        {
            let mut st = d.state();
            let id = socket.inner.join(d, &mut st)?;
            st.endpoint.add_socket_to(Instant::now(), self.inner.handle, id)?;
        }
        d.wake.notify_one();
        Ok(())
    }

    /// The sockets.
    pub fn sockets(&self) -> Vec<RtcSocket> {
        let st = self.inner.driver.state();
        let Some(c) = st.endpoint.connection(self.inner.handle) else { return Vec::new() };
        c.sockets().filter_map(|id| st.sockets.get(&id)).map(|s| RtcSocket { inner: s.clone() }).collect()
    }

    /// Adds a remote candidate to the socket with `socket_id` (this side's
    /// id), or to the first socket when `None`.
    pub fn set_remote_candidate(&self, socket_id: Option<&str>, candidate: &Candidate) -> Result<(), Error> {
        let id = {
            let st = self.inner.driver.state();
            let c = st.endpoint.connection(self.inner.handle).ok_or(Error::Closed)?;
            let mut ids = c.sockets();
            match socket_id {
                Some(want) => ids.find(|id| st.sockets.get(id).is_some_and(|s| s.config.socket_id == want)),
                None => ids.next(),
            }
            .ok_or_else(|| Error::InvalidCandidate(format!("no socket {socket_id:?} on this connection")))?
        };
        self.with(|c, now| c.add_remote_candidate(now, id, candidate))
    }

    /// Sends a stream (`true`) or stops sending it (`false`). A stream is
    /// sent by one connection at a time.
    pub fn send_stream(&self, stream: &RtcMediaStream, send: bool) -> Result<(), Error> {
        let d = &self.inner.driver;
        let h = self.inner.handle;
        let current = lock(&stream.inner.link).clone();
        if let Some(l) = current {
            let same = l.conn == h && std::ptr::eq(l.driver.as_ptr(), Arc::as_ptr(d));
            if send {
                return if same {
                    Ok(())
                } else {
                    Err(Error::InvalidOptions("the stream is sent on another connection".into()))
                };
            }
            if same {
                d.state().stop_sending(h, &stream.inner);
                d.wake.notify_one();
            }
            return Ok(());
        }
        if !send {
            return Ok(());
        }
        let tracks = stream.tracks();
        if !tracks.iter().all(|t| t.inner.fits(d)) {
            return Err(Error::InvalidOptions("a track of the stream is sent by another connection".into()));
        }
        {
            let mut st = d.state();
            let mut c = st.endpoint.connection_mut(h).ok_or(Error::Closed)?;
            let (sid, ids) = c.send_stream(Instant::now(), stream.description())?;
            drop(c);
            for (t, id) in tracks.iter().zip(ids) {
                t.inner.attach(d, &mut st, h, id);
            }
            *lock(&stream.inner.link) = Some(StreamLink { driver: Arc::downgrade(d), conn: h, stream: sid });
            if let Some(link) = st.conns.get_mut(&h) {
                link.local.push(stream.inner.clone());
            }
        }
        d.wake.notify_one();
        Ok(())
    }

    /// Receives a remote stream (`true`), or stops delivering its frames
    /// (`false`). A stream the remote description does not list is
    /// registered by its tracks' SSRCs.
    pub fn receive_stream(&self, stream: &StreamDescription, receive: bool) -> Result<(), Error> {
        self.with(|c, _| c.receive_stream(stream, receive))?;
        self.inner.driver.state().sync_remote(self.inner.handle);
        Ok(())
    }

    /// The streams being sent.
    pub fn local_streams(&self) -> Vec<RtcMediaStream> {
        let st = self.inner.driver.state();
        let link = st.conns.get(&self.inner.handle);
        link.map(|l| l.local.iter().map(|s| RtcMediaStream { inner: s.clone() }).collect()).unwrap_or_default()
    }

    /// The streams received (or announced by the remote description).
    pub fn remote_streams(&self) -> Vec<RtcMediaStream> {
        let mut st = self.inner.driver.state();
        st.sync_remote(self.inner.handle);
        let link = st.conns.get(&self.inner.handle);
        link.map(|l| l.remote.iter().map(|(_, s)| RtcMediaStream { inner: s.clone() }).collect()).unwrap_or_default()
    }

    /// A connection to another peer sharing this one's context (`cname`,
    /// `context-id`, `secret`), options and sockets, with its own remote
    /// description, candidates, streams and SRTP keys. Incoming STUN
    /// requests reach it by their sender's ufrag, media by its source.
    pub fn fork(&self) -> Result<Self, Error> {
        let d = self.inner.driver.clone();
        let h = d.state().endpoint.fork(Instant::now(), self.inner.handle)?;
        d.wake.notify_one();
        Ok(Self::register(d, h))
    }

    /// Opens a data stream (a WebRTC data channel) to the peer: the local
    /// description carries `data` from now on. It opens once the peer takes
    /// data too and DTLS is up (its `open` event); in band unless
    /// `negotiated` with an `id` both sides agreed.
    pub fn create_data_stream(&self, description: DataStreamDescription) -> Result<RtcDataStream, Error> {
        let d = &self.inner.driver;
        let inner = {
            let mut st = d.state();
            let mut c = st.endpoint.connection_mut(self.inner.handle).ok_or(Error::Closed)?;
            let id = c.open_data_stream(Instant::now(), description)?;
            drop(c);
            st.data_stream(self.inner.handle, id)
        };
        d.wake.notify_one();
        Ok(RtcDataStream { inner })
    }

    /// Takes data streams the peer opens, without opening one: the local
    /// description carries `data` from now on (a remote description that
    /// carries it does the same).
    pub fn enable_data(&self) {
        let _ = self.with(|c, _| {
            c.enable_data();
            Ok(())
        });
    }

    /// The next data stream the peer opened; `None` once the connection is
    /// closed.
    pub async fn accept_data_stream(&self) -> Option<RtcDataStream> {
        let incoming = self.inner.driver.state().conns.get(&self.inner.handle)?.incoming.clone();
        incoming.next().await.map(|inner| RtcDataStream { inner })
    }

    /// The data streams not yet closed, local and remote.
    pub fn data_streams(&self) -> Vec<RtcDataStream> {
        let mut st = self.inner.driver.state();
        let ids = st.endpoint.connection(self.inner.handle).map(Connection::data_streams).unwrap_or_default();
        ids.into_iter().map(|id| RtcDataStream { inner: st.data_stream(self.inner.handle, id) }).collect()
    }

    /// Sets how often StreamReport and TrackReport fire (1 s by default).
    pub fn set_report_interval(&self, interval: Duration) {
        let _ = self.with(|c, _| {
            c.set_report_interval(interval);
            Ok(())
        });
    }

    /// The statistics of every sent and received track now.
    pub fn stats(&self) -> Vec<TrackReport> {
        self.read(Connection::stats)
    }

    /// Every ICE candidate pair of the connection's sockets now: state,
    /// candidate types, relay protocol, checks, round trips, and the
    /// packets and octets that went over each (webrtc-stats'
    /// `candidate-pair`); `selected` marks the pairs in use.
    pub fn candidate_pairs(&self) -> Vec<CandidatePairReport> {
        self.read(Connection::candidate_pairs)
    }

    /// The bitrate the transport can carry, as the peer's transport
    /// feedback shows it (webrtc-stats' `availableOutgoingBitrate`), in bits
    /// per second; `None` until transport-cc is agreed. Encoders should aim
    /// below it; `ConnectionEvent::OutgoingBitrate` says when it moves.
    pub fn available_outgoing_bitrate(&self) -> Option<u64> {
        self.read(Connection::available_outgoing_bitrate)
    }

    /// Transport feedback messages the peer sent and the estimate took.
    pub fn transport_feedback_received(&self) -> u64 {
        self.read(Connection::transport_feedback_received)
    }

    /// How long after its creation the connection fired Connected.
    pub fn time_to_connected(&self) -> Option<Duration> {
        self.read(Connection::connected_after)
    }

    /// Whether media can flow (ICE connected with consent, SRTP keyed).
    pub fn is_connected(&self) -> bool {
        self.read(Connection::is_connected)
    }

    /// Received datagrams dropped by this connection (SRTP authentication
    /// or replay failures, malformed RTP or RTCP, unknown payload types).
    pub fn dropped(&self) -> u64 {
        self.read(Connection::dropped)
    }

    /// Closes the connection: Disconnected and its streams' events fire,
    /// DTLS says goodbye, it leaves its sockets, and sockets no fork uses
    /// any more are closed (their UDP ports free). Frames written after it
    /// are refused; received tracks end.
    pub fn close(&self) {
        self.inner.driver.state().close(Instant::now(), self.inner.handle);
        self.inner.driver.wake.notify_one();
    }
}
