//! Data streams: WebRTC data channels (RFC 8831) as SCTP streams of one
//! association (sctp-proto, sans-IO) carried as DTLS application data over
//! the first socket's association (RFC 8261), opened in band by DCEP (RFC
//! 8832) or agreed out of band (`negotiated`).
//!
//! The DTLS client is the SCTP client and uses even stream ids, the server
//! odd ones (RFC 8832 section 6). The association starts once DTLS is
//! connected and both descriptions carry `data`.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use sctp_proto::{
    Association, AssociationHandle, ClientConfig, DatagramEvent, Endpoint, EndpointConfig, Event as SctpEvent, Payload,
    PayloadProtocolIdentifier as Ppi, ReliabilityType, ServerConfig, StreamEvent, TransportConfig,
};

use super::Connection;
use super::dcep::{self, Message};
use crate::DataStreamId;
use crate::desc::{DataStreamDescription, DataTransport};
use crate::error::Error;
use crate::events::{DataEvent, Event};

/// sctp-proto addresses associations by a socket address; there is one
/// association per connection, so any fixed address does.
const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5000);

/// The packet size sctp-proto is given. An SCTP packet must fit one DTLS
/// record of at most [`rtc_dtls::MAX_APPLICATION_DATA`] (1200) octets, but
/// sctp-proto overshoots the size it is given when it bundles DATA chunks:
/// it checks each chunk's user data alone against the room left (not its
/// 16-octet header) and never counts padding (up to 3 octets a chunk), so
/// a packet can reach this size + 16 + 3 a chunk, each chunk counting at
/// least 17 octets. A packet over 1200 octets could not be sent: lost, and
/// on a stream with `maxRetransmits: 0` its messages are abandoned. 1000
/// bounds a packet to 1000 + 16 + 3 × 59 = 1193 octets. sctp-proto sizes
/// packets from the payload they may carry: this less the common header
/// (12) and a DATA chunk header (16).
const SCTP_MTU: u32 = 1000;
/// The most DATA chunks sctp-proto bundles into one packet: after the
/// common header (12) each counts 17 octets or more, and the last one is
/// let in while its user data alone fits.
const MOST_CHUNKS: u32 = (SCTP_MTU + 4) / 17;
const _: () = assert!(SCTP_MTU + 16 + 3 * MOST_CHUNKS <= rtc_dtls::MAX_APPLICATION_DATA as u32);

/// A received message [`Connection::poll_data`] handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataMessage {
    /// The data stream it arrived on.
    pub stream: DataStreamId,
    /// Binary (PPID 53/57) rather than a UTF-8 string (PPID 51/56).
    pub binary: bool,
}

/// Where a data stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataState {
    /// Waiting for the association (or, in band, for the peer's ACK).
    Connecting,
    /// Messages flow both ways.
    Open,
    /// Closing: the stream is being reset.
    Closing,
    /// Closed.
    Closed,
}

#[derive(Debug)]
struct Channel {
    id: DataStreamId,
    /// The SCTP stream id, once assigned.
    sid: Option<u16>,
    desc: DataStreamDescription,
    state: DataState,
    /// Opened by the peer.
    remote: bool,
    /// DATA_CHANNEL_OPEN sent, no ACK or data seen yet.
    awaiting_ack: bool,
    threshold: usize,
}

/// The connection's data streams and their association.
pub(crate) struct Data {
    local: DataTransport,
    endpoint: Option<Endpoint>,
    assoc: Option<(AssociationHandle, Association)>,
    established: bool,
    /// Streams the peer opened and wrote to before the association was
    /// up on this side (its COOKIE ACK lost, the peer's DATA_CHANNEL_OPEN
    /// came first): read once it is, since the DATA_CHANNEL_ACK cannot be
    /// sent before. At most `Limits::data_streams`.
    waiting: Vec<u16>,
    failed: bool,
    /// This side is the DTLS (and so SCTP) client; known once DTLS starts.
    client: Option<bool>,
    /// The server: the Initiate Tag of the INIT its association came from
    /// (a retransmission of that INIT carries it too).
    init_tag: Option<[u8; 4]>,
    remote: Option<DataTransport>,
    channels: Vec<Channel>,
    next_id: u32,
    /// Streams with messages waiting for [`Connection::poll_data`].
    readable: VecDeque<u16>,
    /// A message read while opening a stream (user data before the ACK is
    /// an implicit ACK, RFC 8832 section 6), delivered first.
    early: VecDeque<(DataStreamId, bool, Vec<u8>)>,
    /// SCTP packets waiting for room in the DTLS queue.
    pending: VecDeque<Bytes>,
    scratch: Vec<u8>,
    pub(crate) dropped: u64,
}

impl std::fmt::Debug for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Data")
            .field("established", &self.established)
            .field("client", &self.client)
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

impl Data {
    pub(crate) fn new(local: DataTransport) -> Self {
        Self {
            local,
            endpoint: None,
            assoc: None,
            established: false,
            waiting: Vec::new(),
            failed: false,
            client: None,
            init_tag: None,
            remote: None,
            channels: Vec::new(),
            next_id: 0,
            readable: VecDeque::new(),
            early: VecDeque::new(),
            pending: VecDeque::new(),
            scratch: Vec::new(),
            dropped: 0,
        }
    }

    pub(crate) fn local(&self) -> DataTransport {
        self.local
    }

    pub(crate) fn descriptions(&self) -> Vec<DataStreamDescription> {
        self.channels.iter().filter(|c| !c.remote && c.state != DataState::Closed).map(Channel::described).collect()
    }

    pub(crate) fn has_output(&self) -> bool {
        !self.readable.is_empty() || !self.early.is_empty()
    }

    fn channel(&self, id: DataStreamId) -> Option<&Channel> {
        self.channels.iter().find(|c| c.id == id)
    }

    fn by_sid(&self, sid: u16) -> Option<usize> {
        self.channels.iter().position(|c| c.sid == Some(sid) && c.state != DataState::Closed)
    }

