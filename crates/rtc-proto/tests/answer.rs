//! Answering real stacks' SDP offers by the book (RFC 3264, JSEP, BUNDLE):
//! the answer mirrors the offer section for section (order, `mid`s, kinds,
//! the offer's payload types), answers directions per RFC 3264, rejects
//! what it cannot take with port 0, accepts `bundle-only` sections, keeps
//! the data section in its place, and the answerer is ICE-controlled and
//! the DTLS client. Fixtures: Chromium, Chrome, Firefox and aiortc offers
//! (conformance/fixtures/sdp), GStreamer webrtcbin's max-bundle and
//! max-compat offers and a pion offer with data (below), a real
//! pion 3.1.56 offer (conformance/fixtures/sdp/pion-offer.sdp), and real
//! webrtcbin 1.22 offers (max-bundle, max-compat) and an answer
//! (conformance/fixtures/sdp/webrtcbin-*.sdp).

mod sim;

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use rtc_candidate::Component;
use rtc_codecs::Kind;
use rtc_proto::{
    Connection, ConnectionConfig, Direction, SdpType, SocketConfig, SocketId, SocketOptions, StreamDescription,
    TrackDescription,
};
use sdp_types::Session;

fn fixture(name: &str) -> String {
    let path = format!("{}/../../conformance/fixtures/sdp/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// GStreamer webrtcbin (1.22) with `bundle-policy=max-bundle`: video first,
/// audio bundle-only with port 0, mids of its own naming, OPUS in capitals.
const WEBRTCBIN_MAX_BUNDLE: &str = "v=0\r
o=- 2750483185286081425 0 IN IP4 0.0.0.0\r
s=-\r
t=0 0\r
a=ice-options:trickle\r
a=group:BUNDLE video0 audio1\r
m=video 9 UDP/TLS/RTP/SAVPF 96\r
c=IN IP4 0.0.0.0\r
a=setup:actpass\r
a=ice-ufrag:Vcxd5Kl1ykJvLuAhFJ4lt5OjB8L5Z2Aq\r
a=ice-pwd:wPSNXn1DbV4BbcWpUaKfUcgNnffv8Hpi\r
a=rtcp-mux\r
a=rtcp-rsize\r
a=sendrecv\r
a=rtpmap:96 VP8/90000\r
a=rtcp-fb:96 nack\r
a=rtcp-fb:96 nack pli\r
a=rtcp-fb:96 ccm fir\r
a=ssrc:3484078952 msid:user3398051396@host-d2d5e6d0 webrtctransceiver0\r
a=ssrc:3484078952 cname:user3398051396@host-d2d5e6d0\r
a=mid:video0\r
a=fingerprint:sha-256 6C:2E:62:AD:0B:F4:9F:58:E2:1B:62:8C:1E:48:BE:1F:20:61:B2:68:E0:6F:B5:DB:C8:9E:91:63:D5:9A:CB:E3\r
m=audio 0 UDP/TLS/RTP/SAVPF 97\r
c=IN IP4 0.0.0.0\r
a=bundle-only\r
a=setup:actpass\r
a=ice-ufrag:Vcxd5Kl1ykJvLuAhFJ4lt5OjB8L5Z2Aq\r
a=ice-pwd:wPSNXn1DbV4BbcWpUaKfUcgNnffv8Hpi\r
a=rtcp-mux\r
a=rtcp-rsize\r
a=sendrecv\r
a=rtpmap:97 OPUS/48000/2\r
a=rtcp-fb:97 nack pli\r
a=fmtp:97 sprop-stereo=0\r
a=ssrc:1526227519 msid:user3398051396@host-d2d5e6d0 webrtctransceiver1\r
a=ssrc:1526227519 cname:user3398051396@host-d2d5e6d0\r
a=mid:audio1\r
a=fingerprint:sha-256 6C:2E:62:AD:0B:F4:9F:58:E2:1B:62:8C:1E:48:BE:1F:20:61:B2:68:E0:6F:B5:DB:C8:9E:91:63:D5:9A:CB:E3\r
";

/// pion/webrtc v3: session-level fingerprint, audio, video with RTX
/// (`ssrc-group:FID`), and a data channel section.
const PION: &str = "v=0\r
o=- 8448375451592429880 1700000000 IN IP4 0.0.0.0\r
s=-\r
t=0 0\r
a=fingerprint:sha-256 2B:9C:21:7D:0F:71:F0:19:2D:8E:7C:52:6A:01:BB:93:85:3D:09:1A:88:70:C2:4C:DE:1B:5E:61:2F:77:AF:04\r
a=extmap-allow-mixed\r
a=group:BUNDLE 0 1 2\r
m=audio 9 UDP/TLS/RTP/SAVPF 111 9 0 8\r
c=IN IP4 0.0.0.0\r
a=setup:actpass\r
a=mid:0\r
a=ice-ufrag:pIoNuFrAgXyZ\r
a=ice-pwd:pIoNpAsSwOrDpIoNpAsSwOrD\r
a=rtcp-mux\r
a=rtcp-rsize\r
a=rtpmap:111 opus/48000/2\r
a=fmtp:111 minptime=10;useinbandfec=1\r
a=rtpmap:9 G722/8000\r
a=rtpmap:0 PCMU/8000\r
a=rtpmap:8 PCMA/8000\r
a=ssrc:1001 cname:pion\r
a=ssrc:1001 msid:pion audio\r
a=msid:pion audio\r
a=sendrecv\r
a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r
a=end-of-candidates\r
m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103\r
c=IN IP4 0.0.0.0\r
a=setup:actpass\r
a=mid:1\r
a=ice-ufrag:pIoNuFrAgXyZ\r
a=ice-pwd:pIoNpAsSwOrDpIoNpAsSwOrD\r
a=rtcp-mux\r
a=rtcp-rsize\r
a=rtpmap:96 VP8/90000\r
a=rtcp-fb:96 nack\r
a=rtcp-fb:96 nack pli\r
a=rtpmap:97 rtx/90000\r
a=fmtp:97 apt=96\r
a=rtpmap:102 H264/90000\r
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r
a=rtpmap:103 rtx/90000\r
a=fmtp:103 apt=102\r
a=ssrc-group:FID 2002 2001\r
a=ssrc:2001 cname:pion\r
a=ssrc:2002 cname:pion\r
a=ssrc:2002 msid:pion video\r
a=ssrc:2001 msid:pion video\r
a=msid:pion video\r
a=sendrecv\r
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r
c=IN IP4 0.0.0.0\r
a=setup:actpass\r
a=mid:2\r
a=sendrecv\r
a=sctp-port:5000\r
a=ice-ufrag:pIoNuFrAgXyZ\r
a=ice-pwd:pIoNpAsSwOrDpIoNpAsSwOrD\r
";

/// A connection with one socket on 127.0.0.1 sending `kinds`, one track
/// each, in one stream.
fn answerer(kinds: &[Kind]) -> (Connection, Instant) {
    let now = Instant::now();
    let config = ConnectionConfig { seed: Some(5), ..ConnectionConfig::new(None, None) };
    let mut c = Connection::new(config, now, SystemTime::now()).unwrap();
    let cert = rtc_dtls::Certificate::generate().unwrap();
    let local: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let socket = SocketConfig::new("s", vec![(Component::RTP, local)], SocketOptions::default(), cert);
    c.add_socket(now, SocketId(0), &socket, true).unwrap();
    if !kinds.is_empty() {
        let stream = StreamDescription {
            stream_id: "me".into(),
            tracks: kinds.iter().map(|k| TrackDescription::new(*k)).collect(),
        };
        c.send_stream(now, stream).unwrap();
    }
    (c, now)
}

fn answer(c: &mut Connection, now: Instant, offer: &str) -> Session {
    c.set_remote_sdp(now, SdpType::Offer, offer).unwrap();
    let text = c.local_sdp().unwrap();
    Session::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e}:\n{text}"))
}

fn attr<'a>(m: &'a sdp_types::Media, name: &str) -> Vec<&'a str> {
    m.attributes.iter().filter(|a| a.attribute == name).filter_map(|a| a.value.as_deref()).collect()
}

