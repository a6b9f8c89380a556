//! A call between two peers in one process over 127.0.0.1: descriptions,
//! options and candidates exchanged as JSON (printed as they go), an audio
//! track (Opus-sized frames, 50 per second) and a video track (VP8 frames,
//! 30 per second) both ways over SRTP keyed by DTLS-SRTP, a data stream
//! (alice opens `chat`, bob echoes what it carries), every event printed as
//! it fires, a status line per peer each second while media flows (bitrate
//! each way, packets lost, round trip, the bandwidth estimate), and a
//! summary table at the end: per track packets, loss, NACKs and
//! retransmissions, and the frames sent and received whole (and those
//! dropped incomplete, when any were).
//!
//! With `--loss PERCENT` the peers reach each other only through a relay
//! in the process that drops that share of the datagrams each way (STUN,
//! DTLS and media alike, from the first check on): the candidates each peer
//! is given are the relay's address.
//!
//! ```sh
//! cargo run --release -p rtc-api --example call [seconds] [--loss PERCENT]
//! RUST_LOG=debug cargo run --release -p rtc-api --example call 1   # and the logs
//! ```
//!
//! Logs go to stderr, filtered by `RUST_LOG` (`warn` by default).

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rtc_api::{
    ConnectionDescription, ConnectionEvent, DataEvent, DataStreamDescription, Direction, Events, RtcConnection,
    RtcDataStream, RtcMediaStream, RtcMediaStreamTrack, RtcSocket, SocketEvent, SocketOptions, SocketServers,
    StreamDescription,
};
use rtc_candidate::Candidate;
use rtc_codecs::{Kind, Options};

#[path = "shared/logs.rs"]
mod logs;

type BoxError = Box<dyn Error + Send + Sync>;

struct Peer {
    name: &'static str,
    conn: RtcConnection,
    socket: RtcSocket,
    audio: RtcMediaStreamTrack,
    video: RtcMediaStreamTrack,
}

async fn peer(name: &'static str, t0: Instant) -> Result<(Peer, Events<SocketEvent>), BoxError> {
    let conn = RtcConnection::new(None, None)?;
    conn.set_report_interval(Duration::from_secs(2));
    let socket = RtcSocket::new(SocketServers::loopback_v4(), SocketOptions::default()).await?;
    // Subscribe before the socket is added so every candidate is seen.
    print_events(name, t0, conn.events());
    let socket_events = socket.events();
    let stream = RtcMediaStream::new(StreamDescription::default());
    let audio = RtcMediaStreamTrack::of_kind(Kind::Audio);
    let video = RtcMediaStreamTrack::of_kind(Kind::Video);
    stream.add_track(audio.clone())?;
    stream.add_track(video.clone())?;
    conn.send_stream(&stream, true)?;
    Ok((Peer { name, conn, socket, audio, video }, socket_events))
}

fn stamp(t0: Instant) -> String {
    format!("[{:6.3}s]", t0.elapsed().as_secs_f64())
}

fn print_events(name: &'static str, t0: Instant, mut events: Events<ConnectionEvent>) {
    tokio::spawn(async move {
        while let Some(e) = events.next().await {
            println!("{} {name:5} connection event {}", stamp(t0), serde_json::to_string(&e).unwrap_or_default());
        }
    });
}

/// A relay between the two peers that drops a share of the datagrams each
/// way (`--loss`): each peer is told the relay's address as the other's
/// candidate; what comes from one peer goes to the other.
struct LossyRelay {
    socket: tokio::net::UdpSocket,
    /// The peers' addresses, as their candidates gave them: alice, bob.
    peers: std::sync::Mutex<[Option<std::net::SocketAddr>; 2]>,
    /// The share dropped, in millionths.
    loss: u32,
    dropped: AtomicU64,
    forwarded: AtomicU64,
}

