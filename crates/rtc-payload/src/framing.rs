//! The receive state of the formats whose frames run from a packet marked as
//! a frame's start to the marker bit over consecutive sequence numbers of one
//! timestamp: VP8 (RFC 7741 section 4.5.1) and VP9 (RFC 9628).
//!
//! A frame that cannot complete (a packet lost or malformed, longer than
//! `max_frame`, or no data in it) is counted once in the assembly's discarded
//! frames, and its remaining packets are ignored.

use crate::sequence::Order;
use crate::{Assembly, FrameInfo};

/// Where a receiver stands; `T` is what the format keeps of the frame being
/// built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum State<T> {
    /// Between frames.
    #[default]
    Idle,
    /// Building the frame of this timestamp, whole so far.
    Building(u32, T),
    /// The frame of this timestamp lost a packet or had a malformed one;
    /// already counted as discarded.
    Broken(u32),
}

impl<T> State<T> {
    /// Before a packet in `order` of timestamp `ts`: false for a duplicate or
    /// late packet, to be ignored (its frame was completed or dropped without
    /// it). Else a frame of another timestamp still open lost its last packet,
    /// and is counted; a broken one is done with.
    pub(crate) fn take(&mut self, order: Order, ts: u32, asm: &mut Assembly) -> bool {
        if !matches!(order, Order::Next | Order::Gap) {
            return false;
        }
        match self {
            State::Building(t, _) if *t != ts => {
                asm.discard();
                *self = State::Idle;
            }
            State::Broken(t) if *t != ts => *self = State::Idle,
            _ => {}
        }
        true
    }

    /// Starts the frame of `ts` with `data`.
    pub(crate) fn start(&mut self, ts: u32, kept: T, data: &[u8], asm: &mut Assembly) {
        asm.buf.clear();
        *self = State::Building(ts, kept);
        self.append(ts, data, asm);
    }

    /// Appends `data` to the frame of `ts`, which fails past `max_frame`.
    pub(crate) fn append(&mut self, ts: u32, data: &[u8], asm: &mut Assembly) {
        if !asm.append(&[data]) {
            self.fail(ts, asm);
        }
    }

    /// The frame of `ts` cannot complete: counted once.
    pub(crate) fn fail(&mut self, ts: u32, asm: &mut Assembly) {
        if !matches!(self, State::Broken(_)) {
            asm.discard();
        }
        asm.buf.clear();
        *self = State::Broken(ts);
    }

    /// At the frame's last packet: hands out the frame being built, a key
    /// frame as `key` judges from what was kept and the data, unless it has
    /// no data (counted). Idle afterwards.
    pub(crate) fn finish(
        &mut self,
        asm: &mut Assembly,
        key: impl FnOnce(&T, &[u8]) -> bool,
        frame: &mut impl FnMut(FrameInfo, &mut Vec<u8>),
    ) {
        if let State::Building(timestamp, kept) = &*self {
            if asm.buf.is_empty() {
                asm.discard();
            } else {
                let key_frame = key(kept, &asm.buf);
                asm.deliver(FrameInfo { timestamp: *timestamp, key_frame }, frame);
            }
        }
        *self = State::Idle;
    }
}
