//! This side's offers, one `m=` section per sent track (unified plan, JSEP
//! RFC 8829 section 5.2), and renegotiation: the sections are kept across
//! offers and answers, so a new offer keeps every section in its place with
//! its `mid` (RFC 3264 section 8), a sent track stays in its section, a
//! track added takes a free section of its kind or a new one at the end, a
//! removed track leaves its section receiving only. Later offers use the
//! payload types already agreed, and `a=setup` says the DTLS role the call
//! has (RFC 8842 section 5.2) rather than `actpass`.

use rtc_codecs::{Kind, Options};
use sdp_types::{Attribute, Connection as SdpConnection, Media, MediaType, Origin, Session, TransportProto};

use crate::TrackId;
use crate::answer::{Dir, OfferLayout, What};
use crate::connection::Connection;
use crate::desc::{ConnectionDescription, Direction};
use crate::error::Error;
use crate::sdp::{
    DATA_CHANNEL, DTLS_PROTO, PROTO, add_candidates, add_keying, add_pacing, add_send_layers, add_track_ssrcs,
};

/// What a section carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Carries {
    /// Audio or video.
    Rtp(Kind),
    /// The data channel section.
    Data,
    /// A section of the peer's offer this side rejected (kept, with port 0,
    /// for its place): its media, protocol and formats.
    Rejected { media: String, proto: String, fmt: String },
}

/// One section of this side's SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Section {
    pub(crate) mid: String,
    pub(crate) carries: Carries,
    /// The sent track in it.
    pub(crate) track: Option<TrackId>,
}

/// A `mid` no section has yet: the smallest number not taken.
fn fresh_mid(sections: &[Section]) -> String {
    (0..).map(|i: u32| i.to_string()).find(|m| sections.iter().all(|s| s.mid != *m)).unwrap_or_default()
}

