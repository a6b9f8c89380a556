//! Media files and tracks for the examples (`#[path]`-included by the
//! `play` and `whip` examples and tests/play.rs): an IVF file (VP8, VP9)
//! or an Ogg Opus file played into a track at its real pace, and a
//! received track recorded to IVF or Ogg Opus with rtc-media.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rtc_api::RtcMediaStreamTrack;
use rtc_codecs::Kind;
use rtc_media::{IvfHeader, IvfReader, IvfWriter, OggOpusReader, OggOpusWriter, OpusHead};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Codec options with VP9 (profile 0) in place of VP8 when `vp9`.
pub(crate) fn options(vp9: bool) -> rtc_codecs::Options {
    let mut options = rtc_api::default_options();
    if vp9 {
        for c in options.codecs.iter_mut().filter(|c| c.name.eq_ignore_ascii_case("VP8")) {
            c.name = "VP9".into();
            c.parameters.insert("profile-id", "0");
        }
    }
    options
}

/// Plays the IVF file into `track` at its timestamps' pace, counting the
/// frames written in `played`.
pub(crate) async fn play_video<R: Read>(
    mut ivf: IvfReader<R>,
    track: &RtcMediaStreamTrack,
    played: &AtomicU64,
) -> Result<(), BoxError> {
    let header = ivf.header().clone();
    let t0 = tokio::time::Instant::now();
    let mut next = ivf.next_frame()?;
    let first = next.as_ref().map_or(0, |f| f.timestamp);
    while let Some(frame) = next {
        next = ivf.next_frame()?;
        let at = header.time_of(frame.timestamp.saturating_sub(first));
        // Each frame lasts until the next one (the last as long as 1/30 s).
        let lasts = next
            .as_ref()
            .map_or(Duration::from_millis(33), |n| header.time_of(n.timestamp.saturating_sub(frame.timestamp)));
        tokio::time::sleep_until(t0 + at).await;
        track.write_frame(&frame.data, lasts)?;
        played.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Plays the Ogg Opus file into `track` at its granule positions' pace,
/// counting the packets written in `played`.
pub(crate) async fn play_audio<R: Read>(
    mut ogg: OggOpusReader<R>,
    track: &RtcMediaStreamTrack,
    played: &AtomicU64,
) -> Result<(), BoxError> {
    let t0 = tokio::time::Instant::now();
    while let Some(p) = ogg.next_packet()? {
        tokio::time::sleep_until(t0 + p.start()).await;
        track.write_frame(&p.data, Duration::from_micros(u64::from(p.samples) * 1000 / 48))?;
        played.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// A VP8 or VP9 key frame's size.
fn key_frame_size(fourcc: [u8; 4], frame: &[u8]) -> Option<(u16, u16)> {
    match &fourcc {
        b"VP90" => rtc_media::vp9_key_frame_size(frame),
        _ => rtc_media::vp8_key_frame_size(frame),
    }
}

/// Frames received and recorded on one track, updated as they come.
#[derive(Debug, Default)]
pub(crate) struct Recorded {
    pub(crate) received: AtomicU64,
    pub(crate) recorded: AtomicU64,
}

/// Records `track` until it ends: audio to Ogg Opus, video (`fourcc`
/// `VP80` or `VP90`) to IVF from its first key frame, whose size goes in
/// the header; with no `out`, frames are only counted. The file is
/// complete (IVF frame count patched, Ogg end of stream) once this returns.
pub(crate) async fn record(
    track: RtcMediaStreamTrack,
    out: Option<PathBuf>,
    fourcc: [u8; 4],
    counts: &Recorded,
) -> Result<(), BoxError> {
    enum Writer {
        None,
        Ivf(IvfWriter<BufWriter<File>>, u32),
        Ogg(OggOpusWriter<BufWriter<File>>),
    }
    let mut writer = Writer::None;
    while let Some(frame) = track.read_frame().await {
        counts.received.fetch_add(1, Ordering::Relaxed);
        let Some(path) = &out else { continue };
        if let Writer::None = writer {
            writer = match track.kind() {
                Kind::Audio => {
                    Writer::Ogg(OggOpusWriter::new(BufWriter::new(File::create(path)?), &OpusHead::new(2), 1)?)
                }
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
        counts.recorded.fetch_add(1, Ordering::Relaxed);
    }
    match writer {
        Writer::Ivf(w, _) => drop(w.finish_seekable()?.into_inner().map_err(|e| e.into_error())?),
        Writer::Ogg(w) => drop(w.finish()?.into_inner().map_err(|e| e.into_error())?),
        Writer::None => {}
    }
    Ok(())
}

/// Opens an IVF file of VP8 or VP9 frames; returns its reader and FourCC.
pub(crate) fn open_ivf(path: &std::path::Path) -> Result<(IvfReader<BufReader<File>>, [u8; 4]), BoxError> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let ivf = IvfReader::new(BufReader::new(file)).map_err(|e| format!("{}: {e}", path.display()))?;
    let fourcc = ivf.header().fourcc;
    if !matches!(&fourcc, b"VP80" | b"VP90") {
        return Err(format!("{}: IVF of {}: VP8 or VP9 only", path.display(), String::from_utf8_lossy(&fourcc)).into());
    }
    Ok((ivf, fourcc))
}

/// Opens an Ogg Opus file.
pub(crate) fn open_ogg(path: &std::path::Path) -> Result<OggOpusReader<BufReader<File>>, BoxError> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    OggOpusReader::new(BufReader::new(file)).map_err(|e| format!("{}: {e}", path.display()).into())
}
