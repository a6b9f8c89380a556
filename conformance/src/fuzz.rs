//! Bodies of the cargo-fuzz targets in `fuzz/fuzz_targets/`.
//!
//! Each target there is one line calling a function here, so the corpus replay
//! test (`tests/fuzz_corpus.rs`) checks exactly what the fuzzer checks, on stable.

/// A fuzz target's body: takes the fuzzer's bytes, panics only on a bug.
pub type Body = fn(&[u8]);

/// Every fuzz target by name, with its body.
pub const TARGETS: &[(&str, Body)] = &[
    ("candidate_parse", candidate_parse),
    ("options_from_sdp", options_from_sdp),
    ("options_from_json", options_from_json),
    ("description_parse", description_parse),
    ("depacketize", depacketize),
    ("dtls_receive", dtls_receive),
    ("dtls_openssl_receive", dtls_openssl_receive),
    ("connection_receive", connection_receive),
    ("data_receive", data_receive),
    ("ice_receive", ice_receive),
    ("turn_stream_deframe", turn_stream_deframe),
    ("ice_tcp_deframe", ice_tcp_deframe),
    ("mdns_response", mdns_response),
    ("rtp_parse", rtp_parse),
    ("rtcp_parse", rtcp_parse),
    ("srtp_unprotect", srtp_unprotect),
    ("srtcp_unprotect", srtcp_unprotect),
    ("jitter_buffer", jitter_buffer),
    ("annexb_read", annexb_read),
];

/// `candidate_parse`: any bytes as a candidate line. Parsing must not panic; a
/// line that parses must format to a line that parses to the same candidate,
/// and its JSON dictionary must read back to the same dictionary (JSON does not
/// carry the order of extension attributes, so the candidates may differ in it).
pub fn candidate_parse(data: &[u8]) {
    use rtc_candidate::Candidate;
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(c) = Candidate::parse(text) else { return };
    let line = c.to_string();
    let again = Candidate::parse(&line).expect("formatted candidate must parse");
    assert_eq!(c, again, "round trip through {line:?}");
    let json = serde_json::to_value(&c).expect("serialize");
    let back: Candidate = serde_json::from_value(json.clone()).expect("deserialize own JSON");
    assert_eq!(serde_json::to_value(&back).expect("serialize"), json, "JSON round trip");
    assert_eq!(back.extensions.len(), c.extensions.len());
    Candidate::parse(&back.to_string()).expect("candidate from JSON must format to a valid line");
}

/// `depacketize`: any bytes as a run of RTP payloads for rtc-payload's
/// depacketizers (which must not panic, and whose frames must be well
/// formed and within their size limit), and as a frame for each packetizer:
/// a frame it takes must come back from the depacketizer (VP8, VP9 and
/// audio byte for byte; H.264, H.265 and AV1 normalized, and the same
/// again when sent twice).
pub fn depacketize(data: &[u8]) {
    use rtc_payload::{Depacketizer, Format, H264Mode, PacketInfo, Packetizer};
    const MAX_FRAME: usize = 1 << 16;
    let formats = [
        Format::Audio,
        Format::Vp8,
        Format::Vp9,
        Format::Av1,
        Format::H264 { mode: H264Mode::NonInterleaved },
        Format::H264 { mode: H264Mode::SingleNal },
        Format::H265,
    ];
    for format in formats {
        let mut d = Depacketizer::new(format, MAX_FRAME);
        let mut rest = data;
        while let [s0, s1, ts, flags, len, tail @ ..] = rest {
            let (payload, next) = tail.split_at(usize::from(*len).min(tail.len()));
            let info = PacketInfo {
                sequence_number: u16::from_be_bytes([*s0, *s1]),
                timestamp: u32::from(*ts),
                marker: flags & 1 != 0,
            };
            d.push(info, payload, &mut |_, frame| {
                assert!(frame.len() <= MAX_FRAME, "{format:?}: frame over its limit");
                if matches!(format, Format::H264 { .. } | Format::H265) {
                    assert!(frame.starts_with(&[0, 0, 0, 1]), "H.264 and H.265 frames are Annex B");
                }
            });
            rest = next;
        }
    }
    // Round trips at a payload size taken from the first octet.
    let max = 16 + usize::from(data.first().copied().unwrap_or(0)) * 4;
    let send = |format: Format, frame: &[u8]| -> Option<(Vec<Vec<u8>>, Vec<u8>)> {
        let mut p = Packetizer::new(format, max, 7);
        let count = p.begin(frame).ok()?;
        let mut payloads = Vec::new();
        let mut out = vec![0u8; max];
        while let Some(x) = p.next(frame, &mut out) {
            assert!(x.len <= max, "{format:?}: payload over max_payload");
            payloads.push(out[..x.len].to_vec());
            assert_eq!(x.marker, payloads.len() == count, "{format:?}: the marker is on the last payload only");
        }
        assert_eq!(payloads.len(), count, "{format:?}: begin counted the payloads");
        let mut d = Depacketizer::new(format, MAX_FRAME.max(4 * frame.len() + 64));
        let mut got = Vec::new();
        for (i, payload) in payloads.iter().enumerate() {
            let info = PacketInfo { sequence_number: i as u16, timestamp: 90, marker: i + 1 == payloads.len() };
            d.push(info, payload, &mut |_, f| got.push(f.clone()));
        }
        assert_eq!(got.len(), 1, "{format:?}: one frame comes back");
        Some((payloads, got.remove(0)))
    };
    for format in [Format::Audio, Format::Vp8, Format::Vp9] {
        if let Some((_, back)) = send(format, data) {
            assert_eq!(back, data, "{format:?}: frame round trip");
        }
    }
    // AV1 comes back normalized (a temporal delimiter first, every OBU
    // with its size, delimiters, tile lists and padding left out), and the
    // same again when sent twice.
    if let Some((_, back)) = send(Format::Av1, data) {
        assert!(back.starts_with(&[0x12, 0]), "AV1: a temporal delimiter first");
        let again = send(Format::Av1, &back).map(|(_, b)| b);
        assert_eq!(again.as_ref(), Some(&back), "AV1: normalized once");
    }
    for format in
        [Format::H264 { mode: H264Mode::NonInterleaved }, Format::H264 { mode: H264Mode::SingleNal }, Format::H265]
    {
        if let Some((payloads, back)) = send(format, data) {
            let (again, twice) = send(format, &back).expect("a depacketized access unit packetizes");
            assert_eq!((again, twice), (payloads, back), "{format:?}: normalized once");
        }
    }
}

