//! SQLite answers for the operations surface: the write probe behind `/readyz` and the queue
//! and table sizes behind `/metrics`.

use std::time::Duration;

use rusqlite::Connection;

use super::{fail, CachedSql, OpsCounts, R};

/// Takes the write lock (`BEGIN IMMEDIATE`), writes a probe nonce and rolls back, waiting at
/// most `wait` for another writer. The connection's own busy timeout is restored afterwards.
pub(super) fn check_writable(conn: &mut Connection, wait: Duration) -> R<()> {
    let normal: i64 = conn.row_cached("PRAGMA busy_timeout", [], |r| r.get(0))?;
    conn.busy_timeout(wait)?;
    let probe = probe_write(conn);
    let restored = conn.busy_timeout(Duration::from_millis(normal.max(0).unsigned_abs()));
    probe?;
    restored?;
    Ok(())
}

/// The probe itself: the transaction is dropped (rolled back) whatever happens.
fn probe_write(conn: &mut Connection) -> R<()> {
    let tx = opencharge_sqlite::write_tx(conn).map_err(|e| {
        fail(format!(
            "database does not take the write lock: {e} (another process holding a write \
             transaction, a read-only file or file system?)"
        ))
    })?;
    tx.exec_cached(
        "INSERT INTO nonces (scope, nonce, expires_at) VALUES ('readyz', 'probe', 0) \
         ON CONFLICT(scope, nonce) DO UPDATE SET expires_at = 0",
        [],
    )
    .map_err(|e| fail(format!("database refuses a write: {e}")))?;
    tx.rollback()?;
    Ok(())
}

/// Pending webhooks, pending wake-ups and stored nonces.
pub(super) fn counts(conn: &mut Connection) -> R<OpsCounts> {
    let count = |sql: &str| -> R<u64> {
        let n: i64 = conn.prepare_cached(sql)?.query_row([], |r| r.get(0))?;
        u64::try_from(n).map_err(|_| fail(format!("negative count from {sql}")))
    };
    Ok(OpsCounts {
        pending_webhooks: count("SELECT count(*) FROM webhooks WHERE status = 'pending'")?,
        pending_pushes: count("SELECT count(*) FROM push_queue WHERE status = 'pending'")?,
        nonces: count("SELECT count(*) FROM nonces")?,
    })
}
