-- Merchant schema version 1: orders, accepted proofs (unique on issuer and txid) and the
-- request nonces of authenticated endpoints. Released: never edit, add 0002_*.sql instead.
CREATE TABLE orders (
    id             TEXT PRIMARY KEY,
    order_json     TEXT NOT NULL,
    signature      TEXT NOT NULL,
    amount         TEXT NOT NULL,
    currency       TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'paid', 'cancelled')),
    txid           TEXT,
    issuer         INTEGER,
    paid_at        INTEGER,
    proof_json     TEXT,
    gateway_ocid   INTEGER,
    status_url     TEXT,
    checkout_url   TEXT
);

CREATE TABLE proofs (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    issuer         INTEGER NOT NULL,
    txid           TEXT NOT NULL,
    order_id       TEXT NOT NULL REFERENCES orders(id),
    envelope_json  TEXT NOT NULL,
    extra_payment  INTEGER NOT NULL DEFAULT 0,
    received_at    INTEGER NOT NULL,
    UNIQUE (issuer, txid)
);
CREATE INDEX proofs_order ON proofs(order_id);

CREATE TABLE nonces (
    scope       TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (scope, nonce)
) WITHOUT ROWID;
CREATE INDEX nonces_expires ON nonces(expires_at);
