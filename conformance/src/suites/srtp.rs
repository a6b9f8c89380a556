//! Suite `srtp`: the RFC 3711 / RFC 6188 / RFC 7714 vectors through the
//! public API, the `srtp` subcommand end to end, and a cross-check with
//! libsrtp (pylibsrtp 1.0.0): random keys and packets in every profile that
//! pylibsrtp exposes, both directions, RTP and RTCP, a sequence-number
//! rollover, and tampered and replayed packets that both must refuse.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use rtc_srtp::rtcp::{ReportBlock, SenderInfo, Writer};
use rtc_srtp::{Config, Context, DirectionKeys, Profile, RtpHeader, SessionKeys};

use crate::runner::{CaseResult, Context as RunContext, Suite};

/// The suite.
pub const SUITE: Suite =
    Suite { name: "srtp", about: "SRTP/SRTCP: RFC vectors, the srtp subcommand, cross-check with libsrtp", run };

/// The operations of the `srtp` subcommand.
pub const OPS: [&str; 4] = ["protect", "unprotect", "protect-rtcp", "unprotect-rtcp"];

/// Command-line profile names and the profiles they stand for.
pub const PROFILES: [(&str, Profile); 6] = [
    ("aes128cm80", Profile::Aes128CmHmacSha1_80),
    ("aes128cm32", Profile::Aes128CmHmacSha1_32),
    ("aes256cm80", Profile::Aes256CmHmacSha1_80),
    ("aes256cm32", Profile::Aes256CmHmacSha1_32),
    ("gcm128", Profile::AeadAes128Gcm),
    ("gcm256", Profile::AeadAes256Gcm),
];

/// The profiles pylibsrtp 1.0.0 exposes (libsrtp has no profile constant
/// for AES-256-CM).
const LIBSRTP_PROFILES: [&str; 4] = ["aes128cm80", "aes128cm32", "gcm128", "gcm256"];

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !s.len().is_multiple_of(2) {
        return Err("odd number of hex digits".into());
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| e.to_string())).collect()
}

/// One `srtp` subcommand session: a closure turning each input line into
/// its output line, with one [`Context`] across lines.
pub fn line_session(op: &str, profile: &str, key_hex: &str) -> Result<impl FnMut(&str) -> String, String> {
    let op = OPS.iter().position(|o| *o == op).ok_or_else(|| format!("unknown operation {op:?}"))?;
    let profile = PROFILES
        .iter()
        .find(|(n, _)| *n == profile)
        .map(|(_, p)| *p)
        .ok_or_else(|| format!("unknown profile {profile:?}"))?;
    let key = unhex(key_hex)?;
    if key.len() != profile.master_key_len() + profile.master_salt_len() {
        return Err(format!(
            "the key must be {} octets (master key {} || master salt {}), got {}",
            profile.master_key_len() + profile.master_salt_len(),
            profile.master_key_len(),
            profile.master_salt_len(),
            key.len()
        ));
    }
    let (k, s) = key.split_at(profile.master_key_len());
    let mut ctx = Context::new(profile, k, s).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 65536 + 64];
    Ok(move |line: &str| {
        let pkt = match unhex(line) {
            Ok(p) if p.len() <= 65536 => p,
            Ok(_) => return "ERR packet longer than 65536 octets".to_string(),
            Err(e) => return format!("ERR bad hex: {e}"),
        };
        buf[..pkt.len()].copy_from_slice(&pkt);
        let r = match op {
            0 => ctx.protect_rtp(&mut buf, pkt.len()),
            1 => ctx.unprotect_rtp(&mut buf[..pkt.len()]),
            2 => ctx.protect_rtcp(&mut buf, pkt.len()),
            _ => ctx.unprotect_rtcp(&mut buf[..pkt.len()]),
        };
        match r {
            Ok(n) => hex(&buf[..n]),
            Err(e) => format!("ERR {e}"),
        }
    })
}

/// A small deterministic generator (splitmix64) so a failing run can be
/// repeated from its printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn check(cond: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(why()) }
}

