//! Loss recovery in simulated time (tests/sim): NACK with retransmission
//! on RTX or on the media SSRC, the jitter buffer putting retransmitted
//! packets back in order, key frame requests (PLI) sent when a frame is
//! lost and surfaced to the sender's application, and no feedback at all
//! on a clean network.

mod sim;

use std::time::Duration;

use rtc_codecs::{Feedback, Kind, Options};
use rtc_proto::{
    ConnHandle, ConnectionConfig, ConnectionEvent, Direction, RtpStats, SocketOptions, StreamDescription,
    TrackDescription, TrackId, default_options,
};
use sim::Net;

#[derive(Clone, Copy)]
struct Peer {
    host: usize,
    conn: ConnHandle,
    video: TrackId,
}

fn peer(net: &mut Net, name: &'static str, ip: [u8; 4], options: Options) -> Peer {
    let host = net.host(name, ip, SocketOptions::default());
    let seed = 2000 + net.hosts.len() as u64;
    let conn = net.connect(host, ConnectionConfig::new(None, Some(options)), seed);
    let now = net.now;
    let stream = StreamDescription { stream_id: String::new(), tracks: vec![TrackDescription::new(Kind::Video)] };
    let (_, tracks) = net.conn_mut(host, conn).send_stream(now, stream).expect("send stream");
    Peer { host, conn, video: tracks[0] }
}

/// A VP8 frame numbered `i` (a key frame every 50): its number in octets
/// 1..5, so that order can be checked.
fn vp8_frame(i: u32, len: usize) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|k| (k as u32 ^ i.wrapping_mul(7)) as u8).collect();
    f[0] = u8::from(!i.is_multiple_of(50));
    f[1..5].copy_from_slice(&i.to_be_bytes());
    f
}

/// A call where both sides send `frames` VP8 frames of 5000 octets (five
/// packets each) at 25 frames a second over links losing `loss` of the
/// datagrams; the frames each received, and both sides' video statistics.
struct Outcome {
    received: [Vec<Vec<u8>>; 2],
    sent_stats: [RtpStats; 2],
    recv_stats: [RtpStats; 2],
    key_frame_requests: [usize; 2],
}

fn call(options: Options, loss: f64, frames: u32, seed: u64) -> Outcome {
    call_with(options, loss, Duration::from_millis(5), frames, seed)
}

/// [`call`] with links that add up to `jitter` of random delay (so
/// packets sent together overtake each other).
fn call_with(options: Options, loss: f64, jitter: Duration, frames: u32, seed: u64) -> Outcome {
    let mut net = Net::new(seed);
    let a = peer(&mut net, "a", [10, 0, 0, 1], options.clone());
    let b = peer(&mut net, "b", [10, 0, 0, 2], options);
    net.link.latency = Duration::from_millis(25);
    net.link.jitter = jitter;
    net.signal_dtls((a.host, a.conn), (b.host, b.conn));
    assert!(
        net.run_until(Duration::from_secs(20), |n| n.connected(a.host, a.conn) && n.connected(b.host, b.conn)),
        "connected"
    );
    // Loss starts once connected: what is measured is media.
    net.link.loss = loss;
    for i in 0..frames {
        let now = net.now;
        for p in [a, b] {
            let mut c = net.conn_mut(p.host, p.conn);
            c.write_frame(now, p.video, &vp8_frame(i, 5000), Duration::from_millis(40)).expect("video");
        }
        net.run_for(Duration::from_millis(40));
    }
    net.link.loss = 0.0;
    net.run_for(Duration::from_secs(2));
    let ssrc = |p: Peer| net.hosts[p.host].conn(p.conn).track_description(p.video).and_then(|d| d.ssrc).expect("ssrc");
    let stats = |p: Peer, dir: Direction| {
        net.hosts[p.host]
            .conn(p.conn)
            .stats()
            .into_iter()
            .find(|r| r.kind == Kind::Video && r.direction == dir)
            .expect("report")
            .stats
    };
    let requests = |p: Peer| {
        net.hosts[p.host]
            .conn_events(p.conn)
            .iter()
            .filter(|e| matches!(e, ConnectionEvent::KeyFrameRequest { .. }))
            .count()
    };
    Outcome {
        received: [
            net.hosts[a.host].frames_of(a.conn, ssrc(b)).into_iter().map(<[u8]>::to_vec).collect(),
            net.hosts[b.host].frames_of(b.conn, ssrc(a)).into_iter().map(<[u8]>::to_vec).collect(),
        ],
        sent_stats: [stats(a, Direction::Local), stats(b, Direction::Local)],
        recv_stats: [stats(a, Direction::Remote), stats(b, Direction::Remote)],
        key_frame_requests: [requests(a), requests(b)],
    }
}

/// Every frame received is whole, in order, and one that was sent.
fn check_order(frames: &[Vec<u8>]) {
    let mut last = None;
    for f in frames {
        let i = u32::from_be_bytes([f[1], f[2], f[3], f[4]]);
        assert_eq!(*f, vp8_frame(i, 5000), "frame {i} intact");
        assert!(last.is_none_or(|l| i > l), "frame {i} after {last:?}: in order");
        last = Some(i);
    }
}

