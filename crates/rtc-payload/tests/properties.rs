//! Properties over random input: every frame survives packetize ->
//! depacketize at any payload size, and nothing panics on arbitrary frames
//! or arbitrary packets.

use proptest::prelude::*;
use rtc_payload::{Depacketizer, Error, Format, FrameInfo, H264Mode, PacketInfo, Packetizer};

/// Every payload of `frame` with its marker bit, checking the count `begin`
/// gave, the size limit and the marker on the last packet only.
fn packetize(p: &mut Packetizer, frame: &[u8]) -> Result<Vec<(Vec<u8>, bool)>, Error> {
    let count = p.begin(frame)?;
    let mut out = vec![0; p.max_payload()];
    let mut packets = Vec::new();
    while let Some(payload) = p.next(frame, &mut out) {
        assert!(payload.len <= p.max_payload());
        packets.push((out[..payload.len].to_vec(), payload.marker));
    }
    assert_eq!(packets.len(), count);
    let markers: Vec<bool> = packets.iter().map(|(_, m)| *m).collect();
    assert!(markers.last().is_some_and(|m| *m) && markers.iter().rev().skip(1).all(|m| !m), "{markers:?}");
    Ok(packets)
}

/// The frames a run of packets completes.
fn depacketize(
    d: &mut Depacketizer,
    packets: impl IntoIterator<Item = (PacketInfo, Vec<u8>)>,
) -> Vec<(FrameInfo, Vec<u8>)> {
    let mut frames = Vec::new();
    for (info, payload) in packets {
        d.push(info, &payload, &mut |i: FrameInfo, f: &mut Vec<u8>| frames.push((i, f.clone())));
    }
    frames
}

/// The packets of one frame with consecutive sequence numbers from `seq`.
fn with_header(packets: Vec<(Vec<u8>, bool)>, seq: u16, timestamp: u32) -> impl Iterator<Item = (PacketInfo, Vec<u8>)> {
    packets
        .into_iter()
        .enumerate()
        .map(move |(i, (p, marker))| (PacketInfo { sequence_number: seq.wrapping_add(i as u16), timestamp, marker }, p))
}

/// The NAL units of an Annex B access unit as this crate splits them
/// (start codes of 3 or 4 octets), for checking frames handed out.
fn units_of(frame: &[u8]) -> Vec<&[u8]> {
    let mut units = Vec::new();
    let mut rest = frame;
    loop {
        let at = rest.windows(3).position(|w| w == [0, 0, 1]);
        let unit = &rest[..at.unwrap_or(rest.len())];
        let end = unit.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        if end > 0 {
            units.push(&unit[..end]);
        }
        match at {
            Some(at) => rest = &rest[at + 3..],
            None => return units,
        }
    }
}

/// A NAL unit: a header of a type H.264 uses (1 to 23) with random NRI,
/// then a body of nonzero octets and emulation prevention sequences, so it
/// holds no start code and does not end in zero. Mostly short, so that
/// STAP-A aggregation happens, sometimes long enough for FU-A.
fn nal_unit() -> impl Strategy<Value = Vec<u8>> {
    let body_len = prop_oneof![3 => 0usize..24, 1 => 0usize..4000];
    let octet = prop_oneof![20 => (1u8..=255).prop_map(|b| vec![b]), 1 => Just(vec![0, 0, 3])];
    (prop_oneof![Just(1u8), Just(5), Just(6), Just(7), Just(8), 1u8..=23], 0u8..4, body_len).prop_flat_map(
        move |(nal_type, nri, len)| {
            prop::collection::vec(octet.clone(), len).prop_map(move |body| {
                let mut unit = vec![(nri << 5) | nal_type];
                unit.extend(body.into_iter().flatten());
                unit
            })
        },
    )
}

