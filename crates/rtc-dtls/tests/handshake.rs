//! Handshakes in memory: keys, fingerprints, loss, close, application data.

mod common;

use std::time::Duration;

use common::{Pair, assert_directions_differ, assert_keys_agree};
use rtc_dtls::{
    Certificate, Dtls, Error, Event, Fingerprint, HashAlgorithm, MAX_APPLICATION_DATA, MAX_RECEIVED_APPLICATION_DATA,
    MAX_TRANSMIT, MTU, Role, State,
};

fn certs() -> (Certificate, Certificate) {
    (Certificate::generate().unwrap(), Certificate::generate().unwrap())
}

#[test]
fn handshake_keys_agree_both_ways() {
    let (a, b) = certs();
    // Each certificate takes each role once.
    for (client, server) in [(&a, &b), (&b, &a)] {
        let mut p = Pair::new(client, server);
        assert_eq!(p.client.dtls.state(), State::New);
        assert_eq!(p.client.dtls.role(), Role::Client);
        assert_eq!(p.server.dtls.role(), Role::Server);
        assert_eq!(p.client.dtls.poll_timeout(), None, "no timer before start");
        p.connect();
        assert!(p.both_connected());
        // Nothing left to retransmit: no timer.
        assert_eq!((p.client.dtls.poll_timeout(), p.server.dtls.poll_timeout()), (None, None));
        let (ck, sk) = (p.client.keys().expect("client keyed"), p.server.keys().expect("server keyed"));
        // Two dimpl peers agree on dimpl's first preference.
        assert_eq!(ck.profile, rtc_srtp::Profile::AeadAes256Gcm);
        assert_eq!(ck.profile, sk.profile);
        assert_eq!(ck.local_key(), sk.remote_key());
        assert_eq!(ck.local_salt(), sk.remote_salt());
        assert_eq!(ck.remote_key(), sk.local_key());
        assert_ne!(ck.local_key(), ck.remote_key());
        assert_keys_agree(ck, sk);
        assert_keys_agree(sk, ck);
        assert_directions_differ(ck);
        assert_eq!(p.client.dtls.srtp_keys().unwrap().local_key(), ck.local_key());
        assert!(p.client.failed().is_none() && p.server.failed().is_none());
        assert_eq!(p.client.events.len(), 1, "exactly one Connected");
        assert_eq!(p.server.events.len(), 1, "exactly one Connected");
        assert_eq!(p.client.dtls.dropped() + p.server.dtls.dropped(), 0);
        // Debug never shows key bytes.
        let shown = format!("{ck:?}");
        assert!(shown.contains("AeadAes256Gcm") && !shown.contains("key:"), "{shown}");
    }
}

#[test]
fn handshake_datagrams_fit_the_mtu() {
    let (a, b) = certs();
    let mut p = Pair::new(&a, &b);
    p.connect();
    assert!(p.both_connected());
    assert!(p.max_handshake_datagram <= MTU);
    assert!(p.client.sent.iter().chain(&p.server.sent).all(|&n| n <= MTU));
    const { assert!(MTU >= 1100 && MTU <= 1300, "a browser-like MTU") };
}

#[test]
fn wrong_fingerprint_fails_without_keys() {
    let (a, b) = certs();
    let stranger = Certificate::generate().unwrap();
    // The client expects someone else: it fails when the server's
    // certificate arrives; the server never completes either.
    let mut p = Pair::with_fingerprints(&a, &b, vec![a.fingerprint().clone()], vec![stranger.fingerprint().clone()]);
    p.connect();
    for _ in 0..10 {
        p.advance();
        p.pump();
    }
    assert!(p.client.failed().is_some());
    assert_eq!(p.client.dtls.state(), State::Failed);
    assert!(p.client.keys().is_none() && p.server.keys().is_none());
    assert!(p.client.dtls.srtp_keys().is_none());
    assert_eq!(p.client.dtls.poll_timeout(), None, "nothing more happens");
    // The client said so with a fatal alert: the server stops once the
    // grace for a forged alert is over (nothing more came).
    let alerted = p.now;
    while p.server.failed().is_none() && p.advance() {
        p.pump();
    }
    assert_eq!(p.server.failed(), Some("the DTLS peer sent a fatal alert"));
    assert!(p.now <= alerted + rtc_dtls::ALERT_GRACE, "within the grace");

    // The server expects someone else.
    let mut p = Pair::with_fingerprints(&a, &b, vec![stranger.fingerprint().clone()], vec![b.fingerprint().clone()]);
    p.connect();
    assert_eq!(p.server.failed(), Some("the peer's DTLS certificate matches none of its fingerprints"));
    assert!(p.server.keys().is_none());
    assert!(p.client.keys().is_none(), "the client never sees the server's Finished");
    assert_ne!(p.client.dtls.state(), State::Connected);
    // The server's bad_certificate alert ends the client's handshake when
    // the grace is over, with no more flights from the server meanwhile.
    let alerted = p.now;
    while p.client.failed().is_none() && p.advance() {
        p.pump();
    }
    assert_eq!(p.client.failed(), Some("the DTLS peer sent a fatal alert"));
    assert!(p.now <= alerted + rtc_dtls::ALERT_GRACE, "within the grace");
    assert_eq!(p.client.dtls.poll_timeout(), None);

    // Nothing accepted at all.
    let mut p = Pair::with_fingerprints(&a, &b, vec![], vec![]);
    p.connect();
    assert!(p.client.failed().is_some());
    assert!(p.client.keys().is_none() && p.server.keys().is_none());
}

