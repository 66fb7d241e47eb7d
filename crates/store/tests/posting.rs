//! A charge's posting after its wallet is locked (`lock_wallets`, then
//! `post_entry_then_audit`): on PostgreSQL the wallet's debit, the other accounts and the
//! audit chain's head go in one statement. These tests prove what that must keep:
//! the no-overdraft backstop still refuses a debit the balance cannot pay (on both
//! databases), the head is locked by the posting itself, before the audit record is
//! appended, and the chain stays linked, from a chain's very first record on; while the
//! posting waits for a merchant's account row it holds no head, and the head it then
//! locks is the one committed meanwhile; while the payment's row, saved first in the same
//! statement, waits for its key, it holds no account and no head. On SQLite the posting
//! reads the head in its one call and the chain stays linked. Two nodes charging and
//! refunding the same wallets and merchants at once neither deadlock nor lose a cent or a
//! link of a chain.

use saoma_core::ledger::{payment_entry, top_up_entry};
use saoma_core::money::{Currency, Money};
use saoma_core::payment::{Order, Payment, PaymentMode};
use saoma_store::{AuditRecord, MerchantRow, Store, StoreError};
use sqlx::{AnyConnection, Connection};

const NOW: &str = "2026-12-07T00:00:00.000Z";

fn cny(minor: i64) -> Money {
    Money::new(minor, Currency::CNY)
}

fn audit(object_id: &str) -> AuditRecord<'_> {
    AuditRecord { actor: "test", action: "payment.charge", object_id, detail: serde_json::json!({}) }
}

/// Gives customer `c` a balance of `minor`, committed.
async fn top_up(store: &Store, c: &str, minor: i64) {
    let mut tx = store.begin().await.unwrap();
    let entry = top_up_entry(c, cny(minor)).unwrap();
    tx.post_entry(&format!("je_top_{c}"), "top_up", &format!("tu_{c}"), &entry, NOW).await.unwrap();
    tx.commit().await.unwrap();
}

/// Charges `c` `minor` for merchant `m` the way the charge service does; the open
/// transaction, or the posting's error.
async fn charge(store: &Store, c: &str, m: &str, minor: i64) -> Result<saoma_store::WriteTx, StoreError> {
    let mut tx = store.begin().await.unwrap();
    tx.lock_wallets(&[c], Currency::CNY).await.unwrap();
    let entry = payment_entry(c, m, cny(minor), cny(1)).unwrap();
    let id = format!("pay_{c}_{minor}");
    tx.post_entry_then_audit(&format!("je_{id}"), "payment", &id, &entry, NOW).await?;
    Ok(tx)
}

async fn balance(url: &str, account: &str) -> Option<i64> {
    let mut conn = AnyConnection::connect(url).await.unwrap();
    sqlx::query_as::<_, (i64,)>("SELECT balance FROM accounts WHERE id = $1")
        .bind(account)
        .fetch_optional(&mut conn)
        .await
        .unwrap()
        .map(|(b,)| b)
}

/// Every chain's records follow each other (sequence numbers without a gap, each one's
/// `prev_hash` the hash before it) and end at the chain's head.
async fn assert_chains_linked(url: &str) -> usize {
    let mut conn = AnyConnection::connect(url).await.unwrap();
    let rows: Vec<(i64, i64, String, String)> =
        sqlx::query_as("SELECT chain, chain_seq, prev_hash, hash FROM audit_log ORDER BY chain, chain_seq")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let heads: Vec<(i64, i64, String)> =
        sqlx::query_as("SELECT chain, seq_no, hash FROM audit_heads").fetch_all(&mut conn).await.unwrap();
    for (chain, seq_no, hash) in &heads {
        let mut prev = (0, saoma_core::audit::GENESIS.to_string());
        for (_, seq, prev_hash, h) in rows.iter().filter(|r| r.0 == *chain) {
            assert_eq!((*seq, prev_hash), (prev.0 + 1, &prev.1), "chain {chain} broken at {seq}");
            prev = (*seq, h.clone());
        }
        assert_eq!((&prev.0, &prev.1), (seq_no, hash), "chain {chain}'s head is its last record");
    }
    rows.len()
}