impl Connection {
    /// The local tracks in the order they were added, with their kinds: of
    /// a stream's simulcast layers (tracks with a `rid`) of one kind, the
    /// first, whose section carries them all.
    fn local_tracks(&self) -> Vec<(TrackId, Kind)> {
        self.streams(Direction::Local)
            .into_iter()
            .flat_map(|s| {
                let mut layered: Vec<Kind> = Vec::new();
                self.stream_tracks(s)
                    .iter()
                    .filter_map(|&t| {
                        let d = self.track_description(t)?;
                        if d.rid.is_some() {
                            if layered.contains(&d.kind) {
                                return None;
                            }
                            layered.push(d.kind);
                        }
                        Some((t, d.kind))
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The simulcast layers a section whose sent track is `first` carries:
    /// with their rids, the tracks of its stream and kind with a `rid`
    /// (none when `first` has none).
    pub(crate) fn layers_of(&self, first: TrackId) -> Vec<(TrackId, String)> {
        let Some(d) = self.track_description(first).filter(|d| d.rid.is_some()) else { return Vec::new() };
        let Some(stream) = self.stream_of(first) else { return Vec::new() };
        self.stream_tracks(stream)
            .iter()
            .filter_map(|&t| {
                let x = self.track_description(t)?;
                let rid = x.rid.clone().filter(|_| x.kind == d.kind)?;
                Some((t, rid))
            })
            .collect()
    }

    /// The `mid` of the section a local track is sent in (a simulcast
    /// layer's is its first layer's), once SDP placed it.
    pub(crate) fn mid_of(&self, track: TrackId) -> Option<&str> {
        let direct = self.sdp_sections.iter().find(|s| s.track == Some(track));
        let section = direct.or_else(|| {
            let d = self.track_description(track)?;
            d.rid.as_ref()?;
            let stream = self.stream_of(track)?;
            self.sdp_sections.iter().find(|s| {
                s.track.is_some_and(|f| {
                    self.stream_of(f) == Some(stream)
                        && self.track_description(f).is_some_and(|x| x.kind == d.kind && x.rid.is_some())
                })
            })
        })?;
        Some(section.mid.as_str())
    }

    /// The sections of the answer to `offer`: the offer's, each sent track
    /// in the section it had (when the offer still has it and its offerer
    /// receives), the others in the first free section of their kind whose
    /// offerer receives.
    pub(crate) fn plan_answer(&self, offer: &OfferLayout) -> Vec<Section> {
        let mut sections: Vec<Section> = offer
            .sections
            .iter()
            .map(|o| Section {
                mid: o.mid.clone(),
                carries: match o.what {
                    What::Rtp(kind) => Carries::Rtp(kind),
                    What::Data => Carries::Data,
                    What::Other => {
                        Carries::Rejected { media: o.media.clone(), proto: o.proto.clone(), fmt: o.fmt.clone() }
                    }
                },
                track: None,
            })
            .collect();
        let receives = |mid: &str| offer.sections.iter().any(|o| o.mid == mid && o.dir.offerer_receives());
        let tracks = self.local_tracks();
        let mut unplaced = Vec::new();
        for (t, kind) in tracks {
            let before = self.sdp_sections.iter().find(|s| s.track == Some(t)).map(|s| s.mid.clone());
            let slot = before.and_then(|mid| {
                sections.iter().position(|s| {
                    s.mid == mid && s.carries == Carries::Rtp(kind) && s.track.is_none() && receives(&s.mid)
                })
            });
            match slot {
                Some(i) => sections[i].track = Some(t),
                None => unplaced.push((t, kind)),
            }
        }
        for (t, kind) in unplaced {
            if let Some(s) =
                sections.iter_mut().find(|s| s.carries == Carries::Rtp(kind) && s.track.is_none() && receives(&s.mid))
            {
                s.track = Some(t);
            }
        }
        if !offer.bundled {
            // One transport: the first section taken keeps it, the others
            // are rejected (see the answer), and carry no track.
            let mut taken = false;
            for (s, o) in sections.iter_mut().zip(&offer.sections) {
                if matches!(s.carries, Carries::Rtp(_) | Carries::Data) && self.takes(o) {
                    if taken {
                        s.carries =
                            Carries::Rejected { media: o.media.clone(), proto: o.proto.clone(), fmt: o.fmt.clone() };
                        s.track = None;
                    }
                    taken = true;
                }
            }
        }
        sections
    }

    /// The sections of an offer now: those of the exchange in force (the
    /// answer being made, else the last offer or answer), gone tracks
    /// taken out, new ones placed, a section for each kind with codecs
    /// and none yet (to receive), the data section when data is on.
    pub(crate) fn plan_offer(&self) -> Vec<Section> {
        let mut sections = match self.remote_offer.as_deref() {
            Some(offer) => self.plan_answer(offer),
            None => self.sdp_sections.clone(),
        };
        let tracks = self.local_tracks();
        for s in &mut sections {
            if s.track.is_some_and(|t| !tracks.iter().any(|(x, _)| *x == t)) {
                s.track = None;
            }
        }
        for (t, kind) in tracks {
            if sections.iter().any(|s| s.track == Some(t)) {
                continue;
            }
            match sections.iter_mut().find(|s| s.carries == Carries::Rtp(kind) && s.track.is_none()) {
                Some(s) => s.track = Some(t),
                None => {
                    let mid = fresh_mid(&sections);
                    sections.push(Section { mid, carries: Carries::Rtp(kind), track: Some(t) });
                }
            }
        }
        for kind in [Kind::Audio, Kind::Video] {
            let has_codecs = self.local_options.codecs_of(kind).next().is_some();
            if has_codecs && !sections.iter().any(|s| s.carries == Carries::Rtp(kind)) {
                let mid = fresh_mid(&sections);
                sections.push(Section { mid, carries: Carries::Rtp(kind), track: None });
            }
        }
        if self.local_description().data.is_some() && !sections.iter().any(|s| s.carries == Carries::Data) {
            let mid = fresh_mid(&sections);
            sections.push(Section { mid, carries: Carries::Data, track: None });
        }
        sections
    }

    /// A new offer (for the first exchange, or to renegotiate: after a
    /// stream was added or removed, say): the sections are fixed as
    /// [`Connection::local_sdp`] shows them, an offer of the peer's not
    /// answered yet is dropped, and the SDP version goes up. Apply the
    /// peer's answer with [`Connection::set_remote_sdp`].
    pub fn create_offer(&mut self) -> Result<String, Error> {
        let sections = self.plan_offer();
        self.sdp_sections = sections;
        self.remote_offer = None;
        self.sdp_version += 1;
        self.local_sdp()
    }

    /// This side's offer with `d` (the local description) in the planned
    /// sections.
    pub(crate) fn offer_sdp(&self, d: &ConnectionDescription) -> Result<String, Error> {
        let (Some(ufrag), Some(pwd)) = (&d.context_id, &d.secret) else {
            return Err(Error::InvalidDescription("an SDP description needs context-id and secret".into()));
        };
        let socket = d.sockets.first();
        let fingerprints = socket.map(|s| s.options.fingerprints.as_slice()).unwrap_or_default();
        let dtls = d.keys.is_empty();
        if dtls && fingerprints.is_empty() {
            return Err(Error::InvalidDescription("an SDP description needs keys or a socket fingerprint".into()));
        }
        let setup = socket.and_then(|s| s.options.setup.as_deref()).unwrap_or("actpass");
        let mux = socket.is_none_or(|s| s.options.mux);
        let cname = d.cname.as_deref().unwrap_or("-");
        // Agreed payload types and extensions stay; a kind never agreed
        // offers the local options.
        let agreed = self.agreement.as_ref().map(|a| Options {
            codecs: a.codecs.clone(),
            header_extensions: a.header_extensions.clone(),
            ..Options::default()
        });
        let options_for = |kind: Kind| match &agreed {
            Some(a) if a.codecs_of(kind).next().is_some() => a,
            _ => &*self.local_options,
        };
        let mut s =
            Session::new(Origin::with_ip_addr("0", self.sdp_version.max(1), std::net::Ipv4Addr::LOCALHOST), "-");
        s.add_attribute_with_value("msid-semantic", " WMS");
        s.add_attribute_with_value("ice-options", "trickle");
        add_pacing(&mut s, socket);
        let mut bundle = Vec::new();
        for section in self.plan_offer() {
            let m = match &section.carries {
                Carries::Rtp(kind) => {
                    let mut m = options_for(*kind).to_media(*kind).map_err(|e| Error::InvalidOptions(e.to_string()))?;
                    m.proto = if dtls { DTLS_PROTO.into() } else { PROTO.into() };
                    m.add_attribute_with_value("mid", &section.mid);
                    add_keying(&mut m, ufrag, pwd, &d.keys, fingerprints, setup);
                    if mux {
                        m.add_attribute(Attribute::new("rtcp-mux"));
                    }
                    let track = section.track.and_then(|t| {
                        let desc = self.track_description(t)?;
                        let stream = d.streams.iter().find(|s| s.tracks.iter().any(|x| x.track_id == desc.track_id))?;
                        Some((stream.stream_id.clone(), desc))
                    });
                    let dir = if track.is_some() { Dir::SendRecv } else { Dir::RecvOnly };
                    m.add_attribute(Attribute::new(dir.name()));
                    let layers = section.track.map(|t| self.layers_of(t)).unwrap_or_default();
                    if let Some((stream, t)) = &track
                        && !layers.is_empty()
                    {
                        let rids: Vec<&str> = layers.iter().map(|(_, r)| r.as_str()).collect();
                        add_send_layers(&mut m, stream, &t.track_id, &rids);
                    } else if let Some((stream, t)) = track
                        && let Some(ssrc) = t.ssrc
                    {
                        add_track_ssrcs(&mut m, cname, &stream, &t.track_id, ssrc, t.rtx_ssrc);
                    }
                    add_candidates(&mut m, socket);
                    bundle.push(section.mid.clone());
                    m
                }
                Carries::Data if dtls => {
                    let data = d.data.unwrap_or_default();
                    let mut m = Media::new(MediaType::Application, 9, TransportProto::UdpDtlsSctp, DATA_CHANNEL);
                    m.add_connection(SdpConnection::from_ip_addr(std::net::Ipv4Addr::UNSPECIFIED));
                    m.add_attribute_with_value("mid", &section.mid);
                    add_keying(&mut m, ufrag, pwd, &[], fingerprints, setup);
                    add_candidates(&mut m, socket);
                    m.add_attribute_with_value("sctp-port", data.port);
                    m.add_attribute_with_value("max-message-size", data.max_message_size);
                    bundle.push(section.mid.clone());
                    m
                }
                Carries::Data => continue,
                Carries::Rejected { media, proto, fmt } => {
                    let mut m = Media::new(MediaType::Application, 0, TransportProto::UdpDtlsSctp, "");
                    m.media = media.clone();
                    m.proto = proto.clone();
                    m.fmt = fmt.clone();
                    m.add_connection(SdpConnection::from_ip_addr(std::net::Ipv4Addr::UNSPECIFIED));
                    m.add_attribute_with_value("mid", &section.mid);
                    m
                }
            };
            s.add_media(m);
        }
        if bundle.is_empty() {
            return Err(Error::InvalidOptions("no audio or video codec and no data: SDP needs an m= section".into()));
        }
        s.attributes.insert(0, Attribute::with_value("group", format!("BUNDLE {}", bundle.join(" "))));
        Ok(s.to_string())
    }
}
