//! Two rtc peers behind NAT whose only way to each other is a TURN relay.
//!
//! `rtc-conformance nat-call` runs in a network namespace of its own (the
//! `ice` suite starts it under `unshare -rn`, see `in_router_namespace`),
//! which plays the router. It makes three more namespaces inside it, each
//! joined to the router by a veth pair:
//!
//! ```text
//!   peer A 10.1.0.2 ── ra 10.1.0.1 ┐
//!                                  ├ router (masquerades out of rc) ── rc 10.3.0.1 ── coturn 10.3.0.2
//!   peer B 10.2.0.2 ── rb 10.2.0.1 ┘
//! ```
//!
//! The router (nft) forwards from A's and B's networks to coturn's only,
//! masquerading, and back only what answers a flow a peer started
//! (conntrack: address- and port-dependent filtering). So a peer's host
//! candidate is unreachable for the other and for coturn, and its
//! server-reflexive candidate (the router's address) is a mapping only
//! coturn's port 3478 may use: the call can only connect over a relayed
//! candidate. Each peer is a `peer call`
//! process (audio, video and data) started in its namespace with `nsenter`;
//! the case passes when both connect over a pair with a relayed candidate
//! and media and data flow both ways. Nothing leaves the router namespace.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::runner::Context;

/// coturn's address, in its own namespace behind the router.
const TURN_ADDR: &str = "10.3.0.2";
/// coturn's port for UDP and TCP.
const TURN_PORT: u16 = 3478;
/// coturn's port for TLS.
const TURNS_PORT: u16 = 5349;

/// Runs this runner's executable with `args` in a new network namespace
/// (loopback up) that will be the router; see the module doc.
pub(crate) fn in_router_namespace(ctx: &Context, args: &[&str]) -> Result<String, String> {
    crate::browser::in_namespace(ctx, "ip link set lo up", "network namespace for the NAT case", args)
}

/// A process that holds a new network namespace (`unshare -n sleep`), for
/// `ip link set … netns PID` and `nsenter -t PID -n`.
struct Holder(Child);

