//! A write transaction's postings: a journal entry's lines applied to the accounts (with,
//! for a charge, its payment's row and the audit head's lock in the same round trip), in
//! the global lock order of ARCHITECTURE.md.

use super::{WriteTx, values_list};
use crate::deferred::{Arg, Statement};
use crate::{Backend, StoreError, StoreResult};
use saoma_core::ledger::JournalEntry;
use sqlx::AssertSqlSafe;

impl WriteTx {
    /// Records a journal entry and applies its postings to the accounts (split accounts:
    /// to one of their shard rows) in a few statements (on PostgreSQL one per wallet not
    /// yet locked, one for every other account; the entry and its postings held back until
    /// the commit, see `crate::deferred`), locking rows in one global order
    /// (wallets first, then by id) so concurrent writers on PostgreSQL cannot deadlock.
    /// Fails with [`StoreError::InsufficientFunds`] when a wallet would go below zero. Any
    /// error leaves the transaction with some of its writes sent (the other accounts' may
    /// have moved): the caller must drop it, so nothing of it lands.
    ///
    /// On PostgreSQL a wallet this transaction already holds locked (`lock_wallets`) moves
    /// in the same statement as the other accounts: it takes no lock there. On SQLite
    /// every account moves in one call, with the writes held back so far.
    pub async fn post_entry(
        &mut self,
        entry_id: &str,
        kind: &str,
        ref_id: &str,
        entry: &JournalEntry,
        now: &str,
    ) -> StoreResult<()> {
        self.post(entry_id, (kind, ref_id), entry, now, (false, None)).await
    }

    /// [`WriteTx::post_entry`], for a transaction whose only lock after the posting is its
    /// audit chain's head, the last in the global order (`insert_audit`; no products, no
    /// second posting). On PostgreSQL the posting's statement then locks the head too,
    /// after the accounts: one round trip instead of two. On SQLite the head is read in
    /// the posting's one call.
    pub async fn post_entry_then_audit(
        &mut self,
        entry_id: &str,
        kind: &str,
        ref_id: &str,
        entry: &JournalEntry,
        now: &str,
    ) -> StoreResult<()> {
        self.post(entry_id, (kind, ref_id), entry, now, (true, None)).await
    }

    /// Saves payment `p` (`stored`: the update of its row, else its insert) and posts its
    /// entry as [`WriteTx::post_entry_then_audit`] (`then_audit`) or
    /// [`WriteTx::post_entry`] do, with the payment's row in the posting's round trip. The
    /// row goes first: a wait for the payment's key (a concurrent request under the same
    /// order number) comes before any account is locked, as when it was a statement of
    /// its own.
    pub async fn save_payment_and_post(
        &mut self,
        (p, stored): (&saoma_core::payment::Payment, bool),
        entry_id: &str,
        entry: &JournalEntry,
        now: &str,
        then_audit: bool,
    ) -> StoreResult<()> {
        let payment = (super::trade::payment_write(p, stored), p.id.clone());
        self.post(entry_id, ("payment", &p.id), entry, now, (then_audit, Some(payment))).await
    }

    async fn post(
        &mut self,
        entry_id: &str,
        (kind, ref_id): (&str, &str),
        entry: &JournalEntry,
        now: &str,
        (then_audit, payment): (bool, Option<(Statement, String)>),
    ) -> StoreResult<()> {
        self.assert_head_unlocked("a posting");
        let shard = self.shard();
        let postings: Vec<_> = entry.postings().iter().map(|p| (shard.row_id(&p.account), p)).collect();
        let (wallets, upsert) = account_changes(&postings);
        let head_chain = (then_audit && !self.audited).then(|| self.shard().chain());
        let moves = Moves { payment, wallets, upsert, head_chain };
        match self.backend {
            Backend::Postgres => self.move_accounts(moves).await?,
            Backend::Sqlite => self.move_in_one_call(moves).await?,
        }
        self.defer_entry(entry_id, (kind, ref_id), &postings, now);
        Ok(())
    }

