//! PostgreSQL events: the per-account event log behind the SSE stream. Each insert takes the
//! account's advisory lock first (so an account's events become visible in id order), queues
//! the event's push wake-ups and notifies `opencharge_events` in the same transaction.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::listen::EVENTS_CHANNEL;
use super::{execute, notify, query, query_one, Tx, R};
use crate::store::Event;

/// The first key of the per-account advisory locks (the second is the account id's hash).
const EVENT_LOCK_SPACE: i32 = 0x6f63_6576; // "ocev"

/// Columns read by [`read_event`].
const EVENT_COLS: &str = "id, account_id, kind, payload_json, created_at";

/// Reads an [`Event`] row selected with [`EVENT_COLS`].
fn read_event(row: &Row) -> R<Event> {
    Ok(Event {
        id: row.try_get(0)?,
        account_id: row.try_get(1)?,
        kind: row.try_get(2)?,
        payload_json: row.try_get(3)?,
        created_at: row.try_get(4)?,
    })
}

/// Inserts an event row, queues its push wake-ups ([`super::push::enqueue_for_event`]),
/// notifies the other instances and returns it; all in the caller's transaction.
///
/// The account's transaction-scoped advisory lock is taken before the id is drawn from the
/// sequence and held until COMMIT: a later event of the same account gets a higher id AND
/// commits after this one, so a reader that has seen id `n` never misses an id below `n`
/// committed later.
pub(super) async fn insert_event(
    tx: &Tx<'_>,
    account_id: &str,
    kind: &str,
    payload_json: &str,
    now: i64,
) -> R<Event> {
    execute(
        tx,
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&EVENT_LOCK_SPACE, &account_id],
    )
    .await?;
    let row = query_one(
        tx,
        "INSERT INTO events (account_id, kind, payload_json, created_at) \
         VALUES ($1, $2, $3, $4) RETURNING id",
        &[&account_id, &kind, &payload_json, &now],
    )
    .await?;
    let id: i64 = row.try_get(0)?;
    super::push::enqueue_for_event(tx, account_id, kind, payload_json, id, now).await?;
    notify(tx, EVENTS_CHANNEL, account_id).await?;
    Ok(Event {
        id,
        account_id: account_id.to_owned(),
        kind: kind.to_owned(),
        payload_json: payload_json.to_owned(),
        created_at: now,
    })
}

/// Events of an account with id > `after_id`, oldest first, at most `limit`.
pub(super) async fn events_after<C: GenericClient + Sync>(
    c: &C,
    account_id: &str,
    after_id: i64,
    limit: u32,
) -> R<Vec<Event>> {
    let sql = format!(
        "SELECT {EVENT_COLS} FROM events WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    );
    query(c, &sql, &[&account_id, &after_id, &i64::from(limit)])
        .await?
        .iter()
        .map(read_event)
        .collect()
}
