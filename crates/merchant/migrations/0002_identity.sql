-- Merchant schema version 2, identity: the OCID and public key this database was created
-- under. The newest row is current; a merchant whose loaded key or OCID differs from it
-- refuses to start. Released: never edit, add 0003_*.sql instead.
CREATE TABLE identity_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ocid        INTEGER NOT NULL,
    public_key  TEXT NOT NULL,
    -- 'first_start' (recorded by the first start) or 'rotation'.
    reason      TEXT NOT NULL CHECK (reason IN ('first_start', 'rotation')),
    -- Unix seconds when this key became current.
    created_at  INTEGER NOT NULL
);
