//! PostgreSQL user OCIDs (paying a person): allocating an account's OCID from the gateway's
//! block under a transaction-scoped advisory lock (so racing first calls, on any instance,
//! allocate one after the other), looking accounts and OCIDs up, and writing a person's
//! `received` receipt with its event.

use deadpool_postgres::GenericClient;

use super::events::insert_event;
use super::sessions::insert;
use super::{execute, ocid_param, ocid_value, query_one, query_opt, Step, Tx, R};
use crate::store::{NewReceipt, UserOcidAllocation, UserOcidRange};

/// The advisory lock key serializing user OCID allocations (`'ocuser'` in ASCII).
const USER_OCID_LOCK: i64 = 0x0000_6f63_7573_6572;

/// The account's user OCID, or the next free one of `range` recorded for it.
pub(super) async fn allocate(
    tx: &Tx<'_>,
    account_id: &str,
    range: UserOcidRange,
    now: i64,
) -> R<Step<UserOcidAllocation>> {
    execute(tx, "SELECT pg_advisory_xact_lock($1)", &[&USER_OCID_LOCK]).await?;
    if let Some(ocid) = of_account(tx, account_id).await? {
        return Ok(Step::Commit(UserOcidAllocation::Ocid(ocid)));
    }
    let first = ocid_param(range.first, "user OCID block start")?;
    let last = ocid_param(range.last, "user OCID block end")?;
    let row = query_one(
        tx,
        "SELECT max(ocid) FROM user_ocids WHERE ocid BETWEEN $1 AND $2",
        &[&first, &last],
    )
    .await?;
    let highest: Option<i64> = row.try_get(0)?;
    let next = match highest {
        None => first,
        Some(h) if h < last => h + 1,
        Some(_) => return Ok(Step::Rollback(UserOcidAllocation::Exhausted)),
    };
    // The unique columns back the lock up: a row that is already there refuses the insert.
    execute(
        tx,
        "INSERT INTO user_ocids (ocid, account_id, created_at) VALUES ($1, $2, $3)",
        &[&next, &account_id, &now],
    )
    .await?;
    Ok(Step::Commit(UserOcidAllocation::Ocid(ocid_value(
        next, "ocid",
    )?)))
}

/// The account holding user OCID `ocid`.
pub(super) async fn account_of<C: GenericClient + Sync>(c: &C, ocid: u64) -> R<Option<String>> {
    let Ok(ocid) = i64::try_from(ocid) else {
        return Ok(None);
    };
    query_opt(
        c,
        "SELECT account_id FROM user_ocids WHERE ocid = $1",
        &[&ocid],
    )
    .await?
    .map(|r| Ok(r.try_get(0)?))
    .transpose()
}

/// The user OCID of `account_id`.
pub(super) async fn of_account<C: GenericClient + Sync>(c: &C, account_id: &str) -> R<Option<u64>> {
    query_opt(
        c,
        "SELECT ocid FROM user_ocids WHERE account_id = $1",
        &[&account_id],
    )
    .await?
    .map(|r| {
        let ocid: i64 = r.try_get(0)?;
        ocid_value(ocid, "ocid")
    })
    .transpose()
}

/// Writes a person's receipt and its event (inside the caller's transaction).
pub(super) async fn record_receipt(tx: &Tx<'_>, receipt: &NewReceipt) -> R<()> {
    insert(tx, &receipt.session).await?;
    let e = &receipt.event;
    insert_event(tx, &e.account_id, &e.kind, &e.payload_json, e.now).await?;
    Ok(())
}
