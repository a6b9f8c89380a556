//! The OpenSSL engine behind [`Dtls`](crate::Dtls) (feature `openssl`,
//! [`Engine::OpenSsl`](crate::Engine::OpenSsl)): DTLS 1.2 through the
//! `openssl` crate over an in-memory datagram pipe.
//!
//! Why a second engine: dimpl negotiates ECDHE-ECDSA suites only and
//! verifies only ECDSA signatures, so a peer with an RSA certificate
//! (GStreamer's webrtcbin, many SIP gateways and media servers) cannot
//! complete a handshake with it in either role. OpenSSL offers ECDHE-RSA
//! and ECDHE-ECDSA AEAD suites and asks a client for either kind of
//! certificate. Our own certificate stays the same (ECDSA), so the
//! fingerprint signaled does not depend on the engine.
//!
//! OpenSSL keeps its retransmission timer on the system clock; it
//! retransmits a flight when it is asked to read after the timer ran out.
//! This engine mirrors that timer (1 s, doubling on each retransmission,
//! back to 1 s when the peer's flight arrives) to tell the caller when to
//! call `handle_timeout`, so it suits real-time drivers; in simulated time
//! a lost flight is not retransmitted (the dimpl engine is the one for
//! simulated time).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use openssl::pkey::PKey;
use openssl::srtp::SrtpProfileId;
use openssl::ssl::{ErrorCode, Ssl, SslContext, SslMethod, SslOptions, SslStream, SslVerifyMode, SslVersion};
use openssl::x509::X509;
use rtc_srtp::Profile;

use crate::dtls::matches_any;
use crate::{Certificate, Fingerprint, Role};

/// ECDHE suites with AEAD ciphers only (a record then costs at most the
/// overhead [`MAX_TRANSMIT`](crate::MAX_TRANSMIT) allows for), RSA and
/// ECDSA certificates, strongest first among equals as browsers order them.
const CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:\
ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/// RFC 5764 / RFC 7714 profiles rtc-srtp implements, preferred first.
const SRTP_PROFILES: &str = "SRTP_AEAD_AES_128_GCM:SRTP_AEAD_AES_256_GCM:SRTP_AES128_CM_SHA1_80:SRTP_AES128_CM_SHA1_32";

/// The RFC 5764 section 4.2 exporter label.
const EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";

/// OpenSSL's DTLS retransmission timer: starts at 1 s, doubles, at most
/// 60 s.
const RTO_INITIAL: Duration = Duration::from_secs(1);
const RTO_MAX: Duration = Duration::from_secs(60);
/// Asked a little after OpenSSL's timer runs out, so that its clock has
/// passed it too; and again this long after when it had not yet.
const RTO_SLACK: Duration = Duration::from_millis(5);
const RTO_RECHECK: Duration = Duration::from_millis(20);
/// The handshake fails when it has not completed this long after it
/// started (as the dimpl engine's deadline).
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(40);

/// Received datagrams waiting for OpenSSL (one at a time is fed; the bound
/// guards the queue anyway).
const MAX_INCOMING: usize = 16;
/// Buffers the pipe keeps for OpenSSL's writes.
const MAX_POOL: usize = 8;

/// The largest record payload OpenSSL hands out in one read (2^14).
pub(crate) const READ_BUFFER: usize = 1 << 14;

/// The context an association is built from, one per certificate.
pub(crate) fn context(certificate: &Certificate) -> Option<SslContext> {
    let mut b = SslContext::builder(SslMethod::dtls()).ok()?;
    b.set_min_proto_version(Some(SslVersion::DTLS1_2)).ok()?;
    b.set_cipher_list(CIPHERS).ok()?;
    b.set_tlsext_use_srtp(SRTP_PROFILES).ok()?;
    let dtls = certificate.dtls();
    let cert = X509::from_der(&dtls.certificate).ok()?;
    let key = PKey::private_key_from_pkcs8(&dtls.private_key).ok()?;
    b.set_certificate(&cert).ok()?;
    b.set_private_key(&key).ok()?;
    b.check_private_key().ok()?;
    // Self-signed certificates on both sides: the chain is not verified;
    // the peer's certificate is checked against its signaled fingerprints
    // once the handshake completes, before any key comes out. A server
    // asks for the client's certificate and fails without one.
    b.set_verify_callback(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT, |_, _| true);
    b.set_options(SslOptions::NO_QUERY_MTU | SslOptions::NO_TICKET | SslOptions::NO_RENEGOTIATION);
    b.set_read_ahead(true);
    Some(b.build())
}

/// The in-memory datagram "socket" OpenSSL reads from and writes to: one
/// read returns one whole datagram, one write is one datagram.
#[derive(Default)]
pub(crate) struct Pipe {
    incoming: VecDeque<Vec<u8>>,
    pub(crate) outgoing: VecDeque<Vec<u8>>,
    pub(crate) pool: Vec<Vec<u8>>,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(datagram) = self.incoming.pop_front() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        let n = datagram.len().min(buf.len());
        buf[..n].copy_from_slice(&datagram[..n]);
        if self.pool.len() < MAX_POOL {
            self.pool.push(datagram);
        }
        Ok(n)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut out = self.pool.pop().unwrap_or_default();
        out.clear();
        out.extend_from_slice(buf);
        self.outgoing.push_back(out);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Why the engine failed, and the fatal alert (RFC 5246 section 7.2) to
/// send for it, if any.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Failure {
    pub(crate) reason: &'static str,
    pub(crate) alert: Option<u8>,
}

