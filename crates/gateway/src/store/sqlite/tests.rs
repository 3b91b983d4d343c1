//! SQLite-only tests of the gateway store: file creation and pragmas, the migration runner
//! (upgrades, rollback of a failed step, a newer schema refused), stored enum names, corrupt
//! rows, the poisoned connection mutex and the nonce purge. The backend-independent behaviour
//! is the contract suite in `crates/gateway/tests/store_contract/`.

use super::*;
use crate::store::{AttachedOrder, Flow, SessionStatus};
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

fn order(ocid: u64, amount_minor: i64) -> AttachedOrder {
    AttachedOrder {
        order_json: format!(r#"{{"ocid":{ocid},"id":"o1","amount":"12.34"}}"#),
        order_signature: "sig".into(),
        order_hash: "hash".into(),
        merchant_ocid: ocid,
        merchant_name: Some("Shop".into()),
        merchant_icon: None,
        order_id: "o1".into(),
        amount: "12.34".into(),
        amount_minor,
        currency: "USD".into(),
        urls_json: Some(r#"{"success":"https://shop/ok"}"#.into()),
    }
}

fn session(id: &str, flow: Flow, status: SessionStatus, account: Option<&str>) -> Session {
    Session {
        id: id.into(),
        flow,
        status,
        account_id: account.map(str::to_owned),
        expires_at: NOW + 300,
        created_at: NOW,
        status_token: format!("tok_{id}"),
        order: None,
        submitted_by: None,
        txid: None,
        paid_at: None,
        proof_json: None,
        decline_reason: None,
    }
}

/// A session with an order attached, ready to be paid by `account`.
fn payable(id: &str, account: &str, amount_minor: i64) -> Session {
    let mut s = session(
        id,
        Flow::MerchantQr,
        SessionStatus::OrderReceived,
        Some(account),
    );
    s.order = Some(order(7, amount_minor));
    s
}

fn transfer(from: &str, to: &str, minor: i64) -> Transfer {
    Transfer {
        from_account: from.into(),
        to_account: to.into(),
        currency: "USD".into(),
        minor,
    }
}

/// A funding source, a user funded with `minor` USD and merchant `ocid:7`.
async fn setup(store: &SqliteStore, minor: i64) -> (String, String) {
    store
        .ensure_account("funding", "funding", "Dev funding", NOW)
        .await
        .unwrap();
    let user = store.create_account("user", "Alice", NOW).await.unwrap();
    let merchant = store
        .ensure_account("ocid:7", "merchant", "Shop", NOW)
        .await
        .unwrap();
    if minor > 0 {
        assert!(store
            .apply_transfers("fund", &[transfer("funding", &user.id, minor)], NOW)
            .await
            .unwrap());
    }
    (user.id, merchant.id)
}

async fn usd(store: &SqliteStore, account: &str) -> i64 {
    store
        .balances(account)
        .await
        .unwrap()
        .into_iter()
        .find(|b| b.currency == "USD")
        .map_or(0, |b| b.minor)
}

async fn count(store: &SqliteStore, sql: &'static str) -> i64 {
    store
        .run(move |conn| Ok(conn.query_row(sql, [], |r| r.get(0))?))
        .await
        .unwrap()
}

#[tokio::test]
async fn open_creates_parent_dirs_and_sets_pragmas() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::open(&path).unwrap();
    assert!(path.exists());
    let (mode, sync, fk, busy): (String, i64, i64, i64) = store
        .run(|conn| {
            Ok((
                conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
                conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?,
                conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?,
                conn.query_row("PRAGMA busy_timeout", [], |r| r.get(0))?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(mode, "wal");
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
    let u: i64 = store
        .run(|conn| {
            Ok(conn.query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'u'",
                [],
                |r| r.get(0),
            )?)
        })
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
    let (_dir, store) = temp_store();
    store
        .create_session(&session("s1", Flow::WalletQr, SessionStatus::Pending, None))
        .await
        .unwrap();
    store
        .run(|conn| {
            conn.execute_batch(
                "PRAGMA ignore_check_constraints = ON; \
                 UPDATE sessions SET status = 'weird' WHERE id = 's1'; \
                 PRAGMA ignore_check_constraints = OFF;",
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let err = store.session("s1").await.unwrap_err();
    assert!(err.0.contains("weird"), "{err}");
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
    let before = count(&store, "SELECT count(*) FROM nonces").await;
    assert_eq!(before, 10);
    let calls = store.inner.nonce_calls.load(Ordering::Relaxed);
    for i in calls..=nonces::PURGE_EVERY {
        store
            .use_nonce("s", &format!("new{i}"), NOW + 100, NOW + 50)
            .await
            .unwrap();
    }
    let old = count(
        &store,
        "SELECT count(*) FROM nonces WHERE nonce LIKE 'old%'",
    )
    .await;
    assert_eq!(old, 0);
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
    assert_eq!(SCHEMA_VERSION, 1, "wave-1 databases are version 1");
}

#[tokio::test]
async fn a_version_1_database_from_wave_1_opens_unchanged() {
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
    // Opening does not re-run 0001 (it would fail on the existing tables) and keeps the rows.
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 1);
    assert_eq!(store.account("acct_1").await.unwrap().unwrap().name, "A");
    drop(store);
    // A database of a newer build (version 2) is refused and left as it is.
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA user_version = 2;").unwrap();
    }
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(err.0.contains("newer"), "{err}");
    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2);
}
