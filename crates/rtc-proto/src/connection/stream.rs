//! Streams to TURN servers (TURN over TCP or TLS, rtc-ice): what the
//! connection's ICE agents ask of the driver (open or close a stream, write
//! a message on it) and what comes back (the stream opened or ended, a
//! whole message from the server).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use rtc_ice::{StreamCommand, TcpCommand, TurnTransport};

use super::{Connection, Receive};
use crate::SocketId;

/// Stream outputs a connection holds before new ones are dropped.
const MAX_STREAM_OUT: usize = 256;

/// What a connection asks of its driver about streams to TURN servers
/// (TURN over TCP or TLS; `rtc_ice::tcp::TurnStreams` does it on tokio).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamOutput {
    /// A whole message of the ICE agent's own (Allocate, Refresh,
    /// CreatePermission, ChannelBind) to write on the stream named by the
    /// transmit's `source` (the socket's host address), `destination` (the
    /// server) and `transport`. Datagrams relayed through the server come
    /// out of [`Connection::poll_transmit`] instead, with
    /// [`Transmit::turn_stream`](crate::Transmit::turn_stream) set.
    Transmit(SocketId, rtc_ice::Transmit),
    /// Open or close a stream for the socket (`rtc_ice::StreamCommand`; a
    /// close comes after the messages queued before it).
    Command(SocketId, StreamCommand),
    /// Open or close an ICE-TCP connection for the socket (RFC 6544;
    /// `rtc_ice::TcpCommand`, done by `rtc_ice::ice_tcp::IceTcp` on tokio).
    /// What goes over such a connection comes out of
    /// [`Connection::poll_transmit`] as any datagram does: a transmit whose
    /// `source` and `destination` are an open connection's two addresses
    /// goes on it, framed (RFC 4571); what arrives on one is handed to
    /// [`Connection::handle_datagram`] message by message.
    Tcp(SocketId, TcpCommand),
}

/// A stream to a TURN server as a driver names it: the socket, its host
/// address the stream was opened for, the server and the transport (the
/// `local`, `server` and `transport` of the `rtc_ice::StreamCommand` that
/// opened it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TurnStream {
    /// The socket whose agent asked for the stream.
    pub socket: SocketId,
    /// The socket's host address the stream is for.
    pub local: SocketAddr,
    /// The TURN server.
    pub server: SocketAddr,
    /// TCP or TLS.
    pub transport: TurnTransport,
}

impl TurnStream {
    /// The stream of `socket` that `(local, server, transport)` names.
    pub fn of(socket: SocketId, (local, server, transport): (SocketAddr, SocketAddr, TurnTransport)) -> Self {
        Self { socket, local, server, transport }
    }
}

/// Queues `o` unless the queue is full.
pub(super) fn push(q: &mut VecDeque<StreamOutput>, o: StreamOutput) -> bool {
    if q.len() < MAX_STREAM_OUT {
        q.push_back(o);
        true
    } else {
        false
    }
}

impl Connection {
    /// Whether a socket's agent allocates through a TURN server over TCP
    /// or TLS (so [`Connection::poll_stream`] may have something).
    pub fn uses_turn_streams(&self) -> bool {
        self.transports
            .iter()
            .any(|t| t.agent.uses_tcp() || t.agent.relay_allocations().any(|c| c.transport().is_stream()))
    }

    /// The next message or command for a stream to a TURN server, or for an
    /// ICE-TCP connection. Drain it after [`Connection::poll_transmit`],
    /// which moves the agents' own messages for streams here instead of
    /// into the caller's buffer (datagrams framed for a relay reached over a
    /// stream stay there, with `turn_stream` set).
    #[must_use]
    pub fn poll_stream(&mut self) -> Option<StreamOutput> {
        for t in &mut self.transports {
            while let Some(c) = t.agent.poll_stream_command() {
                push(&mut self.stream_out, StreamOutput::Command(t.id, c));
            }
            while let Some(c) = t.agent.poll_tcp_command() {
                push(&mut self.stream_out, StreamOutput::Tcp(t.id, c));
            }
        }
        self.stream_out.pop_front()
    }

    /// The stream a [`StreamCommand::Connect`] asked for is open.
    pub fn stream_connected(&mut self, now: Instant, stream: TurnStream) {
        self.on_stream(now, stream, true);
    }

    /// A stream to a TURN server could not be opened, ended, or broke its
    /// framing: its allocation is lost.
    pub fn stream_closed(&mut self, now: Instant, stream: TurnStream) {
        self.on_stream(now, stream, false);
    }

    fn on_stream(&mut self, now: Instant, s: TurnStream, open: bool) {
        let _span = self.entered();
        self.last_now = now;
        let Some(t) = self.transports.iter_mut().find(|t| t.id == s.socket) else { return };
        if open {
            t.agent.stream_connected(now, s.local, s.server, s.transport);
        } else {
            t.agent.stream_closed(now, s.local, s.server, s.transport);
        }
        self.drive_transports(now);
    }

    /// The ICE-TCP connection a [`TcpCommand::Connect`] of `socket`'s agent
    /// asked for, from the active candidate `local` to `remote`, is open
    /// from `connection` (see `rtc_ice::Agent::tcp_connected`).
    pub fn tcp_connected(
        &mut self,
        now: Instant,
        socket: SocketId,
        (local, remote): (SocketAddr, SocketAddr),
        connection: SocketAddr,
    ) {
        self.on_tcp(now, socket, |a| a.tcp_connected(now, local, remote, connection));
    }

    /// The ICE-TCP connection between `local` and `remote` of `socket`
    /// closed, or could not be opened (see `rtc_ice::Agent::tcp_closed`).
    pub fn tcp_closed(&mut self, now: Instant, socket: SocketId, local: SocketAddr, remote: SocketAddr) {
        self.on_tcp(now, socket, |a| a.tcp_closed(now, local, remote));
    }

    fn on_tcp(&mut self, now: Instant, socket: SocketId, f: impl FnOnce(&mut rtc_ice::Agent)) {
        let _span = self.entered();
        self.last_now = now;
        let Some(t) = self.transports.iter_mut().find(|t| t.id == socket) else { return };
        f(&mut t.agent);
        self.drive_transports(now);
    }

    /// Takes one whole message (split off the stream by
    /// `rtc_ice::framing::Deframer`) from the TURN server `server` on the
    /// stream opened for `socket`'s host address `local`: the server's
    /// answers go to the agent, what a peer sent through the relay is
    /// handled in place as a datagram is by [`Connection::handle_datagram`].
    pub fn handle_stream_message(&mut self, now: Instant, s: TurnStream, data: &mut [u8]) -> Receive {
        let _span = self.entered();
        let ti = match self.receiving(now, s.socket) {
            Ok(ti) => ti,
            Err(r) => return r,
        };
        let got = self.transports[ti].agent.handle_stream_receive(now, s.local, s.server, s.transport, data);
        self.after_ice(now, ti, got, data, None)
    }
}
