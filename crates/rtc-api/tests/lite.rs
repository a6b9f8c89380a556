//! ICE lite on real sockets (127.0.0.1): an RtcSocket with `ice-lite` in
//! its options answers a full one, in SDP, and audio flows both ways; a lite
//! socket with STUN or TURN URLs is refused.

use std::time::Duration;

use rtc_api::{
    ConnectionEvent, Error, Events, RtcConnection, RtcMediaStream, RtcMediaStreamTrack, RtcSocket, SdpType,
    SocketEvent, SocketOptions, SocketServers, StreamDescription,
};
use rtc_codecs::Kind;

struct Peer {
    conn: RtcConnection,
    audio: RtcMediaStreamTrack,
    events: Events<ConnectionEvent>,
}

async fn peer(lite: bool) -> Peer {
    let (conn, audio) = (RtcConnection::new(None, None).unwrap(), RtcMediaStreamTrack::of_kind(Kind::Audio));
    let events = conn.events();
    let stream = RtcMediaStream::new(StreamDescription::default());
    stream.add_track(audio.clone()).unwrap();
    conn.send_stream(&stream, true).unwrap();
    let options = SocketOptions { ice_lite: lite, ..SocketOptions::default() };
    let socket = RtcSocket::new(SocketServers::loopback_v4(), options).await.unwrap();
    // Host candidates only on the lite side: gathering ends at once.
    let mut socket_events = socket.events();
    conn.add_socket(&socket).unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        while socket_events.next().await.is_some_and(|e| e != SocketEvent::CandidatesDone) {}
    })
    .await
    .expect("gathering ends");
    Peer { conn, audio, events }
}

async fn connected(events: &mut Events<ConnectionEvent>) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while events.next().await.is_some_and(|e| e != ConnectionEvent::Connected) {}
    })
    .await
    .expect("connected within 10 s");
}

/// The full side offers, the lite side answers with `a=ice-lite` (and
/// without `a=ice-pacing`), then the other way round; each call keys
/// DTLS-SRTP and carries 20 audio frames each way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lite_socket_calls_a_full_one_in_both_offer_directions() {
    for lite_offers in [false, true] {
        let (mut full, mut lite) = (peer(false).await, peer(true).await);
        let (offerer, answerer) = if lite_offers { (&lite, &full) } else { (&full, &lite) };
        let offer = offerer.conn.local_sdp().unwrap();
        answerer.conn.set_remote_sdp(SdpType::Offer, &offer).unwrap();
        let answer = answerer.conn.local_sdp().unwrap();
        offerer.conn.set_remote_sdp(SdpType::Answer, &answer).unwrap();
        let (lite_sdp, full_sdp) = if lite_offers { (&offer, &answer) } else { (&answer, &offer) };
        assert!(lite_sdp.contains("\r\na=ice-lite\r\n") && !lite_sdp.contains("a=ice-pacing"), "{lite_sdp}");
        assert!(!full_sdp.contains("a=ice-lite"), "{full_sdp}");
        connected(&mut full.events).await;
        connected(&mut lite.events).await;
        let remote_audio = |p: &Peer| p.conn.remote_streams().iter().flat_map(|s| s.tracks()).next().unwrap();
        let (full_in, lite_in) = (remote_audio(&full), remote_audio(&lite));
        // A frame each way, each read back before the next is written.
        let wait = Duration::from_secs(2);
        for i in 0..20u8 {
            full.audio.write_frame(&[i; 160], Duration::from_millis(20)).unwrap();
            lite.audio.write_frame(&[i ^ 0xff; 120], Duration::from_millis(20)).unwrap();
            let both = async { tokio::join!(lite_in.read_frame(), full_in.read_frame()) };
            let (to_lite, to_full) = tokio::time::timeout(wait, both).await.expect("frames within 2 s");
            assert_eq!(to_lite.unwrap().data, vec![i; 160], "lite offers: {lite_offers}");
            assert_eq!(to_full.unwrap().data, vec![i ^ 0xff; 120], "lite offers: {lite_offers}");
        }
        full.conn.close();
        lite.conn.close();
    }
}

/// A lite socket gathers host candidates only: STUN and TURN URLs, and
/// relay-only, are refused before anything is bound.
#[tokio::test]
async fn a_lite_socket_with_servers_is_refused() {
    let lite = SocketOptions { ice_lite: true, ..SocketOptions::default() };
    for servers in [
        SocketServers { urls: vec!["stun:127.0.0.1:3478".into()], ..SocketServers::loopback_v4() },
        SocketServers {
            urls: vec!["turn:127.0.0.1:3478".into()],
            username: Some("u".into()),
            credential: Some("p".into()),
            ..SocketServers::loopback_v4()
        },
        SocketServers { relay_only: true, ..SocketServers::loopback_v4() },
    ] {
        let e = RtcSocket::new(servers, lite.clone()).await.unwrap_err();
        assert!(matches!(e, Error::InvalidOptions(ref m) if m.contains("ice-lite")), "{e}");
    }
}
