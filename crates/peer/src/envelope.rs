//! Router-level answers in the Opencharge error envelope: the [`not_found`] fallback for
//! unmatched paths and the [`envelope_bare_errors`] middleware that turns every bare framework
//! error response (axum's empty 404 and 405, the body limit's plain-text 413, extractor
//! rejections such as a bad path parameter or a missing content type) into the
//! `{"error": {...}}` envelope with the same status and headers (`Allow` stays). Both peers
//! mount them inside their response-signing layer, so these answers are signed too.
//!
//! A response counts as bare when its status is 4xx or 5xx and its `Content-Type` is absent or
//! `text/plain` (what axum and tower-http produce). Handler errors are already JSON envelopes
//! and HTML pages (the hosted checkout page's own error pages) are left alone.

use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use opencharge_protocol::error_code::{ApiError, ErrorCode};

use crate::error::error_response;

/// Longest framework error text kept in the envelope's message, bytes (the rest is dropped).
pub const MAX_FRAMEWORK_TEXT_BYTES: usize = 1024;

/// Fallback for a path no route matches: 404 `NOT_FOUND` naming the path.
pub async fn not_found(req: Request) -> Response {
    error_response(&not_found_error(req.uri().path()))
}

/// The 404 `NOT_FOUND` for an unmatched `path`.
pub fn not_found_error(path: &str) -> ApiError {
    let shown: String = path.chars().take(200).collect();
    ApiError::new(
        ErrorCode::NotFound,
        format!(
            "no route for path {shown:?}: check the URL and the peer's base path \
             (its metadata.json lists its endpoints)"
        ),
    )
}

/// Middleware: replaces a bare framework error response (see the module documentation) with
/// the error envelope for its status, keeping the status and the other headers.
pub async fn envelope_bare_errors(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let response = next.run(req).await;
    if !is_bare_error(&response) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // A framework error body is a short text; more than the limit is cut off, never buffered.
    let text = match axum::body::to_bytes(body, MAX_FRAMEWORK_TEXT_BYTES).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    let error = framework_error(parts.status, method.as_str(), &path, &text);
    let enveloped = error_response(&error);
    let (new_parts, new_body) = enveloped.into_parts();
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.status = new_parts.status;
    Response::from_parts(parts, new_body)
}

/// True for a 4xx/5xx whose body is not JSON or HTML: no `Content-Type`, or `text/plain`.
fn is_bare_error(response: &Response) -> bool {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return false;
    }
    match response.headers().get(CONTENT_TYPE) {
        None => true,
        Some(value) => value
            .to_str()
            .map(|ct| {
                ct.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("text/plain")
            })
            .unwrap_or(false),
    }
}

/// The envelope for a framework answer with `status` (and its plain-text `text`, if any) to
/// `method path`: 404 `NOT_FOUND`, 405 and every other 4xx `INVALID_REQUEST`, 429
/// `RATE_LIMITED`, 5xx `INTERNAL_ERROR` (generic: the text goes to the log only).
pub fn framework_error(status: StatusCode, method: &str, path: &str, text: &str) -> ApiError {
    let code = status.as_u16();
    let detail = if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    };
    match status {
        StatusCode::NOT_FOUND => not_found_error(path),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::invalid_request(format!(
            "method {method} is not allowed on this path; the Allow header lists the methods it takes"
        ))
        .with_status(code),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::invalid_request(format!(
            "request body is too large{detail}; send a smaller body"
        ))
        .with_status(code),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::invalid_request(format!(
            "unsupported content type{detail}; send Content-Type: application/json"
        ))
        .with_status(code),
        StatusCode::TOO_MANY_REQUESTS => {
            ApiError::new(ErrorCode::RateLimited, format!("too many requests{detail}"))
                .with_status(code)
        }
        s if s.is_server_error() => {
            tracing::error!(status = code, %method, %path, text, "framework error");
            ApiError::internal("internal error").with_status(code)
        }
        _ => ApiError::invalid_request(format!("invalid request{detail}")).with_status(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::header::ALLOW;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    async fn call(router: Router, method: &str, uri: &str, body: Body) -> (Response, ApiError) {
        let response = router
            .oneshot(
                Request::builder()
                    .method(method)
                    .uri(uri)
                    .body(body)
                    .unwrap(),
            )
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 64 * 1024).await.unwrap();
        let error = ApiError::from_json(&bytes).unwrap();
        (Response::from_parts(parts, Body::from(bytes)), error)
    }

    fn router() -> Router {
        Router::new()
            .route(
                "/x/{n}",
                get(
                    |axum::extract::Path(n): axum::extract::Path<u32>| async move { n.to_string() },
                ),
            )
            .fallback(not_found)
            .layer(axum::middleware::from_fn(envelope_bare_errors))
    }

    #[tokio::test]
    async fn unmatched_path_wrong_method_and_bad_path_are_enveloped() {
        let (response, error) = call(router(), "GET", "/nothing", Body::empty()).await;
        assert_eq!(response.status(), 404);
        assert_eq!(error.code, ErrorCode::NotFound);
        assert!(error.message.contains("/nothing"), "{}", error.message);

        let (response, error) = call(router(), "DELETE", "/x/1", Body::empty()).await;
        assert_eq!(response.status(), 405);
        assert_eq!(error.code, ErrorCode::InvalidRequest);
        assert_eq!(response.headers()[ALLOW], "GET,HEAD");
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");

        let (response, error) = call(router(), "GET", "/x/notanumber", Body::empty()).await;
        assert_eq!(response.status(), 400);
        assert_eq!(error.code, ErrorCode::InvalidRequest);
        assert!(error.message.contains("notanumber") || error.message.contains("parse"));
    }

    #[tokio::test]
    async fn json_and_html_errors_pass_untouched() {
        let router = Router::new()
            .route(
                "/html",
                get(|| async {
                    (
                        StatusCode::NOT_FOUND,
                        [(CONTENT_TYPE, "text/html; charset=utf-8")],
                        "<p>gone</p>",
                    )
                }),
            )
            .layer(axum::middleware::from_fn(envelope_bare_errors));
        let response = router
            .oneshot(Request::builder().uri("/html").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
        let bytes = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&bytes[..], b"<p>gone</p>");
    }

    #[test]
    fn statuses_map_to_codes() {
        let e = framework_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "POST",
            "/a",
            "length limit exceeded",
        );
        assert_eq!((e.code, e.status), (ErrorCode::InvalidRequest, 413));
        let e = framework_error(StatusCode::TOO_MANY_REQUESTS, "GET", "/a", "");
        assert_eq!((e.code, e.status), (ErrorCode::RateLimited, 429));
        let e = framework_error(StatusCode::BAD_GATEWAY, "GET", "/a", "secret");
        assert_eq!((e.code, e.status), (ErrorCode::InternalError, 502));
        assert!(!e.message.contains("secret"));
        let e = framework_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "POST", "/a", "x");
        assert_eq!((e.code, e.status), (ErrorCode::InvalidRequest, 415));
    }
}
