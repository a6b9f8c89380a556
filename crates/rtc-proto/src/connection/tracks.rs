//! The streams and tracks of a connection, both directions, and the seeds'
//! stream and track events.

use std::time::{Duration, Instant};

use rtc_payload::{Depacketizer, Packetizer};
use rtc_srtp::recovery::{JitterBuffer, SendHistory};

use super::Connection;
use super::media::Plan;
use crate::desc::{Direction, StreamDescription, TrackDescription};
use crate::events::{ConnectionEvent, Event};
use crate::{StreamId, TrackId};

/// A stream: a named group of tracks sent or received together.
#[derive(Debug)]
pub(crate) struct Stream {
    pub(crate) id: StreamId,
    pub(crate) stream_id: String,
    pub(crate) direction: Direction,
    pub(crate) tracks: Vec<TrackId>,
}

/// Sending state of a local track.
#[derive(Debug)]
pub(crate) struct Sending {
    /// Media time (clock-rate units) of the next frame.
    pub(crate) media_time: u32,
    /// How frames go out, until the agreement, the sockets or the track's
    /// description change.
    pub(crate) plan: Option<Plan>,
    pub(crate) packetizer: Option<Packetizer>,
    /// VP8 PictureID to continue from when the packetizer is remade.
    pub(crate) picture_id: u16,
    pub(crate) csrcs: [u32; 15],
    pub(crate) ncsrc: u8,
    /// The RFC 6464 octet (V and the level in -dBov) of the next frames.
    pub(crate) audio_level: Option<u8>,
    /// Packets sent, for retransmission (made with the first packet sent
    /// under a plan that negotiated NACK).
    pub(crate) history: Option<SendHistory>,
    /// The next RTX sequence number (RFC 4588 section 4: its own space).
    pub(crate) rtx_seq: u16,
    /// Feedback received and retransmissions sent.
    pub(crate) feedback: FeedbackCounts,
    /// When the application was last told the peer wants a key frame.
    pub(crate) key_frame_told: Option<Instant>,
    /// The last FIR sequence number acted on (RFC 5104 section 4.3.1.2: a
    /// repeated number is the same request).
    pub(crate) last_fir: Option<u8>,
}

/// RTCP feedback and retransmissions of one track (webrtc-stats'
/// `nackCount`, `pliCount`, `firCount`, `retransmittedPackets*`): sent
/// for a received track, received for a sent one.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FeedbackCounts {
    pub(crate) nacks: u64,
    pub(crate) plis: u64,
    pub(crate) firs: u64,
    pub(crate) retransmitted: u64,
}

/// What feedback the payload type a track receives negotiated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Negotiated {
    pub(crate) nack: bool,
    pub(crate) pli: bool,
    pub(crate) fir: bool,
}

/// Receiving state of a remote track.
#[derive(Debug)]
pub(crate) struct Receiving {
    /// The payload type the depacketizer was made for, and the depacketizer.
    pub(crate) depacketizer: Option<(u8, Depacketizer)>,
    /// Video: restores order, asks for what is missing (made with the
    /// depacketizer).
    pub(crate) jitter: Option<Box<JitterBuffer>>,
    /// The feedback negotiated for the depacketizer's payload type.
    pub(crate) negotiated: Negotiated,
    /// A frame was lost: a key frame is wanted (PLI, else FIR).
    pub(crate) key_frame_wanted: bool,
    /// When a PLI or FIR last went out.
    pub(crate) key_frame_asked: Option<Instant>,
    /// The next FIR sequence number.
    pub(crate) fir_seq: u8,
    /// Feedback sent; retransmissions received.
    pub(crate) feedback: FeedbackCounts,
    /// `receive_stream(…, false)` turns delivery off.
    pub(crate) receiving: bool,
    /// TrackConnected fired (its first packet came).
    pub(crate) connected: bool,
    /// Frames handed out, and how long they waited (webrtc-stats).
    pub(crate) frame_stats: FrameStats,
}

/// A received track's frames: how many were handed out, and the time from
/// each one's first packet to its hand-out (webrtc-stats'
/// `framesReceived`, `jitterBufferDelay`, `jitterBufferEmittedCount`).
#[derive(Debug, Default)]
pub(crate) struct FrameStats {
    pub(crate) received: u64,
    pub(crate) delay: Duration,
    pub(crate) emitted: u64,
    /// The first arrival of each RTP timestamp not yet handed out (a few:
    /// the frames a jitter buffer holds at once; the oldest goes first).
    /// Boxed: a received track's state stays small.
    arrivals: Box<[(u32, Option<Instant>); FrameStats::PENDING]>,
}

