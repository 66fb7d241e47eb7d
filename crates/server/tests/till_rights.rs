//! Proves the limits on what a till and a merchant's keys may change: a terminal key
//! reverses a paid sale only within the operator's window after the charge (a refund
//! after it needs a manager or merchant key); a suspended merchant's keys still read but
//! cannot refund, issue or rotate keys or change the webhook; and no rotation makes a key
//! live longer than it already would.

#[macro_use]
mod common;

use common::*;
use saoma_client::Client;

async fn pay(w: &World, wallet: &Client, otn: &str) -> String {
    let code = wallet.payment_code().await.unwrap().code;
    w.till.create_payment(&charge(otn, 1_000, Some(&code))).await.unwrap().id
}

fn refused<T: std::fmt::Debug>(r: Result<T, saoma_client::ClientError>) -> (Option<u16>, Option<String>) {
    let e = r.unwrap_err();
    (e.status(), e.code().map(str::to_string))
}

fn forbidden(code: &str) -> (Option<u16>, Option<String>) {
    (Some(403), Some(code.to_string()))
}

/// Moves a sale's charge `seconds` into the past.
async fn charged_ago(w: &World, payment_id: &str, seconds: i64) {
    let t = chrono::Utc::now() - chrono::Duration::seconds(seconds);
    let at = t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    exec(&w.db, &format!("UPDATE payments SET paid_at = '{at}' WHERE id = '{payment_id}'")).await;
}

async fn refunds_of(w: &World, payment_id: &str) -> usize {
    column(&w.db, &format!("SELECT id FROM refunds WHERE payment_id = '{payment_id}'")).await.len()
}

async fn a_till_reverses_a_sale_only_within_the_window(db: Db) {
    let w = World::new(db, 1, 100_000).await;
    let wallet = w.wallet(0).await;
    // Straight after the charge, the till's cancel is the POS's reversal: a full refund.
    let fresh = pay(&w, &wallet, "rv-1").await;
    assert_eq!(w.till.cancel(&fresh).await.unwrap().status, "refunded");

    // Ten minutes later (the default window is five) the till cannot refund by "cancel".
    let old = pay(&w, &wallet, "rv-2").await;
    charged_ago(&w, &old, 600).await;
    let balance = w.balance(0).await;
    assert_eq!(refused(w.till.cancel(&old).await), forbidden("reversal_window_closed"));
    assert_eq!(refused(w.till.cancel_by_trade_no("rv-2").await), forbidden("reversal_window_closed"));
    assert_eq!(w.till.payment(&old, 0).await.unwrap().status, "succeeded", "nothing changed");
    assert_eq!((w.balance(0).await, refunds_of(&w, &old).await), (balance, 0));

    // A pending sale is still the till's to close, and the merchant's key refunds the old one.
    let pending = w.till.create_payment(&charge("rv-3", 500, None)).await.unwrap();
    assert_eq!(w.till.cancel(&pending.id).await.unwrap().status, "closed");
    assert_eq!(w.merchant.cancel(&old).await.unwrap().status, "refunded");
    assert_eq!(w.balance(0).await, balance + 1_000);
    w.assert_balanced().await;
}

