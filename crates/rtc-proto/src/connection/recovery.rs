//! Loss recovery: NACK (RFC 4585 section 6.2.1) and retransmission, on the
//! media SSRC or on its own (RTX, RFC 4588); key frame requests (PLI, RFC
//! 4585 section 6.3.1, and FIR, RFC 5104 section 4.3.1) sent when a frame
//! is lost and surfaced to the application when the peer asks; received
//! video through a jitter buffer that waits for retransmissions.
//!
//! What is used follows the agreement: a payload type with `nack` is
//! retransmitted and asked for, `nack pli` and `ccm fir` ask for key
//! frames, an `rtx` codec whose `apt` is the payload type carries the
//! retransmissions when the track has an RTX SSRC.

use std::time::{Duration, Instant};

use rtc_codecs::Codec;
use rtc_srtp::RtpPacket;
use rtc_srtp::recovery::{JitterBuffer, JitterConfig, Push, SendHistory};
use rtc_srtp::rtcp::{Compound, Rtcp, Writer};

use super::tracks::{Negotiated, Receiving, State};
use super::{Connection, FrameInfo, FrameQueue, Limits, Receive, Transmit};
use crate::TrackId;
use crate::events::{ConnectionEvent, Event};
use rtc_payload::{Depacketizer, PacketInfo};

/// Retransmissions asked for and not yet sent, at most.
pub(crate) const RESEND_QUEUE: usize = 1024;
/// The round-trip time assumed until RTCP measures one.
const DEFAULT_RTT: Duration = Duration::from_millis(100);
/// Packets kept for retransmission are no older than this.
const HISTORY_AGE: Duration = Duration::from_secs(1);
/// The application hears of key frame requests at most this often per
/// track; PLI/FIR go out at most this often per track (or once per two
/// round trips, if longer).
const KEY_FRAME_INTERVAL: Duration = Duration::from_millis(250);

/// The feedback `codec` negotiated.
pub(crate) fn negotiated(codec: &Codec) -> Negotiated {
    let has = |kind: &str, param: Option<&str>| {
        codec
            .rtcp_feedback
            .iter()
            .any(|f| f.kind.eq_ignore_ascii_case(kind) && f.parameter.as_deref().map(str::trim) == param)
    };
    Negotiated { nack: has("nack", None), pli: has("nack", Some("pli")), fir: has("ccm", Some("fir")) }
}

/// The RTX payload type of `codecs` whose `apt` is `pt`.
pub(crate) fn rtx_for(codecs: &[Codec], pt: u8) -> Option<u8> {
    codecs.iter().find(|c| c.is("rtx") && apt(c) == Some(pt)).map(|c| c.payload_id.get())
}

fn apt(c: &Codec) -> Option<u8> {
    c.parameters.get("apt").and_then(|v| v.trim().parse().ok())
}

/// How long a jitter buffer waits for a missing packet when it can be
/// asked for again: a round trip for each request it may take, and a
/// margin. A request fails when the NACK or the retransmission is lost,
/// with `loss` the share of packets the link loses: as many round trips as
/// bring what is still missing under 1% (three at least, six at most: 3 at
/// 5% loss, 5 at 20%). Without NACK, a reordering allowance.
fn max_wait(nack: bool, rtt: Duration, loss: f64) -> Duration {
    if !nack {
        return Duration::from_millis(40);
    }
    let fail = 1.0 - (1.0 - loss.clamp(0.0, 0.5)).powi(2);
    let tries = if fail > 0.0 { (0.01f64.ln() / fail.ln()).ceil() } else { 3.0 };
    let tries = tries.clamp(3.0, 6.0) as u32;
    (rtt * tries + Duration::from_millis(40)).clamp(Duration::from_millis(80), Duration::from_secs(1))
}

