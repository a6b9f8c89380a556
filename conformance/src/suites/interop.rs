//! Suite `interop`: whole calls between rtc and another WebRTC stack, each
//! side its own process speaking the `peer call` JSON-lines contract
//! (docs/conformance.md). rtc is `rtc-conformance peer call` (this runner's
//! own executable); the other side is one of:
//!
//! - pion/webrtc 3.x: `conformance/peers/pion_call`, a Go program built
//!   offline from Debian's packages by `scripts/install-peers.sh` into
//!   `target/peers/pion_call` (or `RTC_PION_CALL`);
//! - GStreamer webrtcbin: `conformance/peers/webrtcbin_call.py` under the
//!   system python3 with python3-gi (`RTC_SYSTEM_PYTHON`, else
//!   `/usr/bin/python3`; not the aiortc venv), in max-bundle and in
//!   max-compat. webrtcbin's certificate is RSA-2048, so rtc runs these
//!   calls with `--dtls-engine openssl`.
//!
//! Every peer gathers host candidates on 127.0.0.1 only.
//!
//! Each case starts both peers with `--audio --video`, relays the offer
//! line from the offerer to the answerer and the answer line back, waits
//! for both result lines and requires both `ok` (connected, Opus and VP8
//! sent and received both ways) and exit status 0. It prints one line with
//! rtc's connect time and the packet and frame counts each way; on failure
//! the message carries both result lines and the end of both sides' stderr
//! (`RUST_LOG`, `PION_LOG_DEBUG=all` and `GST_DEBUG` reach the peers).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::runner::{CaseResult, Context, Suite};

/// The suite.
pub const SUITE: Suite = Suite {
    name: "interop",
    about: "whole calls with pion/webrtc 3.x (Go) and GStreamer webrtcbin in both roles: SDP, ICE, DTLS-SRTP, Opus and \
            VP8 both ways",
    run,
};

/// How long media flows once connected, on each side.
const SECONDS: &str = "3";
/// How long a peer may take for its SDP line.
const SDP_LIMIT: Duration = Duration::from_secs(20);
/// How long a peer may take for its result line after the answer: up to
/// 10 s to connect, the media seconds, half a second of grace, and slack.
const RESULT_LIMIT: Duration = Duration::from_secs(30);
/// Lines of each side's stderr quoted in a failure.
const STDERR_TAIL: usize = 15;

/// The pion peer: `RTC_PION_CALL`, else `target/peers/pion_call` under the
/// repository root.
fn pion_exe(ctx: &Context) -> Result<PathBuf, String> {
    let exe =
        std::env::var_os("RTC_PION_CALL").map(PathBuf::from).unwrap_or_else(|| ctx.root.join("target/peers/pion_call"));
    if exe.is_file() {
        Ok(exe)
    } else {
        Err(format!(
            "the pion peer {} is missing: scripts/install-peers.sh builds it from Debian's golang-go and \
             golang-github-pion-webrtc.v3-dev (or set RTC_PION_CALL)",
            exe.display()
        ))
    }
}

/// The system python3 for the webrtcbin peer: `RTC_SYSTEM_PYTHON`, else
/// `/usr/bin/python3`, once `webrtcbin_call.py --check` found every
/// GStreamer element it needs (else its message, naming the Debian
/// packages).
fn webrtcbin_python(ctx: &Context) -> Result<PathBuf, String> {
    let python =
        std::env::var_os("RTC_SYSTEM_PYTHON").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/python3"));
    let out = std::process::Command::new(&python)
        .arg(ctx.root.join(WEBRTCBIN_PEER))
        .arg("--check")
        .current_dir(&ctx.root)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            format!(
                "the webrtcbin peer needs the system python3 ({}: {e}): install the Debian packages python3 and \
                 python3-gi and GStreamer's (scripts/debian-packages.txt), or set RTC_SYSTEM_PYTHON",
                python.display()
            )
        })?;
    let said = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() {
        Ok(python)
    } else if said.is_empty() {
        Err(format!("{} {WEBRTCBIN_PEER} --check: {}", python.display(), String::from_utf8_lossy(&out.stderr).trim()))
    } else {
        Err(said)
    }
}

/// The webrtcbin peer, under the repository root.
const WEBRTCBIN_PEER: &str = "conformance/peers/webrtcbin_call.py";

/// The stack on the other side of a call, and how to start it.
struct Other {
    /// Its name in rows and messages.
    name: &'static str,
    /// Its program, or why it cannot run.
    exe: Result<PathBuf, String>,
    /// Arguments before the contract's (a script).
    lead: Vec<String>,
    /// Arguments after the contract's.
    tail: Vec<String>,
    /// rtc's own extra arguments for this peer.
    rtc: &'static [&'static str],
}

impl Other {
    fn pion(ctx: &Context) -> Self {
        let video = ctx.fixture("media/vp8-160x120.ivf").to_string_lossy().into_owned();
        Self { name: "pion", exe: pion_exe(ctx), lead: vec![], tail: vec!["--video-file".into(), video], rtc: &[] }
    }