/// An access unit in Annex B form with 3- and 4-octet start codes, leading
/// and trailing zero octets; and the same units with 4-octet start codes,
/// as a depacketizer hands them out.
fn access_unit() -> impl Strategy<Value = (Vec<u8>, Vec<u8>, bool)> {
    prop::collection::vec((nal_unit(), 2usize..6, 0usize..3), 1..10).prop_map(|units| {
        let (mut input, mut output, mut key) = (Vec::new(), Vec::new(), false);
        for (unit, zeros, trailing) in &units {
            input.extend(std::iter::repeat_n(0, *zeros));
            input.push(1);
            input.extend(unit);
            input.extend(std::iter::repeat_n(0, *trailing));
            output.extend([0, 0, 0, 1]);
            output.extend(unit);
            key |= unit[0] & 0x1f == 5;
        }
        (input, output, key)
    })
}

/// A packet payload: random octets, or octets after a header the formats
/// know (H.264 single NAL unit, STAP-A, FU-A and reserved types; VP8 and
/// VP9 descriptors), so that the parsers get past their first checks.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    let header = prop::sample::select(vec![
        vec![0x41],
        vec![0x65],
        vec![0x00],
        vec![0x1e],
        vec![0x78, 0x00, 0x02],
        vec![0x78, 0x00, 0x01, 0x65],
        vec![0x7c, 0x85],
        vec![0x7c, 0x05],
        vec![0x7c, 0x45],
        vec![0x7c, 0x80],
        vec![0x5c, 0x81],
        vec![0x90, 0x80, 0x80],
        vec![0x10],
        vec![0x80, 0xf0],
        vec![0x8c, 0x80, 0x01, 0x82],
        vec![0x88, 0x05],
        vec![0x84, 0x05],
        vec![0xa8, 0x80, 0x01, 0x02],
        vec![0xfc, 0x80, 0x01, 0x20],
        vec![0x8a, 0x80, 0x01, 0x38],
        vec![0x8a, 0x80, 0x01, 0x18],
    ]);
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        (header, prop::collection::vec(any::<u8>(), 0..32)).prop_map(|(mut h, rest)| {
            h.extend(rest);
            h
        }),
    ]
}

fn h264_mode() -> impl Strategy<Value = H264Mode> {
    prop_oneof![Just(H264Mode::SingleNal), Just(H264Mode::NonInterleaved)]
}

