//! Suite `ice`: rtc-ice against itself and against aioice 0.13.0 in both
//! roles over 127.0.0.1 and ::1 with data exchanged, server-reflexive
//! gathering against coturn on 127.0.0.1, and relays through coturn reached
//! over UDP, TCP and TLS. Each peer is a process speaking
//! the line protocol of `rtc-conformance peer ice`
//! (`conformance/peers/aioice_peer.py` for aioice). Loopback only.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::runner::{CaseResult, Context, Suite};

/// The suite.
pub const SUITE: Suite = Suite {
    name: "ice",
    about: "ICE: rtc-ice vs itself and aioice 0.13.0 (both roles, v4/v6), coturn srflx and relay (UDP, TCP, TLS), \
            calls behind NAT through coturn",
    run,
};

/// Datagrams pinged and echoed per case.
const COUNT: &str = "20";
/// Per-peer give-up time.
const PEER_TIMEOUT: &str = "20";
/// The harness's own limit per case.
const CASE_LIMIT: Duration = Duration::from_secs(30);

struct Peer {
    name: &'static str,
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
}

fn spawn(name: &'static str, mut cmd: Command) -> Result<Peer, String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{name}: spawn: {e}"))?;
    let out = child.stdout.take().ok_or("no stdout")?;
    let mut err = child.stderr.take().ok_or("no stderr")?;
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    Ok(Peer { name, child, lines, stderr })
}

/// What one peer reported.
#[derive(Debug, Default)]
struct Report {
    connected_ms: Option<u64>,
    active: Option<(String, String)>,
    done: bool,
    srflx: Vec<Value>,
    /// rtc's TURN allocations once gathered (`relay` lines).
    relays: Vec<Value>,
    /// rtc's connectivity and consent checks sent (its `done` line).
    requests_sent: Option<u64>,
}

impl Report {
    fn take(&mut self, v: &Value) {
        match v["event"].as_str() {
            Some("connected") => self.connected_ms = v["ms"].as_u64(),
            Some("activecandidate") => {
                self.active =
                    Some((v["local"].as_str().unwrap_or("").into(), v["remote"].as_str().unwrap_or("").into()))
            }
            Some("done") => {
                self.done = true;
                self.requests_sent = v["checks"].as_u64().zip(v["consent_checks"].as_u64()).map(|(a, b)| a + b);
            }
            Some("srflx") => self.srflx.push(v.clone()),
            Some("relay") => self.relays.push(v.clone()),
            _ => {}
        }
    }
}

/// Runs two peers against each other: exchanges descriptions, waits for
/// both to exit, and checks both connected, chose a pair and moved data.
fn run_pair(a: (&'static str, Command), b: (&'static str, Command)) -> Result<(Report, Report), String> {
    let mut peers = [spawn(a.0, a.1)?, spawn(b.0, b.1)?];
    let r = exchange(&mut peers);
    for p in &mut peers {
        let _ = p.child.kill();
        let _ = p.child.wait();
    }
    r
}

fn exchange(peers: &mut [Peer; 2]) -> Result<(Report, Report), String> {
    let start = Instant::now();
    let mut reports = [Report::default(), Report::default()];
    let mut descs = [String::new(), String::new()];
    for (i, p) in peers.iter_mut().enumerate() {
        loop {
            let Ok(line) = p.lines.recv_timeout(Duration::from_secs(15)) else {
                let name = p.name;
                return Err(format!("{name}: no description: {}", stderr_now(p)));
            };
            let v: Value = serde_json::from_str(&line).map_err(|e| format!("{}: bad line {line:?}: {e}", p.name))?;
            if v.get("ufrag").is_some() {
                descs[i] = line;
                break;
            }
            reports[i].take(&v);
        }
    }
    for (i, p) in peers.iter_mut().enumerate() {
        let stdin = p.child.stdin.as_mut().ok_or("no stdin")?;
        writeln!(stdin, "{}", descs[1 - i]).and_then(|_| stdin.flush()).map_err(|e| format!("{}: {e}", p.name))?;
    }
    let mut exited = [None, None];
    while exited.iter().any(Option::is_none) {
        if start.elapsed() > CASE_LIMIT {
            return Err(format!("case limit of {CASE_LIMIT:?} reached"));
        }
        for (i, p) in peers.iter_mut().enumerate() {
            while let Ok(line) = p.lines.try_recv() {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    reports[i].take(&v);
                }
            }
            if exited[i].is_none() {
                exited[i] = p.child.try_wait().map_err(|e| e.to_string())?;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for (i, p) in peers.iter_mut().enumerate() {
        // Lines written just before exiting.
        while let Ok(line) = p.lines.recv_timeout(Duration::from_millis(200)) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                reports[i].take(&v);
            }
        }
        let status = exited[i].ok_or("not exited")?;
        if !status.success() {
            let name = p.name;
            return Err(format!("{name} exited with {status}: {}", stderr_now(p)));
        }
    }
    let [ra, rb] = reports;
    for (p, r) in peers.iter().zip([&ra, &rb]) {
        if r.connected_ms.is_none() || r.active.is_none() || !r.done {
            return Err(format!("{}: incomplete report {r:?}", p.name));
        }
    }
    Ok((ra, rb))
}

