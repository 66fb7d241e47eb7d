//! Proves the payment flows over HTTP against a real server and SQLite: the cashier scans
//! the customer's code (online and offline codes, PIN confirmation), the customer scans the
//! merchant's code (dynamic and static), refunds, cancels, idempotent retries, races that
//! must never overdraw a wallet, and a trial balance that always balances.

#[macro_use]
mod common;

use common::*;
use saoma_api as api;

async fn cashier_scans_customer_code(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let wallet = w.wallet(0).await;
    let code = wallet.payment_code().await.unwrap().code;
    assert_eq!(code.len(), 18);
    let p = w.till.create_payment(&charge("o-1", 1250, Some(&code))).await.unwrap();
    assert_eq!((p.status.as_str(), p.mode.as_str(), p.fee), ("succeeded", "cpm", 8));
    assert_eq!(p.terminal_id.as_deref(), Some(w.till_id.as_str()));
    assert!(p.customer_ref.as_deref().unwrap().starts_with("cref_"));
    assert!(!p.customer_ref.unwrap().contains(&w.customers[0].0));
    // The same request again answers the same payment; nothing is charged twice.
    let again = w.till.create_payment(&charge("o-1", 1250, Some(&code))).await.unwrap();
    assert_eq!(again.id, p.id);
    assert_eq!(w.balance(0).await, 10_000 - 1250);
    // The same order number with other fields is a conflict.
    let err = w.till.create_payment(&charge("o-1", 999, Some(&code))).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(409), Some("idempotency_conflict")));
    // A used code is declined and recorded as failed, and the decline repeats.
    let err = w.till.create_payment(&charge("o-2", 100, Some(&code))).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(402), Some("payment_code_used")));
    let failed_id = match &err {
        saoma_client::ClientError::Api { error, .. } => error.payment_id.clone().unwrap(),
        _ => unreachable!(),
    };
    let failed = w.till.payment(&failed_id, 0).await.unwrap();
    assert_eq!(
        (failed.status.as_str(), failed.failure_code.as_deref()),
        ("failed", Some("payment_code_used"))
    );
    let err2 = w.till.create_payment(&charge("o-2", 100, Some(&code))).await.unwrap_err();
    assert_eq!(err2.code(), Some("payment_code_used"));
    // Unknown codes and other wallets' codes are invalid.
    let err = w.till.create_payment(&charge("o-3", 100, Some("661234567890123456"))).await.unwrap_err();
    assert_eq!(err.code(), Some("invalid_payment_code"));
    let err = w.till.create_payment(&charge("o-4", 100, Some("281234567890123456"))).await.unwrap_err();
    assert_eq!(err.code(), Some("invalid_payment_code"));
    // Insufficient funds.
    let code = wallet.payment_code().await.unwrap().code;
    let err = w.till.create_payment(&charge("o-5", 50_000, Some(&code))).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(402), Some("insufficient_funds")));
    assert_eq!(w.balance(0).await, 10_000 - 1250);
    let history = wallet.transactions().await.unwrap();
    assert!(history.data.iter().any(|t| t.kind == "payment" && t.amount == -1250));
    w.assert_balanced().await;
}

async fn offline_device_code_pays_once(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let wallet = w.wallet(0).await;
    let d = wallet.enroll_device(common::PIN).await.unwrap();
    let code = d.code_at(chrono::Utc::now().timestamp()).unwrap();
    assert!(!code.contains(&format!("{:08}", d.slot)), "slot visible in code");
    let p = w.till.create_payment(&charge("off-1", 500, Some(&code))).await.unwrap();
    assert_eq!(p.status, "succeeded");
    let err = w.till.create_payment(&charge("off-2", 500, Some(&code))).await.unwrap_err();
    assert_eq!(err.code(), Some("payment_code_used"));
    let old = d.code_at(chrono::Utc::now().timestamp() - 300).unwrap();
    let err = w.till.create_payment(&charge("off-3", 500, Some(&old))).await.unwrap_err();
    assert_eq!(err.code(), Some("payment_code_expired"));
    w.assert_balanced().await;
}

