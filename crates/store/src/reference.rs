//! The database's own speed at a payment, with nothing of Saoma around it: the yardstick
//! `saoma bench` holds Saoma against. A payment here writes what a Saoma charge writes —
//! the code marked used, the wallet debited under its no-overdraft guard, the merchant's
//! payable shard and the fee shard credited, the payment row, a journal entry with its
//! three postings, a receipt row, an outbox event and an audit record — in its own tables (`ref_*`),
//! with no HTTP, signature, JSON, receipt signing or risk rules. It runs in a database of
//! its own: it creates its tables, and fails if they exist.

use crate::{Backend, StoreError, StoreResult};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, AssertSqlSafe, Executor};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Shards of the merchant and fee accounts on PostgreSQL: one for each connection (up to
/// 64), as the store gives each of its write connections a shard of its own.
const SHARDS_POSTGRES: u64 = 64;
/// The fee, in basis points, as the bench's merchants have.
const FEE_BPS: i64 = 60;

const SCHEMA: &[&str] = &[
    "CREATE TABLE ref_wallets (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL CHECK (balance >= 0))",
    "CREATE TABLE ref_accounts (id TEXT PRIMARY KEY, balance BIGINT NOT NULL)",
    "CREATE TABLE ref_used_codes (code TEXT PRIMARY KEY, used_at TEXT NOT NULL)",
    "CREATE TABLE ref_payments (id TEXT PRIMARY KEY, merchant BIGINT NOT NULL, out_trade_no TEXT NOT NULL, \
     wallet BIGINT NOT NULL, amount BIGINT NOT NULL, fee BIGINT NOT NULL, status TEXT NOT NULL, \
     created_at TEXT NOT NULL, UNIQUE (merchant, out_trade_no))",
    "CREATE TABLE ref_entries (id TEXT PRIMARY KEY, kind TEXT NOT NULL, ref_id TEXT NOT NULL, created_at TEXT NOT NULL)",
    "CREATE TABLE ref_postings (entry_id TEXT NOT NULL, account_id TEXT NOT NULL, direction TEXT NOT NULL, \
     amount BIGINT NOT NULL)",
    "CREATE TABLE ref_events (id TEXT PRIMARY KEY, merchant BIGINT NOT NULL, kind TEXT NOT NULL, data TEXT NOT NULL, \
     created_at TEXT NOT NULL)",
    "CREATE TABLE ref_receipts (payment_id TEXT PRIMARY KEY, receipt TEXT NOT NULL, created_at TEXT NOT NULL)",
    "CREATE TABLE ref_audit (id TEXT PRIMARY KEY, action TEXT NOT NULL, object_id TEXT NOT NULL, detail TEXT NOT NULL, \
     created_at TEXT NOT NULL)",
];

/// What one reference run did.
#[derive(Debug, Clone, Default)]
pub struct ReferenceRun {
    /// Payments committed.
    pub payments: u64,
    /// Database transactions committed.
    pub commits: u64,
    /// Wall time of the run.
    pub seconds: f64,
    /// Each committed payment's time from its transaction's start to its commit, in µs.
    pub latencies_us: Vec<u64>,
}

/// The reference tables in one database, seeded with wallets and merchants.
pub struct Reference {
    pool: AnyPool,
    url: String,
    backend: Backend,
    wallets: u64,
    merchants: u64,
    shards: u64,
    next: Arc<AtomicU64>,
}

impl Reference {
    /// Connects (one connection; each PostgreSQL run opens its own and closes them, so
    /// idle ones never use up the server's `max_connections`), creates the `ref_*` tables and seeds `wallets` wallets holding plenty
    /// and `merchants` merchants. SQLite runs with the store's own settings (WAL,
    /// [`crate::SQLITE_SYNCHRONOUS`]), so the comparison is like for like.
    pub async fn open(url: &str, wallets: u64, merchants: u64) -> StoreResult<Reference> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => format!("{url}?mode=rwc"),
            _ => url.to_string(),
        };
        let pool = connect(&url, backend, 1).await?;
        if backend == Backend::Sqlite {
            pool.execute("PRAGMA journal_mode = WAL").await?;
        }
        for statement in SCHEMA {
            pool.execute(*statement).await?;
        }
        let shards = if backend == Backend::Sqlite { 1 } else { SHARDS_POSTGRES };
        let mut tx = pool.begin().await?;
        let chunk = 10_000u64;
        let mut start = 0;
        while start < wallets {
            let end = (start + chunk).min(wallets);
            let values: Vec<String> = (start..end).map(|i| format!("({i}, 1000000000000)")).collect();
            let sql = format!("INSERT INTO ref_wallets (id, balance) VALUES {}", values.join(", "));
            tx.execute(AssertSqlSafe(sql)).await?;
            start = end;
        }
        let mut accounts: Vec<String> = (0..shards).map(|s| format!("('fee#{s}', 0)")).collect();
        for m in 0..merchants {
            accounts.extend((0..shards).map(|s| format!("('m{m}#{s}', 0)")));
        }
        for chunk in accounts.chunks(10_000) {
            let sql = format!("INSERT INTO ref_accounts (id, balance) VALUES {}", chunk.join(", "));
            tx.execute(AssertSqlSafe(sql)).await?;
        }
        tx.commit().await?;
        Ok(Reference { pool, url, backend, wallets, merchants, shards, next: Arc::new(AtomicU64::new(0)) })
    }

    /// Pays for `duration` over `connections` connections (one on SQLite), `batch`
    /// payments per transaction, every payment to merchant 0 when `hot`, else spread over
    /// all. `done` counts committed payments as they commit (for a progress bar).
    pub async fn run(
        &self,
        connections: usize,
        duration: Duration,
        batch: usize,
        hot: bool,
        done: Arc<AtomicU64>,
    ) -> StoreResult<ReferenceRun> {
        let connections = if self.backend == Backend::Sqlite { 1 } else { connections.max(1) };
        let batch = batch.max(1) as u64;
        let pool = match self.backend {
            Backend::Sqlite => self.pool.clone(),
            Backend::Postgres => connect(&self.url, self.backend, connections as u32).await?,
        };
        let started = Instant::now();
        let deadline = started + duration;
        let tasks = (0..connections as u64).map(|c| {
            let pool = pool.clone();
            let (next, done) = (self.next.clone(), done.clone());
            let (wallets, merchants, shards) = (self.wallets, self.merchants, self.shards);
            tokio::spawn(async move {
                let mut run = ReferenceRun::default();
                let mut conn = pool.acquire().await?;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                    // One lock order for every transaction, so concurrent ones never
                    // deadlock: wallets by id, then the accounts by id (credits summed).
                    let mut payments: Vec<(u64, u64)> = (0..batch)
                        .map(|_| {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            ((i.wrapping_mul(7919)) % wallets.max(1), i)
                        })
                        .collect();
                    payments.sort_unstable();
                    let mut credits: BTreeMap<String, i64> = BTreeMap::new();
                    for (wallet, i) in payments {
                        let merchant = if hot { 0 } else { i % merchants.max(1) };
                        let (net, fee) = pay(&mut tx, i, wallet, merchant).await?;
                        let shard = c % shards;
                        *credits.entry(format!("m{merchant}#{shard}")).or_default() += net;
                        *credits.entry(format!("fee#{shard}")).or_default() += fee;
                    }
                    for (account, delta) in credits {
                        sqlx::query("UPDATE ref_accounts SET balance = balance + $1 WHERE id = $2")
                            .bind(delta)
                            .bind(account)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                    let us = t.elapsed().as_micros() as u64;
                    run.commits += 1;
                    run.payments += batch;
                    run.latencies_us.extend(std::iter::repeat_n(us, batch as usize));
                    done.fetch_add(batch, Ordering::Relaxed);
                }
                Ok::<ReferenceRun, StoreError>(run)
            })
        });
        let mut total = ReferenceRun::default();
        let mut failed = None;
        for handle in futures_join(tasks.collect()).await {
            match handle.map_err(|e| StoreError::Corrupt(format!("a reference worker died: {e}"))) {
                Ok(Ok(run)) => {
                    total.payments += run.payments;
                    total.commits += run.commits;
                    total.latencies_us.extend(run.latencies_us);
                }
                Ok(Err(e)) | Err(e) => failed = failed.or(Some(e)),
            }
        }
        total.seconds = started.elapsed().as_secs_f64();
        if self.backend == Backend::Postgres {
            pool.close().await;
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(total),
        }
    }

    /// Sets SQLite's `synchronous` (`NORMAL` or `FULL`) on the reference's one connection,
    /// to measure what a sync per commit costs; nothing on PostgreSQL.
    pub async fn set_sqlite_synchronous(&self, full: bool) -> StoreResult<()> {
        if self.backend == Backend::Sqlite {
            let mode = if full { "FULL" } else { crate::SQLITE_SYNCHRONOUS };
            self.pool.execute(AssertSqlSafe(format!("PRAGMA synchronous = {mode}"))).await?;
        }
        Ok(())
    }

    /// Checks the reference's own books: wallet debits equal merchant and fee credits, and
    /// one entry per payment. Returns the number of payments.
    pub async fn check(&self) -> StoreResult<u64> {
        let (payments, amounts): (i64, i64) =
            sqlx::query_as("SELECT COUNT(*), CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM ref_payments")
                .fetch_one(&self.pool)
                .await?;
        let (debits, credits): (i64, i64) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(CASE WHEN direction = 'debit' THEN amount ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN direction = 'credit' THEN amount ELSE 0 END), 0) AS BIGINT) FROM ref_postings",
        )
        .fetch_one(&self.pool)
        .await?;
        let (entries,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM ref_entries").fetch_one(&self.pool).await?;
        if debits != credits || debits != amounts || entries != payments {
            return Err(StoreError::Corrupt(format!(
                "reference books off: {payments} payments of {amounts}, {entries} entries, debits {debits}, credits {credits}"
            )));
        }
        Ok(payments as u64)
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A pool of up to `max` connections with the store's SQLite settings.
async fn connect(url: &str, backend: Backend, max: u32) -> StoreResult<AnyPool> {
    Ok(AnyPoolOptions::new()
        .max_connections(max.max(1))
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute(AssertSqlSafe(format!(
                        "PRAGMA synchronous = {}",
                        crate::SQLITE_SYNCHRONOUS
                    )))
                    .await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await?)
}

/// Connections a PostgreSQL server can still accept: `max_connections` less those open.
pub async fn postgres_free_connections(url: &str) -> StoreResult<i64> {
    sqlx::any::install_default_drivers();
    let pool = connect(url, Backend::Postgres, 1).await?;
    let (free,): (i64,) = sqlx::query_as(
        "SELECT CAST(current_setting('max_connections') AS BIGINT) - (SELECT COUNT(*) FROM pg_stat_activity)",
    )
    .fetch_one(&pool)
    .await?;
    pool.close().await;
    Ok(free)
}

/// Joins spawned tasks in order.
async fn futures_join<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<Result<T, tokio::task::JoinError>> {
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await);
    }
    out
}

