//! What a busy merchant's concurrent payments share on PostgreSQL, and what they do not:
//! two open transactions of one node post to different shard rows and append to
//! different audit chains, each to one shard and the chain of the same number; and a
//! payment locks nothing of its merchant's row, so concurrent payments do not each
//! rewrite that row's lock list (a multixact), as the foreign key from payments to
//! merchants made them do (migration 23). SQLite has one writer and no row locks: the
//! tests are PostgreSQL's alone, and say so when it has none.

use saoma_core::ledger::top_up_entry;
use saoma_core::money::{Currency, Money};
use saoma_store::AuditRecord;
use sqlx::{AnyConnection, Connection, Executor};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_open_transactions_post_to_shards_and_chains_of_their_own() {
    let name = format!("saoma_shards_{}", std::process::id());
    let Some(db) = saoma_store::test_postgres_database(&name).await else { return };
    let url = db.url.clone();
    let store = saoma_store::Store::open(&url).await.unwrap();
    let now = "2026-12-07T00:00:00.000Z";
    let mut open = Vec::new();
    for i in 0..2 {
        let mut tx = store.begin().await.unwrap();
        let entry = top_up_entry(&format!("c_{i}"), Money::new(100, Currency::CNY)).unwrap();
        tx.post_entry(&format!("je_{i}"), "top_up", &format!("tu_{i}"), &entry, now).await.unwrap();
        let audit = AuditRecord {
            actor: "test",
            action: "top_up",
            object_id: &format!("tu_{i}"),
            detail: "{}".into(),
        };
        tx.insert_audit(&audit, now).await.unwrap();
        open.push(tx);
    }
    for tx in open {
        tx.commit().await.unwrap();
    }

    let mut conn = AnyConnection::connect(&url).await.unwrap();
    let mut shards = Vec::new();
    for i in 0..2 {
        let (account,): (String,) = sqlx::query_as(
            "SELECT account_id FROM postings WHERE entry_id = $1 AND account_id LIKE 'cash_in:%'",
        )
        .bind(format!("je_{i}"))
        .fetch_one(&mut conn)
        .await
        .unwrap();
        let (chain,): (i64,) = sqlx::query_as("SELECT chain FROM audit_log WHERE object_id = $1")
            .bind(format!("tu_{i}"))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        let shard: i64 = account.rsplit('#').next().unwrap().parse().unwrap();
        assert_eq!(shard, chain, "a transaction's postings and audit record share its shard number");
        shards.push(shard);
    }
    assert_ne!(shards[0], shards[1], "two open transactions of one node hold different shards");
    drop(conn);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_payment_leaves_its_merchants_row_unlocked() {
    let name = format!("saoma_locks_{}", std::process::id());
    let Some(db) = saoma_store::test_postgres_database(&name).await else { return };
    let url = db.url.clone();
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
}
