-- PostgreSQL version 2, third-party settlement: the same job table as the SQLite migration
-- 0005_third_party.sql (one durable job per session paid through a common settlement
-- provider, its hold, each step's answer, the lease, and the failed jobs kept as the
-- operators' reconciliation records), and the txid of each `/transfer/create` result for
-- `GET /verify/{txid}` (existing rows backfilled from their stored result).
-- Released: never edit; add a new file.

CREATE TABLE third_party_jobs (
    session_id          TEXT PRIMARY KEY REFERENCES sessions(id),
    account_id          TEXT NOT NULL REFERENCES accounts(id),
    hold_account        TEXT NOT NULL REFERENCES accounts(id),
    merchant_gateway    BIGINT NOT NULL,
    provider            BIGINT,
    state               TEXT NOT NULL
                        CHECK (state IN ('held', 'created', 'transferred', 'paid', 'failed',
                                         'failed_reconcile')),
    currency            TEXT NOT NULL,
    minor               BIGINT NOT NULL CHECK (minor > 0),
    idempotency_key     TEXT NOT NULL,
    consent_json        TEXT NOT NULL,
    pending_txid        TEXT,
    pending_expires_at  BIGINT,
    provider_proof      TEXT,
    mg_proof            TEXT,
    attempts            BIGINT NOT NULL DEFAULT 0,
    next_attempt_at     BIGINT NOT NULL,
    last_error          TEXT,
    lease_until         BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX third_party_jobs_due ON third_party_jobs(state, next_attempt_at);

ALTER TABLE idempotency ADD COLUMN txid TEXT;
UPDATE idempotency SET txid = (result_json::jsonb) -> 'proof' ->> 'txid'
    WHERE kind = 'transfer' AND result_json IS NOT NULL;
CREATE INDEX idempotency_txid ON idempotency(txid) WHERE txid IS NOT NULL;
