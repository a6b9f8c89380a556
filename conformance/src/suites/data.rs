//! Suite `data`: data streams (WebRTC data channels) with real peers, each
//! case a data-only connection (no media) that rtc offers in SDP and DTLS
//! keys: aiortc (`conformance/peers/aiortc_data.py`) and headless Chromium
//! (`conformance/peers/chromium_data.html`, run by `rtc-conformance
//! browser-data` in a loopback-only network namespace), once with rtc
//! opening the streams and the peer echoing, once the other way round.
//!
//! The opener opens `echo` (in band, reliable, ordered), `lossy` (in band,
//! unordered, `maxRetransmits` 0) and `neg` (pre-negotiated, id 1000, which
//! both sides create); the echoer sends every message back on its stream
//! as it came (string or binary). The opener sends 1,000 messages of 1 B to
//! 64 KiB on `echo` and checks every echo intact and in order, 100 small
//! ones on `lossy` (every echo one of them, intact, none twice, at least
//! one back), 10 on `neg` (all back, in order); then it closes `echo` and
//! the echoer must see it close. The plan and the messages are the same in
//! the three implementations (see `message`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtc_api::{
    ConnectionDescription, DataEvent, DataState, DataStreamDescription, DataStreamMessage, Direction, Error,
    RtcConnection, RtcDataStream, RtcSocket, SocketOptions, SocketServers,
};
use rtc_codecs::Options;
use serde_json::Value;

use crate::runner::{CaseResult, Context, Suite};

/// The suite.
pub const SUITE: Suite = Suite {
    name: "data",
    about: "data streams with aiortc and Chromium: in-band reliable and lossy, pre-negotiated, echoes checked, close \
            from each side",
    run,
};

/// Messages the opener sends on `echo`.
const ECHO_COUNT: usize = 1000;
/// Their sizes, by index modulo 16: 1 B to 64 KiB, about 9.6 kB on average.
const ECHO_SIZES: [usize; 16] = [1, 64, 1000, 65536, 5, 16384, 300, 4000, 2, 8192, 1200, 100, 20000, 3, 4096, 32768];
/// Messages the opener sends on `lossy`.
const LOSSY_COUNT: usize = 100;
/// Messages the opener sends on `neg`.
const NEG_COUNT: usize = 10;
/// The pre-negotiated stream's SCTP stream id.
const NEG_ID: u16 = 1000;
/// Octets sent and not yet echoed, at most. The echoer's queues stay short,
/// and a debug build of rtc keeps up: with 4 MiB, aiortc's bursts overflowed
/// rtc's UDP receive buffer (208 KiB), and after the retransmission timeout
/// aiortc's congestion window stayed at 4 packets for the rest of the run.
const WINDOW: usize = 1 << 20;
/// How long the lossy stream's echoes may take after the last send.
const LOSSY_WAIT: Duration = Duration::from_secs(3);
/// A whole case, from the offer to the close.
const CASE_LIMIT: Duration = Duration::from_secs(30);

/// Which side opens the streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Opens `echo`, `lossy` and `neg`, sends, checks the echoes, closes `echo`.
    Open,
    /// Creates `neg`, takes the peer's streams and echoes what they carry.
    Echo,
}

impl Role {
    /// As on the command line.
    fn name(self) -> &'static str {
        match self {
            Role::Open => "open",
            Role::Echo => "echo",
        }
    }

    /// The peer's role.
    fn other(self) -> &'static str {
        match self {
            Role::Open => Role::Echo.name(),
            Role::Echo => Role::Open.name(),
        }
    }
}

/// Message `i` of `size` octets: as binary, `i` as a little-endian u32 then
/// `((i + k) * 13) & 0xff` at offset `k`; as a string, `"<i>:"` then the
/// letter `(i + k) % 26` at offset `k`; both cut to `size`.
fn message(i: usize, size: usize, binary: bool) -> Vec<u8> {
    if binary {
        let head = (i as u32).to_le_bytes();
        (0..size).map(|k| if k < 4 { head[k] } else { ((i + k) * 13) as u8 }).collect()
    } else {
        let prefix = format!("{i}:");
        let p = prefix.as_bytes();
        (0..size).map(|k| if k < p.len() { p[k] } else { b'a' + ((i + k) % 26) as u8 }).collect()
    }
}

