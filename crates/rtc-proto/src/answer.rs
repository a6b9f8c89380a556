//! SDP offer/answer by the book (RFC 3264, JSEP RFC 8829, BUNDLE RFC
//! 8843): a connection takes the peer's SDP as an offer or an answer, and
//! its own SDP answers an offer section for section — same order, `mid`s and
//! kinds, the offer's payload types, directions answered per RFC 3264,
//! sections it cannot take rejected with port 0 — or, with no offer to
//! answer, offers.

use rtc_codecs::{Kind, Options};
use sdp_types::{Attribute, Connection as SdpConnection, Media, Origin, Session};

use crate::TrackId;
use crate::connection::Connection;
use crate::desc::{ConnectionDescription, Direction};
use crate::error::Error;
use crate::sdp::{
    DATA_CHANNEL, add_candidates, add_keying, add_pacing, add_send_layers, add_track_ssrcs, attr, has, is_data,
    is_rtp_media, simulcast_layers,
};

/// A sent track as an answer section lists it: stream id, track id, SSRC
/// and RTX SSRC.
type SentTrack = (String, String, u32, Option<u32>);

/// Which half of the offer/answer exchange an SDP is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdpType {
    /// An offer: the answer mirrors it.
    Offer,
    /// An answer to this side's offer.
    Answer,
}

/// A section's direction attribute (RFC 3264 section 5.1; `sendrecv` when
/// absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Dir {
    fn of(m: &Media) -> Self {
        if has(&m.attributes, "sendonly") {
            Dir::SendOnly
        } else if has(&m.attributes, "recvonly") {
            Dir::RecvOnly
        } else if has(&m.attributes, "inactive") {
            Dir::Inactive
        } else {
            Dir::SendRecv
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Dir::SendRecv => "sendrecv",
            Dir::SendOnly => "sendonly",
            Dir::RecvOnly => "recvonly",
            Dir::Inactive => "inactive",
        }
    }

    /// RFC 3264 section 6.1: what this side answers to the offered
    /// direction, given whether it has something to send.
    fn answer(self, sending: bool) -> Self {
        match (self, sending) {
            (Dir::SendRecv, true) => Dir::SendRecv,
            (Dir::SendRecv, false) | (Dir::SendOnly, _) => Dir::RecvOnly,
            (Dir::RecvOnly, true) => Dir::SendOnly,
            (Dir::RecvOnly, false) | (Dir::Inactive, _) => Dir::Inactive,
        }
    }

    /// Whether the offerer may receive what this side sends.
    pub(crate) fn offerer_receives(self) -> bool {
        matches!(self, Dir::SendRecv | Dir::RecvOnly)
    }
}

/// What an offered section is to this side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum What {
    /// Audio or video over RTP.
    Rtp(Kind),
    /// A data channel section.
    Data,
    /// Rejected by the offerer (port 0 without `bundle-only`), or of a kind
    /// or protocol this side does not speak.
    Other,
}

/// One `m=` section of an offer, as the answer mirrors it.
#[derive(Debug, Clone)]
pub(crate) struct Offered {
    pub(crate) media: String,
    pub(crate) proto: String,
    pub(crate) fmt: String,
    pub(crate) mid: String,
    pub(crate) dir: Dir,
    pub(crate) what: What,
    /// The simulcast layers the offerer sends in it (rid, paused), as
    /// [`simulcast_layers`] reads them.
    pub(crate) layers: Vec<(String, bool)>,
    /// The simulcast layers the offerer would receive in it (rid, paused).
    pub(crate) recv_layers: Vec<(String, bool)>,
}

/// The sections of the peer's offer, in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct OfferLayout {
    pub(crate) sections: Vec<Offered>,
    /// The offer groups its sections with `a=group:BUNDLE` (RFC 8843).
    pub(crate) bundled: bool,
}

