//! Proves the tamper-evident audit log: every money movement and privileged action is a
//! chained record; an edit or a deletion made straight in the database is detected and the
//! first broken link is named.

#[macro_use]
mod common;

use common::*;

async fn sql(db: &Db, statement: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(statement.to_string())).execute(&pool).await.unwrap();
    pool.close().await;
}

async fn edits_and_deletions_are_detected(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let code = w.wallet(0).await.payment_code().await.unwrap().code;
    let p = w.till.create_payment(&charge("au-1", 500, Some(&code))).await.unwrap();
    w.merchant.refund(&p.id, "au-r1", 100).await.unwrap();
    let v = w.admin.verify_audit().await.unwrap();
    assert_eq!(v["intact"], true, "{v}");
    // Merchant, terminals, keys, customer, top-up, payment, refund: all recorded.
    assert!(v["records"].as_i64().unwrap() >= 8, "{v}");

    // An edited amount is found, and the record named.
    sql(
        &w.db,
        &format!(
            "UPDATE audit_log SET detail = '{{\"amount\":1,\"currency\":\"CNY\"}}' WHERE object_id = '{}'",
            p.id
        ),
    )
    .await;
    let v = w.admin.verify_audit().await.unwrap();
    assert_eq!(v["intact"], false);
    let b = &v["broken"][0];
    assert_eq!(
        (b["action"].as_str(), b["object_id"].as_str()),
        (Some("payment.charge"), Some(p.id.as_str())),
        "{v}"
    );
    assert!(b["reason"].as_str().unwrap().contains("changed"));
}

async fn a_removed_record_is_detected(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let code = w.wallet(0).await.payment_code().await.unwrap().code;
    let p = w.till.create_payment(&charge("au-2", 500, Some(&code))).await.unwrap();
    sql(&w.db, &format!("DELETE FROM audit_log WHERE object_id = '{}'", p.id)).await;
    let v = w.admin.verify_audit().await.unwrap();
    assert_eq!(v["intact"], false, "{v}");
    assert!(
        v["broken"][0]["reason"].as_str().unwrap().contains("removed")
            || v["broken"][0]["reason"].as_str().unwrap().contains("missing"),
        "{v}"
    );
}

on_both!(edits_and_deletions_are_detected, a_removed_record_is_detected);
