//! Outbound HTTP signed as this gateway: every request carries `X-OC-*` headers over the exact
//! path, query and body bytes sent, goes only to allowed URLs (HTTPS, or plain HTTP to loopback
//! when configured), and reads a bounded response. The machinery is
//! [`opencharge_peer::client`]; this module binds it to the gateway's key, OCID and clock.
//! Response signatures can be checked against the peer's key with [`SignedResponse::verify`].

use axum::body::Bytes;
use reqwest::Method;

pub use opencharge_peer::client::{
    check_outbound_url, read_limited, request_target, ClientError, PeerResponse,
    PeerResponse as SignedResponse, Signer, MAX_RESPONSE_BYTES,
};

use crate::state::AppState;

/// Sends `method url` with `body` (JSON when non-empty), signed with the gateway's key and
/// OCID at `state.now()`, and returns the whole response.
pub async fn signed_request(
    state: &AppState,
    method: Method,
    url: &str,
    body: &[u8],
) -> Result<SignedResponse, ClientError> {
    let config = &state.config;
    let signer = Signer::new(
        &state.http,
        &state.key,
        config.ocid,
        config.allow_loopback_http,
    );
    signer.send(method, url, body, state.now()).await
}

/// POSTs the exact JSON bytes `body` to `url`, signed; returns status and response body.
pub async fn signed_post_json(
    state: &AppState,
    url: &str,
    body: &[u8],
) -> Result<(u16, Bytes), ClientError> {
    let response = signed_request(state, Method::POST, url, body).await?;
    Ok((response.status, response.body))
}

/// GETs `url` (empty body), signed; returns status and response body.
pub async fn signed_get(state: &AppState, url: &str) -> Result<(u16, Bytes), ClientError> {
    let response = signed_request(state, Method::GET, url, &[]).await?;
    Ok((response.status, response.body))
}
