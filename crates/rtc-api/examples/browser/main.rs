//! A page a browser opens to call rtc: rtc echoes the browser's camera and
//! microphone back, and every message of the data channel it opens.
//!
//! ```sh
//! cargo run --release -p rtc-api --example browser             # http://127.0.0.1:8080
//! cargo run --release -p rtc-api --example browser -- --port 0 # any free port
//! ```
//!
//! A small HTTP server on 127.0.0.1 serves the page (`index.html` beside
//! this file). The page asks for the camera and microphone, opens a data
//! channel `echo`, offers audio, video and data, and POSTs its offer to
//! `/offer`; each offer makes a new connection here, answered with rtc-api's
//! SDP API (`set_remote_sdp(SdpType::Offer, …)` then `local_sdp()`), and the
//! answer goes back in the response. Once connected, every frame of the
//! browser's audio and video tracks is written to this side's sent track of
//! the same kind, and every message on a data stream the browser opened is
//! sent back on it. The page shows the camera and the echo side by side and
//! a table of its `getStats()` every second, which it also POSTs to
//! `/stats/<call>`: each call prints a status line per second with both
//! sides' view. Connection and socket events print as they fire (reports
//! are in the status line); a summary per call (frames echoed per kind,
//! data messages echoed, time to connected) prints when the browser hangs
//! up (its DTLS close, the page's `/bye/<call>`, or lost consent) and for
//! every call still up on Ctrl-C. Browsers can call one after another, or
//! several at once.
//!
//! Browsers give the camera only to secure pages, which
//! `http://127.0.0.1` is; rtc's sockets bind 127.0.0.1 too, so the call
//! stays on the machine. Logs go to stderr, filtered by `RUST_LOG` (`warn`
//! by default).

use std::collections::HashMap;
use std::error::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtc_api::{
    ConnectionEvent, DataStreamMessage, Direction, Events, RtcConnection, RtcDataStream, RtcMediaStream,
    RtcMediaStreamTrack, RtcSocket, SdpType, SocketEvent, SocketOptions, SocketServers, StreamDescription,
};
use rtc_codecs::Kind;
use serde_json::Value;

#[path = "../shared/http.rs"]
#[allow(dead_code)]
mod http;
#[path = "../shared/logs.rs"]
mod logs;

use http::{Request, Response};

type BoxError = Box<dyn Error + Send + Sync>;

/// The page, served at `/`.
const PAGE: &str = include_str!("index.html");

const USAGE: &str = "usage: browser [--port N] [--sdp]
  --port N  the HTTP port on 127.0.0.1 (8080 by default; 0 takes any free port)
  --sdp     print each offer and answer";

/// The calls, by number; lines are stamped from `t0`.
struct Server {
    t0: Instant,
    /// Print each offer and answer (`--sdp`).
    sdp: bool,
    next: AtomicU64,
    calls: Mutex<HashMap<u64, Arc<Call>>>,
}