async fn the_window_is_the_operators(db: Db) {
    let too_long = saoma_server::Config {
        terminal_reversal_window: std::time::Duration::from_secs(2 * 86_400),
        ..config(&db)
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    assert!(saoma_server::start(too_long, listener).await.is_err(), "a window of days is refused at start");

    // A window of 0: a till never refunds a paid sale, however fresh.
    let never = saoma_server::Config { terminal_reversal_window: std::time::Duration::ZERO, ..config(&db) };
    let w = World::with_config(db, 1, 100_000, never).await;
    let wallet = w.wallet(0).await;
    let p = pay(&w, &wallet, "zero-1").await;
    assert_eq!(refused(w.till.cancel(&p).await), forbidden("reversal_window_closed"));
    w.merchant.refund(&p, "zero-r1", 1_000).await.unwrap();
    assert_eq!(w.till.payment(&p, 0).await.unwrap().status, "refunded");
}

async fn a_suspended_merchant_reads_but_changes_nothing(db: Db) {
    let w = World::new(db, 1, 100_000).await;
    let wallet = w.wallet(0).await;
    let p = pay(&w, &wallet, "s-1").await;
    let keys = w.merchant.own_keys().await.unwrap().data.len();
    let till_key = w.till.key_id().unwrap().to_string();
    w.admin.suspend_merchant(&w.merchant_id).await.unwrap();
    let balance = w.balance(0).await;

    // Reading goes on.
    assert_eq!(w.merchant.payment(&p, 0).await.unwrap().status, "succeeded");
    w.till.payment(&p, 0).await.unwrap();
    w.merchant.webhook_deliveries(None).await.unwrap();
    // Changes are refused.
    let suspended = forbidden("merchant_inactive");
    assert_eq!(refused(w.merchant.refund(&p, "s-r1", 100).await), suspended);
    assert_eq!(refused(w.merchant.cancel(&p).await), suspended);
    assert_eq!(refused(w.till.cancel(&p).await), suspended, "within the window, but suspended");
    assert_eq!(refused(w.merchant.own_create_key("manager", None).await), suspended);
    assert_eq!(refused(w.merchant.own_rotate_key(&till_key, 0).await), suspended);
    assert_eq!(refused(w.merchant.set_webhook("http://127.0.0.1:9/hook").await), suspended);
    assert_eq!((w.balance(0).await, refunds_of(&w, &p).await), (balance, 0));
    assert_eq!(w.merchant.own_keys().await.unwrap().data.len(), keys);
    w.till.payment(&p, 0).await.unwrap(); // not rotated out

    // Reinstated, it refunds again.
    w.admin.reinstate_merchant(&w.merchant_id, "documents checked").await.unwrap();
    w.merchant.refund(&p, "s-r1", 100).await.unwrap();
    assert_eq!(w.balance(0).await, balance + 100);
}

async fn expiry_of(w: &World, key_id: &str) -> Option<String> {
    let keys = w.merchant.own_keys().await.unwrap();
    keys.data.into_iter().find(|k| k.key_id == key_id).unwrap().expires_at
}

async fn no_rotation_extends_a_key(db: Db) {
    let w = World::new(db, 0, 0).await;
    let p = w.till.create_payment(&charge("k-1", 100, None)).await.unwrap();
    let till_key = w.till.key_id().unwrap().to_string();
    w.merchant.own_rotate_key(&till_key, 3600).await.unwrap();
    let end = expiry_of(&w, &till_key).await.expect("a rotated key has an end");
    // Rotating it again, by the owner or the operator, with the longest grace, keeps its end.
    w.merchant.own_rotate_key(&till_key, 7 * 86_400).await.unwrap();
    w.admin.admin_rotate_key(&till_key, 7 * 86_400).await.unwrap();
    assert_eq!(expiry_of(&w, &till_key).await.as_deref(), Some(end.as_str()));
    // A shorter grace does shorten it; once it has ended, it cannot be brought back.
    w.merchant.own_rotate_key(&till_key, 0).await.unwrap();
    assert_eq!(refused(w.till.payment(&p.id, 0).await).0, Some(401));
    let keys = w.merchant.own_keys().await.unwrap().data.len();
    let again = refused(w.merchant.own_rotate_key(&till_key, 3600).await);
    assert_eq!(again, (Some(409), Some("key_expired".into())));
    assert_eq!(refused(w.admin.admin_rotate_key(&till_key, 3600).await).1.as_deref(), Some("key_expired"));
    assert_eq!(w.merchant.own_keys().await.unwrap().data.len(), keys, "no key minted");
    assert_eq!(refused(w.till.payment(&p.id, 0).await).0, Some(401), "still ended");
}

on_both!(
    a_till_reverses_a_sale_only_within_the_window,
    the_window_is_the_operators,
    a_suspended_merchant_reads_but_changes_nothing,
    no_rotation_extends_a_key
);
