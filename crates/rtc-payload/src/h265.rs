//! H.265 / HEVC (RFC 7798), one RTP stream, without decoding order numbers
//! (`sprop-max-don-diff` 0, the default).
//!
//! Sending takes an access unit in Annex B form and sends its NAL units in
//! order: consecutive units that fit one payload together go in an
//! aggregation packet, AP (section 4.4.2), as many as fit, when at least
//! two do; any other unit that fits goes alone as a single NAL unit packet
//! (section 4.4.1); a longer one goes in fragmentation units, FU (section
//! 4.4.3), its body split evenly. The marker bit is on the access unit's
//! last packet (section 4.1).
//!
//! Receiving takes single NAL unit packets, APs and FUs, and hands out each
//! access unit in Annex B form with 4-octet start codes. PACI packets
//! (section 4.4.4) drop their access unit; packet types 51 to 63 are
//! ignored.

use crate::nal::{Kind, Syntax};

/// RFC 7798 section 4.4: the packet types this payload format adds.
const AP: u8 = 48;
/// Fragmentation unit.
const FU: u8 = 49;
/// Payload content information.
const PACI: u8 = 50;

/// The NAL unit header (section 1.1.4, figure 1): F (1 bit), Type (6),
/// LayerId (6), TID (3).
fn nal_type(header: &[u8]) -> u8 {
    (header[0] >> 1) & 0x3f
}

fn layer_id(header: &[u8]) -> u8 {
    ((header[0] & 1) << 5) | (header[1] >> 3)
}

fn tid(header: &[u8]) -> u8 {
    header[1] & 7
}

/// A two-octet header of `nal_type` with F, LayerId and TID.
fn header(f: bool, nal_type: u8, layer_id: u8, tid: u8) -> [u8; 2] {
    [(u8::from(f) << 7) | (nal_type << 1) | (layer_id >> 5), ((layer_id & 0x1f) << 3) | (tid & 7)]
}

/// H.265's headers for [`crate::nal`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct H265;

/// The send state of one access unit.
pub(crate) type Sender = crate::nal::Sender<H265>;
/// The receive state.
pub(crate) type Receiver = crate::nal::Receiver<H265>;

impl Syntax for H265 {
    const HEADER: usize = 2;
    const FU_HEADER: usize = 3;
    const NOT_ANNEX_B: &'static str =
        "not H.265 NAL units in Annex B form (forbidden bit set, TemporalId 0, or type 48 to 63)";

    /// Types 0 to 47 are H.265's own NAL units (single NAL unit packets,
    /// section 4.4.1); 48 AP, 49 FU, 50 PACI; 51 to 63 are ignored. A
    /// header with TID 0 (nuh_temporal_id_plus1, which H.265 section
    /// 7.4.2.2 forbids to be 0, as section 4.2 does for the payload header)
    /// is malformed.
    fn kind(header: &[u8]) -> Kind {
        if tid(header) == 0 {
            return Kind::Unsupported;
        }
        match nal_type(header) {
            0..=47 => Kind::Single,
            AP => Kind::Aggregate,
            FU => Kind::Fragment,
            PACI => Kind::Unsupported,
            _ => Kind::Ignored,
        }
    }

    fn nal_type(header: &[u8]) -> u8 {
        nal_type(header)
    }

    /// forbidden_zero_bit clear, a type of H.265 itself (0 to 47), and
    /// nuh_temporal_id_plus1 not 0 (H.265 section 7.4.2.2): a zero octet
    /// where the header's second one belongs, as in length-prefixed HVCC
    /// input, is refused.
    fn sendable(header: &[u8]) -> bool {
        header[0] & 0x80 == 0 && nal_type(header) <= 47 && tid(header) != 0
    }

    /// Section 4.4.3, figures 9 and 10: the payload header of type 49 with
    /// the unit's F, LayerId and TID, then S, E and the unit's type.
    fn fragment_header(unit: &[u8], start: bool, end: bool) -> [u8; 3] {
        let [a, b] = header(unit[0] & 0x80 != 0, FU, layer_id(unit), tid(unit));
        [a, b, (u8::from(start) << 7) | (u8::from(end) << 6) | nal_type(unit)]
    }

    /// The reassembled unit's header: F, LayerId and TID of the payload
    /// header, the type of the FU header.
    fn fragment_parts(payload: &[u8]) -> Option<(bool, bool, [u8; 2])> {
        let (p, fu) = (payload.get(..2)?, *payload.get(2)?);
        let unit = header(p[0] & 0x80 != 0, fu & 0x3f, layer_id(p), tid(p));
        Some((fu & 0x80 != 0, fu & 0x40 != 0, unit))
    }

