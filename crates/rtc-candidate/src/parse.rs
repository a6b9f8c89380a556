//! The RFC 8839 section 5.1 grammar, with nom:
//!
//! ```text
//! candidate-attribute = "candidate" ":" foundation SP component-id SP transport SP
//!                       priority SP connection-address SP port SP cand-type
//!                       [SP rel-addr] [SP rel-port] *(SP cand-extension)
//! ```
//!
//! Each field is taken by a nom parser; a failure becomes a [`ParseError`]
//! naming the field and the byte offset. Every step consumes input or stops,
//! so the work is linear in the line's length.

use nom::bytes::complete::{tag, take_while, take_while1};
use nom::combinator::opt;
use nom::{IResult, Parser};

use crate::address::Address;
use crate::candidate::{Candidate, Extension, is_extension_value};
use crate::error::{Field, ParseError};
use crate::token::{CandidateType, Component, Foundation, Transport, is_ice_char, is_token_char};

type NomError<'a> = nom::error::Error<&'a str>;

/// A decimal number of at most 10 digits that fits 32 bits.
pub(crate) fn decimal_u32(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

struct Cursor<'a> {
    len: usize,
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn offset(&self) -> usize {
        self.len - self.rest.len()
    }

    fn err(&self, field: Field, reason: &'static str) -> ParseError {
        ParseError::new(field, self.offset(), reason)
    }

    /// Runs a nom parser on the rest of the input; on failure reports `field`.
    fn take<O>(
        &mut self,
        field: Field,
        reason: &'static str,
        mut parser: impl Parser<&'a str, Output = O, Error = NomError<'a>>,
    ) -> Result<O, ParseError> {
        let out: IResult<&'a str, O> = parser.parse(self.rest);
        match out {
            Ok((rest, value)) => {
                self.rest = rest;
                Ok(value)
            }
            Err(_) => Err(self.err(field, reason)),
        }
    }

    /// One space before `field`.
    fn space(&mut self, field: Field) -> Result<(), ParseError> {
        if self.rest.is_empty() {
            return Err(self.err(field, "missing"));
        }
        self.take(Field::Separator, "expected a single space", tag(" "))?;
        if self.rest.starts_with(' ') {
            return Err(self.err(Field::Separator, "expected a single space"));
        }
        Ok(())
    }

    /// A run of non-space characters (the extent of the next field).
    fn word(&mut self, field: Field) -> Result<&'a str, ParseError> {
        self.take(field, "missing", take_while1(|c| c != ' '))
    }

    fn number(&mut self, field: Field, max_digits: usize, too_many: &'static str) -> Result<(usize, u64), ParseError> {
        let start = self.offset();
        let digits = self.take(field, "not a decimal number", take_while1(|c: char| c.is_ascii_digit()))?;
        if !self.rest.is_empty() && !self.rest.starts_with(' ') {
            return Err(self.err(field, "not a decimal number"));
        }
        if digits.len() > max_digits {
            return Err(ParseError::new(field, start, too_many));
        }
        // At most 10 digits here, so u64 cannot overflow.
        let value = digits.bytes().fold(0u64, |v, b| v * 10 + u64::from(b - b'0'));
        Ok((start, value))
    }

    fn port(&mut self, field: Field) -> Result<u16, ParseError> {
        let (start, v) = self.number(field, 5, "over 65535")?;
        u16::try_from(v).map_err(|_| ParseError::new(field, start, "over 65535"))
    }

    fn address(&mut self, field: Field) -> Result<Address, ParseError> {
        let start = self.offset();
        let word = self.word(field)?;
        Address::parse_field(word, field).map_err(|e| ParseError::new(field, start + e.offset, e.reason))
    }
}

