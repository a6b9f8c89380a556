//! The RFC 8839 section 5.1 grammar:
//!
//! ```text
//! candidate-attribute = "candidate" ":" foundation SP component-id SP transport SP
//!                       priority SP connection-address SP port SP cand-type
//!                       [SP rel-addr] [SP rel-port] *(SP cand-extension)
//! ```
//!
//! One pass over the line's bytes with an index that stays in a register:
//! each field is a run of one character class (a table lookup per byte),
//! numbers are accumulated as their digits are read, an IPv4 address is read
//! in place (anything else goes to the general address reader), and every
//! separator is exactly one SP. The optional prefix is matched with nom's
//! `tag`. A failure is a [`ParseError`] naming the field and the byte offset
//! where it was found; it is built out of line, only on the failing path.
//! Each byte is looked at a bounded number of times, so the work is linear
//! in the line's length.
//!
//! Nothing is allocated for a line with IP addresses, the usual transport
//! and type tokens, and only typed extensions (an unknown one is stored on
//! the heap), no more than [`Extensions::INLINE`](crate::Extensions::INLINE)
//! of them, with a `ufrag` of at most [`Ufrag::INLINE`](crate::Ufrag::INLINE)
//! bytes: every browser's line.

use std::net::IpAddr;

use nom::bytes::complete::tag;
use nom::combinator::opt;
use nom::{IResult, Parser};

use crate::address::{Address, dotted_quad_prefix};
use crate::candidate::Candidate;
use crate::error::{Field, ParseError};
use crate::extension::{Extension, Ufrag};
use crate::token::{CandidateType, Component, Foundation, ICE, TOKEN, Transport, VCHAR, class};

#[cfg(test)]
mod oracle;

