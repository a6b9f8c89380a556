//! Hostile input: arbitrary datagrams never panic and never key SRTP.

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{Pair, assert_keys_agree};
use proptest::prelude::*;
use rtc_dtls::{ALERT_GRACE, Certificate, Dtls, Event, Role, State};

fn cert() -> &'static Certificate {
    static CERT: OnceLock<Certificate> = OnceLock::new();
    CERT.get_or_init(|| Certificate::generate().unwrap())
}

fn peer() -> &'static Certificate {
    static CERT: OnceLock<Certificate> = OnceLock::new();
    CERT.get_or_init(|| Certificate::generate().unwrap())
}

/// Random bytes, or DTLS-looking records (right header, random body).
fn datagram() -> impl Strategy<Value = Vec<u8>> {
    let record = (20u8..=25, prop::sample::select(vec![0xFEFDu16, 0xFEFF, 0xFEFC, 0x0303]), 0u16..3, any::<u64>())
        .prop_flat_map(|(ct, version, epoch, seq)| {
            prop::collection::vec(any::<u8>(), 0..300).prop_map(move |body| {
                let mut r = vec![ct];
                r.extend_from_slice(&version.to_be_bytes());
                r.extend_from_slice(&epoch.to_be_bytes());
                r.extend_from_slice(&seq.to_be_bytes()[2..]);
                r.extend_from_slice(&(body.len() as u16).to_be_bytes());
                r.extend_from_slice(&body);
                r
            })
        });
    // A ClientHello-shaped handshake record with a random tail.
    let hello = prop::collection::vec(any::<u8>(), 0..200).prop_map(|tail| {
        let mut hs = vec![1u8, 0, 0, tail.len() as u8, 0, 0, 0, 0, 0, 0, 0, tail.len() as u8];
        hs.extend_from_slice(&tail);
        let mut r = vec![22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0];
        r.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        r.extend_from_slice(&hs);
        r
    });
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..400),
        prop::collection::vec(record.clone(), 1..4).prop_map(|rs| rs.concat()),
        hello,
        record,
    ]
}