    /// The association's configuration; `rtt`, ICE's measured round trip,
    /// sets the first retransmission timeout (see [`initial_rto`]).
    fn transport_config(&self, rtt: Option<std::time::Duration>) -> TransportConfig {
        let remote_max = self.remote.map_or(65536, |r| r.max_message_size);
        // 0 means any size (RFC 8841 section 6); sending is bounded by the
        // connection's send budget anyway.
        let send_max = if remote_max == 0 { u32::MAX } else { u32::try_from(remote_max).unwrap_or(u32::MAX) };
        let receive_max = u32::try_from(self.local.max_message_size).unwrap_or(u32::MAX);
        TransportConfig::default()
            .with_max_send_message_size(send_max)
            .with_max_receive_message_size(if receive_max == 0 { u32::MAX } else { receive_max })
            .with_local_port(self.local.port)
            .with_remote_port(self.remote.map_or(5000, |r| r.port))
            // WebRTC keeps trying while DTLS is up (RFC 8831 section 6.2
            // leaves failure detection to ICE consent).
            .with_max_init_retransmits(None)
            .with_max_data_retransmits(None)
            .with_rto_initial_ms(initial_rto(rtt))
    }

    /// Starts the association (the client connects; the server waits for
    /// the INIT).
    fn start(&mut self, client: bool, rtt: Option<std::time::Duration>) {
        if self.endpoint.is_some() {
            return;
        }
        let transport = Arc::new(self.transport_config(rtt));
        let mut config = EndpointConfig::new();
        config.max_payload_size(SCTP_MTU - 12 - 16);
        let server = (!client).then(|| {
            let mut s = ServerConfig::new();
            s.transport = transport.clone();
            Arc::new(s)
        });
        let mut endpoint = Endpoint::new(Arc::new(config), server);
        self.client = Some(client);
        if client {
            let mut c = ClientConfig::new();
            c.transport = transport;
            match endpoint.connect(c, PEER) {
                Ok(a) => self.assoc = Some(a),
                Err(e) => {
                    tracing::warn!("SCTP association failed: it could not start: {e}");
                    self.failed = true;
                }
            }
        }
        self.endpoint = Some(endpoint);
    }
}

impl Data {
    /// One SCTP packet in.
    fn receive(&mut self, now: Instant, packet: Bytes) {
        let Some(endpoint) = self.endpoint.as_mut() else { return };
        // An INIT (RFC 4960 section 3.3.2: chunk type 1 first) starts an
        // association: the server takes the first; the client's own INIT
        // starts its association, so a peer's INIT to the client (WebRTC
        // stacks send one whatever their role) or another INIT to the
        // server is dropped, rather than handed to the SCTP endpoint (which
        // cannot take one as a client, and would make an association per
        // INIT as a server). The first INIT sent again (its INIT ACK was
        // lost; the same Initiate Tag, RFC 4960 section 5.2.2's duplicate)
        // goes to the association, which answers it again.
        if packet.get(12) == Some(&1) {
            let tag: Option<[u8; 4]> = packet.get(16..20).and_then(|t| t.try_into().ok());
            let again = self.assoc.is_some() && tag.is_some() && tag == self.init_tag;
            if self.client != Some(false) || (self.assoc.is_some() && !again) {
                tracing::trace!(client = ?self.client, "SCTP INIT dropped: this side's association is started");
                self.dropped += 1;
                return;
            }
            if self.assoc.is_none() {
                self.init_tag = tag;
            }
        }
        match endpoint.handle(now, PEER, None, None, packet) {
            Some((h, DatagramEvent::NewAssociation(a))) if self.assoc.is_none() => self.assoc = Some((h, a)),
            Some((h, DatagramEvent::AssociationEvent(e))) => match self.assoc.as_mut() {
                Some((ah, a)) if *ah == h => a.handle_event(e),
                _ => self.dropped += 1,
            },
            _ => self.dropped += 1,
        }
    }

    /// The next SCTP packet out.
    fn next_packet(&mut self, now: Instant) -> Option<Bytes> {
        if self.pending.is_empty()
            && let Some(t) = self.assoc.as_mut().and_then(|(_, a)| a.poll_transmit(now))
            && let Payload::RawEncode(packets) = t.payload
        {
            self.pending.extend(packets);
        }
        self.pending.pop_front()
    }
}

impl Channel {
    fn described(&self) -> DataStreamDescription {
        DataStreamDescription { id: self.sid.or(self.desc.id), ..self.desc.clone() }
    }
}

fn reliability(d: &DataStreamDescription) -> (bool, ReliabilityType, u32) {
    match (d.max_retransmits, d.max_packet_life_time) {
        (Some(n), _) => (!d.ordered, ReliabilityType::Rexmit, u32::from(n)),
        (None, Some(ms)) => (!d.ordered, ReliabilityType::Timed, u32::from(ms)),
        (None, None) => (!d.ordered, ReliabilityType::Reliable, 0),
    }
}

impl Connection {
    // ----- data commands and getters -----

    /// Takes data streams: the local description carries `data` (the SCTP
    /// port and the largest message taken) from now on. Opening a data
    /// stream does this too, and so does a remote description that carries
    /// `data`.
    pub fn enable_data(&mut self) {
        if self.data.is_none() {
            self.data = Some(Box::new(Data::new(DataTransport::default())));
        }
    }

    /// Opens a data stream: in band (DATA_CHANNEL_OPEN once the association
    /// is up) or, with `negotiated` and `id`, as agreed out of band. It is
    /// [`DataState::Connecting`] until [`DataEvent::Open`].
    pub fn open_data_stream(&mut self, now: Instant, desc: DataStreamDescription) -> Result<DataStreamId, Error> {
        let _span = self.entered();
        self.last_now = now;
        if self.closed {
            return Err(Error::Closed);
        }
        desc.check()?;
        if self.remote.as_ref().is_some_and(|r| !r.keys.is_empty()) {
            return Err(Error::NotSupported("data streams on a connection keyed by SDES (they need DTLS)"));
        }
        self.enable_data();
        let limit = self.limits.data_streams;
        let data = self.data.as_deref_mut().ok_or(Error::Closed)?;
        if data.channels.iter().filter(|c| c.state != DataState::Closed).count() >= limit {
            return Err(Error::LimitReached("data streams"));
        }
        if let Some(sid) = desc.id.filter(|_| desc.negotiated)
            && data.by_sid(sid).is_some()
        {
            return Err(Error::InvalidDescription(format!("data stream id {sid} is in use")));
        }
        data.next_id += 1;
        let id = DataStreamId(data.next_id);
        data.channels.push(Channel {
            id,
            sid: desc.id.filter(|_| desc.negotiated),
            desc,
            state: DataState::Connecting,
            remote: false,
            awaiting_ack: false,
            threshold: 0,
        });
        if data.established {
            self.open_channels();
        }
        Ok(id)
    }

