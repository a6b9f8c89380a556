//! CPU per media packet through the whole stack, rtc-proto side by side
//! with str0m 0.25 in one run: the sender packetizes and protects a frame
//! (rtc-proto: `write_frame` and `Endpoint::poll_transmit`; str0m: `Writer::write`
//! and `Output::Transmit`), the datagram reaches the receiver (rtc-proto:
//! `Endpoint::handle_datagram`, which routes it; str0m: `handle_input` of the
//! one receiving `Rtc`, no routing), which unprotects and reassembles it
//! (rtc-proto: `Endpoint::poll_frame`; str0m: `Event::MediaData`).
//!
//! Two connected peers in memory, keyed by DTLS-SRTP, one direction of
//! media; simulated time moves on by the frame's duration at every packet,
//! so consent checks and RTCP run as they would and are part of the cost.
//! Each frame is exactly one RTP packet in both stacks: VP8 frames of
//! `VIDEO_FRAME` octets (rtc-proto's `max_payload` and str0m's MTU raised
//! so neither splits them), Opus frames of `AUDIO_FRAME` octets.
//!
//! Every received frame is checked (length, and the sequence number the
//! sender wrote at its start and at its end; the first ones are compared
//! whole), and the
//! counts are asserted after each measurement, so nothing is timed that
//! did not arrive.
//!
//! Run: `cd benches && cargo bench --bench call`
//! Before criterion's groups it prints the datagram sizes, the allocations
//! per packet (allocation-counter, steady state) and an interleaved A/B
//! run (alternating rounds, the median of the per-round time ratios).

use std::collections::VecDeque;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use rtc_candidate::Component;
use rtc_codecs::Kind;
use rtc_proto::{
    ConnHandle, Connection, ConnectionConfig, ConnectionDescription, Direction, Endpoint, MIN_TRANSMIT_BUFFER,
    SocketConfig, SocketId, SocketOptions, StreamDescription, TrackDescription, TrackId,
};

/// VP8 frame octets: with rtc-proto's 12-octet header, 4-octet VP8
/// descriptor and 16-octet AES-GCM tag the datagram is 1200 octets.
const VIDEO_FRAME: usize = 1168;
/// Opus frame octets.
const AUDIO_FRAME: usize = 160;
/// Time between video packets (each a frame): 500 packets per second.
const VIDEO_STEP: Duration = Duration::from_millis(2);
/// Opus frames of 20 ms.
const AUDIO_STEP: Duration = Duration::from_millis(20);
/// Frames compared whole before the measurements.
const CHECKED_WHOLE: u32 = 200;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Media {
    Video,
    Audio,
}

impl Media {
    fn len(self) -> usize {
        match self {
            Media::Video => VIDEO_FRAME,
            Media::Audio => AUDIO_FRAME,
        }
    }
    fn step(self) -> Duration {
        match self {
            Media::Video => VIDEO_STEP,
            Media::Audio => AUDIO_STEP,
        }
    }
    /// RTP clock ticks per frame.
    fn ticks(self) -> u64 {
        match self {
            Media::Video => 90 * VIDEO_STEP.as_millis() as u64,
            Media::Audio => 48 * AUDIO_STEP.as_millis() as u64,
        }
    }
}

/// Where the frame's sequence number is written.
const SEQ_AT: usize = 10;

/// Frame `i` of a kind: fixed pseudo-random octets (built once, so the
/// harness costs a copy per frame), with `i` written at `SEQ_AT` and in
/// the last four octets. VP8: frame 0 is a key frame with a well-formed
/// key-frame header (640×480), the rest inter frames.
fn frame(media: Media, i: u32, out: &mut Vec<u8>) {
    static TEMPLATES: std::sync::OnceLock<[Vec<u8>; 2]> = std::sync::OnceLock::new();
    let t = TEMPLATES.get_or_init(|| {
        let make =
            |len: usize| (0..len).map(|k| (k as u32).wrapping_mul(2_654_435_761) >> 24).map(|x| x as u8).collect();
        [make(AUDIO_FRAME), make(VIDEO_FRAME)]
    });
    out.clear();
    out.extend_from_slice(&t[usize::from(media == Media::Video)]);
    if media == Media::Video {
        if i == 0 {
            out[..10].copy_from_slice(&[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01]);
        } else {
            out[0] = 0x11; // P bit: an inter frame
        }
    }
    out[SEQ_AT..SEQ_AT + 4].copy_from_slice(&i.to_be_bytes());
    let n = out.len();
    out[n - 4..].copy_from_slice(&i.to_be_bytes());
}

