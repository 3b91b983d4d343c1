//! Wake-ups after a commit, over real HTTP on loopback with a real database (a SQLite file, or
//! PostgreSQL with `OPENCHARGE_TEST_BACKEND=postgres`), real device and merchant signatures and the test kit's strict loopback FCM: with an hour between the
//! workers' polls, a push and the proof webhook still go out right after the request that
//! committed them; an account's event wakes only that account's event streams; and closed
//! streams leave the hub's registry.

use std::time::Duration;

use opencharge_protocol::signing::{object_hash, sign_object};
use opencharge_testkit::push::{FakeFcm, FcmMessage};
use opencharge_testkit::{AppDevice, Network, WAIT};
use serde_json::{json, Value};

/// One hour: longer than any test, so only a wake-up can make a worker act in time.
const HOUR_MS: u64 = 3_600_000;

/// A network whose gateway sends FCM wake-ups to `fcm` and polls its queues once an hour.
async fn network(fcm: &FakeFcm) -> Network {
    let config = fcm.fcm_config();
    Network::builder()
        .gateway_config(move |c| {
            c.push.fcm = Some(config);
            c.worker_interval_ms = HOUR_MS;
        })
        .start()
        .await
        .unwrap()
}

/// A funded device of a new account.
async fn device(env: &Network, name: &str) -> AppDevice {
    env.app_device(name, Some("30.00")).await.unwrap()
}

/// A device-signed call that must answer 200; its JSON answer.
async fn ok(env: &Network, device: &AppDevice, method: &str, rel: &str, body: Value) -> Value {
    let body = (!body.is_null()).then_some(body);
    let (status, answer) = env
        .app_call(device, method, rel, body.as_ref())
        .await
        .unwrap();
    assert_eq!(status, 200, "{method} {rel}: {answer}");
    answer
}

/// The device scans a fresh order QR of the network's merchant: the order id and the prompt.
async fn scan(env: &Network, device: &AppDevice) -> (String, Value) {
    let order = env.order().unwrap();
    let qr = env.merchant().order_qr(&order.order.id).unwrap();
    let scanned = ok(env, device, "POST", "/app/scan", json!({"text": qr})).await;
    assert_eq!(scanned["kind"], "prompt", "{scanned}");
    (order.order.id, scanned["prompt"].clone())
}

/// The device confirms the prompt with a consent signed by its key: the txid.
async fn confirm(env: &Network, device: &AppDevice, prompt: &Value) -> String {
    let session_id = prompt["sessionId"].as_str().unwrap();
    let order = &prompt["order"];
    let consent = json!({
        "sessionId": session_id,
        "orderHash": object_hash(order).unwrap(),
        "amount": order["amount"],
        "currency": order["currency"],
        "merchantOcid": order["ocid"],
        "deviceId": device.device_id,
        "timestamp": env.now(),
    });
    let signature = sign_object(&device.key, &consent).unwrap();
    let paid = ok(
        env,
        device,
        "POST",
        &format!("/app/sessions/{session_id}/confirm"),
        json!({"idempotencyKey": format!("idem-{session_id}"), "consent": consent, "signature": signature}),
    )
    .await;
    assert_eq!(paid["status"], "paid", "{paid}");
    paid["txid"].as_str().unwrap().to_string()
}

