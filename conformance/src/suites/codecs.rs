//! Suite `codecs`: Chrome, Firefox and aiortc offers (fixtures under
//! `conformance/fixtures/sdp/`) read into options dictionaries, written back
//! as SDP, and negotiated with each other and with our own dictionaries as a
//! browser answering them would; live exchanges with aiortc
//! (`conformance/peers/aiortc_codecs.py`) in both roles and with headless
//! Chromium (`conformance/peers/chromium_codecs.html`) answering our offer;
//! and the `codecs negotiate` subcommand end to end.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use rtc_codecs::{Agreement, Codec, Kind, Options, negotiate};
use serde_json::{Value, json};

use crate::runner::{CaseResult, Context, Suite};

/// The suite.
pub const SUITE: Suite = Suite {
    name: "codecs",
    about: "codec options: browser/aiortc SDP fixtures, negotiation as a browser answers, CLI",
    run,
};

/// Reads an options file: a JSON dictionary when it starts with `{`, else an SDP description.
pub fn load(path: &Path) -> Result<Options, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        let text = std::str::from_utf8(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        Options::from_json(text).map_err(|e| format!("{}: {e}", path.display()))
    } else {
        Options::from_sdp(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// `codecs negotiate`: the agreement of two options files as JSON, or the error.
pub fn negotiate_files(local: &Path, remote: &Path, local_offers: bool) -> Result<Agreement, String> {
    let (l, r) = (load(local)?, load(remote)?);
    let (offer, answer) = if local_offers { (&l, &r) } else { (&r, &l) };
    negotiate(offer, answer).map_err(|e| e.to_string())
}

/// `PT name/clock[/channels]`, the way the fixtures list codecs.
fn summary(c: &Codec) -> String {
    let mut s = format!("{} {}/{}", c.payload_id, c.name, c.hz_rate);
    if c.kind == Kind::Audio && c.channel_count() != 1 {
        s.push_str(&format!("/{}", c.channel_count()));
    }
    s
}

fn summaries<'a>(codecs: impl Iterator<Item = &'a Codec>) -> Vec<String> {
    codecs.map(summary).collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

fn find<'a>(codecs: &'a [Codec], key: &str) -> Result<&'a Codec, String> {
    let (kind, pt) = key.split_once(' ').ok_or_else(|| format!("bad codec key {key:?}"))?;
    codecs
        .iter()
        .find(|c| c.kind.as_str() == kind && c.payload_id.to_string() == pt)
        .ok_or_else(|| format!("no {key} codec"))
}

/// Checks `params` (exact parameter maps) and `feedback` (exact lists) of a fixture entry.
fn check_details(codecs: &[Codec], f: &Value) -> Result<(), String> {
    for (key, want) in f["params"].as_object().into_iter().flatten() {
        let c = find(codecs, key)?;
        let got: serde_json::Map<String, Value> =
            c.parameters.iter().map(|(k, v)| (k.to_owned(), Value::from(v))).collect();
        if Some(&got) != want.as_object() {
            return Err(format!("{key} parameters {}, want {want}", Value::Object(got)));
        }
    }
    for (key, want) in f["feedback"].as_object().into_iter().flatten() {
        let c = find(codecs, key)?;
        let got: Vec<String> = c.rtcp_feedback.iter().map(ToString::to_string).collect();
        if got != strings(want) {
            return Err(format!("{key} feedback {got:?}, want {want}"));
        }
    }
    Ok(())
}

fn check_list(what: &str, got: Vec<String>, want: &Value) -> Result<(), String> {
    if want.is_null() || got == strings(want) { Ok(()) } else { Err(format!("{what}: got {got:?}, want {want}")) }
}

