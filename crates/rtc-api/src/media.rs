//! `RtcMediaStream` and `RtcMediaStreamTrack`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rtc_codecs::Kind;
use tokio::sync::mpsc;

use crate::connection::ConnShared;
use crate::desc::{StreamDescription, TrackDescription};
use crate::error::Error;
use crate::events::{ConnectionEvent, Emitter, Events};
use crate::socket::lock;

/// An encoded media frame received on a track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The encoded frame (for VP8, reassembled from its packets).
    pub data: Vec<u8>,
    /// Its RTP timestamp.
    pub timestamp: u32,
    /// The SSRC it came from.
    pub ssrc: u32,
    /// Whether it is a key frame (VP8); `true` for audio.
    pub key_frame: bool,
}

/// Frames queued on a received track before new ones are dropped.
const FRAME_QUEUE: usize = 512;

#[derive(Debug)]
pub(crate) struct TrackInner {
    pub(crate) desc: Mutex<TrackDescription>,
    playing: AtomicBool,
    pub(crate) conn: Mutex<Weak<ConnShared>>,
    /// Bumped by `set_description` (the connection's send plan is stale).
    pub(crate) generation: AtomicU64,
    /// The CSRC list of the packets written next, and its length.
    pub(crate) contributors: Mutex<([u32; 15], usize)>,
    pub(crate) frames_tx: mpsc::Sender<Frame>,
    frames_rx: tokio::sync::Mutex<mpsc::Receiver<Frame>>,
}

/// The seeds' RTCMediaStreamTrack: one RTP stream of one kind. A track of a
/// stream sent on a connection takes encoded frames
/// ([`write_frame`](Self::write_frame)); a received track gives them
/// ([`read_frame`](Self::read_frame)).
#[derive(Debug, Clone)]
pub struct RtcMediaStreamTrack {
    pub(crate) inner: Arc<TrackInner>,
}

impl RtcMediaStreamTrack {
    /// A track from its description; an empty `track-id` and a missing
    /// `ssrc` are drawn from a CSPRNG.
    pub fn new(mut description: TrackDescription) -> Self {
        if description.track_id.is_empty() {
            description.track_id = crate::random_id(16);
        }
        if description.ssrc.is_none() {
            description.ssrc = Some(crate::random_ssrc());
        }
        let (frames_tx, frames_rx) = mpsc::channel(FRAME_QUEUE);
        Self {
            inner: Arc::new(TrackInner {
                desc: Mutex::new(description),
                playing: AtomicBool::new(true),
                conn: Mutex::new(Weak::new()),
                generation: AtomicU64::new(0),
                contributors: Mutex::new(([0; 15], 0)),
                frames_tx,
                frames_rx: tokio::sync::Mutex::new(frames_rx),
            }),
        }
    }

    /// A new track of `kind` with a random id and SSRC.
    pub fn of_kind(kind: Kind) -> Self {
        Self::new(TrackDescription::new(kind))
    }

    /// The track's description.
    pub fn description(&self) -> TrackDescription {
        lock(&self.inner.desc).clone()
    }

    /// Replaces the description. The `kind` and `ssrc` cannot change while
    /// the track is sent on a connection.
    pub fn set_description(&self, description: TrackDescription) -> Result<(), Error> {
        let mut d = lock(&self.inner.desc);
        let attached = lock(&self.inner.conn).strong_count() > 0;
        if attached && (description.kind != d.kind || description.ssrc.is_some_and(|s| Some(s) != d.ssrc)) {
            return Err(Error::InvalidDescription("kind and ssrc cannot change while the track is sent".into()));
        }
        let ssrc = description.ssrc.or(d.ssrc);
        *d = TrackDescription { ssrc, ..description };
        if d.track_id.is_empty() {
            d.track_id = crate::random_id(16);
        }
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// The track's kind.
    pub fn kind(&self) -> Kind {
        lock(&self.inner.desc).kind
    }

    /// The track's id.
    pub fn id(&self) -> String {
        lock(&self.inner.desc).track_id.clone()
    }

    /// The track's SSRC.
    pub fn ssrc(&self) -> u32 {
        lock(&self.inner.desc).ssrc.unwrap_or_default()
    }

    /// Resumes the track: frames are sent (or delivered) again.
    pub fn play(&self) {
        self.inner.playing.store(true, Ordering::Release);
    }

    /// Pauses the track: frames written are discarded, frames received are
    /// not delivered.
    pub fn pause(&self) {
        self.inner.playing.store(false, Ordering::Release);
    }

    /// Whether the track plays.
    pub fn is_playing(&self) -> bool {
        self.inner.playing.load(Ordering::Acquire)
    }

    /// Sets the contributing sources (the CSRC list, RFC 3550 section 5.1)
    /// of the frames written next, as a mixer does; at most 15. The
    /// receiver's TrackContributors event fires when the list changes.
    pub fn set_contributors(&self, csrcs: &[u32]) -> Result<(), Error> {
        if csrcs.len() > 15 {
            return Err(Error::InvalidOptions(format!("{} contributors: RTP carries at most 15", csrcs.len())));
        }
        let mut c = lock(&self.inner.contributors);
        c.0[..csrcs.len()].copy_from_slice(csrcs);
        c.1 = csrcs.len();
        Ok(())
    }

    /// Sends one encoded frame lasting `duration` as RTP with the negotiated
    /// payload type: Opus (and other audio) one frame per packet, VP8 per
    /// RFC 7741 with its payload descriptor, split to fit the MTU. Returns
    /// the number of packets sent (0 while paused).
    pub fn write_frame(&self, frame: &[u8], duration: Duration) -> Result<usize, Error> {
        if !self.is_playing() {
            return Ok(0);
        }
        let conn = lock(&self.inner.conn).upgrade().ok_or(Error::NotConnected("the track's stream is not sent"))?;
        conn.send_frame(self, frame, duration)
    }

    /// The next frame received on this track; `None` once its connection
    /// is gone and the queue is empty.
    pub async fn read_frame(&self) -> Option<Frame> {
        self.inner.frames_rx.lock().await.recv().await
    }

    /// A received frame if one is queued.
    pub fn try_read_frame(&self) -> Option<Frame> {
        self.inner.frames_rx.try_lock().ok()?.try_recv().ok()
    }
}

#[derive(Debug)]
pub(crate) struct StreamInner {
    pub(crate) id: Mutex<String>,
    pub(crate) tracks: Mutex<Vec<RtcMediaStreamTrack>>,
    pub(crate) events: Emitter<ConnectionEvent>,
    pub(crate) conn: Mutex<Weak<ConnShared>>,
}

/// The seeds' RTCMediaStream: a group of tracks sent or received together.
#[derive(Debug, Clone)]
pub struct RtcMediaStream {
    pub(crate) inner: Arc<StreamInner>,
}

impl RtcMediaStream {
    /// A stream from its description: a track per entry (ids and SSRCs drawn
    /// at random where absent) and a random `stream-id` when empty.
    pub fn new(description: StreamDescription) -> Self {
        let id = if description.stream_id.is_empty() { crate::random_id(16) } else { description.stream_id };
        let tracks = description.tracks.into_iter().map(RtcMediaStreamTrack::new).collect();
        Self {
            inner: Arc::new(StreamInner {
                id: Mutex::new(id),
                tracks: Mutex::new(tracks),
                events: Emitter::new(),
                conn: Mutex::new(Weak::new()),
            }),
        }
    }

