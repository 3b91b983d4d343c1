//! Request authentication and response signing. [`OcRequest`] authenticates Opencharge peers
//! (`X-OC-*` headers, protocol notes §3.2), [`DeviceRequest`] authenticates wallet devices on
//! the app API with the same canonical layout keyed by device id, and [`sign_responses`] adds
//! the `X-OC-*` response signature (§3.3) to every buffered response.
//!
//! Checks run in a fixed order and stop at the first failure: header syntax → timestamp
//! window (±300 s, by the gateway's clock) → identity (OCID resolution or device lookup) →
//! signature over the exact request target and raw body bytes → nonce replay. The nonce is
//! recorded only for requests whose signature verified, so garbage cannot burn nonces.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, OriginalUri, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use opencharge_protocol::auth::{
    check_nonce_syntax, generate_nonce, AuthFailure, RequestAuth, ResponseAuth, HEADER_ID,
    HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP, TIMESTAMP_WINDOW_SECS,
};
use opencharge_protocol::error_code::ErrorCode;
use opencharge_protocol::keys::{PrivateKey, PublicKey, VerifyOptions};
use serde::de::DeserializeOwned;

use crate::error::{GatewayError, GatewayResult};
use crate::resolver::Party;
use crate::state::AppState;
use crate::store::Device;

/// Header carrying the device id on app API requests (instead of `X-OC-ID`).
pub const HEADER_DEVICE: &str = "X-OC-Device";
/// How long a used nonce is remembered, seconds (twice the timestamp window).
pub const NONCE_TTL_SECS: i64 = 2 * TIMESTAMP_WINDOW_SECS;
/// Longest device id accepted in [`HEADER_DEVICE`].
pub const MAX_DEVICE_ID_LEN: usize = 64;
/// Largest response body [`sign_responses`] buffers and signs, bytes.
pub const MAX_SIGNED_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// An authenticated Opencharge request: the verified caller, the raw body bytes exactly as
/// received (hash-covered by the signature), and the request's auth headers.
///
/// Use it as a handler's last extractor. Rejections are 401 `INVALID_SIGNATURE` (missing,
/// duplicated or malformed headers; bad signature), 401 `TIMESTAMP_EXPIRED`, 401
/// `UNKNOWN_OCID`, 502 `METADATA_UNAVAILABLE` (the caller's metadata cannot be fetched or is
/// invalid) and 401 `NONCE_REUSED`. The signed `path` is the exact request target on the wire,
/// base path and `?query` included.
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
    pub fn json<T: DeserializeOwned>(&self) -> GatewayResult<T> {
        parse_json(&self.body)
    }
}

impl FromRequest<AppState> for OcRequest {
    type Rejection = GatewayError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let method = req.method().as_str().to_string();
        let target = request_target(&req);
        check_single_headers(
            req.headers(),
            &[HEADER_ID, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE],
        )?;
        let auth = RequestAuth::from_headers(|name| header_str(req.headers(), name))
            .map_err(auth_failure)?;
        let now = state.now();
        check_window(auth.timestamp, now)?;
        let caller = state.resolver.resolve(auth.ocid).await?;
        let body = read_body(req, state).await?;
        auth.verify(
            &caller.public_key,
            &method,
            &target,
            &body,
            now,
            VerifyOptions::STRICT,
        )
        .map_err(auth_failure)?;
        record_nonce(state, &format!("ocid:{}", auth.ocid), &auth.nonce, now).await?;
        Ok(OcRequest { caller, body, auth })
    }
}

/// A request authenticated by a registered wallet device (the app API, `docs/app-api.md`).
///
/// # Wire format
///
/// The device signs each request with its private key. Four headers, all required:
///
/// | header | content |
/// |---|---|
/// | `X-OC-Device` | the device id returned at registration (`dev_` + 32 hex) |
/// | `X-OC-Timestamp` | unix seconds, decimal; must be within ±300 s of the gateway's clock |
/// | `X-OC-Nonce` | 1–128 characters of `[A-Za-z0-9_-]`, never reused by this device (`req_` + 32 random hex recommended) |
/// | `X-OC-Signature` | 130-hex `r‖s‖v` (or 128-hex `r‖s`), low-S, over SHA-256 of the canonical string |
///
/// The canonical string is the `X-OC-*` request layout with the device id in the first field,
/// six fields joined by `\n` (LF), no trailing newline:
///
/// ```text
/// <device_id>\n<timestamp>\n<nonce>\n<METHOD>\n<path>\n<body_hash>
/// ```
///
/// * `METHOD` is uppercase.
/// * `path` is the exact request target on the wire: absolute path including the base path
///   (e.g. `/opencharge/app/sessions`) plus `?query` when present; no scheme or host.
/// * `body_hash` is lowercase hex SHA-256 of the raw body bytes sent (of the empty string when
///   there is no body: `e3b0c442…b855`).
///
/// [`device_canonical`] builds the string and [`device_auth_headers`] builds the headers.
/// Rejections (all 401): `INVALID_SIGNATURE` for missing or malformed headers, an unknown or
/// inactive (rotated, revoked) device, or a bad signature; `TIMESTAMP_EXPIRED`;
/// `NONCE_REUSED`. Nonces are scoped per device.
#[derive(Debug, Clone)]
pub struct DeviceRequest {
    /// The authenticated, active device.
    pub device: Device,
    /// The raw request body.
    pub body: Bytes,
}

