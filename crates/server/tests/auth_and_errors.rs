//! Proves the edges a client relies on: signatures, replays and stale requests are
//! refused with their codes; one merchant cannot see another's payments; a terminal key
//! stays on its own terminal; bad input answers 4xx with the error envelope and a
//! `Request-Id`, never a 500; PIN lockout; inactive merchants take nothing.

#[macro_use]
mod common;

use common::*;
use saoma_api::signing;
use saoma_client::{Client, Credentials};

async fn signed_post(
    url: &str,
    path: &str,
    body: &str,
    key_id: &str,
    secret: &str,
    created: i64,
    nonce: &str,
) -> reqwest::Response {
    let full = format!("{url}{path}");
    let h = signing::sign_request("POST", &full, Some(body.as_bytes()), key_id, secret, created, nonce);
    reqwest::Client::new()
        .post(&full)
        .header("signature-input", h.signature_input)
        .header("signature", h.signature)
        .header("content-digest", h.content_digest.unwrap())
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

async fn code_of(r: reqwest::Response) -> (u16, String, bool) {
    let status = r.status().as_u16();
    let has_id = r.headers().contains_key("request-id");
    let v: serde_json::Value = r.json().await.unwrap();
    (
        status,
        v["error"]["code"].as_str().unwrap_or("").to_string(),
        has_id && v["error"]["request_id"].is_string(),
    )
}

async fn signatures_replays_and_clock(db: Db) {
    let w = World::new(db, 0, 0).await;
    let admin = &w.admin;
    let key = admin.create_key(&w.merchant_id, None).await.unwrap();
    let body = r#"{"out_trade_no":"s-1","amount":100,"currency":"CNY","subject":"x"}"#;
    let now = chrono::Utc::now().timestamp();
    let ok = signed_post(&w.url(), "/v1/payments", body, &key.key_id, &key.secret, now, "n-1").await;
    assert_eq!(ok.status().as_u16(), 200);
    let replay = signed_post(&w.url(), "/v1/payments", body, &key.key_id, &key.secret, now, "n-1").await;
    assert_eq!(code_of(replay).await, (401, "replayed_request".into(), true));
    let stale = signed_post(&w.url(), "/v1/payments", body, &key.key_id, &key.secret, now - 400, "n-2").await;
    assert_eq!(code_of(stale).await.1, "stale_request");
    let forged = signed_post(&w.url(), "/v1/payments", body, &key.key_id, "wrong", now, "n-3").await;
    assert_eq!(code_of(forged).await.1, "invalid_signature");
    let unsigned =
        reqwest::Client::new().post(format!("{}/v1/payments", w.url())).body(body).send().await.unwrap();
    assert_eq!(code_of(unsigned).await.1, "unauthenticated");
    // A body changed after signing fails the digest.
    let full = format!("{}/v1/payments", w.url());
    let h = signing::sign_request("POST", &full, Some(body.as_bytes()), &key.key_id, &key.secret, now, "n-4");
    let tampered = reqwest::Client::new()
        .post(&full)
        .header("signature-input", h.signature_input)
        .header("signature", h.signature)
        .header("content-digest", h.content_digest.unwrap())
        .body(body.replace("100", "1"))
        .send()
        .await
        .unwrap();
    assert_eq!(code_of(tampered).await.1, "invalid_signature");
}

async fn ownership_and_roles(db: Db) {
    let w = World::new(db, 1, 1000).await;
    let p = w.till.create_payment(&charge("own-1", 100, None)).await.unwrap();
    assert_eq!(w.other_till.payment(&p.id, 0).await.unwrap_err().status(), Some(403));
    assert_eq!(w.other_till.cancel(&p.id).await.unwrap_err().status(), Some(403));
    assert_eq!(w.merchant.payment(&p.id, 0).await.unwrap().id, p.id);
    let m2 = w.admin.create_merchant(&merchant_req("Rival")).await.unwrap();
    w.admin.approve_merchant(&m2.id).await.unwrap();
    let k2 = w.admin.create_key(&m2.id, None).await.unwrap();
    let rival = Client::new(&w.url(), Credentials::Key { key_id: k2.key_id, secret: k2.secret });
    let err = rival.payment(&p.id, 0).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(404), Some("not_found")));
    assert_eq!(rival.cancel(&p.id).await.unwrap_err().status(), Some(404));
    // A wallet cannot confirm another customer's payment, and the admin API needs the token.
    let wrong_admin = Client::new(&w.url(), Credentials::Admin("nope".into()));
    assert_eq!(wrong_admin.trial_balance().await.unwrap_err().status(), Some(401));
    // Suspended merchants take no payments.
    w.admin.suspend_merchant(&w.merchant_id).await.unwrap();
    let err = w.till.create_payment(&charge("own-2", 100, None)).await.unwrap_err();
    assert_eq!(err.code(), Some("merchant_inactive"));
}

