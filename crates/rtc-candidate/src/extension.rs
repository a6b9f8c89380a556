//! The extension attributes after the candidate type (`generation 0 ufrag …`),
//! and the inline storage that lets a browser's line parse without touching
//! the heap.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Deref, DerefMut};

use crate::error::{Field, ParseError};
use crate::token::is_token_byte;

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

/// The text of a `ufrag` extension.
///
/// Up to [`Ufrag::INLINE`] bytes are stored in the value itself: browsers use
/// 4 (Chrome, Safari) or 8 (Firefox) characters, most other stacks 4 to 16,
/// so parsing their lines allocates nothing. Longer text goes to the heap.
#[derive(Clone)]
pub struct Ufrag(UfragRepr);

#[derive(Clone)]
enum UfragRepr {
    Inline { len: u8, bytes: [u8; Ufrag::INLINE] },
    Heap(Box<str>),
}

impl Ufrag {
    /// The longest text kept without an allocation.
    pub const INLINE: usize = 22;

    /// Checks and stores `s`: one or more visible ASCII characters (the
    /// extension value rule of RFC 8839), so that the line it goes into
    /// parses back.
    pub fn new(s: &str) -> Result<Self, ParseError> {
        if !is_extension_value(s) {
            return Err(ParseError::new(Field::Ufrag, 0, "not one or more VCHARs"));
        }
        Ok(Self::from_checked(s))
    }

    /// Stores text the caller has checked.
    pub(crate) fn from_checked(s: &str) -> Self {
        if s.len() <= Self::INLINE {
            let mut bytes = [0; Self::INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            Ufrag(UfragRepr::Inline { len: s.len() as u8, bytes })
        } else {
            Ufrag(UfragRepr::Heap(s.into()))
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // The bytes were copied whole from a `str`, so they are UTF-8.
            UfragRepr::Inline { len, bytes } => std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default(),
            UfragRepr::Heap(s) => s,
        }
    }
}

impl Deref for Ufrag {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Ufrag {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl TryFrom<&str> for Ufrag {
    type Error = ParseError;
    fn try_from(s: &str) -> Result<Self, ParseError> {
        Self::new(s)
    }
}

impl From<Ufrag> for String {
    fn from(u: Ufrag) -> Self {
        u.as_str().to_owned()
    }
}

impl PartialEq for Ufrag {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}
impl Eq for Ufrag {}

impl PartialEq<str> for Ufrag {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Ufrag {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Hash for Ufrag {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Display for Ufrag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Ufrag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// An extension attribute this crate has no meaning for: a token name and a
/// non-empty value of visible ASCII characters, kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OtherExtension {
    /// `name value`, as one allocation.
    text: Box<str>,
    name_len: usize,
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
        Ok(Self::from_checked(name, value))
    }

    /// From a name and value the caller has checked.
    pub(crate) fn from_checked(name: &str, value: &str) -> Self {
        let mut text = String::with_capacity(name.len() + 1 + value.len());
        text.push_str(name);
        text.push(' ');
        text.push_str(value);
        Self { text: text.into_boxed_str(), name_len: name.len() }
    }

    /// The attribute name.
    pub fn name(&self) -> &str {
        self.text.get(..self.name_len).unwrap_or_default()
    }

    /// The attribute value.
    pub fn value(&self) -> &str {
        self.text.get(self.name_len + 1..).unwrap_or_default()
    }
}

/// `extension-att-value = *VCHAR`; a value must be non-empty to be told apart
/// from the next name.
pub(crate) fn is_extension_value(v: &str) -> bool {
    !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic())
}

/// A decimal number of at most 10 digits that fits 32 bits.
#[inline]
pub(crate) fn decimal_u32(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    let mut v = 0u64;
    for &b in s.as_bytes() {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + u64::from(d);
    }
    u32::try_from(v).ok()
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
    Ufrag(Ufrag),
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
    /// crate does not type; both are already checked to be a token and VCHARs.
    /// `offset` is where the value starts, for errors.
    #[inline]
    pub(crate) fn from_pair(name: &str, value: &str, offset: usize) -> Result<Self, ParseError> {
        let number =
            |field| decimal_u32(value).ok_or_else(|| ParseError::new(field, offset, "not a 32-bit decimal number"));
        Ok(match name.as_bytes() {
            b"generation" => Extension::Generation(number(Field::Generation)?),
            b"ufrag" => Extension::Ufrag(Ufrag::from_checked(value)),
            b"network-id" => Extension::NetworkId(number(Field::NetworkId)?),
            b"network-cost" => Extension::NetworkCost(number(Field::NetworkCost)?),
            b"tcptype" => Extension::TcpType(
                TcpType::parse(value)
                    .ok_or_else(|| ParseError::new(Field::TcpType, offset, "not active, passive or so"))?,
            ),
            _ => Extension::Other(OtherExtension::from_checked(name, value)),
        })
    }
}

/// What unused inline slots hold; never visible.
const VACANT: Extension = Extension::Generation(0);

/// The extension attributes of a candidate, in line order.
///
/// Up to [`Extensions::INLINE`] are stored in the value itself (Chrome writes
/// four on a UDP candidate and five on a TCP one), so parsing a browser's line
/// does not allocate; more move to the heap. It dereferences to a slice.
#[derive(Clone)]
pub struct Extensions(Store);

#[derive(Clone)]
enum Store {
    Inline { len: u8, items: [Extension; Extensions::INLINE] },
    Heap(Vec<Extension>),
}

impl Extensions {
    /// How many extensions are stored without an allocation.
    pub const INLINE: usize = 5;

