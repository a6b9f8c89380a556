//! A WHIP endpoint (RFC 9725) that records what is published, and a WHEP
//! endpoint that plays files to whoever watches.
//!
//! ```sh
//! cargo run --release -p rtc-api --example whip -- --out rec               # http://127.0.0.1:8080
//! cargo run --release -p rtc-api --example whip -- --token s3cret --video-file clip.ivf --audio-file tone.opus
//! cargo run --release -p rtc-api --features openssl --example whip -- --dtls-engine openssl  # RSA peers (webrtcbin)
//! ```
//!
//! - `POST /whip/<name>` with an SDP offer (`application/sdp`) makes a
//!   session: `201 Created`, the SDP answer, `Location: /session/<id>` and
//!   an `ETag`. Each published track is recorded in `--out`: video (VP8,
//!   or VP9 with `--whip-codec vp9`) to `<name>-<n>.ivf`, Opus audio to
//!   `<name>-<n>.opus` (Ogg), `<n>` the session's number.
//! - `POST /whep/<name>` with a viewer's offer (receive-only) makes a
//!   session that plays `--video-file` (IVF, VP8 or VP9) and `--audio-file`
//!   (Ogg Opus) to the viewer at their real pace, from the start and over
//!   again until the viewer leaves; every viewer has its own.
//! - `PATCH /session/<id>` (`application/trickle-ice-sdpfrag`, RFC 8840)
//!   adds trickled candidates (`204 No Content`; with `If-Match` naming
//!   another ETag, `412`); with `If-Match: *` and new ICE credentials it
//!   restarts ICE and answers `200 OK` with this side's new credentials and
//!   candidates and a new ETag.
//! - `DELETE /session/<id>` ends the session (its files are complete when
//!   the response comes); `OPTIONS` answers CORS preflights.
//! - `GET /` serves a page that publishes the camera and microphone by
//!   WHIP or watches by WHEP.
//!
//! With `--token T`, every request but `OPTIONS` and `GET /` needs
//! `Authorization: Bearer T` (else `401`). Bodies are capped at 64 KiB,
//! sessions at `--max-sessions`; a session ends on DELETE, when consent or
//! ICE fails, when it has not been connected (WHEP) or has received no
//! frame (WHIP) for `--idle` seconds, and on Ctrl-C. Each session prints
//! when it connected, a status line every second (frames recorded or
//! played per kind) and a summary when it ends. Everything binds
//! 127.0.0.1 unless `--listen` names another address: `--listen 0.0.0.0`
//! serves HTTP on every interface and gathers media candidates on every
//! usable interface address, so OBS or a browser on another machine can
//! publish. Logs go to stderr, filtered by `RUST_LOG` (`warn` by default).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtc_api::{
    ConnectionEvent, Direction, DtlsEngine, Events, RtcConnection, RtcMediaStream, RtcMediaStreamTrack, RtcSocket,
    SdpType, SocketEvent, SocketOptions, SocketServers, StreamDescription,
};
use rtc_candidate::Candidate;
use rtc_codecs::Kind;
use tokio::task::JoinHandle;

#[path = "../shared/http.rs"]
mod http;
#[path = "../shared/logs.rs"]
mod logs;
#[path = "../shared/media.rs"]
mod media;

use http::{Request, Response};
use media::{BoxError, Recorded};

const USAGE: &str =
    "usage: whip [--listen IP] [--port N] [--token T] [--out DIR] [--video-file F.ivf] [--audio-file F.opus]
            [--whip-codec vp8|vp9] [--dtls-engine dimpl|openssl] [--max-sessions N] [--idle SECONDS] [--sdp]
  --listen IP       the address HTTP and media bind (127.0.0.1 by default; 0.0.0.0 or ::
                    for every interface, media candidates on every usable interface address)
  --port N          the HTTP port (8080 by default; 0 takes any free port)
  --token T         require `Authorization: Bearer T`
  --out DIR         where WHIP sessions are recorded (`.` by default)
  --video-file F    an IVF file (VP8 or VP9) WHEP viewers get
  --audio-file F    an Ogg Opus file WHEP viewers get
  --whip-codec C    the video codec publishers are answered with: vp8 (default) or vp9
  --dtls-engine E   dimpl (default) or openssl, for peers with RSA certificates such as
                    GStreamer's webrtcbin (build with --features openssl)
  --max-sessions N  sessions at once (16 by default; more get 503)
  --idle SECONDS    end a session idle that long (30 by default)
  --sdp             print each offer and answer";

