//! Streams to TURN servers over TCP and TLS (feature `tokio`): what
//! [`StreamCommand`]s ask of a driver, for `IceSocket` and other drivers.
//!
//! [`TurnStreams`] opens one stream per command: a TCP connection from the
//! host base's IP address (any port) to the server, with TLS on it for
//! `turns:` (rustls on ring; the server certificate verified against
//! Mozilla's roots from webpki-roots and the CA certificates the
//! application adds, for the URL's host; there is no way to accept any
//! certificate). Each stream runs in a task of its own: it reads into a
//! [`Deframer`] and hands every whole message to the driver
//! ([`StreamEvent::Message`]); it writes what the driver queued with
//! [`TurnStreams::send`] (never waiting: a full queue drops, as a full
//! socket buffer would). A close ([`StreamCommand::Close`]) writes what was
//! queued before it, then shuts the stream down. [`TurnStreams`] is owned
//! by the driver task (no lock); [`TurnStreams::send`] only queues.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use crate::agent::StreamCommand;
use crate::error::Error;
use crate::framing::Deframer;
use crate::url::TurnTransport;

/// A stream to a TURN server: the host base it was opened for, the
/// server's address and the transport (as in [`StreamCommand`]).
pub type StreamKey = (SocketAddr, SocketAddr, TurnTransport);

/// What a stream reports to its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamEvent {
    /// Open (TCP connected, TLS handshake done): call
    /// [`Agent::stream_connected`](crate::Agent::stream_connected).
    Connected(StreamKey),
    /// One whole STUN or ChannelData message from the server: give it to
    /// [`Agent::handle_stream_receive`](crate::Agent::handle_stream_receive).
    Message(StreamKey, Vec<u8>),
    /// The stream could not be opened, ended, or broke its framing: call
    /// [`Agent::stream_closed`](crate::Agent::stream_closed). Not sent for a
    /// stream closed by [`StreamCommand::Close`].
    Closed(StreamKey),
}

/// How long a TCP connection and its TLS handshake may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Messages queued for one stream before [`TurnStreams::send`] drops.
pub const SEND_QUEUE: usize = 256;
/// Events queued for the driver before the streams stop reading (TCP's
/// flow control then holds the server back).
pub const EVENT_QUEUE: usize = 256;
/// Bytes read from a stream at once.
const READ_CHUNK: usize = 16 * 1024;

/// The open streams to TURN servers of one driver.
pub struct TurnStreams {
    writers: HashMap<StreamKey, mpsc::Sender<Vec<u8>>>,
    /// Message buffers, circulating between the streams' tasks and the
    /// driver: a message read is handed back with
    /// [`TurnStreams::recycle`], one written goes back by itself.
    pool: crate::pool::Pool,
    events: mpsc::Sender<StreamEvent>,
    tls: TlsConfig,
}

/// The TLS client configuration for `turns:` servers ([`tls_config`]):
/// cheap to clone.
#[derive(Clone)]
pub struct TlsConfig(Arc<ClientConfig>);

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for TurnStreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnStreams").field("open", &self.writers.len()).finish_non_exhaustive()
    }
}

/// The TLS client configuration for `turns:` servers: Mozilla's roots
/// (webpki-roots) and the CA certificates in `extra_roots_pem` (PEM, any
/// number of certificates each), TLS 1.2 and 1.3 on ring. A PEM that holds
/// no certificate, or one that does not parse, is [`Error::Tls`].
pub fn tls_config(extra_roots_pem: &[String]) -> Result<TlsConfig, Error> {
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    for pem in extra_roots_pem {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|_| Error::Tls("a CA certificate PEM that does not parse"))?;
        if certs.is_empty() {
            return Err(Error::Tls("a CA certificate PEM without a certificate"));
        }
        for c in certs {
            roots.add(c).map_err(|_| Error::Tls("a CA certificate that is not a usable root"))?;
        }
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| Error::Tls("no TLS version available"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConfig(Arc::new(config)))
}

impl TurnStreams {
    /// No streams yet; `extra_roots_pem` are CA certificates trusted for
    /// `turns:` servers besides Mozilla's roots (see [`tls_config`]). The
    /// receiver gets every stream's [`StreamEvent`]s.
    pub fn new(extra_roots_pem: &[String]) -> Result<(Self, mpsc::Receiver<StreamEvent>), Error> {
        let (events, rx) = mpsc::channel(EVENT_QUEUE);
        let tls = tls_config(extra_roots_pem)?;
        Ok((Self { writers: HashMap::new(), pool: crate::pool::Pool::new(), events, tls }, rx))
    }

    /// How many streams are open or opening.
    pub fn len(&self) -> usize {
        self.writers.len()
    }

    /// Whether no stream is open or opening.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Acts on a command from the agent: opens a stream (in a task of its
    /// own, on the current tokio runtime) or closes one once what was
    /// queued on it is written. Opening a stream that is open does nothing.
    pub fn command(&mut self, command: StreamCommand) {
        let tls = self.tls.clone();
        self.command_with(command, &tls);
    }

    /// [`TurnStreams::command`] with another TLS configuration for a
    /// stream it opens (the roots of the socket it is for).
    pub fn command_with(&mut self, command: StreamCommand, tls: &TlsConfig) {
        match command {
            StreamCommand::Connect { local, server, transport, host } => {
                let key = (local, server, transport);
                if self.writers.contains_key(&key) || !transport.is_stream() {
                    return;
                }
                let (tx, rx) = mpsc::channel(SEND_QUEUE);
                self.writers.insert(key, tx);
                let tls = (transport == TurnTransport::Tls).then(|| tls.0.clone());
                tokio::spawn(run(key, host, tls, rx, (self.events.clone(), self.pool.clone())));
            }
            StreamCommand::Close { local, server, transport } => {
                // The task writes what is queued, then shuts down.
                self.writers.remove(&(local, server, transport));
            }
        }
    }

