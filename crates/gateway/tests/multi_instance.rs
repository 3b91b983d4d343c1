//! Many gateway instances on one PostgreSQL database (issue 18): three gateways share one
//! database and one key file, and clients alternate between them request by request. Session
//! claims, confirm idempotency and nonces hold across instances (the database decides, not a
//! process); an event stream on one instance receives what another instance committed and
//! resumes on a third; a webhook claimed by an instance killed with SIGKILL is delivered by
//! another once its lease runs out; and the whole wallet flow runs through the real core and a
//! real merchant behind a round-robin balancer. Real PostgreSQL (`OPENCHARGE_TEST_PG_URL`, a
//! fresh database per test), real HTTP on loopback, real signatures.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::routing::post;
use axum::{Json, Router};
use futures_util::future::join_all;
use opencharge_gateway::auth::device_auth_headers;
use opencharge_gateway::config::DirectoryEntry;
use opencharge_gateway::database::open_store;
use opencharge_gateway::{Database, Gateway, GatewayConfig, RunningGateway};
use opencharge_protocol::auth::RequestAuth;
use opencharge_protocol::keys::PrivateKey;
use opencharge_protocol::signing::{object_hash, sign_object};
use opencharge_testkit::device::read;
use opencharge_testkit::pg::TestDatabase;
use opencharge_testkit::sse::SseReader;
use opencharge_testkit::{
    gateway_config, merchant_metadata, signed_request, usd_amount, AppDevice, DevClient, Heard,
    Network, Recorder, WebhookReceiver, WAIT,
};
use serde_json::{json, Value};

const GATEWAY: u64 = 200;
/// The first merchant's OCID; the others follow.
const MERCHANT: u64 = 500;
/// Merchants in every cluster's directory (the race uses them all).
const MERCHANTS: usize = 64;
/// Gateway instances per test.
const INSTANCES: usize = 3;

/// A merchant stood in for by the test: its OCID and signing key.
struct Merchant {
    ocid: u64,
    key: PrivateKey,
}

/// Three in-process gateway instances (`Gateway::start` with `Database::Postgres`) on one fresh
/// database with one shared key file, 64 merchants in their directory, and one webhook
/// receiver for all merchants.
struct Cluster {
    instances: Vec<Option<RunningGateway>>,
    /// Each instance's own endpoint (`http://127.0.0.1:<port>/opencharge`), by index.
    bases: Vec<String>,
    http: reqwest::Client,
    merchants: Vec<Merchant>,
    hooks: WebhookReceiver,
    _dir: tempfile::TempDir,
    /// Dropped last: the database goes after the instances.
    _db: TestDatabase,
}

/// A fresh database on the test server, or a failure that says how to get one.
async fn fresh_database() -> TestDatabase {
    TestDatabase::create()
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
}

/// Unix seconds now (the instances run on the system clock).
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Directory entries for `merchants`, each sending its webhooks to `hooks`.
fn directory(merchants: &[Merchant], hooks: &str) -> Vec<DirectoryEntry> {
    merchants
        .iter()
        .map(|m| DirectoryEntry {
            ocid: m.ocid,
            metadata_url: None,
            metadata: Some(merchant_metadata(
                m.ocid,
                &format!("Merchant {}", m.ocid),
                &m.key,
                hooks,
                &[GATEWAY],
            )),
        })
        .collect()
}

fn new_merchants() -> Vec<Merchant> {
    (0..MERCHANTS)
        .map(|i| Merchant {
            ocid: MERCHANT + i as u64,
            key: PrivateKey::generate(),
        })
        .collect()
}

/// The configuration every instance of a cluster shares: the database, the key file, the
/// directory; its own free ports.
fn shared_config(dir: &Path, db: &TestDatabase, entries: Vec<DirectoryEntry>) -> GatewayConfig {
    let mut config = gateway_config(dir);
    config.database = Database::parse(db.url()).unwrap();
    config.directory = entries;
    config
}

impl Cluster {
    async fn start() -> Cluster {
        let db = fresh_database().await;
        let dir = tempfile::tempdir().unwrap();
        let hooks = WebhookReceiver::start().await.unwrap();
        let merchants = new_merchants();
        let config = shared_config(dir.path(), &db, directory(&merchants, &hooks.endpoint()));
        // The key is provisioned before the instances start, as an operator copies it to
        // every machine.
        opencharge_peer::key_file::load_or_create_key(&config.key_path()).unwrap();
        // All three at once: the migrations run once, under the advisory lock.
        let started = join_all((0..INSTANCES).map(|_| Gateway::start(config.clone()))).await;
        let instances: Vec<RunningGateway> = started
            .into_iter()
            .map(|r| r.unwrap_or_else(|e| panic!("an instance did not start: {e}")))
            .collect();
        let key = instances[0].public_key_hex().to_string();
        assert!(instances.iter().all(|gw| gw.public_key_hex() == key));
        Cluster {
            bases: instances
                .iter()
                .map(|gw| gw.endpoint().to_string())
                .collect(),
            instances: instances.into_iter().map(Some).collect(),
            http: reqwest::Client::new(),
            merchants,
            hooks,
            _dir: dir,
            _db: db,
        }
    }

