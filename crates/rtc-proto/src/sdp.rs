//! A connection description and its codec options as an SDP offer or answer
//! for SDP-speaking peers, and back: the `m=` sections are rtc-codecs'
//! (`a=rtpmap`, `a=fmtp`, `a=rtcp-fb`, `a=extmap`), to which this adds the
//! transport of the seeds' description: `a=ice-ufrag` / `a=ice-pwd` (the
//! `context-id` and `secret`), `a=crypto` (RFC 4568, the `keys`),
//! `a=candidate`, `a=rtcp-mux`, BUNDLE with `a=mid`, and per track `a=msid`
//! and `a=ssrc` with the `cname`.

use rtc_candidate::Candidate;
use rtc_codecs::{Kind, Options};
use sdp_types::{Attribute, Media, Session};

use crate::desc::{
    ConnectionDescription, CryptoKey, SocketDescription, SocketOptions, StreamDescription, TrackDescription,
};
use crate::error::Error;

/// RFC 4568 keying: SRTP with keys in the description.
const PROTO: &str = "RTP/SAVPF";
/// DTLS-SRTP keying (RFC 5764), what browsers use.
const DTLS_PROTO: &str = "UDP/TLS/RTP/SAVPF";

fn attr<'a, 'n>(attrs: &'a [Attribute], name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
    attrs.iter().filter(move |a| a.attribute.eq_ignore_ascii_case(name)).filter_map(|a| a.value.as_deref())
}

fn has(attrs: &[Attribute], name: &str) -> bool {
    attrs.iter().any(|a| a.attribute.eq_ignore_ascii_case(name))
}

