//! Push wake-ups end to end on loopback: the gateway sends FCM and APNs wake-ups to a strict
//! loopback FCM and APNs (the test kit's fakes check every header, field and JWT), the captured
//! payload goes to `handlePush` of a freshly opened low-memory wallet (the notification
//! extension), which fetches and verifies the prompt; the user confirms and the merchant is
//! paid. Also: a dead token is removed, a 429 is retried no sooner than its `Retry-After`, and
//! a wake-up queued when the gateway stops is sent by the restarted gateway.

use std::sync::Arc;
use std::time::Duration;

use opencharge_gateway::push::PushProvider as GatewayProvider;
use opencharge_testkit::push::{ApnsReply, FakeApns, FakeFcm, FcmReply};
use opencharge_testkit::{coffee_order, Network, COFFEE_ORDER_TOTAL, WAIT};
use opencharge_wallet::{PaymentStatus, PushEnvironment, PushEvent, PushProvider, Wallet};

/// The bundle id the APNs fake expects as `apns-topic`.
const TOPIC: &str = "org.opencharge.example";

/// A network whose gateway sends FCM wake-ups to `fcm`.
async fn network_with_fcm(fcm: &FakeFcm) -> Network {
    let config = fcm.fcm_config();
    Network::builder()
        .gateway_config(move |c| c.push.fcm = Some(config))
        .start()
        .await
        .unwrap()
}

/// A network whose gateway sends APNs wake-ups to `apns` (topic [`TOPIC`]).
async fn network_with_apns(apns: &FakeApns) -> Network {
    let config = apns.apns_config(TOPIC);
    Network::builder()
        .gateway_config(move |c| c.push.apns = Some(config))
        .start()
        .await
        .unwrap()
}

