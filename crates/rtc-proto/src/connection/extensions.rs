//! RTP header extensions on the wire (RFC 8285), as the agreement
//! negotiated them: the transport-wide sequence number
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01) on every packet
//! sent and recorded on every packet received for transport feedback;
//! `abs-send-time` on every packet sent, and read on every packet received
//! for the REMB estimate when the peer takes REMB rather than transport
//! feedback; the audio level of received audio
//! (RFC 6464) handed out with its frame; the MID (RFC 8843 section 15) on
//! every packet sent in an SDP section, and the MID, RtpStreamId and
//! RepairedRtpStreamId (RFC 8852) of packets from unknown SSRCs read to
//! learn which track they are.

use std::time::Instant;

use rtc_codecs::{Agreement, Kind};
use rtc_srtp::RtpPacket;
use rtc_srtp::bwe::{Bwe, BweConfig};
use rtc_srtp::rtcp::Writer;
use rtc_srtp::twcc::TwccRecorder;

use super::{Connection, Transmit};
use crate::events::{ConnectionEvent, Event};

/// The transport-wide sequence number extension.
pub(crate) const TRANSPORT_CC: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
/// The absolute send time extension (24-bit 6.18 fixed-point seconds).
pub(crate) const ABS_SEND_TIME: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";
/// The client-to-mixer audio level extension (RFC 6464).
pub(crate) const AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
/// The media identification extension (RFC 8843 section 15): the `a=mid`
/// of the section a packet belongs to.
pub(crate) const MID: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
/// The RTP stream id of a simulcast layer (RFC 8852 section 3.1).
pub(crate) const RTP_STREAM_ID: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
/// The RTP stream id a retransmission repairs (RFC 8852 section 3.2).
pub(crate) const REPAIRED_RTP_STREAM_ID: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";

/// The negotiated identifiers of one kind's extensions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ExtIds {
    pub(crate) transport_cc: Option<u8>,
    pub(crate) abs_send_time: Option<u8>,
    pub(crate) audio_level: Option<u8>,
    pub(crate) mid: Option<u8>,
    pub(crate) rid: Option<u8>,
    pub(crate) rrid: Option<u8>,
}

impl ExtIds {
    /// The identifiers `agreement` gives `kind`'s extensions (those the
    /// one-byte form can carry, 1 to 14).
    pub(crate) fn of(agreement: Option<&Agreement>, kind: Kind) -> Self {
        let id = |uri: &str| {
            agreement?
                .header_extensions
                .iter()
                .find(|e| e.kind == kind && e.uri == uri && (1..=14).contains(&e.id))
                .map(|e| e.id)
        };
        Self {
            transport_cc: id(TRANSPORT_CC),
            abs_send_time: id(ABS_SEND_TIME),
            audio_level: id(AUDIO_LEVEL),
            mid: id(MID),
            rid: id(RTP_STREAM_ID),
            rrid: id(REPAIRED_RTP_STREAM_ID),
        }
    }
}

/// `abs-send-time` of an NTP time: its seconds in 6.18 fixed point, 24 bits.
pub(crate) fn abs_send_time(ntp: u64) -> [u8; 3] {
    let v = ((ntp >> 14) & 0x00ff_ffff) as u32;
    let b = v.to_be_bytes();
    [b[1], b[2], b[3]]
}

/// The data of extension `id` in `packet`, if there.
pub(crate) fn find<T: AsRef<[u8]>>(packet: &RtpPacket<T>, id: Option<u8>) -> Option<&[u8]> {
    let id = id?;
    packet.extensions().filter_map(Result::ok).find(|e| e.id == id).map(|e| e.data)
}

/// REMB is sent at least this often while the estimate holds (a fall of
/// 3% or more goes at once).
const REMB_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether the agreement has the receiving side estimate and send REMB
/// (draft-alvestrand-rmcat-remb): a `goog-remb` codec feedback and the
/// `abs-send-time` extension, and no transport feedback (with it, the
/// sender estimates).
pub(crate) fn remb_feedback(agreement: &Agreement) -> bool {
    !transport_feedback(agreement)
        && agreement.codecs.iter().any(|c| c.rtcp_feedback.iter().any(|f| f.kind.eq_ignore_ascii_case("goog-remb")))
        && agreement.header_extensions.iter().any(|e| e.uri == ABS_SEND_TIME)
}

/// Whether the agreement has transport feedback: a `transport-cc` codec
/// feedback and the transport-wide sequence number extension.
pub(crate) fn transport_feedback(agreement: &Agreement) -> bool {
    agreement.codecs.iter().any(|c| c.rtcp_feedback.iter().any(|f| f.kind.eq_ignore_ascii_case("transport-cc")))
        && agreement.header_extensions.iter().any(|e| e.uri == TRANSPORT_CC)
}