impl LossyRelay {
    async fn start(percent: f64) -> Result<Arc<Self>, BoxError> {
        let relay = Arc::new(Self {
            socket: tokio::net::UdpSocket::bind("127.0.0.1:0").await?,
            peers: std::sync::Mutex::new([None, None]),
            loss: (percent.clamp(0.0, 100.0) * 10_000.0) as u32,
            dropped: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
        });
        let r = relay.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            // xorshift64: loss needs no more than that.
            let mut x = 0x2545_f491_4f6c_dd1du64 ^ u64::from(std::process::id());
            while let Ok((n, from)) = r.socket.recv_from(&mut buf).await {
                let peers = *r.peers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let to = match peers {
                    [Some(a), Some(b)] if from == a => b,
                    [Some(a), Some(b)] if from == b => a,
                    _ => continue,
                };
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if (x % 1_000_000) < u64::from(r.loss) {
                    r.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                r.forwarded.fetch_add(1, Ordering::Relaxed);
                let _ = r.socket.send_to(&buf[..n], to).await;
            }
        });
        Ok(relay)
    }

    /// `c`, a candidate of peer `who` (0 alice, 1 bob), as the other peer
    /// is told it: the relay's address.
    fn stand_in(&self, who: usize, c: &mut Candidate) {
        let (Some(ip), Ok(relay)) = (c.address.ip(), self.socket.local_addr()) else { return };
        let mut peers = self.peers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        peers[who] = Some(std::net::SocketAddr::new(ip, c.port));
        c.address = rtc_candidate::Address::Ip(relay.ip());
        c.port = relay.port();
    }
}

/// Prints a socket's events and signals its candidates to the other peer
/// as JSON text (the "signaling channel" is this task); through the lossy
/// relay with `--loss` (`who`: 0 alice, 1 bob).
fn signal_candidates(
    mut events: Events<SocketEvent>,
    name: &'static str,
    to: RtcSocket,
    t0: Instant,
    relay: Option<(Arc<LossyRelay>, usize)>,
) {
    tokio::spawn(async move {
        while let Some(e) = events.next().await {
            println!("{} {name:5} socket event {}", stamp(t0), serde_json::to_string(&e).unwrap_or_default());
            if let SocketEvent::Candidate { mut candidate } = e {
                if let Some((r, who)) = &relay {
                    r.stand_in(*who, &mut candidate);
                }
                let json = serde_json::to_string(&candidate).unwrap_or_default();
                println!("{} {name:5} -> candidate {json}", stamp(t0));
                match serde_json::from_str::<Candidate>(&json) {
                    Ok(c) => {
                        if let Err(e) = to.set_remote_candidate(&c) {
                            println!("{} candidate refused: {e}", stamp(t0));
                        }
                    }
                    Err(e) => println!("{} bad candidate JSON: {e}", stamp(t0)),
                }
            }
        }
    });
}

/// An Opus-sized frame: 20 ms at about 64 kbit/s (160 octets), its index in
/// the first four octets so the receiver can check it.
fn audio_frame(i: u32) -> Vec<u8> {
    let mut f = vec![0u8; 160];
    f[..4].copy_from_slice(&i.to_be_bytes());
    for (k, b) in f.iter_mut().enumerate().skip(4) {
        *b = (k as u32).wrapping_mul(31).wrapping_add(i) as u8;
    }
    f
}

/// A VP8-shaped frame (RFC 6386 section 9.1 frame tag; a key frame every
/// 2 s with the start code and 640x480), about 1 Mbit/s overall.
fn video_frame(i: u32) -> Vec<u8> {
    let key = i.is_multiple_of(60);
    let len = if key { 12_000 } else { 3_000 + (i as usize % 7) * 200 };
    let mut f = vec![0u8; len];
    let first_part = (len as u32 / 2) & 0x7_ffff;
    let tag = (u32::from(!key)) | (1 << 4) | (first_part << 5); // P, show_frame, size
    f[..3].copy_from_slice(&tag.to_le_bytes()[..3]);
    let mut at = 3;
    if key {
        f[3..6].copy_from_slice(&[0x9d, 0x01, 0x2a]);
        f[6..8].copy_from_slice(&640u16.to_le_bytes());
        f[8..10].copy_from_slice(&480u16.to_le_bytes());
        at = 10;
    }
    f[at..at + 4].copy_from_slice(&i.to_be_bytes());
    for (k, b) in f.iter_mut().enumerate().skip(at + 4) {
        *b = (k as u32 ^ i) as u8;
    }
    f
}

