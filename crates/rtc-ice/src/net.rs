//! One driver's network on tokio (feature `tokio`): the UDP sockets, the
//! streams to TURN servers (TCP, TLS), the ICE-TCP listeners and
//! connections and the mDNS socket of every socket group a sans-IO core
//! (rtc-proto's `Endpoint`, an [`IceSocket`](crate::IceSocket)'s agent,
//! or a loop of the application's own) serves, each local address tagged
//! with its owner `K` (the core's socket id; `()` for one agent).
//!
//! Call order, in the driver's one task:
//! 1. [`Network::wait`] for something to read, a wake-up or the core's
//!    timer;
//! 2. with the core at hand (its lock taken), [`Network::take`] hands it
//!    everything read since, through [`Inputs`], each with its owner;
//! 3. with the lock released, the core's output goes out through
//!    [`Network::send`], [`Network::stream`], [`Network::stream_command`],
//!    [`Network::tcp_command`] and [`Network::mdns`].
//!
//! Which owner an ICE-TCP connection belongs to is decided here: a
//! listener's connections belong to the listener's owner, a connection
//! opened by [`TcpCommand::Connect`] to the owner that asked; one opened
//! for nobody any more (its owner gone, or [`Inputs::tcp_connected`]
//! refused it) is closed again. Nothing here allocates per datagram once
//! warm: stream and ICE-TCP buffers go back to their pools.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use tokio::sync::mpsc;

use crate::agent::{StreamCommand, TcpCommand};
use crate::error::Error;
use crate::ice_tcp::{IceTcp, IceTcpEvent};
use crate::mdns::MdnsTransmit;
use crate::tcp::{StreamEvent, StreamKey, TlsConfig, TurnStreams};
use crate::udp::{Bound, MdnsLink, RecvBatch, UdpSocketSet};
use crate::url::TurnTransport;

/// Stream and ICE-TCP events handed over in one [`Network::take`] at most
/// (the rest wait for the next).
const EVENT_BATCH: usize = 64;

/// What a core takes from the network, each input with the owner of the
/// local address it came in on.
pub trait Inputs<K> {
    /// A datagram (UDP, or one message of an ICE-TCP connection), mutable
    /// where it lies.
    fn datagram(&mut self, owner: K, local: SocketAddr, remote: SocketAddr, data: &mut [u8]);
    /// A stream to a TURN server opened.
    fn stream_connected(&mut self, owner: K, key: StreamKey);
    /// A stream to a TURN server ended or could not be opened.
    fn stream_closed(&mut self, owner: K, key: StreamKey);
    /// One whole STUN or ChannelData message from a TURN server.
    fn stream_message(&mut self, owner: K, key: StreamKey, message: &mut [u8]);
    /// The ICE-TCP connection the owner asked for (`opened`: the active
    /// candidate's address and the remote) is open, at local address
    /// `connection`. False closes it again (nobody waits for it).
    fn tcp_connected(&mut self, owner: K, opened: (SocketAddr, SocketAddr), connection: SocketAddr) -> bool;
    /// An ICE-TCP connection ended, or could not be opened.
    fn tcp_closed(&mut self, owner: K, local: SocketAddr, remote: SocketAddr);
    /// A datagram on the mDNS socket.
    fn mdns(&mut self, from: SocketAddr, data: &[u8]);
}

/// The sockets, streams and connections of one driver; see the module
/// documentation for the call order.
pub struct Network<K> {
    udp: UdpSocketSet,
    batch: RecvBatch,
    streams: TurnStreams,
    stream_events: mpsc::Receiver<StreamEvent>,
    from_streams: Vec<StreamEvent>,
    tcp: IceTcp,
    from_tcp: Vec<IceTcpEvent>,
    mdns: MdnsLink,
    /// The owner of each UDP socket's and each ICE-TCP listener's address.
    udp_owners: HashMap<SocketAddr, K>,
    listeners: HashMap<SocketAddr, K>,
    /// ICE-TCP connections an owner opened (by their local address), and
    /// those being opened (the active candidate's address and the remote).
    connections: HashMap<SocketAddr, K>,
    opening: HashMap<(SocketAddr, SocketAddr), K>,
    /// The TLS roots of each owner's `turns:` servers.
    tls: HashMap<K, TlsConfig>,
}

