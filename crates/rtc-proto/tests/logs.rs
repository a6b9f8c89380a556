//! Logs (`tracing`), read as a person would read them: a failed call says
//! why at `info` or `warn`, in the span of the connection it concerns
//! (`conn{id=<context-id>}`), and a working call's `debug` logs tell its
//! state changes without a line per packet. Each test captures what a
//! `tracing-subscriber` fmt layer writes, in simulated time (tests/sim).

mod sim;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rtc_codecs::Kind;
use rtc_proto::{
    ConnHandle, ConnectionConfig, ConnectionDescription, SocketEvent, SocketOptions, StreamDescription,
    TrackDescription, TrackId,
};
use sim::Net;
use tracing::Level;
use tracing_subscriber::fmt::MakeWriter;

/// Everything the fmt layer wrote, one log line a line.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("capture").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Capture {
    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().expect("capture")).lines().map(str::to_owned).collect()
    }

    fn clear(&self) {
        self.0.lock().expect("capture").clear();
    }
}

/// Runs `f` with a subscriber that writes every event at `level` or above
/// into a fresh capture (plain text: level, spans with their fields,
/// target, message, fields), and gives the capture back.
fn logged(level: Level, f: impl FnOnce(&Capture)) -> Capture {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(capture.clone())
        .with_max_level(level)
        .with_ansi(false)
        .without_time()
        .finish();
    tracing::subscriber::with_default(subscriber, || f(&capture));
    capture
}

struct Peer {
    host: usize,
    conn: ConnHandle,
    tracks: Vec<TrackId>,
}

/// A host with one socket and a connection sending audio and video.
fn peer(net: &mut Net, name: &'static str, ip: [u8; 4]) -> Peer {
    let host = net.host(name, ip, SocketOptions::default());
    let conn = net.connect(host, ConnectionConfig::new(None, None), 500 + host as u64);
    let now = net.now;
    let tracks = vec![TrackDescription::new(Kind::Audio), TrackDescription::new(Kind::Video)];
    let stream = StreamDescription { stream_id: String::new(), tracks };
    let (_, tracks) = net.conn_mut(host, conn).send_stream(now, stream).expect("send stream");
    Peer { host, conn, tracks }
}

/// Alice and Bob, each on a host of its own, not yet signaled.
fn alice_and_bob(seed: u64) -> (Net, Peer, Peer) {
    let mut net = Net::new(seed);
    let a = peer(&mut net, "alice", [10, 0, 0, 1]);
    let b = peer(&mut net, "bob", [10, 0, 0, 2]);
    (net, a, b)
}

/// The span prefix of a connection's lines: `conn{id=<its context-id>`.
fn span_of(net: &Net, p: &Peer) -> String {
    format!("conn{{id={}", net.hosts[p.host].conn(p.conn).context_id())
}

/// Both peers send 50 audio frames a second and a 5-packet video frame
/// every 40 ms, for `frames` × 20 ms of simulated time; the packets sent.
fn media(net: &mut Net, peers: &[&Peer], frames: u32) -> usize {
    let video = vec![9u8; 5000];
    let mut packets = 0;
    for i in 0..frames {
        let now = net.now;
        for p in peers {
            let mut c = net.conn_mut(p.host, p.conn);
            packets += c.write_frame(now, p.tracks[0], &[7u8; 160], Duration::from_millis(20)).expect("audio");
            if i.is_multiple_of(2) {
                packets += c.write_frame(now, p.tracks[1], &video, Duration::from_millis(40)).expect("video");
            }
        }
        net.run_for(Duration::from_millis(20));
    }
    packets
}

fn connected(net: &mut Net, a: &Peer, b: &Peer) -> bool {
    net.run_until(Duration::from_secs(5), |n| n.connected(a.host, a.conn) && n.connected(b.host, b.conn))
}

/// DTLS with fingerprints that match neither certificate: the side that
/// finds out says so at `warn`, with both fingerprints, inside its
/// connection's and socket's spans; the socket then says media cannot flow.
#[test]
fn a_wrong_fingerprint_is_explained_at_warn_in_the_connection_span() {
    let mut spans = Vec::new();
    let capture = logged(Level::INFO, |_| {
        let (mut net, a, b) = alice_and_bob(3);
        spans = vec![span_of(&net, &a), span_of(&net, &b)];
        let wrong = format!("sha-256 {}", ["AB"; 32].join(":"));
        net.signal_with((a.host, a.conn), (b.host, b.conn), |d| {
            d.keys.clear();
            for s in &mut d.sockets {
                s.options.fingerprints = vec![wrong.clone()];
            }
        });
        let failed = |n: &Net, p: &Peer| n.hosts[p.host].socket_events().contains(&SocketEvent::Disconnected);
        assert!(net.run_until(Duration::from_secs(3), |n| failed(n, &a) || failed(n, &b)));
        net.run_for(Duration::from_secs(2));
    });
    let lines = capture.lines();
    let text = lines.join("\n");
    let mismatch: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("DTLS failed: the peer's certificate matches none of the signaled fingerprints"))
        .collect();
    assert!(!mismatch.is_empty(), "no line names the mismatch:\n{text}");
    for l in &mismatch {
        assert!(l.starts_with(" WARN ") || l.starts_with("WARN "), "{l}");
        assert!(spans.iter().any(|s| l.contains(s.as_str())), "not in a connection's span: {l}");
        assert!(l.contains(":socket{id=alice-s0}") || l.contains(":socket{id=bob-s0}"), "no socket span: {l}");
        assert!(l.contains(&format!("signaled=sha-256 {}", ["AB"; 32].join(":"))), "{l}");
        assert!(l.contains("peer=sha-256 "), "{l}");
    }
    assert!(text.contains("media cannot flow on this socket: SRTP is not keyed"), "{text}");
    // At info and above, a failure is a handful of lines, not a stream.
    assert!(lines.len() <= 10, "{} lines:\n{text}", lines.len());
}

