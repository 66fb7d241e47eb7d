//! Trade inside a write transaction: payment codes, payments, refunds, top-ups, transfers and wallet requests.

use super::{PAYMENT_COLUMNS, WriteTx};
use crate::deferred::Statement;
use crate::risk::{ChargeHistory, PaidOut};
use crate::rows::{PaymentRow, payment_of};
use crate::{Backend, CustomerRow, RefundRow, StoreError, StoreResult, TopUpRow, TransferRow};
use saoma_core::ledger::AccountRef;
use saoma_core::payment::Payment;
use sqlx::AssertSqlSafe;

/// The balances of `customer_ids`' wallets in `currency`, in the order asked, from the
/// balances read by wallet account.
fn in_asked_order(
    customer_ids: &[&str],
    currency: saoma_core::Currency,
    balances: &std::collections::HashMap<String, i64>,
) -> Vec<i64> {
    customer_ids.iter().map(|c| balances[&AccountRef::wallet(c, currency).key()]).collect()
}

/// Spends a payment code: changes no row when it was spent already.
const USE_CODE: &str =
    "INSERT INTO used_codes (code_hash, used_at) VALUES ($1, $2) ON CONFLICT (code_hash) DO NOTHING";

/// What saves payment `p`: its insert, or (`stored`) the update of the fields that change
/// after creation, which changes one row unless the payment vanished.
pub(crate) fn payment_write(p: &Payment, stored: bool) -> Statement {
    let p = PaymentRow::of(p);
    if stored {
        return Statement::new(
            "UPDATE payments SET status = $1, failure_code = $2, refunded_amount = $3, fee = $4, fee_returned = $5, \
             customer_id = $6, customer_ref = $7, needs_confirm = $8, paid_at = $9 WHERE id = $10",
            vec![
                (&p.status).into(),
                (&p.failure_code).into(),
                p.refunded_amount.into(),
                p.fee.into(),
                p.fee_returned.into(),
                (&p.customer_id).into(),
                (&p.customer_ref).into(),
                p.needs_confirm.into(),
                (&p.paid_at).into(),
                (&p.id).into(),
            ],
        );
    }
    let sql = format!(
        "INSERT INTO payments ({PAYMENT_COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"
    );
    let args = vec![
        (&p.id).into(),
        (&p.merchant_id).into(),
        (&p.terminal_id).into(),
        (&p.out_trade_no).into(),
        p.amount.into(),
        (&p.currency).into(),
        (&p.subject).into(),
        (&p.items).into(),
        (&p.mode).into(),
        (&p.status).into(),
        (&p.failure_code).into(),
        p.refunded_amount.into(),
        p.fee.into(),
        p.fee_returned.into(),
        (&p.customer_id).into(),
        (&p.customer_ref).into(),
        (&p.fingerprint).into(),
        (&p.qr_ref).into(),
        p.needs_confirm.into(),
        (&p.created_at).into(),
        (&p.paid_at).into(),
        (&p.expires_at).into(),
    ];
    Statement::new(sql, args)
}

/// Checks that saving payment `payment_id` changed its one row: an update that found none
/// means the payment vanished.
pub(crate) fn saved_once(changed: u64, payment_id: &str) -> StoreResult<()> {
    if changed != 1 {
        return Err(StoreError::Corrupt(format!("payment {payment_id} vanished while being saved")));
    }
    Ok(())
}

/// The wallet accounts of `customer_ids` in `currency`, each once, in the global lock order.
fn wallet_keys(customer_ids: &[&str], currency: saoma_core::Currency) -> Vec<String> {
    let mut keys: Vec<String> = customer_ids.iter().map(|c| AccountRef::wallet(c, currency).key()).collect();
    keys.sort();
    keys.dedup();
    keys
}

