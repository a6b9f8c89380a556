//! Received data messages, as a data stream's inbox holds them.

use crate::frame::Octets;

/// Received messages queued on a data stream before new ones are dropped.
pub(crate) const MESSAGE_QUEUE: usize = 4096;
/// Octets of received messages queued on a data stream before new ones are
/// dropped.
pub(crate) const MESSAGE_BYTES: usize = 16 << 20;
/// Data streams the peer opened that wait to be accepted.
pub(crate) const INCOMING: usize = 1024;

/// A message received on a data stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataStreamMessage {
    /// Its content.
    pub data: Vec<u8>,
    /// Binary (else a UTF-8 string, as the peer sent it).
    pub binary: bool,
}

impl DataStreamMessage {
    /// The content as text, for a string message that is valid UTF-8.
    pub fn text(&self) -> Option<&str> {
        if self.binary { None } else { std::str::from_utf8(&self.data).ok() }
    }
}

impl Octets for DataStreamMessage {
    fn octets(&self) -> usize {
        self.data.len()
    }
}
