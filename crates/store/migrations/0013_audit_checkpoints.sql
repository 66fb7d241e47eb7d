-- Signed checkpoints of the audit log: each holds every chain's head (last sequence number
-- and hash) as a JWS signed with the platform's receipt key, so verify-audit finds a chain
-- cut at its tail or removed whole.
CREATE TABLE IF NOT EXISTS audit_checkpoints (
  seq {SERIAL}, created_at TEXT NOT NULL, kid TEXT NOT NULL, jws TEXT NOT NULL);
