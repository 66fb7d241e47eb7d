//! Proves the one charge pipeline holds on every path: transfers in both directions at
//! once neither deadlock nor overdraw (one lock order, balance decided under the lock),
//! a wallet's `client_ref` answers the same payment only for the same request, and a
//! decline is kept in the transaction that decided it, on both backends.

mod common;

use common::{Db, PIN, World, charge};
use saoma_api as api;

fn transfer_to(phone: &str, amount: i64, client_ref: &str) -> api::TransferRequest {
    api::TransferRequest {
        to_phone: Some(phone.into()),
        qr_payload: None,
        amount,
        currency: "CNY".into(),
        pin: PIN.into(),
        client_ref: client_ref.into(),
    }
}

async fn crossed_transfers_neither_deadlock_nor_overdraw(db: Db) {
    let w = World::new(db, 2, 1_000).await;
    let (a, b) = (w.wallet(0).await, w.wallet(1).await);
    let (phone_a, phone_b) = (w.customers[0].1.clone(), w.customers[1].1.clone());
    // Five at once from each side: as many PIN checks as one customer may have in flight.
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (from, to) = if i % 2 == 0 { (a.clone(), phone_b.clone()) } else { (b.clone(), phone_a.clone()) };
        tasks.push(tokio::spawn(
            async move { from.transfer(&transfer_to(&to, 250, &format!("x-{i}"))).await },
        ));
    }
    let mut moved = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => moved += 1,
            Err(e) => {
                assert_eq!(e.code(), Some("insufficient_funds"), "only a short balance may refuse: {e:?}")
            }
        }
    }
    assert!(moved >= 5, "at most a few transfers can find a wallet short, {moved} moved");
    let (ba, bb) = (w.balance(0).await, w.balance(1).await);
    assert!(ba >= 0 && bb >= 0, "no wallet below zero: {ba} {bb}");
    assert_eq!(ba + bb, 2_000, "transfers move money, never make or lose it");
    w.assert_balanced().await;
}

async fn wallet_client_ref_answers_only_the_same_request(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let wallet = w.wallet(0).await;
    let qr = w.till.merchant_qr().await.unwrap();
    let pay = |amount: i64| api::QrPayRequest {
        qr_payload: qr.qr_payload.clone(),
        amount: Some(amount),
        pin: None,
        client_ref: Some("lunch-1".into()),
    };
    let first = wallet.pay_qr(&pay(880)).await.unwrap();
    assert_eq!(wallet.pay_qr(&pay(880)).await.unwrap().id, first.id, "a retry answers the same payment");
    let err = wallet.pay_qr(&pay(990)).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(409), Some("idempotency_conflict")));
    // Nor may the key be reused for another merchant's dynamic code.
    let dynamic = w.till.create_payment(&charge("dyn-ref", 500, None)).await.unwrap();
    let other = api::QrPayRequest {
        qr_payload: dynamic.qr_payload.unwrap(),
        amount: None,
        pin: None,
        client_ref: Some("lunch-1".into()),
    };
    assert_eq!(wallet.pay_qr(&other).await.unwrap_err().code(), Some("idempotency_conflict"));
    assert_eq!(w.till.payment(&dynamic.id, 0).await.unwrap().status, "pending", "nothing was paid");
    assert_eq!(w.balance(0).await, 10_000 - 880, "charged once");
    w.assert_balanced().await;
}

async fn one_client_ref_sent_many_times_at_once_charges_once(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let wallet = w.wallet(0).await;
    let qr = w.till.merchant_qr().await.unwrap();
    let pay = api::QrPayRequest {
        qr_payload: qr.qr_payload.clone(),
        amount: Some(700),
        pin: None,
        client_ref: Some("tap-tap-tap".into()),
    };
    // On PostgreSQL the customer's row is held while the copies arrive, so every copy
    // reads the ref before any has recorded it: all but one lose the race on the ref's
    // record at their commit, and their retries answer the winner's payment. SQLite's
    // one writer lets each copy in only after the one before committed.
    let holder = match w.db.is_postgres() {
        true => Some(hold_customer(&w.db.url, &w.customers[0].0).await),
        false => None,
    };
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (wallet, pay) = (wallet.clone(), pay.clone());
            tokio::spawn(async move { wallet.pay_qr(&pay).await })
        })
        .collect();
    if let Some(mut holder) = holder {
        wait_for_lock_waiters(&w.db.url, 6).await;
        sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap().expect("every copy is answered with the payment").id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one payment for one request: {ids:?}");
    assert_eq!(w.balance(0).await, 10_000 - 700, "charged once");
    w.assert_balanced().await;
}

/// A connection holding customer `id`'s row locked until it commits.
async fn hold_customer(url: &str, id: &str) -> sqlx::AnyConnection {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
    sqlx::query("SELECT id FROM customers WHERE id = $1 FOR UPDATE")
        .bind(id)
        .execute(&mut conn)
        .await
        .unwrap();
    conn
}

