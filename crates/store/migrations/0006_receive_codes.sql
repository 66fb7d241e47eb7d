-- A person's receive code: an opaque token a friend scans to transfer money to them.
CREATE TABLE IF NOT EXISTS receive_codes (
  token TEXT PRIMARY KEY, customer_id TEXT NOT NULL UNIQUE REFERENCES customers(id), created_at TEXT NOT NULL);