/// The line and a position in it.
struct Scan<'a> {
    line: &'a str,
    bytes: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    #[cold]
    #[inline(never)]
    fn err(&self, field: Field, at: usize, reason: &'static str) -> ParseError {
        ParseError::new(field, at.min(self.bytes.len()), reason)
    }

    /// True at the end of the line or at a space (where a field ends).
    #[inline(always)]
    fn at_boundary(&self) -> bool {
        matches!(self.bytes.get(self.i), None | Some(b' '))
    }

    /// Exactly one space, then something: the start of `field`.
    #[inline(always)]
    fn space(&mut self, field: Field) -> Result<(), ParseError> {
        if let Some(&[b' ', next]) = self.bytes.get(self.i..self.i + 2)
            && next != b' '
        {
            self.i += 1;
            return Ok(());
        }
        Err(self.space_error(field))
    }

    #[cold]
    #[inline(never)]
    fn space_error(&self, field: Field) -> ParseError {
        match (self.bytes.get(self.i), self.bytes.get(self.i + 1)) {
            (Some(b' '), Some(b' ')) => self.err(Field::Separator, self.i + 1, "expected a single space"),
            (None, _) | (Some(b' '), None) => self.err(field, self.bytes.len(), "missing"),
            (Some(_), _) => self.err(Field::Separator, self.i, "expected a single space"),
        }
    }

    /// Advances over bytes of class `c`.
    #[inline(always)]
    fn skip(&mut self, c: u8) {
        while let Some(&b) = self.bytes.get(self.i) {
            if class(b) & c == 0 {
                break;
            }
            self.i += 1;
        }
    }

    /// True, and moves past it, when the field here is exactly `word`: the
    /// common tokens are compared a few bytes at a time instead of being
    /// scanned byte by byte and then matched. Callers fall back to
    /// [`Scan::token`] when it is not, so this never changes what is accepted.
    /// (nom's `tag` here cost 500 more instructions per line: it compares
    /// byte by byte.)
    #[inline(always)]
    fn word(&mut self, word: &[u8]) -> bool {
        let end = self.i + word.len();
        if self.bytes.get(self.i..end) == Some(word) && matches!(self.bytes.get(end), None | Some(b' ')) {
            self.i = end;
            true
        } else {
            false
        }
    }

    /// The text from `start` to here (both at ASCII bytes or the ends).
    #[inline(always)]
    fn text(&self, start: usize) -> &'a str {
        self.line.get(start..self.i).unwrap_or_default()
    }

    /// A non-empty token that ends at a boundary.
    #[inline(always)]
    fn token(&mut self, field: Field, bad: &'static str) -> Result<&'a str, ParseError> {
        let start = self.i;
        self.skip(TOKEN);
        if self.i == start || !self.at_boundary() {
            return Err(self.err(field, self.i, bad));
        }
        Ok(self.text(start))
    }

    /// A number of at most `max` digits (and at most `limit`) ending at a
    /// boundary, accumulated as it is read.
    #[inline(always)]
    fn number(&mut self, field: Field, max: usize, limit: u64, too_big: &'static str) -> Result<u64, ParseError> {
        let start = self.i;
        let mut v = 0u64;
        while let Some(&b) = self.bytes.get(self.i) {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            // Runs longer than `max` are rejected below; the value of such a
            // run is never used, so wrapping is harmless.
            v = v.wrapping_mul(10).wrapping_add(u64::from(d));
            self.i += 1;
        }
        let n = self.i - start;
        if n == 0 || !self.at_boundary() {
            return Err(self.err(field, start, "not a decimal number"));
        }
        if n > max || v > limit {
            return Err(self.err(field, start, too_big));
        }
        Ok(v)
    }

    #[inline(always)]
    fn port(&mut self, field: Field) -> Result<u16, ParseError> {
        self.number(field, 5, 65535, "over 65535").map(|v| v as u16)
    }

    /// An address: IPv4 read in place, anything else by the general reader.
    #[inline(always)]
    fn address(&mut self, field: Field) -> Result<Address, ParseError> {
        let start = self.i;
        if let Some((n, ip)) = dotted_quad_prefix(self.bytes.get(start..).unwrap_or_default()) {
            self.i = start + n;
            if self.at_boundary() {
                return Ok(Address::Ip(IpAddr::V4(ip)));
            }
            self.i = start;
        }
        self.other_address(field)
    }

    /// Everything up to the next space, read as an IPv6 address or a name.
    #[inline(never)]
    fn other_address(&mut self, field: Field) -> Result<Address, ParseError> {
        let start = self.i;
        let rest = self.bytes.get(start..).unwrap_or_default();
        self.i += rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        Address::parse_field(self.text(start), field).map_err(|e| self.err(field, start + e.offset, e.reason))
    }
}

/// An extension attribute name, the common ones recognised without a scan.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Name<'a> {
    Raddr,
    Rport,
    Generation,
    Ufrag,
    NetworkId,
    NetworkCost,
    Other(&'a str),
}

impl<'a> Name<'a> {
    /// The name as written.
    fn as_str(self) -> &'a str {
        match self {
            Name::Raddr => "raddr",
            Name::Rport => "rport",
            Name::Generation => "generation",
            Name::Ufrag => "ufrag",
            Name::NetworkId => "network-id",
            Name::NetworkCost => "network-cost",
            Name::Other(s) => s,
        }
    }
}

impl<'a> Scan<'a> {
    /// `extension-att-value`: one or more VCHARs ending at a boundary.
    #[inline(always)]
    fn value(&mut self) -> Result<&'a str, ParseError> {
        let start = self.i;
        self.skip(VCHAR);
        if self.i == start || !self.at_boundary() {
            return Err(self.err(Field::Extension, self.i, "value is not one or more VCHARs"));
        }
        Ok(self.text(start))
    }

    /// The value of extension `name`, typed when the name has a typed form.
    #[inline(never)]
    fn extension_value(&mut self, name: &str) -> Result<Extension, ParseError> {
        let at = self.i;
        let value = self.value()?;
        Extension::from_pair(name, value, at)
    }
}

/// The line without trailing white space (an SDP line's CRLF).
#[inline(always)]
fn trim_end(line: &str) -> &str {
    let mut end = line.len();
    while end > 0 && matches!(line.as_bytes().get(end - 1), Some(b' ' | b'\t' | b'\r' | b'\n')) {
        end -= 1;
    }
    line.get(..end).unwrap_or(line)
}

