//! The cryptographic transforms: the AES-CM PRF key derivation (RFC 3711
//! section 4.3, RFC 6188 section 5), AES counter mode (RFC 3711 section 4.1.1),
//! HMAC-SHA1 (RFC 3711 section 4.2.1) and AES-GCM (RFC 7714).
//!
//! Every key is expanded once per session: the AES key schedule, the HMAC
//! inner/outer pad states and the GCM key are kept and reused for each packet.

use aes::cipher::StreamCipherCoreWrapper as Ctr;
use aes::cipher::{BlockEncrypt, InnerIvInit, KeyInit, StreamCipher};
use aes::{Aes128, Aes256};
use ctr::{CtrCore, flavors::Ctr128BE};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use crate::Error;

/// An expanded AES key of either size.
#[derive(Clone)]
pub(crate) enum AesKey {
    A128(Box<Aes128>),
    A256(Box<Aes256>),
}

impl AesKey {
    pub(crate) fn new(key: &[u8]) -> Result<Self, Error> {
        match key.len() {
            16 => Ok(Self::A128(Box::new(Aes128::new_from_slice(key).map_err(|_| Error::BadKey("AES-128 key"))?))),
            32 => Ok(Self::A256(Box::new(Aes256::new_from_slice(key).map_err(|_| Error::BadKey("AES-256 key"))?))),
            _ => Err(Error::BadKey("AES keys are 16 or 32 bytes")),
        }
    }

    /// XORs `data` with the AES-CM keystream that starts at counter block `iv`
    /// (RFC 3711 section 4.1.1: the low 16 bits count blocks).
    #[inline]
    pub(crate) fn apply_keystream(&self, iv: &[u8; 16], data: &mut [u8]) {
        match self {
            Self::A128(k) => {
                Ctr::from_core(CtrCore::<&Aes128, Ctr128BE>::inner_iv_init(k, iv.into())).apply_keystream(data)
            }
            Self::A256(k) => {
                Ctr::from_core(CtrCore::<&Aes256, Ctr128BE>::inner_iv_init(k, iv.into())).apply_keystream(data)
            }
        }
    }

    fn encrypt_block(&self, block: &mut [u8; 16]) {
        match self {
            Self::A128(k) => k.encrypt_block(block.into()),
            Self::A256(k) => k.encrypt_block(block.into()),
        }
    }
}

/// Key derivation labels, RFC 3711 section 4.3.1.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Label {
    RtpEncryption = 0,
    RtpAuth = 1,
    RtpSalt = 2,
    RtcpEncryption = 3,
    RtcpAuth = 4,
    RtcpSalt = 5,
}

/// The AES-CM PRF (RFC 3711 section 4.3.3, RFC 6188 section 5.1) with a key
/// derivation rate of zero: fills `out` with the keystream for `label`.
///
/// The master salt is placed at the start of the 14-octet field and padded
/// with zero octets on the right when shorter (the 12-octet salts of RFC
/// 7714), as libsrtp does; the label lands on octet 7.
pub(crate) fn derive(master: &AesKey, master_salt: &[u8], label: Label, out: &mut [u8]) {
    let mut x = [0u8; 16];
    x[..master_salt.len().min(14)].copy_from_slice(&master_salt[..master_salt.len().min(14)]);
    x[7] ^= label as u8;
    for (i, chunk) in out.chunks_mut(16).enumerate() {
        let mut block = x;
        block[14..].copy_from_slice(&(i as u16).to_be_bytes());
        master.encrypt_block(&mut block);
        chunk.copy_from_slice(&block[..chunk.len()]);
    }
}

/// HMAC-SHA1 keyed once; each packet clones the precomputed pad states.
#[derive(Clone)]
pub(crate) struct HmacSha1(Hmac<Sha1>);