    /// pion as an ICE lite agent (`--ice-lite`, pion's `SetLite`): it never
    /// checks, so the call connects only if rtc, the full side, controls
    /// and nominates, also when it answers.
    fn pion_lite(ctx: &Context) -> Self {
        let mut pion = Self::pion(ctx);
        pion.tail.push("--ice-lite".into());
        pion
    }

    /// webrtcbin with a bundle policy (`max-bundle` or `max-compat`); its
    /// RSA certificate needs rtc's OpenSSL DTLS engine.
    fn webrtcbin(ctx: &Context, python: &Result<PathBuf, String>, policy: &str) -> Self {
        Self {
            name: "webrtcbin",
            exe: python.clone(),
            lead: vec![ctx.root.join(WEBRTCBIN_PEER).to_string_lossy().into_owned()],
            tail: vec!["--bundle-policy".into(), policy.into()],
            rtc: &["--dtls-engine", "openssl"],
        }
    }
}

/// One running peer: its stdin, stdout lines and collected stderr.
struct Peer {
    who: &'static str,
    child: Child,
    stdin: Option<tokio::process::ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
    stderr: tokio::task::JoinHandle<String>,
}

impl Peer {
    fn spawn(ctx: &Context, who: &'static str, exe: &PathBuf, args: &[&str]) -> Result<Self, String> {
        let mut child = Command::new(exe)
            .args(args)
            .current_dir(&ctx.root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("spawn {who} ({}): {e}", exe.display()))?;
        let stdin = child.stdin.take();
        let lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        let mut err = child.stderr.take().ok_or("no stderr")?;
        let stderr = tokio::spawn(async move {
            let mut buf = Vec::new();
            let _ = err.read_to_end(&mut buf).await;
            String::from_utf8_lossy(&buf).into_owned()
        });
        Ok(Self { who, child, stdin, lines, stderr })
    }

    async fn line(&mut self, limit: Duration) -> Result<String, String> {
        tokio::time::timeout(limit, self.lines.next_line())
            .await
            .map_err(|_| format!("{} said nothing for {limit:?}", self.who))?
            .map_err(|e| format!("{}: {e}", self.who))?
            .ok_or_else(|| format!("{} exited without a line", self.who))
    }

    async fn send(&mut self, line: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("no stdin")?;
        stdin.write_all(format!("{line}\n").as_bytes()).await.map_err(|e| format!("{}: {e}", self.who))
    }

    /// Its last stdout line (the result), exit status and stderr; killed
    /// when it does not exit in time.
    async fn finish(mut self, limit: Duration) -> (Result<Value, String>, String, String) {
        let mut last = None;
        let read = tokio::time::timeout(limit, async {
            while let Ok(Some(l)) = self.lines.next_line().await {
                last = Some(l);
            }
        })
        .await;
        if read.is_err() {
            let _ = self.child.start_kill();
        }
        let status = match tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await {
            Ok(Ok(s)) => s.to_string(),
            _ => "did not exit".to_string(),
        };
        let stderr = tokio::time::timeout(Duration::from_secs(5), self.stderr).await.ok().and_then(Result::ok);
        let result = match last {
            Some(l) => serde_json::from_str::<Value>(&l)
                .ok()
                .and_then(|v| v.get("result").cloned())
                .ok_or_else(|| format!("{}'s last line is not a result: {l}", self.who)),
            None if read.is_err() => Err(format!("{} printed no result within {limit:?}", self.who)),
            None => Err(format!("{} printed no result", self.who)),
        };
        (result, status, stderr.unwrap_or_default())
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(STDERR_TAIL)..].join("\n    ")
}

/// `sent` by one side / `received` by the other, per kind, as `a/b`.
fn flow(from: &Value, to: &Value) -> String {
    let n = |v: &Value, kind: &str, what: &str| v[kind][what].as_u64().map_or("?".to_string(), |n| n.to_string());
    format!(
        "audio {}/{} video {}/{} ({} frames)",
        n(to, "audio", "packets_received"),
        n(from, "audio", "packets_sent"),
        n(to, "video", "packets_received"),
        n(from, "video", "packets_sent"),
        n(to, "video", "frames_received"),
    )
}

fn ms(v: &Value) -> String {
    v["connected_ms"].as_f64().map_or("never".to_string(), |ms| format!("{ms:.0} ms"))
}

