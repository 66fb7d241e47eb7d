//! Saoma's persistence: one interface over SQLite (the embedded default) and PostgreSQL.
//!
//! SQL lives only here, written once in the portable subset both engines accept. Every
//! business operation runs in one [`WriteTx`]: ledger postings, the state change, the
//! outbox event and the audit record commit together or not at all. All writes go through
//! [`Store::begin`], so a batching writer can later sit behind it without touching the
//! business rules. On SQLite the write pool has one connection: writers queue in the
//! pool instead of failing with `database is locked`.

mod access;
mod batch;
mod bulk;
mod deferred;
mod desk;
mod guards;
mod migrate;
mod products;
mod reads;
pub mod reference;
mod review;
mod risk;
mod rows;
mod settlement;
mod tx;
mod web;
mod webhooks;

pub use batch::{settle, settle_after, settled, unsettled};
pub use bulk::LedgerFlows;
pub use guards::{GuessCount, StrangerPin};
pub use products::{ProductFilter, ProductRow, StockMovementRow};
pub use risk::{ChargeHistory, PaidOut};
pub use rows::*;
pub use tx::{SEALED_COLUMNS, WriteTx};
pub use web::WebSessionRow;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use std::time::Duration;

/// SQLite's `synchronous` setting on every connection (in WAL mode). The benchmark's
/// SQLite reference loops use it too, so they compare like with like.
pub const SQLITE_SYNCHRONOUS: &str = "NORMAL";

/// `SAOMA_GROUP_COMMIT`: `on` batches concurrent write transactions into one commit on one
/// connection (`batch`), on SQLite; `off` (the default) commits each on its own.
fn group_commit_on() -> StoreResult<bool> {
    match std::env::var("SAOMA_GROUP_COMMIT").as_deref() {
        Err(_) | Ok("") | Ok("off") => Ok(false),
        Ok("on") => Ok(true),
        Ok(other) => Err(StoreError::Config(format!("SAOMA_GROUP_COMMIT={other:?}: use on or off"))),
    }
}

/// Whether a store on `backend` may batch as asked: on SQLite yes, on PostgreSQL never
/// (see [`Store::open`]).
fn group_commit_for(backend: Backend, on: bool) -> StoreResult<bool> {
    if on && backend != Backend::Sqlite {
        return Err(StoreError::Config(
            "SAOMA_GROUP_COMMIT=on is for SQLite only: on PostgreSQL the batches of two nodes would deadlock"
                .into(),
        ));
    }
    Ok(on)
}

/// Which engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The engine a database URL names: `sqlite:` or `postgres://` (`postgresql://`).
    fn of(url: &str) -> StoreResult<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }
}

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("unique constraint violated")]
    UniqueViolation,
    /// PostgreSQL rolled this transaction back to break a deadlock; running it again is
    /// safe.
    #[error("deadlock detected; retry")]
    Deadlock,
    #[error("account {0} has insufficient funds")]
    InsufficientFunds(String),
    #[error("unsupported database url (use sqlite:// or postgres://)")]
    UnsupportedUrl,
    #[error("bad setting: {0}")]
    Config(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The group commit's batch holding this transaction did not commit: nothing of it
    /// landed.
    #[error("the group commit failed: {0}")]
    Flush(String),
}

impl StoreError {
    /// True when no connection came free in time: the server is overloaded, not broken.
    pub fn is_busy(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::PoolTimedOut))
    }
}

/// Every driver error is classified as it comes through `?`: a unique violation is
/// something the caller may retry, and a deadlock that stayed a plain database error
/// would never be retried.
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        if let sqlx::Error::Database(db) = &e {
            if db.is_unique_violation() {
                return StoreError::UniqueViolation;
            }
            if db.code().as_deref() == Some("40P01") {
                return StoreError::Deadlock;
            }
        }
        StoreError::Database(e)
    }
}

/// Result of the store.
pub type StoreResult<T> = Result<T, StoreError>;