/// Size and binary-ness of message `i` on `echo`.
fn echo_plan(i: usize) -> (usize, bool) {
    (ECHO_SIZES[i % ECHO_SIZES.len()], !i.is_multiple_of(3))
}

fn lossy_plan(i: usize) -> (usize, bool) {
    (16 + i, i % 2 == 1)
}

fn neg_plan(i: usize) -> (usize, bool) {
    (100 + 1000 * i, i % 2 == 1)
}

/// The index a lossy message carries.
fn index_of(m: &DataStreamMessage) -> Option<usize> {
    if m.binary {
        let head: [u8; 4] = m.data.get(..4)?.try_into().ok()?;
        Some(u32::from_le_bytes(head) as usize)
    } else {
        m.text()?.split_once(':')?.0.parse().ok()
    }
}

fn describe(binary: bool, len: usize) -> String {
    format!("{} of {len}", if binary { "binary" } else { "string" })
}

/// A data stream and the events it fired since it was made or taken.
struct Tracked {
    stream: RtcDataStream,
    label: String,
    events: Arc<Mutex<Vec<DataEvent>>>,
}

impl Tracked {
    fn new(stream: RtcDataStream) -> Self {
        let events = Arc::new(Mutex::new(Vec::new()));
        let (mut sub, log) = (stream.events(), events.clone());
        tokio::spawn(async move {
            while let Some(e) = sub.next().await {
                if let Ok(mut v) = log.lock() {
                    v.push(e);
                }
            }
        });
        let label = stream.description().map(|d| d.label).unwrap_or_default();
        Self { stream, label, events }
    }

    /// Closed: the state says so or the event fired.
    fn closed(&self) -> bool {
        self.stream.state() == DataState::Closed || self.events.lock().is_ok_and(|v| v.contains(&DataEvent::Closed))
    }

    /// The reasons of the `error` events it fired.
    fn errors(&self) -> Vec<String> {
        let v = self.events.lock().map(|v| v.clone()).unwrap_or_default();
        v.iter()
            .filter_map(|e| match e {
                DataEvent::Error { reason } => Some(format!("{}: error event: {reason}", self.label)),
                _ => None,
            })
            .collect()
    }
}

/// rtc's end of a case: a data-only connection on a loopback socket.
struct Rtc {
    conn: RtcConnection,
    _socket: RtcSocket,
    /// Opening: `echo`, `lossy`, `neg`; echoing: `neg`.
    made: Vec<Tracked>,
    /// Echoing: the streams the peer opened, as taken.
    taken: Arc<Mutex<Vec<Tracked>>>,
    /// Echoing: what went wrong echoing.
    problems: Arc<Mutex<Vec<String>>>,
}

impl Rtc {
    async fn new(role: Role) -> Result<Self, String> {
        let conn = RtcConnection::new(None, Some(Options::default())).map_err(|e| e.to_string())?;
        let socket =
            RtcSocket::new(SocketServers::loopback_v4(), SocketOptions::default()).await.map_err(|e| e.to_string())?;
        conn.add_socket(&socket).map_err(|e| e.to_string())?;
        let neg = DataStreamDescription { negotiated: true, id: Some(NEG_ID), ..DataStreamDescription::new("neg") };
        let wanted = match role {
            Role::Open => vec![
                DataStreamDescription::new("echo"),
                DataStreamDescription {
                    ordered: false,
                    max_retransmits: Some(0),
                    ..DataStreamDescription::new("lossy")
                },
                neg,
            ],
            Role::Echo => vec![neg],
        };
        let mut made = Vec::new();
        for d in wanted {
            made.push(Tracked::new(conn.create_data_stream(d).map_err(|e| e.to_string())?));
        }
        Ok(Self { conn, _socket: socket, made, taken: Arc::default(), problems: Arc::default() })
    }

