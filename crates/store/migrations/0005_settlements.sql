-- One row per merchant, business day and currency once settled: what was paid out (with
-- its ledger entry), or the negative balance carried forward when nothing was owed.
CREATE TABLE IF NOT EXISTS settlements (
  id TEXT PRIMARY KEY, merchant_id TEXT NOT NULL REFERENCES merchants(id), business_date TEXT NOT NULL,
  currency TEXT NOT NULL, amount BIGINT NOT NULL CHECK (amount >= 0), carried BIGINT NOT NULL CHECK (carried <= 0),
  entry_id TEXT, created_at TEXT NOT NULL, UNIQUE (merchant_id, business_date, currency));
CREATE INDEX IF NOT EXISTS journal_entries_ref ON journal_entries (ref_id);
CREATE INDEX IF NOT EXISTS postings_entry ON postings (entry_id);
CREATE INDEX IF NOT EXISTS payments_merchant_paid ON payments (merchant_id, paid_at);
CREATE INDEX IF NOT EXISTS refunds_merchant_created ON refunds (merchant_id, created_at);