impl Connection {
    /// The agreement changed: the extension identifiers of each kind, and
    /// the transport feedback recorder made (or dropped) as it says.
    pub(crate) fn update_transport_feedback(&mut self, now: Instant) {
        self.ext_ids =
            [ExtIds::of(self.agreement.as_ref(), Kind::Audio), ExtIds::of(self.agreement.as_ref(), Kind::Video)];
        let wanted = self.agreement.as_ref().is_some_and(transport_feedback);
        match (&self.twcc, wanted) {
            (None, true) => {
                self.twcc = Some(Box::new(TwccRecorder::new(now)));
                self.bwe = Some(Box::new(Bwe::new(BweConfig::default())));
            }
            (Some(_), false) => {
                self.twcc = None;
                self.bwe = None;
            }
            _ => {}
        }
        let remb = self.agreement.as_ref().is_some_and(remb_feedback);
        match (&self.remb_rx, remb) {
            (None, true) => self.remb_rx = Some(Box::new(Bwe::new(BweConfig::default()))),
            (Some(_), false) => {
                self.remb_rx = None;
                self.remb_first = None;
                self.remb_sent = None;
            }
            _ => {}
        }
    }

    /// The peer's transport feedback about what we sent, into the
    /// bandwidth estimate; the application hears of a change of a tenth or
    /// more: a decrease at once, an increase at most once a second.
    pub(crate) fn on_transport_feedback(&mut self, now: Instant, body: &[u8]) {
        let (Some(bwe), Ok(fb)) = (self.bwe.as_mut(), rtc_srtp::twcc::parse(body)) else { return };
        let estimate = bwe.on_feedback(now, &fb);
        tracing::trace!(bitrate = estimate, usage = ?bwe.usage(), "transport feedback taken");
        self.tell_bitrate(now, estimate);
    }

    /// A REMB from the peer (draft-alvestrand-rmcat-remb): its receiver's
    /// estimate, taken as ours when no transport feedback is agreed (a
    /// peer such as aiortc that estimates on its side), reported as the
    /// transport feedback estimate is.
    pub(crate) fn on_remb(&mut self, now: Instant, bitrate: u64) {
        if self.bwe.is_some() {
            return;
        }
        self.remb = Some(bitrate);
        self.tell_bitrate(now, bitrate);
    }

    /// Tells the application of a change of a tenth or more: a decrease
    /// at once, an increase at most once a second.
    fn tell_bitrate(&mut self, now: Instant, estimate: u64) {
        let due = match self.bitrate_told {
            None => true,
            Some((t, at)) => {
                estimate.abs_diff(t) * 10 >= t
                    && (estimate < t || now.saturating_duration_since(at) >= std::time::Duration::from_secs(1))
            }
        };
        if due {
            self.bitrate_told = Some((estimate, now));
            tracing::debug!(bitrate = estimate, "outgoing bitrate estimate");
            self.push_event(Event::Connection(ConnectionEvent::OutgoingBitrate { bitrate: estimate }));
        }
    }

    /// Notes a packet sent with transport-wide sequence number `seq`.
    pub(crate) fn on_sent(bwe: &mut Option<Box<Bwe>>, now: Instant, seq: Option<u16>, len: usize) {
        if let (Some(bwe), Some(seq)) = (bwe.as_mut(), seq) {
            bwe.on_sent(now, seq, len);
        }
    }

    /// The bitrate the transport can carry as the peer's transport feedback
    /// shows it (webrtc-stats' `availableOutgoingBitrate`), in bits per
    /// second; without transport-cc, the latest REMB the peer sent; `None`
    /// until either.
    pub fn available_outgoing_bitrate(&self) -> Option<u64> {
        self.bwe.as_ref().map(|b| b.estimate()).or(self.remb)
    }

    /// Transport feedback messages the peer sent and the estimate took (0
    /// until transport-cc is agreed): whether feedback flows.
    pub fn transport_feedback_received(&self) -> u64 {
        self.bwe.as_ref().map_or(0, |b| b.feedbacks())
    }

    /// The extension identifiers of `kind`.
    pub(crate) fn ext_ids(&self, kind: Kind) -> ExtIds {
        self.ext_ids[usize::from(kind == Kind::Video)]
    }

