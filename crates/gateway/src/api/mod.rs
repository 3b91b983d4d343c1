//! HTTP routes: the Opencharge endpoints, the hosted checkout page, the wallet app API, and the
//! dev-only endpoints, and [`build_router`], the one place the gateway's whole router is put
//! together (route groups, response signing, body limit, tracing, base path).
//!
//! | group | module | mounted |
//! |---|---|---|
//! | Opencharge endpoints (`/metadata.json`, `/orders/...`, `/checkout/...`, `/transfer/...`) | [`opencharge`] | always |
//! | hosted checkout page (`/checkout/{id}/status`, `/checkout-assets/...`) | [`checkout_page`] | always |
//! | wallet app API (`/app/...`) | [`app`] | always |
//! | push tokens (`/app/devices/push-token`) | [`push`] | always |
//! | app event stream (`/app/events`) | [`events`] | always |
//! | dev control API (`/dev/...`) | [`dev`] | `dev_mode` only |
//! | probes (`/healthz`, `/readyz`, at the root) | [`crate::ops::health`] | always |

use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::state::AppState;

pub mod app;
pub mod checkout_page;
pub mod dev;
pub mod events;
pub mod opencharge;
pub mod push;
pub mod rate_limit;
pub mod status;
pub mod transfers;
pub mod wire;

/// Largest request body accepted, bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The full router: Opencharge, checkout-page and app routes (and the dev routes in dev mode)
/// under the base path, and `/healthz` and `/readyz` at the root. Every answer, router-level
/// ones included (404 for an unmatched path inside or outside the base path, 405, 413 from the
/// body limit, extractor rejections), is the JSON error envelope when it is an error
/// ([`opencharge_peer::envelope`]), signed, and counted in the request metrics.
pub fn build_router(state: AppState) -> Router {
    let mut api = Router::new()
        .merge(opencharge::routes())
        .merge(checkout_page::routes())
        .merge(app::routes())
        .merge(transfers::routes())
        .merge(push::routes())
        .merge(events::routes());
    if state.config.dev_mode {
        api = api.merge(dev::routes());
    }
    let api = api.with_state(state.clone());
    let routed = if state.config.base_path.is_empty() {
        api
    } else {
        Router::new().nest(&state.config.base_path, api)
    };
    // Probes at the root (outside the base path).
    let routed = routed.merge(crate::ops::health::routes().with_state(state.clone()));
    // Layers run outside in: request metrics, trace, sign, envelope, body limit. The body limit's 413 is thus
    // enveloped, and every answer is signed.
    routed
        .fallback(opencharge_peer::envelope::not_found)
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(
            opencharge_peer::envelope::envelope_bare_errors,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::sign_responses,
        ))
        .layer(TraceLayer::new_for_http())
        .layer(axum::middleware::from_fn_with_state(
            state,
            crate::ops::metrics::track_requests,
        ))
}