fn stderr_now(p: &mut Peer) -> String {
    let _ = p.child.kill();
    let _ = p.child.wait();
    let h = std::mem::replace(&mut p.stderr, std::thread::spawn(String::new));
    h.join().unwrap_or_default().trim().to_string()
}

fn rtc(ctx: &Context, role: &str, bind: &str, mode: &str, extra: &[&str]) -> Result<Command, String> {
    let exe = ctx.runner_exe.as_ref().ok_or("no runner executable")?;
    let mut c = Command::new(exe);
    c.args([
        "peer",
        "ice",
        "--role",
        role,
        "--bind",
        bind,
        "--mode",
        mode,
        "--count",
        COUNT,
        "--timeout",
        PEER_TIMEOUT,
    ]);
    c.args(extra);
    Ok(c)
}

fn aioice(ctx: &Context, role: &str, ip: &str, mode: &str) -> Result<Command, String> {
    let py = ctx.require_python()?;
    let script: PathBuf = ctx.root.join("conformance/peers/aioice_peer.py");
    let mut c = Command::new(py);
    c.arg(script).args(["--mode", mode, "--count", COUNT, "--timeout", PEER_TIMEOUT, "--role", role]);
    for ip in ip.split(',') {
        c.args(["--bind", ip]);
    }
    Ok(c)
}

fn case(
    cases: &mut Vec<CaseResult>,
    name: &str,
    f: impl FnOnce() -> Result<(Report, Report), String>,
    check: impl FnOnce(&Report, &Report) -> Result<(), String>,
) {
    let r = f().and_then(|(a, b)| {
        check(&a, &b)?;
        eprintln!(
            "ice: {name}: connected in {} ms / {} ms; pair {} <-> {}",
            a.connected_ms.unwrap_or_default(),
            b.connected_ms.unwrap_or_default(),
            a.active.as_ref().map(|x| x.0.as_str()).unwrap_or(""),
            a.active.as_ref().map(|x| x.1.as_str()).unwrap_or(""),
        );
        Ok(())
    });
    cases.push(CaseResult::from_result(name, r));
}

/// Both ends must agree on the pair (the last one each reported): each
/// side's local address is the other's remote one.
fn same_pair(a: &Report, b: &Report) -> Result<(), String> {
    let addr = |line: &str| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.get(4).zip(f.get(5)).map(|(ip, port)| format!("{ip} {port}"))
    };
    let (al, ar) = a.active.as_ref().ok_or("no pair")?;
    let (bl, br) = b.active.as_ref().ok_or("no pair")?;
    if addr(al) != addr(br) || addr(ar) != addr(bl) {
        return Err(format!("pairs differ: {al} -> {ar} versus {bl} -> {br}"));
    }
    Ok(())
}

/// Both ends selected a TCP pair (ICE-TCP): one end's local candidate is
/// active (port 9), the other's passive.
fn tcp_pair(a: &Report, b: &Report) -> Result<(), String> {
    let (al, ar) = a.active.as_ref().ok_or("no pair")?;
    let (bl, br) = b.active.as_ref().ok_or("no pair")?;
    let mut types: Vec<&str> = [al, bl].iter().filter_map(|l| l.split(" tcptype ").nth(1)).collect();
    types.sort_unstable();
    if types != ["active", "passive"] || ![al, ar, bl, br].iter().all(|l| l.contains(" tcp ")) {
        return Err(format!("not an ICE-TCP pair at both ends: {al} -> {ar} versus {bl} -> {br}"));
    }
    Ok(())
}

