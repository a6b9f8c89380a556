//! Round-trip properties: every valid candidate formats to a line that parses
//! back to it, and no input makes the parser panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use rtc_candidate::{
    Address, Candidate, CandidateType, Component, Extension, Foundation, OtherExtension, TcpType, Transport, Ufrag,
};

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!%*_+`'~.-]{1,12}"
}

fn address() -> impl Strategy<Value = Address> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| Address::Ip(IpAddr::V4(Ipv4Addr::from(o)))),
        any::<[u8; 16]>().prop_map(|o| Address::Ip(IpAddr::V6(Ipv6Addr::from(o)))),
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
            .prop_map(|s| Address::Mdns(format!("{s}.local"))),
        "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9_-]{0,10}){0,3}"
            .prop_filter("a .local name is mDNS", |s| !s.ends_with(".local"))
            .prop_map(Address::Fqdn),
    ]
}

fn extension() -> impl Strategy<Value = Extension> {
    prop_oneof![
        prop_oneof![Just(TcpType::Active), Just(TcpType::Passive), Just(TcpType::So)].prop_map(Extension::TcpType),
        any::<u32>().prop_map(Extension::Generation),
        "[A-Za-z0-9+/]{4,32}".prop_map(|u| Extension::Ufrag(Ufrag::new(&u).unwrap())),
        any::<u32>().prop_map(Extension::NetworkId),
        any::<u32>().prop_map(Extension::NetworkCost),
        (token(), "[!-~]{1,16}").prop_filter_map("typed or related name", |(n, v)| {
            OtherExtension::new(&n, &v).ok().map(Extension::Other)
        }),
    ]
}

prop_compose! {
    fn candidate()(
        foundation in "[A-Za-z0-9+/]{1,32}",
        component in 1u16..=256,
        transport in prop_oneof![Just("udp".to_string()), Just("UDP".to_string()), Just("tcp".to_string()), token()],
        priority in any::<u32>(),
        address in address(),
        port in any::<u16>(),
        kind in prop_oneof![Just("host".to_string()), Just("srflx".to_string()), Just("relay".to_string()), token()],
        related_address in proptest::option::of(address()),
        related_port in proptest::option::of(any::<u16>()),
        extensions in proptest::collection::vec(extension(), 0..8),
    ) -> Candidate {
        let mut c = Candidate::new(
            Foundation::new(&foundation).unwrap(),
            Component::new(component).unwrap(),
            Transport::new(&transport).unwrap(),
            priority,
            address,
            port,
            CandidateType::new(&kind).unwrap(),
        );
        c.related_address = related_address;
        c.related_port = related_port;
        c.extensions = extensions.into();
        c
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn display_then_parse_is_identity(c in candidate()) {
        let line = c.to_string();
        prop_assert_eq!(Candidate::parse(&line).unwrap(), c.clone());
        prop_assert_eq!(Candidate::parse(&format!("a={line}\r\n")).unwrap(), c);
    }

    #[test]
    fn json_round_trip_keeps_the_dictionary(c in candidate()) {
        let json = serde_json::to_value(&c).unwrap();
        let back: Candidate = serde_json::from_value(json.clone()).unwrap();
        prop_assert_eq!(serde_json::to_value(&back).unwrap(), json);
        prop_assert_eq!(Candidate::parse(&back.to_string()).unwrap(), back);
    }

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
        let _ = Candidate::parse(&s);
    }

    /// Lines one edit away from a valid one: errors or candidates, never a panic,
    /// and whatever parses formats back to a line that parses the same.
    #[test]
    fn mutated_lines_never_panic(c in candidate(), at in any::<prop::sample::Index>(), with in "[ -~]{0,3}", cut in any::<bool>()) {
        let mut line = c.to_string();
        let i = at.index(line.len() + 1);
        if cut { line.truncate(i) } else { line.insert_str(i, &with) }
        if let Ok(p) = Candidate::parse(&line) {
            prop_assert_eq!(Candidate::parse(&p.to_string()).unwrap(), p);
        }
    }
}

#[test]
fn huge_input_is_linear_and_safe() {
    let mut line = String::from("candidate:1 1 udp 1 192.0.2.1 5 typ host");
    for i in 0..100_000 {
        line.push_str(&format!(" x{i} y"));
    }
    let c = Candidate::parse(&line).unwrap();
    assert_eq!(c.extensions.len(), 100_000);
    assert!(Candidate::parse(&"9".repeat(1 << 20)).is_err());
    assert!(Candidate::parse(&" ".repeat(1 << 20)).is_err());
}
