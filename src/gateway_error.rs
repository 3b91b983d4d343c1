//! The gateway's error envelope as typed values for apps: `GatewayErrorCode`, one enum case
//! per Opencharge error code (with an `Unknown` fallback), and `GatewayErrorDetails`, the
//! envelope's `details` object read field by field.

use std::time::SystemTime;

use opencharge_protocol::error_code::ErrorCode;
use serde_json::Value;

use crate::model::{time_from_unix, PaymentStatus};

/// The Opencharge error code of a `WalletError.Gateway` (Kotlin `WalletException.Gateway`).
/// Branch on it; the wire string is in `rawCode`, and a code this core does not know yet is
/// `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum GatewayErrorCode {
    /// `INVALID_SIGNATURE`: a signature did not verify (a payload signature, or the request's own authentication).
    InvalidSignature,
    /// `TIMESTAMP_EXPIRED`: the request's timestamp is outside the gateway's window (the device clock is off).
    TimestampExpired,
    /// `NONCE_REUSED`: the request's nonce was already seen.
    NonceReused,
    /// `UNKNOWN_OCID`: the caller's OCID cannot be resolved.
    UnknownOcid,
    /// `METADATA_UNAVAILABLE`: a party's metadata could not be fetched.
    MetadataUnavailable,
    /// `INVALID_PROOF`: a proof is malformed or not addressed to its receiver.
    InvalidProof,
    /// `PROOF_SIGNATURE_INVALID`: a proof's signature does not verify.
    ProofSignatureInvalid,
    /// `ISSUER_NOT_ACCEPTED`: the proof's issuer is not an accepted settlement source.
    IssuerNotAccepted,
    /// `AMOUNT_MISMATCH`: an amount differs from the expected one.
    AmountMismatch,
    /// `CURRENCY_MISMATCH`: a currency differs from the expected one.
    CurrencyMismatch,
    /// `TXID_NOT_FOUND`: unknown transaction id.
    TxidNotFound,
    /// `TRANSACTION_EXPIRED`: the transaction expired.
    TransactionExpired,
    /// `INSUFFICIENT_FUNDS`: the account's balance is too low: top up, then confirm again.
    InsufficientFunds,
    /// `CAPABILITY_NOT_SUPPORTED`: the gateway does not offer this (e.g. a scanned code it cannot pay).
    CapabilityNotSupported,
    /// `RATE_LIMITED`: too many requests: wait, then retry.
    RateLimited,
    /// `CONNECTION_REFUSED`: the peer refused, without a reason.
    ConnectionRefused,
    /// `SESSION_NOT_FOUND`: unknown session, prompt or checkout.
    SessionNotFound,
    /// `SESSION_EXPIRED`: the session or checkout has expired.
    SessionExpired,
    /// `SESSION_USED`: the single-use session was already used.
    SessionUsed,
    /// `ACCOUNT_NOT_FOUND`: unknown account.
    AccountNotFound,
    /// `ORDER_EXPIRED`: the merchant's order has expired.
    OrderExpired,
    /// `SETTLEMENT_NOT_SUPPORTED`: no settlement path for the order.
    SettlementNotSupported,
    /// `ORDER_NOT_FOUND`: unknown order.
    OrderNotFound,
    /// `MERCHANT_NOT_REGISTERED`: the merchant is not onboarded with the gateway.
    MerchantNotRegistered,
    /// `PAYMENT_NOT_FOUND`: unknown payment.
    PaymentNotFound,
    /// `PAYMENT_EXPIRED`: the pending payment expired.
    PaymentExpired,
    /// `UNAUTHORIZED`: the caller may not do this.
    Unauthorized,
    /// `INVALID_STATE`: the payment is not in a state that allows this (its status is in `details`).
    InvalidState,
    /// `PROOF_ALREADY_PROCESSED`: the proof was already used.
    ProofAlreadyProcessed,
    /// `VERIFICATION_ERROR`: the gateway could not perform a verification.
    VerificationError,
    /// `INVALID_ITEM`: an item is unknown or invalid.
    InvalidItem,
    /// `INSUFFICIENT_STOCK`: not enough stock for an item.
    InsufficientStock,
    /// `INVALID_REQUEST`: the request is malformed (the field is in `details`).
    InvalidRequest,
    /// `FORBIDDEN`: not allowed for this device or account.
    Forbidden,
    /// `NOT_FOUND`: unknown resource.
    NotFound,
    /// `INTERNAL_ERROR`: the gateway failed unexpectedly.
    InternalError,
    /// A code this core does not know (a newer gateway's): read `rawCode`.
    Unknown,
}

