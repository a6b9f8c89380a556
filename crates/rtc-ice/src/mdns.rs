//! Resolving the `.local` names that browsers put in their host candidates
//! (draft-ietf-mmusic-mdns-ice-candidates) with one-shot Multicast DNS
//! queries (RFC 6762), sans-IO.
//!
//! [`Resolver`] holds no socket or clock: [`Resolver::query`] asks for a
//! name, [`Resolver::poll_transmit`] gives the query datagrams (to send to
//! [`MDNS_V4`] and, with IPv6, [`MDNS_V6`] on each interface),
//! [`Resolver::handle_response`] takes what arrives on the mDNS socket, and
//! [`Resolver::handle_timeout`] retransmits (RFC 6762 section 5.2: one
//! second, then doubling) and gives up after [`ResolverConfig::timeout`].
//! Outcomes come out of [`Resolver::poll_event`]. [`parse_response`] reads
//! a response in place: answers and additional records, name compression,
//! every length checked, a bounded number of records; hostile input is an
//! error, never a panic.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::{Duration, Instant};

/// The mDNS port (RFC 6762 section 3).
pub const MDNS_PORT: u16 = 5353;
/// The IPv4 mDNS group and port, 224.0.0.251:5353.
pub const MDNS_V4: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(224, 0, 0, 251), MDNS_PORT));
/// The IPv6 mDNS group (link-local scope) and port, \[ff02::fb\]:5353.
pub const MDNS_V6: SocketAddr =
    SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb), MDNS_PORT, 0, 0));
/// The largest mDNS message (RFC 6762 section 17); a receive buffer of this
/// size never truncates one.
pub const MAX_MESSAGE: usize = 9000;
/// Records examined per message (questions, answers, authority and
/// additional records together); the rest are ignored.
pub const MAX_RECORDS: usize = 64;
/// The longest name, in presentation form without the final dot (RFC 1035
/// section 2.3.4: 255 octets on the wire).
pub const MAX_NAME: usize = 253;

/// Record type A (RFC 1035).
pub const TYPE_A: u16 = 1;
/// Record type AAAA (RFC 3596).
pub const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;
/// The top bit of a question's class: unicast response wanted (QU, RFC 6762
/// section 5.4); of a record's class: cache flush (section 10.2).
const CLASS_TOP_BIT: u16 = 0x8000;
const HEADER: usize = 12;
const FLAG_RESPONSE: u16 = 0x8000;

