//! The RFC 8839 section 5.1 grammar, with nom:
//!
//! ```text
//! candidate-attribute = "candidate" ":" foundation SP component-id SP transport SP
//!                       priority SP connection-address SP port SP cand-type
//!                       [SP rel-addr] [SP rel-port] *(SP cand-extension)
//! ```
//!
//! Every separator is a single SP, so the line is cut at spaces once (an empty
//! piece is a doubled space) and each piece is checked by a nom parser over its
//! bytes. nom's error type here is `()`: a failure is turned into a
//! [`ParseError`] naming the field and the byte offset where it was found. Each
//! byte is looked at a bounded number of times, so the work is linear.

use nom::Parser;
use nom::bytes::complete::{tag, take_while1};
use nom::character::complete::digit1;
use nom::combinator::opt;

use crate::address::Address;
use crate::candidate::{Candidate, Extension};
use crate::error::{Field, ParseError};
use crate::token::{
    CandidateType, Component, DIGIT, Foundation, ICE, TOKEN, Transport, VCHAR, class, is_ice_byte, is_token_byte,
};

/// A decimal number of at most 10 digits that fits 32 bits.
pub(crate) fn decimal_u32(s: &str) -> Option<u32> {
    match number(s.as_bytes(), 10)? {
        (n, v) if n <= 10 => u32::try_from(v).ok(),
        _ => None,
    }
}

/// `1*DIGIT` filling the whole piece: its digit count and value. More than
/// `max_digits` digits gives the count but no value.
fn number(piece: &[u8], max_digits: usize) -> Option<(usize, u64)> {
    let (rest, digits) = digit1::<&[u8], ()>(piece).ok()?;
    if !rest.is_empty() {
        return None;
    }
    // At most 10 digits are summed, so u64 cannot overflow.
    let value = digits.iter().take(max_digits).fold(0u64, |v, b| v * 10 + u64::from(b - b'0'));
    Some((digits.len(), value))
}

/// The length of the longest prefix of `piece` made of bytes accepted by `class`.
fn run_of(piece: &[u8], class: fn(u8) -> bool) -> usize {
    take_while1::<_, &[u8], ()>(class).parse(piece).map_or(0, |(_, run)| run.len())
}

/// One field of the line: where it starts, its text, and the character
/// classes every one of its bytes belongs to (found in the same pass that
/// looks for the next space).
#[derive(Clone, Copy)]
struct Piece<'a> {
    at: usize,
    text: &'a str,
    classes: u8,
}

impl Piece<'_> {
    fn all(&self, classes: u8) -> bool {
        self.classes & classes == classes
    }

    /// The value of an all-digit piece of at most `max` digits.
    fn small_number(&self, max: usize) -> Option<u64> {
        if !self.all(DIGIT) || self.text.len() > max {
            return None;
        }
        number(self.text.as_bytes(), max).map(|(_, v)| v)
    }
}

/// The line cut at spaces, with byte offsets.
struct Pieces<'a> {
    line: &'a str,
    at: usize,
    done: bool,
}

impl<'a> Pieces<'a> {
    /// The next piece, or `missing` for `field` at the end.
    fn next(&mut self, field: Field) -> Result<Piece<'a>, ParseError> {
        if self.done {
            return Err(ParseError::new(field, self.line.len(), "missing"));
        }
        let start = self.at;
        let rest = self.line.as_bytes().get(start..).unwrap_or_default();
        let mut classes = ICE | TOKEN | DIGIT | VCHAR;
        let mut end = self.line.len();
        self.done = true;
        for (i, &b) in rest.iter().enumerate() {
            if b == b' ' {
                end = start + i;
                self.at = end + 1;
                self.done = false;
                break;
            }
            classes &= class(b);
        }
        if end == start {
            return Err(ParseError::new(Field::Separator, start, "expected a single space"));
        }
        // Cut at an ASCII space (or the end), so always on a char boundary.
        let text = self.line.get(start..end).unwrap_or_default();
        Ok(Piece { at: start, text, classes })
    }

    fn port(&mut self, field: Field) -> Result<u16, ParseError> {
        let piece = self.next(field)?;
        match piece.small_number(5) {
            Some(v) if v <= 65535 => Ok(v as u16),
            Some(_) => Err(ParseError::new(field, piece.at, "over 65535")),
            None if piece.all(DIGIT) => Err(ParseError::new(field, piece.at, "over 65535")),
            None => Err(ParseError::new(field, piece.at, "not a decimal number")),
        }
    }

    fn address(&mut self, field: Field) -> Result<Address, ParseError> {
        let piece = self.next(field)?;
        Address::parse_field(piece.text, field).map_err(|e| ParseError::new(field, piece.at + e.offset, e.reason))
    }
}

