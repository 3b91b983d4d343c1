//! The merchant's whole HTTP router, built in one place, relative to the base path (protocol
//! notes §4.2, §4.3, §5.2); the handlers live in [`crate::server`], [`crate::webhook`],
//! [`crate::payments`] and [`crate::dev`]:
//!
//! | route | auth | answer |
//! |---|---|---|
//! | `GET /metadata.json` | public | the config-nested, self-signed metadata |
//! | `GET /inventory` | public | `{ocid, currency, items:[{id, name, price}]}` |
//! | `POST /orders/create` | `X-OC-*` | prices `{ocid?, items:[{id, quantity}], currency?, reference?, memo?}` from the inventory → `{order, signature, urls}`; 400 `INVALID_ITEM` for an unknown item |
//! | `GET /orders/{id}` | public | `{order, signature, urls}` (what a merchant QR points at); 404 `ORDER_NOT_FOUND`, 410 `ORDER_EXPIRED`, 409 `INVALID_STATE` when paid or cancelled |
//! | `GET /orders/{id}/status` | public | `{orderId, status, paidAt?, txid?}`; 404 `ORDER_NOT_FOUND` |
//! | `POST /transfer/webhook` | `X-OC-*` from the issuer | see [`crate::webhook`] |
//! | `POST /payment/create` | `X-OC-*` (the payer's gateway) | 200 `{status:"pending_settlement", txid, amount, currency, expiresAt, settlement:{accepts}}`; 400 `INVALID_REQUEST`, `MERCHANT_NOT_REGISTERED`, `SETTLEMENT_NOT_SUPPORTED`, `INVALID_STATE`, `ORDER_EXPIRED`, `CURRENCY_MISMATCH`, `AMOUNT_MISMATCH`; 404 `ORDER_NOT_FOUND` (see [`crate::payments`]) |
//! | `POST /payment/settle` | `X-OC-*` (the payment's creator) | 200 `{status:"completed", txid, proof, signature}` (our proof); 404 `PAYMENT_NOT_FOUND`; 400 `INVALID_REQUEST`, `INVALID_STATE`, `PAYMENT_EXPIRED`, `ISSUER_NOT_ACCEPTED`, `PROOF_SIGNATURE_INVALID`, `INVALID_PROOF`, `CURRENCY_MISMATCH`, `AMOUNT_MISMATCH`; 409 `PROOF_ALREADY_PROCESSED` |
//! | `GET /verify/{txid}` | `X-OC-*` (the payment's creator) | 200 `{status:"completed"\|"pending"\|"expired", txid, …}`; 404 `TXID_NOT_FOUND` (also for another caller's payment) |
//!
//! With `dev_mode` on, the `/dev/*` control API of [`crate::dev`] is mounted as well (same
//! body limit, same signing); with it off those paths are 404 `NOT_FOUND`.
//!
//! The public routes follow the merchant OpenAPI, which gives them no authentication; order
//! ids are 128-bit random, so they are not guessable. Every response carries the merchant's
//! `X-OC-*` response signature; errors use the `{"error": {...}}` envelope.

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use opencharge_peer::envelope;
use tower_http::limit::RequestBodyLimitLayer;

use crate::auth::{sign_responses, MAX_REQUEST_BYTES};
use crate::state::AppState;
use crate::{dev, payments, server, webhook};

/// The full router: the API under the base path. Every answer, router-level ones included
/// (404 for an unmatched path inside or outside the base path, 405 with `Allow`, 413, extractor
/// rejections), is the JSON error envelope when it is an error
/// ([`opencharge_peer::envelope`]) and signed.
pub(crate) fn build_router(state: AppState) -> Router {
    let mut routes = Router::new()
        .route("/metadata.json", get(server::metadata))
        .route("/inventory", get(server::inventory))
        .route("/orders/create", post(server::orders_create))
        .route("/orders/{id}", get(server::get_order))
        .route("/orders/{id}/status", get(server::order_status))
        .route("/transfer/webhook", post(webhook::transfer_webhook))
        .route("/payment/create", post(payments::payment_create))
        .route("/payment/settle", post(payments::payment_settle))
        .route("/verify/{txid}", get(payments::verify_txid));
    if state.config.dev_mode {
        routes = routes.merge(dev::routes());
    }
    let api = routes.with_state(state.clone());
    let routed = if state.config.base_path.is_empty() {
        api
    } else {
        Router::new().nest(&state.config.base_path, api)
    };
    // Layers run outside in: sign, envelope, body limits (a declared length over the limit is
    // refused before authentication; a streamed body when it is read).
    routed
        .fallback(envelope::not_found)
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .layer(RequestBodyLimitLayer::new(MAX_REQUEST_BYTES))
        .layer(axum::middleware::from_fn(envelope::envelope_bare_errors))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            sign_responses,
        ))
}
