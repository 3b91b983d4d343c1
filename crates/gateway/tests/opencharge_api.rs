//! The Opencharge endpoints over real HTTP on loopback with a real database (a SQLite file, or
//! a fresh PostgreSQL database with `OPENCHARGE_TEST_BACKEND=postgres`): every error
//! code of the two seed tables with its HTTP status, the atomic session claim under
//! concurrency, hosted checkout, the status endpoint's access rule, metadata and capabilities,
//! `/transfer/create` against a partner reserve, `/transfer/webhook`, and settlement (direct,
//! checkout, and partner reserve between two gateways).

use std::sync::Arc;
use std::time::Duration;

use opencharge_gateway::clock::{Clock, OffsetClock};
use opencharge_gateway::config::{DirectoryEntry, GatewayConfig, PartnerConfig};
use opencharge_gateway::settlement::confirm_payment;
use opencharge_gateway::store::{
    ClaimOutcome, Flow, Session, SessionStatus, SettleOutcome, Transfer,
};
use opencharge_gateway::{Gateway, RunningGateway};
use opencharge_protocol::keys::{PrivateKey, PublicKey, VerifyOptions};
use opencharge_protocol::signing::{sign_object, verify_config, verify_proof};
use opencharge_testkit::{merchant_metadata, signed_request, GatewayHome, WebhookReceiver};
use serde_json::{json, Value};

const GATEWAY: u64 = 200;
const MERCHANT: u64 = 500;
const OTHER_MERCHANT: u64 = 501;
const MERCHANT_GATEWAY: u64 = 300;
const PARTNER: u64 = 600;
const ISSUER: u64 = 100;
const STRANGER_ISSUER: u64 = 101;

/// A running gateway with a directory of test parties and their keys.
struct Env {
    _home: GatewayHome,
    gw: RunningGateway,
    clock: Arc<OffsetClock>,
    http: reqwest::Client,
    merchant: PrivateKey,
    other: PrivateKey,
    mg: PrivateKey,
    partner: PrivateKey,
    issuer: PrivateKey,
    stranger: PrivateKey,
    merchant_hook: WebhookReceiver,
    mg_hook: WebhookReceiver,
}

fn entry(ocid: u64, key: &PrivateKey, endpoint: &str) -> DirectoryEntry {
    DirectoryEntry {
        ocid,
        metadata_url: None,
        metadata: Some(merchant_metadata(
            ocid,
            &format!("Party {ocid}"),
            key,
            endpoint,
            &[GATEWAY],
        )),
    }
}

impl Env {
    async fn start() -> Env {
        Self::start_with(|_| {}).await
    }

    async fn start_with(adjust: impl FnOnce(&mut GatewayConfig)) -> Env {
        let home = GatewayHome::create().await.unwrap();
        let merchant_hook = WebhookReceiver::start().await.unwrap();
        let mg_hook = WebhookReceiver::start().await.unwrap();
        let (merchant, other, mg, partner, issuer, stranger) = (
            PrivateKey::generate(),
            PrivateKey::generate(),
            PrivateKey::generate(),
            PrivateKey::generate(),
            PrivateKey::generate(),
            PrivateKey::generate(),
        );
        let mut config = home.config();
        config.accepts = vec![ISSUER];
        config.directory = vec![
            entry(MERCHANT, &merchant, &merchant_hook.endpoint()),
            entry(OTHER_MERCHANT, &other, &merchant_hook.endpoint()),
            entry(MERCHANT_GATEWAY, &mg, &mg_hook.endpoint()),
            entry(PARTNER, &partner, &mg_hook.endpoint()),
            entry(ISSUER, &issuer, &mg_hook.endpoint()),
            entry(STRANGER_ISSUER, &stranger, &mg_hook.endpoint()),
        ];
        adjust(&mut config);
        let clock = Arc::new(OffsetClock::default());
        let gw = Gateway::start_with_clock(config, clock.clone())
            .await
            .unwrap();
        Env {
            _home: home,
            gw,
            clock,
            http: reqwest::Client::new(),
            merchant,
            other,
            mg,
            partner,
            issuer,
            stranger,
            merchant_hook,
            mg_hook,
        }
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gw.endpoint())
    }

    async fn post(&self, key: &PrivateKey, ocid: u64, path: &str, body: &Value) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).unwrap();
        self.post_bytes(key, ocid, path, bytes).await
    }

    async fn post_bytes(
        &self,
        key: &PrivateKey,
        ocid: u64,
        path: &str,
        bytes: Vec<u8>,
    ) -> (u16, Value) {
        let response = signed_request(
            &self.http,
            key,
            ocid,
            "POST",
            &self.url(path),
            Some(bytes),
            self.now(),
        )
        .await
        .unwrap();
        read(response).await
    }

    async fn get(&self, key: &PrivateKey, ocid: u64, path: &str) -> (u16, Value) {
        let response = signed_request(
            &self.http,
            key,
            ocid,
            "GET",
            &self.url(path),
            None,
            self.now(),
        )
        .await
        .unwrap();
        read(response).await
    }

    /// A user account funded with `minor` USD cents.
    async fn user(&self, minor: i64) -> String {
        let store = &self.gw.state.store;
        let now = self.now();
        let account = store.create_account("user", "Alice", now).await.unwrap();
        if minor > 0 {
            fund(&self.gw, &account.id, "USD", minor).await;
        }
        account.id
    }

    /// A pending wallet QR session of a new account (funded with `minor` USD cents).
    async fn wallet_session(&self, minor: i64) -> (String, String) {
        let account = self.user(minor).await;
        let now = self.now();
        let id = hex32();
        let session = Session::pending(
            id.clone(),
            Flow::WalletQr,
            Some(account.clone()),
            now,
            now + 300,
            hex32(),
        );
        self.gw.state.store.create_session(&session).await.unwrap();
        (id, account)
    }

    /// The seed's example order (two items, 25.00 USD), fresh times, accepting `accepts`.
    fn order(&self, ocid: u64, accepts: &[u64]) -> Value {
        let now = self.now();
        json!({
            "id": format!("ord_{}", &hex32()[..12]),
            "ocid": ocid,
            "reference": "POS-001",
            "amount": "25.00",
            "currency": "USD",
            "items": [
                {"id": "item_001", "name": "Coffee", "quantity": 2, "price": "5.00"},
                {"id": "item_002", "name": "Sandwich", "quantity": 1, "price": "15.00"}
            ],
            "memo": "Order #42",
            "createdAt": now,
            "expiresAt": now + 600,
            "accepts": accepts,
        })
    }

    fn session_body(order: &Value, key: &PrivateKey) -> Value {
        json!({
            "order": order,
            "signature": sign_object(key, order).unwrap(),
            "urls": {"order": ["https://merchant.example/orders/1"]},
        })
    }

    async fn submit(&self, session_id: &str, order: &Value) -> (u16, Value) {
        let body = Self::session_body(order, &self.merchant);
        self.post(
            &self.merchant,
            MERCHANT,
            &format!("/orders/create/{session_id}"),
            &body,
        )
        .await
    }

    fn checkout_body(order: &Value, key: &PrivateKey, merchant_ocid: u64) -> Value {
        json!({
            "order": order,
            "signature": sign_object(key, order).unwrap(),
            "merchantOcid": merchant_ocid,
            "urls": {"success": "https://merchant.example/ok", "cancel": "https://merchant.example/cancel"},
        })
    }

    async fn balance(&self, account: &str, currency: &str) -> i64 {
        balance_at(&self.gw, account, currency).await
    }

    async fn session(&self, id: &str) -> Session {
        self.gw.state.store.session(id).await.unwrap().unwrap()
    }
}