/// What is wrong with an mDNS name or message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MdnsError {
    /// Not a name this resolver asks for: one label of letters, digits and
    /// hyphens (at most 63) followed by `.local`, as browsers make them.
    #[error("not a candidate's mDNS name: {0}")]
    InvalidName(&'static str),
    /// A message that is not a usable response (a query, a nonzero opcode
    /// or response code, or from a port other than 5353).
    #[error("not an mDNS response: {0}")]
    NotResponse(&'static str),
    /// A message that does not parse (a length past the end, a bad label,
    /// a compression pointer that does not point back, a name too long).
    #[error("malformed mDNS message: {0}")]
    Malformed(&'static str),
    /// A bound was reached (pending names).
    #[error("mDNS limit reached: {0}")]
    LimitReached(&'static str),
}

/// Whether `name` is an mDNS name as browsers put in candidates: one label
/// (1 to 63 letters, digits or hyphens; a UUID in practice) and `.local`,
/// in any case, without a final dot.
pub fn is_candidate_name(name: &str) -> bool {
    check_name(name).is_ok()
}

fn check_name(name: &str) -> Result<(), MdnsError> {
    let Some(label) = name.len().checked_sub(6).and_then(|n| {
        let (label, suffix) = (name.get(..n)?, name.get(n..)?);
        suffix.eq_ignore_ascii_case(".local").then_some(label)
    }) else {
        return Err(MdnsError::InvalidName("does not end in .local"));
    };
    if label.is_empty() || label.len() > 63 {
        return Err(MdnsError::InvalidName("the label before .local must have 1 to 63 characters"));
    }
    if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(MdnsError::InvalidName("one label of letters, digits and hyphens before .local"));
    }
    Ok(())
}

/// Appends a one-question mDNS query for `name` (a candidate's name, see
/// [`is_candidate_name`]) of record type `qtype` ([`TYPE_A`] or
/// [`TYPE_AAAA`]) to `out`: ID 0, no flags, class IN, with the QU bit when
/// `unicast_response` (RFC 6762 sections 5.4 and 18).
pub fn write_query(out: &mut Vec<u8>, name: &str, qtype: u16, unicast_response: bool) -> Result<(), MdnsError> {
    check_name(name)?;
    out.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        // Checked above: one label of at most 63 octets, then "local".
        out.push(label.len() as u8);
        out.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
    }
    out.push(0);
    out.extend_from_slice(&qtype.to_be_bytes());
    let class = if unicast_response { CLASS_IN | CLASS_TOP_BIT } else { CLASS_IN };
    out.extend_from_slice(&class.to_be_bytes());
    Ok(())
}

/// A name read from a message: lowercase, labels joined by dots, no final
/// dot. `host` is false when a label holds something else than letters,
/// digits, hyphens and underscores (a dot inside a label, spaces, UTF-8 of
/// a service name): such a name never matches a candidate's.
struct Name {
    buf: [u8; MAX_NAME],
    len: usize,
    host: bool,
}

impl Name {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

fn byte(msg: &[u8], at: usize) -> Result<u8, MdnsError> {
    msg.get(at).copied().ok_or(MdnsError::Malformed("a name runs past the end"))
}

fn u16_at(msg: &[u8], at: usize) -> Result<u16, MdnsError> {
    match msg.get(at..at.saturating_add(2)) {
        Some(&[a, b]) => Ok(u16::from_be_bytes([a, b])),
        _ => Err(MdnsError::Malformed("a field runs past the end")),
    }
}

/// Reads the name at `pos` into `name`; returns the position after it in
/// the message (after the first compression pointer, if any). A pointer
/// must point before the start of the labels being read, so pointers
/// always go backwards and a loop is impossible (RFC 1035 section 4.1.4
/// only ever points to a prior occurrence).
fn read_name(msg: &[u8], mut pos: usize, name: &mut Name) -> Result<usize, MdnsError> {
    name.len = 0;
    name.host = true;
    let mut segment = pos;
    let mut end = None;
    loop {
        let b = byte(msg, pos)?;
        match b & 0xc0 {
            0x00 if b == 0 => return Ok(end.unwrap_or(pos + 1)),
            0x00 => {
                let n = usize::from(b);
                let label = msg.get(pos + 1..pos + 1 + n).ok_or(MdnsError::Malformed("a label runs past the end"))?;
                let dot = usize::from(name.len > 0);
                if name.len + dot + n > MAX_NAME {
                    return Err(MdnsError::Malformed("a name longer than 255 octets"));
                }
                if dot == 1 {
                    name.buf[name.len] = b'.';
                }
                for (i, c) in label.iter().enumerate() {
                    name.host &= c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_';
                    name.buf[name.len + dot + i] = c.to_ascii_lowercase();
                }
                name.len += dot + n;
                pos += 1 + n;
            }
            0xc0 => {
                let target = usize::from(u16::from_be_bytes([b & 0x3f, byte(msg, pos + 1)?]));
                if target >= segment {
                    return Err(MdnsError::Malformed("a compression pointer that does not point back"));
                }
                end.get_or_insert(pos + 2);
                segment = target;
                pos = target;
            }
            _ => return Err(MdnsError::Malformed("an extended label type (RFC 6891)")),
        }
    }
}

/// The header's flags, once the message is long enough for a header, is
/// a response (or a query, as `response` says) and has opcode QUERY.
fn check_header(msg: &[u8], response: bool) -> Result<u16, MdnsError> {
    if msg.len() < HEADER {
        return Err(MdnsError::Malformed("shorter than a header"));
    }
    let flags = u16_at(msg, 2)?;
    match (flags & FLAG_RESPONSE != 0, response) {
        (false, true) => return Err(MdnsError::NotResponse("a query")),
        (true, false) => return Err(MdnsError::NotResponse("a response, not a query")),
        _ => {}
    }
    if (flags >> 11) & 0xf != 0 {
        return Err(MdnsError::NotResponse("an opcode other than QUERY"));
    }
    Ok(flags)
}

/// An address record found by [`parse_response`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressRecord<'a> {
    /// The owner name: lowercase, without the final dot.
    pub name: &'a str,
    /// The address (an A or AAAA record of class IN).
    pub addr: IpAddr,
    /// The time to live in seconds; 0 is a goodbye (RFC 6762 section 10.1).
    pub ttl: u32,
}

/// Reads an mDNS response: every A and AAAA record of class IN (the
/// cache-flush bit ignored) among the answers and additional records whose
/// owner is a host name, in order, handed to `found`. Questions (a legacy
/// unicast response repeats them) and authority records are skipped. At
/// most [`MAX_RECORDS`] entries are read. Returns how many address records
/// were handed over.
///
/// A query, an opcode other than 0 or a nonzero response code is
/// [`MdnsError::NotResponse`] (RFC 6762 section 18: such messages are
/// ignored); a message that does not parse up to the records read is
/// [`MdnsError::Malformed`] and hands over nothing.
pub fn parse_response(msg: &[u8], mut found: impl FnMut(AddressRecord<'_>)) -> Result<usize, MdnsError> {
    let flags = check_header(msg, true)?;
    if flags & 0xf != 0 {
        return Err(MdnsError::NotResponse("a nonzero response code"));
    }
    let counts = [u16_at(msg, 4)?, u16_at(msg, 6)?, u16_at(msg, 8)?, u16_at(msg, 10)?].map(usize::from);
    // Validate everything first, so a malformed message hands over nothing.
    let mut records = [(0usize, 0usize, false); MAX_RECORDS];
    let mut n = 0;
    let mut name = Name { buf: [0; MAX_NAME], len: 0, host: true };
    let mut pos = HEADER;
    'sections: for (section, &count) in counts.iter().enumerate() {
        for _ in 0..count {
            if n == MAX_RECORDS {
                break 'sections;
            }
            let start = pos;
            pos = read_name(msg, pos, &mut name)?;
            if section == 0 {
                u16_at(msg, pos + 2)?;
                pos += 4;
                n += 1;
                continue;
            }
            let len = usize::from(u16_at(msg, pos + 8)?);
            let rdata = pos + 10;
            if msg.len() < rdata + len {
                return Err(MdnsError::Malformed("record data runs past the end"));
            }
            records[n] = (start, rdata, section != 2 && name.host);
            n += 1;
            pos = rdata + len;
        }
    }
    let mut handed = 0;
    for &(start, rdata, wanted) in &records[..n] {
        if !wanted {
            continue;
        }
        let after = read_name(msg, start, &mut name)?;
        let (rtype, class) = (u16_at(msg, after)?, u16_at(msg, after + 2)? & !CLASS_TOP_BIT);
        let ttl = u32::from(u16_at(msg, after + 4)?) << 16 | u32::from(u16_at(msg, after + 6)?);
        let len = usize::from(u16_at(msg, after + 8)?);
        let data = &msg[rdata..rdata + len];
        let addr = match (rtype, class, data.len()) {
            (TYPE_A, CLASS_IN, 4) => IpAddr::from(<[u8; 4]>::try_from(data).unwrap_or_default()),
            (TYPE_AAAA, CLASS_IN, 16) => IpAddr::from(<[u8; 16]>::try_from(data).unwrap_or_default()),
            _ => continue,
        };
        // Host names are ASCII (checked while reading).
        let Ok(owner) = std::str::from_utf8(name.as_bytes()) else { continue };
        found(AddressRecord { name: owner, addr, ttl });
        handed += 1;
    }
    Ok(handed)
}

/// A question read by [`parse_query`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Question<'a> {
    /// The name asked for: lowercase, without the final dot.
    pub name: &'a str,
    /// The record type asked for (1 A, 28 AAAA, 255 ANY, ...).
    pub qtype: u16,
    /// The QU bit: the querier wants a unicast response (RFC 6762 section
    /// 5.4).
    pub unicast_response: bool,
}

