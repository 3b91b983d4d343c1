//! A loopback HTTP proxy that loses answers on purpose, for tests of honest outcomes: it
//! forwards every request to the gateway and streams the answer back (event streams too),
//! except for requests matching a [`DropRule`] (method + path pattern, e.g. `POST
//! /app/sessions/*/confirm`): those it forwards, lets the gateway answer in full (so the
//! gateway has acted: debited, declined), and then closes the client's connection without
//! passing the answer on. Real sockets and real HTTP/1.1 (hyper) on both sides. Given several
//! upstreams ([`DropProxy::set_upstreams`]: gateway instances on one database) it sends each
//! request to the next one in turn, as a round-robin load balancer does: the front of a
//! [`crate::Network`] with more than one instance.
//!
//! To put a whole [`crate::Network`] behind it (so the gateway's published endpoint, which
//! wallets check against its metadata, is the proxy's), start the proxy first, give its
//! [`DropProxy::url`] to the gateway as `public_url`, then [`DropProxy::set_upstream`]:
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use opencharge_testkit::{DropProxy, DropRule, Network};
//! let proxy = DropProxy::start().await?;
//! let public_url = proxy.url();
//! let network = Network::builder()
//!     .gateway_config(move |c| c.public_url = Some(public_url))
//!     .start()
//!     .await?;
//! proxy.set_upstream(network.gateway_addr());
//! proxy.drop_answers(DropRule::new("POST", "/opencharge/app/sessions/*/confirm"));
//! # Ok(())
//! # }
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Which requests lose their answer: a method and a path pattern whose `*` segments match
/// any one segment (`/app/sessions/*/confirm`); the query string is not matched.
#[derive(Debug, Clone)]
pub struct DropRule {
    method: Method,
    pattern: Vec<String>,
    /// How many more matching answers to drop; `None`: all of them.
    remaining: Option<usize>,
}

impl DropRule {
    /// Drops the answer of every `method` request whose path matches `pattern`. A method that
    /// is not an HTTP token matches nothing.
    pub fn new(method: &str, pattern: &str) -> DropRule {
        DropRule {
            method: Method::from_bytes(method.as_bytes()).unwrap_or(Method::CONNECT),
            pattern: pattern.split('/').map(str::to_string).collect(),
            remaining: None,
        }
    }

    /// Drops only the first `count` matching answers, then lets them through.
    pub fn times(mut self, count: usize) -> DropRule {
        self.remaining = Some(count);
        self
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        let segments: Vec<&str> = path.split('/').collect();
        *method == self.method
            && segments.len() == self.pattern.len()
            && self
                .pattern
                .iter()
                .zip(&segments)
                .all(|(want, got)| want == got || (want == "*" && !got.is_empty()))
            && self.remaining != Some(0)
    }
}

/// What the connection tasks share.
struct State {
    /// Where requests go, in turn, with how many each was sent; empty until set (answered 502
    /// meanwhile).
    upstreams: Mutex<Vec<(SocketAddr, usize)>>,
    /// The turn of the next request.
    next: AtomicUsize,
    client: Client<HttpConnector, Incoming>,
    rules: Mutex<Vec<DropRule>>,
    forwarded: AtomicUsize,
    dropped: AtomicUsize,
}

impl State {
    /// Whether this request's answer is to be dropped (counting it against its rule).
    fn take_match(&self, method: &Method, path: &str) -> bool {
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        match rules.iter_mut().find(|r| r.matches(method, path)) {
            Some(rule) => {
                if let Some(n) = rule.remaining.as_mut() {
                    *n -= 1;
                }
                true
            }
            None => false,
        }
    }
}

/// The error that makes hyper close the client's connection without an answer.
#[derive(Debug)]
struct AnswerDropped;

impl std::fmt::Display for AnswerDropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("answer dropped on purpose")
    }
}

impl std::error::Error for AnswerDropped {}

type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// A running proxy on a loopback port; stops (closing every connection) when dropped.
pub struct DropProxy {
    addr: SocketAddr,
    state: Arc<State>,
    accept: tokio::task::JoinHandle<()>,
}

impl DropProxy {
    /// Starts a proxy on a free loopback port in front of the HTTP server at `upstream`
    /// (e.g. [`crate::Network::gateway_addr`]), on the current tokio runtime.
    pub async fn to(upstream: SocketAddr) -> anyhow::Result<DropProxy> {
        let proxy = DropProxy::start().await?;
        proxy.set_upstream(upstream);
        Ok(proxy)
    }

