-- Version 3, identity: the OCID and public key this database was created under, and every
-- on-purpose key rotation since. The newest row is the current identity; a gateway whose
-- loaded key or OCID differs from it refuses to start. Released: never edit; add a new file.

CREATE TABLE identity_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ocid        INTEGER NOT NULL,
    public_key  TEXT NOT NULL,
    -- 'first_start': recorded by the first start; 'rotation': `rotate-key`.
    reason      TEXT NOT NULL CHECK (reason IN ('first_start', 'rotation')),
    -- Unix seconds when this key became current.
    created_at  INTEGER NOT NULL
);
