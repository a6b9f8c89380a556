//! What a connection reports: the seeds' socket and connection events, the
//! statistics in them, and the core's output [`Event`].

use std::net::SocketAddr;

use rtc_candidate::{Candidate, CandidateKind};
use rtc_codecs::Kind;
use serde::Serialize;

use crate::desc::Direction;
use crate::{DataStreamId, SocketId};

/// Events of an the seeds' RTCSocket (the seeds' `oncandidate`,
/// `oncandidatesdone`, `onactivecandidate`, `onconnected`,
/// `ondisconnected`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
#[allow(clippy::large_enum_variant, reason = "events are rare; boxing would cost more than it saves")]
pub enum SocketEvent {
    /// A local candidate to signal to the peer.
    Candidate {
        /// The candidate, its `socket-id` set.
        candidate: Candidate,
    },
    /// Every local candidate has been signaled.
    CandidatesDone,
    /// The local/remote pair in use changed.
    ActiveCandidate {
        /// The local candidate.
        local: Candidate,
        /// The remote candidate.
        remote: Candidate,
    },
    /// ICE connected: a selected pair with consent for every component.
    Connected,
    /// Consent was lost (RFC 7675), or ICE failed: media stops.
    Disconnected,
}

/// Statistics of one RTP stream under their webrtc-stats names:
/// `outbound-rtp` (with the receiver's `remote-inbound-rtp` figures) for a
/// sent track, `inbound-rtp` for a received one.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpStats {
    /// `packetsSent` (sent tracks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packets_sent: Option<u64>,
    /// `bytesSent`: payload octets (sent tracks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_sent: Option<u64>,
    /// `packetsReceived` (received tracks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packets_received: Option<u64>,
    /// `bytesReceived`: payload octets (received tracks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_received: Option<u64>,
    /// `packetsLost`: counted by this side for a received track, as last
    /// reported by the peer for a sent one.
    pub packets_lost: i64,
    /// `fractionLost` (0.0 to 1.0), over the last report interval.
    pub fraction_lost: f64,
    /// `jitter` in seconds.
    pub jitter: f64,
    /// `roundTripTime` in seconds, from RTCP report blocks (sent tracks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub round_trip_time: Option<f64>,
    /// `nackCount`: NACK packets received (sent tracks) or sent (received
    /// tracks).
    pub nack_count: u64,
    /// `pliCount`: PLI packets, as `nackCount`.
    pub pli_count: u64,
    /// `firCount`: FIR requests, as `nackCount`.
    pub fir_count: u64,
    /// `retransmittedPacketsSent` (sent tracks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retransmitted_packets_sent: Option<u64>,
    /// `retransmittedPacketsReceived` (received tracks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retransmitted_packets_received: Option<u64>,
    /// Packets a received track's jitter buffer gave up waiting for (with
    /// what arrived too late for it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packets_given_up: Option<u64>,
    /// `framesReceived`: whole frames handed out (received tracks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames_received: Option<u64>,
    /// `framesDropped`: frames dropped incomplete, a packet of theirs lost
    /// for good (received tracks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames_dropped: Option<u64>,
    /// `jitterBufferDelay` in seconds: the time from each handed-out
    /// frame's first packet to its hand-out, summed (received tracks);
    /// divided by `jitterBufferEmittedCount` it is the mean wait.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jitter_buffer_delay: Option<f64>,
    /// `jitterBufferEmittedCount`: the frames `jitterBufferDelay` sums.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jitter_buffer_emitted_count: Option<u64>,
}

/// One ICE candidate pair of a socket, as webrtc-stats'
/// `RTCIceCandidatePairStats` (with the candidates' `candidateType` and the
/// local one's `relayProtocol`). In JSON the counters join the other
/// fields under webrtc-stats' camelCase names (`requestsSent`,
/// `bytesReceived`, `currentRoundTripTime` in seconds, …).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CandidatePairReport {
    /// The socket.
    pub socket_id: String,
    /// The component (1 RTP, 2 RTCP).
    pub component: u16,
    /// `frozen`, `waiting`, `in-progress`, `succeeded` or `failed`.
    pub state: &'static str,
    /// Nominated.
    pub nominated: bool,
    /// The pair media and data take now.
    pub selected: bool,
    /// The local candidate's base address (the host or relayed address
    /// datagrams go from).
    pub local_address: SocketAddr,
    /// The remote candidate's address.
    pub remote_address: SocketAddr,
    /// The local candidate's type (`host`, `srflx`, `prflx`, `relay`).
    pub local_candidate_type: &'static str,
    /// The remote candidate's type.
    pub remote_candidate_type: &'static str,
    /// How a local relayed candidate's TURN server is reached: `udp`,
    /// `tcp` or `tls`.
    pub relay_protocol: Option<&'static str>,
    /// `udp`, or `tcp` for a pair over an ICE-TCP connection (RFC 6544).
    pub protocol: &'static str,
    /// The local candidate's `tcptype` on a TCP pair: `active` (it opened
    /// the connection) or `passive` (it accepted it).
    pub tcp_type: Option<&'static str>,
    /// Checks, responses, round trips and the media and data that went
    /// over the pair.
    pub counters: rtc_ice::PairCounters,
}

