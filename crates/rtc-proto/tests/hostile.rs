//! A hostile or broken peer through the public API, in simulated time:
//! what it can make a connection hold is bounded (counted on this thread by
//! `allocation-counter`), and every datagram that cannot be used is dropped
//! and counted while the call goes on.
//!
//! - a flood of 10,000 unsignaled SSRCs, each packet valid SRTP under the
//!   peer's real key;
//! - remote descriptions of a megabyte, as JSON and as SDP;
//! - garbage, truncated, replayed and cross-protocol datagrams at each stage
//!   of a call (no remote description yet, described but not connected,
//!   keyed), from the peer's address and from a stranger's.

mod sim;

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use rtc_codecs::Kind;
use rtc_proto::{
    ConnHandle, ConnectionConfig, ConnectionDescription, CryptoKey, Direction, DropReason, SdpType, SocketEvent,
    SocketOptions, StreamDescription, TrackDescription, TrackId,
};
use rtc_srtp::{Context, Profile, RtpHeader};
use sim::Net;

/// The peer's SRTP master key and salt (the test knows them so that it can
/// make valid SRTP in the peer's name).
const KEY: [u8; 16] = [0x11; 16];
const SALT: [u8; 14] = [0x22; 14];

/// Most a hostile input may raise this thread's heap by.
const BUDGET: u64 = 8 << 20;

#[derive(Clone, Copy)]
struct Peer {
    host: usize,
    conn: ConnHandle,
    audio: TrackId,
}

fn peer(net: &mut Net, name: &'static str, ip: [u8; 4], key: bool) -> Peer {
    let host = net.host(name, ip, SocketOptions::default());
    let mut description = ConnectionDescription::default();
    if key {
        let mut inline = KEY.to_vec();
        inline.extend_from_slice(&SALT);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&inline);
        description.keys = vec![CryptoKey::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{b64}")).unwrap()];
    }
    let conn = net.connect(host, ConnectionConfig::new(Some(description), None), 100 + host as u64);
    let now = net.now;
    let stream = StreamDescription {
        stream_id: String::new(),
        tracks: vec![TrackDescription::new(Kind::Audio), TrackDescription::new(Kind::Video)],
    };
    let (_, t) = net.conn_mut(host, conn).send_stream(now, stream).unwrap();
    Peer { host, conn, audio: t[0] }
}

fn addr(net: &Net, p: Peer) -> SocketAddr {
    *net.hosts[p.host].addrs.keys().next().unwrap()
}

fn ssrc(net: &Net, p: Peer, t: TrackId) -> u32 {
    net.hosts[p.host].conn(p.conn).track_description(t).and_then(|d| d.ssrc).unwrap()
}

/// Hands `datagram` to `to`'s endpoint as if it came from `from`.
fn inject(net: &mut Net, to: Peer, from: SocketAddr, datagram: &[u8]) {
    let local = addr(net, to);
    let socket = net.hosts[to.host].addrs[&local];
    let now = net.now;
    let mut d = datagram.to_vec();
    let _ = net.hosts[to.host].endpoint.handle_datagram(now, socket, local, from, &mut d);
}

/// A call keyed by SDES, alice's key known to the test.
fn call(seed: u64) -> (Net, Peer, Peer) {
    let mut net = Net::new(seed);
    let a = peer(&mut net, "alice", [10, 0, 0, 1], true);
    let b = peer(&mut net, "bob", [10, 0, 0, 2], false);
    net.signal((a.host, a.conn), (b.host, b.conn));
    assert!(net.run_until(Duration::from_secs(5), |n| n.connected(a.host, a.conn) && n.connected(b.host, b.conn)));
    (net, a, b)
}

/// Alice sends `n` audio frames; returns how many of them bob received.
fn audio_flows(net: &mut Net, a: Peer, b: Peer, n: u32) -> usize {
    let before = net.hosts[b.host].frames_of(b.conn, ssrc(net, a, a.audio)).len();
    for i in 0..n {
        let now = net.now;
        net.conn_mut(a.host, a.conn).write_frame(now, a.audio, &[i as u8; 80], Duration::from_millis(20)).unwrap();
        net.run_for(Duration::from_millis(20));
    }
    net.run_for(Duration::from_millis(100));
    net.hosts[b.host].frames_of(b.conn, ssrc(net, a, a.audio)).len() - before
}