impl From<&ErrorCode> for GatewayErrorCode {
    fn from(code: &ErrorCode) -> GatewayErrorCode {
        match code {
            ErrorCode::InvalidSignature => GatewayErrorCode::InvalidSignature,
            ErrorCode::TimestampExpired => GatewayErrorCode::TimestampExpired,
            ErrorCode::NonceReused => GatewayErrorCode::NonceReused,
            ErrorCode::UnknownOcid => GatewayErrorCode::UnknownOcid,
            ErrorCode::MetadataUnavailable => GatewayErrorCode::MetadataUnavailable,
            ErrorCode::InvalidProof => GatewayErrorCode::InvalidProof,
            ErrorCode::ProofSignatureInvalid => GatewayErrorCode::ProofSignatureInvalid,
            ErrorCode::IssuerNotAccepted => GatewayErrorCode::IssuerNotAccepted,
            ErrorCode::AmountMismatch => GatewayErrorCode::AmountMismatch,
            ErrorCode::CurrencyMismatch => GatewayErrorCode::CurrencyMismatch,
            ErrorCode::TxidNotFound => GatewayErrorCode::TxidNotFound,
            ErrorCode::TransactionExpired => GatewayErrorCode::TransactionExpired,
            ErrorCode::InsufficientFunds => GatewayErrorCode::InsufficientFunds,
            ErrorCode::CapabilityNotSupported => GatewayErrorCode::CapabilityNotSupported,
            ErrorCode::RateLimited => GatewayErrorCode::RateLimited,
            ErrorCode::ConnectionRefused => GatewayErrorCode::ConnectionRefused,
            ErrorCode::SessionNotFound => GatewayErrorCode::SessionNotFound,
            ErrorCode::SessionExpired => GatewayErrorCode::SessionExpired,
            ErrorCode::SessionUsed => GatewayErrorCode::SessionUsed,
            ErrorCode::AccountNotFound => GatewayErrorCode::AccountNotFound,
            ErrorCode::OrderExpired => GatewayErrorCode::OrderExpired,
            ErrorCode::SettlementNotSupported => GatewayErrorCode::SettlementNotSupported,
            ErrorCode::OrderNotFound => GatewayErrorCode::OrderNotFound,
            ErrorCode::MerchantNotRegistered => GatewayErrorCode::MerchantNotRegistered,
            ErrorCode::PaymentNotFound => GatewayErrorCode::PaymentNotFound,
            ErrorCode::PaymentExpired => GatewayErrorCode::PaymentExpired,
            ErrorCode::Unauthorized => GatewayErrorCode::Unauthorized,
            ErrorCode::InvalidState => GatewayErrorCode::InvalidState,
            ErrorCode::ProofAlreadyProcessed => GatewayErrorCode::ProofAlreadyProcessed,
            ErrorCode::VerificationError => GatewayErrorCode::VerificationError,
            ErrorCode::InvalidItem => GatewayErrorCode::InvalidItem,
            ErrorCode::InsufficientStock => GatewayErrorCode::InsufficientStock,
            ErrorCode::InvalidRequest => GatewayErrorCode::InvalidRequest,
            ErrorCode::Forbidden => GatewayErrorCode::Forbidden,
            ErrorCode::NotFound => GatewayErrorCode::NotFound,
            ErrorCode::InternalError => GatewayErrorCode::InternalError,
            ErrorCode::Other(_) => GatewayErrorCode::Unknown,
        }
    }
}

/// The `details` of a gateway error, every field optional: each is set when the gateway sent
/// it. JSON values that are not text (`expected`, `got`) are given as compact JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, uniffi::Record)]
pub struct GatewayErrorDetails {
    /// The request field the error is about (`amount`, `timestamp`, ...).
    pub field: Option<String>,
    /// The value the gateway expected for `field`.
    pub expected: Option<String>,
    /// The value it got.
    pub got: Option<String>,
    /// The gateway's clock, for a timestamp outside its window.
    pub server_time: Option<SystemTime>,
    /// The payment's status, for `INVALID_STATE` (e.g. already paid or declined).
    pub status: Option<PaymentStatus>,
    /// Where to send the user next (a hosted checkout's cancel URL), when known.
    pub redirect_url: Option<String>,
    /// What was scanned, for `CAPABILITY_NOT_SUPPORTED` (`wallet_session`, `ocid_uri`, ...).
    pub kind: Option<String>,
    /// The HTTP status a merchant answered, for a refusal the gateway passes on.
    pub merchant_status: Option<i32>,
}

