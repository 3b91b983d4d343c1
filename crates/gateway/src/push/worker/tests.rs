//! Tests of the push worker against a real SQLite store and an in-test scripted
//! [`PushSender`]: sent, retry honouring `Retry-After`, retries used up, dead token dropped,
//! provider not configured, too old, a newer event collapsing into a wake-up while it is in
//! flight, and the worker woken by the event hub.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use opencharge_protocol::keys::PrivateKey;
use serde_json::json;

use super::*;
use crate::clock::{Clock, OffsetClock};
use crate::config::GatewayConfig;
use crate::push::{PushEnvironment, PushKind, PushProvider, PushSender, Pushers};
use crate::resolver::StaticResolver;
use crate::state::{EventHub, Inner};
use crate::store::sqlite::SqliteStore;
use crate::store::{PushStatus, Store};

/// One call the scripted sender received.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Call {
    target: PushTarget,
    wake: WakeUp,
}

/// An event to append while a send is in flight: (store, account, time).
type AppendDuringSend = Option<(Arc<dyn Store>, String, i64)>;

/// A [`PushSender`] that records every call and answers from a script per token (then
/// `Sent`). With `append_during_send`, its first call appends a `payment_status` event for
/// that account while the wake-up is in flight.
#[derive(Default)]
struct Scripted {
    calls: Mutex<Vec<Call>>,
    script: Mutex<HashMap<String, VecDeque<SendOutcome>>>,
    append_during_send: Mutex<AppendDuringSend>,
}

