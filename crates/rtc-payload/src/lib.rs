//! rtc-payload (in progress).
#![forbid(unsafe_code)]
