//! Media: frames written are queued once and packetized and protected
//! straight into the caller's transmit buffer; received SRTP is
//! unprotected in place, depacketized, and complete frames wait in a
//! bounded queue for [`Connection::poll_frame`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rtc_candidate::Component;
use rtc_codecs::Kind;
use rtc_payload::{Depacketizer, Format, PacketInfo, Packetizer};
use rtc_srtp::session::SessionEvent;
use rtc_srtp::{Extension, RtpHeader, RtpPacket};

use super::tracks::State;
use super::{Connection, DropReason, FrameInfo, Receive, Transmit};
use super::{extensions, recovery};
use crate::desc::{Direction, StreamDescription, TrackDescription};
use crate::error::Error;
use crate::events::{ConnectionEvent, Event};
use crate::{StreamId, TrackId};

/// How a local track's frames go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) pt: u8,
    pub(crate) clock: u32,
    pub(crate) format: Format,
    /// Index into the connection's transports.
    pub(crate) transport: usize,
    /// The connection's plan generation it was made in.
    pub(crate) generation: u64,
    /// NACK negotiated: packets are kept for retransmission.
    pub(crate) nack: bool,
    /// The RTX payload type retransmissions go out with, if negotiated.
    pub(crate) rtx: Option<u8>,
    /// The track's section `mid` for the MID extension (RFC 8843 section
    /// 15), when negotiated and the track is in an SDP section.
    pub(crate) mid: Tag,
    /// The track's `rid` for the RtpStreamId extension (RFC 8852), when
    /// negotiated and the track is a simulcast layer.
    pub(crate) rid: Tag,
}

/// A short identifier sent in a header extension (a `mid` or `rid`, at
/// most 16 octets: the one-byte form's limit), kept inline so that
/// writing it costs no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Tag {
    bytes: [u8; 16],
    len: u8,
}

impl Tag {
    /// `s` when it fits; nothing (an empty tag) otherwise.
    pub(crate) fn new(s: Option<&str>) -> Self {
        let mut t = Self::default();
        if let Some(s) = s.filter(|s| (1..=16).contains(&s.len())) {
            t.bytes[..s.len()].copy_from_slice(s.as_bytes());
            t.len = s.len() as u8;
        }
        t
    }

    /// The identifier, if any.
    pub(crate) fn get(&self) -> Option<&[u8]> {
        (self.len > 0).then(|| &self.bytes[..usize::from(self.len)])
    }
}

/// A frame written and not yet fully packetized.
#[derive(Debug)]
struct Outgoing {
    track: TrackId,
    ssrc: u32,
    plan: Plan,
    media_time: u32,
    csrcs: [u32; 15],
    ncsrc: u8,
    /// The RFC 6464 octet its packets carry, if any.
    audio_level: Option<u8>,
    frame: Vec<u8>,
    begun: bool,
}

/// Frames waiting to be sent, and buffers to reuse.
#[derive(Debug, Default)]
pub(crate) struct SendQueue {
    queue: VecDeque<Outgoing>,
    spare: Vec<Vec<u8>>,
    bytes: usize,
    /// Frames dropped because the path or keys went away before they left.
    pub(crate) dropped: u64,
    /// Packets the peer asked for again (track, sequence number).
    pub(crate) resend: VecDeque<(TrackId, u16)>,
}

