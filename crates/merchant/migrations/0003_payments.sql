-- Merchant schema version 3, third-party settlement (the merchant as its own Merchant
-- Gateway): the pending payments of POST /payment/create and how each was completed.
-- Released: never edit, add 0004_*.sql instead.
CREATE TABLE payments (
    -- 'mgp_' + 32 lowercase hex.
    txid                TEXT PRIMARY KEY,
    -- The OCID that created it (X-OC-ID of /payment/create): the only one who may settle or
    -- verify it.
    creator             INTEGER NOT NULL,
    -- The creator's `reference`: creating again with the same one gives this payment back.
    reference           TEXT,
    -- The merchant paid (`to`).
    merchant            INTEGER NOT NULL,
    -- Exactly as the creator sent it.
    amount              TEXT NOT NULL,
    currency            TEXT NOT NULL,
    memo                TEXT,
    -- The order paid, if the creator named one.
    order_id            TEXT REFERENCES orders(id),
    -- JSON array of the settlement providers whose proofs may settle it.
    accepts             TEXT NOT NULL,
    status              TEXT NOT NULL
                        CHECK (status IN ('pending_settlement', 'completed', 'expired')),
    created_at          INTEGER NOT NULL,
    expires_at          INTEGER NOT NULL,
    -- The provider's proof that completed it: issuer, txid, {proof, signature} as received.
    provider_issuer     INTEGER,
    provider_txid       TEXT,
    provider_proof_json TEXT,
    -- Our own signed proof to the merchant, {proof, signature}.
    proof_json          TEXT,
    completed_at        INTEGER,
    UNIQUE (creator, reference),
    UNIQUE (provider_issuer, provider_txid),
    CHECK ((status = 'completed') = (proof_json IS NOT NULL))
);
CREATE INDEX payments_order ON payments(order_id);
