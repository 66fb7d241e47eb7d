-- The settlement index holds paid payments only. As a full index on (merchant_id, paid_at)
-- it cost PostgreSQL the same as the unique key (merchant_id, out_trade_no) while the
-- table was empty, and a connection that planned the lookup by out_trade_no then kept a
-- plan that reads every payment of the merchant. Statements and settlement ask for a
-- range of paid_at, which implies paid_at IS NOT NULL, so they still use it.
DROP INDEX IF EXISTS payments_merchant_paid;
CREATE INDEX IF NOT EXISTS payments_merchant_paid ON payments (merchant_id, paid_at) WHERE paid_at IS NOT NULL;
