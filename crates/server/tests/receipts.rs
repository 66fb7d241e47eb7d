//! Proves electronic receipts: every paid payment and every refund gets an Ed25519 JWS
//! that verifies against `/.well-known/jwks.json`, lands in the customer's history, and
//! keeps verifying after the signing key is rotated.

#[macro_use]
mod common;

use common::*;
use saoma_api::receipt;

async fn receipts_are_signed_listed_and_survive_rotation(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let wallet = w.wallet(0).await;
    let code = wallet.payment_code().await.unwrap().code;
    let p = w.till.create_payment(&charge("rc-1", 1250, Some(&code))).await.unwrap();
    let jwks = w.admin.jwks().await.unwrap().to_value();
    let first = w.till.receipt(&p.id).await.unwrap().receipt_jws;
    let claims = receipt::verify(&first, &jwks).unwrap();
    assert_eq!(
        (claims.payment_id.as_str(), claims.out_trade_no.as_str(), claims.amount, claims.status.as_str()),
        (p.id.as_str(), "rc-1", 1250, "succeeded")
    );
    assert_eq!((claims.merchant_name.as_str(), claims.refunded_amount), ("Tea House", 0));
    assert_eq!(claims.items[0]["name"], "Oolong");
    let kid_before = jsonwebtoken_kid(&first);

    // A refund gets its own receipt; the payment's newest receipt says what was refunded.
    let r = w.merchant.refund(&p.id, "rc-r1", 250).await.unwrap();
    let after = w.merchant.receipt(&p.id).await.unwrap().receipt_jws;
    let c = receipt::verify(&after, &jwks).unwrap();
    assert_eq!(
        (c.refund_id.as_deref(), c.refund_amount, c.refunded_amount),
        (Some(r.id.as_str()), Some(250), 250)
    );

    // Both land in the customer's history.
    let history = wallet.transactions().await.unwrap().data;
    let paid = history.iter().find(|t| t.id == p.id).unwrap();
    assert_eq!(paid.receipt_jws.as_deref(), Some(first.as_str()));
    let refunded = history.iter().find(|t| t.id == r.id).unwrap();
    assert_eq!(refunded.receipt_jws.as_deref(), Some(after.as_str()));

    // Rotation: new receipts carry the new key; old receipts still verify.
    let rotated = w.admin.rotate_receipt_key().await.unwrap();
    let code = wallet.payment_code().await.unwrap().code;
    let p2 = w.till.create_payment(&charge("rc-2", 300, Some(&code))).await.unwrap();
    let second = w.till.receipt(&p2.id).await.unwrap().receipt_jws;
    assert_eq!(Some(jsonwebtoken_kid(&second)), Some(rotated.kid));
    assert_ne!(jsonwebtoken_kid(&second), kid_before);
    let keys = w.admin.jwks().await.unwrap();
    assert_eq!(keys.keys.len(), 2);
    let jwks = keys.to_value();
    receipt::verify(&first, &jwks).unwrap();
    receipt::verify(&second, &jwks).unwrap();

    // A forged amount fails; a pending payment has no receipt; another terminal sees none.
    let parts: Vec<&str> = second.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], parts[1].replacen("e", "f", 1), parts[2]);
    assert!(receipt::verify(&forged, &jwks).is_err());
    let pending = w.till.create_payment(&charge("rc-3", 300, None)).await.unwrap();
    let err = w.till.receipt(&pending.id).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(409), Some("receipt_unavailable")));
    let err = w.other_till.receipt(&p.id).await.unwrap_err();
    assert_eq!(err.status(), Some(403));
}

fn jsonwebtoken_kid(jws: &str) -> String {
    use base64::Engine;
    let header =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(jws.split('.').next().unwrap()).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&header).unwrap();
    assert_eq!(v["alg"], "EdDSA");
    v["kid"].as_str().unwrap().to_string()
}

on_both!(receipts_are_signed_listed_and_survive_rotation);