/// The next FCM message, which must come within [`WAIT`] and be `kind` for `session_id`.
async fn expect_push(fcm: &FakeFcm, token: &str, kind: &str, session_id: &str) -> FcmMessage {
    let message = fcm
        .next_message(WAIT)
        .await
        .unwrap_or_else(|| panic!("no {kind} wake-up for {session_id} within {WAIT:?}"));
    assert_eq!(message.token, token);
    assert_eq!(message.data["type"], kind, "{:?}", message.data);
    assert_eq!(message.data["sessionId"], session_id, "{:?}", message.data);
    message
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
async fn with_an_hour_between_polls_pushes_and_the_webhook_still_go_out_after_the_request() {
    let fcm = FakeFcm::start().await;
    let env = network(&fcm).await;
    let gateway = env.gateway().unwrap().state.clone();
    let phone = device(&env, "locked-phone").await;
    let token = "phone-1:APA91bWakeUpAfterCommit";
    ok(
        &env,
        &phone,
        "PUT",
        "/app/devices/push-token",
        json!({"provider": "fcm", "token": token}),
    )
    .await;

    // Merchant QR: the scan commits the prompt and its wake-up; the push goes out at once.
    let (order_id, prompt) = scan(&env, &phone).await;
    let session_id = prompt["sessionId"].as_str().unwrap();
    expect_push(&fcm, token, "payment_request", session_id).await;

    // The confirmation commits the settlement with its webhook row and the status event.
    let txid = confirm(&env, &phone, &prompt).await;
    let merchant = env.merchant();
    eventually("the merchant received the proof webhook", || {
        merchant.proofs().iter().any(|p| {
            p.proof.txid == txid && p.proof.to.reference.as_deref() == Some(order_id.as_str())
        })
    })
    .await;
    // The row's outcome is recorded right after the merchant's answer.
    let deadline = tokio::time::Instant::now() + WAIT;
    let webhook = loop {
        let row = gateway.store.webhook_by_txid(&txid).await.unwrap().unwrap();
        if row.status != "pending" || tokio::time::Instant::now() >= deadline {
            break row;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(webhook.status, "delivered", "{webhook:?}");
    assert_eq!(webhook.attempts, 1, "sent once, not retried: {webhook:?}");
    expect_push(&fcm, token, "payment_status", session_id).await;

    // Wallet QR: the merchant posts an order to the phone's session (`POST
    // /orders/create/{sessionId}`); the prompt's wake-up goes out at once too.
    let session = ok(&env, &phone, "POST", "/app/sessions", Value::Null).await;
    let qr_text = session["qrText"].as_str().unwrap();
    let order = env.order().unwrap();
    merchant
        .post_to_wallet_session(qr_text, &order.order.id)
        .await
        .unwrap();
    expect_push(
        &fcm,
        token,
        "payment_request",
        session["sessionId"].as_str().unwrap(),
    )
    .await;

    // The worker counts a wake-up once its outcome is recorded, a moment after FCM took it.
    eventually("three wake-ups counted as sent", || {
        gateway.push_counters.sent() >= 3
    })
    .await;
    assert_eq!(gateway.push_counters.sent(), 3);
    assert_eq!(gateway.push_counters.failed(), 0);
    assert_eq!(fcm.rejections(), Vec::<String>::new());
    env.stop().await;
}

/// An open `/app/events` response and what was read of it.
struct Stream {
    response: reqwest::Response,
    text: String,
}

impl Stream {
    /// Opens the event stream of `device` and waits for its `: connected` comment.
    async fn open(env: &Network, device: &AppDevice) -> Stream {
        let url = format!("{}/app/events", env.endpoint());
        let response = device
            .request(&env.http, "GET", &url, Vec::new(), env.now())
            .unwrap()
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let mut stream = Stream {
            response,
            text: String::new(),
        };
        stream.read_until(": connected").await;
        stream
    }

    /// Reads until the stream's text holds `needle`; fails after [`WAIT`].
    async fn read_until(&mut self, needle: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !self.text.contains(needle) {
            let left = deadline
                .checked_duration_since(tokio::time::Instant::now())
                .unwrap_or_else(|| panic!("{needle:?} not on the stream: {:?}", self.text));
            match tokio::time::timeout(left, self.response.chunk()).await {
                Ok(Ok(Some(bytes))) => self.text.push_str(&String::from_utf8_lossy(&bytes)),
                other => panic!("stream ended before {needle:?}: {other:?} {:?}", self.text),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_wakes_only_the_streams_of_its_account_and_closed_streams_leave_the_hub() {
    // Heartbeats every second, so the gateway soon notices a stream whose client left; the
    // safety poll (two heartbeats) then re-reads every stream regardless of wake-ups, which
    // the wake-up count below does not include. On a SQLite file whatever
    // OPENCHARGE_TEST_BACKEND says: the exact count is the in-process hub's; on PostgreSQL a
    // commit also comes back as the instance's own NOTIFY, a second wake-up of the same
    // streams (multi_instance covers the wake-ups across instances).
    let env = Network::builder()
        .sqlite()
        .gateway_config(|c| c.sse_heartbeat_secs = 1)
        .start()
        .await
        .unwrap();
    let hub = env.gateway().unwrap().state.hub.clone();
    let (ada, bob) = (device(&env, "ada").await, device(&env, "bob").await);
    let mut ada_stream = Stream::open(&env, &ada).await;
    let mut bob_streams = [
        Stream::open(&env, &bob).await,
        Stream::open(&env, &bob).await,
    ];
    assert_eq!(hub.accounts_listening(), 2);

    // Bob's prompt wakes Bob's two streams and not Ada's.
    let before = hub.stream_wakeups();
    let (_, prompt) = scan(&env, &bob).await;
    let session_id = prompt["sessionId"].as_str().unwrap();
    for stream in &mut bob_streams {
        stream.read_until(session_id).await;
    }
    assert_eq!(hub.stream_wakeups() - before, 2, "only Bob's two streams");
    assert!(!ada_stream.text.contains(session_id));

    // Ada's prompt wakes Ada's one stream.
    let (_, prompt) = scan(&env, &ada).await;
    ada_stream
        .read_until(prompt["sessionId"].as_str().unwrap())
        .await;
    assert_eq!(hub.stream_wakeups() - before, 3, "then only Ada's stream");

    // The clients leave: the gateway ends the streams and the registry is empty again.
    drop(ada_stream);
    let [first, second] = bob_streams;
    drop(first);
    eventually("Ada left the registry, Bob is still in it", || {
        hub.accounts_listening() == 1
    })
    .await;
    drop(second);
    eventually("the registry is empty after every stream closed", || {
        hub.accounts_listening() == 0
    })
    .await;
    env.stop().await;
}