/// The database, with a pool for writes and one for reads.
#[derive(Clone)]
pub struct Store {
    write: AnyPool,
    read: AnyPool,
    backend: Backend,
    url: std::sync::Arc<str>,
    shards: std::sync::Arc<tx::AccountShards>,
    /// The group commit's writer (`SAOMA_GROUP_COMMIT=on`), else `None`.
    batcher: Option<std::sync::Arc<batch::Batcher>>,
    /// Commits of write transactions that reached the database (a batch counts once).
    flushes: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Store {
    /// Opens (and creates, for SQLite) the database and brings its schema up to date, with
    /// group commit as `SAOMA_GROUP_COMMIT` says.
    ///
    /// Group commit is refused on PostgreSQL: a batch is one transaction holding the locks
    /// of many payments in the order they came, not the one lock order every transaction
    /// keeps (wallets, accounts by id, products, audit head), so the batches of two nodes
    /// deadlock each other (docs/performance.md).
    pub async fn open(url: &str) -> StoreResult<Store> {
        Store::open_with(url, group_commit_for(Backend::of(url)?, group_commit_on()?)?).await
    }

    /// [`Store::open`], with group commit on or off whatever the environment says. On
    /// PostgreSQL it is for one node alone (the tests of the batching and measurements):
    /// see [`Store::open`].
    pub async fn open_with(url: &str, group_commit: bool) -> StoreResult<Store> {
        install_default_drivers();
        let backend = Backend::of(url)?;
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            _ => url.to_string(),
        };
        let env_number = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u32>().ok());
        // SQLite: one writer (writers queue in the pool, not on `database is locked`).
        // PostgreSQL: per node; N nodes use up to 2 x N x SAOMA_DB_POOL connections.
        let pool = env_number("SAOMA_DB_POOL").unwrap_or(16).max(1);
        let (write_max, read_max) = match backend {
            Backend::Sqlite => (1, 8),
            Backend::Postgres => (pool, pool),
        };
        let statement_timeout = env_number("SAOMA_DB_STATEMENT_TIMEOUT").unwrap_or(30);
        let options = |max: u32| {
            AnyPoolOptions::new().max_connections(max).acquire_timeout(Duration::from_secs(10)).after_connect(
                move |conn, _| {
                    Box::pin(async move {
                        if backend == Backend::Sqlite {
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            conn.execute(sqlx::AssertSqlSafe(format!(
                                "PRAGMA synchronous = {SQLITE_SYNCHRONOUS}"
                            )))
                            .await?;
                        } else {
                            // No statement or forgotten transaction may hold locks for long.
                            let set = format!(
                                "SET statement_timeout = '{statement_timeout}s'; \
                                 SET idle_in_transaction_session_timeout = '{statement_timeout}s'"
                            );
                            conn.execute(sqlx::AssertSqlSafe(set)).await?;
                        }
                        Ok(())
                    })
                },
            )
        };
        let write = options(write_max).connect(&url).await?;
        if backend == Backend::Sqlite {
            // WAL lets readers go on while the single writer commits; it persists in the file.
            write.execute("PRAGMA journal_mode = WAL").await?;
        }
        let read = options(read_max).connect(&url).await?;
        // One writer on SQLite: nothing to spread. On PostgreSQL, a shard for each write
        // connection, so that this node's transactions never meet on one row.
        let count = std::env::var("SAOMA_ACCOUNT_SHARDS").ok().and_then(|v| v.parse().ok()).unwrap_or(
            match backend {
                Backend::Sqlite => 1,
                Backend::Postgres => u64::from(pool).max(16),
            },
        );
        let shards = std::sync::Arc::new(tx::AccountShards::new(count));
        let flushes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let batcher = group_commit.then(|| batch::Batcher::new(write.clone(), backend, flushes.clone()));
        let store = Store { write, read, backend, url: url.as_str().into(), shards, batcher, flushes };
        store.migrate().await?;
        Ok(store)
    }

    /// The engine in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts the one database transaction of a business operation (with group commit:
    /// its operation in the open batch).
    pub async fn begin(&self) -> StoreResult<WriteTx> {
        let tx = match &self.batcher {
            Some(b) => tx::Conn::Batched(b.begin().await?),
            None => tx::Conn::Own(self.write.begin().await?),
        };
        Ok(WriteTx::new(tx, self.backend, self.shards.clone(), self.flushes.clone()))
    }

    /// Remembers a request's nonce, unless the key used it before (`None`: a replay). The
    /// claim is kept with [`NonceClaim::keep`] or given back with [`NonceClaim::give_back`]
    /// (a request refused after its nonce was taken leaves it unused). The nonce is one
    /// statement committed on its own (one round trip, not a begin, an insert and a
    /// commit), and giving it back deletes it. On SQLite that holds the one writer for
    /// that statement alone; it used to be a transaction kept open over the rate limit's
    /// check. Only with group commit on SQLite is it a transaction of a batch, committed
    /// or rolled back with it.
    ///
    /// On PostgreSQL the nonce's commit does not wait for its WAL to reach the disk
    /// ([`NONCE_SQL`]). That gives nothing away: a request that changes anything commits
    /// that change synchronously afterwards, and PostgreSQL's WAL reaches the disk in
    /// order, so the nonce is on disk before the change is. A nonce lost to a crash within
    /// the WAL writer's delay (at most 3 × `wal_writer_delay`, 600 ms by default) is the
    /// nonce of a request that changed nothing, and its signature's time window still
    /// bounds a replay.
    pub async fn claim_nonce(
        &self,
        key_id: &str,
        nonce: &str,
        now_unix: i64,
    ) -> StoreResult<Option<NonceClaim>> {
        let own_statement = match (self.backend, &self.batcher) {
            (Backend::Postgres, _) => Some(NONCE_SQL),
            (Backend::Sqlite, None) => Some(NONCE_SQLITE_SQL),
            (Backend::Sqlite, Some(_)) => None,
        };
        if let Some(sql) = own_statement {
            let r = sqlx::query(sql).bind(key_id).bind(nonce).bind(now_unix).execute(&self.write).await?;
            self.flushes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let claim = NonceClaim::Committed {
                pool: self.write.clone(),
                key_id: key_id.into(),
                nonce: nonce.into(),
            };
            return Ok((r.rows_affected() == 1).then_some(claim));
        }
        let mut tx = self.begin().await?;
        Ok(tx.remember_nonce(key_id, nonce, now_unix).await?.then_some(NonceClaim::InTx(Box::new(tx))))
    }

    /// How many write transactions reached the database: a group commit's batch counts
    /// once however many operations it holds (`saoma_store_flushes_total`).
    pub fn flushes(&self) -> u64 {
        self.flushes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// True when this store commits writes in batches (`SAOMA_GROUP_COMMIT`).
    pub fn group_commit(&self) -> bool {
        self.batcher.is_some()
    }

    /// A setting's value, if it was ever set. Read-only: safe inside another transaction.
    pub async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|(v,)| v))
    }

    /// Reads or creates a named platform secret (hex), made from `random_hex` the first time.
    pub async fn setting_or_init(&self, name: &str, random_hex: &str) -> StoreResult<String> {
        let mut tx = self.begin().await?;
        let value = tx.setting_or_init(name, random_hex).await?;
        tx.commit().await?;
        Ok(value)
    }

    /// Tells every node that something committed (PostgreSQL `NOTIFY`; nothing on SQLite,
    /// which has a single node). Sent after the commit, outside the business transaction:
    /// a `NOTIFY` inside it would serialise every commit on PostgreSQL's notify queue.
    pub async fn announce_change(&self) -> StoreResult<()> {
        if self.backend == Backend::Postgres {
            // A wake-up, not data: its commit need not wait for the disk (see NONCE_SQL).
            sqlx::query(
                "SELECT set_config('synchronous_commit', 'off', true), pg_notify('saoma_changes', '')",
            )
            .execute(&self.read)
            .await?;
        }
        Ok(())
    }

    /// Listens to other nodes' announcements; `None` on SQLite.
    pub async fn change_listener(&self) -> StoreResult<Option<ChangeListener>> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut listener = sqlx::postgres::PgListener::connect(&self.url).await?;
        listener.listen("saoma_changes").await?;
        Ok(Some(ChangeListener(listener)))
    }

    /// Closes the pools, waiting for connections in use.
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// A request's nonce, taken by [`Store::claim_nonce`].
pub enum NonceClaim {
    /// Committed already; giving it back deletes it.
    Committed { pool: AnyPool, key_id: String, nonce: String },
    /// Inside a transaction of its own, committed by `keep`.
    InTx(Box<WriteTx>),
}