impl<K> std::fmt::Debug for Network<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("udp", &self.udp.len())
            .field("streams", &self.streams.len())
            .field("tcp", &self.tcp.len())
            .finish_non_exhaustive()
    }
}

impl<K: Copy + Eq + Hash> Network<K> {
    /// No sockets yet. Fails only when the TLS configuration for `turns:`
    /// servers (Mozilla's roots) cannot be made.
    pub fn new() -> Result<Self, Error> {
        let (streams, stream_events) = TurnStreams::new(&[])?;
        Ok(Self {
            udp: UdpSocketSet::new(),
            batch: RecvBatch::new(),
            streams,
            stream_events,
            from_streams: Vec::new(),
            tcp: IceTcp::new(),
            from_tcp: Vec::new(),
            mdns: MdnsLink::new(),
            udp_owners: HashMap::new(),
            listeners: HashMap::new(),
            connections: HashMap::new(),
            opening: HashMap::new(),
            tls: HashMap::new(),
        })
    }

    /// Takes on an owner's bound UDP sockets and ICE-TCP listeners (on the
    /// current tokio runtime), and the TLS roots for its `turns:` servers.
    pub fn add(&mut self, owner: K, udp: Vec<Bound>, tcp: Vec<std::net::TcpListener>, tls: TlsConfig) {
        for b in udp {
            self.udp_owners.insert(b.local, owner);
            self.udp.add(b);
        }
        for l in tcp {
            match self.tcp.adopt(l) {
                Ok(a) => {
                    self.listeners.insert(a, owner);
                }
                Err(e) => tracing::warn!("an ICE-TCP listener could not be taken on: {e}"),
            }
        }
        self.tls.insert(owner, tls);
    }

    /// Drops an owner's UDP sockets (their ports are free), listeners and
    /// ICE-TCP connections. Its streams to TURN servers close by the
    /// commands of its core.
    pub fn remove(&mut self, owner: K) {
        let mine = |map: &mut HashMap<SocketAddr, K>| -> Vec<SocketAddr> {
            let addrs = map.iter().filter(|(_, o)| **o == owner).map(|(a, _)| *a).collect();
            map.retain(|_, o| *o != owner);
            addrs
        };
        for a in mine(&mut self.udp_owners) {
            self.udp.remove(a);
        }
        for a in mine(&mut self.listeners).into_iter().chain(mine(&mut self.connections)) {
            self.tcp.unlisten(a);
        }
        self.opening.retain(|_, o| *o != owner);
        self.tls.remove(&owner);
    }