    /// Instance `i % 3`'s endpoint: request `i` of a run goes to the next instance in turn.
    fn at(&self, i: usize) -> &str {
        &self.bases[i % INSTANCES]
    }

    fn gw(&self, i: usize) -> &RunningGateway {
        self.instances[i % INSTANCES]
            .as_ref()
            .expect("the instance runs")
    }

    /// Stops instance `i` (its endpoint then refuses connections).
    async fn stop_instance(&mut self, i: usize) {
        if let Some(gw) = self.instances[i].take() {
            gw.stop().await;
        }
    }

    async fn stop(mut self) {
        for i in 0..INSTANCES {
            self.stop_instance(i).await;
        }
    }

    /// A registered device of a new account funded with `usd` (none for `"0"`): the account
    /// is created through instance 0, funded through instance 1, the device registered
    /// through instance 2.
    async fn wallet(&self, name: &str, usd: &str) -> AppDevice {
        let account = DevClient::new(self.http.clone(), self.at(0))
            .new_account(name)
            .await
            .unwrap();
        if usd != "0" {
            DevClient::new(self.http.clone(), self.at(1))
                .fund(&account.account_id, usd)
                .await
                .unwrap();
        }
        let device = AppDevice::register(&self.http, self.at(2), &account.enrollment_code, now())
            .await
            .unwrap();
        assert_eq!(device.account_id, account.account_id);
        device
    }

    /// A device-signed call to instance `i`.
    async fn call(
        &self,
        i: usize,
        w: &AppDevice,
        method: &str,
        rel: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let bytes = body
            .map(|b| serde_json::to_vec(&b).unwrap())
            .unwrap_or_default();
        let url = format!("{}{rel}", self.at(i));
        let request = w.request(&self.http, method, &url, bytes, now()).unwrap();
        read(request.send().await.unwrap()).await.unwrap()
    }

    /// `POST /app/sessions` on instance `i`: the new session's id.
    async fn session(&self, i: usize, w: &AppDevice) -> String {
        let (status, body) = self.call(i, w, "POST", "/app/sessions", None).await;
        assert_eq!(status, 200, "{body}");
        body["sessionId"].as_str().unwrap().to_string()
    }

    /// The USD balance of `w`'s account as instance `i` reports it.
    async fn usd(&self, i: usize, w: &AppDevice) -> String {
        let (status, body) = self.call(i, w, "GET", "/app/balance", None).await;
        assert_eq!(status, 200, "{body}");
        usd_amount(&body)
    }

    /// Merchant `m` posts a signed order for `amount` USD to wallet session `session_id`
    /// through instance `i`: the raw order and the answer.
    async fn merchant_posts(
        &self,
        i: usize,
        m: &Merchant,
        session_id: &str,
        order_id: &str,
        amount: &str,
    ) -> (Value, u16, Value) {
        let order = order_json(m.ocid, order_id, amount);
        let body = json!({
            "order": order,
            "signature": sign_object(&m.key, &order).unwrap(),
            "urls": {"order": []},
        });
        let response = signed_request(
            &self.http,
            &m.key,
            m.ocid,
            "POST",
            &format!("{}/orders/create/{session_id}", self.at(i)),
            Some(serde_json::to_vec(&body).unwrap()),
            now(),
        )
        .await
        .unwrap();
        let (status, answer) = read(response).await.unwrap();
        (order, status, answer)
    }

    /// A session of `w` (made on instance `i`) with merchant 0's order on it, posted through
    /// instance `i + 1`: the session id and the raw order.
    async fn prompt(
        &self,
        i: usize,
        w: &AppDevice,
        order_id: &str,
        amount: &str,
    ) -> (String, Value) {
        let session_id = self.session(i, w).await;
        let (order, status, answer) = self
            .merchant_posts(i + 1, &self.merchants[0], &session_id, order_id, amount)
            .await;
        assert_eq!(status, 200, "{answer}");
        (session_id, order)
    }

    /// `POST /app/sessions/{id}/confirm` on instance `i` with a consent signed by `w`.
    async fn confirm(
        &self,
        i: usize,
        w: &AppDevice,
        session_id: &str,
        order: &Value,
        idempotency_key: &str,
    ) -> (u16, Value) {
        let consent = consent_for(w, session_id, order);
        let signature = sign_object(&w.key, &consent).unwrap();
        self.call(
            i,
            w,
            "POST",
            &format!("/app/sessions/{session_id}/confirm"),
            Some(json!({"idempotencyKey": idempotency_key, "consent": consent, "signature": signature})),
        )
        .await
    }

