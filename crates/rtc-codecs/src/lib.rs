//! The codec-options negotiator: the seed's `RTCConnectionOptionsDictionary`
//! (`codecs`, `required`, `optional`), offer/answer negotiation of two of
//! them, and their mapping to and from SDP `m=` sections.
//!
//! ```
//! use rtc_codecs::{Kind, Options, negotiate};
//!
//! let ours = Options::from_json(r#"{
//!   "codecs": [
//!     {"payloadId": 111, "kind": "audio", "name": "opus", "hzRate": 48000, "channels": 2,
//!      "parameters": {"minptime": 10, "useinbandfec": 1}},
//!     {"payloadId": 96, "kind": "video", "name": "VP8", "hzRate": 90000,
//!      "rtcpFeedback": [{"type": "nack", "parameter": "pli"}]}
//!   ],
//!   "optional": {"video": {"maxWdith": 1280, "maxHeight": 720}}
//! }"#)?;
//! let theirs = Options::from_sdp(b"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
//!     m=audio 9 UDP/TLS/RTP/SAVPF 109\r\na=rtpmap:109 opus/48000/2\r\n\
//!     a=fmtp:109 maxplaybackrate=48000;stereo=1;useinbandfec=1\r\n")?;
//! let agreed = negotiate(&ours, &theirs)?;
//! let opus = &agreed.codecs[0];
//! assert_eq!(opus.payload_id.get(), 111); // the offerer's payload type
//! assert_eq!(opus.parameters.get("useinbandfec"), Some("1"));
//! assert_eq!(agreed.codecs_of(Kind::Video).count(), 0); // they offered no video
//! assert_eq!(agreed.effective(Kind::Video).max_width, Some(1280));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Rules, all symmetric in the two sides and idempotent (see
//! `docs/rtc-codecs.md`): codecs match on kind, name without case, clock
//! rate, channels (audio defaults to 1) and each codec's format key (H.264
//! packetization-mode and sub-profile, H.265 profile-space, profile-id,
//! tier-flag and tx-mode, VP9 `profile-id`, AV1 `profile`);
//! parameters merge as receiver limits (smaller maximum, both-sides flags);
//! feedback and header extensions are intersected; RTX and RED go with the
//! codecs they refer to. Nothing panics on bad input: dictionaries and SDP
//! that cannot be used are typed errors.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod h264;
mod negotiate;
mod rules;
mod sdp;
mod types;

pub use error::{NegotiateError, OptionsError, SdpError, Side};
pub use negotiate::{Agreement, negotiate};
pub use types::{
    Codec, Constraints, Dimension, Feedback, HeaderExtension, Kind, MediaConstraints, Options, Parameters, PayloadType,
};