    /// Section 4.4.2: F is the OR of the units' F bits, LayerId and TID the
    /// lowest of theirs.
    fn fold(acc: [u8; 2], unit: &[u8]) -> [u8; 2] {
        let f = (acc[0] | unit[0]) & 0x80 != 0;
        header(f, nal_type(&acc), layer_id(&acc).min(layer_id(unit)), tid(&acc).min(tid(unit)))
    }

    fn aggregate_header(acc: [u8; 2]) -> [u8; 2] {
        header(acc[0] & 0x80 != 0, AP, layer_id(&acc), tid(&acc))
    }

    /// An IRAP picture's slice (H.265 table 7-1: BLA_W_LP 16 to CRA_NUT 21, and the reserved IRAP types 22 and 23).
    fn key(unit: &[u8]) -> bool {
        matches!(nal_type(unit), 16..=23)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nal::START_CODE;
    use crate::testing::{packetize, push as h, receive};
    use crate::{Depacketizer, Error, Format, Packetizer};

    /// H.265 table 7-1 types, TemporalId 0 (nuh_temporal_id_plus1 1).
    const VPS: [u8; 2] = [32 << 1, 1];
    const PPS: [u8; 2] = [34 << 1, 1];
    const IDR_W_RADL: [u8; 2] = [19 << 1, 1];
    const TRAIL_R: [u8; 2] = [1 << 1, 1];

    fn annex_b(units: &[&[u8]]) -> Vec<u8> {
        units.iter().flat_map(|u| START_CODE.iter().chain(u.iter())).copied().collect()
    }

    fn unit(header: [u8; 2], len: usize) -> Vec<u8> {
        let mut u = header.to_vec();
        u.extend((2..len).map(|i| (i % 251) as u8 + 1));
        u
    }

    #[test]
    fn nal_unit_header_fields() {
        // F 0, type 49, LayerId 0b100001 (33), TID 5.
        let h = header(false, FU, 33, 5);
        assert_eq!(h, [(49 << 1) | 1, (1 << 3) | 5]);
        assert_eq!((nal_type(&h), layer_id(&h), tid(&h)), (49, 33, 5));
        assert!(H265::sendable(&IDR_W_RADL) && H265::sendable(&VPS) && H265::sendable(&[47 << 1, 7]));
        for bad in [[0x80 | (1 << 1), 1], [1 << 1, 0], [48 << 1, 1], [49 << 1, 1], [0, 0]] {
            assert!(!H265::sendable(&bad), "{bad:?}");
        }
    }

    /// Section 4.4.2 (figure 7): VPS, SPS and PPS in one AP, each after its
    /// 16-bit size, the AP's LayerId and TID the lowest of theirs. Section
    /// 4.4.3 (figures 9, 10): the IDR slice in FUs, S on the first, E on the
    /// last, the payload header with the slice's LayerId and TID.
    #[test]
    fn ap_then_fu() {
        let (vps, sps, pps) = (unit(VPS, 24), unit([33 << 1, 2], 40), unit(PPS, 8));
        let idr = unit(IDR_W_RADL, 3001);
        let frame = annex_b(&[&vps, &sps, &pps, &idr]);
        let mut p = Packetizer::new(Format::H265, 1200, 0);
        let packets = packetize(&mut p, &frame).unwrap();
        let mut ap = vec![AP << 1, 1, 0, 24];
        ap.extend(&vps);
        ap.extend([0, 40]);
        ap.extend(&sps);
        ap.extend([0, 8]);
        ap.extend(&pps);
        assert_eq!(packets[0], (ap, false));
        // The body after the 2-octet header, 2999 octets, in 3 even pieces.
        assert_eq!(packets.len(), 4);
        assert_eq!(packets[1].0[..3], [FU << 1, 1, 0x80 | 19]);
        assert_eq!(packets[2].0[..3], [FU << 1, 1, 19]);
        assert_eq!(packets[3].0[..3], [FU << 1, 1, 0x40 | 19]);
        assert_eq!(packets[1..].iter().map(|(p, _)| p.len() - 3).collect::<Vec<_>>(), [1000, 1000, 999]);
        assert_eq!(packets[1..].iter().map(|(_, m)| *m).collect::<Vec<_>>(), [false, false, true]);
        let mut d = Depacketizer::new(Format::H265, 1 << 20);
        assert_eq!(receive(&mut d, 7, 90, &packets), vec![(frame, true)]);
    }

    #[test]
    fn aggregation_keeps_the_lowest_layer_and_temporal_id() {
        let mut acc = [(1 << 1) | 1, (2 << 3) | 4]; // LayerId 34, TID 4
        acc = H265::fold(acc, &[(1 << 1), (5 << 3) | 2]); // LayerId 5, TID 2
        acc = H265::fold(acc, &[(1 << 1) | 1, 3]); // LayerId 32, TID 3
        assert_eq!(H265::aggregate_header(acc), header(false, AP, 5, 2));
        let f = H265::fold(acc, &[0x80 | (1 << 1), 1]);
        assert_eq!(H265::aggregate_header(f)[0] & 0x80, 0x80, "F is the OR");
    }

    #[test]
    fn refused_access_units() {
        let mut p = Packetizer::new(Format::H265, 1200, 0);
        for bad in [
            &[0, 0, 0, 9, 0x26, 1, 2, 3][..], // HVCC: a 4-octet length prefix
            &[0, 0, 1, 0xa6, 1, 5],           // forbidden bit
            &[0, 0, 1, 0x60, 1, 5],           // AP type
            &[0, 0, 1, 0x62, 1, 5],           // FU type
            &[0, 0, 1, 0x26, 0, 5],           // TemporalId plus 1 of 0
            &[0, 0, 1, 0x26],                 // a one-octet unit
        ] {
            assert!(matches!(p.begin(bad), Err(Error::InvalidFrame(_))), "{bad:?}");
        }
        assert_eq!(p.begin(&[0, 0, 0, 1]), Err(Error::Empty));
    }

    #[test]
    fn received_packets() {
        let mut d = Depacketizer::new(Format::H265, 1 << 20);
        // A non-key picture alone.
        assert_eq!(h(&mut d, 1, 10, true, &unit(TRAIL_R, 5)), vec![(annex_b(&[&unit(TRAIL_R, 5)]), false)]);
        // Types 51 to 63 are ignored, alone and inside an AP.
        assert!(h(&mut d, 2, 20, false, &[51 << 1, 1, 9]).is_empty());
        let ap = [AP << 1, 1, 0, 3, 63 << 1, 1, 9, 0, 3, TRAIL_R[0], 1, 7];
        assert_eq!(h(&mut d, 3, 20, true, &ap), vec![(annex_b(&[&[TRAIL_R[0], 1, 7]]), false)]);
        // A PACI drops its access unit.
        assert!(h(&mut d, 4, 30, true, &[PACI << 1, 1, 0, 0]).is_empty());
        assert_eq!(d.discarded(), 1);
        let bad: [&[u8]; 11] = [
            &[1 << 1],                         // a one-octet header
            &[1 << 1, 0, 5],                   // TID 0
            &[AP << 1, 1, 0, 3, 1 << 1, 0, 5], // TID 0 inside an AP
            &[AP << 1, 1],                     // an AP with no unit
            &[AP << 1, 1, 0, 5, 2, 1],         // its unit runs past the payload
            &[AP << 1, 1, 0, 1, 2],            // a unit shorter than its header
            &[AP << 1, 1, 0, 2, FU << 1, 1],   // an FU inside an AP
            &[FU << 1, 1],                     // an FU without its FU header
            &[FU << 1, 1, 0xc0 | 19, 1],       // S and E both set
            &[FU << 1, 1, 0x40 | 19, 1],       // an end with no start
            &[FU << 1, 1, 0x80 | AP, 1],       // a fragmented AP
        ];
        for (i, pkt) in bad.into_iter().enumerate() {
            let before = d.discarded();
            assert!(h(&mut d, 5 + i as u16, 40 + i as u32, true, pkt).is_empty(), "{pkt:?}");
            assert_eq!(d.discarded(), before + 1, "{pkt:?}");
        }
        // A fragment of another type in the middle of a fragmented unit.
        assert!(h(&mut d, 20, 100, false, &[FU << 1, 1, 0x80 | 19, 1]).is_empty());
        assert!(h(&mut d, 21, 100, true, &[FU << 1, 1, 0x40 | 1, 2]).is_empty());
        assert_eq!(d.discarded(), 1 + 11 + 1);
    }

    #[test]
    fn loss_drops_the_access_unit() {
        let frame = annex_b(&[&unit(IDR_W_RADL, 3000), &unit(TRAIL_R, 4)]);
        let mut p = Packetizer::new(Format::H265, 1000, 0);
        let packets = packetize(&mut p, &frame).unwrap();
        let mut d = Depacketizer::new(Format::H265, 1 << 20);
        for (i, (pkt, m)) in packets.iter().enumerate().filter(|(i, _)| *i != 1) {
            assert!(h(&mut d, i as u16, 1, *m, pkt).is_empty());
        }
        assert_eq!(d.discarded(), 1);
        let next = packets.len() as u16;
        assert_eq!(receive(&mut d, next, 2, &packets), vec![(frame, true)]);
    }
}
