//! Proves `saoma openapi` prints the API's document: the same bytes as the checked-in
//! `docs/openapi.json`, so `saoma openapi > docs/openapi.json` regenerates it.

use std::process::Command;

#[test]
fn saoma_openapi_prints_the_checked_in_document() {
    let out = Command::new(env!("CARGO_BIN_EXE_saoma")).arg("openapi").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8(out.stdout).unwrap();
    let checked_in =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json")).unwrap();
    assert!(printed == checked_in, "saoma openapi differs from docs/openapi.json: regenerate it");
    let doc: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
}
