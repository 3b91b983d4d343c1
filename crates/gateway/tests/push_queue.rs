//! The SQLite push queue and push tokens: wake-ups queued in the transaction of their event,
//! only for active devices of the account that have a token, per-device collapse, the
//! conditional record of a send attempt, dead tokens, tokens moving between devices and
//! following a key rotation.

use opencharge_gateway::store::sqlite::SqliteStore;
use opencharge_gateway::store::{
    PushAttempt, PushEnvironment, PushKind, PushProvider, PushStatus, QueuedPush, Store,
};
use opencharge_protocol::keys::PrivateKey;
use serde_json::json;

const NOW: i64 = 1_700_000_000;

struct Db {
    _dir: tempfile::TempDir,
    store: SqliteStore,
}

async fn db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("gateway.db")).unwrap();
    Db { _dir: dir, store }
}

impl Db {
    async fn account(&self, name: &str) -> String {
        self.store
            .create_account("user", name, NOW)
            .await
            .unwrap()
            .id
    }

    /// Registers a fresh device `id` to `account`.
    async fn device(&self, account: &str, id: &str) -> String {
        let code = format!("code-{id}");
        self.store
            .create_enrollment(account, &code, NOW + 600, NOW)
            .await
            .unwrap();
        let key = PrivateKey::generate().public_key().to_hex();
        self.store
            .register_device(&code, id, &key, NOW)
            .await
            .unwrap();
        id.to_string()
    }

    async fn token(&self, device: &str, token: &str) {
        self.store
            .set_push_token(
                device,
                PushProvider::Fcm,
                token,
                PushEnvironment::Production,
                NOW,
            )
            .await
            .unwrap();
    }

    async fn event(&self, account: &str, kind: &str, session: &str, now: i64) -> i64 {
        let payload = json!({"type": kind, "sessionId": session}).to_string();
        self.store
            .append_event(account, kind, &payload, now)
            .await
            .unwrap()
            .id
    }

    async fn queue(&self) -> Vec<QueuedPush> {
        self.store.push_queue().await.unwrap()
    }

    async fn pending(&self) -> Vec<QueuedPush> {
        self.queue()
            .await
            .into_iter()
            .filter(|p| p.status == PushStatus::Pending)
            .collect()
    }
}

#[tokio::test]
async fn only_active_devices_of_the_account_with_a_token_are_queued() {
    let db = db().await;
    let (ada, bob) = (db.account("Ada").await, db.account("Bob").await);
    let with_token = db.device(&ada, "dev_a1").await;
    let _without = db.device(&ada, "dev_a2").await;
    let revoked = db.device(&ada, "dev_a3").await;
    let other = db.device(&bob, "dev_b1").await;
    db.token(&with_token, "tok-a1").await;
    db.token(&revoked, "tok-a3").await;
    db.token(&other, "tok-b1").await;
    db.store
        .execute_sql("UPDATE devices SET status = 'revoked' WHERE device_id = 'dev_a3'")
        .await
        .unwrap();

    let event = db.event(&ada, "payment_request", "ses_1", NOW).await;
    let queue = db.queue().await;
    assert_eq!(queue.len(), 1, "{queue:?}");
    let row = &queue[0];
    assert_eq!(
        (
            row.device_id.as_str(),
            row.token.as_str(),
            row.kind,
            row.session_id.as_str(),
            row.event_id,
            row.status,
            row.attempts,
            row.next_attempt_at,
            row.created_at,
        ),
        (
            "dev_a1",
            "tok-a1",
            PushKind::PaymentRequest,
            "ses_1",
            event,
            PushStatus::Pending,
            0,
            NOW,
            NOW
        )
    );
    // Other event kinds wake nobody up.
    db.event(&ada, "account_note", "ses_1", NOW).await;
    assert_eq!(db.queue().await.len(), 1);
}

#[tokio::test]
async fn the_wake_up_is_written_in_the_event_transaction() {
    let db = db().await;
    let ada = db.account("Ada").await;
    let device = db.device(&ada, "dev_a1").await;
    db.token(&device, "tok-a1").await;
    // Queuing fails: the event must not be stored either.
    db.store
        .execute_sql(
            "CREATE TRIGGER no_push BEFORE INSERT ON push_queue \
             BEGIN SELECT RAISE(ABORT, 'queue refused'); END;",
        )
        .await
        .unwrap();
    let payload = json!({"type": "payment_request", "sessionId": "ses_1"}).to_string();
    let err = db
        .store
        .append_event(&ada, "payment_request", &payload, NOW)
        .await
        .unwrap_err();
    assert!(err.0.contains("queue refused"), "{err}");
    assert_eq!(
        db.store
            .query_i64("SELECT count(*) FROM events")
            .await
            .unwrap(),
        0
    );
    db.store.execute_sql("DROP TRIGGER no_push").await.unwrap();
    db.event(&ada, "payment_request", "ses_1", NOW).await;
    assert_eq!(
        db.store
            .query_i64("SELECT count(*) FROM events")
            .await
            .unwrap(),
        1
    );
    assert_eq!(db.queue().await.len(), 1);
}

