//! The crate's typed errors: [`Error`] for opening and migrating, [`BadValue`] and
//! [`OutOfRange`] carried inside `rusqlite::Error` by the row helpers.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Why opening, configuring or migrating a database failed.
#[derive(Debug)]
pub enum Error {
    /// The parent directory of the database file could not be created.
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// The database file could not be created 0600, or an existing database file readable
    /// by others could not be tightened to 0600.
    FileMode {
        /// The file.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// SQLite could not open the database file.
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// A pragma was accepted but SQLite kept another value (for example WAL on a database
    /// that cannot use it).
    PragmaRefused {
        /// The pragma's name.
        pragma: &'static str,
        /// The value asked for.
        wanted: String,
        /// The value SQLite reports afterwards.
        got: String,
    },
    /// The busy timeout does not fit SQLite's millisecond counter (`i32`).
    BusyTimeoutTooLong(Duration),
    /// The database's `user_version` is higher than the number of migrations this build
    /// knows: it was written by a newer program and is left untouched.
    SchemaTooNew {
        /// The database's `user_version`.
        found: i64,
        /// The newest version this build knows (the number of migrations).
        known: i64,
    },
    /// The database's `user_version` is negative, which no migration list produces.
    BadSchemaVersion(i64),
    /// A migration failed; its transaction was rolled back and the database keeps the
    /// previous version.
    Migration {
        /// The version the migration would have produced.
        version: i64,
        /// The migration's name (its file name).
        name: &'static str,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// Any other SQLite failure.
    Sqlite(rusqlite::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::CreateDir { path, source } => {
                write!(f, "cannot create directory {}: {source}", path.display())
            }
            Error::FileMode { path, source } => write!(
                f,
                "cannot make database file {} private (mode 600): {source}; check that this \
                 user owns the file and its directory",
                path.display()
            ),
            Error::Open { path, source } => {
                write!(f, "cannot open database {}: {source}", path.display())
            }
            Error::PragmaRefused {
                pragma,
                wanted,
                got,
            } => {
                write!(f, "pragma {pragma} is {got} after setting it to {wanted}")
            }
            Error::BusyTimeoutTooLong(d) => {
                write!(f, "busy timeout of {d:?} does not fit in i32 milliseconds")
            }
            Error::SchemaTooNew { found, known } => write!(
                f,
                "database schema version {found} is newer than this build's {known}"
            ),
            Error::BadSchemaVersion(v) => write!(f, "database schema version {v} is negative"),
            Error::Migration {
                version,
                name,
                source,
            } => write!(f, "migration {name} to version {version} failed: {source}"),
            Error::Sqlite(e) => write!(f, "sqlite: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::CreateDir { source, .. } | Error::FileMode { source, .. } => Some(source),
            Error::Open { source, .. } | Error::Migration { source, .. } => Some(source),
            Error::Sqlite(e) => Some(e),
            Error::PragmaRefused { .. }
            | Error::BusyTimeoutTooLong(_)
            | Error::SchemaTooNew { .. }
            | Error::BadSchemaVersion(_) => None,
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        Error::Sqlite(e)
    }
}

/// A stored value that cannot be read as the type the code expects (unknown enum text, a
/// negative id, NULL in a required column). The row helpers return it inside
/// `rusqlite::Error::FromSqlConversionFailure`, so it travels through `query_row` closures;
/// its text names the column and the bad value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadValue {
    /// The column's index in the statement.
    pub index: usize,
    /// The column's name (or `#<index>` when SQLite does not know it).
    pub column: String,
    /// The stored value as text (`NULL` for NULL).
    pub value: String,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "column {} holds {}: {}",
            self.column, self.value, self.problem
        )
    }
}

impl std::error::Error for BadValue {}

/// An unsigned value too large for an SQLite INTEGER (`i64`). [`crate::u64_to_i64`] returns
/// it inside `rusqlite::Error::ToSqlConversionFailure`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfRange {
    /// What the value is (`"OCID"`, `"issuer OCID"`, ...).
    pub what: &'static str,
    /// The value.
    pub value: u64,
}

impl fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} does not fit in an SQLite INTEGER (at most {})",
            self.what,
            self.value,
            i64::MAX
        )
    }
}

impl std::error::Error for OutOfRange {}
