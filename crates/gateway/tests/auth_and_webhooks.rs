//! Request authentication (`X-OC-*` and device keys), response signing, the OCID directory and
//! the durable webhook queue, tested against real gateways on loopback with their databases in
//! temporary directories (SQLite files, or fresh PostgreSQL databases with
//! `OPENCHARGE_TEST_BACKEND=postgres`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use opencharge_gateway::auth::{device_auth_headers, HEADER_DEVICE};
use opencharge_gateway::clock::{Clock, OffsetClock};
use opencharge_gateway::config::DirectoryEntry;
use opencharge_gateway::resolver::{
    build_own_metadata, DirectoryResolver, OcidResolver, Party, ResolveError,
};
use opencharge_gateway::store::Webhook;
use opencharge_gateway::webhook::deliver_now;
use opencharge_gateway::{Gateway, GatewayConfig, RunningGateway};
use opencharge_protocol::auth::{RequestAuth, ResponseAuth};
use opencharge_protocol::keys::{sha256_hex, PrivateKey, PublicKey, VerifyOptions};
use opencharge_protocol::signing::sign_object;
use opencharge_testkit::{gateway_config, merchant_metadata, GatewayHome, WebhookReceiver};
use serde_json::{json, Value};

const MERCHANT: u64 = 500;

// ------------------------------------------------------------------------------------------
// helpers
// ------------------------------------------------------------------------------------------

struct Setup {
    _home: GatewayHome,
    clock: Arc<OffsetClock>,
    gw: RunningGateway,
    merchant: PrivateKey,
    http: reqwest::Client,
}

fn merchant_entry(key: &PrivateKey) -> DirectoryEntry {
    DirectoryEntry {
        ocid: MERCHANT,
        metadata_url: None,
        metadata: Some(merchant_metadata(
            MERCHANT,
            "Test Shop",
            key,
            "http://127.0.0.1:9/shop",
            &[200],
        )),
    }
}

async fn start(adjust: impl FnOnce(&mut GatewayConfig)) -> Setup {
    let home = GatewayHome::create().await.unwrap();
    let merchant = PrivateKey::generate();
    let mut config = home.config();
    config.directory.push(merchant_entry(&merchant));
    adjust(&mut config);
    let clock = Arc::new(OffsetClock::default());
    let gw = Gateway::start_with_clock(config, clock.clone())
        .await
        .unwrap();
    Setup {
        _home: home,
        clock,
        gw,
        merchant,
        http: reqwest::Client::new(),
    }
}

impl Setup {
    fn url(&self, rest: &str) -> String {
        format!("{}{rest}", self.gw.endpoint())
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

    fn gateway_key(&self) -> PublicKey {
        PublicKey::from_hex(self.gw.public_key_hex()).unwrap()
    }
}

/// The `X-OC-*` headers for an explicit path, timestamp and nonce.
fn oc_headers(
    key: &PrivateKey,
    ocid: u64,
    method: &str,
    path: &str,
    body: &[u8],
    timestamp: i64,
    nonce: &str,
) -> Vec<(&'static str, String)> {
    RequestAuth::sign(key, ocid, method, path, body, timestamp, nonce)
        .unwrap()
        .headers()
        .to_vec()
}

fn target_of(url: &str) -> String {
    let u = reqwest::Url::parse(url).unwrap();
    match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    }
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Bytes,
}

impl Reply {
    fn code(&self) -> String {
        serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|v| {
                v.pointer("/error/code")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// Asserts the response carries a valid gateway response signature.
    fn assert_signed(&self, ocid: u64, key: &PublicKey, now: i64) {
        let auth =
            ResponseAuth::from_headers(|n| self.headers.get(n).and_then(|v| v.to_str().ok()))
                .expect("response signature headers");
        assert_eq!(auth.ocid, ocid);
        auth.verify(key, self.status, &self.body, now, VerifyOptions::STRICT)
            .expect("response signature verifies");
    }
}

async fn send(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: Option<&[u8]>,
) -> Reply {
    let mut req = http.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .body(body.to_vec());
    }
    let resp = req.send().await.unwrap();
    Reply {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.bytes().await.unwrap(),
    }
}

fn assert_auth_error(reply: &Reply, code: &str) {
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (401, code),
        "body: {}",
        String::from_utf8_lossy(&reply.body)
    );
}

/// A merchant-signed GET of `/capabilities` (optionally with a query) at `timestamp`.
async fn capabilities_with(
    s: &Setup,
    query: &str,
    signed_path: Option<&str>,
    timestamp: i64,
    nonce: &str,
) -> Reply {
    let url = s.url(&format!("/capabilities{query}"));
    let path = signed_path
        .map(String::from)
        .unwrap_or_else(|| target_of(&url));
    let headers = oc_headers(&s.merchant, MERCHANT, "GET", &path, b"", timestamp, nonce);
    send(&s.http, "GET", &url, &headers, None).await
}

fn nonce() -> String {
    opencharge_protocol::auth::generate_nonce()
}