fn check_fixture(ctx: &Context, f: &Value) -> Result<(), String> {
    let file = f["file"].as_str().ok_or("fixture without file")?;
    let o = load(&ctx.fixture(&format!("sdp/{file}")))?;
    check_list("audio", summaries(o.codecs_of(Kind::Audio)), &f["audio"])?;
    check_list("video", summaries(o.codecs_of(Kind::Video)), &f["video"])?;
    if f["headerExtensions"].as_u64() != Some(o.header_extensions.len() as u64) {
        return Err(format!("{} header extensions, want {}", o.header_extensions.len(), f["headerExtensions"]));
    }
    check_details(&o.codecs, f)?;
    // Our m= sections for it read back to the same options.
    let sdp = o.to_sdp().map_err(|e| format!("to SDP: {e}"))?;
    let back = Options::from_sdp(sdp.as_bytes()).map_err(|e| format!("own SDP: {e}"))?;
    if back != o {
        return Err("options -> SDP -> options changed them".into());
    }
    let json = Options::from_json(&o.to_json()).map_err(|e| format!("own JSON: {e}"))?;
    if json != o {
        return Err("options -> JSON -> options changed them".into());
    }
    Ok(())
}

fn check_negotiation(ctx: &Context, f: &Value) -> Result<(), String> {
    let path = |k: &str| f[k].as_str().map(|p| ctx.fixture(&format!("sdp/{p}"))).ok_or(format!("no {k}"));
    let local_offers = f["offerer"].as_str() != Some("remote");
    let result = negotiate_files(&path("local")?, &path("remote")?, local_offers);
    if let Some(want) = f["error"].as_str() {
        return match result {
            Err(e) if e == want => Ok(()),
            Err(e) => Err(format!("error {e:?}, want {want:?}")),
            Ok(a) => Err(format!("agreed {:?}, want error {want:?}", summaries(a.codecs.iter()))),
        };
    }
    let a = result?;
    check_list("audio", summaries(a.codecs_of(Kind::Audio)), &f["audio"])?;
    check_list("video", summaries(a.codecs_of(Kind::Video)), &f["video"])?;
    check_details(&a.codecs, f)?;
    let exts: Vec<String> = a.header_extensions.iter().map(|h| format!("{} {} {}", h.kind, h.id, h.uri)).collect();
    check_list("headerExtensions", exts, &f["headerExtensions"])?;
    if let Some(want) = f.get("effective") {
        let got = serde_json::to_value(&a).map_err(|e| e.to_string())?;
        if &got["effective"] != want {
            return Err(format!("effective {}, want {want}", got["effective"]));
        }
    }
    // The same codecs whoever offers, and negotiating the result changes nothing.
    let flipped = negotiate_files(&path("local")?, &path("remote")?, !local_offers)?;
    let set = |a: &Agreement| -> BTreeSet<String> {
        a.codecs
            .iter()
            .map(|c| format!("{} {}/{}/{}", c.kind, c.name.to_lowercase(), c.hz_rate, c.channel_count()))
            .collect()
    };
    if set(&a) != set(&flipped) {
        return Err(format!("the other side offering agrees {:?}", set(&flipped)));
    }
    let again = negotiate(&a.to_options(), &a.to_options()).map_err(|e| format!("again: {e}"))?;
    if again != a {
        return Err("negotiating the agreement again changed it".into());
    }
    Ok(())
}

/// Runs `rtc-conformance codecs negotiate` as a process: its JSON must be the
/// in-process agreement, and an unmet requirement must print `{"error":…}` and fail.
fn check_cli(ctx: &Context) -> Result<(), String> {
    let exe = ctx.runner_exe.as_ref().ok_or("no runner executable")?;
    let (chrome, firefox) = (ctx.fixture("sdp/chrome-offer.sdp"), ctx.fixture("sdp/firefox-offer.sdp"));
    let out = Command::new(exe)
        .args(["codecs", "negotiate"])
        .arg(&firefox)
        .arg(&chrome)
        .args(["--offerer", "remote"])
        .output()
        .map_err(|e| format!("spawn {}: {e}", exe.display()))?;
    if !out.status.success() {
        return Err(format!("exit {:?}: {}", out.status.code(), String::from_utf8_lossy(&out.stdout)));
    }
    let got: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("output is not JSON: {e}"))?;
    let want = serde_json::to_value(negotiate_files(&firefox, &chrome, false)?).map_err(|e| e.to_string())?;
    if got != want {
        return Err("CLI agreement differs from the library's".into());
    }
    let out = Command::new(exe)
        .args(["codecs", "negotiate"])
        .arg(ctx.fixture("sdp/stereo-required.json"))
        .arg(ctx.fixture("sdp/aiortc-offer.sdp"))
        .output()
        .map_err(|e| e.to_string())?;
    let err: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("error output is not JSON: {e}"))?;
    if out.status.success() || !err["error"].as_str().is_some_and(|e| e.contains("minChannels")) {
        return Err(format!("unmet requirement: exit {:?}, printed {err}", out.status.code()));
    }
    Ok(())
}