    /// PostgreSQL: each wallet this transaction does not hold locked yet in a statement of
    /// its own, in the global order (after the payment's row, if one is saved); then the
    /// payment's row, the held wallets, the other accounts and the lock of the audit head
    /// in one statement (`move_together`).
    async fn move_accounts(&mut self, mut moves: Moves) -> StoreResult<()> {
        let (held, unheld): (Vec<_>, Vec<_>) = std::mem::take(&mut moves.wallets)
            .into_iter()
            .partition(|w| self.locked_wallets.contains(&w.account));
        if let (false, Some((save, id))) = (unheld.is_empty(), &moves.payment) {
            let changed = crate::deferred::execute(&mut self.tx, save.sql.clone(), &save.args).await?;
            super::trade::saved_once(changed, id)?;
            moves.payment = None;
        }
        for w in &unheld {
            self.move_wallet(w).await?;
        }
        moves.wallets = held;
        let alone = moves.wallets.is_empty() && moves.head_chain.is_none() && moves.payment.is_none();
        match (alone, &moves.upsert) {
            (true, Some(upsert)) => {
                crate::deferred::execute(&mut self.tx, upsert_accounts_sql(upsert.rows, None), &upsert.args)
                    .await?;
            }
            (true, None) => {}
            (false, _) => self.move_together(&moves).await?,
        }
        Ok(())
    }

    /// SQLite: the held-back writes, the payment's row, the wallets' moves, the other
    /// accounts' upsert and the read of the audit head, in one call (`flushed_with`).
    /// SQLite takes no row locks (its one writer is held from the first write), so their
    /// order is free. Keeps the head it read for `insert_audit`.
    async fn move_in_one_call(&mut self, moves: Moves) -> StoreResult<()> {
        let Moves { payment, wallets, upsert, head_chain } = moves;
        let (mut statements, saved_id) = match payment {
            Some((save, id)) => (vec![save], Some(id)),
            None => (Vec::new(), None),
        };
        let first_wallet = statements.len();
        statements.extend(wallets.iter().map(|w| Statement::new(w.sql.clone(), w.args.clone())));
        statements.extend(upsert.map(|u| Statement::new(upsert_accounts_sql(u.rows, None), u.args)));
        if let Some(chain) = head_chain {
            let head = "SELECT seq_no, hash FROM audit_heads WHERE chain = $1";
            statements.push(Statement::new(head, vec![chain.into()]));
        }
        let steps = self.flushed_with(statements).await?;
        if let Some(id) = saved_id {
            super::trade::saved_once(steps[0].changed, &id)?;
        }
        if let Some((w, _)) = wallets.iter().zip(&steps[first_wallet..]).find(|(_, step)| step.changed != 1) {
            return Err(StoreError::InsufficientFunds(w.account.clone()));
        }
        // No head yet (the chain's first record): `insert_audit` makes it.
        let head = head_chain.zip(steps.last().and_then(|step| step.rows.first()));
        if let Some((chain, row)) = head {
            use sqlx::Row;
            self.head = Some(super::LockedHead { chain, seq_no: row.try_get(0)?, hash: row.try_get(1)? });
        }
        Ok(())
    }

