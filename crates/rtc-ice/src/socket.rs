//! `IceSocket`: the tokio UDP driver of the agent (feature `tokio`).
//!
//! A thin layer on [`crate::net`]: it binds one UDP socket per local
//! address, and one driver task receives every ready datagram of all of
//! them in a batch, locks the [`Agent`] once for the batch, feeds it the
//! datagrams and the time, drains what it wants sent and its events,
//! unlocks, and sends. Application datagrams are sent straight from the
//! caller's buffer over the selected pair. TURN servers over TCP or TLS get
//! their streams from [`crate::tcp`]: the driver opens and closes them as
//! the agent asks, and their messages join the batch. With
//! [`SocketConfig::tcp`], ICE-TCP (RFC 6544) runs on [`crate::ice_tcp`]: a
//! listener beside each bound address, connections the agent asks for,
//! their messages handed to the agent as datagrams are.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use rtc_candidate::{Candidate, Component};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::agent::{Agent, AgentConfig, Credentials, Event, Receive, State, StreamCommand, Transmit};
use crate::error::Error;
use crate::net::{Inputs, Network};
use crate::pool::Pool;
use crate::tcp::StreamKey;
use crate::udp::{UdpSocketSet, host_addrs, resolve_stun_all};
use crate::udp_mdns::AgentMdns;

/// Where an [`IceSocket`] binds.
#[derive(Debug, Clone)]
pub struct SocketConfig {
    /// The agent's configuration.
    pub agent: AgentConfig,
    /// Local addresses to bind, one UDP socket each, on an ephemeral port
    /// (or the given one). Empty: the usable addresses of the machine's
    /// interfaces, IPv4 and IPv6 ([`host_addrs`](crate::udp::host_addrs):
    /// interfaces that are up, link-local and loopback addresses skipped,
    /// 127.0.0.1 and ::1 when nothing else is left), at most as many as
    /// fill half of `agent.limits.local_candidates` (the rest is for
    /// server- and peer-reflexive candidates). List loopback here to have
    /// it besides the other interfaces (`host_addrs(true, ..)`).
    pub bind: Vec<SocketAddr>,
    /// STUN servers as `stun:` URLs (the seeds' RTCSocketServers), resolved
    /// when binding and added to `agent.stun_servers`.
    pub stun_urls: Vec<String>,
    /// CA certificates (PEM) trusted for `turns:` servers besides Mozilla's
    /// roots: a private CA, or a test's self-signed certificate. The server
    /// certificate is always verified for the URL's host.
    pub turn_ca_pem: Vec<String>,
    /// Also ICE-TCP candidates (RFC 6544): a TCP listener beside each
    /// bound address (a passive candidate) and active candidates.
    pub tcp: bool,
}

impl SocketConfig {
    /// Binds only 127.0.0.1 and ::1.
    pub fn loopback(agent: AgentConfig) -> Self {
        let bind = vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 0),
        ];
        Self { agent, bind, stun_urls: Vec::new(), turn_ca_pem: Vec::new(), tcp: false }
    }
}

/// What an [`IceSocket`] reports: the agent's events.
pub type SocketEvent = Event;

/// An application datagram received over a selected or valid pair. Its
/// buffer returns to the socket's pool when dropped.
pub struct Datagram {
    component: Component,
    buf: Vec<u8>,
    /// Where the buffer goes back when dropped: a steady stream of
    /// datagrams allocates nothing.
    pool: Pool,
}

impl Datagram {
    /// The component whose path it arrived on.
    pub fn component(&self) -> Component {
        self.component
    }
}

impl std::ops::Deref for Datagram {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf
    }
}

impl std::fmt::Debug for Datagram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Datagram").field("component", &self.component).field("len", &self.buf.len()).finish()
    }
}

impl Drop for Datagram {
    fn drop(&mut self) {
        self.pool.put(std::mem::take(&mut self.buf));
    }
}

struct Shared {
    agent: Mutex<Agent>,
    wake: Notify,
    /// The UDP sockets by local address, for the application's datagrams
    /// (the driver's network receives from them).
    udp: Vec<(SocketAddr, Arc<tokio::net::UdpSocket>)>,
}