fn read_json(ctx: &Context, name: &str) -> Result<Vec<Value>, String> {
    let path = ctx.fixture(name);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    match serde_json::from_str(&text).map_err(|e| format!("{name}: {e}"))? {
        Value::Array(v) => Ok(v),
        _ => Err(format!("{name}: not a list")),
    }
}

fn run(ctx: &Context) -> Vec<CaseResult> {
    let mut out = Vec::new();
    match read_json(ctx, "sdp/fixtures.json") {
        Ok(fixtures) => {
            for f in &fixtures {
                let name = format!("sdp {}", f["file"].as_str().unwrap_or("?"));
                out.push(CaseResult::from_result(name, check_fixture(ctx, f)));
            }
        }
        Err(e) => out.push(CaseResult::fail("fixtures", e)),
    }
    match read_json(ctx, "sdp/negotiations.json") {
        Ok(cases) => {
            for f in &cases {
                let name = format!("negotiate: {}", f["name"].as_str().unwrap_or("?"));
                out.push(CaseResult::from_result(name, check_negotiation(ctx, f)));
            }
        }
        Err(e) => out.push(CaseResult::fail("negotiations", e)),
    }
    out.push(CaseResult::from_result("cli codecs negotiate", check_cli(ctx)));
    out.push(CaseResult::from_result("aiortc answers our offer", check_aiortc_answers(ctx)));
    out.push(CaseResult::from_result("aiortc offers, takes our answer", check_aiortc_offers(ctx)));
    out.push(CaseResult::from_result("chromium answers our offer", check_chromium_answers(ctx)));
    let h265 = crate::gst_h265::check(ctx).map(|what| println!("codecs: GStreamer and H.265: {what}"));
    out.push(CaseResult::from_result(
        "H.265 (RFC 7798): GStreamer's rtph265pay to rtc-payload and back through rtph265depay, decoded",
        h265,
    ));
    let vp9 = crate::browser::in_loopback_namespace(ctx, &["browser-vp9"]).map(|what| {
        println!("codecs: Chromium and VP9: {what}");
    });
    out.push(CaseResult::from_result("chromium offers, rtc answers VP9 (RFC 9628): decoded both ways", vp9));
    let av1 = crate::browser::in_loopback_namespace(ctx, &["browser-av1"]).map(|what| {
        println!("codecs: Chromium and AV1: {what}");
    });
    out.push(CaseResult::from_result(
        "chromium offers, rtc answers AV1 (AOM RTP payload format): decoded both ways",
        av1,
    ));
    out
}

/// Our `m=` sections with the transport attributes a WebRTC peer needs to
/// accept them (RFC 8829 section 5.2.1): BUNDLE, `a=mid`, ICE credentials, a
/// DTLS fingerprint, `a=setup`, `a=rtcp-mux`, `a=sendrecv`. Nothing is sent,
/// so the credentials and fingerprint are placeholders of the right form.
fn with_transport(sdp: &str, setup: &str) -> String {
    let fingerprint = format!("a=fingerprint:sha-256 {}", ["AB"; 32].join(":"));
    let mut out = Vec::new();
    let mut mid = 0;
    for line in sdp.lines() {
        if line.starts_with("m=") && mid == 0 {
            out.push("a=group:BUNDLE 0 1".to_owned());
        }
        out.push(line.to_owned());
        if line.starts_with("c=") {
            out.push(format!("a=mid:{mid}"));
            out.extend(["a=ice-ufrag:rtcc", "a=ice-pwd:rtccodecsrtccodecsrtccod"].map(str::to_owned));
            out.push(fingerprint.clone());
            out.extend([format!("a=setup:{setup}"), "a=rtcp-mux".into(), "a=sendrecv".into()]);
            mid += 1;
        }
    }
    out.join("\r\n") + "\r\n"
}

