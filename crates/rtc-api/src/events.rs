//! The seeds' events, and the streams that deliver them.

use rtc_candidate::Candidate;
use rtc_codecs::Kind;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::desc::Direction;

/// Events of an [`RtcSocket`](crate::RtcSocket) (the seeds' `oncandidate`,
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

/// Events of an [`RtcConnection`](crate::RtcConnection): the union of both
/// seeds. The track events also fire on the track's
/// [`RtcMediaStream`](crate::RtcMediaStream) (seed 000).
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
}

/// A stream of events from one object. Events fired before it was made are
/// not in it; a receiver that falls more than 1024 events behind loses the
/// oldest ones (counted in [`Events::lagged`]).
#[derive(Debug)]
pub struct Events<T> {
    rx: broadcast::Receiver<T>,
    lagged: u64,
}

impl<T: Clone> Events<T> {
    pub(crate) fn new(rx: broadcast::Receiver<T>) -> Self {
        Self { rx, lagged: 0 }
    }

    /// The next event; `None` once the object is closed and every event was
    /// read.
    pub async fn next(&mut self) -> Option<T> {
        loop {
            match self.rx.recv().await {
                Ok(e) => return Some(e),
                Err(broadcast::error::RecvError::Lagged(n)) => self.lagged += n,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next event if one is ready.
    pub fn try_next(&mut self) -> Option<T> {
        loop {
            match self.rx.try_recv() {
                Ok(e) => return Some(e),
                Err(broadcast::error::TryRecvError::Lagged(n)) => self.lagged += n,
                Err(_) => return None,
            }
        }
    }

    /// Events lost because this receiver fell behind.
    pub fn lagged(&self) -> u64 {
        self.lagged
    }
}

/// Capacity of each object's event ring.
pub(crate) const EVENT_RING: usize = 1024;

/// One object's event source: a broadcast ring that closes with the object.
#[derive(Debug)]
pub(crate) struct Emitter<T> {
    tx: std::sync::Mutex<Option<broadcast::Sender<T>>>,
}

impl<T: Clone> Emitter<T> {
    pub(crate) fn new() -> Self {
        Self { tx: std::sync::Mutex::new(Some(broadcast::channel(EVENT_RING).0)) }
    }

    fn tx(&self) -> std::sync::MutexGuard<'_, Option<broadcast::Sender<T>>> {
        self.tx.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fires an event; nobody listening is fine.
    pub(crate) fn emit(&self, e: T) {
        if let Some(tx) = self.tx().as_ref() {
            let _ = tx.send(e);
        }
    }

    /// A new listener (closed at once if the object is).
    pub(crate) fn subscribe(&self) -> Events<T> {
        match self.tx().as_ref() {
            Some(tx) => Events::new(tx.subscribe()),
            None => Events::new(broadcast::channel(1).1),
        }
    }

    /// Ends every listener's stream after the events already fired.
    pub(crate) fn close(&self) {
        self.tx().take();
    }
}