/// Longest request body: an SDP offer or a fragment.
const MAX_BODY: usize = 64 << 10;

const SDP: &str = "application/sdp";
const SDPFRAG: &str = "application/trickle-ice-sdpfrag";

/// The command line.
#[derive(Debug)]
struct Config {
    listen: std::net::IpAddr,
    port: u16,
    token: Option<String>,
    out: PathBuf,
    video_file: Option<PathBuf>,
    audio_file: Option<PathBuf>,
    whip_vp9: bool,
    dtls_engine: DtlsEngine,
    max_sessions: usize,
    idle: Duration,
    sdp: bool,
}

/// What a session does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Takes a publisher's media and records it.
    Whip,
    /// Plays the files to a viewer.
    Whep,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Whip => "whip",
            Role::Whep => "whep",
        }
    }
}

/// One WHIP or WHEP session.
struct Session {
    /// The secret part of its URL.
    id: String,
    /// Its number, in the order sessions were made.
    n: u64,
    role: Role,
    name: String,
    conn: RtcConnection,
    t0: Instant,
    created: Instant,
    connected: Mutex<Option<Duration>>,
    /// The ETag of its ICE session (without quotes).
    etag: Mutex<String>,
    /// Video and audio: frames received and recorded (WHIP).
    recorded: [Arc<Recorded>; 2],
    /// Video and audio: frames played (WHEP).
    played: [AtomicU64; 2],
    /// The recordings (WHIP).
    files: [Option<PathBuf>; 2],
    /// Recorders (WHIP) or players (WHEP).
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// When something last happened: made, connected, a frame received (WHIP).
    active: Mutex<Instant>,
    trickled: AtomicU64,
    restarts: AtomicU64,
    key_frame_requests: AtomicU64,
}

