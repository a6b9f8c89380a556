//! Time to Connected on 127.0.0.1: rtc-ice ↔ rtc-ice (`IceSocket`s in one
//! process; regular nomination with nothing signaled, so RFC 8445's 50 ms
//! Ta, and with both sides' `ice-pacing` of 5 ms exchanged as rtc-proto
//! signals it; aggressive nomination) and rtc-ice ↔ aioice 0.13.0 (conformance/peers/aioice_peer.py in
//! a child process; the clock starts when both descriptions are exchanged
//! and stops when the rtc side reports Connected).
//!
//! It also prints the heap allocations per application datagram through
//! `IceSocket` once warm (allocation-counter).
//!
//! Run: `cd benches && cargo bench --bench ice_connect`
//! (aioice from `../.venv` as installed by scripts/install-peers.sh, or
//! `RTC_PYTHON`).

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use rtc_candidate::Candidate;
use rtc_ice::{AgentConfig, Credentials, Event, IceSocket, Nomination, Role, SocketConfig};

fn bind(role: Role, nomination: Nomination) -> SocketConfig {
    let agent = AgentConfig { role, nomination, ..AgentConfig::default() };
    SocketConfig { bind: vec!["127.0.0.1:0".parse().expect("addr")], ..SocketConfig::loopback(agent) }
}

async fn connected(s: &mut IceSocket) {
    while let Some(e) = s.next_event().await {
        if e == Event::Connected {
            return;
        }
    }
    panic!("no Connected");
}

/// Two rtc-ice sockets; with `pacing`, each is told the Ta the other
/// proposed (RFC 8839 `ice-pacing`, as rtc-proto passes it on), else each
/// counts the other as proposing nothing (50 ms).
async fn rtc_rtc(nomination: Nomination, pacing: Option<Duration>) -> Duration {
    let mut a = IceSocket::bind(bind(Role::Controlling, nomination)).await.expect("bind");
    let mut b = IceSocket::bind(bind(Role::Controlled, nomination)).await.expect("bind");
    let t0 = Instant::now();
    a.set_remote_pacing(pacing).expect("pacing");
    b.set_remote_pacing(pacing).expect("pacing");
    a.set_remote_credentials(b.local_credentials()).expect("creds");
    b.set_remote_credentials(a.local_credentials()).expect("creds");
    for c in b.local_candidates() {
        a.add_remote_candidate(&c).expect("cand");
    }
    for c in a.local_candidates() {
        b.add_remote_candidate(&c).expect("cand");
    }
    a.end_of_remote_candidates();
    b.end_of_remote_candidates();
    tokio::join!(connected(&mut a), connected(&mut b));
    t0.elapsed()
}

fn python() -> Option<PathBuf> {
    std::env::var_os("RTC_PYTHON").map(PathBuf::from).or_else(|| {
        let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python"));
        p.exists().then_some(p)
    })
}

