//! Suite `codecs`: real Chrome, Firefox and aiortc offers (fixtures under
//! `conformance/fixtures/sdp/`) read into options dictionaries, written back
//! as SDP, and negotiated with each other and with our own dictionaries as a
//! browser answering them would; plus the `codecs negotiate` subcommand end to end.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

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
    out
}

/// The JSON `codecs negotiate` prints for an error.
pub fn error_json(message: &str) -> String {
    json!({ "error": message }).to_string()
}
