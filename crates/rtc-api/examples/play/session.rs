//! The `play` example's call (`#[path]`-included by the example and by
//! tests/play.rs): alice plays IVF and Ogg Opus files into tracks at their
//! real pace, bob receives over 127.0.0.1 and records what arrives to IVF
//! and Ogg Opus files.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rtc_api::{
    ConnectionEvent, Direction, Events, RtcConnection, RtcMediaStream, RtcMediaStreamTrack, RtcSocket, SocketEvent,
    SocketOptions, SocketServers, StreamDescription,
};
use rtc_codecs::Kind;

#[path = "../shared/media.rs"]
mod media;

pub(crate) use media::BoxError;
use media::{Recorded, open_ivf, open_ogg, options, play_audio, play_video, record};

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

/// Makes the call, plays the files, records what bob receives, and hangs
/// up once both files have played (and half a second more for the frames
/// in flight).
pub(crate) async fn run(plan: &Plan) -> Result<Summary, BoxError> {
    let ivf = plan.video.as_deref().map(open_ivf).transpose()?;
    let ogg = plan.audio.as_deref().map(open_ogg).transpose()?;
    let fourcc = ivf.as_ref().map_or(*b"VP80", |(_, fourcc)| *fourcc);
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
        let counts = Arc::new(Recorded::default());
        let c = counts.clone();
        recorders.push((kind, counts, tokio::spawn(async move { record(t, out, fourcc, &c).await })));
    }
    let t0 = Instant::now();
    let played = [AtomicU64::new(0), AtomicU64::new(0)];
    let players = async {
        let v = async { if let Some((r, _)) = ivf { play_video(r, &video, &played[0]).await } else { Ok(()) } };
        let a = async { if let Some(r) = ogg { play_audio(r, &audio, &played[1]).await } else { Ok(()) } };
        let (v, a) = tokio::join!(v, a);
        v.and(a)
    };
    players.await?;
    let mut summary = Summary { played: played.map(|p| p.into_inner()), elapsed: t0.elapsed(), ..Summary::default() };
    tokio::time::sleep(Duration::from_millis(500)).await;
    alice.close();
    bob.close();
    for (kind, counts, r) in recorders {
        tokio::time::timeout(Duration::from_secs(5), r).await??.map_err(|e| e.to_string())?;
        summary.received[kind] += counts.received.load(Ordering::Relaxed);
        summary.recorded[kind] += counts.recorded.load(Ordering::Relaxed);
    }
    Ok(summary)
}
