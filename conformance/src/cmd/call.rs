//! `rtc-conformance peer call`: a whole rtc peer that another stack's tests
//! can drive, with a stable contract (docs/conformance.md):
//!
//! - SDP travels as JSON lines: with `--role offer` it prints
//!   `{"type":"offer","sdp":"…"}` once its candidates are gathered, then
//!   reads `{"type":"answer","sdp":"…"}` from stdin; with `--role answer`
//!   it reads the offer line and prints the answer line.
//! - Then for `--seconds` (default 5) it sends Opus audio and VP8 video as
//!   asked (from `--audio-file` (Ogg Opus) / `--video-file` (IVF), else a
//!   built-in VP8 clip and Opus silence) and, with `--data`, opens a data
//!   stream `echo` (offer role) that carries a message every 100 ms, and
//!   echoes every message it receives on any data stream.
//! - Its last stdout line is `{"result":{…}}`; exit status 0 when connected
//!   and everything asked for flowed both ways, 1 otherwise. Logs go to
//!   stderr (rtc's, filtered by `RUST_LOG`, `warn` by default).

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use rtc_api::{
    ConnectionEvent, DataStreamDescription, DtlsEngine, RtcConnection, RtcDataStream, RtcMediaStream,
    RtcMediaStreamTrack, RtcSocket, SdpType, SocketEvent, SocketOptions, SocketServers, StreamDescription,
};
use rtc_codecs::Kind;
use rtc_conformance::media::{BUILTIN_VP8, ivf_frames, ogg_opus_packets, opus_duration};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Silence as one 20 ms Opus frame (TOC 0xf8: CELT fullband, one frame).
const OPUS_SILENCE: [u8; 3] = [0xf8, 0xff, 0xfe];

/// Which half of the offer/answer exchange this peer plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum CallRole {
    /// Makes the offer.
    Offer,
    /// Answers the peer's offer.
    Answer,
}

/// `peer call`'s arguments.
#[derive(Args, Debug)]
pub(crate) struct CallArgs {
    /// Make the offer or answer one.
    #[arg(long, value_enum)]
    role: CallRole,
    /// Send and expect Opus audio.
    #[arg(long)]
    audio: bool,
    /// Send and expect VP8 video.
    #[arg(long)]
    video: bool,
    /// Carry data (a data stream `echo` from the offerer; echo everything).
    #[arg(long)]
    data: bool,
    /// How long media flows once connected.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Local addresses to bind (`ADDR` or `ADDR:PORT`); 127.0.0.1 when none.
    #[arg(long)]
    bind: Vec<String>,
    /// Ogg Opus file to send (RFC 7845), looped.
    #[arg(long)]
    audio_file: Option<PathBuf>,
    /// IVF file of VP8 frames to send, looped.
    #[arg(long)]
    video_file: Option<PathBuf>,
    /// The DTLS engine: `dimpl` (ECDSA peers) or `openssl` (RSA peers too,
    /// such as GStreamer's webrtcbin).
    #[arg(long, value_enum, default_value_t = EngineArg::Dimpl)]
    dtls_engine: EngineArg,
    /// A STUN or TURN server (repeatable): `stun:HOST[:PORT]`,
    /// `turn:HOST[:PORT][?transport=udp|tcp]`, `turns:HOST[:PORT]` (RFC 7065).
    #[arg(long = "ice-server")]
    ice_servers: Vec<String>,
    /// The TURN servers' long-term credential: the username.
    #[arg(long)]
    ice_username: Option<String>,
    /// The TURN servers' long-term credential: the password.
    #[arg(long)]
    ice_credential: Option<String>,
    /// Gather, signal and use relayed candidates only (WebRTC's
    /// `iceTransportPolicy: "relay"`).
    #[arg(long)]
    relay_only: bool,
    /// Gather ICE-TCP candidates too (RFC 6544: a passive one per bound
    /// address, and active ones).
    #[arg(long)]
    tcp: bool,
    /// Signal and check no UDP host candidate (with `--tcp`: ICE-TCP only).
    #[arg(long)]
    no_udp: bool,
    /// A PEM file of CA certificates trusted for `turns:` servers (besides
    /// Mozilla's roots); repeatable.
    #[arg(long)]
    turn_ca: Vec<PathBuf>,
}

/// `--dtls-engine`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EngineArg {
    /// dimpl.
    Dimpl,
    /// OpenSSL.
    Openssl,
}

/// Counters shared with the tasks.
#[derive(Default)]
struct Counts {
    audio_frames: AtomicU64,
    video_frames: AtomicU64,
    messages_sent: AtomicU64,
    messages_received: AtomicU64,
}

fn say(v: &Value) {
    println!("{v}");
}

