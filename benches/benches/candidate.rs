//! Candidate parsing, rtc-candidate side by side with webrtc-ice in one run.
//!
//! Run: `cd benches && cargo bench --bench candidate`
//! Besides criterion's timings it prints the heap allocations per parse of
//! each implementation (counted, not timed).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

const CHROME: &str = "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 10.0.0.2 rport 46154 generation 0 ufrag EEtu network-id 3 network-cost 10";

fn allocations(f: impl FnOnce()) -> u64 {
    allocation_counter::measure(f).count_total
}

/// Times `a` and `b` in alternating rounds of `n` calls and returns the
/// median of the per-round ratios time(a)/time(b): on a shared, noisy machine
/// both see the same load, so the ratio is steadier than either time.
fn interleaved_ratio(rounds: usize, n: usize, mut a: impl FnMut(), mut b: impl FnMut()) -> (f64, f64, f64) {
    let mut ratios = Vec::with_capacity(rounds);
    let (mut ta, mut tb) = (0.0, 0.0);
    for _ in 0..rounds {
        let t = std::time::Instant::now();
        for _ in 0..n {
            a();
        }
        let da = t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        for _ in 0..n {
            b();
        }
        let db = t.elapsed().as_secs_f64();
        ratios.push(da / db);
        ta += da;
        tb += db;
    }
    ratios.sort_by(f64::total_cmp);
    let per_call = |t: f64| t / (rounds * n) as f64 * 1e9;
    (ratios[rounds / 2], per_call(ta), per_call(tb))
}

fn bench(c: &mut Criterion) {
    // webrtc-ice takes the line without the `candidate:` prefix.
    let bare = CHROME.strip_prefix("candidate:").unwrap();
    let ours = rtc_candidate::Candidate::parse(CHROME).unwrap();
    assert_eq!(ours.to_string(), CHROME, "full fidelity");
    let theirs = webrtc_ice::candidate::candidate_base::unmarshal_candidate(bare).unwrap();
    let _ = &theirs;

    let a_ours = allocations(|| {
        black_box(rtc_candidate::Candidate::parse(black_box(CHROME)).unwrap());
    });
    let a_theirs = allocations(|| {
        black_box(webrtc_ice::candidate::candidate_base::unmarshal_candidate(black_box(bare)).unwrap());
    });
    println!("allocations per parse: rtc-candidate {a_ours}, webrtc-ice {a_theirs}");
    let (ratio, ns_ours, ns_theirs) = interleaved_ratio(
        201,
        2000,
        || drop(black_box(rtc_candidate::Candidate::parse(black_box(CHROME)))),
        || drop(black_box(webrtc_ice::candidate::candidate_base::unmarshal_candidate(black_box(bare)))),
    );
    println!(
        "interleaved: rtc-candidate {ns_ours:.0} ns, webrtc-ice {ns_theirs:.0} ns per parse; median ratio {ratio:.3}"
    );

    // Each routine passes its result through `std::hint::black_box` and drops
    // it, returning `()`: criterion 0.5 without its `real_blackbox` feature
    // copies a returned value with a volatile read, which adds a cost that
    // grows with the size of the result rather than with the parse.
    let mut g = c.benchmark_group("candidate_parse_chrome_srflx");
    g.bench_function("rtc-candidate", |b| {
        b.iter(|| drop(black_box(rtc_candidate::Candidate::parse(black_box(CHROME)).unwrap())))
    });
    g.bench_function("webrtc-ice", |b| {
        b.iter(|| drop(black_box(webrtc_ice::candidate::candidate_base::unmarshal_candidate(black_box(bare)).unwrap())))
    });
    g.finish();

    let mut g = c.benchmark_group("candidate_format_chrome_srflx");
    g.bench_function("rtc-candidate", |b| b.iter(|| drop(black_box(black_box(&ours).to_string()))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