fn ok(_: &Report, _: &Report) -> Result<(), String> {
    Ok(())
}

fn run(ctx: &Context) -> Vec<CaseResult> {
    let mut cases = Vec::new();
    for (fam, bind, ip) in [("ipv4", "127.0.0.1:0", "127.0.0.1"), ("ipv6", "[::1]:0", "::1")] {
        case(
            &mut cases,
            &format!("rtc-controlling/rtc-controlled/{fam}"),
            || {
                run_pair(
                    ("rtc-a", rtc(ctx, "controlling", bind, "ping", &[])?),
                    ("rtc-b", rtc(ctx, "controlled", bind, "echo", &[])?),
                )
            },
            same_pair,
        );
        case(
            &mut cases,
            &format!("rtc-controlling/aioice-controlled/{fam}"),
            || {
                run_pair(
                    ("rtc", rtc(ctx, "controlling", bind, "ping", &[])?),
                    ("aioice", aioice(ctx, "controlled", ip, "echo")?),
                )
            },
            same_pair,
        );
        case(
            &mut cases,
            &format!("aioice-controlling/rtc-controlled/{fam}"),
            || {
                run_pair(
                    ("aioice", aioice(ctx, "controlling", ip, "ping")?),
                    ("rtc", rtc(ctx, "controlled", bind, "echo", &[])?),
                )
            },
            same_pair,
        );
    }
    // Both families at once: pairs form within a family only, and both ends
    // must still settle on one pair.
    case(
        &mut cases,
        "rtc-controlling/aioice-controlled/dual-stack",
        || {
            let a = rtc(ctx, "controlling", "127.0.0.1:0", "ping", &["--bind", "[::1]:0"])?;
            run_pair(("rtc", a), ("aioice", aioice(ctx, "controlled", "127.0.0.1,::1", "echo")?))
        },
        same_pair,
    );
    case(
        &mut cases,
        "aioice-controlling/rtc-controlled/dual-stack",
        || {
            let b = rtc(ctx, "controlled", "127.0.0.1:0", "echo", &["--bind", "[::1]:0"])?;
            run_pair(("aioice", aioice(ctx, "controlling", "127.0.0.1,::1", "ping")?), ("rtc", b))
        },
        same_pair,
    );
    case(
        &mut cases,
        "rtc-aggressive/rtc-controlled/ipv4",
        || {
            let a = rtc(ctx, "controlling", "127.0.0.1:0", "ping", &["--nomination", "aggressive"])?;
            run_pair(("rtc-a", a), ("rtc-b", rtc(ctx, "controlled", "127.0.0.1:0", "echo", &[])?))
        },
        same_pair,
    );
    // ICE-TCP (RFC 6544) between two rtc-ice agents that signal their TCP
    // candidates only.
    case(
        &mut cases,
        "rtc-controlling/rtc-controlled/ice-tcp",
        || {
            let tcp = ["--tcp", "--tcp-only"];
            run_pair(
                ("rtc-a", rtc(ctx, "controlling", "127.0.0.1:0", "ping", &tcp)?),
                ("rtc-b", rtc(ctx, "controlled", "127.0.0.1:0", "echo", &tcp)?),
            )
        },
        tcp_pair,
    );
    case(
        &mut cases,
        "rtc-controlling/rtc-controlling/role-conflict",
        || {
            run_pair(
                ("rtc-a", rtc(ctx, "controlling", "127.0.0.1:0", "ping", &[])?),
                ("rtc-b", rtc(ctx, "controlling", "127.0.0.1:0", "echo", &[])?),
            )
        },
        same_pair,
    );
    case(
        &mut cases,
        "aioice-controlling/aioice-controlled/ipv4 (baseline)",
        || {
            run_pair(
                ("aioice-a", aioice(ctx, "controlling", "127.0.0.1", "ping")?),
                ("aioice-b", aioice(ctx, "controlled", "127.0.0.1", "echo")?),
            )
        },
        ok,
    );
    // ICE lite (RFC 8445 section 2.5): rtc lite answers a full peer that
    // controls and nominates; rtc sends no check (its count must be 0).
    let lite = |a: &Report, b: &Report| {
        same_pair(a, b)?;
        match b.requests_sent {
            Some(0) => Ok(()),
            n => Err(format!("rtc lite sent {n:?} Binding requests, want 0")),
        }
    };
    // aioice told that its peer is lite nominates regularly but does not
    // take the controlling role itself: started controlled, its checks get
    // 487 from rtc lite and it switches (RFC 8445 section 7.2.5.1). A full
    // rtc peer started controlled takes control when it reads "lite".
    for (name, full, role) in [
        ("aioice-controlling/rtc-lite/ipv4", "aioice", "controlling"),
        ("aioice-controlled/rtc-lite/ipv4 (487 makes aioice control)", "aioice", "controlled"),
        ("rtc-controlled/rtc-lite/ipv4 (the full side takes control)", "rtc-full", "controlled"),
    ] {
        let full_peer = || match full {
            "aioice" => aioice(ctx, role, "127.0.0.1", "ping"),
            _ => rtc(ctx, role, "127.0.0.1:0", "ping", &[]),
        };
        // rtc lite is told to control, which it ignores.
        let lite_peer = || rtc(ctx, "controlling", "127.0.0.1:0", "echo", &["--lite"]);
        case(&mut cases, name, || run_pair((full, full_peer()?), ("rtc-lite", lite_peer()?)), lite);
    }
    cases.push(CaseResult::from_result("coturn-srflx/ipv4", coturn_srflx(ctx)));
    for (name, transport) in
        [("coturn-relay/ipv4", "udp"), ("coturn-relay-tcp/ipv4", "tcp"), ("coturn-relay-tls/ipv4", "tls")]
    {
        cases.push(CaseResult::from_result(name, coturn_relay(ctx, name, transport)));
    }
    // Behind NAT, only a relay joins the peers (conformance/src/nat.rs):
    // whole `peer call`s, with every kind of candidate, then relayed only.
    for (name, args) in [
        ("nat/coturn-udp", &["nat-call", "--transport", "udp"][..]),
        ("nat/coturn-tcp", &["nat-call", "--transport", "tcp"]),
        ("nat/coturn-tls", &["nat-call", "--transport", "tls"]),
        ("nat/coturn-udp/relay-only", &["nat-call", "--transport", "udp", "--relay-only"]),
        // UDP dropped between the peers: ICE-TCP (RFC 6544).
        ("tcp/udp-blocked", &["tcp-call"]),
    ] {
        let run = crate::nat::in_router_namespace(ctx, args).map(|summary| {
            eprintln!("ice: {name}: {summary}");
        });
        cases.push(CaseResult::from_result(name, run));
    }
    cases
}

