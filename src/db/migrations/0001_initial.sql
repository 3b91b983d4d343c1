-- Wallet core schema version 1: settings, prompts, refused prompts, the event log, the
-- decision outbox and receipts. Released: never edit, add 0002_*.sql instead.
-- This folder is src/db/migrations/, next to src/db.rs which includes it, rather than a
-- migrations/ folder at the repository root: the root is the whole workspace (the gateway and
-- the merchant have their own migrations), so a root folder would not say whose schema it is.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE prompts (
    session_id     TEXT PRIMARY KEY,
    flow           TEXT NOT NULL,
    merchant_ocid  INTEGER NOT NULL,
    merchant_name  TEXT,
    merchant_icon  TEXT,
    order_id       TEXT NOT NULL,
    reference      TEXT,
    memo           TEXT,
    items_json     TEXT NOT NULL,
    amount         TEXT NOT NULL,
    currency       TEXT NOT NULL,
    expires_at     INTEGER NOT NULL,
    order_hash     TEXT NOT NULL,
    received_at    INTEGER NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'paid', 'declined', 'expired')),
    announced      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX prompts_pending ON prompts (status, received_at);
CREATE TABLE rejected_prompts (
    session_id  TEXT PRIMARY KEY,
    reason      TEXT NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    session_id  TEXT,
    data        TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    delivered   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX events_undelivered ON events (delivered, id);
CREATE TABLE outbox (
    session_id      TEXT PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('confirm', 'decline')),
    idempotency_key TEXT NOT NULL,
    reason          TEXT,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT
);
CREATE TABLE receipts (
    session_id     TEXT PRIMARY KEY,
    flow           TEXT NOT NULL,
    status         TEXT NOT NULL,
    merchant_ocid  INTEGER,
    merchant_name  TEXT,
    order_id       TEXT,
    amount         TEXT,
    currency       TEXT,
    created_at     INTEGER NOT NULL,
    paid_at        INTEGER,
    txid           TEXT,
    proof_json     TEXT,
    proof_issuer   INTEGER,
    proof_verified INTEGER NOT NULL DEFAULT 0,
    decline_reason TEXT,
    redirect_url   TEXT
);
CREATE INDEX receipts_newest ON receipts (created_at DESC, session_id DESC);
