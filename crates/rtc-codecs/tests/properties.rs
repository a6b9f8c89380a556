//! Properties of negotiation, checked on generated dictionaries drawn from
//! the codecs browsers offer (so that they often match):
//! - the agreed set does not depend on who offers;
//! - negotiating the result again changes nothing;
//! - nothing appears that one side did not offer;
//! - agreed payload types are unique and RTX/RED refer to agreed codecs;
//! - dictionaries survive JSON and SDP round trips.

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::sample::subsequence;
use rtc_codecs::{
    Agreement, Codec, Constraints, Feedback, HeaderExtension, Kind, MediaConstraints, Options, PayloadType, negotiate,
};

/// A codec template: kind, name, clock, channels, and fixed parameters. Each
/// template is a distinct format, so a generated side never lists one format twice.
type Template = (Kind, &'static str, u32, Option<u16>, &'static [(&'static str, &'static str)]);

const AUDIO: &[Template] = &[
    (Kind::Audio, "opus", 48000, Some(2), &[]),
    (Kind::Audio, "PCMU", 8000, None, &[]),
    (Kind::Audio, "PCMA", 8000, None, &[]),
    (Kind::Audio, "G722", 8000, None, &[]),
    (Kind::Audio, "CN", 8000, None, &[]),
    (Kind::Audio, "telephone-event", 8000, None, &[("0-15", "")]),
    (Kind::Audio, "telephone-event", 48000, None, &[("0-16", "")]),
    (Kind::Audio, "L16", 44100, Some(2), &[]),
];

const VIDEO: &[Template] = &[
    (Kind::Video, "VP8", 90000, None, &[]),
    (Kind::Video, "VP9", 90000, None, &[]),
    (Kind::Video, "VP9", 90000, None, &[("profile-id", "2")]),
    (Kind::Video, "AV1", 90000, None, &[]),
    (Kind::Video, "AV1", 90000, None, &[("profile", "1")]),
    (
        Kind::Video,
        "H265",
        90000,
        None,
        &[("level-id", "180"), ("profile-id", "1"), ("tier-flag", "0"), ("tx-mode", "SRST")],
    ),
    (Kind::Video, "H265", 90000, None, &[("level-id", "93"), ("profile-id", "2")]),
    (Kind::Video, "H264", 90000, None, &[("packetization-mode", "1"), ("profile-level-id", "42e0")]),
    (Kind::Video, "H264", 90000, None, &[("profile-level-id", "42e0")]),
    (Kind::Video, "H264", 90000, None, &[("packetization-mode", "1"), ("profile-level-id", "4200")]),
    (Kind::Video, "H264", 90000, None, &[("packetization-mode", "1"), ("profile-level-id", "4d00")]),
    (Kind::Video, "H264", 90000, None, &[("packetization-mode", "1"), ("profile-level-id", "6400")]),
    (Kind::Video, "H264", 90000, None, &[("packetization-mode", "1"), ("profile-level-id", "640c")]),
    (Kind::Video, "ulpfec", 90000, None, &[]),
    (Kind::Video, "red", 90000, None, &[]),
];

const FEEDBACK: &[(&str, Option<&str>)] =
    &[("nack", None), ("nack", Some("pli")), ("ccm", Some("fir")), ("goog-remb", None), ("transport-cc", None)];

const URIS: &[&str] = &[
    "urn:ietf:params:rtp-hdrext:sdes:mid",
    "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "urn:ietf:params:rtp-hdrext:toffset",
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
];

/// Per-codec random choices that do not change its format.
#[derive(Debug, Clone)]
struct Extra {
    feedback: Vec<usize>,
    level: &'static str,
    rtx: bool,
    rtx_time: Option<u32>,
    numbers: [Option<u32>; 4],
    flags: [Option<bool>; 4],
    name_upper: bool,
}

fn extra() -> impl Strategy<Value = Extra> {
    (
        subsequence((0..FEEDBACK.len()).collect::<Vec<_>>(), 0..=FEEDBACK.len()),
        prop::sample::select(vec!["0b", "15", "1f", "28", "33"]),
        any::<bool>(),
        prop::option::of(prop::sample::select(vec![200u32, 500, 3000])),
        prop::array::uniform4(prop::option::of(prop::sample::select(vec![10u32, 20, 30, 60, 3600, 12288, 64000]))),
        prop::array::uniform4(prop::option::of(any::<bool>())),
        any::<bool>(),
    )
        .prop_map(|(feedback, level, rtx, rtx_time, numbers, flags, name_upper)| Extra {
            feedback,
            level,
            rtx,
            rtx_time,
            numbers,
            flags,
            name_upper,
        })
}

