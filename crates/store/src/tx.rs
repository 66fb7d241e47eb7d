//! The write transaction of one business operation. Loads inside it lock what they read
//! on PostgreSQL (`FOR UPDATE`); SQLite has a single writer, so its reads are already
//! consistent with its writes.

use crate::rows::{PaymentRow, payment_of};
use crate::{AuditRecord, Backend, NewEvent, StoreError, StoreResult};
use crate::{CustomerRow, MerchantRow, ReceiptKeyRow, ReceiptRow, RefundRow, TopUpRow, TransferRow};
use saoma_core::ledger::{AccountRef, JournalEntry};
use saoma_core::payment::Payment;
use sqlx::{Any, AssertSqlSafe, Transaction};

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
                tx.commit().await.map_err(StoreError::from_sqlx)?;
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

    /// Inserts a merchant.
    pub async fn insert_merchant(&mut self, m: &MerchantRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO merchants (id, name, mcc, city, country, currency, fee_bps, timezone, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&m.id)
        .bind(&m.name)
        .bind(&m.mcc)
        .bind(&m.city)
        .bind(&m.country)
        .bind(&m.currency)
        .bind(m.fee_bps)
        .bind(&m.timezone)
        .bind(&m.status)
        .bind(&m.created_at)
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    /// Loads a merchant, locked.
    pub async fn merchant(&mut self, id: &str) -> StoreResult<Option<MerchantRow>> {
        let sql = format!("SELECT * FROM merchants WHERE id = $1{}", self.lock());
        Ok(sqlx::query_as(AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *self.tx).await?)
    }

    /// Sets a merchant's status.
    pub async fn set_merchant_status(&mut self, id: &str, status: &str) -> StoreResult<()> {
        sqlx::query("UPDATE merchants SET status = $1 WHERE id = $2")
            .bind(status)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Inserts a terminal.
    pub async fn insert_terminal(
        &mut self,
        id: &str,
        merchant_id: &str,
        name: &str,
        now: &str,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO terminals (id, merchant_id, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(merchant_id)
            .bind(name)
            .bind(now)
            .execute(&mut *self.tx)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    /// Inserts an API key.
    pub async fn insert_api_key(
        &mut self,
        id: &str,
        merchant_id: &str,
        terminal_id: Option<&str>,
        role: &str,
        secret: &str,
        now: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_keys (id, merchant_id, terminal_id, role, secret, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(merchant_id)
        .bind(terminal_id)
        .bind(role)
        .bind(secret)
        .bind(now)
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    /// Inserts a customer.
    pub async fn insert_customer(&mut self, c: &CustomerRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO customers (id, phone, name, pin_hash, pin_failures, pin_locks, frozen, created_at, tier) \
             VALUES ($1, $2, $3, $4, 0, 0, 0, $5, $6)",
        )
        .bind(&c.id)
        .bind(&c.phone)
        .bind(&c.name)
        .bind(&c.pin_hash)
        .bind(&c.created_at)
        .bind(&c.tier)
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    /// Loads a customer, locked.
    pub async fn customer(&mut self, id: &str) -> StoreResult<Option<CustomerRow>> {
        let sql = format!("SELECT * FROM customers WHERE id = $1{}", self.lock());
        Ok(sqlx::query_as(AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *self.tx).await?)
    }

    /// Saves a customer's PIN-failure state.
    pub async fn set_pin_state(
        &mut self,
        id: &str,
        failures: i64,
        locks: i64,
        locked_until: Option<&str>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE customers SET pin_failures = $1, pin_locks = $2, pin_locked_until = $3 WHERE id = $4",
        )
        .bind(failures)
        .bind(locks)
        .bind(locked_until)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Stores a session by the hash of its token.
    pub async fn insert_session(
        &mut self,
        token_hash: &str,
        customer_id: &str,
        expires_at: &str,
        now: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, customer_id, expires_at, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(customer_id)
        .bind(expires_at)
        .bind(now)
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    /// Enrolls a device; fails with [`StoreError::UniqueViolation`] if the slot is taken.
    pub async fn insert_device(
        &mut self,
        id: &str,
        customer_id: &str,
        slot: i64,
        secret: &str,
        now: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO devices (id, customer_id, slot, secret, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(customer_id)
        .bind(slot)
        .bind(secret)
        .bind(now)
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    /// Remembers an online payment code by its hash.
    pub async fn insert_online_code(
        &mut self,
        code_hash: &str,
        customer_id: &str,
        expires_at: &str,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO online_codes (code_hash, customer_id, expires_at) VALUES ($1, $2, $3)")
            .bind(code_hash)
            .bind(customer_id)
            .bind(expires_at)
            .execute(&mut *self.tx)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    /// Marks a payment code used; false when it already was.
    pub async fn mark_code_used(&mut self, code_hash: &str, now: &str) -> StoreResult<bool> {
        let r = sqlx::query(
            "INSERT INTO used_codes (code_hash, used_at) VALUES ($1, $2) ON CONFLICT (code_hash) DO NOTHING",
        )
        .bind(code_hash)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Spends a payment code and loads, locked, the customer it pays for; `None` when the
    /// code was spent already (by a concurrent scan). On PostgreSQL one statement does
    /// both (the code's row first, then the customer's lock, as two statements would).
    pub async fn spend_code(
        &mut self,
        code_hash: &str,
        customer_id: &str,
        now: &str,
    ) -> StoreResult<Option<CustomerRow>> {
        let missing = || StoreError::Corrupt(format!("payment code of a missing customer {customer_id}"));
        if self.backend == Backend::Sqlite {
            if !self.mark_code_used(code_hash, now).await? {
                return Ok(None);
            }
            return self.customer(customer_id).await?.ok_or_else(missing).map(Some);
        }
        let row = sqlx::query(
            "WITH spent AS (INSERT INTO used_codes (code_hash, used_at) VALUES ($1, $2) \
               ON CONFLICT (code_hash) DO NOTHING RETURNING code_hash) \
             SELECT CAST((SELECT COUNT(*) FROM spent) AS BIGINT) AS fresh, c.* FROM customers c \
             WHERE c.id = $3 FOR UPDATE OF c",
        )
        .bind(code_hash)
        .bind(now)
        .bind(customer_id)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or_else(missing)?;
        let fresh: i64 = sqlx::Row::try_get(&row, "fresh")?;
        if fresh != 1 {
            return Ok(None);
        }
        Ok(Some(<CustomerRow as sqlx::FromRow<'_, sqlx::any::AnyRow>>::from_row(&row)?))
    }

    /// Loads a payment by id, locked.
    pub async fn payment(&mut self, id: &str) -> StoreResult<Option<Payment>> {
        let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1{}", self.lock());
        payment_of(sqlx::query_as(AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *self.tx).await?)
    }

    /// Loads a merchant's payment by its order number, locked.
    pub async fn payment_by_trade_no(
        &mut self,
        merchant_id: &str,
        out_trade_no: &str,
    ) -> StoreResult<Option<Payment>> {
        let sql = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE merchant_id = $1 AND out_trade_no = $2{}",
            self.lock()
        );
        payment_of(
            sqlx::query_as(AssertSqlSafe(sql))
                .bind(merchant_id)
                .bind(out_trade_no)
                .fetch_optional(&mut *self.tx)
                .await?,
        )
    }

    /// Loads the payment a dynamic QR code refers to, locked.
    pub async fn payment_by_qr_ref(&mut self, qr_ref: &str) -> StoreResult<Option<Payment>> {
        let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE qr_ref = $1{}", self.lock());
        payment_of(sqlx::query_as(AssertSqlSafe(sql)).bind(qr_ref).fetch_optional(&mut *self.tx).await?)
    }

    /// Inserts a payment.
    pub async fn insert_payment(&mut self, p: &Payment) -> StoreResult<()> {
        let p = PaymentRow::of(p);
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO payments ({PAYMENT_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"
        )))
        .bind(&p.id)
        .bind(&p.merchant_id)
        .bind(&p.terminal_id)
        .bind(&p.out_trade_no)
        .bind(p.amount)
        .bind(&p.currency)
        .bind(&p.subject)
        .bind(&p.items)
        .bind(&p.mode)
        .bind(&p.status)
        .bind(&p.failure_code)
        .bind(p.refunded_amount)
        .bind(p.fee)
        .bind(p.fee_returned)
        .bind(&p.customer_id)
        .bind(&p.customer_ref)
        .bind(&p.fingerprint)
        .bind(&p.qr_ref)
        .bind(p.needs_confirm)
        .bind(&p.created_at)
        .bind(&p.paid_at)
        .bind(&p.expires_at)
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    /// Saves the fields of a payment that change after creation.
    pub async fn update_payment(&mut self, p: &Payment) -> StoreResult<()> {
        let p = PaymentRow::of(p);
        let updated = sqlx::query(
            "UPDATE payments SET status = $1, failure_code = $2, refunded_amount = $3, fee = $4, fee_returned = $5, \
             customer_id = $6, customer_ref = $7, needs_confirm = $8, paid_at = $9 WHERE id = $10",
        )
        .bind(&p.status)
        .bind(&p.failure_code)
        .bind(p.refunded_amount)
        .bind(p.fee)
        .bind(p.fee_returned)
        .bind(&p.customer_id)
        .bind(&p.customer_ref)
        .bind(p.needs_confirm)
        .bind(&p.paid_at)
        .bind(&p.id)
        .execute(&mut *self.tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Err(StoreError::Corrupt(format!("payment {} vanished while being saved", p.id)));
        }
        Ok(())
    }

    /// Locks the customers' wallets in `currency`, in the global lock order (wallets first,
    /// by id), and returns their balances in the order asked (0 for a wallet never used).
    /// A charge decides against these balances; nothing can move them until commit.
    pub async fn lock_wallets(
        &mut self,
        customer_ids: &[&str],
        currency: saoma_core::Currency,
    ) -> StoreResult<Vec<i64>> {
        let mut keys: Vec<String> =
            customer_ids.iter().map(|c| AccountRef::wallet(c, currency).key()).collect();
        keys.sort();
        keys.dedup();
        let sql = format!("SELECT balance FROM accounts WHERE id = $1{}", self.lock());
        let mut balances = std::collections::HashMap::new();
        for key in keys {
            let row: Option<(i64,)> =
                sqlx::query_as(AssertSqlSafe(sql.as_str())).bind(&key).fetch_optional(&mut *self.tx).await?;
            balances.insert(key, row.map_or(0, |(b,)| b));
        }
        Ok(customer_ids.iter().map(|c| balances[&AccountRef::wallet(c, currency).key()]).collect())
    }

    /// Loads a merchant's refund by its refund number.
    pub async fn refund_by_no(
        &mut self,
        merchant_id: &str,
        out_refund_no: &str,
    ) -> StoreResult<Option<RefundRow>> {
        Ok(sqlx::query_as("SELECT * FROM refunds WHERE merchant_id = $1 AND out_refund_no = $2")
            .bind(merchant_id)
            .bind(out_refund_no)
            .fetch_optional(&mut *self.tx)
            .await?)
    }

    /// Inserts a refund.
    pub async fn insert_refund(&mut self, r: &RefundRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO refunds (id, payment_id, merchant_id, out_refund_no, amount, currency, fee_returned, \
             status, reason, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&r.id)
        .bind(&r.payment_id)
        .bind(&r.merchant_id)
        .bind(&r.out_refund_no)
        .bind(r.amount)
        .bind(&r.currency)
        .bind(r.fee_returned)
        .bind(&r.status)
        .bind(&r.reason)
        .bind(&r.created_at)
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    /// Loads a top-up by its reference.
    pub async fn top_up_by_reference(&mut self, reference: &str) -> StoreResult<Option<TopUpRow>> {
        Ok(sqlx::query_as("SELECT * FROM top_ups WHERE reference = $1")
            .bind(reference)
            .fetch_optional(&mut *self.tx)
            .await?)
    }

    /// Inserts a top-up.
    pub async fn insert_top_up(&mut self, t: &TopUpRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO top_ups (id, customer_id, reference, amount, currency, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&t.id)
        .bind(&t.customer_id)
        .bind(&t.reference)
        .bind(t.amount)
        .bind(&t.currency)
        .bind(&t.created_at)
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    /// Loads a customer's transfer by its client reference.
    pub async fn transfer_by_client_ref(
        &mut self,
        from: &str,
        client_ref: &str,
    ) -> StoreResult<Option<TransferRow>> {
        Ok(sqlx::query_as("SELECT * FROM transfers WHERE from_customer_id = $1 AND client_ref = $2")
            .bind(from)
            .bind(client_ref)
            .fetch_optional(&mut *self.tx)
            .await?)
    }

    /// Inserts a transfer.
    pub async fn insert_transfer(&mut self, t: &TransferRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO transfers (id, from_customer_id, to_customer_id, amount, currency, client_ref, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&t.id)
        .bind(&t.from_customer_id)
        .bind(&t.to_customer_id)
        .bind(t.amount)
        .bind(&t.currency)
        .bind(&t.client_ref)
        .bind(&t.created_at)
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    /// The payment a wallet request (by `client_ref`) made, if any.
    pub async fn wallet_request(
        &mut self,
        customer_id: &str,
        client_ref: &str,
    ) -> StoreResult<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT payment_id FROM wallet_requests WHERE customer_id = $1 AND client_ref = $2",
        )
        .bind(customer_id)
        .bind(client_ref)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row.map(|r| r.0))
    }

    /// Remembers which payment a wallet request made.
    pub async fn insert_wallet_request(
        &mut self,
        customer_id: &str,
        client_ref: &str,
        payment_id: &str,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO wallet_requests (customer_id, client_ref, payment_id) VALUES ($1, $2, $3)")
            .bind(customer_id)
            .bind(client_ref)
            .bind(payment_id)
            .execute(&mut *self.tx)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    /// Records a journal entry and applies its postings to the accounts (split accounts:
    /// to one of their shard rows) in a few statements (one per wallet, one for every other
    /// account; the entry and its postings held back until the commit, see
    /// `crate::deferred`), locking rows in one global order
    /// (wallets first, then by id) so concurrent writers on PostgreSQL cannot deadlock.
    /// Fails with [`StoreError::InsufficientFunds`] when a wallet would go below zero; the
    /// caller then drops the transaction, so nothing of it lands.
    pub async fn post_entry(
        &mut self,
        entry_id: &str,
        kind: &str,
        ref_id: &str,
        entry: &JournalEntry,
        now: &str,
    ) -> StoreResult<()> {
        let postings: Vec<_> = entry.postings().iter().map(|p| (self.shards.row_id(&p.account), p)).collect();
        // One change per account row, in the global lock order: wallets first (a charge
        // locks them before it decides), then every other row, each group by id.
        let mut changes: std::collections::BTreeMap<(bool, &str), (&saoma_core::ledger::Posting, i64)> =
            std::collections::BTreeMap::new();
        for (account_id, p) in &postings {
            let key = (!p.account.kind.must_stay_non_negative(), account_id.as_str());
            changes.entry(key).or_insert((p, 0)).1 += p.balance_delta();
        }
        for ((other, account_id), (p, delta)) in &changes {
            if !*other {
                self.move_wallet(account_id, p, *delta).await?;
            }
        }
        let others: Vec<_> = changes.iter().filter(|((other, _), _)| *other).collect();
        if !others.is_empty() {
            // Accounts without a floor: one statement creates or moves them all, in order.
            let sql = format!(
                "INSERT INTO accounts (id, kind, owner_id, currency, balance) VALUES {} \
                 ON CONFLICT (id) DO UPDATE SET balance = accounts.balance + excluded.balance",
                values_list(others.len(), 5)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for ((_, account_id), (p, delta)) in others {
                let a = &p.account;
                q = q
                    .bind(*account_id)
                    .bind(a.kind.as_str())
                    .bind(&a.owner)
                    .bind(a.currency_code)
                    .bind(*delta);
            }
            q.execute(&mut *self.tx).await?;
        }
        // The entry and its lines are new rows nothing in this transaction reads back.
        self.defer(
            "INSERT INTO journal_entries (id, kind, ref_id, created_at) VALUES ($1, $2, $3, $4)",
            vec![entry_id.into(), kind.into(), ref_id.into(), now.into()],
        );
        let sql = format!(
            "INSERT INTO postings (entry_id, account_id, direction, amount, currency) VALUES {}",
            values_list(postings.len(), 5)
        );
        let mut args = Vec::with_capacity(postings.len() * 5);
        for (account_id, p) in &postings {
            let (amount, currency) = (p.amount.amount_minor(), p.amount.currency().code());
            args.extend([
                entry_id.into(),
                account_id.as_str().into(),
                p.direction.as_str().into(),
                amount.into(),
                currency.into(),
            ]);
        }
        self.defer(sql, args);
        Ok(())
    }

    /// Moves a wallet's balance by `delta` in one statement: a credit creates the wallet if
    /// need be; a debit never takes it below zero ([`StoreError::InsufficientFunds`]).
    async fn move_wallet(
        &mut self,
        account_id: &str,
        p: &saoma_core::ledger::Posting,
        delta: i64,
    ) -> StoreResult<()> {
        let moved = if delta >= 0 {
            sqlx::query(
                "INSERT INTO accounts (id, kind, owner_id, currency, balance) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (id) DO UPDATE SET balance = accounts.balance + excluded.balance",
            )
            .bind(account_id)
            .bind(p.account.kind.as_str())
            .bind(&p.account.owner)
            .bind(p.account.currency_code)
            .bind(delta)
            .execute(&mut *self.tx)
            .await?
        } else {
            sqlx::query("UPDATE accounts SET balance = balance + $1 WHERE id = $2 AND balance + $1 >= 0")
                .bind(delta)
                .bind(account_id)
                .execute(&mut *self.tx)
                .await?
        };
        if moved.rows_affected() != 1 {
            return Err(StoreError::InsufficientFunds(account_id.to_string()));
        }
        Ok(())
    }

    /// Appends an event to the outbox (held back until the commit); webhooks and live feeds
    /// read it after commit.
    pub async fn insert_event(&mut self, e: &NewEvent<'_>, now: &str) -> StoreResult<()> {
        let tx_id = match self.backend {
            Backend::Postgres => "CAST(CAST(pg_current_xact_id() AS TEXT) AS BIGINT)",
            Backend::Sqlite => "0",
        };
        let sql = format!(
            "INSERT INTO events (id, merchant_id, terminal_id, customer_id, kind, data, created_at, tx_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, {tx_id})"
        );
        let args = vec![
            e.id.into(),
            e.merchant_id.into(),
            e.terminal_id.into(),
            e.customer_id.into(),
            e.kind.into(),
            e.data.to_string().into(),
            now.into(),
        ];
        self.defer(sql, args);
        Ok(())
    }

    /// Appends an audit record to this transaction's hash chain. The chain head is locked
    /// until commit, so the chain has no gaps or forks; there are several chains (one on
    /// SQLite) so concurrent writers seldom wait on one head, and a transaction keeps to
    /// one chain. Callers append audit records last, after their other writes. The record
    /// and the head's new value are held back until the commit (`crate::deferred`): the
    /// head's row is locked already, so they wait on nobody.
    pub async fn insert_audit(&mut self, a: &AuditRecord<'_>, now: &str) -> StoreResult<()> {
        let chain = *self.audit_chain.get_or_insert_with(|| self.shards.next_chain());
        let sql = format!("SELECT seq_no, hash FROM audit_heads WHERE chain = $1{}", self.lock());
        // A second record in one transaction reads the head the first one left.
        let conn = if self.audited { self.flushed().await? } else { &mut *self.tx };
        let head: Option<(i64, String)> =
            sqlx::query_as(AssertSqlSafe(sql.clone())).bind(chain).fetch_optional(&mut *conn).await?;
        let (seq_no, prev) = match head {
            Some(head) => head,
            // The chain's first record: its head is made (once per chain, ever), then locked.
            None => {
                sqlx::query(AssertSqlSafe(format!(
                    "INSERT INTO audit_heads (chain, seq_no, hash) VALUES ($1, 0, '{}') ON CONFLICT (chain) DO NOTHING",
                    saoma_core::audit::GENESIS
                )))
                .bind(chain)
                .execute(&mut *conn)
                .await?;
                sqlx::query_as(AssertSqlSafe(sql)).bind(chain).fetch_one(&mut *conn).await?
            }
        };
        let detail = a.detail.to_string();
        let fields = saoma_core::audit::AuditFields {
            chain,
            chain_seq: seq_no + 1,
            actor: a.actor,
            action: a.action,
            object_id: a.object_id,
            detail: &detail,
            created_at: now,
        };
        let hash = saoma_core::audit::link_hash(&prev, &fields);
        self.defer(
            "INSERT INTO audit_log (actor, action, object_id, detail, created_at, chain, chain_seq, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            vec![
                a.actor.into(),
                a.action.into(),
                a.object_id.into(),
                detail.into(),
                now.into(),
                chain.into(),
                (seq_no + 1).into(),
                prev.into(),
                (&hash).into(),
            ],
        );
        self.defer(
            "UPDATE audit_heads SET seq_no = $1, hash = $2 WHERE chain = $3",
            vec![(seq_no + 1).into(), hash.into(), chain.into()],
        );
        self.audited = true;
        Ok(())
    }

    /// Every audit chain's head as committed: (chain, last sequence number, last hash).
    /// Not locked: a checkpoint must not hold up the writers of the chains.
    pub async fn audit_heads(&mut self) -> StoreResult<Vec<(i64, i64, String)>> {
        Ok(sqlx::query_as("SELECT chain, seq_no, hash FROM audit_heads ORDER BY chain")
            .fetch_all(self.flushed().await?)
            .await?)
    }

    /// Records a signed checkpoint of the audit chains' heads.
    pub async fn insert_audit_checkpoint(
        &mut self,
        created_at: &str,
        kid: &str,
        jws: &str,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO audit_checkpoints (created_at, kid, jws) VALUES ($1, $2, $3)")
            .bind(created_at)
            .bind(kid)
            .bind(jws)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// The receipt key that signs now (the newest), if any.
    pub async fn signing_receipt_key(&mut self) -> StoreResult<Option<ReceiptKeyRow>> {
        Ok(sqlx::query_as("SELECT * FROM receipt_keys ORDER BY generation DESC LIMIT 1")
            .fetch_optional(&mut *self.tx)
            .await?)
    }

    /// Adds a receipt key as the newest generation; it signs from the next receipt on.
    pub async fn add_receipt_key(
        &mut self,
        kid: &str,
        seed: &str,
        public_key: &str,
        now: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO receipt_keys (kid, seed, public_key, generation, created_at) \
             SELECT $1, $2, $3, COALESCE(MAX(generation), 0) + 1, $4 FROM receipt_keys",
        )
        .bind(kid)
        .bind(seed)
        .bind(public_key)
        .bind(now)
        .execute(&mut *self.tx)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    /// Records an issued receipt (held back until the commit).
    pub async fn insert_receipt(&mut self, r: &ReceiptRow) -> StoreResult<()> {
        let args = vec![
            (&r.id).into(),
            (&r.payment_id).into(),
            (&r.refund_id).into(),
            (&r.merchant_id).into(),
            (&r.customer_id).into(),
            (&r.kid).into(),
            (&r.jws).into(),
            (&r.created_at).into(),
        ];
        self.defer(
            "INSERT INTO receipts (id, payment_id, refund_id, merchant_id, customer_id, kid, jws, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            args,
        );
        Ok(())
    }

    /// Remembers a request nonce; false when the key used it before (a replay).
    pub async fn remember_nonce(&mut self, key_id: &str, nonce: &str, now_unix: i64) -> StoreResult<bool> {
        let r = sqlx::query(
            "INSERT INTO nonces (key_id, nonce, seen_at) VALUES ($1, $2, $3) ON CONFLICT (key_id, nonce) DO NOTHING",
        )
        .bind(key_id)
        .bind(nonce)
        .bind(now_unix)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Forgets nonces seen before a time (they are outside the replay window).
    pub async fn forget_nonces_before(&mut self, unix: i64) -> StoreResult<u64> {
        let r =
            sqlx::query("DELETE FROM nonces WHERE seen_at < $1").bind(unix).execute(&mut *self.tx).await?;
        Ok(r.rows_affected())
    }
}