    /// Holds back a journal entry and its lines: new rows nothing in this transaction
    /// reads back.
    fn defer_entry(
        &mut self,
        entry_id: &str,
        (kind, ref_id): (&str, &str),
        postings: &[(String, &saoma_core::ledger::Posting)],
        now: &str,
    ) {
        self.defer(
            "INSERT INTO journal_entries (id, kind, ref_id, created_at) VALUES ($1, $2, $3, $4)",
            vec![entry_id.into(), kind.into(), ref_id.into(), now.into()],
        );
        let sql = format!(
            "INSERT INTO postings (entry_id, account_id, direction, amount, currency) VALUES {}",
            values_list(postings.len(), 5)
        );
        let mut args = Vec::with_capacity(postings.len() * 5);
        for (account_id, p) in postings {
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
    }

    /// PostgreSQL: the payment's row, the wallets this transaction holds locked, the
    /// other accounts and the audit head's lock in one statement ([`together_sql`]). Keeps
    /// the head it locked for `insert_audit`.
    async fn move_together(&mut self, moves: &Moves) -> StoreResult<()> {
        debug_assert!(self.backend == Backend::Postgres, "only PostgreSQL holds wallets locked");
        let (sql, args) = together_sql(moves);
        let q = sqlx::query_as_with::<_, (i64, Option<i64>, Option<String>, i64), _>(
            AssertSqlSafe(sql),
            crate::deferred::arguments(&args)?,
        );
        let (moved, seq_no, hash, saved) = q.fetch_one(self.flushed().await?).await?;
        if let Some((_, id)) = &moves.payment {
            super::trade::saved_once(u64::try_from(saved).unwrap_or(0), id)?;
        }
        let held = &moves.wallets;
        if moved != held.len() as i64 {
            // A credit always moves its row: the debit is what its floor refused.
            let debit = held.iter().find(|w| w.debit).or(held.first());
            return Err(StoreError::InsufficientFunds(debit.map_or_else(String::new, |w| w.account.clone())));
        }
        // No head yet (the chain's first record): `insert_audit` makes it.
        if let (Some(chain), Some(seq_no), Some(hash)) = (moves.head_chain, seq_no, hash) {
            self.head = Some(super::LockedHead { chain, seq_no, hash });
        }
        Ok(())
    }

    /// Moves a wallet's balance in a statement of its own.
    async fn move_wallet(&mut self, w: &WalletMove) -> StoreResult<()> {
        if crate::deferred::execute(&mut self.tx, w.sql.clone(), &w.args).await? != 1 {
            return Err(StoreError::InsufficientFunds(w.account.clone()));
        }
        Ok(())
    }
}

/// A wallet's move by `delta` as one statement: a credit creates the wallet if need be; a
/// debit never takes it below zero (it then changes no row, which its caller reports as
/// [`StoreError::InsufficientFunds`]).
struct WalletMove {
    account: String,
    debit: bool,
    sql: String,
    args: Vec<Arg>,
}

impl WalletMove {
    fn new(account_id: &str, p: &saoma_core::ledger::Posting, delta: i64) -> WalletMove {
        let account = account_id.to_string();
        if delta >= 0 {
            let a = &p.account;
            let args = vec![
                account_id.into(),
                a.kind.as_str().into(),
                a.owner.as_str().into(),
                a.currency_code.into(),
                delta.into(),
            ];
            WalletMove { account, debit: false, sql: upsert_accounts_sql(1, None), args }
        } else {
            let sql = "UPDATE accounts SET balance = balance + $1 WHERE id = $2 AND balance + $1 >= 0".into();
            WalletMove { account, debit: true, sql, args: vec![delta.into(), account_id.into()] }
        }
    }
}

/// What a posting sends ([`WriteTx::post_entry`] and the like).
struct Moves {
    /// The row of a payment saved with the posting (`save_payment_and_post`), and its id.
    payment: Option<(Statement, String)>,
    /// The wallets' moves, by id.
    wallets: Vec<WalletMove>,
    /// Every other account's move.
    upsert: Option<Upsert>,
    /// The audit chain whose head to lock (read, on SQLite) after the accounts.
    head_chain: Option<i64>,
}

/// Creates or moves `rows` accounts; `args` are `(id, kind, owner_id, currency, delta)` of
/// each, in the global lock order (by id).
struct Upsert {
    rows: usize,
    args: Vec<Arg>,
}

/// The statement that creates or moves `rows` accounts, each `(id, kind, owner_id,
/// currency, delta)`; with a `gate`, its rows are taken only once the gate is evaluated
/// (a condition on another part of the same statement, which orders it after that part).
fn upsert_accounts_sql(rows: usize, gate: Option<&str>) -> String {
    let values = values_list(rows, 5);
    let columns = "INSERT INTO accounts (id, kind, owner_id, currency, balance)";
    let on_conflict = "ON CONFLICT (id) DO UPDATE SET balance = accounts.balance + excluded.balance";
    match gate {
        None => format!("{columns} VALUES {values} {on_conflict}"),
        Some(gate) => format!(
            "{columns} SELECT * FROM (VALUES {values}) AS v (id, kind, owner_id, currency, balance) \
             WHERE {gate} {on_conflict}"
        ),
    }
}

/// What `postings` change, one change per account row, in the global lock order: the
/// wallets' moves by id (a charge locks them before it decides), then one statement that
/// creates or moves every other account (those without a floor), by id.
fn account_changes(postings: &[(String, &saoma_core::ledger::Posting)]) -> (Vec<WalletMove>, Option<Upsert>) {
    let mut changes: std::collections::BTreeMap<(bool, &str), (&saoma_core::ledger::Posting, i64)> =
        std::collections::BTreeMap::new();
    for (account_id, p) in postings {
        let key = (!p.account.kind.must_stay_non_negative(), account_id.as_str());
        changes.entry(key).or_insert((p, 0)).1 += p.balance_delta();
    }
    let wallets = changes
        .iter()
        .filter(|((other, _), _)| !*other)
        .map(|((_, account_id), (p, delta))| WalletMove::new(account_id, p, *delta))
        .collect();
    let others: Vec<_> = changes.iter().filter(|((other, _), _)| *other).collect();
    if others.is_empty() {
        return (wallets, None);
    }
    let mut args: Vec<Arg> = Vec::with_capacity(others.len() * 5);
    for ((_, account_id), (p, delta)) in &others {
        let a = &p.account;
        args.extend([
            (*account_id).into(),
            a.kind.as_str().into(),
            a.owner.as_str().into(),
            a.currency_code.into(),
            (*delta).into(),
        ]);
    }
    (wallets, Some(Upsert { rows: others.len(), args }))
}

/// The statement of `WriteTx::move_together`, its parts data-modifying `WITH`s: the
/// payment's row (`p`), each held wallet's move (`m0`, ...) and the upsert of the other
/// accounts (`s`), then the head of `head_chain` locked (`h`). Each lock waits for the
/// part before it: the upsert's rows are taken only after the payment's row is saved, and
/// the head is read after the count of the accounts moved, so the global lock order holds
/// inside the statement. The held wallets take no lock, so their place does not matter.
/// It returns how many wallets moved, the head, and how many payment rows were saved.
fn together_sql(moves: &Moves) -> (String, Vec<Arg>) {
    let (mut ctes, mut args, mut moved) = (Vec::new(), Vec::new(), Vec::new());
    let (mut after, mut saved) = (None, "CAST(0 AS BIGINT)");
    if let Some((save, _)) = &moves.payment {
        ctes.push(format!("p AS ({} RETURNING 1)", crate::deferred::renumber(&save.sql, args.len())));
        args.extend(save.args.iter().cloned());
        (after, saved) = (Some("(SELECT count(*) FROM p) >= 0"), "(SELECT count(*) FROM p)");
    }
    for (i, w) in moves.wallets.iter().enumerate() {
        ctes.push(format!("m{i} AS ({} RETURNING 1)", crate::deferred::renumber(&w.sql, args.len())));
        args.extend(w.args.iter().cloned());
        moved.push(format!("(SELECT count(*) FROM m{i})"));
    }
    if let Some(upsert) = &moves.upsert {
        let sql = upsert_accounts_sql(upsert.rows, after);
        ctes.push(format!("s AS ({} RETURNING 1)", crate::deferred::renumber(&sql, args.len())));
        args.extend(upsert.args.iter().cloned());
        after = Some("(SELECT count(*) FROM s) >= 0");
    }
    let head = match moves.head_chain {
        Some(chain) => {
            args.push(chain.into());
            let (n, after) = (args.len(), after.unwrap_or("TRUE"));
            ctes.push(format!(
                "h AS (SELECT seq_no, hash FROM audit_heads WHERE chain = ${n} AND {after} FOR UPDATE)"
            ));
            "(SELECT seq_no FROM h), (SELECT hash FROM h)"
        }
        None => "CAST(NULL AS BIGINT), CAST(NULL AS TEXT)",
    };
    let moved = if moved.is_empty() { "0".to_string() } else { moved.join(" + ") };
    (format!("WITH {} SELECT {moved}, {head}, {saved}", ctes.join(", ")), args)
}

#[cfg(test)]
mod tests {
    //! The shape of the statement that saves a charge's payment, moves its accounts and
    //! locks its audit head: what keeps the lock order inside it is that each lock waits
    //! for the part before it (the accounts' upsert for the payment's row, the head's read
    //! for the count of the accounts moved).
    use super::*;

