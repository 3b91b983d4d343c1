//! Errors: [`MerchantError`] for the library API, and [`HttpError`], the Opencharge
//! `{"error": {...}}` envelope with its status that the merchant's HTTP handlers return.

use axum::response::{IntoResponse, Response};
use opencharge_peer::error::{error_response, internal_error};
use opencharge_protocol::error_code::{ApiError, ErrorCode};
use opencharge_protocol::ProtocolError;

/// Why a merchant operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MerchantError {
    /// The configuration breaks a rule; nothing was started.
    #[error("invalid merchant configuration: {0}")]
    Config(String),
    /// An order to create breaks a rule (items, prices, currency, text fields).
    #[error("invalid order: {0}")]
    InvalidOrder(String),
    /// No order with this id exists.
    #[error("order {0:?} not found")]
    OrderNotFound(String),
    /// The order exists but cannot be offered for payment (paid, cancelled or expired).
    #[error("order {id:?} cannot be paid: {reason}")]
    OrderNotPayable {
        /// The order id.
        id: String,
        /// Why.
        reason: String,
    },
    /// A scanned text is not the expected Opencharge payload.
    #[error("invalid QR payload: {0}")]
    InvalidQr(String),
    /// A scanned payload is past its `expiresAt`.
    #[error("expired: {0}")]
    Expired(String),
    /// A counterparty's OCID cannot be resolved to verified metadata.
    #[error("cannot resolve OCID {ocid}: {reason}")]
    Resolve {
        /// The OCID.
        ocid: u64,
        /// Why (unknown, unreachable, invalid or unsigned metadata).
        reason: String,
    },
    /// A URL is not allowed: wrong scheme or host, or not under the party's published endpoint.
    #[error("URL not allowed: {0}")]
    UrlNotAllowed(String),
    /// Connection, TLS, timeout or size failure talking to a peer.
    #[error("network error: {0}")]
    Network(String),
    /// The peer answered with an Opencharge error (its code, message and HTTP status).
    #[error("peer refused: {0}")]
    Peer(ApiError),
    /// The peer's answer is malformed or fails a check (bad response signature, URL outside
    /// its endpoint, missing fields).
    #[error("invalid response from peer: {0}")]
    InvalidResponse(String),
    /// Storage failure (SQLite).
    #[error("storage error: {0}")]
    Store(String),
    /// Waiting for a payment took longer than allowed.
    #[error("timed out: {0}")]
    Timeout(String),
    /// Binding or serving the HTTP listener failed.
    #[error("network setup: {0}")]
    Io(#[from] std::io::Error),
    /// A protocol operation (signing, canonical JSON, money) failed.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

impl From<rusqlite::Error> for MerchantError {
    fn from(e: rusqlite::Error) -> Self {
        MerchantError::Store(e.to_string())
    }
}

/// An HTTP handler error: an Opencharge [`ApiError`] rendered as the error envelope with its
/// status. Internal failures are logged and shown generically.
#[derive(Debug)]
pub struct HttpError(pub ApiError);

/// Handler result.
pub type HttpResult<T> = Result<T, HttpError>;

impl HttpError {
    /// An error with `code`'s default status.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        HttpError(ApiError::new(code, message))
    }

    /// A request-authentication failure (always 401).
    pub fn auth(code: ErrorCode, message: impl Into<String>) -> Self {
        HttpError(ApiError::request_auth(code, message))
    }

    /// `INVALID_REQUEST` (400).
    pub fn invalid(message: impl Into<String>) -> Self {
        HttpError(ApiError::invalid_request(message))
    }

    /// `INTERNAL_ERROR` (500) with a generic message; `detail` goes to the log only.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        HttpError(internal_error(detail))
    }

    /// Replaces the HTTP status.
    pub fn with_status(self, status: u16) -> Self {
        HttpError(self.0.with_status(status))
    }

    /// Attaches a `details` object.
    pub fn with_details(self, details: serde_json::Value) -> Self {
        HttpError(self.0.with_details(details))
    }
}