/// RFC 3711 B.3 and RFC 6188 section 7.2: key derivation.
fn kdf_vectors() -> Result<(), String> {
    let k = SessionKeys::derive(
        Profile::Aes128CmHmacSha1_80,
        &unhex("E1F97A0D3E018BE0D64FA32C06DE4139")?,
        &unhex("0EC675AD498AFEEBB6960B3AABE6")?,
    )
    .map_err(|e| e.to_string())?;
    check(k.rtp.encryption == unhex("C61E7A93744F39EE10734AFE3FF7A087")?, || "RFC 3711 B.3 cipher key".into())?;
    check(k.rtp.salt == unhex("30CBBC08863D8C85D49DB34A9AE1")?, || "RFC 3711 B.3 cipher salt".into())?;
    check(k.rtp.auth == unhex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")?, || "RFC 3711 B.3 auth key".into())?;
    let k = SessionKeys::derive(
        Profile::Aes256CmHmacSha1_80,
        &unhex("f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6")?,
        &unhex("3b04803de51ee7c96423ab5b78d2")?,
    )
    .map_err(|e| e.to_string())?;
    check(k.rtp.encryption == unhex("5ba1064e30ec51613cad926c5a28ef731ec7fb397f70a960653caf06554cd8c4")?, || {
        "RFC 6188 7.2 cipher key".into()
    })?;
    check(k.rtp.salt == unhex("fa31791685ca444a9e07c6c64e93")?, || "RFC 6188 7.2 cipher salt".into())?;
    check(k.rtp.auth == unhex("fd9c32d39ed5fbb5a9dc96b30818454d1313dc05")?, || "RFC 6188 7.2 auth key".into())
}

/// RFC 3711 B.2 and RFC 6188 section 7.1: the first keystream blocks, seen
/// as the ciphertext of a zero payload (SSRC 0, ROC 0, SEQ 0).
fn keystream_vector(profile: Profile, key: &str, want: &str) -> Result<(), String> {
    let salt = unhex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD")?;
    let d = DirectionKeys { encryption: unhex(key)?, salt, auth: vec![0; 20] };
    let keys = SessionKeys { rtp: d.clone(), rtcp: d };
    let mut ctx = Context::from_session_keys(profile, Config::default(), &keys).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 12 + 48 + 10];
    buf[0] = 0x80;
    let n = ctx.protect_rtp(&mut buf, 60).map_err(|e| e.to_string())?;
    check(hex(&buf[12..60]) == want.to_lowercase(), || format!("keystream {}", hex(&buf[12..n])))
}

/// RFC 7714 sections 16 and 17 through the public API.
fn gcm_vectors() -> Result<(), String> {
    let rtp = "8040f17b8041f8d35501a0b247616c6c696120657374206f6d6e697320646976\
               69736120696e207061727465732074726573";
    let rtcp = "81c8000d4d6172734e5450314e54503252545020 0000042a0000e9304c756e61\
                deadbeefdeadbeefdeadbeefdeadbeefdeadbeef";
    let cases: [(Profile, bool, &str, &str, &str); 4] = [
        (
            Profile::AeadAes128Gcm,
            false,
            rtp,
            "16.1.1",
            "8040f17b8041f8d35501a0b2f24de3a3fb34de6cacba861c9d7e4bcabe633bd50d294e6f42a5f47a51c7d19b\
             36de3adf8833899d7f27beb16a9152cf765ee4390cce",
        ),
        (
            Profile::AeadAes256Gcm,
            false,
            rtp,
            "16.2.1",
            "8040f17b8041f8d35501a0b232b1de78a822fe12ef9f78fa332e33aab18012389a58e2f3b50b2a0276ffae0f\
             1ba63799b87b7aa3db36dfffd6b0f9bb7878d7a76c13",
        ),
        (
            Profile::AeadAes128Gcm,
            true,
            rtcp,
            "17.1",
            "81c8000d4d61727363e94885dcdab67ca727d7662f6b7e997ff5c0f76c06f32dc676a5f1730d6fda4ce09b46\
             86303ded0bb9275bc84aa45896cf4d2fc5abf87245d9eade800005d4",
        ),
        (
            Profile::AeadAes256Gcm,
            true,
            rtcp,
            "17.2",
            "81c8000d4d617273d50ae4d1f5ce5d304ba297e47d470c282c3ece5dbffe0a50a2eaa5c1110555be8415f658\
             c61de0476f1b6fad1d1eb30c4446839f57ff6f6cb26ac3be800005d4",
        ),
    ];
    for (profile, is_rtcp, plain, section, want) in cases {
        let key: Vec<u8> = (0..profile.master_key_len() as u8).collect();
        let d = DirectionKeys { encryption: key, salt: unhex("517569642070726f2071756f")?, auth: Vec::new() };
        let keys = SessionKeys { rtp: d.clone(), rtcp: d };
        let mut rx = Context::from_session_keys(profile, Config::default(), &keys).map_err(|e| e.to_string())?;
        let mut p = unhex(want)?;
        let n = if is_rtcp { rx.unprotect_rtcp(&mut p) } else { rx.unprotect_rtp(&mut p) }
            .map_err(|e| format!("RFC 7714 {section}: {e}"))?;
        check(p[..n] == unhex(plain)?[..], || format!("RFC 7714 {section}: decrypts to {}", hex(&p[..n])))?;
        if !is_rtcp {
            let mut tx = Context::from_session_keys(profile, Config::default(), &keys).map_err(|e| e.to_string())?;
            let plain = unhex(plain)?;
            let mut buf = vec![0u8; plain.len() + 16];
            buf[..plain.len()].copy_from_slice(&plain);
            let m = tx.protect_rtp(&mut buf, plain.len()).map_err(|e| e.to_string())?;
            check(buf[..m] == unhex(want)?[..], || format!("RFC 7714 {section}: encrypts to {}", hex(&buf[..m])))?;
        }
    }
    Ok(())
}