struct Server {
    t0: Instant,
    config: Config,
    made: AtomicU64,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn load(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

fn random_hex(octets: usize) -> String {
    (0..octets).map(|_| format!("{:02x}", rand::random::<u8>())).collect()
}

impl Session {
    fn say(&self, what: std::fmt::Arguments<'_>) {
        println!("[{:7.3}s] {} {} #{} {what}", self.t0.elapsed().as_secs_f64(), self.role.name(), self.name, self.n);
    }

    /// Video and audio as `N video frames, M audio packets`, with `what`
    /// (recorded, played).
    fn counts(&self) -> String {
        match self.role {
            Role::Whip => {
                let [v, a] = &self.recorded;
                format!(
                    "recorded {} video frames (of {} received), {} audio packets (of {})",
                    load(&v.recorded),
                    load(&v.received),
                    load(&a.recorded),
                    load(&a.received)
                )
            }
            Role::Whep => {
                format!("played {} video frames, {} audio packets", load(&self.played[0]), load(&self.played[1]))
            }
        }
    }
}

impl Server {
    fn session(&self, id: &str) -> Option<Arc<Session>> {
        lock(&self.sessions).get(id).cloned()
    }

    /// Ends session `id` once: closes it, lets its recordings finish and
    /// prints its summary.
    async fn end(&self, id: &str, why: &str) {
        let Some(s) = lock(&self.sessions).remove(id) else { return };
        s.conn.close();
        let tasks = std::mem::take(&mut *lock(&s.tasks));
        for mut t in tasks {
            if s.role == Role::Whep {
                t.abort();
            }
            // A recorder ends once the closed connection ends its track.
            if tokio::time::timeout(Duration::from_secs(5), &mut t).await.is_err() {
                t.abort();
            }
        }
        let connected = lock(&s.connected).map_or("never connected".to_owned(), |d| {
            format!("connected {:.0} ms after the offer", d.as_secs_f64() * 1e3)
        });
        let files: Vec<String> =
            s.files.iter().flatten().filter(|p| p.exists()).map(|p| p.display().to_string()).collect();
        let files = if files.is_empty() { String::new() } else { format!(" to {}", files.join(" and ")) };
        s.say(format_args!(
            "summary ({why}): {connected}; {}{files}; {} candidates trickled, {} ICE restarts, {} key frame \
             requests; up {:.1} s",
            s.counts(),
            load(&s.trickled),
            load(&s.restarts),
            load(&s.key_frame_requests),
            s.created.elapsed().as_secs_f64(),
        ));
    }
}

/// The fourcc of the agreed video codec, when it can be recorded to IVF.
fn video_fourcc(conn: &RtcConnection) -> Option<[u8; 4]> {
    let agreement = conn.agreement()?;
    let helper = |name: &str| ["rtx", "red", "ulpfec", "flexfec-03"].iter().any(|h| name.eq_ignore_ascii_case(h));
    let codec = agreement.codecs_of(Kind::Video).find(|c| !helper(&c.name))?;
    match codec.name.to_ascii_uppercase().as_str() {
        "VP8" => Some(*b"VP80"),
        "VP9" => Some(*b"VP90"),
        _ => None,
    }
}

/// A session's new connection with a socket on `listen` (every usable
/// interface address when it is 0.0.0.0 or ::) whose candidates are
/// gathered (the answer carries them).
async fn connection(
    options: rtc_codecs::Options,
    dtls_engine: DtlsEngine,
    listen: std::net::IpAddr,
) -> Result<(RtcConnection, Events<SocketEvent>), BoxError> {
    let conn = RtcConnection::new(None, Some(options))?;
    let bind = if listen.is_unspecified() { Vec::new() } else { vec![listen] };
    let servers = SocketServers { dtls_engine, bind, ..SocketServers::default() };
    let socket = RtcSocket::new(servers, SocketOptions::default()).await?;
    let mut events = socket.events();
    conn.add_socket(&socket)?;
    let gathered = async {
        loop {
            match events.next().await {
                Some(SocketEvent::CandidatesDone) => break true,
                Some(_) => {}
                None => break false,
            }
        }
    };
    if !tokio::time::timeout(Duration::from_secs(5), gathered).await.unwrap_or(false) {
        conn.close();
        return Err("our candidates were not gathered within 5 s".into());
    }
    Ok((conn, events))
}

/// Makes a session for `offer`; returns it and the SDP answer.
async fn open(server: &Arc<Server>, role: Role, name: &str, offer: &str) -> Result<(Arc<Session>, String), BoxError> {
    let c = &server.config;
    // WHEP: the files, opened now so that a bad one is refused at once.
    let (ivf, ogg) = match role {
        Role::Whip => (None, None),
        Role::Whep => (
            c.video_file.as_deref().map(media::open_ivf).transpose()?,
            c.audio_file.as_deref().map(media::open_ogg).transpose()?,
        ),
    };
    let vp9 = match role {
        Role::Whip => c.whip_vp9,
        Role::Whep => ivf.as_ref().is_some_and(|(_, fourcc)| fourcc == b"VP90"),
    };
    let (conn, socket_events) = connection(media::options(vp9), c.dtls_engine, c.listen).await?;
    let stream = RtcMediaStream::new(StreamDescription::default());
    let tracks = [RtcMediaStreamTrack::of_kind(Kind::Video), RtcMediaStreamTrack::of_kind(Kind::Audio)];
    if role == Role::Whep {
        for (track, present) in tracks.iter().zip([ivf.is_some(), ogg.is_some()]) {
            if present {
                stream.add_track(track.clone())?;
            }
        }
        conn.send_stream(&stream, true)?;
    }
    let events = conn.events();
    let answer = conn.set_remote_sdp(SdpType::Offer, offer).and_then(|()| conn.local_sdp());
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            conn.close();
            return Err(e.into());
        }
    };
    let n = server.made.fetch_add(1, Ordering::Relaxed) + 1;
    let file = |ext: &str| c.out.join(format!("{name}-{n}.{ext}"));
    let files = match role {
        Role::Whip => [Some(file("ivf")), Some(file("opus"))],
        Role::Whep => [None, None],
    };
    let session = Arc::new(Session {
        id: random_hex(12),
        n,
        role,
        name: name.to_owned(),
        conn: conn.clone(),
        t0: server.t0,
        created: Instant::now(),
        connected: Mutex::new(None),
        etag: Mutex::new(random_hex(8)),
        recorded: Default::default(),
        played: Default::default(),
        files,
        tasks: Mutex::new(Vec::new()),
        active: Mutex::new(Instant::now()),
        trickled: AtomicU64::new(0),
        restarts: AtomicU64::new(0),
        key_frame_requests: AtomicU64::new(0),
    });
    {
        let mut sessions = lock(&server.sessions);
        if sessions.len() >= c.max_sessions {
            conn.close();
            return Err(Full.into());
        }
        sessions.insert(session.id.clone(), session.clone());
    }
    session.say(format_args!("answered an offer of {} octets: session /session/{}", offer.len(), session.id));
    if c.sdp {
        session.say(format_args!("offer:\n{offer}"));
        session.say(format_args!("answer:\n{answer}"));
    }
    let mut tasks = Vec::new();
    match role {
        Role::Whip => {
            let fourcc = video_fourcc(&conn);
            for track in conn.remote_streams().iter().flat_map(RtcMediaStream::tracks) {
                let i = usize::from(track.kind() == Kind::Audio);
                // Video of a codec IVF cannot hold is counted, not recorded.
                let out = if i == 0 && fourcc.is_none() { None } else { session.files[i].clone() };
                let counts = session.recorded[i].clone();
                let s = session.clone();
                tasks.push(tokio::spawn(async move {
                    if let Err(e) = media::record(track, out, fourcc.unwrap_or(*b"VP80"), &counts).await {
                        s.say(format_args!("recording stopped: {e}"));
                    }
                }));
            }
        }
        Role::Whep => {
            for (track, path) in tracks.into_iter().zip([c.video_file.clone(), c.audio_file.clone()]) {
                if let Some(path) = path {
                    tasks.push(tokio::spawn(play_file(session.clone(), track, path)));
                }
            }
        }
    }
    *lock(&session.tasks) = tasks;
    tokio::spawn(watch(server.clone(), session.clone(), events, socket_events));
    Ok((session, answer))
}

