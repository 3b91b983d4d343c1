//! The core as a push extension runs it: a wallet opened in low-memory mode on an app's data
//! dir handles one FCM- or APNs-shaped wake-up (`handlePush`) against a loopback network:
//! the verified prompt and its notification text once, a final receipt, nothing for another
//! account's session, a typed error for a tampered prompt, `InvalidInput` for malformed
//! payloads, and no core task left running when the call returns.

use std::sync::Arc;
use std::time::{Duration, Instant};

use opencharge_testkit::{Network, WAIT};
use opencharge_wallet::{alive_tasks, PaymentStatus, PushEvent, Wallet, WalletConfig, WalletError};
use serde_json::json;

/// The core's runtime is one per process and its task count is what these tests check, so
/// they run one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A wallet configuration of `env` in low-memory mode.
fn low_memory(env: &Network, name: &str) -> WalletConfig {
    let mut config = env.wallet_config(name);
    config.low_memory = true;
    config
}

/// An app's wallet `name`, registered to a new account with `funds`, in low-memory mode.
async fn app_wallet(env: &Network, name: &str, funds: &str) -> Arc<Wallet> {
    env.dev()
        .open_wallet(low_memory(env, name), name, Some(funds))
        .await
        .unwrap()
        .wallet
}

/// The extension's view of the same installation: a fresh `Wallet` on the app's data dir.
async fn extension(env: &Network, name: &str) -> Arc<Wallet> {
    Wallet::open(low_memory(env, name), None).await.unwrap()
}

/// A merchant order posted to a new wallet QR session of `wallet`; returns the session id.
async fn order_for(env: &Network, wallet: &Wallet) -> String {
    let session = wallet.create_payment_session().await.unwrap();
    let order = env.order().unwrap();
    env.merchant()
        .post_to_wallet_session(&session.qr_payload, &order.order.id)
        .await
        .unwrap();
    session.session_id
}

/// The id of the gateway's newest event of `kind` for `session_id`.
fn event_id(env: &Network, kind: &str, session_id: &str) -> String {
    let db = rusqlite::Connection::open(env.gateway_db()).unwrap();
    let id: i64 = db
        .query_row(
            "SELECT max(id) FROM events WHERE kind = ?1 AND payload_json LIKE ?2",
            [kind, &format!("%{session_id}%")],
            |row| row.get(0),
        )
        .unwrap();
    id.to_string()
}

/// The FCM data map the gateway sends, as the app's messaging service hands it over.
fn fcm_payload(env: &Network, kind: &str, session_id: &str) -> String {
    json!({"type": kind, "sessionId": session_id, "eventId": event_id(env, kind, session_id)})
        .to_string()
}

/// The whole APNs userInfo the gateway sends for a payment request.
fn apns_payload(env: &Network, session_id: &str) -> String {
    json!({
        "aps": {"alert": {"title": "Payment request", "body": "Open to review this payment."},
                "mutable-content": 1, "sound": "default"},
        "opencharge": {"type": "payment_request", "sessionId": session_id,
                       "eventId": event_id(env, "payment_request", session_id)}
    })
    .to_string()
}

