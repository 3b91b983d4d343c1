//! Tests of the SQLite support crate on real database files in a temporary directory:
//! opening and pragmas, migrations, the IMMEDIATE write transaction and the row helpers.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use opencharge_sqlite::{
    bad_value, configure, get_mapped, get_parsed, get_parsed_opt, get_required, get_u64,
    get_u64_opt, migrate, open, schema_version, u64_to_i64, write_tx, BadValue, Error, Migration,
    Options, OutOfRange, Synchronous,
};
use rusqlite::{Connection, ErrorCode};

/// A temporary directory and a database path two levels below it (the parents do not exist).
fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a").join("b").join("db.sqlite3");
    (dir, path)
}

/// Options that touch nothing but the file.
fn bare() -> Options {
    Options {
        create_dirs: true,
        wal: false,
        synchronous: None,
        foreign_keys: false,
        busy_timeout: None,
    }
}

fn pragma(conn: &Connection, name: &str) -> String {
    conn.query_row(&format!("PRAGMA {name}"), [], |r| {
        Ok(match r.get_ref(0)? {
            rusqlite::types::ValueRef::Integer(i) => i.to_string(),
            other => String::from_utf8_lossy(other.as_bytes()?).into_owned(),
        })
    })
    .unwrap()
}

fn table_exists(conn: &Connection, name: &str) -> bool {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .unwrap()
        == 1
}

// ---- opening and pragmas ----

#[test]
fn open_creates_parent_dirs_and_sets_the_default_pragmas() {
    let (_dir, path) = temp_db();
    let conn = open(&path, &Options::default(), &[]).unwrap();
    assert!(path.exists());
    assert_eq!(pragma(&conn, "journal_mode"), "wal");
    assert_eq!(pragma(&conn, "synchronous"), "2", "synchronous=FULL");
    assert_eq!(pragma(&conn, "foreign_keys"), "1");
    assert_eq!(pragma(&conn, "busy_timeout"), "5000");
    assert_eq!(schema_version(&conn).unwrap(), 0);
}

#[test]
fn options_left_unset_keep_sqlite_defaults() {
    let (_dir, path) = temp_db();
    let conn = open(&path, &bare(), &[]).unwrap();
    assert_eq!(pragma(&conn, "journal_mode"), "delete");
}

#[test]
fn each_option_is_applied_on_its_own() {
    let (_dir, path) = temp_db();
    let options = Options {
        synchronous: Some(Synchronous::Normal),
        busy_timeout: Some(Duration::from_millis(1234)),
        ..bare()
    };
    let conn = open(&path, &options, &[]).unwrap();
    assert_eq!(pragma(&conn, "synchronous"), "1");
    assert_eq!(pragma(&conn, "busy_timeout"), "1234");
    assert_eq!(pragma(&conn, "journal_mode"), "delete");
    for (level, number) in [
        (Synchronous::Off, "0"),
        (Synchronous::Full, "2"),
        (Synchronous::Extra, "3"),
    ] {
        let options = Options {
            synchronous: Some(level),
            ..bare()
        };
        configure(&conn, &options).unwrap();
        assert_eq!(pragma(&conn, "synchronous"), number);
    }
}