/// The session table is full.
#[derive(Debug)]
struct Full;

impl std::fmt::Display for Full {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("too many sessions")
    }
}

impl std::error::Error for Full {}

/// Once the session is connected, plays the file at `path` into `track`
/// (an IVF file into video, an Ogg Opus file into audio), from the start
/// over and over, until the track refuses a frame (the session ended) or
/// the file fails.
async fn play_file(s: Arc<Session>, track: RtcMediaStreamTrack, path: PathBuf) {
    while !s.conn.is_connected() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let audio = track.kind() == Kind::Audio;
    let played = &s.played[usize::from(audio)];
    loop {
        let round = if audio {
            match media::open_ogg(&path) {
                Ok(ogg) => media::play_audio(ogg, &track, played).await,
                Err(e) => Err(e),
            }
        } else {
            match media::open_ivf(&path) {
                Ok((ivf, _)) => media::play_video(ivf, &track, played).await,
                Err(e) => Err(e),
            }
        };
        if let Err(e) = round {
            if s.conn.is_connected() {
                s.say(format_args!("playing {} stopped: {e}", path.display()));
            }
            return;
        }
    }
}

/// Follows a session: prints its events and a status line every second,
/// and ends it when the peer goes away or it stays idle.
async fn watch(
    server: Arc<Server>,
    s: Arc<Session>,
    mut events: Events<ConnectionEvent>,
    mut socket_events: Events<SocketEvent>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut received = 0;
    let mut socket_open = true;
    loop {
        tokio::select! {
            e = events.next() => {
                if server.session(&s.id).is_none() {
                    return;
                }
                match e {
                    Some(ConnectionEvent::Connected) => {
                        let after = s.created.elapsed();
                        *lock(&s.connected) = Some(after);
                        *lock(&s.active) = Instant::now();
                        s.say(format_args!("connected {:.0} ms after the offer", after.as_secs_f64() * 1e3));
                    }
                    Some(ConnectionEvent::Disconnected) | None => {
                        s.say(format_args!("disconnected"));
                        server.end(&s.id, "the peer went away, or ICE or consent failed").await;
                        return;
                    }
                    Some(ConnectionEvent::KeyFrameRequest { .. }) => {
                        if s.key_frame_requests.fetch_add(1, Ordering::Relaxed) == 0 {
                            s.say(format_args!("the viewer asks for a key frame: it comes when the file has one (counted from now on)"));
                        }
                    }
                    Some(ConnectionEvent::StreamReport { .. } | ConnectionEvent::TrackReport(_)) => {}
                    Some(e) => {
                        tracing::debug!(session = s.n, "event {}", serde_json::to_string(&e).unwrap_or_default());
                    }
                }
            }
            e = socket_events.next(), if socket_open => match e {
                Some(SocketEvent::ActiveCandidate { local, remote }) => {
                    s.say(format_args!("candidate pair {} {} <-> {} {}", local.address, local.port, remote.address, remote.port));
                }
                Some(_) => {}
                None => socket_open = false,
            },
            _ = tick.tick() => {
                if server.session(&s.id).is_none() {
                    return;
                }
                let now = s.recorded.iter().map(|r| load(&r.received)).sum::<u64>();
                if now != received || (s.role == Role::Whep && s.conn.is_connected()) {
                    *lock(&s.active) = Instant::now();
                }
                received = now;
                let idle = lock(&s.active).elapsed();
                if idle >= server.config.idle {
                    let why = format!("idle for {:.0} s", idle.as_secs_f64());
                    server.end(&s.id, &why).await;
                    return;
                }
                if s.conn.is_connected() {
                    s.say(format_args!("status: {}", s.counts()));
                }
            }
        }
    }
}