/// Reads an mDNS query: each question of class IN whose name is a host
/// name is handed to `found`, at most [`MAX_RECORDS`]; the known answers
/// and other sections are not read. Returns the query's ID (echoed in a
/// legacy unicast response). A response, a nonzero opcode or a message
/// that does not parse up to its questions is an error, and hands over
/// nothing.
pub fn parse_query(msg: &[u8], mut found: impl FnMut(Question<'_>)) -> Result<u16, MdnsError> {
    check_header(msg, false)?;
    let count = usize::from(u16_at(msg, 4)?).min(MAX_RECORDS);
    let mut name = Name { buf: [0; MAX_NAME], len: 0, host: true };
    let mut starts = [0usize; MAX_RECORDS];
    let mut pos = HEADER;
    for start in starts.iter_mut().take(count) {
        *start = pos;
        pos = read_name(msg, pos, &mut name)?;
        u16_at(msg, pos + 2)?;
        pos += 4;
    }
    for &start in &starts[..count] {
        let after = read_name(msg, start, &mut name)?;
        let (qtype, class) = (u16_at(msg, after)?, u16_at(msg, after + 2)?);
        if class & !CLASS_TOP_BIT != CLASS_IN || !name.host {
            continue;
        }
        let Ok(n) = std::str::from_utf8(name.as_bytes()) else { continue };
        found(Question { name: n, qtype, unicast_response: class & CLASS_TOP_BIT != 0 });
    }
    u16_at(msg, 0)
}

/// A name for a host candidate as browsers make them: a random version 4
/// UUID and `.local`.
pub fn random_name(rng: &mut impl rand::RngCore) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}.local", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// An mDNS datagram to send: to the mDNS group of each family on each
/// interface ([`MDNS_V4`], [`MDNS_V6`]) when `destination` is `None`, else
/// by unicast to `destination`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdnsTransmit {
    /// A unicast destination, or `None` for the groups.
    pub destination: Option<SocketAddr>,
    /// The message.
    pub contents: Vec<u8>,
}

/// Names the responder answers for, at most.
pub const MAX_OWN_NAMES: usize = 1024;
/// The TTL of our address records (RFC 6762 section 10: 120 s for records
/// with a host name).
const OWN_TTL: u32 = 120;

#[derive(Debug)]
struct Own {
    name: String,
    addr: IpAddr,
    /// When the record was last multicast (RFC 6762 section 6: at most once
    /// a second).
    multicast_at: Option<Instant>,
}

/// Answers mDNS queries for the names that conceal our own host candidates
/// (draft-ietf-mmusic-mdns-ice-candidates), sans-IO: [`Responder::register`]
/// a name and its address, hand it every query with
/// [`Responder::handle_query`], send what [`Responder::poll_transmit`] gives.
/// An A (or AAAA, or ANY) question for one of its names is answered with
/// the address record, cache-flush set, TTL 120 (section 10): by multicast
/// to the group, at most once a second per name (section 6); by unicast to
/// the querier when it asked with the QU bit (section 5.4); and, to a
/// query from a port other than 5353, by a legacy unicast response (section
/// 6.7: the query's ID and question echoed, TTL 10). At most
/// [`MAX_OWN_NAMES`] names (the oldest go first) and 64 queued responses.
#[derive(Debug, Default)]
pub struct Responder {
    names: VecDeque<Own>,
    transmits: VecDeque<MdnsTransmit>,
}

impl Responder {
    /// Answers for `name` (a candidate's name, see [`is_candidate_name`])
    /// with `addr` from now on.
    pub fn register(&mut self, name: &str, addr: IpAddr) -> Result<(), MdnsError> {
        check_name(name)?;
        let name = name.to_ascii_lowercase();
        self.names.retain(|o| o.name != name);
        if self.names.len() >= MAX_OWN_NAMES {
            self.names.pop_front();
        }
        tracing::debug!(%name, %addr, "mDNS responder: answering for a host candidate's name");
        self.names.push_back(Own { name, addr, multicast_at: None });
        Ok(())
    }

    /// Stops answering for `name`.
    pub fn unregister(&mut self, name: &str) {
        self.names.retain(|o| !o.name.eq_ignore_ascii_case(name));
    }

    /// Whether it answers for any name (the driver then keeps its mDNS
    /// socket open).
    pub fn is_active(&self) -> bool {
        !self.names.is_empty()
    }

