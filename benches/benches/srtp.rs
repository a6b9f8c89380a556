//! SRTP protect and RTP parsing, side by side in one run: rtc-srtp, the raw
//! primitives on the same bytes (the floor any SRTP can reach), and
//! webrtc-srtp 0.17 / the webrtc-rs `rtp` crate.
//!
//! `cargo bench --bench srtp` in `benches/`; figures in docs/performance.md.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aes::cipher::{InnerIvInit, KeyInit, StreamCipher, StreamCipherCoreWrapper};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use rtc_srtp::{Context, Profile, RtpHeader, RtpPacket};
use sha1::Sha1;
use webrtc_util::marshal::Unmarshal;

const KEY16: [u8; 16] = [0x11; 16];
const SALT14: [u8; 14] = [0x22; 14];
const SALT12: [u8; 12] = [0x22; 12];

fn packet(payload_len: usize) -> Vec<u8> {
    let payload = vec![0xabu8; payload_len];
    let h = RtpHeader {
        payload_type: 111,
        sequence_number: 4242,
        timestamp: 96_000,
        ssrc: 0x1234_5678,
        ..Default::default()
    };
    let mut buf = vec![0u8; payload_len + 64];
    let n = h.write(&payload, 0, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn allocations(label: &str, mut f: impl FnMut()) {
    f(); // warm up: per-SSRC state is created on first use
    let info = allocation_counter::measure(|| {
        for _ in 0..100 {
            f();
        }
    });
    eprintln!("allocations per call, {label}: {}", info.count_total as f64 / 100.0);
}

fn protect_gcm(c: &mut Criterion) {
    for len in [1200usize, 160] {
        let plain = packet(len);
        let n = plain.len();
        let mut g = c.benchmark_group(format!("protect_gcm128/{len}"));
        g.throughput(Throughput::Bytes(len as u64));

        // Raw ring AES-128-GCM seal of the payload with the header as AAD.
        let key = ring::aead::LessSafeKey::new(ring::aead::UnboundKey::new(&ring::aead::AES_128_GCM, &KEY16).unwrap());
        let mut buf = plain.clone();
        buf.resize(n + 16, 0);
        g.bench_function("raw ring seal", |b| {
            b.iter(|| {
                let (head, rest) = buf.split_at_mut(12);
                let nonce = ring::aead::Nonce::assume_unique_for_key([7; 12]);
                let tag =
                    key.seal_in_place_separate_tag(nonce, ring::aead::Aad::from(&*head), &mut rest[..len]).unwrap();
                rest[len..len + 16].copy_from_slice(tag.as_ref());
                black_box(&buf);
            })
        });

        let mut ours = Context::new(Profile::AeadAes128Gcm, &KEY16, &SALT12).unwrap();
        let mut buf = plain.clone();
        buf.resize(n + 16, 0);
        allocations(&format!("rtc-srtp gcm128 protect {len}"), || {
            ours.protect_rtp(&mut buf, n).unwrap();
        });
        g.bench_function("rtc-srtp", |b| b.iter(|| black_box(ours.protect_rtp(black_box(&mut buf), n).unwrap())));

        let mut peer = webrtc_srtp::context::Context::new(
            &KEY16,
            &SALT12,
            webrtc_srtp::protection_profile::ProtectionProfile::AeadAes128Gcm,
            None,
            None,
        )
        .unwrap();
        allocations(&format!("webrtc-srtp gcm128 protect {len}"), || {
            black_box(peer.encrypt_rtp(&plain).unwrap());
        });
        g.bench_function("webrtc-srtp", |b| b.iter(|| black_box(peer.encrypt_rtp(black_box(&plain)).unwrap())));
        g.finish();
    }
}

type Aes128Ctr<'a> = StreamCipherCoreWrapper<ctr::CtrCore<&'a aes::Aes128, ctr::flavors::Ctr128BE>>;

fn protect_cm80(c: &mut Criterion) {
    for len in [1200usize, 160] {
        let plain = packet(len);
        let n = plain.len();
        let mut g = c.benchmark_group(format!("protect_cm80/{len}"));
        g.throughput(Throughput::Bytes(len as u64));

        // Raw AES-128-CTR over the payload, then HMAC-SHA1 (keyed once) over
        // the packet and the ROC, truncated to 80 bits.
        let aes = aes::Aes128::new(&KEY16.into());
        let mac = <Hmac<Sha1> as KeyInit>::new_from_slice(&[0x33; 20]).unwrap();
        let mut buf = plain.clone();
        buf.resize(n + 10, 0);
        g.bench_function("raw ctr+hmac", |b| {
            b.iter(|| {
                let iv = [9u8; 16];
                Aes128Ctr::from_core(ctr::CtrCore::inner_iv_init(&aes, &iv.into())).apply_keystream(&mut buf[12..n]);
                let mut m = mac.clone();
                m.update(&buf[..n]);
                m.update(&[0, 0, 0, 0]);
                let tag = m.finalize().into_bytes();
                buf[n..n + 10].copy_from_slice(&tag[..10]);
                black_box(&buf);
            })
        });

        let mut ours = Context::new(Profile::Aes128CmHmacSha1_80, &KEY16, &SALT14).unwrap();
        let mut buf = plain.clone();
        buf.resize(n + 10, 0);
        allocations(&format!("rtc-srtp cm80 protect {len}"), || {
            ours.protect_rtp(&mut buf, n).unwrap();
        });
        g.bench_function("rtc-srtp", |b| b.iter(|| black_box(ours.protect_rtp(black_box(&mut buf), n).unwrap())));

        let mut peer = webrtc_srtp::context::Context::new(
            &KEY16,
            &SALT14,
            webrtc_srtp::protection_profile::ProtectionProfile::Aes128CmHmacSha1_80,
            None,
            None,
        )
        .unwrap();
        allocations(&format!("webrtc-srtp cm80 protect {len}"), || {
            black_box(peer.encrypt_rtp(&plain).unwrap());
        });
        g.bench_function("webrtc-srtp", |b| b.iter(|| black_box(peer.encrypt_rtp(black_box(&plain)).unwrap())));
        g.finish();
    }
}

fn rtp_parse(c: &mut Criterion) {
    // A typical audio packet: one CSRC, two one-byte header extensions.
    let exts = [rtc_srtp::Extension { id: 1, data: &[0x80] }, rtc_srtp::Extension { id: 3, data: &[1, 2, 3] }];
    let h = RtpHeader {
        payload_type: 111,
        sequence_number: 1,
        timestamp: 2,
        ssrc: 3,
        csrcs: &[4],
        extensions: &exts,
        ..Default::default()
    };
    let mut buf = vec![0u8; 300];
    let n = h.write(&[0x55; 160], 0, &mut buf).unwrap();
    buf.truncate(n);
    let mut g = c.benchmark_group("rtp_parse");
    let ours = |b: &[u8]| {
        let p = RtpPacket::new_checked(b).unwrap();
        (p.ssrc(), p.sequence_number(), p.payload().len(), p.extensions().count())
    };
    allocations("rtc-srtp rtp parse", || {
        black_box(ours(&buf));
    });
    g.bench_function(BenchmarkId::new("rtc-srtp", n), |b| b.iter(|| black_box(ours(black_box(&buf)))));
    let peer = |b: &[u8]| {
        let mut r = b;
        let p = rtp::packet::Packet::unmarshal(&mut r).unwrap();
        (p.header.ssrc, p.header.sequence_number, p.payload.len(), p.header.extensions.len())
    };
    allocations("rtp crate parse", || {
        black_box(peer(&buf));
    });
    g.bench_function(BenchmarkId::new("rtp crate", n), |b| b.iter(|| black_box(peer(black_box(&buf)))));
    // A plain packet: 12-byte header, no CSRC, no extension.
    let plain = packet(160);
    allocations("rtp crate parse, plain header", || {
        black_box(peer(&plain));
    });
    g.bench_function(BenchmarkId::new("rtc-srtp plain", plain.len()), |b| {
        b.iter(|| black_box(ours(black_box(&plain))))
    });
    g.bench_function(BenchmarkId::new("rtp crate plain", plain.len()), |b| {
        b.iter(|| black_box(peer(black_box(&plain))))
    });
    g.finish();
}

fn packet_seq(payload_len: usize, seq: u16) -> Vec<u8> {
    let mut p = packet(payload_len);
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p
}

/// Unprotect: a pool of 4096 packets protected with consecutive sequence
/// numbers, each unprotected once by a fresh receiver (a second time would be
/// a replay). rtc-srtp works in place, so its loop includes copying each
/// packet into a work buffer; webrtc-srtp reads the packet and returns a new
/// buffer. Receiver creation is outside the timed loop.
fn unprotect(c: &mut Criterion) {
    let cases = [
        ("gcm128", Profile::AeadAes128Gcm, webrtc_srtp::protection_profile::ProtectionProfile::AeadAes128Gcm),
        ("cm80", Profile::Aes128CmHmacSha1_80, webrtc_srtp::protection_profile::ProtectionProfile::Aes128CmHmacSha1_80),
    ];
    for (name, profile, peer_profile) in cases {
        let salt = &[0x22u8; 14][..profile.master_salt_len()];
        for len in [1200usize, 160] {
            let mut tx = Context::new(profile, &KEY16, salt).unwrap();
            let pool: Vec<Vec<u8>> = (0..4096u16)
                .map(|seq| {
                    let mut p = packet_seq(len, seq);
                    let n = p.len();
                    p.resize(n + 16, 0);
                    let m = tx.protect_rtp(&mut p, n).unwrap();
                    p.truncate(m);
                    p
                })
                .collect();
            let mut g = c.benchmark_group(format!("unprotect_{name}/{len}"));
            g.throughput(Throughput::Bytes(len as u64));
            g.bench_function("rtc-srtp", |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    let mut done = 0u64;
                    let mut work = vec![0u8; 1500];
                    while done < iters {
                        let mut rx = Context::new(profile, &KEY16, salt).unwrap();
                        let chunk = (iters - done).min(pool.len() as u64) as usize;
                        let t = Instant::now();
                        for p in &pool[..chunk] {
                            let w = &mut work[..p.len()];
                            w.copy_from_slice(p);
                            black_box(rx.unprotect_rtp(w).unwrap());
                        }
                        total += t.elapsed();
                        done += chunk as u64;
                    }
                    total
                })
            });
            g.bench_function("webrtc-srtp", |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    let mut done = 0u64;
                    while done < iters {
                        let mut rx =
                            webrtc_srtp::context::Context::new(&KEY16, salt, peer_profile, None, None).unwrap();
                        let chunk = (iters - done).min(pool.len() as u64) as usize;
                        let t = Instant::now();
                        for p in &pool[..chunk] {
                            black_box(rx.decrypt_rtp(p).unwrap());
                        }
                        total += t.elapsed();
                        done += chunk as u64;
                    }
                    total
                })
            });
            g.finish();
        }
    }
}

criterion_group!(benches, protect_gcm, protect_cm80, unprotect, rtp_parse);
criterion_main!(benches);