#[derive(Default)]
struct Counts {
    /// Frames written (a sent track) or received (a received track).
    frames: AtomicU64,
    bad: AtomicU64,
    key_frames: AtomicU64,
}

fn receive(track: RtcMediaStreamTrack, kind: Kind, counts: Arc<Counts>) {
    tokio::spawn(async move {
        while let Some(f) = track.read_frame().await {
            let ok = match kind {
                Kind::Audio => {
                    f.data.len() >= 4 && {
                        let i = u32::from_be_bytes([f.data[0], f.data[1], f.data[2], f.data[3]]);
                        f.data == audio_frame(i)
                    }
                }
                _ => {
                    let at = if f.key_frame { 10 } else { 3 };
                    f.data.len() >= at + 4 && {
                        let i = u32::from_be_bytes([f.data[at], f.data[at + 1], f.data[at + 2], f.data[at + 3]]);
                        f.data == video_frame(i)
                    }
                }
            };
            counts.frames.fetch_add(1, Ordering::Relaxed);
            if !ok {
                counts.bad.fetch_add(1, Ordering::Relaxed);
            }
            if f.key_frame && kind == Kind::Video {
                counts.key_frames.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
}

fn send(track: RtcMediaStreamTrack, kind: Kind, until: Instant, counts: Arc<Counts>) {
    tokio::spawn(async move {
        let (period, mut i) = match kind {
            Kind::Audio => (Duration::from_millis(20), 0u32),
            _ => (Duration::from_nanos(1_000_000_000 / 30), 0u32),
        };
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while Instant::now() < until {
            tick.tick().await;
            let frame = if kind == Kind::Audio { audio_frame(i) } else { video_frame(i) };
            match track.write_frame(&frame, period) {
                Ok(_) => {
                    counts.frames.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => println!("write_frame: {e}"),
            }
            i += 1;
        }
    });
}

async fn exchange(a: &Peer, b: &Peer, t0: Instant, relay: Option<&LossyRelay>) -> Result<(), BoxError> {
    for (from, to) in [(a, b), (b, a)] {
        let opts = from.conn.options(Direction::Local).unwrap_or_default().to_json();
        println!("{} {:5} -> options {opts}", stamp(t0), from.name);
        to.conn.set_options(Options::from_json(&opts)?, Direction::Remote)?;
    }
    for (who, (from, to)) in [(a, b), (b, a)].into_iter().enumerate() {
        // Without `keys`, as browsers signal, SRTP is keyed by DTLS-SRTP
        // against the sockets' certificate fingerprints.
        let mut desc = from.conn.description(Direction::Local).ok_or("no local description")?;
        desc.keys.clear();
        if let Some(r) = relay {
            for c in desc.sockets.iter_mut().flat_map(|s| s.candidates.iter_mut()) {
                r.stand_in(who, c);
            }
        }
        let desc = desc.to_json();
        println!("{} {:5} -> description {desc}", stamp(t0), from.name);
        to.conn.set_description(ConnectionDescription::from_json(&desc)?, Direction::Remote)?;
    }
    Ok(())
}

#[derive(Default)]
struct DataCounts {
    sent: AtomicU64,
    sent_bytes: AtomicU64,
    echoed: AtomicU64,
    bad: AtomicU64,
}

/// Prints a data stream's events as they fire (but bufferedamountlow,
/// which fires whenever the peer has acknowledged everything sent).
fn print_data_events(name: &'static str, t0: Instant, stream: &RtcDataStream) {
    let mut events = stream.events();
    let label = stream.description().map(|d| d.label).unwrap_or_default();
    tokio::spawn(async move {
        while let Some(e) = events.next().await {
            if e == DataEvent::BufferedAmountLow {
                continue;
            }
            let e = serde_json::to_string(&e).unwrap_or_default();
            println!("{} {name:5} data stream {label:?} event {e}", stamp(t0));
        }
    });
}

/// Alice's side of the data stream: a chat line every 100 ms until `until`
/// (some as text, some binary), each echo checked against what was sent.
fn chat(stream: RtcDataStream, until: Instant, counts: Arc<DataCounts>) {
    let line = |i: u64| format!("chat line {i}: {}", "x".repeat((i as usize * 37) % 900));
    let reader = stream.clone();
    let c = counts.clone();
    tokio::spawn(async move {
        let mut i = 0;
        while let Some(m) = reader.recv().await {
            let want = line(i);
            if m.data != want.as_bytes() || m.binary != i.is_multiple_of(2) {
                c.bad.fetch_add(1, Ordering::Relaxed);
            }
            c.echoed.fetch_add(1, Ordering::Relaxed);
            i += 1;
        }
    });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut i = 0;
        while Instant::now() < until {
            tick.tick().await;
            let text = line(i);
            let sent = if i.is_multiple_of(2) { stream.send(text.as_bytes()) } else { stream.send_text(&text) };
            match sent {
                Ok(()) => {
                    counts.sent.fetch_add(1, Ordering::Relaxed);
                    counts.sent_bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
                }
                Err(e) => println!("data send: {e}"),
            }
            i += 1;
        }
    });
}

/// Bob's side: every data stream alice opens is echoed back message by
/// message, text as text and binary as binary.
fn echo(conn: RtcConnection, t0: Instant) {
    tokio::spawn(async move {
        while let Some(stream) = conn.accept_data_stream().await {
            print_data_events("bob", t0, &stream);
            let d = stream.description().unwrap_or_default();
            println!("{} bob   accepted data stream {:?} (id {:?})", stamp(t0), d.label, d.id);
            tokio::spawn(async move {
                while let Some(m) = stream.recv().await {
                    let echoed = if m.binary { stream.send(&m.data) } else { stream.send_text(m.text().unwrap_or("")) };
                    if let Err(e) = echoed {
                        println!("data echo: {e}");
                    }
                }
            });
        }
    });
}

/// The octets a peer has sent and received so far, over all its tracks.
#[derive(Default, Clone, Copy)]
struct Octets {
    sent: u64,
    received: u64,
}

/// One status line for a peer: bitrate each way since `last` (`secs` ago),
/// packets lost so far, the round trip and the bandwidth estimate.
fn status(t0: Instant, p: &Peer, last: &mut Octets, secs: f64) {
    let (mut now, mut lost, mut rtt) = (Octets::default(), 0i64, None::<f64>);
    for r in p.conn.stats() {
        match r.direction {
            Direction::Local => {
                now.sent += r.stats.bytes_sent.unwrap_or(0);
                rtt = r.stats.round_trip_time.map_or(rtt, |x| Some(rtt.map_or(x, |y| y.max(x))));
            }
            Direction::Remote => {
                now.received += r.stats.bytes_received.unwrap_or(0);
                lost += r.stats.packets_lost;
            }
        }
    }
    let kbit = |a: u64, b: u64| a.saturating_sub(b) as f64 * 8.0 / secs.max(1e-3) / 1000.0;
    println!(
        "{} {:5} status: out {:5.0} kbit/s  in {:5.0} kbit/s  lost {}  rtt {} ms  estimate {}",
        stamp(t0),
        p.name,
        kbit(now.sent, last.sent),
        kbit(now.received, last.received),
        lost,
        rtt.map_or("-".into(), ms),
        p.conn.available_outgoing_bitrate().map_or("-".into(), |b| format!("{} kbit/s", b / 1000)),
    );
    *last = now;
}

fn ms(v: f64) -> String {
    format!("{:.2}", v * 1000.0)
}

/// A track's frame counts in the summary: written (`sent`) or received.
struct TrackCounts {
    sent: bool,
    counts: Arc<Counts>,
}

fn summary(peers: [&Peer; 2], counts: &[(&str, &str, TrackCounts)], data: &DataCounts) {
    println!();
    println!(
        "{:6} {:6} {:4} {:>8} {:>10} {:>6} {:>8} {:>11} {:>8} {:>5} {:>6} {:>8}",
        "peer",
        "track",
        "dir",
        "packets",
        "bytes",
        "lost",
        "fraction",
        "jitter(ms)",
        "rtt(ms)",
        "nacks",
        "resent",
        "frames"
    );
    for p in peers {
        for r in p.conn.stats() {
            let kind = r.kind.as_str();
            let (dir, packets, bytes, resent) = match r.direction {
                Direction::Local => {
                    ("sent", r.stats.packets_sent, r.stats.bytes_sent, r.stats.retransmitted_packets_sent)
                }
                Direction::Remote => {
                    ("recv", r.stats.packets_received, r.stats.bytes_received, r.stats.retransmitted_packets_received)
                }
            };
            let local = r.direction == Direction::Local;
            let frames = counts
                .iter()
                .find(|(n, k, c)| *n == p.name && *k == kind && c.sent == local)
                .map(|(_, _, c)| {
                    let bad = c.counts.bad.load(Ordering::Relaxed);
                    let f = c.counts.frames.load(Ordering::Relaxed);
                    let dropped = r.stats.frames_dropped.filter(|&d| d > 0).map(|d| format!(" ({d} dropped)"));
                    let bad = (bad > 0).then(|| format!(" ({bad} bad)"));
                    format!("{f}{}{}", dropped.unwrap_or_default(), bad.unwrap_or_default())
                })
                .unwrap_or_default();
            println!(
                "{:6} {:6} {:4} {:>8} {:>10} {:>6} {:>8.3} {:>11} {:>8} {:>5} {:>6} {:>8}",
                p.name,
                kind,
                dir,
                packets.unwrap_or(0),
                bytes.unwrap_or(0),
                r.stats.packets_lost,
                r.stats.fraction_lost,
                ms(r.stats.jitter),
                r.stats.round_trip_time.map(ms).unwrap_or_else(|| "-".into()),
                r.stats.nack_count,
                resent.unwrap_or(0),
                frames
            );
        }
    }
    let bad = data.bad.load(Ordering::Relaxed);
    println!(
        "alice  data   chat: {} messages ({} bytes) sent, {} echoed back by bob{}",
        data.sent.load(Ordering::Relaxed),
        data.sent_bytes.load(Ordering::Relaxed),
        data.echoed.load(Ordering::Relaxed),
        if bad == 0 { String::new() } else { format!(" ({bad} bad)") }
    );
    for p in peers {
        println!(
            "{:6} time to connected: {}  dropped datagrams: socket {} srtp {}  outgoing bitrate estimate: {} \
             ({} transport feedback messages)",
            p.name,
            p.conn.time_to_connected().map(|d| format!("{:.1} ms", d.as_secs_f64() * 1000.0)).unwrap_or("never".into()),
            p.socket.dropped(),
            p.conn.dropped(),
            p.conn.available_outgoing_bitrate().map_or("-".into(), |b| format!("{} kbit/s", b / 1000)),
            p.conn.transport_feedback_received()
        );
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    logs::init();
    let (mut seconds, mut loss) = (6.0, None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--loss" => loss = Some(args.next().and_then(|v| v.parse::<f64>().ok()).ok_or("--loss PERCENT")?),
            _ => seconds = a.parse().map_err(|_| format!("usage: call [seconds] [--loss PERCENT]; not {a:?}"))?,
        }
    }
    let t0 = Instant::now();
    let relay = match loss {
        Some(percent) => {
            let r = LossyRelay::start(percent).await?;
            println!(
                "{} the peers reach each other through a relay that drops {percent}% of the datagrams each way",
                stamp(t0)
            );
            Some(r)
        }
        None => None,
    };
    let (alice, alice_socket_events) = peer("alice", t0).await?;
    let (bob, bob_socket_events) = peer("bob", t0).await?;
    let (a_ev, b_ev) = (alice.conn.events(), bob.conn.events());
    alice.conn.add_socket(&alice.socket)?;
    bob.conn.add_socket(&bob.socket)?;
    // Both sockets exist: their candidates (already queued) can be signaled.
    signal_candidates(alice_socket_events, "alice", bob.socket.clone(), t0, relay.clone().map(|r| (r, 0)));
    signal_candidates(bob_socket_events, "bob", alice.socket.clone(), t0, relay.clone().map(|r| (r, 1)));
    // A data stream: the descriptions carry `data` from now on; bob accepts
    // (his description answers with `data` once he has alice's).
    let chat_stream = alice.conn.create_data_stream(DataStreamDescription::new("chat"))?;
    print_data_events("alice", t0, &chat_stream);
    let mut chat_events = chat_stream.events();
    echo(bob.conn.clone(), t0);
    exchange(&alice, &bob, t0, relay.as_deref()).await?;
    let connected = |mut ev: Events<ConnectionEvent>| async move {
        while let Some(e) = ev.next().await {
            if e == ConnectionEvent::Connected {
                return true;
            }
        }
        false
    };
    let both = async { connected(a_ev).await && connected(b_ev).await };
    if !tokio::time::timeout(Duration::from_secs(10), both).await.unwrap_or(false) {
        return Err("the peers did not connect within 10 s".into());
    }
    let opened = async {
        while let Some(e) = chat_events.next().await {
            if e == DataEvent::Open {
                return true;
            }
        }
        false
    };
    if !tokio::time::timeout(Duration::from_secs(10), opened).await.unwrap_or(false) {
        return Err("the data stream did not open within 10 s".into());
    }
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let data_counts = Arc::new(DataCounts::default());
    chat(chat_stream.clone(), until, data_counts.clone());
    let mut counts = Vec::new();
    for p in [&alice, &bob] {
        for (track, kind) in [(&p.audio, Kind::Audio), (&p.video, Kind::Video)] {
            let c = Arc::new(Counts::default());
            counts.push((p.name, kind.as_str(), TrackCounts { sent: true, counts: c.clone() }));
            send(track.clone(), kind, until, c);
        }
    }
    // Received tracks appear as the remote description announced them.
    for p in [&alice, &bob] {
        for s in p.conn.remote_streams() {
            for t in s.tracks() {
                let c = Arc::new(Counts::default());
                counts.push((p.name, t.kind().as_str(), TrackCounts { sent: false, counts: c.clone() }));
                receive(t.clone(), t.kind(), c);
            }
        }
    }
    let mut last = [Octets::default(); 2];
    let mut at = Instant::now();
    while at + Duration::from_secs(1) <= until {
        tokio::time::sleep_until((at + Duration::from_secs(1)).into()).await;
        let secs = at.elapsed().as_secs_f64();
        at = Instant::now();
        for (p, last) in [&alice, &bob].into_iter().zip(&mut last) {
            status(t0, p, last, secs);
        }
    }
    tokio::time::sleep_until((until + Duration::from_millis(300)).into()).await;
    summary([&alice, &bob], &counts, &data_counts);
    if let Some(r) = &relay {
        println!(
            "relay: {} datagrams forwarded, {} dropped",
            r.forwarded.load(Ordering::Relaxed),
            r.dropped.load(Ordering::Relaxed)
        );
    }
    alice.conn.close();
    bob.conn.close();
    Ok(())
}