    /// Our SDP offer: DTLS (no `a=crypto`), one `m=application` section.
    fn offer(&self) -> Result<String, String> {
        let mut offer = self.conn.description(Direction::Local).ok_or("no local description")?;
        offer.keys.clear();
        let sdp = offer.to_sdp(&Options::default()).map_err(|e| e.to_string())?;
        if !sdp.contains("m=application 9 UDP/DTLS/SCTP webrtc-datachannel") || sdp.contains("m=audio") {
            return Err(format!("our offer is not a data-only one:\n{sdp}"));
        }
        Ok(sdp)
    }

    /// Takes the peer's SDP answer.
    fn answer(&self, peer: &str, sdp: &str) -> Result<(), String> {
        if !sdp.contains("a=setup:active") || !sdp.contains("m=application") || !sdp.contains("a=sctp-port") {
            return Err(format!("{peer}'s answer is not a DTLS data answer taking the client role:\n{sdp}"));
        }
        let (d, _) = ConnectionDescription::from_sdp(sdp).map_err(|e| format!("reading {peer}'s answer: {e}"))?;
        if d.data.is_none() {
            return Err(format!("{peer}'s answer carries no data section:\n{sdp}"));
        }
        self.conn.set_description(d, Direction::Remote).map_err(|e| format!("{peer}'s answer: {e}"))
    }

    fn made(&self, label: &str) -> Result<&Tracked, String> {
        self.made.iter().find(|t| t.label == label).ok_or_else(|| format!("no stream {label}"))
    }

    /// Every `error` event and echoing problem so far, `; `-joined.
    fn trouble(&self) -> String {
        let mut all: Vec<String> = self.made.iter().flat_map(Tracked::errors).collect();
        if let Ok(t) = self.taken.lock() {
            all.extend(t.iter().flat_map(Tracked::errors));
        }
        if let Ok(p) = self.problems.lock() {
            all.extend(p.iter().cloned());
        }
        if all.is_empty() { String::new() } else { format!(" [rtc: {}]", all.join("; ")) }
    }

    /// Echoes on `neg` and on every stream the peer opens, in tasks that
    /// end with the connection.
    fn start_echoing(&self) {
        for t in &self.made {
            tokio::spawn(echo(t.stream.clone(), self.problems.clone()));
        }
        let (conn, taken, problems) = (self.conn.clone(), self.taken.clone(), self.problems.clone());
        tokio::spawn(async move {
            while let Some(s) = conn.accept_data_stream().await {
                let t = Tracked::new(s.clone());
                if let Ok(mut v) = taken.lock() {
                    v.push(t);
                }
                tokio::spawn(echo(s, problems.clone()));
            }
        });
    }

    /// Whether a stream the peer opened named `label` was taken and, with
    /// `closed`, has closed.
    fn took(&self, label: &str, closed: bool) -> bool {
        self.taken.lock().is_ok_and(|v| v.iter().any(|t| t.label == label && (!closed || t.closed())))
    }
}

