//! RFC 8122 section 5 fingerprints: grammar, each hash's length, formatting.

use rtc_dtls::{Error, Fingerprint, HashAlgorithm};

fn hex(n: usize, byte: &str) -> String {
    vec![byte; n].join(":")
}

#[test]
fn parse_table() {
    let ok: Vec<(String, HashAlgorithm, usize)> = vec![
        (format!("sha-1 {}", hex(20, "AB")), HashAlgorithm::Sha1, 20),
        (format!("sha-256 {}", hex(32, "AB")), HashAlgorithm::Sha256, 32),
        (format!("sha-384 {}", hex(48, "AB")), HashAlgorithm::Sha384, 48),
        (format!("sha-512 {}", hex(64, "AB")), HashAlgorithm::Sha512, 64),
        // Case-insensitive hash names and hex.
        (format!("SHA-256 {}", hex(32, "ab")), HashAlgorithm::Sha256, 32),
        (format!("Sha-1 {}", hex(20, "aB")), HashAlgorithm::Sha1, 20),
        // Whitespace around the text and a run of spaces or a tab between.
        (format!("  sha-256 {}\r\n", hex(32, "AB")), HashAlgorithm::Sha256, 32),
        (format!("sha-256\t {}", hex(32, "AB")), HashAlgorithm::Sha256, 32),
    ];
    for (text, alg, len) in ok {
        let f = Fingerprint::parse(&text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(f.algorithm(), alg, "{text}");
        assert_eq!(f.digest(), vec![0xAB; len], "{text}");
        assert_eq!(f.algorithm().digest_len(), len);
        assert_eq!(text.parse::<Fingerprint>().unwrap(), f);
    }

    let bad: Vec<(String, Error)> = vec![
        (String::new(), Error::Fingerprint("empty")),
        ("   \t".into(), Error::Fingerprint("empty")),
        (
            format!("sha-256{}", hex(32, "AB")),
            Error::Fingerprint("missing the space between hash function and fingerprint"),
        ),
        ("sha-256".into(), Error::Fingerprint("missing the space between hash function and fingerprint")),
        // Wrong length for the hash function.
        (
            format!("sha-256 {}", hex(31, "AB")),
            Error::Fingerprint("the length does not match the hash function's digest"),
        ),
        (
            format!("sha-256 {}", hex(33, "AB")),
            Error::Fingerprint("the length does not match the hash function's digest"),
        ),
        (
            format!("sha-1 {}", hex(32, "AB")),
            Error::Fingerprint("the length does not match the hash function's digest"),
        ),
        (format!("sha-512 {}", hex(65, "AB")), Error::Fingerprint("longer than the hash function's digest")),
        (format!("sha-384 {}", hex(200, "AB")), Error::Fingerprint("longer than the hash function's digest")),
        // Bad hex.
        (format!("sha-256 GG:{}", hex(31, "AB")), Error::Fingerprint("not a hex digit")),
        (format!("sha-256 ABC:{}", hex(31, "AB")), Error::Fingerprint("each octet must be two hex digits")),
        (format!("sha-256 A:{}", hex(31, "AB")), Error::Fingerprint("each octet must be two hex digits")),
        (format!("sha-256 {}:", hex(32, "AB")), Error::Fingerprint("each octet must be two hex digits")),
        (format!("sha-256 :{}", hex(32, "AB")), Error::Fingerprint("each octet must be two hex digits")),
        (
            format!("sha-256 {}", hex(32, "AB").replacen(':', "::", 1)),
            Error::Fingerprint("each octet must be two hex digits"),
        ),
        (
            format!("sha-256 {}", hex(32, "AB").replace(':', "-")),
            Error::Fingerprint("each octet must be two hex digits"),
        ),
        (
            format!("sha-256 {}", hex(32, "AB").replace(':', " ")),
            Error::Fingerprint("each octet must be two hex digits"),
        ),
        (format!("sha-256 {}", hex(32, "é")), Error::Fingerprint("not a hex digit")),
        (format!("sha-256 {} extra", hex(32, "AB")), Error::Fingerprint("each octet must be two hex digits")),
        // Hash functions.
        (format!("sha-224 {}", hex(28, "AB")), Error::UnsupportedHash("sha-224 (ring does not compute it)")),
        (format!("md5 {}", hex(16, "AB")), Error::UnsupportedHash("md5 and md2 must not be used (RFC 8122 section 5)")),
        (format!("MD2 {}", hex(16, "AB")), Error::UnsupportedHash("md5 and md2 must not be used (RFC 8122 section 5)")),
        (format!("sha3-256 {}", hex(32, "AB")), Error::UnsupportedHash("unknown hash function")),
        (format!("sha(256) {}", hex(32, "AB")), Error::Fingerprint("the hash function is not a token")),
        (format!("shä-256 {}", hex(32, "AB")), Error::Fingerprint("the hash function is not a token")),
    ];
    for (text, want) in bad {
        assert_eq!(Fingerprint::parse(&text), Err(want), "{text:?}");
    }
}

#[test]
fn format_is_upper_case_and_round_trips() {
    let f = Fingerprint::parse(&format!("sha-256 {}", hex(32, "0f"))).unwrap();
    assert_eq!(f.to_string(), format!("sha-256 {}", hex(32, "0F")));
    assert_eq!(format!("{f:?}"), format!("Fingerprint(sha-256 {})", hex(32, "0F")));
    for alg in [HashAlgorithm::Sha1, HashAlgorithm::Sha256, HashAlgorithm::Sha384, HashAlgorithm::Sha512] {
        let f = Fingerprint::of(alg, b"certificate bytes");
        assert_eq!(f.digest().len(), alg.digest_len());
        let text = f.to_string();
        assert!(text.starts_with(alg.name()) && text.as_bytes()[alg.name().len()] == b' ');
        assert_eq!(text.len(), alg.name().len() + 1 + 3 * alg.digest_len() - 1);
        assert_eq!(Fingerprint::parse(&text).unwrap(), f);
        assert_eq!(Fingerprint::parse(&text.to_lowercase()).unwrap(), f);
        assert_eq!(HashAlgorithm::from_name(&alg.name().to_uppercase()), Ok(alg));
        assert_eq!(alg.to_string(), alg.name());
        assert!(f.matches(b"certificate bytes"));
        assert!(!f.matches(b"certificate bytes."));
    }
}

#[test]
fn known_digests() {
    // FIPS 180 "abc" test vectors.
    assert_eq!(
        Fingerprint::of(HashAlgorithm::Sha1, b"abc").to_string(),
        "sha-1 A9:99:3E:36:47:06:81:6A:BA:3E:25:71:78:50:C2:6C:9C:D0:D8:9D"
    );
    assert_eq!(
        Fingerprint::of(HashAlgorithm::Sha256, b"abc").to_string(),
        "sha-256 BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
    );
}

#[test]
fn equal_fingerprints_hash_equal() {
    use std::collections::HashSet;
    let a = Fingerprint::parse(&format!("sha-256 {}", hex(32, "aa"))).unwrap();
    let b = Fingerprint::parse(&format!("SHA-256 {}", hex(32, "AA"))).unwrap();
    let c = Fingerprint::parse(&format!("sha-256 {}", hex(32, "AB"))).unwrap();
    let set: HashSet<_> = [a.clone(), b, c].into_iter().collect();
    assert_eq!(set.len(), 2);
    assert!(set.contains(&a));
}

proptest::proptest! {
    /// Fingerprint texts of any shape never panic, and what parses formats
    /// back to an equal fingerprint.
    #[test]
    fn fingerprint_parse_never_panics(text in "[ -~é\t]{0,80}|(sha-(1|256|384|512) )?([0-9a-fA-F]{2}:){0,70}[0-9a-fA-F]{0,3}") {
        if let Ok(f) = Fingerprint::parse(&text) {
            proptest::prop_assert_eq!(Fingerprint::parse(&f.to_string()).unwrap(), f);
        }
    }
}
