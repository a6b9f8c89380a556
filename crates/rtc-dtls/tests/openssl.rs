//! The OpenSSL engine (feature `openssl`): against dimpl in both roles,
//! against itself, and against a peer with an RSA certificate (as
//! GStreamer's webrtcbin has), which dimpl cannot complete a handshake with.
#![cfg(feature = "openssl")]

mod common;

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use common::{Pair, assert_directions_differ, assert_keys_agree};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::ssl::{ErrorCode, Ssl, SslContext, SslMethod, SslOptions, SslStream, SslVerifyMode};
use openssl::x509::{X509, X509NameBuilder};
use rtc_dtls::{Certificate, Dtls, Engine, Event, Fingerprint, HashAlgorithm, MAX_TRANSMIT, MTU, Role, State};

fn cert() -> Certificate {
    Certificate::generate().unwrap()
}

#[test]
fn the_engine_is_available_with_the_feature() {
    assert!(Engine::Dimpl.available());
    assert!(Engine::OpenSsl.available());
    assert_eq!(Engine::default(), Engine::Dimpl);
}

#[test]
fn openssl_and_dimpl_key_the_same_srtp_in_both_roles() {
    let (a, b) = (cert(), cert());
    for (client, server) in [
        ((&a, Engine::OpenSsl), (&b, Engine::Dimpl)),
        ((&a, Engine::Dimpl), (&b, Engine::OpenSsl)),
        ((&a, Engine::OpenSsl), (&b, Engine::OpenSsl)),
    ] {
        let mut p = Pair::engines(client, server);
        p.connect();
        assert!(p.both_connected(), "{:?} / {:?}: {:?} {:?}", client.1, server.1, p.client.events, p.server.events);
        assert!(p.max_handshake_datagram <= MTU);
        let (ck, sk) = (p.client.keys().expect("client keyed"), p.server.keys().expect("server keyed"));
        assert_eq!(ck.profile, sk.profile);
        assert_eq!(ck.local_key(), sk.remote_key());
        assert_eq!(ck.remote_salt(), sk.local_salt());
        assert_keys_agree(ck, sk);
        assert_keys_agree(sk, ck);
        assert_directions_differ(ck);
        assert_eq!((p.client.events.len(), p.server.events.len()), (1, 1), "exactly one Connected each");

        // Application data both ways, then close_notify from the client.
        let mut out = [0u8; 1500];
        for (from_client, msg) in [(true, b"from the client".as_slice()), (false, &[7u8; 1200][..])] {
            let (from, to) = if from_client { (&mut p.client, &mut p.server) } else { (&mut p.server, &mut p.client) };
            from.dtls.send_application_data(msg).unwrap();
            let n = from.dtls.poll_transmit(&mut out).expect("a record");
            assert!(n <= MAX_TRANSMIT, "a {n}-octet record");
            to.dtls.handle_datagram(p.now, &out[..n]);
            let mut got = [0u8; 1500];
            let m = to.dtls.poll_application_data(&mut got).expect("delivered");
            assert_eq!(&got[..m], msg);
        }
        p.client.dtls.close(p.now);
        p.pump();
        assert!(p.server.closed(), "{:?} saw close_notify", server.1);
        assert_eq!(p.server.dtls.state(), State::Closed);
    }
}

#[test]
fn a_fingerprint_mismatch_fails_both_sides_with_openssl() {
    let (a, b, other) = (cert(), cert(), cert());
    for (client_engine, server_engine) in [(Engine::OpenSsl, Engine::Dimpl), (Engine::Dimpl, Engine::OpenSsl)] {
        let now = Instant::now();
        // Each side expects `other`'s certificate instead of its peer's.
        let mut p = Pair::engines((&a, client_engine), (&b, server_engine));
        p.client.dtls = Dtls::with_engine(client_engine, &a, Role::Client, vec![other.fingerprint().clone()], now);
        p.server.dtls = Dtls::with_engine(server_engine, &b, Role::Server, vec![other.fingerprint().clone()], now);
        p.connect();
        for _ in 0..10 {
            if !p.advance() {
                break;
            }
            p.pump();
        }
        assert!(p.client.keys().is_none() && p.server.keys().is_none());
        assert!(p.client.dtls.srtp_keys().is_none() && p.server.dtls.srtp_keys().is_none());
        let failed = [&p.client, &p.server].iter().filter(|s| s.failed().is_some()).count();
        assert!(failed >= 1, "{client_engine:?}/{server_engine:?}: {:?} {:?}", p.client.events, p.server.events);
    }
}

/// A DTLS peer with an RSA-2048 self-signed certificate, on OpenSSL
/// directly: what GStreamer's webrtcbin presents.
struct RsaPeer {
    stream: SslStream<Wire>,
    fingerprint: Fingerprint,
}

#[derive(Default)]
struct Wire {
    incoming: VecDeque<Vec<u8>>,
    outgoing: VecDeque<Vec<u8>>,
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let d = self.incoming.pop_front().ok_or(io::ErrorKind::WouldBlock)?;
        buf[..d.len()].copy_from_slice(&d);
        Ok(d.len())
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outgoing.push_back(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn rsa_certificate() -> (X509, PKey<Private>) {
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "rsa-peer").unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap()).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap()).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    (b.build(), key)
}

