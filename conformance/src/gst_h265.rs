//! The `codecs` suite's H.265 case (RFC 7798) against GStreamer, run by
//! `conformance/peers/gst_h265.py` under the system python3: x265enc's
//! byte stream sent by rtph265pay over UDP on 127.0.0.1 must come out of
//! rtc-payload's depacketizer NAL unit for NAL unit, as access units with
//! the IRAP pictures flagged, the same access units rtc-media's Annex B
//! reader finds in the byte stream; the same access units packetized by
//! rtc-payload must go through rtph265depay into FFmpeg's decoder (avdec_h265), which must
//! decode every one.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rtc_payload::{Depacketizer, Format, FrameInfo, PacketInfo, Packetizer};
use rtc_srtp::{RtpHeader, RtpPacket};

use crate::runner::Context;

/// The peer script, under the repository root.
const PEER: &str = "conformance/peers/gst_h265.py";
/// Pictures GStreamer encodes (two seconds at 30 per second).
const FRAMES: usize = 60;
/// The payload type both sides use.
const PT: u8 = 96;

/// The NAL units of an Annex B byte stream, with their type (RFC 7798
/// section 1.1.4: bits 1 to 6 of the header's first octet).
fn nal_units(stream: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let ends = starts.iter().skip(1).map(|&s| s - 3).chain(std::iter::once(stream.len()));
    starts
        .iter()
        .zip(ends)
        .map(|(&s, e)| {
            // Without the zero before a 4-octet start code.
            let unit = &stream[s..e];
            let len = unit.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
            &unit[..len]
        })
        .filter(|u| !u.is_empty())
        .collect()
}

