//! Proves that data corrupted behind the server's back is answered as the server's own
//! error, never passed off as an empty or default value:
//! - a payment whose stored lines no longer parse is neither shown nor counted in a
//!   report as a sale without lines;
//! - a merchant whose stored time zone is unknown gets no statement cut in UTC instead;
//! - an event whose stored data is unreadable reaches the live feed as an `unreadable`
//!   frame with its cursor, and the feed goes on to the next event rather than stall.
//!
//! (A negative or oversized fee rate, the other such case, is refused by the database's
//! own check.)

#[macro_use]
mod common;

use common::*;
use std::time::Duration;

/// Runs `sql` with `id` as `$1` straight on the database, and checks it changed one row.
async fn plant(db: &Db, sql: &'static str, id: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    let done = sqlx::query(sql).bind(id).execute(&pool).await.unwrap();
    assert_eq!(done.rows_affected(), 1, "{sql}");
    pool.close().await;
}

fn is_internal(e: &saoma_client::ClientError) -> bool {
    e.status() == Some(500) && e.code() == Some("internal_error")
}

async fn corrupt_rows_are_errors_not_defaults(db: Db) {
    let w = World::new(db, 1, 100_000).await;
    let wallet = w.wallet(0).await;
    let code = wallet.payment_code().await.unwrap().code;
    let paid = w.till.create_payment(&charge("cr-1", 1250, Some(&code))).await.unwrap();
    assert_eq!(w.till.payment(&paid.id, 0).await.unwrap().id, paid.id);
    let today = chrono::Utc::now().date_naive().to_string();
    assert!(w.merchant.bill(&today).await.is_ok());

    plant(&w.db, "UPDATE payments SET items = 'not json' WHERE id = $1", &paid.id).await;
    let e = w.till.payment(&paid.id, 0).await.unwrap_err();
    assert!(is_internal(&e), "{e:?}");
    // The merchant's sales report counts the payment's lines, so it cannot be drawn.
    let report = w.merchant.sales_report(1).await.unwrap_err();
    assert!(is_internal(&report), "{report:?}");

    plant(&w.db, "UPDATE merchants SET timezone = 'Mars/Olympus' WHERE id = $1", &w.merchant_id).await;
    let bill = w.merchant.bill(&today).await.unwrap_err();
    assert!(is_internal(&bill), "{bill:?}");
}

async fn an_unreadable_event_does_not_stall_the_feed(db: Db) {
    let w = World::new(db, 1, 100_000).await;
    let wallet = w.wallet(0).await;
    let mut paid = Vec::new();
    for i in 0..2 {
        let code = wallet.payment_code().await.unwrap().code;
        paid.push(w.till.create_payment(&charge(&format!("ev-{i}"), 500, Some(&code))).await.unwrap());
    }
    plant(&w.db, "UPDATE events SET data = '{' WHERE data LIKE '%' || $1 || '%'", &paid[0].id).await;

    let mut feed = w.merchant.event_feed(Some("0")).await.unwrap();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(10), feed.next())
            .await
            .expect("no frame within 10 s")
            .unwrap()
            .expect("feed closed")
    };
    let bad = next().await;
    assert_eq!(bad.kind, "unreadable", "{bad:?}");
    assert_eq!(bad.body["type"], "payment.succeeded");
    assert_eq!(bad.body["error"]["code"], "internal_error");
    assert!(bad.body.get("data").is_none(), "no made-up data: {bad:?}");
    let good = next().await;
    assert_eq!(
        (good.kind.as_str(), &good.body["data"]["id"]),
        ("payment.succeeded", &paid[1].id.as_str().into())
    );

    // A client resuming from the unreadable frame's cursor goes on after it.
    let mut resumed = w.merchant.event_feed(Some(&bad.id)).await.unwrap();
    let again =
        tokio::time::timeout(Duration::from_secs(10), resumed.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(again.id, good.id);
}

on_both!(corrupt_rows_are_errors_not_defaults, an_unreadable_event_does_not_stall_the_feed);