#[test]
fn any_matching_fingerprint_and_hash_function_is_accepted() {
    let (a, b) = certs();
    let stranger = Certificate::generate().unwrap();
    let mut p = Pair::with_fingerprints(
        &a,
        &b,
        vec![stranger.fingerprint().clone(), Fingerprint::of(HashAlgorithm::Sha512, a.der())],
        vec![Fingerprint::of(HashAlgorithm::Sha1, b.der()), stranger.fingerprint().clone()],
    );
    p.connect();
    assert!(p.both_connected());
}

#[test]
fn pem_loaded_certificates_handshake() {
    let (a, b) = certs();
    let a2 = Certificate::from_pem(&a.to_pem()).unwrap();
    assert_eq!(a2.fingerprint(), a.fingerprint());
    // The peer signaled the original's fingerprint; the reloaded one passes.
    let mut p = Pair::new(&a2, &b);
    p.connect();
    assert!(p.both_connected());
    assert_keys_agree(p.client.keys().unwrap(), p.server.keys().unwrap());

    // OpenSSL-made P-256 and P-384 certificates, each in each role.
    let p256 = Certificate::from_pem(include_str!("data/openssl-p256.pem")).unwrap();
    let p384 = Certificate::from_pem(include_str!("data/openssl-p384.pem")).unwrap();
    for (client, server) in [(&p256, &p384), (&p384, &p256), (&p384, &b)] {
        let mut p = Pair::new(client, server);
        p.connect();
        assert!(p.both_connected(), "{client:?} / {server:?}");
        assert_keys_agree(p.server.keys().unwrap(), p.client.keys().unwrap());
    }
}

#[test]
fn lost_first_flight_is_retransmitted() {
    let (a, b) = certs();
    let mut p = Pair::new(&a, &b);
    let t0 = p.now;
    p.client.dtls.start(p.now);
    // The ClientHello is lost.
    let moved = p.pump_lossy(&mut |from_client, i| from_client && i == 0);
    assert_eq!(moved, 0);
    assert_eq!(p.client.sent.len(), 1);
    assert_eq!(p.server.dtls.state(), State::New);
    let at = p.client.dtls.poll_timeout().expect("a retransmission timer");
    assert!(at > t0 && at <= t0 + Duration::from_secs(2), "{:?}", at - t0);
    // Before the timer nothing happens.
    p.client.dtls.handle_timeout(at - Duration::from_millis(1));
    assert_eq!(p.client.dtls.next_transmit_len(), None);
    p.now = at;
    p.client.dtls.handle_timeout(at);
    assert!(p.client.dtls.next_transmit_len().is_some(), "the flight again");
    p.pump();
    assert!(p.both_connected());
    assert_keys_agree(p.client.keys().unwrap(), p.server.keys().unwrap());
}

#[test]
fn lost_later_flights_are_retransmitted() {
    let (a, b) = certs();
    // Lose each side's second datagram (the server's ServerHello flight,
    // the client's second ClientHello) once.
    let mut p = Pair::new(&a, &b);
    p.client.dtls.start(p.now);
    p.pump_lossy(&mut |_, i| i == 1);
    for _ in 0..20 {
        if p.both_connected() {
            break;
        }
        assert!(p.advance(), "a timer while the handshake is incomplete");
        p.pump();
    }
    assert!(p.both_connected());
    assert_keys_agree(p.client.keys().unwrap(), p.server.keys().unwrap());
}

