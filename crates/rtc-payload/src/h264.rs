//! H.264 (RFC 6184), packetization modes 0 and 1.
//!
//! Sending takes an access unit in Annex B form (H.264 Annex B: NAL units each
//! after a `00 00 01` or `00 00 00 01` start code) and sends its NAL units in
//! order (section 6.1):
//!
//! - mode 1 (non-interleaved, section 6.3): consecutive units that fit one
//!   payload together go in a single-time aggregation packet, STAP-A (section
//!   5.7.1), as many as fit, when at least two do; any other unit that fits
//!   goes alone as a single NAL unit packet (section 5.6); a longer one goes
//!   in FU-A fragments (section 5.8), its body split evenly;
//! - mode 0 (single NAL unit, section 6.2): single NAL unit packets only, so
//!   every unit must fit one payload.
//!
//! The marker bit is on the access unit's last packet (section 5.1).
//!
//! Receiving takes single NAL unit packets, STAP-A and FU-A (section 7.1) in
//! either mode, and hands out each access unit in Annex B form with 4-octet
//! start codes.

use crate::nal::{Kind, Syntax};

/// RFC 6184 section 5.2, table 1: the packet types this payload format adds.
const STAP_A: u8 = 24;
/// Fragmentation unit A.
const FU_A: u8 = 28;
/// The NAL unit type of a coded slice of an IDR picture (H.264 table 7-1).
const IDR: u8 = 5;

/// The NAL unit type, the low 5 bits of its header octet (section 5.3).
fn nal_type(header: u8) -> u8 {
    header & 0x1f
}

/// Whether a NAL unit with this header may be sent as it is or in FU-A
/// fragments: forbidden_zero_bit clear and a type of H.264 itself, 1 to 23
/// (section 5.2). Types 0 and 24 to 31 would be read as something else; in an
/// access unit handed to the packetizer they mean the input is not Annex B
/// (for example AVCC, where each unit is prefixed by its length).
fn is_sendable(header: u8) -> bool {
    header & 0x80 == 0 && matches!(nal_type(header), 1..=23)
}

/// The FU indicator and FU header of one fragment of the NAL unit whose
/// header octet is `nal_header` (section 5.8): F and NRI from the unit, type
/// 28; then S, E, R = 0 and the unit's type.
fn fu_a_header(nal_header: u8, start: bool, end: bool) -> [u8; 2] {
    [(nal_header & 0xe0) | FU_A, (u8::from(start) << 7) | (u8::from(end) << 6) | nal_type(nal_header)]
}

/// H.264's headers for [`crate::nal`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct H264;

/// The send state of one access unit.
pub(crate) type Sender = crate::nal::Sender<H264>;
/// The receive state.
pub(crate) type Receiver = crate::nal::Receiver<H264>;

impl Syntax for H264 {
    const HEADER: usize = 1;
    const FU_HEADER: usize = 2;
    const NOT_ANNEX_B: &'static str = "not H.264 NAL units in Annex B form (forbidden bit set, or type 0 or 24 to 31)";

    /// Section 5.4, table 3 (non-interleaved mode): 1 to 23 single NAL unit
    /// packets, 24 STAP-A, 28 FU-A; 0, 30 and 31 reserved, "MUST be ignored
    /// by a receiver"; 25, 26, 27 and 29 (STAP-B, MTAP16, MTAP24, FU-B)
    /// belong to the interleaved mode.
    fn kind(header: &[u8]) -> Kind {
        match nal_type(header[0]) {
            1..=23 => Kind::Single,
            STAP_A => Kind::Aggregate,
            FU_A => Kind::Fragment,
            25..=27 | 29 => Kind::Unsupported,
            _ => Kind::Ignored,
        }
    }

    fn nal_type(header: &[u8]) -> u8 {
        nal_type(header[0])
    }

    fn sendable(header: &[u8]) -> bool {
        is_sendable(header[0])
    }

