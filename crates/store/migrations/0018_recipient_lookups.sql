-- How many phones each customer looked up in the current hour, to send money to: the
-- budget that stops a signed-in session from checking which phones have wallets. One
-- row per customer, reused window after window.
CREATE TABLE IF NOT EXISTS recipient_lookups (
  customer_id TEXT PRIMARY KEY, window_start TEXT NOT NULL, lookups BIGINT NOT NULL);
