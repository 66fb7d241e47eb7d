//! The RFC 9421 signature-input parser: any pair of header values is a signature or a
//! refusal, never a crash.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (input, signature) = text.split_once('\n').unwrap_or((text, "sig1=:AAAA:"));
    let _ = saoma_api::signing::parse_received(input, signature);
});
