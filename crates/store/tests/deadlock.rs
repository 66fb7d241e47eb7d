//! A deadlock PostgreSQL breaks reaches the caller as `StoreError::Deadlock` (every `?`
//! on a driver error classifies it), so the server's `retry_on_conflict` runs the rolled-back operation again instead of
//! answering 500. SQLite has one writer and cannot deadlock: the test is PostgreSQL's
//! alone, and says so when it has none.

use saoma_store::{Store, StoreError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_deadlock_is_reported_as_one() {
    let name = format!("saoma_deadlock_{}", std::process::id());
    let Some(db) = saoma_store::test_postgres_database(&name).await else { return };
    let url = db.url.clone();
    let store = Store::open(&url).await.unwrap();
    let mut setup = store.begin().await.unwrap();
    setup.setting_or_init("deadlock_a", "1").await.unwrap();
    setup.setting_or_init("deadlock_b", "1").await.unwrap();
    setup.commit().await.unwrap();

    // Each transaction locks one row, then asks for the other's: a cycle.
    let mut first = store.begin().await.unwrap();
    let mut second = store.begin().await.unwrap();
    first.setting("deadlock_a").await.unwrap();
    second.setting("deadlock_b").await.unwrap();
    let (one, two) = tokio::join!(async move { first.setting("deadlock_b").await.map(drop) }, async move {
        second.setting("deadlock_a").await.map(drop)
    },);
    let outcomes = [one, two];
    let broken = outcomes.iter().filter(|o| matches!(o, Err(StoreError::Deadlock))).count();
    assert_eq!(broken, 1, "PostgreSQL breaks the cycle by rolling back one: {outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1, "{outcomes:?}");
    store.close().await;
}