/// A cut link: consent runs out on the selected pair, and the log says so
/// at `warn` with the pair's addresses and candidate types.
#[test]
fn lost_consent_is_explained_at_warn_with_the_pair() {
    let mut spans = Vec::new();
    let capture = logged(Level::INFO, |_| {
        let (mut net, a, b) = alice_and_bob(12);
        spans = vec![span_of(&net, &a), span_of(&net, &b)];
        net.signal((a.host, a.conn), (b.host, b.conn));
        assert!(connected(&mut net, &a, &b));
        media(&mut net, &[&a, &b], 5);
        net.cut = true;
        assert!(net.run_until(Duration::from_secs(60), |n| !n.connected(a.host, a.conn)));
    });
    let lines = capture.lines();
    let text = lines.join("\n");
    let lost: Vec<&String> = lines.iter().filter(|l| l.contains("ICE consent lost: no response for 30s")).collect();
    assert!(!lost.is_empty(), "{text}");
    for l in lost {
        assert!(l.contains("WARN"), "{l}");
        assert!(spans.iter().any(|s| l.contains(s.as_str())), "not in a connection's span: {l}");
        for field in ["local=10.0.0.", "local_type=host", "remote=10.0.0.", "remote_type=host", "component=1"] {
            assert!(l.contains(field), "no {field}: {l}");
        }
    }
}

/// No candidate pair ever succeeds (the link is cut from the start): once
/// every pair's checks ran out, the log says ICE has no path, and why.
#[test]
fn no_candidate_pair_is_explained_at_info() {
    let capture = logged(Level::INFO, |_| {
        let (mut net, a, b) = alice_and_bob(5);
        net.cut = true;
        net.signal((a.host, a.conn), (b.host, b.conn));
        net.run_for(Duration::from_secs(60));
        assert!(!net.connected(a.host, a.conn));
    });
    let text = capture.lines().join("\n");
    assert!(
        text.contains("INFO")
            && text.contains("ICE has no path yet: every one of the 1 candidate pairs checked failed")
            && text.contains("remote_candidates=1"),
        "{text}"
    );
}

/// A remote description this side cannot take is refused with its reason
/// at `warn`.
#[test]
fn a_refused_remote_description_is_explained_at_warn() {
    let capture = logged(Level::INFO, |_| {
        let (mut net, a, b) = alice_and_bob(6);
        let r = net.signal_one((a.host, a.conn), (b.host, b.conn), |d: &mut ConnectionDescription| {
            d.keys.clear();
            for s in &mut d.sockets {
                s.options.fingerprints.clear();
            }
        });
        assert!(r.is_err());
    });
    let text = capture.lines().join("\n");
    assert!(
        text.contains("WARN")
            && text.contains("remote description refused: ")
            && text.contains("neither SRTP keys nor a certificate fingerprint"),
        "{text}"
    );
}

/// A normal call at `debug`: its setup is told (ICE pairs with their
/// addresses and types, DTLS and the SRTP profile, the keying chosen, the
/// connection coming up, the tracks), and then media adds no lines: two
/// seconds of it log no more than one second does, however many packets
/// go by.
#[test]
fn a_working_call_logs_state_changes_not_packets() {
    let mut counts = Vec::new();
    let capture = logged(Level::DEBUG, |capture| {
        let (mut net, a, b) = alice_and_bob(1);
        net.signal_dtls((a.host, a.conn), (b.host, b.conn));
        assert!(connected(&mut net, &a, &b));
        // Media starts: each side's remote tracks come up with their first
        // packets (told once).
        media(&mut net, &[&a, &b], 10);
        let setup = capture.lines();
        for (what, wanted) in [
            ("the local candidate", "ICE local host candidate"),
            ("a pair that succeeded", "ICE pair succeeded local=10.0.0."),
            ("the selected pair", "ICE pair selected"),
            ("the DTLS handshake", "DTLS handshake start"),
            ("the SRTP profile", "DTLS connected: SRTP keyed"),
            ("the keying chosen", "remote description set keying=DTLS-SRTP dtls="),
            ("the connection up", "connected: every socket has ICE with consent and SRTP keys"),
            ("the tracks up", "track connected"),
            ("the remote tracks up", "direction=Remote"),
        ] {
            assert!(setup.iter().any(|l| l.contains(wanted)), "no line tells {what} ({wanted}):\n{}", setup.join("\n"));
        }
        assert!(setup.iter().all(|l| !l.contains("WARN") && !l.contains("ERROR")), "{}", setup.join("\n"));
        for frames in [50, 100] {
            capture.clear();
            let packets = media(&mut net, &[&a, &b], frames);
            counts.push((packets, capture.lines()));
        }
    });
    drop(capture);
    let [(p1, l1), (p2, l2)] = &counts[..] else { panic!("two runs") };
    assert!(*p2 >= 2 * p1 && *p1 >= 300, "{p1} and {p2} packets");
    assert!(l1.len() <= 5, "{} lines for 1 s of media:\n{}", l1.len(), l1.join("\n"));
    assert!(l2.len() <= l1.len() + 2, "1 s: {} lines, 2 s: {} lines:\n{}", l1.len(), l2.len(), l2.join("\n"));
}
