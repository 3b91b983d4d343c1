//! Opening a database file: private parent directories and file modes, pragmas (checked
//! after setting them), the migrations, and the IMMEDIATE write transaction every
//! multi-statement change uses.
//!
//! On Unix the missing parent directories are created 0700 and the database file 0600 before
//! SQLite opens it (SQLite gives its `-wal` and `-shm` files the database file's mode); an
//! existing database, `-wal` or `-shm` file readable by others is tightened to 0600, with a
//! warning in the log. Payment history is never readable by other local users.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::error::Error;
use crate::migrate::{migrate, Migration};

/// `PRAGMA synchronous` levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// `OFF` (0).
    Off,
    /// `NORMAL` (1).
    Normal,
    /// `FULL` (2).
    Full,
    /// `EXTRA` (3).
    Extra,
}

impl Synchronous {
    /// The pragma's keyword.
    fn keyword(self) -> &'static str {
        match self {
            Synchronous::Off => "OFF",
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
            Synchronous::Extra => "EXTRA",
        }
    }

    /// The number SQLite reports when the pragma is read back.
    fn number(self) -> i64 {
        match self {
            Synchronous::Off => 0,
            Synchronous::Normal => 1,
            Synchronous::Full => 2,
            Synchronous::Extra => 3,
        }
    }
}

/// How [`open`] sets up a connection. [`Options::default`] is what the gateway uses: parent
/// directories created, WAL, `synchronous=FULL`, foreign keys on, a 5 s busy timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Create the database file's missing parent directories (mode 0700 on Unix).
    pub create_dirs: bool,
    /// Switch to `journal_mode=WAL` (checked: an error if SQLite keeps another mode).
    pub wal: bool,
    /// Set `PRAGMA synchronous`; `None` keeps SQLite's default.
    pub synchronous: Option<Synchronous>,
    /// Turn `foreign_keys` on (checked); false keeps the compiled-in default (off in plain
    /// SQLite, on in rusqlite's `bundled` build).
    pub foreign_keys: bool,
    /// How long a statement waits for another connection's lock (checked); `None` keeps
    /// rusqlite's default (5 s at the time of writing).
    pub busy_timeout: Option<Duration>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            create_dirs: true,
            wal: true,
            synchronous: Some(Synchronous::Full),
            foreign_keys: true,
            busy_timeout: Some(Duration::from_secs(5)),
        }
    }
}

/// Opens (creating if needed) the database file at `path`, applies `options` with
/// [`configure`] and the pending `migrations` with [`migrate`].
///
/// Fails with [`Error::SchemaTooNew`] when the file was written by a build that knows more
/// migrations; the file is then left as it is.
pub fn open(path: &Path, options: &Options, migrations: &[Migration]) -> Result<Connection, Error> {
    if options.create_dirs {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_private_dirs(parent).map_err(|source| Error::CreateDir {
                path: parent.to_path_buf(),
                source,
            })?;
        }
    }
    if path != Path::new(":memory:") {
        make_private(path).map_err(|source| Error::FileMode {
            path: path.to_path_buf(),
            source,
        })?;
    }
    let mut conn = Connection::open(path).map_err(|source| Error::Open {
        path: path.to_path_buf(),
        source,
    })?;
    configure(&conn, options)?;
    migrate(&mut conn, migrations)?;
    Ok(conn)
}

/// Creates `dir` and its missing ancestors, each new one with mode 0700 (existing directories
/// are left as they are: they may be shared, like a home directory or the working directory).
pub fn create_private_dirs(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dirs(parent)?;
    }
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    match builder.create(dir) {
        Ok(()) => set_mode(dir, 0o700),
        // Created by someone else meanwhile: theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates the directory `dir` that belongs to one program (a wallet's data or key
/// directory) with its missing ancestors (each new one 0700), and sets `dir` itself to 0700
/// on Unix even if it existed: its files are nobody else's business.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    create_private_dirs(dir)?;
    set_mode(dir, 0o700)
}

/// Creates the database file 0600 when missing (empty: SQLite fills it), and tightens an
/// existing database, `-wal` or `-shm` file that others may read or write to 0600.
fn make_private(path: &Path) -> std::io::Result<()> {
    let mut create = std::fs::OpenOptions::new();
    create.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        create.mode(0o600);
    }
    match create.open(path) {
        Ok(_) => return set_mode(path, 0o600),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        // No parent directory (and `create_dirs` off): SQLite's open reports it.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        tighten(Path::new(&name))?;
    }
    Ok(())
}

/// Sets an existing file that group or others may access to 0600, saying so in the log; a
/// missing file is fine.
#[cfg(unix)]
fn tighten(file: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = match std::fs::metadata(file) {
        Ok(meta) => meta.permissions().mode() & 0o777,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if mode & 0o077 != 0 {
        set_mode(file, 0o600)?;
        tracing::warn!(
            file = %file.display(),
            "database file had mode {mode:o} (readable by other local users); set to 600"
        );
    }
    Ok(())
}

/// Nothing to tighten off Unix.
#[cfg(not(unix))]
fn tighten(_file: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Sets the Unix mode of `path` exactly (the umask may have taken bits away).
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

/// Sets the pragmas of `options` on `conn` (everything but `create_dirs`) and reads each one
/// back, since SQLite silently keeps the old value of some (WAL on an in-memory database,
/// `foreign_keys` inside a transaction).
pub fn configure(conn: &Connection, options: &Options) -> Result<(), Error> {
    if let Some(timeout) = options.busy_timeout {
        let ms =
            i32::try_from(timeout.as_millis()).map_err(|_| Error::BusyTimeoutTooLong(timeout))?;
        let got: i64 = conn.pragma_update_and_check(None, "busy_timeout", ms, |r| r.get(0))?;
        check("busy_timeout", i64::from(ms), got)?;
    }
    if options.wal {
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::PragmaRefused {
                pragma: "journal_mode",
                wanted: "wal".into(),
                got: mode,
            });
        }
    }
    if let Some(level) = options.synchronous {
        conn.pragma_update(None, "synchronous", level.keyword())?;
        let got: i64 = conn.pragma_query_value(None, "synchronous", |r| r.get(0))?;
        check("synchronous", level.number(), got)?;
    }
    if options.foreign_keys {
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let got: i64 = conn.pragma_query_value(None, "foreign_keys", |r| r.get(0))?;
        check("foreign_keys", 1, got)?;
    }
    Ok(())
}

/// An error unless the pragma read back as the value set.
fn check(pragma: &'static str, wanted: i64, got: i64) -> Result<(), Error> {
    if wanted == got {
        Ok(())
    } else {
        Err(Error::PragmaRefused {
            pragma,
            wanted: wanted.to_string(),
            got: got.to_string(),
        })
    }
}

/// Starts a write transaction that takes the write lock at once (`BEGIN IMMEDIATE`): a
/// read-then-write change cannot race another writer or fail half-way on a lock upgrade.
pub fn write_tx(conn: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
}
