//! `saoma verify-receipt` offline: from the JWS string, a file, and a PNG of the receipt's
//! QR code, against a saved JWKS file; a forged receipt exits 1. And `saoma qr decode`
//! checking a merchant code's signature offline: a swapped sticker exits 4, loudly.

use saoma_client::{Client, Credentials};
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifies_receipts_from_text_file_and_qr_image() {
    let dir = tempfile::tempdir().unwrap();
    let config = saoma_server::Config {
        admin_token: Some("t".into()),
        master_key: Some("ab".repeat(32)),
        ..saoma_server::Config::new(&format!("sqlite://{}", dir.path().join("t.db").display()))
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = saoma_server::start(config, listener).await.unwrap();
    let url = server.url();
    let admin = Client::new(&url, Credentials::Admin("t".into()));
    let m = admin
        .create_merchant(&saoma_api::CreateMerchantRequest {
            name: "Noodle Bar".into(),
            mcc: "5812".into(),
            city: "Hangzhou".into(),
            country: "CN".into(),
            currency: "CNY".into(),
            fee_bps: 60,
            timezone: None,
        })
        .await
        .unwrap();
    admin.approve_merchant(&m.id).await.unwrap();
    let k = admin.create_key(&m.id, None).await.unwrap();
    let merchant = Client::new(&url, Credentials::Key { key_id: k.key_id, secret: k.secret });
    let c = admin.create_customer("13700000001", "Ann", "135790").await.unwrap();
    admin.top_up(&c.id, 5000, "CNY", "seed").await.unwrap();
    let wallet = Client::new(&url, Credentials::None).wallet_session("13700000001", "135790").await.unwrap();
    let code = wallet.payment_code().await.unwrap().code;
    let req = saoma_api::CreatePaymentRequest {
        out_trade_no: "v-1".into(),
        amount: 1800,
        currency: "CNY".into(),
        subject: "Noodles".into(),
        items: None,
        payment_code: Some(code),
        expires_in: None,
    };
    let p = merchant.create_payment(&req).await.unwrap();
    let jws = merchant.receipt(&p.id).await.unwrap().receipt_jws;
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(&jwks_path, admin.jwks().await.unwrap().to_value().to_string()).unwrap();
    let text_path = dir.path().join("receipt.jws");
    std::fs::write(&text_path, &jws).unwrap();
    let png = reqwest::get(format!("{url}/v1/qr.png?payload={jws}")).await.unwrap().bytes().await.unwrap();
    let png_path = dir.path().join("receipt.png");
    std::fs::write(&png_path, &png).unwrap();
    let sticker = merchant.merchant_qr().await.unwrap().qr_payload;
    server.stop().await.unwrap(); // offline from here on

    let run = |input: &str| {
        Command::new(env!("CARGO_BIN_EXE_saoma"))
            .args(["verify-receipt", input, "--jwks", jwks_path.to_str().unwrap()])
            .output()
            .unwrap()
    };
    for input in [jws.as_str(), text_path.to_str().unwrap(), png_path.to_str().unwrap()] {
        let out = run(input);
        assert_eq!(out.status.code(), Some(0), "{input}: {}", String::from_utf8_lossy(&out.stderr));
        let claims: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (claims["payment_id"].as_str(), claims["amount"].as_i64()),
            (Some(p.id.as_str()), Some(1800))
        );
    }
    let parts: Vec<&str> = jws.split('.').collect();
    let other_sig = format!("{}.{}.{}", parts[0], parts[1], parts[2].chars().rev().collect::<String>());
    let out = run(&other_sig);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NOT valid"));

    let decode = |payload: &str| {
        Command::new(env!("CARGO_BIN_EXE_saoma"))
            .args(["qr", "decode", payload, "--jwks", jwks_path.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let out = decode(&sticker);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["saoma_signature"], "valid");
    let out = decode(&swapped(&sticker));
    assert_eq!(out.status.code(), Some(4));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["saoma_signature"], "invalid");
    assert!(String::from_utf8_lossy(&out.stderr).contains("WARNING"));
}

/// A sticker made from the real one with another name (and a CRC recomputed to match).
fn swapped(payload: &str) -> String {
    let body = payload[..payload.len() - 4].replace("Noodle Bar", "Noodle Bat");
    format!("{body}{}", saoma_core::emv::crc_hex(body.as_bytes()))
}
