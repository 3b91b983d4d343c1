//! Opencharge wire error codes and the `{"error": {code, message, details?}}` envelope that
//! every endpoint returns on failure, with the HTTP status each code maps to.
//!
//! Status choices where the public docs disagree (see `docs/protocol-decisions.md`):
//! * `INVALID_SIGNATURE` is **400** by default (a bad order / proof / payload signature) and
//!   **401** only when request authentication fails. Request-auth code paths build their error
//!   with [`ApiError::request_auth`], which forces 401; everything else uses [`ApiError::new`].
//! * `SESSION_EXPIRED` is 404 (as the PG `orders/create/{sessionId}` page does), `SESSION_USED` 410.
//! * `ORDER_EXPIRED` is 400 (PG sample); the merchant `GET /orders/{id}` page uses 410 and can
//!   override with [`ApiError::with_status`].
//! * `UNAUTHORIZED` is 403 (PG payout sample); the MG `transfer/create` page uses 401.
//! * `ACCOUNT_NOT_FOUND` is 400 (PG `transfer/create`).
//! * `ORDER_NOT_FOUND` is 404 (merchant status endpoint); the merchant webhook sample uses 400.
//! * `MERCHANT_NOT_REGISTERED` is 400 (MG `payment/create`); MG `orders/checkout` uses 401.
//! * `PROOF_ALREADY_PROCESSED` has no documented status; we use 409 Conflict.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::error::{ProtocolError, Result};

/// One Opencharge error code. Serialised as its SCREAMING_SNAKE_CASE string; a code this crate
/// does not know (a peer's newer code) deserialises into [`ErrorCode::Other`], so parsing a
/// peer's error never fails because of the code.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `INVALID_SIGNATURE`: a signature does not verify. 400 for payload signatures (order,
    /// proof), 401 for request authentication (use [`ApiError::request_auth`]).
    InvalidSignature,
    /// `TIMESTAMP_EXPIRED`: the `X-OC-Timestamp` is outside the allowed window (401).
    TimestampExpired,
    /// `NONCE_REUSED`: the `X-OC-Nonce` was already seen (401).
    NonceReused,
    /// `UNKNOWN_OCID`: the caller's OCID cannot be resolved or is not a partner (401).
    UnknownOcid,
    /// `METADATA_UNAVAILABLE`: a peer's metadata could not be fetched (502).
    MetadataUnavailable,
    /// `INVALID_PROOF`: a proof is malformed or not addressed to us (400).
    InvalidProof,
    /// `PROOF_SIGNATURE_INVALID`: a proof's signature does not verify (400).
    ProofSignatureInvalid,
    /// `ISSUER_NOT_ACCEPTED`: the proof issuer is not an accepted settlement source (400).
    IssuerNotAccepted,
    /// `AMOUNT_MISMATCH`: the proof amount differs from the expected amount (400).
    AmountMismatch,
    /// `CURRENCY_MISMATCH`: the proof currency differs from the expected currency (400).
    CurrencyMismatch,
    /// `TXID_NOT_FOUND`: unknown transaction id (404).
    TxidNotFound,
    /// `TRANSACTION_EXPIRED`: the transaction expired (410, global table / old spec).
    TransactionExpired,
    /// `INSUFFICIENT_FUNDS`: balance or partner reserve too low (402).
    InsufficientFunds,
    /// `CAPABILITY_NOT_SUPPORTED`: the endpoint's capability is not offered (400).
    CapabilityNotSupported,
    /// `RATE_LIMITED`: too many requests (429).
    RateLimited,
    /// `CONNECTION_REFUSED`: business refusal, no reason owed, do not retry at once (403).
    ConnectionRefused,
    /// `SESSION_NOT_FOUND`: unknown checkout / QR session (404).
    SessionNotFound,
    /// `SESSION_EXPIRED`: the session is past its expiry (404, as the PG page does).
    SessionExpired,
    /// `SESSION_USED`: the single-use session was already used (410).
    SessionUsed,
    /// `ACCOUNT_NOT_FOUND`: unknown user or account OCID (400).
    AccountNotFound,
    /// `ORDER_EXPIRED`: `order.expiresAt` is in the past (400).
    OrderExpired,
    /// `SETTLEMENT_NOT_SUPPORTED`: no settlement path for `order.accepts` (400).
    SettlementNotSupported,
    /// `ORDER_NOT_FOUND`: unknown order id (404).
    OrderNotFound,
    /// `MERCHANT_NOT_REGISTERED`: the merchant is not onboarded with this gateway (400).
    MerchantNotRegistered,
    /// `PAYMENT_NOT_FOUND`: unknown pending payment (404).
    PaymentNotFound,
    /// `PAYMENT_EXPIRED`: the pending payment expired (400).
    PaymentExpired,
    /// `UNAUTHORIZED`: the caller may not perform this operation, e.g. debit that source (403).
    Unauthorized,
    /// `INVALID_STATE`: the object is not in a state that allows the operation (400).
    InvalidState,
    /// `PROOF_ALREADY_PROCESSED`: the proof's txid was already consumed (409, our choice).
    ProofAlreadyProcessed,
    /// `VERIFICATION_ERROR`: verification could not be performed, e.g. key fetch failed (500).
    VerificationError,
    /// `INVALID_ITEM`: an order item is unknown or invalid (400, merchant vending sample).
    InvalidItem,
    /// `INSUFFICIENT_STOCK`: not enough stock for an item (400, merchant vending sample).
    InsufficientStock,
    /// `INVALID_REQUEST` (ours): malformed body or field (400).
    InvalidRequest,
    /// `FORBIDDEN` (ours): authenticated but not allowed, e.g. not your session (403).
    Forbidden,
    /// `NOT_FOUND` (ours): generic unknown resource (404).
    NotFound,
    /// `INTERNAL_ERROR` (ours): unexpected server failure (500).
    InternalError,
    /// Any code this crate does not know, kept verbatim. Default status 400.
    Other(String),
}

