//! File modes of opened databases (Unix): with the common umask 022, the database, its `-wal`
//! and `-shm` files are 0600 and the directories created for it 0700; an existing database
//! readable by others is tightened to 0600. Its own test binary, since the umask is
//! process-wide.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use opencharge_sqlite::{open, Migration, Options};

const MIGRATIONS: &[Migration] = &[Migration::new(
    "0001_t.sql",
    "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);",
)];

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Sets the umask to 022 (what most systems and services run with).
fn umask_022() {
    // SAFETY: umask only swaps the process's file mode mask; it cannot fail.
    unsafe { libc::umask(0o022) };
}

#[test]
fn new_databases_and_their_wal_files_are_private() {
    umask_022();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a").join("b").join("db.sqlite3");
    let conn = open(&path, &Options::default(), MIGRATIONS).unwrap();
    conn.execute("INSERT INTO t (v) VALUES ('x')", []).unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let file = dir
            .path()
            .join("a")
            .join("b")
            .join(format!("db.sqlite3{suffix}"));
        assert!(file.exists(), "{} missing", file.display());
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    assert_eq!(mode(&dir.path().join("a")), 0o700);
    assert_eq!(mode(&dir.path().join("a").join("b")), 0o700);
    drop(conn);
    // Reopening leaves everything private and the data in place.
    let conn = open(&path, &Options::default(), MIGRATIONS).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn an_existing_readable_database_is_tightened_and_an_existing_dir_kept() {
    umask_022();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("old.sqlite3");
    drop(open(&path, &Options::default(), MIGRATIONS).unwrap());
    for suffix in ["", "-wal", "-shm"] {
        let file = dir.path().join(format!("old.sqlite3{suffix}"));
        if file.exists() {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let conn = open(&path, &Options::default(), MIGRATIONS).unwrap();
    conn.execute("INSERT INTO t (v) VALUES ('y')", []).unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let file = dir.path().join(format!("old.sqlite3{suffix}"));
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    // A directory that already existed is not ours to change.
    assert_eq!(mode(dir.path()), 0o755);
}
