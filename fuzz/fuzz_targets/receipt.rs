//! The receipt verifier: any string is a verified receipt or a refusal, never a crash. The
//! key set is a real one, so inputs that get past the header reach the signature check.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn jwks() -> &'static serde_json::Value {
    static JWKS: OnceLock<serde_json::Value> = OnceLock::new();
    JWKS.get_or_init(|| {
        let public = saoma_api::receipt::public_key(&[7; 32]);
        serde_json::json!({"keys": [saoma_api::receipt::jwk(&public)]})
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = saoma_api::receipt::verify(text, jwks());
    }
});