/// `(variant, wire string, default HTTP status)` for every known code.
const TABLE: &[(ErrorCode, &str, u16)] = &[
    (ErrorCode::InvalidSignature, "INVALID_SIGNATURE", 400),
    (ErrorCode::TimestampExpired, "TIMESTAMP_EXPIRED", 401),
    (ErrorCode::NonceReused, "NONCE_REUSED", 401),
    (ErrorCode::UnknownOcid, "UNKNOWN_OCID", 401),
    (ErrorCode::MetadataUnavailable, "METADATA_UNAVAILABLE", 502),
    (ErrorCode::InvalidProof, "INVALID_PROOF", 400),
    (
        ErrorCode::ProofSignatureInvalid,
        "PROOF_SIGNATURE_INVALID",
        400,
    ),
    (ErrorCode::IssuerNotAccepted, "ISSUER_NOT_ACCEPTED", 400),
    (ErrorCode::AmountMismatch, "AMOUNT_MISMATCH", 400),
    (ErrorCode::CurrencyMismatch, "CURRENCY_MISMATCH", 400),
    (ErrorCode::TxidNotFound, "TXID_NOT_FOUND", 404),
    (ErrorCode::TransactionExpired, "TRANSACTION_EXPIRED", 410),
    (ErrorCode::InsufficientFunds, "INSUFFICIENT_FUNDS", 402),
    (
        ErrorCode::CapabilityNotSupported,
        "CAPABILITY_NOT_SUPPORTED",
        400,
    ),
    (ErrorCode::RateLimited, "RATE_LIMITED", 429),
    (ErrorCode::ConnectionRefused, "CONNECTION_REFUSED", 403),
    (ErrorCode::SessionNotFound, "SESSION_NOT_FOUND", 404),
    (ErrorCode::SessionExpired, "SESSION_EXPIRED", 404),
    (ErrorCode::SessionUsed, "SESSION_USED", 410),
    (ErrorCode::AccountNotFound, "ACCOUNT_NOT_FOUND", 400),
    (ErrorCode::OrderExpired, "ORDER_EXPIRED", 400),
    (
        ErrorCode::SettlementNotSupported,
        "SETTLEMENT_NOT_SUPPORTED",
        400,
    ),
    (ErrorCode::OrderNotFound, "ORDER_NOT_FOUND", 404),
    (
        ErrorCode::MerchantNotRegistered,
        "MERCHANT_NOT_REGISTERED",
        400,
    ),
    (ErrorCode::PaymentNotFound, "PAYMENT_NOT_FOUND", 404),
    (ErrorCode::PaymentExpired, "PAYMENT_EXPIRED", 400),
    (ErrorCode::Unauthorized, "UNAUTHORIZED", 403),
    (ErrorCode::InvalidState, "INVALID_STATE", 400),
    (
        ErrorCode::ProofAlreadyProcessed,
        "PROOF_ALREADY_PROCESSED",
        409,
    ),
    (ErrorCode::VerificationError, "VERIFICATION_ERROR", 500),
    (ErrorCode::InvalidItem, "INVALID_ITEM", 400),
    (ErrorCode::InsufficientStock, "INSUFFICIENT_STOCK", 400),
    (ErrorCode::InvalidRequest, "INVALID_REQUEST", 400),
    (ErrorCode::Forbidden, "FORBIDDEN", 403),
    (ErrorCode::NotFound, "NOT_FOUND", 404),
    (ErrorCode::InternalError, "INTERNAL_ERROR", 500),
];