/// Takes one packet of a received track through its jitter buffer (video)
/// into its depacketizer; complete frames go to `frames`. Marks a key
/// frame wanted when a frame is lost, and not once one arrives.
pub(crate) fn deliver(
    now: Instant,
    (track, ssrc, audio_level): (TrackId, u32, Option<u8>),
    r: &mut Receiving,
    info: PacketInfo,
    payload: &[u8],
    frames: &mut FrameQueue,
    limits: &Limits,
) {
    let Receiving { depacketizer: Some((_, d)), jitter, key_frame_wanted, frame_stats, .. } = r else { return };
    let before = d.discarded();
    let mut key = false;
    let (max_frames, max_bytes) = (limits.frames_queued, limits.frame_bytes);
    frame_stats.arrived(now, info.timestamp);
    let mut out = |f: rtc_payload::FrameInfo, data: &mut Vec<u8>| {
        key |= f.key_frame;
        frame_stats.emitted(now, f.timestamp);
        let info = FrameInfo { track, ssrc, timestamp: f.timestamp, key_frame: f.key_frame, audio_level };
        frames.push(info, data, max_frames, max_bytes);
    };
    match jitter {
        Some(j) => {
            if j.push(now, info.sequence_number, info.timestamp, info.marker, 0, payload) == Push::Deliver {
                d.push(info, payload, &mut out);
            }
            drain(now, j, d, &mut out);
        }
        None => d.push(info, payload, &mut out),
    }
    if key {
        *key_frame_wanted = false;
    }
    if d.discarded() > before {
        *key_frame_wanted = true;
    }
}

/// Hands what the jitter buffer releases (in order, gaps given up on) to
/// the depacketizer.
fn drain(
    now: Instant,
    j: &mut JitterBuffer,
    d: &mut Depacketizer,
    out: &mut impl FnMut(rtc_payload::FrameInfo, &mut Vec<u8>),
) {
    while let Some(p) = j.pop(now) {
        let info = PacketInfo { sequence_number: p.sequence_number, timestamp: p.timestamp, marker: p.marker };
        d.push(info, p.payload, out);
    }
}

impl Connection {
    /// Whether a received track is waiting for a packet or a key frame
    /// (most of the time none is, and loss recovery costs nothing).
    fn recovering(&self) -> bool {
        self.tracks.tracks.iter().any(|(_, t)| match &t.state {
            State::Receive(r) => r.key_frame_wanted || r.jitter.as_ref().is_some_and(|j| j.held() + j.missing() > 0),
            State::Send(_) => false,
        })
    }

    /// The round-trip time RTCP measured (the shortest over the sent
    /// tracks), else a default.
    pub(crate) fn recovery_rtt(&self) -> Duration {
        let Some(session) = &self.session else { return DEFAULT_RTT };
        self.tracks
            .local_by_ssrc
            .iter()
            .filter_map(|(ssrc, _)| session.outbound_stats(*ssrc)?.round_trip_time)
            .filter(|r| r.is_finite() && *r >= 0.0)
            .min_by(f64::total_cmp)
            .map_or(DEFAULT_RTT, |r| Duration::from_secs_f64(r.min(1.0)).max(Duration::from_millis(1)))
    }

    /// Sets up a received track for the payload type its depacketizer was
    /// just made for: the feedback negotiated, and for video a jitter
    /// buffer.
    /// (The wait starts from the default round trip; the timer moves it to
    /// the measured one.)
    pub(crate) fn prepare_receiving(r: &mut Receiving, codec: &Codec, video: bool, limits: &Limits) {
        r.negotiated = negotiated(codec);
        if video && r.jitter.is_none() {
            let nack = r.negotiated.nack;
            r.jitter = Some(Box::new(JitterBuffer::new(JitterConfig {
                nack,
                max_wait: max_wait(nack, DEFAULT_RTT, 0.0),
                max_bytes: limits.jitter_bytes,
                ..JitterConfig::default()
            })));
        }
    }