pub(crate) fn candidate(line: &str) -> Result<Candidate, ParseError> {
    let line = trim_end(line);
    let bytes = line.as_bytes();

    // Prefix: `a=candidate:`, `candidate:`, or none.
    let prefix: IResult<&[u8], _, ()> = (opt(tag(&b"a="[..])), opt(tag(&b"candidate:"[..]))).parse(bytes);
    let (with_a, with_name) = prefix.map_or((false, false), |(_, (a, n))| (a.is_some(), n.is_some()));
    if with_a && !with_name {
        return Err(ParseError::new(Field::Prefix, 2, "expected candidate: after a="));
    }
    let mut s = Scan { line, bytes, i: usize::from(with_a) * 2 + usize::from(with_name) * 10 };

    // foundation = 1*32ice-char
    let start = s.i;
    s.skip(ICE);
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
    let Ok(component) = Component::new(component as u16) else {
        return Err(s.err(Field::Component, at, "not in 1..=256"));
    };

    // transport = "UDP" / token
    s.space(Field::Transport)?;
    let transport = if s.word(b"udp") {
        Transport::UDP
    } else {
        Transport::from_checked(s.token(Field::Transport, "not a token character")?)
    };

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
    if !s.word(b"typ") {
        return Err(s.err(Field::Typ, at, "missing typ"));
    }
    s.space(Field::CandidateType)?;
    let kind = match s.bytes.get(s.i) {
        Some(b'h') if s.word(b"host") => CandidateType::HOST,
        Some(b's') if s.word(b"srflx") => CandidateType::SRFLX,
        Some(b'p') if s.word(b"prflx") => CandidateType::PRFLX,
        Some(b'r') if s.word(b"relay") => CandidateType::RELAY,
        _ => CandidateType::from_checked(s.token(Field::CandidateType, "not a token character")?),
    };

    // [SP rel-addr] [SP rel-port] *(SP cand-extension)
    let mut cand = Candidate::new(foundation, component, transport, priority, address, port, kind);
    let (related_address, related_port, extensions) =
        (&mut cand.related_address, &mut cand.related_port, &mut cand.extensions);
    while s.i < bytes.len() {
        s.space(Field::Extension)?;
        let name_at = s.i;
        let name = match s.bytes.get(s.i) {
            Some(b'g') if s.word(b"generation") => Name::Generation,
            Some(b'u') if s.word(b"ufrag") => Name::Ufrag,
            Some(b'n') if s.word(b"network-id") => Name::NetworkId,
            Some(b'n') if s.word(b"network-cost") => Name::NetworkCost,
            Some(b'r') if s.word(b"raddr") => Name::Raddr,
            Some(b'r') if s.word(b"rport") => Name::Rport,
            _ => match s.token(Field::Extension, "name is not a token")? {
                "raddr" => Name::Raddr,
                "rport" => Name::Rport,
                other => Name::Other(other),
            },
        };
        match name {
            Name::Raddr | Name::Rport if !extensions.is_empty() => {
                return Err(s.err(Field::Extension, name_at, "raddr and rport must come before extensions"));
            }
            Name::Raddr => {
                if related_address.is_some() || related_port.is_some() {
                    return Err(s.err(Field::RelatedAddress, name_at, "repeated or after rport"));
                }
                s.space(Field::RelatedAddress)?;
                *related_address = Some(s.address(Field::RelatedAddress)?);
            }
            Name::Rport => {
                if related_port.is_some() {
                    return Err(s.err(Field::RelatedPort, name_at, "repeated"));
                }
                s.space(Field::RelatedPort)?;
                *related_port = Some(s.port(Field::RelatedPort)?);
            }
            Name::Generation | Name::NetworkId | Name::NetworkCost => {
                s.space(Field::Extension)?;
                let value_at = s.i;
                let ext = match s.number(Field::Extension, 10, u64::from(u32::MAX), "") {
                    Ok(n) if name == Name::Generation => Extension::Generation(n as u32),
                    Ok(n) if name == Name::NetworkId => Extension::NetworkId(n as u32),
                    Ok(n) => Extension::NetworkCost(n as u32),
                    Err(_) => {
                        // Not a 32-bit number: the general path names the fault.
                        s.i = value_at;
                        s.extension_value(name.as_str())?
                    }
                };
                extensions.push(ext);
            }
            Name::Ufrag => {
                s.space(Field::Extension)?;
                let value = s.value()?;
                extensions.push(Extension::Ufrag(Ufrag::from_checked(value)));
            }
            Name::Other(name) => {
                s.space(Field::Extension)?;
                let ext = s.extension_value(name)?;
                extensions.push(ext);
            }
        }
    }
    Ok(cand)
}

