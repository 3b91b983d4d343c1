//! Inbound request authentication ([`OcRequest`], the `X-OC-*` headers of protocol notes
//! §3.2) and response signing ([`sign_response`], §3.3), for any peer that implements
//! [`RequestVerifier`] (its clock, its OCID directory and its nonce store). The building
//! blocks are public so a peer can authenticate other signers (the gateway's wallet devices)
//! with the same rules.
//!
//! Checks run in a fixed order and stop at the first failure: header syntax → timestamp
//! window (±300 s, by the peer's clock) → sender resolution → signature over the exact request
//! target and raw body bytes → the peer's rate limit ([`RequestVerifier::admit_sender`]) →
//! nonce replay. A nonce is recorded only for requests whose signature verified, so
//! unauthenticated requests cannot burn nonces (nor a sender's rate budget).
//!
//! Failures are [`ApiError`]s; each peer wraps them in its own HTTP error type.

use async_trait::async_trait;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, OriginalUri, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use opencharge_protocol::auth::{
    AuthFailure, RequestAuth, ResponseAuth, HEADER_ID, HEADER_NONCE, HEADER_SIGNATURE,
    HEADER_TIMESTAMP, TIMESTAMP_WINDOW_SECS,
};
use opencharge_protocol::error_code::{ApiError, ErrorCode};
use opencharge_protocol::keys::{PrivateKey, VerifyOptions};
use serde::de::DeserializeOwned;

use crate::clock::Clock;
use crate::error::{error_response, internal_error};
use crate::resolver::{Party, ResolveError};

/// How long a used nonce is remembered, seconds (twice the timestamp window).
pub const NONCE_TTL_SECS: i64 = 2 * TIMESTAMP_WINDOW_SECS;

/// What request authentication needs from a peer: its clock, its OCID directory and its
/// nonce store. Implemented by each peer's shared handler state.
#[async_trait]
pub trait RequestVerifier: Send + Sync {
    /// Current unix time, seconds, by the peer's clock.
    fn now(&self) -> i64;

    /// The verified party behind the sender `ocid`.
    async fn resolve_sender(&self, ocid: u64) -> Result<Party, ResolveError>;

    /// Admits one request of sender `ocid` whose signature has just verified, before its nonce
    /// is recorded: the peer's rate limit. The default admits everything; a refusal (429
    /// `RATE_LIMITED`) is returned to the client and nothing is recorded.
    fn admit_sender(&self, _ocid: u64) -> Result<(), ApiError> {
        Ok(())
    }

    /// Records `nonce` in `scope` until `expires_at`: `Ok(true)` when it was fresh,
    /// `Ok(false)` when it was already used. A storage failure is returned as the error the
    /// client sees (normally [`internal_error`]).
    async fn use_nonce(
        &self,
        scope: &str,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, ApiError>;
}

/// An authenticated Opencharge request: the verified sender, the raw body bytes exactly as
/// received (hash-covered by the signature), and the request's auth headers.
///
/// Rejections are 401 `INVALID_SIGNATURE` (missing, repeated or malformed headers; bad
/// signature), 401 `TIMESTAMP_EXPIRED`, 401 `UNKNOWN_OCID`, 502 `METADATA_UNAVAILABLE` (the
/// sender's metadata cannot be fetched or is invalid) and 401 `NONCE_REUSED`. The signed
/// `path` is the exact request target on the wire, base path and `?query` included.
#[derive(Debug, Clone)]
pub struct OcRequest {
    /// The caller, resolved through the OCID directory and verified.
    pub caller: Party,
    /// The raw request body.
    pub body: Bytes,
    /// The request's `X-OC-*` headers.
    pub auth: RequestAuth,
}

impl OcRequest {
    /// Parses the body as JSON; a malformed body is 400 `INVALID_REQUEST`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        parse_json(&self.body)
    }

    /// Authenticates `req` with `verifier`'s clock, directory and nonce store (see the
    /// module documentation for the order of checks), consuming its body.
    pub async fn authenticate<V: RequestVerifier>(
        req: Request,
        verifier: &V,
    ) -> Result<OcRequest, ApiError> {
        let (request, nonce) = Self::authenticate_deferring_nonce(req, verifier).await?;
        nonce.record(verifier).await?;
        Ok(request)
    }

