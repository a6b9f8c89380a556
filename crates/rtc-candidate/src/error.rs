//! Parse errors: which field, where, and why.

use std::fmt;

/// The part of a candidate that an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// The `a=candidate:` prefix.
    Prefix,
    /// The foundation.
    Foundation,
    /// The component ID.
    Component,
    /// The transport token.
    Transport,
    /// The priority.
    Priority,
    /// The connection address.
    Address,
    /// The port.
    Port,
    /// The `typ` keyword.
    Typ,
    /// The candidate type token.
    CandidateType,
    /// The related address (`raddr`).
    RelatedAddress,
    /// The related port (`rport`).
    RelatedPort,
    /// An extension attribute name or value.
    Extension,
    /// The `tcptype` extension (RFC 6544).
    TcpType,
    /// The `generation` extension.
    Generation,
    /// The `ufrag` extension.
    Ufrag,
    /// The `network-id` extension.
    NetworkId,
    /// The `network-cost` extension.
    NetworkCost,
    /// A separator (a single space) between fields.
    Separator,
}

impl Field {
    /// The field's name as it is written in error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Prefix => "prefix",
            Field::Foundation => "foundation",
            Field::Component => "component",
            Field::Transport => "transport",
            Field::Priority => "priority",
            Field::Address => "connection address",
            Field::Port => "port",
            Field::Typ => "typ",
            Field::CandidateType => "candidate type",
            Field::RelatedAddress => "raddr",
            Field::RelatedPort => "rport",
            Field::Extension => "extension",
            Field::TcpType => "tcptype",
            Field::Generation => "generation",
            Field::Ufrag => "ufrag",
            Field::NetworkId => "network-id",
            Field::NetworkCost => "network-cost",
            Field::Separator => "separator",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A candidate line, or one of its fields, that does not follow RFC 8839.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason} at offset {offset}")]
#[non_exhaustive]
pub struct ParseError {
    /// The field that is wrong or missing.
    pub field: Field,
    /// Byte offset into the input where the problem was found.
    pub offset: usize,
    /// What is wrong.
    pub reason: &'static str,
}

impl ParseError {
    pub(crate) fn new(field: Field, offset: usize, reason: &'static str) -> Self {
        Self { field, offset, reason }
    }
}