    /// Sends one message on an open data stream: a string (PPID 51, or 56
    /// when empty) or binary (53, or 57), of at most the peer's
    /// `max-message-size`. Refused while the stream is not open, or when
    /// the stream's send buffer ([`Limits::data_buffer`](super::Limits)) is
    /// full: wait for [`DataEvent::BufferedAmountLow`].
    pub fn send_data(&mut self, now: Instant, stream: DataStreamId, message: &[u8], binary: bool) -> Result<(), Error> {
        self.last_now = now;
        let budget = self.limits.data_buffer;
        let data = self.data.as_deref_mut().ok_or(Error::Unknown("data stream"))?;
        let ch = data.channels.iter().find(|c| c.id == stream).ok_or(Error::Unknown("data stream"))?;
        let (Some(sid), DataState::Open | DataState::Connecting) = (ch.sid, ch.state) else {
            return Err(Error::NotConnected("the data stream is not open"));
        };
        let Some((_, assoc)) = data.assoc.as_mut().filter(|_| data.established) else {
            return Err(Error::NotConnected("the data stream is not open"));
        };
        let remote_max = data.remote.map_or(65536, |r| r.max_message_size);
        if remote_max != 0 && message.len() as u64 > remote_max {
            return Err(Error::TooLarge { len: message.len(), max: remote_max as usize });
        }
        // The stream's own buffered amount: a lookup, no allocation per
        // message.
        let buffered = assoc.stream(sid).ok().and_then(|s| s.buffered_amount().ok()).unwrap_or(0);
        if buffered + message.len() > budget {
            return Err(Error::LimitReached("data send buffer"));
        }
        let ppi = match (binary, message.is_empty()) {
            (false, false) => Ppi::String,
            (true, false) => Ppi::Binary,
            (false, true) => Ppi::StringEmpty,
            (true, true) => Ppi::BinaryEmpty,
        };
        // An empty message goes out as one zero octet (RFC 8831 section 6.6).
        let payload = if message.is_empty() { Bytes::from_static(&[0]) } else { Bytes::copy_from_slice(message) };
        let mut s = assoc.stream(sid).map_err(|_| Error::NotConnected("the data stream is not open"))?;
        s.write_sctp(&payload, ppi).map_err(|_| Error::NotConnected("the data stream cannot send"))?;
        Ok(())
    }

    /// Closes a data stream: its SCTP stream is reset (RFC 8831 section
    /// 6.7); [`DataEvent::Closed`] follows.
    pub fn close_data_stream(&mut self, now: Instant, stream: DataStreamId) {
        let _span = self.entered();
        self.last_now = now;
        let Some(data) = self.data.as_deref_mut() else { return };
        let Some(i) = data.channels.iter().position(|c| c.id == stream) else { return };
        let ch = &mut data.channels[i];
        match (ch.state, ch.sid, data.assoc.as_mut().filter(|_| data.established)) {
            (DataState::Closed | DataState::Closing, ..) => {}
            (_, Some(sid), Some((_, assoc))) => {
                ch.state = DataState::Closing;
                if let Ok(mut s) = assoc.stream(sid)
                    && s.close().is_ok()
                {
                    return;
                }
                ch.state = DataState::Closed;
                self.data_event(stream, DataEvent::Closed);
            }
            _ => {
                ch.state = DataState::Closed;
                self.data_event(stream, DataEvent::Closed);
            }
        }
    }

    /// The data streams, local and remote, not yet closed.
    pub fn data_streams(&self) -> Vec<DataStreamId> {
        self.data.as_deref().map_or_else(Vec::new, |d| {
            d.channels.iter().filter(|c| c.state != DataState::Closed).map(|c| c.id).collect()
        })
    }

    /// A data stream's description (with its `id` once assigned).
    pub fn data_stream_description(&self, stream: DataStreamId) -> Option<DataStreamDescription> {
        self.data.as_deref()?.channel(stream).map(Channel::described)
    }

    /// A data stream's state.
    pub fn data_stream_state(&self, stream: DataStreamId) -> Option<DataState> {
        self.data.as_deref()?.channel(stream).map(|c| c.state)
    }

    /// Octets written on a data stream and not yet acknowledged by the
    /// peer.
    pub fn buffered_amount(&mut self, stream: DataStreamId) -> usize {
        let Some(data) = self.data.as_deref_mut() else { return 0 };
        let Some(sid) = data.channel(stream).and_then(|c| c.sid) else { return 0 };
        data.assoc.as_mut().and_then(|(_, a)| a.stream(sid).ok()?.buffered_amount().ok()).unwrap_or(0)
    }

    /// Sets the buffered amount at or below which
    /// [`DataEvent::BufferedAmountLow`] fires (0 by default).
    pub fn set_buffered_amount_low_threshold(&mut self, stream: DataStreamId, threshold: usize) {
        let Some(data) = self.data.as_deref_mut() else { return };
        let Some(ch) = data.channels.iter_mut().find(|c| c.id == stream) else { return };
        ch.threshold = threshold;
        if let (Some(sid), Some((_, a))) = (ch.sid, data.assoc.as_mut())
            && let Ok(mut s) = a.stream(sid)
        {
            let _ = s.set_buffered_amount_low_threshold(threshold);
        }
    }

    /// The next received data message: `out` is cleared and filled with it.
    #[must_use]
    pub fn poll_data(&mut self, out: &mut Vec<u8>) -> Option<DataMessage> {
        let data = self.data.as_deref_mut()?;
        if let Some((stream, binary, msg)) = data.early.pop_front() {
            out.clear();
            out.extend_from_slice(&msg);
            return Some(DataMessage { stream, binary });
        }
        while let Some(&sid) = data.readable.front() {
            let Some(ci) = data.by_sid(sid) else {
                data.readable.pop_front();
                continue;
            };
            let Some((_, assoc)) = data.assoc.as_mut() else {
                data.readable.clear();
                return None;
            };
            let chunks = match assoc.stream(sid).and_then(|mut s| s.read_sctp()) {
                Ok(Some(c)) => c,
                _ => {
                    data.readable.pop_front();
                    continue;
                }
            };
            out.clear();
            out.resize(chunks.len(), 0);
            if chunks.read(out).is_err() {
                continue;
            }
            let binary = match chunks.ppi {
                Ppi::String => false,
                Ppi::Binary => true,
                Ppi::StringEmpty | Ppi::BinaryEmpty => {
                    out.clear();
                    chunks.ppi == Ppi::BinaryEmpty
                }
                // DCEP on an open stream (a repeated OPEN or ACK) and
                // unknown PPIDs are not the application's.
                _ => {
                    data.dropped += 1;
                    continue;
                }
            };
            return Some(DataMessage { stream: data.channels[ci].id, binary });
        }
        None
    }

    // ----- internals -----

