//! The rtc conformance runner: suites of cases checked against RFC vectors and
//! real third-party peers, plus line-oriented subcommands that expose each crate
//! to external test drivers.
//!
//! A suite is a function returning a list of [`CaseResult`]s; [`suites::ALL`]
//! lists every suite by name. [`fuzz`] holds the bodies of the cargo-fuzz
//! targets so that `cargo test` can replay their corpora on stable Rust.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod browser;
pub mod browser_mdns;
pub mod browser_tcp;
mod devtools;
pub mod example_browser;
pub mod example_call;
pub mod example_whip;
pub mod fuzz;
mod gst_h265;
pub mod media;
pub mod nat;
pub mod renegotiate;
pub mod runner;
pub mod simulcast_call;
pub mod suites;
pub mod vp9_call;

pub use runner::{CaseResult, Suite};
