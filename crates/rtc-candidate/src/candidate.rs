//! The candidate itself and its extension attributes.

use std::fmt::{self, Write as _};

use crate::address::Address;
use crate::error::{Field, ParseError};
use crate::token::{CandidateType, Component, Foundation, Transport, is_token_byte};

/// The `tcptype` of a TCP candidate (RFC 6544 section 4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpType {
    /// Opens outgoing connections only.
    Active,
    /// Accepts incoming connections only.
    Passive,
    /// Simultaneous open.
    So,
}

impl TcpType {
    /// The token as written in SDP.
    pub fn as_str(self) -> &'static str {
        match self {
            TcpType::Active => "active",
            TcpType::Passive => "passive",
            TcpType::So => "so",
        }
    }

    /// Parses `active`, `passive` or `so`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(TcpType::Active),
            "passive" => Some(TcpType::Passive),
            "so" => Some(TcpType::So),
            _ => None,
        }
    }
}

impl fmt::Display for TcpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An extension attribute this crate has no meaning for: a token name and a
/// non-empty value of visible ASCII characters, kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OtherExtension {
    name: String,
    value: String,
}

impl OtherExtension {
    /// Checks the name (an RFC 3261 token that is not one of the names this
    /// crate types) and the value (one or more VCHARs).
    pub fn new(name: &str, value: &str) -> Result<Self, ParseError> {
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(ParseError::new(Field::Extension, 0, "name is not a token"));
        }
        if Extension::is_typed_name(name) || name == "raddr" || name == "rport" {
            return Err(ParseError::new(Field::Extension, 0, "name has a typed form"));
        }
        if !is_extension_value(value) {
            return Err(ParseError::new(Field::Extension, 0, "value is not one or more VCHARs"));
        }
        Ok(Self { name: name.to_owned(), value: value.to_owned() })
    }

    /// The attribute name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The attribute value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// `extension-att-value = *VCHAR`; a value must be non-empty to be told apart
/// from the next name.
pub(crate) fn is_extension_value(v: &str) -> bool {
    !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic())
}

/// One `name value` pair after the candidate type, kept in line order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Extension {
    /// `tcptype` (RFC 6544).
    TcpType(TcpType),
    /// `generation`: the ICE generation the candidate belongs to (browsers).
    Generation(u32),
    /// `ufrag`: the username fragment the candidate belongs to (browsers).
    Ufrag(String),
    /// `network-id`: the local network interface (browsers).
    NetworkId(u32),
    /// `network-cost`: the interface's cost, 10 to 999 (browsers).
    NetworkCost(u32),
    /// Any other extension attribute.
    Other(OtherExtension),
}

impl Extension {
    pub(crate) fn is_typed_name(name: &str) -> bool {
        matches!(name, "tcptype" | "generation" | "ufrag" | "network-id" | "network-cost")
    }

    /// The attribute name as written in SDP.
    pub fn name(&self) -> &str {
        match self {
            Extension::TcpType(_) => "tcptype",
            Extension::Generation(_) => "generation",
            Extension::Ufrag(_) => "ufrag",
            Extension::NetworkId(_) => "network-id",
            Extension::NetworkCost(_) => "network-cost",
            Extension::Other(o) => o.name(),
        }
    }

    /// Writes the attribute value as it stands in SDP.
    pub(crate) fn write_value_to(&self, out: &mut impl fmt::Write) -> fmt::Result {
        match self {
            Extension::TcpType(t) => out.write_str(t.as_str()),
            Extension::Generation(n) | Extension::NetworkId(n) | Extension::NetworkCost(n) => write!(out, "{n}"),
            Extension::Ufrag(u) => out.write_str(u),
            Extension::Other(o) => out.write_str(o.value()),
        }
    }

    /// Builds the typed extension for `name value`, or `Other` for names this
    /// crate does not type. `offset` is where the value starts, for errors.
    pub(crate) fn from_pair(name: &str, value: &str, offset: usize) -> Result<Self, ParseError> {
        let number = |field| {
            crate::parse::decimal_u32(value).ok_or(ParseError::new(field, offset, "not a 32-bit decimal number"))
        };
        Ok(match name {
            "tcptype" => Extension::TcpType(TcpType::parse(value).ok_or(ParseError::new(
                Field::TcpType,
                offset,
                "not active, passive or so",
            ))?),
            "generation" => Extension::Generation(number(Field::Generation)?),
            "network-id" => Extension::NetworkId(number(Field::NetworkId)?),
            "network-cost" => Extension::NetworkCost(number(Field::NetworkCost)?),
            "ufrag" => Extension::Ufrag(value.to_owned()),
            _ => Extension::Other(OtherExtension { name: name.to_owned(), value: value.to_owned() }),
        })
    }
}

