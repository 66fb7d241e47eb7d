//! The scanner pipeline of `saoma qr decode` and `/v1/qr/decode`: whatever a camera or a
//! wedge scanner hands it is classified or refused, never a crash; and a code that claims
//! to be Saoma's has its signature checked against a real key set (the corpus holds a code
//! signed by that key, so inputs near it reach the Ed25519 check), which judges it and
//! names no key but its own.
#![no_main]
use libfuzzer_sys::fuzz_target;
use saoma_api::qr_signature::{self, Verdict};
use std::sync::OnceLock;

/// The key set (`/.well-known/jwks.json`) of the seed corpus's signing key, `[7; 32]`.
fn jwks() -> &'static serde_json::Value {
    static JWKS: OnceLock<serde_json::Value> = OnceLock::new();
    JWKS.get_or_init(|| {
        let public = saoma_api::receipt::public_key(&[7; 32]);
        serde_json::json!({"keys": [saoma_api::receipt::jwk(&public)]})
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = saoma_core::scan::classify(text);
    let _ = saoma_core::scan::receive_token(text);
    // As `saoma qr decode` does: EMV decode, then the signature of a code claiming Saoma.
    let Some(payload) = saoma_core::emv::decode(text.trim()).ok().filter(|p| p.claims_saoma()) else {
        return;
    };
    let verdict = qr_signature::verify(&payload, jwks());
    let _ = (verdict.warning(), verdict.name());
    match verdict {
        Verdict::Valid(kid) => assert_eq!(Some(kid.as_str()), jwks()["keys"][0]["kid"].as_str()),
        Verdict::NotSaoma => panic!("a code that claims to be Saoma's was not judged"),
        Verdict::Invalid(_) | Verdict::Absent => {}
    }
});
