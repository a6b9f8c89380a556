//! Protecting and unprotecting allocate nothing per packet once a stream's
//! state exists: a counting global allocator proves it for every profile,
//! RTP and RTCP, both directions, and the packet parsers.
#![allow(unsafe_code, reason = "a GlobalAlloc implementation is unsafe by definition")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use rtc_srtp::rtcp::{Compound, Writer};
use rtc_srtp::{Context, Profile, RtpHeader, RtpPacket};

struct Counting;

std::thread_local! {
    // Per thread, so the test harness's own threads (which may allocate while
    // this test runs, e.g. for slow-test reports) are not counted.
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

fn allocs() -> usize {
    ALLOCS.with(Cell::get)
}

// SAFETY: defers every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn no_allocation_per_packet() {
    // The counter does count.
    let before = allocs();
    let v = std::hint::black_box(vec![1u8; 64]);
    assert!(allocs() > before && v.len() == 64);
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
        let before = allocs();
        for i in 1..2000u16 {
            run(65000u16.wrapping_add(i), &mut buf);
        }
        let after = allocs();
        assert_eq!(after - before, 0, "{profile}: {} allocations in 1999 packets", after - before);
    }
}
