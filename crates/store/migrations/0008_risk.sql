-- Risk controls: a tier per customer, the indexes the velocity and daily-limit counts
-- read, and every risk decline kept with the rule, what was observed and the threshold.
ALTER TABLE customers ADD COLUMN tier TEXT NOT NULL DEFAULT 'standard';
CREATE INDEX IF NOT EXISTS payments_customer_time ON payments (customer_id, created_at);
CREATE INDEX IF NOT EXISTS payments_terminal_time ON payments (terminal_id, created_at);
CREATE INDEX IF NOT EXISTS transfers_from_time ON transfers (from_customer_id, created_at);
CREATE TABLE IF NOT EXISTS risk_decisions (
  id TEXT PRIMARY KEY, subject_id TEXT NOT NULL, payment_id TEXT, code TEXT NOT NULL, rule TEXT NOT NULL,
  observed BIGINT NOT NULL, threshold BIGINT NOT NULL, rules_version BIGINT NOT NULL, created_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS risk_decisions_subject ON risk_decisions (subject_id, created_at);
CREATE INDEX IF NOT EXISTS risk_decisions_payment ON risk_decisions (payment_id);
