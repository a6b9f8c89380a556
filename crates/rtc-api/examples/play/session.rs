//! The `play` example's call (`#[path]`-included by the example and by
//! tests/play.rs): alice plays IVF and Ogg Opus files into tracks at their
//! real pace, bob receives over 127.0.0.1 and records what arrives to IVF
//! and Ogg Opus files.

use std::error::Error;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rtc_api::{
    ConnectionEvent, Direction, Events, RtcConnection, RtcMediaStream, RtcMediaStreamTrack, RtcSocket, SocketEvent,
    SocketOptions, SocketServers, StreamDescription,
};
use rtc_codecs::Kind;
use rtc_media::{IvfHeader, IvfReader, IvfWriter, OggOpusReader, OggOpusWriter, OpusHead};

pub(crate) type BoxError = Box<dyn Error + Send + Sync>;

/// What to play and where to record it.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// An IVF file of VP8 or VP9 frames.
    pub(crate) video: Option<PathBuf>,
    /// An Ogg Opus file.
    pub(crate) audio: Option<PathBuf>,
    /// Where bob records the video he receives (IVF).
    pub(crate) video_out: Option<PathBuf>,
    /// Where bob records the audio he receives (Ogg Opus).
    pub(crate) audio_out: Option<PathBuf>,
}

impl Plan {
    /// Sorts `FILE`s by their signature (IVF's `DKIF`, Ogg's `OggS`).
    pub(crate) fn add_input(&mut self, path: PathBuf) -> Result<(), BoxError> {
        let mut magic = [0u8; 4];
        std::io::Read::read_exact(&mut File::open(&path)?, &mut magic)?;
        let slot = match &magic {
            b"DKIF" => &mut self.video,
            b"OggS" => &mut self.audio,
            _ => return Err(format!("{}: neither IVF nor Ogg", path.display()).into()),
        };
        if slot.replace(path).is_some() {
            return Err("one IVF file and one Ogg Opus file at most".into());
        }
        Ok(())
    }
}

/// What was played and recorded.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    /// Video frames and audio packets alice wrote to her tracks.
    pub(crate) played: [u64; 2],
    /// Video frames and audio packets bob received.
    pub(crate) received: [u64; 2],
    /// Video frames and audio packets bob recorded.
    pub(crate) recorded: [u64; 2],
    /// How long playing took.
    pub(crate) elapsed: Duration,
}

/// Options with VP9 (profile 0) in place of VP8 when the video is VP9.
fn options(vp9: bool) -> rtc_codecs::Options {
    let mut options = rtc_api::default_options();
    if vp9 {
        for c in options.codecs.iter_mut().filter(|c| c.name.eq_ignore_ascii_case("VP8")) {
            c.name = "VP9".into();
            c.parameters.insert("profile-id", "0");
        }
    }
    options
}

/// Signals a socket's candidates to the other peer's socket.
fn signal_candidates(mut events: Events<SocketEvent>, to: RtcSocket) {
    tokio::spawn(async move {
        while let Some(e) = events.next().await {
            if let SocketEvent::Candidate { candidate } = e {
                let _ = to.set_remote_candidate(&candidate);
            }
        }
    });
}

async fn connected(mut events: Events<ConnectionEvent>) -> bool {
    while let Some(e) = events.next().await {
        if e == ConnectionEvent::Connected {
            return true;
        }
    }
    false
}

/// Plays the IVF file into `track` at its timestamps' pace.
async fn play_video(mut ivf: IvfReader<BufReader<File>>, track: RtcMediaStreamTrack) -> Result<u64, BoxError> {
    let header = ivf.header().clone();
    let t0 = tokio::time::Instant::now();
    let mut next = ivf.next_frame()?;
    let first = next.as_ref().map_or(0, |f| f.timestamp);
    let mut played = 0;
    while let Some(frame) = next {
        next = ivf.next_frame()?;
        let at = header.time_of(frame.timestamp.saturating_sub(first));
        // Each frame lasts until the next one (the last as long as 1/30 s).
        let lasts = next
            .as_ref()
            .map_or(Duration::from_millis(33), |n| header.time_of(n.timestamp.saturating_sub(frame.timestamp)));
        tokio::time::sleep_until(t0 + at).await;
        track.write_frame(&frame.data, lasts)?;
        played += 1;
    }
    Ok(played)
}

/// Plays the Ogg Opus file into `track` at its granule positions' pace.
async fn play_audio(mut ogg: OggOpusReader<BufReader<File>>, track: RtcMediaStreamTrack) -> Result<u64, BoxError> {
    let t0 = tokio::time::Instant::now();
    let mut played = 0;
    while let Some(p) = ogg.next_packet()? {
        tokio::time::sleep_until(t0 + p.start()).await;
        track.write_frame(&p.data, Duration::from_micros(u64::from(p.samples) * 1000 / 48))?;
        played += 1;
    }
    Ok(played)
}

/// A VP8 or VP9 key frame's size.
fn key_frame_size(fourcc: [u8; 4], frame: &[u8]) -> Option<(u16, u16)> {
    match &fourcc {
        b"VP90" => rtc_media::vp9_key_frame_size(frame),
        _ => rtc_media::vp8_key_frame_size(frame),
    }
}

