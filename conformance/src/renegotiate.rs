//! Renegotiation with headless Chromium (`rtc-conformance
//! browser-renegotiate`, run by the `api` suite in a loopback-only network
//! namespace): Chromium offers and rtc answers; mid-call Chromium adds a
//! video track and offers again, rtc answers; then rtc adds a video stream
//! and offers ([`RtcConnection::create_offer`]), Chromium answers. Passes
//! when the call never restarts and every stream flows: rtc receives
//! Chromium's audio, camera and canvas, Chromium decodes both of rtc's
//! video streams.

use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant};

use rtc_api::{
    ConnectionEvent, RtcConnection, RtcMediaStream, RtcMediaStreamTrack, RtcSocket, SdpType, SocketOptions,
    SocketServers, StreamDescription,
};
use rtc_codecs::Kind;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::browser::{Pages, launch, serve_pages};

/// Opus silence (RFC 6716 TOC 0xf8: a 20 ms CELT frame).
const OPUS_SILENCE: [u8; 3] = [0xf8, 0xff, 0xfe];

/// Runs the call; returns a one-line summary.
pub fn chromium_renegotiates(root: &Path, chromium: OsString) -> Result<String, String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(run(root, chromium))
}

fn stream_of(kinds: &[Kind]) -> Result<(RtcMediaStream, Vec<RtcMediaStreamTrack>), String> {
    let stream = RtcMediaStream::new(StreamDescription::default());
    let mut tracks = Vec::new();
    for k in kinds {
        let t = RtcMediaStreamTrack::of_kind(*k);
        stream.add_track(t.clone()).map_err(|e| e.to_string())?;
        tracks.push(t);
    }
    Ok((stream, tracks))
}

async fn run(root: &Path, chromium: OsString) -> Result<String, String> {
    let page =
        std::fs::read_to_string(root.join("conformance/peers/chromium_renegotiate.html")).map_err(|e| e.to_string())?;
    let (clip, frame_time) = crate::media::ivf_frames(crate::media::BUILTIN_VP8)?;
    let conn = RtcConnection::new(None, None).map_err(|e| e.to_string())?;
    let mut events = conn.events();
    let socket =
        RtcSocket::new(SocketServers::loopback_v4(), SocketOptions::default()).await.map_err(|e| e.to_string())?;
    let (first, first_tracks) = stream_of(&[Kind::Audio, Kind::Video])?;
    conn.send_stream(&first, true).map_err(|e| e.to_string())?;
    conn.add_socket(&socket).map_err(|e| e.to_string())?;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let pages = Pages::default();
    pages.set("/renegotiate.html", page);
    let (tx, mut posted) = mpsc::channel(8);
    tokio::spawn(serve_pages(listener, pages.clone(), tx));
    let profile = std::env::temp_dir().join(format!("rtc-chromium-renegotiate-{}", std::process::id()));
    let mut browser = launch(&chromium, &format!("http://127.0.0.1:{port}/renegotiate.html"), &profile)?;
    let result = async {
        let mut audio_tick = tokio::time::interval(Duration::from_millis(20));
        let mut video_tick = tokio::time::interval(frame_time);
        let mut second: Option<Vec<RtcMediaStreamTrack>> = None;
        let mut got: std::collections::HashMap<u32, u32> = std::collections::HashMap::new();
        let mut connected_at: Option<Instant> = None;
        let started = Instant::now();
        let mut sent_video = 0usize;
        let mut connected = 0;
        let report = loop {
            tokio::select! {
                _ = audio_tick.tick() => {
                    if conn.is_connected() {
                        first_tracks[0].write_frame(&OPUS_SILENCE, Duration::from_millis(20)).map_err(|e| e.to_string())?;
                    }
                    for t in conn.remote_streams().iter().flat_map(|s| s.tracks()) {
                        while let Some(f) = t.try_read_frame() {
                            *got.entry(f.ssrc).or_default() += 1;
                        }
                    }
                    while let Some(e) = events.try_next() {
                        if e == ConnectionEvent::Connected {
                            connected += 1;
                        }
                    }
                    if connected_at.is_none() && conn.is_connected() {
                        connected_at = Some(Instant::now());
                    }
                    if started.elapsed() > Duration::from_secs(40) {
                        return Err("no result from Chromium in 40 s".to_owned());
                    }
                }
                _ = video_tick.tick() => {
                    let frame = &clip[sent_video % clip.len()];
                    sent_video += 1;
                    if conn.is_connected() {
                        first_tracks[1].write_frame(frame, frame_time).map_err(|e| e.to_string())?;
                        if let Some(t) = &second {
                            t[0].write_frame(frame, frame_time).map_err(|e| e.to_string())?;
                        }
                    }
                }
                p = posted.recv() => {
                    let (path, body) = p.ok_or("the HTTP listener stopped")?;
                    if body.starts_with("ERROR") {
                        return Err(format!("Chromium at {path}: {body}"));
                    }
                    match path.as_str() {
                        "/offer" | "/offer2" => {
                            conn.set_remote_sdp(SdpType::Offer, &body).map_err(|e| format!("Chromium's {path}: {e}"))?;
                            let answer = conn.local_sdp().map_err(|e| e.to_string())?;
                            pages.set(if path == "/offer" { "/answer" } else { "/answer2" }, answer);
                            if path == "/offer2" {
                                // rtc's turn: a second video stream, offered.
                                let (s, t) = stream_of(&[Kind::Video])?;
                                conn.send_stream(&s, true).map_err(|e| e.to_string())?;
                                second = Some(t);
                                // Chromium takes its answer first.
                                tokio::time::sleep(Duration::from_millis(500)).await;
                                let offer = conn.create_offer().map_err(|e| e.to_string())?;
                                pages.set("/offer3", offer);
                            }
                        }
                        "/answer3" => {
                            conn.set_remote_sdp(SdpType::Answer, &body).map_err(|e| format!("Chromium's answer: {e}"))?;
                        }
                        "/result" => break body,
                        other => return Err(format!("unexpected POST to {other}")),
                    }
                }
            }
        };
        let report: serde_json::Value = serde_json::from_str(&report).map_err(|e| format!("{e}: {report}"))?;
        while let Some(e) = events.try_next() {
            if e == ConnectionEvent::Connected {
                connected += 1;
            }
        }
        let decoded: Vec<u64> = report["inbound"]
            .as_array()
            .map(|a| a.iter().map(|s| s["framesDecoded"].as_u64().unwrap_or(0)).collect())
            .unwrap_or_default();
        let sent: Vec<u64> = report["outbound"]
            .as_array()
            .map(|a| a.iter().map(|s| s["packetsSent"].as_u64().unwrap_or(0)).collect())
            .unwrap_or_default();
        let mut counts: Vec<u32> = got.values().copied().collect();
        counts.sort_unstable();
        let summary = format!(
            "connected once ({connected} Connected events); after Chromium's second offer and ours, Chromium \
             decoded {decoded:?} frames of our {} video streams and sent {sent:?} packets on its {} video \
             streams; we received {counts:?} frames from its {} streams",
            decoded.len(),
            sent.len(),
            counts.len()
        );
        let ok = connected == 1
            && report["connection"] == "connected"
            && decoded.len() == 2
            && decoded.iter().all(|d| *d > 10)
            && sent.len() == 2
            && counts.len() == 3
            && counts.iter().all(|c| *c > 10);
        if !ok {
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