    /// The stream's id.
    pub fn id(&self) -> String {
        lock(&self.inner.id).clone()
    }

    /// Its tracks.
    pub fn tracks(&self) -> Vec<RtcMediaStreamTrack> {
        lock(&self.inner.tracks).clone()
    }

    /// The stream's track events (seed 000: TrackConnected,
    /// TrackDisconnected, TrackContributors, TrackReport).
    pub fn events(&self) -> Events<ConnectionEvent> {
        self.inner.events.subscribe()
    }

    /// Adds a track; when the stream is being sent, the track is sent too.
    pub fn add_track(&self, track: RtcMediaStreamTrack) -> Result<(), Error> {
        let ssrc = track.ssrc();
        {
            let mut tracks = lock(&self.inner.tracks);
            if tracks.iter().any(|t| Arc::ptr_eq(&t.inner, &track.inner) || t.ssrc() == ssrc) {
                return Err(Error::InvalidDescription(format!("the stream already has a track with ssrc {ssrc}")));
            }
            tracks.push(track.clone());
        }
        let conn = lock(&self.inner.conn).upgrade();
        if let Some(conn) = conn {
            conn.track_added(self, &track);
        }
        Ok(())
    }

    /// Removes a track (it stops being sent).
    pub fn remove_track(&self, track: &RtcMediaStreamTrack) {
        let removed = {
            let mut tracks = lock(&self.inner.tracks);
            let before = tracks.len();
            tracks.retain(|t| !Arc::ptr_eq(&t.inner, &track.inner));
            before != tracks.len()
        };
        let conn = lock(&self.inner.conn).upgrade();
        if removed && let Some(conn) = conn {
            conn.track_removed(self, track);
        }
    }

    /// The stream's description: its id and its tracks' descriptions.
    pub fn description(&self) -> StreamDescription {
        StreamDescription { stream_id: self.id(), tracks: self.tracks().iter().map(|t| t.description()).collect() }
    }

    /// Updates the tracks from a description: tracks are matched by
    /// `track-id` and updated, listed tracks not present are added, others
    /// removed.
    pub fn set_description(&self, description: StreamDescription) -> Result<(), Error> {
        let current = self.tracks();
        for d in &description.tracks {
            if let Some(t) = current.iter().find(|t| t.id() == d.track_id) {
                t.set_description(d.clone())?;
            }
        }
        for t in &current {
            if !description.tracks.iter().any(|d| d.track_id == t.id()) {
                self.remove_track(t);
            }
        }
        for d in description.tracks {
            if !current.iter().any(|t| t.id() == d.track_id) {
                self.add_track(RtcMediaStreamTrack::new(d))?;
            }
        }
        if !description.stream_id.is_empty() {
            *lock(&self.inner.id) = description.stream_id;
        }
        Ok(())
    }

    /// Stops the stream: it is no longer sent, and its tracks pause.
    pub fn stop(&self) {
        // The guard must be gone before the connection takes the lock.
        let conn = lock(&self.inner.conn).upgrade();
        if let Some(conn) = conn {
            conn.stream_stopped(self);
        }
        for t in self.tracks() {
            t.pause();
        }
    }
}
