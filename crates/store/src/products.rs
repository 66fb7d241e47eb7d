//! Products and their stock movements. Stock moves only inside a [`WriteTx`], with a
//! guarded `UPDATE` (`stock >= quantity`), so two tills selling the last unit at once
//! cannot both succeed: on PostgreSQL the second waits for the first's row lock and then
//! finds the stock gone; SQLite has one writer.

use crate::tx::WriteTx;
use crate::{Store, StoreError, StoreResult};
use sqlx::{AssertSqlSafe, FromRow};

/// A product of a merchant's catalogue; `stock` is `None` when it is not tracked.
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct ProductRow {
    pub id: String,
    pub merchant_id: String,
    pub sku: String,
    pub name: String,
    pub price: i64,
    pub currency: String,
    pub stock: Option<i64>,
    pub barcode: Option<String>,
    pub active: i64,
    pub low_stock_threshold: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
}

/// One change of a product's stock: `sale`, `refund`, `adjustment` or `initial`.
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct StockMovementRow {
    pub id: String,
    pub merchant_id: String,
    pub product_id: String,
    pub sku: String,
    pub delta: i64,
    pub kind: String,
    /// The stock after the change; `None` for a product whose stock is not tracked.
    pub stock_after: Option<i64>,
    pub payment_id: Option<String>,
    pub refund_id: Option<String>,
    pub reason: Option<String>,
    pub actor: String,
    pub created_at: String,
}

/// Which products a list shows.
#[derive(Debug, Clone, Default)]
pub struct ProductFilter<'a> {
    /// Matches the sku or the barcode exactly, or part of the name (any case).
    pub query: Option<&'a str>,
    /// Only products at or under their low-stock threshold.
    pub low_stock_only: bool,
    /// Only active (or only inactive) products.
    pub active: Option<bool>,
}

const PRODUCT_COLUMNS: &str = "id, merchant_id, sku, name, price, currency, stock, barcode, active, \
     low_stock_threshold, created_at, updated_at";

impl Store {
    /// A product by id.
    pub async fn product(&self, id: &str) -> StoreResult<Option<ProductRow>> {
        let sql = format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE id = $1");
        Ok(sqlx::query_as(AssertSqlSafe(sql)).bind(id).fetch_optional(&self.read).await?)
    }

    /// A merchant's product by sku.
    pub async fn product_by_sku(&self, merchant_id: &str, sku: &str) -> StoreResult<Option<ProductRow>> {
        let sql = format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE merchant_id = $1 AND sku = $2");
        Ok(sqlx::query_as(AssertSqlSafe(sql)).bind(merchant_id).bind(sku).fetch_optional(&self.read).await?)
    }