impl Holder {
    fn new() -> Result<Self, String> {
        let own = std::fs::read_link("/proc/self/ns/net").map_err(|e| e.to_string())?;
        let child = Command::new("unshare")
            .args(["-n", "sleep", "300"])
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("unshare -n: {e}"))?;
        let holder = Self(child);
        // The namespace exists once the process's differs from ours.
        let ns = format!("/proc/{}/ns/net", holder.pid());
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_link(&ns).map_or(true, |l| l == own) {
            if Instant::now() > deadline {
                return Err("unshare -n made no namespace within 5 s".into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(holder)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// A command run in this namespace.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.pid().to_string(), "-n", "--"]).arg(program);
        c
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Kills a child process when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sh(script: &str) -> Result<(), String> {
    let out = Command::new("sh").args(["-ec", script]).output().map_err(|e| format!("sh: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{script}: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// The router's rules for the NAT case: A and B out to coturn's network,
/// and back only what answers a flow they started (conntrack), as a NAT
/// with address- and port-dependent filtering does. Nothing between A and
/// B.
const NAT_RULES: &str = "table ip rtc_nat {\n chain peers { type filter hook forward priority 0; policy drop; ct state \
                         established,related accept; iifname { \"ra\", \"rb\" } oifname \"rc\" accept; }\n chain \
                         masq { type nat hook postrouting priority 100; oifname \"rc\" masquerade; }\n}\n";

/// The router's rules for the ICE-TCP case: between A and B, TCP only;
/// every UDP datagram is dropped.
const TCP_ONLY_RULES: &str = "table ip rtc_tcp {\n chain peers { type filter hook forward priority 0; policy drop; \
                              ct state established,related accept; iifname { \"ra\", \"rb\" } oifname { \"ra\", \
                              \"rb\" } meta l4proto tcp accept; }\n}\n";

/// Builds the three namespaces and the router with `rules`; returns (A, B,
/// coturn's).
fn build_network(rules: &str) -> Result<(Holder, Holder, Holder), String> {
    let (a, b, c) = (Holder::new()?, Holder::new()?, Holder::new()?);
    let mut script = String::new();
    for (name, h, net) in [("a", &a, 1), ("b", &b, 2), ("c", &c, 3)] {
        let pid = h.pid();
        script += &format!(
            "ip link add r{name} type veth peer name {name}0\nip link set {name}0 netns {pid}\nip addr add \
             10.{net}.0.1/24 dev r{name}\nip link set r{name} up\nnsenter -t {pid} -n sh -ec 'ip link set lo up; ip \
             addr add 10.{net}.0.2/24 dev {name}0; ip link set {name}0 up; ip route add default via 10.{net}.0.1'\n"
        );
    }
    script += "echo 1 > /proc/sys/net/ipv4/ip_forward\n";
    sh(&script)?;
    let mut nft =
        Command::new("nft").args(["-f", "-"]).stdin(Stdio::piped()).spawn().map_err(|e| format!("nft: {e}"))?;
    nft.stdin.take().ok_or("nft stdin")?.write_all(rules.as_bytes()).map_err(|e| e.to_string())?;
    if !nft.wait().map_err(|e| e.to_string())?.success() {
        return Err("nft refused the router's rules".into());
    }
    Ok((a, b, c))
}

/// coturn's arguments for a test server: no configuration file, listening
/// and relaying on `ip` only, UDP and TCP on `port`, TLS on `tls_port` with
/// the certificate and key in `pem`, long-term credentials `u:p` in realm
/// `rtc`, no DTLS or CLI, its log and pid file in `dir`, no output.
pub(crate) fn coturn_args<'c>(
    cmd: &'c mut Command,
    ip: &str,
    port: u16,
    tls_port: u16,
    pem: &Path,
    dir: &Path,
) -> &'c mut Command {
    cmd.arg("-n")
        .arg(format!("--listening-ip={ip}"))
        .arg(format!("--relay-ip={ip}"))
        .arg(format!("--listening-port={port}"))
        .arg(format!("--tls-listening-port={tls_port}"))
        .arg(format!("--cert={}", pem.display()))
        .arg(format!("--pkey={}", pem.display()))
        .args(["--lt-cred-mech", "--user=u:p", "--realm=rtc", "--no-dtls", "--no-cli", "--simple-log"])
        .arg(format!("--log-file={}", dir.join("turnserver.log").display()))
        .arg(format!("--pidfile={}", dir.join("turnserver.pid").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
}

/// Starts coturn in `ns` (user `u:p`, realm `rtc`, relaying on its own
/// address; TLS with a certificate for that address written to `pem`) and
/// waits until its stream listeners take connections.
fn start_coturn(ns: &Holder, dir: &Path, pem: &Path) -> Result<Reaped, String> {
    let cert = rcgen::generate_simple_self_signed(vec![TURN_ADDR.to_owned()]).map_err(|e| e.to_string())?;
    let cert = rtc_dtls::Certificate::from_der(cert.cert.der(), &cert.signing_key.serialize_der())
        .map_err(|e| e.to_string())?;
    std::fs::write(pem, cert.to_pem()).map_err(|e| e.to_string())?;
    let mut server = ns.command("turnserver");
    let server = coturn_args(&mut server, TURN_ADDR, TURN_PORT, TURNS_PORT, pem, dir)
        .spawn()
        .map_err(|e| format!("turnserver: {e} (install coturn: scripts/install-peers.sh)"))?;
    let server = Reaped(server);
    let deadline = Instant::now() + Duration::from_secs(10);
    for port in [TURN_PORT, TURNS_PORT] {
        let at: SocketAddr = format!("{TURN_ADDR}:{port}").parse().map_err(|e| format!("{e}"))?;
        while TcpStream::connect_timeout(&at, Duration::from_millis(100)).is_err() {
            if Instant::now() > deadline {
                return Err(format!("coturn does not listen on {at}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(server)
}

/// One `peer call` process in a namespace.
struct Peer {
    child: Reaped,
    out: BufReader<std::process::ChildStdout>,
    stderr: PathBuf,
}

impl Peer {
    fn start(exe: &Path, ns: &Holder, role: &str, bind: &str, ice: &[String], stderr: PathBuf) -> Result<Self, String> {
        let log = std::fs::File::create(&stderr).map_err(|e| e.to_string())?;
        let mut child = ns
            .command(exe)
            .args(["peer", "call", "--role", role, "--audio", "--video", "--data", "--seconds", "3", "--bind", bind])
            .args(ice)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("peer call: {e}"))?;
        let out = BufReader::new(child.stdout.take().ok_or("stdout")?);
        Ok(Self { child: Reaped(child), out, stderr })
    }

    fn line(&mut self) -> Result<String, String> {
        let mut l = String::new();
        self.out.read_line(&mut l).map_err(|e| e.to_string())?;
        if l.is_empty() {
            let log = std::fs::read_to_string(&self.stderr).unwrap_or_default();
            return Err(format!("peer call ended early: {}", log.trim()));
        }
        Ok(l)
    }

    fn send(&mut self, line: &str) -> Result<(), String> {
        let stdin = self.child.0.stdin.as_mut().ok_or("stdin")?;
        stdin.write_all(line.as_bytes()).and_then(|()| stdin.flush()).map_err(|e| e.to_string())
    }

    /// The `result` object of the last stdout line.
    fn result(mut self) -> Result<Value, String> {
        let mut last = String::new();
        loop {
            let mut l = String::new();
            if self.out.read_line(&mut l).map_err(|e| e.to_string())? == 0 {
                break;
            }
            last = l;
        }
        let _ = self.child.0.wait();
        let v: Value = serde_json::from_str(last.trim()).map_err(|e| {
            let log = std::fs::read_to_string(&self.stderr).unwrap_or_default();
            format!("no result line ({e}): {last:?}; stderr: {}", log.trim())
        })?;
        Ok(v["result"].clone())
    }
}

/// A `peer call` at A (10.1.0.2, offering) and one at B (10.2.0.2,
/// answering), both with `ice`; their offer and answer passed between
/// them; their results.
fn call_between(exe: &Path, (a, b): (&Holder, &Holder), ice: &[String], dir: &Path) -> Result<(Value, Value), String> {
    let mut pa = Peer::start(exe, a, "offer", "10.1.0.2", ice, dir.join("a.log"))?;
    let mut pb = Peer::start(exe, b, "answer", "10.2.0.2", ice, dir.join("b.log"))?;
    let offer = pa.line()?;
    pb.send(&offer)?;
    let answer = pb.line()?;
    pa.send(&answer)?;
    Ok((pa.result()?, pb.result()?))
}

/// Runs the call through coturn reached over `transport` (`udp`, `tcp` or
/// `tls`); with `relay_only` both peers gather relayed candidates only.
/// Returns a one-line summary.
pub fn nat_call(exe: &Path, transport: &str, relay_only: bool) -> Result<String, String> {
    let dir = std::env::temp_dir().join(format!("rtc-nat-{transport}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let r = (|| {
        let (a, b, c) = build_network(NAT_RULES)?;
        let pem = dir.join("cert.pem");
        let _coturn = start_coturn(&c, &dir, &pem)?;
        let url = match transport {
            "tls" => format!("turns:{TURN_ADDR}:{TURNS_PORT}"),
            t => format!("turn:{TURN_ADDR}:{TURN_PORT}?transport={t}"),
        };
        let mut ice = vec!["--ice-server".to_owned(), url, "--ice-username=u".into(), "--ice-credential=p".into()];
        if transport == "tls" {
            ice.push(format!("--turn-ca={}", pem.display()));
        }
        if relay_only {
            ice.push("--relay-only".into());
        }
        let (ra, rb) = call_between(exe, (&a, &b), &ice, &dir)?;
        let mut seen = Vec::new();
        for (name, r) in [("A", &ra), ("B", &rb)] {
            let pair = &r["selected_pair"];
            let relayed = [&pair["local"], &pair["remote"]].iter().filter(|t| **t == "relay").count();
            if r["ok"] != true || relayed == 0 || (relay_only && relayed != 2) {
                return Err(format!("peer {name}: {r}"));
            }
            // A local relayed candidate is reached over the transport asked.
            if pair["local"] == "relay" && pair["relay_protocol"] != transport {
                return Err(format!(
                    "peer {name}: relayed over {} rather than {transport}: {r}",
                    pair["relay_protocol"]
                ));
            }
            seen.push(describe(name, r));
        }
        Ok(format!("TURN over {transport}{}: {}", if relay_only { ", relay only" } else { "" }, seen.join("; ")))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    r
}

/// One peer's part of a summary line: how long it took, the selected
/// pair (types, addresses, transport, octets, round trip), what arrived.
fn describe(name: &str, r: &Value) -> String {
    let pair = &r["selected_pair"];
    let frames = |k: &str| format!("{}/{}", r[k]["frames_received"], r[k]["packets_received"]);
    format!(
        "{name} connected in {:.0} ms over {}{}{} {} -> {} {} ({}; {} octets out, {} in, round trip {} s), received \
         audio {} video {} (frames/packets), {} data messages",
        r["connected_ms"].as_f64().unwrap_or_default(),
        pair["local"].as_str().unwrap_or("?"),
        pair["relay_protocol"].as_str().map(|p| format!(" (TURN over {p})")).unwrap_or_default(),
        pair["tcp_type"].as_str().map(|t| format!(" (tcptype {t})")).unwrap_or_default(),
        pair["local_address"].as_str().unwrap_or("?"),
        pair["remote"].as_str().unwrap_or("?"),
        pair["remote_address"].as_str().unwrap_or("?"),
        pair["protocol"].as_str().unwrap_or("?"),
        pair["bytes_sent"],
        pair["bytes_received"],
        pair["current_round_trip_time"],
        frames("audio"),
        frames("video"),
        r["data"]["messages_received"],
    )
}

/// Two peers whose router forwards TCP between them and drops all UDP
/// (the same namespaces as the NAT case, no NAT, coturn's left unused):
/// both gather ICE-TCP candidates (`--tcp`), and the case passes when
/// both connect over a TCP pair, one side having opened the connection
/// and the other accepted it, with media and data both ways. Returns a
/// one-line summary.
pub fn tcp_call(exe: &Path) -> Result<String, String> {
    let dir = std::env::temp_dir().join(format!("rtc-ice-tcp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let r = (|| {
        let (a, b, _c) = build_network(TCP_ONLY_RULES)?;
        let ice = ["--tcp".to_owned()];
        let (ra, rb) = call_between(exe, (&a, &b), &ice, &dir)?;
        let mut types = Vec::new();
        for (name, r) in [("A", &ra), ("B", &rb)] {
            if r["ok"] != true || r["selected_pair"]["protocol"] != "tcp" {
                return Err(format!("peer {name}: {r}"));
            }
            types.push(r["selected_pair"]["tcp_type"].as_str().unwrap_or("?").to_owned());
        }
        types.sort();
        if types != ["active", "passive"] {
            return Err(format!("the two ends' tcptypes are {types:?}: {ra}; {rb}"));
        }
        Ok(format!("UDP dropped, ICE-TCP: {}; {}", describe("A", &ra), describe("B", &rb)))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    r
}