/// `dtls_receive`: any bytes as datagrams into an rtc-dtls server and client
/// (dimpl underneath): nothing panics, and no SRTP keys come out of a
/// handshake nobody with the certificate's key took part in.
pub fn dtls_receive(data: &[u8]) {
    rtc_dtls::fuzz_datagrams(data);
}

/// `dtls_openssl_receive`: [`dtls_receive`] with both sides on the OpenSSL
/// engine (rtc-dtls feature `openssl`): the pipe, the mirrored timer and
/// the completed-handshake checks take hostile datagrams without a panic
/// and without keys.
pub fn dtls_openssl_receive(data: &[u8]) {
    rtc_dtls::fuzz_datagrams_on(rtc_dtls::Engine::OpenSsl, data);
}

/// `data_receive`: any bytes as the moves of a raw SCTP peer (messages of
/// any payload protocol and content on any stream, DCEP included, stream
/// resets, time) against a connection's data streams, interleaved with the
/// connection opening, writing to and closing its own (see
/// `rtc_proto::fuzz_data`). Nothing may panic; open streams stay within
/// the limit.
pub fn data_receive(data: &[u8]) {
    rtc_proto::fuzz_data(data, std::time::Instant::now());
}

/// `connection_receive`: any bytes as what a peer sends to a whole
/// rtc-proto connection keyed with known SDES keys: records of one kind
/// octet, a two-octet length and the bytes; kind 0 a raw datagram, 1 an RTP
/// packet and 2 an RTCP packet protected with the peer's real key (so they
/// reach the RTP session and the depacketizers), 3 time passing. Nothing
/// panics, frames stay within their limit, and what the peer can make the
/// connection hold stays within its caps.
pub fn connection_receive(data: &[u8]) {
    let _ = connection_receive_frames(data);
}

/// [`connection_receive`]'s body; returns how many frames came out (so a
/// test can tell that records reach the depacketizers).
fn connection_receive_frames(data: &[u8]) -> usize {
    use std::sync::OnceLock;
    use std::time::{Duration, Instant, SystemTime};

    use rtc_candidate::{Candidate, Component};
    use rtc_proto::{
        Connection, ConnectionConfig, ConnectionDescription, CryptoKey, Direction, SocketConfig, SocketDescription,
        SocketId, SocketOptions, StreamDescription, TrackDescription,
    };
    use rtc_srtp::{Context, Profile};

    static CERT: OnceLock<Option<rtc_dtls::Certificate>> = OnceLock::new();
    let Some(cert) = CERT.get_or_init(|| rtc_dtls::Certificate::generate().ok()) else { return 0 };
    let (key, salt) = ([7u8; 16], [9u8; 14]);
    let mut now = Instant::now();
    let local: std::net::SocketAddr = "10.0.0.1:5000".parse().expect("address");
    let remote: std::net::SocketAddr = "10.0.0.2:6000".parse().expect("address");
    let mut config = ConnectionConfig { seed: Some(1), ..ConnectionConfig::default() };
    config.limits.max_frame = 1 << 16;
    let Ok(mut conn) = Connection::new(config, now, SystemTime::UNIX_EPOCH) else { return 0 };
    let socket = SocketId(0);
    let cfg = SocketConfig::new("s", vec![(Component::RTP, local)], SocketOptions::default(), cert.clone());
    conn.add_socket(now, socket, &cfg, true).expect("socket");
    let track = |kind, ssrc| TrackDescription { ssrc: Some(ssrc), ..TrackDescription::new(kind) };
    let mut inline = key.to_vec();
    inline.extend_from_slice(&salt);
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &inline);
    let peer = ConnectionDescription {
        context_id: Some("peerufrag".into()),
        secret: Some("abcdefghijklmnopqrstuvwx".into()),
        keys: vec![CryptoKey::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{b64}")).expect("key")],
        sockets: vec![SocketDescription {
            socket_id: "p".into(),
            candidates: vec![
                Candidate::parse("candidate:1 1 udp 2130706431 10.0.0.2 6000 typ host").expect("candidate"),
            ],
            options: SocketOptions::default(),
        }],
        streams: vec![
            StreamDescription {
                stream_id: "s".into(),
                tracks: vec![track(rtc_codecs::Kind::Audio, 1), track(rtc_codecs::Kind::Video, 2)],
            },
            // Simulcast layers without SSRCs, bound by the MID (id 4) and
            // RtpStreamId (10) of a packet, their RTX by the RRID (11).
            StreamDescription {
                stream_id: "sim".into(),
                tracks: ["h", "m"]
                    .map(|rid| TrackDescription {
                        track_id: format!("v-{rid}"),
                        mid: Some("1".into()),
                        rid: Some(rid.into()),
                        ..TrackDescription::new(rtc_codecs::Kind::Video)
                    })
                    .into(),
            },
        ],
        ..ConnectionDescription::default()
    };
    conn.set_description(now, peer, Direction::Remote).expect("remote description");
    let Ok(mut tx) = Context::new(Profile::Aes128CmHmacSha1_80, &key, &salt) else { return 0 };
    let (mut buf, mut frame, mut out) = (vec![0u8; 2048], Vec::new(), vec![0u8; rtc_proto::MIN_TRANSMIT_BUFFER]);
    // The peer's authenticated (nominating) check first: application data
    // is taken only over a pair a check went through.
    let mine = conn.description(Direction::Local).expect("local description");
    let (Some(ufrag), Some(pwd)) = (mine.context_id, mine.secret) else { return 0 };
    let mut check = fuzz_stun::check_with(&format!("{ufrag}:peerufrag"), &pwd, [3; 12], u64::MAX, true);
    let _ = conn.handle_datagram(now, socket, local, remote, &mut check);
    let mut frames = 0;
    let mut rest = data;
    while let [kind, hi, lo, tail @ ..] = rest {
        let (bytes, next) = tail.split_at(usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len()).min(1500));
        rest = next;
        buf[..bytes.len()].copy_from_slice(bytes);
        let n = match kind % 4 {
            0 => Some(bytes.len()),
            1 if rtc_srtp::RtpPacket::new_checked(bytes).is_ok() => tx.protect_rtp(&mut buf, bytes.len()).ok(),
            2 if bytes.len() >= 8 => tx.protect_rtcp(&mut buf, bytes.len()).ok(),
            3 => {
                now += Duration::from_millis(u64::from(*lo) * 20);
                conn.handle_timeout(now);
                None
            }
            _ => None,
        };
        if let Some(n) = n {
            let _ = conn.handle_datagram(now, socket, local, remote, &mut buf[..n]);
        }
        while conn.poll_transmit(now, &mut out).is_some() {}
        while conn.poll_event().is_some() {}
        while conn.poll_frame(&mut frame).is_some() {
            assert!(frame.len() <= 1 << 16, "a frame over the limit");
            frames += 1;
        }
    }
    assert!(conn.streams(Direction::Remote).len() <= 64, "remote streams stay within their cap");
    frames
}