    /// Records a received packet's transport-wide sequence number.
    pub(crate) fn record_arrival<T: AsRef<[u8]>>(&mut self, now: Instant, packet: &RtpPacket<T>) {
        if self.twcc.is_none() && self.remb_rx.is_none() {
            return;
        }
        let kind = self.codec_by_pt(packet.payload_type()).map_or(Kind::Video, |c| c.kind);
        let ids = self.ext_ids(kind);
        if let Some(rec) = self.twcc.as_mut()
            && let Some(&[a, b]) = find(packet, ids.transport_cc)
        {
            rec.record(now, u16::from_be_bytes([a, b]));
        }
        if let Some(rx) = self.remb_rx.as_mut()
            && let Some(&[a, b, c]) = find(packet, ids.abs_send_time)
        {
            rx.on_received(now, u32::from_be_bytes([0, a, b, c]), packet.as_bytes().len());
            self.remb_first.get_or_insert(now);
        }
    }

    /// When the next REMB is due: a second after the first packet the
    /// estimate took, then a second after each one sent; at once when the
    /// estimate fell 3% or more below the last one sent.
    pub(crate) fn remb_due(&self) -> Option<Instant> {
        let rx = self.remb_rx.as_ref()?;
        match self.remb_sent {
            None => Some(self.remb_first? + REMB_INTERVAL),
            Some((sent, _)) if rx.estimate() * 100 <= sent * 97 => Some(self.last_now),
            Some((_, at)) => Some(at + REMB_INTERVAL),
        }
    }

    /// The REMB due, in a compound RTCP packet (RR, SDES, REMB) about every
    /// stream we receive.
    pub(crate) fn poll_remb(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if !self.connected || self.remb_due().is_none_or(|t| t > now) {
            return None;
        }
        let Connection { session, transports, remb_rx, remb_sent, tracks, .. } = self;
        let bitrate = remb_rx.as_ref()?.estimate();
        let mut ssrcs = [0u32; 16];
        let n = tracks.remote_by_ssrc.iter().zip(&mut ssrcs).map(|((s, _), slot)| *slot = *s).count();
        let t = feedback_transmit(session.as_ref()?, transports, buf, |w, rtcp_ssrc| {
            w.remb(rtcp_ssrc, bitrate, &ssrcs[..n]).is_ok()
        })?;
        *remb_sent = Some((bitrate, now));
        tracing::trace!(bitrate, streams = n, "REMB sent");
        Some(t)
    }

    /// The transport feedback due, in a compound RTCP packet (RR, SDES,
    /// transport feedback).
    pub(crate) fn poll_transport_feedback(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if !self.connected || self.twcc.as_ref().and_then(|r| r.poll_timeout()).is_none_or(|t| t > now) {
            return None;
        }
        let Connection { session, transports, twcc, tracks, .. } = self;
        let rec = twcc.as_mut()?;
        let media_ssrc = tracks.remote_by_ssrc.iter().next().map_or(0, |(s, _)| *s);
        feedback_transmit(session.as_ref()?, transports, buf, |w, rtcp_ssrc| {
            rec.write(now, rtcp_ssrc, media_ssrc, w).unwrap_or(false)
        })
    }
}

/// A compound RTCP packet of feedback (RR, SDES, then what `write` adds
/// given our RTCP SSRC; nothing is sent when it says false), protected,
/// over the first connected transport's RTCP path.
fn feedback_transmit(
    session: &rtc_srtp::session::Session,
    transports: &mut [super::transport::Transport],
    buf: &mut [u8],
    write: impl FnOnce(&mut Writer<'_>, u32) -> bool,
) -> Option<Transmit> {
    let (rtcp_ssrc, cname) = (session.config().rtcp_ssrc, session.config().cname.as_bytes());
    let t = transports.iter_mut().find(|t| t.ice_connected && t.tx.is_some())?;
    let path = t.rtcp_path()?;
    let tx = t.tx.as_mut()?;
    let room = buf.len().saturating_sub(tx.profile().rtcp_overhead());
    let mut w = Writer::new(&mut buf[..room]);
    w.receiver_report(rtcp_ssrc, &[]).ok()?;
    w.sdes_cname(rtcp_ssrc, cname).ok()?;
    if !write(&mut w, rtcp_ssrc) {
        return None;
    }
    let len = w.len();
    let len = tx.protect_rtcp(buf, len).ok()?;
    Some(Transmit::on(t.id, path, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abs_send_time_is_six_point_eighteen_seconds() {
        // 1.5 s past an NTP second boundary of 0x1234 s: 6 bits of seconds
        // (0x34 & 0x3f) and 18 of fraction (0.5 = 0x20000).
        let ntp = (0x1234u64 << 32) | 0x8000_0000;
        let v = abs_send_time(ntp);
        let v = u32::from_be_bytes([0, v[0], v[1], v[2]]);
        assert_eq!(v >> 18, 0x34);
        assert_eq!(v & 0x3ffff, 0x20000);
    }
}
