//! Per-codec rules: what must be equal for two codec entries to be the same
//! format, how their format parameters merge, and what a codec can carry.
//!
//! Every merge here is a meet: commutative (`merge(a, b) == merge(b, a)`),
//! idempotent (`merge(merge(a, b), b) == merge(a, b)`), so negotiation does
//! not depend on who offers and negotiating its result again changes nothing.

use crate::h264::{self, H264Profile};
use crate::types::{Codec, Dimension, Feedback, Kind, MediaConstraints, Parameters};

/// Codec families with their own rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    H264,
    H265,
    Vp8,
    Vp9,
    Av1,
    Opus,
    Rtx,
    Red,
    Other,
}

pub(crate) fn family(c: &Codec) -> Family {
    let n = c.name.as_str();
    if n.eq_ignore_ascii_case("H264") {
        Family::H264
    } else if n.eq_ignore_ascii_case("H265") {
        Family::H265
    } else if n.eq_ignore_ascii_case("VP8") {
        Family::Vp8
    } else if n.eq_ignore_ascii_case("VP9") {
        Family::Vp9
    } else if n.eq_ignore_ascii_case("AV1") {
        Family::Av1
    } else if n.eq_ignore_ascii_case("opus") {
        Family::Opus
    } else if n.eq_ignore_ascii_case("rtx") {
        Family::Rtx
    } else if n.eq_ignore_ascii_case("red") {
        Family::Red
    } else {
        Family::Other
    }
}

/// Codecs that carry no media of their own: retransmission (RFC 4588),
/// redundancy (RFC 2198), FEC (RFC 5109, flexfec), comfort noise (RFC 3389)
/// and DTMF events (RFC 4733). A kind whose agreed codecs are all helpers has
/// agreed on nothing.
pub(crate) fn is_helper(c: &Codec) -> bool {
    ["rtx", "red", "ulpfec", "flexfec-03", "flexfec", "cn", "telephone-event"].iter().any(|n| c.is(n))
}

/// The parameters that identify a format configuration: two entries with
/// the same kind, name, clock rate and channels match only when these agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum FormatKey {
    Plain,
    /// RFC 6184 section 8.2.2: packetization-mode and the profile part of
    /// profile-level-id are used symmetrically; the level is not.
    H264 {
        mode: u8,
        profile: H264Profile,
    },
    /// RFC 7798 section 7.2.2: profile-space (default 0), profile-id
    /// (default 1, Main), tier-flag (default 0) and tx-mode (default SRST)
    /// are used symmetrically; level-id is not.
    H265 {
        space: u8,
        profile: u8,
        tier: u8,
        single_stream: bool,
    },
    /// VP9 `profile-id` (default 0) must match.
    Vp9(u8),
    /// AV1 `profile` (default 0) must match.
    Av1(u8),
}

fn num(p: &Parameters, name: &str) -> Option<Option<u64>> {
    match p.get(name) {
        None => Some(None),
        Some(v) => v.trim().parse().ok().map(Some),
    }
}

/// The format key, or `None` when a parameter that decides it is unreadable
/// (such an entry matches nothing).
pub(crate) fn format_key(c: &Codec) -> Option<FormatKey> {
    let p = &c.parameters;
    Some(match family(c) {
        Family::H264 => {
            // RFC 6184 section 8.1: packetization-mode absent means 0.
            let mode = num(p, "packetization-mode")?.unwrap_or(0);
            let (profile, _) = h264::profile_level(p)?;
            FormatKey::H264 { mode: u8::try_from(mode).ok()?, profile }
        }
        Family::H265 => FormatKey::H265 {
            space: u8::try_from(num(p, "profile-space")?.unwrap_or(0)).ok()?,
            profile: u8::try_from(num(p, "profile-id")?.unwrap_or(1)).ok()?,
            tier: u8::try_from(num(p, "tier-flag")?.unwrap_or(0)).ok()?,
            single_stream: p.get("tx-mode").is_none_or(|m| m.trim().eq_ignore_ascii_case("SRST")),
        },
        Family::Vp9 => FormatKey::Vp9(u8::try_from(num(p, "profile-id")?.unwrap_or(0)).ok()?),
        Family::Av1 => FormatKey::Av1(u8::try_from(num(p, "profile")?.unwrap_or(0)).ok()?),
        _ => FormatKey::Plain,
    })
}

