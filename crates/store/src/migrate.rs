//! The schema's migrations and how a store applies them at open: once each, in order,
//! one node at a time.

use crate::{Backend, Store, StoreError, StoreResult};
use sqlx::Executor;

/// The text of a migration: one for both databases, or one for each where they differ.
enum Migration {
    Both(&'static str),
    Each { sqlite: &'static str, postgres: &'static str },
}

impl Migration {
    fn sql(&self, backend: Backend) -> &'static str {
        match (self, backend) {
            (Migration::Both(sql), _) => sql,
            (Migration::Each { sqlite, .. }, Backend::Sqlite) => sqlite,
            (Migration::Each { postgres, .. }, Backend::Postgres) => postgres,
        }
    }
}

/// The schema's migrations, in order. A database records the ones it has applied in
/// `schema_migrations`; each runs once, in its own transaction. Never edit one that has
/// shipped: add the next.
const MIGRATIONS: &[(i64, Migration)] = &[
    (1, Migration::Both(include_str!("../migrations/0001_initial.sql"))),
    (2, Migration::Both(include_str!("../migrations/0002_scale_out.sql"))),
    (3, Migration::Both(include_str!("../migrations/0003_receipts.sql"))),
    (4, Migration::Both(include_str!("../migrations/0004_webhooks.sql"))),
    (5, Migration::Both(include_str!("../migrations/0005_settlements.sql"))),
    (6, Migration::Both(include_str!("../migrations/0006_receive_codes.sql"))),
    (7, Migration::Both(include_str!("../migrations/0007_audit_chain.sql"))),
    (8, Migration::Both(include_str!("../migrations/0008_risk.sql"))),
    (9, Migration::Both(include_str!("../migrations/0009_roles.sql"))),
    (10, Migration::Both(include_str!("../migrations/0010_kyc.sql"))),
    (11, Migration::Both(include_str!("../migrations/0011_guards.sql"))),
    (12, Migration::Both(include_str!("../migrations/0012_event_terminals.sql"))),
    (13, Migration::Both(include_str!("../migrations/0013_audit_checkpoints.sql"))),
    (14, Migration::Both(include_str!("../migrations/0014_code_locator_key.sql"))),
    (15, Migration::Both(include_str!("../migrations/0015_products.sql"))),
    (16, Migration::Both(include_str!("../migrations/0016_web_sessions.sql"))),
    (17, Migration::Both(include_str!("../migrations/0017_stranger_pins.sql"))),
    (18, Migration::Both(include_str!("../migrations/0018_recipient_lookups.sql"))),
    (19, Migration::Both(include_str!("../migrations/0019_settlement_index_paid_only.sql"))),
    (
        20,
        Migration::Each {
            sqlite: include_str!("../migrations/0020_lookup_indexes.sqlite.sql"),
            postgres: include_str!("../migrations/0020_lookup_indexes.postgres.sql"),
        },
    ),
    (21, Migration::Both(include_str!("../migrations/0021_payment_list_index.sql"))),
    (22, Migration::Both(include_str!("../migrations/0022_event_position.sql"))),
    (
        23,
        Migration::Each {
            sqlite: include_str!("../migrations/0023_payment_merchant_key.sqlite.sql"),
            postgres: include_str!("../migrations/0023_payment_merchant_key.postgres.sql"),
        },
    ),
    (24, Migration::Both(include_str!("../migrations/0024_partial_indexes.sql"))),
    (
        25,
        Migration::Each {
            sqlite: include_str!("../migrations/0025_partial_qr_ref.sqlite.sql"),
            postgres: include_str!("../migrations/0025_partial_qr_ref.postgres.sql"),
        },
    ),
];

impl Store {
    /// Applies the migrations this database has not had yet.
    pub(crate) async fn migrate(&self) -> StoreResult<()> {
        let serial = match self.backend {
            Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Backend::Postgres => "BIGSERIAL PRIMARY KEY",
        };
        // A connection of its own, closed after: a migration may build an index of a large
        // table and the others wait for it, so on PostgreSQL it runs without the pool's
        // statement timeout. It still gives up on a table lock it waits for that long, so
        // it never holds every query of that table in the queue behind it.
        let mut conn = self.write.acquire().await?.detach();
        if self.backend == Backend::Postgres {
            let (timeout,): (String,) =
                sqlx::query_as("SELECT current_setting('statement_timeout')").fetch_one(&mut conn).await?;
            conn.execute("SET statement_timeout = 0").await?;
            // Several nodes may start at once; one migrates, the others wait.
            conn.execute("SELECT pg_advisory_lock(7261001)").await?;
            sqlx::query("SELECT set_config('lock_timeout', $1, false)")
                .bind(timeout)
                .execute(&mut conn)
                .await?;
        }
        let outcome = async {
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)",
            )
            .await?;
            let done: Vec<(i64,)> = sqlx::query_as("SELECT version FROM schema_migrations").fetch_all(&mut conn).await?;
            for (version, migration) in MIGRATIONS {
                if done.iter().any(|(v,)| v == version) {
                    continue;
                }
                let mut tx = sqlx::Connection::begin(&mut conn).await?;
                let sql = migration.sql(self.backend).replace("{SERIAL}", serial);
                for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                    let statement: String =
                        statement.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n");
                    if statement.trim().is_empty() {
                        continue;
                    }
                    // The migrations are constants of this crate.
                    sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&mut *tx).await?;
                }
                sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                    .bind(version)
                    .bind(chrono::Utc::now().to_rfc3339())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                tracing::info!(version, "Applied schema migration.");
            }
            Ok::<(), StoreError>(())
        }
        .await;
        // The migration's own error first: an unlock or a close that fails after it is
        // its consequence (the lock goes with the session).
        let unlocked = match self.backend {
            Backend::Postgres => conn.execute("SELECT pg_advisory_unlock(7261001)").await.map(drop),
            Backend::Sqlite => Ok(()),
        };
        let closed = sqlx::Connection::close(conn).await;
        outcome.and(unlocked.map_err(StoreError::from)).and(closed.map_err(StoreError::from))
    }

    /// The schema version this database is at.
    pub async fn schema_version(&self) -> StoreResult<i64> {
        let v: (Option<i64>,) =
            sqlx::query_as("SELECT MAX(version) FROM schema_migrations").fetch_one(&self.read).await?;
        Ok(v.0.unwrap_or(0))
    }
}
