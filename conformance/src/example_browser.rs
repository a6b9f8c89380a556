//! rtc-api's `browser` example run as a user runs it: the `api` suite builds
//! it (`cargo build -p rtc-api --example browser`, in the runner's own
//! profile and target directory) and runs `rtc-conformance browser-example`
//! in a loopback-only network namespace, which starts the example with
//! `--port 0`, reads the URL it prints, and opens it in headless Chromium
//! with a fake camera and microphone. The page calls rtc and reports its
//! `getStats()` each second; the example prints that report in its status
//! lines, which this reads. Passes when, within 20 s of Chromium starting,
//! Chromium decoded more than 30 echoed video frames, received at least 25
//! echoed audio packets and got at least 10 data messages echoed; then
//! Chromium is stopped and the example gets Ctrl-C (SIGINT) and must print
//! the call's summary and exit cleanly.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::ChildStdout;

use crate::runner::Context;

/// What the page must report, as `name=value` in a status line.
const WANT: [(&str, f64); 3] = [("framesDecoded", 31.0), ("audioPacketsReceived", 25.0), ("messagesEchoed", 10.0)];

/// How long the page has, from Chromium's start, to report [`WANT`].
const LIMIT: Duration = Duration::from_secs(20);

/// The `api` suite's case: builds the example, then runs
/// `browser-example` in a loopback-only namespace; returns its summary.
pub fn check(ctx: &Context) -> Result<String, String> {
    let example = build(ctx)?;
    let example = example.to_str().ok_or("the example's path is not UTF-8")?;
    crate::browser::in_loopback_namespace(ctx, &["browser-example", "--example", example])
}

/// Builds the example with the runner's profile into the runner's target
/// directory (where `cargo test` has already built it, so this links at
/// most); returns its executable.
fn build(ctx: &Context) -> Result<PathBuf, String> {
    let exe = ctx.runner_exe.as_ref().ok_or("no runner executable")?;
    let mut dir = exe.parent().ok_or("the runner has no directory")?;
    if dir.ends_with("deps") {
        dir = dir.parent().ok_or("no profile directory")?;
    }
    let target = dir.parent().ok_or("no target directory")?;
    let profile = match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(p) => p,
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = std::process::Command::new(&cargo)
        .args(["build", "-q", "--locked", "--profile", profile, "-p", "rtc-api", "--example", "browser"])
        .env("CARGO_TARGET_DIR", target)
        .current_dir(&ctx.root)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run {cargo:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo build --example browser: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(dir.join("examples").join("browser"))
}

/// Runs the example and Chromium on its page (inside the namespace);
/// returns a one-line summary.
pub fn browser_example(example: &Path, chromium: OsString) -> Result<String, String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(run(example, chromium))
}

/// `value` of `name=value` in `line`.
fn field(line: &str, name: &str) -> Option<f64> {
    line.split_whitespace().find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}

/// The next line the example prints, by `deadline`.
async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>, deadline: Instant) -> Result<Option<String>, String> {
    match tokio::time::timeout_at(deadline.into(), lines.next_line()).await {
        Ok(line) => line.map_err(|e| e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

async fn run(example: &Path, chromium: OsString) -> Result<String, String> {
    let mut child = tokio::process::Command::new(example)
        .args(["--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("run {}: {e}", example.display()))?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let logs = tokio::spawn(async move {
        let mut all = String::new();
        let _ = stderr.read_to_string(&mut all).await;
        all
    });
    let mut said: Vec<String> = Vec::new();
    let first = next_line(&mut lines, Instant::now() + Duration::from_secs(10)).await;
    let url = first
        .as_ref()
        .ok()
        .and_then(Option::as_deref)
        .and_then(|l| l.split_whitespace().find(|w| w.starts_with("http://127.0.0.1:")).map(str::to_owned));
    let Some(url) = url else {
        return Err(format!("the example printed no http://127.0.0.1 URL first: {first:?}"));
    };
    said.push(first.ok().flatten().unwrap_or_default());

    let profile = std::env::temp_dir().join(format!("rtc-chromium-example-{}", std::process::id()));
    let mut browser = crate::browser::launch(&chromium, &url, &profile)?;
    let deadline = Instant::now() + LIMIT;
    let mut reported = None;
    let mut why = String::new();
    while reported.is_none() {
        match next_line(&mut lines, deadline).await {
            Ok(Some(line)) => {
                if line.contains(" status ")
                    && let Some((_, page)) = line.split_once("| page: ")
                    && WANT.iter().all(|&(name, least)| field(page, name).is_some_and(|v| v >= least))
                {
                    reported = Some(page.to_owned());
                }
                said.push(line);
            }
            Ok(None) => why = "the example exited".into(),
            Err(e) => why = e,
        }
        if !why.is_empty() {
            break;
        }
    }
    let _ = browser.kill().await;
    let _ = std::fs::remove_dir_all(&profile);
    let tail = |said: &[String]| said[said.len().saturating_sub(25)..].join("\n");
    let Some(page) = reported else {
        let _ = child.kill().await;
        let logs = logs.await.unwrap_or_default();
        let want: Vec<String> = WANT.iter().map(|(n, v)| format!("{n} >= {v}")).collect();
        return Err(format!(
            "{why}: the page did not report {} within {LIMIT:?} of Chromium's start; the example said:\n{}\n{logs}",
            want.join(", "),
            tail(&said)
        ));
    };

    // Ctrl-C: every call still up prints its summary, then the example exits.
    let pid = child.id().ok_or("the example already exited")?;
    let sent = std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status();
    if !sent.as_ref().is_ok_and(|s| s.success()) {
        return Err(format!("kill -INT {pid}: {sent:?}"));
    }
    let stopped = Instant::now() + Duration::from_secs(5);
    loop {
        match next_line(&mut lines, stopped).await {
            Ok(Some(line)) => said.push(line),
            Ok(None) => break,
            Err(e) => return Err(format!("the example did not end on SIGINT ({e}):\n{}", tail(&said))),
        }
    }
    let status = child.wait().await.map_err(|e| e.to_string())?;
    let summary = said.iter().find(|l| l.contains(" summary (")).cloned();
    match summary {
        Some(summary) if status.success() => {
            let summary = summary.split_once(" summary ").map_or(summary.as_str(), |(_, s)| s);
            Ok(format!("the page reported {page}; the example's summary: {summary}"))
        }
        _ => Err(format!(
            "after SIGINT the example exited with {status} and printed no call summary:\n{}\n{}",
            tail(&said),
            logs.await.unwrap_or_default()
        )),
    }
}
