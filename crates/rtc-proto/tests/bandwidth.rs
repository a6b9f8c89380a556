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

fn peer(net: &mut Net, name: &'static str, ip: [u8; 4]) -> Peer {
    let host = net.host(name, ip, SocketOptions::default());
    let conn = net.connect(host, ConnectionConfig::new(None, None), 3000 + net.hosts.len() as u64);
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
    let mut net = Net::new(41);
    let (a, b) = (peer(&mut net, "a", [10, 0, 0, 1]), peer(&mut net, "b", [10, 0, 0, 2]));
    net.link.latency = Duration::from_millis(20);
    net.signal_dtls((a.host, a.conn), (b.host, b.conn));
    assert!(net.run_until(Duration::from_secs(10), |n| n.connected(a.host, a.conn) && n.connected(b.host, b.conn)));
    net.link.bandwidth = capacity;
    let mut estimates = Vec::new();
    for i in 0..seconds * 25 {
        let estimate = net.hosts[a.host].conn(a.conn).available_outgoing_bitrate().expect("transport-cc agreed");
        let frame_len = (bitrate.min(estimate * 9 / 10) / 8 / 25).max(100) as usize;
        let mut frame = vec![(i % 251) as u8; frame_len];
        frame[0] = u8::from(!i.is_multiple_of(50));
        let now = net.now;
        // Frames the link cannot take are refused once the send queue is
        // full: that is the application's problem, not the estimate's.
        let _ = net.conn_mut(a.host, a.conn).write_frame(now, a.video, &frame, Duration::from_millis(40));
        net.run_for(Duration::from_millis(40));
        if i % 25 == 24 {
            estimates.push(net.hosts[a.host].conn(a.conn).available_outgoing_bitrate().expect("transport-cc agreed"));
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
    (estimates, events)
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
