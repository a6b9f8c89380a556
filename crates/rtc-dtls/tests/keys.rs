//! RFC 5764 section 4.2: the exported keying material's layout.

mod common;

use common::{assert_directions_differ, assert_keys_agree};
use rtc_dtls::{Error, Role, SrtpKeys};
use rtc_srtp::Profile;

/// client write key | server write key | client write salt | server write salt
#[test]
fn keying_material_layout() {
    for (profile, k, s) in
        [(Profile::Aes128CmHmacSha1_80, 16, 14), (Profile::AeadAes128Gcm, 16, 12), (Profile::AeadAes256Gcm, 32, 12)]
    {
        let material: Vec<u8> = (0..2 * (k + s)).map(|i| i as u8).collect();
        let client = SrtpKeys::from_keying_material(profile, &material, Role::Client).unwrap();
        let server = SrtpKeys::from_keying_material(profile, &material, Role::Server).unwrap();
        let (client_key, server_key) = (&material[..k], &material[k..2 * k]);
        let (client_salt, server_salt) = (&material[2 * k..2 * k + s], &material[2 * k + s..]);
        assert_eq!(client.profile, profile);
        assert_eq!(client.local_key(), client_key);
        assert_eq!(client.local_salt(), client_salt);
        assert_eq!(client.remote_key(), server_key);
        assert_eq!(client.remote_salt(), server_salt);
        assert_eq!(server.local_key(), server_key);
        assert_eq!(server.local_salt(), server_salt);
        assert_eq!(server.remote_key(), client_key);
        assert_eq!(server.remote_salt(), client_salt);
        // What one side protects, the other unprotects, both ways; a side
        // cannot read its own packets.
        assert_keys_agree(&client, &server);
        assert_keys_agree(&server, &client);
        assert_directions_differ(&client);
        assert_directions_differ(&server);
        // The length must be exact.
        for len in [0, material.len() - 1, material.len() + 1] {
            let m = vec![0u8; len];
            assert_eq!(
                SrtpKeys::from_keying_material(profile, &m, Role::Client).unwrap_err(),
                Error::KeyingMaterial("the length does not match the profile")
            );
        }
        let shown = format!("{client:?}");
        assert!(!shown.contains("local_key") && shown.contains("profile"), "{shown}");
    }
}
