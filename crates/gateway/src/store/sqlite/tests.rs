//! SQLite tests that need the store's private parts: the migration runner with explicit
//! migration lists (upgrades, rollback of a failed step, a newer schema refused), group commit
//! (one commit for queued writes, a failed commit fails its whole group, a failing or panicking
//! write is undone alone, a killed process keeps every acknowledged write) and the nonce purge
//! counter. The rest of the SQLite tests and the
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

/// Waits (generously, never asserting a time) until `n` writes wait in the writer's queue.
async fn wait_queued(store: &SqliteStore, n: usize) {
    for _ in 0..2_000 {
        if store.write_stats().queued.load(Ordering::SeqCst) >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("{n} writes never queued up");
}

/// Holds the writer thread inside a job until the returned sender is dropped or sent to, so
/// the writes queued meanwhile form the next group.
async fn hold_writer(
    store: &SqliteStore,
) -> (std::sync::mpsc::Sender<()>, tokio::task::JoinHandle<()>) {
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let (started, running) = tokio::sync::oneshot::channel::<()>();
    let held = store.clone();
    let task = tokio::spawn(async move {
        held.write(move |_conn| {
            let _ = started.send(());
            let _ = wait.recv();
            Ok(())
        })
        .await
        .unwrap();
    });
    running.await.unwrap();
    (release, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_one_commit_and_each_is_answered() {
    let (_dir, store) = temp_store();
    let groups_before = store.write_stats().groups.load(Ordering::SeqCst);
    let (release, held) = hold_writer(&store).await;
    let writes: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .create_account("wallet", &format!("grouped {i}"), NOW)
                    .await
            })
        })
        .collect();
    wait_queued(&store, 20).await;
    release.send(()).unwrap();
    held.await.unwrap();
    let mut ids = std::collections::HashSet::new();
    for w in writes {
        ids.insert(w.await.unwrap().unwrap().id);
    }
    assert_eq!(ids.len(), 20, "twenty distinct accounts");
    let groups = store.write_stats().groups.load(Ordering::SeqCst) - groups_before;
    assert_eq!(
        groups, 2,
        "the held job's group, then the twenty writes in one group"
    );
    let n = store
        .query_i64("SELECT count(*) FROM accounts WHERE name LIKE 'grouped %'")
        .await
        .unwrap();
    assert_eq!(n, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_fails_every_write_of_its_group_and_keeps_nothing() {
    let (_dir, store) = temp_store();
    let (release, held) = hold_writer(&store).await;
    // The held job's group is the current one; the writes queued now form the next.
    let next = store.write_stats().groups.load(Ordering::SeqCst) + 1;
    store.inner.hooks.fail_group.store(next, Ordering::SeqCst);
    let writes: Vec<_> = (0..10)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .create_account("wallet", &format!("doomed {i}"), NOW)
                    .await
            })
        })
        .collect();
    let nonce = {
        let store = store.clone();
        tokio::spawn(async move { store.use_nonce("s", "doomed", NOW + 600, NOW).await })
    };
    wait_queued(&store, 11).await;
    release.send(()).unwrap();
    held.await.unwrap();
    for w in writes {
        let err = w.await.unwrap().unwrap_err();
        assert!(err.0.contains("commit failed"), "{err}");
    }
    assert!(
        nonce.await.unwrap().is_err(),
        "the nonce write failed with its group"
    );
    let kept = store
        .query_i64("SELECT count(*) FROM accounts WHERE name LIKE 'doomed %'")
        .await
        .unwrap();
    assert_eq!(kept, 0, "nothing of the failed group was kept");
    // The writer goes on: the same nonce is still fresh, and a new account commits.
    assert!(store
        .use_nonce("s", "doomed", NOW + 600, NOW)
        .await
        .unwrap());
    store.create_account("wallet", "after", NOW).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_or_panicking_write_is_undone_alone_and_its_group_commits() {
    let (_dir, store) = temp_store();
    let (release, held) = hold_writer(&store).await;
    let good = {
        let store = store.clone();
        tokio::spawn(async move { store.create_account("wallet", "kept", NOW).await })
    };
    wait_queued(&store, 1).await;
    let failing = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .write(|conn| {
                    conn.execute_batch(
                        "INSERT INTO nonces (scope, nonce, expires_at) VALUES ('f', 'n', 1)",
                    )?;
                    Err::<(), _>(fail("refused after writing"))
                })
                .await
        })
    };
    wait_queued(&store, 2).await;
    let panicking = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .write(|conn| -> R<()> {
                    conn.execute_batch(
                        "INSERT INTO nonces (scope, nonce, expires_at) VALUES ('p', 'n', 1)",
                    )?;
                    panic!("a bug inside a write");
                })
                .await
        })
    };
    wait_queued(&store, 3).await;
    release.send(()).unwrap();
    held.await.unwrap();
    good.await.unwrap().unwrap();
    assert!(failing
        .await
        .unwrap()
        .unwrap_err()
        .0
        .contains("refused after writing"));
    assert!(panicking.await.unwrap().unwrap_err().0.contains("panicked"));
    let nonces = store
        .query_i64("SELECT count(*) FROM nonces WHERE scope IN ('f', 'p')")
        .await
        .unwrap();
    assert_eq!(nonces, 0, "the failed and the panicked writes were undone");
    let kept = store
        .query_i64("SELECT count(*) FROM accounts WHERE name = 'kept'")
        .await
        .unwrap();
    assert_eq!(kept, 1, "the good write of the same group was committed");
}

