//! The protocol crate's error type: every fallible function here returns `ProtocolError`,
//! a typed, human-readable reason that never carries secret material.

use thiserror::Error;

/// Why a protocol operation failed. Variants are stable; messages are for humans.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// The input is not valid JSON, or does not match the expected shape. The message names
    /// the offending field where serde can tell (e.g. "missing field `amount`").
    #[error("invalid JSON: {0}")]
    Json(String),
    /// A field is present but its value breaks a protocol rule.
    #[error("invalid field `{field}`: {reason}")]
    InvalidField {
        /// Dotted path of the field, e.g. `order.items[2].price`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A JSON value cannot be put in canonical form (e.g. a non-integer number in a signed object).
    #[error("cannot canonicalise: {0}")]
    Canonical(String),
    /// A private or public key is malformed or not on the curve.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A signature string is malformed (wrong length, not hex, zero scalar, ...).
    #[error("malformed signature: {0}")]
    MalformedSignature(String),
    /// A well-formed signature that does not verify against the key and message.
    #[error("signature does not verify")]
    BadSignature,
    /// An amount string or currency breaks the money rules.
    #[error("invalid amount: {0}")]
    InvalidAmount(String),
    /// A QR payload or scanned text is not a recognised Opencharge payload.
    #[error("invalid QR payload: {0}")]
    InvalidQr(String),
    /// A QR payload that parses, but whose re-rendered form (the exact text its builder emits,
    /// or for a checkout link its `opencharge://checkout` deep link) would exceed the payload
    /// cap, so it could not be shown or scanned again. Refused when parsing and building.
    #[error("invalid QR payload: the {what} would re-render as {bytes} bytes, over the {max}-byte payload cap")]
    QrTooLarge {
        /// Which rendering overflows, e.g. `checkout deep link`.
        what: String,
        /// Its length in bytes.
        bytes: usize,
        /// The cap, [`crate::qr::MAX_PAYLOAD_BYTES`].
        max: usize,
    },
    /// A signed object is bound to another party than the one that signed it.
    #[error("binding check failed: {0}")]
    Binding(String),
    /// Something is past its expiry, judged against the time the caller passed in.
    #[error("expired: {0}")]
    Expired(String),
}

impl From<serde_json::Error> for ProtocolError {
    fn from(e: serde_json::Error) -> Self {
        ProtocolError::Json(e.to_string())
    }
}

/// Shorthand for `Result<T, ProtocolError>`.
pub type Result<T> = std::result::Result<T, ProtocolError>;
