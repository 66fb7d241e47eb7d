//! Writes a transaction never reads back (ledger lines, the receipt, the outbox event and
//! its webhook delivery, the audit record and its chain head's new value, the record of a
//! wallet's request under its `client_ref`), held back and sent together before the
//! commit, so a payment's tail costs one round trip instead of one per row: on
//! PostgreSQL as one statement (each write a data-modifying `WITH` of it), on SQLite,
//! which has no data-modifying `WITH`, as one call of several statements run in the
//! order they were asked for (one trip to SQLite's worker thread, during which the write
//! lock is held anyway).
//!
//! Only inserts of new rows and the update of a row the transaction has locked already
//! may be deferred: nothing held back takes a lock another writer could be waiting on, so
//! the lock order of ARCHITECTURE.md is untouched. The one insert with a key another
//! transaction could hold, a wallet request's, is made only under its customer's row lock
//! (`WriteTx::insert_wallet_request` asserts it). Whatever reads a deferred table inside
//! the same transaction flushes first (`WriteTx::flushed`, or on SQLite
//! `WriteTx::flushed_with`, which sends them in the same call as the read).

use crate::{Backend, StoreResult};
use sqlx::AssertSqlSafe;

/// The tables whose writes may be held back. A statement of a write transaction that reads
/// one of them must go through `WriteTx::flushed` or `WriteTx::flushed_with` (checked over this crate's source by a
/// test below), and [`Deferred::push`] refuses a write to any other table.
pub(crate) const DEFERRED_TABLES: &[&str] = &[
    "journal_entries",
    "postings",
    "receipts",
    "webhook_deliveries",
    "events",
    "audit_log",
    "audit_heads",
    "wallet_requests",
];

/// The table an `INSERT INTO t` or `UPDATE t` writes.
fn written_table(sql: &str) -> Option<&str> {
    let rest =
        sql.trim_start().strip_prefix("INSERT INTO ").or_else(|| sql.trim_start().strip_prefix("UPDATE "))?;
    rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next()
}

/// A value bound to a deferred statement.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
}

impl From<&str> for Arg {
    fn from(s: &str) -> Arg {
        Arg::Text(Some(s.to_string()))
    }
}

impl From<&String> for Arg {
    fn from(s: &String) -> Arg {
        Arg::Text(Some(s.clone()))
    }
}

impl From<String> for Arg {
    fn from(s: String) -> Arg {
        Arg::Text(Some(s))
    }
}

impl From<Option<&str>> for Arg {
    fn from(s: Option<&str>) -> Arg {
        Arg::Text(s.map(str::to_string))
    }
}

impl From<&Option<String>> for Arg {
    fn from(s: &Option<String>) -> Arg {
        Arg::Text(s.clone())
    }
}

impl From<i64> for Arg {
    fn from(n: i64) -> Arg {
        Arg::Int(Some(n))
    }
}

/// A statement with placeholders `$1..$n` and its `n` values: a held-back write, or a
/// part of a SQLite call of several (`WriteTx::flushed_with`).
pub(crate) struct Statement {
    pub(crate) sql: String,
    pub(crate) args: Vec<Arg>,
}

impl Statement {
    pub(crate) fn new(sql: impl Into<String>, args: Vec<Arg>) -> Statement {
        Statement { sql: sql.into(), args }
    }
}

/// What one statement of a SQLite call of several did ([`steps`]).
pub(crate) struct Step {
    /// The rows it changed, for an `INSERT`, `UPDATE` or `DELETE` (SQLite reports a
    /// `SELECT` with the count of the last of those before it).
    pub(crate) changed: u64,
    /// The rows it returned.
    pub(crate) rows: Vec<sqlx::any::AnyRow>,
}

/// The writes a transaction holds back, in the order they were asked for.
#[derive(Default)]
pub(crate) struct Deferred {
    writes: Vec<Statement>,
}

