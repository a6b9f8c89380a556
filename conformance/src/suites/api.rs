//! Suite `api`: rtc-api calls between peers in this process over 127.0.0.1
//! (descriptions exchanged as JSON): the seeds' events in order, media
//! intact both ways over SRTP, statistics that agree between the two ends,
//! RTT, consent loss, fork to two callees, refused input, close; and a call
//! with aiortc (`conformance/peers/aiortc_call.py`) and one with headless
//! Chromium (`conformance/peers/chromium_call.html`, in a loopback-only
//! network namespace), both signaled in SDP and keyed by DTLS-SRTP, with Opus
//! audio both ways.

use std::net::UdpSocket as StdUdp;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtc_api::{
    ConnectionDescription, ConnectionEvent, Direction, RtcConnection, RtcMediaStream, RtcMediaStreamTrack, RtcSocket,
    SocketEvent, SocketOptions, SocketServers, StreamDescription, TrackReport,
};
use rtc_codecs::Kind;

use crate::runner::{CaseResult, Context, Suite};

/// The suite.
pub const SUITE: Suite = Suite {
    name: "api",
    about: "rtc-api: calls on 127.0.0.1 (events, media, statistics), consent loss, fork, bad input, close; aiortc and Chromium over DTLS-SRTP",
    run,
};

type Log<T> = Arc<Mutex<Vec<(Duration, T)>>>;

struct Peer {
    conn: RtcConnection,
    socket: RtcSocket,
    audio: RtcMediaStreamTrack,
    video: RtcMediaStreamTrack,
    conn_log: Log<ConnectionEvent>,
    socket_log: Log<SocketEvent>,
}

fn record<T: Clone + Send + 'static>(mut events: rtc_api::Events<T>, t0: Instant) -> Log<T> {
    let log: Log<T> = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    tokio::spawn(async move {
        while let Some(e) = events.next().await {
            if let Ok(mut v) = l.lock() {
                v.push((t0.elapsed(), e));
            }
        }
    });
    log
}

fn events<T: Clone>(log: &Log<T>) -> Vec<T> {
    log.lock().map(|v| v.iter().map(|(_, e)| e.clone()).collect()).unwrap_or_default()
}

async fn peer(options: SocketOptions, t0: Instant) -> Result<Peer, String> {
    let conn = RtcConnection::new(None, None).map_err(|e| e.to_string())?;
    let socket = RtcSocket::new(SocketServers::loopback_v4(), options).await.map_err(|e| e.to_string())?;
    let conn_log = record(conn.events(), t0);
    let socket_log = record(socket.events(), t0);
    let stream = RtcMediaStream::new(StreamDescription::default());
    let audio = RtcMediaStreamTrack::of_kind(Kind::Audio);
    let video = RtcMediaStreamTrack::of_kind(Kind::Video);
    stream.add_track(audio.clone()).map_err(|e| e.to_string())?;
    stream.add_track(video.clone()).map_err(|e| e.to_string())?;
    conn.send_stream(&stream, true).map_err(|e| e.to_string())?;
    conn.add_socket(&socket).map_err(|e| e.to_string())?;
    Ok(Peer { conn, socket, audio, video, conn_log, socket_log })
}

