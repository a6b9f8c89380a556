//! The seeds' dictionaries: descriptions and options, serialized to JSON with
//! the seeds' field names so peers can exchange them over any channel.

use std::net::IpAddr;
use std::str::FromStr;

use rtc_candidate::Candidate;
use rtc_codecs::{Kind, Options};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use crate::error::Error;

/// `"local"` or `"remote"`: which side of a connection a description or
/// options dictionary is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// This peer.
    Local,
    /// The other peer.
    Remote,
}

impl FromStr for Direction {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "local" => Ok(Self::Local),
            "remote" => Ok(Self::Remote),
            _ => Err(Error::InvalidOptions(format!("direction must be \"local\" or \"remote\", not {s:?}"))),
        }
    }
}

/// One SRTP key offer in the RFC 4568 sense (`a=crypto:<tag> <crypto-suite>
/// <key-params>`): a suite and, in a description, its master key and salt
/// in the inline form `inline:<base64(key || salt)>`.
///
/// In JSON it is `{"tag": 1, "crypto-suite": "AES_CM_128_HMAC_SHA1_80",
/// "key-params": "inline:…"}`; a string in the `a=crypto` form
/// (`"1 AES_CM_128_HMAC_SHA1_80 inline:…"`) or a bare suite name is read too.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "KeyForm")]
pub struct CryptoKey {
    /// The RFC 4568 tag (a number naming this entry).
    pub tag: u32,
    /// The SRTP protection profile, as RFC 4568 / RFC 7714 name it.
    #[serde(rename = "crypto-suite")]
    pub crypto_suite: String,
    /// `inline:<base64 key||salt>`; absent in socket options, where a key is
    /// then drawn from a CSPRNG.
    #[serde(rename = "key-params", default, skip_serializing_if = "Option::is_none")]
    pub key_params: Option<String>,
}

impl std::fmt::Debug for CryptoKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CryptoKey")
            .field("tag", &self.tag)
            .field("crypto_suite", &self.crypto_suite)
            .field("key_params", &self.key_params.as_ref().map(|_| "inline:…"))
            .finish()
    }
}

impl CryptoKey {
    /// A suite without key material.
    pub fn suite(tag: u32, crypto_suite: &str) -> Self {
        Self { tag, crypto_suite: crypto_suite.to_owned(), key_params: None }
    }

    /// Checks the entry: a suite rtc-srtp implements and, when present,
    /// key material of the right length in the inline form.
    pub fn check(&self) -> Result<(), Error> {
        match self.key_params {
            Some(_) => crate::keys::Keying::from_crypto(self).map(|_| ()),
            None => crate::keys::profile(&self.crypto_suite).map(|_| ()),
        }
    }

    /// Reads the `a=crypto` value form: `<tag> <suite> <key-params>`, or a
    /// bare suite name.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let mut words = s.split_ascii_whitespace();
        let bad = |why: &str| Error::InvalidDescription(format!("crypto key {s:?}: {why}"));
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some(suite), None, None, None) => Ok(Self::suite(1, suite)),
            (Some(tag), Some(suite), Some(params), None) => Ok(Self {
                tag: tag.parse().map_err(|_| bad("tag is not a number"))?,
                crypto_suite: suite.to_owned(),
                key_params: Some(params.to_owned()),
            }),
            (Some(_), Some(_), Some(_), Some(_)) => Err(bad("session parameters are not supported")),
            _ => Err(bad("expected `<tag> <crypto-suite> inline:<key>` or a suite name")),
        }
    }
}

