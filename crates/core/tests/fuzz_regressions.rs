//! Replays the fuzz targets' seed corpus and every input that ever crashed one
//! (fuzz/corpus, fuzz/regressions) through the scanner, the EMV codec and the payment-code
//! parser, on the stable toolchain: each is read or refused, never a panic; and what the
//! EMV codec decodes re-encodes to the same payload (its CRC in upper case).

use saoma_core::emv;
use std::path::Path;

/// Every input file of a target, seeds and regressions.
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut out = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else { continue };
        for e in entries.flatten() {
            out.push((e.path().display().to_string(), std::fs::read(e.path()).unwrap()));
        }
    }
    assert!(!out.is_empty(), "no seed inputs for {target}");
    out
}

#[test]
fn the_scanner_reads_or_refuses_every_known_input() {
    for (name, bytes) in inputs("scan") {
        let text = String::from_utf8_lossy(&bytes);
        let _ = saoma_core::scan::classify(&text);
        let _ = saoma_core::scan::receive_token(&text);
        eprintln!("scan: {name} ok");
    }
}

/// The emv target's round trip: the decoded fields (less the CRC) encode to the payload
/// with its CRC upper-cased, which decodes to the same fields.
fn round_trip(text: &str, decoded: &emv::MpmPayload) {
    let (crc, fields) = decoded.fields.split_last().unwrap();
    assert_eq!(crc.tag, "63");
    let again = emv::encode(fields).unwrap();
    let (body, crc_text) = text.split_at(text.len() - 4);
    assert_eq!(again, format!("{body}{}", crc_text.to_ascii_uppercase()));
    let mut expected = fields.to_vec();
    expected.push(emv::Field::text("63", crc_text.to_ascii_uppercase()));
    assert_eq!(emv::decode(&again).unwrap().fields, expected);
}

#[test]
fn the_emv_codec_reads_or_refuses_every_known_input() {
    let mut decoded = 0;
    for (name, bytes) in inputs("emv") {
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(p) = emv::decode(&text) {
            let _ = (p.saoma_merchant_id(), p.reference(), p.amount());
            round_trip(&text, &p);
            eprintln!("emv: {name} decodes and re-encodes");
            decoded += 1;
        }
    }
    assert!(decoded >= 5, "the real payloads of the seed corpus decode");
}

#[test]
fn the_payment_code_parser_reads_or_refuses_every_known_input() {
    for (_, bytes) in inputs("paycode") {
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(saoma_core::paycode::PaymentCode::Online(code)) = saoma_core::paycode::parse(&text) {
            assert_eq!(code, text);
        }
    }
}
