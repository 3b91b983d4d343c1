-- Wallet core schema version 2: honest outcomes. `outbox.maybe_sent` says an attempt of the
-- decision may have reached the gateway (set before each attempt, cleared again when the
-- attempt surely did not reach it), so a lost answer is reported as a pending outcome and
-- resolved, never as "not sent". `told_statuses` holds the payment statuses already told to
-- the app's listener, so a status resolved by the core and the same status from the event
-- stream are told once. Released: never edit, add 0003_*.sql instead.
ALTER TABLE outbox ADD COLUMN maybe_sent INTEGER NOT NULL DEFAULT 0;
-- Decisions left by an older version may have been sent: their outcome is unknown.
UPDATE outbox SET maybe_sent = 1;
CREATE TABLE told_statuses (
    session_id TEXT NOT NULL,
    status     TEXT NOT NULL,
    PRIMARY KEY (session_id, status)
);
