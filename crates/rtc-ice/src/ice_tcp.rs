//! ICE-TCP connections on tokio (feature `tokio`, RFC 6544): the listeners
//! of passive candidates, the connections active candidates open, and the
//! RFC 4571 framing of everything on them, for a driver of [`Agent`](crate::Agent)s.
//!
//! [`IceTcp`] is owned by the driver's task (no lock): it
//! [`listens`](IceTcp::listen) on a host address, acts on the agents'
//! [`TcpCommand`]s, [`sends`](IceTcp::send) a transmit framed on the
//! connection its two addresses name, and its [`IceTcp::recv`] /
//! [`IceTcp::try_recv`] give what the connections report
//! ([`IceTcpEvent`]). Each connection runs in a task of its own: it reads
//! into an RFC 4571 [`Deframer`] and writes a bounded queue (a full queue
//! drops, as a full socket buffer would).
//!
//! Buffers circulate: a message read comes in a buffer the driver hands
//! back with [`IceTcp::recycle`] once it is done with it, and a message
//! sent is framed into one the writing task returns; once warm, a message
//! each way allocates nothing.
//!
//! Budgets: at most [`MAX_ACCEPTED`] accepted connections per listener
//! (more are closed at once), messages of at most [`MAX_MESSAGE`] octets
//! (a longer one ends the connection), and an accepted connection that
//! says nothing for [`FIRST_MESSAGE_TIMEOUT`] is closed.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::agent::TcpCommand;
use crate::error::Error;
use crate::framing::{Deframer, frame_rfc4571};
use crate::pool::Pool;
use crate::tcp::write_loop;

/// A connection as the agent names it: its local address (the listener's
/// for an accepted one) and the peer's.
pub type ConnKey = (SocketAddr, SocketAddr);

/// What the connections report to the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IceTcpEvent {
    /// The connection a [`TcpCommand::Connect`] from the active candidate
    /// `local` to `remote` asked for is open, from `connection`: call
    /// [`Agent::tcp_connected`](crate::Agent::tcp_connected).
    Connected {
        /// The active candidate's address (as in the command).
        local: SocketAddr,
        /// The peer's passive candidate.
        remote: SocketAddr,
        /// The connection's local address.
        connection: SocketAddr,
    },
    /// One whole message on a connection: give it to
    /// [`Agent::handle_receive`](crate::Agent::handle_receive) with the
    /// key's two addresses.
    Message(ConnKey, Vec<u8>),
    /// The connection ended, broke its framing, or (the key's local
    /// address an active candidate's) could not be opened: call
    /// [`Agent::tcp_closed`](crate::Agent::tcp_closed). Not sent for a
    /// connection closed by [`TcpCommand::Close`].
    Closed(ConnKey),
}

/// What the tasks tell the owner, some of it for the owner itself.
enum Report {
    /// A connection is open; its queue is for the owner's table.
    Open(ConnKey, mpsc::Sender<Vec<u8>>, Option<IceTcpEvent>),
    Event(IceTcpEvent),
    /// A connection's task ended: forget its queue (if it is still that
    /// one: `id` tells).
    Gone(ConnKey, u64),
}

/// The longest message taken on a connection: more than any datagram
/// ICE, DTLS, SRTP or SCTP sends here.
pub const MAX_MESSAGE: usize = 16 * 1024;
/// Accepted connections one listener keeps open at once.
pub const MAX_ACCEPTED: usize = 64;
/// How long an accepted connection may stay silent before its first
/// message.
pub const FIRST_MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long opening a connection may take (the agent gives up later).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Messages queued for one connection before [`IceTcp::send`] drops.
pub const SEND_QUEUE: usize = 256;
/// Reports queued before the connections stop reading (TCP's flow
/// control then holds the peer back).
const REPORT_QUEUE: usize = 256;
/// Bytes read at once.
const READ_CHUNK: usize = 16 * 1024;

/// The ICE-TCP listeners and connections of one driver.
pub struct IceTcp {
    pool: Pool,
    writers: HashMap<ConnKey, (u64, mpsc::Sender<Vec<u8>>)>,
    listeners: HashMap<SocketAddr, (AbortHandle, Arc<AtomicUsize>)>,
    reports: mpsc::Sender<(u64, Report)>,
    rx: mpsc::Receiver<(u64, Report)>,
    next_id: u64,
}

