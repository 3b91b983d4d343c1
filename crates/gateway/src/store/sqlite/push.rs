//! SQLite push wake-ups: device push tokens (one per device, a token moves to the device that
//! registers it last) and the push queue (one pending wake-up per device, queued in the
//! transaction of its event, collapsed by newer events, and the conditional record of a send
//! attempt).

use opencharge_sqlite::get_mapped;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::Value;

use super::{CachedSql, R};
use crate::store::{
    PushAttempt, PushEnvironment, PushKind, PushProvider, PushStatus, PushToken, QueuedPush,
};

/// `last_error` of a pending wake-up dropped because its token moved to another device.
const TOKEN_MOVED: &str = "the push token was registered by another device";
/// `last_error` of a pending wake-up dropped because its device cleared its token.
const TOKEN_CLEARED: &str = "the device cleared its push token";
/// `last_error` of a pending wake-up whose token the provider reported dead.
const TOKEN_DEAD: &str = "the provider reported the token dead";
/// `last_error` of a pending wake-up of a device that is no longer active.
const DEVICE_INACTIVE: &str = "the device is no longer active";

/// Columns read by [`read_token`].
const TOKEN_COLS: &str = "device_id, provider, token, environment, updated_at";

/// Reads a [`PushToken`] row selected with [`TOKEN_COLS`].
fn read_token(row: &Row<'_>) -> rusqlite::Result<PushToken> {
    Ok(PushToken {
        device_id: row.get(0)?,
        provider: get_mapped(row, 1, "push provider", PushProvider::parse)?,
        token: row.get(2)?,
        environment: get_mapped(row, 3, "push environment", PushEnvironment::parse)?,
        updated_at: row.get(4)?,
    })
}

/// Columns read by [`read_queued`].
const QUEUE_COLS: &str = "id, device_id, provider, token, environment, kind, session_id, \
     event_id, status, attempts, next_attempt_at, last_error, created_at, sent_at";

/// Reads a [`QueuedPush`] row selected with [`QUEUE_COLS`].
fn read_queued(row: &Row<'_>) -> rusqlite::Result<QueuedPush> {
    Ok(QueuedPush {
        id: row.get(0)?,
        device_id: row.get(1)?,
        provider: get_mapped(row, 2, "push provider", PushProvider::parse)?,
        token: row.get(3)?,
        environment: get_mapped(row, 4, "push environment", PushEnvironment::parse)?,
        kind: get_mapped(row, 5, "push kind", PushKind::parse)?,
        session_id: row.get(6)?,
        event_id: row.get(7)?,
        status: get_mapped(row, 8, "push status", PushStatus::parse)?,
        attempts: row.get(9)?,
        next_attempt_at: row.get(10)?,
        last_error: row.get(11)?,
        created_at: row.get(12)?,
        sent_at: row.get(13)?,
    })
}

