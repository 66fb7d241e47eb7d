-- Indexes hold only the rows their lookups can find. A database puts a row whose key is
-- NULL into a plain index too, so every payment receipt wrote an entry for its NULL
-- refund_id, every wallet payment one for its NULL terminal_id, and every paid payment
-- one into the expiry sweep's index, which looks for pending payments only. A lookup by
-- equality (or a range) on a column implies the column is not NULL, so these lookups
-- still use the partial indexes, in PostgreSQL's generic plans too (store/tests/plans.rs).
DROP INDEX IF EXISTS payments_status_expiry;
CREATE INDEX IF NOT EXISTS payments_pending_expiry ON payments (expires_at) WHERE status = 'pending' AND expires_at IS NOT NULL;
DROP INDEX IF EXISTS receipts_refund;
CREATE INDEX IF NOT EXISTS receipts_refund ON receipts (refund_id) WHERE refund_id IS NOT NULL;
DROP INDEX IF EXISTS payments_terminal_time;
CREATE INDEX IF NOT EXISTS payments_terminal_time ON payments (terminal_id, created_at) WHERE terminal_id IS NOT NULL;
DROP INDEX IF EXISTS payments_customer_time;
CREATE INDEX IF NOT EXISTS payments_customer_time ON payments (customer_id, created_at) WHERE customer_id IS NOT NULL;
DROP INDEX IF EXISTS events_terminal_position;
CREATE INDEX IF NOT EXISTS events_terminal_position ON events (terminal_id, tx_id, seq) WHERE terminal_id IS NOT NULL