    /// The data transport the local description carries.
    pub(crate) fn local_data(&self) -> (Option<DataTransport>, Vec<DataStreamDescription>) {
        match self.data.as_deref() {
            Some(d) => (Some(d.local()), d.descriptions()),
            None => (None, Vec::new()),
        }
    }

    pub(crate) fn data_has_output(&self) -> bool {
        self.data.as_deref().is_some_and(Data::has_output)
    }

    /// Moves SCTP packets into the DTLS association and DTLS application
    /// data into SCTP; starts the association once DTLS is up and both
    /// sides take data; reports what the association did.
    pub(crate) fn drive_data(&mut self, now: Instant) {
        let Some(data) = self.data.as_deref_mut() else { return };
        let Some(t) = self.transports.first_mut() else { return };
        let rtt = t.ice_round_trip();
        let Some(dtls) = t.dtls.as_deref_mut() else { return };
        if data.endpoint.is_none() {
            let remote = self.remote.as_ref().and_then(|r| r.data);
            if remote.is_none() || dtls.state() != rtc_dtls::State::Connected || self.closed {
                return;
            }
            data.remote = remote;
            let client = dtls.role() == rtc_dtls::Role::Client;
            tracing::debug!(
                role = %if client { "client" } else { "server" },
                local_port = data.local.port,
                remote_port = remote.map(|r| r.port),
                "SCTP association starting over DTLS"
            );
            data.start(client, rtt);
        }
        // DTLS application data in.
        let mut scratch = std::mem::take(&mut data.scratch);
        while let Some(len) = dtls.next_application_data_len() {
            scratch.resize(len.max(scratch.len()), 0);
            let Some(n) = dtls.poll_application_data(&mut scratch) else { break };
            data.receive(now, Bytes::copy_from_slice(&scratch[..n]));
        }
        data.scratch = scratch;
        self.data_events();
    }

    /// Reports a data stream's event, logged: state changes at `debug`,
    /// buffered-amount-low at `trace`.
    fn data_event(&mut self, stream: DataStreamId, event: DataEvent) {
        if tracing::enabled!(tracing::Level::DEBUG) {
            let ch = self.data.as_deref().and_then(|d| d.channel(stream));
            let label = ch.map_or("", |c| c.desc.label.as_str());
            let sid = ch.and_then(|c| c.sid).map_or_else(|| "none".to_owned(), |s| s.to_string());
            let sid = sid.as_str();
            match event {
                DataEvent::Incoming => tracing::debug!(label = %label, sid = %sid, "data stream opened by the peer"),
                DataEvent::Open => tracing::debug!(label = %label, sid = %sid, "data stream open"),
                DataEvent::Closed => tracing::debug!(label = %label, sid = %sid, "data stream closed"),
                DataEvent::Error { reason } => {
                    tracing::debug!(label = %label, sid = %sid, "data stream error: {reason}")
                }
                DataEvent::BufferedAmountLow => {
                    tracing::trace!(label = %label, sid = %sid, "data stream buffered amount low")
                }
            }
        }
        self.push_event(Event::Data { stream, event });
    }

    /// Takes the association's events.
    fn data_events(&mut self) {
        let mut out = Vec::new();
        {
            let Some(data) = self.data.as_deref_mut() else { return };
            let Some((h, assoc)) = data.assoc.as_mut() else { return };
            if let Some(endpoint) = data.endpoint.as_mut() {
                while let Some(e) = assoc.poll_endpoint_event() {
                    if let Some(ae) = endpoint.handle_event(*h, e) {
                        assoc.handle_event(ae);
                    }
                }
            }
            while let Some(e) = data.assoc.as_mut().and_then(|(_, a)| a.poll()) {
                out.push(e);
            }
        }
        let mut opened = false;
        for e in out {
            match e {
                SctpEvent::Connected => {
                    tracing::debug!("SCTP association up");
                    if let Some(d) = self.data.as_deref_mut() {
                        d.established = true;
                    }
                    opened = true;
                }
                SctpEvent::HandshakeFailed { .. } => self.data_lost(Some("the SCTP handshake failed")),
                SctpEvent::AssociationLost { .. } => self.data_lost(Some("the SCTP association was lost")),
                SctpEvent::Stream(se) => self.sctp_stream_event(se),
                _ => {}
            }
        }
        if opened {
            self.open_channels();
            let waiting = self.data.as_deref_mut().map(|d| std::mem::take(&mut d.waiting)).unwrap_or_default();
            for sid in waiting {
                self.read_unknown(sid);
            }
        }
    }

    fn sctp_stream_event(&mut self, e: StreamEvent) {
        let Some(data) = self.data.as_deref_mut() else { return };
        match e {
            StreamEvent::Opened { .. } => {
                // Streams the peer opened: accepted here, their DCEP read
                // when readable.
                while let Some((_, a)) = data.assoc.as_mut() {
                    if a.accept_stream().is_none() {
                        break;
                    }
                }
            }
            StreamEvent::Readable { id } => {
                match data.by_sid(id).map(|i| (i, data.channels[i].state, data.channels[i].awaiting_ack)) {
                    Some((_, DataState::Open, false)) => {
                        if !data.readable.contains(&id) {
                            data.readable.push_back(id);
                        }
                    }
                    Some((i, _, _)) => self.read_opening(i, id),
                    None if data.established => self.read_unknown(id),
                    None => {
                        if !data.waiting.contains(&id) && data.waiting.len() < self.limits.data_streams {
                            data.waiting.push(id);
                        }
                    }
                }
            }
            StreamEvent::BufferedAmountLow { id } => {
                if let Some(i) = data.by_sid(id) {
                    let stream = data.channels[i].id;
                    self.data_event(stream, DataEvent::BufferedAmountLow);
                }
            }
            StreamEvent::Finished { id } | StreamEvent::ResetComplete { id } | StreamEvent::Stopped { id, .. } => {
                let Some(i) = data.by_sid(id) else { return };
                // The peer reset its side: reset ours too (RFC 8831
                // section 6.7).
                if data.channels[i].state != DataState::Closing
                    && let Some((_, a)) = data.assoc.as_mut()
                    && let Ok(mut s) = a.stream(id)
                {
                    let _ = s.close();
                }
                data.channels[i].state = DataState::Closed;
                data.readable.retain(|s| *s != id);
                let stream = data.channels[i].id;
                self.data_event(stream, DataEvent::Closed);
            }
            _ => {}
        }
    }

