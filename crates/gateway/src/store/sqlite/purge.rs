//! SQLite side of the background purge and of the per-account cap on open wallet sessions:
//! bounded batches of old never-paid expired sessions and of nonces past their lifetime, and
//! the count of an account's open wallet QR sessions.

use rusqlite::{params, Connection};

use super::{CachedSql, R};
use crate::store::{OpenSessions, PurgeCounts};

/// Deletes at most `limit` sessions that are `expired`, were never paid (no txid, no payment
/// time, no proof, no consent) and expired at or before `expired_before`, and at most `limit`
/// nonces whose lifetime ended at or before `now`. Both deletes walk an index
/// (`sessions_status_expires`, `nonces_expires`), one transaction.
pub(super) fn purge(
    conn: &mut Connection,
    expired_before: i64,
    now: i64,
    limit: u32,
) -> R<PurgeCounts> {
    let tx = conn.savepoint()?;
    let sessions = tx.exec_cached(
        "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions \
         WHERE status = 'expired' AND expires_at <= ?1 AND txid IS NULL AND paid_at IS NULL \
         AND proof_json IS NULL AND consent_json IS NULL LIMIT ?2)",
        params![expired_before, limit],
    )?;
    // `nonces` is a WITHOUT ROWID table: delete by its key.
    let nonces = tx.exec_cached(
        "DELETE FROM nonces WHERE (scope, nonce) IN (SELECT scope, nonce FROM nonces \
         WHERE expires_at <= ?1 LIMIT ?2)",
        params![now, limit],
    )?;
    tx.commit()?;
    Ok(PurgeCounts {
        sessions: sessions as u64,
        nonces: nonces as u64,
    })
}

/// The account's wallet QR sessions created after `created_after` that are still open
/// (`pending` or `order_received`, not yet expired at `now`), and the earliest expiry of them.
pub(super) fn open_wallet_sessions(
    conn: &Connection,
    account_id: &str,
    created_after: i64,
    now: i64,
) -> R<OpenSessions> {
    let (count, earliest): (i64, Option<i64>) = conn.row_cached(
        "SELECT COUNT(*), MIN(expires_at) FROM sessions WHERE account_id = ?1 \
         AND created_at > ?2 AND flow = 'wallet_qr' \
         AND status IN ('pending', 'order_received') AND expires_at > ?3",
        params![account_id, created_after, now],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    Ok(OpenSessions {
        count: u64::try_from(count).unwrap_or(0),
        earliest_expiry: earliest,
    })
}
