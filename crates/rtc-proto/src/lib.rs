//! rtc-proto (in progress).
#![forbid(unsafe_code)]
