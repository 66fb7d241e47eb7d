//! Replays the fuzz targets' seed corpus and every input that ever crashed one
//! (fuzz/corpus, fuzz/regressions) through the signature-input parser, the receipt
//! verifier, the QR image reader and the scanner's signature check, on the stable
//! toolchain: each is read or refused, never a panic; the receipts and codes really signed
//! by the fuzz targets' key verify, and nothing else does.

use std::path::Path;

/// Every input file of a target, seeds and regressions, by file name.
fn named_inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut out = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else { continue };
        for e in entries.flatten() {
            out.push((
                format!("{dir}/{target}/{}", e.file_name().display()),
                std::fs::read(e.path()).unwrap(),
            ));
        }
    }
    assert!(!out.is_empty(), "no seed inputs for {target}");
    out
}

fn inputs(target: &str) -> Vec<Vec<u8>> {
    named_inputs(target).into_iter().map(|(_, bytes)| bytes).collect()
}

/// The key set of the fuzz targets: the public key of `[7; 32]`.
fn fuzz_jwks() -> serde_json::Value {
    let public = saoma_api::receipt::public_key(&[7; 32]);
    serde_json::json!({"keys": [saoma_api::receipt::jwk(&public)]})
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
fn the_receipt_verifier_accepts_the_signed_seeds_and_refuses_every_other_input() {
    let mut verified = Vec::new();
    for (name, bytes) in named_inputs("receipt") {
        if let Ok(claims) = saoma_api::receipt::verify(&String::from_utf8_lossy(&bytes), &fuzz_jwks()) {
            verified.push((name, claims.payment_id));
        }
    }
    verified.sort();
    let names: Vec<&str> = verified.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["corpus/receipt/signed-payment", "corpus/receipt/signed-refund"],
        "only the receipts really signed by the test key verify"
    );
}

/// The scanner's signature check (`saoma qr decode`), as the scan target runs it: the codes
/// the server's signer made verify, the edited one does not, unsigned ones are flagged.
#[test]
fn the_scanner_judges_every_saoma_code_of_the_corpus() {
    let mut verdicts = std::collections::BTreeMap::new();
    for (name, bytes) in named_inputs("scan") {
        let text = String::from_utf8_lossy(&bytes);
        let Some(payload) = saoma_core::emv::decode(text.trim()).ok().filter(|p| p.claims_saoma()) else {
            continue;
        };
        verdicts.insert(name, saoma_api::qr_signature::verify(&payload, &fuzz_jwks()).name());
    }
    let valid: Vec<&str> = verdicts.iter().filter(|(_, v)| **v == "valid").map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        valid,
        ["corpus/scan/saoma-signed-dynamic", "corpus/scan/saoma-signed-static"],
        "{verdicts:?}"
    );
    assert_eq!(verdicts.get("corpus/scan/saoma-forged-amount"), Some(&"invalid"));
    assert_eq!(verdicts.get("corpus/scan/saoma-static"), Some(&"absent"));
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