pub(crate) fn candidate(line: &str) -> Result<Candidate, ParseError> {
    let line = line.trim_end_matches([' ', '\t', '\r', '\n']);

    // Prefix: `a=candidate:`, `candidate:`, or none.
    let prefix = (opt(tag::<_, &[u8], ()>(&b"a="[..])), opt(tag(&b"candidate:"[..]))).parse(line.as_bytes());
    let (with_a, with_name) = prefix.map_or((false, false), |(_, (a, n))| (a.is_some(), n.is_some()));
    if with_a && !with_name {
        return Err(ParseError::new(Field::Prefix, 2, "expected candidate: after a="));
    }
    let start = usize::from(with_a) * 2 + usize::from(with_name) * 10;
    let mut p = Pieces { line, at: start, done: false };

    // foundation = 1*32ice-char
    let f = match p.next(Field::Foundation) {
        Err(e) if e.field == Field::Separator || e.reason == "missing" => {
            return Err(ParseError::new(Field::Foundation, e.offset, "empty or not ice-chars"));
        }
        other => other?,
    };
    if !f.all(ICE) {
        let run = run_of(f.text.as_bytes(), is_ice_byte);
        let reason = if run == 0 { "empty or not ice-chars" } else { "not an ice-char" };
        return Err(ParseError::new(Field::Foundation, f.at + run, reason));
    }
    if f.text.len() > Foundation::MAX_LEN {
        return Err(ParseError::new(Field::Foundation, f.at + Foundation::MAX_LEN, "longer than 32 ice-chars"));
    }
    let foundation = Foundation::new(f.text)?;

    // component-id = 1*3DIGIT, and 1..=256 (RFC 8445 section 5.1.1.1)
    let piece = p.next(Field::Component)?;
    let component = match piece.small_number(3) {
        Some(v) => Component::new(v as u16).map_err(|e| ParseError::new(Field::Component, piece.at, e.reason))?,
        None if piece.all(DIGIT) => return Err(ParseError::new(Field::Component, piece.at, "more than 3 digits")),
        None => return Err(ParseError::new(Field::Component, piece.at, "not a decimal number")),
    };

    // transport = "UDP" / token
    let piece = p.next(Field::Transport)?;
    let transport =
        Transport::new(piece.text).map_err(|e| ParseError::new(Field::Transport, piece.at + e.offset, e.reason))?;

    // priority = 1*10DIGIT
    let piece = p.next(Field::Priority)?;
    let priority = match piece.small_number(10) {
        Some(v) if v <= u64::from(u32::MAX) => v as u32,
        Some(_) => return Err(ParseError::new(Field::Priority, piece.at, "over 32 bits")),
        None if piece.all(DIGIT) => return Err(ParseError::new(Field::Priority, piece.at, "over 32 bits")),
        None => return Err(ParseError::new(Field::Priority, piece.at, "not a decimal number")),
    };

    let address = p.address(Field::Address)?;
    let port = p.port(Field::Port)?;

    // cand-type = "typ" SP candidate-types
    let piece = p.next(Field::Typ)?;
    if piece.text != "typ" {
        return Err(ParseError::new(Field::Typ, piece.at, "missing typ"));
    }
    let piece = p.next(Field::CandidateType)?;
    let kind = CandidateType::new(piece.text)
        .map_err(|e| ParseError::new(Field::CandidateType, piece.at + e.offset, e.reason))?;

    let mut cand = Candidate::new(foundation, component, transport, priority, address, port, kind);

    // [SP rel-addr] [SP rel-port] *(SP cand-extension)
    let mut seen_extension = false;
    while !p.done {
        let piece = p.next(Field::Extension)?;
        if !piece.all(TOKEN) {
            let run = run_of(piece.text.as_bytes(), is_token_byte);
            return Err(ParseError::new(Field::Extension, piece.at + run, "name is not a token"));
        }
        let (name_at, name) = (piece.at, piece.text);
        match name {
            "raddr" | "rport" if seen_extension => {
                return Err(ParseError::new(Field::Extension, name_at, "raddr and rport must come before extensions"));
            }
            "raddr" => {
                if cand.related_address.is_some() || cand.related_port.is_some() {
                    return Err(ParseError::new(Field::RelatedAddress, name_at, "repeated or after rport"));
                }
                cand.related_address = Some(p.address(Field::RelatedAddress)?);
            }
            "rport" => {
                if cand.related_port.is_some() {
                    return Err(ParseError::new(Field::RelatedPort, name_at, "repeated"));
                }
                cand.related_port = Some(p.port(Field::RelatedPort)?);
            }
            _ => {
                seen_extension = true;
                let value = p.next(Field::Extension)?;
                if !value.all(VCHAR) {
                    return Err(ParseError::new(Field::Extension, value.at, "value is not one or more VCHARs"));
                }
                cand.extensions.push(Extension::from_pair(name, value.text, value.at)?);
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
