//! SRTP and SRTCP (RFC 3711, RFC 6188, RFC 7714): protect and unprotect in
//! place on a caller's buffer.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hasher};

use crate::crypto::{AesKey, GCM_TAG, GcmBackend, GcmKey, HmacSha1, Label, derive, tags_equal};
use crate::replay::ReplayWindow;
use crate::{Error, rtp};

/// An SRTP protection profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Profile {
    /// AES_CM_128_HMAC_SHA1_80 (RFC 3711, RFC 5764 `SRTP_AES128_CM_HMAC_SHA1_80`).
    Aes128CmHmacSha1_80,
    /// AES_CM_128_HMAC_SHA1_32: 32-bit SRTP tag, 80-bit SRTCP tag (RFC 5764 section 4.1.2).
    Aes128CmHmacSha1_32,
    /// AES_256_CM_HMAC_SHA1_80 (RFC 6188).
    Aes256CmHmacSha1_80,
    /// AES_256_CM_HMAC_SHA1_32 (RFC 6188): 32-bit SRTP tag, 80-bit SRTCP tag.
    Aes256CmHmacSha1_32,
    /// AEAD_AES_128_GCM (RFC 7714), 16-octet tag.
    AeadAes128Gcm,
    /// AEAD_AES_256_GCM (RFC 7714), 16-octet tag.
    AeadAes256Gcm,
}

impl Profile {
    /// Every profile.
    pub const ALL: [Profile; 6] = [
        Self::Aes128CmHmacSha1_80,
        Self::Aes128CmHmacSha1_32,
        Self::Aes256CmHmacSha1_80,
        Self::Aes256CmHmacSha1_32,
        Self::AeadAes128Gcm,
        Self::AeadAes256Gcm,
    ];

    /// Length of the master key in octets.
    pub const fn master_key_len(self) -> usize {
        match self {
            Self::Aes128CmHmacSha1_80 | Self::Aes128CmHmacSha1_32 | Self::AeadAes128Gcm => 16,
            Self::Aes256CmHmacSha1_80 | Self::Aes256CmHmacSha1_32 | Self::AeadAes256Gcm => 32,
        }
    }

    /// Length of the master salt in octets (14, or 12 for AES-GCM).
    pub const fn master_salt_len(self) -> usize {
        if self.is_aead() { 12 } else { 14 }
    }

    /// Whether the profile is an AEAD (AES-GCM) one.
    pub const fn is_aead(self) -> bool {
        matches!(self, Self::AeadAes128Gcm | Self::AeadAes256Gcm)
    }

    /// Octets an SRTP packet grows by (the authentication tag).
    pub const fn rtp_tag_len(self) -> usize {
        match self {
            Self::Aes128CmHmacSha1_80 | Self::Aes256CmHmacSha1_80 => 10,
            Self::Aes128CmHmacSha1_32 | Self::Aes256CmHmacSha1_32 => 4,
            Self::AeadAes128Gcm | Self::AeadAes256Gcm => GCM_TAG,
        }
    }

    /// Length of the SRTCP authentication tag.
    pub const fn rtcp_tag_len(self) -> usize {
        if self.is_aead() { GCM_TAG } else { 10 }
    }

    /// Octets an SRTCP packet grows by (the E flag and index, and the tag).
    pub const fn rtcp_overhead(self) -> usize {
        4 + self.rtcp_tag_len()
    }

    /// The profile's name as RFCs and SDP `a=crypto` write it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Aes128CmHmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Self::Aes128CmHmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Self::Aes256CmHmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            Self::Aes256CmHmacSha1_32 => "AES_256_CM_HMAC_SHA1_32",
            Self::AeadAes128Gcm => "AEAD_AES_128_GCM",
            Self::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    /// The DTLS-SRTP protection profile identifier (RFC 5764 section 4.1.2,
    /// RFC 7714 section 14.2), where one is registered.
    pub const fn dtls_srtp_id(self) -> Option<u16> {
        match self {
            Self::Aes128CmHmacSha1_80 => Some(0x0001),
            Self::Aes128CmHmacSha1_32 => Some(0x0002),
            Self::AeadAes128Gcm => Some(0x0007),
            Self::AeadAes256Gcm => Some(0x0008),
            Self::Aes256CmHmacSha1_80 | Self::Aes256CmHmacSha1_32 => None,
        }
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Session options.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Replay window size in packets (at least 64; RFC 3711 requires 64, the default is 128).
    pub replay_window: usize,
    /// The most SSRCs tracked per direction; packets of further SSRCs are refused with
    /// [`Error::TooManySsrcs`], so a hostile sender cannot grow memory without bound.
    pub max_ssrcs: usize,
    /// Encrypt RTP payloads (otherwise authenticate only).
    pub rtp_encryption: bool,
    /// Encrypt RTCP (the E flag; otherwise authenticate only).
    pub rtcp_encryption: bool,
    /// Which implementation runs AES-GCM.
    pub gcm_backend: GcmBackend,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            replay_window: 128,
            max_ssrcs: 1024,
            rtp_encryption: true,
            rtcp_encryption: true,
            gcm_backend: GcmBackend::default(),
        }
    }
}