/// Queues a wake-up for event `event_id` of `account_id` to every active device of the
/// account that has a push token, inside the caller's transaction. Only `payment_request` and
/// `payment_status` events wake devices up. A device with a pending wake-up keeps that row,
/// which now stands for this newer event (its attempts and next attempt time stay, so a
/// device in backoff is not hammered). Returns how many rows were queued or updated.
pub(super) fn enqueue_for_event(
    conn: &Connection,
    account_id: &str,
    kind: &str,
    payload_json: &str,
    event_id: i64,
    now: i64,
) -> R<usize> {
    let Some(kind) = PushKind::parse(kind) else {
        return Ok(0);
    };
    let session_id = serde_json::from_str::<Value>(payload_json)
        .ok()
        .and_then(|v| {
            v.get("sessionId")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    let Some(session_id) = session_id else {
        // Every event the gateway writes names its session; one that does not cannot be
        // fetched by the app, so it wakes nobody up (the event itself is still stored).
        tracing::warn!(
            account_id,
            event_id,
            "event without sessionId queues no wake-up"
        );
        return Ok(0);
    };
    let changed = conn.exec_cached(
        "INSERT INTO push_queue (device_id, provider, token, environment, kind, session_id, \
         event_id, status, attempts, next_attempt_at, created_at) \
         SELECT t.device_id, t.provider, t.token, t.environment, ?2, ?3, ?4, 'pending', 0, ?5, ?5 \
         FROM push_tokens t JOIN devices d ON d.device_id = t.device_id \
         WHERE d.account_id = ?1 AND d.status = 'active' \
         ON CONFLICT(device_id) WHERE status = 'pending' DO UPDATE SET \
         kind = excluded.kind, session_id = excluded.session_id, event_id = excluded.event_id, \
         provider = excluded.provider, token = excluded.token, \
         environment = excluded.environment, created_at = excluded.created_at",
        params![account_id, kind.as_str(), session_id, event_id, now],
    )?;
    Ok(changed)
}

/// Stores the push token of `device_id`, moving it away from any other device, in one
/// transaction (see [`crate::store::Store::set_push_token`]).
pub(super) fn set_token(
    conn: &mut Connection,
    device_id: &str,
    provider: PushProvider,
    token: &str,
    environment: PushEnvironment,
    now: i64,
) -> R<PushToken> {
    let tx = conn.savepoint()?;
    let provider_name = provider.as_str();
    tx.exec_cached(
        "UPDATE push_queue SET status = 'failed', last_error = ?4 \
         WHERE status = 'pending' AND provider = ?1 AND token = ?2 AND device_id <> ?3",
        params![provider_name, token, device_id, TOKEN_MOVED],
    )?;
    let moved = tx.exec_cached(
        "DELETE FROM push_tokens WHERE provider = ?1 AND token = ?2 AND device_id <> ?3",
        params![provider_name, token, device_id],
    )?;
    if moved > 0 {
        tracing::info!(
            device_id,
            provider = provider_name,
            "push token moved to this device"
        );
    }
    tx.exec_cached(
        "INSERT INTO push_tokens (device_id, provider, token, environment, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT(device_id) DO UPDATE SET provider = excluded.provider, \
         token = excluded.token, environment = excluded.environment, \
         updated_at = excluded.updated_at",
        params![device_id, provider_name, token, environment.as_str(), now],
    )?;
    // A wake-up waiting for this device goes to the token it has now.
    tx.exec_cached(
        "UPDATE push_queue SET provider = ?2, token = ?3, environment = ?4 \
         WHERE device_id = ?1 AND status = 'pending'",
        params![device_id, provider_name, token, environment.as_str()],
    )?;
    let stored = tx.row_cached(
        &format!("SELECT {TOKEN_COLS} FROM push_tokens WHERE device_id = ?1"),
        [device_id],
        read_token,
    )?;
    tx.commit()?;
    Ok(stored)
}

/// Removes the push token of `device_id` and drops its pending wake-up; whether it had one.
pub(super) fn clear_token(conn: &mut Connection, device_id: &str) -> R<bool> {
    let tx = conn.savepoint()?;
    let removed = tx.exec_cached("DELETE FROM push_tokens WHERE device_id = ?1", [device_id])?;
    tx.exec_cached(
        "UPDATE push_queue SET status = 'failed', last_error = ?2 \
         WHERE device_id = ?1 AND status = 'pending'",
        params![device_id, TOKEN_CLEARED],
    )?;
    tx.commit()?;
    Ok(removed > 0)
}

/// The push token of `device_id`.
pub(super) fn token(conn: &Connection, device_id: &str) -> R<Option<PushToken>> {
    let sql = format!("SELECT {TOKEN_COLS} FROM push_tokens WHERE device_id = ?1");
    Ok(conn.row_cached(&sql, [device_id], read_token).optional()?)
}

/// Moves the push token and the pending wake-up of a rotated device to its new device id,
/// inside the rotation's transaction: the phone is the same, only its key changed.
pub(super) fn follow_rotation(conn: &Connection, old_id: &str, new_id: &str) -> R<()> {
    conn.exec_cached(
        "UPDATE push_tokens SET device_id = ?2 WHERE device_id = ?1",
        [old_id, new_id],
    )?;
    conn.exec_cached(
        "UPDATE push_queue SET device_id = ?2 WHERE device_id = ?1 AND status = 'pending'",
        [old_id, new_id],
    )?;
    Ok(())
}

/// Claims pending wake-ups due at `now` whose lease is free (none, or ended at or before
/// `now`), oldest first, leasing them until `lease_until`; due wake-ups of devices that are no
/// longer active are marked `failed` instead. One write job: atomic.
pub(super) fn claim(
    conn: &mut Connection,
    now: i64,
    lease_until: i64,
    limit: u32,
) -> R<Vec<QueuedPush>> {
    let cols = QUEUE_COLS
        .split(", ")
        .map(|c| format!("q.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {cols}, d.status IS 'active' FROM push_queue q \
         LEFT JOIN devices d ON d.device_id = q.device_id \
         WHERE q.status = 'pending' AND q.next_attempt_at <= ?1 \
         AND (q.lease_until IS NULL OR q.lease_until <= ?1) ORDER BY q.id LIMIT ?2"
    );
    let tx = conn.savepoint()?;
    let rows = super::collect(&tx, &sql, params![now, i64::from(limit)], |row| {
        Ok((read_queued(row)?, row.get::<_, bool>(14)?))
    })?;
    let mut claimed = Vec::new();
    for (push, active) in rows {
        if active {
            tx.exec_cached(
                "UPDATE push_queue SET lease_until = ?2 WHERE id = ?1",
                params![push.id, lease_until],
            )?;
            claimed.push(push);
        } else {
            tx.exec_cached(
                "UPDATE push_queue SET status = 'failed', last_error = ?2 \
                 WHERE id = ?1 AND status = 'pending'",
                params![push.id, DEVICE_INACTIVE],
            )?;
        }
    }
    tx.commit()?;
    Ok(claimed)
}

/// Every queue row, oldest first.
pub(super) fn all_rows(conn: &mut Connection) -> R<Vec<QueuedPush>> {
    let sql = format!("SELECT {QUEUE_COLS} FROM push_queue ORDER BY id");
    super::collect(conn, &sql, &[], read_queued)
}

/// Records one send attempt, conditional on the row still standing for the event sent (see
/// [`crate::store::Store::record_push_attempt`]); clears the lease of a pending row.
pub(super) fn record_attempt(conn: &mut Connection, a: &PushAttempt) -> R<bool> {
    let tx = conn.savepoint()?;
    let exact = tx.exec_cached(
        "UPDATE push_queue SET status = ?1, attempts = attempts + 1, next_attempt_at = ?2, \
         last_error = ?3, sent_at = CASE WHEN ?1 = 'sent' THEN ?4 ELSE sent_at END, \
         lease_until = NULL WHERE id = ?5 AND event_id = ?6 AND status = 'pending'",
        params![
            a.status.as_str(),
            a.next_attempt_at,
            a.last_error,
            a.now,
            a.id,
            a.event_id
        ],
    )?;
    if exact == 1 {
        tx.commit()?;
        return Ok(true);
    }
    // A newer event collapsed into the row while this one was in flight (or the row is gone
    // or finished: then nothing matches below either).
    if a.status == PushStatus::Pending {
        // The provider asked to back off: that holds for the newer wake-up too.
        tx.exec_cached(
            "UPDATE push_queue SET attempts = attempts + 1, next_attempt_at = ?1, \
             last_error = ?2, lease_until = NULL WHERE id = ?3 AND status = 'pending'",
            params![a.next_attempt_at, a.last_error, a.id],
        )?;
    } else {
        // The older wake-up is settled; the newer one is due now.
        tx.exec_cached(
            "UPDATE push_queue SET next_attempt_at = ?1, lease_until = NULL \
             WHERE id = ?2 AND status = 'pending'",
            params![a.now, a.id],
        )?;
    }
    tx.commit()?;
    Ok(false)
}

/// Deletes a dead token and marks its pending wake-ups `dead`; whether a device held it.
pub(super) fn drop_token(conn: &mut Connection, provider: PushProvider, token: &str) -> R<bool> {
    let tx = conn.savepoint()?;
    tx.exec_cached(
        "UPDATE push_queue SET status = 'dead', last_error = ?3 \
         WHERE status = 'pending' AND provider = ?1 AND token = ?2",
        params![provider.as_str(), token, TOKEN_DEAD],
    )?;
    let removed = tx.exec_cached(
        "DELETE FROM push_tokens WHERE provider = ?1 AND token = ?2",
        params![provider.as_str(), token],
    )?;
    tx.commit()?;
    Ok(removed > 0)
}
