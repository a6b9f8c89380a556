//! Media files made at test time by Debian's encoders (`vpxenc` of
//! vpx-tools, `opusenc` of opus-tools); each helper prints why and returns
//! `None` when its encoder is missing. Shared with rtc-api's tests
//! (`#[path]`-included).

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A fresh directory for one test's files.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rtc-media-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn run(tool: &str, args: &[&str]) -> Option<()> {
    match Command::new(tool).args(args).output() {
        Ok(out) if out.status.success() => Some(()),
        Ok(out) => panic!("{tool} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => {
            println!("skipped: {tool} is not installed ({e}); Debian packages vpx-tools and opus-tools have it");
            None
        }
    }
}

/// `frames` frames of 64x48 video at 30 frames a second (a moving
/// gradient), encoded by `vpxenc --codec=<codec>` (`vp8`, `vp9`) into IVF
/// with a key frame every 30 frames.
pub fn vpxenc(dir: &Path, codec: &str, frames: u32) -> Option<PathBuf> {
    let (w, h) = (64usize, 48usize);
    let mut y4m = format!("YUV4MPEG2 W{w} H{h} F30:1 Ip A1:1 C420jpeg\n").into_bytes();
    for i in 0..frames as usize {
        y4m.extend_from_slice(b"FRAME\n");
        y4m.extend((0..w * h).map(|k| ((k % w + k / w + i * 3) % 256) as u8));
        y4m.extend((0..w * h / 2).map(|k| ((k + i * 5) % 256) as u8));
    }
    let input = dir.join(format!("{codec}.y4m"));
    std::fs::write(&input, y4m).expect("y4m");
    let out = dir.join(format!("{codec}.ivf"));
    let (i, o) = (input.to_str()?, out.to_str()?);
    let codec_arg = format!("--codec={codec}");
    run("vpxenc", &[&codec_arg, "--ivf", "--quiet", "--rt", "--cpu-used=8", "--kf-max-dist=30", "-o", o, i])?;
    Some(out)
}

/// `seconds` of a 440 Hz stereo tone at 48 kHz, encoded by `opusenc`
/// (20 ms packets).
pub fn opusenc(dir: &Path, seconds: u32) -> Option<PathBuf> {
    let samples = 48_000 * seconds as usize;
    let mut pcm = Vec::with_capacity(samples * 4);
    for n in 0..samples {
        let v = ((n as f64 * 440.0 * std::f64::consts::TAU / 48_000.0).sin() * 8000.0) as i16;
        pcm.extend_from_slice(&v.to_le_bytes());
        pcm.extend_from_slice(&v.to_le_bytes());
    }
    let mut wav = b"RIFF".to_vec();
    wav.extend_from_slice(&(36 + pcm.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&2u16.to_le_bytes()); // channels
    wav.extend_from_slice(&48_000u32.to_le_bytes());
    wav.extend_from_slice(&(48_000u32 * 4).to_le_bytes());
    wav.extend_from_slice(&4u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(pcm.len() as u32).to_le_bytes());
    wav.extend_from_slice(&pcm);
    let input = dir.join("tone.wav");
    std::fs::write(&input, wav).expect("wav");
    let out = dir.join("tone.opus");
    run("opusenc", &["--quiet", "--framesize", "20", input.to_str()?, out.to_str()?])?;
    Some(out)
}

/// Whether `opusinfo` (opus-tools) accepts `file`: `None` (with a printed
/// reason) when it is not installed, else its verdict and output.
pub fn opusinfo(file: &Path) -> Option<(bool, String)> {
    match Command::new("opusinfo").arg(file).output() {
        Ok(out) => {
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            let ok = out.status.success() && !text.contains("WARNING") && !text.contains("ERROR");
            Some((ok, text))
        }
        Err(e) => {
            println!("skipped: opusinfo is not installed ({e}); Debian package opus-tools has it");
            None
        }
    }
}

/// Whether `ffprobe` (ffmpeg) reads every frame of `file`: `None` (with a
/// printed reason) when it is not installed, else its verdict and output.
pub fn ffprobe(file: &Path) -> Option<(bool, String)> {
    let args = ["-v", "error", "-count_frames", "-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0"];
    match Command::new("ffprobe").args(args).arg(file).output() {
        Ok(out) => {
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            Some((out.status.success() && out.stderr.is_empty(), text))
        }
        Err(e) => {
            println!("skipped: ffprobe is not installed ({e}); Debian package ffmpeg has it");
            None
        }
    }
}
