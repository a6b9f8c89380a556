//! Bodies of the cargo-fuzz targets in `fuzz/fuzz_targets/`.
//!
//! Each target there is one line calling a function here, so the corpus replay
//! test (`tests/fuzz_corpus.rs`) checks exactly what the fuzzer checks, on stable.

/// A fuzz target's body: takes the fuzzer's bytes, panics only on a bug.
pub type Body = fn(&[u8]);

/// Every fuzz target by name, with its body.
pub const TARGETS: &[(&str, Body)] = &[("candidate_parse", candidate_parse)];

/// `candidate_parse`: any bytes as a candidate line. Parsing must not panic; a
/// line that parses must format to a line that parses to the same candidate,
/// and its JSON dictionary must read back to the same dictionary (JSON does not
/// carry the order of extension attributes, so the candidates may differ in it).
pub fn candidate_parse(data: &[u8]) {
    use rtc_candidate::Candidate;
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(c) = Candidate::parse(text) else { return };
    let line = c.to_string();
    let again = Candidate::parse(&line).expect("formatted candidate must parse");
    assert_eq!(c, again, "round trip through {line:?}");
    let json = serde_json::to_value(&c).expect("serialize");
    let back: Candidate = serde_json::from_value(json.clone()).expect("deserialize own JSON");
    assert_eq!(serde_json::to_value(&back).expect("serialize"), json, "JSON round trip");
    assert_eq!(back.extensions.len(), c.extensions.len());
    Candidate::parse(&back.to_string()).expect("candidate from JSON must format to a valid line");
}