/// What the receiver saw.
#[derive(Default)]
struct Seen {
    frames: u32,
}

impl Seen {
    /// Checks a received frame: the next in order, of the right length.
    fn check(&mut self, media: Media, data: &[u8]) {
        assert_eq!(data.len(), media.len(), "{media:?} frame {} length", self.frames);
        let seq = u32::from_be_bytes(data[SEQ_AT..SEQ_AT + 4].try_into().expect("4 octets"));
        let tail = u32::from_be_bytes(data[data.len() - 4..].try_into().expect("4 octets"));
        assert_eq!((seq, tail), (self.frames, self.frames), "{media:?} frames arrive whole, in order, none lost");
        self.frames += 1;
    }
}

/// RTP, not RTCP (RFC 7983, RFC 5761).
fn is_rtp(d: &[u8]) -> bool {
    d.first().is_some_and(|b| (128..192).contains(b)) && d.get(1).is_some_and(|b| !(192..=223).contains(b))
}

fn wallclock() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// A stack that carries one frame per call.
trait Call {
    /// Writes frame `sent` of `media`, moves time on by its duration, and
    /// delivers everything; returns the frames received so far.
    fn packet(&mut self, media: Media) -> u32 {
        self.packet_at(media, true)
    }
    /// The same; `advance: false` keeps the clock still (no timer fires):
    /// the media path alone.
    fn packet_at(&mut self, media: Media, advance: bool) -> u32;
    fn sent(&self, media: Media) -> u32;
    fn received(&self, media: Media) -> u32;
    /// Octets of the last media datagram sent.
    fn datagram_len(&self, media: Media) -> usize;
}

// ---------------------------------------------------------------- rtc-proto

struct Ours {
    now: Instant,
    a: Endpoint,
    b: Endpoint,
    a_socket: SocketId,
    b_socket: SocketId,
    a_conn: ConnHandle,
    audio: TrackId,
    video: TrackId,
    /// B's received video track.
    b_video: Option<TrackId>,
    tx: Vec<u8>,
    rx: Vec<u8>,
    frame: Vec<u8>,
    out: Vec<u8>,
    sent: [u32; 2],
    seen: [Seen; 2],
    len: [usize; 2],
    compare: bool,
}

const A: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 5000);
const B: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 5000);