    /// Opens `w`'s event stream on instance `i`, resuming after `last_event_id`.
    async fn events(&self, i: usize, w: &AppDevice, last_event_id: Option<i64>) -> SseReader {
        let url = format!("{}/app/events", self.at(i));
        let mut request = w
            .request(&self.http, "GET", &url, Vec::new(), now())
            .unwrap();
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let resp = request.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        SseReader::new(resp)
    }

    /// The minor-unit USD balance of a ledger account, straight from the shared database.
    async fn ledger_usd(&self, account: &str) -> i64 {
        usd_minor(self.gw(1).state.store.as_ref(), account).await
    }
}

async fn usd_minor(store: &dyn opencharge_gateway::store::Store, account: &str) -> i64 {
    store
        .balances(account)
        .await
        .unwrap()
        .into_iter()
        .filter(|b| b.currency == "USD")
        .map(|b| b.minor)
        .sum()
}

/// A merchant order for `amount` USD accepting our gateway, with one item.
fn order_json(merchant: u64, id: &str, amount: &str) -> Value {
    let now = now();
    json!({
        "id": id,
        "ocid": merchant,
        "reference": format!("REF-{id}"),
        "amount": amount,
        "currency": "USD",
        "items": [{"id": "item_1", "name": "Coffee", "quantity": 1, "price": amount}],
        "createdAt": now,
        "expiresAt": now + 600,
        "accepts": [GATEWAY],
    })
}

/// The consent a device signs for a session's order.
fn consent_for(w: &AppDevice, session_id: &str, order: &Value) -> Value {
    json!({
        "sessionId": session_id,
        "orderHash": object_hash(order).unwrap(),
        "amount": order["amount"],
        "currency": order["currency"],
        "merchantOcid": order["ocid"],
        "deviceId": w.device_id,
        "timestamp": now(),
    })
}

fn err_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// Waits up to [`WAIT`] for `check` to hold.
async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}

// ---------------------------------------------------------------------------------------------
// Claims, confirmations and nonces: the database decides

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_merchants_race_one_session_across_instances_and_one_wins() {
    let cluster = Cluster::start().await;
    let w = cluster.wallet("Race", "0").await;
    let session_id = cluster.session(0, &w).await;

    // Merchant k posts through instance k % 3, all at once.
    let answers = join_all(cluster.merchants.iter().enumerate().map(|(k, m)| {
        let order_id = format!("ord_race_{k}");
        let session_id = session_id.clone();
        let cluster = &cluster;
        async move {
            cluster
                .merchant_posts(k, m, &session_id, &order_id, "5.00")
                .await
        }
    }))
    .await;
    let winners: Vec<usize> = (0..MERCHANTS).filter(|&k| answers[k].1 == 200).collect();
    assert_eq!(winners.len(), 1, "exactly one merchant claims the session");
    let winner = winners[0];
    for (k, (_, status, body)) in answers.iter().enumerate() {
        if k != winner {
            assert_eq!(
                (*status, err_code(body)),
                (410, "SESSION_USED"),
                "merchant {k}: {body}"
            );
        }
    }

    // Every instance shows the one prompt, from the winner; the account has one prompt event.
    for i in 0..INSTANCES {
        let (status, prompts) = cluster.call(i, &w, "GET", "/app/prompts", None).await;
        assert_eq!(status, 200, "{prompts}");
        let prompts = prompts["prompts"].as_array().unwrap().clone();
        assert_eq!(prompts.len(), 1, "instance {i}: {prompts:?}");
        assert_eq!(prompts[0]["sessionId"], json!(session_id));
        assert_eq!(prompts[0]["order"], answers[winner].0);
    }
    let events = cluster
        .gw(2)
        .state
        .store
        .events_after(&w.account_id, 0, 100)
        .await
        .unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == "payment_request")
            .count(),
        1
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_confirms_across_instances_debit_once_with_one_payment_id() {
    let cluster = Cluster::start().await;
    let w = cluster.wallet("Confirm", "50.00").await;
    let (session_id, order) = cluster.prompt(0, &w, "ord_confirm_race", "20.00").await;

    // Confirm k goes to instance k % 3 with its own idempotency key, all at once.
    let answers = join_all((0..64).map(|k| {
        let (cluster, w, session_id, order) = (&cluster, &w, &session_id, &order);
        async move {
            cluster
                .confirm(k, w, session_id, order, &format!("race-{k}"))
                .await
        }
    }))
    .await;
    let mut txids = BTreeSet::new();
    for (k, (status, body)) in answers.iter().enumerate() {
        assert_eq!(*status, 200, "confirm {k}: {body}");
        assert_eq!(body["status"], "paid", "confirm {k}: {body}");
        txids.insert(body["txid"].as_str().unwrap().to_string());
    }
    assert_eq!(
        txids.len(),
        1,
        "one payment id for every confirmation: {txids:?}"
    );
    let txid = txids.into_iter().next().unwrap();

    // One debit, one credit, on every instance's view.
    for i in 0..INSTANCES {
        assert_eq!(cluster.usd(i, &w).await, "30.00", "instance {i}");
    }
    assert_eq!(cluster.ledger_usd(&format!("ocid:{MERCHANT}")).await, 2000);
    // A repeated key on yet another instance: the same payment again, no second debit.
    let (status, again) = cluster.confirm(1, &w, &session_id, &order, "race-7").await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["txid"], json!(txid));
    assert_eq!(cluster.usd(2, &w).await, "30.00");

    // The merchant gets one webhook with that payment's proof, from whichever instance.
    assert!(eventually(|| !cluster.hooks.received().is_empty()).await);
    let webhook = cluster
        .gw(0)
        .state
        .store
        .webhook_by_txid(&txid)
        .await
        .unwrap()
        .expect("the settlement queued a webhook");
    assert!(eventually(|| cluster.hooks.received().len() == 1).await);
    let hooks = cluster.hooks.received();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(hooks[0]["proof"]["txid"], json!(txid));
    assert_eq!(webhook.txid, txid);
    cluster.stop().await;
}

