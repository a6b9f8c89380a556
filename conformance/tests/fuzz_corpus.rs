//! Replays every cargo-fuzz corpus under `fuzz/corpus/` through the same body
//! the fuzz target runs, so CI checks the corpora on stable Rust.

use std::path::Path;

use rtc_conformance::fuzz::TARGETS;

fn fuzz_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz"))
}

#[test]
fn every_target_has_a_body_and_a_corpus() {
    let dir = fuzz_dir().join("fuzz_targets");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("fuzz/fuzz_targets")
        .filter_map(|e| e.ok()?.path().file_stem()?.to_str().map(str::to_owned))
        .collect();
    names.sort();
    let mut bodies: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    bodies.sort();
    assert_eq!(names, bodies, "fuzz/fuzz_targets and rtc_conformance::fuzz::TARGETS must list the same targets");
}

#[test]
fn replay_corpora() {
    let mut total = 0;
    for (name, body) in TARGETS {
        let dir = fuzz_dir().join("corpus").join(name);
        let entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        assert!(!entries.is_empty(), "corpus for {name} is empty");
        for path in entries {
            let data = std::fs::read(&path).expect("read corpus file");
            let result = std::panic::catch_unwind(|| body(&data));
            assert!(result.is_ok(), "{name}: {} panicked", path.display());
            total += 1;
        }
    }
    println!("replayed {total} corpus inputs");
}