#[test]
fn without_create_dirs_a_missing_parent_fails_to_open() {
    let (_dir, path) = temp_db();
    let options = Options {
        create_dirs: false,
        ..Options::default()
    };
    let err = open(&path, &options, &[]).unwrap_err();
    assert!(matches!(err, Error::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("db.sqlite3"), "{err}");
    assert!(!path.exists());
}

#[test]
fn a_parent_that_is_a_file_is_a_create_dir_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), b"x").unwrap();
    let path = dir.path().join("file").join("db.sqlite3");
    let err = open(&path, &Options::default(), &[]).unwrap_err();
    assert!(matches!(err, Error::CreateDir { .. }), "{err:?}");
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn refused_wal_and_huge_busy_timeout_are_errors() {
    // An in-memory database cannot use WAL: SQLite keeps "memory" without an error.
    let err = open(":memory:".as_ref(), &Options::default(), &[]).unwrap_err();
    match &err {
        Error::PragmaRefused {
            pragma,
            wanted,
            got,
        } => {
            assert_eq!(
                (*pragma, wanted.as_str(), got.as_str()),
                ("journal_mode", "wal", "memory")
            );
        }
        other => panic!("expected PragmaRefused, got {other:?}"),
    }
    assert!(err.to_string().contains("journal_mode"), "{err}");
    let conn = Connection::open_in_memory().unwrap();
    let options = Options {
        busy_timeout: Some(Duration::from_secs(u64::MAX)),
        ..bare()
    };
    let err = configure(&conn, &options).unwrap_err();
    assert!(matches!(err, Error::BusyTimeoutTooLong(_)), "{err:?}");
}

// ---- migrations ----

const V1: Migration = Migration::new(
    "0001_t.sql",
    "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);",
);
const V2: Migration = Migration::new(
    "0002_y.sql",
    "ALTER TABLE t ADD COLUMN y INTEGER DEFAULT 7;",
);

#[test]
fn migrations_run_in_order_and_only_new_ones_run() {
    let (_dir, path) = temp_db();
    let conn = open(&path, &Options::default(), &[V1]).unwrap();
    assert_eq!(schema_version(&conn).unwrap(), 1);
    drop(conn);
    // Re-running migration 1 would fail (the table exists) and duplicate the row.
    let conn = open(&path, &Options::default(), &[V1, V2]).unwrap();
    assert_eq!(schema_version(&conn).unwrap(), 2);
    let (rows, y): (i64, i64) = conn
        .query_row("SELECT count(*), max(y) FROM t", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((rows, y), (1, 7));
    drop(conn);
    let conn = open(&path, &Options::default(), &[V1, V2]).unwrap();
    assert_eq!(schema_version(&conn).unwrap(), 2);
}

#[test]
fn a_fresh_database_gets_every_migration() {
    let (_dir, path) = temp_db();
    let conn = open(&path, &bare(), &[V1, V2]).unwrap();
    assert_eq!(schema_version(&conn).unwrap(), 2);
    assert!(table_exists(&conn, "t"));
}

#[test]
fn a_failed_migration_leaves_the_previous_version() {
    let (_dir, path) = temp_db();
    drop(open(&path, &Options::default(), &[V1]).unwrap());
    let broken = Migration::new("0002_broken.sql", "CREATE TABLE u (x); CREATE TABLE t (x);");
    let err = open(&path, &Options::default(), &[V1, broken]).unwrap_err();
    match &err {
        Error::Migration { version, name, .. } => {
            assert_eq!((*version, *name), (2, "0002_broken.sql"));
        }
        other => panic!("expected a migration error, got {other:?}"),
    }
    assert!(err.to_string().contains("0002_broken.sql"), "{err}");
    let conn = open(&path, &Options::default(), &[V1]).unwrap();
    assert_eq!(schema_version(&conn).unwrap(), 1);
    assert!(
        !table_exists(&conn, "u"),
        "the failed migration was rolled back whole"
    );
}

#[test]
fn a_newer_database_is_refused_and_left_alone() {
    let (_dir, path) = temp_db();
    drop(open(&path, &Options::default(), &[V1, V2]).unwrap());
    let err = open(&path, &Options::default(), &[V1]).unwrap_err();
    match &err {
        Error::SchemaTooNew { found, known } => assert_eq!((*found, *known), (2, 1)),
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains('2') && text.contains('1') && text.contains("newer"),
        "{text}"
    );
    let conn = open(&path, &Options::default(), &[V1, V2]).unwrap();
    assert_eq!(schema_version(&conn).unwrap(), 2);
}

#[test]
fn a_negative_schema_version_is_refused() {
    let (_dir, path) = temp_db();
    let mut conn = open(&path, &bare(), &[]).unwrap();
    conn.pragma_update(None, "user_version", -3).unwrap();
    let err = migrate(&mut conn, &[V1]).unwrap_err();
    assert!(matches!(err, Error::BadSchemaVersion(-3)), "{err:?}");
    assert!(!table_exists(&conn, "t"));
}

// ---- write transactions ----

#[test]
fn write_tx_takes_the_write_lock_at_once() {
    let (_dir, path) = temp_db();
    let no_wait = Options {
        busy_timeout: Some(Duration::ZERO),
        ..Options::default()
    };
    let mut a = open(&path, &no_wait, &[V1]).unwrap();
    let mut b = open(&path, &no_wait, &[V1]).unwrap();
    let tx = write_tx(&mut a).unwrap();
    // A deferred transaction could start (and would fail later, on its first write)...
    b.transaction().unwrap().rollback().unwrap();
    // ... an immediate one fails at BEGIN while another writer holds the lock.
    let err = write_tx(&mut b).unwrap_err();
    assert_eq!(
        err.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy),
        "{err}"
    );
    tx.execute("INSERT INTO t VALUES (2)", []).unwrap();
    tx.commit().unwrap();
    let tx = write_tx(&mut b).unwrap();
    let rows: i64 = tx
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 2);
}

