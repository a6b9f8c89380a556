//! DTLS-SRTP keying (RFC 5763, RFC 5764) over the ICE-selected path.
//!
//! Each socket has a self-signed ECDSA P-256 certificate; its SHA-256
//! fingerprint goes out in the socket's `fingerprints`. When a remote
//! description carries `fingerprints` and no `keys`, the connection runs a
//! DTLS 1.2 handshake (dimpl, a sans-IO engine) on component 1 of each
//! socket, checks the peer's certificate against the signaled fingerprints,
//! and keys SRTP from the exported keying material. Media is never sent
//! before that: no SRTP context exists until the handshake and the
//! fingerprint check succeed.

use std::sync::Arc;
use std::time::Instant;

use dimpl::{Config, Dtls, DtlsCertificate, Output, SrtpProfile};
use rtc_srtp::{Context, Profile};

use crate::error::Error;

/// A socket's certificate and its fingerprint as signaled.
#[derive(Debug)]
pub(crate) struct Certificate {
    der: DtlsCertificate,
    /// `sha-256 AB:CD:…` (RFC 8122 form, upper-case hex).
    pub(crate) fingerprint: String,
}

impl Certificate {
    /// A fresh self-signed ECDSA P-256 certificate.
    pub(crate) fn generate() -> Result<Self, Error> {
        let failed = |_| Error::NotSupported("generating a DTLS certificate failed");
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(failed)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
        params.distinguished_name.push(rcgen::DnType::CommonName, "rtc");
        let cert = params.self_signed(&key).map_err(failed)?;
        let der = cert.der().to_vec();
        Ok(Self {
            fingerprint: format!("sha-256 {}", hex_colons(&sha256(&der))),
            der: DtlsCertificate { certificate: der, private_key: key.serialize_der() },
        })
    }
}

fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data).as_ref().to_vec()
}

