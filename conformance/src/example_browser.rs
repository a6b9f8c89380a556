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
//! the call's summary and exit cleanly. Just before Chromium stops, a
//! screenshot of the page goes to `target/browser-example.png` (through
//! Chromium's DevTools pipe; docs/browser-example.png is one).
//!
//! Building an example, starting it and reading the URL it prints first
//! (`Running`), and stopping it with SIGINT serve the `whip` example's
//! case too (`example_whip`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::ChildStdout;

use crate::runner::Context;

/// What the page must report, as `name=value` in a status line.
const WANT: [(&str, f64); 3] = [("framesDecoded", 31.0), ("audioPacketsReceived", 25.0), ("messagesEchoed", 10.0)];

/// How long the call goes on after the page reported [`WANT`] before the
/// screenshot.
const SCREENSHOT_AFTER: Duration = Duration::from_secs(5);

/// How long the page has, from Chromium's start, to report [`WANT`].
const LIMIT: Duration = Duration::from_secs(20);

/// The `api` suite's case: builds the example, then runs
/// `browser-example` in a loopback-only namespace; returns its summary.
pub fn check(ctx: &Context) -> Result<String, String> {
    let example = build(ctx, "browser")?;
    let example = example.to_str().ok_or("the example's path is not UTF-8")?;
    let shot = ctx.root.join("target").join("browser-example.png");
    let shot = shot.to_str().ok_or("the repository's path is not UTF-8")?;
    crate::browser::in_loopback_namespace(ctx, &["browser-example", "--example", example, "--screenshot", shot])
}

/// Builds rtc-api's example `name` with the runner's profile into the
/// runner's target directory (where `cargo test` has already built it, so
/// this links at most); returns its executable.
pub(crate) fn build(ctx: &Context, name: &str) -> Result<PathBuf, String> {
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
        .args(["build", "-q", "--locked", "--profile", profile, "-p", "rtc-api", "--example", name])
        .env("CARGO_TARGET_DIR", target)
        .current_dir(&ctx.root)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run {cargo:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo build --example {name}: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(dir.join("examples").join(name))
}

/// Runs the example and Chromium on its page (inside the namespace);
/// returns a one-line summary.
pub fn browser_example(example: &Path, chromium: OsString, screenshot: Option<&Path>) -> Result<String, String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(run(example, chromium, screenshot))
}

/// `value` of `name=value` in `line`.
fn field(line: &str, name: &str) -> Option<f64> {
    line.split_whitespace().find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}

/// An example running with its standard output read line by line and its
/// standard error (the logs) kept.
pub(crate) struct Running {
    child: tokio::process::Child,
    lines: Lines<BufReader<ChildStdout>>,
    logs: tokio::task::JoinHandle<String>,
    /// Every line it printed so far.
    pub(crate) said: Vec<String>,
    /// The `http://127.0.0.1:…` URL of its first line.
    pub(crate) url: String,
}

impl Running {
    /// Starts `example` with `args`; it must print a line with an
    /// `http://127.0.0.1:` URL first, within 10 s.
    pub(crate) async fn start(example: &Path, args: &[&std::ffi::OsStr]) -> Result<Running, String> {
        let mut command = tokio::process::Command::new(example);
        command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| format!("run {}: {e}", example.display()))?;
        let lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        let mut stderr = child.stderr.take().ok_or("no stderr")?;
        let logs = tokio::spawn(async move {
            let mut all = String::new();
            let _ = stderr.read_to_string(&mut all).await;
            all
        });
        let mut running = Running { child, lines, logs, said: Vec::new(), url: String::new() };
        let first = running.next_line(Instant::now() + Duration::from_secs(10)).await;
        let url = first
            .as_ref()
            .ok()
            .and_then(Option::as_deref)
            .and_then(|l| l.split_whitespace().find(|w| w.starts_with("http://127.0.0.1:")))
            .map(|u| u.trim_end_matches('/').to_owned());
        let Some(url) = url else {
            return Err(format!("the example printed no http://127.0.0.1 URL first: {first:?}"));
        };
        running.url = url;
        Ok(running)
    }

    /// The next line the example prints, by `deadline` (kept in `said`);
    /// `None` once it closed its standard output.
    pub(crate) async fn next_line(&mut self, deadline: Instant) -> Result<Option<String>, String> {
        let line = match tokio::time::timeout_at(deadline.into(), self.lines.next_line()).await {
            Ok(line) => line.map_err(|e| e.to_string())?,
            Err(_) => return Err("timed out".into()),
        };
        self.said.extend(line.clone());
        Ok(line)
    }

    /// The last 25 lines it printed.
    pub(crate) fn tail(&self) -> String {
        self.said[self.said.len().saturating_sub(25)..].join("\n")
    }

    /// Kills it; returns `why` with the last lines it printed and its logs.
    pub(crate) async fn fail(mut self, why: &str) -> String {
        let _ = self.child.kill().await;
        format!("{why}\nthe example said:\n{}\n{}", self.tail(), self.logs.await.unwrap_or_default())
    }

    /// Ctrl-C (SIGINT): it must exit within 5 s, successfully; returns
    /// every line it printed.
    pub(crate) async fn interrupt(mut self) -> Result<Vec<String>, String> {
        let pid = self.child.id().ok_or("the example already exited")?;
        let sent = std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status();
        if !sent.as_ref().is_ok_and(|s| s.success()) {
            return Err(format!("kill -INT {pid}: {sent:?}"));
        }
        let stopped = Instant::now() + Duration::from_secs(5);
        loop {
            match self.next_line(stopped).await {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => return Err(format!("the example did not end on SIGINT ({e}):\n{}", self.tail())),
            }
        }
        let status = self.child.wait().await.map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(self.fail(&format!("after SIGINT the example exited with {status}")).await);
        }
        Ok(self.said)
    }
}

