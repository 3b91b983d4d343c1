//! The PostgreSQL store's tests, on a fresh database of the server of `OPENCHARGE_TEST_PG_URL`
//! per test (they fail without it): the shared `Store` contract suite, then what only
//! PostgreSQL has: migrations applied once by racing instances and refused when newer, TLS and
//! password handling of the URL, races across many pool connections that only the database's
//! rules (conditional updates, unique keys, lock order, the per-account event lock) can win,
//! and the LISTEN/NOTIFY signals between stores, reconnect included.

#[macro_use]
mod store_contract;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use opencharge_gateway::domain::ledger::LedgerOutcome;
use opencharge_gateway::domain::settle_payment;
use opencharge_gateway::store::postgres::{PostgresStore, SCHEMA_VERSION};
use opencharge_gateway::store::{
    Flow, SessionStatus, SessionUpdate, SettleOutcome, Settlement, Store, StoreSignal,
    UpdateOutcome,
};
use opencharge_testkit::TestDatabase;
use store_contract::{order, payable, session, setup, transfer, usd, Backend, NOW};

/// The PostgreSQL backend: a fresh database per test.
struct Postgres;

/// Pool size of the contract's stores.
const POOL: usize = 8;

/// A fresh database (the test fails, never skips, without `OPENCHARGE_TEST_PG_URL`).
async fn database() -> TestDatabase {
    TestDatabase::create().await.unwrap()
}

impl Backend for Postgres {
    type Store = PostgresStore;
    type Guard = TestDatabase;

    async fn open() -> (TestDatabase, PostgresStore) {
        let db = database().await;
        let store = PostgresStore::connect(db.url(), POOL).await.unwrap();
        (db, store)
    }

    async fn open_again(guard: &TestDatabase) -> PostgresStore {
        PostgresStore::connect(guard.url(), POOL).await.unwrap()
    }

    async fn scalar(store: &PostgresStore, sql: &'static str) -> i64 {
        store.query_i64(sql).await.unwrap()
    }

    async fn execute(store: &PostgresStore, sql: &'static str) {
        store.execute_sql(sql).await.unwrap();
    }
}

mod postgres {
    store_contract!(super::Postgres);
}

/// How long a test waits for a signal that should arrive at once on loopback.
const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_instances_apply_the_migrations_exactly_once() {
    let db = database().await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let url = db.url().to_owned();
        tasks.push(tokio::spawn(async move {
            PostgresStore::connect(&url, 2).await
        }));
    }
    let mut stores = Vec::new();
    for t in tasks {
        stores.push(t.await.unwrap().unwrap());
    }
    let store = &stores[0];
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(
        store
            .query_i64("SELECT count(*) FROM schema_migrations")
            .await
            .unwrap(),
        SCHEMA_VERSION
    );
    // Every instance works on the one schema.
    for (i, s) in stores.iter().enumerate() {
        s.ensure_account(&format!("acct_{i}"), "user", "A", NOW)
            .await
            .unwrap();
    }
    assert_eq!(
        store
            .query_i64("SELECT count(*) FROM accounts")
            .await
            .unwrap(),
        8
    );
}

#[tokio::test]
async fn a_database_of_a_newer_build_is_refused_and_left_as_it_is() {
    let db = database().await;
    let store = PostgresStore::connect(db.url(), 2).await.unwrap();
    store
        .execute_sql(&format!(
            "INSERT INTO schema_migrations (version, name, applied_at) \
             VALUES ({}, '0099_future.sql', 0)",
            SCHEMA_VERSION + 1
        ))
        .await
        .unwrap();
    let err = PostgresStore::connect(db.url(), 2).await.unwrap_err();
    assert!(err.0.contains("newer"), "{err}");
    assert_eq!(
        store
            .query_i64("SELECT max(version) FROM schema_migrations")
            .await
            .unwrap(),
        SCHEMA_VERSION + 1
    );
    // A recorded migration under another name is refused too.
    store
        .execute_sql(&format!(
            "DELETE FROM schema_migrations WHERE version > {SCHEMA_VERSION}; \
             UPDATE schema_migrations SET name = 'other.sql' WHERE version = 1"
        ))
        .await
        .unwrap();
    let err = PostgresStore::connect(db.url(), 2).await.unwrap_err();
    assert!(err.0.contains("other.sql"), "{err}");
}

