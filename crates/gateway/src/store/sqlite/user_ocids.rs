//! SQLite user OCIDs (paying a person): allocating an account's OCID from the gateway's block
//! and looking accounts and OCIDs up, plus writing a person's `received` receipt with its event.

use rusqlite::{params, Connection, OptionalExtension};

use super::events::insert_event;
use super::sessions::insert;
use super::{fail, ocid_param, CachedSql, R};
use crate::store::{NewReceipt, UserOcidAllocation, UserOcidRange};

/// The account's user OCID, or the next free one of `range` recorded for it, in one
/// transaction (the writer runs one job at a time, and the unique columns refuse a second
/// OCID for the account or a second account for the OCID whatever the caller).
pub(super) fn allocate(
    conn: &mut Connection,
    account_id: &str,
    range: UserOcidRange,
    now: i64,
) -> R<UserOcidAllocation> {
    let tx = conn.savepoint()?;
    if let Some(ocid) = of_account(&tx, account_id)? {
        return Ok(UserOcidAllocation::Ocid(ocid));
    }
    let first = ocid_param(range.first, "user OCID block start")?;
    let last = ocid_param(range.last, "user OCID block end")?;
    let highest: Option<i64> = tx.row_cached(
        "SELECT max(ocid) FROM user_ocids WHERE ocid BETWEEN ?1 AND ?2",
        params![first, last],
        |r| r.get(0),
    )?;
    let next = match highest {
        None => first,
        Some(h) if h < last => h + 1,
        Some(_) => return Ok(UserOcidAllocation::Exhausted),
    };
    tx.exec_cached(
        "INSERT INTO user_ocids (ocid, account_id, created_at) VALUES (?1, ?2, ?3)",
        params![next, account_id, now],
    )?;
    tx.commit()?;
    let ocid = u64::try_from(next).map_err(|_| fail("user OCID out of range"))?;
    Ok(UserOcidAllocation::Ocid(ocid))
}

/// The account holding user OCID `ocid`.
pub(super) fn account_of(conn: &Connection, ocid: u64) -> R<Option<String>> {
    let Ok(ocid) = i64::try_from(ocid) else {
        return Ok(None);
    };
    Ok(conn
        .row_cached(
            "SELECT account_id FROM user_ocids WHERE ocid = ?1",
            [ocid],
            |r| r.get(0),
        )
        .optional()?)
}

/// The user OCID of `account_id`.
pub(super) fn of_account(conn: &Connection, account_id: &str) -> R<Option<u64>> {
    let ocid: Option<i64> = conn
        .row_cached(
            "SELECT ocid FROM user_ocids WHERE account_id = ?1",
            [account_id],
            |r| r.get(0),
        )
        .optional()?;
    ocid.map(|o| u64::try_from(o).map_err(|_| fail(format!("user OCID {o} is negative"))))
        .transpose()
}

/// Writes a person's receipt and its event (inside the caller's transaction).
pub(super) fn record_receipt(conn: &Connection, receipt: &NewReceipt) -> R<()> {
    insert(conn, &receipt.session)?;
    let e = &receipt.event;
    insert_event(conn, &e.account_id, &e.kind, &e.payload_json, e.now)?;
    Ok(())
}
