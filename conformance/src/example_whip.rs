//! rtc-api's `whip` example run as a user runs it, with headless Chromium
//! as the WHIP and WHEP client. The `api` suite builds it and runs
//! `rtc-conformance whip-example` in a loopback-only network namespace,
//! which:
//!
//! 1. starts the example with `--port 0 --token T --out DIR` and checks
//!    the HTTP surface by hand: a POST without the token and one with
//!    another token get `401` (with `WWW-Authenticate: Bearer`), a body
//!    over 64 KiB `413`, a CORS preflight `204` with
//!    `Access-Control-Allow-Origin` and `Accept-Post: application/sdp`;
//! 2. serves the example's page (`crates/rtc-api/examples/whip/index.html`)
//!    from a listener of its own, so the page's WHIP requests are
//!    cross-origin and go through CORS, and opens it in Chromium with
//!    `mode=whip`: getUserMedia (fake camera and microphone), the offer
//!    POSTed with the token, the answer applied, candidates trickled by
//!    PATCH, 3 s of publishing, an ICE restart by PATCH with `If-Match: *`
//!    (which must answer 200 with our new credentials, after which
//!    Chromium's candidate pair must change within 10 s), 3 s more,
//!    DELETE; the page reports the status of each request, which must be
//!    201, 204 for every trickle PATCH, and 200;
//! 3. reads the session's summary, stops the example with SIGINT, and
//!    checks the recordings: more than 30 VP8 frames in the IVF file and
//!    more than 100 Opus packets in the Ogg file (read by rtc-media),
//!    and `vpxdec` and `opusinfo` accept them;
//! 4. starts the example again with those files as `--video-file` and
//!    `--audio-file` and opens the page with `mode=whep`: Chromium must
//!    decode video (`framesDecoded` > 0) and receive more than 50 audio
//!    packets within 6 s of connecting, then DELETE; the example is
//!    stopped with SIGINT again.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::example_browser::Running;
use crate::runner::Context;

/// The token the first run requires.
const TOKEN: &str = "conformance-token";

/// Least video frames and audio packets recorded.
const RECORDED: [usize; 2] = [31, 101];

/// The `api` suite's case: builds the example, then runs `whip-example`
/// in a loopback-only namespace; returns its summary.
pub fn check(ctx: &Context) -> Result<String, String> {
    let example = crate::example_browser::build(ctx, "whip")?;
    let example = example.to_str().ok_or("the example's path is not UTF-8")?;
    crate::browser::in_loopback_namespace(ctx, &["whip-example", "--example", example])
}