    /// Takes a datagram that arrived on the mDNS socket from `source`:
    /// answers the questions for our names. Returns how many answers it
    /// queued.
    pub fn handle_query(&mut self, now: Instant, source: SocketAddr, data: &[u8]) -> usize {
        if self.names.is_empty() {
            return 0;
        }
        let legacy = source.port() != MDNS_PORT;
        let mut hits = [(0usize, false); 4];
        let mut n = 0;
        let names = &self.names;
        let id = parse_query(data, |q| {
            let Some(i) = names.iter().position(|o| o.name == q.name) else { return };
            let family =
                matches!((q.qtype, names[i].addr), (TYPE_A, IpAddr::V4(_)) | (TYPE_AAAA, IpAddr::V6(_)) | (255, _));
            if family && n < hits.len() {
                hits[n] = (i, q.unicast_response);
                n += 1;
            }
        });
        let Ok(id) = id else { return 0 };
        let mut queued = 0;
        for &(i, qu) in &hits[..n] {
            if self.transmits.len() >= 64 {
                break;
            }
            let own = &mut self.names[i];
            let (destination, ttl) = if legacy {
                (Some(source), 10)
            } else if qu {
                (Some(source), OWN_TTL)
            } else {
                if own.multicast_at.is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1)) {
                    continue;
                }
                own.multicast_at = Some(now);
                (None, OWN_TTL)
            };
            let mut m = Vec::with_capacity(HEADER + 2 * (own.name.len() + 2) + 30);
            let qd: u16 = if legacy { 1 } else { 0 };
            m.extend_from_slice(&(if legacy { id } else { 0 }).to_be_bytes());
            m.extend_from_slice(&[0x84, 0]);
            m.extend_from_slice(&qd.to_be_bytes());
            m.extend_from_slice(&[0, 1, 0, 0, 0, 0]);
            let (rtype, rdata): (u16, Vec<u8>) = match own.addr {
                IpAddr::V4(a) => (TYPE_A, a.octets().to_vec()),
                IpAddr::V6(a) => (TYPE_AAAA, a.octets().to_vec()),
            };
            let name_at = m.len();
            for label in own.name.split('.') {
                // Registered names are one label of at most 63 octets and "local".
                m.push(label.len() as u8);
                m.extend_from_slice(label.as_bytes());
            }
            m.push(0);
            if legacy {
                m.extend_from_slice(&rtype.to_be_bytes());
                m.extend_from_slice(&CLASS_IN.to_be_bytes());
                // The answer's name points at the question's.
                m.extend_from_slice(&[0xc0 | (name_at >> 8) as u8, name_at as u8]);
            }
            m.extend_from_slice(&rtype.to_be_bytes());
            // The cache-flush bit only in multicast responses (section 10.2).
            let class = if legacy { CLASS_IN } else { CLASS_IN | CLASS_TOP_BIT };
            m.extend_from_slice(&class.to_be_bytes());
            m.extend_from_slice(&ttl.to_be_bytes());
            m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            m.extend_from_slice(&rdata);
            tracing::trace!(name = %own.name, ?destination, %source, "mDNS responder: answered");
            self.transmits.push_back(MdnsTransmit { destination, contents: m });
            queued += 1;
        }
        queued
    }

    /// The next response to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<MdnsTransmit> {
        self.transmits.pop_front()
    }
}

/// Whether an mDNS message is a query (else a response, or too short to
/// say): which of [`Responder::handle_query`] and
/// [`Resolver::handle_response`] takes it.
pub fn is_query(msg: &[u8]) -> bool {
    msg.len() >= HEADER && msg[2] & 0x80 == 0
}

/// How a [`Resolver`] asks.
#[derive(Debug, Clone)]
pub struct ResolverConfig {
    /// A name not resolved this long after it was asked for fails
    /// ([`MdnsEvent::Failed`]); 3 s by default.
    pub timeout: Duration,
    /// Ask for A records (IPv4).
    pub ipv4: bool,
    /// Ask for AAAA records (IPv6).
    pub ipv6: bool,
    /// Set the QU bit (RFC 6762 section 5.4) on the first query of each
    /// name. Off by default: Chromium's responder ignores any query whose
    /// class is not exactly IN, QU bit included, and always answers by
    /// multicast.
    pub unicast_response: bool,
    /// Names being resolved at once; more are refused.
    pub max_pending: usize,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(3), ipv4: true, ipv6: true, unicast_response: false, max_pending: 32 }
    }
}

/// What a [`Resolver`] found out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MdnsEvent {
    /// `name` (lowercase) is at `addr`.
    Resolved {
        /// The name asked for.
        name: String,
        /// Its address (the first A or AAAA record for it).
        addr: IpAddr,
    },
    /// No answer for `name` within the timeout.
    Failed {
        /// The name asked for.
        name: String,
    },
}

/// What a [`Resolver`] counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResolverStats {
    /// Query datagrams produced (each to be sent to every group).
    pub queries: u64,
    /// Responses read.
    pub responses: u64,
    /// Datagrams ignored: not a response, malformed, or not from port 5353.
    pub ignored: u64,
    /// Names resolved.
    pub resolved: u64,
    /// Names that timed out.
    pub failed: u64,
    /// Names refused because [`ResolverConfig::max_pending`] were pending.
    pub limit_hits: u64,
}

#[derive(Debug)]
struct Pending {
    name: String,
    deadline: Instant,
    next_send: Instant,
    interval: Duration,
    /// Queries sent so far.
    sent: u32,
}

/// One-shot mDNS resolution of candidates' `.local` names, sans-IO (see the
/// module documentation).
#[derive(Debug)]
pub struct Resolver {
    cfg: ResolverConfig,
    pending: Vec<Pending>,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<MdnsEvent>,
    stats: ResolverStats,
}

impl Default for Resolver {
    fn default() -> Self {
        Self::new(ResolverConfig::default())
    }
}

impl Resolver {
    /// A resolver with nothing pending.
    pub fn new(config: ResolverConfig) -> Self {
        Self {
            cfg: config,
            pending: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: ResolverStats::default(),
        }
    }

    /// Starts resolving `name` (one label and `.local`, any case): its
    /// queries are ready at once. A name already pending is not asked
    /// again. Refused: another kind of name, or
    /// [`ResolverConfig::max_pending`] names pending.
    pub fn query(&mut self, now: Instant, name: &str) -> Result<(), MdnsError> {
        check_name(name)?;
        let name = name.to_ascii_lowercase();
        if self.pending.iter().any(|p| p.name == name) {
            return Ok(());
        }
        if self.pending.len() >= self.cfg.max_pending {
            self.stats.limit_hits += 1;
            return Err(MdnsError::LimitReached("names being resolved"));
        }
        tracing::debug!(%name, "mDNS query");
        self.pending.push(Pending {
            name,
            deadline: now + self.cfg.timeout,
            next_send: now,
            interval: Duration::from_secs(1),
            sent: 0,
        });
        self.handle_timeout(now);
        Ok(())
    }

    /// Names being resolved.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// What was counted.
    pub fn stats(&self) -> &ResolverStats {
        &self.stats
    }