/// One payment, statement by statement, inside the caller's transaction; the caller
/// credits the merchant's payable and the fee revenue with the (net, fee) returned.
async fn pay(tx: &mut sqlx::AnyConnection, i: u64, wallet: u64, merchant: u64) -> StoreResult<(i64, i64)> {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let amount = 100 + (i % 900) as i64;
    let fee = amount * FEE_BPS / 10_000;
    let (id, entry) = (format!("pay_{i}"), format!("je_{i}"));
    let (payable, fee_account) = (format!("m{merchant}"), "fee".to_string());
    let wallet = wallet as i64;
    sqlx::query("INSERT INTO ref_used_codes (code, used_at) VALUES ($1, $2)")
        .bind(format!("66{i:016}"))
        .bind(&now)
        .execute(&mut *tx)
        .await?;
    let debited =
        sqlx::query("UPDATE ref_wallets SET balance = balance - $1 WHERE id = $2 AND balance >= $1")
            .bind(amount)
            .bind(wallet)
            .execute(&mut *tx)
            .await?;
    if debited.rows_affected() != 1 {
        return Err(StoreError::InsufficientFunds(format!("reference wallet {wallet}")));
    }
    sqlx::query(
        "INSERT INTO ref_payments (id, merchant, out_trade_no, wallet, amount, fee, status, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'succeeded', $7)",
    )
    .bind(&id)
    .bind(merchant as i64)
    .bind(format!("r-{i}"))
    .bind(wallet)
    .bind(amount)
    .bind(fee)
    .bind(&now)
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO ref_entries (id, kind, ref_id, created_at) VALUES ($1, 'payment', $2, $3)")
        .bind(&entry)
        .bind(&id)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO ref_postings (entry_id, account_id, direction, amount) \
         VALUES ($1, $2, 'debit', $3), ($1, $4, 'credit', $5), ($1, $6, 'credit', $7)",
    )
    .bind(&entry)
    .bind(format!("w{wallet}"))
    .bind(amount)
    .bind(&payable)
    .bind(amount - fee)
    .bind(&fee_account)
    .bind(fee)
    .execute(&mut *tx)
    .await?;
    let data = format!(r#"{{"id":"{id}","amount":{amount},"currency":"CNY","status":"succeeded"}}"#);
    sqlx::query("INSERT INTO ref_receipts (payment_id, receipt, created_at) VALUES ($1, $2, $3)")
        .bind(&id)
        .bind(&data)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO ref_events (id, merchant, kind, data, created_at) VALUES ($1, $2, 'payment.succeeded', $3, $4)")
        .bind(format!("evt_{i}"))
        .bind(merchant as i64)
        .bind(&data)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO ref_audit (id, action, object_id, detail, created_at) VALUES ($1, 'payment.charge', $2, $3, $4)")
        .bind(format!("aud_{i}"))
        .bind(&id)
        .bind(&data)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
    Ok((amount - fee, fee))
}