/// Runs a line-protocol peer over `input` and returns its output lines.
fn run_peer(mut cmd: Command, input: &str) -> Result<Vec<String>, String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {cmd:?}: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let input = input.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    writer.join().map_err(|_| "writer thread panicked")?.map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("{cmd:?} exited with {}: {}", out.status, String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect())
}

fn ours(ctx: &RunContext, op: &str, profile: &str, key: &str) -> Result<Command, String> {
    let exe = ctx.runner_exe.as_ref().ok_or("no runner executable")?;
    let mut c = Command::new(exe);
    c.args(["srtp", op, "--profile", profile, "--key", key]);
    Ok(c)
}

fn libsrtp(python: &Path, script: &Path, op: &str, profile: &str, key: &str) -> Command {
    let mut c = Command::new(python);
    c.arg(script).args([op, profile, key]);
    c
}

/// Random RTP packets of one SSRC with consecutive sequence numbers
/// starting `start`, with CSRCs, extensions and padding here and there.
fn rtp_stream(rng: &mut Rng, start: u16, count: usize) -> Vec<Vec<u8>> {
    let ssrc = rng.next() as u32;
    let mut ts = rng.next() as u32;
    (0..count)
        .map(|i| {
            let csrcs: Vec<u32> = (0..rng.below(4)).map(|_| rng.next() as u32).collect();
            let ext_len = 1 + rng.below(4) as usize;
            let ext_data = rng.bytes(ext_len);
            let exts = [rtc_srtp::Extension { id: 1 + rng.below(14) as u8, data: &ext_data }];
            let payload_len = rng.below(1200) as usize;
            let payload = rng.bytes(payload_len);
            ts = ts.wrapping_add(960);
            let h = RtpHeader {
                marker: rng.below(2) == 0,
                payload_type: 96 + rng.below(32) as u8,
                sequence_number: start.wrapping_add(i as u16),
                timestamp: ts,
                ssrc,
                csrcs: &csrcs,
                extensions: if rng.below(2) == 0 { &exts } else { &[] },
            };
            let padding = if rng.below(4) == 0 { 1 + rng.below(8) as u8 } else { 0 };
            let mut buf = vec![0u8; 1500];
            let n = h.write(&payload, padding, &mut buf).unwrap_or(0);
            buf.truncate(n);
            buf
        })
        .collect()
}