impl std::fmt::Debug for IceTcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceTcp")
            .field("listeners", &self.listeners.len())
            .field("connections", &self.writers.len())
            .finish_non_exhaustive()
    }
}

impl Default for IceTcp {
    fn default() -> Self {
        Self::new()
    }
}

impl IceTcp {
    /// No listener, no connection.
    pub fn new() -> Self {
        let (reports, rx) = mpsc::channel(REPORT_QUEUE);
        Self { pool: Pool::new(), writers: HashMap::new(), listeners: HashMap::new(), reports, rx, next_id: 0 }
    }

    /// Listens on `addr` (port 0: any) for the passive candidate of a host
    /// address, in a task on the current tokio runtime; returns the address
    /// bound, for [`Agent::add_tcp_host_candidates`](crate::Agent::add_tcp_host_candidates).
    pub fn listen(&mut self, addr: SocketAddr) -> io::Result<SocketAddr> {
        let listener = std::net::TcpListener::bind(addr)?;
        self.adopt(listener)
    }

    /// Listens with a listener bound already (a std one, made non-blocking
    /// here) on the current tokio runtime; returns its address.
    pub fn adopt(&mut self, listener: std::net::TcpListener) -> io::Result<SocketAddr> {
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let bound = listener.local_addr()?;
        let open = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(accept_loop(listener, bound, (self.reports.clone(), self.pool.clone()), open.clone()));
        self.listeners.insert(bound, (task.abort_handle(), open));
        tracing::debug!(%bound, "ICE-TCP listening");
        Ok(bound)
    }

    /// Stops listening on `addr` and closes the connections accepted there.
    pub fn unlisten(&mut self, addr: SocketAddr) {
        if let Some((task, _)) = self.listeners.remove(&addr) {
            task.abort();
        }
        self.writers.retain(|(local, _), _| *local != addr);
    }

    /// Acts on a command from an agent: opens a connection (in a task) or
    /// closes one once what was queued on it is written.
    pub fn command(&mut self, command: TcpCommand) {
        match command {
            TcpCommand::Connect { local, remote } => {
                self.next_id += 1;
                tokio::spawn(connect(local, remote, self.next_id, (self.reports.clone(), self.pool.clone())));
            }
            TcpCommand::Close { local, remote } => {
                // The task writes what is queued, then shuts down.
                if self.writers.remove(&(local, remote)).is_some() {
                    tracing::debug!(%local, %remote, "ICE-TCP connection closed: no pair needs it");
                }
            }
        }
    }

    /// Whether a connection between `local` and `remote` is open: a
    /// transmit between them goes on it.
    pub fn has(&self, local: SocketAddr, remote: SocketAddr) -> bool {
        !self.writers.is_empty() && self.writers.contains_key(&(local, remote))
    }

    /// How many connections are open.
    pub fn len(&self) -> usize {
        self.writers.len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.writers.is_empty()
    }

    /// Queues `message`, framed, on the connection between `local` and
    /// `remote`. False when there is none (the transmit is a UDP one then);
    /// true also when its queue is full and the message dropped.
    pub fn send(&mut self, local: SocketAddr, remote: SocketAddr, message: &[u8]) -> bool {
        if self.writers.is_empty() {
            return false;
        }
        let Some((_, tx)) = self.writers.get(&(local, remote)) else { return false };
        let mut framed = self.pool.take();
        if frame_rfc4571(message, &mut framed).is_ok()
            && let Err(e) = tx.try_send(framed)
        {
            self.pool.put(e.into_inner());
        }
        true
    }

    /// Hands back the buffer of an [`IceTcpEvent::Message`] once done with
    /// it, for the connections to read into again.
    pub fn recycle(&self, buffer: Vec<u8>) {
        self.pool.put(buffer);
    }

    /// An empty buffer from the pool (for a message to hand to
    /// [`IceTcp::send`] from elsewhere, then to [`IceTcp::recycle`]).
    pub fn buffer(&self) -> Vec<u8> {
        self.pool.take()
    }

    /// The pool, for an owner that fills buffers elsewhere.
    pub(crate) fn pool(&self) -> Pool {
        self.pool.clone()
    }

