//! The Data Channel Establishment Protocol (RFC 8832): DATA_CHANNEL_OPEN
//! and DATA_CHANNEL_ACK, carried with PPID 50 on the stream they open.

use crate::desc::DataStreamDescription;

/// DATA_CHANNEL_ACK's message type (RFC 8832 section 8.2.1).
pub(crate) const ACK: u8 = 0x02;
/// DATA_CHANNEL_OPEN's message type.
pub(crate) const OPEN: u8 = 0x03;

/// Channel types (RFC 8832 section 5.1): bit 7 set is unordered; the low
/// bits say how partially reliable.
const RELIABLE: u8 = 0x00;
const PARTIAL_RELIABLE_REXMIT: u8 = 0x01;
const PARTIAL_RELIABLE_TIMED: u8 = 0x02;
const UNORDERED: u8 = 0x80;

/// The fixed part of DATA_CHANNEL_OPEN: type, channel type, priority,
/// reliability parameter, label length, protocol length.
const OPEN_HEADER: usize = 12;

/// A DCEP message read from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    /// DATA_CHANNEL_OPEN: the stream's description (without `id`), and its
    /// priority.
    Open(DataStreamDescription),
    /// DATA_CHANNEL_ACK.
    Ack,
}

/// Reads a DCEP message; `None` for anything malformed or unknown (RFC
/// 8832 section 5: such messages are ignored).
pub(crate) fn parse(data: &[u8]) -> Option<Message> {
    match *data.first()? {
        ACK => Some(Message::Ack),
        OPEN => {
            let header: &[u8; OPEN_HEADER] = data.get(..OPEN_HEADER)?.try_into().ok()?;
            let channel_type = header[1];
            let param = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
            let label_len = usize::from(u16::from_be_bytes([header[8], header[9]]));
            let protocol_len = usize::from(u16::from_be_bytes([header[10], header[11]]));
            let label = data.get(OPEN_HEADER..OPEN_HEADER + label_len)?;
            let protocol = data.get(OPEN_HEADER + label_len..OPEN_HEADER + label_len + protocol_len)?;
            // Values beyond 16 bits are clamped (the W3C API's range).
            let param = u16::try_from(param).unwrap_or(u16::MAX);
            let (max_retransmits, max_packet_life_time) = match channel_type & !UNORDERED {
                RELIABLE => (None, None),
                PARTIAL_RELIABLE_REXMIT => (Some(param), None),
                PARTIAL_RELIABLE_TIMED => (None, Some(param)),
                _ => return None,
            };
            Some(Message::Open(DataStreamDescription {
                label: String::from_utf8_lossy(label).into_owned(),
                protocol: String::from_utf8_lossy(protocol).into_owned(),
                ordered: channel_type & UNORDERED == 0,
                max_retransmits,
                max_packet_life_time,
                negotiated: false,
                id: None,
            }))
        }
        _ => None,
    }
}

/// Writes DATA_CHANNEL_OPEN for `d` (priority 256, "normal", RFC 8831
/// section 6.4's default).
pub(crate) fn open(d: &DataStreamDescription) -> Vec<u8> {
    let (kind, param) = match (d.max_retransmits, d.max_packet_life_time) {
        (Some(n), _) => (PARTIAL_RELIABLE_REXMIT, u32::from(n)),
        (None, Some(ms)) => (PARTIAL_RELIABLE_TIMED, u32::from(ms)),
        (None, None) => (RELIABLE, 0),
    };
    let kind = if d.ordered { kind } else { kind | UNORDERED };
    // Lengths were checked to fit 16 bits (DataStreamDescription::check).
    let label = &d.label.as_bytes()[..d.label.len().min(usize::from(u16::MAX))];
    let protocol = &d.protocol.as_bytes()[..d.protocol.len().min(usize::from(u16::MAX))];
    let mut m = Vec::with_capacity(OPEN_HEADER + label.len() + protocol.len());
    m.extend_from_slice(&[OPEN, kind]);
    m.extend_from_slice(&256u16.to_be_bytes());
    m.extend_from_slice(&param.to_be_bytes());
    m.extend_from_slice(&(label.len() as u16).to_be_bytes());
    m.extend_from_slice(&(protocol.len() as u16).to_be_bytes());
    m.extend_from_slice(label);
    m.extend_from_slice(protocol);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8832 section 5.1's layout, byte by byte: an unordered channel
    /// retransmitting at most 3 times, label "chat", protocol "x".
    #[test]
    fn open_has_the_rfc_8832_layout() {
        let d = DataStreamDescription {
            label: "chat".into(),
            protocol: "x".into(),
            ordered: false,
            max_retransmits: Some(3),
            ..DataStreamDescription::default()
        };
        let m = open(&d);
        assert_eq!(m, [0x03, 0x81, 0x01, 0x00, 0, 0, 0, 3, 0, 4, 0, 1, b'c', b'h', b'a', b't', b'x']);
        assert_eq!(parse(&m), Some(Message::Open(d)));
        assert_eq!(parse(&[0x02]), Some(Message::Ack));
    }

    #[test]
    fn every_channel_type_round_trips() {
        for ordered in [true, false] {
            for (r, t) in [(None, None), (Some(0), None), (None, Some(1500))] {
                let d = DataStreamDescription {
                    label: "l".into(),
                    ordered,
                    max_retransmits: r,
                    max_packet_life_time: t,
                    ..DataStreamDescription::default()
                };
                assert_eq!(parse(&open(&d)), Some(Message::Open(d)));
            }
        }
    }

    #[test]
    fn malformed_messages_are_ignored() {
        let good = open(&DataStreamDescription::new("label"));
        for n in 0..good.len() {
            assert_eq!(parse(&good[..n]), None, "truncated to {n}");
        }
        let mut bad_type = good.clone();
        bad_type[1] = 0x03;
        assert_eq!(parse(&bad_type), None);
        assert_eq!(parse(&[0x04]), None);
        let huge = [0x03, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(parse(&huge), None);
    }
}
