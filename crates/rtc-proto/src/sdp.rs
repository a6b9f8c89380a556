//! A connection description and its codec options as an SDP offer or answer
//! for SDP-speaking peers, and back: the `m=` sections are rtc-codecs'
//! (`a=rtpmap`, `a=fmtp`, `a=rtcp-fb`, `a=extmap`), to which this adds the
//! transport of the seeds' description: `a=ice-ufrag` / `a=ice-pwd` (the
//! `context-id` and `secret`), the session-level `a=ice-pacing` (RFC 8839
//! section 5.5, the first socket's `ice-pacing`) or, for an ICE lite
//! socket, `a=ice-lite` (section 5.3), `a=crypto` (RFC 4568,
//! the `keys`),
//! `a=candidate`, `a=rtcp-mux`, BUNDLE with `a=mid`, and per track `a=msid`
//! and `a=ssrc` with the `cname`. The description's `data` is an
//! `m=application … UDP/DTLS/SCTP webrtc-datachannel` section (RFC 8841,
//! RFC 8832, JSEP) after the audio and video ones, bundled with them, with
//! `a=sctp-port` and `a=max-message-size`; the legacy `DTLS/SCTP` form with
//! `a=sctpmap` is read too. Data streams themselves are not in SDP: they
//! open in band (RFC 8832) or are agreed by the applications.

use rtc_candidate::Candidate;
use rtc_codecs::{Kind, Options};
use sdp_types::{Attribute, Connection, Media, MediaType, Session, TransportProto};

use crate::desc::{
    ConnectionDescription, CryptoKey, DataTransport, SocketDescription, SocketOptions, StreamDescription,
    TrackDescription,
};
use crate::error::Error;

/// RFC 4568 keying: SRTP with keys in the description.
pub(crate) const PROTO: &str = "RTP/SAVPF";
/// DTLS-SRTP keying (RFC 5764), what browsers use.
pub(crate) const DTLS_PROTO: &str = "UDP/TLS/RTP/SAVPF";
/// The `fmt` of a data channel section (RFC 8841, RFC 8832).
pub(crate) const DATA_CHANNEL: &str = "webrtc-datachannel";
/// The SCTP port when a data section names none (RFC 8841).
const DEFAULT_SCTP_PORT: u16 = 5000;
/// The largest message a peer takes when it says nothing (RFC 8841).
const DEFAULT_MAX_MESSAGE_SIZE: u64 = 65536;

pub(crate) fn attr<'a, 'n>(attrs: &'a [Attribute], name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
    attrs.iter().filter(move |a| a.attribute.eq_ignore_ascii_case(name)).filter_map(|a| a.value.as_deref())
}

pub(crate) fn has(attrs: &[Attribute], name: &str) -> bool {
    attrs.iter().any(|a| a.attribute.eq_ignore_ascii_case(name))
}

/// A sent track's lines in its section: `a=msid`, and `a=ssrc` with the
/// CNAME and msid; with its retransmission SSRC when the section carries
/// `rtx` (RFC 4588 section 8.3: `a=ssrc-group:FID <media> <rtx>`).
pub(crate) fn add_track_ssrcs(m: &mut Media, cname: &str, stream: &str, track: &str, ssrc: u32, rtx: Option<u32>) {
    let carries_rtx = attr(&m.attributes, "rtpmap").any(|v| {
        v.split_ascii_whitespace().nth(1).is_some_and(|c| c.get(..4).is_some_and(|n| n.eq_ignore_ascii_case("rtx/")))
    });
    let rtx = rtx.filter(|_| carries_rtx);
    m.add_attribute_with_value("msid", format!("{stream} {track}"));
    if let Some(r) = rtx {
        m.add_attribute_with_value("ssrc-group", format!("FID {ssrc} {r}"));
    }
    for id in std::iter::once(ssrc).chain(rtx) {
        m.add_attribute_with_value("ssrc", format!("{id} cname:{cname}"));
        m.add_attribute_with_value("ssrc", format!("{id} msid:{stream} {track}"));
    }
}

/// The most simulcast layers a section is answered with (RFC 8853 section
/// 5.3: the answerer may remove streams from the offer's list); each layer
/// is a remote track, counted against the remote-track budget too.
pub(crate) const MAX_LAYERS: usize = 4;

