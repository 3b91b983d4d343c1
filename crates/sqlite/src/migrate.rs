//! `PRAGMA user_version` migrations: migration `i` of the list brings the database from
//! version `i` to `i + 1`, in one transaction with its version bump.

use rusqlite::Connection;

use crate::error::Error;
use crate::open::write_tx;

/// One schema migration, usually a `.sql` file of the user's `migrations/` folder:
///
/// ```
/// # use opencharge_sqlite::Migration;
/// const MIGRATIONS: &[Migration] = &[
///     Migration::new("0001_initial.sql", "CREATE TABLE t (x INTEGER);"),
///     // Migration::new("0002_more.sql", include_str!("../migrations/0002_more.sql")),
/// ];
/// ```
///
/// Never edit a released migration; append a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// The name shown in errors (the file name).
    pub name: &'static str,
    /// The SQL, run with `execute_batch`.
    pub sql: &'static str,
}

impl Migration {
    /// A migration named `name` running `sql`.
    pub const fn new(name: &'static str, sql: &'static str) -> Migration {
        Migration { name, sql }
    }
}

/// The database's schema version (`PRAGMA user_version`).
pub fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

/// Applies the migrations the database lacks, in order. Each one runs in its own
/// `BEGIN IMMEDIATE` transaction together with its `user_version` bump, and the version is
/// re-read inside that transaction, so two processes opening the file at once stay
/// consistent and a failed migration leaves the previous version.
///
/// A database whose version is higher than `migrations.len()` is refused with
/// [`Error::SchemaTooNew`] and not changed.
pub fn migrate(conn: &mut Connection, migrations: &[Migration]) -> Result<(), Error> {
    let known = i64::try_from(migrations.len()).unwrap_or(i64::MAX);
    loop {
        let tx = write_tx(conn)?;
        let version = schema_version(&tx)?;
        if version < 0 {
            return Err(Error::BadSchemaVersion(version));
        }
        if version > known {
            return Err(Error::SchemaTooNew {
                found: version,
                known,
            });
        }
        let Some(next) = usize::try_from(version)
            .ok()
            .and_then(|index| migrations.get(index))
        else {
            // version == known: up to date.
            tx.commit()?;
            return Ok(());
        };
        let failed = |source| Error::Migration {
            version: version + 1,
            name: next.name,
            source,
        };
        tx.execute_batch(next.sql).map_err(failed)?;
        tx.pragma_update(None, "user_version", version + 1)
            .map_err(failed)?;
        tx.commit()?;
    }
}
