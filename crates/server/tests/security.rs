//! Proves the tamper-evident audit log (an edit or a deletion made straight in the
//! database is detected and the first broken link named; against the signed checkpoints a
//! chain cut at its tail or removed whole is detected too, and a checkpoint cannot be
//! forged or quietly removed) and secrets at rest: sealed under
//! the master key, useless without it, re-sealed by a key rotation, and bound to their place
//! (a sealed value copied to another row, or a plain value written over a sealed one, is
//! refused when used; older values are sealed to their place once, at the first start,
//! also when two nodes start at once).

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
    assert!(v.intact, "{v:?}");
    // Merchant, terminals, keys, customer, top-up, payment, refund: all recorded.
    assert!(v.records >= 8, "{v:?}");

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
    assert!(!v.intact);
    let b = &v.broken[0];
    assert_eq!(
        (b.action.clone().flatten(), b.object_id.clone().flatten()),
        (Some("payment.charge".to_string()), Some(p.id.clone())),
        "{v:?}"
    );
    assert!(b.reason.contains("changed"));
}

async fn a_removed_record_is_detected(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let code = w.wallet(0).await.payment_code().await.unwrap().code;
    let p = w.till.create_payment(&charge("au-2", 500, Some(&code))).await.unwrap();
    sql(&w.db, &format!("DELETE FROM audit_log WHERE object_id = '{}'", p.id)).await;
    let v = w.admin.verify_audit().await.unwrap();
    assert!(!v.intact, "{v:?}");
    assert!(v.broken[0].reason.contains("removed") || v.broken[0].reason.contains("missing"), "{v:?}");
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
        "SELECT value FROM settings WHERE name IN ('customer_ref_key', 'code_locator_key')",
    ] {
        stored.extend(column(&w.db, sql).await);
    }
    assert!(stored.len() >= 8 && stored.iter().all(|v| v.starts_with("enc:v2:")), "{stored:?}");
    let everything = stored.join(" ");
    for secret in [key.secret.as_str(), device.secret.as_str(), hook.secret.as_str()] {
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

/// The chain and position of the newest audit record: the head of its chain.
async fn newest_record(db: &Db) -> (i64, i64) {
    let row = column(
        db,
        "SELECT CAST(chain AS TEXT) || ':' || CAST(chain_seq AS TEXT) FROM audit_log \
         WHERE seq = (SELECT MAX(seq) FROM audit_log)",
    )
    .await;
    let (chain, seq) = row[0].split_once(':').unwrap();
    (chain.parse().unwrap(), seq.parse().unwrap())
}

/// Cuts the newest record off its chain and moves the head back to match, so the chain on
/// its own is consistent again.
async fn cut_tail(db: &Db) {
    let (chain, seq) = newest_record(db).await;
    sql(db, &format!("DELETE FROM audit_log WHERE chain = {chain} AND chain_seq = {seq}")).await;
    if seq == 1 {
        sql(db, &format!("DELETE FROM audit_heads WHERE chain = {chain}")).await;
    } else {
        sql(
            db,
            &format!(
                "UPDATE audit_heads SET seq_no = {}, hash = (SELECT hash FROM audit_log \
                 WHERE chain = {chain} AND chain_seq = {}) WHERE chain = {chain}",
                seq - 1,
                seq - 1
            ),
        )
        .await;
    }
}

fn reasons(v: &saoma_api::AuditVerification) -> String {
    v.broken.iter().map(|b| b.reason.as_str()).collect::<Vec<_>>().join("; ")
}

async fn a_cut_tail_is_detected_against_the_checkpoint(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let code = w.wallet(0).await.payment_code().await.unwrap().code;
    let p = w.till.create_payment(&charge("cut-1", 500, Some(&code))).await.unwrap();
    w.merchant.refund(&p.id, "cut-r1", 100).await.unwrap();
    let c = w.admin.audit_checkpoint().await.unwrap();
    assert!(c.written, "{c:?}");
    assert!(c.jws.split('.').count() == 3);
    let v = w.admin.verify_audit().await.unwrap();
    assert!(v.intact, "{v:?}");
    assert_eq!(v.checkpoint.as_ref().map(|k| k.seq), Some(c.seq), "{v:?}");

    // The refund's record cut off, its chain's head moved back: every link still holds.
    cut_tail(&w.db).await;
    let v = w.admin.verify_audit().await.unwrap();
    assert!(!v.intact, "{v:?}");
    assert!(reasons(&v).contains("cut") || reasons(&v).contains("removed whole"), "{v:?}");
}

async fn a_chain_removed_whole_is_detected(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let code = w.wallet(0).await.payment_code().await.unwrap().code;
    w.till.create_payment(&charge("whole-1", 500, Some(&code))).await.unwrap();
    w.admin.audit_checkpoint().await.unwrap();
    let before = w.admin.verify_audit().await.unwrap();
    assert!(before.intact, "{before:?}");

    let (chain, _) = newest_record(&w.db).await;
    sql(&w.db, &format!("DELETE FROM audit_log WHERE chain = {chain}")).await;
    sql(&w.db, &format!("DELETE FROM audit_heads WHERE chain = {chain}")).await;
    let v = w.admin.verify_audit().await.unwrap();
    assert!(!v.intact, "{v:?}");
    assert!(reasons(&v).contains("removed whole"), "{v:?}");
    assert_eq!(v.chains, before.chains - 1, "{v:?}");
}

async fn a_settlement_anchors_the_heads(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let code = w.wallet(0).await.payment_code().await.unwrap().code;
    w.till.create_payment(&charge("stl-1", 500, Some(&code))).await.unwrap();
    let today = chrono::Utc::now().date_naive().to_string();
    w.admin.settle(&today).await.unwrap();
    // No checkpoint asked for: the settlement run signed one that covers its own record.
    cut_tail(&w.db).await;
    let v = w.admin.verify_audit().await.unwrap();
    assert!(!v.intact, "{v:?}");
}

async fn a_forged_or_removed_checkpoint_is_refused(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let code = w.wallet(0).await.payment_code().await.unwrap().code;
    w.till.create_payment(&charge("fake-1", 500, Some(&code))).await.unwrap();
    let c = w.admin.audit_checkpoint().await.unwrap();
    // A checkpoint rewritten to match a cut log: its signature no longer holds.
    let jws = c.jws.as_str();
    let parts: Vec<&str> = jws.split('.').collect();
    let forged_body = parts[1].chars().rev().collect::<String>();
    let forged = format!("{}.{forged_body}.{}", parts[0], parts[2]);
    sql(&w.db, &format!("UPDATE audit_checkpoints SET jws = '{forged}' WHERE seq = {}", c.seq)).await;
    let v = w.admin.verify_audit().await.unwrap();
    assert!(!v.intact, "{v:?}");
    assert!(reasons(&v).contains("cannot be believed"), "{v:?}");
    // Removing every checkpoint does not make the log look unanchored and fine.
    sql(&w.db, "DELETE FROM audit_checkpoints").await;
    let v = w.admin.verify_audit().await.unwrap();
    assert!(!v.intact, "{v:?}");
    assert!(reasons(&v).contains("no signed checkpoint"), "{v:?}");
}

/// Starts a node on `db` with the test master key.
async fn start(db: &Db) -> anyhow::Result<saoma_server::RunningServer> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    saoma_server::start(config(db), listener).await
}