/// A port free for UDP and TCP on 127.0.0.1 (as far as one can tell).
fn free_port() -> Result<u16, String> {
    for _ in 0..100 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map_err(|e| e.to_string())?;
        if std::net::TcpListener::bind(udp).is_ok() {
            return Ok(udp.port());
        }
    }
    Err("no free port".into())
}

/// coturn as a TURN server on 127.0.0.1 (static user `u:p` in realm
/// `rtc`, long-term credentials, relaying on 127.0.0.1 only, loopback peers
/// allowed; UDP and TCP on one port, TLS on another with a self-signed
/// certificate for 127.0.0.1 made here): two rtc peers that gather, signal
/// and check relayed candidates only, reaching coturn over `transport`
/// (`udp`, `tcp`, or `tls` with the certificate as their root), connect
/// over a relayed pair and ping/echo through the relay.
fn coturn_relay(ctx: &Context, name: &str, transport: &str) -> Result<(), String> {
    let (port, tls_port) = (free_port()?, free_port()?);
    let dir = std::env::temp_dir().join(format!("rtc-ice-coturn-relay-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let pem = dir.join("cert.pem");
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .map_err(|e| e.to_string())?;
    let cert = rtc_dtls::Certificate::from_der(cert.cert.der(), &cert.signing_key.serialize_der())
        .map_err(|e| e.to_string())?;
    // One file: the CERTIFICATE block for coturn and the peers' roots, the
    // PRIVATE KEY block for coturn.
    std::fs::write(&pem, cert.to_pem()).map_err(|e| e.to_string())?;
    let mut server = Command::new("turnserver");
    let mut server = crate::nat::coturn_args(&mut server, "127.0.0.1", port, tls_port, &pem, &dir)
        .arg("--allow-loopback-peers")
        .spawn()
        .map_err(|e| format!("turnserver: {e} (install coturn: scripts/install-peers.sh)"))?;
    let r = (|| {
        // The stream listeners must take connections before the peers
        // connect (a refused connection fails the allocation at once).
        let deadline = Instant::now() + Duration::from_secs(10);
        for p in [port, tls_port] {
            let a = std::net::SocketAddr::from(([127, 0, 0, 1], p));
            while std::net::TcpStream::connect_timeout(&a, Duration::from_millis(100)).is_err() {
                if Instant::now() > deadline {
                    return Err(format!("coturn does not listen on {a}"));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let url = match transport {
            "tls" => format!("turns:127.0.0.1:{tls_port}"),
            t => format!("turn:127.0.0.1:{port}?transport={t}"),
        };
        let ca = pem.display().to_string();
        let mut relay = vec!["--turn", &url, "--turn-username", "u", "--turn-credential", "p", "--relay-only"];
        if transport == "tls" {
            relay.extend(["--turn-ca", &ca]);
        }
        let a = rtc(ctx, "controlling", "127.0.0.1:0", "ping", &relay)?;
        let b = rtc(ctx, "controlled", "127.0.0.1:0", "echo", &relay)?;
        let (ra, rb) = run_pair(("rtc-relay-a", a), ("rtc-relay-b", b))?;
        same_pair(&ra, &rb)?;
        for r in [&ra, &rb] {
            let (local, remote) = r.active.as_ref().ok_or("no pair")?;
            if !local.contains(" typ relay") || !remote.contains(" typ relay") {
                return Err(format!("not a relayed pair: {local} -> {remote}"));
            }
            let over = r.relays.iter().any(|v| v["transport"] == transport && v["state"] == "Allocated");
            if !over {
                return Err(format!("no allocation over {transport}: {:?}", r.relays));
            }
        }
        eprintln!(
            "ice: {name}: connected in {} ms / {} ms over {} <-> {} (TURN over {transport})",
            ra.connected_ms.unwrap_or_default(),
            rb.connected_ms.unwrap_or_default(),
            ra.active.as_ref().map(|x| x.0.as_str()).unwrap_or(""),
            ra.active.as_ref().map(|x| x.1.as_str()).unwrap_or(""),
        );
        Ok(())
    })();
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
    r
}

/// coturn (Debian's `turnserver`) as a STUN server on 127.0.0.1: the rtc
/// peer learns its mapping (on loopback, its own address, hence redundant
/// and not signaled as a candidate, RFC 8445 5.1.3) and still connects.
fn coturn_srflx(ctx: &Context) -> Result<(), String> {
    let port = std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map_err(|e| e.to_string())?.port();
    let dir = std::env::temp_dir().join(format!("rtc-ice-coturn-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let conf = dir.join("turnserver.conf");
    let config = format!(
        "listening-ip=127.0.0.1\nrelay-ip=127.0.0.1\nlistening-port={port}\nstun-only\nno-tls\nno-dtls\nno-cli\n\
         log-file={}\npidfile={}\nsimple-log\n",
        dir.join("turnserver.log").display(),
        dir.join("turnserver.pid").display()
    );
    std::fs::write(&conf, config).map_err(|e| e.to_string())?;
    let mut server = Command::new("turnserver")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("turnserver: {e} (install coturn: scripts/install-peers.sh)"))?;
    let server_addr = format!("127.0.0.1:{port}");
    let r = (|| {
        let url = format!("stun:{server_addr}");
        let a = rtc(ctx, "controlling", "127.0.0.1:0", "ping", &["--stun", &url])?;
        let (ra, rb) = run_pair(("rtc-srflx", a), ("rtc-b", rtc(ctx, "controlled", "127.0.0.1:0", "echo", &[])?))?;
        same_pair(&ra, &rb)?;
        let m = ra.srflx.first().ok_or("no server-reflexive mapping learned from coturn")?;
        if m["server"].as_str() != Some(server_addr.as_str()) || m["mapped"] != m["base"] {
            return Err(format!("unexpected mapping {m}"));
        }
        eprintln!("ice: coturn-srflx/ipv4: coturn at {server_addr} mapped {} to {}", m["base"], m["mapped"]);
        Ok(())
    })();
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
    r
}
