//! What a connection and its sockets are built from, and its budgets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rtc_candidate::Component;
use rtc_codecs::{Codec, Feedback, HeaderExtension, Kind, Options, PayloadType};

use crate::desc::{ConnectionDescription, SocketOptions, SocketServers};
use crate::error::Error;

/// The default codec options: Opus (RFC 7587) and VP8 (RFC 7741), VP8 with
/// loss recovery: generic NACK and PLI (RFC 4585), FIR (RFC 5104) and
/// retransmission on its own SSRC (RFC 4588, payload type 97); both with
/// transport feedback (`transport-cc` and the transport-wide sequence
/// number extension), VP8 with `goog-remb` too (REMB, for peers without
/// transport feedback), `abs-send-time`, and audio levels (RFC 6464); the
/// MID extension (RFC 8843 section 15, id 4) on both, and for video the
/// RtpStreamId and RepairedRtpStreamId of simulcast layers (RFC 8852, ids
/// 10 and 11), the ids Chromium offers.
pub fn default_options() -> Options {
    let mut opus = Codec::new(PayloadType::new(111).unwrap_or(PayloadType::PCMU), Kind::Audio, "opus", 48_000, Some(2));
    opus.parameters.insert("minptime", "10");
    opus.parameters.insert("useinbandfec", "1");
    opus.rtcp_feedback = vec![Feedback::new("transport-cc", None)];
    let mut vp8 = Codec::new(PayloadType::new(96).unwrap_or(PayloadType::PCMU), Kind::Video, "VP8", 90_000, None);
    vp8.rtcp_feedback = vec![
        Feedback::new("nack", None),
        Feedback::new("nack", Some("pli")),
        Feedback::new("ccm", Some("fir")),
        Feedback::new("transport-cc", None),
        Feedback::new("goog-remb", None),
    ];
    let mut rtx = Codec::new(PayloadType::new(97).unwrap_or(PayloadType::PCMU), Kind::Video, "rtx", 90_000, None);
    rtx.parameters.insert("apt", "96");
    let ext = |kind, id, uri: &str| HeaderExtension { kind, id, uri: uri.into() };
    let header_extensions = vec![
        ext(Kind::Audio, 1, crate::connection::extensions::AUDIO_LEVEL),
        ext(Kind::Audio, 2, crate::connection::extensions::ABS_SEND_TIME),
        ext(Kind::Audio, 3, crate::connection::extensions::TRANSPORT_CC),
        ext(Kind::Audio, 4, crate::connection::extensions::MID),
        ext(Kind::Video, 2, crate::connection::extensions::ABS_SEND_TIME),
        ext(Kind::Video, 3, crate::connection::extensions::TRANSPORT_CC),
        ext(Kind::Video, 4, crate::connection::extensions::MID),
        ext(Kind::Video, 10, crate::connection::extensions::RTP_STREAM_ID),
        ext(Kind::Video, 11, crate::connection::extensions::REPAIRED_RTP_STREAM_ID),
    ];
    Options { codecs: vec![opus, vp8, rtx], header_extensions, ..Options::default() }
}

/// How to build a [`Connection`](crate::Connection).
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// Local overrides (the seeds' constructor argument): `cname`,
    /// `context-id` (the ICE ufrag), `secret` (the ICE password) and `keys`
    /// (SRTP master keys). What is absent is drawn from the connection's
    /// CSPRNG.
    pub description: ConnectionDescription,
    /// The local codec options, shared (a server making many connections
    /// with the same options keeps one copy).
    pub options: Arc<Options>,
    /// Seeds the connection's CSPRNG (ids, SSRCs, keys, ICE credentials and
    /// transactions) for reproducible tests; from the OS when `None`.
    pub seed: Option<u64>,
    /// How often StreamReport and TrackReport fire (at least 10 ms).
    pub report_interval: Duration,
    /// The most octets of one RTP payload (payload descriptor included):
    /// 1100 by default, so that a packet with its header, CSRCs and SRTP tag
    /// stays within a 1200-octet path MTU. Between 200 and
    /// [`MAX_PAYLOAD_LIMIT`].
    pub max_payload: usize,
    /// Budgets.
    pub limits: Limits,
}

/// The largest [`ConnectionConfig::max_payload`]: with a 12-octet header, 15
/// CSRCs and a 16-octet tag, a packet then fills
/// [`MIN_TRANSMIT_BUFFER`](crate::MIN_TRANSMIT_BUFFER).
pub const MAX_PAYLOAD_LIMIT: usize = 1400;

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            description: ConnectionDescription::default(),
            options: Arc::new(default_options()),
            seed: None,
            report_interval: Duration::from_secs(1),
            max_payload: 1100,
            limits: Limits::default(),
        }
    }
}