    /// A merchant's products in creation order, after a cursor (a product id).
    pub async fn products(
        &self,
        merchant_id: &str,
        filter: &ProductFilter<'_>,
        after_id: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<ProductRow>> {
        let like = filter.query.map(|q| format!("%{}%", q.to_lowercase().replace(['%', '_'], "")));
        let sql = format!(
            "SELECT {PRODUCT_COLUMNS} FROM products WHERE merchant_id = $1 AND ($2 IS NULL OR id > $2) \
             AND ($3 IS NULL OR sku = $4 OR barcode = $4 OR LOWER(name) LIKE $3) \
             AND ($5 = 0 OR (stock IS NOT NULL AND low_stock_threshold IS NOT NULL AND stock <= low_stock_threshold)) \
             AND ($6 < 0 OR active = $6) ORDER BY id LIMIT $7"
        );
        Ok(sqlx::query_as(AssertSqlSafe(sql))
            .bind(merchant_id)
            .bind(after_id)
            .bind(like)
            .bind(filter.query)
            .bind(i64::from(filter.low_stock_only))
            .bind(filter.active.map_or(-1, i64::from))
            .bind(limit)
            .fetch_all(&self.read)
            .await?)
    }

    /// A product's stock movements, newest first, before a cursor (a movement id).
    pub async fn stock_movements(
        &self,
        product_id: &str,
        before_id: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<StockMovementRow>> {
        Ok(sqlx::query_as(
            "SELECT * FROM stock_movements WHERE product_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(product_id)
        .bind(before_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// The stock movements a payment and its refunds made, oldest first.
    pub async fn stock_movements_of_payment(&self, payment_id: &str) -> StoreResult<Vec<StockMovementRow>> {
        Ok(sqlx::query_as("SELECT * FROM stock_movements WHERE payment_id = $1 ORDER BY id")
            .bind(payment_id)
            .fetch_all(&self.read)
            .await?)
    }
}

impl WriteTx {
    /// Inserts a product; [`StoreError::UniqueViolation`] when its sku or barcode is taken.
    pub async fn insert_product(&mut self, p: &ProductRow) -> StoreResult<()> {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO products ({PRODUCT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        )))
        .bind(&p.id)
        .bind(&p.merchant_id)
        .bind(&p.sku)
        .bind(&p.name)
        .bind(p.price)
        .bind(&p.currency)
        .bind(p.stock)
        .bind(&p.barcode)
        .bind(p.active)
        .bind(p.low_stock_threshold)
        .bind(&p.created_at)
        .bind(&p.updated_at)
        .execute(self.conn())
        .await
        ?;
        Ok(())
    }

    /// Saves a product's fields (stock included: the caller records the movement).
    pub async fn update_product(&mut self, p: &ProductRow) -> StoreResult<()> {
        let r = sqlx::query(
            "UPDATE products SET sku = $1, name = $2, price = $3, stock = $4, barcode = $5, active = $6, \
             low_stock_threshold = $7, updated_at = $8 WHERE id = $9",
        )
        .bind(&p.sku)
        .bind(&p.name)
        .bind(p.price)
        .bind(p.stock)
        .bind(&p.barcode)
        .bind(p.active)
        .bind(p.low_stock_threshold)
        .bind(&p.updated_at)
        .bind(&p.id)
        .execute(self.conn())
        .await?;
        if r.rows_affected() != 1 {
            return Err(StoreError::Corrupt(format!("product {} vanished while being saved", p.id)));
        }
        Ok(())
    }

    /// A product by id, locked.
    pub async fn product(&mut self, id: &str) -> StoreResult<Option<ProductRow>> {
        self.assert_head_unlocked("a product's lock");
        let sql = format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE id = $1{}", self.lock());
        Ok(sqlx::query_as(AssertSqlSafe(sql)).bind(id).fetch_optional(self.conn()).await?)
    }

    /// A merchant's product by sku, unlocked (the stock moves with [`WriteTx::move_stock`]).
    pub async fn product_by_sku(&mut self, merchant_id: &str, sku: &str) -> StoreResult<Option<ProductRow>> {
        let sql = format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE merchant_id = $1 AND sku = $2");
        Ok(sqlx::query_as(AssertSqlSafe(sql)).bind(merchant_id).bind(sku).fetch_optional(self.conn()).await?)
    }

    /// A merchant's product by barcode.
    pub async fn product_by_barcode(
        &mut self,
        merchant_id: &str,
        barcode: &str,
    ) -> StoreResult<Option<ProductRow>> {
        let sql = format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE merchant_id = $1 AND barcode = $2");
        Ok(sqlx::query_as(AssertSqlSafe(sql))
            .bind(merchant_id)
            .bind(barcode)
            .fetch_optional(self.conn())
            .await?)
    }

    /// Moves a tracked product's stock by `delta` and returns the stock after, or `None`
    /// when that would take it below zero (nothing changes then). One guarded `UPDATE`:
    /// the check and the change cannot be split by another writer.
    pub async fn move_stock(&mut self, product_id: &str, delta: i64, now: &str) -> StoreResult<Option<i64>> {
        self.assert_head_unlocked("a product's lock");
        let row: Option<(Option<i64>,)> = sqlx::query_as(
            "UPDATE products SET stock = stock + $1, updated_at = $2 \
             WHERE id = $3 AND stock IS NOT NULL AND stock + $1 >= 0 RETURNING stock",
        )
        .bind(delta)
        .bind(now)
        .bind(product_id)
        .fetch_optional(self.conn())
        .await?;
        Ok(row.and_then(|(s,)| s))
    }

    /// Records a stock movement.
    pub async fn insert_stock_movement(&mut self, m: &StockMovementRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO stock_movements (id, merchant_id, product_id, sku, delta, kind, stock_after, payment_id, \
             refund_id, reason, actor, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&m.id)
        .bind(&m.merchant_id)
        .bind(&m.product_id)
        .bind(&m.sku)
        .bind(m.delta)
        .bind(&m.kind)
        .bind(m.stock_after)
        .bind(&m.payment_id)
        .bind(&m.refund_id)
        .bind(&m.reason)
        .bind(&m.actor)
        .bind(&m.created_at)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Units of each sku a payment's refunds have put back so far: (sku, units).
    pub async fn units_returned(&mut self, payment_id: &str) -> StoreResult<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT sku, CAST(SUM(delta) AS BIGINT) FROM stock_movements WHERE payment_id = $1 AND kind = 'refund' \
             GROUP BY sku ORDER BY sku",
        )
        .bind(payment_id)
        .fetch_all(self.conn())
        .await?)
    }
}