/// What the handshake produced when it completed.
pub(crate) struct Completed {
    /// The peer's certificate, DER.
    pub(crate) peer_certificate: Vec<u8>,
    /// The agreed SRTP profile, if rtc-srtp has it.
    pub(crate) profile: Option<Profile>,
    /// The exported keying material (RFC 5764 section 4.2), its length that
    /// of the profile.
    pub(crate) material: Vec<u8>,
}

/// One association on OpenSSL.
pub(crate) struct Ossl {
    stream: SslStream<Pipe>,
    handshaking: bool,
    closed: bool,
    /// When to ask OpenSSL to retransmit (its timer, mirrored).
    retransmit_at: Option<Instant>,
    rto: Duration,
    deadline: Option<Instant>,
}

impl Ossl {
    /// An association as `role` from the certificate's context, accepting
    /// a peer certificate that matches one of `remote`.
    pub(crate) fn new(
        context: &SslContext,
        role: Role,
        mtu: usize,
        remote: Vec<Fingerprint>,
    ) -> Result<Self, &'static str> {
        let mut ssl = Ssl::new(context).map_err(|_| "OpenSSL could not create an association")?;
        // The peer's certificate (depth 0; a chain's other certificates are
        // not looked at) must match a signaled fingerprint, checked while
        // the handshake runs so that a mismatch ends it with
        // bad_certificate; the completed handshake is checked again.
        ssl.set_verify_callback(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT, move |_, ctx| {
            ctx.error_depth() != 0
                || ctx.current_cert().and_then(|c| c.to_der().ok()).is_some_and(|der| matches_any(&remote, &der))
        });
        ssl.set_mtu(u32::try_from(mtu).unwrap_or(1200)).map_err(|_| "OpenSSL refused the MTU")?;
        match role {
            Role::Client => ssl.set_connect_state(),
            Role::Server => ssl.set_accept_state(),
        }
        let stream = SslStream::new(ssl, Pipe::default()).map_err(|_| "OpenSSL could not create an association")?;
        Ok(Self { stream, handshaking: true, closed: false, retransmit_at: None, rto: RTO_INITIAL, deadline: None })
    }

    /// The pipe: datagrams OpenSSL wrote, and its buffer pool.
    pub(crate) fn pipe(&mut self) -> &mut Pipe {
        self.stream.get_mut()
    }

    /// When `handle_timeout` is due: OpenSSL's retransmission timer or the
    /// handshake deadline; `None` once the handshake completed.
    pub(crate) fn timeout(&self) -> Option<Instant> {
        if !self.handshaking || self.closed {
            return None;
        }
        match (self.retransmit_at, self.deadline) {
            (Some(r), Some(d)) => Some(r.min(d)),
            (r, d) => r.or(d),
        }
    }

    /// The client's first flight, or the server's start on the first
    /// datagram: the handshake deadline starts here.
    pub(crate) fn start(&mut self, now: Instant) -> Result<Option<Completed>, Failure> {
        self.deadline.get_or_insert(now + HANDSHAKE_DEADLINE);
        self.handshake(now, false)
    }

    /// A datagram from the peer; during the handshake, its progress (a
    /// `Completed` when it just finished). After it, application data
    /// records go to `deliver`; a close_notify gives `Ok(None)` with
    /// [`Ossl::peer_closed`] true.
    pub(crate) fn handle_packet(
        &mut self,
        now: Instant,
        data: &[u8],
        read_buf: &mut [u8],
        deliver: impl FnMut(&[u8]),
    ) -> Result<Option<Completed>, Failure> {
        if self.closed {
            return Ok(None);
        }
        let pipe = self.stream.get_mut();
        if pipe.incoming.len() >= MAX_INCOMING {
            return Ok(None);
        }
        let mut buf = pipe.pool.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(data);
        pipe.incoming.push_back(buf);
        if self.handshaking {
            self.deadline.get_or_insert(now + HANDSHAKE_DEADLINE);
            let done = self.handshake(now, false)?;
            if done.is_some() {
                // Records that came with the last flight.
                self.read(read_buf, deliver)?;
            }
            return Ok(done);
        }
        self.read(read_buf, deliver)?;
        Ok(None)
    }

    /// Time passes: a retransmission when OpenSSL's timer ran out, the
    /// handshake deadline.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Result<Option<Completed>, Failure> {
        if !self.handshaking || self.closed {
            return Ok(None);
        }
        if self.deadline.is_some_and(|d| now >= d) {
            return Err(Failure { reason: "the DTLS handshake timed out", alert: None });
        }
        if self.retransmit_at.is_some_and(|t| now >= t) {
            return self.handshake(now, true);
        }
        Ok(None)
    }

    fn handshake(&mut self, now: Instant, timer: bool) -> Result<Option<Completed>, Failure> {
        let before = self.stream.get_ref().outgoing.len();
        let result = self.stream.do_handshake();
        let sent = self.stream.get_ref().outgoing.len() > before;
        match result {
            Ok(()) => {
                self.handshaking = false;
                self.retransmit_at = None;
                self.completed().map(Some)
            }
            Err(e) if matches!(e.code(), ErrorCode::WANT_READ | ErrorCode::WANT_WRITE) => {
                if sent {
                    self.rto = if timer { (self.rto * 2).min(RTO_MAX) } else { RTO_INITIAL };
                    self.retransmit_at = Some(now + self.rto + RTO_SLACK);
                } else if timer {
                    self.retransmit_at = Some(now + RTO_RECHECK);
                }
                Ok(None)
            }
            Err(e) => {
                tracing::debug!(error = %e, "OpenSSL DTLS handshake error");
                Err(Failure { reason: handshake_reason(&e), alert: None })
            }
        }
    }

    fn completed(&mut self) -> Result<Completed, Failure> {
        let ssl = self.stream.ssl();
        let peer_certificate = ssl.peer_certificate().and_then(|c| c.to_der().ok()).ok_or(Failure {
            reason: "the DTLS peer sent no certificate",
            alert: Some(crate::dtls::BAD_CERTIFICATE),
        })?;
        let profile = ssl.selected_srtp_profile().and_then(|p| profile_of(p.id()));
        let mut material = Vec::new();
        if let Some(p) = profile {
            material.resize(2 * (p.master_key_len() + p.master_salt_len()), 0);
            ssl.export_keying_material(&mut material, EXPORTER_LABEL, None).map_err(|_| Failure {
                reason: "exporting the DTLS-SRTP keying material failed",
                alert: Some(crate::dtls::INTERNAL_ERROR),
            })?;
        }
        Ok(Completed { peer_certificate, profile, material })
    }

    /// Reads every application data record OpenSSL has.
    fn read(&mut self, buf: &mut [u8], mut deliver: impl FnMut(&[u8])) -> Result<(), Failure> {
        loop {
            match self.stream.ssl_read(buf) {
                Ok(0) => return Ok(()),
                Ok(n) => deliver(&buf[..n]),
                Err(e) if e.code() == ErrorCode::ZERO_RETURN => {
                    self.closed = true;
                    return Ok(());
                }
                Err(e) if matches!(e.code(), ErrorCode::WANT_READ | ErrorCode::WANT_WRITE) => return Ok(()),
                Err(e) => {
                    tracing::debug!(error = %e, "OpenSSL DTLS read error");
                    return Err(Failure { reason: "the DTLS association failed", alert: None });
                }
            }
        }
    }

    /// Whether the peer's close_notify arrived.
    pub(crate) fn peer_closed(&self) -> bool {
        self.closed
    }

    /// One record of application data.
    pub(crate) fn send(&mut self, data: &[u8]) -> Result<(), Failure> {
        match self.stream.ssl_write(data) {
            Ok(n) if n == data.len() => Ok(()),
            Ok(_) => Err(Failure { reason: "OpenSSL wrote part of a record", alert: None }),
            Err(e) => {
                tracing::debug!(error = %e, "OpenSSL DTLS write error");
                Err(Failure { reason: "the DTLS association failed", alert: None })
            }
        }
    }

    /// Sends close_notify.
    pub(crate) fn close(&mut self) {
        if !self.handshaking && !self.closed {
            let _ = self.stream.shutdown();
        }
        self.closed = true;
    }
}

