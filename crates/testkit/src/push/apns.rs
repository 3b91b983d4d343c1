//! A strict loopback APNs: an HTTP/2-only TLS server (ALPN `h2`, a certificate from a test CA)
//! that checks every header and field of Apple's provider API as the gateway must send it,
//! verifies the ES256 provider token with the public half of the `.p8` key it wrote, records
//! what it accepted and what it refused (and why), and answers in APNs's own shapes, with
//! scripted refusals per device token.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use opencharge_testkit::push::FakeApns;
//! let fake = FakeApns::start().await;
//! let config = fake.apns_config("com.example.wallet"); // the gateway's [push.apns]
//! # let _ = config;
//! let sent = fake.next_notification(std::time::Duration::from_secs(20)).await;
//! assert!(fake.rejections().is_empty());
//! # let _ = sent;
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use opencharge_gateway::config::ApnsConfig;
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use crate::tls::TestCa;

/// The team id of the fake's key (the provider token's `iss`).
pub const FAKE_APNS_TEAM_ID: &str = "TEAM123456";
/// The id of the fake's key (the provider token's `kid`).
pub const FAKE_APNS_KEY_ID: &str = "KEY1234567";
/// Largest payload APNs accepts for an alert, bytes.
pub const MAX_APNS_PAYLOAD: usize = 4096;
/// APNs refuses provider tokens older than this, seconds.
const MAX_PROVIDER_TOKEN_AGE: i64 = 3600;
/// Slack for a provider token's `iat` ahead of the fake's clock, seconds.
const CLOCK_SKEW: i64 = 60;

/// The alert text of each wake-up kind: fixed, with no amount or merchant.
const ALERTS: [(&str, &str, &str); 2] = [
    (
        "payment_request",
        "Payment request",
        "Open to review this payment.",
    ),
    (
        "payment_status",
        "Payment update",
        "Open to see this payment.",
    ),
];

/// A scripted refusal for the next request to one device token, in APNs's real shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApnsReply {
    /// 410 `{"reason":"Unregistered","timestamp":…}`: the app was removed from the device.
    Unregistered,
    /// 400 `{"reason":"BadDeviceToken"}`.
    BadDeviceToken,
    /// 429 `{"reason":"TooManyRequests"}` with `Retry-After: <retry_after_secs>`.
    TooManyRequests {
        /// The `Retry-After` header, seconds.
        retry_after_secs: u64,
    },
    /// 503 `{"reason":"ServiceUnavailable"}`.
    ServiceUnavailable,
    /// 403 `{"reason":"ExpiredProviderToken"}`: the sender must sign a new provider token.
    ExpiredProviderToken,
}

/// One notification the fake accepted (answered 200).
#[derive(Debug, Clone)]
pub struct ApnsNotification {
    /// The device token from the path `/3/device/<token>`.
    pub token: String,
    /// The request headers, lowercase names (HTTP/2 pseudo-headers are not headers here).
    pub headers: BTreeMap<String, String>,
    /// The body, parsed.
    pub payload: Value,
    /// The body exactly as received.
    pub body: String,
    /// The HTTP version of the request (`HTTP/2.0`).
    pub http_version: String,
    /// The protocol negotiated by TLS ALPN on the connection (`h2`).
    pub alpn: Option<String>,
    /// The `apns-id` the fake answered with.
    pub apns_id: String,
}

impl ApnsNotification {
    /// The whole body as JSON text: exactly the `userInfo` an iOS app hands to `handlePush`.
    pub fn payload_json(&self) -> String {
        self.body.clone()
    }

    /// A request header by lowercase name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The provider token (JWT) from `authorization: bearer <JWT>`.
    pub fn provider_token(&self) -> Option<&str> {
        self.header("authorization")?.strip_prefix("bearer ")
    }
}