/// `ice_tcp_deframe`: any bytes as an ICE-TCP connection (RFC 4571
/// framing: a 16-bit length, then that many octets), cut into chunks as
/// in `turn_stream_deframe`; the first octet sets the message limit
/// (256 + 64 × octet). Nothing may panic, the buffer must stay within its
/// cap, every message must be non-empty and within the limit, and the
/// messages and the error must be those a whole-stream reading finds
/// (empty frames skipped; a frame over the limit ends the connection).
pub fn ice_tcp_deframe(data: &[u8]) {
    use rtc_ice::framing::Deframer;
    let Some((&first, rest)) = data.split_first() else { return };
    let max = 256 + 64 * usize::from(first);
    let mut d = Deframer::rfc4571(max);
    let (stream, got, failed) = feed_in_chunks(&mut d, rest, |m| {
        assert!(!m.is_empty() && m.len() <= max, "a message of {} octets", m.len());
    });
    // The whole stream read at once.
    let (mut at, mut want, mut too_long) = (0, Vec::new(), false);
    while let Some(&[a, b]) = stream.get(at..at + 2) {
        let len = usize::from(u16::from_be_bytes([a, b]));
        if len > max {
            too_long = true;
            break;
        }
        let Some(payload) = stream.get(at + 2..at + 2 + len) else { break };
        if len > 0 {
            want.push(payload.to_vec());
        }
        at += 2 + len;
    }
    assert_eq!(got, want, "messages differ");
    assert_eq!(failed, too_long, "error agreement");
}

/// `turn_stream_deframe`: any bytes as a TURN stream (TCP or TLS to a TURN
/// server), cut into chunks. The first octet sets the message limit
/// (256 + 256 × octet); then each chunk is one length octet (1 to 256
/// bytes) and that many bytes of the stream. Messages are taken after
/// each chunk, as a driver does. Nothing may panic, the buffer must stay
/// within its cap, every message must be whole (its own header's length,
/// a multiple of 4, within the limit) and the messages must be the stream
/// cut where a whole-stream reading cuts it, until the first error, which
/// ends the stream.
pub fn turn_stream_deframe(data: &[u8]) {
    use rtc_ice::framing::{Deframer, message_len};
    let Some((&first, rest)) = data.split_first() else { return };
    let max = 256 + 256 * usize::from(first);
    let mut d = Deframer::new(max);
    let (stream, got, failed) = feed_in_chunks(&mut d, rest, |m| {
        assert!(m.len() <= max && m.len() % 4 == 0 && m.len() >= 4, "a message of {} octets", m.len());
        assert_eq!(message_len(m, max), Ok(Some(m.len())), "not whole");
    });
    // The whole stream read at once cuts it the same way.
    let mut at = 0;
    let mut want: Vec<&[u8]> = Vec::new();
    let mut reference_failed = false;
    loop {
        match message_len(&stream[at..], max) {
            Ok(Some(n)) => {
                want.push(&stream[at..at + n]);
                at += n;
            }
            Ok(None) => break,
            Err(_) => {
                reference_failed = true;
                break;
            }
        }
    }
    assert_eq!(got.len(), want.len(), "message count");
    assert!(got.iter().zip(&want).all(|(g, w)| g == w), "messages differ");
    assert_eq!(failed, reference_failed, "error agreement");
}