/// Finding 4: unsignaled SSRCs each made a ~770 KB stream, and BYE lifted
/// the cap. 10,000 of them, every packet valid SRTP under alice's real
/// key: the heap grows by less than 8 MiB, at most the remote-track cap of
/// streams is made, the rest is dropped and counted, and alice's media
/// keeps flowing.
#[test]
fn a_flood_of_unsignaled_ssrcs_is_capped_and_the_call_goes_on() {
    let (mut net, a, b) = call(21);
    assert_eq!(audio_flows(&mut net, a, b, 5), 5);
    let from = addr(&net, a);
    let mut tx = Context::new(Profile::Aes128CmHmacSha1_80, &KEY, &SALT).unwrap();
    let mut packets = Vec::with_capacity(10_000);
    for i in 0..10_000u32 {
        if i % 1000 == 0 {
            // (A sending context keeps at most 1,024 SSRCs' state.)
            tx = Context::new(Profile::Aes128CmHmacSha1_80, &KEY, &SALT).unwrap();
        }
        let header =
            RtpHeader { ssrc: 0x5000_0000 + i, sequence_number: i as u16, payload_type: 111, ..RtpHeader::default() };
        let mut buf = [0u8; 200];
        let n = header.write(&[0xAB; 60], 0, &mut buf).unwrap();
        let m = tx.protect_rtp(&mut buf, n).unwrap();
        packets.push(buf[..m].to_vec());
    }
    let dropped = net.hosts[b.host].conn(b.conn).dropped();
    let info = allocation_counter::measure(|| {
        for p in &packets {
            inject(&mut net, b, from, p);
        }
    });
    let bc = net.hosts[b.host].conn(b.conn);
    let remote = bc.streams(Direction::Remote).len();
    let more_dropped = bc.dropped() - dropped;
    println!(
        "10,000 unsignaled SSRCs: heap peak +{} KiB, {remote} remote streams, {more_dropped} dropped ({} as too many tracks)",
        info.bytes_max / 1024,
        bc.dropped_for(DropReason::TooManyTracks)
    );
    assert!(info.bytes_max < BUDGET, "heap peak +{} bytes", info.bytes_max);
    assert!(remote <= 65, "{remote} remote streams");
    assert!(more_dropped >= 10_000 - 64, "{more_dropped} dropped");
    assert_eq!(audio_flows(&mut net, a, b, 5), 5, "alice's media still flows");
}

/// Finding 1: a 13 KB description took 293 MB. A megabyte of JSON (12,000
/// streams) is refused whole and cheaply, as is a megabyte of SDP (10,000
/// sections), and the call they were sent into goes on.
#[test]
fn descriptions_of_a_megabyte_are_refused_cheaply_and_the_call_goes_on() {
    let (mut net, a, b) = call(22);
    let mut json = String::from(r#"{"context-id":"hostileufrag","secret":"abcdefghijklmnopqrstuvwx","streams":["#);
    for i in 0..12_000 {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&format!(
            r#"{{"stream-id":"stream-{i:06}","tracks":[{{"track-id":"track-{i:06}","ssrc":"{}","kind":"video"}}]}}"#,
            10_000 + i
        ));
    }
    json.push_str("]}");
    assert!(json.len() > 1_000_000, "{}", json.len());
    let now = net.now;
    let mut refused = None;
    let info = allocation_counter::measure(|| {
        // Read as an application reads what it was sent, then applied.
        let d = ConnectionDescription::from_json(&json).unwrap();
        refused = Some(net.conn_mut(b.host, b.conn).set_description(now, d, Direction::Remote));
    });
    println!("1 MB JSON description, read and applied: heap peak +{} KiB", info.bytes_max / 1024);
    assert!(refused.unwrap().is_err());
    assert!(info.bytes_max < BUDGET, "heap peak +{} bytes", info.bytes_max);

    let mut sdp = String::from("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n");
    let mut i = 0;
    while sdp.len() < 1_000_000 {
        sdp.push_str(&format!(
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:{i}\r\na=ice-ufrag:abcd\r\n\
             a=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 {}\r\na=setup:actpass\r\n\
             a=rtpmap:111 opus/48000/2\r\na=sendrecv\r\na=msid:s{i} t{i}\r\na=ssrc:{} cname:x\r\n",
            ["AB"; 32].join(":"),
            20_000 + i
        ));
        i += 1;
    }
    let now = net.now;
    let mut refused = None;
    let info = allocation_counter::measure(|| {
        // A new connection on bob's endpoint takes it as an offer.
        let ep = &mut net.hosts[b.host].endpoint;
        let h = ep.insert(rtc_proto::Connection::new(ConnectionConfig::default(), now, sim::wallclock()).unwrap());
        refused = Some(ep.connection_mut(h).unwrap().set_remote_sdp(now, SdpType::Offer, &sdp));
    });
    println!("1 MB SDP offer ({i} sections): heap peak +{} KiB", info.bytes_max / 1024);
    assert!(refused.unwrap().is_err(), "{i} sections are more than a connection takes");
    assert!(info.bytes_max < BUDGET, "heap peak +{} bytes", info.bytes_max);
    assert_eq!(audio_flows(&mut net, a, b, 5), 5, "the call goes on");
}

