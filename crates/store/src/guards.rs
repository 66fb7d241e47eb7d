//! The guards against guessing: PIN checks in flight, bad payment codes counted per till
//! or key and per merchant, and the life of enrolled devices. Times are RFC 3339 UTC text.

use crate::{DeviceRow, Store, StoreResult, WriteTx};

/// The lockout state of a phone that belongs to no customer.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StrangerPin {
    pub pin_failures: i64,
    pub pin_locks: i64,
    pub pin_locked_until: Option<String>,
}

/// Mixed into the advisory-lock key of a guessing guard, so it shares no key with other
/// advisory locks by design (the migration lock is 7261001).
const GUESS_GUARD_SEED: i64 = 7_261_002;

/// What a bad-code counter says now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuessCount {
    /// Bad codes in the current window.
    pub bad: i64,
}

impl Store {
    /// True when a payment code (by its hash) was used already.
    pub async fn code_used(&self, code_hash: &str) -> StoreResult<bool> {
        let row: Option<(String,)> = sqlx::query_as("SELECT code_hash FROM used_codes WHERE code_hash = $1")
            .bind(code_hash)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.is_some())
    }

    /// A page of a customer's devices that still make codes, oldest first, after the
    /// `(created_at, id)` of the last one shown.
    pub async fn live_devices_page(
        &self,
        customer_id: &str,
        after: Option<(String, String)>,
        limit: i64,
    ) -> StoreResult<Vec<DeviceRow>> {
        let (at, id) = after.unwrap_or_default();
        Ok(sqlx::query_as(
            "SELECT * FROM devices WHERE customer_id = $1 AND revoked_at IS NULL \
             AND (created_at > $2 OR (created_at = $2 AND id > $3)) ORDER BY created_at, id LIMIT $4",
        )
        .bind(customer_id)
        .bind(at)
        .bind(id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// Forgets unknown phones untouched since `before` whose lock, if any, has ended;
    /// answers how many.
    pub async fn forget_strangers(&self, before: &str, now: &str) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM stranger_pins WHERE updated_at < $1 AND (pin_locked_until IS NULL OR pin_locked_until <= $2)",
        )
        .bind(before)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected())
    }

    /// Counts one recipient lookup by `customer_id` in the window that started at or
    /// after `window_from` (a window older than that restarts at `now`); answers the
    /// lookups in the window, this one included, and when the window started. One
    /// statement, so concurrent lookups on any node each count.
    pub async fn count_recipient_lookup(
        &self,
        customer_id: &str,
        now: &str,
        window_from: &str,
    ) -> StoreResult<(i64, String)> {
        Ok(sqlx::query_as(
            "INSERT INTO recipient_lookups (customer_id, window_start, lookups) VALUES ($1, $2, 1) \
             ON CONFLICT (customer_id) DO UPDATE SET \
             lookups = CASE WHEN recipient_lookups.window_start < $3 THEN 1 ELSE recipient_lookups.lookups + 1 END, \
             window_start = CASE WHEN recipient_lookups.window_start < $3 THEN $2 ELSE recipient_lookups.window_start END \
             RETURNING lookups, window_start",
        )
        .bind(customer_id)
        .bind(now)
        .bind(window_from)
        .fetch_one(&self.write)
        .await?)
    }

    /// Makes sure the bad-code counter of `scope` exists, so that a charge can lock it
    /// (a row being inserted by a concurrent transaction could not be locked).
    pub async fn ensure_guess_counter(&self, scope: &str, now: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO code_guesses (scope, window_start, bad) VALUES ($1, $2, 0) ON CONFLICT (scope) DO NOTHING",
        )
        .bind(scope)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(())
    }
}

impl WriteTx {
    /// The lockout state of an unknown phone (by its keyed hash), created at zero when
    /// new, locked until this transaction ends as a customer's row is.
    pub async fn stranger_pin(&mut self, phone_key: &str, now: &str) -> StoreResult<StrangerPin> {
        sqlx::query(
            "INSERT INTO stranger_pins (phone_key, pin_failures, pin_locks, updated_at) VALUES ($1, 0, 0, $2) \
             ON CONFLICT (phone_key) DO NOTHING",
        )
        .bind(phone_key)
        .bind(now)
        .execute(self.conn())
        .await?;
        let sql = format!(
            "SELECT pin_failures, pin_locks, pin_locked_until FROM stranger_pins WHERE phone_key = $1{}",
            self.lock()
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(phone_key).fetch_one(self.conn()).await?)
    }

    /// Saves an unknown phone's lockout state.
    pub async fn set_stranger_pin(&mut self, phone_key: &str, s: &StrangerPin, now: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE stranger_pins SET pin_failures = $1, pin_locks = $2, pin_locked_until = $3, updated_at = $4 \
             WHERE phone_key = $5",
        )
        .bind(s.pin_failures)
        .bind(s.pin_locks)
        .bind(&s.pin_locked_until)
        .bind(now)
        .bind(phone_key)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// How many devices of a customer still make codes; the customer's row is locked
    /// first, so concurrent enrolments of one customer count one after the other.
    pub async fn live_device_count(&mut self, customer_id: &str) -> StoreResult<i64> {
        self.customer(customer_id).await?;
        let (n,): (i64,) = sqlx::query_as(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM devices WHERE customer_id = $1 AND revoked_at IS NULL",
        )
        .bind(customer_id)
        .fetch_one(self.conn())
        .await?;
        Ok(n)
    }