/// Feeds `rest` to `d` in chunks (each a length octet, 1 to 256 bytes, then
/// those bytes of the stream), taking the messages after each chunk as a
/// driver does and checking each with `check`, until the end or the
/// deframer's first error. The buffer must stay within its cap. Returns
/// the stream fed, the messages and whether it ended in an error.
fn feed_in_chunks(
    d: &mut rtc_ice::framing::Deframer,
    mut rest: &[u8],
    check: impl Fn(&[u8]),
) -> (Vec<u8>, Vec<Vec<u8>>, bool) {
    let (mut stream, mut got) = (Vec::new(), Vec::new());
    while let Some((&n, tail)) = rest.split_first() {
        let n = (usize::from(n) + 1).min(tail.len());
        let (chunk, tail) = tail.split_at(n);
        rest = tail;
        stream.extend_from_slice(chunk);
        if d.push(chunk).is_err() {
            return (stream, got, true);
        }
        assert!(d.buffered() <= d.cap(), "over the cap");
        loop {
            match d.next_message() {
                Ok(Some(m)) => {
                    check(m);
                    got.push(m.to_vec());
                }
                Ok(None) => break,
                Err(_) => return (stream, got, true),
            }
        }
    }
    (stream, got, false)
}

/// `mdns_response`: any bytes as a datagram on the mDNS socket. The parser
/// must not panic; every address record it hands over has a lowercase host
/// name within 253 octets, at most `MAX_RECORDS` of them, and a malformed
/// message hands over none. A resolver waiting for three names (the
/// names of the corpus' responses among them) resolves only pending names,
/// each once, and stays within its bounds. As a query, a responder
/// answers for its own name only, with answers that parse.
pub fn mdns_response(data: &[u8]) {
    use rtc_ice::mdns::{self, MdnsEvent, Resolver};
    let mut handed = 0;
    let r = mdns::parse_response(data, |r| {
        handed += 1;
        assert!(r.name.len() <= mdns::MAX_NAME, "name of {} octets", r.name.len());
        assert!(
            r.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'.'),
            "not a lowercase host name: {:?}",
            r.name
        );
    });
    match r {
        Ok(n) => assert_eq!(n, handed),
        Err(_) => assert_eq!(handed, 0, "a refused message handed records over"),
    }
    assert!(handed <= mdns::MAX_RECORDS);
    let now = std::time::Instant::now();
    let mut resolver = Resolver::default();
    let names = ["host-a.local", "1f0e7c3a-5b2d-4e8f-9a61-0c2b3d4e5f60.local", "x.local"];
    for n in names {
        resolver.query(now, n).expect("a candidate's name");
    }
    let from = std::net::SocketAddr::from(([10, 0, 0, 2], mdns::MDNS_PORT));
    let resolved = resolver.handle_response(from, data);
    assert_eq!(resolver.pending(), names.len() - resolved);
    let mut seen = Vec::new();
    while let Some(e) = resolver.poll_event() {
        let MdnsEvent::Resolved { name, .. } = e else { panic!("not a resolution: {e:?}") };
        assert!(names.contains(&name.as_str()) && !seen.contains(&name), "{name}");
        seen.push(name);
    }
    assert_eq!(seen.len(), resolved);
    // The same datagram again resolves nothing more.
    assert_eq!(resolver.handle_response(from, data), 0);
    // As a query, from the mDNS port and from another (legacy unicast): a
    // responder answers for its own name only, at most 4 questions, with
    // answers that parse.
    let mut responder = mdns::Responder::default();
    responder.register(names[0], std::net::IpAddr::from([10, 0, 0, 1])).expect("a candidate's name");
    for port in [mdns::MDNS_PORT, 40000] {
        let source = std::net::SocketAddr::from(([10, 0, 0, 2], port));
        let n = responder.handle_query(now, source, data);
        assert!(n <= 4);
        for _ in 0..n {
            let t = responder.poll_transmit().expect("an answer per count");
            assert_eq!(t.destination.is_some(), port != mdns::MDNS_PORT || t.destination == Some(source));
            let got = mdns::parse_response(&t.contents, |r| assert_eq!(r.name, names[0])).expect("our answer parses");
            assert_eq!(got, 1);
        }
        assert!(responder.poll_transmit().is_none());
    }
}

/// `rtp_parse`: any bytes as an RTP packet. A packet that parses has its
/// parts within bounds and adding up to its length; writing its fields back
/// gives a packet that parses to the same fields.
pub fn rtp_parse(data: &[u8]) {
    use rtc_srtp::{Extension, RtpHeader, RtpPacket};
    let Ok(p) = RtpPacket::new_checked(data) else { return };
    assert_eq!(p.header_len() + p.payload().len() + p.padding_len(), data.len());
    let csrcs: Vec<u32> = p.csrcs().collect();
    assert_eq!(csrcs.len(), p.csrc_count());
    let exts: Result<Vec<Extension<'_>>, _> = p.extensions().collect();
    let exts = exts.unwrap_or_default();
    let h = RtpHeader {
        marker: p.marker(),
        payload_type: p.payload_type(),
        sequence_number: p.sequence_number(),
        timestamp: p.timestamp(),
        ssrc: p.ssrc(),
        csrcs: &csrcs,
        extensions: &exts,
    };
    let mut buf = vec![0u8; data.len() + 4 * exts.len() + 64];
    let Ok(n) = h.write(p.payload(), 0, &mut buf) else { return };
    let q = RtpPacket::new_checked(&buf[..n]).expect("written packet must parse");
    assert_eq!((q.sequence_number(), q.timestamp(), q.ssrc()), (p.sequence_number(), p.timestamp(), p.ssrc()));
    assert_eq!((q.marker(), q.payload_type(), q.payload()), (p.marker(), p.payload_type(), p.payload()));
    assert!(q.csrcs().eq(csrcs.iter().copied()));
    assert_eq!(q.extensions().collect::<Result<Vec<_>, _>>().expect("own extensions parse"), exts);
}

