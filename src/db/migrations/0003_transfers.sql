-- Wallet core schema version 3: paying a person. A prompt of flow `transfer` names the
-- recipient's gateway (its OCID and verified name); the recipient's own OCID and name are the
-- prompt's `merchant_ocid` and `merchant_name`. NULL for every other flow. Received payments
-- are receipts of flow `received` in the existing `receipts` table. Released: never edit, add
-- 0004_*.sql instead.
ALTER TABLE prompts ADD COLUMN recipient_gateway INTEGER;
ALTER TABLE prompts ADD COLUMN recipient_gateway_name TEXT;