/// Random compound RTCP packets (SR + SDES, RR + PLI, ...) of one sender.
fn rtcp_stream(rng: &mut Rng, count: usize) -> Vec<Vec<u8>> {
    let ssrc = rng.next() as u32;
    (0..count)
        .map(|i| {
            let mut buf = vec![0u8; 1500];
            let mut w = Writer::new(&mut buf);
            let blocks: Vec<ReportBlock> = (0..rng.below(3))
                .map(|_| ReportBlock {
                    ssrc: rng.next() as u32,
                    fraction_lost: rng.next() as u8,
                    cumulative_lost: rng.below(1000) as i32,
                    highest_seq: rng.next() as u32,
                    jitter: rng.below(10_000) as u32,
                    last_sr: rng.next() as u32,
                    delay_since_last_sr: rng.below(1 << 20) as u32,
                })
                .collect();
            let ok = if i % 2 == 0 {
                let info = SenderInfo {
                    ntp_time: rng.next(),
                    rtp_time: rng.next() as u32,
                    packet_count: i as u32,
                    octet_count: rng.next() as u32,
                };
                w.sender_report(ssrc, &info, &blocks).is_ok()
            } else {
                w.receiver_report(ssrc, &blocks).is_ok() && w.pli(ssrc, rng.next() as u32).is_ok()
            };
            let cname = format!("{:016x}", rng.next());
            let ok = ok && w.sdes_cname(ssrc, cname.as_bytes()).is_ok();
            let n = if ok { w.len() } else { 0 };
            buf.truncate(n);
            buf
        })
        .collect()
}

/// One profile against libsrtp: protect with both and compare bytes, then
/// unprotect the stream plus tampered and replayed copies with both.
fn cross_check(
    ctx: &RunContext,
    python: &Path,
    script: &Path,
    profile: &str,
    rtcp: bool,
    rng: &mut Rng,
) -> Result<(), String> {
    let p = PROFILES.iter().find(|(n, _)| *n == profile).map(|(_, p)| *p).ok_or("profile")?;
    let key_len = p.master_key_len() + p.master_salt_len();
    let key = hex(&rng.bytes(key_len));
    let plain = if rtcp {
        rtcp_stream(rng, 40)
    } else {
        // Start just below the wrap so the stream rolls the ROC over.
        let start = 65535 - rng.below(40) as u16;
        rtp_stream(rng, start, 100)
    };
    let input: String = plain.iter().map(|p| hex(p) + "\n").collect();
    let (pop, uop) = if rtcp { ("protect-rtcp", "unprotect-rtcp") } else { ("protect", "unprotect") };
    let a = run_peer(ours(ctx, pop, profile, &key)?, &input)?;
    let b = run_peer(libsrtp(python, script, pop, profile, &key), &input)?;
    check(a.len() == plain.len() && b.len() == plain.len(), || {
        format!("{} and {} output lines for {} packets", a.len(), b.len(), plain.len())
    })?;
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        check(x == y && !x.starts_with("ERR"), || format!("{pop} packet {i}: ours {x} libsrtp {y}"))?;
    }
    // Unprotect: the protected stream in a shuffled-but-windowed order, then a
    // replay of each of several packets and a tampered copy of others.
    // The first packet stays first: a receiver's rollover counter starts at
    // zero, so a stream must not open with a packet from after the wrap.
    let mut protected: Vec<String> = a.clone();
    for i in (2..protected.len()).step_by(7) {
        protected.swap(i - 1, i);
    }
    let mut order: Vec<(String, Option<usize>)> = Vec::new();
    let mut expect_ok = 0;
    for (i, line) in protected.iter().enumerate() {
        order.push((line.clone(), Some(i)));
        expect_ok += 1;
        if i % 9 == 4 {
            order.push((line.clone(), None)); // replay
        }
        if i % 11 == 3 {
            let mut bytes = unhex(line)?;
            let at = rng.below(bytes.len() as u64) as usize;
            bytes[at] ^= 1 << rng.below(8);
            order.push((hex(&bytes), None)); // tampered
        }
    }
    let input: String = order.iter().map(|(l, _)| l.clone() + "\n").collect();
    let x = run_peer(ours(ctx, uop, profile, &key)?, &input)?;
    let y = run_peer(libsrtp(python, script, uop, profile, &key), &input)?;
    check(x.len() == order.len() && y.len() == order.len(), || "unprotect output line count".into())?;
    let mut accepted = 0;
    for (i, ((line, original), (ox, oy))) in order.iter().zip(x.iter().zip(&y)).enumerate() {
        let (ex, ey) = (ox.starts_with("ERR"), oy.starts_with("ERR"));
        check(ex == ey, || format!("{uop} line {i} {line}: ours {ox}, libsrtp {oy}"))?;
        check(ex || ox == oy, || format!("{uop} line {i}: ours {ox}, libsrtp {oy}"))?;
        check(ex != original.is_some(), || {
            format!("{uop} line {i} (packet {original:?}, {} octets): ours {ox}, libsrtp {oy}", line.len() / 2)
        })?;
        if !ex {
            accepted += 1;
        }
    }
    check(accepted == expect_ok, || format!("{accepted} packets accepted, want {expect_ok}"))?;
    // What was accepted is the plaintext that went in.
    let mut want: Vec<String> = plain.iter().map(|p| hex(p)).collect();
    for i in (2..want.len()).step_by(7) {
        want.swap(i - 1, i);
    }
    let got: Vec<&String> = x.iter().filter(|l| !l.starts_with("ERR")).collect();
    check(got.iter().zip(&want).all(|(g, w)| *g == w), || "unprotected packets differ from the originals".into())
}

