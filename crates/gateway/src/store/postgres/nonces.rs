//! PostgreSQL replay protection: `(scope, nonce)` rows (the primary key makes a nonce usable
//! once across every instance) kept until they expire; the background purge deletes expired
//! ones ([`super::purge`]).

use super::{execute, Tx, R};

/// Records `(scope, nonce)` until `expires_at` in the caller's transaction; `false` if a live
/// row exists (a replay). A row whose lifetime is over is taken over. Two transactions racing
/// on one nonce: the second waits for the first's COMMIT and then sees its row.
pub(super) async fn use_nonce(
    tx: &Tx<'_>,
    scope: &str,
    nonce: &str,
    expires_at: i64,
    now: i64,
) -> R<bool> {
    let changed = execute(
        tx,
        "INSERT INTO nonces (scope, nonce, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (scope, nonce) DO UPDATE SET expires_at = excluded.expires_at \
         WHERE nonces.expires_at <= $4",
        &[&scope, &nonce, &expires_at, &now],
    )
    .await?;
    Ok(changed == 1)
}
