//! ICE candidates: the `candidate:` attribute of RFC 8839 section 5.1 and the
//! `RTCCandidateDescriptionDictionary` of the RTCConnection object API.
//!
//! ```
//! use rtc_candidate::{Candidate, CandidateKind};
//!
//! let line = "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx \
//!             raddr 10.0.0.2 rport 46154 generation 0 ufrag EEtu network-id 3 network-cost 10";
//! let c = Candidate::parse(line)?;
//! assert_eq!(c.kind.kind(), CandidateKind::ServerReflexive);
//! assert_eq!(c.ufrag(), Some("EEtu"));
//! assert_eq!(c.to_string(), line); // canonical lines round-trip exactly
//! # Ok::<(), rtc_candidate::ParseError>(())
//! ```
//!
//! Parsing never panics and does work linear in the input. Unknown transports,
//! candidate types and extension attributes are kept, in order, so a line
//! formats back to itself. With the `serde` feature (on by default) a
//! [`Candidate`] is the seed's dictionary, with its field names.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod address;
mod candidate;
mod error;
mod extension;
mod line;
mod parse;
mod priority;
#[cfg(feature = "serde")]
mod serde_impl;
mod token;

pub use address::Address;
pub use candidate::Candidate;
pub use error::{Field, ParseError};
pub use extension::{Extension, Extensions, OtherExtension, TcpType, Ufrag};
pub use priority::{TypePreference, candidate_priority, pair_priority};
pub use token::{CandidateKind, CandidateType, Component, Foundation, Transport, TransportKind};