    /// A retransmission (RFC 4588 section 4) that came on `ssrc` with
    /// payload type `pt` (an `rtx` whose `apt` is `apt`): its original
    /// sequence number restored, into the media track's jitter buffer. The
    /// media SSRC is the one signaled with it, else the simulcast layer its
    /// MID and RepairedRtpStreamId name, else the one remote track that
    /// receives `apt` (remembered).
    pub(crate) fn receive_rtx(&mut self, now: Instant, ssrc: u32, apt: u8, packet: &[u8]) -> Receive {
        let Ok(p) = RtpPacket::new_checked(packet) else { return self.drop_with(super::DropReason::Rtp) };
        let media = match self.tracks.remote_rtx.get(&ssrc) {
            Some(m) => Some(*m),
            None => {
                // A new RTX SSRC: the layer its MID and RRID name (RFC 8852
                // section 3.2), else the one track receiving the `apt`.
                let ids = self.ext_ids(rtc_codecs::Kind::Video);
                let repaired = super::extensions::find(&p, ids.rrid)
                    .and_then(|rrid| self.repaired_by_rid(super::extensions::find(&p, ids.mid), rrid));
                let mut receivers = self.tracks.remote_by_ssrc.iter().filter(|(_, id)| {
                    matches!(self.tracks.tracks.get(id).map(|t| &t.state),
                        Some(State::Receive(r)) if r.depacketizer.as_ref().is_some_and(|(pt, _)| *pt == apt))
                });
                let one = repaired.or_else(|| receivers.next().map(|(s, _)| *s).filter(|_| receivers.next().is_none()));
                if let Some(m) = one
                    && self.tracks.remote_rtx.len() < self.limits.remote_tracks
                {
                    tracing::debug!(ssrc, media = m, "a retransmission SSRC takes its media SSRC");
                    self.tracks.remote_rtx.insert(ssrc, m);
                }
                one
            }
        };
        let Some(media) = media else { return Receive::Rtp { track: None } };
        let Some(&track) = self.tracks.remote_by_ssrc.get(&media) else { return Receive::Rtp { track: None } };
        let payload = p.payload();
        // An RTX packet without an original sequence number is padding
        // (bandwidth probing).
        let (Some(osn), Some(original)) = (payload.get(..2), payload.get(2..)) else {
            return Receive::Rtp { track: Some(track) };
        };
        let info = PacketInfo {
            sequence_number: u16::from_be_bytes([osn[0], osn[1]]),
            timestamp: p.timestamp(),
            marker: p.marker(),
        };
        let Connection { tracks, frames, limits, .. } = self;
        if let Some(State::Receive(r)) = tracks.tracks.get_mut(&track).map(|t| &mut t.state)
            && r.receiving
            && r.depacketizer.as_ref().is_some_and(|(pt, _)| *pt == apt)
        {
            r.feedback.retransmitted += 1;
            deliver(now, (track, media, None), r, info, original, frames, limits);
        }
        Receive::Rtp { track: Some(track) }
    }

    /// NACK, PLI, FIR, transport feedback and REMB the peer sent about our
    /// tracks.
    pub(crate) fn handle_feedback(&mut self, now: Instant, packet: &[u8]) {
        for p in Compound::new(packet) {
            let Ok(p) = p else { break };
            match p.parse() {
                Ok(Rtcp::Nack(n)) => {
                    let Some(&track) = self.tracks.local_by_ssrc.get(&n.media_ssrc) else { continue };
                    if let Some(State::Send(s)) = self.tracks.tracks.get_mut(&track).map(|t| &mut t.state) {
                        s.feedback.nacks += 1;
                    }
                    for seq in n.lost() {
                        if self.send.resend.len() >= RESEND_QUEUE {
                            break;
                        }
                        self.send.resend.push_back((track, seq));
                    }
                }
                Ok(Rtcp::Pli(p)) => {
                    if let Some(&track) = self.tracks.local_by_ssrc.get(&p.media_ssrc) {
                        self.key_frame_request(now, track, None);
                    }
                }
                Ok(Rtcp::Fir(f)) => {
                    for (ssrc, seq) in f.entries() {
                        if let Some(&track) = self.tracks.local_by_ssrc.get(&ssrc) {
                            self.key_frame_request(now, track, Some(seq));
                        }
                    }
                }
                Ok(Rtcp::Remb(r)) => self.on_remb(now, r.bitrate),
                Ok(Rtcp::Other(o))
                    if o.packet_type() == rtc_srtp::rtcp::PacketType::RTPFB
                        && o.count() == rtc_srtp::twcc::FMT_TRANSPORT_CC =>
                {
                    self.on_transport_feedback(now, o.body());
                }
                _ => {}
            }
        }
    }

