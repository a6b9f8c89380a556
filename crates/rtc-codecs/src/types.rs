//! The seed's `RTCConnectionOptionsDictionary`: `codecs`, `required` and
//! `optional`, plus the header extensions an `m=` section carries.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::error::OptionsError;

/// An RTP payload type (RFC 3550 section 5.1: seven bits). Static values of
/// RFC 3551 section 6 have named constants; any other value in 0..=127 is
/// kept as it is, so an unknown payload type survives a round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PayloadType(u8);

impl PayloadType {
    /// PCMU, audio 8000 Hz mono (RFC 3551 section 6, table 4).
    pub const PCMU: Self = Self(0);
    /// GSM, audio 8000 Hz mono.
    pub const GSM: Self = Self(3);
    /// G723, audio 8000 Hz mono.
    pub const G723: Self = Self(4);
    /// DVI4, audio 8000 Hz mono.
    pub const DVI4_8000: Self = Self(5);
    /// DVI4, audio 16000 Hz mono.
    pub const DVI4_16000: Self = Self(6);
    /// LPC, audio 8000 Hz mono.
    pub const LPC: Self = Self(7);
    /// PCMA, audio 8000 Hz mono.
    pub const PCMA: Self = Self(8);
    /// G722, audio; its RTP clock is 8000 Hz although it samples at 16000 (RFC 3551 section 4.5.2).
    pub const G722: Self = Self(9);
    /// L16, audio 44100 Hz stereo.
    pub const L16_STEREO: Self = Self(10);
    /// L16, audio 44100 Hz mono.
    pub const L16_MONO: Self = Self(11);
    /// QCELP, audio 8000 Hz mono.
    pub const QCELP: Self = Self(12);
    /// CN (comfort noise), audio 8000 Hz mono.
    pub const CN: Self = Self(13);
    /// MPA, audio 90000 Hz.
    pub const MPA: Self = Self(14);
    /// G728, audio 8000 Hz mono.
    pub const G728: Self = Self(15);
    /// DVI4, audio 11025 Hz mono.
    pub const DVI4_11025: Self = Self(16);
    /// DVI4, audio 22050 Hz mono.
    pub const DVI4_22050: Self = Self(17);
    /// G729, audio 8000 Hz mono.
    pub const G729: Self = Self(18);
    /// CelB, video 90000 Hz (RFC 3551 section 6, table 5).
    pub const CELB: Self = Self(25);
    /// JPEG, video 90000 Hz.
    pub const JPEG: Self = Self(26);
    /// nv, video 90000 Hz.
    pub const NV: Self = Self(28);
    /// H261, video 90000 Hz.
    pub const H261: Self = Self(31);
    /// MPV, video 90000 Hz.
    pub const MPV: Self = Self(32);
    /// MP2T, audio/video 90000 Hz.
    pub const MP2T: Self = Self(33);
    /// H263, video 90000 Hz.
    pub const H263: Self = Self(34);
    /// First payload type of the dynamic range (RFC 3551 section 3).
    pub const DYNAMIC_FIRST: Self = Self(96);
    /// Last payload type of the dynamic range.
    pub const DYNAMIC_LAST: Self = Self(127);

    /// A payload type, or `None` above 127.
    pub const fn new(value: u8) -> Option<Self> {
        if value <= 127 { Some(Self(value)) } else { None }
    }

    /// The number.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// Whether the value is in the dynamic range 96..=127.
    pub const fn is_dynamic(self) -> bool {
        self.0 >= 96
    }

