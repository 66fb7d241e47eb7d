//! The books of a write transaction: journal entries and their postings, outbox events, the audit chain, receipts and request nonces.

use super::{WriteTx, values_list};
use crate::{AuditRecord, Backend, NewEvent, ReceiptKeyRow, ReceiptRow, StoreError, StoreResult};
use saoma_core::ledger::JournalEntry;
use sqlx::AssertSqlSafe;

impl WriteTx {
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
        let shard = self.shard();
        let postings: Vec<_> = entry.postings().iter().map(|p| (shard.row_id(&p.account), p)).collect();
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
        let chain = self.shard().chain();
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