/// One call between rtc and another stack, the other offering or
/// answering: relays the SDP lines and returns the line to print, or why
/// the call failed.
async fn call(ctx: &Context, other: &Other, other_offers: bool) -> Result<String, String> {
    let exe = other.exe.clone()?;
    let rtc = ctx.runner_exe.clone().ok_or("no runner executable")?;
    let name = other.name;
    let (other_role, rtc_role) = if other_offers { ("offer", "answer") } else { ("answer", "offer") };
    let contract = ["--role", other_role, "--audio", "--video", "--seconds", SECONDS];
    let other_args: Vec<&str> =
        other.lead.iter().map(String::as_str).chain(contract).chain(other.tail.iter().map(String::as_str)).collect();
    let rtc_args: Vec<&str> = ["peer", "call", "--role", rtc_role, "--audio", "--video", "--seconds", SECONDS]
        .into_iter()
        .chain(other.rtc.iter().copied())
        .collect();
    let mut p = Peer::spawn(ctx, name, &exe, &other_args)?;
    let mut r = Peer::spawn(ctx, "rtc", &rtc, &rtc_args)?;
    let relayed = async {
        let (offerer, answerer) = if other_offers { (&mut p, &mut r) } else { (&mut r, &mut p) };
        let offer = offerer.line(SDP_LIMIT).await?;
        answerer.send(&offer).await?;
        let answer = answerer.line(SDP_LIMIT).await?;
        offerer.send(&answer).await
    }
    .await;
    // Neither reads stdin again; closing it ends a peer still waiting for SDP.
    (p.stdin, r.stdin) = (None, None);
    let limit = if relayed.is_ok() { RESULT_LIMIT } else { Duration::from_secs(5) };
    let ((pr, ps, pe), (rr, rs, re)) = tokio::join!(p.finish(limit), r.finish(limit));
    let explain = |why: String| {
        format!(
            "{why}\n  {name} ({ps}): {}\n  rtc ({rs}): {}\n  {name} stderr:\n    {}\n  rtc stderr:\n    {}",
            pr.as_ref().map_or_else(Clone::clone, Value::to_string),
            rr.as_ref().map_or_else(Clone::clone, Value::to_string),
            tail(&pe),
            tail(&re)
        )
    };
    relayed.map_err(|e| explain(format!("signaling: {e}")))?;
    let (pv, rv) = match (&pr, &rr) {
        (Ok(p), Ok(r)) => (p.clone(), r.clone()),
        (Err(e), _) | (_, Err(e)) => return Err(explain(e.clone())),
    };
    let ok = |v: &Value| v["ok"] == Value::Bool(true);
    if !ok(&pv) || !ok(&rv) || ps != "exit status: 0" || rs != "exit status: 0" {
        return Err(explain("not ok: a peer did not connect or media did not flow both ways".into()));
    }
    // The peer's receiver reports of our streams: RFC 3550's cumulative
    // loss, never below 0 on a loopback call (webrtcbin reported -1 when a
    // stream's first RTP came before any RTCP of it).
    let lost = |kind: &str| rv[kind]["packets_lost_by_peer"].as_i64();
    if [lost("audio"), lost("video")].into_iter().any(|l| l.is_some_and(|l| l < 0)) {
        return Err(explain(format!("{name}'s receiver reports say it lost a negative number of our packets")));
    }
    Ok(format!(
        "rtc connected {} after the answer ({name} {}); rtc→{name} {}; {name}→rtc {}; {name} reports {} audio and {} \
         video packets of ours lost",
        ms(&rv),
        ms(&pv),
        flow(&rv, &pv),
        flow(&pv, &rv),
        lost("audio").map_or("?".into(), |l| l.to_string()),
        lost("video").map_or("?".into(), |l| l.to_string()),
    ))
}

fn run(ctx: &Context) -> Vec<CaseResult> {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return vec![CaseResult::fail("runtime", e.to_string())],
    };
    let pion = Other::pion(ctx);
    let pion_lite = Other::pion_lite(ctx);
    let python = webrtcbin_python(ctx);
    let (bundle, compat) = (Other::webrtcbin(ctx, &python, "max-bundle"), Other::webrtcbin(ctx, &python, "max-compat"));
    let mut out = Vec::new();
    for (other, other_offers, name, short) in [
        (&pion, true, "pion 3.x offers, rtc answers: audio and VP8 both ways", "pion offers, rtc answers"),
        (&pion, false, "rtc offers, pion answers: audio and VP8 both ways", "rtc offers, pion answers"),
        (
            &pion_lite,
            true,
            "pion 3.x as ICE lite offers, rtc answers and controls: audio and VP8 both ways",
            "pion (ICE lite) offers, rtc answers",
        ),
        (
            &pion_lite,
            false,
            "rtc offers, pion 3.x as ICE lite answers: audio and VP8 both ways",
            "rtc offers, pion (ICE lite) answers",
        ),
        (
            &bundle,
            true,
            "GStreamer webrtcbin offers (max-bundle), rtc answers: audio and VP8 both ways",
            "webrtcbin offers (max-bundle), rtc answers",
        ),
        (
            &bundle,
            false,
            "rtc offers, GStreamer webrtcbin answers (max-bundle): audio and VP8 both ways",
            "rtc offers, webrtcbin answers (max-bundle)",
        ),
        (
            &compat,
            true,
            "GStreamer webrtcbin offers (max-compat), rtc answers: audio and VP8 both ways",
            "webrtcbin offers (max-compat), rtc answers",
        ),
        (
            &compat,
            false,
            "rtc offers, GStreamer webrtcbin answers (max-compat): audio and VP8 both ways",
            "rtc offers, webrtcbin answers (max-compat)",
        ),
    ] {
        match rt.block_on(call(ctx, other, other_offers)) {
            Ok(line) => {
                println!("interop: {short}: {line}");
                out.push(CaseResult::pass(name));
            }
            Err(e) => out.push(CaseResult::fail(name, e)),
        }
    }
    out
}