impl std::fmt::Display for CryptoKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.tag, self.crypto_suite)?;
        if let Some(p) = &self.key_params {
            write!(f, " {p}")?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum KeyForm {
    Line(String),
    Dict {
        #[serde(default = "one")]
        tag: u32,
        #[serde(rename = "crypto-suite")]
        crypto_suite: String,
        #[serde(rename = "key-params", default)]
        key_params: Option<String>,
    },
}

fn one() -> u32 {
    1
}

impl TryFrom<KeyForm> for CryptoKey {
    type Error = Error;
    fn try_from(k: KeyForm) -> Result<Self, Error> {
        match k {
            KeyForm::Line(s) => Self::parse(&s),
            KeyForm::Dict { tag, crypto_suite, key_params } => Ok(Self { tag, crypto_suite, key_params }),
        }
    }
}

/// The seeds' `RTCSocketOptionsDictionary`: `fingerprints`, `mux`, `kind`,
/// `keys`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocketOptions {
    /// DTLS certificate fingerprints (`sha-256 AB:CD:…`, RFC 8122) for
    /// DTLS-SRTP keying. A local socket fills in its own certificate's; a
    /// remote description without `keys` is keyed by DTLS-SRTP against
    /// these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fingerprints: Vec<String>,
    /// RTP and RTCP on one ICE component (RFC 5761), the default; `false`
    /// gives RTCP its own component and UDP port.
    #[serde(default = "yes")]
    pub mux: bool,
    /// The media kinds this socket carries; empty means every kind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kind: Vec<Kind>,
    /// The SRTP suites this socket accepts, in order of preference (RFC 4568
    /// semantics). Empty means every suite rtc-srtp implements, AES-GCM first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<CryptoKey>,
    /// The DTLS role as SDP's `a=setup` says it (RFC 8842): `actpass`,
    /// `active` (DTLS client) or `passive` (server). Not in the seeds: it
    /// carries the role across SDP. A local description has it once the
    /// remote one is known and DTLS keys the call; a remote description
    /// read from SDP has the peer's. Without it, the side with the larger
    /// `context-id` is the DTLS client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<String>,
    /// `ice-pacing`: the Ta (milliseconds between two new connectivity
    /// checks) this side proposes, as SDP's session-level `a=ice-pacing`
    /// says it (RFC 8839 section 5.5; not in the seeds). A local
    /// description carries the socket's own (5 ms unless set here or in
    /// `ice_timing`); a remote one the peer's, absent when it proposed
    /// none, which RFC 8445 section 14.2 counts as 50 ms. Both sides pace
    /// their checks at the larger of the two proposals, never under 5 ms,
    /// so against a peer that says nothing checks stay 50 ms apart. A
    /// remote value above 10 000 is refused; one under 5 counts as 5.
    #[serde(rename = "ice-pacing", default, skip_serializing_if = "Option::is_none")]
    pub ice_pacing: Option<u64>,
    /// `ice-lite`: this side runs ICE lite (RFC 8445 section 2.5; SDP's
    /// session-level `a=ice-lite`, RFC 8839 section 5.3; not in the seeds),
    /// as a server on a public address does: host candidates only (a
    /// socket with STUN or TURN servers is refused), no connectivity checks
    /// of its own, always ICE-controlled, selecting the pair the peer
    /// nominates. A local description of a lite socket carries it and no
    /// `ice-pacing` (RFC 8839: a lite agent proposes none); a remote one
    /// that carries it makes this side control (whoever offered) and
    /// expect no checks. Both sides lite is refused.
    #[serde(rename = "ice-lite", default, skip_serializing_if = "std::ops::Not::not")]
    pub ice_lite: bool,
    /// ICE timers (not signaled): tests shorten the consent timeout with it.
    #[serde(skip)]
    pub ice_timing: Option<rtc_ice::Timing>,
}

impl PartialEq for SocketOptions {
    /// Compares the signaled fields (not `ice_timing`).
    fn eq(&self, o: &Self) -> bool {
        (&self.fingerprints, self.mux, &self.kind, &self.keys, &self.setup, self.ice_pacing, self.ice_lite)
            == (&o.fingerprints, o.mux, &o.kind, &o.keys, &o.setup, o.ice_pacing, o.ice_lite)
    }
}

fn yes() -> bool {
    true
}

impl Default for SocketOptions {
    fn default() -> Self {
        Self {
            fingerprints: Vec::new(),
            mux: true,
            kind: Vec::new(),
            keys: Vec::new(),
            setup: None,
            ice_pacing: None,
            ice_lite: false,
            ice_timing: None,
        }
    }
}

impl SocketOptions {
    /// `ice-pacing` as a duration: `None` when absent. Refuses a value
    /// above [`rtc_ice::Timing::MAX_PACING`] (10 s); one under 5 ms is
    /// taken and counts as 5 ms where it is used.
    pub fn pacing(&self) -> Result<Option<std::time::Duration>, Error> {
        let Some(ms) = self.ice_pacing else { return Ok(None) };
        let d = std::time::Duration::from_millis(ms);
        if d > rtc_ice::Timing::MAX_PACING {
            return Err(Error::InvalidDescription(format!(
                "ice-pacing {ms} ms: more than the {} ms this side takes",
                rtc_ice::Timing::MAX_PACING.as_millis()
            )));
        }
        Ok(Some(d))
    }