/// The session keys of one direction of protection (RTP or RTCP).
#[derive(Clone, PartialEq, Eq)]
pub struct DirectionKeys {
    /// The session encryption key (16 or 32 octets).
    pub encryption: Vec<u8>,
    /// The session salt (14 octets, 12 for AES-GCM).
    pub salt: Vec<u8>,
    /// The session authentication key (20 octets; empty for AES-GCM).
    pub auth: Vec<u8>,
}

impl std::fmt::Debug for DirectionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DirectionKeys { .. }")
    }
}

/// The session keys derived from a master key and salt (RFC 3711 section
/// 4.3 with a key derivation rate of 0; RFC 6188 section 5 for AES-256).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionKeys {
    /// Keys for SRTP.
    pub rtp: DirectionKeys,
    /// Keys for SRTCP.
    pub rtcp: DirectionKeys,
}

impl SessionKeys {
    /// Runs the AES-CM PRF over the master key and salt for every label.
    pub fn derive(profile: Profile, master_key: &[u8], master_salt: &[u8]) -> Result<Self, Error> {
        if master_key.len() != profile.master_key_len() {
            return Err(Error::BadKey("master key length does not match the profile"));
        }
        if master_salt.len() != profile.master_salt_len() {
            return Err(Error::BadKey("master salt length does not match the profile"));
        }
        let master = AesKey::new(master_key)?;
        let one = |labels: [Label; 3]| {
            let mut encryption = vec![0; profile.master_key_len()];
            derive(&master, master_salt, labels[0], &mut encryption);
            let mut salt = vec![0; profile.master_salt_len()];
            derive(&master, master_salt, labels[2], &mut salt);
            let mut auth = if profile.is_aead() { Vec::new() } else { vec![0; 20] };
            derive(&master, master_salt, labels[1], &mut auth);
            DirectionKeys { encryption, salt, auth }
        };
        Ok(Self {
            rtp: one([Label::RtpEncryption, Label::RtpAuth, Label::RtpSalt]),
            rtcp: one([Label::RtcpEncryption, Label::RtcpAuth, Label::RtcpSalt]),
        })
    }
}

/// The maximum number of SRTP packets per master key (RFC 3711 section 9.2).
pub const MAX_SRTP_PACKETS: u64 = 1 << 48;
/// The maximum number of SRTCP packets per master key (RFC 3711 section 9.2).
pub const MAX_SRTCP_PACKETS: u64 = 1 << 31;

/// The session keys of one direction (RTP or RTCP).
enum Transform {
    /// `salt` is the 14-octet session salt times 2^16, as an integer.
    Cm { enc: AesKey, salt: u128, auth: HmacSha1 },
    /// `salt` is the 12-octet session salt as an integer.
    Gcm { key: GcmKey, salt: u128 },
}

impl Transform {
    fn from_keys(profile: Profile, backend: GcmBackend, key: &[u8], salt: &[u8], auth: &[u8]) -> Result<Self, Error> {
        if profile.is_aead() {
            Ok(Self::Gcm {
                key: GcmKey::new(backend, key)?,
                salt: salt_int(salt, 12).ok_or(Error::BadKey("AES-GCM session salt is 12 bytes"))?,
            })
        } else {
            Ok(Self::Cm {
                enc: AesKey::new(key)?,
                salt: salt_int(salt, 14).ok_or(Error::BadKey("AES-CM session salt is 14 bytes"))? << 16,
                auth: HmacSha1::new(auth),
            })
        }
    }
}

/// A multiplicative hash for SSRC keys: one multiply instead of SipHash on
/// every packet. Flooding is not a concern: a received SSRC enters a map
/// only after its packet authenticates, and the maps are capped.
#[derive(Default, Clone, Copy)]
pub(crate) struct SsrcHasher(u64);

