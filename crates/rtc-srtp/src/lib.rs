//! The media path: RTP and RTCP packets, their protection with SRTP and
//! SRTCP, and a sans-IO RTP session keeping webrtc-stats statistics.
//!
//! - [`rtp`]: a checked zero-copy view over `&[u8]` ([`RtpPacket`]) with RFC 8285
//!   header extensions, a writer ([`RtpHeader::write`]) and extended sequence numbers.
//! - [`rtcp`]: compound packets (SR, RR, SDES, BYE, APP, generic NACK, PLI, FIR,
//!   REMB) read by an iterator and written by [`rtcp::Writer`].
//! - [`Context`]: SRTP/SRTCP (RFC 3711, RFC 6188, RFC 7714) in the six common
//!   profiles, protecting and unprotecting in place without allocating per packet.
//! - [`session`]: a sans-IO RTP session: per-stream sequence numbers and
//!   timestamps, webrtc-stats reception statistics, RTT, SR/RR generation.
//!
//! Bad input is an [`Error`], never a panic.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(not(any(feature = "ring", feature = "rustcrypto")))]
compile_error!("enable the `ring` (default) or `rustcrypto` feature for AES-GCM");

mod crypto;
mod error;
mod replay;
pub mod rtcp;
pub mod rtp;
pub mod session;
mod srtp;

pub use crypto::GcmBackend;
pub use error::Error;
pub use rtp::{Extension, RtpHeader, RtpPacket, SequenceUnwrapper};
pub use srtp::{Config, Context, DirectionKeys, MAX_SRTCP_PACKETS, MAX_SRTP_PACKETS, Profile, SessionKeys};

#[cfg(test)]
mod vectors;