/// One browser's connection and what was echoed on it.
struct Call {
    id: u64,
    t0: Instant,
    conn: RtcConnection,
    /// When its offer came.
    offered: Instant,
    /// How long after the offer it connected.
    connected: Mutex<Option<Duration>>,
    audio: AtomicU64,
    video: AtomicU64,
    messages: AtomicU64,
    /// Frames `write_frame` refused.
    refused: AtomicU64,
    key_frame_requests: AtomicU64,
    /// What the page reported last (`/stats/<call>`), as `name=value` pairs.
    page: Mutex<String>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn stamp(t0: Instant) -> String {
    format!("[{:7.3}s]", t0.elapsed().as_secs_f64())
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn count(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

impl Call {
    /// Prints one line about this call.
    fn say(&self, what: std::fmt::Arguments<'_>) {
        println!("{} #{} {what}", stamp(self.t0), self.id);
    }
}

impl Server {
    fn call(&self, id: u64) -> Option<Arc<Call>> {
        lock(&self.calls).get(&id).cloned()
    }

    /// Ends call `id` once: prints its summary and closes it.
    fn end(&self, id: u64, why: &str) {
        let Some(call) = lock(&self.calls).remove(&id) else { return };
        let connected = lock(&call.connected).map_or("never connected".to_owned(), |d| {
            format!("connected {} after the offer ({} after the connection was made)", ms(d), {
                call.conn.time_to_connected().map_or("-".to_owned(), ms)
            })
        });
        call.say(format_args!(
            "summary ({why}): {connected}; echoed {} video frames, {} audio frames and {} data messages; {} frames \
             refused; {} key frame requests (an echo makes no key frames)",
            count(&call.video),
            count(&call.audio),
            count(&call.messages),
            count(&call.refused),
            count(&call.key_frame_requests),
        ));
        let page = lock(&call.page).clone();
        if !page.is_empty() {
            call.say(format_args!("the page's last report: {page}"));
        }
        call.conn.close();
    }
}

/// Answers a browser's offer with a new connection that echoes it; returns
/// the call's number and the SDP answer.
async fn answer(server: &Arc<Server>, offer: &str) -> Result<(u64, String), BoxError> {
    let id = server.next.fetch_add(1, Ordering::Relaxed) + 1;
    let offered = Instant::now();
    let conn = RtcConnection::new(None, None)?;
    let call = Arc::new(Call {
        id,
        t0: server.t0,
        conn: conn.clone(),
        offered,
        connected: Mutex::new(None),
        audio: AtomicU64::new(0),
        video: AtomicU64::new(0),
        messages: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        key_frame_requests: AtomicU64::new(0),
        page: Mutex::new(String::new()),
    });
    let socket = RtcSocket::new(SocketServers::loopback_v4(), SocketOptions::default()).await?;
    let (conn_events, mut socket_events) = (conn.events(), socket.events());
    let stream = RtcMediaStream::new(StreamDescription::default());
    let (audio, video) = (RtcMediaStreamTrack::of_kind(Kind::Audio), RtcMediaStreamTrack::of_kind(Kind::Video));
    stream.add_track(audio.clone())?;
    stream.add_track(video.clone())?;
    conn.send_stream(&stream, true)?;
    conn.add_socket(&socket)?;
    // The answer carries our candidates: wait until they are gathered.
    let gathered = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(e) = socket_events.next().await {
            call.say(format_args!("socket {}", serde_json::to_string(&e).unwrap_or_default()));
            if e == SocketEvent::CandidatesDone {
                return true;
            }
        }
        false
    });
    let answered = match gathered.await {
        Ok(true) => conn.set_remote_sdp(SdpType::Offer, offer).and_then(|()| conn.local_sdp()).map_err(BoxError::from),
        _ => Err("our candidates were not gathered within 5 s".into()),
    };
    let sdp = match answered {
        Ok(sdp) => sdp,
        Err(e) => {
            conn.close();
            return Err(e);
        }
    };
    lock(&server.calls).insert(id, call.clone());
    call.say(format_args!("answered the browser's offer ({} octets of SDP)", offer.len()));
    if server.sdp {
        call.say(format_args!("offer:\n{offer}"));
        call.say(format_args!("answer:\n{sdp}"));
    }
    tokio::spawn(print_events(server.clone(), call.clone(), conn_events, socket_events));
    // The offer announced the browser's tracks.
    for theirs in conn.remote_streams().iter().flat_map(RtcMediaStream::tracks) {
        let ours = if theirs.kind() == Kind::Audio { audio.clone() } else { video.clone() };
        tokio::spawn(echo_track(call.clone(), theirs, ours));
    }
    let echoing = call.clone();
    tokio::spawn(async move {
        while let Some(s) = conn.accept_data_stream().await {
            tokio::spawn(echo_data(echoing.clone(), s));
        }
    });
    tokio::spawn(status(server.clone(), call));
    Ok((id, sdp))
}

/// Prints the connection's and its socket's events (reports go to the
/// status line) and ends the call when it disconnects.
async fn print_events(
    server: Arc<Server>,
    call: Arc<Call>,
    mut events: Events<ConnectionEvent>,
    mut socket_events: Events<SocketEvent>,
) {
    let mut socket_done = false;
    loop {
        tokio::select! {
            e = events.next() => {
                // Nothing more once the call ended (closing it fires Disconnected again).
                let Some(e) = e.filter(|_| server.call(call.id).is_some()) else { return };
                let json = serde_json::to_string(&e).unwrap_or_default();
                match e {
                    ConnectionEvent::StreamReport { .. } | ConnectionEvent::TrackReport(_) => {}
                    ConnectionEvent::KeyFrameRequest { .. } => {
                        call.key_frame_requests.fetch_add(1, Ordering::Relaxed);
                        call.say(format_args!(
                            "connection {json}: the browser asks for a key frame; an echo cannot make one and \
                             forwards nothing"
                        ));
                    }
                    ConnectionEvent::Connected => {
                        *lock(&call.connected) = Some(call.offered.elapsed());
                        call.say(format_args!("connection {json}"));
                    }
                    ConnectionEvent::Disconnected => {
                        call.say(format_args!("connection {json}"));
                        server.end(call.id, "the browser hung up or went away");
                    }
                    _ => call.say(format_args!("connection {json}")),
                }
            }
            e = socket_events.next(), if !socket_done => match e {
                Some(e) => call.say(format_args!("socket {}", serde_json::to_string(&e).unwrap_or_default())),
                None => socket_done = true,
            },
        }
    }
}

/// The clock rate of the codec agreed for `kind` (48 kHz for Opus, 90 kHz
/// for video).
fn clock_rate(conn: &RtcConnection, kind: Kind) -> u32 {
    let helper = |name: &str| ["rtx", "red", "ulpfec", "flexfec-03"].iter().any(|h| name.eq_ignore_ascii_case(h));
    conn.agreement()
        .and_then(|a| a.codecs_of(kind).find(|c| !helper(&c.name)).map(|c| c.hz_rate))
        .unwrap_or(if kind == Kind::Audio { 48_000 } else { 90_000 })
}

/// Writes every frame received on `theirs` to `ours`. A frame lasts as
/// long as the one before it did (the gap between their RTP timestamps in
/// the codec's clock), so the echo keeps the browser's pace without holding
/// a frame back.
async fn echo_track(call: Arc<Call>, theirs: RtcMediaStreamTrack, ours: RtcMediaStreamTrack) {
    let kind = theirs.kind();
    let echoed = if kind == Kind::Audio { &call.audio } else { &call.video };
    let first = Duration::from_millis(if kind == Kind::Audio { 20 } else { 33 });
    let (mut clock, mut last) = (0u32, None::<u32>);
    while let Some(frame) = theirs.read_frame().await {
        if clock == 0 {
            clock = clock_rate(&call.conn, kind);
        }
        let ticks = last.map_or(0, |t| frame.timestamp.wrapping_sub(t));
        last = Some(frame.timestamp);
        let duration = if ticks == 0 || ticks > clock.saturating_mul(10) {
            first
        } else {
            Duration::from_micros(u64::from(ticks) * 1_000_000 / u64::from(clock))
        };
        match ours.write_frame(&frame.data, duration) {
            Ok(_) => {
                echoed.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                if call.refused.fetch_add(1, Ordering::Relaxed) == 0 {
                    call.say(format_args!("a {kind} frame was not echoed (counted from now on): {e}"));
                }
            }
        }
    }
}

/// Sends every message of a data stream the browser opened back on it, as
/// it came (text or binary).
async fn echo_data(call: Arc<Call>, s: RtcDataStream) {
    let label = s.description().map(|d| d.label).unwrap_or_default();
    call.say(format_args!("data stream {label:?} opened by the browser: echoing it"));
    while let Some(DataStreamMessage { data, binary }) = s.recv().await {
        let sent = if binary { s.send(&data) } else { s.send_text(&String::from_utf8_lossy(&data)) };
        match sent {
            Ok(()) => {
                call.messages.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => call.say(format_args!("data stream {label:?}: a message was not echoed: {e}")),
        }
    }
}

/// Once a second while the call is up: rtc's bitrates, loss and round trip,
/// what was echoed, and what the page reported last.
async fn status(server: Arc<Server>, call: Arc<Call>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut before: Option<(Instant, u64, u64)> = None;
    loop {
        tick.tick().await;
        if server.call(call.id).is_none() {
            return;
        }
        if lock(&call.connected).is_none() {
            continue;
        }
        let stats = call.conn.stats();
        let sum = |d: Direction| {
            let of = |s: &rtc_api::RtpStats| if d == Direction::Local { s.bytes_sent } else { s.bytes_received };
            stats.iter().filter(|r| r.direction == d).map(|r| of(&r.stats).unwrap_or(0)).sum::<u64>()
        };
        let now = (Instant::now(), sum(Direction::Remote), sum(Direction::Local));
        let kbits = |a: u64, b: u64, t: Duration| (b.saturating_sub(a) * 8) as f64 / t.as_secs_f64().max(1e-3) / 1000.0;
        let rates = before.map_or("-".to_owned(), |(t, i, o)| {
            let d = now.0 - t;
            format!("in {:.0} kbit/s, out {:.0} kbit/s", kbits(i, now.1, d), kbits(o, now.2, d))
        });
        before = Some(now);
        let lost: i64 = stats.iter().filter(|r| r.direction == Direction::Remote).map(|r| r.stats.packets_lost).sum();
        let rtt =
            stats.iter().find_map(|r| r.stats.round_trip_time).map_or("-".to_owned(), |s| format!("{:.1} ms", s * 1e3));
        let page = lock(&call.page).clone();
        call.say(format_args!(
            "status  rtc: {rates}, {lost} lost, round trip {rtt}; echoed {} video, {} audio frames, {} messages | \
             page: {}",
            count(&call.video),
            count(&call.audio),
            count(&call.messages),
            if page.is_empty() { "-" } else { &page },
        ));
    }
}

/// The page's report (a JSON object) as `name=value` pairs.
fn page_report(body: &str) -> String {
    let Ok(Value::Object(report)) = serde_json::from_str::<Value>(body) else { return String::new() };
    report.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
}

/// What to answer to `req`.
async fn route(server: Arc<Server>, req: Request) -> Response {
    let call = |prefix: &str| req.path.strip_prefix(prefix).and_then(|n| n.parse::<u64>().ok());
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/" | "/index.html") => Response::new("200 OK", "text/html; charset=utf-8", PAGE),
        ("POST", "/offer") => match answer(&server, &req.body).await {
            Ok((id, sdp)) => {
                Response::new("200 OK", "application/json", serde_json::json!({ "call": id, "sdp": sdp }).to_string())
            }
            Err(e) => {
                println!("{} an offer was refused: {e}", stamp(server.t0));
                Response::text("400 Bad Request", format!("{e}\n"))
            }
        },
        ("POST", _) if call("/stats/").is_some() => match call("/stats/").and_then(|id| server.call(id)) {
            Some(c) => {
                *lock(&c.page) = page_report(&req.body);
                Response::text("200 OK", "")
            }
            None => Response::text("404 Not Found", "no such call\n"),
        },
        ("POST", _) if call("/bye/").is_some() => {
            if let Some(id) = call("/bye/") {
                server.end(id, "the page hung up");
            }
            Response::text("200 OK", "")
        }
        _ => Response::text("404 Not Found", "not found\n"),
    }
}

/// `--port N` (8080 unless given) and `--sdp`.
fn options() -> Result<(u16, bool), String> {
    let (mut port, mut sdp) = (8080, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--sdp" => {
                sdp = true;
                continue;
            }
            "--port" | "-p" => args.next().ok_or("--port needs a number")?,
            a => a.strip_prefix("--port=").ok_or(format!("unknown argument {a:?}"))?.to_owned(),
        };
        port = value.parse().map_err(|e| format!("--port {value:?}: {e}"))?;
    }
    Ok((port, sdp))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    logs::init();
    let (port, sdp) = options().unwrap_or_else(|e| {
        eprintln!("{e}\n{USAGE}");
        std::process::exit(2);
    });
    let listener = http::bind(std::net::Ipv4Addr::LOCALHOST.into(), port).await?;
    let server = Arc::new(Server { t0: Instant::now(), sdp, next: AtomicU64::new(0), calls: Mutex::default() });
    println!("serving http://{}/ : open it in a browser to call rtc (Ctrl-C ends)", listener.local_addr()?);
    let serving = server.clone();
    http::serve_until_ctrl_c(listener, 1 << 20, move |req| route(serving.clone(), req)).await;
    let mut up: Vec<u64> = lock(&server.calls).keys().copied().collect();
    up.sort_unstable();
    for id in up {
        server.end(id, "Ctrl-C");
    }
    println!("{} {} calls answered; bye", stamp(server.t0), count(&server.next));
    // Let the connections' DTLS close_notify leave.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
}
