//! Plays media files into a call and records what the other side receives:
//! alice plays an IVF file (VP8 or VP9) and/or an Ogg Opus file into her
//! tracks at their real pace (IVF frame timestamps, Opus granule
//! positions); bob, in the same process over 127.0.0.1, receives them and
//! with `--video-out`/`--audio-out` records them to IVF and Ogg Opus files.
//!
//! ```sh
//! cargo run --release -p rtc-api --example play -- clip.ivf
//! cargo run --release -p rtc-api --example play -- clip.ivf tone.opus --video-out got.ivf --audio-out got.opus
//! ```
//!
//! Logs go to stderr, filtered by `RUST_LOG` (`warn` by default).

use std::path::PathBuf;

#[path = "../shared/logs.rs"]
mod logs;
mod session;

const USAGE: &str = "usage: play FILE.ivf|FILE.opus [FILE…] [--video-out OUT.ivf] [--audio-out OUT.opus]";

fn plan() -> Result<session::Plan, session::BoxError> {
    let mut plan = session::Plan::default();
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        match a.to_str() {
            Some("--video-out") => plan.video_out = Some(args.next().ok_or(USAGE)?.into()),
            Some("--audio-out") => plan.audio_out = Some(args.next().ok_or(USAGE)?.into()),
            Some("-h" | "--help") => return Err(USAGE.into()),
            _ => plan.add_input(PathBuf::from(a))?,
        }
    }
    if plan.video.is_none() && plan.audio.is_none() {
        return Err(USAGE.into());
    }
    Ok(plan)
}

#[tokio::main]
async fn main() -> Result<(), session::BoxError> {
    logs::init();
    let plan = plan()?;
    let s = session::run(&plan).await?;
    let [pv, pa] = s.played;
    println!("alice played {pv} video frames and {pa} audio packets in {:.2} s", s.elapsed.as_secs_f64());
    for (i, (kind, out)) in
        [("video frames", &plan.video_out), ("audio packets", &plan.audio_out)].into_iter().enumerate()
    {
        let to = out.as_ref().map_or(String::new(), |p| format!(", recorded {} to {}", s.recorded[i], p.display()));
        println!("bob   received {} {kind}{to}", s.received[i]);
    }
    Ok(())
}
