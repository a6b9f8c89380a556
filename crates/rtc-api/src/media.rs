//! `RtcMediaStream` and `RtcMediaStreamTrack`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rtc_codecs::Kind;
use rtc_proto::{ConnectionEvent, Error, StreamDescription, TrackDescription};

use crate::driver::{StreamInner, TrackInner};
use crate::events::{Events, lock};
use crate::frame::Frame;

/// `n` random alphanumeric characters from the thread-local CSPRNG.
pub(crate) fn random_id(n: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
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
            description.track_id = random_id(16);
        }
        while description.ssrc.is_none_or(|s| s == 0) {
            description.ssrc = Some(rand::random());
        }
        Self { inner: TrackInner::new(description, None) }
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
        if let Some((d, h, t)) = self.inner.sent() {
            let mut st = d.state();
            let mut c = st.endpoint.connection_mut(h).ok_or(Error::Closed)?;
            c.set_track_description(t, description)?;
            if let Some(desc) = c.track_description(t) {
                *lock(&self.inner.desc) = desc.clone();
            }
            return Ok(());
        }
        let mut d = lock(&self.inner.desc);
        *d = TrackDescription { ssrc: description.ssrc.or(d.ssrc), ..description };
        if d.track_id.is_empty() {
            d.track_id = random_id(16);
        }
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
        *lock(&self.inner.contributors) = csrcs.to_vec();
        if let Some((d, h, t)) = self.inner.sent()
            && let Some(mut c) = d.state().endpoint.connection_mut(h)
        {
            c.set_contributors(t, csrcs)?;
        }
        Ok(())
    }

    /// Sets the audio level of the frames written next (RFC 6464: `level` 0
    /// to 127 in -dBov, 127 for silence, and whether they hold voice), sent
    /// in the `ssrc-audio-level` header extension when it was negotiated,
    /// as it is by default; `None` stops it. The receiver reads it in
    /// [`Frame::audio_level`](crate::Frame). Refused for a video track or a
    /// level over 127.
    pub fn set_audio_level(&self, level: Option<(u8, bool)>) -> Result<(), Error> {
        if self.kind() != Kind::Audio {
            return Err(Error::InvalidOptions("an audio level is for audio tracks".into()));
        }
        if level.is_some_and(|(l, _)| l > 127) {
            return Err(Error::InvalidOptions("an audio level is 0 to 127 (-dBov)".into()));
        }
        *lock(&self.inner.audio_level) = level;
        if let Some((d, h, t)) = self.inner.sent()
            && let Some(mut c) = d.state().endpoint.connection_mut(h)
        {
            c.set_audio_level(t, level)?;
        }
        Ok(())
    }

    /// Whether this track, a simulcast layer sent on a connection, is sent:
    /// false when the peer's answer paused it or does not take it (RFC 8853
    /// section 5.3), and `write_frame` refuses its frames: the encoder need
    /// not make them. True for any other track.
    pub fn layer_taken(&self) -> bool {
        let Some((d, h, t)) = self.inner.sent() else { return true };
        d.state().endpoint.connection(h).is_none_or(|c| c.layer_taken(t))
    }

    /// Sends one encoded frame lasting `duration` as RTP with the negotiated
    /// payload type: Opus (and other audio) one frame per packet, VP8 per
    /// RFC 7741, H.264 access units in Annex B form per RFC 6184. Returns
    /// the number of packets it makes (0 while paused); the connection's
    /// task sends them. One lock, no allocation.
    pub fn write_frame(&self, frame: &[u8], duration: Duration) -> Result<usize, Error> {
        if !self.is_playing() {
            return Ok(0);
        }
        let not_sent = || Error::NotConnected("the track's stream is not sent");
        let d = self.inner.driver.get().and_then(std::sync::Weak::upgrade).ok_or_else(not_sent)?;
        let n = {
            let mut st = d.state();
            let &(h, t) = st.sent.get(&self.inner.key()).ok_or_else(not_sent)?;
            let mut c = st.endpoint.connection_mut(h).ok_or(Error::Closed)?;
            c.write_frame(Instant::now(), t, frame, duration)?
        };
        d.wake.notify_one();
        Ok(n)
    }

    /// The next frame received on this track; `None` once its connection
    /// is closed and the queue is empty (or for a track that is not
    /// received).
    pub async fn read_frame(&self) -> Option<Frame> {
        self.inner.inbox.as_ref()?.next().await
    }

    /// A received frame if one is queued.
    pub fn try_read_frame(&self) -> Option<Frame> {
        self.inner.inbox.as_ref()?.pop()
    }
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
        let id = if description.stream_id.is_empty() { random_id(16) } else { description.stream_id };
        let tracks = description.tracks.into_iter().map(|t| RtcMediaStreamTrack::new(t).inner).collect();
        Self { inner: StreamInner::new(id, tracks) }
    }

    /// The stream's id.
    pub fn id(&self) -> String {
        lock(&self.inner.id).clone()
    }

    /// Its tracks.
    pub fn tracks(&self) -> Vec<RtcMediaStreamTrack> {
        lock(&self.inner.tracks).iter().map(|t| RtcMediaStreamTrack { inner: t.clone() }).collect()
    }

    /// The stream's track events (seed 000: TrackConnected,
    /// TrackDisconnected, TrackContributors, TrackReport, and its own
    /// StreamConnected and StreamDisconnected).
    pub fn events(&self) -> Events<ConnectionEvent> {
        self.inner.events.subscribe()
    }

    /// Adds a track; when the stream is being sent, the track is sent too.
    pub fn add_track(&self, track: RtcMediaStreamTrack) -> Result<(), Error> {
        let ssrc = track.ssrc();
        if self.tracks().iter().any(|t| Arc::ptr_eq(&t.inner, &track.inner) || t.ssrc() == ssrc) {
            return Err(Error::InvalidDescription(format!("the stream already has a track with ssrc {ssrc}")));
        }
        if let Some((d, l)) = self.inner.link() {
            if !track.inner.fits(&d) {
                return Err(Error::InvalidOptions("the track is sent by another connection".into()));
            }
            let mut st = d.state();
            let mut c = st.endpoint.connection_mut(l.conn).ok_or(Error::Closed)?;
            let t = c.add_track(Instant::now(), l.stream, track.description())?;
            drop(c);
            track.inner.attach(&d, &mut st, l.conn, t);
            drop(st);
            d.wake.notify_one();
        }
        lock(&self.inner.tracks).push(track.inner);
        Ok(())
    }

    /// Removes a track (it stops being sent).
    pub fn remove_track(&self, track: &RtcMediaStreamTrack) {
        let removed = {
            let mut tracks = lock(&self.inner.tracks);
            let before = tracks.len();
            tracks.retain(|t| !Arc::ptr_eq(t, &track.inner));
            before != tracks.len()
        };
        if removed && let Some((d, _)) = self.inner.link() {
            let mut st = d.state();
            if let Some((h, t)) = st.sent.remove(&track.inner.key())
                && let Some(mut c) = st.endpoint.connection_mut(h)
            {
                c.remove_track(Instant::now(), t);
            }
            drop(st);
            d.wake.notify_one();
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
        for t in current.iter().filter(|t| !description.tracks.iter().any(|d| d.track_id == t.id())) {
            self.remove_track(t);
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
        if let Some((d, l)) = self.inner.link() {
            d.state().stop_sending(l.conn, &self.inner);
            d.wake.notify_one();
        }
        for t in self.tracks() {
            t.pause();
        }
    }
}
