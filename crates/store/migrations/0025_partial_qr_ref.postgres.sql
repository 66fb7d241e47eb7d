-- The unique key of qr_ref holds only the payments that have one (a merchant QR's), as
-- migration 24 does for other indexes: a till's payment wrote an entry for its NULL.
ALTER TABLE payments DROP CONSTRAINT IF EXISTS payments_qr_ref_key;
CREATE UNIQUE INDEX IF NOT EXISTS payments_qr_ref ON payments (qr_ref) WHERE qr_ref IS NOT NULL
