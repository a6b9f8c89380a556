//! The agent's error type.

/// Why an [`Agent`](crate::Agent) call was refused. Untrusted datagrams never
/// produce an error: they are dropped and counted (see
/// [`DropReason`](crate::DropReason)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A ufrag or password is not 4..=256 (ufrag) or 22..=256 (pwd) ice-chars.
    #[error("invalid ICE credentials: {0}")]
    InvalidCredentials(&'static str),
    /// A candidate this agent cannot use (not UDP, not an IP address, …).
    #[error("unsupported candidate: {0}")]
    UnsupportedCandidate(&'static str),
    /// A component other than 1 (or 2 without mux).
    #[error("component {0} is not used by this agent")]
    InvalidComponent(u16),
    /// A configured cap was reached; the input was not taken.
    #[error("limit reached: {0}")]
    LimitReached(&'static str),
    /// The same local address was added twice.
    #[error("duplicate: {0}")]
    Duplicate(&'static str),
    /// A `stun:` or `turn:` URL that does not parse (RFC 7064, RFC 7065).
    #[error("invalid STUN or TURN URL: {0}")]
    InvalidUrl(&'static str),
    /// A `stun:` or `turn:` URL whose host name did not resolve to any address.
    #[error("cannot resolve STUN or TURN server: {0}")]
    Resolve(&'static str),
    /// A peer's proposed Ta (`a=ice-pacing`, RFC 8839 section 5.5) above
    /// [`Timing::MAX_PACING`](crate::Timing::MAX_PACING).
    #[error("ice-pacing of {0:?} is more than the {max:?} this agent takes", max = crate::Timing::MAX_PACING)]
    InvalidPacing(std::time::Duration),
    /// An ICE lite configuration that cannot work: a lite agent with STUN or
    /// TURN servers (it gathers host candidates only, RFC 8445 section
    /// 5.2), or a lite agent told that its peer is lite too.
    #[error("ICE lite: {0}")]
    Lite(&'static str),
    /// Bytes from a stream to a TURN server (TCP or TLS) that are not STUN
    /// and ChannelData back to back, a message over the limit, or more
    /// buffered than the cap ([`crate::framing::Deframer`]): the connection
    /// must end.
    #[error("TURN stream framing: {0}")]
    Framing(&'static str),
    /// The TLS setup for `turns:` servers: a CA certificate that does not
    /// parse or cannot be a root.
    #[error("TLS: {0}")]
    Tls(&'static str),
    /// Something this crate does not support (`turns:` over UDP, DTLS).
    #[error("not supported: {0}")]
    Unsupported(&'static str),
    /// A datagram cannot be framed for a TURN relay (no allocation, no
    /// permission, no room in the buffer).
    #[error("cannot relay: {0}")]
    Relay(&'static str),
    /// The agent was closed.
    #[error("the agent is closed")]
    Closed,
}