/// The subcommand end to end: protect then unprotect through two processes,
/// bad lines answered with `ERR`, state carried from line to line.
fn cli_round_trip(ctx: &RunContext, rng: &mut Rng) -> Result<(), String> {
    for (name, p) in PROFILES {
        let key_len = p.master_key_len() + p.master_salt_len();
        let key = hex(&rng.bytes(key_len));
        let plain = rtp_stream(rng, 65530, 12);
        let mut input: String = plain.iter().map(|p| hex(p) + "\n").collect();
        input.push_str("zz\n8000\n");
        let out = run_peer(ours(ctx, "protect", name, &key)?, &input)?;
        check(out.len() == plain.len() + 2, || format!("{name}: {} lines", out.len()))?;
        check(out[plain.len()..].iter().all(|l| l.starts_with("ERR ")), || format!("{name}: bad lines accepted"))?;
        let mut back: String = out[..plain.len()].iter().map(|l| l.clone() + "\n").collect();
        back.push_str(&out[3]); // a replay
        back.push('\n');
        let out = run_peer(ours(ctx, "unprotect", name, &key)?, &back)?;
        for (i, p) in plain.iter().enumerate() {
            check(out[i] == hex(p), || format!("{name}: packet {i} came back as {}", out[i]))?;
        }
        check(out.last().is_some_and(|l| l.starts_with("ERR")), || format!("{name}: replay accepted"))?;
    }
    let bad = run_peer(ours(ctx, "protect", "aes128cm80", "00")?, "");
    check(bad.is_err(), || "a short key was accepted".into())
}

fn run(ctx: &RunContext) -> Vec<CaseResult> {
    let seed = std::env::var("RTC_SRTP_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    });
    let mut rng = Rng(seed);
    let mut out = vec![
        CaseResult::from_result("rfc3711 B.3 + rfc6188 7.2 key derivation", kdf_vectors()),
        CaseResult::from_result(
            "rfc3711 B.2 AES-CM keystream",
            keystream_vector(
                Profile::Aes128CmHmacSha1_80,
                "2B7E151628AED2A6ABF7158809CF4F3C",
                "E03EAD0935C95E80E166B16DD92B4EB4D23513162B02D0F72A43A2FE4A5F97AB41E95B3BB0A2E8DD477901E4FCA894C0",
            ),
        ),
        CaseResult::from_result(
            "rfc6188 7.1 AES-256-CM keystream",
            keystream_vector(
                Profile::Aes256CmHmacSha1_80,
                "57f82fe3613fd170a85ec93c40b1f0922ec4cb0dc025b58272147cc438944a98",
                "92bdd28a93c3f52511c677d08b5515a49da71b2378a854f67050756ded165bac63c4868b7096d88421b563b8c94c9a31",
            ),
        ),
        CaseResult::from_result("rfc7714 16-17 AES-GCM RTP and RTCP", gcm_vectors()),
        CaseResult::from_result("cli round trip, every profile", cli_round_trip(ctx, &mut rng)),
    ];
    let script = ctx.fixture("srtp_libsrtp.py");
    for profile in LIBSRTP_PROFILES {
        for rtcp in [false, true] {
            let name = format!("libsrtp {profile} {} (seed {seed})", if rtcp { "rtcp" } else { "rtp" });
            let r = ctx.require_python().and_then(|python| cross_check(ctx, python, &script, profile, rtcp, &mut rng));
            out.push(CaseResult::from_result(name, r));
        }
    }
    out
}