    /// Every check of [`OcRequest::authenticate`] but the last: the nonce is returned, not
    /// recorded. The caller records it in the same transaction as the request's write (one
    /// commit instead of two), and with [`record_nonce`] on every path that does not reach that
    /// write, so a nonce is never accepted twice.
    pub async fn authenticate_deferring_nonce<V: RequestVerifier>(
        req: Request,
        verifier: &V,
    ) -> Result<(OcRequest, NonceUse), ApiError> {
        let method = req.method().as_str().to_string();
        let target = request_target(&req);
        check_single_headers(
            req.headers(),
            &[HEADER_ID, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE],
        )?;
        let auth = RequestAuth::from_headers(|name| header_str(req.headers(), name))
            .map_err(auth_failure)?;
        let now = verifier.now();
        check_window(auth.timestamp, now)?;
        let caller = verifier
            .resolve_sender(auth.ocid)
            .await
            .map_err(|e| e.to_api_error())?;
        let body = read_body(req, verifier).await?;
        auth.verify(
            &caller.public_key,
            &method,
            &target,
            &body,
            now,
            VerifyOptions::STRICT,
        )
        .map_err(auth_failure)?;
        verifier.admit_sender(auth.ocid)?;
        let nonce = NonceUse::new(format!("ocid:{}", auth.ocid), auth.nonce.clone(), now);
        Ok((OcRequest { caller, body, auth }, nonce))
    }
}

/// A verified request's nonce that is still to be recorded (see
/// [`OcRequest::authenticate_deferring_nonce`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonceUse {
    /// The nonce's scope (`ocid:<sender>`, or a device scope).
    pub scope: String,
    /// The nonce as sent.
    pub nonce: String,
    /// Until when it must be remembered, unix seconds (`now` + [`NONCE_TTL_SECS`]).
    pub expires_at: i64,
    /// When the request was verified, unix seconds.
    pub now: i64,
}

impl NonceUse {
    /// The nonce `nonce` in `scope`, used at `now`, remembered for [`NONCE_TTL_SECS`].
    pub fn new(scope: String, nonce: String, now: i64) -> NonceUse {
        NonceUse {
            scope,
            nonce,
            expires_at: now.saturating_add(NONCE_TTL_SECS),
            now,
        }
    }

    /// Records this nonce on its own with [`record_nonce`]: 401 `NONCE_REUSED` when it was used
    /// before.
    pub async fn record<V: RequestVerifier + ?Sized>(&self, verifier: &V) -> Result<(), ApiError> {
        record_nonce(verifier, &self.scope, &self.nonce, self.now).await
    }

    /// 401 `NONCE_REUSED` for this nonce.
    pub fn reused(&self) -> ApiError {
        nonce_reused(&self.nonce)
    }
}

/// 401 `NONCE_REUSED`: the nonce was used before.
pub fn nonce_reused(nonce: &str) -> ApiError {
    ApiError::request_auth(
        ErrorCode::NonceReused,
        format!("nonce {nonce:?} was already used"),
    )
}

/// The exact request target as received: the original (pre-nesting) path plus `?query`.
pub fn request_target(req: &Request) -> String {
    let uri = req
        .extensions()
        .get::<OriginalUri>()
        .map(|o| &o.0)
        .unwrap_or_else(|| req.uri());
    uri.path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| uri.path().to_string())
}

/// Reads the whole request body (within the router's body limit); a body that cannot be read
/// is `INVALID_REQUEST` with the extractor's status (413 when too large).
pub async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        let status = e.status().as_u16();
        ApiError::invalid_request(format!("cannot read request body: {e}")).with_status(status)
    })
}

/// Parses a body as JSON with the strict reader ([`opencharge_protocol::strict_json`]): malformed
/// JSON, a shape serde refuses, or a key repeated in any object is 400 `INVALID_REQUEST`
/// naming the field or the key.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    opencharge_protocol::strict_json::from_slice(body).map_err(|e| {
        let message = match e {
            opencharge_protocol::ProtocolError::Json(message) => message,
            other => other.to_string(),
        };
        ApiError::invalid_request(format!("invalid JSON body: {message}"))
    })
}

/// Records a verified request's nonce in `scope` for [`NONCE_TTL_SECS`]; 401 `NONCE_REUSED`
/// when it was used before.
pub async fn record_nonce<V: RequestVerifier + ?Sized>(
    verifier: &V,
    scope: &str,
    nonce: &str,
    now: i64,
) -> Result<(), ApiError> {
    let fresh = verifier
        .use_nonce(scope, nonce, now.saturating_add(NONCE_TTL_SECS), now)
        .await?;
    if fresh {
        Ok(())
    } else {
        Err(nonce_reused(nonce))
    }
}

