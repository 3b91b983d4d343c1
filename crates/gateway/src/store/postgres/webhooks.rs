//! PostgreSQL outbound webhook queue: one delivery per txid (a unique constraint), claims with
//! leases (`FOR UPDATE SKIP LOCKED`: instances never claim the same row twice while a lease
//! runs) and the record of each attempt. An enqueue notifies `opencharge_webhooks`.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::listen::WEBHOOKS_CHANNEL;
use super::{
    execute, fail, notify, ocid_param, ocid_value, query, query_one, query_opt, Step, Tx, R,
};
use crate::store::Webhook;

/// Columns read by [`read_webhook`].
const WEBHOOK_COLS: &str =
    "id, txid, target_ocid, url, body, status, attempts, next_attempt_at, last_error";

/// Reads a [`Webhook`] row selected with [`WEBHOOK_COLS`].
fn read_webhook(row: &Row) -> R<Webhook> {
    Ok(Webhook {
        id: row.try_get(0)?,
        txid: row.try_get(1)?,
        target_ocid: ocid_value(row.try_get(2)?, "target_ocid")?,
        url: row.try_get(3)?,
        body: row.try_get(4)?,
        status: row.try_get(5)?,
        attempts: row.try_get(6)?,
        next_attempt_at: row.try_get(7)?,
        last_error: row.try_get(8)?,
    })
}

/// Inserts a webhook unless its txid is queued already; returns the (new or existing) row.
/// A new row notifies the webhook workers of every instance at COMMIT.
pub(super) async fn insert(
    tx: &Tx<'_>,
    txid: &str,
    target_ocid: u64,
    url: &str,
    body: &str,
    now: i64,
) -> R<Webhook> {
    let ocid = ocid_param(target_ocid, "target OCID")?;
    let inserted = execute(
        tx,
        "INSERT INTO webhooks (txid, target_ocid, url, body, status, attempts, next_attempt_at, \
         created_at) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5) ON CONFLICT (txid) DO NOTHING",
        &[&txid, &ocid, &url, &body, &now],
    )
    .await?;
    if inserted == 1 {
        notify(tx, WEBHOOKS_CHANNEL, "").await?;
    }
    let sql = format!("SELECT {WEBHOOK_COLS} FROM webhooks WHERE txid = $1");
    read_webhook(&query_one(tx, &sql, &[&txid]).await?)
}

/// Claims pending webhooks due at `now` whose lease is free, oldest first, and leases them
/// until `lease_until`. Rows another transaction is claiming right now are skipped, not
/// waited for.
pub(super) async fn claim(
    tx: &Tx<'_>,
    now: i64,
    lease_until: i64,
    limit: u32,
) -> R<Step<Vec<Webhook>>> {
    let sql = format!(
        "UPDATE webhooks SET lease_until = $2 WHERE id IN (\
             SELECT id FROM webhooks WHERE status = 'pending' AND next_attempt_at <= $1 \
             AND (lease_until IS NULL OR lease_until <= $1) \
             ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) \
         RETURNING {WEBHOOK_COLS}"
    );
    let mut claimed = query(tx, &sql, &[&now, &lease_until, &i64::from(limit)])
        .await?
        .iter()
        .map(read_webhook)
        .collect::<R<Vec<_>>>()?;
    claimed.sort_by_key(|w| w.id);
    Ok(Step::Commit(claimed))
}

/// Records a delivery attempt and clears the lease; an unknown id is an error.
pub(super) async fn record_attempt(
    tx: &Tx<'_>,
    id: i64,
    status: &str,
    next_attempt_at: i64,
    last_error: Option<&str>,
) -> R<Step<()>> {
    let changed = execute(
        tx,
        "UPDATE webhooks SET status = $1, attempts = attempts + 1, next_attempt_at = $2, \
         last_error = $3, lease_until = NULL WHERE id = $4",
        &[&status, &next_attempt_at, &last_error, &id],
    )
    .await?;
    if changed != 1 {
        return Err(fail(format!("no webhook with id {id}")));
    }
    Ok(Step::Commit(()))
}

/// The webhook of a txid.
pub(super) async fn by_txid<C: GenericClient + Sync>(c: &C, txid: &str) -> R<Option<Webhook>> {
    let sql = format!("SELECT {WEBHOOK_COLS} FROM webhooks WHERE txid = $1");
    query_opt(c, &sql, &[&txid])
        .await?
        .map(|r| read_webhook(&r))
        .transpose()
}