    /// The `ice-pacing` a local socket signals: [`SocketOptions::local_pacing`]
    /// in milliseconds, none for a lite socket (RFC 8839 section 5.5: a
    /// lite agent performs no checks and proposes no pacing).
    pub(crate) fn signaled_pacing(&self) -> Option<u64> {
        (!self.ice_lite).then(|| u64::try_from(self.local_pacing().as_millis()).unwrap_or(u64::MAX))
    }

    /// The Ta a local socket proposes (and signals as `ice-pacing`): its
    /// `ice-pacing`, else `ice_timing`'s `ta`, else rtc-ice's default
    /// (5 ms); within [`rtc_ice::Timing::MIN_PACING`] and
    /// [`rtc_ice::Timing::MAX_PACING`].
    pub fn local_pacing(&self) -> std::time::Duration {
        let ta = match self.ice_pacing {
            Some(ms) => std::time::Duration::from_millis(ms),
            None => self.ice_timing.unwrap_or_default().ta,
        };
        ta.clamp(rtc_ice::Timing::MIN_PACING, rtc_ice::Timing::MAX_PACING)
    }
}

/// The seeds' `RTCSocketServers`: STUN and TURN server URLs
/// (`stun:host:port`, `turn:host:port?transport=udp|tcp` and
/// `turns:host:port` with `username` and `credential`, as WebRTC's
/// RTCIceServer) and the local addresses to bind. With no address, the
/// socket binds every usable interface address (loopback only when there
/// is nothing else): list 127.0.0.1 or ::1 for a call that must stay on
/// the machine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocketServers {
    /// `stun:host[:port]` URLs for server-reflexive candidates and
    /// `turn:host[:port][?transport=udp|tcp]` and `turns:host[:port]` (TLS)
    /// URLs (RFC 7065) for relayed ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// The TURN servers' long-term credential: the username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The TURN servers' long-term credential: the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// Use relayed candidates only (WebRTC's `iceTransportPolicy:
    /// "relay"`): host addresses are not signaled, only the TURN relays'.
    #[serde(rename = "relay-only", default, skip_serializing_if = "std::ops::Not::not")]
    pub relay_only: bool,
    /// Conceal the host addresses behind random `<uuid>.local` names, as
    /// browsers do (JSON `"mdns-host-names": true`;
    /// draft-ietf-mmusic-mdns-ice-candidates): candidates are signaled with
    /// the names and the driver answers mDNS queries for them on the link.
    /// Local only.
    #[serde(rename = "mdns-host-names", default, skip_serializing_if = "std::ops::Not::not")]
    pub mdns_host_names: bool,
    /// Also gather ICE-TCP candidates (RFC 6544; JSON `"ice-tcp": true`): a
    /// TCP listener beside each bound address, signaled as a passive
    /// candidate, and an active candidate that opens connections to the
    /// peer's passive ones, for networks that block UDP. UDP paths are
    /// still preferred. Local only.
    #[serde(rename = "ice-tcp", default, skip_serializing_if = "std::ops::Not::not")]
    pub ice_tcp: bool,
    /// Signal and check no UDP host candidate (JSON `"no-udp": true`), so
    /// no server-reflexive or relayed one either: with `ice-tcp`, ICE runs
    /// over TCP only. Local only.
    #[serde(rename = "no-udp", default, skip_serializing_if = "std::ops::Not::not")]
    pub no_udp: bool,
    /// Local addresses to bind, one UDP socket each (two without mux).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bind: Vec<IpAddr>,
    /// The UDP port every bound address takes (without mux, RTCP takes the
    /// next one); ephemeral ports when absent. A port already taken fails
    /// the socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The DTLS engine (JSON `"dtls-engine": "dimpl"` or `"openssl"`):
    /// dimpl by default; OpenSSL (cargo feature `openssl`) talks to peers
    /// with RSA certificates too (GStreamer's webrtcbin, many SIP
    /// gateways). Local only: nothing of it is signaled.
    #[serde(rename = "dtls-engine", default, skip_serializing_if = "DtlsEngine::is_default")]
    pub dtls_engine: DtlsEngine,
    /// CA certificates (PEM) trusted for `turns:` servers besides
    /// Mozilla's roots (JSON `"turn-ca"`): a private CA, or a test's
    /// self-signed certificate. The server certificate is always verified
    /// for the URL's host. Local only.
    #[serde(rename = "turn-ca", default, skip_serializing_if = "Vec::is_empty")]
    pub turn_ca: Vec<String>,
}