/// Waits until `n` backends of the database wait for a lock (at most 10 s).
async fn wait_for_lock_waiters(url: &str, n: i64) {
    use sqlx::Connection;
    let mut probe = sqlx::AnyConnection::connect(url).await.unwrap();
    for _ in 0..200 {
        let (waiting,): (i64,) = sqlx::query_as(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut probe)
        .await
        .unwrap();
        if waiting >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("fewer than {n} requests came to wait for the customer's row");
}

async fn a_client_ref_stays_bound_after_a_decline(db: Db) {
    let w = World::new(db, 1, 1_000).await;
    let wallet = w.wallet(0).await;
    let qr = w.till.merchant_qr().await.unwrap();
    let pay = |amount: i64, r: &str| api::QrPayRequest {
        qr_payload: qr.qr_payload.clone(),
        amount: Some(amount),
        pin: None,
        client_ref: Some(r.into()),
    };
    // A static code's attempt declined under a ref: the same request answers the same
    // decline, and the ref cannot be spent on another amount afterwards.
    let err = wallet.pay_qr(&pay(1_500, "snack-1")).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(402), Some("insufficient_funds")));
    let again = wallet.pay_qr(&pay(1_500, "snack-1")).await.unwrap_err();
    assert_eq!(again.code(), Some("insufficient_funds"), "a retry answers the same decline");
    let other = wallet.pay_qr(&pay(500, "snack-1")).await.unwrap_err();
    assert_eq!((other.status(), other.code()), (Some(409), Some("idempotency_conflict")));
    // A dynamic code declined under a ref stays payable, and its retry under the same ref
    // pays it once the wallet can.
    let dynamic = w.till.create_payment(&charge("dyn-short", 1_200, None)).await.unwrap();
    let by_code = |r: &str| api::QrPayRequest {
        qr_payload: dynamic.qr_payload.clone().unwrap(),
        amount: None,
        pin: None,
        client_ref: Some(r.into()),
    };
    assert_eq!(wallet.pay_qr(&by_code("dyn-1")).await.unwrap_err().code(), Some("insufficient_funds"));
    let elsewhere = wallet.pay_qr(&pay(100, "dyn-1")).await.unwrap_err();
    assert_eq!(elsewhere.code(), Some("idempotency_conflict"), "the ref is bound to the code");
    w.admin.top_up(&w.customers[0].0, 1_000, "CNY", "more-1").await.unwrap();
    let paid = wallet.pay_qr(&by_code("dyn-1")).await.unwrap();
    assert_eq!((paid.id.as_str(), paid.status.as_str()), (dynamic.id.as_str(), "succeeded"));
    assert_eq!(wallet.pay_qr(&by_code("dyn-1")).await.unwrap().id, dynamic.id, "and answers it again");
    // A code declined under a ref and then paid by someone else is not this customer's.
    let other = w.till.create_payment(&charge("dyn-other", 5_000, None)).await.unwrap();
    let by_other = |r: &str| api::QrPayRequest {
        qr_payload: other.qr_payload.clone().unwrap(),
        amount: None,
        pin: None,
        client_ref: Some(r.into()),
    };
    assert_eq!(wallet.pay_qr(&by_other("dyn-2")).await.unwrap_err().code(), Some("insufficient_funds"));
    w.till.cancel(&other.id).await.unwrap();
    let late = wallet.pay_qr(&by_other("dyn-2")).await.unwrap_err();
    assert_eq!((late.status(), late.code()), (Some(409), Some("payment_not_pending")));
    assert_eq!(w.balance(0).await, 2_000 - 1_200, "charged once");
    w.assert_balanced().await;
}

async fn a_decline_is_kept_with_its_rule_and_moves_nothing(db: Db) {
    let w = World::new(db, 1, 1_000).await;
    let wallet = w.wallet(0).await;
    let code = wallet.payment_code().await.unwrap().code;
    let err = w.till.create_payment(&charge("short-1", 1_001, Some(&code))).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(402), Some("insufficient_funds")));
    let failed = w.till.payment_by_trade_no("short-1", 0).await.unwrap();
    assert_eq!(
        (failed.status.as_str(), failed.failure_code.as_deref()),
        ("failed", Some("insufficient_funds"))
    );
    // The same request again answers the same decline, and the code stays spent.
    let again = w.till.create_payment(&charge("short-1", 1_001, Some(&code))).await.unwrap_err();
    assert_eq!(again.code(), Some("insufficient_funds"));
    let retry = w.till.create_payment(&charge("short-2", 500, Some(&code))).await.unwrap_err();
    assert_eq!(retry.code(), Some("payment_code_used"));
    let kept = w.admin.risk_decisions(None, Some(&failed.id)).await.unwrap();
    let kept = kept.data;
    assert_eq!(kept.len(), 1, "one decision per decline: {kept:?}");
    assert_eq!((kept[0].rule.as_str(), kept[0].observed), ("balance", 1_000));
    assert_eq!(w.balance(0).await, 1_000);
    w.assert_balanced().await;
}

on_both!(
    crossed_transfers_neither_deadlock_nor_overdraw,
    wallet_client_ref_answers_only_the_same_request,
    a_client_ref_stays_bound_after_a_decline,
    one_client_ref_sent_many_times_at_once_charges_once,
    a_decline_is_kept_with_its_rule_and_moves_nothing,
);
