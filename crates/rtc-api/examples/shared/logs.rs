//! Logs for the examples (`#[path]`-included by each): rtc's `tracing`
//! events on stderr, so standard output stays the examples' own.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

/// Logs to stderr, filtered by `RUST_LOG` (`warn` when it is unset; e.g.
/// `RUST_LOG=rtc_proto=debug,rtc_ice=debug`).
pub(crate) fn init() {
    let filter = EnvFilter::builder().with_default_directive(LevelFilter::WARN.into()).from_env_lossy();
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
}
