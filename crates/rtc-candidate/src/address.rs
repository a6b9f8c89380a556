//! The connection address: an IP address or a host name.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use crate::error::{Field, ParseError};

/// A candidate's connection (or related) address.
///
/// RFC 8839 allows an IPv4 or IPv6 address or a fully qualified domain name;
/// browsers hide host addresses behind mDNS names (`<uuid>.local`), which are
/// kept as their own kind because they need an mDNS lookup, not DNS.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Address {
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A multicast DNS name ending in `.local`.
    Mdns(String),
    /// Any other domain name.
    Fqdn(String),
}

/// An IPv4 address in dotted-quad form at the start of `s`: four decimal
/// octets, 0 to 255, without leading zeros (which some stacks read as octal),
/// exactly as the standard library accepts them. Returns its length and the
/// address, or `None` when `s` does not start with one or the digits and dots
/// go on after it.
#[inline(always)]
pub(crate) fn dotted_quad_prefix(s: &[u8]) -> Option<(usize, Ipv4Addr)> {
    let mut octets = [0u8; 4];
    let mut i = 0;
    for (k, octet) in octets.iter_mut().enumerate() {
        if k > 0 {
            if s.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let first = s.get(i)?.wrapping_sub(b'0');
        if first > 9 {
            return None;
        }
        i += 1;
        let mut value = u16::from(first);
        for _ in 0..2 {
            let Some(d) = s.get(i).map(|b| b.wrapping_sub(b'0')).filter(|d| *d <= 9) else { break };
            if first == 0 {
                return None;
            }
            value = value * 10 + u16::from(d);
            i += 1;
        }
        *octet = u8::try_from(value).ok()?;
    }
    match s.get(i) {
        Some(b) if b.is_ascii_digit() || *b == b'.' => None,
        _ => Some((i, Ipv4Addr::from(octets))),
    }
}

/// `s` is exactly an IPv4 address in dotted-quad form.
fn dotted_quad(s: &[u8]) -> Option<Ipv4Addr> {
    dotted_quad_prefix(s).and_then(|(n, ip)| (n == s.len()).then_some(ip))
}

/// RFC 1035 limit on a domain name's length.
const MAX_NAME: usize = 253;

impl Address {
    /// Parses an address as it appears in a candidate line. `field` says which
    /// field it is for error messages.
    pub(crate) fn parse_field(s: &str, field: Field) -> Result<Self, ParseError> {
        if s.is_empty() {
            return Err(ParseError::new(field, 0, "empty"));
        }
        if let Some(a) = dotted_quad(s.as_bytes()) {
            return Ok(Address::Ip(IpAddr::V4(a)));
        }
        if s.contains(':') {
            return s
                .parse()
                .map(|a| Address::Ip(IpAddr::V6(a)))
                .map_err(|_| ParseError::new(field, 0, "not a valid IPv6 address"));
        }
        if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            // A name whose labels are all digits would be an IPv4 address.
            return dotted_quad(s.as_bytes()).map(|a| Address::Ip(IpAddr::V4(a))).ok_or(ParseError::new(
                field,
                0,
                "not a valid IPv4 address",
            ));
        }
        if s.len() > MAX_NAME {
            return Err(ParseError::new(field, MAX_NAME, "host name longer than 253 characters"));
        }
        let mut start = 0;
        for label in s.split('.') {
            if label.is_empty() && start + label.len() != s.len() {
                return Err(ParseError::new(field, start, "empty label in host name"));
            }
            if label.len() > 63 {
                return Err(ParseError::new(field, start, "host name label longer than 63"));
            }
            if let Some(pos) = label.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')) {
                return Err(ParseError::new(field, start + pos, "not a host name character"));
            }
            start += label.len() + 1;
        }
        let trimmed = s.strip_suffix('.').unwrap_or(s);
        let is_mdns = trimmed.len() > 6
            && trimmed.is_char_boundary(trimmed.len() - 6)
            && trimmed[trimmed.len() - 6..].eq_ignore_ascii_case(".local");
        Ok(if is_mdns { Address::Mdns(s.to_owned()) } else { Address::Fqdn(s.to_owned()) })
    }

    /// The IP address, when this is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Address::Ip(ip) => Some(*ip),
            _ => None,
        }
    }

    /// True for an mDNS `.local` name.
    pub fn is_mdns(&self) -> bool {
        matches!(self, Address::Mdns(_))
    }
}

impl From<IpAddr> for Address {
    fn from(ip: IpAddr) -> Self {
        Address::Ip(ip)
    }
}

impl std::str::FromStr for Address {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Address::parse_field(s, Field::Address)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Ip(ip) => fmt::Display::fmt(ip, f),
            Address::Mdns(n) | Address::Fqdn(n) => f.write_str(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Address, ParseError> {
        s.parse()
    }

    #[test]
    fn kinds() {
        assert_eq!(parse("192.0.2.1").unwrap(), Address::Ip("192.0.2.1".parse().unwrap()));
        assert_eq!(parse("2001:db8::1").unwrap(), Address::Ip("2001:db8::1".parse().unwrap()));
        assert!(parse("1f1c4b3d-6e5a-4d2e-9c3f-000000000000.local").unwrap().is_mdns());
        assert!(parse("host.LOCAL").unwrap().is_mdns());
        assert_eq!(parse("stun.example.org").unwrap(), Address::Fqdn("stun.example.org".into()));
    }

    #[test]
    fn rejects() {
        assert!(parse("").is_err());
        assert!(parse("1.2.3.256").is_err());
        assert!(parse("1.2.3").is_err());
        assert!(parse("1.2.3.4.5").is_err());
        assert!(parse("01.2.3.4").is_err());
        assert!(parse("1..3.4").is_err());
        assert_eq!(parse("0.0.0.0").unwrap(), Address::Ip("0.0.0.0".parse().unwrap()));
        assert_eq!(parse("255.255.255.255").unwrap(), Address::Ip("255.255.255.255".parse().unwrap()));
        assert!(parse("2001:db8:::1").is_err());
        assert!(parse("a..b").is_err());
        assert!(parse("a b").is_err());
        assert!(parse(&"a".repeat(64)).is_err());
        assert!(parse(&"a.".repeat(130)).is_err());
    }
}

#[cfg(test)]
mod quad_props {
    use proptest::prelude::*;

    proptest! {
        /// The fast IPv4 reader agrees with the standard library on dotted text.
        #[test]
        fn dotted_quad_matches_std(s in "[0-9.]{0,20}") {
            prop_assert_eq!(super::dotted_quad(s.as_bytes()), s.parse().ok());
        }

        /// A dotted quad followed by anything but a digit or a dot is found
        /// with its length; the standard library agrees on the address.
        #[test]
        fn dotted_quad_prefix_stops_at_the_end(s in "[0-9.]{0,20}", tail in "([ :a-z/][ -~]{0,5})?") {
            let line = format!("{s}{tail}");
            let want = s.parse::<std::net::Ipv4Addr>().ok().map(|ip| (s.len(), ip));
            prop_assert_eq!(super::dotted_quad_prefix(line.as_bytes()), want);
        }
    }
}
