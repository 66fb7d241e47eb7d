-- The newest event (where a feed opened without Last-Event-ID starts, and what /healthz
-- reads) is the last entry of an index on the position (tx_id, seq) instead of a scan
-- and sort of the whole outbox. The index of (merchant_id, seq) goes: the feeds read by
-- (merchant_id, tx_id, seq) since migration 2, and nothing reads by it any more.
DROP INDEX IF EXISTS events_merchant;
CREATE INDEX IF NOT EXISTS events_position ON events (tx_id, seq);