/// One connection between an rtc-ice socket (`ours`) and a fresh aioice
/// process in the other role; the time from description exchange to our
/// Connected.
async fn rtc_aioice(py: &PathBuf, ours: Role) -> Duration {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../conformance/peers/aioice_peer.py");
    let theirs = if ours == Role::Controlling { "controlled" } else { "controlling" };
    let mut child = Command::new(py)
        .args([script, "--role", theirs, "--bind", "127.0.0.1", "--mode", "echo", "--count", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn aioice peer");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("aioice description");
    let desc: serde_json::Value = serde_json::from_str(&line).expect("json");
    let mut s = IceSocket::bind(bind(ours, Nomination::Regular)).await.expect("bind");
    let creds = s.local_credentials();
    let cands: Vec<String> = s.local_candidates().iter().map(|c| c.to_string()).collect();
    let mine = serde_json::json!({"ufrag": creds.ufrag, "pwd": creds.pwd, "candidates": cands});
    let t0 = Instant::now();
    let stdin = child.stdin.as_mut().expect("stdin");
    writeln!(stdin, "{mine}").expect("write");
    stdin.flush().expect("flush");
    let ufrag = desc["ufrag"].as_str().expect("ufrag").to_owned();
    let pwd = desc["pwd"].as_str().expect("pwd").to_owned();
    s.set_remote_credentials(Credentials { ufrag, pwd }).expect("creds");
    for c in desc["candidates"].as_array().expect("candidates") {
        let _ = s.add_remote_candidate(&Candidate::parse(c.as_str().expect("line")).expect("candidate"));
    }
    s.end_of_remote_candidates();
    connected(&mut s).await;
    let t = t0.elapsed();
    // Let aioice finish its side before it is reaped.
    let _ = tokio::time::timeout(Duration::from_secs(5), tokio::task::spawn_blocking(move || child.wait())).await;
    t
}

/// Heap allocations per application datagram once warm: `a` sends, `b`
/// receives and echoes, `a` receives. Everything runs on this thread (a
/// current-thread runtime), so the count covers the sockets' tasks too.
fn allocations_per_datagram(rt: &tokio::runtime::Runtime) -> f64 {
    let (mut a, mut b) = rt.block_on(async {
        let mut a = IceSocket::bind(bind(Role::Controlling, Nomination::Aggressive)).await.expect("bind");
        let mut b = IceSocket::bind(bind(Role::Controlled, Nomination::Aggressive)).await.expect("bind");
        a.set_remote_credentials(b.local_credentials()).expect("creds");
        b.set_remote_credentials(a.local_credentials()).expect("creds");
        for c in b.local_candidates() {
            a.add_remote_candidate(&c).expect("cand");
        }
        for c in a.local_candidates() {
            b.add_remote_candidate(&c).expect("cand");
        }
        tokio::join!(connected(&mut a), connected(&mut b));
        (a, b)
    });
    let payload = [0x80u8; 1200];
    let mut echoes = |n: u32| {
        rt.block_on(async {
            for _ in 0..n {
                a.send(rtc_candidate::Component::RTP, &payload).await.expect("send");
                let d = b.recv().await.expect("recv");
                b.send(d.component(), &d).await.expect("echo");
                drop(d);
                let back = a.recv().await.expect("recv");
                assert_eq!(back.len(), payload.len());
            }
        })
    };
    echoes(200);
    const N: u32 = 2000;
    let info = allocation_counter::measure(|| echoes(N));
    info.count_total as f64 / f64::from(2 * N)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    println!(
        "ice: heap allocations per application datagram through IceSocket (send + receive, warm): {:.3}",
        allocations_per_datagram(&rt)
    );
    let mut g = c.benchmark_group("ice_connect_loopback");
    g.sample_size(20).sampling_mode(criterion::SamplingMode::Flat).measurement_time(Duration::from_secs(3));
    let five = Some(Duration::from_millis(5));
    for (name, nomination, pacing) in [
        ("rtc-rtc/regular", Nomination::Regular, None),
        ("rtc-rtc/regular/ice-pacing-5ms", Nomination::Regular, five),
        ("rtc-rtc/aggressive", Nomination::Aggressive, None),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut t = Duration::ZERO;
                    for _ in 0..iters {
                        t += rtc_rtc(nomination, pacing).await;
                    }
                    t
                })
            })
        });
    }
    match python() {
        Some(py) => {
            g.sample_size(10);
            for (name, role) in
                [("rtc-controlling/aioice", Role::Controlling), ("aioice-controlling/rtc", Role::Controlled)]
            {
                g.bench_function(name, |b| {
                    b.iter_custom(|iters| {
                        rt.block_on(async {
                            let mut t = Duration::ZERO;
                            for _ in 0..iters {
                                t += rtc_aioice(&py, role).await;
                            }
                            t
                        })
                    })
                });
            }
        }
        None => eprintln!("ice_connect: no ../.venv/bin/python (run scripts/install-peers.sh); aioice cases not run"),
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
