//! `rtc-conformance srtp protect|unprotect|protect-rtcp|unprotect-rtcp --profile P --key HEX`.

use clap::Args;

/// One SRTP session over stdin: hex packets in, hex packets (or `ERR <reason>`) out.
#[derive(Args, Clone)]
pub(crate) struct SrtpArgs {
    /// What to do with each packet.
    #[arg(value_parser = rtc_conformance::suites::srtp::OPS)]
    pub(crate) op: String,
    /// aes128cm80, aes128cm32, aes256cm80, aes256cm32, gcm128 or gcm256.
    #[arg(long, value_parser = ["aes128cm80", "aes128cm32", "aes256cm80", "aes256cm32", "gcm128", "gcm256"])]
    pub(crate) profile: String,
    /// Master key followed by master salt, in hex.
    #[arg(long)]
    pub(crate) key: String,
}

pub(crate) fn session(args: &SrtpArgs) -> Result<impl FnMut(&str) -> String, String> {
    rtc_conformance::suites::srtp::line_session(&args.op, &args.profile, &args.key)
}