impl Ours {
    fn new() -> Self {
        let now = Instant::now();
        let config = || ConnectionConfig { max_payload: 1300, ..ConnectionConfig::default() };
        let mut a = Endpoint::new();
        let mut b = Endpoint::new();
        let cert = || rtc_dtls::Certificate::generate().expect("certificate");
        let a_socket =
            a.add_socket(SocketConfig::new("a", vec![(Component::RTP, A)], SocketOptions::default(), cert()));
        let b_socket =
            b.add_socket(SocketConfig::new("b", vec![(Component::RTP, B)], SocketOptions::default(), cert()));
        let a_conn = a.insert(Connection::new(config(), now, wallclock()).expect("connection"));
        a.add_socket_to(now, a_conn, a_socket).expect("socket");
        let b_conn = b.insert(Connection::new(config(), now, wallclock()).expect("connection"));
        b.add_socket_to(now, b_conn, b_socket).expect("socket");
        let stream = StreamDescription {
            stream_id: String::new(),
            tracks: vec![TrackDescription::new(Kind::Audio), TrackDescription::new(Kind::Video)],
        };
        let (_, tracks) = a.connection_mut(a_conn).expect("conn").send_stream(now, stream).expect("stream");
        // DTLS-SRTP: descriptions without keys, as JSON.
        let describe = |e: &Endpoint, h: ConnHandle| {
            let mut d = e.connection(h).expect("conn").description(Direction::Local).expect("description");
            d.keys.clear();
            ConnectionDescription::from_json(&d.to_json()).expect("json")
        };
        let d = describe(&a, a_conn);
        b.connection_mut(b_conn).expect("conn").set_description(now, d, Direction::Remote).expect("remote");
        let d = describe(&b, b_conn);
        a.connection_mut(a_conn).expect("conn").set_description(now, d, Direction::Remote).expect("remote");
        let mut o = Ours {
            now,
            a,
            b,
            a_socket,
            b_socket,
            a_conn,
            audio: tracks[0],
            video: tracks[1],
            b_video: None,
            tx: vec![0; MIN_TRANSMIT_BUFFER],
            rx: vec![0; MIN_TRANSMIT_BUFFER],
            frame: Vec::new(),
            out: Vec::new(),
            sent: [0; 2],
            seen: [Seen::default(), Seen::default()],
            len: [0; 2],
            compare: true,
        };
        let start = o.now;
        while !(o.a.connection(a_conn).is_some_and(Connection::is_connected)
            && o.b.connection(b_conn).is_some_and(Connection::is_connected))
        {
            assert!(o.now - start < Duration::from_secs(10), "rtc-proto: connected within 10 s");
            o.now += Duration::from_millis(1);
            o.timers();
            o.flush();
        }
        let bc = o.b.connection(b_conn).expect("conn");
        let remote = bc.streams(Direction::Remote);
        assert_eq!(remote.len(), 1, "B receives A's stream");
        o.b_video = bc
            .stream_tracks(remote[0])
            .iter()
            .copied()
            .find(|t| bc.track_description(*t).is_some_and(|d| d.kind == Kind::Video));
        assert!(o.b_video.is_some(), "B knows A's video track");
        o
    }

    fn timers(&mut self) {
        let now = self.now;
        if self.a.poll_timeout().is_some_and(|t| t <= now) {
            self.a.handle_timeout(now);
        }
        if self.b.poll_timeout().is_some_and(|t| t <= now) {
            self.b.handle_timeout(now);
        }
    }

    /// Drains both endpoints, delivering each datagram straight from the
    /// sender's buffer into the other endpoint, until both are quiet.
    fn flush(&mut self) {
        let now = self.now;
        loop {
            let mut moved = false;
            while let Some((_, t)) = self.a.poll_transmit(now, &mut self.tx) {
                moved = true;
                let d = &mut self.tx[..t.len];
                if is_rtp(d) {
                    let video = d[1] & 0x7f == 96;
                    self.len[usize::from(video)] = t.len;
                }
                self.b.handle_datagram(now, self.b_socket, t.destination, t.source, d);
            }
            while self.a.poll_event().is_some() {}
            while self.a.poll_frame(&mut self.out).is_some() {}
            while let Some((_, t)) = self.b.poll_transmit(now, &mut self.rx) {
                moved = true;
                self.a.handle_datagram(now, self.a_socket, t.destination, t.source, &mut self.rx[..t.len]);
            }
            while self.b.poll_event().is_some() {}
            while let Some((_, info)) = self.b.poll_frame(&mut self.frame) {
                let media = if Some(info.track) == self.b_video { Media::Video } else { Media::Audio };
                let seen = &mut self.seen[usize::from(media == Media::Video)];
                if self.compare && seen.frames < CHECKED_WHOLE {
                    frame(media, seen.frames, &mut self.out);
                    assert_eq!(self.frame, self.out, "rtc-proto {media:?} frame {} intact", seen.frames);
                }
                seen.check(media, &self.frame);
                self.frame.clear();
            }
            if !moved {
                break;
            }
        }
    }
}

