//! The development control API, mounted under the base path only when
//! [`MerchantConfig::dev_mode`](crate::MerchantConfig::dev_mode) is on. It lets a terminal, a
//! test or a demo drive the merchant over HTTP: each route is a thin wrapper over the
//! operation behind the matching [`RunningMerchant`](crate::RunningMerchant) method.
//!
//! | route | body | answer |
//! |---|---|---|
//! | `POST /dev/orders` | `{items:[{id, name, quantity, price}], currency?, reference?, memo?}` | `{orderId, order, signature, qr}` (`qr`: the merchant-order QR text) |
//! | `POST /dev/orders/{id}/post` | `{sessionQr}` (a wallet's session QR text) | `{orderId, statusUrl}`; 504 `OUTCOME_UNKNOWN` when the gateway may have taken the order but no trustworthy answer came (the order stays pending: do not cancel it) |
//! | `POST /dev/orders/{id}/checkout` | `{gatewayOcid?, successUrl, cancelUrl}` | `{orderId, checkoutUrl, expiresAt}` |
//! | `POST /dev/orders/{id}/cancel` | `{}` or empty | the order view |
//! | `GET /dev/orders/{id}` | | the order view `{orderId, status, amount, currency, txid, issuer, paidAt}` |
//! | `GET /dev/inventory-qr` | | `{qr}` (the inventory QR text) |
//!
//! `currency` defaults to the merchant's first configured currency; `gatewayOcid` defaults to
//! the first OCID in `accepts`. Money stays in exact decimal strings. The routes are not
//! authenticated: anyone who reaches the listener can create and cancel orders, which is why
//! dev mode is for loopback development only. Errors use the usual `{"error": {...}}`
//! envelope (see [`operation_error`](crate::error::operation_error)); bodies are limited like every other route.

use axum::extract::{FromRequest, Path, Request, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use opencharge_peer::auth::read_body;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{operation_error, HttpError, HttpResult};
use crate::operations::OrderRecord;
use crate::orders::{NewItem, NewOrder};
use crate::state::AppState;

/// The `/dev/*` routes, relative to the base path.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/dev/orders", post(create_order))
        .route("/dev/orders/{id}", get(order_view))
        .route("/dev/orders/{id}/post", post(post_to_session))
        .route("/dev/orders/{id}/checkout", post(create_checkout))
        .route("/dev/orders/{id}/cancel", post(cancel_order))
        .route("/dev/inventory-qr", get(inventory_qr))
}

/// A JSON request body read within the router's body limit (413 beyond it) and parsed into
/// `T`; an empty body reads as `{}`. Failures are 400 `INVALID_REQUEST` in the envelope.
struct DevJson<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for DevJson<T> {
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state).await.map_err(HttpError)?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        // The strict reader: a repeated key is refused too.
        opencharge_protocol::strict_json::from_slice(text)
            .map(DevJson)
            .map_err(|e| HttpError::invalid(format!("invalid request body: {e}")))
    }
}

/// `POST /dev/orders` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateOrderBody {
    items: Vec<NewItem>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    memo: Option<String>,
}

/// `POST /dev/orders/{id}/post` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PostBody {
    session_qr: String,
}

/// `POST /dev/orders/{id}/checkout` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CheckoutBody {
    #[serde(default)]
    gateway_ocid: Option<u64>,
    success_url: String,
    cancel_url: String,
}

/// `POST /dev/orders/{id}/cancel` body: nothing (an empty object).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelBody {}

/// The order view: `{orderId, status, amount, currency, txid, issuer, paidAt}`.
fn view(record: &OrderRecord) -> Value {
    json!({
        "orderId": record.order_id,
        "status": record.status,
        "amount": record.amount,
        "currency": record.currency,
        "txid": record.txid,
        "issuer": record.issuer,
        "paidAt": record.paid_at,
    })
}

/// The order `id`, or 404 `ORDER_NOT_FOUND`.
fn existing(state: &AppState, id: &str) -> HttpResult<OrderRecord> {
    state.require(id).map_err(operation_error)
}

/// `POST /dev/orders`: builds, signs and stores an order from the given lines (prices as
/// given, not from the inventory) and returns it with its merchant-order QR.
async fn create_order(
    State(state): State<AppState>,
    DevJson(body): DevJson<CreateOrderBody>,
) -> HttpResult<Json<Value>> {
    let currency = match body.currency {
        Some(currency) => currency,
        None => state
            .config
            .currencies
            .first()
            .cloned()
            .ok_or_else(|| HttpError::invalid("currency is required"))?,
    };
    let new = NewOrder {
        items: body.items,
        currency,
        reference: body.reference,
        memo: body.memo,
    };
    let signed = state.create_order(&new).map_err(operation_error)?;
    let id = signed.order.id.clone();
    let qr = state.order_qr(&id).map_err(operation_error)?;
    let order = serde_json::to_value(&signed.order).map_err(HttpError::internal)?;
    Ok(Json(json!({
        "orderId": id,
        "order": order,
        "signature": signed.signature,
        "qr": qr,
    })))
}

/// `POST /dev/orders/{id}/post`: the merchant "scans" a wallet's session QR and posts the
/// signed order to that gateway session.
async fn post_to_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
    DevJson(body): DevJson<PostBody>,
) -> HttpResult<Json<Value>> {
    existing(&state, &id)?;
    let answer = state
        .post_to_wallet_session(&body.session_qr, &id)
        .await
        .map_err(operation_error)?;
    Ok(Json(
        json!({"orderId": id, "statusUrl": answer.urls.status}),
    ))
}

/// `POST /dev/orders/{id}/checkout`: opens a hosted checkout for the order at a payment
/// gateway.
async fn create_checkout(
    State(state): State<AppState>,
    Path(id): Path<String>,
    DevJson(body): DevJson<CheckoutBody>,
) -> HttpResult<Json<Value>> {
    existing(&state, &id)?;
    let gateway = match body.gateway_ocid {
        Some(ocid) => ocid,
        None => state.config.accepts.first().copied().ok_or_else(|| {
            HttpError::invalid("gatewayOcid is required: this merchant accepts no gateway")
                .with_details(json!({"field": "gatewayOcid"}))
        })?,
    };
    let answer = state
        .create_checkout(gateway, &id, &body.success_url, &body.cancel_url)
        .await
        .map_err(operation_error)?;
    Ok(Json(json!({
        "orderId": id,
        "checkoutUrl": answer.checkout_url,
        "expiresAt": answer.expires_at,
    })))
}

/// `POST /dev/orders/{id}/cancel`: cancels a pending or expired order (409 when paid).
async fn cancel_order(
    State(state): State<AppState>,
    Path(id): Path<String>,
    DevJson(CancelBody {}): DevJson<CancelBody>,
) -> HttpResult<Json<Value>> {
    let record = state.cancel_order(&id).map_err(operation_error)?;
    Ok(Json(view(&record)))
}

/// `GET /dev/orders/{id}`: the order's payment state.
async fn order_view(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> HttpResult<Json<Value>> {
    Ok(Json(view(&existing(&state, &id)?)))
}

/// `GET /dev/inventory-qr`: the permanent inventory QR text.
async fn inventory_qr(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"qr": state.inventory_qr}))
}
