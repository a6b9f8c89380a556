//! `stun:` and `turn:` URLs (RFC 7064 section 3.1, RFC 7065 section 3.1), as
//! RTCSocketServers names servers.

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
        let (host, port) = host_port(rest)?;
        Ok(Self { host, port })
    }
}

/// The transport of a `turn:` URL (RFC 7065 `?transport=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TurnTransport {
    /// UDP between the client and the server (the default).
    Udp,
}

/// A parsed `turn:` URL (RFC 7065 section 3.1): the host, the port and the
/// transport to the server. The credentials travel beside it (the
/// RTCSocketServers `username` and `credential`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnUrl {
    /// Host name or IP address (IPv6 without the brackets).
    pub host: String,
    /// Port, 3478 when the URL names none.
    pub port: u16,
    /// The transport to the server.
    pub transport: TurnTransport,
}

impl TurnUrl {
    /// Parses `turn:host[:port][?transport=udp]` (scheme and transport
    /// case-insensitively). `turns:` (TLS) and `?transport=tcp` are
    /// refused with [`Error::Unsupported`]: this client speaks UDP only so
    /// far; anything else malformed with [`Error::InvalidUrl`].
    pub fn parse(url: &str) -> Result<Self, Error> {
        let bad = Error::InvalidUrl;
        let (scheme, rest) = url.split_once(':').ok_or(bad("missing scheme"))?;
        if scheme.eq_ignore_ascii_case("turns") {
            return Err(Error::Unsupported("turns: (TURN over TLS) URLs"));
        }
        if !scheme.eq_ignore_ascii_case("turn") {
            return Err(bad("scheme is not turn"));
        }
        let (hostport, query) = match rest.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (rest, None),
        };
        let transport = match query {
            None => TurnTransport::Udp,
            Some(q) => {
                let (k, v) = q.split_once('=').ok_or(bad("expected ?transport=udp"))?;
                if !k.eq_ignore_ascii_case("transport") {
                    return Err(bad("the only query is transport="));
                }
                if v.eq_ignore_ascii_case("udp") {
                    TurnTransport::Udp
                } else if v.eq_ignore_ascii_case("tcp") {
                    return Err(Error::Unsupported("TURN over TCP (transport=tcp)"));
                } else {
                    return Err(bad("transport is neither udp nor tcp"));
                }
            }
        };
        let (host, port) = host_port(hostport)?;
        Ok(Self { host, port, transport })
    }
}

/// `host[:port]` of a `stun:` or `turn:` URL (RFC 7064, RFC 7065).
fn host_port(rest: &str) -> Result<(String, u16), Error> {
    let bad = Error::InvalidUrl;
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
    Ok((host.to_owned(), port))
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

    /// RFC 7065 section 3.1 forms; TLS and TCP refused as unsupported.
    #[test]
    fn turn_urls() {
        let p = |s| TurnUrl::parse(s);
        let udp = |h: &str, port| TurnUrl { host: h.into(), port, transport: TurnTransport::Udp };
        assert_eq!(p("turn:example.org").unwrap(), udp("example.org", 3478));
        assert_eq!(p("TURN:127.0.0.1:3479?transport=udp").unwrap(), udp("127.0.0.1", 3479));
        assert_eq!(p("turn:[::1]:5349?Transport=UDP").unwrap(), udp("::1", 5349));
        assert_eq!(p("turns:example.org"), Err(Error::Unsupported("turns: (TURN over TLS) URLs")));
        assert_eq!(p("turn:example.org?transport=tcp"), Err(Error::Unsupported("TURN over TCP (transport=tcp)")));
        for bad in [
            "stun:example.org",
            "turn:",
            "turn:host:0",
            "turn:host?transport=sctp",
            "turn:host?foo=udp",
            "turn:host?transport",
            "turn:user@host",
            "turn:host?transport=udp?x",
            "turn:host/x?transport=udp",
        ] {
            assert!(matches!(p(bad), Err(Error::InvalidUrl(_))), "{bad}");
        }
    }
}
