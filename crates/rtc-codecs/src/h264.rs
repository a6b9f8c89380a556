//! H.264 `profile-level-id` (RFC 6184 section 8.1): three bytes in hex,
//! profile_idc, profile-iop (constraint_set0..5 flags and two reserved bits,
//! most significant first) and level_idc.

use crate::types::Parameters;

/// The sub-profile of RFC 6184 section 8.1 table 5; combinations the table
/// does not list are kept as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum H264Profile {
    ConstrainedBaseline,
    Baseline,
    Main,
    Extended,
    High,
    High10,
    High422,
    High444,
    High10Intra,
    High422Intra,
    High444Intra,
    Cavlc444Intra,
    /// Not in table 5: profile_idc and profile-iop (for 66, 77 and 88 without
    /// constraint_set3_flag, which is part of the level there).
    Other(u8, u8),
}

/// Table 5 of RFC 6184 section 8.1: (profile_idc, mask, value) of the
/// profile-iop bits that matter, and the sub-profile. An `x` in the table is
/// a zero bit in the mask.
const TABLE5: [(u8, u8, u8, H264Profile); 14] = [
    (0x42, 0b0100_1111, 0b0100_0000, H264Profile::ConstrainedBaseline), // x1xx0000
    (0x4D, 0b1000_1111, 0b1000_0000, H264Profile::ConstrainedBaseline), // 1xxx0000
    (0x58, 0b1100_1111, 0b1100_0000, H264Profile::ConstrainedBaseline), // 11xx0000
    (0x42, 0b0100_1111, 0b0000_0000, H264Profile::Baseline),            // x0xx0000
    (0x58, 0b1100_1111, 0b1000_0000, H264Profile::Baseline),            // 10xx0000
    (0x4D, 0b1010_1111, 0b0000_0000, H264Profile::Main),                // 0x0x0000
    (0x58, 0b1100_1111, 0b0000_0000, H264Profile::Extended),            // 00xx0000
    (0x64, 0xFF, 0b0000_0000, H264Profile::High),
    (0x6E, 0xFF, 0b0000_0000, H264Profile::High10),
    (0x7A, 0xFF, 0b0000_0000, H264Profile::High422),
    (0xF4, 0xFF, 0b0000_0000, H264Profile::High444),
    (0x6E, 0xFF, 0b0001_0000, H264Profile::High10Intra),
    (0x7A, 0xFF, 0b0001_0000, H264Profile::High422Intra),
    (0xF4, 0xFF, 0b0001_0000, H264Profile::High444Intra),
];

/// Profiles where constraint_set3_flag with level_idc 11 means level 1b
/// (Baseline, Main, Extended: RFC 6184 section 8.1).
fn is_bme(idc: u8) -> bool {
    matches!(idc, 0x42 | 0x4D | 0x58)
}

impl H264Profile {
    fn classify(idc: u8, iop: u8) -> Self {
        if idc == 0x2C && iop == 0b0001_0000 {
            return H264Profile::Cavlc444Intra;
        }
        TABLE5
            .iter()
            .find(|(i, mask, value, _)| *i == idc && iop & mask == *value)
            .map(|t| t.3)
            .unwrap_or(H264Profile::Other(idc, if is_bme(idc) { iop & !0x10 } else { iop }))
    }

    /// One canonical (profile_idc, profile-iop) for the sub-profile.
    fn bytes(self) -> (u8, u8) {
        match self {
            H264Profile::ConstrainedBaseline => (0x42, 0xE0),
            H264Profile::Baseline => (0x42, 0x00),
            H264Profile::Main => (0x4D, 0x00),
            H264Profile::Extended => (0x58, 0x00),
            H264Profile::High => (0x64, 0x00),
            H264Profile::High10 => (0x6E, 0x00),
            H264Profile::High422 => (0x7A, 0x00),
            H264Profile::High444 => (0xF4, 0x00),
            H264Profile::High10Intra => (0x6E, 0x10),
            H264Profile::High422Intra => (0x7A, 0x10),
            H264Profile::High444Intra => (0xF4, 0x10),
            H264Profile::Cavlc444Intra => (0x2C, 0x10),
            H264Profile::Other(idc, iop) => (idc, iop),
        }
    }
}

/// A level, ordered: twice level_idc, with level 1b (between 1 and 1.1) as 21.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Level(u16);

impl Level {
    const L1B: Level = Level(21);

    /// MaxFS (macroblocks) and MaxMBPS (macroblocks per second) of ITU-T
    /// H.264 table A-1 for the highest level not above this one.
    pub(crate) fn limits(self) -> (u64, u64) {
        const TABLE_A1: [(u16, u64, u64); 17] = [
            (20, 99, 1_485),
            (21, 99, 1_485),
            (22, 396, 3_000),
            (24, 396, 6_000),
            (26, 396, 11_880),
            (40, 396, 11_880),
            (42, 792, 19_800),
            (44, 1_620, 20_250),
            (60, 1_620, 40_500),
            (62, 3_600, 108_000),
            (64, 5_120, 216_000),
            (80, 8_192, 245_760),
            (82, 8_192, 245_760),
            (84, 8_704, 522_240),
            (100, 22_080, 589_824),
            (102, 36_864, 983_040),
            (104, 36_864, 2_073_600),
        ];
        TABLE_A1.iter().rev().find(|(l, _, _)| *l <= self.0).map_or((99, 1_485), |(_, fs, mbps)| (*fs, *mbps))
    }
}