impl NonceClaim {
    /// The nonce stays used.
    pub async fn keep(self) -> StoreResult<()> {
        match self {
            NonceClaim::Committed { .. } => Ok(()),
            NonceClaim::InTx(tx) => tx.commit().await,
        }
    }

    /// The nonce was not spent after all (the request was refused before anything else).
    pub async fn give_back(self) -> StoreResult<()> {
        match self {
            NonceClaim::Committed { pool, key_id, nonce } => {
                sqlx::query("DELETE FROM nonces WHERE key_id = $1 AND nonce = $2")
                    .bind(key_id)
                    .bind(nonce)
                    .execute(&pool)
                    .await?;
                Ok(())
            }
            NonceClaim::InTx(tx) => {
                drop(tx);
                Ok(())
            }
        }
    }
}

/// A request's nonce, claimed in one autocommitted statement on PostgreSQL whose commit
/// does not wait for the disk: `set_config(..., true)` is `SET LOCAL`, so it lasts until
/// the end of the statement's own transaction and leaves the connection as it was.
const NONCE_SQL: &str = "WITH lazy AS (SELECT set_config('synchronous_commit', 'off', true)) \
     INSERT INTO nonces (key_id, nonce, seen_at) SELECT $1, $2, $3 FROM lazy \
     ON CONFLICT (key_id, nonce) DO NOTHING";

