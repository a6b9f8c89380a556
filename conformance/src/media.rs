//! Media for the peers the runner plays: the built-in VP8 clip and a reader
//! of IVF files.

use std::time::Duration;

/// The built-in video: 3 s of real VP8, 160x120, 30 frames/s, a key frame
/// every 30 (see conformance/fixtures/media).
pub const BUILTIN_VP8: &[u8] = include_bytes!("../fixtures/media/vp8-160x120.ivf");

/// The frames of an IVF file (a 32-octet file header with the time base,
/// then per frame a 12-octet header: length and timestamp) and the
/// duration of a frame (from the first two timestamps; 33 ms when there is
/// one frame).
pub fn ivf_frames(data: &[u8]) -> Result<(Vec<Vec<u8>>, Duration), String> {
    let header = data.get(..32).ok_or("IVF: shorter than its header")?;
    if &header[..4] != b"DKIF" || &header[8..12] != b"VP80" {
        return Err("IVF: not a VP8 IVF file (DKIF … VP80)".into());
    }
    // The time base: timestamps count `numerator / denominator` seconds.
    let denominator = u32::from_le_bytes([header[16], header[17], header[18], header[19]]).max(1);
    let numerator = u32::from_le_bytes([header[20], header[21], header[22], header[23]]).max(1);
    let header_len = usize::from(u16::from_le_bytes([header[6], header[7]])).max(32);
    let mut rest = data.get(header_len..).ok_or("IVF: truncated")?;
    let mut frames = Vec::new();
    let mut stamps = Vec::new();
    while let [a, b, c, d, t @ ..] = rest {
        let len = u32::from_le_bytes([*a, *b, *c, *d]) as usize;
        let (stamp, tail) = t.split_at_checked(8).ok_or("IVF: a frame header runs past the end")?;
        let frame = tail.get(..len).ok_or("IVF: a frame runs past the end")?;
        stamps.push(u64::from_le_bytes(stamp.try_into().map_err(|_| "IVF: timestamp")?));
        frames.push(frame.to_vec());
        rest = &tail[len..];
    }
    if frames.is_empty() {
        return Err("IVF: no frame".into());
    }
    let frame_time = match stamps.as_slice() {
        [a, b, ..] if b > a => Duration::from_secs_f64((b - a) as f64 * f64::from(numerator) / f64::from(denominator)),
        _ => Duration::from_millis(33),
    };
    Ok((frames, frame_time.clamp(Duration::from_millis(1), Duration::from_secs(1))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_clip_is_real_vp8_at_30_frames_a_second() {
        let (frames, t) = ivf_frames(BUILTIN_VP8).unwrap();
        assert_eq!(frames.len(), 90);
        // Millisecond timestamps: 33 ms a frame.
        assert!(t.abs_diff(Duration::from_secs_f64(1.0 / 30.0)) < Duration::from_millis(1), "{t:?}");
        // RFC 6386 section 9.1: key frames every 30, with the start code.
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(f[0] & 1 == 0, i % 30 == 0, "frame {i}'s P bit");
            if i % 30 == 0 {
                assert_eq!(&f[3..6], &[0x9d, 0x01, 0x2a]);
            }
        }
        assert!(ivf_frames(b"DKIF").is_err());
    }
}