fn build(t: &Template, pt: u8, e: &Extra) -> Codec {
    let (kind, name, rate, channels, fixed) = *t;
    let name = if e.name_upper { name.to_ascii_uppercase() } else { name.to_owned() };
    let mut c = Codec::new(PayloadType::new(pt).expect("pt"), kind, &name, rate, channels);
    for (k, v) in fixed {
        if *k == "profile-level-id" {
            c.parameters.insert(*k, format!("{v}{}", e.level));
        } else {
            c.parameters.insert(*k, *v);
        }
    }
    let n = |i: usize| e.numbers[i].map(|v| v.to_string());
    let f = |i: usize| e.flags[i].map(|b| if b { "1" } else { "0" });
    let lower = name.to_ascii_lowercase();
    let mut set = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            c.parameters.insert(k, v);
        }
    };
    match lower.as_str() {
        "opus" => {
            set("minptime", n(0));
            set("maxaveragebitrate", n(1));
            set("useinbandfec", f(0).map(str::to_owned));
            set("stereo", f(1).map(str::to_owned));
            set("usedtx", f(2).map(str::to_owned));
            set("x-unknown", f(3).map(str::to_owned));
        }
        "vp8" | "vp9" => {
            set("max-fr", n(0));
            set("max-fs", n(1));
        }
        "av1" => set("level-idx", e.numbers[0].map(|v| (v % 24).to_string())),
        "h264" => {
            set("level-asymmetry-allowed", f(0).map(str::to_owned));
            set("max-fs", n(1));
        }
        _ => {}
    }
    if !matches!(lower.as_str(), "cn" | "telephone-event" | "ulpfec") {
        c.rtcp_feedback = e.feedback.iter().map(|i| Feedback::new(FEEDBACK[*i].0, FEEDBACK[*i].1)).collect();
    }
    c
}