/// Finding 9's injection test (and findings 2, 3 and 10 from the wire):
/// bad datagrams at each stage of a call, from the peer's address and from
/// a stranger's. Nothing panics, each is dropped and counted (by the
/// connection, or by the endpoint as unrouted), and the call connects and
/// carries media.
#[test]
fn malformed_datagrams_at_every_stage_are_dropped_and_counted() {
    let mut net = Net::new(23);
    let a = peer(&mut net, "alice", [10, 0, 0, 1], true);
    let b = peer(&mut net, "bob", [10, 0, 0, 2], false);
    let stranger: SocketAddr = "10.0.0.99:4444".parse().unwrap();
    let mut tx = Context::new(Profile::Aes128CmHmacSha1_80, &KEY, &SALT).unwrap();
    let mut valid = [0u8; 200];
    let n = RtpHeader { ssrc: 0x7777, sequence_number: 1, payload_type: 111, ..RtpHeader::default() }
        .write(&[1u8; 40], 0, &mut valid)
        .unwrap();
    let n = tx.protect_rtp(&mut valid, n).unwrap();
    let valid = valid[..n].to_vec();
    let mut truncated_srtp = valid.clone();
    truncated_srtp.truncate(n - 3);
    let mut tampered = valid.clone();
    tampered[20] ^= 0xff;
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("one octet", vec![0x80]),
        ("garbage", (0..300u32).map(|i| (i * 37 + 11) as u8).collect()),
        ("truncated STUN", vec![0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3]),
        ("STUN with a bad integrity", {
            let mut m = vec![0x00, 0x01, 0x00, 0x18, 0x21, 0x12, 0xa4, 0x42];
            m.extend([7u8; 12]);
            m.extend([0x00, 0x08, 0x00, 0x14]);
            m.extend([0u8; 20]);
            m
        }),
        ("truncated RTP", vec![0x80, 111, 0, 1, 0, 0]),
        ("truncated SRTP", truncated_srtp),
        ("tampered SRTP", tampered),
        (
            "RTCP with a bad tag",
            vec![
                0x80, 200, 0, 6, 0, 0, 0x77, 0x77, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
                20, 21, 22, 23, 24, 0x80, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
            ],
        ),
        ("a DTLS record in an SDES call", vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3]),
        ("TURN ChannelData", vec![0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4]),
    ];
    let unrouted = |net: &Net| {
        let local = addr(net, b);
        net.hosts[b.host].endpoint.unrouted(net.hosts[b.host].addrs[&local])
    };
    let dropped = |net: &Net| net.hosts[b.host].conn(b.conn).dropped();
    let stage = |net: &mut Net, name: &str, replay: Option<&[u8]>| {
        let before = dropped(net) + unrouted(net);
        let mut sent = 0;
        for from in [addr(net, a), stranger] {
            for (what, d) in &bad {
                let was = dropped(net) + unrouted(net);
                inject(net, b, from, d);
                sent += 1;
                assert_eq!(dropped(net) + unrouted(net), was + 1, "{name}: {what} from {from} is dropped and counted");
            }
            if let Some(r) = replay {
                let was = dropped(net) + unrouted(net);
                inject(net, b, from, r);
                sent += 1;
                assert_eq!(
                    dropped(net) + unrouted(net),
                    was + 1,
                    "{name}: a replay from {from} is dropped and counted"
                );
            }
        }
        let counted = dropped(net) + unrouted(net) - before;
        println!("{name}: {sent} bad datagrams, {counted} dropped and counted");
        assert_eq!(counted, sent, "{name}: every bad datagram is dropped and counted");
    };
    // No remote description yet.
    stage(&mut net, "before any description", None);
    // Described, not yet connected.
    net.signal_one((a.host, a.conn), (b.host, b.conn), |_| {}).unwrap();
    net.signal_one((b.host, b.conn), (a.host, a.conn), |_| {}).unwrap();
    stage(&mut net, "described, before ICE", None);
    assert!(net.run_until(Duration::from_secs(5), |n| n.connected(a.host, a.conn) && n.connected(b.host, b.conn)));
    // Keyed and flowing: and a replay of a packet alice really sent.
    net.sent_log = Some(Vec::new());
    assert_eq!(audio_flows(&mut net, a, b, 5), 5);
    let log = net.sent_log.take().unwrap();
    let alice_rtp = log
        .iter()
        .find(|(_, h, d)| *h == a.host && d.len() > 12 && d[0] >> 6 == 2 && d[1] & 0x7f == 111)
        .map(|(_, _, d)| d.clone())
        .expect("one of alice's audio packets");
    stage(&mut net, "keyed", Some(&alice_rtp));
    // A Binding indication (a keepalive, unauthenticated by design) is
    // taken over the data path only (finding 10): from alice's address now,
    // never from a stranger's.
    let indication = [0x00, 0x11, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9];
    let before = (dropped(&net), unrouted(&net));
    let alice = addr(&net, a);
    inject(&mut net, b, alice, &indication);
    assert_eq!((dropped(&net), unrouted(&net)), before, "a keepalive over the data path");
    inject(&mut net, b, stranger, &indication);
    assert_eq!(dropped(&net) + unrouted(&net), before.0 + before.1 + 1, "a stranger's indication");
    assert_eq!(audio_flows(&mut net, a, b, 5), 5, "the call goes on");
    assert!(net.connected(a.host, a.conn) && net.connected(b.host, b.conn));
}