    fn fragment_header(header: &[u8], start: bool, end: bool) -> [u8; 3] {
        let [a, b] = fu_a_header(header[0], start, end);
        [a, b, 0]
    }

    /// Section 5.8: S, E and the type from the FU header; F and NRI of the
    /// reassembled unit from the FU indicator.
    fn fragment_parts(payload: &[u8]) -> Option<(bool, bool, [u8; 2])> {
        let (indicator, fu) = (*payload.first()?, *payload.get(1)?);
        Some((fu & 0x80 != 0, fu & 0x40 != 0, [(indicator & 0xe0) | nal_type(fu), 0]))
    }

    /// Section 5.7: F is the OR of the units' F bits (all clear here: only
    /// sendable units are aggregated), NRI the highest of theirs.
    fn fold(acc: [u8; 2], header: &[u8]) -> [u8; 2] {
        [(acc[0] & 0x80) | (header[0] & 0x80) | (acc[0] & 0x60).max(header[0] & 0x60), 0]
    }

    fn aggregate_header(acc: [u8; 2]) -> [u8; 2] {
        [(acc[0] & 0xe0) | STAP_A, 0]
    }

    fn key(header: &[u8]) -> bool {
        nal_type(header[0]) == IDR
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sendable_nal_headers() {
        assert!(is_sendable(0x65) && is_sendable(0x67) && is_sendable(0x01) && is_sendable(0x17));
        for h in [0x00, 0x7c, 0x78, 0xe5, 0x18, 0x1f, 0x80 | 0x41] {
            assert!(!is_sendable(h), "{h:#x}");
        }
    }

    /// RFC 6184 section 5.8, figure 14: FU indicator (F, NRI of the unit,
    /// type 28) and FU header (S, E, R = 0, the unit's type).
    #[test]
    fn fu_a_headers() {
        assert_eq!(fu_a_header(0x65, true, false), [0x7c, 0x85]);
        assert_eq!(fu_a_header(0x65, false, false), [0x7c, 0x05]);
        assert_eq!(fu_a_header(0x65, false, true), [0x7c, 0x45]);
        assert_eq!(fu_a_header(0x41, true, false), [0x5c, 0x81]);
    }

    use crate::nal::START_CODE;
    use crate::testing::{packetize, push as h, receive};
    use crate::{Depacketizer, Error, Format, H264Mode, Packetizer};

    const MODE0: Format = Format::H264 { mode: H264Mode::SingleNal };
    const MODE1: Format = Format::H264 { mode: H264Mode::NonInterleaved };

    /// The same units, each after a 4-octet start code.
    fn annex_b(units: &[&[u8]]) -> Vec<u8> {
        units.iter().flat_map(|u| START_CODE.iter().chain(u.iter())).copied().collect()
    }

    fn unit(header: u8, len: usize) -> Vec<u8> {
        let mut u = vec![header];
        u.extend((1..len).map(|i| (i % 251) as u8 + 1));
        u
    }

    /// RFC 6184 section 5.7.1 (figure 7): SPS and PPS in one STAP-A, each
    /// after its 16-bit size; section 5.7: F is the OR, NRI the highest of
    /// the units'. Section 5.8 (figure 14): the IDR slice in FU-A fragments,
    /// S on the first, E on the last. Section 5.1: the marker on the last.
    #[test]
    fn stap_a_then_fu_a() {
        let (sei, pps, idr) = (unit(0x06, 5), unit(0x48, 4), unit(0x65, 3000));
        let frame = annex_b(&[&sei, &pps, &idr]);
        let mut p = Packetizer::new(MODE1, 1200, 0);
        let packets = packetize(&mut p, &frame).unwrap();
        let mut stap = vec![0x40 | STAP_A, 0, 5];
        stap.extend(&sei);
        stap.extend([0, 4]);
        stap.extend(&pps);
        assert_eq!(packets[0], (stap, false));
        // The body after the header octet, 2999 octets, in 3 even fragments.
        assert_eq!(packets.len(), 4);
        assert_eq!(packets[1].0[..2], [0x7c, 0x85]);
        assert_eq!(packets[2].0[..2], [0x7c, 0x05]);
        assert_eq!(packets[3].0[..2], [0x7c, 0x45]);
        assert_eq!(packets[1..].iter().map(|(p, _)| p.len() - 2).collect::<Vec<_>>(), [1000, 1000, 999]);
        assert_eq!(packets[1..].iter().map(|(_, m)| *m).collect::<Vec<_>>(), [false, false, true]);
        let mut d = Depacketizer::new(MODE1, 1 << 20);
        assert_eq!(receive(&mut d, 7, 90, &packets), vec![(annex_b(&[&sei, &pps, &idr]), true)]);
    }

    /// Aggregation is greedy and needs two units that fit together; the
    /// 16-bit size field of an aggregation unit limits the units in it.
    #[test]
    fn aggregation_rules() {
        let mut p = Packetizer::new(MODE1, 16, 0);
        let (a, b, c) = (unit(0x41, 4), unit(0x41, 4), unit(0x41, 4));
        // 1 + 6 + 6 = 13 fits 16; a third unit would make 19.
        let packets = packetize(&mut p, &annex_b(&[&a, &b, &c])).unwrap();
        assert_eq!(packets, vec![(vec![0x58, 0, 4, 0x41, 2, 3, 4, 0, 4, 0x41, 2, 3, 4], false), (c.clone(), true)]);
        // A unit that fits only alone goes alone; one of exactly 16 too.
        let (big, exact) = (unit(0x41, 14), unit(0x65, 16));
        let packets = packetize(&mut p, &annex_b(&[&a, &big, &exact, &c])).unwrap();
        assert_eq!(packets, vec![(a.clone(), false), (big.clone(), false), (exact, false), (c.clone(), true)]);
        // Two-octet units: three to a STAP-A (1 + 3 * 4 = 13); what is left
        // goes as a pair, or alone.
        let tiny = unit(0x01, 2);
        let packets = packetize(&mut p, &annex_b(&[&tiny[..]; 8])).unwrap();
        assert_eq!(packets.iter().map(|(p, _)| p.len()).collect::<Vec<_>>(), [13, 13, 9]);
        assert!(packets.iter().all(|(p, _)| p[0] == STAP_A), "NRI 0");
        let packets = packetize(&mut p, &annex_b(&[&tiny[..]; 7])).unwrap();
        assert_eq!(packets.iter().map(|(p, _)| p.len()).collect::<Vec<_>>(), [13, 13, 2]);
        assert_eq!(packets[2], (tiny, true));
        // Before a fragmented unit and after it.
        let packets = packetize(&mut p, &annex_b(&[&a, &unit(0x65, 40), &b, &c])).unwrap();
        let types: Vec<u8> = packets.iter().map(|(p, _)| p[0] & 0x1f).collect();
        assert_eq!(types, [1, FU_A, FU_A, FU_A, STAP_A]);
        // A unit over 65535 octets is never aggregated, even with room.
        let mut p = Packetizer::new(MODE1, 70000, 0);
        let huge = unit(0x65, 65536);
        let packets = packetize(&mut p, &annex_b(&[&huge, &a])).unwrap();
        assert_eq!(packets, vec![(huge.clone(), false), (a.clone(), true)]);
        let packets = packetize(&mut p, &annex_b(&[&a, &unit(0x65, 65535)])).unwrap();
        assert_eq!(packets.len(), 1, "65535 octets still fit the size field");
    }

    /// RFC 6184 section 6.2: single NAL unit packets only in mode 0, so a
    /// unit longer than a payload is refused before anything is sent.
    #[test]
    fn mode_0_sends_single_nal_units_only() {
        let (sps, pps, idr) = (unit(0x67, 10), unit(0x68, 4), unit(0x65, 1200));
        let frame = annex_b(&[&sps, &pps, &idr]);
        let mut p = Packetizer::new(MODE0, 1200, 0);
        let packets = packetize(&mut p, &frame).unwrap();
        assert_eq!(packets, vec![(sps.clone(), false), (pps.clone(), false), (idr, true)]);
        let long = annex_b(&[&sps, &unit(0x65, 1201)]);
        assert_eq!(p.begin(&long), Err(Error::UnitTooLong { len: 1201, max: 1200 }));
        let mut out = [0; 1200];
        assert_eq!(p.next(&long, &mut out), None, "nothing begun");
    }

    #[test]
    fn refused_access_units() {
        for mode in [MODE0, MODE1] {
            let mut p = Packetizer::new(mode, 1200, 0);
            for bad in [
                &[0, 0, 0, 5, 0x65, 1, 2, 3, 4][..],   // AVCC: a 4-octet length prefix
                &[0, 0, 1, 0xe5, 1],                   // forbidden bit
                &[0, 0, 1, 0x67, 1, 0, 0, 1, 0x78, 1], // STAP-A type
                &[0, 0, 1, 0x7c, 0x85, 1],             // FU-A type
                &[0, 0, 1, 0x1f, 1],                   // reserved type 31
                &[0, 0, 1, 0x00, 0x41],                // a zero before the header: type 0
            ] {
                assert!(matches!(p.begin(bad), Err(Error::InvalidFrame(_))), "{bad:?}");
            }
            for empty in [&[][..], &[0, 0, 0, 1], &[0, 0, 0, 0], &[0, 0, 1, 0, 0, 1]] {
                assert_eq!(p.begin(empty), Err(Error::Empty), "{empty:?}");
            }
        }
    }

    #[test]
    fn stap_a_single_and_fu_a_received() {
        let mut d = Depacketizer::new(MODE1, 1 << 20);
        // STAP-A with SPS and PPS, then an IDR slice in three FU-A fragments.
        let stap = [STAP_A | 0x60, 0, 3, 0x67, 1, 2, 0, 2, 0x68, 3];
        assert!(h(&mut d, 10, 900, false, &stap).is_empty());
        assert!(h(&mut d, 11, 900, false, &[0x7c, 0x80 | 5, 7, 7]).is_empty());
        assert!(h(&mut d, 12, 900, false, &[0x7c, 5, 8]).is_empty());
        let want = annex_b(&[&[0x67, 1, 2], &[0x68, 3], &[0x65, 7, 7, 8, 9]]);
        assert_eq!(h(&mut d, 13, 900, true, &[0x7c, 0x40 | 5, 9]), vec![(want, true)]);
        // A receiver in mode 0 takes them too (senders should not send them
        // there, section 6.2, but they are unambiguous).
        let mut d0 = Depacketizer::new(MODE0, 1 << 20);
        assert_eq!(h(&mut d0, 1, 9, true, &stap), vec![(annex_b(&[&[0x67, 1, 2], &[0x68, 3]]), false)]);
        // A single non-IDR slice is not a key frame.
        assert_eq!(h(&mut d, 14, 1800, true, &[0x41, 1]), vec![(vec![0, 0, 0, 1, 0x41, 1], false)]);
        // Empty FU-A payloads are allowed (section 5.8).
        assert!(h(&mut d, 15, 2700, false, &[0x5c, 0x81]).is_empty());
        assert!(h(&mut d, 16, 2700, false, &[0x5c, 0x01, 4]).is_empty());
        assert_eq!(h(&mut d, 17, 2700, true, &[0x5c, 0x41]), vec![(vec![0, 0, 0, 1, 0x41, 4], false)]);
        assert_eq!(d.discarded(), 0);
        // Without markers, a unit comes out when the next timestamp starts
        // in sequence (RFC 6184 section 5.1).
        assert!(h(&mut d, 18, 3600, false, &[0x41, 2]).is_empty());
        assert_eq!(h(&mut d, 19, 4500, false, &[0x41, 3]), vec![(vec![0, 0, 0, 1, 0x41, 2], false)]);
        assert_eq!(
            h(&mut d, 20, 5400, true, &[0x41, 4]),
            vec![(vec![0, 0, 0, 1, 0x41, 3], false), (vec![0, 0, 0, 1, 0x41, 4], false)]
        );
        // ... but not across a gap.
        assert!(h(&mut d, 21, 6300, false, &[0x41, 5]).is_empty());
        assert!(h(&mut d, 23, 7200, true, &[0x41, 6]).is_empty());
        assert_eq!(d.discarded(), 2);
    }

    #[test]
    fn loss_and_malformed_packets_drop_the_unit() {
        let frame = annex_b(&[&[0x65; 3000], &[0x41, 2]]);
        let mut p = Packetizer::new(MODE1, 1000, 0);
        let packets = packetize(&mut p, &frame).unwrap();
        assert_eq!(packets.len(), 5);
        let mut d = Depacketizer::new(MODE1, 1 << 20);
        // The third packet is lost: the unit is dropped.
        for (i, (pkt, m)) in packets.iter().enumerate().filter(|(i, _)| *i != 2) {
            assert!(h(&mut d, i as u16, 1, *m, pkt).is_empty());
        }
        assert_eq!(d.discarded(), 1);
        // The next unit follows on in sequence and comes out whole.
        assert_eq!(receive(&mut d, 5, 2, &packets), vec![(frame.clone(), true)]);
        // The marker lost: the next timestamp drops the unfinished unit.
        assert!(h(&mut d, 10, 3, false, &packets[0].0).is_empty());
        assert_eq!(h(&mut d, 11, 4, true, &[0x41, 1]).len(), 1);
        assert_eq!(d.discarded(), 2);
        // A gap before a unit's first packet (its start may be lost) drops it.
        assert!(h(&mut d, 13, 5, true, &[0x41, 1]).is_empty());
        assert_eq!(d.discarded(), 3);
        let bad: [&[u8]; 17] = [
            &[],                      // nothing
            &[0x80 | 1, 1],           // forbidden bit
            &[STAP_A, 0, 5, 1],       // STAP-A unit runs past the payload
            &[STAP_A, 0, 0],          // empty STAP-A unit
            &[STAP_A, 0, 1, 0x41, 0], // a truncated size field
            &[STAP_A],                // STAP-A with no unit
            &[STAP_A, 0, 2, 0x7c, 1], // an FU inside a STAP-A
            &[STAP_A, 0, 2, 0x78, 1], // a STAP-A inside a STAP-A
            &[STAP_A, 0, 2, 0xc1, 1], // forbidden bit inside a STAP-A
            &[FU_A],                  // FU-A without its header
            &[FU_A, 0xc0 | 5, 1],     // S and E both set
            &[FU_A, 5, 1],            // middle fragment with no start
            &[FU_A, 0x40 | 5, 1],     // end fragment with no start
            &[FU_A, 0x80 | 24, 1],    // an FU of type 24
            &[FU_A, 0x80 | 28, 1],    // an FU of an FU
            &[25, 0, 1, 0, 1, 1],     // STAP-B (interleaved mode)
            &[29, 0x80 | 5, 0, 1, 1], // FU-B (interleaved mode)
        ];
        for (i, pkt) in bad.into_iter().enumerate() {
            let before = d.discarded();
            assert!(h(&mut d, 14 + i as u16, 6 + i as u32, true, pkt).is_empty(), "{pkt:?}");
            assert_eq!(d.discarded(), before + 1, "{pkt:?}");
        }
        // Fragments out of place: a new start inside a fragmented unit, a
        // single NAL unit or a STAP-A between fragments, a type change.
        for (i, second) in
            [&[0x7c, 0x85, 1][..], &[0x41, 1], &[STAP_A, 0, 1, 0x41], &[0x7c, 0x41, 1]].iter().enumerate()
        {
            let (seq, ts) = (100 + 2 * i as u16, 100 + i as u32);
            assert!(h(&mut d, seq, ts, false, &[0x7c, 0x85, 1]).is_empty());
            let before = d.discarded();
            assert!(h(&mut d, seq + 1, ts, true, second).is_empty(), "{second:?}");
            assert_eq!(d.discarded(), before + 1, "{second:?}");
        }
        // The marker inside a fragmented unit: incomplete.
        assert!(h(&mut d, 200, 200, true, &[0x7c, 0x85, 1]).is_empty());
        assert_eq!(d.discarded(), 3 + 17 + 4 + 1);
    }

    /// RFC 6184 section 5.4: NAL unit types 0, 30 and 31 "MUST be ignored by
    /// a receiver", as packets, as aggregation units and as fragmented
    /// units.
    #[test]
    fn reserved_types_are_ignored() {
        let mut d = Depacketizer::new(MODE1, 1 << 20);
        assert!(h(&mut d, 1, 10, false, &[0x41, 1]).is_empty());
        assert!(h(&mut d, 2, 10, false, &[0x00, 9, 9]).is_empty());
        assert!(h(&mut d, 3, 10, false, &[0x1e, 9]).is_empty());
        assert!(h(&mut d, 4, 10, false, &[STAP_A, 0, 2, 0x1f, 9, 0, 2, 0x41, 2]).is_empty());
        assert!(h(&mut d, 5, 10, false, &[0x7c, 0x80, 9]).is_empty());
        assert!(h(&mut d, 6, 10, false, &[0x7c, 0x40, 9]).is_empty());
        assert_eq!(h(&mut d, 7, 10, true, &[0x65, 3]), vec![(annex_b(&[&[0x41, 1], &[0x41, 2], &[0x65, 3]]), true)]);
        assert_eq!(d.discarded(), 0);
        // An access unit of nothing else has nothing to hand out.
        assert!(h(&mut d, 8, 20, true, &[0x00, 1]).is_empty());
        assert_eq!(d.discarded(), 1);
    }

    /// RFC 6184 section 7: duplicated and outdated packets are removed.
    #[test]
    fn duplicates_and_late_packets_are_ignored() {
        let mut d = Depacketizer::new(MODE1, 1 << 20);
        assert!(h(&mut d, 1, 10, false, &[0x7c, 0x85, 1]).is_empty());
        assert!(h(&mut d, 1, 10, false, &[0x7c, 0x85, 1]).is_empty());
        assert!(h(&mut d, 2, 10, false, &[0x7c, 0x05, 2]).is_empty());
        assert!(h(&mut d, 1, 10, false, &[0x7c, 0x85, 1]).is_empty());
        assert_eq!(h(&mut d, 3, 10, true, &[0x7c, 0x45, 3]), vec![(vec![0, 0, 0, 1, 0x65, 1, 2, 3], true)]);
        // Reordered: the gap drops the unit, the late packet is ignored and
        // does not spoil the next unit.
        assert!(h(&mut d, 5, 20, true, &[0x41, 5]).is_empty());
        assert!(h(&mut d, 4, 20, false, &[0x41, 4]).is_empty());
        assert_eq!(h(&mut d, 6, 30, true, &[0x41, 6]), vec![(vec![0, 0, 0, 1, 0x41, 6], false)]);
        assert_eq!(d.discarded(), 1);
    }

    #[test]
    fn max_frame() {
        let mut d = Depacketizer::new(MODE1, 12);
        assert_eq!(h(&mut d, 1, 10, true, &[0x41; 8]), vec![(annex_b(&[&[0x41; 8]]), false)], "exactly 12");
        assert!(h(&mut d, 2, 20, true, &[0x41; 9]).is_empty());
        assert!(h(&mut d, 3, 30, false, &[0x7c, 0x81, 1, 2, 3, 4, 5, 6]).is_empty());
        assert!(h(&mut d, 4, 30, true, &[0x7c, 0x41, 7, 8]).is_empty());
        assert!(h(&mut d, 5, 40, true, &[STAP_A, 0, 3, 0x41, 1, 1, 0, 3, 0x41, 2, 2]).is_empty());
        assert_eq!(d.discarded(), 3);
    }
}
