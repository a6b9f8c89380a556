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

/// Strangers at the TCP listener during a call over it: 100 connections
/// that send junk frames, frames over the limit, STUN with the wrong
/// credentials, or nothing. The listener keeps at most 64 of them, the
/// call's media keeps flowing, and nothing the strangers sent reaches the
/// connection as media.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_at_the_listener_do_not_disturb_the_call() {
    use tokio::io::AsyncWriteExt;
    let (mut a, mut b) = (peer().await, peer().await);
    let b_desc = b.conn.description(Direction::Local).unwrap();
    let listen = b_desc.sockets[0]
        .candidates
        .iter()
        .find(|c| c.tcp_type() == Some(TcpType::Passive))
        .map(|c| std::net::SocketAddr::new(c.address.ip().unwrap(), c.port))
        .unwrap();
    for (from, to) in [(&a.conn, &b.conn), (&b.conn, &a.conn)] {
        let mut d = from.description(Direction::Local).unwrap();
        d.sockets[0].candidates.retain(|c| c.transport.kind() == TransportKind::Tcp);
        to.set_description(ConnectionDescription::from_json(&d.to_json()).unwrap(), Direction::Remote).unwrap();
    }
    wait_for(&mut a.events, |e| *e == ConnectionEvent::Connected).await;
    wait_for(&mut b.events, |e| *e == ConnectionEvent::Connected).await;
    let mut strangers = Vec::new();
    for i in 0..100u32 {
        let Ok(mut s) = tokio::net::TcpStream::connect(listen).await else { continue };
        let junk: Vec<u8> = match i % 4 {
            // Frames of junk, RTP-looking and DTLS-looking.
            0 => [&[0, 4][..], &[0x80, 0x60, 0, 1], &[0, 3], &[0x16, 0xfe, 0xfd]].concat(),
            // A frame longer than the listener takes.
            1 => [&[0xff, 0xff][..], &[0; 100]].concat(),
            // A Binding request with a USERNAME that is nobody's.
            2 => {
                let mut m = vec![0, 1, 0, 12, 0x21, 0x12, 0xa4, 0x42];
                m.extend_from_slice(&[7; 12]);
                m.extend_from_slice(&[0, 6, 0, 8]);
                m.extend_from_slice(b"nobody:x");
                [&u16::try_from(m.len()).unwrap().to_be_bytes()[..], &m].concat()
            }
            _ => Vec::new(),
        };
        let _ = s.write_all(&junk).await;
        strangers.push(s);
    }
    let remote = |p: &Peer| p.conn.remote_streams()[0].tracks()[0].clone();
    let (a_in, b_in) = (remote(&a), remote(&b));
    for i in 0..20u8 {
        a.audio.write_frame(&[i; 160], Duration::from_millis(20)).unwrap();
        b.audio.write_frame(&[!i; 160], Duration::from_millis(20)).unwrap();
    }
    for i in 0..20u8 {
        let f = tokio::time::timeout(Duration::from_secs(3), b_in.read_frame()).await.unwrap().unwrap();
        assert_eq!(f.data, vec![i; 160]);
        let f = tokio::time::timeout(Duration::from_secs(3), a_in.read_frame()).await.unwrap().unwrap();
        assert_eq!(f.data, vec![!i; 160]);
    }
    // The listener holds at most 64 of the strangers' connections: those
    // beyond are closed at once (a read sees the end, or a reset when the
    // listener dropped what they had sent unread).
    let mut closed = 0;
    for s in &mut strangers {
        let mut buf = [0u8; 16];
        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(Duration::from_millis(20), s.peek(&mut buf)).await {
            closed += 1;
        }
    }
    assert!(closed >= 100 - 64 - 1, "{closed} of 100 strangers' connections closed");
    assert!(b.conn.is_connected());
    a.conn.close();
    b.conn.close();
}
