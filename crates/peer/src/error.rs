//! The Opencharge error envelope as an HTTP response: how a peer renders an [`ApiError`]
//! (`{"error": {...}}` with its status), reports an internal failure without leaking it, and
//! [`HttpError`], the one handler error of the gateway and the merchant.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use opencharge_protocol::error_code::{ApiError, ErrorCode};

/// An error an HTTP handler returns: an Opencharge [`ApiError`] (code, message, status) that
/// renders as the `{"error": {...}}` envelope with its HTTP status. Internal failures are
/// logged and shown generically. The gateway calls it `GatewayError`.
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

impl From<ApiError> for HttpError {
    fn from(e: ApiError) -> Self {
        HttpError(e)
    }
}

impl From<opencharge_protocol::proof::ProofRejection> for HttpError {
    /// A refused proof is its Opencharge error (400 with its code, message and details).
    fn from(rejection: opencharge_protocol::proof::ProofRejection) -> Self {
        HttpError(rejection.to_api_error())
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        error_response(&self.0)
    }
}

/// `INTERNAL_ERROR` (500) with a generic message; `detail` goes to the log only.
pub fn internal_error(detail: impl std::fmt::Display) -> ApiError {
    tracing::error!(%detail, "internal error");
    ApiError::internal("internal error")
}

/// Renders `error` as the `{"error": {...}}` envelope (`application/json`) with its HTTP
/// status (500 when the status is not a valid HTTP status). A `RATE_LIMITED` error with a
/// whole number `details.retryAfterSeconds` also gets that number as `Retry-After`.
pub fn error_response(error: &ApiError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        error.to_json(),
    )
        .into_response();
    let retry_after = (error.code == ErrorCode::RateLimited)
        .then(|| error.details.as_ref()?.get("retryAfterSeconds")?.as_u64())
        .flatten();
    if let Some(secs) = retry_after {
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from(secs),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencharge_protocol::error_code::ErrorCode;

    #[tokio::test]
    async fn envelope_and_generic_internal_message() {
        let error = ApiError::new(ErrorCode::AmountMismatch, "no").with_status(422);
        let response = error_response(&error);
        assert_eq!(response.status().as_u16(), 422);
        assert_eq!(
            response.headers()[axum::http::header::CONTENT_TYPE],
            "application/json"
        );
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        let parsed = ApiError::from_json(&body).unwrap();
        assert_eq!(
            (parsed.code, parsed.message.as_str()),
            (ErrorCode::AmountMismatch, "no")
        );

        let internal = internal_error("secret detail");
        assert_eq!(
            (internal.status, internal.message.as_str()),
            (500, "internal error")
        );
        let odd = error_response(&ApiError::internal("x").with_status(1000));
        assert_eq!(odd.status().as_u16(), 500);
    }

    #[test]
    fn rate_limited_carries_retry_after() {
        let error = ApiError::new(ErrorCode::RateLimited, "slow down")
            .with_details(serde_json::json!({"retryAfterSeconds": 3}));
        let response = error_response(&error);
        assert_eq!(response.status().as_u16(), 429);
        assert_eq!(response.headers()[axum::http::header::RETRY_AFTER], "3");
        let plain = error_response(&ApiError::new(ErrorCode::RateLimited, "slow down"));
        assert!(!plain
            .headers()
            .contains_key(axum::http::header::RETRY_AFTER));
    }

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
    fn http_error_constructors() {
        assert_eq!(
            HttpError::auth(ErrorCode::InvalidSignature, "x").0.status,
            401
        );
        assert_eq!(HttpError::internal("boom").0.message, "internal error");
        assert_eq!(HttpError::invalid("bad").0.code, ErrorCode::InvalidRequest);
        assert_eq!(HttpError::invalid("bad").with_status(405).0.status, 405);
        let from: HttpError = ApiError::internal("x").into();
        assert_eq!(from.0.status, 500);
    }
}