async fn overdraft_is_refused(store: &Store, url: &str) {
    top_up(store, "c_poor", 100).await;
    let refused = charge(store, "c_poor", "m_1", 500).await.err();
    assert!(
        matches!(&refused, Some(StoreError::InsufficientFunds(a)) if a.contains("c_poor")),
        "a debit past the balance is refused by the backstop: {refused:?}"
    );
    assert_eq!(
        balance(url, "customer_wallet:c_poor:CNY").await,
        Some(100),
        "nothing of the refused posting landed"
    );
    let mut conn = AnyConnection::connect(url).await.unwrap();
    let (credited,): (i64,) = sqlx::query_as(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM accounts WHERE kind IN ('merchant_payable', 'fee_revenue')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(credited, 0, "nor any credit of the merchant or of the fees");
}

#[tokio::test]
async fn sqlite_a_debit_past_the_balance_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("posting.db").display());
    let store = Store::open_with(&url, false).await.unwrap();
    overdraft_is_refused(&store, &url).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_debit_past_the_balance_is_refused() {
    let name = format!("saoma_posting_overdraft_{}", std::process::id());
    let Some(db) = saoma_store::test_postgres_database(&name).await else { return };
    let store = Store::open_with(&db.url, false).await.unwrap();
    overdraft_is_refused(&store, &db.url).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_the_posting_locks_the_audit_head_and_the_chain_stays_linked() {
    let name = format!("saoma_posting_head_{}", std::process::id());
    let Some(db) = saoma_store::test_postgres_database(&name).await else { return };
    let url = db.url.clone();
    let store = Store::open_with(&url, false).await.unwrap();
    top_up(&store, "c_rich", 10_000).await;

    // A chain's first record: no head yet, so the audit record makes it.
    let mut first = charge(&store, "c_rich", "m_1", 300).await.unwrap();
    first.insert_audit(&audit("pay_first"), NOW).await.unwrap();
    first.commit().await.unwrap();

    // Every chain has a head now; the posting alone locks this transaction's.
    let mut conn = AnyConnection::connect(&url).await.unwrap();
    seed_heads(&mut conn).await;
    let all: Vec<(i64,)> =
        sqlx::query_as("SELECT chain FROM audit_heads").fetch_all(&mut conn).await.unwrap();
    let mut open = charge(&store, "c_rich", "m_1", 200).await.unwrap();
    let mut probe = AnyConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut probe).await.unwrap();
    let free: Vec<(i64,)> = sqlx::query_as("SELECT chain FROM audit_heads FOR UPDATE SKIP LOCKED")
        .fetch_all(&mut probe)
        .await
        .unwrap();
    sqlx::query("ROLLBACK").execute(&mut probe).await.unwrap();
    assert_eq!(free.len() + 1, all.len(), "exactly one head is locked, before any audit record");
    open.insert_audit(&audit("pay_second"), NOW).await.unwrap();
    open.commit().await.unwrap();

    assert_eq!(balance(&url, "customer_wallet:c_rich:CNY").await, Some(10_000 - 300 - 200));
    assert_eq!(assert_chains_linked(&url).await, 2, "two records, each on a linked chain");
    drop((conn, probe));
    store.close().await;
}

