//! rtc-dtls (in progress).
#![forbid(unsafe_code)]
