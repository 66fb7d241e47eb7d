-- Products and stock: a merchant's catalogue, and one row per stock change (sale, refund,
-- manual adjustment with its reason), so the stock of any product can be explained.
-- `stock` NULL means the product's stock is not tracked, and tracked stock never goes below
-- zero (the CHECK is a backstop: sales take stock with a guarded UPDATE).
CREATE TABLE IF NOT EXISTS products (
  id TEXT PRIMARY KEY, merchant_id TEXT NOT NULL REFERENCES merchants(id), sku TEXT NOT NULL, name TEXT NOT NULL,
  price BIGINT NOT NULL CHECK (price >= 0), currency TEXT NOT NULL, stock BIGINT CHECK (stock IS NULL OR stock >= 0),
  barcode TEXT, active BIGINT NOT NULL DEFAULT 1, low_stock_threshold BIGINT, created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL, UNIQUE (merchant_id, sku), UNIQUE (merchant_id, barcode));
CREATE TABLE IF NOT EXISTS stock_movements (
  id TEXT PRIMARY KEY, merchant_id TEXT NOT NULL, product_id TEXT NOT NULL REFERENCES products(id), sku TEXT NOT NULL,
  delta BIGINT NOT NULL, kind TEXT NOT NULL, stock_after BIGINT, payment_id TEXT, refund_id TEXT, reason TEXT,
  actor TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS stock_movements_product ON stock_movements (product_id, id);
CREATE INDEX IF NOT EXISTS stock_movements_payment ON stock_movements (payment_id);
