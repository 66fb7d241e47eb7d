//! The parties of a write transaction: merchants, terminals, keys, customers, sessions and devices.

use super::WriteTx;
use crate::{CustomerRow, MerchantRow, StoreResult};
use sqlx::AssertSqlSafe;

impl WriteTx {
    /// Inserts a merchant.
    pub async fn insert_merchant(&mut self, m: &MerchantRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO merchants (id, name, mcc, city, country, currency, fee_bps, timezone, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&m.id)
        .bind(&m.name)
        .bind(&m.mcc)
        .bind(&m.city)
        .bind(&m.country)
        .bind(&m.currency)
        .bind(m.fee_bps)
        .bind(&m.timezone)
        .bind(&m.status)
        .bind(&m.created_at)
        .execute(&mut *self.tx)
        .await
        ?;
        Ok(())
    }

    /// Loads a merchant, locked.
    pub async fn merchant(&mut self, id: &str) -> StoreResult<Option<MerchantRow>> {
        let sql = format!("SELECT * FROM merchants WHERE id = $1{}", self.lock());
        Ok(sqlx::query_as(AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *self.tx).await?)
    }

    /// Sets a merchant's status.
    pub async fn set_merchant_status(&mut self, id: &str, status: &str) -> StoreResult<()> {
        sqlx::query("UPDATE merchants SET status = $1 WHERE id = $2")
            .bind(status)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Inserts a terminal.
    pub async fn insert_terminal(
        &mut self,
        id: &str,
        merchant_id: &str,
        name: &str,
        now: &str,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO terminals (id, merchant_id, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(merchant_id)
            .bind(name)
            .bind(now)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Inserts an API key.
    pub async fn insert_api_key(
        &mut self,
        id: &str,
        merchant_id: &str,
        terminal_id: Option<&str>,
        role: &str,
        secret: &str,
        now: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_keys (id, merchant_id, terminal_id, role, secret, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(merchant_id)
        .bind(terminal_id)
        .bind(role)
        .bind(secret)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Inserts a customer.
    pub async fn insert_customer(&mut self, c: &CustomerRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO customers (id, phone, name, pin_hash, pin_failures, pin_locks, frozen, created_at, tier) \
             VALUES ($1, $2, $3, $4, 0, 0, 0, $5, $6)",
        )
        .bind(&c.id)
        .bind(&c.phone)
        .bind(&c.name)
        .bind(&c.pin_hash)
        .bind(&c.created_at)
        .bind(&c.tier)
        .execute(&mut *self.tx)
        .await
        ?;
        Ok(())
    }

    /// Loads a customer, locked.
    pub async fn customer(&mut self, id: &str) -> StoreResult<Option<CustomerRow>> {
        let sql = format!("SELECT * FROM customers WHERE id = $1{}", self.lock());
        let row: Option<CustomerRow> =
            sqlx::query_as(AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *self.tx).await?;
        if row.is_some() && self.backend == crate::Backend::Postgres {
            self.locked_customers.push(id.to_string());
        }
        Ok(row)
    }

    /// Saves a customer's PIN-failure state.
    pub async fn set_pin_state(
        &mut self,
        id: &str,
        failures: i64,
        locks: i64,
        locked_until: Option<&str>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE customers SET pin_failures = $1, pin_locks = $2, pin_locked_until = $3 WHERE id = $4",
        )
        .bind(failures)
        .bind(locks)
        .bind(locked_until)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Stores a session by the hash of its token.
    pub async fn insert_session(
        &mut self,
        token_hash: &str,
        customer_id: &str,
        expires_at: &str,
        now: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, customer_id, expires_at, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(customer_id)
        .bind(expires_at)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Enrolls a device; fails with [`StoreError::UniqueViolation`] if the slot is taken.
    pub async fn insert_device(
        &mut self,
        id: &str,
        customer_id: &str,
        slot: i64,
        secret: &str,
        now: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO devices (id, customer_id, slot, secret, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(customer_id)
        .bind(slot)
        .bind(secret)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}