impl HmacSha1 {
    pub(crate) fn new(key: &[u8]) -> Self {
        // HMAC takes keys of any length.
        Self(<Hmac<Sha1> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts any key")))
    }

    /// HMAC-SHA1 over `a || b`.
    #[inline]
    pub(crate) fn tag(&self, a: &[u8], b: &[u8]) -> [u8; 20] {
        let mut m = self.0.clone();
        m.update(a);
        m.update(b);
        m.finalize().into_bytes().into()
    }
}

/// Constant-time equality of two tags of the same length.
#[inline]
pub(crate) fn tags_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Which implementation runs AES-GCM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum GcmBackend {
    /// `ring` (the default when the `ring` feature is on).
    #[cfg(feature = "ring")]
    #[default]
    Ring,
    /// The pure-Rust `aes-gcm` crate (feature `rustcrypto`).
    #[cfg(feature = "rustcrypto")]
    #[cfg_attr(not(feature = "ring"), default)]
    RustCrypto,
}

/// An AES-GCM key (16-octet tag, 12-octet nonce).
pub(crate) enum GcmKey {
    #[cfg(feature = "ring")]
    Ring(Box<ring::aead::LessSafeKey>),
    #[cfg(feature = "rustcrypto")]
    Rc128(Box<aes_gcm::Aes128Gcm>),
    #[cfg(feature = "rustcrypto")]
    Rc256(Box<aes_gcm::Aes256Gcm>),
}

/// GCM's tag length in SRTP (RFC 7714 section 14.2: the 16-octet variants).
pub(crate) const GCM_TAG: usize = 16;

impl GcmKey {
    pub(crate) fn new(backend: GcmBackend, key: &[u8]) -> Result<Self, Error> {
        match backend {
            #[cfg(feature = "ring")]
            GcmBackend::Ring => {
                let alg = match key.len() {
                    16 => &ring::aead::AES_128_GCM,
                    32 => &ring::aead::AES_256_GCM,
                    _ => return Err(Error::BadKey("AES-GCM keys are 16 or 32 bytes")),
                };
                let k = ring::aead::UnboundKey::new(alg, key).map_err(|_| Error::BadKey("AES-GCM key"))?;
                Ok(Self::Ring(Box::new(ring::aead::LessSafeKey::new(k))))
            }
            #[cfg(feature = "rustcrypto")]
            GcmBackend::RustCrypto => match key.len() {
                16 => Ok(Self::Rc128(Box::new(
                    aes_gcm::Aes128Gcm::new_from_slice(key).map_err(|_| Error::BadKey("AES-GCM key"))?,
                ))),
                32 => Ok(Self::Rc256(Box::new(
                    aes_gcm::Aes256Gcm::new_from_slice(key).map_err(|_| Error::BadKey("AES-GCM key"))?,
                ))),
                _ => Err(Error::BadKey("AES-GCM keys are 16 or 32 bytes")),
            },
        }
    }

    /// Encrypts `data` in place and returns the tag.
    #[inline]
    pub(crate) fn seal(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8]) -> Result<[u8; GCM_TAG], Error> {
        match self {
            #[cfg(feature = "ring")]
            Self::Ring(k) => {
                let n = ring::aead::Nonce::assume_unique_for_key(*nonce);
                let tag = k
                    .seal_in_place_separate_tag(n, ring::aead::Aad::from(aad), data)
                    .map_err(|_| Error::Invalid("packet too long for AES-GCM"))?;
                let mut out = [0u8; GCM_TAG];
                out.copy_from_slice(tag.as_ref());
                Ok(out)
            }
            #[cfg(feature = "rustcrypto")]
            Self::Rc128(k) => rc_seal(k.as_ref(), nonce, aad, data),
            #[cfg(feature = "rustcrypto")]
            Self::Rc256(k) => rc_seal(k.as_ref(), nonce, aad, data),
        }
    }

    /// Checks `tag` and decrypts `data` in place; on failure `data` is left
    /// unspecified and [`Error::AuthFailed`] is returned.
    #[inline]
    pub(crate) fn open(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8], tag: &[u8; GCM_TAG]) -> Result<(), Error> {
        match self {
            #[cfg(feature = "ring")]
            Self::Ring(k) => {
                let n = ring::aead::Nonce::assume_unique_for_key(*nonce);
                let t = ring::aead::Tag::from(*tag);
                k.open_in_place_separate_tag(n, ring::aead::Aad::from(aad), t, data, 0..)
                    .map(|_| ())
                    .map_err(|_| Error::AuthFailed)
            }
            #[cfg(feature = "rustcrypto")]
            Self::Rc128(k) => rc_open(k.as_ref(), nonce, aad, data, tag),
            #[cfg(feature = "rustcrypto")]
            Self::Rc256(k) => rc_open(k.as_ref(), nonce, aad, data, tag),
        }
    }
}

#[cfg(feature = "rustcrypto")]
use aes_gcm::aead::consts::{U12, U16};

#[cfg(feature = "rustcrypto")]
fn rc_seal<A: aes_gcm::aead::AeadInPlace + aes_gcm::AeadCore<NonceSize = U12, TagSize = U16>>(
    k: &A,
    nonce: &[u8; 12],
    aad: &[u8],
    data: &mut [u8],
) -> Result<[u8; GCM_TAG], Error> {
    let tag = k
        .encrypt_in_place_detached(nonce.into(), aad, data)
        .map_err(|_| Error::Invalid("packet too long for AES-GCM"))?;
    let mut out = [0u8; GCM_TAG];
    out.copy_from_slice(&tag);
    Ok(out)
}

