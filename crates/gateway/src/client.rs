//! Outbound HTTP signed as this gateway: every request carries `X-OC-*` headers over the exact
//! path, query and body bytes sent, goes only to allowed URLs (HTTPS, or plain HTTP to loopback
//! when configured), and reads a bounded response. Response signatures can be checked against
//! the peer's key with [`SignedResponse::verify`].

use std::net::IpAddr;

use axum::body::Bytes;
use opencharge_protocol::auth::{generate_nonce, AuthFailure, RequestAuth, ResponseAuth};
use opencharge_protocol::keys::{PublicKey, VerifyOptions};
use reqwest::header::HeaderMap;
use reqwest::{Method, Url};

use crate::state::AppState;

/// Largest response body read from a peer, bytes (1 MiB).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Why an outbound request failed before a response was read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The URL cannot be parsed or is not allowed (scheme, host, credentials).
    #[error("URL not allowed: {0}")]
    InvalidUrl(String),
    /// Connection, TLS, timeout or protocol failure.
    #[error("network error: {0}")]
    Network(String),
    /// The response body is larger than the limit.
    #[error("response body larger than {0} bytes")]
    TooLarge(usize),
}

/// A peer's response: status, headers and the whole (bounded) body.
#[derive(Debug, Clone)]
pub struct SignedResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// Response body bytes exactly as received.
    pub body: Bytes,
}

impl SignedResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The response's `X-OC-*` signature headers, if it carries them (`None` when absent or
    /// malformed).
    pub fn response_auth(&self) -> Option<ResponseAuth> {
        ResponseAuth::from_headers(|name| self.headers.get(name).and_then(|v| v.to_str().ok())).ok()
    }

    /// Verifies the response signature against the peer's `ocid` and `key` at time `now`:
    /// headers present, `X-OC-ID` equal to `ocid`, timestamp within ±300 s, signature over
    /// status and body valid. Response signing is a SHOULD in the protocol, so callers decide
    /// whether an unsigned response is acceptable.
    pub fn verify(&self, ocid: u64, key: &PublicKey, now: i64) -> Result<(), AuthFailure> {
        let auth = ResponseAuth::from_headers(|name| {
            self.headers.get(name).and_then(|v| v.to_str().ok())
        })?;
        if auth.ocid != ocid {
            return Err(AuthFailure::InvalidSignature);
        }
        auth.verify(key, self.status, &self.body, now, VerifyOptions::STRICT)
    }
}

/// Parses `url` and checks it may be called: `https`, or `http` to a loopback host
/// (`localhost`, 127.0.0.0/8, `::1`) when `allow_loopback_http`; no user info.
pub fn check_outbound_url(url: &str, allow_loopback_http: bool) -> Result<Url, ClientError> {
    let parsed = Url::parse(url).map_err(|e| ClientError::InvalidUrl(format!("{url:?}: {e}")))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ClientError::InvalidUrl(
            "URLs with credentials are not allowed".into(),
        ));
    }
    match parsed.scheme() {
        "https" => {}
        "http" if allow_loopback_http && is_loopback_host(&parsed) => {}
        "http" => {
            return Err(ClientError::InvalidUrl(format!(
                "{url}: plain http is only allowed to loopback hosts with allow_loopback_http"
            )))
        }
        other => {
            return Err(ClientError::InvalidUrl(format!(
                "{url}: scheme {other:?} is not allowed"
            )))
        }
    }
    if parsed.host().is_none() {
        return Err(ClientError::InvalidUrl(format!("{url}: no host")));
    }
    Ok(parsed)
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(a)) => IpAddr::V4(a).is_loopback(),
        Some(url::Host::Ipv6(a)) => IpAddr::V6(a).is_loopback(),
        None => false,
    }
}

/// The request target that goes on the wire for `url`: its path plus `?query` when present.
/// This is the `path` of the canonical request string.
pub fn request_target(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

/// Reads a response body, failing with [`ClientError::TooLarge`] beyond `limit` bytes.
pub async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Bytes, ClientError> {
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(ClientError::TooLarge(limit));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ClientError::Network(e.to_string()))?
    {
        if body.len() + chunk.len() > limit {
            return Err(ClientError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// Sends `method url` with `body` (JSON when non-empty), signed with the gateway's key and
/// OCID at `state.now()`, and returns the whole response.
pub async fn signed_request(
    state: &AppState,
    method: Method,
    url: &str,
    body: &[u8],
) -> Result<SignedResponse, ClientError> {
    let parsed = check_outbound_url(url, state.config.allow_loopback_http)?;
    let target = request_target(&parsed);
    let auth = RequestAuth::sign(
        &state.key,
        state.config.ocid,
        method.as_str(),
        &target,
        body,
        state.now(),
        &generate_nonce(),
    )
    .map_err(|e| ClientError::Network(format!("cannot sign request: {e}")))?;
    let mut request = state
        .http
        .request(method, parsed)
        .header(reqwest::header::ACCEPT, "application/json");
    for (name, value) in auth.headers() {
        request = request.header(name, value);
    }
    if !body.is_empty() {
        request = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
    }
    let response = request
        .send()
        .await
        .map_err(|e| ClientError::Network(e.to_string()))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = read_limited(response, MAX_RESPONSE_BYTES).await?;
    Ok(SignedResponse {
        status,
        headers,
        body,
    })
}

/// POSTs the exact JSON bytes `body` to `url`, signed; returns status and response body.
pub async fn signed_post_json(
    state: &AppState,
    url: &str,
    body: &[u8],
) -> Result<(u16, Bytes), ClientError> {
    let response = signed_request(state, Method::POST, url, body).await?;
    Ok((response.status, response.body))
}

/// GETs `url` (empty body), signed; returns status and response body.
pub async fn signed_get(state: &AppState, url: &str) -> Result<(u16, Bytes), ClientError> {
    let response = signed_request(state, Method::GET, url, &[]).await?;
    Ok((response.status, response.body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_rules() {
        assert!(check_outbound_url("https://a.example/x", false).is_ok());
        assert!(check_outbound_url("http://127.0.0.1:9/x", true).is_ok());
        assert!(check_outbound_url("http://localhost:9/x", true).is_ok());
        assert!(check_outbound_url("http://[::1]:9/x", true).is_ok());
        assert!(check_outbound_url("http://127.0.0.1:9/x", false).is_err());
        assert!(check_outbound_url("http://a.example/x", true).is_err());
        assert!(check_outbound_url("ftp://a.example/x", true).is_err());
        assert!(check_outbound_url("https://u:p@a.example/x", true).is_err());
        assert!(check_outbound_url("not a url", true).is_err());
    }

    #[test]
    fn target_keeps_query() {
        let url = Url::parse("https://a.example/opencharge/x?b=2&a=1").unwrap();
        assert_eq!(request_target(&url), "/opencharge/x?b=2&a=1");
        let url = Url::parse("https://a.example").unwrap();
        assert_eq!(request_target(&url), "/");
    }
}