/// The DTLS engine a socket's associations run on
/// ([`SocketServers::dtls_engine`]); see [`rtc_dtls::Engine`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum DtlsEngine {
    /// dimpl: ECDSA peers.
    #[default]
    Dimpl,
    /// OpenSSL: ECDSA and RSA peers (needs the `openssl` feature).
    #[serde(rename = "openssl")]
    OpenSsl,
}

impl DtlsEngine {
    fn is_default(&self) -> bool {
        *self == Self::Dimpl
    }
}

impl From<DtlsEngine> for rtc_dtls::Engine {
    fn from(e: DtlsEngine) -> Self {
        match e {
            DtlsEngine::Dimpl => rtc_dtls::Engine::Dimpl,
            DtlsEngine::OpenSsl => rtc_dtls::Engine::OpenSsl,
        }
    }
}

impl SocketServers {
    /// No STUN server; binds 127.0.0.1 only.
    pub fn loopback_v4() -> Self {
        Self { bind: vec![IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)], ..Self::default() }
    }
}

/// The seeds' `RTCSocketDescriptionDictionary`: the socket's id, its local
/// candidates, and its options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocketDescription {
    /// The socket's identifier.
    #[serde(rename = "socket-id")]
    pub socket_id: String,
    /// Local candidates gathered so far.
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    /// The socket's options.
    #[serde(default)]
    pub options: SocketOptions,
}

/// The seeds' `RTCMediaStreamTrackDescriptionDictionary`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackDescription {
    /// The track's identifier.
    #[serde(rename = "track-id")]
    pub track_id: String,
    /// The socket that carries it (chosen when the stream is sent, if absent).
    #[serde(rename = "socket-id", default, skip_serializing_if = "Option::is_none")]
    pub socket_id: Option<String>,
    /// Its RTP SSRC, written as a decimal string (a number is read too).
    #[serde(default, with = "ssrc_text", skip_serializing_if = "Option::is_none")]
    pub ssrc: Option<u32>,
    /// The SSRC its retransmissions go out on (RFC 4588 section 8.3, the
    /// `a=ssrc-group:FID` of SDP), when retransmission is negotiated;
    /// drawn for a sent video track where absent.
    #[serde(rename = "rtx-ssrc", default, with = "ssrc_text", skip_serializing_if = "Option::is_none")]
    pub rtx_ssrc: Option<u32>,
    /// `audio` or `video` (a one-element list is read too).
    #[serde(with = "kind_text")]
    pub kind: Kind,
    /// Codec options restricting this track (the first agreed codec of the
    /// track's kind that these options also list is used). Boxed: most
    /// tracks have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Box<Options>>,
    /// The RTP stream id (RFC 8851 `a=rid`, RFC 8852 RtpStreamId) of a
    /// simulcast layer (not in the seeds). A remote track with one is a
    /// layer the peer sends in a simulcast section: its packets carry the
    /// id in the `sdes:rtp-stream-id` header extension (its RTX the
    /// `sdes:repaired-rtp-stream-id`), which is how its SSRC is learnt. A
    /// local track with one is a layer this side sends: the tracks of one
    /// stream and kind with a `rid` share one SDP section (`a=rid:<id>
    /// send`, `a=simulcast:send`) and their packets carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<String>,
    /// The SDP section (`a=mid`) of a remote track announced without an
    /// SSRC (not in the seeds): a packet from an unknown SSRC whose
    /// `sdes:mid` header extension names it is this track's (RFC 8843
    /// section 9.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid: Option<String>,
}

impl TrackDescription {
    /// A description of a new track of `kind`; its id and SSRC are drawn
    /// from a CSPRNG when the track is built.
    pub fn new(kind: Kind) -> Self {
        Self {
            track_id: String::new(),
            socket_id: None,
            ssrc: None,
            rtx_ssrc: None,
            kind,
            options: None,
            rid: None,
            mid: None,
        }
    }
}

/// The seeds' `RTCMediaStreamDescriptionDictionary`: its `tracks`, plus the
/// stream's id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamDescription {
    /// The stream's identifier.
    #[serde(rename = "stream-id", default)]
    pub stream_id: String,
    /// Its tracks.
    #[serde(default)]
    pub tracks: Vec<TrackDescription>,
}

