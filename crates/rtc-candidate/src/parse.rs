//! The RFC 8839 section 5.1 grammar:
//!
//! ```text
//! candidate-attribute = "candidate" ":" foundation SP component-id SP transport SP
//!                       priority SP connection-address SP port SP cand-type
//!                       [SP rel-addr] [SP rel-port] *(SP cand-extension)
//! ```
//!
//! One pass over the line's bytes with an index: each field is a run of bytes
//! of one character class (a table lookup per byte), numbers are nom `digit1`
//! runs (with nom's zero-size error type), and every separator is exactly one
//! SP. A failure is a [`ParseError`] naming the field and the byte offset where
//! it was found; it is only built on the failing path. Each byte is looked at a
//! bounded number of times, so the work is linear in the line's length.

use nom::bytes::complete::tag;
use nom::character::complete::digit1;
use nom::combinator::opt;
use nom::{IResult, Parser};

use crate::address::Address;
use crate::candidate::{Candidate, Extension};
use crate::error::{Field, ParseError};
use crate::token::{CandidateType, Component, Foundation, ICE, TOKEN, Transport, VCHAR, class};

/// A decimal number of at most 10 digits that fits 32 bits.
pub(crate) fn decimal_u32(s: &str) -> Option<u32> {
    match number(s.as_bytes()) {
        Some((n, v)) if n == s.len() && n <= 10 => u32::try_from(v).ok(),
        _ => None,
    }
}

/// A `1*DIGIT` run at the start of `bytes`: its length and the value of its
/// first ten digits (the callers reject longer runs by length).
#[inline]
fn number(bytes: &[u8]) -> Option<(usize, u64)> {
    let found: IResult<&[u8], &[u8], ()> = digit1(bytes);
    let (_, digits) = found.ok()?;
    let value = digits.iter().take(10).fold(0u64, |v, b| v * 10 + u64::from(b - b'0'));
    Some((digits.len(), value))
}

/// The line and a position in it.
struct Scan<'a> {
    line: &'a str,
    bytes: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    fn err(&self, field: Field, at: usize, reason: &'static str) -> ParseError {
        ParseError::new(field, at.min(self.bytes.len()), reason)
    }

    /// True at the end of the line or at a space (where a field ends).
    #[inline]
    fn at_boundary(&self) -> bool {
        matches!(self.bytes.get(self.i), None | Some(b' '))
    }

    /// Exactly one space, then something: the start of `field`.
    #[inline]
    fn space(&mut self, field: Field) -> Result<(), ParseError> {
        match (self.bytes.get(self.i), self.bytes.get(self.i + 1)) {
            (Some(b' '), Some(b' ')) => Err(self.err(Field::Separator, self.i + 1, "expected a single space")),
            (Some(b' '), Some(_)) => {
                self.i += 1;
                Ok(())
            }
            (None, _) | (Some(b' '), None) => Err(self.err(field, self.bytes.len(), "missing")),
            (Some(_), _) => Err(self.err(Field::Separator, self.i, "expected a single space")),
        }
    }

    /// Advances over bytes that are all in `classes`; returns where it started.
    #[inline]
    fn run(&mut self, classes: u8) -> usize {
        let start = self.i;
        while let Some(&b) = self.bytes.get(self.i) {
            if class(b) & classes != classes {
                break;
            }
            self.i += 1;
        }
        start
    }

    /// The text from `start` to here (both at ASCII bytes or the ends).
    #[inline]
    fn text(&self, start: usize) -> &'a str {
        self.line.get(start..self.i).unwrap_or_default()
    }

    /// A field of `classes` bytes that must end at a boundary.
    fn field(&mut self, field: Field, classes: u8, bad: &'static str) -> Result<&'a str, ParseError> {
        let start = self.run(classes);
        if self.i == start || !self.at_boundary() {
            return Err(self.err(field, self.i, bad));
        }
        Ok(self.text(start))
    }

    /// A number of at most `max` digits (and at most `limit`) ending at a boundary.
    fn number(&mut self, field: Field, max: usize, limit: u64, too_big: &'static str) -> Result<u64, ParseError> {
        let start = self.i;
        let Some((n, v)) = number(&self.bytes[start.min(self.bytes.len())..]) else {
            return Err(self.err(field, start, "not a decimal number"));
        };
        self.i += n;
        if !self.at_boundary() {
            return Err(self.err(field, start, "not a decimal number"));
        }
        if n > max || v > limit {
            return Err(self.err(field, start, too_big));
        }
        Ok(v)
    }

    fn port(&mut self, field: Field) -> Result<u16, ParseError> {
        self.number(field, 5, 65535, "over 65535").map(|v| v as u16)
    }

    /// Everything up to the next space, read as an address.
    fn address(&mut self, field: Field) -> Result<Address, ParseError> {
        let start = self.i;
        let rest = &self.bytes[start.min(self.bytes.len())..];
        self.i += rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        Address::parse_field(self.text(start), field).map_err(|e| self.err(field, start + e.offset, e.reason))
    }
}