fn side() -> impl Strategy<Value = Options> {
    // One pool per kind: payload types are per kind in a dictionary, so the
    // two kinds often collide, as the seed's example does with 96.
    let pts =
        (Just((96u8..=127).collect::<Vec<_>>()).prop_shuffle(), Just((96u8..=127).collect::<Vec<_>>()).prop_shuffle());
    let audio = subsequence((0..AUDIO.len()).collect::<Vec<_>>(), 0..=AUDIO.len()).prop_shuffle();
    let video = subsequence((0..VIDEO.len()).collect::<Vec<_>>(), 0..=VIDEO.len()).prop_shuffle();
    let extras = prop::collection::vec(extra(), AUDIO.len() + VIDEO.len());
    let red = (any::<bool>(), any::<bool>());
    let exts = prop::collection::vec((any::<bool>(), 1u8..=6), URIS.len() * 2);
    let limits = prop::collection::vec(
        prop::option::weighted(0.2, prop::sample::select(vec![1u32, 2, 15, 30, 640, 1280, 32000, 64000])),
        16,
    );
    let static_pcm = any::<bool>();
    let video_first = any::<bool>();
    (pts, audio, video, extras, red, exts, limits, static_pcm, video_first).prop_map(
        |(pts, audio, video, extras, red, exts, limits, static_pcm, video_first)| {
            let mut o = Options::default();
            let mut next = pts.0.into_iter();
            let mut audio_codecs = Vec::new();
            let mut video_codecs = Vec::new();
            for i in audio {
                let t = &AUDIO[i];
                let pt = match (static_pcm, t.1) {
                    (true, "PCMU") => 0,
                    (true, "PCMA") => 8,
                    _ => next.next().unwrap_or(127),
                };
                audio_codecs.push(build(t, pt, &extras[i]));
            }
            // Audio RED (RFC 2198) over opus, with or without a list.
            if red.0
                && let Some(opus) = audio_codecs.iter().find(|c| c.is("opus")).map(|c| c.payload_id)
            {
                let mut r = Codec::new(
                    PayloadType::new(next.next().unwrap_or(126)).expect("pt"),
                    Kind::Audio,
                    "red",
                    48000,
                    Some(2),
                );
                if red.1 {
                    r.parameters.insert(format!("{opus}/{opus}"), "");
                }
                audio_codecs.push(r);
            }
            let mut next = pts.1.into_iter();
            for i in video {
                let e = &extras[AUDIO.len() + i];
                let c = build(&VIDEO[i], next.next().unwrap_or(125), e);
                let apt = c.payload_id;
                let is_fec = c.is("ulpfec");
                video_codecs.push(c);
                if e.rtx && !is_fec {
                    let mut r = Codec::new(
                        PayloadType::new(next.next().unwrap_or(124)).expect("pt"),
                        Kind::Video,
                        "rtx",
                        90000,
                        None,
                    );
                    r.parameters.insert("apt", apt.to_string());
                    if let Some(t) = e.rtx_time {
                        r.parameters.insert("rtx-time", t.to_string());
                    }
                    video_codecs.push(r);
                }
            }
            // Static payload types may also be used by the other kind: PTs are per kind.
            if video_first {
                o.codecs = video_codecs.into_iter().chain(audio_codecs).collect();
            } else {
                o.codecs = audio_codecs.into_iter().chain(video_codecs).collect();
            }
            for (i, (on, id)) in exts.into_iter().enumerate() {
                let kind = if i < URIS.len() { Kind::Audio } else { Kind::Video };
                let uri = URIS[i % URIS.len()];
                if on && !o.header_extensions.iter().any(|h| h.kind == kind && h.id == id) {
                    o.header_extensions.push(HeaderExtension { kind, id, uri: uri.to_owned() });
                }
            }
            let mut l = limits.into_iter();
            let mut pick = |kind: Kind| {
                let mut c = MediaConstraints::default();
                let mut v = || l.next().flatten();
                match kind {
                    Kind::Video => {
                        c.max_width = v().map(|x| x.max(16));
                        c.min_width = v().map(|x| x.min(640));
                        c.max_framerate = v().map(|x| x.max(15));
                        c.min_framerate = v().map(|x| x.min(30));
                    }
                    Kind::Audio => {
                        c.max_bitrate = v().map(|x| x.max(32000));
                        c.min_bitrate = v().map(|x| x.min(32000));
                        c.max_channels = v().map(|x| x.clamp(1, 2));
                        c.min_channels = v().map(|x| x.clamp(1, 2));
                    }
                }
                c
            };
            let mut req = Constraints::default();
            let mut opt = Constraints::default();
            for k in Kind::ALL {
                let r = pick(k);
                // Keep each dictionary's own required range valid.
                let valid = [
                    rtc_codecs::Dimension::Width,
                    rtc_codecs::Dimension::Framerate,
                    rtc_codecs::Dimension::Bitrate,
                    rtc_codecs::Dimension::Channels,
                ]
                .iter()
                .all(|d| !matches!((r.min(*d), r.max(*d)), (Some(lo), Some(hi)) if lo > hi));
                if valid {
                    req.set(k, r);
                }
                opt.set(k, pick(k));
            }
            o.required = req;
            o.optional = opt;
            o.validate().expect("generated options are valid");
            o
        },
    )
}

/// A payload-type-free description of one agreed codec: what it is, its
/// parameters with `apt` and RED lists naming codecs instead of numbers, and
/// its feedback as a set.
fn canonical(c: &Codec, all: &[Codec]) -> String {
    let key = |c: &Codec| format!("{}:{}/{}/{}", c.kind, c.name.to_ascii_lowercase(), c.hz_rate, c.channel_count());
    let by_pt = |pt: &str| {
        all.iter()
            .find(|o| o.kind == c.kind && o.payload_id.to_string() == pt)
            .map(|o| format!("{}[{}]", key(o), params(o)))
            .unwrap_or_else(|| format!("dangling {pt}"))
    };
    let params = |c: &Codec| -> String {
        c.parameters
            .iter()
            .map(|(k, v)| {
                if k == "apt" {
                    format!("apt={}", by_pt(v))
                } else if c.is("red") && v.is_empty() {
                    format!("red={}", k.split('/').map(by_pt).collect::<Vec<_>>().join("/"))
                } else {
                    format!("{k}={}", v.to_ascii_lowercase())
                }
            })
            .collect::<Vec<_>>()
            .join(";")
    };
    let fb: BTreeSet<String> = c.rtcp_feedback.iter().map(ToString::to_string).collect();
    format!("{} [{}] {:?}", key(c), params(c), fb)
}