/// On SQLite the posting reads the head in its one call to SQLite's worker, with the
/// writes held back before it (a transfer's record, then a charge's).
#[tokio::test]
async fn sqlite_the_posting_reads_the_audit_head_and_the_chain_stays_linked() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("posting.db").display());
    let store = Store::open_with(&url, false).await.unwrap();
    top_up(&store, "c_rich", 10_000).await;
    // The chain's first record (the top-up's transaction wrote none): no head to read yet.
    let mut first = charge(&store, "c_rich", "m_1", 300).await.unwrap();
    first.insert_audit(&audit("pay_first"), NOW).await.unwrap();
    first.commit().await.unwrap();
    for (n, minor) in [(2, 200), (3, 100)] {
        let mut tx = charge(&store, "c_rich", "m_1", minor).await.unwrap();
        tx.insert_audit(&audit(&format!("pay_{n}")), NOW).await.unwrap();
        // A second record of the same transaction follows the first.
        tx.insert_audit(&audit(&format!("pay_{n}_again")), NOW).await.unwrap();
        tx.commit().await.unwrap();
    }
    // A posting refused by the backstop leaves nothing behind.
    assert!(matches!(
        charge(&store, "c_rich", "m_1", 1_000_000).await,
        Err(StoreError::InsufficientFunds(_))
    ));
    assert_eq!(balance(&url, "customer_wallet:c_rich:CNY").await, Some(10_000 - 300 - 200 - 100));
    assert_eq!(balance(&url, "merchant_payable:m_1:CNY").await, Some(300 + 200 + 100 - 3));
    assert_eq!(assert_chains_linked(&url).await, 5, "five records on one linked chain");
    store.close().await;
}

/// A pending till payment of merchant `m` under order number `otn`.
fn order(id: &str, m: &str, otn: &str, minor: i64) -> Payment {
    Payment::pending(Order {
        id: id.into(),
        merchant_id: m.into(),
        terminal_id: None,
        out_trade_no: otn.into(),
        amount: cny(minor),
        subject: "test".into(),
        items: "[]".into(),
        mode: PaymentMode::Cpm,
        fingerprint: Some("fp".into()),
        created_at: NOW.into(),
    })
}

async fn insert_merchant(store: &Store, m: &str) {
    let mut tx = store.begin().await.unwrap();
    let row = MerchantRow {
        id: m.into(),
        name: m.into(),
        mcc: "5411".into(),
        city: "Hangzhou".into(),
        country: "CN".into(),
        currency: "CNY".into(),
        fee_bps: 60,
        timezone: "Asia/Shanghai".into(),
        status: "active".into(),
        created_at: NOW.into(),
    };
    tx.insert_merchant(&row).await.unwrap();
    tx.commit().await.unwrap();
}

/// Charges 500 of `c_rich` to `m_1` for a new payment `id` under order number `otn`, the
/// way the charge service does, and commits.
async fn charge_order(store: Store, id: &'static str, otn: &'static str) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    tx.lock_wallets(&["c_rich"], Currency::CNY).await?;
    let mut p = order(id, "m_1", otn, 500);
    p.charge("c_rich", cny(3), NOW).unwrap();
    let entry = payment_entry("c_rich", "m_1", cny(500), cny(3)).unwrap();
    tx.save_payment_and_post((&p, false), &format!("je_{id}"), &entry, NOW, true).await?;
    tx.insert_audit(&audit(id), NOW).await?;
    tx.commit().await
}

/// On SQLite the payment's row is the first statement of the posting's one call: a
/// second payment under a used order number fails there, whole, as a unique violation.
#[tokio::test]
async fn sqlite_a_payment_saved_with_its_posting_keeps_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("posting.db").display());
    let store = Store::open_with(&url, false).await.unwrap();
    top_up(&store, "c_rich", 10_000).await;
    insert_merchant(&store, "m_1").await;
    charge_order(store.clone(), "pay_1", "otn_1").await.unwrap();
    let refused = charge_order(store.clone(), "pay_2", "otn_1").await;
    assert!(matches!(refused, Err(StoreError::UniqueViolation)), "{refused:?}");
    assert_eq!(balance(&url, "customer_wallet:c_rich:CNY").await, Some(10_000 - 500));
    assert_eq!(balance(&url, "merchant_payable:m_1:CNY").await, Some(497));
    assert_eq!(assert_chains_linked(&url).await, 1);
    store.close().await;
}

