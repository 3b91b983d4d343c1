-- PostgreSQL version 1: the whole gateway schema, the same tables as the SQLite migrations
-- 0001-0004 (accounts and ledger, devices and enrollments, nonces, payment sessions, events,
-- the webhook queue, idempotency keys, incoming proofs, push tokens and the push queue, the
-- identity keys, and the queue leases) in PostgreSQL types: money is BIGINT minor units, ids
-- come from identity sequences, and the rules the database holds are constraints and indexes.
-- Released: never edit; add 0002_....sql for a change.

CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE balances (
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    currency    TEXT NOT NULL,
    minor       BIGINT NOT NULL,
    PRIMARY KEY (account_id, currency)
);

CREATE TABLE ledger_entries (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reference     TEXT NOT NULL,
    from_account  TEXT NOT NULL REFERENCES accounts(id),
    to_account    TEXT NOT NULL REFERENCES accounts(id),
    currency      TEXT NOT NULL,
    minor         BIGINT NOT NULL CHECK (minor > 0),
    created_at    BIGINT NOT NULL
);
CREATE INDEX ledger_entries_reference ON ledger_entries(reference);
CREATE INDEX ledger_entries_from ON ledger_entries(from_account, id);
CREATE INDEX ledger_entries_to ON ledger_entries(to_account, id);

CREATE TABLE enrollments (
    code_hash       TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts(id),
    expires_at      BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    used_by_device  TEXT,
    used_at         BIGINT
);

CREATE TABLE devices (
    device_id    TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    public_key   TEXT NOT NULL UNIQUE,
    status       TEXT NOT NULL CHECK (status IN ('active', 'rotated', 'revoked')),
    created_at   BIGINT NOT NULL,
    replaced_by  TEXT
);
CREATE INDEX devices_account ON devices(account_id);

-- Replay protection: the primary key makes a nonce usable once across every instance.
CREATE TABLE nonces (
    scope       TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (scope, nonce)
);
CREATE INDEX nonces_expires ON nonces(expires_at);

CREATE TABLE sessions (
    id               TEXT PRIMARY KEY,
    flow             TEXT NOT NULL CHECK (flow IN ('wallet_qr', 'merchant_qr', 'checkout')),
    status           TEXT NOT NULL
                     CHECK (status IN ('pending', 'order_received', 'paid', 'declined', 'expired')),
    account_id       TEXT REFERENCES accounts(id),
    expires_at       BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    status_token     TEXT NOT NULL UNIQUE,
    order_json       TEXT,
    order_signature  TEXT,
    order_hash       TEXT,
    merchant_ocid    BIGINT,
    merchant_name    TEXT,
    merchant_icon    TEXT,
    order_id         TEXT,
    amount           TEXT,
    amount_minor     BIGINT,
    currency         TEXT,
    urls_json        TEXT,
    submitted_by     BIGINT,
    txid             TEXT UNIQUE,
    paid_at          BIGINT,
    proof_json       TEXT,
    consent_json     TEXT,
    decline_reason   TEXT
);
CREATE INDEX sessions_account_created ON sessions(account_id, created_at);
CREATE INDEX sessions_status_expires ON sessions(status, expires_at);

-- Event ids come from one sequence (never reused); an account's events are inserted under a
-- per-account advisory lock so they become visible in id order.
CREATE TABLE events (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id    TEXT NOT NULL,
    kind          TEXT NOT NULL,
    payload_json  TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX events_account_id ON events(account_id, id);

-- One delivery per txid; `lease_until` is the instance's claim on a row it is delivering.
CREATE TABLE webhooks (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txid             TEXT NOT NULL UNIQUE,
    target_ocid      BIGINT NOT NULL,
    url              TEXT NOT NULL,
    body             TEXT NOT NULL,
    status           TEXT NOT NULL
                     CHECK (status IN ('pending', 'delivered', 'rejected', 'failed')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    lease_until      BIGINT
);
CREATE INDEX webhooks_due ON webhooks(status, next_attempt_at);

CREATE TABLE idempotency (
    kind         TEXT NOT NULL CHECK (kind IN ('settle', 'transfer')),
    key          TEXT NOT NULL,
    account_id   TEXT,
    session_id   TEXT,
    result_json  TEXT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (kind, key)
);

CREATE TABLE incoming_proofs (
    issuer       BIGINT NOT NULL,
    txid         TEXT NOT NULL,
    proof_json   TEXT NOT NULL,
    received_at  BIGINT NOT NULL,
    PRIMARY KEY (issuer, txid)
);

-- One token per device; a token belongs to at most one device.
CREATE TABLE push_tokens (
    device_id    TEXT PRIMARY KEY REFERENCES devices(device_id),
    provider     TEXT NOT NULL CHECK (provider IN ('fcm', 'apns')),
    token        TEXT NOT NULL,
    environment  TEXT NOT NULL CHECK (environment IN ('production', 'sandbox')),
    updated_at   BIGINT NOT NULL,
    UNIQUE (provider, token)
);

-- Wake-ups, queued in the transaction of their event; at most one pending row per device.
CREATE TABLE push_queue (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id        TEXT NOT NULL,
    provider         TEXT NOT NULL CHECK (provider IN ('fcm', 'apns')),
    token            TEXT NOT NULL,
    environment      TEXT NOT NULL CHECK (environment IN ('production', 'sandbox')),
    kind             TEXT NOT NULL CHECK (kind IN ('payment_request', 'payment_status')),
    session_id       TEXT NOT NULL,
    event_id         BIGINT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'dead', 'failed')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    sent_at          BIGINT,
    lease_until      BIGINT
);
CREATE UNIQUE INDEX push_queue_one_pending ON push_queue(device_id) WHERE status = 'pending';
CREATE INDEX push_queue_due ON push_queue(status, next_attempt_at);
CREATE INDEX push_queue_token ON push_queue(provider, token) WHERE status = 'pending';

-- The OCID and public key the database belongs to; the newest row is current.
CREATE TABLE identity_keys (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ocid        BIGINT NOT NULL,
    public_key  TEXT NOT NULL,
    reason      TEXT NOT NULL CHECK (reason IN ('first_start', 'rotation')),
    created_at  BIGINT NOT NULL
);
