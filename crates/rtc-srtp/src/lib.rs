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
//! # Example
//!
//! An RTP packet written into a buffer, protected in place, and unprotected
//! by the receiver's context (the same master key and salt, as SDES or
//! DTLS-SRTP hands them to both ends):
//!
//! ```
//! use rtc_srtp::{Context, Profile, RtpHeader, RtpPacket};
//!
//! let (key, salt) = ([7u8; 16], [9u8; 12]);
//! let mut sender = Context::new(Profile::AeadAes128Gcm, &key, &salt)?;
//! let mut receiver = Context::new(Profile::AeadAes128Gcm, &key, &salt)?;
//!
//! let header = RtpHeader { payload_type: 111, sequence_number: 1, timestamp: 960, ssrc: 0x1234, ..Default::default() };
//! let mut buf = [0u8; 1500];
//! let len = header.write(b"an Opus frame", 0, &mut buf)?;
//! let srtp_len = sender.protect_rtp(&mut buf, len)?; // the tag goes after the packet
//! assert_eq!(srtp_len, len + Profile::AeadAes128Gcm.rtp_tag_len());
//! let copy = buf; // the same datagram, replayed later
//!
//! let rtp_len = receiver.unprotect_rtp(&mut buf[..srtp_len])?;
//! let packet = RtpPacket::new_checked(&buf[..rtp_len])?;
//! assert_eq!((packet.ssrc(), packet.payload()), (0x1234, &b"an Opus frame"[..]));
//! // A replay is refused.
//! assert!(receiver.unprotect_rtp(&mut copy.clone()[..srtp_len]).is_err());
//! # Ok::<(), rtc_srtp::Error>(())
//! ```
//!
//! # Guarantees
//!
//! - Bad input is an [`Error`], never a panic: packets are checked before
//!   they are read, and a packet that fails authentication, is a replay or
//!   is older than the replay window leaves the context unchanged.
//! - Protecting and unprotecting work in the caller's buffer and allocate
//!   nothing per packet; what a peer can make a context hold (SSRCs, replay
//!   state) is capped by [`Config`].
//! - A master key is refused once it protected 2^48 SRTP or 2^31 SRTCP
//!   packets (RFC 3711 section 9.2), so keystream is never reused.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(not(any(feature = "ring", feature = "rustcrypto")))]
compile_error!("enable the `ring` (default) or `rustcrypto` feature for AES-GCM");

pub mod bwe;
mod crypto;
mod error;
pub mod recovery;
mod replay;
pub mod rtcp;
pub mod rtp;
pub mod session;
mod srtp;
pub mod twcc;

pub use crypto::GcmBackend;
pub use error::Error;
pub use rtp::{Extension, RtpHeader, RtpPacket, SequenceUnwrapper};
pub use srtp::{Config, Context, DirectionKeys, MAX_SRTCP_PACKETS, MAX_SRTP_PACKETS, Profile, SessionKeys};

#[cfg(test)]
mod vectors;