pub(crate) fn candidate(line: &str) -> Result<Candidate, ParseError> {
    let line = line.trim_end_matches([' ', '\t', '\r', '\n']);
    let mut c = Cursor { len: line.len(), rest: line };

    // Prefix: `a=candidate:`, `candidate:`, or none.
    let with_a = c.take(Field::Prefix, "", opt(tag("a=")))?.is_some();
    let with_name = c.take(Field::Prefix, "", opt(tag("candidate:")))?.is_some();
    if with_a && !with_name {
        return Err(c.err(Field::Prefix, "expected candidate: after a="));
    }

    // foundation = 1*32ice-char
    let start = c.offset();
    let foundation = c.take(Field::Foundation, "empty or not ice-chars", take_while1(is_ice_char))?;
    if !c.rest.is_empty() && !c.rest.starts_with(' ') {
        return Err(c.err(Field::Foundation, "not an ice-char"));
    }
    if foundation.len() > Foundation::MAX_LEN {
        return Err(ParseError::new(Field::Foundation, start + Foundation::MAX_LEN, "longer than 32 ice-chars"));
    }
    let foundation = Foundation::new(foundation)?;

    // component-id = 1*3DIGIT, and 1..=256 (RFC 8445 section 5.1.1.1)
    c.space(Field::Component)?;
    let (start, component) = c.number(Field::Component, 3, "more than 3 digits")?;
    let component = u16::try_from(component).ok().and_then(|v| Component::new(v).ok()).ok_or(ParseError::new(
        Field::Component,
        start,
        "not in 1..=256",
    ))?;

    // transport = "UDP" / token
    c.space(Field::Transport)?;
    let start = c.offset();
    let transport = c.word(Field::Transport)?;
    let transport =
        Transport::new(transport).map_err(|e| ParseError::new(Field::Transport, start + e.offset, e.reason))?;

    // priority = 1*10DIGIT
    c.space(Field::Priority)?;
    let (start, priority) = c.number(Field::Priority, 10, "over 32 bits")?;
    let priority = u32::try_from(priority).map_err(|_| ParseError::new(Field::Priority, start, "over 32 bits"))?;

    c.space(Field::Address)?;
    let address = c.address(Field::Address)?;
    c.space(Field::Port)?;
    let port = c.port(Field::Port)?;

    // cand-type = "typ" SP candidate-types
    c.space(Field::Typ)?;
    c.take(Field::Typ, "missing typ", tag("typ"))?;
    c.space(Field::CandidateType)?;
    let start = c.offset();
    let kind = c.word(Field::CandidateType)?;
    let kind =
        CandidateType::new(kind).map_err(|e| ParseError::new(Field::CandidateType, start + e.offset, e.reason))?;

    let mut cand = Candidate::new(foundation, component, transport, priority, address, port, kind);

    // [SP rel-addr] [SP rel-port] *(SP cand-extension)
    let mut seen_extension = false;
    while !c.rest.is_empty() {
        c.space(Field::Extension)?;
        let name_at = c.offset();
        let name = c.take(Field::Extension, "name is not a token", take_while1(is_token_char))?;
        if !c.rest.is_empty() && !c.rest.starts_with(' ') {
            return Err(c.err(Field::Extension, "name is not a token"));
        }
        match name {
            "raddr" | "rport" if seen_extension => {
                return Err(ParseError::new(Field::Extension, name_at, "raddr and rport must come before extensions"));
            }
            "raddr" => {
                if cand.related_address.is_some() || cand.related_port.is_some() {
                    return Err(ParseError::new(Field::RelatedAddress, name_at, "repeated or after rport"));
                }
                c.space(Field::RelatedAddress)?;
                cand.related_address = Some(c.address(Field::RelatedAddress)?);
            }
            "rport" => {
                if cand.related_port.is_some() {
                    return Err(ParseError::new(Field::RelatedPort, name_at, "repeated"));
                }
                c.space(Field::RelatedPort)?;
                cand.related_port = Some(c.port(Field::RelatedPort)?);
            }
            _ => {
                seen_extension = true;
                c.space(Field::Extension)?;
                let value_at = c.offset();
                let value = c.take(Field::Extension, "missing value", take_while(|ch| ch != ' '))?;
                if !is_extension_value(value) {
                    return Err(ParseError::new(Field::Extension, value_at, "value is not one or more VCHARs"));
                }
                cand.extensions.push(Extension::from_pair(name, value, value_at)?);
            }
        }
    }
    Ok(cand)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(line: &str) -> ParseError {
        candidate(line).expect_err(line)
    }

    #[test]
    fn prefixes() {
        let bare = "1 1 udp 2130706431 192.0.2.1 5000 typ host";
        let want = candidate(bare).unwrap();
        assert_eq!(candidate(&format!("candidate:{bare}")).unwrap(), want);
        assert_eq!(candidate(&format!("a=candidate:{bare}\r\n")).unwrap(), want);
        assert_eq!(err(&format!("a={bare}")).field, Field::Prefix);
    }

    #[test]
    fn typed_errors_name_field_and_offset() {
        let e = err("candidate:1 1 udp 2130706431 192.0.2.1");
        assert_eq!((e.field, e.reason), (Field::Port, "missing"));
        let e = err("candidate:1 1 udp 4294967296 192.0.2.1 5000 typ host");
        assert_eq!((e.field, e.offset, e.reason), (Field::Priority, 18, "over 32 bits"));
        let e = err("candidate:1 1 udp 12345678901 192.0.2.1 5000 typ host");
        assert_eq!((e.field, e.reason), (Field::Priority, "over 32 bits"));
        let e = err("candidate:1 1 udp 1 192.0.2.1 65536 typ host");
        assert_eq!((e.field, e.offset, e.reason), (Field::Port, 30, "over 65535"));
        assert_eq!(err("candidate:1 0 udp 1 192.0.2.1 5 typ host").reason, "not in 1..=256");
        assert_eq!(err("candidate:1 257 udp 1 192.0.2.1 5 typ host").reason, "not in 1..=256");
        assert_eq!(err("candidate:1 0001 udp 1 192.0.2.1 5 typ host").reason, "more than 3 digits");
        assert_eq!(err("candidate: 1 udp 1 192.0.2.1 5 typ host").field, Field::Foundation);
        let long = format!("candidate:{} 1 udp 1 192.0.2.1 5 typ host", "a".repeat(33));
        assert_eq!((err(&long).field, err(&long).offset), (Field::Foundation, 42));
        assert_eq!(err("candidate:a-b 1 udp 1 192.0.2.1 5 typ host").offset, 11);
        let e = err("candidate:1 1 udp 1 192.0.2.1 5 typ srflx raddr");
        assert_eq!((e.field, e.reason), (Field::RelatedAddress, "missing"));
        let e = err("candidate:1 1 udp 1 192.0.2.1 5 host");
        assert_eq!((e.field, e.reason), (Field::Typ, "missing typ"));
        assert_eq!(err("candidate:1 1 udp 1 192.0.2.1 5 typ").field, Field::CandidateType);
        assert_eq!(err("candidate:1 1 udp 1 192.0.2.1 5 typ host generation").reason, "missing");
        assert_eq!(err("candidate:1 1 udp 1 192.0.2.1 5 typ host generation x").field, Field::Generation);
        assert_eq!(err("candidate:1 1 tcp 1 192.0.2.1 5 typ host tcptype up").field, Field::TcpType);
        assert_eq!(err("candidate:1 1 udp 1 192.0.2.1  5 typ host").field, Field::Separator);
        assert_eq!(err("candidate:1 1 udp 1 192.0.2.1 5x typ host").field, Field::Port);
        assert_eq!(err("candidate:1 1 udp 1 300.0.2.1 5 typ host").field, Field::Address);
        let e = err("candidate:1 1 udp 1 192.0.2.1 5 typ host generation 0 raddr 1.2.3.4");
        assert_eq!(e.reason, "raddr and rport must come before extensions");
        assert_eq!(err("").field, Field::Foundation);
    }

    #[test]
    fn display_of_error() {
        let e = err("candidate:1 1 udp 1 192.0.2.1 99999 typ host");
        assert_eq!(e.to_string(), "port: over 65535 at offset 30");
    }
}