/// Runs both parts (inside the namespace); returns a one-line summary.
pub fn whip_example(root: &Path, example: &Path, chromium: OsString) -> Result<String, String> {
    let out = std::env::temp_dir().join(format!("rtc-whip-example-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let result = rt.block_on(run(root, example, &chromium, &out));
    if result.is_ok() {
        let _ = std::fs::remove_dir_all(&out);
    }
    result
}

/// One request by hand; returns the response's status code and head.
async fn request(url: &str, head: &str, body: &[u8]) -> Result<(u16, String), String> {
    let addr = url.strip_prefix("http://").ok_or("not an http URL")?;
    let mut tcp = TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
    let text = format!("{head}\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    tcp.write_all(text.as_bytes()).await.map_err(|e| e.to_string())?;
    // The server may answer (413) before reading the whole body.
    let _ = tcp.write_all(body).await;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut response))
        .await
        .map_err(|_| format!("{head}: no response in 10 s"))?
        .map_err(|e| e.to_string())?;
    let response = String::from_utf8_lossy(&response).into_owned();
    let head = response.split("\r\n\r\n").next().unwrap_or_default().to_owned();
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or(format!("no status in {head:?}"))?;
    Ok((code, head))
}

/// The HTTP surface the page does not exercise: the token, the body cap,
/// the preflight.
async fn check_http(url: &str) -> Result<String, String> {
    let offer = b"v=0\r\n";
    let post = "POST /whip/cam HTTP/1.1\r\nContent-Type: application/sdp";
    let cases: [(&str, String, Vec<u8>, u16, &str); 4] = [
        ("a POST without the token", post.to_owned(), offer.to_vec(), 401, "www-authenticate: bearer"),
        ("a POST with another token", format!("{post}\r\nAuthorization: Bearer not-{TOKEN}"), offer.to_vec(), 401, ""),
        ("a POST of 65 KiB", format!("{post}\r\nAuthorization: Bearer {TOKEN}"), vec![b'a'; 65 << 10], 413, ""),
        (
            "a CORS preflight",
            "OPTIONS /whip/cam HTTP/1.1\r\nOrigin: http://127.0.0.1:1\r\nAccess-Control-Request-Method: POST"
                .to_owned(),
            Vec::new(),
            204,
            "access-control-allow-origin: *",
        ),
    ];
    let mut said = Vec::new();
    for (what, head, body, want, field) in cases {
        let (code, got) = request(url, &head, &body).await?;
        if code != want || !got.to_ascii_lowercase().contains(field) {
            return Err(format!("{what}: want {want} with {field:?}, got:\n{got}"));
        }
        said.push(format!("{what} {code}"));
    }
    Ok(said.join(", "))
}

/// Serves the page on a listener of this process's own and opens it in
/// Chromium with `query`; returns the result the page POSTs to `/result`.
async fn page(root: &Path, chromium: &OsString, query: &str, tag: &str) -> Result<Value, String> {
    let html = std::fs::read_to_string(root.join("crates/rtc-api/examples/whip/index.html"))
        .map_err(|e| format!("the example's page: {e}"))?;
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let pages = crate::browser::Pages::default();
    pages.set("/whip.html", html);
    let (posted_tx, mut posted) = mpsc::channel(8);
    let server = tokio::spawn(crate::browser::serve_pages(listener, pages, posted_tx));
    let url = format!("http://127.0.0.1:{port}/whip.html?{query}&report=/result");
    let profile = std::env::temp_dir().join(format!("rtc-chromium-whip-{tag}-{}", std::process::id()));
    let mut browser = crate::browser::launch(chromium, &url, &profile)?;
    let report = crate::browser::posted_to(&mut posted, "/result").await;
    let _ = browser.kill().await;
    server.abort();
    let _ = std::fs::remove_dir_all(&profile);
    let report = report?;
    let v: Value = serde_json::from_str(&report).map_err(|e| format!("the page's report {report:?}: {e}"))?;
    if let Some(e) = v.get("error") {
        return Err(format!("the page: {e} (its report: {report})"));
    }
    Ok(v)
}

/// `created`, every PATCH and `deleted` as they must be.
fn check_statuses(v: &Value) -> Result<(), String> {
    let patches: Vec<u64> = v
        .get("patches")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let ok = v.get("created").and_then(Value::as_u64) == Some(201)
        && v.get("deleted").and_then(Value::as_u64) == Some(200)
        && !patches.is_empty()
        && patches.iter().all(|&p| p == 204);
    if ok { Ok(()) } else { Err(format!("want POST 201, PATCH 204 (at least one), DELETE 200; the page reported {v}")) }
}

fn stat(v: &Value, name: &str) -> u64 {
    v.get("stats").and_then(|s| s.get(name)).and_then(Value::as_u64).unwrap_or(0)
}

/// The line of the example's output with `what`, or an error with its tail.
fn line_with<'a>(said: &'a [String], what: &str) -> Result<&'a str, String> {
    said.iter().find(|l| l.contains(what)).map(String::as_str).ok_or_else(|| {
        format!("the example printed no line with {what:?}:\n{}", said[said.len().saturating_sub(25)..].join("\n"))
    })
}

/// Runs `tool` on `file`; its output when it exits successfully without
/// `WARNING` or `ERROR`.
fn accepts(tool: &str, args: &[&str], file: &Path) -> Result<(), String> {
    let out = std::process::Command::new(tool)
        .args(args)
        .arg(file)
        .output()
        .map_err(|e| format!("{tool} (Debian packages vpx-tools, opus-tools): {e}"))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() || text.contains("WARNING") || text.contains("ERROR") {
        return Err(format!("{tool} refused {}: {}", file.display(), text.trim()));
    }
    Ok(())
}

