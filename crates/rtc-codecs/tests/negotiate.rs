//! Negotiation and mapping rules, case by case.

use rtc_codecs::{Kind, NegotiateError, Options, OptionsError, SdpError, negotiate};

/// The seed's example object, verbatim (a JavaScript literal).
const SEED_EXAMPLE: &str = r#"{
  codecs: [
      {
          payloadId: 96,
          kind: "audio",
          name: "<name>",
          hzRate: 32000,
          channels: 1
          // ...
      },
      {
          payloadId: 96,
          kind: "video",
          name: "<name>",
          hzRate: 96000
          // ...
      }
  ],
  required: {
  },
  optional: {
      video: {
          maxWdith: 1280,
          maxHeight: 720
      }
  }
};"#;

/// Turns a JavaScript object literal of the seed's kind into JSON: drops
/// `//` comments and the closing `;`, quotes bare keys.
fn js_to_json(js: &str) -> String {
    let mut out = String::new();
    for line in js.lines() {
        let line = line.split("//").next().unwrap_or("");
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        match trimmed.split_once(':') {
            Some((key, rest)) if !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') => {
                out.push_str(&format!("{indent}\"{key}\":{rest}\n"));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out.trim_end().trim_end_matches(';').to_owned()
}

fn opts(json: &str) -> Options {
    Options::from_json(json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

fn sdp(media: &str) -> Options {
    let text = format!("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n{}", media.replace('\n', "\r\n"));
    Options::from_sdp(text.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

fn summary(o: &Options) -> Vec<String> {
    o.codecs.iter().map(|c| format!("{} {}/{}", c.payload_id, c.name, c.hz_rate)).collect()
}

#[test]
fn the_seed_example_deserializes() {
    let o = opts(&js_to_json(SEED_EXAMPLE));
    assert_eq!(o.codecs.len(), 2);
    assert_eq!((o.codecs[0].payload_id.get(), o.codecs[0].kind, o.codecs[0].hz_rate), (96, Kind::Audio, 32000));
    assert_eq!(o.codecs[0].channels, Some(1));
    assert_eq!((o.codecs[1].kind, o.codecs[1].hz_rate, o.codecs[1].channels), (Kind::Video, 96000, None));
    assert!(o.required.is_empty());
    let v = o.optional.get(Kind::Video);
    assert_eq!((v.max_width, v.max_height), (Some(1280), Some(720)));
    // Written back with the correct spelling.
    assert!(o.to_json().contains("\"maxWidth\":1280"));
}

#[test]
fn seed_example_with_itself_resolves_the_shared_payload_type() {
    let o = opts(&js_to_json(SEED_EXAMPLE));
    let r = negotiate(&o, &o).expect("negotiates");
    // One RTP session (RFC 8843 section 9.1.1): the video codec moves to the
    // lowest free dynamic payload type.
    assert_eq!(summary(&r.to_options()), ["96 <name>/32000", "97 <name>/96000"]);
    assert_eq!(r.effective(Kind::Video).max_width, Some(1280));
    assert_eq!(negotiate(&r.to_options(), &r.to_options()).expect("again"), r);
}

#[test]
fn payload_id_is_also_accepted_as_payload_dash_id() {
    let o = opts(r#"{"codecs":[{"payload-id":0,"kind":"audio","name":"PCMU","hzRate":8000}]}"#);
    assert_eq!(o.codecs[0].payload_id.get(), 0);
    assert!(o.to_json().contains("\"payloadId\":0"));
}

#[test]
fn dictionaries_that_cannot_be_used_are_errors() {
    let dup = r#"{"codecs":[{"payloadId":96,"kind":"video","name":"VP8","hzRate":90000},
                           {"payloadId":96,"kind":"video","name":"VP9","hzRate":90000}]}"#;
    assert!(matches!(Options::from_json(dup), Err(OptionsError::DuplicatePayloadType { kind: Kind::Video, .. })));
    let typo = r#"{"required":{"video":{"maxWidht":640}}}"#;
    assert!(matches!(Options::from_json(typo), Err(OptionsError::Json(_))));
    let wrong_kind = r#"{"required":{"audio":{"maxWidth":640}}}"#;
    assert!(matches!(Options::from_json(wrong_kind), Err(OptionsError::Constraint { name: "maxWidth", .. })));
    let crossed = r#"{"required":{"video":{"minWidth":1280,"maxWidth":640}}}"#;
    assert!(matches!(Options::from_json(crossed), Err(OptionsError::Constraint { name: "minWidth", .. })));
    let pt = r#"{"codecs":[{"payloadId":128,"kind":"audio","name":"x","hzRate":8000}]}"#;
    assert!(Options::from_json(pt).is_err());
    let zero = r#"{"codecs":[{"payloadId":96,"kind":"audio","name":"x","hzRate":0}]}"#;
    assert!(matches!(Options::from_json(zero), Err(OptionsError::Codec { .. })));
    let kind = r#"{"codecs":[{"payloadId":96,"kind":"text","name":"t140","hzRate":1000}]}"#;
    assert!(Options::from_json(kind).is_err());
}

#[test]
fn codecs_come_in_the_offerers_order_with_the_offerers_payload_types() {
    let offer = sdp("m=audio 9 UDP/TLS/RTP/SAVPF 109 9 0 8\n\
                     a=rtpmap:109 opus/48000/2\na=rtpmap:9 G722/8000/1\na=rtpmap:0 PCMU/8000\na=rtpmap:8 PCMA/8000\n");
    let answer = sdp("m=audio 9 UDP/TLS/RTP/SAVPF 8 0 111\na=rtpmap:111 OPUS/48000/2\n");
    let r = negotiate(&offer, &answer).expect("negotiates");
    assert_eq!(summary(&r.to_options()), ["109 opus/48000", "0 PCMU/8000", "8 PCMA/8000"]);
    let r = negotiate(&answer, &offer).expect("negotiates");
    assert_eq!(summary(&r.to_options()), ["8 PCMA/8000", "0 PCMU/8000", "111 OPUS/48000"]);
}

#[test]
fn clock_rate_and_channels_must_match() {
    let offer = sdp("m=audio 9 RTP/AVP 110 126 96\na=rtpmap:110 telephone-event/48000\n\
                     a=rtpmap:126 telephone-event/8000\na=rtpmap:96 L16/44100/2\n");
    let answer = sdp("m=audio 9 RTP/AVP 101 97 0\na=rtpmap:101 telephone-event/8000\na=rtpmap:97 L16/44100\n");
    // Only helpers would agree, and helpers alone carry no media.
    assert!(negotiate(&offer, &answer).expect("negotiates").codecs.is_empty());
    let offer =
        sdp("m=audio 9 RTP/AVP 0 110 126\na=rtpmap:110 telephone-event/48000\na=rtpmap:126 telephone-event/8000\n");
    let answer = sdp("m=audio 9 RTP/AVP 0 101\na=rtpmap:101 telephone-event/8000\na=fmtp:101 0-15\n");
    let r = negotiate(&offer, &answer).expect("negotiates");
    assert_eq!(summary(&r.to_options()), ["0 PCMU/8000", "126 telephone-event/8000"]);
    // A parameter only one side states is not carried (unknown to our rules).
    assert!(r.codecs[1].parameters.is_empty());
}

/// RFC 7587 section 7 writes Opus as `opus/48000/2`; webrtcbin sometimes
/// leaves the count out. Read as two channels, it still matches ours
/// (read as mono, the section would be rejected and the call lost).
#[test]
fn opus_without_a_channel_count_is_two_channels() {
    let ours = sdp("m=audio 9 UDP/TLS/RTP/SAVPF 111\na=rtpmap:111 opus/48000/2\n");
    let theirs = sdp("m=audio 9 UDP/TLS/RTP/SAVPF 96\na=rtpmap:96 OPUS/48000\n");
    assert_eq!(theirs.codecs[0].channels, Some(2));
    let r = negotiate(&theirs, &ours).expect("negotiates");
    assert_eq!(summary(&r.to_options()), ["96 OPUS/48000"]);
    // Other codecs without a count stay mono.
    assert_eq!(sdp("m=audio 9 RTP/AVP 97\na=rtpmap:97 L16/44100\n").codecs[0].channels, None);
}

#[test]
fn h264_profile_and_packetization_mode_must_match_and_the_level_is_the_lower() {
    let offer = sdp("m=video 9 UDP/TLS/RTP/SAVPF 102 104 106\n\
        a=rtpmap:102 H264/90000\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\n\
        a=rtpmap:104 H264/90000\na=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f\n\
        a=rtpmap:106 H264/90000\na=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\n");
    // Constrained Baseline written as 4D/1xxx0000 (RFC 6184 table 5), level 2.1.
    let answer = sdp("m=video 9 UDP/TLS/RTP/SAVPF 126\na=rtpmap:126 H264/90000\n\
        a=fmtp:126 profile-level-id=4d8015;packetization-mode=1\n");
    let r = negotiate(&offer, &answer).expect("negotiates");
    assert_eq!(summary(&r.to_options()), ["106 H264/90000"]);
    let p = &r.codecs[0].parameters;
    assert_eq!(p.get("profile-level-id"), Some("42e015"));
    assert_eq!(p.get("packetization-mode"), Some("1"));
    // level-asymmetry-allowed needs both sides.
    assert_eq!(p.get("level-asymmetry-allowed"), None);
    // No profile-level-id is Baseline level 1 (RFC 6184 section 8.1): it
    // matches 42001f packetization-mode 1 only.
    let plain = sdp("m=video 9 RTP/AVP 96\na=rtpmap:96 H264/90000\na=fmtp:96 packetization-mode=1\n");
    let r = negotiate(&offer, &plain).expect("negotiates");
    assert_eq!(summary(&r.to_options()), ["102 H264/90000"]);
    assert_eq!(r.codecs[0].parameters.get("profile-level-id"), Some("42000a"));
}

#[test]
fn vp9_profile_id_and_av1_profile_must_match() {
    let offer = sdp("m=video 9 RTP/AVPF 98 100 45 47\na=rtpmap:98 VP9/90000\na=fmtp:98 profile-id=0\n\
        a=rtpmap:100 VP9/90000\na=fmtp:100 profile-id=2\na=rtpmap:45 AV1/90000\na=fmtp:45 level-idx=5;profile=0;tier=0\n\
        a=rtpmap:47 AV1/90000\na=fmtp:47 profile=1\n");
    let answer = sdp("m=video 9 RTP/AVPF 121 35\na=rtpmap:121 VP9/90000\na=fmtp:121 max-fs=12288;max-fr=60\n\
        a=rtpmap:35 AV1/90000\na=fmtp:35 level-idx=8\n");
    let r = negotiate(&offer, &answer).expect("negotiates");
    assert_eq!(summary(&r.to_options()), ["98 VP9/90000", "45 AV1/90000"]);
    let vp9 = &r.codecs[0].parameters;
    assert_eq!((vp9.get("profile-id"), vp9.get("max-fs"), vp9.get("max-fr")), (Some("0"), Some("12288"), Some("60")));
    let av1 = &r.codecs[1].parameters;
    assert_eq!((av1.get("profile"), av1.get("level-idx"), av1.get("tier")), (Some("0"), Some("5"), Some("0")));
}

/// RFC 7798 section 7.2.2: profile-space, profile-id, tier-flag and
/// tx-mode are used symmetrically (defaults 0, 1 Main, 0, SRST); the
/// answer's level-id may be lower than the offer's, and the agreement keeps
/// the lower one (absent: 93, level 3.1).
#[test]
fn h265_profile_tier_and_tx_mode_must_match_and_the_lower_level_is_kept() {
    // Chromium's H.265 lines (Main and Main 10, level 6.0).
    let offer = sdp("m=video 9 UDP/TLS/RTP/SAVPF 49 51\na=rtpmap:49 H265/90000\n\
        a=fmtp:49 level-id=180;profile-id=1;tier-flag=0;tx-mode=SRST\na=rtpmap:51 H265/90000\n\
        a=fmtp:51 level-id=180;profile-id=2;tier-flag=0;tx-mode=SRST\n");
    let main = sdp("m=video 9 RTP/AVPF 96\na=rtpmap:96 H265/90000\na=fmtp:96 level-id=120\n");
    let r = negotiate(&offer, &main).expect("negotiates");
    assert_eq!(summary(&r.to_options()), ["49 H265/90000"]);
    let p = &r.codecs[0].parameters;
    assert_eq!((p.get("profile-id"), p.get("level-id"), p.get("tier-flag")), (Some("1"), Some("120"), Some("0")));
    // Without level-id, the default level 3.1.
    let plain = sdp("m=video 9 RTP/AVPF 96\na=rtpmap:96 H265/90000\n");
    let r = negotiate(&offer, &plain).expect("negotiates");
    assert_eq!(r.codecs[0].parameters.get("level-id"), Some("93"));
    // Main 10 only; the high tier, or several RTP streams, match nothing.
    let main10 = sdp("m=video 9 RTP/AVPF 96\na=rtpmap:96 H265/90000\na=fmtp:96 profile-id=2\n");
    assert_eq!(summary(&negotiate(&offer, &main10).expect("negotiates").to_options()), ["51 H265/90000"]);
    for other in ["tier-flag=1", "tx-mode=MRST", "profile-space=1"] {
        let answer = sdp(&format!("m=video 9 RTP/AVPF 96\na=rtpmap:96 H265/90000\na=fmtp:96 {other}\n"));
        assert!(negotiate(&offer, &answer).map_or(true, |r| r.codecs.is_empty()), "{other}");
    }
}

#[test]
fn opus_parameters_merge_as_receiver_preferences() {
    // Chrome's and Firefox's opus lines.
    let chrome = sdp("m=audio 9 UDP/TLS/RTP/SAVPF 111\na=rtpmap:111 opus/48000/2\na=rtcp-fb:111 transport-cc\n\
                      a=fmtp:111 minptime=10;useinbandfec=1\n");
    let firefox = sdp("m=audio 9 UDP/TLS/RTP/SAVPF 109\na=rtpmap:109 opus/48000/2\n\
                       a=fmtp:109 maxplaybackrate=48000; stereo=1; useinbandfec=1; x-new=1\n");
    let r = negotiate(&chrome, &firefox).expect("negotiates");
    let p: Vec<(&str, &str)> = r.codecs[0].parameters.iter().collect();
    // stereo needs both (RFC 7587 section 7.1), unknown ones are removed.
    assert_eq!(p, [("maxplaybackrate", "48000"), ("minptime", "10"), ("useinbandfec", "1")]);
    assert!(r.codecs[0].rtcp_feedback.is_empty(), "Firefox lists no feedback for opus");
}

#[test]
fn rtx_follows_its_codec_and_takes_the_offerers_numbers() {
    let offer = sdp("m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99\n\
        a=rtpmap:96 VP8/90000\na=rtpmap:97 rtx/90000\na=fmtp:97 apt=96\n\
        a=rtpmap:98 VP9/90000\na=fmtp:98 profile-id=2\na=rtpmap:99 rtx/90000\na=fmtp:99 apt=98\n");
    let answer = sdp("m=video 9 UDP/TLS/RTP/SAVPF 120 124 121 125\n\
        a=rtpmap:120 VP8/90000\na=rtpmap:124 rtx/90000\na=fmtp:124 apt=120;rtx-time=3000\n\
        a=rtpmap:121 VP9/90000\na=rtpmap:125 rtx/90000\na=fmtp:125 apt=121\n");
    let r = negotiate(&offer, &answer).expect("negotiates");
    // VP9 profile 2 is not agreed, so its RTX goes with it.
    assert_eq!(summary(&r.to_options()), ["96 VP8/90000", "97 rtx/90000"]);
    let rtx: Vec<(&str, &str)> = r.codecs[1].parameters.iter().collect();
    assert_eq!(rtx, [("apt", "96"), ("rtx-time", "3000")]);
}

#[test]
fn red_needs_the_codecs_it_lists() {
    let offer = sdp("m=audio 9 UDP/TLS/RTP/SAVPF 111 63 0\na=rtpmap:111 opus/48000/2\n\
                     a=rtpmap:63 red/48000/2\na=fmtp:63 111/111\na=rtpmap:0 PCMU/8000\n");
    let with_opus = sdp("m=audio 9 RTP/AVPF 100 101\na=rtpmap:100 opus/48000/2\na=rtpmap:101 red/48000/2\n\
                         a=fmtp:101 100/100\n");
    let r = negotiate(&offer, &with_opus).expect("negotiates");
    assert_eq!(summary(&r.to_options()), ["111 opus/48000", "63 red/48000"]);
    assert_eq!(r.codecs[1].parameters.get("111/111"), Some(""));
    // The other way round the list names the other side's numbers.
    let r = negotiate(&with_opus, &offer).expect("negotiates");
    assert_eq!(r.codecs[1].parameters.get("100/100"), Some(""));
    let without_opus = sdp("m=audio 9 RTP/AVPF 0 101\na=rtpmap:101 red/48000/2\na=fmtp:101 0/0\n");
    let r = negotiate(&offer, &without_opus).expect("negotiates");
    assert_eq!(summary(&r.to_options()), ["0 PCMU/8000"]);
}

#[test]
fn feedback_and_header_extensions_are_intersected() {
    let offer = sdp("m=video 9 UDP/TLS/RTP/SAVPF 96\na=extmap:14 urn:ietf:params:rtp-hdrext:toffset\n\
        a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\na=rtpmap:96 VP8/90000\n\
        a=rtcp-fb:96 goog-remb\na=rtcp-fb:96 transport-cc\na=rtcp-fb:96 ccm fir\na=rtcp-fb:96 nack\na=rtcp-fb:96 nack pli\n");
    let answer = sdp("m=video 9 UDP/TLS/RTP/SAVPF 120\na=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid\n\
        a=rtpmap:120 VP8/90000\na=rtcp-fb:* nack\na=rtcp-fb:120 nack pli\na=rtcp-fb:120 ccm fir\n");
    let r = negotiate(&offer, &answer).expect("negotiates");
    let fb: Vec<String> = r.codecs[0].rtcp_feedback.iter().map(ToString::to_string).collect();
    assert_eq!(fb, ["ccm fir", "nack", "nack pli"]);
    assert_eq!(r.header_extensions.len(), 1);
    assert_eq!(
        (r.header_extensions[0].id, r.header_extensions[0].uri.as_str()),
        (4, "urn:ietf:params:rtp-hdrext:sdes:mid")
    );
}

#[test]
fn required_constraints_drop_codecs_or_fail_naming_the_constraint() {
    let offer =
        sdp("m=audio 9 RTP/AVP 111 0 8\na=rtpmap:111 opus/48000/2\na=rtpmap:0 PCMU/8000\na=rtpmap:8 PCMA/8000\n");
    // G.711 needs 64 kbit/s (RFC 3551 section 4.5.14): a required 32 kbit/s
    // leaves opus alone.
    let low = opts(
        r#"{"codecs":[{"payloadId":96,"kind":"audio","name":"opus","hzRate":48000,"channels":2},
        {"payloadId":0,"kind":"audio","name":"PCMU","hzRate":8000},{"payloadId":8,"kind":"audio","name":"PCMA","hzRate":8000}],
        "required":{"audio":{"maxBitrate":32000}}}"#,
    );
    let r = negotiate(&offer, &low).expect("negotiates");
    assert_eq!(summary(&r.to_options()), ["111 opus/48000"]);
    // Stereo needs the receiver's stereo=1 (RFC 7587 section 7.1).
    let stereo = opts(
        r#"{"codecs":[{"payloadId":0,"kind":"audio","name":"PCMU","hzRate":8000},
        {"payloadId":96,"kind":"audio","name":"opus","hzRate":48000,"channels":2,"parameters":{"stereo":1}}],
        "required":{"audio":{"minChannels":2}}}"#,
    );
    match negotiate(&offer, &stereo) {
        Err(NegotiateError::Unsatisfiable { kind: Kind::Audio, constraint: "minChannels", .. }) => {}
        other => panic!("{other:?}"),
    }
    let stereo_offer = sdp("m=audio 9 RTP/AVP 111\na=rtpmap:111 opus/48000/2\na=fmtp:111 stereo=1\n");
    assert_eq!(negotiate(&stereo_offer, &stereo).expect("stereo both").codecs.len(), 1);
    // H.264 level 3.1 holds 3600 macroblocks: not 1920x1080 (8160).
    let h264 = sdp("m=video 9 RTP/AVPF 106 96\na=rtpmap:106 H264/90000\n\
        a=fmtp:106 packetization-mode=1;profile-level-id=42e01f\na=rtpmap:96 VP8/90000\n");
    let hd = opts(
        r#"{"codecs":[{"payloadId":100,"kind":"video","name":"H264","hzRate":90000,
        "parameters":{"packetization-mode":1,"profile-level-id":"42e028"}}],
        "required":{"video":{"minWidth":1920,"minHeight":1080}}}"#,
    );
    match negotiate(&h264, &hd) {
        Err(NegotiateError::Unsatisfiable { kind: Kind::Video, constraint: "minWidth", .. }) => {}
        other => panic!("{other:?}"),
    }
    let hd_vp8 = opts(
        r#"{"codecs":[{"payloadId":100,"kind":"video","name":"H264","hzRate":90000,
        "parameters":{"packetization-mode":1,"profile-level-id":"42e028"}},{"payloadId":101,"kind":"video","name":"VP8","hzRate":90000}],
        "required":{"video":{"minWidth":1920,"minHeight":1080}}}"#,
    );
    assert_eq!(summary(&negotiate(&h264, &hd_vp8).expect("VP8 can").to_options()), ["96 VP8/90000"]);
    // Required bounds from both sides that cross.
    let small = opts(
        r#"{"codecs":[{"payloadId":96,"kind":"video","name":"VP8","hzRate":90000}],"required":{"video":{"maxWidth":640}}}"#,
    );
    let big = opts(
        r#"{"codecs":[{"payloadId":96,"kind":"video","name":"VP8","hzRate":90000}],"required":{"video":{"minWidth":1280}}}"#,
    );
    match negotiate(&small, &big) {
        Err(e @ NegotiateError::Unsatisfiable { constraint: "minWidth", .. }) => {
            assert_eq!(
                e.to_string(),
                "required video minWidth cannot be met: above the required maximum of the other side"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn optional_constraints_are_best_effort() {
    let a = opts(
        r#"{"codecs":[{"payloadId":96,"kind":"video","name":"VP8","hzRate":90000}],
        "required":{"video":{"minWidth":640,"maxWidth":1920}},"optional":{"video":{"maxWidth":320,"maxFramerate":30}}}"#,
    );
    let b = opts(
        r#"{"codecs":[{"payloadId":96,"kind":"video","name":"VP8","hzRate":90000}],
        "optional":{"video":{"maxWidth":1280,"maxFramerate":24,"minFramerate":60}}}"#,
    );
    let r = negotiate(&a, &b).expect("negotiates");
    let e = r.effective(Kind::Video);
    // 320 is below the required 640, so it is dropped; the smallest optional
    // maximum frame rate applies; a minimum above it is dropped.
    assert_eq!((e.min_width, e.max_width), (Some(640), Some(1920)));
    assert_eq!((e.max_framerate, e.min_framerate), (Some(24), None));
}

#[test]
fn sdp_that_cannot_be_read_is_an_error() {
    let head = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n";
    let read = |m: &str| Options::from_sdp(format!("{head}{m}").as_bytes());
    assert!(matches!(read("m=audio 9 RTP/AVP 96\r\n"), Err(SdpError::MissingRtpmap(96))));
    assert!(matches!(read("m=audio 9 RTP/AVP 200\r\n"), Err(SdpError::Field { field: "m= format", .. })));
    assert!(matches!(
        read("m=audio 9 RTP/AVP 96\r\na=rtpmap:96 opus\r\n"),
        Err(SdpError::Attribute { attribute: "rtpmap", .. })
    ));
    assert!(matches!(read("m=audio 9 RTP/AVP 96\r\na=rtpmap:96 opus/48000/x\r\n"), Err(SdpError::Field { .. })));
    assert!(matches!(
        read("m=video 9 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\na=extmap:0 urn:x\r\n"),
        Err(SdpError::Attribute { .. })
    ));
    assert!(matches!(Options::from_sdp(b"not sdp"), Err(SdpError::Parse(_))));
    // Static payload types need no rtpmap (RFC 3264 section 5.1, RFC 3551 table 4).
    let o = read("m=audio 9 RTP/AVP 0 8 9\r\n").expect("static");
    assert_eq!(summary(&o), ["0 PCMU/8000", "8 PCMA/8000", "9 G722/8000"]);
    // Non-RTP sections are skipped.
    let o = read("m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n").expect("datachannel only");
    assert!(o.codecs.is_empty());
}

#[test]
fn options_write_a_valid_m_section() {
    let o = opts(
        r#"{"codecs":[
        {"payloadId":111,"kind":"audio","name":"opus","hzRate":48000,"channels":2,"parameters":{"minptime":10,"useinbandfec":1},
         "rtcpFeedback":[{"type":"transport-cc"}]},
        {"payloadId":101,"kind":"audio","name":"telephone-event","hzRate":8000,"parameters":{"0-15":""}}],
        "headerExtensions":[{"kind":"audio","id":1,"uri":"urn:ietf:params:rtp-hdrext:ssrc-audio-level"}],
        "required":{"audio":{"maxBitrate":64000}}}"#,
    );
    let text = o.to_sdp().expect("writes");
    for line in [
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 101\r\n",
        "c=IN IP4 0.0.0.0\r\n",
        "b=TIAS:64000\r\n",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n",
        "a=rtpmap:111 opus/48000/2\r\n",
        "a=rtcp-fb:111 transport-cc\r\n",
        "a=fmtp:111 minptime=10;useinbandfec=1\r\n",
        "a=rtpmap:101 telephone-event/8000\r\n",
        "a=fmtp:101 0-15\r\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from\n{text}");
    }
    assert_eq!(Options::from_sdp(text.as_bytes()).expect("reads back"), o);
    // The seed's "<name>" is fine in a dictionary but not an SDP token.
    let seed = opts(&js_to_json(SEED_EXAMPLE));
    assert!(matches!(seed.to_sdp(), Err(SdpError::Field { field: "a=rtpmap encoding name", .. })));
}

