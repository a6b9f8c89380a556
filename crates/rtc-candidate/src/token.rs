//! Small validated values: foundation, component, and the transport and type
//! tokens (code points kept with their spelling so unknown values round-trip).

use std::fmt;
use std::hash::{Hash, Hasher};

use crate::error::{Field, ParseError};

pub(crate) const ICE: u8 = 1;
pub(crate) const TOKEN: u8 = 2;
pub(crate) const DIGIT: u8 = 4;
/// `VCHAR` (visible ASCII, 0x21-0x7E).
pub(crate) const VCHAR: u8 = 8;

/// Character classes of the RFC 8839 grammar, one lookup per byte.
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() {
            t[b] = ICE | TOKEN;
        }
        if c.is_ascii_digit() {
            t[b] |= DIGIT;
        }
        if c.is_ascii_graphic() {
            t[b] |= VCHAR;
        }
        b += 1;
    }
    t[b'+' as usize] |= ICE | TOKEN;
    t[b'/' as usize] |= ICE;
    let punct = b"-.!%*_`'~";
    let mut i = 0;
    while i < punct.len() {
        t[punct[i] as usize] |= TOKEN;
        i += 1;
    }
    t
};

/// The classes of one byte (`ICE | TOKEN | DIGIT | VCHAR` bits).
pub(crate) fn class(b: u8) -> u8 {
    CLASS[usize::from(b)]
}

/// `ice-char = ALPHA / DIGIT / "+" / "/"` (RFC 8839 section 5.1).
pub(crate) fn is_ice_byte(b: u8) -> bool {
    CLASS[usize::from(b)] & ICE != 0
}

/// `token` characters of RFC 3261 section 25.1, used by RFC 8839 for the
/// transport, candidate type and extension names.
pub(crate) fn is_token_byte(b: u8) -> bool {
    CLASS[usize::from(b)] & TOKEN != 0
}

/// A candidate foundation: 1 to 32 ice-chars, stored inline (no allocation).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Foundation {
    len: u8,
    bytes: [u8; Foundation::MAX_LEN],
}

impl Foundation {
    /// The longest foundation RFC 8839 allows.
    pub const MAX_LEN: usize = 32;

    /// Checks and stores a foundation.
    pub fn new(s: &str) -> Result<Self, ParseError> {
        if s.is_empty() {
            return Err(ParseError::new(Field::Foundation, 0, "empty"));
        }
        if let Some(pos) = s.bytes().position(|b| !is_ice_byte(b)) {
            return Err(ParseError::new(Field::Foundation, pos, "not an ice-char"));
        }
        if s.len() > Self::MAX_LEN {
            return Err(ParseError::new(Field::Foundation, Self::MAX_LEN, "longer than 32 ice-chars"));
        }
        let mut bytes = [0; Self::MAX_LEN];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        Ok(Self { len: s.len() as u8, bytes })
    }

    /// A foundation from text the parser has already checked (1 to 32
    /// ice-chars); longer text is cut, never a panic.
    pub(crate) fn from_checked(s: &str) -> Self {
        let mut bytes = [0; Self::MAX_LEN];
        let len = s.len().min(Self::MAX_LEN);
        bytes[..len].copy_from_slice(&s.as_bytes()[..len]);
        Self { len: len as u8, bytes }
    }

    /// A foundation made from a number, written in decimal (as browsers do).
    pub fn from_u32(n: u32) -> Self {
        let mut buf = [0u8; 10];
        let mut i = buf.len();
        let mut v = n;
        loop {
            i -= 1;
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        let mut bytes = [0; Self::MAX_LEN];
        let digits = &buf[i..];
        bytes[..digits.len()].copy_from_slice(digits);
        Self { len: digits.len() as u8, bytes }
    }

    /// The foundation as text.
    pub fn as_str(&self) -> &str {
        // Only ice-chars (ASCII) are ever stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl fmt::Display for Foundation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Foundation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Foundation({:?})", self.as_str())
    }
}

impl std::str::FromStr for Foundation {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Self::new(s)
    }
}