/// Environment variable that turns the crash test's process into the writer that is killed.
const CRASH_CHILD: &str = "OPENCHARGE_TEST_CRASH_CHILD_DB";

#[test]
fn a_killed_process_never_loses_an_acknowledged_write() {
    if let Ok(path) = std::env::var(CRASH_CHILD) {
        crash_child(std::path::Path::new(&path));
        return;
    }
    use std::io::BufRead;
    let (_dir, path) = temp_db();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "store::sqlite::tests::a_killed_process_never_loses_an_acknowledged_write",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_CHILD, &path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    // Kill it (SIGKILL: no destructor, no flush) in the middle of its writes.
    for line in lines.by_ref() {
        if let Some(name) = line.unwrap().strip_prefix("ack ") {
            acked.push(name.to_owned());
            if acked.len() == 400 {
                child.kill().unwrap();
                break;
            }
        }
    }
    // What it printed before it died was acknowledged too.
    for line in lines {
        let Ok(line) = line else { break };
        if let Some(name) = line.strip_prefix("ack ") {
            acked.push(name.to_owned());
        }
    }
    child.wait().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(&path).unwrap();
        let stored = store
            .query_i64("SELECT count(*) FROM accounts WHERE name LIKE 'crash %'")
            .await
            .unwrap();
        for name in &acked {
            let sql = format!("SELECT count(*) FROM accounts WHERE name = '{name}'");
            assert_eq!(
                store.query_i64(&sql).await.unwrap(),
                1,
                "{name} was acknowledged but lost"
            );
        }
        assert!(stored >= acked.len() as i64);
    });
    assert!(acked.len() >= 400);
}

/// The crash test's child: 16 tasks create accounts without end and print `ack NAME` for each
/// one the store acknowledged, until the parent kills the process.
fn crash_child(path: &std::path::Path) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(path).unwrap();
        let tasks: Vec<_> = (0..16)
            .map(|t| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in 0.. {
                        let name = format!("crash {t}-{i}");
                        store.create_account("wallet", &name, NOW).await.unwrap();
                        use std::io::Write;
                        let mut out = std::io::stdout().lock();
                        let _ = writeln!(out, "ack {name}");
                        let _ = out.flush();
                    }
                })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    });
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
