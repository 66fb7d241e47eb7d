//! The guessing guards on PostgreSQL (SQLite has one writer, so nothing runs beside a
//! transaction there): a good code's shared guard leaves the counter's row alone, so the
//! charges of one merchant do not queue on it; a bad code's exclusive guard makes a good
//! code wait for the count and see it.

use saoma_store::Store;
use std::time::Duration;

const SINCE: &str = "2026-01-01T00:00:00.000Z";
const NOW: &str = "2026-01-01T00:00:01.000Z";
const SCOPES: [&str; 2] = ["terminal:trm_1", "merchant:mch_1"];

/// A fresh PostgreSQL database, or `None` when none is reachable (required with `CI=true`).
async fn postgres(tag: &str) -> Option<saoma_store::TestDatabase> {
    saoma_store::test_postgres_database(&format!("saoma_guards_{tag}_{}", std::process::id())).await
}

async fn counters(store: &Store) {
    for scope in SCOPES {
        store.ensure_guess_counter(scope, SINCE).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_codes_guard_leaves_the_counter_row_alone() {
    let Some(db) = postgres("shared").await else { return };
    let url = db.url.clone();
    let store = Store::open(&url).await.unwrap();
    counters(&store).await;
    let mut good = store.begin().await.unwrap();
    assert_eq!(good.guess_counts(&SCOPES, SINCE, false).await.unwrap()[1].bad, 0);
    // A row lock (FOR SHARE) would make this update wait until `good` ends.
    let mut other = store.begin().await.unwrap();
    let counted =
        tokio::time::timeout(Duration::from_secs(5), other.count_bad_code(SCOPES[1], NOW, SINCE)).await;
    assert!(counted.is_ok(), "a shared guard must not lock the counter's row");
    other.commit().await.unwrap();
    good.commit().await.unwrap();
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_code_waits_for_a_bad_code_being_counted_and_sees_it() {
    let Some(db) = postgres("exclusive").await else { return };
    let url = db.url.clone();
    let store = Store::open(&url).await.unwrap();
    counters(&store).await;
    let mut bad = store.begin().await.unwrap();
    assert_eq!(bad.guess_counts(&SCOPES, SINCE, true).await.unwrap()[0].bad, 0);
    let reader = store.clone();
    let good = tokio::spawn(async move {
        let mut good = reader.begin().await.unwrap();
        let counts = good.guess_counts(&SCOPES, SINCE, false).await.unwrap();
        good.commit().await.unwrap();
        counts
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!good.is_finished(), "a good code waits while a bad code is being counted");
    for scope in SCOPES {
        bad.count_bad_code(scope, NOW, SINCE).await.unwrap();
    }
    bad.commit().await.unwrap();
    let counts = good.await.unwrap();
    assert_eq!((counts[0].bad, counts[1].bad), (1, 1), "and then sees the count");
    store.close().await;
}