    /// Reads a stream this side opened and awaits the ACK of, or a
    /// negotiated one: DCEP is handled, user data opens it (an implicit
    /// ACK) and is kept for [`Connection::poll_data`].
    fn read_opening(&mut self, ci: usize, sid: u16) {
        let Some(data) = self.data.as_deref_mut() else { return };
        let Some((_, assoc)) = data.assoc.as_mut() else { return };
        let Ok(Some(chunks)) = assoc.stream(sid).and_then(|mut s| s.read_sctp()) else { return };
        let mut msg = vec![0; chunks.len()];
        let _ = chunks.read(&mut msg);
        let ch = &mut data.channels[ci];
        let opened = ch.state == DataState::Connecting || ch.awaiting_ack;
        if ch.awaiting_ack {
            let (unordered, kind, value) = reliability(&ch.desc);
            if let Ok(mut s) = assoc.stream(sid) {
                let _ = s.set_reliability_params(unordered, kind, value);
            }
        }
        ch.awaiting_ack = false;
        ch.state = DataState::Open;
        let stream = ch.id;
        match chunks.ppi {
            Ppi::Dcep => {}
            Ppi::String | Ppi::Binary => data.early.push_back((stream, chunks.ppi == Ppi::Binary, msg)),
            Ppi::StringEmpty | Ppi::BinaryEmpty => {
                data.early.push_back((stream, chunks.ppi == Ppi::BinaryEmpty, Vec::new()))
            }
            _ => data.dropped += 1,
        }
        // More may wait behind it.
        data.readable.push_back(sid);
        if opened {
            self.data_event(stream, DataEvent::Open);
        }
    }

    /// Reads a stream the peer opened: DATA_CHANNEL_OPEN makes a data
    /// stream (acknowledged at once, RFC 8832 section 6); anything before
    /// it is dropped.
    fn read_unknown(&mut self, sid: u16) {
        let limit = self.limits.data_streams;
        let Some(data) = self.data.as_deref_mut() else { return };
        let Some((_, assoc)) = data.assoc.as_mut() else { return };
        let Ok(Some(chunks)) = assoc.stream(sid).and_then(|mut s| s.read_sctp()) else { return };
        let mut msg = vec![0; chunks.len().min(1 << 17)];
        let parsed = if chunks.ppi == Ppi::Dcep && chunks.read(&mut msg).is_ok() { dcep::parse(&msg) } else { None };
        let Some(Message::Open(desc)) = parsed else {
            data.dropped += 1;
            return;
        };
        let open = data.channels.iter().filter(|c| c.state != DataState::Closed).count();
        // The peer must use its own parity (even for the DTLS client).
        let peer_parity = if data.client == Some(true) { 1 } else { 0 };
        if open >= limit || sid % 2 != peer_parity {
            data.dropped += 1;
            if let Ok(mut s) = assoc.stream(sid) {
                let _ = s.close();
            }
            return;
        }
        let (unordered, kind, value) = reliability(&desc);
        let acked = assoc.stream(sid).is_ok_and(|mut s| {
            s.set_reliability_params(unordered, kind, value).is_ok()
                && s.write_sctp(&Bytes::from_static(&[dcep::ACK]), Ppi::Dcep).is_ok()
        });
        if !acked {
            data.dropped += 1;
            return;
        }
        data.next_id += 1;
        let stream = DataStreamId(data.next_id);
        data.channels.push(Channel {
            id: stream,
            sid: Some(sid),
            desc,
            state: DataState::Open,
            remote: true,
            awaiting_ack: false,
            threshold: 0,
        });
        data.readable.push_back(sid);
        self.data_event(stream, DataEvent::Incoming);
        self.data_event(stream, DataEvent::Open);
    }

    /// Opens the streams waiting for the association: negotiated ones at
    /// once, in-band ones with DATA_CHANNEL_OPEN on the lowest free id of
    /// this side's parity.
    fn open_channels(&mut self) {
        let mut events = Vec::new();
        {
            let Some(data) = self.data.as_deref_mut() else { return };
            let parity = if data.client == Some(true) { 0 } else { 1 };
            for ci in 0..data.channels.len() {
                if data.channels[ci].state != DataState::Connecting || data.channels[ci].awaiting_ack {
                    continue;
                }
                let negotiated = data.channels[ci].desc.negotiated;
                let sid = match data.channels[ci].sid {
                    Some(s) => s,
                    None => {
                        let used =
                            |s: u16| data.channels.iter().any(|c| c.sid == Some(s) && c.state != DataState::Closed);
                        let Some(s) = (parity..u16::MAX).step_by(2).find(|&s| !used(s)) else { continue };
                        s
                    }
                };
                let Some((_, assoc)) = data.assoc.as_mut() else { return };
                let (unordered, kind, value) = reliability(&data.channels[ci].desc);
                let threshold = data.channels[ci].threshold;
                // A negotiated stream the peer already sent on exists.
                let stream = if assoc.stream_ids().contains(&sid) {
                    assoc.stream(sid)
                } else {
                    assoc.open_stream(sid, Ppi::Binary)
                };
                let ok = match stream {
                    Ok(mut s) => {
                        let _ = s.set_buffered_amount_low_threshold(threshold);
                        if negotiated {
                            s.set_reliability_params(unordered, kind, value).is_ok()
                        } else {
                            // DCEP goes reliable and ordered, and so do user
                            // messages sent before the ACK, so that none
                            // overtakes the OPEN (RFC 8832 section 6).
                            let open = Bytes::from(dcep::open(&data.channels[ci].desc));
                            s.write_sctp(&open, Ppi::Dcep).is_ok()
                        }
                    }
                    Err(_) => false,
                };
                let ch = &mut data.channels[ci];
                ch.sid = Some(sid);
                if !ok {
                    ch.state = DataState::Closed;
                    events.push((ch.id, DataEvent::Error { reason: "the SCTP stream could not be opened" }));
                    events.push((ch.id, DataEvent::Closed));
                } else if negotiated {
                    ch.state = DataState::Open;
                    events.push((ch.id, DataEvent::Open));
                } else {
                    ch.awaiting_ack = true;
                }
            }
        }
        for (stream, event) in events {
            self.data_event(stream, event);
        }
    }

