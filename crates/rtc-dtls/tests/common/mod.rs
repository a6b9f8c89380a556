//! Two associations in memory with simulated time and a lossy wire.
#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use rtc_dtls::{Certificate, Dtls, Engine, Event, Fingerprint, MAX_TRANSMIT, MTU, Role, SrtpKeys, State};

/// One side with what it reported.
pub struct Side {
    pub dtls: Dtls,
    pub events: Vec<Event>,
    /// Datagrams it sent (lengths), handshake and later.
    pub sent: Vec<usize>,
}

impl Side {
    pub fn keys(&self) -> Option<&SrtpKeys> {
        self.events.iter().find_map(|e| if let Event::Connected(k) = e { Some(k) } else { None })
    }

    pub fn failed(&self) -> Option<&'static str> {
        self.events.iter().find_map(|e| if let Event::Failed(r) = e { Some(*r) } else { None })
    }

    pub fn closed(&self) -> bool {
        self.events.iter().any(|e| matches!(e, Event::Closed))
    }
}

/// A client and a server.
pub struct Pair {
    pub client: Side,
    pub server: Side,
    pub now: Instant,
    /// Largest handshake datagram seen before either side connected.
    pub max_handshake_datagram: usize,
}

impl Pair {
    /// Each side accepts the other's real fingerprint.
    pub fn new(client: &Certificate, server: &Certificate) -> Self {
        Self::with_fingerprints(client, server, vec![client.fingerprint().clone()], vec![server.fingerprint().clone()])
    }

    /// `server_accepts` goes to the server (the client's certificate must
    /// match), `client_accepts` to the client.
    pub fn with_fingerprints(
        client: &Certificate,
        server: &Certificate,
        server_accepts: Vec<Fingerprint>,
        client_accepts: Vec<Fingerprint>,
    ) -> Self {
        let now = Instant::now();
        Self {
            client: Side { dtls: Dtls::new(client, Role::Client, client_accepts, now), events: vec![], sent: vec![] },
            server: Side { dtls: Dtls::new(server, Role::Server, server_accepts, now), events: vec![], sent: vec![] },
            now,
            max_handshake_datagram: 0,
        }
    }

    /// Each side on its own engine ([`Dtls::with_engine`]), accepting the
    /// other's real fingerprint.
    pub fn engines(client: (&Certificate, Engine), server: (&Certificate, Engine)) -> Self {
        let now = Instant::now();
        let side = |c: &Certificate, e, role, accepts: &Certificate| Side {
            dtls: Dtls::with_engine(e, c, role, vec![accepts.fingerprint().clone()], now),
            events: vec![],
            sent: vec![],
        };
        Self {
            client: side(client.0, client.1, Role::Client, server.0),
            server: side(server.0, server.1, Role::Server, client.0),
            now,
            max_handshake_datagram: 0,
        }
    }

    /// Moves datagrams both ways (none lost) until the wire is quiet;
    /// returns how many moved.
    pub fn pump(&mut self) -> usize {
        self.pump_lossy(&mut |_, _| false)
    }

    /// As [`Pair::pump`], dropping datagrams for which `lose(from_client,
    /// index)` says so (`index` counts each side's datagrams from 0).
    pub fn pump_lossy(&mut self, lose: &mut dyn FnMut(bool, usize) -> bool) -> usize {
        let mut moved = 0;
        let mut buf = [0u8; 1500];
        for _ in 0..1000 {
            let mut any = false;
            for from_client in [true, false] {
                let (from, to) = if from_client {
                    (&mut self.client, &mut self.server)
                } else {
                    (&mut self.server, &mut self.client)
                };
                while let Some(n) = from.dtls.poll_transmit(&mut buf) {
                    assert!(n <= MAX_TRANSMIT, "a {n}-octet datagram");
                    assert!(rtc_dtls::is_dtls(&buf[..n]));
                    if from.dtls.state() != State::Connected && to.dtls.state() != State::Connected {
                        self.max_handshake_datagram = self.max_handshake_datagram.max(n);
                    }
                    let index = from.sent.len();
                    from.sent.push(n);
                    any = true;
                    if !lose(from_client, index) {
                        moved += 1;
                        to.dtls.handle_datagram(self.now, &buf[..n]);
                    }
                }
            }
            self.collect();
            if !any {
                break;
            }
        }
        moved
    }

    pub fn collect(&mut self) {
        for side in [&mut self.client, &mut self.server] {
            while let Some(e) = side.dtls.poll_event() {
                side.events.push(e);
            }
        }
    }

    /// Moves time to the earlier timer of the two and fires both.
    pub fn advance(&mut self) -> bool {
        let next = [self.client.dtls.poll_timeout(), self.server.dtls.poll_timeout()].into_iter().flatten().min();
        let Some(at) = next else { return false };
        assert!(at >= self.now || at + Duration::from_secs(1) >= self.now);
        self.now = self.now.max(at);
        self.client.dtls.handle_timeout(self.now);
        self.server.dtls.handle_timeout(self.now);
        true
    }

    /// Starts the client and runs the handshake to the end (no loss).
    pub fn connect(&mut self) {
        self.client.dtls.start(self.now);
        self.pump();
        assert!(self.max_handshake_datagram <= MTU, "handshake datagram of {}", self.max_handshake_datagram);
    }

    pub fn both_connected(&self) -> bool {
        self.client.dtls.state() == State::Connected && self.server.dtls.state() == State::Connected
    }
}

/// What `tx` protects, `rx` unprotects (RTP and RTCP).
pub fn assert_keys_agree(sender: &SrtpKeys, receiver: &SrtpKeys) {
    let (mut tx, _) = sender.contexts().unwrap();
    let (_, mut rx) = receiver.contexts().unwrap();
    let header = rtc_srtp::RtpHeader { ssrc: 0x1234_5678, sequence_number: 7, ..Default::default() };
    let mut buf = [0u8; 200];
    let n = header.write(b"media payload", 0, &mut buf).unwrap();
    let m = tx.protect_rtp(&mut buf, n).unwrap();
    assert!(m > n);
    let k = rx.unprotect_rtp(&mut buf[..m]).expect("the receiver unprotects what the sender protected");
    assert_eq!(k, n);
    assert_eq!(&buf[n - 13..n], b"media payload");
}

/// A side cannot unprotect its own packets: the directions use different keys.
pub fn assert_directions_differ(keys: &SrtpKeys) {
    let (mut tx, mut rx) = keys.contexts().unwrap();
    let header = rtc_srtp::RtpHeader { ssrc: 9, ..Default::default() };
    let mut buf = [0u8; 200];
    let n = header.write(b"x", 0, &mut buf).unwrap();
    let m = tx.protect_rtp(&mut buf, n).unwrap();
    assert!(rx.unprotect_rtp(&mut buf[..m]).is_err());
}
