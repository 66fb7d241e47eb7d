-- PIN checks in flight: a check reserves a row before its slow Argon2 work, so however
-- many arrive at once, at most five wrong PINs are weighed per lock cycle. A row left by a
-- crash expires by itself.
CREATE TABLE IF NOT EXISTS pin_checks (
  id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, expires_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS pin_checks_customer ON pin_checks (customer_id);
-- Devices can be revoked: by the customer, or with every session by the risk officer.
ALTER TABLE devices ADD COLUMN revoked_at TEXT;
-- Bad payment codes, counted per till or key and per merchant in fixed windows.
CREATE TABLE IF NOT EXISTS code_guesses (
  scope TEXT PRIMARY KEY, window_start TEXT NOT NULL, bad BIGINT NOT NULL);
-- The expiry sweep finds pending payments past their time.
CREATE INDEX IF NOT EXISTS payments_status_expiry ON payments (status, expires_at);
