//! `stun:` URLs (RFC 7064 section 3.1), as RTCSocketServers names servers.

use crate::error::Error;

/// The STUN default port (RFC 8489 section 18.7).
pub const STUN_DEFAULT_PORT: u16 = 3478;

/// A parsed `stun:` URL: the host (an IP literal without brackets, or a
/// name to resolve) and the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StunUrl {
    /// Host name or IP address (IPv6 without the brackets).
    pub host: String,
    /// Port, 3478 when the URL names none.
    pub port: u16,
}

impl StunUrl {
    /// Parses `stun:host[:port]` (the scheme case-insensitively). `stuns:`
    /// (STUN over TLS) and query parts are refused: this agent speaks UDP.
    pub fn parse(url: &str) -> Result<Self, Error> {
        let bad = Error::InvalidUrl;
        let (scheme, rest) = url.split_once(':').ok_or(bad("missing scheme"))?;
        if !scheme.eq_ignore_ascii_case("stun") {
            return Err(bad("scheme is not stun"));
        }
        if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
            return Err(bad("expected host[:port] only"));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (h, tail) = v6.split_once(']').ok_or(bad("unclosed IPv6 literal"))?;
            if h.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad("invalid IPv6 literal"));
            }
            (h, tail.strip_prefix(':').map(Some).unwrap_or(if tail.is_empty() { None } else { Some("") }))
        } else {
            match rest.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() || host.len() > 253 {
            return Err(bad("empty or over-long host"));
        }
        if !host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b)) {
            return Err(bad("invalid host character"));
        }
        let port = match port {
            None => STUN_DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n != 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(bad("invalid port")),
            },
        };
        Ok(Self { host: host.to_owned(), port })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7064 section 3.1 forms.
    #[test]
    fn stun_urls() {
        let p = |s| StunUrl::parse(s);
        assert_eq!(p("stun:example.org").unwrap(), StunUrl { host: "example.org".into(), port: 3478 });
        assert_eq!(p("STUN:127.0.0.1:19302").unwrap(), StunUrl { host: "127.0.0.1".into(), port: 19302 });
        assert_eq!(p("stun:[::1]:3479").unwrap(), StunUrl { host: "::1".into(), port: 3479 });
        assert_eq!(p("stun:[::1]").unwrap(), StunUrl { host: "::1".into(), port: 3478 });
        for bad in [
            "stuns:example.org",
            "turn:example.org",
            "stun:",
            "stun:host:",
            "stun:host:0",
            "stun:host:65536",
            "stun:host:+1",
            "stun:[::1",
            "stun:[zz]:1",
            "stun:[::1]x",
            "stun:user@host",
            "stun:host?transport=udp",
            "example.org",
            "stun:h st",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }
}