impl FrameStats {
    const PENDING: usize = 16;

    /// A packet of the frame with RTP timestamp `ts` arrived.
    pub(crate) fn arrived(&mut self, now: Instant, ts: u32) {
        if self.arrivals.iter().any(|(t, at)| at.is_some() && *t == ts) {
            return;
        }
        let slot = match self.arrivals.iter().position(|(_, at)| at.is_none()) {
            Some(i) => i,
            None => (0..Self::PENDING).min_by_key(|&i| self.arrivals[i].1).unwrap_or(0),
        };
        self.arrivals[slot] = (ts, Some(now));
    }

    /// The frame with RTP timestamp `ts` was handed out: what waited for
    /// it counts, and frames before it are gone.
    pub(crate) fn emitted(&mut self, now: Instant, ts: u32) {
        self.received += 1;
        self.emitted += 1;
        for (t, at) in self.arrivals.iter_mut() {
            let Some(first) = *at else { continue };
            if *t == ts {
                self.delay += now.saturating_duration_since(first);
            }
            if *t == ts || (ts.wrapping_sub(*t) as i32) > 0 {
                *at = None;
            }
        }
    }
}

impl Receiving {
    pub(crate) fn new() -> Self {
        Self {
            depacketizer: None,
            jitter: None,
            negotiated: Negotiated::default(),
            key_frame_wanted: false,
            key_frame_asked: None,
            fir_seq: 0,
            feedback: FeedbackCounts::default(),
            receiving: true,
            connected: false,
            frame_stats: FrameStats::default(),
        }
    }
}

#[derive(Debug)]
pub(crate) enum State {
    Send(Box<Sending>),
    Receive(Receiving),
}

#[derive(Debug)]
pub(crate) struct Track {
    pub(crate) stream: StreamId,
    pub(crate) desc: TrackDescription,
    pub(crate) state: State,
}

impl Track {
    pub(crate) fn ssrc(&self) -> u32 {
        self.desc.ssrc.unwrap_or_default()
    }
}