impl OfferLayout {
    pub(crate) fn of(s: &Session) -> Self {
        let sections = s
            .medias
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let what = if is_rtp_media(m) {
                    m.media.parse::<Kind>().map_or(What::Other, What::Rtp)
                } else if is_data(m) {
                    What::Data
                } else {
                    What::Other
                };
                Offered {
                    media: m.media.clone(),
                    proto: m.proto.clone(),
                    fmt: m.fmt.clone(),
                    mid: attr(&m.attributes, "mid").next().map_or_else(|| i.to_string(), str::to_owned),
                    dir: Dir::of(m),
                    layers: if matches!(what, What::Rtp(_)) && matches!(Dir::of(m), Dir::SendRecv | Dir::SendOnly) {
                        simulcast_layers(m, "send")
                    } else {
                        Vec::new()
                    },
                    recv_layers: if matches!(what, What::Rtp(_)) && Dir::of(m).offerer_receives() {
                        simulcast_layers(m, "recv")
                    } else {
                        Vec::new()
                    },
                    what,
                }
            })
            .collect();
        let bundled = attr(&s.attributes, "group").any(|g| g.starts_with("BUNDLE"));
        Self { sections, bundled }
    }
}

/// A session header as browsers write it, with a numeric `<sess-id>`
/// (RFC 4566 section 5.2; pion refuses `o=- - 1 …`).
fn session(version: u64) -> Session {
    let mut s = Session::new(Origin::with_ip_addr("0", version.max(1), std::net::Ipv4Addr::new(127, 0, 0, 1)), "-");
    s.add_attribute_with_value("msid-semantic", " WMS");
    s
}

/// A rejected section: the offer's kind, protocol and formats, port 0, its
/// `mid` (RFC 3264 section 6, RFC 8843 section 7.3.2).
fn rejected(o: &Offered) -> Media {
    let mut m = Media::new(sdp_types::MediaType::Application, 0, sdp_types::TransportProto::UdpDtlsSctp, "");
    m.media = o.media.clone();
    m.proto = o.proto.clone();
    m.fmt = o.fmt.clone();
    m.add_connection(SdpConnection::from_ip_addr(std::net::Ipv4Addr::UNSPECIFIED));
    m.add_attribute_with_value("mid", &o.mid);
    m
}

/// RFC 8853 section 5.3: the layers taken, each `a=rid:<id> recv` (RFC
/// 8851 section 4) and together `a=simulcast:recv <id>;<id>…`, a paused
/// one (`~`) kept paused.
fn add_layers(m: &mut Media, layers: &[(String, bool)]) {
    if layers.is_empty() {
        return;
    }
    for (rid, _) in layers {
        m.add_attribute_with_value("rid", format!("{rid} recv"));
    }
    let list: Vec<String> =
        layers.iter().map(|(rid, paused)| format!("{}{rid}", if *paused { "~" } else { "" })).collect();
    m.add_attribute_with_value("simulcast", format!("recv {}", list.join(";")));
}

/// The simulcast layers of a kind this side cannot receive (the agreement
/// lacks the RtpStreamId extension): the answer refuses simulcast, so the
/// offerer sends one stream, which the first layer's track takes under the
/// section's track id.
fn collapse_layers(d: &mut ConnectionDescription, receives: impl Fn(Kind) -> bool) {
    for s in &mut d.streams {
        let mut seen: Vec<Option<String>> = Vec::new();
        s.tracks.retain_mut(|t| {
            let Some(rid) = t.rid.as_ref().filter(|_| !receives(t.kind)) else { return true };
            if seen.contains(&t.mid) {
                return false;
            }
            seen.push(t.mid.clone());
            if let Some(base) = t.track_id.strip_suffix(rid.as_str()).and_then(|b| b.strip_suffix('-')) {
                t.track_id = base.to_owned();
            }
            t.rid = None;
            true
        });
    }
}

impl Connection {
    /// The simulcast layers of ours the peer's answer does not take (RFC
    /// 8853 section 5.3): in a section where we offered several, those its
    /// `a=simulcast:recv` leaves out or pauses (`~`); all but the first
    /// when it has no `a=simulcast` (an answerer without simulcast takes
    /// one stream).
    fn layers_held(&self, answer: &Session) -> Vec<(TrackId, &'static str)> {
        let mut held = Vec::new();
        for s in &self.sdp_sections {
            let Some(first) = s.track else { continue };
            let layers = self.layers_of(first);
            let Some(m) = answer.medias.iter().find(|m| attr(&m.attributes, "mid").next() == Some(s.mid.as_str()))
            else {
                continue;
            };
            if layers.len() < 2 || m.port == 0 {
                continue;
            }
            let taken = simulcast_layers(m, "recv");
            for (i, (t, rid)) in layers.into_iter().enumerate() {
                let why = match taken.iter().find(|(r, _)| *r == rid) {
                    _ if taken.is_empty() && i == 0 => continue,
                    _ if taken.is_empty() => "the peer's answer takes no simulcast: only the first layer is sent",
                    None => "the peer's answer does not take this simulcast layer",
                    Some((_, true)) => "the peer's answer paused this simulcast layer",
                    Some((_, false)) => continue,
                };
                tracing::debug!(rid, why, "simulcast layer not sent");
                held.push((t, why));
            }
        }
        held
    }