impl From<MerchantError> for HttpError {
    /// Storage and other unexpected failures become 500 `INTERNAL_ERROR`.
    fn from(e: MerchantError) -> Self {
        HttpError::internal(e)
    }
}

/// Longest order id quoted back in an error message, characters.
const QUOTED_ID_CHARS: usize = 80;

impl HttpError {
    /// The answer for a failed merchant operation called on a client's behalf (order
    /// creation, posting to a wallet session, checkout, cancel):
    ///
    /// | error | status | code |
    /// |---|---|---|
    /// | `InvalidOrder`, `InvalidQr`, `UrlNotAllowed` | 400 | `INVALID_REQUEST` |
    /// | `OrderNotFound` | 404 | `ORDER_NOT_FOUND` |
    /// | `OrderNotPayable` (paid, cancelled, expired) | 409 | `INVALID_STATE` |
    /// | `Expired` (a scanned QR) | 410 | `SESSION_EXPIRED` |
    /// | `Peer` (the gateway refused) | its 4xx (401 and 5xx become 502) | the gateway's code |
    /// | `Resolve` | 502 | `METADATA_UNAVAILABLE`, details `{ocid}` |
    /// | `Network`, `InvalidResponse` | 502 | `GATEWAY_UNAVAILABLE` |
    /// | `Timeout` | 504 | `GATEWAY_UNAVAILABLE` |
    /// | `Config`, `Store`, `Io`, `Protocol` | 500 | `INTERNAL_ERROR` (detail logged only) |
    pub fn from_operation(e: MerchantError) -> Self {
        let unavailable = |m: String, status: u16| {
            HttpError::new(ErrorCode::Other("GATEWAY_UNAVAILABLE".into()), m).with_status(status)
        };
        match e {
            MerchantError::InvalidOrder(_)
            | MerchantError::InvalidQr(_)
            | MerchantError::UrlNotAllowed(_) => HttpError::invalid(e.to_string()),
            MerchantError::OrderNotFound(id) => HttpError::new(
                ErrorCode::OrderNotFound,
                format!(
                    "no order {:?} at this merchant",
                    id.chars().take(QUOTED_ID_CHARS).collect::<String>()
                ),
            ),
            MerchantError::OrderNotPayable { .. } => {
                HttpError::new(ErrorCode::InvalidState, e.to_string()).with_status(409)
            }
            MerchantError::Expired(_) => {
                HttpError::new(ErrorCode::SessionExpired, e.to_string()).with_status(410)
            }
            MerchantError::Peer(api) => {
                let status = if (400..500).contains(&api.status) && api.status != 401 {
                    api.status
                } else {
                    502
                };
                let message = format!("the gateway refused: {}", api.message);
                HttpError(ApiError {
                    message,
                    status,
                    ..api
                })
            }
            MerchantError::Resolve { ocid, .. } => {
                HttpError::new(ErrorCode::MetadataUnavailable, e.to_string())
                    .with_status(502)
                    .with_details(serde_json::json!({ "ocid": ocid }))
            }
            MerchantError::Network(_) | MerchantError::InvalidResponse(_) => {
                unavailable(e.to_string(), 502)
            }
            MerchantError::Timeout(_) => unavailable(e.to_string(), 504),
            MerchantError::Config(_)
            | MerchantError::Store(_)
            | MerchantError::Io(_)
            | MerchantError::Protocol(_) => HttpError::internal(e),
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        error_response(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn http_error_renders_the_envelope() {
        let response = HttpError::new(ErrorCode::AmountMismatch, "no")
            .with_details(serde_json::json!({"expected": "1.00"}))
            .into_response();
        assert_eq!(response.status().as_u16(), 400);
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        let parsed = ApiError::from_json(&body).unwrap();
        assert_eq!(parsed.code, ErrorCode::AmountMismatch);
        assert_eq!(parsed.details.unwrap()["expected"], "1.00");
    }

    #[test]
    fn auth_errors_are_401() {
        assert_eq!(
            HttpError::auth(ErrorCode::InvalidSignature, "x").0.status,
            401
        );
        assert_eq!(HttpError::internal("boom").0.message, "internal error");
    }
}