/// Waits until the gateway no longer holds a push token for `device` (a dead token deleted).
async fn token_deleted(env: &Network, device: &str) {
    let store = env.gateway().expect("the gateway runs").state.store.clone();
    let deadline = tokio::time::Instant::now() + WAIT;
    while store.push_token(device).await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the dead token of {device} was not deleted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A funded wallet ("the app") whose device registered `token` for `provider`.
async fn phone(
    env: &Network,
    name: &str,
    provider: PushProvider,
    token: &str,
    environment: PushEnvironment,
) -> Arc<Wallet> {
    let (wallet, _) = env.wallet(name, Some("30.00")).await.unwrap();
    let registration = wallet
        .set_push_token(provider, token.into(), environment)
        .await
        .unwrap();
    assert_eq!(registration.token, token);
    assert_eq!(registration.provider, provider);
    wallet
}

/// The merchant posts a coffee order to a new payment session of `wallet`; returns the session
/// (prompt) id and the order id.
async fn post_order(env: &Network, wallet: &Wallet, reference: &str) -> (String, String) {
    let session = wallet.create_payment_session().await.unwrap();
    let order = env
        .merchant()
        .create_order(coffee_order(reference))
        .unwrap();
    env.merchant()
        .post_to_wallet_session(&session.qr_payload, &order.order.id)
        .await
        .unwrap();
    (session.session_id, order.order.id)
}

/// The notification extension: a second `Wallet` on the app's data, opened in low-memory mode
/// (in this process the runtime shape was decided by the first wallet; the extension's own
/// process and its memory are measured by the `push-extension` benchmark).
async fn extension(env: &Network, name: &str) -> Arc<Wallet> {
    let mut config = env.wallet_config(name);
    config.low_memory = true;
    Wallet::open(config, None).await.unwrap()
}

/// Handles `payload` in the extension and expects the verified prompt `session_id`.
async fn expect_prompt(extension: &Wallet, payload: String, session_id: &str) {
    match extension.handle_push(payload).await.unwrap() {
        PushEvent::PaymentRequest {
            prompt,
            notification,
        } => {
            assert_eq!(prompt.prompt_id, session_id);
            assert_eq!(prompt.total.amount, COFFEE_ORDER_TOTAL);
            assert_eq!(
                Some(notification.title.as_str()),
                prompt.merchant_name.as_deref()
            );
            assert!(
                notification.body.contains(COFFEE_ORDER_TOTAL),
                "{}",
                notification.body
            );
        }
        other => panic!("expected the payment request, got {other:?}"),
    }
}

/// The gateway's push counters (sent, retried, dead, failed).
fn counters(env: &Network) -> (u64, u64, u64, u64) {
    let c = &env.gateway().expect("the gateway runs").state.push_counters;
    (c.sent(), c.retried(), c.dead(), c.failed())
}

/// Waits until `check` holds, polling; fails with `what` after [`WAIT`].
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_fcm_wake_up_lets_the_extension_show_verify_and_pay_the_prompt() {
    let fcm = FakeFcm::start().await;
    let env = network_with_fcm(&fcm).await;
    let token = "phone-1:APA91bFakeRegistrationToken";
    let app = phone(
        &env,
        "fcm-phone",
        PushProvider::Fcm,
        token,
        PushEnvironment::Production,
    )
    .await;
    let (session_id, order_id) = post_order(&env, &app, "push-1").await;

    // The wake-up names the event only.
    let message = fcm.next_message(WAIT).await.expect("a wake-up");
    assert_eq!(message.token, token);
    let mut keys: Vec<&str> = message.data.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["eventId", "sessionId", "type"]);
    assert_eq!(message.data["type"], "payment_request");
    assert_eq!(message.data["sessionId"], session_id);

    // A fresh low-memory wallet (the extension) fetches and verifies the prompt.
    let ext = extension(&env, "fcm-phone").await;
    expect_prompt(&ext, message.data_json(), &session_id).await;

    // The user taps "Confirm": the app (sharing the database) pays.
    let receipt = app.confirm(session_id.clone()).await.unwrap();
    assert_eq!(receipt.status, PaymentStatus::Paid);
    assert!(receipt.proof_verified);
    env.merchant().wait_paid(&order_id, WAIT).await.unwrap();

    // The final status is pushed too, and the extension turns it into the receipt.
    let status = fcm.next_message(WAIT).await.expect("the status wake-up");
    assert_eq!(status.data["type"], "payment_status");
    assert_eq!(status.data["sessionId"], session_id);
    match ext.handle_push(status.data_json()).await.unwrap() {
        PushEvent::PaymentStatus {
            receipt,
            notification,
        } => {
            assert_eq!(receipt.session_id, session_id);
            assert_eq!(receipt.status, PaymentStatus::Paid);
            assert!(
                notification.body.contains(COFFEE_ORDER_TOTAL),
                "{}",
                notification.body
            );
        }
        other => panic!("expected the payment status, got {other:?}"),
    }
    assert_eq!(fcm.rejections(), Vec::<String>::new());
    assert!(fcm.token_exchanges() >= 1);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apns_wake_up_over_http2_lets_the_extension_pay() {
    let apns = FakeApns::start().await;
    let env = network_with_apns(&apns).await;
    let token = "5f".repeat(32);
    let app = phone(
        &env,
        "ios-phone",
        PushProvider::Apns,
        &token,
        PushEnvironment::Sandbox,
    )
    .await;
    let (session_id, order_id) = post_order(&env, &app, "push-apns").await;

    let note = apns.next_notification(WAIT).await.expect("a wake-up");
    assert_eq!(note.token, token);
    let body: serde_json::Value = serde_json::from_str(&note.payload_json()).unwrap();
    assert_eq!(body["aps"]["mutable-content"], 1);
    assert_eq!(body["opencharge"]["sessionId"], session_id.as_str());
    assert!(
        !note.payload_json().contains(COFFEE_ORDER_TOTAL),
        "{}",
        note.payload_json()
    );

    // The extension gets the whole userInfo.
    let ext = extension(&env, "ios-phone").await;
    expect_prompt(&ext, note.payload_json(), &session_id).await;
    let receipt = ext.confirm(session_id).await.unwrap();
    assert_eq!(receipt.status, PaymentStatus::Paid);
    env.merchant().wait_paid(&order_id, WAIT).await.unwrap();
    assert_eq!(apns.rejections(), Vec::<String>::new());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_fcm_reports_unregistered_is_deleted_and_gets_nothing_more() {
    let fcm = FakeFcm::start().await;
    let env = network_with_fcm(&fcm).await;
    let token = "phone-gone:APA91bUninstalled";
    let app = phone(
        &env,
        "gone",
        PushProvider::Fcm,
        token,
        PushEnvironment::Production,
    )
    .await;
    let device = app.device_id().unwrap();
    fcm.respond_to(token, FcmReply::Unregistered);
    post_order(&env, &app, "dead-1").await;

    token_deleted(&env, &device).await;
    assert_eq!(counters(&env).2, 1, "one dead token");

    // The next prompt queues no wake-up: nothing reaches FCM.
    post_order(&env, &app, "dead-2").await;
    opencharge_gateway::push::worker::deliver_now(&env.gateway().unwrap().state).await;
    assert!(fcm.messages().is_empty(), "{:?}", fcm.messages());
    assert_eq!(fcm.rejections(), Vec::<String>::new());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_retried_no_sooner_than_retry_after() {
    let fcm = FakeFcm::start().await;
    let env = network_with_fcm(&fcm).await;
    let token = "phone-busy:APA91bQuota";
    let app = phone(
        &env,
        "busy",
        PushProvider::Fcm,
        token,
        PushEnvironment::Production,
    )
    .await;
    fcm.respond_to(
        token,
        FcmReply::TooManyRequests {
            retry_after_secs: 60,
        },
    );
    let (session_id, _) = post_order(&env, &app, "busy-1").await;
    eventually("the 429 was not recorded", || counters(&env).1 == 1).await;

    // Queued again, due 60 s later on the gateway's clock, not before.
    let state = env.gateway().unwrap().state.clone();
    let now = env.now();
    assert!(state
        .store
        .claim_pushes(now, now, 32)
        .await
        .unwrap()
        .is_empty());
    // A lease that ends at once: the gateway's own worker may take the row at `now + 61`.
    let due = state
        .store
        .claim_pushes(now + 61, now + 61, 32)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].session_id, session_id);
    assert_eq!(due[0].provider, GatewayProvider::Fcm);
    assert!(fcm.messages().is_empty());

    // After the wait, the retry goes out and FCM accepts it.
    env.clock.advance(61);
    let message = fcm.next_message(WAIT).await.expect("the retried wake-up");
    assert_eq!(message.data["sessionId"], session_id);
    eventually("the retried send was not recorded", || {
        counters(&env).0 == 1
    })
    .await;
    assert_eq!(fcm.messages().len(), 1, "sent once");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wake_up_queued_when_the_gateway_stops_is_sent_after_the_restart() {
    let fcm = FakeFcm::start().await;
    let mut env = network_with_fcm(&fcm).await;
    let token = "phone-wait:APA91bRestart";
    let app = phone(
        &env,
        "restart",
        PushProvider::Fcm,
        token,
        PushEnvironment::Production,
    )
    .await;
    fcm.respond_to(
        token,
        FcmReply::TooManyRequests {
            retry_after_secs: 120,
        },
    );
    let (session_id, _) = post_order(&env, &app, "restart-1").await;
    eventually("the 429 was not recorded", || counters(&env).1 == 1).await;
    env.stop_gateway().await;
    assert!(fcm.messages().is_empty());

    env.clock.advance(121);
    env.restart_gateway().await.unwrap();
    let message = fcm.next_message(WAIT).await.expect("the queued wake-up");
    assert_eq!(message.data["sessionId"], session_id);
    assert_eq!(message.data["type"], "payment_request");

    // The prompt behind it is still there for the extension.
    let ext = extension(&env, "restart").await;
    expect_prompt(&ext, message.data_json(), &session_id).await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apns_refusals_delete_dead_tokens() {
    let apns = FakeApns::start().await;
    let env = network_with_apns(&apns).await;
    let token = "a0".repeat(32);
    let app = phone(
        &env,
        "ios-gone",
        PushProvider::Apns,
        &token,
        PushEnvironment::Production,
    )
    .await;
    let device = app.device_id().unwrap();
    apns.respond_to(&token, ApnsReply::Unregistered);
    post_order(&env, &app, "apns-dead").await;
    token_deleted(&env, &device).await;
    assert!(apns.notifications().is_empty());
    env.stop().await;
}
