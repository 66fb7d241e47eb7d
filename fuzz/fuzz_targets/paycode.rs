//! The payment-code parser: any string is a code or a refusal; a code that parses keeps
//! its digits.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(saoma_core::paycode::PaymentCode::Online(code)) = saoma_core::paycode::parse(text) {
        assert_eq!(code, text, "an online code is its own digits");
    }
});