    /// The association failed (`error`: each stream reports it first) or
    /// ended: every data stream closes.
    pub(crate) fn data_lost(&mut self, error: Option<&'static str>) {
        let Some(data) = self.data.as_deref_mut() else { return };
        let open = data.channels.iter().filter(|c| c.state != DataState::Closed).count();
        match error {
            Some(why) if !data.failed && (data.assoc.is_some() || open > 0) => {
                tracing::warn!(streams = open, "SCTP association failed: {why}; every data stream closes");
            }
            None if data.assoc.is_some() => tracing::debug!(streams = open, "SCTP association ended"),
            _ => {}
        }
        data.established = false;
        data.waiting.clear();
        data.failed = true;
        data.assoc = None;
        data.readable.clear();
        let mut events = Vec::new();
        for c in &mut data.channels {
            if c.state != DataState::Closed {
                c.state = DataState::Closed;
                if let Some(reason) = error {
                    events.push((c.id, DataEvent::Error { reason }));
                }
                events.push((c.id, DataEvent::Closed));
            }
        }
        for (stream, event) in events {
            self.data_event(stream, event);
        }
    }

    /// Moves the association's packets into DTLS once its queue is empty,
    /// until it is full (SCTP's congestion window paces them).
    pub(crate) fn pump_data(&mut self, now: Instant) {
        let Some(data) = self.data.as_deref_mut() else { return };
        let Some(dtls) = self.transports.first_mut().and_then(|t| t.dtls.as_deref_mut()) else { return };
        if dtls.next_transmit_len().is_some() || dtls.state() != rtc_dtls::State::Connected {
            return;
        }
        while let Some(p) = data.next_packet(now) {
            match dtls.send_application_data(&p) {
                Ok(()) => {}
                Err(rtc_dtls::Error::QueueFull) => {
                    data.pending.push_front(p);
                    break;
                }
                // Too large or the association ended: lost (SCTP
                // retransmits what matters).
                Err(e) => {
                    tracing::trace!(len = p.len(), "SCTP packet lost on its way into DTLS: {e}");
                    data.dropped += 1;
                }
            }
        }
    }

    /// When the association's timer is due.
    pub(crate) fn data_timeout(&self) -> Option<Instant> {
        self.data.as_deref()?.assoc.as_ref().and_then(|(_, a)| a.poll_timeout())
    }

    pub(crate) fn handle_data_timeout(&mut self, now: Instant) {
        let Some(data) = self.data.as_deref_mut() else { return };
        if let Some((_, a)) = data.assoc.as_mut()
            && a.poll_timeout().is_some_and(|t| t <= now)
        {
            a.handle_timeout(now);
        }
        self.data_events();
    }

    /// Closes the association (ABORT goes out with the DTLS close).
    pub(crate) fn close_data(&mut self, now: Instant) {
        let Some(data) = self.data.as_deref_mut() else { return };
        if let Some((_, a)) = data.assoc.as_mut() {
            let _ = a.close();
        }
        self.pump_data(now);
        self.data_lost(None);
    }
}

/// Drives one connection's data streams against a raw SCTP peer whose every
/// move comes from `input`, for a fuzz target; not part of the API.
///
/// The connection is the SCTP client; the peer (sctp-proto's own
/// association) writes messages with any payload protocol and content on
/// any stream (DATA_CHANNEL_OPEN, ACK, user data, unknown PPIDs), resets
/// streams, and time moves on, while the connection opens, writes to and
/// closes streams of its own. Nothing may panic, and the connection never
/// holds more streams than its limit. Returns how many data events and
/// messages the connection reported (for tests of the harness itself).
/// Time starts at `start` (the caller's clock: the core reads none) and
/// moves as `input` says.
#[doc(hidden)]
pub fn fuzz_data(input: &[u8], start: Instant) -> usize {
    use super::ConnectionConfig;

    let config = ConnectionConfig { seed: Some(7), ..ConnectionConfig::new(None, None) };
    let Ok(mut conn) = Connection::new(config, start, std::time::SystemTime::UNIX_EPOCH) else { return 0 };
    conn.enable_data();
    if let Some(d) = conn.data.as_deref_mut() {
        d.remote = Some(DataTransport::default());
        d.start(true, None);
    }
    let mut server = ServerConfig::new();
    server.transport = Arc::new(TransportConfig::default().with_max_receive_message_size(1 << 20));
    let mut config = EndpointConfig::new();
    config.max_payload_size(SCTP_MTU - 12 - 16);
    let mut peer = FuzzPeer { endpoint: Endpoint::new(Arc::new(config), Some(Arc::new(server))), assoc: None };
    let mut now = start;
    for _ in 0..8 {
        peer.exchange(&mut conn, now);
    }
    let mut out = Vec::new();
    let mut seen = 0;
    let mut mine: Vec<DataStreamId> = Vec::new();
    let mut rest = input;
    while let [op, a, b, tail @ ..] = rest {
        rest = tail;
        let sid = u16::from_be_bytes([*a, *b]) % 64;
        match op % 8 {
            0 | 1 => {
                let (len, tail) = match rest.split_first() {
                    Some((l, t)) => (usize::from(*l).min(t.len()), t),
                    None => (0, rest),
                };
                let (payload, tail) = tail.split_at(len);
                rest = tail;
                let ppi = match op / 8 % 6 {
                    0 => Ppi::Dcep,
                    1 => Ppi::String,
                    2 => Ppi::Binary,
                    3 => Ppi::StringEmpty,
                    4 => Ppi::BinaryEmpty,
                    _ => Ppi::Unknown,
                };
                peer.write(sid, ppi, payload);
            }
            2 => peer.reset(sid),
            3 => {
                let d = DataStreamDescription {
                    label: format!("s{sid}"),
                    ordered: a & 1 == 0,
                    max_retransmits: (a & 2 != 0).then_some(u16::from(*b)),
                    negotiated: a & 4 != 0,
                    id: (a & 4 != 0).then_some(sid),
                    ..DataStreamDescription::default()
                };
                if let Ok(id) = conn.open_data_stream(now, d) {
                    mine.push(id);
                }
            }
            4 => {
                if let Some(&id) = mine.get(usize::from(*a) % mine.len().max(1)) {
                    let len = usize::from(*b) * 97;
                    let _ = conn.send_data(now, id, &vec![*a; len], b & 1 == 0);
                }
            }
            5 => {
                if let Some(&id) = mine.get(usize::from(*a) % mine.len().max(1)) {
                    conn.close_data_stream(now, id);
                }
            }
            6 => {
                now += std::time::Duration::from_millis(u64::from(u16::from_be_bytes([*a, *b])));
                conn.handle_timeout(now);
                if let Some((_, assoc)) = peer.assoc.as_mut() {
                    assoc.handle_timeout(now);
                }
            }
            _ => {}
        }
        peer.exchange(&mut conn, now);
        while conn.poll_data(&mut out).is_some() {
            seen += 1;
        }
        while let Some(e) = conn.poll_event() {
            seen += usize::from(matches!(e, Event::Data { .. }));
        }
        let open =
            conn.data.as_deref().map_or(0, |d| d.channels.iter().filter(|c| c.state != DataState::Closed).count());
        assert!(open <= conn.limits.data_streams, "more data streams than the limit");
    }
    conn.close(now);
    seen
}