    /// Queues one message (a whole STUN or ChannelData message, as the
    /// agent's transmits are) on a stream. False, and dropped, when the
    /// stream is not open or its queue is full.
    pub fn send(&mut self, key: StreamKey, message: Vec<u8>) -> bool {
        match self.writers.get(&key).map(|tx| tx.try_send(message)) {
            Some(Ok(())) => true,
            Some(Err(e)) => {
                self.pool.put(e.into_inner());
                false
            }
            None => false,
        }
    }

    /// [`TurnStreams::send`] of a copy of `message`, in a buffer of the
    /// streams' own (no allocation once warm).
    pub fn send_slice(&mut self, key: StreamKey, message: &[u8]) -> bool {
        let mut buf = self.pool.take();
        buf.extend_from_slice(message);
        self.send(key, buf)
    }

    /// An empty buffer for a message to [`TurnStreams::send`] (it comes
    /// back once written).
    pub fn buffer(&self) -> Vec<u8> {
        self.pool.take()
    }

    /// Hands back the buffer of a [`StreamEvent::Message`] once done with
    /// it, or a buffer from [`TurnStreams::buffer`] that was not sent.
    pub fn recycle(&self, buffer: Vec<u8>) {
        self.pool.put(buffer);
    }

    /// Closes every stream (what is queued is still written).
    pub fn close_all(&mut self) {
        self.writers.clear();
    }

    /// The pool, for an owner that fills buffers elsewhere.
    pub(crate) fn pool(&self) -> crate::pool::Pool {
        self.pool.clone()
    }
}

/// One stream's task: connect (and TLS), then read messages and write the
/// queue until either ends.
async fn run(
    key: StreamKey,
    host: String,
    tls: Option<Arc<ClientConfig>>,
    out: mpsc::Receiver<Vec<u8>>,
    (events, pool): (mpsc::Sender<StreamEvent>, crate::pool::Pool),
) {
    let (local, server, transport) = key;
    let opened = tokio::time::timeout(CONNECT_TIMEOUT, open(local, server, &host, tls)).await;
    let stream = match opened {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%server, transport = transport.as_str(), error = %e, "TURN stream: cannot connect");
            let _ = events.send(StreamEvent::Closed(key)).await;
            return;
        }
        Err(_) => {
            tracing::debug!(%server, transport = transport.as_str(), "TURN stream: connecting timed out");
            let _ = events.send(StreamEvent::Closed(key)).await;
            return;
        }
    };
    tracing::debug!(%server, transport = transport.as_str(), "TURN stream connected");
    if events.send(StreamEvent::Connected(key)).await.is_err() {
        return;
    }
    let (reader, writer) = tokio::io::split(stream);
    let ended = tokio::select! {
        r = read_loop(key, reader, (&events, &pool)) => r,
        r = write_loop(writer, out, Some(&pool)) => r,
    };
    match ended {
        Ok(()) => tracing::debug!(%server, "TURN stream closed"),
        Err(e) => {
            tracing::debug!(%server, error = %e, "TURN stream ended");
            let _ = events.send(StreamEvent::Closed(key)).await;
        }
    }
}

/// A TCP or TLS stream to a TURN server.
trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

async fn open(
    local: SocketAddr,
    server: SocketAddr,
    host: &str,
    tls: Option<Arc<ClientConfig>>,
) -> io::Result<Box<dyn Stream>> {
    let socket = if server.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.bind(SocketAddr::new(local.ip(), 0))?;
    let tcp = socket.connect(server).await?;
    tcp.set_nodelay(true)?;
    let Some(config) = tls else { return Ok(Box::new(tcp)) };
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "not a TLS server name"))?;
    let tls = TlsConnector::from(config).connect(name, tcp).await?;
    Ok(Box::new(tls))
}

/// Reads and deframes until the server closes, an error, or bytes that
/// break the framing.
async fn read_loop(
    key: StreamKey,
    mut reader: impl AsyncRead + Unpin,
    (events, pool): (&mpsc::Sender<StreamEvent>, &crate::pool::Pool),
) -> io::Result<()> {
    let bad = |e: Error| io::Error::new(io::ErrorKind::InvalidData, e);
    let mut deframer = Deframer::default();
    loop {
        let room = deframer.spare(READ_CHUNK).map_err(bad)?;
        let n = reader.read(room).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        deframer.commit(n).map_err(bad)?;
        while let Some(m) = deframer.next_message().map_err(bad)? {
            let mut buf = pool.take();
            buf.extend_from_slice(m);
            if events.send(StreamEvent::Message(key, buf)).await.is_err() {
                // The driver is gone.
                return Ok(());
            }
        }
    }
}

/// Writes queued messages until the queue is closed (then shuts the
/// stream down) or a write fails; each written message's buffer goes to
/// `pool` when there is one.
pub(crate) async fn write_loop(
    mut writer: impl AsyncWrite + Unpin,
    mut out: mpsc::Receiver<Vec<u8>>,
    pool: Option<&crate::pool::Pool>,
) -> io::Result<()> {
    while let Some(m) = out.recv().await {
        writer.write_all(&m).await?;
        if let Some(p) = pool {
            p.put(m);
        }
    }
    writer.flush().await?;
    let _ = writer.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_roots_must_be_certificates() {
        assert!(tls_config(&[]).is_ok());
        assert_eq!(
            tls_config(&["not a pem".into()]).unwrap_err(),
            Error::Tls("a CA certificate PEM without a certificate")
        );
        let broken = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n".to_owned();
        assert!(tls_config(&[broken]).is_err());
    }
}