/// The sub-profile and level of `profile-level-id`; absent means Baseline at
/// level 1 (RFC 6184 section 8.1). `None` when it is not three hex bytes.
pub(crate) fn profile_level(p: &Parameters) -> Option<(H264Profile, Level)> {
    let Some(s) = p.get("profile-level-id") else {
        return Some((H264Profile::Baseline, Level(20)));
    };
    let s = s.trim();
    if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&s[i..i + 2], 16).ok();
    let (idc, iop, level_idc) = (byte(0)?, byte(2)?, byte(4)?);
    let level = if (is_bme(idc) && level_idc == 11 && iop & 0x10 != 0) || level_idc == 9 {
        Level::L1B
    } else {
        Level(u16::from(level_idc) * 2)
    };
    Some((H264Profile::classify(idc, iop), level))
}

/// Writes the lowercase hex `profile-level-id` for a sub-profile and level.
fn format(profile: H264Profile, level: Level) -> String {
    let (idc, mut iop) = profile.bytes();
    let level_idc = if level == Level::L1B {
        if is_bme(idc) {
            iop |= 0x10;
            11
        } else {
            9
        }
    } else {
        // Levels come from a level_idc byte, so this fits.
        u8::try_from(level.0 / 2).unwrap_or(u8::MAX)
    };
    format!("{idc:02x}{iop:02x}{level_idc:02x}")
}

/// Adds the agreed `profile-level-id` and `packetization-mode` of two
/// entries of the same format. RFC 6184 section 8.2.2: the profile and
/// packetization-mode are symmetric; the agreed level is the lower one
/// (the common level when level asymmetry is not allowed, and the safe one
/// for both directions when it is).
pub(crate) fn merge_into(x: &Parameters, y: &Parameters, out: &mut Parameters) {
    if let (Some((profile, lx)), Some((_, ly))) = (profile_level(x), profile_level(y)) {
        out.insert("profile-level-id", format(profile, lx.min(ly)));
    }
    let mode = x.get("packetization-mode").and_then(|v| v.trim().parse::<u8>().ok()).unwrap_or(0);
    out.insert("packetization-mode", mode.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pl(s: &str) -> Option<(H264Profile, Level)> {
        profile_level(&[("profile-level-id", s)].into_iter().collect())
    }

    #[test]
    fn table5_equivalents() {
        // RFC 6184 table 5: 42 x1xx0000, 4D 1xxx0000 and 58 11xx0000 are all
        // Constrained Baseline.
        for s in ["42e01f", "42c01f", "4d801f", "58c01f"] {
            assert_eq!(pl(s).map(|p| p.0), Some(H264Profile::ConstrainedBaseline), "{s}");
        }
        assert_eq!(pl("42001f").map(|p| p.0), Some(H264Profile::Baseline));
        assert_eq!(pl("4d001f").map(|p| p.0), Some(H264Profile::Main));
        assert_eq!(pl("64001f").map(|p| p.0), Some(H264Profile::High));
        assert_eq!(pl("640c1f").map(|p| p.0), Some(H264Profile::Other(0x64, 0x0c)));
        assert_eq!(pl("f4001f").map(|p| p.0), Some(H264Profile::High444));
        assert_eq!(pl("42e0zz"), None);
        assert_eq!(pl("42e01"), None);
    }

    #[test]
    fn level_1b_orders_between_1_and_1_1() {
        let l1 = pl("42e00a").map(|p| p.1);
        let l1b = pl("42f00b").map(|p| p.1);
        let l11 = pl("42e00b").map(|p| p.1);
        assert!(l1 < l1b && l1b < l11);
        assert_eq!(pl("640009").map(|p| p.1), l1b);
        assert_eq!(format(H264Profile::ConstrainedBaseline, Level::L1B), "42f00b");
        assert_eq!(format(H264Profile::High, Level::L1B), "640009");
    }

    #[test]
    fn merge_keeps_profile_and_lower_level() {
        let x: Parameters = [("profile-level-id", "42e01f"), ("packetization-mode", "1")].into_iter().collect();
        let y: Parameters = [("profile-level-id", "42C015"), ("packetization-mode", "1")].into_iter().collect();
        let mut out = Parameters::new();
        merge_into(&x, &y, &mut out);
        assert_eq!(out.get("profile-level-id"), Some("42e015"));
        assert_eq!(out.get("packetization-mode"), Some("1"));
        // Level 3.1 allows 3600 macroblocks: 1280x720.
        assert_eq!(pl("42e01f").map(|p| p.1.limits().0), Some(3_600));
    }
}
