//! Webhook endpoints, deliveries and attempts. Deliveries are queued in the business
//! transaction that writes the event, and claimed by a node with a lease: on PostgreSQL
//! `FOR UPDATE SKIP LOCKED`, so two nodes never claim the same delivery.

use crate::{AttemptOutcome, AttemptRow, Backend, DeliveryRow, Store, StoreResult};
use crate::{WebhookEndpointRow, WriteTx};
use sqlx::AssertSqlSafe;

impl WriteTx {
    /// The merchant's current (sealed) webhook secret, locked until commit on PostgreSQL.
    pub async fn webhook_secret(&mut self, merchant_id: &str) -> StoreResult<Option<String>> {
        let sql = format!("SELECT secret FROM webhook_endpoints WHERE merchant_id = $1{}", self.lock());
        let row: Option<(String,)> =
            sqlx::query_as(AssertSqlSafe(sql)).bind(merchant_id).fetch_optional(self.conn()).await?;
        Ok(row.map(|(s,)| s))
    }

    /// Sets a merchant's endpoint. A new secret keeps the old one (`previous_secret`, sealed
    /// again for its own column by the caller) valid until `previous_until`: receivers
    /// verify either during the overlap.
    pub async fn set_webhook_endpoint(
        &mut self,
        merchant_id: &str,
        url: &str,
        secret: &str,
        previous_secret: Option<&str>,
        previous_until: &str,
        now: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO webhook_endpoints (merchant_id, url, secret, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (merchant_id) DO UPDATE SET url = excluded.url, secret = excluded.secret, \
             previous_secret = $6, previous_until = $5, updated_at = excluded.updated_at",
        )
        .bind(merchant_id)
        .bind(url)
        .bind(secret)
        .bind(now)
        .bind(previous_until)
        .bind(previous_secret)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Queues an event for the merchant's endpoint, if it has one (one statement either way).
    pub async fn queue_delivery(
        &mut self,
        event_id: &str,
        merchant_id: &str,
        kind: &str,
        body: &str,
        now: &str,
    ) -> StoreResult<()> {
        // Held back until the commit (`crate::deferred`): a new row nothing reads back here.
        self.defer(
            "INSERT INTO webhook_deliveries (id, merchant_id, kind, body, status, attempts, next_attempt_at, created_at) \
             SELECT $1, merchant_id, $2, $3, 'pending', 0, $4, $4 FROM webhook_endpoints WHERE merchant_id = $5",
            vec![event_id.into(), kind.into(), body.into(), now.into(), merchant_id.into()],
        );
        Ok(())
    }

    /// Puts a delivery of this merchant back in the queue for a new round of attempts.
    pub async fn resend_delivery(&mut self, id: &str, merchant_id: &str, now: &str) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1 \
             WHERE id = $2 AND merchant_id = $3",
        )
        .bind(now)
        .bind(id)
        .bind(merchant_id)
        .execute(self.flushed().await?)
        .await?;
        Ok(r.rows_affected() == 1)
    }
}

impl Store {
    /// A merchant's webhook endpoint.
    pub async fn webhook_endpoint(&self, merchant_id: &str) -> StoreResult<Option<WebhookEndpointRow>> {
        Ok(sqlx::query_as("SELECT * FROM webhook_endpoints WHERE merchant_id = $1")
            .bind(merchant_id)
            .fetch_optional(&self.read)
            .await?)
    }

    /// Claims up to `limit` due deliveries for this node until `lease_until`: nobody else
    /// takes them before then, and if this node dies they fall due again.
    pub async fn claim_deliveries(
        &self,
        now: &str,
        lease_until: &str,
        limit: i64,
    ) -> StoreResult<Vec<DeliveryRow>> {
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE webhook_deliveries SET next_attempt_at = $1 WHERE id IN (SELECT id FROM webhook_deliveries \
             WHERE status = 'pending' AND next_attempt_at <= $2 ORDER BY next_attempt_at LIMIT $3{lock}) RETURNING *"
        );
        let mut tx = self.write.begin().await?;
        let rows = sqlx::query_as(AssertSqlSafe(sql))
            .bind(lease_until)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Records an attempt and where the delivery stands after it.
    pub async fn finish_attempt(&self, id: &str, o: &AttemptOutcome<'_>) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO webhook_attempts (delivery_id, node, attempted_at, status_code, error, duration_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(o.node)
        .bind(o.attempted_at)
        .bind(o.status_code)
        .bind(&o.error)
        .bind(o.duration_ms)
        .execute(&mut *tx)
        .await?;
        let delivered_at = (o.status == "delivered").then_some(o.attempted_at);
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1, next_attempt_at = $2, \
             last_status_code = $3, last_error = $4, delivered_at = $5 WHERE id = $6",
        )
        .bind(o.status)
        .bind(o.next_attempt_at)
        .bind(o.status_code)
        .bind(&o.error)
        .bind(delivered_at)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        Ok(tx.commit().await?)
    }

    /// A merchant's deliveries, newest first, optionally of one status.
    pub async fn deliveries(
        &self,
        merchant_id: &str,
        status: Option<&str>,
        before: Option<(&str, &str)>,
        limit: i64,
    ) -> StoreResult<Vec<DeliveryRow>> {
        let (before_at, before_id) = before.unzip();
        Ok(sqlx::query_as(
            "SELECT * FROM webhook_deliveries WHERE merchant_id = $1 AND ($2 IS NULL OR status = $2) \
             AND ($3 IS NULL OR created_at < $3 OR (created_at = $3 AND id < $4)) \
             ORDER BY created_at DESC, id DESC LIMIT $5",
        )
        .bind(merchant_id)
        .bind(status)
        .bind(before_at)
        .bind(before_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// One delivery of a merchant.
    pub async fn delivery(&self, merchant_id: &str, id: &str) -> StoreResult<Option<DeliveryRow>> {
        Ok(sqlx::query_as("SELECT * FROM webhook_deliveries WHERE id = $1 AND merchant_id = $2")
            .bind(id)
            .bind(merchant_id)
            .fetch_optional(&self.read)
            .await?)
    }

    /// A delivery's attempts, oldest first.
    pub async fn attempts(&self, delivery_id: &str, newest: i64) -> StoreResult<Vec<AttemptRow>> {
        let mut rows: Vec<AttemptRow> = sqlx::query_as(
            "SELECT * FROM webhook_attempts WHERE delivery_id = $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(delivery_id)
        .bind(newest)
        .fetch_all(&self.read)
        .await?;
        rows.reverse();
        Ok(rows)
    }
}
