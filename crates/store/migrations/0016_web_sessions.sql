-- Browser sessions of the till and back office (a merchant key signed in) and of the
-- operator's console (an operator signed in), kept by the hash of the cookie's token.
-- A till may hold a manager's key for one refund, until manager_until. Wallet pages use
-- the wallet's own sessions table, so signing a customer out everywhere covers them.
CREATE TABLE IF NOT EXISTS web_sessions (
  token_hash TEXT PRIMARY KEY, realm TEXT NOT NULL, subject_id TEXT NOT NULL, manager_key_id TEXT,
  manager_until TEXT, created_at TEXT NOT NULL, expires_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS web_sessions_subject ON web_sessions (subject_id);