#[cfg(test)]
mod tests {
    use proptest::arbitrary::Arbitrary;
    use proptest::prelude::{BoxedStrategy, Strategy, prop_oneof};

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

    /// Lines as real stacks write them, the seeds of the differential tests.
    const SEEDS: &[&str] = &[
        "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 10.0.0.2 rport 46154 generation 0 ufrag EEtu network-id 3 network-cost 10",
        "a=candidate:1 1 UDP 2122252543 2001:db8::7 53197 typ host\r\n",
        "candidate:2 1 tcp 1518280447 1f1c4b3d-6e5a-4d2e-9c3f-000000000000.local 9 typ host tcptype active generation 0 ufrag a3f1 network-id 1",
        "1 1 udp 1694498815 192.0.2.99 3478 typ srflx raddr 0.0.0.0 rport 0",
        "candidate:3 2 UDP 41885694 relay.example.org 55000 typ relay raddr 198.51.100.2 rport 50000 x-unknown some!thing ufrag 0123456789abcdef0123456789",
    ];

    /// Both parsers give the same value or the same error.
    fn agree(line: &str) -> Result<(), proptest::test_runner::TestCaseError> {
        proptest::prop_assert_eq!(candidate(line), oracle::candidate(line), "line {:?}", line);
        Ok(())
    }

    #[test]
    fn seeds_agree_with_the_oracle() {
        for line in SEEDS {
            assert!(candidate(line).is_ok(), "{line}");
            agree(line).unwrap();
        }
    }

    /// Pieces that make lines near the edges of the grammar.
    #[rustfmt::skip]
    const PIECES: &[&str] = &[
        "candidate:1", "a=candidate:x", "1", "0", "256", "257", "0001", "udp", "UDP", "Tcp", "u/p", "4294967295",
        "4294967296", "12345678901", "192.0.2.1", "1.2.3.4.5", "01.2.3.4", "255.255.255.255", "1.2.3.4a", "::1",
        "2001:db8::1", "fe80::1%eth0", "x.local", "a..b", "65535", "65536", "5x", "typ", "host", "srflx", "raddr",
        "rport", "generation", "ufrag", "network-id", "network-cost", "tcptype", "so", "x-foo", "é", "\t", "",
        "udpx", "typx", "hosts", "srflx2", "raddr1", "rport-", "generation0", "ufrag+", "network-idx",
        "network-costs",
    ];

