//! SQLite identity binding: the `identity_keys` rows (migration 0003) recording the OCID and
//! public key the database belongs to, the first one written by the first start and one more
//! per on-purpose rotation; the newest row is current.

use opencharge_peer::identity::{Identity, IdentityCheck};
use opencharge_sqlite::get_u64;
use rusqlite::{params, Connection, OptionalExtension};

use super::{ocid_param, R};

/// The newest recorded identity, if any.
fn current(conn: &Connection) -> R<Option<Identity>> {
    Ok(conn
        .query_row(
            "SELECT ocid, public_key FROM identity_keys ORDER BY id DESC LIMIT 1",
            [],
            |r| {
                Ok(Identity {
                    ocid: get_u64(r, 0)?,
                    public_key: r.get(1)?,
                })
            },
        )
        .optional()?)
}

/// Appends a row.
fn insert(conn: &Connection, ocid: u64, public_key: &str, reason: &str, now: i64) -> R<()> {
    conn.execute(
        "INSERT INTO identity_keys (ocid, public_key, reason, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![ocid_param(ocid, "ocid")?, public_key, reason, now],
    )?;
    Ok(())
}

/// See [`crate::store::Store::bind_identity`].
pub(super) fn bind(conn: &mut Connection, identity: &Identity, now: i64) -> R<IdentityCheck> {
    let tx = opencharge_sqlite::write_tx(conn)?;
    let check = match current(&tx)? {
        None => {
            insert(&tx, identity.ocid, &identity.public_key, "first_start", now)?;
            IdentityCheck::Recorded
        }
        Some(found) if found == *identity => IdentityCheck::Matches,
        Some(found) => IdentityCheck::Mismatch(found),
    };
    tx.commit()?;
    Ok(check)
}

/// See [`crate::store::Store::rotate_identity`].
pub(super) fn rotate(
    conn: &mut Connection,
    old: &Identity,
    new_public_key: &str,
    now: i64,
) -> R<IdentityCheck> {
    let tx = opencharge_sqlite::write_tx(conn)?;
    let check = match current(&tx)? {
        None => {
            insert(&tx, old.ocid, &old.public_key, "first_start", now)?;
            IdentityCheck::Recorded
        }
        Some(found) if found == *old => IdentityCheck::Matches,
        Some(found) => return Ok(IdentityCheck::Mismatch(found)),
    };
    insert(&tx, old.ocid, new_public_key, "rotation", now)?;
    tx.commit()?;
    Ok(check)
}