impl Call for Ours {
    fn packet_at(&mut self, media: Media, advance: bool) -> u32 {
        let k = usize::from(media == Media::Video);
        let i = self.sent[k];
        frame(media, i, &mut self.out);
        let now = self.now;
        let track = if media == Media::Video { self.video } else { self.audio };
        let n = self
            .a
            .connection_mut(self.a_conn)
            .expect("conn")
            .write_frame(now, track, &self.out, media.step())
            .expect("write_frame");
        debug_assert_eq!(n, 1, "one packet per frame");
        self.sent[k] += 1;
        self.flush();
        if advance {
            self.now += media.step();
            self.timers();
        }
        self.flush();
        self.seen[k].frames
    }
    fn sent(&self, media: Media) -> u32 {
        self.sent[usize::from(media == Media::Video)]
    }
    fn received(&self, media: Media) -> u32 {
        self.seen[usize::from(media == Media::Video)].frames
    }
    fn datagram_len(&self, media: Media) -> usize {
        self.len[usize::from(media == Media::Video)]
    }
}

// -------------------------------------------------------------------- str0m

mod theirs {
    use super::*;
    use str0m::change::{SdpAnswer, SdpOffer};
    use str0m::format::Codec;
    use str0m::media::{Direction as MDir, MediaKind, MediaTime, Mid, Pt};
    use str0m::net::{Protocol, Receive};
    use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

    pub(super) struct Theirs {
        now: Instant,
        a: Rtc,
        b: Rtc,
        a_next: Instant,
        b_next: Instant,
        audio: (Mid, Pt),
        video: (Mid, Pt),
        queue: VecDeque<(bool, str0m::net::Transmit)>,
        out: Vec<u8>,
        sent: [u32; 2],
        seen: [Seen; 2],
        len: [usize; 2],
        pub(super) compare: bool,
    }

    fn config() -> RtcConfig {
        // rtc-proto's codecs (Opus, VP8); an MTU that keeps each video
        // frame in one packet.
        RtcConfig::new().clear_codecs().enable_opus(true, false).enable_vp8(true).set_mtu(1400..=1500)
    }

    impl Theirs {
        pub(super) fn new() -> Self {
            str0m::crypto::from_feature_flags().install_process_default();
            let now = Instant::now();
            let mut a = config().build(now);
            let mut b = config().build(now);
            a.add_local_candidate(Candidate::host(super::A, "udp").expect("candidate"));
            b.add_local_candidate(Candidate::host(super::B, "udp").expect("candidate"));
            let mut change = a.sdp_api();
            let audio = change.add_media(MediaKind::Audio, MDir::SendOnly, None, None, None);
            let video = change.add_media(MediaKind::Video, MDir::SendOnly, None, None, None);
            let (offer, pending) = change.apply().expect("offer");
            let offer = SdpOffer::from_sdp_string(&offer.to_sdp_string()).expect("sdp");
            let answer = b.sdp_api().accept_offer(offer).expect("answer");
            let answer = SdpAnswer::from_sdp_string(&answer.to_sdp_string()).expect("sdp");
            a.sdp_api().accept_answer(pending, answer).expect("accept");
            let pt = |rtc: &Rtc, c: Codec| rtc.codec_config().find(|p| p.spec().codec == c).expect("codec").pt();
            let (apt, vpt) = (pt(&a, Codec::Opus), pt(&a, Codec::Vp8));
            let mut t = Theirs {
                now,
                a,
                b,
                a_next: now,
                b_next: now,
                audio: (audio, apt),
                video: (video, vpt),
                queue: VecDeque::new(),
                out: Vec::new(),
                sent: [0; 2],
                seen: [Seen::default(), Seen::default()],
                len: [0; 2],
                compare: true,
            };
            t.drain(true);
            t.drain(false);
            t.flush();
            let start = t.now;
            while !(t.a.is_connected() && t.b.is_connected()) {
                assert!(t.now - start < Duration::from_secs(10), "str0m: connected within 10 s");
                t.now += Duration::from_millis(1);
                t.timers();
                t.flush();
            }
            t
        }

