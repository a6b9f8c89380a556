//! VP9 and AV1 with headless Chromium (`rtc-conformance browser-vp9` and
//! `browser-av1`, run by the `codecs` suite in a loopback-only network
//! namespace): Chromium offers a fake camera and microphone
//! (`conformance/peers/chromium_offer.html`), rtc answers with the codec
//! (VP9 profile 0, or AV1 profile 0) as its only video codec, then sends
//! Opus silence and the built-in clip of that codec, packetized by
//! rtc-payload (RFC 9628; the AOM AV1 RTP payload format), while Chromium's
//! video in that codec comes to rtc. Passes when Chromium's decoder took our
//! frames (`framesDecoded`, at the clip's 160x120) and rtc reassembled at
//! least 90% of the frames Chromium sent (`framesSent`), key frames among
//! them.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use rtc_api::{
    RtcConnection, RtcMediaStream, RtcMediaStreamTrack, RtcSocket, SdpType, SocketOptions, SocketServers,
    StreamDescription,
};
use rtc_codecs::Kind;

use crate::browser::{launch, posted_to};

/// Opus silence (RFC 6716 TOC 0xf8: a 20 ms CELT frame).
const SILENCE: [u8; 3] = [0xf8, 0xff, 0xfe];

/// A video codec the call is made in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// VP9 profile 0 (RFC 9628).
    Vp9,
    /// AV1 main profile (the AOM AV1 RTP payload format).
    Av1,
}

impl Codec {
    /// Its SDP encoding name.
    fn name(self) -> &'static str {
        match self {
            Codec::Vp9 => "VP9",
            Codec::Av1 => "AV1",
        }
    }

    /// The default options with this codec in place of VP8, profile 0 (RFC
    /// 9628 section 6; AV1's `profile`): VP8's feedback and RTX stay.
    fn options(self) -> rtc_codecs::Options {
        let mut options = rtc_api::default_options();
        for c in options.codecs.iter_mut().filter(|c| c.name.eq_ignore_ascii_case("VP8")) {
            c.name = self.name().into();
            c.parameters.insert(if self == Codec::Vp9 { "profile-id" } else { "profile" }, "0");
        }
        options
    }

    /// Its built-in clip and IVF fourcc.
    fn clip(self) -> (&'static [u8], [u8; 4]) {
        match self {
            Codec::Vp9 => (crate::media::BUILTIN_VP9, *b"VP90"),
            Codec::Av1 => (crate::media::BUILTIN_AV1, *b"AV01"),
        }
    }
}

/// Runs the call in VP9; returns a one-line summary.
pub fn chromium_vp9(root: &Path, chromium: OsString) -> Result<String, String> {
    chromium_codec(root, chromium, Codec::Vp9)
}

/// Runs the call in `codec`; returns a one-line summary.
pub fn chromium_codec(root: &Path, chromium: OsString, codec: Codec) -> Result<String, String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(run(root, chromium, codec))
}

async fn run(root: &Path, chromium: OsString, codec: Codec) -> Result<String, String> {
    let page =
        std::fs::read_to_string(root.join("conformance/peers/chromium_offer.html")).map_err(|e| e.to_string())?;
    let (file, fourcc) = codec.clip();
    let (clip, frame_time) = crate::media::ivf_frames_of(file, fourcc)?;
    let name = codec.name();
    let conn = RtcConnection::new(None, Some(codec.options())).map_err(|e| e.to_string())?;
    let socket =
        RtcSocket::new(SocketServers::loopback_v4(), SocketOptions::default()).await.map_err(|e| e.to_string())?;
    let stream = RtcMediaStream::new(StreamDescription::default());
    let [audio, video] = [Kind::Audio, Kind::Video].map(RtcMediaStreamTrack::of_kind);
    for t in [&audio, &video] {
        stream.add_track(t.clone()).map_err(|e| e.to_string())?;
    }
    conn.send_stream(&stream, true).map_err(|e| e.to_string())?;
    conn.add_socket(&socket).map_err(|e| e.to_string())?;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The page at /offer.html; Chromium posts its offer, reads /answer.
    let (pages, mut posted, url) = crate::browser::serve_offer_page(page, "seconds=4").await?;
    let profile = std::env::temp_dir().join(format!("rtc-chromium-{name}-{}", std::process::id()));
    let mut browser = launch(&chromium, &url, &profile)?;
    let result = async {
        let offer = posted_to(&mut posted, "/offer").await?;
        conn.set_remote_sdp(SdpType::Offer, &offer).map_err(|e| format!("Chromium's offer: {e}"))?;
        let answer = conn.local_sdp().map_err(|e| e.to_string())?;
        if !answer.lines().any(|l| l.starts_with("a=rtpmap:") && l.contains(&format!(" {name}/90000"))) {
            return Err(format!("our answer has no {name}:\n{answer}"));
        }
        pages.set("/answer", answer.clone());
        crate::browser::connected_after_answer(&conn, &answer).await?;
        let theirs: Vec<RtcMediaStreamTrack> = conn.remote_streams().iter().flat_map(|s| s.tracks()).collect();
        let mut audio_tick = tokio::time::interval(Duration::from_millis(20));
        let mut video_tick = tokio::time::interval(frame_time);
        let (mut sent, mut got, mut got_keys) = (0usize, 0u32, 0u32);
        let report = loop {
            tokio::select! {
                _ = audio_tick.tick() => {
                    audio.write_frame(&SILENCE, Duration::from_millis(20)).map_err(|e| e.to_string())?;
                    for t in theirs.iter().filter(|t| t.kind() == Kind::Video) {
                        while let Some(f) = t.try_read_frame() {
                            got += 1;
                            got_keys += u32::from(f.key_frame);
                        }
                    }
                }
                _ = video_tick.tick() => {
                    video.write_frame(&clip[sent % clip.len()], frame_time).map_err(|e| e.to_string())?;
                    sent += 1;
                }
                r = posted_to(&mut posted, "/result") => break r?,
            }
        };
        let report: serde_json::Value = serde_json::from_str(&report).map_err(|e| format!("{e}: {report}"))?;
        let v = &report["video"];
        let decoded = v["framesDecoded"].as_u64().unwrap_or(0);
        let their_sent = report["out"]["video"]["framesSent"].as_u64().unwrap_or(0);
        let summary = format!(
            "Chromium decoded {decoded} of our {sent} {name} frames ({}x{}, {} key frames); we reassembled {got} of \
             the {their_sent} {name} frames it sent ({got_keys} key frames)",
            v["frameWidth"], v["frameHeight"], v["keyFramesDecoded"],
        );
        let sized = v["frameWidth"].as_u64() == Some(160) && v["frameHeight"].as_u64() == Some(120);
        // Loopback loses nothing: all but the frames in flight at the end.
        let whole = u64::from(got) * 10 >= their_sent * 9;
        if decoded < 30 || !sized || got < 10 || got_keys == 0 || !whole {
            return Err(format!("{summary}: {report}"));
        }
        Ok(summary)
    }
    .await;
    conn.close();
    let _ = browser.kill().await;
    let _ = std::fs::remove_dir_all(&profile);
    result
}
