//! Options to and from SDP `m=` sections through `sdp-types`: `a=rtpmap`
//! (RFC 8866 section 6.6), `a=fmtp` (6.15), `a=rtcp-fb` (RFC 4585 section
//! 4.2), `a=extmap` (RFC 8285 section 8), `a=framerate` (RFC 8866 section
//! 6.5) and `b=TIAS`/`b=AS` (RFC 3890, RFC 8866 section 5.8) for the
//! required maximum frame rate and bitrate.

use sdp_types::{
    Attribute, Bandwidth, Connection, Fmtp, Media, Origin, RtcpFb, RtcpFbPt, RtpMap, Session, TypedAttribute,
};

use crate::error::SdpError;
use crate::types::{Codec, Feedback, HeaderExtension, Kind, Options, PayloadType};

/// `token` of RFC 8866 section 9 (the grammar of encoding names and of the
/// words of `a=rtcp-fb`).
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`{|}~".contains(&b))
}

/// A format parameter name (`with_eq` false) or value that `a=fmtp` can
/// carry unchanged: printable, no space, no `;` (the separator), and no `=`
/// in a name (values such as base64 may end in `=`).
fn is_fmtp_text(s: &str, with_eq: bool) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic() && b != b';' && (with_eq || b != b'='))
}

fn typed<T: TypedAttribute>(m: &Media) -> Result<Vec<T>, SdpError> {
    m.attributes_typed::<T>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| SdpError::Attribute { attribute: T::NAME, source })
}

impl Options {
    /// Reads every audio and video `m=` section of an SDP description (ports
    /// of 0, which reject a section, are skipped, but for `a=bundle-only`
    /// sections). A payload type that an
    /// earlier section of the same kind defined keeps that definition, as do
    /// header extension IDs: bundled sections share them (RFC 8843 section 9.1.1).
    pub fn from_sdp(sdp: &[u8]) -> Result<Self, SdpError> {
        Self::from_session(&Session::parse(sdp)?)
    }

    /// [`Options::from_sdp`] for a parsed session.
    pub fn from_session(session: &Session) -> Result<Self, SdpError> {
        let mut out = Options::default();
        for m in &session.medias {
            // Port 0 rejects a section, unless it is bundle-only (RFC 8843
            // section 6: its port is the BUNDLE group's).
            let bundle_only = m.attributes.iter().any(|a| a.attribute.eq_ignore_ascii_case("bundle-only"));
            if (m.port == 0 && !bundle_only) || m.media.parse::<Kind>().is_err() || !m.parse_transport_proto().is_rtp()
            {
                continue;
            }
            let one = Self::from_media(m)?;
            for c in one.codecs {
                if !out.codecs.iter().any(|o| o.kind == c.kind && o.payload_id == c.payload_id) {
                    out.codecs.push(c);
                }
            }
            for e in one.header_extensions {
                if !out.header_extensions.iter().any(|o| o.kind == e.kind && o.id == e.id) {
                    out.header_extensions.push(e);
                }
            }
            for kind in Kind::ALL {
                if out.required.get(kind).is_empty() {
                    out.required.set(kind, one.required.get(kind));
                }
            }
        }
        out.validate()?;
        Ok(out)
    }

    /// Reads one `m=` section: its formats in order, with their `a=rtpmap`
    /// (or the static mapping of RFC 3551 section 6), `a=fmtp` and
    /// `a=rtcp-fb` (`*` applies to every format), its `a=extmap`, and the
    /// required maximum bitrate (`b=TIAS`, else `b=AS` in kbit/s) and frame
    /// rate (`a=framerate`).
    pub fn from_media(m: &Media) -> Result<Self, SdpError> {
        let kind: Kind = m.media.parse().map_err(|()| SdpError::NotAudioOrVideo)?;
        let rtpmaps: Vec<RtpMap> = typed(m)?;
        let fmtps: Vec<Fmtp> = typed(m)?;
        // RFC 4585 section 4.2 spells its values in ABNF literals, which ignore
        // case; sdp-types matches lower case, so the values are lowered first.
        let feedback = m
            .get_attribute_values(RtcpFb::NAME)
            .map(|v| v.unwrap_or_default().to_ascii_lowercase().parse::<RtcpFb>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| SdpError::Attribute { attribute: RtcpFb::NAME, source })?;
        let extmaps: Vec<sdp_types::ExtMap> = typed(m)?;
        let mut out = Options::default();
        for token in m.fmt.split_ascii_whitespace() {
            let pt = token
                .parse::<u8>()
                .ok()
                .and_then(PayloadType::new)
                .ok_or(SdpError::Field { field: "m= format", reason: "not an RTP payload type 0-127" })?;
            if out.codecs.iter().any(|c| c.payload_id == pt) {
                return Err(SdpError::Field { field: "m= format", reason: "payload type listed twice" });
            }
            let mut codec = match rtpmaps.iter().find(|r| r.payload_type == pt.get()) {
                Some(r) => {
                    let channels = match r.encoding_params.as_deref() {
                        // RFC 7587 section 7 requires `opus/48000/2`; a peer
                        // that leaves the count out (webrtcbin does when its
                        // caps lack it) still means Opus, which is always
                        // signaled as two channels, not mono.
                        None if r.encoding_name.eq_ignore_ascii_case("opus") => Some(2),
                        None => None,
                        Some(c) => {
                            Some(c.trim().parse::<u16>().ok().filter(|c| *c > 0).ok_or(SdpError::Field {
                                field: "a=rtpmap channels",
                                reason: "not a positive number",
                            })?)
                        }
                    };
                    Codec::new(pt, kind, &r.encoding_name, r.clock_rate, channels)
                }
                None => match pt.static_mapping() {
                    Some((k, name, rate, ch)) if k == kind => {
                        Codec::new(pt, kind, name, rate, (kind == Kind::Audio && ch != 1).then_some(ch))
                    }
                    _ => return Err(SdpError::MissingRtpmap(pt.get())),
                },
            };
            if kind == Kind::Video {
                codec.channels = None;
            }
            if let Some(f) = fmtps.iter().find(|f| f.fmt == pt.get()) {
                codec.parameters = f
                    .format_specific_params
                    .iter()
                    .filter(|p| !p.param.trim().is_empty())
                    .map(|p| (p.param.trim().to_owned(), p.val.as_deref().unwrap_or("").trim().to_owned()))
                    .collect();
            }
            for fb in &feedback {
                let applies = match fb.pt {
                    RtcpFbPt::Wildcard => true,
                    RtcpFbPt::Fmt(p) => p == pt.get(),
                };
                if applies {
                    let text = fb.val.to_string();
                    let (k, p) = match text.split_once(' ') {
                        Some((k, p)) => (k, Some(p)),
                        None => (text.as_str(), None),
                    };
                    let f = Feedback::new(k, p);
                    if !codec.rtcp_feedback.contains(&f) {
                        codec.rtcp_feedback.push(f);
                    }
                }
            }
            out.codecs.push(codec);
        }
        for e in extmaps {
            if !out.header_extensions.iter().any(|o| o.id == e.id) {
                out.header_extensions.push(HeaderExtension { kind, id: e.id, uri: e.uri });
            }
        }
        let mut req = out.required.get(kind);
        let tias = m.bandwidths.iter().find(|b| b.bwtype.eq_ignore_ascii_case("TIAS"));
        let as_ = m.bandwidths.iter().find(|b| b.bwtype.eq_ignore_ascii_case("AS"));
        req.max_bitrate = match (tias, as_) {
            (Some(t), _) => Some(u32::try_from(t.bandwidth).unwrap_or(u32::MAX)),
            (None, Some(a)) => Some(u32::try_from(a.bandwidth.saturating_mul(1000)).unwrap_or(u32::MAX)),
            (None, None) => None,
        };
        if kind == Kind::Video
            && let Some(Some(v)) = m.get_first_attribute_value("framerate")
        {
            // RFC 8866 section 6.5: a decimal frame rate; the limit is its whole part.
            let whole = v.trim().split('.').next().unwrap_or("");
            req.max_framerate =
                Some(whole.parse().map_err(|_| SdpError::Field { field: "a=framerate", reason: "not a number" })?);
        }
        out.required.set(kind, req);
        out.validate()?;
        Ok(out)
    }

    /// Writes the `m=` section of one kind: `m=<kind> 9 UDP/TLS/RTP/SAVPF`
    /// with the codecs' payload types in order, `c=IN IP4 0.0.0.0` (RFC 8829
    /// section 5.2.1), the required maximum bitrate as `b=TIAS`, the header
    /// extensions, then per codec `a=rtpmap`, `a=rtcp-fb` and `a=fmtp`, and for
    /// video the required maximum frame rate as `a=framerate`. Optional
    /// constraints have no SDP form and are not written.
    pub fn to_media(&self, kind: Kind) -> Result<Media, SdpError> {
        self.validate()?;
        let codecs: Vec<&Codec> = self.codecs_of(kind).collect();
        let fmt = codecs.iter().map(|c| c.payload_id.to_string()).collect::<Vec<_>>().join(" ");
        let mut m = Media::new(
            match kind {
                Kind::Audio => sdp_types::MediaType::Audio,
                Kind::Video => sdp_types::MediaType::Video,
            },
            9,
            sdp_types::TransportProto::UdpTlsRtpSavpf,
            fmt,
        );
        m.add_connection(Connection::from_ip_addr(std::net::Ipv4Addr::UNSPECIFIED));
        let req = self.required.get(kind);
        if let Some(b) = req.max_bitrate {
            m.add_bandwidth(Bandwidth { bwtype: "TIAS".into(), bandwidth: u64::from(b) });
        }
        for e in self.header_extensions.iter().filter(|e| e.kind == kind) {
            if e.uri.bytes().any(|b| !b.is_ascii_graphic()) {
                return Err(SdpError::Field { field: "a=extmap uri", reason: "not printable ASCII without spaces" });
            }
            m.add_attribute(sdp_types::ExtMap::new(e.id, &e.uri));
        }
        for c in codecs {
            if !is_token(&c.name) || c.name.contains('/') {
                return Err(SdpError::Field { field: "a=rtpmap encoding name", reason: "not an RFC 8866 token" });
            }
            let mut r = RtpMap::new(c.payload_id.get(), &c.name, c.hz_rate);
            // RFC 8866 section 6.6: the channel count may be left out when it is 1;
            // a count the dictionary states is written.
            if let (Kind::Audio, Some(n)) = (kind, c.channels) {
                r.set_encoding_params(n);
            }
            m.add_attribute(r);
            for f in &c.rtcp_feedback {
                if !is_token(&f.kind) || f.parameter.as_deref().is_some_and(|p| !p.split(' ').all(is_token)) {
                    return Err(SdpError::Field { field: "a=rtcp-fb", reason: "not RFC 4585 tokens" });
                }
                let value = format!("{} {f}", c.payload_id);
                // Write only what reads back as the same feedback.
                let again = value.parse::<RtcpFb>().map(|fb| fb.val.to_string());
                if again.as_deref() != Ok(&value[value.find(' ').map_or(0, |i| i + 1)..]) {
                    return Err(SdpError::Field {
                        field: "a=rtcp-fb",
                        reason: "not a feedback value RFC 4585 can carry",
                    });
                }
                m.add_attribute(Attribute::with_value("rtcp-fb", value));
            }
            if !c.parameters.is_empty() {
                let mut f = Fmtp::new(c.payload_id.get());
                for (k, v) in c.parameters.iter() {
                    if k.is_empty() || !is_fmtp_text(k, false) || !is_fmtp_text(v, true) {
                        return Err(SdpError::Field { field: "a=fmtp", reason: "a parameter a=fmtp cannot carry" });
                    }
                    f.add_format_specific_param(if v.is_empty() {
                        sdp_types::FmtpParam::new(k)
                    } else {
                        sdp_types::FmtpParam::with_value(k, v)
                    });
                }
                m.add_attribute(f);
            }
        }
        if kind == Kind::Video
            && let Some(fr) = req.max_framerate
        {
            m.add_attribute(Attribute::with_value("framerate", fr));
        }
        Ok(m)
    }

    /// A whole SDP description with one `m=` section per kind that has codecs
    /// (audio first), for tools and tests; transport attributes are not ours.
    pub fn to_session(&self) -> Result<Session, SdpError> {
        let mut s = Session::new(Origin::with_ip_addr("0", 1, std::net::Ipv4Addr::UNSPECIFIED), "-");
        for kind in Kind::ALL {
            if self.codecs_of(kind).next().is_some() {
                s.add_media(self.to_media(kind)?);
            }
        }
        Ok(s)
    }

    /// [`Options::to_session`] written out.
    pub fn to_sdp(&self) -> Result<String, SdpError> {
        Ok(self.to_session()?.to_string())
    }
}
