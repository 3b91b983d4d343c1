//! Errors: [`MerchantError`] for the library API, and [`HttpError`] (the peers' shared
//! [`opencharge_peer::HttpError`]), the Opencharge `{"error": {...}}` envelope with its status
//! that the merchant's HTTP handlers return, with [`operation_error`] mapping one into the other.

use opencharge_protocol::error_code::{ApiError, ErrorCode};
use opencharge_protocol::ProtocolError;

pub use opencharge_peer::error::{HttpError, HttpResult};

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
    /// The database was created under another key or OCID: the merchant does not start.
    #[error(transparent)]
    Identity(Box<opencharge_peer::identity::IdentityMismatch>),
    /// The gateway may or may not have accepted the order (its answer was lost or cannot be
    /// trusted, and asking the order's status gave no trustworthy answer either). The order
    /// is kept pending: never cancel it on this error (a wallet may pay it).
    #[error("outcome unknown for order {order_id:?}, order kept pending: {reason}")]
    OutcomeUnknown {
        /// The order id.
        order_id: String,
        /// What failed.
        reason: String,
    },
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

impl From<opencharge_peer::identity::IdentityMismatch> for MerchantError {
    fn from(e: opencharge_peer::identity::IdentityMismatch) -> Self {
        MerchantError::Identity(Box::new(e))
    }
}

impl From<rusqlite::Error> for MerchantError {
    fn from(e: rusqlite::Error) -> Self {
        MerchantError::Store(e.to_string())
    }
}

impl From<MerchantError> for HttpError {
    /// Storage and other unexpected failures become 500 `INTERNAL_ERROR`.
    fn from(e: MerchantError) -> Self {
        HttpError::internal(e)
    }
}

/// The error code of [`MerchantError::OutcomeUnknown`] in HTTP answers: the order is kept
/// pending and must not be cancelled.
pub const OUTCOME_UNKNOWN: &str = "OUTCOME_UNKNOWN";

/// Longest order id quoted back in an error message, characters.
const QUOTED_ID_CHARS: usize = 80;

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
/// | `OutcomeUnknown` (order kept pending: do not cancel it) | 504 | `OUTCOME_UNKNOWN`, details `{orderId, orderStatus: "pending"}` |
/// | `Config`, `Identity`, `Store`, `Io`, `Protocol` | 500 | `INTERNAL_ERROR` (detail logged only) |
pub fn operation_error(e: MerchantError) -> HttpError {
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
        MerchantError::OutcomeUnknown { ref order_id, .. } => {
            let details = serde_json::json!({"orderId": order_id, "orderStatus": "pending"});
            HttpError::new(ErrorCode::Other(OUTCOME_UNKNOWN.into()), e.to_string())
                .with_status(504)
                .with_details(details)
        }
        MerchantError::Config(_)
        | MerchantError::Identity(_)
        | MerchantError::Store(_)
        | MerchantError::Io(_)
        | MerchantError::Protocol(_) => HttpError::internal(e),
    }
}
