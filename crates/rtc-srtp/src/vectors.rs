//! The RFC test vectors for whole packets: RFC 7714 sections 16 and 17 (every
//! RTP and RTCP case, 128- and 256-bit keys). The key derivation and
//! keystream vectors (RFC 3711 B.2/B.3, RFC 6188 section 7) are in `crypto`.

use crate::srtp::Context;
use crate::{Config, Error, GcmBackend, Profile};

pub(crate) fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

const KEY128: &str = "000102030405060708090a0b0c0d0e0f";
const KEY256: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
/// "Quid pro quo" (RFC 7714 section 16).
const SALT: &str = "517569642070726f2071756f";
/// RFC 7714 section 16: the RTP packet, "Gallia est omnis divisa in partes tres".
const RTP: &str = "8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973 20646976
                   69736120 696e2070 61727465 73207472 6573";
/// RFC 7714 section 17.1: the RTCP packet.
const RTCP: &str = "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61
                    deadbeef deadbeef deadbeef deadbeef deadbeef";

fn backends() -> Vec<GcmBackend> {
    vec![
        #[cfg(feature = "ring")]
        GcmBackend::Ring,
        #[cfg(feature = "rustcrypto")]
        GcmBackend::RustCrypto,
    ]
}

fn gcm(profile: Profile, backend: GcmBackend, encrypt: bool) -> Context {
    let key = if profile == Profile::AeadAes128Gcm { KEY128 } else { KEY256 };
    let config =
        Config { gcm_backend: backend, rtp_encryption: encrypt, rtcp_encryption: encrypt, ..Config::default() };
    let k = crate::DirectionKeys { encryption: hex(key), salt: hex(SALT), auth: Vec::new() };
    Context::from_session_keys(profile, config, &crate::SessionKeys { rtp: k.clone(), rtcp: k }).unwrap()
}

/// Protects `plain` (RTP or RTCP) with a fresh context, checks the result
/// is `protected`, then unprotects it with another fresh context.
fn check(profile: Profile, encrypt: bool, rtcp: bool, plain: &str, protected: &str) {
    let plain = hex(plain);
    let protected = hex(protected);
    for backend in backends() {
        let mut tx = gcm(profile, backend, encrypt);
        let mut buf = vec![0u8; plain.len() + 64];
        buf[..plain.len()].copy_from_slice(&plain);
        let n = if rtcp {
            // The RFC's SRTCP index is 0x5d4.
            tx.tx_rtcp.insert(0x4d617273, crate::srtp::TxRtcp { next: 0x5d4 });
            tx.protect_rtcp(&mut buf, plain.len()).unwrap()
        } else {
            tx.protect_rtp(&mut buf, plain.len()).unwrap()
        };
        assert_eq!(hex_of(&buf[..n]), hex_of(&protected), "{profile} {backend:?} protect");
        let mut rx = gcm(profile, backend, encrypt);
        let mut p = protected.clone();
        let m = if rtcp { rx.unprotect_rtcp(&mut p) } else { rx.unprotect_rtp(&mut p) }.unwrap();
        assert_eq!(hex_of(&p[..m]), hex_of(&plain), "{profile} {backend:?} unprotect");
        // A flipped bit anywhere is refused.
        for i in [0, 5, protected.len() / 2, protected.len() - 1] {
            let mut p = protected.clone();
            p[i] ^= 0x01;
            let mut rx = gcm(profile, backend, encrypt);
            let r = if rtcp { rx.unprotect_rtcp(&mut p) } else { rx.unprotect_rtp(&mut p) };
            assert!(r.is_err(), "{profile} {backend:?} accepted a packet with octet {i} changed");
        }
    }
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// RFC 7714 sections 16.1.1 and 16.1.2.
#[test]
fn rfc7714_16_1_1_aes128_gcm_rtp() {
    let out = "8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca be633bd5
               0d294e6f 42a5f47a 51c7d19b 36de3adf 8833899d 7f27beb1 6a9152cf 765ee439 0cce";
    check(Profile::AeadAes128Gcm, true, false, RTP, out);
}

/// RFC 7714 sections 16.1.3 and 16.1.4: authentication only.
#[test]
fn rfc7714_16_1_3_aes128_gcm_rtp_tag_only() {
    let out = "8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973 20646976
               69736120 696e2070 61727465 73207472 65732249 3f82d2bc e397e9d7 9e3b19aa 4216";
    check(Profile::AeadAes128Gcm, false, false, RTP, out);
}

/// RFC 7714 sections 16.2.1 and 16.2.2.
#[test]
fn rfc7714_16_2_1_aes256_gcm_rtp() {
    let out = "8040f17b 8041f8d3 5501a0b2 32b1de78 a822fe12 ef9f78fa 332e33aa b1801238
               9a58e2f3 b50b2a02 76ffae0f 1ba63799 b87b7aa3 db36dfff d6b0f9bb 7878d7a7 6c13";
    check(Profile::AeadAes256Gcm, true, false, RTP, out);
}

/// RFC 7714 sections 16.2.3 and 16.2.4: authentication only.
#[test]
fn rfc7714_16_2_3_aes256_gcm_rtp_tag_only() {
    let out = "8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973 20646976
               69736120 696e2070 61727465 73207472 6573a866 d5910f88 7463067c eefec452 15d4";
    check(Profile::AeadAes256Gcm, false, false, RTP, out);
}

/// RFC 7714 section 17.1.
#[test]
fn rfc7714_17_1_aes128_gcm_rtcp() {
    let out = "81c8000d 4d617273 63e94885 dcdab67c a727d766 2f6b7e99 7ff5c0f7 6c06f32d
               c676a5f1 730d6fda 4ce09b46 86303ded 0bb9275b c84aa458 96cf4d2f c5abf872 45d9eade 800005d4";
    check(Profile::AeadAes128Gcm, true, true, RTCP, out);
}

/// RFC 7714 section 17.2.
#[test]
fn rfc7714_17_2_aes256_gcm_rtcp() {
    let out = "81c8000d 4d617273 d50ae4d1 f5ce5d30 4ba297e4 7d470c28 2c3ece5d bffe0a50
               a2eaa5c1 110555be 8415f658 c61de047 6f1b6fad 1d1eb30c 4446839f 57ff6f6c b26ac3be 800005d4";
    check(Profile::AeadAes256Gcm, true, true, RTCP, out);
}

/// RFC 7714 section 17.3: tagging only.
#[test]
fn rfc7714_17_3_aes128_gcm_rtcp_tag_only() {
    let out = "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61
               deadbeef deadbeef deadbeef deadbeef deadbeef 841dd968 3dd78ec9 2ae58790 125f62b3 000005d4";
    check(Profile::AeadAes128Gcm, false, true, RTCP, out);
}

/// RFC 7714 section 17.4: tagging only.
#[test]
fn rfc7714_17_4_aes256_gcm_rtcp_tag_only() {
    let out = "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61
               deadbeef deadbeef deadbeef deadbeef deadbeef 91db4afb feee5a97 8fab4393 ed2615fe 000005d4";
    check(Profile::AeadAes256Gcm, false, true, RTCP, out);
}

/// RFC 7714 section 11: AES-GCM master salts are 12 octets, not 14.
#[test]
fn gcm_master_salt_is_12_octets() {
    assert!(matches!(Context::new(Profile::AeadAes128Gcm, &[0; 16], &[0; 14]), Err(Error::BadKey(_))));
}