    /// The next report, once there is one (cancel-safe); `None` never
    /// comes while `self` lives.
    pub async fn recv(&mut self) -> Option<IceTcpEvent> {
        loop {
            let (id, r) = self.rx.recv().await?;
            if let Some(e) = self.take(id, r) {
                return Some(e);
            }
        }
    }

    /// A report that is ready, if any.
    pub fn try_recv(&mut self) -> Option<IceTcpEvent> {
        while let Ok((id, r)) = self.rx.try_recv() {
            if let Some(e) = self.take(id, r) {
                return Some(e);
            }
        }
        None
    }

    /// Closes every listener and connection.
    pub fn close_all(&mut self) {
        for (_, (task, _)) in self.listeners.drain() {
            task.abort();
        }
        self.writers.clear();
    }

    fn take(&mut self, id: u64, r: Report) -> Option<IceTcpEvent> {
        match r {
            Report::Open(key, tx, event) => {
                if self.listeners.contains_key(&key.0) || event.is_some() {
                    self.writers.insert(key, (id, tx));
                }
                event
            }
            Report::Event(e) => Some(e),
            Report::Gone(key, gone) => {
                if self.writers.get(&key).is_some_and(|(id, _)| *id == gone) {
                    self.writers.remove(&key);
                }
                None
            }
        }
    }
}

impl Drop for IceTcp {
    fn drop(&mut self) {
        self.close_all();
    }
}

/// A TCP listener on `addr`'s IP, on a port none of `udp` has (so the
/// agent tells its paths from theirs), for
/// [`IceTcp::adopt`] and
/// [`Agent::add_tcp_host_candidates`](crate::Agent::add_tcp_host_candidates).
pub fn listener_beside(addr: SocketAddr, udp: &[SocketAddr]) -> io::Result<std::net::TcpListener> {
    let mut tries = 0;
    loop {
        let l = std::net::TcpListener::bind(SocketAddr::new(addr.ip(), 0))?;
        let port = l.local_addr()?.port();
        tries += 1;
        if tries >= 8 || !udp.iter().any(|a| a.ip() == addr.ip() && a.port() == port) {
            return Ok(l);
        }
    }
}

/// Where a connection's task reports, and the buffers it reads into.
type Ends = (mpsc::Sender<(u64, Report)>, Pool);

/// Accepts connections until aborted; each runs in a task of its own.
async fn accept_loop(listener: TcpListener, bound: SocketAddr, ends: Ends, open: Arc<AtomicUsize>) {
    let mut id = u64::MAX / 2;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(%bound, "ICE-TCP accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if open.load(Ordering::Acquire) >= MAX_ACCEPTED {
            tracing::debug!(%bound, %peer, "ICE-TCP connection refused: the listener holds {MAX_ACCEPTED} already");
            continue;
        }
        open.fetch_add(1, Ordering::AcqRel);
        id += 1;
        let (ends, open) = (ends.clone(), open.clone());
        tokio::spawn(async move {
            run(stream, (bound, peer), id, None, &ends).await;
            open.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

/// Opens a connection from the active candidate `local`'s IP address.
async fn connect(local: SocketAddr, remote: SocketAddr, id: u64, ends: Ends) {
    let reports = &ends.0;
    let open = async {
        let socket = if remote.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        socket.bind(SocketAddr::new(local.ip(), 0))?;
        socket.connect(remote).await
    };
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, open).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%local, %remote, "ICE-TCP connection failed: {e}");
            let _ = reports.send((id, Report::Event(IceTcpEvent::Closed((local, remote))))).await;
            return;
        }
        Err(_) => {
            tracing::debug!(%local, %remote, "ICE-TCP connection timed out");
            let _ = reports.send((id, Report::Event(IceTcpEvent::Closed((local, remote))))).await;
            return;
        }
    };
    let Ok(connection) = stream.local_addr() else { return };
    tracing::debug!(%connection, %remote, "ICE-TCP connection open");
    let opened = IceTcpEvent::Connected { local, remote, connection };
    run(stream, (connection, remote), id, Some(opened), &ends).await;
}