fn signed(url: &str, key_id: &str, secret: &str) -> saoma_client::Client {
    saoma_client::Client::new(
        url,
        saoma_client::Credentials::Key { key_id: key_id.into(), secret: secret.into() },
    )
}

async fn a_secret_moved_or_written_plain_is_refused_at_use(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    // The insider's own key, whose secret they know, and another merchant's key.
    let mine = w.admin.create_key(&w.merchant_id, None).await.unwrap();
    let other = w.admin.create_merchant(&merchant_req("Other Shop")).await.unwrap();
    w.admin.approve_merchant(&other.id).await.unwrap();
    let victim = w.admin.create_key(&other.id, None).await.unwrap();
    let as_victim = signed(&w.url(), &victim.key_id, &victim.secret);
    as_victim.create_payment(&charge("seal-0", 100, None)).await.unwrap();

    // The insider's sealed secret copied into the victim's row does not sign for it.
    sql(
        &w.db,
        &format!(
            "UPDATE api_keys SET secret = (SELECT secret FROM api_keys WHERE id = '{}') WHERE id = '{}'",
            mine.key_id, victim.key_id
        ),
    )
    .await;
    let forged = signed(&w.url(), &victim.key_id, &mine.secret);
    let err = forged.create_payment(&charge("seal-1", 100, None)).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(500), Some("internal_error")), "{err}");

    // Nor does a plain value written over the sealed one.
    sql(&w.db, &format!("UPDATE api_keys SET secret = 'sk_known' WHERE id = '{}'", victim.key_id)).await;
    let forged = signed(&w.url(), &victim.key_id, "sk_known");
    let err = forged.create_payment(&charge("seal-2", 100, None)).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(500), Some("internal_error")), "{err}");
    let made = column(&w.db, "SELECT id FROM payments WHERE out_trade_no IN ('seal-1', 'seal-2')").await;
    assert!(made.is_empty(), "nothing was created: {made:?}");
}

