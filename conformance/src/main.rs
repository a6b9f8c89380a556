//! `rtc-conformance`: runs the conformance suites and exposes each crate to
//! external drivers through line-oriented subcommands.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rtc_conformance::runner::{self, Context};
use rtc_conformance::suites;

mod cmd;

#[derive(Parser)]
#[command(name = "rtc-conformance", about = "rtc conformance runner")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs suites (all when none is named) and prints a table of results.
    Run {
        /// Suite names; `list` prints the available ones.
        suites: Vec<String>,
    },
    /// ICE candidate lines and dictionaries.
    Candidate {
        #[command(subcommand)]
        op: cmd::candidate::Op,
    },
    /// Codec options: negotiate two options files (JSON or SDP), read or write them.
    Codecs {
        #[command(subcommand)]
        op: cmd::codecs::Op,
    },
    /// A peer implementation driven over stdin/stdout (`peer ice`).
    Peer {
        #[command(subcommand)]
        peer: cmd::ice::PeerCmd,
    },
    /// One SRTP/SRTCP session: hex packets per line in, hex or `ERR <reason>` out.
    Srtp(cmd::srtp::SrtpArgs),
    /// A DTLS-SRTP call with headless Chromium (`RTC_CHROMIUM`, else
    /// `chromium`); run it in a network namespace with only loopback, as the
    /// `api` suite does. Prints one summary line; exit status 1 on failure.
    BrowserCall,
    /// Headless Chromium offers audio and video, rtc answers with
    /// `local_sdp` and sends Opus and real VP8 (as `browser-call`, in a
    /// loopback-only namespace). Prints one summary line; exit status 1 on
    /// failure.
    BrowserAnswer {
        /// Once connected, drop this percentage of the UDP datagrams in the
        /// namespace (nft) and run the call for 8 s: what NACK and RTX
        /// recover is then checked both ways.
        #[arg(long, default_value_t = 0)]
        loss: u8,
        /// rtc answers as an ICE lite agent (`a=ice-lite`): Chromium must
        /// control and nominate, and get no connectivity check from rtc.
        #[arg(long)]
        ice_lite: bool,
    },
    /// mDNS candidates with headless Chromium: rtc offers a data channel,
    /// Chromium answers with its host addresses hidden behind `.local`
    /// names, rtc resolves them and must select a resolved host candidate.
    /// Run it in the network namespace the `api` suite makes for it
    /// (loopback and a veth pair). Prints one summary line; exit status 1
    /// on failure.
    BrowserMdns {
        /// The other way: rtc conceals its host addresses behind `.local`
        /// names (`mdns-host-names`) and answers for them; rtc is given no
        /// candidate of Chromium's, so only Chromium's checks, after
        /// resolving rtc's name, can connect.
        #[arg(long)]
        conceal: bool,
    },
    /// ICE-TCP with headless Chromium (in a namespace where every UDP
    /// datagram is dropped; the `api` suite runs it under `unshare -rn`):
    /// rtc offers a data channel with ICE-TCP candidates, and the call must
    /// connect over TCP. Prints one summary line; exit status 1 on failure.
    BrowserTcp,
    /// Two rtc peers (`peer call`) behind NAT whose only way to each other
    /// is a coturn relay, each in a network namespace made here (run it in
    /// a namespace of its own that plays the router, as the `ice` suite
    /// does; see `conformance/src/nat.rs`). Prints one summary line; exit
    /// status 1 on failure.
    NatCall {
        /// How the peers reach coturn: `udp`, `tcp` or `tls`.
        #[arg(long, default_value = "udp")]
        transport: String,
        /// Gather and use relayed candidates only.
        #[arg(long)]
        relay_only: bool,
    },
    /// Two rtc peers (`peer call --tcp`) whose router forwards TCP between
    /// them and drops every UDP datagram, each in a network namespace made
    /// here (run it in a namespace of its own, as the `ice` suite does; see
    /// `conformance/src/nat.rs`): they must connect over ICE-TCP. Prints
    /// one summary line; exit status 1 on failure.
    TcpCall,
    /// Renegotiation with headless Chromium (as `browser-call`, in a
    /// loopback-only namespace): Chromium offers, then adds a track and
    /// offers again, then rtc adds a stream and offers. Prints one summary
    /// line; exit status 1 on failure.
    BrowserRenegotiate,
    /// VP9 (RFC 9628) with headless Chromium (as `browser-call`, in a
    /// loopback-only namespace; the `codecs` suite runs it): Chromium offers,
    /// rtc answers with VP9 only and sends the built-in VP9 clip. Prints one
    /// summary line; exit status 1 on failure.
    BrowserVp9,
    /// Simulcast from headless Chromium (as `browser-call`, in a
    /// loopback-only namespace; the `api` suite runs it): Chromium publishes
    /// its camera in three VP8 layers by rid, rtc answers taking them and
    /// receives every layer on a track of its own. Prints one summary line;
    /// exit status 1 on failure.
    BrowserSimulcast,
    /// AV1 with headless Chromium, as `browser-vp9`: rtc answers with AV1
    /// only and sends the built-in AV1 clip.
    BrowserAv1,
    /// A data-only connection with headless Chromium (as `browser-call`; the
    /// `data` suite runs it): rtc opens data streams and Chromium echoes,
    /// or the other way round. Prints one summary line; exit status 1 on
    /// failure.
    BrowserData {
        /// rtc's part: `open` the streams or `echo` Chromium's.
        #[arg(long, value_enum)]
        role: suites::data::Role,
    },
    /// rtc-api's `browser` example as a user runs it (the `api` suite builds
    /// it and runs this in a loopback-only namespace): starts it on a free
    /// port, opens its page in headless Chromium (`RTC_CHROMIUM`, else
    /// `chromium`) with a fake camera and microphone, waits until the page
    /// reports echoed video, audio and data, then stops both (the example
    /// by SIGINT). Prints one summary line; exit status 1 on failure.
    BrowserExample {
        /// The example's executable.
        #[arg(long)]
        example: std::path::PathBuf,
        /// Where to write a PNG screenshot of the page once it reported.
        #[arg(long)]
        screenshot: Option<std::path::PathBuf>,
    },
    /// rtc-api's `whip` example as a user runs it (the `api` suite builds
    /// it and runs this in a loopback-only namespace): its token and CORS
    /// checked by hand, headless Chromium publishing by WHIP with a fake
    /// camera and microphone, the recordings checked, then Chromium
    /// watching them by WHEP. Prints one summary line; exit status 1 on
    /// failure.
    WhipExample {
        /// The example's executable.
        #[arg(long)]
        example: std::path::PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { suites: names } => run(&names),
        Command::Candidate { op } => lines(|line| cmd::candidate::handle(&op, line)),
        Command::Codecs { op } => cmd::codecs::run(&op),
        Command::Peer { peer: cmd::ice::PeerCmd::Call(args) } => match cmd::call::run(&args) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("peer call: {e}");
                println!("{}", serde_json::json!({ "result": { "ok": false, "error": e } }));
                ExitCode::FAILURE
            }
        },
        Command::Peer { peer: cmd::ice::PeerCmd::Ice(args) } => match cmd::ice::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("peer ice: {e}");
                ExitCode::FAILURE
            }
        },
        Command::BrowserCall => {
            let chromium = chromium();
            summary("browser-call", rtc_conformance::browser::chromium_call(&Context::from_env().root, chromium))
        }
        Command::BrowserAnswer { loss, ice_lite } => {
            let chromium = chromium();
            summary(
                "browser-answer",
                rtc_conformance::browser::chromium_offers(&Context::from_env().root, chromium, loss, ice_lite),
            )
        }
        Command::BrowserTcp => {
            let chromium = chromium();
            summary("browser-tcp", rtc_conformance::browser_tcp::chromium_tcp(&Context::from_env().root, chromium))
        }
        Command::BrowserMdns { conceal } => {
            let chromium = chromium();
            summary(
                "browser-mdns",
                rtc_conformance::browser_mdns::chromium_mdns(&Context::from_env().root, chromium, conceal),
            )
        }
        Command::NatCall { transport, relay_only } => {
            let run = std::env::current_exe()
                .map_err(|e| e.to_string())
                .and_then(|exe| rtc_conformance::nat::nat_call(&exe, &transport, relay_only));
            summary("nat-call", run)
        }
        Command::TcpCall => {
            let run =
                std::env::current_exe().map_err(|e| e.to_string()).and_then(|exe| rtc_conformance::nat::tcp_call(&exe));
            summary("tcp-call", run)
        }
        Command::BrowserRenegotiate => {
            let chromium = chromium();
            summary(
                "browser-renegotiate",
                rtc_conformance::renegotiate::chromium_renegotiates(&Context::from_env().root, chromium),
            )
        }
        Command::BrowserSimulcast => {
            let chromium = chromium();
            summary(
                "browser-simulcast",
                rtc_conformance::simulcast_call::chromium_simulcast(&Context::from_env().root, chromium),
            )
        }
        Command::BrowserVp9 | Command::BrowserAv1 => {
            let chromium = chromium();
            let (codec, name) = match cli.command {
                Command::BrowserAv1 => (rtc_conformance::vp9_call::Codec::Av1, "browser-av1"),
                _ => (rtc_conformance::vp9_call::Codec::Vp9, "browser-vp9"),
            };
            summary(name, rtc_conformance::vp9_call::chromium_codec(&Context::from_env().root, chromium, codec))
        }
        Command::BrowserData { role } => {
            let chromium = chromium();
            summary("browser-data", suites::data::browser_data(&Context::from_env(), chromium, role))
        }
        Command::BrowserExample { example, screenshot } => {
            let chromium = chromium();
            let run = rtc_conformance::example_browser::browser_example(&example, chromium, screenshot.as_deref());
            summary("browser-example", run)
        }
        Command::WhipExample { example } => {
            let chromium = chromium();
            let root = Context::from_env().root;
            summary("whip-example", rtc_conformance::example_whip::whip_example(&root, &example, chromium))
        }
        Command::Srtp(args) => match cmd::srtp::session(&args) {
            Ok(f) => lines(f),
            Err(e) => {
                eprintln!("srtp: {e}");
                ExitCode::from(2)
            }
        },
    }
}