// ------------------------------------------------------------------------------------------
// X-OC-* request authentication
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn valid_request_passes_and_replayed_nonce_is_rejected() {
    let s = start(|_| {}).await;
    let n = nonce();
    let now = s.now();
    let first = capabilities_with(&s, "", None, now, &n).await;
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    assert_eq!(first.json()["ocid"], 200);
    first.assert_signed(200, &s.gateway_key(), s.now());

    let replay = capabilities_with(&s, "", None, now, &n).await;
    assert_auth_error(&replay, "NONCE_REUSED");
    replay.assert_signed(200, &s.gateway_key(), s.now());

    // The same nonce from the same sender stays burnt even with a fresh timestamp.
    let again = capabilities_with(&s, "", None, s.now(), &n).await;
    assert_auth_error(&again, "NONCE_REUSED");
    s.gw.stop().await;
}

#[tokio::test]
async fn timestamps_outside_the_window_are_rejected() {
    let s = start(|_| {}).await;
    let stale = capabilities_with(&s, "", None, s.now() - 301, &nonce()).await;
    assert_auth_error(&stale, "TIMESTAMP_EXPIRED");
    // 301 s ahead becomes 300 s if the clock ticks mid-request: retry until it did not.
    let future = loop {
        let signed_at = s.now();
        let reply = capabilities_with(&s, "", None, signed_at + 301, &nonce()).await;
        if s.now() == signed_at {
            break reply;
        }
    };
    assert_auth_error(&future, "TIMESTAMP_EXPIRED");
    // Inside the window (with margin for the second ticking) both ways is fine.
    let early = capabilities_with(&s, "", None, s.now() - 290, &nonce()).await;
    assert_eq!(early.status, 200);
    let late = capabilities_with(&s, "", None, s.now() + 290, &nonce()).await;
    assert_eq!(late.status, 200);
    // The window follows the gateway's clock, not the wall clock.
    let signed_at = s.now();
    s.clock.advance(400);
    let moved = capabilities_with(&s, "", None, signed_at, &nonce()).await;
    assert_auth_error(&moved, "TIMESTAMP_EXPIRED");
    s.gw.stop().await;
}

#[tokio::test]
async fn signature_covers_base_path_and_query() {
    let s = start(|_| {}).await;
    // Signed without the /opencharge base path.
    let no_base = capabilities_with(&s, "", Some("/capabilities"), s.now(), &nonce()).await;
    assert_auth_error(&no_base, "INVALID_SIGNATURE");
    // Sent with a query, signed without it.
    let no_query = capabilities_with(
        &s,
        "?partner=1",
        Some("/opencharge/capabilities"),
        s.now(),
        &nonce(),
    )
    .await;
    assert_auth_error(&no_query, "INVALID_SIGNATURE");
    // Signed with the exact target, query included.
    let exact = capabilities_with(&s, "?partner=1", None, s.now(), &nonce()).await;
    assert_eq!(exact.status, 200);
    // The method is covered too.
    let url = s.url("/capabilities");
    let headers = oc_headers(
        &s.merchant,
        MERCHANT,
        "POST",
        &target_of(&url),
        b"",
        s.now(),
        &nonce(),
    );
    let wrong_method = send(&s.http, "GET", &url, &headers, None).await;
    assert_auth_error(&wrong_method, "INVALID_SIGNATURE");
    s.gw.stop().await;
}

#[tokio::test]
async fn body_changed_after_signing_is_rejected() {
    let s = start(|_| {}).await;
    let url = s.url("/checkout/create");
    let signed = br#"{"merchantOcid":500,"order":{}}"#;
    let sent = br#"{"merchantOcid":501,"order":{}}"#;
    let headers = oc_headers(
        &s.merchant,
        MERCHANT,
        "POST",
        &target_of(&url),
        signed,
        s.now(),
        &nonce(),
    );
    let changed = send(&s.http, "POST", &url, &headers, Some(sent)).await;
    assert_auth_error(&changed, "INVALID_SIGNATURE");

    // Whitespace is part of the bytes: re-serialising is not allowed either.
    let spaced = br#"{"merchantOcid": 500, "order": {}}"#;
    let headers = oc_headers(
        &s.merchant,
        MERCHANT,
        "POST",
        &target_of(&url),
        signed,
        s.now(),
        &nonce(),
    );
    let reformatted = send(&s.http, "POST", &url, &headers, Some(spaced)).await;
    assert_auth_error(&reformatted, "INVALID_SIGNATURE");

    // Control: the same (invalid) body signed correctly passes auth and fails validation.
    let headers = oc_headers(
        &s.merchant,
        MERCHANT,
        "POST",
        &target_of(&url),
        sent,
        s.now(),
        &nonce(),
    );
    let passed_auth = send(&s.http, "POST", &url, &headers, Some(sent)).await;
    assert_eq!(
        passed_auth.status,
        400,
        "{}",
        String::from_utf8_lossy(&passed_auth.body)
    );
    passed_auth.assert_signed(200, &s.gateway_key(), s.now());
    s.gw.stop().await;
}