/// A component ID, 1 to 256 (RFC 8445 section 5.1.1; RTP is 1, RTCP is 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Component(u16);

impl Component {
    /// Component 1, RTP (or everything, when RTP and RTCP are multiplexed).
    pub const RTP: Self = Self(1);
    /// Component 2, RTCP.
    pub const RTCP: Self = Self(2);

    /// A component ID when `id` is in 1..=256.
    pub fn new(id: u16) -> Result<Self, ParseError> {
        if (1..=256).contains(&id) { Ok(Self(id)) } else { Err(ParseError::new(Field::Component, 0, "not in 1..=256")) }
    }

    /// The numeric ID.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A token from a fixed vocabulary, kept as it was spelled: the vocabulary word
/// in lower case, the same in upper case (as Firefox and libnice write `UDP`), or
/// any other token. Comparison ignores ASCII case, as ABNF literals do.
#[derive(Clone)]
enum Spelled {
    Lower(u8),
    Upper(u8),
    Other(Box<str>),
}

impl Spelled {
    fn from_token(token: &str, lower: &[&str], upper: &[&str]) -> Self {
        if let Some(i) = lower.iter().position(|w| *w == token) {
            Spelled::Lower(i as u8)
        } else if let Some(i) = upper.iter().position(|w| *w == token) {
            Spelled::Upper(i as u8)
        } else {
            Spelled::Other(token.into())
        }
    }

    fn as_str<'a>(&'a self, lower: &[&'static str], upper: &[&'static str]) -> &'a str {
        match self {
            Spelled::Lower(i) => lower[usize::from(*i)],
            Spelled::Upper(i) => upper[usize::from(*i)],
            Spelled::Other(s) => s,
        }
    }

    /// Index in the vocabulary, whatever the spelling.
    fn word(&self, lower: &[&str]) -> Option<usize> {
        match self {
            Spelled::Lower(i) | Spelled::Upper(i) => Some(usize::from(*i)),
            Spelled::Other(s) => lower.iter().position(|w| w.eq_ignore_ascii_case(s)),
        }
    }
}

fn check_token(s: &str, field: Field) -> Result<(), ParseError> {
    if s.is_empty() {
        return Err(ParseError::new(field, 0, "empty"));
    }
    match s.bytes().position(|b| !is_token_byte(b)) {
        Some(pos) => Err(ParseError::new(field, pos, "not a token character")),
        None => Ok(()),
    }
}

fn hash_folded<H: Hasher>(s: &str, state: &mut H) {
    for b in s.bytes() {
        state.write_u8(b.to_ascii_lowercase());
    }
    state.write_u8(0xff);
}