impl GatewayErrorDetails {
    /// Reads the fields this core knows from an envelope's `details`; `None` when it is not
    /// an object or has none of them. Fields of an unexpected type are left out.
    pub(crate) fn from_json(details: &Value) -> Option<GatewayErrorDetails> {
        let object = details.as_object()?;
        let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_string);
        let rendered = |key: &str| {
            object.get(key).map(|value| match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        let parsed = GatewayErrorDetails {
            field: text("field"),
            expected: rendered("expected"),
            got: rendered("got"),
            server_time: object
                .get("serverTime")
                .and_then(Value::as_i64)
                .map(time_from_unix),
            status: object
                .get("status")
                .and_then(Value::as_str)
                .and_then(PaymentStatus::parse),
            redirect_url: text("redirectUrl"),
            kind: text("kind"),
            merchant_status: object
                .get("merchantStatus")
                .and_then(Value::as_i64)
                .and_then(|s| i32::try_from(s).ok()),
        };
        let empty = GatewayErrorDetails {
            field: None,
            expected: None,
            got: None,
            server_time: None,
            status: None,
            redirect_url: None,
            kind: None,
            merchant_status: None,
        };
        (parsed != empty).then_some(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencharge_protocol::error_code::ApiError;
    use serde_json::json;

    use crate::error::WalletError;

    #[test]
    fn every_known_code_has_its_own_case_and_others_are_unknown() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::known() {
            let mapped = GatewayErrorCode::from(code);
            assert_ne!(mapped, GatewayErrorCode::Unknown, "{code}");
            assert!(seen.insert(mapped), "{code} shares a case");
        }
        assert_eq!(
            GatewayErrorCode::from(&ErrorCode::Other("KYC_NEEDED".into())),
            GatewayErrorCode::Unknown
        );
    }

    #[test]
    fn an_envelope_becomes_a_typed_gateway_error() {
        let api = ApiError::new(ErrorCode::InvalidRequest, "consent does not match")
            .with_details(
                json!({"field": "amount", "expected": "2.50", "got": 3, "serverTime": 1700000000}),
            )
            .with_status(400);
        let err = WalletError::from(api);
        assert_eq!(err.gateway_code(), Some(GatewayErrorCode::InvalidRequest));
        assert_eq!(err.gateway_raw_code(), Some("INVALID_REQUEST"));
        let details = err.gateway_details().unwrap();
        assert_eq!(details.field.as_deref(), Some("amount"));
        assert_eq!(details.expected.as_deref(), Some("2.50"));
        assert_eq!(details.got.as_deref(), Some("3"));
        assert_eq!(details.server_time, Some(time_from_unix(1_700_000_000)));
        assert_eq!(details.status, None);
        assert_eq!(
            err.to_string(),
            "gateway error INVALID_REQUEST (HTTP 400): consent does not match"
        );

        let state = WalletError::from(
            ApiError::new(ErrorCode::InvalidState, "already paid")
                .with_details(json!({"status": "paid", "redirectUrl": "https://shop.example/ok"}))
                .with_status(409),
        );
        let WalletError::Gateway {
            http_status,
            details: Some(details),
            ..
        } = &state
        else {
            panic!("{state:?}")
        };
        assert_eq!(*http_status, 409);
        assert_eq!(details.status, Some(PaymentStatus::Paid));
        assert_eq!(
            details.redirect_url.as_deref(),
            Some("https://shop.example/ok")
        );

        let unknown = WalletError::from(
            ApiError::new(ErrorCode::Other("KYC_NEEDED".into()), "verify first")
                .with_details(json!({"unrelated": true})),
        );
        assert_eq!(unknown.gateway_code(), Some(GatewayErrorCode::Unknown));
        assert_eq!(unknown.gateway_raw_code(), Some("KYC_NEEDED"));
        assert_eq!(
            unknown.gateway_details(),
            None,
            "no known field: no details"
        );
        let merchant =
            GatewayErrorDetails::from_json(&json!({"merchantStatus": 503, "kind": 7})).unwrap();
        assert_eq!(merchant.merchant_status, Some(503));
        assert_eq!(merchant.kind, None, "a field of the wrong type is left out");
        assert_eq!(GatewayErrorDetails::from_json(&json!("text")), None);
    }
}