#[tokio::test]
async fn unknown_ocid_wrong_key_and_unavailable_metadata() {
    let s = start(|c| {
        // Port 9 (discard) is closed on loopback: the fetch fails.
        c.directory.push(DirectoryEntry {
            ocid: 600,
            metadata_url: Some("http://127.0.0.1:9/metadata.json".into()),
            metadata: None,
        });
    })
    .await;
    let url = s.url("/capabilities");
    let path = target_of(&url);

    let headers = oc_headers(&s.merchant, 999, "GET", &path, b"", s.now(), &nonce());
    assert_auth_error(
        &send(&s.http, "GET", &url, &headers, None).await,
        "UNKNOWN_OCID",
    );

    let impostor = PrivateKey::generate();
    let headers = oc_headers(&impostor, MERCHANT, "GET", &path, b"", s.now(), &nonce());
    assert_auth_error(
        &send(&s.http, "GET", &url, &headers, None).await,
        "INVALID_SIGNATURE",
    );

    let headers = oc_headers(&s.merchant, 600, "GET", &path, b"", s.now(), &nonce());
    let unavailable = send(&s.http, "GET", &url, &headers, None).await;
    assert_eq!(
        (unavailable.status, unavailable.code().as_str()),
        (502, "METADATA_UNAVAILABLE")
    );
    unavailable.assert_signed(200, &s.gateway_key(), s.now());
    s.gw.stop().await;
}

#[tokio::test]
async fn missing_and_malformed_headers_are_rejected() {
    let s = start(|_| {}).await;
    let url = s.url("/capabilities");
    let path = target_of(&url);
    let good = oc_headers(&s.merchant, MERCHANT, "GET", &path, b"", s.now(), &nonce());

    let none = send(&s.http, "GET", &url, &[], None).await;
    assert_auth_error(&none, "INVALID_SIGNATURE");
    none.assert_signed(200, &s.gateway_key(), s.now());

    for skip in 0..good.len() {
        let partial: Vec<_> = good
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, h)| h.clone())
            .collect();
        let reply = send(&s.http, "GET", &url, &partial, None).await;
        assert_auth_error(&reply, "INVALID_SIGNATURE");
        assert!(
            String::from_utf8_lossy(&reply.body).contains(good[skip].0),
            "message names the missing header: {}",
            String::from_utf8_lossy(&reply.body)
        );
    }

    let replace = |name: &str, value: &str| -> Vec<(&'static str, String)> {
        good.iter()
            .map(|(n, v)| {
                (
                    *n,
                    if *n == name {
                        value.to_string()
                    } else {
                        v.clone()
                    },
                )
            })
            .collect()
    };
    for (name, value) in [
        ("X-OC-ID", "abc"),
        ("X-OC-ID", "-5"),
        ("X-OC-Timestamp", "12.5"),
        ("X-OC-Timestamp", "now"),
        ("X-OC-Nonce", "bad nonce!"),
        ("X-OC-Nonce", &"n".repeat(129)),
        ("X-OC-Signature", "zz"),
        ("X-OC-Signature", &"0".repeat(130)),
    ] {
        let reply = send(&s.http, "GET", &url, &replace(name, value), None).await;
        assert_auth_error(&reply, "INVALID_SIGNATURE");
    }

    // A repeated auth header is ambiguous and rejected.
    let mut doubled = oc_headers(&s.merchant, MERCHANT, "GET", &path, b"", s.now(), &nonce());
    doubled.push(("X-OC-Nonce", nonce()));
    assert_auth_error(
        &send(&s.http, "GET", &url, &doubled, None).await,
        "INVALID_SIGNATURE",
    );

    // Header names are case-insensitive.
    let lower: Vec<(&str, String)> =
        oc_headers(&s.merchant, MERCHANT, "GET", &path, b"", s.now(), &nonce())
            .into_iter()
            .map(|(n, v)| match n {
                "X-OC-ID" => ("x-oc-id", v),
                "X-OC-Timestamp" => ("x-oc-timestamp", v),
                "X-OC-Nonce" => ("x-oc-nonce", v),
                _ => ("x-oc-signature", v),
            })
            .collect();
    assert_eq!(send(&s.http, "GET", &url, &lower, None).await.status, 200);
    s.gw.stop().await;
}