        /// Polls one side to its timeout; its datagrams go on the queue.
        fn drain(&mut self, from_a: bool) {
            loop {
                let rtc = if from_a { &mut self.a } else { &mut self.b };
                match rtc.poll_output().expect("poll_output") {
                    Output::Timeout(t) => {
                        if from_a {
                            self.a_next = t;
                        } else {
                            self.b_next = t;
                        }
                        return;
                    }
                    Output::Transmit(t) => {
                        if from_a {
                            let d = &t.contents;
                            if is_rtp(d) {
                                let video = d[1] & 0x7f == *self.video.1;
                                self.len[usize::from(video)] = d.len();
                            }
                        }
                        self.queue.push_back((from_a, t));
                    }
                    Output::Event(Event::MediaData(m)) => {
                        let media = if m.mid == self.video.0 { Media::Video } else { Media::Audio };
                        let seen = &mut self.seen[usize::from(media == Media::Video)];
                        if self.compare && seen.frames < CHECKED_WHOLE {
                            frame(media, seen.frames, &mut self.out);
                            assert_eq!(&m.data[..], &self.out[..], "str0m {media:?} frame {} intact", seen.frames);
                        }
                        seen.check(media, &m.data);
                    }
                    Output::Event(_) => {}
                }
            }
        }

        fn flush(&mut self) {
            while let Some((from_a, t)) = self.queue.pop_front() {
                let r = Receive::new(Protocol::Udp, t.source, t.destination, &t.contents).expect("datagram");
                let rtc = if from_a { &mut self.b } else { &mut self.a };
                rtc.handle_input(Input::Receive(self.now, r)).expect("handle_input");
                drop(t);
                self.drain(!from_a);
            }
        }

        fn timers(&mut self) {
            let now = self.now;
            if self.a_next <= now {
                self.a.handle_input(Input::Timeout(now)).expect("timeout");
                self.drain(true);
            }
            if self.b_next <= now {
                self.b.handle_input(Input::Timeout(now)).expect("timeout");
                self.drain(false);
            }
        }
    }

    impl Call for Theirs {
        fn packet_at(&mut self, media: Media, advance: bool) -> u32 {
            let k = usize::from(media == Media::Video);
            let i = self.sent[k];
            frame(media, i, &mut self.out);
            let (mid, pt) = if media == Media::Video { self.video } else { self.audio };
            let time = MediaTime::new(
                u64::from(i) * media.ticks(),
                if media == Media::Video {
                    str0m::media::Frequency::NINETY_KHZ
                } else {
                    str0m::media::Frequency::FORTY_EIGHT_KHZ
                },
            );
            let now = self.now;
            self.a.writer(mid).expect("writer").write(pt, now, time, &self.out[..]).expect("write");
            self.sent[k] += 1;
            self.drain(true);
            self.flush();
            if advance {
                self.now += media.step();
                self.timers();
            }
            self.flush();
            self.seen[k].frames
        }
        fn sent(&self, media: Media) -> u32 {
            self.sent[usize::from(media == Media::Video)]
        }
        fn received(&self, media: Media) -> u32 {
            self.seen[usize::from(media == Media::Video)].frames
        }
        fn datagram_len(&self, media: Media) -> usize {
            self.len[usize::from(media == Media::Video)]
        }
    }
}

/// Checks that every frame written so far arrived (str0m may hold the
/// newest frames in its reordering buffer: at most `lag` behind).
fn assert_delivered(name: &str, c: &impl Call, media: Media, lag: u32) {
    let (sent, got) = (c.sent(media), c.received(media));
    assert!(got <= sent && sent - got <= lag, "{name} {media:?}: {got} of {sent} frames arrived");
}

