//! `rtc-conformance codecs negotiate|options|sdp`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use rtc_conformance::suites::codecs::{error_json, load, negotiate_files};

/// Who made the offer: the agreement keeps the offerer's order and payload types.
#[derive(ValueEnum, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offerer {
    /// LOCAL offers, REMOTE answers.
    Local,
    /// REMOTE offers, LOCAL answers.
    Remote,
}

#[derive(Subcommand, Clone)]
pub(crate) enum Op {
    /// Negotiates two options files (each a JSON options dictionary or an SDP
    /// description) and prints the agreement as JSON, or `{"error":…}` and exits 1.
    Negotiate {
        /// Our options (JSON or SDP file).
        local: PathBuf,
        /// The peer's options (JSON or SDP file).
        remote: PathBuf,
        /// Which side offered.
        #[arg(long, value_enum, default_value = "local")]
        offerer: Offerer,
    },
    /// Reads an options file (JSON or SDP) and prints the dictionary as JSON.
    Options {
        /// The file.
        file: PathBuf,
    },
    /// Reads an options file (JSON or SDP) and prints our SDP `m=` sections for it.
    Sdp {
        /// The file.
        file: PathBuf,
    },
}

/// Prints the result (a closed stdout is not an error worth a panic).
fn print_or_fail(r: Result<String, String>) -> ExitCode {
    let (text, code) = match r {
        Ok(s) => (s, ExitCode::SUCCESS),
        Err(e) => (error_json(&e), ExitCode::FAILURE),
    };
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    code
}

pub(crate) fn run(op: &Op) -> ExitCode {
    print_or_fail(match op {
        Op::Negotiate { local, remote, offerer } => negotiate_files(local, remote, *offerer == Offerer::Local)
            .and_then(|a| serde_json::to_string_pretty(&a).map_err(|e| e.to_string())),
        Op::Options { file } => load(file).and_then(|o| serde_json::to_string_pretty(&o).map_err(|e| e.to_string())),
        Op::Sdp { file } => load(file).and_then(|o| o.to_sdp().map_err(|e| e.to_string())),
    })
}
