//! PostgreSQL answers for the operations surface: the write probe behind `/readyz` (refuses a
//! standby or read-only server) and the queue and table sizes behind `/metrics`.

use std::time::Duration;

use deadpool_postgres::GenericClient;

use super::{execute, fail, query_one, OpsCounts, R};

/// Proves the server takes writes now: a standby in recovery is refused by name; then, in a
/// transaction with `lock_timeout` and `statement_timeout` set to `wait`, writes a probe nonce
/// and rolls back (nothing changes).
pub(super) async fn check_writable(
    client: &mut deadpool_postgres::Client,
    wait: Duration,
) -> R<()> {
    let recovery = query_one(&*client, "SELECT pg_is_in_recovery()", &[]).await?;
    if recovery.try_get::<_, bool>(0)? {
        return Err(fail(
            "database is a standby in recovery (read-only): point the gateway at the primary",
        ));
    }
    let millis = wait.as_millis().clamp(1, i64::MAX as u128) as i64;
    let tx = client.transaction().await?;
    let probe = async {
        tx.batch_execute(&format!(
            "SET LOCAL lock_timeout = {millis}; SET LOCAL statement_timeout = {millis};"
        ))
        .await?;
        execute(
            &tx,
            "INSERT INTO nonces (scope, nonce, expires_at) VALUES ('readyz', 'probe', 0) \
             ON CONFLICT (scope, nonce) DO UPDATE SET expires_at = 0",
            &[],
        )
        .await?;
        Ok::<(), super::Fail>(())
    }
    .await;
    let rolled_back = tx.rollback().await;
    probe.map_err(|f| fail(format!("database refuses a write: {}", f.error.0)))?;
    rolled_back?;
    Ok(())
}

/// Pending webhooks, pending wake-ups and stored nonces.
pub(super) async fn counts<C: GenericClient + Sync>(c: &C) -> R<OpsCounts> {
    let row = query_one(
        c,
        "SELECT (SELECT count(*) FROM webhooks WHERE status = 'pending'), \
         (SELECT count(*) FROM push_queue WHERE status = 'pending'), \
         (SELECT count(*) FROM nonces)",
        &[],
    )
    .await?;
    let get = |i: usize| -> R<u64> {
        let n: i64 = row.try_get(i)?;
        u64::try_from(n).map_err(|_| fail(format!("negative count in column {i}")))
    };
    Ok(OpsCounts {
        pending_webhooks: get(0)?,
        pending_pushes: get(1)?,
        nonces: get(2)?,
    })
}
