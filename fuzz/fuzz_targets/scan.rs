//! The scanner pipeline: whatever a camera or a wedge scanner hands `saoma qr decode` and
//! `/v1/qr/decode` is classified or refused, never a crash.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = saoma_core::scan::classify(text);
        let _ = saoma_core::scan::receive_token(text);
    }
});