/// A trickle-ice-sdpfrag (RFC 8840): ICE credentials and candidates.
#[derive(Default)]
struct Fragment {
    ufrag: Option<String>,
    pwd: Option<String>,
    candidates: Vec<Candidate>,
}

fn parse_fragment(body: &str) -> Result<Fragment, String> {
    let mut f = Fragment::default();
    for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(v) = line.strip_prefix("a=ice-ufrag:") {
            f.ufrag = Some(v.to_owned());
        } else if let Some(v) = line.strip_prefix("a=ice-pwd:") {
            f.pwd = Some(v.to_owned());
        } else if line.starts_with("a=candidate:") {
            match Candidate::parse(line) {
                Ok(c) => f.candidates.push(c),
                // mDNS names and other candidates this side cannot use are skipped.
                Err(e) => tracing::debug!("trickled candidate skipped ({e}): {line}"),
            }
            if f.candidates.len() > 64 {
                return Err("more than 64 candidates".into());
            }
        } else if !(line.starts_with("a=") || line.starts_with("m=") || line.starts_with("c=")) {
            return Err(format!("not an SDP fragment line: {line:?}"));
        }
    }
    Ok(f)
}

/// Restarts ICE with the peer's new credentials and candidates; returns
/// this side's new credentials and candidates as a fragment.
fn restart(s: &Session, f: &Fragment, ufrag: &str, pwd: &str) -> Result<String, BoxError> {
    let mut remote = s.conn.description(Direction::Remote).ok_or("no remote description")?;
    remote.context_id = Some(ufrag.to_owned());
    remote.secret = Some(pwd.to_owned());
    if let Some(socket) = remote.sockets.first_mut() {
        socket.candidates = f.candidates.clone();
    }
    s.conn.set_description(remote, Direction::Remote)?;
    let local = s.conn.description(Direction::Local).ok_or("no local description")?;
    let mut frag = format!(
        "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\n",
        local.context_id.unwrap_or_default(),
        local.secret.unwrap_or_default()
    );
    for c in local.sockets.iter().take(1).flat_map(|s| &s.candidates) {
        frag.push_str(&format!("{}\r\n", c.to_sdp_attribute()));
    }
    frag.push_str("a=end-of-candidates\r\n");
    Ok(frag)
}