/// Whether `rid` is an RFC 8851 `rid-id` (alphanumerics, `-`, `_`) that
/// fits the one-byte header extension form (at most 16 octets).
pub(crate) fn valid_rid(rid: &str) -> bool {
    (1..=16).contains(&rid.len()) && rid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The simulcast layers a section sends (`dir` "send": RFC 8853
/// `a=simulcast:send`, each id with an RFC 8851 `a=rid:<id> send` line)
/// or would receive (`dir` "recv"), in the section's order, each with
/// whether it is paused (`~`): of each stream's alternatives (`h,h2`) the
/// first with such a line, at most [`MAX_LAYERS`] streams; empty when the
/// section has no such simulcast or does not negotiate the RtpStreamId
/// extension (without it the layers cannot be told apart).
pub(crate) fn simulcast_layers(m: &Media, dir: &str) -> Vec<(String, bool)> {
    let rid_ext = attr(&m.attributes, "extmap")
        .any(|v| v.split_ascii_whitespace().nth(1) == Some(crate::connection::extensions::RTP_STREAM_ID));
    let Some(list) = attr(&m.attributes, "simulcast").find_map(|v| {
        let mut words = v.split_ascii_whitespace();
        loop {
            match (words.next()?, words.next()?) {
                (d, list) if d.eq_ignore_ascii_case(dir) => return Some(list),
                _ => {}
            }
        }
    }) else {
        return Vec::new();
    };
    if !rid_ext {
        return Vec::new();
    }
    let sent = |id: &str| {
        attr(&m.attributes, "rid").any(|v| {
            let mut words = v.split_ascii_whitespace();
            words.next() == Some(id) && words.next().is_some_and(|d| d.eq_ignore_ascii_case(dir))
        })
    };
    let mut layers: Vec<(String, bool)> = Vec::new();
    for stream in list.split(';') {
        if layers.len() == MAX_LAYERS {
            break;
        }
        let pick = stream.split(',').find_map(|alt| {
            let (id, paused) = match alt.strip_prefix('~') {
                Some(id) => (id, true),
                None => (alt, false),
            };
            (valid_rid(id) && sent(id) && !layers.iter().any(|(l, _)| l == id)).then(|| (id.to_owned(), paused))
        });
        layers.extend(pick);
    }
    layers
}

/// A sent track's simulcast layers in its section (RFC 8853, RFC 8851):
/// `a=msid`, `a=rid:<id> send` per layer and `a=simulcast:send` with them,
/// and no `a=ssrc` lines (the peer learns the SSRCs from the packets' MID
/// and RID).
pub(crate) fn add_send_layers(m: &mut Media, stream: &str, track: &str, rids: &[&str]) {
    m.add_attribute_with_value("msid", format!("{stream} {track}"));
    for rid in rids {
        m.add_attribute_with_value("rid", format!("{rid} send"));
    }
    m.add_attribute_with_value("simulcast", format!("send {}", rids.join(";")));
}

/// Whether a section is live: a port other than 0, or port 0 with
/// `a=bundle-only` (RFC 8843 section 6: the offerer bundles it and leaves
/// its port to the BUNDLE group).
fn live(m: &Media) -> bool {
    m.port != 0 || has(&m.attributes, "bundle-only")
}

/// An audio or video section over RTP that is not rejected: what rtc-codecs
/// reads.
pub(crate) fn is_rtp_media(m: &Media) -> bool {
    live(m) && m.media.parse::<Kind>().is_ok() && m.parse_transport_proto().is_rtp()
}

/// The longest SDP text read (a browser's offer with 64 tracks is about
/// 200 KB) and the most `m=` sections (a connection takes 64 remote tracks,
/// data and rejected sections besides). Checked before anything is parsed:
/// parsing holds about ten times the text, so a megabyte of hostile SDP
/// would cost ten.
pub const MAX_SDP_LEN: usize = 512 * 1024;
/// See [`MAX_SDP_LEN`].
pub const MAX_SDP_SECTIONS: usize = 256;

/// Refuses an SDP text over [`MAX_SDP_LEN`] or [`MAX_SDP_SECTIONS`],
/// without allocating.
pub(crate) fn check_size(sdp: &str) -> Result<(), Error> {
    if sdp.len() > MAX_SDP_LEN {
        return Err(Error::InvalidDescription(format!("SDP of {} octets: more than {MAX_SDP_LEN}", sdp.len())));
    }
    let sections = sdp.split('\n').filter(|l| l.starts_with("m=")).count();
    if sections > MAX_SDP_SECTIONS {
        return Err(Error::InvalidDescription(format!("{sections} SDP sections: more than {MAX_SDP_SECTIONS}")));
    }
    Ok(())
}

/// Whether the peer sends in a section (RFC 3264 section 6: `sendrecv`,
/// the default, or `sendonly`).
fn sends(m: &Media) -> bool {
    !has(&m.attributes, "recvonly") && !has(&m.attributes, "inactive")
}

/// A data channel section that is not rejected: `m=application` over
/// `UDP/DTLS/SCTP` with the `webrtc-datachannel` format, or the legacy
/// `DTLS/SCTP` form whose `a=sctpmap` names `webrtc-datachannel`.
pub(crate) fn is_data(m: &Media) -> bool {
    if !live(m) || !m.media.eq_ignore_ascii_case(MediaType::Application.as_str()) {
        return false;
    }
    match m.parse_transport_proto() {
        TransportProto::UdpDtlsSctp => m.fmt.split_ascii_whitespace().any(|f| f.eq_ignore_ascii_case(DATA_CHANNEL)),
        TransportProto::DtlsSctp => legacy_sctpmap(m).next().is_some(),
        _ => false,
    }
}

/// The legacy `a=sctpmap:<port> webrtc-datachannel [<streams>]` lines of a
/// section: their port field.
fn legacy_sctpmap(m: &Media) -> impl Iterator<Item = &str> {
    attr(&m.attributes, "sctpmap").filter_map(|v| {
        let mut words = v.split_ascii_whitespace();
        let port = words.next()?;
        words.next().is_some_and(|p| p.eq_ignore_ascii_case(DATA_CHANNEL)).then_some(port)
    })
}

/// The SCTP port and largest message of a data section: `a=sctp-port`,
/// else the legacy `a=sctpmap` port, else 5000; `a=max-message-size`, else
/// 65536.
fn read_data(m: &Media) -> Result<DataTransport, Error> {
    let port = match attr(&m.attributes, "sctp-port").next().or_else(|| legacy_sctpmap(m).next()) {
        Some(v) => match v.trim().parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => return Err(Error::InvalidDescription(format!("SCTP port {v:?}: not a port from 1 to 65535"))),
        },
        None => DEFAULT_SCTP_PORT,
    };
    let max_message_size = match attr(&m.attributes, "max-message-size").next() {
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map_err(|_| Error::InvalidDescription(format!("a=max-message-size:{v}: not a number")))?,
        None => DEFAULT_MAX_MESSAGE_SIZE,
    };
    Ok(DataTransport { port, max_message_size })
}

/// The ICE and keying lines every section carries: `a=ice-ufrag`,
/// `a=ice-pwd`, then `a=crypto` per key, or with DTLS the fingerprints and
/// `a=setup`.
pub(crate) fn add_keying(
    m: &mut Media,
    ufrag: &str,
    pwd: &str,
    keys: &[CryptoKey],
    fingerprints: &[String],
    setup: &str,
) {
    m.add_attribute_with_value("ice-ufrag", ufrag);
    m.add_attribute_with_value("ice-pwd", pwd);
    for k in keys {
        m.add_attribute_with_value("crypto", k);
    }
    if keys.is_empty() {
        for f in fingerprints {
            m.add_attribute_with_value("fingerprint", f);
        }
        m.add_attribute_with_value("setup", setup);
    }
}

/// The session-level `a=ice-pacing:<ms>` (RFC 8839 section 5.5) of the
/// socket's `ice-pacing`, when it has one; for a socket with `ice-lite`,
/// `a=ice-lite` (section 5.3) instead (section 4.3.2: a lite agent does
/// not include `a=ice-pacing`).
pub(crate) fn add_pacing(s: &mut Session, socket: Option<&SocketDescription>) {
    if socket.is_some_and(|s| s.options.ice_lite) {
        s.add_attribute(Attribute::new("ice-lite"));
        return;
    }
    if let Some(ms) = socket.and_then(|s| s.options.ice_pacing) {
        s.add_attribute_with_value("ice-pacing", ms);
    }
}

/// Reads `a=ice-pacing` (RFC 8839 section 5.5: `1*10DIGIT` milliseconds),
/// a session-level attribute, also taken from the first transport section
/// that has it. The range is checked when the description is set.
fn read_pacing(s: &Session, transport: &[&Media]) -> Result<Option<u64>, Error> {
    let Some(v) = attr(&s.attributes, "ice-pacing")
        .next()
        .or_else(|| transport.iter().find_map(|m| attr(&m.attributes, "ice-pacing").next()))
    else {
        return Ok(None);
    };
    let v = v.trim();
    if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::InvalidDescription(format!("a=ice-pacing:{v}: not 1 to 10 digits")));
    }
    v.parse().map(Some).map_err(|_| Error::InvalidDescription(format!("a=ice-pacing:{v}")))
}

