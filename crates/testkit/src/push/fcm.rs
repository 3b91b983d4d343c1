//! A strict loopback FCM: Google's OAuth2 token endpoint (the JWT bearer grant, its RS256
//! assertion verified with the service account's public key) and the FCM HTTP v1 send
//! endpoint, checking every header and field a wake-up must have. What it accepts is recorded
//! as an [`FcmMessage`]; every failed check is recorded with why and answered like FCM
//! (`400 INVALID_ARGUMENT`, `401 UNAUTHENTICATED`). Tests script refusals per token with
//! [`FakeFcm::respond_to`].

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use opencharge_gateway::config::FcmConfig;
use serde_json::{json, Map, Value};

use super::Journal;

/// The OAuth2 scope an FCM sender must ask for.
pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// The JWT bearer grant type (RFC 7523).
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The `@type` of FCM's error detail.
pub const FCM_ERROR_TYPE: &str = "type.googleapis.com/google.firebase.fcm.v1.FcmError";
/// The fake's Firebase project id.
pub const FAKE_PROJECT_ID: &str = "opencharge-push-test";
/// The wake-up kinds a `data.type` may name.
const KINDS: [&str; 2] = ["payment_request", "payment_status"];
/// Longest assertion lifetime Google accepts, seconds.
const MAX_ASSERTION_SECS: i64 = 3600;
/// Clock skew tolerated on the assertion's `iat`, seconds.
const SKEW_SECS: i64 = 60;

/// A message the fake FCM accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FcmMessage {
    /// `message.token`: the device's registration token.
    pub token: String,
    /// `message.data`: the wake-up (`type`, `sessionId`, `eventId`).
    pub data: BTreeMap<String, String>,
    /// `message.android.ttl`, e.g. `600s`.
    pub ttl: String,
    /// `message.android.collapse_key`.
    pub collapse_key: String,
}

impl FcmMessage {
    /// The data map as a JSON object: what `FirebaseMessagingService` hands the app (and the
    /// app hands `handlePush`).
    pub fn data_json(&self) -> String {
        serde_json::to_string(&self.data).unwrap_or_default()
    }
}

/// A scripted refusal for the next send to one token (one-shot), in FCM's real error shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FcmReply {
    /// `404 NOT_FOUND` with `errorCode` `UNREGISTERED`: the app was uninstalled.
    Unregistered,
    /// `429 RESOURCE_EXHAUSTED` with `errorCode` `QUOTA_EXCEEDED` and `Retry-After`.
    TooManyRequests {
        /// The `Retry-After` header, seconds.
        retry_after_secs: u64,
    },
    /// `503 UNAVAILABLE` with `errorCode` `UNAVAILABLE`, no `Retry-After`.
    Unavailable,
}

/// The loopback FCM. Dropping it stops the server.
pub struct FakeFcm {
    base: String,
    account_file: PathBuf,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

/// What the handlers share.
struct Shared {
    journal: Journal<FcmMessage>,
    token_url: String,
    client_email: String,
    key_id: String,
    public_key: Vec<u8>,
    state: Mutex<FakeState>,
}

struct FakeState {
    /// Issued access tokens and their expiry (unix seconds).
    tokens: HashMap<String, i64>,
    exchanges: usize,
    lifetime_secs: i64,
    scripted: HashMap<String, FcmReply>,
    sent: u64,
}

/// The service account key: 2048-bit RSA, generated once per process (slow in debug builds).
struct AccountKey {
    pkcs8_pem: String,
    /// DER `RSAPublicKey`.
    public_der: Vec<u8>,
}

fn account_key() -> &'static AccountKey {
    static KEY: OnceLock<AccountKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
        let der: Pkcs8V1Der = pair.as_der().expect("PKCS#8 encoding");
        AccountKey {
            pkcs8_pem: pem_encode("PRIVATE KEY", der.as_ref()),
            public_der: pair.public_key().as_ref().to_vec(),
        }
    })
}