impl Hasher for SsrcHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, i: u32) {
        self.0 = (self.0 ^ u64::from(i)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type SsrcMap<V> = HashMap<u32, V, BuildHasherDefault<SsrcHasher>>;

/// Outgoing SRTP state of one SSRC: the highest index sent.
#[derive(Clone, Copy, Debug)]
struct TxRtp {
    top: Option<u64>,
}

/// One SSRC's outgoing SRTCP index.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TxRtcp {
    pub(crate) next: u32,
}

/// The packet index of RTP sequence number `seq` given the highest index
/// `top` seen so far (RFC 3711 section 3.3.1 and appendix A). While the
/// rollover counter is zero a sequence number that would need a negative one
/// counts from zero, as libsrtp does.
pub(crate) fn estimate_index(top: Option<u64>, seq: u16) -> Result<u64, Error> {
    let Some(top) = top else { return Ok(u64::from(seq)) };
    let roc = (top >> 16) as i64;
    let s_l = i64::from(top as u16);
    let seq_i = i64::from(seq);
    let v = if s_l < 32768 {
        if seq_i - s_l > 32768 { roc - 1 } else { roc }
    } else if s_l - 32768 > seq_i {
        roc + 1
    } else {
        roc
    };
    let v = v.max(0) as u64;
    if v > u64::from(u32::MAX) {
        return Err(Error::KeyExhausted("SRTP rollover counter wrapped"));
    }
    Ok((v << 16) | u64::from(seq))
}

/// An SRTP session for one master key and salt: protects what is sent and
/// unprotects what is received with that key, keeping per-SSRC rollover
/// counters, replay windows and SRTCP indices.
///
/// ```
/// use rtc_srtp::{Context, Profile};
/// let key = [7u8; 30]; // master key || master salt
/// let mut tx = Context::new(Profile::Aes128CmHmacSha1_80, &key[..16], &key[16..])?;
/// let mut rx = Context::new(Profile::Aes128CmHmacSha1_80, &key[..16], &key[16..])?;
/// let mut buf = [0u8; 64];
/// buf[..12].copy_from_slice(&[0x80, 96, 0, 1, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef]);
/// buf[12..16].copy_from_slice(b"data");
/// let n = tx.protect_rtp(&mut buf, 16)?;
/// assert_eq!(n, 16 + 10);
/// let m = rx.unprotect_rtp(&mut buf[..n])?;
/// assert_eq!(&buf[12..m], b"data");
/// # Ok::<(), rtc_srtp::Error>(())
/// ```
pub struct Context {
    profile: Profile,
    config: Config,
    rtp: Transform,
    rtcp: Transform,
    tx_rtp: SsrcMap<TxRtp>,
    rx_rtp: SsrcMap<ReplayWindow>,
    pub(crate) tx_rtcp: SsrcMap<TxRtcp>,
    rx_rtcp: SsrcMap<ReplayWindow>,
    srtp_packets: u64,
    srtcp_packets: u64,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("profile", &self.profile)
            .field("config", &self.config)
            .field("srtp_packets", &self.srtp_packets)
            .field("srtcp_packets", &self.srtcp_packets)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A session with the default [`Config`].
    pub fn new(profile: Profile, master_key: &[u8], master_salt: &[u8]) -> Result<Self, Error> {
        Self::with_config(profile, master_key, master_salt, Config::default())
    }

    /// A session with explicit options.
    pub fn with_config(profile: Profile, master_key: &[u8], master_salt: &[u8], config: Config) -> Result<Self, Error> {
        Self::from_session_keys(profile, config, &SessionKeys::derive(profile, master_key, master_salt)?)
    }

    /// A session from session keys derived elsewhere (or given by test
    /// vectors, as in RFC 7714 sections 16 and 17).
    pub fn from_session_keys(profile: Profile, config: Config, keys: &SessionKeys) -> Result<Self, Error> {
        let t = |k: &DirectionKeys| Transform::from_keys(profile, config.gcm_backend, &k.encryption, &k.salt, &k.auth);
        Self::from_transforms(profile, config, t(&keys.rtp)?, t(&keys.rtcp)?)
    }

    fn from_transforms(profile: Profile, config: Config, rtp: Transform, rtcp: Transform) -> Result<Self, Error> {
        if config.replay_window < 64 {
            return Err(Error::Invalid("replay window below 64 packets (RFC 3711 section 3.3.2)"));
        }
        Ok(Self {
            profile,
            config,
            rtp,
            rtcp,
            tx_rtp: SsrcMap::default(),
            rx_rtp: SsrcMap::default(),
            tx_rtcp: SsrcMap::default(),
            rx_rtcp: SsrcMap::default(),
            srtp_packets: 0,
            srtcp_packets: 0,
        })
    }

    /// The session's profile.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// The rollover counter of an outgoing SSRC, if it has sent.
    pub fn tx_roc(&self, ssrc: u32) -> Option<u32> {
        self.tx_rtp.get(&ssrc).and_then(|s| s.top).map(|t| (t >> 16) as u32)
    }

    /// The rollover counter of an incoming SSRC, if one of its packets authenticated.
    pub fn rx_roc(&self, ssrc: u32) -> Option<u32> {
        self.rx_rtp.get(&ssrc).and_then(ReplayWindow::top).map(|t| (t >> 16) as u32)
    }

    /// Sets the rollover counter an outgoing SSRC continues from (for a
    /// stream that started before this session): its next packet's index is
    /// estimated as if `roc`/`seq` had just been sent.
    pub fn set_tx_roc(&mut self, ssrc: u32, roc: u32, seq: u16) -> Result<(), Error> {
        if !self.tx_rtp.contains_key(&ssrc) && self.tx_rtp.len() >= self.config.max_ssrcs {
            return Err(Error::TooManySsrcs(self.config.max_ssrcs));
        }
        self.tx_rtp.insert(ssrc, TxRtp { top: Some((u64::from(roc) << 16) | u64::from(seq)) });
        Ok(())
    }