/// Whether two entries are the same format (kind, name without case, clock
/// rate, channels with audio defaulting to 1, and the format key).
pub(crate) fn same_format(x: &Codec, y: &Codec) -> bool {
    x.kind == y.kind
        && x.name.eq_ignore_ascii_case(&y.name)
        && x.hz_rate == y.hz_rate
        && x.channel_count() == y.channel_count()
        && format_key(x).is_some_and(|k| format_key(y) == Some(k))
}

/// How one named parameter merges.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// A receiver limit: the smaller of the stated values; absent means no limit.
    MinAny,
    /// A limit whose absence means a lower default: kept only when both state it.
    MinBoth,
    /// A limit with a default: written when either states it, the smaller value.
    MinDefault(u64),
    /// A lower bound: the larger of the stated values.
    MaxAny,
    /// A flag that defaults to 0: 1 only when both say 1.
    And,
    /// A flag that defaults to 0: 1 when either says 1.
    Or,
    /// Part of the format key with a default: written when either states it.
    Key(u64),
    /// Set by the negotiator or not carried into an agreement.
    Skip,
}

/// The rules of a family, and whether parameters it does not name are kept
/// when both sides give them the same value (else they are dropped).
fn rules(f: Family) -> (&'static [(&'static str, Rule)], bool) {
    match f {
        // RFC 6184 section 8.1/8.2.2. profile-level-id and packetization-mode
        // are written by the H.264 merge itself; sprop-* describe one sender's
        // stream and do not carry into a shared agreement.
        Family::H264 => (
            &[
                ("profile-level-id", Rule::Skip),
                ("packetization-mode", Rule::Skip),
                ("level-asymmetry-allowed", Rule::And),
                ("max-mbps", Rule::MinBoth),
                ("max-smbps", Rule::MinBoth),
                ("max-fs", Rule::MinBoth),
                ("max-cpb", Rule::MinBoth),
                ("max-dpb", Rule::MinBoth),
                ("max-br", Rule::MinBoth),
                ("max-recv-level", Rule::Skip),
                ("sprop-parameter-sets", Rule::Skip),
                ("sprop-level-parameter-sets", Rule::Skip),
                ("sprop-deint-buf-req", Rule::Skip),
                ("sprop-interleaving-depth", Rule::Skip),
                ("sprop-max-don-diff", Rule::Skip),
                ("sprop-init-buf-time", Rule::Skip),
            ],
            true,
        ),
        // RFC 7798 section 7.2.2: the format key is used symmetrically;
        // level-id (default 93, level 3.1) may be lower in the answer, so
        // the agreement keeps the lower; sprop-* describe one sender's
        // stream. Other parameters are kept when both sides agree.
        Family::H265 => (
            &[
                ("profile-space", Rule::Key(0)),
                ("profile-id", Rule::Key(1)),
                ("tier-flag", Rule::Key(0)),
                ("level-id", Rule::MinDefault(93)),
                ("sprop-vps", Rule::Skip),
                ("sprop-sps", Rule::Skip),
                ("sprop-pps", Rule::Skip),
                ("sprop-sei", Rule::Skip),
                ("sprop-max-don-diff", Rule::Skip),
                ("sprop-depack-buf-nalus", Rule::Skip),
                ("sprop-depack-buf-bytes", Rule::Skip),
            ],
            true,
        ),
        // RFC 7741 section 6.1: max-fr and max-fs are decoder limits.
        Family::Vp8 => (&[("max-fr", Rule::MinAny), ("max-fs", Rule::MinAny)], true),
        Family::Vp9 => (&[("profile-id", Rule::Key(0)), ("max-fr", Rule::MinAny), ("max-fs", Rule::MinAny)], true),
        // AV1 RTP payload format section 7.2: profile must match, level-idx
        // (default 5) and tier (default 0) are receiver limits.
        Family::Av1 => {
            (&[("profile", Rule::Key(0)), ("level-idx", Rule::MinDefault(5)), ("tier", Rule::MinDefault(0))], true)
        }
        // RFC 7587 section 6.1 and 7.1: all receive- or send-side preferences,
        // orthogonal between offer and answer; an agreement keeps what both
        // can live with. Unknown parameters "MUST be removed from the answer".
        Family::Opus => (
            &[
                ("minptime", Rule::MaxAny),
                ("ptime", Rule::MinAny),
                ("maxptime", Rule::MinAny),
                ("maxplaybackrate", Rule::MinAny),
                ("sprop-maxcapturerate", Rule::MinAny),
                ("maxaveragebitrate", Rule::MinAny),
                ("stereo", Rule::And),
                ("sprop-stereo", Rule::And),
                ("cbr", Rule::Or),
                ("useinbandfec", Rule::And),
                ("usedtx", Rule::And),
            ],
            false,
        ),
        // RFC 4588 section 8.6: apt is rewritten by the negotiator; rtx-time
        // is the receiver's buffer limit.
        Family::Rtx => (&[("apt", Rule::Skip), ("rtx-time", Rule::MinAny)], false),
        // RFC 2198: the redundancy list is rewritten by the negotiator.
        Family::Red => (&[], false),
        Family::Other => (&[], true),
    }
}