    /// Takes a datagram that arrived on the mDNS socket from `source`:
    /// address records for pending names resolve them. Responses must come
    /// from port 5353 (RFC 6762 section 6); anything else is ignored and
    /// counted. Returns how many names it resolved.
    pub fn handle_response(&mut self, source: SocketAddr, data: &[u8]) -> usize {
        if source.port() != MDNS_PORT {
            self.stats.ignored += 1;
            return 0;
        }
        let (pending, events, stats) = (&mut self.pending, &mut self.events, &mut self.stats);
        let mut resolved = 0;
        let r = parse_response(data, |r| {
            if r.ttl == 0 {
                return; // a goodbye
            }
            if let Some(i) = pending.iter().position(|p| p.name == r.name) {
                let p = pending.swap_remove(i);
                tracing::debug!(name = %p.name, addr = %r.addr, %source, "mDNS name resolved");
                stats.resolved += 1;
                resolved += 1;
                events.push_back(MdnsEvent::Resolved { name: p.name, addr: r.addr });
            }
        });
        match r {
            Ok(_) => self.stats.responses += 1,
            Err(e) => {
                tracing::trace!(%source, "mDNS datagram ignored: {e}");
                self.stats.ignored += 1;
            }
        }
        resolved
    }

    /// Retransmits (RFC 6762 section 5.2: the second query one second after
    /// the first, each interval twice the one before) and fails the names
    /// whose time is up.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.pending.len() {
            if now >= self.pending[i].deadline {
                let p = self.pending.swap_remove(i);
                tracing::debug!(name = %p.name, "mDNS name not resolved in time");
                self.stats.failed += 1;
                self.events.push_back(MdnsEvent::Failed { name: p.name });
                continue;
            }
            if now >= self.pending[i].next_send {
                self.send(i);
                let p = &mut self.pending[i];
                p.sent += 1;
                p.next_send = now + p.interval;
                p.interval = p.interval.saturating_mul(2);
            }
            i += 1;
        }
        if self.pending.is_empty() && self.transmits.is_empty() {
            self.pending = Vec::new();
        }
    }

    fn send(&mut self, i: usize) {
        let qu = self.pending[i].sent == 0 && self.cfg.unicast_response;
        let types = [(self.cfg.ipv4, TYPE_A), (self.cfg.ipv6, TYPE_AAAA)];
        for (_, qtype) in types.into_iter().filter(|(on, _)| *on) {
            // Two queries per pending name at most are ever queued.
            if self.transmits.len() >= 2 * self.cfg.max_pending.max(1) {
                return;
            }
            let mut out = Vec::with_capacity(HEADER + self.pending[i].name.len() + 6);
            if write_query(&mut out, &self.pending[i].name, qtype, qu).is_ok() {
                self.stats.queries += 1;
                self.transmits.push_back(out);
            }
        }
    }

    /// The next query datagram: send it to [`MDNS_V4`] (and [`MDNS_V6`])
    /// on each interface the driver uses.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    /// The next outcome.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<MdnsEvent> {
        self.events.pop_front()
    }

    /// When [`Resolver::handle_timeout`] is due next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.next_send.min(p.deadline)).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "1f0e7c3a-5b2d-4e8f-9a61-0c2b3d4e5f60.local";

    /// A name in wire form, uncompressed.
    fn wire(name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for label in name.split('.') {
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
        out
    }

    fn header(flags: u16, counts: [u16; 4]) -> Vec<u8> {
        let mut out = vec![0, 0];
        out.extend_from_slice(&flags.to_be_bytes());
        for c in counts {
            out.extend_from_slice(&c.to_be_bytes());
        }
        out
    }

    fn record(out: &mut Vec<u8>, name: &[u8], rtype: u16, class: u16, ttl: u32, rdata: &[u8]) {
        out.extend_from_slice(name);
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&class.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(rdata);
    }

    /// A response as Chromium's responder sends it for an A query: the A
    /// record (cache flush, TTL 120) and an NSEC in the additional section
    /// whose name and next-name are pointers to the answer's name.
    fn chromium_positive(name: &str, ip: [u8; 4]) -> Vec<u8> {
        let mut m = header(0x8400, [0, 1, 0, 1]);
        record(&mut m, &wire(name), TYPE_A, 0x8001, 120, &ip);
        record(&mut m, &[0xc0, 0x0c], 47, 0x8001, 120, &[0xc0, 0x0c, 0, 1, 0x40]);
        m
    }

    /// Chromium's negative response to an AAAA query for an IPv4 name: the
    /// NSEC as the answer, the A record among the additional records, its
    /// name a pointer to the NSEC's.
    fn chromium_negative(name: &str, ip: [u8; 4]) -> Vec<u8> {
        let mut m = header(0x8400, [0, 1, 0, 1]);
        record(&mut m, &wire(name), 47, 0x8001, 120, &[0xc0, 0x0c, 0, 1, 0x40]);
        record(&mut m, &[0xc0, 0x0c], TYPE_A, 0x8001, 120, &ip);
        m
    }

    fn addresses(m: &[u8]) -> Result<Vec<(String, IpAddr, u32)>, MdnsError> {
        let mut got = Vec::new();
        parse_response(m, |r| got.push((r.name.to_owned(), r.addr, r.ttl)))?;
        Ok(got)
    }

    #[test]
    fn candidate_names() {
        assert!(is_candidate_name(NAME));
        assert!(is_candidate_name("ABC.LOCAL"));
        for bad in ["", ".local", "local", "a.b.local", "a.local.", "a_b.local", "a.localhost", "a local.local"] {
            assert!(!is_candidate_name(bad), "{bad}");
        }
        assert!(!is_candidate_name(&format!("{}.local", "a".repeat(64))));
        assert!(is_candidate_name(&format!("{}.local", "a".repeat(63))));
    }

    #[test]
    fn queries_are_one_question() {
        let mut q = Vec::new();
        write_query(&mut q, "AbC.local", TYPE_A, false).unwrap();
        assert_eq!(q, [&[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0][..], b"\x03abc\x05local\x00\x00\x01\x00\x01"].concat());
        q.clear();
        write_query(&mut q, "abc.local", TYPE_AAAA, true).unwrap();
        assert_eq!(&q[q.len() - 4..], &[0, 28, 0x80, 1]);
        assert_eq!(
            write_query(&mut q, "a.b.local", TYPE_A, false),
            Err(MdnsError::InvalidName("one label of letters, digits and hyphens before .local"))
        );
    }

    #[test]
    fn chromium_responses() {
        let got = addresses(&chromium_positive(NAME, [10, 0, 0, 1])).unwrap();
        assert_eq!(got, [(NAME.to_owned(), IpAddr::from([10, 0, 0, 1]), 120)]);
        let got = addresses(&chromium_negative(NAME, [192, 168, 1, 7])).unwrap();
        assert_eq!(got, [(NAME.to_owned(), IpAddr::from([192, 168, 1, 7]), 120)]);
    }

    #[test]
    fn aaaa_legacy_unicast_and_authority() {
        // A legacy unicast answer repeats the question (RFC 6762 section
        // 6.7); the answer's name points into it; an authority record is
        // skipped; the additional AAAA's name is a label then a pointer to
        // "local" in the question.
        let mut m = header(0x8400, [1, 1, 1, 1]);
        m.extend_from_slice(&wire("host-a.local"));
        m.extend_from_slice(&[0, 28, 0, 1]);
        let v6 = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
        record(&mut m, &[0xc0, 0x0c], TYPE_AAAA, 1, 10, &v6);
        record(&mut m, &[0xc0, 0x0c], TYPE_A, 1, 10, &[1, 2, 3, 4]);
        record(&mut m, &[6, b'h', b'o', b's', b't', b'-', b'b', 0xc0, 0x13], TYPE_AAAA, 0x8001, 10, &v6);
        let got = addresses(&m).unwrap();
        assert_eq!(
            got,
            [("host-a.local".to_owned(), IpAddr::from(v6), 10), ("host-b.local".to_owned(), IpAddr::from(v6), 10)]
        );
    }

    #[test]
    fn odd_records_are_skipped() {
        let mut m = header(0x8400, [0, 5, 0, 0]);
        record(&mut m, &wire("a.local"), TYPE_A, 1, 10, &[1, 2, 3, 4, 5]); // wrong length
        record(&mut m, &wire("a.local"), TYPE_A, 3, 10, &[1, 2, 3, 4]); // class CH
        record(&mut m, &wire("my printer.local"), TYPE_A, 1, 10, &[1, 2, 3, 4]); // not a host name
        record(&mut m, &[7, b'a', b'.', b'l', b'o', b'c', b'a', b'l', 0], TYPE_A, 1, 10, &[1, 2, 3, 4]); // a dot in a label
        record(&mut m, &wire("A.Local"), TYPE_A, 1, 0, &[5, 6, 7, 8]); // a goodbye, still handed over
        assert_eq!(addresses(&m).unwrap(), [("a.local".to_owned(), IpAddr::from([5, 6, 7, 8]), 0)]);
    }

    #[test]
    fn pointer_loops_and_forward_pointers_are_refused() {
        // A name that is a pointer to itself.
        let mut m = header(0x8400, [0, 1, 0, 0]);
        record(&mut m, &[0xc0, 0x0c], TYPE_A, 1, 10, &[1, 2, 3, 4]);
        assert_eq!(addresses(&m), Err(MdnsError::Malformed("a compression pointer that does not point back")));
        // A label, then a pointer back to that label: a loop.
        let mut m = header(0x8400, [0, 1, 0, 0]);
        record(&mut m, &[1, b'a', 0xc0, 0x0c], TYPE_A, 1, 10, &[1, 2, 3, 4]);
        assert_eq!(addresses(&m), Err(MdnsError::Malformed("a compression pointer that does not point back")));
        // Two names pointing at each other.
        let mut m = header(0x8400, [0, 2, 0, 0]);
        record(&mut m, &[1, b'a', 0xc0, 0x1e], TYPE_A, 1, 10, &[1, 2, 3, 4]);
        record(&mut m, &[1, b'b', 0xc0, 0x0c], TYPE_A, 1, 10, &[1, 2, 3, 4]);
        assert!(matches!(addresses(&m), Err(MdnsError::Malformed(_))));
        // A pointer past the end, and the reserved label types.
        let mut m = header(0x8400, [0, 1, 0, 0]);
        record(&mut m, &[0xff, 0xff], TYPE_A, 1, 10, &[1, 2, 3, 4]);
        assert!(matches!(addresses(&m), Err(MdnsError::Malformed(_))));
        let mut m = header(0x8400, [0, 1, 0, 0]);
        record(&mut m, &[0x41, 0], TYPE_A, 1, 10, &[1, 2, 3, 4]);
        assert_eq!(addresses(&m), Err(MdnsError::Malformed("an extended label type (RFC 6891)")));
    }

    #[test]
    fn names_longer_than_255_octets_are_refused() {
        // Each record's name is a 63-octet label and a pointer to the name
        // before: the fifth reaches 5 * 64 octets.
        let mut m = header(0x8400, [0, 5, 0, 0]);
        let mut prev: Option<usize> = None;
        for _ in 0..5 {
            let at = m.len();
            let mut name = vec![63];
            name.extend_from_slice(&[b'x'; 63]);
            match prev {
                Some(p) => name.extend_from_slice(&[0xc0 | (p >> 8) as u8, p as u8]),
                None => name.push(0),
            }
            record(&mut m, &name, TYPE_A, 1, 10, &[1, 2, 3, 4]);
            prev = Some(at);
        }
        assert_eq!(addresses(&m), Err(MdnsError::Malformed("a name longer than 255 octets")));
    }

    #[test]
    fn not_responses() {
        let mut q = Vec::new();
        write_query(&mut q, NAME, TYPE_A, false).unwrap();
        assert_eq!(addresses(&q), Err(MdnsError::NotResponse("a query")));
        let mut m = chromium_positive(NAME, [10, 0, 0, 1]);
        m[3] |= 3; // NXDOMAIN
        assert_eq!(addresses(&m), Err(MdnsError::NotResponse("a nonzero response code")));
        let mut m = chromium_positive(NAME, [10, 0, 0, 1]);
        m[2] |= 0x28; // opcode 5
        assert_eq!(addresses(&m), Err(MdnsError::NotResponse("an opcode other than QUERY")));
        assert_eq!(addresses(&[0x84; 11]), Err(MdnsError::Malformed("shorter than a header")));
    }

    #[test]
    fn every_truncation_is_refused_and_nothing_is_handed_over() {
        for m in [chromium_positive(NAME, [10, 0, 0, 1]), chromium_negative(NAME, [10, 0, 0, 1])] {
            for n in 0..m.len() {
                let mut got = 0;
                assert!(parse_response(&m[..n], |_| got += 1).is_err(), "{n}");
                assert_eq!(got, 0);
            }
        }
    }

    #[test]
    fn records_are_bounded_and_random_bytes_never_panic() {
        // 65535 claimed answers, each a pointer-compressed A record: only
        // MAX_RECORDS are read.
        let mut m = header(0x8400, [0, 0xffff, 0, 0]);
        record(&mut m, &wire("a.local"), TYPE_A, 1, 10, &[1, 2, 3, 4]);
        for _ in 1..200 {
            record(&mut m, &[0xc0, 0x0c], TYPE_A, 1, 10, &[1, 2, 3, 4]);
        }
        assert_eq!(addresses(&m).unwrap().len(), MAX_RECORDS);
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut buf = vec![0u8; 512];
        for round in 0..20_000 {
            for b in buf.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            let len = (x as usize >> 8) % buf.len();
            buf[2] |= 0x80;
            buf[2] &= 0x87;
            buf[3] &= 0xf0;
            if round % 2 == 0 {
                buf[4..12].copy_from_slice(&[0, 0, 0, 3, 0, 0, 0, 2]);
            }
            let _ = parse_response(&buf[..len.max(12)], |r| assert!(r.name.len() <= MAX_NAME));
        }
    }

    #[test]
    fn resolver_asks_retransmits_and_gives_up() {
        let t0 = Instant::now();
        let mut r = Resolver::default();
        r.query(t0, &NAME.to_uppercase()).unwrap();
        r.query(t0, NAME).unwrap(); // the same name: asked once
        let a = r.poll_transmit().unwrap();
        let aaaa = r.poll_transmit().unwrap();
        assert!(r.poll_transmit().is_none());
        let mut want = Vec::new();
        write_query(&mut want, NAME, TYPE_A, false).unwrap();
        assert_eq!(a, want);
        assert_eq!(&aaaa[aaaa.len() - 4..], &[0, 28, 0, 1]);
        // RFC 6762 section 5.2: again after 1 s, then 2 s later; the
        // timeout (3 s) comes first.
        assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(1)));
        r.handle_timeout(t0 + Duration::from_millis(999));
        assert!(r.poll_transmit().is_none());
        r.handle_timeout(t0 + Duration::from_secs(1));
        assert_eq!(r.poll_transmit(), Some(a));
        assert!(r.poll_transmit().is_some());
        assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(3)));
        r.handle_timeout(t0 + Duration::from_secs(3));
        assert!(r.poll_transmit().is_none());
        assert_eq!(r.poll_event(), Some(MdnsEvent::Failed { name: NAME.to_owned() }));
        assert_eq!(r.poll_timeout(), None);
        assert_eq!((r.stats().queries, r.stats().failed), (4, 1));
    }

    #[test]
    fn resolver_matches_responses() {
        let t0 = Instant::now();
        let mut r = Resolver::new(ResolverConfig { ipv6: false, unicast_response: true, ..ResolverConfig::default() });
        r.query(t0, NAME).unwrap();
        let q = r.poll_transmit().unwrap();
        assert_eq!(&q[q.len() - 4..], &[0, 1, 0x80, 1], "QU on the first query");
        assert!(r.poll_transmit().is_none(), "A only");
        r.handle_timeout(t0 + Duration::from_secs(1));
        let q = r.poll_transmit().unwrap();
        assert_eq!(&q[q.len() - 4..], &[0, 1, 0, 1], "QM on retransmissions");
        let from: SocketAddr = "10.0.0.2:5353".parse().unwrap();
        // Another name, a goodbye, the wrong port: nothing.
        assert_eq!(r.handle_response(from, &chromium_positive("other.local", [10, 0, 0, 9])), 0);
        let mut goodbye = chromium_positive(NAME, [10, 0, 0, 9]);
        goodbye[12 + wire(NAME).len() + 4..][..4].copy_from_slice(&[0; 4]);
        assert_eq!(r.handle_response(from, &goodbye), 0);
        assert_eq!(r.handle_response("10.0.0.2:5354".parse().unwrap(), &chromium_negative(NAME, [10, 0, 0, 9])), 0);
        assert_eq!(r.stats().ignored, 1);
        assert_eq!(r.handle_response(from, &chromium_negative(NAME, [10, 0, 0, 9])), 1);
        assert_eq!(
            r.poll_event(),
            Some(MdnsEvent::Resolved { name: NAME.to_owned(), addr: IpAddr::from([10, 0, 0, 9]) })
        );
        assert_eq!(r.pending(), 0);
        assert_eq!(r.poll_timeout(), None);
        // A later answer changes nothing.
        assert_eq!(r.handle_response(from, &chromium_positive(NAME, [10, 0, 0, 1])), 0);
        assert!(r.poll_event().is_none());
    }

    #[test]
    fn resolver_is_bounded() {
        let t0 = Instant::now();
        let mut r = Resolver::new(ResolverConfig { max_pending: 4, ..ResolverConfig::default() });
        for i in 0..4 {
            r.query(t0, &format!("n{i}.local")).unwrap();
        }
        assert_eq!(r.query(t0, "n4.local"), Err(MdnsError::LimitReached("names being resolved")));
        assert_eq!(r.stats().limit_hits, 1);
        assert_eq!(
            r.query(t0, "a.b.local"),
            Err(MdnsError::InvalidName("one label of letters, digits and hyphens before .local"))
        );
        // Undrained queries stay bounded too.
        r.handle_timeout(t0 + Duration::from_secs(1));
        let mut n = 0;
        while r.poll_transmit().is_some() {
            n += 1;
        }
        assert_eq!(n, 8);
    }

    fn query(name: &str, qtype: u16, qu: bool) -> Vec<u8> {
        let mut q = Vec::new();
        write_query(&mut q, name, qtype, qu).unwrap();
        q
    }

    #[test]
    fn queries_parse() {
        let mut got = Vec::new();
        let id = parse_query(&query("AbC.local", TYPE_AAAA, true), |q| {
            got.push((q.name.to_owned(), q.qtype, q.unicast_response))
        });
        assert_eq!(id, Ok(0));
        assert_eq!(got, [("abc.local".to_owned(), TYPE_AAAA, true)]);
        assert_eq!(
            parse_query(&chromium_positive(NAME, [1, 2, 3, 4]), |_| {}),
            Err(MdnsError::NotResponse("a response, not a query"))
        );
        let q = query(NAME, TYPE_A, false);
        for n in 0..q.len() {
            let mut any = false;
            assert!(parse_query(&q[..n], |_| any = true).is_err());
            assert!(!any);
        }
        // Two questions, the second's name compressed into the first's.
        let mut q = header(0x0000, [2, 0, 0, 0]);
        q[0..2].copy_from_slice(&[0x12, 0x34]);
        q.extend_from_slice(&wire("a.local"));
        q.extend_from_slice(&[0, 1, 0, 1, 1, b'b', 0xc0, 0x0e, 0, 28, 0, 1]);
        let mut got = Vec::new();
        assert_eq!(parse_query(&q, |q| got.push(q.name.to_owned())), Ok(0x1234));
        assert_eq!(got, ["a.local", "b.local"]);
    }

    #[test]
    fn random_names_are_uuid_v4_candidate_names() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let a = random_name(&mut rng);
        assert!(is_candidate_name(&a), "{a}");
        assert_eq!(a.len(), 36 + 6);
        assert_eq!(&a[14..15], "4");
        assert_ne!(a, random_name(&mut rng));
    }

    #[test]
    fn the_responder_answers_for_its_names_only() {
        let t0 = Instant::now();
        let mut r = Responder::default();
        assert!(!r.is_active());
        r.register("Host-A.local", IpAddr::from([10, 0, 0, 1])).unwrap();
        r.register("host-b.local", "fd00::9".parse().unwrap()).unwrap();
        assert!(r.register("a.b.local", IpAddr::from([1, 1, 1, 1])).is_err());
        assert!(r.is_active());
        let peer: SocketAddr = "10.0.0.2:5353".parse().unwrap();
        // A multicast answer that our own resolver reads.
        assert_eq!(r.handle_query(t0, peer, &query("host-a.local", TYPE_A, false)), 1);
        let t = r.poll_transmit().unwrap();
        assert_eq!(t.destination, None);
        assert_eq!(addresses(&t.contents).unwrap(), [("host-a.local".to_owned(), IpAddr::from([10, 0, 0, 1]), 120)]);
        // At most once a second per name by multicast; QU answers by
        // unicast; other names and families are not answered.
        assert_eq!(r.handle_query(t0 + Duration::from_millis(500), peer, &query("host-a.local", TYPE_A, false)), 0);
        assert_eq!(r.handle_query(t0 + Duration::from_millis(500), peer, &query("host-a.local", TYPE_A, true)), 1);
        assert_eq!(r.poll_transmit().unwrap().destination, Some(peer));
        assert_eq!(r.handle_query(t0 + Duration::from_secs(1), peer, &query("host-a.local", TYPE_A, false)), 1);
        assert!(r.poll_transmit().is_some());
        assert_eq!(r.handle_query(t0, peer, &query("host-a.local", TYPE_AAAA, false)), 0);
        assert_eq!(r.handle_query(t0, peer, &query("other.local", TYPE_A, false)), 0);
        assert_eq!(r.handle_query(t0, peer, &query("host-b.local", TYPE_AAAA, false)), 1);
        let t = r.poll_transmit().unwrap();
        assert_eq!(addresses(&t.contents).unwrap()[0].1, "fd00::9".parse::<IpAddr>().unwrap());
        // A legacy unicast query (not from port 5353): the ID and the
        // question echoed, TTL 10, by unicast; a resolver reads it.
        let legacy: SocketAddr = "10.0.0.2:40000".parse().unwrap();
        let mut q = query("host-a.local", TYPE_A, false);
        q[0..2].copy_from_slice(&[0xbe, 0xef]);
        assert_eq!(r.handle_query(t0, legacy, &q), 1);
        let t = r.poll_transmit().unwrap();
        assert_eq!(t.destination, Some(legacy));
        assert_eq!(&t.contents[..6], &[0xbe, 0xef, 0x84, 0, 0, 1]);
        assert_eq!(addresses(&t.contents).unwrap(), [("host-a.local".to_owned(), IpAddr::from([10, 0, 0, 1]), 10)]);
        let mut resolver = Resolver::default();
        resolver.query(t0, "host-a.local").unwrap();
        assert_eq!(resolver.handle_response("10.0.0.1:5353".parse().unwrap(), &t.contents), 1);
        // Responses, garbage and unregistered names get nothing.
        assert_eq!(r.handle_query(t0, peer, &chromium_positive("host-a.local", [1, 1, 1, 1])), 0);
        assert_eq!(r.handle_query(t0, peer, &[0; 5]), 0);
        r.unregister("HOST-A.local");
        assert_eq!(r.handle_query(t0 + Duration::from_secs(9), peer, &query("host-a.local", TYPE_A, false)), 0);
        assert!(r.poll_transmit().is_none());
    }

    #[test]
    fn the_responder_is_bounded() {
        let t0 = Instant::now();
        let mut r = Responder::default();
        for i in 0..MAX_OWN_NAMES + 10 {
            r.register(&format!("n{i}.local"), IpAddr::from([10, 0, 0, 1])).unwrap();
        }
        assert_eq!(r.names.len(), MAX_OWN_NAMES);
        assert_eq!(
            r.handle_query(t0, "10.0.0.2:5353".parse().unwrap(), &query("n0.local", TYPE_A, false)),
            0,
            "the oldest went"
        );
        let legacy: SocketAddr = "10.0.0.2:40000".parse().unwrap();
        for _ in 0..200 {
            r.handle_query(t0, legacy, &query("n20.local", TYPE_A, false));
        }
        assert_eq!(r.transmits.len(), 64);
    }
}