    /// The peer wants a key frame of `track`: the application hears of it
    /// (at most once per [`KEY_FRAME_INTERVAL`]).
    fn key_frame_request(&mut self, now: Instant, track: TrackId, fir: Option<u8>) {
        let Some(t) = self.tracks.tracks.get_mut(&track) else { return };
        let State::Send(s) = &mut t.state else { return };
        match fir {
            Some(seq) if s.last_fir == Some(seq) => return,
            Some(seq) => {
                s.last_fir = Some(seq);
                s.feedback.firs += 1;
            }
            None => s.feedback.plis += 1,
        }
        if s.key_frame_told.is_some_and(|at| now.saturating_duration_since(at) < KEY_FRAME_INTERVAL) {
            return;
        }
        s.key_frame_told = Some(now);
        let (track_id, ssrc, stream) = (t.desc.track_id.clone(), t.ssrc(), t.stream);
        let Some(stream_id) = self.tracks.stream(stream).map(|s| s.stream_id.clone()) else { return };
        tracing::debug!(stream = %stream_id, track = %track_id, ssrc, "the peer asks for a key frame");
        self.push_event(Event::Connection(ConnectionEvent::KeyFrameRequest { stream_id, track_id, ssrc }));
    }

    /// Records a packet just written (plaintext, `buf[..len]`) for
    /// retransmission when its plan negotiated NACK.
    pub(crate) fn record_sent(history: &mut Option<SendHistory>, limits: &Limits, now: Instant, packet: &[u8]) {
        let Some(seq) = packet.get(2..4).map(|b| u16::from_be_bytes([b[0], b[1]])) else { return };
        history.get_or_insert_with(|| SendHistory::new(limits.send_history, HISTORY_AGE)).record(now, seq, packet);
    }

