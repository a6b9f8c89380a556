//! Certificate fingerprints (RFC 8122 section 5, RFC 4572).

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// The longest digest any supported hash function produces (SHA-512).
const MAX_DIGEST: usize = 64;

/// A hash function a fingerprint is computed with.
///
/// The ones ring offers; `sha-224` (which ring lacks) and the forbidden
/// `md5`/`md2` are refused by [`Fingerprint::parse`] with
/// [`Error::UnsupportedHash`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// SHA-1 (`sha-1`), 20 octets.
    Sha1,
    /// SHA-256 (`sha-256`), 32 octets: what WebRTC endpoints use.
    Sha256,
    /// SHA-384 (`sha-384`), 48 octets.
    Sha384,
    /// SHA-512 (`sha-512`), 64 octets.
    Sha512,
}

impl HashAlgorithm {
    /// The RFC 8122 `hash-func` token, lower case (`sha-256`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha-1",
            Self::Sha256 => "sha-256",
            Self::Sha384 => "sha-384",
            Self::Sha512 => "sha-512",
        }
    }

    /// The digest length in octets.
    pub const fn digest_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// The hash function named by an RFC 8122 `hash-func` token (any case).
    pub fn from_name(name: &str) -> Result<Self, Error> {
        const ALL: [HashAlgorithm; 4] =
            [HashAlgorithm::Sha1, HashAlgorithm::Sha256, HashAlgorithm::Sha384, HashAlgorithm::Sha512];
        if let Some(a) = ALL.into_iter().find(|a| a.name().eq_ignore_ascii_case(name)) {
            return Ok(a);
        }
        if name.is_empty() || !name.bytes().all(is_token_char) {
            return Err(Error::Fingerprint("the hash function is not a token"));
        }
        Err(Error::UnsupportedHash(if name.eq_ignore_ascii_case("sha-224") {
            "sha-224 (ring does not compute it)"
        } else if name.eq_ignore_ascii_case("md5") || name.eq_ignore_ascii_case("md2") {
            "md5 and md2 must not be used (RFC 8122 section 5)"
        } else {
            "unknown hash function"
        }))
    }

    fn ring(self) -> &'static ring::digest::Algorithm {
        match self {
            Self::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &ring::digest::SHA256,
            Self::Sha384 => &ring::digest::SHA384,
            Self::Sha512 => &ring::digest::SHA512,
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// RFC 3261 `token` characters (what RFC 8122's `hash-func` is made of).
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// A certificate fingerprint (RFC 8122 section 5: `hash-func SP fingerprint`,
/// e.g. `sha-256 AB:CD:…`).
///
/// [`Display`](fmt::Display) writes the RFC form with upper-case hex;
/// [`Fingerprint::parse`] (and [`FromStr`]) reads it back, accepting any
/// case.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    algorithm: HashAlgorithm,
    /// The digest, zero-padded past `algorithm.digest_len()`.
    digest: [u8; MAX_DIGEST],
}

impl Fingerprint {
    /// Reads `hash-func SP fingerprint` (RFC 8122 section 5).
    ///
    /// The hash function name is case-insensitive (`sha-1`, `sha-256`,
    /// `sha-384`, `sha-512`); the fingerprint is hex pairs of either case
    /// separated by `:`, exactly as many as the hash function's digest has
    /// octets. Whitespace around the text is ignored, and the separator may
    /// be a run of spaces or tabs.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        if s.is_empty() {
            return Err(Error::Fingerprint("empty"));
        }
        let (name, hex) = s
            .split_once([' ', '\t'])
            .ok_or(Error::Fingerprint("missing the space between hash function and fingerprint"))?;
        let algorithm = HashAlgorithm::from_name(name)?;
        let hex = hex.trim_start_matches([' ', '\t']);
        let mut digest = [0u8; MAX_DIGEST];
        let mut len = 0usize;
        for pair in hex.split(':') {
            let &[hi, lo] = pair.as_bytes() else {
                return Err(Error::Fingerprint("each octet must be two hex digits"));
            };
            let (Some(hi), Some(lo)) = (hex_value(hi), hex_value(lo)) else {
                return Err(Error::Fingerprint("not a hex digit"));
            };
            let slot = digest.get_mut(len).ok_or(Error::Fingerprint("longer than the hash function's digest"))?;
            *slot = (hi << 4) | lo;
            len += 1;
        }
        if len != algorithm.digest_len() {
            return Err(Error::Fingerprint("the length does not match the hash function's digest"));
        }
        Ok(Self { algorithm, digest })
    }

    /// The fingerprint of a DER certificate with `algorithm`.
    pub fn of(algorithm: HashAlgorithm, der: &[u8]) -> Self {
        let d = ring::digest::digest(algorithm.ring(), der);
        let mut digest = [0u8; MAX_DIGEST];
        // The ring digest has exactly `digest_len()` octets, at most 64.
        for (slot, b) in digest.iter_mut().zip(d.as_ref()) {
            *slot = *b;
        }
        Self { algorithm, digest }
    }

    /// The hash function.
    pub fn algorithm(&self) -> HashAlgorithm {
        self.algorithm
    }

    /// The digest octets.
    pub fn digest(&self) -> &[u8] {
        &self.digest[..self.algorithm.digest_len()]
    }

    /// Whether `der` (a DER certificate) hashes to this fingerprint with
    /// its hash function.
    pub fn matches(&self, der: &[u8]) -> bool {
        Self::of(self.algorithm, der) == *self
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.algorithm.name())?;
        for (i, b) in self.digest().iter().enumerate() {
            f.write_str(if i == 0 { " " } else { ":" })?;
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}