    /// Whether a sent simulcast layer (a track with a `rid`) is sent: false
    /// when the peer's answer paused it or does not take it (RFC 8853
    /// section 5.3); `write_frame` then refuses its frames, and the
    /// application need not encode them.
    pub fn layer_taken(&self, track: TrackId) -> bool {
        !self.held_layers.iter().any(|(t, _)| *t == track)
    }

    /// Whether the answer takes offered section `o` (as `answer_sdp` does):
    /// audio or video with an agreed codec among its payload types; data
    /// when data is on and keyed by DTLS.
    pub(crate) fn takes(&self, o: &Offered) -> bool {
        match o.what {
            What::Rtp(kind) => {
                let offered: Vec<&str> = o.fmt.split_ascii_whitespace().collect();
                self.agreement.as_ref().is_some_and(|a| {
                    a.codecs.iter().any(|c| c.kind == kind && offered.contains(&c.payload_id.to_string().as_str()))
                })
            }
            What::Data => {
                self.remote.as_ref().is_none_or(|r| r.keys.is_empty()) && self.local_description().data.is_some()
            }
            What::Other => false,
        }
    }

    /// Whether simulcast layers of `kind` can be received: the agreement
    /// has the RtpStreamId extension for it, so that the layers' packets
    /// can be told apart.
    pub(crate) fn receives_layers(&self, kind: Kind) -> bool {
        crate::connection::extensions::ExtIds::of(self.agreement.as_ref(), kind).rid.is_some()
    }

    /// Takes the peer's SDP: an offer (this side then answers it with
    /// [`Connection::local_sdp`]) or the answer to this side's offer. Its
    /// codec options and description are set as the remote ones (see
    /// [`ConnectionDescription::from_sdp`]); an offer whose sections carry
    /// no `a=setup` is `actpass` (RFC 5763 section 5). A refused SDP
    /// changes nothing.
    pub fn set_remote_sdp(&mut self, now: std::time::Instant, kind: SdpType, sdp: &str) -> Result<(), Error> {
        let _span = self.entered();
        let r = self.take_remote_sdp(now, kind, sdp);
        if let Err(e) = &r {
            tracing::warn!(?kind, "remote SDP refused: {e}");
        }
        r
    }

    /// [`Connection::set_remote_sdp`] without its log of a refusal.
    fn take_remote_sdp(&mut self, now: std::time::Instant, kind: SdpType, sdp: &str) -> Result<(), Error> {
        crate::sdp::check_size(sdp)?;
        let session = Session::parse(sdp.as_bytes()).map_err(|e| Error::InvalidDescription(format!("SDP: {e}")))?;
        let (mut d, options) = ConnectionDescription::from_sdp(sdp)?;
        let layout = match kind {
            SdpType::Offer => {
                if let Some(s) = d.sockets.first_mut()
                    && d.keys.is_empty()
                {
                    s.options.setup.get_or_insert_with(|| "actpass".into());
                }
                Some(Box::new(OfferLayout::of(&session)))
            }
            SdpType::Answer => {
                if d.sockets.first().and_then(|s| s.options.setup.as_deref()) == Some("actpass") {
                    return Err(Error::InvalidDescription("an answer cannot say a=setup:actpass (RFC 5763)".into()));
                }
                None
            }
        };
        let before = (self.remote_options.clone(), self.agreement.clone(), self.sdp_offerer);
        self.sdp_offerer = Some(kind == SdpType::Answer);
        if let Err(e) = self.set_options(options, Direction::Remote) {
            self.sdp_offerer = before.2;
            return Err(e);
        }
        if kind == SdpType::Offer {
            // Both sides list the RtpStreamId extension for the kind (the
            // agreement will have it).
            let rid = crate::connection::extensions::RTP_STREAM_ID;
            let listed = |o: &Options, k: Kind| o.header_extensions.iter().any(|e| e.kind == k && e.uri == rid);
            let remote = self.remote_options.clone();
            collapse_layers(&mut d, |k| {
                listed(&self.local_options, k) && remote.as_deref().is_some_and(|r| listed(r, k))
            });
        }
        if let Err(e) = self.apply_description(now, d, Direction::Remote) {
            // Back to the options that stood before.
            (self.remote_options, self.agreement, self.sdp_offerer) = before;
            return Err(e);
        }
        match &layout {
            // The answer's sections, fixed now (with the tracks sent so
            // far), and a new SDP version.
            Some(offer) => {
                self.sdp_sections = self.plan_answer(offer);
                self.sdp_version += 1;
            }
            // The answer to an offer made without create_offer: the
            // sections that offer had.
            None if self.sdp_sections.is_empty() => self.sdp_sections = self.plan_offer(),
            None => {}
        }
        if kind == SdpType::Answer {
            self.held_layers = self.layers_held(&session);
        }
        self.remote_offer = layout;
        Ok(())
    }

