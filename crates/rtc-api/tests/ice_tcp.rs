//! ICE-TCP (RFC 6544) over real TCP on 127.0.0.1: both sockets gather TCP
//! candidates (`"ice-tcp": true`) and each description is signaled with
//! its TCP candidates only, so the call can only connect over a TCP
//! connection one side opens to the other's listener. Media and data go
//! over it framed as RFC 4571 says. (UDP blocked by a firewall, with
//! Chromium as the peer, runs in the conformance runner's namespaces.)

use std::time::Duration;

use rtc_api::{
    ConnectionDescription, ConnectionEvent, DataStreamDescription, Direction, Events, RtcConnection, RtcMediaStream,
    RtcMediaStreamTrack, RtcSocket, SocketOptions, SocketServers, StreamDescription,
};
use rtc_candidate::{TcpType, TransportKind};
use rtc_codecs::Kind;

struct Peer {
    conn: RtcConnection,
    _socket: RtcSocket,
    audio: RtcMediaStreamTrack,
    events: Events<ConnectionEvent>,
}

async fn peer() -> Peer {
    peer_with(false).await
}

async fn peer_with(no_udp: bool) -> Peer {
    let conn = RtcConnection::new(None, None).unwrap();
    let servers = SocketServers { ice_tcp: true, no_udp, ..SocketServers::loopback_v4() };
    let socket = RtcSocket::new(servers, SocketOptions::default()).await.unwrap();
    let events = conn.events();
    let stream = RtcMediaStream::new(StreamDescription::default());
    let audio = RtcMediaStreamTrack::of_kind(Kind::Audio);
    stream.add_track(audio.clone()).unwrap();
    conn.send_stream(&stream, true).unwrap();
    conn.add_socket(&socket).unwrap();
    conn.enable_data();
    Peer { conn, _socket: socket, audio, events }
}

async fn wait_for(events: &mut Events<ConnectionEvent>, want: impl Fn(&ConnectionEvent) -> bool) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(e) = events.next().await {
            if want(&e) {
                return;
            }
        }
        panic!("event stream ended");
    })
    .await
    .expect("event within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_connects_over_ice_tcp_alone() {
    let (mut a, mut b) = (peer().await, peer().await);
    for (from, to) in [(&a.conn, &b.conn), (&b.conn, &a.conn)] {
        let mut d = from.description(Direction::Local).unwrap();
        let all = d.sockets[0].candidates.clone();
        let passive = all.iter().filter(|c| c.tcp_type() == Some(TcpType::Passive)).count();
        let active = all.iter().filter(|c| c.tcp_type() == Some(TcpType::Active)).count();
        assert_eq!((passive, active), (1, 1), "{all:?}");
        d.sockets[0].candidates.retain(|c| c.transport.kind() == TransportKind::Tcp);
        // Keyed by DTLS-SRTP (data streams need DTLS): no SDES keys.
        d.keys.clear();
        to.set_description(ConnectionDescription::from_json(&d.to_json()).unwrap(), Direction::Remote).unwrap();
    }
    wait_for(&mut a.events, |e| *e == ConnectionEvent::Connected).await;
    wait_for(&mut b.events, |e| *e == ConnectionEvent::Connected).await;
    // The selected pairs run over one TCP connection, opened by one side.
    let selected = |c: &RtcConnection| c.candidate_pairs().into_iter().find(|p| p.selected).expect("a selected pair");
    let (sa, sb) = (selected(&a.conn), selected(&b.conn));
    assert_eq!((sa.protocol, sb.protocol), ("tcp", "tcp"));
    assert_eq!((sa.local_address, sa.remote_address), (sb.remote_address, sb.local_address));
    let mut types = [sa.tcp_type, sb.tcp_type];
    types.sort();
    assert_eq!(types, [Some("active"), Some("passive")]);
    let json = serde_json::to_string(&sa).unwrap();
    assert!(json.contains("\"protocol\":\"tcp\""), "{json}");
    // Media both ways.
    let remote = |p: &Peer| p.conn.remote_streams()[0].tracks()[0].clone();
    let (a_in, b_in) = (remote(&a), remote(&b));
    for i in 0..20u8 {
        a.audio.write_frame(&[i; 160], Duration::from_millis(20)).unwrap();
        b.audio.write_frame(&[i ^ 0xff; 160], Duration::from_millis(20)).unwrap();
    }
    for i in 0..20u8 {
        let f = tokio::time::timeout(Duration::from_secs(3), b_in.read_frame()).await.unwrap().unwrap();
        assert_eq!(f.data, vec![i; 160]);
        let f = tokio::time::timeout(Duration::from_secs(3), a_in.read_frame()).await.unwrap().unwrap();
        assert_eq!(f.data, vec![i ^ 0xff; 160]);
    }
    // Data (SCTP over DTLS) over the same connection.
    let chat = a.conn.create_data_stream(DataStreamDescription::new("chat")).unwrap();
    let incoming = tokio::time::timeout(Duration::from_secs(5), b.conn.accept_data_stream()).await.unwrap().unwrap();
    chat.send_text("over tcp").unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), incoming.recv()).await.unwrap().unwrap();
    assert_eq!(m.data, b"over tcp");
    let sa = selected(&a.conn);
    assert!(sa.counters.bytes_sent > 20 * 160 && sa.counters.bytes_received > 20 * 160, "{sa:?}");
    a.conn.close();
    b.conn.close();
}

/// `"no-udp"` on one side: it signals TCP candidates only and checks no
/// UDP pair, so the call runs over TCP although the other side offers UDP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_udp_leaves_ice_tcp_only() {
    let (mut a, mut b) = (peer_with(true).await, peer().await);
    let theirs = a.conn.description(Direction::Local).unwrap();
    assert!(theirs.sockets[0].candidates.iter().all(|c| c.transport.kind() == TransportKind::Tcp));
    for (from, to) in [(&a.conn, &b.conn), (&b.conn, &a.conn)] {
        let d = from.description(Direction::Local).unwrap();
        to.set_description(ConnectionDescription::from_json(&d.to_json()).unwrap(), Direction::Remote).unwrap();
    }
    wait_for(&mut a.events, |e| *e == ConnectionEvent::Connected).await;
    wait_for(&mut b.events, |e| *e == ConnectionEvent::Connected).await;
    for c in [&a.conn, &b.conn] {
        let p = c.candidate_pairs().into_iter().find(|p| p.selected).expect("a selected pair");
        assert_eq!(p.protocol, "tcp");
    }
    assert!(
        RtcSocket::new(SocketServers { no_udp: true, ..SocketServers::loopback_v4() }, SocketOptions::default())
            .await
            .is_err()
    );
    a.conn.close();
    b.conn.close();
}
