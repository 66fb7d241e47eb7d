//! Who may call: operators and their roles, the life of API keys (listing, revoking, the
//! grace period of a rotation), and ending wallet sessions.

use crate::{ApiKeyRow, OperatorRow, Store, StoreResult, WriteTx};

impl Store {
    /// The operator holding a token (by the token's hash), revoked or not.
    pub async fn operator_by_token(&self, token_hash: &str) -> StoreResult<Option<OperatorRow>> {
        Ok(sqlx::query_as("SELECT * FROM operators WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.read)
            .await?)
    }

    /// Operators, oldest first (by time, then id), after `after` (the time and id of the
    /// last one already seen).
    pub async fn operators(&self, after: Option<(&str, &str)>, limit: i64) -> StoreResult<Vec<OperatorRow>> {
        let (after_at, after_id) = after.unzip();
        Ok(sqlx::query_as(
            "SELECT * FROM operators WHERE $1 IS NULL OR created_at > $1 OR (created_at = $1 AND id > $2) \
             ORDER BY created_at, id LIMIT $3",
        )
        .bind(after_at)
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// A merchant's keys, oldest first (by time, then id), after `after` (the time and id
    /// of the last one already seen).
    pub async fn api_keys_of(
        &self,
        merchant_id: &str,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> StoreResult<Vec<ApiKeyRow>> {
        let (after_at, after_id) = after.unzip();
        Ok(sqlx::query_as(
            "SELECT * FROM api_keys WHERE merchant_id = $1 \
             AND ($2 IS NULL OR created_at > $2 OR (created_at = $2 AND id > $3)) ORDER BY created_at, id LIMIT $4",
        )
        .bind(merchant_id)
        .bind(after_at)
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }
}

impl WriteTx {
    /// Adds an operator.
    pub async fn insert_operator(&mut self, o: &OperatorRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO operators (id, name, role, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&o.id)
        .bind(&o.name)
        .bind(&o.role)
        .bind(&o.token_hash)
        .bind(&o.created_at)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Revokes an operator's token; false when there is no such operator.
    pub async fn revoke_operator(&mut self, id: &str, now: &str) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE operators SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// True when the session is still there, locked against a concurrent sign-out
    /// everywhere until this transaction ends (which then revokes what it adds).
    pub async fn session_live(&mut self, token_hash: &str) -> StoreResult<bool> {
        let lock = match self.lock() {
            "" => "",
            _ => " FOR SHARE",
        };
        let sql = format!("SELECT token_hash FROM sessions WHERE token_hash = $1{lock}");
        let row: Option<(String,)> =
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(token_hash).fetch_optional(self.conn()).await?;
        Ok(row.is_some())
    }

    /// Ends one wallet session (the token stops working at once).
    pub async fn delete_session(&mut self, token_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Ends every session of a customer; answers how many there were.
    pub async fn delete_sessions_of(&mut self, customer_id: &str) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE customer_id = $1")
            .bind(customer_id)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected())
    }

    /// A key, locked.
    pub async fn api_key(&mut self, id: &str) -> StoreResult<Option<ApiKeyRow>> {
        let sql = format!("SELECT * FROM api_keys WHERE id = $1{}", self.lock());
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(self.conn()).await?)
    }

    /// Revokes a key at once (a revoked key stays revoked at its first time).
    pub async fn revoke_api_key(&mut self, id: &str, now: &str) -> StoreResult<()> {
        sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Lets a key work until `at` at the latest (the old key of a rotation); a key that
    /// already ends sooner keeps its end, so no rotation extends a key's life. Answers the
    /// key's end as it now stands.
    pub async fn expire_api_key(&mut self, id: &str, at: &str) -> StoreResult<String> {
        sqlx::query(
            "UPDATE api_keys SET expires_at = CASE WHEN expires_at IS NOT NULL AND expires_at < $1 \
             THEN expires_at ELSE $1 END WHERE id = $2",
        )
        .bind(at)
        .bind(id)
        .execute(self.conn())
        .await?;
        let end: (Option<String>,) = sqlx::query_as("SELECT expires_at FROM api_keys WHERE id = $1")
            .bind(id)
            .fetch_one(self.conn())
            .await?;
        Ok(end.0.unwrap_or_else(|| at.to_string()))
    }

    /// A merchant's status, read under a shared lock (PostgreSQL): a suspension waits for
    /// this transaction to end, and this transaction for a suspension in flight, so what it
    /// decides on the status holds until it commits.
    pub async fn merchant_status(&mut self, id: &str) -> StoreResult<Option<String>> {
        let sql = format!("SELECT status FROM merchants WHERE id = $1{}", self.share_lock());
        let row: Option<(String,)> =
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(self.conn()).await?;
        Ok(row.map(|r| r.0))
    }
}