#[test]
fn one_extension_id_names_one_uri_across_kinds() {
    let offer = opts(
        r#"{"codecs":[{"payloadId":111,"kind":"audio","name":"opus","hzRate":48000,"channels":2},
        {"payloadId":96,"kind":"video","name":"VP8","hzRate":90000}],
        "headerExtensions":[{"kind":"audio","id":1,"uri":"urn:ietf:params:rtp-hdrext:ssrc-audio-level"},
        {"kind":"audio","id":2,"uri":"urn:ietf:params:rtp-hdrext:sdes:mid"},
        {"kind":"video","id":1,"uri":"urn:ietf:params:rtp-hdrext:sdes:mid"},
        {"kind":"video","id":2,"uri":"urn:ietf:params:rtp-hdrext:toffset"}]}"#,
    );
    let r = negotiate(&offer, &offer).expect("negotiates");
    let exts: Vec<String> = r.header_extensions.iter().map(|h| format!("{} {} {}", h.kind, h.id, h.uri)).collect();
    // Video's mid takes the ID audio gave it; toffset moves to the lowest free one-byte ID.
    assert_eq!(
        exts,
        [
            "audio 1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            "audio 2 urn:ietf:params:rtp-hdrext:sdes:mid",
            "video 2 urn:ietf:params:rtp-hdrext:sdes:mid",
            "video 3 urn:ietf:params:rtp-hdrext:toffset",
        ]
    );
    assert_eq!(negotiate(&r.to_options(), &r.to_options()).expect("again"), r);
}
