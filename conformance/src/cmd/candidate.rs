//! `rtc-conformance candidate parse|format`.

use clap::Subcommand;

#[derive(Subcommand, Clone, Copy)]
pub(crate) enum Op {
    /// Candidate lines (with or without `a=`) in; one JSON dictionary (or
    /// `{"error":…}`) per line out.
    Parse,
    /// JSON dictionaries in; one canonical `candidate:` line (or `{"error":…}`)
    /// per line out.
    Format,
}

pub(crate) fn handle(op: &Op, line: &str) -> String {
    match op {
        Op::Parse => rtc_conformance::suites::candidate::parse_to_json(line),
        Op::Format => rtc_conformance::suites::candidate::format_from_json(line),
    }
}
