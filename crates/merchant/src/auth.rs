//! Inbound request authentication ([`OcRequest`], the `X-OC-*` headers of protocol notes
//! §3.2) and response signing ([`sign_responses`], §3.3) for the merchant's HTTP API.
//!
//! Checks run in a fixed order and stop at the first failure: header syntax → timestamp
//! window (±300 s) → sender resolution through the merchant's directory → signature over the
//! exact request target and raw body bytes → nonce replay. A nonce is recorded only after the
//! signature verifies, so unauthenticated requests cannot burn nonces.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, OriginalUri, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use opencharge_protocol::auth::{
    AuthFailure, RequestAuth, ResponseAuth, HEADER_ID, HEADER_NONCE, HEADER_SIGNATURE,
    HEADER_TIMESTAMP, TIMESTAMP_WINDOW_SECS,
};
use opencharge_protocol::error_code::ErrorCode;
use opencharge_protocol::keys::VerifyOptions;

use crate::error::HttpError;
use crate::resolver::{Party, ResolveError};
use crate::state::AppState;

/// How long a used nonce is remembered, seconds (twice the timestamp window).
pub const NONCE_TTL_SECS: i64 = 2 * TIMESTAMP_WINDOW_SECS;

/// Largest request body accepted, bytes.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// Largest response body signed, bytes.
const MAX_SIGNED_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// An authenticated Opencharge request: the verified sender and the raw body bytes exactly as
/// received (covered by the signature).
///
/// Rejections: 401 `INVALID_SIGNATURE` (missing, repeated or malformed headers, bad
/// signature), 401 `TIMESTAMP_EXPIRED`, 401 `UNKNOWN_OCID` (not in the directory), 502
/// `METADATA_UNAVAILABLE` (its metadata cannot be fetched or is invalid), 401
/// `NONCE_REUSED`.
#[derive(Debug, Clone)]
pub(crate) struct OcRequest {
    /// The sender, resolved and verified.
    pub caller: Party,
    /// The raw request body.
    pub body: Bytes,
}

impl FromRequest<AppState> for OcRequest {
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let method = req.method().as_str().to_string();
        let target = request_target(&req);
        check_single_headers(
            req.headers(),
            &[HEADER_ID, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE],
        )?;
        let auth =
            RequestAuth::from_headers(|name| req.headers().get(name).and_then(|v| v.to_str().ok()))
                .map_err(auth_failure)?;
        let now = state.now();
        if auth.timestamp.abs_diff(now) > TIMESTAMP_WINDOW_SECS.unsigned_abs() {
            return Err(auth_failure(AuthFailure::TimestampExpired {
                timestamp: auth.timestamp,
                now,
            }));
        }
        let caller = state
            .resolver
            .resolve(auth.ocid)
            .await
            .map_err(|e| match e {
                ResolveError::Unknown(ocid) => {
                    HttpError::auth(ErrorCode::UnknownOcid, format!("unknown OCID {ocid}"))
                }
                other => HttpError::new(ErrorCode::MetadataUnavailable, other.to_string()),
            })?;
        let body = Bytes::from_request(req, state).await.map_err(|e| {
            let status = e.status().as_u16();
            HttpError::invalid(format!("cannot read request body: {e}")).with_status(status)
        })?;
        auth.verify(
            &caller.public_key,
            &method,
            &target,
            &body,
            now,
            VerifyOptions::STRICT,
        )
        .map_err(auth_failure)?;
        let fresh = state.store.use_nonce(
            &format!("ocid:{}", auth.ocid),
            &auth.nonce,
            now.saturating_add(NONCE_TTL_SECS),
            now,
        )?;
        if !fresh {
            return Err(HttpError::auth(
                ErrorCode::NonceReused,
                format!("nonce {:?} was already used", auth.nonce),
            ));
        }
        Ok(OcRequest { caller, body })
    }
}

fn auth_failure(failure: AuthFailure) -> HttpError {
    let code = match failure {
        AuthFailure::TimestampExpired { .. } => ErrorCode::TimestampExpired,
        _ => ErrorCode::InvalidSignature,
    };
    HttpError::auth(code, failure.to_string())
}

/// Rejects a repeated auth header or one that is not visible ASCII.
fn check_single_headers(headers: &HeaderMap, names: &[&'static str]) -> Result<(), HttpError> {
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

/// The exact request target as received: the original (pre-nesting) path plus `?query`.
fn request_target(req: &Request) -> String {
    let uri = req
        .extensions()
        .get::<OriginalUri>()
        .map(|o| &o.0)
        .unwrap_or_else(|| req.uri());
    uri.path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| uri.path().to_string())
}

/// Middleware: signs every response with the merchant's key (`X-OC-ID`, `X-OC-Timestamp`,
/// `X-OC-Signature` over status and body bytes). A body that cannot be buffered becomes a
/// signed 500.
pub(crate) async fn sign_responses(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let response = next.run(req).await;
    let (parts, body) = response.into_parts();
    let (mut parts, bytes) = match axum::body::to_bytes(body, MAX_SIGNED_RESPONSE_BYTES).await {
        Ok(bytes) => (parts, bytes),
        Err(e) => {
            let failed =
                HttpError::internal(format!("cannot buffer response body: {e}")).into_response();
            let (failed_parts, failed_body) = failed.into_parts();
            let bytes = axum::body::to_bytes(failed_body, MAX_SIGNED_RESPONSE_BYTES)
                .await
                .unwrap_or_default();
            (failed_parts, bytes)
        }
    };
    match ResponseAuth::sign(
        &state.key,
        state.config.ocid,
        parts.status.as_u16(),
        &bytes,
        state.now(),
    ) {
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
