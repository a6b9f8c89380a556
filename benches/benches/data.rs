//! Data-channel throughput on loopback and CPU per MB: rtc-proto side by
//! side with str0m 0.25 and aiortc 1.16 in one run.
//!
//! - **rtc-proto**: two `Endpoint`s, one connection each, data only (no
//!   media), keyed by DTLS (descriptions exchanged without `keys`), full
//!   ICE with one host candidate each. Datagrams go straight from one
//!   endpoint's `poll_transmit` buffer into the other's `handle_datagram`,
//!   in one thread, no sockets; time is the real `Instant::now()`.
//! - **str0m**: two `Rtc`s wired the same way (full ICE, host candidates,
//!   as in the `call` bench), each datagram handed over as `Input::Receive`.
//! - **aiortc**: `peers/aiortc_data.py` in a child process: two
//!   `RTCPeerConnection`s in one Python process over UDP on 127.0.0.1.
//!
//! One reliable, ordered stream (channel) opened in band (DCEP) by the
//! sender. The sender writes `RTC_DATA_MB` MiB (default 32) as binary
//! messages of 16 KiB, then of 1 KiB; each message carries its index at
//! both ends and the receiver checks every message (length, index, in
//! order), so nothing is timed that did not arrive whole. The sender writes
//! until its stack refuses (rtc-proto: `Error::LimitReached` at its 16 MiB
//! data buffer; str0m: `write` returns false at its 128 KiB buffer; aiortc:
//! `bufferedAmount` above 1 MiB, resumed by `bufferedamountlow`) and then
//! drives both ends; each stack keeps its default MTU and buffer sizes.
//!
//! Figures: wall time from the first write to the last message read, as
//! MB/s (MiB, 2^20 octets), and process CPU time per MiB
//! (`CLOCK_PROCESS_CPUTIME_ID`; Python: `time.process_time()`). For the two
//! Rust stacks one thread does both ends, so CPU ≈ wall time; aiortc's
//! figure includes its event loop and the kernel's UDP work. The Rust
//! stacks run `RTC_DATA_ROUNDS` (default 5) alternating rounds per message
//! size and report the median round; aiortc runs once per size.
//! Allocations per message (both ends, steady state) are counted with
//! allocation-counter in a separate round.
//!
//! Run: `cd benches && CARGO_TARGET_DIR=/work/target-bench cargo bench --bench data`
//! (`RTC_DATA_MB=N`, `RTC_DATA_ROUNDS=R`; `RTC_DATA_ONLY=rtc-proto|str0m|aiortc`
//! runs one stack alone, for profiling; `RTC_DATA_STR0M_BUFFER=N` sets
//! str0m's send buffer to N octets instead of its default 128 KiB and
//! `RTC_DATA_RTC_BUFFER=N` rtc-proto's (`Limits::data_buffer`, 16 MiB);
//! `RTC_PYTHON` names the Python with aiortc, default `../.venv/bin/python`). After the table, criterion
//! measures one 4 MiB transfer per iteration for the two Rust stacks
//! (`data/16KiB`, `data/1KiB`; pass a filter such as `-- data/1KiB` to run
//! one group, or `-- nothing` to skip criterion).

use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, Throughput};
use rtc_candidate::Component;
use rtc_proto::{
    ConnHandle, Connection, ConnectionConfig, ConnectionDescription, DataEvent, DataStreamDescription, DataStreamId,
    Direction, Endpoint, Error, Event, MIN_TRANSMIT_BUFFER, SocketConfig, SocketId, SocketOptions,
};

const MIB: usize = 1 << 20;
/// The message sizes measured.
const SIZES: [usize; 2] = [16 * 1024, 1024];
/// Octets per transfer in criterion's iterations.
const CRITERION_BYTES: usize = 4 * MIB;

const A: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 5000);
const B: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 5000);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Process CPU time.
fn cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec to write into.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(r, 0, "clock_gettime");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Writes message `i` of `len` octets into `out`: fixed pseudo-random
/// octets with `i` in the first and the last four.
fn message(i: u32, len: usize, out: &mut Vec<u8>) {
    static TEMPLATE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let t = TEMPLATE
        .get_or_init(|| (0..64 * 1024u32).map(|k| (k.wrapping_mul(2_654_435_761) >> 24) as u8).collect::<Vec<u8>>());
    out.clear();
    out.extend_from_slice(&t[..len]);
    out[..4].copy_from_slice(&i.to_be_bytes());
    out[len - 4..].copy_from_slice(&i.to_be_bytes());
}