    fn wallet() -> WalletMove {
        WalletMove {
            account: "customer_wallet:c:CNY".into(),
            debit: true,
            sql: "UPDATE accounts SET balance = balance + $1 WHERE id = $2 AND balance + $1 >= 0".into(),
            args: vec![(-5).into(), "customer_wallet:c:CNY".into()],
        }
    }

    fn payable() -> Upsert {
        let args = vec![
            "merchant_payable:m:CNY#3".into(),
            "merchant_payable".into(),
            "m".into(),
            "CNY".into(),
            5.into(),
        ];
        Upsert { rows: 1, args }
    }

    #[test]
    fn the_head_is_read_after_the_accounts_move() {
        let moves =
            Moves { payment: None, wallets: vec![wallet()], upsert: Some(payable()), head_chain: Some(3) };
        let (sql, args) = together_sql(&moves);
        assert_eq!(
            sql,
            "WITH m0 AS (UPDATE accounts SET balance = balance + $1 WHERE id = $2 AND balance + $1 >= 0 RETURNING 1), \
             s AS (INSERT INTO accounts (id, kind, owner_id, currency, balance) VALUES ($3, $4, $5, $6, $7) \
             ON CONFLICT (id) DO UPDATE SET balance = accounts.balance + excluded.balance RETURNING 1), \
             h AS (SELECT seq_no, hash FROM audit_heads WHERE chain = $8 AND (SELECT count(*) FROM s) >= 0 FOR UPDATE) \
             SELECT (SELECT count(*) FROM m0), (SELECT seq_no FROM h), (SELECT hash FROM h), CAST(0 AS BIGINT)"
        );
        assert_eq!(args.len(), 8);
        let without_head =
            Moves { payment: None, wallets: vec![], upsert: Some(payable()), head_chain: None };
        assert!(!together_sql(&without_head).0.contains("audit_heads"));
    }