/// The raw SCTP peer of [`fuzz_data`].
struct FuzzPeer {
    endpoint: Endpoint,
    assoc: Option<(AssociationHandle, Association)>,
}

impl FuzzPeer {
    /// Moves packets both ways until both sides are quiet (bounded).
    fn exchange(&mut self, conn: &mut Connection, now: Instant) {
        for _ in 0..64 {
            let mut moved = false;
            while let Some(p) = conn.data.as_deref_mut().and_then(|d| d.next_packet(now)) {
                moved = true;
                match self.endpoint.handle(now, PEER, None, None, p) {
                    Some((h, DatagramEvent::NewAssociation(a))) if self.assoc.is_none() => self.assoc = Some((h, a)),
                    Some((h, DatagramEvent::AssociationEvent(e))) => {
                        if let Some((ah, a)) = self.assoc.as_mut()
                            && *ah == h
                        {
                            a.handle_event(e);
                        }
                    }
                    _ => {}
                }
            }
            while self.endpoint.poll_transmit().is_some() {}
            if let Some((h, a)) = self.assoc.as_mut() {
                while let Some(e) = a.poll_endpoint_event() {
                    if let Some(ae) = self.endpoint.handle_event(*h, e) {
                        a.handle_event(ae);
                    }
                }
                while let Some(t) = a.poll_transmit(now) {
                    if let Payload::RawEncode(packets) = t.payload {
                        for p in packets {
                            moved = true;
                            if let Some(d) = conn.data.as_deref_mut() {
                                d.receive(now, p);
                            }
                        }
                    }
                }
                while a.poll().is_some() {}
                while a.accept_stream().is_some() {}
                for sid in a.stream_ids() {
                    if let Ok(mut s) = a.stream(sid) {
                        while let Ok(Some(_)) = s.read_sctp() {}
                    }
                }
            }
            conn.data_events();
            if !moved {
                break;
            }
        }
    }

    fn write(&mut self, sid: u16, ppi: Ppi, payload: &[u8]) {
        let Some((_, a)) = self.assoc.as_mut() else { return };
        let exists = a.stream_ids().contains(&sid);
        let stream = if exists { a.stream(sid) } else { a.open_stream(sid, ppi) };
        if let Ok(mut s) = stream {
            let _ = s.write_sctp(&Bytes::copy_from_slice(payload), ppi);
        }
    }

    fn reset(&mut self, sid: u16) {
        if let Some((_, a)) = self.assoc.as_mut()
            && let Ok(mut s) = a.stream(sid)
        {
            let _ = s.close();
        }
    }
}

