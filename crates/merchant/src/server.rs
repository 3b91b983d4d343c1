//! The handlers of the merchant's own HTTP API (metadata, inventory, orders and their status),
//! mounted by [`crate::router`], which lists every route.

use axum::extract::{Path, State};
use axum::Json;
use opencharge_protocol::error_code::ErrorCode;
use opencharge_protocol::money::Currency;
use opencharge_protocol::types::{OrderStatus, OrderStatusResponse};
use serde_json::{json, Value};

use crate::auth::OcRequest;
use crate::config::{is_display_text, MAX_TEXT_CHARS};
use crate::error::{operation_error, HttpError, HttpResult, MerchantError};
use crate::orders::{NewItem, NewOrder, MAX_ORDER_ITEMS};
use crate::state::{public_status, AppState};
use crate::store::StoredOrder;

/// Largest quantity accepted per line in `POST /orders/create`.
pub const MAX_LINE_QUANTITY: u64 = 1_000_000;

/// `GET /metadata.json`.
pub(crate) async fn metadata(State(state): State<AppState>) -> Json<Value> {
    Json(state.metadata.clone())
}

/// `GET /inventory`.
pub(crate) async fn inventory(State(state): State<AppState>) -> Json<Value> {
    let items: Vec<Value> = state
        .config
        .inventory
        .iter()
        .map(|i| json!({"id": i.id, "name": i.name, "price": i.price}))
        .collect();
    Json(json!({
        "ocid": state.config.ocid,
        "currency": state.config.inventory_currency,
        "items": items,
    }))
}

fn optional_text(body: &Value, field: &str) -> HttpResult<Option<String>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if is_display_text(s) => Ok(Some(s.clone())),
        Some(_) => Err(HttpError::invalid(format!(
            "{field} must be a string of 1..={MAX_TEXT_CHARS} characters without control characters"
        ))
        .with_details(json!({"field": field}))),
    }
}

/// Prices the requested lines from the inventory: each `{id, quantity}` must name an
/// inventory item (400 `INVALID_ITEM`) with a positive integer quantity.
fn price_lines(state: &AppState, body: &Value) -> HttpResult<Vec<NewItem>> {
    let lines = match body.get("items") {
        Some(Value::Array(lines)) if !lines.is_empty() && lines.len() <= MAX_ORDER_ITEMS => lines,
        _ => {
            return Err(HttpError::invalid(format!(
                "items must be an array of 1..={MAX_ORDER_ITEMS} {{id, quantity}} lines"
            ))
            .with_details(json!({"field": "items"})))
        }
    };
    let mut items = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let field = format!("items[{i}]");
        let id = line.get("id").and_then(Value::as_str).ok_or_else(|| {
            HttpError::invalid(format!("{field}.id must be a string"))
                .with_details(json!({"field": format!("{field}.id")}))
        })?;
        let quantity = line
            .get("quantity")
            .and_then(Value::as_u64)
            .filter(|q| (1..=MAX_LINE_QUANTITY).contains(q))
            .ok_or_else(|| {
                HttpError::invalid(format!(
                    "{field}.quantity must be an integer in 1..={MAX_LINE_QUANTITY}"
                ))
                .with_details(json!({"field": format!("{field}.quantity")}))
            })?;
        if items.iter().any(|it: &NewItem| it.id == id) {
            return Err(HttpError::invalid(format!(
                "{field}.id {id:?} is listed twice; give one line per item"
            ))
            .with_details(json!({"field": format!("{field}.id")})));
        }
        let known = state
            .config
            .inventory
            .iter()
            .find(|it| it.id == id)
            .ok_or_else(|| {
                HttpError::new(
                    ErrorCode::InvalidItem,
                    format!(
                        "{field}: no item {:?} in the inventory",
                        id.chars().take(80).collect::<String>()
                    ),
                )
                .with_details(json!({"item": id, "index": i}))
            })?;
        items.push(NewItem {
            id: known.id.clone(),
            name: known.name.clone(),
            quantity,
            price: known.price.clone(),
        });
    }
    Ok(items)
}

/// `POST /orders/create` (authenticated): a payment app asks the merchant to price chosen
/// inventory items into a signed order. Prices, names and the total come from the inventory;
/// prices or amounts in the request are ignored.
pub(crate) async fn orders_create(
    State(state): State<AppState>,
    req: OcRequest,
) -> HttpResult<Json<Value>> {
    let body: Value = req.json()?;
    if !body.is_object() {
        return Err(HttpError::invalid("request body must be a JSON object"));
    }
    match body.get("ocid") {
        None | Some(Value::Null) => {}
        Some(v) if v.as_u64() == Some(state.config.ocid) => {}
        Some(v) => {
            return Err(HttpError::invalid(format!(
                "ocid {v} is not this merchant ({})",
                state.config.ocid
            ))
            .with_details(json!({"field": "ocid"})))
        }
    }
    let currency = state.config.inventory_currency.clone();
    match body.get("currency") {
        None | Some(Value::Null) => {}
        Some(Value::String(c)) if *c == currency => {}
        Some(Value::String(c)) if Currency::parse(c).is_ok() => {
            return Err(HttpError::invalid(format!(
                "the inventory is priced in {currency}, not {c}"
            ))
            .with_details(json!({"field": "currency", "supportedCurrencies": [currency]})))
        }
        Some(other) => {
            return Err(
                HttpError::invalid(format!("currency {other} is not an ISO 4217 code"))
                    .with_details(json!({"field": "currency"})),
            )
        }
    }
    let items = price_lines(&state, &body)?;
    let new = NewOrder {
        items,
        currency,
        reference: optional_text(&body, "reference")?,
        memo: optional_text(&body, "memo")?,
    };
    let signed = state.create_order(&new).map_err(operation_error)?;
    tracing::info!(order = %signed.order.id, caller = req.caller.ocid, "inventory order created");
    let value = serde_json::to_value(&signed).map_err(HttpError::internal)?;
    Ok(Json(value))
}

fn lookup(state: &AppState, id: &str) -> HttpResult<StoredOrder> {
    state
        .store
        .order(id)?
        .ok_or_else(|| operation_error(MerchantError::OrderNotFound(id.to_string())))
}

/// `GET /orders/{id}`: the signed order for a wallet that scanned the merchant QR.
pub(crate) async fn get_order(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> HttpResult<Json<Value>> {
    let stored = lookup(&state, &id)?;
    match public_status(&stored, state.now()) {
        OrderStatus::Pending => Ok(Json(state.signed_envelope(&stored)?)),
        OrderStatus::Expired => Err(HttpError::new(
            ErrorCode::OrderExpired,
            format!("order {id} expired at {}", stored.expires_at),
        )
        .with_status(410)
        .with_details(json!({"expiresAt": stored.expires_at}))),
        status @ (OrderStatus::Paid | OrderStatus::Cancelled) => Err(HttpError::new(
            ErrorCode::InvalidState,
            format!("order {id} cannot be paid: it is {}", status_word(status)),
        )
        .with_status(409)
        .with_details(json!({"status": status}))),
    }
}

fn status_word(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Pending => "pending",
        OrderStatus::Paid => "already paid",
        OrderStatus::Expired => "expired",
        OrderStatus::Cancelled => "cancelled",
    }
}

/// `GET /orders/{id}/status`.
pub(crate) async fn order_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> HttpResult<Json<OrderStatusResponse>> {
    let stored = lookup(&state, &id)?;
    Ok(Json(OrderStatusResponse {
        order_id: stored.id.clone(),
        status: public_status(&stored, state.now()),
        paid_at: stored.paid_at,
        txid: stored.txid.clone(),
    }))
}