    /// Waits until something can be read, `wake` completes or `deadline`
    /// passes (none: only the other two); cancel-safe.
    pub async fn wait(&mut self, deadline: Option<Instant>, wake: impl Future<Output = ()>) {
        let until = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.udp.recv_batch(&mut self.batch) => {}
            Some(e) = self.stream_events.recv() => self.from_streams.push(e),
            Some(e) = self.tcp.recv() => self.from_tcp.push(e),
            () = self.mdns.recv() => {}
            () = wake => {}
            () = until => {}
        }
    }

    /// Hands `core` everything read since the last call (at most
    /// 64 stream and ICE-TCP events each; whatever is read
    /// for an address no owner has any more is dropped).
    pub fn take(&mut self, core: &mut impl Inputs<K>) {
        while self.from_streams.len() < EVENT_BATCH
            && let Ok(e) = self.stream_events.try_recv()
        {
            self.from_streams.push(e);
        }
        while self.from_tcp.len() < EVENT_BATCH
            && let Some(e) = self.tcp.try_recv()
        {
            self.from_tcp.push(e);
        }
        for e in self.from_streams.drain(..) {
            match e {
                StreamEvent::Connected(k) => {
                    if let Some(&o) = self.udp_owners.get(&k.0) {
                        core.stream_connected(o, k);
                    }
                }
                StreamEvent::Closed(k) => {
                    if let Some(&o) = self.udp_owners.get(&k.0) {
                        core.stream_closed(o, k);
                    }
                }
                StreamEvent::Message(k, mut m) => {
                    if let Some(&o) = self.udp_owners.get(&k.0) {
                        core.stream_message(o, k, &mut m);
                    }
                    self.streams.recycle(m);
                }
            }
        }
        let mut from_tcp = std::mem::take(&mut self.from_tcp);
        for e in from_tcp.drain(..) {
            self.tcp_event(core, e);
        }
        self.from_tcp = from_tcp;
        if let Some((from, data)) = self.mdns.take() {
            core.mdns(from, data);
        }
        for (local, remote, data) in self.batch.iter_mut() {
            if let Some(&o) = self.udp_owners.get(&local) {
                core.datagram(o, local, remote, data);
            }
        }
        self.batch.clear();
    }

    fn tcp_event(&mut self, core: &mut impl Inputs<K>, e: IceTcpEvent) {
        match e {
            IceTcpEvent::Connected { local, remote, connection } => {
                let accepted = match self.opening.remove(&(local, remote)) {
                    Some(o) => core.tcp_connected(o, (local, remote), connection).then_some(o),
                    None => None,
                };
                match accepted {
                    Some(o) => {
                        self.connections.insert(connection, o);
                    }
                    None => self.tcp.command(TcpCommand::Close { local: connection, remote }),
                }
            }
            IceTcpEvent::Message((local, remote), mut data) => {
                if let Some(&o) = self.listeners.get(&local).or_else(|| self.connections.get(&local)) {
                    core.datagram(o, local, remote, &mut data);
                }
                self.tcp.recycle(data);
            }
            IceTcpEvent::Closed((local, remote)) => {
                let owner = self
                    .opening
                    .remove(&(local, remote))
                    .or_else(|| self.connections.remove(&local))
                    .or_else(|| self.listeners.get(&local).copied());
                if let Some(o) = owner {
                    core.tcp_closed(o, local, remote);
                }
            }
        }
    }

    /// Sends a datagram from `source`: on the stream to the TURN server
    /// `destination` when `turn_stream` names its transport (relayed data
    /// and the agent's requests to a server over TCP or TLS), on the
    /// ICE-TCP connection between the two addresses when there is one,
    /// else by UDP. A full queue or socket buffer drops it, as the network
    /// would.
    pub fn send(
        &mut self,
        source: SocketAddr,
        destination: SocketAddr,
        turn_stream: Option<TurnTransport>,
        data: &[u8],
    ) {
        if let Some(transport) = turn_stream {
            self.streams.send_slice((source, destination, transport), data);
        } else if !self.tcp.send(source, destination, data)
            && let Err(e) = self.udp.try_send_to(source, destination, data)
        {
            tracing::trace!(%source, %destination, len = data.len(), "UDP send failed: {e}");
        }
    }

    /// Queues a whole message on the stream to a TURN server (dropped when
    /// it is not open or its queue is full).
    pub fn stream(&mut self, key: StreamKey, message: Vec<u8>) {
        self.streams.send(key, message);
    }

    /// Opens or closes a stream to a TURN server for `owner` (with its TLS
    /// roots for `turns:`).
    pub fn stream_command(&mut self, owner: K, command: StreamCommand) {
        match self.tls.get(&owner) {
            Some(tls) => self.streams.command_with(command, tls),
            None => self.streams.command(command),
        }
    }

    /// Opens or closes an ICE-TCP connection for `owner`.
    pub fn tcp_command(&mut self, owner: K, command: TcpCommand) {
        match command {
            TcpCommand::Connect { local, remote } => {
                self.opening.insert((local, remote), owner);
            }
            TcpCommand::Close { local, remote } => {
                self.opening.remove(&(local, remote));
                self.connections.remove(&local);
            }
        }
        self.tcp.command(command);
    }

    /// The pools of ICE-TCP and TURN stream message buffers, for buffers
    /// filled elsewhere and handed to [`Network::send`]'s callers.
    pub(crate) fn pools(&self) -> (crate::pool::Pool, crate::pool::Pool) {
        (self.tcp.pool(), self.streams.pool())
    }

    /// Sends mDNS queries and answers (drained), opening the mDNS socket on
    /// the interfaces of the UDP sockets first if need be; `responding`
    /// (names of ours to answer for) opens it without anything to send.
    pub fn mdns(&mut self, transmits: &mut Vec<MdnsTransmit>, responding: bool) {
        let interfaces = || -> Vec<IpAddr> { self.udp.iter().map(|b| b.local.ip()).collect() };
        if transmits.is_empty() {
            if responding {
                self.mdns.open(interfaces);
            }
        } else {
            self.mdns.send(transmits, interfaces);
        }
    }
}