    /// This side's SDP: the answer to the peer's offer, when
    /// [`Connection::set_remote_sdp`] took one, else an offer (DTLS-SRTP
    /// unless the peer signaled SDES keys; see
    /// [`ConnectionDescription::to_sdp`]).
    ///
    /// The answer has one section per offered one, in order, with its
    /// `mid`: audio and video with the agreed codecs under the offer's
    /// payload types and a direction answered per RFC 3264 (each sent track
    /// goes into the first section of its kind that can carry it), the
    /// data section when data is taken, and every other section (a kind,
    /// protocol or codec set this side cannot take, or one the offer
    /// rejected) rejected with port 0. The sections taken are bundled. The
    /// session carries `a=ice-pacing` with the Ta this side proposes.
    pub fn local_sdp(&self) -> Result<String, Error> {
        let mut d = self.local_description();
        if self.remote.as_ref().is_none_or(|r| r.keys.is_empty()) {
            d.keys.clear();
        }
        match self.remote_offer.as_deref() {
            Some(offer) => self.answer_sdp(&d, offer),
            None => self.offer_sdp(&d),
        }
    }

    fn answer_sdp(&self, d: &ConnectionDescription, offer: &OfferLayout) -> Result<String, Error> {
        let (Some(ufrag), Some(pwd)) = (&d.context_id, &d.secret) else {
            return Err(Error::InvalidDescription("an SDP description needs context-id and secret".into()));
        };
        let socket = d.sockets.first();
        let fingerprints = socket.map(|s| s.options.fingerprints.as_slice()).unwrap_or_default();
        let dtls = d.keys.is_empty();
        let setup = socket.and_then(|s| s.options.setup.as_deref()).unwrap_or("active");
        let mux = socket.is_none_or(|s| s.options.mux);
        let cname = d.cname.as_deref().unwrap_or("-");
        let agreed = self.agreement.as_ref().map(|a| Options {
            codecs: a.codecs.clone(),
            header_extensions: a.header_extensions.clone(),
            ..Options::default()
        });
        // Each sent track in its section: the one it had, else the first
        // free one of its kind whose offerer receives.
        let plan = self.plan_answer(offer);
        let sent_in = |mid: &str| -> Option<SentTrack> {
            let t = plan.iter().find(|p| p.mid == mid)?.track?;
            let desc = self.track_description(t)?;
            let stream = d.streams.iter().find(|s| s.tracks.iter().any(|x| x.track_id == desc.track_id))?;
            Some((stream.stream_id.clone(), desc.track_id.clone(), desc.ssrc?, desc.rtx_ssrc))
        };
        let mut s = session(self.sdp_version);
        add_pacing(&mut s, socket);
        let mut bundle = Vec::new();
        for o in &offer.sections {
            let media = match o.what {
                What::Rtp(kind) => {
                    // The agreed codecs this section offered.
                    let offered: Vec<&str> = o.fmt.split_ascii_whitespace().collect();
                    let mine = agreed.as_ref().map(|a| Options {
                        codecs: a
                            .codecs
                            .iter()
                            .filter(|c| c.kind != kind || offered.contains(&c.payload_id.to_string().as_str()))
                            .cloned()
                            .collect(),
                        ..a.clone()
                    });
                    let m = mine
                        .as_ref()
                        .filter(|a| a.codecs_of(kind).next().is_some())
                        .map(|a| a.to_media(kind))
                        .transpose()
                        .map_err(|e| Error::InvalidOptions(e.to_string()))?;
                    match m {
                        Some(mut m) => {
                            // The offer's protocol: DTLS-SRTP or SDES as offered.
                            m.proto = o.proto.clone();
                            m.add_attribute_with_value("mid", &o.mid);
                            add_keying(&mut m, ufrag, pwd, &d.keys, fingerprints, setup);
                            if mux {
                                m.add_attribute(Attribute::new("rtcp-mux"));
                            }
                            let track = sent_in(&o.mid);
                            m.add_attribute(Attribute::new(o.dir.answer(track.is_some()).name()));
                            // RFC 8853 section 5.3: the offer's receive
                            // layers that are ours, sent as simulcast.
                            let rids: Vec<&str> = plan
                                .iter()
                                .find(|p| p.mid == o.mid)
                                .and_then(|p| p.track)
                                .map(|t| self.layers_of(t))
                                .unwrap_or_default()
                                .iter()
                                .filter_map(|(_, r)| {
                                    o.recv_layers.iter().find(|(x, _)| x == r).map(|(x, _)| x.as_str())
                                })
                                .collect();
                            match track {
                                Some((stream, track, _, _)) if !rids.is_empty() && self.receives_layers(kind) => {
                                    add_send_layers(&mut m, &stream, &track, &rids);
                                }
                                Some((stream, track, ssrc, rtx)) => {
                                    add_track_ssrcs(&mut m, cname, &stream, &track, ssrc, rtx);
                                }
                                None => {}
                            }
                            if self.receives_layers(kind) {
                                add_layers(&mut m, &o.layers);
                            }
                            add_candidates(&mut m, socket);
                            Some(m)
                        }
                        None => None,
                    }
                }
                What::Data if dtls && d.data.is_some() => {
                    let data = d.data.unwrap_or_default();
                    let mut m = rejected(o);
                    m.port = 9;
                    if o.proto.eq_ignore_ascii_case("DTLS/SCTP") {
                        // The legacy form: the port in the format and sctpmap.
                        m.fmt = data.port.to_string();
                        m.add_attribute_with_value("sctpmap", format!("{} {DATA_CHANNEL} 1024", data.port));
                    } else {
                        m.fmt = DATA_CHANNEL.into();
                        m.add_attribute_with_value("sctp-port", data.port);
                    }
                    add_keying(&mut m, ufrag, pwd, &[], fingerprints, setup);
                    add_candidates(&mut m, socket);
                    m.add_attribute_with_value("max-message-size", data.max_message_size);
                    Some(m)
                }
                _ => None,
            };
            match media {
                Some(m) => {
                    bundle.push(o.mid.clone());
                    s.add_media(m);
                }
                None => s.add_media(rejected(o)),
            }
        }
        if bundle.is_empty() {
            return Err(Error::InvalidDescription(
                "the offer has no section this side can take (no codec in common, no data)".into(),
            ));
        }
        if offer.bundled {
            s.attributes.insert(0, Attribute::with_value("group", format!("BUNDLE {}", bundle.join(" "))));
        } else {
            // RFC 8843 section 7.3.1: an answerer must not bundle what the
            // offer did not. Each unbundled section would be a transport
            // of its own and this side runs one: the first section taken
            // keeps it and the others are rejected, so the call goes on
            // with that section's media instead of failing on the others'.
            if bundle.len() > 1 {
                tracing::warn!(
                    kept = %bundle[0],
                    rejected = ?&bundle[1..],
                    "the offer does not bundle and this side runs one transport: the other sections are rejected"
                );
            }
            for (m, o) in s.medias.iter_mut().zip(&offer.sections) {
                if bundle.iter().skip(1).any(|mid| *mid == o.mid) {
                    *m = rejected(o);
                    // Its own transport's lines, although rejected: webrtcbin
                    // refuses an answer whose unbundled section lacks them.
                    add_keying(m, ufrag, pwd, &d.keys, fingerprints, setup);
                }
            }
        }
        Ok(s.to_string())
    }
}
