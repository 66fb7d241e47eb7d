//! Signed merchant QR codes against sticker swaps: Saoma's static and dynamic codes carry
//! the platform's Ed25519 signature in EMV tags 80-81; the wallet and the scanner's
//! decoder check it and the merchant's status, warn loudly, and refuse to pay a code whose
//! signature fails.

#[macro_use]
mod common;

use common::*;
use saoma_api as api;
use saoma_core::emv;

fn with_crc(body: &str) -> String {
    format!("{body}{}", emv::crc_hex(body.as_bytes()))
}

/// The real code with another merchant name, CRC fixed: what a fraudster would print.
fn swapped(payload: &str) -> String {
    with_crc(&payload[..payload.len() - 4].replace("Tea House", "Tea Hous3"))
}

/// The real code with its signature cut out.
fn stripped(payload: &str) -> String {
    let p = emv::decode(payload).unwrap();
    let kept: Vec<emv::Field> =
        p.fields.into_iter().filter(|f| !["80", "81", "63"].contains(&f.tag.as_str())).collect();
    emv::encode(&kept).unwrap()
}

fn pay(qr: &str, amount: Option<i64>) -> api::QrPayRequest {
    api::QrPayRequest { qr_payload: qr.into(), amount, pin: None, client_ref: None }
}

async fn codes_are_signed_and_checked(db: Db) {
    let w = World::new(db, 1, 100_000).await;
    let wallet = w.wallet(0).await;
    let sticker = w.merchant.merchant_qr().await.unwrap().qr_payload;
    let resolve = |qr: String| {
        let wallet = wallet.clone();
        async move { wallet.resolve_qr(&qr).await.unwrap() }
    };
    let real = resolve(sticker.clone()).await;
    assert_eq!((real.signature.as_str(), real.warnings.len()), ("valid", 0));
    // Any EMV reader still finds the standard fields.
    let decoded = emv::decode(&sticker).unwrap();
    assert_eq!((decoded.text("59"), decoded.text("52")), (Some("Tea House"), Some("5812")));

    // A swapped sticker: warned and refused.
    let fake = resolve(swapped(&sticker)).await;
    assert_eq!(fake.signature, "invalid");
    assert!(fake.warnings[0].contains("sticker"), "{:?}", fake.warnings);
    let refused = wallet.pay_qr(&pay(&swapped(&sticker), Some(100))).await.unwrap_err();
    assert_eq!((refused.status(), refused.code()), (Some(400), Some("qr_signature_invalid")));
    // A stripped signature: warned, the customer decides.
    let bare = resolve(stripped(&sticker)).await;
    assert_eq!((bare.signature.as_str(), bare.warnings.len()), ("absent", 1));

    // Dynamic codes are signed too, and the scanner's decoder says so.
    let p = w.till.create_payment(&charge("sq-1", 1_250, None)).await.unwrap();
    let dynamic = p.qr_payload.unwrap();
    let said = w.admin.decode_qr(&dynamic).await.unwrap();
    assert_eq!((said.saoma_signature.as_deref(), said.warnings.map(|w| w.len())), (Some("valid"), Some(0)));
    let said = w.admin.decode_qr(&swapped(&sticker)).await.unwrap();
    assert_eq!(said.saoma_signature.as_deref(), Some("invalid"));
    assert_eq!(wallet.pay_qr(&pay(&dynamic, None)).await.unwrap().status, "succeeded");

    // After a key rotation old codes stay valid and new ones use the new key.
    w.admin.rotate_receipt_key().await.unwrap();
    assert_eq!(resolve(sticker.clone()).await.signature, "valid");
    let fresh = w.merchant.merchant_qr().await.unwrap().qr_payload;
    assert_ne!(fresh, sticker);
    assert_eq!(resolve(fresh).await.signature, "valid");

    // A suspended merchant's genuine code warns too.
    w.admin.suspend_merchant(&w.merchant_id).await.unwrap();
    let suspended = resolve(sticker.clone()).await;
    assert!(suspended.warnings.iter().any(|x| x.contains("not active")), "{:?}", suspended.warnings);
    let said = w.admin.decode_qr(&sticker).await.unwrap();
    assert!(said.warnings.unwrap()[0].contains("not active"));
}

on_both!(codes_are_signed_and_checked);
