-- The terminal an outbox event belongs to (its payment's till), so a terminal key's live
-- feed carries that till's events only. Events written before this migration have none
-- and are shown to merchant and manager keys only.
ALTER TABLE events ADD COLUMN terminal_id TEXT;
CREATE INDEX IF NOT EXISTS events_terminal_position ON events (terminal_id, tx_id, seq);