async fn fund(gw: &RunningGateway, account: &str, currency: &str, minor: i64) {
    let store = &gw.state.store;
    let now = gw.state.now();
    store
        .ensure_account("funding:test", "funding", "Test funding", now)
        .await
        .unwrap();
    let applied = store
        .apply_transfers(
            &format!("fund:{}", hex32()),
            &[Transfer {
                from_account: "funding:test".into(),
                to_account: account.into(),
                currency: currency.into(),
                minor,
            }],
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        applied,
        opencharge_gateway::domain::ledger::LedgerOutcome::Applied
    );
}

async fn balance_at(gw: &RunningGateway, account: &str, currency: &str) -> i64 {
    gw.state
        .store
        .balances(account)
        .await
        .unwrap()
        .into_iter()
        .find(|b| b.currency == currency)
        .map(|b| b.minor)
        .unwrap_or(0)
}

fn hex32() -> String {
    opencharge_protocol::auth::generate_nonce()
        .trim_start_matches("req_")
        .to_string()
}

async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body)
}

/// A change applied to an order before it is signed.
type Mutation = Box<dyn Fn(&mut Value)>;

#[track_caller]
fn assert_error(result: &(u16, Value), status: u16, code: &str) {
    assert_eq!(result.0, status, "status of {}", result.1);
    assert_eq!(result.1["error"]["code"], code, "body {}", result.1);
    assert!(result.1["error"]["message"].is_string());
}

/// Waits until `receiver` has at least `n` bodies (the webhook worker runs every 50 ms).
async fn wait_for_webhooks(receiver: &WebhookReceiver, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        let got = receiver.received();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("expected {n} webhooks, got {:?}", receiver.received());
}

fn gateway_key(gw: &RunningGateway) -> PublicKey {
    PublicKey::from_hex(gw.public_key_hex()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// metadata and capabilities
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn metadata_json_is_public_and_verifies_with_verify_config() {
    let env = Env::start().await;
    let response = env
        .http
        .get(env.url("/metadata.json"))
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, 200);
    assert_eq!(body["opencharge"], "0.1");
    let key = verify_config(
        &body["config"],
        body["signature"].as_str().unwrap(),
        VerifyOptions::STRICT,
    )
    .unwrap();
    assert_eq!(key.to_hex(), env.gw.public_key_hex());
    assert_eq!(body["config"]["endpoint"], env.gw.endpoint());
    let capabilities = body["config"]["capabilities"].as_array().unwrap();
    for c in [
        "checkout.create",
        "orders.create.session",
        "transfer.create",
        "transfer.webhook",
    ] {
        assert!(capabilities.contains(&json!(c)), "{c}");
    }
}

#[tokio::test]
async fn capabilities_requires_auth_and_lists_our_terms() {
    let env = Env::start().await;
    let unsigned = env.http.get(env.url("/capabilities")).send().await.unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);

    let (status, body) = env.get(&env.merchant, MERCHANT, "/capabilities").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ocid"], GATEWAY);
    assert!(body["name"].is_string());
    // The four Payment Gateway capabilities, plus GET /verify/{txid} for the proofs we issue.
    assert_eq!(
        body["capabilities"],
        json!([
            "checkout.create",
            "orders.create.session",
            "transfer.create",
            "transfer.webhook",
            "verify.txid"
        ])
    );
    assert_eq!(body["settlement"]["accepts"], json!([GATEWAY, ISSUER]));
    assert_eq!(
        body["settlement"]["currencies"],
        json!(["USD", "EUR", "UGX"])
    );
}

// ---------------------------------------------------------------------------------------------
// POST /orders/create/{sessionId} (seed 003)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn order_session_happy_path_claims_and_emits_payment_request() {
    let env = Env::start().await;
    let (id, account) = env.wallet_session(0).await;
    let order = env.order(MERCHANT, &[GATEWAY]);
    let (status, body) = env.submit(&id, &order).await;
    assert_eq!(status, 200, "{body}");

    let session = env.session(&id).await;
    assert_eq!(session.status, SessionStatus::OrderReceived);
    assert_eq!(session.submitted_by, Some(MERCHANT));
    let attached = session.order.clone().unwrap();
    assert_eq!(attached.amount, "25.00");
    assert_eq!(attached.amount_minor, 2500);
    assert_eq!(attached.merchant_name.as_deref(), Some("Party 500"));
    let status_url = format!(
        "{}/orders/{}/status",
        env.gw.endpoint(),
        session.status_token
    );
    assert_eq!(body, json!({"urls": {"status": status_url}}));
    assert_eq!(session.status_token.len(), 32);

    let events = env
        .gw
        .state
        .store
        .events_after(&account, 0, 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "payment_request");
    let event: Value = serde_json::from_str(&events[0].payload_json).unwrap();
    assert_eq!(event["type"], "payment_request");
    assert_eq!(event["sessionId"], id);
    assert_eq!(event["merchantOcid"], MERCHANT);
    assert_eq!(event["merchantName"], "Party 500");
    assert_eq!(event["flow"], "wallet_qr");
    assert_eq!(event["order"], order);
    assert_eq!(event["orderHash"], attached.order_hash);
    assert_eq!(event["expiresAt"], session.expires_at);
    // The wallet can re-verify the merchant's signature from the event alone.
    opencharge_protocol::signing::verify_order(
        &event["order"],
        event["signature"].as_str().unwrap(),
        MERCHANT,
        &env.merchant.public_key(),
        Default::default(),
        VerifyOptions::STRICT,
    )
    .unwrap();

    let path = format!("/orders/{}/status", session.status_token);
    let (status, body) = env.get(&env.merchant, MERCHANT, &path).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"orderId": order["id"], "status": "pending"}));
}

/// POSTs `body` to `path` as the merchant, signed with the given `nonce`.
async fn post_with_nonce(env: &Env, path: &str, body: &Value, nonce: &str) -> (u16, Value) {
    let url = env.url(path);
    let target = reqwest::Url::parse(&url)
        .map(|u| u[url::Position::BeforePath..].to_string())
        .unwrap();
    let bytes = serde_json::to_vec(body).unwrap();
    let auth = opencharge_protocol::auth::RequestAuth::sign(
        &env.merchant,
        MERCHANT,
        "POST",
        &target,
        &bytes,
        env.now(),
        nonce,
    )
    .unwrap();
    let mut request = env
        .http
        .post(&url)
        .header("content-type", "application/json");
    for (name, value) in auth.headers() {
        request = request.header(name, value);
    }
    read(request.body(bytes).send().await.unwrap()).await
}