/// The socket's candidates as `a=candidate` lines.
pub(crate) fn add_candidates(m: &mut Media, socket: Option<&SocketDescription>) {
    for c in socket.map(|s| s.candidates.as_slice()).unwrap_or_default() {
        let line = c.to_string();
        m.add_attribute_with_value("candidate", line.strip_prefix("candidate:").unwrap_or(&line));
    }
}

impl ConnectionDescription {
    /// Writes this description and `options` as an SDP offer or answer (the
    /// seeds have no offerer: the same text serves both). One `m=` section
    /// per kind with codecs, then with `data` one `m=application` section
    /// (`UDP/DTLS/SCTP webrtc-datachannel` with `a=sctp-port` and
    /// `a=max-message-size`), all bundled; candidates of the first socket.
    /// With `keys`, RFC 4568 `a=crypto` over `RTP/SAVPF`; without, DTLS-SRTP
    /// over `UDP/TLS/RTP/SAVPF` with the first socket's `a=fingerprint` and
    /// `a=setup` (its `setup`, else `actpass`), which the data section
    /// carries too. The first socket's `ice-pacing` becomes the
    /// session-level `a=ice-pacing`, or with `ice-lite` `a=ice-lite`.
    ///
    /// Data streams run over DTLS, which a description with `keys` does not
    /// set up: its `data` is left out of the SDP. The SDP needs audio or
    /// video codecs in `options`, or `data`: a description with data and no
    /// codecs writes only the application section.
    pub fn to_sdp(&self, options: &Options) -> Result<String, Error> {
        let (Some(ufrag), Some(pwd)) = (&self.context_id, &self.secret) else {
            return Err(Error::InvalidDescription("an SDP description needs context-id and secret".into()));
        };
        let socket = self.sockets.first();
        let fingerprints = socket.map(|s| s.options.fingerprints.as_slice()).unwrap_or_default();
        // No keys: DTLS-SRTP (RFC 5763) against the socket's certificate.
        let dtls = self.keys.is_empty();
        if dtls && fingerprints.is_empty() {
            return Err(Error::InvalidDescription("an SDP description needs keys or a socket fingerprint".into()));
        }
        if self.keys.iter().any(|k| k.key_params.is_none()) {
            return Err(Error::InvalidDescription("an SDP description needs keys with key-params".into()));
        }
        // SDES keys mean no DTLS, hence no SCTP association to carry data.
        let data = self.data.filter(|_| dtls);
        if data.is_some_and(|d| d.port == 0) {
            return Err(Error::InvalidDescription("data: SCTP port 0 is not a port".into()));
        }
        let mut s = options.to_session().map_err(|e| Error::InvalidOptions(e.to_string()))?;
        if s.medias.is_empty() && data.is_none() {
            return Err(match self.data {
                Some(_) => Error::InvalidDescription(
                    "data needs DTLS, which a description with keys does not use, and there is no audio or video codec"
                        .into(),
                ),
                None => Error::InvalidOptions("no audio or video codec and no data: SDP needs an m= section".into()),
            });
        }
        let media_count = s.medias.len();
        let section_count = media_count + usize::from(data.is_some());
        let mids: Vec<String> = (0..section_count).map(|i| i.to_string()).collect();
        s.add_attribute_with_value("group", format!("BUNDLE {}", mids.join(" ")));
        s.add_attribute_with_value("ice-options", "trickle");
        add_pacing(&mut s, socket);
        let mux = socket.is_none_or(|s| s.options.mux);
        let setup = socket.and_then(|s| s.options.setup.as_deref()).unwrap_or("actpass");
        let cname = self.cname.as_deref().unwrap_or("-");
        for (m, mid) in s.medias.iter_mut().zip(&mids) {
            let kind: Kind = m.media.parse().map_err(|()| Error::InvalidOptions("not audio or video".into()))?;
            m.proto = if dtls { DTLS_PROTO.into() } else { PROTO.into() };
            m.add_attribute_with_value("mid", mid);
            add_keying(m, ufrag, pwd, &self.keys, fingerprints, setup);
            if mux {
                m.add_attribute(Attribute::new("rtcp-mux"));
            }
            m.add_attribute(Attribute::new("sendrecv"));
            for st in &self.streams {
                for t in st.tracks.iter().filter(|t| t.kind == kind) {
                    let Some(ssrc) = t.ssrc else { continue };
                    add_track_ssrcs(m, cname, &st.stream_id, &t.track_id, ssrc, t.rtx_ssrc);
                }
            }
            add_candidates(m, socket);
        }
        if let Some(d) = data {
            // RFC 8841: SCTP over DTLS over UDP (ICE). No RTP lines: no
            // rtcp-mux, no direction, no SSRCs.
            let mut m = Media::new(MediaType::Application, 9, TransportProto::UdpDtlsSctp, DATA_CHANNEL);
            m.add_connection(Connection::from_ip_addr(std::net::Ipv4Addr::UNSPECIFIED));
            m.add_attribute_with_value("mid", media_count);
            add_keying(&mut m, ufrag, pwd, &[], fingerprints, setup);
            add_candidates(&mut m, socket);
            m.add_attribute_with_value("sctp-port", d.port);
            m.add_attribute_with_value("max-message-size", d.max_message_size);
            s.add_media(m);
        }
        Ok(s.to_string())
    }

