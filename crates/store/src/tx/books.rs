//! The books of a write transaction: outbox events, the audit chain, receipts and request nonces
//! (journal entries and their postings: `posting.rs`).

use super::WriteTx;
use crate::{AuditRecord, Backend, NewEvent, ReceiptKeyRow, ReceiptRow, StoreResult};
use sqlx::AssertSqlSafe;

impl WriteTx {
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
        let chain = self.shard().chain();
        let (seq_no, prev) = match self.head.take() {
            // Locked by this transaction's posting, and appended to by nobody since.
            Some(head) if head.chain == chain && !self.audited => (head.seq_no, head.hash),
            _ => self.lock_head(chain).await?,
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

    /// Locks the head of audit chain `chain`, making it first if the chain has none:
    /// (last sequence number, last hash).
    async fn lock_head(&mut self, chain: i64) -> StoreResult<(i64, String)> {
        let sql = format!("SELECT seq_no, hash FROM audit_heads WHERE chain = $1{}", self.lock());
        // A second record in one transaction reads the head the first one left.
        let conn = if self.audited { self.flushed().await? } else { &mut *self.tx };
        let head: Option<(i64, String)> =
            sqlx::query_as(AssertSqlSafe(sql.clone())).bind(chain).fetch_optional(&mut *conn).await?;
        match head {
            Some(head) => Ok(head),
            // The chain's first record: its head is made (once per chain, ever), then locked.
            None => {
                sqlx::query(AssertSqlSafe(format!(
                    "INSERT INTO audit_heads (chain, seq_no, hash) VALUES ($1, 0, '{}') ON CONFLICT (chain) DO NOTHING",
                    saoma_core::audit::GENESIS
                )))
                .bind(chain)
                .execute(&mut *conn)
                .await?;
                Ok(sqlx::query_as(AssertSqlSafe(sql)).bind(chain).fetch_one(&mut *conn).await?)
            }
        }
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
        .await?;
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
