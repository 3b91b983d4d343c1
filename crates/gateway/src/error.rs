//! The gateway's HTTP error: an Opencharge [`ApiError`] (code, message, status) that renders
//! as the `{"error": {...}}` envelope. Internal failures are logged and shown generically.

use axum::response::{IntoResponse, Response};
use opencharge_peer::error::{error_response, internal_error};
use opencharge_protocol::error_code::{ApiError, ErrorCode};

use crate::store::StoreError;

/// An error a handler returns; becomes the Opencharge error envelope with its HTTP status.
#[derive(Debug)]
pub struct GatewayError(pub ApiError);

impl GatewayError {
    /// An error with `code`'s default status.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        GatewayError(ApiError::new(code, message))
    }

    /// A request-authentication failure (always 401).
    pub fn auth(code: ErrorCode, message: impl Into<String>) -> Self {
        GatewayError(ApiError::request_auth(code, message))
    }

    /// `INVALID_REQUEST` (400).
    pub fn invalid(message: impl Into<String>) -> Self {
        GatewayError(ApiError::invalid_request(message))
    }

    /// `INTERNAL_ERROR` (500) with a generic message; `detail` goes to the log only.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        GatewayError(internal_error(detail))
    }

    /// Replaces the HTTP status.
    pub fn with_status(self, status: u16) -> Self {
        GatewayError(self.0.with_status(status))
    }

    /// Attaches a `details` object.
    pub fn with_details(self, details: serde_json::Value) -> Self {
        GatewayError(self.0.with_details(details))
    }
}

impl From<StoreError> for GatewayError {
    fn from(e: StoreError) -> Self {
        GatewayError::internal(e)
    }
}

impl From<ApiError> for GatewayError {
    fn from(e: ApiError) -> Self {
        GatewayError(e)
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        error_response(&self.0)
    }
}

/// Handler result.
pub type GatewayResult<T> = Result<T, GatewayError>;
