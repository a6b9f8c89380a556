//! Every conformance suite, one module each.

use crate::runner::Suite;

pub mod api;
pub mod candidate;
pub mod codecs;
pub mod data;
pub mod ice;
pub mod interop;
pub mod srtp;

/// All suites, in the order `rtc-conformance run` runs them.
pub const ALL: &[Suite] =
    &[candidate::SUITE, codecs::SUITE, srtp::SUITE, ice::SUITE, api::SUITE, data::SUITE, interop::SUITE];

/// Looks a suite up by name.
pub fn find(name: &str) -> Option<&'static Suite> {
    ALL.iter().find(|s| s.name == name)
}