/// A map kept as a vector: a connection has a handful of tracks, for which
/// a linear search beats hashing and a hash table's spare buckets cost more
/// memory than the entries.
#[derive(Debug)]
pub(crate) struct SmallMap<K, V>(Vec<(K, V)>);

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<K: PartialEq + Copy, V> SmallMap<K, V> {
    pub(crate) fn get(&self, k: &K) -> Option<&V> {
        self.0.iter().find(|(x, _)| x == k).map(|(_, v)| v)
    }

    pub(crate) fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        self.0.iter_mut().find(|(x, _)| x == k).map(|(_, v)| v)
    }

    pub(crate) fn contains_key(&self, k: &K) -> bool {
        self.get(k).is_some()
    }

    pub(crate) fn insert(&mut self, k: K, v: V) {
        match self.get_mut(&k) {
            Some(old) => *old = v,
            None => {
                self.0.reserve_exact(1);
                self.0.push((k, v));
            }
        }
    }

    pub(crate) fn remove(&mut self, k: &K) -> Option<V> {
        let i = self.0.iter().position(|(x, _)| x == k)?;
        Some(self.0.remove(i).1)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        self.0.retain(|(k, v)| keep(k, v));
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

/// Every stream and track of a connection.
#[derive(Debug, Default)]
pub(crate) struct Tracks {
    next: u32,
    pub(crate) streams: Vec<Stream>,
    pub(crate) tracks: SmallMap<TrackId, Track>,
    /// Remote tracks by SSRC (the receive path's lookup).
    pub(crate) remote_by_ssrc: SmallMap<u32, TrackId>,
    /// Local tracks by SSRC (unique per connection).
    pub(crate) local_by_ssrc: SmallMap<u32, TrackId>,
    /// Remote retransmission SSRCs (RFC 4588) → their media SSRCs.
    pub(crate) remote_rtx: SmallMap<u32, u32>,
}

impl Tracks {
    fn next_id(&mut self) -> u32 {
        self.next = self.next.wrapping_add(1);
        self.next
    }

    pub(crate) fn new_stream(&mut self, stream_id: String, direction: Direction) -> StreamId {
        let id = StreamId(self.next_id());
        self.streams.reserve_exact(1);
        self.streams.push(Stream { id, stream_id, direction, tracks: Vec::new() });
        id
    }

    pub(crate) fn stream(&self, id: StreamId) -> Option<&Stream> {
        self.streams.iter().find(|s| s.id == id)
    }

    pub(crate) fn stream_mut(&mut self, id: StreamId) -> Option<&mut Stream> {
        self.streams.iter_mut().find(|s| s.id == id)
    }

    pub(crate) fn stream_ids(&self, direction: Direction) -> Vec<StreamId> {
        self.streams.iter().filter(|s| s.direction == direction).map(|s| s.id).collect()
    }

    pub(crate) fn count(&self, direction: Direction) -> usize {
        match direction {
            Direction::Local => self.local_by_ssrc.len(),
            // Tracks still waiting for their SSRC count too.
            Direction::Remote => self.tracks.iter().filter(|(_, t)| matches!(t.state, State::Receive(_))).count(),
        }
    }

    /// Adds a track to a stream (the SSRC must be free in its direction).
    pub(crate) fn add(&mut self, stream: StreamId, desc: TrackDescription, state: State) -> TrackId {
        let id = TrackId(self.next_id());
        let ssrc = desc.ssrc.unwrap_or_default();
        match state {
            State::Send(_) => {
                self.local_by_ssrc.insert(ssrc, id);
            }
            // A remote track without an SSRC waits for its first packet.
            State::Receive(_) if desc.ssrc.is_none() => {}
            State::Receive(_) => {
                if let Some(rtx) = desc.rtx_ssrc.filter(|r| *r != ssrc) {
                    self.remote_rtx.insert(rtx, ssrc);
                }
                self.remote_by_ssrc.insert(ssrc, id);
            }
        }
        self.tracks.insert(id, Track { stream, desc, state });
        if let Some(s) = self.stream_mut(stream) {
            s.tracks.reserve_exact(1);
            s.tracks.push(id);
        }
        id
    }

    pub(crate) fn remove(&mut self, id: TrackId) -> Option<Track> {
        let t = self.tracks.remove(&id)?;
        let ssrc = t.ssrc();
        match t.state {
            State::Send(_) => self.local_by_ssrc.remove(&ssrc),
            State::Receive(_) if t.desc.ssrc.is_none() => None,
            State::Receive(_) => {
                self.remote_rtx.retain(|_, media| *media != ssrc);
                self.remote_by_ssrc.remove(&ssrc)
            }
        };
        if let Some(s) = self.stream_mut(t.stream) {
            s.tracks.retain(|x| *x != id);
        }
        Some(t)
    }

    /// The stream's description: its id and its tracks' descriptions.
    pub(crate) fn describe(&self, id: StreamId) -> Option<StreamDescription> {
        let s = self.stream(id)?;
        Some(StreamDescription {
            stream_id: s.stream_id.clone(),
            tracks: s.tracks.iter().filter_map(|t| self.tracks.get(t)).map(|t| t.desc.clone()).collect(),
        })
    }
}

impl Connection {
    pub(crate) fn stream_event(&mut self, stream: StreamId, up: bool) {
        let Some(s) = self.tracks.stream(stream) else { return };
        let (stream_id, direction) = (s.stream_id.clone(), s.direction);
        tracing::debug!(stream = %stream_id, ?direction, "stream {}", if up { "connected" } else { "disconnected" });
        let e = if up {
            ConnectionEvent::StreamConnected { stream_id, direction }
        } else {
            ConnectionEvent::StreamDisconnected { stream_id, direction }
        };
        self.push_event(Event::Connection(e));
    }

    pub(crate) fn track_event(&mut self, track: TrackId, up: bool) {
        let Some(t) = self.tracks.tracks.get(&track) else { return };
        let Some(s) = self.tracks.stream(t.stream) else { return };
        let (stream_id, track_id, ssrc, direction) =
            (s.stream_id.clone(), t.desc.track_id.clone(), t.ssrc(), s.direction);
        tracing::debug!(
            stream = %stream_id,
            track = %track_id,
            kind = ?t.desc.kind,
            ssrc,
            ?direction,
            "track {}",
            if up { "connected" } else { "disconnected" }
        );
        let e = if up {
            ConnectionEvent::TrackConnected { stream_id, track_id, ssrc, direction }
        } else {
            ConnectionEvent::TrackDisconnected { stream_id, track_id, ssrc, direction }
        };
        self.push_event(Event::Connection(e));
    }

    /// StreamConnected, then TrackConnected for each of its tracks.
    pub(crate) fn stream_up(&mut self, stream: StreamId) {
        self.stream_event(stream, true);
        for t in self.tracks.stream(stream).map(|s| s.tracks.clone()).unwrap_or_default() {
            self.track_event(t, true);
        }
    }

    /// TrackDisconnected for each track, then StreamDisconnected.
    pub(crate) fn stream_down(&mut self, stream: StreamId) {
        for t in self.tracks.stream(stream).map(|s| s.tracks.clone()).unwrap_or_default() {
            self.track_event(t, false);
        }
        self.stream_event(stream, false);
    }

    /// Every connected remote track disconnects, then their streams.
    pub(crate) fn remote_all_down(&mut self) {
        let mut downs = Vec::new();
        let mut streams: Vec<StreamId> = Vec::new();
        for s in self.tracks.streams.iter().filter(|s| s.direction == Direction::Remote) {
            for id in &s.tracks {
                if let Some(Track { state: State::Receive(r), .. }) = self.tracks.tracks.get_mut(id)
                    && r.connected
                {
                    r.connected = false;
                    downs.push(*id);
                    if !streams.contains(&s.id) {
                        streams.push(s.id);
                    }
                }
            }
        }
        for t in downs {
            self.track_event(t, false);
        }
        for s in streams {
            self.stream_event(s, false);
        }
    }

    /// A remote track's first packet: TrackConnected, after StreamConnected
    /// when it is the first of its stream.
    pub(crate) fn remote_track_up(&mut self, track: TrackId) {
        let Some(t) = self.tracks.tracks.get_mut(&track) else { return };
        let State::Receive(r) = &mut t.state else { return };
        if r.connected {
            return;
        }
        r.connected = true;
        let stream = t.stream;
        let first = self.tracks.stream(stream).is_some_and(|s| {
            !s.tracks.iter().any(|o| {
                *o != track
                    && matches!(self.tracks.tracks.get(o), Some(Track { state: State::Receive(r), .. }) if r.connected)
            })
        });
        if first {
            self.stream_event(stream, true);
        }
        self.track_event(track, true);
    }

    /// A new remote description (a renegotiation, say) no longer lists
    /// tracks the one `before` it listed: they leave (TrackDisconnected
    /// while they flowed), and a stream left without tracks leaves too
    /// (StreamDisconnected). Streams no description listed (unsignaled
    /// SSRCs, streams the application registered) are not touched.
    pub(crate) fn remote_tracks_gone(
        &mut self,
        before: &crate::desc::ConnectionDescription,
        now: &crate::desc::ConnectionDescription,
    ) {
        let listed = |ssrc: u32| now.streams.iter().flat_map(|s| &s.tracks).any(|t| t.ssrc == Some(ssrc));
        // A track announced without an SSRC (a simulcast layer, say) is
        // known by its stream and track id.
        let named = |stream: &str, track: &str| {
            now.streams.iter().any(|s| s.stream_id == stream && s.tracks.iter().any(|t| t.track_id == track))
        };
        for old in &before.streams {
            let Some(stream) = self
                .tracks
                .streams
                .iter()
                .find(|s| s.direction == Direction::Remote && s.stream_id == old.stream_id)
                .map(|s| s.id)
            else {
                continue;
            };
            let mut flowed = false;
            let gone: Vec<TrackId> = old
                .tracks
                .iter()
                .filter_map(|t| match t.ssrc {
                    Some(ssrc) if !listed(ssrc) => self.tracks.remote_by_ssrc.get(&ssrc).copied(),
                    None if !named(&old.stream_id, &t.track_id) => self.tracks.stream(stream).and_then(|s| {
                        s.tracks
                            .iter()
                            .copied()
                            .find(|id| self.tracks.tracks.get(id).is_some_and(|x| x.desc.track_id == t.track_id))
                    }),
                    _ => None,
                })
                .collect();
            for id in gone {
                if self.tracks.tracks.get(&id).is_none_or(|t| t.stream != stream) {
                    continue;
                }
                let ssrc = self.tracks.tracks.get(&id).and_then(|t| t.desc.ssrc);
                if matches!(self.tracks.tracks.get(&id).map(|t| &t.state), Some(State::Receive(r)) if r.connected) {
                    self.track_event(id, false);
                    flowed = true;
                }
                tracing::debug!(ssrc = ?ssrc, stream = %old.stream_id, "remote track gone from the description");
                self.tracks.remove(id);
            }
            if self.tracks.stream(stream).is_some_and(|s| s.tracks.is_empty()) {
                if flowed {
                    self.stream_event(stream, false);
                }
                self.tracks.streams.retain(|s| s.id != stream);
            }
        }
    }

    /// The remote track still without an SSRC that a packet's MID (RFC
    /// 8843 section 9.2) and RtpStreamId (RFC 8852 section 3.1) name, now
    /// taking `ssrc`: the track of that section with that `rid` (a
    /// section's track without a `rid` takes any).
    pub(crate) fn bind_by_mid(
        &mut self,
        ssrc: u32,
        kind: rtc_codecs::Kind,
        mid: &[u8],
        rid: Option<&[u8]>,
    ) -> Option<TrackId> {
        let id = self
            .tracks
            .tracks
            .iter()
            .filter(|(_, t)| {
                t.desc.ssrc.is_none()
                    && t.desc.kind == kind
                    && matches!(t.state, State::Receive(_))
                    && t.desc.mid.as_deref().is_some_and(|m| m.as_bytes() == mid)
                    && t.desc.rid.as_deref().is_none_or(|r| Some(r.as_bytes()) == rid)
            })
            .map(|(id, _)| *id)
            .min()?;
        let t = self.tracks.tracks.get_mut(&id)?;
        t.desc.ssrc = Some(ssrc);
        tracing::debug!(ssrc, track = %t.desc.track_id, mid = ?t.desc.mid, rid = ?t.desc.rid, "a track takes the SSRC its MID and RID name");
        self.tracks.remote_by_ssrc.insert(ssrc, id);
        Some(id)
    }

    /// The media SSRC a retransmission SSRC repairs, by the packet's MID
    /// and RepairedRtpStreamId (RFC 8852 section 3.2): the one remote
    /// layer of that `rid` (in that section, when the MID is there).
    pub(crate) fn repaired_by_rid(&self, mid: Option<&[u8]>, rrid: &[u8]) -> Option<u32> {
        let mut found = self.tracks.tracks.iter().filter(|(_, t)| {
            matches!(t.state, State::Receive(_))
                && t.desc.rid.as_deref().is_some_and(|r| r.as_bytes() == rrid)
                && mid.is_none_or(|mid| t.desc.mid.as_deref().is_some_and(|m| m.as_bytes() == mid))
        });
        let one = found.next().and_then(|(_, t)| t.desc.ssrc);
        if found.next().is_some() { None } else { one }
    }

    /// The first remote track of `kind` still without an SSRC (announced
    /// by a description that gave none), now taking `ssrc`.
    pub(crate) fn bind_pending(&mut self, ssrc: u32, kind: rtc_codecs::Kind) -> Option<TrackId> {
        let id = self
            .tracks
            .tracks
            .iter()
            .filter(|(_, t)| t.desc.ssrc.is_none() && t.desc.kind == kind && matches!(t.state, State::Receive(_)))
            .map(|(id, _)| *id)
            .min()?;
        let t = self.tracks.tracks.get_mut(&id)?;
        t.desc.ssrc = Some(ssrc);
        tracing::debug!(ssrc, track = %t.desc.track_id, ?kind, "a track announced without an SSRC takes this one");
        self.tracks.remote_by_ssrc.insert(ssrc, id);
        Some(id)
    }

    /// Registers a remote stream from its description; a track without an
    /// SSRC waits for the first unannounced one of its kind. Counted
    /// against [`Limits`](crate::Limits).
    pub(crate) fn add_remote_stream(&mut self, s: &StreamDescription) -> Result<StreamId, crate::Error> {
        if self.tracks.streams.iter().filter(|x| x.direction == Direction::Remote).count() >= self.limits.remote_streams
        {
            return Err(crate::Error::LimitReached("remote streams"));
        }
        if self.tracks.count(Direction::Remote) + s.tracks.len() > self.limits.remote_tracks {
            return Err(crate::Error::LimitReached("remote tracks"));
        }
        let id = self.tracks.new_stream(s.stream_id.clone(), Direction::Remote);
        for t in &s.tracks {
            if t.ssrc.is_some_and(|ssrc| self.tracks.remote_by_ssrc.contains_key(&ssrc)) {
                continue;
            }
            self.tracks.add(id, t.clone(), State::Receive(Receiving::new()));
        }
        Ok(id)
    }
}
