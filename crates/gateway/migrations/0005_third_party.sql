-- Version 5, third-party settlement (protocol notes §5.6 strategy 3): one durable job per
-- session paid through a common settlement provider. The payer's money sits on a hold account
-- while the job runs `POST /payment/create` at the Merchant Gateway, `POST /transfer/create` at
-- the provider and `POST /payment/settle`; each answer is stored before the next step, so a
-- restart resumes where it stopped. Jobs are claimed with a lease like the queues. A failed
-- job is kept (state `failed`, or `failed_reconcile` when money may have moved at the
-- provider) as the operators' reconciliation record.
-- Also: the txid of each `/transfer/create` result, so `GET /verify/{txid}` finds the proofs
-- this gateway issued as a provider (existing rows are backfilled from their stored result).
-- Released: never edit; add a new file.

CREATE TABLE third_party_jobs (
    session_id          TEXT PRIMARY KEY REFERENCES sessions(id),
    account_id          TEXT NOT NULL REFERENCES accounts(id),
    hold_account        TEXT NOT NULL REFERENCES accounts(id),
    merchant_gateway    INTEGER NOT NULL,
    provider            INTEGER,
    state               TEXT NOT NULL
                        CHECK (state IN ('held', 'created', 'transferred', 'paid', 'failed',
                                         'failed_reconcile')),
    currency            TEXT NOT NULL,
    minor               INTEGER NOT NULL CHECK (minor > 0),
    idempotency_key     TEXT NOT NULL,
    consent_json        TEXT NOT NULL,
    pending_txid        TEXT,
    pending_expires_at  INTEGER,
    provider_proof      TEXT,
    mg_proof            TEXT,
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     INTEGER NOT NULL,
    last_error          TEXT,
    lease_until         INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX third_party_jobs_due ON third_party_jobs(state, next_attempt_at);

ALTER TABLE idempotency ADD COLUMN txid TEXT;
UPDATE idempotency SET txid = json_extract(result_json, '$.proof.txid')
    WHERE kind = 'transfer' AND json_valid(result_json);
CREATE INDEX idempotency_txid ON idempotency(txid) WHERE txid IS NOT NULL;
