//! A payment locks nothing of its merchant's row on PostgreSQL, so a busy merchant's
//! concurrent payments do not each rewrite that row's lock list (a multixact) as the
//! foreign key from payments to merchants made them do (migration 23). SQLite has one
//! writer and no row locks: the test is PostgreSQL's alone, and says so when it has none.

use sqlx::{AnyConnection, Connection, Executor};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_payment_leaves_its_merchants_row_unlocked() {
    let name = format!("saoma_locks_{}", std::process::id());
    let Some(url) = saoma_store::test_postgres_database(&name).await else { return };
    let store = saoma_store::Store::open(&url).await.unwrap();
    let mut paying = AnyConnection::connect(&url).await.unwrap();
    paying
        .execute(
            "INSERT INTO merchants (id, name, mcc, city, country, currency, fee_bps, timezone, status, created_at) \
             VALUES ('m_hot', 'Hot', '5411', 'Shanghai', 'CN', 'CNY', 60, 'Asia/Shanghai', 'active', '2026-12-07T00:00:00Z')",
        )
        .await
        .unwrap();

    // A payment in flight, as a till's charge writes it before its commit.
    paying.execute("BEGIN").await.unwrap();
    paying
        .execute(
            "INSERT INTO payments (id, merchant_id, out_trade_no, amount, currency, subject, items, mode, status, created_at) \
             VALUES ('pay_1', 'm_hot', 'o-1', 100, 'CNY', 'lunch', '[]', 'cpm', 'pending', '2026-12-07T00:00:00Z')",
        )
        .await
        .unwrap();

    // Nothing holds the merchant's row: even an exclusive row lock is granted at once.
    let mut other = AnyConnection::connect(&url).await.unwrap();
    let locked = other.execute("SELECT id FROM merchants WHERE id = 'm_hot' FOR UPDATE NOWAIT").await;
    assert!(locked.is_ok(), "a payment in flight holds a lock on its merchant's row: {locked:?}");

    paying.execute("ROLLBACK").await.unwrap();
    drop((paying, other));
    store.close().await;
    saoma_store::drop_postgres_database(&url).await.unwrap();
}
