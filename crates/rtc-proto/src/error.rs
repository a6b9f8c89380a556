//! The error type of the connection core (and of the facades built on it).

/// Why a call was refused. The object stays usable: a refused description,
/// candidate, option or frame changes nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A feature the seeds name that this implementation does not have yet.
    #[error("{0} is not supported yet")]
    NotSupported(&'static str),
    /// A description dictionary that cannot be used.
    #[error("invalid description: {0}")]
    InvalidDescription(String),
    /// A remote candidate that cannot be used.
    #[error("invalid candidate: {0}")]
    InvalidCandidate(String),
    /// An options or constraints dictionary that cannot be used.
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    /// JSON that is not the dictionary it should be.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The two sides' codec options have nothing in common, or a required
    /// constraint cannot be met.
    #[error("codec negotiation failed: {0}")]
    Negotiation(#[from] rtc_codecs::NegotiateError),
    /// The ICE agent refused a call.
    #[error("ICE: {0}")]
    Ice(#[from] rtc_ice::Error),
    /// SRTP or RTP refused a packet or key.
    #[error("SRTP: {0}")]
    Srtp(#[from] rtc_srtp::Error),
    /// A DTLS certificate or association refused a call.
    #[error("DTLS: {0}")]
    Dtls(#[from] rtc_dtls::Error),
    /// A socket could not be bound or used (facades that do I/O).
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Media cannot flow yet: no selected ICE pair with consent, or no
    /// remote description to key SRTP from.
    #[error("not connected: {0}")]
    NotConnected(&'static str),
    /// The object was closed or stopped.
    #[error("closed")]
    Closed,
    /// A frame given to `write_frame` that its codec cannot carry.
    #[error("invalid frame: {0}")]
    InvalidFrame(&'static str),
    /// A socket, stream, track or connection this object does not have.
    #[error("unknown {0}")]
    Unknown(&'static str),
    /// A budget is used up (frames queued for sending, streams, tracks);
    /// nothing was taken. Says which.
    #[error("limit reached: {0}")]
    LimitReached(&'static str),
    /// A message longer than the peer takes (its `max-message-size`).
    #[error("a message of {len} octets is longer than the peer takes ({max})")]
    TooLarge {
        /// The message's length.
        len: usize,
        /// The peer's limit.
        max: usize,
    },
}

impl From<rtc_payload::Error> for Error {
    fn from(e: rtc_payload::Error) -> Self {
        match e {
            rtc_payload::Error::UnitTooLong { .. } => {
                Error::NotSupported("an H.264 NAL unit longer than a packet with packetization-mode 0")
            }
            rtc_payload::Error::InvalidFrame(why) => Error::InvalidFrame(why),
            _ => Error::InvalidFrame("the payload format cannot carry this frame"),
        }
    }
}
