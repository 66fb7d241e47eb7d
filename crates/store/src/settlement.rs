//! Reads and writes behind statements, settlement and reconciliation. Times are RFC 3339
//! UTC text, so `[from, to)` windows compare as strings.

use crate::{CurrencySum, SettlementRow, StatementRow, Store, StoreResult, WriteTx};

/// The one definition of a merchant's payable movement: postings on its payable account
/// (all shards) from entries made in `[from, to)`, per currency, credits positive, with
/// settlement entries left out.
async fn payable_movement_on<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    executor: E,
    merchant_id: &str,
    from: &str,
    to: &str,
) -> StoreResult<Vec<CurrencySum>> {
    Ok(sqlx::query_as(
        "SELECT p.currency, CAST(COALESCE(SUM(CASE WHEN p.direction = 'credit' THEN p.amount ELSE -p.amount END), 0) \
           AS BIGINT) AS total \
         FROM postings p JOIN journal_entries j ON j.id = p.entry_id JOIN accounts a ON a.id = p.account_id \
         WHERE a.kind = 'merchant_payable' AND a.owner_id = $1 AND j.kind <> 'settlement' \
           AND j.created_at >= $2 AND j.created_at < $3 \
         GROUP BY p.currency ORDER BY p.currency",
    )
    .bind(merchant_id)
    .bind(from)
    .bind(to)
    .fetch_all(executor)
    .await?)
}

impl Store {
    /// A merchant's payments paid and refunds made in `[from, to)`, in time order. Refund
    /// amounts and returned fees are negative.
    pub async fn statement_rows(
        &self,
        merchant_id: &str,
        from: &str,
        to: &str,
    ) -> StoreResult<Vec<StatementRow>> {
        Ok(sqlx::query_as(
            "SELECT * FROM ( \
             SELECT 'payment' AS kind, id, out_trade_no AS reference, id AS payment_id, paid_at AS at, currency, \
               amount, fee FROM payments WHERE merchant_id = $1 AND paid_at >= $2 AND paid_at < $3 \
             UNION ALL SELECT 'refund', id, out_refund_no, payment_id, created_at, currency, -amount, -fee_returned \
               FROM refunds WHERE merchant_id = $1 AND created_at >= $2 AND created_at < $3 \
             ) s ORDER BY at, id",
        )
        .bind(merchant_id)
        .bind(from)
        .bind(to)
        .fetch_all(&self.read)
        .await?)
    }

    /// The ledger's movement of a merchant's payable account (all shards) from entries made
    /// in `[from, to)`, per currency, credits positive; settlement entries are left out.
    pub async fn payable_movement(
        &self,
        merchant_id: &str,
        from: &str,
        to: &str,
    ) -> StoreResult<Vec<CurrencySum>> {
        payable_movement_on(&self.read, merchant_id, from, to).await
    }

    /// What the ledger says a journal entry did to each kind of account, for checking an
    /// entry against the payment or refund it belongs to: (kind, signed credit total).
    pub async fn entries_for(&self, ref_id: &str) -> StoreResult<Vec<(String, String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT j.kind, a.kind, CAST(SUM(CASE WHEN p.direction = 'credit' THEN p.amount ELSE -p.amount END) \
               AS BIGINT) FROM journal_entries j JOIN postings p ON p.entry_id = j.id \
             JOIN accounts a ON a.id = p.account_id WHERE j.ref_id = $1 GROUP BY j.kind, a.kind ORDER BY j.kind, a.kind",
        )
        .bind(ref_id)
        .fetch_all(&self.read)
        .await?)
    }

    /// Payment and refund journal entries made in `[from, to)` whose payment or refund is
    /// missing: money that moved without its record.
    pub async fn orphan_entries(&self, from: &str, to: &str) -> StoreResult<Vec<(String, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT j.id, j.kind, j.ref_id FROM journal_entries j WHERE j.created_at >= $1 AND j.created_at < $2 \
             AND ((j.kind = 'payment' AND NOT EXISTS (SELECT 1 FROM payments x WHERE x.id = j.ref_id AND x.paid_at IS NOT NULL)) \
               OR (j.kind = 'refund' AND NOT EXISTS (SELECT 1 FROM refunds x WHERE x.id = j.ref_id))) ORDER BY j.id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.read)
        .await?)
    }

    /// A merchant's settlements of one business day.
    /// A page of one business date's settlements of every merchant, with the merchant's
    /// name, in settlement id order after `after`.
    pub async fn settlements_on(
        &self,
        date: &str,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<(SettlementRow, String)>> {
        let rows: Vec<SettledRow> = sqlx::query_as(
            "SELECT s.*, m.name AS merchant_name FROM settlements s JOIN merchants m ON m.id = s.merchant_id \
             WHERE s.business_date = $1 AND s.id > $2 ORDER BY s.id LIMIT $3",
        )
        .bind(date)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|r| (r.settlement, r.merchant_name)).collect())
    }

    pub async fn settlements_of(&self, merchant_id: &str, date: &str) -> StoreResult<Vec<SettlementRow>> {
        Ok(sqlx::query_as(
            "SELECT * FROM settlements WHERE merchant_id = $1 AND business_date = $2 ORDER BY currency",
        )
        .bind(merchant_id)
        .bind(date)
        .fetch_all(&self.read)
        .await?)
    }
}

impl WriteTx {
    /// The merchant's payable movement from every non-settlement entry made before `cutoff`.
    pub async fn payable_before(
        &mut self,
        merchant_id: &str,
        currency: &str,
        cutoff: &str,
    ) -> StoreResult<i64> {
        // "" sorts before every timestamp: everything before the cutoff.
        let sums = payable_movement_on(self.flushed().await?, merchant_id, "", cutoff).await?;
        Ok(sums.into_iter().find(|s| s.currency == currency).map_or(0, |s| s.total))
    }

    /// Everything paid out to a merchant in a currency so far.
    pub async fn settled_total(&mut self, merchant_id: &str, currency: &str) -> StoreResult<i64> {
        let v: (i64,) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM settlements WHERE merchant_id = $1 AND currency = $2",
        )
        .bind(merchant_id)
        .bind(currency)
        .fetch_one(self.conn())
        .await?;
        Ok(v.0)
    }

    /// The latest business day settled for a merchant, if any.
    pub async fn last_settled_date(&mut self, merchant_id: &str) -> StoreResult<Option<String>> {
        let v: (Option<String>,) =
            sqlx::query_as("SELECT MAX(business_date) FROM settlements WHERE merchant_id = $1")
                .bind(merchant_id)
                .fetch_one(self.conn())
                .await?;
        Ok(v.0)
    }

    /// Records a settlement (unique per merchant, day and currency).
    pub async fn insert_settlement(&mut self, s: &SettlementRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO settlements (id, merchant_id, business_date, currency, amount, carried, entry_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&s.id)
        .bind(&s.merchant_id)
        .bind(&s.business_date)
        .bind(&s.currency)
        .bind(s.amount)
        .bind(s.carried)
        .bind(&s.entry_id)
        .bind(&s.created_at)
        .execute(self.conn())
        .await
        ?;
        Ok(())
    }
}

/// A settlement with the name of its merchant.
#[derive(sqlx::FromRow)]
struct SettledRow {
    #[sqlx(flatten)]
    settlement: SettlementRow,
    merchant_name: String,
}
