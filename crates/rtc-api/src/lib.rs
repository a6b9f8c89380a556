//! The RTCConnection object API of the seeds (`RTCConnection`, `RTCSocket`,
//! `RTCMediaStream`, `RTCMediaStreamTrack` and their dictionaries) on tokio.
//!
//! A thin driver: every protocol decision is in the sans-IO core
//! [`rtc_proto`] (ICE, DTLS-SRTP or SDES keying, SRTP, RTP payload formats,
//! negotiation, events), and this crate only binds UDP sockets, moves
//! datagrams and time into the core, and hands its events and frames to the
//! objects below. A connection and its forks share one driver task and one
//! lock, taken once per received batch of datagrams and once per written
//! frame, never across a system call; sending and receiving allocate
//! nothing per packet once warm.
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
//! 5763/5764): each socket's certificate fingerprint is in its
//! `fingerprints`, a DTLS 1.2 handshake runs over the ICE path, the peer's
//! certificate must match its signaled fingerprint, and SRTP is keyed from
//! the exported material. No media leaves before an SRTP context exists.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod connection;
mod data;
mod driver;
mod events;
mod frame;
mod media;
mod messages;
mod socket;

pub use connection::RtcConnection;
pub use data::RtcDataStream;
pub use events::Events;
pub use frame::{Frame, FrameData};
pub use media::{RtcMediaStream, RtcMediaStreamTrack};
pub use messages::DataStreamMessage;
pub use rtc_dtls::Certificate;
pub use rtc_proto::{
    ConnectionDescription, ConnectionEvent, CryptoKey, DataEvent, DataState, DataStreamDescription, DataTransport,
    Direction, Error, RtpStats, SdpType, SocketDescription, SocketEvent, SocketOptions, SocketServers,
    StreamDescription, TrackDescription, TrackReport, default_options,
};
pub use socket::RtcSocket;
