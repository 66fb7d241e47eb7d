//! The lookup of a payment by its merchant and `out_trade_no` (every till request's
//! duplicate check, every retry), of a refund by `out_refund_no` and of a product by sku
//! or barcode (every sale of a product) goes through its unique key on both databases,
//! even when planned on an empty table, and statements and settlement still read the paid
//! payments and the refunds of a merchant through their own indexes. The lookups whose
//! index leaves out the rows they can never find (partial indexes) still use it.
//!
//! PostgreSQL plans a prepared statement once per connection and may keep that plan: a
//! server that starts on a new database plans the lookup while `payments` is empty, when
//! every index of `merchant_id` costs the same. It once took the settlement index
//! `(merchant_id, paid_at)` and then read every payment of the merchant on each lookup,
//! so payments to a busy merchant slowed down as they piled up.

use saoma_store::Store;
use sqlx::{Connection, Row};

const LOOKUP: &str = "SELECT * FROM payments WHERE merchant_id = $1 AND out_trade_no = $2";
const PAID_IN_RANGE: &str =
    "SELECT * FROM payments WHERE merchant_id = $1 AND paid_at >= $2 AND paid_at < $3";

/// The other lookups of a row by its merchant and a key of that merchant, each with the
/// unique key PostgreSQL must plan it on and the columns SQLite must search on.
const KEYED_LOOKUPS: &[(&str, &str, &str)] = &[
    (
        "SELECT * FROM refunds WHERE merchant_id = $1 AND out_refund_no = $2",
        "refunds_merchant_id_out_refund_no_key",
        "merchant_id=? AND out_refund_no=?",
    ),
    (
        "SELECT * FROM products WHERE merchant_id = $1 AND sku = $2",
        "products_merchant_id_sku_key",
        "merchant_id=? AND sku=?",
    ),
    (
        "SELECT * FROM products WHERE merchant_id = $1 AND barcode = $2",
        "products_merchant_barcode",
        "merchant_id=? AND barcode=?",
    ),
];
/// Lookups served by a partial index (migration 24: the rows whose key is NULL, or paid
/// payments for the expiry sweep, are left out), each with the index it must use.
const PARTIAL_LOOKUPS: &[(&str, &str)] = &[
    ("SELECT * FROM payments WHERE qr_ref = $1", "qr_ref"),
    (
        "SELECT id FROM payments WHERE status = 'pending' AND expires_at IS NOT NULL AND expires_at <= $1 \
         ORDER BY expires_at LIMIT 100",
        "payments_pending_expiry",
    ),
    ("SELECT * FROM receipts WHERE refund_id = $1", "receipts_refund"),
    ("SELECT COUNT(*) FROM payments WHERE terminal_id = $1 AND created_at >= $2", "payments_terminal_time"),
    ("SELECT COUNT(*) FROM payments WHERE customer_id = $1 AND created_at >= $2", "payments_customer_time"),
    ("SELECT * FROM events WHERE terminal_id = $1 ORDER BY tx_id, seq LIMIT 10", "events_terminal_position"),
];
/// The partial indexes of migration 24 (migration 25 makes the unique key of `qr_ref`
/// partial too, on PostgreSQL only: on SQLite it is a table constraint).
const PARTIAL_INDEXES: &[&str] = &[
    "payments_pending_expiry",
    "receipts_refund",
    "payments_terminal_time",
    "payments_customer_time",
    "events_terminal_position",
];
const REFUNDED_IN_RANGE: &str =
    "SELECT * FROM refunds WHERE merchant_id = $1 AND created_at >= $2 AND created_at < $3";

/// The plan of `query` (its parameters text), one line per row, as the database explains it.
async fn plan(url: &str, postgres: bool, query: &str) -> String {
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let values = ["'mch_1'", "'2026-01-01'", "'2026-01-02'"];
    let explain = if postgres {
        // The plan a connection keeps: the generic one, made before any value is known.
        sqlx::raw_sql("SET plan_cache_mode = force_generic_plan").execute(&mut conn).await.unwrap();
        let count = query.matches('$').count();
        let types = vec!["text"; count].join(", ");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PREPARE q({types}) AS {query}")))
            .execute(&mut conn)
            .await
            .unwrap();
        format!("EXPLAIN EXECUTE q({})", values[..count].join(", "))
    } else {
        let mut q = query.to_string();
        for (i, v) in values.iter().enumerate() {
            q = q.replace(&format!("${}", i + 1), v);
        }
        format!("EXPLAIN QUERY PLAN {q}")
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(explain)).fetch_all(&mut conn).await.unwrap();
    let column = if postgres { 0 } else { 3 };
    rows.iter().map(|r| r.get::<String, _>(column)).collect::<Vec<_>>().join("\n")
}