/// Times `a` and `b` in alternating rounds of `n` calls and returns the
/// median of the per-round ratios time(a)/time(b), and the mean time per
/// call of each.
fn interleaved_ratio(rounds: usize, n: usize, mut a: impl FnMut(), mut b: impl FnMut()) -> (f64, f64, f64) {
    let mut ratios = Vec::with_capacity(rounds);
    let (mut ta, mut tb) = (0.0, 0.0);
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..n {
            a();
        }
        let da = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for _ in 0..n {
            b();
        }
        let db = t.elapsed().as_secs_f64();
        ratios.push(da / db);
        ta += da;
        tb += db;
    }
    ratios.sort_by(f64::total_cmp);
    let per_call = |t: f64| t / (rounds * n) as f64 * 1e9;
    (ratios[rounds / 2], per_call(ta), per_call(tb))
}

fn bench(c: &mut Criterion) {
    let mut ours = Ours::new();
    let mut theirs = theirs::Theirs::new();
    for media in [Media::Video, Media::Audio] {
        // Warm up and compare the first frames whole.
        for _ in 0..CHECKED_WHOLE + 50 {
            ours.packet(media);
            theirs.packet(media);
        }
        assert!(ours.received(media) >= CHECKED_WHOLE && theirs.received(media) >= CHECKED_WHOLE);
        println!(
            "call {media:?}: {}-octet frames, datagrams of {} octets (rtc-proto) and {} octets (str0m), one per frame",
            media.len(),
            ours.datagram_len(media),
            theirs.datagram_len(media)
        );
    }
    ours.compare = false;
    theirs.compare = false;
    for media in [Media::Video, Media::Audio] {
        let n = 2000u32;
        let a = allocation_counter::measure(|| {
            for _ in 0..n {
                black_box(ours.packet(media));
            }
        });
        let b = allocation_counter::measure(|| {
            for _ in 0..n {
                black_box(theirs.packet(media));
            }
        });
        println!(
            "call {media:?}: allocations per packet (sender + routing + receiver, timers included): rtc-proto {:.3} \
             ({:.1} octets), str0m {:.3} ({:.1} octets)",
            a.count_total as f64 / f64::from(n),
            a.bytes_total as f64 / f64::from(n),
            b.count_total as f64 / f64::from(n),
            b.bytes_total as f64 / f64::from(n),
        );
        // The media path alone: the clock stands still for 100 packets.
        let m = 100u32;
        let a = allocation_counter::measure(|| {
            for _ in 0..m {
                black_box(ours.packet_at(media, false));
            }
        });
        let b = allocation_counter::measure(|| {
            for _ in 0..m {
                black_box(theirs.packet_at(media, false));
            }
        });
        println!(
            "call {media:?}: allocations per packet on the media path alone (clock still): rtc-proto {:.3}, str0m {:.3}",
            a.count_total as f64 / f64::from(m),
            b.count_total as f64 / f64::from(m),
        );
        let (ratio, ns_a, ns_b) = interleaved_ratio(
            201,
            500,
            || {
                black_box(ours.packet(media));
            },
            || {
                black_box(theirs.packet(media));
            },
        );
        println!(
            "call {media:?}: interleaved (201 rounds of 500 packets each): rtc-proto {ns_a:.0} ns, str0m {ns_b:.0} ns \
             per packet; median ratio {ratio:.3}"
        );
        assert_delivered("rtc-proto", &ours, media, 0);
        assert_delivered("str0m", &theirs, media, 16);
    }

    for (media, name) in [(Media::Video, "call/video_1200"), (Media::Audio, "call/audio_160")] {
        let mut g = c.benchmark_group(name);
        g.bench_function("rtc-proto", |b| {
            b.iter(|| {
                black_box(ours.packet(media));
            })
        });
        g.bench_function("str0m", |b| {
            b.iter(|| {
                black_box(theirs.packet(media));
            })
        });
        g.finish();
        assert_delivered("rtc-proto", &ours, media, 0);
        assert_delivered("str0m", &theirs, media, 16);
        println!(
            "call {media:?}: after criterion, frames sent/received: rtc-proto {}/{}, str0m {}/{}",
            ours.sent(media),
            ours.received(media),
            theirs.sent(media),
            theirs.received(media)
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
