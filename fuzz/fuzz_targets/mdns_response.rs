#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| rtc_conformance::fuzz::mdns_response(data));
