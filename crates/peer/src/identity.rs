//! A peer's identity as its database records it: the OCID and public key the database was
//! created under (the newest after an on-purpose rotation), the key file that belongs beside
//! a database, and the refusal a gateway or merchant gives when the key it loaded is not the
//! one its database expects.

use std::path::{Path, PathBuf};

/// The identity a database is bound to: an OCID and its current 128-hex public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The peer's OCID.
    pub ocid: u64,
    /// The 128-hex public key of its signing key.
    pub public_key: String,
}

impl Identity {
    /// The first 16 hex digits of the public key and `…`: enough to tell keys apart in a
    /// message without printing the whole key.
    pub fn key_prefix(&self) -> String {
        key_prefix(&self.public_key)
    }
}

/// The first 16 hex digits of a public key and `…`.
pub fn key_prefix(public_key: &str) -> String {
    let head: String = public_key.chars().take(16).collect();
    format!("{head}…")
}

/// What binding a loaded identity to a database found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityCheck {
    /// The database had no identity yet: this one is now recorded.
    Recorded,
    /// The database was created under this identity (or rotated to it).
    Matches,
    /// The database belongs to another identity (returned; nothing was written).
    Mismatch(Identity),
}

/// The key file that belongs to a database: `<database without extension>.key` in the same
/// directory (`data/opencharge-gateway.sqlite3` -> `data/opencharge-gateway.key`).
pub fn key_file_beside(database: &Path) -> PathBuf {
    database.with_extension("key")
}

/// A start refused because the loaded key (or OCID) is not the one the database records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct IdentityMismatch {
    /// What kind of peer (`gateway`, `merchant`), for the message and the command it names.
    pub role: &'static str,
    /// The database file.
    pub database: PathBuf,
    /// The identity the database records.
    pub expected: Identity,
    /// The identity loaded from the configuration and the key.
    pub loaded: Identity,
    /// Where the loaded key came from (a key file path, or `key_hex in the configuration`).
    pub key_source: String,
}

impl IdentityMismatch {
    /// The operator's message: which key and OCID the database expects, which were loaded,
    /// and what to do.
    fn message(&self) -> String {
        let database = self.database.display();
        if self.expected.ocid != self.loaded.ocid {
            return format!(
                "the {role} database {database} belongs to OCID {} (public key {}), but the \
                 configuration says OCID {}. Set ocid = {} in the configuration, or give this \
                 OCID its own database.",
                self.expected.ocid,
                self.expected.key_prefix(),
                self.loaded.ocid,
                self.expected.ocid,
                role = self.role,
            );
        }
        // Only the gateway has a rotation command; a merchant's key is its identity in
        // every order it signed, so a new key means a new database.
        let change = if self.role == "gateway" {
            "or, to change the key on purpose, put the old key back and run `opencharge \
             gateway rotate-key`"
        } else {
            "or, to start under a new key on purpose, move this database aside (keep it: it \
             holds the orders signed by the old key) and start with a new database path"
        };
        format!(
            "the {role} database {database} was created under the key with public key {} \
             (OCID {}), but {} holds the key with public key {}. Start with the key file this \
             database belongs to (restore it from your backup; a rotated-out key is kept as \
             <key file>.<unix time>.old), {change}. Do not delete the database to get past \
             this: it holds the payments.",
            self.expected.key_prefix(),
            self.expected.ocid,
            self.key_source,
            self.loaded.key_prefix(),
            role = self.role,
        )
    }
}

/// The newest row of the `identity_keys` table (the gateway's migration 0003, the merchant's
/// 0002): the identity the database currently belongs to, if any.
pub fn current_identity(conn: &rusqlite::Connection) -> rusqlite::Result<Option<Identity>> {
    use rusqlite::OptionalExtension;
    conn.query_row(
        "SELECT ocid, public_key FROM identity_keys ORDER BY id DESC LIMIT 1",
        [],
        |r| {
            Ok(Identity {
                ocid: opencharge_sqlite::get_u64(r, 0)?,
                public_key: r.get(1)?,
            })
        },
    )
    .optional()
}

/// Appends an `identity_keys` row; `reason` is `first_start` or `rotation`.
pub fn record_identity(
    conn: &rusqlite::Connection,
    ocid: u64,
    public_key: &str,
    reason: &str,
    now: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO identity_keys (ocid, public_key, reason, created_at) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![
            opencharge_sqlite::u64_to_i64(ocid, "ocid")?,
            public_key,
            reason,
            now
        ],
    )?;
    Ok(())
}

/// One IMMEDIATE transaction: records `identity` if the database has none yet, else compares
/// it with the current one. The gateway's store and the merchant both bind this way.
pub fn bind_identity(
    conn: &mut rusqlite::Connection,
    identity: &Identity,
    now: i64,
) -> rusqlite::Result<IdentityCheck> {
    let tx = opencharge_sqlite::write_tx(conn)?;
    let check = match current_identity(&tx)? {
        None => {
            record_identity(&tx, identity.ocid, &identity.public_key, "first_start", now)?;
            IdentityCheck::Recorded
        }
        Some(found) if found == *identity => IdentityCheck::Matches,
        Some(found) => IdentityCheck::Mismatch(found),
    };
    tx.commit()?;
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(ocid: u64, key: char) -> Identity {
        Identity {
            ocid,
            public_key: key.to_string().repeat(128),
        }
    }

    #[test]
    fn the_key_file_sits_beside_the_database() {
        assert_eq!(
            key_file_beside(Path::new("data/opencharge-gateway.sqlite3")),
            PathBuf::from("data/opencharge-gateway.key")
        );
        assert_eq!(key_file_beside(Path::new("db")), PathBuf::from("db.key"));
    }

    #[test]
    fn mismatch_messages_name_both_keys_the_files_and_what_to_do() {
        let err = IdentityMismatch {
            role: "gateway",
            database: PathBuf::from("data/gw.sqlite3"),
            expected: identity(200, 'a'),
            loaded: identity(200, 'b'),
            key_source: "data/gw.key".into(),
        };
        let text = err.to_string();
        for needle in [
            "data/gw.sqlite3",
            "aaaaaaaaaaaaaaaa…",
            "bbbbbbbbbbbbbbbb…",
            "data/gw.key",
            "OCID 200",
            "rotate-key",
            "backup",
        ] {
            assert!(text.contains(needle), "{needle}: {text}");
        }
        assert!(!text.contains(&"a".repeat(17)), "{text}");
        let merchant = IdentityMismatch {
            role: "merchant",
            database: err.database.clone(),
            expected: err.expected.clone(),
            loaded: err.loaded.clone(),
            key_source: err.key_source.clone(),
        }
        .to_string();
        // No command that does not exist is named.
        assert!(
            !merchant.contains("rotate-key") && merchant.contains("new database path"),
            "{merchant}"
        );
        let err = IdentityMismatch {
            loaded: identity(201, 'a'),
            ..err
        };
        let text = err.to_string();
        assert!(
            text.contains("OCID 200") && text.contains("OCID 201") && text.contains("ocid = 200"),
            "{text}"
        );
    }
}