fn hex_colons(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// A signaled fingerprint (`sha-256 AB:CD:…`, RFC 8122 section 5): the
/// digest bytes when the hash is SHA-256 (the one WebRTC uses) and the hex
/// is well formed.
pub(crate) fn parse_sha256_fingerprint(s: &str) -> Option<Vec<u8>> {
    let (hash, hex) = s.trim().split_once(' ')?;
    if !hash.eq_ignore_ascii_case("sha-256") {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        hex.trim().split(':').map(|h| u8::from_str_radix(h, 16).ok().filter(|_| h.len() == 2)).collect();
    bytes.filter(|b| b.len() == 32)
}

/// The SRTP profile and its master key and salt lengths.
fn srtp_profile(p: SrtpProfile) -> Option<(Profile, usize, usize)> {
    Some(match p {
        SrtpProfile::AES128_CM_SHA1_80 => (Profile::Aes128CmHmacSha1_80, 16, 14),
        SrtpProfile::AEAD_AES_128_GCM => (Profile::AeadAes128Gcm, 16, 12),
        SrtpProfile::AEAD_AES_256_GCM => (Profile::AeadAes256Gcm, 32, 12),
        _ => return None,
    })
}

/// The sending and receiving SRTP contexts from DTLS-exported keying
/// material, laid out as RFC 5764 section 4.2 says: client key, server key,
/// client salt, server salt. The client sends with the client's.
pub(crate) fn srtp_contexts(material: &[u8], profile: SrtpProfile, client: bool) -> Option<(Context, Context)> {
    let (profile, k, s) = srtp_profile(profile)?;
    if material.len() < 2 * (k + s) {
        return None;
    }
    let (client_key, server_key) = (&material[..k], &material[k..2 * k]);
    let (client_salt, server_salt) = (&material[2 * k..2 * k + s], &material[2 * k + s..2 * (k + s)]);
    let (tx, rx) = if client {
        ((client_key, client_salt), (server_key, server_salt))
    } else {
        ((server_key, server_salt), (client_key, client_salt))
    };
    Some((Context::new(profile, tx.0, tx.1).ok()?, Context::new(profile, rx.0, rx.1).ok()?))
}

/// One DTLS-SRTP association: the handshake, then the SRTP contexts.
pub(crate) struct DtlsSrtp {
    dtls: Dtls,
    client: bool,
    started: bool,
    /// SHA-256 digests the peer's certificate may have.
    remote: Vec<Vec<u8>>,
    verified: bool,
    timeout: Option<Instant>,
    out: Vec<u8>,
    keys: Option<(Context, Context)>,
    failure: Option<&'static str>,
}

impl DtlsSrtp {
    /// An association with our `certificate`, as the DTLS client or server,
    /// accepting a peer certificate with one of `fingerprints`.
    pub(crate) fn new<'f>(
        certificate: &Certificate,
        client: bool,
        fingerprints: impl IntoIterator<Item = &'f String>,
        now: Instant,
    ) -> Self {
        let remote = fingerprints.into_iter().filter_map(|f| parse_sha256_fingerprint(f)).collect();
        let mut dtls = Dtls::new_12(Arc::new(Config::default()), certificate.der.clone(), now);
        dtls.set_active(client);
        Self {
            dtls,
            client,
            started: false,
            remote,
            verified: false,
            timeout: None,
            out: vec![0; 2048],
            keys: None,
            failure: None,
        }
    }

    /// Whether this side is the DTLS client.
    pub(crate) fn is_client(&self) -> bool {
        self.client
    }

    /// Starts the handshake (the client sends its ClientHello); `send`
    /// takes each datagram to send.
    pub(crate) fn start(&mut self, now: Instant, send: &mut impl FnMut(&[u8])) {
        if self.started || self.failure.is_some() {
            return;
        }
        self.started = true;
        self.handle_timeout(now, send);
    }

    /// Whether [`DtlsSrtp::start`] ran or a packet arrived.
    pub(crate) fn started(&self) -> bool {
        self.started
    }

    /// A DTLS datagram from the peer.
    pub(crate) fn handle_packet(&mut self, now: Instant, data: &[u8], send: &mut impl FnMut(&[u8])) {
        if self.failure.is_some() {
            return;
        }
        self.started = true;
        let step = self.dtls.handle_timeout(now).and_then(|()| self.dtls.handle_packet(data));
        if step.is_err() {
            self.failure = Some("the DTLS handshake failed");
            return;
        }
        self.drain(send);
    }

    /// Retransmissions when the engine's timer is due.
    pub(crate) fn handle_timeout(&mut self, now: Instant, send: &mut impl FnMut(&[u8])) {
        if self.failure.is_some() || !self.started {
            return;
        }
        if self.dtls.handle_timeout(now).is_err() {
            self.failure = Some("the DTLS handshake failed");
            return;
        }
        self.drain(send);
    }

    /// When [`DtlsSrtp::handle_timeout`] is due.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if self.failure.is_some() || !self.started || self.keys.is_some() { None } else { self.timeout }
    }

    /// The SRTP contexts (sending, receiving), once, when keyed.
    pub(crate) fn take_keys(&mut self) -> Option<(Context, Context)> {
        self.keys.take()
    }

    /// Why the association failed, if it did.
    pub(crate) fn failure(&self) -> Option<&'static str> {
        self.failure
    }

    fn drain(&mut self, send: &mut impl FnMut(&[u8])) {
        // Every call ends in a timeout; the bound only guards against a
        // misbehaving engine.
        for _ in 0..64 {
            match self.dtls.poll_output(&mut self.out) {
                Output::Packet(p) => send(p),
                Output::BufferTooSmall { needed } => self.out.resize(needed, 0),
                Output::Timeout(t) => {
                    self.timeout = Some(t);
                    return;
                }
                Output::PeerCert(der) => {
                    let digest = sha256(der);
                    if self.remote.contains(&digest) {
                        self.verified = true;
                    } else {
                        self.failure = Some("the peer's DTLS certificate does not match its fingerprints");
                        return;
                    }
                }
                Output::KeyingMaterial(material, profile) => {
                    if !self.verified {
                        self.failure = Some("DTLS keys before a verified certificate");
                        return;
                    }
                    match srtp_contexts(&material, profile, self.client) {
                        Some(keys) => self.keys = Some(keys),
                        None => {
                            self.failure = Some("DTLS agreed an SRTP profile rtc-srtp lacks");
                            return;
                        }
                    }
                }
                Output::CloseNotify => {
                    self.failure = Some("the peer closed DTLS");
                    return;
                }
                _ => {}
            }
        }
    }
}

/// Feeds arbitrary datagrams to a DTLS server and a DTLS client, for the
/// `dtls_receive` fuzz target; not part of the API. `data` is a run of
/// datagrams, each 2 octets of length then its bytes, with the clock moved
/// on by the length's low byte in milliseconds before each. Nothing may
/// panic, and no SRTP keys may come out: without the private key of a
/// certificate matching the fingerprint, no handshake can complete.
#[doc(hidden)]
pub fn fuzz_dtls(data: &[u8]) {
    static CERT: std::sync::OnceLock<Option<Certificate>> = std::sync::OnceLock::new();
    let Some(cert) = CERT.get_or_init(|| Certificate::generate().ok()) else { return };
    let fingerprint = std::slice::from_ref(&cert.fingerprint);
    let mut now = Instant::now();
    let mut server = DtlsSrtp::new(cert, false, fingerprint, now);
    let mut client = DtlsSrtp::new(cert, true, fingerprint, now);
    client.start(now, &mut |_| {});
    let mut rest = data;
    while let [hi, lo, tail @ ..] = rest {
        let (datagram, next) = tail.split_at(usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len()));
        now += std::time::Duration::from_millis(u64::from(*lo));
        for side in [&mut server, &mut client] {
            side.handle_timeout(now, &mut |_| {});
            side.handle_packet(now, datagram, &mut |_| {});
            assert!(side.take_keys().is_none(), "SRTP keys from a forged handshake");
        }
        rest = next;
    }
}