/// 401 `TIMESTAMP_EXPIRED` unless `timestamp` is within ±[`TIMESTAMP_WINDOW_SECS`] of `now`
/// (inclusive).
pub fn check_window(timestamp: i64, now: i64) -> Result<(), ApiError> {
    if timestamp.abs_diff(now) > TIMESTAMP_WINDOW_SECS.unsigned_abs() {
        return Err(auth_failure(AuthFailure::TimestampExpired {
            timestamp,
            now,
        }));
    }
    Ok(())
}

/// The 401 for a request-authentication failure: `TIMESTAMP_EXPIRED` for a stale timestamp,
/// `INVALID_SIGNATURE` for everything else.
pub fn auth_failure(failure: AuthFailure) -> ApiError {
    let code = match failure {
        AuthFailure::TimestampExpired { .. } => ErrorCode::TimestampExpired,
        _ => ErrorCode::InvalidSignature,
    };
    ApiError::request_auth(code, failure.to_string())
}

/// A header's value when it is present and visible ASCII.
pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Rejects a repeated auth header or one that is not visible ASCII (an ambiguous request).
pub fn check_single_headers(headers: &HeaderMap, names: &[&'static str]) -> Result<(), ApiError> {
    for name in names {
        let mut values = headers.get_all(*name).iter();
        if let Some(first) = values.next() {
            let reason = if values.next().is_some() {
                "header appears more than once"
            } else if first.to_str().is_err() {
                "header value is not visible ASCII"
            } else {
                continue;
            };
            return Err(auth_failure(AuthFailure::MalformedHeader {
                header: name,
                reason: reason.into(),
            }));
        }
    }
    Ok(())
}

/// Signs `response` as `ocid` with `key` (`X-OC-ID`, `X-OC-Timestamp`, `X-OC-Signature` over
/// status and body bytes) at `clock`'s time, buffering at most `max_body_bytes`. Server-sent
/// event streams (`text/event-stream`) pass through unsigned. A body that cannot be buffered
/// becomes a signed 500 `INTERNAL_ERROR`. Peers call it from their response middleware.
pub async fn sign_response(
    response: Response,
    key: &PrivateKey,
    ocid: u64,
    clock: &dyn Clock,
    max_body_bytes: usize,
) -> Response {
    let streaming = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("text/event-stream"));
    if streaming {
        return response;
    }
    let (parts, body) = response.into_parts();
    let (mut parts, bytes) = match axum::body::to_bytes(body, max_body_bytes).await {
        Ok(bytes) => (parts, bytes),
        Err(e) => {
            let failed =
                error_response(&internal_error(format!("cannot buffer response body: {e}")));
            let (failed_parts, failed_body) = failed.into_parts();
            let bytes = axum::body::to_bytes(failed_body, max_body_bytes)
                .await
                .unwrap_or_default();
            (failed_parts, bytes)
        }
    };
    match ResponseAuth::sign(key, ocid, parts.status.as_u16(), &bytes, clock.now()) {
        Ok(auth) => {
            for (name, value) in auth.headers() {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    parts.headers.insert(name, value);
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot sign response"),
    }
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Mutex;

    use axum::http::StatusCode;
    use opencharge_protocol::auth::generate_nonce;

    use crate::clock::OffsetClock;

    #[test]
    fn window_is_inclusive_300() {
        assert!(check_window(1000, 1300).is_ok());
        assert!(check_window(1000, 700).is_ok());
        assert!(check_window(1000, 1301).is_err());
        assert!(check_window(i64::MIN, i64::MAX).is_err());
        let expired = check_window(0, 301).unwrap_err();
        assert_eq!(
            (expired.code, expired.status),
            (ErrorCode::TimestampExpired, 401)
        );
    }

    /// A verifier knowing one sender, with an in-memory nonce set.
    struct Peer {
        sender: Party,
        clock: OffsetClock,
        nonces: Mutex<HashSet<(String, String)>>,
    }

    #[async_trait]
    impl RequestVerifier for Peer {
        fn now(&self) -> i64 {
            self.clock.now()
        }

        async fn resolve_sender(&self, ocid: u64) -> Result<Party, ResolveError> {
            if ocid == self.sender.ocid {
                Ok(self.sender.clone())
            } else {
                Err(ResolveError::Unknown(ocid))
            }
        }

        async fn use_nonce(
            &self,
            scope: &str,
            nonce: &str,
            _expires_at: i64,
            _now: i64,
        ) -> Result<bool, ApiError> {
            let mut nonces = self.nonces.lock().map_err(internal_error)?;
            Ok(nonces.insert((scope.to_string(), nonce.to_string())))
        }
    }

    fn request(headers: &[(&str, String)], target: &str, body: &[u8]) -> Request {
        let mut builder = Request::builder().method("POST").uri(target);
        for (name, value) in headers {
            builder = builder.header(*name, value);
        }
        builder.body(Body::from(body.to_vec())).unwrap()
    }

    #[tokio::test]
    async fn requests_authenticate_once_in_order() {
        let key = PrivateKey::generate();
        let peer = Peer {
            sender: Party {
                ocid: 500,
                name: "M".into(),
                icon: None,
                public_key: key.public_key(),
                endpoint: None,
                capabilities: Vec::new(),
                currencies: Vec::new(),
                accepts: Vec::new(),
            },
            clock: OffsetClock::default(),
            nonces: Mutex::new(HashSet::new()),
        };
        let now = peer.now();
        let target = "/opencharge/orders?x=1";
        let body = br#"{"a":1}"#;
        let sign = |ocid: u64, at: i64| {
            RequestAuth::sign(&key, ocid, "POST", target, body, at, &generate_nonce())
                .unwrap()
                .headers()
                .to_vec()
        };
        let headers = sign(500, now);
        let ok = OcRequest::authenticate(request(&headers, target, body), &peer)
            .await
            .unwrap();
        assert_eq!(ok.caller.ocid, 500);
        assert_eq!(&ok.body[..], body);
        assert_eq!(ok.json::<serde_json::Value>().unwrap()["a"], 1);

        let code = |r: Result<OcRequest, ApiError>| {
            let e = r.unwrap_err();
            (e.code, e.status)
        };
        // Replayed nonce.
        let replay = OcRequest::authenticate(request(&headers, target, body), &peer).await;
        assert_eq!(code(replay), (ErrorCode::NonceReused, 401));
        // Other target or body bytes.
        let moved = OcRequest::authenticate(request(&sign(500, now), "/other", body), &peer).await;
        assert_eq!(code(moved), (ErrorCode::InvalidSignature, 401));
        let changed =
            OcRequest::authenticate(request(&sign(500, now), target, b"{\"a\":2}"), &peer).await;
        assert_eq!(code(changed), (ErrorCode::InvalidSignature, 401));
        // Stale, unknown sender, missing and repeated headers.
        let stale = OcRequest::authenticate(request(&sign(500, now - 301), target, body), &peer);
        assert_eq!(code(stale.await), (ErrorCode::TimestampExpired, 401));
        let unknown = OcRequest::authenticate(request(&sign(501, now), target, body), &peer);
        assert_eq!(code(unknown.await), (ErrorCode::UnknownOcid, 401));
        let missing = OcRequest::authenticate(request(&[], target, body), &peer).await;
        assert_eq!(code(missing), (ErrorCode::InvalidSignature, 401));
        let mut doubled = sign(500, now);
        doubled.push((HEADER_NONCE, "n2".into()));
        let doubled = OcRequest::authenticate(request(&doubled, target, body), &peer).await;
        assert_eq!(code(doubled), (ErrorCode::InvalidSignature, 401));
    }

    #[tokio::test]
    async fn responses_are_signed_except_event_streams() {
        let key = PrivateKey::generate();
        let clock = OffsetClock::default();
        let plain = Response::builder()
            .status(StatusCode::CREATED)
            .body(Body::from("{}"))
            .unwrap();
        let signed = sign_response(plain, &key, 200, &clock, 1024).await;
        let headers = signed.headers().clone();
        let auth = ResponseAuth::from_headers(|n| header_str(&headers, n)).unwrap();
        assert_eq!(auth.ocid, 200);
        let bytes = axum::body::to_bytes(signed.into_body(), 1024)
            .await
            .unwrap();
        auth.verify(
            &key.public_key(),
            201,
            &bytes,
            clock.now(),
            VerifyOptions::STRICT,
        )
        .unwrap();

        let too_big = Response::new(Body::from(vec![b'x'; 2048]));
        let failed = sign_response(too_big, &key, 200, &clock, 1024).await;
        assert_eq!(failed.status().as_u16(), 500);
        assert!(failed.headers().contains_key(HEADER_SIGNATURE));

        let stream = Response::builder()
            .header(CONTENT_TYPE, "text/event-stream")
            .body(Body::empty())
            .unwrap();
        let passed = sign_response(stream, &key, 200, &clock, 1024).await;
        assert!(!passed.headers().contains_key(HEADER_SIGNATURE));
    }
}
