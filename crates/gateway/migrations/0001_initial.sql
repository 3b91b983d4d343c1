-- Version 1, the initial gateway schema: accounts and ledger, devices and enrollments, nonces,
-- payment sessions, events, the webhook queue, idempotency keys and incoming proofs.
-- Released: never edit; add 0002_....sql for a change.

CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE balances (
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    currency    TEXT NOT NULL,
    minor       INTEGER NOT NULL,
    PRIMARY KEY (account_id, currency)
) WITHOUT ROWID;

CREATE TABLE ledger_entries (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    reference     TEXT NOT NULL,
    from_account  TEXT NOT NULL REFERENCES accounts(id),
    to_account    TEXT NOT NULL REFERENCES accounts(id),
    currency      TEXT NOT NULL,
    minor         INTEGER NOT NULL CHECK (minor > 0),
    created_at    INTEGER NOT NULL
);
CREATE INDEX ledger_entries_reference ON ledger_entries(reference);
CREATE INDEX ledger_entries_from ON ledger_entries(from_account, id);
CREATE INDEX ledger_entries_to ON ledger_entries(to_account, id);

CREATE TABLE enrollments (
    code_hash       TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts(id),
    expires_at      INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    used_by_device  TEXT,
    used_at         INTEGER
);

CREATE TABLE devices (
    device_id    TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    public_key   TEXT NOT NULL UNIQUE,
    status       TEXT NOT NULL CHECK (status IN ('active', 'rotated', 'revoked')),
    created_at   INTEGER NOT NULL,
    replaced_by  TEXT
);
CREATE INDEX devices_account ON devices(account_id);

CREATE TABLE nonces (
    scope       TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (scope, nonce)
) WITHOUT ROWID;
CREATE INDEX nonces_expires ON nonces(expires_at);

CREATE TABLE sessions (
    id               TEXT PRIMARY KEY,
    flow             TEXT NOT NULL CHECK (flow IN ('wallet_qr', 'merchant_qr', 'checkout')),
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
    txid             TEXT UNIQUE,
    paid_at          INTEGER,
    proof_json       TEXT,
    consent_json     TEXT,
    decline_reason   TEXT
);
CREATE INDEX sessions_account_created ON sessions(account_id, created_at);
CREATE INDEX sessions_status_expires ON sessions(status, expires_at);

CREATE TABLE events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id    TEXT NOT NULL,
    kind          TEXT NOT NULL,
    payload_json  TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX events_account_id ON events(account_id, id);

CREATE TABLE webhooks (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    txid             TEXT NOT NULL UNIQUE,
    target_ocid      INTEGER NOT NULL,
    url              TEXT NOT NULL,
    body             TEXT NOT NULL,
    status           TEXT NOT NULL
                     CHECK (status IN ('pending', 'delivered', 'rejected', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    created_at       INTEGER NOT NULL
);
CREATE INDEX webhooks_due ON webhooks(status, next_attempt_at);

CREATE TABLE idempotency (
    kind         TEXT NOT NULL CHECK (kind IN ('settle', 'transfer')),
    key          TEXT NOT NULL,
    account_id   TEXT,
    session_id   TEXT,
    result_json  TEXT,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;

CREATE TABLE incoming_proofs (
    issuer       INTEGER NOT NULL,
    txid         TEXT NOT NULL,
    proof_json   TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (issuer, txid)
) WITHOUT ROWID;