/// What the receiver saw of the current transfer.
#[derive(Default)]
struct Seen {
    /// Messages received in this transfer.
    messages: u32,
    /// Index of the next message expected, over all transfers.
    next: u32,
    len: usize,
}

impl Seen {
    fn check(&mut self, binary: bool, data: &[u8]) {
        assert!(binary, "binary message");
        assert_eq!(data.len(), self.len, "message {} length", self.next);
        let head = u32::from_be_bytes(data[..4].try_into().expect("4 octets"));
        let tail = u32::from_be_bytes(data[data.len() - 4..].try_into().expect("4 octets"));
        assert_eq!((head, tail), (self.next, self.next), "messages arrive whole, in order, none lost");
        self.next = self.next.wrapping_add(1);
        self.messages += 1;
    }
}

/// A connected pair with one open stream from A to B.
trait Pair {
    /// Sends `count` messages of `len` octets from A to B and drives both
    /// ends until B has read them all.
    fn transfer(&mut self, len: usize, count: u32);
    /// Octets of the largest datagram A sent.
    fn datagram_len(&self) -> usize;
    /// Datagrams A sent.
    fn datagrams(&self) -> u64;
}

// ---------------------------------------------------------------- rtc-proto

struct Ours {
    a: Endpoint,
    b: Endpoint,
    a_socket: SocketId,
    b_socket: SocketId,
    a_conn: ConnHandle,
    stream: DataStreamId,
    /// B's side of the stream.
    b_stream: Option<DataStreamId>,
    a_open: bool,
    buf: Vec<u8>,
    msg: Vec<u8>,
    rx: Vec<u8>,
    seen: Seen,
    next: u32,
    max_len: usize,
    datagrams: u64,
}

fn wallclock() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

impl Ours {
    fn new() -> Self {
        let now = Instant::now();
        let mut a = Endpoint::new();
        let mut b = Endpoint::new();
        let cert = || rtc_dtls::Certificate::generate().expect("certificate");
        let a_socket =
            a.add_socket(SocketConfig::new("a", vec![(Component::RTP, A)], SocketOptions::default(), cert()));
        let b_socket =
            b.add_socket(SocketConfig::new("b", vec![(Component::RTP, B)], SocketOptions::default(), cert()));
        let config = || {
            let mut c = ConnectionConfig::new(None, None);
            if let Some(n) = std::env::var("RTC_DATA_RTC_BUFFER").ok().and_then(|v| v.parse().ok()) {
                c.limits.data_buffer = n;
            }
            c
        };
        let a_conn = a.insert(Connection::new(config(), now, wallclock()).expect("connection"));
        a.add_socket_to(now, a_conn, a_socket).expect("socket");
        let b_conn = b.insert(Connection::new(config(), now, wallclock()).expect("connection"));
        b.add_socket_to(now, b_conn, b_socket).expect("socket");
        let stream = a
            .connection_mut(a_conn)
            .expect("conn")
            .open_data_stream(now, DataStreamDescription::new("bench"))
            .expect("data stream");
        // DTLS keying: descriptions without keys, as JSON.
        let describe = |e: &Endpoint, h: ConnHandle| {
            let mut d = e.connection(h).expect("conn").description(Direction::Local).expect("description");
            d.keys.clear();
            ConnectionDescription::from_json(&d.to_json()).expect("json")
        };
        let d = describe(&a, a_conn);
        b.connection_mut(b_conn).expect("conn").set_description(now, d, Direction::Remote).expect("remote");
        let d = describe(&b, b_conn);
        a.connection_mut(a_conn).expect("conn").set_description(now, d, Direction::Remote).expect("remote");
        let mut o = Ours {
            a,
            b,
            a_socket,
            b_socket,
            a_conn,
            stream,
            b_stream: None,
            a_open: false,
            buf: vec![0; MIN_TRANSMIT_BUFFER],
            msg: Vec::new(),
            rx: Vec::new(),
            seen: Seen::default(),
            next: 0,
            max_len: 0,
            datagrams: 0,
        };
        let start = Instant::now();
        while !(o.a_open && o.b_stream.is_some()) {
            assert!(start.elapsed() < Duration::from_secs(10), "rtc-proto: stream open within 10 s");
            o.timers();
            o.flush();
        }
        o
    }

    fn timers(&mut self) {
        let now = Instant::now();
        if self.a.poll_timeout().is_some_and(|t| t <= now) {
            self.a.handle_timeout(now);
        }
        if self.b.poll_timeout().is_some_and(|t| t <= now) {
            self.b.handle_timeout(now);
        }
    }

