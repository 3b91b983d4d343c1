//! The Opencharge error envelope as an HTTP response: how a peer renders an [`ApiError`]
//! (`{"error": {...}}` with its status) and reports an internal failure without leaking it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use opencharge_protocol::error_code::ApiError;

/// `INTERNAL_ERROR` (500) with a generic message; `detail` goes to the log only.
pub fn internal_error(detail: impl std::fmt::Display) -> ApiError {
    tracing::error!(%detail, "internal error");
    ApiError::internal("internal error")
}

/// Renders `error` as the `{"error": {...}}` envelope (`application/json`) with its HTTP
/// status (500 when the status is not a valid HTTP status).
pub fn error_response(error: &ApiError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        error.to_json(),
    )
        .into_response()
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
}