/// `rtcp_parse`: any bytes as a compound RTCP packet. Iteration ends, every
/// packet stays within the input, and typed views can be walked fully.
pub fn rtcp_parse(data: &[u8]) {
    use rtc_srtp::rtcp::{Compound, Rtcp};
    let mut seen = 0;
    for p in Compound::new(data) {
        let Ok(p) = p else { break };
        seen += p.raw().len();
        assert!(seen <= data.len());
        let Ok(r) = p.parse() else { continue };
        match r {
            Rtcp::SenderReport(sr) => assert_eq!(sr.reports.iter().count(), usize::from(p.count())),
            Rtcp::ReceiverReport(rr) => assert_eq!(rr.reports.iter().count(), usize::from(p.count())),
            Rtcp::SourceDescription(s) => {
                assert_eq!(s.chunks().count(), usize::from(p.count()));
                for c in s.chunks() {
                    let _ = c.items().count();
                    let _ = c.cname();
                }
            }
            Rtcp::Goodbye(b) => assert_eq!(b.ssrcs.iter().count(), usize::from(p.count())),
            Rtcp::Nack(n) => assert!(n.lost().count() >= n.pairs().count()),
            Rtcp::Fir(f) => {
                let _ = f.entries().count();
            }
            Rtcp::Remb(r) => {
                let _ = r.ssrcs.iter().count();
            }
            Rtcp::Other(o)
                if o.packet_type() == rtc_srtp::rtcp::PacketType::RTPFB
                    && o.count() == rtc_srtp::twcc::FMT_TRANSPORT_CC =>
            {
                // Transport feedback: checked whole, then every covered
                // number comes out once, in order; into an estimator too.
                if let Ok(fb) = rtc_srtp::twcc::parse(o.body()) {
                    let mut n = 0u32;
                    fb.arrivals(|seq, _| {
                        assert_eq!(seq, fb.base_seq.wrapping_add(n as u16));
                        n += 1;
                    });
                    assert_eq!(n, u32::from(fb.status_count));
                    let now = std::time::Instant::now();
                    let mut bwe = rtc_srtp::bwe::Bwe::new(rtc_srtp::bwe::BweConfig::default());
                    for i in 0..64u16 {
                        bwe.on_sent(now, fb.base_seq.wrapping_add(i), 1200);
                    }
                    let e = bwe.on_feedback(now, &fb);
                    assert!((30_000..=10_000_000).contains(&e));
                }
            }
            _ => {}
        }
    }
}

fn srtp_contexts(selector: u8) -> (rtc_srtp::Context, rtc_srtp::Context) {
    use rtc_srtp::{Context, Profile};
    let profile = Profile::ALL[usize::from(selector) % Profile::ALL.len()];
    let key = vec![0x5a; profile.master_key_len()];
    let salt = vec![0xa5; profile.master_salt_len()];
    let tx = Context::new(profile, &key, &salt).expect("valid key");
    let rx = Context::new(profile, &key, &salt).expect("valid key");
    (tx, rx)
}

/// `srtp_unprotect`: the first byte picks a profile, the rest is a packet.
/// Unprotecting it must not panic, and what it returns must fit the input;
/// protecting it, when it is an RTP packet, must unprotect back to the same
/// bytes, and a replay of that must be refused. (The seed corpus holds
/// packets protected with the fixed key, so mutations reach past the tag.)
pub fn srtp_unprotect(data: &[u8]) {
    let Some((&sel, pkt)) = data.split_first() else { return };
    let (_, mut first) = srtp_contexts(sel);
    let mut buf = pkt.to_vec();
    if let Ok(n) = first.unprotect_rtp(&mut buf) {
        assert!(n <= pkt.len());
        assert!(first.unprotect_rtp(&mut pkt.to_vec()).is_err(), "replay accepted");
    }
    let (mut tx, mut rx) = srtp_contexts(sel);
    let mut buf = vec![0u8; pkt.len() + 16];
    buf[..pkt.len()].copy_from_slice(pkt);
    let Ok(n) = tx.protect_rtp(&mut buf, pkt.len()) else { return };
    let mut copy = buf[..n].to_vec();
    let m = rx.unprotect_rtp(&mut buf[..n]).expect("own packet must unprotect");
    assert_eq!(&buf[..m], pkt);
    assert!(rx.unprotect_rtp(&mut copy).is_err(), "replay accepted");
}

/// `srtcp_unprotect`: as `srtp_unprotect`, for SRTCP.
pub fn srtcp_unprotect(data: &[u8]) {
    let Some((&sel, pkt)) = data.split_first() else { return };
    let (_, mut first) = srtp_contexts(sel);
    let mut buf = pkt.to_vec();
    if let Ok(n) = first.unprotect_rtcp(&mut buf) {
        assert!(n <= pkt.len());
        assert!(first.unprotect_rtcp(&mut pkt.to_vec()).is_err(), "replay accepted");
    }
    let (mut tx, mut rx) = srtp_contexts(sel);
    let mut buf = vec![0u8; pkt.len() + 20];
    buf[..pkt.len()].copy_from_slice(pkt);
    let Ok(n) = tx.protect_rtcp(&mut buf, pkt.len()) else { return };
    let mut copy = buf[..n].to_vec();
    let m = rx.unprotect_rtcp(&mut buf[..n]).expect("own packet must unprotect");
    assert_eq!(&buf[..m], pkt);
    assert!(rx.unprotect_rtcp(&mut copy).is_err(), "replay accepted");
}