    /// Protects the RTP packet in `buf[..len]` in place and returns the SRTP
    /// packet's length; `buf` must have [`Profile::rtp_tag_len`] octets of
    /// room after `len`.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        let tag_len = self.profile.rtp_tag_len();
        let pkt = buf.get(..len).ok_or(Error::Invalid("len is past the end of the buffer"))?;
        let hlen = rtp::header_len(pkt)?;
        let out_len = len + tag_len;
        if buf.len() < out_len {
            return Err(Error::NoTailRoom(out_len - buf.len()));
        }
        if self.srtp_packets >= MAX_SRTP_PACKETS {
            return Err(Error::KeyExhausted("2^48 SRTP packets under one master key"));
        }
        let seq = u16::from_be_bytes([buf[2], buf[3]]);
        let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        let (count, max) = (self.tx_rtp.len(), self.config.max_ssrcs);
        let state = match self.tx_rtp.entry(ssrc) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(_) if count >= max => return Err(Error::TooManySsrcs(max)),
            Entry::Vacant(v) => v.insert(TxRtp { top: None }),
        };
        let index = estimate_index(state.top, seq)?;
        if state.top.is_none_or(|t| index > t) {
            state.top = Some(index);
        }
        let roc = (index >> 16) as u32;
        match &self.rtp {
            Transform::Cm { enc, salt, auth } => {
                if self.config.rtp_encryption {
                    let iv = cm_iv(salt, ssrc, index);
                    enc.apply_keystream(&iv, &mut buf[hlen..len]);
                }
                let tag = auth.tag(&buf[..len], &roc.to_be_bytes());
                buf[len..out_len].copy_from_slice(&tag[..tag_len]);
            }
            Transform::Gcm { key, salt } => {
                let nonce = gcm_rtp_nonce(salt, ssrc, roc, seq);
                let tag = if self.config.rtp_encryption {
                    let (head, rest) = buf.split_at_mut(hlen);
                    key.seal(&nonce, head, &mut rest[..len - hlen])?
                } else {
                    key.seal(&nonce, &buf[..len], &mut [])?
                };
                buf[len..out_len].copy_from_slice(&tag);
            }
        }
        self.srtp_packets += 1;
        Ok(out_len)
    }

    /// Authenticates and decrypts the SRTP packet filling `buf` in place and
    /// returns the RTP packet's length. A packet that fails authentication,
    /// or was already received, or is older than the replay window, is
    /// refused and leaves the session unchanged.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let tag_len = self.profile.rtp_tag_len();
        let len = buf.len();
        let hlen = rtp::header_len(buf)?;
        if len < hlen + tag_len {
            return Err(Error::Truncated("SRTP packet shorter than header and tag"));
        }
        if self.srtp_packets >= MAX_SRTP_PACKETS {
            return Err(Error::KeyExhausted("2^48 SRTP packets under one master key"));
        }
        let body_end = len - tag_len;
        let seq = u16::from_be_bytes([buf[2], buf[3]]);
        let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        let (count, max) = (self.rx_rtp.len(), self.config.max_ssrcs);
        let window = self.rx_rtp.get_mut(&ssrc);
        if window.is_none() && count >= max {
            return Err(Error::TooManySsrcs(max));
        }
        let index = estimate_index(window.as_deref().and_then(ReplayWindow::top), seq)?;
        if let Some(w) = window.as_deref() {
            w.check(index)?;
        }
        let roc = (index >> 16) as u32;
        match &self.rtp {
            Transform::Cm { enc, salt, auth } => {
                let tag = auth.tag(&buf[..body_end], &roc.to_be_bytes());
                if !tags_equal(&tag[..tag_len], &buf[body_end..len]) {
                    return Err(Error::AuthFailed);
                }
                if self.config.rtp_encryption {
                    let iv = cm_iv(salt, ssrc, index);
                    enc.apply_keystream(&iv, &mut buf[hlen..body_end]);
                }
            }
            Transform::Gcm { key, salt } => {
                let nonce = gcm_rtp_nonce(salt, ssrc, roc, seq);
                let mut tag = [0u8; GCM_TAG];
                tag.copy_from_slice(&buf[body_end..len]);
                if self.config.rtp_encryption {
                    let (head, rest) = buf.split_at_mut(hlen);
                    key.open(&nonce, head, &mut rest[..body_end - hlen], &tag)?;
                } else {
                    key.open(&nonce, &buf[..body_end], &mut [], &tag)?;
                }
            }
        }
        self.srtp_packets += 1;
        match window {
            Some(w) => w.accept(index),
            None => {
                let mut w = ReplayWindow::new(self.config.replay_window);
                w.accept(index);
                self.rx_rtp.insert(ssrc, w);
            }
        }
        Ok(body_end)
    }

    /// Protects the compound RTCP packet in `buf[..len]` in place and returns
    /// the SRTCP packet's length; `buf` must have [`Profile::rtcp_overhead`]
    /// octets of room after `len`.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        let tag_len = self.profile.rtcp_tag_len();
        let pkt = buf.get(..len).ok_or(Error::Invalid("len is past the end of the buffer"))?;
        check_rtcp_header(pkt)?;
        let out_len = len + 4 + tag_len;
        if buf.len() < out_len {
            return Err(Error::NoTailRoom(out_len - buf.len()));
        }
        if self.srtcp_packets >= MAX_SRTCP_PACKETS {
            return Err(Error::KeyExhausted("2^31 SRTCP packets under one master key"));
        }
        let ssrc = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let (count, max) = (self.tx_rtcp.len(), self.config.max_ssrcs);
        let state = match self.tx_rtcp.entry(ssrc) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(_) if count >= max => return Err(Error::TooManySsrcs(max)),
            // libsrtp numbers a stream's first SRTCP packet 1.
            Entry::Vacant(v) => v.insert(TxRtcp { next: 1 }),
        };
        let index = state.next;
        if u64::from(index) >= MAX_SRTCP_PACKETS {
            return Err(Error::KeyExhausted("SRTCP index would wrap"));
        }
        state.next = index + 1;
        let encrypt = self.config.rtcp_encryption;
        let e_index = if encrypt { index | 0x8000_0000 } else { index };
        match &self.rtcp {
            Transform::Cm { enc, salt, auth } => {
                if encrypt {
                    let iv = cm_iv_rtcp(salt, ssrc, index);
                    enc.apply_keystream(&iv, &mut buf[8..len]);
                }
                buf[len..len + 4].copy_from_slice(&e_index.to_be_bytes());
                let tag = auth.tag(&buf[..len + 4], &[]);
                buf[len + 4..out_len].copy_from_slice(&tag[..tag_len]);
            }
            Transform::Gcm { key, salt } => {
                let nonce = gcm_rtcp_nonce(salt, ssrc, index);
                let tag = if encrypt {
                    let mut aad = [0u8; 12];
                    aad[..8].copy_from_slice(&buf[..8]);
                    aad[8..].copy_from_slice(&e_index.to_be_bytes());
                    key.seal(&nonce, &aad, &mut buf[8..len])?
                } else {
                    // Tagging only: the AAD is the packet and the E+index word.
                    buf[len..len + 4].copy_from_slice(&e_index.to_be_bytes());
                    key.seal(&nonce, &buf[..len + 4], &mut [])?
                };
                buf[len..len + GCM_TAG].copy_from_slice(&tag);
                buf[len + GCM_TAG..out_len].copy_from_slice(&e_index.to_be_bytes());
            }
        }
        self.srtcp_packets += 1;
        Ok(out_len)
    }

    /// Authenticates and (when its E flag says so) decrypts the SRTCP packet
    /// filling `buf` in place and returns the compound RTCP packet's length.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let tag_len = self.profile.rtcp_tag_len();
        let len = buf.len();
        if len < 8 + 4 + tag_len {
            return Err(Error::Truncated("SRTCP packet shorter than header, index and tag"));
        }
        check_rtcp_header(&buf[..8])?;
        if self.srtcp_packets >= MAX_SRTCP_PACKETS {
            return Err(Error::KeyExhausted("2^31 SRTCP packets under one master key"));
        }
        let ssrc = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let (body_end, e_at) = if self.profile.is_aead() {
            (len - 4 - tag_len, len - 4) // header || cipher || tag || E+index
        } else {
            (len - 4 - tag_len, len - 4 - tag_len) // header || cipher || E+index || tag
        };
        let e_index = u32::from_be_bytes([buf[e_at], buf[e_at + 1], buf[e_at + 2], buf[e_at + 3]]);
        let encrypted = e_index & 0x8000_0000 != 0;
        let index = e_index & 0x7fff_ffff;
        let (count, max) = (self.rx_rtcp.len(), self.config.max_ssrcs);
        let window = self.rx_rtcp.get_mut(&ssrc);
        match window.as_deref() {
            Some(w) => w.check(u64::from(index))?,
            None if count >= max => return Err(Error::TooManySsrcs(max)),
            None => {}
        }
        match &self.rtcp {
            Transform::Cm { enc, salt, auth } => {
                let tag = auth.tag(&buf[..len - tag_len], &[]);
                if !tags_equal(&tag[..tag_len], &buf[len - tag_len..]) {
                    return Err(Error::AuthFailed);
                }
                if encrypted {
                    let iv = cm_iv_rtcp(salt, ssrc, index);
                    enc.apply_keystream(&iv, &mut buf[8..body_end]);
                }
            }
            Transform::Gcm { key, salt } => {
                let nonce = gcm_rtcp_nonce(salt, ssrc, index);
                let mut tag = [0u8; GCM_TAG];
                tag.copy_from_slice(&buf[body_end..body_end + GCM_TAG]);
                if encrypted {
                    let mut aad = [0u8; 12];
                    aad[..8].copy_from_slice(&buf[..8]);
                    aad[8..].copy_from_slice(&e_index.to_be_bytes());
                    key.open(&nonce, &aad, &mut buf[8..body_end], &tag)?;
                } else {
                    // AAD is the whole packet followed by the E+index word:
                    // move the word next to the packet, then verify.
                    buf.copy_within(e_at..len, body_end);
                    let r = key.open(&nonce, &buf[..body_end + 4], &mut [], &tag);
                    buf[body_end..body_end + GCM_TAG].copy_from_slice(&tag);
                    buf[e_at..len].copy_from_slice(&e_index.to_be_bytes());
                    r?;
                }
            }
        }
        self.srtcp_packets += 1;
        match window {
            Some(w) => w.accept(u64::from(index)),
            None => {
                let mut w = ReplayWindow::new(self.config.replay_window);
                w.accept(u64::from(index));
                self.rx_rtcp.insert(ssrc, w);
            }
        }
        Ok(body_end)
    }
}