/// What the application hands the driver task, which owns the streams
/// and connections.
enum Out {
    /// A datagram for an ICE-TCP connection (its two addresses), in a
    /// buffer of the connections' pool.
    Tcp(SocketAddr, SocketAddr, Vec<u8>),
    /// A message for a TURN stream, in a buffer of the streams' pool.
    Stream(crate::tcp::StreamKey, Vec<u8>),
    /// The socket closed: the agent's last transmits (deallocations) and
    /// stream commands, then the task ends.
    Close(Vec<Transmit>, Vec<StreamCommand>),
}

/// Sends what the agent wants sent: a datagram, a message on an ICE-TCP
/// connection, or a message on a stream to a TURN server. Never waits
/// (loss is the agent's business: it retransmits).
fn transmit(net: &mut Network<()>, t: Transmit) {
    if t.transport.is_stream() {
        net.stream((t.source, t.destination, t.transport), t.contents);
    } else {
        net.send(t.source, t.destination, None, &t.contents);
    }
}

impl Shared {
    fn agent(&self) -> MutexGuard<'_, Agent> {
        // A panic while holding the lock cannot leave the agent half-updated
        // in a way worse than dropping it, so a poisoned lock is taken as is.
        self.agent.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An ICE socket: an [`Agent`] on real UDP sockets.
pub struct IceSocket {
    shared: Arc<Shared>,
    /// Application datagrams for ICE-TCP connections and TURN streams, for
    /// the driver task (which owns them), in buffers of their pools.
    out: mpsc::Sender<Out>,
    tcp_pool: Pool,
    stream_pool: Pool,
    events: mpsc::UnboundedReceiver<Event>,
    data: mpsc::Receiver<Datagram>,
    tasks: Vec<JoinHandle<()>>,
    local_addrs: Vec<SocketAddr>,
}

impl std::fmt::Debug for IceSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceSocket").field("local_addrs", &self.local_addrs).finish_non_exhaustive()
    }
}

/// Queue depth of received application datagrams before new ones are dropped.
const DATA_QUEUE: usize = 1024;

impl IceSocket {
    /// Binds the sockets, adds them as host candidates (component 1; with
    /// two components, each address gets a second socket for component 2),
    /// and starts the driver on the current tokio runtime.
    pub async fn bind(config: SocketConfig) -> io::Result<Self> {
        let components = config.agent.components.clamp(1, 2);
        let mut agent_config = config.agent;
        for url in &config.stun_urls {
            agent_config.stun_servers.extend(resolve_stun_all(url).await.map_err(to_io)?);
        }
        let max_hosts = agent_config.limits.local_candidates / (2 * usize::from(components));
        let mut agent = Agent::new(agent_config).map_err(to_io)?;
        let addrs = if config.bind.is_empty() {
            host_addrs(false, max_hosts).into_iter().map(|ip| SocketAddr::new(ip, 0)).collect()
        } else {
            config.bind
        };
        // An address family the machine lacks (no ::1) is skipped.
        let bound = UdpSocketSet::bind_addrs(&addrs, components, true).await?;
        let now = Instant::now();
        let mut local_addrs = Vec::new();
        for b in &bound {
            agent.add_host_candidate(now, b.component, b.local).map_err(to_io)?;
            local_addrs.push(b.local);
        }
        let mut listeners = Vec::new();
        if config.tcp {
            let udp: Vec<SocketAddr> = bound.iter().map(|b| b.local).collect();
            for b in &bound {
                let l = crate::ice_tcp::listener_beside(b.local, &udp)?;
                agent.add_tcp_host_candidates(now, b.component, l.local_addr()?).map_err(to_io)?;
                listeners.push(l);
            }
        }
        agent.end_of_local_candidates(now);
        let udp = bound.iter().map(|b| (b.local, b.socket.clone())).collect();
        let tls = crate::tcp::tls_config(&config.turn_ca_pem).map_err(to_io)?;
        let mut net = Network::new().map_err(to_io)?;
        net.add((), bound, listeners, tls);
        let (tcp_pool, stream_pool) = net.pools();
        let shared = Arc::new(Shared { agent: Mutex::new(agent), wake: Notify::new(), udp });
        // Unbounded: the agent's own queue cap bounds how many events one
        // wake-up can produce, and the driver must never wait on the caller.
        let (event_tx, events) = mpsc::unbounded_channel();
        let (data_tx, data) = mpsc::channel(DATA_QUEUE);
        let (out, out_rx) = mpsc::channel(DATA_QUEUE);
        let io = Io { net, out: out_rx, tcp_pool: tcp_pool.clone() };
        let tasks = vec![tokio::spawn(drive(shared.clone(), io, event_tx, data_tx))];
        Ok(Self { shared, out, tcp_pool, stream_pool, events, data, tasks, local_addrs })
    }