/// `ice_receive`: arbitrary datagrams into a running ICE agent.
///
/// The input is a list of frames `op len payload[len]`. By `op % 5`: a
/// datagram from the signaled peer address; a datagram from some other
/// address; time passing (`len` × 10 ms); a check correctly signed with the
/// peer's credentials (flags from `op`); a correctly signed success response
/// to the agent's latest request. Nothing may panic, the caps on candidates,
/// pairs and transactions must hold, and without a correctly signed message
/// the agent must never select a pair. The first octet seeds the agent and
/// picks its kind: controlling or controlled (bit 0), ICE lite (bit 1: it
/// must never send a Binding request), or full with a lite peer (bit 2).
pub fn ice_receive(data: &[u8]) {
    use rtc_candidate::{Candidate, Component};
    use rtc_ice::{Agent, AgentConfig, Credentials, Limits, Role};
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    let Some((&first, mut rest)) = data.split_first() else { return };
    let limits = Limits::default();
    let mine = Credentials { ufrag: "fuzz".into(), pwd: "fuzzpasswordfuzzpassword".into() };
    let peer = Credentials { ufrag: "peer".into(), pwd: "peerpasswordpeerpassword".into() };
    let role = if first & 1 == 0 { Role::Controlling } else { Role::Controlled };
    let lite = first & 2 != 0;
    let cfg =
        AgentConfig { role, lite, credentials: Some(mine), seed: Some(u64::from(first)), limits, ..Default::default() };
    let mut agent = Agent::new(cfg).expect("valid config");
    let mut now = Instant::now();
    agent.set_remote_lite(now, !lite && first & 4 != 0).expect("one side full");
    let local: SocketAddr = "127.0.0.1:5000".parse().expect("address");
    let known: SocketAddr = "127.0.0.1:7000".parse().expect("address");
    agent.set_remote_credentials(now, peer).expect("valid credentials");
    agent.add_host_candidate(now, Component::RTP, local).expect("host");
    agent.end_of_local_candidates(now);
    let remote = Candidate::parse("candidate:1 1 udp 2130706431 127.0.0.1 7000 typ host").expect("candidate");
    agent.add_remote_candidate(now, &remote).expect("remote");
    let mut signed = false;
    let mut last_request: Option<rtc_ice::Transmit> = None;
    while let [op, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (payload, next) = tail.split_at(n);
        rest = next;
        match op % 5 {
            0 => {
                // The shared-socket router reads the same untrusted bytes.
                if let Some(u) = rtc_ice::request_ufrag(payload) {
                    assert!(u.len() < payload.len());
                }
                let _ = agent.handle_receive(now, local, known, payload);
            }
            1 => {
                let from = SocketAddr::new(known.ip(), 7001 + u16::from(*op));
                let _ = agent.handle_receive(now, local, from, payload);
            }
            2 => {
                now += Duration::from_millis(10 * u64::from(*len));
                agent.handle_timeout(now);
            }
            3 => {
                signed = true;
                let from = SocketAddr::new(known.ip(), 7000 + u16::from(op >> 5));
                let msg = fuzz_stun::check(payload, *op);
                let _ = agent.handle_receive(now, local, from, &msg);
            }
            _ => {
                if let Some(req) = &last_request {
                    signed = true;
                    let msg = fuzz_stun::success(&req.contents, req.source);
                    let _ = agent.handle_receive(now, req.source, req.destination, &msg);
                }
            }
        }
        while let Some(t) = agent.poll_transmit() {
            if t.contents.first() == Some(&0) && t.contents.get(1) == Some(&1) {
                assert!(!lite, "a lite agent sent a Binding request");
                last_request = Some(t);
            }
        }
        while agent.poll_event().is_some() {}
        assert!(agent.remote_candidate_count() <= limits.remote_candidates);
        assert!(agent.remote_peer_reflexive_count() <= limits.peer_reflexive);
        assert!(agent.pair_count() <= limits.pairs);
        assert!(agent.transaction_count() <= limits.transactions);
        if !signed {
            assert_eq!(agent.path(Component::RTP), None, "selected a pair without authenticated traffic");
        }
    }
}

/// Correctly signed STUN messages for `ice_receive`, built with stun-rs
/// directly (not through rtc-ice) so the fuzzer reaches the agent's
/// authenticated paths.
mod fuzz_stun {
    use std::net::SocketAddr;
    use stun_rs::attributes::ice::{IceControlled, IceControlling, Priority, UseCandidate};
    use stun_rs::attributes::stun::{Fingerprint, MessageIntegrity, UserName, XorMappedAddress};
    use stun_rs::{HMACKey, MessageClass, MessageEncoderBuilder, StunMessageBuilder, TransactionId, methods::BINDING};

    fn encode(b: StunMessageBuilder) -> Vec<u8> {
        let mut buf = [0u8; 512];
        match MessageEncoderBuilder::default().build().encode(&mut buf, &b.build()) {
            Ok(n) => buf[..n].to_vec(),
            Err(_) => Vec::new(),
        }
    }

    /// A controlling check signed with `pwd`, from USERNAME `user`, with
    /// USE-CANDIDATE when `nominate`.
    pub(super) fn check_with(user: &str, pwd: &str, tid: [u8; 12], tiebreaker: u64, nominate: bool) -> Vec<u8> {
        let Ok(user) = UserName::new(user) else { return Vec::new() };
        let Ok(key) = HMACKey::new_short_term(pwd) else { return Vec::new() };
        let mut b = StunMessageBuilder::new(BINDING, MessageClass::Request)
            .with_transaction_id(TransactionId::from(tid))
            .with_attribute(user)
            .with_attribute(Priority::new(0x6e00_00ff))
            .with_attribute(IceControlling::new(tiebreaker));
        if nominate {
            b = b.with_attribute(UseCandidate::default());
        }
        encode(b.with_attribute(MessageIntegrity::new(key)).with_attribute(Fingerprint::default()))
    }