/// A fixed text for a failed handshake.
fn handshake_reason(e: &openssl::ssl::Error) -> &'static str {
    let text = e.ssl_error().map(ToString::to_string).unwrap_or_default();
    if text.contains("no shared cipher") {
        "the DTLS peer shares no cipher suite"
    } else if text.contains("alert") {
        "the DTLS peer sent a fatal alert"
    } else if text.contains("certificate") {
        "the peer's DTLS certificate is unusable"
    } else if text.contains("srtp") || text.contains("SRTP") {
        "the DTLS peer agreed no SRTP profile (use_srtp)"
    } else {
        "the DTLS handshake failed"
    }
}

fn profile_of(id: SrtpProfileId) -> Option<Profile> {
    [
        (SrtpProfileId::SRTP_AES128_CM_SHA1_80, Profile::Aes128CmHmacSha1_80),
        (SrtpProfileId::SRTP_AES128_CM_SHA1_32, Profile::Aes128CmHmacSha1_32),
        (SrtpProfileId::SRTP_AEAD_AES_128_GCM, Profile::AeadAes128Gcm),
        (SrtpProfileId::SRTP_AEAD_AES_256_GCM, Profile::AeadAes256Gcm),
    ]
    .into_iter()
    .find_map(|(i, p)| (i == id).then_some(p))
}
