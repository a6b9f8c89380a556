//! The core allocates nothing per packet once warm: `write_frame` copies
//! into a reused buffer, `poll_transmit` packetizes and protects into the
//! caller's buffer, `handle_datagram` routes, unprotects in place and
//! depacketizes, and `poll_frame` hands the frame over by swapping buffers.
//! Counted by `allocation-counter` (this thread), in half-second windows, between two endpoints
//! connected in simulated time, for Opus with VP8 and with H.264, with
//! DTLS-SRTP keys and RTCP flowing.

mod sim;

use std::time::Duration;

use rtc_codecs::Kind;
use rtc_proto::{ConnectionConfig, Direction, MIN_TRANSMIT_BUFFER, SocketOptions, StreamDescription, TrackDescription};
use sim::Net;

#[test]
fn sending_and_receiving_do_not_allocate_per_packet() {
    let mut h264 = rtc_proto::default_options();
    h264.codecs.retain(|c| c.kind == Kind::Audio);
    let mut codec =
        rtc_codecs::Codec::new(rtc_codecs::PayloadType::new(102).unwrap(), Kind::Video, "H264", 90_000, None);
    codec.parameters.insert("packetization-mode", "1");
    h264.codecs.push(codec);
    let mut unit = vec![0, 0, 0, 1, 0x67, 1, 2, 3, 0, 0, 0, 1, 0x68, 4, 0, 0, 0, 1, 0x65];
    unit.extend([7u8; 3999]);
    for (name, options, frame, per_frame) in [("VP8", None, vp8_key_frame(), 4), ("H.264", Some(h264), unit, 5)] {
        let windows = measure(options, &frame, per_frame);
        // ICE consent checks (RFC 7675: every 4 to 6 s each way) allocate
        // for their STUN transactions; media alone must not, so most
        // half-second windows count nothing, and the rest little.
        let clean = windows.iter().filter(|a| **a == 0).count();
        assert!(clean * 2 >= windows.len(), "{name}: allocations per window of {WINDOW} rounds: {windows:?}");
        assert!(windows.iter().all(|a| *a < 100), "{name}: {windows:?}");
    }
}

/// Rounds (one audio and one video frame each, 20 ms) per measured window.
const WINDOW: usize = 25;

/// The allocations of each of 16 windows of [`WINDOW`] rounds, once warm.
fn measure(options: Option<rtc_codecs::Options>, frame: &[u8], per_frame: usize) -> Vec<u64> {
    let mut net = Net::new(21);
    let mut peers = Vec::new();
    for (name, ip) in [("a", [10, 0, 0, 1]), ("b", [10, 0, 0, 2])] {
        let host = net.host(name, ip, SocketOptions::default());
        let mut config = ConnectionConfig::new(None, options.clone());
        config.report_interval = Duration::from_secs(3600);
        let conn = net.connect(host, config, 7 + host as u64);
        let tracks = vec![TrackDescription::new(Kind::Audio), TrackDescription::new(Kind::Video)];
        let now = net.now;
        let (_, t) =
            net.conn_mut(host, conn).send_stream(now, StreamDescription { stream_id: String::new(), tracks }).unwrap();
        peers.push((host, conn, t));
    }
    net.signal_dtls((peers[0].0, peers[0].1), (peers[1].0, peers[1].1));
    assert!(net.run_until(Duration::from_secs(5), |n| n.connected(0, peers[0].1) && n.connected(1, peers[1].1)));
    let (a, b) = (peers[0].clone(), peers[1].clone());
    let mut buf = vec![0u8; MIN_TRANSMIT_BUFFER];
    let mut got = Vec::new();
    // One round: A writes an audio and a video frame, every datagram goes
    // straight to B, B's frames come out; time moves 20 ms.
    let mut round = |net: &mut Net| -> (usize, usize) {
        let now = net.now;
        let mut packets = 0;
        {
            let mut c = net.hosts[a.0].endpoint.connection_mut(a.1).unwrap();
            packets += c.write_frame(now, a.2[0], &frame[..160], Duration::from_millis(20)).unwrap();
            packets += c.write_frame(now, a.2[1], frame, Duration::from_millis(20)).unwrap();
        }
        for (from, to) in [(a.0, b.0), (b.0, a.0)] {
            while let Some((_, t)) = net.hosts[from].endpoint.poll_transmit(now, &mut buf) {
                let socket = net.hosts[to].addrs[&t.destination];
                let _ = net.hosts[to].endpoint.handle_datagram(now, socket, t.destination, t.source, &mut buf[..t.len]);
            }
        }
        let mut frames = 0;
        while let Some((_, f)) = net.hosts[b.0].endpoint.poll_frame(&mut got) {
            assert!(got.len() == 160 || got.len() == frame.len(), "frame {} octets, {f:?}", got.len());
            got.clear();
            frames += 1;
        }
        for h in 0..2 {
            while net.hosts[h].endpoint.poll_event().is_some() {}
        }
        net.now += Duration::from_millis(20);
        for h in 0..2 {
            let now = net.now;
            net.hosts[h].endpoint.handle_timeout(now);
        }
        (packets, frames)
    };
    // Warm up until RTCP went both ways (SRTCP state is made per SSRC on
    // the first report): A's sent tracks then have a round-trip time.
    for _ in 0..500 {
        round(&mut net);
        let stats = net.hosts[a.0].conn(a.1).stats();
        if stats.iter().any(|r| r.direction == Direction::Local && r.stats.round_trip_time.is_some()) {
            break;
        }
    }
    // Then until every slot of the send history (512 packets, for
    // retransmission) has been used once.
    for _ in 0..400 {
        round(&mut net);
    }
    let mut windows = Vec::with_capacity(16);
    for _ in 0..16 {
        let (mut packets, mut frames) = (0, 0);
        let allocations = allocation_counter::measure(|| {
            for _ in 0..WINDOW {
                let (p, f) = round(&mut net);
                packets += p;
                frames += f;
            }
        })
        .count_total;
        assert_eq!(packets, WINDOW * (1 + per_frame));
        assert_eq!(frames, 2 * WINDOW, "every frame through, none held");
        windows.push(allocations);
    }
    windows
}

/// A VP8 key frame (P bit clear, RFC 6386 section 9.1) of 4000 octets: a
/// stream of them never leaves a receiver wanting one (no PLI, no
/// key-frame-request events to allocate).
fn vp8_key_frame() -> Vec<u8> {
    let mut f = vec![7u8; 4000];
    f[0] = 6;
    f
}