impl ConnectionConfig {
    /// The seeds' constructor: an optional description and options.
    pub fn new(description: Option<ConnectionDescription>, options: Option<Options>) -> Self {
        Self {
            description: description.unwrap_or_default(),
            options: Arc::new(options.unwrap_or_else(default_options)),
            ..Self::default()
        }
    }
}

/// What a peer or a slow caller can make a connection hold, capped. Input
/// beyond a cap is refused or dropped and counted, never allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Remote streams (announced or unsignaled).
    pub remote_streams: usize,
    /// Remote tracks (announced or unsignaled SSRCs).
    pub remote_tracks: usize,
    /// Local tracks.
    pub local_tracks: usize,
    /// Sockets.
    pub sockets: usize,
    /// The longest frame reassembled from received packets.
    pub max_frame: usize,
    /// Received frames waiting for [`Connection::poll_frame`](crate::Connection::poll_frame).
    pub frames_queued: usize,
    /// Their octets.
    pub frame_bytes: usize,
    /// Octets of written frames waiting to be packetized.
    pub send_bytes: usize,
    /// Events waiting for [`Connection::poll_event`](crate::Connection::poll_event)
    /// (the oldest are dropped beyond it).
    pub events: usize,
    /// Data streams open at once (local and remote).
    pub data_streams: usize,
    /// Octets written on a data stream and not yet acknowledged (per
    /// stream, as browsers bound a data channel's buffer).
    pub data_buffer: usize,
    /// Octets a received video track's jitter buffer may hold while it
    /// waits for a missing packet (more are dropped and counted).
    pub jitter_bytes: usize,
    /// Packets of a sent video track kept for retransmission (rounded up
    /// to a power of two), none older than a second.
    pub send_history: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            remote_streams: 64,
            remote_tracks: 64,
            local_tracks: 64,
            sockets: 8,
            max_frame: 4 << 20,
            frames_queued: 512,
            frame_bytes: 8 << 20,
            send_bytes: 16 << 20,
            events: 4096,
            data_streams: 1024,
            data_buffer: 16 << 20,
            jitter_bytes: 1 << 20,
            send_history: 512,
        }
    }
}

/// One socket as a connection sees it: its bound addresses, its options and
/// its DTLS certificate.
#[derive(Debug, Clone)]
pub struct SocketConfig {
    /// The seeds' `socket-id`, as descriptions carry it.
    pub socket_id: String,
    /// The bound local addresses, each with the ICE component it serves (1
    /// for RTP, 2 for RTCP when `options.mux` is off).
    pub locals: Vec<(Component, SocketAddr)>,
    /// The driver's ICE-TCP listeners (RFC 6544), each with its component:
    /// a passive and an active TCP host candidate each (see
    /// `rtc_ice::Agent::add_tcp_host_candidates`). Empty: UDP only. None
    /// may be one of `locals`.
    pub tcp_locals: Vec<(Component, SocketAddr)>,
    /// Whether `locals` become UDP host candidates (true unless the
    /// application asked for no UDP; the sockets stay bound).
    pub udp_candidates: bool,
    /// The socket's options. `fingerprints` are the certificate's, filled
    /// in by the connection.
    pub options: SocketOptions,
    /// Resolved STUN servers, for server-reflexive candidates.
    pub stun_servers: Vec<SocketAddr>,
    /// Resolved TURN servers with their credentials, for relayed
    /// candidates (rtc-ice's TURN client, over UDP).
    pub turn_servers: Vec<rtc_ice::TurnServer>,
    /// Gather, signal and check relayed candidates only (WebRTC's
    /// `iceTransportPolicy: "relay"`; see `rtc_ice::AgentConfig::relay_only`).
    pub relay_only: bool,
    /// Signal host candidates behind `.local` names (see
    /// `rtc_ice::AgentConfig::mdns_host_names`).
    pub mdns_host_names: bool,
    /// The DTLS certificate the socket's associations use.
    pub certificate: rtc_dtls::Certificate,
    /// The DTLS engine they run on: dimpl by default;
    /// [`rtc_dtls::Engine::OpenSsl`] (feature `openssl`) for peers with RSA
    /// certificates, such as GStreamer's webrtcbin.
    pub dtls_engine: rtc_dtls::Engine,
}

