//! The STUN messages ICE uses (RFC 8489 Binding, RFC 8445 section 7 attributes),
//! encoded and decoded through stun-rs.
//!
//! Decoding checks what stun-rs can check while parsing (MESSAGE-INTEGRITY
//! against the short-term key, FINGERPRINT) and reduces the message to the
//! few fields the agent needs, so nothing of stun-rs leaks into the agent.

use std::net::SocketAddr;

use stun_rs::attributes::ice::{IceControlled, IceControlling, Priority, UseCandidate};
use stun_rs::attributes::stun::{
    ErrorCode as ErrorCodeAttr, Fingerprint, MessageIntegrity, UserName, XorMappedAddress,
};
use stun_rs::error::StunErrorLevel;
use stun_rs::methods::BINDING;
use stun_rs::{
    DecoderContextBuilder, HMACKey, MessageClass, MessageDecoderBuilder, MessageEncoderBuilder, StunErrorType,
    StunMessageBuilder, TransactionId,
};

/// STUN header size (RFC 8489 section 5).
pub(crate) const HEADER_LEN: usize = 20;
/// The magic cookie (RFC 8489 section 5).
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
/// Largest message we build: two 256-character ufrags in USERNAME plus the
/// fixed ICE attributes fit comfortably.
const MAX_ENCODED: usize = 1024;
/// Attribute type of MESSAGE-INTEGRITY.
const ATTR_MESSAGE_INTEGRITY: u16 = 0x0008;

/// RFC 7983 section 7: a datagram whose first byte is 0..=3 is STUN. We also
/// require a whole header with the magic cookie before treating it as STUN.
pub(crate) fn is_stun(data: &[u8]) -> bool {
    data.first().is_some_and(|&b| b <= 3)
}

/// The class of a STUN message (RFC 8489 section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Request,
    Indication,
    Success,
    Error,
}

/// Reads the class and transaction id from the header without decoding, so
/// the agent can choose the key: requests are checked with the local
/// password, responses with the password of the transaction's peer.
pub(crate) fn peek(data: &[u8]) -> Option<(Class, [u8; 12])> {
    if data.len() < HEADER_LEN || data[4..8] != MAGIC_COOKIE {
        return None;
    }
    let t = u16::from_be_bytes([data[0], data[1]]);
    let class = match ((t >> 4) & 1) | ((t >> 7) & 2) {
        0 => Class::Request,
        1 => Class::Indication,
        2 => Class::Success,
        _ => Class::Error,
    };
    let mut tid = [0u8; 12];
    tid.copy_from_slice(&data[8..20]);
    Some((class, tid))
}

/// Attribute type of USERNAME.
const ATTR_USERNAME: u16 = 0x0006;

/// The value of the first USERNAME attribute of a STUN request, read in
/// place: the attributes are walked within the header's message length and
/// the datagram, with every length checked. `None` for anything that is not
/// a well-framed request with a USERNAME. Never panics.
pub(crate) fn request_username(data: &[u8]) -> Option<&[u8]> {
    if peek(data)?.0 != Class::Request {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*data.get(2)?, *data.get(3)?]));
    let body = data.get(HEADER_LEN..HEADER_LEN.checked_add(len)?)?;
    let mut at = 0usize;
    while let Some(head) = body.get(at..at.checked_add(4)?) {
        let t = u16::from_be_bytes([head[0], head[1]]);
        let l = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let start = at.checked_add(4)?;
        let value = body.get(start..start.checked_add(l)?)?;
        if t == ATTR_USERNAME {
            return Some(value);
        }
        // Attributes are padded to 4 bytes (RFC 8489 section 14).
        at = start.checked_add(l.div_ceil(4).checked_mul(4)?)?;
    }
    None
}

/// Why a STUN datagram was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// Not a well-formed STUN message (or not Binding).
    Malformed,
    /// MESSAGE-INTEGRITY did not verify with the key.
    Integrity,
    /// FINGERPRINT did not match.
    Fingerprint,
}

/// The parts of a Binding message the agent uses.
#[derive(Debug, Clone, Default)]
pub(crate) struct Decoded {
    pub(crate) username: Option<String>,
    pub(crate) integrity: bool,
    pub(crate) fingerprint: bool,
    pub(crate) priority: Option<u32>,
    pub(crate) controlling: Option<u64>,
    pub(crate) controlled: Option<u64>,
    pub(crate) use_candidate: bool,
    pub(crate) mapped: Option<SocketAddr>,
    pub(crate) error_code: Option<u16>,
}

