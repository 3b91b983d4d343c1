//! Outbound HTTP signed as the merchant: every request carries `X-OC-*` headers over the exact
//! path, query and body bytes sent, goes only to allowed URLs (HTTPS, or plain HTTP to
//! loopback when configured), and reads a bounded body. A peer's response signature can be
//! checked with [`PeerResponse::verify_signature`].

use std::net::IpAddr;

use opencharge_protocol::auth::{generate_nonce, RequestAuth, ResponseAuth};
use opencharge_protocol::keys::{PrivateKey, PublicKey, VerifyOptions};
use reqwest::header::HeaderMap;
use reqwest::{Method, Url};

use crate::error::MerchantError;

/// Largest response body read from a peer, bytes (1 MiB).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// A peer's response: status, headers and the whole (bounded) body.
#[derive(Debug, Clone)]
pub struct PeerResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// Body bytes exactly as received.
    pub body: Vec<u8>,
}

impl PeerResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
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
    ) -> Result<bool, MerchantError> {
        let get = |name: &str| self.headers.get(name).and_then(|v| v.to_str().ok());
        if get(opencharge_protocol::auth::HEADER_SIGNATURE).is_none()
            && get(opencharge_protocol::auth::HEADER_ID).is_none()
        {
            return Ok(false);
        }
        let auth = ResponseAuth::from_headers(get).map_err(|e| {
            MerchantError::InvalidResponse(format!("response signature headers: {e}"))
        })?;
        if auth.ocid != ocid {
            return Err(MerchantError::InvalidResponse(format!(
                "response signed by OCID {}, expected {ocid}",
                auth.ocid
            )));
        }
        auth.verify(key, self.status, &self.body, now, VerifyOptions::STRICT)
            .map_err(|e| MerchantError::InvalidResponse(format!("response signature: {e}")))?;
        Ok(true)
    }
}

/// Parses `url` and checks it may be called: `https`, or `http` to a loopback host
/// (`localhost`, 127.0.0.0/8, `::1`) when `allow_loopback_http`; a host; no user info.
pub fn check_outbound_url(url: &str, allow_loopback_http: bool) -> Result<Url, MerchantError> {
    let parsed =
        Url::parse(url).map_err(|e| MerchantError::UrlNotAllowed(format!("{url:?}: {e}")))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(MerchantError::UrlNotAllowed(format!(
            "{url:?}: URLs with credentials are not allowed"
        )));
    }
    if parsed.host().is_none() {
        return Err(MerchantError::UrlNotAllowed(format!("{url:?}: no host")));
    }
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if allow_loopback_http && is_loopback_host(&parsed) => Ok(parsed),
        "http" => Err(MerchantError::UrlNotAllowed(format!(
            "{url:?}: plain http is only allowed to loopback hosts with allow_loopback_http"
        ))),
        other => Err(MerchantError::UrlNotAllowed(format!(
            "{url:?}: scheme {other:?} is not allowed"
        ))),
    }
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(a)) => IpAddr::V4(a).is_loopback(),
        Some(url::Host::Ipv6(a)) => IpAddr::V6(a).is_loopback(),
        None => false,
    }
}

/// The request target that goes on the wire for `url`: its path plus `?query` when present
/// (the `path` of the canonical request string).
pub fn request_target(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

/// Normalises a URL for comparison: its parsed form without a trailing `/`; `None` when it
/// does not parse or carries a query or fragment.
fn normalise_url(url: &str) -> Option<String> {
    let parsed = Url::parse(url).ok()?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return None;
    }
    Some(parsed.as_str().trim_end_matches('/').to_string())
}

/// True if `url` equals `endpoint` or lies below it (`endpoint/...`), after normalisation.
pub fn url_under_endpoint(url: &str, endpoint: &str) -> bool {
    match (normalise_url(url), normalise_url(endpoint)) {
        (Some(u), Some(e)) => u == e || u.starts_with(&format!("{e}/")),
        _ => false,
    }
}

/// True if two endpoints are the same after normalisation.
pub fn same_endpoint(a: &str, b: &str) -> bool {
    matches!((normalise_url(a), normalise_url(b)), (Some(x), Some(y)) if x == y)
}

/// Reads a response body, failing beyond `limit` bytes.
pub async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, MerchantError> {
    let too_large = || MerchantError::Network(format!("response body larger than {limit} bytes"));
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| MerchantError::Network(e.to_string()))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Who signs outbound requests, and how.
pub(crate) struct Signer<'a> {
    /// The HTTP client (no redirects, with a timeout).
    pub http: &'a reqwest::Client,
    /// The merchant's key.
    pub key: &'a PrivateKey,
    /// The merchant's OCID.
    pub ocid: u64,
    /// Whether plain HTTP to loopback hosts is allowed.
    pub allow_loopback_http: bool,
}

impl Signer<'_> {
    /// Sends `method url` with `body` (JSON when non-empty), signed at `now`, and returns the
    /// whole response.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: &[u8],
        now: i64,
    ) -> Result<PeerResponse, MerchantError> {
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
        )?;
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
            .map_err(|e| MerchantError::Network(e.to_string()))?;
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
    }

    #[test]
    fn endpoint_containment() {
        let e = "https://pg.example/opencharge";
        assert!(url_under_endpoint(
            "https://pg.example/opencharge/orders/create/abc",
            e
        ));
        assert!(url_under_endpoint("https://PG.example/opencharge/", e));
        assert!(!url_under_endpoint(
            "https://pg.example/opencharge-evil/orders/create/abc",
            e
        ));
        assert!(!url_under_endpoint(
            "https://evil.example/opencharge/orders/create/abc",
            e
        ));
        assert!(!url_under_endpoint(
            "https://pg.example/opencharge/x?y=1",
            e
        ));
        assert!(same_endpoint(e, "https://pg.example:443/opencharge/"));
        assert!(!same_endpoint(e, "http://pg.example/opencharge"));
    }

    #[test]
    fn response_signature_check() {
        let key = PrivateKey::generate();
        let body = br#"{"ok":true}"#.to_vec();
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
        // Wrong OCID, stale, tampered body, other key.
        assert!(signed
            .verify_signature(201, &key.public_key(), 1000)
            .is_err());
        assert!(signed
            .verify_signature(200, &key.public_key(), 2000)
            .is_err());
        let tampered = PeerResponse {
            body: br#"{"ok":false}"#.to_vec(),
            ..signed.clone()
        };
        assert!(tampered
            .verify_signature(200, &key.public_key(), 1000)
            .is_err());
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
    }
}
