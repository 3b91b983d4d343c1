//! Prometheus metrics: what the gateway counts while it serves ([`Metrics`]: requests by
//! route template and status with a latency histogram, completed payments by flow, open event
//! streams), what is read at scrape time (webhook and push queue depth and the nonce-store
//! size from the store, the push worker's counters), and the separate operations listener
//! (`metrics_listen`, default `127.0.0.1:9700`) that serves `GET /metrics` in the OpenMetrics
//! text format next to `/healthz` and `/readyz`.
//!
//! Route labels are the matched route templates (`/opencharge/orders/create/{session_id}`),
//! never the raw path, so no session id, token or other request data becomes a label; a
//! request that matched no route is counted under `unmatched`, and a non-standard method under
//! `other`: what a client sends can never grow the label set.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use opencharge_protocol::error_code::ErrorCode;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::GatewayError;
use crate::state::AppState;
use crate::store::Flow;

/// Path of the scrape endpoint on the metrics listener.
pub const METRICS_PATH: &str = "/metrics";
/// `Content-Type` of a scrape answer.
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The route label of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// Labels of the request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

/// Labels of the latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

/// Labels of the payment counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FlowLabels {
    flow: &'static str,
}

/// Labels of the push counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// Latency buckets, seconds: 1 ms to about 16 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The metrics a gateway updates while it serves (one per gateway, in its state).
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    payments: Family<FlowLabels, Counter>,
    third_party_failures: Family<OutcomeLabels, Counter>,
    open_streams: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let payments = Family::<FlowLabels, Counter>::default();
        let open_streams = Gauge::default();
        let third_party_failures = Family::<OutcomeLabels, Counter>::default();
        let mut registry = Registry::with_prefix("opencharge");
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from request to response headers, by method and route template",
            latency.clone(),
        );
        registry.register(
            "payments",
            "Payments completed (settled and proven) since start, by flow",
            payments.clone(),
        );
        registry.register(
            "third_party_failures",
            "Third-party settlement jobs given up and refunded since start, by outcome \
             (failed: no money moved at the provider; failed_reconcile: reconcile it)",
            third_party_failures.clone(),
        );
        registry.register(
            "event_streams_open",
            "App event streams (GET /app/events) open now",
            open_streams.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            payments,
            third_party_failures,
            open_streams,
        }
    }
}

impl Metrics {
    /// Counts one answered request and its latency under its route template.
    pub fn record_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let (method, route) = (method.to_string(), route.to_string());
        self.latency
            .get_or_create(&RouteLabels {
                method: method.clone(),
                route: route.clone(),
            })
            .observe(seconds);
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status,
            })
            .inc();
    }

    /// Counts one completed payment of `flow`.
    pub fn payment_completed(&self, flow: Flow) {
        self.payments
            .get_or_create(&FlowLabels {
                flow: flow.as_str(),
            })
            .inc();
    }

    /// Counts one third-party settlement job given up; `outcome` is its final state
    /// (`failed` or `failed_reconcile`).
    pub fn third_party_failed(&self, outcome: &'static str) {
        self.third_party_failures
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Counts an event stream as open until the returned guard is dropped.
    pub fn stream_opened(&self) -> OpenStream {
        self.open_streams.inc();
        OpenStream(self.open_streams.clone())
    }

    /// Event streams open now.
    pub fn open_streams(&self) -> i64 {
        self.open_streams.get()
    }
}

/// Held by an open event stream; dropping it (the stream ends or the client leaves)
/// decrements `opencharge_event_streams_open`.
#[derive(Debug)]
pub struct OpenStream(Gauge);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Middleware on the whole router: counts every answer under its matched route template.
pub async fn track_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method()).to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED.to_string(), |p| p.as_str().to_string());
    let response = next.run(req).await;
    state.metrics.record_request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// The `method` label: the standard methods by name, anything else `other` (a client inventing