async fn a_device_secret_written_plain_does_not_pay(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let d = w.wallet(0).await.enroll_device(PIN).await.unwrap();
    // The device's own secret, written back plain as an insider or an old version would.
    sql(&w.db, &format!("UPDATE devices SET secret = '{}' WHERE id = '{}'", d.secret, d.device_id)).await;
    let code = d.code_at(chrono::Utc::now().timestamp()).unwrap();
    let err = w.till.create_payment(&charge("plain-dev", 500, Some(&code))).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(500), Some("internal_error")), "{err}");
    assert_eq!(w.balance(0).await, 10_000);
}

async fn a_platform_key_written_plain_stops_the_start(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let World { server, db, .. } = w;
    server.stop().await.unwrap();
    sql(&db, &format!("UPDATE settings SET value = '{}' WHERE name = 'customer_ref_key'", "ab".repeat(32)))
        .await;
    let err = start(&db).await.err().expect("a plain platform key is refused");
    assert!(format!("{err:#}").contains("customer_ref_key"), "{err:#}");
}

/// A value sealed the way versions before place binding sealed it: no associated data.
fn sealed_without_place(plain: &str) -> String {
    use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
    use base64::Engine;
    let key = hex::decode(TEST_MASTER_KEY).unwrap();
    let cipher = aes_gcm::Aes256Gcm::new(aes_gcm::Key::<aes_gcm::Aes256Gcm>::from_slice(&key));
    let nonce = aes_gcm::Aes256Gcm::generate_nonce(&mut OsRng);
    let sealed = cipher.encrypt(&nonce, plain.as_bytes()).unwrap();
    format!(
        "enc:v1:{}",
        base64::engine::general_purpose::STANDARD.encode([nonce.as_slice(), &sealed].concat())
    )
}

