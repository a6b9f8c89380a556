//! The RTCConnection object API of the seeds (`RTCConnection`, `RTCSocket`,
//! `RTCMediaStream`, `RTCMediaStreamTrack` and their dictionaries) on tokio.
//!
//! A thin facade: ICE is `rtc-ice`'s sans-IO agent, candidates are
//! `rtc-candidate`'s, RTP, SRTP and statistics are `rtc-srtp`'s, codec
//! negotiation is `rtc-codecs`'. This crate binds UDP sockets, routes
//! datagrams to agents, moves time into the state machines, and maps their
//! events to the seeds' events.
//!
//! ```no_run
//! use rtc_api::{Direction, RtcConnection, RtcMediaStream, RtcMediaStreamTrack, RtcSocket, SocketOptions,
//!               SocketServers, StreamDescription};
//! use rtc_codecs::Kind;
//! # async fn demo() -> Result<(), rtc_api::Error> {
//! let conn = RtcConnection::new(None, None)?; // context-id, secret, cname from a CSPRNG
//! let socket = RtcSocket::new(SocketServers::loopback_v4(), SocketOptions::default()).await?;
//! let mut candidates = socket.events();
//! conn.add_socket(&socket)?;
//! let stream = RtcMediaStream::new(StreamDescription::default());
//! stream.add_track(RtcMediaStreamTrack::of_kind(Kind::Audio))?;
//! conn.send_stream(&stream, true)?;
//! let json = conn.description(Direction::Local).unwrap().to_json(); // send it to the peer
//! # Ok(()) }
//! ```
//!
//! Media is always SRTP, keyed one of two ways. With `keys` in both
//! descriptions, each side's master key and salt travel in its own
//! description (RFC 4568 inline form) and each direction uses the sender's
//! first suite the receiver also lists. When the remote description has no
//! `keys`, as a browser's has none, the call is keyed by DTLS-SRTP (RFC
//! 5763/5764): each socket's self-signed certificate fingerprint is in its
//! `fingerprints`, a DTLS 1.2 handshake runs over the ICE path, the peer's
//! certificate must match its signaled fingerprint, and SRTP is keyed from
//! the exported material. No media leaves before an SRTP context exists.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod connection;
mod desc;
mod dtls;
mod error;
mod events;
mod keys;
mod media;
mod packetize;
mod sdp;
mod socket;

pub use connection::{RtcConnection, default_options};
pub use desc::{
    ConnectionDescription, CryptoKey, Direction, SocketDescription, SocketOptions, SocketServers, StreamDescription,
    TrackDescription,
};
#[doc(hidden)]
pub use dtls::fuzz_dtls;
pub use error::Error;
pub use events::{ConnectionEvent, Events, RtpStats, SocketEvent, TrackReport};
pub use media::{Frame, RtcMediaStream, RtcMediaStreamTrack};
#[doc(hidden)]
pub use packetize::fuzz_depacketize;
pub use socket::RtcSocket;

/// `n` random alphanumeric characters from the thread-local CSPRNG.
pub(crate) fn random_id(n: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

/// A random non-zero SSRC.
pub(crate) fn random_ssrc() -> u32 {
    loop {
        let s: u32 = rand::random();
        if s != 0 {
            return s;
        }
    }
}