impl SocketConfig {
    /// A socket without STUN or TURN servers.
    pub fn new(
        socket_id: impl Into<String>,
        locals: Vec<(Component, SocketAddr)>,
        options: SocketOptions,
        certificate: rtc_dtls::Certificate,
    ) -> Self {
        Self {
            socket_id: socket_id.into(),
            locals,
            tcp_locals: Vec::new(),
            udp_candidates: true,
            options,
            stun_servers: Vec::new(),
            turn_servers: Vec::new(),
            relay_only: false,
            mdns_host_names: false,
            certificate,
            dtls_engine: rtc_dtls::Engine::Dimpl,
        }
    }

    /// Checks what a socket is asked to be, before anything is bound or
    /// resolved: `fingerprints` are filled in from the certificate (so none
    /// may be given), each SDES key must be well formed, an ICE-lite socket
    /// (RFC 8445 section 5.2) gathers host candidates only (no STUN or TURN
    /// URLs, no `relay-only`), and `no-udp` needs `ice-tcp`.
    pub fn check(servers: &SocketServers, options: &SocketOptions) -> Result<(), Error> {
        let invalid = |why: &str| Err(Error::InvalidOptions(why.into()));
        if !options.fingerprints.is_empty() {
            return invalid("`fingerprints` are the socket's own certificate's and are filled in; leave them empty");
        }
        for k in &options.keys {
            k.check().map_err(|e| Error::InvalidOptions(e.to_string()))?;
        }
        if options.ice_lite && (!servers.urls.is_empty() || servers.relay_only) {
            return invalid(
                "an `ice-lite` socket gathers host candidates only (RFC 8445 section 5.2): no STUN or TURN URLs, no \
                 relay-only",
            );
        }
        if servers.no_udp && !servers.ice_tcp {
            return invalid("`no-udp` without `ice-tcp` leaves no candidate");
        }
        Ok(())
    }

    /// Takes what `servers` asks of the socket (checked by
    /// [`SocketConfig::check`]) besides the addresses to bind: STUN and
    /// TURN servers (resolved by the driver), `relay-only`, `no-udp`,
    /// `mdns-host-names` and the DTLS engine; the options become the
    /// described ones ([`SocketConfig::described_options`]).
    #[must_use]
    pub fn with_servers(
        mut self,
        servers: &SocketServers,
        stun_servers: Vec<SocketAddr>,
        turn_servers: Vec<rtc_ice::TurnServer>,
    ) -> Self {
        self.udp_candidates = !servers.no_udp;
        self.stun_servers = stun_servers;
        self.turn_servers = turn_servers;
        self.relay_only = servers.relay_only;
        self.mdns_host_names = servers.mdns_host_names;
        self.dtls_engine = servers.dtls_engine.into();
        self.options = self.described_options();
        self
    }

    /// The options as the socket's description shows them: with the
    /// certificate's fingerprint and the `ice-pacing` it proposes
    /// ([`SocketOptions::local_pacing`]; none when `ice-lite`).
    pub fn described_options(&self) -> SocketOptions {
        let mut o = self.options.clone();
        o.fingerprints = vec![self.certificate.fingerprint().to_string()];
        o.ice_pacing = self.options.signaled_pacing();
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_is_checked_before_anything_is_bound() {
        let ok = SocketServers::default();
        assert!(SocketConfig::check(&ok, &SocketOptions::default()).is_ok());
        let given = SocketOptions { fingerprints: vec!["sha-256 AB".into()], ..SocketOptions::default() };
        assert!(matches!(SocketConfig::check(&ok, &given), Err(Error::InvalidOptions(_))));
        let lite = SocketOptions { ice_lite: true, ..SocketOptions::default() };
        assert!(SocketConfig::check(&ok, &lite).is_ok());
        let stun = SocketServers { urls: vec!["stun:127.0.0.1".into()], ..SocketServers::default() };
        assert!(SocketConfig::check(&stun, &SocketOptions::default()).is_ok());
        assert!(matches!(SocketConfig::check(&stun, &lite), Err(Error::InvalidOptions(_))));
        let relay = SocketServers { relay_only: true, ..SocketServers::default() };
        assert!(matches!(SocketConfig::check(&relay, &lite), Err(Error::InvalidOptions(_))));
        let no_udp = SocketServers { no_udp: true, ..SocketServers::default() };
        assert!(matches!(SocketConfig::check(&no_udp, &SocketOptions::default()), Err(Error::InvalidOptions(_))));
        let tcp_only = SocketServers { no_udp: true, ice_tcp: true, ..SocketServers::default() };
        assert!(SocketConfig::check(&tcp_only, &SocketOptions::default()).is_ok());
    }
}
