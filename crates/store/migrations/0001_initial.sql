CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS merchants (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, mcc TEXT NOT NULL, city TEXT NOT NULL, country TEXT NOT NULL,
  currency TEXT NOT NULL, fee_bps BIGINT NOT NULL CHECK (fee_bps >= 0 AND fee_bps <= 10000),
  timezone TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS terminals (
  id TEXT PRIMARY KEY, merchant_id TEXT NOT NULL REFERENCES merchants(id), name TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT PRIMARY KEY, merchant_id TEXT NOT NULL REFERENCES merchants(id), terminal_id TEXT REFERENCES terminals(id),
  role TEXT NOT NULL, secret TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT);
CREATE TABLE IF NOT EXISTS customers (
  id TEXT PRIMARY KEY, phone TEXT NOT NULL UNIQUE, name TEXT NOT NULL, pin_hash TEXT NOT NULL,
  pin_failures BIGINT NOT NULL DEFAULT 0, pin_locks BIGINT NOT NULL DEFAULT 0, pin_locked_until TEXT,
  frozen BIGINT NOT NULL DEFAULT 0, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
  token_hash TEXT PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers(id), expires_at TEXT NOT NULL,
  created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
  id TEXT PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers(id), slot BIGINT NOT NULL UNIQUE,
  secret TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS online_codes (
  code_hash TEXT PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers(id), expires_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS used_codes (code_hash TEXT PRIMARY KEY, used_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, owner_id TEXT NOT NULL, currency TEXT NOT NULL,
  balance BIGINT NOT NULL, CHECK (kind <> 'customer_wallet' OR balance >= 0));
CREATE TABLE IF NOT EXISTS journal_entries (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, ref_id TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS postings (
  seq {SERIAL}, entry_id TEXT NOT NULL REFERENCES journal_entries(id), account_id TEXT NOT NULL REFERENCES accounts(id),
  direction TEXT NOT NULL CHECK (direction IN ('debit', 'credit')), amount BIGINT NOT NULL CHECK (amount > 0),
  currency TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS postings_account ON postings (account_id);
CREATE TABLE IF NOT EXISTS payments (
  id TEXT PRIMARY KEY, merchant_id TEXT NOT NULL REFERENCES merchants(id), terminal_id TEXT,
  out_trade_no TEXT NOT NULL, amount BIGINT NOT NULL CHECK (amount >= 0), currency TEXT NOT NULL,
  subject TEXT NOT NULL, items TEXT NOT NULL, mode TEXT NOT NULL, status TEXT NOT NULL, failure_code TEXT,
  refunded_amount BIGINT NOT NULL DEFAULT 0, fee BIGINT NOT NULL DEFAULT 0, fee_returned BIGINT NOT NULL DEFAULT 0,
  customer_id TEXT, customer_ref TEXT, fingerprint TEXT, qr_ref TEXT UNIQUE, needs_confirm BIGINT NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL, paid_at TEXT, expires_at TEXT,
  CHECK (refunded_amount >= 0 AND refunded_amount <= amount), CHECK (fee_returned >= 0 AND fee_returned <= fee),
  UNIQUE (merchant_id, out_trade_no));
CREATE INDEX IF NOT EXISTS payments_customer ON payments (customer_id);
CREATE TABLE IF NOT EXISTS refunds (
  id TEXT PRIMARY KEY, payment_id TEXT NOT NULL REFERENCES payments(id), merchant_id TEXT NOT NULL,
  out_refund_no TEXT NOT NULL, amount BIGINT NOT NULL CHECK (amount > 0), currency TEXT NOT NULL,
  fee_returned BIGINT NOT NULL, status TEXT NOT NULL, reason TEXT, created_at TEXT NOT NULL,
  UNIQUE (merchant_id, out_refund_no));
CREATE INDEX IF NOT EXISTS refunds_payment ON refunds (payment_id);
CREATE TABLE IF NOT EXISTS top_ups (
  id TEXT PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers(id), reference TEXT NOT NULL UNIQUE,
  amount BIGINT NOT NULL CHECK (amount > 0), currency TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS transfers (
  id TEXT PRIMARY KEY, from_customer_id TEXT NOT NULL, to_customer_id TEXT NOT NULL,
  amount BIGINT NOT NULL CHECK (amount > 0), currency TEXT NOT NULL, client_ref TEXT NOT NULL, created_at TEXT NOT NULL,
  UNIQUE (from_customer_id, client_ref));
CREATE TABLE IF NOT EXISTS wallet_requests (
  customer_id TEXT NOT NULL, client_ref TEXT NOT NULL, payment_id TEXT NOT NULL, PRIMARY KEY (customer_id, client_ref));
CREATE TABLE IF NOT EXISTS events (
  seq {SERIAL}, id TEXT NOT NULL UNIQUE, merchant_id TEXT, customer_id TEXT, kind TEXT NOT NULL, data TEXT NOT NULL,
  created_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_merchant ON events (merchant_id, seq);
CREATE TABLE IF NOT EXISTS audit_log (
  seq {SERIAL}, actor TEXT NOT NULL, action TEXT NOT NULL, object_id TEXT NOT NULL, detail TEXT NOT NULL,
  created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nonces (
  key_id TEXT NOT NULL, nonce TEXT NOT NULL, seen_at BIGINT NOT NULL, PRIMARY KEY (key_id, nonce));
