//! The parser this crate shipped before the single-pass one in `parse.rs`:
//! each field is read, then checked, with nom's `digit1` for numbers and
//! `Address::parse_field` for addresses. It is kept only as a test oracle: the
//! property tests in `parse.rs` check that both accept the same lines with
//! the same values and reject the same lines with the same error.

use nom::bytes::complete::tag;
use nom::character::complete::digit1;
use nom::combinator::opt;
use nom::{IResult, Parser};

use crate::address::Address;
use crate::candidate::Candidate;
use crate::error::{Field, ParseError};
use crate::extension::Extension;
use crate::token::{CandidateType, Component, Foundation, ICE, TOKEN, Transport, VCHAR, class};

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