impl RsaPeer {
    fn new(client: bool) -> Self {
        let (cert, key) = rsa_certificate();
        let mut ctx = SslContext::builder(SslMethod::dtls()).unwrap();
        ctx.set_certificate(&cert).unwrap();
        ctx.set_private_key(&key).unwrap();
        ctx.set_tlsext_use_srtp("SRTP_AES128_CM_SHA1_80").unwrap();
        ctx.set_verify_callback(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT, |_, _| true);
        ctx.set_options(SslOptions::NO_QUERY_MTU);
        let mut ssl = Ssl::new(&ctx.build()).unwrap();
        ssl.set_mtu(1200).unwrap();
        if client {
            ssl.set_connect_state();
        } else {
            ssl.set_accept_state();
        }
        let fingerprint = Fingerprint::of(HashAlgorithm::Sha256, &cert.to_der().unwrap());
        Self { stream: SslStream::new(ssl, Wire::default()).unwrap(), fingerprint }
    }

    /// Runs its handshake on: `Ok(true)` once complete, `Err` when it
    /// failed.
    fn drive(&mut self) -> Result<bool, String> {
        match self.stream.do_handshake() {
            Ok(()) => Ok(true),
            Err(e) if e.code() == ErrorCode::WANT_READ => Ok(false),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Runs our side on `engine` against the RSA peer; returns our side's
/// events and whether the RSA peer completed (or how it failed).
fn against_rsa(engine: Engine, we_are_client: bool) -> (Vec<Event>, Result<bool, String>, Dtls, RsaPeer) {
    let ours = cert();
    let mut peer = RsaPeer::new(!we_are_client);
    let role = if we_are_client { Role::Client } else { Role::Server };
    let now = Instant::now();
    let mut dtls = Dtls::with_engine(engine, &ours, role, vec![peer.fingerprint.clone()], now);
    let mut events = vec![];
    let mut peer_done = Ok(false);
    if we_are_client {
        dtls.start(now);
    } else {
        peer_done = peer.drive();
    }
    let mut buf = [0u8; 1500];
    for _ in 0..50 {
        let mut moved = false;
        while let Some(n) = dtls.poll_transmit(&mut buf) {
            peer.stream.get_mut().incoming.push_back(buf[..n].to_vec());
            moved = true;
        }
        if peer_done == Ok(false) {
            peer_done = peer.drive();
        }
        while let Some(d) = peer.stream.get_mut().outgoing.pop_front() {
            assert!(d.len() <= MTU);
            dtls.handle_datagram(now, &d);
            moved = true;
        }
        while let Some(e) = dtls.poll_event() {
            events.push(e);
        }
        if !moved {
            break;
        }
    }
    (events, peer_done, dtls, peer)
}

#[test]
fn openssl_completes_a_handshake_with_an_rsa_peer_in_both_roles() {
    for we_are_client in [true, false] {
        let (events, peer_done, mut dtls, mut peer) = against_rsa(Engine::OpenSsl, we_are_client);
        assert_eq!(
            peer_done,
            Ok(true),
            "the RSA peer completed (we are client: {we_are_client}); our events {events:?}"
        );
        let Some(Event::Connected(keys)) = events.first() else { panic!("{events:?}") };
        assert_eq!(keys.profile, rtc_srtp::Profile::Aes128CmHmacSha1_80);
        // The RSA peer exports the same material: its client key is ours
        // when we are the client.
        let mut material = [0u8; 60];
        peer.stream.ssl().export_keying_material(&mut material, "EXTRACTOR-dtls_srtp", None).unwrap();
        let (client_key, server_key) = (&material[..16], &material[16..32]);
        let (mine, theirs) = if we_are_client { (client_key, server_key) } else { (server_key, client_key) };
        assert_eq!(keys.local_key(), mine);
        assert_eq!(keys.remote_key(), theirs);
        // Application data from the RSA peer reaches us.
        peer.stream.ssl_write(b"hello over RSA").unwrap();
        let d = peer.stream.get_mut().outgoing.pop_front().unwrap();
        dtls.handle_datagram(Instant::now(), &d);
        let mut out = [0u8; 64];
        let n = dtls.poll_application_data(&mut out).unwrap();
        assert_eq!(&out[..n], b"hello over RSA");
    }
}

#[test]
fn dimpl_cannot_complete_a_handshake_with_an_rsa_peer() {
    // Why the OpenSSL engine exists: as a client dimpl offers ECDSA suites
    // only; as a server it asks for ECDSA client certificates only.
    for we_are_client in [true, false] {
        let (events, peer_done, dtls, _) = against_rsa(Engine::Dimpl, we_are_client);
        assert!(!events.iter().any(|e| matches!(e, Event::Connected(_))), "{events:?}");
        assert!(dtls.srtp_keys().is_none());
        // One side or the other gave up with an error.
        let ours_failed = events.iter().any(|e| matches!(e, Event::Failed(_)));
        assert!(ours_failed || peer_done.is_err(), "we are client: {we_are_client}: {events:?} {peer_done:?}");
    }
}

#[test]
fn openssl_retransmits_a_lost_flight_on_its_timer() {
    // OpenSSL's timer runs on the system clock, so this one test waits in
    // real time (a little over the 1 s initial timeout).
    let (a, b) = (cert(), cert());
    let mut p = Pair::engines((&a, Engine::OpenSsl), (&b, Engine::OpenSsl));
    p.client.dtls.start(p.now);
    let mut buf = [0u8; 1500];
    let mut lost = 0;
    while p.client.dtls.poll_transmit(&mut buf).is_some() {
        lost += 1;
    }
    assert!(lost >= 1, "the ClientHello went out");
    let at = p.client.dtls.poll_timeout().expect("a retransmission timer");
    assert!(at > p.now + Duration::from_millis(900) && at < p.now + Duration::from_millis(1200), "{:?}", at - p.now);
    std::thread::sleep(at.saturating_duration_since(Instant::now()));
    p.now = Instant::now();
    p.client.dtls.handle_timeout(p.now);
    p.pump();
    assert!(p.both_connected(), "{:?} {:?}", p.client.events, p.server.events);
}
