//! The SQLite store's tests: the shared `Store` contract suite run on SQLite, then what only
//! SQLite has (file creation and pragmas, reopening, the migration files and a wave-1 database,
//! stored enum names, a corrupt row). Tests that need the store's private parts (migration
//! runner, connection mutex, nonce purge counter) are unit tests in `src/store/sqlite/tests.rs`.

#[macro_use]
mod store_contract;

use std::path::PathBuf;

use opencharge_gateway::store::sqlite::{SqliteStore, MIGRATIONS, SCHEMA_VERSION};
use opencharge_gateway::store::{Flow, SessionStatus, Store};
use rusqlite::Connection;
use store_contract::{payable, session, setup, usd, Backend};

/// The SQLite backend: a fresh database file in a temporary directory per test.
struct Sqlite;

impl Backend for Sqlite {
    type Store = SqliteStore;
    type Guard = (tempfile::TempDir, PathBuf);

    async fn open() -> (Self::Guard, SqliteStore) {
        let (dir, path) = temp_db();
        let store = SqliteStore::open(&path).unwrap();
        ((dir, path), store)
    }

    async fn open_again(guard: &Self::Guard) -> SqliteStore {
        SqliteStore::open(&guard.1).unwrap()
    }

    async fn scalar(store: &SqliteStore, sql: &'static str) -> i64 {
        store.query_i64(sql).await.unwrap()
    }

    async fn execute(store: &SqliteStore, sql: &'static str) {
        store.execute_sql(sql).await.unwrap();
    }
}

mod sqlite {
    store_contract!(super::Sqlite);
}

/// A temporary directory and a database path two missing directories below it.
fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("dirs").join("gateway.db");
    (dir, path)
}

#[tokio::test]
async fn open_creates_parent_dirs_and_sets_pragmas() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::open(&path).unwrap();
    assert!(path.exists());
    let wal = store
        .query_i64("SELECT count(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'")
        .await
        .unwrap();
    let sync = store.query_i64("PRAGMA synchronous").await.unwrap();
    let fk = store.query_i64("PRAGMA foreign_keys").await.unwrap();
    let busy = store.query_i64("PRAGMA busy_timeout").await.unwrap();
    assert_eq!(wal, 1, "journal_mode=WAL");
    assert_eq!(sync, 2, "synchronous=FULL");
    assert_eq!(fk, 1);
    assert_eq!(busy, 5000);
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
}

#[tokio::test]
async fn reopen_keeps_data_and_schema_version() {
    let (_dir, path) = temp_db();
    let user_id = {
        let store = SqliteStore::open(&path).unwrap();
        let (user, _) = setup(&store, 500).await;
        store
            .create_session(&payable("s1", &user, 100))
            .await
            .unwrap();
        user
    };
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(usd(&store, &user_id).await, 500);
    let s = store.session("s1").await.unwrap().unwrap();
    assert_eq!(s, payable("s1", &user_id, 100));
}

#[test]
fn stored_names_match_serde() {
    for flow in [Flow::WalletQr, Flow::MerchantQr, Flow::Checkout] {
        let json = serde_json::to_string(&flow).unwrap();
        assert_eq!(json, format!("\"{}\"", flow.as_str()));
        assert_eq!(Flow::parse(flow.as_str()), Some(flow));
    }
    for status in [
        SessionStatus::Pending,
        SessionStatus::OrderReceived,
        SessionStatus::Paid,
        SessionStatus::Declined,
        SessionStatus::Expired,
    ] {
        let json = serde_json::to_string(&status).unwrap();
        assert_eq!(json, format!("\"{}\"", status.as_str()));
        assert_eq!(SessionStatus::parse(status.as_str()), Some(status));
    }
}