#[tokio::test]
async fn every_response_is_signed_and_own_metadata_resolves() {
    let s = start(|c| c.accepts = vec![100]).await;
    let key = s.gateway_key();

    let metadata = send(&s.http, "GET", &s.url("/metadata.json"), &[], None).await;
    assert_eq!(metadata.status, 200);
    metadata.assert_signed(200, &key, s.now());
    let published = Party::from_metadata_bytes(200, &metadata.body).unwrap();
    let own = s.gw.state.resolver.resolve(200).await.unwrap();
    assert_eq!(published, own);
    assert_eq!(own.public_key, key);
    assert_eq!(own.endpoint.as_deref(), Some(s.gw.endpoint()));
    assert_eq!(own.accepts, vec![200, 100]);
    assert_eq!(
        metadata.json(),
        build_own_metadata(&s.gw.state.config, &s.gw.state.key, s.gw.endpoint())
    );

    let not_found = send(&s.http, "GET", &s.url("/orders/nope/status"), &[], None).await;
    not_found.assert_signed(200, &key, s.now());

    // A tampered body or status does not verify.
    let mut tampered = Reply {
        status: metadata.status,
        headers: metadata.headers.clone(),
        body: Bytes::from(metadata.body.iter().rev().copied().collect::<Vec<u8>>()),
    };
    let auth =
        ResponseAuth::from_headers(|n| tampered.headers.get(n).and_then(|v| v.to_str().ok()))
            .unwrap();
    assert!(auth
        .verify(&key, 200, &tampered.body, s.now(), VerifyOptions::STRICT)
        .is_err());
    tampered.body = metadata.body.clone();
    assert!(auth
        .verify(&key, 201, &tampered.body, s.now(), VerifyOptions::STRICT)
        .is_err());
    s.gw.stop().await;
}

// ------------------------------------------------------------------------------------------
// device (app API) authentication
// ------------------------------------------------------------------------------------------

fn device_id_of(key: &PrivateKey) -> String {
    format!(
        "dev_{}",
        &sha256_hex(key.public_key().to_hex().as_bytes())[..32]
    )
}