    /// Reads an SDP offer or answer: ICE credentials as `context-id` and
    /// `secret`, `a=crypto` lines as `keys`, candidates, `a=fingerprint`
    /// and `a=setup` as one socket's, tracks from `a=msid` / `a=ssrc` (one
    /// SSRC per section: its first), the codec options, and from the first
    /// data channel section (`m=application` over `UDP/DTLS/SCTP`, or the
    /// legacy `DTLS/SCTP` with `a=sctpmap`) `data`: `a=sctp-port` (else the
    /// `a=sctpmap` port, else 5000) and `a=max-message-size` (else 65536).
    /// The ICE, DTLS and candidate lines are read from the audio, video and
    /// data sections alike (a data-only offer has them in its application
    /// section). Without `a=crypto` the call is keyed by DTLS-SRTP.
    /// `a=ice-pacing` (session level, else the first section with one)
    /// becomes the socket's `ice-pacing`; one that is not 1 to 10 digits
    /// is an error. `a=ice-lite` (session level, or in a section) sets its
    /// `ice-lite`.
    pub fn from_sdp(sdp: &str) -> Result<(Self, Options), Error> {
        check_size(sdp)?;
        let s = Session::parse(sdp.as_bytes()).map_err(|e| Error::InvalidDescription(format!("SDP: {e}")))?;
        let options = Options::from_session(&s).map_err(|e| Error::InvalidDescription(format!("SDP: {e}")))?;
        // The sections rtc-codecs reads: audio or video over RTP, not rejected.
        let media: Vec<&Media> = s.medias.iter().filter(|m| is_rtp_media(m)).collect();
        // The sections whose transport lines count: those and data sections.
        let transport: Vec<&Media> = s.medias.iter().filter(|m| is_rtp_media(m) || is_data(m)).collect();
        let find = |name: &str| {
            transport.iter().find_map(|m| attr(&m.attributes, name).next()).or_else(|| attr(&s.attributes, name).next())
        };
        let ice_pacing = read_pacing(&s, &transport)?;
        // RFC 8839 section 5.3: session level only; a section's is taken
        // too, as `a=ice-pacing` is.
        let ice_lite = has(&s.attributes, "ice-lite") || transport.iter().any(|m| has(&m.attributes, "ice-lite"));
        let mut d = ConnectionDescription {
            context_id: find("ice-ufrag").map(str::to_owned),
            secret: find("ice-pwd").map(str::to_owned),
            data: s.medias.iter().find(|m| is_data(m)).map(read_data).transpose()?,
            ..Self::default()
        };
        for m in &media {
            for line in attr(&m.attributes, "crypto") {
                let k = CryptoKey::parse(line)?;
                if !d.keys.iter().any(|o| o.crypto_suite == k.crypto_suite) {
                    d.keys.push(k);
                }
            }
        }
        let mut fingerprints: Vec<String> = Vec::new();
        for f in
            transport.iter().flat_map(|m| attr(&m.attributes, "fingerprint")).chain(attr(&s.attributes, "fingerprint"))
        {
            if !fingerprints.iter().any(|o| o == f) {
                fingerprints.push(f.to_owned());
            }
        }
        let setup = find("setup").map(|v| v.trim().to_ascii_lowercase());
        let mut candidates: Vec<Candidate> = Vec::new();
        for m in &transport {
            for line in attr(&m.attributes, "candidate") {
                let c = Candidate::parse(line).map_err(|e| Error::InvalidCandidate(e.to_string()))?;
                if !candidates.contains(&c) {
                    candidates.push(c);
                }
            }
        }
        // RTCP multiplexing is about RTP sections only.
        let mux = media.iter().all(|m| has(&m.attributes, "rtcp-mux"));
        d.sockets.push(SocketDescription {
            socket_id: "sdp".into(),
            candidates,
            options: SocketOptions { mux, fingerprints, setup, ice_pacing, ice_lite, ..SocketOptions::default() },
        });
        for m in &media {
            let Ok(kind) = m.media.parse::<Kind>() else { continue };
            let ssrc_lines: Vec<(&str, &str)> = attr(&m.attributes, "ssrc").filter_map(|v| v.split_once(' ')).collect();
            // With retransmission (RFC 4588 `a=ssrc-group:FID <media> <rtx>`)
            // the track is the group's first SSRC; else the first listed.
            let fid: Option<Vec<&str>> = attr(&m.attributes, "ssrc-group")
                .find_map(|v| v.strip_prefix("FID ").map(|r| r.split_ascii_whitespace().collect()));
            let rtx_ssrc = fid.as_ref().and_then(|g| g.get(1)).and_then(|r| r.parse::<u32>().ok());
            let fid = fid.as_ref().and_then(|g| g.first().copied());
            let first = fid.or_else(|| ssrc_lines.first().map(|(id, _)| *id)).unwrap_or_default();
            let mid = attr(&m.attributes, "mid").next().unwrap_or("0");
            let layers = if sends(m) { simulcast_layers(m, "send") } else { Vec::new() };
            // A simulcast section: its layers' SSRCs are learnt from their
            // packets' MID and RtpStreamId (a=ssrc lines, if any, are not
            // the layers').
            let first = if layers.is_empty() { first } else { "" };
            let ssrc: Option<u32> = match first {
                // A section that sends without announcing its SSRC (JSEP
                // makes `a=ssrc` optional; webrtcbin leaves it out): a
                // track whose SSRC the first packet of its kind gives.
                "" if sends(m) => None,
                "" => continue,
                id => Some(id.parse().map_err(|_| Error::InvalidDescription(format!("a=ssrc:{id}")))?),
            };
            for (id, rest) in &ssrc_lines {
                if *id == first
                    && let Some(c) = rest.strip_prefix("cname:")
                {
                    d.cname.get_or_insert_with(|| c.to_owned());
                }
            }
            let msid = attr(&m.attributes, "msid").next().map(str::to_owned).or_else(|| {
                ssrc_lines
                    .iter()
                    .find_map(|(id, rest)| (*id == first).then(|| rest.strip_prefix("msid:")).flatten())
                    .map(str::to_owned)
            });
            let (stream_id, track_id) = match msid.as_deref().and_then(|v| v.split_once(' ')) {
                Some((s, t)) => (s.to_owned(), t.to_owned()),
                None => (format!("mid-{mid}"), format!("mid-{mid}")),
            };
            // A track without an SSRC keeps its section's mid, for the
            // packets that name it (RFC 8843 section 9.2); a simulcast
            // section gives a track per layer, `<track>-<rid>`.
            let one = TrackDescription {
                ssrc,
                rtx_ssrc: rtx_ssrc.filter(|_| ssrc.is_some()),
                mid: ssrc.is_none().then(|| mid.to_owned()),
                ..TrackDescription::new(kind)
            };
            let tracks: Vec<TrackDescription> = if layers.is_empty() {
                vec![TrackDescription { track_id, ..one }]
            } else {
                layers
                    .iter()
                    .map(|(rid, _)| TrackDescription {
                        track_id: format!("{track_id}-{rid}"),
                        rid: Some(rid.clone()),
                        ..one.clone()
                    })
                    .collect()
            };
            match d.streams.iter_mut().find(|s| s.stream_id == stream_id) {
                Some(s) => s.tracks.extend(tracks),
                None => d.streams.push(StreamDescription { stream_id, tracks }),
            }
        }
        Ok((d, options))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn description_round_trips_through_sdp() {
        let json = r#"{"cname":"me","context-id":"abcd1234","secret":"0123456789abcdefghijklmn",
          "keys":[{"tag":1,"crypto-suite":"AES_CM_128_HMAC_SHA1_80",
                   "key-params":"inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"}],
          "sockets":[{"socket-id":"s","candidates":[{"foundation":"1","component":1,"transport":"udp",
             "priority":2130706431,"connectionAddress":"127.0.0.1","connectionPort":5000,"type":"host"}],
             "options":{"mux":true}}],
          "streams":[{"stream-id":"st","tracks":[{"track-id":"a","ssrc":"11","kind":"audio"},
                                                 {"track-id":"v","ssrc":"22","kind":"video"}]}]}"#;
        let d = ConnectionDescription::from_json(json).unwrap();
        let opts = crate::default_options();
        let sdp = d.to_sdp(&opts).unwrap();
        for line in [
            "m=audio 9 RTP/SAVPF 111",
            "a=ice-ufrag:abcd1234",
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
            "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host",
            "a=ssrc:22 cname:me",
            "a=group:BUNDLE 0 1",
        ] {
            assert!(sdp.contains(line), "{line} missing from\n{sdp}");
        }
        let (back, o) = ConnectionDescription::from_sdp(&sdp).unwrap();
        assert_eq!((back.cname, back.context_id, back.secret), (d.cname, d.context_id, d.secret));
        assert_eq!(back.keys, d.keys);
        assert_eq!(back.sockets[0].candidates, d.sockets[0].candidates);
        assert_eq!(back.streams, d.streams);
        assert_eq!(o.codecs.len(), opts.codecs.len());
    }

