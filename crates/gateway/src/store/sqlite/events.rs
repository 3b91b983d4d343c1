//! SQLite events and webhooks: the per-account event log behind the SSE stream (each event
//! queues its push wake-ups in the same transaction) and the outbound webhook queue (one
//! delivery per txid).

use opencharge_sqlite::get_u64;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{collect, fail, ocid_param, CachedSql, R};
use crate::store::{Event, Webhook};

/// Columns read by [`read_event`].
const EVENT_COLS: &str = "id, account_id, kind, payload_json, created_at";

/// Reads an [`Event`] row selected with [`EVENT_COLS`].
fn read_event(row: &Row<'_>) -> rusqlite::Result<Event> {
    Ok(Event {
        id: row.get(0)?,
        account_id: row.get(1)?,
        kind: row.get(2)?,
        payload_json: row.get(3)?,
        created_at: row.get(4)?,
    })
}

/// Columns read by [`read_webhook`].
const WEBHOOK_COLS: &str =
    "id, txid, target_ocid, url, body, status, attempts, next_attempt_at, last_error";

/// Reads a [`Webhook`] row selected with [`WEBHOOK_COLS`].
fn read_webhook(row: &Row<'_>) -> rusqlite::Result<Webhook> {
    Ok(Webhook {
        id: row.get(0)?,
        txid: row.get(1)?,
        target_ocid: get_u64(row, 2)?,
        url: row.get(3)?,
        body: row.get(4)?,
        status: row.get(5)?,
        attempts: row.get(6)?,
        next_attempt_at: row.get(7)?,
        last_error: row.get(8)?,
    })
}

/// Inserts an event row, queues its push wake-ups ([`super::push::enqueue_for_event`]) and
/// returns it. Call it inside a transaction: the event and its wake-ups are written together.
pub(super) fn insert_event(
    conn: &Connection,
    account_id: &str,
    kind: &str,
    payload_json: &str,
    now: i64,
) -> R<Event> {
    conn.exec_cached(
        "INSERT INTO events (account_id, kind, payload_json, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![account_id, kind, payload_json, now],
    )?;
    let id = conn.last_insert_rowid();
    super::push::enqueue_for_event(conn, account_id, kind, payload_json, id, now)?;
    Ok(Event {
        id,
        account_id: account_id.to_owned(),
        kind: kind.to_owned(),
        payload_json: payload_json.to_owned(),
        created_at: now,
    })
}

/// Events of an account with id > `after_id`, oldest first, at most `limit`.
pub(super) fn events_after(
    conn: &Connection,
    account_id: &str,
    after_id: i64,
    limit: u32,
) -> R<Vec<Event>> {
    let sql = format!(
        "SELECT {EVENT_COLS} FROM events WHERE account_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
    );
    collect(
        conn,
        &sql,
        params![account_id, after_id, i64::from(limit)],
        read_event,
    )
}

/// Inserts a webhook unless its txid is queued already; returns the (new or existing) row.
pub(super) fn insert_webhook(
    conn: &Connection,
    txid: &str,
    target_ocid: u64,
    url: &str,
    body: &str,
    now: i64,
) -> R<Webhook> {
    let ocid = ocid_param(target_ocid, "target OCID")?;
    conn.exec_cached(
        "INSERT INTO webhooks (txid, target_ocid, url, body, status, attempts, next_attempt_at, \
         created_at) VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5) ON CONFLICT(txid) DO NOTHING",
        params![txid, ocid, url, body, now],
    )?;
    let sql = format!("SELECT {WEBHOOK_COLS} FROM webhooks WHERE txid = ?1");
    Ok(conn.row_cached(&sql, [txid], read_webhook)?)
}

/// Claims pending webhooks due at `now` whose lease is free (none, or ended at or before
/// `now`), oldest first, and leases them until `lease_until` (one write job: atomic).
pub(super) fn claim_webhooks(
    conn: &mut Connection,
    now: i64,
    lease_until: i64,
    limit: u32,
) -> R<Vec<Webhook>> {
    let tx = conn.savepoint()?;
    let sql = format!(
        "SELECT {WEBHOOK_COLS} FROM webhooks WHERE status = 'pending' \
         AND next_attempt_at <= ?1 AND (lease_until IS NULL OR lease_until <= ?1) \
         ORDER BY id LIMIT ?2"
    );
    let due = collect(&tx, &sql, params![now, i64::from(limit)], read_webhook)?;
    for webhook in &due {
        tx.exec_cached(
            "UPDATE webhooks SET lease_until = ?2 WHERE id = ?1",
            params![webhook.id, lease_until],
        )?;
    }
    tx.commit()?;
    Ok(due)
}

/// Records a delivery attempt and clears the lease; an unknown id is an error.
pub(super) fn record_webhook_attempt(
    conn: &Connection,
    id: i64,
    status: &str,
    next_attempt_at: i64,
    last_error: Option<String>,
) -> R<()> {
    let changed = conn.exec_cached(
        "UPDATE webhooks SET status = ?1, attempts = attempts + 1, next_attempt_at = ?2, \
         last_error = ?3, lease_until = NULL WHERE id = ?4",
        params![status, next_attempt_at, last_error, id],
    )?;
    if changed != 1 {
        return Err(fail(format!("no webhook with id {id}")));
    }
    Ok(())
}

/// The webhook of a txid.
pub(super) fn webhook_by_txid(conn: &Connection, txid: &str) -> R<Option<Webhook>> {
    let sql = format!("SELECT {WEBHOOK_COLS} FROM webhooks WHERE txid = ?1");
    Ok(conn.row_cached(&sql, [txid], read_webhook).optional()?)
}