    /// Moves datagrams both ways, straight from the sender's buffer into
    /// the other endpoint, until both are quiet; B's messages are read and
    /// checked as they come.
    fn flush(&mut self) {
        let now = Instant::now();
        loop {
            let mut moved = false;
            while let Some((_, t)) = self.a.poll_transmit(now, &mut self.buf) {
                moved = true;
                self.datagrams += 1;
                self.max_len = self.max_len.max(t.len);
                self.b.handle_datagram(now, self.b_socket, t.destination, t.source, &mut self.buf[..t.len]);
            }
            while let Some((_, e)) = self.a.poll_event() {
                if let Event::Data { stream, event: DataEvent::Open } = e {
                    self.a_open |= stream == self.stream;
                }
            }
            while let Some((_, t)) = self.b.poll_transmit(now, &mut self.buf) {
                moved = true;
                self.a.handle_datagram(now, self.a_socket, t.destination, t.source, &mut self.buf[..t.len]);
            }
            while let Some((_, e)) = self.b.poll_event() {
                if let Event::Data { stream, event: DataEvent::Incoming } = e {
                    self.b_stream = Some(stream);
                }
            }
            while let Some((_, m)) = self.b.poll_data(&mut self.rx) {
                assert_eq!(Some(m.stream), self.b_stream, "on the stream A opened");
                self.seen.check(m.binary, &self.rx);
            }
            if !moved {
                break;
            }
        }
    }
}

impl Pair for Ours {
    fn transfer(&mut self, len: usize, count: u32) {
        self.seen.messages = 0;
        self.seen.len = len;
        let mut sent = 0;
        while self.seen.messages < count {
            let now = Instant::now();
            {
                let mut c = self.a.connection_mut(self.a_conn).expect("conn");
                while sent < count {
                    message(self.next, len, &mut self.msg);
                    match c.send_data(now, self.stream, &self.msg, true) {
                        Ok(()) => {
                            sent += 1;
                            self.next = self.next.wrapping_add(1);
                        }
                        Err(Error::LimitReached(_)) => break,
                        Err(e) => panic!("rtc-proto send_data: {e}"),
                    }
                }
            }
            self.flush();
            self.timers();
        }
    }
    fn datagram_len(&self) -> usize {
        self.max_len
    }
    fn datagrams(&self) -> u64 {
        self.datagrams
    }
}

// -------------------------------------------------------------------- str0m

mod theirs {
    use std::collections::VecDeque;

    use super::*;
    use str0m::change::{SdpAnswer, SdpOffer};
    use str0m::channel::ChannelId;
    use str0m::net::{Protocol, Receive};
    use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

    pub(super) struct Theirs {
        a: Rtc,
        b: Rtc,
        a_next: Instant,
        b_next: Instant,
        channel: ChannelId,
        a_open: bool,
        b_open: bool,
        queue: VecDeque<(bool, str0m::net::Transmit)>,
        msg: Vec<u8>,
        seen: Seen,
        next: u32,
        max_len: usize,
        datagrams: u64,
    }

    impl Theirs {
        pub(super) fn new() -> Self {
            str0m::crypto::from_feature_flags().install_process_default();
            let now = Instant::now();
            let config = || match std::env::var("RTC_DATA_STR0M_BUFFER").ok().and_then(|v| v.parse().ok()) {
                Some(n) => RtcConfig::new().set_sctp_max_buffered_amount(n),
                None => RtcConfig::new(),
            };
            let mut a = config().build(now);
            let mut b = config().build(now);
            a.add_local_candidate(Candidate::host(super::A, "udp").expect("candidate"));
            b.add_local_candidate(Candidate::host(super::B, "udp").expect("candidate"));
            let mut change = a.sdp_api();
            let channel = change.add_channel("bench".into());
            let (offer, pending) = change.apply().expect("offer");
            let offer = SdpOffer::from_sdp_string(&offer.to_sdp_string()).expect("sdp");
            let answer = b.sdp_api().accept_offer(offer).expect("answer");
            let answer = SdpAnswer::from_sdp_string(&answer.to_sdp_string()).expect("sdp");
            a.sdp_api().accept_answer(pending, answer).expect("accept");
            let mut t = Theirs {
                a,
                b,
                a_next: now,
                b_next: now,
                channel,
                a_open: false,
                b_open: false,
                queue: VecDeque::new(),
                msg: Vec::new(),
                seen: Seen::default(),
                next: 0,
                max_len: 0,
                datagrams: 0,
            };
            t.drain(true);
            t.drain(false);
            let start = Instant::now();
            while !(t.a_open && t.b_open) {
                assert!(start.elapsed() < Duration::from_secs(10), "str0m: channel open within 10 s");
                t.timers();
                t.flush();
            }
            t
        }

