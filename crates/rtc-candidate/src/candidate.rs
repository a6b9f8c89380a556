//! The candidate itself and its extension attributes.

use std::fmt;

use crate::address::Address;
use crate::error::ParseError;
use crate::extension::{Extension, Extensions, TcpType};
use crate::line::Line;
use crate::token::{CandidateType, Component, Foundation, Transport};

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
    pub extensions: Extensions,
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
            extensions: Extensions::new(),
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
        let mut line = Line::new(f);
        line.push("candidate:")?;
        line.push(self.foundation.as_str())?;
        line.push(" ")?;
        line.number(self.component.get().into())?;
        line.push(" ")?;
        line.push(self.transport.as_str())?;
        line.push(" ")?;
        line.number(self.priority)?;
        line.push(" ")?;
        line.address(&self.address)?;
        line.push(" ")?;
        line.number(self.port.into())?;
        line.push(" typ ")?;
        line.push(self.kind.as_str())?;
        if let Some(a) = &self.related_address {
            line.push(" raddr ")?;
            line.address(a)?;
        }
        if let Some(p) = self.related_port {
            line.push(" rport ")?;
            line.number(p.into())?;
        }
        for e in &self.extensions {
            line.push(" ")?;
            line.push(e.name())?;
            line.push(" ")?;
            match e {
                Extension::Generation(n) | Extension::NetworkId(n) | Extension::NetworkCost(n) => line.number(*n)?,
                other => other.write_value_to(&mut line)?,
            }
        }
        line.flush()
    }
}

impl std::str::FromStr for Candidate {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Self::parse(s)
    }
}
