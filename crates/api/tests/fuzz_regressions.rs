//! Replays the fuzz targets' seed corpus and every input that ever crashed one
//! (fuzz/corpus, fuzz/regressions) through the signature-input parser and the receipt
//! verifier and the QR image reader, on the stable toolchain: each is read or refused,
//! never a panic.

use std::path::Path;

fn inputs(target: &str) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut out = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else { continue };
        for e in entries.flatten() {
            out.push(std::fs::read(e.path()).unwrap());
        }
    }
    assert!(!out.is_empty(), "no seed inputs for {target}");
    out
}

#[test]
fn the_signature_parser_reads_or_refuses_every_known_input() {
    let mut parsed = 0;
    for bytes in inputs("signature") {
        let text = String::from_utf8_lossy(&bytes);
        let (input, signature) = text.split_once('\n').unwrap_or((&text, "sig1=:AAAA:"));
        if saoma_api::signing::parse_received(input, signature).is_ok() {
            parsed += 1;
        }
    }
    assert!(parsed >= 1, "the real Python signature of the seed corpus parses");
}

#[test]
fn the_receipt_verifier_refuses_every_forged_input() {
    let public = saoma_api::receipt::public_key(&[7; 32]);
    let jwks = serde_json::json!({"keys": [saoma_api::receipt::jwk(&public)]});
    for bytes in inputs("receipt") {
        let verdict = saoma_api::receipt::verify(&String::from_utf8_lossy(&bytes), &jwks);
        assert!(verdict.is_err(), "no seed is a receipt signed by the test key");
    }
}

#[test]
fn the_qr_image_reader_reads_or_refuses_every_known_input() {
    let mut read = Vec::new();
    for bytes in inputs("qr_image") {
        if let Ok(text) = saoma_api::qr_image::qr_text(&bytes) {
            read.push(text);
        }
    }
    assert!(read.iter().any(|t| t == "661234567890123452"), "the seed QR codes read back: {read:?}");
}

#[test]
fn an_image_that_claims_to_be_huge_is_refused_before_decoding() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/qr_image/claims-huge.png");
    let err = saoma_api::qr_image::qr_text(&std::fs::read(root).unwrap()).unwrap_err();
    assert!(matches!(err, saoma_api::qr_image::QrImageError::TooLarge), "{err}");
}