async fn read_json_line(lines: &mut tokio::io::Lines<BufReader<tokio::io::Stdin>>) -> Result<Value, String> {
    let line = lines.next_line().await.map_err(|e| e.to_string())?.ok_or("stdin closed before the SDP line")?;
    serde_json::from_str(&line).map_err(|e| format!("not a JSON line: {e}: {line}"))
}

/// The `--bind` addresses, and the port they give (one for all of them;
/// `None` for ephemeral ports).
fn binds(args: &CallArgs) -> Result<(Vec<IpAddr>, Option<u16>), String> {
    let mut ips = Vec::new();
    let mut port = None;
    for b in &args.bind {
        let (ip, p) = match b.parse::<SocketAddr>() {
            Ok(a) => (a.ip(), Some(a.port()).filter(|&p| p != 0)),
            Err(_) => (b.parse::<IpAddr>().map_err(|e| format!("--bind {b}: {e}"))?, None),
        };
        match (port, p) {
            (Some(q), Some(p)) if p != q => {
                return Err(format!("--bind {b}: every --bind must give the same port (or none)"));
            }
            (_, Some(_)) => port = p,
            _ => {}
        }
        ips.push(ip);
    }
    Ok((ips, port))
}

/// Runs the peer; prints the result line and returns whether the call
/// succeeded.
pub(crate) fn run(args: &CallArgs) -> Result<bool, String> {
    init_logs();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(call(args))
}

/// rtc's logs to stderr, filtered by `RUST_LOG` (`warn` when it is unset;
/// e.g. `RUST_LOG=rtc_proto=debug,rtc_ice=debug,rtc_dtls=debug`).
fn init_logs() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::builder()
        .with_default_directive(tracing_subscriber::filter::LevelFilter::WARN.into())
        .from_env_lossy();
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false).try_init();
}

