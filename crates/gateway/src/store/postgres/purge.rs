//! PostgreSQL side of the background purge and of the per-account cap on open wallet
//! sessions: bounded batches of old never-paid expired sessions and of nonces past their
//! lifetime, and the count of an account's open wallet QR sessions.

use deadpool_postgres::GenericClient;

use super::{execute, query_one, Step, Tx, R};
use crate::store::{OpenSessions, PurgeCounts};

/// Deletes at most `limit` sessions that are `expired`, were never paid and expired at or
/// before `expired_before`, and at most `limit` nonces whose lifetime ended at or before
/// `now`, in one transaction (rows another instance is purging are skipped).
pub(super) async fn purge(
    tx: &Tx<'_>,
    expired_before: i64,
    now: i64,
    limit: u32,
) -> R<Step<PurgeCounts>> {
    let limit = i64::from(limit);
    let sessions = execute(
        tx,
        "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions \
         WHERE status = 'expired' AND expires_at <= $1 AND txid IS NULL AND paid_at IS NULL \
         AND proof_json IS NULL AND consent_json IS NULL LIMIT $2 FOR UPDATE SKIP LOCKED)",
        &[&expired_before, &limit],
    )
    .await?;
    let nonces = execute(
        tx,
        "DELETE FROM nonces WHERE (scope, nonce) IN (SELECT scope, nonce FROM nonces \
         WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
        &[&now, &limit],
    )
    .await?;
    Ok(Step::Commit(PurgeCounts { sessions, nonces }))
}

/// The account's wallet QR sessions created after `created_after` that are still open
/// (`pending` or `order_received`, not yet expired at `now`), and the earliest expiry of them.
pub(super) async fn open_wallet_sessions<C: GenericClient + Sync>(
    c: &C,
    account_id: &str,
    created_after: i64,
    now: i64,
) -> R<OpenSessions> {
    let row = query_one(
        c,
        "SELECT COUNT(*), MIN(expires_at) FROM sessions WHERE account_id = $1 \
         AND created_at > $2 AND flow = 'wallet_qr' \
         AND status IN ('pending', 'order_received') AND expires_at > $3",
        &[&account_id, &created_after, &now],
    )
    .await?;
    let count: i64 = row.try_get(0)?;
    Ok(OpenSessions {
        count: u64::try_from(count).unwrap_or(0),
        earliest_expiry: row.try_get(1)?,
    })
}
