//! The send path does not allocate per packet: once a track's first frame
//! has set up its send plan, `write_frame` packs, protects and sends from
//! the connection's buffers. Counted by `allocation-counter` (this thread's
//! allocations only) on a
//! current-thread runtime, where no other task runs during the synchronous
//! `write_frame` calls.

use std::time::Duration;

use rtc_api::{
    ConnectionDescription, ConnectionEvent, Direction, RtcConnection, RtcMediaStream, RtcMediaStreamTrack, RtcSocket,
    SocketOptions, SocketServers, StreamDescription,
};
use rtc_codecs::Kind;

#[tokio::test(flavor = "current_thread")]
async fn write_frame_does_not_allocate_per_packet() {
    let mut peers = Vec::new();
    for _ in 0..2 {
        let conn = RtcConnection::new(None, None).unwrap();
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
    let frame = vec![7u8; 4000];
    // The first frame of each track sets up its plan.
    audio.write_frame(&frame[..160], Duration::from_millis(20)).unwrap();
    video.write_frame(&frame, Duration::from_millis(33)).unwrap();
    let mut packets = 0;
    let allocations = allocation_counter::measure(|| {
        for _ in 0..200 {
            packets += audio.write_frame(&frame[..160], Duration::from_millis(20)).unwrap();
            packets += video.write_frame(&frame, Duration::from_millis(33)).unwrap();
        }
    })
    .count_total;
    assert_eq!(packets, 200 + 200 * 4);
    assert_eq!(allocations, 0, "{allocations} allocations for {packets} packets");
    for p in &peers {
        p.0.close();
    }
}
