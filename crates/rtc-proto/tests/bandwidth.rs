//! Send-side bandwidth estimation in simulated time (tests/sim): transport
//! feedback flows both ways once transport-cc is agreed, and the estimate
//! (`available_outgoing_bitrate`, the OutgoingBitrate event) follows what
//! the link carries: up on a wide link, down to a narrow link's capacity.

mod sim;

use std::time::Duration;

use rtc_codecs::Kind;
use rtc_proto::{
    ConnHandle, ConnectionConfig, ConnectionEvent, SocketOptions, StreamDescription, TrackDescription, TrackId,
};
use sim::Net;

struct Peer {
    host: usize,
    conn: ConnHandle,
    video: TrackId,
}

fn peer_with(net: &mut Net, name: &'static str, ip: [u8; 4], config: ConnectionConfig) -> Peer {
    let host = net.host(name, ip, SocketOptions::default());
    let conn = net.connect(host, config, 3000 + net.hosts.len() as u64);
    let now = net.now;
    let stream = StreamDescription { stream_id: String::new(), tracks: vec![TrackDescription::new(Kind::Video)] };
    let (_, tracks) = net.conn_mut(host, conn).send_stream(now, stream).expect("send stream");
    Peer { host, conn, video: tracks[0] }
}

/// A sends VP8 (a frame every 40 ms, a key frame every 50) for `seconds`
/// over links capped at `capacity` (0: none), at most `bitrate` and, as an
/// encoder following the estimate would, at most 90% of it; A's estimate
/// each second, and the OutgoingBitrate events A got.
fn send(bitrate: u64, capacity: u64, seconds: u32) -> (Vec<u64>, Vec<u64>) {
    send_with(None, bitrate, capacity, seconds)
}

/// [`send`] with both peers on `options`. Until the first estimate (REMB
/// takes a second), the encoder aims at 300 kbit/s.
fn send_with(options: Option<rtc_codecs::Options>, bitrate: u64, capacity: u64, seconds: u32) -> (Vec<u64>, Vec<u64>) {
    let (e, events, _) = send_steps(options, bitrate, &[(capacity, seconds)]);
    (e, events)
}

/// [`send_with`] over a link whose capacity changes: `steps` of (capacity,
/// seconds). Also the longest A's datagrams queued for the link in each
/// second.
fn send_steps(
    options: Option<rtc_codecs::Options>,
    bitrate: u64,
    steps: &[(u64, u32)],
) -> (Vec<u64>, Vec<u64>, Vec<Duration>) {
    let mut net = Net::new(41);
    let remb = options.is_some();
    let config = || ConnectionConfig::new(None, options.clone());
    let (a, b) = (peer_with(&mut net, "a", [10, 0, 0, 1], config()), peer_with(&mut net, "b", [10, 0, 0, 2], config()));
    net.link.latency = Duration::from_millis(20);
    net.signal_dtls((a.host, a.conn), (b.host, b.conn));
    assert!(net.run_until(Duration::from_secs(10), |n| n.connected(a.host, a.conn) && n.connected(b.host, b.conn)));
    let mut estimates = Vec::new();
    let mut delays = Vec::new();
    let mut i = 0u32;
    for &(capacity, seconds) in steps {
        net.link.bandwidth = capacity;
        for _ in 0..seconds * 25 {
            let estimate = net.hosts[a.host].conn(a.conn).available_outgoing_bitrate();
            assert!(remb || estimate.is_some(), "transport-cc agreed");
            let estimate = estimate.unwrap_or(300_000);
            let frame_len = (bitrate.min(estimate * 9 / 10) / 8 / 25).max(100) as usize;
            let mut frame = vec![(i % 251) as u8; frame_len];
            frame[0] = u8::from(!i.is_multiple_of(50));
            let now = net.now;
            // Frames the link cannot take are refused once the send queue
            // is full: that is the application's problem, not the
            // estimate's.
            let _ = net.conn_mut(a.host, a.conn).write_frame(now, a.video, &frame, Duration::from_millis(40));
            net.run_for(Duration::from_millis(40));
            if i % 25 == 24 {
                estimates.push(net.hosts[a.host].conn(a.conn).available_outgoing_bitrate().unwrap_or(0));
                delays.push(std::mem::take(&mut net.hosts[a.host].max_queue_delay));
            }
            i += 1;
        }
    }
    let events = net.hosts[a.host]
        .conn_events(a.conn)
        .into_iter()
        .filter_map(|e| match e {
            ConnectionEvent::OutgoingBitrate { bitrate } => Some(bitrate),
            _ => None,
        })
        .collect();
    let _ = b.video;
    (estimates, events, delays)
}