/// A DTLS 1.2 handshake fragment nobody sent: epoch 0, a Certificate
/// message far ahead (message_seq `n` + 5), its first 16 octets of 1000.
fn forged_fragment(n: u16) -> Vec<u8> {
    let mut d = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0];
    d.extend_from_slice(&(200 + n).to_be_bytes());
    d.extend_from_slice(&(12u16 + 16).to_be_bytes());
    d.extend_from_slice(&[11, 0, 0x03, 0xe8]);
    d.extend_from_slice(&(n + 5).to_be_bytes());
    d.extend_from_slice(&[0, 0, 0, 0, 0, 16]);
    d.extend_from_slice(&[0u8; 16]);
    d
}

/// Finding 3: forged handshake fragments from the client's address, more
/// than the DTLS engine queues (30), end the server's handshake. The server
/// starts over with a fresh association (which takes nothing but a
/// ClientHello) and its fatal alert still goes out; the client starts over
/// once the alert's grace (2 s) is up, and the call is keyed and carries
/// media within 3 s of the forgery (30 s before: the client retransmitted
/// into the fresh association until it gave up).
#[test]
fn forged_handshake_fragments_do_not_end_keying_for_good() {
    let mut net = Net::new(77);
    let a = peer(&mut net, "alice", [10, 0, 0, 1], false);
    let b = peer(&mut net, "bob", [10, 0, 0, 2], false);
    let dtls = |d: &[u8]| (20..=63).contains(&d[0]);
    net.sent_log = Some(Vec::new());
    net.signal_dtls((a.host, a.conn), (b.host, b.conn));
    let senders = |n: &Net| -> Vec<usize> {
        n.sent_log.as_ref().unwrap().iter().filter(|(_, _, d)| dtls(d)).map(|(_, h, _)| *h).collect()
    };
    // Until the server answered the ClientHello: the window before the
    // client's next flight reaches it.
    let answered = |n: &Net| {
        let s = senders(n);
        s.first().is_some_and(|c| s.iter().any(|h| h != c))
    };
    assert!(net.run_until(Duration::from_secs(5), answered));
    let (client, server) = if senders(&net)[0] == a.host { (a, b) } else { (b, a) };
    let from = addr(&net, client);
    for n in 0..31 {
        inject(&mut net, server, from, &forged_fragment(n));
    }
    let started = net.now;
    assert!(net.run_until(Duration::from_secs(60), |n| n.connected(a.host, a.conn) && n.connected(b.host, b.conn)));
    println!("keyed {:?} after the forgery", net.now - started);
    assert!(net.now - started < Duration::from_secs(3), "keyed {:?} after the forgery", net.now - started);
    for p in [a, b] {
        assert!(!net.hosts[p.host].socket_events().contains(&SocketEvent::Disconnected), "never left unkeyed");
    }
    assert!(audio_flows(&mut net, a, b, 20) >= 19);
}