fn feed(side: &mut Dtls, now: Instant, datagrams: &[Vec<u8>]) {
    let mut buf = [0u8; 1500];
    let mut t = now;
    for d in datagrams {
        t += Duration::from_millis(u64::from(d.first().copied().unwrap_or(0)) * 10);
        side.handle_timeout(t);
        side.handle_datagram(t, d);
        while let Some(n) = side.poll_transmit(&mut buf) {
            assert!(n <= rtc_dtls::MTU);
        }
        while let Some(e) = side.poll_event() {
            assert!(!matches!(e, Event::Connected(_)), "Connected from forged input");
        }
        assert!(side.srtp_keys().is_none());
        assert_ne!(side.state(), State::Connected);
        let _ = side.poll_timeout();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn fresh_server_and_client_survive(datagrams in prop::collection::vec(datagram(), 1..12)) {
        let now = Instant::now();
        let remote = vec![peer().fingerprint().clone()];
        let mut server = Dtls::new(cert(), Role::Server, remote.clone(), now);
        feed(&mut server, now, &datagrams);
        let mut client = Dtls::new(cert(), Role::Client, remote, now);
        client.start(now);
        feed(&mut client, now, &datagrams);
    }

    #[test]
    fn fuzz_body_survives(data in prop::collection::vec(any::<u8>(), 0..600)) {
        rtc_dtls::fuzz_datagrams(&data);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Junk after keying neither takes the keys back nor stops the
    /// association.
    #[test]
    fn connected_pair_survives(datagrams in prop::collection::vec(datagram(), 1..12)) {
        let mut p = Pair::new(cert(), peer());
        p.connect();
        prop_assert!(p.both_connected());
        for d in &datagrams {
            p.client.dtls.handle_datagram(p.now, d);
            p.server.dtls.handle_datagram(p.now, d);
            p.pump();
        }
        prop_assert!(p.both_connected());
        prop_assert!(p.client.failed().is_none() && p.server.failed().is_none());
        assert_keys_agree(p.client.dtls.srtp_keys().unwrap(), p.server.dtls.srtp_keys().unwrap());
        p.client.dtls.send_application_data(b"still here").unwrap();
        p.pump();
        let mut out = [0u8; 64];
        let n = p.server.dtls.poll_application_data(&mut out).unwrap();
        prop_assert_eq!(&out[..n], b"still here");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Junk injected during the handshake: each side either connects with
    /// keys that agree with the peer's, or reports failure; never Connected
    /// with keys the peer does not share.
    #[test]
    fn handshake_with_injected_junk(datagrams in prop::collection::vec(datagram(), 1..8)) {
        let mut p = Pair::new(cert(), peer());
        p.client.dtls.start(p.now);
        let mut junk = datagrams.iter();
        for _ in 0..40 {
            if let Some(d) = junk.next() {
                p.server.dtls.handle_datagram(p.now, d);
                p.client.dtls.handle_datagram(p.now, d);
            }
            p.pump();
            if p.both_connected() || !p.advance() {
                break;
            }
        }
        p.collect();
        if let (Some(c), Some(s)) = (p.client.keys(), p.server.keys()) {
            assert_keys_agree(c, s);
            assert_keys_agree(s, c);
        }
        for side in [&p.client, &p.server] {
            let connected = side.events.iter().filter(|e| matches!(e, Event::Connected(_))).count();
            prop_assert!(connected <= 1);
        }
    }
}

#[test]
fn fuzz_body_runs() {
    rtc_dtls::fuzz_datagrams(&[]);
    rtc_dtls::fuzz_datagrams(&[0, 3, 22, 254, 253, 0, 1, 20]);
}

#[test]
fn non_dtls_and_truncated_datagrams_are_counted() {
    let now = Instant::now();
    let mut server = Dtls::new(cert(), Role::Server, vec![], now);
    let cases: [&[u8]; 6] = [
        &[],
        &[0, 1, 0, 0],                                         // STUN
        &[0x80, 0x60, 0, 1],                                   // RTP
        &[22, 0xFE, 0xFD, 0, 0],                               // truncated header
        &[22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 1, 2], // truncated body
        &[24, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],       // heartbeat
    ];
    for (i, d) in cases.iter().enumerate() {
        server.handle_datagram(now, d);
        assert_eq!(server.dropped(), i as u64 + 1);
    }
    assert_eq!(server.state(), State::New);
    assert!(!rtc_dtls::is_dtls(&[0, 1]) && !rtc_dtls::is_dtls(&[]) && !rtc_dtls::is_dtls(&[64]));
    assert!(rtc_dtls::is_dtls(&[20]) && rtc_dtls::is_dtls(&[63]));
    let huge = vec![23u8; 70_000];
    server.handle_datagram(now, &huge);
    assert_eq!(server.dropped(), 7);
}

/// Both sides clients (a role mix-up in the descriptions): nothing
/// connects, nothing panics, and the handshake gives up in time.
#[test]
fn two_clients_never_connect() {
    let now = Instant::now();
    let mut a = Dtls::new(cert(), Role::Client, vec![peer().fingerprint().clone()], now);
    let mut b = Dtls::new(peer(), Role::Client, vec![cert().fingerprint().clone()], now);
    a.start(now);
    b.start(now);
    let mut t = now;
    let mut buf = [0u8; 1500];
    for _ in 0..100 {
        while let Some(n) = a.poll_transmit(&mut buf) {
            b.handle_datagram(t, &buf[..n]);
        }
        while let Some(n) = b.poll_transmit(&mut buf) {
            a.handle_datagram(t, &buf[..n]);
        }
        let Some(next) = [a.poll_timeout(), b.poll_timeout()].into_iter().flatten().min() else { break };
        t = t.max(next);
        a.handle_timeout(t);
        b.handle_timeout(t);
    }
    for side in [&mut a, &mut b] {
        assert_eq!(side.state(), State::Failed);
        assert!(side.srtp_keys().is_none());
        let events: Vec<Event> = std::iter::from_fn(|| side.poll_event()).collect();
        assert!(matches!(events.as_slice(), [Event::Failed(_)]), "{events:?}");
    }
    assert!(t - now <= Duration::from_secs(41));
}

/// A recorded handshake replayed to a fresh server keys nothing: the
/// server's randoms differ, so the recorded Finished cannot verify.
#[test]
fn replayed_handshake_keys_nothing() {
    let mut p = Pair::new(cert(), peer());
    let mut recorded = Vec::new();
    p.client.dtls.start(p.now);
    let mut buf = [0u8; 1500];
    for _ in 0..10 {
        while let Some(n) = p.client.dtls.poll_transmit(&mut buf) {
            recorded.push(buf[..n].to_vec());
            p.server.dtls.handle_datagram(p.now, &buf[..n]);
        }
        while let Some(n) = p.server.dtls.poll_transmit(&mut buf) {
            p.client.dtls.handle_datagram(p.now, &buf[..n]);
        }
    }
    assert!(p.client.dtls.srtp_keys().is_some());
    let now = Instant::now();
    let mut fresh = Dtls::new(peer(), Role::Server, vec![cert().fingerprint().clone()], now);
    for _ in 0..3 {
        feed(&mut fresh, now, &recorded);
    }
}

/// A forged plaintext fatal alert (15 octets, epoch 0: anyone who can send
/// from the peer's address can make one) in the middle of the handshake, to
/// each side: the handshake still completes and keys agree.
#[test]
fn a_forged_fatal_alert_during_the_handshake_does_not_end_it() {
    // handshake_failure (40), as OpenSSL sends it.
    let forged: [u8; 15] = [21, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 7, 0, 2, 2, 40];
    for to_client in [false, true] {
        let mut p = Pair::new(cert(), peer());
        p.client.dtls.start(p.now);
        let mut buf = [0u8; 1500];
        // The client's first flight reaches the server; the forged alert
        // arrives before anything else.
        while let Some(n) = p.client.dtls.poll_transmit(&mut buf) {
            p.server.dtls.handle_datagram(p.now, &buf[..n]);
        }
        let target = if to_client { &mut p.client.dtls } else { &mut p.server.dtls };
        target.handle_datagram(p.now, &forged);
        assert_eq!(target.state(), State::Handshaking, "not failed at once");
        p.pump();
        assert!(p.both_connected(), "the peer's flights complete the handshake");
        p.collect();
        let (c, s) = (p.client.keys().expect("client keys"), p.server.keys().expect("server keys"));
        assert_keys_agree(c, s);
        // Long after, still connected: the grace ended with the handshake.
        p.now += ALERT_GRACE * 2;
        p.client.dtls.handle_timeout(p.now);
        p.server.dtls.handle_timeout(p.now);
        assert!(p.both_connected());
    }
}

/// A peer that really gives up sends its fatal alert and nothing more: the
/// association fails once the grace is over, not at the handshake's 40 s.
#[test]
fn a_real_fatal_alert_fails_the_handshake_after_the_grace() {
    let alert: [u8; 15] = [21, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 9, 0, 2, 2, 42];
    let mut p = Pair::new(cert(), peer());
    p.client.dtls.start(p.now);
    let t0 = p.now;
    p.client.dtls.handle_datagram(t0, &alert);
    assert_eq!(p.client.dtls.state(), State::Handshaking);
    assert!(p.client.dtls.poll_timeout().is_some_and(|t| t <= t0 + ALERT_GRACE));
    p.client.dtls.handle_timeout(t0 + ALERT_GRACE);
    assert_eq!(p.client.dtls.state(), State::Failed);
    p.collect();
    assert_eq!(p.client.failed(), Some("the DTLS peer sent a fatal alert"));
}

/// A server that has not started takes nothing but a ClientHello: a later
/// flight of the client's (meant for an association this one replaced)
/// is dropped and counted, and the ClientHello that follows starts a
/// handshake that keys.
#[test]
fn a_fresh_server_takes_only_a_client_hello() {
    let mut buf = [0u8; 1500];
    // A finished handshake's client flights, the first one the ClientHello.
    let mut old = Pair::new(cert(), peer());
    old.client.dtls.start(old.now);
    let mut client_flights = Vec::new();
    for _ in 0..8 {
        while let Some(n) = old.client.dtls.poll_transmit(&mut buf) {
            client_flights.push(buf[..n].to_vec());
            old.server.dtls.handle_datagram(old.now, &buf[..n]);
        }
        while let Some(n) = old.server.dtls.poll_transmit(&mut buf) {
            old.client.dtls.handle_datagram(old.now, &buf[..n]);
        }
    }
    // (With the cookie exchange the ClientHello goes twice.)
    let later: Vec<&Vec<u8>> = client_flights.iter().filter(|d| d[13] != 1).collect();
    assert!(old.both_connected() && !later.is_empty());
    let mut p = Pair::new(cert(), peer());
    for d in &later {
        p.server.dtls.handle_datagram(p.now, d);
    }
    assert_eq!(p.server.dtls.state(), State::New, "a later flight does not start a server");
    assert_eq!(p.server.dtls.dropped(), later.len() as u64);
    assert!(p.server.dtls.poll_transmit(&mut buf).is_none());
    p.client.dtls.start(p.now);
    p.pump();
    assert!(p.both_connected());
    p.collect();
    assert_keys_agree(p.client.keys().expect("client keys"), p.server.keys().expect("server keys"));
}