#[tokio::test]
async fn a_burst_collapses_into_one_pending_wake_up_that_keeps_its_backoff() {
    let db = db().await;
    let ada = db.account("Ada").await;
    let device = db.device(&ada, "dev_a1").await;
    db.token(&device, "tok-a1").await;
    let first = db.event(&ada, "payment_request", "ses_1", NOW).await;
    // The first attempt is refused: back off 60 s.
    let written = db
        .store
        .record_push_attempt(&PushAttempt {
            id: 1,
            event_id: first,
            status: PushStatus::Pending,
            next_attempt_at: NOW + 60,
            last_error: Some("HTTP 429".into()),
            now: NOW,
        })
        .await
        .unwrap();
    assert!(written);
    db.event(&ada, "payment_request", "ses_2", NOW + 1).await;
    let last = db.event(&ada, "payment_status", "ses_2", NOW + 2).await;
    let queue = db.queue().await;
    assert_eq!(queue.len(), 1, "one row per device: {queue:?}");
    let row = &queue[0];
    assert_eq!(
        (row.kind, row.session_id.as_str(), row.event_id),
        (PushKind::PaymentStatus, "ses_2", last)
    );
    assert_eq!((row.attempts, row.next_attempt_at), (1, NOW + 60));
    assert_eq!(row.created_at, NOW + 2, "its age is the newest event's");
    assert!(db
        .store
        .claim_pushes(NOW + 59, NOW + 59 + 60, 32)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        db.store
            .claim_pushes(NOW + 60, NOW + 60 + 60, 32)
            .await
            .unwrap()
            .len(),
        1
    );

    // Once sent, the next event queues a new row.
    assert!(db
        .store
        .record_push_attempt(&PushAttempt {
            id: row.id,
            event_id: last,
            status: PushStatus::Sent,
            next_attempt_at: NOW + 60,
            last_error: None,
            now: NOW + 60,
        })
        .await
        .unwrap());
    db.event(&ada, "payment_request", "ses_3", NOW + 61).await;
    let queue = db.queue().await;
    assert_eq!(queue.len(), 2);
    assert_eq!(
        (queue[0].status, queue[0].sent_at),
        (PushStatus::Sent, Some(NOW + 60))
    );
    assert_eq!(queue[1].status, PushStatus::Pending);
}

#[tokio::test]
async fn an_attempt_for_a_replaced_event_leaves_the_newer_one_due() {
    let db = db().await;
    let ada = db.account("Ada").await;
    let device = db.device(&ada, "dev_a1").await;
    db.token(&device, "tok-a1").await;
    let first = db.event(&ada, "payment_request", "ses_1", NOW).await;
    let second = db.event(&ada, "payment_status", "ses_1", NOW + 5).await;
    // The send of the first event succeeded, but the row now stands for the second.
    let written = db
        .store
        .record_push_attempt(&PushAttempt {
            id: 1,
            event_id: first,
            status: PushStatus::Sent,
            next_attempt_at: NOW + 7,
            last_error: None,
            now: NOW + 7,
        })
        .await
        .unwrap();
    assert!(!written);
    let pending = db.pending().await;
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (
            pending[0].event_id,
            pending[0].next_attempt_at,
            pending[0].sent_at
        ),
        (second, NOW + 7, None)
    );
    // A retry outcome for the replaced event still backs the row off.
    assert!(!db
        .store
        .record_push_attempt(&PushAttempt {
            id: 1,
            event_id: first,
            status: PushStatus::Pending,
            next_attempt_at: NOW + 100,
            last_error: Some("HTTP 503".into()),
            now: NOW + 8,
        })
        .await
        .unwrap());
    let row = &db.pending().await[0];
    assert_eq!((row.attempts, row.next_attempt_at), (1, NOW + 100));
    // An unknown row changes nothing.
    assert!(!db
        .store
        .record_push_attempt(&PushAttempt {
            id: 99,
            event_id: second,
            status: PushStatus::Sent,
            next_attempt_at: NOW,
            last_error: None,
            now: NOW,
        })
        .await
        .unwrap());
}