    /// The next retransmission asked for: the original packet again, or
    /// wrapped in RTX on the track's RTX SSRC when that is negotiated.
    pub(crate) fn poll_resend(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if self.send.resend.is_empty() {
            return None;
        }
        let rtt = self.recovery_rtt();
        while let Some((track, seq)) = self.send.resend.pop_front() {
            let Connection { tracks, transports, ext_ids, twcc_seq, session, bwe, pacer, .. } = self;
            let Some(t) = tracks.tracks.get_mut(&track) else { continue };
            let rtx_ssrc = t.desc.rtx_ssrc;
            let ids = ext_ids[usize::from(t.desc.kind == rtc_codecs::Kind::Video)];
            let State::Send(s) = &mut t.state else { continue };
            let (Some(plan), Some(history)) = (s.plan, s.history.as_mut()) else { continue };
            let Some(tr) = transports.get_mut(plan.transport) else { continue };
            let (Some(path), Some(tx)) = (tr.agent.path(rtc_candidate::Component::RTP), tr.tx.as_mut()) else {
                continue;
            };
            // A NACK repeated by a receiver a round trip later is answered; one
            // repeated sooner (the same loss reported twice) is not.
            let Some(original) = history.resend(now, seq, rtt / 2) else { continue };
            let room = buf.len().saturating_sub(tx.profile().rtp_tag_len());
            let n = match (plan.rtx, rtx_ssrc) {
                (Some(rtx_pt), Some(rtx_ssrc)) => {
                    let Ok(p) = RtpPacket::new_checked(original) else { continue };
                    let payload = p.payload();
                    let hlen = original.len() - payload.len();
                    let n = hlen + 2 + payload.len();
                    if n > room {
                        continue;
                    }
                    buf[..hlen].copy_from_slice(&original[..hlen]);
                    buf[1] = (buf[1] & 0x80) | (rtx_pt & 0x7f);
                    buf[2..4].copy_from_slice(&s.rtx_seq.to_be_bytes());
                    buf[8..12].copy_from_slice(&rtx_ssrc.to_be_bytes());
                    buf[hlen..hlen + 2].copy_from_slice(&seq.to_be_bytes());
                    buf[hlen + 2..n].copy_from_slice(payload);
                    s.rtx_seq = s.rtx_seq.wrapping_add(1);
                    // RFC 8852 section 3.2: on RTX a layer's RtpStreamId
                    // is its RepairedRtpStreamId.
                    if let (Some(rid), Some(rrid)) = (ids.rid, ids.rrid)
                        && let Ok(mut p) = RtpPacket::new_checked(&mut buf[..n])
                    {
                        p.rename_extension(rid, rrid);
                    }
                    n
                }
                _ => {
                    let n = original.len();
                    if n > room {
                        continue;
                    }
                    buf[..n].copy_from_slice(original);
                    n
                }
            };
            // A new transport-wide sequence number and send time: to the
            // transport, a retransmission is a packet of its own.
            let mut sent_seq = None;
            if let Ok(mut p) = RtpPacket::new_checked(&mut buf[..n]) {
                if let Some(id) = ids.transport_cc
                    && p.set_extension(id, &twcc_seq.to_be_bytes())
                {
                    sent_seq = Some(*twcc_seq);
                    *twcc_seq = twcc_seq.wrapping_add(1);
                }
                if let (Some(id), Some(session)) = (ids.abs_send_time, session.as_ref()) {
                    p.set_extension(id, &super::extensions::abs_send_time(session.ntp_time(now)));
                }
            }
            let Ok(n) = tx.protect_rtp(buf, n) else { continue };
            Self::on_sent(bwe, now, sent_seq, n);
            if bwe.is_some() {
                pacer.consume(n);
            }
            s.feedback.retransmitted += 1;
            tracing::trace!(seq, track = %t.desc.track_id, "retransmission");
            return Some(Transmit::on(tr.id, path, n));
        }
        None
    }

