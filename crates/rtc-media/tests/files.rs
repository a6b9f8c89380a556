//! IVF and Ogg Opus: round trips, truncated and hostile files, and files
//! made by `vpxenc` and `opusenc` read frame by frame.

use std::io::Cursor;

use rtc_media::{
    IvfHeader, IvfReader, IvfWriter, MAX_IVF_FRAME, MediaError, OggOpusReader, OggOpusWriter, OpusHead,
    opus_packet_samples, vp8_key_frame_size, vp9_key_frame_size,
};

mod encoders;

fn ivf_file(frames: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut w = IvfWriter::new(Cursor::new(Vec::new()), &IvfHeader::new(*b"VP80", 64, 48, 90_000, 1)).unwrap();
    for (t, f) in frames {
        w.write_frame(*t, f).unwrap();
    }
    w.finish_seekable().unwrap().into_inner()
}

/// Frames with their timestamps.
type Frames = Vec<(u64, Vec<u8>)>;

fn read_ivf(data: &[u8]) -> Result<(IvfHeader, Frames), MediaError> {
    let mut r = IvfReader::new(data)?;
    let header = r.header().clone();
    let frames = r.by_ref().map(|f| f.map(|f| (f.timestamp, f.data))).collect::<Result<_, _>>()?;
    Ok((header, frames))
}

fn some_frames() -> Vec<(u64, Vec<u8>)> {
    (0..20u64).map(|i| (i * 3000, (0..(i * 37 % 500) as u32).map(|k| (k ^ i as u32) as u8).collect())).collect()
}

#[test]
fn ivf_round_trip() {
    let frames = some_frames();
    let file = ivf_file(&frames);
    let (header, got) = read_ivf(&file).unwrap();
    assert_eq!(header.frame_count, 20);
    assert_eq!((header.fourcc, header.width, header.height), (*b"VP80", 64, 48));
    assert_eq!(got, frames);
    assert_eq!(header.time_of(3000).as_millis(), 33);
    // Without Seek the frame count stays 0; the frames are the same.
    let mut w = IvfWriter::new(Vec::new(), &IvfHeader::new(*b"VP80", 64, 48, 90_000, 1)).unwrap();
    for (t, f) in &frames {
        w.write_frame(*t, f).unwrap();
    }
    let plain = w.finish().unwrap();
    assert_eq!(plain[24..28], [0; 4]);
    assert_eq!(plain[28..], file[28..]);
}

#[test]
fn ivf_truncated_and_hostile() {
    let frames = some_frames();
    let file = ivf_file(&frames);
    for n in 0..file.len() {
        // Cut inside a header or frame: Truncated; between frames: the
        // frames before the cut.
        match read_ivf(&file[..n]) {
            Err(MediaError::Truncated(_)) => {}
            Ok((_, got)) => assert!(got.len() < frames.len() && frames.starts_with(&got), "{n} octets"),
            Err(e) => panic!("{n} octets: {e}"),
        }
    }
    let mut bad = file.clone();
    bad[0] = b'X';
    assert!(matches!(read_ivf(&bad), Err(MediaError::Invalid(_))));
    let mut bad = file.clone();
    bad[6] = 31;
    assert!(matches!(read_ivf(&bad), Err(MediaError::Invalid(_))));
    // A frame claiming 4 GiB is refused before any allocation.
    let mut bad = file[..32].to_vec();
    bad.extend_from_slice(&u32::MAX.to_le_bytes());
    bad.extend_from_slice(&[0; 8]);
    let r = read_ivf(&bad);
    assert!(matches!(r, Err(MediaError::TooLarge { len: 0xffff_ffff, .. })), "{r:?}");
    let mut w = IvfWriter::new(Vec::new(), &IvfHeader::new(*b"VP80", 1, 1, 1, 1)).unwrap();
    assert!(w.write_frame(0, &vec![0; MAX_IVF_FRAME + 1]).is_err());
    // Every single-octet corruption reads or fails, never panics.
    for i in 0..file.len() {
        let mut bad = file.clone();
        bad[i] ^= 0xff;
        let _ = read_ivf(&bad);
    }
}

/// Opus packets of several TOCs: 20 ms CELT, 10 ms CELT, 40 ms (two 20 ms
/// frames), 60 ms SILK, 3 x 20 ms (code 3).
fn some_packets() -> Vec<Vec<u8>> {
    let tocs: [&[u8]; 5] = [&[0xf8], &[0xf0], &[0xf9], &[0x18], &[0xfb, 0x03]];
    (0..200usize).map(|i| [tocs[i % 5], &vec![i as u8; i % 300]].concat()).collect()
}

fn ogg_file(packets: &[Vec<u8>]) -> Vec<u8> {
    let mut w = OggOpusWriter::new(Vec::new(), &OpusHead::new(2), 0x1234).unwrap();
    for p in packets {
        w.write_packet(p).unwrap();
    }
    w.finish().unwrap()
}

/// Packets with their granule positions.
type Packets = Vec<(Vec<u8>, u64)>;

fn read_ogg(data: &[u8]) -> Result<(OpusHead, Packets), MediaError> {
    let mut r = OggOpusReader::new(data)?;
    let head = r.head().clone();
    let packets = r.by_ref().map(|p| p.map(|p| (p.data, p.granule))).collect::<Result<_, _>>()?;
    Ok((head, packets))
}

#[test]
fn opus_durations_follow_the_toc() {
    assert_eq!(opus_packet_samples(&[0xf8, 0xff, 0xfe]), Some(960));
    assert_eq!(opus_packet_samples(&[0x08]), Some(960)); // SILK NB 20 ms
    assert_eq!(opus_packet_samples(&[0xf9]), Some(1920)); // two 20 ms frames
    assert_eq!(opus_packet_samples(&[0xfb, 0x03]), Some(2880));
    assert_eq!(opus_packet_samples(&[0xfb]), None);
    assert_eq!(opus_packet_samples(&[]), None);
}

