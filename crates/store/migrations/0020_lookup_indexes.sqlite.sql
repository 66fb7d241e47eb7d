-- The lookup of a refund by its merchant and out_refund_no goes through the unique key,
-- as the lookup of a payment does since 0019 (see that migration). The statement index
-- (merchant_id, created_at) is partial, so it is never a candidate for that lookup, and
-- statements and settlement, which ask for a range of created_at, still use it.
-- SQLite picks the unique key already (its planner counts the equal columns), and
-- its products keep their table constraints, which it cannot drop.
DROP INDEX IF EXISTS refunds_merchant_created;
CREATE INDEX IF NOT EXISTS refunds_merchant_created ON refunds (merchant_id, created_at) WHERE created_at IS NOT NULL;