#[test]
fn lost_final_flight_is_recovered() {
    let (a, b) = certs();
    let mut clean = Pair::new(&a, &b);
    clean.connect();
    let last = clean.server.sent.len() - 1;
    // The server's last datagram (its Finished) is lost: the server is
    // connected, the client is not; the client's timer resends its flight
    // and the server answers with its final flight again.
    let mut p = Pair::new(&a, &b);
    p.client.dtls.start(p.now);
    p.pump_lossy(&mut |from_client, i| !from_client && i == last);
    assert_eq!(p.server.dtls.state(), State::Connected);
    assert_eq!(p.client.dtls.state(), State::Handshaking);
    for _ in 0..10 {
        if p.both_connected() {
            break;
        }
        assert!(p.advance());
        p.pump();
    }
    assert!(p.both_connected());
    assert_keys_agree(p.client.keys().unwrap(), p.server.keys().unwrap());
    // Once both are connected, no timer is left to run.
    assert_eq!(p.client.dtls.poll_timeout(), None);
}

#[test]
fn unanswered_handshake_times_out() {
    let (a, _) = certs();
    let mut p = Pair::new(&a, &a);
    p.client.dtls.start(p.now);
    let start = p.now;
    for _ in 0..50 {
        // Everything the client sends is lost.
        p.pump_lossy(&mut |_, _| true);
        if !p.advance() {
            break;
        }
    }
    p.collect();
    assert_eq!(p.client.dtls.state(), State::Failed);
    assert_eq!(p.client.failed(), Some("the DTLS handshake timed out"));
    assert!(p.now - start <= Duration::from_secs(41), "{:?}", p.now - start);
    assert!(p.client.sent.len() >= 2, "retransmitted before giving up");
}

#[test]
fn close_notify_reaches_the_peer() {
    let (a, b) = certs();
    let mut p = Pair::new(&a, &b);
    p.connect();
    let keys = p.client.keys().unwrap().clone();
    p.client.dtls.close(p.now);
    assert_eq!(p.client.dtls.state(), State::Closed);
    p.client.dtls.close(p.now); // idempotent
    p.pump();
    assert!(p.server.closed(), "{:?}", p.server.events);
    assert_eq!(p.server.dtls.state(), State::Closed);
    assert!(!p.client.closed(), "no event for a local close");
    assert_eq!(p.client.dtls.poll_timeout(), None);
    assert_eq!(p.server.dtls.poll_timeout(), None);
    // Keys stay valid for media.
    assert_keys_agree(&keys, p.server.keys().unwrap());
    assert_eq!(p.server.dtls.srtp_keys().unwrap().local_key(), keys.remote_key());
    assert!(matches!(p.client.dtls.send_application_data(b"x"), Err(Error::NotConnected(_))));
    assert!(matches!(p.server.dtls.send_application_data(b"x"), Err(Error::NotConnected(_))));
    // Later datagrams are dropped and counted.
    let before = p.server.dtls.dropped();
    p.server.dtls.handle_datagram(p.now, &[23, 0xFE, 0xFD, 0, 1, 0, 0, 0, 0, 0, 9, 0, 0]);
    assert_eq!(p.server.dtls.dropped(), before + 1);

    // Closing during the handshake sends nothing and ends the machine.
    let mut p = Pair::new(&a, &b);
    p.client.dtls.start(p.now);
    let _ = p.client.dtls.poll_transmit(&mut [0u8; 1500]);
    p.client.dtls.close(p.now);
    assert_eq!(p.client.dtls.state(), State::Closed);
    assert_eq!(p.client.dtls.next_transmit_len(), None);
    p.client.dtls.start(p.now);
    assert_eq!(p.client.dtls.next_transmit_len(), None, "start after close is a no-op");
}

#[test]
fn application_data_both_ways() {
    let (a, b) = certs();
    let mut p = Pair::new(&a, &b);
    // Not before the handshake.
    assert!(matches!(p.client.dtls.send_application_data(b"early"), Err(Error::NotConnected(_))));
    p.connect();
    let big = vec![0xA5; MAX_APPLICATION_DATA];
    p.client.dtls.send_application_data(b"from the client").unwrap();
    p.client.dtls.send_application_data(&big).unwrap();
    p.server.dtls.send_application_data(b"from the server").unwrap();
    p.client.dtls.send_application_data(b"").unwrap();
    assert_eq!(p.client.dtls.send_application_data(&[0; MAX_APPLICATION_DATA + 1]), Err(Error::TooLarge(1201)));
    p.pump();
    assert!(p.client.sent.iter().chain(&p.server.sent).all(|&n| n <= MAX_TRANSMIT));

    let mut out = [0u8; 2000];
    let n = p.server.dtls.poll_application_data(&mut out).unwrap();
    assert_eq!(&out[..n], b"from the client");
    // Too short a buffer: the record stays.
    assert_eq!(p.server.dtls.next_application_data_len(), Some(MAX_APPLICATION_DATA));
    assert_eq!(p.server.dtls.poll_application_data(&mut [0u8; 100]), None);
    let n = p.server.dtls.poll_application_data(&mut out).unwrap();
    assert_eq!(&out[..n], &big[..]);
    assert_eq!(p.server.dtls.poll_application_data(&mut out), None);
    let n = p.client.dtls.poll_application_data(&mut out).unwrap();
    assert_eq!(&out[..n], b"from the server");
    assert_eq!(p.client.dtls.poll_application_data(&mut out), None);
    assert_eq!(p.client.dtls.dropped() + p.server.dtls.dropped(), 0);
}