    /// The bound local addresses.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The local credentials to signal.
    pub fn local_credentials(&self) -> Credentials {
        self.shared.agent().local_credentials().clone()
    }

    /// The local candidates gathered so far.
    pub fn local_candidates(&self) -> Vec<Candidate> {
        self.shared.agent().local_candidates().cloned().collect()
    }

    /// Runs `f` on the agent (for statistics and state), then lets the
    /// driver act on whatever it changed.
    pub fn with_agent<T>(&self, f: impl FnOnce(&mut Agent) -> T) -> T {
        let r = f(&mut self.shared.agent());
        self.shared.wake.notify_one();
        r
    }

    /// Sets the peer's credentials.
    pub fn set_remote_credentials(&self, creds: Credentials) -> Result<(), Error> {
        self.with_agent(|a| a.set_remote_credentials(Instant::now(), creds))
    }

    /// Sets the Ta the peer proposed (see [`Agent::set_remote_pacing`]):
    /// the socket then checks at the larger of its own `Timing::ta` and
    /// `pacing` (50 ms when `None`, as before any call).
    pub fn set_remote_pacing(&self, pacing: Option<std::time::Duration>) -> Result<(), Error> {
        self.with_agent(|a| a.set_remote_pacing(pacing))
    }

    /// Says whether the peer is an ICE lite agent (see
    /// [`Agent::set_remote_lite`]): a full socket then controls and keeps
    /// controlling; a lite socket refuses a lite peer.
    pub fn set_remote_lite(&self, lite: bool) -> Result<(), Error> {
        self.with_agent(|a| a.set_remote_lite(Instant::now(), lite))
    }

    /// Adds a remote candidate.
    pub fn add_remote_candidate(&self, cand: &Candidate) -> Result<(), Error> {
        self.with_agent(|a| a.add_remote_candidate(Instant::now(), cand))
    }

    /// The peer has no more candidates.
    pub fn end_of_remote_candidates(&self) {
        self.with_agent(|a| a.end_of_remote_candidates(Instant::now()));
    }

    /// The next event; `None` once the socket is closed.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// Sends one application datagram over `component`'s selected pair.
    /// Fails when there is none or consent was lost (RFC 7675). Over a
    /// relayed pair the datagram is framed for the TURN server (a copy with
    /// the ChannelData header or Send indication around it, in a buffer
    /// the socket reuses).
    pub async fn send(&self, component: Component, data: &[u8]) -> io::Result<()> {
        let path = self.shared.agent().path(component);
        let Some(path) = path else {
            return Err(io::Error::new(io::ErrorKind::NotConnected, "no selected pair with consent"));
        };
        if let Some((_, socket)) = self.shared.udp.iter().find(|(a, _)| *a == path.local) {
            return socket.send_to(data, path.remote).await.map(|_| ());
        }
        if self.shared.agent().is_tcp_path(path.local) {
            let mut buf = self.tcp_pool.take();
            buf.extend_from_slice(data);
            return self.hand_over(Out::Tcp(path.local, path.remote, buf));
        }
        let pool = &self.stream_pool;
        let mut buf = pool.take();
        buf.extend_from_slice(data);
        buf.resize(data.len() + crate::turn::RELAY_OVERHEAD, 0);
        let framed = self.shared.agent().frame_relayed(path.local, path.remote, &mut buf, data.len());
        let t = match framed {
            Ok(Some(t)) => t,
            Ok(None) => {
                pool.put(buf);
                return Err(io::ErrorKind::NotConnected.into());
            }
            Err(e) => {
                pool.put(buf);
                return Err(to_io(e));
            }
        };
        if t.transport.is_stream() {
            buf.truncate(t.len);
            return self.hand_over(Out::Stream((t.source, t.destination, t.transport), buf));
        }
        let sent = match self.shared.udp.iter().find(|(a, _)| *a == t.source) {
            Some((_, socket)) => socket.send_to(&buf[..t.len], t.destination).await.map(|_| ()),
            None => Err(io::ErrorKind::NotConnected.into()),
        };
        pool.put(buf);
        sent
    }

