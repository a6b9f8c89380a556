//! DTLS-SRTP keying (RFC 5763, RFC 5764) as a sans-IO state machine.
//!
//! WebRTC keys SRTP with a DTLS handshake run over the ICE-selected path:
//! each side has a (usually self-signed) certificate whose fingerprint goes
//! into its session description (`a=fingerprint`, RFC 8122), the DTLS
//! roles come from `a=setup`, and once the handshake completes and the
//! peer's certificate matches a signaled fingerprint, both sides export the
//! SRTP master keys from the DTLS session (RFC 5764 section 4.2). The same
//! association later carries SCTP for data channels (RFC 8261).
//!
//! This crate provides:
//!
//! - [`Certificate`]: generated (ECDSA P-256, rcgen on ring) or loaded from
//!   PEM, with [`Certificate::to_pem`] to keep a fingerprint across
//!   restarts;
//! - [`Fingerprint`]: RFC 8122 `hash-func SP fingerprint`, parsed and
//!   formatted, matched against a DER certificate;
//! - [`Dtls`]: one association over dimpl's DTLS 1.2 engine, driven the
//!   sans-IO way (`handle_*(now, …)` in; `poll_transmit`, `poll_event`,
//!   `poll_timeout` out);
//! - [`SrtpKeys`]: the exported keys split by role, and the
//!   [`rtc_srtp::Context`]s built from them.
//!
//! Who is client and which fingerprints to accept are the caller's
//! business (the session description), as is moving datagrams and time.
//!
//! # Example
//!
//! Two associations in memory, with no network and no clock of their own:
//!
//! ```
//! use std::time::Instant;
//! use rtc_dtls::{Certificate, Dtls, Event, Role};
//!
//! let (a, b) = (Certificate::generate()?, Certificate::generate()?);
//! let now = Instant::now();
//! let mut client = Dtls::new(&a, Role::Client, vec![b.fingerprint().clone()], now);
//! let mut server = Dtls::new(&b, Role::Server, vec![a.fingerprint().clone()], now);
//! client.start(now); // once ICE has a path
//!
//! let mut buf = [0u8; 1500];
//! let (mut client_keys, mut server_keys) = (None, None);
//! for _ in 0..10 {
//!     while let Some(n) = client.poll_transmit(&mut buf) {
//!         server.handle_datagram(now, &buf[..n]);
//!     }
//!     while let Some(n) = server.poll_transmit(&mut buf) {
//!         client.handle_datagram(now, &buf[..n]);
//!     }
//!     while let Some(event) = client.poll_event() {
//!         if let Event::Connected(keys) = event { client_keys = Some(keys) }
//!     }
//!     while let Some(event) = server.poll_event() {
//!         if let Event::Connected(keys) = event { server_keys = Some(keys) }
//!     }
//! }
//! let (client_keys, server_keys) = (client_keys.unwrap(), server_keys.unwrap());
//! // What the client protects with, the server unprotects with.
//! assert_eq!(client_keys.local_key(), server_keys.remote_key());
//! let (_client_tx, _client_rx) = client_keys.contexts()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Guarantees
//!
//! - No SRTP key comes out unless the handshake completed *and* the peer's
//!   certificate matched one of the fingerprints given to [`Dtls::new`].
//! - Nothing reachable from a received datagram panics; datagrams that are
//!   not whole DTLS records are dropped and counted ([`Dtls::dropped`]).
//! - Every queue is bounded: datagrams to send, events, and received
//!   application data ([`MAX_RECEIVED_APPLICATION_DATA`] octets).
//! - Handshake datagrams are at most [`MTU`] octets; datagrams carrying
//!   application data at most [`MAX_TRANSMIT`].
//! - Buffers are recycled, so a steady flow of application data allocates
//!   nothing in this crate.
//! - Keys, once delivered, are never taken back: a later close or failure
//!   ends only the DTLS association.
//!
//! # Limits
//!
//! DTLS 1.2 only (dimpl has DTLS 1.3, but WebRTC peers speak 1.2); ECDSA
//! P-256/P-384 certificates only (dimpl does not sign with RSA or Ed25519);
//! dimpl always offers the SRTP profiles AEAD_AES_256_GCM,
//! AEAD_AES_128_GCM and AES128_CM_HMAC_SHA1_80, and as a server prefers
//! them in that order.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod certificate;
mod dtls;
mod error;
mod fingerprint;
mod keys;
#[cfg(feature = "openssl")]
mod ossl;

pub use certificate::Certificate;
pub use dtls::{
    ALERT_GRACE, CERT_MISMATCH, Dtls, Engine, Event, MAX_APPLICATION_DATA, MAX_RECEIVED_APPLICATION_DATA, MAX_TRANSMIT,
    MTU, Role, State, is_dtls,
};
#[doc(hidden)]
pub use dtls::{fuzz_datagrams, fuzz_datagrams_on};
pub use error::Error;
pub use fingerprint::{Fingerprint, HashAlgorithm};
pub use keys::SrtpKeys;