/// The SCTP association's first retransmission timeout (RTO.Initial),
/// before it has measured a round trip of its own: four of ICE's round
/// trips, within 200 ms and 1 s; 1 s without one. RFC 4960's 3 s would make
/// one lost INIT or COOKIE ECHO hold a data channel for 3 s and two for 9;
/// DTLS, already up over the same path, has shown what it takes. The
/// association's own measurements take over after the handshake (with
/// sctp-proto's 1 s floor).
fn initial_rto(rtt: Option<std::time::Duration>) -> u64 {
    let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    rtt.map_or(1000, |r| ms(r.saturating_mul(4)).clamp(200, 1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_sctp_rto_follows_ice_round_trips() {
        use std::time::Duration;
        assert_eq!(initial_rto(None), 1000);
        assert_eq!(initial_rto(Some(Duration::from_millis(1))), 200);
        assert_eq!(initial_rto(Some(Duration::from_millis(100))), 400);
        assert_eq!(initial_rto(Some(Duration::from_secs(2))), 1000);
    }

    /// The fuzz harness reaches an established association: a peer's
    /// DATA_CHANNEL_OPEN on an odd id makes a stream (Incoming, Open), a
    /// message on it is delivered, one on an even id (the connection's
    /// parity) or before any OPEN is not.
    #[test]
    fn fuzz_harness_reaches_open_streams() {
        let open = dcep::open(&DataStreamDescription::new("x"));
        let mut input = vec![0u8, 0, 1, open.len() as u8];
        input.extend_from_slice(&open);
        input.extend_from_slice(&[8, 0, 1, 2, b'h', b'i']); // PPI 51 on id 1
        assert_eq!(fuzz_data(&input, Instant::now()), 3, "Incoming, Open and one message");
        let mut even = vec![0u8, 0, 2, open.len() as u8];
        even.extend_from_slice(&open);
        even.extend_from_slice(&[8, 0, 2, 2, b'h', b'i']);
        assert_eq!(fuzz_data(&even, Instant::now()), 0, "the peer may not use the connection's parity");
        assert_eq!(fuzz_data(&[8, 0, 3, 2, b'h', b'i'], Instant::now()), 0, "data before an OPEN is dropped");
    }

    /// The INIT a peer's own SCTP client sends (browsers send one whatever
    /// their DTLS role): to this side as the client it is dropped (the SCTP
    /// endpoint, which has no server configuration then, would panic on
    /// it); to the server, only the first starts an association.
    #[test]
    fn a_peers_init_is_dropped_by_the_client_and_after_the_first_by_the_server() {
        let now = Instant::now();
        let init = || {
            let mut config = EndpointConfig::new();
            config.max_payload_size(SCTP_MTU - 12 - 16);
            let mut peer = Endpoint::new(Arc::new(config), None);
            let (_, mut a) = peer.connect(ClientConfig::new(), PEER).expect("connect");
            let t = a.poll_transmit(now).expect("the INIT");
            let Payload::RawEncode(mut packets) = t.payload else { panic!("a raw packet") };
            packets.remove(0)
        };
        assert_eq!(init().get(12), Some(&1), "chunk type 1");
        let mut client = Data::new(DataTransport::default());
        client.start(true, None);
        client.receive(now, init());
        client.receive(now, init());
        assert_eq!(client.dropped, 2);
        let mut server = Data::new(DataTransport::default());
        server.start(false, None);
        server.receive(now, init());
        assert!(server.assoc.is_some() && server.dropped == 0, "the first INIT starts the association");
        server.receive(now, init());
        assert_eq!(server.dropped, 1, "a second one does not");
    }

    /// The peer (the SCTP server) opens a stream while its COOKIE ACK is
    /// lost: its DATA_CHANNEL_OPEN reaches this side before the association
    /// is up here, when no DATA_CHANNEL_ACK can be sent. The stream is read
    /// once the COOKIE ECHO sent again brings the COOKIE ACK; it was
    /// dropped before, and the peer's data stream never opened.
    #[test]
    fn an_open_before_the_cookie_ack_opens_the_stream_once_up() {
        let start = Instant::now();
        let config =
            super::super::ConnectionConfig { seed: Some(7), ..super::super::ConnectionConfig::new(None, None) };
        let mut conn = Connection::new(config, start, std::time::SystemTime::UNIX_EPOCH).unwrap();
        conn.enable_data();
        if let Some(d) = conn.data.as_deref_mut() {
            d.remote = Some(DataTransport::default());
            d.start(true, None);
        }
        let mut server = ServerConfig::new();
        server.transport = Arc::new(TransportConfig::default());
        let mut config = EndpointConfig::new();
        config.max_payload_size(SCTP_MTU - 12 - 16);
        let mut peer = FuzzPeer { endpoint: Endpoint::new(Arc::new(config), Some(Arc::new(server))), assoc: None };
        // Moves packets both ways; the peer's packets go through `keep`.
        let step = |conn: &mut Connection, peer: &mut FuzzPeer, now: Instant, keep: &mut dyn FnMut(&Bytes) -> bool| {
            for _ in 0..16 {
                while let Some(p) = conn.data.as_deref_mut().and_then(|d| d.next_packet(now)) {
                    match peer.endpoint.handle(now, PEER, None, None, p) {
                        Some((h, DatagramEvent::NewAssociation(a))) if peer.assoc.is_none() => {
                            peer.assoc = Some((h, a))
                        }
                        Some((_, DatagramEvent::AssociationEvent(e))) => {
                            if let Some((_, a)) = peer.assoc.as_mut() {
                                a.handle_event(e);
                            }
                        }
                        _ => {}
                    }
                }
                if let Some((h, a)) = peer.assoc.as_mut() {
                    while let Some(e) = a.poll_endpoint_event() {
                        if let Some(ae) = peer.endpoint.handle_event(*h, e) {
                            a.handle_event(ae);
                        }
                    }
                    a.handle_timeout(now);
                    while let Some(t) = a.poll_transmit(now) {
                        if let Payload::RawEncode(packets) = t.payload {
                            for p in packets.into_iter().filter(|p| keep(p)) {
                                if let Some(d) = conn.data.as_deref_mut() {
                                    d.receive(now, p);
                                }
                            }
                        }
                    }
                    while a.poll().is_some() {}
                }
                conn.data_events();
                conn.handle_timeout(now);
            }
        };
        // INIT, INIT ACK, COOKIE ECHO; the COOKIE ACK (chunk type 11) lost.
        let mut cookie_acks = 0;
        step(&mut conn, &mut peer, start, &mut |p: &Bytes| {
            let ack = p.get(12) == Some(&11);
            cookie_acks += usize::from(ack);
            !ack
        });
        assert_eq!(cookie_acks, 1, "the peer is up and its COOKIE ACK lost");
        assert!(!conn.data.as_deref().unwrap().established);
        // The peer opens a stream (its parity: odd) and its OPEN arrives.
        peer.write(1, Ppi::Dcep, &dcep::open(&DataStreamDescription::new("early")));
        step(&mut conn, &mut peer, start, &mut |p: &Bytes| p.get(12) != Some(&11));
        assert_eq!(conn.data.as_deref().unwrap().dropped, 0, "nothing of it dropped");
        assert!(!std::iter::from_fn(|| conn.poll_event()).any(|e| matches!(e, Event::Data { .. })));
        // The COOKIE ECHO again, the COOKIE ACK through: the stream opens.
        let later = start + std::time::Duration::from_secs(4);
        step(&mut conn, &mut peer, later, &mut |_| true);
        assert!(conn.data.as_deref().unwrap().established);
        let events: Vec<DataEvent> = std::iter::from_fn(|| conn.poll_event())
            .filter_map(|e| match e {
                Event::Data { event, .. } => Some(event),
                _ => None,
            })
            .collect();
        assert!(events.contains(&DataEvent::Incoming) && events.contains(&DataEvent::Open), "{events:?}");
        let d = conn.data.as_deref().unwrap();
        assert_eq!(d.channels.iter().find(|c| c.sid == Some(1)).map(|c| c.desc.label.as_str()), Some("early"));
    }

    /// RFC 4960 section 5.2.2: the server's INIT ACK lost, the client sends
    /// its INIT again; the server answers it again (it was dropped as
    /// "another INIT" before, and the data channel never opened).
    #[test]
    fn an_init_sent_again_is_answered_again() {
        let now = Instant::now();
        let mut config = EndpointConfig::new();
        config.max_payload_size(SCTP_MTU - 12 - 16);
        let mut peer = Endpoint::new(Arc::new(config), None);
        let (_, mut a) = peer.connect(ClientConfig::new(), PEER).expect("connect");
        let t = a.poll_transmit(now).expect("the INIT");
        let Payload::RawEncode(packets) = t.payload else { panic!("a raw packet") };
        let first = packets[0].clone();
        let mut server = Data::new(DataTransport::default());
        server.start(false, None);
        server.receive(now, first.clone());
        let ack = server.next_packet(now).expect("an INIT ACK");
        assert_eq!(ack.get(12), Some(&2), "chunk type 2");
        // Lost. The client's retransmission of the INIT, as it sends it.
        let later = a.poll_timeout().expect("the INIT's timer");
        a.handle_timeout(later);
        let again = a.poll_transmit(later).expect("the INIT again");
        let Payload::RawEncode(packets) = again.payload else { panic!("a raw packet") };
        assert_eq!(packets[0].get(16..20), first.get(16..20), "the same Initiate Tag");
        server.receive(later, packets[0].clone());
        assert_eq!(server.dropped, 0);
        let ack = server.next_packet(later).expect("the INIT ACK again");
        assert_eq!(ack.get(12), Some(&2));
        // The client takes it and goes on (COOKIE ECHO).
        match peer.handle(later, PEER, None, None, ack) {
            Some((_, DatagramEvent::AssociationEvent(e))) => a.handle_event(e),
            _ => panic!("the INIT ACK is the client association's"),
        }
        let echo = a.poll_transmit(later).expect("a COOKIE ECHO");
        let Payload::RawEncode(packets) = echo.payload else { panic!("a raw packet") };
        assert_eq!(packets[0].get(12), Some(&10), "chunk type 10");
    }
}