/// Each of `indexes` is partial: its definition, read by `definition` (`$1` the index's
/// name), has a `WHERE`.
async fn assert_partial(url: &str, definition: &str, indexes: &[&str]) {
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    for index in indexes {
        let (sql,): (String,) = sqlx::query_as(sqlx::AssertSqlSafe(definition.to_string()))
            .bind(*index)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert!(sql.contains(" WHERE "), "{index} must be partial: {sql}");
    }
    conn.close().await.unwrap();
}

#[tokio::test]
async fn sqlite_lookups_by_a_merchants_key_use_the_unique_key() {
    let dir = std::env::temp_dir().join(format!("saoma_plans_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("plans.db").display());
    Store::open(&url).await.unwrap().close().await;
    let lookup = plan(&url, false, LOOKUP).await;
    assert!(
        lookup.contains("merchant_id=? AND out_trade_no=?"),
        "the lookup must search on both columns:\n{lookup}"
    );
    let paid = plan(&url, false, PAID_IN_RANGE).await;
    assert!(paid.contains("payments_merchant_paid"), "paid payments in a range by their index:\n{paid}");
    for (query, _, columns) in KEYED_LOOKUPS {
        let lookup = plan(&url, false, query).await;
        assert!(lookup.contains(columns), "{query} must search on {columns}:\n{lookup}");
    }
    let refunded = plan(&url, false, REFUNDED_IN_RANGE).await;
    assert!(refunded.contains("refunds_merchant_created"), "refunds in a range by their index:\n{refunded}");
    for (query, index) in PARTIAL_LOOKUPS {
        let lookup = plan(&url, false, query).await;
        assert!(lookup.contains("USING") && lookup.contains(index), "{query} must use {index}:\n{lookup}");
    }
    assert_partial(&url, "SELECT sql FROM sqlite_master WHERE name = $1", PARTIAL_INDEXES).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn postgres_lookups_by_a_merchants_key_use_the_unique_key() {
    let name = format!("saoma_plans_{}", std::process::id());
    let Some(db) = saoma_store::test_postgres_database(&name).await else { return };
    let url = db.url.clone();
    Store::open(&url).await.unwrap().close().await;
    let lookup = plan(&url, true, &format!("{LOOKUP} FOR UPDATE")).await;
    assert!(
        lookup.contains("payments_merchant_id_out_trade_no_key") && lookup.contains("out_trade_no = $2"),
        "the generic plan must look the payment up by the unique key:\n{lookup}"
    );
    let paid = plan(&url, true, PAID_IN_RANGE).await;
    assert!(paid.contains("payments_merchant_paid"), "paid payments in a range by their index:\n{paid}");
    for (query, key, _) in KEYED_LOOKUPS {
        let lookup = plan(&url, true, query).await;
        assert!(
            lookup.contains(key) && !lookup.contains("Filter"),
            "the generic plan of {query} must use {key} on both columns:\n{lookup}"
        );
    }
    let refunded = plan(&url, true, REFUNDED_IN_RANGE).await;
    assert!(refunded.contains("refunds_merchant_created"), "refunds in a range by their index:\n{refunded}");
    for (query, index) in PARTIAL_LOOKUPS {
        let lookup = plan(&url, true, query).await;
        assert!(
            lookup.contains(index) && !lookup.contains("Seq Scan"),
            "the generic plan of {query} must use {index}:\n{lookup}"
        );
    }
    let postgres_partial = [PARTIAL_INDEXES, &["payments_qr_ref"]].concat();
    assert_partial(&url, "SELECT indexdef FROM pg_indexes WHERE indexname = $1", &postgres_partial).await;
}
