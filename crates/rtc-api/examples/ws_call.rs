//! A call between two processes that signal through a small WebSocket
//! server, all on 127.0.0.1.
//!
//! ```sh
//! # One command: starts the server, then two peer processes (this same
//! # binary), and prints what they print.
//! cargo run --release -p rtc-api --example ws_call
//! # Or by hand, in three terminals:
//! cargo run --release -p rtc-api --example ws_call -- server 127.0.0.1:8765
//! cargo run --release -p rtc-api --example ws_call -- peer ws://127.0.0.1:8765 alice
//! cargo run --release -p rtc-api --example ws_call -- peer ws://127.0.0.1:8765 bob
//! ```
//!
//! The server relays each text message to every other client and replays
//! earlier ones to a client that joins late. Peers send
//! `{"type":"options"|"description"|"candidate", "from": NAME, "body": …}`
//! with the seeds' JSON dictionaries as bodies.
//!
//! Logs go to stderr, filtered by `RUST_LOG` (`warn` by default; the peer
//! processes inherit it).

use std::error::Error;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rtc_api::{
    ConnectionDescription, ConnectionEvent, Direction, RtcConnection, RtcMediaStream, RtcMediaStreamTrack, RtcSocket,
    SocketEvent, SocketOptions, SocketServers, StreamDescription,
};
use rtc_candidate::Candidate;
use rtc_codecs::{Kind, Options};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, broadcast};
use tokio_tungstenite::tungstenite::Message;

#[path = "shared/logs.rs"]
mod logs;

type BoxError = Box<dyn Error + Send + Sync>;

/// Relays messages between clients, replaying history to late joiners.
async fn server(listener: TcpListener) -> Result<(), BoxError> {
    let (tx, _) = broadcast::channel::<(u64, String)>(1024);
    let history: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut next_id = 0u64;
    loop {
        let (tcp, _) = listener.accept().await?;
        next_id += 1;
        let id = next_id;
        let (tx, history) = (tx.clone(), history.clone());
        tokio::spawn(async move {
            let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else { return };
            let (mut sink, mut stream) = ws.split();
            let mut rx = tx.subscribe();
            let earlier = history.lock().await.clone();
            for m in earlier {
                if sink.send(Message::Text(m.into())).await.is_err() {
                    return;
                }
            }
            let forward = tokio::spawn(async move {
                while let Ok((from, m)) = rx.recv().await {
                    if from != id && sink.send(Message::Text(m.into())).await.is_err() {
                        break;
                    }
                }
            });
            while let Some(Ok(msg)) = stream.next().await {
                if let Message::Text(t) = msg {
                    let t = t.to_string();
                    history.lock().await.push(t.clone());
                    let _ = tx.send((id, t));
                }
            }
            forward.abort();
        });
    }
}

fn stamp(t0: Instant, name: &str) -> String {
    format!("[{:6.3}s] {name:5}", t0.elapsed().as_secs_f64())
}