async fn bad_input_gets_4xx_never_500(db: Db) {
    let w = World::new(db, 0, 0).await;
    let key = w.admin.create_key(&w.merchant_id, None).await.unwrap();
    let now = chrono::Utc::now().timestamp();
    let cases = [
        (r#"{"out_trade_no":"b-1","amount":100,"currency":"CNY","subject":"x","tip":1}"#, 400),
        (r#"{"out_trade_no":"b-2","amount":"100","currency":"CNY","subject":"x"}"#, 400),
        (r#"{"out_trade_no":"b 3","amount":100,"currency":"CNY","subject":"x"}"#, 400),
        (r#"{"out_trade_no":"b-4","amount":0,"currency":"CNY","subject":"x"}"#, 400),
        (r#"{"out_trade_no":"b-5","amount":1000000000001,"currency":"CNY","subject":"x"}"#, 400),
        (r#"{"out_trade_no":"b-6","amount":100,"currency":"XXX","subject":"x"}"#, 400),
        (r#"{"out_trade_no":"b-7","amount":100,"currency":"USD","subject":"x"}"#, 400),
        (r#"{"out_trade_no":"b-8","amount":100,"currency":"CNY","subject":""}"#, 400),
        (r#"{"out_trade_no":"b-9","amount":100,"currency":"CNY","subject":"x","expires_in":0}"#, 400),
        ("not json", 400),
    ];
    for (i, (body, status)) in cases.iter().enumerate() {
        let r =
            signed_post(&w.url(), "/v1/payments", body, &key.key_id, &key.secret, now, &format!("bad-{i}"))
                .await;
        let (got, code, has_id) = code_of(r).await;
        assert_eq!(got, *status, "{body} → {code}");
        assert!(has_id, "{body}: no request id");
    }
    let big =
        format!(r#"{{"out_trade_no":"b-x","amount":1,"currency":"CNY","subject":"{}"}}"#, "x".repeat(70_000));
    let r = signed_post(&w.url(), "/v1/payments", &big, &key.key_id, &key.secret, now, "big").await;
    assert_eq!(r.status().as_u16(), 413);
    let r = reqwest::get(format!("{}/v1/nowhere", w.url())).await.unwrap();
    assert_eq!(code_of(r).await, (404, "not_found".into(), true));
    let admin = reqwest::Client::new();
    let r = admin
        .post(format!("{}/v1/admin/customers", w.url()))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"phone": "x", "name": "A", "pin": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(code_of(r).await.0, 400);
    assert_eq!(reqwest::get(format!("{}/healthz", w.url())).await.unwrap().status().as_u16(), 200);
    let metrics = admin.get(format!("{}/metrics", w.url())).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(metrics.contains("saoma_http_requests_total"));
    // The store's commits, read by `saoma bench` for payments per flush.
    let flushes = metrics.lines().find(|l| l.starts_with("saoma_store_flushes_total "));
    let flushes: f64 = flushes.and_then(|l| l.split(' ').nth(1)?.parse().ok()).expect("a flush counter");
    assert!(flushes >= 1.0, "{flushes}");
}

async fn pin_lockout_and_transfers(db: Db) {
    let w = World::new(db, 2, 5_000).await;
    let a = w.wallet(0).await;
    let t = saoma_api::TransferRequest {
        to_phone: Some(w.customers[1].1.clone()),
        qr_payload: None,
        amount: 1_000,
        currency: "CNY".into(),
        pin: PIN.into(),
        client_ref: "t-1".into(),
    };
    let first = a.transfer(&t).await.unwrap();
    assert_eq!(a.transfer(&t).await.unwrap().id, first.id, "a retry does not send twice");
    assert_eq!((w.balance(0).await, w.balance(1).await), (4_000, 6_000));
    let too_much = saoma_api::TransferRequest { amount: 9_000, client_ref: "t-2".into(), ..t.clone() };
    assert_eq!(a.transfer(&too_much).await.unwrap_err().code(), Some("insufficient_funds"));
    // B shows a receive code; A scans it and pays. The code is stable and opaque.
    let b = w.wallet(1).await;
    let receive = b.receive_code().await.unwrap().qr_payload;
    assert_eq!(b.receive_code().await.unwrap().qr_payload, receive);
    assert!(!receive.contains(&w.customers[1].0) && !receive.contains(&w.customers[1].1));
    let by_qr = saoma_api::TransferRequest {
        to_phone: None,
        qr_payload: Some(receive.clone()),
        amount: 500,
        client_ref: "t-3".into(),
        ..t.clone()
    };
    a.transfer(&by_qr).await.unwrap();
    assert_eq!((w.balance(0).await, w.balance(1).await), (3_500, 6_500));
    let to_self = saoma_api::TransferRequest { client_ref: "t-4".into(), ..by_qr.clone() };
    assert_eq!(b.transfer(&to_self).await.unwrap_err().code(), Some("invalid_request"));
    let unknown = saoma_api::TransferRequest {
        qr_payload: Some(format!("{}{}", saoma_core::scan::RECEIVE_PREFIX, "0".repeat(26))),
        client_ref: "t-5".into(),
        ..by_qr.clone()
    };
    assert_eq!(a.transfer(&unknown).await.unwrap_err().status(), Some(404));
    // Without the right PIN a transfer does not tell whether a phone has a wallet.
    let guess = |phone: &str, r: &str| saoma_api::TransferRequest {
        to_phone: Some(phone.into()),
        qr_payload: None,
        pin: "000000".into(),
        client_ref: r.into(),
        ..t.clone()
    };
    let known = b.transfer(&guess(&w.customers[0].1, "t-7")).await.unwrap_err();
    let unknown = b.transfer(&guess("13900000000", "t-8")).await.unwrap_err();
    assert_eq!((known.status(), known.code()), (Some(403), Some("invalid_pin")));
    assert_eq!((unknown.status(), unknown.code()), (known.status(), known.code()));
    let not_a_code =
        saoma_api::TransferRequest { qr_payload: Some("hello".into()), client_ref: "t-6".into(), ..by_qr };
    assert_eq!(a.transfer(&not_a_code).await.unwrap_err().code(), Some("invalid_request"));
    let anon = Client::new(&w.url(), Credentials::None);
    for _ in 0..4 {
        assert_eq!(anon.wallet_session(&w.customers[0].1, "000000").await.err().unwrap().status(), Some(401));
    }
    assert_eq!(
        anon.wallet_session(&w.customers[0].1, "000000").await.err().unwrap().code(),
        Some("pin_locked")
    );
    assert_eq!(anon.wallet_session(&w.customers[0].1, PIN).await.err().unwrap().code(), Some("pin_locked"));
    w.assert_balanced().await;
}

on_both!(
    signatures_replays_and_clock,
    ownership_and_roles,
    bad_input_gets_4xx_never_500,
    pin_lockout_and_transfers
);