fn without(mut options: Options, feedback: &[(&str, Option<&str>)], rtx: bool) -> Options {
    for c in &mut options.codecs {
        c.rtcp_feedback.retain(|f| !feedback.iter().any(|(k, p)| Feedback::new(k, *p) == *f));
    }
    if !rtx {
        options.codecs.retain(|c| !c.is("rtx"));
    }
    options
}

const FRAMES: u32 = 200;

#[test]
fn nack_and_rtx_recover_video_frames_lost_to_five_percent_loss() {
    let with = call(default_options(), 0.05, FRAMES, 7);
    let none = call(
        without(default_options(), &[("nack", None), ("nack", Some("pli")), ("ccm", Some("fir"))], false),
        0.05,
        FRAMES,
        7,
    );
    for side in 0..2 {
        check_order(&with.received[side]);
        check_order(&none.received[side]);
        let (got, lost) = (with.received[side].len(), none.received[side].len());
        println!("side {side}: {got} of {FRAMES} frames whole with NACK and RTX, {lost} without");
        // Five packets a frame: without recovery about 0.95^5 = 77% of the
        // frames arrive whole; with NACK nearly all.
        assert!(got as u32 >= FRAMES * 97 / 100, "side {side}: {got} of {FRAMES} frames with NACK");
        assert!((lost as u32) < FRAMES * 88 / 100, "side {side}: {lost} of {FRAMES} frames without");
        let (sent, recv) = (with.sent_stats[1 - side], with.recv_stats[side]);
        assert!(recv.nack_count > 0 && sent.nack_count > 0, "NACKs went out and arrived: {recv:?} {sent:?}");
        let resent = sent.retransmitted_packets_sent.unwrap_or(0);
        let came = recv.retransmitted_packets_received.unwrap_or(0);
        assert!(resent > 0 && came > 0 && came <= resent, "retransmitted over RTX: {resent} sent, {came} came");
        let none_sent = none.sent_stats[1 - side];
        assert_eq!((none_sent.nack_count, none_sent.retransmitted_packets_sent), (0, Some(0)), "nothing negotiated");
    }
}

#[test]
fn without_rtx_retransmissions_go_on_the_media_ssrc() {
    let o = call(without(default_options(), &[], false), 0.05, FRAMES, 11);
    for side in 0..2 {
        check_order(&o.received[side]);
        let got = o.received[side].len() as u32;
        assert!(got >= FRAMES * 97 / 100, "side {side}: {got} of {FRAMES}");
        assert!(o.sent_stats[1 - side].retransmitted_packets_sent.unwrap_or(0) > 0);
        // Retransmissions on the media SSRC are plain packets to the
        // receiver: none is counted as RTX.
        assert_eq!(o.recv_stats[side].retransmitted_packets_received, Some(0));
    }
}

#[test]
fn a_lost_frame_asks_for_a_key_frame_and_the_sender_is_told() {
    // PLI only: nothing retransmits, so lost packets lose frames.
    let o = call(without(default_options(), &[("nack", None), ("ccm", Some("fir"))], false), 0.05, FRAMES, 13);
    for side in 0..2 {
        let (recv, sent) = (o.recv_stats[side], o.sent_stats[1 - side]);
        assert!(recv.pli_count > 0, "PLI sent: {recv:?}");
        assert!(sent.pli_count > 0 && sent.pli_count <= recv.pli_count, "PLI arrived: {sent:?}");
        assert_eq!((recv.nack_count, recv.fir_count), (0, 0));
        let told = o.key_frame_requests[1 - side];
        assert!(told > 0 && told as u64 <= sent.pli_count, "the application was told {told} times");
        // At most one request every 250 ms: the call lasts 10 s.
        assert!(told <= 45, "{told} requests");
    }
}

#[test]
fn fir_is_used_when_pli_is_not_negotiated() {
    let o = call(without(default_options(), &[("nack", None), ("nack", Some("pli"))], false), 0.05, 100, 17);
    for side in 0..2 {
        let (recv, sent) = (o.recv_stats[side], o.sent_stats[1 - side]);
        assert!(recv.fir_count > 0 && recv.pli_count == 0, "{recv:?}");
        assert!(sent.fir_count > 0, "{sent:?}");
        assert!(o.key_frame_requests[1 - side] > 0);
    }
}

#[test]
fn a_clean_network_sends_no_feedback() {
    let o = call_with(default_options(), 0.0, Duration::ZERO, 100, 19);
    for side in 0..2 {
        assert_eq!(o.received[side].len(), 100);
        check_order(&o.received[side]);
        let (recv, sent) = (o.recv_stats[side], o.sent_stats[1 - side]);
        assert_eq!((recv.nack_count, recv.pli_count, recv.fir_count), (0, 0, 0), "{recv:?}");
        assert_eq!(sent.retransmitted_packets_sent, Some(0));
        assert_eq!(recv.packets_given_up, Some(0));
        assert_eq!(o.key_frame_requests[side], 0);
    }
}

