//! The write transaction of one business operation. Loads inside it lock what they read
//! on PostgreSQL (`FOR UPDATE`); SQLite has a single writer, so its reads are already
//! consistent with its writes.

use crate::{Backend, StoreResult};
use sqlx::{Any, AssertSqlSafe, Transaction};

mod books;
mod parties;
mod posting;
mod trade;

// Every dynamic SQL string here is built from constants of this crate, never from input.

/// One database transaction. Dropping it without [`WriteTx::commit`] rolls back.
pub struct WriteTx {
    tx: Conn,
    backend: Backend,
    pub(crate) shards: std::sync::Arc<AccountShards>,
    /// The shard rows and audit chain this transaction writes to, taken at its first
    /// posting or audit record.
    shard: Option<ShardLease>,
    /// True once this transaction appended an audit record (its head update may be held
    /// back in `deferred`).
    audited: bool,
    flushes: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Writes held back until the commit or a read of their tables (`crate::deferred`).
    deferred: crate::deferred::Deferred,
    /// The wallet rows this transaction holds locked (PostgreSQL: read `FOR UPDATE` and
    /// found). Moving one takes no lock, so it may ride in any later statement.
    locked_wallets: Vec<String>,
    /// The customer rows this transaction holds locked (PostgreSQL, `WriteTx::customer`).
    locked_customers: Vec<String>,
    /// The head of this transaction's audit chain, locked by its posting's statement
    /// (`WriteTx::post_entry_then_audit`; on SQLite read in the posting's call, the one
    /// writer being held) and not yet appended to.
    head: Option<LockedHead>,
}

/// An audit chain's head as this transaction locked it.
pub(crate) struct LockedHead {
    pub(crate) chain: i64,
    pub(crate) seq_no: i64,
    pub(crate) hash: String,
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
/// queue on one row lock, and which audit chain a transaction appends to. A balance is
/// the sum of its shards. Wallets are never split: their no-overdraft guard needs one row.
///
/// A transaction takes one shard number and keeps it: every split account it posts to
/// lands on that shard's row and its audit record on that chain. Only numbers no open
/// transaction of this node holds are handed out (while there are any), so with at least
/// as many shards as write connections (the default) two transactions of one node do not
/// wait on each other's shard rows or chain head, however busy one merchant is. The free
/// numbers are handed out oldest first, so each node cycles through every shard and two
/// nodes meet on one about as often as chance has it, whatever their starting points.
pub(crate) struct AccountShards {
    pub(crate) count: u64,
    pub(crate) next: std::sync::atomic::AtomicU64,
    /// Shard numbers no open transaction of this node holds, the longest free first.
    free: std::sync::Mutex<std::collections::VecDeque<u64>>,
}

impl AccountShards {
    pub(crate) fn new(count: u64) -> AccountShards {
        let count = count.max(1);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let offset = (u64::from(std::process::id()) ^ u64::from(nanos)) % count;
        let free = (0..count).map(|i| (i + offset) % count).collect();
        AccountShards { count, next: Default::default(), free: std::sync::Mutex::new(free) }
    }

    /// A shard number for one transaction, until it ends: a free one, or (with more open
    /// transactions than shards) the next in turn, shared.
    pub(crate) fn take(self: &std::sync::Arc<Self>) -> ShardLease {
        let free = self.free.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop_front();
        match free {
            Some(n) => ShardLease { shards: self.clone(), n, held: true },
            None => {
                let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.count;
                ShardLease { shards: self.clone(), n, held: false }
            }
        }
    }

    /// The row an account's posting lands on, spreading rows in turn (bulk loads, which
    /// hold no shard of their own).
    pub(crate) fn row_id(&self, account: &saoma_core::ledger::AccountRef) -> String {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.count;
        shard_row(self.count, n, account)
    }
}

/// `account`'s row in shard `n` of `count`: the account itself when it is not split.
fn shard_row(count: u64, n: u64, account: &saoma_core::ledger::AccountRef) -> String {
    let key = account.key();
    if count <= 1 || account.kind.must_stay_non_negative() {
        return key;
    }
    format!("{key}#{n}")
}

/// One transaction's shard number, given back when the transaction ends.
pub(crate) struct ShardLease {
    shards: std::sync::Arc<AccountShards>,
    n: u64,
    /// Taken from the free list (and so given back to it).
    held: bool,
}

impl ShardLease {
    /// The audit chain of this transaction.
    pub(crate) fn chain(&self) -> i64 {
        self.n as i64
    }

