//! Inbound request authentication ([`OcRequest`], the `X-OC-*` headers of protocol notes
//! §3.2) and response signing ([`sign_responses`], §3.3) for the merchant's HTTP API. The
//! machinery is [`opencharge_peer::auth`]; this module binds it to the merchant's clock,
//! directory and nonce store.
//!
//! Checks run in a fixed order and stop at the first failure: header syntax → timestamp
//! window (±300 s) → sender resolution through the merchant's directory → signature over the
//! exact request target and raw body bytes → nonce replay. A nonce is recorded only after the
//! signature verifies, so unauthenticated requests cannot burn nonces.

use async_trait::async_trait;
use axum::extract::{FromRequest, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use opencharge_peer::auth::{sign_response, RequestVerifier};
use opencharge_protocol::error_code::ApiError;

pub(crate) use opencharge_peer::auth::OcRequest;

use crate::error::HttpError;
use crate::resolver::{Party, ResolveError};
use crate::state::AppState;

/// Largest request body accepted, bytes.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// Largest response body signed, bytes.
const MAX_SIGNED_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

#[async_trait]
impl RequestVerifier for AppState {
    fn now(&self) -> i64 {
        self.clock.now()
    }

    async fn resolve_sender(&self, ocid: u64) -> Result<Party, ResolveError> {
        self.resolver.resolve(ocid).await
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
            .map_err(|e| HttpError::from(e).0)
    }
}

/// [`OcRequest`] as a handler's last extractor. Rejections: 401 `INVALID_SIGNATURE`
/// (missing, repeated or malformed headers, bad signature), 401 `TIMESTAMP_EXPIRED`, 401
/// `UNKNOWN_OCID` (not in the directory), 502 `METADATA_UNAVAILABLE` (its metadata cannot be
/// fetched or is invalid), 401 `NONCE_REUSED`.
impl FromRequest<AppState> for OcRequest {
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        OcRequest::authenticate(req, state).await.map_err(HttpError)
    }
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
    sign_response(
        response,
        &state.key,
        state.config.ocid,
        state.clock.as_ref(),
        MAX_SIGNED_RESPONSE_BYTES,
    )
    .await
}
