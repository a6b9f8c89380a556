//! Certificates: generation, PEM round trip, refusals.

use rtc_dtls::{Certificate, Error, Fingerprint, HashAlgorithm};

const OPENSSL_P256: &str = include_str!("data/openssl-p256.pem");
const OPENSSL_P384: &str = include_str!("data/openssl-p384.pem");

/// The blocks of a PEM text, in order.
fn blocks(pem: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in pem.lines() {
        current.push_str(line);
        current.push('\n');
        if line.starts_with("-----END ") {
            out.push(std::mem::take(&mut current));
        }
    }
    out
}

#[test]
fn generated_certificate() {
    let c = Certificate::generate().unwrap();
    assert_eq!(c.fingerprint().algorithm(), HashAlgorithm::Sha256);
    assert!(c.fingerprint().matches(c.der()));
    assert_eq!(c.fingerprint(), &Fingerprint::of(HashAlgorithm::Sha256, c.der()));
    assert!(c.der().windows(3).any(|w| w == b"rtc"), "common name rtc");
    let other = Certificate::generate().unwrap();
    assert_ne!(c.fingerprint(), other.fingerprint());
    // Clones share; Debug shows the fingerprint, not the key.
    let clone = c.clone();
    assert_eq!(clone.der(), c.der());
    let shown = format!("{c:?}");
    assert!(shown.contains("sha-256") && !shown.contains("PRIVATE"), "{shown}");
}

#[test]
fn pem_round_trip_keeps_the_fingerprint() {
    let c = Certificate::generate().unwrap();
    let pem = c.to_pem();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
    assert!(pem.contains("-----BEGIN PRIVATE KEY-----\n"));
    let back = Certificate::from_pem(&pem).unwrap();
    assert_eq!(back.fingerprint(), c.fingerprint());
    assert_eq!(back.der(), c.der());
    assert_eq!(back.to_pem(), pem);
    // Key first, text around and between the blocks, CRLF line ends.
    let b = blocks(&pem);
    let swapped = format!("# my key\n{}\nsome text\n{}trailing", b[1], b[0]);
    assert_eq!(Certificate::from_pem(&swapped).unwrap().fingerprint(), c.fingerprint());
    let crlf = pem.replace('\n', "\r\n");
    assert_eq!(Certificate::from_pem(&crlf).unwrap().fingerprint(), c.fingerprint());
}

#[test]
fn openssl_certificates_load_with_openssls_fingerprints() {
    // `openssl x509 -noout -fingerprint -sha256` (and -sha1, -sha512) of
    // the fixture, which has the key block first.
    let c = Certificate::from_pem(OPENSSL_P256).unwrap();
    assert_eq!(
        c.fingerprint().to_string(),
        "sha-256 C5:E5:80:5B:ED:DA:E6:B1:35:51:C1:78:01:51:5F:D5:EE:E2:61:21:41:BD:22:92:6B:25:87:C5:D4:B7:2A:1B"
    );
    assert_eq!(
        Fingerprint::of(HashAlgorithm::Sha1, c.der()).to_string(),
        "sha-1 63:17:8F:98:A8:02:C5:B0:27:8B:95:49:6B:B6:BB:A5:53:62:6A:AB"
    );
    assert_eq!(
        Fingerprint::of(HashAlgorithm::Sha512, c.der()).to_string(),
        "sha-512 10:96:63:76:D2:2A:D6:CF:A3:10:1D:21:37:20:93:A5:25:CD:73:DE:B2:57:EC:22:37:08:3D:A5:4B:53:B5:5A:\
         3B:BA:DF:9B:85:FC:F7:4F:BE:3F:EC:9C:79:96:31:F2:8C:48:4E:E1:AF:A5:EA:E3:76:60:9C:FC:EC:EC:E2:9B"
    );
    let c = Certificate::from_pem(OPENSSL_P384).unwrap();
    assert_eq!(
        Fingerprint::of(HashAlgorithm::Sha384, c.der()).to_string(),
        "sha-384 1D:68:C7:C8:F9:4D:1F:D8:BC:5C:27:DC:D0:CE:2C:E6:FE:44:C2:1F:88:AD:E1:C1:C7:9D:B3:E8:13:34:08:56:\
         5D:05:FB:EB:9C:6B:C7:2B:D8:EF:51:C1:0B:9B:7C:62"
    );
    // OpenSSL's own PEM round-trips through ours.
    assert_eq!(Certificate::from_pem(&c.to_pem()).unwrap().fingerprint(), c.fingerprint());
}

#[test]
fn p384_from_rcgen_loads() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["x".to_string()]).unwrap().self_signed(&key).unwrap();
    let c = Certificate::from_der(cert.der(), key.serialized_der()).unwrap();
    assert!(c.fingerprint().matches(cert.der()));
}

