//! `RtcDataStream`: a data stream (a WebRTC data channel) of a connection.

use std::sync::Arc;
use std::time::Instant;

use rtc_proto::{DataEvent, DataState, DataStreamDescription, Error};

use crate::driver::DataInner;
use crate::events::Events;
use crate::messages::DataStreamMessage;

/// A data stream of a connection (a WebRTC data channel, RFC 8831): made by
/// [`RtcConnection::create_data_stream`](crate::RtcConnection::create_data_stream)
/// or opened by the peer
/// ([`RtcConnection::accept_data_stream`](crate::RtcConnection::accept_data_stream)).
/// Its events are the W3C data channel's: open, close, bufferedamountlow,
/// error; its messages come from [`recv`](Self::recv).
#[derive(Debug, Clone)]
pub struct RtcDataStream {
    pub(crate) inner: Arc<DataInner>,
}

impl RtcDataStream {
    fn with<T>(&self, f: impl FnOnce(&mut rtc_proto::ConnectionMut<'_>, Instant) -> T) -> Result<T, Error> {
        let d = self.inner.driver.upgrade().ok_or(Error::Closed)?;
        let r = {
            let mut st = d.state();
            let mut c = st.endpoint.connection_mut(self.inner.conn).ok_or(Error::Closed)?;
            f(&mut c, Instant::now())
        };
        d.wake.notify_one();
        Ok(r)
    }

    fn read<T>(&self, f: impl FnOnce(&rtc_proto::Connection) -> Option<T>) -> Option<T> {
        let d = self.inner.driver.upgrade()?;
        let st = d.state();
        st.endpoint.connection(self.inner.conn).and_then(f)
    }

    /// The stream's description: label, protocol, ordering, reliability and
    /// (once assigned) its SCTP stream id.
    pub fn description(&self) -> Option<DataStreamDescription> {
        self.read(|c| c.data_stream_description(self.inner.id))
    }

    /// Where the stream is.
    pub fn state(&self) -> DataState {
        self.read(|c| c.data_stream_state(self.inner.id)).unwrap_or(DataState::Closed)
    }

    /// The stream's events from now on; they end when the stream's
    /// connection closes.
    pub fn events(&self) -> Events<DataEvent> {
        self.inner.events.subscribe()
    }

    /// Sends a binary message (at most the peer's `max-message-size`).
    pub fn send(&self, message: &[u8]) -> Result<(), Error> {
        self.with(|c, now| c.send_data(now, self.inner.id, message, true))?
    }

    /// Sends a string message.
    pub fn send_text(&self, message: &str) -> Result<(), Error> {
        self.with(|c, now| c.send_data(now, self.inner.id, message.as_bytes(), false))?
    }

    /// The next received message; `None` once the stream or its connection
    /// closed and every message was read.
    pub async fn recv(&self) -> Option<DataStreamMessage> {
        self.inner.messages.next().await
    }

    /// A received message if one is queued.
    pub fn try_recv(&self) -> Option<DataStreamMessage> {
        self.inner.messages.pop()
    }

    /// Octets sent and not yet acknowledged by the peer.
    pub fn buffered_amount(&self) -> usize {
        self.with(|c, _| c.buffered_amount(self.inner.id)).unwrap_or(0)
    }

    /// Sets the buffered amount at or below which `bufferedamountlow`
    /// fires (0 by default).
    pub fn set_buffered_amount_low_threshold(&self, threshold: usize) {
        let _ = self.with(|c, _| c.set_buffered_amount_low_threshold(self.inner.id, threshold));
    }

    /// Received messages dropped because [`recv`](Self::recv) fell more
    /// than 4096 messages or 16 MiB behind.
    pub fn dropped(&self) -> u64 {
        self.inner.messages.dropped()
    }

    /// Closes the stream (both directions; the peer sees it close too).
    pub fn close(&self) {
        let _ = self.with(|c, now| c.close_data_stream(now, self.inner.id));
    }
}
