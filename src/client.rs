//! The HTTP client to the gateway's app API: every request signed with the device key as
//! `docs/app-api.md` §2.2 says, timeouts, bounded bodies, the gateway's clock for timestamps,
//! and retries with backoff for idempotent calls only.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opencharge_protocol::auth::{
    canonical_request, generate_nonce, HEADER_ID, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP,
};
use opencharge_protocol::error_code::{ApiError, ErrorCode};
use rand_core::{OsRng, RngCore};
use reqwest::{Method, StatusCode};

use crate::config::WalletConfig;
use crate::error::{GatewayErrorCode, Result, WalletError};
use crate::keystore::DeviceKey;
use crate::tls;

/// Header carrying the device id on signed app requests.
pub(crate) const HEADER_DEVICE: &str = "X-OC-Device";
/// Largest response body the core reads (prompts lists, history pages).
const MAX_BODY: usize = 4 * 1024 * 1024;
/// Attempts of an idempotent call before giving up.
const ATTEMPTS: u32 = 3;
/// How long a TCP connection (and TLS handshake) to the gateway may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The event stream has no total timeout; a silence of three heartbeats (15 s each) means the
/// connection is dead.
pub(crate) const STREAM_SILENCE: Duration = Duration::from_secs(45);
/// How long fetching a metadata document may take.
const DOCUMENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a call may be repeated after a failure whose outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Sent once (a retry could create a second session). Still retried once after
    /// `TIMESTAMP_EXPIRED`, which rejects before anything changes.
    Never,
    /// Safe to repeat (reads, decline, confirm with its idempotency key).
    Idempotent,
}

/// Whether a failed request may have reached the gateway ([`GatewayClient::attempt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// Surely not: no connection was made, so nothing changed.
    NotSent,
    /// Perhaps: it failed after the connection was made.
    MaybeReached,
}

/// Client of one gateway.
pub(crate) struct GatewayClient {
    http: reqwest::Client,
    stream_http: reqwest::Client,
    endpoint: String,
    /// The total timeout of each request on `http`.
    request_timeout: Duration,
    /// Gateway time minus local time, in seconds, learned from `X-OC-Timestamp` of responses.
    clock_offset: AtomicI64,
    /// The gateway's OCID as its signed responses state it (`X-OC-ID`), 0 until seen.
    seen_ocid: AtomicU64,
}

