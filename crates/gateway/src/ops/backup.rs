//! `opencharge gateway backup --to FILE`: a consistent copy of a gateway's SQLite database,
//! taken with SQLite's online backup API while the gateway runs (a WAL reader sees one
//! snapshot; payments go on meanwhile). The copy is created with mode 0600 and never replaces
//! an existing file; it is checked (`PRAGMA quick_check`) and synced before the command says
//! it is done. Restoring is stopping the gateway, putting the copy in place of the database
//! (without the old `-wal`/`-shm` files) and starting it again: see `docs/operating.md`. A
//! PostgreSQL database is refused with a pointer to `pg_dump` and WAL archiving.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

/// Back up a running (or stopped) gateway's database to a new file.
///
/// Example: `opencharge gateway backup --config gateway.toml --to /var/backups/gw-2026-01-31.sqlite3`
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["config", "database"])))]
pub struct BackupArgs {
    /// The file to write; it must not exist yet (created with mode 0600).
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
    /// The gateway's TOML config: its `database` is backed up.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The gateway's SQLite database file (a postgres:// URL is refused: use `pg_dump`).
    #[arg(long, value_name = "DB", value_parser = crate::database::Database::parse)]
    pub database: Option<crate::database::Database>,
}

/// Why a backup failed (nothing is left at the destination).
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The destination exists already.
    #[error("{0} exists already; backups never overwrite a file: choose a new name or move the old one away")]
    Exists(PathBuf),
    /// The destination cannot be created.
    #[error("cannot create {path}: {source}")]
    Create {
        /// Destination.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The source database cannot be opened or is not a gateway database.
    #[error("cannot back up {path}: {message}")]
    Source {
        /// Source.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// SQLite failed during the copy or the check.
    #[error("backup of {path} failed: {message}")]
    Copy {
        /// Source.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// What a finished backup copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// Database pages copied.
    pub pages: i64,
    /// Size of the copy, bytes.
    pub bytes: u64,
    /// The copy's schema version (`PRAGMA user_version`).
    pub schema_version: i64,
}

/// How often a step that finds the source locked is retried (50 ms apart).
const BUSY_RETRIES: u32 = 200;

/// Copies the gateway database `source` to the new file `to` (mode 0600) with the online
/// backup API, checks the copy and syncs it. On any failure the new file is removed.
pub fn backup_database(source: &Path, to: &Path) -> Result<BackupReport, BackupError> {
    let src = open_source(source)?;
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(to).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => BackupError::Exists(to.to_path_buf()),
        _ => BackupError::Create {
            path: to.to_path_buf(),
            source: e,
        },
    })?;
    drop(file);
    let result = copy_into(&src, source, to);
    if result.is_err() {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut path = to.as_os_str().to_owned();
            path.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(path));
        }
    }
    result
}

/// Opens an existing gateway database for reading (never creates one).
fn open_source(path: &Path) -> Result<Connection, BackupError> {
    let bad = |message: String| BackupError::Source {
        path: path.to_path_buf(),
        message,
    };
    if !path.is_file() {
        return Err(bad("no such database file".into()));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| bad(e.to_string()))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| bad(e.to_string()))?;
    let is_gateway: bool = conn
        .query_row(
            "SELECT count(*) = 1 FROM sqlite_master WHERE type = 'table' AND name = 'ledger_entries'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| bad(format!("not a readable SQLite database: {e}")))?;
    if !is_gateway {
        return Err(bad(
            "not an Opencharge gateway database (it has no ledger_entries table)".into(),
        ));
    }
    Ok(conn)
}

/// The copy itself, into the empty file `to`.
fn copy_into(src: &Connection, source: &Path, to: &Path) -> Result<BackupReport, BackupError> {
    let fail = |message: String| BackupError::Copy {
        path: source.to_path_buf(),
        message,
    };
    let mut dst =
        Connection::open(to).map_err(|e| fail(format!("cannot open {}: {e}", to.display())))?;
    {
        let backup = Backup::new(src, &mut dst).map_err(|e| fail(e.to_string()))?;
        let mut retries = 0;
        loop {
            // -1: every page in one step, inside one read transaction: one consistent snapshot.
            match backup.step(-1).map_err(|e| fail(e.to_string()))? {
                StepResult::Done => break,
                StepResult::More => {}
                StepResult::Busy | StepResult::Locked if retries < BUSY_RETRIES => {
                    retries += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => return Err(fail("the database stayed locked for 10 s".into())),
            }
        }
    }
    let check: String = dst
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| fail(format!("cannot check the copy: {e}")))?;
    if check != "ok" {
        return Err(fail(format!("the copy fails PRAGMA quick_check: {check}")));
    }
    let pages: i64 = dst
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .map_err(|e| fail(e.to_string()))?;
    let schema_version: i64 = dst
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| fail(e.to_string()))?;
    dst.close()
        .map_err(|(_, e)| fail(format!("cannot close the copy: {e}")))?;
    let file = std::fs::File::open(to).map_err(|e| fail(e.to_string()))?;
    file.sync_all()
        .map_err(|e| fail(format!("cannot sync the copy: {e}")))?;
    let bytes = file.metadata().map_err(|e| fail(e.to_string()))?.len();
    Ok(BackupReport {
        pages,
        bytes,
        schema_version,
    })
}

/// Why `backup` does not copy a PostgreSQL database, and what to use instead.
pub fn postgres_refusal(database: &crate::database::Database) -> String {
    format!(
        "{} is a PostgreSQL database: `opencharge gateway backup` copies SQLite files only. Back \
         it up with PostgreSQL's own tools: `pg_dump --format=custom` for a consistent logical \
         copy, or base backups (`pg_basebackup`) with WAL archiving for point-in-time recovery \
         (docs/operating.md, \"Many instances\")",
        database.redacted()
    )
}

/// The `backup` subcommand: exit 0 when the copy is written and checked, 2 for a usage or
/// configuration problem, 1 when the backup failed.
pub fn run(args: &BackupArgs) -> ExitCode {
    let database = match (&args.database, &args.config) {
        (Some(db), _) => db.clone(),
        (None, Some(config)) => match crate::GatewayConfig::from_file(config) {
            Ok(config) => config.database,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        (None, None) => {
            eprintln!("error: name the database with --database DB or --config FILE");
            return ExitCode::from(2);
        }
    };
    let database = match database.sqlite_path() {
        Some(path) => path.to_path_buf(),
        None => {
            eprintln!("error: {}", postgres_refusal(&database));
            return ExitCode::from(2);
        }
    };
    match backup_database(&database, &args.to) {
        Ok(report) => {
            println!(
                "backed up {} to {} ({} pages, {} bytes, schema version {}, mode 0600)",
                database.display(),
                args.to.display(),
                report.pages,
                report.bytes,
                report.schema_version
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_database_is_refused_with_a_pointer_to_pg_dump() {
        let dir = tempfile::tempdir().unwrap();
        let to = dir.path().join("copy.sqlite3");
        let database =
            crate::database::Database::parse("postgres://gw:hunter2@127.0.0.1/gw").unwrap();
        let args = BackupArgs {
            to: to.clone(),
            config: None,
            database: Some(database.clone()),
        };
        assert_eq!(run(&args), ExitCode::from(2));
        assert!(!to.exists(), "nothing is written");
        let message = postgres_refusal(&database);
        assert!(message.contains("pg_dump") && message.contains("WAL archiving"));
        assert!(!message.contains("hunter2"), "{message}");
    }
}