/// Decodes a Binding message. With a key, a MESSAGE-INTEGRITY present must
/// verify with it; without one, a message carrying MESSAGE-INTEGRITY fails.
/// A FINGERPRINT present must match. Whether they are present is reported
/// so the caller can require them.
pub(crate) fn decode(data: &[u8], key: Option<&HMACKey>) -> Result<Decoded, DecodeError> {
    let mut ctx = DecoderContextBuilder::default().with_validation();
    if let Some(k) = key {
        ctx = ctx.with_key(k.clone());
    }
    let decoder = MessageDecoderBuilder::default().with_context(ctx.build()).build();
    let (msg, size) = decoder.decode(data).map_err(|e| match e.0 {
        StunErrorLevel::Attribute(a) if a.error.error_type == StunErrorType::ValidationFailed => {
            if a.attr_type.is_some_and(|t| t.as_u16() == ATTR_MESSAGE_INTEGRITY) {
                DecodeError::Integrity
            } else {
                DecodeError::Fingerprint
            }
        }
        _ => DecodeError::Malformed,
    })?;
    if size != data.len() || msg.method() != BINDING {
        return Err(DecodeError::Malformed);
    }
    let mut d = Decoded {
        integrity: msg.get::<MessageIntegrity>().is_some(),
        fingerprint: msg.get::<Fingerprint>().is_some(),
        use_candidate: msg.get::<UseCandidate>().is_some(),
        ..Decoded::default()
    };
    if let Some(a) = msg.get::<UserName>() {
        d.username = Some(a.as_user_name().map_err(|_| DecodeError::Malformed)?.as_str().to_owned());
    }
    if let Some(a) = msg.get::<Priority>() {
        d.priority = Some(a.as_priority().map_err(|_| DecodeError::Malformed)?.as_u32());
    }
    if let Some(a) = msg.get::<IceControlling>() {
        d.controlling = Some(a.as_ice_controlling().map_err(|_| DecodeError::Malformed)?.as_u64());
    }
    if let Some(a) = msg.get::<IceControlled>() {
        d.controlled = Some(a.as_ice_controlled().map_err(|_| DecodeError::Malformed)?.as_u64());
    }
    if let Some(a) = msg.get::<XorMappedAddress>() {
        d.mapped = Some(*a.as_xor_mapped_address().map_err(|_| DecodeError::Malformed)?.socket_address());
    }
    if let Some(a) = msg.get::<ErrorCodeAttr>() {
        d.error_code = Some(a.as_error_code().map_err(|_| DecodeError::Malformed)?.error_code().error_code());
    }
    Ok(d)
}

/// The ICE attributes of a connectivity check (RFC 8445 section 7.1.1).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckAttrs {
    pub(crate) priority: u32,
    pub(crate) controlling: bool,
    pub(crate) tiebreaker: u64,
    pub(crate) use_candidate: bool,
}