async fn register_device(s: &Setup, key: &PrivateKey, code: &str) -> String {
    let store = &s.gw.state.store;
    let now = s.now();
    let account = store.create_account("user", "Alice", now).await.unwrap();
    let code_hash = sha256_hex(code.as_bytes());
    store
        .create_enrollment(&account.id, &code_hash, now + 600, now)
        .await
        .unwrap();
    let id = device_id_of(key);
    store
        .register_device(&code_hash, &id, &key.public_key().to_hex(), now)
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn device_requests_are_authenticated() {
    let s = start(|_| {}).await;
    let device_key = PrivateKey::generate();
    let device = register_device(&s, &device_key, "enroll-1").await;
    let url = s.url("/app/balance");
    let path = target_of(&url);

    let headers = device_auth_headers(&device_key, &device, "GET", &path, b"", s.now());
    let ok = send(&s.http, "GET", &url, &headers, None).await;
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    ok.assert_signed(200, &s.gateway_key(), s.now());
    assert_auth_error(
        &send(&s.http, "GET", &url, &headers, None).await,
        "NONCE_REUSED",
    );

    let stale = device_auth_headers(&device_key, &device, "GET", &path, b"", s.now() - 301);
    assert_auth_error(
        &send(&s.http, "GET", &url, &stale, None).await,
        "TIMESTAMP_EXPIRED",
    );

    let wrong_key =
        device_auth_headers(&PrivateKey::generate(), &device, "GET", &path, b"", s.now());
    assert_auth_error(
        &send(&s.http, "GET", &url, &wrong_key, None).await,
        "INVALID_SIGNATURE",
    );

    let stranger = PrivateKey::generate();
    let unknown = device_auth_headers(
        &stranger,
        &device_id_of(&stranger),
        "GET",
        &path,
        b"",
        s.now(),
    );
    let reply = send(&s.http, "GET", &url, &unknown, None).await;
    assert_auth_error(&reply, "INVALID_SIGNATURE");
    assert!(String::from_utf8_lossy(&reply.body).contains("unknown or inactive device"));

    let no_base = device_auth_headers(&device_key, &device, "GET", "/app/balance", b"", s.now());
    assert_auth_error(
        &send(&s.http, "GET", &url, &no_base, None).await,
        "INVALID_SIGNATURE",
    );

    // Opencharge peer headers do not authenticate on the app API.
    let peer = oc_headers(&s.merchant, MERCHANT, "GET", &path, b"", s.now(), &nonce());
    assert_auth_error(
        &send(&s.http, "GET", &url, &peer, None).await,
        "INVALID_SIGNATURE",
    );

    // The body is covered.
    let sessions = s.url("/app/sessions");
    let headers = device_auth_headers(
        &device_key,
        &device,
        "POST",
        &target_of(&sessions),
        b"{}",
        s.now(),
    );
    let changed = send(&s.http, "POST", &sessions, &headers, Some(b"{ }")).await;
    assert_auth_error(&changed, "INVALID_SIGNATURE");

    // A malformed device id never reaches the store.
    let mut bad_id = device_auth_headers(&device_key, &device, "GET", &path, b"", s.now());
    bad_id[0] = (HEADER_DEVICE, "dev 1/../x".into());
    assert_auth_error(
        &send(&s.http, "GET", &url, &bad_id, None).await,
        "INVALID_SIGNATURE",
    );

    // After rotation the old key stops working and the new one works.
    let new_key = PrivateKey::generate();
    let new_device = device_id_of(&new_key);
    assert!(s
        .gw
        .state
        .store
        .rotate_device(
            &device,
            &new_device,
            &new_key.public_key().to_hex(),
            s.now()
        )
        .await
        .unwrap());
    let old = device_auth_headers(&device_key, &device, "GET", &path, b"", s.now());
    assert_auth_error(
        &send(&s.http, "GET", &url, &old, None).await,
        "INVALID_SIGNATURE",
    );
    let new = device_auth_headers(&new_key, &new_device, "GET", &path, b"", s.now());
    assert_eq!(send(&s.http, "GET", &url, &new, None).await.status, 200);
    s.gw.stop().await;
}

// ------------------------------------------------------------------------------------------
// OCID directory
// ------------------------------------------------------------------------------------------

fn resolver_http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn static_entries_with_bad_signatures_or_layouts_are_startup_errors() {
    let dir = tempfile::tempdir().unwrap();
    let key = PrivateKey::generate();
    let clock: Arc<dyn Clock> = Arc::new(OffsetClock::default());

    let mut tampered = merchant_metadata(MERCHANT, "Shop", &key, "https://shop.example", &[200]);
    tampered["config"]["settlement"]["accepts"] = json!([200, 666]);
    let mut signed_by_other =
        merchant_metadata(MERCHANT, "Shop", &key, "https://shop.example", &[200]);
    signed_by_other["signature"] =
        json!(sign_object(&PrivateKey::generate(), &signed_by_other["config"]).unwrap());
    let flat = json!({
        "opencharge": "0.1", "name": "Old", "publicKey": key.public_key().to_hex(),
        "endpoint": "https://old.example", "capabilities": ["transfer.webhook"]
    });
    for (label, metadata) in [
        ("tampered", tampered),
        ("other key", signed_by_other),
        ("flat", flat),
    ] {
        let mut config = gateway_config(dir.path());
        config.directory.push(DirectoryEntry {
            ocid: MERCHANT,
            metadata_url: None,
            metadata: Some(metadata),
        });
        let err = DirectoryResolver::new(&config, resolver_http(), clock.clone())
            .err()
            .unwrap_or_else(|| panic!("{label} metadata accepted"));
        assert!(matches!(err, ResolveError::Invalid(_)), "{label}: {err}");
    }

    let mut config = gateway_config(dir.path());
    config.allow_loopback_http = false;
    config.directory.push(DirectoryEntry {
        ocid: MERCHANT,
        metadata_url: Some("http://127.0.0.1:9/metadata.json".into()),
        metadata: None,
    });
    assert!(matches!(
        DirectoryResolver::new(&config, resolver_http(), clock.clone()),
        Err(ResolveError::Invalid(_))
    ));

    // The gateway refuses to start with such a directory.
    let mut config = gateway_config(dir.path());
    let mut bad = merchant_metadata(MERCHANT, "Shop", &key, "https://shop.example", &[200]);
    bad["config"]["endpoint"] = json!("https://evil.example");
    config.directory.push(DirectoryEntry {
        ocid: MERCHANT,
        metadata_url: None,
        metadata: Some(bad),
    });
    assert!(Gateway::start(config).await.is_err());
}

/// A loopback metadata host: `/m/{ocid}/metadata.json`, counting fetches per OCID.
struct MetadataHost {
    base: String,
    hits: Arc<Mutex<HashMap<u64, usize>>>,
    keys: Arc<HashMap<u64, PrivateKey>>,
}

impl MetadataHost {
    async fn start() -> MetadataHost {
        let keys: Arc<HashMap<u64, PrivateKey>> =
            Arc::new((500..=506).map(|o| (o, PrivateKey::generate())).collect());
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let app = Router::new()
            .route("/m/{ocid}/metadata.json", get(serve_metadata))
            .with_state((keys.clone(), hits.clone()));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        MetadataHost {
            base: format!("http://{addr}"),
            hits,
            keys,
        }
    }

    fn hits(&self, ocid: u64) -> usize {
        self.hits.lock().unwrap().get(&ocid).copied().unwrap_or(0)
    }
}

type HostState = (
    Arc<HashMap<u64, PrivateKey>>,
    Arc<Mutex<HashMap<u64, usize>>>,
);

async fn serve_metadata(State((keys, hits)): State<HostState>, Path(ocid): Path<u64>) -> Response {
    *hits.lock().unwrap().entry(ocid).or_default() += 1;
    let Some(key) = keys.get(&ocid) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let good = merchant_metadata(
        ocid,
        &format!("Party {ocid}"),
        key,
        "https://p.example/oc",
        &[200],
    );
    match ocid {
        // 502: signature over another config.
        502 => {
            let mut doc = good;
            doc["config"]["endpoint"] = json!("https://evil.example/oc");
            axum::Json(doc).into_response()
        }
        503 => (StatusCode::FOUND, [("location", "/m/500/metadata.json")]).into_response(),
        504 => {
            let mut doc = good;
            doc["profile"] = json!("x".repeat(70 * 1024));
            axum::Json(doc).into_response()
        }
        505 => axum::Json(json!({
            "opencharge": "0.1", "name": "Flat", "publicKey": key.public_key().to_hex(),
            "endpoint": "https://flat.example", "capabilities": []
        }))
        .into_response(),
        506 => (StatusCode::SERVICE_UNAVAILABLE, "down").into_response(),
        _ => axum::Json(good).into_response(),
    }
}

#[tokio::test]
async fn http_metadata_is_fetched_verified_and_cached() {
    let host = MetadataHost::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = gateway_config(dir.path());
    // An endpoint-style URL gets /metadata.json appended.
    config.directory.push(DirectoryEntry {
        ocid: 500,
        metadata_url: Some(format!("{}/m/500", host.base)),
        metadata: None,
    });
    config.metadata_url_template = Some(format!("{}/m/{{ocid}}/metadata.json", host.base));
    let clock = Arc::new(OffsetClock::default());
    let resolver = DirectoryResolver::new(&config, resolver_http(), clock.clone()).unwrap();

    let party = resolver.resolve(500).await.unwrap();
    assert_eq!(party.public_key, host.keys[&500].public_key());
    assert_eq!(party.name, "Party 500");
    assert_eq!(party.endpoint.as_deref(), Some("https://p.example/oc"));
    assert_eq!(party.accepts, vec![200]);
    assert_eq!(resolver.resolve(500).await.unwrap(), party);
    assert_eq!(host.hits(500), 1, "second lookup served from cache");
    clock.advance(299);
    resolver.resolve(500).await.unwrap();
    assert_eq!(host.hits(500), 1, "still fresh at 299 s");
    clock.advance(2);
    resolver.resolve(500).await.unwrap();
    assert_eq!(host.hits(500), 2, "refetched after 5 minutes");

    // Template lookups.
    assert_eq!(
        resolver.resolve(501).await.unwrap().public_key,
        host.keys[&501].public_key()
    );
    assert_eq!(resolver.resolve(777).await, Err(ResolveError::Unknown(777)));
    let cases = [
        (502, "bad config signature"),
        (503, "redirect"),
        (504, "larger than 64 KiB"),
        (505, "flat layout"),
        (506, "503 from the host"),
    ];
    for (ocid, label) in cases {
        let err = resolver.resolve(ocid).await.unwrap_err();
        let expect_invalid = matches!(ocid, 502 | 505);
        assert_eq!(
            matches!(err, ResolveError::Invalid(_)),
            expect_invalid,
            "{label}: {err}"
        );
        assert!(!matches!(err, ResolveError::Unknown(_)), "{label}: {err}");
    }
    // Failures are not cached: each lookup asks again.
    resolver.resolve(506).await.unwrap_err();
    assert_eq!(host.hits(506), 2);

    // Without allow_loopback_http, plain http is refused without a request.
    config.allow_loopback_http = false;
    config.directory.clear();
    let strict = DirectoryResolver::new(&config, resolver_http(), clock.clone()).unwrap();
    let before = host.hits(501);
    assert!(matches!(
        strict.resolve(501).await,
        Err(ResolveError::Unavailable(_))
    ));
    assert_eq!(host.hits(501), before);
}

#[tokio::test]
async fn caller_resolved_over_http_can_authenticate() {
    let host = MetadataHost::start().await;
    let s = start(|c| {
        c.metadata_url_template = Some(format!("{}/m/{{ocid}}/metadata.json", host.base));
    })
    .await;
    let url = s.url("/capabilities");
    let key = &host.keys[&501];
    for _ in 0..3 {
        let headers = oc_headers(key, 501, "GET", &target_of(&url), b"", s.now(), &nonce());
        assert_eq!(send(&s.http, "GET", &url, &headers, None).await.status, 200);
    }
    assert_eq!(host.hits(501), 1);
    // A caller whose metadata is invalid gets 502 METADATA_UNAVAILABLE.
    let headers = oc_headers(
        &host.keys[&502],
        502,
        "GET",
        &target_of(&url),
        b"",
        s.now(),
        &nonce(),
    );
    let reply = send(&s.http, "GET", &url, &headers, None).await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (502, "METADATA_UNAVAILABLE")
    );
    s.gw.stop().await;
}

