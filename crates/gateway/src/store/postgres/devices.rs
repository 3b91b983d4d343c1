//! PostgreSQL devices: enrollment codes, device registration (one code, one key: the code's
//! row is locked while it is consumed) and key rotation (the old device's row is locked; the
//! rotation carries the device's push token over to the new device id).

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::{execute, query_opt, Step, Tx, R};
use crate::store::{Device, RegisterOutcome};

/// Columns read by [`read_device`].
const DEVICE_COLS: &str = "device_id, account_id, public_key, status, created_at";

/// Reads a [`Device`] row selected with [`DEVICE_COLS`].
fn read_device(row: &Row) -> R<Device> {
    Ok(Device {
        device_id: row.try_get(0)?,
        account_id: row.try_get(1)?,
        public_key: row.try_get(2)?,
        status: row.try_get(3)?,
        created_at: row.try_get(4)?,
    })
}

/// Stores an enrollment code hash for an account.
pub(super) async fn create_enrollment(
    tx: &Tx<'_>,
    account_id: &str,
    code_hash: &str,
    expires_at: i64,
    now: i64,
) -> R<Step<()>> {
    execute(
        tx,
        "INSERT INTO enrollments (code_hash, account_id, expires_at, created_at) \
         VALUES ($1, $2, $3, $4)",
        &[&code_hash, &account_id, &expires_at, &now],
    )
    .await?;
    Ok(Step::Commit(()))
}

/// Consumes an enrollment code and registers the device, in one transaction (the same
/// outcomes as the SQLite store). Two registrations racing on one code queue on its row lock;
/// the second sees the code used.
pub(super) async fn register_device(
    tx: &Tx<'_>,
    code_hash: &str,
    device_id: &str,
    public_key: &str,
    now: i64,
) -> R<Step<RegisterOutcome>> {
    let enrollment = query_opt(
        tx,
        "SELECT account_id, expires_at, used_by_device FROM enrollments \
         WHERE code_hash = $1 FOR UPDATE",
        &[&code_hash],
    )
    .await?;
    let Some(enrollment) = enrollment else {
        return Ok(Step::Rollback(RegisterOutcome::InvalidEnrollment));
    };
    let account_id: String = enrollment.try_get(0)?;
    let expires_at: i64 = enrollment.try_get(1)?;
    let used_by: Option<String> = enrollment.try_get(2)?;
    let device_sql =
        format!("SELECT {DEVICE_COLS} FROM devices WHERE device_id = $1 OR public_key = $2");
    let existing = query_opt(tx, &device_sql, &[&device_id, &public_key])
        .await?
        .map(|r| read_device(&r))
        .transpose()?;
    if let Some(used_by) = used_by {
        // Used: only the very device (same id and key) that used it may retry.
        return Ok(Step::Rollback(match existing {
            Some(d)
                if used_by == device_id
                    && d.device_id == device_id
                    && d.public_key == public_key =>
            {
                RegisterOutcome::AlreadyRegistered(d)
            }
            _ => RegisterOutcome::InvalidEnrollment,
        }));
    }
    if expires_at <= now {
        return Ok(Step::Rollback(RegisterOutcome::InvalidEnrollment));
    }
    if let Some(d) = existing {
        // The key is registered already (through another code): idempotent for the same
        // account, refused otherwise. The code stays unused either way.
        return Ok(Step::Rollback(
            if d.account_id == account_id && d.device_id == device_id && d.public_key == public_key
            {
                RegisterOutcome::AlreadyRegistered(d)
            } else {
                RegisterOutcome::InvalidEnrollment
            },
        ));
    }
    let changed = execute(
        tx,
        "UPDATE enrollments SET used_by_device = $1, used_at = $2 \
         WHERE code_hash = $3 AND used_by_device IS NULL AND expires_at > $2",
        &[&device_id, &now, &code_hash],
    )
    .await?;
    if changed != 1 {
        return Ok(Step::Rollback(RegisterOutcome::InvalidEnrollment));
    }
    let device = Device {
        device_id: device_id.to_owned(),
        account_id,
        public_key: public_key.to_owned(),
        status: "active".into(),
        created_at: now,
    };
    execute(
        tx,
        "INSERT INTO devices (device_id, account_id, public_key, status, created_at) \
         VALUES ($1, $2, $3, 'active', $4)",
        &[
            &device.device_id,
            &device.account_id,
            &device.public_key,
            &device.created_at,
        ],
    )
    .await?;
    Ok(Step::Commit(RegisterOutcome::Registered(device)))
}

/// Looks a device up by id.
pub(super) async fn device<C: GenericClient + Sync>(c: &C, device_id: &str) -> R<Option<Device>> {
    let sql = format!("SELECT {DEVICE_COLS} FROM devices WHERE device_id = $1");
    query_opt(c, &sql, &[&device_id])
        .await?
        .map(|r| read_device(&r))
        .transpose()
}

/// Replaces an active device key by a new one on the same account, in one transaction (the
/// old device's row locked first).
pub(super) async fn rotate_device(
    tx: &Tx<'_>,
    old_id: &str,
    new_id: &str,
    new_key: &str,
    now: i64,
) -> R<Step<bool>> {
    let old = query_opt(
        tx,
        "SELECT account_id, status, replaced_by FROM devices WHERE device_id = $1 FOR UPDATE",
        &[&old_id],
    )
    .await?;
    let Some(old) = old else {
        return Ok(Step::Rollback(false));
    };
    let account_id: String = old.try_get(0)?;
    let status: String = old.try_get(1)?;
    let replaced_by: Option<String> = old.try_get(2)?;
    let clash = query_opt(
        tx,
        "SELECT device_id, account_id, public_key FROM devices \
         WHERE device_id = $1 OR public_key = $2",
        &[&new_id, &new_key],
    )
    .await?
    .map(|r| -> R<(String, String, String)> { Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)) })
    .transpose()?;
    if status != "active" {
        // A retry of the very rotation that already happened is a success.
        let same_rotation = status == "rotated"
            && replaced_by.as_deref() == Some(new_id)
            && clash.as_ref().is_some_and(|(id, acct, key)| {
                id == new_id && *acct == account_id && key == new_key
            });
        return Ok(Step::Rollback(same_rotation));
    }
    if clash.is_some() {
        return Ok(Step::Rollback(false));
    }
    let changed = execute(
        tx,
        "UPDATE devices SET status = 'rotated', replaced_by = $1 \
         WHERE device_id = $2 AND status = 'active'",
        &[&new_id, &old_id],
    )
    .await?;
    if changed != 1 {
        return Ok(Step::Rollback(false));
    }
    execute(
        tx,
        "INSERT INTO devices (device_id, account_id, public_key, status, created_at) \
         VALUES ($1, $2, $3, 'active', $4)",
        &[&new_id, &account_id, &new_key, &now],
    )
    .await?;
    super::push::follow_rotation(tx, old_id, new_id).await?;
    Ok(Step::Commit(true))
}