impl WriteTx {
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
            .await?;
        Ok(())
    }

    /// Marks a payment code used; false when it already was.
    pub async fn mark_code_used(&mut self, code_hash: &str, now: &str) -> StoreResult<bool> {
        let r = sqlx::query(USE_CODE).bind(code_hash).bind(now).execute(&mut *self.tx).await?;
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
            // One call to SQLite's worker: the code's row, then the customer's.
            let steps = self
                .flushed_with(vec![
                    Statement::new(USE_CODE, vec![code_hash.into(), now.into()]),
                    Statement::new("SELECT * FROM customers WHERE id = $1", vec![customer_id.into()]),
                ])
                .await?;
            if steps[0].changed != 1 {
                return Ok(None);
            }
            let row = steps[1].rows.first().ok_or_else(missing)?;
            return Ok(Some(<CustomerRow as sqlx::FromRow<'_, sqlx::any::AnyRow>>::from_row(row)?));
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
        let w = payment_write(p, false);
        crate::deferred::execute(&mut self.tx, w.sql, &w.args).await?;
        Ok(())
    }

    /// Saves the fields of a payment that change after creation.
    pub async fn update_payment(&mut self, p: &Payment) -> StoreResult<()> {
        let w = payment_write(p, true);
        saved_once(crate::deferred::execute(&mut self.tx, w.sql, &w.args).await?, &p.id)
    }

    /// Locks the customers' wallets in `currency`, in the global lock order (wallets first,
    /// by id), and returns their balances in the order asked (0 for a wallet never used).
    /// A charge decides against these balances; nothing can move them until commit.
    pub async fn lock_wallets(
        &mut self,
        customer_ids: &[&str],
        currency: saoma_core::Currency,
    ) -> StoreResult<Vec<i64>> {
        let keys = wallet_keys(customer_ids, currency);
        let sql = format!("SELECT balance FROM accounts WHERE id = $1{}", self.lock());
        let mut balances = std::collections::HashMap::new();
        for key in keys {
            let row: Option<(i64,)> =
                sqlx::query_as(AssertSqlSafe(sql.as_str())).bind(&key).fetch_optional(&mut *self.tx).await?;
            // A wallet never used has no row, and so no lock yet: its first credit takes one.
            if row.is_some() && self.backend == Backend::Postgres {
                self.locked_wallets.push(key.clone());
            }
            balances.insert(key, row.map_or(0, |(b,)| b));
        }
        Ok(in_asked_order(customer_ids, currency, &balances))
    }

    /// What a charge decides on: the balances of the customers' wallets, locked as by
    /// [`WriteTx::lock_wallets`] and in the order asked, and then the payer's history
    /// ([`ChargeHistory`]), read once the wallets are locked. On SQLite one call; on
    /// PostgreSQL the history is read in a statement after the locks, so that it sees every
    /// charge of the wallet committed while this one waited for the lock.
    pub async fn lock_wallets_and_history(
        &mut self,
        customer_ids: &[&str],
        currency: saoma_core::Currency,
        history: &ChargeHistory<'_>,
    ) -> StoreResult<(Vec<i64>, PaidOut)> {
        if self.backend == Backend::Postgres {
            let balances = self.lock_wallets(customer_ids, currency).await?;
            let h = history.statement();
            let q = sqlx::query_as_with(AssertSqlSafe(h.sql), crate::deferred::arguments(&h.args)?);
            return Ok((balances, q.fetch_one(self.conn()).await?));
        }
        let keys = wallet_keys(customer_ids, currency);
        let balance = "SELECT balance FROM accounts WHERE id = $1";
        let mut statements: Vec<Statement> =
            keys.iter().map(|k| Statement::new(balance, vec![k.into()])).collect();
        statements.push(history.statement());
        let steps = self.flushed_with(statements).await?;
        let mut balances = std::collections::HashMap::new();
        for (key, step) in keys.iter().zip(&steps) {
            let found = step.rows.first().map(|row| sqlx::Row::try_get::<i64, _>(row, 0)).transpose()?;
            balances.insert(key.clone(), found.unwrap_or(0));
        }
        let row =
            steps[keys.len()].rows.first().ok_or_else(|| StoreError::Corrupt("no charge history".into()))?;
        let paid_out = (sqlx::Row::try_get(row, 0)?, sqlx::Row::try_get(row, 1)?);
        Ok((in_asked_order(customer_ids, currency, &balances), paid_out))
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
        ?;
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
        ?;
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
        ?;
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
        .fetch_optional(self.flushed().await?)
        .await?;
        Ok(row.map(|r| r.0))
    }

    /// Remembers which payment a wallet request made, held back until the commit
    /// (`crate::deferred`). Its key, `(customer_id, client_ref)`, waits on nobody: on
    /// PostgreSQL every request of the customer holds the customer's row
    /// ([`WriteTx::customer`], asserted here) from before its own insert to its commit;
    /// SQLite has one writer. A request that lost the race fails at its commit with
    /// [`crate::StoreError::UniqueViolation`], whole, as it did at the insert before.
    pub fn insert_wallet_request(&mut self, customer_id: &str, client_ref: &str, payment_id: &str) {
        assert!(
            self.backend == Backend::Sqlite || self.locked_customers.iter().any(|c| c == customer_id),
            "a wallet request held back without its customer's row locked could wait at the commit"
        );
        self.defer(
            "INSERT INTO wallet_requests (customer_id, client_ref, payment_id) VALUES ($1, $2, $3)",
            vec![customer_id.into(), client_ref.into(), payment_id.into()],
        );
    }
}