async fn run(example: &Path, chromium: OsString, screenshot: Option<&Path>) -> Result<String, String> {
    let mut running = Running::start(example, &["--port".as_ref(), "0".as_ref()]).await?;
    let url = format!("{}/", running.url);
    let profile = std::env::temp_dir().join(format!("rtc-chromium-example-{}", std::process::id()));
    let browser = crate::devtools::launch(&chromium, &url, &profile, (1000, 980))?;
    let deadline = Instant::now() + LIMIT;
    let mut reported = None;
    let mut why = String::new();
    while reported.is_none() {
        match running.next_line(deadline).await {
            Ok(Some(line)) => {
                if line.contains(" status ")
                    && let Some((_, page)) = line.split_once("| page: ")
                    && WANT.iter().all(|&(name, least)| field(page, name).is_some_and(|v| v >= least))
                {
                    reported = Some(page.to_owned());
                }
            }
            Ok(None) => why = "the example exited".into(),
            Err(e) => why = e,
        }
        if !why.is_empty() {
            break;
        }
    }
    // The page as it shows now, for the docs (a failed screenshot fails the
    // case: the README shows it).
    let shot = match (screenshot, &reported) {
        (Some(path), Some(_)) => {
            // A few more seconds of the call first, so that the page's plot
            // shows something.
            tokio::time::sleep(SCREENSHOT_AFTER).await;
            let (path, b) = (path.to_owned(), std::sync::Arc::new(browser));
            let taker = b.clone();
            let taken = tokio::task::spawn_blocking(move || taker.screenshot(&path)).await.map_err(|e| e.to_string());
            let mut browser = std::sync::Arc::into_inner(b).ok_or("the browser handle is still shared")?;
            let _ = browser.child.kill().await;
            Some(taken.and_then(|t| t))
        }
        _ => {
            let mut browser = browser;
            let _ = browser.child.kill().await;
            None
        }
    };
    let _ = std::fs::remove_dir_all(&profile);
    if let Some(Err(e)) = &shot {
        return Err(running.fail(&format!("the screenshot failed: {e}")).await);
    }
    let Some(page) = reported else {
        let want: Vec<String> = WANT.iter().map(|(n, v)| format!("{n} >= {v}")).collect();
        let why = format!("{why}: the page did not report {} within {LIMIT:?} of Chromium's start", want.join(", "));
        return Err(running.fail(&why).await);
    };

    // Ctrl-C: every call still up prints its summary, then the example exits.
    let said = running.interrupt().await?;
    match said.iter().find(|l| l.contains(" summary (")) {
        Some(summary) => {
            let summary = summary.split_once(" summary ").map_or(summary.as_str(), |(_, s)| s);
            let shot = match (shot, screenshot) {
                (Some(Ok(n)), Some(p)) => format!("; a {n}-octet screenshot in {}", p.display()),
                _ => String::new(),
            };
            Ok(format!("the page reported {page}; the example's summary: {summary}{shot}"))
        }
        None => Err(format!("after SIGINT the example printed no call summary:\n{}", said.join("\n"))),
    }
}