    /// A check from the peer (`peer` → `fuzz`), flags from `op`.
    pub(super) fn check(payload: &[u8], op: u8) -> Vec<u8> {
        let mut tid = [0u8; 12];
        for (t, p) in tid.iter_mut().zip(payload) {
            *t = *p;
        }
        let mut tb = [0u8; 8];
        for (t, p) in tb.iter_mut().zip(payload.iter().skip(12)) {
            *t = *p;
        }
        let tiebreaker = u64::from_be_bytes(tb);
        let Ok(user) = UserName::new("fuzz:peer") else { return Vec::new() };
        let Ok(key) = HMACKey::new_short_term("fuzzpasswordfuzzpassword") else { return Vec::new() };
        let mut b = StunMessageBuilder::new(BINDING, MessageClass::Request)
            .with_transaction_id(TransactionId::from(tid))
            .with_attribute(user)
            .with_attribute(Priority::new(u32::from_be_bytes([0x6e, op, 0, 0xff])));
        b = if op & 8 == 0 {
            b.with_attribute(IceControlling::new(tiebreaker))
        } else {
            b.with_attribute(IceControlled::new(tiebreaker))
        };
        if op & 16 != 0 {
            b = b.with_attribute(UseCandidate::default());
        }
        encode(b.with_attribute(MessageIntegrity::new(key)).with_attribute(Fingerprint::default()))
    }

    /// A success response, signed with the peer's password, to `request`.
    pub(super) fn success(request: &[u8], mapped: SocketAddr) -> Vec<u8> {
        let mut tid = [0u8; 12];
        if let Some(t) = request.get(8..20) {
            tid.copy_from_slice(t);
        }
        let Ok(key) = HMACKey::new_short_term("peerpasswordpeerpassword") else { return Vec::new() };
        encode(
            StunMessageBuilder::new(BINDING, MessageClass::SuccessResponse)
                .with_transaction_id(TransactionId::from(tid))
                .with_attribute(XorMappedAddress::from(mapped))
                .with_attribute(MessageIntegrity::new(key))
                .with_attribute(Fingerprint::default()),
        )
    }
}

/// `options_from_sdp`: any bytes as an SDP description. Reading must not
/// panic. Options read from SDP write `m=` sections (when their names are SDP
/// tokens) that read back to the same codecs, header extensions and required
/// limits; and options that negotiate with themselves give an agreement that
/// negotiates to itself.
pub fn options_from_sdp(data: &[u8]) {
    use rtc_codecs::{Kind, Options, negotiate};
    let Ok(o) = Options::from_sdp(data) else { return };
    if let Ok(sdp) = o.to_sdp() {
        let back = Options::from_sdp(sdp.as_bytes()).expect("our SDP must read back");
        for k in Kind::ALL {
            if o.codecs_of(k).next().is_none() {
                continue;
            }
            assert!(o.codecs_of(k).eq(back.codecs_of(k)), "{k} codecs changed through {sdp:?}");
            let exts = |x: &Options| x.header_extensions.iter().filter(|h| h.kind == k).cloned().collect::<Vec<_>>();
            assert_eq!(exts(&o), exts(&back), "{k} header extensions");
            assert_eq!(o.required.get(k), back.required.get(k), "{k} required limits");
        }
    }
    if let Ok(r) = negotiate(&o, &o) {
        let again = negotiate(&r.to_options(), &r.to_options()).expect("an agreement negotiates with itself");
        assert_eq!(again, r, "negotiating an agreement again changed it");
    }
}

/// `options_from_json`: any bytes as a JSON options dictionary. Reading must
/// not panic; a dictionary writes JSON that reads back to itself, writes SDP
/// (when it can) that parses, and negotiates with itself to an agreement that
/// negotiates to itself.
pub fn options_from_json(data: &[u8]) {
    use rtc_codecs::{Options, negotiate};
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(o) = Options::from_json(text) else { return };
    let back = Options::from_json(&o.to_json()).expect("own JSON must read back");
    assert_eq!(back, o, "JSON round trip");
    if let Ok(sdp) = o.to_sdp() {
        Options::from_sdp(sdp.as_bytes()).expect("our SDP must read back");
    }
    if let Ok(r) = negotiate(&o, &o) {
        let again = negotiate(&r.to_options(), &r.to_options()).expect("an agreement negotiates with itself");
        assert_eq!(again, r, "negotiating an agreement again changed it");
    }
}

/// `description_parse`: any bytes as a connection description, in JSON and in
/// SDP (rtc-api's signaling input). Reading must not panic; a JSON
/// description writes JSON that reads back to itself, and a description read
/// from SDP writes SDP (when it can) that reads back with the same ICE
/// credentials, keys and candidates.
pub fn description_parse(data: &[u8]) {
    use rtc_api::ConnectionDescription;
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(d) = ConnectionDescription::from_json(text) {
        let back = ConnectionDescription::from_json(&d.to_json()).expect("own JSON must read back");
        assert_eq!(back, d, "JSON round trip");
    }
    if let Ok((d, o)) = ConnectionDescription::from_sdp(text)
        && let Ok(sdp) = d.to_sdp(&o)
    {
        let (back, _) = ConnectionDescription::from_sdp(&sdp).expect("own SDP must read back");
        assert_eq!((&back.context_id, &back.secret, &back.keys), (&d.context_id, &d.secret, &d.keys));
        assert_eq!(back.sockets[0].candidates, d.sockets[0].candidates, "candidates through {sdp:?}");
    }
}