fn check_rtcp_header(pkt: &[u8]) -> Result<(), Error> {
    if pkt.len() < 8 {
        return Err(Error::Truncated("RTCP packet shorter than 8 octets"));
    }
    if pkt[0] >> 6 != 2 {
        return Err(Error::Invalid("RTCP version is not 2"));
    }
    Ok(())
}

/// A salt of `len` octets as a big-endian integer.
fn salt_int(salt: &[u8], len: usize) -> Option<u128> {
    if salt.len() != len {
        return None;
    }
    Some(salt.iter().fold(0u128, |acc, b| (acc << 8) | u128::from(*b)))
}

/// The AES-CM counter block of RFC 3711 section 4.1.1:
/// `(k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16)`; `salt` is `k_s * 2^16`.
#[inline]
fn cm_iv(salt: &u128, ssrc: u32, index: u64) -> [u8; 16] {
    (salt ^ (u128::from(ssrc) << 64) ^ (u128::from(index) << 16)).to_be_bytes()
}

/// The SRTCP counter block: as for SRTP with the 31-bit SRTCP index.
#[inline]
fn cm_iv_rtcp(salt: &u128, ssrc: u32, index: u32) -> [u8; 16] {
    cm_iv(salt, ssrc, u64::from(index))
}

/// The low 12 octets of a 96-bit value.
#[inline]
fn low96(v: u128) -> [u8; 12] {
    let b = v.to_be_bytes();
    [b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]
}