/// A merchant's `POST` to `url` signed with the given `nonce`.
async fn merchant_post_with_nonce(
    cluster: &Cluster,
    m: &Merchant,
    url: &str,
    body: &[u8],
    nonce: &str,
) -> (u16, Value) {
    let target = reqwest::Url::parse(url)
        .map(|u| u[url::Position::BeforePath..].to_string())
        .unwrap();
    let auth = RequestAuth::sign(&m.key, m.ocid, "POST", &target, body, now(), nonce).unwrap();
    let mut request = cluster
        .http
        .post(url)
        .header("content-type", "application/json");
    for (name, value) in auth.headers() {
        request = request.header(name, value);
    }
    read(request.body(body.to_vec()).send().await.unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_nonce_used_on_one_instance_is_refused_on_another() {
    let cluster = Cluster::start().await;
    let w = cluster.wallet("Nonce", "0").await;
    let m = &cluster.merchants[0];
    let order = order_json(m.ocid, "ord_nonce", "3.00");
    let body = serde_json::to_vec(&json!({
        "order": order,
        "signature": sign_object(&m.key, &order).unwrap(),
        "urls": {"order": []},
    }))
    .unwrap();

    // A merchant request accepted by instance 0 and replayed byte for byte on instance 1.
    let session = cluster.session(0, &w).await;
    let path = format!("/orders/create/{session}");
    let (status, answer) = merchant_post_with_nonce(
        &cluster,
        m,
        &format!("{}{path}", cluster.at(0)),
        &body,
        "req_once_only",
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = merchant_post_with_nonce(
        &cluster,
        m,
        &format!("{}{path}", cluster.at(1)),
        &body,
        "req_once_only",
    )
    .await;
    assert_eq!(
        (status, err_code(&answer)),
        (401, "NONCE_REUSED"),
        "{answer}"
    );

    // The same nonce cannot claim a fresh session on the third instance either, and that
    // session stays open for a request with a new nonce.
    let fresh = cluster.session(1, &w).await;
    let fresh_url = format!("{}/orders/create/{fresh}", cluster.at(2));
    let (status, answer) =
        merchant_post_with_nonce(&cluster, m, &fresh_url, &body, "req_once_only").await;
    assert_eq!(
        (status, err_code(&answer)),
        (401, "NONCE_REUSED"),
        "{answer}"
    );
    let (status, prompts) = cluster.call(2, &w, "GET", "/app/prompts", None).await;
    assert_eq!(status, 200);
    assert_eq!(prompts["prompts"].as_array().unwrap().len(), 1);
    let (status, answer) =
        merchant_post_with_nonce(&cluster, m, &fresh_url, &body, "req_fresh_nonce").await;
    assert_eq!(status, 200, "{answer}");

    // A device request replayed on another instance (same headers, same nonce).
    let path = "/opencharge/app/balance";
    let headers = device_auth_headers(&w.key, &w.device_id, "GET", path, b"", now());
    let mut answers = Vec::new();
    for i in [0, 2] {
        let url = format!("http://{}{path}", cluster.gw(i).addr);
        let mut request = cluster.http.get(url);
        for (name, value) in &headers {
            request = request.header(*name, value);
        }
        answers.push(read(request.send().await.unwrap()).await.unwrap());
    }
    assert_eq!(answers[0].0, 200, "{}", answers[0].1);
    assert_eq!(
        (answers[1].0, err_code(&answers[1].1)),
        (401, "NONCE_REUSED"),
        "{}",
        answers[1].1
    );
    cluster.stop().await;
}

// ---------------------------------------------------------------------------------------------
// One identity for every instance

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_instance_must_bring_the_database_key_and_rotation_works_on_postgres() {
    let db = fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    // A password in the URL (the test server trusts loopback and ignores it): it must never
    // show in an error.
    let mut url = reqwest::Url::parse(db.url()).unwrap();
    url.set_password(Some("hunter2-secret")).unwrap();
    let mut config = shared_config(dir.path(), &db, Vec::new());
    config.database = Database::parse(url.as_str()).unwrap();

    // Without key_file a PostgreSQL configuration is refused before anything starts.
    let mut keyless = config.clone();
    keyless.key_file = None;
    let err = Gateway::start(keyless)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("key_file must be set"), "{err}");
    assert!(!err.contains("hunter2-secret"), "{err}");

    let first = Gateway::start(config.clone()).await.unwrap();
    let public_key = first.public_key_hex().to_string();

    // A second instance with another key file is refused, naming the database redacted.
    let mut stranger = config.clone();
    stranger.key_file = Some(dir.path().join("stranger.key"));
    let err = Gateway::start(stranger).await.err().expect("refused");
    let text = err.to_string();
    assert!(
        matches!(err, opencharge_gateway::server::StartError::Identity(_)),
        "{text}"
    );
    assert!(text.contains(&public_key[..16]), "{text}");
    assert!(text.contains(&config.database.redacted()), "{text}");
    assert!(!text.contains("hunter2-secret"), "{text}");
    first.stop().await;

    // rotate-key on PostgreSQL: every instance then starts with the new key file only.
    let rotation = opencharge_gateway::identity::rotate_key(&config, now())
        .await
        .unwrap();
    assert_eq!(rotation.old_public_key, public_key);
    assert!(!rotation.database.to_string().contains("hunter2-secret"));
    let instances = join_all((0..2).map(|_| Gateway::start(config.clone()))).await;
    for instance in instances {
        let gw = instance.unwrap();
        assert_eq!(gw.public_key_hex(), rotation.new_public_key);
        gw.stop().await;
    }
    let mut old = config.clone();
    old.key_file = Some(rotation.old_key_file.clone());
    let err = Gateway::start(old)
        .await
        .err()
        .expect("the old key is refused");
    assert!(
        matches!(err, opencharge_gateway::server::StartError::Identity(_)),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Event streams across instances

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_on_one_instance_gets_another_instances_prompt_and_resumes_on_a_third() {
    let mut cluster = Cluster::start().await;
    let w = cluster.wallet("Stream", "100.00").await;
    // A = 0, B = 1, C = 2.
    let mut on_a = cluster.events(0, &w, None).await;
    let s1 = cluster.session(2, &w).await;
    let (o1, status, answer) = cluster
        .merchant_posts(1, &cluster.merchants[0], &s1, "ord_s1", "1.00")
        .await;
    assert_eq!(status, 200, "{answer}");
    let e1 = on_a.expect(WAIT).await;
    assert_eq!(
        (e1.kind.as_str(), &e1.data["sessionId"]),
        ("payment_request", &json!(s1))
    );

    // A stops; its stream ends. Meanwhile B and C carry on.
    cluster.stop_instance(0).await;
    assert!(
        on_a.next(WAIT).await.is_none(),
        "the stream of a stopped instance ends"
    );
    drop(on_a);
    let (status, paid) = cluster.confirm(1, &w, &s1, &o1, "s1").await;
    assert_eq!(status, 200, "{paid}");
    let s2 = cluster.session(2, &w).await;
    let (_, status, answer) = cluster
        .merchant_posts(1, &cluster.merchants[1], &s2, "ord_s2", "2.00")
        .await;
    assert_eq!(status, 200, "{answer}");
    let (status, _) = cluster
        .call(2, &w, "POST", &format!("/app/sessions/{s2}/decline"), None)
        .await;
    assert_eq!(status, 200);
    let s3 = cluster.session(1, &w).await;
    let (_, status, answer) = cluster
        .merchant_posts(2, &cluster.merchants[2], &s3, "ord_s3", "3.00")
        .await;
    assert_eq!(status, 200, "{answer}");

    // Resume on C after the last event A delivered: exactly what was missed, in order.
    let mut on_c = cluster.events(2, &w, Some(e1.id)).await;
    let mut missed = Vec::new();
    while let Some(event) = on_c.next(Duration::from_millis(1500)).await {
        missed.push(event);
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
    let expected: Vec<(String, String)> = [
        ("payment_status", &s1),
        ("payment_request", &s2),
        ("payment_status", &s2),
        ("payment_request", &s3),
    ]
    .iter()
    .map(|(kind, session)| (kind.to_string(), session.to_string()))
    .collect();
    assert_eq!(seen, expected);
    assert_eq!(missed[0].data["status"], "paid");
    assert_eq!(missed[0].data["txid"], paid["txid"]);
    let ids: Vec<i64> = missed.iter().map(|e| e.id).collect();
    assert!(
        ids[0] > e1.id && ids.windows(2).all(|p| p[0] < p[1]),
        "{ids:?}"
    );

    // Live again: a prompt posted through B arrives on C's stream.
    let s4 = cluster.session(1, &w).await;
    let (_, status, answer) = cluster
        .merchant_posts(1, &cluster.merchants[3], &s4, "ord_s4", "4.00")
        .await;
    assert_eq!(status, 200, "{answer}");
    let live = on_c.expect(WAIT).await;
    assert_eq!(live.data["sessionId"], json!(s4));
    assert!(live.id > *ids.last().unwrap());
    drop(on_c);
    cluster.stop().await;
}

// ---------------------------------------------------------------------------------------------
// kill -9 during settlement: the webhook lease passes to another instance

/// One webhook request as the merchant's server saw it.
#[derive(Debug, Clone)]
struct Arrival {
    /// The gateway process that sent it (found from the connection's socket).
    pid: Option<u32>,
    body: Value,
}

/// A merchant webhook endpoint that records which gateway process each request came from and
/// leaves the first request unanswered (the sender holds its lease while it waits).
#[derive(Clone, Default)]
struct HangingHooks {
    arrivals: Arc<Mutex<Vec<Arrival>>>,
    hang_first: Arc<AtomicBool>,
    pids: Arc<Mutex<Vec<u32>>>,
    port: Arc<Mutex<u16>>,
}

impl HangingHooks {
    async fn start() -> (HangingHooks, String) {
        let hooks = HangingHooks {
            hang_first: Arc::new(AtomicBool::new(true)),
            ..HangingHooks::default()
        };
        let app = Router::new()
            .route("/transfer/webhook", post(hanging_receive))
            .with_state(hooks.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        *hooks.port.lock().unwrap() = addr.port();
        tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
        });
        (hooks, format!("http://{addr}"))
    }

    fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals.lock().unwrap().clone()
    }
}

async fn hanging_receive(
    State(hooks): State<HangingHooks>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let pids = hooks.pids.lock().unwrap().clone();
    let port = *hooks.port.lock().unwrap();
    let pid = owner_of_connection(peer.port(), port, &pids);
    let txid = body["proof"]["txid"].clone();
    hooks.arrivals.lock().unwrap().push(Arrival { pid, body });
    if hooks.hang_first.swap(false, Ordering::SeqCst) {
        // Never answers: the sender waits (its lease held) until it is killed.
        std::future::pending::<()>().await;
    }
    Json(json!({"status": "accepted", "txid": txid}))
}

/// The process among `pids` that owns the loopback TCP socket whose local port is
/// `local_port` and remote port `remote_port` (Linux: `/proc/net/tcp` gives the socket's
/// inode, `/proc/<pid>/fd` who holds it).
fn owner_of_connection(local_port: u16, remote_port: u16, pids: &[u32]) -> Option<u32> {
    let port_of = |address: &str| {
        address
            .rsplit(':')
            .next()
            .and_then(|hex| u16::from_str_radix(hex, 16).ok())
    };
    let inode = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|file| std::fs::read_to_string(file).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .map(|line| {
                    line.split_whitespace()
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        })
        .find(|cols| {
            cols.len() > 9
                && port_of(&cols[1]) == Some(local_port)
                && port_of(&cols[2]) == Some(remote_port)
        })
        .map(|cols| cols[9].clone())?;
    let socket = format!("socket:[{inode}]");
    pids.iter().copied().find(|pid| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|fd| {
                std::fs::read_link(fd.path()).is_ok_and(|link| link.as_os_str() == socket.as_str())
            })
    })
}

/// An `opencharge-gateway` process and what its banner printed; killed on drop.
struct Process {
    child: Child,
    endpoint: String,
    /// The banner's `database:` line.
    database: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the gateway binary with `config_file` and waits for its banner's endpoint and
/// database lines (the rest of stdout is drained by a thread; stderr goes to `log`).
fn spawn_gateway(config_file: &Path, log: &Path) -> Process {
    let mut child = Command::new(env!("CARGO_BIN_EXE_opencharge-gateway"))
        .arg("--config")
        .arg(config_file)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = String::new();
    let mut endpoint = None;
    while let Some(Ok(line)) = lines.next() {
        banner.push_str(&line);
        banner.push('\n');
        let line = line.trim_start();
        if let Some(value) = line.strip_prefix("endpoint:") {
            endpoint = Some(value.trim().to_string());
        }
        if let (Some(endpoint), Some(database)) = (&endpoint, line.strip_prefix("database:")) {
            let (endpoint, database) = (endpoint.clone(), database.trim().to_string());
            std::thread::spawn(move || lines.for_each(drop));
            return Process {
                child,
                endpoint,
                database,
            };
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(log).unwrap_or_default();
    panic!("the gateway exited before its banner:\n{banner}\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_killed_while_delivering_leaves_the_webhook_to_another() {
    let db = fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let (hooks, hooks_url) = HangingHooks::start().await;
    let merchants = new_merchants();
    let mut config = shared_config(dir.path(), &db, directory(&merchants[..1], &hooks_url));
    // A password in the URL (the test server trusts loopback and ignores it): the banners
    // must not show it.
    let mut url = reqwest::Url::parse(db.url()).unwrap();
    url.set_password(Some("hunter2-secret")).unwrap();
    config.database = Database::parse(url.as_str()).unwrap();
    config.metrics_listen = None;
    config.queue_lease_seconds = 2;
    opencharge_peer::key_file::load_or_create_key(&config.key_path()).unwrap();
    let config_file = dir.path().join("gateway.toml");
    std::fs::write(&config_file, toml::to_string(&config).unwrap()).unwrap();

    // Three processes started together on one database.
    let logs: Vec<_> = (0..INSTANCES)
        .map(|i| dir.path().join(format!("gateway-{i}.log")))
        .collect();
    let spawned: Vec<_> = logs
        .iter()
        .map(|log| {
            let (file, log) = (config_file.clone(), log.clone());
            std::thread::spawn(move || spawn_gateway(&file, &log))
        })
        .collect();
    let mut processes: Vec<Option<Process>> = spawned
        .into_iter()
        .map(|t| Some(t.join().unwrap()))
        .collect();
    let pids: Vec<u32> = processes
        .iter()
        .map(|p| p.as_ref().unwrap().child.id())
        .collect();
    *hooks.pids.lock().unwrap() = pids.clone();
    let bases: Vec<String> = processes
        .iter()
        .map(|p| p.as_ref().unwrap().endpoint.clone())
        .collect();
    for process in processes.iter().flatten() {
        assert_eq!(process.database, config.database.redacted());
        assert!(process.database.contains(":***@"), "{}", process.database);
    }
    let http = reqwest::Client::new();

    // A funded wallet and a prompt, each step through the next instance.
    let account = DevClient::new(http.clone(), &bases[0])
        .new_account("Killed")
        .await
        .unwrap();
    DevClient::new(http.clone(), &bases[1])
        .fund(&account.account_id, "40.00")
        .await
        .unwrap();
    let w = AppDevice::register(&http, &bases[2], &account.enrollment_code, now())
        .await
        .unwrap();
    let call = |i: usize, method: &'static str, rel: String, body: Option<Value>| {
        let bytes = body
            .map(|b| serde_json::to_vec(&b).unwrap())
            .unwrap_or_default();
        let request = w
            .request(&http, method, &format!("{}{rel}", bases[i]), bytes, now())
            .unwrap();
        async move { read(request.send().await.unwrap()).await.unwrap() }
    };
    let (status, session) = call(0, "POST", "/app/sessions".into(), None).await;
    assert_eq!(status, 200, "{session}");
    let session_id = session["sessionId"].as_str().unwrap().to_string();
    let m = &merchants[0];
    let order = order_json(m.ocid, "ord_killed", "15.00");
    let body = json!({"order": order, "signature": sign_object(&m.key, &order).unwrap(), "urls": {"order": []}});
    let response = signed_request(
        &http,
        &m.key,
        m.ocid,
        "POST",
        &format!("{}/orders/create/{session_id}", bases[1]),
        Some(serde_json::to_vec(&body).unwrap()),
        now(),
    )
    .await
    .unwrap();
    let (status, answer) = read(response).await.unwrap();
    assert_eq!(status, 200, "{answer}");

    // Settle through instance 2; some instance claims the webhook and waits on the merchant.
    let consent = consent_for(&w, &session_id, &order);
    let confirm = json!({"idempotencyKey": "kill-1", "consent": consent, "signature": sign_object(&w.key, &consent).unwrap()});
    let confirm_path = format!("/app/sessions/{session_id}/confirm");
    let (status, paid) = call(2, "POST", confirm_path.clone(), Some(confirm.clone())).await;
    assert_eq!(status, 200, "{paid}");
    let txid = paid["txid"].as_str().unwrap().to_string();
    assert!(
        eventually(|| !hooks.arrivals().is_empty()).await,
        "no instance delivered the webhook"
    );
    let first = hooks.arrivals()[0].clone();
    assert_eq!(first.body["proof"]["txid"], json!(txid));
    let holder = first
        .pid
        .expect("the webhook's connection belongs to one of the three gateway processes");
    let killed = pids.iter().position(|&pid| pid == holder).unwrap();

    // kill -9 the instance holding the delivery.
    let mut process = processes[killed].take().unwrap();
    process.child.kill().unwrap();
    process.child.wait().unwrap();
    drop(process);
    assert_eq!(
        hooks.arrivals().len(),
        1,
        "no other instance took the row while its lease was held"
    );

    // Once the lease is over, another instance delivers it, once.
    assert!(
        eventually(|| hooks.arrivals().len() >= 2).await,
        "the webhook was not delivered after its lease ran out"
    );
    let second = hooks.arrivals()[1].clone();
    assert_eq!(second.body["proof"]["txid"], json!(txid));
    let deliverer = second.pid.expect("sent by a gateway process");
    assert_ne!(deliverer, holder, "delivered by another instance");
    assert!(pids.contains(&deliverer));
    let store = open_store(&config.database, 2).await.unwrap();
    let mut delivered = false;
    for _ in 0..200 {
        let row = store.webhook_by_txid(&txid).await.unwrap().unwrap();
        if row.status == "delivered" {
            assert_eq!(row.attempts, 1, "the killed attempt was never recorded");
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(delivered, "the webhook row is recorded as delivered");

    // The payment happened exactly once: the same answer on a surviving instance, one debit.
    let alive = (0..INSTANCES).find(|&i| i != killed).unwrap();
    let (status, again) = call(alive, "POST", confirm_path, Some(confirm)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["txid"], json!(txid));
    let (status, balance) = call(alive, "GET", "/app/balance".into(), None).await;
    assert_eq!(status, 200, "{balance}");
    assert_eq!(usd_amount(&balance), "25.00");
    assert_eq!(
        usd_minor(store.as_ref(), &format!("ocid:{MERCHANT}")).await,
        1500
    );
    // Two lease lengths later still no third delivery.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(hooks.arrivals().len(), 2, "{:?}", hooks.arrivals());
    drop(processes);
    // The logs name the database (the start line) but never its password.
    for log in &logs {
        let text = std::fs::read_to_string(log).unwrap();
        assert!(text.contains(&config.database.redacted()), "{text}");
        assert!(!text.contains("hunter2-secret"), "{text}");
    }
}

// ---------------------------------------------------------------------------------------------
// The whole wallet flow through the real core, behind the test kit's round-robin front

/// The `opencharge_http_requests_total` an instance counted since it started.
async fn requests_served(gw: &RunningGateway) -> u64 {
    let text = opencharge_gateway::ops::metrics::render(&gw.state)
        .await
        .unwrap();
    text.lines()
        .filter(|line| line.starts_with("opencharge_http_requests_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_wallet_flows_through_the_real_core_against_three_instances() {
    let db = fresh_database().await;
    let net = Network::builder()
        .merchants(1)
        .postgres(db.url())
        .gateway_instances(3)
        .start()
        .await
        .unwrap();
    let front = net.front().expect("three instances stand behind a front");
    assert_eq!(net.endpoint(), format!("{}/opencharge", front.url()));

    let (wallet, _) = net.wallet("alice", Some("100.00")).await.unwrap();
    let (listener, mut inbox) = Recorder::new();
    let stream = wallet.start_events(listener).unwrap();
    inbox.connected().await;

    // Flow 1: the merchant scans the wallet's QR and posts its order; the prompt arrives on
    // the stream (whichever instances took the post and the stream).
    let session = wallet.create_payment_session().await.unwrap();
    let order = net.order().unwrap();
    net.merchant()
        .post_to_wallet_session(&session.qr_payload, &order.order.id)
        .await
        .unwrap();
    let prompt = inbox.prompt(&session.session_id).await;
    assert_eq!(prompt.total.minor_units, 825);
    let receipt = wallet.confirm(prompt.prompt_id.clone()).await.unwrap();
    assert!(
        receipt.proof_verified,
        "the proof verifies with the metadata key"
    );
    let paid = net
        .merchant()
        .wait_paid(&order.order.id, WAIT)
        .await
        .unwrap();
    assert_eq!(paid.txid, receipt.txid);
    let update = inbox
        .wait_for("paid status", |h| match h {
            Heard::Status(u) if u.session_id == session.session_id => Some(u.clone()),
            _ => None,
        })
        .await;
    assert_eq!(update.txid, receipt.txid);

    // Flow 2: the wallet scans the merchant's order QR.
    let (order2, prompt2) = net.scan_order(&wallet).await.unwrap();
    let receipt2 = wallet.confirm(prompt2.prompt_id.clone()).await.unwrap();
    assert!(receipt2.proof_verified);
    net.merchant()
        .wait_paid(&order2.order.id, WAIT)
        .await
        .unwrap();

    // Confirming again pays nothing twice; the balance went down by both totals once.
    let again = wallet.confirm(prompt.prompt_id.clone()).await.unwrap();
    assert_eq!(again.txid, receipt.txid);
    assert_eq!(net.usd(&wallet).await.unwrap(), "83.50");
    assert_eq!(net.merchant().proofs().len(), 2);
    stream.stop_and_wait().await;

    // The front sent requests to every instance, and every instance answered some.
    let forwarded = front.forwarded_per_upstream();
    assert_eq!(forwarded.len(), 3, "{forwarded:?}");
    assert!(forwarded.iter().all(|&(_, n)| n > 0), "{forwarded:?}");
    let mut served = HashMap::new();
    for gw in net.gateways() {
        served.insert(gw.addr, requests_served(gw).await);
    }
    assert!(
        served.values().all(|&n| n > 0),
        "requests per instance: {served:?}"
    );
    net.stop().await;
}
