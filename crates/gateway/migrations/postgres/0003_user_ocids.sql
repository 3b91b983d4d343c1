-- Issue 19, paying a person: user OCIDs and `received` receipts (as SQLite's
-- 0006_user_ocids.sql).
-- * `user_ocids`: the OCID of the gateway's block given to an account (one each, allocated on
--   its first `GET /app/receive`; both columns unique, so two first calls cannot get two).
-- * `sessions` gains the flows `transfer` (the sender pays a person) and `received` (the
--   recipient's receipt). An internal transfer's receipt carries the sender's txid, so `txid`
--   is unique per side: once among payments, once among receipts.
-- Released: never edit; add a new file.

CREATE TABLE user_ocids (
    ocid        BIGINT PRIMARY KEY,
    account_id  TEXT NOT NULL UNIQUE REFERENCES accounts(id),
    created_at  BIGINT NOT NULL
);

ALTER TABLE sessions DROP CONSTRAINT sessions_flow_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_flow_check
    CHECK (flow IN ('wallet_qr', 'merchant_qr', 'checkout', 'transfer', 'received'));
ALTER TABLE sessions DROP CONSTRAINT sessions_txid_key;
CREATE UNIQUE INDEX sessions_payment_txid ON sessions(txid) WHERE flow <> 'received';
CREATE UNIQUE INDEX sessions_receipt_txid ON sessions(txid) WHERE flow = 'received';