async fn call(args: &CallArgs) -> Result<bool, String> {
    let (video_frames, frame_time) = match &args.video_file {
        Some(p) => ivf_frames(&std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?)?,
        None => ivf_frames(BUILTIN_VP8)?,
    };
    let audio_packets = match &args.audio_file {
        Some(p) => ogg_opus_packets(&std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?)?,
        None => vec![OPUS_SILENCE.to_vec()],
    };
    let (ips, port) = binds(args)?;
    let mut servers = if ips.is_empty() {
        SocketServers::loopback_v4()
    } else {
        SocketServers { bind: ips, ..SocketServers::default() }
    };
    servers.port = port;
    servers.urls.clone_from(&args.ice_servers);
    servers.username.clone_from(&args.ice_username);
    servers.credential.clone_from(&args.ice_credential);
    servers.relay_only = args.relay_only;
    servers.ice_tcp = args.tcp;
    servers.no_udp = args.no_udp;
    for f in &args.turn_ca {
        servers.turn_ca.push(std::fs::read_to_string(f).map_err(|e| format!("--turn-ca {}: {e}", f.display()))?);
    }
    servers.dtls_engine = match args.dtls_engine {
        EngineArg::Dimpl => DtlsEngine::Dimpl,
        EngineArg::Openssl => DtlsEngine::OpenSsl,
    };
    let conn = RtcConnection::new(None, None).map_err(|e| e.to_string())?;
    let socket = RtcSocket::new(servers, SocketOptions::default()).await.map_err(|e| e.to_string())?;
    let mut socket_events = socket.events();
    let mut events = conn.events();
    let stream = RtcMediaStream::new(StreamDescription::default());
    let audio = RtcMediaStreamTrack::of_kind(Kind::Audio);
    let video = RtcMediaStreamTrack::of_kind(Kind::Video);
    if args.audio {
        stream.add_track(audio.clone()).map_err(|e| e.to_string())?;
    }
    if args.video {
        stream.add_track(video.clone()).map_err(|e| e.to_string())?;
    }
    if args.audio || args.video {
        conn.send_stream(&stream, true).map_err(|e| e.to_string())?;
    }
    let mut echo_stream = None;
    if args.data {
        conn.enable_data();
        if args.role == CallRole::Offer {
            echo_stream = Some(conn.create_data_stream(DataStreamDescription::new("echo")).map_err(|e| e.to_string())?);
        }
    }
    conn.add_socket(&socket).map_err(|e| e.to_string())?;
    // Candidates are gathered once the socket joins the connection.
    tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(e) = socket_events.next().await {
            if e == SocketEvent::CandidatesDone {
                return;
            }
        }
    })
    .await
    .map_err(|_| "candidates not gathered within 5 s")?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    match args.role {
        CallRole::Offer => {
            let sdp = conn.local_sdp().map_err(|e| e.to_string())?;
            say(&json!({"type": "offer", "sdp": sdp}));
            let answer = read_json_line(&mut lines).await?;
            let sdp = answer["sdp"].as_str().ok_or("the answer line has no \"sdp\"")?;
            conn.set_remote_sdp(SdpType::Answer, sdp).map_err(|e| format!("the answer: {e}"))?;
        }
        CallRole::Answer => {
            let offer = read_json_line(&mut lines).await?;
            let sdp = offer["sdp"].as_str().ok_or("the offer line has no \"sdp\"")?;
            conn.set_remote_sdp(SdpType::Offer, sdp).map_err(|e| format!("the offer: {e}"))?;
            let answer = conn.local_sdp().map_err(|e| e.to_string())?;
            say(&json!({"type": "answer", "sdp": answer}));
        }
    }
    let asked = Instant::now();
    let mut pair = Value::Null;
    let connected = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(e) = events.next().await {
            match e {
                ConnectionEvent::ActiveConnectionCandidate { local, remote, .. } => {
                    pair = pair_summary(&local, &remote);
                }
                ConnectionEvent::Connected => return true,
                _ => {}
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    let connected_ms = connected.then(|| asked.elapsed().as_secs_f64() * 1000.0);
    eprintln!("peer call: {}", if connected { "connected" } else { "not connected within 10 s" });
    let counts = Arc::new(Counts::default());
    let until = Instant::now() + Duration::from_secs_f64(if connected { args.seconds } else { 0.0 });
    if connected {
        if args.audio {
            tokio::spawn(send_audio(audio.clone(), audio_packets, until));
        }
        if args.video {
            tokio::spawn(send_video(video.clone(), video_frames, frame_time, until));
        }
        // Tracks the description did not announce (no `a=ssrc`, as in
        // webrtcbin's audio sections) appear with their first packet.
        let mut reading = HashSet::new();
        read_new_tracks(&conn, &mut reading, &counts);
        let (c, n) = (conn.clone(), counts.clone());
        tokio::spawn(async move {
            while let Some(e) = events.next().await {
                if let ConnectionEvent::TrackConnected { direction: rtc_api::Direction::Remote, .. } = e {
                    read_new_tracks(&c, &mut reading, &n);
                }
            }
        });
        if args.data {
            tokio::spawn(accept(conn.clone(), counts.clone()));
            if let Some(s) = echo_stream.clone() {
                tokio::spawn(receive_data(s.clone(), counts.clone(), false));
                tokio::spawn(chat(s, counts.clone(), until));
            }
        }
    }
    tokio::time::sleep_until((until + Duration::from_millis(500)).into()).await;
    let stats = conn.stats();
    let sum = |kind: Kind, local: bool, f: fn(&rtc_api::RtpStats) -> Option<u64>| -> u64 {
        stats
            .iter()
            .filter(|r| r.kind == kind && (r.direction == rtc_api::Direction::Local) == local)
            .filter_map(|r| f(&r.stats))
            .sum()
    };
    let kind_result = |kind: Kind, frames: u64| {
        json!({
            "packets_sent": sum(kind, true, |s| s.packets_sent),
            "packets_received": sum(kind, false, |s| s.packets_received),
            "frames_received": frames,
            // What the peer's receiver reports say it lost of ours (RFC
            // 3550's cumulative number, signed), summed over the kind.
            "packets_lost_by_peer": stats
                .iter()
                .filter(|r| r.kind == kind && r.direction == rtc_api::Direction::Local)
                .map(|r| r.stats.packets_lost)
                .sum::<i64>(),
        })
    };
    let audio_r = kind_result(Kind::Audio, counts.audio_frames.load(Ordering::Relaxed));
    let video_r = kind_result(Kind::Video, counts.video_frames.load(Ordering::Relaxed));
    let (sent, received) =
        (counts.messages_sent.load(Ordering::Relaxed), counts.messages_received.load(Ordering::Relaxed));
    let flowed = |r: &Value| {
        r["packets_sent"].as_u64().unwrap_or(0) > 0
            && r["packets_received"].as_u64().unwrap_or(0) > 0
            && r["frames_received"].as_u64().unwrap_or(0) > 0
    };
    let ok = connected
        && (!args.audio || flowed(&audio_r))
        && (!args.video || flowed(&video_r))
        && (!args.data || (sent > 0 && received > 0));
    // The selected pair's statistics: how a relay is reached, the round
    // trip, what went over it.
    if let Some(p) = conn.candidate_pairs().into_iter().find(|p| p.selected && p.component == 1) {
        pair["relay_protocol"] = json!(p.relay_protocol);
        pair["protocol"] = json!(p.protocol);
        pair["tcp_type"] = json!(p.tcp_type);
        pair["current_round_trip_time"] = json!(p.counters.current_round_trip_time.map(|d| d.as_secs_f64()));
        pair["bytes_sent"] = json!(p.counters.bytes_sent);
        pair["bytes_received"] = json!(p.counters.bytes_received);
    }
    let mut result = json!({
        "connected_ms": connected_ms,
        "ice": if connected { "connected" } else { "failed" },
        "dtls": if conn.is_connected() || connected { "connected" } else { "failed" },
        "selected_pair": pair,
    });
    if args.audio {
        result["audio"] = audio_r;
    }
    if args.video {
        result["video"] = video_r;
    }
    if args.data {
        result["data"] = json!({"messages_sent": sent, "messages_received": received});
    }
    result["ok"] = json!(ok);
    say(&json!({ "result": result }));
    conn.close();
    Ok(ok)
}

/// The result line's `selected_pair`: the candidates' types (as before),
/// the pair's transport protocol and both addresses.
fn pair_summary(local: &rtc_candidate::Candidate, remote: &rtc_candidate::Candidate) -> Value {
    let (l, r) = (serde_json::to_value(local).unwrap_or_default(), serde_json::to_value(remote).unwrap_or_default());
    let at = |v: &Value| format!("{}:{}", v["connectionAddress"].as_str().unwrap_or("?"), v["connectionPort"]);
    json!({"local": l["type"], "remote": r["type"], "protocol": l["transport"],
        "local_address": at(&l), "remote_address": at(&r)})
}

async fn send_audio(track: RtcMediaStreamTrack, packets: Vec<Vec<u8>>, until: Instant) {
    let mut next = tokio::time::Instant::now();
    for p in packets.iter().cycle() {
        if Instant::now() >= until {
            return;
        }
        let d = opus_duration(p);
        if let Err(e) = track.write_frame(p, d) {
            eprintln!("peer call: audio write: {e}");
        }
        next += d;
        tokio::time::sleep_until(next).await;
    }
}

async fn send_video(track: RtcMediaStreamTrack, frames: Vec<Vec<u8>>, frame_time: Duration, until: Instant) {
    let mut next = tokio::time::Instant::now();
    for f in frames.iter().cycle() {
        if Instant::now() >= until {
            return;
        }
        if let Err(e) = track.write_frame(f, frame_time) {
            eprintln!("peer call: video write: {e}");
        }
        next += frame_time;
        tokio::time::sleep_until(next).await;
    }
}

/// Starts reading every remote track not read yet.
fn read_new_tracks(conn: &RtcConnection, reading: &mut HashSet<String>, counts: &Arc<Counts>) {
    for t in conn.remote_streams().iter().flat_map(RtcMediaStream::tracks) {
        if reading.insert(t.id()) {
            tokio::spawn(receive(t, counts.clone()));
        }
    }
}

async fn receive(track: RtcMediaStreamTrack, counts: Arc<Counts>) {
    let kind = track.kind();
    while track.read_frame().await.is_some() {
        match kind {
            Kind::Audio => counts.audio_frames.fetch_add(1, Ordering::Relaxed),
            _ => counts.video_frames.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// Echoes every data stream the peer opens.
async fn accept(conn: RtcConnection, counts: Arc<Counts>) {
    while let Some(s) = conn.accept_data_stream().await {
        tokio::spawn(receive_data(s, counts.clone(), true));
    }
}

/// Counts what arrives on `s`, and with `reply` sends each message back as
/// it came (text as text, binary as binary). The offerer's own `echo`
/// stream only counts: what comes back on it is the peer's echo.
async fn receive_data(s: RtcDataStream, counts: Arc<Counts>, reply: bool) {
    while let Some(m) = s.recv().await {
        counts.messages_received.fetch_add(1, Ordering::Relaxed);
        if !reply {
            continue;
        }
        let sent = if m.binary { s.send(&m.data) } else { s.send_text(&String::from_utf8_lossy(&m.data)) };
        if sent.is_ok() {
            counts.messages_sent.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The offerer's messages on `echo`: one every 100 ms.
async fn chat(s: RtcDataStream, counts: Arc<Counts>, until: Instant) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut i = 0u64;
    while Instant::now() < until {
        tick.tick().await;
        if s.state() != rtc_api::DataState::Open {
            continue;
        }
        if s.send_text(&format!("message {i}")).is_ok() {
            counts.messages_sent.fetch_add(1, Ordering::Relaxed);
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opus_durations_follow_the_toc() {
        assert_eq!(opus_duration(&OPUS_SILENCE), Duration::from_millis(20));
        assert_eq!(opus_duration(&[0x08]), Duration::from_millis(20)); // SILK NB 20 ms
        assert_eq!(opus_duration(&[0xf9]), Duration::from_millis(40)); // two 20 ms frames
    }
}
