-- Several nodes on one PostgreSQL: the transaction that wrote each outbox event, so readers
-- take only events whose writers can no longer be in flight (sequence numbers are handed
-- out at insert, not at commit). SQLite has one writer, commits in
-- sequence order, and leaves it 0.
ALTER TABLE events ADD COLUMN tx_id BIGINT NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS events_merchant_position ON events (merchant_id, tx_id, seq);