/// The seeds' `RTCConnectionDescriptionDictionary`: `cname`, `context-id`
/// (the ICE ufrag), `secret` (the ICE password), plus what a peer needs to
/// receive: its SRTP `keys` (RFC 4568 inline form), its `sockets` with their
/// candidates, and the `streams` it sends.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionDescription {
    /// The RTCP canonical name of every RTP stream of the connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cname: Option<String>,
    /// The connection's random identifier, also its ICE ufrag.
    #[serde(rename = "context-id", default, skip_serializing_if = "Option::is_none")]
    pub context_id: Option<String>,
    /// The connection's random secret, also its ICE password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// SRTP suites with this side's master key and salt, in preference order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<CryptoKey>,
    /// The sockets and their candidates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sockets: Vec<SocketDescription>,
    /// The streams this side sends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<StreamDescription>,
    /// Data streams (SCTP over DTLS, RFC 8261): present when this side
    /// takes them. Data flows once both descriptions carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataTransport>,
    /// The data streams this side opened, for information (the peer learns
    /// of in-band ones when they open; pre-negotiated ones are agreed by
    /// the application).
    #[serde(rename = "data-streams", default, skip_serializing_if = "Vec::is_empty")]
    pub data_streams: Vec<DataStreamDescription>,
}

/// What a peer needs to carry data streams: the SCTP port and the largest
/// message it takes (SDP's `a=sctp-port` and `a=max-message-size`, RFC
/// 8841). JSON: `{"port": 5000, "max-message-size": 262144}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataTransport {
    /// The SCTP port (5000 unless said otherwise).
    #[serde(default = "sctp_port")]
    pub port: u16,
    /// The largest message this side receives; 0 means any size (RFC 8841
    /// section 6). Absent means 65536.
    #[serde(rename = "max-message-size", default = "max_message_size")]
    pub max_message_size: u64,
}

fn sctp_port() -> u16 {
    5000
}

fn max_message_size() -> u64 {
    65536
}

impl Default for DataTransport {
    /// Port 5000; messages up to 256 KiB.
    fn default() -> Self {
        Self { port: 5000, max_message_size: 256 * 1024 }
    }
}

/// A data stream (a WebRTC data channel, RFC 8831): its label and
/// sub-protocol, ordering and reliability, and for pre-negotiated streams
/// the SCTP stream id both sides use. The JSON names are the W3C data
/// channel's: `{"label": "chat", "protocol": "", "ordered": true,
/// "maxRetransmits": 0, "maxPacketLifeTime": 500, "negotiated": false,
/// "id": 1}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataStreamDescription {
    /// A name for the stream (need not be unique).
    #[serde(default)]
    pub label: String,
    /// The sub-protocol the application speaks on it.
    #[serde(default)]
    pub protocol: String,
    /// Messages are delivered in the order sent (the default).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub ordered: bool,
    /// Partially reliable: a message is retransmitted at most this many
    /// times.
    #[serde(rename = "maxRetransmits", alias = "max-retransmits", default, skip_serializing_if = "Option::is_none")]
    pub max_retransmits: Option<u16>,
    /// Partially reliable: a message is retransmitted for at most this many
    /// milliseconds.
    #[serde(
        rename = "maxPacketLifeTime",
        alias = "max-packet-life-time",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_packet_life_time: Option<u16>,
    /// Agreed by the applications out of band, with `id`: no open message
    /// is exchanged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub negotiated: bool,
    /// The SCTP stream id: required when `negotiated`; otherwise assigned
    /// when the stream opens (even for the DTLS client, odd for the server,
    /// RFC 8832 section 6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u16>,
}

fn is_true(b: &bool) -> bool {
    *b
}

impl DataStreamDescription {
    /// A reliable, ordered stream named `label`.
    pub fn new(label: impl Into<String>) -> Self {
        Self { label: label.into(), ordered: true, ..Self::default() }
    }

