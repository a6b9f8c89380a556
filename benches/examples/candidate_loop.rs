//! Parses the Chrome srflx line N times with one implementation, for
//! instruction counting under `valgrind --tool=callgrind`:
//! `cargo build --release --example candidate_loop` then
//! `valgrind --tool=callgrind target/release/examples/candidate_loop rtc|rtc-format|webrtc 100000`.
use std::hint::black_box;

const CHROME: &str = "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 10.0.0.2 rport 46154 generation 0 ufrag EEtu network-id 3 network-cost 10";

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "rtc".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let bare = CHROME.strip_prefix("candidate:").unwrap_or(CHROME);
    let parsed = rtc_candidate::Candidate::parse(CHROME).expect("the Chrome line parses");
    for _ in 0..n {
        match which.as_str() {
            "rtc" => drop(black_box(rtc_candidate::Candidate::parse(black_box(CHROME)))),
            "rtc-format" => drop(black_box(black_box(&parsed).to_string())),
            _ => drop(black_box(webrtc_ice::candidate::candidate_base::unmarshal_candidate(black_box(bare)))),
        }
    }
}