/// RFC 7983: a datagram whose first byte is 20 to 63 is DTLS.
pub(crate) fn is_dtls(data: &[u8]) -> bool {
    matches!(data.first(), Some(20..=63))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_body_runs() {
        fuzz_dtls(&[]);
        fuzz_dtls(&[0, 3, 22, 254, 253, 0, 1, 20]);
    }

    #[test]
    fn fingerprints_parse_and_match() {
        let c = Certificate::generate().unwrap();
        let digest = parse_sha256_fingerprint(&c.fingerprint).unwrap();
        assert_eq!(digest, sha256(&c.der.certificate));
        assert_eq!(parse_sha256_fingerprint(&c.fingerprint.to_lowercase()), Some(digest));
        assert!(parse_sha256_fingerprint("sha-1 AB:CD").is_none());
        assert!(parse_sha256_fingerprint("sha-256 AB:CD").is_none());
        assert!(parse_sha256_fingerprint("sha-256 ABC:CD").is_none());
        assert!(parse_sha256_fingerprint("").is_none());
    }

    /// RFC 5764 section 4.2 layout, both profiles' lengths.
    #[test]
    fn keying_material_layout() {
        let material: Vec<u8> = (0..60u8).collect();
        let (mut c_tx, mut c_rx) = srtp_contexts(&material, SrtpProfile::AES128_CM_SHA1_80, true).unwrap();
        let (mut s_tx, mut s_rx) = srtp_contexts(&material, SrtpProfile::AES128_CM_SHA1_80, false).unwrap();
        // What the client protects, the server unprotects, and back; a
        // side cannot read its own packets (the directions differ).
        let h = rtc_srtp::RtpHeader { ssrc: 5, ..Default::default() };
        let mut buf = [0u8; 100];
        for (tx, rx) in [(&mut c_tx, &mut s_rx), (&mut s_tx, &mut c_rx)] {
            let n = h.write(b"hello", 0, &mut buf).unwrap();
            let m = tx.protect_rtp(&mut buf, n).unwrap();
            assert!(rx.unprotect_rtp(&mut buf[..m]).is_ok());
        }
        let n = h.write(b"hello", 0, &mut buf).unwrap();
        let m = c_tx.protect_rtp(&mut buf, n).unwrap();
        let (_, mut c_rx2) = srtp_contexts(&material, SrtpProfile::AES128_CM_SHA1_80, true).unwrap();
        assert!(c_rx2.unprotect_rtp(&mut buf[..m]).is_err());
        assert!(srtp_contexts(&material[..59], SrtpProfile::AES128_CM_SHA1_80, true).is_none());
        assert!(srtp_contexts(&(0..88u8).collect::<Vec<_>>(), SrtpProfile::AEAD_AES_256_GCM, true).is_some());
    }

    /// Two associations in memory complete the handshake and key SRTP both
    /// ways; a wrong fingerprint fails.
    #[test]
    fn handshake_in_memory() {
        let (a, b) = (Certificate::generate().unwrap(), Certificate::generate().unwrap());
        let now = Instant::now();
        let mut client = DtlsSrtp::new(&a, true, std::slice::from_ref(&b.fingerprint), now);
        let mut server = DtlsSrtp::new(&b, false, std::slice::from_ref(&a.fingerprint), now);
        let mut to_server: Vec<Vec<u8>> = Vec::new();
        client.start(now, &mut |p| to_server.push(p.to_vec()));
        for _ in 0..10 {
            let mut to_client = Vec::new();
            for p in to_server.drain(..) {
                assert!(is_dtls(&p));
                server.handle_packet(now, &p, &mut |q| to_client.push(q.to_vec()));
            }
            for p in to_client {
                client.handle_packet(now, &p, &mut |q| to_server.push(q.to_vec()));
            }
        }
        let (mut ctx, _) = client.take_keys().expect("client keyed");
        let (_, mut srx) = server.take_keys().expect("server keyed");
        let h = rtc_srtp::RtpHeader { ssrc: 9, ..Default::default() };
        let mut buf = [0u8; 100];
        let n = h.write(b"media", 0, &mut buf).unwrap();
        let m = ctx.protect_rtp(&mut buf, n).unwrap();
        assert!(srx.unprotect_rtp(&mut buf[..m]).is_ok());

        let mut liar = DtlsSrtp::new(&a, true, std::slice::from_ref(&a.fingerprint), now);
        let mut server = DtlsSrtp::new(&b, false, std::slice::from_ref(&a.fingerprint), now);
        let mut to_server = Vec::new();
        liar.start(now, &mut |p| to_server.push(p.to_vec()));
        for _ in 0..10 {
            let mut to_client = Vec::new();
            for p in to_server.drain(..) {
                server.handle_packet(now, &p, &mut |q| to_client.push(q.to_vec()));
            }
            for p in to_client {
                liar.handle_packet(now, &p, &mut |q| to_server.push(q.to_vec()));
            }
        }
        assert!(liar.take_keys().is_none());
        assert!(liar.failure().is_some(), "the server's certificate is not the one signaled");
    }
}