    /// The static mapping of RFC 3551 section 6 (tables 4 and 5): kind,
    /// encoding name, clock rate and channel count, used when an `m=` line
    /// lists a static payload type without `a=rtpmap` (RFC 3264 section 5.1).
    pub fn static_mapping(self) -> Option<(Kind, &'static str, u32, u16)> {
        use Kind::{Audio, Video};
        Some(match self.0 {
            0 => (Audio, "PCMU", 8000, 1),
            3 => (Audio, "GSM", 8000, 1),
            4 => (Audio, "G723", 8000, 1),
            5 => (Audio, "DVI4", 8000, 1),
            6 => (Audio, "DVI4", 16000, 1),
            7 => (Audio, "LPC", 8000, 1),
            8 => (Audio, "PCMA", 8000, 1),
            9 => (Audio, "G722", 8000, 1),
            10 => (Audio, "L16", 44100, 2),
            11 => (Audio, "L16", 44100, 1),
            12 => (Audio, "QCELP", 8000, 1),
            13 => (Audio, "CN", 8000, 1),
            14 => (Audio, "MPA", 90000, 1),
            15 => (Audio, "G728", 8000, 1),
            16 => (Audio, "DVI4", 11025, 1),
            17 => (Audio, "DVI4", 22050, 1),
            18 => (Audio, "G729", 8000, 1),
            25 => (Video, "CelB", 90000, 1),
            26 => (Video, "JPEG", 90000, 1),
            28 => (Video, "nv", 90000, 1),
            31 => (Video, "H261", 90000, 1),
            32 => (Video, "MPV", 90000, 1),
            33 => (Video, "MP2T", 90000, 1),
            34 => (Video, "H263", 90000, 1),
            _ => return None,
        })
    }
}

impl fmt::Display for PayloadType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for PayloadType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.0)
    }
}

impl<'de> Deserialize<'de> for PayloadType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u64::deserialize(d)?;
        u8::try_from(v)
            .ok()
            .and_then(PayloadType::new)
            .ok_or_else(|| de::Error::custom("payload type above 127 (RFC 3550 section 5.1: seven bits)"))
    }
}

/// The media kind of a codec or constraint set: the `m=` media of RFC 8866
/// section 5.14 that carries RTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `audio`
    Audio,
    /// `video`
    Video,
}

impl Kind {
    /// Both kinds, audio first.
    pub const ALL: [Kind; 2] = [Kind::Audio, Kind::Video];

    /// The SDP media token.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Audio => "audio",
            Kind::Video => "video",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        if s.eq_ignore_ascii_case("audio") {
            Ok(Kind::Audio)
        } else if s.eq_ignore_ascii_case("video") {
            Ok(Kind::Video)
        } else {
            Err(())
        }
    }
}

/// Format parameters (`a=fmtp`, RFC 8866 section 6.15), by name. Names are
/// case-insensitive (media type parameters, RFC 6838 section 4.3) and kept in
/// lower case; values keep their spelling. A parameter written without `=`
/// (the `0-15` of telephone-event, the `111/111` of RED) is a name with an
/// empty value. In JSON a value may be a string or a number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Parameters(BTreeMap<String, String>);

impl Parameters {
    /// No parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `name` (any case).
    pub fn get(&self, name: &str) -> Option<&str> {
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            self.0.get(&name.to_ascii_lowercase()).map(String::as_str)
        } else {
            self.0.get(name).map(String::as_str)
        }
    }

    /// Sets `name` (stored in lower case) to `value`.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let mut name = name.into();
        name.make_ascii_lowercase();
        self.0.insert(name, value.into());
    }

    /// Removes `name`, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.0.remove(&name.to_ascii_lowercase())
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Name and value pairs, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Parameters {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut p = Parameters::new();
        for (k, v) in iter {
            p.insert(k, v);
        }
        p
    }
}

impl Serialize for Parameters {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Parameters {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Parameters;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of format parameters")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parameters, A::Error> {
                let mut p = Parameters::new();
                while let Some((k, v)) = map.next_entry::<String, ParamValue>()? {
                    if p.get(&k).is_some() {
                        return Err(de::Error::custom("format parameter named twice (names ignore case)"));
                    }
                    p.insert(k, v.0);
                }
                Ok(p)
            }
        }
        d.deserialize_map(V)
    }
}

/// A parameter value given as a string or a number.
struct ParamValue(String);