fn params(c: &Codec) -> String {
    c.parameters.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(";")
}

fn agreed_set(a: &Agreement) -> BTreeSet<String> {
    a.codecs.iter().map(|c| canonical(c, &a.codecs)).collect()
}

fn ext_set(a: &Agreement) -> BTreeSet<(Kind, String)> {
    a.header_extensions.iter().map(|h| (h.kind, h.uri.clone())).collect()
}

fn same_name(x: &Codec, c: &Codec) -> bool {
    x.kind == c.kind
        && x.name.eq_ignore_ascii_case(&c.name)
        && x.hz_rate == c.hz_rate
        && x.channel_count() == c.channel_count()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn agreement_does_not_depend_on_who_offers(a in side(), b in side()) {
        match (negotiate(&a, &b), negotiate(&b, &a)) {
            (Ok(ab), Ok(ba)) => {
                prop_assert_eq!(agreed_set(&ab), agreed_set(&ba));
                prop_assert_eq!(ext_set(&ab), ext_set(&ba));
                prop_assert_eq!(ab.required, ba.required);
                prop_assert_eq!(ab.optional, ba.optional);
            }
            (Err(x), Err(y)) => prop_assert_eq!(x.to_string(), y.to_string()),
            (x, y) => prop_assert!(false, "one way {:?}, the other {:?}", x.map(|_| ()), y.map(|_| ())),
        }
    }

    #[test]
    fn negotiating_the_result_again_changes_nothing(a in side(), b in side()) {
        if let Ok(r) = negotiate(&a, &b) {
            let o = r.to_options();
            let again = negotiate(&o, &o).expect("an agreement negotiates with itself");
            prop_assert_eq!(&again, &r);
            // Also from JSON, as a peer would receive it.
            let back = Options::from_json(&o.to_json()).expect("agreement JSON reads back");
            prop_assert_eq!(negotiate(&back, &back).expect("again"), r);
        }
    }

    #[test]
    fn nothing_appears_that_one_side_did_not_offer(a in side(), b in side()) {
        let Ok(r) = negotiate(&a, &b) else { return Ok(()) };
        for c in &r.codecs {
            let xs: Vec<&Codec> = a.codecs.iter().filter(|x| same_name(x, c)).collect();
            let ys: Vec<&Codec> = b.codecs.iter().filter(|y| same_name(y, c)).collect();
            prop_assert!(!xs.is_empty() && !ys.is_empty(), "{} not offered by both", c.name);
            for f in &c.rtcp_feedback {
                prop_assert!(xs.iter().any(|x| x.rtcp_feedback.contains(f)), "feedback {} not in offer", f);
                prop_assert!(ys.iter().any(|y| y.rtcp_feedback.contains(f)), "feedback {} not in answer", f);
            }
            for (k, _) in c.parameters.iter() {
                let stated = xs.iter().chain(&ys).any(|x| x.parameters.get(k).is_some());
                let made_explicit = c.is("h264") && (k == "packetization-mode" || k == "profile-level-id");
                let red_list = c.is("red");
                prop_assert!(stated || made_explicit || red_list, "parameter {} of {} from nowhere", k, c.name);
            }
            // The offerer's payload type, unless a conflict moved it.
            let offered = a.codecs.iter().any(|x| same_name(x, c) && x.payload_id == c.payload_id);
            let moved = c.payload_id.is_dynamic() || (35..=63).contains(&c.payload_id.get());
            prop_assert!(offered || moved);
        }
        for h in &r.header_extensions {
            // The offerer's ID, unless another URI of the agreement holds it.
            let x = a.header_extensions.iter().find(|x| x.kind == h.kind && x.uri == h.uri);
            prop_assert!(x.is_some_and(|x| x.id == h.id
                || r.header_extensions.iter().any(|o| o.id == x.id && o.uri != h.uri)));
            prop_assert!(b.header_extensions.iter().any(|y| y.kind == h.kind && y.uri == h.uri));
        }
    }

    #[test]
    fn agreed_payload_types_are_unique_and_references_resolve(a in side(), b in side()) {
        let Ok(r) = negotiate(&a, &b) else { return Ok(()) };
        // One header extension ID names one URI across kinds.
        for h in &r.header_extensions {
            prop_assert!(r.header_extensions.iter().all(|o| o.id != h.id || o.uri == h.uri), "ID {} names two URIs", h.id);
        }
        let pts: BTreeSet<u8> = r.codecs.iter().map(|c| c.payload_id.get()).collect();
        prop_assert_eq!(pts.len(), r.codecs.len(), "one RTP session: a payload type names one codec");
        for c in &r.codecs {
            if c.is("rtx") {
                let apt = c.parameters.get("apt").expect("rtx has apt");
                prop_assert!(r.codecs.iter().any(|o| o.kind == c.kind && !o.is("rtx") && o.payload_id.to_string() == apt));
            }
            if c.is("red") && c.kind == Kind::Audio {
                for (k, v) in c.parameters.iter() {
                    if v.is_empty() {
                        for pt in k.split('/') {
                            prop_assert!(r.codecs.iter().any(|o| o.payload_id.to_string() == pt && o.kind == Kind::Audio));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn options_survive_json(a in side()) {
        let back = Options::from_json(&a.to_json()).expect("own JSON reads back");
        prop_assert_eq!(back, a);
    }

    #[test]
    fn options_survive_sdp(a in side()) {
        let sdp = a.to_sdp().expect("generated options write as SDP");
        let back = Options::from_sdp(sdp.as_bytes()).expect("own SDP reads back");
        for k in Kind::ALL {
            let want: Vec<&Codec> = a.codecs_of(k).collect();
            let got: Vec<&Codec> = back.codecs_of(k).collect();
            prop_assert_eq!(got, want);
            let want: Vec<&HeaderExtension> = a.header_extensions.iter().filter(|h| h.kind == k).collect();
            let got: Vec<&HeaderExtension> = back.header_extensions.iter().filter(|h| h.kind == k).collect();
            if a.codecs_of(k).next().is_some() {
                prop_assert_eq!(got, want);
            }
            // SDP carries the required maximum bitrate (b=TIAS) and frame rate.
            if a.codecs_of(k).next().is_some() {
                prop_assert_eq!(back.required.get(k).max_bitrate, a.required.get(k).max_bitrate);
                prop_assert_eq!(back.required.get(k).max_framerate, a.required.get(k).max_framerate);
            }
        }
    }
}

/// The properties above are only as good as the dictionaries they see: check
/// that the generator reaches agreements, payload type conflicts, RTX, RED,
/// H.264 and unmet required constraints often enough.
#[test]
fn generator_covers_the_interesting_cases() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut ok, mut err, mut moved, mut rtx, mut red, mut h264, mut ext_moved) = (0, 0, 0, 0, 0, 0, 0);
    for _ in 0..500 {
        let a = side().new_tree(&mut runner).expect("tree").current();
        let b = side().new_tree(&mut runner).expect("tree").current();
        match negotiate(&a, &b) {
            Ok(r) => {
                ok += 1;
                rtx += r.codecs.iter().filter(|c| c.is("rtx")).count();
                red += r.codecs.iter().filter(|c| c.is("red") && c.kind == Kind::Audio).count();
                h264 += r.codecs.iter().filter(|c| c.is("h264")).count();
                ext_moved += r
                    .header_extensions
                    .iter()
                    .filter(|h| !a.header_extensions.iter().any(|x| x.kind == h.kind && x.id == h.id && x.uri == h.uri))
                    .count();
                moved += r
                    .codecs
                    .iter()
                    .filter(|c| !a.codecs.iter().any(|x| x.payload_id == c.payload_id && x.kind == c.kind))
                    .count();
            }
            Err(_) => err += 1,
        }
    }
    println!("ok {ok} err {err} moved {moved} rtx {rtx} red {red} h264 {h264} extension IDs moved {ext_moved}");
    assert!(ok > 250 && err > 20, "ok {ok} err {err}");
    assert!(moved > 10 && rtx > 100 && red > 5 && h264 > 100, "moved {moved} rtx {rtx} red {red} h264 {h264}");
    assert!(ext_moved > 10, "extension IDs moved {ext_moved}");
}