    /// A NACK for what a received track misses, and a PLI (else FIR) when
    /// it lost a frame, in one compound RTCP packet (RFC 4585 section
    /// 3.1: after a receiver report and SDES).
    pub(crate) fn poll_feedback(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if !self.connected || !self.recovering() {
            return None;
        }
        let rtt = self.recovery_rtt();
        let Connection { session, transports, tracks, .. } = self;
        let session = session.as_ref()?;
        let (rtcp_ssrc, cname) = (session.config().rtcp_ssrc, session.config().cname.as_bytes());
        let t = transports.iter_mut().find(|t| t.ice_connected && t.tx.is_some())?;
        let path = t.rtcp_path()?;
        let tx = t.tx.as_mut()?;
        let room = buf.len().saturating_sub(tx.profile().rtcp_overhead());
        for (&media_ssrc, id) in tracks.remote_by_ssrc.iter() {
            let Some(State::Receive(r)) = tracks.tracks.get_mut(id).map(|t| &mut t.state) else { continue };
            let mut lost = [0u16; 64];
            let n = r.jitter.as_mut().map_or(0, |j| j.poll_nack(now, rtt, &mut lost));
            let key = r.key_frame_wanted
                && (r.negotiated.pli || r.negotiated.fir)
                && r.key_frame_asked
                    .is_none_or(|at| now.saturating_duration_since(at) >= KEY_FRAME_INTERVAL.max(rtt * 2));
            if n == 0 && !key {
                continue;
            }
            let mut w = Writer::new(&mut buf[..room]);
            let write = |w: &mut Writer<'_>| -> Result<(), rtc_srtp::Error> {
                w.receiver_report(rtcp_ssrc, &[])?;
                w.sdes_cname(rtcp_ssrc, cname)?;
                if n > 0 {
                    w.nack(rtcp_ssrc, media_ssrc, &lost[..n])?;
                }
                if key {
                    if r.negotiated.pli {
                        w.pli(rtcp_ssrc, media_ssrc)?;
                    } else {
                        w.fir(rtcp_ssrc, &[(media_ssrc, r.fir_seq)])?;
                    }
                }
                Ok(())
            };
            if write(&mut w).is_err() {
                continue;
            }
            let len = w.len();
            if n > 0 {
                r.feedback.nacks += 1;
            }
            if key {
                r.key_frame_asked = Some(now);
                if r.negotiated.pli {
                    r.feedback.plis += 1;
                } else {
                    r.feedback.firs += 1;
                    r.fir_seq = r.fir_seq.wrapping_add(1);
                }
                tracing::debug!(ssrc = media_ssrc, pli = r.negotiated.pli, "a frame was lost: key frame asked for");
            }
            let Ok(len) = tx.protect_rtcp(buf, len) else { return None };
            return Some(Transmit::on(t.id, path, len));
        }
        None
    }

    /// Time moved on: missing packets given up on (what waited behind them
    /// goes on), the waits follow the round-trip time.
    pub(crate) fn recovery_timeout(&mut self, now: Instant) {
        let rtt = self.recovery_rtt();
        let Connection { tracks, frames, limits, session, .. } = self;
        for (&ssrc, id) in tracks.remote_by_ssrc.iter() {
            let Some(State::Receive(r)) = tracks.tracks.get_mut(id).map(|t| &mut t.state) else { continue };
            let Receiving { depacketizer: Some((_, d)), jitter: Some(j), key_frame_wanted, frame_stats, .. } = r else {
                continue;
            };
            let loss = session.as_ref().and_then(|s| s.inbound_stats(ssrc)).map_or(0.0, |i| i.fraction_lost);
            j.set_max_wait(max_wait(j.config().nack, rtt, loss));
            if j.held() == 0 {
                continue;
            }
            let before = d.discarded();
            let track = *id;
            let (max_frames, max_bytes) = (limits.frames_queued, limits.frame_bytes);
            drain(now, j, d, &mut |f, data: &mut Vec<u8>| {
                frame_stats.emitted(now, f.timestamp);
                let info = FrameInfo { track, ssrc, timestamp: f.timestamp, key_frame: f.key_frame, audio_level: None };
                frames.push(info, data, max_frames, max_bytes);
            });
            if d.discarded() > before {
                *key_frame_wanted = true;
            }
        }
    }

    /// When loss recovery next needs time: a packet to ask for again or
    /// to give up on; now, when a key frame is wanted.
    pub(crate) fn recovery_poll_timeout(&self) -> Option<Instant> {
        if !self.recovering() {
            return None;
        }
        let rtt = self.recovery_rtt();
        let mut next: Option<Instant> = None;
        for (_, id) in self.tracks.remote_by_ssrc.iter() {
            let Some(State::Receive(r)) = self.tracks.tracks.get(id).map(|t| &t.state) else { continue };
            let mut at = r.jitter.as_ref().and_then(|j| j.poll_timeout(rtt));
            if r.key_frame_wanted && (r.negotiated.pli || r.negotiated.fir) {
                let due = r.key_frame_asked.map_or(self.last_now, |a| a + KEY_FRAME_INTERVAL.max(rtt * 2));
                at = Some(at.map_or(due, |t| t.min(due)));
            }
            if let Some(t) = at {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_for_a_missing_packet_grows_with_loss() {
        let rtt = Duration::from_millis(50);
        assert_eq!(max_wait(true, rtt, 0.0), Duration::from_millis(190));
        assert_eq!(max_wait(true, rtt, 0.05), Duration::from_millis(190));
        assert_eq!(max_wait(true, rtt, 0.2), Duration::from_millis(290));
        assert_eq!(max_wait(true, rtt, 0.5), Duration::from_millis(340));
        assert_eq!(max_wait(true, Duration::from_millis(400), 0.5), Duration::from_secs(1));
        assert_eq!(max_wait(false, rtt, 0.2), Duration::from_millis(40));
    }
}