#[tokio::test]
async fn unknown_status_text_is_an_error_not_a_panic() {
    let (_guard, store) = Sqlite::open().await;
    store
        .create_session(&session("s1", Flow::WalletQr, SessionStatus::Pending, None))
        .await
        .unwrap();
    store
        .execute_sql(
            "PRAGMA ignore_check_constraints = ON; \
             UPDATE sessions SET status = 'weird' WHERE id = 's1'; \
             PRAGMA ignore_check_constraints = OFF;",
        )
        .await
        .unwrap();
    let err = store.session("s1").await.unwrap_err();
    assert!(err.0.contains("weird"), "{err}");
}

#[test]
fn migration_files_are_numbered_and_all_registered() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        MIGRATIONS.len(),
        "every .sql file is in MIGRATIONS"
    );
    for (i, path) in files.iter().enumerate() {
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with(&format!("{:04}_", i + 1)),
            "{name} is migration {}",
            i + 1
        );
        assert_eq!(MIGRATIONS[i].name, name);
        assert_eq!(
            std::fs::read_to_string(path).unwrap(),
            MIGRATIONS[i].sql,
            "{name}"
        );
    }
    assert_eq!(
        SCHEMA_VERSION, 6,
        "version 2 added the push tables, 3 the identity, 4 the queue leases, 5 the \
         third-party settlement jobs, 6 the user OCIDs and received receipts"
    );
}

#[tokio::test]
async fn a_version_4_database_gets_the_txids_of_its_transfer_results() {
    // Before version 5 a `/transfer/create` result was stored by key only; the upgrade reads
    // each result's txid so `GET /verify/{txid}` finds the proofs issued before it.
    let (_dir, path) = temp_db();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    {
        let conn = Connection::open(&path).unwrap();
        for m in &MIGRATIONS[..4] {
            conn.execute_batch(m.sql).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 4; \
             INSERT INTO idempotency (kind, key, result_json, created_at) VALUES \
             ('transfer', 'transfer:9:r1', '{\"proof\":{\"txid\":\"tx_old\"},\"signature\":\"s\"}', 1), \
             ('transfer', 'transfer:9:r2', 'not json', 1);",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(
        store.stored_proof("tx_old").await.unwrap().as_deref(),
        Some(r#"{"proof":{"txid":"tx_old"},"signature":"s"}"#)
    );
    assert_eq!(store.stored_proof("not json").await.unwrap(), None);
}

#[tokio::test]
async fn a_version_1_database_from_wave_1_keeps_its_rows_and_is_upgraded() {
    // Wave 1 ran the same schema from a string in the source and set user_version = 1.
    let (_dir, path) = temp_db();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0].sql).unwrap();
        conn.execute_batch(
            "PRAGMA user_version = 1; \
             INSERT INTO accounts (id, kind, name, created_at) VALUES ('acct_1', 'user', 'A', 1);",
        )
        .unwrap();
    }
    // Opening does not re-run 0001 (it would fail on the existing tables), keeps the rows and
    // applies only the later migrations (0002 the push tables, 0003 the identity, ...).
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(store.account("acct_1").await.unwrap().unwrap().name, "A");
    assert!(store.push_queue().await.unwrap().is_empty());
    drop(store);
    // A database of a newer build is refused and left as it is.
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!("PRAGMA user_version = {};", SCHEMA_VERSION + 1))
            .unwrap();
    }
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(err.0.contains("newer"), "{err}");
    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION + 1);
}

#[tokio::test]
async fn the_write_probe_fails_while_another_connection_holds_the_write_lock() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::open(&path).unwrap();
    let probe_wait = std::time::Duration::from_millis(200);
    store.check_writable(probe_wait).await.unwrap();

    let mut other = Connection::open(&path).unwrap();
    let lock = other
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    let err = store.check_writable(probe_wait).await.unwrap_err();
    assert!(err.0.contains("write lock"), "{err}");
    assert_eq!(
        store.query_i64("PRAGMA busy_timeout").await.unwrap(),
        5000,
        "the probe restores the connection's busy timeout"
    );
    lock.rollback().unwrap();
    store.check_writable(probe_wait).await.unwrap();
}
