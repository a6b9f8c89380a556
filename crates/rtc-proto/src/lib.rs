//! The whole RTCConnection of the seeds as a sans-IO state machine: ICE
//! (rtc-ice), DTLS-SRTP or SDES keying (rtc-dtls, RFC 4568 keys), SRTP and
//! the RTP session (rtc-srtp), codec negotiation (rtc-codecs) and RTP
//! payload formats (rtc-payload), glued by the decisions that make them one
//! connection: which datagram goes where (RFC 7983, RFC 5761), who keys
//! SRTP how, which codec and payload type a track sends with, ICE restart,
//! the seeds' stream and track events, reports.
//!
//! No socket, task, lock or clock: time comes in as `now`, datagrams come
//! in through [`Connection::handle_datagram`], and what the connection
//! wants done comes out of [`Connection::poll_transmit`] (packetized and
//! protected in place in the caller's buffer), [`Connection::poll_event`],
//! [`Connection::poll_frame`] and [`Connection::poll_timeout`]. Randomness
//! (SSRCs, keys, ICE credentials, transaction ids) comes from one CSPRNG
//! per connection, seeded from the OS or, for reproducible tests, from
//! [`ConnectionConfig::seed`].
//!
//! An [`Endpoint`] holds many connections on shared sockets (forks, or a
//! media server with thousands of peers on one UDP port) and routes each
//! datagram to its connection in O(1): STUN requests by the ufrags in
//! USERNAME, responses by transaction id, everything else by its 4-tuple.
//!
//! A run loop over one UDP socket, the shape every driver has (the tokio
//! facade `rtc-api` is one):
//!
//! ```no_run
//! use std::net::{SocketAddr, UdpSocket};
//! use std::time::{Instant, SystemTime};
//! use rtc_candidate::Component;
//! use rtc_proto::{ConnectionConfig, Endpoint, SocketConfig, SocketOptions, MIN_TRANSMIT_BUFFER};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let udp = UdpSocket::bind("127.0.0.1:0")?;
//! let local = udp.local_addr()?;
//! let mut endpoint = Endpoint::new();
//! let socket = endpoint.add_socket(SocketConfig::new(
//!     "s1",
//!     vec![(Component::RTP, local)],
//!     SocketOptions::default(),
//!     rtc_dtls::Certificate::generate()?,
//! ));
//! let now = Instant::now();
//! let conn = endpoint.insert(rtc_proto::Connection::new(ConnectionConfig::default(), now, SystemTime::now())?);
//! endpoint.add_socket_to(now, conn, socket)?;
//! // ... signal endpoint.connection(conn).unwrap().description(Direction::Local) to the peer,
//! // and set its description with endpoint.connection_mut(conn) ...
//! let (mut rx, mut tx, mut frame) = (vec![0u8; 65_536], vec![0u8; MIN_TRANSMIT_BUFFER], Vec::new());
//! loop {
//!     let now = Instant::now();
//!     endpoint.handle_timeout(now);
//!     while let Some((_, t)) = endpoint.poll_transmit(now, &mut tx) {
//!         let _ = udp.send_to(&tx[..t.len], t.destination);
//!     }
//!     while let Some((_conn, event)) = endpoint.poll_event() { println!("{event:?}"); }
//!     while let Some((_conn, info)) = endpoint.poll_frame(&mut frame) { println!("{} octets on {:?}", frame.len(), info.track); }
//!     let wait = endpoint.poll_timeout().map(|t| t.saturating_duration_since(now));
//!     udp.set_read_timeout(wait.filter(|d| !d.is_zero()))?;
//!     if let Ok((n, from)) = udp.recv_from(&mut rx) {
//!         endpoint.handle_datagram(Instant::now(), socket, local, from, &mut rx[..n]);
//!     }
//! }
//! # use rtc_proto::Direction;
//! # }
//! ```
//!
//! Guarantees: untrusted input (datagrams, descriptions, candidates) never
//! panics, and what a peer can make the connection hold (remote streams and
//! tracks, frames awaiting [`Connection::poll_frame`], ICE state) is capped
//! by [`Limits`] and rtc-ice's limits before anything is allocated; bad
//! datagrams are dropped and counted ([`Connection::dropped`]). Once warm,
//! sending and receiving media allocate nothing per packet: frames are
//! packetized and protected straight into the caller's buffer, and received
//! frames are handed over by swapping buffers with the caller.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod answer;
mod connection;
mod desc;
mod endpoint;
mod error;
mod events;
mod keys;
mod offer;
mod sdp;

pub use answer::SdpType;
#[doc(hidden)]
pub use connection::fuzz_data;
pub use connection::{
    Connection, ConnectionConfig, DataMessage, DataState, DropReason, FrameInfo, Limits, MAX_PAYLOAD_LIMIT,
    MIN_TRANSMIT_BUFFER, Receive, SocketConfig, StreamOutput, Transmit, TurnStream, default_options,
};
pub use desc::{
    ConnectionDescription, CryptoKey, DataStreamDescription, DataTransport, Direction, DtlsEngine, SocketDescription,
    SocketOptions, SocketServers, StreamDescription, TrackDescription,
};
pub use endpoint::{ConnHandle, ConnectionMut, Endpoint};
pub use error::Error;
pub use events::{CandidatePairReport, ConnectionEvent, DataEvent, Event, RtpStats, SocketEvent, TrackReport};
pub use sdp::{MAX_SDP_LEN, MAX_SDP_SECTIONS};

/// A socket of a connection: a set of bound local addresses that share one
/// ICE agent (per connection) and one DTLS certificate. The caller names it
/// ([`Endpoint::add_socket`] numbers its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(pub u32);

/// A track of one connection, sent or received, numbered by the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackId(pub u32);

/// A stream (a group of tracks) of one connection, sent or received,
/// numbered by the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u32);

/// A data stream of one connection, local or remote, numbered by the
/// connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct DataStreamId(pub u32);

/// `n` random alphanumeric characters.
pub(crate) fn random_id(rng: &mut impl rand::Rng, n: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..n).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

/// A random non-zero SSRC.
pub(crate) fn random_ssrc(rng: &mut impl rand::Rng) -> u32 {
    loop {
        let s: u32 = rng.random();
        if s != 0 {
            return s;
        }
    }
}
