//! Codec negotiation and which codec, payload type and socket a track
//! sends with.

use rtc_codecs::{Agreement, Codec, Kind, Options, negotiate};
use rtc_payload::Format;

use super::Connection;
use crate::desc::{Direction, TrackDescription};
use crate::error::Error;

/// Negotiates with the offerer's options first, so both peers agree on the
/// same payload types (the offerer's). When no remote options were set, the
/// local ones stand for them.
pub(crate) fn agree(local_offers: bool, local: &Options, remote: Option<&Options>) -> Result<Agreement, Error> {
    let remote = remote.unwrap_or(local);
    Ok(if local_offers { negotiate(local, remote)? } else { negotiate(remote, local)? })
}

impl Connection {
    /// Sets the local or remote codec options; with a remote description
    /// known, they are negotiated at once. A refused dictionary changes
    /// nothing.
    pub(crate) fn apply_options(&mut self, options: Options, direction: Direction) -> Result<(), Error> {
        options.validate().map_err(|e| Error::InvalidOptions(e.to_string()))?;
        let (mut local, mut remote) = (self.local_options.clone(), self.remote_options.clone());
        match direction {
            Direction::Local => local = std::sync::Arc::new(options),
            Direction::Remote => remote = Some(Box::new(options)),
        }
        let agreement = match &self.remote {
            Some(_) => Some(agree(self.local_offers(), &local, remote.as_deref())?),
            None => None,
        };
        self.local_options = local;
        self.remote_options = remote;
        if agreement.is_some() {
            self.agreement = agreement;
            self.plan_gen += 1;
            self.update_transport_feedback(self.last_now);
        }
        Ok(())
    }

    /// Whether this side is the offerer (see [`Connection::offers_against`])
    /// with the remote description in force.
    pub(crate) fn local_offers(&self) -> bool {
        match &self.remote {
            Some(r) => self.offers_against(r),
            None => true,
        }
    }

    /// Whether this side is the offerer against remote description `d`: in
    /// an SDP offer/answer exchange ([`Connection::set_remote_sdp`]) as it
    /// went; else by the remote `setup` (RFC 5763, RFC 8842): `actpass` is
    /// an offer (the peer offers), `active` makes this side the DTLS server
    /// as an offerer is, `passive` the DTLS client as an answerer is; with
    /// no `setup` (the seeds' descriptions have no offerer) the side with the
    /// smaller `context-id` plays the offerer (and the DTLS server). The
    /// peers' DTLS roles always agree, so both come to the same offerer
    /// whichever order the descriptions crossed in.
    pub(crate) fn offers_against(&self, d: &crate::desc::ConnectionDescription) -> bool {
        if let Some(offered) = self.sdp_offerer {
            return offered;
        }
        match d.sockets.iter().find_map(|s| s.options.setup.as_deref()) {
            Some(s) if s.eq_ignore_ascii_case("active") => true,
            Some(s) if s.eq_ignore_ascii_case("passive") || s.eq_ignore_ascii_case("actpass") => false,
            _ => self.context_id.as_str() <= d.context_id.as_deref().unwrap_or_default(),
        }
    }

    pub(crate) fn remote_context(&self) -> &str {
        self.remote.as_ref().and_then(|r| r.context_id.as_deref()).unwrap_or_default()
    }

    /// The clock rate of the first agreed (else local) codec of `kind`.
    pub(crate) fn clock_of(&self, kind: Kind) -> u32 {
        let codecs = self.agreement.as_ref().map(|a| a.codecs.as_slice()).unwrap_or(&self.local_options.codecs);
        codecs.iter().find(|c| c.kind == kind).map_or(90_000, |c| c.hz_rate)
    }

    /// The agreed codec of a payload type.
    pub(crate) fn codec_by_pt(&self, pt: u8) -> Option<&Codec> {
        self.agreement.as_ref()?.codecs.iter().find(|c| c.payload_id.get() == pt)
    }

    /// The payload type, clock rate and payload format a track sends with:
    /// the first agreed codec of its kind that its own options (if any)
    /// list.
    pub(crate) fn send_codec(&self, d: &TrackDescription) -> Result<(u8, u32, Format), Error> {
        let a = self.agreement.as_ref().ok_or(Error::NotConnected("no remote description yet"))?;
        let codec = a
            .codecs_of(d.kind)
            .find(|c| d.options.as_ref().is_none_or(|o| o.codecs.iter().any(|t| t.is(&c.name))))
            .ok_or_else(|| Error::InvalidOptions(format!("no agreed {} codec for track {:?}", d.kind, d.track_id)))?;
        let format = Self::format_of(codec).ok_or(Error::NotSupported(
            "RTP packetization of this video codec (VP8, VP9, AV1, and H.264 in packetization mode 0 or 1 only)",
        ))?;
        Ok((codec.payload_id.get(), codec.hz_rate, format))
    }

    /// The transport a track goes over: the socket its description names,
    /// else the first socket that carries its kind.
    pub(crate) fn transport_for(&self, d: &TrackDescription) -> Option<usize> {
        match &d.socket_id {
            Some(id) => self.transports.iter().position(|t| t.socket_id == *id),
            None => self.transports.iter().position(|t| t.options.kind.is_empty() || t.options.kind.contains(&d.kind)),
        }
    }
}