impl DeviceRequest {
    /// Parses the body as JSON; a malformed body is 400 `INVALID_REQUEST`.
    pub fn json<T: DeserializeOwned>(&self) -> GatewayResult<T> {
        parse_json(&self.body)
    }
}

impl FromRequest<AppState> for DeviceRequest {
    type Rejection = GatewayError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let method = req.method().as_str().to_string();
        let target = request_target(&req);
        let headers = req.headers();
        check_single_headers(
            headers,
            &[
                HEADER_DEVICE,
                HEADER_TIMESTAMP,
                HEADER_NONCE,
                HEADER_SIGNATURE,
            ],
        )?;
        let device_id = required(headers, HEADER_DEVICE)?.to_string();
        check_device_id_syntax(&device_id)?;
        let timestamp = parse_timestamp(required(headers, HEADER_TIMESTAMP)?)?;
        let nonce = required(headers, HEADER_NONCE)?.to_string();
        check_nonce_syntax(&nonce).map_err(auth_failure)?;
        let signature = required(headers, HEADER_SIGNATURE)?.to_string();

        let now = state.now();
        check_window(timestamp, now)?;
        let device = state
            .store
            .device(&device_id)
            .await?
            .filter(|d| d.status == "active")
            .ok_or_else(|| {
                GatewayError::auth(ErrorCode::InvalidSignature, "unknown or inactive device")
            })?;
        let key = PublicKey::from_hex(&device.public_key).map_err(|e| {
            GatewayError::internal(format!("stored key of device {device_id} is invalid: {e}"))
        })?;
        let body = read_body(req, state).await?;
        let canonical = device_canonical(&device_id, timestamp, &nonce, &method, &target, &body);
        key.verify_message(canonical.as_bytes(), &signature, VerifyOptions::STRICT)
            .map_err(|e| {
                GatewayError::auth(
                    ErrorCode::InvalidSignature,
                    format!("device request signature does not verify: {e}"),
                )
            })?;
        record_nonce(state, &format!("device:{device_id}"), &nonce, now).await?;
        Ok(DeviceRequest { device, body })
    }
}

