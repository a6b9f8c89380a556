//! The `play` example's call over 127.0.0.1: a VP8 and a VP9 IVF file made
//! by `vpxenc` and an Ogg Opus file made by `opusenc` played into tracks at
//! their pace and recorded by the receiving side; the recordings hold the
//! same frames octet for octet (but frames lost at the very start), and
//! `vpxdec`/`ffprobe`/`opusinfo` (whichever are installed) accept them.

use std::path::Path;

use rtc_media::{IvfReader, OggOpusReader};

#[path = "../examples/play/session.rs"]
#[allow(dead_code)]
mod session;

#[path = "../../rtc-media/tests/encoders/mod.rs"]
mod encoders;

fn ivf_frames(path: &Path) -> Vec<Vec<u8>> {
    let reader = IvfReader::new(std::fs::File::open(path).unwrap()).unwrap();
    reader.map(|f| f.unwrap().data).collect()
}

fn opus_packets(path: &Path) -> Vec<Vec<u8>> {
    let reader = OggOpusReader::new(std::fs::File::open(path).unwrap()).unwrap();
    reader.map(|p| p.unwrap().data).collect()
}

/// The recording is the source but for up to `lost_at_start` frames lost
/// at the start.
fn check_same(what: &str, sent: &[Vec<u8>], got: &[Vec<u8>], lost_at_start: usize) {
    let lost = sent.len().saturating_sub(got.len());
    assert!(lost <= lost_at_start, "{what}: {} of {} frames recorded", got.len(), sent.len());
    assert!(got == &sent[lost..], "{what}: the recorded frames differ from the file's");
    println!("{what}: {} of {} frames recorded, octet for octet", got.len(), sent.len());
}

/// `vpxdec --md5 --i420`'s sum of the decoded pictures (raw I420); `None` (with a printed
/// reason) when vpxdec is not installed.
fn vpxdec_md5(path: &Path) -> Option<String> {
    match std::process::Command::new("vpxdec").args(["--md5", "--i420"]).arg(path).output() {
        Ok(out) => {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "vpxdec refused {}: {err}", path.display());
            Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        }
        Err(e) => {
            println!("skipped: vpxdec is not installed ({e}); Debian package vpx-tools has it");
            None
        }
    }
}

fn play(codec: &str, with_audio: bool) {
    let dir = encoders::temp_dir(&format!("play-{codec}"));
    let Some(video) = encoders::vpxenc(&dir, codec, 60) else { return };
    let audio = if with_audio {
        let Some(a) = encoders::opusenc(&dir, 2) else { return };
        Some(a)
    } else {
        None
    };
    let plan = session::Plan {
        video: Some(video.clone()),
        audio: audio.clone(),
        video_out: Some(dir.join("got.ivf")),
        audio_out: audio.as_ref().map(|_| dir.join("got.opus")),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let summary = rt.block_on(session::run(&plan)).unwrap();
    println!("{codec}: {summary:?}");
    // Real pace: 60 frames at 30 a second take about 2 s.
    assert!(summary.elapsed.as_secs_f64() > 1.8, "{codec}: played in {:?}", summary.elapsed);
    let sent = ivf_frames(&video);
    assert_eq!(summary.played[0], sent.len() as u64);
    // A key frame every 30: losing the first costs the frames up to the next.
    let got = ivf_frames(&dir.join("got.ivf"));
    check_same(codec, &sent, &got, 30);
    // libvpx decodes the recording; all of it: the same pictures.
    if let (Some(a), Some(b)) = (vpxdec_md5(&video), vpxdec_md5(&dir.join("got.ivf")))
        && got.len() == sent.len()
    {
        assert_eq!(a, b, "{codec}: the recording decodes to other pictures");
    }
    if let Some((ok, text)) = encoders::ffprobe(&dir.join("got.ivf")) {
        assert!(ok, "ffprobe refused the {codec} recording: {text}");
    }
    if let Some(audio) = audio {
        let sent = opus_packets(&audio);
        assert_eq!(summary.played[1], sent.len() as u64);
        check_same("opus", &sent, &opus_packets(&dir.join("got.opus")), 5);
        if let Some((ok, text)) = encoders::opusinfo(&dir.join("got.opus")) {
            assert!(ok, "opusinfo refused the recording: {text}");
        }
        if let Some((ok, text)) = encoders::ffprobe(&dir.join("got.opus")) {
            assert!(ok, "ffprobe refused the Opus recording: {text}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn plays_and_records_vp8_and_opus() {
    play("vp8", true);
}

#[test]
fn plays_and_records_vp9() {
    play("vp9", false);
}
