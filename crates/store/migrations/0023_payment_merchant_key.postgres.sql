-- A payment no longer locks its merchant's row. The foreign key from payments to
-- merchants made every payment take a share lock on the merchant's row, and a busy
-- merchant's payments, many at once, made PostgreSQL build a new multixact (the list of
-- every transaction holding that lock) and rewrite the row's header for each payment
-- (measured: a hot run created 23 pages of multixact members, a spread run none).
-- Nothing is lost by it: merchants are suspended, never deleted (no code path deletes
-- one, and the keys, terminals and codes a payment is taken through still reference the
-- merchant), and a payment is written only for the merchant its request was authorised
-- for, read in the same request.
ALTER TABLE payments DROP CONSTRAINT IF EXISTS payments_merchant_id_fkey
