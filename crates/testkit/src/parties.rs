//! Stand-ins and configuration for parties around a gateway under test: the loopback gateway
//! configuration, signed party metadata, `X-OC-*`-signed requests, and a webhook receiver that
//! records proofs (moved here from the gateway crate, which no longer ships test helpers).

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use opencharge_gateway::config::UserOcidRange;
use opencharge_gateway::GatewayConfig;
use opencharge_peer::client::request_target;
use opencharge_protocol::auth::RequestAuth;
use opencharge_protocol::keys::PrivateKey;
use opencharge_protocol::signing::sign_object;
use serde_json::{json, Value};

/// A gateway configuration for tests: loopback on a free port, the database in `dir`, dev
/// mode and loopback HTTP allowed, OCID 200, user OCIDs 200001–200999
/// ([`UserOcidRange::dev_block`]), currencies USD, EUR and UGX, fast worker, and the metrics
/// listener on a free loopback port too.
pub fn gateway_config(dir: &Path) -> GatewayConfig {
    GatewayConfig {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        metrics_listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
        database: dir.join("gateway.sqlite3").into(),
        key_file: Some(dir.join("gateway.key")),
        worker_interval_ms: 50,
        dev_mode: true,
        allow_loopback_http: true,
        user_ocids: UserOcidRange::dev_block(GatewayConfig::default().ocid),
        ..GatewayConfig::default()
    }
}

/// Signed, config-nested metadata for a party (merchant, Merchant Gateway, partner) with the
/// given endpoint and accepted settlement OCIDs.
pub fn merchant_metadata(
    ocid: u64,
    name: &str,
    key: &PrivateKey,
    endpoint: &str,
    accepts: &[u64],
) -> Value {
    let config = json!({
        "publicKey": key.public_key().to_hex(),
        "endpoint": endpoint,
        "capabilities": ["orders.create", "orders.status", "transfer.webhook", "transfer.create"],
        "settlement": {"currencies": ["USD", "EUR", "UGX"], "accepts": accepts},
    });
    let signature = sign_object(key, &config).unwrap_or_default();
    json!({
        "opencharge": "0.1",
        "name": name,
        "profile": format!("Test party {ocid}"),
        "config": config,
        "signature": signature,
    })
}

/// Sends a request signed with `X-OC-*` headers: the signed path is the URL's exact path and
/// query, the body hash covers exactly the bytes sent.
pub async fn signed_request(
    http: &reqwest::Client,
    key: &PrivateKey,
    ocid: u64,
    method: &str,
    url: &str,
    body: Option<Vec<u8>>,
    now: i64,
) -> reqwest::Result<reqwest::Response> {
    let target = reqwest::Url::parse(url)
        .map(|u| request_target(&u))
        .unwrap_or_default();
    let bytes = body.unwrap_or_default();
    let nonce = opencharge_protocol::auth::generate_nonce();
    let mut request = http.request(
        reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET),
        url,
    );
    if let Ok(auth) = RequestAuth::sign(key, ocid, method, &target, &bytes, now, &nonce) {
        for (name, value) in auth.headers() {
            request = request.header(name, value);
        }
    }
    if !bytes.is_empty() {
        request = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bytes);
    }
    request.send().await
}

#[derive(Default)]
struct ReceiverState {
    received: Vec<Value>,
    down: bool,
}

/// A loopback HTTP server with `POST /transfer/webhook` that records every body it accepts,
/// answers `{"status":"accepted","txid":...}`, and can be switched "down" (503).
pub struct WebhookReceiver {
    /// Full URL of its `/transfer/webhook`.
    pub url: String,
    base: String,
    state: Arc<Mutex<ReceiverState>>,
    _server: tokio::task::JoinHandle<()>,
}

impl WebhookReceiver {
    /// Starts a receiver on 127.0.0.1 with a free port.
    pub async fn start() -> std::io::Result<WebhookReceiver> {
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let app = Router::new()
            .route("/transfer/webhook", post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(WebhookReceiver {
            url: format!("http://{addr}/transfer/webhook"),
            base: format!("http://{addr}"),
            state,
            _server: server,
        })
    }

    /// The URL prefix (the party's `config.endpoint`).
    pub fn endpoint(&self) -> String {
        self.base.clone()
    }

    /// Every body accepted so far, in arrival order.
    pub fn received(&self) -> Vec<Value> {
        self.state
            .lock()
            .map(|s| s.received.clone())
            .unwrap_or_default()
    }

    /// While down, every request gets 503 and nothing is recorded.
    pub fn set_down(&self, down: bool) {
        if let Ok(mut s) = self.state.lock() {
            s.down = down;
        }
    }
}

async fn receive(
    State(state): State<Arc<Mutex<ReceiverState>>>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let Ok(mut s) = state.lock() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(Value::Null));
    };
    if s.down {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": {"code": "UNAVAILABLE", "message": "receiver down"}})),
        );
    }
    let txid = body
        .pointer("/proof/txid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    s.received.push(body);
    (
        StatusCode::OK,
        Json(json!({"status": "accepted", "txid": txid})),
    )
}
