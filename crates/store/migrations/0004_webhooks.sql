-- Webhooks: one endpoint per merchant (with the previous secret during a rotation), one
-- delivery per outbox event per endpoint (its id is the event id: the stable webhook-id),
-- and every attempt with its answer.
CREATE TABLE IF NOT EXISTS webhook_endpoints (
  merchant_id TEXT PRIMARY KEY REFERENCES merchants(id), url TEXT NOT NULL, secret TEXT NOT NULL,
  previous_secret TEXT, previous_until TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
  id TEXT PRIMARY KEY, merchant_id TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')), attempts BIGINT NOT NULL DEFAULT 0,
  next_attempt_at TEXT NOT NULL, last_status_code BIGINT, last_error TEXT, created_at TEXT NOT NULL,
  delivered_at TEXT);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS webhook_deliveries_merchant ON webhook_deliveries (merchant_id, created_at);
CREATE TABLE IF NOT EXISTS webhook_attempts (
  seq {SERIAL}, delivery_id TEXT NOT NULL, node TEXT NOT NULL, attempted_at TEXT NOT NULL, status_code BIGINT,
  error TEXT, duration_ms BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS webhook_attempts_delivery ON webhook_attempts (delivery_id, seq);
