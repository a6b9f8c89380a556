//! The crate's error type.

/// Why an operation was refused.
///
/// Each variant carries a fixed text saying what was wrong; nothing here
/// holds key material or peer-controlled text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A fingerprint text does not follow RFC 8122 section 5.
    #[error("bad fingerprint: {0}")]
    Fingerprint(&'static str),
    /// A fingerprint names a hash function this crate does not compute.
    #[error("unsupported fingerprint hash function: {0}")]
    UnsupportedHash(&'static str),
    /// A PEM text is malformed or lacks a block.
    #[error("bad PEM: {0}")]
    Pem(&'static str),
    /// A certificate could not be read.
    #[error("bad certificate: {0}")]
    Certificate(&'static str),
    /// A key (or the certificate's public key) is of a type or format the
    /// DTLS engine cannot sign or verify with.
    #[error("unsupported key: {0}")]
    UnsupportedKey(&'static str),
    /// The private key does not belong to the certificate.
    #[error("the private key does not match the certificate")]
    KeyMismatch,
    /// Generating a certificate failed.
    #[error("certificate generation failed: {0}")]
    Generate(&'static str),
    /// Keying material does not fit the SRTP profile.
    #[error("bad keying material: {0}")]
    KeyingMaterial(&'static str),
    /// The association is not in a state that allows the operation.
    #[error("not connected: {0}")]
    NotConnected(&'static str),
    /// Application data longer than [`crate::MAX_APPLICATION_DATA`].
    #[error("application data too large: {0} octets")]
    TooLarge(usize),
    /// The outgoing queue is full; poll transmits first.
    #[error("transmit queue full")]
    QueueFull,
    /// The DTLS engine refused the operation and the association failed.
    #[error("DTLS engine: {0}")]
    Engine(&'static str),
}
