//! A screenshot of what headless Chromium shows, through its DevTools
//! protocol over `--remote-debugging-pipe` (JSON messages ended by a NUL
//! octet, commands on its file descriptor 3, answers on 4). A shell wrapper
//! connects those descriptors to two FIFOs in the browser's profile
//! directory, so no socket and no WebSocket client are needed.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::Stdio;

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::process::Child;

/// The largest answer read (a screenshot of a large page is a few MB).
const MAX_MESSAGE: usize = 32 << 20;

/// Chromium started with its DevTools pipe on two FIFOs.
pub(crate) struct Browser {
    /// The browser process (killed when dropped).
    pub(crate) child: Child,
    /// Our ends of its DevTools pipe.
    pipe: std::sync::Mutex<(File, BufReader<File>)>,
}

/// Starts headless Chromium as [`crate::browser::launch`] does, on `url` in
/// a window of `width`×`height`, with its DevTools pipe open.
pub(crate) fn launch(
    chromium: &OsString,
    url: &str,
    profile: &Path,
    (width, height): (u32, u32),
) -> Result<Browser, String> {
    std::fs::create_dir_all(profile).map_err(|e| format!("{}: {e}", profile.display()))?;
    let (commands, answers) = (profile.join("devtools-in"), profile.join("devtools-out"));
    for fifo in [&commands, &answers] {
        let _ = std::fs::remove_file(fifo);
        let made = std::process::Command::new("mkfifo").arg(fifo).status();
        if !made.as_ref().is_ok_and(|s| s.success()) {
            return Err(format!("mkfifo {}: {made:?}", fifo.display()));
        }
    }
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(r#"exec "$0" "$@" 3<"$RTC_DEVTOOLS_IN" 4>"$RTC_DEVTOOLS_OUT""#)
        .arg(chromium)
        .args(crate::browser::CHROMIUM_FLAGS)
        .arg("--remote-debugging-pipe")
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .env("RTC_DEVTOOLS_IN", &commands)
        .env("RTC_DEVTOOLS_OUT", &answers)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let child = command.spawn().map_err(|e| format!("run {chromium:?}: {e}"))?;
    // The wrapper opens the FIFOs before Chromium starts, in this order,
    // and each open waits for ours: open them now, off this thread in case
    // the wrapper never gets there.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let opened =
            File::options().write(true).open(&commands).and_then(|to| Ok((to, BufReader::new(File::open(&answers)?))));
        let _ = tx.send(opened);
    });
    let pipe = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .map_err(|_| "Chromium's DevTools pipe did not open within 10 s".to_owned())?
        .map_err(|e| format!("DevTools pipe: {e}"))?;
    Ok(Browser { child, pipe: std::sync::Mutex::new(pipe) })
}

impl Browser {
    /// Writes a PNG of the page as it shows now to `path` (blocking: run it
    /// off the async runtime). Returns the PNG's size in octets.
    pub(crate) fn screenshot(&self, path: &Path) -> Result<usize, String> {
        let mut pipe = self.pipe.lock().map_err(|_| "DevTools pipe poisoned")?;
        let (to, from) = &mut *pipe;
        let mut call = |id: u64, session: Option<&str>, method: &str, params: Value| -> Result<Value, String> {
            let mut message = json!({"id": id, "method": method, "params": params});
            if let Some(s) = session {
                message["sessionId"] = json!(s);
            }
            let mut bytes = message.to_string().into_bytes();
            bytes.push(0);
            to.write_all(&bytes).map_err(|e| format!("DevTools {method}: {e}"))?;
            loop {
                let mut buf = Vec::new();
                let n = (&mut *from).take(MAX_MESSAGE as u64).read_until(0, &mut buf).map_err(|e| e.to_string())?;
                if n == 0 || buf.last() != Some(&0) {
                    return Err(format!("DevTools {method}: the pipe closed or an answer was too long"));
                }
                buf.pop();
                let answer: Value = serde_json::from_slice(&buf).map_err(|e| format!("DevTools {method}: {e}"))?;
                if answer["id"] == id {
                    return match answer.get("result") {
                        Some(r) => Ok(r.clone()),
                        None => Err(format!("DevTools {method}: {}", answer["error"])),
                    };
                }
            }
        };
        let targets = call(1, None, "Target.getTargets", json!({}))?;
        let page = targets["targetInfos"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["targetId"].as_str())
            .ok_or("DevTools: no page target")?
            .to_owned();
        let attached = call(2, None, "Target.attachToTarget", json!({"targetId": page, "flatten": true}))?;
        let session = attached["sessionId"].as_str().ok_or("DevTools: no session")?.to_owned();
        let shot = call(3, Some(&session), "Page.captureScreenshot", json!({"format": "png"}))?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().ok_or("DevTools: no screenshot data")?)
            .map_err(|e| format!("DevTools: screenshot data: {e}"))?;
        if !png.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Err("DevTools: the screenshot is not a PNG".into());
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(path, &png).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(png.len())
    }
}
