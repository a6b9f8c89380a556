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
//! A whole call between two connections in one process on 127.0.0.1: the
//! descriptions cross as JSON text (any signaling channel will do), DTLS
//! keys SRTP, a frame goes from one side to the other, and a data stream
//! carries a message back:
//!
//! ```
//! use std::time::Duration;
//! use rtc_api::{ConnectionDescription, ConnectionEvent, DataStreamDescription, Direction, RtcConnection,
//!               RtcMediaStream, RtcMediaStreamTrack, RtcSocket, SocketOptions, SocketServers, StreamDescription};
//! use rtc_codecs::Kind;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (alice, bob) = (RtcConnection::new(None, None)?, RtcConnection::new(None, None)?);
//! let mut connected = alice.events();
//! for c in [&alice, &bob] {
//!     c.add_socket(&RtcSocket::new(SocketServers::loopback_v4(), SocketOptions::default()).await?)?;
//! }
//! let stream = RtcMediaStream::new(StreamDescription::default());
//! let audio = RtcMediaStreamTrack::of_kind(Kind::Audio);
//! stream.add_track(audio.clone())?;
//! alice.send_stream(&stream, true)?;
//! let chat = alice.create_data_stream(DataStreamDescription::new("chat"))?;
//!
//! // Signaling: each side's description, as JSON text, to the other. Without
//! // `keys`, SRTP is keyed by DTLS against the sockets' fingerprints.
//! for (from, to) in [(&alice, &bob), (&bob, &alice)] {
//!     let mut json = from.description(Direction::Local).unwrap();
//!     json.keys.clear();
//!     to.set_description(ConnectionDescription::from_json(&json.to_json())?, Direction::Remote)?;
//! }
//! while connected.next().await != Some(ConnectionEvent::Connected) {}
//!
//! audio.write_frame(&[0xf8, 0xff, 0xfe], Duration::from_millis(20))?; // 20 ms of Opus
//! let theirs = bob.remote_streams()[0].tracks()[0].clone();
//! assert_eq!(&theirs.read_frame().await.unwrap().data[..], &[0xf8, 0xff, 0xfe]);
//!
//! let bobs = bob.accept_data_stream().await.unwrap();
//! while bobs.state() != rtc_api::DataState::Open {
//!     tokio::time::sleep(Duration::from_millis(1)).await;
//! }
//! bobs.send_text("hello alice")?;
//! assert_eq!(chat.recv().await.unwrap().text(), Some("hello alice"));
//! alice.close();
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
    CandidatePairReport, ConnectionDescription, ConnectionEvent, CryptoKey, DataEvent, DataState,
    DataStreamDescription, DataTransport, Direction, DtlsEngine, Error, RtpStats, SdpType, SocketDescription,
    SocketEvent, SocketOptions, SocketServers, StreamDescription, TrackDescription, TrackReport, default_options,
};
pub use socket::RtcSocket;