fn aiortc(ctx: &Context, mode: &str) -> Result<std::process::Child, String> {
    let py = ctx.require_python()?;
    Command::new(py)
        .arg(ctx.root.join("conformance/peers/aiortc_codecs.py"))
        .arg(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", py.display()))
}

fn finish(child: std::process::Child, what: &str) -> Result<String, String> {
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("aiortc {what}: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    String::from_utf8(out.stdout).map_err(|e| e.to_string())
}

/// `PT name/clock[/ch] {feedback}` per codec in order, and `kind id uri` per
/// extension: what an answer commits to (parameters are each side's own
/// receive preferences, so they are not compared).
fn commitments(codecs: &[Codec], exts: &[rtc_codecs::HeaderExtension]) -> (Vec<String>, BTreeSet<String>) {
    let c = codecs
        .iter()
        .map(|c| {
            // The order of a=rtcp-fb lines carries no meaning.
            let fb: BTreeSet<String> = c.rtcp_feedback.iter().map(ToString::to_string).collect();
            format!("{} {} {fb:?}", c.kind, summary(c))
        })
        .collect();
    (c, exts.iter().map(|h| format!("{} {} {}", h.kind, h.id, h.uri)).collect())
}

/// We offer `rtc-options.json`; aiortc answers. See [`check_peer_answers`].
fn check_aiortc_answers(ctx: &Context) -> Result<(), String> {
    check_peer_answers(
        ctx,
        "aiortc",
        || {
            let mut child = aiortc(ctx, "offer")?;
            drop(child.stdin.take());
            finish(child, "offer")
        },
        |offer| {
            let mut child = aiortc(ctx, "answer")?;
            child.stdin.take().ok_or("stdin")?.write_all(offer.as_bytes()).map_err(|e| e.to_string())?;
            finish(child, "answer")
        },
    )
}

/// We offer `rtc-options.json`; headless Chromium answers. See [`check_peer_answers`].
fn check_chromium_answers(ctx: &Context) -> Result<(), String> {
    check_peer_answers(ctx, "chromium", || chromium(ctx, "offer", None), |offer| chromium(ctx, "answer", Some(offer)))
}

/// Serves `conformance/peers/chromium_codecs.html` on 127.0.0.1 (with
/// `offer` at `/offer`), opens it as `/codecs.html?<mode>` in headless
/// Chromium (`RTC_CHROMIUM`, else `chromium` on the PATH) and returns the
/// SDP the page POSTs, waiting up to 30 s of real time for it.
fn chromium(ctx: &Context, mode: &str, offer: Option<&str>) -> Result<String, String> {
    let exe = std::env::var_os("RTC_CHROMIUM").unwrap_or_else(|| "chromium".into());
    let page_path = ctx.root.join("conformance/peers/chromium_codecs.html");
    let page = std::fs::read_to_string(&page_path).map_err(|e| format!("{}: {e}", page_path.display()))?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let text = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
        let url = format!("http://{}/codecs.html?{mode}", listener.local_addr().map_err(|e| e.to_string())?);
        let (tx, mut posted) = tokio::sync::mpsc::channel(4);
        tokio::spawn(crate::browser::serve(listener, "/codecs.html", page, offer.unwrap_or_default().to_owned(), tx));
        crate::browser::with_chromium(&exe, &url, &format!("codecs-{mode}"), async {
            crate::browser::posted_to(&mut posted, "/result").await
        })
        .await
    });
    let text = text.map_err(|e| {
        format!("chromium {mode}: {e} (scripts/install-peers.sh installs Debian's chromium; or set RTC_CHROMIUM)")
    })?;
    // Chromium writes CRLF; normalize whatever arrives for the SDP parser.
    Ok(text.replace("\r\n", "\n").replace('\n', "\r\n"))
}