/// Local unix time in seconds.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `prefix` + 32 random lowercase hex characters.
pub(crate) fn random_id(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

impl GatewayClient {
    /// A client for `endpoint` (validated by `config`, no trailing slash) with the TLS trust
    /// and pins of `config` (src/tls.rs). Malformed certificates or pins are refused here.
    pub(crate) fn new(config: &WalletConfig, endpoint: String) -> Result<GatewayClient> {
        let url = url::Url::parse(&endpoint)
            .map_err(|e| WalletError::invalid(format!("gateway_url is invalid: {e}")))?;
        let tls = tls::client_config(config, &url)?;
        // 1000..=300000, checked by `WalletConfig::validate`.
        let request_timeout =
            Duration::from_millis(u64::from(config.request_timeout_ms.unsigned_abs()));
        let build = |total: Option<Duration>| {
            let mut builder = reqwest::Client::builder()
                .tls_backend_preconfigured(tls.clone())
                .connect_timeout(CONNECT_TIMEOUT)
                .user_agent(concat!("opencharge-wallet/", env!("CARGO_PKG_VERSION")));
            if config.low_memory {
                // An idle pooled connection is a task left running after the call.
                builder = builder.pool_max_idle_per_host(0);
            }
            builder = match total {
                Some(t) => builder.timeout(t),
                None => builder.read_timeout(STREAM_SILENCE),
            };
            builder
                .build()
                .map_err(|e| WalletError::internal(format!("cannot build the HTTP client: {e}")))
        };
        Ok(GatewayClient {
            http: build(Some(request_timeout))?,
            request_timeout,
            stream_http: build(None)?,
            endpoint,
            clock_offset: AtomicI64::new(0),
            seen_ocid: AtomicU64::new(0),
        })
    }

    /// The gateway endpoint.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The URL of `path` (relative to the endpoint), for messages.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint)
    }

    /// The current time on the gateway's clock, as far as the core knows it.
    pub(crate) fn now(&self) -> i64 {
        unix_now() + self.clock_offset.load(Ordering::Relaxed)
    }

    fn learn_clock(&self, response: &reqwest::Response) {
        let server = response
            .headers()
            .get(HEADER_TIMESTAMP)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i64>().ok());
        if let Some(server) = server {
            self.clock_offset
                .store(server - unix_now(), Ordering::Relaxed);
        }
        let ocid = response
            .headers()
            .get(HEADER_ID)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(ocid) = ocid {
            self.seen_ocid.store(ocid, Ordering::Relaxed);
        }
    }

    /// The gateway's OCID from the `X-OC-ID` header of its responses, once one was seen.
    pub(crate) fn seen_ocid(&self) -> Option<u64> {
        Some(self.seen_ocid.load(Ordering::Relaxed)).filter(|o| *o != 0)
    }

    /// An unsigned `POST` with a JSON body (device registration), sent once.
    pub(crate) async fn post_unsigned(&self, path: &str, bytes: Vec<u8>) -> Result<Vec<u8>> {
        let url = format!("{}{path}", self.endpoint);
        let response = self
            .http
            .post(&url)
            .header("Content-Type", "application/json")
            .body(bytes)
            .send()
            .await
            .map_err(|e| transport_error(e, &url, self.request_timeout))?;
        self.learn_clock(&response);
        read_answer(response, self.request_timeout).await
    }

    /// A request signed with `key`. `path` is relative to the endpoint (e.g. `/app/balance`);
    /// `body` is sent exactly as given (JSON) and hashed as sent.
    pub(crate) async fn call(
        &self,
        key: &Arc<DeviceKey>,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        retry: Retry,
    ) -> Result<Vec<u8>> {
        let mut retries = Retries::new(retry);
        loop {
            let error = match self
                .attempt(key, method.clone(), path, body.as_deref())
                .await
            {
                Ok(answer) => return Ok(answer),
                Err((error, _)) => error,
            };
            if !retries.again(&error).await {
                return Err(error);
            }
            tracing::debug!(path, error = %error, "retrying gateway call");
        }
    }

    /// Builds a signed request on `client`.
    fn signed(
        &self,
        client: &reqwest::Client,
        key: &DeviceKey,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<reqwest::RequestBuilder> {
        let url = format!("{}{path}", self.endpoint);
        let parsed = url::Url::parse(&url)
            .map_err(|e| WalletError::invalid(format!("bad URL {url}: {e}")))?;
        let target = match parsed.query() {
            Some(q) => format!("{}?{q}", parsed.path()),
            None => parsed.path().to_string(),
        };
        let bytes = body.unwrap_or_default();
        let timestamp = self.now();
        let nonce = generate_nonce();
        let canonical = canonical_request(
            &key.device_id,
            timestamp,
            &nonce,
            method.as_str(),
            &target,
            bytes,
        );
        let signature = key.sign(canonical.as_bytes())?;
        let mut request = client
            .request(method, parsed)
            .header(HEADER_DEVICE, &key.device_id)
            .header(HEADER_TIMESTAMP, timestamp.to_string())
            .header(HEADER_NONCE, nonce)
            .header(HEADER_SIGNATURE, signature);
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_vec());
        }
        Ok(request)
    }

    /// One signed attempt, no retry, whose failure also says whether the request may have
    /// reached the gateway (decisions: `src/outcome.rs`). No connection at all (refused, DNS,
    /// TLS handshake, connect timeout) is [`Reach::NotSent`]; once connected, a failure may
    /// come after the gateway acted (a timeout, a reset while waiting, a 5xx without an
    /// envelope, an unreadable body) and is [`Reach::MaybeReached`]. An error envelope is an
    /// answer: the gateway's [`WalletError::Gateway`].
    pub(crate) async fn attempt(
        &self,
        key: &DeviceKey,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> std::result::Result<Vec<u8>, (WalletError, Reach)> {
        let request = self
            .signed(&self.http, key, method, path, body)
            .map_err(|e| (e, Reach::NotSent))?;
        let response = request.send().await.map_err(|e| {
            let reach = if e.is_connect() || e.is_builder() {
                Reach::NotSent
            } else {
                Reach::MaybeReached
            };
            (
                transport_error(e, &self.url(path), self.request_timeout),
                reach,
            )
        })?;
        self.learn_clock(&response);
        read_answer(response, self.request_timeout)
            .await
            .map_err(|e| (e, Reach::MaybeReached))
    }

    /// Opens the signed event stream, resuming after `last_event_id`. Returns the live
    /// response (status 200, `text/event-stream`).
    pub(crate) async fn open_events(
        &self,
        key: &DeviceKey,
        last_event_id: i64,
    ) -> Result<reqwest::Response> {
        let mut request = self.signed(&self.stream_http, key, Method::GET, "/app/events", None)?;
        request = request.header("Accept", "text/event-stream");
        if last_event_id > 0 {
            request = request.header("Last-Event-ID", last_event_id.to_string());
        }
        let response = request
            .send()
            .await
            .map_err(|e| transport_error(e, &self.url("/app/events"), STREAM_SILENCE))?;
        if response.status() != StatusCode::OK {
            let status = response.status().as_u16();
            let body = read_body(response, MAX_BODY, STREAM_SILENCE)
                .await
                .unwrap_or_default();
            return Err(ApiError::from_response(status, &body).into());
        }
        Ok(response)
    }

    /// `GET url` without signature (metadata documents), body at most `limit` bytes.
    pub(crate) async fn get_document(&self, url: &str, limit: usize) -> Result<Vec<u8>> {
        let response = self
            .http
            .get(url)
            .timeout(DOCUMENT_TIMEOUT)
            .send()
            .await
            .map_err(|e| transport_error(e, url, DOCUMENT_TIMEOUT))?;
        let status = response.status();
        let body = read_body(response, limit, DOCUMENT_TIMEOUT).await?;
        if !status.is_success() {
            return Err(WalletError::network(format!(
                "{} answered HTTP {}",
                without_query(url),
                status.as_u16()
            )));
        }
        Ok(body)
    }
}

