//! End-to-end tests of the wallet app API (`/app/...`), the SSE event stream and the dev
//! endpoints: a real gateway on loopback with a real database (a SQLite file, or PostgreSQL
//! with `OPENCHARGE_TEST_BACKEND=postgres`), real device keys and signatures, stand-in merchants and Merchant Gateways, and a tiny merchant server for scans.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use opencharge_gateway::auth::device_auth_headers;
use opencharge_gateway::clock::OffsetClock;
use opencharge_gateway::config::DirectoryEntry;
use opencharge_gateway::RunningGateway;
use opencharge_protocol::keys::PrivateKey;
use opencharge_protocol::qr::{InventoryQr, MerchantOrderQr};
use opencharge_protocol::signing::{object_hash, sign_object};
// A registered device: its key, device id and account.
use opencharge_testkit::sse::SseReader;
use opencharge_testkit::AppDevice as Wallet;
use opencharge_testkit::{merchant_metadata, signed_request, Network, WebhookReceiver};
use serde_json::{json, Value};

const MERCHANT: u64 = 500;
const MERCHANT_GATEWAY: u64 = 600;
const SCAN_MERCHANT: u64 = 700;

// ---------------------------------------------------------------------------------------------
// Harness

/// A gateway alone on the test kit's network, plus stand-in parties around it.
struct Env {
    net: Network,
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>`
    base: String,
    /// `/opencharge`
    bp: String,
    merchant_key: PrivateKey,
    merchant_rx: WebhookReceiver,
    mg_key: PrivateKey,
    mg_rx: WebhookReceiver,
    clock: Arc<OffsetClock>,
}

/// Optional extras for [`Env::start_with`].
#[derive(Default)]
struct Extras {
    directory: Vec<DirectoryEntry>,
    heartbeat_secs: Option<u64>,
}

impl Env {
    async fn start() -> Env {
        Env::start_with(Extras::default()).await
    }

    async fn start_with(extras: Extras) -> Env {
        let merchant_key = PrivateKey::generate();
        let mg_key = PrivateKey::generate();
        let merchant_rx = WebhookReceiver::start().await.unwrap();
        let mg_rx = WebhookReceiver::start().await.unwrap();
        let mut directory = vec![
            DirectoryEntry {
                ocid: MERCHANT,
                metadata_url: None,
                metadata: Some(merchant_metadata(
                    MERCHANT,
                    "Test Coffee",
                    &merchant_key,
                    &merchant_rx.endpoint(),
                    &[200],
                )),
            },
            DirectoryEntry {
                ocid: MERCHANT_GATEWAY,
                metadata_url: None,
                metadata: Some(merchant_metadata(
                    MERCHANT_GATEWAY,
                    "Test Merchant Gateway",
                    &mg_key,
                    &mg_rx.endpoint(),
                    &[200],
                )),
            },
        ];
        directory.extend(extras.directory);
        let net = Network::builder()
            .merchants(0)
            .gateway_config(move |config| {
                config.directory = directory;
                if let Some(secs) = extras.heartbeat_secs {
                    config.sse_heartbeat_secs = secs;
                }
            })
            .start()
            .await
            .unwrap();
        let gw = net.gateway().unwrap();
        let base = format!("http://{}", gw.addr);
        let bp = gw.state.config.base_path.clone();
        Env {
            clock: net.clock.clone(),
            net,
            http: reqwest::Client::new(),
            base,
            bp,
            merchant_key,
            merchant_rx,
            mg_key,
            mg_rx,
        }
    }

    /// The running gateway.
    fn gw(&self) -> &RunningGateway {
        self.net.gateway().unwrap()
    }

    fn now(&self) -> i64 {
        self.gw().state.now()
    }

    fn url(&self, rel: &str) -> String {
        format!("{}{}{}", self.base, self.bp, rel)
    }

    /// An unauthenticated JSON call (dev endpoints, device registration).
    async fn plain(&self, method: &str, rel: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .request(method.parse().unwrap(), self.url(rel))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).unwrap())
            .send()
            .await
            .unwrap();
        read(resp).await
    }

    /// A device-signed call.
    async fn call(&self, w: &Wallet, method: &str, rel: &str, body: Option<Value>) -> (u16, Value) {
        let bytes = body
            .map(|b| serde_json::to_vec(&b).unwrap())
            .unwrap_or_default();
        let resp = self
            .signed(w, method, rel, bytes, &[])
            .send()
            .await
            .unwrap();
        read(resp).await
    }

    /// A device-signed request builder (path, query and body exactly as signed).
    fn signed(
        &self,
        w: &Wallet,
        method: &str,
        rel: &str,
        body: Vec<u8>,
        extra: &[(&str, String)],
    ) -> reqwest::RequestBuilder {
        let mut req = w
            .request(&self.http, method, &self.url(rel), body, self.now())
            .unwrap();
        for (name, value) in extra {
            req = req.header(*name, value);
        }
        req
    }

    /// Creates a dev account, funds it, registers a fresh device key: a ready wallet.
    async fn wallet(&self, name: &str, usd: Option<&str>) -> Wallet {
        let account = self.net.new_account(name).await.unwrap();
        let (account_id, code) = (account.account_id, account.enrollment_code);
        assert_eq!(code.len(), 32);
        if let Some(amount) = usd {
            self.net.fund(&account_id, amount).await.unwrap();
        }
        let key = PrivateKey::generate();
        let (status, body) = self.register(&key, &code, self.now()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["accountId"], json!(account_id));
        Wallet {
            key,
            device_id: body["deviceId"].as_str().unwrap().to_string(),
            account_id,
        }
    }

    /// `POST /app/devices` with a possession proof by `key`.
    async fn register(&self, key: &PrivateKey, code: &str, ts: i64) -> (u16, Value) {
        let public_key = key.public_key().to_hex();
        let message = format!("opencharge-device-registration\n{public_key}\n{code}\n{ts}");
        let signature = key.sign_message(message.as_bytes()).unwrap().to_hex();
        self.plain(
            "POST",
            "/app/devices",
            json!({"enrollmentCode": code, "publicKey": public_key, "timestamp": ts, "signature": signature}),
        )
        .await
    }

    /// USD balance of a wallet as a decimal string.
    async fn usd(&self, w: &Wallet) -> String {
        let (status, body) = self.call(w, "GET", "/app/balance", None).await;
        assert_eq!(status, 200, "{body}");
        opencharge_testkit::usd_amount(&body)
    }

    /// Minor-unit USD balance of any ledger account, straight from the store.
    async fn ledger_usd(&self, account: &str) -> i64 {
        self.gw()
            .state
            .store
            .balances(account)
            .await
            .unwrap()
            .into_iter()
            .filter(|b| b.currency == "USD")
            .map(|b| b.minor)
            .sum()
    }

    /// `POST /app/sessions` → (sessionId, order URL).
    async fn session(&self, w: &Wallet) -> (String, String) {
        let (status, body) = self.call(w, "POST", "/app/sessions", None).await;
        assert_eq!(status, 200, "{body}");
        let id = body["sessionId"].as_str().unwrap().to_string();
        assert_eq!(id.len(), 32);
        let order_url = body["qrPayload"]["order"].as_str().unwrap().to_string();
        assert_eq!(
            order_url,
            format!("{}/orders/create/{id}", self.gw().endpoint())
        );
        let text: Value = serde_json::from_str(body["qrText"].as_str().unwrap()).unwrap();
        assert_eq!(text, body["qrPayload"]);
        (id, order_url)
    }

    /// The stand-in merchant (kit-signed) posts a signed order to a wallet QR session; returns the
    /// raw order and the status URL.
    async fn merchant_posts(
        &self,
        order_url: &str,
        order_id: &str,
        amount: &str,
    ) -> (Value, String) {
        let order = order_json(MERCHANT, order_id, amount, self.now());
        let signature = sign_object(&self.merchant_key, &order).unwrap();
        let body = json!({"order": order, "signature": signature, "urls": {"order": []}});
        let resp = signed_request(
            &self.http,
            &self.merchant_key,
            MERCHANT,
            "POST",
            order_url,
            Some(serde_json::to_vec(&body).unwrap()),
            self.now(),
        )
        .await
        .unwrap();
        let (status, answer) = read(resp).await;
        assert_eq!(status, 200, "{answer}");
        (
            order,
            answer["urls"]["status"].as_str().unwrap().to_string(),
        )
    }

    /// The merchant polls the status URL.
    async fn merchant_status(&self, status_url: &str) -> Value {
        let resp = signed_request(
            &self.http,
            &self.merchant_key,
            MERCHANT,
            "GET",
            status_url,
            None,
            self.now(),
        )
        .await
        .unwrap();
        let (status, body) = read(resp).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// A wallet session with a merchant order on it: (sessionId, raw order, status URL).
    async fn prompt(&self, w: &Wallet, order_id: &str, amount: &str) -> (String, Value, String) {
        let (id, order_url) = self.session(w).await;
        let (order, status_url) = self.merchant_posts(&order_url, order_id, amount).await;
        (id, order, status_url)
    }

    /// `POST /app/sessions/{id}/confirm` with a correctly signed consent (after `tweak`).
    async fn confirm_with(
        &self,
        w: &Wallet,
        session_id: &str,
        order: &Value,
        key: &str,
        tweak: impl FnOnce(&mut Value),
    ) -> (u16, Value) {
        let mut consent = consent_for(w, session_id, order, self.now());
        tweak(&mut consent);
        let signature = sign_object(&w.key, &consent).unwrap();
        self.call(
            w,
            "POST",
            &format!("/app/sessions/{session_id}/confirm"),
            Some(json!({"idempotencyKey": key, "consent": consent, "signature": signature})),
        )
        .await
    }

    async fn confirm(
        &self,
        w: &Wallet,
        session_id: &str,
        order: &Value,
        key: &str,
    ) -> (u16, Value) {
        self.confirm_with(w, session_id, order, key, |_| {}).await
    }

    /// Opens the SSE stream of a wallet.
    async fn events(&self, w: &Wallet, last_event_id: Option<i64>, query: &str) -> SseReader {
        let extra: Vec<(&str, String)> = last_event_id
            .map(|id| vec![("Last-Event-ID", id.to_string())])
            .unwrap_or_default();
        let resp = self
            .signed(w, "GET", &format!("/app/events{query}"), Vec::new(), &extra)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert!(resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/event-stream")));
        SseReader::new(resp)
    }
}

async fn read(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)))
    };
    (status, body)
}

/// A merchant order accepting our gateway (200) with one item.
fn order_json(merchant: u64, id: &str, amount: &str, now: i64) -> Value {
    json!({
        "id": id,
        "ocid": merchant,
        "reference": format!("REF-{id}"),
        "amount": amount,
        "currency": "USD",
        "items": [{"id": "item_1", "name": "Coffee", "quantity": 1, "price": amount}],
        "createdAt": now,
        "expiresAt": now + 600,
        "accepts": [200],
    })
}

/// The consent a device signs for a session's order.
fn consent_for(w: &Wallet, session_id: &str, order: &Value, now: i64) -> Value {
    json!({
        "sessionId": session_id,
        "orderHash": object_hash(order).unwrap(),
        "amount": order["amount"],
        "currency": order["currency"],
        "merchantOcid": order["ocid"],
        "deviceId": w.device_id,
        "timestamp": now,
    })
}

fn err_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// Waits up to 10 s for `check` to hold.
async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

// ---------------------------------------------------------------------------------------------
// Registration and device authentication

#[tokio::test]
async fn register_device_good_bad_possession_and_reused_code() {
    let env = Env::start().await;
    let (_, acct) = env
        .plain("POST", "/dev/accounts", json!({"name": "Alice"}))
        .await;
    let code = acct["enrollmentCode"].as_str().unwrap().to_string();
    let account_id = acct["accountId"].as_str().unwrap().to_string();
    let key = PrivateKey::generate();
    let now = env.now();

    // Possession signature made by another key → 401 INVALID_SIGNATURE.
    let other = PrivateKey::generate();
    let public_key = key.public_key().to_hex();
    let message = format!("opencharge-device-registration\n{public_key}\n{code}\n{now}");
    let bad_sig = other.sign_message(message.as_bytes()).unwrap().to_hex();
    let (status, body) = env
        .plain(
            "POST",
            "/app/devices",
            json!({"enrollmentCode": code, "publicKey": public_key, "timestamp": now, "signature": bad_sig}),
        )
        .await;
    assert_eq!(
        (status, err_code(&body)),
        (401, "INVALID_SIGNATURE"),
        "{body}"
    );

    // Stale timestamp → 401 TIMESTAMP_EXPIRED.
    let (status, body) = env.register(&key, &code, now - 301).await;
    assert_eq!(
        (status, err_code(&body)),
        (401, "TIMESTAMP_EXPIRED"),
        "{body}"
    );

    // Malformed key → 400.
    let (status, body) = env
        .plain(
            "POST",
            "/app/devices",
            json!({"enrollmentCode": code, "publicKey": "abcd", "timestamp": now, "signature": bad_sig}),
        )
        .await;
    assert_eq!(
        (status, err_code(&body)),
        (400, "INVALID_REQUEST"),
        "{body}"
    );

    // Good registration, then an idempotent retry with the same key and code.
    let (status, first) = env.register(&key, &code, now).await;
    assert_eq!(status, 200, "{first}");
    let expected_id = format!(
        "dev_{}",
        &opencharge_protocol::keys::sha256_hex(public_key.as_bytes())[..32]
    );
    assert_eq!(first["deviceId"], json!(expected_id));
    assert_eq!(first["accountId"], json!(account_id));
    let (status, again) = env.register(&key, &code, env.now()).await;
    assert_eq!((status, &again), (200, &first));

    // The same code with another key → 401 ENROLLMENT_INVALID.
    let (status, body) = env
        .register(&PrivateKey::generate(), &code, env.now())
        .await;
    assert_eq!(
        (status, err_code(&body)),
        (401, "ENROLLMENT_INVALID"),
        "{body}"
    );

    // An unknown code → 401 ENROLLMENT_INVALID.
    let (status, body) = env
        .register(
            &PrivateKey::generate(),
            "00000000000000000000000000000000",
            env.now(),
        )
        .await;
    assert_eq!(
        (status, err_code(&body)),
        (401, "ENROLLMENT_INVALID"),
        "{body}"
    );

    // A fresh code from the dev endpoint registers a second device on the same account.
    let (status, fresh) = env
        .plain(
            "POST",
            &format!("/dev/accounts/{account_id}/enrollments"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{fresh}");
    let (status, second) = env
        .register(
            &PrivateKey::generate(),
            fresh["enrollmentCode"].as_str().unwrap(),
            env.now(),
        )
        .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["accountId"], json!(account_id));
    assert_ne!(second["deviceId"], first["deviceId"]);
}

#[tokio::test]
async fn device_auth_failures_unknown_replayed_and_rotated() {
    let env = Env::start().await;
    let w = env.wallet("Bob", Some("10.00")).await;

    // Unknown device.
    let ghost = Wallet {
        key: PrivateKey::generate(),
        device_id: "dev_00000000000000000000000000000000".into(),
        account_id: String::new(),
    };
    let (status, body) = env.call(&ghost, "GET", "/app/balance", None).await;
    assert_eq!(
        (status, err_code(&body)),
        (401, "INVALID_SIGNATURE"),
        "{body}"
    );

    // No headers at all.
    let resp = env.http.get(env.url("/app/balance")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);

    // Signed by the wrong key.
    let forged = Wallet {
        key: PrivateKey::generate(),
        device_id: w.device_id.clone(),
        account_id: w.account_id.clone(),
    };
    let (status, body) = env.call(&forged, "GET", "/app/balance", None).await;
    assert_eq!(
        (status, err_code(&body)),
        (401, "INVALID_SIGNATURE"),
        "{body}"
    );

    // The same signed request twice: the second is a replayed nonce.
    let path = format!("{}/app/balance", env.bp);
    let headers = device_auth_headers(&w.key, &w.device_id, "GET", &path, b"", env.now());
    let send = || {
        let mut req = env.http.get(env.url("/app/balance"));
        for (name, value) in &headers {
            req = req.header(*name, value.clone());
        }
        req.send()
    };
    assert_eq!(send().await.unwrap().status().as_u16(), 200);
    let (status, body) = read(send().await.unwrap()).await;
    assert_eq!((status, err_code(&body)), (401, "NONCE_REUSED"), "{body}");

    // Body changed after signing.
    let path = format!("{}/app/sessions", env.bp);
    let mut req = env.http.post(env.url("/app/sessions"));
    for (name, value) in device_auth_headers(&w.key, &w.device_id, "POST", &path, b"{}", env.now())
    {
        req = req.header(name, value);
    }
    let (status, body) = read(req.body("{ }").send().await.unwrap()).await;
    assert_eq!(
        (status, err_code(&body)),
        (401, "INVALID_SIGNATURE"),
        "{body}"
    );

    // Rotation: the new key signs the rotation message, the old key signs the request.
    let new_key = PrivateKey::generate();
    let new_public = new_key.public_key().to_hex();
    let message = format!("opencharge-device-rotation\n{}\n{new_public}", w.device_id);
    let bad = PrivateKey::generate()
        .sign_message(message.as_bytes())
        .unwrap()
        .to_hex();
    let (status, body) = env
        .call(
            &w,
            "POST",
            "/app/devices/rotate",
            Some(json!({"newPublicKey": new_public, "newKeySignature": bad})),
        )
        .await;
    assert_eq!(
        (status, err_code(&body)),
        (400, "INVALID_SIGNATURE"),
        "{body}"
    );
    let good = new_key.sign_message(message.as_bytes()).unwrap().to_hex();
    let (status, body) = env
        .call(
            &w,
            "POST",
            "/app/devices/rotate",
            Some(json!({"newPublicKey": new_public, "newKeySignature": good})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let rotated = Wallet {
        key: new_key,
        device_id: body["deviceId"].as_str().unwrap().to_string(),
        account_id: w.account_id.clone(),
    };
    assert_ne!(rotated.device_id, w.device_id);
    assert_eq!(body["accountId"], json!(w.account_id));

    // The old key no longer works; the new one sees the same account and money.
    let (status, body) = env.call(&w, "GET", "/app/balance", None).await;
    assert_eq!(
        (status, err_code(&body)),
        (401, "INVALID_SIGNATURE"),
        "{body}"
    );
    assert_eq!(env.usd(&rotated).await, "10.00");
}

// ---------------------------------------------------------------------------------------------
// Flow 1: wallet shows a QR

#[tokio::test]
async fn wallet_qr_flow_end_to_end_with_sse_prompt_webhook_and_status() {
    let env = Env::start().await;
    let w = env.wallet("Carol", Some("100.00")).await;
    let (session_id, order_url) = env.session(&w).await;
    let mut sse = env.events(&w, None, "").await;

    let (order, status_url) = env.merchant_posts(&order_url, "ord_flow1", "25.00").await;
    assert_eq!(env.merchant_status(&status_url).await["status"], "pending");

    // The prompt arrives on the stream and in GET /app/prompts.
    let event = sse.expect(Duration::from_secs(10)).await;
    assert_eq!(event.kind, "payment_request");
    assert_eq!(event.data["sessionId"], json!(session_id));
    assert_eq!(event.data["merchantOcid"], json!(MERCHANT));
    assert_eq!(event.data["merchantName"], "Test Coffee");
    assert_eq!(event.data["flow"], "wallet_qr");
    assert_eq!(event.data["order"], order);
    assert_eq!(event.data["orderHash"], json!(object_hash(&order).unwrap()));
    let (status, prompts) = env.call(&w, "GET", "/app/prompts", None).await;
    assert_eq!(status, 200);
    assert_eq!(prompts["prompts"], json!([event.data.clone()]));

    // Confirm.
    let (status, paid) = env.confirm(&w, &session_id, &order, "idem-1").await;
    assert_eq!(status, 200, "{paid}");
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["sessionId"], json!(session_id));
    let txid = paid["txid"].as_str().unwrap().to_string();
    let proof = &paid["proof"]["proof"];
    assert_eq!(proof["txid"], json!(txid));
    assert_eq!(proof["amount"], "25.00");
    assert_eq!(
        proof["to"],
        json!({"ocid": MERCHANT, "reference": "ord_flow1"})
    );
    assert!(paid.get("redirectUrl").is_none());

    // Money moved once; the status event follows on the stream.
    assert_eq!(env.usd(&w).await, "75.00");
    assert_eq!(env.ledger_usd(&format!("ocid:{MERCHANT}")).await, 2500);
    let event = sse.expect(Duration::from_secs(10)).await;
    assert_eq!(event.kind, "payment_status");
    assert_eq!(event.data["status"], "paid");
    assert_eq!(event.data["txid"], json!(txid));

    // The merchant gets the proof webhook and sees `paid` on the status URL.
    assert!(eventually(|| !env.merchant_rx.received().is_empty()).await);
    let hooks = env.merchant_rx.received();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0]["proof"]["txid"], json!(txid));
    let status = env.merchant_status(&status_url).await;
    assert_eq!(status["status"], "paid");
    assert_eq!(status["txid"], json!(txid));
    assert_eq!(status["orderId"], "ord_flow1");

    // Nothing is pending any more; history and the receipt carry the proof.
    let (_, prompts) = env.call(&w, "GET", "/app/prompts", None).await;
    assert_eq!(prompts["prompts"], json!([]));
    let (status, history) = env.call(&w, "GET", "/app/history?limit=10", None).await;
    assert_eq!(status, 200, "{history}");
    let receipts = history["receipts"].as_array().unwrap();
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0]["sessionId"], json!(session_id));
    assert_eq!(receipts[0]["status"], "paid");
    assert_eq!(receipts[0]["amount"], "25.00");
    assert_eq!(receipts[0]["merchantName"], "Test Coffee");
    assert_eq!(receipts[0]["txid"], json!(txid));
    let (status, receipt) = env
        .call(&w, "GET", &format!("/app/payments/{session_id}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(receipt, receipts[0]);
    assert_eq!(receipt["proof"], paid["proof"]);
}

#[tokio::test]
async fn confirm_concurrently_and_repeatedly_debits_once() {
    let env = Arc::new(Env::start().await);
    let w = Arc::new(env.wallet("Dan", Some("50.00")).await);
    let (session_id, order, _) = env.prompt(&w, "ord_race", "20.00").await;

    let mut tasks = Vec::new();
    for i in 0..8 {
        let (env, w, session_id, order) =
            (env.clone(), w.clone(), session_id.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            env.confirm(&w, &session_id, &order, &format!("race-{i}"))
                .await
        }));
    }
    let mut txids = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 200, "{body}");
        txids.push(body["txid"].as_str().unwrap().to_string());
    }
    txids.dedup();
    assert_eq!(txids.len(), 1, "every confirmation reports the one payment");
    assert_eq!(env.usd(&w).await, "30.00");
    assert_eq!(env.ledger_usd(&format!("ocid:{MERCHANT}")).await, 2000);

    // The same idempotency key again (fresh consent timestamp): the same answer, no debit.
    let (status, first) = env.confirm(&w, &session_id, &order, "race-3").await;
    assert_eq!(status, 200);
    let (status, second) = env.confirm(&w, &session_id, &order, "race-3").await;
    assert_eq!(status, 200);
    assert_eq!(first, second);
    assert_eq!(first["txid"], json!(txids[0]));
    assert_eq!(env.usd(&w).await, "30.00");
}

#[tokio::test]
async fn insufficient_funds_is_402_and_changes_nothing() {
    let env = Env::start().await;
    let w = env.wallet("Erin", Some("1.00")).await;
    let (session_id, order, status_url) = env.prompt(&w, "ord_poor", "25.00").await;

    let (status, body) = env.confirm(&w, &session_id, &order, "poor-1").await;
    assert_eq!(
        (status, err_code(&body)),
        (402, "INSUFFICIENT_FUNDS"),
        "{body}"
    );
    assert_eq!(env.usd(&w).await, "1.00");
    assert_eq!(env.ledger_usd(&format!("ocid:{MERCHANT}")).await, 0);
    let (_, receipt) = env
        .call(&w, "GET", &format!("/app/payments/{session_id}"), None)
        .await;
    assert_eq!(receipt["status"], "order_received");
    assert_eq!(env.merchant_status(&status_url).await["status"], "pending");

    // After a top-up the same key pays.
    env.plain(
        "POST",
        &format!("/dev/accounts/{}/fund", w.account_id),
        json!({"currency": "USD", "amount": "30"}),
    )
    .await;
    let (status, body) = env.confirm(&w, &session_id, &order, "poor-1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(env.usd(&w).await, "6.00");
}

#[tokio::test]
async fn another_accounts_device_gets_403() {
    let env = Env::start().await;
    let owner = env.wallet("Fay", Some("50.00")).await;
    let thief = env.wallet("Gus", Some("50.00")).await;
    let (session_id, order, _) = env.prompt(&owner, "ord_mine", "5.00").await;

    let (status, body) = env.confirm(&thief, &session_id, &order, "steal").await;
    assert_eq!((status, err_code(&body)), (403, "FORBIDDEN"), "{body}");
    let (status, body) = env
        .call(
            &thief,
            "POST",
            &format!("/app/sessions/{session_id}/decline"),
            Some(json!({})),
        )
        .await;
    assert_eq!((status, err_code(&body)), (403, "FORBIDDEN"), "{body}");
    let (status, _) = env
        .call(&thief, "GET", &format!("/app/payments/{session_id}"), None)
        .await;
    assert_eq!(status, 403);
    assert_eq!(env.usd(&thief).await, "50.00");
    assert_eq!(env.usd(&owner).await, "50.00");

    // Unknown session → 404.
    let (status, body) = env
        .confirm(&owner, "0123456789abcdef0123456789abcdef", &order, "nope")
        .await;
    assert_eq!(
        (status, err_code(&body)),
        (404, "SESSION_NOT_FOUND"),
        "{body}"
    );
}

/// A change applied to a consent before signing.
type ConsentTweak = Box<dyn FnOnce(&mut Value)>;

#[tokio::test]
async fn tampered_consent_is_rejected() {
    let env = Env::start().await;
    let w = env.wallet("Hal", Some("50.00")).await;
    let (session_id, order, _) = env.prompt(&w, "ord_tamper", "25.00").await;

    let cases: Vec<(&str, ConsentTweak)> = vec![
        (
            "amount",
            Box::new(|c: &mut Value| c["amount"] = json!("2.50")),
        ),
        (
            "amount",
            Box::new(|c: &mut Value| c["amount"] = json!("25.0")),
        ),
        (
            "orderHash",
            Box::new(|c: &mut Value| c["orderHash"] = json!("00".repeat(32))),
        ),
        (
            "merchantOcid",
            Box::new(|c: &mut Value| c["merchantOcid"] = json!(501)),
        ),
        (
            "currency",
            Box::new(|c: &mut Value| c["currency"] = json!("EUR")),
        ),
        (
            "sessionId",
            Box::new(|c: &mut Value| c["sessionId"] = json!("ffffffffffffffffffffffffffffffff")),
        ),
        (
            "deviceId",
            Box::new(|c: &mut Value| c["deviceId"] = json!("dev_ffffffffffffffffffffffffffffffff")),
        ),
        (
            "timestamp",
            Box::new(|c: &mut Value| c["timestamp"] = json!(1)),
        ),
    ];
    for (field, tweak) in cases {
        let (status, body) = env.confirm_with(&w, &session_id, &order, "t", tweak).await;
        assert_eq!(
            (status, err_code(&body)),
            (400, "INVALID_REQUEST"),
            "{field}: {body}"
        );
        assert!(
            body["error"]["message"].as_str().unwrap().contains(field),
            "{body}"
        );
    }

    // A consent signed for one amount but sent with another: the signature fails.
    let consent = consent_for(&w, &session_id, &order, env.now());
    let signature = sign_object(&w.key, &consent).unwrap();
    let mut tampered = consent.clone();
    tampered["amount"] = json!("0.01");
    let (status, body) = env
        .call(
            &w,
            "POST",
            &format!("/app/sessions/{session_id}/confirm"),
            Some(json!({"idempotencyKey": "t2", "consent": tampered, "signature": signature})),
        )
        .await;
    assert_eq!(
        (status, err_code(&body)),
        (400, "INVALID_SIGNATURE"),
        "{body}"
    );

    // An extra field in the consent is refused.
    let (status, body) = env
        .confirm_with(&w, &session_id, &order, "t3", |c| c["tip"] = json!("1.00"))
        .await;
    assert_eq!(
        (status, err_code(&body)),
        (400, "INVALID_REQUEST"),
        "{body}"
    );

    assert_eq!(env.usd(&w).await, "50.00");
    let (status, body) = env.confirm(&w, &session_id, &order, "t4").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn decline_reports_cancelled_and_blocks_confirm() {
    let env = Env::start().await;
    let w = env.wallet("Ivy", Some("50.00")).await;
    let (session_id, order, status_url) = env.prompt(&w, "ord_no", "5.00").await;

    let (status, body) = env
        .call(
            &w,
            "POST",
            &format!("/app/sessions/{session_id}/decline"),
            Some(json!({"reason": "wrong amount"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"status": "declined", "sessionId": session_id}));
    // Declining again is idempotent.
    let (status, again) = env
        .call(
            &w,
            "POST",
            &format!("/app/sessions/{session_id}/decline"),
            None,
        )
        .await;
    assert_eq!((status, &again), (200, &body));

    assert_eq!(
        env.merchant_status(&status_url).await["status"],
        "cancelled"
    );
    let (status, body) = env.confirm(&w, &session_id, &order, "late").await;
    assert_eq!((status, err_code(&body)), (409, "INVALID_STATE"), "{body}");
    assert_eq!(body["error"]["details"]["status"], "declined");
    assert_eq!(env.usd(&w).await, "50.00");

    // The declined event is in the stream replay.
    let mut sse = env.events(&w, None, "").await;
    let first = sse.expect(Duration::from_secs(10)).await;
    assert_eq!(first.kind, "payment_request");
    let second = sse.expect(Duration::from_secs(10)).await;
    assert_eq!(second.kind, "payment_status");
    assert_eq!(second.data["status"], "declined");
    assert_eq!(second.data["reason"], "wrong amount");
    let (_, receipt) = env
        .call(&w, "GET", &format!("/app/payments/{session_id}"), None)
        .await;
    assert_eq!(receipt["status"], "declined");
    assert_eq!(receipt["declineReason"], "wrong amount");
}

// ---------------------------------------------------------------------------------------------
// SSE resume

#[tokio::test]
async fn sse_resume_with_last_event_id_loses_nothing() {
    let env = Env::start_with(Extras {
        heartbeat_secs: Some(1),
        ..Extras::default()
    })
    .await;
    let w = env.wallet("Jon", Some("100.00")).await;

    let mut sse = env.events(&w, None, "").await;
    let (s1, o1, _) = env.prompt(&w, "ord_r1", "1.00").await;
    let e1 = sse.expect(Duration::from_secs(10)).await;
    assert_eq!(e1.data["sessionId"], json!(s1));
    // Heartbeat comments flow while idle.
    assert!(sse.next(Duration::from_millis(2500)).await.is_none());
    assert!(sse.comments() >= 2, "connected comment and heartbeats");
    drop(sse);

    // While disconnected: a payment, a decline and two more prompts.
    let (status, _) = env.confirm(&w, &s1, &o1, "r1").await;
    assert_eq!(status, 200);
    let (s2, _, _) = env.prompt(&w, "ord_r2", "2.00").await;
    env.call(&w, "POST", &format!("/app/sessions/{s2}/decline"), None)
        .await;
    let (s3, _, _) = env.prompt(&w, "ord_r3", "3.00").await;
    let (s4, _, _) = env.prompt(&w, "ord_r4", "4.00").await;

    // Reconnect with Last-Event-ID: exactly the missed events, in order.
    let mut sse = env.events(&w, Some(e1.id), "").await;
    let mut missed = Vec::new();
    while let Some(e) = sse.next(Duration::from_millis(1500)).await {
        missed.push(e);
    }
    let seen: Vec<(String, String)> = missed
        .iter()
        .map(|e| {
            (
                e.kind.clone(),
                e.data["sessionId"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("payment_status".to_string(), s1.clone()),
            ("payment_request".to_string(), s2.clone()),
            ("payment_status".to_string(), s2.clone()),
            ("payment_request".to_string(), s3.clone()),
            ("payment_request".to_string(), s4.clone()),
        ]
    );
    let ids: Vec<i64> = missed.iter().map(|e| e.id).collect();
    assert!(
        ids.windows(2).all(|p| p[0] < p[1]) && ids[0] > e1.id,
        "{ids:?}"
    );

    // New events keep flowing live on the resumed stream.
    let (s5, _, _) = env.prompt(&w, "ord_r5", "5.00").await;
    let live = sse.expect(Duration::from_secs(10)).await;
    assert_eq!(live.data["sessionId"], json!(s5));
    assert_eq!(live.id, ids[ids.len() - 1] + 1);
    drop(sse);

    // `?after=` works like Last-Event-ID; a bad cursor is 400.
    let mut sse = env.events(&w, None, &format!("?after={}", ids[3])).await;
    assert_eq!(
        sse.expect(Duration::from_secs(10)).await.data["sessionId"],
        json!(s4)
    );
    assert_eq!(
        sse.expect(Duration::from_secs(10)).await.data["sessionId"],
        json!(s5)
    );
    let resp = env
        .signed(
            &w,
            "GET",
            "/app/events",
            Vec::new(),
            &[("Last-Event-ID", "x".into())],
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
}

// ---------------------------------------------------------------------------------------------
// Flow 3: hosted checkout

/// The Merchant Gateway (kit-signed) creates a checkout session for merchant 500's order;
/// returns the raw order and the `/checkout/create` answer.
async fn create_checkout(env: &Env, order_id: &str) -> (Value, Value) {
    let order = order_json(MERCHANT, order_id, "42.00", env.now());
    let signature = sign_object(&env.merchant_key, &order).unwrap();
    let body = json!({
        "order": order, "signature": signature, "merchantOcid": MERCHANT,
        "urls": {"success": "https://shop.example/ok", "cancel": "https://shop.example/cancel"},
    });
    let resp = signed_request(
        &env.http,
        &env.mg_key,
        MERCHANT_GATEWAY,
        "POST",
        &env.url("/checkout/create"),
        Some(serde_json::to_vec(&body).unwrap()),
        env.now(),
    )
    .await
    .unwrap();
    let (status, answer) = read(resp).await;
    assert_eq!(status, 200, "{answer}");
    (order, answer)
}

#[tokio::test]
async fn checkout_flow_proof_to_merchant_gateway_and_redirect() {
    let env = Env::start().await;
    let w = env.wallet("Kim", Some("100.00")).await;
    let other = env.wallet("Lou", Some("100.00")).await;

    // The Merchant Gateway creates a checkout session for merchant 500's order.
    let (order, created) = create_checkout(&env, "ord_co1").await;
    let checkout_id = created["session_id"].as_str().unwrap().to_string();
    assert_eq!(
        created["checkout_url"],
        json!(format!("{}/checkout/{checkout_id}", env.gw().endpoint()))
    );

    // The wallet opens it: the prompt, flow checkout.
    let (status, prompt) = env
        .call(&w, "POST", &format!("/app/checkout/{checkout_id}"), None)
        .await;
    assert_eq!(status, 200, "{prompt}");
    assert_eq!(prompt["flow"], "checkout");
    assert_eq!(prompt["sessionId"], json!(checkout_id));
    assert_eq!(prompt["order"], order);
    // Re-opening by the same account is idempotent; another account gets 410.
    let (status, again) = env
        .call(&w, "POST", &format!("/app/checkout/{checkout_id}"), None)
        .await;
    assert_eq!((status, &again), (200, &prompt));
    let (status, body) = env
        .call(
            &other,
            "POST",
            &format!("/app/checkout/{checkout_id}"),
            None,
        )
        .await;
    assert_eq!((status, err_code(&body)), (410, "SESSION_USED"), "{body}");
    let (status, body) = env
        .call(
            &w,
            "POST",
            "/app/checkout/cs_00000000000000000000000000000000",
            None,
        )
        .await;
    assert_eq!(
        (status, err_code(&body)),
        (404, "SESSION_NOT_FOUND"),
        "{body}"
    );

    // Confirm: the redirect is urls.success; the MG's receiver gets the proof.
    let (status, paid) = env.confirm(&w, &checkout_id, &order, "co-1").await;
    assert_eq!(status, 200, "{paid}");
    assert_eq!(paid["redirectUrl"], "https://shop.example/ok");
    assert!(eventually(|| !env.mg_rx.received().is_empty()).await);
    let hook = &env.mg_rx.received()[0];
    assert_eq!(
        hook["proof"]["to"],
        json!({"ocid": MERCHANT, "reference": "ord_co1"})
    );
    assert_eq!(hook["proof"]["txid"], paid["txid"]);
    assert_eq!(hook["proof"]["amount"], "42.00");
    assert!(env.merchant_rx.received().is_empty());
    assert_eq!(env.usd(&w).await, "58.00");

    // A second checkout opened by scanning its link, then declined: the cancel redirect.
    let (_, created) = create_checkout(&env, "ord_co2").await;
    let (status, scanned) = env
        .call(
            &other,
            "POST",
            "/app/scan",
            Some(json!({"text": created["checkout_url"]})),
        )
        .await;
    assert_eq!(status, 200, "{scanned}");
    assert_eq!(scanned["kind"], "prompt");
    assert_eq!(scanned["prompt"]["flow"], "checkout");
    let id2 = scanned["prompt"]["sessionId"].as_str().unwrap().to_string();
    let (status, declined) = env
        .call(
            &other,
            "POST",
            &format!("/app/sessions/{id2}/decline"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{declined}");
    assert_eq!(declined["redirectUrl"], "https://shop.example/cancel");
}

// ---------------------------------------------------------------------------------------------
// Flow 2: the wallet scans a merchant QR

/// A tiny merchant: `GET /orders/{id}`, `GET /inventory`, `POST /orders/create`, and a webhook.
struct TinyMerchant {
    key: PrivateKey,
    endpoint: String,
    hooks: Arc<Mutex<Vec<Value>>>,
}

#[derive(Clone)]
struct TinyState {
    key: Arc<PrivateKey>,
    prices: Arc<HashMap<&'static str, (&'static str, &'static str)>>,
    hooks: Arc<Mutex<Vec<Value>>>,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn tiny_signed(state: &TinyState, id: &str, lines: &[(&str, u64)]) -> Value {
    let mut items = Vec::new();
    let mut total_cents = 0u64;
    for (item, qty) in lines {
        let (name, price) = state.prices[item];
        let cents: u64 = price.replace('.', "").parse().unwrap();
        total_cents += cents * qty;
        items.push(json!({"id": item, "name": name, "quantity": qty, "price": price}));
    }
    let now = unix_now();
    let order = json!({
        "id": id, "ocid": SCAN_MERCHANT,
        "amount": format!("{}.{:02}", total_cents / 100, total_cents % 100),
        "currency": "USD", "items": items, "createdAt": now, "expiresAt": now + 300,
        "accepts": [200],
    });
    let signature = sign_object(&state.key, &order).unwrap();
    json!({"order": order, "signature": signature, "urls": {"order": []}})
}

impl TinyMerchant {
    async fn start() -> TinyMerchant {
        let key = PrivateKey::generate();
        let hooks = Arc::new(Mutex::new(Vec::new()));
        let state = TinyState {
            key: Arc::new(key.clone()),
            prices: Arc::new(HashMap::from([
                ("tea", ("Tea", "4.50")),
                ("cake", ("Cake", "3.25")),
            ])),
            hooks: hooks.clone(),
        };
        let app = Router::new()
            .route(
                "/orders/{id}",
                get(|State(s): State<TinyState>, Path(id): Path<String>| async move {
                    if id == "ord_gone" {
                        return (
                            axum::http::StatusCode::NOT_FOUND,
                            Json(json!({"error": {"code": "ORDER_NOT_FOUND", "message": "no such order"}})),
                        );
                    }
                    let lines: &[(&str, u64)] = if id == "ord_tampered" { &[("tea", 1)] } else { &[("tea", 2)] };
                    let mut signed = tiny_signed(&s, &id, lines);
                    if id == "ord_tampered" {
                        signed["order"]["amount"] = json!("0.01");
                        signed["order"]["items"][0]["price"] = json!("0.01");
                    }
                    (axum::http::StatusCode::OK, Json(signed))
                }),
            )
            .route(
                "/inventory",
                get(|| async move {
                    Json(json!({"ocid": SCAN_MERCHANT, "currency": "USD", "items": [
                        {"id": "tea", "name": "Tea", "price": "4.50"},
                        {"id": "cake", "name": "Cake", "price": "3.25"},
                    ]}))
                }),
            )
            .route(
                "/orders/create",
                post(|State(s): State<TinyState>, Json(body): Json<Value>| async move {
                    let lines: Vec<(String, u64)> = body["items"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|l| (l["id"].as_str().unwrap().to_string(), l["quantity"].as_u64().unwrap()))
                        .collect();
                    let lines: Vec<(&str, u64)> = lines.iter().map(|(i, q)| (i.as_str(), *q)).collect();
                    Json(tiny_signed(&s, "ord_inv_1", &lines))
                }),
            )
            .route(
                "/transfer/webhook",
                post(|State(s): State<TinyState>, Json(body): Json<Value>| async move {
                    let txid = body["proof"]["txid"].clone();
                    s.hooks.lock().unwrap().push(body);
                    Json(json!({"status": "accepted", "txid": txid}))
                }),
            )
            .with_state(state);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TinyMerchant {
            key,
            endpoint,
            hooks,
        }
    }

    fn entry(&self) -> DirectoryEntry {
        DirectoryEntry {
            ocid: SCAN_MERCHANT,
            metadata_url: None,
            metadata: Some(merchant_metadata(
                SCAN_MERCHANT,
                "Tiny Tea",
                &self.key,
                &self.endpoint,
                &[200],
            )),
        }
    }
}

#[tokio::test]
async fn scan_merchant_order_inventory_and_unsupported_codes() {
    let tiny = TinyMerchant::start().await;
    let env = Env::start_with(Extras {
        directory: vec![tiny.entry()],
        ..Extras::default()
    })
    .await;
    let w = env.wallet("Max", Some("20.00")).await;
    let mut sse = env.events(&w, None, "").await;

    // Merchant order QR → prompt → confirm.
    let qr = MerchantOrderQr::new(
        SCAN_MERCHANT,
        &tiny.endpoint,
        "ord_scan1",
        Some(env.now() + 300),
    )
    .unwrap()
    .to_json_string();
    let (status, scanned) = env
        .call(&w, "POST", "/app/scan", Some(json!({"text": qr})))
        .await;
    assert_eq!(status, 200, "{scanned}");
    assert_eq!(scanned["kind"], "prompt");
    let prompt = &scanned["prompt"];
    assert_eq!(prompt["flow"], "merchant_qr");
    assert_eq!(prompt["merchantName"], "Tiny Tea");
    assert_eq!(prompt["order"]["amount"], "9.00");
    let session_id = prompt["sessionId"].as_str().unwrap().to_string();
    assert!(session_id.starts_with("sc_") && session_id.len() == 35);
    let event = sse.expect(Duration::from_secs(10)).await;
    assert_eq!(event.kind, "payment_request");
    assert_eq!(&event.data, prompt);
    let order = prompt["order"].clone();
    let (status, paid) = env.confirm(&w, &session_id, &order, "scan-1").await;
    assert_eq!(status, 200, "{paid}");
    assert_eq!(env.usd(&w).await, "11.00");
    assert_eq!(env.ledger_usd(&format!("ocid:{SCAN_MERCHANT}")).await, 900);
    let hooks = tiny.hooks.clone();
    assert!(eventually(|| !hooks.lock().unwrap().is_empty()).await);

    // A tampered order (signature no longer covers it) → 400 INVALID_SIGNATURE.
    let qr = MerchantOrderQr::new(
        SCAN_MERCHANT,
        &tiny.endpoint,
        "ord_tampered",
        Some(env.now() + 300),
    )
    .unwrap()
    .to_json_string();
    let (status, body) = env
        .call(&w, "POST", "/app/scan", Some(json!({"text": qr})))
        .await;
    assert_eq!(
        (status, err_code(&body)),
        (400, "INVALID_SIGNATURE"),
        "{body}"
    );

    // The merchant's own error passes through.
    let qr = MerchantOrderQr::new(
        SCAN_MERCHANT,
        &tiny.endpoint,
        "ord_gone",
        Some(env.now() + 300),
    )
    .unwrap()
    .to_json_string();
    let (status, body) = env
        .call(&w, "POST", "/app/scan", Some(json!({"text": qr})))
        .await;
    assert_eq!(
        (status, err_code(&body)),
        (404, "ORDER_NOT_FOUND"),
        "{body}"
    );

    // An order URL outside the merchant's published endpoint → 400.
    let qr = MerchantOrderQr::new(
        SCAN_MERCHANT,
        &env.merchant_rx.endpoint(),
        "ord_x",
        Some(env.now() + 300),
    )
    .unwrap()
    .to_json_string();
    let (status, body) = env
        .call(&w, "POST", "/app/scan", Some(json!({"text": qr})))
        .await;
    assert_eq!(
        (status, err_code(&body)),
        (400, "INVALID_REQUEST"),
        "{body}"
    );

    // An expired QR.
    let qr = MerchantOrderQr::new(
        SCAN_MERCHANT,
        &tiny.endpoint,
        "ord_old",
        Some(env.now() - 10),
    )
    .unwrap()
    .to_json_string();
    let (status, body) = env
        .call(&w, "POST", "/app/scan", Some(json!({"text": qr})))
        .await;
    assert_eq!((status, err_code(&body)), (400, "ORDER_EXPIRED"), "{body}");

    // Inventory QR → items → order → prompt.
    let qr = InventoryQr::new(SCAN_MERCHANT, &tiny.endpoint)
        .unwrap()
        .to_json_string();
    let (status, inventory) = env
        .call(&w, "POST", "/app/scan", Some(json!({"text": qr})))
        .await;
    assert_eq!(status, 200, "{inventory}");
    assert_eq!(inventory["kind"], "inventory");
    assert_eq!(inventory["merchantOcid"], json!(SCAN_MERCHANT));
    assert_eq!(inventory["merchantName"], "Tiny Tea");
    assert_eq!(inventory["currency"], "USD");
    assert_eq!(inventory["items"].as_array().unwrap().len(), 2);
    let (status, prompt) = env
        .call(
            &w,
            "POST",
            "/app/inventory/order",
            Some(json!({
                "merchantOcid": SCAN_MERCHANT,
                "inventoryUrl": inventory["inventoryUrl"],
                "items": [{"id": "cake", "quantity": 2}],
            })),
        )
        .await;
    assert_eq!(status, 200, "{prompt}");
    assert_eq!(prompt["order"]["amount"], "6.50");
    assert_eq!(prompt["flow"], "merchant_qr");

    // Codes the wallet cannot pay.
    let (session_qr, _) = {
        let (_, body) = env.call(&w, "POST", "/app/sessions", None).await;
        (body["qrText"].as_str().unwrap().to_string(), ())
    };
    for (text, kind) in [
        (session_qr.as_str(), "wallet_session"),
        ("opencharge:500?amount=5.00&currency=USD", "ocid_uri"),
    ] {
        let (status, body) = env
            .call(&w, "POST", "/app/scan", Some(json!({"text": text})))
            .await;
        assert_eq!(
            (status, err_code(&body)),
            (422, "CAPABILITY_NOT_SUPPORTED"),
            "{body}"
        );
        assert_eq!(body["error"]["details"]["kind"], kind);
    }
    // An end-user OCID code is a person to pay (tests/p2p.rs); one of ours nobody holds is 404.
    let (status, body) = env
        .call(
            &w,
            "POST",
            "/app/scan",
            Some(json!({"text": r#"{"type":"ocid_transfer","ocid":12345,"gateway":200}"#})),
        )
        .await;
    assert_eq!(
        (status, err_code(&body)),
        (404, "ACCOUNT_NOT_FOUND"),
        "{body}"
    );
    let (status, body) = env
        .call(&w, "POST", "/app/scan", Some(json!({"text": "hello"})))
        .await;
    assert_eq!(
        (status, err_code(&body)),
        (400, "INVALID_REQUEST"),
        "{body}"
    );
}

// ---------------------------------------------------------------------------------------------
// Dev endpoints, balance and history paging

#[tokio::test]
async fn dev_endpoints_validate_and_fund() {
    let env = Env::start().await;
    let (status, body) = env
        .plain("POST", "/dev/accounts", json!({"name": ""}))
        .await;
    assert_eq!((status, err_code(&body)), (400, "INVALID_REQUEST"));
    let (_, acct) = env
        .plain("POST", "/dev/accounts", json!({"name": "Ned"}))
        .await;
    let id = acct["accountId"].as_str().unwrap();
    for bad in [
        json!({"currency": "USD", "amount": "1.001"}),
        json!({"currency": "USD", "amount": "-1"}),
        json!({"currency": "USD", "amount": 5}),
        json!({"currency": "XXX", "amount": "1"}),
        json!({"currency": "JPY", "amount": "1"}),
    ] {
        let (status, body) = env
            .plain("POST", &format!("/dev/accounts/{id}/fund"), bad.clone())
            .await;
        assert_eq!(
            (status, err_code(&body)),
            (400, "INVALID_REQUEST"),
            "{bad}: {body}"
        );
    }
    let (status, body) = env
        .plain(
            "POST",
            "/dev/accounts/acct_nope/fund",
            json!({"currency": "USD", "amount": "1"}),
        )
        .await;
    assert_eq!(
        (status, err_code(&body)),
        (404, "ACCOUNT_NOT_FOUND"),
        "{body}"
    );
    let (status, body) = env
        .plain(
            "POST",
            &format!("/dev/accounts/{id}/fund"),
            json!({"currency": "UGX", "amount": "15000"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["balances"]
        .as_array()
        .unwrap()
        .contains(&json!({"currency": "UGX", "amount": "15000"})));
    let (status, body) = env
        .plain(
            "POST",
            "/dev/reserves/300/fund",
            json!({"currency": "USD", "amount": "1000.00"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accountId"], "reserve:300");
    assert_eq!(env.ledger_usd("reserve:300").await, 100_000);
}

#[tokio::test]
async fn balance_and_history_paging() {
    let env = Env::start().await;
    let w = env.wallet("Olga", Some("12.34")).await;
    let (status, body) = env.call(&w, "GET", "/app/balance", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["accountId"], json!(w.account_id));
    assert_eq!(
        body["balances"],
        json!([
            {"currency": "EUR", "amount": "0.00"},
            {"currency": "UGX", "amount": "0"},
            {"currency": "USD", "amount": "12.34"},
        ])
    );
    // Five receipts, most of them created within the same second: paging must not lose any.
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(env.prompt(&w, &format!("ord_h{i}"), "1.00").await.0);
    }
    let mut seen = Vec::new();
    let mut query = "/app/history?limit=2".to_string();
    loop {
        let (status, page) = env.call(&w, "GET", &query, None).await;
        assert_eq!(status, 200, "{page}");
        let receipts = page["receipts"].as_array().unwrap();
        assert!(receipts.len() <= 2);
        for r in receipts {
            assert_eq!(r["status"], "order_received");
            seen.push(r["sessionId"].as_str().unwrap().to_string());
        }
        match page["nextCursor"].as_str() {
            Some(cursor) => query = format!("/app/history?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    created.reverse();
    let mut sorted_seen = seen.clone();
    sorted_seen.sort();
    sorted_seen.dedup();
    assert_eq!(
        sorted_seen.len(),
        5,
        "no receipt lost or repeated: {seen:?}"
    );
    let mut sorted_created = created.clone();
    sorted_created.sort();
    assert_eq!(sorted_seen, sorted_created);

    for bad in [
        "/app/history?limit=0",
        "/app/history?before=soon",
        "/app/history?cursor=12",
        "/app/history?cursor=1.2&before=3",
        "/app/history?limit=1&limit=2",
        "/app/history?page=2",
    ] {
        let (status, body) = env.call(&w, "GET", bad, None).await;
        assert_eq!((status, err_code(&body)), (400, "INVALID_REQUEST"), "{bad}");
    }
    let (status, all) = env.call(&w, "GET", "/app/history", None).await;
    assert_eq!(status, 200);
    assert_eq!(all["receipts"].as_array().unwrap().len(), 5);
    assert_eq!(all["nextCursor"], Value::Null);
    let far_future = env.now() + 1000;
    let (_, before) = env
        .call(
            &w,
            "GET",
            &format!("/app/history?before={far_future}"),
            None,
        )
        .await;
    assert_eq!(before["receipts"], all["receipts"]);
}

#[tokio::test]
async fn expired_sessions_cannot_be_confirmed_or_opened() {
    let env = Env::start().await;
    let w = env.wallet("Pia", Some("50.00")).await;
    let (session_id, order, status_url) = env.prompt(&w, "ord_late", "5.00").await;
    let (_, created) = create_checkout(&env, "ord_co_late").await;
    let checkout_id = created["session_id"].as_str().unwrap().to_string();

    // Past the 5-minute wallet session and the 10-minute order.
    env.clock.advance(601);
    let (status, body) = env.confirm(&w, &session_id, &order, "late-1").await;
    assert_eq!((status, err_code(&body)), (409, "INVALID_STATE"), "{body}");
    assert_eq!(body["error"]["details"]["status"], "expired");
    assert_eq!(env.usd(&w).await, "50.00");
    assert_eq!(env.merchant_status(&status_url).await["status"], "expired");
    let (_, prompts) = env.call(&w, "GET", "/app/prompts", None).await;
    assert_eq!(prompts["prompts"], json!([]));
    let (_, receipt) = env
        .call(&w, "GET", &format!("/app/payments/{session_id}"), None)
        .await;
    assert_eq!(receipt["status"], "expired");

    let (status, body) = env
        .call(&w, "POST", &format!("/app/checkout/{checkout_id}"), None)
        .await;
    assert_eq!(
        (status, err_code(&body)),
        (404, "SESSION_EXPIRED"),
        "{body}"
    );
    assert_eq!(
        body["error"]["details"]["redirectUrl"],
        "https://shop.example/cancel"
    );
}

// ---------------------------------------------------------------------------------------------
// The worked examples of docs/app-api.md ("Test vectors"): keep both in step.

#[test]
fn app_api_md_test_vectors() {
    let key = PrivateKey::from_hex(&"11".repeat(32)).unwrap();
    let public_key = key.public_key().to_hex();
    assert_eq!(public_key, "4f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aa385b6b1b8ead809ca67454d9683fcf2ba03456d6fe2c4abe2b07f0fbdbb2f1c1");
    let device_id = format!(
        "dev_{}",
        &opencharge_protocol::keys::sha256_hex(public_key.as_bytes())[..32]
    );
    assert_eq!(device_id, "dev_762b3e7f5a4fb0169de41c7c9fddc314");

    let registration = format!(
        "opencharge-device-registration\n{public_key}\nb9da7236551b2cd6391f2961d1017374\n1706500000"
    );
    assert_eq!(
        key.sign_message(registration.as_bytes()).unwrap().to_hex(),
        "b666896be2e6873390aa0ec0b752cfb7c0b398eb13192ac5f265ac434e65269975ca888cb44e2d26ccabaa0b07d4d53a41b13e0f739dd34317a0387f1e17dd6e1b"
    );

    let canonical = opencharge_gateway::auth::device_canonical(
        &device_id,
        1706500000,
        "req_00000000000000000000000000000001",
        "POST",
        "/opencharge/app/scan",
        br#"{"text":"opencharge:500"}"#,
    );
    assert_eq!(
        canonical,
        "dev_762b3e7f5a4fb0169de41c7c9fddc314\n1706500000\nreq_00000000000000000000000000000001\nPOST\n/opencharge/app/scan\n23d7f4ded9e7f2578e1a4652c686a3f8d1018e8947480d1468c25109ebe99af5"
    );
    assert_eq!(
        key.sign_message(canonical.as_bytes()).unwrap().to_hex(),
        "41f398452d33d6ef8686bee279bfaa32c3ff7d314973f2c261c5d527274e6aff477f53d4d47e9c075e2e8c20b73dd168ee29ec7d451d303fac2fa36048e8d12a1c"
    );

    let order = json!({"id":"ord_abc123","ocid":500,"reference":"POS-001","amount":"25.00","currency":"USD",
        "items":[{"id":"item_001","name":"Coffee","quantity":2,"price":"5.00"},{"id":"item_002","name":"Sandwich","quantity":1,"price":"15.00"}],
        "memo":"Order #42","createdAt":1706500000,"expiresAt":1706500600,"accepts":[200]});
    let order_hash = object_hash(&order).unwrap();
    assert_eq!(
        order_hash,
        "b0d9623ba8cb2ee5b1936791491c3ce11c858c7e4dd850c94b1117d6d750a495"
    );
    let consent = json!({"sessionId":"13c8f6878f55327769736d2129b2d9cb","orderHash":order_hash,"amount":"25.00",
        "currency":"USD","merchantOcid":500,"deviceId":device_id,"timestamp":1706500030});
    assert_eq!(
        opencharge_protocol::canonical::canonicalize(&consent).unwrap(),
        r#"{"amount":"25.00","currency":"USD","deviceId":"dev_762b3e7f5a4fb0169de41c7c9fddc314","merchantOcid":500,"orderHash":"b0d9623ba8cb2ee5b1936791491c3ce11c858c7e4dd850c94b1117d6d750a495","sessionId":"13c8f6878f55327769736d2129b2d9cb","timestamp":1706500030}"#
    );
    assert_eq!(
        sign_object(&key, &consent).unwrap(),
        "60b5b4f6179bf611875c72e5ce8a5fc81f0dec897bc218ab3eaa932e7d95e79b4e2a77756cf0758b1faeae926609f36560dfbfa956827848e6cd129f46103dae1b"
    );

    let new_key = PrivateKey::from_hex(&"22".repeat(32)).unwrap();
    let new_public = new_key.public_key().to_hex();
    assert_eq!(new_public, "466d7fcae563e5cb09a0d1870bb580344804617879a14949cf22285f1bae3f276728176c3c6431f8eeda4538dc37c865e2784f3a9e77d044f33e407797e1278a");
    let rotation = format!("opencharge-device-rotation\n{device_id}\n{new_public}");
    assert_eq!(
        new_key.sign_message(rotation.as_bytes()).unwrap().to_hex(),
        "f42b5394908c86b431b2d0908055f37d0d9caf12ae1555b7285de3c80f33e88d319f7d18ed0feb94ea61b95aba9bb747221ae7bc71af6ceac48a28336ec53ac81c"
    );
    assert_eq!(
        format!(
            "dev_{}",
            &opencharge_protocol::keys::sha256_hex(new_public.as_bytes())[..32]
        ),
        "dev_cba45614c0d8dddda1994838b5319b98"
    );
}

#[tokio::test]
async fn stopping_the_gateway_ends_open_event_streams() {
    let env = Env::start().await;
    let w = env.wallet("Zed", None).await;
    let mut sse = env.events(&w, None, "").await;
    let Env { mut net, .. } = env;
    let stopped = tokio::time::timeout(Duration::from_secs(10), net.stop_gateway()).await;
    assert!(stopped.is_ok(), "stop must not wait for open SSE streams");
    assert!(sse.next(Duration::from_secs(5)).await.is_none());
    assert!(
        sse.ends_within(Duration::from_secs(5)).await,
        "the stream ended"
    );
}

#[tokio::test]
async fn one_prompt_is_served_only_to_its_account_while_pending() {
    let env = Env::start().await;
    let owner = env.wallet("Hal", Some("50.00")).await;
    let other = env.wallet("Ivy", Some("50.00")).await;
    let (session_id, order, _) = env.prompt(&owner, "ord_one", "8.75").await;
    let path = format!("/app/prompts/{session_id}");

    // Own pending prompt: the very object the list serves.
    let (status, prompt) = env.call(&owner, "GET", &path, None).await;
    assert_eq!(status, 200, "{prompt}");
    let (_, list) = env.call(&owner, "GET", "/app/prompts", None).await;
    assert_eq!(list["prompts"], json!([prompt.clone()]));
    assert_eq!(prompt["sessionId"], json!(session_id));
    assert_eq!(prompt["order"], order);

    // Another account's session, an unknown id and a malformed id: the same 404.
    let not_found = |(status, body): (u16, Value)| {
        assert_eq!(
            (status, err_code(&body)),
            (404, "SESSION_NOT_FOUND"),
            "{body}"
        );
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let theirs = not_found(env.call(&other, "GET", &path, None).await);
    assert!(!theirs.contains("another account"), "{theirs}");
    not_found(
        env.call(
            &owner,
            "GET",
            "/app/prompts/0123456789abcdef0123456789abcdef",
            None,
        )
        .await,
    );

    // Paid: no longer a prompt.
    let (status, paid) = env.confirm(&owner, &session_id, &order, "one-1").await;
    assert_eq!(status, 200, "{paid}");
    not_found(env.call(&owner, "GET", &path, None).await);
}

// ---------------------------------------------------------------------------------------------
// One strict JSON reader (decision 38): a repeated key is refused on every POST/PUT route.

/// The message of a 400 for a body with a repeated key must name the key.
fn names_duplicate(body: &Value, key: &str) -> bool {
    body["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains(&format!("duplicate key \"{key}\""))
}

#[tokio::test]
async fn consent_with_a_repeated_key_is_refused_and_changes_nothing() {
    let env = Env::start().await;
    let w = env.wallet("Dup", Some("50.00")).await;
    let (session_id, order, _) = env.prompt(&w, "ord_dup", "25.00").await;
    // The device signs the real consent; the body repeats `amount` (first 0.01, then the signed
    // value), which a last-value-wins reader would accept.
    let consent = consent_for(&w, &session_id, &order, env.now());
    let signature = sign_object(&w.key, &consent).unwrap();
    let consent_text = serde_json::to_string(&consent).unwrap();
    let repeated = format!("{{\"amount\":\"0.01\",{}", &consent_text[1..]);
    let body = format!(
        "{{\"idempotencyKey\":\"dup1\",\"consent\":{repeated},\"signature\":{}}}",
        json!(signature)
    );
    let rel = format!("/app/sessions/{session_id}/confirm");
    let (status, answer) = read(
        env.signed(&w, "POST", &rel, body.into_bytes(), &[])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err_code(&answer)),
        (400, "INVALID_REQUEST"),
        "{answer}"
    );
    assert!(names_duplicate(&answer, "amount"), "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("consent"),
        "{answer}"
    );
    // Nothing changed: the balance is whole and the session is still payable.
    assert_eq!(env.usd(&w).await, "50.00");
    let (status, answer) = env.confirm(&w, &session_id, &order, "dup2").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(env.usd(&w).await, "25.00");
}

#[tokio::test]
async fn every_post_route_refuses_a_repeated_key() {
    let env = Env::start().await;
    let w = env.wallet("Table", Some("50.00")).await;
    let (session_id, order_url) = env.session(&w).await;
    let account = env.net.new_account("Other").await.unwrap();
    let body = br#"{"amount":"1.00","currency":"USD","amount":"2.00"}"#.to_vec();
    let endpoint = env.url("");

    // Device-signed app routes (`POST /app/checkout/{id}` takes no body and reads none).
    for (method, rel) in [
        ("POST", "/app/devices/rotate".to_string()),
        ("POST", "/app/sessions".to_string()),
        ("POST", format!("/app/sessions/{session_id}/confirm")),
        ("POST", format!("/app/sessions/{session_id}/decline")),
        ("POST", "/app/scan".to_string()),
        ("POST", "/app/inventory/order".to_string()),
        ("PUT", "/app/devices/push-token".to_string()),
    ] {
        let (status, answer) = read(
            env.signed(&w, method, &rel, body.clone(), &[])
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, err_code(&answer)),
            (400, "INVALID_REQUEST"),
            "{method} {rel}: {answer}"
        );
        assert!(
            names_duplicate(&answer, "amount"),
            "{method} {rel}: {answer}"
        );
    }

    // Unauthenticated routes: device registration and the dev API (its `enrollments` route
    // takes no body and reads none).
    for rel in [
        "/app/devices".to_string(),
        "/dev/accounts".to_string(),
        format!("/dev/accounts/{}/fund", account.account_id),
        format!("/dev/reserves/{MERCHANT_GATEWAY}/fund"),
    ] {
        let resp = env
            .http
            .post(env.url(&rel))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let (status, answer) = read(resp).await;
        assert_eq!(
            (status, err_code(&answer)),
            (400, "INVALID_REQUEST"),
            "POST {rel}: {answer}"
        );
        assert!(names_duplicate(&answer, "amount"), "POST {rel}: {answer}");
    }

    // `X-OC-*` signed Opencharge routes (the proof webhook answers its own code for a
    // malformed body, `INVALID_PROOF`).
    for (url, key, ocid, code) in [
        (
            order_url.clone(),
            &env.merchant_key,
            MERCHANT,
            "INVALID_REQUEST",
        ),
        (
            format!("{endpoint}/checkout/create"),
            &env.mg_key,
            MERCHANT_GATEWAY,
            "INVALID_REQUEST",
        ),
        (
            format!("{endpoint}/transfer/create"),
            &env.mg_key,
            MERCHANT_GATEWAY,
            "INVALID_REQUEST",
        ),
        (
            format!("{endpoint}/transfer/webhook"),
            &env.mg_key,
            MERCHANT_GATEWAY,
            "INVALID_PROOF",
        ),
    ] {
        let resp = signed_request(
            &env.http,
            key,
            ocid,
            "POST",
            &url,
            Some(body.clone()),
            env.now(),
        )
        .await
        .unwrap();
        let (status, answer) = read(resp).await;
        assert_eq!(
            (status, err_code(&answer)),
            (400, code),
            "POST {url}: {answer}"
        );
        assert!(names_duplicate(&answer, "amount"), "POST {url}: {answer}");
    }
    // Nothing was paid or credited.
    assert_eq!(env.usd(&w).await, "50.00");
}

// ---------------------------------------------------------------------------------------------
// The ledger's range (decision 40): never a 500, never blocking other payments.

/// The largest USD amount the ledger holds: `i64::MAX` cents.
const LEDGER_MAX_USD: &str = "92233720368547758.07";

/// Posts a signed order of `amount` USD by merchant `ocid` (key `key`) to a wallet session
/// of `w`: the session id, the raw order and the status.
async fn order_for(
    env: &Env,
    w: &Wallet,
    ocid: u64,
    key: &PrivateKey,
    id: &str,
    amount: &str,
) -> (String, Value, u16, Value) {
    let (session_id, order_url) = env.session(w).await;
    let order = order_json(ocid, id, amount, env.now());
    let body = json!({"order": order, "signature": sign_object(key, &order).unwrap(), "urls": {"order": []}});
    let resp = signed_request(
        &env.http,
        key,
        ocid,
        "POST",
        &order_url,
        Some(serde_json::to_vec(&body).unwrap()),
        env.now(),
    )
    .await
    .unwrap();
    let (status, answer) = read(resp).await;
    (session_id, order, status, answer)
}

#[tokio::test]
async fn amounts_past_the_ledger_range_are_4xx_and_block_nothing_else() {
    let other_key = PrivateKey::generate();
    let other_rx = WebhookReceiver::start().await.unwrap();
    let env = Env::start_with(Extras {
        directory: vec![DirectoryEntry {
            ocid: 501,
            metadata_url: None,
            metadata: Some(merchant_metadata(
                501,
                "Other Shop",
                &other_key,
                &other_rx.endpoint(),
                &[200],
            )),
        }],
        ..Extras::default()
    })
    .await;
    let rich = env.wallet("Rich", Some("50.00")).await;
    let poor = env.wallet("Poor", Some("0.01")).await;

    // At the door: an order amount past the ledger's range is 400, for orders and checkouts.
    let (_, _, status, answer) = order_for(
        &env,
        &rich,
        MERCHANT,
        &env.merchant_key,
        "ord_huge",
        "92233720368547758.08",
    )
    .await;
    assert_eq!(
        (status, err_code(&answer)),
        (400, "INVALID_REQUEST"),
        "{answer}"
    );
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ledger's range"),
        "{answer}"
    );
    let huge = order_json(MERCHANT, "ord_huge_co", "92233720368547758.08", env.now());
    let body = json!({
        "order": huge, "signature": sign_object(&env.merchant_key, &huge).unwrap(),
        "merchantOcid": MERCHANT,
        "urls": {"success": "https://shop.example/ok", "cancel": "https://shop.example/cancel"},
    });
    let resp = signed_request(
        &env.http,
        &env.mg_key,
        MERCHANT_GATEWAY,
        "POST",
        &env.url("/checkout/create"),
        Some(serde_json::to_vec(&body).unwrap()),
        env.now(),
    )
    .await
    .unwrap();
    let (status, answer) = read(resp).await;
    assert_eq!(
        (status, err_code(&answer)),
        (400, "INVALID_REQUEST"),
        "{answer}"
    );

    // A credit that would pass the maximum: 422, nothing changes.
    let (status, answer) = env
        .plain(
            "POST",
            &format!("/dev/accounts/{}/fund", rich.account_id),
            json!({"currency": "USD", "amount": LEDGER_MAX_USD}),
        )
        .await;
    assert_eq!(
        (status, err_code(&answer)),
        (422, "INVALID_STATE"),
        "{answer}"
    );
    assert_eq!(answer["error"]["details"]["reason"], "balance_out_of_range");
    assert_eq!(env.usd(&rich).await, "50.00");

    // The merchant's account holds the maximum.
    let store = &env.gw().state.store;
    let merchant_account = format!("ocid:{MERCHANT}");
    store
        .ensure_account(&merchant_account, "merchant", "Test Coffee", env.now())
        .await
        .unwrap();
    store
        .ensure_account("funding:range", "funding", "Range test", env.now())
        .await
        .unwrap();
    let filled = store
        .apply_transfers(
            "fill",
            &[opencharge_gateway::store::Transfer {
                from_account: "funding:range".into(),
                to_account: merchant_account.clone(),
                currency: "USD".into(),
                minor: i64::MAX,
            }],
            env.now(),
        )
        .await
        .unwrap();
    assert_eq!(
        filled,
        opencharge_gateway::domain::ledger::LedgerOutcome::Applied
    );

    // A payer who can pay: 422 INVALID_STATE, nothing changes, the session stays payable.
    let (session_id, order, status, answer) = order_for(
        &env,
        &rich,
        MERCHANT,
        &env.merchant_key,
        "ord_full",
        "25.00",
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = env.confirm(&rich, &session_id, &order, "full1").await;
    assert_eq!(
        (status, err_code(&answer)),
        (422, "INVALID_STATE"),
        "{answer}"
    );
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ledger's maximum"),
        "{answer}"
    );
    assert_eq!(env.usd(&rich).await, "50.00");
    assert_eq!(env.ledger_usd(&merchant_account).await, i64::MAX);
    let (status, prompt) = env
        .call(&rich, "GET", &format!("/app/prompts/{session_id}"), None)
        .await;
    assert_eq!(status, 200, "the session is still pending: {prompt}");

    // A payer who cannot pay hears 402 first.
    let (session_id, order, status, answer) = order_for(
        &env,
        &poor,
        MERCHANT,
        &env.merchant_key,
        "ord_poor",
        "25.00",
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = env.confirm(&poor, &session_id, &order, "poor1").await;
    assert_eq!(
        (status, err_code(&answer)),
        (402, "INSUFFICIENT_FUNDS"),
        "{answer}"
    );

    // Payments to another merchant are not blocked.
    let (session_id, order, status, answer) =
        order_for(&env, &rich, 501, &other_key, "ord_other", "25.00").await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = env.confirm(&rich, &session_id, &order, "other1").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(env.usd(&rich).await, "25.00");
}