/// methods must not grow the label set).
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The whole exposition: the live metrics and those read now (queue depths, nonce-store size
/// and push counters). Fails only when the store cannot be read.
pub async fn render(state: &AppState) -> Result<String, crate::store::StoreError> {
    let counts = state.store.ops_counts().await?;
    let mut now = Registry::with_prefix("opencharge");
    let gauge = |v: u64| ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX));
    now.register(
        "webhook_queue_pending",
        "Webhook deliveries waiting to be sent or retried",
        gauge(counts.pending_webhooks),
    );
    now.register(
        "push_queue_pending",
        "Push wake-ups waiting to be sent or retried",
        gauge(counts.pending_pushes),
    );
    now.register(
        "nonces_stored",
        "Rows in the nonce store (replay protection), not yet purged",
        gauge(counts.nonces),
    );
    let push = Family::<OutcomeLabels, Counter>::default();
    let c = &state.push_counters;
    for (outcome, value) in [
        ("sent", c.sent()),
        ("retried", c.retried()),
        ("dead", c.dead()),
        ("failed", c.failed()),
    ] {
        push.get_or_create(&OutcomeLabels { outcome }).inc_by(value);
    }
    now.register(
        "push_wakeups",
        "Push wake-up attempts since start by outcome: sent, retried, dead (token deleted), failed (given up)",
        push,
    );
    let mut text = String::new();
    encode_registry(&mut text, &state.metrics.registry)
        .and_then(|()| encode_registry(&mut text, &now))
        .and_then(|()| encode_eof(&mut text))
        .map_err(|_| crate::store::StoreError("cannot encode the metrics".into()))?;
    Ok(text)
}

/// `GET /metrics`.
async fn scrape(State(state): State<AppState>) -> Response {
    match render(&state).await {
        Ok(text) => ([(CONTENT_TYPE, CONTENT_TYPE_OPENMETRICS)], text).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "metrics scrape failed");
            GatewayError::new(
                ErrorCode::Other(crate::ops::health::NOT_READY.into()),
                format!("cannot read the queue sizes from the database: {e}"),
            )
            .with_status(503)
            .into_response()
        }
    }
}

/// Any other path on the metrics listener: 404 `NOT_FOUND`, enveloped.
async fn not_found(req: Request) -> GatewayError {
    GatewayError::new(
        ErrorCode::NotFound,
        format!(
            "no route {} on the metrics listener; it serves /metrics, /healthz and /readyz",
            req.uri().path()
        ),
    )
}

/// The metrics listener's router: `/metrics`, `/healthz`, `/readyz`, every answer signed.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(METRICS_PATH, get(scrape))
        .merge(crate::ops::health::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::sign_responses,
        ))
        .with_state(state)
}

/// The metrics listener, bound before the gateway starts so a taken port fails the start.
pub struct MetricsListener(Option<TcpListener>);

impl MetricsListener {
    /// Binds `addr` (`None`: no listener).
    pub async fn bind(addr: Option<SocketAddr>) -> std::io::Result<MetricsListener> {
        let Some(addr) = addr else {
            return Ok(MetricsListener(None));
        };
        match TcpListener::bind(addr).await {
            Ok(listener) => Ok(MetricsListener(Some(listener))),
            Err(e) => Err(std::io::Error::new(
                e.kind(),
                format!(
                    "cannot listen for metrics on {addr}: {e}; set metrics_listen (or \
                     --metrics-listen) to a free address, or to \"off\""
                ),
            )),
        }
    }

    /// The bound address, if any.
    pub fn local_addr(&self) -> std::io::Result<Option<SocketAddr>> {
        self.0.as_ref().map(TcpListener::local_addr).transpose()
    }

    /// Serves the metrics router until `stop` turns `true`.
    pub fn spawn(self, state: AppState, mut stop: watch::Receiver<bool>) -> Option<JoinHandle<()>> {
        let listener = self.0?;
        let app = router(state);
        Some(tokio::spawn(async move {
            let result = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|stop| *stop).await;
                })
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "metrics listener stopped with an error");
            }
        }))
    }
}

/// Serde form of `metrics_listen`: an address string (`"127.0.0.1:9700"`) or `"off"`.
pub mod listen_setting {
    use std::net::SocketAddr;

    use serde::{Deserialize, Deserializer, Serializer};

    /// The word that turns the metrics listener off.
    pub const OFF: &str = "off";

    /// Parses `"off"` or an address.
    pub fn parse(text: &str) -> Result<Option<SocketAddr>, String> {
        if text.trim().eq_ignore_ascii_case(OFF) {
            return Ok(None);
        }
        text.trim().parse().map(Some).map_err(|_| {
            format!(
                "metrics_listen must be an address like \"127.0.0.1:9700\" or \"off\", got {text:?}"
            )
        })
    }

    /// A parsed `--metrics-listen` value (`None`: off).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct ListenArg(pub Option<SocketAddr>);

    /// Parses a `--metrics-listen` value: `"off"` or an address.
    pub fn parse_arg(text: &str) -> Result<ListenArg, String> {
        parse(text).map(ListenArg)
    }

    /// Writes `"off"` or the address.
    pub fn serialize<S: Serializer>(
        value: &Option<SocketAddr>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(addr) => serializer.collect_str(addr),
            None => serializer.serialize_str(OFF),
        }
    }

    /// Reads `"off"` or an address.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<SocketAddr>, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).map_err(serde::de::Error::custom)
    }
}
