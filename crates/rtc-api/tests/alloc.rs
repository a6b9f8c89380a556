//! The send path does not allocate per packet: once a track's first frame
//! has set up its send plan, `write_frame` packs, protects and sends from
//! the connection's buffers, for VP8 and for H.264. Counted by
//! `allocation-counter` (this thread's allocations only) on a current-thread
//! runtime, where no other task runs during the synchronous `write_frame`
//! calls.

use std::time::Duration;

use rtc_api::{
    ConnectionDescription, ConnectionEvent, Direction, RtcConnection, RtcMediaStream, RtcMediaStreamTrack, RtcSocket,
    SocketOptions, SocketServers, StreamDescription,
};
use rtc_codecs::Kind;

#[tokio::test(flavor = "current_thread")]
async fn write_frame_does_not_allocate_per_packet() {
    // VP8: a 4000-octet frame is four packets.
    let (packets, allocations) = measure(None, &[7u8; 4000], 4).await;
    assert_eq!(allocations, 0, "VP8: {allocations} allocations for {packets} packets");
    // H.264: SPS, PPS and a 4000-octet IDR slice (four FU-A fragments).
    let mut h264 = rtc_api::default_options();
    h264.codecs.retain(|c| c.kind == Kind::Audio);
    let mut codec =
        rtc_codecs::Codec::new(rtc_codecs::PayloadType::new(102).unwrap(), Kind::Video, "H264", 90_000, None);
    codec.parameters.insert("packetization-mode", "1");
    codec.parameters.insert("profile-level-id", "42e01f");
    h264.codecs.push(codec);
    let mut unit = vec![0, 0, 0, 1, 0x67, 1, 2, 3, 0, 0, 0, 1, 0x68, 4, 0, 0, 0, 1, 0x65];
    unit.extend([7u8; 3999]);
    let (packets, allocations) = measure(Some(h264), &unit, 6).await;
    assert_eq!(allocations, 0, "H.264: {allocations} allocations for {packets} packets");
}

/// Connects two peers with `codecs`, then counts the allocations of 200
/// audio frames and 200 video frames of `frame` (`per_frame` packets each).
async fn measure(codecs: Option<rtc_codecs::Options>, frame: &[u8], per_frame: usize) -> (usize, u64) {
    let mut peers = Vec::new();
    for _ in 0..2 {
        let conn = RtcConnection::new(None, codecs.clone()).unwrap();
        let socket = RtcSocket::new(SocketServers::loopback_v4(), SocketOptions::default()).await.unwrap();
        let stream = RtcMediaStream::new(StreamDescription::default());
        let (audio, video) = (RtcMediaStreamTrack::of_kind(Kind::Audio), RtcMediaStreamTrack::of_kind(Kind::Video));
        stream.add_track(audio.clone()).unwrap();
        stream.add_track(video.clone()).unwrap();
        conn.send_stream(&stream, true).unwrap();
        conn.add_socket(&socket).unwrap();
        let events = conn.events();
        peers.push((conn, audio, video, events));
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
    let (_, audio, video, _) = &peers[0];
    // The first frame of each track sets up its plan.
    audio.write_frame(&frame[..160], Duration::from_millis(20)).unwrap();
    video.write_frame(frame, Duration::from_millis(33)).unwrap();
    let mut packets = 0;
    let allocations = allocation_counter::measure(|| {
        for _ in 0..200 {
            packets += audio.write_frame(&frame[..160], Duration::from_millis(20)).unwrap();
            packets += video.write_frame(frame, Duration::from_millis(33)).unwrap();
        }
    })
    .count_total;
    assert_eq!(packets, 200 + 200 * per_frame);
    for p in &peers {
        p.0.close();
    }
    (packets, allocations)
}