    pub(crate) fn row_id(&self, account: &saoma_core::ledger::AccountRef) -> String {
        shard_row(self.shards.count, self.n, account)
    }
}

impl Drop for ShardLease {
    fn drop(&mut self) {
        if self.held {
            let mut free = self.shards.free.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            debug_assert!(!free.contains(&self.n), "shard {} given back twice", self.n);
            free.push_back(self.n);
        }
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
    /// This transaction's shard, taken on first use.
    fn shard(&mut self) -> &ShardLease {
        self.shard.get_or_insert_with(|| self.shards.take())
    }

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
            shard: None,
            audited: false,
            flushes,
            deferred: Default::default(),
            locked_wallets: Vec::new(),
            locked_customers: Vec::new(),
            head: None,
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

    /// Asserts that this transaction has not locked its audit head yet: `what`, a lock
    /// taken after the head, would break the global lock order.
    pub(crate) fn assert_head_unlocked(&self, what: &str) {
        assert!(self.head.is_none(), "{what} after the audit head is locked breaks the lock order");
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

    /// SQLite: every held-back write and then `statements`, in one call to SQLite's worker
    /// thread (one hand-off instead of one per statement, during which this transaction
    /// holds the one writer anyway). What each of `statements` did, in order. On an error
    /// the held-back writes are gone and some statements may have run: the caller must
    /// drop the transaction.
    pub(crate) async fn flushed_with(
        &mut self,
        statements: Vec<crate::deferred::Statement>,
    ) -> StoreResult<Vec<crate::deferred::Step>> {
        assert!(self.backend == Backend::Sqlite, "a call of several statements is SQLite's");
        let mut all = self.deferred.take();
        let held = all.len();
        all.extend(statements);
        let mut steps = crate::deferred::steps(&mut self.tx, &all).await?;
        Ok(steps.split_off(held))
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

#[cfg(test)]
mod tests {
    //! Proves that a node's open transactions hold different shards while there are enough
    //! of them, that one transaction keeps to one shard for every split account and its
    //! audit chain, and that a shard comes back when its transaction ends.
    use super::AccountShards;
    use saoma_core::ledger::{AccountKind, AccountRef};
    use saoma_core::money::Currency;
    use std::sync::Arc;

    #[test]
    fn open_transactions_hold_different_shards_until_they_end() {
        let shards = Arc::new(AccountShards::new(16));
        let leases: Vec<_> = (0..16).map(|_| shards.take()).collect();
        let mut taken: Vec<i64> = leases.iter().map(|l| l.chain()).collect();
        taken.sort();
        assert_eq!(taken, (0..16).collect::<Vec<_>>(), "16 open transactions, 16 shards: one each");

        // A 17th shares a shard, and giving it back leaves the free list as it was.
        let extra = shards.take();
        assert!((0..16).contains(&extra.chain()));
        drop(extra);
        assert!(shards.free.lock().unwrap().is_empty());

        // A shard given back is handed out again once the shards freed before it were.
        let mut leases = leases;
        let first = leases.pop().unwrap().chain();
        let second = leases.pop().unwrap().chain();
        assert_eq!(shards.take().chain(), first);
        assert_eq!(shards.take().chain(), second);
        drop(leases);
        assert_eq!(shards.free.lock().unwrap().len(), 16, "every shard was given back");

        // So an idle node cycles through every shard rather than reusing one.
        let mut seen: Vec<i64> = (0..16).map(|_| shards.take().chain()).collect();
        seen.sort();
        assert_eq!(seen, (0..16).collect::<Vec<_>>(), "one transaction after another: every shard in turn");
    }

    #[test]
    fn a_transaction_keeps_to_one_shard() {
        let shards = Arc::new(AccountShards::new(16));
        let lease = shards.take();
        let n = lease.chain();
        let payable = AccountRef::payable("m_hot", Currency::CNY);
        let fee = AccountRef::platform(AccountKind::FeeRevenue, Currency::CNY);
        for _ in 0..3 {
            assert_eq!(lease.row_id(&payable), format!("merchant_payable:m_hot:CNY#{n}"));
            assert_eq!(lease.row_id(&fee), format!("fee_revenue:platform:CNY#{n}"));
        }
        let wallet = AccountRef::wallet("c_1", Currency::CNY);
        assert_eq!(lease.row_id(&wallet), "customer_wallet:c_1:CNY", "a wallet is never split");
        let one = Arc::new(AccountShards::new(1));
        assert_eq!(one.take().row_id(&payable), "merchant_payable:m_hot:CNY");
    }
}
