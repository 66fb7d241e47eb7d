//! Bulk seeding and the whole-ledger checks that `saoma bench` relies on, on SQLite and
//! PostgreSQL: bulk top-ups land as balanced entries whose postings agree with the
//! balances; a bulk posting that would overdraw a wallet lands nothing; the ledger sums
//! catch a payment charged twice and a payment whose postings disagree with its row; and
//! the raw reference loop keeps its own books.

use saoma_core::ledger::{payment_entry, top_up_entry};
use saoma_core::money::{Currency, Money};
use saoma_store::reference::Reference;
use saoma_store::{CustomerRow, Store, TopUpRow};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// A fresh database per backend: SQLite always; PostgreSQL when reachable (required with
/// `CI=true`). Each is (url, the PostgreSQL database, dropped with it).
async fn databases(dir: &tempfile::TempDir, tag: &str) -> Vec<(String, Option<saoma_store::TestDatabase>)> {
    let mut out = vec![(format!("sqlite://{}", dir.path().join(format!("{tag}.db")).display()), None)];
    let name = format!("saoma_bulk_{tag}_{}", std::process::id());
    if let Some(db) = saoma_store::test_postgres_database(&name).await {
        out.push((db.url.clone(), Some(db)));
    }
    out
}

fn customer(i: usize) -> CustomerRow {
    CustomerRow {
        id: format!("cus_{i}"),
        phone: format!("188{i:08}"),
        name: format!("C {i}"),
        pin_hash: "not-a-real-hash".into(),
        pin_failures: 0,
        pin_locks: 0,
        pin_locked_until: None,
        frozen: 0,
        created_at: "2026-01-01T00:00:00.000Z".into(),
        tier: "standard".into(),
    }
}

const NOW: &str = "2026-01-01T00:00:00.000Z";

/// Seeds `n` customers with 1,000.00 each through the bulk writes.
async fn seed(store: &Store, n: usize) {
    let customers: Vec<CustomerRow> = (0..n).map(customer).collect();
    let top_ups: Vec<TopUpRow> = customers
        .iter()
        .map(|c| TopUpRow {
            id: format!("top_{}", c.id),
            customer_id: c.id.clone(),
            reference: format!("ref-{}", c.id),
            amount: 100_000,
            currency: "CNY".into(),
            created_at: NOW.into(),
        })
        .collect();
    let entries: Vec<_> = top_ups
        .iter()
        .map(|t| {
            let e = top_up_entry(&t.customer_id, Money::new(t.amount, Currency::CNY)).unwrap();
            (format!("je_{}", t.id), "top_up", t.id.clone(), e)
        })
        .collect();
    let mut tx = store.begin().await.unwrap();
    tx.insert_customers(&customers).await.unwrap();
    tx.insert_top_ups(&top_ups).await.unwrap();
    tx.post_entries(&entries, NOW).await.unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_top_ups_balance_and_never_overdraw() {
    let dir = tempfile::tempdir().unwrap();
    for (url, _db) in databases(&dir, "topups").await {
        let store = Store::open(&url).await.unwrap();
        // More rows than one statement takes, so the chunking is exercised.
        seed(&store, 2_500).await;
        let tb = store.trial_balance().await.unwrap();
        assert_eq!(tb.len(), 1);
        assert_eq!((tb[0].debits, tb[0].credits), (250_000_000, 250_000_000), "{url}");
        assert!(store.accounts_out_of_step().await.unwrap().is_empty(), "{url}: balances match postings");
        assert_eq!(store.balances("cus_7").await.unwrap()[0].balance, 100_000);

        // A payment of more than the wallet holds: the whole batch is refused.
        let fine =
            payment_entry("cus_1", "mch_a", Money::new(500, Currency::CNY), Money::new(3, Currency::CNY))
                .unwrap();
        let over = payment_entry(
            "cus_2",
            "mch_a",
            Money::new(100_001, Currency::CNY),
            Money::new(600, Currency::CNY),
        )
        .unwrap();
        let mut tx = store.begin().await.unwrap();
        let r = tx
            .post_entries(
                &[
                    ("je_ok".into(), "payment", "pay_ok".into(), fine),
                    ("je_over".into(), "payment", "pay_over".into(), over),
                ],
                NOW,
            )
            .await;
        assert!(r.is_err(), "{url}: an overdraft fails the bulk posting");
        drop(tx);
        assert_eq!(store.balances("cus_1").await.unwrap()[0].balance, 100_000, "{url}: nothing of it landed");
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_flows_catch_a_double_charge() {
    let dir = tempfile::tempdir().unwrap();
    for (url, _db) in databases(&dir, "flows").await {
        let store = Store::open(&url).await.unwrap();
        seed(&store, 3).await;
        let entry = || {
            payment_entry("cus_0", "mch_a", Money::new(1_000, Currency::CNY), Money::new(6, Currency::CNY))
                .unwrap()
        };
        let mut tx = store.begin().await.unwrap();
        tx.post_entries(&[("je_1".into(), "payment", "pay_1".into(), entry())], NOW).await.unwrap();
        tx.commit().await.unwrap();
        let f = store.ledger_flows().await.unwrap();
        assert_eq!(f.payment_wallet_debits, 1_000);
        assert_eq!(f.payment_merchant_credits + f.payment_fee_credits, 1_000, "{url}");
        assert_eq!(f.payments_charged_twice, 0);
        // No payment row says it was charged: the sums disagree, as the bench reports.
        assert_eq!((f.payment_entries, f.charged_payments, f.charged_amount), (1, 0, 0), "{url}");

        // The same payment posted a second time is a double charge.
        let mut tx = store.begin().await.unwrap();
        tx.post_entries(&[("je_2".into(), "payment", "pay_1".into(), entry())], NOW).await.unwrap();
        tx.commit().await.unwrap();
        let f = store.ledger_flows().await.unwrap();
        assert_eq!(f.payments_charged_twice, 1, "{url}");
        assert_eq!(f.payment_wallet_debits, 2_000);
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_loop_keeps_its_books() {
    let dir = tempfile::tempdir().unwrap();
    for (url, _db) in databases(&dir, "reference").await {
        let reference = Reference::open(&url, 100, 5).await.unwrap();
        let done = Arc::new(AtomicU64::new(0));
        let one = reference.run(4, Duration::from_millis(300), 1, false, done.clone()).await.unwrap();
        let batched = reference.run(2, Duration::from_millis(300), 10, true, done).await.unwrap();
        assert!(one.payments > 0 && batched.payments > 0, "{url}: both loops paid");
        assert_eq!(one.payments, one.commits, "{url}: one commit per payment");
        assert_eq!(batched.payments, batched.commits * 10, "{url}: ten payments per commit");
        let counted = reference.check().await.unwrap();
        assert_eq!(counted, one.payments + batched.payments, "{url}: every payment is on the books once");
        assert!(Reference::open(&url, 1, 1).await.is_err(), "{url}: it never runs over existing tables");
        reference.close().await;
    }
}