    #[test]
    fn dtls_sdp_round_trips_and_bad_sdp_is_an_error() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
                   a=rtpmap:111 opus/48000/2\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdefghijklmn\r\n\
                   a=fingerprint:sha-256 AB:CD\r\na=setup:actpass\r\na=rtcp-mux\r\n";
        let (d, o) = ConnectionDescription::from_sdp(sdp).unwrap();
        assert!(d.keys.is_empty());
        assert_eq!(d.sockets[0].options.fingerprints, vec!["sha-256 AB:CD".to_owned()]);
        assert_eq!(d.sockets[0].options.setup.as_deref(), Some("actpass"));
        let mut answer = d.clone();
        answer.sockets[0].options.setup = Some("active".into());
        let back = answer.to_sdp(&o).unwrap();
        for line in ["m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=fingerprint:sha-256 AB:CD", "a=setup:active"] {
            assert!(back.contains(line), "{line} missing from\n{back}");
        }
        assert!(!back.contains("a=crypto"));
        let mut bare = d.clone();
        bare.sockets[0].options.fingerprints.clear();
        assert!(bare.to_sdp(&o).is_err(), "neither keys nor a fingerprint");
        assert!(ConnectionDescription::from_sdp("not sdp").is_err());
        let bad_candidate = sdp.replace("a=fingerprint:sha-256 AB:CD", "a=candidate:x");
        assert!(ConnectionDescription::from_sdp(&bad_candidate).is_err());
    }

    /// A data-only offer as Chromium writes it (a data channel created
    /// before any track).
    const CHROMIUM_DATA_OFFER: &str = "v=0\r\n\
        o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
        s=-\r\n\
        t=0 0\r\n\
        a=group:BUNDLE 0\r\n\
        a=extmap-allow-mixed\r\n\
        a=msid-semantic: WMS\r\n\
        m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\
        c=IN IP4 0.0.0.0\r\n\
        a=candidate:1467250027 1 udp 2122260223 127.0.0.1 46243 typ host generation 0 network-id 1\r\n\
        a=ice-ufrag:LcvI\r\n\
        a=ice-pwd:L3yCe2KJEaJbIV1NJk0KUJqJ\r\n\
        a=ice-options:trickle\r\n\
        a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\n\
        a=setup:actpass\r\n\
        a=mid:0\r\n\
        a=sctp-port:5000\r\n\
        a=max-message-size:262144\r\n";

    /// A data-only offer in Firefox's style: the fingerprint at session
    /// level, a direction in the data section, a 1 GiB message limit.
    const FIREFOX_DATA_OFFER: &str = "v=0\r\n\
        o=mozilla...THIS_IS_SDPARTA-128.0 2093845561723949221 0 IN IP4 0.0.0.0\r\n\
        s=-\r\n\
        t=0 0\r\n\
        a=fingerprint:sha-256 11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00\r\n\
        a=group:BUNDLE 0\r\n\
        a=ice-options:trickle\r\n\
        a=msid-semantic:WMS *\r\n\
        m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\
        c=IN IP4 0.0.0.0\r\n\
        a=sendrecv\r\n\
        a=ice-pwd:5d0b6c3f8e2a41d79c1e0f3a6b8d2c47\r\n\
        a=ice-ufrag:9f3e1a2b\r\n\
        a=mid:0\r\n\
        a=setup:actpass\r\n\
        a=sctp-port:5000\r\n\
        a=max-message-size:1073741823\r\n";

    /// The pre-RFC 8841 form: the SCTP port as the format, with `a=sctpmap`.
    const LEGACY_DATA_OFFER: &str = "v=0\r\n\
        o=- 7 2 IN IP4 127.0.0.1\r\n\
        s=-\r\n\
        t=0 0\r\n\
        a=group:BUNDLE data\r\n\
        m=application 9 DTLS/SCTP 5000\r\n\
        c=IN IP4 0.0.0.0\r\n\
        a=ice-ufrag:old1\r\n\
        a=ice-pwd:0123456789abcdefghijklmn\r\n\
        a=fingerprint:sha-256 AB:CD\r\n\
        a=setup:active\r\n\
        a=mid:data\r\n\
        a=sctpmap:5000 webrtc-datachannel 1024\r\n";

    /// A DTLS description: one socket with a fingerprint and a candidate.
    fn dtls_description(data: Option<DataTransport>) -> ConnectionDescription {
        let json = r#"{"cname":"me","context-id":"abcd1234","secret":"0123456789abcdefghijklmn",
          "sockets":[{"socket-id":"s","candidates":[{"foundation":"1","component":1,"transport":"udp",
             "priority":2130706431,"connectionAddress":"127.0.0.1","connectionPort":5000,"type":"host"}],
             "options":{"fingerprints":["sha-256 AB:CD"]}}]}"#;
        ConnectionDescription { data, ..ConnectionDescription::from_json(json).unwrap() }
    }

    /// The text of the `m=application` section (to the next `m=` or the end).
    fn application_section(sdp: &str) -> &str {
        let start = sdp.find("m=application").expect("an application section");
        let rest = &sdp[start..];
        rest[2..].find("\r\nm=").map_or(rest, |end| &rest[..end + 2])
    }

    /// RFC 8839 section 5.3: `a=ice-lite` is written at session level for a
    /// lite socket, without `a=ice-pacing` (section 4.3.2), and read back
    /// (from a section too); a full socket writes none.
    #[test]
    fn ice_lite_round_trips_at_session_level() {
        let mut d = dtls_description(None);
        d.sockets[0].options.ice_lite = true;
        d.sockets[0].options.ice_pacing = Some(5);
        let opts = crate::default_options();
        let sdp = d.to_sdp(&opts).unwrap();
        let session = &sdp[..sdp.find("\r\nm=").unwrap()];
        assert!(session.lines().any(|l| l == "a=ice-lite"), "{sdp}");
        assert_eq!(sdp.matches("a=ice-lite").count(), 1);
        assert!(!sdp.contains("ice-pacing"), "{sdp}");
        let (back, _) = ConnectionDescription::from_sdp(&sdp).unwrap();
        assert!(back.sockets[0].options.ice_lite);
        d.sockets[0].options.ice_lite = false;
        let full = d.to_sdp(&opts).unwrap();
        assert!(!full.contains("ice-lite"), "{full}");
        assert!(!ConnectionDescription::from_sdp(&full).unwrap().0.sockets[0].options.ice_lite);
        let in_section = full.replace("a=mid:0\r\n", "a=mid:0\r\na=ice-lite\r\n");
        assert!(ConnectionDescription::from_sdp(&in_section).unwrap().0.sockets[0].options.ice_lite);
        // JSON: "ice-lite": true in the socket options, absent when false.
        let json = serde_json::to_string(&back.sockets[0].options).unwrap();
        assert!(json.contains(r#""ice-lite":true"#), "{json}");
        assert!(!serde_json::to_string(&SocketOptions::default()).unwrap().contains("ice-lite"));
    }

    /// RFC 8839 section 5.5: `a=ice-pacing` is written at session level
    /// from the socket's `ice-pacing` and read back; absent stays absent; a
    /// section-level one is read too; anything but 1 to 10 digits is an
    /// error.
    #[test]
    fn ice_pacing_round_trips_at_session_level() {
        let mut d = dtls_description(None);
        d.sockets[0].options.ice_pacing = Some(5);
        let opts = crate::default_options();
        let sdp = d.to_sdp(&opts).unwrap();
        let session = &sdp[..sdp.find("\r\nm=").unwrap()];
        assert!(session.contains("\r\na=ice-pacing:5"), "{sdp}");
        assert_eq!(sdp.matches("a=ice-pacing:").count(), 1);
        let (back, _) = ConnectionDescription::from_sdp(&sdp).unwrap();
        assert_eq!(back.sockets[0].options.ice_pacing, Some(5));
        d.sockets[0].options.ice_pacing = None;
        let sdp = d.to_sdp(&opts).unwrap();
        assert!(!sdp.contains("ice-pacing"), "{sdp}");
        assert_eq!(ConnectionDescription::from_sdp(&sdp).unwrap().0.sockets[0].options.ice_pacing, None);
        let in_section = sdp.replace("a=mid:0\r\n", "a=mid:0\r\na=ice-pacing:40\r\n");
        assert_eq!(ConnectionDescription::from_sdp(&in_section).unwrap().0.sockets[0].options.ice_pacing, Some(40));
        let big = sdp.replace("a=mid:0\r\n", "a=mid:0\r\na=ice-pacing:9999999999\r\n");
        assert_eq!(ConnectionDescription::from_sdp(&big).unwrap().0.sockets[0].options.ice_pacing, Some(9_999_999_999));
        for bad in ["", "x", "5ms", "-1", "12345678901", "1 2"] {
            let text = sdp.replace("a=mid:0\r\n", &format!("a=mid:0\r\na=ice-pacing:{bad}\r\n"));
            let r = ConnectionDescription::from_sdp(&text);
            assert!(matches!(r, Err(Error::InvalidDescription(_))), "{bad:?}: {r:?}");
        }
    }

    #[test]
    fn media_and_data_round_trip_through_sdp() {
        let mut d = dtls_description(Some(DataTransport::default()));
        let json = r#"[{"stream-id":"st","tracks":[{"track-id":"a","ssrc":"11","kind":"audio"},
                                                    {"track-id":"v","ssrc":"22","kind":"video"}]}]"#;
        d.streams = serde_json::from_str(json).unwrap();
        let opts = crate::default_options();
        let sdp = d.to_sdp(&opts).unwrap();
        assert!(sdp.contains("a=group:BUNDLE 0 1 2\r\n"), "{sdp}");
        let (audio, video, app) =
            (sdp.find("m=audio").unwrap(), sdp.find("m=video").unwrap(), sdp.find("m=application").unwrap());
        assert!(audio < app && video < app, "the application section comes last:\n{sdp}");
        let section = application_section(&sdp);
        for line in [
            "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
            "c=IN IP4 0.0.0.0",
            "a=mid:2",
            "a=ice-ufrag:abcd1234",
            "a=ice-pwd:0123456789abcdefghijklmn",
            "a=fingerprint:sha-256 AB:CD",
            "a=setup:actpass",
            "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host",
            "a=sctp-port:5000",
            "a=max-message-size:262144",
        ] {
            assert!(section.contains(&format!("{line}\r\n")), "{line} missing from\n{section}");
        }
        for absent in ["a=rtcp-mux", "a=sendrecv", "a=ssrc", "a=msid", "a=crypto", "a=rtpmap"] {
            assert!(!section.contains(absent), "{absent} in\n{section}");
        }
        let (back, o) = ConnectionDescription::from_sdp(&sdp).unwrap();
        assert_eq!(back.data, d.data);
        assert_eq!((&back.context_id, &back.secret), (&d.context_id, &d.secret));
        assert_eq!(back.sockets[0].candidates, d.sockets[0].candidates);
        assert_eq!(back.sockets[0].options.fingerprints, d.sockets[0].options.fingerprints);
        assert!(back.sockets[0].options.mux, "rtcp-mux is read from the RTP sections only");
        assert_eq!(back.streams, d.streams);
        assert_eq!(o.codecs.len(), opts.codecs.len());
    }

    #[test]
    fn data_only_round_trips_through_sdp() {
        let mut d = dtls_description(Some(DataTransport { port: 5001, max_message_size: 0 }));
        d.sockets[0].options.setup = Some("passive".into());
        let sdp = d.to_sdp(&Options::default()).unwrap();
        for line in [
            "a=group:BUNDLE 0",
            "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
            "a=mid:0",
            "a=setup:passive",
            "a=sctp-port:5001",
            "a=max-message-size:0",
        ] {
            assert!(sdp.contains(&format!("{line}\r\n")), "{line} missing from\n{sdp}");
        }
        assert!(!sdp.contains("m=audio") && !sdp.contains("m=video"), "{sdp}");
        let (back, o) = ConnectionDescription::from_sdp(&sdp).unwrap();
        assert!(o.codecs.is_empty());
        assert_eq!(back.data, d.data);
        assert_eq!((&back.context_id, &back.secret), (&d.context_id, &d.secret));
        assert_eq!(back.sockets[0].candidates, d.sockets[0].candidates);
        assert_eq!(back.sockets[0].options.fingerprints, d.sockets[0].options.fingerprints);
        assert_eq!(back.sockets[0].options.setup.as_deref(), Some("passive"));
        assert!(back.streams.is_empty());
        // And again: what was read writes the same section.
        assert_eq!(back.to_sdp(&o).unwrap().lines().filter(|l| l.starts_with("m=")).count(), 1);
    }

    #[test]
    fn sdp_needs_a_section_and_data_needs_dtls() {
        let none = dtls_description(None);
        assert!(matches!(none.to_sdp(&Options::default()), Err(Error::InvalidOptions(_))));
        // SDES keys: no DTLS, so no application section.
        let mut sdes = dtls_description(Some(DataTransport::default()));
        sdes.keys = vec![
            CryptoKey::parse("1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR").unwrap(),
        ];
        let sdp = sdes.to_sdp(&crate::default_options()).unwrap();
        assert!(!sdp.contains("m=application") && sdp.contains("a=group:BUNDLE 0 1\r\n"), "{sdp}");
        assert!(matches!(sdes.to_sdp(&Options::default()), Err(Error::InvalidDescription(_))));
        let port_zero = dtls_description(Some(DataTransport { port: 0, max_message_size: 0 }));
        assert!(matches!(port_zero.to_sdp(&Options::default()), Err(Error::InvalidDescription(_))));
    }

    #[test]
    fn a_chromium_data_offer_is_read() {
        let (d, o) = ConnectionDescription::from_sdp(CHROMIUM_DATA_OFFER).unwrap();
        assert_eq!(d.context_id.as_deref(), Some("LcvI"));
        assert_eq!(d.secret.as_deref(), Some("L3yCe2KJEaJbIV1NJk0KUJqJ"));
        let socket = &d.sockets[0];
        assert_eq!(socket.candidates.len(), 1);
        assert_eq!(socket.candidates[0].port, 46243);
        assert_eq!(
            socket.options.fingerprints,
            vec![
                "sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08"
                    .to_owned()
            ]
        );
        assert_eq!(socket.options.setup.as_deref(), Some("actpass"));
        assert_eq!(d.data, Some(DataTransport { port: 5000, max_message_size: 262144 }));
        assert!(d.streams.is_empty() && d.data_streams.is_empty() && d.keys.is_empty());
        assert!(o.codecs.is_empty());
        // An answer to it: data only, bundled.
        let mut answer = d.clone();
        answer.sockets[0].options.setup = Some("active".into());
        let sdp = answer.to_sdp(&o).unwrap();
        assert!(sdp.contains("a=group:BUNDLE 0\r\n") && sdp.contains("a=setup:active\r\n"), "{sdp}");
    }

    #[test]
    fn firefox_and_legacy_data_offers_are_read() {
        let (d, _) = ConnectionDescription::from_sdp(FIREFOX_DATA_OFFER).unwrap();
        assert_eq!(d.context_id.as_deref(), Some("9f3e1a2b"));
        assert_eq!(d.data, Some(DataTransport { port: 5000, max_message_size: 1_073_741_823 }));
        assert_eq!(d.sockets[0].options.fingerprints.len(), 1, "the session-level fingerprint");
        assert!(d.sockets[0].options.fingerprints[0].starts_with("sha-256 11:22:33"));
        assert!(d.sockets[0].candidates.is_empty());

        let (d, _) = ConnectionDescription::from_sdp(LEGACY_DATA_OFFER).unwrap();
        assert_eq!(d.context_id.as_deref(), Some("old1"));
        assert_eq!(d.sockets[0].options.setup.as_deref(), Some("active"));
        assert_eq!(d.data, Some(DataTransport { port: 5000, max_message_size: 65536 }));
        let other_port = LEGACY_DATA_OFFER.replace("a=sctpmap:5000", "a=sctpmap:5002");
        let (d, _) = ConnectionDescription::from_sdp(&other_port).unwrap();
        assert_eq!(d.data.map(|t| t.port), Some(5002), "the port is the sctpmap's");
        let not_data = LEGACY_DATA_OFFER.replace("webrtc-datachannel", "something-else");
        let (d, _) = ConnectionDescription::from_sdp(&not_data).unwrap();
        assert_eq!((d.data, d.context_id), (None, None), "not a data channel section");
    }

    #[test]
    fn rejected_or_malformed_data_sections() {
        let rejected = CHROMIUM_DATA_OFFER.replace("m=application 9", "m=application 0");
        let (d, _) = ConnectionDescription::from_sdp(&rejected).unwrap();
        assert_eq!((d.data, d.context_id), (None, None));
        for (from, to) in [
            ("a=sctp-port:5000", "a=sctp-port:x"),
            ("a=sctp-port:5000", "a=sctp-port:70000"),
            ("a=sctp-port:5000", "a=sctp-port:0"),
            ("a=sctp-port:5000", "a=sctp-port:"),
            ("a=max-message-size:262144", "a=max-message-size:-1"),
            ("a=max-message-size:262144", "a=max-message-size:99999999999999999999999"),
        ] {
            let bad = CHROMIUM_DATA_OFFER.replace(from, to);
            let r = ConnectionDescription::from_sdp(&bad);
            assert!(matches!(r, Err(Error::InvalidDescription(_))), "{to}: {r:?}");
        }
        let bad_map = LEGACY_DATA_OFFER.replace("a=sctpmap:5000", "a=sctpmap:port");
        assert!(matches!(ConnectionDescription::from_sdp(&bad_map), Err(Error::InvalidDescription(_))));
    }
}