impl CandidatePairReport {
    /// The report of `pair` of socket `socket_id`; `selected` when it is
    /// the pair in use.
    pub(crate) fn new(socket_id: &str, pair: &rtc_ice::PairInfo, selected: bool) -> Self {
        let kind = |k: CandidateKind| match k {
            CandidateKind::Host => "host",
            CandidateKind::ServerReflexive => "srflx",
            CandidateKind::PeerReflexive => "prflx",
            CandidateKind::Relayed => "relay",
            _ => "unknown",
        };
        Self {
            socket_id: socket_id.to_owned(),
            component: pair.component,
            state: match pair.state {
                rtc_ice::PairState::Frozen => "frozen",
                rtc_ice::PairState::Waiting => "waiting",
                rtc_ice::PairState::InProgress => "in-progress",
                rtc_ice::PairState::Succeeded => "succeeded",
                _ => "failed",
            },
            nominated: pair.nominated,
            selected,
            local_address: pair.local,
            remote_address: pair.remote,
            local_candidate_type: kind(pair.local_kind),
            remote_candidate_type: kind(pair.remote_kind),
            relay_protocol: pair.relay_protocol.map(rtc_ice::TurnTransport::as_str),
            protocol: if pair.tcp_type.is_some() { "tcp" } else { "udp" },
            tcp_type: pair.tcp_type.map(rtc_candidate::TcpType::as_str),
            counters: pair.counters,
        }
    }
}

impl Serialize for CandidatePairReport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let c = &self.counters;
        let mut m = s.serialize_struct("CandidatePairReport", 24)?;
        m.serialize_field("socket-id", &self.socket_id)?;
        m.serialize_field("component", &self.component)?;
        m.serialize_field("state", self.state)?;
        m.serialize_field("nominated", &self.nominated)?;
        m.serialize_field("selected", &self.selected)?;
        m.serialize_field("localAddress", &self.local_address)?;
        m.serialize_field("remoteAddress", &self.remote_address)?;
        m.serialize_field("localCandidateType", self.local_candidate_type)?;
        m.serialize_field("remoteCandidateType", self.remote_candidate_type)?;
        m.serialize_field("relayProtocol", &self.relay_protocol)?;
        m.serialize_field("protocol", self.protocol)?;
        m.serialize_field("tcpType", &self.tcp_type)?;
        for (name, n) in [
            ("requestsSent", c.requests_sent),
            ("requestsReceived", c.requests_received),
            ("responsesSent", c.responses_sent),
            ("responsesReceived", c.responses_received),
            ("consentRequestsSent", c.consent_requests_sent),
            ("packetsSent", c.packets_sent),
            ("bytesSent", c.bytes_sent),
            ("packetsReceived", c.packets_received),
            ("bytesReceived", c.bytes_received),
        ] {
            m.serialize_field(name, &n)?;
        }
        m.serialize_field("currentRoundTripTime", &c.current_round_trip_time.map(|d| d.as_secs_f64()))?;
        m.serialize_field("totalRoundTripTime", &c.total_round_trip_time.as_secs_f64())?;
        m.end()
    }
}

/// A track's report: which track, and its statistics.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct TrackReport {
    /// The stream the track belongs to.
    pub stream_id: String,
    /// The track.
    pub track_id: String,
    /// Its SSRC.
    pub ssrc: u32,
    /// Its kind.
    pub kind: Kind,
    /// `local` for a sent track, `remote` for a received one.
    pub direction: Direction,
    /// The statistics.
    pub stats: RtpStats,
}