    /// No extensions.
    pub const fn new() -> Self {
        Self(Store::Inline { len: 0, items: [VACANT; Self::INLINE] })
    }

    /// Appends an extension.
    #[inline]
    pub fn push(&mut self, ext: Extension) {
        match &mut self.0 {
            Store::Inline { len, items } if usize::from(*len) < Self::INLINE => {
                items[usize::from(*len)] = ext;
                *len += 1;
            }
            Store::Inline { items, .. } => {
                let mut v = Vec::with_capacity(Self::INLINE * 2);
                v.extend(items.iter_mut().map(|e| std::mem::replace(e, VACANT)));
                v.push(ext);
                self.0 = Store::Heap(v);
            }
            Store::Heap(v) => v.push(ext),
        }
    }

    /// Removes every extension.
    pub fn clear(&mut self) {
        *self = Self::new();
    }

    /// Keeps only the extensions for which `keep` returns true, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&Extension) -> bool) {
        let old = std::mem::take(self);
        for e in old {
            if keep(&e) {
                self.push(e);
            }
        }
    }

    /// The extensions as a slice.
    pub fn as_slice(&self) -> &[Extension] {
        match &self.0 {
            Store::Inline { len, items } => &items[..usize::from(*len)],
            Store::Heap(v) => v,
        }
    }

    /// The extensions as a mutable slice.
    pub fn as_mut_slice(&mut self) -> &mut [Extension] {
        match &mut self.0 {
            Store::Inline { len, items } => &mut items[..usize::from(*len)],
            Store::Heap(v) => v,
        }
    }
}

impl Default for Extensions {
    fn default() -> Self {
        Self::new()
    }
}

impl Deref for Extensions {
    type Target = [Extension];
    fn deref(&self) -> &[Extension] {
        self.as_slice()
    }
}

impl DerefMut for Extensions {
    fn deref_mut(&mut self) -> &mut [Extension] {
        self.as_mut_slice()
    }
}

impl PartialEq for Extensions {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}
impl Eq for Extensions {}

impl Hash for Extensions {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl From<Vec<Extension>> for Extensions {
    fn from(v: Vec<Extension>) -> Self {
        v.into_iter().collect()
    }
}

impl FromIterator<Extension> for Extensions {
    fn from_iter<I: IntoIterator<Item = Extension>>(iter: I) -> Self {
        let mut out = Self::new();
        out.extend(iter);
        out
    }
}

impl Extend<Extension> for Extensions {
    fn extend<I: IntoIterator<Item = Extension>>(&mut self, iter: I) {
        for e in iter {
            self.push(e);
        }
    }
}

impl IntoIterator for Extensions {
    type Item = Extension;
    type IntoIter = std::vec::IntoIter<Extension>;
    fn into_iter(self) -> Self::IntoIter {
        match self.0 {
            Store::Inline { len, items } => {
                let mut v = Vec::from(items);
                v.truncate(usize::from(len));
                v.into_iter()
            }
            Store::Heap(v) => v.into_iter(),
        }
    }
}

impl<'a> IntoIterator for &'a Extensions {
    type Item = &'a Extension;
    type IntoIter = std::slice::Iter<'a, Extension>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl<'a> IntoIterator for &'a mut Extensions {
    type Item = &'a mut Extension;
    type IntoIter = std::slice::IterMut<'a, Extension>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_mut_slice().iter_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_then_heap_keeps_order() {
        let mut x = Extensions::new();
        for n in 0..12u32 {
            x.push(Extension::NetworkCost(n));
            assert_eq!(x.len(), n as usize + 1);
            assert!(x.iter().enumerate().all(|(i, e)| *e == Extension::NetworkCost(i as u32)));
        }
        let back: Vec<_> = x.clone().into_iter().collect();
        assert_eq!(back.len(), 12);
        x.retain(|e| matches!(e, Extension::NetworkCost(n) if n % 2 == 0));
        assert_eq!(x.len(), 6);
        let short: Extensions = vec![Extension::Generation(1)].into();
        assert_eq!(short.into_iter().collect::<Vec<_>>(), vec![Extension::Generation(1)]);
        x.clear();
        assert!(x.is_empty());
        assert_eq!(x, Extensions::default());
    }

    #[test]
    fn ufrag_inline_and_heap() {
        let short = Ufrag::new("EEtu").unwrap();
        assert_eq!(short, "EEtu");
        let long = "x".repeat(Ufrag::INLINE + 1);
        assert_eq!(Ufrag::new(&long).unwrap().as_str(), long);
        assert_eq!(Ufrag::new(&long[..Ufrag::INLINE]).unwrap().len(), Ufrag::INLINE);
        // Text that would not parse back is refused.
        for bad in ["", "a b", "\u{e9}", "\t"] {
            assert!(Ufrag::new(bad).is_err(), "{bad:?}");
        }
        assert_eq!(format!("{short:?}"), "\"EEtu\"");
    }

    #[test]
    fn other_extension_parts() {
        let o = OtherExtension::new("x-foo", "bar").unwrap();
        assert_eq!((o.name(), o.value()), ("x-foo", "bar"));
        assert!(OtherExtension::new("ufrag", "bar").is_err());
        assert!(OtherExtension::new("x", "").is_err());
    }

    #[test]
    fn decimal() {
        assert_eq!(decimal_u32("0"), Some(0));
        assert_eq!(decimal_u32("4294967295"), Some(u32::MAX));
        assert_eq!(decimal_u32("4294967296"), None);
        assert_eq!(decimal_u32("99999999999"), None);
        assert_eq!(decimal_u32(""), None);
        assert_eq!(decimal_u32("1a"), None);
    }
}