/// The running fake. Dropping it stops the server and deletes its key and CA files.
pub struct FakeApns {
    shared: Arc<Shared>,
    port: u16,
    key_file: PathBuf,
    ca_file: PathBuf,
    task: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

struct Shared {
    public_key: DecodingKey,
    state: Mutex<State>,
    accepted: watch::Sender<usize>,
}

#[derive(Default)]
struct State {
    topics: HashSet<String>,
    notifications: Vec<ApnsNotification>,
    taken: usize,
    rejections: Vec<String>,
    tls_failures: Vec<String>,
    scripted: HashMap<String, VecDeque<ApnsReply>>,
    requests: usize,
    next_id: u64,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl FakeApns {
    /// [`FakeApns::try_start`] for tests: panics (with the cause) if the fake cannot start.
    pub async fn start() -> FakeApns {
        match FakeApns::try_start().await {
            Ok(fake) => fake,
            Err(e) => panic!("the fake APNs cannot start: {e:#}"),
        }
    }

    /// Generates a P-256 key (written as a `.p8` file) and a test CA whose certificate for
    /// `localhost` and `127.0.0.1` the server presents, and starts serving HTTP/2 over TLS on
    /// a free loopback port.
    pub async fn try_start() -> anyhow::Result<FakeApns> {
        let dir = tempfile::tempdir().context("cannot make the fake APNs directory")?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let key_file = dir.path().join(format!("AuthKey_{FAKE_APNS_KEY_ID}.p8"));
        std::fs::write(&key_file, key.serialize_pem()).context("cannot write the .p8 key")?;
        let public_key = DecodingKey::from_ec_der(key.public_key_raw());

        let ca = TestCa::new("Opencharge fake APNs CA")?;
        let ca_file = dir.path().join("fake-apns-ca.pem");
        std::fs::write(&ca_file, ca.pem()).context("cannot write the CA certificate")?;
        let identity = ca.issue(&["localhost", "127.0.0.1"])?;
        let mut tls = identity.server_config()?;
        tls.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(tls));

        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("cannot bind the fake APNs")?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            public_key,
            state: Mutex::new(State::default()),
            accepted: watch::channel(0).0,
        });
        let task = tokio::spawn(serve(listener, acceptor, shared.clone()));
        Ok(FakeApns {
            shared,
            port,
            key_file,
            ca_file,
            task,
            _dir: dir,
        })
    }

    /// `https://localhost:<port>`.
    pub fn endpoint(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    /// The loopback address served.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The `.p8` key file (PKCS#8 PEM, P-256).
    pub fn key_file(&self) -> &Path {
        &self.key_file
    }

    /// The test CA's certificate (PEM) that issued the server certificate.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// A `[push.apns]` for this fake with `topic` as the app's bundle id; the fake accepts
    /// `apns-topic` values given here and refuses any other with `TopicDisallowed`.
    pub fn apns_config(&self, topic: &str) -> ApnsConfig {
        self.shared.state().topics.insert(topic.to_string());
        ApnsConfig {
            team_id: FAKE_APNS_TEAM_ID.into(),
            key_id: FAKE_APNS_KEY_ID.into(),
            key_file: self.key_file.clone(),
            topic: topic.into(),
            endpoint: Some(self.endpoint()),
            ca_file: Some(self.ca_file.clone()),
        }
    }

    /// Every notification accepted so far, in order.
    pub fn notifications(&self) -> Vec<ApnsNotification> {
        self.shared.state().notifications.clone()
    }

    /// The next accepted notification not yet returned by this method, waiting up to
    /// `timeout` for it.
    pub async fn next_notification(&self, timeout: Duration) -> Option<ApnsNotification> {
        let mut accepted = self.shared.accepted.subscribe();
        let taken = self.shared.state().taken;
        tokio::time::timeout(timeout, accepted.wait_for(|n| *n > taken))
            .await
            .ok()?
            .ok()?;
        let mut state = self.shared.state();
        let next = state.notifications.get(state.taken).cloned()?;
        state.taken += 1;
        Some(next)
    }

    /// Every failed check so far, each naming the field and why (tests assert it is empty).
    pub fn rejections(&self) -> Vec<String> {
        self.shared.state().rejections.clone()
    }

    /// TLS handshakes that failed (a client refusing the certificate), with the error.
    pub fn tls_failures(&self) -> Vec<String> {
        self.shared.state().tls_failures.clone()
    }

    /// How many requests reached the fake (accepted, refused or scripted).
    pub fn requests(&self) -> usize {
        self.shared.state().requests
    }

    /// Answers the next request for `token` (after every check passed) with `reply` instead
    /// of 200. Several calls queue up, one reply per request.
    pub fn respond_to(&self, token: &str, reply: ApnsReply) {
        self.shared
            .state()
            .scripted
            .entry(token.to_string())
            .or_default()
            .push_back(reply);
    }
}