/// The remote ICE ufrag the session uses now.
fn remote_ufrag(s: &Session) -> Option<String> {
    s.conn.description(Direction::Remote)?.context_id
}

/// `PATCH /session/<id>`: trickle or restart.
fn patch(s: &Session, req: &Request) -> Response {
    if req.content_type() != SDPFRAG {
        return Response::text("415 Unsupported Media Type", format!("PATCH takes {SDPFRAG}\n"));
    }
    let f = match parse_fragment(&req.body) {
        Ok(f) => f,
        Err(e) => return Response::text("400 Bad Request", format!("{e}\n")),
    };
    let if_match = req.header("if-match").map(|v| v.trim().trim_start_matches("W/").trim_matches('"').to_owned());
    let current = remote_ufrag(s);
    let new_credentials = f.ufrag.is_some() && f.ufrag != current;
    if if_match.as_deref() == Some("*") {
        let (Some(ufrag), Some(pwd)) = (&f.ufrag, &f.pwd) else {
            return Response::text("422 Unprocessable Content", "an ICE restart needs a=ice-ufrag and a=ice-pwd\n");
        };
        if !new_credentials {
            return Response::text("422 Unprocessable Content", "an ICE restart needs new ICE credentials\n");
        }
        return match restart(s, &f, ufrag, pwd) {
            Ok(frag) => {
                let etag = random_hex(8);
                *lock(&s.etag) = etag.clone();
                s.restarts.fetch_add(1, Ordering::Relaxed);
                s.say(format_args!("ICE restart: the peer's ufrag is now {ufrag}"));
                Response::new("200 OK", SDPFRAG, frag).with("ETag", format!("\"{etag}\""))
            }
            Err(e) => Response::text("422 Unprocessable Content", format!("ICE restart refused: {e}\n")),
        };
    }
    if let Some(tag) = if_match
        && tag != *lock(&s.etag)
    {
        return Response::text("412 Precondition Failed", "the ETag names another ICE session\n");
    }
    if new_credentials {
        return Response::text("422 Unprocessable Content", "these ICE credentials are not the session's\n");
    }
    let mut added = 0;
    for c in &f.candidates {
        match s.conn.set_remote_candidate(None, c) {
            Ok(()) => added += 1,
            Err(e) => tracing::debug!(session = s.n, "trickled candidate not taken ({e}): {c}"),
        }
    }
    s.trickled.fetch_add(added, Ordering::Relaxed);
    Response::empty("204 No Content")
}

/// A stream name: 1 to 64 letters, digits, `-`, `_` and `.`, not starting
/// with a dot (it names the recordings).
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The CORS header fields every response carries.
fn cors(r: Response) -> Response {
    r.with("Access-Control-Allow-Origin", "*")
        .with("Access-Control-Expose-Headers", "Location, ETag, Link, Accept-Patch, Accept-Post")
}

async fn route(server: Arc<Server>, req: Request) -> Response {
    cors(handle(&server, &req).await)
}

