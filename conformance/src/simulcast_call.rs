//! Simulcast from headless Chromium (`rtc-conformance browser-simulcast`,
//! run by the `api` suite in a loopback-only network namespace), as a
//! browser publishes to an SFU: the page
//! (`conformance/peers/chromium_offer.html?simulcast=1`) sends its fake camera at
//! 640x480 sendonly in three VP8 layers (`sendEncodings` rid h, m at half
//! size, l at a quarter), which Chromium offers with `a=rid` and
//! `a=simulcast:send h;m;l` and no SSRCs; rtc answers `a=rid:<id> recv`
//! and `a=simulcast:recv h;m;l` and learns each layer's SSRC from the MID
//! and RtpStreamId header extensions of its packets. Passes when every
//! layer Chromium says it sent (`outbound-rtp` with `framesSent` > 0, by
//! `rid`) arrived on rtc's remote track of that layer (`<track>-<rid>`),
//! under the SSRC Chromium reports for that rid, with at least 80% of the
//! frames Chromium sent on it; the summary gives each layer's frames both
//! sides counted and the size of its VP8 key frames as rtc read them.
//!
//! It runs twice: with the 640x480 camera (for which Chromium sends two of
//! the layers: libwebrtc allows two at that size) and at 1280x720, where
//! Chromium sends all three once its bandwidth estimate allows.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use rtc_api::{Direction, RtcConnection, RtcSocket, SdpType, SocketOptions, SocketServers};
use rtc_codecs::Kind;

use crate::browser::{connected_after_answer, posted_to, serve_offer_page, with_chromium};

/// Runs the calls (640x480, then 1280x720); returns a one-line summary.
pub fn chromium_simulcast(root: &Path, chromium: OsString) -> Result<String, String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let vga = rt.block_on(run(root, &chromium, (640, 480)))?;
    let hd = rt.block_on(run(root, &chromium, (1280, 720)))?;
    Ok(format!("640x480: {vga}. 1280x720: {hd}"))
}