    /// Mostly one of `valid`, one time in ten one of `invalid`.
    fn pick(valid: &'static [&'static str], invalid: &'static [&'static str]) -> BoxedStrategy<&'static str> {
        prop_oneof![9 => proptest::sample::select(valid), 1 => proptest::sample::select(invalid)].boxed()
    }

    const ADDRESSES: &[&str] =
        &["192.0.2.1", "0.0.0.0", "255.255.255.255", "2001:db8::1", "::1", "::ffff:1.2.3.4", "x.local", "host.example"];
    const BAD_ADDRESSES: &[&str] = &["256.1.1.1", "01.2.3.4", "1.2.3.4a", "1.2.3", "1.2.3.4.", "a..b", "-", ""];
    const PORTS: &[&str] = &["0", "5000", "65535", "00009"];
    const BAD_PORTS: &[&str] = &["65536", "123456", "5x", ""];
    #[rustfmt::skip]
    const NAMES: &[&str] = &[
        "raddr", "rport", "generation", "ufrag", "network-id", "network-cost", "tcptype", "x-foo", "generationx",
        "ufra",
    ];
    const VALUES: &[&str] = &["0", "10", "4294967295", "007", "EEtu", "active", "so", "x!y", "aaaaaaaaaaaaaaaaaaaaaaa"];
    const BAD_VALUES: &[&str] = &["4294967296", "12345678901", "up", "", "\u{e9}", "1x"];

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(3000))]

        /// Seed lines with bytes replaced, inserted, removed or cut.
        #[test]
        fn mutated_lines_agree_with_the_oracle(
            seed in proptest::sample::select(SEEDS),
            edits in proptest::collection::vec((0usize..4, proptest::sample::Index::arbitrary(), "[ -~]|[\t\u{e9}]"), 1..4),
        ) {
            let mut line = seed.to_string();
            for (op, at, with) in edits {
                let mut i = at.index(line.len() + 1);
                while !line.is_char_boundary(i) {
                    i -= 1;
                }
                match op {
                    0 => line.insert_str(i, &with),
                    1 => line.truncate(i),
                    2 if i < line.len() => {
                        line.remove(i);
                    }
                    _ if i < line.len() => {
                        line.remove(i);
                        line.insert_str(i, &with);
                    }
                    _ => {}
                }
            }
            agree(&line)?;
        }

        /// Lines put together from pieces near the edges of the grammar.
        #[test]
        fn assembled_lines_agree_with_the_oracle(
            pieces in proptest::collection::vec(proptest::sample::select(PIECES), 0..16),
            double in proptest::option::of(0usize..16),
        ) {
            let mut line = String::new();
            for (i, p) in pieces.iter().enumerate() {
                if i > 0 {
                    line.push_str(if Some(i) == double { "  " } else { " " });
                }
                line.push_str(p);
            }
            agree(&line)?;
        }

        /// Lines built field by field, each field mostly valid and sometimes
        /// just outside the grammar, so that most get deep into the line.
        #[test]
        fn fielded_lines_agree_with_the_oracle(
            head in (
                pick(&["", "candidate:", "a=candidate:"], &["a=", "candidate;"]),
                pick(&["1", "842163049", "a+/Z", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"], &["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "", "a-b"]),
                pick(&["1", "2", "256", "99"], &["0", "257", "0001", "x"]),
                pick(&["udp", "UDP", "tcp", "Tcp", "udpx"], &["u/p", "ud:"]),
                pick(&["1", "2130706431", "4294967295", "0"], &["4294967296", "12345678901", "x"]),
            ),
            mid in (
                pick(ADDRESSES, BAD_ADDRESSES),
                pick(PORTS, BAD_PORTS),
                pick(&["typ"], &["typx", "TYP", "ty"]),
                pick(&["host", "srflx", "prflx", "relay", "HOST", "hosts", "x-y"], &["relay!", ""]),
            ),
            tail in proptest::collection::vec(
                (pick(NAMES, &["Raddr", "a/b", ""]), pick(ADDRESSES, BAD_ADDRESSES), pick(PORTS, BAD_PORTS), pick(VALUES, BAD_VALUES)),
                0..7,
            ),
            odd in proptest::option::weighted(0.1, (0usize..20, proptest::sample::select(&["", "  ", "\t", " x"][..]))),
        ) {
            let mut fields = vec![head.1, head.2, head.3, head.4, mid.0, mid.1, mid.2, mid.3];
            for (name, addr, port, value) in &tail {
                fields.push(name);
                fields.push(match *name {
                    "raddr" => addr,
                    "rport" => port,
                    _ => value,
                });
            }
            let mut line = head.0.to_string();
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    line.push_str(match odd { Some((at, sep)) if at == i => sep, _ => " " });
                }
                line.push_str(f);
            }
            agree(&line)?;
        }

        /// Any text at all.
        #[test]
        fn any_text_agrees_with_the_oracle(line in "\\PC{0,120}") {
            agree(&line)?;
        }
    }

    #[test]
    fn display_of_error() {
        let e = err("candidate:1 1 udp 1 192.0.2.1 99999 typ host");
        assert_eq!(e.to_string(), "port: over 65535 at offset 30");
    }
}