/// RFC 7714 section 8.1: `00 00 || SSRC || ROC || SEQ` XOR the salt.
#[inline]
fn gcm_rtp_nonce(salt: &u128, ssrc: u32, roc: u32, seq: u16) -> [u8; 12] {
    low96(salt ^ (u128::from(ssrc) << 48) ^ (u128::from(roc) << 16) ^ u128::from(seq))
}

/// RFC 7714 section 9.1: `00 00 || SSRC || 00 00 || 0 + SRTCP index` XOR the salt.
#[inline]
fn gcm_rtcp_nonce(salt: &u128, ssrc: u32, index: u32) -> [u8; 12] {
    low96(salt ^ (u128::from(ssrc) << 48) ^ u128::from(index & 0x7fff_ffff))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(seq: u16, ssrc: u32, payload: &[u8], buf: &mut [u8]) -> usize {
        let h = rtp::RtpHeader { payload_type: 96, sequence_number: seq, timestamp: 1234, ssrc, ..Default::default() };
        h.write(payload, 0, buf).unwrap()
    }

    fn pair(profile: Profile, config: Config) -> (Context, Context) {
        let key: Vec<u8> = (0..profile.master_key_len() as u8).collect();
        let salt: Vec<u8> = (100..100 + profile.master_salt_len() as u8).collect();
        (
            Context::with_config(profile, &key, &salt, config).unwrap(),
            Context::with_config(profile, &key, &salt, config).unwrap(),
        )
    }

    #[test]
    fn round_trip_every_profile_rtp_and_rtcp() {
        for profile in Profile::ALL {
            let (mut tx, mut rx) = pair(profile, Config::default());
            for seq in [65530u16, 65531, 65535, 0, 1, 2] {
                let mut buf = [0u8; 200];
                let n = rtp(seq, 7, b"payload bytes", &mut buf);
                let plain = buf[..n].to_vec();
                let m = tx.protect_rtp(&mut buf, n).unwrap();
                assert_eq!(m, n + profile.rtp_tag_len());
                assert_ne!(&buf[12..n], &plain[12..], "{profile}: payload not encrypted");
                let k = rx.unprotect_rtp(&mut buf[..m]).unwrap();
                assert_eq!(&buf[..k], &plain[..], "{profile}");
                assert_eq!(rx.unprotect_rtp(&mut buf[..m].to_vec()), Err(Error::Replayed), "{profile}");
            }
            assert_eq!(tx.tx_roc(7), Some(1));
            assert_eq!(rx.rx_roc(7), Some(1));
            let mut buf = [0u8; 200];
            let mut w = crate::rtcp::Writer::new(&mut buf);
            w.receiver_report(0x0a0b0c0d, &[]).unwrap();
            w.sdes_cname(0x0a0b0c0d, b"cname").unwrap();
            let n = w.len();
            let plain = buf[..n].to_vec();
            for _ in 0..3 {
                buf[..n].copy_from_slice(&plain);
                let m = tx.protect_rtcp(&mut buf, n).unwrap();
                assert_eq!(m, n + profile.rtcp_overhead());
                let mut copy = buf[..m].to_vec();
                let k = rx.unprotect_rtcp(&mut buf[..m]).unwrap();
                assert_eq!(&buf[..k], &plain[..]);
                assert_eq!(rx.unprotect_rtcp(&mut copy), Err(Error::Replayed));
            }
        }
    }

    #[test]
    fn authentication_only_every_profile() {
        let config = Config { rtp_encryption: false, rtcp_encryption: false, ..Config::default() };
        for profile in Profile::ALL {
            let (mut tx, mut rx) = pair(profile, config);
            let mut buf = [0u8; 200];
            let n = rtp(1, 2, b"visible payload", &mut buf);
            let m = tx.protect_rtp(&mut buf, n).unwrap();
            assert_eq!(&buf[12..n], b"visible payload", "{profile}: payload changed");
            let mut forged = buf[..m].to_vec();
            forged[13] ^= 1;
            assert_eq!(rx.unprotect_rtp(&mut forged), Err(Error::AuthFailed), "{profile}");
            assert_eq!(rx.unprotect_rtp(&mut buf[..m]), Ok(n));
            let mut w = crate::rtcp::Writer::new(&mut buf);
            w.receiver_report(2, &[]).unwrap();
            let n = w.len();
            let plain = buf[..n].to_vec();
            let m = tx.protect_rtcp(&mut buf, n).unwrap();
            assert_eq!(&buf[..n], &plain[..], "{profile}: RTCP changed");
            // The E flag is clear.
            let e_at = if profile.is_aead() { m - 4 } else { m - 4 - profile.rtcp_tag_len() };
            assert_eq!(buf[e_at] & 0x80, 0, "{profile}");
            let mut forged = buf[..m].to_vec();
            forged[5] ^= 1;
            assert_eq!(rx.unprotect_rtcp(&mut forged), Err(Error::AuthFailed), "{profile}");
            assert_eq!(rx.unprotect_rtcp(&mut buf[..m]), Ok(n));
            assert_eq!(&buf[..n], &plain[..]);
        }
    }

    #[test]
    fn tampering_is_refused_and_leaves_no_state() {
        for profile in Profile::ALL {
            let (mut tx, mut rx) = pair(profile, Config::default());
            let mut buf = [0u8; 200];
            let n = rtp(10, 9, b"some media", &mut buf);
            let m = tx.protect_rtp(&mut buf, n).unwrap();
            for i in 0..m {
                let mut p = buf[..m].to_vec();
                p[i] ^= 0x40;
                let r = rx.unprotect_rtp(&mut p);
                // Flipping a header bit can also make it unparsable; either way it is refused.
                assert!(r.is_err(), "{profile}: octet {i} changed and accepted");
            }
            assert_eq!(rx.rx_roc(9), None, "{profile}: a forged packet created state");
            let k = rx.unprotect_rtp(&mut buf[..m]).unwrap();
            assert_eq!(k, n);
            // Too short to hold a tag.
            assert!(rx.unprotect_rtp(&mut buf[..12 + profile.rtp_tag_len() - 1]).is_err());
            // Wrong key.
            let (mut tx2, _) = pair(profile, Config::default());
            let mut other =
                Context::new(profile, &vec![9; profile.master_key_len()], &vec![9; profile.master_salt_len()]).unwrap();
            let n = rtp(11, 9, b"x", &mut buf);
            let m = tx2.protect_rtp(&mut buf, n).unwrap();
            assert_eq!(other.unprotect_rtp(&mut buf[..m]), Err(Error::AuthFailed));
        }
    }

    #[test]
    fn replay_window_and_reordering() {
        let (mut tx, mut rx) = pair(Profile::Aes128CmHmacSha1_80, Config::default());
        let mut packets = Vec::new();
        for seq in 0..300u16 {
            let mut buf = vec![0u8; 100];
            let n = rtp(seq, 1, b"abc", &mut buf);
            let m = tx.protect_rtp(&mut buf, n).unwrap();
            buf.truncate(m);
            packets.push(buf);
        }
        // Deliver 299 first, then older ones.
        rx.unprotect_rtp(&mut packets[299].clone()).unwrap();
        rx.unprotect_rtp(&mut packets[299 - 127].clone()).unwrap();
        assert_eq!(rx.unprotect_rtp(&mut packets[299 - 128].clone()), Err(Error::TooOld));
        assert_eq!(rx.unprotect_rtp(&mut packets[299 - 127].clone()), Err(Error::Replayed));
        // A larger window accepts older packets.
        let (_, mut rx) = pair(Profile::Aes128CmHmacSha1_80, Config { replay_window: 512, ..Config::default() });
        rx.unprotect_rtp(&mut packets[299].clone()).unwrap();
        rx.unprotect_rtp(&mut packets[0].clone()).unwrap();
    }

    #[test]
    fn index_estimation_rfc3711_appendix_a() {
        assert_eq!(estimate_index(None, 5).unwrap(), 5);
        // s_l < 2^15: a much larger SEQ belongs to the previous ROC.
        assert_eq!(estimate_index(Some((3 << 16) | 100), 65000).unwrap(), (2 << 16) | 65000);
        assert_eq!(estimate_index(Some((3 << 16) | 100), 200).unwrap(), (3 << 16) | 200);
        // s_l >= 2^15: a much smaller SEQ belongs to the next ROC.
        assert_eq!(estimate_index(Some((3 << 16) | 65000), 10).unwrap(), (4 << 16) | 10);
        assert_eq!(estimate_index(Some((3 << 16) | 65000), 64000).unwrap(), (3 << 16) | 64000);
        // With ROC 0 there is no previous ROC: count from zero, as libsrtp does.
        assert_eq!(estimate_index(Some(100), 65000).unwrap(), 65000);
        // The ROC cannot wrap.
        assert!(estimate_index(Some((u64::from(u32::MAX) << 16) | 65000), 1).is_err());
    }

    #[test]
    fn rollover_counter_can_be_set_and_is_authenticated() {
        let (mut tx, mut rx) = pair(Profile::Aes128CmHmacSha1_80, Config::default());
        tx.set_tx_roc(3, 5, 100).unwrap();
        let mut buf = [0u8; 100];
        let n = rtp(101, 3, b"late joiner", &mut buf);
        let m = tx.protect_rtp(&mut buf, n).unwrap();
        assert_eq!(tx.tx_roc(3), Some(5));
        // A receiver that assumes ROC 0 computes another tag (RFC 3711 section 4.2).
        assert_eq!(rx.unprotect_rtp(&mut buf[..m]), Err(Error::AuthFailed));
    }

    #[test]
    fn ssrc_cap_bounds_state() {
        let config = Config { max_ssrcs: 4, ..Config::default() };
        let (mut tx, mut rx) = pair(Profile::AeadAes128Gcm, config);
        let mut buf = [0u8; 100];
        for ssrc in 0..4 {
            let n = rtp(1, ssrc, b"a", &mut buf);
            let m = tx.protect_rtp(&mut buf, n).unwrap();
            rx.unprotect_rtp(&mut buf[..m]).unwrap();
        }
        let n = rtp(1, 99, b"a", &mut buf);
        assert_eq!(tx.protect_rtp(&mut buf, n), Err(Error::TooManySsrcs(4)));
        let (mut tx2, _) = pair(Profile::AeadAes128Gcm, Config::default());
        let m = tx2.protect_rtp(&mut buf, n).unwrap();
        assert_eq!(rx.unprotect_rtp(&mut buf[..m]), Err(Error::TooManySsrcs(4)));
        assert_eq!(rx.rx_rtp.len(), 4);
    }

    #[test]
    fn key_usage_limits() {
        let (mut tx, mut rx) = pair(Profile::Aes128CmHmacSha1_80, Config::default());
        let mut buf = [0u8; 100];
        tx.srtp_packets = MAX_SRTP_PACKETS - 1;
        let n = rtp(1, 1, b"a", &mut buf);
        let m = tx.protect_rtp(&mut buf, n).unwrap();
        let mut next = [0u8; 100];
        let n2 = rtp(2, 1, b"a", &mut next);
        assert!(matches!(tx.protect_rtp(&mut next, n2), Err(Error::KeyExhausted(_))));
        rx.srtp_packets = MAX_SRTP_PACKETS;
        assert!(matches!(rx.unprotect_rtp(&mut buf[..m]), Err(Error::KeyExhausted(_))));
        // SRTCP: the 2^31 packet limit and the index that would wrap.
        let mut w = crate::rtcp::Writer::new(&mut buf);
        w.receiver_report(5, &[]).unwrap();
        let n = w.len();
        tx.srtcp_packets = MAX_SRTCP_PACKETS;
        assert!(matches!(tx.protect_rtcp(&mut buf, n), Err(Error::KeyExhausted(_))));
        tx.srtcp_packets = 0;
        tx.tx_rtcp.insert(5, TxRtcp { next: 0x7fff_ffff });
        tx.protect_rtcp(&mut buf, n).unwrap();
        assert!(matches!(tx.protect_rtcp(&mut buf, n), Err(Error::KeyExhausted(_))));
    }

    #[test]
    fn tail_room_and_bad_input() {
        let (mut tx, _) = pair(Profile::Aes128CmHmacSha1_80, Config::default());
        let mut buf = [0u8; 30];
        let n = rtp(1, 1, b"abcdefghij", &mut buf);
        assert_eq!(n, 22);
        assert_eq!(tx.protect_rtp(&mut buf, n), Err(Error::NoTailRoom(2)));
        assert!(tx.protect_rtp(&mut buf, 40).is_err());
        assert!(tx.protect_rtp(&mut [0x40; 40], 20).is_err(), "version 1");
        assert!(Context::new(Profile::Aes128CmHmacSha1_80, &[0; 15], &[0; 14]).is_err());
        assert!(
            Context::with_config(
                Profile::Aes128CmHmacSha1_80,
                &[0; 16],
                &[0; 14],
                Config { replay_window: 32, ..Config::default() }
            )
            .is_err()
        );
    }

    #[test]
    fn rtp_header_extension_and_csrcs_are_authenticated_not_encrypted() {
        for profile in Profile::ALL {
            let (mut tx, mut rx) = pair(profile, Config::default());
            let csrcs = [1, 2, 3];
            let exts = [rtp::Extension { id: 1, data: &[0x55] }];
            let h = rtp::RtpHeader { ssrc: 4, csrcs: &csrcs, extensions: &exts, ..Default::default() };
            let mut buf = [0u8; 200];
            let n = h.write(b"media", 4, &mut buf).unwrap();
            let plain = buf[..n].to_vec();
            let hlen = rtp::header_len(&plain).unwrap();
            let m = tx.protect_rtp(&mut buf, n).unwrap();
            assert_eq!(&buf[..hlen], &plain[..hlen]);
            let k = rx.unprotect_rtp(&mut buf[..m]).unwrap();
            assert_eq!(&buf[..k], &plain[..]);
            let p = rtp::RtpPacket::new_checked(&buf[..k]).unwrap();
            assert_eq!(p.payload(), b"media");
        }
    }
}
