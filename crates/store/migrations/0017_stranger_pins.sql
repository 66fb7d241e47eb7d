-- The lockout of phones that belong to no customer: a sign-in for an unknown phone counts
-- wrong PINs and locks exactly as a customer's would, so the lockout cannot tell which
-- phones exist. Kept by a keyed hash of the phone, never the phone itself. Rows idle past
-- their lock are deleted by the expiry sweep.
CREATE TABLE IF NOT EXISTS stranger_pins (
  phone_key TEXT PRIMARY KEY, pin_failures BIGINT NOT NULL, pin_locks BIGINT NOT NULL,
  pin_locked_until TEXT, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS stranger_pins_updated ON stranger_pins (updated_at);
