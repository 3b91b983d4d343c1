//! Outbound HTTP signed as this peer: every request carries `X-OC-*` headers over the exact
//! path, query and body bytes sent, goes only to allowed URLs (HTTPS, or plain HTTP to loopback
//! when configured), and reads a bounded response. A peer's response signature can be checked
//! with [`PeerResponse::verify`] (strict) or [`PeerResponse::verify_signature`] (unsigned
//! allowed). Also the URL comparisons peers use to keep links under a published endpoint
//! (re-exported from [`opencharge_protocol::url_rules`], where every URL rule lives).

use axum::body::Bytes;
use opencharge_protocol::auth::{
    generate_nonce, AuthFailure, RequestAuth, ResponseAuth, HEADER_ID, HEADER_SIGNATURE,
};
use opencharge_protocol::keys::{PrivateKey, PublicKey, VerifyOptions};
use opencharge_protocol::url_rules;
use reqwest::header::HeaderMap;
use reqwest::{Method, Url};

pub use opencharge_protocol::url_rules::{same_endpoint, url_under_endpoint};

/// Largest response body read from a peer, bytes (1 MiB).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Why an outbound request failed before a response was read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The URL cannot be parsed or is not allowed (scheme, host, credentials).
    #[error("URL not allowed: {0}")]
    InvalidUrl(String),
    /// Connection, TLS, timeout or protocol failure (or the request could not be signed).
    #[error("network error: {0}")]
    Network(String),
    /// The response body is larger than the limit.
    #[error("response body larger than {0} bytes")]
    TooLarge(usize),
}

/// Why a response signature that is present does not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseSignatureError {
    /// The `X-OC-*` response headers are incomplete or malformed.
    #[error("response signature headers: {0}")]
    Headers(AuthFailure),
    /// The response is signed by another OCID than the peer called.
    #[error("response signed by OCID {found}, expected {expected}")]
    WrongOcid {
        /// The OCID in `X-OC-ID`.
        found: u64,
        /// The peer's OCID.
        expected: u64,
    },
    /// The signature is stale or does not verify over status and body.
    #[error("response signature: {0}")]
    Signature(AuthFailure),
}

/// A peer's response: status, headers and the whole (bounded) body.
#[derive(Debug, Clone)]
pub struct PeerResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// Response body bytes exactly as received.
    pub body: Bytes,
}

impl PeerResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The response's `X-OC-*` signature headers, if it carries them (`None` when absent or
    /// malformed).
    pub fn response_auth(&self) -> Option<ResponseAuth> {
        ResponseAuth::from_headers(|name| self.header(name)).ok()
    }

    /// Verifies the response signature against the peer's `ocid` and `key` at time `now`:
    /// headers present, `X-OC-ID` equal to `ocid`, timestamp within ±300 s, signature over
    /// status and body valid. Response signing is a SHOULD in the protocol, so callers decide
    /// whether an unsigned response is acceptable.
    pub fn verify(&self, ocid: u64, key: &PublicKey, now: i64) -> Result<(), AuthFailure> {
        let auth = ResponseAuth::from_headers(|name| self.header(name))?;
        if auth.ocid != ocid {
            return Err(AuthFailure::InvalidSignature);
        }
        auth.verify(key, self.status, &self.body, now, VerifyOptions::STRICT)
    }

    /// Checks the response's `X-OC-*` signature against the peer `ocid` and `key` at `now`.
    /// `Ok(true)`: signed and valid. `Ok(false)`: no signature headers at all (response
    /// signing is a SHOULD). Error: signature headers present but wrong, stale, malformed or
    /// from another OCID.
    pub fn verify_signature(
        &self,
        ocid: u64,
        key: &PublicKey,
        now: i64,
    ) -> Result<bool, ResponseSignatureError> {
        if self.header(HEADER_SIGNATURE).is_none() && self.header(HEADER_ID).is_none() {
            return Ok(false);
        }
        let auth = ResponseAuth::from_headers(|name| self.header(name))
            .map_err(ResponseSignatureError::Headers)?;
        if auth.ocid != ocid {
            return Err(ResponseSignatureError::WrongOcid {
                found: auth.ocid,
                expected: ocid,
            });
        }
        auth.verify(key, self.status, &self.body, now, VerifyOptions::STRICT)
            .map_err(ResponseSignatureError::Signature)?;
        Ok(true)
    }
}

