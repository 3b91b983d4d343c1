//! The typed `details` objects of app-API errors (doc §3 and §6). The envelope itself,
//! `{"error": {"code", "message", "details"?}}`, is [`crate::error_code::ErrorEnvelope`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `details` of 400 `INVALID_REQUEST` when a consent field does not match the session:
/// `{"field", "expected", "got"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentMismatchDetails {
    /// The consent field (`amount`, `orderHash`, ...).
    pub field: String,
    /// The session's value.
    pub expected: Value,
    /// The consent's value.
    pub got: Value,
}

/// `details` of 400 `INVALID_REQUEST` for a consent timestamp outside the window:
/// `{"field": "timestamp", "serverTime"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsentTimestampDetails {
    /// Always `"timestamp"`.
    pub field: String,
    /// The gateway's clock, unix seconds.
    pub server_time: i64,
}

/// `details` of 409 `INVALID_STATE`: `{"status", "redirectUrl"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateDetails {
    /// The session's status (`declined`, `expired`, `pending`, `paid`).
    pub status: super::SessionStatus,
    /// For checkout: the Merchant Gateway's cancel URL, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
}

/// `details` of 404 `SESSION_EXPIRED` for a checkout: `{"redirectUrl"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedirectDetails {
    /// The Merchant Gateway's cancel URL, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
}

/// `details` of 422 `CAPABILITY_NOT_SUPPORTED`: `{"kind"}` (`wallet_session`, `ocid_uri`,
/// `end_user_ocid`, `checkout`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindDetails {
    /// What was scanned.
    pub kind: String,
}

/// `details` of a merchant's refusal passed on by scan and inventory: `{"merchantStatus"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MerchantStatusDetails {
    /// The HTTP status the merchant answered.
    pub merchant_status: u16,
}