#[test]
fn ogg_opus_round_trip() {
    let packets = some_packets();
    let file = ogg_file(&packets);
    let (head, got) = read_ogg(&file).unwrap();
    assert_eq!(head, OpusHead::new(2));
    let mut granule = 0;
    for ((data, g), p) in got.iter().zip(&packets) {
        granule += u64::from(opus_packet_samples(p).unwrap());
        assert_eq!((data, *g), (p, granule));
    }
    assert_eq!(got.len(), packets.len());
    // A file with no audio packet: the headers alone.
    let (_, none) = read_ogg(&ogg_file(&[])).unwrap();
    assert!(none.is_empty());
}

#[test]
fn ogg_opus_truncated_and_hostile() {
    let packets = &some_packets()[..80];
    let file = ogg_file(packets);
    for n in 0..file.len() {
        // Cut inside a page: Truncated; between pages: the packets before.
        match read_ogg(&file[..n]) {
            Err(MediaError::Truncated(_)) => {}
            Ok((_, got)) => assert!(got.len() < packets.len(), "{n} octets"),
            Err(e) => panic!("{n} octets: {e}"),
        }
    }
    for i in (0..file.len()).step_by(3) {
        let mut bad = file.clone();
        bad[i] ^= 0x5a;
        let _ = read_ogg(&bad); // the page CRC catches most; never a panic
    }
    assert!(matches!(read_ogg(b"not an Ogg file at all, no, not at all"), Err(MediaError::Invalid(_))));
    // A packet continued over pages past the budget is refused.
    let mut w = ogg::PacketWriter::new(Vec::new());
    let head = b"OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00".to_vec();
    w.write_packet(head, 1, ogg::PacketWriteEndInfo::EndPage, 0).unwrap();
    w.write_packet(vec![0u8; 3 << 20], 1, ogg::PacketWriteEndInfo::EndStream, 0).unwrap();
    let r = read_ogg(&w.into_inner());
    assert!(matches!(r, Err(MediaError::TooLarge { what: "an Ogg packet", .. })), "{r:?}");
}

#[test]
fn vpxenc_files_read_frame_by_frame() {
    let dir = encoders::temp_dir("vpxenc");
    for (codec, fourcc) in [("vp8", *b"VP80"), ("vp9", *b"VP90")] {
        let Some(path) = encoders::vpxenc(&dir, codec, 45) else { return };
        let file = std::fs::read(&path).unwrap();
        let (header, frames) = read_ivf(&file).unwrap();
        assert_eq!((header.fourcc, header.width, header.height), (fourcc, 64, 48), "{codec}");
        assert_eq!(frames.len(), 45, "{codec}");
        assert_eq!(header.frame_count, 45, "{codec}");
        let key = |f: &[u8]| if codec == "vp8" { vp8_key_frame_size(f) } else { vp9_key_frame_size(f) };
        assert_eq!(key(&frames[0].1), Some((64, 48)), "{codec}: the first frame is a key frame");
        assert_eq!(key(&frames[30].1), Some((64, 48)), "{codec}: a key frame every 30");
        assert_eq!(key(&frames[1].1), None, "{codec}");
        let times: Vec<u128> = frames.iter().map(|(t, _)| header.time_of(*t).as_millis()).collect();
        assert_eq!(times[..3], [0, 33, 66], "{codec}");
        // Written again by IvfWriter: the same file, octet for octet.
        let mut w = IvfWriter::new(Cursor::new(Vec::new()), &IvfHeader { frame_count: 0, ..header.clone() }).unwrap();
        for (t, f) in &frames {
            w.write_frame(*t, f).unwrap();
        }
        assert!(w.finish_seekable().unwrap().into_inner() == file, "{codec}: rewritten differently");
        println!(
            "{codec}: {} frames of {}x{} from vpxenc read and rewritten",
            frames.len(),
            header.width,
            header.height
        );
    }
}

#[test]
fn opusenc_files_read_packet_by_packet() {
    let dir = encoders::temp_dir("opusenc");
    let Some(path) = encoders::opusenc(&dir, 2) else { return };
    let file = std::fs::read(&path).unwrap();
    let (head, packets) = read_ogg(&file).unwrap();
    assert_eq!(head.channels, 2);
    assert_eq!(head.input_sample_rate, 48_000);
    // 2 s plus the pre-skip in 20 ms packets.
    let want = (96_000 + u64::from(head.pre_skip)).div_ceil(960);
    assert_eq!(packets.len() as u64, want, "pre-skip {}", head.pre_skip);
    for (i, (p, g)) in packets.iter().enumerate() {
        assert_eq!(opus_packet_samples(p), Some(960), "packet {i}");
        assert_eq!(*g, 960 * (i as u64 + 1), "packet {i}'s granule position");
    }
    // Written again by OggOpusWriter, read again, and opusinfo accepts it.
    let mut w = OggOpusWriter::new(Vec::new(), &head, 99).unwrap();
    for (p, _) in &packets {
        w.write_packet(p).unwrap();
    }
    let copy = w.finish().unwrap();
    let (_, again) = read_ogg(&copy).unwrap();
    assert_eq!(again, packets);
    let out = dir.join("copy.opus");
    std::fs::write(&out, &copy).unwrap();
    if let Some((ok, text)) = encoders::opusinfo(&out) {
        assert!(ok, "opusinfo refused our copy:\n{text}");
    }
    println!("opusenc: {} packets read and rewritten; opusinfo accepts the copy", packets.len());
}