    /// Starts a proxy on a free loopback port, on the current tokio runtime, with no upstream
    /// yet (requests are answered 502 until [`DropProxy::set_upstream`]).
    pub async fn start() -> anyhow::Result<DropProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("cannot bind the drop proxy to a loopback port")?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            upstreams: Mutex::new(Vec::new()),
            next: AtomicUsize::new(0),
            client: Client::builder(TokioExecutor::new()).build_http(),
            rules: Mutex::new(Vec::new()),
            forwarded: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
        });
        let shared = Arc::clone(&state);
        let accept = tokio::spawn(async move {
            // Dropping the set when this task is aborted closes every open connection.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                while connections.try_join_next().is_some() {}
                let state = Arc::clone(&shared);
                connections.spawn(async move {
                    let service = service_fn(move |request| forward(Arc::clone(&state), request));
                    // An error here is a dropped answer or a client that went away.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(DropProxy {
            addr,
            state,
            accept,
        })
    }

    /// The proxy's base URL (`http://127.0.0.1:<port>`): a wallet's `gatewayUrl`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The proxy's listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends requests to the HTTP server at `upstream` from now on.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        self.set_upstreams(&[upstream]);
    }

    /// Sends requests to these HTTP servers from now on, each request to the next one in
    /// turn (round robin, request by request, whatever connection it came on).
    pub fn set_upstreams(&self, upstreams: &[SocketAddr]) {
        *self
            .state
            .upstreams
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = upstreams.iter().map(|a| (*a, 0)).collect();
    }

    /// How many requests were sent to each upstream (in [`DropProxy::set_upstreams`] order)
    /// since it was set.
    pub fn forwarded_per_upstream(&self) -> Vec<(SocketAddr, usize)> {
        self.state
            .upstreams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Adds a rule: answers of matching requests are dropped from now on.
    pub fn drop_answers(&self, rule: DropRule) {
        self.state
            .rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(rule);
    }

    /// Removes every rule: all answers pass from now on.
    pub fn pass_all(&self) {
        self.state
            .rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// How many answers were dropped so far (each after the gateway answered in full).
    pub fn dropped(&self) -> usize {
        self.state.dropped.load(Ordering::SeqCst)
    }

    /// How many requests were forwarded so far, dropped answers included.
    pub fn forwarded(&self) -> usize {
        self.state.forwarded.load(Ordering::SeqCst)
    }
}

impl Drop for DropProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Forwards one request to the next upstream server and returns its answer, or, when a rule
/// matches, waits for the whole answer and fails so hyper closes the connection unanswered.
/// An upstream that cannot be reached is a 502 from the proxy, as a real proxy would answer.
async fn forward(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, AnswerDropped> {
    let upstream = {
        let mut upstreams = state.upstreams.lock().unwrap_or_else(|p| p.into_inner());
        match upstreams.len() {
            0 => None,
            n => {
                let chosen = &mut upstreams[state.next.fetch_add(1, Ordering::Relaxed) % n];
                chosen.1 += 1;
                Some(chosen.0)
            }
        }
    };
    let Some(upstream) = upstream else {
        return Ok(plain(
            StatusCode::BAD_GATEWAY,
            "the proxy has no upstream yet",
        ));
    };
    let drop_answer = state.take_match(request.method(), request.uri().path());
    let (mut parts, body) = request.into_parts();
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    parts.uri = match format!("http://{upstream}{target}").parse() {
        Ok(uri) => uri,
        Err(_) => return Ok(plain(StatusCode::BAD_REQUEST, "bad request target")),
    };
    state.forwarded.fetch_add(1, Ordering::SeqCst);
    let response = match state.client.request(Request::from_parts(parts, body)).await {
        Ok(response) => response,
        Err(e) => {
            return Ok(plain(
                StatusCode::BAD_GATEWAY,
                &format!("the proxy cannot reach the upstream server: {e}"),
            ))
        }
    };
    if drop_answer {
        // The gateway has acted once its answer is complete; then hang up on the client.
        let _ = response.into_body().collect().await;
        state.dropped.fetch_add(1, Ordering::SeqCst);
        return Err(AnswerDropped);
    }
    Ok(response.map(|body| body.boxed()))
}

/// A short text answer from the proxy itself.
fn plain(status: StatusCode, text: &str) -> Response<ProxyBody> {
    let body = Full::new(Bytes::from(text.to_string()))
        .map_err(|never: Infallible| match never {})
        .boxed();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}