async fn handle(server: &Arc<Server>, req: &Request) -> Response {
    let path = req.path.as_str();
    let endpoint =
        path.strip_prefix("/whip/").map(|n| (Role::Whip, n)).or(path.strip_prefix("/whep/").map(|n| (Role::Whep, n)));
    let resource = path.strip_prefix("/session/");
    match req.method.as_str() {
        "OPTIONS" => {
            let r = Response::empty("204 No Content")
                .with("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE, OPTIONS")
                .with("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
                .with("Access-Control-Max-Age", "600");
            return match (endpoint, resource) {
                (Some(_), _) => r.with("Accept-Post", SDP),
                (_, Some(_)) => r.with("Accept-Patch", SDPFRAG),
                _ => r,
            };
        }
        "GET" if path == "/" || path == "/index.html" => {
            return Response::new("200 OK", "text/html; charset=utf-8", include_str!("index.html"));
        }
        _ => {}
    }
    if let Some(token) = &server.config.token {
        let given = req.header("authorization").and_then(|v| v.strip_prefix("Bearer "));
        if given.map(str::trim) != Some(token.as_str()) {
            return Response::text("401 Unauthorized", "a bearer token is needed\n").with("WWW-Authenticate", "Bearer");
        }
    }
    match (req.method.as_str(), endpoint, resource) {
        ("POST", Some((role, name)), _) => {
            if !valid_name(name) {
                return Response::text("400 Bad Request", "a name is 1 to 64 of A-Z a-z 0-9 - _ .\n");
            }
            if req.content_type() != SDP {
                return Response::text("415 Unsupported Media Type", format!("POST takes {SDP}\n"));
            }
            if role == Role::Whep && server.config.video_file.is_none() && server.config.audio_file.is_none() {
                return Response::text("404 Not Found", "nothing to watch: start with --video-file or --audio-file\n");
            }
            if lock(&server.sessions).len() >= server.config.max_sessions {
                return Response::text("503 Service Unavailable", "too many sessions\n").with("Retry-After", "10");
            }
            match open(server, role, name, &req.body).await {
                Ok((s, answer)) => Response::new("201 Created", SDP, answer)
                    .with("Location", format!("/session/{}", s.id))
                    .with("ETag", format!("\"{}\"", lock(&s.etag)))
                    .with("Accept-Patch", SDPFRAG),
                Err(e) if e.is::<Full>() => {
                    Response::text("503 Service Unavailable", "too many sessions\n").with("Retry-After", "10")
                }
                Err(e) => {
                    println!("[{:7.3}s] {} {name}: offer refused: {e}", server.t0.elapsed().as_secs_f64(), role.name());
                    Response::text("400 Bad Request", format!("{e}\n"))
                }
            }
        }
        (method, _, Some(id)) => {
            let Some(s) = server.session(id) else { return Response::text("404 Not Found", "no such session\n") };
            match method {
                "PATCH" => patch(&s, req),
                "DELETE" => {
                    server.end(id, "DELETE").await;
                    Response::text("200 OK", "")
                }
                _ => Response::text("405 Method Not Allowed", "PATCH or DELETE\n")
                    .with("Allow", "PATCH, DELETE, OPTIONS"),
            }
        }
        (_, Some(_), _) => {
            Response::text("405 Method Not Allowed", "POST an SDP offer\n").with("Allow", "POST, OPTIONS")
        }
        _ => Response::text("404 Not Found", "not found\n"),
    }
}

fn config() -> Result<Config, String> {
    let mut c = Config {
        listen: std::net::Ipv4Addr::LOCALHOST.into(),
        port: 8080,
        token: None,
        out: PathBuf::from("."),
        video_file: None,
        audio_file: None,
        whip_vp9: false,
        dtls_engine: DtlsEngine::Dimpl,
        max_sessions: 16,
        idle: Duration::from_secs(30),
        sdp: false,
    };
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        let arg = arg.to_str().ok_or("arguments are UTF-8")?.to_owned();
        if arg == "-h" || arg == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        if arg == "--sdp" {
            c.sdp = true;
            continue;
        }
        let value = args.next().ok_or(format!("{arg} needs a value"))?;
        let text = || value.to_str().map(str::to_owned).ok_or(format!("{arg}: not UTF-8"));
        let number =
            |max: u64| text()?.parse::<u64>().ok().filter(|&v| v <= max).ok_or(format!("{arg}: a number up to {max}"));
        match arg.as_str() {
            "--listen" => c.listen = text()?.parse().map_err(|e| format!("--listen: {e}"))?,
            "--port" => c.port = number(65535)? as u16,
            "--token" => c.token = Some(text()?).filter(|t| !t.is_empty()),
            "--out" => c.out = value.into(),
            "--video-file" => c.video_file = Some(value.into()),
            "--audio-file" => c.audio_file = Some(value.into()),
            "--whip-codec" => {
                c.whip_vp9 = match text()?.to_ascii_lowercase().as_str() {
                    "vp8" => false,
                    "vp9" => true,
                    v => return Err(format!("--whip-codec {v}: vp8 or vp9")),
                }
            }
            "--dtls-engine" => {
                c.dtls_engine = match text()?.to_ascii_lowercase().as_str() {
                    "dimpl" => DtlsEngine::Dimpl,
                    "openssl" if rtc_dtls::Engine::OpenSsl.available() => DtlsEngine::OpenSsl,
                    "openssl" => return Err("--dtls-engine openssl: build with --features openssl".into()),
                    v => return Err(format!("--dtls-engine {v}: dimpl or openssl")),
                }
            }
            "--max-sessions" => c.max_sessions = number(1024)?.max(1) as usize,
            "--idle" => c.idle = Duration::from_secs(number(86_400)?.max(1)),
            a => return Err(format!("unknown argument {a:?}")),
        }
    }
    Ok(c)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    logs::init();
    let config = config().unwrap_or_else(|e| {
        eprintln!("{e}\n{USAGE}");
        std::process::exit(2);
    });
    // Refuse bad files now rather than at the first viewer.
    if let Some(p) = &config.video_file {
        media::open_ivf(p)?;
    }
    if let Some(p) = &config.audio_file {
        media::open_ogg(p)?;
    }
    std::fs::create_dir_all(&config.out).map_err(|e| format!("--out {}: {e}", config.out.display()))?;
    if !config.listen.is_loopback() && config.token.is_none() {
        eprintln!("warning: serving {} without --token: anyone who reaches it can publish and watch", config.listen);
    }
    let listener = http::bind(config.listen, config.port).await?;
    let url = format!("http://{}", listener.local_addr()?);
    println!(
        "serving {url}/ : WHIP at {url}/whip/<name> (recorded in {}), WHEP at {url}/whep/<name>{} (Ctrl-C ends)",
        config.out.display(),
        match (&config.video_file, &config.audio_file) {
            (None, None) => " (no files to play)".to_owned(),
            (v, a) => {
                let files: Vec<String> = v.iter().chain(a).map(|p| p.display().to_string()).collect();
                format!(" (plays {})", files.join(" and "))
            }
        }
    );
    let server = Arc::new(Server { t0: Instant::now(), config, made: AtomicU64::new(0), sessions: Mutex::default() });
    let serving = server.clone();
    http::serve_until_ctrl_c(listener, MAX_BODY, move |req| route(serving.clone(), req)).await;
    let mut up: Vec<(u64, String)> = lock(&server.sessions).values().map(|s| (s.n, s.id.clone())).collect();
    up.sort_unstable();
    for (_, id) in up {
        server.end(&id, "Ctrl-C").await;
    }
    println!("[{:7.3}s] {} sessions; bye", server.t0.elapsed().as_secs_f64(), load(&server.made));
    // Let the connections' DTLS close_notify leave.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
}