fn signal(a: &RtcConnection, b: &RtcConnection) -> Result<(), String> {
    for (from, to) in [(a, b), (b, a)] {
        let json = from.description(Direction::Local).ok_or("no local description")?.to_json();
        let d = ConnectionDescription::from_json(&json).map_err(|e| e.to_string())?;
        to.set_description(d, Direction::Remote).map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn until(what: &str, limit: Duration, f: impl Fn() -> bool) -> Result<(), String> {
    let end = Instant::now() + limit;
    while !f() {
        if Instant::now() > end {
            return Err(format!("{what}: not within {limit:?}"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

fn frame(kind: Kind, i: u32) -> Vec<u8> {
    let len = if kind == Kind::Audio { 160 } else { 2500 + (i as usize % 5) * 700 };
    let mut f: Vec<u8> = (0..len).map(|k| (k as u32).wrapping_mul(7) as u8 ^ i as u8).collect();
    f[..4].copy_from_slice(&i.to_be_bytes());
    if kind == Kind::Video {
        f[0] = u8::from(!i.is_multiple_of(30)); // VP8 P bit
        f[1..5].copy_from_slice(&i.to_be_bytes());
    }
    f
}

/// Sends audio at 50 frames/s and video at 25 frames/s for `d`.
async fn talk(p: &Peer, d: Duration) -> Result<(u32, u32), String> {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let (mut audio, mut video) = (0u32, 0u32);
    let end = Instant::now() + d;
    let mut i = 0u32;
    while Instant::now() < end {
        tick.tick().await;
        p.audio.write_frame(&frame(Kind::Audio, audio), Duration::from_millis(20)).map_err(|e| e.to_string())?;
        audio += 1;
        if i.is_multiple_of(2) {
            p.video.write_frame(&frame(Kind::Video, video), Duration::from_millis(40)).map_err(|e| e.to_string())?;
            video += 1;
        }
        i += 1;
    }
    Ok((audio, video))
}

fn remote_track(p: &Peer, kind: Kind) -> Result<RtcMediaStreamTrack, String> {
    p.conn
        .remote_streams()
        .iter()
        .flat_map(|s| s.tracks())
        .find(|t| t.kind() == kind)
        .ok_or_else(|| format!("no remote {kind} track"))
}

fn drain(t: &RtcMediaStreamTrack, kind: Kind, want: u32) -> Result<(), String> {
    for i in 0..want {
        let f = t.try_read_frame().ok_or_else(|| format!("{kind}: frame {i} of {want} missing"))?;
        if f.data != frame(kind, i) {
            return Err(format!("{kind}: frame {i} differs"));
        }
    }
    Ok(())
}

fn find(r: &[TrackReport], kind: Kind, dir: Direction) -> Result<rtc_api::RtpStats, String> {
    r.iter().find(|t| t.kind == kind && t.direction == dir).map(|t| t.stats).ok_or("missing report".into())
}

struct CallOutcome {
    events: Result<(), String>,
    media: Result<(), String>,
    stats: Result<(), String>,
    rtt: Result<(), String>,
    reports: Result<(), String>,
}

fn check_events(p: &Peer) -> Result<(), String> {
    let s = events(&p.socket_log);
    let pos = |f: &dyn Fn(&SocketEvent) -> bool| s.iter().position(f);
    let cand = pos(&|e| matches!(e, SocketEvent::Candidate { .. })).ok_or("socket: no candidate")?;
    let done = pos(&|e| *e == SocketEvent::CandidatesDone).ok_or("socket: no candidatesdone")?;
    let active = pos(&|e| matches!(e, SocketEvent::ActiveCandidate { .. })).ok_or("socket: no activecandidate")?;
    let conn = pos(&|e| *e == SocketEvent::Connected).ok_or("socket: no connected")?;
    if !(cand < done && done < conn && active < conn) {
        return Err(format!("socket events out of order: {s:?}"));
    }
    let c = events(&p.conn_log);
    let cpos = |f: &dyn Fn(&ConnectionEvent) -> bool| c.iter().position(f);
    let aca = cpos(&|e| matches!(e, ConnectionEvent::ActiveConnectionCandidate { .. }))
        .ok_or("no activeconnectioncandidate")?;
    let connected = cpos(&|e| *e == ConnectionEvent::Connected).ok_or("no connected")?;
    let stream_local = cpos(&|e| matches!(e, ConnectionEvent::StreamConnected { direction: Direction::Local, .. }))
        .ok_or("no local streamconnected")?;
    let stream_remote = cpos(&|e| matches!(e, ConnectionEvent::StreamConnected { direction: Direction::Remote, .. }))
        .ok_or("no remote streamconnected")?;
    let tracks = |d: Direction| {
        c.iter().filter(|e| matches!(e, ConnectionEvent::TrackConnected { direction, .. } if *direction == d)).count()
    };
    if !(aca < connected && connected < stream_local && connected < stream_remote) {
        return Err(format!("connection events out of order: {c:?}"));
    }
    if tracks(Direction::Local) != 2 || tracks(Direction::Remote) != 2 {
        return Err(format!("want 2 local and 2 remote trackconnected: {c:?}"));
    }
    Ok(())
}

async fn call(t0: Instant) -> Result<CallOutcome, String> {
    let (a, b) = (peer(SocketOptions::default(), t0).await?, peer(SocketOptions::default(), t0).await?);
    a.conn.set_report_interval(Duration::from_millis(500));
    signal(&a.conn, &b.conn)?;
    until("connected", Duration::from_secs(5), || a.conn.is_connected() && b.conn.is_connected()).await?;
    let (ra, rb) = (remote_track(&a, Kind::Audio)?, remote_track(&b, Kind::Video)?);
    let (rav, rba) = (remote_track(&a, Kind::Video)?, remote_track(&b, Kind::Audio)?);
    let (sa, sb) = tokio::join!(talk(&a, Duration::from_secs(4)), talk(&b, Duration::from_secs(4)));
    let ((aa, av), (ba, bv)) = (sa?, sb?);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let media = drain(&ra, Kind::Audio, ba)
        .and_then(|()| drain(&rav, Kind::Video, bv))
        .and_then(|()| drain(&rba, Kind::Audio, aa))
        .and_then(|()| drain(&rb, Kind::Video, av));
    let in_order = check_events(&a).and_then(|()| check_events(&b));
    let (sa, sb) = (a.conn.stats(), b.conn.stats());
    let stats = (|| {
        for (x, y) in [(&sa, &sb), (&sb, &sa)] {
            for kind in [Kind::Audio, Kind::Video] {
                let (out, inn) = (find(x, kind, Direction::Local)?, find(y, kind, Direction::Remote)?);
                if out.packets_sent != inn.packets_received || out.bytes_sent != inn.bytes_received {
                    return Err(format!("{kind}: sent {out:?} received {inn:?}"));
                }
                if inn.packets_lost != 0 || !(0.0..0.05).contains(&inn.jitter) {
                    return Err(format!("{kind}: loss or jitter out of range on loopback: {inn:?}"));
                }
            }
        }
        Ok(())
    })();
    // Both sides sent SRs by now (RFC 3550: first report within ~3.1 s), so
    // at least one direction has answered one.
    let rtts: Vec<f64> = sa.iter().chain(&sb).filter_map(|r| r.stats.round_trip_time).collect();
    let rtt = if rtts.is_empty() {
        Err("no roundTripTime after 4 s".into())
    } else if rtts.iter().any(|r| !(0.0..0.1).contains(r)) {
        Err(format!("roundTripTime out of range on loopback: {rtts:?}"))
    } else {
        Ok(())
    };
    let c = events(&a.conn_log);
    let n = c.iter().filter(|e| matches!(e, ConnectionEvent::StreamReport { .. })).count();
    let reports = if n >= 4 { Ok(()) } else { Err(format!("{n} streamreports in 4 s at 500 ms")) };
    a.conn.close();
    b.conn.close();
    Ok(CallOutcome { events: in_order, media, stats, rtt, reports })
}

async fn consent_loss(t0: Instant) -> Result<(), String> {
    let timing = rtc_ice::Timing { consent_timeout: Duration::from_millis(2500), ..rtc_ice::Timing::default() };
    let opts = SocketOptions { ice_timing: Some(timing), ..SocketOptions::default() };
    let (a, b) = (peer(opts, t0).await?, peer(SocketOptions::default(), t0).await?);
    signal(&a.conn, &b.conn)?;
    until("connected", Duration::from_secs(5), || a.conn.is_connected()).await?;
    b.conn.close();
    let gone = Instant::now();
    until("disconnected after consent loss", Duration::from_secs(8), || {
        events(&a.conn_log).contains(&ConnectionEvent::Disconnected)
    })
    .await?;
    if !events(&a.socket_log).contains(&SocketEvent::Disconnected) {
        return Err("socket did not fire disconnected".into());
    }
    let took = gone.elapsed();
    a.conn.close();
    if took < Duration::from_secs(1) {
        return Err(format!("disconnected after {took:?}: before consent could expire"));
    }
    Ok(())
}

async fn fork(t0: Instant) -> Result<(), String> {
    let caller = peer(SocketOptions::default(), t0).await?;
    let fork = caller.conn.fork().map_err(|e| e.to_string())?;
    let stream = RtcMediaStream::new(StreamDescription::default());
    let audio = RtcMediaStreamTrack::of_kind(Kind::Audio);
    stream.add_track(audio.clone()).map_err(|e| e.to_string())?;
    fork.send_stream(&stream, true).map_err(|e| e.to_string())?;
    let (b, c) = (peer(SocketOptions::default(), t0).await?, peer(SocketOptions::default(), t0).await?);
    signal(&caller.conn, &b.conn)?;
    signal(&fork, &c.conn)?;
    until("all connected", Duration::from_secs(5), || {
        caller.conn.is_connected() && fork.is_connected() && b.conn.is_connected() && c.conn.is_connected()
    })
    .await?;
    caller.audio.write_frame(&frame(Kind::Audio, 0), Duration::from_millis(20)).map_err(|e| e.to_string())?;
    audio.write_frame(&frame(Kind::Audio, 0), Duration::from_millis(20)).map_err(|e| e.to_string())?;
    let (tb, tc) = (remote_track(&b, Kind::Audio)?, remote_track(&c, Kind::Audio)?);
    for (who, t) in [("b", tb), ("c", tc)] {
        let f = tokio::time::timeout(Duration::from_secs(2), t.read_frame())
            .await
            .map_err(|_| format!("callee {who} received nothing"))?;
        if f.map(|f| f.data.into_vec()) != Some(frame(Kind::Audio, 0)) {
            return Err(format!("callee {who}: wrong frame"));
        }
    }
    for p in [&caller.conn, &fork, &b.conn, &c.conn] {
        p.close();
    }
    Ok(())
}

async fn bad_input(t0: Instant) -> Result<(), String> {
    let (a, b) = (peer(SocketOptions::default(), t0).await?, peer(SocketOptions::default(), t0).await?);
    let good = b.conn.description(Direction::Local).ok_or("no description")?;
    let mut unkeyed = good.clone();
    unkeyed.keys.clear();
    for s in &mut unkeyed.sockets {
        s.options.fingerprints.clear();
    }
    if a.conn.set_description(unkeyed, Direction::Remote).is_ok() {
        return Err("a description with neither SRTP keys nor a DTLS fingerprint was taken".into());
    }
    let fp = SocketOptions { fingerprints: vec!["sha-256 00".into()], ..SocketOptions::default() };
    if !matches!(RtcSocket::new(SocketServers::loopback_v4(), fp).await, Err(rtc_api::Error::InvalidOptions(_))) {
        return Err("fingerprints given for a socket were not refused".into());
    }
    signal(&a.conn, &b.conn)?;
    until("connected after refusals", Duration::from_secs(5), || a.conn.is_connected() && b.conn.is_connected())
        .await?;
    let addrs = a.socket.local_addrs();
    a.conn.close();
    b.conn.close();
    // The aborted read tasks drop their sockets when the runtime next runs.
    tokio::time::sleep(Duration::from_millis(50)).await;
    for addr in addrs {
        StdUdp::bind(addr).map_err(|e| format!("port {addr} not freed by close(): {e}"))?;
    }
    Ok(())
}

/// Silence as one 20 ms Opus frame (TOC 0xf8: CELT fullband, one frame),
/// which any Opus decoder takes.
const OPUS_SILENCE: [u8; 3] = [0xf8, 0xff, 0xfe];

/// A call with aiortc: we offer in SDP without `a=crypto`, aiortc answers
/// (`a=setup:active`), ICE runs between rtc-ice and aioice, DTLS-SRTP
/// keys SRTP (aiortc's OpenSSL against our dimpl handshake, certificates
/// checked against the fingerprints both ways), and Opus flows both ways:
/// aiortc decodes our frames and we receive its. VP8 flows both ways too,
/// and as aiortc has no transport-cc, REMB carries the estimates: aiortc's
/// about our video becomes our outgoing estimate, ours about its video
/// reaches its sender.
async fn aiortc_call(ctx: &Context, t0: Instant) -> Result<String, String> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    // 250 audio frames (5 s): long enough for aiortc's receive-side
    // estimator to send REMB about our video.
    let mut child = ctx.spawn_peer("aiortc_call.py", ["--frames", "250", "--timeout", "10", "--video"])?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let me = peer(SocketOptions::default(), t0).await?;
    let mut offer = me.conn.description(Direction::Local).ok_or("no local description")?;
    offer.keys.clear();
    let sdp = offer.to_sdp(&me.conn.options(Direction::Local).ok_or("no options")?).map_err(|e| e.to_string())?;
    let line = serde_json::json!({ "sdp": sdp }).to_string() + "\n";
    stdin.write_all(line.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut next = async || -> Result<serde_json::Value, String> {
        let line = tokio::time::timeout(Duration::from_secs(15), lines.next_line())
            .await
            .map_err(|_| "aiortc said nothing for 15 s".to_string())?
            .map_err(|e| e.to_string())?
            .ok_or("aiortc exited")?;
        serde_json::from_str(&line).map_err(|e| format!("aiortc wrote {line:?}: {e}"))
    };
    let answer = next().await?;
    let answer = answer["sdp"].as_str().ok_or("no answer")?;
    if !answer.contains("a=setup:active") || answer.contains("a=crypto") {
        return Err(format!("aiortc's answer is not a DTLS-SRTP answer taking the client role:\n{answer}"));
    }
    let (d, options) = ConnectionDescription::from_sdp(answer).map_err(|e| e.to_string())?;
    me.conn.set_options(options, Direction::Remote).map_err(|e| e.to_string())?;
    me.conn.set_description(d, Direction::Remote).map_err(|e| e.to_string())?;
    let asked = Instant::now();
    until("connected with aiortc (ICE and DTLS)", Duration::from_secs(10), || me.conn.is_connected()).await?;
    let connected = asked.elapsed();
    let theirs = remote_track(&me, Kind::Audio)?;
    let mut their_video = None;
    let mut video_frames = 0;
    // Real VP8 too (aiortc only receives video): its estimator answers
    // with REMB, which is our estimate since aiortc has no transport-cc.
    let (clip, _) = crate::media::ivf_frames_of(crate::media::BUILTIN_VP8, *b"VP80")?;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut sent = 0;
    let mut got = 0;
    let result = loop {
        tokio::select! {
            _ = tick.tick() => {
                if sent < 600 {
                    me.audio.write_frame(&OPUS_SILENCE, Duration::from_millis(20)).map_err(|e| e.to_string())?;
                    if sent % 2 == 0 {
                        let frame = &clip[(sent / 2) % clip.len()];
                        me.video.write_frame(frame, Duration::from_millis(40)).map_err(|e| e.to_string())?;
                    }
                    sent += 1;
                }
                while theirs.try_read_frame().is_some() {
                    got += 1;
                }
                // aiortc's video track appears with its first packet.
                if their_video.is_none() {
                    their_video = remote_track(&me, Kind::Video).ok();
                }
                while their_video.as_ref().is_some_and(|t| t.try_read_frame().is_some()) {
                    video_frames += 1;
                }
            }
            v = next() => {
                let v = v?;
                if v["event"] == "done" {
                    break v;
                }
            }
        }
    };
    let remb = me.conn.available_outgoing_bitrate();
    me.conn.close();
    let _ = child.wait().await;
    let decoded = result["frames"].as_u64().unwrap_or(0);
    if result["event"] != "done" || decoded < 250 {
        return Err(format!("aiortc decoded {decoded} of our {sent} Opus frames: {result}"));
    }
    if got < 10 {
        return Err(format!("we received {got} Opus frames from aiortc"));
    }
    let Some(remb) = remb else {
        return Err("no estimate from aiortc's REMB about our video".into());
    };
    // The other way: aiortc's video (VP8) reached us, and our REMB about
    // it (aiortc has no transport-cc) reached its sender.
    let (ours, target) = (&result["remb"], &result["target"]);
    if ours["count"].as_u64().unwrap_or(0) < 2 || !ours["last"].is_u64() {
        return Err(format!("aiortc's sender read no REMB of ours about its video: {result}"));
    }
    if video_frames < 10 {
        return Err(format!("we received {video_frames} VP8 frames from aiortc"));
    }
    Ok(format!(
        "connected (ICE and DTLS) {:.0} ms after the answer; aiortc decoded {decoded} of our Opus frames, we received \
         {got} of its and {video_frames} of its VP8 frames; outgoing bitrate estimate from aiortc's REMB: {remb} \
         bit/s; aiortc's sender read {} REMBs of ours about its video, the last {} bit/s (its VP8 encoder's target \
         now {target} bit/s)",
        connected.as_secs_f64() * 1000.0,
        ours["count"],
        ours["last"],
    ))
}

/// A call with headless Chromium (see `rtc_conformance::browser`), run as
/// `rtc-conformance browser-call` in a new network namespace that has only
/// loopback (`unshare -rn`), so Chromium can gather nothing but 127.0.0.1
/// and no traffic can leave the machine.
fn chromium_call(ctx: &Context) -> Result<String, String> {
    crate::browser::in_loopback_namespace(ctx, &["browser-call"])
}

fn run(ctx: &Context) -> Vec<CaseResult> {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return vec![CaseResult::fail("runtime", e.to_string())],
    };
    rt.block_on(async {
        let t0 = Instant::now();
        let mut out = Vec::new();
        match call(t0).await {
            Ok(c) => {
                out.push(CaseResult::from_result("call: socket and connection events in order", c.events));
                out.push(CaseResult::from_result("call: audio and VP8 frames intact both ways over SRTP", c.media));
                out.push(CaseResult::from_result("call: sent = received, no loss, jitter < 50 ms", c.stats));
                out.push(CaseResult::from_result("call: roundTripTime from RTCP", c.rtt));
                out.push(CaseResult::from_result("call: streamreport at the interval", c.reports));
            }
            Err(e) => out.push(CaseResult::fail("call", e)),
        }
        out.push(CaseResult::from_result("fork: two callees both receive", fork(t0).await));
        out.push(CaseResult::from_result(
            "bad input refused, connection usable, close frees ports",
            bad_input(t0).await,
        ));
        out.push(CaseResult::from_result("consent loss fires disconnected", consent_loss(t0).await));
        match aiortc_call(ctx, t0).await {
            Ok(what) => {
                println!("api: aiortc 1.16.0 call: {what}");
                out.push(CaseResult::pass("aiortc 1.16.0: SDP, ICE, DTLS-SRTP, Opus both ways"));
            }
            Err(e) => out.push(CaseResult::fail("aiortc 1.16.0: SDP, ICE, DTLS-SRTP, Opus both ways", e)),
        }
        let name = "Chromium (headless): SDP, ICE, DTLS-SRTP, Opus both ways";
        match chromium_call(ctx) {
            Ok(what) => {
                println!("api: Chromium call: {what}");
                out.push(CaseResult::pass(name));
            }
            Err(e) => out.push(CaseResult::fail(name, e)),
        }
        let name = "Chromium (headless) offers, rtc answers: audio and VP8 both ways, Chromium decodes our VP8";
        match crate::browser::in_loopback_namespace(ctx, &["browser-answer"]) {
            Ok(what) => {
                println!("api: Chromium offers: {what}");
                out.push(CaseResult::pass(name));
            }
            Err(e) => out.push(CaseResult::fail(name, e)),
        }
        let name = "Chromium (headless) offers over a link dropping 5% of UDP: NACK and RTX both ways, VP8 recovered";
        match crate::browser::in_loopback_namespace(ctx, &["browser-answer", "--loss", "5"]) {
            Ok(what) => {
                println!("api: Chromium offers, 5% loss: {what}");
                out.push(CaseResult::pass(name));
            }
            Err(e) => out.push(CaseResult::fail(name, e)),
        }
        let name =
            "Chromium (headless) offers, rtc answers as ICE lite: Chromium controls and nominates, media both ways";
        match crate::browser::in_loopback_namespace(ctx, &["browser-answer", "--ice-lite"]) {
            Ok(what) => {
                println!("api: Chromium offers, rtc ICE lite: {what}");
                out.push(CaseResult::pass(name));
            }
            Err(e) => out.push(CaseResult::fail(name, e)),
        }
        let name = "Chromium (headless) hides its host addresses behind mDNS names: rtc resolves them and selects a \
                    resolved host candidate";
        match crate::browser_mdns::in_mdns_namespace(ctx, &["browser-mdns"]) {
            Ok(what) => {
                println!("api: Chromium mDNS candidates: {what}");
                out.push(CaseResult::pass(name));
            }
            Err(e) => out.push(CaseResult::fail(name, e)),
        }
        let name = "UDP blocked: Chromium (headless) and rtc connect over ICE-TCP (RFC 6544) and open a data channel";
        match crate::browser_tcp::in_tcp_namespace(ctx, &["browser-tcp"]) {
            Ok(what) => {
                println!("api: Chromium over ICE-TCP: {what}");
                out.push(CaseResult::pass(name));
            }
            Err(e) => out.push(CaseResult::fail(name, e)),
        }
        let name = "rtc hides its host addresses behind mDNS names: Chromium resolves them through rtc's responder";
        match crate::browser_mdns::in_mdns_namespace(ctx, &["browser-mdns", "--conceal"]) {
            Ok(what) => {
                println!("api: rtc's mDNS candidates: {what}");
                out.push(CaseResult::pass(name));
            }
            Err(e) => out.push(CaseResult::fail(name, e)),
        }
        let name = "Chromium (headless) publishes simulcast (rid h, m, l; RFC 8853): rtc takes every layer it sends";
        match crate::browser::in_loopback_namespace(ctx, &["browser-simulcast"]) {
            Ok(what) => {
                println!("api: Chromium simulcast: {what}");
                out.push(CaseResult::pass(name));
            }
            Err(e) => out.push(CaseResult::fail(name, e)),
        }
        let name = "Chromium (headless) renegotiates: it adds a track and offers, then rtc adds a stream and offers";
        match crate::browser::in_loopback_namespace(ctx, &["browser-renegotiate"]) {
            Ok(what) => {
                println!("api: renegotiation: {what}");
                out.push(CaseResult::pass(name));
            }
            Err(e) => out.push(CaseResult::fail(name, e)),
        }
        out.push(CaseResult::from_result("peer call: rtc offers to rtc, audio, video and data", peer_call(ctx).await));
        // rtc-api's `browser` example as a user runs it, with headless Chromium on its page.
        let name = "browser example: Chromium's camera, microphone and data channel echoed by rtc";
        match crate::example_browser::check(ctx) {
            Ok(what) => {
                println!("api: browser example: {what}");
                out.push(CaseResult::pass(name));
            }
            Err(e) => out.push(CaseResult::fail(name, e)),
        }
        // rtc-api's `whip` example, Chromium publishing by WHIP and watching by WHEP.
        let name =
            "whip example: Chromium publishes by WHIP (recorded to IVF and Ogg), then watches the recording by WHEP";
        match crate::example_whip::check(ctx) {
            Ok(what) => {
                println!("api: whip example: {what}");
                out.push(CaseResult::pass(name));
            }
            Err(e) => out.push(CaseResult::fail(name, e)),
        }
        // README command 1 and its two-process variant, as a user runs them.
        for (name, check) in [
            (
                "call example: two peers connect, media and data both ways, a status line each second",
                crate::example_call::check_call as fn(&Context) -> Result<String, String>,
            ),
            (
                "call example --loss 5: through a relay dropping 5% each way, 95% of the video frames whole",
                crate::example_call::check_call_with_loss,
            ),
            (
                "ws_call example: a signaling server and two peer processes, media both ways",
                crate::example_call::check_ws_call,
            ),
        ] {
            match check(ctx) {
                Ok(what) => {
                    println!("api: {}: {what}", name.split(':').next().unwrap_or(name));
                    out.push(CaseResult::pass(name));
                }
                Err(e) => out.push(CaseResult::fail(name, e)),
            }
        }
        out
    })
}

/// `rtc-conformance peer call` against itself: one process offers, one
/// answers, JSON lines between them; both must report everything flowed.
async fn peer_call(ctx: &Context) -> Result<(), String> {
    use std::process::Stdio;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let exe = ctx.runner_exe.as_ref().ok_or("no runner executable")?;
    let spawn = |role: &str| {
        tokio::process::Command::new(exe)
            .args(["peer", "call", "--role", role, "--audio", "--video", "--data", "--seconds", "2"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", exe.display()))
    };
    let (mut a, mut b) = (spawn("offer")?, spawn("answer")?);
    let mut a_out = BufReader::new(a.stdout.take().ok_or("no stdout")?).lines();
    let mut b_out = BufReader::new(b.stdout.take().ok_or("no stdout")?).lines();
    let (mut a_in, mut b_in) = (a.stdin.take().ok_or("no stdin")?, b.stdin.take().ok_or("no stdin")?);
    let line = async |lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>| -> Result<String, String> {
        tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .map_err(|_| "peer call said nothing for 20 s".to_string())?
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "peer call exited".to_string())
    };
    let offer = line(&mut a_out).await?;
    b_in.write_all(format!("{offer}\n").as_bytes()).await.map_err(|e| e.to_string())?;
    let answer = line(&mut b_out).await?;
    a_in.write_all(format!("{answer}\n").as_bytes()).await.map_err(|e| e.to_string())?;
    let (ra, rb) = (line(&mut a_out).await?, line(&mut b_out).await?);
    let (sa, sb) = (a.wait().await.map_err(|e| e.to_string())?, b.wait().await.map_err(|e| e.to_string())?);
    println!("api: peer call offerer {ra}");
    println!("api: peer call answerer {rb}");
    if !sa.success() || !sb.success() {
        return Err(format!("exit {sa} / {sb}: {ra} / {rb}"));
    }
    Ok(())
}
