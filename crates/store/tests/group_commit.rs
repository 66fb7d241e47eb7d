//! Group commit, on SQLite and on PostgreSQL: concurrent operations share commits, one
//! that fails or is dropped inside a batch leaves its neighbours' writes alone, and an
//! operation alone is committed at once.

use saoma_store::{MerchantRow, Store, StoreError};
use std::time::Duration;

const NOW: &str = "2026-01-01T00:00:00.000Z";

fn merchant(i: usize) -> MerchantRow {
    MerchantRow {
        id: format!("mch_{i}"),
        name: format!("M {i}"),
        mcc: "5411".into(),
        city: "Shanghai".into(),
        country: "CN".into(),
        currency: "CNY".into(),
        fee_bps: 60,
        timezone: "Asia/Shanghai".into(),
        status: "active".into(),
        created_at: NOW.into(),
    }
}

/// Runs the PostgreSQL test `tag` on a database of its own, then drops the database;
/// skipped (and said) when no PostgreSQL is reachable, which `CI=true` refuses.
async fn on_postgres<F: std::future::Future<Output = ()>>(tag: &str, test: impl FnOnce(Option<String>) -> F) {
    let name = format!("saoma_gc_{tag}_{}", std::process::id());
    let Some(db) = saoma_store::test_postgres_database(&name).await else { return };
    test(Some(db.url.clone())).await;
}

/// A store with group commit on: on the PostgreSQL database `postgres`, or on a temporary
/// SQLite file (kept alive by the returned directory).
async fn store(postgres: Option<String>) -> (Store, Option<tempfile::TempDir>) {
    let (url, dir) = match postgres {
        Some(url) => (url, None),
        None => {
            let dir = tempfile::tempdir().unwrap();
            (format!("sqlite://{}", dir.path().join("gc.db").display()), Some(dir))
        }
    };
    let store = Store::open_with(&url, true).await.unwrap();
    assert!(store.group_commit());
    (store, dir)
}

async fn concurrent_operations_share_commits_and_fail_alone(postgres: Option<String>) {
    let (store, _dir) = store(postgres).await;
    let before = store.flushes();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut tx = store.begin().await.unwrap();
            assert!(tx.mark_code_used(&format!("code-{i}"), NOW).await.unwrap());
            // Hold the connection a moment, so the others queue behind it.
            tokio::time::sleep(Duration::from_millis(3)).await;
            match i % 4 {
                // Dropped half-way: rolled back alone.
                1 => Ok(false),
                // A statement fails (the code is used already by this very operation).
                2 => {
                    let again = tx.mark_code_used(&format!("code-{i}"), NOW).await.unwrap();
                    assert!(!again);
                    let m = merchant(i);
                    tx.insert_merchant(&m).await.unwrap();
                    let dup = tx.insert_merchant(&m).await;
                    assert!(matches!(dup, Err(StoreError::UniqueViolation)), "{dup:?}");
                    Ok(false)
                }
                _ => tx.commit().await.map(|()| true),
            }
        }));
    }
    let mut committed = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        if t.await.unwrap().unwrap() {
            committed.push(i);
        }
    }
    assert_eq!(committed.len(), 20);
    for i in 0..40 {
        let used = store.code_used(&format!("code-{i}")).await.unwrap();
        assert_eq!(used, committed.contains(&i), "code-{i}: only what committed landed");
    }
    let flushes = store.flushes() - before;
    assert!((1..20).contains(&flushes), "20 commits in {flushes} flushes: batched");
}

async fn an_operation_alone_commits_at_once(postgres: Option<String>) {
    let (store, _dir) = store(postgres).await;
    for i in 0..3 {
        let before = store.flushes();
        let mut tx = store.begin().await.unwrap();
        tx.mark_code_used(&format!("alone-{i}"), NOW).await.unwrap();
        tokio::time::timeout(Duration::from_secs(2), tx.commit())
            .await
            .expect("no waiting when idle")
            .unwrap();
        assert_eq!(store.flushes(), before + 1);
        assert!(store.code_used(&format!("alone-{i}")).await.unwrap(), "visible to readers once answered");
    }
}

