-- Version 6 (issue 19, paying a person): user OCIDs and `received` receipts.
-- * `user_ocids`: the OCID of the gateway's block given to an account (one each, allocated on
--   its first `GET /app/receive`; both columns unique, so two first calls cannot get two).
-- * `sessions` gains the flows `transfer` (the sender pays a person) and `received` (the
--   recipient's receipt). An internal transfer's receipt carries the sender's txid, so `txid`
--   is unique per side: once among payments, once among receipts. SQLite cannot change a
--   CHECK constraint, so the table is rebuilt with the same columns and indexes.
-- Other tables may reference `sessions(id)` (the third-party jobs): with deferred foreign
-- keys the rows are copied aside, the table dropped (its rows' children counted as orphans)
-- and created anew, and the copy's rows put back (each found parent uncounting them), so the
-- references hold again at COMMIT, where they are checked.
-- Released: never edit; add a new file.

PRAGMA defer_foreign_keys = ON;

CREATE TABLE user_ocids (
    ocid        INTEGER PRIMARY KEY,
    account_id  TEXT NOT NULL UNIQUE REFERENCES accounts(id),
    created_at  INTEGER NOT NULL
);

CREATE TABLE sessions_v5 AS SELECT * FROM sessions;
DROP TABLE sessions;
CREATE TABLE sessions (
    id               TEXT PRIMARY KEY,
    flow             TEXT NOT NULL
                     CHECK (flow IN ('wallet_qr', 'merchant_qr', 'checkout', 'transfer', 'received')),
    status           TEXT NOT NULL
                     CHECK (status IN ('pending', 'order_received', 'paid', 'declined', 'expired')),
    account_id       TEXT REFERENCES accounts(id),
    expires_at       INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    status_token     TEXT NOT NULL UNIQUE,
    order_json       TEXT,
    order_signature  TEXT,
    order_hash       TEXT,
    merchant_ocid    INTEGER,
    merchant_name    TEXT,
    merchant_icon    TEXT,
    order_id         TEXT,
    amount           TEXT,
    amount_minor     INTEGER,
    currency         TEXT,
    urls_json        TEXT,
    submitted_by     INTEGER,
    txid             TEXT,
    paid_at          INTEGER,
    proof_json       TEXT,
    consent_json     TEXT,
    decline_reason   TEXT
);
INSERT INTO sessions (id, flow, status, account_id, expires_at, created_at, status_token,
    order_json, order_signature, order_hash, merchant_ocid, merchant_name, merchant_icon,
    order_id, amount, amount_minor, currency, urls_json, submitted_by, txid, paid_at,
    proof_json, consent_json, decline_reason)
SELECT id, flow, status, account_id, expires_at, created_at, status_token,
    order_json, order_signature, order_hash, merchant_ocid, merchant_name, merchant_icon,
    order_id, amount, amount_minor, currency, urls_json, submitted_by, txid, paid_at,
    proof_json, consent_json, decline_reason
FROM sessions_v5;
DROP TABLE sessions_v5;
CREATE INDEX sessions_account_created ON sessions(account_id, created_at);
CREATE INDEX sessions_status_expires ON sessions(status, expires_at);
CREATE UNIQUE INDEX sessions_payment_txid ON sessions(txid) WHERE flow <> 'received';
CREATE UNIQUE INDEX sessions_receipt_txid ON sessions(txid) WHERE flow = 'received';
