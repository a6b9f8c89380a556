//! Media for the peers the runner plays: the built-in VP8 and VP9 clips, and
//! IVF and Ogg Opus files read by rtc-media.

use std::time::Duration;

/// The built-in video: 3 s of real VP8, 160x120, 30 frames/s, a key frame
/// every 30 (see conformance/fixtures/media).
pub const BUILTIN_VP8: &[u8] = include_bytes!("../fixtures/media/vp8-160x120.ivf");

/// The built-in VP9 clip: 1 s of real VP9 (profile 0, one layer as libvpx's
/// real-time mode encodes), 160x120, 30 frames/s, a key frame every 10 (see
/// conformance/fixtures/media).
pub const BUILTIN_VP9: &[u8] = include_bytes!("../fixtures/media/vp9-160x120.ivf");
/// 30 temporal units of real AV1, 160x120, a key frame every 10 (aomenc;
/// `conformance/fixtures/media/README.md`).
pub const BUILTIN_AV1: &[u8] = include_bytes!("../fixtures/media/av1-160x120.ivf");

/// The frames of an IVF file (read by [`rtc_media::IvfReader`]) and the
/// duration of a frame (from the first two timestamps; 33 ms when there is
/// one frame), of VP8.
pub fn ivf_frames(data: &[u8]) -> Result<(Vec<Vec<u8>>, Duration), String> {
    ivf_frames_of(data, *b"VP80")
}

/// The frames of an IVF file of the codec `fourcc` (`VP80`, `VP90`) and the
/// duration of a frame, as [`ivf_frames`].
pub fn ivf_frames_of(data: &[u8], fourcc: [u8; 4]) -> Result<(Vec<Vec<u8>>, Duration), String> {
    let mut reader = rtc_media::IvfReader::new(data).map_err(|e| format!("IVF: {e}"))?;
    let header = reader.header().clone();
    if header.fourcc != fourcc {
        let codec = String::from_utf8_lossy(&fourcc);
        return Err(format!("IVF: not a {codec} IVF file (DKIF … {codec})"));
    }
    let mut frames = Vec::new();
    let mut stamps = Vec::new();
    while let Some(f) = reader.next_frame().map_err(|e| format!("IVF: {e}"))? {
        stamps.push(f.timestamp);
        frames.push(f.data);
    }
    if frames.is_empty() {
        return Err("IVF: no frame".into());
    }
    let frame_time = match stamps.as_slice() {
        [a, b, ..] if b > a => header.time_of(b - a),
        _ => Duration::from_millis(33),
    };
    Ok((frames, frame_time.clamp(Duration::from_millis(1), Duration::from_secs(1))))
}

/// The Opus packets of an Ogg Opus file (read by
/// [`rtc_media::OggOpusReader`]: the identification and comment headers
/// skipped).
pub fn ogg_opus_packets(data: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let reader = rtc_media::OggOpusReader::new(data).map_err(|e| format!("Ogg: {e}"))?;
    let packets = reader.map(|p| p.map(|p| p.data)).collect::<Result<Vec<_>, _>>().map_err(|e| format!("Ogg: {e}"))?;
    if packets.is_empty() {
        return Err("Ogg: no Opus packet".into());
    }
    Ok(packets)
}

/// The duration of an Opus packet from its TOC octet
/// ([`rtc_media::opus_packet_samples`]); 20 ms when it has none.
pub fn opus_duration(packet: &[u8]) -> Duration {
    rtc_media::opus_packet_samples(packet)
        .map_or(Duration::from_millis(20), |n| Duration::from_micros(u64::from(n) * 1000 / 48))
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
        assert!(ivf_frames(BUILTIN_VP9).is_err(), "VP9 is not VP8");
    }

    /// The VP9 clip: 30 frames, 33 ms each, key frames (frame_type 0 in
    /// the uncompressed header) every 10, and each through rtc-payload's
    /// VP9 packetizer and depacketizer byte for byte.
    #[test]
    fn the_built_in_vp9_clip() {
        use rtc_payload::{Depacketizer, Format, PacketInfo, Packetizer};
        let (frames, t) = ivf_frames_of(BUILTIN_VP9, *b"VP90").unwrap();
        assert_eq!(frames.len(), 30);
        assert!(t.abs_diff(Duration::from_secs_f64(1.0 / 30.0)) < Duration::from_millis(1), "{t:?}");
        let mut p = Packetizer::new(Format::Vp9, 1200, 0);
        let mut d = Depacketizer::new(Format::Vp9, 1 << 20);
        let mut out = [0u8; 1200];
        let mut seq = 0u16;
        for (i, f) in frames.iter().enumerate() {
            // frame_marker 2, profile 0, show_existing_frame 0, frame_type.
            assert_eq!(f[0] >> 2, if i % 10 == 0 { 0x20 } else { 0x21 }, "frame {i}");
            p.begin(f).unwrap();
            let mut got = Vec::new();
            while let Some(x) = p.next(f, &mut out) {
                let info = PacketInfo { sequence_number: seq, timestamp: i as u32 * 3000, marker: x.marker };
                d.push(info, &out[..x.len], &mut |info, frame| got.push((info.key_frame, frame.clone())));
                seq = seq.wrapping_add(1);
            }
            assert_eq!(got, [(i % 10 == 0, f.clone())], "frame {i}");
        }
    }
}