/// The width and height a VP8 key frame gives (RFC 6386 section 9.1: the
/// 3-octet frame tag with bit 0 clear, the start code 9d 01 2a, then 14
/// bits of width and of height, little-endian).
fn vp8_key_frame_size(frame: &[u8]) -> Option<(u16, u16)> {
    let f = frame.get(..10)?;
    if f[0] & 1 != 0 || f[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    Some((u16::from_le_bytes([f[6], f[7]]) & 0x3fff, u16::from_le_bytes([f[8], f[9]]) & 0x3fff))
}

/// What rtc received on one remote track.
#[derive(Debug, Default)]
struct Layer {
    frames: u64,
    key_frames: u64,
    size: Option<(u16, u16)>,
}

/// Takes every frame waiting on `conn`'s remote video tracks into `layers`,
/// by track id.
fn drain(conn: &RtcConnection, layers: &mut BTreeMap<String, Layer>) {
    for t in conn.remote_streams().iter().flat_map(|s| s.tracks()).filter(|t| t.kind() == Kind::Video) {
        let layer = layers.entry(t.id()).or_default();
        while let Some(f) = t.try_read_frame() {
            layer.frames += 1;
            if let Some(size) = vp8_key_frame_size(&f.data) {
                layer.key_frames += 1;
                layer.size = Some(size);
            }
        }
    }
}

async fn run(root: &Path, chromium: &OsString, (width, height): (u32, u32)) -> Result<String, String> {
    let page =
        std::fs::read_to_string(root.join("conformance/peers/chromium_offer.html")).map_err(|e| e.to_string())?;
    let conn = RtcConnection::new(None, None).map_err(|e| e.to_string())?;
    let socket =
        RtcSocket::new(SocketServers::loopback_v4(), SocketOptions::default()).await.map_err(|e| e.to_string())?;
    conn.add_socket(&socket).map_err(|e| e.to_string())?;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let query = format!("simulcast=1&seconds=8&width={width}&height={height}");
    let (pages, mut posted, url) = serve_offer_page(page, &query).await?;
    let result = with_chromium(chromium, &url, "simulcast", async {
        let offer = posted_to(&mut posted, "/offer").await?;
        if !offer.contains("a=simulcast:send h;m;l") {
            return Err(format!("Chromium's offer has no simulcast:\n{offer}"));
        }
        conn.set_remote_sdp(SdpType::Offer, &offer).map_err(|e| format!("Chromium's offer: {e}"))?;
        let answer = conn.local_sdp().map_err(|e| e.to_string())?;
        for line in ["a=rid:h recv", "a=rid:m recv", "a=rid:l recv", "a=simulcast:recv h;m;l"] {
            if !answer.contains(&format!("{line}\r\n")) {
                return Err(format!("our answer lacks {line}:\n{answer}"));
            }
        }
        pages.set("/answer", answer.clone());
        let connected = connected_after_answer(&conn, &answer).await?;
        let mut layers: BTreeMap<String, Layer> = BTreeMap::new();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let report = loop {
            tokio::select! {
                _ = tick.tick() => drain(&conn, &mut layers),
                r = posted_to(&mut posted, "/result") => break r?,
            }
        };
        // What arrived after Chromium's count is taken too.
        tokio::time::sleep(Duration::from_millis(200)).await;
        drain(&conn, &mut layers);
        let report: serde_json::Value = serde_json::from_str(&report).map_err(|e| format!("{e}: {report}"))?;
        check(&conn, &layers, &report, connected)
    })
    .await;
    conn.close();
    result
}

/// Passes when every layer Chromium sent arrived on its track under its
/// SSRC, at least 80% of its frames; the summary either way.
fn check(
    conn: &RtcConnection,
    layers: &BTreeMap<String, Layer>,
    report: &serde_json::Value,
    connected: Duration,
) -> Result<String, String> {
    let ssrcs: BTreeMap<String, u32> = conn
        .stats()
        .into_iter()
        .filter(|r| r.direction == Direction::Remote && r.kind == Kind::Video)
        .map(|r| (r.track_id, r.ssrc))
        .collect();
    let mut parts = Vec::new();
    let mut failures = Vec::new();
    let mut sent_layers = 0;
    for l in report["layers"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let rid = l["rid"].as_str().unwrap_or("?");
        let sent = l["framesSent"].as_u64().unwrap_or(0);
        let their_ssrc = l["ssrc"].as_u64().unwrap_or(0);
        let track = layers.keys().find(|id| id.ends_with(&format!("-{rid}")));
        let got = track.and_then(|id| layers.get(id));
        let our_ssrc = track.and_then(|id| ssrcs.get(id)).copied().unwrap_or(0);
        let frames = got.map_or(0, |g| g.frames);
        let size = got.and_then(|g| g.size).map_or("no key frame".to_owned(), |(w, h)| format!("{w}x{h}"));
        parts.push(format!(
            "{rid}: Chromium sent {sent} frames ({}x{}) on SSRC {their_ssrc}, rtc received {frames} ({} key frames, \
             {size}) on {} (SSRC {our_ssrc})",
            l["frameWidth"],
            l["frameHeight"],
            got.map_or(0, |g| g.key_frames),
            track.map_or("no track", String::as_str),
        ));
        if sent == 0 {
            continue;
        }
        sent_layers += 1;
        if frames == 0 || u64::from(our_ssrc) != their_ssrc || frames * 10 < sent * 8 {
            failures.push(rid.to_owned());
        }
    }
    let summary = format!(
        "connected {:.0} ms after our answer; {sent_layers} layers sent; {}; Chromium's outgoing estimate {} bit/s",
        connected.as_secs_f64() * 1000.0,
        parts.join("; "),
        report["pair"]["availableOutgoingBitrate"],
    );
    if sent_layers == 0 || !failures.is_empty() {
        return Err(format!("layers {failures:?} not received as sent: {summary}: {report}"));
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vp8_key_frame_gives_its_size() {
        // A key frame tag (bit 0 clear), the start code, 640 and 480 with
        // scaling bits set (masked off).
        let f = [0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x42, 0xe0, 0x41, 0x00];
        assert_eq!(vp8_key_frame_size(&f), Some((640, 480)));
        let mut inter = f;
        inter[0] |= 1;
        assert_eq!(vp8_key_frame_size(&inter), None);
        assert_eq!(vp8_key_frame_size(&f[..5]), None);
    }
}