/// A stored payment whose row is gone when its charge saves it: the posting's round trip
/// fails as a corrupt store, and nothing of the charge lands.
async fn a_vanished_payment_fails_its_posting(store: &Store, url: &str) {
    top_up(store, "c_rich", 10_000).await;
    insert_merchant(store, "m_1").await;
    let mut tx = store.begin().await.unwrap();
    tx.lock_wallets(&["c_rich"], Currency::CNY).await.unwrap();
    let mut p = order("pay_gone", "m_1", "otn_gone", 500);
    p.charge("c_rich", cny(3), NOW).unwrap();
    let entry = payment_entry("c_rich", "m_1", cny(500), cny(3)).unwrap();
    let failed = tx.save_payment_and_post((&p, true), "je_gone", &entry, NOW, true).await;
    assert!(matches!(&failed, Err(StoreError::Corrupt(why)) if why.contains("pay_gone")), "{failed:?}");
    drop(tx);
    assert_eq!(balance(url, "customer_wallet:c_rich:CNY").await, Some(10_000));
}

#[tokio::test]
async fn sqlite_a_vanished_payment_fails_its_posting() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("posting.db").display());
    let store = Store::open_with(&url, false).await.unwrap();
    a_vanished_payment_fails_its_posting(&store, &url).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_vanished_payment_fails_its_posting() {
    let name = format!("saoma_posting_vanished_{}", std::process::id());
    let Some(db) = saoma_store::test_postgres_database(&name).await else { return };
    let store = Store::open_with(&db.url, false).await.unwrap();
    a_vanished_payment_fails_its_posting(&store, &db.url).await;
    store.close().await;
}

/// A charge saves its payment's row in its posting's statement, first: while the row waits
/// for its key (another request under the same order number, not committed yet), the
/// charge holds none of the merchant's account rows and no audit head. When the other
/// request gives the key up, the charge goes on and the books show it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_payment_waiting_for_its_key_holds_no_account() {
    let name = format!("saoma_posting_key_{}", std::process::id());
    let Some(db) = saoma_store::test_postgres_database(&name).await else { return };
    let url = db.url.clone();
    let store = Store::open_with(&url, false).await.unwrap();
    top_up(&store, "c_rich", 10_000).await;
    insert_merchant(&store, "m_1").await;
    let mut conn = AnyConnection::connect(&url).await.unwrap();
    seed_heads_and_shards(&mut conn, "m_1").await;

    // Another request holds the order number's key.
    let mut other = store.begin().await.unwrap();
    other.insert_payment(&order("pay_other", "m_1", "otn_1", 500)).await.unwrap();

    let charging = tokio::spawn(charge_order(store.clone(), "pay_mine", "otn_1"));
    let mut probe = AnyConnection::connect(&url).await.unwrap();
    assert!(someone_waits_for_a_lock(&mut probe).await, "the charge waits for the payment's key");
    sqlx::query("BEGIN").execute(&mut probe).await.unwrap();
    let (free_rows,): (i64,) = sqlx::query_as(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM (SELECT id FROM accounts WHERE owner_id = 'm_1' \
         FOR UPDATE SKIP LOCKED) AS free",
    )
    .fetch_one(&mut probe)
    .await
    .unwrap();
    let (free_heads,): (i64,) = sqlx::query_as(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM (SELECT chain FROM audit_heads FOR UPDATE SKIP LOCKED) AS free",
    )
    .fetch_one(&mut probe)
    .await
    .unwrap();
    sqlx::query("ROLLBACK").execute(&mut probe).await.unwrap();
    assert_eq!(
        (free_rows, free_heads),
        (64, 64),
        "waiting for the key, the charge holds no account and no head"
    );

    drop(other); // gives the key up
    charging.await.unwrap().unwrap();

    // Had the other request committed, the charge would fail on the key, whole.
    let mut other = store.begin().await.unwrap();
    other.insert_payment(&order("pay_other_2", "m_1", "otn_2", 500)).await.unwrap();
    let charging = tokio::spawn(charge_order(store.clone(), "pay_mine_2", "otn_2"));
    assert!(someone_waits_for_a_lock(&mut probe).await, "the second charge waits for the key");
    other.commit().await.unwrap();
    let refused = charging.await.unwrap();
    assert!(matches!(refused, Err(StoreError::UniqueViolation)), "{refused:?}");
    assert_eq!(balance(&url, "customer_wallet:c_rich:CNY").await, Some(10_000 - 500));
    let (payable,): (i64,) =
        sqlx::query_as("SELECT CAST(SUM(balance) AS BIGINT) FROM accounts WHERE owner_id = 'm_1'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(payable, 497);
    assert_eq!(assert_chains_linked(&url).await, 1);
    drop((conn, probe));
    store.close().await;
}