macro_rules! spelled_token {
    (
        $(#[$meta:meta])* $name:ident, $kind:ident, $field:expr,
        [$($(#[$vmeta:meta])* $konst:ident, $variant:ident, $idx:literal, $lower:literal, $upper:literal;)*]
    ) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name(Spelled);

        #[allow(clippy::enum_variant_names)]
        #[doc = concat!("What a [`", stringify!($name), "`] means, ignoring its spelling.")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $kind {
            $($(#[$vmeta])* $variant,)*
            /// A token this crate has no meaning for; it is kept as written.
            Other,
        }

        impl $name {
            const LOWER: &'static [&'static str] = &[$($lower),*];
            const UPPER: &'static [&'static str] = &[$($upper),*];
            const KINDS: &'static [$kind] = &[$($kind::$variant),*];
            $(
                $(#[$vmeta])*
                pub const $konst: Self = Self(Spelled::Lower($idx));
            )*

            /// Checks that `token` is an RFC 3261 token and keeps its spelling.
            pub fn new(token: &str) -> Result<Self, ParseError> {
                check_token(token, $field)?;
                Ok(Self::from_checked(token))
            }

            /// From text the parser has already checked to be a token.
            pub(crate) fn from_checked(token: &str) -> Self {
                Self(Spelled::from_token(token, Self::LOWER, Self::UPPER))
            }

            /// The token as written.
            pub fn as_str(&self) -> &str {
                self.0.as_str(Self::LOWER, Self::UPPER)
            }

            /// Its meaning, with ASCII case ignored.
            pub fn kind(&self) -> $kind {
                self.0.word(Self::LOWER).map_or($kind::Other, |i| Self::KINDS[i])
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.as_str().eq_ignore_ascii_case(other.as_str())
            }
        }
        impl Eq for $name {}
        impl Hash for $name {
            fn hash<H: Hasher>(&self, state: &mut H) {
                hash_folded(self.as_str(), state)
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.as_str())
            }
        }
        impl std::str::FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, ParseError> {
                Self::new(s)
            }
        }
    };
}

spelled_token!(
    /// The transport of a candidate: `udp`, `tcp` (RFC 6544), or another token.
    /// The spelling is kept (`UDP` stays `UDP`); equality ignores ASCII case.
    Transport, TransportKind, Field::Transport,
    [
        /// UDP.
        UDP, Udp, 0, "udp", "UDP";
        /// TCP (RFC 6544).
        TCP, Tcp, 1, "tcp", "TCP";
    ]
);

spelled_token!(
    /// The candidate type after `typ`: host, srflx, prflx, relay, or another token.
    CandidateType, CandidateKind, Field::CandidateType,
    [
        /// A host candidate (`host`).
        HOST, Host, 0, "host", "HOST";
        /// A server-reflexive candidate (`srflx`).
        SRFLX, ServerReflexive, 1, "srflx", "SRFLX";
        /// A peer-reflexive candidate (`prflx`).
        PRFLX, PeerReflexive, 2, "prflx", "PRFLX";
        /// A relayed candidate (`relay`).
        RELAY, Relayed, 3, "relay", "RELAY";
    ]
);

#[cfg(test)]
mod tests {
    use super::*;

    /// The class table agrees with the RFC 8839 / RFC 3261 / RFC 5234 definitions.
    #[test]
    fn class_table() {
        for b in 0..=255u8 {
            let c = b as char;
            let ice = c.is_ascii_alphanumeric() || c == '+' || c == '/';
            let token = c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c);
            assert_eq!(class(b) & ICE != 0, ice, "ice {b}");
            assert_eq!(class(b) & TOKEN != 0, token, "token {b}");
            assert_eq!(class(b) & DIGIT != 0, c.is_ascii_digit(), "digit {b}");
            assert_eq!(class(b) & VCHAR != 0, (0x21..=0x7e).contains(&b), "vchar {b}");
        }
    }

    #[test]
    fn foundation_limits() {
        assert!(Foundation::new("").is_err());
        assert!(Foundation::new(&"a".repeat(32)).is_ok());
        assert_eq!(Foundation::new(&"a".repeat(33)).unwrap_err().reason, "longer than 32 ice-chars");
        assert_eq!(Foundation::new("ab-c").unwrap_err().offset, 2);
        assert_eq!(Foundation::new("a+/Z9").unwrap().as_str(), "a+/Z9");
        assert_eq!(Foundation::from_u32(0).as_str(), "0");
        assert_eq!(Foundation::from_u32(u32::MAX).as_str(), "4294967295");
    }

    #[test]
    fn component_range() {
        assert!(Component::new(0).is_err());
        assert!(Component::new(257).is_err());
        assert_eq!(Component::new(256).unwrap().get(), 256);
    }

    #[test]
    fn spelling_kept_and_case_ignored() {
        let upper = Transport::new("UDP").unwrap();
        assert_eq!(upper.as_str(), "UDP");
        assert_eq!(upper, Transport::UDP);
        assert_eq!(upper.kind(), TransportKind::Udp);
        let mixed = Transport::new("Tcp").unwrap();
        assert_eq!(mixed.as_str(), "Tcp");
        assert_eq!(mixed.kind(), TransportKind::Tcp);
        let other = Transport::new("ssltcp").unwrap();
        assert_eq!(other.kind(), TransportKind::Other);
        assert_eq!(CandidateType::new("relay").unwrap().kind(), CandidateKind::Relayed);
        assert_eq!(CandidateType::PRFLX.as_str(), "prflx");
        assert!(Transport::new("u p").is_err());
    }
}
