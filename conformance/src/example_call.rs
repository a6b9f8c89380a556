//! rtc-api's `call` and `ws_call` examples run as a user runs them (README
//! command 1 and its two-process variant), their output checked: both
//! peers connected, media and data flowed both ways, nothing arrived
//! damaged, and `call` printed its status line each second.

use std::time::Duration;

use crate::example_browser::build;
use crate::runner::Context;

/// How long the examples' media flows.
const SECONDS: &str = "3";
/// How long an example may take, start to end.
const LIMIT: Duration = Duration::from_secs(60);

/// Runs `exe` with `args` to its end (at most [`LIMIT`]); its standard
/// output when it exits successfully.
fn run(exe: &std::path::Path, args: &[&str]) -> Result<String, String> {
    let mut child = std::process::Command::new(exe)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("run {}: {e}", exe.display()))?;
    let deadline = std::time::Instant::now() + LIMIT;
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!("{} did not end within {LIMIT:?}", exe.display()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let tail: Vec<&str> = stdout.lines().rev().take(20).collect();
        return Err(format!(
            "{} exited with {}:\n{}\n{}",
            exe.display(),
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(stdout)
}

/// The number after `key` in `line` (`key` then spaces, then digits).
fn number_after(line: &str, key: &str) -> Option<f64> {
    let rest = &line[line.find(key)? + key.len()..];
    rest.split_whitespace().next()?.trim_end_matches(|c: char| !c.is_ascii_digit()).parse().ok()
}

/// The `call` example: what it printed, in one line.
pub fn check_call(ctx: &Context) -> Result<String, String> {
    let exe = build(ctx, "call")?;
    let out = run(&exe, &[SECONDS])?;
    let fail = |why: &str| format!("{why}; the example printed (last lines):\n{}", last_lines(&out, 25));
    let connected: Vec<f64> = out.lines().filter_map(|l| number_after(l, "time to connected:")).collect();
    if connected.len() != 2 {
        return Err(fail("not both peers reported a time to connected"));
    }
    let status: Vec<&str> = out.lines().filter(|l| l.contains(" status: out ")).collect();
    let flowing = status.iter().filter(|l| number_after(l, " in ").is_some_and(|k| k > 100.0)).count();
    if status.len() < 4 || flowing < 4 {
        return Err(fail("fewer than two status lines per peer with media coming in"));
    }
    let mut frames = Vec::new();
    for line in out.lines().filter(|l| l.contains(" recv ")) {
        let last = line.split_whitespace().nth(11).unwrap_or_default();
        if line.contains("bad") {
            return Err(fail("damaged frames"));
        }
        frames.push(last.parse::<u64>().map_err(|_| fail("a received row without a frame count"))?);
    }
    if frames.len() != 4 || frames.contains(&0) {
        return Err(fail("not every received track (2 per peer) counted frames"));
    }
    let data = out.lines().find(|l| l.contains("echoed back by bob")).ok_or_else(|| fail("no data stream line"))?;
    let sent = number_after(data, "chat:").unwrap_or(0.0);
    let echoed = number_after(data, "sent,").unwrap_or(0.0);
    if sent < 10.0 || echoed != sent || data.contains("bad") {
        return Err(fail("the data stream's messages were not all echoed back intact"));
    }
    Ok(format!(
        "connected in {:.1} / {:.1} ms, frames received {frames:?}, {} status lines, {sent} chat messages echoed",
        connected[0],
        connected[1],
        status.len()
    ))
}

/// One row of the `call` example's table: peer, track, direction, NACKs,
/// retransmissions and frames (written or received whole).
fn table_rows(out: &str) -> Vec<(String, String, String, u64, u64, u64)> {
    out.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            // (A received row may end in "(N dropped)".)
            if w.len() < 12 || !["sent", "recv"].contains(&w[2]) {
                return None;
            }
            let n = |i: usize| w[i].parse::<u64>().ok();
            Some((w[0].to_owned(), w[1].to_owned(), w[2].to_owned(), n(9)?, n(10)?, n(11)?))
        })
        .collect()
}

/// The `call` example with `--loss 5`: the peers reach each other through
/// its relay that drops 5% of the datagrams each way. Each peer must get at
/// least 95% of the video frames the other wrote whole, NACK and be
/// answered with retransmissions; audio is not repaired (it never waits).
pub fn check_call_with_loss(ctx: &Context) -> Result<String, String> {
    let exe = build(ctx, "call")?;
    let out = run(&exe, &["4", "--loss", "5"])?;
    let fail = |why: &str| format!("{why}; the example printed (last lines):\n{}", last_lines(&out, 25));
    let rows = table_rows(&out);
    let frames = |peer: &str, kind: &str, dir: &str| {
        rows.iter().find(|r| r.0 == peer && r.1 == kind && r.2 == dir).map(|r| (r.3, r.4, r.5))
    };
    let mut seen = Vec::new();
    for (me, other) in [("alice", "bob"), ("bob", "alice")] {
        let (Some((nacks, _, got)), Some((_, resent, written))) =
            (frames(me, "video", "recv"), frames(other, "video", "sent"))
        else {
            return Err(fail("no video rows in the table"));
        };
        if got * 100 < written * 95 || nacks == 0 || resent == 0 {
            return Err(fail(&format!(
                "{me} got {got} of {other}'s {written} video frames, {nacks} NACKs, {resent} resent"
            )));
        }
        let audio = frames(me, "audio", "recv").map_or(0, |r| r.2);
        let audio_written = frames(other, "audio", "sent").map_or(0, |r| r.2);
        seen.push(format!(
            "{me} received {got} of {written} video frames whole ({nacks} NACKs, {resent} retransmitted) and {audio} of \
             {audio_written} audio frames"
        ));
    }
    let relay = out.lines().find(|l| l.starts_with("relay:")).ok_or_else(|| fail("no relay line"))?;
    if number_after(relay, "forwarded,").unwrap_or(0.0) < 1.0 {
        return Err(fail("the relay dropped nothing"));
    }
    Ok(format!("{}; {relay}", seen.join("; ")))
}

/// The `ws_call` example (a signaling server and two peer processes).
pub fn check_ws_call(ctx: &Context) -> Result<String, String> {
    let exe = build(ctx, "ws_call")?;
    let out = run(&exe, &[])?;
    let fail = |why: &str| format!("{why}; the example printed (last lines):\n{}", last_lines(&out, 25));
    let mut frames = Vec::new();
    for name in ["alice", "bob"] {
        for kind in ["audio", "video"] {
            let n = out
                .lines()
                .filter(|l| l.contains(name) && l.contains(&format!(" {kind} frames")))
                .find_map(|l| number_after(l, "received"))
                .ok_or_else(|| fail(&format!("{name} reported no received {kind} frames")))?;
            if n < 10.0 {
                return Err(fail(&format!("{name} received only {n} {kind} frames")));
            }
            frames.push(format!("{name} {n} {kind}"));
        }
    }
    Ok(format!("received {}", frames.join(", ")))
}

fn last_lines(out: &str, n: usize) -> String {
    let lines: Vec<&str> = out.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