/// A request's nonce on SQLite, one autocommitted statement. It is as durable as any
/// other commit there ([`SQLITE_SYNCHRONOUS`]).
const NONCE_SQLITE_SQL: &str = "INSERT INTO nonces (key_id, nonce, seen_at) VALUES ($1, $2, $3) \
     ON CONFLICT (key_id, nonce) DO NOTHING";

/// A subscription to the changes other nodes announce.
pub struct ChangeListener(sqlx::postgres::PgListener);

impl ChangeListener {
    /// Waits for the next announcement. After a lost connection it reconnects by itself
    /// and returns, so the caller looks again at whatever it watches.
    pub async fn next(&mut self) -> StoreResult<()> {
        self.0.try_recv().await?;
        Ok(())
    }
}

/// Creates the PostgreSQL database named in `url` (connecting to the server's `postgres`
/// database to do so). Used by tests and benchmarks that each want a fresh database.
pub async fn create_postgres_database(url: &str) -> StoreResult<()> {
    let (server, name) = split_database(url)?;
    install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&format!("{server}/postgres")).await?;
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\""))).await?;
    Ok(())
}

/// A database a test made on the PostgreSQL server, dropped (its connections closed) when
/// this value is, so a test that panics leaves no database behind.
pub struct TestDatabase {
    pub url: String,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let url = std::mem::take(&mut self.url);
        // Drop runs outside async (or inside a runtime that must not block): a short-lived
        // runtime on a thread of its own does the DDL.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(drop_postgres_database(&url)).map_err(std::io::Error::other)
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop a test database: {e}");
        }
    }
}

/// A new database `name` on the PostgreSQL server the tests use (`SAOMA_TEST_POSTGRES`, or
/// the local one), for a test: the database, dropped with the value, or `None` when no
/// server is reachable, said on stderr as `SKIPPED name`. With `CI=true` a missing server
/// fails the test instead.
pub async fn test_postgres_database(name: &str) -> Option<TestDatabase> {
    let server =
        std::env::var("SAOMA_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let url = format!("{server}/{name}");
    match create_postgres_database(&url).await {
        Ok(()) => Some(TestDatabase { url }),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true needs PostgreSQL at {server}: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED {name}: no PostgreSQL at {server} ({e})");
            None
        }
    }
}

/// Drops the PostgreSQL database named in `url`, closing any connection still open to it.
pub async fn drop_postgres_database(url: &str) -> StoreResult<()> {
    let (server, name) = split_database(url)?;
    install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&format!("{server}/postgres")).await?;
    conn.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))).await?;
    Ok(())
}

