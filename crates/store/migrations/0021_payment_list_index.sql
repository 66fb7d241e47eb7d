-- A merchant's payment list (newest first, a page before a cursor) reads its page from an
-- index of its own instead of every payment of the merchant. It is partial, as the list
-- is (payments made through the API have a request fingerprint), so a lookup by
-- out_trade_no is never planned onto it (see 0019).
CREATE INDEX IF NOT EXISTS payments_merchant_list ON payments (merchant_id, id) WHERE fingerprint IS NOT NULL;
-- payments_customer_time (customer_id, created_at) serves every lookup by customer, so
-- the index of customer_id alone is one write per payment that nothing needs.
DROP INDEX IF EXISTS payments_customer;
