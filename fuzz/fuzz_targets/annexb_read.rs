#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| rtc_conformance::fuzz::annexb_read(data));
