//! SQLite replay protection: `(scope, nonce)` rows kept until they expire, purged now and then.

use rusqlite::{params, Connection};

use super::{CachedSql, R};

/// Expired nonces are purged on every this-many-th `use_nonce` call.
pub(super) const PURGE_EVERY: u64 = 256;

/// Records `(scope, nonce)` until `expires_at`; `false` if a live row exists (a replay).
/// Deletes every expired row first when `purge` is set.
pub(super) fn use_nonce(
    conn: &Connection,
    scope: &str,
    nonce: &str,
    expires_at: i64,
    now: i64,
    purge: bool,
) -> R<bool> {
    if purge {
        conn.exec_cached("DELETE FROM nonces WHERE expires_at <= ?1", [now])?;
    }
    // Inserts, or takes over a row whose lifetime is over; a live row is a replay.
    let changed = conn.exec_cached(
        "INSERT INTO nonces (scope, nonce, expires_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT(scope, nonce) DO UPDATE SET expires_at = excluded.expires_at \
         WHERE nonces.expires_at <= ?4",
        params![scope, nonce, expires_at, now],
    )?;
    Ok(changed == 1)
}