// ---- row helpers ----

/// The [`BadValue`] inside a row helper's error.
fn bad(err: &rusqlite::Error) -> &BadValue {
    match err {
        rusqlite::Error::FromSqlConversionFailure(_, _, inner) => inner
            .downcast_ref::<BadValue>()
            .unwrap_or_else(|| panic!("not a BadValue: {err:?}")),
        other => panic!("not a conversion failure: {other:?}"),
    }
}

/// A connection with one row of assorted values.
fn row_db() -> (tempfile::TempDir, Connection) {
    let (dir, path) = temp_db();
    let conn = open(
        &path,
        &Options::default(),
        &[Migration::new(
            "rows.sql",
            "CREATE TABLE r (status TEXT, num TEXT, absent TEXT, id INTEGER, neg INTEGER, \
             long TEXT, blob BLOB);
             INSERT INTO r VALUES ('paid', '42', NULL, 9223372036854775807, -5, \
             printf('%.200c', 'x'), x'0102');",
        )],
    )
    .unwrap();
    (dir, conn)
}

/// Runs `f` on the one row of `r`.
fn with_row<T>(
    conn: &Connection,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.query_row(
        "SELECT status, num, absent, id, neg, long, blob FROM r",
        [],
        f,
    )
}

#[derive(Debug, PartialEq)]
enum Status {
    Paid,
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Status, String> {
        match s {
            "paid" => Ok(Status::Paid),
            _ => Err(format!("unknown status {s:?}")),
        }
    }
}

#[test]
fn get_mapped_reads_known_text_and_names_the_column_otherwise() {
    let (_dir, conn) = row_db();
    let ok = with_row(&conn, |r| {
        get_mapped(r, 0, "status", |s| (s == "paid").then_some(1))
    });
    assert_eq!(ok.unwrap(), 1);
    let err = with_row(&conn, |r| {
        get_mapped(r, 1, "status", |s| (s == "paid").then_some(1))
    })
    .unwrap_err();
    assert_eq!(
        bad(&err),
        &BadValue {
            index: 1,
            column: "num".into(),
            value: "\"42\"".into(),
            problem: "unknown status".into(),
        }
    );
    assert!(
        err.to_string()
            .contains("column num holds \"42\": unknown status"),
        "{err}"
    );
    // NULL in a mapped column is rusqlite's type error, not a panic.
    assert!(with_row(&conn, |r| get_mapped(r, 2, "status", |_| Some(()))).is_err());
}