async fn older_values_are_sealed_to_their_place_once_at_start(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let plain = w.admin.create_key(&w.merchant_id, None).await.unwrap();
    let unbound = w.admin.create_key(&w.merchant_id, None).await.unwrap();
    let World { server, db, .. } = w;
    server.stop().await.unwrap();
    // The database as an older version left it.
    sql(&db, &format!("UPDATE api_keys SET secret = '{}' WHERE id = '{}'", plain.secret, plain.key_id)).await;
    let v1 = sealed_without_place(&unbound.secret);
    sql(&db, &format!("UPDATE api_keys SET secret = '{v1}' WHERE id = '{}'", unbound.key_id)).await;
    let check = sealed_without_place("saoma master key check");
    sql(&db, &format!("UPDATE settings SET value = '{check}' WHERE name = 'master_key_check'")).await;

    // The first start seals them to their place; both keys still sign.
    let node = start(&db).await.unwrap();
    for k in [&plain, &unbound] {
        let p = signed(&node.url(), &k.key_id, &k.secret)
            .create_payment(&charge(&format!("mig-{}", k.key_id), 100, None))
            .await
            .unwrap();
        assert_eq!(p.status, "pending");
    }
    let stored = column(&db, "SELECT secret FROM api_keys").await;
    assert!(stored.iter().all(|v| v.starts_with("enc:v2:")), "{stored:?}");
    let check = column(&db, "SELECT value FROM settings WHERE name = 'master_key_check'").await;
    assert!(check[0].starts_with("enc:v2:"));
    node.stop().await.unwrap();

    // The migration ran once: a plain value written afterwards is refused, restart or not.
    sql(&db, &format!("UPDATE api_keys SET secret = '{}' WHERE id = '{}'", plain.secret, plain.key_id)).await;
    let node = start(&db).await.unwrap();
    let err = signed(&node.url(), &plain.key_id, &plain.secret)
        .create_payment(&charge("mig-after", 100, None))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(500), "{err}");
    let stored = column(&db, &format!("SELECT secret FROM api_keys WHERE id = '{}'", plain.key_id)).await;
    assert_eq!(stored, vec![plain.secret.clone()], "a refused value is left as it is");
    node.stop().await.unwrap();
}

async fn two_nodes_migrate_once_and_share_checkpoints(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let key = w.admin.create_key(&w.merchant_id, None).await.unwrap();
    let World { server, db, .. } = w;
    server.stop().await.unwrap();
    sql(&db, &format!("UPDATE api_keys SET secret = '{}' WHERE id = '{}'", key.secret, key.key_id)).await;
    let check = sealed_without_place("saoma master key check");
    sql(&db, &format!("UPDATE settings SET value = '{check}' WHERE name = 'master_key_check'")).await;

    // Two nodes start at once on the older database: one migrates, both serve.
    let (a, b) = tokio::join!(start(&db), start(&db));
    let (a, b) = (a.unwrap(), b.unwrap());
    for (i, node) in [&a, &b].into_iter().enumerate() {
        let p = signed(&node.url(), &key.key_id, &key.secret)
            .create_payment(&charge(&format!("two-{i}"), 100, None))
            .await
            .unwrap();
        assert_eq!(p.status, "pending");
    }
    let stored = column(&db, "SELECT secret FROM api_keys").await;
    assert!(stored.iter().all(|v| v.starts_with("enc:v2:")), "{stored:?}");

    // A checkpoint signed on node B anchors what node A verifies.
    let admin_a = saoma_client::Client::new(&a.url(), saoma_client::Credentials::Admin(ADMIN_TOKEN.into()));
    let admin_b = saoma_client::Client::new(&b.url(), saoma_client::Credentials::Admin(ADMIN_TOKEN.into()));
    admin_b.audit_checkpoint().await.unwrap();
    assert!(admin_a.verify_audit().await.unwrap().intact);
    cut_tail(&db).await;
    let v = admin_a.verify_audit().await.unwrap();
    assert!(!v.intact, "{v:?}");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

on_both!(
    edits_and_deletions_are_detected,
    a_removed_record_is_detected,
    secrets_are_sealed_at_rest_and_rotate,
    a_secret_moved_or_written_plain_is_refused_at_use,
    a_platform_key_written_plain_stops_the_start,
    a_device_secret_written_plain_does_not_pay,
    older_values_are_sealed_to_their_place_once_at_start,
    a_cut_tail_is_detected_against_the_checkpoint,
    a_chain_removed_whole_is_detected,
    a_settlement_anchors_the_heads,
    a_forged_or_removed_checkpoint_is_refused
);
on_postgres!(two_nodes_migrate_once_and_share_checkpoints);
