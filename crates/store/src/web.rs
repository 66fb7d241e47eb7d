//! Browser sessions of the till, the back office and the operator's console.

use crate::tx::WriteTx;
use crate::{Store, StoreResult};
use sqlx::FromRow;

/// A browser session: `realm` is `merchant` (subject: an API key id) or `operator`
/// (subject: an operator id, `admin` for the start-up token).
#[derive(Debug, Clone, FromRow)]
pub struct WebSessionRow {
    pub token_hash: String,
    pub realm: String,
    pub subject_id: String,
    /// A manager's key a till holds for one refund, until `manager_until`.
    pub manager_key_id: Option<String>,
    pub manager_until: Option<String>,
    pub created_at: String,
    pub expires_at: String,
}

impl Store {
    /// An operator by id.
    pub async fn operator(&self, id: &str) -> StoreResult<Option<crate::OperatorRow>> {
        Ok(sqlx::query_as("SELECT * FROM operators WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?)
    }

    /// A browser session by the hash of its token.
    pub async fn web_session(&self, token_hash: &str) -> StoreResult<Option<WebSessionRow>> {
        Ok(sqlx::query_as("SELECT * FROM web_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.read)
            .await?)
    }
}

impl WriteTx {
    /// Stores a browser session.
    pub async fn insert_web_session(&mut self, s: &WebSessionRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO web_sessions (token_hash, realm, subject_id, manager_key_id, manager_until, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&s.token_hash)
        .bind(&s.realm)
        .bind(&s.subject_id)
        .bind(&s.manager_key_id)
        .bind(&s.manager_until)
        .bind(&s.created_at)
        .bind(&s.expires_at)
        .execute(self.conn())
        .await
        ?;
        Ok(())
    }

    /// Forgets browser sessions that expired before `now`.
    pub async fn delete_expired_web_sessions(&mut self, now: &str) -> StoreResult<u64> {
        let r = sqlx::query("DELETE FROM web_sessions WHERE expires_at < $1")
            .bind(now)
            .execute(self.conn())
            .await?;
        Ok(r.rows_affected())
    }

    /// Ends a browser session.
    pub async fn delete_web_session(&mut self, token_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM web_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Lets a till's session act with a manager's key until `until` (or no longer: `None`).
    pub async fn set_web_manager(
        &mut self,
        token_hash: &str,
        key_id: Option<&str>,
        until: Option<&str>,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE web_sessions SET manager_key_id = $1, manager_until = $2 WHERE token_hash = $3")
            .bind(key_id)
            .bind(until)
            .bind(token_hash)
            .execute(self.conn())
            .await?;
        Ok(())
    }
}
