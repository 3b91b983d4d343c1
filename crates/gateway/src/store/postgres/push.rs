//! PostgreSQL push wake-ups: device push tokens (one per device, a token moves to the device
//! that registers it last) and the push queue (one pending wake-up per device, queued in the
//! transaction of its event and announced on `opencharge_pushes`, collapsed by newer events,
//! claimed with leases, and the conditional record of a send attempt).

use deadpool_postgres::GenericClient;
use serde_json::Value;
use tokio_postgres::Row;

use super::listen::PUSHES_CHANNEL;
use super::{execute, notify, parse_name, query, query_one, query_opt, Step, Tx, R};
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
fn read_token(row: &Row) -> R<PushToken> {
    let provider: String = row.try_get(1)?;
    let environment: String = row.try_get(3)?;
    Ok(PushToken {
        device_id: row.try_get(0)?,
        provider: parse_name(&provider, "provider", PushProvider::parse)?,
        token: row.try_get(2)?,
        environment: parse_name(&environment, "environment", PushEnvironment::parse)?,
        updated_at: row.try_get(4)?,
    })
}

/// Columns read by [`read_queued`].
const QUEUE_COLS: &str = "id, device_id, provider, token, environment, kind, session_id, \
     event_id, status, attempts, next_attempt_at, last_error, created_at, sent_at";

/// Reads a [`QueuedPush`] row selected with [`QUEUE_COLS`].
fn read_queued(row: &Row) -> R<QueuedPush> {
    let provider: String = row.try_get(2)?;
    let environment: String = row.try_get(4)?;
    let kind: String = row.try_get(5)?;
    let status: String = row.try_get(8)?;
    Ok(QueuedPush {
        id: row.try_get(0)?,
        device_id: row.try_get(1)?,
        provider: parse_name(&provider, "provider", PushProvider::parse)?,
        token: row.try_get(3)?,
        environment: parse_name(&environment, "environment", PushEnvironment::parse)?,
        kind: parse_name(&kind, "kind", PushKind::parse)?,
        session_id: row.try_get(6)?,
        event_id: row.try_get(7)?,
        status: parse_name(&status, "status", PushStatus::parse)?,
        attempts: row.try_get(9)?,
        next_attempt_at: row.try_get(10)?,
        last_error: row.try_get(11)?,
        created_at: row.try_get(12)?,
        sent_at: row.try_get(13)?,
    })
}

/// Queues a wake-up for event `event_id` of `account_id` to every active device of the
/// account that has a push token, inside the caller's transaction (the same rules as the
/// SQLite store: only `payment_request` and `payment_status` events; a device's pending row
/// is collapsed into, keeping its attempts and next attempt time). Notifies the push workers
/// when a row was queued or updated. Returns how many.
pub(super) async fn enqueue_for_event(
    tx: &Tx<'_>,
    account_id: &str,
    kind: &str,
    payload_json: &str,
    event_id: i64,
    now: i64,
) -> R<u64> {
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
        tracing::warn!(
            account_id,
            event_id,
            "event without sessionId queues no wake-up"
        );
        return Ok(0);
    };
    let changed = execute(
        tx,
        "INSERT INTO push_queue (device_id, provider, token, environment, kind, session_id, \
         event_id, status, attempts, next_attempt_at, created_at) \
         SELECT t.device_id, t.provider, t.token, t.environment, $2, $3, $4, 'pending', 0, $5, $5 \
         FROM push_tokens t JOIN devices d ON d.device_id = t.device_id \
         WHERE d.account_id = $1 AND d.status = 'active' \
         ON CONFLICT (device_id) WHERE status = 'pending' DO UPDATE SET \
         kind = excluded.kind, session_id = excluded.session_id, event_id = excluded.event_id, \
         provider = excluded.provider, token = excluded.token, \
         environment = excluded.environment, created_at = excluded.created_at",
        &[&account_id, &kind.as_str(), &session_id, &event_id, &now],
    )
    .await?;
    if changed > 0 {
        notify(tx, PUSHES_CHANNEL, "").await?;
    }
    Ok(changed)
}