/// Splits `postgres://user@host:port/name` into the server part and a database name made
/// only of safe characters (it is spliced into DDL, which takes no bind parameters).
fn split_database(url: &str) -> StoreResult<(&str, &str)> {
    let rest = url.strip_prefix("postgres://").or_else(|| url.strip_prefix("postgresql://"));
    let slash = rest.and_then(|r| r.rfind('/')).ok_or(StoreError::UnsupportedUrl)?;
    let cut = url.len() - rest.map_or(0, str::len) + slash;
    let (server, name) = (&url[..cut], &url[cut + 1..]);
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StoreError::UnsupportedUrl);
    }
    Ok((server, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_commit_is_refused_on_postgresql_only() {
        let sqlite = Backend::of("sqlite:///tmp/x.db").unwrap();
        let postgres = Backend::of("postgres://postgres@127.0.0.1:5432/saoma").unwrap();
        assert!(group_commit_for(sqlite, true).unwrap());
        assert!(!group_commit_for(sqlite, false).unwrap());
        assert!(!group_commit_for(postgres, false).unwrap());
        let refused = group_commit_for(postgres, true).unwrap_err();
        assert!(matches!(&refused, StoreError::Config(m) if m.contains("SQLite only")), "{refused:?}");
    }

    async fn synchronous_commit(c: &mut sqlx::AnyConnection) -> String {
        let (v,): (String,) = sqlx::query_as("SHOW synchronous_commit").fetch_one(c).await.unwrap();
        v
    }

    /// A test's database goes when the test panics: nothing is left on the server.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_test_database_is_dropped_when_its_test_panics() {
        let name = format!("saoma_dropped_{}", std::process::id());
        let Some(probe) = test_postgres_database(&format!("{name}_probe")).await else { return };
        let exists = |url: String| async move {
            let (server, name) = split_database(&url).unwrap();
            let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&format!("{server}/postgres"))
                .await
                .unwrap();
            let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
                .bind(name)
                .fetch_one(&mut conn)
                .await
                .unwrap();
            n == 1
        };
        assert!(exists(probe.url.clone()).await, "a test database exists while it is held");
        let held = test_postgres_database(&name).await.unwrap();
        let url = held.url.clone();
        let panicked = tokio::spawn(async move {
            let _db = held;
            panic!("a failing test");
        })
        .await;
        assert!(panicked.is_err());
        assert!(!exists(url).await, "the panicking test's database is gone");
    }

    /// A nonce is claimed once, and its lazy commit touches nothing but its own
    /// transaction: the connection goes back to the pool committing synchronously, so the
    /// payments that follow on it still wait for the disk.
    #[tokio::test]
    async fn a_nonce_is_claimed_once_and_only_its_own_commit_is_lazy() {
        let name = format!("saoma_nonce_lazy_{}", std::process::id());
        let Some(db) = test_postgres_database(&name).await else { return };
        let url = db.url.clone();
        let store = Store::open(&url).await.unwrap();
        let claim = store.claim_nonce("k_1", "n-1", 1_000).await.unwrap().expect("a new nonce is claimed");
        claim.keep().await.unwrap();
        assert!(store.claim_nonce("k_1", "n-1", 1_001).await.unwrap().is_none(), "a replay is refused");
        assert!(store.claim_nonce("k_2", "n-1", 1_001).await.unwrap().is_some(), "nonces are per key");

        let mut conn = store.write.acquire().await.unwrap();
        let before = synchronous_commit(&mut conn).await;
        conn.execute("BEGIN").await.unwrap();
        sqlx::query(NONCE_SQL).bind("k_1").bind("n-2").bind(1_002_i64).execute(&mut *conn).await.unwrap();
        assert_eq!(
            synchronous_commit(&mut conn).await,
            "off",
            "the nonce's own commit does not wait for the disk"
        );
        conn.execute("COMMIT").await.unwrap();
        assert_eq!(synchronous_commit(&mut conn).await, before, "and the connection is as it was");
        drop(conn);
        store.close().await;
    }
}
