//! The packetizer never allocates, and the depacketizer does not allocate per
//! packet once its frame buffer has grown: `allocation-counter` counts 1000
//! frames of each format through packetize and depacketize, with a callee
//! that takes each frame by swapping in a `Vec` of its own.

use rtc_payload::{Depacketizer, Format, FrameInfo, H264Mode, PacketInfo, Packetizer};

/// Allocations made by this thread while `f` runs (the test harness's own
/// threads are not counted).
fn allocations(f: impl FnOnce()) -> u64 {
    allocation_counter::measure(f).count_total
}

/// Sends `frames` frames of `frame` through a packetizer and a depacketizer;
/// returns the frames received.
fn run(p: &mut Packetizer, d: &mut Depacketizer, frame: &[u8], frames: u32, seq: &mut u16, spare: &mut Vec<u8>) -> u32 {
    let mut out = [0u8; 1200];
    let mut received = 0;
    for i in 0..frames {
        let count = p.begin(frame).unwrap();
        let mut sent = 0;
        while let Some(payload) = p.next(frame, &mut out) {
            let packet = PacketInfo { sequence_number: *seq, timestamp: i * 3000, marker: payload.marker };
            d.push(packet, &out[..payload.len], &mut |_: FrameInfo, f: &mut Vec<u8>| {
                std::mem::swap(f, spare);
                assert_eq!(spare.as_slice(), frame, "H.264 test frames have 4-octet start codes");
                received += 1;
            });
            *seq = seq.wrapping_add(1);
            sent += 1;
        }
        assert_eq!(sent, count);
    }
    received
}

#[test]
fn no_allocation_per_packet() {
    // The counter does count.
    assert_eq!(allocations(|| drop(std::hint::black_box(vec![1u8; 64]))), 1);
    let vp8: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    // SPS and PPS (one STAP-A), then an IDR slice in FU-A fragments, then
    // two non-IDR slices (one more STAP-A).
    let mut h264 = vec![0, 0, 0, 1, 0x67, 0x42, 0xe0, 0x1f, 0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, 0, 0, 0, 1, 0x65];
    h264.extend((0..4000u32).map(|i| (i % 200) as u8 + 1));
    h264.extend([0, 0, 0, 1, 0x41, 9, 9, 0, 0, 0, 1, 0x41, 8, 8]);
    // H.265: VPS, SPS and PPS (one AP), an IDR_W_RADL slice in FUs, two
    // TRAIL_R slices (one more AP).
    let mut h265 =
        vec![0, 0, 0, 1, 0x40, 1, 0x0c, 0, 0, 0, 1, 0x42, 1, 1, 0, 0, 0, 1, 0x44, 1, 0xc1, 0, 0, 0, 1, 0x26, 1];
    h265.extend((0..4000u32).map(|i| (i % 200) as u8 + 1));
    h265.extend([0, 0, 0, 1, 0x02, 1, 9, 0, 0, 0, 1, 0x02, 1, 8]);
    let opus = [0x78u8; 160];
    // A VP9 interframe (frame_marker 2, frame_type 1).
    let vp9: Vec<u8> = [0x86].into_iter().chain((0..5000u32).map(|i| i as u8)).collect();
    // An AV1 temporal unit: a temporal delimiter, a 5000-octet frame OBU.
    let av1: Vec<u8> = [0x12, 0, 6 << 3 | 2, 0x88, 0x27].into_iter().chain((0..5000u32).map(|i| i as u8)).collect();
    let cases = [
        (Format::Vp8, &vp8[..]),
        (Format::Av1, &av1[..]),
        (Format::Vp9, &vp9[..]),
        (Format::H264 { mode: H264Mode::NonInterleaved }, &h264[..]),
        (Format::H264 { mode: H264Mode::SingleNal }, &h264[..21]),
        (Format::H265, &h265[..]),
        (Format::Audio, &opus[..]),
    ];
    for (format, frame) in cases {
        let mut p = Packetizer::new(format, 1200, 4000);
        let mut d = Depacketizer::new(format, 1 << 20);
        let (mut seq, mut spare) = (65000u16, Vec::new());
        // Warm-up: both buffers (the depacketizer's and the callee's) grow.
        assert_eq!(run(&mut p, &mut d, frame, 3, &mut seq, &mut spare), 3);
        let mut received = 0;
        let n = allocations(|| received = run(&mut p, &mut d, frame, 1000, &mut seq, &mut spare));
        assert_eq!(received, 1000, "{format:?}");
        assert_eq!(d.discarded(), 0, "{format:?}");
        assert_eq!(n, 0, "{format:?}: {n} allocations in 1000 frames");
    }
    // The packetizer alone allocates nothing, from its very first frame.
    let n = allocations(|| {
        let mut out = [0u8; 1200];
        for (format, frame) in [
            (Format::Vp8, &vp8[..]),
            (Format::Vp9, &vp9),
            (Format::H264 { mode: H264Mode::NonInterleaved }, &h264),
            (Format::H265, &h265),
        ] {
            let mut p = Packetizer::new(format, 1200, 0);
            for _ in 0..100 {
                p.begin(frame).unwrap();
                while p.next(frame, &mut out).is_some() {}
            }
        }
    });
    assert_eq!(n, 0);
}
