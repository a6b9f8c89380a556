//! The seed's `RTCCandidateDescriptionDictionary` through serde.
//!
//! Field names follow the seed: `socket-id`, `foundation`, `component`,
//! `transport`, `priority`, `connectionAddress`, `connectionPort`, `type`, then
//! `relatedAddress`, `relatedPort`, `tcpType`, `generation`, `ufrag`,
//! `networkId`, `networkCost`, and `extensions` (a list of `{name, value}` for
//! the rest). `foundation` is accepted as a number or a string and written as a
//! string. The dictionary does not carry the order of extension attributes: a
//! candidate read from JSON lists the typed ones first, in the order browsers
//! write them, then the others.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::address::Address;
use crate::candidate::Candidate;
use crate::error::Field;
use crate::extension::Extension;
use crate::token::{CandidateType, Component, Foundation, Transport};

#[derive(Serialize, Deserialize)]
struct Pair {
    name: String,
    value: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Dict {
    #[serde(rename = "socket-id", default, skip_serializing_if = "Option::is_none")]
    socket_id: Option<String>,
    #[serde(deserialize_with = "number_or_string")]
    foundation: String,
    component: u16,
    transport: String,
    priority: u32,
    connection_address: String,
    connection_port: u16,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    related_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    related_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tcp_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    generation: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ufrag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    network_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    network_cost: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    extensions: Vec<Pair>,
}

fn number_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a foundation as a string or a non-negative integer")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
            u64::try_from(v).map(|v| v.to_string()).map_err(|_| E::custom("foundation: negative"))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
    }
    d.deserialize_any(V)
}

impl Serialize for Candidate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut dict = Dict {
            socket_id: self.socket_id.clone(),
            foundation: self.foundation.to_string(),
            component: self.component.get(),
            transport: self.transport.to_string(),
            priority: self.priority,
            connection_address: self.address.to_string(),
            connection_port: self.port,
            kind: self.kind.to_string(),
            related_address: self.related_address.as_ref().map(ToString::to_string),
            related_port: self.related_port,
            tcp_type: None,
            generation: None,
            ufrag: None,
            network_id: None,
            network_cost: None,
            extensions: Vec::new(),
        };
        for e in &self.extensions {
            // The first of each typed extension gets its field; repeats and
            // unknown ones go to the generic list.
            let placed = match e {
                Extension::TcpType(t) if dict.tcp_type.is_none() => {
                    dict.tcp_type = Some(t.as_str().to_owned());
                    true
                }
                Extension::Generation(n) if dict.generation.is_none() => dict.generation.replace(*n).is_none(),
                Extension::Ufrag(u) if dict.ufrag.is_none() => dict.ufrag.replace(u.to_string()).is_none(),
                Extension::NetworkId(n) if dict.network_id.is_none() => dict.network_id.replace(*n).is_none(),
                Extension::NetworkCost(n) if dict.network_cost.is_none() => dict.network_cost.replace(*n).is_none(),
                _ => false,
            };
            if !placed {
                let mut value = String::new();
                let _ = e.write_value_to(&mut value);
                dict.extensions.push(Pair { name: e.name().to_owned(), value });
            }
        }
        dict.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Candidate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let dict = Dict::deserialize(d)?;
        let e = |what: crate::ParseError| de::Error::custom(what);
        let foundation = Foundation::new(&dict.foundation).map_err(e)?;
        let component = Component::new(dict.component).map_err(e)?;
        let transport = Transport::new(&dict.transport).map_err(e)?;
        let address = Address::parse_field(&dict.connection_address, Field::Address).map_err(e)?;
        let kind = CandidateType::new(&dict.kind).map_err(e)?;
        let mut c =
            Candidate::new(foundation, component, transport, dict.priority, address, dict.connection_port, kind);
        c.socket_id = dict.socket_id;
        c.related_address =
            dict.related_address.map(|a| Address::parse_field(&a, Field::RelatedAddress)).transpose().map_err(e)?;
        c.related_port = dict.related_port;
        let typed = [
            ("tcptype", dict.tcp_type),
            ("generation", dict.generation.map(|n| n.to_string())),
            ("ufrag", dict.ufrag),
            ("network-id", dict.network_id.map(|n| n.to_string())),
            ("network-cost", dict.network_cost.map(|n| n.to_string())),
        ];
        let pairs = typed
            .into_iter()
            .filter_map(|(name, v)| v.map(|v| (name.to_owned(), v)))
            .chain(dict.extensions.into_iter().map(|p| (p.name, p.value)));
        for (name, value) in pairs {
            if name.is_empty() || !name.bytes().all(crate::token::is_token_byte) || name == "raddr" || name == "rport" {
                return Err(de::Error::custom(format!("extension: bad name {name:?}")));
            }
            if !crate::extension::is_extension_value(&value) {
                return Err(de::Error::custom(format!("{name}: value is not one or more VCHARs")));
            }
            c.extensions.push(Extension::from_pair(&name, &value, 0).map_err(e)?);
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example object from the seed (000, RTCCandidateDescriptionDictionary).
    #[test]
    fn seed_example_deserializes() {
        let json = r#"{
            "socket-id": "",
            "foundation": 1,
            "component": 1,
            "transport": "udp",
            "priority": 1694498815,
            "connectionAddress": "192.0.2.33",
            "connectionPort": 10000,
            "type": "host"
        }"#;
        let c: Candidate = serde_json::from_str(json).unwrap();
        assert_eq!(c.socket_id.as_deref(), Some(""));
        assert_eq!(c.to_string(), "candidate:1 1 udp 1694498815 192.0.2.33 10000 typ host");
    }

    #[test]
    fn typed_fields_and_generic_extensions() {
        let line = "candidate:1 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active generation 0 ufrag ab+/ network-id 2 network-cost 50 x-foo bar";
        let c = Candidate::parse(line).unwrap();
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["tcpType"], "active");
        assert_eq!(json["ufrag"], "ab+/");
        assert_eq!(json["networkCost"], 50);
        assert_eq!(json["extensions"][0]["name"], "x-foo");
        assert_eq!(json["foundation"], "1");
        let back: Candidate = serde_json::from_value(json).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn invalid_values_are_errors() {
        let bad = r#"{"foundation":"a-b","component":1,"transport":"udp","priority":1,"connectionAddress":"192.0.2.1","connectionPort":1,"type":"host"}"#;
        assert!(serde_json::from_str::<Candidate>(bad).unwrap_err().to_string().contains("foundation"));
        let bad = r#"{"foundation":1,"component":0,"transport":"udp","priority":1,"connectionAddress":"192.0.2.1","connectionPort":1,"type":"host"}"#;
        assert!(serde_json::from_str::<Candidate>(bad).is_err());
        let bad = r#"{"foundation":-1,"component":1,"transport":"udp","priority":1,"connectionAddress":"192.0.2.1","connectionPort":1,"type":"host"}"#;
        assert!(serde_json::from_str::<Candidate>(bad).is_err());
        let bad = r#"{"foundation":1,"component":1,"transport":"udp","priority":1,"connectionAddress":"192.0.2.1","connectionPort":70000,"type":"host"}"#;
        assert!(serde_json::from_str::<Candidate>(bad).is_err());
        let bad = r#"{"foundation":1,"component":1,"transport":"udp","priority":1,"connectionAddress":"192.0.2.1","connectionPort":1,"type":"host","generation":1,"extensions":[{"name":"rport","value":"1"}]}"#;
        assert!(serde_json::from_str::<Candidate>(bad).is_err());
    }
}