/// How long to wait before attempt `attempt + 1` of an idempotent call: 250 ms doubled per
/// attempt, plus up to 250 ms of jitter.
fn retry_delay(attempt: u32) -> Duration {
    let backoff = 250u64 << (attempt.clamp(1, 8) - 1);
    let jitter = u64::from(OsRng.next_u32() % 250);
    Duration::from_millis(backoff + jitter)
}

/// The retry rule of one call (a signed request or a decision): after
/// `TIMESTAMP_EXPIRED` it is repeated once at once (the clock was just corrected from the
/// response header; nothing changed), and an idempotent call is repeated after a
/// [`retryable`] failure, with [`retry_delay`], up to [`ATTEMPTS`] attempts in all.
pub(crate) struct Retries {
    retry: Retry,
    attempt: u32,
    clock_retried: bool,
}

impl Retries {
    /// The rule for a call that may (`Retry::Idempotent`) or may not be repeated.
    pub(crate) fn new(retry: Retry) -> Retries {
        Retries {
            retry,
            attempt: 0,
            clock_retried: false,
        }
    }

    /// After a failed attempt: whether to try again, having waited as long as the rule says.
    pub(crate) async fn again(&mut self, error: &WalletError) -> bool {
        self.attempt += 1;
        match error {
            WalletError::Gateway { code, .. }
                if *code == GatewayErrorCode::TimestampExpired && !self.clock_retried =>
            {
                self.clock_retried = true;
                true
            }
            e if self.retry == Retry::Idempotent && self.attempt < ATTEMPTS && retryable(e) => {
                tokio::time::sleep(retry_delay(self.attempt)).await;
                true
            }
            _ => false,
        }
    }
}

/// Whether a failed idempotent call is worth repeating.
fn retryable(e: &WalletError) -> bool {
    match e {
        WalletError::Network { .. } => true,
        WalletError::Gateway { http_status, .. } => *http_status >= 500 || *http_status == 429,
        _ => false,
    }
}

/// A failed request to (or answer from) `url` as a [`WalletError`]: [`WalletError::Tls`] when
/// TLS refused the server, else [`WalletError::Network`] naming the URL (without its query)
/// and the root cause (`connection refused`, `timed out after 30 s`, `dns error: ...`).
/// `timeout` is the total timeout the request had.
pub(crate) fn transport_error(e: reqwest::Error, url: &str, timeout: Duration) -> WalletError {
    let parsed = url::Url::parse(url).ok();
    let host = parsed
        .as_ref()
        .and_then(|u| u.host_str())
        .unwrap_or_default();
    if let Some(tls) = tls::tls_error(&e, host) {
        return tls;
    }
    let what = if e.is_body() || e.is_decode() {
        "reading the answer from"
    } else {
        "request to"
    };
    WalletError::network(format!(
        "{what} {} failed: {}",
        without_query(url),
        root_cause(e, timeout)
    ))
}