/// The device request canonical string `device_id\ntimestamp\nnonce\nMETHOD\npath\nbody_hash`
/// (see [`DeviceRequest`]). `path` is the exact request target, `body` the raw bytes sent.
pub fn device_canonical(
    device_id: &str,
    timestamp: i64,
    nonce: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> String {
    opencharge_protocol::auth::canonical_request(device_id, timestamp, nonce, method, path, body)
}

/// The four headers of a device-signed request at time `now`, with a fresh nonce: attach them
/// to a request whose request target is exactly `path` and whose body is exactly `body`.
pub fn device_auth_headers(
    key: &PrivateKey,
    device_id: &str,
    method: &str,
    path: &str,
    body: &[u8],
    now: i64,
) -> Vec<(&'static str, String)> {
    let nonce = generate_nonce();
    let canonical = device_canonical(device_id, now, &nonce, method, path, body);
    let signature = match key.sign_message(canonical.as_bytes()) {
        Ok(signature) => signature.to_hex(),
        Err(e) => {
            // Cannot happen with a valid key; the request then fails authentication cleanly.
            tracing::error!(error = %e, "cannot sign device request");
            String::new()
        }
    };
    vec![
        (HEADER_DEVICE, device_id.to_string()),
        (HEADER_TIMESTAMP, now.to_string()),
        (HEADER_NONCE, nonce),
        (HEADER_SIGNATURE, signature),
    ]
}

/// Middleware: signs every response with the gateway's key (`X-OC-ID`, `X-OC-Timestamp`,
/// `X-OC-Signature` over status and body bytes, protocol notes §3.3). Server-sent-event
/// streams (`text/event-stream`) pass through unsigned. A body that cannot be read becomes a
/// signed 500 `INTERNAL_ERROR`.
pub async fn sign_responses(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let streaming = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("text/event-stream"));
    if streaming {
        return response;
    }
    let (parts, body) = response.into_parts();
    let (mut parts, bytes) = match axum::body::to_bytes(body, MAX_SIGNED_RESPONSE_BYTES).await {
        Ok(bytes) => (parts, bytes),
        Err(e) => {
            let failed =
                GatewayError::internal(format!("cannot buffer response body: {e}")).into_response();
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

async fn read_body(req: Request, state: &AppState) -> GatewayResult<Bytes> {
    Bytes::from_request(req, state).await.map_err(|e| {
        let status = e.status().as_u16();
        GatewayError::invalid(format!("cannot read request body: {e}")).with_status(status)
    })
}

fn parse_json<T: DeserializeOwned>(body: &[u8]) -> GatewayResult<T> {
    serde_json::from_slice(body)
        .map_err(|e| GatewayError::invalid(format!("invalid JSON body: {e}")))
}

async fn record_nonce(state: &AppState, scope: &str, nonce: &str, now: i64) -> GatewayResult<()> {
    let fresh = state
        .store
        .use_nonce(scope, nonce, now.saturating_add(NONCE_TTL_SECS), now)
        .await?;
    if fresh {
        Ok(())
    } else {
        Err(GatewayError::auth(
            ErrorCode::NonceReused,
            format!("nonce {nonce:?} was already used"),
        ))
    }
}

fn check_window(timestamp: i64, now: i64) -> GatewayResult<()> {
    if timestamp.abs_diff(now) > TIMESTAMP_WINDOW_SECS.unsigned_abs() {
        return Err(auth_failure(AuthFailure::TimestampExpired {
            timestamp,
            now,
        }));
    }
    Ok(())
}

fn auth_failure(failure: AuthFailure) -> GatewayError {
    let code = match failure {
        AuthFailure::TimestampExpired { .. } => ErrorCode::TimestampExpired,
        _ => ErrorCode::InvalidSignature,
    };
    GatewayError::auth(code, failure.to_string())
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Rejects a repeated auth header or one that is not visible ASCII (an ambiguous request).
fn check_single_headers(headers: &HeaderMap, names: &[&'static str]) -> GatewayResult<()> {
    for name in names {
        let mut values = headers.get_all(*name).iter();
        if let Some(first) = values.next() {
            if values.next().is_some() {
                return Err(auth_failure(AuthFailure::MalformedHeader {
                    header: name,
                    reason: "header appears more than once".into(),
                }));
            }
            if first.to_str().is_err() {
                return Err(auth_failure(AuthFailure::MalformedHeader {
                    header: name,
                    reason: "header value is not visible ASCII".into(),
                }));
            }
        }
    }
    Ok(())
}

fn required<'a>(headers: &'a HeaderMap, name: &'static str) -> GatewayResult<&'a str> {
    header_str(headers, name).ok_or_else(|| auth_failure(AuthFailure::MissingHeader(name)))
}

fn check_device_id_syntax(device_id: &str) -> GatewayResult<()> {
    if opencharge_protocol::auth::is_header_token(device_id, MAX_DEVICE_ID_LEN) {
        Ok(())
    } else {
        Err(auth_failure(AuthFailure::MalformedHeader {
            header: HEADER_DEVICE,
            reason: format!(
                "device id must be 1..={MAX_DEVICE_ID_LEN} characters of [A-Za-z0-9_-]"
            ),
        }))
    }
}

fn parse_timestamp(raw: &str) -> GatewayResult<i64> {
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    let well_formed =
        !digits.is_empty() && raw.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit());
    well_formed
        .then(|| raw.parse::<i64>().ok())
        .flatten()
        .ok_or_else(|| {
            auth_failure(AuthFailure::MalformedHeader {
                header: HEADER_TIMESTAMP,
                reason: format!("expected a decimal integer, got {raw:?}"),
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_canonical_layout() {
        let s = device_canonical(
            "dev_1",
            1_706_500_000,
            "req_a",
            "post",
            "/opencharge/app/x?y=1",
            b"",
        );
        assert_eq!(
            s,
            "dev_1\n1706500000\nreq_a\nPOST\n/opencharge/app/x?y=1\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn device_headers_verify() {
        let key = PrivateKey::generate();
        let headers = device_auth_headers(&key, "dev_1", "POST", "/p", b"{}", 100);
        let get = |n: &str| {
            headers
                .iter()
                .find(|(h, _)| *h == n)
                .map(|(_, v)| v.clone())
        };
        let nonce = get(HEADER_NONCE).unwrap();
        let canonical = device_canonical("dev_1", 100, &nonce, "POST", "/p", b"{}");
        key.public_key()
            .verify_message(
                canonical.as_bytes(),
                &get(HEADER_SIGNATURE).unwrap(),
                VerifyOptions::STRICT,
            )
            .unwrap();
        assert_eq!(get(HEADER_DEVICE).as_deref(), Some("dev_1"));
        assert_eq!(get(HEADER_TIMESTAMP).as_deref(), Some("100"));
    }

    #[test]
    fn timestamp_syntax() {
        assert_eq!(parse_timestamp("123").unwrap(), 123);
        assert_eq!(parse_timestamp("-5").unwrap(), -5);
        for bad in ["", "-", "1.5", " 1", "+1", "99999999999999999999"] {
            assert!(parse_timestamp(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn window_is_inclusive_300() {
        assert!(check_window(1000, 1300).is_ok());
        assert!(check_window(1000, 700).is_ok());
        assert!(check_window(1000, 1301).is_err());
        assert!(check_window(i64::MIN, i64::MAX).is_err());
    }
}
