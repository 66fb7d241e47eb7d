//! Reads outside any business transaction, from the read pool.

use crate::rows::{PaymentRow, payment_of};
use crate::tx::{PAYMENT_COLUMNS, WriteTx};
use crate::{
    ApiKeyRow, AuditCheckpointRow, AuditRow, BalanceRow, CustomerRow, DeviceRow, EventRow, HistoryRow,
    MerchantRow, ReceiptKeyRow, ReceiptRow,
};
use crate::{Backend, EventCursor, RefundRow, Store, StoreResult, TerminalRow, TrialBalanceRow};
use saoma_core::payment::Payment;
use sqlx::AssertSqlSafe;

impl Store {
    /// A merchant by id.
    pub async fn merchant(&self, id: &str) -> StoreResult<Option<MerchantRow>> {
        Ok(sqlx::query_as("SELECT * FROM merchants WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?)
    }

    /// The audit chains' heads: (chain, last sequence number, last hash).
    pub async fn audit_heads(&self) -> StoreResult<Vec<(i64, i64, String)>> {
        Ok(sqlx::query_as("SELECT chain, seq_no, hash FROM audit_heads ORDER BY chain")
            .fetch_all(&self.read)
            .await?)
    }

    /// The newest signed audit checkpoint, if any.
    pub async fn latest_audit_checkpoint(&self) -> StoreResult<Option<AuditCheckpointRow>> {
        Ok(sqlx::query_as(
            "SELECT seq, created_at, kid, jws FROM audit_checkpoints ORDER BY seq DESC LIMIT 1",
        )
        .fetch_optional(&self.read)
        .await?)
    }

    /// Up to `limit` records of one audit chain after `after_seq`, in order.
    pub async fn audit_chain(&self, chain: i64, after_seq: i64, limit: i64) -> StoreResult<Vec<AuditRow>> {
        Ok(sqlx::query_as(
            "SELECT seq, actor, action, object_id, detail, created_at, chain, chain_seq, prev_hash, hash \
             FROM audit_log WHERE chain = $1 AND chain_seq > $2 ORDER BY chain_seq LIMIT $3",
        )
        .bind(chain)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// Chains that have records but no head, and the count of records outside any chain.
    pub async fn audit_strays(&self) -> StoreResult<(Vec<i64>, i64)> {
        let orphans: Vec<(i64,)> = sqlx::query_as(
            "SELECT DISTINCT chain FROM audit_log WHERE chain IS NOT NULL \
             AND chain NOT IN (SELECT chain FROM audit_heads) ORDER BY chain",
        )
        .fetch_all(&self.read)
        .await?;
        let unsealed: (i64,) = sqlx::query_as(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM audit_log WHERE chain IS NULL OR hash IS NULL",
        )
        .fetch_one(&self.read)
        .await?;
        Ok((orphans.into_iter().map(|c| c.0).collect(), unsealed.0))
    }

    /// Every merchant, oldest first.
    pub async fn merchants(&self) -> StoreResult<Vec<MerchantRow>> {
        Ok(sqlx::query_as("SELECT * FROM merchants ORDER BY created_at, id").fetch_all(&self.read).await?)
    }

    /// A terminal by id.
    pub async fn terminal(&self, id: &str) -> StoreResult<Option<TerminalRow>> {
        Ok(sqlx::query_as("SELECT * FROM terminals WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?)
    }

    /// An API key by id.
    pub async fn api_key(&self, id: &str) -> StoreResult<Option<ApiKeyRow>> {
        Ok(sqlx::query_as("SELECT * FROM api_keys WHERE id = $1").bind(id).fetch_optional(&self.read).await?)
    }

    /// An API key by id with its merchant as it stands now, in one query (a signed
    /// request's key and the merchant its handler needs: one round trip, not two).
    pub async fn api_key_and_merchant(&self, id: &str) -> StoreResult<Option<(ApiKeyRow, MerchantRow)>> {
        let row = sqlx::query(
            "SELECT k.*, m.id AS m_id, m.name AS m_name, m.mcc AS m_mcc, m.city AS m_city, \
               m.country AS m_country, m.currency AS m_currency, m.fee_bps AS m_fee_bps, \
               m.timezone AS m_timezone, m.status AS m_status, m.created_at AS m_created_at \
             FROM api_keys k JOIN merchants m ON m.id = k.merchant_id WHERE k.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let key = <ApiKeyRow as sqlx::FromRow<'_, sqlx::any::AnyRow>>::from_row(&row)?;
        let get = |c: &str| sqlx::Row::try_get::<String, _>(&row, c);
        let merchant = MerchantRow {
            id: get("m_id")?,
            name: get("m_name")?,
            mcc: get("m_mcc")?,
            city: get("m_city")?,
            country: get("m_country")?,
            currency: get("m_currency")?,
            fee_bps: sqlx::Row::try_get(&row, "m_fee_bps")?,
            timezone: get("m_timezone")?,
            status: get("m_status")?,
            created_at: get("m_created_at")?,
        };
        Ok(Some((key, merchant)))
    }

    /// A customer by id.
    pub async fn customer(&self, id: &str) -> StoreResult<Option<CustomerRow>> {
        Ok(sqlx::query_as("SELECT * FROM customers WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?)
    }

    /// A customer by phone number.
    pub async fn customer_by_phone(&self, phone: &str) -> StoreResult<Option<CustomerRow>> {
        Ok(sqlx::query_as("SELECT * FROM customers WHERE phone = $1")
            .bind(phone)
            .fetch_optional(&self.read)
            .await?)
    }

    /// The customer a receive code belongs to.
    pub async fn customer_by_receive_token(&self, token: &str) -> StoreResult<Option<CustomerRow>> {
        Ok(sqlx::query_as(
            "SELECT c.* FROM customers c JOIN receive_codes r ON r.customer_id = c.id WHERE r.token = $1",
        )
        .bind(token)
        .fetch_optional(&self.read)
        .await?)
    }

    /// A customer's receive token, made with `fresh` the first time.
    pub async fn receive_token(&self, customer_id: &str, fresh: &str, now: &str) -> StoreResult<String> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO receive_codes (token, customer_id, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (customer_id) DO NOTHING",
        )
        .bind(fresh)
        .bind(customer_id)
        .bind(now)
        .execute(tx.conn())
        .await?;
        let v: (String,) = sqlx::query_as("SELECT token FROM receive_codes WHERE customer_id = $1")
            .bind(customer_id)
            .fetch_one(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(v.0)
    }

    /// The customer and expiry of a session, by the hash of its token.
    pub async fn session(&self, token_hash: &str) -> StoreResult<Option<(String, String)>> {
        Ok(sqlx::query_as("SELECT customer_id, expires_at FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.read)
            .await?)
    }

    /// A device by id (also a removed one: the caller looks at `revoked_at`).
    pub async fn device(&self, id: &str) -> StoreResult<Option<DeviceRow>> {
        Ok(sqlx::query_as("SELECT * FROM devices WHERE id = $1").bind(id).fetch_optional(&self.read).await?)
    }

    /// The live (not revoked) device enrolled in a slot.
    pub async fn device_by_slot(&self, slot: i64) -> StoreResult<Option<DeviceRow>> {
        Ok(sqlx::query_as("SELECT * FROM devices WHERE slot = $1 AND revoked_at IS NULL")
            .bind(slot)
            .fetch_optional(&self.read)
            .await?)
    }

    /// The customer and expiry of an online payment code, by the code's hash, and whether
    /// it was used.
    pub async fn online_code(&self, code_hash: &str) -> StoreResult<Option<(String, String, bool)>> {
        // Whether it was used comes with it: one round trip for a scan's look at its code.
        let row: Option<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT o.customer_id, o.expires_at, u.code_hash FROM online_codes o \
             LEFT JOIN used_codes u ON u.code_hash = o.code_hash WHERE o.code_hash = $1",
        )
        .bind(code_hash)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|(customer, expires_at, used)| (customer, expires_at, used.is_some())))
    }

    /// A payment by id.
    pub async fn payment(&self, id: &str) -> StoreResult<Option<Payment>> {
        let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1");
        payment_of(sqlx::query_as(AssertSqlSafe(sql)).bind(id).fetch_optional(&self.read).await?)
    }

    /// A merchant's payment by its order number.
    pub async fn payment_by_trade_no(
        &self,
        merchant_id: &str,
        out_trade_no: &str,
    ) -> StoreResult<Option<Payment>> {
        let sql =
            format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE merchant_id = $1 AND out_trade_no = $2");
        payment_of(
            sqlx::query_as(AssertSqlSafe(sql))
                .bind(merchant_id)
                .bind(out_trade_no)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    /// The payment a dynamic QR reference names.
    pub async fn payment_by_qr_ref(&self, qr_ref: &str) -> StoreResult<Option<Payment>> {
        let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE qr_ref = $1");
        payment_of(sqlx::query_as(AssertSqlSafe(sql)).bind(qr_ref).fetch_optional(&self.read).await?)
    }

    /// Pending payments whose time was up at `now`, the longest overdue first.
    pub async fn overdue_payments(&self, now: &str, limit: i64) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM payments WHERE status = 'pending' AND expires_at IS NOT NULL AND expires_at <= $1 \
             ORDER BY expires_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// A merchant's payments, newest first, before a cursor (a payment id), optionally of one terminal.
    pub async fn payments_of_merchant(
        &self,
        merchant_id: &str,
        terminal_id: Option<&str>,
        before_id: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<Payment>> {
        let sql = payments_of_merchant_sql(terminal_id.is_some(), before_id.is_some());
        let mut query = sqlx::query_as(AssertSqlSafe(sql)).bind(merchant_id).bind(limit);
        for value in [terminal_id, before_id].into_iter().flatten() {
            query = query.bind(value);
        }
        let rows: Vec<PaymentRow> = query.fetch_all(&self.read).await?;
        rows.into_iter().map(PaymentRow::into_payment).collect()
    }

    /// The refunds of a payment, oldest first.
    pub async fn refunds_of_payment(&self, payment_id: &str) -> StoreResult<Vec<RefundRow>> {
        Ok(sqlx::query_as("SELECT * FROM refunds WHERE payment_id = $1 ORDER BY created_at, id")
            .bind(payment_id)
            .fetch_all(&self.read)
            .await?)
    }

    /// A merchant's outbox events after a cursor, oldest first; only one terminal's when
    /// `terminal_id` is set. On PostgreSQL only events whose writing transactions are older
    /// than every transaction still running are returned, so no event can later appear
    /// behind the cursor.
    pub async fn events_after(
        &self,
        merchant_id: &str,
        terminal_id: Option<&str>,
        after: EventCursor,
        limit: i64,
    ) -> StoreResult<Vec<EventRow>> {
        // No event has a negative position: such a cursor (a client's Last-Event-ID) means
        // from the start, as (0, 0) does, which the seek on SQLite needs spelled out.
        let after = if after.tx_id < 0 { EventCursor::default() } else { after };
        let sql = self.events_after_sql(terminal_id.is_some());
        let query = sqlx::query_as(AssertSqlSafe(sql))
            .bind(merchant_id)
            .bind(after.tx_id)
            .bind(after.seq)
            .bind(limit);
        let query = match terminal_id {
            Some(t) => query.bind(t),
            None => query,
        };
        Ok(query.fetch_all(&self.read).await?)
    }

    /// The next events of key `key_id`'s live feed: `merchant_id`'s, or only those of
    /// `terminal_id` for a terminal key. `None` once the key may no longer be used
    /// (revoked, or past the end of a rotation) at `now`. The key is looked at after the
    /// events are read, so nothing is handed to a key that had ended before the read.
    pub async fn feed_events(
        &self,
        key_id: &str,
        (merchant_id, terminal_id): (&str, Option<&str>),
        after: EventCursor,
        limit: i64,
        now: &str,
    ) -> StoreResult<Option<Vec<EventRow>>> {
        let events = self.events_after(merchant_id, terminal_id, after, limit).await?;
        match self.api_key(key_id).await? {
            Some(k) if k.is_live(now) => Ok(Some(events)),
            _ => Ok(None),
        }
    }

    /// The cursor after the newest settled event (the start of a feed "from now").
    pub async fn last_event_cursor(&self) -> StoreResult<EventCursor> {
        let sql = self.last_event_cursor_sql();
        let row: Option<(i64, i64)> = sqlx::query_as(AssertSqlSafe(sql)).fetch_optional(&self.read).await?;
        Ok(row.map_or(EventCursor::default(), |(tx_id, seq)| EventCursor { tx_id, seq }))
    }

    /// The statement of [`Self::last_event_cursor`]: the last entry of `events_position`.
    fn last_event_cursor_sql(&self) -> String {
        format!(
            "SELECT tx_id, seq FROM events WHERE 1 = 1{} ORDER BY tx_id DESC, seq DESC LIMIT 1",
            self.settled_events()
        )
    }

    /// The statement of [`Self::events_after`]: merchant `$1`, cursor `($2, $3)`, limit `$4`,
    /// terminal `$5`. The position is one range of the feed's index, so a feed reads only
    /// what follows its cursor however many events the merchant has.
    fn events_after_sql(&self, terminal: bool) -> String {
        // Two statements, so each has its own index: a till's feed reads its own events
        // only, however busy the merchant's other tills are.
        let scope = if terminal { "terminal_id = $5 AND merchant_id = $1" } else { "merchant_id = $1" };
        let after = match self.backend {
            Backend::Postgres => "(tx_id, seq) > ($2, $3)",
            // Every SQLite event has tx_id 0 (one writer: seq order is commit order), and
            // SQLite seeks on the first column of a row value only.
            Backend::Sqlite => "tx_id = $2 AND seq > $3",
        };
        format!(
            "SELECT * FROM events WHERE {scope} AND {after}{} ORDER BY tx_id, seq LIMIT $4",
            self.settled_events()
        )
    }

    fn settled_events(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => {
                " AND tx_id < CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS TEXT) AS BIGINT)"
            }
            Backend::Sqlite => "",
        }
    }

    /// Total debits and credits per currency over every posting.
    pub async fn trial_balance(&self) -> StoreResult<Vec<TrialBalanceRow>> {
        Ok(sqlx::query_as(
            "SELECT currency, \
             CAST(COALESCE(SUM(CASE WHEN direction = 'debit' THEN amount ELSE 0 END), 0) AS BIGINT) AS debits, \
             CAST(COALESCE(SUM(CASE WHEN direction = 'credit' THEN amount ELSE 0 END), 0) AS BIGINT) AS credits \
             FROM postings GROUP BY currency ORDER BY currency",
        )
        .fetch_all(&self.read)
        .await?)
    }

    /// Every account whose balance disagrees with the sum of its postings (should be none).
    pub async fn accounts_out_of_step(&self) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT a.id FROM accounts a WHERE a.balance <> (SELECT CAST(COALESCE(SUM(CASE \
             WHEN (p.direction = 'credit') = (a.kind NOT IN ('cash_in', 'settlement')) THEN p.amount \
             ELSE -p.amount END), 0) AS BIGINT) FROM postings p WHERE p.account_id = a.id)",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// A customer's wallet balances.
    pub async fn balances(&self, customer_id: &str) -> StoreResult<Vec<BalanceRow>> {
        Ok(sqlx::query_as(
            "SELECT currency, balance FROM accounts WHERE kind = 'customer_wallet' AND owner_id = $1 ORDER BY currency",
        )
        .bind(customer_id)
        .fetch_all(&self.read)
        .await?)
    }

    /// A customer's history: payments, refunds, transfers and top-ups, newest first (by
    /// time, then id), after `before` (the time and id of the last item already seen).
    pub async fn history(
        &self,
        customer_id: &str,
        before: Option<(&str, &str)>,
        limit: i64,
    ) -> StoreResult<Vec<HistoryRow>> {
        let (before_at, before_id) = before.unzip();
        Ok(sqlx::query_as(
            "SELECT * FROM ( \
             SELECT 'payment' AS kind, p.id AS id, -p.amount AS amount, p.currency AS currency, \
               m.name AS description, COALESCE(p.paid_at, p.created_at) AS created_at, \
               (SELECT x.jws FROM receipts x WHERE x.payment_id = p.id AND x.refund_id IS NULL) AS receipt_jws \
               FROM payments p JOIN merchants m ON m.id = p.merchant_id \
               WHERE p.customer_id = $1 AND p.paid_at IS NOT NULL \
             UNION ALL SELECT 'refund', r.id, r.amount, r.currency, m.name, r.created_at, \
               (SELECT x.jws FROM receipts x WHERE x.refund_id = r.id) \
               FROM refunds r JOIN payments p ON p.id = r.payment_id JOIN merchants m ON m.id = p.merchant_id \
               WHERE p.customer_id = $1 \
             UNION ALL SELECT 'transfer_out', t.id, -t.amount, t.currency, c.name, t.created_at, NULL \
               FROM transfers t JOIN customers c ON c.id = t.to_customer_id WHERE t.from_customer_id = $1 \
             UNION ALL SELECT 'transfer_in', t.id, t.amount, t.currency, c.name, t.created_at, NULL \
               FROM transfers t JOIN customers c ON c.id = t.from_customer_id WHERE t.to_customer_id = $1 \
             UNION ALL SELECT 'top_up', u.id, u.amount, u.currency, u.reference, u.created_at, NULL \
               FROM top_ups u WHERE u.customer_id = $1 \
             ) h WHERE $2 IS NULL OR h.created_at < $2 OR (h.created_at = $2 AND h.id < $3) \
             ORDER BY created_at DESC, id DESC LIMIT $4",
        )
        .bind(customer_id)
        .bind(before_at)
        .bind(before_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// Every receipt signing key, newest first (the JWKS).
    pub async fn receipt_keys(&self) -> StoreResult<Vec<ReceiptKeyRow>> {
        Ok(sqlx::query_as("SELECT * FROM receipt_keys ORDER BY generation DESC")
            .fetch_all(&self.read)
            .await?)
    }

    /// The newest receipt of a payment (a refund's receipt supersedes the payment's).
    pub async fn latest_receipt(&self, payment_id: &str) -> StoreResult<Option<ReceiptRow>> {
        Ok(sqlx::query_as(
            "SELECT * FROM receipts WHERE payment_id = $1 ORDER BY created_at DESC, CASE WHEN refund_id IS NULL THEN 0 ELSE 1 END DESC, id DESC LIMIT 1",
        )
        .bind(payment_id)
        .fetch_optional(&self.read)
        .await?)
    }

    /// Forgets nonces older than a time, in a transaction of its own.
    pub async fn forget_nonces_before(&self, unix: i64) -> StoreResult<u64> {
        let mut tx: WriteTx = self.begin().await?;
        let n = tx.forget_nonces_before(unix).await?;
        tx.commit().await?;
        Ok(n)
    }
}

/// The statement of [`Store::payments_of_merchant`]: merchant `$1`, limit `$2`, then the
/// terminal and the cursor when given. Only the conditions that apply are in it, so a
/// merchant's page is one backward range of `payments_merchant_list`, however many
/// payments the merchant has. A till's page walks the same range and skips the other
/// tills' payments, so a quiet till of a busy merchant reads more than its page.
fn payments_of_merchant_sql(terminal: bool, before: bool) -> String {
    let mut conditions = String::new();
    let mut next = 3;
    for (given, column) in [(terminal, "terminal_id ="), (before, "id <")] {
        if given {
            conditions.push_str(&format!(" AND {column} ${next}"));
            next += 1;
        }
    }
    format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE merchant_id = $1 AND fingerprint IS NOT NULL{conditions} \
         ORDER BY id DESC LIMIT $2"
    )
}

#[cfg(test)]
mod tests {
    //! A live feed reads only the events after its cursor, and a page of a merchant's
    //! payments only that page: each statement seeks its index on its whole position on
    //! both databases, in the plan a connection keeps even when it was made while the
    //! tables were empty. Before, a feed read every event of the merchant on each wake-up
    //! and a page every payment of the merchant.
    use super::*;
    use sqlx::{Connection, Row};

    /// The plan of `sql`, whose parameters `$1`, `$2`, ... have these types and values.
    async fn plan(store: &Store, url: &str, sql: String, params: &[(&str, &str)]) -> String {
        let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
        let explain = match store.backend {
            Backend::Postgres => {
                sqlx::raw_sql("SET plan_cache_mode = force_generic_plan").execute(&mut conn).await.unwrap();
                let types = params.iter().map(|p| p.0).collect::<Vec<_>>().join(", ");
                let values = params.iter().map(|p| p.1).collect::<Vec<_>>().join(", ");
                let (types, values) = match params.is_empty() {
                    true => (String::new(), String::new()),
                    false => (format!("({types})"), format!("({values})")),
                };
                let prepare = format!("PREPARE q{types} AS {sql}");
                sqlx::raw_sql(AssertSqlSafe(prepare)).execute(&mut conn).await.unwrap();
                format!("EXPLAIN EXECUTE q{values}")
            }
            Backend::Sqlite => {
                // From the last, so that $1 does not replace the start of $10.
                let sql = params
                    .iter()
                    .enumerate()
                    .rev()
                    .fold(sql, |sql, (i, p)| sql.replace(&format!("${}", i + 1), p.1));
                format!("EXPLAIN QUERY PLAN {sql}")
            }
        };
        let rows = sqlx::query(AssertSqlSafe(explain)).fetch_all(&mut conn).await.unwrap();
        let column = if store.backend == Backend::Postgres { 0 } else { 3 };
        rows.iter().map(|r| r.get::<String, _>(column)).collect::<Vec<_>>().join("\n")
    }

    const FEED: [(&str, &str); 5] =
        [("text", "'m'"), ("bigint", "0"), ("bigint", "3"), ("bigint", "10"), ("text", "'t'")];
    const PAGE: [(&str, &str); 4] = [("text", "'m'"), ("bigint", "20"), ("text", "'t'"), ("text", "'pay_1'")];

    #[tokio::test]
    async fn sqlite_a_feed_and_a_page_seek_their_cursors() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("plans.db").display());
        let store = Store::open(&url).await.unwrap();
        for (terminal, seek) in [
            (false, "(merchant_id=? AND tx_id=? AND seq>?)"),
            (true, "(terminal_id=? AND tx_id=? AND seq>?)"),
        ] {
            let plan =
                plan(&store, &url, store.events_after_sql(terminal), &FEED[..4 + usize::from(terminal)])
                    .await;
            assert!(plan.contains(seek), "the feed must seek {seek}:\n{plan}");
        }
        let first = plan(&store, &url, payments_of_merchant_sql(false, false), &PAGE[..2]).await;
        assert!(
            first.contains("payments_merchant_list (merchant_id=?)") && !first.contains("TEMP B-TREE"),
            "{first}"
        );
        let next =
            plan(&store, &url, payments_of_merchant_sql(false, true), &[PAGE[0], PAGE[1], PAGE[3]]).await;
        assert!(
            next.contains("payments_merchant_list (merchant_id=? AND id<?)"),
            "a page seeks its cursor:\n{next}"
        );
        let newest = plan(&store, &url, store.last_event_cursor_sql(), &[]).await;
        assert!(newest.contains("events_position") && !newest.contains("TEMP B-TREE"), "{newest}");
        store.close().await;
    }

    #[tokio::test]
    async fn postgres_a_feed_and_a_page_seek_their_cursors() {
        let name = format!("saoma_seek_plans_{}", std::process::id());
        let Some(db) = crate::test_postgres_database(&name).await else { return };
        let url = db.url.clone();
        let store = Store::open(&url).await.unwrap();
        for (terminal, index) in [(false, "events_merchant_position"), (true, "events_terminal_position")] {
            let plan =
                plan(&store, &url, store.events_after_sql(terminal), &FEED[..4 + usize::from(terminal)])
                    .await;
            assert!(
                plan.contains(index) && plan.contains("ROW(tx_id, seq) > ROW($2, $3)"),
                "the feed must seek its cursor on {index}:\n{plan}"
            );
            let filter = plan.lines().find(|l| l.contains("Filter")).unwrap_or_default();
            assert!(!filter.contains("seq"), "the cursor is a seek, not a filter:\n{plan}");
        }
        let first = plan(&store, &url, payments_of_merchant_sql(false, false), &PAGE[..2]).await;
        assert!(
            first.contains("Index Scan Backward using payments_merchant_list") && !first.contains("Sort"),
            "{first}"
        );
        let next =
            plan(&store, &url, payments_of_merchant_sql(false, true), &[PAGE[0], PAGE[1], PAGE[3]]).await;
        assert!(
            next.contains("Index Cond: ((merchant_id = $1) AND (id < $3))"),
            "a page seeks its cursor:\n{next}"
        );
        let newest = plan(&store, &url, store.last_event_cursor_sql(), &[]).await;
        assert!(
            newest.contains("Scan Backward using events_position") && !newest.contains("Sort"),
            "{newest}"
        );
        store.close().await;
    }
}