/// Stores the push token of `device_id`, moving it away from any other device, in one
/// transaction (see [`crate::store::Store::set_push_token`]).
pub(super) async fn set_token(
    tx: &Tx<'_>,
    device_id: &str,
    provider: PushProvider,
    token: &str,
    environment: PushEnvironment,
    now: i64,
) -> R<Step<PushToken>> {
    let provider_name = provider.as_str();
    let environment_name = environment.as_str();
    execute(
        tx,
        "UPDATE push_queue SET status = 'failed', last_error = $4, lease_until = NULL \
         WHERE status = 'pending' AND provider = $1 AND token = $2 AND device_id <> $3",
        &[&provider_name, &token, &device_id, &TOKEN_MOVED],
    )
    .await?;
    let moved = execute(
        tx,
        "DELETE FROM push_tokens WHERE provider = $1 AND token = $2 AND device_id <> $3",
        &[&provider_name, &token, &device_id],
    )
    .await?;
    if moved > 0 {
        tracing::info!(
            device_id,
            provider = provider_name,
            "push token moved to this device"
        );
    }
    execute(
        tx,
        "INSERT INTO push_tokens (device_id, provider, token, environment, updated_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (device_id) DO UPDATE SET provider = excluded.provider, \
         token = excluded.token, environment = excluded.environment, \
         updated_at = excluded.updated_at",
        &[&device_id, &provider_name, &token, &environment_name, &now],
    )
    .await?;
    execute(
        tx,
        "UPDATE push_queue SET provider = $2, token = $3, environment = $4 \
         WHERE device_id = $1 AND status = 'pending'",
        &[&device_id, &provider_name, &token, &environment_name],
    )
    .await?;
    let sql = format!("SELECT {TOKEN_COLS} FROM push_tokens WHERE device_id = $1");
    let stored = read_token(&query_one(tx, &sql, &[&device_id]).await?)?;
    Ok(Step::Commit(stored))
}

/// Removes the push token of `device_id` and drops its pending wake-up; whether it had one.
pub(super) async fn clear_token(tx: &Tx<'_>, device_id: &str) -> R<Step<bool>> {
    let removed = execute(
        tx,
        "DELETE FROM push_tokens WHERE device_id = $1",
        &[&device_id],
    )
    .await?;
    execute(
        tx,
        "UPDATE push_queue SET status = 'failed', last_error = $2, lease_until = NULL \
         WHERE device_id = $1 AND status = 'pending'",
        &[&device_id, &TOKEN_CLEARED],
    )
    .await?;
    Ok(Step::Commit(removed > 0))
}

/// The push token of `device_id`.
pub(super) async fn token<C: GenericClient + Sync>(c: &C, device_id: &str) -> R<Option<PushToken>> {
    let sql = format!("SELECT {TOKEN_COLS} FROM push_tokens WHERE device_id = $1");
    query_opt(c, &sql, &[&device_id])
        .await?
        .map(|r| read_token(&r))
        .transpose()
}

/// Moves the push token and the pending wake-up of a rotated device to its new device id,
/// inside the rotation's transaction.
pub(super) async fn follow_rotation(tx: &Tx<'_>, old_id: &str, new_id: &str) -> R<()> {
    execute(
        tx,
        "UPDATE push_tokens SET device_id = $2 WHERE device_id = $1",
        &[&old_id, &new_id],
    )
    .await?;
    execute(
        tx,
        "UPDATE push_queue SET device_id = $2 WHERE device_id = $1 AND status = 'pending'",
        &[&old_id, &new_id],
    )
    .await?;
    Ok(())
}

