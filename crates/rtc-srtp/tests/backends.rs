//! The two AES-GCM backends (ring and the aes-gcm crate) agree on random
//! packets, keys and sequence numbers, in both directions. Runs when both
//! features are on (the workspace turns `rustcrypto` on through the
//! conformance crate; `cargo test -p rtc-srtp --features rustcrypto` alone).
#![cfg(all(feature = "ring", feature = "rustcrypto"))]

use proptest::prelude::*;
use rtc_srtp::{Config, Context, GcmBackend, Profile, RtpHeader};

fn ctx(profile: Profile, key: &[u8], salt: &[u8], backend: GcmBackend) -> Context {
    Context::with_config(profile, key, salt, Config { gcm_backend: backend, ..Config::default() }).unwrap()
}

proptest! {
    #[test]
    fn ring_and_rustcrypto_agree(
        big in any::<bool>(),
        key in proptest::collection::vec(any::<u8>(), 32),
        salt in proptest::collection::vec(any::<u8>(), 12),
        seq in any::<u16>(),
        ssrc in any::<u32>(),
        payload in proptest::collection::vec(any::<u8>(), 0..1300),
        csrcs in proptest::collection::vec(any::<u32>(), 0..4),
    ) {
        let profile = if big { Profile::AeadAes256Gcm } else { Profile::AeadAes128Gcm };
        let key = &key[..profile.master_key_len()];
        let mut a = ctx(profile, key, &salt, GcmBackend::Ring);
        let mut b = ctx(profile, key, &salt, GcmBackend::RustCrypto);
        let h = RtpHeader { payload_type: 96, sequence_number: seq, timestamp: 1, ssrc, csrcs: &csrcs, ..Default::default() };
        let mut x = vec![0u8; 1500];
        let n = h.write(&payload, 0, &mut x).unwrap();
        let mut y = x.clone();
        let m = a.protect_rtp(&mut x, n).unwrap();
        prop_assert_eq!(b.protect_rtp(&mut y, n).unwrap(), m);
        prop_assert_eq!(&x[..m], &y[..m]);
        // Each opens what the other sealed.
        let mut ra = ctx(profile, key, &salt, GcmBackend::Ring);
        let mut rb = ctx(profile, key, &salt, GcmBackend::RustCrypto);
        prop_assert_eq!(ra.unprotect_rtp(&mut y[..m]).unwrap(), n);
        prop_assert_eq!(rb.unprotect_rtp(&mut x[..m]).unwrap(), n);
        prop_assert_eq!(&x[..n], &y[..n]);
        // RTCP: the payload as the body of an APP packet.
        let body = &payload[..payload.len() / 4 * 4];
        let mut w = rtc_srtp::rtcp::Writer::new(&mut x);
        w.app(0, ssrc, *b"TEST", body).unwrap();
        let n = w.len();
        y[..n].copy_from_slice(&x[..n]);
        let m = a.protect_rtcp(&mut x, n).unwrap();
        prop_assert_eq!(b.protect_rtcp(&mut y, n).unwrap(), m);
        prop_assert_eq!(&x[..m], &y[..m]);
        prop_assert_eq!(rb.unprotect_rtcp(&mut x[..m]).unwrap(), n);
    }
}