        /// Polls one side to its timeout; its datagrams go on the queue,
        /// B's messages are checked.
        fn drain(&mut self, from_a: bool) {
            loop {
                let rtc = if from_a { &mut self.a } else { &mut self.b };
                match rtc.poll_output().expect("poll_output") {
                    Output::Timeout(t) => {
                        if from_a {
                            self.a_next = t;
                        } else {
                            self.b_next = t;
                        }
                        return;
                    }
                    Output::Transmit(t) => {
                        if from_a {
                            self.datagrams += 1;
                            self.max_len = self.max_len.max(t.contents.len());
                        }
                        self.queue.push_back((from_a, t));
                    }
                    Output::Event(Event::ChannelOpen(id, _)) => {
                        if from_a {
                            self.a_open |= id == self.channel;
                        } else {
                            self.b_open = true;
                        }
                    }
                    Output::Event(Event::ChannelData(d)) => {
                        assert!(!from_a, "data flows from A to B");
                        self.seen.check(d.binary, &d.data);
                    }
                    Output::Event(_) => {}
                }
            }
        }

        fn flush(&mut self) {
            let now = Instant::now();
            while let Some((from_a, t)) = self.queue.pop_front() {
                let r = Receive::new(Protocol::Udp, t.source, t.destination, &t.contents).expect("datagram");
                let rtc = if from_a { &mut self.b } else { &mut self.a };
                rtc.handle_input(Input::Receive(now, r)).expect("handle_input");
                drop(t);
                self.drain(!from_a);
            }
        }

        fn timers(&mut self) {
            let now = Instant::now();
            if self.a_next <= now {
                self.a.handle_input(Input::Timeout(now)).expect("timeout");
                self.drain(true);
            }
            if self.b_next <= now {
                self.b.handle_input(Input::Timeout(now)).expect("timeout");
                self.drain(false);
            }
        }
    }

    impl Pair for Theirs {
        fn transfer(&mut self, len: usize, count: u32) {
            self.seen.messages = 0;
            self.seen.len = len;
            let mut sent = 0;
            while self.seen.messages < count {
                {
                    let mut ch = self.a.channel(self.channel).expect("channel");
                    while sent < count {
                        message(self.next, len, &mut self.msg);
                        if !ch.write(true, &self.msg).expect("write") {
                            break;
                        }
                        sent += 1;
                        self.next = self.next.wrapping_add(1);
                    }
                }
                self.drain(true);
                self.flush();
                self.timers();
                self.flush();
            }
        }
        fn datagram_len(&self) -> usize {
            self.max_len
        }
        fn datagrams(&self) -> u64 {
            self.datagrams
        }
    }
}

// ------------------------------------------------------------------- aiortc

fn python() -> Option<PathBuf> {
    std::env::var_os("RTC_PYTHON").map(PathBuf::from).or_else(|| {
        let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python"));
        p.exists().then_some(p)
    })
}

/// One aiortc run: (message size, seconds, CPU seconds) per size, or why
/// not.
fn aiortc(py: &PathBuf, mb: usize) -> Result<Vec<(usize, f64, f64)>, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/aiortc_data.py");
    let sizes: Vec<String> = SIZES.iter().map(ToString::to_string).collect();
    let mut child = Command::new(py)
        .arg(script)
        .arg("--mb")
        .arg(mb.to_string())
        .arg("--sizes")
        .arg(sizes.join(","))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", py.display()))?;
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut rows = Vec::new();
    for line in out.lines() {
        let line = line.map_err(|e| e.to_string())?;
        let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| format!("{e}: {line}"))?;
        let get = |k: &str| v.get(k).and_then(serde_json::Value::as_f64).ok_or(format!("no {k} in {line}"));
        rows.push((get("size")? as usize, get("seconds")?, get("cpu")?));
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("aiortc_data.py exited with {status}"));
    }
    Ok(rows)
}

// ------------------------------------------------------------------- runner

/// One measured transfer: wall and CPU seconds.
#[derive(Clone, Copy)]
struct Run {
    wall: f64,
    cpu: f64,
}