// ------------------------------------------------------------------------------------------
// webhook queue
// ------------------------------------------------------------------------------------------

/// A proof signed by the gateway, as the settlement code would enqueue it.
fn proof_body(gw_key: &PrivateKey, txid: &str, now: i64) -> String {
    let proof = json!({
        "txid": txid,
        "issuer": 200,
        "from": {"ocid": 200, "reference": "user_1"},
        "to": {"ocid": MERCHANT, "reference": format!("ord_{txid}")},
        "amount": "12.50",
        "currency": "USD",
        "timestamp": now,
    });
    let signature = sign_object(gw_key, &proof).unwrap();
    json!({"proof": proof, "signature": signature}).to_string()
}

async fn enqueue(s: &Setup, txid: &str, url: &str) -> Webhook {
    let state = &s.gw.state;
    let body = proof_body(&state.key, txid, s.now());
    state
        .store
        .enqueue_webhook(txid, MERCHANT, url, &body, s.now())
        .await
        .unwrap()
}

async fn wait_for(
    gw: &RunningGateway,
    txid: &str,
    what: &str,
    pred: impl Fn(&Webhook) -> bool,
) -> Webhook {
    for _ in 0..500 {
        if let Some(w) = gw.state.store.webhook_by_txid(txid).await.unwrap() {
            if pred(&w) {
                return w;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let last = gw.state.store.webhook_by_txid(txid).await.unwrap();
    panic!("webhook {txid} never reached {what}: {last:?}");
}

fn received_txids(receiver: &WebhookReceiver, txid: &str) -> usize {
    receiver
        .received()
        .iter()
        .filter(|b| b.pointer("/proof/txid").and_then(Value::as_str) == Some(txid))
        .count()
}

#[tokio::test]
async fn receiver_down_keeps_webhook_pending_with_backoff() {
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.set_down(true);
    let s = start(|_| {}).await;
    let queued = enqueue(&s, "tx_down", &receiver.url).await;
    assert_eq!((queued.status.as_str(), queued.attempts), ("pending", 0));

    let after = wait_for(&s.gw, "tx_down", "one attempt", |w| w.attempts >= 1).await;
    assert_eq!(after.status, "pending");
    assert_eq!(after.attempts, 1);
    assert!(
        after.next_attempt_at >= s.now() + 55,
        "first retry after ~60 s: {after:?}"
    );
    assert!(
        after
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("503"),
        "{after:?}"
    );

    // Not retried before it is due, however often the worker runs.
    deliver_now(&s.gw.state).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let still =
        s.gw.state
            .store
            .webhook_by_txid("tx_down")
            .await
            .unwrap()
            .unwrap();
    assert_eq!(still.attempts, 1);

    // Due again after the first delay: a second attempt, the next delay is longer.
    s.clock.advance(61);
    let second = wait_for(&s.gw, "tx_down", "two attempts", |w| w.attempts >= 2).await;
    assert_eq!(second.status, "pending");
    assert!(
        second.next_attempt_at >= s.now() + 295,
        "second retry after ~300 s: {second:?}"
    );
    assert_eq!(received_txids(&receiver, "tx_down"), 0);
    s.gw.stop().await;
}

#[tokio::test]
async fn webhook_survives_restart_and_is_delivered_exactly_once() {
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.set_down(true);
    let home = GatewayHome::create().await.unwrap();
    let merchant = PrivateKey::generate();
    let mut config = home.config();
    config.directory.push(merchant_entry(&merchant));

    let clock = Arc::new(OffsetClock::default());
    let first = Gateway::start_with_clock(config.clone(), clock.clone())
        .await
        .unwrap();
    let key_hex = first.public_key_hex().to_string();
    let body = proof_body(&first.state.key, "tx_restart", clock.now());
    first
        .state
        .store
        .enqueue_webhook("tx_restart", MERCHANT, &receiver.url, &body, clock.now())
        .await
        .unwrap();
    wait_for(&first, "tx_restart", "one attempt", |w| w.attempts >= 1).await;
    first.stop().await;

    receiver.set_down(false);
    let clock = Arc::new(OffsetClock::default());
    let second = Gateway::start_with_clock(config, clock.clone())
        .await
        .unwrap();
    assert_eq!(
        second.public_key_hex(),
        key_hex,
        "same key file, same identity"
    );
    // Still waiting for its retry time after the restart.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(received_txids(&receiver, "tx_restart"), 0);

    clock.advance(61);
    let delivered = wait_for(&second, "tx_restart", "delivered", |w| {
        w.status == "delivered"
    })
    .await;
    assert_eq!(delivered.attempts, 2);
    // Keep the worker running well past every retry delay: nothing is sent again.
    clock.advance(7 * 86_400);
    deliver_now(&second.state).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(received_txids(&receiver, "tx_restart"), 1);
    let got = receiver.received();
    let sent: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(got[0], sent, "the stored body is delivered verbatim");
    second.stop().await;
}

/// A receiver that answers `{"status":"rejected"}` and checks each request's `X-OC-*`
/// signature against the gateway's key.
#[derive(Clone)]
struct RejectingReceiver {
    hits: Arc<Mutex<Vec<bool>>>,
    key: PublicKey,
    clock: Arc<OffsetClock>,
}

async fn reject(State(r): State<RejectingReceiver>, headers: HeaderMap, body: Bytes) -> Response {
    let verified = RequestAuth::from_headers(|n| headers.get(n).and_then(|v| v.to_str().ok()))
        .ok()
        .filter(|auth| auth.ocid == 200)
        .is_some_and(|auth| {
            auth.verify(
                &r.key,
                "POST",
                "/hook/transfer/webhook",
                &body,
                r.clock.now(),
                VerifyOptions::STRICT,
            )
            .is_ok()
        });
    r.hits.lock().unwrap().push(verified);
    let txid = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.pointer("/proof/txid").cloned())
        .unwrap_or(Value::Null);
    axum::Json(json!({"status": "rejected", "txid": txid, "message": "unknown order"}))
        .into_response()
}

#[tokio::test]
async fn rejected_webhook_is_final_and_requests_are_signed() {
    let s = start(|_| {}).await;
    let r = RejectingReceiver {
        hits: Arc::new(Mutex::new(Vec::new())),
        key: s.gateway_key(),
        clock: s.clock.clone(),
    };
    let app = Router::new()
        .route("/hook/transfer/webhook", post(reject))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    enqueue(
        &s,
        "tx_rej",
        &format!("http://{addr}/hook/transfer/webhook"),
    )
    .await;
    let done = wait_for(&s.gw, "tx_rej", "rejected", |w| w.status == "rejected").await;
    assert_eq!(done.attempts, 1);
    assert!(done
        .last_error
        .as_deref()
        .unwrap_or_default()
        .contains("unknown order"));
    s.clock.advance(30 * 86_400);
    deliver_now(&s.gw.state).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        *r.hits.lock().unwrap(),
        vec![true],
        "one signed request, never retried"
    );
    s.gw.stop().await;
}

#[tokio::test]
async fn webhook_fails_after_the_last_retry() {
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.set_down(true);
    let s = start(|c| c.webhook_retry_secs = vec![60, 120]).await;
    enqueue(&s, "tx_fail", &receiver.url).await;
    wait_for(&s.gw, "tx_fail", "attempt 1", |w| w.attempts == 1).await;
    s.clock.advance(61);
    let second = wait_for(&s.gw, "tx_fail", "attempt 2", |w| w.attempts == 2).await;
    assert_eq!(second.status, "pending");
    s.clock.advance(121);
    let last = wait_for(&s.gw, "tx_fail", "failed", |w| w.status == "failed").await;
    assert_eq!(last.attempts, 3);
    // Failed is final, even once the receiver is back.
    receiver.set_down(false);
    s.clock.advance(86_400);
    deliver_now(&s.gw.state).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(received_txids(&receiver, "tx_fail"), 0);

    // A URL that can never be called fails at once, without retries.
    enqueue(&s, "tx_bad_url", "http://shop.example/transfer/webhook").await;
    let bad = wait_for(&s.gw, "tx_bad_url", "failed", |w| w.status == "failed").await;
    assert_eq!(bad.attempts, 1);
    s.gw.stop().await;
}

#[tokio::test]
async fn concurrent_passes_send_each_webhook_once() {
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.set_down(true);
    let s = start(|_| {}).await;
    let txids: Vec<String> = (0..20).map(|i| format!("tx_many_{i}")).collect();
    for txid in &txids {
        enqueue(&s, txid, &receiver.url).await;
    }
    for txid in &txids {
        wait_for(&s.gw, txid, "one attempt", |w| w.attempts >= 1).await;
    }
    receiver.set_down(false);
    s.clock.advance(61);
    // The worker and eight manual passes race for the same due rows.
    futures_util::future::join_all((0..8).map(|_| deliver_now(&s.gw.state))).await;
    for txid in &txids {
        wait_for(&s.gw, txid, "delivered", |w| w.status == "delivered").await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for txid in &txids {
        assert_eq!(received_txids(&receiver, txid), 1, "{txid}");
    }
    s.gw.stop().await;
}

/// Decision 39: `X-OC-Signature` is lower-case hex without `0x`; an upper-case or prefixed
/// spelling of a valid signature is 401 `INVALID_SIGNATURE` naming the rule, and does not burn
/// the nonce (the lower-case request with the same nonce passes afterwards).
#[tokio::test]
async fn signature_hex_is_lower_case_without_prefix() {
    let s = start(|_| {}).await;
    let url = s.url("/capabilities");
    let n = nonce();
    let headers = oc_headers(
        &s.merchant,
        MERCHANT,
        "GET",
        &target_of(&url),
        b"",
        s.now(),
        &n,
    );
    let with_signature = |signature: String| -> Vec<(&'static str, String)> {
        headers
            .iter()
            .map(|(name, value)| match *name {
                "X-OC-Signature" => (*name, signature.clone()),
                _ => (*name, value.clone()),
            })
            .collect()
    };
    let signature = headers
        .iter()
        .find(|(name, _)| *name == "X-OC-Signature")
        .map(|(_, v)| v.clone())
        .unwrap();
    assert_eq!(signature, signature.to_lowercase());
    for (variant, rule) in [
        (signature.to_uppercase(), "upper-case"),
        (format!("0x{signature}"), "0x prefix"),
        (format!("0X{}", &signature[..128]), "0x prefix"),
    ] {
        let reply = send(&s.http, "GET", &url, &with_signature(variant), None).await;
        assert_auth_error(&reply, "INVALID_SIGNATURE");
        let message = reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(message.contains(rule), "{message}");
        reply.assert_signed(200, &s.gateway_key(), s.now());
    }
    // Lower case, 130 or 128 hex: accepted (the refused variants burnt no nonce).
    let ok = send(
        &s.http,
        "GET",
        &url,
        &with_signature(signature[..128].to_string()),
        None,
    )
    .await;
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    s.gw.stop().await;
}
