//! Typed errors: bad dictionaries, bad SDP, and negotiations that cannot succeed.

use crate::types::{Kind, PayloadType};

/// An options dictionary that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OptionsError {
    /// The JSON does not have the dictionary's shape.
    #[error("options JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Two codecs of one kind use the same payload type.
    #[error("payload type {payload_id} names two {kind} codecs")]
    DuplicatePayloadType {
        /// The kind.
        kind: Kind,
        /// The payload type.
        payload_id: PayloadType,
    },
    /// A codec entry is unusable.
    #[error("codec {payload_id}: {reason}")]
    Codec {
        /// Its payload type.
        payload_id: PayloadType,
        /// What is wrong.
        reason: &'static str,
    },
    /// A header extension entry is unusable.
    #[error("header extension {id}: {reason}")]
    HeaderExtension {
        /// Its ID.
        id: u8,
        /// What is wrong.
        reason: &'static str,
    },
    /// A constraint is unusable.
    #[error("{kind} {name}: {reason}")]
    Constraint {
        /// The kind it is under.
        kind: Kind,
        /// The constraint's dictionary name (`maxWidth`, …).
        name: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

/// An SDP description or `m=` section that cannot be mapped to or from options.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// The description does not parse as SDP.
    #[error("SDP: {0}")]
    Parse(#[from] sdp_types::ParserError),
    /// An attribute does not follow its grammar.
    #[error("a={attribute}: {source}")]
    Attribute {
        /// The attribute name.
        attribute: &'static str,
        /// What sdp-types found wrong.
        source: sdp_types::AttributeError,
    },
    /// A field of the `m=` section or of an attribute is wrong.
    #[error("{field}: {reason}")]
    Field {
        /// What it is about (`m= format`, `a=rtpmap channels`, …).
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// A dynamic payload type is listed without an `a=rtpmap`.
    #[error("payload type {0} has no a=rtpmap and no static mapping (RFC 3264 section 5.1)")]
    MissingRtpmap(u8),
    /// The section is not audio or video.
    #[error("m= section is not audio or video")]
    NotAudioOrVideo,
    /// The options to write are not valid.
    #[error(transparent)]
    Options(#[from] OptionsError),
}

/// Which options dictionary an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Side {
    /// The offerer's (first argument of [`crate::negotiate`]).
    Offer,
    /// The answerer's.
    Answer,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Offer => "offer",
            Side::Answer => "answer",
        })
    }
}

/// A negotiation that cannot succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NegotiateError {
    /// One side's dictionary is invalid.
    #[error("{side}: {source}")]
    Invalid {
        /// Whose.
        side: Side,
        /// What is wrong with it.
        source: OptionsError,
    },
    /// A required constraint cannot be met.
    #[error("required {kind} {constraint} cannot be met: {reason}")]
    Unsatisfiable {
        /// The kind.
        kind: Kind,
        /// The constraint's dictionary name (`minWidth`, `maxBitrate`, …).
        constraint: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// More codecs agreed than there are payload types to give them.
    #[error("no free payload type left to resolve a payload type conflict")]
    PayloadTypesExhausted,
    /// More header extensions agreed than there are IDs to give them.
    #[error("no free header extension ID left to resolve an ID conflict")]
    ExtensionIdsExhausted,
}