fn flag(v: Option<&str>) -> bool {
    v.is_some_and(|v| v.trim() == "1")
}

fn parsed(v: Option<&str>) -> Option<u64> {
    v.and_then(|v| v.trim().parse().ok())
}

/// Merges the format parameters of two entries of the same format. The
/// offerer's spelling is kept for values compared without case.
pub(crate) fn merge_parameters(offer: &Codec, answer: &Codec) -> Parameters {
    let fam = family(offer);
    let (table, keep_unknown) = rules(fam);
    let (x, y) = (&offer.parameters, &answer.parameters);
    let mut out = Parameters::new();
    let names: std::collections::BTreeSet<&str> = x.iter().chain(y.iter()).map(|(k, _)| k).collect();
    for name in names {
        let (a, b) = (x.get(name), y.get(name));
        let rule = table.iter().find(|(n, _)| *n == name).map(|(_, r)| *r);
        let value = match rule {
            None if keep_unknown => match (a, b) {
                (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => Some(a.to_owned()),
                _ => None,
            },
            None | Some(Rule::Skip) => None,
            Some(Rule::MinAny) => match (parsed(a), parsed(b)) {
                (Some(a), Some(b)) => Some(a.min(b).to_string()),
                (Some(v), None) | (None, Some(v)) => Some(v.to_string()),
                (None, None) => None,
            },
            Some(Rule::MaxAny) => match (parsed(a), parsed(b)) {
                (Some(a), Some(b)) => Some(a.max(b).to_string()),
                (Some(v), None) | (None, Some(v)) => Some(v.to_string()),
                (None, None) => None,
            },
            Some(Rule::MinBoth) => match (parsed(a), parsed(b)) {
                (Some(a), Some(b)) => Some(a.min(b).to_string()),
                _ => None,
            },
            Some(Rule::MinDefault(d)) => match (parsed(a), parsed(b)) {
                (None, None) => None,
                (a, b) => Some(a.unwrap_or(d).min(b.unwrap_or(d)).to_string()),
            },
            Some(Rule::Key(d)) => match (parsed(a), parsed(b)) {
                (None, None) => None,
                // Equal by the format key; written as a number.
                (a, b) => Some(a.or(b).unwrap_or(d).to_string()),
            },
            Some(Rule::And) => (flag(a) && flag(b)).then(|| "1".to_owned()),
            Some(Rule::Or) => (flag(a) || flag(b)).then(|| "1".to_owned()),
        };
        if let Some(v) = value {
            out.insert(name, v);
        }
    }
    if fam == Family::H264 {
        h264::merge_into(x, y, &mut out);
    }
    out
}

/// The feedback both sides list, in the offerer's order, without repeats
/// (RFC 4585 section 4.2: a feedback type is used only when both support it).
pub(crate) fn merge_feedback(offer: &Codec, answer: &Codec) -> Vec<Feedback> {
    let mut out: Vec<Feedback> = Vec::new();
    for f in &offer.rtcp_feedback {
        let f = Feedback::new(&f.kind, f.parameter.as_deref());
        let both = answer.rtcp_feedback.iter().any(|g| Feedback::new(&g.kind, g.parameter.as_deref()) == f);
        if both && !out.contains(&f) {
            out.push(f);
        }
    }
    out
}

/// What an agreed codec can carry, as far as its parameters tell.
#[derive(Debug, Clone, Copy, Default)]
struct Caps {
    /// Largest frame in 16x16 macroblocks.
    max_fs: Option<u64>,
    /// Largest frame rate.
    max_fr: Option<u64>,
    /// Largest macroblock rate per second.
    max_mbps: Option<u64>,
    /// Bitrate range in bits per second.
    bitrate: Option<(u64, u64)>,
    /// Channel count range.
    channels: Option<(u64, u64)>,
}

fn caps(c: &Codec) -> Caps {
    let p = &c.parameters;
    let n = u64::from(c.channel_count());
    match family(c) {
        Family::H264 => match h264::profile_level(p) {
            Some((_, level)) => {
                let (fs, mbps) = level.limits();
                Caps { max_fs: Some(fs), max_mbps: Some(mbps), ..Caps::default() }
            }
            None => Caps::default(),
        },
        Family::Vp8 | Family::Vp9 => {
            Caps { max_fs: parsed(p.get("max-fs")), max_fr: parsed(p.get("max-fr")), ..Caps::default() }
        }
        // RFC 7587 section 1: Opus runs from 6 kbit/s to 510 kbit/s; section
        // 7.1: a sender MUST NOT exceed maxaveragebitrate nor use stereo when
        // the receiver's stereo is 0.
        Family::Opus => Caps {
            bitrate: Some((6_000, parsed(p.get("maxaveragebitrate")).unwrap_or(510_000))),
            channels: Some((1, if flag(p.get("stereo")) { 2 } else { 1 })),
            ..Caps::default()
        },
        // RFC 3551 sections 4.5.14 and 4.5.2: G.711 is 8 bits at 8000 Hz and
        // G.722 is 64 kbit/s.
        _ if ["PCMU", "PCMA", "G722"].iter().any(|name| c.is(name)) => {
            Caps { bitrate: Some((64_000, 64_000)), channels: Some((n, n)), ..Caps::default() }
        }
        _ if c.kind == Kind::Audio => Caps { channels: Some((n, n)), ..Caps::default() },
        _ => Caps::default(),
    }
}

/// The first required constraint (in a fixed order) that the codec cannot
/// meet, or `None`.
pub(crate) fn unmet(c: &Codec, req: &MediaConstraints) -> Option<&'static str> {
    let caps = caps(c);
    let mb = |px: Option<u32>| px.map_or(1, |v| u64::from(v).div_ceil(16).max(1));
    let (w, h) = (mb(req.min_width), mb(req.min_height));
    if let Some(fs) = caps.max_fs {
        // RFC 7741 section 6.1: a side may be up to sqrt(max-fs * 8) macroblocks.
        let too_big = |side: u64| side * side > fs * 8 || w * h > fs;
        if req.min_width.is_some() && too_big(w) {
            return Some(Dimension::Width.min_name());
        }
        if req.min_height.is_some() && too_big(h) {
            return Some(Dimension::Height.min_name());
        }
    }
    if let Some(fr) = req.min_framerate.map(u64::from) {
        let over_fr = caps.max_fr.is_some_and(|m| fr > m);
        let over_mbps = caps.max_mbps.is_some_and(|m| fr * w * h > m);
        if over_fr || over_mbps {
            return Some(Dimension::Framerate.min_name());
        }
    }
    if let Some((lo, hi)) = caps.bitrate {
        if req.min_bitrate.is_some_and(|v| u64::from(v) > hi) {
            return Some(Dimension::Bitrate.min_name());
        }
        if req.max_bitrate.is_some_and(|v| u64::from(v) < lo) {
            return Some(Dimension::Bitrate.max_name());
        }
    }
    if let Some((lo, hi)) = caps.channels {
        if req.min_channels.is_some_and(|v| u64::from(v) > hi) {
            return Some(Dimension::Channels.min_name());
        }
        if req.max_channels.is_some_and(|v| u64::from(v) < lo) {
            return Some(Dimension::Channels.max_name());
        }
    }
    None
}

/// The fixed order in which [`unmet`] reports constraints.
pub(crate) const UNMET_ORDER: [&str; 7] =
    ["minWidth", "minHeight", "minFramerate", "minBitrate", "maxBitrate", "minChannels", "maxChannels"];