impl Scripted {
    fn answer(&self, token: &str, outcome: SendOutcome) {
        self.script
            .lock()
            .unwrap()
            .entry(token.to_string())
            .or_default()
            .push_back(outcome);
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl PushSender for Scripted {
    async fn send(&self, target: &PushTarget, wake: &WakeUp) -> SendOutcome {
        self.calls.lock().unwrap().push(Call {
            target: target.clone(),
            wake: wake.clone(),
        });
        let append = self.append_during_send.lock().unwrap().take();
        if let Some((store, account, now)) = append {
            store
                .append_event(
                    &account,
                    "payment_status",
                    &json!({"type": "payment_status", "sessionId": "ses_newer", "status": "paid"})
                        .to_string(),
                    now,
                )
                .await
                .unwrap();
        }
        self.script
            .lock()
            .unwrap()
            .get_mut(&target.token)
            .and_then(VecDeque::pop_front)
            .unwrap_or(SendOutcome::Sent)
    }
}

/// A gateway state on a fresh database with the scripted FCM sender (APNs not configured),
/// one account with one active device, and its clock.
struct Fixture {
    _dir: tempfile::TempDir,
    state: AppState,
    fcm: Arc<Scripted>,
    clock: Arc<OffsetClock>,
    account: String,
    device: String,
}

const FCM_TOKEN: &str = "fcm-token-1";

async fn fixture(configure: impl FnOnce(&mut GatewayConfig)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = GatewayConfig {
        database: dir.path().join("gateway.db").into(),
        ..GatewayConfig::default()
    };
    config.push.retry_secs = vec![5, 60];
    configure(&mut config);
    let store = SqliteStore::open(config.database.sqlite_path().unwrap()).unwrap();
    let clock = Arc::new(OffsetClock::default());
    let now = clock.now();
    let account = store.create_account("user", "Ada", now).await.unwrap().id;
    store
        .create_enrollment(&account, "code-hash", now + 600, now)
        .await
        .unwrap();
    let device = "dev_0123456789abcdef0123456789abcdef".to_string();
    let key = PrivateKey::generate();
    store
        .register_device("code-hash", &device, &key.public_key().to_hex(), now)
        .await
        .unwrap();
    store
        .set_push_token(
            &device,
            PushProvider::Fcm,
            FCM_TOKEN,
            PushEnvironment::Production,
            now,
        )
        .await
        .unwrap();
    let fcm = Arc::new(Scripted::default());
    let public_key_hex = key.public_key().to_hex();
    let state = AppState(Arc::new(Inner {
        config,
        key,
        public_key_hex,
        public_base: "http://127.0.0.1:9".into(),
        endpoint: "http://127.0.0.1:9/opencharge".into(),
        store: Arc::new(store),
        resolver: Arc::new(StaticResolver::default()),
        clock: clock.clone(),
        hub: EventHub::default(),
        http: reqwest::Client::new(),
        push: Pushers {
            fcm: Some(fcm.clone() as Arc<dyn PushSender>),
            apns: None,
        },
        push_counters: PushCounters::default(),
        push_pass: tokio::sync::Mutex::new(()),
        rate_limits: crate::api::rate_limit::RateLimiters::new(&Default::default()),
        metrics: crate::ops::metrics::Metrics::default(),
    }));
    Fixture {
        _dir: dir,
        state,
        fcm,
        clock,
        account,
        device,
    }
}

impl Fixture {
    /// Appends a `payment_request` event for session `session`; returns its id.
    async fn prompt(&self, session: &str) -> i64 {
        let payload = json!({"type": "payment_request", "sessionId": session}).to_string();
        self.state
            .store
            .append_event(&self.account, "payment_request", &payload, self.clock.now())
            .await
            .unwrap()
            .id
    }

    /// The device's newest queue row.
    async fn row(&self) -> QueuedPush {
        self.rows().await.pop().expect("a queued wake-up")
    }

    /// Every queue row, oldest first.
    async fn rows(&self) -> Vec<QueuedPush> {
        let store = SqliteStore::open(self.state.config.database.sqlite_path().unwrap()).unwrap();
        store.push_queue().await.unwrap()
    }
}

#[tokio::test]
async fn a_due_wake_up_is_sent_once_with_only_kind_session_and_event() {
    let f = fixture(|_| {}).await;
    let event = f.prompt("ses_1").await;
    deliver_now(&f.state).await;
    assert_eq!(
        f.fcm.calls(),
        vec![Call {
            target: PushTarget {
                device_id: f.device.clone(),
                token: FCM_TOKEN.into(),
                environment: PushEnvironment::Production,
            },
            wake: WakeUp {
                kind: PushKind::PaymentRequest,
                session_id: "ses_1".into(),
                event_id: event,
            },
        }]
    );
    let row = f.row().await;
    assert_eq!((row.status, row.attempts), (PushStatus::Sent, 1));
    assert!(row.sent_at.is_some());
    assert_eq!(f.state.push_counters.sent(), 1);
    deliver_now(&f.state).await;
    assert_eq!(f.fcm.calls().len(), 1, "a sent wake-up is never sent again");
}

#[tokio::test]
async fn a_retry_waits_for_the_longer_of_its_delay_and_retry_after_then_gives_up() {
    let f = fixture(|_| {}).await;
    f.fcm.answer(
        FCM_TOKEN,
        SendOutcome::Retry {
            after: Some(Duration::from_secs(30)),
            reason: "HTTP 429".into(),
        },
    );
    f.fcm.answer(
        FCM_TOKEN,
        SendOutcome::Retry {
            after: None,
            reason: "HTTP 503".into(),
        },
    );
    f.fcm.answer(
        FCM_TOKEN,
        SendOutcome::Retry {
            after: Some(Duration::from_secs(1)),
            reason: "HTTP 503".into(),
        },
    );
    f.prompt("ses_1").await;
    let before = f.clock.now();
    deliver_now(&f.state).await;
    let after = f.clock.now();
    let row = f.row().await;
    assert_eq!((row.status, row.attempts), (PushStatus::Pending, 1));
    // Retry-After (30 s) is longer than retry_secs[0] (5 s): it wins.
    assert!(
        (before + 30..=after + 30).contains(&row.next_attempt_at),
        "{row:?}"
    );
    assert_eq!(f.state.push_counters.retried(), 1);

    // Not due yet: nothing is sent.
    f.clock.advance(29);
    deliver_now(&f.state).await;
    assert_eq!(f.fcm.calls().len(), 1);

    // Due: sent again, refused again without Retry-After: retry_secs[1] = 60 s.
    f.clock.advance(2);
    let before = f.clock.now();
    deliver_now(&f.state).await;
    let after = f.clock.now();
    assert_eq!(f.fcm.calls().len(), 2);
    let row = f.row().await;
    assert_eq!((row.status, row.attempts), (PushStatus::Pending, 2));
    assert!((before + 60..=after + 60).contains(&row.next_attempt_at));

    // The third refusal comes after the last delay: given up.
    f.clock.advance(61);
    deliver_now(&f.state).await;
    let row = f.row().await;
    assert_eq!((row.status, row.attempts), (PushStatus::Failed, 3));
    assert_eq!(f.state.push_counters.failed(), 1);
    f.clock.advance(3600);
    deliver_now(&f.state).await;
    assert_eq!(f.fcm.calls().len(), 3);
}

#[tokio::test]
async fn a_dead_token_is_deleted_and_gets_no_more_wake_ups() {
    let f = fixture(|_| {}).await;
    f.fcm.answer(
        FCM_TOKEN,
        SendOutcome::DeadToken {
            reason: "UNREGISTERED".into(),
        },
    );
    f.prompt("ses_1").await;
    deliver_now(&f.state).await;
    assert_eq!(f.row().await.status, PushStatus::Dead);
    assert_eq!(f.state.store.push_token(&f.device).await.unwrap(), None);
    assert_eq!(f.state.push_counters.dead(), 1);
    f.prompt("ses_2").await;
    deliver_now(&f.state).await;
    assert_eq!(f.fcm.calls().len(), 1);
    assert_eq!(f.rows().await.len(), 1, "no token, no wake-up queued");
}

#[tokio::test]
async fn a_provider_without_configuration_fails_the_wake_up() {
    let f = fixture(|_| {}).await;
    let apns = "ab".repeat(32);
    f.state
        .store
        .set_push_token(
            &f.device,
            PushProvider::Apns,
            &apns,
            PushEnvironment::Sandbox,
            f.clock.now(),
        )
        .await
        .unwrap();
    f.prompt("ses_1").await;
    deliver_now(&f.state).await;
    assert!(f.fcm.calls().is_empty());
    let row = f.row().await;
    assert_eq!((row.status, row.attempts), (PushStatus::Failed, 1));
    assert_eq!(row.last_error.as_deref(), Some("push.apns not configured"));
    assert_eq!(f.state.push_counters.failed(), 1);
}

#[tokio::test]
async fn a_wake_up_older_than_max_age_is_dropped_unsent() {
    let f = fixture(|c| c.push.max_age_secs = 120).await;
    f.prompt("ses_1").await;
    f.clock.advance(121);
    deliver_now(&f.state).await;
    assert!(f.fcm.calls().is_empty());
    let row = f.row().await;
    assert_eq!(row.status, PushStatus::Failed);
    assert!(row.last_error.unwrap().starts_with("too old:"));
}

#[tokio::test]
async fn a_newer_event_collapsing_during_a_send_is_sent_next() {
    let f = fixture(|_| {}).await;
    let first = f.prompt("ses_1").await;
    *f.fcm.append_during_send.lock().unwrap() =
        Some((f.state.store.clone(), f.account.clone(), f.clock.now()));
    deliver_now(&f.state).await;
    // The first send went out for the first event; the newer event took over the row.
    let row = f.row().await;
    assert_eq!(f.rows().await.len(), 1, "one row per device: collapsed");
    assert_eq!(row.status, PushStatus::Pending);
    assert!(row.event_id > first);
    assert_eq!(row.kind, PushKind::PaymentStatus);
    deliver_now(&f.state).await;
    let calls = f.fcm.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].wake.event_id, first);
    assert_eq!(
        calls[1].wake,
        WakeUp {
            kind: PushKind::PaymentStatus,
            session_id: "ses_newer".into(),
            event_id: row.event_id,
        }
    );
    assert_eq!(f.row().await.status, PushStatus::Sent);
    assert_eq!(f.state.push_counters.sent(), 2);
}

#[tokio::test]
async fn the_worker_wakes_on_an_event_hub_notification() {
    // A tick once a minute: only the hub's notification can wake it in time.
    let f = fixture(|c| c.worker_interval_ms = 60_000).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(run_worker(f.state.clone(), async move {
        let _ = stopped.await;
    }));
    // Let the first (immediate) tick pass.
    tokio::time::sleep(Duration::from_millis(200)).await;
    f.prompt("ses_1").await;
    f.state.hub.notify(&f.account);
    let mut sent = false;
    for _ in 0..200 {
        if !f.fcm.calls().is_empty() {
            sent = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sent, "the wake-up was sent after the notification");
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .expect("the worker stops")
        .unwrap();
}