/// One connection (accepted unless `opened` says it was opened for the
/// agent): reports it open, then reads messages and writes the queue
/// until either ends.
async fn run(stream: TcpStream, key: ConnKey, id: u64, opened: Option<IceTcpEvent>, (reports, pool): &Ends) {
    let accepted = opened.is_none();
    let _ = stream.set_nodelay(true);
    let (tx, rx) = mpsc::channel(SEND_QUEUE);
    if reports.send((id, Report::Open(key, tx, opened))).await.is_err() {
        return;
    }
    let (reader, writer) = tokio::io::split(stream);
    let ended = tokio::select! {
        r = read_loop((key, id), reader, accepted, (reports, pool)) => r,
        r = write_loop(writer, rx, Some(pool)) => r,
    };
    let _ = reports.send((id, Report::Gone(key, id))).await;
    match ended {
        Ok(()) => tracing::debug!(local = %key.0, remote = %key.1, "ICE-TCP connection shut down"),
        Err(e) => {
            tracing::debug!(local = %key.0, remote = %key.1, "ICE-TCP connection ended: {e}");
            let _ = reports.send((id, Report::Event(IceTcpEvent::Closed(key)))).await;
        }
    }
}

/// Reads and deframes until the peer closes, an error, a message over the
/// limit, or (accepted) silence before the first message.
async fn read_loop(
    (key, id): (ConnKey, u64),
    mut reader: impl AsyncRead + Unpin,
    accepted: bool,
    (reports, pool): (&mpsc::Sender<(u64, Report)>, &Pool),
) -> io::Result<()> {
    let bad = |e: Error| io::Error::new(io::ErrorKind::InvalidData, e);
    let mut deframer = Deframer::rfc4571(MAX_MESSAGE);
    let mut heard = !accepted;
    loop {
        let room = deframer.spare(READ_CHUNK).map_err(bad)?;
        let n = if heard {
            reader.read(room).await?
        } else {
            match tokio::time::timeout(FIRST_MESSAGE_TIMEOUT, reader.read(room)).await {
                Ok(r) => r?,
                Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "nothing said after connecting")),
            }
        };
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        deframer.commit(n).map_err(bad)?;
        while let Some(m) = deframer.next_message().map_err(bad)? {
            heard = true;
            let mut buf = pool.take();
            buf.extend_from_slice(m);
            if reports.send((id, Report::Event(IceTcpEvent::Message(key, buf)))).await.is_err() {
                // The driver is gone.
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    /// A connection opened to a listener carries framed messages both
    /// ways; a close is seen at the other end; a refused one is reported.
    #[tokio::test]
    async fn connections_carry_framed_messages() {
        let mut a = IceTcp::new();
        let mut b = IceTcp::new();
        let listen = b.listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let active: SocketAddr = "127.0.0.1:9".parse().unwrap();
        a.command(TcpCommand::Connect { local: active, remote: listen });
        let Some(IceTcpEvent::Connected { local, remote, connection }) = a.recv().await else { panic!() };
        assert_eq!((local, remote), (active, listen));
        assert!(a.send(connection, listen, b"hello"));
        assert!(a.send(connection, listen, &[7; 1500]));
        assert!(!a.send(connection, active, b"not a connection"));
        let m1 = b.recv().await.unwrap();
        assert_eq!(m1, IceTcpEvent::Message((listen, connection), b"hello".to_vec()));
        let Some(IceTcpEvent::Message(_, m2)) = b.recv().await else { panic!() };
        assert_eq!(m2, vec![7; 1500]);
        assert!(b.has(listen, connection));
        assert!(b.send(listen, connection, b"back"));
        assert_eq!(a.recv().await.unwrap(), IceTcpEvent::Message((connection, listen), b"back".to_vec()));
        a.command(TcpCommand::Close { local: connection, remote: listen });
        assert_eq!(b.recv().await.unwrap(), IceTcpEvent::Closed((listen, connection)));
        assert!(!b.has(listen, connection));
        // Nobody listens here any more.
        b.unlisten(listen);
        a.command(TcpCommand::Connect { local: active, remote: listen });
        assert_eq!(a.recv().await.unwrap(), IceTcpEvent::Closed((active, listen)));
    }

    /// A frame longer than the limit ends the connection.
    #[tokio::test]
    async fn an_over_long_frame_ends_the_connection() {
        let mut b = IceTcp::new();
        let listen = b.listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut s = TcpStream::connect(listen).await.unwrap();
        let peer = s.local_addr().unwrap();
        s.write_all(&[0xff, 0xff, 1, 2, 3]).await.unwrap();
        assert_eq!(b.recv().await.unwrap(), IceTcpEvent::Closed((listen, peer)));
    }
}
