//! SRTP keying by the seeds' `keys` option: each side puts its master key and
//! salt in its own description (RFC 4568 inline form); each direction uses
//! the sender's first suite that the receiver also lists.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::CryptoRng;
use rtc_srtp::Profile;

use crate::desc::CryptoKey;
use crate::error::Error;

/// The suites used when a socket lists none, in order of preference.
pub(crate) const DEFAULT_SUITES: [Profile; 6] = [
    Profile::AeadAes128Gcm,
    Profile::Aes128CmHmacSha1_80,
    Profile::AeadAes256Gcm,
    Profile::Aes256CmHmacSha1_80,
    Profile::Aes128CmHmacSha1_32,
    Profile::Aes256CmHmacSha1_32,
];

/// The profile a suite name names.
pub(crate) fn profile(name: &str) -> Result<Profile, Error> {
    Profile::ALL
        .into_iter()
        .find(|p| p.name().eq_ignore_ascii_case(name))
        .ok_or_else(|| Error::InvalidDescription(format!("unknown SRTP crypto-suite {name:?}")))
}

/// A suite with its master key and salt (kept inline: the longest key is 32
/// octets, the longest salt 14).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Keying {
    pub(crate) tag: u32,
    pub(crate) profile: Profile,
    key: [u8; 32],
    salt: [u8; 14],
}

impl std::fmt::Debug for Keying {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keying").field("tag", &self.tag).field("profile", &self.profile).finish_non_exhaustive()
    }
}

impl Keying {
    /// Fresh key material for `profile` from `rng`, which must be a CSPRNG
    /// (the connection's: ChaCha seeded from the OS, or from a test's seed).
    pub(crate) fn random(tag: u32, profile: Profile, rng: &mut impl CryptoRng) -> Self {
        let mut k = Self { tag, profile, key: [0; 32], salt: [0; 14] };
        rng.fill_bytes(&mut k.key[..profile.master_key_len()]);
        rng.fill_bytes(&mut k.salt[..profile.master_salt_len()]);
        k
    }

    /// The master key.
    pub(crate) fn key(&self) -> &[u8] {
        &self.key[..self.profile.master_key_len()]
    }

    /// The master salt.
    pub(crate) fn salt(&self) -> &[u8] {
        &self.salt[..self.profile.master_salt_len()]
    }

    /// One key per suite of [`DEFAULT_SUITES`], tagged 1, 2, …
    pub(crate) fn defaults(rng: &mut impl CryptoRng) -> Vec<Self> {
        DEFAULT_SUITES.iter().enumerate().map(|(i, p)| Self::random(i as u32 + 1, *p, rng)).collect()
    }

    /// Reads an entry carrying key material (`inline:` key||salt, RFC 4568
    /// section 6.1; a lifetime is accepted, an MKI is refused).
    pub(crate) fn from_crypto(k: &CryptoKey) -> Result<Self, Error> {
        let profile = profile(&k.crypto_suite)?;
        let bad = |why: &str| Error::InvalidDescription(format!("keys: {}: {why}", k.crypto_suite));
        let params = k.key_params.as_deref().ok_or_else(|| bad("no key-params"))?;
        if params.contains(';') {
            return Err(bad("several keys per suite are not supported"));
        }
        let inline = params.strip_prefix("inline:").ok_or_else(|| bad("key-params must start with inline:"))?;
        let mut parts = inline.split('|');
        let b64 = parts.next().unwrap_or_default();
        for p in parts {
            if p.contains(':') {
                return Err(bad("an MKI is not supported"));
            }
        }
        let raw = STANDARD.decode(b64).map_err(|_| bad("key is not base64"))?;
        let (kl, sl) = (profile.master_key_len(), profile.master_salt_len());
        if raw.len() != kl + sl {
            return Err(bad("key and salt have the wrong length for the suite"));
        }
        let mut out = Self { tag: k.tag, profile, key: [0; 32], salt: [0; 14] };
        out.key[..kl].copy_from_slice(&raw[..kl]);
        out.salt[..sl].copy_from_slice(&raw[kl..]);
        Ok(out)
    }

    /// The description entry: `inline:` base64(key || salt).
    pub(crate) fn to_crypto(&self) -> CryptoKey {
        let mut raw = self.key().to_vec();
        raw.extend_from_slice(self.salt());
        CryptoKey {
            tag: self.tag,
            crypto_suite: self.profile.name().to_owned(),
            key_params: Some(format!("inline:{}", STANDARD.encode(raw))),
        }
    }
}

/// The first of `first`'s profiles that `second` also lists.
pub(crate) fn select(first: &[Keying], second: &[Keying]) -> Option<(usize, usize)> {
    first.iter().enumerate().find_map(|(i, a)| second.iter().position(|b| b.profile == a.profile).map(|j| (i, j)))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn rng() -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(7)
    }

    #[test]
    fn inline_round_trip_and_refusals() {
        for p in Profile::ALL {
            let k = Keying::random(3, p, &mut rng());
            let c = k.to_crypto();
            assert!(c.key_params.as_deref().unwrap().starts_with("inline:"));
            let back = Keying::from_crypto(&c).unwrap();
            assert_eq!((back.profile, back.key(), back.salt(), back.tag), (p, k.key(), k.salt(), 3));
        }
        // RFC 4568 section 6.1's example key (30 octets) with a lifetime.
        let ok =
            CryptoKey::parse("1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20").unwrap();
        assert!(Keying::from_crypto(&ok).is_ok());
        for bad in [
            "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4",
            "1 AES_CM_128_HMAC_SHA1_80 inline:AAAA",
            "1 AES_CM_128_HMAC_SHA1_80 inline:!!!!",
            "1 NULL_CIPHER inline:AAAA",
            "1 AES_CM_128_HMAC_SHA1_80 key:AAAA",
        ] {
            assert!(Keying::from_crypto(&CryptoKey::parse(bad).unwrap()).is_err(), "{bad}");
        }
    }

    #[test]
    fn each_direction_uses_the_senders_preference() {
        let r = &mut rng();
        let a = [Keying::random(1, Profile::AeadAes128Gcm, r), Keying::random(2, Profile::Aes128CmHmacSha1_80, r)];
        let b = [Keying::random(1, Profile::Aes128CmHmacSha1_80, r), Keying::random(2, Profile::AeadAes128Gcm, r)];
        assert_eq!(select(&a, &b), Some((0, 1)));
        assert_eq!(select(&b, &a), Some((0, 1)));
        assert_eq!(select(&a[..1], &b[..1]), None);
    }
}