/// Default status for a code this crate does not know.
const OTHER_STATUS: u16 = 400;

impl ErrorCode {
    /// Every known code (all variants except [`ErrorCode::Other`]), in table order.
    pub fn known() -> impl Iterator<Item = &'static ErrorCode> {
        TABLE.iter().map(|(code, _, _)| code)
    }

    /// Map a wire string to a code. Known strings (exact, case-sensitive) give their variant,
    /// anything else gives [`ErrorCode::Other`]. Never fails.
    pub fn from_code(s: &str) -> ErrorCode {
        TABLE
            .iter()
            .find(|(_, wire, _)| *wire == s)
            .map(|(code, _, _)| code.clone())
            .unwrap_or_else(|| ErrorCode::Other(s.to_owned()))
    }

    /// The SCREAMING_SNAKE_CASE wire string.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::Other(s) => s,
            known => TABLE
                .iter()
                .find(|(code, _, _)| code == known)
                .map(|(_, wire, _)| *wire)
                .unwrap_or("INTERNAL_ERROR"),
        }
    }

    /// The HTTP status this code is sent with by default. `INVALID_SIGNATURE` gives 400 (payload
    /// signature); request-auth failures must use [`ApiError::request_auth`], which gives 401.
    /// Unknown codes give 400.
    pub fn default_status(&self) -> u16 {
        match self {
            ErrorCode::Other(_) => OTHER_STATUS,
            known => TABLE
                .iter()
                .find(|(code, _, _)| code == known)
                .map(|(_, _, status)| *status)
                .unwrap_or(OTHER_STATUS),
        }
    }

    /// True for the codes that a request-authentication failure can carry
    /// (`INVALID_SIGNATURE`, `TIMESTAMP_EXPIRED`, `NONCE_REUSED`, `UNKNOWN_OCID`).
    pub fn is_request_auth(&self) -> bool {
        matches!(
            self,
            ErrorCode::InvalidSignature
                | ErrorCode::TimestampExpired
                | ErrorCode::NonceReused
                | ErrorCode::UnknownOcid
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ErrorCode {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(ErrorCode::from_code(s))
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct CodeVisitor;

        impl Visitor<'_> for CodeVisitor {
            type Value = ErrorCode;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an error code string")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<ErrorCode, E> {
                Ok(ErrorCode::from_code(v))
            }
        }

        deserializer.deserialize_str(CodeVisitor)
    }
}

/// The body of an Opencharge error: `{code, message, details?}`. The HTTP `status` travels
/// beside it and is not serialised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    /// The machine-readable code; clients branch on this, not on the status.
    pub code: ErrorCode,
    /// Human-readable explanation. Must never contain secrets.
    pub message: String,
    /// Optional structured context, e.g. `{"providedIssuer": 999, "acceptedIssuers": [...]}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    /// HTTP status to send (or that was received). Not part of the JSON body. After
    /// deserialisation it is the code's [`ErrorCode::default_status`]; a client that knows the
    /// real status should set it with [`ApiError::with_status`].
    #[serde(skip)]
    pub status: u16,
}

/// Wire shape used only to deserialise [`ApiError`] (the status is derived, not read).
#[derive(Deserialize)]
struct ApiErrorRepr {
    code: ErrorCode,
    message: String,
    #[serde(default)]
    details: Option<serde_json::Value>,
}

