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

use crate::error::{Result, WalletError};
use crate::keystore::DeviceKey;

/// Header carrying the device id on signed app requests.
pub(crate) const HEADER_DEVICE: &str = "X-OC-Device";
/// Largest response body the core reads (prompts lists, history pages).
const MAX_BODY: usize = 4 * 1024 * 1024;
/// Attempts of an idempotent call before giving up.
const ATTEMPTS: u32 = 3;

/// Whether a call may be repeated after a failure whose outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Sent once (a retry could create a second session). Still retried once after
    /// `TIMESTAMP_EXPIRED`, which rejects before anything changes.
    Never,
    /// Safe to repeat (reads, decline, confirm with its idempotency key).
    Idempotent,
}

/// Client of one gateway.
pub(crate) struct GatewayClient {
    http: reqwest::Client,
    stream_http: reqwest::Client,
    endpoint: String,
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

/// Makes *ring* the process's TLS crypto provider unless one is installed already. The shipped
/// library links reqwest without a provider (`rustls-no-provider`): *ring* is about a megabyte
/// smaller than aws-lc and cross-compiles for Android and iOS without a C toolchain per
/// target. When the gateway crates share the process (tests), reqwest's own provider choice
/// applies to their clients and this only sets the default.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// `prefix` + 32 random lowercase hex characters.
pub(crate) fn random_id(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

impl GatewayClient {
    /// A client for `endpoint` (validated, no trailing slash).
    pub(crate) fn new(endpoint: String, timeout_ms: u64) -> Result<GatewayClient> {
        install_crypto_provider();
        let build = |total: Option<Duration>| {
            let mut builder = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .user_agent(concat!("opencharge-wallet/", env!("CARGO_PKG_VERSION")));
            builder = match total {
                Some(t) => builder.timeout(t),
                // The event stream has no total timeout; a silence of three heartbeats
                // (15 s each) means the connection is dead.
                None => builder.read_timeout(Duration::from_secs(45)),
            };
            builder
                .build()
                .map_err(|e| WalletError::internal(format!("cannot build the HTTP client: {e}")))
        };
        Ok(GatewayClient {
            http: build(Some(Duration::from_millis(timeout_ms)))?,
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
            .map_err(transport_error)?;
        self.learn_clock(&response);
        read_answer(response).await
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
        let mut attempt = 0;
        let mut clock_retried = false;
        loop {
            attempt += 1;
            let result = self
                .call_once(key, method.clone(), path, body.as_deref())
                .await;
            match &result {
                Err(WalletError::Gateway { code, .. })
                    if code == "TIMESTAMP_EXPIRED" && !clock_retried =>
                {
                    // The clock was just corrected from the response header; nothing changed.
                    clock_retried = true;
                    continue;
                }
                Err(e) if retry == Retry::Idempotent && attempt < ATTEMPTS && retryable(e) => {
                    let backoff = 250u64 << (attempt - 1);
                    let jitter = u64::from(OsRng.next_u32() % 250);
                    tracing::debug!(path, attempt, error = %e, "retrying gateway call");
                    tokio::time::sleep(Duration::from_millis(backoff + jitter)).await;
                }
                _ => return result,
            }
        }
    }

    async fn call_once(
        &self,
        key: &DeviceKey,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Vec<u8>> {
        let request = self.signed(&self.http, key, method, path, body)?;
        let response = request.send().await.map_err(transport_error)?;
        self.learn_clock(&response);
        read_answer(response).await
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
        let response = request.send().await.map_err(transport_error)?;
        if response.status() != StatusCode::OK {
            let status = response.status().as_u16();
            let body = read_limited(response).await.unwrap_or_default();
            return Err(ApiError::from_response(status, &body).into());
        }
        Ok(response)
    }

    /// `GET url` without signature (metadata documents), body at most `limit` bytes.
    pub(crate) async fn get_document(&self, url: &str, limit: usize) -> Result<Vec<u8>> {
        let response = self
            .http
            .get(url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let body = read_body(response, limit).await?;
        if !status.is_success() {
            return Err(WalletError::network(format!(
                "{url} answered HTTP {}",
                status.as_u16()
            )));
        }
        Ok(body)
    }
}

/// Whether a failed idempotent call is worth repeating.
fn retryable(e: &WalletError) -> bool {
    match e {
        WalletError::Network { .. } => true,
        WalletError::Gateway { status, .. } => *status >= 500 || *status == 429,
        _ => false,
    }
}

pub(crate) fn transport_error(e: reqwest::Error) -> WalletError {
    // `without_url`: never put query strings or paths of the gateway into logs and errors.
    WalletError::network(e.without_url().to_string())
}

async fn read_limited(response: reqwest::Response) -> Result<Vec<u8>> {
    read_body(response, MAX_BODY).await
}

/// Reads a body of at most `limit` bytes.
pub(crate) async fn read_body(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > limit {
            return Err(WalletError::network(format!(
                "response larger than {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The body of a 2xx answer (parsed by the caller into its app-API type, straight from the
/// bytes), or the gateway's error envelope as [`WalletError::Gateway`].
async fn read_answer(response: reqwest::Response) -> Result<Vec<u8>> {
    let status = response.status().as_u16();
    let body = read_limited(response).await?;
    if !(200..300).contains(&status) {
        let error = ApiError::from_response(status, &body);
        if matches!(error.code, ErrorCode::Other(_)) && status >= 500 {
            return Err(WalletError::network(format!(
                "gateway answered HTTP {status}"
            )));
        }
        return Err(error.into());
    }
    Ok(body)
}