/// Events of an the seeds' RTCConnection: the union of both
/// seeds. The track events also fire on the track's
/// RTCMediaStream (seed 000).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
#[allow(clippy::large_enum_variant, reason = "events are rare; boxing would cost more than it saves")]
pub enum ConnectionEvent {
    /// The local/remote candidate pair a socket of this connection uses.
    ActiveConnectionCandidate {
        /// The socket.
        #[serde(rename = "socket-id")]
        socket_id: String,
        /// The local candidate.
        local: Candidate,
        /// The remote candidate.
        remote: Candidate,
    },
    /// Every socket is connected and SRTP is keyed: media can flow.
    Connected,
    /// A socket lost consent or failed: media stopped.
    Disconnected,
    /// A stream started flowing (`local`: being sent, `remote`: received).
    StreamConnected {
        /// The stream.
        #[serde(rename = "stream-id")]
        stream_id: String,
        /// Which side sends it.
        direction: Direction,
    },
    /// A stream stopped.
    StreamDisconnected {
        /// The stream.
        #[serde(rename = "stream-id")]
        stream_id: String,
        /// Which side sent it.
        direction: Direction,
    },
    /// A stream's statistics, one entry per track.
    StreamReport {
        /// The stream.
        #[serde(rename = "stream-id")]
        stream_id: String,
        /// Which side sends it.
        direction: Direction,
        /// Its tracks' reports.
        tracks: Vec<TrackReport>,
    },
    /// A track started flowing.
    TrackConnected {
        /// The stream.
        #[serde(rename = "stream-id")]
        stream_id: String,
        /// The track.
        #[serde(rename = "track-id")]
        track_id: String,
        /// Its SSRC.
        ssrc: u32,
        /// Which side sends it.
        direction: Direction,
    },
    /// A track stopped (BYE, removal, consent loss, close).
    TrackDisconnected {
        /// The stream.
        #[serde(rename = "stream-id")]
        stream_id: String,
        /// The track.
        #[serde(rename = "track-id")]
        track_id: String,
        /// Its SSRC.
        ssrc: u32,
        /// Which side sent it.
        direction: Direction,
    },
    /// A received track's contributing sources (its CSRC list) changed.
    TrackContributors {
        /// The stream.
        #[serde(rename = "stream-id")]
        stream_id: String,
        /// The track.
        #[serde(rename = "track-id")]
        track_id: String,
        /// The new CSRC list.
        contributors: Vec<u32>,
    },
    /// A track's statistics.
    TrackReport(TrackReport),
    /// The outgoing bitrate estimate (webrtc-stats'
    /// `availableOutgoingBitrate`, from the peer's transport feedback)
    /// changed by a tenth or more (a decrease at once, an increase at most
    /// once a second): the encoders should aim below it.
    #[serde(rename = "outgoingbitrate")]
    OutgoingBitrate {
        /// Bits per second.
        bitrate: u64,
    },
    /// The peer asks for a key frame of a sent track (RTCP PLI or FIR):
    /// the encoder should make its next frame one. At most one every
    /// 250 ms per track.
    #[serde(rename = "keyframerequest")]
    KeyFrameRequest {
        /// The stream.
        #[serde(rename = "stream-id")]
        stream_id: String,
        /// The track.
        #[serde(rename = "track-id")]
        track_id: String,
        /// Its SSRC.
        ssrc: u32,
    },
}

/// What [`Connection::poll_event`](crate::Connection::poll_event) gives:
/// an event of one of the connection's sockets, or of the connection.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant, reason = "events are rare; boxing would cost more than it saves")]
pub enum Event {
    /// An event of a socket. Candidates and the socket's own state come
    /// from the connection the socket was first added to (its *primary*
    /// connection: forks share its candidates); a failed DTLS handshake is
    /// reported by whichever connection ran it.
    Socket {
        /// The socket.
        socket: SocketId,
        /// What happened.
        event: SocketEvent,
    },
    /// An event of the connection (the seeds' connection, stream and track
    /// events).
    Connection(ConnectionEvent),
    /// An event of a data stream.
    Data {
        /// The data stream.
        stream: DataStreamId,
        /// What happened.
        event: DataEvent,
    },
}

/// Events of a data stream (the W3C data channel's `open`, `close`,
/// `bufferedamountlow` and `error`; messages come from
/// [`Connection::poll_data`](crate::Connection::poll_data)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum DataEvent {
    /// The peer opened this data stream (DATA_CHANNEL_OPEN): its
    /// description is known; [`DataEvent::Open`] follows.
    Incoming,
    /// Messages can flow both ways.
    Open,
    /// The octets buffered for sending fell to the stream's threshold.
    #[serde(rename = "bufferedamountlow")]
    BufferedAmountLow,
    /// The stream closed (either side reset it, or the association ended).
    Closed,
    /// Something failed; [`DataEvent::Closed`] follows.
    Error {
        /// Why.
        reason: &'static str,
    },
}
