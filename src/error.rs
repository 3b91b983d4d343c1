//! `WalletError`: the one error type of the wallet core, with stable variants that map to a
//! sealed exception hierarchy in Kotlin and an `Error` enum in Swift.

use opencharge_protocol::error::ProtocolError;
use opencharge_protocol::error_code::ApiError;

pub use crate::gateway_error::{GatewayErrorCode, GatewayErrorDetails};

/// Every failure of the wallet core. Variants are stable: apps may branch on them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum WalletError {
    /// The gateway could not be reached, or the connection failed before the request changed
    /// anything. Safe to retry or abandon.
    #[error("network error: {reason}")]
    Network {
        /// What failed, for developers.
        reason: String,
    },
    /// The TLS connection to a server was refused because of its certificate (untrusted
    /// issuer, wrong host name, expired, or not matching a pinned key). Retrying does not help;
    /// the gateway's operator (or the app's `WalletConfig`) must fix it.
    #[error("TLS error with {host}: {failure:?}: {reason}")]
    Tls {
        /// What is wrong with the certificate: branch on it.
        failure: TlsFailure,
        /// The host name the core connected to.
        host: String,
        /// The TLS library's message, for developers.
        reason: String,
    },
    /// A confirm or decline was sent but its answer was lost, so its outcome is not known yet.
    /// The decision is saved and the core resolves it by itself (status query or event stream)
    /// and reports the result to the `WalletListener` as a payment status. Show "pending",
    /// never "failed": the payment may have gone through.
    #[error("outcome pending for {prompt_id}: {reason}")]
    OutcomePending {
        /// The prompt whose decision is pending.
        prompt_id: String,
        /// Why the answer was not received, for developers.
        reason: String,
    },
    /// The gateway answered with an Opencharge error envelope. Branch on `code`; show `reason`
    /// only to developers.
    #[error("gateway error {raw_code} (HTTP {http_status}): {reason}")]
    Gateway {
        /// The Opencharge error code as an enum (`GatewayErrorCode.INSUFFICIENT_FUNDS` in
        /// Kotlin, `.insufficientFunds` in Swift); `Unknown` for a code this core does not know.
        code: GatewayErrorCode,
        /// The code exactly as the gateway sent it (`"INSUFFICIENT_FUNDS"`), also for `Unknown`.
        raw_code: String,
        /// The gateway's message, for developers.
        reason: String,
        /// The HTTP status of the answer.
        http_status: i32,
        /// The envelope's `details`, when it has any field this core reads.
        // Boxed to keep `WalletError` small in Rust; the bindings see the record itself.
        details: Option<Box<GatewayErrorDetails>>,
    },
    /// An argument or a scanned or received payload is malformed, expired or not allowed.
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// What is wrong with it.
        reason: String,
    },
    /// The local SQLite database failed.
    #[error("storage error: {reason}")]
    Storage {
        /// What failed.
        reason: String,
    },
    /// A signature did not verify, or a key or signature is malformed.
    #[error("crypto error: {reason}")]
    Crypto {
        /// What failed.
        reason: String,
    },
    /// The platform key store (the app's `DeviceKeyStore`) failed.
    #[error("key store error: {reason}")]
    KeyStorage {
        /// What failed.
        reason: String,
    },
    /// The call was cancelled: the wallet was wiped, or closed while the call was running,
    /// or the stream was stopped. (A call on a Kotlin wallet after `close()` is refused by the
    /// bindings with `IllegalStateException` before it reaches the core.)
    #[error("cancelled")]
    Cancelled,
    /// A bug in the core, a panic caught at the boundary, or an unexpected foreign exception.
    #[error("internal error: {reason}")]
    Internal {
        /// What happened.
        reason: String,
    },
}

/// Why a server's TLS certificate was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum TlsFailure {
    /// The certificate was not issued by a trusted authority (neither the platform's roots
    /// nor `WalletConfig.trustedCertificates`).
    UntrustedCertificate,
    /// The certificate is not valid for the host name connected to.
    HostnameMismatch,
    /// The certificate has expired.
    Expired,
    /// The certificate is not valid yet (or the device clock is wrong).
    NotYetValid,
    /// The certificate was revoked by its issuer.
    Revoked,
    /// The certificate chain is valid but its key matches none of
    /// `WalletConfig.pinnedGatewayKeys`.
    PinMismatch,
    /// Another TLS failure (protocol, handshake, unsupported algorithm).
    Other,
}

/// Shorthand for results of the core.
pub type Result<T, E = WalletError> = std::result::Result<T, E>;

impl WalletError {
    /// An [`WalletError::InvalidInput`] with this message.
    pub fn invalid(message: impl Into<String>) -> WalletError {
        WalletError::InvalidInput {
            reason: message.into(),
        }
    }

    /// An [`WalletError::Internal`] with this message.
    pub fn internal(message: impl Into<String>) -> WalletError {
        WalletError::Internal {
            reason: message.into(),
        }
    }

    /// A [`WalletError::Network`] with this message.
    pub fn network(message: impl Into<String>) -> WalletError {
        WalletError::Network {
            reason: message.into(),
        }
    }

    /// A [`WalletError::Crypto`] with this message.
    pub fn crypto(message: impl Into<String>) -> WalletError {
        WalletError::Crypto {
            reason: message.into(),
        }
    }

    /// The Opencharge error code when this is a gateway error.
    pub fn gateway_code(&self) -> Option<GatewayErrorCode> {
        match self {
            WalletError::Gateway { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The code string exactly as the gateway sent it, when this is a gateway error.
    pub fn gateway_raw_code(&self) -> Option<&str> {
        match self {
            WalletError::Gateway { raw_code, .. } => Some(raw_code),
            _ => None,
        }
    }

    /// The structured `details` of a gateway error, when it has any.
    pub fn gateway_details(&self) -> Option<&GatewayErrorDetails> {
        match self {
            WalletError::Gateway {
                details: Some(details),
                ..
            } => Some(details.as_ref()),
            _ => None,
        }
    }
}

impl From<uniffi::UnexpectedUniFFICallbackError> for WalletError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> WalletError {
        WalletError::Internal {
            reason: format!("unexpected error in a foreign callback: {}", e.reason),
        }
    }
}

impl From<rusqlite::Error> for WalletError {
    fn from(e: rusqlite::Error) -> WalletError {
        WalletError::Storage {
            reason: e.to_string(),
        }
    }
}

impl From<ApiError> for WalletError {
    fn from(e: ApiError) -> WalletError {
        WalletError::Gateway {
            code: GatewayErrorCode::from(&e.code),
            raw_code: e.code.as_str().to_string(),
            reason: e.message,
            http_status: i32::from(e.status),
            details: e
                .details
                .as_ref()
                .and_then(GatewayErrorDetails::from_json)
                .map(Box::new),
        }
    }
}

impl From<ProtocolError> for WalletError {
    fn from(e: ProtocolError) -> WalletError {
        match e {
            ProtocolError::InvalidKey(_)
            | ProtocolError::MalformedSignature(_)
            | ProtocolError::BadSignature
            | ProtocolError::Binding(_) => WalletError::Crypto {
                reason: e.to_string(),
            },
            other => WalletError::InvalidInput {
                reason: other.to_string(),
            },
        }
    }
}