/// `url` without its query and fragment (they may carry identifiers that logs must not keep).
fn without_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// The cause of a transport failure a person can act on.
fn root_cause(e: reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return match e.is_connect() {
            true => format!("connecting timed out after {} s", CONNECT_TIMEOUT.as_secs()),
            false => format!("timed out after {} s", timeout.as_secs()),
        };
    }
    let causes: Vec<_> = tls::causes(&e).skip(1).collect();
    for cause in &causes {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if let Some(text) = io_kind_text(io.kind()) {
                return text.to_string();
            }
        }
    }
    let Some(root) = causes.last().map(|c| c.to_string()) else {
        return e.without_url().to_string();
    };
    // hyper-util's connect error reads "dns error" with the resolver's message as its cause.
    match causes.iter().any(|c| c.to_string() == "dns error") {
        true if root != "dns error" => format!("dns error: {root}"),
        _ => root,
    }
}

/// Short text for the I/O error kinds of a failed connection.
fn io_kind_text(kind: std::io::ErrorKind) -> Option<&'static str> {
    use std::io::ErrorKind::*;
    Some(match kind {
        ConnectionRefused => "connection refused",
        ConnectionReset => "connection reset by the server",
        ConnectionAborted => "connection aborted",
        NotConnected => "not connected",
        AddrNotAvailable => "address not available",
        HostUnreachable => "host unreachable",
        NetworkUnreachable => "network unreachable",
        NetworkDown => "network down",
        TimedOut => "timed out",
        UnexpectedEof => "the connection closed before the answer was complete",
        _ => return None,
    })
}

/// Reads a body of at most `limit` bytes; `timeout` is the request's, for messages.
pub(crate) async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>> {
    let url = response.url().clone();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(e, url.as_str(), timeout))?
    {
        if body.len() + chunk.len() > limit {
            return Err(WalletError::network(format!(
                "the answer from {} is larger than {limit} bytes",
                without_query(url.as_str())
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The body of a 2xx answer (parsed by the caller into its app-API type, straight from the
/// bytes), or the gateway's error envelope as [`WalletError::Gateway`].
async fn read_answer(response: reqwest::Response, timeout: Duration) -> Result<Vec<u8>> {
    let status = response.status().as_u16();
    let url = response.url().clone();
    let body = read_body(response, MAX_BODY, timeout).await?;
    if !(200..300).contains(&status) {
        let error = ApiError::from_response(status, &body);
        if matches!(error.code, ErrorCode::Other(_)) && status >= 500 {
            return Err(WalletError::network(format!(
                "{} answered HTTP {status} without an Opencharge error",
                without_query(url.as_str())
            )));
        }
        return Err(error.into());
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(endpoint: &str, timeout_ms: i32) -> GatewayClient {
        let mut config = WalletConfig::new(endpoint, "unused");
        config.allow_insecure_loopback = true;
        config.request_timeout_ms = timeout_ms;
        GatewayClient::new(&config, endpoint.to_string()).unwrap()
    }

    #[tokio::test]
    async fn a_refused_connection_names_the_url_without_query_and_the_cause() {
        // A port that was free a moment ago: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let endpoint = format!("http://127.0.0.1:{port}/opencharge");
        let error = client(&endpoint, 30_000)
            .get_document(&format!("{endpoint}/metadata.json?token=secret"), 1024)
            .await
            .unwrap_err();
        assert_eq!(
            error,
            WalletError::network(format!(
                "request to {endpoint}/metadata.json failed: connection refused"
            ))
        );
    }

    #[tokio::test]
    async fn a_silent_server_is_reported_with_the_timeout() {
        // The kernel accepts the connection into the backlog; nobody ever answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}/opencharge", silent.local_addr().unwrap());
        let error = client(&endpoint, 1_000)
            .post_unsigned("/app/devices/register", b"{}".to_vec())
            .await
            .unwrap_err();
        assert_eq!(
            error,
            WalletError::network(format!(
                "request to {endpoint}/app/devices/register failed: timed out after 1 s"
            ))
        );
        drop(silent);
    }

    #[test]
    fn queries_and_fragments_are_cut_from_urls() {
        assert_eq!(
            without_query("https://g.example/a?b=c#d"),
            "https://g.example/a"
        );
        assert_eq!(
            without_query("https://g.example/a#d"),
            "https://g.example/a"
        );
        assert_eq!(without_query("https://g.example/a"), "https://g.example/a");
    }
}