impl<'de> Deserialize<'de> for ParamValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ParamValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a non-negative integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ParamValue, E> {
                Ok(ParamValue(v.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ParamValue, E> {
                Ok(ParamValue(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ParamValue, E> {
                u64::try_from(v).map(|v| ParamValue(v.to_string())).map_err(|_| E::custom("negative parameter"))
            }
        }
        d.deserialize_any(V)
    }
}

/// One RTCP feedback capability (`a=rtcp-fb`, RFC 4585 section 4.2): a type
/// such as `nack`, `ccm`, `transport-cc`, `goog-remb`, and its parameter
/// (`pli`, `fir`, …). Both are kept in lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feedback {
    /// The feedback type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The parameter, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
}

impl Feedback {
    /// A feedback capability (lower-cased).
    pub fn new(kind: &str, parameter: Option<&str>) -> Self {
        Self { kind: kind.to_ascii_lowercase(), parameter: parameter.map(str::to_ascii_lowercase) }
    }
}

impl fmt::Display for Feedback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind)?;
        if let Some(p) = &self.parameter {
            write!(f, " {p}")?;
        }
        Ok(())
    }
}

/// One entry of the seed's `CodecsDictionary`, with its format parameters and
/// RTCP feedback.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Codec {
    /// The RTP payload type (`payloadId`; the seed's `payload-id` is accepted).
    #[serde(alias = "payload-id")]
    pub payload_id: PayloadType,
    /// `audio` or `video`.
    pub kind: Kind,
    /// The encoding name (`opus`, `VP8`, `H264`, `rtx`, …), compared without case.
    pub name: String,
    /// The RTP clock rate in Hz.
    pub hz_rate: u32,
    /// Audio channels; absent means one (RFC 8866 section 6.6). Video codecs have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<u16>,
    /// Format parameters (`a=fmtp`).
    #[serde(default, skip_serializing_if = "Parameters::is_empty")]
    pub parameters: Parameters,
    /// RTCP feedback (`a=rtcp-fb`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rtcp_feedback: Vec<Feedback>,
}

impl Codec {
    /// A codec without parameters or feedback.
    pub fn new(payload_id: PayloadType, kind: Kind, name: &str, hz_rate: u32, channels: Option<u16>) -> Self {
        Self {
            payload_id,
            kind,
            name: name.to_owned(),
            hz_rate,
            channels,
            parameters: Parameters::new(),
            rtcp_feedback: Vec::new(),
        }
    }

    /// The channel count used for matching: audio defaults to 1, video has 0.
    pub fn channel_count(&self) -> u16 {
        match self.kind {
            Kind::Audio => self.channels.unwrap_or(1),
            Kind::Video => 0,
        }
    }

    /// Whether the name is `name`, ignoring case.
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

/// An RTP header extension (`a=extmap`, RFC 8285 section 8) used for a kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderExtension {
    /// The `m=` section kind it is used in.
    pub kind: Kind,
    /// The local identifier, 1..=255 (RFC 8285 section 5: 1-14 fit the one-byte form).
    pub id: u8,
    /// The extension's URI.
    pub uri: String,
}

/// Limits on one kind of media: the seed's "Audio/Video options". Each is
/// optional; widths and heights are pixels, framerate frames per second,
/// bitrate bits per second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MediaConstraints {
    /// Largest width (video). The seed spells it `maxWdith`; that is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "maxWdith")]
    pub max_width: Option<u32>,
    /// Largest height (video).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_height: Option<u32>,
    /// Largest frame rate (video).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_framerate: Option<u32>,
    /// Largest bitrate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bitrate: Option<u32>,
    /// Most channels (audio).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_channels: Option<u32>,
    /// Smallest width (video).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_width: Option<u32>,
    /// Smallest height (video).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_height: Option<u32>,
    /// Smallest frame rate (video).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_framerate: Option<u32>,
    /// Smallest bitrate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_bitrate: Option<u32>,
    /// Fewest channels (audio).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_channels: Option<u32>,
}

/// What a constraint limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dimension {
    /// Pixels across.
    Width,
    /// Pixels down.
    Height,
    /// Frames per second.
    Framerate,
    /// Bits per second.
    Bitrate,
    /// Audio channels.
    Channels,
}