    #[test]
    fn the_accounts_are_taken_after_the_payment_is_saved() {
        let save = Statement::new("INSERT INTO payments (id) VALUES ($1)", vec!["pay_1".into()]);
        let moves = Moves {
            payment: Some((save, "pay_1".into())),
            wallets: vec![wallet()],
            upsert: Some(payable()),
            head_chain: Some(3),
        };
        let (sql, args) = together_sql(&moves);
        assert_eq!(
            sql,
            "WITH p AS (INSERT INTO payments (id) VALUES ($1) RETURNING 1), \
             m0 AS (UPDATE accounts SET balance = balance + $2 WHERE id = $3 AND balance + $2 >= 0 RETURNING 1), \
             s AS (INSERT INTO accounts (id, kind, owner_id, currency, balance) \
             SELECT * FROM (VALUES ($4, $5, $6, $7, $8)) AS v (id, kind, owner_id, currency, balance) \
             WHERE (SELECT count(*) FROM p) >= 0 \
             ON CONFLICT (id) DO UPDATE SET balance = accounts.balance + excluded.balance RETURNING 1), \
             h AS (SELECT seq_no, hash FROM audit_heads WHERE chain = $9 AND (SELECT count(*) FROM s) >= 0 FOR UPDATE) \
             SELECT (SELECT count(*) FROM m0), (SELECT seq_no FROM h), (SELECT hash FROM h), (SELECT count(*) FROM p)"
        );
        assert_eq!(args.len(), 9);
        // With no other account to move, the head waits for the payment's row itself.
        let moves = Moves { upsert: None, ..moves };
        assert!(together_sql(&moves).0.contains("chain = $4 AND (SELECT count(*) FROM p) >= 0 FOR UPDATE"));
    }
}
