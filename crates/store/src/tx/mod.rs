//! The write transaction of one business operation. Loads inside it lock what they read
//! on PostgreSQL (`FOR UPDATE`); SQLite has a single writer, so its reads are already
//! consistent with its writes.

use crate::{Backend, StoreResult};
use sqlx::{Any, AssertSqlSafe, Transaction};

mod books;
mod parties;
mod trade;

// Every dynamic SQL string here is built from constants of this crate, never from input.

/// One database transaction. Dropping it without [`WriteTx::commit`] rolls back.
pub struct WriteTx {
    tx: Conn,
    backend: Backend,
    pub(crate) shards: std::sync::Arc<AccountShards>,
    audit_chain: Option<i64>,
    /// True once this transaction appended an audit record (its head update may be held
    /// back in `deferred`).
    audited: bool,
    flushes: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Writes held back until the commit or a read of their tables (`crate::deferred`).
    deferred: crate::deferred::Deferred,
}

/// Where a transaction's statements go: a transaction of its own, or an operation (a
/// savepoint) in the group commit's batch (`crate::batch`).
pub(crate) enum Conn {
    Own(Transaction<'static, Any>),
    Batched(crate::batch::Lease),
}

impl std::ops::Deref for Conn {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &sqlx::AnyConnection {
        match self {
            Conn::Own(tx) => tx,
            Conn::Batched(lease) => lease.conn_ref(),
        }
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        match self {
            Conn::Own(tx) => &mut *tx,
            Conn::Batched(lease) => lease.conn(),
        }
    }
}

/// How accounts that only the platform's own flows touch (merchant payable, fee revenue,
/// cash-in, settlement) are split into rows, so that payments to one merchant do not all
/// queue on one row lock. Each posting lands on the next shard in turn; a balance is the
/// sum of its shards. Wallets are never split: their no-overdraft guard needs one row.
pub(crate) struct AccountShards {
    pub(crate) count: u64,
    pub(crate) next: std::sync::atomic::AtomicU64,
}

impl AccountShards {
    /// The audit chain a new transaction appends to: as many chains as account shards.
    fn next_chain(&self) -> i64 {
        (self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.count.max(1)) as i64
    }

    pub(crate) fn row_id(&self, account: &saoma_core::ledger::AccountRef) -> String {
        let key = account.key();
        if self.count <= 1 || account.kind.must_stay_non_negative() {
            return key;
        }
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.count;
        format!("{key}#{n}")
    }
}

/// `($1, $2, ...), (...)`: the placeholders of a multi-row `VALUES` of `rows` rows.
fn values_list(rows: usize, columns: usize) -> String {
    let row = |r: usize| {
        let cells: Vec<String> = (1..=columns).map(|c| format!("${}", r * columns + c)).collect();
        format!("({})", cells.join(", "))
    };
    (0..rows).map(row).collect::<Vec<_>>().join(", ")
}

/// The columns that hold secrets sealed under the master key: (table, key column, column).
pub const SEALED_COLUMNS: &[(&str, &str, &str)] = &[
    ("api_keys", "id", "secret"),
    ("devices", "id", "secret"),
    ("webhook_endpoints", "merchant_id", "secret"),
    ("webhook_endpoints", "merchant_id", "previous_secret"),
    ("receipt_keys", "kid", "seed"),
    ("merchant_applications", "merchant_id", "owner_id_number"),
];

/// The payment columns, in `PaymentRow` order.
pub(crate) const PAYMENT_COLUMNS: &str = "id, merchant_id, terminal_id, out_trade_no, amount, currency, subject, items, mode, \
     status, failure_code, refunded_amount, fee, fee_returned, customer_id, customer_ref, fingerprint, qr_ref, \
     needs_confirm, created_at, paid_at, expires_at";

impl WriteTx {
    pub(crate) fn new(
        tx: Conn,
        backend: Backend,
        shards: std::sync::Arc<AccountShards>,
        flushes: std::sync::Arc<std::sync::atomic::AtomicU64>,
    ) -> WriteTx {
        WriteTx {
            tx,
            backend,
            shards,
            audit_chain: None,
            audited: false,
            flushes,
            deferred: Default::default(),
        }
    }

    /// The engine this transaction runs on.
    pub(crate) fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn lock(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        }
    }

    /// A shared row lock on PostgreSQL (SQLite's single writer needs none).
    pub(crate) fn share_lock(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => " FOR SHARE",
            Backend::Sqlite => "",
        }
    }

    pub(crate) fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }

    /// The connection, once every held-back write has been sent: for statements that read
    /// a table whose writes may be deferred (`crate::deferred`).
    pub(crate) async fn flushed(&mut self) -> StoreResult<&mut sqlx::AnyConnection> {
        if !self.deferred.is_empty() {
            self.deferred.flush(&mut self.tx, self.backend).await?;
        }
        Ok(&mut self.tx)
    }

    /// Holds a write back until the commit or a read of its table (`crate::deferred`).
    pub(crate) fn defer(&mut self, sql: impl Into<String>, args: Vec<crate::deferred::Arg>) {
        self.deferred.push(sql, args);
    }

    /// Every value of one of the [`SEALED_COLUMNS`]: (row key, value).
    pub async fn sealed_values(&mut self, column: usize) -> StoreResult<Vec<(String, Option<String>)>> {
        let (table, key, col) = SEALED_COLUMNS[column];
        let sql = format!("SELECT {key}, {col} FROM {table} ORDER BY {key}{}", self.lock());
        Ok(sqlx::query_as(AssertSqlSafe(sql)).fetch_all(&mut *self.tx).await?)
    }

    /// Replaces one value of one of the [`SEALED_COLUMNS`].
    pub async fn set_sealed_value(&mut self, column: usize, row_key: &str, value: &str) -> StoreResult<()> {
        let (table, key, col) = SEALED_COLUMNS[column];
        let sql = format!("UPDATE {table} SET {col} = $1 WHERE {key} = $2");
        sqlx::query(AssertSqlSafe(sql)).bind(value).bind(row_key).execute(&mut *self.tx).await?;
        Ok(())
    }

    /// A setting's value, locked until commit on PostgreSQL.
    pub async fn setting(&mut self, name: &str) -> StoreResult<Option<String>> {
        let sql = format!("SELECT value FROM settings WHERE name = $1{}", self.lock());
        let row: Option<(String,)> =
            sqlx::query_as(AssertSqlSafe(sql)).bind(name).fetch_optional(&mut *self.tx).await?;
        Ok(row.map(|(v,)| v))
    }

    /// Overwrites a setting.
    pub async fn set_setting(&mut self, name: &str, value: &str) -> StoreResult<()> {
        sqlx::query("UPDATE settings SET value = $1 WHERE name = $2")
            .bind(value)
            .bind(name)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Commits everything done in this transaction; in a group commit, returns once the
    /// batch holding it has committed.
    pub async fn commit(mut self) -> StoreResult<()> {
        self.flushed().await?;
        match self.tx {
            Conn::Own(tx) => {
                tx.commit().await?;
                self.flushes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            }
            Conn::Batched(lease) => lease.commit().await,
        }
    }

    pub async fn setting_or_init(&mut self, name: &str, value: &str) -> StoreResult<String> {
        sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(value)
            .execute(&mut *self.tx)
            .await?;
        let v: (String,) = sqlx::query_as("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(v.0)
    }
}
