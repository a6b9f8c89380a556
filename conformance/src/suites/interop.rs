//! Suite `interop`: whole calls between rtc and another WebRTC stack, each
//! side its own process speaking the `peer call` JSON-lines contract
//! (docs/conformance.md). rtc is `rtc-conformance peer call` (this runner's
//! own executable); pion/webrtc 3.x is `conformance/peers/pion_call`, a Go
//! program built offline from Debian's packages by
//! `scripts/install-peers.sh` into `target/peers/pion_call` (or
//! `RTC_PION_CALL`). Both gather host candidates on 127.0.0.1 only.
//!
//! Each case starts both peers with `--audio --video`, relays the offer
//! line from the offerer to the answerer and the answer line back, waits
//! for both result lines and requires both `ok` (connected, Opus and VP8
//! sent and received both ways) and exit status 0. It prints one line with
//! rtc's connect time and the packet and frame counts each way; on failure
//! the message carries both result lines and the end of both sides' stderr
//! (`RUST_LOG` and `PION_LOG_DEBUG=all` reach the peers).

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
    about: "whole calls with pion/webrtc 3.x (Go) in both roles: SDP, ICE, DTLS-SRTP, Opus and VP8 both ways",
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

/// One call between pion and rtc, pion offering or answering: relays the
/// SDP lines and returns the line to print, or why the call failed.
async fn call(ctx: &Context, pion_offers: bool) -> Result<String, String> {
    let pion = pion_exe(ctx)?;
    let rtc = ctx.runner_exe.clone().ok_or("no runner executable")?;
    let video = ctx.fixture("media/vp8-160x120.ivf");
    let video = video.to_string_lossy();
    let (pion_role, rtc_role) = if pion_offers { ("offer", "answer") } else { ("answer", "offer") };
    let pion_args = ["--role", pion_role, "--audio", "--video", "--seconds", SECONDS, "--video-file", &video];
    let rtc_args = ["peer", "call", "--role", rtc_role, "--audio", "--video", "--seconds", SECONDS];
    let mut p = Peer::spawn(ctx, "pion", &pion, &pion_args)?;
    let mut r = Peer::spawn(ctx, "rtc", &rtc, &rtc_args)?;
    let relayed = async {
        let (offerer, answerer) = if pion_offers { (&mut p, &mut r) } else { (&mut r, &mut p) };
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
            "{why}\n  pion ({ps}): {}\n  rtc ({rs}): {}\n  pion stderr:\n    {}\n  rtc stderr:\n    {}",
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
    Ok(format!(
        "rtc connected {} after the answer (pion {}); rtc→pion {}; pion→rtc {}",
        ms(&rv),
        ms(&pv),
        flow(&rv, &pv),
        flow(&pv, &rv)
    ))
}

fn run(ctx: &Context) -> Vec<CaseResult> {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return vec![CaseResult::fail("runtime", e.to_string())],
    };
    let mut out = Vec::new();
    for (pion_offers, name, short) in [
        (true, "pion 3.x offers, rtc answers: audio and VP8 both ways", "pion offers, rtc answers"),
        (false, "rtc offers, pion answers: audio and VP8 both ways", "rtc offers, pion answers"),
    ] {
        match rt.block_on(call(ctx, pion_offers)) {
            Ok(line) => {
                println!("interop: {short}: {line}");
                out.push(CaseResult::pass(name));
            }
            Err(e) => out.push(CaseResult::fail(name, e)),
        }
    }
    out
}