#[test]
fn transmit_queue_is_bounded() {
    let (a, b) = certs();
    let mut p = Pair::new(&a, &b);
    p.connect();
    let mut sent = 0;
    let refused = loop {
        match p.client.dtls.send_application_data(b"data") {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 10_000);
    };
    assert_eq!(refused, Error::QueueFull);
    assert!(sent >= 16, "{sent}");
    // A short buffer keeps the datagram queued.
    let len = p.client.dtls.next_transmit_len().unwrap();
    assert_eq!(p.client.dtls.poll_transmit(&mut vec![0; len - 1]), None);
    assert_eq!(p.client.dtls.next_transmit_len(), Some(len));
    p.pump();
    let mut out = [0u8; 100];
    let mut got = 0;
    while p.server.dtls.poll_application_data(&mut out).is_some() {
        got += 1;
    }
    assert_eq!(got, sent);
    p.client.dtls.send_application_data(b"more").unwrap();
}

#[test]
fn received_application_data_is_capped() {
    let (a, b) = certs();
    let mut p = Pair::new(&a, &b);
    p.connect();
    let chunk = vec![1u8; MAX_APPLICATION_DATA];
    let mut total = 0usize;
    // The server never reads: past the cap records are dropped and counted.
    while total <= MAX_RECEIVED_APPLICATION_DATA + 10 * MAX_APPLICATION_DATA {
        while p.client.dtls.send_application_data(&chunk).is_ok() {
            total += chunk.len();
        }
        p.pump();
    }
    assert!(p.server.dtls.dropped() > 0);
    let mut out = vec![0u8; MAX_APPLICATION_DATA];
    let mut kept = 0;
    while let Some(n) = p.server.dtls.poll_application_data(&mut out) {
        kept += n;
    }
    assert!(kept <= MAX_RECEIVED_APPLICATION_DATA && kept + MAX_APPLICATION_DATA > MAX_RECEIVED_APPLICATION_DATA);
    assert_eq!(p.server.dtls.state(), State::Connected);
    // Reading frees room again.
    p.client.dtls.send_application_data(b"after").unwrap();
    p.pump();
    let n = p.server.dtls.poll_application_data(&mut out).unwrap();
    assert_eq!(&out[..n], b"after");
}