/// Claims pending wake-ups due at `now` whose lease is free, oldest first, leasing them until
/// `lease_until`; due wake-ups of devices that are no longer active are marked `failed`
/// instead. Rows another transaction holds are skipped, not waited for.
pub(super) async fn claim(
    tx: &Tx<'_>,
    now: i64,
    lease_until: i64,
    limit: u32,
) -> R<Step<Vec<QueuedPush>>> {
    let cols = QUEUE_COLS
        .split(", ")
        .map(|c| format!("q.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {cols}, d.status IS NOT DISTINCT FROM 'active' FROM push_queue q \
         LEFT JOIN devices d ON d.device_id = q.device_id \
         WHERE q.status = 'pending' AND q.next_attempt_at <= $1 \
         AND (q.lease_until IS NULL OR q.lease_until <= $1) \
         ORDER BY q.id LIMIT $2 FOR UPDATE OF q SKIP LOCKED"
    );
    let rows = query(tx, &sql, &[&now, &i64::from(limit)]).await?;
    let mut claimed = Vec::new();
    for row in &rows {
        let push = read_queued(row)?;
        let active: bool = row.try_get(14)?;
        if active {
            execute(
                tx,
                "UPDATE push_queue SET lease_until = $2 WHERE id = $1",
                &[&push.id, &lease_until],
            )
            .await?;
            claimed.push(push);
        } else {
            execute(
                tx,
                "UPDATE push_queue SET status = 'failed', last_error = $2 WHERE id = $1",
                &[&push.id, &DEVICE_INACTIVE],
            )
            .await?;
        }
    }
    Ok(Step::Commit(claimed))
}

/// Every queue row, oldest first.
pub(super) async fn all_rows<C: GenericClient + Sync>(c: &C) -> R<Vec<QueuedPush>> {
    let sql = format!("SELECT {QUEUE_COLS} FROM push_queue ORDER BY id");
    query(c, &sql, &[]).await?.iter().map(read_queued).collect()
}

/// Records one send attempt, conditional on the row still standing for the event sent (see
/// [`crate::store::Store::record_push_attempt`]); clears the lease of a pending row.
pub(super) async fn record_attempt(tx: &Tx<'_>, a: &PushAttempt) -> R<Step<bool>> {
    let status = a.status.as_str();
    let exact = execute(
        tx,
        "UPDATE push_queue SET status = $1, attempts = attempts + 1, next_attempt_at = $2, \
         last_error = $3, sent_at = CASE WHEN $1 = 'sent' THEN $4 ELSE sent_at END, \
         lease_until = NULL \
         WHERE id = $5 AND event_id = $6 AND status = 'pending'",
        &[
            &status,
            &a.next_attempt_at,
            &a.last_error,
            &a.now,
            &a.id,
            &a.event_id,
        ],
    )
    .await?;
    if exact == 1 {
        return Ok(Step::Commit(true));
    }
    if a.status == PushStatus::Pending {
        execute(
            tx,
            "UPDATE push_queue SET attempts = attempts + 1, next_attempt_at = $1, \
             last_error = $2, lease_until = NULL WHERE id = $3 AND status = 'pending'",
            &[&a.next_attempt_at, &a.last_error, &a.id],
        )
        .await?;
    } else {
        execute(
            tx,
            "UPDATE push_queue SET next_attempt_at = $1, lease_until = NULL \
             WHERE id = $2 AND status = 'pending'",
            &[&a.now, &a.id],
        )
        .await?;
    }
    Ok(Step::Commit(false))
}

/// Deletes a dead token and marks its pending wake-ups `dead`; whether a device held it.
pub(super) async fn drop_token(tx: &Tx<'_>, provider: PushProvider, token: &str) -> R<Step<bool>> {
    let provider_name = provider.as_str();
    execute(
        tx,
        "UPDATE push_queue SET status = 'dead', last_error = $3, lease_until = NULL \
         WHERE status = 'pending' AND provider = $1 AND token = $2",
        &[&provider_name, &token, &TOKEN_DEAD],
    )
    .await?;
    let removed = execute(
        tx,
        "DELETE FROM push_tokens WHERE provider = $1 AND token = $2",
        &[&provider_name, &token],
    )
    .await?;
    Ok(Step::Commit(removed > 0))
}
