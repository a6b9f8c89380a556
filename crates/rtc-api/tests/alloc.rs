//! Sending and receiving allocate nothing per packet once warm: a frame
//! written is copied into a reused buffer, packetized and protected into
//! the driver's buffer and sent; a datagram received is unprotected in
//! place, depacketized, and the frame reaches the reader in a pooled buffer
//! that goes back when dropped. Counted by `allocation-counter` on a
//! current-thread runtime, so both peers' driver tasks run on the counted
//! thread, from `write_frame` to `read_frame`, in windows of 25 frames, for
//! VP8, H.264 and Opus, RTCP reports and transport feedback included.

use std::time::Duration;

use rtc_api::{
    ConnectionDescription, ConnectionEvent, Direction, RtcConnection, RtcMediaStream, RtcMediaStreamTrack, RtcSocket,
    SocketOptions, SocketServers, StreamDescription,
};
use rtc_codecs::Kind;

/// The default options without transport-cc: a real-time test on a busy
/// machine sees the bandwidth estimate move, and each OutgoingBitrate event
/// is a (small) allocation that is not per packet. The transport feedback
/// and estimator's per-packet paths are counted by rtc-proto's allocation
/// test, in simulated time with transport-cc on.
fn options() -> rtc_codecs::Options {
    let mut o = rtc_api::default_options();
    for c in &mut o.codecs {
        c.rtcp_feedback.retain(|f| f.kind != "transport-cc");
    }
    o
}

#[test]
fn sending_and_receiving_do_not_allocate_per_packet() {
    // VP8: a 4000-octet key frame (P bit clear) is four packets.
    let mut vp8 = [7u8; 4000];
    vp8[0] = 6;
    check("VP8", &measure(Some(options()), &vp8, 4, false));
    // H.264: SPS and PPS (one STAP-A) and a 4000-octet IDR slice (four
    // FU-A fragments).
    let mut h264 = options();
    h264.codecs.retain(|c| c.kind == Kind::Audio);
    let mut codec =
        rtc_codecs::Codec::new(rtc_codecs::PayloadType::new(102).unwrap(), Kind::Video, "H264", 90_000, None);
    codec.parameters.insert("packetization-mode", "1");
    codec.parameters.insert("profile-level-id", "42e01f");
    h264.codecs.push(codec);
    let mut unit = vec![0, 0, 0, 1, 0x67, 1, 2, 3, 0, 0, 0, 1, 0x68, 4, 0, 0, 0, 1, 0x65];
    unit.extend([7u8; 3999]);
    check("H.264", &measure(Some(h264), &unit, 5, false));
}

/// The same over ICE-TCP alone (`"ice-tcp"` and `"no-udp"`): RFC 4571
/// framing, the connections' tasks and their buffers included.
#[test]
fn over_ice_tcp_sending_and_receiving_do_not_allocate_per_packet() {
    let mut vp8 = [7u8; 4000];
    vp8[0] = 6;
    check("VP8 over ICE-TCP", &measure(Some(options()), &vp8, 4, true));
}

/// Media alone allocates nothing: most windows count none. What is not per
/// packet may fall in a window: an ICE consent check (every 4 to 6 s).
fn check(name: &str, windows: &[u64]) {
    let clean = windows.iter().filter(|a| **a == 0).count();
    assert!(clean * 2 >= windows.len(), "{name}: allocations per window of {WINDOW} rounds: {windows:?}");
    assert!(windows.iter().all(|a| *a < 100), "{name}: {windows:?}");
}

/// Rounds (an audio and a video frame each) per measured window.
const WINDOW: usize = 25;

/// Connects two peers with `codecs` (over ICE-TCP only with `tcp`), warms
/// up, then counts the allocations of eight windows of [`WINDOW`] audio
/// and video frames of `frame` (`per_frame` packets each) from the writer
/// to the reader.
fn measure(codecs: Option<rtc_codecs::Options>, frame: &[u8], per_frame: usize, tcp: bool) -> Vec<u64> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (peers, audio_in, video_in) = rt.block_on(async {
        let mut peers = Vec::new();
        for _ in 0..2 {
            let conn = RtcConnection::new(None, codecs.clone()).unwrap();
            // Reports (strings in events) every hour only.
            conn.set_report_interval(Duration::from_secs(3600));
            let servers = SocketServers { ice_tcp: tcp, no_udp: tcp, ..SocketServers::loopback_v4() };
            let socket = RtcSocket::new(servers, SocketOptions::default()).await.unwrap();
            let stream = RtcMediaStream::new(StreamDescription::default());
            let (audio, video) = (RtcMediaStreamTrack::of_kind(Kind::Audio), RtcMediaStreamTrack::of_kind(Kind::Video));
            stream.add_track(audio.clone()).unwrap();
            stream.add_track(video.clone()).unwrap();
            conn.send_stream(&stream, true).unwrap();
            conn.add_socket(&socket).unwrap();
            let events = conn.events();
            peers.push((conn, audio, video, events, socket));
        }
        for (i, j) in [(0, 1), (1, 0)] {
            let d = peers[i].0.description(Direction::Local).unwrap().to_json();
            peers[j].0.set_description(ConnectionDescription::from_json(&d).unwrap(), Direction::Remote).unwrap();
        }
        for p in &mut peers {
            tokio::time::timeout(Duration::from_secs(5), async {
                while p.3.next().await != Some(ConnectionEvent::Connected) {}
            })
            .await
            .unwrap();
        }
        let selected = peers[0].0.candidate_pairs().into_iter().find(|p| p.selected).unwrap();
        assert_eq!(selected.protocol, if tcp { "tcp" } else { "udp" });
        let tracks = peers[1].0.remote_streams()[0].tracks();
        let audio_in = tracks.iter().find(|t| t.kind() == Kind::Audio).unwrap().clone();
        let video_in = tracks.iter().find(|t| t.kind() == Kind::Video).unwrap().clone();
        (peers, audio_in, video_in)
    });
    let (_, audio, video, _, _) = &peers[0];
    let round = |n: usize| {
        rt.block_on(async {
            let mut packets = 0;
            for _ in 0..n {
                packets += audio.write_frame(&frame[..160], Duration::from_millis(20)).unwrap();
                packets += video.write_frame(frame, Duration::from_millis(33)).unwrap();
                let a = tokio::time::timeout(Duration::from_secs(2), audio_in.read_frame()).await.unwrap().unwrap();
                let v = tokio::time::timeout(Duration::from_secs(2), video_in.read_frame()).await.unwrap().unwrap();
                assert_eq!((&a.data[..], &v.data[..]), (&frame[..160], frame));
            }
            packets
        })
    };
    // Warm up: buffers, queues and pools reach their working size, and each
    // side has sent and received RTCP (its SRTCP state per SSRC is made on
    // the first report; a round-trip time on the sender says both went).
    let rtt = |c: &RtcConnection| c.stats().iter().any(|r| r.stats.round_trip_time.is_some());
    for _ in 0..100 {
        round(10);
        if rtt(&peers[0].0) {
            break;
        }
        rt.block_on(async { tokio::time::sleep(Duration::from_millis(50)).await });
    }
    assert!(rtt(&peers[0].0), "RTCP flowed both ways");
    // Every slot of the video send history (512 packets kept for
    // retransmission) used once.
    round(130);
    let mut windows = Vec::new();
    for _ in 0..8 {
        let mut packets = 0;
        windows.push(allocation_counter::measure(|| packets = round(WINDOW)).count_total);
        assert_eq!(packets, WINDOW * (1 + per_frame));
    }
    for p in &peers {
        p.0.close();
    }
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(20)).await });
    windows
}
