//! SRTP keys exported by the handshake (RFC 5764 section 4.2).

use std::fmt;

use rtc_srtp::{Context, Profile};

use crate::{Error, Role};

/// The longest master key (AES-256) and salt (14 octets) of any profile.
const MAX_KEY: usize = 32;
const MAX_SALT: usize = 14;

/// Keys for SRTP exported by the handshake (RFC 5764 section 4.2 layout
/// already split by role).
///
/// [`Debug`](fmt::Debug) shows the profile only, never key bytes.
#[derive(Clone)]
pub struct SrtpKeys {
    /// The SRTP protection profile the handshake agreed.
    pub profile: Profile,
    local_key: [u8; MAX_KEY],
    remote_key: [u8; MAX_KEY],
    local_salt: [u8; MAX_SALT],
    remote_salt: [u8; MAX_SALT],
}

impl SrtpKeys {
    /// Splits exported keying material, laid out as RFC 5764 section 4.2
    /// says (client write key, server write key, client write salt, server
    /// write salt), into this side's and the peer's keys: the client's are
    /// local when `role` is [`Role::Client`].
    ///
    /// `material` must be exactly `2 * (key + salt)` octets for `profile`.
    pub fn from_keying_material(profile: Profile, material: &[u8], role: Role) -> Result<Self, Error> {
        let (k, s) = (profile.master_key_len(), profile.master_salt_len());
        if k > MAX_KEY || s > MAX_SALT {
            return Err(Error::KeyingMaterial("the profile's key or salt is longer than supported"));
        }
        if material.len() != 2 * (k + s) {
            return Err(Error::KeyingMaterial("the length does not match the profile"));
        }
        let (client_key, rest) = material.split_at(k);
        let (server_key, rest) = rest.split_at(k);
        let (client_salt, server_salt) = rest.split_at(s);
        let ((lk, ls), (rk, rs)) = match role {
            Role::Client => ((client_key, client_salt), (server_key, server_salt)),
            Role::Server => ((server_key, server_salt), (client_key, client_salt)),
        };
        let mut keys = Self {
            profile,
            local_key: [0; MAX_KEY],
            remote_key: [0; MAX_KEY],
            local_salt: [0; MAX_SALT],
            remote_salt: [0; MAX_SALT],
        };
        keys.local_key[..k].copy_from_slice(lk);
        keys.remote_key[..k].copy_from_slice(rk);
        keys.local_salt[..s].copy_from_slice(ls);
        keys.remote_salt[..s].copy_from_slice(rs);
        Ok(keys)
    }

    /// This side's master key (the one it protects with).
    pub fn local_key(&self) -> &[u8] {
        &self.local_key[..self.profile.master_key_len()]
    }

    /// This side's master salt.
    pub fn local_salt(&self) -> &[u8] {
        &self.local_salt[..self.profile.master_salt_len()]
    }

    /// The peer's master key (the one this side unprotects with).
    pub fn remote_key(&self) -> &[u8] {
        &self.remote_key[..self.profile.master_key_len()]
    }

    /// The peer's master salt.
    pub fn remote_salt(&self) -> &[u8] {
        &self.remote_salt[..self.profile.master_salt_len()]
    }

    /// (sending, receiving) SRTP contexts: this side protects with its own
    /// key (the client's is the client write key) and unprotects with the
    /// peer's.
    pub fn contexts(&self) -> Result<(Context, Context), rtc_srtp::Error> {
        Ok((
            Context::new(self.profile, self.local_key(), self.local_salt())?,
            Context::new(self.profile, self.remote_key(), self.remote_salt())?,
        ))
    }
}

impl fmt::Debug for SrtpKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpKeys").field("profile", &self.profile).finish_non_exhaustive()
    }
}

/// The rtc-srtp profile for a profile the engine agreed, if rtc-srtp has it.
pub(crate) fn profile_of(p: dimpl::SrtpProfile) -> Option<Profile> {
    Some(match p {
        dimpl::SrtpProfile::AES128_CM_SHA1_80 => Profile::Aes128CmHmacSha1_80,
        dimpl::SrtpProfile::AEAD_AES_128_GCM => Profile::AeadAes128Gcm,
        dimpl::SrtpProfile::AEAD_AES_256_GCM => Profile::AeadAes256Gcm,
        _ => return None,
    })
}