impl Drop for FakeApns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts connections: TLS with ALPN `h2` only, then an HTTP/2 server per connection.
async fn serve(listener: TcpListener, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let acceptor = acceptor.clone();
        let shared = shared.clone();
        connections.spawn(async move {
            let tls = match acceptor.accept(socket).await {
                Ok(tls) => tls,
                Err(e) => {
                    let text = e.to_string();
                    let no_h2 = e
                        .get_ref()
                        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                        .is_some_and(|e| *e == rustls::Error::NoApplicationProtocol);
                    let mut state = shared.state();
                    if no_h2 {
                        state.rejections.push(format!(
                            "TLS: the client did not offer ALPN h2 (APNs speaks HTTP/2 only): {text}"
                        ));
                    }
                    state.tls_failures.push(text);
                    return;
                }
            };
            let alpn = tls
                .get_ref()
                .1
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned());
            let service = hyper::service::service_fn(move |request| {
                let shared = shared.clone();
                let alpn = alpn.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(&shared, alpn, request).await) }
            });
            // A client that hangs up mid-stream just ends the connection.
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
}

/// One APNs refusal: status and reason.
struct Refusal {
    status: StatusCode,
    reason: &'static str,
}

fn refuse(status: u16, reason: &'static str) -> Refusal {
    Refusal {
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        reason,
    }
}

/// Collects every failed check: the first decides the answer, all are recorded.
#[derive(Default)]
struct Checks {
    failures: Vec<(Refusal, String)>,
}

impl Checks {
    fn fail(&mut self, refusal: Refusal, why: impl Into<String>) {
        self.failures.push((refusal, why.into()));
    }
}

async fn handle(
    shared: &Shared,
    alpn: Option<String>,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let apns_id = {
        let mut state = shared.state();
        state.requests += 1;
        state.next_id += 1;
        format!("6F1A2B3C-0000-4000-8000-{:012X}", state.next_id)
    };
    let (parts, body) = request.into_parts();
    let body = Limited::new(body, 64 * 1024).collect().await;
    let mut checks = Checks::default();

    if alpn.as_deref() != Some("h2") {
        checks.fail(
            refuse(400, "BadProtocol"),
            format!("TLS ALPN negotiated {alpn:?}, not h2"),
        );
    }
    if parts.version != Version::HTTP_2 {
        checks.fail(
            refuse(400, "BadProtocol"),
            format!("request over {:?}, not HTTP/2", parts.version),
        );
    }
    if parts.method != Method::POST {
        checks.fail(
            refuse(405, "MethodNotAllowed"),
            format!(":method is {}, not POST", parts.method),
        );
    }
    let token = check_path(parts.uri.path(), &mut checks);

    let mut headers = BTreeMap::new();
    for name in parts.headers.keys() {
        let values: Vec<_> = parts.headers.get_all(name).iter().collect();
        if values.len() > 1 && name.as_str().starts_with("apns-") {
            checks.fail(
                refuse(400, "DuplicateHeaders"),
                format!("header {name} appears {} times", values.len()),
            );
        }
        let value = String::from_utf8_lossy(values[0].as_bytes()).into_owned();
        headers.insert(name.as_str().to_string(), value);
    }
    let topics = shared.state().topics.clone();
    check_provider_token(shared, headers.get("authorization"), &mut checks);
    check_headers(&headers, &topics, &mut checks);

    let (payload, text) = match body {
        Ok(collected) => check_body(&collected.to_bytes(), &headers, &mut checks),
        Err(e) => {
            checks.fail(
                refuse(413, "PayloadTooLarge"),
                format!("body unreadable or far too large: {e}"),
            );
            (Value::Null, String::new())
        }
    };

    if let Some((refusal, _)) = checks.failures.first() {
        let answer = error_answer(refusal.status, refusal.reason, &apns_id, None);
        let mut state = shared.state();
        for (refusal, why) in checks.failures {
            state.rejections.push(format!(
                "{} {}: {why}",
                refusal.status.as_u16(),
                refusal.reason
            ));
        }
        return answer;
    }

    let mut state = shared.state();
    let scripted = state
        .scripted
        .get_mut(&token)
        .and_then(|replies| replies.pop_front());
    if let Some(reply) = scripted {
        return match reply {
            ApnsReply::Unregistered => error_answer(
                StatusCode::GONE,
                "Unregistered",
                &apns_id,
                Some(unix_millis()),
            ),
            ApnsReply::BadDeviceToken => {
                error_answer(StatusCode::BAD_REQUEST, "BadDeviceToken", &apns_id, None)
            }
            ApnsReply::TooManyRequests { retry_after_secs } => {
                let mut answer = error_answer(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TooManyRequests",
                    &apns_id,
                    None,
                );
                if let Ok(value) = retry_after_secs.to_string().parse() {
                    answer.headers_mut().insert("retry-after", value);
                }
                answer
            }
            ApnsReply::ServiceUnavailable => error_answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                &apns_id,
                None,
            ),
            ApnsReply::ExpiredProviderToken => error_answer(
                StatusCode::FORBIDDEN,
                "ExpiredProviderToken",
                &apns_id,
                None,
            ),
        };
    }
    state.notifications.push(ApnsNotification {
        token,
        headers,
        payload,
        body: text,
        http_version: format!("{:?}", parts.version),
        alpn,
        apns_id: apns_id.clone(),
    });
    let accepted = state.notifications.len();
    drop(state);
    shared.accepted.send_replace(accepted);
    let mut answer = Response::new(Full::new(Bytes::new()));
    if let Ok(value) = apns_id.parse() {
        answer.headers_mut().insert("apns-id", value);
    }
    answer
}

