//! Proves the tamper-evident audit log (an edit or a deletion made straight in the
//! database is detected and the first broken link named) and secrets at rest (sealed under
//! the master key, useless without it, re-sealed by a key rotation).

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

async fn secrets_are_sealed_at_rest_and_rotate(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let key = w.admin.create_key(&w.merchant_id, None).await.unwrap();
    let device = w.wallet(0).await.enroll_device(common::PIN).await.unwrap();
    let hook = w.merchant.set_webhook("http://127.0.0.1:9/hook").await.unwrap();
    let code = w.wallet(0).await.payment_code().await.unwrap().code;
    let before = w.till.create_payment(&charge("ref-before", 100, Some(&code))).await.unwrap();
    let mut stored = Vec::new();
    for sql in [
        "SELECT secret FROM api_keys",
        "SELECT secret FROM devices",
        "SELECT secret FROM webhook_endpoints",
        "SELECT seed FROM receipt_keys",
        "SELECT value FROM settings WHERE name IN ('customer_ref_key', 'code_mask_key')",
    ] {
        stored.extend(column(&w.db, sql).await);
    }
    assert!(stored.len() >= 8 && stored.iter().all(|v| v.starts_with("enc:v1:")), "{stored:?}");
    let everything = stored.join(" ");
    for secret in [key.secret.as_str(), device.secret.as_str(), hook["secret"].as_str().unwrap()] {
        assert!(!everything.contains(secret));
    }

    // A node with another key refuses to start; after a rotation the new key works.
    let customer_phone = w.customers[0].1.clone();
    let World { server, db, .. } = w;
    server.stop().await.unwrap();
    let start = |key: &str| {
        let config = saoma_server::Config { master_key: Some(key.into()), ..config(&db) };
        async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            saoma_server::start(config, listener).await
        }
    };
    let other = "77".repeat(32);
    assert!(start(&other).await.is_err());
    let n = saoma_server::rotate_master_key(&db.url, TEST_MASTER_KEY, &other).await.unwrap();
    assert!(n >= 8, "{n}");
    assert!(start(TEST_MASTER_KEY).await.is_err());
    let node = start(&other).await.unwrap();
    let merchant = saoma_client::Client::new(
        &node.url(),
        saoma_client::Credentials::Key { key_id: key.key_id.clone(), secret: key.secret.clone() },
    );
    let p = merchant.create_payment(&charge("after-rotation", 100, None)).await.unwrap();
    assert_eq!(p.status, "pending", "a signed request verifies with the re-sealed secret");
    // The platform keys survive the rotation: the customer's handle is unchanged.
    let wallet = saoma_client::Client::new(&node.url(), saoma_client::Credentials::None);
    let wallet = wallet.wallet_session(&customer_phone, PIN).await.unwrap();
    let code = wallet.payment_code().await.unwrap().code;
    let after = merchant.create_payment(&charge("ref-after", 100, Some(&code))).await.unwrap();
    assert_eq!(after.customer_ref, before.customer_ref);
    node.stop().await.unwrap();
}

on_both!(
    edits_and_deletions_are_detected,
    a_removed_record_is_detected,
    secrets_are_sealed_at_rest_and_rotate
);