/// Waits (generously) until no task is alive on the core's runtime: in low-memory mode the
/// call leaves nothing behind (no pooled connection, no outbox or resolution task).
async fn assert_nothing_left_running() {
    let start = Instant::now();
    while alive_tasks() != 0 {
        assert!(
            start.elapsed() < WAIT,
            "{} core task(s) still running after handlePush returned",
            alive_tasks()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fcm_and_apns_wake_ups_give_the_verified_prompt_once_then_its_receipt() {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = Network::start().await.unwrap();
    let app = app_wallet(&env, "phone", "50.00").await;
    let first = order_for(&env, &app).await;
    let second = order_for(&env, &app).await;
    drop(app);

    // FCM-shaped wake-up for the first order, in a fresh low-memory wallet.
    let ext = extension(&env, "phone").await;
    let event = ext
        .handle_push(fcm_payload(&env, "payment_request", &first))
        .await
        .unwrap();
    let PushEvent::PaymentRequest {
        prompt,
        notification,
    } = event
    else {
        panic!("expected a payment request, got {event:?}");
    };
    assert_nothing_left_running().await;
    assert_eq!(prompt.prompt_id, first);
    assert_eq!(prompt.merchant_name.as_deref(), Some("Test Coffee"));
    assert_eq!(prompt.total.amount, "8.25");
    assert_eq!(notification.title, "Test Coffee");
    assert_eq!(notification.body, "8.25 USD");
    assert_eq!(
        ext.pending_prompts().await.unwrap(),
        vec![prompt.clone()],
        "stored, and only the prompt the wake-up named was fetched"
    );

    // The same wake-up again (a duplicate delivery): returned once, so nothing new.
    let again = ext
        .handle_push(fcm_payload(&env, "payment_request", &first))
        .await
        .unwrap();
    assert_eq!(again, PushEvent::NothingNew);

    // APNs-shaped wake-up (the whole userInfo) for the second order.
    let event = ext.handle_push(apns_payload(&env, &second)).await.unwrap();
    assert_nothing_left_running().await;
    match &event {
        PushEvent::PaymentRequest {
            prompt,
            notification,
        } => {
            assert_eq!(prompt.prompt_id, second);
            assert_eq!(notification.title, "Test Coffee");
            assert_eq!(notification.body, "8.25 USD");
        }
        other => panic!("expected a payment request, got {other:?}"),
    }

    // The user confirms (in the app): the merchant is paid.
    drop(ext);
    let app = extension(&env, "phone").await;
    let receipt = app.confirm(first.clone()).await.unwrap();
    assert_eq!(receipt.status, PaymentStatus::Paid);
    let order_id = receipt.order_id.clone().unwrap();
    let paid = env.merchant().wait_paid(&order_id, WAIT).await.unwrap();
    assert_eq!(paid.txid, receipt.txid);
    assert_eq!(env.usd(&app).await.unwrap(), "41.75");
    drop(app);

    // The status wake-up gives the receipt with its verified proof.
    let ext = extension(&env, "phone").await;
    let event = ext
        .handle_push(fcm_payload(&env, "payment_status", &first))
        .await
        .unwrap();
    assert_nothing_left_running().await;
    match event {
        PushEvent::PaymentStatus {
            receipt: pushed,
            notification,
        } => {
            assert_eq!(pushed.session_id, first);
            assert_eq!(pushed.status, PaymentStatus::Paid);
            assert!(pushed.proof_verified);
            assert_eq!(pushed.txid, receipt.txid);
            assert_eq!(notification.title, "Test Coffee");
            assert_eq!(notification.body, "Paid 8.25 USD");
        }
        other => panic!("expected a payment status, got {other:?}"),
    }

    // A request wake-up for the paid prompt is nothing new.
    assert_eq!(
        ext.handle_push(fcm_payload(&env, "payment_request", &first))
            .await
            .unwrap(),
        PushEvent::NothingNew
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_accounts_session_leaks_nothing() {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = Network::start().await.unwrap();
    let owner = app_wallet(&env, "owner", "50.00").await;
    let session = order_for(&env, &owner).await;
    let other = app_wallet(&env, "other", "50.00").await;

    // The owner's wake-up, as if the other device had received it.
    let event_id = event_id(&env, "payment_request", &session);
    for kind in ["payment_request", "payment_status"] {
        let payload = json!({"type": kind, "sessionId": session, "eventId": event_id});
        let event = other.handle_push(payload.to_string()).await.unwrap();
        assert_eq!(event, PushEvent::NothingNew, "{kind}");
    }
    assert_nothing_left_running().await;
    assert!(other.pending_prompts().await.unwrap().is_empty());
    let unknown = json!({"type": "payment_request",
                         "sessionId": "0123456789abcdef0123456789abcdef", "eventId": "1"});
    assert_eq!(
        other.handle_push(unknown.to_string()).await.unwrap(),
        PushEvent::NothingNew
    );
    // The owner still gets it.
    assert!(matches!(
        owner
            .handle_push(fcm_payload(&env, "payment_request", &session))
            .await
            .unwrap(),
        PushEvent::PaymentRequest { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_prompt_is_a_verification_error_and_not_stored() {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = Network::start().await.unwrap();
    let app = app_wallet(&env, "alice", "50.00").await;
    let session = order_for(&env, &app).await;
    let payload = fcm_payload(&env, "payment_request", &session);

    // Someone with access to the gateway's database raises the price.
    let db = rusqlite::Connection::open(env.gateway_db()).unwrap();
    let changed = db
        .execute(
            "UPDATE sessions SET order_json = replace(order_json, '\"price\":\"2.50\"', '\"price\":\"25.00\"') WHERE id = ?1",
            [&session],
        )
        .unwrap();
    assert_eq!(changed, 1);

    let err = app.handle_push(payload.clone()).await.unwrap_err();
    assert!(matches!(err, WalletError::Crypto { .. }), "{err:?}");
    assert_nothing_left_running().await;
    assert!(app.pending_prompts().await.unwrap().is_empty());
    let err = app.confirm(session.clone()).await.unwrap_err();
    assert!(matches!(err, WalletError::Crypto { .. }), "{err:?}");
    assert_eq!(env.usd(&app).await.unwrap(), "50.00");
    // Refused once, it is not offered again.
    assert_eq!(
        app.handle_push(payload).await.unwrap(),
        PushEvent::NothingNew
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_payloads_are_invalid_input_and_change_nothing() {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = Network::start().await.unwrap();
    let app = app_wallet(&env, "bob", "50.00").await;
    let session = order_for(&env, &app).await;
    let good = fcm_payload(&env, "payment_request", &session);

    let oversized = json!({"type": "payment_request", "sessionId": session, "eventId": "1",
                           "pad": "x".repeat(4096)})
    .to_string();
    for payload in [
        "not json".to_string(),
        "[1,2]".to_string(),
        r#"{"sessionId":"0123456789abcdef","eventId":"1"}"#.to_string(),
        json!({"type": "refund", "sessionId": session, "eventId": "1"}).to_string(),
        json!({"aps": {}, "opencharge": "payment_request"}).to_string(),
        oversized,
    ] {
        let err = app.handle_push(payload.clone()).await.unwrap_err();
        assert!(
            matches!(err, WalletError::InvalidInput { .. }),
            "{payload:.60}: {err:?}"
        );
    }
    assert_nothing_left_running().await;
    assert!(
        app.pending_prompts().await.unwrap().is_empty(),
        "nothing fetched or stored"
    );
    // Nothing was announced either: the real wake-up still brings the prompt.
    assert!(matches!(
        app.handle_push(good).await.unwrap(),
        PushEvent::PaymentRequest { .. }
    ));
}