/// Sends `data` on `s` as binary or as a string, waiting while the send
/// buffer is full.
async fn send(s: &RtcDataStream, data: &[u8], binary: bool, deadline: Instant) -> Result<(), String> {
    loop {
        let r = if binary {
            s.send(data)
        } else {
            s.send_text(std::str::from_utf8(data).map_err(|_| "a string message is not UTF-8".to_string())?)
        };
        match r {
            Err(Error::LimitReached(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            r => return r.map_err(|e| e.to_string()),
        }
    }
}

/// Echoes every message on `s` until it closes.
async fn echo(s: RtcDataStream, problems: Arc<Mutex<Vec<String>>>) {
    let label = s.description().map(|d| d.label).unwrap_or_default();
    let mut n = 0u64;
    while let Some(m) = s.recv().await {
        if let Err(e) = send(&s, &m.data, m.binary, Instant::now() + CASE_LIMIT).await {
            if s.state() == DataState::Open
                && let Ok(mut p) = problems.lock()
            {
                p.push(format!("{label}: echoing message {n}: {e}"));
            }
            return;
        }
        n += 1;
    }
}

/// Polls `f` every 10 ms until it holds or `deadline` passes.
async fn until(what: &str, deadline: Instant, f: impl Fn() -> bool) -> Result<(), String> {
    while !f() {
        if Instant::now() > deadline {
            return Err(format!("{what}: not by the case's deadline"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// The next message on `s`, or `None` at `until`.
async fn recv_until(s: &RtcDataStream, until: Instant) -> Result<Option<DataStreamMessage>, String> {
    match tokio::time::timeout_at(until.into(), s.recv()).await {
        Ok(Some(m)) => Ok(Some(m)),
        Ok(None) => Err("the stream closed".into()),
        Err(_) => Ok(None),
    }
}

/// What an ordered exchange did.
struct Exchanged {
    got: usize,
    bytes: usize,
    took: Duration,
}

/// Sends `count` messages on a reliable ordered stream, at most [`WINDOW`]
/// octets ahead of the echoes, and checks every echo in order.
async fn exchange(
    s: &RtcDataStream,
    label: &str,
    count: usize,
    plan: fn(usize) -> (usize, bool),
    deadline: Instant,
) -> Result<Exchanged, String> {
    let start = Instant::now();
    let (mut sent, mut got, mut inflight, mut bytes) = (0, 0, 0, 0);
    while got < count {
        let mut full = false;
        while sent < count {
            let (size, binary) = plan(sent);
            if inflight > 0 && inflight + size > WINDOW {
                break;
            }
            let m = message(sent, size, binary);
            let r = if binary { s.send(&m) } else { s.send_text(std::str::from_utf8(&m).unwrap_or_default()) };
            match r {
                Ok(()) => {}
                Err(Error::LimitReached(_)) => {
                    full = true;
                    break;
                }
                Err(e) => return Err(format!("{label}: sending message {sent}: {e}")),
            }
            (sent, inflight, bytes) = (sent + 1, inflight + size, bytes + size);
        }
        let wait = if full { (Instant::now() + Duration::from_millis(5)).min(deadline) } else { deadline };
        let m = recv_until(s, wait).await.map_err(|e| format!("{label}: {e} after {got} echoes of {count}"))?;
        let Some(m) = m else {
            if Instant::now() >= deadline {
                return Err(format!("{label}: {got} of {count} echoes ({sent} sent) by the case's deadline"));
            }
            continue;
        };
        let (size, binary) = plan(got);
        if m.binary != binary || m.data != message(got, size, binary) {
            return Err(format!(
                "{label}: echo {got} is {}, want {} as sent",
                describe(m.binary, m.data.len()),
                describe(binary, size)
            ));
        }
        (got, inflight) = (got + 1, inflight - size);
    }
    Ok(Exchanged { got, bytes, took: start.elapsed() })
}

/// Sends [`LOSSY_COUNT`] messages on `lossy`; every echo must be one of
/// them, intact, and none twice; returns how many came back.
async fn lossy(s: &RtcDataStream, deadline: Instant) -> Result<usize, String> {
    for i in 0..LOSSY_COUNT {
        let (size, binary) = lossy_plan(i);
        send(s, &message(i, size, binary), binary, deadline).await.map_err(|e| format!("lossy: message {i}: {e}"))?;
    }
    let until = (Instant::now() + LOSSY_WAIT).min(deadline);
    let mut seen = [false; LOSSY_COUNT];
    let mut got = 0;
    while got < LOSSY_COUNT {
        let Some(m) = recv_until(s, until).await.map_err(|e| format!("lossy: {e}"))? else { break };
        let i = index_of(&m)
            .filter(|&i| i < LOSSY_COUNT)
            .ok_or_else(|| format!("lossy: an echo is not a message sent ({})", describe(m.binary, m.data.len())))?;
        let (size, binary) = lossy_plan(i);
        if m.binary != binary || m.data != message(i, size, binary) {
            return Err(format!("lossy: echo of message {i} is not as sent"));
        }
        if std::mem::replace(&mut seen[i], true) {
            return Err(format!("lossy: message {i} echoed twice"));
        }
        got += 1;
    }
    if got == 0 {
        return Err(format!("lossy: none of {LOSSY_COUNT} messages echoed within {LOSSY_WAIT:?}"));
    }
    Ok(got)
}

/// rtc opens: waits for the streams to open, runs the exchanges, closes
/// `echo` and waits for the peer to say its `echo` closed.
async fn rtc_opens<F>(rtc: &Rtc, peer: &str, deadline: Instant, next: &mut F) -> Result<String, String>
where
    F: AsyncFnMut() -> Result<Value, String>,
{
    let (e, l, n) = (rtc.made("echo")?, rtc.made("lossy")?, rtc.made("neg")?);
    for t in [e, l, n] {
        until(&format!("{} open", t.label), deadline, || t.stream.state() == DataState::Open || t.closed()).await?;
        if t.stream.state() != DataState::Open {
            return Err(format!("{} closed before it opened", t.label));
        }
    }
    let exchanged = async {
        let echo = exchange(&e.stream, "echo", ECHO_COUNT, echo_plan, deadline).await?;
        let lossy = lossy(&l.stream, deadline).await?;
        let neg = exchange(&n.stream, "neg", NEG_COUNT, neg_plan, deadline).await?;
        Ok::<_, String>((echo, lossy, neg))
    };
    let (echo, lossy, neg) = match exchanged.await {
        Ok(x) => x,
        Err(e) => return Err(format!("{e}{}", peer_errors(peer, next).await)),
    };
    e.stream.close();
    loop {
        let v = next().await?;
        match v["event"].as_str() {
            Some("closed") if v["label"] == "echo" => break,
            Some("error") => return Err(format!("{peer}: {}", v["reason"])),
            _ => {}
        }
    }
    until("our echo stream closed", deadline, || e.closed()).await?;
    Ok(format!(
        "echo {}/{ECHO_COUNT} ({:.1} MB) in {:.0} ms; lossy {lossy}/{LOSSY_COUNT}; neg {}/{NEG_COUNT}; closed by \
         rtc: {peer} saw close",
        echo.got,
        echo.bytes as f64 / 1e6,
        echo.took.as_secs_f64() * 1000.0,
        neg.got
    ))
}

/// The errors the peer reported by now (waiting half a second for more),
/// to go with a failure seen on our side.
async fn peer_errors<F>(peer: &str, next: &mut F) -> String
where
    F: AsyncFnMut() -> Result<Value, String>,
{
    let mut errors = Vec::new();
    let end = tokio::time::Instant::now() + Duration::from_millis(500);
    while let Ok(Ok(v)) = tokio::time::timeout_at(end, next()).await {
        if v["event"] == "error" {
            errors.push(v["reason"].to_string());
        }
    }
    if errors.is_empty() { String::new() } else { format!(" [{peer}: {}]", errors.join("; ")) }
}

/// The peer opens: rtc echoes until the peer reports its exchanges, then
/// the peer closes `echo` and rtc must see it close.
async fn peer_opens<F>(rtc: &Rtc, peer: &str, deadline: Instant, next: &mut F) -> Result<String, String>
where
    F: AsyncFnMut() -> Result<Value, String>,
{
    rtc.start_echoing();
    let r = loop {
        let v = next().await?;
        match v["event"].as_str() {
            Some("result") => break v,
            Some("error") => return Err(format!("{peer}: {}", v["reason"])),
            _ => {}
        }
    };
    if !r["error"].is_null() {
        return Err(format!("{peer}: {}", r["error"]));
    }
    let (echo, lossy, neg) = (&r["echo"], &r["lossy"], &r["neg"]);
    let count = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
    if count(echo, "got") != ECHO_COUNT as u64
        || count(lossy, "got") == 0
        || count(lossy, "bad") + count(lossy, "dup") > 0
        || count(neg, "got") != NEG_COUNT as u64
    {
        return Err(format!("{peer}'s exchanges fell short: {r}"));
    }
    if !rtc.took("echo", false) || !rtc.took("lossy", false) {
        return Err(format!("rtc did not take {peer}'s echo and lossy streams"));
    }
    until(&format!("rtc seeing {peer} close echo"), deadline, || rtc.took("echo", true)).await?;
    Ok(format!(
        "echo {}/{ECHO_COUNT} ({:.1} MB) in {:.0} ms; lossy {}/{LOSSY_COUNT}; neg {}/{NEG_COUNT}; closed by {peer}: \
         rtc saw close",
        count(echo, "got"),
        echo["bytes"].as_f64().unwrap_or(0.0) / 1e6,
        echo["ms"].as_f64().unwrap_or(0.0),
        count(lossy, "got"),
        count(neg, "got")
    ))
}

/// After the answer: waits for the connection, then runs the case for
/// `role` (rtc's); `next` gives the peer's next report.
async fn after_answer<F>(rtc: &Rtc, role: Role, peer: &str, deadline: Instant, next: &mut F) -> Result<String, String>
where
    F: AsyncFnMut() -> Result<Value, String>,
{
    let answered = Instant::now();
    until(&format!("connected with {peer} (ICE and DTLS)"), deadline, || rtc.conn.is_connected()).await?;
    let connected = answered.elapsed();
    let what = match role {
        Role::Open => rtc_opens(rtc, peer, deadline, next).await,
        Role::Echo => peer_opens(rtc, peer, deadline, next).await,
    };
    match what {
        Ok(what) => Ok(format!("connected {:.0} ms after the answer; {what}", connected.as_secs_f64() * 1000.0)),
        Err(e) => Err(format!("{e}{}", rtc.trouble())),
    }
}

/// A case with aiortc (`conformance/peers/aiortc_data.py --role`, the
/// other role), over JSON lines on its stdin and stdout.
async fn aiortc(ctx: &Context, role: Role) -> Result<String, String> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    let deadline = Instant::now() + CASE_LIMIT;
    let mut args: Vec<std::ffi::OsString> =
        vec!["--role".into(), role.other().into(), "--timeout".into(), CASE_LIMIT.as_secs().to_string().into()];
    // aiortc's SCTP debug log, to see its side of a failure.
    if let Some(dir) = std::env::var_os("RTC_DATA_LOGS") {
        args.push("--log".into());
        args.push(std::path::Path::new(&dir).join(format!("aiortc-{}.log", role.other())).into());
    }
    let mut child = ctx.spawn_peer("aiortc_data.py", args)?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let rtc = Rtc::new(role).await?;
    let offer = serde_json::json!({ "sdp": rtc.offer()? }).to_string() + "\n";
    let mut next = async || -> Result<Value, String> {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .map_err(|_| "aiortc: nothing more by the case's deadline".to_string())?
            .map_err(|e| e.to_string())?
            .ok_or("aiortc exited")?;
        serde_json::from_str(&line).map_err(|e| format!("aiortc wrote {line:?}: {e}"))
    };
    let result = async {
        stdin.write_all(offer.as_bytes()).await.map_err(|e| format!("writing our offer to aiortc: {e}"))?;
        let answer = next().await?;
        rtc.answer("aiortc", answer["sdp"].as_str().ok_or_else(|| format!("aiortc answered {answer}"))?)?;
        after_answer(&rtc, role, "aiortc", deadline, &mut next).await
    }
    .await;
    rtc.conn.close();
    drop(stdin);
    let ended = match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
        Ok(Ok(s)) if s.success() => None,
        Ok(Ok(s)) => Some(s.to_string()),
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("still running 5 s after its stdin closed".to_string()),
    };
    let mut err = String::new();
    if result.is_err() || ended.is_some() {
        let _ = child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(1), stderr.read_to_string(&mut err)).await;
    }
    let err = err.trim();
    match (result, ended) {
        (Ok(what), None) => Ok(what),
        (Ok(_), Some(how)) => Err(format!("aiortc ended badly ({how}): {err}")),
        (Err(e), _) if err.is_empty() => Err(e),
        (Err(e), _) => Err(format!("{e}; aiortc's stderr: {err}")),
    }
}

/// The case with headless Chromium, `rtc-conformance browser-data --role
/// ROLE` (rtc's role), inside a network namespace that has only loopback:
/// the page (`conformance/peers/chromium_data.html?role=`, the other role)
/// is served on 127.0.0.1 with our offer; it posts its answer to `/answer`
/// and its reports (JSON) to `/event`. Returns the summary line.
pub fn browser_data(ctx: &Context, chromium: std::ffi::OsString, role: Role) -> Result<String, String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(chromium_case(ctx, chromium, role))
}

async fn chromium_case(ctx: &Context, chromium: std::ffi::OsString, role: Role) -> Result<String, String> {
    use crate::browser::{launch, serve};

    let deadline = Instant::now() + CASE_LIMIT;
    let page =
        std::fs::read_to_string(ctx.root.join("conformance/peers/chromium_data.html")).map_err(|e| e.to_string())?;
    let rtc = Rtc::new(role).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let (tx, mut posted) = tokio::sync::mpsc::channel(64);
    tokio::spawn(serve(listener, "/data.html", page, rtc.offer()?, tx));
    let profile = std::env::temp_dir().join(format!("rtc-chromium-data-{}", std::process::id()));
    let url = format!("http://127.0.0.1:{port}/data.html?role={}", role.other());
    let mut browser = launch(&chromium, &url, &profile)?;
    let mut next_post = async |want: &str| -> Result<String, String> {
        let (path, body) = tokio::select! {
            p = tokio::time::timeout_at(deadline.into(), posted.recv()) => p
                .map_err(|_| format!("Chromium posted nothing more to {want} by the case's deadline"))?
                .ok_or("the HTTP listener stopped")?,
            status = browser.wait() => return Err(format!("Chromium exited ({status:?}) before posting to {want}")),
        };
        if path != want {
            return Err(format!("Chromium at {path} (not {want}): {body}"));
        }
        Ok(body)
    };
    let result = async {
        let answer = next_post("/answer").await?;
        rtc.answer("Chromium", &answer)?;
        let mut next = async || -> Result<Value, String> {
            let body = next_post("/event").await?;
            serde_json::from_str(&body).map_err(|e| format!("Chromium posted {body:?}: {e}"))
        };
        after_answer(&rtc, role, "Chromium", deadline, &mut next).await
    }
    .await;
    rtc.conn.close();
    let _ = browser.kill().await;
    let _ = std::fs::remove_dir_all(&profile);
    result
}

fn run(ctx: &Context) -> Vec<CaseResult> {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return vec![CaseResult::fail("runtime", e.to_string())],
    };
    let mut out = Vec::new();
    for (role, what, short) in [
        (Role::Open, "rtc opens, aiortc echoes", "rtc-opens"),
        (Role::Echo, "aiortc opens, rtc echoes", "aiortc-opens"),
    ] {
        let name = format!("aiortc 1.16.0: {what}");
        match rt.block_on(aiortc(ctx, role)) {
            Ok(line) => {
                println!("data: aiortc {short}: {line}");
                out.push(CaseResult::pass(name));
            }
            Err(e) => out.push(CaseResult::fail(name, e)),
        }
    }
    for (role, what, short) in [
        (Role::Open, "rtc opens, Chromium echoes", "rtc-opens"),
        (Role::Echo, "Chromium opens, rtc echoes", "chromium-opens"),
    ] {
        let name = format!("Chromium (headless): {what}");
        match crate::browser::in_loopback_namespace(ctx, &["browser-data", "--role", role.name()]) {
            Ok(line) => {
                println!("data: Chromium {short}: {line}");
                out.push(CaseResult::pass(name));
            }
            Err(e) => out.push(CaseResult::fail(name, e)),
        }
    }
    out
}
