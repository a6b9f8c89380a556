//! Which interface addresses get host candidates when the application names
//! none: the selection alone, on a list the caller made, so it runs without
//! the OS (the `udp` layer of feature `tokio` lists the machine's interfaces
//! and applies it).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One address of one network interface, as the OS lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddr {
    /// The interface's name (`eth0`), for logs.
    pub name: String,
    /// The interface is operationally up (on POSIX systems: `IFF_RUNNING`,
    /// which implies `IFF_UP` and a carrier).
    pub up: bool,
    /// The interface is a loopback one (an address in 127.0.0.0/8 or `::1`
    /// counts as loopback whatever this says).
    pub loopback: bool,
    /// The address.
    pub ip: IpAddr,
}

/// What [`select_host_addrs`] falls back to when the machine has no usable
/// address besides loopback: 127.0.0.1 and ::1.
pub const LOOPBACK: [IpAddr; 2] = [IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)];

/// Why an address gets no host candidate.
fn unusable(ip: &IpAddr) -> Option<&'static str> {
    match ip {
        _ if ip.is_unspecified() => Some("unspecified"),
        _ if ip.is_multicast() => Some("multicast"),
        // 169.254/16: self-assigned, no route beyond the link.
        IpAddr::V4(a) if a.is_link_local() => Some("IPv4 link-local"),
        // fe80::/10: needs a scope id that a candidate line cannot carry.
        IpAddr::V6(a) if a.is_unicast_link_local() => Some("IPv6 link-local"),
        _ => None,
    }
}

