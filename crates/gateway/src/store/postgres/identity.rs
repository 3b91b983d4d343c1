//! PostgreSQL identity binding: the `identity_keys` rows recording the OCID and public key the
//! database belongs to (the first written by the first start, one more per on-purpose
//! rotation; the newest is current). Binding and rotating take a transaction-scoped advisory
//! lock, so instances starting together record one first identity.

use opencharge_peer::identity::{Identity, IdentityCheck};

use super::{execute, ocid_param, ocid_value, query_opt, Step, Tx, R};

/// The advisory lock key serializing identity writes (`'ocident'` in ASCII, as a number).
const IDENTITY_LOCK: i64 = 0x006f_6369_6465_6e74;

/// Takes the identity lock and reads the current identity.
async fn current(tx: &Tx<'_>) -> R<Option<Identity>> {
    execute(tx, "SELECT pg_advisory_xact_lock($1)", &[&IDENTITY_LOCK]).await?;
    query_opt(
        tx,
        "SELECT ocid, public_key FROM identity_keys ORDER BY id DESC LIMIT 1",
        &[],
    )
    .await?
    .map(|r| {
        Ok(Identity {
            ocid: ocid_value(r.try_get(0)?, "ocid")?,
            public_key: r.try_get(1)?,
        })
    })
    .transpose()
}

/// Appends an `identity_keys` row.
async fn record(tx: &Tx<'_>, ocid: u64, public_key: &str, reason: &str, now: i64) -> R<()> {
    let ocid = ocid_param(ocid, "ocid")?;
    execute(
        tx,
        "INSERT INTO identity_keys (ocid, public_key, reason, created_at) VALUES ($1, $2, $3, $4)",
        &[&ocid, &public_key, &reason, &now],
    )
    .await?;
    Ok(())
}

/// See [`crate::store::Store::bind_identity`].
pub(super) async fn bind(tx: &Tx<'_>, identity: &Identity, now: i64) -> R<Step<IdentityCheck>> {
    Ok(match current(tx).await? {
        None => {
            record(tx, identity.ocid, &identity.public_key, "first_start", now).await?;
            Step::Commit(IdentityCheck::Recorded)
        }
        Some(found) if found == *identity => Step::Rollback(IdentityCheck::Matches),
        Some(found) => Step::Rollback(IdentityCheck::Mismatch(found)),
    })
}

/// See [`crate::store::Store::rotate_identity`].
pub(super) async fn rotate(
    tx: &Tx<'_>,
    old: &Identity,
    new_public_key: &str,
    now: i64,
) -> R<Step<IdentityCheck>> {
    let check = match current(tx).await? {
        None => {
            record(tx, old.ocid, &old.public_key, "first_start", now).await?;
            IdentityCheck::Recorded
        }
        Some(found) if found == *old => IdentityCheck::Matches,
        Some(found) => return Ok(Step::Rollback(IdentityCheck::Mismatch(found))),
    };
    record(tx, old.ocid, new_public_key, "rotation", now).await?;
    Ok(Step::Commit(check))
}