    /// Queues a datagram for the driver task (never waiting: a full queue
    /// refuses it, and its buffer goes back to its pool).
    fn hand_over(&self, o: Out) -> io::Result<()> {
        match self.out.try_send(o) {
            Ok(()) => Ok(()),
            Err(e) => {
                match e.into_inner() {
                    Out::Tcp(_, _, b) => self.tcp_pool.put(b),
                    Out::Stream(_, b) => self.stream_pool.put(b),
                    Out::Close(..) => {}
                }
                Err(io::ErrorKind::WouldBlock.into())
            }
        }
    }

    /// The next application datagram received over a known pair.
    pub async fn recv(&mut self) -> Option<Datagram> {
        self.data.recv().await
    }

    /// The agent's state.
    pub fn state(&self) -> State {
        self.shared.agent().state()
    }

    /// Closes the agent (releasing its TURN allocations: the driver sends
    /// their last datagrams, and closes streams to TURN servers once they
    /// are written) and stops the driver.
    pub fn close(&mut self) {
        let mut a = self.shared.agent();
        a.close();
        let out: Vec<Transmit> = std::iter::from_fn(|| a.poll_transmit()).collect();
        let commands: Vec<StreamCommand> = std::iter::from_fn(|| a.poll_stream_command()).collect();
        drop(a);
        // The driver ends once it has acted on them; should it be unable
        // to take them (its queue full, or already ended), it is stopped.
        let handed = self.out.try_send(Out::Close(out, commands)).is_ok();
        for t in self.tasks.drain(..) {
            if !handed {
                t.abort();
            }
        }
    }
}

impl Drop for IceSocket {
    fn drop(&mut self) {
        self.close();
    }
}

fn to_io(e: Error) -> io::Error {
    let kind = match e {
        Error::Resolve(_) => io::ErrorKind::NotFound,
        Error::Relay(_) => io::ErrorKind::NotConnected,
        Error::Tls(_) => io::ErrorKind::InvalidData,
        _ => io::ErrorKind::InvalidInput,
    };
    io::Error::new(kind, e)
}

/// What the driver task owns besides the shared state: the network (UDP
/// sockets, TURN streams, ICE-TCP listeners and connections, the mDNS
/// socket) and what the application hands it.
struct Io {
    net: Network<()>,
    out: mpsc::Receiver<Out>,
    tcp_pool: Pool,
}

/// The agent, as the network hands it what it read; application datagrams
/// go to `received`, in buffers of `pool`.
struct Feed<'a> {
    now: Instant,
    agent: &'a mut Agent,
    mdns: &'a mut AgentMdns,
    received: &'a mut Vec<Datagram>,
    pool: &'a Pool,
}

impl Feed<'_> {
    fn deliver(&mut self, component: Component, payload: &[u8]) {
        let mut buf = self.pool.take();
        buf.extend_from_slice(payload);
        self.received.push(Datagram { component, buf, pool: self.pool.clone() });
    }
}

