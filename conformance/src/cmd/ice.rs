//! `rtc-conformance peer ice`: one ICE agent on real UDP sockets, driven over
//! stdin/stdout by a test harness (see `suites/ice.rs`).
//!
//! Protocol: the local description goes out as one JSON line
//! `{"ufrag":…,"pwd":…,"candidates":["candidate:…",…]}` (with `"lite":
//! true` for an ICE lite agent), the remote one comes in as one line of
//! the same form, then event lines go out:
//! `{"event":"activecandidate","local":…,"remote":…}`,
//! `{"event":"connected","ms":N}` (ms since the remote description arrived),
//! `{"event":"srflx",…}` for each server-reflexive mapping learned, and at
//! the end `{"event":"done","count":N}`. Errors go to stderr with a non-zero
//! exit status.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand, ValueEnum};
use rtc_candidate::{Candidate, Component};
use rtc_ice::{AgentConfig, Credentials, Event, IceSocket, Nomination, Role, SocketConfig};
use serde_json::{Value, json};

/// A peer implementation exposed to external drivers.
#[derive(Subcommand)]
pub(crate) enum PeerCmd {
    /// An ICE agent (rtc-ice) on UDP sockets.
    Ice(IceArgs),
    /// A whole rtc peer (rtc-api) making or answering an SDP offer, sending
    /// and checking audio, video and data (contract in docs/conformance.md).
    Call(super::call::CallArgs),
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum RoleArg {
    Controlling,
    Controlled,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum NominationArg {
    Regular,
    Aggressive,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ModeArg {
    /// Send `ping <i>` N times, each awaiting its echo.
    Ping,
    /// Echo N datagrams back.
    Echo,
}

/// Options of `peer ice`.
#[derive(Args)]
pub(crate) struct IceArgs {
    /// The initial ICE role.
    #[arg(long, value_enum)]
    role: RoleArg,
    /// Local addresses to bind (port 0: ephemeral). Default: 127.0.0.1 and ::1.
    #[arg(long)]
    bind: Vec<SocketAddr>,
    /// Nomination when controlling.
    #[arg(long, value_enum, default_value = "regular")]
    nomination: NominationArg,
    /// What to do with application data once connected.
    #[arg(long, value_enum, default_value = "ping")]
    mode: ModeArg,
    /// How many datagrams to ping or echo.
    #[arg(long, default_value_t = 10)]
    count: u32,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 20)]
    timeout: u64,
    /// STUN servers for server-reflexive candidates, as `stun:` URLs
    /// (RFC 7064; loopback in tests).
    #[arg(long)]
    stun: Vec<String>,
    /// TURN servers for relayed candidates, as `turn:` or `turns:` URLs
    /// (RFC 7065: `?transport=udp`, `?transport=tcp`, or TLS for `turns:`;
    /// loopback in tests), with `--turn-username` and `--turn-credential`.
    #[arg(long)]
    turn: Vec<String>,
    /// A PEM file of CA certificates trusted for `turns:` servers besides
    /// Mozilla's roots (a test's self-signed certificate).
    #[arg(long)]
    turn_ca: Vec<std::path::PathBuf>,
    /// The long-term credential's username for `--turn`.
    #[arg(long, default_value = "")]
    turn_username: String,
    /// The long-term credential's password for `--turn`.
    #[arg(long, default_value = "")]
    turn_credential: String,
    /// Gather, signal and check relayed candidates only
    /// (iceTransportPolicy "relay").
    #[arg(long)]
    relay_only: bool,
    /// Run ICE lite (RFC 8445 section 2.5): host candidates only, no checks
    /// of its own, controlled whatever `--role` says; the description says
    /// `"lite": true`.
    #[arg(long)]
    lite: bool,
    /// Gather ICE-TCP candidates too (RFC 6544: a listener beside each
    /// bound address, passive and active candidates).
    #[arg(long)]
    tcp: bool,
    /// Signal TCP candidates only (with `--tcp`): a peer that gets this
    /// description can only connect over ICE-TCP.
    #[arg(long)]
    tcp_only: bool,
}

fn say(v: Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

/// Runs the peer; `Err` carries the reason for stderr.
pub(crate) fn run(args: &IceArgs) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    rt.block_on(async {
        match tokio::time::timeout_at(deadline.into(), peer(args)).await {
            Ok(r) => r,
            Err(_) => Err(format!("timed out after {} s", args.timeout)),
        }
    })
}

async fn peer(args: &IceArgs) -> Result<(), String> {
    let mut turn_servers = Vec::new();
    for url in &args.turn {
        let servers = rtc_ice::udp::resolve_turn(url, &args.turn_username, &args.turn_credential).await;
        turn_servers.extend(servers.map_err(|e| format!("TURN server {url:?}: {e}"))?);
    }
    let agent = AgentConfig {
        turn_servers,
        relay_only: args.relay_only,
        lite: args.lite,
        role: match args.role {
            RoleArg::Controlling => Role::Controlling,
            RoleArg::Controlled => Role::Controlled,
        },
        nomination: match args.nomination {
            NominationArg::Regular => Nomination::Regular,
            NominationArg::Aggressive => Nomination::Aggressive,
        },
        ..AgentConfig::default()
    };
    let mut config = SocketConfig::loopback(agent);
    if !args.bind.is_empty() {
        config.bind = args.bind.clone();
    }
    config.stun_urls = args.stun.clone();
    config.tcp = args.tcp;
    for f in &args.turn_ca {
        config.turn_ca_pem.push(std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?);
    }
    let mut sock = IceSocket::bind(config).await.map_err(|e| format!("bind: {e}"))?;

    // Gather: host candidates now, srflx ones until CandidatesDone.
    let mut candidates = Vec::new();
    loop {
        match sock.next_event().await {
            Some(Event::Candidate(c)) if !args.tcp_only || c.tcp_type().is_some() => candidates.push(c.to_string()),
            Some(Event::CandidatesDone) => break,
            Some(_) => {}
            None => return Err("agent stopped while gathering".into()),
        }
    }
    let relays: Vec<Value> = sock.with_agent(|a| {
        let relay = |c: &rtc_ice::turn::Client| {
            json!({"event": "relay", "server": c.server().to_string(), "transport": c.transport().as_str(),
                "state": format!("{:?}", c.state()), "relayed": c.relayed().map(|r| r.to_string())})
        };
        a.relay_allocations().map(relay).collect()
    });
    for r in relays {
        say(r);
    }
    for m in sock.with_agent(|a| a.reflexive_mappings().to_vec()) {
        say(
            json!({"event": "srflx", "server": m.server.to_string(), "base": m.base.to_string(), "mapped": m.mapped.to_string()}),
        );
    }
    let creds = sock.local_credentials();
    let mut description = json!({"ufrag": creds.ufrag, "pwd": creds.pwd, "candidates": candidates});
    if args.lite {
        description["lite"] = json!(true);
    }
    say(description);

    // The remote description, read off the runtime thread.
    let line = tokio::task::spawn_blocking(|| {
        let mut s = String::new();
        std::io::stdin().lock().read_line(&mut s).map(|_| s)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("stdin: {e}"))?;
    let remote: Value = serde_json::from_str(line.trim()).map_err(|e| format!("remote description: {e}"))?;
    let t0 = Instant::now();
    let field = |k: &str| remote[k].as_str().map(str::to_owned).ok_or(format!("remote description without {k}"));
    let creds = Credentials { ufrag: field("ufrag")?, pwd: field("pwd")? };
    // The whole description is here: form every pair first, so that the
    // first check (sent once the credentials are known) goes to the best.
    for c in remote["candidates"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let line = c.as_str().unwrap_or_default();
        let cand = Candidate::parse(line).map_err(|e| format!("remote candidate {line:?}: {e}"))?;
        // Candidates this agent cannot use (TCP, other families) are skipped.
        let _ = sock.add_remote_candidate(&cand);
    }
    sock.end_of_remote_candidates();
    sock.set_remote_lite(remote["lite"].as_bool().unwrap_or(false)).map_err(|e| format!("remote lite: {e}"))?;
    sock.set_remote_credentials(creds).map_err(|e| format!("remote credentials: {e}"))?;

    loop {
        match sock.next_event().await {
            Some(Event::ActiveCandidate { local, remote, .. }) => {
                say(json!({"event": "activecandidate", "local": local.to_string(), "remote": remote.to_string()}))
            }
            Some(Event::Connected) => {
                say(json!({"event": "connected", "ms": t0.elapsed().as_millis() as u64}));
                break;
            }
            Some(Event::Failed) => return Err("ICE failed".into()),
            Some(Event::Disconnected) => return Err("consent lost before connecting".into()),
            Some(_) => {}
            None => return Err("agent stopped".into()),
        }
    }

    // Application data over the selected pair.
    for i in 0..args.count {
        match args.mode {
            ModeArg::Ping => {
                let msg = format!("ping {i}");
                sock.send(Component::RTP, msg.as_bytes()).await.map_err(|e| format!("send: {e}"))?;
                let echo = sock.recv().await.ok_or("data channel closed")?;
                if &*echo != msg.as_bytes() {
                    return Err(format!("echo of {msg:?} was {:?}", String::from_utf8_lossy(&echo)));
                }
            }
            ModeArg::Echo => {
                let data = sock.recv().await.ok_or("data channel closed")?;
                sock.send(data.component(), &data).await.map_err(|e| format!("send: {e}"))?;
            }
        }
    }
    // A controlling peer may nominate a better pair after Connected (aioice
    // nominates on every check): report every later change of the pair.
    while let Ok(Some(e)) = tokio::time::timeout(Duration::ZERO, sock.next_event()).await {
        if let Event::ActiveCandidate { local, remote, .. } = e {
            say(json!({"event": "activecandidate", "local": local.to_string(), "remote": remote.to_string()}));
        }
    }
    let (dropped, checks) = sock.with_agent(|a| (a.stats().dropped_total(), a.stats().checks_sent));
    let consent_checks = sock.with_agent(|a| a.stats().consent_checks);
    say(
        json!({"event": "done", "count": args.count, "dropped": dropped, "checks": checks, "consent_checks": consent_checks}),
    );
    Ok(())
}
