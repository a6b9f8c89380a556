//! Suite `candidate`: RFC 8839/6544 examples and lines as browsers and other
//! ICE stacks write them (fixtures), the error cases, RFC 8445 priorities, and
//! the `candidate parse|format` subcommands end to end.

use std::io::Write;
use std::process::{Command, Stdio};

use rtc_candidate::{Candidate, Component, TypePreference, candidate_priority};
use serde_json::{Value, json};

use crate::runner::{CaseResult, Context, Suite};

/// The suite.
pub const SUITE: Suite =
    Suite { name: "candidate", about: "candidate lines: RFC examples, browser/ICE-stack fixtures, errors, JSON", run };

/// `candidate parse`: one line in, the dictionary (or an error object) out.
pub fn parse_to_json(line: &str) -> String {
    match Candidate::parse(line) {
        Ok(c) => serde_json::to_string(&c).unwrap_or_else(|e| json!({ "error": e.to_string() }).to_string()),
        Err(e) => json!({ "error": e.to_string() }).to_string(),
    }
}

/// `candidate format`: one dictionary in, the canonical line (or an error object) out.
pub fn format_from_json(line: &str) -> String {
    match serde_json::from_str::<Candidate>(line) {
        Ok(c) => c.to_string(),
        Err(e) => json!({ "error": e.to_string() }).to_string(),
    }
}

fn read_jsonl(ctx: &Context, name: &str) -> Result<Vec<Value>, String> {
    let path = ctx.fixture(name);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{name}: {e}")))
        .collect()
}

fn check_fixture(f: &Value) -> Result<(), String> {
    let line = f["line"].as_str().ok_or("fixture without line")?;
    let c = Candidate::parse(line).map_err(|e| format!("parse: {e}"))?;
    let dict = serde_json::to_value(&c).map_err(|e| e.to_string())?;
    for (k, want) in f["expect"].as_object().ok_or("fixture without expect")? {
        if dict.get(k) != Some(want) {
            return Err(format!("{k}: got {:?}, want {want}", dict.get(k)));
        }
    }
    let canonical = f["canonical"].as_str().unwrap_or_else(|| line.strip_prefix("a=").unwrap_or(line));
    let shown = c.to_string();
    if shown != canonical {
        return Err(format!("formats as {shown:?}, want {canonical:?}"));
    }
    let again = Candidate::parse(&shown).map_err(|e| format!("reparse: {e}"))?;
    if again != c {
        return Err("reparsed candidate differs".into());
    }
    let back: Candidate = serde_json::from_value(dict.clone()).map_err(|e| format!("from JSON: {e}"))?;
    if serde_json::to_value(&back).map_err(|e| e.to_string())? != dict {
        return Err("JSON round trip changed the dictionary".into());
    }
    Ok(())
}

fn check_error(f: &Value) -> Result<(), String> {
    let line = f["line"].as_str().ok_or("fixture without line")?;
    match Candidate::parse(line) {
        Ok(c) => Err(format!("parsed as {c}")),
        Err(e) => {
            if f["field"].as_str() != Some(e.field.as_str()) {
                return Err(format!("error names {:?}, want {}: {e}", e.field.as_str(), f["field"]));
            }
            if let Some(reason) = f["reason"].as_str()
                && reason != e.reason
            {
                return Err(format!("reason {:?}, want {reason:?}", e.reason));
            }
            Ok(())
        }
    }
}

/// Runs the subcommand as a separate process over every fixture line.
fn check_cli(ctx: &Context, fixtures: &[Value], errors: &[Value]) -> Result<(), String> {
    let exe = ctx.runner_exe.as_ref().ok_or("no runner executable")?;
    let mut input = String::new();
    for f in fixtures.iter().chain(errors) {
        input.push_str(f["line"].as_str().unwrap_or_default());
        input.push('\n');
    }
    let run = |op: &str, input: &str| -> Result<Vec<String>, String> {
        let mut child = Command::new(exe)
            .args(["candidate", op])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", exe.display()))?;
        child.stdin.take().ok_or("stdin")?.write_all(input.as_bytes()).map_err(|e| e.to_string())?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect())
    };
    let parsed = run("parse", &input)?;
    if parsed.len() != fixtures.len() + errors.len() {
        return Err(format!("parse wrote {} lines for {} inputs", parsed.len(), fixtures.len() + errors.len()));
    }
    let (good, bad) = parsed.split_at(fixtures.len());
    if let Some(l) = good.iter().find(|l| l.contains("\"error\"")) {
        return Err(format!("parse: {l}"));
    }
    if let Some(l) = bad.iter().find(|l| !l.starts_with("{\"error\":")) {
        return Err(format!("parse accepted a bad line: {l}"));
    }
    let mut dicts = good.join("\n");
    dicts.push_str("\n{\"foundation\":\"x\"}\n");
    let formatted = run("format", &dicts)?;
    if formatted.len() != fixtures.len() + 1 {
        return Err(format!("format wrote {} lines for {} inputs", formatted.len(), fixtures.len() + 1));
    }
    for (line, f) in formatted.iter().zip(fixtures) {
        let again = Candidate::parse(line).map_err(|e| format!("format wrote {line:?}: {e}"))?;
        let want = Candidate::parse(f["line"].as_str().unwrap_or_default()).map_err(|e| e.to_string())?;
        // JSON does not carry extension order; compare the dictionaries.
        if serde_json::to_value(&again).ok() != serde_json::to_value(&want).ok() {
            return Err(format!("format wrote {line:?} for {}", f["line"]));
        }
    }
    if !formatted.last().is_some_and(|l| l.starts_with("{\"error\":")) {
        return Err("format accepted an incomplete dictionary".into());
    }
    Ok(())
}

fn run(ctx: &Context) -> Vec<CaseResult> {
    let mut out = Vec::new();
    let fixtures = match read_jsonl(ctx, "candidates.jsonl") {
        Ok(f) => f,
        Err(e) => return vec![CaseResult::fail("fixtures", e)],
    };
    let errors = match read_jsonl(ctx, "candidate-errors.jsonl") {
        Ok(f) => f,
        Err(e) => return vec![CaseResult::fail("error-fixtures", e)],
    };
    for (i, f) in fixtures.iter().enumerate() {
        let name = format!("line-{i:02} {}", f["source"].as_str().unwrap_or("?"));
        out.push(CaseResult::from_result(name, check_fixture(f)));
    }
    for (i, f) in errors.iter().enumerate() {
        out.push(CaseResult::from_result(format!("error-{i:02} {}", f["field"]), check_error(f)));
    }
    // RFC 8445 section 5.1.2.1 with the 5.1.2.2 type preferences gives the
    // priorities in the RFC 8839 section 4.2 example.
    let host = candidate_priority(TypePreference::HOST, 65535, Component::RTP);
    let srflx = candidate_priority(TypePreference::SERVER_REFLEXIVE, 65535, Component::RTP);
    out.push(CaseResult::from_result(
        "rfc8445 priorities",
        if (host, srflx) == (2_130_706_431, 1_694_498_815) {
            Ok(())
        } else {
            Err(format!("host {host}, srflx {srflx}"))
        },
    ));
    out.push(CaseResult::from_result("cli parse/format", check_cli(ctx, &fixtures, &errors)));
    out
}
