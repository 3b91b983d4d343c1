//! SQLite devices: enrollment codes, device registration (one code, one key) and key rotation
//! (which carries the device's push token over to the new device id).

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{CachedSql, R};
use crate::store::{Device, RegisterOutcome};

/// Columns read by [`read_device`].
const DEVICE_COLS: &str = "device_id, account_id, public_key, status, created_at";

/// Reads a [`Device`] row selected with [`DEVICE_COLS`].
fn read_device(row: &Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        device_id: row.get(0)?,
        account_id: row.get(1)?,
        public_key: row.get(2)?,
        status: row.get(3)?,
        created_at: row.get(4)?,
    })
}

/// Stores an enrollment code hash for an account.
pub(super) fn create_enrollment(
    conn: &Connection,
    account_id: &str,
    code_hash: &str,
    expires_at: i64,
    now: i64,
) -> R<()> {
    conn.exec_cached(
        "INSERT INTO enrollments (code_hash, account_id, expires_at, created_at) \
         VALUES (?1, ?2, ?3, ?4)",
        params![code_hash, account_id, expires_at, now],
    )?;
    Ok(())
}

/// Consumes an enrollment code and registers the device, in one transaction.
pub(super) fn register_device(
    conn: &mut Connection,
    code_hash: &str,
    device_id: String,
    public_key: String,
    now: i64,
) -> R<RegisterOutcome> {
    let tx = conn.savepoint()?;
    let enrollment: Option<(String, i64, Option<String>)> = tx
        .row_cached(
            "SELECT account_id, expires_at, used_by_device FROM enrollments \
             WHERE code_hash = ?1",
            [code_hash],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((account_id, expires_at, used_by)) = enrollment else {
        return Ok(RegisterOutcome::InvalidEnrollment);
    };
    let device_sql =
        format!("SELECT {DEVICE_COLS} FROM devices WHERE device_id = ?1 OR public_key = ?2");
    let existing = tx
        .row_cached(&device_sql, [&device_id, &public_key], read_device)
        .optional()?;
    if let Some(used_by) = used_by {
        // Used: only the very device (same id and key) that used it may retry.
        return Ok(match existing {
            Some(d)
                if used_by == device_id
                    && d.device_id == device_id
                    && d.public_key == public_key =>
            {
                RegisterOutcome::AlreadyRegistered(d)
            }
            _ => RegisterOutcome::InvalidEnrollment,
        });
    }
    if expires_at <= now {
        return Ok(RegisterOutcome::InvalidEnrollment);
    }
    if let Some(d) = existing {
        // The key is registered already (through another code): idempotent for the same
        // account, refused otherwise. The code stays unused either way.
        return Ok(
            if d.account_id == account_id && d.device_id == device_id && d.public_key == public_key
            {
                RegisterOutcome::AlreadyRegistered(d)
            } else {
                RegisterOutcome::InvalidEnrollment
            },
        );
    }
    let changed = tx.exec_cached(
        "UPDATE enrollments SET used_by_device = ?1, used_at = ?2 \
         WHERE code_hash = ?3 AND used_by_device IS NULL AND expires_at > ?2",
        params![device_id, now, code_hash],
    )?;
    if changed != 1 {
        return Ok(RegisterOutcome::InvalidEnrollment);
    }
    let device = Device {
        device_id,
        account_id,
        public_key,
        status: "active".into(),
        created_at: now,
    };
    tx.exec_cached(
        "INSERT INTO devices (device_id, account_id, public_key, status, created_at) \
         VALUES (?1, ?2, ?3, 'active', ?4)",
        params![
            device.device_id,
            device.account_id,
            device.public_key,
            device.created_at
        ],
    )?;
    tx.commit()?;
    Ok(RegisterOutcome::Registered(device))
}

/// Looks a device up by id.
pub(super) fn device(conn: &Connection, device_id: &str) -> R<Option<Device>> {
    let sql = format!("SELECT {DEVICE_COLS} FROM devices WHERE device_id = ?1");
    Ok(conn.row_cached(&sql, [device_id], read_device).optional()?)
}

/// Replaces an active device key by a new one on the same account, in one transaction.
pub(super) fn rotate_device(
    conn: &mut Connection,
    old_id: &str,
    new_id: &str,
    new_key: &str,
    now: i64,
) -> R<bool> {
    let tx = conn.savepoint()?;
    let old: Option<(String, String, Option<String>)> = tx
        .row_cached(
            "SELECT account_id, status, replaced_by FROM devices WHERE device_id = ?1",
            [old_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((account_id, status, replaced_by)) = old else {
        return Ok(false);
    };
    let clash: Option<(String, String, String)> = tx
        .row_cached(
            "SELECT device_id, account_id, public_key FROM devices \
             WHERE device_id = ?1 OR public_key = ?2",
            [new_id, new_key],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    if status != "active" {
        // A retry of the very rotation that already happened is a success.
        let same_rotation = status == "rotated"
            && replaced_by.as_deref() == Some(new_id)
            && clash.as_ref().is_some_and(|(id, acct, key)| {
                id == new_id && *acct == account_id && key == new_key
            });
        return Ok(same_rotation);
    }
    if clash.is_some() {
        return Ok(false);
    }
    let changed = tx.exec_cached(
        "UPDATE devices SET status = 'rotated', replaced_by = ?1 \
         WHERE device_id = ?2 AND status = 'active'",
        params![new_id, old_id],
    )?;
    if changed != 1 {
        return Ok(false);
    }
    tx.exec_cached(
        "INSERT INTO devices (device_id, account_id, public_key, status, created_at) \
         VALUES (?1, ?2, ?3, 'active', ?4)",
        params![new_id, account_id, new_key, now],
    )?;
    super::push::follow_rotation(&tx, old_id, new_id)?;
    tx.commit()?;
    Ok(true)
}