/// The addresses to bind, one host candidate each, out of `interfaces`
/// (in the order given, first occurrence kept):
///
/// - addresses of interfaces that are not up are skipped, and so are
///   link-local ones (IPv4 169.254/16, IPv6 fe80::/10), unspecified and
///   multicast ones; IPv4 and IPv6 are both kept;
/// - loopback addresses are skipped unless `include_loopback`, which adds
///   those of up interfaces after the others;
/// - when nothing but loopback is left, the result is [`LOOPBACK`]
///   (127.0.0.1 and ::1, the machine talking to itself), whatever
///   `include_loopback` says;
/// - at most `max` addresses (at least one) are returned: every address
///   costs the ICE agent a local candidate per component, and its
///   [`Limits::local_candidates`](crate::Limits::local_candidates) caps
///   them.
pub fn select_host_addrs(interfaces: &[InterfaceAddr], include_loopback: bool, max: usize) -> Vec<IpAddr> {
    let mut routable: Vec<IpAddr> = Vec::new();
    let mut loopback: Vec<IpAddr> = Vec::new();
    for i in interfaces {
        let skipped = if !i.up { Some("interface not up") } else { unusable(&i.ip) };
        if let Some(why) = skipped {
            tracing::trace!(interface = %i.name, ip = %i.ip, why, "no host candidate");
            continue;
        }
        let list = if i.loopback || i.ip.is_loopback() { &mut loopback } else { &mut routable };
        if !list.contains(&i.ip) {
            list.push(i.ip);
        }
    }
    let mut out = if routable.is_empty() {
        LOOPBACK.to_vec()
    } else {
        if include_loopback {
            routable.append(&mut loopback);
        }
        routable
    };
    out.truncate(max.max(1));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(name: &str, up: bool, loopback: bool, ip: &str) -> InterfaceAddr {
        InterfaceAddr { name: name.into(), up, loopback, ip: ip.parse().unwrap() }
    }

    fn ips(v: &[&str]) -> Vec<IpAddr> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    /// A laptop: loopback, a wired interface with IPv4, global and
    /// link-local IPv6, a Wi-Fi interface that is down, a self-assigned
    /// IPv4 address.
    fn laptop() -> Vec<InterfaceAddr> {
        vec![
            at("lo", true, true, "127.0.0.1"),
            at("lo", true, true, "::1"),
            at("eth0", true, false, "192.168.1.20"),
            at("eth0", true, false, "2001:db8::20"),
            at("eth0", true, false, "fe80::1:20"),
            at("wlan0", false, false, "10.0.0.7"),
            at("eth1", true, false, "169.254.3.4"),
        ]
    }

    #[test]
    fn every_usable_address_of_both_families_and_no_loopback() {
        assert_eq!(select_host_addrs(&laptop(), false, 8), ips(&["192.168.1.20", "2001:db8::20"]));
    }

    #[test]
    fn loopback_when_asked_for_comes_last() {
        assert_eq!(select_host_addrs(&laptop(), true, 8), ips(&["192.168.1.20", "2001:db8::20", "127.0.0.1", "::1"]));
    }

    #[test]
    fn loopback_alone_falls_back_to_both_loopback_addresses() {
        let only_lo = vec![at("lo", true, true, "127.0.0.1")];
        assert_eq!(select_host_addrs(&only_lo, false, 8), LOOPBACK.to_vec());
        assert_eq!(select_host_addrs(&only_lo, true, 8), LOOPBACK.to_vec());
        assert_eq!(select_host_addrs(&[], false, 8), LOOPBACK.to_vec());
        // The laptop with its wire unplugged: nothing usable but loopback
        // (the rest down, link-local, unspecified or multicast).
        let mut unplugged: Vec<InterfaceAddr> =
            laptop().into_iter().map(|i| InterfaceAddr { up: i.up && i.name != "eth0", ..i }).collect();
        unplugged.extend([at("x", true, false, "0.0.0.0"), at("x", true, false, "ff02::1")]);
        assert_eq!(select_host_addrs(&unplugged, false, 8), LOOPBACK.to_vec());
        assert_eq!(select_host_addrs(&unplugged, true, 8), LOOPBACK.to_vec());
    }

    #[test]
    fn link_local_ranges_end_where_they_end() {
        let mut v = laptop();
        v.extend([
            at("eth1", true, false, "febf::1"),         // still fe80::/10
            at("eth1", true, false, "169.254.255.254"), // still 169.254/16
            at("eth1", true, false, "fd00::5"),         // unique local: usable
            at("eth1", true, false, "169.255.0.1"),
        ]);
        assert_eq!(select_host_addrs(&v, false, 8), ips(&["192.168.1.20", "2001:db8::20", "fd00::5", "169.255.0.1"]));
    }

    #[test]
    fn repeated_addresses_once_in_first_order() {
        let v = vec![
            at("eth0", true, false, "10.0.0.2"),
            at("br0", true, false, "10.0.0.1"),
            at("eth0:1", true, false, "10.0.0.2"),
            at("lo", true, true, "::1"),
            at("lo2", true, true, "::1"),
        ];
        assert_eq!(select_host_addrs(&v, true, 8), ips(&["10.0.0.2", "10.0.0.1", "::1"]));
    }

    #[test]
    fn loopback_by_address_or_by_flag() {
        // 127.0.0.2 on an interface not flagged loopback is still loopback;
        // an address on a loopback-flagged interface is too.
        let v = vec![at("x", true, false, "127.0.0.2"), at("lo", true, true, "10.255.0.1")];
        assert_eq!(select_host_addrs(&v, false, 8), LOOPBACK.to_vec());
        let v = vec![at("x", true, false, "127.0.0.2"), at("eth0", true, false, "10.1.1.1")];
        assert_eq!(select_host_addrs(&v, true, 8), ips(&["10.1.1.1", "127.0.0.2"]));
    }

    #[test]
    fn at_most_max_addresses() {
        let many: Vec<InterfaceAddr> =
            (1..=20).map(|k| at(&format!("veth{k}"), true, false, &format!("10.9.0.{k}"))).collect();
        let v = select_host_addrs(&many, false, 8);
        assert_eq!(v.len(), 8);
        assert_eq!(v[0], "10.9.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(select_host_addrs(&many, false, 0).len(), 1, "never nothing");
        assert_eq!(select_host_addrs(&[], false, 1), ips(&["127.0.0.1"]));
    }
}