impl Dimension {
    /// Every dimension.
    pub const ALL: [Dimension; 5] =
        [Dimension::Width, Dimension::Height, Dimension::Framerate, Dimension::Bitrate, Dimension::Channels];

    /// Whether it applies to `kind`.
    pub fn applies_to(self, kind: Kind) -> bool {
        match self {
            Dimension::Width | Dimension::Height | Dimension::Framerate => kind == Kind::Video,
            Dimension::Channels => kind == Kind::Audio,
            Dimension::Bitrate => true,
        }
    }

    /// The dictionary name of its lower (`min…`) bound.
    pub fn min_name(self) -> &'static str {
        match self {
            Dimension::Width => "minWidth",
            Dimension::Height => "minHeight",
            Dimension::Framerate => "minFramerate",
            Dimension::Bitrate => "minBitrate",
            Dimension::Channels => "minChannels",
        }
    }

    /// The dictionary name of its upper (`max…`) bound.
    pub fn max_name(self) -> &'static str {
        match self {
            Dimension::Width => "maxWidth",
            Dimension::Height => "maxHeight",
            Dimension::Framerate => "maxFramerate",
            Dimension::Bitrate => "maxBitrate",
            Dimension::Channels => "maxChannels",
        }
    }
}

impl MediaConstraints {
    /// The lower bound on `d`.
    pub fn min(&self, d: Dimension) -> Option<u32> {
        match d {
            Dimension::Width => self.min_width,
            Dimension::Height => self.min_height,
            Dimension::Framerate => self.min_framerate,
            Dimension::Bitrate => self.min_bitrate,
            Dimension::Channels => self.min_channels,
        }
    }

    /// The upper bound on `d`.
    pub fn max(&self, d: Dimension) -> Option<u32> {
        match d {
            Dimension::Width => self.max_width,
            Dimension::Height => self.max_height,
            Dimension::Framerate => self.max_framerate,
            Dimension::Bitrate => self.max_bitrate,
            Dimension::Channels => self.max_channels,
        }
    }

    /// Sets the lower bound on `d`.
    pub fn set_min(&mut self, d: Dimension, v: Option<u32>) {
        *match d {
            Dimension::Width => &mut self.min_width,
            Dimension::Height => &mut self.min_height,
            Dimension::Framerate => &mut self.min_framerate,
            Dimension::Bitrate => &mut self.min_bitrate,
            Dimension::Channels => &mut self.min_channels,
        } = v;
    }

    /// Sets the upper bound on `d`.
    pub fn set_max(&mut self, d: Dimension, v: Option<u32>) {
        *match d {
            Dimension::Width => &mut self.max_width,
            Dimension::Height => &mut self.max_height,
            Dimension::Framerate => &mut self.max_framerate,
            Dimension::Bitrate => &mut self.max_bitrate,
            Dimension::Channels => &mut self.max_channels,
        } = v;
    }

    /// Whether no bound is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Constraints per kind: the seed's `required` and `optional` objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constraints {
    /// Audio limits.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "non_empty")]
    pub audio: Option<MediaConstraints>,
    /// Video limits.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "non_empty")]
    pub video: Option<MediaConstraints>,
}

/// An empty set of limits (`"video": {}`) is the same as none.
fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<MediaConstraints>, D::Error> {
    Ok(Option::<MediaConstraints>::deserialize(d)?.filter(|c| !c.is_empty()))
}

impl Constraints {
    /// The limits for `kind` (empty when absent).
    pub fn get(&self, kind: Kind) -> MediaConstraints {
        match kind {
            Kind::Audio => self.audio,
            Kind::Video => self.video,
        }
        .unwrap_or_default()
    }

    /// Sets the limits for `kind`; an empty set is stored as absent.
    pub fn set(&mut self, kind: Kind, c: MediaConstraints) {
        let v = (!c.is_empty()).then_some(c);
        match kind {
            Kind::Audio => self.audio = v,
            Kind::Video => self.video = v,
        }
    }