pub(crate) fn candidate(line: &str) -> Result<Candidate, ParseError> {
    let line = line.trim_end_matches([' ', '\t', '\r', '\n']);
    let bytes = line.as_bytes();

    // Prefix: `a=candidate:`, `candidate:`, or none.
    let prefix: IResult<&[u8], _, ()> = (opt(tag(&b"a="[..])), opt(tag(&b"candidate:"[..]))).parse(bytes);
    let (with_a, with_name) = prefix.map_or((false, false), |(_, (a, n))| (a.is_some(), n.is_some()));
    if with_a && !with_name {
        return Err(ParseError::new(Field::Prefix, 2, "expected candidate: after a="));
    }
    let mut s = Scan { line, bytes, i: usize::from(with_a) * 2 + usize::from(with_name) * 10 };

    // foundation = 1*32ice-char
    let start = s.run(ICE);
    if !s.at_boundary() || s.i == start {
        let reason = if s.i == start { "empty or not ice-chars" } else { "not an ice-char" };
        return Err(s.err(Field::Foundation, s.i, reason));
    }
    if s.i - start > Foundation::MAX_LEN {
        return Err(s.err(Field::Foundation, start + Foundation::MAX_LEN, "longer than 32 ice-chars"));
    }
    let foundation = Foundation::from_checked(s.text(start));

    // component-id = 1*3DIGIT, and 1..=256 (RFC 8445 section 5.1.1.1)
    s.space(Field::Component)?;
    let at = s.i;
    let component = s.number(Field::Component, 3, 999, "more than 3 digits")?;
    let component = Component::new(component as u16).map_err(|e| s.err(Field::Component, at, e.reason))?;

    // transport = "UDP" / token
    s.space(Field::Transport)?;
    let transport = Transport::from_checked(s.field(Field::Transport, TOKEN, "not a token character")?);

    // priority = 1*10DIGIT
    s.space(Field::Priority)?;
    let priority = s.number(Field::Priority, 10, u64::from(u32::MAX), "over 32 bits")? as u32;

    s.space(Field::Address)?;
    let address = s.address(Field::Address)?;
    s.space(Field::Port)?;
    let port = s.port(Field::Port)?;

    // cand-type = "typ" SP candidate-types
    s.space(Field::Typ)?;
    let at = s.i;
    if s.field(Field::Typ, TOKEN, "missing typ").ok() != Some("typ") {
        return Err(s.err(Field::Typ, at, "missing typ"));
    }
    s.space(Field::CandidateType)?;
    let kind = CandidateType::from_checked(s.field(Field::CandidateType, TOKEN, "not a token character")?);

    let mut cand = Candidate::new(foundation, component, transport, priority, address, port, kind);

    // [SP rel-addr] [SP rel-port] *(SP cand-extension)
    let mut seen_extension = false;
    while s.i < bytes.len() {
        s.space(Field::Extension)?;
        let name_at = s.i;
        let name = s.field(Field::Extension, TOKEN, "name is not a token")?;
        match name {
            "raddr" | "rport" if seen_extension => {
                return Err(s.err(Field::Extension, name_at, "raddr and rport must come before extensions"));
            }
            "raddr" => {
                if cand.related_address.is_some() || cand.related_port.is_some() {
                    return Err(s.err(Field::RelatedAddress, name_at, "repeated or after rport"));
                }
                s.space(Field::RelatedAddress)?;
                cand.related_address = Some(s.address(Field::RelatedAddress)?);
            }
            "rport" => {
                if cand.related_port.is_some() {
                    return Err(s.err(Field::RelatedPort, name_at, "repeated"));
                }
                s.space(Field::RelatedPort)?;
                cand.related_port = Some(s.port(Field::RelatedPort)?);
            }
            _ => {
                seen_extension = true;
                s.space(Field::Extension)?;
                let value_at = s.i;
                let value = s.field(Field::Extension, VCHAR, "value is not one or more VCHARs")?;
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
        assert_eq!(err("candidate:1 1 udp 1 192.0.2.1 5 typ host generation 12345678901").field, Field::Generation);
        assert_eq!(err("candidate:1 1 udp 1 192.0.2.1 5 typ host generation 4294967296").field, Field::Generation);
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
