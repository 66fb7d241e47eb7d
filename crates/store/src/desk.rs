//! Lists the screens need beyond the payment API's: the review queue, customer search,
//! the newest audit records, a merchant's terminals and settlements, the payments waiting
//! for a customer's PIN, and a merchant's paid payments of a period for its charts.

use crate::rows::PaymentRow;
use crate::tx::PAYMENT_COLUMNS;
use crate::{AuditRow, CustomerRow, MerchantRow, SettlementRow, Store, StoreResult, TerminalRow};
use saoma_core::payment::Payment;
use sqlx::AssertSqlSafe;

impl Store {
    /// Merchants, newest first, optionally of one status, before a cursor (a merchant id).
    pub async fn merchants_page(
        &self,
        status: Option<&str>,
        before_id: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<MerchantRow>> {
        Ok(sqlx::query_as(
            "SELECT * FROM merchants WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(status)
        .bind(before_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// Customers, newest first, whose phone starts with `phone` or whose name contains
    /// `name`, before a cursor (a customer id).
    pub async fn customers_page(
        &self,
        query: Option<&str>,
        before_id: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<CustomerRow>> {
        let like = query.map(|q| format!("%{}%", q.to_lowercase().replace(['%', '_'], "")));
        Ok(sqlx::query_as(
            "SELECT * FROM customers WHERE ($1 IS NULL OR phone LIKE $1 OR LOWER(name) LIKE $1 OR id = $2) \
             AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4",
        )
        .bind(like)
        .bind(query)
        .bind(before_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// The newest audit records, before a cursor (a record's `seq`).
    pub async fn audit_page(&self, before_seq: Option<i64>, limit: i64) -> StoreResult<Vec<AuditRow>> {
        Ok(sqlx::query_as(
            "SELECT seq, actor, action, object_id, detail, created_at, chain, chain_seq, prev_hash, hash \
             FROM audit_log WHERE ($1 IS NULL OR seq < $1) ORDER BY seq DESC LIMIT $2",
        )
        .bind(before_seq)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// A merchant's terminals, oldest first.
    pub async fn terminals_of(&self, merchant_id: &str) -> StoreResult<Vec<TerminalRow>> {
        Ok(sqlx::query_as("SELECT * FROM terminals WHERE merchant_id = $1 ORDER BY created_at, id")
            .bind(merchant_id)
            .fetch_all(&self.read)
            .await?)
    }

    /// A merchant's settlements, newest business day first.
    pub async fn settlements_recent(&self, merchant_id: &str, limit: i64) -> StoreResult<Vec<SettlementRow>> {
        Ok(sqlx::query_as(
            "SELECT * FROM settlements WHERE merchant_id = $1 ORDER BY business_date DESC, currency LIMIT $2",
        )
        .bind(merchant_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// The payments a customer must still confirm with the PIN (a till is waiting).
    pub async fn awaiting_confirmation(&self, customer_id: &str, now: &str) -> StoreResult<Vec<Payment>> {
        let sql = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE customer_id = $1 AND status = 'pending' \
             AND needs_confirm = 1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at DESC LIMIT 10"
        );
        let rows: Vec<PaymentRow> =
            sqlx::query_as(AssertSqlSafe(sql)).bind(customer_id).bind(now).fetch_all(&self.read).await?;
        rows.into_iter().map(PaymentRow::into_payment).collect()
    }

    /// A merchant's payments paid in `[from, to)` (RFC 3339 UTC), oldest first, at most
    /// `limit`.
    pub async fn paid_between(
        &self,
        merchant_id: &str,
        from: &str,
        to: &str,
        limit: i64,
    ) -> StoreResult<Vec<Payment>> {
        let sql = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE merchant_id = $1 AND paid_at >= $2 AND paid_at < $3 \
             ORDER BY paid_at LIMIT $4"
        );
        let rows: Vec<PaymentRow> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(merchant_id)
            .bind(from)
            .bind(to)
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        rows.into_iter().map(PaymentRow::into_payment).collect()
    }
}
