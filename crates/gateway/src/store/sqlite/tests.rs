//! SQLite tests that need the store's private parts: the migration runner with explicit
//! migration lists (upgrades, rollback of a failed step, a newer schema refused), the poisoned
//! connection mutex and the nonce purge counter. The rest of the SQLite tests and the
//! backend-independent contract suite are in `crates/gateway/tests/sqlite_store.rs`.

use super::*;
use opencharge_sqlite::Migration;
use std::path::PathBuf;

const NOW: i64 = 1_700_000_000;

fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("dirs").join("gateway.db");
    (dir, path)
}

fn temp_store() -> (tempfile::TempDir, SqliteStore) {
    let (dir, path) = temp_db();
    let store = SqliteStore::open(&path).unwrap();
    (dir, store)
}

#[tokio::test]
async fn migrations_apply_only_new_ones() {
    let (_dir, path) = temp_db();
    let v1: &[Migration] = &[Migration::new(
        "0001_t.sql",
        "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);",
    )];
    let v2: &[Migration] = &[
        v1[0],
        Migration::new(
            "0002_y.sql",
            "ALTER TABLE t ADD COLUMN y INTEGER DEFAULT 7;",
        ),
    ];
    let store = SqliteStore::open_with_migrations(&path, v1).unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 1);
    drop(store);
    // Re-running migration 1 would fail (table exists) and duplicate the row.
    let store = SqliteStore::open_with_migrations(&path, v2).unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 2);
    let (rows, y): (i64, i64) = store
        .run(|conn| {
            Ok(conn.query_row("SELECT count(*), max(y) FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?)
        })
        .await
        .unwrap();
    assert_eq!((rows, y), (1, 7));
    drop(store);
    let store = SqliteStore::open_with_migrations(&path, v2).unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 2);
}

#[tokio::test]
async fn failed_migration_leaves_previous_version() {
    let (_dir, path) = temp_db();
    let v1: &[Migration] = &[Migration::new("0001_t.sql", "CREATE TABLE t (x INTEGER);")];
    drop(SqliteStore::open_with_migrations(&path, v1).unwrap());
    let broken: &[Migration] = &[
        v1[0],
        Migration::new("0002_broken.sql", "CREATE TABLE u (x); CREATE TABLE t (x);"),
    ];
    assert!(SqliteStore::open_with_migrations(&path, broken).is_err());
    let store = SqliteStore::open_with_migrations(&path, v1).unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 1);
    let u = store
        .query_i64("SELECT count(*) FROM sqlite_master WHERE name = 'u'")
        .await
        .unwrap();
    assert_eq!(u, 0, "the failed migration was rolled back whole");
}

#[tokio::test]
async fn newer_schema_version_is_rejected() {
    let (_dir, path) = temp_db();
    let v2: &[Migration] = &[
        Migration::new("0001_a.sql", "CREATE TABLE a (x);"),
        Migration::new("0002_b.sql", "CREATE TABLE b (x);"),
    ];
    drop(SqliteStore::open_with_migrations(&path, v2).unwrap());
    let err = SqliteStore::open_with_migrations(&path, &v2[..1]).unwrap_err();
    assert!(err.0.contains("newer"), "{err}");
}

#[tokio::test]
async fn poisoned_mutex_is_a_store_error() {
    let (_dir, store) = temp_store();
    let inner = Arc::clone(&store.inner);
    let _ = std::thread::spawn(move || {
        let _guard = inner.conn.lock().unwrap();
        panic!("poison the connection mutex");
    })
    .join();
    let err = store.account("x").await.unwrap_err();
    assert!(err.0.contains("poisoned"), "{err}");
}

#[tokio::test]
async fn expired_nonces_are_purged() {
    let (_dir, store) = temp_store();
    for i in 0..10 {
        store
            .use_nonce("s", &format!("old{i}"), NOW + 1, NOW)
            .await
            .unwrap();
    }
    let before = store
        .query_i64("SELECT count(*) FROM nonces")
        .await
        .unwrap();
    assert_eq!(before, 10);
    let calls = store.inner.nonce_calls.load(Ordering::Relaxed);
    for i in calls..=nonces::PURGE_EVERY {
        store
            .use_nonce("s", &format!("new{i}"), NOW + 100, NOW + 50)
            .await
            .unwrap();
    }
    let old = store
        .query_i64("SELECT count(*) FROM nonces WHERE nonce LIKE 'old%'")
        .await
        .unwrap();
    assert_eq!(old, 0);
}
