//! The ICE socket of the RTCConnection object API: a sans-IO RFC 8445 agent
//! with RFC 7675 consent freshness, and (feature `tokio`) a UDP driver.
//!
//! [`Agent`] holds no socket, thread or clock. The driver feeds it datagrams
//! with [`Agent::handle_receive`] and the passage of time with
//! [`Agent::handle_timeout`], and drains [`Agent::poll_transmit`],
//! [`Agent::poll_event`] and [`Agent::poll_timeout`] after each call.
//!
//! ```
//! use std::time::Instant;
//! use rtc_ice::{Agent, AgentConfig, Event, Role};
//! use rtc_candidate::Component;
//!
//! let now = Instant::now();
//! let mut agent = Agent::new(AgentConfig { role: Role::Controlling, ..AgentConfig::default() })?;
//! let host = agent.add_host_candidate(now, Component::RTP, "127.0.0.1:5000".parse().unwrap())?;
//! agent.end_of_local_candidates(now);
//! assert!(matches!(agent.poll_event(), Some(Event::Candidate(c)) if c == host));
//! assert!(matches!(agent.poll_event(), Some(Event::CandidatesDone)));
//! # Ok::<(), rtc_ice::Error>(())
//! ```
//!
//! Every request and response is authenticated with the short-term
//! credentials (MESSAGE-INTEGRITY, USERNAME `local:remote`, FINGERPRINT);
//! anything else is dropped and counted in [`Stats`], never a panic. Remote
//! candidates, pairs, peer-reflexive candidates and pending transactions are
//! capped ([`Limits`]), so a hostile peer cannot grow the agent's memory.
//!
//! Relayed candidates come from TURN servers ([`turn`]) over UDP, TCP or
//! TLS (`turn:`, `turn:…?transport=tcp`, `turns:` URLs); over a stream the
//! agent asks its driver to open it ([`Agent::poll_stream_command`]) and
//! [`framing`] splits what comes back into messages. With feature `tokio`,
//! `tcp` opens those streams (TLS through rustls).
//!
//! Many agents can share UDP sockets: [`Demux`] routes each datagram to its
//! agent in constant time (requests by USERNAME, including forks that share
//! a local ufrag, responses by transaction id, everything else by 4-tuple
//! from [`Agent::data_paths`]), and [`Agent::accepts`] answers the same
//! question for one agent without side effects. With feature `tokio`,
//! `udp` is the UDP layer (binding, batched receive into one caller-owned
//! buffer, sending without waiting, `stun:` resolution, the machine's
//! interface addresses) and `IceSocket` drives one agent on it. [`iface`]
//! chooses the addresses that get host candidates when the application
//! names none (every usable interface address, loopback only as a last
//! resort).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod agent;
mod demux;
mod error;
pub mod framing;
#[cfg(feature = "tokio")]
pub mod ice_tcp;
pub mod iface;
pub mod mdns;
#[cfg(feature = "tokio")]
pub mod net;
#[cfg(feature = "tokio")]
mod pool;
#[cfg(feature = "tokio")]
mod socket;
mod stun;
#[cfg(feature = "tokio")]
pub mod tcp;
pub mod turn;
#[cfg(feature = "tokio")]
pub mod udp;
#[cfg(feature = "tokio")]
mod udp_mdns;
mod url;

pub use agent::{
    Agent, AgentConfig, Credentials, DropReason, Event, Limits, Nomination, PairCounters, PairInfo, PairState, Path,
    Receive, Reflexive, RelayedTransmit, Role, State, Stats, StreamCommand, TCP_CHECK_TIMEOUT, TcpCommand, Timing,
    Transmit,
};
pub use demux::{Demux, DemuxStats, request_ufrag, request_usernames};
pub use error::Error;
#[cfg(feature = "tokio")]
pub use socket::{Datagram, IceSocket, SocketConfig, SocketEvent};
pub use turn::TurnServer;
pub use url::{STUN_DEFAULT_PORT, StunUrl, TURNS_DEFAULT_PORT, TurnTransport, TurnUrl};
