#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| rtc_conformance::fuzz::turn_stream_deframe(data));