#[tokio::test]
async fn the_claim_records_the_nonce_and_a_reused_one_claims_nothing() {
    let env = Env::start().await;
    // Replayed byte for byte after a 200: 401 NONCE_REUSED, not 410.
    let (id, _) = env.wallet_session(0).await;
    let path = format!("/orders/create/{id}");
    let body = Env::session_body(&env.order(MERCHANT, &[GATEWAY]), &env.merchant);
    let first = post_with_nonce(&env, &path, &body, "req_claim_once").await;
    assert_eq!(first.0, 200, "{}", first.1);
    assert_error(
        &post_with_nonce(&env, &path, &body, "req_claim_once").await,
        401,
        "NONCE_REUSED",
    );

    // A nonce spent on an answer that claimed nothing (404) cannot claim a session later.
    let missing = format!("/orders/create/{}", hex32());
    assert_error(
        &post_with_nonce(&env, &missing, &body, "req_spent_on_404").await,
        404,
        "SESSION_NOT_FOUND",
    );
    let (fresh, _) = env.wallet_session(1).await;
    let fresh_path = format!("/orders/create/{fresh}");
    let body = Env::session_body(&env.order(MERCHANT, &[GATEWAY]), &env.merchant);
    assert_error(
        &post_with_nonce(&env, &fresh_path, &body, "req_spent_on_404").await,
        401,
        "NONCE_REUSED",
    );
    assert_eq!(env.session(&fresh).await.status, SessionStatus::Pending);

    // A nonce spent on another endpoint, too.
    let spent = env
        .gw
        .state
        .store
        .use_nonce(
            &format!("ocid:{MERCHANT}"),
            "req_spent_elsewhere",
            env.now() + 600,
            env.now(),
        )
        .await
        .unwrap();
    assert!(spent);
    assert_error(
        &post_with_nonce(&env, &fresh_path, &body, "req_spent_elsewhere").await,
        401,
        "NONCE_REUSED",
    );
    assert_eq!(env.session(&fresh).await.status, SessionStatus::Pending);
    let (status, answer) = post_with_nonce(&env, &fresh_path, &body, "req_fresh").await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn request_auth_runs_before_any_session_lookup() {
    let env = Env::start().await;
    let response = env
        .http
        .post(env.url("/orders/create/nope"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    let result = read(response).await;
    assert_eq!(result.0, 401, "{}", result.1);
}

#[tokio::test]
async fn unknown_session_is_404_session_not_found() {
    let env = Env::start().await;
    let order = env.order(MERCHANT, &[GATEWAY]);
    assert_error(
        &env.submit(&hex32(), &order).await,
        404,
        "SESSION_NOT_FOUND",
    );
}

#[tokio::test]
async fn checkout_session_id_is_not_a_wallet_session() {
    let env = Env::start().await;
    let order = env.order(MERCHANT, &[GATEWAY]);
    let body = Env::checkout_body(&order, &env.merchant, MERCHANT);
    let (status, created) = env
        .post(&env.mg, MERCHANT_GATEWAY, "/checkout/create", &body)
        .await;
    assert_eq!(status, 200, "{created}");
    let cs = created["session_id"].as_str().unwrap();
    assert_error(&env.submit(cs, &order).await, 404, "SESSION_NOT_FOUND");
}

#[tokio::test]
async fn expired_session_is_404_session_expired() {
    let env = Env::start().await;
    let (id, _) = env.wallet_session(0).await;
    env.clock.advance(301);
    let order = env.order(MERCHANT, &[GATEWAY]);
    assert_error(&env.submit(&id, &order).await, 404, "SESSION_EXPIRED");
    // The background worker also marks it expired; the answer stays the same.
    opencharge_gateway::webhook::deliver_now(&env.gw.state).await;
    assert_eq!(env.session(&id).await.status, SessionStatus::Expired);
    assert_error(&env.submit(&id, &order).await, 404, "SESSION_EXPIRED");
}

#[tokio::test]
async fn used_session_is_410_session_used() {
    let env = Env::start().await;
    let (id, _) = env.wallet_session(0).await;
    let (status, _) = env.submit(&id, &env.order(MERCHANT, &[GATEWAY])).await;
    assert_eq!(status, 200);
    assert_error(
        &env.submit(&id, &env.order(MERCHANT, &[GATEWAY])).await,
        410,
        "SESSION_USED",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_posts_get_one_200_and_fifteen_410() {
    let env = Arc::new(Env::start().await);
    let (id, account) = env.wallet_session(0).await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let env = env.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let order = env.order(MERCHANT, &[GATEWAY]);
            env.submit(&id, &order).await
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        if status != 200 {
            assert_eq!(body["error"]["code"], "SESSION_USED", "{body}");
        }
        statuses.push(status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 410).count(),
        15,
        "{statuses:?}"
    );
    let events = env
        .gw
        .state
        .store
        .events_after(&account, 0, 100)
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "exactly one payment_request event");
}

#[tokio::test]
async fn tampered_order_is_400_invalid_signature_and_changes_nothing() {
    let env = Env::start().await;
    let (id, _) = env.wallet_session(0).await;
    let path = format!("/orders/create/{id}");
    let order = env.order(MERCHANT, &[GATEWAY]);
    let signature = sign_object(&env.merchant, &order).unwrap();

    // Top-level field changed after signing (amount and items kept consistent).
    let mut top = order.clone();
    top["memo"] = json!("Order #43");
    let body = json!({"order": top, "signature": signature, "urls": {}});
    assert_error(
        &env.post(&env.merchant, MERCHANT, &path, &body).await,
        400,
        "INVALID_SIGNATURE",
    );

    // Nested item field changed after signing.
    let mut nested = order.clone();
    nested["items"][0]["name"] = json!("Espresso");
    let body = json!({"order": nested, "signature": signature, "urls": {}});
    assert_error(
        &env.post(&env.merchant, MERCHANT, &path, &body).await,
        400,
        "INVALID_SIGNATURE",
    );

    // Signed by another key.
    let body = Env::session_body(&order, &env.other);
    assert_error(
        &env.post(&env.merchant, MERCHANT, &path, &body).await,
        400,
        "INVALID_SIGNATURE",
    );

    // Garbage signature.
    let body = json!({"order": order, "signature": "zz", "urls": {}});
    assert_error(
        &env.post(&env.merchant, MERCHANT, &path, &body).await,
        400,
        "INVALID_SIGNATURE",
    );

    assert_eq!(env.session(&id).await.status, SessionStatus::Pending);
    let (status, _) = env
        .post(
            &env.merchant,
            MERCHANT,
            &path,
            &Env::session_body(&order, &env.merchant),
        )
        .await;
    assert_eq!(status, 200, "the untampered order still goes through");
}

#[tokio::test]
async fn order_not_bound_to_the_caller_is_400_invalid_signature() {
    let env = Env::start().await;
    let (id, _) = env.wallet_session(0).await;
    let path = format!("/orders/create/{id}");
    // Merchant 500's genuine order, posted by merchant 501.
    let order = env.order(MERCHANT, &[GATEWAY]);
    let body = Env::session_body(&order, &env.merchant);
    let result = env.post(&env.other, OTHER_MERCHANT, &path, &body).await;
    assert_error(&result, 400, "INVALID_SIGNATURE");
    assert!(result.1["error"]["message"]
        .as_str()
        .unwrap()
        .contains("order.ocid"));
    // Merchant 501 signs an order claiming to be 500's.
    let body = Env::session_body(&order, &env.other);
    assert_error(
        &env.post(&env.other, OTHER_MERCHANT, &path, &body).await,
        400,
        "INVALID_SIGNATURE",
    );
    assert_eq!(env.session(&id).await.status, SessionStatus::Pending);
}

#[tokio::test]
async fn order_expiry_rules() {
    let env = Env::start().await;
    let (id, _) = env.wallet_session(0).await;
    let now = env.now();

    let mut expired = env.order(MERCHANT, &[GATEWAY]);
    expired["expiresAt"] = json!(now - 1);
    assert_error(&env.submit(&id, &expired).await, 400, "ORDER_EXPIRED");
    expired["expiresAt"] = json!(now);
    assert_error(&env.submit(&id, &expired).await, 400, "ORDER_EXPIRED");

    let mut missing = env.order(MERCHANT, &[GATEWAY]);
    missing.as_object_mut().unwrap().remove("expiresAt");
    let result = env.submit(&id, &missing).await;
    assert_error(&result, 400, "INVALID_REQUEST");
    assert_eq!(result.1["error"]["details"]["field"], "order.expiresAt");

    let mut too_far = env.order(MERCHANT, &[GATEWAY]);
    too_far["expiresAt"] = json!(now + 86_400 + 60);
    assert_error(&env.submit(&id, &too_far).await, 400, "INVALID_REQUEST");

    let mut no_created = env.order(MERCHANT, &[GATEWAY]);
    no_created.as_object_mut().unwrap().remove("createdAt");
    assert_error(&env.submit(&id, &no_created).await, 400, "INVALID_REQUEST");

    assert_eq!(env.session(&id).await.status, SessionStatus::Pending);
}

#[tokio::test]
async fn no_settlement_path_is_400_settlement_not_supported() {
    let env = Env::start().await;
    let (id, _) = env.wallet_session(0).await;
    let order = env.order(MERCHANT, &[999, 998]);
    assert_error(
        &env.submit(&id, &order).await,
        400,
        "SETTLEMENT_NOT_SUPPORTED",
    );
    // A configured partner that is not in accepts does not help either.
    assert_eq!(env.session(&id).await.status, SessionStatus::Pending);
    // Without `accepts` there is no restriction: direct settlement.
    let mut open = env.order(MERCHANT, &[]);
    open.as_object_mut().unwrap().remove("accepts");
    let (status, body) = env.submit(&id, &open).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn invalid_amount_or_currency_is_400_invalid_request() {
    let env = Env::start().await;
    let (id, _) = env.wallet_session(0).await;
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "order.amount",
            Box::new(|o: &mut Value| o["amount"] = json!("1e3")),
        ),
        (
            "order.amount",
            Box::new(|o: &mut Value| o["amount"] = json!("-25.00")),
        ),
        (
            "order.amount",
            Box::new(|o: &mut Value| o["amount"] = json!("25.001")),
        ),
        (
            "order.amount",
            Box::new(|o: &mut Value| o["amount"] = json!("0")),
        ),
        (
            "order.currency",
            Box::new(|o: &mut Value| o["currency"] = json!("XYZ")),
        ),
        (
            "order.currency",
            Box::new(|o: &mut Value| o["currency"] = json!("usd")),
        ),
        (
            "order.currency",
            Box::new(|o: &mut Value| o["currency"] = json!("JPY")),
        ),
        (
            "order.items",
            Box::new(|o: &mut Value| o["amount"] = json!("26.00")),
        ),
        (
            "order.items",
            Box::new(|o: &mut Value| o["items"][0]["price"] = json!("5.5.0")),
        ),
    ];
    for (field, mutate) in cases {
        let mut order = env.order(MERCHANT, &[GATEWAY]);
        mutate(&mut order);
        let result = env.submit(&id, &order).await;
        assert_error(&result, 400, "INVALID_REQUEST");
        assert_eq!(result.1["error"]["details"]["field"], field, "{}", result.1);
    }
    // Unsupported currency names the supported ones.
    let mut jpy = env.order(MERCHANT, &[GATEWAY]);
    jpy["currency"] = json!("JPY");
    jpy["amount"] = json!("25");
    jpy.as_object_mut().unwrap().remove("items");
    let result = env.submit(&id, &jpy).await;
    assert_eq!(
        result.1["error"]["details"]["supportedCurrencies"],
        json!(["USD", "EUR", "UGX"])
    );
    assert_eq!(env.session(&id).await.status, SessionStatus::Pending);
}

#[tokio::test]
async fn malformed_body_is_400_invalid_request_naming_the_field() {
    let env = Env::start().await;
    let (id, _) = env.wallet_session(0).await;
    let path = format!("/orders/create/{id}");
    let result = env
        .post_bytes(&env.merchant, MERCHANT, &path, b"not json".to_vec())
        .await;
    assert_error(&result, 400, "INVALID_REQUEST");

    let mut order = env.order(MERCHANT, &[GATEWAY]);
    order.as_object_mut().unwrap().remove("amount");
    let body = Env::session_body(&order, &env.merchant);
    let result = env.post(&env.merchant, MERCHANT, &path, &body).await;
    assert_error(&result, 400, "INVALID_REQUEST");
    assert!(
        result.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("amount"),
        "{}",
        result.1
    );

    let order = env.order(MERCHANT, &[GATEWAY]);
    let body = json!({"order": order, "urls": {}});
    let result = env.post(&env.merchant, MERCHANT, &path, &body).await;
    assert_error(&result, 400, "INVALID_REQUEST");
    assert!(result.1["error"]["message"]
        .as_str()
        .unwrap()
        .contains("signature"));
}

// ---------------------------------------------------------------------------------------------
// POST /checkout/create (seed 000), GET /checkout/{id}
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn checkout_create_shape_and_thirty_minute_expiry() {
    let env = Env::start().await;
    let mut order = env.order(MERCHANT, &[GATEWAY]);
    order.as_object_mut().unwrap().remove("expiresAt");
    let body = Env::checkout_body(&order, &env.merchant, MERCHANT);
    let before = env.now();
    let (status, created) = env
        .post(&env.mg, MERCHANT_GATEWAY, "/checkout/create", &body)
        .await;
    assert_eq!(status, 200, "{created}");
    let id = created["session_id"].as_str().unwrap();
    assert!(id.starts_with("cs_") && id.len() == 35, "{id}");
    assert!(id[3..].bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        created["checkout_url"],
        format!("{}/checkout/{id}", env.gw.endpoint())
    );
    let expires_at = created["expires_at"].as_i64().unwrap();
    assert!(
        expires_at >= before + 1800 && expires_at <= env.now() + 1800,
        "{expires_at}"
    );

    let session = env.session(id).await;
    assert_eq!(session.flow, Flow::Checkout);
    assert_eq!(session.status, SessionStatus::OrderReceived);
    assert_eq!(session.submitted_by, Some(MERCHANT_GATEWAY));
    assert_eq!(session.account_id, None);
    let urls: Value = serde_json::from_str(
        session
            .order
            .as_ref()
            .unwrap()
            .urls_json
            .as_deref()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(urls["success"], "https://merchant.example/ok");
    assert_eq!(urls["cancel"], "https://merchant.example/cancel");

    // The link itself is public.
    let (status, view) = read(
        env.http
            .get(created["checkout_url"].as_str().unwrap())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["session_id"], id);
    assert_eq!(view["status"], "pending");
    assert_eq!(view["merchant"]["ocid"], MERCHANT);
    assert_eq!(view["merchant"]["name"], "Party 500");
    assert_eq!(view["order"], order);
    assert_eq!(view["expires_at"], expires_at);
    let (status, _) = read(
        env.http
            .get(env.url(&format!("/checkout/cs_{}", hex32())))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn checkout_expiry_is_capped_by_the_order() {
    let env = Env::start().await;
    let order = env.order(MERCHANT, &[GATEWAY]);
    let body = Env::checkout_body(&order, &env.merchant, MERCHANT);
    let (status, created) = env
        .post(&env.mg, MERCHANT_GATEWAY, "/checkout/create", &body)
        .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["expires_at"], order["expiresAt"]);
}

#[tokio::test]
async fn checkout_error_table() {
    let env = &Env::start().await;
    let post = |body: Value| async move {
        env.post(&env.mg, MERCHANT_GATEWAY, "/checkout/create", &body)
            .await
    };

    // Signed with the wrong merchant key.
    let order = env.order(MERCHANT, &[GATEWAY]);
    assert_error(
        &post(Env::checkout_body(&order, &env.other, MERCHANT)).await,
        400,
        "INVALID_SIGNATURE",
    );
    // order.ocid differs from merchantOcid (501's genuine order, claimed as 500's).
    let order_501 = env.order(OTHER_MERCHANT, &[GATEWAY]);
    assert_error(
        &post(Env::checkout_body(&order_501, &env.other, MERCHANT)).await,
        400,
        "INVALID_SIGNATURE",
    );
    // Tampered nested field.
    let mut body = Env::checkout_body(&order, &env.merchant, MERCHANT);
    body["order"]["items"][1]["quantity"] = json!(3);
    assert_error(&post(body).await, 400, "INVALID_SIGNATURE");
    // Unknown merchant.
    let order_777 = env.order(777, &[GATEWAY]);
    assert_error(
        &post(Env::checkout_body(&order_777, &env.other, 777)).await,
        400,
        "UNKNOWN_OCID",
    );
    // Expired order.
    let mut expired = env.order(MERCHANT, &[GATEWAY]);
    expired["expiresAt"] = json!(env.now() - 5);
    assert_error(
        &post(Env::checkout_body(&expired, &env.merchant, MERCHANT)).await,
        400,
        "ORDER_EXPIRED",
    );
    // No settlement path.
    let elsewhere = env.order(MERCHANT, &[999]);
    assert_error(
        &post(Env::checkout_body(&elsewhere, &env.merchant, MERCHANT)).await,
        400,
        "SETTLEMENT_NOT_SUPPORTED",
    );
    // Bad amount.
    let mut bad = env.order(MERCHANT, &[GATEWAY]);
    bad["amount"] = json!("25.5.0");
    assert_error(
        &post(Env::checkout_body(&bad, &env.merchant, MERCHANT)).await,
        400,
        "INVALID_REQUEST",
    );
    // Redirect targets a browser must never be sent to: refused, naming the field.
    for (field, url) in [
        ("success", "javascript:alert(document.cookie)"),
        ("success", "data:text/html,<script>alert(1)</script>"),
        ("cancel", "http://merchant.example/cancel"),
        ("cancel", "//merchant.example/cancel"),
        ("success", "https://user:pass@merchant.example/ok"),
    ] {
        let mut body = Env::checkout_body(&order, &env.merchant, MERCHANT);
        body["urls"][field] = json!(url);
        let answer = post(body).await;
        assert_error(&answer, 400, "INVALID_REQUEST");
        let message = answer.1["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(&format!("urls.{field}")), "{message}");
    }
    // Missing merchantOcid.
    let mut missing = Env::checkout_body(&order, &env.merchant, MERCHANT);
    missing.as_object_mut().unwrap().remove("merchantOcid");
    assert_error(&post(missing).await, 400, "INVALID_REQUEST");
    // Unsigned request.
    let response = env
        .http
        .post(env.url("/checkout/create"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
}

// ---------------------------------------------------------------------------------------------
// GET /orders/{token}/status
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn status_endpoint_is_only_for_the_submitter_and_the_merchant() {
    let env = Env::start().await;
    let (id, _) = env.wallet_session(0).await;
    let order = env.order(MERCHANT, &[GATEWAY]);
    let (status, body) = env.submit(&id, &order).await;
    assert_eq!(status, 200);
    let url = body["urls"]["status"].as_str().unwrap();
    let path = url.strip_prefix(env.gw.endpoint()).unwrap();

    let (status, _) = env.get(&env.merchant, MERCHANT, path).await;
    assert_eq!(status, 200);
    assert_error(
        &env.get(&env.other, OTHER_MERCHANT, path).await,
        404,
        "ORDER_NOT_FOUND",
    );
    assert_error(
        &env.get(
            &env.merchant,
            MERCHANT,
            &format!("/orders/{}/status", hex32()),
        )
        .await,
        404,
        "ORDER_NOT_FOUND",
    );
    let unsigned = env.http.get(url).send().await.unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);

    // Checkout: the Merchant Gateway that submitted it and the merchant may read it.
    let body = Env::checkout_body(&env.order(MERCHANT, &[GATEWAY]), &env.merchant, MERCHANT);
    let (_, created) = env
        .post(&env.mg, MERCHANT_GATEWAY, "/checkout/create", &body)
        .await;
    let session = env.session(created["session_id"].as_str().unwrap()).await;
    let path = format!("/orders/{}/status", session.status_token);
    assert_eq!(env.get(&env.mg, MERCHANT_GATEWAY, &path).await.0, 200);
    assert_eq!(env.get(&env.merchant, MERCHANT, &path).await.0, 200);
    assert_error(
        &env.get(&env.partner, PARTNER, &path).await,
        404,
        "ORDER_NOT_FOUND",
    );

    // Expired without payment reads as expired.
    env.clock.advance(3600);
    let (status, body) = env.get(&env.mg, MERCHANT_GATEWAY, &path).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "expired");
}

// ---------------------------------------------------------------------------------------------
// Settlement (confirm_payment)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn direct_settlement_pays_once_and_delivers_the_proof() {
    let env = Env::start().await;
    let (id, account) = env.wallet_session(10_000).await;
    let mut order = env.order(MERCHANT, &[GATEWAY, 999]);
    order["amount"] = json!("25.0");
    let (status, body) = env.submit(&id, &order).await;
    assert_eq!(status, 200, "{body}");
    let status_path = body["urls"]["status"]
        .as_str()
        .unwrap()
        .strip_prefix(env.gw.endpoint())
        .unwrap()
        .to_string();
    let session = env.session(&id).await;

    let outcome = confirm_payment(&env.gw.state, &session, &account, "idem-1", "{}")
        .await
        .unwrap();
    let SettleOutcome::Paid(paid) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(paid.status, SessionStatus::Paid);
    assert_eq!(env.balance(&account, "USD").await, 7_500);
    assert_eq!(env.balance(&format!("ocid:{MERCHANT}"), "USD").await, 2_500);

    // Retry with the same key: same result, one debit.
    let again = confirm_payment(&env.gw.state, &session, &account, "idem-1", "{}")
        .await
        .unwrap();
    assert!(
        matches!(again, SettleOutcome::AlreadyPaid(ref s) if s.txid == paid.txid),
        "{again:?}"
    );
    assert_eq!(env.balance(&account, "USD").await, 7_500);

    // The proof: ours, to the merchant, the order's amount string verbatim.
    let delivered = wait_for_webhooks(&env.merchant_hook, 1).await;
    assert_eq!(delivered.len(), 1);
    let proof = &delivered[0]["proof"];
    verify_proof(
        proof,
        delivered[0]["signature"].as_str().unwrap(),
        GATEWAY,
        &gateway_key(&env.gw),
        VerifyOptions::STRICT,
    )
    .unwrap();
    assert_eq!(proof["amount"], "25.0");
    assert_eq!(proof["currency"], "USD");
    assert_eq!(
        proof["from"],
        json!({"ocid": GATEWAY, "reference": account})
    );
    assert_eq!(
        proof["to"],
        json!({"ocid": MERCHANT, "reference": order["id"]})
    );
    assert_eq!(proof["txid"], json!(paid.txid));
    assert!(proof["txid"].as_str().unwrap().starts_with("tx_"));

    let (status, body) = env.get(&env.merchant, MERCHANT, &status_path).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "paid");
    assert_eq!(body["txid"], json!(paid.txid));
    assert_eq!(body["paidAt"], json!(paid.paid_at));

    let events = env
        .gw
        .state
        .store
        .events_after(&account, 0, 10)
        .await
        .unwrap();
    let last: Value = serde_json::from_str(&events.last().unwrap().payload_json).unwrap();
    assert_eq!(last["type"], "payment_status");
    assert_eq!(last["status"], "paid");
    assert_eq!(last["sessionId"], id);
}

#[tokio::test]
async fn insufficient_funds_changes_nothing() {
    let env = Env::start().await;
    let (id, account) = env.wallet_session(1_000).await;
    let (status, _) = env.submit(&id, &env.order(MERCHANT, &[GATEWAY])).await;
    assert_eq!(status, 200);
    let session = env.session(&id).await;
    let outcome = confirm_payment(&env.gw.state, &session, &account, "k", "{}")
        .await
        .unwrap();
    assert_eq!(outcome, SettleOutcome::InsufficientFunds);
    assert_eq!(env.balance(&account, "USD").await, 1_000);
    assert_eq!(env.session(&id).await.status, SessionStatus::OrderReceived);
    // Someone else's session is refused.
    let other = env.user(100_000).await;
    let outcome = confirm_payment(&env.gw.state, &session, &other, "k2", "{}")
        .await
        .unwrap();
    assert_eq!(outcome, SettleOutcome::Forbidden);
}

#[tokio::test]
async fn checkout_payment_sends_the_proof_to_the_merchant_gateway() {
    let env = Env::start().await;
    let order = env.order(MERCHANT, &[GATEWAY]);
    let body = Env::checkout_body(&order, &env.merchant, MERCHANT);
    let (status, created) = env
        .post(&env.mg, MERCHANT_GATEWAY, "/checkout/create", &body)
        .await;
    assert_eq!(status, 200, "{created}");
    let id = created["session_id"].as_str().unwrap();
    let account = env.user(5_000).await;

    let session = env.session(id).await;
    let attached = session.order.clone().unwrap();
    let raw: Value = serde_json::from_str(&attached.order_json).unwrap();
    let event = opencharge_gateway::api::opencharge::payment_request_event(
        id,
        Flow::Checkout,
        &attached,
        &raw,
        session.expires_at,
    );
    let claim = opencharge_gateway::domain::attach_checkout(
        env.gw.state.store.as_ref(),
        id,
        &account,
        &event,
        env.now(),
    )
    .await
    .unwrap();
    assert!(matches!(claim, ClaimOutcome::Claimed(_)), "{claim:?}");
    let session = env.session(id).await;
    let outcome = confirm_payment(&env.gw.state, &session, &account, "c1", "{}")
        .await
        .unwrap();
    assert!(matches!(outcome, SettleOutcome::Paid(_)), "{outcome:?}");
    assert_eq!(
        env.balance(&format!("ocid:{MERCHANT_GATEWAY}"), "USD")
            .await,
        2_500
    );

    let delivered = wait_for_webhooks(&env.mg_hook, 1).await;
    let proof = &delivered[0]["proof"];
    assert_eq!(
        proof["to"],
        json!({"ocid": MERCHANT, "reference": order["id"]})
    );
    assert_eq!(proof["issuer"], GATEWAY);
    verify_proof(
        proof,
        delivered[0]["signature"].as_str().unwrap(),
        GATEWAY,
        &gateway_key(&env.gw),
        VerifyOptions::STRICT,
    )
    .unwrap();
    assert!(env.merchant_hook.received().is_empty());
}

// ---------------------------------------------------------------------------------------------
// POST /transfer/create (we hold the caller's reserve)
// ---------------------------------------------------------------------------------------------

fn transfer_body(reference: &str, amount: &str) -> Value {
    json!({
        "from": {"ocid": PARTNER, "reference": reference},
        "to": {"ocid": MERCHANT},
        "amount": amount,
        "currency": "USD",
        "memo": "payout",
        "order": {"id": "ord_t1", "urls": ["https://merchant.example/orders/ord_t1"]},
    })
}

async fn fund_reserve(env: &Env, minor: i64) -> String {
    let reserve = format!("reserve:{PARTNER}");
    env.gw
        .state
        .store
        .ensure_account(&reserve, "partner_reserve", "Partner reserve", env.now())
        .await
        .unwrap();
    fund(&env.gw, &reserve, "USD", minor).await;
    reserve
}

#[tokio::test]
async fn transfer_create_debits_the_reserve_once_and_signs_a_proof() {
    let env = Env::start().await;
    let reserve = fund_reserve(&env, 10_000).await;
    let merchant_account = format!("ocid:{MERCHANT}");
    let body = transfer_body("user_42", "12.50");

    let (status, first) = env
        .post(&env.partner, PARTNER, "/transfer/create", &body)
        .await;
    assert_eq!(status, 200, "{first}");
    let proof = &first["proof"];
    verify_proof(
        proof,
        first["signature"].as_str().unwrap(),
        GATEWAY,
        &gateway_key(&env.gw),
        VerifyOptions::STRICT,
    )
    .unwrap();
    assert_eq!(proof["issuer"], GATEWAY);
    assert_eq!(
        proof["from"],
        json!({"ocid": PARTNER, "reference": "user_42"})
    );
    assert_eq!(
        proof["to"],
        json!({"ocid": MERCHANT, "reference": "ord_t1"})
    );
    assert_eq!(proof["amount"], "12.50");
    assert_eq!(proof["memo"], "payout");
    assert_eq!(env.balance(&reserve, "USD").await, 8_750);
    assert_eq!(env.balance(&merchant_account, "USD").await, 1_250);

    // A retry (new nonce, same reference) returns the first proof and moves nothing.
    let (status, second) = env
        .post(&env.partner, PARTNER, "/transfer/create", &body)
        .await;
    assert_eq!(status, 200);
    assert_eq!(second, first);
    assert_eq!(env.balance(&reserve, "USD").await, 8_750);
    assert_eq!(env.balance(&merchant_account, "USD").await, 1_250);

    // The merchant gets the proof once.
    let delivered = wait_for_webhooks(&env.merchant_hook, 1).await;
    assert_eq!(delivered[0], first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(env.merchant_hook.received().len(), 1);
}

#[tokio::test]
async fn transfer_create_insufficient_reserve_is_402_and_changes_nothing() {
    let env = Env::start().await;
    let reserve = fund_reserve(&env, 1_000).await;
    let result = env
        .post(
            &env.partner,
            PARTNER,
            "/transfer/create",
            &transfer_body("r1", "10.01"),
        )
        .await;
    assert_error(&result, 402, "INSUFFICIENT_FUNDS");
    assert_eq!(env.balance(&reserve, "USD").await, 1_000);
    assert_eq!(env.balance(&format!("ocid:{MERCHANT}"), "USD").await, 0);
    // The failed attempt did not burn the idempotency key.
    let (status, _) = env
        .post(
            &env.partner,
            PARTNER,
            "/transfer/create",
            &transfer_body("r1", "10.00"),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(env.balance(&reserve, "USD").await, 0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(env.merchant_hook.received().len(), 1);
}

#[tokio::test]
async fn transfer_create_refusals() {
    let env = Env::start().await;
    // No reserve held here.
    assert_error(
        &env.post(
            &env.partner,
            PARTNER,
            "/transfer/create",
            &transfer_body("a", "1.00"),
        )
        .await,
        403,
        "UNAUTHORIZED",
    );
    fund_reserve(&env, 10_000).await;
    // Debiting someone else's reserve.
    assert_error(
        &env.post(
            &env.merchant,
            MERCHANT,
            "/transfer/create",
            &transfer_body("a", "1.00"),
        )
        .await,
        403,
        "UNAUTHORIZED",
    );
    // Bad amount, currency, reference.
    assert_error(
        &env.post(
            &env.partner,
            PARTNER,
            "/transfer/create",
            &transfer_body("a", "1.001"),
        )
        .await,
        400,
        "INVALID_REQUEST",
    );
    let mut body = transfer_body("a", "1.00");
    body["currency"] = json!("JPY");
    assert_error(
        &env.post(&env.partner, PARTNER, "/transfer/create", &body)
            .await,
        400,
        "INVALID_REQUEST",
    );
    let mut body = transfer_body("a", "1.00");
    body["from"].as_object_mut().unwrap().remove("reference");
    assert_error(
        &env.post(&env.partner, PARTNER, "/transfer/create", &body)
            .await,
        400,
        "INVALID_REQUEST",
    );
    // Unknown recipient.
    let mut body = transfer_body("a", "1.00");
    body["to"]["ocid"] = json!(777);
    assert_error(
        &env.post(&env.partner, PARTNER, "/transfer/create", &body)
            .await,
        400,
        "ACCOUNT_NOT_FOUND",
    );
    assert_eq!(
        env.balance(&format!("reserve:{PARTNER}"), "USD").await,
        10_000
    );
}

#[tokio::test]
async fn transfer_create_can_top_up_one_of_our_users() {
    let env = Env::start().await;
    let reserve = fund_reserve(&env, 10_000).await;
    let user = env.user(0).await;
    let mut body = transfer_body("topup-1", "3.00");
    body["to"] = json!({"ocid": GATEWAY, "reference": user});
    let (status, result) = env
        .post(&env.partner, PARTNER, "/transfer/create", &body)
        .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(env.balance(&user, "USD").await, 300);
    assert_eq!(env.balance(&reserve, "USD").await, 9_700);
    body["to"]["reference"] = json!("acct_nope");
    body["from"]["reference"] = json!("topup-2");
    assert_error(
        &env.post(&env.partner, PARTNER, "/transfer/create", &body)
            .await,
        400,
        "ACCOUNT_NOT_FOUND",
    );
}

// ---------------------------------------------------------------------------------------------
// POST /transfer/webhook
// ---------------------------------------------------------------------------------------------

fn incoming_proof(issuer: u64, to: u64, reference: &str, amount: &str, now: i64) -> Value {
    json!({
        "txid": format!("itx_{}", &hex32()[..16]),
        "issuer": issuer,
        "from": {"ocid": 42, "reference": "onramp-user"},
        "to": {"ocid": to, "reference": reference},
        "amount": amount,
        "currency": "USD",
        "timestamp": now,
    })
}

fn envelope(proof: &Value, key: &PrivateKey) -> Value {
    json!({"proof": proof, "signature": sign_object(key, proof).unwrap()})
}

#[tokio::test]
async fn transfer_webhook_accepts_credits_and_dedupes() {
    let env = Env::start().await;
    let user = env.user(0).await;
    let proof = incoming_proof(ISSUER, GATEWAY, &user, "7.25", env.now());
    let body = envelope(&proof, &env.issuer);

    let (status, first) = env
        .post(&env.issuer, ISSUER, "/transfer/webhook", &body)
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["status"], "accepted");
    assert_eq!(first["txid"], proof["txid"]);
    assert_eq!(env.balance(&user, "USD").await, 725);

    let (status, second) = env
        .post(&env.issuer, ISSUER, "/transfer/webhook", &body)
        .await;
    assert_eq!(status, 200);
    assert_eq!(second["status"], "accepted");
    assert_eq!(second["message"], "already processed");
    assert_eq!(env.balance(&user, "USD").await, 725);

    // Addressed to us but naming no account of ours: accepted and recorded.
    let proof = incoming_proof(ISSUER, GATEWAY, "ORD-77", "1.00", env.now());
    let (status, body) = env
        .post(
            &env.issuer,
            ISSUER,
            "/transfer/webhook",
            &envelope(&proof, &env.issuer),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "accepted");
}

#[tokio::test]
async fn transfer_webhook_rejections() {
    let env = Env::start().await;
    let user = env.user(0).await;
    let now = env.now();

    // Sender is not the issuer.
    let proof = incoming_proof(ISSUER, GATEWAY, &user, "1.00", now);
    assert_error(
        &env.post(
            &env.merchant,
            MERCHANT,
            "/transfer/webhook",
            &envelope(&proof, &env.issuer),
        )
        .await,
        400,
        "INVALID_PROOF",
    );

    // Issuer not accepted.
    let proof = incoming_proof(STRANGER_ISSUER, GATEWAY, &user, "1.00", now);
    let result = env
        .post(
            &env.stranger,
            STRANGER_ISSUER,
            "/transfer/webhook",
            &envelope(&proof, &env.stranger),
        )
        .await;
    assert_error(&result, 400, "ISSUER_NOT_ACCEPTED");
    assert_eq!(
        result.1["error"]["details"]["providedIssuer"],
        STRANGER_ISSUER
    );
    assert_eq!(
        result.1["error"]["details"]["acceptedIssuers"],
        json!([GATEWAY, ISSUER])
    );

    // Signature does not verify (amount changed after signing; signed by another key).
    let proof = incoming_proof(ISSUER, GATEWAY, &user, "1.00", now);
    let mut tampered = envelope(&proof, &env.issuer);
    tampered["proof"]["amount"] = json!("100.00");
    assert_error(
        &env.post(&env.issuer, ISSUER, "/transfer/webhook", &tampered)
            .await,
        400,
        "PROOF_SIGNATURE_INVALID",
    );
    let mut tampered = envelope(&proof, &env.issuer);
    tampered["proof"]["to"]["reference"] = json!("someone-else");
    assert_error(
        &env.post(&env.issuer, ISSUER, "/transfer/webhook", &tampered)
            .await,
        400,
        "PROOF_SIGNATURE_INVALID",
    );
    assert_error(
        &env.post(
            &env.issuer,
            ISSUER,
            "/transfer/webhook",
            &envelope(&proof, &env.other),
        )
        .await,
        400,
        "PROOF_SIGNATURE_INVALID",
    );

    // Not addressed to us.
    let proof = incoming_proof(ISSUER, MERCHANT, &user, "1.00", now);
    assert_error(
        &env.post(
            &env.issuer,
            ISSUER,
            "/transfer/webhook",
            &envelope(&proof, &env.issuer),
        )
        .await,
        400,
        "INVALID_PROOF",
    );

    // Malformed.
    assert_error(
        &env.post(
            &env.issuer,
            ISSUER,
            "/transfer/webhook",
            &json!({"proof": 1}),
        )
        .await,
        400,
        "INVALID_PROOF",
    );
    let mut no_txid = incoming_proof(ISSUER, GATEWAY, &user, "1.00", now);
    no_txid.as_object_mut().unwrap().remove("txid");
    assert_error(
        &env.post(
            &env.issuer,
            ISSUER,
            "/transfer/webhook",
            &envelope(&no_txid, &env.issuer),
        )
        .await,
        400,
        "INVALID_PROOF",
    );

    assert_eq!(
        env.balance(&user, "USD").await,
        0,
        "no rejected proof credited anything"
    );
}

// ---------------------------------------------------------------------------------------------
// Partner-reserve settlement between two gateways
// ---------------------------------------------------------------------------------------------

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn partner_reserve_settlement_end_to_end() {
    const PARTNER_GW: u64 = 210;
    let merchant_hook = WebhookReceiver::start().await.unwrap();
    let merchant = PrivateKey::generate();
    let (port_a, port_b) = (free_port(), free_port());
    let home_a = GatewayHome::create().await.unwrap();
    let home_b = GatewayHome::create().await.unwrap();
    let merchant_entry = entry(MERCHANT, &merchant, &merchant_hook.endpoint());

    // B: the partner gateway, holding A's reserve. It resolves A over HTTP.
    let mut config_b = home_b.config();
    config_b.ocid = PARTNER_GW;
    config_b.listen = ([127, 0, 0, 1], port_b).into();
    config_b.directory = vec![
        merchant_entry.clone(),
        DirectoryEntry {
            ocid: GATEWAY,
            metadata_url: Some(format!("http://127.0.0.1:{port_a}/opencharge")),
            metadata: None,
        },
    ];
    let b = Gateway::start(config_b).await.unwrap();

    // A: our gateway, settling through B.
    let mut config_a = home_a.config();
    config_a.listen = ([127, 0, 0, 1], port_a).into();
    config_a.partners = vec![PartnerConfig { ocid: PARTNER_GW }];
    config_a.directory = vec![
        merchant_entry,
        DirectoryEntry {
            ocid: PARTNER_GW,
            metadata_url: Some(b.endpoint().to_string()),
            metadata: None,
        },
    ];
    let a = Gateway::start(config_a).await.unwrap();

    let reserve = format!("reserve:{GATEWAY}");
    b.state
        .store
        .ensure_account(&reserve, "partner_reserve", "A's reserve", b.state.now())
        .await
        .unwrap();
    fund(&b, &reserve, "USD", 10_000).await;

    // A wallet session at A, an order accepting only B.
    let now = a.state.now();
    let user = a
        .state
        .store
        .create_account("user", "Bob", now)
        .await
        .unwrap()
        .id;
    fund(&a, &user, "USD", 5_000).await;
    let id = hex32();
    a.state
        .store
        .create_session(&Session::pending(
            id.clone(),
            Flow::WalletQr,
            Some(user.clone()),
            now,
            now + 300,
            hex32(),
        ))
        .await
        .unwrap();
    let order = json!({
        "id": "ord_partner", "ocid": MERCHANT, "amount": "20.00", "currency": "USD",
        "createdAt": now, "expiresAt": now + 600, "accepts": [PARTNER_GW],
    });
    let body = Env::session_body(&order, &merchant);
    let http = reqwest::Client::new();
    let url = format!("{}/orders/create/{id}", a.endpoint());
    let response = signed_request(
        &http,
        &merchant,
        MERCHANT,
        "POST",
        &url,
        Some(serde_json::to_vec(&body).unwrap()),
        now,
    )
    .await
    .unwrap();
    let (status, created) = read(response).await;
    assert_eq!(status, 200, "{created}");

    let session = a.state.store.session(&id).await.unwrap().unwrap();
    let outcome = confirm_payment(&a.state, &session, &user, "p1", "{}")
        .await
        .unwrap();
    let SettleOutcome::Paid(paid) = outcome else {
        panic!("{outcome:?}")
    };

    // A: user debited, clearing credited, B's proof stored, no webhook of A's.
    assert_eq!(balance_at(&a, &user, "USD").await, 3_000);
    assert_eq!(
        balance_at(&a, &format!("reserve-clearing:{PARTNER_GW}"), "USD").await,
        2_000
    );
    let stored: Value = serde_json::from_str(paid.proof_json.as_deref().unwrap()).unwrap();
    assert_eq!(stored["proof"]["issuer"], PARTNER_GW);
    assert_eq!(
        stored["proof"]["from"],
        json!({"ocid": GATEWAY, "reference": id})
    );
    assert_eq!(
        a.state
            .store
            .webhook_by_txid(paid.txid.as_deref().unwrap())
            .await
            .unwrap(),
        None
    );
    // B: reserve debited, merchant credited, merchant webhooked with B's proof.
    assert_eq!(balance_at(&b, &reserve, "USD").await, 8_000);
    assert_eq!(
        balance_at(&b, &format!("ocid:{MERCHANT}"), "USD").await,
        2_000
    );
    let delivered = wait_for_webhooks(&merchant_hook, 1).await;
    assert_eq!(delivered[0], stored);
    let b_key = PublicKey::from_hex(b.public_key_hex()).unwrap();
    verify_proof(
        &delivered[0]["proof"],
        delivered[0]["signature"].as_str().unwrap(),
        PARTNER_GW,
        &b_key,
        VerifyOptions::STRICT,
    )
    .unwrap();

    // A retry neither calls for a second transfer nor debits again.
    let again = confirm_payment(&a.state, &session, &user, "p1", "{}")
        .await
        .unwrap();
    assert!(matches!(again, SettleOutcome::AlreadyPaid(_)), "{again:?}");
    assert_eq!(balance_at(&b, &reserve, "USD").await, 8_000);
    assert_eq!(balance_at(&a, &user, "USD").await, 3_000);

    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn partner_failure_is_502_and_changes_nothing() {
    const PARTNER_GW: u64 = 210;
    // The partner is configured and resolvable but holds no reserve for us: it answers 403.
    let port_a = free_port();
    let home_a = GatewayHome::create().await.unwrap();
    let home_b = GatewayHome::create().await.unwrap();
    let merchant = PrivateKey::generate();
    let hook = WebhookReceiver::start().await.unwrap();
    let merchant_entry = entry(MERCHANT, &merchant, &hook.endpoint());
    let mut config_b = home_b.config();
    config_b.ocid = PARTNER_GW;
    config_b.directory = vec![
        merchant_entry.clone(),
        DirectoryEntry {
            ocid: GATEWAY,
            metadata_url: Some(format!("http://127.0.0.1:{port_a}/opencharge")),
            metadata: None,
        },
    ];
    let b = Gateway::start(config_b).await.unwrap();
    let mut config_a = home_a.config();
    config_a.listen = ([127, 0, 0, 1], port_a).into();
    config_a.partners = vec![PartnerConfig { ocid: PARTNER_GW }];
    config_a.directory = vec![
        merchant_entry,
        DirectoryEntry {
            ocid: PARTNER_GW,
            metadata_url: Some(b.endpoint().to_string()),
            metadata: None,
        },
    ];
    let a = Gateway::start(config_a).await.unwrap();

    let now = a.state.now();
    let user = a
        .state
        .store
        .create_account("user", "Bob", now)
        .await
        .unwrap()
        .id;
    fund(&a, &user, "USD", 5_000).await;
    let id = hex32();
    let order = json!({
        "id": "ord_p2", "ocid": MERCHANT, "amount": "20.00", "currency": "USD",
        "createdAt": now, "expiresAt": now + 600, "accepts": [PARTNER_GW],
    });
    let raw_order = order.clone();
    let attached = opencharge_gateway::store::AttachedOrder {
        order_json: raw_order.to_string(),
        order_signature: sign_object(&merchant, &order).unwrap(),
        order_hash: opencharge_protocol::signing::object_hash(&order).unwrap(),
        merchant_ocid: MERCHANT,
        merchant_name: None,
        merchant_icon: None,
        order_id: "ord_p2".into(),
        amount: "20.00".into(),
        amount_minor: 2_000,
        currency: "USD".into(),
        urls_json: None,
    };
    let session = Session::pending(
        id.clone(),
        Flow::MerchantQr,
        Some(user.clone()),
        now,
        now + 300,
        hex32(),
    )
    .with_order(attached, MERCHANT);
    a.state.store.create_session(&session).await.unwrap();

    let err = confirm_payment(&a.state, &session, &user, "p1", "{}")
        .await
        .unwrap_err();
    assert_eq!(err.0.status, 502, "{err:?}");
    assert_eq!(err.0.code.as_str(), "UNAUTHORIZED");
    assert_eq!(balance_at(&a, &user, "USD").await, 5_000);
    assert_eq!(
        a.state.store.session(&id).await.unwrap().unwrap().status,
        SessionStatus::OrderReceived
    );

    // Not enough money for the order: refused before the partner is called.
    let poor = a
        .state
        .store
        .create_account("user", "Poor", now)
        .await
        .unwrap()
        .id;
    let mut poor_session = session.clone();
    poor_session.id = hex32();
    poor_session.status_token = hex32();
    poor_session.account_id = Some(poor.clone());
    a.state.store.create_session(&poor_session).await.unwrap();
    let outcome = confirm_payment(&a.state, &poor_session, &poor, "p2", "{}")
        .await
        .unwrap();
    assert_eq!(outcome, SettleOutcome::InsufficientFunds);

    a.stop().await;
    b.stop().await;
}