#[tokio::test]
async fn tls_is_refused_not_skipped_and_errors_hide_the_password() {
    let db = database().await;
    let url = url::Url::parse(db.url()).unwrap();
    let with_tls = format!("{}?sslmode=require", db.url());
    let err = PostgresStore::connect(&with_tls, 2).await.unwrap_err();
    assert!(err.0.contains("sslmode=require"), "{err}");
    let err = PostgresStore::connect(&format!("{}?sslmode=verify-full", db.url()), 2)
        .await
        .unwrap_err();
    assert!(err.0.contains("never falls back to plain text"), "{err}");

    let mut missing = url.clone();
    missing.set_password(Some("s3cret-pass")).unwrap();
    missing.set_path("/no_such_database_here");
    let err = PostgresStore::connect(missing.as_str(), 2)
        .await
        .unwrap_err();
    assert!(!err.0.contains("s3cret-pass"), "{err}");
    assert!(err.0.contains("no_such_database_here"), "{err}");
    assert!(err.0.contains("***"), "the URL is shown redacted: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_connections_race_one_compare_and_set_and_one_wins() {
    let db = database().await;
    let store = Arc::new(PostgresStore::connect(db.url(), 32).await.unwrap());
    let (user, _) = setup(&*store, 0).await;
    store
        .create_session(&session(
            "q1",
            Flow::WalletQr,
            SessionStatus::Pending,
            Some(&user),
        ))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..32u64 {
        let store = Arc::clone(&store);
        let user = user.clone();
        tasks.push(tokio::spawn(async move {
            let mut claimed = session(
                "q1",
                Flow::WalletQr,
                SessionStatus::OrderReceived,
                Some(&user),
            );
            claimed.order = Some(order(100 + i, 1));
            claimed.submitted_by = Some(100 + i);
            store
                .update_session_if(&SessionUpdate {
                    session: claimed,
                    expected_status: SessionStatus::Pending,
                    expected_account: Some(user),
                    event: Some(opencharge_gateway::store::NewEvent {
                        account_id: "q1-owner".into(),
                        kind: "payment_request".into(),
                        payload_json: "{}".into(),
                        now: NOW,
                    }),
                    nonce: None,
                })
                .await
                .unwrap()
        }));
    }
    let mut applied = 0;
    for t in tasks {
        match t.await.unwrap() {
            UpdateOutcome::Applied => applied += 1,
            UpdateOutcome::Refused => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(applied, 1);
    assert_eq!(
        store.events_after("q1-owner", 0, 100).await.unwrap().len(),
        1,
        "only the winner's event"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_settlements_of_one_session_debit_once() {
    let db = database().await;
    let store = Arc::new(PostgresStore::connect(db.url(), 32).await.unwrap());
    let (user, merchant) = setup(&*store, 1000).await;
    store
        .create_session(&payable("s1", &user, 250))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..32 {
        let store = Arc::clone(&store);
        let s = Settlement {
            session_id: "s1".into(),
            account_id: user.clone(),
            idempotency_key: format!("key{i}"),
            consent_json: "{}".into(),
            transfers: vec![transfer(&user, "ocid:7", 250)],
            txid: format!("tx{i}"),
            proof_json: format!(r#"{{"proof":{{"txid":"tx{i}"}},"signature":"s"}}"#),
            webhook: Some(("https://shop/transfer/webhook".into(), 7)),
            event_json: r#"{"status":"paid"}"#.into(),
            now: NOW + 10,
        };
        tasks.push(tokio::spawn(async move {
            settle_payment(&*store, &s).await.unwrap()
        }));
    }
    let mut paid = 0;
    for t in tasks {
        match t.await.unwrap() {
            SettleOutcome::Paid(_) => paid += 1,
            SettleOutcome::AlreadyPaid(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(paid, 1);
    assert_eq!(usd(&*store, &user).await, 750);
    assert_eq!(usd(&*store, &merchant).await, 250);
    assert_eq!(
        store
            .query_i64("SELECT count(*) FROM ledger_entries WHERE from_account <> 'funding'")
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .query_i64("SELECT count(*) FROM webhooks")
            .await
            .unwrap(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_nonce_from_sixteen_connections_is_accepted_once() {
    let db = database().await;
    let store = Arc::new(PostgresStore::connect(db.url(), 16).await.unwrap());
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store
                .use_nonce("ocid:7", "n-1", NOW + 300, NOW)
                .await
                .unwrap()
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        accepted += usize::from(t.await.unwrap());
    }
    assert_eq!(accepted, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn payments_in_opposite_directions_never_deadlock_and_keep_the_sum() {
    let db = database().await;
    let store = Arc::new(PostgresStore::connect(db.url(), 32).await.unwrap());
    store
        .ensure_account("funding", "funding", "Dev funding", NOW)
        .await
        .unwrap();
    let a = store.create_account("user", "A", NOW).await.unwrap().id;
    let b = store.create_account("user", "B", NOW).await.unwrap().id;
    for account in [&a, &b] {
        assert_eq!(
            store
                .apply_transfers("fund", &[transfer("funding", account, 10_000)], NOW)
                .await
                .unwrap(),
            LedgerOutcome::Applied
        );
    }
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = Arc::clone(&store);
        let (from, to) = if i % 2 == 0 {
            (a.clone(), b.clone())
        } else {
            (b.clone(), a.clone())
        };
        tasks.push(tokio::spawn(async move {
            // Each payment also moves a cent back, so both rows are debited and credited.
            store
                .apply_transfers(
                    &format!("p{i}"),
                    &[transfer(&from, &to, 3), transfer(&to, &from, 1)],
                    NOW,
                )
                .await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), LedgerOutcome::Applied);
    }
    // Not one deadlock was even retried: the balance rows are locked in one order.
    assert_eq!(
        store
            .query_i64("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
            .await
            .unwrap(),
        0
    );
    // 100 payments each way: the balances are back where they started.
    assert_eq!(usd(&*store, &a).await, 10_000);
    assert_eq!(usd(&*store, &b).await, 10_000);
    assert_eq!(
        store
            .query_i64("SELECT sum(minor) FROM balances")
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .query_i64("SELECT count(*) FROM ledger_entries")
            .await
            .unwrap(),
        2 + 400
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_following_an_accounts_events_never_skips_one() {
    let db = database().await;
    let store = Arc::new(PostgresStore::connect(db.url(), 16).await.unwrap());
    let mut writers = Vec::new();
    for w in 0..8 {
        let store = Arc::clone(&store);
        writers.push(tokio::spawn(async move {
            for i in 0..100 {
                store
                    .append_event("acct_busy", "payment_status", &format!("{w}-{i}"), NOW)
                    .await
                    .unwrap();
            }
        }));
    }
    let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let reader = {
        let store = Arc::clone(&store);
        let writing = Arc::clone(&writing);
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut last = 0;
            loop {
                // Read the flag first: a read after the writers finished sees every event.
                let finished = !writing.load(std::sync::atomic::Ordering::SeqCst);
                let page = store.events_after("acct_busy", last, 50).await.unwrap();
                if page.is_empty() && finished {
                    break seen;
                }
                for event in page {
                    assert!(event.id > last);
                    last = event.id;
                    seen.push(event.id);
                }
            }
        })
    };
    for w in writers {
        w.await.unwrap();
    }
    writing.store(false, std::sync::atomic::Ordering::SeqCst);
    let seen: Vec<i64> = reader.await.unwrap();
    let all: Vec<i64> = store
        .events_after("acct_busy", 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(all.len(), 800);
    let skipped: Vec<i64> = all
        .iter()
        .filter(|id| !seen.contains(id))
        .copied()
        .collect();
    assert!(
        skipped.is_empty(),
        "the reader's cursor skipped events committed after a later id: {skipped:?}"
    );
    assert_eq!(seen, all);
}

/// The next signal on `rx` (a lagged receiver counts as `Resync`).
async fn next_signal(rx: &mut tokio::sync::broadcast::Receiver<StoreSignal>) -> StoreSignal {
    match tokio::time::timeout(WAIT, rx.recv()).await {
        Ok(Ok(signal)) => signal,
        Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => StoreSignal::Resync,
        Ok(Err(e)) => panic!("signal channel closed: {e}"),
        Err(_) => panic!("no signal within {WAIT:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_one_store_signal_another_store_on_the_database() {
    let db = database().await;
    let a = PostgresStore::connect(db.url(), 2).await.unwrap();
    let b = PostgresStore::connect(db.url(), 2).await.unwrap();
    let mut rx = b.signals().expect("PostgreSQL has signals");

    a.append_event("acct_x", "payment_status", "{}", NOW)
        .await
        .unwrap();
    assert_eq!(
        next_signal(&mut rx).await,
        StoreSignal::Event {
            account_id: "acct_x".into()
        }
    );
    a.enqueue_webhook("tx1", 7, "https://a/hook", "body", NOW)
        .await
        .unwrap();
    assert_eq!(next_signal(&mut rx).await, StoreSignal::Webhook);
    // A refused compare-and-set notifies nobody (the notification goes with the rollback).
    let (user, _) = setup(&a, 0).await;
    a.create_session(&session(
        "s1",
        Flow::WalletQr,
        SessionStatus::Paid,
        Some(&user),
    ))
    .await
    .unwrap();
    let refused = a
        .update_session_if(&SessionUpdate {
            session: session("s1", Flow::WalletQr, SessionStatus::Declined, Some(&user)),
            expected_status: SessionStatus::Pending,
            expected_account: Some(user.clone()),
            event: Some(opencharge_gateway::store::NewEvent {
                account_id: user.clone(),
                kind: "payment_status".into(),
                payload_json: "{}".into(),
                now: NOW,
            }),
            nonce: None,
        })
        .await
        .unwrap();
    assert_eq!(refused, UpdateOutcome::Refused);
    a.append_event("acct_y", "payment_status", "{}", NOW)
        .await
        .unwrap();
    assert_eq!(
        next_signal(&mut rx).await,
        StoreSignal::Event {
            account_id: "acct_y".into()
        },
        "the refused update sent nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_listen_connection_reconnects_and_sends_resync() {
    let db = database().await;
    let a = PostgresStore::connect(db.url(), 2).await.unwrap();
    let b = PostgresStore::connect(db.url(), 2).await.unwrap();
    let mut rx = b.signals().expect("PostgreSQL has signals");
    // Kill every LISTEN connection on this database (the server restarting, a proxy timeout).
    let killed = a
        .query_i64(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() \
             AND application_name = 'opencharge-gateway-listen'",
        )
        .await
        .unwrap();
    assert_eq!(killed, 2, "each store has one LISTEN connection");
    assert_eq!(next_signal(&mut rx).await, StoreSignal::Resync);
    a.append_event("acct_z", "payment_status", "{}", NOW)
        .await
        .unwrap();
    let mut signal = next_signal(&mut rx).await;
    while signal == StoreSignal::Resync {
        signal = next_signal(&mut rx).await;
    }
    assert_eq!(
        signal,
        StoreSignal::Event {
            account_id: "acct_z".into()
        }
    );
}

#[tokio::test]
async fn sqlite_has_no_signals_and_postgres_ids_stay_unique_across_stores() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite =
        opencharge_gateway::store::sqlite::SqliteStore::open(&dir.path().join("g.db")).unwrap();
    assert!(sqlite.signals().is_none());

    let db = database().await;
    let a = PostgresStore::connect(db.url(), 2).await.unwrap();
    let b = PostgresStore::connect(db.url(), 2).await.unwrap();
    let mut ids = BTreeSet::new();
    for i in 0..10 {
        let store = if i % 2 == 0 { &a } else { &b };
        let e = store
            .append_event("acct", "payment_status", "{}", NOW)
            .await
            .unwrap();
        assert!(ids.insert(e.id));
    }
    assert_eq!(
        a.events_after("acct", 0, 100)
            .await
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect::<BTreeSet<_>>(),
        ids
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_probe_names_a_read_only_server_and_passes_on_a_writable_one() {
    let db = database().await;
    let store = PostgresStore::connect(db.url(), 1).await.unwrap();
    let admin = PostgresStore::connect(db.url(), 1).await.unwrap();
    store
        .check_writable(Duration::from_millis(500))
        .await
        .unwrap();
    // New connections to this database are read-only (as on a standby or a database an
    // operator locked); the pool's connection is replaced by one.
    store
        .execute_sql(&format!(
            "ALTER DATABASE \"{}\" SET default_transaction_read_only = on",
            db.name()
        ))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let err = loop {
        admin
            .query_i64(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid() \
                 AND application_name = 'opencharge-gateway'",
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        match store.check_writable(Duration::from_millis(500)).await {
            Err(e) if e.0.contains("read-only") => break e,
            _ if tokio::time::Instant::now() > deadline => {
                panic!("the probe never saw the read-only server")
            }
            _ => {}
        }
    };
    assert!(err.0.contains("25006"), "the SQLSTATE is named: {err}");
    assert!(err.0.contains("primary"), "it says what to do: {err}");
    // A store started on a read-only server fails to start, saying why.
    let err = PostgresStore::connect(db.url(), 1).await.unwrap_err();
    assert!(err.0.contains("read-only"), "{err}");
}