fn run(names: &[String]) -> ExitCode {
    if names.iter().any(|n| n == "list") {
        for s in suites::ALL {
            println!("{:<12} {}", s.name, s.about);
        }
        return ExitCode::SUCCESS;
    }
    let mut chosen = Vec::new();
    for n in names {
        match suites::find(n) {
            Some(s) => chosen.push(s),
            None => {
                eprintln!("unknown suite {n:?}; `rtc-conformance run list` lists them");
                return ExitCode::from(2);
            }
        }
    }
    if chosen.is_empty() {
        chosen = suites::ALL.iter().collect();
    }
    let ctx = Context::from_env();
    let reports: Vec<_> = chosen.into_iter().map(|s| runner::run_suite(s, &ctx)).collect();
    print!("{}", runner::render(&reports));
    if reports.iter().any(|r| r.failed() > 0) { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// Prints a subcommand's one-line summary (exit status 0), or its error
/// on stderr (exit status 1).
/// The Chromium to run: `RTC_CHROMIUM`, else `chromium` on the PATH.
fn chromium() -> std::ffi::OsString {
    std::env::var_os("RTC_CHROMIUM").unwrap_or_else(|| "chromium".into())
}

fn summary(name: &str, result: Result<String, String>) -> ExitCode {
    match result {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Feeds stdin line by line to `f` and writes each answer as one line; a bad
/// line produces an answer, never stops the loop.
fn lines(mut f: impl FnMut(&str) -> String) -> ExitCode {
    let stdin = io::stdin();
    let mut out = io::BufWriter::new(io::stdout().lock());
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if writeln!(out, "{}", f(&line)).and_then(|_| out.flush()).is_err() {
            break;
        }
    }
    ExitCode::SUCCESS
}