#[tokio::test]
async fn a_dead_token_is_deleted_with_its_pending_wake_ups() {
    let db = db().await;
    let ada = db.account("Ada").await;
    let device = db.device(&ada, "dev_a1").await;
    db.token(&device, "tok-a1").await;
    db.event(&ada, "payment_request", "ses_1", NOW).await;
    assert!(db
        .store
        .drop_push_token(PushProvider::Fcm, "tok-a1")
        .await
        .unwrap());
    assert_eq!(db.store.push_token(&device).await.unwrap(), None);
    let row = &db.queue().await[0];
    assert_eq!(row.status, PushStatus::Dead);
    assert!(!db
        .store
        .drop_push_token(PushProvider::Fcm, "tok-a1")
        .await
        .unwrap());
    // Same token text under the other provider is another token.
    db.token(&device, "tok-a1").await;
    assert!(!db
        .store
        .drop_push_token(PushProvider::Apns, "tok-a1")
        .await
        .unwrap());
    assert!(db.store.push_token(&device).await.unwrap().is_some());
}

#[tokio::test]
async fn a_token_moves_to_the_device_that_registers_it_and_takes_no_old_wake_up() {
    let db = db().await;
    let (ada, bob) = (db.account("Ada").await, db.account("Bob").await);
    let old = db.device(&ada, "dev_a1").await;
    let new = db.device(&bob, "dev_b1").await;
    db.token(&old, "shared").await;
    db.event(&ada, "payment_request", "ses_ada", NOW).await;
    // The phone was reinstalled and enrolled to Bob's account: same FCM token.
    let stored = db
        .store
        .set_push_token(
            &new,
            PushProvider::Fcm,
            "shared",
            PushEnvironment::Production,
            NOW + 10,
        )
        .await
        .unwrap();
    assert_eq!(
        (stored.device_id.as_str(), stored.updated_at),
        ("dev_b1", NOW + 10)
    );
    assert_eq!(db.store.push_token(&old).await.unwrap(), None);
    assert!(
        db.pending().await.is_empty(),
        "Ada's wake-up never reaches Bob's phone"
    );
    assert_eq!(db.queue().await[0].status, PushStatus::Failed);
    db.event(&ada, "payment_request", "ses_ada2", NOW + 11)
        .await;
    assert!(db.pending().await.is_empty());
    db.event(&bob, "payment_request", "ses_bob", NOW + 12).await;
    assert_eq!(db.pending().await[0].device_id, "dev_b1");

    // A device's new token replaces its old one, and its pending wake-up follows it.
    db.token(&new, "fresh").await;
    assert_eq!(db.pending().await[0].token, "fresh");
    // Clearing drops the pending wake-up.
    assert!(db.store.clear_push_token(&new).await.unwrap());
    assert!(!db.store.clear_push_token(&new).await.unwrap());
    assert!(db.pending().await.is_empty());
}

#[tokio::test]
async fn a_rotation_carries_the_token_and_the_pending_wake_up_to_the_new_device_id() {
    let db = db().await;
    let ada = db.account("Ada").await;
    let old = db.device(&ada, "dev_old").await;
    db.token(&old, "tok").await;
    db.event(&ada, "payment_request", "ses_1", NOW).await;
    let new_key = PrivateKey::generate().public_key().to_hex();
    assert!(db
        .store
        .rotate_device(&old, "dev_new", &new_key, NOW + 1)
        .await
        .unwrap());
    assert_eq!(db.store.push_token(&old).await.unwrap(), None);
    assert_eq!(
        db.store.push_token("dev_new").await.unwrap().unwrap().token,
        "tok"
    );
    let due = db
        .store
        .claim_pushes(NOW + 1, NOW + 1 + 60, 32)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].device_id, "dev_new");
    db.event(&ada, "payment_request", "ses_2", NOW + 2).await;
    assert!(db.queue().await.iter().all(|p| p.device_id == "dev_new"));
}

#[tokio::test]
async fn a_pending_wake_up_of_a_device_revoked_later_is_failed_not_sent() {
    let db = db().await;
    let ada = db.account("Ada").await;
    let device = db.device(&ada, "dev_a1").await;
    db.token(&device, "tok").await;
    db.event(&ada, "payment_request", "ses_1", NOW).await;
    db.store
        .execute_sql("UPDATE devices SET status = 'revoked' WHERE device_id = 'dev_a1'")
        .await
        .unwrap();
    assert!(db
        .store
        .claim_pushes(NOW, NOW + 60, 32)
        .await
        .unwrap()
        .is_empty());
    let row = &db.queue().await[0];
    assert_eq!(row.status, PushStatus::Failed);
    assert_eq!(
        row.last_error.as_deref(),
        Some("the device is no longer active")
    );
}
