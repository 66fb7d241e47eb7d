//! The EMV MPM codec: any payload decodes (and its fields can be read) or is refused with
//! an error, never a crash; and what decodes re-encodes, through the codec's own encoder,
//! to a payload that decodes to the same fields.
//!
//! The round trip is identity but for one thing: the decoder accepts a CRC written in
//! lower case (with a warning) and the encoder writes it in upper case. So the property is
//! that re-encoding gives the payload with its CRC upper-cased, and that decodes to the
//! same fields (the CRC's value upper-cased) with no warning the original did not have.
#![no_main]
use libfuzzer_sys::fuzz_target;
use saoma_core::emv::{self, Field};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(decoded) = emv::decode(text) else { return };
    let _ = decoded.saoma_merchant_id();
    let _ = decoded.reference();
    let _ = decoded.amount();
    let _ = decoded.signing_input();
    let (crc, fields) = decoded.fields.split_last().expect("a decoded payload ends with its CRC");
    assert_eq!(crc.tag, "63", "a decoded payload ends with its CRC");
    let again = emv::encode(fields).expect("decoded fields encode");
    // The CRC's 4 characters are ASCII hex (they matched the computed one), so this split
    // falls on a character boundary.
    let (body, crc_text) = text.split_at(text.len() - 4);
    assert_eq!(again, format!("{body}{}", crc_text.to_ascii_uppercase()), "re-encoding keeps the payload");
    let redecoded = emv::decode(&again).expect("a re-encoded payload decodes");
    let mut expected = fields.to_vec();
    expected.push(Field::text("63", crc_text.to_ascii_uppercase()));
    assert_eq!(redecoded.fields, expected, "a re-encoded payload decodes to the same fields");
    assert!(redecoded.warnings.iter().all(|w| decoded.warnings.contains(w)), "no new warning");
});
