//! The crate's error type.

/// Why a packet or a key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ends before a field it announces.
    #[error("truncated: {0}")]
    Truncated(&'static str),
    /// A field holds a value that is not allowed.
    #[error("invalid: {0}")]
    Invalid(&'static str),
    /// The output buffer lacks this many octets.
    #[error("buffer too small by {0} octets")]
    NoTailRoom(usize),
    /// The authentication tag did not verify.
    #[error("authentication failed")]
    AuthFailed,
    /// The packet index was already received.
    #[error("replayed packet")]
    Replayed,
    /// The packet index is older than the replay window.
    #[error("packet older than the replay window")]
    TooOld,
    /// A packet of a new SSRC arrived while the session tracks its maximum.
    #[error("too many SSRCs (at most {0})")]
    TooManySsrcs(usize),
    /// The master key reached a usage limit of RFC 3711 section 9.2.
    #[error("key usage limit: {0}")]
    KeyExhausted(&'static str),
    /// A key or salt has the wrong length for the profile.
    #[error("bad key: {0}")]
    BadKey(&'static str),
}
