//! Line-oriented subcommands, one module per crate.

pub(crate) mod call;
pub(crate) mod candidate;
pub(crate) mod codecs;
pub(crate) mod ice;
pub(crate) mod srtp;