#[cfg(feature = "rustcrypto")]
fn rc_open<A: aes_gcm::aead::AeadInPlace + aes_gcm::AeadCore<NonceSize = U12, TagSize = U16>>(
    k: &A,
    nonce: &[u8; 12],
    aad: &[u8],
    data: &mut [u8],
    tag: &[u8; GCM_TAG],
) -> Result<(), Error> {
    k.decrypt_in_place_detached(nonce.into(), aad, data, tag.into()).map_err(|_| Error::AuthFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// RFC 3711 appendix B.2: the AES-CM keystream.
    #[test]
    fn rfc3711_b2_aes_cm_keystream() {
        let k = AesKey::new(&hex("2B7E151628AED2A6ABF7158809CF4F3C")).unwrap();
        let iv: [u8; 16] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000").try_into().unwrap();
        let mut ks = vec![0u8; 65282 * 16];
        k.apply_keystream(&iv, &mut ks);
        assert_eq!(
            ks[..48],
            hex("E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB 41E95B3BB0A2E8DD477901E4FCA894C0")[..]
        );
        let tail =
            hex("EC8CDF7398607CB0F2D21675EA9EA1E4 362B7C3C6773516318A077D7FC5073AE 6A2CC3787889374FBEB4C81B17BA6C44");
        assert_eq!(ks[ks.len() - 48..], tail[..]);
    }

    /// RFC 6188 section 7.1: the AES-256-CM keystream.
    #[test]
    fn rfc6188_7_1_aes256_cm_keystream() {
        let k = AesKey::new(&hex("57f82fe3613fd170a85ec93c40b1f092 2ec4cb0dc025b58272147cc438944a98")).unwrap();
        let iv: [u8; 16] = hex("f0f1f2f3f4f5f6f7f8f9fafbfcfd0000").try_into().unwrap();
        let mut ks = vec![0u8; 65282 * 16];
        k.apply_keystream(&iv, &mut ks);
        assert_eq!(
            ks[..48],
            hex("92bdd28a93c3f52511c677d08b5515a4 9da71b2378a854f67050756ded165bac 63c4868b7096d88421b563b8c94c9a31")[..]
        );
        let tail =
            hex("cea518c90fd91ced9cbb18c078a54711 3dbc4814f4da5f00a08772b63c6a046d 6eb246913062a16891433e97dd01a57f");
        assert_eq!(ks[ks.len() - 48..], tail[..]);
    }

    /// RFC 3711 appendix B.3: key derivation with AES-128.
    #[test]
    fn rfc3711_b3_key_derivation() {
        let master = AesKey::new(&hex("E1F97A0D3E018BE0D64FA32C06DE4139")).unwrap();
        let salt = hex("0EC675AD498AFEEBB6960B3AABE6");
        let mut key = [0u8; 16];
        derive(&master, &salt, Label::RtpEncryption, &mut key);
        assert_eq!(key[..], hex("C61E7A93744F39EE10734AFE3FF7A087")[..]);
        let mut s = [0u8; 14];
        derive(&master, &salt, Label::RtpSalt, &mut s);
        assert_eq!(s[..], hex("30CBBC08863D8C85D49DB34A9AE1")[..]);
        let mut auth = [0u8; 94];
        derive(&master, &salt, Label::RtpAuth, &mut auth);
        let want =
            hex("CEBE321F6FF7716B6FD4AB49AF256A15 6D38BAA48F0A0ACF3C34E2359E6CDBCE E049646C43D9327AD175578EF7227098
             6371C10C9A369AC2F94A8C5FBCDDDC25 6D6E919A48B610EF17C2041E47403576 6B68642C59BBFC2F34DB60DBDFB2");
        assert_eq!(auth[..], want[..]);
    }

    /// RFC 6188 section 7.2: key derivation with AES-256.
    #[test]
    fn rfc6188_7_2_key_derivation() {
        let master = AesKey::new(&hex("f0f04914b513f2763a1b1fa130f10e29 98f6f6e43e4309d1e622a0e332b9f1b6")).unwrap();
        let salt = hex("3b04803de51ee7c96423ab5b78d2");
        let mut key = [0u8; 32];
        derive(&master, &salt, Label::RtpEncryption, &mut key);
        assert_eq!(key[..], hex("5ba1064e30ec51613cad926c5a28ef73 1ec7fb397f70a960653caf06554cd8c4")[..]);
        let mut s = [0u8; 14];
        derive(&master, &salt, Label::RtpSalt, &mut s);
        assert_eq!(s[..], hex("fa31791685ca444a9e07c6c64e93")[..]);
        let mut auth = [0u8; 20];
        derive(&master, &salt, Label::RtpAuth, &mut auth);
        assert_eq!(auth[..], hex("fd9c32d39ed5fbb5a9dc96b30818454d1313dc05")[..]);
    }

    #[test]
    fn tag_comparison() {
        assert!(tags_equal(&[1, 2, 3], &[1, 2, 3]));
        assert!(!tags_equal(&[1, 2, 3], &[1, 2, 4]));
        assert!(!tags_equal(&[1, 2], &[1, 2, 3]));
    }
}