/// A 1 Mbit/s bottleneck with a drop-tail queue (200 ms) that an encoder
/// would fill at 2.5 Mbit/s: the estimate is within 20% of the bottleneck
/// from the tenth second on, follows a step down to 500 kbit/s to within
/// 20% in 5 s, and once it has, A's datagrams queue less than 100 ms.
#[test]
fn the_estimate_converges_on_a_bottleneck_and_follows_a_step_down() {
    let (e, _, delays) = send_steps(None, 2_500_000, &[(1_000_000, 15), (500_000, 15)]);
    println!("1 Mbit/s for 15 s, then 500 kbit/s: {e:?}");
    println!("longest queueing each second (ms): {:?}", delays.iter().map(Duration::as_millis).collect::<Vec<_>>());
    for (s, &x) in e.iter().enumerate().take(15).skip(9) {
        assert!((800_000..=1_200_000).contains(&x), "second {}: {x} (1 Mbit/s): {e:?}", s + 1);
    }
    for (s, &x) in e.iter().enumerate().skip(15 + 4) {
        assert!((400_000..=600_000).contains(&x), "second {}: {x} (500 kbit/s): {e:?}", s + 1);
    }
    for (s, d) in delays.iter().enumerate().take(15).skip(10).chain(delays.iter().enumerate().skip(15 + 5)) {
        assert!(*d < Duration::from_millis(100), "second {}: queued {d:?}: {delays:?}", s + 1);
    }
}

#[test]
fn the_estimate_rises_to_what_a_wide_link_carries() {
    let (e, events) = send(1_500_000, 0, 10);
    println!("1.5 Mbit/s, no cap: {e:?}");
    let last = *e.last().unwrap();
    // At least what gets through, at most half as much again.
    assert!((1_400_000..=2_800_000).contains(&last), "{e:?}");
    let told = *events.last().expect("told");
    assert!(events.len() >= 2 && told.abs_diff(last) * 10 < told, "told of each change of a tenth: {events:?}");
}

#[test]
fn a_narrow_link_brings_the_estimate_down_to_its_capacity() {
    let (e, _) = send(2_500_000, 1_000_000, 20);
    println!("2.5 Mbit/s into 1: {e:?}");
    let last = *e.last().unwrap();
    assert!((400_000..=1_300_000).contains(&last), "{e:?}");
}

/// The options without transport feedback: REMB it is, as with aiortc.
fn without_transport_cc() -> rtc_codecs::Options {
    let mut options = rtc_proto::default_options();
    for c in &mut options.codecs {
        c.rtcp_feedback.retain(|f| !f.kind.eq_ignore_ascii_case("transport-cc"));
    }
    options.header_extensions.retain(|e| !e.uri.contains("transport-wide-cc"));
    options
}

/// Without transport feedback, B's receiving side estimates what arrives
/// (from `abs-send-time`) and sends REMB; A's estimate is B's REMB, and
/// follows the link as transport feedback makes it.
#[test]
fn remb_from_the_receiving_side_follows_a_narrow_and_a_wide_link() {
    let (e, events) = send_with(Some(without_transport_cc()), 2_500_000, 1_000_000, 20);
    println!("REMB, 2.5 Mbit/s into 1: {e:?}");
    // The first REMB goes a second after the first packet.
    assert!(e[1] > 0 && !events.is_empty(), "REMB arrived within two seconds: {e:?}");
    let last = *e.last().unwrap();
    assert!((400_000..=1_300_000).contains(&last), "{e:?}");
    let (e, _) = send_with(Some(without_transport_cc()), 1_500_000, 0, 10);
    println!("REMB, 1.5 Mbit/s, no cap: {e:?}");
    let last = *e.last().unwrap();
    assert!((1_400_000..=2_800_000).contains(&last), "{e:?}");
}

/// A 30 KB video frame and then a 400-octet audio frame written at once;
/// when each of A's video packets left, and its audio packet, counted from
/// the write.
fn burst(options: Option<rtc_codecs::Options>) -> (Vec<Duration>, Vec<Duration>) {
    let mut net = Net::new(43);
    let mut peers = Vec::new();
    for (name, ip) in [("a", [10, 0, 0, 1]), ("b", [10, 0, 0, 2])] {
        let host = net.host(name, ip, SocketOptions::default());
        let conn = net.connect(host, ConnectionConfig::new(None, options.clone()), 4000 + host as u64);
        let now = net.now;
        let tracks = vec![TrackDescription::new(Kind::Audio), TrackDescription::new(Kind::Video)];
        let (_, t) =
            net.conn_mut(host, conn).send_stream(now, StreamDescription { stream_id: String::new(), tracks }).unwrap();
        peers.push((host, conn, t));
    }
    let ((a, ac, at), (b, bc, _)) = (peers[0].clone(), peers[1].clone());
    net.signal_dtls((a, ac), (b, bc));
    assert!(net.run_until(Duration::from_secs(10), |n| n.connected(a, ac) && n.connected(b, bc)));
    net.run_for(Duration::from_millis(500));
    net.sent_log = Some(Vec::new());
    let start = net.now;
    let mut key = vec![9u8; 30_000];
    key[0] = 0;
    let now = net.now;
    net.conn_mut(a, ac).write_frame(now, at[1], &key, Duration::from_millis(40)).unwrap();
    net.conn_mut(a, ac).write_frame(now, at[0], &[5u8; 400], Duration::from_millis(20)).unwrap();
    net.run_for(Duration::from_secs(1));
    let log = net.sent_log.take().unwrap_or_default();
    let from_a = log.iter().filter(|(_, h, _)| *h == a);
    let video = from_a.clone().filter(|(_, _, d)| d.len() > 1000).map(|(t, _, _)| *t - start).collect();
    let audio = from_a.filter(|(_, _, d)| (420..520).contains(&d.len())).map(|(t, _, _)| *t - start).collect();
    (video, audio)
}

