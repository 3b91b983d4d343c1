//! SQLite identity binding: the `identity_keys` rows (migration 0003) recording the OCID and
//! public key the database belongs to, the first one written by the first start and one more
//! per on-purpose rotation; the newest row is current. The row helpers are shared with the
//! merchant (`opencharge_peer::identity`).

use opencharge_peer::identity::{current_identity, record_identity, Identity, IdentityCheck};
use rusqlite::Connection;

use super::R;

/// See [`crate::store::Store::bind_identity`].
pub(super) fn bind(conn: &mut Connection, identity: &Identity, now: i64) -> R<IdentityCheck> {
    Ok(opencharge_peer::identity::bind_identity(
        conn, identity, now,
    )?)
}

/// See [`crate::store::Store::rotate_identity`].
pub(super) fn rotate(
    conn: &mut Connection,
    old: &Identity,
    new_public_key: &str,
    now: i64,
) -> R<IdentityCheck> {
    let tx = opencharge_sqlite::write_tx(conn)?;
    let check = match current_identity(&tx)? {
        None => {
            record_identity(&tx, old.ocid, &old.public_key, "first_start", now)?;
            IdentityCheck::Recorded
        }
        Some(found) if found == *old => IdentityCheck::Matches,
        Some(found) => return Ok(IdentityCheck::Mismatch(found)),
    };
    record_identity(&tx, old.ocid, new_public_key, "rotation", now)?;
    tx.commit()?;
    Ok(check)
}