/// Makes the head of every chain (0 to 63) that has none.
async fn seed_heads(conn: &mut AnyConnection) {
    for n in 0..64_i64 {
        sqlx::query(
            "INSERT INTO audit_heads (chain, seq_no, hash) VALUES ($1, 0, $2) ON CONFLICT (chain) DO NOTHING",
        )
        .bind(n)
        .bind(saoma_core::audit::GENESIS)
        .execute(&mut *conn)
        .await
        .unwrap();
    }
}

/// Makes the head of every chain and the payable row of `m` on every shard (0 to 63).
async fn seed_heads_and_shards(conn: &mut AnyConnection, m: &str) {
    seed_heads(conn).await;
    for n in 0..64_i64 {
        sqlx::query(
            "INSERT INTO accounts (id, kind, owner_id, currency, balance) \
             VALUES ($1, 'merchant_payable', $2, 'CNY', 0) ON CONFLICT (id) DO NOTHING",
        )
        .bind(format!("merchant_payable:{m}:CNY#{n}"))
        .bind(m)
        .execute(&mut *conn)
        .await
        .unwrap();
    }
}

/// Waits until a backend of this database waits for a lock; false after 10 s.
async fn someone_waits_for_a_lock(probe: &mut AnyConnection) -> bool {
    for _ in 0..200 {
        let (waiting,): (i64,) = sqlx::query_as(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut *probe)
        .await
        .unwrap();
        if waiting > 0 {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_posting_waiting_for_an_account_holds_no_head_and_reads_it_fresh() {
    let name = format!("saoma_posting_wait_{}", std::process::id());
    let Some(db) = saoma_store::test_postgres_database(&name).await else { return };
    let url = db.url.clone();
    let store = Store::open_with(&url, false).await.unwrap();
    top_up(&store, "c_rich", 10_000).await;
    let mut blocker = AnyConnection::connect(&url).await.unwrap();
    seed_heads_and_shards(&mut blocker, "m_1").await;

    // Another transaction holds every payable row of the merchant.
    sqlx::query("BEGIN").execute(&mut blocker).await.unwrap();
    sqlx::query("SELECT id FROM accounts WHERE owner_id = 'm_1' FOR UPDATE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let paying = tokio::spawn({
        let store = store.clone();
        async move {
            let mut tx = charge(&store, "c_rich", "m_1", 200).await?;
            tx.insert_audit(&audit("pay_waited"), NOW).await?;
            tx.commit().await
        }
    });
    let mut probe = AnyConnection::connect(&url).await.unwrap();
    assert!(someone_waits_for_a_lock(&mut probe).await, "the posting waits for the merchant's row");
    sqlx::query("BEGIN").execute(&mut probe).await.unwrap();
    let (free,): (i64,) = sqlx::query_as(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM (SELECT chain FROM audit_heads FOR UPDATE SKIP LOCKED) f",
    )
    .fetch_one(&mut probe)
    .await
    .unwrap();
    sqlx::query("ROLLBACK").execute(&mut probe).await.unwrap();
    assert_eq!(free, 64, "a posting waiting for an account row holds no audit head");

    // Meanwhile every chain gets a record, committed with the release of the rows.
    let h1 = "1".repeat(64);
    for n in 0..64_i64 {
        sqlx::query(
            "INSERT INTO audit_log (actor, action, object_id, detail, created_at, chain, chain_seq, prev_hash, hash) \
             VALUES ('test', 'other', 'o', '{}', $1, $2, 1, $3, $4)",
        )
        .bind(NOW)
        .bind(n)
        .bind(saoma_core::audit::GENESIS)
        .bind(&h1)
        .execute(&mut blocker)
        .await
        .unwrap();
    }
    sqlx::query("UPDATE audit_heads SET seq_no = 1, hash = $1")
        .bind(&h1)
        .execute(&mut blocker)
        .await
        .unwrap();
    sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();

    paying.await.unwrap().expect("the waiting charge commits");
    assert_eq!(assert_chains_linked(&url).await, 65, "its record follows the head committed meanwhile");
    drop((blocker, probe));
    store.close().await;
}

/// One task's charges and refunds through `store`, each with its audit record and
/// committed alone: (charged, refunded) in minor units.
async fn charge_and_refund(store: Store, task: usize) -> Result<(i64, i64), StoreError> {
    let (mut charged, mut refunded) = (0, 0);
    for op in 0..12 {
        let (c, m, id) = (format!("c_{}", (task + op) % 8), format!("m_{}", op % 2), format!("{task}_{op}"));
        let mut tx = store.begin().await?;
        if op % 3 == 2 {
            let entry = saoma_core::ledger::refund_entry(&c, &m, cny(50), cny(1)).unwrap();
            tx.post_entry(&format!("je_r{id}"), "refund", &format!("re_{id}"), &entry, NOW).await?;
            refunded += 50;
        } else {
            tx.lock_wallets(&[&c], Currency::CNY).await?;
            let entry = payment_entry(&c, &m, cny(100), cny(1)).unwrap();
            tx.post_entry_then_audit(&format!("je_p{id}"), "payment", &format!("pay_{id}"), &entry, NOW)
                .await?;
            charged += 100;
        }
        tx.insert_audit(&audit(&id), NOW).await?;
        tx.commit().await?;
    }
    Ok((charged, refunded))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_nodes_charging_and_refunding_at_once_keep_the_books() {
    let name = format!("saoma_posting_nodes_{}", std::process::id());
    let Some(db) = saoma_store::test_postgres_database(&name).await else { return };
    let url = db.url.clone();
    // Two stores stand for two nodes: each hands out the shards and chains on its own.
    let nodes = [Store::open_with(&url, false).await.unwrap(), Store::open_with(&url, false).await.unwrap()];
    for c in 0..8 {
        top_up(&nodes[0], &format!("c_{c}"), 100_000).await;
    }
    let tasks: Vec<_> =
        (0..24).map(|task| tokio::spawn(charge_and_refund(nodes[task % 2].clone(), task))).collect();
    let (mut charged, mut refunded) = (0, 0);
    for t in tasks {
        let (c, r) = t.await.unwrap().expect("no charge or refund fails, none deadlocks");
        (charged, refunded) = (charged + c, refunded + r);
    }
    let mut conn = AnyConnection::connect(&url).await.unwrap();
    let (wallets,): (i64,) =
        sqlx::query_as("SELECT CAST(SUM(balance) AS BIGINT) FROM accounts WHERE kind = 'customer_wallet'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(wallets, 8 * 100_000 - charged + refunded, "every wallet moved exactly as posted");
    assert_eq!(assert_chains_linked(&url).await, 24 * 12, "one record per operation, every chain linked");
    drop(conn);
    for node in nodes {
        node.close().await;
    }
}