#[test]
fn role_and_start_rules() {
    let (a, b) = certs();
    let mut p = Pair::new(&a, &b);
    // A server's start does nothing; it waits for the ClientHello.
    p.server.dtls.start(p.now);
    assert_eq!(p.server.dtls.state(), State::New);
    assert_eq!(p.server.dtls.next_transmit_len(), None);
    assert_eq!(p.server.dtls.poll_timeout(), None);
    // A client that has not started drops what arrives.
    p.client.dtls.handle_datagram(p.now, &[22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(p.client.dtls.dropped(), 1);
    assert_eq!(p.client.dtls.state(), State::New);
    p.client.dtls.start(p.now);
    assert_eq!(p.client.dtls.state(), State::Handshaking);
    let first = p.client.dtls.next_transmit_len();
    p.client.dtls.start(p.now); // a second start is a no-op
    assert_eq!(p.client.dtls.next_transmit_len(), first);
    p.pump();
    assert!(p.both_connected());
    // Time going backwards is tolerated.
    let earlier = p.now - Duration::from_secs(5);
    p.client.dtls.handle_timeout(earlier);
    assert_eq!(p.client.dtls.state(), State::Connected);
}

#[test]
fn events_are_reported_once() {
    let (a, b) = certs();
    let mut p = Pair::new(&a, &b);
    p.connect();
    p.client.dtls.close(p.now);
    p.pump();
    for side in [&p.client, &p.server] {
        assert!(side.events.iter().filter(|e| matches!(e, Event::Connected(_))).count() == 1);
        assert!(side.events.iter().filter(|e| matches!(e, Event::Closed)).count() <= 1);
    }
}

/// Flights in lockstep: each side sends everything it has, the other takes
/// it all; how many one-way trips until each side is keyed (client, server).
fn trips_to_keys(client: &mut rtc_dtls::Dtls, server: &mut rtc_dtls::Dtls) -> (usize, usize) {
    let now = std::time::Instant::now();
    client.start(now);
    let mut buf = [0u8; 1500];
    let (mut client_keyed, mut server_keyed) = (None, None);
    for trip in 1..=20 {
        let (from, to) = if trip % 2 == 1 { (&mut *client, &mut *server) } else { (&mut *server, &mut *client) };
        let mut flight = Vec::new();
        while let Some(n) = from.poll_transmit(&mut buf) {
            flight.push(buf[..n].to_vec());
        }
        for d in &flight {
            to.handle_datagram(now, d);
        }
        if client_keyed.is_none() && client.state() == State::Connected {
            client_keyed = Some(trip);
        }
        if server_keyed.is_none() && server.state() == State::Connected {
            server_keyed = Some(trip);
        }
        if let (Some(c), Some(s)) = (client_keyed, server_keyed) {
            return (c, s);
        }
    }
    panic!("no keys after 20 trips");
}

/// RFC 6347 4.2.1: a server over an ICE path with consent may skip the
/// cookie exchange. With it the client is keyed after six one-way trips
/// (ClientHello, HelloVerifyRequest, ClientHello, server flight, client
/// flight, server Finished); without it after four, the server after three.
#[test]
fn over_ice_the_server_skips_the_cookie_exchange() {
    let (a, b) = certs();
    let now = std::time::Instant::now();
    let mut client = rtc_dtls::Dtls::new(&a, Role::Client, vec![b.fingerprint().clone()], now);
    let mut server = rtc_dtls::Dtls::new(&b, Role::Server, vec![a.fingerprint().clone()], now);
    assert_eq!(trips_to_keys(&mut client, &mut server), (6, 5));
    // A client made for ICE is the same client: the cookie is the server's.
    for client_over_ice in [false, true] {
        let make = if client_over_ice { rtc_dtls::Dtls::over_ice } else { rtc_dtls::Dtls::new };
        let mut client = make(&a, Role::Client, vec![b.fingerprint().clone()], now);
        let mut server = rtc_dtls::Dtls::over_ice(&b, Role::Server, vec![a.fingerprint().clone()], now);
        assert_eq!(trips_to_keys(&mut client, &mut server), (4, 3));
        let (ck, sk) = (client.srtp_keys().expect("client keys"), server.srtp_keys().expect("server keys"));
        assert_eq!((ck.local_key(), ck.remote_key()), (sk.remote_key(), sk.local_key()));
    }
}

/// The first retransmission waits twice the round trip given before the
/// handshake starts (50 ms to 1 s; dimpl adds up to a quarter either way),
/// RFC 6347's 1 s without one; and once started, a round trip changes
/// nothing.
#[test]
fn the_first_retransmission_follows_the_round_trip_given() {
    let (a, b) = certs();
    let now = std::time::Instant::now();
    let first_wait = |rtt: Option<u64>, after_start: bool| {
        let mut c = Dtls::over_ice(&a, Role::Client, vec![b.fingerprint().clone()], now);
        let set = |c: &mut Dtls| {
            if let Some(ms) = rtt {
                c.set_round_trip(Duration::from_millis(ms), &a);
            }
        };
        if !after_start {
            set(&mut c);
        }
        c.start(now);
        if after_start {
            set(&mut c);
        }
        let mut buf = [0u8; 1500];
        assert!(c.poll_transmit(&mut buf).is_some(), "a ClientHello");
        c.poll_timeout().unwrap() - now
    };
    let within = |d: Duration, ms: u64| {
        let ms = Duration::from_millis(ms);
        d >= ms * 3 / 4 && d <= ms * 5 / 4
    };
    for (rtt, want) in
        [(Some(10), 50), (Some(40), 100), (Some(50), 100), (Some(150), 400), (Some(2000), 1000), (None, 1000)]
    {
        let d = first_wait(rtt, false);
        assert!(within(d, want), "round trip {rtt:?}: first wait {d:?}, want about {want} ms");
    }
    let d = first_wait(Some(50), true);
    assert!(within(d, 1000), "given after the start: {d:?}");
}