/// `jitter_buffer`: any bytes as a peer's sequence numbers, timestamps and
/// payloads into rtc-srtp's `JitterBuffer` (small capacity and byte budget,
/// so that wraps, restarts and the budget are reached), interleaved with
/// time moving on, NACK polls and releases. Nothing panics; packets come out
/// in increasing extended sequence order with the payload they were pushed
/// with; NACKs name only numbers not released yet and within the window;
/// what is held never passes the capacity. And the same bytes as packets
/// recorded into a `SendHistory`: a resend gives back exactly the packet
/// recorded under that number.
pub fn jitter_buffer(data: &[u8]) {
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    use rtc_srtp::SequenceUnwrapper;
    use rtc_srtp::recovery::{JitterBuffer, JitterConfig, Push, SendHistory};

    let config = JitterConfig { capacity: 32, max_bytes: 512, max_nacks: 3, ..JitterConfig::default() };
    let mut j = JitterBuffer::new(config);
    let mut h = SendHistory::new(16, Duration::from_millis(500));
    let t0 = Instant::now();
    let mut now = t0;
    // Held payloads, and every pushed number's extended value as the
    // buffer's own unwrapping (of every number pushed, in order) gives it.
    let mut pushed: HashMap<u16, (u64, Vec<u8>)> = HashMap::new();
    let mut order = SequenceUnwrapper::new();
    let mut last_released: Option<u64> = None;
    let payload_of = |seq: u16, len: u8| -> Vec<u8> { (0..len).map(|i| (seq as u8) ^ i).collect() };
    for op in data.chunks_exact(4) {
        let (kind, seq, arg) = (op[0] % 5, u16::from_be_bytes([op[1], op[2]]), op[3]);
        match kind {
            0 | 1 => {
                let payload = payload_of(seq, arg % 64);
                let ext = order.unwrap(seq);
                match j.push(now, seq, u32::from(seq), arg & 1 == 1, 96, &payload) {
                    Push::Deliver => {
                        assert!(last_released.is_none_or(|l| ext > l), "delivered in order");
                        last_released = Some(ext);
                    }
                    Push::Held => {
                        pushed.insert(seq, (ext, payload.clone()));
                    }
                    _ => {}
                }
                h.record(now, seq, &payload);
                assert_eq!(h.resend(now, seq, Duration::ZERO), Some(&payload[..]), "history gives back the packet");
            }
            2 => now += Duration::from_millis(u64::from(arg)),
            3 => {
                let mut out = [0u16; 8];
                let n = j.poll_nack(now, Duration::from_millis(u64::from(arg) + 1), &mut out);
                assert!(n <= out.len());
            }
            _ => {
                let _ = j.poll_timeout(Duration::from_millis(u64::from(arg)));
            }
        }
        assert!(j.held() <= 32 && j.missing() <= 32, "within the capacity");
        while let Some(r) = j.pop(now) {
            let (ext, p) = pushed.remove(&r.sequence_number).expect("released what was held");
            assert!(last_released.is_none_or(|l| ext > l), "released in order");
            last_released = Some(ext);
            assert_eq!(r.payload, &p[..], "released with its payload");
        }
    }
}

/// `annexb_read`: any bytes as an H.264 and as an H.265 byte stream file
/// (rtc-media's `AnnexBReader`): nothing panics, every access unit is in
/// Annex B form within its budget, and the file read one octet at a time
/// gives the same access units (or the same kind of error).
pub fn annexb_read(data: &[u8]) {
    use rtc_media::{AnnexBReader, MAX_ACCESS_UNIT, NalCodec};

    /// A reader giving one octet per read.
    struct Trickle<'a>(&'a [u8]);
    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let (Some(slot), Some((first, rest))) = (buf.first_mut(), self.0.split_first()) else { return Ok(0) };
            *slot = *first;
            self.0 = rest;
            Ok(1)
        }
    }
    for codec in [NalCodec::H264, NalCodec::H265] {
        let mut whole = AnnexBReader::new(data, codec);
        let mut trickle = AnnexBReader::new(Trickle(data), codec);
        loop {
            match (whole.next_access_unit(), trickle.next_access_unit()) {
                (Ok(Some(a)), Ok(Some(b))) => {
                    assert!(a.data.starts_with(&[0, 0, 0, 1]) && a.data.len() <= MAX_ACCESS_UNIT, "{codec:?}");
                    assert_eq!(a, b, "{codec:?}: the same access unit however the file is read");
                }
                (Ok(None), Ok(None)) => break,
                (Err(a), Err(b)) => {
                    assert_eq!(std::mem::discriminant(&a), std::mem::discriminant(&b), "{codec:?}: {a} / {b}");
                    break;
                }
                (a, b) => panic!("{codec:?}: {a:?} read whole, {b:?} read an octet at a time"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// `connection_receive` gets past ICE: an RTP record (kind 1, protected
    /// with the peer's key) of the announced audio SSRC comes out as a
    /// frame.
    #[test]
    fn connection_receive_reaches_the_depacketizers() {
        let mut rtp = vec![0x80, 111, 0, 1, 0, 0, 0, 160, 0, 0, 0, 1];
        rtp.extend([0xf8, 0xff, 0xfe]);
        let mut input = vec![1, 0, rtp.len() as u8];
        input.extend(&rtp);
        assert_eq!(super::connection_receive_frames(&input), 1);
    }
}