impl ConnectionDescription {
    /// Writes this description and `options` as an SDP offer or answer (the
    /// seeds have no offerer: the same text serves both). One `m=` section
    /// per kind with codecs, bundled; candidates of the first socket. With
    /// `keys`, RFC 4568 `a=crypto` over `RTP/SAVPF`; without, DTLS-SRTP over
    /// `UDP/TLS/RTP/SAVPF` with the first socket's `a=fingerprint` and
    /// `a=setup` (its `setup`, else `actpass`).
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
        let mut s = options.to_session().map_err(|e| Error::InvalidOptions(e.to_string()))?;
        if s.medias.is_empty() {
            return Err(Error::InvalidOptions("no audio or video codec: SDP needs an m= section".into()));
        }
        let mids: Vec<String> = (0..s.medias.len()).map(|i| i.to_string()).collect();
        s.add_attribute_with_value("group", format!("BUNDLE {}", mids.join(" ")));
        s.add_attribute_with_value("ice-options", "trickle");
        let mux = socket.is_none_or(|s| s.options.mux);
        let setup = socket.and_then(|s| s.options.setup.as_deref()).unwrap_or("actpass");
        let cname = self.cname.as_deref().unwrap_or("-");
        for (m, mid) in s.medias.iter_mut().zip(&mids) {
            let kind: Kind = m.media.parse().map_err(|()| Error::InvalidOptions("not audio or video".into()))?;
            m.proto = if dtls { DTLS_PROTO.into() } else { PROTO.into() };
            m.add_attribute_with_value("mid", mid);
            m.add_attribute_with_value("ice-ufrag", ufrag);
            m.add_attribute_with_value("ice-pwd", pwd);
            for k in &self.keys {
                m.add_attribute_with_value("crypto", k);
            }
            if dtls {
                for f in fingerprints {
                    m.add_attribute_with_value("fingerprint", f);
                }
                m.add_attribute_with_value("setup", setup);
            }
            if mux {
                m.add_attribute(Attribute::new("rtcp-mux"));
            }
            m.add_attribute(Attribute::new("sendrecv"));
            for st in &self.streams {
                for t in st.tracks.iter().filter(|t| t.kind == kind) {
                    let Some(ssrc) = t.ssrc else { continue };
                    m.add_attribute_with_value("msid", format!("{} {}", st.stream_id, t.track_id));
                    m.add_attribute_with_value("ssrc", format!("{ssrc} cname:{cname}"));
                    m.add_attribute_with_value("ssrc", format!("{ssrc} msid:{} {}", st.stream_id, t.track_id));
                }
            }
            for c in socket.map(|s| s.candidates.as_slice()).unwrap_or_default() {
                let line = c.to_string();
                m.add_attribute_with_value("candidate", line.strip_prefix("candidate:").unwrap_or(&line));
            }
        }
        Ok(s.to_string())
    }

    /// Reads an SDP offer or answer: ICE credentials as `context-id` and
    /// `secret`, `a=crypto` lines as `keys`, candidates, `a=fingerprint`
    /// and `a=setup` as one socket's, tracks from `a=msid` / `a=ssrc` (one
    /// SSRC per section: its first), and the codec options. Without
    /// `a=crypto` the call is keyed by DTLS-SRTP.
    pub fn from_sdp(sdp: &str) -> Result<(Self, Options), Error> {
        let s = Session::parse(sdp.as_bytes()).map_err(|e| Error::InvalidDescription(format!("SDP: {e}")))?;
        let options = Options::from_session(&s).map_err(|e| Error::InvalidDescription(format!("SDP: {e}")))?;
        // The sections rtc-codecs reads: audio or video over RTP, not rejected.
        let media: Vec<&Media> = s
            .medias
            .iter()
            .filter(|m| m.port != 0 && m.media.parse::<Kind>().is_ok() && m.parse_transport_proto().is_rtp())
            .collect();
        let find = |name: &str| {
            media.iter().find_map(|m| attr(&m.attributes, name).next()).or_else(|| attr(&s.attributes, name).next())
        };
        let mut d = ConnectionDescription {
            context_id: find("ice-ufrag").map(str::to_owned),
            secret: find("ice-pwd").map(str::to_owned),
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
        for f in media.iter().flat_map(|m| attr(&m.attributes, "fingerprint")).chain(attr(&s.attributes, "fingerprint"))
        {
            if !fingerprints.iter().any(|o| o == f) {
                fingerprints.push(f.to_owned());
            }
        }
        let setup = find("setup").map(|v| v.trim().to_ascii_lowercase());
        let mut candidates: Vec<Candidate> = Vec::new();
        for m in &media {
            for line in attr(&m.attributes, "candidate") {
                let c = Candidate::parse(line).map_err(|e| Error::InvalidCandidate(e.to_string()))?;
                if !candidates.contains(&c) {
                    candidates.push(c);
                }
            }
        }
        let mux = media.iter().all(|m| has(&m.attributes, "rtcp-mux"));
        d.sockets.push(SocketDescription {
            socket_id: "sdp".into(),
            candidates,
            options: SocketOptions { mux, fingerprints, setup, ..SocketOptions::default() },
        });
        for m in &media {
            let Ok(kind) = m.media.parse::<Kind>() else { continue };
            let ssrc_lines: Vec<(&str, &str)> = attr(&m.attributes, "ssrc").filter_map(|v| v.split_once(' ')).collect();
            let Some(&(first, _)) = ssrc_lines.first() else { continue };
            let ssrc: u32 = first.parse().map_err(|_| Error::InvalidDescription(format!("a=ssrc:{first}")))?;
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
            let mid = attr(&m.attributes, "mid").next().unwrap_or("0");
            let (stream_id, track_id) = match msid.as_deref().and_then(|v| v.split_once(' ')) {
                Some((s, t)) => (s.to_owned(), t.to_owned()),
                None => (format!("mid-{mid}"), format!("mid-{mid}")),
            };
            let track = TrackDescription { track_id, socket_id: None, ssrc: Some(ssrc), kind, options: None };
            match d.streams.iter_mut().find(|s| s.stream_id == stream_id) {
                Some(s) => s.tracks.push(track),
                None => d.streams.push(StreamDescription { stream_id, tracks: vec![track] }),
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
}