/// Packets sent together overtake each other by up to 5 ms: the jitter
/// buffer puts them back in order, and learns to wait that long before
/// asking for one, so few are retransmitted for nothing.
#[test]
fn reordering_is_restored_without_many_needless_retransmissions() {
    let o = call(default_options(), 0.0, 100, 19);
    for side in 0..2 {
        assert_eq!(o.received[side].len(), 100);
        check_order(&o.received[side]);
        let (recv, sent) = (o.recv_stats[side], o.sent_stats[1 - side]);
        let resent = sent.retransmitted_packets_sent.unwrap_or(0);
        assert!(resent * 20 < 500, "{resent} of 500 packets retransmitted: {recv:?}");
        assert_eq!((recv.pli_count, recv.packets_given_up), (0, Some(0)));
    }
}

/// The figures of a lossy network at a 50 ms round trip (25 ms each way):
/// with 5% of the datagrams lost, at least 99% of the video frames arrive
/// whole; with 20%, at least 95%.
#[test]
fn at_a_50_ms_round_trip_five_and_twenty_percent_loss_cost_few_frames() {
    for (loss, want, seed) in [(0.05, 99, 23), (0.20, 95, 29)] {
        let o = call(default_options(), loss, FRAMES, seed);
        for side in 0..2 {
            check_order(&o.received[side]);
            let got = o.received[side].len() as u32;
            let r = o.recv_stats[side];
            let (dropped, delay, emitted) = (
                r.frames_dropped.unwrap_or(0) as u32,
                r.jitter_buffer_delay.unwrap_or(0.0),
                r.jitter_buffer_emitted_count.unwrap_or(0),
            );
            let mean = delay / emitted.max(1) as f64 * 1000.0;
            println!(
                "{:.0}% loss, side {side}: {got} of {FRAMES} frames whole, {dropped} dropped, {mean:.1} ms mean jitter \
                 buffer delay",
                loss * 100.0
            );
            assert!(got * 100 >= FRAMES * want, "{:.0}% loss, side {side}: {got} of {FRAMES}", loss * 100.0);
            // The statistics say the same: framesReceived, framesDropped
            // (every frame had a packet arrive), the jitter buffer's wait.
            assert_eq!(r.frames_received, Some(u64::from(got)));
            assert_eq!(emitted, u64::from(got));
            assert!(got + dropped <= FRAMES && got + dropped + 2 >= FRAMES, "{got} whole, {dropped} dropped: {r:?}");
            assert!(mean > 0.0 && mean < 300.0, "mean jitter buffer delay {mean} ms");
        }
    }
}

/// Audio never waits for a retransmission: at 20% loss every audio frame
/// that arrives is handed out the moment its packet does (25 ms after it
/// was written), the lost ones are skipped, and no NACK is sent for audio.
#[test]
fn audio_never_waits_for_a_retransmission() {
    let mut net = Net::new(31);
    let hosts = [
        net.host("a", [10, 0, 0, 1], SocketOptions::default()),
        net.host("b", [10, 0, 0, 2], SocketOptions::default()),
    ];
    let conns = [
        net.connect(hosts[0], ConnectionConfig::new(None, None), 3101),
        net.connect(hosts[1], ConnectionConfig::new(None, None), 3102),
    ];
    let now = net.now;
    let stream = StreamDescription { stream_id: String::new(), tracks: vec![TrackDescription::new(Kind::Audio)] };
    let (_, tracks) = net.conn_mut(hosts[0], conns[0]).send_stream(now, stream).expect("send stream");
    net.link.latency = Duration::from_millis(25);
    net.signal_dtls((hosts[0], conns[0]), (hosts[1], conns[1]));
    assert!(
        net.run_until(Duration::from_secs(20), |n| n.connected(hosts[0], conns[0]) && n.connected(hosts[1], conns[1]))
    );
    net.link.loss = 0.2;
    let mut written = Vec::new();
    for i in 0..500u32 {
        let now = net.now;
        let mut frame = vec![0xf8u8; 60];
        frame[1..5].copy_from_slice(&i.to_be_bytes());
        net.conn_mut(hosts[0], conns[0]).write_frame(now, tracks[0], &frame, Duration::from_millis(20)).expect("audio");
        written.push(now);
        net.run_for(Duration::from_millis(20));
    }
    net.link.loss = 0.0;
    net.run_for(Duration::from_secs(1));
    let got: Vec<_> = net.hosts[hosts[1]].frames.iter().filter(|(_, c, _, _)| *c == conns[1]).collect();
    assert!((350..=450).contains(&got.len()), "about 80% of 500: {}", got.len());
    for (at, _, _, f) in &got {
        let i = u32::from_be_bytes([f[1], f[2], f[3], f[4]]) as usize;
        let waited = *at - written[i];
        assert!(waited <= Duration::from_millis(26), "audio frame {i} handed out {waited:?} after it was written");
    }
    let report =
        net.hosts[hosts[1]].conn(conns[1]).stats().into_iter().find(|r| r.kind == Kind::Audio).expect("report");
    assert_eq!(report.stats.nack_count, 0, "no NACK for audio");
}
