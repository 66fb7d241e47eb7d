//! The EMV MPM codec: any payload decodes (and its fields can be read) or is refused with
//! an error, never a crash.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(decoded) = saoma_core::emv::decode(text) else { return };
    let _ = decoded.saoma_merchant_id();
    let _ = decoded.reference();
    let _ = decoded.amount();
});