impl Deferred {
    /// Holds back `sql` (an `INSERT` or an `UPDATE` of an already locked row; constants of
    /// this crate, never input) with its values.
    pub(crate) fn push(&mut self, sql: impl Into<String>, args: Vec<Arg>) {
        let sql = sql.into();
        assert!(
            written_table(&sql).is_some_and(|t| DEFERRED_TABLES.contains(&t)),
            "held back a write to a table reads do not flush for: {sql}"
        );
        self.writes.push(Statement { sql, args });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Every held-back write, forgotten here: the caller sends them.
    pub(crate) fn take(&mut self) -> Vec<Statement> {
        std::mem::take(&mut self.writes)
    }

    /// Sends every held-back write on `conn`, and forgets them.
    pub(crate) async fn flush(
        &mut self,
        conn: &mut sqlx::AnyConnection,
        backend: Backend,
    ) -> StoreResult<()> {
        let writes = std::mem::take(&mut self.writes);
        if writes.is_empty() {
            return Ok(());
        }
        let (sql, args) = match (writes.len(), backend) {
            (1, _) => (writes[0].sql.clone(), writes[0].args.clone()),
            (_, Backend::Postgres) => combined(&writes),
            (_, Backend::Sqlite) => joined(&writes),
        };
        execute(conn, sql, &args).await?;
        Ok(())
    }
}

/// `args` as the arguments of one statement.
pub(crate) fn arguments(args: &[Arg]) -> StoreResult<sqlx::any::AnyArguments> {
    use sqlx::Arguments;
    let mut out = sqlx::any::AnyArguments::default();
    for a in args {
        match a {
            Arg::Text(v) => out.add(v.clone()),
            Arg::Int(v) => out.add(*v),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(out)
}

/// Runs `sql` (constants of this crate, never input) with `args`; the rows it changed.
pub(crate) async fn execute(conn: &mut sqlx::AnyConnection, sql: String, args: &[Arg]) -> StoreResult<u64> {
    let q = sqlx::query_with(AssertSqlSafe(sql), arguments(args)?);
    Ok(q.execute(conn).await?.rows_affected())
}

/// Runs `statements` on SQLite as one call ([`joined`]): what each did, in order. SQLite
/// ends each statement of a call with its count of changed rows, after the rows it
/// returned.
pub(crate) async fn steps(
    conn: &mut sqlx::AnyConnection,
    statements: &[Statement],
) -> StoreResult<Vec<Step>> {
    use futures::TryStreamExt;
    use sqlx::Executor;
    let (sql, args) = joined(statements);
    let mut stream = conn.fetch_many(sqlx::query_with(AssertSqlSafe(sql), arguments(&args)?));
    let (mut steps, mut rows) = (Vec::with_capacity(statements.len()), Vec::new());
    while let Some(item) = stream.try_next().await? {
        match item {
            sqlx::Either::Left(done) => {
                steps.push(Step { changed: done.rows_affected(), rows: std::mem::take(&mut rows) })
            }
            sqlx::Either::Right(row) => rows.push(row),
        }
    }
    assert!(
        rows.is_empty() && steps.len() == statements.len(),
        "a call of {} statements ended {} of them",
        statements.len(),
        steps.len()
    );
    Ok(steps)
}

/// The writes as one PostgreSQL statement: every write but the last a `WITH` of the last,
/// each one's placeholders moved past those of the writes before it.
fn combined(writes: &[Statement]) -> (String, Vec<Arg>) {
    let mut sql = String::from("WITH ");
    let mut args = Vec::new();
    let last = writes.len() - 1;
    for (i, w) in writes.iter().enumerate() {
        let moved = renumber(&w.sql, args.len());
        if i < last {
            sql.push_str(&format!("w{i} AS ({moved}){}", if i + 1 < last { ", " } else { " " }));
        } else {
            sql.push_str(&moved);
        }
        args.extend(w.args.iter().cloned());
    }
    (sql, args)
}

/// The writes as one SQLite call: the statements one after the other, each one's
/// placeholders moved past those of the writes before it (SQLite binds `$k` of every
/// statement of a call to the call's `k`-th value).
fn joined(writes: &[Statement]) -> (String, Vec<Arg>) {
    let mut sql = String::new();
    let mut args = Vec::new();
    for w in writes {
        if !sql.is_empty() {
            sql.push_str("; ");
        }
        sql.push_str(&renumber(&w.sql, args.len()));
        args.extend(w.args.iter().cloned());
    }
    (sql, args)
}

/// `sql` with every placeholder `$k` made `$(k + offset)`. The SQL deferred here has no `$`
/// anywhere else (no dollar quoting, no `$` in literals).
pub(crate) fn renumber(sql: &str, offset: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            digits.push(*d);
            chars.next();
        }
        match digits.parse::<usize>() {
            Ok(k) => out.push_str(&format!("${}", k + offset)),
            Err(_) => out.push('$'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_move_past_the_writes_before() {
        assert_eq!(renumber("VALUES ($1, $2, $10, $2)", 3), "VALUES ($4, $5, $13, $5)");
        assert_eq!(renumber("no placeholders", 7), "no placeholders");
    }

    /// Every `fn` of an `impl WriteTx` block in `text`: (name, body).
    fn write_tx_fns(text: &str) -> Vec<(String, String)> {
        let mut fns: Vec<(String, String)> = Vec::new();
        let mut inside = false;
        for line in text.lines() {
            if line.starts_with("impl WriteTx {") {
                inside = true;
            } else if inside && line == "}" {
                inside = false;
            } else if inside {
                let head = line
                    .trim_start_matches("    ")
                    .trim_start_matches("pub(crate) ")
                    .trim_start_matches("pub ");
                let head = head.trim_start_matches("async ");
                if line.starts_with("    ") && !line.starts_with("     ") && head.starts_with("fn ") {
                    let name =
                        head[3..].split(|c: char| !(c.is_alphanumeric() || c == '_')).next().unwrap_or("");
                    fns.push((name.to_string(), String::new()));
                }
                if let Some((_, body)) = fns.last_mut() {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
        fns
    }

    /// Whether `sql` reads `table` (`FROM table` or `JOIN table`, whole word).
    fn reads(body: &str, table: &str) -> bool {
        ["FROM ", "JOIN "].iter().any(|kw| {
            body.match_indices(&format!("{kw}{table}")).any(|(i, m)| {
                !body[i + m.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            })
        })
    }

    fn sources(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }

    #[test]
    fn a_read_of_a_held_back_table_flushes_first() {
        let mut files = Vec::new();
        sources(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
        let mut checked = 0;
        for (path, text) in &files {
            for (name, body) in write_tx_fns(text) {
                checked += 1;
                for table in DEFERRED_TABLES.iter().filter(|t| reads(&body, t)) {
                    assert!(
                        body.contains("flushed()") || body.contains("flushed_with("),
                        "{path}: WriteTx::{name} reads {table}, whose writes may be held back, \
                         without `self.flushed()` first: it would not see this transaction's own rows"
                    );
                }
            }
        }
        assert!(checked > 50, "found only {checked} WriteTx functions: the scan is broken");
        assert!(reads("SELECT 1 FROM audit_heads WHERE", "audit_heads"));
        assert!(!reads("SELECT 1 FROM audit_heads_old", "audit_heads"));
    }

    #[test]
    fn only_writes_to_the_flushed_tables_are_held_back() {
        assert_eq!(written_table("INSERT INTO postings (a) VALUES ($1)"), Some("postings"));
        assert_eq!(written_table(" UPDATE audit_heads SET x = 1"), Some("audit_heads"));
        let mut d = Deferred::default();
        d.push("INSERT INTO events (id) VALUES ($1)", vec![1.into()]);
        let refused =
            std::panic::catch_unwind(move || d.push("INSERT INTO payments (id) VALUES ($1)", vec![]));
        assert!(refused.is_err(), "a write to payments is read without a flush: it may not be held back");
    }

    #[tokio::test]
    async fn a_sqlite_call_tells_what_each_statement_did() {
        use sqlx::{Connection, Row};
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)").execute(&mut conn).await.unwrap();
        let statements = vec![
            Statement::new(
                "INSERT INTO t (id, v) VALUES ($1, $2), ($3, $2)",
                vec![1.into(), "a".into(), 2.into()],
            ),
            Statement::new("SELECT id FROM t WHERE v = $1 ORDER BY id", vec!["a".into()]),
            Statement::new("UPDATE t SET v = $1 WHERE id = $2", vec!["b".into(), 9.into()]),
            Statement::new("SELECT id FROM t WHERE id = $1", vec![9.into()]),
            Statement::new("UPDATE t SET v = $1 WHERE id = $2", vec!["b".into(), 2.into()]),
            Statement::new("SELECT v FROM t WHERE id = $1", vec![2.into()]),
        ];
        let steps = steps(&mut conn, &statements).await.unwrap();
        assert_eq!(steps.len(), 6);
        assert_eq!(
            (steps[0].changed, steps[2].changed, steps[4].changed),
            (2, 0, 1),
            "each write's own count"
        );
        let ids: Vec<i64> = steps[1].rows.iter().map(|r| r.get(0)).collect();
        assert_eq!(ids, [1, 2], "a statement's rows are its own");
        assert!(steps[0].rows.is_empty() && steps[3].rows.is_empty());
        assert_eq!(steps[5].rows.iter().map(|r| r.get::<String, _>(0)).collect::<Vec<_>>(), ["b"]);
    }

    #[test]
    fn writes_combine_into_one_statement() {
        let writes = vec![
            Statement { sql: "INSERT INTO a (x) VALUES ($1)".into(), args: vec![1.into()] },
            Statement {
                sql: "INSERT INTO b (x, y) VALUES ($1, $2)".into(),
                args: vec![2.into(), "y".into()],
            },
            Statement { sql: "UPDATE c SET x = $1 WHERE id = $2".into(), args: vec![3.into(), 4.into()] },
        ];
        let (sql, args) = combined(&writes);
        assert_eq!(
            sql,
            "WITH w0 AS (INSERT INTO a (x) VALUES ($1)), w1 AS (INSERT INTO b (x, y) VALUES ($2, $3)) \
             UPDATE c SET x = $4 WHERE id = $5"
        );
        assert_eq!(args.len(), 5);
    }
}