#[test]
fn from_pem_refusals() {
    let good = Certificate::generate().unwrap().to_pem();
    let b = blocks(&good);
    let (cert, key) = (&b[0], &b[1]);
    let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let ed_cert = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap().self_signed(&ed).unwrap();
    assert_eq!(
        Certificate::from_der(ed_cert.der(), ed.serialized_der()).unwrap_err(),
        Error::UnsupportedKey("Ed25519 (the DTLS engine signs with ECDSA only)")
    );
    let corrupt = {
        let mut lines: Vec<&str> = cert.lines().collect();
        lines[1] = "!!!!notbase64!!!!";
        lines.join("\n")
    };
    let not_a_cert = format!("-----BEGIN CERTIFICATE-----\nAAECAwQFBgcICQ==\n-----END CERTIFICATE-----\n{key}");
    let cases: Vec<(&str, String, Error)> = vec![
        ("empty", String::new(), Error::Pem("no CERTIFICATE block")),
        ("garbage", "hello, world".into(), Error::Pem("no CERTIFICATE block")),
        ("missing key", cert.clone(), Error::Pem("no PRIVATE KEY block")),
        ("missing certificate", key.clone(), Error::Pem("no CERTIFICATE block")),
        ("two certificates", format!("{cert}{cert}{key}"), Error::Pem("more than one CERTIFICATE block")),
        ("two keys", format!("{cert}{key}{key}"), Error::Pem("more than one PRIVATE KEY block")),
        ("no END", "-----BEGIN CERTIFICATE-----\nAAAA\n".into(), Error::Pem("a BEGIN line without its END line")),
        (
            "mismatched END",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END PRIVATE KEY-----\n".into(),
            Error::Pem("an END line does not match its BEGIN line"),
        ),
        ("unclosed BEGIN", "-----BEGIN CERTIFICATE".into(), Error::Pem("a BEGIN line is not closed by -----")),
        ("bad base64", format!("{corrupt}\n{key}"), Error::Pem("a block's base64 is malformed")),
        ("not a certificate", not_a_cert, Error::Certificate("not a DER X.509 certificate")),
        ("mismatched key", include_str!("data/mismatch.pem").into(), Error::KeyMismatch),
        (
            "another certificate's key",
            format!("{}{key}", blocks(&Certificate::generate().unwrap().to_pem())[0]),
            Error::KeyMismatch,
        ),
        (
            "RSA",
            include_str!("data/rsa.pem").into(),
            Error::UnsupportedKey("RSA (the DTLS engine signs with ECDSA only)"),
        ),
        (
            "Ed25519 (OpenSSL)",
            include_str!("data/ed25519.pem").into(),
            Error::UnsupportedKey("Ed25519 (the DTLS engine signs with ECDSA only)"),
        ),
        (
            "SEC1 key",
            include_str!("data/p256-sec1.pem").into(),
            Error::UnsupportedKey("SEC1 EC PRIVATE KEY (convert it to PKCS#8 PRIVATE KEY)"),
        ),
        (
            "encrypted key",
            format!("{cert}-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"),
            Error::UnsupportedKey("encrypted private keys"),
        ),
        ("too long", "x".repeat(70_000), Error::Pem("longer than 64 KiB")),
    ];
    for (name, text, want) in cases {
        match Certificate::from_pem(&text) {
            Ok(_) => panic!("{name}: accepted"),
            Err(e) => assert_eq!(e, want, "{name}"),
        }
    }
    // A P-384 certificate with the P-256 key of another: the key is wrong.
    let mixed = format!("{}{key}", blocks(OPENSSL_P384)[0]);
    assert_eq!(Certificate::from_pem(&mixed).unwrap_err(), Error::KeyMismatch);
    // Errors say what is wrong.
    assert_eq!(Error::KeyMismatch.to_string(), "the private key does not match the certificate");
    assert_eq!(Error::Pem("no CERTIFICATE block").to_string(), "bad PEM: no CERTIFICATE block");
}

#[test]
fn from_der_refuses_bad_input() {
    let c = Certificate::generate().unwrap();
    assert!(matches!(Certificate::from_der(&[], &[]), Err(Error::Certificate(_))));
    assert!(matches!(Certificate::from_der(c.der(), b"not a key"), Err(Error::UnsupportedKey(_))));
    let mut trailing = c.der().to_vec();
    trailing.push(0);
    assert!(matches!(Certificate::from_der(&trailing, b"k"), Err(Error::Certificate(_))));
}

proptest::proptest! {
    /// PEM texts stitched from markers, labels and junk never panic.
    #[test]
    fn from_pem_never_panics(parts in proptest::collection::vec(proptest::sample::select(vec![
        "-----BEGIN ", "-----END ", "-----", "CERTIFICATE", "PRIVATE KEY", "EC PRIVATE KEY", "é", "\n", "\r\n",
        "MIIB", "AAAA", "=", "-", " ", "ABCDEFGHabcdefgh0123456789+/",
    ]), 0..40)) {
        let text = parts.concat();
        let _ = Certificate::from_pem(&text);
    }
}
