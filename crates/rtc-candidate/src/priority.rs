//! RFC 8445 rules: candidate priority (5.1.2.1), pair priority (6.1.2.3) and
//! foundations (5.1.1.3).

use std::net::IpAddr;

use crate::token::{CandidateKind, CandidateType, Component, Foundation, Transport};

/// Type preferences, 0 to 126 (RFC 8445 section 5.1.2.2 recommends host 126,
/// peer-reflexive 110, server-reflexive 100, relayed 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypePreference(u8);

impl TypePreference {
    /// Recommended for host candidates.
    pub const HOST: Self = Self(126);
    /// Recommended for peer-reflexive candidates.
    pub const PEER_REFLEXIVE: Self = Self(110);
    /// Recommended for server-reflexive candidates.
    pub const SERVER_REFLEXIVE: Self = Self(100);
    /// Recommended for relayed candidates.
    pub const RELAYED: Self = Self(0);

    /// A type preference; values above 126 are clamped to 126.
    pub fn new(v: u8) -> Self {
        Self(v.min(126))
    }

    /// The recommended preference for a candidate type (0 for unknown types).
    pub fn recommended(kind: CandidateKind) -> Self {
        match kind {
            CandidateKind::Host => Self::HOST,
            CandidateKind::PeerReflexive => Self::PEER_REFLEXIVE,
            CandidateKind::ServerReflexive => Self::SERVER_REFLEXIVE,
            _ => Self::RELAYED,
        }
    }

    /// The numeric value.
    pub fn get(self) -> u8 {
        self.0
    }
}

/// Candidate priority, RFC 8445 section 5.1.2.1:
/// `2^24 * type preference + 2^8 * local preference + (256 - component ID)`.
pub fn candidate_priority(type_pref: TypePreference, local_pref: u16, component: Component) -> u32 {
    (u32::from(type_pref.get()) << 24) + (u32::from(local_pref) << 8) + (256 - u32::from(component.get()))
}

/// Pair priority, RFC 8445 section 6.1.2.3, from the controlling agent's
/// candidate priority `g` and the controlled agent's `d`:
/// `2^32 * MIN(G,D) + 2 * MAX(G,D) + (G > D ? 1 : 0)`.
///
/// Exact for the priorities RFC 8445 allows (at most 2^31 - 1); a hostile
/// peer's larger value saturates at `u64::MAX` instead of overflowing.
pub fn pair_priority(g: u32, d: u32) -> u64 {
    let p = (u128::from(g.min(d)) << 32) + 2 * u128::from(g.max(d)) + u128::from(g > d);
    u64::try_from(p).unwrap_or(u64::MAX)
}

impl Foundation {
    /// A foundation for a local candidate per RFC 8445 section 5.1.1.3: equal
    /// for candidates with the same type, base IP address, STUN/TURN server
    /// address and transport, and (with overwhelming likelihood) different
    /// otherwise. Deterministic across runs and processes.
    pub fn compute(kind: &CandidateType, base: IpAddr, server: Option<IpAddr>, transport: &Transport) -> Self {
        // FNV-1a over a framed encoding of the four inputs.
        let mut h: u32 = 0x811c_9dc5;
        let mut feed = |bytes: &[u8]| {
            for &b in bytes {
                h ^= u32::from(b);
                h = h.wrapping_mul(0x0100_0193);
            }
            h ^= 0xff;
            h = h.wrapping_mul(0x0100_0193);
        };
        feed(kind.as_str().to_ascii_lowercase().as_bytes());
        match base {
            IpAddr::V4(a) => feed(&a.octets()),
            IpAddr::V6(a) => feed(&a.octets()),
        }
        match server {
            Some(IpAddr::V4(a)) => feed(&a.octets()),
            Some(IpAddr::V6(a)) => feed(&a.octets()),
            None => feed(&[]),
        }
        feed(transport.as_str().to_ascii_lowercase().as_bytes());
        Foundation::from_u32(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8445 section 5.1.2.1 with the section 5.1.2.2 recommendations: a host
    /// candidate for component 1 with local preference 65535 has priority
    /// 126*2^24 + 65535*2^8 + 255 = 2130706431 (what browsers write for host).
    #[test]
    fn candidate_priority_formula() {
        assert_eq!(candidate_priority(TypePreference::HOST, 65535, Component::RTP), 2_130_706_431);
        assert_eq!(candidate_priority(TypePreference::HOST, 65535, Component::RTCP), 2_130_706_430);
        assert_eq!(candidate_priority(TypePreference::SERVER_REFLEXIVE, 65535, Component::RTP), 1_694_498_815);
        assert_eq!(candidate_priority(TypePreference::RELAYED, 0, Component::new(256).unwrap()), 0);
        assert_eq!(TypePreference::new(200).get(), 126);
    }

    /// RFC 8445 section 6.1.2.3.
    #[test]
    fn pair_priority_formula() {
        assert_eq!(pair_priority(10, 20), (10u64 << 32) + 40);
        assert_eq!(pair_priority(20, 10), (10u64 << 32) + 41);
        let max = (1u32 << 31) - 1;
        assert_eq!(pair_priority(max, max), (u64::from(max) << 32) + 2 * u64::from(max));
        assert_eq!(pair_priority(u32::MAX, u32::MAX), u64::MAX);
        // The controlling side's preference breaks ties in its favour.
        assert!(pair_priority(20, 10) > pair_priority(10, 20));
    }

    #[test]
    fn foundation_rules() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let s: IpAddr = "198.51.100.1".parse().unwrap();
        let f = |k: &CandidateType, base, server, t: &Transport| Foundation::compute(k, base, server, t);
        let host = CandidateType::HOST;
        let srflx = CandidateType::SRFLX;
        let udp = Transport::UDP;
        assert_eq!(f(&host, a, None, &udp), f(&host, a, None, &Transport::new("UDP").unwrap()));
        assert_ne!(f(&host, a, None, &udp), f(&host, b, None, &udp));
        assert_ne!(f(&host, a, None, &udp), f(&srflx, a, Some(s), &udp));
        assert_ne!(f(&host, a, None, &udp), f(&host, a, None, &Transport::TCP));
        assert_ne!(f(&srflx, a, Some(s), &udp), f(&srflx, a, Some(b), &udp));
    }
}