impl<'de> Deserialize<'de> for ApiError {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let repr = ApiErrorRepr::deserialize(deserializer)?;
        let status = repr.code.default_status();
        Ok(ApiError {
            code: repr.code,
            message: repr.message,
            details: repr.details,
            status,
        })
    }
}

impl ApiError {
    /// An error with the code's default status (400 for `INVALID_SIGNATURE`).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        let status = code.default_status();
        ApiError {
            code,
            message: message.into(),
            details: None,
            status,
        }
    }

    /// A request-authentication failure (bad `X-OC-*` headers): always status 401, whatever
    /// the code. This is how `INVALID_SIGNATURE` becomes 401 instead of its default 400.
    pub fn request_auth(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError::new(code, message).with_status(401)
    }

    /// `INVALID_REQUEST` (400) for a malformed body or field.
    pub fn invalid_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidRequest, message)
    }

    /// `INTERNAL_ERROR` (500). Keep the message generic; never put internals or secrets in it.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InternalError, message)
    }

    /// Replace the HTTP status.
    pub fn with_status(mut self, status: u16) -> ApiError {
        self.status = status;
        self
    }

    /// Attach a `details` object.
    pub fn with_details(mut self, details: serde_json::Value) -> ApiError {
        self.details = Some(details);
        self
    }

    /// Wrap in the `{"error": ...}` envelope.
    pub fn into_envelope(self) -> ErrorEnvelope {
        ErrorEnvelope { error: self }
    }

    /// The envelope as compact JSON: `{"error":{"code":"…","message":"…","details":…}}`.
    pub fn to_json(&self) -> String {
        let envelope = EnvelopeRef { error: self };
        serde_json::to_string(&envelope).unwrap_or_else(|_| {
            // Unreachable in practice (all keys are strings); keep a valid body regardless.
            String::from(
                r#"{"error":{"code":"INTERNAL_ERROR","message":"error serialisation failed"}}"#,
            )
        })
    }

    /// Parse an error envelope received from a peer; the status is the code's default
    /// (override with [`ApiError::with_status`]).
    pub fn from_json(bytes: &[u8]) -> Result<ApiError> {
        serde_json::from_slice::<ErrorEnvelope>(bytes)
            .map(|e| e.error)
            .map_err(|e| ProtocolError::Json(e.to_string()))
    }

    /// Interpret a peer's non-2xx HTTP response. Never fails: a valid envelope gives its
    /// error (with `status` set to the real status); an empty body with 403 is
    /// `CONNECTION_REFUSED` (which may come without a body); anything else gives
    /// `Other("HTTP_<status>")`.
    pub fn from_response(status: u16, body: &[u8]) -> ApiError {
        match ApiError::from_json(body) {
            Ok(err) => err.with_status(status),
            Err(_) if status == 403 && body.iter().all(u8::is_ascii_whitespace) => {
                ApiError::new(ErrorCode::ConnectionRefused, "connection refused by peer")
                    .with_status(status)
            }
            Err(_) => ApiError::new(
                ErrorCode::Other(format!("HTTP_{status}")),
                format!("peer returned HTTP {status} without an Opencharge error body"),
            )
            .with_status(status),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for ApiError {}

/// The error envelope `{"error": {"code", "message", "details"?}}` used by every endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    /// The error itself.
    pub error: ApiError,
}

impl From<ApiError> for ErrorEnvelope {
    fn from(error: ApiError) -> Self {
        ErrorEnvelope { error }
    }
}

/// Borrowing envelope so [`ApiError::to_json`] need not clone.
#[derive(Serialize)]
struct EnvelopeRef<'a> {
    error: &'a ApiError,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_known_code_round_trips_through_its_string() {
        let mut count = 0;
        for code in ErrorCode::known() {
            let s = code.as_str();
            assert_eq!(&ErrorCode::from_code(s), code);
            assert_eq!(s.parse::<ErrorCode>(), Ok(code.clone()));
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{s}\""));
            let back: ErrorCode = serde_json::from_str(&json).unwrap();
            assert_eq!(&back, code);
            assert!(!matches!(code, ErrorCode::Other(_)));
            count += 1;
        }
        assert_eq!(count, TABLE.len());
        // Wire strings are unique.
        let mut strings: Vec<&str> = TABLE.iter().map(|(_, s, _)| *s).collect();
        strings.sort_unstable();
        strings.dedup();
        assert_eq!(strings.len(), TABLE.len());
    }

    #[test]
    fn pg_openapi_enum_and_global_table_are_all_known() {
        let pg = [
            "INVALID_SIGNATURE",
            "TIMESTAMP_EXPIRED",
            "NONCE_REUSED",
            "UNKNOWN_OCID",
            "SESSION_NOT_FOUND",
            "SESSION_EXPIRED",
            "SESSION_USED",
            "INVALID_PROOF",
            "PROOF_SIGNATURE_INVALID",
            "ISSUER_NOT_ACCEPTED",
            "INSUFFICIENT_FUNDS",
            "ACCOUNT_NOT_FOUND",
        ];
        let global = [
            "METADATA_UNAVAILABLE",
            "AMOUNT_MISMATCH",
            "CURRENCY_MISMATCH",
            "TXID_NOT_FOUND",
            "TRANSACTION_EXPIRED",
            "CAPABILITY_NOT_SUPPORTED",
            "RATE_LIMITED",
            "CONNECTION_REFUSED",
        ];
        let others = [
            "ORDER_EXPIRED",
            "SETTLEMENT_NOT_SUPPORTED",
            "ORDER_NOT_FOUND",
            "MERCHANT_NOT_REGISTERED",
            "PAYMENT_NOT_FOUND",
            "PAYMENT_EXPIRED",
            "UNAUTHORIZED",
            "INVALID_STATE",
            "PROOF_ALREADY_PROCESSED",
            "INVALID_REQUEST",
            "FORBIDDEN",
            "NOT_FOUND",
            "INTERNAL_ERROR",
        ];
        for s in pg.iter().chain(&global).chain(&others) {
            assert!(
                !matches!(ErrorCode::from_code(s), ErrorCode::Other(_)),
                "{s} should be a known code"
            );
        }
    }

    #[test]
    fn status_table() {
        use ErrorCode::*;
        let expected = [
            (InvalidSignature, 400),
            (TimestampExpired, 401),
            (NonceReused, 401),
            (UnknownOcid, 401),
            (MetadataUnavailable, 502),
            (InvalidProof, 400),
            (ProofSignatureInvalid, 400),
            (IssuerNotAccepted, 400),
            (AmountMismatch, 400),
            (CurrencyMismatch, 400),
            (TxidNotFound, 404),
            (TransactionExpired, 410),
            (InsufficientFunds, 402),
            (CapabilityNotSupported, 400),
            (RateLimited, 429),
            (ConnectionRefused, 403),
            (SessionNotFound, 404),
            (SessionExpired, 404),
            (SessionUsed, 410),
            (AccountNotFound, 400),
            (OrderExpired, 400),
            (SettlementNotSupported, 400),
            (OrderNotFound, 404),
            (MerchantNotRegistered, 400),
            (PaymentNotFound, 404),
            (PaymentExpired, 400),
            (Unauthorized, 403),
            (InvalidState, 400),
            (ProofAlreadyProcessed, 409),
            (VerificationError, 500),
            (InvalidItem, 400),
            (InsufficientStock, 400),
            (InvalidRequest, 400),
            (Forbidden, 403),
            (NotFound, 404),
            (InternalError, 500),
            (Other("SOMETHING_NEW".into()), 400),
        ];
        assert_eq!(expected.len(), TABLE.len() + 1);
        for (code, status) in expected {
            assert_eq!(code.default_status(), status, "{code}");
            assert_eq!(ApiError::new(code.clone(), "x").status, status, "{code}");
        }
    }

    #[test]
    fn invalid_signature_is_400_for_payload_and_401_for_request_auth() {
        let payload = ApiError::new(ErrorCode::InvalidSignature, "Order signature invalid");
        assert_eq!(payload.status, 400);
        let auth = ApiError::request_auth(ErrorCode::InvalidSignature, "bad X-OC-Signature");
        assert_eq!(auth.status, 401);
        assert_eq!(auth.code, ErrorCode::InvalidSignature);
        assert!(ErrorCode::InvalidSignature.is_request_auth());
        assert!(!ErrorCode::SessionUsed.is_request_auth());
    }

    #[test]
    fn unknown_code_becomes_other_and_round_trips() {
        let code: ErrorCode = serde_json::from_str("\"KYC_NOT_COMPLETE\"").unwrap();
        assert_eq!(code, ErrorCode::Other("KYC_NOT_COMPLETE".into()));
        assert_eq!(
            serde_json::to_string(&code).unwrap(),
            "\"KYC_NOT_COMPLETE\""
        );
        // Case-sensitive: a lower-case spelling is not the known code.
        assert_eq!(
            ErrorCode::from_code("invalid_signature"),
            ErrorCode::Other("invalid_signature".into())
        );
        let err = ApiError::from_json(br#"{"error":{"code":"BRAND_NEW","message":"m"}}"#).unwrap();
        assert_eq!(err.code, ErrorCode::Other("BRAND_NEW".into()));
        assert_eq!(err.status, 400);
    }

    #[test]
    fn non_string_code_is_a_clear_error() {
        let err = ApiError::from_json(br#"{"error":{"code":42,"message":"m"}}"#).unwrap_err();
        assert!(matches!(err, ProtocolError::Json(ref m) if m.contains("error code string")));
        let err = ApiError::from_json(br#"{"error":{"code":"X"}}"#).unwrap_err();
        assert!(matches!(err, ProtocolError::Json(ref m) if m.contains("missing field `message`")));
    }

    #[test]
    fn envelope_matches_the_error_codes_page_example() {
        let doc = r#"{"error":{"code":"ISSUER_NOT_ACCEPTED","message":"Proof issuer OCID 999 is not in accepted settlement sources","details":{"providedIssuer":999,"acceptedIssuers":[100,101,102]}}}"#;
        let err = ApiError::new(
            ErrorCode::IssuerNotAccepted,
            "Proof issuer OCID 999 is not in accepted settlement sources",
        )
        .with_details(json!({"providedIssuer": 999, "acceptedIssuers": [100, 101, 102]}));
        let out = err.to_json();
        // Same JSON value as the doc example.
        let a: serde_json::Value = serde_json::from_str(&out).unwrap();
        let b: serde_json::Value = serde_json::from_str(doc).unwrap();
        assert_eq!(a, b);
        // Same bytes, up to the order of keys inside `details` (serde_json sorts map keys).
        assert_eq!(
            out,
            r#"{"error":{"code":"ISSUER_NOT_ACCEPTED","message":"Proof issuer OCID 999 is not in accepted settlement sources","details":{"acceptedIssuers":[100,101,102],"providedIssuer":999}}}"#
        );
        // Parsing the doc example gives the same error back.
        let parsed = ApiError::from_json(doc.as_bytes()).unwrap();
        assert_eq!(parsed, err);
        // The envelope type serialises identically.
        assert_eq!(
            serde_json::to_string(&err.clone().into_envelope()).unwrap(),
            out
        );
    }

    #[test]
    fn details_absent_stays_absent() {
        let err = ApiError::new(ErrorCode::SessionUsed, "Session already used");
        assert_eq!(
            err.to_json(),
            r#"{"error":{"code":"SESSION_USED","message":"Session already used"}}"#
        );
        assert_eq!(err.status, 410);
    }

    #[test]
    fn display_and_error_trait() {
        let err = ApiError::new(ErrorCode::SessionNotFound, "Session not found");
        assert_eq!(
            err.to_string(),
            "SESSION_NOT_FOUND (404): Session not found"
        );
        let boxed: Box<dyn std::error::Error> = Box::new(err);
        assert!(boxed.to_string().contains("SESSION_NOT_FOUND"));
    }

    #[test]
    fn from_response_is_tolerant() {
        let err = ApiError::from_response(
            401,
            br#"{"error":{"code":"INVALID_SIGNATURE","message":"bad"}}"#,
        );
        assert_eq!(err.code, ErrorCode::InvalidSignature);
        assert_eq!(err.status, 401);
        let err = ApiError::from_response(403, b"");
        assert_eq!(err.code, ErrorCode::ConnectionRefused);
        let err = ApiError::from_response(502, b"<html>bad gateway</html>");
        assert_eq!(err.code, ErrorCode::Other("HTTP_502".into()));
        assert_eq!(err.status, 502);
        let err = ApiError::from_response(403, br#"{"error":"Not your session"}"#);
        assert_eq!(err.code, ErrorCode::Other("HTTP_403".into()));
    }
}