/// We offer `rtc-options.json` to a live peer. Its answer must list exactly
/// the codecs (numbers and order), feedback and header extensions that our
/// negotiation predicts from the peer's own offer (its capabilities).
fn check_peer_answers(
    ctx: &Context,
    peer: &str,
    peer_offer: impl FnOnce() -> Result<String, String>,
    peer_answer: impl FnOnce(&str) -> Result<String, String>,
) -> Result<(), String> {
    let ours = load(&ctx.fixture("sdp/rtc-options.json"))?;
    let caps = Options::from_sdp(peer_offer()?.as_bytes()).map_err(|e| format!("{peer} offer: {e}"))?;
    let predicted = negotiate(&ours, &caps).map_err(|e| e.to_string())?;
    let offer = with_transport(&ours.to_sdp().map_err(|e| e.to_string())?, "actpass");
    let answer = peer_answer(&offer)?;
    let answer = Options::from_sdp(answer.as_bytes()).map_err(|e| format!("{peer} answer: {e}"))?;
    let got = commitments(&answer.codecs, &answer.header_extensions);
    let want = commitments(&predicted.codecs, &predicted.header_extensions);
    if got != want {
        return Err(format!("{peer} answered {got:?}, we predicted {want:?}"));
    }
    if predicted.codecs.is_empty() {
        return Err("nothing agreed: the case checks nothing".into());
    }
    // Negotiating with its answer agrees on the same codecs.
    let again = negotiate(&ours, &answer).map_err(|e| e.to_string())?;
    if summaries(again.codecs.iter()) != summaries(predicted.codecs.iter()) {
        return Err(format!("with {peer}'s answer we agree {:?}", summaries(again.codecs.iter())));
    }
    Ok(())
}

/// aiortc offers; we answer with our agreement's `m=` sections. aiortc must
/// accept the answer and end up with the agreement's codecs per transceiver.
fn check_aiortc_offers(ctx: &Context) -> Result<(), String> {
    let ours = load(&ctx.fixture("sdp/rtc-options.json"))?;
    let mut child = aiortc(ctx, "offerer")?;
    let mut stdout = BufReader::new(child.stdout.take().ok_or("stdout")?);
    let mut offer = String::new();
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err(format!("aiortc offerer stopped: {}", finish(child, "offerer").err().unwrap_or_default()));
        }
        if line.trim_end() == "--" {
            break;
        }
        offer.push_str(&line);
    }
    let theirs = Options::from_sdp(offer.as_bytes()).map_err(|e| format!("aiortc offer: {e}"))?;
    let agreed = negotiate(&theirs, &ours).map_err(|e| e.to_string())?;
    let answer = with_transport(&agreed.to_options().to_sdp().map_err(|e| e.to_string())?, "active");
    {
        let mut stdin = child.stdin.take().ok_or("stdin")?;
        stdin.write_all(answer.as_bytes()).map_err(|e| e.to_string())?;
    }
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).map_err(|e| e.to_string())?;
    finish(child, "offerer")?;
    let report: Value = serde_json::from_str(rest.trim()).map_err(|e| format!("aiortc report {rest:?}: {e}"))?;
    let mut checked = 0;
    for t in report.as_array().ok_or("report is not a list")? {
        let kind = if t["kind"] == "audio" { Kind::Audio } else { Kind::Video };
        let got: Vec<String> = t["codecs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| format!("{} {}/{}", c["pt"], c["name"].as_str().unwrap_or("?"), c["hz"]))
            .collect();
        let want: Vec<String> =
            agreed.codecs_of(kind).map(|c| format!("{} {}/{}", c.payload_id, c.name, c.hz_rate)).collect();
        if got != want {
            return Err(format!("aiortc {kind} transceiver uses {got:?}, we agreed {want:?}"));
        }
        checked += want.len();
    }
    if checked == 0 {
        return Err("nothing agreed: the case checks nothing".into());
    }
    Ok(())
}

/// The JSON `codecs negotiate` prints for an error.
pub fn error_json(message: &str) -> String {
    json!({ "error": message }).to_string()
}
