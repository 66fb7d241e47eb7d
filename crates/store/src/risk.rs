//! Reads and writes of the risk controls: the counts velocity rules look at, what a
//! customer paid out in a window, tiers, freezes and the declines kept for explanation.
//! Times are RFC 3339 UTC text, so windows compare as strings.

use crate::deferred::{Arg, Statement};
use crate::{RiskDecisionRow, Store, StoreResult, WriteTx};

impl Store {
    /// Payment attempts a terminal made since `since`.
    pub async fn terminal_attempts(&self, terminal_id: &str, since: &str) -> StoreResult<i64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM payments WHERE terminal_id = $1 AND created_at >= $2",
        )
        .bind(terminal_id)
        .bind(since)
        .fetch_one(&self.read)
        .await?;
        Ok(n)
    }

    /// Risk declines, newest first (by time, then id), of one subject (customer or terminal)
    /// or one payment, after `before` (the time and id of the last one already seen).
    pub async fn risk_decisions(
        &self,
        subject_id: Option<&str>,
        payment_id: Option<&str>,
        before: Option<(&str, &str)>,
        limit: i64,
    ) -> StoreResult<Vec<RiskDecisionRow>> {
        let (before_at, before_id) = before.unzip();
        Ok(sqlx::query_as(
            "SELECT * FROM risk_decisions WHERE ($1 IS NULL OR subject_id = $1) \
               AND ($2 IS NULL OR payment_id = $2) \
               AND ($3 IS NULL OR created_at < $3 OR (created_at = $3 AND id < $4)) \
               ORDER BY created_at DESC, id DESC LIMIT $5",
        )
        .bind(subject_id)
        .bind(payment_id)
        .bind(before_at)
        .bind(before_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }
}

/// What a charge's decision counts of its payer's past
/// ([`WriteTx::lock_wallets_and_history`]): what `customer_id` paid out in `currency` since
/// `since` (payments paid, refunded ones included: a limit counts what left the wallet;
/// and transfers sent), except `except_id` (the payment or transfer being decided, which
/// the caller adds itself), and, when `attempts_since` is given, how many payment attempts
/// they made since then. Times are RFC 3339 UTC text.
pub struct ChargeHistory<'a> {
    pub customer_id: &'a str,
    pub currency: &'a str,
    pub since: &'a str,
    /// Bounds the index scan: no payment made before it can be paid since `since`.
    pub created_since: &'a str,
    pub except_id: &'a str,
    pub attempts_since: Option<&'a str>,
}

/// What [`ChargeHistory`] reads: the amount paid out, and the attempts when asked for.
pub type PaidOut = (i64, Option<i64>);

impl ChargeHistory<'_> {
    /// The one statement that reads it.
    pub(crate) fn statement(&self) -> Statement {
        let attempts = match self.attempts_since {
            Some(_) => {
                "CAST((SELECT COUNT(*) FROM payments WHERE customer_id = $1 AND created_at >= $6) AS BIGINT)"
            }
            None => "CAST(NULL AS BIGINT)",
        };
        let sql = format!(
            "SELECT CAST(COALESCE((SELECT SUM(amount) FROM payments WHERE customer_id = $1 AND currency = $2 \
                 AND created_at >= $5 AND paid_at >= $3 AND status IN ('succeeded', 'refunded') AND id <> $4), 0) \
               + COALESCE((SELECT SUM(amount) FROM transfers WHERE from_customer_id = $1 AND currency = $2 \
                 AND created_at >= $3 AND id <> $4), 0) AS BIGINT), {attempts}"
        );
        let mut args: Vec<Arg> = vec![
            self.customer_id.into(),
            self.currency.into(),
            self.since.into(),
            self.except_id.into(),
            self.created_since.into(),
        ];
        args.extend(self.attempts_since.map(Arg::from));
        Statement::new(sql, args)
    }
}

impl WriteTx {
    /// Keeps a risk decline.
    pub async fn insert_risk_decision(&mut self, d: &RiskDecisionRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO risk_decisions (id, subject_id, payment_id, code, rule, observed, threshold, \
               rules_version, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&d.id)
        .bind(&d.subject_id)
        .bind(&d.payment_id)
        .bind(&d.code)
        .bind(&d.rule)
        .bind(d.observed)
        .bind(d.threshold)
        .bind(d.rules_version)
        .bind(&d.created_at)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Freezes (`true`) or unfreezes a customer's wallet.
    pub async fn set_customer_frozen(&mut self, id: &str, frozen: bool) -> StoreResult<()> {
        sqlx::query("UPDATE customers SET frozen = $1 WHERE id = $2")
            .bind(i64::from(frozen))
            .bind(id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Moves a customer to another risk tier.
    pub async fn set_customer_tier(&mut self, id: &str, tier: &str) -> StoreResult<()> {
        sqlx::query("UPDATE customers SET tier = $1 WHERE id = $2")
            .bind(tier)
            .bind(id)
            .execute(self.conn())
            .await?;
        Ok(())
    }
}