/// `/3/device/<token>` with a device token of hex digits; returns the token.
fn check_path(path: &str, checks: &mut Checks) -> String {
    let Some(token) = path.strip_prefix("/3/device/") else {
        checks.fail(
            refuse(404, "BadPath"),
            format!(":path {path:?} is not /3/device/<token>"),
        );
        return String::new();
    };
    if token.is_empty() {
        checks.fail(
            refuse(400, "MissingDeviceToken"),
            "no device token in :path",
        );
    } else if token.len() < 16
        || token.len() % 2 != 0
        || !token.bytes().all(|b| b.is_ascii_hexdigit())
    {
        checks.fail(
            refuse(400, "BadDeviceToken"),
            format!("device token {token:?} is not an even number (>= 16) of hex digits"),
        );
    }
    token.to_string()
}

/// `authorization: bearer <JWT>`: ES256, `kid` = the key id, signature by the `.p8` key,
/// claims exactly `iss` = the team id and `iat` no older than an hour.
fn check_provider_token(shared: &Shared, value: Option<&String>, checks: &mut Checks) {
    let Some(value) = value else {
        checks.fail(
            refuse(403, "MissingProviderToken"),
            "no authorization header",
        );
        return;
    };
    let Some(jwt) = value.strip_prefix("bearer ") else {
        checks.fail(
            refuse(403, "InvalidProviderToken"),
            format!("authorization {value:?} is not `bearer <JWT>`"),
        );
        return;
    };
    let invalid = || refuse(403, "InvalidProviderToken");
    let header = match jsonwebtoken::decode_header(jwt) {
        Ok(header) => header,
        Err(e) => {
            checks.fail(invalid(), format!("provider token header unreadable: {e}"));
            return;
        }
    };
    if header.alg != Algorithm::ES256 {
        checks.fail(
            invalid(),
            format!("provider token alg {:?}, not ES256", header.alg),
        );
        return;
    }
    if header.kid.as_deref() != Some(FAKE_APNS_KEY_ID) {
        checks.fail(
            invalid(),
            format!(
                "provider token kid {:?}, not {FAKE_APNS_KEY_ID:?}",
                header.kid
            ),
        );
    }
    let mut validation = Validation::new(Algorithm::ES256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = match jsonwebtoken::decode::<Value>(jwt, &shared.public_key, &validation) {
        Ok(data) => data.claims,
        Err(e) => {
            checks.fail(
                invalid(),
                format!("provider token not verified with the .p8 public key: {e}"),
            );
            return;
        }
    };
    let Some(claims) = claims.as_object() else {
        checks.fail(invalid(), "provider token claims are not an object");
        return;
    };
    let mut names: Vec<_> = claims.keys().map(String::as_str).collect();
    names.sort_unstable();
    if names != ["iat", "iss"] {
        checks.fail(
            invalid(),
            format!("provider token claims are {names:?}, not exactly iss and iat"),
        );
    }
    if claims.get("iss").and_then(Value::as_str) != Some(FAKE_APNS_TEAM_ID) {
        checks.fail(
            invalid(),
            format!(
                "provider token iss {:?}, not the team id {FAKE_APNS_TEAM_ID:?}",
                claims.get("iss")
            ),
        );
    }
    match claims.get("iat").and_then(Value::as_i64) {
        None => checks.fail(invalid(), "provider token iat is not an integer"),
        Some(iat) if unix_now() - iat > MAX_PROVIDER_TOKEN_AGE => checks.fail(
            refuse(403, "ExpiredProviderToken"),
            format!("provider token issued {} s ago", unix_now() - iat),
        ),
        Some(iat) if iat - unix_now() > CLOCK_SKEW => checks.fail(
            invalid(),
            format!("provider token issued {} s in the future", iat - unix_now()),
        ),
        Some(_) => {}
    }
}

/// The `apns-*` headers.
fn check_headers(
    headers: &BTreeMap<String, String>,
    topics: &HashSet<String>,
    checks: &mut Checks,
) {
    let get = |name: &str| headers.get(name).map(String::as_str);
    if get("apns-push-type") != Some("alert") {
        checks.fail(
            refuse(400, "InvalidPushType"),
            format!("apns-push-type {:?}, not \"alert\"", get("apns-push-type")),
        );
    }
    match get("apns-topic") {
        None => checks.fail(refuse(400, "MissingTopic"), "no apns-topic"),
        Some(topic) if !topics.contains(topic) => checks.fail(
            refuse(400, "TopicDisallowed"),
            format!("apns-topic {topic:?} is not the configured bundle id {topics:?}"),
        ),
        Some(_) => {}
    }
    match get("apns-collapse-id") {
        None => checks.fail(refuse(400, "BadCollapseId"), "no apns-collapse-id"),
        Some(id) if id.is_empty() || id.len() > 64 => checks.fail(
            refuse(400, "BadCollapseId"),
            format!("apns-collapse-id is {} bytes (1..=64)", id.len()),
        ),
        Some(_) => {}
    }
    if get("apns-priority") != Some("10") {
        checks.fail(
            refuse(400, "BadPriority"),
            format!("apns-priority {:?}, not \"10\"", get("apns-priority")),
        );
    }
    match get("apns-expiration").map(str::parse::<i64>) {
        Some(Ok(at)) if at > unix_now() => {}
        _ => checks.fail(
            refuse(400, "BadExpirationDate"),
            format!(
                "apns-expiration {:?} is not a future unix time",
                get("apns-expiration")
            ),
        ),
    }
}

/// The body: JSON of at most 4096 bytes, exactly `aps` (the fixed alert of its kind,
/// `mutable-content` 1, optional `sound`) and `opencharge` (exactly `type`, `sessionId`,
/// `eventId`, all strings, the session id equal to `apns-collapse-id`). Content rules of this
/// project that APNs itself does not have are refused with reason `BadPayload`.
fn check_body(
    body: &[u8],
    headers: &BTreeMap<String, String>,
    checks: &mut Checks,
) -> (Value, String) {
    let text = String::from_utf8_lossy(body).into_owned();
    if body.is_empty() {
        checks.fail(refuse(400, "PayloadEmpty"), "empty body");
        return (Value::Null, text);
    }
    if body.len() > MAX_APNS_PAYLOAD {
        checks.fail(
            refuse(413, "PayloadTooLarge"),
            format!("body is {} bytes (at most {MAX_APNS_PAYLOAD})", body.len()),
        );
    }
    let bad = || refuse(400, "BadPayload");
    let payload: Value = match serde_json::from_slice(body) {
        Ok(payload) => payload,
        Err(e) => {
            checks.fail(bad(), format!("body is not JSON: {e}"));
            return (Value::Null, text);
        }
    };
    let Some(top) = payload.as_object() else {
        checks.fail(bad(), "body is not a JSON object");
        return (payload, text);
    };
    let mut keys: Vec<_> = top.keys().map(String::as_str).collect();
    keys.sort_unstable();
    if keys != ["aps", "opencharge"] {
        checks.fail(
            bad(),
            format!("top-level keys {keys:?}, not exactly aps and opencharge"),
        );
    }

    let wake = top.get("opencharge").and_then(Value::as_object);
    let kind = wake.and_then(|w| w.get("type")).and_then(Value::as_str);
    match wake {
        None => checks.fail(bad(), "opencharge is missing or not an object"),
        Some(wake) => {
            let mut names: Vec<_> = wake.keys().map(String::as_str).collect();
            names.sort_unstable();
            if names != ["eventId", "sessionId", "type"] {
                checks.fail(
                    bad(),
                    format!("opencharge keys {names:?}, not exactly type, sessionId, eventId"),
                );
            }
            for name in ["type", "sessionId", "eventId"] {
                match wake.get(name).and_then(Value::as_str) {
                    Some(value) if !value.is_empty() => {}
                    _ => checks.fail(
                        bad(),
                        format!("opencharge.{name} is not a non-empty string"),
                    ),
                }
            }
            if !ALERTS.iter().any(|(k, _, _)| Some(*k) == kind) {
                checks.fail(
                    bad(),
                    format!("opencharge.type {kind:?} is not a wake-up kind"),
                );
            }
            if let Some(event) = wake.get("eventId").and_then(Value::as_str) {
                if !event.bytes().all(|b| b.is_ascii_digit()) {
                    checks.fail(
                        bad(),
                        format!("opencharge.eventId {event:?} is not decimal"),
                    );
                }
            }
            let session = wake.get("sessionId").and_then(Value::as_str);
            if session.is_some() && headers.get("apns-collapse-id").map(String::as_str) != session {
                checks.fail(
                    refuse(400, "BadCollapseId"),
                    format!(
                        "apns-collapse-id {:?} is not the session id {session:?}",
                        headers.get("apns-collapse-id")
                    ),
                );
            }
        }
    }

    let Some(aps) = top.get("aps").and_then(Value::as_object) else {
        checks.fail(bad(), "aps is missing or not an object");
        return (payload, text);
    };
    for name in aps.keys() {
        if !["alert", "mutable-content", "sound"].contains(&name.as_str()) {
            checks.fail(bad(), format!("aps.{name} is not expected in a wake-up"));
        }
    }
    if aps.get("mutable-content").and_then(Value::as_i64) != Some(1) {
        checks.fail(
            bad(),
            format!(
                "aps.mutable-content is {:?}, not 1 (the notification service extension would not run)",
                aps.get("mutable-content")
            ),
        );
    }
    if let Some(sound) = aps.get("sound") {
        if sound.as_str() != Some("default") {
            checks.fail(bad(), format!("aps.sound {sound}, not \"default\""));
        }
    }
    let alert = aps.get("alert").and_then(Value::as_object);
    let title = alert.and_then(|a| a.get("title")).and_then(Value::as_str);
    let body_text = alert.and_then(|a| a.get("body")).and_then(Value::as_str);
    match alert {
        None => checks.fail(bad(), "aps.alert is missing or not an object"),
        Some(alert) => {
            let mut names: Vec<_> = alert.keys().map(String::as_str).collect();
            names.sort_unstable();
            if names != ["body", "title"] {
                checks.fail(
                    bad(),
                    format!("aps.alert keys {names:?}, not exactly title and body"),
                );
            }
            // The fixed texts carry no amount and no merchant; anything else might.
            let expected = ALERTS.iter().find(|(k, _, _)| Some(*k) == kind);
            if let Some((_, want_title, want_body)) = expected {
                if title != Some(want_title) || body_text != Some(want_body) {
                    checks.fail(
                        bad(),
                        format!(
                            "aps.alert {title:?} / {body_text:?} is not the fixed text \
                             {want_title:?} / {want_body:?} (no amount or merchant in a push)"
                        ),
                    );
                }
            }
        }
    }
    (payload, text)
}

/// An APNs error answer: JSON `{"reason":…}` (and `timestamp` in milliseconds for 410s) with
/// an `apns-id` header.
fn error_answer(
    status: StatusCode,
    reason: &str,
    apns_id: &str,
    timestamp: Option<u128>,
) -> Response<Full<Bytes>> {
    let body = match timestamp {
        Some(at) => serde_json::json!({ "reason": reason, "timestamp": at as u64 }),
        None => serde_json::json!({ "reason": reason }),
    };
    let mut answer = Response::new(Full::new(Bytes::from(body.to_string())));
    *answer.status_mut() = status;
    answer.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = apns_id.parse() {
        answer.headers_mut().insert("apns-id", value);
    }
    answer
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn unix_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}