/// An ICE candidate (RFC 8445 section 5.1, RFC 8839 section 5.1).
///
/// `Display` writes the canonical `candidate:` line (without `a=`); every
/// value that [`Candidate::parse`] returns formats back to a line that parses
/// to the same value, and canonical lines format back to themselves.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Candidate {
    /// The socket this candidate belongs to (the seed's `socket-id`); not part
    /// of the SDP line.
    pub socket_id: Option<String>,
    /// Candidates with the same foundation share type, base and server.
    pub foundation: Foundation,
    /// The component (1 for RTP, 2 for RTCP).
    pub component: Component,
    /// The transport (`udp`, `tcp`, or another token).
    pub transport: Transport,
    /// The candidate priority (RFC 8445 section 5.1.2).
    pub priority: u32,
    /// The connection address.
    pub address: Address,
    /// The port.
    pub port: u16,
    /// The candidate type (after `typ`).
    pub kind: CandidateType,
    /// `raddr`: the related address, for reflexive and relayed candidates.
    pub related_address: Option<Address>,
    /// `rport`: the related port.
    pub related_port: Option<u16>,
    /// The extension attributes, in line order.
    pub extensions: Vec<Extension>,
}

impl Candidate {
    /// A candidate with no related address and no extensions.
    pub fn new(
        foundation: Foundation,
        component: Component,
        transport: Transport,
        priority: u32,
        address: Address,
        port: u16,
        kind: CandidateType,
    ) -> Self {
        Self {
            socket_id: None,
            foundation,
            component,
            transport,
            priority,
            address,
            port,
            kind,
            related_address: None,
            related_port: None,
            extensions: Vec::new(),
        }
    }

    /// Parses a candidate line: `a=candidate:…`, `candidate:…`, or the bare
    /// attribute value (as aioice writes it). Trailing white space (an SDP
    /// line's CRLF) is ignored.
    pub fn parse(line: &str) -> Result<Self, ParseError> {
        crate::parse::candidate(line)
    }

    /// The `tcptype` extension, if present.
    pub fn tcp_type(&self) -> Option<TcpType> {
        self.extensions.iter().find_map(|e| match e {
            Extension::TcpType(t) => Some(*t),
            _ => None,
        })
    }

    /// The `generation` extension, if present.
    pub fn generation(&self) -> Option<u32> {
        self.extensions.iter().find_map(|e| match e {
            Extension::Generation(n) => Some(*n),
            _ => None,
        })
    }

    /// The `ufrag` extension, if present.
    pub fn ufrag(&self) -> Option<&str> {
        self.extensions.iter().find_map(|e| match e {
            Extension::Ufrag(u) => Some(u.as_str()),
            _ => None,
        })
    }

    /// The `network-id` extension, if present.
    pub fn network_id(&self) -> Option<u32> {
        self.extensions.iter().find_map(|e| match e {
            Extension::NetworkId(n) => Some(*n),
            _ => None,
        })
    }

    /// The `network-cost` extension, if present.
    pub fn network_cost(&self) -> Option<u32> {
        self.extensions.iter().find_map(|e| match e {
            Extension::NetworkCost(n) => Some(*n),
            _ => None,
        })
    }

    /// Replaces the first extension with the same name as `ext`, or appends it.
    pub fn set_extension(&mut self, ext: Extension) {
        match self.extensions.iter_mut().find(|e| e.name() == ext.name()) {
            Some(slot) => *slot = ext,
            None => self.extensions.push(ext),
        }
    }

    /// The line with the `a=` prefix, as it stands in SDP.
    pub fn to_sdp_attribute(&self) -> String {
        format!("a={self}")
    }
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "candidate:{} {} {} {} {} {} typ {}",
            self.foundation, self.component, self.transport, self.priority, self.address, self.port, self.kind
        )?;
        if let Some(a) = &self.related_address {
            write!(f, " raddr {a}")?;
        }
        if let Some(p) = self.related_port {
            write!(f, " rport {p}")?;
        }
        for e in &self.extensions {
            f.write_char(' ')?;
            f.write_str(e.name())?;
            f.write_char(' ')?;
            e.write_value_to(f)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Candidate {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Self::parse(s)
    }
}
