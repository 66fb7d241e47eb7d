-- The audit log becomes hash-chained: each record links to the previous one of its chain.
-- Rows written before this migration have no link and are reported as unsealed.
ALTER TABLE audit_log ADD COLUMN chain BIGINT;
ALTER TABLE audit_log ADD COLUMN chain_seq BIGINT;
ALTER TABLE audit_log ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_log ADD COLUMN hash TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS audit_log_chain ON audit_log (chain, chain_seq);
CREATE TABLE IF NOT EXISTS audit_heads (chain BIGINT PRIMARY KEY, seq_no BIGINT NOT NULL, hash TEXT NOT NULL);