/// Why we could not build a message; only reachable with a credential that
/// stun-rs refuses, which the agent validates beforehand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode STUN message: {0}")]
pub(crate) struct EncodeError(pub(crate) &'static str);

fn finish(builder: StunMessageBuilder, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let msg = builder.build();
    let mut buf = [0u8; MAX_ENCODED];
    let n = MessageEncoderBuilder::default()
        .build()
        .encode(&mut buf, &msg)
        .map_err(|_| EncodeError("stun-rs encoder refused the message"))?;
    out.clear();
    out.extend_from_slice(&buf[..n]);
    Ok(())
}

/// A Binding request. `auth` is the USERNAME and the key for
/// MESSAGE-INTEGRITY; connectivity and consent checks carry both and the ICE
/// attributes, a request to a STUN server for srflx gathering carries neither.
/// FINGERPRINT is always added.
pub(crate) fn binding_request(
    out: &mut Vec<u8>,
    tid: [u8; 12],
    auth: Option<(&str, &HMACKey)>,
    ice: Option<CheckAttrs>,
) -> Result<(), EncodeError> {
    let mut b = StunMessageBuilder::new(BINDING, MessageClass::Request).with_transaction_id(TransactionId::from(tid));
    if let Some((user, _)) = auth {
        b = b.with_attribute(UserName::new(user).map_err(|_| EncodeError("username"))?);
    }
    if let Some(ice) = ice {
        b = b.with_attribute(Priority::new(ice.priority));
        b = if ice.controlling {
            b.with_attribute(IceControlling::new(ice.tiebreaker))
        } else {
            b.with_attribute(IceControlled::new(ice.tiebreaker))
        };
        if ice.use_candidate {
            b = b.with_attribute(UseCandidate::default());
        }
    }
    if let Some((_, key)) = auth {
        b = b.with_attribute(MessageIntegrity::new(key.clone()));
    }
    finish(b.with_attribute(Fingerprint::default()), out)
}

/// A Binding success response with XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY and
/// FINGERPRINT (RFC 8445 section 7.3.1.5).
pub(crate) fn binding_success(
    out: &mut Vec<u8>,
    tid: [u8; 12],
    mapped: SocketAddr,
    key: &HMACKey,
) -> Result<(), EncodeError> {
    let b = StunMessageBuilder::new(BINDING, MessageClass::SuccessResponse)
        .with_transaction_id(TransactionId::from(tid))
        .with_attribute(XorMappedAddress::from(mapped))
        .with_attribute(MessageIntegrity::new(key.clone()))
        .with_attribute(Fingerprint::default());
    finish(b, out)
}

/// A Binding error response (RFC 8445 section 7.3.1.1 uses 487 Role Conflict).
pub(crate) fn binding_error(
    out: &mut Vec<u8>,
    tid: [u8; 12],
    code: u16,
    reason: &str,
    key: &HMACKey,
) -> Result<(), EncodeError> {
    let ec = stun_rs::ErrorCode::new(code, reason).map_err(|_| EncodeError("error code"))?;
    let b = StunMessageBuilder::new(BINDING, MessageClass::ErrorResponse)
        .with_transaction_id(TransactionId::from(tid))
        .with_attribute(ErrorCodeAttr::from(ec))
        .with_attribute(MessageIntegrity::new(key.clone()))
        .with_attribute(Fingerprint::default());
    finish(b, out)
}

/// A Binding indication with FINGERPRINT: the keepalive of RFC 8445 section 11.
pub(crate) fn binding_indication(out: &mut Vec<u8>, tid: [u8; 12]) -> Result<(), EncodeError> {
    let b = StunMessageBuilder::new(BINDING, MessageClass::Indication)
        .with_transaction_id(TransactionId::from(tid))
        .with_attribute(Fingerprint::default());
    finish(b, out)
}

/// A short-term credential key (RFC 8489 section 9.1.1).
pub(crate) fn short_term_key(password: &str) -> Option<HMACKey> {
    HMACKey::new_short_term(password).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5769 section 2.1: sample request (short-term credentials,
    /// username "evtj:h6vY", password "VOkJxbRl1RmTxUk/WvJxBt").
    const SAMPLE_REQUEST: [u8; 108] = [
        0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87,
        0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x63, 0x6c,
        0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff, 0x80, 0x29, 0x00, 0x08, 0x93, 0x2f,
        0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76,
        0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e,
        0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
    ];

    /// RFC 5769 section 2.2: sample IPv4 response, mapped 192.0.2.1:32853.
    const SAMPLE_IPV4_RESPONSE: [u8; 80] = [
        0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87,
        0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
        0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43, 0x00, 0x08, 0x00, 0x14, 0x2b, 0x91,
        0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7,
        0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
    ];

    /// RFC 5769 section 2.3: sample IPv6 response, mapped
    /// [2001:db8:1234:5678:11:2233:4455:6677]:32853.
    const SAMPLE_IPV6_RESPONSE: [u8; 92] = [
        0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87,
        0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
        0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25,
        0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9, 0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1,
        0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41, 0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb,
        0x0b, 0x4c,
    ];

    /// RFC 5769 section 2.4: sample request with long-term authentication
    /// (only its header and first bytes matter here: it must not pass as a
    /// short-term-authenticated ICE message).
    const SAMPLE_LONG_TERM_HEAD: [u8; 20] = [
        0x00, 0x01, 0x00, 0x60, 0x21, 0x12, 0xa4, 0x42, 0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72, 0xc0, 0x29, 0xda,
        0x41, 0x2e,
    ];

    const PASSWORD: &str = "VOkJxbRl1RmTxUk/WvJxBt";
    const TID: [u8; 12] = [0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae];

    fn key() -> HMACKey {
        short_term_key(PASSWORD).unwrap()
    }

    #[test]
    fn rfc5769_2_1_request() {
        assert_eq!(peek(&SAMPLE_REQUEST), Some((Class::Request, TID)));
        let d = decode(&SAMPLE_REQUEST, Some(&key())).unwrap();
        assert_eq!(d.username.as_deref(), Some("evtj:h6vY"));
        assert!(d.integrity && d.fingerprint);
        assert_eq!(d.priority, Some(0x6e0001ff));
        assert_eq!(d.controlled, Some(0x932ff9b151263b36));
        assert_eq!(d.controlling, None);
        assert!(!d.use_candidate);
        // The wrong password fails MESSAGE-INTEGRITY.
        assert_eq!(decode(&SAMPLE_REQUEST, short_term_key("wrong password 12345678").as_ref()).unwrap_err(), {
            DecodeError::Integrity
        });
    }

    #[test]
    fn rfc5769_2_2_ipv4_response() {
        assert_eq!(peek(&SAMPLE_IPV4_RESPONSE), Some((Class::Success, TID)));
        let d = decode(&SAMPLE_IPV4_RESPONSE, Some(&key())).unwrap();
        assert_eq!(d.mapped, Some("192.0.2.1:32853".parse().unwrap()));
        assert!(d.integrity && d.fingerprint);
    }

    #[test]
    fn rfc5769_2_3_ipv6_response() {
        let d = decode(&SAMPLE_IPV6_RESPONSE, Some(&key())).unwrap();
        assert_eq!(d.mapped, Some("[2001:db8:1234:5678:11:2233:4455:6677]:32853".parse().unwrap()));
        assert!(d.integrity && d.fingerprint);
    }

    #[test]
    fn rfc5769_2_4_is_not_a_short_term_message() {
        // A truncated copy is malformed, never a panic.
        assert_eq!(decode(&SAMPLE_LONG_TERM_HEAD, Some(&key())).unwrap_err(), DecodeError::Malformed);
    }

    #[test]
    fn tampering_is_detected() {
        for i in HEADER_LEN..SAMPLE_REQUEST.len() {
            let mut m = SAMPLE_REQUEST;
            m[i] ^= 0x01;
            // Either refused, or (a flipped FINGERPRINT type makes it an
            // unknown attribute after MESSAGE-INTEGRITY, which is ignored)
            // no longer carrying both MESSAGE-INTEGRITY and FINGERPRINT.
            let accepted = matches!(decode(&m, Some(&key())), Ok(d) if d.integrity && d.fingerprint);
            assert!(!accepted, "flipped byte {i} accepted");
        }
        // A flipped bit in FINGERPRINT alone is a fingerprint failure.
        let mut m = SAMPLE_IPV4_RESPONSE;
        m[79] ^= 0x80;
        assert_eq!(decode(&m, Some(&key())).unwrap_err(), DecodeError::Fingerprint);
    }

    #[test]
    fn our_messages_round_trip() {
        let k = key();
        let mut out = Vec::new();
        let ice =
            CheckAttrs { priority: 1_853_824_767, controlling: true, tiebreaker: u64::MAX - 5, use_candidate: true };
        binding_request(&mut out, TID, Some(("abcd:efgh", &k)), Some(ice)).unwrap();
        assert!(is_stun(&out));
        let d = decode(&out, Some(&k)).unwrap();
        assert_eq!(d.username.as_deref(), Some("abcd:efgh"));
        assert_eq!(
            (d.priority, d.controlling, d.controlled, d.use_candidate),
            (Some(ice.priority), Some(ice.tiebreaker), None, true)
        );
        assert!(d.integrity && d.fingerprint);

        let mapped: SocketAddr = "[::1]:4242".parse().unwrap();
        binding_success(&mut out, TID, mapped, &k).unwrap();
        assert_eq!(peek(&out), Some((Class::Success, TID)));
        assert_eq!(decode(&out, Some(&k)).unwrap().mapped, Some(mapped));

        binding_error(&mut out, TID, 487, "Role Conflict", &k).unwrap();
        assert_eq!(peek(&out).map(|p| p.0), Some(Class::Error));
        assert_eq!(decode(&out, Some(&k)).unwrap().error_code, Some(487));

        binding_indication(&mut out, TID).unwrap();
        assert_eq!(peek(&out).map(|p| p.0), Some(Class::Indication));

        binding_request(&mut out, TID, None, None).unwrap();
        let d = decode(&out, None).unwrap();
        assert!(!d.integrity && d.fingerprint && d.username.is_none());
    }

    #[test]
    fn rfc7983_demultiplexing() {
        assert!(is_stun(&[0, 1]));
        assert!(is_stun(&[3]));
        assert!(!is_stun(&[20])); // DTLS
        assert!(!is_stun(&[128])); // RTP/RTCP
        assert!(!is_stun(b"ping 1"));
        assert!(!is_stun(&[]));
    }
}
