//! Protecting and unprotecting allocate nothing per packet once a stream's
//! state exists: `allocation-counter` proves it for every profile,
//! RTP and RTCP, both directions, and the packet parsers.

use rtc_srtp::rtcp::{Compound, Writer};
use rtc_srtp::{Context, Profile, RtpHeader, RtpPacket};

/// Allocations made by this thread while `f` runs: the test harness's own
/// threads (which may allocate meanwhile, e.g. for slow-test reports) are
/// not counted.
fn allocations(f: impl FnOnce()) -> u64 {
    allocation_counter::measure(f).count_total
}

#[test]
fn no_allocation_per_packet() {
    // The counter does count.
    assert_eq!(allocations(|| drop(std::hint::black_box(vec![1u8; 64]))), 1);
    for profile in Profile::ALL {
        let key = vec![3u8; profile.master_key_len()];
        let salt = vec![4u8; profile.master_salt_len()];
        let mut tx = Context::new(profile, &key, &salt).unwrap();
        let mut rx = Context::new(profile, &key, &salt).unwrap();
        let payload = [0xabu8; 1200];
        let mut buf = [0u8; 1500];
        let mut run = |seq: u16, buf: &mut [u8; 1500]| {
            let h = RtpHeader { payload_type: 111, sequence_number: seq, timestamp: 9, ssrc: 42, ..Default::default() };
            let n = h.write(&payload, 0, buf).unwrap();
            let m = tx.protect_rtp(buf, n).unwrap();
            let k = rx.unprotect_rtp(&mut buf[..m]).unwrap();
            let p = RtpPacket::new_checked(&buf[..k]).unwrap();
            assert_eq!(p.payload().len(), 1200);
            let mut w = Writer::new(&mut buf[..]);
            w.receiver_report(42, &[Default::default()]).unwrap();
            w.pli(42, 43).unwrap();
            let n = w.len();
            let m = tx.protect_rtcp(buf, n).unwrap();
            let k = rx.unprotect_rtcp(&mut buf[..m]).unwrap();
            for p in Compound::new(&buf[..k]) {
                p.unwrap().parse().unwrap();
            }
        };
        // The first packet of an SSRC creates its state (allowed to allocate).
        run(65000, &mut buf);
        let n = allocations(|| {
            for i in 1..2000u16 {
                run(65000u16.wrapping_add(i), &mut buf);
            }
        });
        assert_eq!(n, 0, "{profile}: {n} allocations in 1999 packets");
    }
}