#[test]
fn get_parsed_goes_through_from_str() {
    let (_dir, conn) = row_db();
    assert_eq!(
        with_row(&conn, |r| get_parsed::<Status>(r, 0)).unwrap(),
        Status::Paid
    );
    assert_eq!(with_row(&conn, |r| get_parsed::<u16>(r, 1)).unwrap(), 42);
    let err = with_row(&conn, |r| get_parsed::<Status>(r, 1)).unwrap_err();
    assert_eq!(bad(&err).column, "num");
    assert_eq!(bad(&err).problem, "unknown status \"42\"");
    let err = with_row(&conn, |r| get_parsed::<u8>(r, 0)).unwrap_err();
    assert_eq!(
        (bad(&err).column.as_str(), bad(&err).value.as_str()),
        ("status", "\"paid\"")
    );
    assert_eq!(
        with_row(&conn, |r| get_parsed_opt::<u16>(r, 2)).unwrap(),
        None
    );
    assert_eq!(
        with_row(&conn, |r| get_parsed_opt::<u16>(r, 1)).unwrap(),
        Some(42)
    );
    let err = with_row(&conn, |r| get_parsed_opt::<Status>(r, 1)).unwrap_err();
    assert_eq!(bad(&err).index, 1);
}

#[test]
fn get_required_refuses_null() {
    let (_dir, conn) = row_db();
    assert_eq!(
        with_row(&conn, |r| get_required::<String>(r, 0)).unwrap(),
        "paid"
    );
    let err = with_row(&conn, |r| get_required::<String>(r, 2)).unwrap_err();
    assert_eq!(
        (bad(&err).column.as_str(), bad(&err).value.as_str()),
        ("absent", "NULL")
    );
}

#[test]
fn unsigned_ids_are_range_checked_both_ways() {
    let (_dir, conn) = row_db();
    assert_eq!(with_row(&conn, |r| get_u64(r, 3)).unwrap(), i64::MAX as u64);
    assert_eq!(
        with_row(&conn, |r| get_u64_opt(r, 3)).unwrap(),
        Some(i64::MAX as u64)
    );
    assert_eq!(with_row(&conn, |r| get_u64_opt(r, 2)).unwrap(), None);
    let err = with_row(&conn, |r| get_u64(r, 4)).unwrap_err();
    assert_eq!(
        (bad(&err).column.as_str(), bad(&err).value.as_str()),
        ("neg", "-5")
    );
    assert!(with_row(&conn, |r| get_u64_opt(r, 4)).is_err());
    let err = with_row(&conn, |r| get_u64(r, 2)).unwrap_err();
    assert_eq!(bad(&err).value, "NULL");

    assert_eq!(u64_to_i64(0, "OCID").unwrap(), 0);
    assert_eq!(u64_to_i64(i64::MAX as u64, "OCID").unwrap(), i64::MAX);
    let err = u64_to_i64(u64::MAX, "issuer OCID").unwrap_err();
    match &err {
        rusqlite::Error::ToSqlConversionFailure(inner) => assert_eq!(
            inner.downcast_ref::<OutOfRange>(),
            Some(&OutOfRange {
                what: "issuer OCID",
                value: u64::MAX
            })
        ),
        other => panic!("expected ToSqlConversionFailure, got {other:?}"),
    }
    assert!(
        err.to_string().contains("issuer OCID 18446744073709551615"),
        "{err}"
    );
    // Through `?` it becomes this crate's error too.
    let err: Error = err.into();
    assert!(matches!(err, Error::Sqlite(_)), "{err:?}");
}

#[test]
fn bad_values_are_shown_short() {
    let (_dir, conn) = row_db();
    let err = with_row(&conn, |r| Err::<(), _>(bad_value(r, 5, "too long"))).unwrap_err();
    let shown = &bad(&err).value;
    assert!(shown.chars().count() < 90 && shown.contains('…'), "{shown}");
    let err = with_row(&conn, |r| Err::<(), _>(bad_value(r, 6, "binary"))).unwrap_err();
    assert_eq!(bad(&err).value, "a blob of 2 bytes");
    // An index past the row's columns still gives an error, never a panic.
    let err = with_row(&conn, |r| Err::<(), _>(bad_value(r, 99, "missing"))).unwrap_err();
    assert_eq!(bad(&err).column, "#99");
}