fn timed(p: &mut dyn Pair, len: usize, count: u32) -> Run {
    let (t, c) = (Instant::now(), cpu_time());
    p.transfer(len, count);
    Run { wall: t.elapsed().as_secs_f64(), cpu: (cpu_time() - c).as_secs_f64() }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct Row {
    stack: &'static str,
    size: usize,
    wall: f64,
    cpu: f64,
    allocs: Option<f64>,
}

fn main() {
    let mb = env_usize("RTC_DATA_MB", 32).max(1);
    let rounds = env_usize("RTC_DATA_ROUNDS", 5).max(1);
    let only = std::env::var("RTC_DATA_ONLY").ok();
    let run = |s: &str| only.as_deref().is_none_or(|o| o == s);
    let bytes = mb * MIB;

    let mut ours = run("rtc-proto").then(Ours::new);
    let mut theirs = run("str0m").then(theirs::Theirs::new);
    let mut rows = Vec::new();
    for len in SIZES {
        let count = (bytes / len) as u32;
        // Warm up (a first transfer grows the congestion windows and the
        // buffers) and count allocations per message in steady state.
        let warm = (4 * MIB / len) as u32;
        let mut allocs = [None, None];
        for (k, p) in [ours.as_mut().map(|p| p as &mut dyn Pair), theirs.as_mut().map(|p| p as &mut dyn Pair)]
            .into_iter()
            .enumerate()
        {
            let Some(p) = p else { continue };
            p.transfer(len, warm);
            let m = allocation_counter::measure(|| p.transfer(len, warm));
            allocs[k] = Some(m.count_total as f64 / f64::from(warm));
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            if let Some(p) = ours.as_mut() {
                a.push(timed(p, len, count));
            }
            if let Some(p) = theirs.as_mut() {
                b.push(timed(p, len, count));
            }
        }
        for (stack, runs, allocs) in [("rtc-proto", a, allocs[0]), ("str0m 0.25", b, allocs[1])] {
            if runs.is_empty() {
                continue;
            }
            let wall = median(runs.iter().map(|r| r.wall).collect());
            let cpu = median(runs.iter().map(|r| r.cpu).collect());
            let all: Vec<String> = runs.iter().map(|r| format!("{:.0}", mb as f64 / r.wall)).collect();
            println!("data {stack} {len}-octet messages: MB/s per round {}", all.join(" "));
            rows.push(Row { stack, size: len, wall, cpu, allocs });
        }
    }
    if let Some(p) = ours.as_ref() {
        println!(
            "data rtc-proto: largest datagram {} octets, {} datagrams from A in all",
            p.datagram_len(),
            p.datagrams()
        );
    }
    if let Some(p) = theirs.as_ref() {
        println!("data str0m: largest datagram {} octets, {} datagrams from A in all", p.datagram_len(), p.datagrams());
    }
    if run("aiortc") {
        match python() {
            Some(py) => match aiortc(&py, mb) {
                Ok(r) => {
                    for (size, wall, cpu) in r {
                        rows.push(Row { stack: "aiortc 1.16", size, wall, cpu, allocs: None });
                    }
                }
                Err(e) => eprintln!("data: aiortc not measured: {e}"),
            },
            None => eprintln!("data: no ../.venv/bin/python (run scripts/install-peers.sh); aiortc not measured"),
        }
    }

    println!();
    println!("data: {mb} MiB per transfer, one reliable ordered stream, median of {rounds} rounds (aiortc: one)");
    println!(
        "| stack | message | MB/s | CPU ms per MB | throughput vs rtc-proto | CPU per MB vs rtc-proto | allocations per message |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for len in SIZES {
        let base = rows.iter().find(|r| r.size == len && r.stack == "rtc-proto").map(|r| (r.wall, r.cpu));
        for r in rows.iter().filter(|r| r.size == len) {
            let (tp, cpu_ms) = (mb as f64 / r.wall, r.cpu * 1e3 / mb as f64);
            let (rt, rc) = match base {
                Some((w, c)) => (format!("{:.2}", w / r.wall), format!("{:.2}", r.cpu / c)),
                None => (String::new(), String::new()),
            };
            let allocs = r.allocs.map_or(String::new(), |a| format!("{a:.1}"));
            println!("| {} | {} KiB | {tp:.1} | {cpu_ms:.2} | {rt} | {rc} | {allocs} |", r.stack, len / 1024);
        }
    }
    println!();

    // Criterion: one transfer of CRITERION_BYTES per iteration.
    let mut c = Criterion::default().configure_from_args().sample_size(10);
    for len in SIZES {
        let count = (CRITERION_BYTES / len) as u32;
        let mut g = c.benchmark_group(format!("data/{}KiB", len / 1024));
        g.throughput(Throughput::Bytes((count as usize * len) as u64));
        if let Some(p) = ours.as_mut() {
            g.bench_function("rtc-proto", |b| b.iter(|| p.transfer(black_box(len), count)));
        }
        if let Some(p) = theirs.as_mut() {
            g.bench_function("str0m", |b| b.iter(|| p.transfer(black_box(len), count)));
        }
        g.finish();
    }
    c.final_summary();
}
