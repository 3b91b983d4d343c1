-- Version 2, push wake-ups: each device's push token (FCM or APNs) and the durable queue of
-- wake-ups to send. Released: never edit; add 0003_....sql for a change.

-- One token per device; a token belongs to at most one device (registering it from another
-- device moves it there).
CREATE TABLE push_tokens (
    device_id    TEXT PRIMARY KEY REFERENCES devices(device_id),
    provider     TEXT NOT NULL CHECK (provider IN ('fcm', 'apns')),
    token        TEXT NOT NULL,
    environment  TEXT NOT NULL CHECK (environment IN ('production', 'sandbox')),
    updated_at   INTEGER NOT NULL,
    UNIQUE (provider, token)
);

-- Wake-ups, queued in the transaction of their event. The token is copied at queue time, so a
-- row says exactly where it went. A device has at most one pending row (per-device collapse:
-- a newer event replaces the one waiting).
CREATE TABLE push_queue (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id        TEXT NOT NULL,
    provider         TEXT NOT NULL CHECK (provider IN ('fcm', 'apns')),
    token            TEXT NOT NULL,
    environment      TEXT NOT NULL CHECK (environment IN ('production', 'sandbox')),
    kind             TEXT NOT NULL CHECK (kind IN ('payment_request', 'payment_status')),
    session_id       TEXT NOT NULL,
    event_id         INTEGER NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'dead', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    sent_at          INTEGER
);
CREATE UNIQUE INDEX push_queue_one_pending ON push_queue(device_id) WHERE status = 'pending';
CREATE INDEX push_queue_due ON push_queue(status, next_attempt_at);
CREATE INDEX push_queue_token ON push_queue(provider, token) WHERE status = 'pending';
