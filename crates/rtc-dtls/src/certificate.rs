//! DTLS certificates: generated (ECDSA P-256) or loaded from PEM.

use std::fmt;
use std::sync::Arc;

use dimpl::DtlsCertificate;
use x509_cert::der::Decode;
use x509_cert::spki::ObjectIdentifier;

use crate::{Error, Fingerprint, HashAlgorithm};

/// The longest PEM text [`Certificate::from_pem`] reads.
const MAX_PEM: usize = 64 * 1024;

/// `id-ecPublicKey` (RFC 5480).
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `rsaEncryption` (RFC 8017).
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// `id-Ed25519` (RFC 8410).
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// A DTLS certificate with its private key.
///
/// Cloning is cheap (the DER is shared). [`Debug`](fmt::Debug) shows the
/// fingerprint only, never the key.
#[derive(Clone)]
pub struct Certificate {
    inner: Arc<Inner>,
}

struct Inner {
    dtls: DtlsCertificate,
    fingerprint: Fingerprint,
    /// The OpenSSL context built from it, on first use.
    #[cfg(feature = "openssl")]
    openssl: std::sync::OnceLock<Option<openssl::ssl::SslContext>>,
}

impl Certificate {
    /// A fresh self-signed ECDSA P-256 certificate (rcgen on ring) with
    /// common name `rtc`.
    pub fn generate() -> Result<Self, Error> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|_| Error::Generate("generating the P-256 key failed"))?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
            .map_err(|_| Error::Generate("building the certificate parameters failed"))?;
        params.distinguished_name.push(rcgen::DnType::CommonName, "rtc");
        let cert = params.self_signed(&key).map_err(|_| Error::Generate("signing the certificate failed"))?;
        Self::from_der(cert.der(), key.serialized_der())
    }

    /// A certificate from its DER and its private key as PKCS#8 DER.
    ///
    /// The key must be ECDSA P-256 or P-384 (what the DTLS engine signs
    /// with) and belong to the certificate; anything else is refused with
    /// [`Error::UnsupportedKey`], [`Error::KeyMismatch`] or
    /// [`Error::Certificate`].
    pub fn from_der(certificate: &[u8], private_key_pkcs8: &[u8]) -> Result<Self, Error> {
        let cert = x509_cert::Certificate::from_der(certificate)
            .map_err(|_| Error::Certificate("not a DER X.509 certificate"))?;
        let spki = cert.tbs_certificate().subject_public_key_info();
        match spki.algorithm.oid {
            OID_EC_PUBLIC_KEY => {}
            OID_RSA => return Err(Error::UnsupportedKey("RSA (the DTLS engine signs with ECDSA only)")),
            OID_ED25519 => {
                return Err(Error::UnsupportedKey("Ed25519 (the DTLS engine signs with ECDSA only)"));
            }
            _ => return Err(Error::UnsupportedKey("the certificate's key is not an ECDSA key")),
        }
        dimpl::crypto::cert_named_group(certificate)
            .map_err(|_| Error::UnsupportedKey("the certificate's curve is not P-256 or P-384"))?;

        let key = rcgen::KeyPair::try_from(private_key_pkcs8)
            .map_err(|_| Error::UnsupportedKey("the private key is not a PKCS#8 key ring can read"))?;
        let alg = key.algorithm();
        if alg == &rcgen::PKCS_RSA_SHA256 {
            return Err(Error::UnsupportedKey("RSA (the DTLS engine signs with ECDSA only)"));
        }
        if alg == &rcgen::PKCS_ED25519 {
            return Err(Error::UnsupportedKey("Ed25519 (the DTLS engine signs with ECDSA only)"));
        }
        if alg != &rcgen::PKCS_ECDSA_P256_SHA256 && alg != &rcgen::PKCS_ECDSA_P384_SHA384 {
            return Err(Error::UnsupportedKey("the private key is not ECDSA P-256 or P-384"));
        }
        if key.public_key_raw() != spki.subject_public_key.raw_bytes() {
            return Err(Error::KeyMismatch);
        }
        // The engine loads the key when an association is built and treats
        // a key it cannot load as a programming error; make sure it can.
        // (Both default configurations are built here, before any call.)
        let [config, _] = crate::dtls::configs().ok_or(Error::Engine("the DTLS configuration is invalid"))?;
        config
            .crypto_provider()
            .key_provider
            .load_private_key(private_key_pkcs8)
            .map_err(|_| Error::UnsupportedKey("the DTLS engine cannot load the private key"))?;

        Ok(Self {
            inner: Arc::new(Inner {
                fingerprint: Fingerprint::of(HashAlgorithm::Sha256, certificate),
                dtls: DtlsCertificate { certificate: certificate.to_vec(), private_key: private_key_pkcs8.to_vec() },
                #[cfg(feature = "openssl")]
                openssl: std::sync::OnceLock::new(),
            }),
        })
    }

    /// A certificate from one text holding a `CERTIFICATE` block and a
    /// `PRIVATE KEY` (PKCS#8) block, in any order.
    ///
    /// Other blocks (such as OpenSSL's `EC PARAMETERS`) and text between
    /// blocks are ignored. Refused: a missing or repeated certificate or
    /// key, an encrypted key, SEC1 (`EC PRIVATE KEY`) or PKCS#1
    /// (`RSA PRIVATE KEY`) keys, key types the DTLS engine cannot sign with
    /// (RSA, Ed25519, curves other than P-256 and P-384), and a key that
    /// does not belong to the certificate. See [`Certificate::from_der`].
    pub fn from_pem(pem: &str) -> Result<Self, Error> {
        if pem.len() > MAX_PEM {
            return Err(Error::Pem("longer than 64 KiB"));
        }
        let mut cert = None;
        let mut key = None;
        let mut rest = pem;
        while let Some(start) = rest.find("-----BEGIN ") {
            let block = &rest[start..];
            let after = &block["-----BEGIN ".len()..];
            let label_len = after.find("-----").ok_or(Error::Pem("a BEGIN line is not closed by -----"))?;
            let label = &after[..label_len];
            let end_marker_at = block.find("-----END ").ok_or(Error::Pem("a BEGIN line without its END line"))?;
            let end_line = &block[end_marker_at + "-----END ".len()..];
            if !end_line.starts_with(label) || !end_line[label.len()..].starts_with("-----") {
                return Err(Error::Pem("an END line does not match its BEGIN line"));
            }
            let block_len = end_marker_at + "-----END ".len() + label.len() + "-----".len();
            let text = &block[..block_len];
            rest = &block[block_len..];
            let slot = match label {
                "CERTIFICATE" => &mut cert,
                "PRIVATE KEY" => &mut key,
                "ENCRYPTED PRIVATE KEY" => return Err(Error::UnsupportedKey("encrypted private keys")),
                "EC PRIVATE KEY" => {
                    return Err(Error::UnsupportedKey("SEC1 EC PRIVATE KEY (convert it to PKCS#8 PRIVATE KEY)"));
                }
                "RSA PRIVATE KEY" => return Err(Error::UnsupportedKey("RSA (the DTLS engine signs with ECDSA only)")),
                _ => continue,
            };
            if slot.is_some() {
                return Err(Error::Pem(if label == "CERTIFICATE" {
                    "more than one CERTIFICATE block"
                } else {
                    "more than one PRIVATE KEY block"
                }));
            }
            let (_, der) =
                pem_rfc7468::decode_vec(text.as_bytes()).map_err(|_| Error::Pem("a block's base64 is malformed"))?;
            *slot = Some(der);
        }
        let cert = cert.ok_or(Error::Pem("no CERTIFICATE block"))?;
        let key = key.ok_or(Error::Pem("no PRIVATE KEY block"))?;
        Self::from_der(&cert, &key)
    }

    /// The certificate and its private key as PEM: a `CERTIFICATE` block,
    /// then a `PRIVATE KEY` (PKCS#8) block.
    ///
    /// [`Certificate::from_pem`] reads it back to the same certificate (and
    /// so the same fingerprint), which lets an application keep its
    /// fingerprint across restarts. The text holds the private key: store
    /// it accordingly.
    pub fn to_pem(&self) -> String {
        let block =
            |label, der: &[u8]| pem_rfc7468::encode_string(label, pem_rfc7468::LineEnding::LF, der).unwrap_or_default();
        let mut out = block("CERTIFICATE", &self.inner.dtls.certificate);
        out.push_str(&block("PRIVATE KEY", &self.inner.dtls.private_key));
        out
    }

    /// The certificate, DER.
    pub fn der(&self) -> &[u8] {
        &self.inner.dtls.certificate
    }

    /// The certificate's SHA-256 fingerprint (what goes into `a=fingerprint`).
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.inner.fingerprint
    }

    /// The certificate and key as the DTLS engine takes them.
    pub(crate) fn dtls(&self) -> &DtlsCertificate {
        &self.inner.dtls
    }

    /// The OpenSSL context for this certificate, built once (`None` when
    /// OpenSSL cannot load it).
    #[cfg(feature = "openssl")]
    pub(crate) fn openssl_context(&self) -> Option<&openssl::ssl::SslContext> {
        self.inner.openssl.get_or_init(|| crate::ossl::context(self)).as_ref()
    }
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate").field("fingerprint", &self.inner.fingerprint).finish_non_exhaustive()
    }
}