/// PEM with 64-column base64 lines.
fn pem_encode(label: &str, der: &[u8]) -> String {
    let text = STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

/// `n` random bytes as base64url.
fn random_text(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut bytes).expect("system randomness");
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl FakeFcm {
    /// Starts the fake on 127.0.0.1 (free port) and writes its service account file. Panics
    /// if the machine cannot bind a loopback port or write a temporary file (a broken test
    /// machine, not a test outcome).
    pub async fn start() -> FakeFcm {
        FakeFcm::try_start()
            .await
            .unwrap_or_else(|e| panic!("cannot start the fake FCM: {e:#}"))
    }

    /// [`FakeFcm::start`], with setup errors returned.
    pub async fn try_start() -> anyhow::Result<FakeFcm> {
        let key = account_key();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let base = format!("http://{}", listener.local_addr()?);
        let token_url = format!("{base}/token");
        let client_email = format!("push-sender@{FAKE_PROJECT_ID}.iam.gserviceaccount.com");
        let key_id = hex_id();
        let dir = tempfile::tempdir()?;
        let account_file = dir.path().join("service-account.json");
        // Every field of a key file the Firebase console downloads; the sender uses four.
        let account = json!({
            "type": "service_account",
            "project_id": FAKE_PROJECT_ID,
            "private_key_id": key_id,
            "private_key": key.pkcs8_pem,
            "client_email": client_email,
            "client_id": "104242424242424242424",
            "auth_uri": format!("{base}/o/oauth2/auth"),
            "token_uri": token_url,
            "auth_provider_x509_cert_url": format!("{base}/oauth2/v1/certs"),
            "client_x509_cert_url": format!("{base}/robot/v1/metadata/x509/push-sender"),
            "universe_domain": "googleapis.com",
        });
        std::fs::write(&account_file, serde_json::to_vec_pretty(&account)?)?;
        let shared = Arc::new(Shared {
            journal: Journal::default(),
            token_url,
            client_email,
            key_id,
            public_key: key.public_der.clone(),
            state: Mutex::new(FakeState {
                tokens: HashMap::new(),
                exchanges: 0,
                lifetime_secs: 3600,
                scripted: HashMap::new(),
                sent: 0,
            }),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeFcm {
            base,
            account_file,
            shared,
            server,
            _dir: dir,
        })
    }

    /// The service account JSON key file (RSA key, `token_uri` on this fake).
    pub fn service_account_file(&self) -> PathBuf {
        self.account_file.clone()
    }

    /// The base URL (`[push.fcm] endpoint`).
    pub fn endpoint(&self) -> String {
        self.base.clone()
    }

    /// The Firebase project id the send endpoint expects.
    pub fn project_id(&self) -> &str {
        FAKE_PROJECT_ID
    }

    /// `[push.fcm]` pointing at this fake.
    pub fn fcm_config(&self) -> FcmConfig {
        FcmConfig {
            project_id: FAKE_PROJECT_ID.into(),
            service_account_file: self.service_account_file(),
            endpoint: Some(self.endpoint()),
        }
    }

    /// Every message accepted so far, in arrival order.
    pub fn messages(&self) -> Vec<FcmMessage> {
        self.shared.journal.accepted()
    }

    /// The next accepted message not yet returned here, waiting up to `timeout`.
    pub async fn next_message(&self, timeout: Duration) -> Option<FcmMessage> {
        self.shared.journal.next(timeout).await
    }

    /// Every check that failed, with why (empty when the sender spoke FCM correctly).
    pub fn rejections(&self) -> Vec<String> {
        self.shared.journal.rejections()
    }

    /// How many access tokens the token endpoint issued.
    pub fn token_exchanges(&self) -> usize {
        self.shared
            .state
            .lock()
            .map(|s| s.exchanges)
            .unwrap_or_default()
    }

    /// The `expires_in` of access tokens issued from now on (default 3600 s).
    pub fn set_token_lifetime(&self, secs: i64) {
        if let Ok(mut state) = self.shared.state.lock() {
            state.lifetime_secs = secs;
        }
    }

    /// Forgets every access token issued so far (as if Google revoked them): the next send
    /// with one is refused `401 UNAUTHENTICATED` (and recorded as a rejection).
    pub fn revoke_access_tokens(&self) {
        if let Ok(mut state) = self.shared.state.lock() {
            state.tokens.clear();
        }
    }

    /// Answers the next send to `token` with `reply` instead of accepting it (one-shot).
    pub fn respond_to(&self, token: impl Into<String>, reply: FcmReply) {
        if let Ok(mut state) = self.shared.state.lock() {
            state.scripted.insert(token.into(), reply);
        }
    }
}

impl Drop for FakeFcm {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A 40-hex-digit key id, like Google's `private_key_id`.
fn hex_id() -> String {
    let mut bytes = [0u8; 20];
    aws_lc_rs::rand::fill(&mut bytes).expect("system randomness");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every request: the token endpoint, the send endpoint, or a recorded 404.
async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    if path == "/token" {
        return token_endpoint(&shared, &method, &headers, &body);
    }
    if path.starts_with("/v1/") {
        return send_endpoint(&shared, &method, path, &headers, &body);
    }
    shared
        .journal
        .reject(format!("{method} {path}: no such endpoint"));
    fcm_error(StatusCode::NOT_FOUND, "NOT_FOUND", None, "no such endpoint")
}

/// FCM's error body (Google API error model with FCM's detail).
fn fcm_error(
    status: StatusCode,
    api_status: &str,
    error_code: Option<&str>,
    message: &str,
) -> Response {
    let details = match error_code {
        Some(code) => json!([{"@type": FCM_ERROR_TYPE, "errorCode": code}]),
        None => json!([]),
    };
    let body = json!({"error": {
        "code": status.as_u16(),
        "message": message,
        "status": api_status,
        "details": details,
    }});
    (status, axum::Json(body)).into_response()
}

/// Google's OAuth2 error body.
fn oauth_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// `POST /token`: the JWT bearer grant.
fn token_endpoint(shared: &Shared, method: &Method, headers: &HeaderMap, body: &[u8]) -> Response {
    let problems = check_grant(shared, method, headers, body);
    if !problems.is_empty() {
        let all = problems.join("; ");
        for problem in problems {
            shared.journal.reject(format!("token endpoint: {problem}"));
        }
        return oauth_error("invalid_grant", &all);
    }
    let token = format!("ya29.fake-{}", random_text(24));
    let Ok(mut state) = shared.state.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let lifetime = state.lifetime_secs;
    state.tokens.insert(token.clone(), unix_now() + lifetime);
    state.exchanges += 1;
    axum::Json(json!({
        "access_token": token,
        "expires_in": lifetime,
        "token_type": "Bearer",
    }))
    .into_response()
}

/// Every failed check of a token request.
fn check_grant(shared: &Shared, method: &Method, headers: &HeaderMap, body: &[u8]) -> Vec<String> {
    let mut problems = Vec::new();
    if method != Method::POST {
        problems.push(format!("method is {method}, expected POST"));
    }
    let content_type = header_text(headers, header::CONTENT_TYPE);
    if content_type.split(';').next().map(str::trim) != Some("application/x-www-form-urlencoded") {
        problems.push(format!(
            "content-type is {content_type:?}, expected application/x-www-form-urlencoded"
        ));
    }
    let mut form: HashMap<String, Vec<String>> = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(body) {
        form.entry(name.into_owned())
            .or_default()
            .push(value.into_owned());
    }
    let mut names: Vec<&String> = form.keys().collect();
    names.sort();
    if names != ["assertion", "grant_type"] {
        problems.push(format!(
            "form fields are {names:?}, expected exactly grant_type and assertion"
        ));
    }
    let single = |name: &str| match form.get(name).map(Vec::as_slice) {
        Some([value]) => Some(value.clone()),
        _ => None,
    };
    match single("grant_type") {
        Some(grant) if grant == JWT_BEARER_GRANT => {}
        other => problems.push(format!(
            "grant_type is {other:?}, expected {JWT_BEARER_GRANT}"
        )),
    }
    match single("assertion") {
        Some(assertion) => check_assertion(shared, &assertion, &mut problems),
        None => problems.push("assertion is missing or repeated".into()),
    }
    problems
}

/// Checks the RS256 assertion: signature, header and claims.
fn check_assertion(shared: &Shared, assertion: &str, problems: &mut Vec<String>) {
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header_b64, claims_b64, signature_b64] = parts.as_slice() else {
        problems.push(format!(
            "assertion has {} dot-separated parts, expected 3",
            parts.len()
        ));
        return;
    };
    let decode_json = |part: &str, what: &str, problems: &mut Vec<String>| {
        let bytes = match URL_SAFE_NO_PAD.decode(part) {
            Ok(bytes) => bytes,
            Err(e) => {
                problems.push(format!("assertion {what} is not unpadded base64url: {e}"));
                return None;
            }
        };
        match serde_json::from_slice::<Map<String, Value>>(&bytes) {
            Ok(map) => Some(map),
            Err(e) => {
                problems.push(format!("assertion {what} is not a JSON object: {e}"));
                None
            }
        }
    };
    match URL_SAFE_NO_PAD.decode(signature_b64) {
        Ok(signature) => {
            let signed = format!("{header_b64}.{claims_b64}");
            let key = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &shared.public_key);
            if key.verify(signed.as_bytes(), &signature).is_err() {
                problems.push(
                    "assertion signature does not verify (RS256, service account key)".into(),
                );
            }
        }
        Err(e) => problems.push(format!("assertion signature is not base64url: {e}")),
    }
    if let Some(jwt_header) = decode_json(header_b64, "header", problems) {
        expect_keys(
            &jwt_header,
            &["alg", "kid", "typ"],
            "assertion header",
            problems,
        );
        expect_str(&jwt_header, "alg", "RS256", "assertion header", problems);
        expect_str(&jwt_header, "typ", "JWT", "assertion header", problems);
        expect_str(
            &jwt_header,
            "kid",
            &shared.key_id,
            "assertion header",
            problems,
        );
    }
    let Some(claims) = decode_json(claims_b64, "claims", problems) else {
        return;
    };
    expect_keys(
        &claims,
        &["aud", "exp", "iat", "iss", "scope"],
        "claims",
        problems,
    );
    expect_str(&claims, "iss", &shared.client_email, "claims", problems);
    expect_str(&claims, "aud", &shared.token_url, "claims", problems);
    expect_str(&claims, "scope", FCM_SCOPE, "claims", problems);
    let iat = claims.get("iat").and_then(Value::as_i64);
    let exp = claims.get("exp").and_then(Value::as_i64);
    let (Some(iat), Some(exp)) = (iat, exp) else {
        problems.push(format!(
            "claims iat {:?} and exp {:?} must be integers",
            claims.get("iat"),
            claims.get("exp")
        ));
        return;
    };
    let now = unix_now();
    if exp <= iat || exp - iat > MAX_ASSERTION_SECS {
        problems.push(format!(
            "claims exp - iat is {} s, expected 1..={MAX_ASSERTION_SECS}",
            exp - iat
        ));
    }
    if exp <= now {
        problems.push(format!("assertion expired at {exp} (now {now})"));
    }
    if iat > now + SKEW_SECS {
        problems.push(format!(
            "assertion issued in the future: iat {iat}, now {now}"
        ));
    }
}

/// `POST /v1/projects/{project}/messages:send`.
fn send_endpoint(
    shared: &Shared,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let expected_path = format!("/v1/projects/{FAKE_PROJECT_ID}/messages:send");
    if path != expected_path {
        shared.journal.reject(format!(
            "send: path is {path:?}, expected {expected_path:?}"
        ));
        return fcm_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            None,
            "Requested entity was not found.",
        );
    }
    let authorization = header_text(headers, header::AUTHORIZATION);
    let bearer = authorization.strip_prefix("Bearer ").unwrap_or("");
    let expiry = shared
        .state
        .lock()
        .ok()
        .and_then(|s| s.tokens.get(bearer).copied());
    let auth_problem = match expiry {
        None => Some(format!(
            "authorization {:?} is not a bearer token this fake issued",
            authorization.chars().take(24).collect::<String>()
        )),
        Some(expiry) if expiry <= unix_now() => Some(format!(
            "access token expired at {expiry} (now {})",
            unix_now()
        )),
        Some(_) => None,
    };
    if let Some(problem) = auth_problem {
        shared.journal.reject(format!("send: {problem}"));
        return fcm_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            None,
            "Request had invalid authentication credentials.",
        );
    }
    let message = match check_message(method, headers, body) {
        Ok(message) => message,
        Err(problems) => {
            let all = problems.join("; ");
            for problem in problems {
                shared.journal.reject(format!("send: {problem}"));
            }
            return fcm_error(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                Some("INVALID_ARGUMENT"),
                &all,
            );
        }
    };
    let (scripted, number) = match shared.state.lock() {
        Ok(mut state) => {
            state.sent += 1;
            (state.scripted.remove(&message.token), state.sent)
        }
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    match scripted {
        Some(FcmReply::Unregistered) => fcm_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            Some("UNREGISTERED"),
            "Requested entity was not found.",
        ),
        Some(FcmReply::TooManyRequests { retry_after_secs }) => {
            let mut response = fcm_error(
                StatusCode::TOO_MANY_REQUESTS,
                "RESOURCE_EXHAUSTED",
                Some("QUOTA_EXCEEDED"),
                "Quota exceeded for quota metric 'Send requests'.",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after_secs.into());
            response
        }
        Some(FcmReply::Unavailable) => fcm_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            Some("UNAVAILABLE"),
            "The service is currently unavailable.",
        ),
        None => {
            shared.journal.accept(message);
            axum::Json(json!({
                "name": format!("projects/{FAKE_PROJECT_ID}/messages/0:{number}")
            }))
            .into_response()
        }
    }
}