fn flag(m: &sdp_types::Media, name: &str) -> bool {
    m.attributes.iter().any(|a| a.attribute == name)
}

fn direction(m: &sdp_types::Media) -> &'static str {
    ["sendrecv", "sendonly", "recvonly", "inactive"].into_iter().find(|d| flag(m, d)).unwrap_or("none")
}

fn bundle(s: &Session) -> Vec<String> {
    s.attributes
        .iter()
        .filter(|a| a.attribute == "group")
        .filter_map(|a| a.value.as_deref()?.strip_prefix("BUNDLE ").map(str::to_owned))
        .flat_map(|v| v.split_ascii_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

/// Every section of the answer pairs with the offer's: kind, mid, order;
/// the answer's payload types are a subset of the offered ones.
fn mirrors(offer: &str, answer: &Session) {
    let offer = Session::parse(offer.as_bytes()).unwrap();
    assert_eq!(offer.medias.len(), answer.medias.len(), "one answer section per offered one");
    for (i, (o, a)) in offer.medias.iter().zip(&answer.medias).enumerate() {
        assert_eq!(o.media, a.media, "section {i}'s kind");
        let mid = attr(o, "mid").first().map_or_else(|| i.to_string(), |m| (*m).to_owned());
        assert_eq!(attr(a, "mid"), vec![mid.as_str()], "section {i}'s mid");
        if a.port != 0 && o.media != "application" {
            let offered: Vec<&str> = o.fmt.split_ascii_whitespace().collect();
            for pt in a.fmt.split_ascii_whitespace() {
                assert!(offered.contains(&pt), "payload type {pt} of section {i} was not offered: {offered:?}");
            }
            assert_eq!(a.proto, o.proto);
        }
    }
}

#[test]
fn chromium_chrome_firefox_and_aiortc_offers_are_mirrored_with_their_payload_types() {
    for (name, opus) in [
        ("chromium-offer.sdp", "111"),
        ("chrome-offer.sdp", "111"),
        ("firefox-offer.sdp", "109"),
        ("aiortc-offer.sdp", "96"),
    ] {
        let offer = fixture(name);
        let (mut c, now) = answerer(&[Kind::Audio, Kind::Video]);
        let a = answer(&mut c, now, &offer);
        mirrors(&offer, &a);
        assert_eq!(bundle(&a), vec!["0", "1"], "{name}");
        assert_eq!(a.medias[0].fmt.split_ascii_whitespace().next(), Some(opus), "{name}: the offer's Opus number");
        let vp8 = Session::parse(offer.as_bytes())
            .unwrap()
            .medias
            .iter()
            .flat_map(|m| attr(m, "rtpmap"))
            .find(|v| v.contains("VP8/90000"))
            .and_then(|v| v.split(' ').next())
            .unwrap()
            .to_owned();
        assert!(a.medias[1].fmt.split_ascii_whitespace().any(|p| p == vp8), "{name}: VP8 as {vp8}");
        for m in &a.medias {
            assert_eq!(direction(m), "sendrecv", "{name}");
            assert_eq!(attr(m, "setup"), vec!["active"], "{name}: the answerer is the DTLS client");
            // One sent track per section; video with its retransmission
            // SSRC (RFC 4588), as every one of these offers has `rtx`.
            let video = m.media == "video";
            assert_eq!(attr(m, "ssrc").len(), if video { 4 } else { 2 }, "{name}: one sent track per section");
            assert_eq!(attr(m, "ssrc-group").len(), usize::from(video), "{name}: FID");
        }
        let agent = c.ice_agent(SocketId(0)).unwrap();
        assert_eq!(agent.role(), rtc_ice::Role::Controlled, "{name}: the answerer is ICE-controlled");
        // Tracks the offer announced are known.
        let remote = c.description(Direction::Remote).unwrap();
        assert_eq!(remote.streams.iter().map(|s| s.tracks.len()).sum::<usize>(), 2, "{name}");
    }
}

#[test]
fn webrtcbin_max_bundle_offer_keeps_its_order_mids_and_bundle_only_audio() {
    let (mut c, now) = answerer(&[Kind::Audio, Kind::Video]);
    let a = answer(&mut c, now, WEBRTCBIN_MAX_BUNDLE);
    mirrors(WEBRTCBIN_MAX_BUNDLE, &a);
    assert_eq!(bundle(&a), vec!["video0", "audio1"]);
    assert_eq!((a.medias[0].media.as_str(), a.medias[0].fmt.as_str()), ("video", "96"));
    assert_eq!((a.medias[1].media.as_str(), a.medias[1].fmt.as_str()), ("audio", "97"));
    assert!(a.medias.iter().all(|m| m.port == 9), "the bundle-only section is taken");
    // max-compat: each section with its own port, same result.
    let compat = WEBRTCBIN_MAX_BUNDLE.replace("m=audio 0 ", "m=audio 9 ").replace("a=bundle-only\r\n", "");
    let (mut c, now) = answerer(&[Kind::Audio, Kind::Video]);
    let a = answer(&mut c, now, &compat);
    mirrors(&compat, &a);
    assert_eq!(bundle(&a), vec!["video0", "audio1"]);
    // The remote tracks: one per section, by their SSRC.
    let remote = c.description(Direction::Remote).unwrap();
    let ssrcs: Vec<u32> = remote.streams.iter().flat_map(|s| &s.tracks).filter_map(|t| t.ssrc).collect();
    assert_eq!(ssrcs, vec![3484078952, 1526227519]);
}

/// Real offers of GStreamer webrtcbin 1.22 (Debian bookworm), made by the
/// interop suite's `webrtcbin_call.py --role offer --audio --video`: a
/// BUNDLE group in both policies, audio first; max-bundle puts video at
/// port 0 with `a=bundle-only`, max-compat at port 9 with the same ufrag and
/// no candidate of its own. The audio section has no `a=ssrc` (its
/// payloader had no caps yet when the offer was made).
#[test]
fn webrtcbin_1_22_max_bundle_and_max_compat_offers_are_answered_in_one_bundle() {
    for (name, video_port) in [("webrtcbin-max-bundle-offer.sdp", 0), ("webrtcbin-max-compat-offer.sdp", 9)] {
        let offer = fixture(name);
        assert_eq!(Session::parse(offer.as_bytes()).unwrap().medias[1].port, video_port, "{name}");
        let (mut c, now) = answerer(&[Kind::Audio, Kind::Video]);
        let a = answer(&mut c, now, &offer);
        mirrors(&offer, &a);
        assert_eq!(bundle(&a), vec!["audio0", "video1"], "{name}");
        let fmts: Vec<(&str, &str)> = a.medias.iter().map(|m| (m.media.as_str(), m.fmt.as_str())).collect();
        assert_eq!(fmts, vec![("audio", "111"), ("video", "96")], "{name}: the offer's payload types");
        for m in &a.medias {
            assert_eq!(m.port, 9, "{name}: both sections taken");
            assert!(!flag(m, "bundle-only"), "{name}: an answer has no bundle-only section");
            assert_eq!(direction(m), "sendrecv", "{name}");
            assert_eq!(attr(m, "setup"), vec!["active"], "{name}");
            assert!(!attr(m, "ssrc").is_empty(), "{name}: our track in each section");
        }
        assert_eq!(c.ice_agent(SocketId(0)).unwrap().role(), rtc_ice::Role::Controlled, "{name}");
        // Only the video track is announced with its SSRC; the audio one is
        // announced without and takes the first audio SSRC that comes.
        let remote = c.description(Direction::Remote).unwrap();
        let tracks: Vec<_> = remote.streams.iter().flat_map(|s| &s.tracks).collect();
        let ssrcs: Vec<u32> = tracks.iter().filter_map(|t| t.ssrc).collect();
        assert_eq!((tracks.len(), ssrcs.len()), (2, 1), "{name}: {tracks:?}");
    }
}

/// An offer without `a=group:BUNDLE` (webrtcbin's `bundle-policy=none`: a
/// transport per section): the answer bundles nothing (RFC 8843 section
/// 7.3.1) and, running one transport, takes the first section and rejects
/// the others with port 0, so the call goes on with audio instead of
/// failing. A single unbundled section is simply taken.
#[test]
fn an_offer_that_does_not_bundle_is_answered_without_a_bundle() {
    let bundled = fixture("webrtcbin-max-compat-offer.sdp");
    let offer: String = bundled.split_inclusive("\r\n").filter(|l| !l.starts_with("a=group:")).collect();
    let offer = offer.replacen("a=ice-ufrag:RpCGk3z+DROvqY5vr8Xp0zS+FyMQWzy5", "a=ice-ufrag:other+ufrag+for+video", 2);
    let offer = offer.replacen("a=ice-ufrag:other+ufrag+for+video", "a=ice-ufrag:RpCGk3z+DROvqY5vr8Xp0zS+FyMQWzy5", 1);
    let (mut c, now) = answerer(&[Kind::Audio, Kind::Video]);
    let a = answer(&mut c, now, &offer);
    mirrors(&offer, &a);
    assert!(bundle(&a).is_empty(), "no BUNDLE group the offer did not have:\n{a}");
    let ports: Vec<(&str, u16)> = a.medias.iter().map(|m| (m.media.as_str(), m.port)).collect();
    assert_eq!(ports, vec![("audio", 9), ("video", 0)]);
    assert_eq!(attr(&a.medias[0], "ice-ufrag").len(), 1);
    // The rejected section keeps its transport lines (webrtcbin refuses an
    // answer whose unbundled section has no fingerprint).
    assert_eq!(attr(&a.medias[1], "fingerprint").len(), 1);
    // And our video track, which no section carries now, is not sent.
    let stream = c.streams(Direction::Local)[0];
    let tracks = c.stream_tracks(stream).to_vec();
    let kinds: Vec<Kind> = tracks.iter().map(|&t| c.track_description(t).unwrap().kind).collect();
    assert_eq!(kinds, [Kind::Audio, Kind::Video]);
    let video = c.write_frame(now, tracks[1], &[0x10; 100], std::time::Duration::from_millis(33)).unwrap_err();
    assert!(video.to_string().contains("no section"), "{video}");
    let audio = c.write_frame(now, tracks[0], &[0xf8, 0xff, 0xfe], std::time::Duration::from_millis(20)).unwrap_err();
    assert!(!audio.to_string().contains("no section"), "audio has its section (only not connected): {audio}");

    // Audio alone: taken, still without a group.
    let audio_only: String = offer.split("m=video").next().unwrap().to_owned();
    let (mut c, now) = answerer(&[Kind::Audio]);
    let a = answer(&mut c, now, &audio_only);
    assert!(bundle(&a).is_empty());
    assert_eq!(a.medias.iter().map(|m| m.port).collect::<Vec<_>>(), vec![9]);
}

/// webrtcbin 1.22's real answer to an rtc offer (audio, video with RTX):
/// session-level BUNDLE, per-section credentials and fingerprints, no RTX,
/// `a=ssrc` in the video section only. The offerer takes it, controls ICE
/// and agrees on the Opus and VP8 numbers it offered.
#[test]
fn webrtcbin_1_22_answer_is_taken() {
    let answer_text = fixture("webrtcbin-answer.sdp");
    let (mut o, now) = answerer(&[Kind::Audio, Kind::Video]);
    let offer = Session::parse(o.local_sdp().unwrap().as_bytes()).unwrap();
    let mids: Vec<&str> = offer.medias.iter().flat_map(|m| attr(m, "mid")).collect();
    assert_eq!(mids, vec!["0", "1"], "the mids webrtcbin answered");
    o.set_remote_sdp(now, SdpType::Answer, &answer_text).unwrap();
    assert_eq!(o.ice_agent(SocketId(0)).unwrap().role(), rtc_ice::Role::Controlling, "the offerer controls");
    let agreed: Vec<(String, u8)> =
        o.agreement().unwrap().codecs.iter().map(|c| (c.name.to_ascii_lowercase(), c.payload_id.get())).collect();
    assert!(agreed.contains(&("opus".into(), 111)) && agreed.contains(&("vp8".into(), 96)), "{agreed:?}");
    assert!(!agreed.iter().any(|(n, _)| n == "rtx"), "webrtcbin answered without RTX: {agreed:?}");
    let remote = o.description(Direction::Remote).unwrap();
    let ssrcs: Vec<u32> = remote.streams.iter().flat_map(|s| &s.tracks).filter_map(|t| t.ssrc).collect();
    assert_eq!(ssrcs, vec![3972815837]);
}

#[test]
fn pion_offer_with_rtx_and_data_is_answered_in_place() {
    let (mut c, now) = answerer(&[Kind::Audio, Kind::Video]);
    let a = answer(&mut c, now, PION);
    mirrors(PION, &a);
    assert_eq!(bundle(&a), vec!["0", "1", "2"]);
    let data = &a.medias[2];
    assert_eq!((data.port, data.proto.as_str(), data.fmt.as_str()), (9, "UDP/DTLS/SCTP", "webrtc-datachannel"));
    assert_eq!(attr(data, "sctp-port"), vec!["5000"]);
    assert!(!flag(data, "rtcp-mux") && !flag(data, "ssrc"));
    // The video track is the FID group's first SSRC, not the RTX one.
    let remote = c.description(Direction::Remote).unwrap();
    let video: Vec<u32> = remote
        .streams
        .iter()
        .flat_map(|s| &s.tracks)
        .filter(|t| t.kind == Kind::Video)
        .filter_map(|t| t.ssrc)
        .collect();
    assert_eq!(video, vec![2002]);
    // The data section made the connection take data.
    assert!(c.description(Direction::Local).unwrap().data.is_some());
}

/// pion/webrtc 3.1.56 (Debian's golang-github-pion-webrtc.v3-dev, the
/// interop suite's `pion_call --role offer --audio --video`) refused our
/// answer while the origin's session id was `-`: "sdp: syntax error at pos
/// 9". RFC 4566 section 5.2: `<sess-id>` is a numeric string, and so is
/// `<sess-version>`.
#[test]
fn pion_3_1_offer_is_answered_with_a_numeric_origin() {
    let offer = fixture("pion-offer.sdp");
    let (mut c, now) = answerer(&[Kind::Audio, Kind::Video]);
    let a = answer(&mut c, now, &offer);
    mirrors(&offer, &a);
    let text = c.local_sdp().unwrap();
    let o = text.lines().find_map(|l| l.strip_prefix("o=")).unwrap();
    let fields: Vec<&str> = o.split(' ').collect();
    assert_eq!(fields.len(), 6, "o={o}");
    for (name, f) in [("sess-id", fields[1]), ("sess-version", fields[2])] {
        assert!(!f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()), "{name} {f:?} is not numeric: o={o}");
    }
    assert_eq!(bundle(&a), vec!["0", "1"]);
    assert_eq!(a.medias[0].fmt, "111", "pion's Opus");
    assert!(a.medias[1].fmt.split_ascii_whitespace().any(|p| p == "96"), "pion's VP8");
    for m in &a.medias {
        assert_eq!(direction(m), "sendrecv");
        assert_eq!(attr(m, "setup"), vec!["active"]);
    }
}

#[test]
fn directions_are_answered_per_rfc_3264_and_untakeable_sections_rejected() {
    let base = fixture("chromium-offer.sdp");
    let session = Session::parse(base.as_bytes()).unwrap();
    let mut audio = session.medias[0].clone();
    let mut video = session.medias[1].clone();
    audio.attributes.retain(|a| a.attribute != "sendrecv");
    video.attributes.retain(|a| a.attribute != "sendrecv");
    let with = |m: &sdp_types::Media, dir: &str, mid: &str| {
        let mut m = m.clone();
        m.attributes.retain(|a| a.attribute != "mid" && a.attribute != "ssrc" && a.attribute != "msid");
        m.add_attribute(sdp_types::Attribute::new(dir));
        m.add_attribute_with_value("mid", mid);
        m
    };
    let mut offer = session.clone();
    offer.medias = vec![
        with(&audio, "recvonly", "a"),  // the offerer only receives audio
        with(&video, "sendonly", "v"),  // and only sends video
        with(&video, "recvonly", "v2"), // a second video it would receive
        with(&audio, "inactive", "off"),
    ];
    let mut text_section = with(&audio, "sendrecv", "t");
    text_section.media = "text".into();
    offer.medias.push(text_section);
    let mut rejected = with(&video, "sendrecv", "gone");
    rejected.port = 0;
    offer.medias.push(rejected);
    let mut h261 = with(&video, "sendrecv", "h261");
    h261.fmt = "31".into();
    h261.attributes.retain(|a| !matches!(a.attribute.as_str(), "rtpmap" | "fmtp" | "rtcp-fb"));
    offer.medias.push(h261);
    offer.attributes.retain(|a| a.attribute != "group");
    offer.add_attribute_with_value("group", "BUNDLE a v v2 off t gone h261");
    let offer = offer.to_string();

    // One audio and one video track to send.
    let (mut c, now) = answerer(&[Kind::Audio, Kind::Video]);
    let a = answer(&mut c, now, &offer);
    mirrors(&offer, &a);
    let dirs: Vec<&str> = a.medias.iter().take(4).map(direction).collect();
    // audio: we send to an offerer that receives; video sendonly: we only
    // receive; the second video takes our video track; inactive stays so.
    assert_eq!(dirs, vec!["sendonly", "recvonly", "sendonly", "inactive"]);
    assert_eq!(attr(&a.medias[1], "ssrc").len(), 0, "nothing sent in a recvonly answer");
    assert_eq!(attr(&a.medias[2], "ssrc").len(), 4, "the video track (and its RTX) went to the section that receives");
    let ports: Vec<u16> = a.medias.iter().map(|m| m.port).collect();
    assert_eq!(ports, vec![9, 9, 9, 9, 0, 0, 0], "text, a rejected section and a codec in no agreement: port 0");
    assert_eq!(bundle(&a), vec!["a", "v", "v2", "off"]);

    // Nothing to send: sendrecv is answered recvonly.
    let (mut c, now) = answerer(&[]);
    let a = answer(&mut c, now, &base);
    assert!(a.medias.iter().all(|m| direction(m) == "recvonly"));
}

#[test]
fn an_answer_is_taken_and_an_offer_is_made_when_there_is_none_to_answer() {
    let (offerer, now) = answerer(&[Kind::Audio, Kind::Video]);
    let offer = offerer.local_sdp().unwrap();
    assert!(offer.contains("a=setup:actpass") && !offer.contains("a=crypto"), "a DTLS-SRTP offer:\n{offer}");
    let (mut c, _) = answerer(&[Kind::Audio]);
    let a = answer(&mut c, now, &offer);
    mirrors(&offer, &a);
    // An answer cannot be actpass.
    let (mut o, now) = answerer(&[Kind::Audio]);
    assert!(o.set_remote_sdp(now, SdpType::Answer, &offer).is_err());
    let answer_text = a.to_string();
    o.set_remote_sdp(now, SdpType::Answer, &answer_text).unwrap();
    assert_eq!(o.ice_agent(SocketId(0)).unwrap().role(), rtc_ice::Role::Controlling, "the offerer controls");
    // A refused SDP changes nothing.
    let (mut c, now) = answerer(&[Kind::Audio]);
    assert!(c.set_remote_sdp(now, SdpType::Offer, "v=0\r\nnot sdp").is_err());
    assert!(c.description(Direction::Remote).is_none());
}

/// Two rtc peers signaling in SDP offer/answer through the simulated
/// network: the offerer's payload types stand, media flows both ways.
#[test]
fn rtc_offers_rtc_answers_and_media_flows() {
    let mut net = sim::Net::new(41);
    let ha = net.host("offerer", [10, 0, 0, 1], SocketOptions::default());
    let hb = net.host("answerer", [10, 0, 0, 2], SocketOptions::default());
    let a = net.connect(ha, ConnectionConfig::new(None, None), 1);
    let b = net.connect(hb, ConnectionConfig::new(None, None), 2);
    let now = net.now;
    for (h, c) in [(ha, a), (hb, b)] {
        let stream = StreamDescription { stream_id: String::new(), tracks: vec![TrackDescription::new(Kind::Audio)] };
        net.conn_mut(h, c).send_stream(now, stream).unwrap();
    }
    let offer = net.hosts[ha].conn(a).local_sdp().unwrap();
    net.conn_mut(hb, b).set_remote_sdp(now, SdpType::Offer, &offer).unwrap();
    let answer = net.hosts[hb].conn(b).local_sdp().unwrap();
    net.conn_mut(ha, a).set_remote_sdp(now, SdpType::Answer, &answer).unwrap();
    assert!(net.run_until(Duration::from_secs(5), |n| n.connected(ha, a) && n.connected(hb, b)));
    let tracks: Vec<_> = [(ha, a), (hb, b)]
        .iter()
        .map(|(h, c)| {
            let conn = net.hosts[*h].conn(*c);
            let s = conn.streams(Direction::Local)[0];
            conn.stream_tracks(s)[0]
        })
        .collect();
    for i in 0..10u8 {
        let now = net.now;
        for ((h, c), t) in [(ha, a), (hb, b)].into_iter().zip(&tracks) {
            net.conn_mut(h, c).write_frame(now, *t, &[0xf8, 0xff, 0xfe, i], Duration::from_millis(20)).unwrap();
        }
        net.run_for(Duration::from_millis(20));
    }
    net.run_for(Duration::from_millis(100));
    assert_eq!(net.hosts[ha].frames.len(), 10);
    assert_eq!(net.hosts[hb].frames.len(), 10);
}

/// Chromium's simulcast offer (as the conformance page makes it) with the
/// `a=simulcast:send` value given: the video section sendonly, with an
/// `a=rid:<id> send` line per id and no `a=ssrc` lines.
fn simulcast_offer(rids: &[&str], simulcast: &str) -> String {
    let base = fixture("chrome-offer.sdp");
    let mut offer = String::new();
    let mut in_video = false;
    for line in base.split_inclusive("\r\n") {
        if line.starts_with("m=") {
            in_video = line.starts_with("m=video");
        }
        if in_video && line.starts_with("a=ssrc") {
            continue;
        }
        if in_video && line.starts_with("a=sendrecv") {
            offer.push_str("a=sendonly\r\n");
            for rid in rids {
                offer.push_str(&format!("a=rid:{rid} send\r\n"));
            }
            offer.push_str(&format!("a=simulcast:send {simulcast}\r\n"));
            continue;
        }
        offer.push_str(line);
    }
    offer
}

/// The remote video tracks.
fn remote_video(c: &Connection) -> Vec<TrackDescription> {
    let remote = c.description(Direction::Remote).unwrap();
    remote.streams.into_iter().flat_map(|s| s.tracks).filter(|t| t.kind == Kind::Video).collect()
}

/// RFC 8853 section 5.3, RFC 8851 section 4: a simulcast offer (a=rid
/// send, a=simulcast:send, no a=ssrc) is accepted: `a=rid:<id> recv` for
/// each and `a=simulcast:recv` with the same list; each layer is a remote
/// track `<track>-<rid>` of the section's stream, waiting for the packets
/// whose MID and RID name it. The MID and RID extensions are answered
/// under the offer's ids.
#[test]
fn a_simulcast_offer_is_answered_with_simulcast() {
    let offer = simulcast_offer(&["h", "m", "l"], "h;m;l");
    let (mut c, now) = answerer(&[Kind::Audio]);
    let a = answer(&mut c, now, &offer);
    mirrors(&offer, &a);
    let video = a.medias.iter().find(|m| m.media == "video").unwrap();
    assert_ne!(video.port, 0, "video taken");
    assert_eq!(direction(video), "recvonly");
    assert_eq!(attr(video, "rid"), vec!["h recv", "m recv", "l recv"]);
    assert_eq!(attr(video, "simulcast"), vec!["recv h;m;l"]);
    let extmaps = attr(video, "extmap");
    for e in [
        "4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
        "11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
    ] {
        assert!(extmaps.contains(&e), "{e} missing from {extmaps:?}");
    }
    let mid = attr(video, "mid")[0].to_owned();
    let tracks = remote_video(&c);
    assert_eq!(tracks.len(), 3, "{tracks:?}");
    for (t, want) in tracks.iter().zip(["h", "m", "l"]) {
        assert!(t.track_id.ends_with(&format!("-{want}")), "{t:?}");
        assert_eq!((t.rid.as_deref(), t.mid.as_deref(), t.ssrc), (Some(want), Some(mid.as_str()), None));
    }
}

/// RFC 8853 section 5.3: past four layers the answer removes the rest (from
/// a=simulcast and a=rid alike); a paused layer (`~`) stays paused; of
/// alternatives the first with a send rid is taken; an id without an
/// `a=rid ... send` line is left out.
#[test]
fn simulcast_layers_past_the_budget_paused_and_alternatives() {
    let offer = simulcast_offer(&["a", "b", "c", "d", "e", "f"], "a;~b;x,c;d;e;f");
    let (mut c, now) = answerer(&[Kind::Audio]);
    let a = answer(&mut c, now, &offer);
    let video = a.medias.iter().find(|m| m.media == "video").unwrap();
    assert_eq!(attr(video, "rid"), vec!["a recv", "b recv", "c recv", "d recv"]);
    assert_eq!(attr(video, "simulcast"), vec!["recv a;~b;c;d"]);
    assert_eq!(remote_video(&c).len(), 4);
}

/// Without the RtpStreamId extension the layers cannot be told apart: the
/// answer refuses simulcast (no a=rid, no a=simulcast), so the offerer
/// sends one stream, which the section's one track takes.
#[test]
fn a_simulcast_offer_without_the_rid_extension_is_answered_without_simulcast() {
    let offer = simulcast_offer(&["h", "m", "l"], "h;m;l")
        .replace("a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n", "");
    let (mut c, now) = answerer(&[Kind::Audio]);
    let a = answer(&mut c, now, &offer);
    mirrors(&offer, &a);
    let video = a.medias.iter().find(|m| m.media == "video").unwrap();
    assert_ne!(video.port, 0, "video taken");
    assert!(attr(video, "rid").is_empty() && attr(video, "simulcast").is_empty(), "no simulcast answered");
    let tracks = remote_video(&c);
    assert_eq!(tracks.len(), 1, "{tracks:?}");
    assert_eq!((tracks[0].rid.as_deref(), tracks[0].ssrc), (None, None));

    // Our own options without it: the same.
    let offer = simulcast_offer(&["h", "m", "l"], "h;m;l");
    let mut opts = rtc_proto::default_options();
    opts.header_extensions.retain(|e| !e.uri.ends_with("sdes:rtp-stream-id"));
    let now = Instant::now();
    let config =
        ConnectionConfig { seed: Some(5), options: std::sync::Arc::new(opts), ..ConnectionConfig::new(None, None) };
    let mut c = Connection::new(config, now, SystemTime::now()).unwrap();
    let cert = rtc_dtls::Certificate::generate().unwrap();
    let local: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let socket = SocketConfig::new("s", vec![(Component::RTP, local)], SocketOptions::default(), cert);
    c.add_socket(now, SocketId(0), &socket, true).unwrap();
    let a = answer(&mut c, now, &offer);
    let video = a.medias.iter().find(|m| m.media == "video").unwrap();
    assert!(attr(video, "rid").is_empty() && attr(video, "simulcast").is_empty(), "no simulcast answered");
    assert!(!attr(video, "extmap").iter().any(|e| e.contains("rtp-stream-id ")), "{:?}", attr(video, "extmap"));
    assert_eq!(remote_video(&c).len(), 1);
}

/// RFC 8829 section 5.2.2: an offerer may recycle a rejected section for a
/// new one (a new `mid` at its index). The re-offer is answered section for
/// section: the recycled one under its new `mid`, taken.
#[test]
fn a_recycled_section_is_answered_under_its_new_mid() {
    let base = fixture("chromium-offer.sdp");
    let session = Session::parse(base.as_bytes()).unwrap();
    let audio = session.medias[0].clone();
    let video = session.medias[1].clone();
    let with_mid = |m: &sdp_types::Media, mid: &str, port: u16| {
        let mut m = m.clone();
        m.attributes.retain(|a| a.attribute != "mid" && a.attribute != "ssrc" && a.attribute != "msid");
        m.add_attribute_with_value("mid", mid);
        m.port = port;
        m
    };
    let mut first = session.clone();
    first.medias = vec![with_mid(&audio, "a", 9), with_mid(&video, "v", 0)];
    first.attributes.retain(|a| a.attribute != "group");
    first.attributes.insert(0, sdp_types::Attribute::with_value("group", "BUNDLE a"));
    let first = first.to_string();
    let (mut c, now) = answerer(&[Kind::Audio, Kind::Video]);
    let a = answer(&mut c, now, &first);
    mirrors(&first, &a);
    assert_eq!(a.medias.iter().map(|m| m.port).collect::<Vec<_>>(), vec![9, 0]);

    // The second offer puts a new video section (mid "v2") where the
    // rejected one was.
    let mut second = session.clone();
    second.origin.sess_version += 1;
    second.medias = vec![with_mid(&audio, "a", 9), with_mid(&video, "v2", 9)];
    second.attributes.retain(|a| a.attribute != "group");
    second.attributes.insert(0, sdp_types::Attribute::with_value("group", "BUNDLE a v2"));
    let second = second.to_string();
    let a = answer(&mut c, now, &second);
    mirrors(&second, &a);
    assert_eq!(a.medias.iter().map(|m| m.port).collect::<Vec<_>>(), vec![9, 9]);
    assert_eq!(bundle(&a), vec!["a", "v2"]);
    assert_eq!(direction(&a.medias[1]), "sendrecv", "our video track goes into the recycled section");
    assert!(!attr(&a.medias[1], "ssrc").is_empty());
}
