//! TURN over a stream (TCP or TLS) through an `Endpoint`, sans-IO: a
//! connection whose socket names a TURN server over TCP asks for the
//! stream, its Allocate comes out as a message for that stream once the
//! driver says it is open, what comes back is routed to the connection
//! that asked (and nothing else is), and a closed stream loses the
//! allocation and is closed.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use rtc_candidate::Component;
use rtc_ice::turn::AllocationState;
use rtc_ice::{StreamCommand, TurnServer, TurnTransport};
use rtc_proto::{
    Connection, ConnectionConfig, Endpoint, MIN_TRANSMIT_BUFFER, SocketConfig, SocketOptions, StreamOutput, TurnStream,
};

#[test]
fn stream_commands_and_messages_go_through_the_endpoint() {
    let now = Instant::now();
    let local: SocketAddr = "198.51.100.9:4000".parse().unwrap();
    let server: SocketAddr = "192.0.2.1:3478".parse().unwrap();
    let cert = rtc_dtls::Certificate::generate().unwrap();
    let mut config = SocketConfig::new("s", vec![(Component::RTP, local)], SocketOptions::default(), cert);
    config.turn_servers = vec![TurnServer { transport: TurnTransport::Tcp, ..TurnServer::udp(server, "u", "p") }];
    let mut ep = Endpoint::new();
    let socket = ep.add_socket(config);
    let h = ep.insert(Connection::new(ConnectionConfig::new(None, None), now, SystemTime::now()).unwrap());
    ep.add_socket_to(now, h, socket).unwrap();
    let mut buf = vec![0u8; MIN_TRANSMIT_BUFFER];
    let drain = |ep: &mut Endpoint, buf: &mut [u8]| {
        while let Some((_, t)) = ep.poll_transmit(now, buf) {
            assert_ne!(t.destination, server, "nothing for the server goes as a datagram");
        }
        std::iter::from_fn(|| ep.poll_stream()).collect::<Vec<_>>()
    };
    let out = drain(&mut ep, &mut buf);
    let connect = StreamCommand::Connect { local, server, transport: TurnTransport::Tcp, host: "192.0.2.1".into() };
    assert_eq!(out, [(h, StreamOutput::Command(socket, connect))]);
    let stream = TurnStream::of(socket, (local, server, TurnTransport::Tcp));
    ep.stream_connected(now, stream);
    let out = drain(&mut ep, &mut buf);
    let [(oh, StreamOutput::Transmit(s, t))] = &out[..] else { panic!("one message: {out:?}") };
    assert_eq!((*oh, *s, t.source, t.destination, t.transport), (h, socket, local, server, TurnTransport::Tcp));
    assert_eq!(&t.contents[..2], &[0x00, 0x03], "an Allocate request");
    // Not the server's answer: dropped, and routed nowhere for a stream
    // nobody opened.
    assert_eq!(ep.handle_stream_message(now, stream, &mut [0x40, 0x00, 0x00, 0x00]), None);
    let other = TurnStream::of(socket, (local, "192.0.2.2:3478".parse().unwrap(), TurnTransport::Tcp));
    assert_eq!(ep.handle_stream_message(now, other, &mut [0x40, 0x00, 0x00, 0x00]), None);
    // The stream ends: the allocation is lost and the stream closed.
    ep.stream_closed(now, stream);
    let state = |ep: &Endpoint| {
        let agent = ep.connection(h).unwrap().ice_agent(socket).unwrap();
        agent.relay_allocations().next().unwrap().state()
    };
    assert_eq!(state(&ep), AllocationState::Failed);
    let out = drain(&mut ep, &mut buf);
    let close = StreamCommand::Close { local, server, transport: TurnTransport::Tcp };
    assert_eq!(out, [(h, StreamOutput::Command(socket, close))]);
    assert_eq!(ep.handle_stream_message(now, stream, &mut [0x40, 0x00, 0x00, 0x00]), None);
}
