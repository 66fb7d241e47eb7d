//! Bulk writes and whole-ledger checks, for seeding a benchmark or a drill with many
//! customers at once and for checking afterwards that nothing was lost or doubled.
//!
//! The rows written are the ones the server writes one at a time (customers, top-ups as
//! balanced journal entries, online payment codes, wallet sessions), many per statement.
//! Never a short cut around the rules: every entry is a [`JournalEntry`] that balanced
//! when it was made, and a wallet row still refuses to go below zero.

use crate::{CustomerRow, Store, StoreResult, TopUpRow, WriteTx};
use saoma_core::ledger::JournalEntry;
use sqlx::AssertSqlSafe;
use std::collections::BTreeMap;

/// Bind parameters per statement. Binding costs SQLite time that grows with the square of
/// the parameters' count (6,000 per statement seeded five times slower than 600): a few
/// hundred is fastest on both engines, and keeps every statement short.
const BINDS_MAX: usize = 500;

/// A value bound into a bulk statement.
enum Value<'a> {
    Text(&'a str),
    Int(i64),
}

/// `($1, $2), ($3, $4)` for `rows` rows of the column templates `cols`, each a `?`
/// standing for its parameter (`CAST(? AS BIGINT)` types one).
fn placeholders(rows: usize, cols: &[&str]) -> String {
    (0..rows)
        .map(|r| {
            let row: Vec<String> = cols
                .iter()
                .enumerate()
                .map(|(c, t)| t.replace('?', &format!("${}", r * cols.len() + c + 1)))
                .collect();
            format!("({})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Plain parameters for `n` columns.
const PLAIN: [&str; 8] = ["?"; 8];

impl WriteTx {
    /// Runs `head VALUES (...), (...) tail` over `rows` in statements of at most
    /// [`BINDS_MAX`] parameters; `cols` are the column templates of [`placeholders`].
    /// `head`, `tail` and `cols` are constants of this module.
    async fn insert_many<'a>(
        &mut self,
        head: &str,
        tail: &str,
        cols: &[&str],
        rows: impl Iterator<Item = Vec<Value<'a>>>,
    ) -> StoreResult<()> {
        let rows: Vec<Vec<Value<'a>>> = rows.collect();
        for chunk in rows.chunks((BINDS_MAX / cols.len()).max(1)) {
            let sql = format!("{head} VALUES {}{tail}", placeholders(chunk.len(), cols));
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for row in chunk {
                debug_assert_eq!(row.len(), cols.len(), "a bulk row has the statement's column count");
                for v in row {
                    q = match v {
                        Value::Text(s) => q.bind(*s),
                        Value::Int(i) => q.bind(*i),
                    };
                }
            }
            q.execute(self.conn()).await?;
        }
        Ok(())
    }

    /// Inserts many customers in few statements.
    pub async fn insert_customers(&mut self, rows: &[CustomerRow]) -> StoreResult<()> {
        let values = rows.iter().map(|c| {
            vec![
                Value::Text(&c.id),
                Value::Text(&c.phone),
                Value::Text(&c.name),
                Value::Text(&c.pin_hash),
                Value::Int(c.frozen),
                Value::Text(&c.created_at),
                Value::Text(&c.tier),
            ]
        });
        self.insert_many(
            "INSERT INTO customers (id, phone, name, pin_hash, frozen, created_at, tier)",
            "",
            &PLAIN[..7],
            values,
        )
        .await
    }

    /// Inserts many top-up rows (their entries go through [`WriteTx::post_entries`]).
    pub async fn insert_top_ups(&mut self, rows: &[TopUpRow]) -> StoreResult<()> {
        let values = rows.iter().map(|t| {
            vec![
                Value::Text(&t.id),
                Value::Text(&t.customer_id),
                Value::Text(&t.reference),
                Value::Int(t.amount),
                Value::Text(&t.currency),
                Value::Text(&t.created_at),
            ]
        });
        self.insert_many(
            "INSERT INTO top_ups (id, customer_id, reference, amount, currency, created_at)",
            "",
            &PLAIN[..6],
            values,
        )
        .await
    }

    /// Remembers many online payment codes: (code hash, customer id, expiry).
    pub async fn insert_online_codes(&mut self, rows: &[(String, String, String)]) -> StoreResult<()> {
        let values = rows.iter().map(|(h, c, e)| vec![Value::Text(h), Value::Text(c), Value::Text(e)]);
        self.insert_many(
            "INSERT INTO online_codes (code_hash, customer_id, expires_at)",
            "",
            &PLAIN[..3],
            values,
        )
        .await
    }

    /// Stores many wallet sessions: (token hash, customer id, expiry), made at `now`.
    pub async fn insert_sessions(&mut self, rows: &[(String, String, String)], now: &str) -> StoreResult<()> {
        let values = rows
            .iter()
            .map(|(h, c, e)| vec![Value::Text(h), Value::Text(c), Value::Text(e), Value::Text(now)]);
        self.insert_many(
            "INSERT INTO sessions (token_hash, customer_id, expires_at, created_at)",
            "",
            &PLAIN[..4],
            values,
        )
        .await
    }

    /// Records many journal entries, (entry id, kind, ref id, entry), and applies their
    /// postings: each account row's deltas summed and applied once. A wallet that would go
    /// below zero fails the statement (the table's check). For seeding: rows are not
    /// locked in one order, so it must not run beside other writers on PostgreSQL.
    pub async fn post_entries(
        &mut self,
        entries: &[(String, &str, String, JournalEntry)],
        now: &str,
    ) -> StoreResult<()> {
        let values = entries.iter().map(|(id, kind, ref_id, _)| {
            vec![Value::Text(id), Value::Text(kind), Value::Text(ref_id), Value::Text(now)]
        });
        self.insert_many(
            "INSERT INTO journal_entries (id, kind, ref_id, created_at)",
            "",
            &PLAIN[..4],
            values,
        )
        .await?;
        let mut postings = Vec::new();
        // Row id → (kind, owner, currency, delta).
        let mut deltas: BTreeMap<String, (&'static str, String, &'static str, i64)> = BTreeMap::new();
        for (entry_id, _, _, entry) in entries {
            for p in entry.postings() {
                let row = self.shards.row_id(&p.account);
                let d = deltas.entry(row.clone()).or_insert((
                    p.account.kind.as_str(),
                    p.account.owner.clone(),
                    p.account.currency_code,
                    0,
                ));
                d.3 = d
                    .3
                    .checked_add(p.balance_delta())
                    .ok_or_else(|| crate::StoreError::Corrupt(format!("the balance of {row} overflows")))?;
                postings.push((
                    entry_id.as_str(),
                    row,
                    p.direction.as_str(),
                    p.amount.amount_minor(),
                    p.amount.currency().code(),
                ));
            }
        }
        let values = deltas.iter().map(|(id, (kind, owner, currency, _))| {
            vec![Value::Text(id), Value::Text(kind), Value::Text(owner), Value::Text(currency), Value::Int(0)]
        });
        self.insert_many(
            "INSERT INTO accounts (id, kind, owner_id, currency, balance)",
            " ON CONFLICT (id) DO NOTHING",
            &PLAIN[..5],
            values,
        )
        .await?;
        // VALUES names its columns column1, column2 on both engines.
        let values = deltas.iter().map(|(id, (_, _, _, delta))| vec![Value::Text(id), Value::Int(*delta)]);
        self.insert_many(
            "UPDATE accounts SET balance = accounts.balance + v.column2 FROM (",
            ") AS v WHERE accounts.id = v.column1",
            &["?", "CAST(? AS BIGINT)"],
            values,
        )
        .await?;
        let values = postings.iter().map(|(entry, account, direction, amount, currency)| {
            vec![
                Value::Text(entry),
                Value::Text(account),
                Value::Text(direction),
                Value::Int(*amount),
                Value::Text(currency),
            ]
        });
        self.insert_many(
            "INSERT INTO postings (entry_id, account_id, direction, amount, currency)",
            "",
            &PLAIN[..5],
            values,
        )
        .await
    }
}

/// Sums over the whole ledger that must agree whatever happened (see [`Store::ledger_flows`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerFlows {
    /// Debits of customer wallets in `payment` entries.
    pub payment_wallet_debits: i64,
    /// Credits of merchant payables in `payment` entries.
    pub payment_merchant_credits: i64,
    /// Credits of fee revenue in `payment` entries.
    pub payment_fee_credits: i64,
    /// Credits of customer wallets in `refund` entries.
    pub refund_wallet_credits: i64,
    /// Debits of merchant payables in `refund` entries.
    pub refund_merchant_debits: i64,
    /// Debits of fee revenue in `refund` entries.
    pub refund_fee_debits: i64,
    /// `payment` entries.
    pub payment_entries: i64,
    /// Payments that were charged (`paid_at` set).
    pub charged_payments: i64,
    /// The sum of the charged payments' amounts.
    pub charged_amount: i64,
    /// The sum of the charged payments' fees.
    pub charged_fees: i64,
    /// Payments with more than one `payment` entry (a double charge).
    pub payments_charged_twice: i64,
    /// Refunds recorded, and their sum.
    pub refunds: i64,
    pub refunded_amount: i64,
}

impl Store {
    /// Whole-ledger sums for the invariants: wallet debits = merchant credits + fees (and
    /// the reverse for refunds), one `payment` entry per charged payment, and the
    /// charged amounts equal to what the wallets paid. Reads the whole ledger: for
    /// benchmarks and drills, not for a request path.
    pub async fn ledger_flows(&self) -> StoreResult<LedgerFlows> {
        let sums: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT e.kind, a.kind, p.direction, CAST(COALESCE(SUM(p.amount), 0) AS BIGINT) \
             FROM postings p JOIN journal_entries e ON e.id = p.entry_id JOIN accounts a ON a.id = p.account_id \
             WHERE e.kind IN ('payment', 'refund') GROUP BY e.kind, a.kind, p.direction",
        )
        .fetch_all(&self.read)
        .await?;
        let mut f = LedgerFlows::default();
        for (entry, account, direction, sum) in sums {
            let slot = match (entry.as_str(), account.as_str(), direction.as_str()) {
                ("payment", "customer_wallet", "debit") => &mut f.payment_wallet_debits,
                ("payment", "merchant_payable", "credit") => &mut f.payment_merchant_credits,
                ("payment", "fee_revenue", "credit") => &mut f.payment_fee_credits,
                ("refund", "customer_wallet", "credit") => &mut f.refund_wallet_credits,
                ("refund", "merchant_payable", "debit") => &mut f.refund_merchant_debits,
                ("refund", "fee_revenue", "debit") => &mut f.refund_fee_debits,
                _ => {
                    return Err(crate::StoreError::Corrupt(format!(
                        "a {entry} entry {direction}s a {account} account"
                    )));
                }
            };
            *slot = sum;
        }
        let one = |sql: &'static str| async move {
            let (v,): (i64,) = sqlx::query_as(sql).fetch_one(&self.read).await?;
            Ok::<i64, crate::StoreError>(v)
        };
        f.payment_entries = one("SELECT COUNT(*) FROM journal_entries WHERE kind = 'payment'").await?;
        f.payments_charged_twice =
            one("SELECT COUNT(*) FROM (SELECT ref_id FROM journal_entries WHERE kind = 'payment' \
             GROUP BY ref_id HAVING COUNT(*) > 1) d")
            .await?;
        let (count, amount, fees): (i64, i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), CAST(COALESCE(SUM(amount), 0) AS BIGINT), CAST(COALESCE(SUM(fee), 0) AS BIGINT) \
             FROM payments WHERE paid_at IS NOT NULL",
        )
        .fetch_one(&self.read)
        .await?;
        (f.charged_payments, f.charged_amount, f.charged_fees) = (count, amount, fees);
        let (count, amount): (i64, i64) =
            sqlx::query_as("SELECT COUNT(*), CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM refunds")
                .fetch_one(&self.read)
                .await?;
        (f.refunds, f.refunded_amount) = (count, amount);
        Ok(f)
    }

    /// The number of payment rows, whatever their status.
    pub async fn payment_count(&self) -> StoreResult<i64> {
        let (v,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM payments").fetch_one(&self.read).await?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_number_rows_then_columns() {
        assert_eq!(placeholders(2, &["?"; 3]), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(
            placeholders(2, &["?", "CAST(? AS BIGINT)"]),
            "($1, CAST($2 AS BIGINT)), ($3, CAST($4 AS BIGINT))"
        );
    }
}