/// An operation that reads a neighbour's write in the open batch and answers without
/// committing (an idempotent retry) gives its answer only once that write has committed:
/// inside `settled`, a read through another connection then finds it.
async fn an_answer_read_from_the_batch_waits_for_its_commit(postgres: Option<String>) {
    let (store, _dir) = store(postgres).await;
    let m = merchant(7);
    // The writer: its write sits in the batch while the others queue behind it.
    let mut writer = store.begin().await.unwrap();
    writer.insert_merchant(&m).await.unwrap();
    let reader = tokio::spawn({
        let store = store.clone();
        async move {
            let (seen, settled) = saoma_store::settled(async {
                let mut tx = store.begin().await.unwrap();
                let seen = tx.merchant("mch_7").await.unwrap().is_some();
                drop(tx); // the answer of a retry: nothing written, nothing committed
                // Its wait is registered with the request; a later attempt's settling
                // (`settle_after` its own mark) leaves it for the request's end.
                let mark = saoma_store::unsettled();
                assert_eq!(mark, 1);
                saoma_store::settle_after(mark).await.unwrap();
                assert_eq!(saoma_store::unsettled(), 1);
                seen
            })
            .await;
            settled.unwrap();
            // What the answer named is there for everyone once it is given.
            let committed = store.merchant("mch_7").await.unwrap().is_some();
            (seen, committed)
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A third operation queued behind the reader keeps the batch open after it.
    let holder = tokio::spawn({
        let store = store.clone();
        async move {
            let mut tx = store.begin().await.unwrap();
            tx.mark_code_used("holder", NOW).await.unwrap();
            tokio::time::sleep(Duration::from_millis(400)).await;
            tx.commit().await.unwrap();
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    writer.commit().await.unwrap();
    let (seen, committed) = reader.await.unwrap();
    holder.await.unwrap();
    assert!(seen, "the reader ran in the writer's batch and saw its write");
    assert!(committed, "the reader's answer waited for the batch's commit");
}

/// An operation that answers from a read in a batch where nothing is kept yet read only
/// what was committed: it answers at once, not when the writers queued behind it are done.
async fn an_answer_from_a_batch_with_nothing_kept_is_not_held(postgres: Option<String>) {
    let (store, _dir) = store(postgres).await;
    let reader = store.begin().await.unwrap();
    // A writer queued behind the reader keeps the batch open for 2 s.
    let holder = tokio::spawn({
        let store = store.clone();
        async move {
            let mut tx = store.begin().await.unwrap();
            tx.mark_code_used("held", NOW).await.unwrap();
            tokio::time::sleep(Duration::from_secs(2)).await;
            tx.commit().await.unwrap();
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let ((), settled) = saoma_store::settled(async move { drop(reader) }).await;
    settled.unwrap();
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(1), "answered without waiting for the writer: {waited:?}");
    holder.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_an_answer_from_a_batch_with_nothing_kept_is_not_held() {
    an_answer_from_a_batch_with_nothing_kept_is_not_held(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_answer_from_a_batch_with_nothing_kept_is_not_held() {
    on_postgres("nothing", an_answer_from_a_batch_with_nothing_kept_is_not_held).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_an_answer_read_from_the_batch_waits_for_its_commit() {
    an_answer_read_from_the_batch_waits_for_its_commit(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_answer_read_from_the_batch_waits_for_its_commit() {
    on_postgres("reader", an_answer_read_from_the_batch_waits_for_its_commit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent_operations_share_commits_and_fail_alone() {
    concurrent_operations_share_commits_and_fail_alone(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_operations_share_commits_and_fail_alone() {
    on_postgres("share", concurrent_operations_share_commits_and_fail_alone).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_an_operation_alone_commits_at_once() {
    an_operation_alone_commits_at_once(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_operation_alone_commits_at_once() {
    on_postgres("alone", an_operation_alone_commits_at_once).await;
}