proptest! {
    /// RFC 7741: any run of frames at any payload size comes back whole,
    /// with the PictureID one more per frame, wrapping at 15 bits.
    #[test]
    fn vp8_round_trip(
        frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..5000), 1..4),
        max in 0usize..1500,
        picture_id in prop_oneof![any::<u16>(), 0x7ff0u16..=0x7fff, 0xfff0u16..=0xffff],
        seq in any::<u16>(),
    ) {
        let mut p = Packetizer::new(Format::Vp8, max, picture_id);
        let mut d = Depacketizer::new(Format::Vp8, 1 << 20);
        let mut seq = seq;
        for (i, frame) in frames.iter().enumerate() {
            let packets = packetize(&mut p, frame)?;
            for (j, (pkt, _)) in packets.iter().enumerate() {
                let want = (picture_id & 0x7fff).wrapping_add(i as u16) & 0x7fff;
                let [hi, lo] = want.to_be_bytes();
                prop_assert_eq!(&pkt[..4], &[if j == 0 { 0x90 } else { 0x80 }, 0x80, 0x80 | hi, lo]);
            }
            let sizes: Vec<usize> = packets.iter().map(|(p, _)| p.len()).collect();
            prop_assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "even split");
            let n = packets.len();
            let got = depacketize(&mut d, with_header(packets, seq, i as u32 * 3000));
            seq = seq.wrapping_add(n as u16);
            prop_assert_eq!(got.len(), 1);
            prop_assert_eq!(&got[0].1, frame);
            prop_assert_eq!(got[0].0, FrameInfo { timestamp: i as u32 * 3000, key_frame: frame[0] & 1 == 0 });
        }
        prop_assert_eq!(d.discarded(), 0);
    }

    /// AV1: any run of temporal units (a temporal delimiter, then OBUs of
    /// any type but the delimiter, tile list and padding, with their sizes,
    /// an extension header on some) at any payload size comes back octet for
    /// octet, a key frame exactly when it holds a sequence header.
    #[test]
    fn av1_round_trip(
        units in prop::collection::vec(
            prop::collection::vec((prop_oneof![Just(1u8), Just(3u8), Just(4u8), Just(5u8), Just(6u8)], any::<bool>(), prop::collection::vec(any::<u8>(), 0..3000)), 1..5),
            1..4,
        ),
        max in 0usize..1500,
        seq in any::<u16>(),
    ) {
        let mut p = Packetizer::new(Format::Av1, max, 0);
        let mut d = Depacketizer::new(Format::Av1, 1 << 20);
        let mut seq = seq;
        for (i, obus) in units.iter().enumerate() {
            let mut tu = vec![0x12, 0];
            for (kind, ext, payload) in obus {
                tu.push(kind << 3 | 0x02 | if *ext { 0x04 } else { 0 });
                if *ext {
                    tu.push(0x28);
                }
                let mut n = payload.len();
                loop {
                    let b = (n & 0x7f) as u8;
                    n >>= 7;
                    tu.push(if n == 0 { b } else { b | 0x80 });
                    if n == 0 {
                        break;
                    }
                }
                tu.extend(payload);
            }
            let packets = packetize(&mut p, &tu)?;
            let n = packets.len();
            let got = depacketize(&mut d, with_header(packets, seq, i as u32 * 3000));
            seq = seq.wrapping_add(n as u16);
            prop_assert_eq!(got.len(), 1);
            prop_assert_eq!(&got[0].1, &tu);
            let key = obus.iter().any(|(k, _, _)| *k == 1);
            prop_assert_eq!(got[0].0, FrameInfo { timestamp: i as u32 * 3000, key_frame: key });
        }
        prop_assert_eq!(d.discarded(), 0);
    }

    /// RFC 9628: any run of VP9 frames (key frames with their size in the
    /// uncompressed header, interframes) at any payload size comes back
    /// whole; B on the first packet, E on the last, P = 0 and the
    /// scalability structure on key frames only, the PictureID one more per
    /// frame, wrapping at 15 bits.
    #[test]
    fn vp9_round_trip(
        frames in prop::collection::vec((any::<bool>(), 1u16..=4096, 1u16..=4096, prop::collection::vec(any::<u8>(), 0..5000)), 1..4),
        max in 0usize..1500,
        picture_id in prop_oneof![any::<u16>(), 0x7ff0u16..=0x7fff],
        seq in any::<u16>(),
    ) {
        let mut p = Packetizer::new(Format::Vp9, max, picture_id);
        let mut d = Depacketizer::new(Format::Vp9, 1 << 20);
        let mut seq = seq;
        for (i, (key, width, height, rest)) in frames.iter().enumerate() {
            // frame_marker 2, profile 0, frame_type, show_frame; for a key
            // frame the sync code, color_space and color_range, the size.
            let mut frame = vec![if *key { 0x82 } else { 0x86 }];
            if *key {
                let size = ((u64::from(width - 1) << 16) | u64::from(height - 1)) << 4;
                frame.extend([0x49, 0x83, 0x42]);
                frame.extend(&size.to_be_bytes()[3..]);
            }
            frame.extend(rest);
            let packets = packetize(&mut p, &frame)?;
            let want = (picture_id & 0x7fff).wrapping_add(i as u16) & 0x7fff;
            let [hi, lo] = want.to_be_bytes();
            for (j, (pkt, _)) in packets.iter().enumerate() {
                let b = if j == 0 { 0x08 } else { 0 };
                let e = if j + 1 == packets.len() { 0x04 } else { 0 };
                let (pb, v) = if *key { (0, if j == 0 { 0x02 } else { 0 }) } else { (0x40, 0) };
                prop_assert_eq!(&pkt[..3], &[0x80 | pb | b | e | v, 0x80 | hi, lo]);
                if v != 0 {
                    let [w0, w1] = width.to_be_bytes();
                    let [h0, h1] = height.to_be_bytes();
                    prop_assert_eq!(&pkt[3..8], &[0x10, w0, w1, h0, h1]);
                }
            }
            let sizes: Vec<usize> = packets.iter().map(|(p, _)| p.len()).collect();
            prop_assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "even split");
            let n = packets.len();
            let got = depacketize(&mut d, with_header(packets, seq, i as u32 * 3000));
            seq = seq.wrapping_add(n as u16);
            prop_assert_eq!(got, vec![(FrameInfo { timestamp: i as u32 * 3000, key_frame: *key }, frame)]);
        }
        prop_assert_eq!(d.discarded(), 0);
    }

    /// RFC 6184: any access unit at any payload size, in either mode, comes
    /// back as its NAL units with 4-octet start codes; mode 0 only with
    /// single NAL unit packets, and only when every unit fits; mode 1
    /// aggregates greedily.
    #[test]
    fn h264_round_trip(
        (input, output, key) in access_unit(),
        mode in h264_mode(),
        max in prop_oneof![4 => 0usize..1500, 1 => 1500usize..70000],
        seq in any::<u16>(),
    ) {
        let format = Format::H264 { mode };
        let mut p = Packetizer::new(format, max, 0);
        let max = p.max_payload();
        let units = units_of(&input);
        let longest = units.iter().map(|u| u.len()).max().unwrap();
        let packets = match packetize(&mut p, &input) {
            Err(Error::UnitTooLong { len, max: m }) => {
                // The first unit too long.
                let first = units.iter().map(|u| u.len()).find(|n| *n > max);
                prop_assert!(mode == H264Mode::SingleNal && Some(len) == first && m == max);
                return Ok(());
            }
            result => result?,
        };
        prop_assert!(mode == H264Mode::NonInterleaved || longest <= max);
        let types: Vec<u8> = packets.iter().map(|(p, _)| p[0] & 0x1f).collect();
        if mode == H264Mode::SingleNal {
            prop_assert!(types.iter().all(|t| (1..=23).contains(t)), "{:?}", types);
        }
        if mode == H264Mode::NonInterleaved {
            // Greedy: no two single NAL unit packets in a row would have
            // fitted one STAP-A.
            for pair in packets.windows(2) {
                let (a, b) = (&pair[0].0, &pair[1].0);
                if (1..=23).contains(&(a[0] & 0x1f)) && (1..=23).contains(&(b[0] & 0x1f)) {
                    prop_assert!(1 + 2 + a.len() + 2 + b.len() > max || a.len().max(b.len()) > 0xffff);
                }
            }
        }
        let got = depacketize(&mut Depacketizer::new(format, 1 << 20), with_header(packets, seq, 90));
        prop_assert_eq!(got, vec![(FrameInfo { timestamp: 90, key_frame: key }, output)]);
    }

    /// RFC 7587 section 4.2: one frame, one packet, as it is.
    #[test]
    fn audio_round_trip(frame in prop::collection::vec(any::<u8>(), 1..1500), max in 0usize..1500, seq in any::<u16>()) {
        let mut p = Packetizer::new(Format::Audio, max, 0);
        if frame.len() > p.max_payload() {
            prop_assert!(matches!(p.begin(&frame), Err(Error::InvalidFrame(_))));
            return Ok(());
        }
        let packets = packetize(&mut p, &frame)?;
        prop_assert_eq!(&packets, &vec![(frame.clone(), true)]);
        let got = depacketize(&mut Depacketizer::new(Format::Audio, 1500), with_header(packets, seq, 7));
        prop_assert_eq!(got, vec![(FrameInfo { timestamp: 7, key_frame: true }, frame)]);
    }

    /// Arbitrary frames at arbitrary sizes: refused or packetized within
    /// the limit, never a panic; other bytes of the same length passed to
    /// `next` neither.
    #[test]
    fn arbitrary_frames(
        frame in prop::collection::vec(prop_oneof![4 => any::<u8>(), 1 => Just(0u8), 1 => Just(1u8)], 0..3000),
        other in prop::collection::vec(any::<u8>(), 3000),
        format in prop_oneof![
            Just(Format::Audio),
            Just(Format::Vp8),
            Just(Format::Vp9),
            Just(Format::Av1),
            Just(Format::H265),
            h264_mode().prop_map(|mode| Format::H264 { mode }),
        ],
        max in 0usize..2000,
    ) {
        let mut p = Packetizer::new(format, max, 0);
        let mut out = vec![0u8; p.max_payload()];
        if let Ok(count) = p.begin(&frame) {
            let mut n = 0;
            while let Some(payload) = p.next(&frame, &mut out) {
                prop_assert!(payload.len <= p.max_payload());
                n += 1;
            }
            prop_assert_eq!(n, count);
        }
        if p.begin(&frame).is_ok() {
            let other = &other[..frame.len()];
            let mut n = 0;
            while let Some(payload) = p.next(other, &mut out) {
                prop_assert!(payload.len <= p.max_payload());
                n += 1;
                prop_assert!(n <= 3000);
            }
        }
    }

    /// Arbitrary packets never panic, and what comes out is well formed:
    /// within `max_frame`, H.264 access units of sendable NAL units after
    /// 4-octet start codes, key frames that hold an IDR slice.
    #[test]
    fn arbitrary_packets(
        packets in prop::collection::vec(
            (
                prop_oneof![6 => Just(1u16), 1 => Just(0u16), 1 => Just(2u16), 1 => any::<u16>()],
                0u32..3,
                any::<bool>(),
                payload(),
            ),
            0..60,
        ),
        format in prop_oneof![
            Just(Format::Audio),
            Just(Format::Vp8),
            Just(Format::Vp9),
            Just(Format::Av1),
            Just(Format::H265),
            h264_mode().prop_map(|mode| Format::H264 { mode }),
        ],
        max_frame in 0usize..200,
    ) {
        let mut d = Depacketizer::new(format, max_frame);
        let mut seq = 0u16;
        let mut frames = Vec::new();
        let mut discarded = 0;
        for (delta, ts, marker, payload) in packets {
            seq = seq.wrapping_add(delta);
            let info = PacketInfo { sequence_number: seq, timestamp: ts, marker };
            d.push(info, &payload, &mut |i: FrameInfo, f: &mut Vec<u8>| frames.push((i, std::mem::take(f))));
            prop_assert!(d.discarded() >= discarded);
            discarded = d.discarded();
        }
        for (info, frame) in &frames {
            prop_assert!(!frame.is_empty() && frame.len() <= max_frame);
            if let Format::H264 { .. } = format {
                prop_assert!(frame.starts_with(&[0, 0, 0, 1]));
                let units = units_of(frame);
                prop_assert!(units.iter().all(|u| u[0] & 0x80 == 0 && (1..=23).contains(&(u[0] & 0x1f))), "{:?}", frame);
                prop_assert_eq!(info.key_frame, units.iter().any(|u| u[0] & 0x1f == 5));
            }
        }
    }

    /// The packets of real access units, with some lost, duplicated or
    /// reordered: whatever comes out is one of the access units sent. (Not
    /// the very first packet: a receiver takes the first packet it gets as
    /// the start of an access unit, having nothing to tell otherwise.)
    #[test]
    fn h264_impaired_network(
        aus in prop::collection::vec(access_unit(), 1..5),
        max in 16usize..400,
        impairments in prop::collection::vec((0usize..64, 0u8..4), 0..6),
    ) {
        let format = Format::H264 { mode: H264Mode::NonInterleaved };
        let mut p = Packetizer::new(format, max, 0);
        let mut packets = Vec::new();
        let mut seq = 0u16;
        for (i, (input, _, _)) in aus.iter().enumerate() {
            for packet in with_header(packetize(&mut p, input)?, seq, i as u32) {
                seq = seq.wrapping_add(1);
                packets.push(packet);
            }
        }
        for (at, what) in impairments {
            if packets.len() < 2 {
                break;
            }
            let at = 1 + at % (packets.len() - 1);
            match what {
                0 => { packets.remove(at); }
                1 => packets.insert(at, packets[at].clone()),
                2 if at + 1 < packets.len() => packets.swap(at, at + 1),
                _ => {}
            }
        }
        let got = depacketize(&mut Depacketizer::new(format, 1 << 20), packets);
        for (info, frame) in got {
            let sent = aus.get(info.timestamp as usize).map(|au| &au.1);
            prop_assert_eq!(Some(&frame), sent);
        }
    }
}
