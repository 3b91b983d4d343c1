//! The gateway's own HTTP/1 accept loop (instead of `axum::serve`, which has no header-read
//! timeout, no request timeout and no connection cap), and the answers it gives itself, every
//! one a JSON error envelope with the `X-OC-*` response signature:
//!
//! - a connection over the cap ([`crate::limits::LimitsConfig::connection_cap`]) is accepted,
//!   answered `503 RATE_LIMITED` with `Retry-After: 1` in one non-blocking write, and closed
//!   (nothing is held for it; a warning is logged at most once per second);
//! - a request head not complete within `header_read_timeout_secs` closes the connection
//!   (hyper's header-read timer, which also bounds idle keep-alive connections);
//! - a request target over `max_uri_bytes` is `414`, a header section over `max_header_bytes`
//!   is `431`, a response head not ready within `request_timeout_secs` is `503`;
//! - bytes hyper cannot parse (bad request line, bad header syntax, more headers than hyper
//!   takes) make hyper write a bare `400`/`414`/`431` head with no body and close:
//!   [`SignedErrors`], a thin wrapper of the socket, recognises that head as the last thing
//!   written on the connection and writes a signed envelope in its place.
//!
//! Graceful shutdown waits for every open connection, as `axum::serve` did
//! ([`crate::RunningGateway::stop`] first ends the event streams).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Response, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use opencharge_peer::auth::sign_response;
use opencharge_peer::error::error_response;
use opencharge_protocol::auth::ResponseAuth;
use opencharge_protocol::error_code::{ApiError, ErrorCode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::Service;

use crate::limits::LimitsConfig;
use crate::state::AppState;

/// Largest error body this module signs, bytes (its own envelopes are far smaller).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Serves `router` on `listener` with `state.config.limits` until `shutdown` resolves, then
/// stops accepting and waits for every open connection to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send,
) {
    let limits = state.config.limits.clone();
    let cap = limits.connection_cap();
    let permits = Arc::new(Semaphore::new(
        usize::try_from(cap).unwrap_or(Semaphore::MAX_PERMITS),
    ));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_read_timeout_secs))
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let last_full_log = AtomicI64::new(i64::MIN);
    tracing::info!(
        max_connections = cap,
        header_read_timeout_secs = limits.header_read_timeout_secs,
        request_timeout_secs = limits.request_timeout_secs,
        "connection limits"
    );
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors (EMFILE/ENFILE) or a connection reset before
                    // accept: wait a moment instead of spinning.
                    tracing::warn!(error = %e, "accept failed; raise the open-file limit or lower limits.max_connections");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refuse_over_cap(&stream, &state, cap, &last_full_log);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = LimitedService {
            router: router.clone(),
            state: state.clone(),
            limits: limits.clone(),
        };
        let io = TokioIo::new(SignedErrors::new(stream, state.clone()));
        let connection = http.serve_connection(
            io,
            hyper::service::service_fn(move |req| service.clone().call(req)),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Answers a connection over the cap with a signed `503 RATE_LIMITED` in one non-blocking
/// write (a fresh socket's send buffer takes it), logging at most once per second.
fn refuse_over_cap(stream: &TcpStream, state: &AppState, cap: u64, last_log: &AtomicI64) {
    let now = state.now();
    if last_log.swap(now, Ordering::Relaxed) != now {
        tracing::warn!(
            max_connections = cap,
            "connection cap reached: new connections are answered 503 and closed; raise \
             limits.max_connections (and the open-file limit) if this is real traffic"
        );
    }
    let error = ApiError::new(
        ErrorCode::RateLimited,
        format!("the gateway is serving its maximum of {cap} connections; retry in a second"),
    )
    .with_status(503);
    let bytes = raw_signed_error(state, &error, Some(1));
    let _ = stream.try_write(&bytes);
}

/// The whole HTTP/1.1 response (`Connection: close`) for `error`: envelope body and
/// `X-OC-*` signature, and `Retry-After` when given.
pub fn raw_signed_error(state: &AppState, error: &ApiError, retry_after: Option<u64>) -> Vec<u8> {
    let body = error.to_json();
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    match ResponseAuth::sign(
        &state.key,
        state.config.ocid,
        status.as_u16(),
        body.as_bytes(),
        state.now(),
    ) {
        Ok(auth) => {
            for (name, value) in auth.headers() {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot sign a connection-level error"),
    }
    if let Some(secs) = retry_after {
        head.push_str(&format!("retry-after: {secs}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

/// The router behind the limits that need the request: target and header sizes, and the
/// request timeout.
#[derive(Clone)]
struct LimitedService {
    router: Router,
    state: AppState,
    limits: LimitsConfig,
}

impl LimitedService {
    async fn call(mut self, req: hyper::Request<Incoming>) -> Result<Response<Body>, Infallible> {
        if let Some(error) = head_too_large(&req, &self.limits) {
            return Ok(self.signed(error, None).await);
        }
        let timeout = Duration::from_secs(self.limits.request_timeout_secs);
        let req: Request = req.map(Body::new);
        match tokio::time::timeout(timeout, self.router.call(req)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(never)) => match never {},
            Err(_) => {
                let error = ApiError::new(
                    ErrorCode::InternalError,
                    format!(
                        "the request was not answered within {} s (a slow upload or a busy \
                         gateway); retry",
                        self.limits.request_timeout_secs
                    ),
                )
                .with_status(503);
                Ok(self.signed(error, Some(1)).await)
            }
        }
    }

    async fn signed(&self, error: ApiError, retry_after: Option<u64>) -> Response<Body> {
        let mut response = error_response(&error);
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
        }
        if error.status == 414 || error.status == 431 {
            response
                .headers_mut()
                .insert("connection", HeaderValue::from_static("close"));
        }
        sign_response(
            response,
            &self.state.key,
            self.state.config.ocid,
            &*self.state.clock,
            MAX_ERROR_BODY,
        )
        .await
    }
}

/// `414` when the request target is over `max_uri_bytes`, `431` when the header section is
/// over `max_header_bytes` (each header counted as `name: value\r\n`).
fn head_too_large<B>(req: &hyper::Request<B>, limits: &LimitsConfig) -> Option<ApiError> {
    let target = req
        .uri()
        .path_and_query()
        .map_or(req.uri().to_string().len(), |pq| pq.as_str().len());
    if target > limits.max_uri_bytes {
        return Some(
            ApiError::invalid_request(format!(
                "the request target is {target} bytes; the gateway takes at most {} \
                 (limits.max_uri_bytes): send data in the body, not the URL",
                limits.max_uri_bytes
            ))
            .with_status(414),
        );
    }
    let headers: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers > limits.max_header_bytes {
        return Some(
            ApiError::invalid_request(format!(
                "the request headers are {headers} bytes; the gateway takes at most {} \
                 (limits.max_header_bytes): drop large or repeated headers",
                limits.max_header_bytes
            ))
            .with_status(431),
        );
    }
    None
}

/// The socket of one connection. Reads pass through; a write that ends with hyper's own bare
/// error head (`HTTP/1.1 400|414|431 ...`, `content-length: 0`, no `X-OC-Signature`; hyper
/// writes it after a request it cannot parse, as the last bytes of the connection) has that
/// head replaced by a signed envelope ([`raw_signed_error`]).
pub struct SignedErrors {
    inner: TcpStream,
    state: AppState,
    /// Bytes still to write in place of what hyper was told was written.
    pending: Vec<u8>,
}

impl SignedErrors {
    /// Wraps an accepted connection.
    pub fn new(inner: TcpStream, state: AppState) -> Self {
        SignedErrors {
            inner,
            state,
            pending: Vec::new(),
        }
    }

    /// Writes what is pending; `Ready(Ok)` once nothing is left.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.pending) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.pending.drain(..n);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// Where hyper's bare parse-error head starts in `buf` (it must end `buf`), and its status.
fn bare_error_head(buf: &[u8]) -> Option<(usize, u16)> {
    if !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    let start = buf
        .windows(9)
        .rposition(|w| w == b"HTTP/1.1 " || w == b"HTTP/1.0 ")?;
    let head = std::str::from_utf8(&buf[start..]).ok()?;
    let status: u16 = head.get(9..12)?.parse().ok()?;
    if !matches!(status, 400 | 414 | 431) {
        return None;
    }
    let lower = head.to_ascii_lowercase();
    let bare = lower.contains("\r\ncontent-length: 0\r\n")
        && !lower.contains("x-oc-signature")
        && !lower.contains("content-type");
    bare.then_some((start, status))
}

impl AsyncRead for SignedErrors {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for SignedErrors {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match this.drain(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
        if let Some((start, status)) = bare_error_head(buf) {
            let message = match status {
                414 => "the request target is too long for the gateway: send data in the body, not the URL",
                431 => "the request headers are too large or too many for the gateway: drop large or repeated headers",
                _ => "the request is not valid HTTP/1.1 (bad request line or header syntax): check the client",
            };
            let error = ApiError::invalid_request(message).with_status(status);
            let mut replaced = buf[..start].to_vec();
            replaced.extend_from_slice(&raw_signed_error(&this.state, &error, None));
            this.pending = replaced;
            // hyper is told its bytes went out; flush and shutdown write the replacement.
            if let Poll::Ready(Err(e)) = this.drain(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.drain(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut self.inner).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.drain(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut self.inner).poll_shutdown(cx),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bare_error_head;

    #[test]
    fn recognises_only_hyper_bare_error_heads() {
        let bare = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert_eq!(bare_error_head(bare), Some((0, 400)));
        let mut pipelined = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}".to_vec();
        pipelined.extend_from_slice(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n",
        );
        assert_eq!(bare_error_head(&pipelined).map(|(_, s)| s), Some(431));
        let signed = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nx-oc-signature: ab\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(bare_error_head(signed), None);
        let ok = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(bare_error_head(ok), None);
        assert_eq!(bare_error_head(b"data: {}\n\n"), None);
    }
}