/// Checks the recordings; returns their frame and packet counts.
fn check_recordings(video: &Path, audio: &Path) -> Result<[usize; 2], String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("the recording {}: {e}", p.display()));
    let frames = crate::media::ivf_frames(&read(video)?)?.0.len();
    let packets = crate::media::ogg_opus_packets(&read(audio)?)?.len();
    if frames < RECORDED[0] || packets < RECORDED[1] {
        return Err(format!(
            "recorded {frames} video frames and {packets} audio packets; want at least {} and {}",
            RECORDED[0], RECORDED[1]
        ));
    }
    accepts("vpxdec", &["--md5", "--i420"], video)?;
    accepts("opusinfo", &[], audio)?;
    Ok([frames, packets])
}

async fn run(root: &Path, example: &Path, chromium: &OsString, out: &Path) -> Result<String, String> {
    // WHIP: Chromium publishes, the example records.
    let args: [&OsStr; 6] =
        ["--port".as_ref(), "0".as_ref(), "--token".as_ref(), TOKEN.as_ref(), "--out".as_ref(), out.as_os_str()];
    let mut running = Running::start(example, &args).await?;
    let http = match check_http(&running.url).await {
        Ok(h) => h,
        Err(e) => return Err(running.fail(&e).await),
    };
    let query = format!("mode=whip&name=cam&seconds=6&restart=1&token={TOKEN}&endpoint={}", running.url);
    let published = page(root, chromium, &query, "whip").await.and_then(|v| {
        check_statuses(&v)?;
        if v.get("restart").and_then(Value::as_u64) != Some(200) {
            return Err(format!("the ICE restart's PATCH must get 200; the page reported {v}"));
        }
        Ok(v)
    });
    let published = match published {
        Ok(v) => v,
        Err(e) => return Err(running.fail(&format!("WHIP: {e}")).await),
    };
    // DELETE returned once the session's summary was printed.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !running.said.iter().any(|l| l.contains(" summary (DELETE)")) {
        if running.next_line(deadline).await?.is_none() {
            break;
        }
    }
    let said = running.interrupt().await?;
    let whip_summary = line_with(&said, " summary (DELETE)")?.to_owned();
    if !whip_summary.contains(" 1 ICE restarts") {
        return Err(format!("the WHIP session's summary counts no ICE restart: {whip_summary}"));
    }
    let files = [out.join("cam-1.ivf"), out.join("cam-1.opus")];
    let [frames, packets] = check_recordings(&files[0], &files[1])?;

    // WHEP: the example plays those files to Chromium.
    let args: [&OsStr; 6] = [
        "--port".as_ref(),
        "0".as_ref(),
        "--video-file".as_ref(),
        files[0].as_os_str(),
        "--audio-file".as_ref(),
        files[1].as_os_str(),
    ];
    let running = Running::start(example, &args).await?;
    let query = format!("mode=whep&name=cam&seconds=6&endpoint={}", running.url);
    let watched = page(root, chromium, &query, "whep").await.and_then(|v| {
        check_statuses(&v)?;
        let (decoded, audio) = (stat(&v, "framesDecoded"), stat(&v, "audioPacketsReceived"));
        if decoded == 0 || audio <= 50 {
            return Err(format!("want framesDecoded > 0 and audioPacketsReceived > 50; the page reported {v}"));
        }
        Ok(v)
    });
    let watched = match watched {
        Ok(v) => v,
        Err(e) => return Err(running.fail(&format!("WHEP: {e}")).await),
    };
    let said = running.interrupt().await?;
    let whep_summary = line_with(&said, " summary (DELETE)")?.to_owned();
    let summary = |l: &str| l.split_once(" summary ").map_or(l.to_owned(), |(_, s)| s.to_owned());
    Ok(format!(
        "{http}; WHIP: Chromium encoded {} video frames and sent {} audio packets, PATCH {} (trickle) and {} \
         (ICE restart, candidate pair {}); recorded {frames} VP8 frames and {packets} Opus packets (vpxdec and opusinfo accept them); the example: {}; WHEP: Chromium \
         decoded {} frames and received {} audio packets; the example: {}",
        stat(&published, "framesEncoded"),
        stat(&published, "audioPacketsSent"),
        published.get("patches").map(Value::to_string).unwrap_or_default(),
        published.get("restart").map(Value::to_string).unwrap_or_default(),
        published.get("pairs").map(Value::to_string).unwrap_or_default(),
        summary(&whip_summary),
        stat(&watched, "framesDecoded"),
        stat(&watched, "audioPacketsReceived"),
        summary(&whep_summary),
    ))
}