impl Inputs<()> for Feed<'_> {
    fn datagram(&mut self, _: (), local: SocketAddr, remote: SocketAddr, data: &mut [u8]) {
        match self.agent.handle_receive(self.now, local, remote, data) {
            Receive::Data { component } => self.deliver(component, data),
            Receive::RelayedData { component, offset, len } => {
                if let Some(p) = offset.checked_add(len).and_then(|end| data.get(offset..end)) {
                    self.deliver(component, p);
                }
            }
            _ => {}
        }
    }

    fn stream_connected(&mut self, _: (), (local, server, transport): StreamKey) {
        self.agent.stream_connected(self.now, local, server, transport);
    }

    fn stream_closed(&mut self, _: (), (local, server, transport): StreamKey) {
        self.agent.stream_closed(self.now, local, server, transport);
    }

    fn stream_message(&mut self, _: (), (local, server, transport): StreamKey, message: &mut [u8]) {
        if let Receive::RelayedData { component, offset, len } =
            self.agent.handle_stream_receive(self.now, local, server, transport, message)
            && let Some(p) = offset.checked_add(len).and_then(|end| message.get(offset..end))
        {
            self.deliver(component, p);
        }
    }

    fn tcp_connected(&mut self, _: (), (local, remote): (SocketAddr, SocketAddr), connection: SocketAddr) -> bool {
        // The agent closes a connection it no longer waits for itself.
        self.agent.tcp_connected(self.now, local, remote, connection);
        true
    }

    fn tcp_closed(&mut self, _: (), local: SocketAddr, remote: SocketAddr) {
        self.agent.tcp_closed(self.now, local, remote);
    }

    fn mdns(&mut self, from: SocketAddr, data: &[u8]) {
        self.mdns.received(self.now, from, data);
    }
}

/// The one task of an [`IceSocket`]: waits for the network (a datagram, a
/// stream event, an ICE-TCP report), a datagram the application handed
/// over, a wake-up (the caller changed the agent) or the agent's timer;
/// then, under one lock, hands the agent what was read and its time, and
/// takes what it wants sent, its commands and its events; then sends,
/// opens and closes streams and connections, and delivers without the
/// lock. Once warm, nothing here allocates per datagram.
async fn drive(shared: Arc<Shared>, io: Io, events: mpsc::UnboundedSender<Event>, data: mpsc::Sender<Datagram>) {
    let Io { mut net, out: mut from_app, tcp_pool } = io;
    let pool = Pool::default();
    let mut out: Vec<Transmit> = Vec::new();
    let mut commands: Vec<StreamCommand> = Vec::new();
    let mut tcp_commands: Vec<crate::agent::TcpCommand> = Vec::new();
    let mut evs: Vec<Event> = Vec::new();
    let mut received: Vec<Datagram> = Vec::new();
    let mut timeout: Option<Instant> = None;
    let mut mdns = AgentMdns::default();
    let mut first = true;
    loop {
        if !first {
            tokio::select! {
                () = net.wait(timeout, shared.wake.notified()) => {}
                Some(o) = from_app.recv() => match o {
                    Out::Tcp(local, remote, d) => {
                        net.send(local, remote, None, &d);
                        tcp_pool.put(d);
                    }
                    Out::Stream(key, d) => net.stream(key, d),
                    Out::Close(last, commands) => {
                        // Then the network drops: streams close once what
                        // is queued on them is written.
                        for t in last {
                            transmit(&mut net, t);
                        }
                        for c in commands {
                            net.stream_command((), c);
                        }
                        return;
                    }
                },
            }
        }
        first = false;
        {
            let mut a = shared.agent();
            let now = Instant::now();
            net.take(&mut Feed { now, agent: &mut a, mdns: &mut mdns, received: &mut received, pool: &pool });
            if a.poll_timeout().is_some_and(|t| t <= now) {
                a.handle_timeout(now);
            }
            let mdns_at = mdns.exchange(now, &mut a);
            while let Some(t) = a.poll_transmit() {
                out.push(t);
            }
            while let Some(c) = a.poll_stream_command() {
                commands.push(c);
            }
            while let Some(c) = a.poll_tcp_command() {
                tcp_commands.push(c);
            }
            while let Some(e) = a.poll_event() {
                evs.push(e);
            }
            timeout = [a.poll_timeout(), mdns_at].into_iter().flatten().min();
        }
        let responding = mdns.responding();
        net.mdns(&mut mdns.out, responding);
        for c in tcp_commands.drain(..) {
            net.tcp_command((), c);
        }
        // Transmits first: a close comes after the deallocation it follows.
        for t in out.drain(..) {
            transmit(&mut net, t);
        }
        for c in commands.drain(..) {
            net.stream_command((), c);
        }
        for d in received.drain(..) {
            // A full queue drops the datagram, as a socket buffer would.
            let _ = data.try_send(d);
        }
        for e in evs.drain(..) {
            if events.send(e).is_err() {
                return;
            }
        }
    }
}
