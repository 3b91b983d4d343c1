//! Request authentication and response signing. [`OcRequest`] authenticates Opencharge peers
//! (`X-OC-*` headers, protocol notes §3.2), [`DeviceRequest`] authenticates wallet devices on
//! the app API with the same canonical layout keyed by device id, and [`sign_responses`] adds
//! the `X-OC-*` response signature (§3.3) to every buffered response. The shared machinery is
//! [`opencharge_peer::auth`]; this module binds it to the gateway's state.
//!
//! Checks run in a fixed order and stop at the first failure: header syntax → timestamp
//! window (±300 s, by the gateway's clock) → identity (OCID resolution or device lookup) →
//! signature over the exact request target and raw body bytes → rate limit per OCID or device
//! ([`crate::api::rate_limit`], 429 `RATE_LIMITED`) → nonce replay. The nonce is
//! recorded only for requests whose signature verified, so garbage cannot burn nonces.

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use opencharge_peer::auth::{
    auth_failure, check_single_headers, check_window, header_str, parse_json, read_body,
    record_nonce, request_target, sign_response, RequestVerifier,
};
use opencharge_protocol::auth::{
    check_nonce_syntax, generate_nonce, AuthFailure, HEADER_NONCE, HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
};
use opencharge_protocol::error_code::{ApiError, ErrorCode};
use opencharge_protocol::keys::{PrivateKey, PublicKey, VerifyOptions};
use serde::de::DeserializeOwned;

pub use opencharge_peer::auth::{NonceUse, OcRequest, NONCE_TTL_SECS};

use crate::error::{GatewayError, GatewayResult};
use crate::resolver::{Party, ResolveError};
use crate::state::AppState;
use crate::store::Device;

/// Header carrying the device id on app API requests (instead of `X-OC-ID`).
pub const HEADER_DEVICE: &str = "X-OC-Device";
/// Longest device id accepted in [`HEADER_DEVICE`].
pub const MAX_DEVICE_ID_LEN: usize = 64;
/// Largest response body [`sign_responses`] buffers and signs, bytes.
pub const MAX_SIGNED_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

#[async_trait]
impl RequestVerifier for AppState {
    fn now(&self) -> i64 {
        self.clock.now()
    }

    async fn resolve_sender(&self, ocid: u64) -> Result<Party, ResolveError> {
        self.resolver.resolve(ocid).await
    }

    fn admit_sender(&self, ocid: u64) -> Result<(), ApiError> {
        self.rate_limits.admit_ocid(ocid)
    }

    async fn use_nonce(
        &self,
        scope: &str,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, ApiError> {
        self.store
            .use_nonce(scope, nonce, expires_at, now)
            .await
            .map_err(|e| GatewayError::from(e).0)
    }
}

/// [`OcRequest`] as a handler's last extractor: rejections are the [`GatewayError`]s listed
/// on [`OcRequest`].
impl FromRequest<AppState> for OcRequest {
    type Rejection = GatewayError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        OcRequest::authenticate(req, state)
            .await
            .map_err(GatewayError)
    }
}

/// An [`OcRequest`] whose nonce is not recorded yet: the handler records it in the same
/// transaction as its write, and on its own on every other path (see
/// [`OcRequest::authenticate_deferring_nonce`]). Rejections are those of [`OcRequest`] but
/// `NONCE_REUSED`, which the handler answers.
#[derive(Debug, Clone)]
pub struct DeferredNonce(pub OcRequest, pub NonceUse);

impl FromRequest<AppState> for DeferredNonce {
    type Rejection = GatewayError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (request, nonce) = OcRequest::authenticate_deferring_nonce(req, state)
            .await
            .map_err(GatewayError)?;
        Ok(DeferredNonce(request, nonce))
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
/// `NONCE_REUSED`. Nonces are scoped per device. A device over its rate budget gets 429
/// `RATE_LIMITED` with `Retry-After` (checked after the signature, before the nonce).
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
        Ok(parse_json(&self.body)?)
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
        state.rate_limits.admit_device(&device_id)?;
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
    sign_response(
        response,
        &state.key,
        state.config.ocid,
        state.clock.as_ref(),
        MAX_SIGNED_RESPONSE_BYTES,
    )
    .await
}

fn required<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, ApiError> {
    header_str(headers, name).ok_or_else(|| auth_failure(AuthFailure::MissingHeader(name)))
}

fn check_device_id_syntax(device_id: &str) -> Result<(), ApiError> {
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

fn parse_timestamp(raw: &str) -> Result<i64, ApiError> {
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
}