async fn large_payment_waits_for_pin_confirmation(db: Db) {
    let w = World::new(db, 1, 500_000).await;
    let wallet = w.wallet(0).await;
    let code = wallet.payment_code().await.unwrap().code;
    let p = w.till.create_payment(&charge("big-1", 150_000, Some(&code))).await.unwrap();
    assert_eq!((p.status.as_str(), p.next_action.as_deref()), ("pending", Some("customer_confirm")));
    let err = wallet.confirm(&p.id, "000000").await.unwrap_err();
    assert_eq!(err.code(), Some("invalid_pin"));
    let waiter = {
        let till = w.till.clone();
        let id = p.id.clone();
        tokio::spawn(async move { till.payment(&id, 10).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let paid = wallet.confirm(&p.id, PIN).await.unwrap();
    assert_eq!(paid.status, "succeeded");
    let seen = waiter.await.unwrap().unwrap();
    assert_eq!(seen.status, "succeeded", "the long-poll sees the confirmation");
    assert_eq!(w.balance(0).await, 350_000);
    w.assert_balanced().await;
}

async fn concurrent_payments_never_overdraw(db: Db) {
    let w = World::new(db, 1, 1000).await;
    let wallet = w.wallet(0).await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let code = wallet.payment_code().await.unwrap().code;
        let till = w.till.clone();
        tasks.push(tokio::spawn(async move {
            till.create_payment(&charge(&format!("race-{i}"), 300, Some(&code))).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(p) => {
                assert_eq!(p.status, "succeeded");
                ok += 1;
            }
            Err(e) => assert_eq!(e.code(), Some("insufficient_funds")),
        }
    }
    assert_eq!(ok, 3, "exactly the affordable payments succeed");
    assert_eq!(w.balance(0).await, 100);
    w.assert_balanced().await;
}

async fn concurrent_identical_retries_charge_once(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let code = w.wallet(0).await.payment_code().await.unwrap().code;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let till = w.till.clone();
        let req = charge("same-1", 700, Some(&code));
        tasks.push(tokio::spawn(async move { till.create_payment(&req).await }));
    }
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap().unwrap().id);
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(w.balance(0).await, 9_300);
    w.assert_balanced().await;
}

async fn customer_scans_dynamic_and_static_codes(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let wallet = w.wallet(0).await;
    let p = w.till.create_payment(&charge("dyn-1", 2300, None)).await.unwrap();
    assert_eq!((p.status.as_str(), p.mode.as_str()), ("pending", "mpm"));
    let payload = p.qr_payload.clone().unwrap();
    assert!(p.qr_png_url.as_deref().unwrap().starts_with("/v1/qr.png?payload="));
    let decoded = saoma_core::emv::decode(&payload).unwrap();
    assert_eq!(decoded.amount().unwrap().amount_minor(), 2300);
    let r = wallet.resolve_qr(&payload).await.unwrap();
    assert_eq!(
        (r.kind.as_str(), r.amount, r.payment_id.as_deref()),
        ("payment", Some(2300), Some(p.id.as_str()))
    );
    let pay = api::QrPayRequest {
        qr_payload: payload.clone(),
        amount: None,
        pin: None,
        client_ref: Some("c-1".into()),
    };
    let paid = wallet.pay_qr(&pay).await.unwrap();
    assert_eq!((paid.id.as_str(), paid.status.as_str()), (p.id.as_str(), "succeeded"));
    // A retry after a lost answer does not pay twice.
    assert_eq!(wallet.pay_qr(&pay).await.unwrap().id, p.id);
    assert_eq!(w.till.payment(&p.id, 0).await.unwrap().status, "succeeded");
    // The static code: the customer types the amount.
    let qr = w.till.merchant_qr().await.unwrap();
    let r = wallet.resolve_qr(&qr.qr_payload).await.unwrap();
    assert_eq!((r.kind.as_str(), r.merchant_name.as_deref()), ("merchant", Some("Tea House")));
    let pay = api::QrPayRequest {
        qr_payload: qr.qr_payload.clone(),
        amount: Some(880),
        pin: None,
        client_ref: Some("c-2".into()),
    };
    let s = wallet.pay_qr(&pay).await.unwrap();
    assert_eq!((s.status.as_str(), s.amount), ("succeeded", 880));
    assert_eq!(wallet.pay_qr(&pay).await.unwrap().id, s.id);
    assert_eq!(w.balance(0).await, 10_000 - 2300 - 880);
    // Another scheme's code is refused clearly.
    let body = "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***6304";
    let pix = format!("{body}{}", saoma_core::emv::crc_hex(body.as_bytes()));
    assert_eq!(wallet.resolve_qr(&pix).await.unwrap_err().code(), Some("unsupported_qr"));
    assert_eq!(wallet.resolve_qr("00020101").await.unwrap_err().code(), Some("invalid_qr"));
    let png = reqwest::get(format!("{}{}", w.url(), qr.qr_png_url)).await.unwrap();
    assert_eq!(png.headers()["content-type"], "image/png");
    assert!(png.bytes().await.unwrap().starts_with(b"\x89PNG"));
    w.assert_balanced().await;
}

async fn refunds_partial_full_and_limits(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let code = w.wallet(0).await.payment_code().await.unwrap().code;
    let p = w.till.create_payment(&charge("rf-1", 1000, Some(&code))).await.unwrap();
    assert_eq!(w.till.refund(&p.id, "r-1", 100).await.unwrap_err().status(), Some(403));
    let r1 = w.merchant.refund(&p.id, "r-1", 300).await.unwrap();
    assert_eq!(r1.amount, 300);
    assert_eq!(w.merchant.refund(&p.id, "r-1", 300).await.unwrap().id, r1.id);
    assert_eq!(w.merchant.refund(&p.id, "r-1", 301).await.unwrap_err().code(), Some("idempotency_conflict"));
    assert_eq!(
        w.merchant.refund(&p.id, "r-2", 701).await.unwrap_err().code(),
        Some("refund_exceeds_payment")
    );
    let r2 = w.merchant.refund(&p.id, "r-2", 700).await.unwrap();
    assert_eq!(r1.fee_returned + r2.fee_returned, p.fee);
    let after = w.merchant.payment(&p.id, 0).await.unwrap();
    assert_eq!((after.status.as_str(), after.refunded_amount), ("refunded", 1000));
    assert_eq!(w.balance(0).await, 10_000);
    w.assert_balanced().await;
}

async fn cancel_reverses_and_blocks_late_charges(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let wallet = w.wallet(0).await;
    let pending = w.till.create_payment(&charge("c-1", 500, None)).await.unwrap();
    assert_eq!(w.till.cancel(&pending.id).await.unwrap().status, "closed");
    assert_eq!(w.till.cancel(&pending.id).await.unwrap().status, "closed");
    let code = wallet.payment_code().await.unwrap().code;
    let paid = w.till.create_payment(&charge("c-2", 500, Some(&code))).await.unwrap();
    assert_eq!(w.till.cancel_by_trade_no("c-2").await.unwrap().status, "refunded");
    assert_eq!(w.balance(0).await, 10_000);
    assert_eq!(w.till.payment(&paid.id, 0).await.unwrap().refunded_amount, 500);
    // A reversal that arrives before the charge: the late charge is refused.
    assert_eq!(w.till.cancel_by_trade_no("c-3").await.unwrap().status, "closed");
    let code = wallet.payment_code().await.unwrap().code;
    let err = w.till.create_payment(&charge("c-3", 500, Some(&code))).await.unwrap_err();
    assert_eq!(err.code(), Some("payment_closed"));
    assert_eq!(w.balance(0).await, 10_000);
    w.assert_balanced().await;
}

async fn pos_engine_charges_and_declines(db: Db) {
    use saoma_client::pos::{self, Outcome, PosSettings};
    let w = World::new(db, 1, 1_000).await;
    let code = w.wallet(0).await.payment_code().await.unwrap().code;
    let fast = PosSettings { confirm_wait: std::time::Duration::from_secs(1), ..PosSettings::default() };
    match pos::charge(&w.till, &charge("pos-1", 400, Some(&code)), &fast).await.unwrap() {
        Outcome::Paid(p) => assert_eq!(p.amount, 400),
        other => panic!("expected paid, got {other:?}"),
    }
    let code = w.wallet(0).await.payment_code().await.unwrap().code;
    match pos::charge(&w.till, &charge("pos-2", 4000, Some(&code)), &fast).await.unwrap() {
        Outcome::Declined { code, .. } => assert_eq!(code, "insufficient_funds"),
        other => panic!("expected declined, got {other:?}"),
    }
    // A server that cannot be reached: nothing was sent, so nothing was charged, at once.
    let client = |url: &str| {
        saoma_client::Client::with_timeout(
            url,
            saoma_client::Credentials::None,
            std::time::Duration::from_millis(200),
        )
    };
    let dead = client("http://127.0.0.1:9");
    let quick = PosSettings { query_attempts: 1, query_pause: std::time::Duration::from_millis(10), ..fast };
    let unknown = saoma_core::paycode::online_code(0);
    match pos::charge(&dead, &charge("pos-3", 1, Some(&unknown)), &quick).await.unwrap() {
        Outcome::Offline => {}
        other => panic!("expected offline, got {other:?}"),
    }
    // One that takes the request and never answers: the engine ends not knowing, and says so.
    let mute = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mute_url = format!("http://{}", mute.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((socket, _)) = mute.accept().await {
            drop(socket);
        }
    });
    assert!(pos::charge(&client(&mute_url), &charge("pos-3", 1, Some(&unknown)), &quick).await.is_err());
    // A misread is refused before any network call.
    match pos::charge(&dead, &charge("pos-4", 1, Some("660000000000000000")), &quick).await.unwrap() {
        Outcome::Misread(_) => {}
        other => panic!("expected a misread, got {other:?}"),
    }
    w.assert_balanced().await;
}

on_both!(
    cashier_scans_customer_code,
    offline_device_code_pays_once,
    large_payment_waits_for_pin_confirmation,
    concurrent_payments_never_overdraw,
    concurrent_identical_retries_charge_once,
    customer_scans_dynamic_and_static_codes,
    refunds_partial_full_and_limits,
    cancel_reverses_and_blocks_late_charges,
    pos_engine_charges_and_declines
);
