//! The lookup of a payment by its merchant and `out_trade_no` (every till request's
//! duplicate check, every retry), of a refund by `out_refund_no` and of a product by sku
//! or barcode (every sale of a product) goes through its unique key on both databases,
//! even when planned on an empty table, and statements and settlement still read the paid
//! payments and the refunds of a merchant through their own indexes.
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
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn postgres_lookups_by_a_merchants_key_use_the_unique_key() {
    let name = format!("saoma_plans_{}", std::process::id());
    let Some(url) = saoma_store::test_postgres_database(&name).await else { return };
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
    saoma_store::drop_postgres_database(&url).await.unwrap();
}
