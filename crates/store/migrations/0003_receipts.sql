-- Receipt signing keys (Ed25519 seeds, hex) and every receipt issued. The newest key signs;
-- older ones stay so receipts they signed keep verifying.
CREATE TABLE IF NOT EXISTS receipt_keys (
  kid TEXT PRIMARY KEY, seed TEXT NOT NULL, public_key TEXT NOT NULL, generation BIGINT NOT NULL UNIQUE, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS receipts (
  id TEXT PRIMARY KEY, payment_id TEXT NOT NULL, refund_id TEXT, merchant_id TEXT NOT NULL, customer_id TEXT,
  kid TEXT NOT NULL, jws TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS receipts_payment ON receipts (payment_id, created_at);
CREATE INDEX IF NOT EXISTS receipts_refund ON receipts (refund_id);
