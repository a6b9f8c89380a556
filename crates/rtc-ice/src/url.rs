//! `stun:` and `turn:` URLs (RFC 7064 section 3.1, RFC 7065 section 3.1), as
//! RTCSocketServers names servers.

use crate::error::Error;

/// The STUN default port (RFC 8489 section 18.7).
pub const STUN_DEFAULT_PORT: u16 = 3478;
/// The default port of `turns:` URLs, STUN/TURN over TLS (RFC 8489 section
/// 18.7, RFC 7065 section 3.1).
pub const TURNS_DEFAULT_PORT: u16 = 5349;

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
        let (host, port) = host_port(rest, STUN_DEFAULT_PORT)?;
        Ok(Self { host, port })
    }
}

/// The transport between the TURN client and the server (RFC 7065: a
/// `turn:` URL's `?transport=`, TLS for `turns:`). The relayed address is
/// UDP whatever it is (REQUESTED-TRANSPORT UDP, RFC 8656 section 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TurnTransport {
    /// UDP datagrams (the default of `turn:`).
    #[default]
    Udp,
    /// A TCP connection (`turn:…?transport=tcp`): STUN messages and
    /// ChannelData back to back on the stream (RFC 8656 section 12.5).
    Tcp,
    /// TLS over TCP (`turns:`, RFC 8656 section 3.1), framed as over TCP.
    Tls,
}

impl TurnTransport {
    /// Whether the transport is a byte stream (TCP or TLS): the driver
    /// opens a connection to the server and the messages are framed on it
    /// ([`crate::framing`]).
    pub fn is_stream(self) -> bool {
        matches!(self, TurnTransport::Tcp | TurnTransport::Tls)
    }

    /// `"udp"`, `"tcp"` or `"tls"` (webrtc-stats' `relayProtocol` names).
    pub fn as_str(self) -> &'static str {
        match self {
            TurnTransport::Udp => "udp",
            TurnTransport::Tcp => "tcp",
            TurnTransport::Tls => "tls",
        }
    }
}

/// A parsed `turn:` or `turns:` URL (RFC 7065 section 3.1): the host, the
/// port and the transport to the server. The credentials travel beside it (the
/// RTCSocketServers `username` and `credential`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnUrl {
    /// Host name or IP address (IPv6 without the brackets).
    pub host: String,
    /// Port, 3478 when the URL names none (5349 for `turns:`).
    pub port: u16,
    /// The transport to the server.
    pub transport: TurnTransport,
}

impl TurnUrl {
    /// Parses `turn:host[:port][?transport=udp|tcp]` and
    /// `turns:host[:port][?transport=tcp]` (scheme and transport
    /// case-insensitively; `turns:` is TLS over TCP, port 5349 by
    /// default). `turns:…?transport=udp` (DTLS) is refused with
    /// [`Error::Unsupported`]; anything else malformed with
    /// [`Error::InvalidUrl`].
    pub fn parse(url: &str) -> Result<Self, Error> {
        let bad = Error::InvalidUrl;
        let (scheme, rest) = url.split_once(':').ok_or(bad("missing scheme"))?;
        let secure = if scheme.eq_ignore_ascii_case("turns") {
            true
        } else if scheme.eq_ignore_ascii_case("turn") {
            false
        } else {
            return Err(bad("scheme is neither turn nor turns"));
        };
        let (hostport, query) = match rest.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (rest, None),
        };
        let udp = match query {
            None => !secure,
            Some(q) => {
                let (k, v) = q.split_once('=').ok_or(bad("expected ?transport=udp or tcp"))?;
                if !k.eq_ignore_ascii_case("transport") {
                    return Err(bad("the only query is transport="));
                }
                if v.eq_ignore_ascii_case("udp") {
                    true
                } else if v.eq_ignore_ascii_case("tcp") {
                    false
                } else {
                    return Err(bad("transport is neither udp nor tcp"));
                }
            }
        };
        let transport = match (secure, udp) {
            (false, true) => TurnTransport::Udp,
            (false, false) => TurnTransport::Tcp,
            (true, false) => TurnTransport::Tls,
            (true, true) => return Err(Error::Unsupported("turns: over UDP (DTLS to the TURN server)")),
        };
        let default_port = if secure { TURNS_DEFAULT_PORT } else { STUN_DEFAULT_PORT };
        let (host, port) = host_port(hostport, default_port)?;
        Ok(Self { host, port, transport })
    }
}

/// `host[:port]` of a `stun:` or `turn:` URL (RFC 7064, RFC 7065).
fn host_port(rest: &str, default_port: u16) -> Result<(String, u16), Error> {
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
        None => default_port,
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

    /// RFC 7065 section 3.1 forms: UDP, TCP, and TLS (`turns:`, port
    /// 5349 by default); DTLS refused as unsupported.
    #[test]
    fn turn_urls() {
        let p = |s| TurnUrl::parse(s);
        let url = |h: &str, port, transport| TurnUrl { host: h.into(), port, transport };
        use TurnTransport::{Tcp, Tls, Udp};
        assert_eq!(p("turn:example.org").unwrap(), url("example.org", 3478, Udp));
        assert_eq!(p("TURN:127.0.0.1:3479?transport=udp").unwrap(), url("127.0.0.1", 3479, Udp));
        assert_eq!(p("turn:[::1]:5349?Transport=UDP").unwrap(), url("::1", 5349, Udp));
        assert_eq!(p("turn:example.org?transport=tcp").unwrap(), url("example.org", 3478, Tcp));
        assert_eq!(p("turn:127.0.0.1:3480?transport=TCP").unwrap(), url("127.0.0.1", 3480, Tcp));
        assert_eq!(p("turns:example.org").unwrap(), url("example.org", 5349, Tls));
        assert_eq!(p("TURNS:[::1]:443?transport=tcp").unwrap(), url("::1", 443, Tls));
        assert_eq!(
            p("turns:example.org?transport=udp"),
            Err(Error::Unsupported("turns: over UDP (DTLS to the TURN server)"))
        );
        for bad in [
            "stun:example.org",
            "turn:",
            "turns:",
            "turn:host:0",
            "turn:host?transport=sctp",
            "turns:host?transport=tls",
            "turn:host?foo=udp",
            "turn:host?transport",
            "turn:user@host",
            "turn:host?transport=udp?x",
            "turn:host/x?transport=udp",
            "turnss:host",
        ] {
            assert!(matches!(p(bad), Err(Error::InvalidUrl(_))), "{bad}");
        }
        assert!(Tcp.is_stream() && Tls.is_stream() && !Udp.is_stream());
        assert_eq!([Udp.as_str(), Tcp.as_str(), Tls.as_str()], ["udp", "tcp", "tls"]);
    }
}