#[test]
fn a_large_frame_is_paced_out_and_audio_goes_ahead() {
    let (video, audio) = burst(None);
    println!("paced: video packets at {video:?}, audio at {audio:?}");
    assert_eq!(video.len(), 28, "30,000 octets in 1100-octet payloads");
    // Paced at 2.5 times the estimate (at least 300 kbit/s): 30 KB take
    // about 300 ms at 750 kbit/s; the estimate may have grown a little.
    let span = *video.last().unwrap() - video[0];
    assert!(span >= Duration::from_millis(100), "spread over {span:?}");
    assert_eq!(audio.len(), 1);
    assert!(audio[0] < Duration::from_millis(10), "audio is not held behind video: {audio:?}");
    // Without transport-cc: no estimate, no pacing, the frame leaves at once.
    let mut plain = rtc_proto::default_options();
    for c in &mut plain.codecs {
        c.rtcp_feedback.retain(|f| f.kind != "transport-cc");
    }
    let (video, _) = burst(Some(plain));
    assert_eq!(video.len(), 28);
    assert_eq!(*video.last().unwrap() - video[0], Duration::ZERO, "unpaced: {video:?}");
}

/// draft-alvestrand-rmcat-remb: without transport-cc (a peer such as
/// aiortc estimates on its side and sends REMB), the peer's REMB is the
/// estimate: `available_outgoing_bitrate` and `OutgoingBitrate` report it,
/// a decrease at once.
#[test]
fn without_transport_cc_the_peers_remb_is_the_estimate() {
    use base64::Engine as _;
    use rtc_proto::{ConnectionDescription, CryptoKey};
    let (key, salt) = ([0x31u8; 16], [0x42u8; 14]);
    let options = without_transport_cc();
    let mut net = Net::new(43);
    let a = peer_with(&mut net, "a", [10, 0, 0, 1], ConnectionConfig::new(None, Some(options.clone())));
    let mut inline = key.to_vec();
    inline.extend_from_slice(&salt);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&inline);
    let keys = vec![CryptoKey::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{b64}")).unwrap()];
    let known = ConnectionDescription { keys, ..ConnectionDescription::default() };
    let b = peer_with(&mut net, "b", [10, 0, 0, 2], ConnectionConfig::new(Some(known), Some(options)));
    net.signal((a.host, a.conn), (b.host, b.conn));
    assert!(net.run_until(Duration::from_secs(5), |n| n.connected(a.host, a.conn) && n.connected(b.host, b.conn)));
    assert_eq!(net.hosts[a.host].conn(a.conn).available_outgoing_bitrate(), None, "no transport-cc, no REMB yet");
    let a_video = net.hosts[a.host].conn(a.conn).track_description(a.video).and_then(|d| d.ssrc).unwrap();
    let (a_addr, b_addr) =
        (*net.hosts[a.host].addrs.keys().next().unwrap(), *net.hosts[b.host].addrs.keys().next().unwrap());
    let socket = net.hosts[a.host].addrs[&a_addr];
    let mut tx = rtc_srtp::Context::new(rtc_srtp::Profile::Aes128CmHmacSha1_80, &key, &salt).unwrap();
    for bitrate in [800_000u64, 300_000] {
        let mut buf = [0u8; 200];
        let mut w = rtc_srtp::rtcp::Writer::new(&mut buf);
        w.receiver_report(0xbbbb, &[]).unwrap();
        w.remb(0xbbbb, bitrate, &[a_video]).unwrap();
        let n = w.len();
        let n = tx.protect_rtcp(&mut buf, n).unwrap();
        let now = net.now;
        let _ = net.hosts[a.host].endpoint.handle_datagram(now, socket, a_addr, b_addr, &mut buf[..n]);
        assert_eq!(net.hosts[a.host].conn(a.conn).available_outgoing_bitrate(), Some(bitrate));
        net.run_for(Duration::from_millis(50));
    }
    let told: Vec<u64> = net.hosts[a.host]
        .conn_events(a.conn)
        .into_iter()
        .filter_map(|e| match e {
            ConnectionEvent::OutgoingBitrate { bitrate } => Some(bitrate),
            _ => None,
        })
        .collect();
    assert_eq!(told, [800_000, 300_000], "the first, then a decrease at once");
}
