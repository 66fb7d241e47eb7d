-- Operators beside the start-up admin token, each with one role and a token kept only as
-- a hash, and API keys that expire (the old key of a rotation lives on for a grace period).
CREATE TABLE IF NOT EXISTS operators (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL, revoked_at TEXT);
ALTER TABLE api_keys ADD COLUMN expires_at TEXT;
CREATE INDEX IF NOT EXISTS api_keys_merchant ON api_keys (merchant_id);