impl SendQueue {
    fn recycle(&mut self, mut frame: Vec<u8>) {
        self.bytes = self.bytes.saturating_sub(frame.len());
        if self.spare.len() < SPARE_BUFFERS {
            frame.clear();
            self.spare.push(frame);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Octets of the frames queued.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Drops every queued frame (the connection closed).
    pub(crate) fn clear(&mut self) {
        while let Some(o) = self.queue.pop_front() {
            self.recycle(o.frame);
        }
        self.resend = VecDeque::new();
    }
}

/// Buffers kept for reuse by each queue.
const SPARE_BUFFERS: usize = 8;

/// Received frames waiting for [`Connection::poll_frame`], and buffers to
/// swap in.
#[derive(Debug, Default)]
pub(crate) struct FrameQueue {
    queue: VecDeque<(FrameInfo, Vec<u8>)>,
    spare: Vec<Vec<u8>>,
    bytes: usize,
    /// Frames dropped because the queue was full.
    pub(crate) dropped: u64,
}

impl FrameQueue {
    /// Takes a completed frame out of the depacketizer's buffer by swapping
    /// a spare one in: no copy, and no allocation once buffers circulate.
    pub(crate) fn push(&mut self, info: FrameInfo, data: &mut Vec<u8>, frames: usize, bytes: usize) {
        if self.queue.len() >= frames || self.bytes + data.len() > bytes {
            self.dropped += 1;
            return;
        }
        // The roomiest spare goes back to the depacketizer: buffers settle at
        // the size of the largest frames instead of growing again.
        let roomiest = (0..self.spare.len()).max_by_key(|&i| self.spare[i].capacity());
        let mut buf = roomiest.map(|i| self.spare.swap_remove(i)).unwrap_or_default();
        std::mem::swap(&mut buf, data);
        self.bytes += buf.len();
        self.queue.push_back((info, buf));
    }

    pub(crate) fn pop(&mut self, out: &mut Vec<u8>) -> Option<FrameInfo> {
        let (info, mut buf) = self.queue.pop_front()?;
        self.bytes = self.bytes.saturating_sub(buf.len());
        std::mem::swap(out, &mut buf);
        if self.spare.len() < SPARE_BUFFERS {
            buf.clear();
            self.spare.push(buf);
        }
        Some(info)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// Media-clock ticks of `d` at `clock` Hz.
fn ticks(d: Duration, clock: u32) -> u32 {
    ((d.as_secs_f64() * f64::from(clock)).round() as u64) as u32
}

impl Connection {
    /// The packetization of a codec.
    pub(crate) fn format_of(codec: &rtc_codecs::Codec) -> Option<Format> {
        Format::for_codec(&codec.name, codec.kind == Kind::Audio, |k| codec.parameters.get(k))
    }

    /// Queues one encoded frame of a local track, to go out of
    /// [`Connection::poll_transmit`] as RTP packets; returns how many.
    pub(crate) fn queue_frame(&mut self, track: TrackId, frame: &[u8], duration: Duration) -> Result<usize, Error> {
        if self.closed {
            return Err(Error::Closed);
        }
        let generation = self.plan_gen;
        if let Some(&(_, why)) = self.held_layers.iter().find(|(t, _)| *t == track) {
            return Err(Error::NotConnected(why));
        }
        let t = self.tracks.tracks.get(&track).ok_or(Error::Unknown("track"))?;
        let State::Send(s) = &t.state else {
            return Err(Error::InvalidOptions("frames are written to sent tracks only".into()));
        };
        let plan = match s.plan.filter(|p| p.generation == generation) {
            Some(p) => p,
            None => {
                let desc = t.desc.clone();
                if !self.sdp_sections.is_empty() && self.mid_of(track).is_none() {
                    // SDP placed the sent tracks in the sections of the
                    // exchange, and none carries this one (the offer had
                    // no more sections of its kind, or they were rejected).
                    return Err(Error::NotConnected("no section of the SDP exchange carries this track"));
                }
                let (pt, clock, format) = self.send_codec(&desc)?;
                let transport = self.transport_for(&desc).ok_or(Error::NotConnected("no socket carries this track"))?;
                let codecs = self.agreement.as_ref().map_or(&[][..], |a| &a.codecs[..]);
                let codec = codecs.iter().find(|c| c.payload_id.get() == pt);
                let nack = codec.is_some_and(|c| recovery::negotiated(c).nack);
                let rtx = if nack { recovery::rtx_for(codecs, pt) } else { None };
                let ids = self.ext_ids(desc.kind);
                let mid = Tag::new(self.mid_of(track).filter(|_| ids.mid.is_some()));
                let rid = Tag::new(desc.rid.as_deref().filter(|_| ids.rid.is_some()));
                Plan { pt, clock, format, transport, generation, nack, rtx, mid, rid }
            }
        };
        if self.session.is_none() {
            return Err(Error::NotConnected("no remote description yet"));
        }
        let tr = &self.transports[plan.transport];
        if tr.agent.path(Component::RTP).is_none() {
            return Err(Error::NotConnected("no selected ICE pair with consent"));
        }
        if tr.tx.is_none() {
            return Err(Error::NotConnected("SRTP is not keyed"));
        }
        // Checked before anything is queued: a refusal half-way would leave
        // packets of this frame under the next frame's timestamp.
        let count = Packetizer::new(plan.format, self.max_payload, 0).begin(frame)?;
        if self.send.bytes + frame.len() > self.limits.send_bytes {
            return Err(Error::LimitReached("octets of frames queued for sending"));
        }
        let max_payload = self.max_payload;
        let Some(t) = self.tracks.tracks.get_mut(&track) else { return Err(Error::Unknown("track")) };
        let ssrc = t.ssrc();
        let State::Send(s) = &mut t.state else { return Err(Error::Unknown("track")) };
        if s.packetizer.as_ref().is_none_or(|p| p.format() != plan.format) {
            s.packetizer = Some(Packetizer::new(plan.format, max_payload, s.picture_id));
        }
        s.plan = Some(plan);
        let mut buf = self.send.spare.pop().unwrap_or_default();
        buf.extend_from_slice(frame);
        self.send.bytes += buf.len();
        self.send.queue.push_back(Outgoing {
            track,
            ssrc,
            plan,
            media_time: s.media_time,
            csrcs: s.csrcs,
            ncsrc: s.ncsrc,
            audio_level: s.audio_level,
            frame: buf,
            begun: false,
        });
        s.media_time = s.media_time.wrapping_add(ticks(duration, plan.clock));
        Ok(count)
    }

    /// The next RTP packet of the queued frames, written and protected in
    /// `buf`. With a bandwidth estimate, video is paced (see
    /// [`pacer`](super::pacer)): while the pacer holds it back, audio frames
    /// queued behind it go first.
    pub(crate) fn poll_media(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let rate = self.pacing_rate();
        if let Some(rate) = rate {
            self.pacer.refill(now, rate);
        }
        loop {
            let held = rate.is_some() && !self.pacer.allows();
            let Connection { send, tracks, transports, session, limits, ext_ids, twcc_seq, bwe, pacer, .. } = self;
            let i = if held { send.queue.iter().position(|o| o.plan.format == Format::Audio)? } else { 0 };
            let out = send.queue.get_mut(i)?;
            let usable = tracks.tracks.get_mut(&out.track).and_then(|t| {
                let kind = t.desc.kind;
                match &mut t.state {
                    State::Send(s) => Some((s, kind)),
                    State::Receive(_) => None,
                }
            });
            let transport = transports.get_mut(out.plan.transport);
            let (Some((s, kind)), Some(t), Some(session)) = (usable, transport, session.as_mut()) else {
                self.drop_frame(i);
                continue;
            };
            let (Some(path), Some(tx)) = (t.agent.path(Component::RTP), t.tx.as_mut()) else {
                self.drop_frame(i);
                continue;
            };
            let Some(p) = s.packetizer.as_mut() else {
                self.drop_frame(i);
                continue;
            };
            if !out.begun && session.announce(now, out.ssrc) {
                // The stream's first packet: an SR for it goes first
                // (see rtc_srtp::session::Session::announce).
                if let Some(t) = self.poll_rtcp(now, buf) {
                    return Some(t);
                }
                continue;
            }
            if !out.begun {
                if p.format() != out.plan.format || p.begin(&out.frame).is_err() {
                    self.drop_frame(i);
                    continue;
                }
                out.begun = true;
                s.picture_id = s.picture_id.wrapping_add(1) & 0x7fff;
            }
            let csrcs = &out.csrcs[..usize::from(out.ncsrc)];
            // The negotiated extensions: abs-send-time, the transport-wide
            // sequence number, the MID and the RtpStreamId.
            let ids = ext_ids[usize::from(kind == Kind::Video)];
            let abs = extensions::abs_send_time(session.ntp_time(now));
            let seq = twcc_seq.to_be_bytes();
            let level = out.audio_level.map(|l| [l]);
            let mut ext = [Extension { id: 0, data: &[] }; 5];
            let mut n_ext = 0;
            for (id, data) in [
                (ids.abs_send_time, Some(&abs[..])),
                (ids.transport_cc, Some(&seq[..])),
                (ids.mid, out.plan.mid.get()),
                (ids.rid, out.plan.rid.get()),
                (ids.audio_level.filter(|_| kind == Kind::Audio), level.as_ref().map(|l| &l[..])),
            ] {
                if let (Some(id), Some(data)) = (id, data) {
                    ext[n_ext] = Extension { id, data };
                    n_ext += 1;
                }
            }
            let exts = &ext[..n_ext];
            let hlen = RtpHeader { csrcs, extensions: exts, ..RtpHeader::default() }.header_len().unwrap_or(usize::MAX);
            let end = buf.len().saturating_sub(tx.profile().rtp_tag_len());
            let Some(payload) = buf.get_mut(hlen..end).and_then(|room| p.next(&out.frame, room)) else {
                if let Some(o) = send.queue.remove(i) {
                    send.recycle(o.frame);
                }
                continue;
            };
            let written = session.write_rtp_header(
                now,
                out.ssrc,
                out.plan.pt,
                payload.marker,
                out.media_time,
                csrcs,
                exts,
                payload.len,
                buf,
            );
            let sent_seq = ids.transport_cc.filter(|_| written.is_ok()).map(|_| *twcc_seq);
            if sent_seq.is_some() {
                *twcc_seq = twcc_seq.wrapping_add(1);
            }
            if out.plan.nack
                && let Ok(n) = written
            {
                Self::record_sent(&mut s.history, limits, now, &buf[..n]);
            }
            let Ok(n) = written.and_then(|n| tx.protect_rtp(buf, n)) else {
                self.drop_frame(i);
                continue;
            };
            Self::on_sent(bwe, now, sent_seq, n);
            if rate.is_some() {
                pacer.consume(n);
            }
            if payload.marker {
                // The frame's last packet: its buffer can be reused now.
                if let Some(o) = send.queue.remove(i) {
                    send.recycle(o.frame);
                }
            }
            return Some(Transmit::on(t.id, path, n));
        }
    }

    fn drop_frame(&mut self, i: usize) {
        if let Some(o) = self.send.queue.remove(i) {
            self.send.dropped += 1;
            self.send.recycle(o.frame);
        }
    }

    /// One SRTP or SRTCP datagram that came over transport `ti`, unprotected
    /// in place.
    pub(crate) fn receive_media(&mut self, now: Instant, ti: usize, component: Component, data: &mut [u8]) -> Receive {
        // RFC 5761 section 4: with mux, payload types 64-95 (with the
        // marker bit, 192-223 in the second octet) are RTCP.
        let rtcp = component == Component::RTCP || data.get(1).is_some_and(|b| (192..=223).contains(b));
        let Connection { transports, session, .. } = self;
        let (Some(rx), Some(session)) = (transports[ti].rx.as_mut(), session.as_mut()) else {
            return self.drop_with(DropReason::NotKeyed);
        };
        if rtcp {
            let Ok(n) = rx.unprotect_rtcp(data) else { return self.drop_with(DropReason::Srtp) };
            let ok = session.handle_rtcp(now, &data[..n]).is_ok();
            self.session_events();
            if ok {
                self.handle_feedback(now, &data[..n]);
            }
            return if ok { Receive::Rtcp } else { self.drop_with(DropReason::Rtcp) };
        }
        let Ok(n) = rx.unprotect_rtp(data) else { return self.drop_with(DropReason::Srtp) };
        let packet = &data[..n];
        let Ok(p) = RtpPacket::new_checked(packet) else { return self.drop_with(DropReason::Rtp) };
        let ssrc = p.ssrc();
        self.record_arrival(now, &p);
        if let Some(apt) = self.rtx_apt(p.payload_type()) {
            return self.receive_rtx(now, ssrc, apt, packet);
        }
        if !self.tracks.remote_by_ssrc.contains_key(&ssrc) {
            let kind = self.codec_by_pt(p.payload_type()).map(|c| c.kind);
            // RFC 8843 section 9.2, RFC 8852: the packet's MID and
            // RtpStreamId name its track; else the first waiting track of
            // its kind.
            let pending = kind.and_then(|k| {
                let ids = self.ext_ids(k);
                let (mid, rid) = (extensions::find(&p, ids.mid), extensions::find(&p, ids.rid));
                mid.and_then(|mid| self.bind_by_mid(ssrc, k, mid, rid)).or_else(|| self.bind_pending(ssrc, k))
            });
            if pending.is_none() && self.add_unsignaled(ssrc, p.payload_type()).is_err() {
                return self.drop_with(DropReason::TooManyTracks);
            }
        }
        let Some(session) = self.session.as_mut() else { return self.drop_with(DropReason::NotKeyed) };
        if session.handle_rtp(now, packet).is_err() {
            return self.drop_with(DropReason::Rtp);
        }
        self.session_events();
        let Some(&track) = self.tracks.remote_by_ssrc.get(&ssrc) else { return Receive::Rtp { track: None } };
        let pt = p.payload_type();
        let level = extensions::find(&p, self.ext_ids(Kind::Audio).audio_level)
            .filter(|_| self.codec_by_pt(pt).is_some_and(|c| c.kind == Kind::Audio))
            .and_then(|d| d.first())
            .map(|b| b & 0x7f);
        let Connection { tracks, frames, limits, agreement, .. } = self;
        let Some(State::Receive(r)) = tracks.tracks.get_mut(&track).map(|t| &mut t.state) else {
            return Receive::Rtp { track: Some(track) };
        };
        if !r.receiving {
            return Receive::Rtp { track: Some(track) };
        }
        if r.depacketizer.as_ref().is_none_or(|(p, _)| *p != pt) {
            // The payload format is looked up only when the payload type changes.
            let codec = agreement.as_ref().and_then(|a| a.codecs.iter().find(|c| c.payload_id.get() == pt));
            let (Some(codec), Some(format)) = (codec, codec.and_then(Self::format_of)) else {
                return self.drop_with(DropReason::PayloadType);
            };
            r.depacketizer = Some((pt, Depacketizer::new(format, limits.max_frame)));
            Self::prepare_receiving(r, codec, format != Format::Audio, limits);
        }
        let info = PacketInfo { sequence_number: p.sequence_number(), timestamp: p.timestamp(), marker: p.marker() };
        recovery::deliver(now, (track, ssrc, level), r, info, p.payload(), frames, limits);
        Receive::Rtp { track: Some(track) }
    }

    /// The `apt` of `pt` when it is an agreed RTX payload type.
    fn rtx_apt(&self, pt: u8) -> Option<u8> {
        let codec = self.agreement.as_ref()?.codecs.iter().find(|c| c.payload_id.get() == pt)?;
        if !codec.is("rtx") {
            return None;
        }
        codec.parameters.get("apt").and_then(|v| v.trim().parse().ok())
    }

    /// A stream the remote description did not announce: one track per
    /// SSRC, named after it, within [`Limits`](crate::Limits).
    fn add_unsignaled(&mut self, ssrc: u32, pt: u8) -> Result<StreamId, Error> {
        let kind = self.codec_by_pt(pt).map_or(Kind::Video, |c| c.kind);
        tracing::debug!(ssrc, pt, ?kind, "media from an SSRC no description announced: a remote stream made for it");
        let desc = TrackDescription {
            track_id: format!("ssrc-{ssrc}"),
            socket_id: None,
            ssrc: Some(ssrc),
            rtx_ssrc: None,
            kind,
            options: None,
            rid: None,
            mid: None,
        };
        self.add_remote_stream(&StreamDescription { stream_id: format!("ssrc-{ssrc}"), tracks: vec![desc] })
    }

    /// The RTP session's news: a remote track's first packet, a CSRC change,
    /// a BYE.
    pub(crate) fn session_events(&mut self) {
        while let Some(e) = self.session.as_mut().and_then(rtc_srtp::session::Session::poll_event) {
            match e {
                SessionEvent::NewStream { ssrc } => {
                    if let Some(&t) = self.tracks.remote_by_ssrc.get(&ssrc) {
                        self.remote_track_up(t);
                    }
                }
                SessionEvent::ContributorsChanged { ssrc, csrcs } => {
                    let Some(t) = self.tracks.remote_by_ssrc.get(&ssrc).and_then(|t| self.tracks.tracks.get(t)) else {
                        continue;
                    };
                    let Some(s) = self.tracks.stream(t.stream) else { continue };
                    let e = ConnectionEvent::TrackContributors {
                        stream_id: s.stream_id.clone(),
                        track_id: t.desc.track_id.clone(),
                        contributors: csrcs,
                    };
                    self.push_event(Event::Connection(e));
                }
                SessionEvent::Bye { ssrc } => {
                    let Some(&id) = self.tracks.remote_by_ssrc.get(&ssrc) else { continue };
                    if let Some(State::Receive(r)) = self.tracks.tracks.get_mut(&id).map(|t| &mut t.state)
                        && r.connected
                    {
                        r.connected = false;
                        self.track_event(id, false);
                    }
                }
                _ => {}
            }
        }
    }

    /// Turns delivery of a remote stream's tracks on or off; a stream the
    /// remote description did not list is registered by its tracks' SSRCs.
    pub(crate) fn set_receiving(&mut self, stream: &StreamDescription, receive: bool) -> Result<(), Error> {
        let known =
            self.tracks.streams.iter().any(|s| s.direction == Direction::Remote && s.stream_id == stream.stream_id);
        if !known {
            if !receive {
                return Ok(());
            }
            self.add_remote_stream(stream)?;
        }
        let ids: Vec<TrackId> = if stream.tracks.is_empty() {
            self.tracks
                .streams
                .iter()
                .filter(|s| s.direction == Direction::Remote && s.stream_id == stream.stream_id)
                .flat_map(|s| s.tracks.iter().copied())
                .collect()
        } else {
            stream
                .tracks
                .iter()
                .filter_map(|t| t.ssrc)
                .filter_map(|s| self.tracks.remote_by_ssrc.get(&s).copied())
                .collect()
        };
        for id in ids {
            if let Some(State::Receive(r)) = self.tracks.tracks.get_mut(&id).map(|t| &mut t.state) {
                r.receiving = receive;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Finding 5 of the hostile-peer review: received frames were capped in
    /// number (512), not octets, so frames of up to 4 MiB could hold 2 GiB
    /// per track. The queue now also stops at `bytes`: what would pass it
    /// is dropped and counted, and what is popped makes room again.
    #[test]
    fn received_frames_are_capped_in_octets() {
        let mut q = FrameQueue::default();
        let info = FrameInfo { track: TrackId(1), ssrc: 7, timestamp: 0, key_frame: true, audio_level: None };
        let (frames, bytes) = (512, 8 << 20);
        for _ in 0..4 {
            let mut frame = vec![0u8; 3 << 20];
            q.push(info, &mut frame, frames, bytes);
        }
        assert_eq!((q.queue.len(), q.dropped), (2, 2));
        assert!(q.bytes <= bytes);
        let mut out = Vec::new();
        assert!(q.pop(&mut out).is_some());
        assert_eq!(out.len(), 3 << 20);
        let mut frame = vec![1u8; 3 << 20];
        q.push(info, &mut frame, frames, bytes);
        assert_eq!((q.queue.len(), q.dropped), (2, 2), "room again after a pop");
    }
}