    /// The PIN checks of a customer still in flight at `now`, after dropping those a crash
    /// left behind.
    pub async fn live_pin_checks(&mut self, customer_id: &str, now: &str) -> StoreResult<i64> {
        sqlx::query("DELETE FROM pin_checks WHERE customer_id = $1 AND expires_at <= $2")
            .bind(customer_id)
            .bind(now)
            .execute(self.conn())
            .await?;
        let (n,): (i64,) =
            sqlx::query_as("SELECT CAST(COUNT(*) AS BIGINT) FROM pin_checks WHERE customer_id = $1")
                .bind(customer_id)
                .fetch_one(self.conn())
                .await?;
        Ok(n)
    }

    /// Reserves a PIN check until `expires_at`.
    pub async fn insert_pin_check(
        &mut self,
        id: &str,
        customer_id: &str,
        expires_at: &str,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO pin_checks (id, customer_id, expires_at) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(customer_id)
            .bind(expires_at)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Ends a PIN check's reservation; false when it had already expired and gone.
    pub async fn delete_pin_check(&mut self, id: &str) -> StoreResult<bool> {
        let r = sqlx::query("DELETE FROM pin_checks WHERE id = $1").bind(id).execute(self.conn()).await?;
        Ok(r.rows_affected() == 1)
    }

    /// The bad codes counted for each of `scopes` since `window_start_min`, in the order
    /// given, after taking their guessing guards: exclusive (`exclusive`: a count
    /// follows), or shared (a good code), so a concurrent bad code's count is waited for,
    /// not missed. On PostgreSQL the guards are transaction-level advisory locks taken in
    /// the order given: a shared one is an entry in the lock table, where `FOR SHARE` on
    /// the counter's row would write the row (a multixact once several transactions
    /// share it), which made every charge of one merchant queue on one hot row. The
    /// counted rows are also locked `FOR UPDATE` before a count. SQLite has one writer.
    pub async fn guess_counts(
        &mut self,
        scopes: &[&str],
        window_start_min: &str,
        exclusive: bool,
    ) -> StoreResult<Vec<GuessCount>> {
        if scopes.is_empty() {
            return Ok(Vec::new());
        }
        if self.backend() == crate::Backend::Postgres {
            let take = if exclusive { "pg_advisory_xact_lock" } else { "pg_advisory_xact_lock_shared" };
            let calls: Vec<String> = (1..=scopes.len())
                .map(|i| format!("{take}(hashtextextended(${i}, {GUESS_GUARD_SEED}))"))
                .collect();
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {}", calls.join(", "))));
            for scope in scopes {
                q = q.bind(*scope);
            }
            q.execute(self.conn()).await?;
        }
        let lock = if exclusive { self.lock() } else { "" };
        let places: Vec<String> = (1..=scopes.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT scope, window_start, bad FROM code_guesses WHERE scope IN ({}) ORDER BY scope{lock}",
            places.join(", ")
        );
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for scope in scopes {
            q = q.bind(*scope);
        }
        let rows: Vec<(String, String, i64)> = q.fetch_all(self.conn()).await?;
        let count = |scope: &str| {
            let bad = match rows.iter().find(|(s, _, _)| s == scope) {
                Some((_, start, bad)) if start.as_str() >= window_start_min => *bad,
                _ => 0,
            };
            GuessCount { bad }
        };
        Ok(scopes.iter().map(|s| count(s)).collect())
    }

    /// Counts one bad code for `scope`, starting a new window at `now` when the current
    /// one began before `window_start_min`.
    pub async fn count_bad_code(
        &mut self,
        scope: &str,
        now: &str,
        window_start_min: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO code_guesses (scope, window_start, bad) VALUES ($1, $2, 1) ON CONFLICT (scope) DO UPDATE SET \
               bad = CASE WHEN code_guesses.window_start >= $3 THEN code_guesses.bad + 1 ELSE 1 END, \
               window_start = CASE WHEN code_guesses.window_start >= $3 THEN code_guesses.window_start ELSE $2 END",
        )
        .bind(scope)
        .bind(now)
        .bind(window_start_min)
        .execute(self.conn())
        .await
        ?;
        Ok(())
    }

    /// A customer's device, locked.
    pub async fn device(&mut self, id: &str) -> StoreResult<Option<DeviceRow>> {
        let sql = format!("SELECT * FROM devices WHERE id = $1{}", self.lock());
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(self.conn()).await?)
    }

    /// Revokes one device, or every live device of a customer (`device_id` `None`); the
    /// number revoked.
    pub async fn revoke_devices(
        &mut self,
        customer_id: &str,
        device_id: Option<&str>,
        now: &str,
    ) -> StoreResult<u64> {
        let r = sqlx::query(
            "UPDATE devices SET revoked_at = $1 WHERE customer_id = $2 AND ($3 IS NULL OR id = $3) AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(customer_id)
        .bind(device_id)
        .execute(self.conn())
        .await?;
        Ok(r.rows_affected())
    }
}