/// Runs the case; its summary line.
pub(crate) fn check(ctx: &Context) -> Result<String, String> {
    let python = std::env::var_os("RTC_SYSTEM_PYTHON").unwrap_or_else(|| "/usr/bin/python3".into());
    let script = ctx.root.join(PEER);
    let rx = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    rx.set_read_timeout(Some(Duration::from_millis(200))).map_err(|e| e.to_string())?;
    let tx = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    // GStreamer's receiving port: free now, bound by the script next.
    let back = UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map_err(|e| e.to_string())?;
    let reference = std::env::temp_dir().join(format!("rtc-h265-{}.h265", std::process::id()));
    let mut child = Command::new(&python)
        .arg(&script)
        .arg(rx.local_addr().map_err(|e| e.to_string())?.port().to_string())
        .arg(back.port().to_string())
        .arg(&reference)
        .arg(FRAMES.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{} {PEER}: {e} (the system python3 with python3-gi)", python.to_string_lossy()))?;
    let result = exchange(&mut child, &rx, &tx, back, &reference);
    let _ = std::fs::remove_file(&reference);
    if result.is_err() {
        let _ = child.kill();
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let (summary, line) = result.map_err(|e| format!("{e} (GStreamer's peer: {status})"))?;
    let decoded: serde_json::Value =
        serde_json::from_str(&line).map_err(|_| format!("GStreamer said {line:?} (exit {status})"))?;
    let decoded = decoded["decoded"].as_u64().unwrap_or(0);
    let summary = format!("{summary}; FFmpeg's decoder (avdec_h265) decoded {decoded} of them after rtph265depay");
    if decoded < FRAMES as u64 {
        return Err(summary);
    }
    Ok(summary)
}

/// Receives GStreamer's packets, checks them against its byte stream,
/// sends them back packetized by rtc-payload; returns the summary so far
/// and the script's last line.
fn exchange(
    child: &mut std::process::Child,
    rx: &UdpSocket,
    tx: &UdpSocket,
    back: std::net::SocketAddr,
    reference: &std::path::Path,
) -> Result<(String, String), String> {
    let mut lines = BufReader::new(child.stdout.take().ok_or("stdout")?).lines();
    let mut depacketizer = Depacketizer::new(Format::H265, 4 << 20);
    let mut units: Vec<(u32, Vec<u8>, bool)> = Vec::new();
    let (mut packets, mut aps, mut fus) = (0usize, 0usize, 0usize);
    let mut buf = [0u8; 2048];
    let started = Instant::now();
    let mut last = None::<Instant>;
    // Until a second of silence after the first packet.
    while last.is_none_or(|t| t.elapsed() < Duration::from_secs(1)) {
        if started.elapsed() > Duration::from_secs(30) {
            return Err(format!("GStreamer sent {packets} packets in 30 s, then nothing ended the stream"));
        }
        let Ok(n) = rx.recv(&mut buf) else { continue };
        last = Some(Instant::now());
        let packet = RtpPacket::new_checked(&buf[..n]).map_err(|e| format!("GStreamer's RTP: {e}"))?;
        packets += 1;
        match packet.payload().first().map(|b| (b >> 1) & 0x3f) {
            Some(48) => aps += 1,
            Some(49) => fus += 1,
            _ => {}
        }
        let info = PacketInfo {
            sequence_number: packet.sequence_number(),
            timestamp: packet.timestamp(),
            marker: packet.marker(),
        };
        depacketizer.push(info, packet.payload(), &mut |f: FrameInfo, au: &mut Vec<u8>| {
            units.push((f.timestamp, std::mem::take(au), f.key_frame));
        });
    }
    match lines.next() {
        Some(Ok(l)) if l == "sent" => {}
        other => return Err(format!("GStreamer's sender: {other:?}")),
    }
    let stream = std::fs::read(reference).map_err(|e| format!("{}: {e}", reference.display()))?;
    let want = nal_units(&stream);
    let got: Vec<&[u8]> = units.iter().flat_map(|(_, au, _)| nal_units(au)).collect();
    let keys = units.iter().filter(|(_, _, k)| *k).count();
    // The byte stream split into access units by rtc-media.
    let mut reader = rtc_media::AnnexBReader::new(stream.as_slice(), rtc_media::NalCodec::H265);
    let mut read = Vec::new();
    while let Some(au) = reader.next_access_unit().map_err(|e| format!("rtc-media's Annex B reader: {e}"))? {
        read.push((au.data, au.key));
    }
    let same_units = read.len() == units.len() && read.iter().zip(&units).all(|(r, u)| r.0 == u.1 && r.1 == u.2);
    let summary = format!(
        "rtph265pay sent x265enc's {} NAL units in {packets} packets ({aps} APs, {fus} FUs); rtc-payload made {} \
         access units of them ({keys} IRAP), NAL units {}; rtc-media's Annex B reader found {} access units in \
         the byte stream, {}; rtc-payload sent the access units back",
        want.len(),
        units.len(),
        if got == want { "identical to the byte stream" } else { "DIFFERENT from the byte stream" },
        read.len(),
        if same_units { "the same, key flags included" } else { "NOT the same" },
    );
    let whole = got == want && same_units && units.len() == FRAMES && keys >= 2;
    if !whole || aps == 0 || fus == 0 || depacketizer.discarded() != 0 {
        return Err(format!("{summary} ({} discarded)", depacketizer.discarded()));
    }
    // Back, paced at a frame every 10 ms.
    let mut packetizer = Packetizer::new(Format::H265, 1200, 0);
    let (mut out, mut datagram) = (vec![0u8; 1200], vec![0u8; 1300]);
    let mut seq = 1000u16;
    for (timestamp, au, _) in &units {
        packetizer.begin(au).map_err(|e| format!("rtc-payload refused an access unit: {e}"))?;
        while let Some(p) = packetizer.next(au, &mut out) {
            let header = RtpHeader {
                marker: p.marker,
                payload_type: PT,
                sequence_number: seq,
                timestamp: *timestamp,
                ssrc: 0x2650_0001,
                ..RtpHeader::default()
            };
            let n = header.write(&out[..p.len], 0, &mut datagram).map_err(|e| e.to_string())?;
            tx.send_to(&datagram[..n], back).map_err(|e| e.to_string())?;
            seq = seq.wrapping_add(1);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(child.stdin.take());
    match lines.next() {
        Some(Ok(l)) => Ok((summary, l)),
        other => {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            Err(format!("{summary}; GStreamer's receiver said {other:?}: {}", err.trim()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nal_units_of_a_byte_stream() {
        let s = [0, 0, 0, 1, 0x40, 1, 2, 0, 0, 1, 0x42, 1, 0, 0, 0, 1, 0x26, 1, 9];
        assert_eq!(nal_units(&s), vec![&[0x40, 1, 2][..], &[0x42, 1], &[0x26, 1, 9]]);
        assert!(nal_units(&[]).is_empty());
    }
}