    /// Whether no kind has a bound.
    pub fn is_empty(&self) -> bool {
        Kind::ALL.iter().all(|k| self.get(*k).is_empty())
    }
}

/// The seed's `RTCConnectionOptionsDictionary`: codecs in order of
/// preference, header extensions, and required and optional limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Options {
    /// Codecs, most preferred first.
    #[serde(default)]
    pub codecs: Vec<Codec>,
    /// RTP header extensions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub header_extensions: Vec<HeaderExtension>,
    /// Limits that must hold.
    #[serde(default, skip_serializing_if = "Constraints::is_empty")]
    pub required: Constraints,
    /// Limits applied when they can be.
    #[serde(default, skip_serializing_if = "Constraints::is_empty")]
    pub optional: Constraints,
}

impl Options {
    /// Reads a JSON options dictionary and checks it with [`Options::validate`].
    pub fn from_json(text: &str) -> Result<Self, OptionsError> {
        let o: Options = serde_json::from_str(text)?;
        o.validate()?;
        Ok(o)
    }

    /// The dictionary as JSON.
    pub fn to_json(&self) -> String {
        // Serializing these types cannot fail: every map key is a string.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The codecs of one kind, in order.
    pub fn codecs_of(&self, kind: Kind) -> impl Iterator<Item = &Codec> {
        self.codecs.iter().filter(move |c| c.kind == kind)
    }

    /// Checks what the types alone cannot: a payload type names one codec per
    /// kind, names are not empty, clock rates and channel counts are not zero,
    /// header extension IDs are not 0 and name one URI per kind, feedback
    /// types are not empty, constraints apply to their kind, and a dictionary's
    /// own required minimum is not above its required maximum.
    pub fn validate(&self) -> Result<(), OptionsError> {
        for (i, c) in self.codecs.iter().enumerate() {
            let bad = |reason| Err(OptionsError::Codec { payload_id: c.payload_id, reason });
            if c.name.is_empty() {
                return bad("empty name");
            }
            if c.hz_rate == 0 {
                return bad("hzRate is 0");
            }
            if c.channels == Some(0) {
                return bad("channels is 0");
            }
            if c.rtcp_feedback.iter().any(|f| f.kind.is_empty()) {
                return bad("empty feedback type");
            }
            if self.codecs[..i].iter().any(|o| o.kind == c.kind && o.payload_id == c.payload_id) {
                return Err(OptionsError::DuplicatePayloadType { kind: c.kind, payload_id: c.payload_id });
            }
        }
        for (i, e) in self.header_extensions.iter().enumerate() {
            if e.id == 0 {
                return Err(OptionsError::HeaderExtension {
                    id: e.id,
                    reason: "id 0 is not an extension (RFC 8285 section 4.2)",
                });
            }
            if e.uri.is_empty() {
                return Err(OptionsError::HeaderExtension { id: e.id, reason: "empty uri" });
            }
            if self.header_extensions[..i].iter().any(|o| o.kind == e.kind && o.id == e.id) {
                return Err(OptionsError::HeaderExtension { id: e.id, reason: "id used twice in one kind" });
            }
        }
        for (which, set) in [("required", &self.required), ("optional", &self.optional)] {
            for kind in Kind::ALL {
                let c = set.get(kind);
                for d in Dimension::ALL {
                    if !d.applies_to(kind) && (c.min(d).is_some() || c.max(d).is_some()) {
                        let name = if c.min(d).is_some() { d.min_name() } else { d.max_name() };
                        return Err(OptionsError::Constraint { kind, name, reason: "does not apply to this kind" });
                    }
                    if which == "required"
                        && let (Some(lo), Some(hi)) = (c.min(d), c.max(d))
                        && lo > hi
                    {
                        return Err(OptionsError::Constraint {
                            kind,
                            name: d.min_name(),
                            reason: "above the required maximum of the same dictionary",
                        });
                    }
                }
            }
        }
        Ok(())
    }
}