/// Checks method, content type and the body field by field; the message, or every problem.
fn check_message(
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<FcmMessage, Vec<String>> {
    let mut problems = Vec::new();
    if method != Method::POST {
        problems.push(format!("method is {method}, expected POST"));
    }
    let content_type = header_text(headers, header::CONTENT_TYPE);
    if content_type.split(';').next().map(str::trim) != Some("application/json") {
        problems.push(format!(
            "content-type is {content_type:?}, expected application/json"
        ));
    }
    let root = match serde_json::from_slice::<Map<String, Value>>(body) {
        Ok(root) => root,
        Err(e) => {
            problems.push(format!("body is not a JSON object: {e}"));
            return Err(problems);
        }
    };
    expect_keys(&root, &["message"], "body", &mut problems);
    let empty = Map::new();
    let message = object(&root, "message", "body", &mut problems).unwrap_or(&empty);
    expect_keys(
        message,
        &["android", "data", "token"],
        "message",
        &mut problems,
    );
    let token = nonempty_str(message, "token", "message", &mut problems);
    let data = object(message, "data", "message", &mut problems).unwrap_or(&empty);
    expect_keys(
        data,
        &["eventId", "sessionId", "type"],
        "message.data",
        &mut problems,
    );
    let kind = nonempty_str(data, "type", "message.data", &mut problems);
    if !kind.is_empty() && !KINDS.contains(&kind.as_str()) {
        problems.push(format!(
            "message.data.type is {kind:?}, expected one of {KINDS:?}"
        ));
    }
    let session_id = nonempty_str(data, "sessionId", "message.data", &mut problems);
    let event_id = nonempty_str(data, "eventId", "message.data", &mut problems);
    if !event_id.is_empty() && !event_id.bytes().all(|b| b.is_ascii_digit()) {
        problems.push(format!(
            "message.data.eventId is {event_id:?}, expected decimal digits"
        ));
    }
    let android = object(message, "android", "message", &mut problems).unwrap_or(&empty);
    expect_keys(
        android,
        &["collapse_key", "priority", "ttl"],
        "message.android",
        &mut problems,
    );
    expect_str(
        android,
        "priority",
        "HIGH",
        "message.android",
        &mut problems,
    );
    let ttl = nonempty_str(android, "ttl", "message.android", &mut problems);
    let ttl_ok = ttl
        .strip_suffix('s')
        .is_some_and(|secs| !secs.is_empty() && secs.bytes().all(|b| b.is_ascii_digit()));
    if !ttl.is_empty() && !ttl_ok {
        problems.push(format!(
            "message.android.ttl is {ttl:?}, expected whole seconds like \"600s\""
        ));
    }
    let collapse_key = nonempty_str(android, "collapse_key", "message.android", &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(FcmMessage {
        token,
        data: BTreeMap::from([
            ("type".to_string(), kind),
            ("sessionId".to_string(), session_id),
            ("eventId".to_string(), event_id),
        ]),
        ttl,
        collapse_key,
    })
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> String {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default()
}

/// The object's keys must be exactly `expected` (sorted).
fn expect_keys(
    map: &Map<String, Value>,
    expected: &[&str],
    what: &str,
    problems: &mut Vec<String>,
) {
    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
    keys.sort_unstable();
    if keys != expected {
        problems.push(format!(
            "{what} has fields {keys:?}, expected exactly {expected:?}"
        ));
    }
}

/// `map[key]` must be the string `expected`.
fn expect_str(
    map: &Map<String, Value>,
    key: &str,
    expected: &str,
    what: &str,
    problems: &mut Vec<String>,
) {
    if map.get(key).and_then(Value::as_str) != Some(expected) {
        problems.push(format!(
            "{what}.{key} is {:?}, expected {expected:?}",
            map.get(key)
        ));
    }
}

/// `map[key]` as a non-empty string ("" after recording the problem).
fn nonempty_str(
    map: &Map<String, Value>,
    key: &str,
    what: &str,
    problems: &mut Vec<String>,
) -> String {
    match map.get(key).and_then(Value::as_str) {
        Some(text) if !text.is_empty() => text.to_string(),
        _ => {
            problems.push(format!(
                "{what}.{key} is {:?}, expected a non-empty string",
                map.get(key)
            ));
            String::new()
        }
    }
}

/// `map[key]` as an object (`None` after recording the problem).
fn object<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    what: &str,
    problems: &mut Vec<String>,
) -> Option<&'a Map<String, Value>> {
    let found = map.get(key).and_then(Value::as_object);
    if found.is_none() {
        problems.push(format!(
            "{what}.{key} is {:?}, expected an object",
            map.get(key)
        ));
    }
    found
}