/// Bob's recording of one track: frames received and recorded.
async fn record(track: RtcMediaStreamTrack, out: Option<PathBuf>, fourcc: [u8; 4]) -> Result<[u64; 2], BoxError> {
    enum Writer {
        None,
        Ivf(IvfWriter<BufWriter<File>>, u32),
        Ogg(OggOpusWriter<BufWriter<File>>),
    }
    let mut writer = Writer::None;
    let (mut received, mut recorded) = (0, 0);
    while let Some(frame) = track.read_frame().await {
        received += 1;
        let Some(path) = &out else { continue };
        if let Writer::None = writer {
            writer = match track.kind() {
                Kind::Audio => {
                    Writer::Ogg(OggOpusWriter::new(BufWriter::new(File::create(path)?), &OpusHead::new(2), 1)?)
                }
                // Video starts at a key frame, whose size goes in the header.
                _ => match key_frame_size(fourcc, &frame.data) {
                    Some((w, h)) if frame.key_frame => {
                        let header = IvfHeader::new(fourcc, w, h, 90_000, 1);
                        Writer::Ivf(IvfWriter::new(BufWriter::new(File::create(path)?), &header)?, frame.timestamp)
                    }
                    _ => continue,
                },
            };
        }
        match &mut writer {
            Writer::Ivf(w, first) => w.write_frame(u64::from(frame.timestamp.wrapping_sub(*first)), &frame.data)?,
            Writer::Ogg(w) => w.write_packet(&frame.data)?,
            Writer::None => continue,
        }
        recorded += 1;
    }
    match writer {
        Writer::Ivf(w, _) => drop(w.finish_seekable()?.into_inner().map_err(|e| e.into_error())?),
        Writer::Ogg(w) => drop(w.finish()?.into_inner().map_err(|e| e.into_error())?),
        Writer::None => {}
    }
    Ok([received, recorded])
}

/// Makes the call, plays the files, records what bob receives, and hangs
/// up once both files have played (and half a second more for the frames
/// in flight).
pub(crate) async fn run(plan: &Plan) -> Result<Summary, BoxError> {
    let open = |p: &Path| File::open(p).map(BufReader::new).map_err(|e| format!("{}: {e}", p.display()));
    let ivf = plan
        .video
        .as_deref()
        .map(|p| IvfReader::new(open(p)?).map_err(|e| format!("{}: {e}", p.display())))
        .transpose()?;
    let ogg = plan
        .audio
        .as_deref()
        .map(|p| OggOpusReader::new(open(p)?).map_err(|e| format!("{}: {e}", p.display())))
        .transpose()?;
    let fourcc = ivf.as_ref().map_or(*b"VP80", |r| r.header().fourcc);
    if ivf.is_some() && !matches!(&fourcc, b"VP80" | b"VP90") {
        return Err(format!("IVF of {}: VP8 or VP9 only", String::from_utf8_lossy(&fourcc)).into());
    }
    let options = options(&fourcc == b"VP90");
    let alice = RtcConnection::new(None, Some(options.clone()))?;
    let bob = RtcConnection::new(None, Some(options))?;
    let stream = RtcMediaStream::new(StreamDescription::default());
    let video = RtcMediaStreamTrack::of_kind(Kind::Video);
    let audio = RtcMediaStreamTrack::of_kind(Kind::Audio);
    if ivf.is_some() {
        stream.add_track(video.clone())?;
    }
    if ogg.is_some() {
        stream.add_track(audio.clone())?;
    }
    alice.send_stream(&stream, true)?;
    let sockets = [
        RtcSocket::new(SocketServers::loopback_v4(), SocketOptions::default()).await?,
        RtcSocket::new(SocketServers::loopback_v4(), SocketOptions::default()).await?,
    ];
    let (a_events, b_events) = (alice.events(), bob.events());
    let (a_sock_events, b_sock_events) = (sockets[0].events(), sockets[1].events());
    alice.add_socket(&sockets[0])?;
    bob.add_socket(&sockets[1])?;
    signal_candidates(a_sock_events, sockets[1].clone());
    signal_candidates(b_sock_events, sockets[0].clone());
    for (from, to) in [(&alice, &bob), (&bob, &alice)] {
        to.set_options(from.options(Direction::Local).unwrap_or_default(), Direction::Remote)?;
    }
    for (from, to) in [(&alice, &bob), (&bob, &alice)] {
        // Without `keys`, as browsers signal: DTLS-SRTP keys SRTP.
        let mut desc = from.description(Direction::Local).ok_or("no local description")?;
        desc.keys.clear();
        to.set_description(desc, Direction::Remote)?;
    }
    let both = async { connected(a_events).await && connected(b_events).await };
    if !tokio::time::timeout(Duration::from_secs(5), both).await.unwrap_or(false) {
        return Err("the peers did not connect within 5 s".into());
    }
    let mut recorders = Vec::new();
    for t in bob.remote_streams().iter().flat_map(|s| s.tracks()) {
        let (kind, out) = match t.kind() {
            Kind::Audio => (1, plan.audio_out.clone()),
            _ => (0, plan.video_out.clone()),
        };
        recorders.push((kind, tokio::spawn(record(t, out, fourcc))));
    }
    let t0 = Instant::now();
    let players = async {
        let v = async { if let Some(r) = ivf { play_video(r, video).await } else { Ok(0) } };
        let a = async { if let Some(r) = ogg { play_audio(r, audio).await } else { Ok(0) } };
        let (v, a) = tokio::join!(v, a);
        Ok::<_, BoxError>([v?, a?])
    };
    let mut summary = Summary { played: players.await?, elapsed: t0.elapsed(), ..Summary::default() };
    tokio::time::sleep(Duration::from_millis(500)).await;
    alice.close();
    bob.close();
    for (kind, r) in recorders {
        let [received, recorded] =
            tokio::time::timeout(Duration::from_secs(5), r).await??.map_err(|e| e.to_string())?;
        summary.received[kind] += received;
        summary.recorded[kind] += recorded;
    }
    Ok(summary)
}