    /// Checks the description: at most one of `maxRetransmits` and
    /// `maxPacketLifeTime`; `negotiated` needs an `id`; ids below 65535;
    /// label and protocol under 65536 octets.
    pub fn check(&self) -> Result<(), Error> {
        let bad = |why: &str| Err(Error::InvalidDescription(format!("data stream {:?}: {why}", self.label)));
        if self.max_retransmits.is_some() && self.max_packet_life_time.is_some() {
            return bad("maxRetransmits and maxPacketLifeTime exclude each other");
        }
        if self.negotiated && self.id.is_none() {
            return bad("a negotiated stream needs an id");
        }
        if self.id == Some(u16::MAX) {
            return bad("id 65535 is reserved");
        }
        if self.label.len() > usize::from(u16::MAX) || self.protocol.len() > usize::from(u16::MAX) {
            return bad("label and protocol are at most 65535 octets");
        }
        Ok(())
    }
}

impl std::fmt::Debug for ConnectionDescription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionDescription")
            .field("cname", &self.cname)
            .field("context_id", &self.context_id)
            .field("secret", &self.secret.as_ref().map(|_| "…"))
            .field("keys", &self.keys)
            .field("sockets", &self.sockets)
            .field("streams", &self.streams)
            .field("data", &self.data)
            .field("data_streams", &self.data_streams)
            .finish()
    }
}

impl ConnectionDescription {
    /// Reads the JSON form.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        serde_json::from_str(text).map_err(|e| Error::InvalidDescription(e.to_string()))
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

mod ssrc_text {
    use super::*;

    pub(super) fn serialize<S: Serializer>(v: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&v.to_string()),
            None => s.serialize_none(),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        Num(u32),
        Text(String),
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        match Option::<Form>::deserialize(d)? {
            None => Ok(None),
            Some(Form::Num(n)) => Ok(Some(n)),
            Some(Form::Text(t)) => {
                t.parse().map(Some).map_err(|_| de::Error::custom("ssrc: not a 32-bit unsigned number"))
            }
        }
    }
}

mod kind_text {
    use super::*;

    pub(super) fn serialize<S: Serializer>(v: &Kind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.as_str())
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        One(Kind),
        List(Vec<Kind>),
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Kind, D::Error> {
        match Form::deserialize(d)? {
            Form::One(k) => Ok(k),
            Form::List(v) if v.len() == 1 => Ok(v[0]),
            Form::List(_) => Err(de::Error::custom("kind: a track has exactly one kind")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_description_uses_the_seed_names() {
        let d = ConnectionDescription {
            cname: Some("c".into()),
            context_id: Some("abcd".into()),
            secret: Some("s".into()),
            keys: vec![CryptoKey::parse("1 AES_CM_128_HMAC_SHA1_80 inline:AAAA").unwrap()],
            sockets: vec![],
            streams: vec![StreamDescription {
                stream_id: "st".into(),
                tracks: vec![TrackDescription {
                    track_id: "t".into(),
                    socket_id: Some("so".into()),
                    ssrc: Some(7),
                    rtx_ssrc: None,
                    kind: Kind::Audio,
                    options: None,
                    rid: None,
                    mid: None,
                }],
            }],
            data: Some(DataTransport::default()),
            data_streams: vec![DataStreamDescription { max_retransmits: Some(0), ..DataStreamDescription::new("x") }],
        };
        let j = d.to_json();
        for name in [
            "\"context-id\"",
            "\"secret\"",
            "\"crypto-suite\"",
            "\"key-params\"",
            "\"track-id\"",
            "\"socket-id\"",
            "\"max-message-size\":262144",
            "\"data-streams\"",
            "\"maxRetransmits\":0",
        ] {
            assert!(j.contains(name), "{name} missing from {j}");
        }
        assert!(j.contains("\"ssrc\":\"7\""), "{j}");
        assert_eq!(ConnectionDescription::from_json(&j).unwrap(), d);
    }

    #[test]
    fn lenient_forms_are_read() {
        let t: TrackDescription = serde_json::from_str(r#"{"track-id":"x","ssrc":12,"kind":["video"]}"#).unwrap();
        assert_eq!((t.ssrc, t.kind), (Some(12), Kind::Video));
        let o: SocketOptions = serde_json::from_str(r#"{"keys":["AEAD_AES_128_GCM"],"mux":false}"#).unwrap();
        assert_eq!(o.keys[0].crypto_suite, "AEAD_AES_128_GCM");
        assert!(!o.mux);
        assert!(ConnectionDescription::from_json(r#"{"contextId":"x"}"#).is_err());
        assert!(serde_json::from_str::<TrackDescription>(r#"{"track-id":"x","ssrc":"-1","kind":"audio"}"#).is_err());
    }
}
