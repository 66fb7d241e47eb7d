-- Merchant review (KYC): one application per merchant, replaced when the merchant applies
-- again. The owner's identity number is sealed under the master key. Documents are kept
-- by SHA-256 only, as JSON.
CREATE TABLE IF NOT EXISTS merchant_applications (
  merchant_id TEXT PRIMARY KEY REFERENCES merchants(id), legal_name TEXT NOT NULL, licence_number TEXT NOT NULL,
  owner_name TEXT NOT NULL, owner_id_number TEXT NOT NULL, id_number_tail TEXT NOT NULL, documents TEXT NOT NULL,
  status TEXT NOT NULL, reason TEXT, submitted_at TEXT NOT NULL, decided_at TEXT, decided_by TEXT);