async fn peer(url: &str, name: &str) -> Result<(), BoxError> {
    let t0 = Instant::now();
    let (ws, _) = tokio_tungstenite::connect_async(url).await?;
    let (mut sink, mut stream) = ws.split();
    let (out_tx, mut out_rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    tokio::spawn(async move {
        while let Some(v) = out_rx.recv().await {
            if sink.send(Message::Text(v.to_string().into())).await.is_err() {
                break;
            }
        }
    });

    let conn = RtcConnection::new(None, None)?;
    let socket = RtcSocket::new(SocketServers::loopback_v4(), SocketOptions::default()).await?;
    let mut events = conn.events();
    let mut socket_events = socket.events();
    let stream_out = RtcMediaStream::new(StreamDescription::default());
    let (audio, video) = (RtcMediaStreamTrack::of_kind(Kind::Audio), RtcMediaStreamTrack::of_kind(Kind::Video));
    stream_out.add_track(audio.clone())?;
    stream_out.add_track(video.clone())?;
    conn.send_stream(&stream_out, true)?;
    conn.add_socket(&socket)?;

    let from = name.to_owned();
    let tx = out_tx.clone();
    let n = name.to_owned();
    tokio::spawn(async move {
        while let Some(e) = socket_events.next().await {
            println!("{} socket event {}", stamp(t0, &n), serde_json::to_string(&e).unwrap_or_default());
            if let SocketEvent::Candidate { candidate } = e {
                let _ = tx.send(json!({"type": "candidate", "from": n, "body": candidate}));
            }
        }
    });
    let options = conn.options(Direction::Local).unwrap_or_default();
    out_tx.send(json!({"type": "options", "from": from, "body": options}))?;
    let desc = conn.description(Direction::Local).ok_or("no description")?;
    out_tx.send(json!({"type": "description", "from": from, "body": desc}))?;

    // Apply what the other peer signals.
    let (c2, s2, n2) = (conn.clone(), socket.clone(), name.to_owned());
    tokio::spawn(async move {
        while let Some(Ok(Message::Text(t))) = stream.next().await {
            let Ok(v) = serde_json::from_str::<Value>(&t) else { continue };
            if v["from"] == n2.as_str() {
                continue;
            }
            println!("{} <- {}", stamp(t0, &n2), v);
            let body = v["body"].to_string();
            let r: Result<(), BoxError> = match v["type"].as_str() {
                Some("options") => Options::from_json(&body)
                    .map_err(BoxError::from)
                    .and_then(|o| c2.set_options(o, Direction::Remote).map_err(BoxError::from)),
                Some("description") => ConnectionDescription::from_json(&body)
                    .and_then(|d| c2.set_description(d, Direction::Remote))
                    .map_err(BoxError::from),
                Some("candidate") => serde_json::from_str::<Candidate>(&body)
                    .map_err(BoxError::from)
                    .and_then(|c| s2.set_remote_candidate(&c).map_err(BoxError::from)),
                _ => Ok(()),
            };
            if let Err(e) = r {
                println!("{} refused: {e}", stamp(t0, &n2));
            }
        }
    });

    let wait = async {
        while let Some(e) = events.next().await {
            println!("{} event {}", stamp(t0, name), serde_json::to_string(&e).unwrap_or_default());
            if e == ConnectionEvent::Connected {
                return true;
            }
        }
        false
    };
    if !tokio::time::timeout(Duration::from_secs(10), wait).await.unwrap_or(false) {
        return Err("not connected within 10 s".into());
    }
    let end = Instant::now() + Duration::from_secs(3);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut i = 0u32;
    while Instant::now() < end {
        tick.tick().await;
        audio.write_frame(&[i as u8; 160], Duration::from_millis(20))?;
        if i.is_multiple_of(3) {
            let mut frame = vec![(i % 7) as u8; 4000];
            frame[0] = u8::from(!i.is_multiple_of(90)); // VP8 P bit
            video.write_frame(&frame, Duration::from_millis(60))?;
        }
        i += 1;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for s in conn.remote_streams() {
        for t in s.tracks() {
            let mut frames = 0;
            while t.try_read_frame().is_some() {
                frames += 1;
            }
            println!("{} received {frames} {} frames", stamp(t0, name), t.kind());
        }
    }
    for r in conn.stats() {
        println!("{} stats {}", stamp(t0, name), serde_json::to_string(&r).unwrap_or_default());
    }
    conn.close();
    Ok(())
}

/// Starts the server and two peer processes, and relays their output.
async fn all_in_one() -> Result<(), BoxError> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let url = format!("ws://{}", listener.local_addr()?);
    println!("signaling server on {url}");
    tokio::spawn(server(listener));
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for name in ["alice", "bob"] {
        let mut child = tokio::process::Command::new(&exe)
            .args(["peer", &url, name])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let out = child.stdout.take().ok_or("no stdout")?;
        tokio::spawn(async move {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                println!("{l}");
            }
        });
        children.push(child);
    }
    let mut ok = true;
    for mut c in children {
        let status = tokio::time::timeout(Duration::from_secs(30), c.wait()).await??;
        ok &= status.success();
    }
    if ok { Ok(()) } else { Err("a peer process failed".into()) }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    logs::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => all_in_one().await,
        ["server", addr] => {
            let addr: SocketAddr = addr.parse()?;
            if !addr.ip().is_loopback() {
                return Err("this example binds loopback addresses only".into());
            }
            server(TcpListener::bind(addr).await?).await
        }
        ["peer", url, name] => {
            let host = url.strip_prefix("ws://").unwrap_or_default();
            if !(host.starts_with("127.") || host.starts_with("localhost:") || host.starts_with("[::1]:")) {
                return Err("this example talks to loopback addresses only".into());
            }
            peer(url, name).await
        }
        _ => Err("usage: ws_call | ws_call server 127.0.0.1:PORT | ws_call peer ws://127.0.0.1:PORT NAME".into()),
    }
}
