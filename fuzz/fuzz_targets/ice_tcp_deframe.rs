#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| rtc_conformance::fuzz::ice_tcp_deframe(data));