/// Parses `url` and checks it may be called (the rules of
/// [`opencharge_protocol::url_rules::check_outbound_url`]: `https`, or `http` to a loopback
/// host when `allow_loopback_http`; a host; no user info), as a [`ClientError::InvalidUrl`].
pub fn check_outbound_url(url: &str, allow_loopback_http: bool) -> Result<Url, ClientError> {
    url_rules::check_outbound_url(url, allow_loopback_http)
        .map_err(|e| ClientError::InvalidUrl(format!("{url:?} {e}")))
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

/// Who signs outbound requests, and how.
#[derive(Clone, Copy)]
pub struct Signer<'a> {
    /// The HTTP client (it should not follow redirects, and should have a timeout).
    pub http: &'a reqwest::Client,
    /// This peer's key.
    pub key: &'a PrivateKey,
    /// This peer's OCID.
    pub ocid: u64,
    /// Whether plain HTTP to loopback hosts is allowed.
    pub allow_loopback_http: bool,
}

impl<'a> Signer<'a> {
    /// A signer sending with `http` as `ocid`, signing with `key`; plain HTTP only to loopback
    /// hosts and only with `allow_loopback_http`.
    pub fn new(
        http: &'a reqwest::Client,
        key: &'a PrivateKey,
        ocid: u64,
        allow_loopback_http: bool,
    ) -> Self {
        Signer {
            http,
            key,
            ocid,
            allow_loopback_http,
        }
    }

    /// Sends `method url` with `body` (JSON when non-empty), signed at `now` with a fresh
    /// nonce, and returns the whole response (at most [`MAX_RESPONSE_BYTES`]).
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: &[u8],
        now: i64,
    ) -> Result<PeerResponse, ClientError> {
        let parsed = check_outbound_url(url, self.allow_loopback_http)?;
        let target = request_target(&parsed);
        let auth = RequestAuth::sign(
            self.key,
            self.ocid,
            method.as_str(),
            &target,
            body,
            now,
            &generate_nonce(),
        )
        .map_err(|e| ClientError::Network(format!("cannot sign request: {e}")))?;
        let mut request = self
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
        Ok(PeerResponse {
            status,
            headers,
            body,
        })
    }
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

    #[test]
    fn response_signature_check() {
        let key = PrivateKey::generate();
        let body = Bytes::from_static(br#"{"ok":true}"#);
        let auth = ResponseAuth::sign(&key, 200, 200, &body, 1000).unwrap();
        let mut headers = HeaderMap::new();
        for (name, value) in auth.headers() {
            headers.insert(name, value.parse().unwrap());
        }
        let signed = PeerResponse {
            status: 200,
            headers: headers.clone(),
            body: body.clone(),
        };
        assert!(signed
            .verify_signature(200, &key.public_key(), 1000)
            .unwrap());
        signed.verify(200, &key.public_key(), 1000).unwrap();
        assert!(signed.response_auth().is_some());
        // Wrong OCID, stale, tampered body, other key.
        assert!(matches!(
            signed.verify_signature(201, &key.public_key(), 1000),
            Err(ResponseSignatureError::WrongOcid {
                found: 200,
                expected: 201
            })
        ));
        assert!(signed.verify(201, &key.public_key(), 1000).is_err());
        assert!(signed
            .verify_signature(200, &key.public_key(), 2000)
            .is_err());
        assert!(signed.verify(200, &key.public_key(), 2000).is_err());
        let tampered = PeerResponse {
            body: Bytes::from_static(br#"{"ok":false}"#),
            ..signed.clone()
        };
        assert!(tampered
            .verify_signature(200, &key.public_key(), 1000)
            .is_err());
        assert!(tampered.verify(200, &key.public_key(), 1000).is_err());
        assert!(signed
            .verify_signature(200, &PrivateKey::generate().public_key(), 1000)
            .is_err());
        let unsigned = PeerResponse {
            status: 200,
            headers: HeaderMap::new(),
            body,
        };
        assert!(!unsigned
            .verify_signature(200, &key.public_key(), 1000)
            .unwrap());
        assert!(unsigned.verify(200, &key.public_key(), 1000).is_err());
        assert!(unsigned.response_auth().is_none());
    }
}
