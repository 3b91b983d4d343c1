//! The Opencharge (partner-facing) endpoints of the Payment Gateway, relative to the base path:
//! `GET /metadata.json`, `GET /capabilities`, `POST /orders/create/{sessionId}` (seed 003),
//! `POST /checkout/create` (seed 000), `GET /checkout/{id}`, `GET /orders/{token}/status`,
//! `GET /orders/create/{sessionId}/status` (ours: the status by session, for a merchant that
//! lost the answer to its POST),
//! `POST /transfer/create` and `POST /transfer/webhook` (protocol notes §4.1, §5, §7).
//!
//! Every authenticated handler takes [`OcRequest`] as its LAST argument: it has already
//! verified the `X-OC-*` headers, the timestamp window, the request signature and the nonce,
//! and hands over the raw body bytes (signatures over orders and proofs are always checked on
//! the JSON value exactly as received, never on a re-serialised typed copy).

use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use opencharge_protocol::app;
use opencharge_protocol::error_code::ErrorCode;
use opencharge_protocol::keys::VerifyOptions;
use opencharge_protocol::money::{check_order_total, minor_units_of, Amount, Currency};
use opencharge_protocol::proof::{check_incoming_proof, ProofReceiver};
use opencharge_protocol::qr::CheckoutLink;
use opencharge_protocol::signing::{object_hash, sign_object, verify_order, OrderVerifyMode};
use opencharge_protocol::types::{
    capability, from_json, CapabilitiesResponse, CheckoutCreateRequest, CheckoutCreateResponse,
    CheckoutUrls, Order, OrderSessionRequest, OrderStatusResponse, Settlement as SettlementTerms,
    TransferCreateRequest, WebhookResponse,
};
use opencharge_protocol::ProtocolError;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::api::status::public_status;
use crate::auth::{DeferredNonce, OcRequest};
use crate::config::GatewayConfig;
use crate::error::{GatewayError, GatewayResult};
use crate::resolver::{build_own_metadata, Party, ResolveError};
use crate::settlement::{find_path_for_order, random_hex, webhook_url};
use crate::state::AppState;
use crate::store::{
    AttachedOrder, ClaimOutcome, Flow, NonceUse, Session, SessionStatus, Transfer, TransferOnce,
    TransferOutcome,
};

/// Longest `from.reference` accepted by `/transfer/create` (it is an idempotency key).
pub const MAX_TRANSFER_REFERENCE_LEN: usize = 256;

pub use opencharge_protocol::proof::PROOF_FUTURE_SKEW_SECS;

/// The Opencharge routes (merged with the others and nested under the base path by
/// [`crate::api::build_router`]).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/metadata.json", get(metadata))
        .route("/capabilities", get(capabilities))
        .route("/orders/create/{session_id}", post(create_order_session))
        .route("/orders/{token}/status", get(order_status))
        .route(
            "/orders/create/{session_id}/status",
            get(session_order_status),
        )
        .route("/checkout/create", post(checkout_create))
        .route("/checkout/{id}", get(checkout_view))
        .route("/transfer/create", post(transfer_create))
        .route("/transfer/webhook", post(transfer_webhook))
}

// ---------------------------------------------------------------------------------------------
// Shared helpers (also used by the app API for flows 2 and 3)
// ---------------------------------------------------------------------------------------------

/// The `payment_request` event payload pushed to the paying account's devices, as JSON text:
/// the prompt object of [`payment_request_prompt`].
pub fn payment_request_event(
    session_id: &str,
    flow: Flow,
    order: &AttachedOrder,
    raw_order: &Value,
    expires_at: i64,
) -> String {
    let prompt = payment_request_prompt(session_id, flow, order, raw_order.clone(), expires_at);
    // A struct of strings, integers and a JSON value always serialises.
    serde_json::to_string(&prompt).unwrap_or_default()
}

/// The prompt object ([`opencharge_protocol::app::Prompt`], `docs/app-api.md` §3.1):
/// `{"type":"payment_request","sessionId","flow","merchantOcid","merchantName"?,
/// "merchantIcon"?,"order":<raw order>,"signature","orderHash","expiresAt"}` — the
/// [`opencharge_protocol::app::PaymentRequestEvent`] shape extended with the flow, the
/// merchant's icon, its order signature (the wallet re-verifies it locally), the canonical
/// order hash the consent must bind, and the session's expiry.
pub fn payment_request_prompt(
    session_id: &str,
    flow: Flow,
    order: &AttachedOrder,
    raw_order: Value,
    expires_at: i64,
) -> app::Prompt {
    app::Prompt {
        event_type: app::PaymentRequestEventType::PaymentRequest,
        session_id: session_id.to_string(),
        flow,
        merchant_ocid: order.merchant_ocid,
        merchant_name: order.merchant_name.clone(),
        merchant_icon: order.merchant_icon.clone(),
        order: raw_order,
        signature: order.order_signature.clone(),
        order_hash: order.order_hash.clone(),
        expires_at,
        recipient: match flow {
            Flow::Transfer => crate::p2p::stored_recipient(order),
            _ => None,
        },
    }
}

/// Parses a JSON request body twice: as a raw [`Value`] (kept for signature checks) and as the
/// typed request `T`, with the strict reader (a key repeated in any object is refused).
/// Malformed input is 400 `INVALID_REQUEST`; the message names the field or the key.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> GatewayResult<(Value, T)> {
    let raw: Value = opencharge_protocol::strict_json::to_value(bytes)
        .map_err(|e| GatewayError::invalid(format!("request body is not valid JSON: {e}")))?;
    if !raw.is_object() {
        return Err(GatewayError::invalid("request body must be a JSON object"));
    }
    let typed = from_json::<T>(bytes).map_err(|e| match e {
        ProtocolError::Json(message) => {
            GatewayError::invalid(format!("invalid request body: {message}"))
        }
        other => GatewayError::invalid(format!("invalid request body: {other}")),
    })?;
    Ok((raw, typed))
}

/// Checks an order's money against our terms and returns the amount in minor units:
/// `currency` is a payable ISO 4217 code we settle, `amount` is a strict positive decimal with
/// no more digits than the currency allows, and the items (when present) add up exactly.
/// Every failure is 400 `INVALID_REQUEST` with `details.field`.
pub fn check_order_money(config: &GatewayConfig, order: &Order) -> GatewayResult<i64> {
    let invalid = |field: &str, e: &dyn std::fmt::Display| {
        GatewayError::invalid(format!("{field}: {e}")).with_details(json!({ "field": field }))
    };
    let currency = Currency::parse(&order.currency).map_err(|e| invalid("order.currency", &e))?;
    if !config.currencies.iter().any(|c| c == currency.code()) {
        return Err(GatewayError::invalid(format!(
            "currency {} is not settled by this gateway",
            currency.code()
        ))
        .with_details(json!({
            "field": "order.currency",
            "currency": currency.code(),
            "supportedCurrencies": config.currencies,
        })));
    }
    let amount = Amount::parse(&order.amount).map_err(|e| invalid("order.amount", &e))?;
    amount
        .check_currency(&currency)
        .map_err(|e| invalid("order.amount", &e))?;
    if let Some(items) = order.items.as_ref().filter(|items| !items.is_empty()) {
        check_order_total(
            &amount,
            &currency,
            items.iter().map(|i| (i.price.as_str(), i.quantity)),
        )
        .map_err(|e| invalid("order.items", &e))?;
    }
    let minor = minor_units_of(&amount, &currency).map_err(|e| invalid("order.amount", &e))?;
    i64::try_from(minor).map_err(|_| {
        invalid(
            "order.amount",
            &"amount is past the ledger's range (at most 9223372036854775807 minor units)",
        )
    })
}

/// Verifies a merchant order for payment and builds what a session stores, checking in the
/// seed's order: the signature with `signer`'s key and `order.ocid == signer.ocid` (400
/// `INVALID_SIGNATURE`), the expiry (400 `ORDER_EXPIRED`; a missing `expiresAt` when
/// `require_expiry`, or one beyond `max_order_ttl_secs`, is 400 `INVALID_REQUEST`), a
/// settlement path (400 `SETTLEMENT_NOT_SUPPORTED`), then the money ([`check_order_money`]).
/// `raw_order` is the order JSON exactly as received; `order` is its typed parse.
pub async fn verify_order_for_payment(
    state: &AppState,
    raw_order: &Value,
    order: &Order,
    signature: &str,
    signer: &Party,
    require_expiry: bool,
    urls_json: Option<String>,
) -> GatewayResult<AttachedOrder> {
    verify_order(
        raw_order,
        signature,
        signer.ocid,
        &signer.public_key,
        OrderVerifyMode::Strict,
        VerifyOptions::STRICT,
    )
    .map_err(|e| match e {
        ProtocolError::Binding(_) => GatewayError::new(
            ErrorCode::InvalidSignature,
            format!(
                "order.ocid {} is not the signing merchant's OCID {}",
                order.ocid, signer.ocid
            ),
        ),
        other => GatewayError::new(
            ErrorCode::InvalidSignature,
            format!(
                "order signature does not verify with the key of OCID {}: {other}",
                signer.ocid
            ),
        ),
    })?;

    let now = state.now();
    match order.expires_at {
        None if require_expiry => {
            return Err(
                GatewayError::invalid("order.expiresAt is required in this flow")
                    .with_details(json!({"field": "order.expiresAt"})),
            )
        }
        None => {}
        Some(expires_at) if expires_at <= now => {
            return Err(GatewayError::new(
                ErrorCode::OrderExpired,
                format!("order expired at {expires_at} (now {now})"),
            ))
        }
        Some(expires_at) if expires_at - now > state.config.max_order_ttl_secs => {
            return Err(GatewayError::invalid(format!(
                "order.expiresAt is more than {} s in the future",
                state.config.max_order_ttl_secs
            ))
            .with_details(json!({
                "field": "order.expiresAt",
                "maxOrderTtlSecs": state.config.max_order_ttl_secs,
            })))
        }
        Some(_) => {}
    }

    if find_path_for_order(state, order).await.is_none() {
        return Err(GatewayError::new(
            ErrorCode::SettlementNotSupported,
            "no settlement path: neither this gateway nor any of its partners is in order.accepts",
        )
        .with_details(json!({
            "accepts": order.accepts,
            "gateway": state.config.ocid,
        })));
    }

    let amount_minor = check_order_money(&state.config, order)?;
    let order_hash = object_hash(raw_order)
        .map_err(|e| GatewayError::invalid(format!("order cannot be canonicalised: {e}")))?;
    Ok(AttachedOrder {
        order_json: raw_order.to_string(),
        order_signature: signature.to_string(),
        order_hash,
        merchant_ocid: order.ocid,
        merchant_name: Some(signer.name.clone()),
        merchant_icon: signer.icon.clone(),
        order_id: order.id.clone(),
        amount: order.amount.clone(),
        amount_minor,
        currency: order.currency.clone(),
        urls_json,
    })
}

/// A JSON body sent verbatim (so stored results are returned byte for byte).
fn raw_json(status: axum::http::StatusCode, body: String) -> Response {
    (status, [(CONTENT_TYPE, "application/json")], body).into_response()
}

/// Our accepted proof issuers: our own OCID, then `config.accepts`.
fn own_accepts(config: &GatewayConfig) -> Vec<u64> {
    let mut accepts = vec![config.ocid];
    for ocid in &config.accepts {
        if !accepts.contains(ocid) {
            accepts.push(*ocid);
        }
    }
    accepts
}

// ---------------------------------------------------------------------------------------------
// GET /metadata.json, GET /capabilities
// ---------------------------------------------------------------------------------------------

/// `GET /metadata.json` (public): our config-nested, config-signed metadata.
async fn metadata(State(state): State<AppState>) -> Json<Value> {
    Json(build_own_metadata(
        &state.config,
        &state.key,
        &state.endpoint,
    ))
}

/// `GET /capabilities` (authenticated): `{ocid, name, capabilities, settlement}` (§4.1). The
/// same terms for every partner for now.
async fn capabilities(State(state): State<AppState>, req: OcRequest) -> Json<CapabilitiesResponse> {
    tracing::debug!(caller = req.caller.ocid, "capabilities requested");
    Json(CapabilitiesResponse {
        ocid: state.config.ocid,
        name: state.config.name.clone(),
        capabilities: capability::PAYMENT_GATEWAY_CAPABILITIES
            .iter()
            .map(|c| (*c).to_string())
            .collect(),
        settlement: SettlementTerms {
            currencies: state.config.currencies.clone(),
            accepts: own_accepts(&state.config),
        },
    })
}

// ---------------------------------------------------------------------------------------------
// POST /orders/create/{sessionId} (seed 003)
// ---------------------------------------------------------------------------------------------

/// `POST /orders/create/{sessionId}`: a merchant submits its signed order to a wallet QR
/// session. Checks in the seed's order (after request auth): `SESSION_NOT_FOUND` 404,
/// `SESSION_EXPIRED` 404, `SESSION_USED` 410, `INVALID_SIGNATURE` 400, `ORDER_EXPIRED` 400,
/// `SETTLEMENT_NOT_SUPPORTED` 400, money 400; then the atomic claim decides races.
///
/// The request's nonce is recorded in the claim's transaction (one commit per order). Every
/// other answer records it on its own first, and a nonce used before turns any answer into
/// 401 `NONCE_REUSED`, as if it had been checked up front.
async fn create_order_session(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
    DeferredNonce(req, nonce): DeferredNonce,
) -> GatewayResult<Json<Value>> {
    match claim_order(&state, &session_id, &req, &nonce).await {
        Ok(answer) => Ok(answer),
        Err(e) => {
            // A nonce used before (or a store failure) answers instead of `e`.
            nonce.record(&state).await.map_err(GatewayError)?;
            Err(e)
        }
    }
}

/// The body of [`create_order_session`]: checks, then the claim with the nonce.
async fn claim_order(
    state: &AppState,
    session_id: &str,
    req: &OcRequest,
    nonce: &NonceUse,
) -> GatewayResult<Json<Value>> {
    let (raw, body): (Value, OrderSessionRequest) = parse_body(&req.body)?;
    let raw_order = raw.get("order").cloned().unwrap_or(Value::Null);
    let urls_json = raw.get("urls").map(Value::to_string);

    // A cheap read so the session codes come in the seed's order; the claim below decides.
    let now = state.now();
    let session = match state.store.session(session_id).await? {
        Some(s) if s.flow == Flow::WalletQr => s,
        _ => return Err(session_not_found(session_id)),
    };
    if session.status == SessionStatus::Expired || session.expires_at <= now {
        return Err(session_expired(session_id));
    }
    if session.status != SessionStatus::Pending {
        return Err(session_used(session_id));
    }

    let caller = &req.caller;
    let attached = verify_order_for_payment(
        state,
        &raw_order,
        &body.order,
        &body.signature,
        caller,
        true,
        urls_json,
    )
    .await?;
    let event = payment_request_event(
        session_id,
        Flow::WalletQr,
        &attached,
        &raw_order,
        session.expires_at,
    );
    let claimed = match crate::domain::claim_session(
        state.store.as_ref(),
        session_id,
        &attached,
        caller.ocid,
        &event,
        Some(nonce),
        state.now(),
    )
    .await?
    {
        ClaimOutcome::Claimed(s) => s,
        ClaimOutcome::NotFound => return Err(session_not_found(session_id)),
        ClaimOutcome::Expired => return Err(session_expired(session_id)),
        ClaimOutcome::Used => return Err(session_used(session_id)),
        ClaimOutcome::NonceReused => return Err(GatewayError(nonce.reused())),
    };
    if let Some(account_id) = &claimed.account_id {
        state.hub.notify(account_id);
    }
    tracing::info!(
        session = %session_id,
        merchant = caller.ocid,
        order = %attached.order_id,
        "order attached to wallet session"
    );
    Ok(Json(json!({
        "urls": {"status": status_url(state, &claimed.status_token)}
    })))
}

fn status_url(state: &AppState, token: &str) -> String {
    format!("{}/orders/{token}/status", state.endpoint)
}

fn session_not_found(id: &str) -> GatewayError {
    GatewayError::new(
        ErrorCode::SessionNotFound,
        format!("session {} not found", preview(id)),
    )
}

fn session_expired(id: &str) -> GatewayError {
    GatewayError::new(
        ErrorCode::SessionExpired,
        format!("session {} has expired", preview(id)),
    )
}

fn session_used(id: &str) -> GatewayError {
    GatewayError::new(
        ErrorCode::SessionUsed,
        format!("session {} was already used", preview(id)),
    )
}

/// A short, escaped prefix of untrusted text for messages.
fn preview(s: &str) -> String {
    let short: String = s.chars().take(80).collect();
    format!("{short:?}")
}

// ---------------------------------------------------------------------------------------------
// POST /checkout/create (seed 000), GET /checkout/{id}
// ---------------------------------------------------------------------------------------------

/// `POST /checkout/create`: a Merchant Gateway (`X-OC-ID`) creates a hosted checkout session
/// for a merchant's signed order. The order is verified with `merchantOcid`'s key and must be
/// bound to it; the session lives `checkout_ttl_secs` (30 min) or until the order expires.
/// The checkout's redirect targets must be ones the checkout page would follow: absolute
/// `https` URLs (plain `http` only to a loopback host with `allow_loopback_http`, the dev
/// setup). Anything else (`javascript:`, `data:`, `http://` to a public host, garbage) is a
/// 400 `INVALID_REQUEST` naming the field, so the gateway never hands it back to a browser or
/// a wallet as `redirectUrl`.
fn check_redirect_urls(urls: &CheckoutUrls, allow_loopback_http: bool) -> GatewayResult<()> {
    for (field, url) in [
        ("urls.success", &urls.success),
        ("urls.cancel", &urls.cancel),
    ] {
        if let Some(url) = url {
            if crate::api::checkout_page::allowed_redirect(url, allow_loopback_http).is_none() {
                return Err(GatewayError::new(
                    ErrorCode::InvalidRequest,
                    format!(
                        "{field} must be an absolute https:// URL (http:// only to a loopback \
                         host in dev setups): {url:?}"
                    ),
                )
                .with_status(400));
            }
        }
    }
    Ok(())
}

async fn checkout_create(
    State(state): State<AppState>,
    req: OcRequest,
) -> GatewayResult<Json<CheckoutCreateResponse>> {
    let (raw, body): (Value, CheckoutCreateRequest) = parse_body(&req.body)?;
    check_redirect_urls(&body.urls, state.config.allow_loopback_http)?;
    let raw_order = raw.get("order").cloned().unwrap_or(Value::Null);
    let merchant = state
        .resolver
        .resolve(body.merchant_ocid)
        .await
        .map_err(|e| match e {
            ResolveError::Unknown(ocid) => GatewayError::new(
                ErrorCode::UnknownOcid,
                format!("unknown merchant OCID {ocid}"),
            )
            .with_status(400),
            other => GatewayError::from(other),
        })?;
    let urls_json = serde_json::to_string(&body.urls).ok();
    let attached = verify_order_for_payment(
        &state,
        &raw_order,
        &body.order,
        &body.signature,
        &merchant,
        false,
        urls_json,
    )
    .await?;

    let now = state.now();
    let mut expires_at = now.saturating_add(state.config.checkout_ttl_secs);
    if let Some(order_expiry) = body.order.expires_at {
        expires_at = expires_at.min(order_expiry);
    }
    let id = format!("cs_{}", random_hex(16));
    let checkout_url = CheckoutLink::new(&state.endpoint, &id)
        .map_err(|e| GatewayError::internal(format!("checkout link for {}: {e}", state.endpoint)))?
        .to_url();
    let session = Session::pending(
        id.clone(),
        Flow::Checkout,
        None,
        now,
        expires_at,
        random_hex(16),
    )
    .with_order(attached, req.caller.ocid);
    state.store.create_session(&session).await?;
    tracing::info!(
        session = %id,
        merchant = body.merchant_ocid,
        merchant_gateway = req.caller.ocid,
        "checkout session created"
    );
    Ok(Json(CheckoutCreateResponse {
        checkout_url,
        session_id: id,
        expires_at: Some(expires_at),
    }))
}

/// `GET /checkout/{id}` (public: the link the wallet or browser opens): `{session_id, status,
/// merchant: {ocid, name, icon}, order, signature, expires_at}`. Only checkout sessions are
/// visible here; anything else is 404 `SESSION_NOT_FOUND`. A browser (`Accept: text/html`,
/// no `X-OC-*` headers) gets the hosted checkout page instead (`api/checkout_page.rs`).
async fn checkout_view(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> GatewayResult<Response> {
    if crate::api::checkout_page::wants_html(&headers) {
        return Ok(crate::api::checkout_page::page(&state, &id).await);
    }
    let session = match state.store.session(&id).await? {
        Some(s) if s.flow == Flow::Checkout => s,
        _ => return Err(session_not_found(&id)),
    };
    let Some(order) = &session.order else {
        return Err(session_not_found(&id));
    };
    let raw_order: Value = serde_json::from_str(&order.order_json)
        .map_err(|e| GatewayError::internal(format!("stored order of {id}: {e}")))?;
    let status = public_status(&session, state.now());
    let view = Json(json!({
        "session_id": session.id,
        "status": status,
        "merchant": {
            "ocid": order.merchant_ocid,
            "name": order.merchant_name,
            "icon": order.merchant_icon,
        },
        "order": raw_order,
        "signature": order.order_signature,
        "expires_at": session.expires_at,
    }));
    Ok(([(axum::http::header::VARY, "Accept")], view).into_response())
}

// ---------------------------------------------------------------------------------------------
// GET /orders/{token}/status (§7 row 13)
// ---------------------------------------------------------------------------------------------

/// `GET /orders/{token}/status` (authenticated): `{orderId, status, paidAt?, txid?}` for the
/// OCID that submitted the order or the merchant; anyone else gets 404 `ORDER_NOT_FOUND`, as
/// for an unknown token, so the endpoint does not reveal which tokens exist.
async fn order_status(
    State(state): State<AppState>,
    Path(token): Path<String>,
    req: OcRequest,
) -> GatewayResult<Json<OrderStatusResponse>> {
    let not_found = || GatewayError::new(ErrorCode::OrderNotFound, "order not found");
    let session = state
        .store
        .session_by_status_token(&token)
        .await?
        .ok_or_else(not_found)?;
    status_for(&state, &session, req.caller.ocid).ok_or_else(not_found)
}

/// `GET /orders/create/{sessionId}/status` (authenticated): the status of the order a merchant
/// posted to a wallet QR session, by the session id from the QR. A merchant that could not
/// learn the outcome of its `POST /orders/create/{sessionId}` (network error, timeout, an
/// answer it cannot verify) asks here before it reports failure. Same answer and access rule
/// as the status URL; a session without an order, or with another submitter's, is 404
/// `ORDER_NOT_FOUND`.
async fn session_order_status(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
    req: OcRequest,
) -> GatewayResult<Json<OrderStatusResponse>> {
    let not_found = || GatewayError::new(ErrorCode::OrderNotFound, "order not found");
    let session = state
        .store
        .session(&session_id)
        .await?
        .filter(|s| s.flow == Flow::WalletQr)
        .ok_or_else(not_found)?;
    status_for(&state, &session, req.caller.ocid).ok_or_else(not_found)
}

/// The status answer for `caller`, if the session carries an order `caller` submitted or
/// signed (anyone else learns nothing).
fn status_for(
    state: &AppState,
    session: &Session,
    caller: u64,
) -> Option<Json<OrderStatusResponse>> {
    let order = session.order.as_ref()?;
    if session.submitted_by != Some(caller) && order.merchant_ocid != caller {
        return None;
    }
    Some(Json(OrderStatusResponse {
        order_id: order.order_id.clone(),
        status: public_status(session, state.now()),
        paid_at: session.paid_at,
        txid: session.txid.clone(),
    }))
}

// ---------------------------------------------------------------------------------------------
// POST /transfer/create (§4.1, §5.6 strategy 2: we are the partner holding the caller's reserve)
// ---------------------------------------------------------------------------------------------

/// `POST /transfer/create`: a partner holding a reserve with us (`reserve:<caller ocid>`)
/// pays a merchant (credited to `ocid:<to.ocid>`), one of our users (`to.ocid` = us,
/// `to.reference` = the account id), or a person holding one of our user OCIDs (`to.ocid` in
/// `user_ocids`: [`crate::p2p::credit_user`] also records their receipt; an OCID of the block
/// no account holds is 400 `ACCOUNT_NOT_FOUND`). One store transaction debits the reserve, credits the
/// payee, enqueues the proof webhook to the merchant and stores the result under the
/// idempotency key `transfer:<caller>:<from.reference>`; a retry returns the first
/// `{proof, signature}` unchanged. 402 `INSUFFICIENT_FUNDS` when the reserve is short.
async fn transfer_create(State(state): State<AppState>, req: OcRequest) -> GatewayResult<Response> {
    let (_raw, body): (Value, TransferCreateRequest) = parse_body(&req.body)?;
    let caller = req.caller.ocid;
    if body.from.ocid != caller {
        return Err(GatewayError::new(
            ErrorCode::Unauthorized,
            format!(
                "from.ocid {} is not the caller {caller}: a partner may only debit its own reserve",
                body.from.ocid
            ),
        ));
    }
    let from_reference = body
        .from
        .reference
        .as_deref()
        .filter(|r| !r.is_empty() && r.chars().count() <= MAX_TRANSFER_REFERENCE_LEN)
        .ok_or_else(|| {
            GatewayError::invalid(format!(
                "from.reference is required (1..={MAX_TRANSFER_REFERENCE_LEN} characters): it is the idempotency key"
            ))
            .with_details(json!({"field": "from.reference"}))
        })?;
    let currency = Currency::parse(&body.currency).map_err(|e| {
        GatewayError::invalid(format!("currency: {e}")).with_details(json!({"field": "currency"}))
    })?;
    if !state.config.currencies.iter().any(|c| c == currency.code()) {
        return Err(GatewayError::invalid(format!(
            "currency {} is not settled by this gateway",
            currency.code()
        ))
        .with_details(json!({
            "field": "currency",
            "supportedCurrencies": state.config.currencies,
        })));
    }
    let amount = Amount::parse(&body.amount).map_err(|e| {
        GatewayError::invalid(format!("amount: {e}")).with_details(json!({"field": "amount"}))
    })?;
    let minor = minor_units_of(&amount, &currency)
        .ok()
        .and_then(|m| i64::try_from(m).ok())
        .ok_or_else(|| {
            GatewayError::invalid(format!(
                "amount {} is not payable in {}",
                amount.as_str(),
                currency.code()
            ))
            .with_details(json!({"field": "amount"}))
        })?;

    let now = state.now();
    let reserve = format!("reserve:{caller}");
    if state.store.account(&reserve).await?.is_none() {
        return Err(GatewayError::new(
            ErrorCode::Unauthorized,
            format!("OCID {caller} holds no reserve account with this gateway"),
        ));
    }

    if state
        .config
        .user_ocids
        .is_some_and(|users| users.contains(body.to.ocid))
    {
        // A person paid from another gateway: one of our user OCIDs.
        let result = crate::p2p::credit_user(
            &state,
            &crate::p2p::IncomingTransfer {
                caller: &req.caller,
                from_reference,
                to: body.to.ocid,
                amount: &amount,
                minor,
                currency: &currency,
                memo: body.memo.as_deref(),
            },
        )
        .await?;
        return Ok(raw_json(axum::http::StatusCode::OK, result));
    }

    let own = state.config.ocid;
    let to_reference = body
        .to
        .reference
        .clone()
        .or_else(|| body.order.as_ref().map(|o| o.id.clone()));
    // Who gets credited, and who gets the proof webhook.
    let (payee_account, webhook_target) = if body.to.ocid == own {
        // A top-up of one of our users: `to.reference` names the account.
        let account_id = to_reference.clone().unwrap_or_default();
        match state.store.account(&account_id).await? {
            Some(account) if account.kind == "user" => (account.id, None),
            _ => {
                return Err(GatewayError::new(
                    ErrorCode::AccountNotFound,
                    "to.reference does not name a user account of this gateway",
                ))
            }
        }
    } else {
        let payee = state
            .resolver
            .resolve(body.to.ocid)
            .await
            .map_err(|e| match e {
                ResolveError::Unknown(ocid) => GatewayError::new(
                    ErrorCode::AccountNotFound,
                    format!("unknown recipient OCID {ocid}"),
                ),
                other => GatewayError::from(other),
            })?;
        let account = format!("ocid:{}", payee.ocid);
        state
            .store
            .ensure_account(&account, "merchant", &payee.name, now)
            .await?;
        let target = payee
            .endpoint
            .as_deref()
            .map(|e| (webhook_url(e), payee.ocid));
        if target.is_none() {
            tracing::warn!(
                payee = payee.ocid,
                "recipient publishes no endpoint; no proof webhook"
            );
        }
        (account, target)
    };

    let txid = format!("tx_{}", random_hex(16));
    let mut to = json!({"ocid": body.to.ocid});
    if let (Some(map), Some(reference)) = (to.as_object_mut(), &to_reference) {
        map.insert("reference".into(), Value::from(reference.as_str()));
    }
    let mut proof = json!({
        "txid": txid,
        "issuer": own,
        "from": {"ocid": caller, "reference": from_reference},
        "to": to,
        "amount": amount.as_str(),
        "currency": currency.code(),
        "timestamp": now,
    });
    if let (Some(map), Some(memo)) = (proof.as_object_mut(), &body.memo) {
        map.insert("memo".into(), Value::from(memo.as_str()));
    }
    let signature = sign_object(&state.key, &proof)
        .map_err(|e| GatewayError::internal(format!("signing proof: {e}")))?;
    let result_json = json!({"proof": proof, "signature": signature}).to_string();
    let once = TransferOnce {
        idempotency_key: format!("transfer:{caller}:{from_reference}"),
        reference: txid.clone(),
        transfers: vec![Transfer {
            from_account: reserve,
            to_account: payee_account,
            currency: currency.code().to_string(),
            minor,
        }],
        webhook: webhook_target.map(|(url, ocid)| (txid.clone(), ocid, url, result_json.clone())),
        result_json,
        now,
    };
    match state.store.apply_transfer_once(&once).await? {
        TransferOutcome::Applied(result) => {
            tracing::info!(%txid, partner = caller, "reserve transfer applied");
            Ok(raw_json(axum::http::StatusCode::OK, result))
        }
        TransferOutcome::Replayed(result) => {
            tracing::info!(partner = caller, reference = %from_reference, "reserve transfer replayed");
            Ok(raw_json(axum::http::StatusCode::OK, result))
        }
        TransferOutcome::InsufficientFunds => Err(GatewayError::new(
            ErrorCode::InsufficientFunds,
            format!(
                "the reserve of OCID {caller} cannot cover {} {}",
                amount.as_str(),
                currency.code()
            ),
        )),
        TransferOutcome::BalanceOutOfRange(account) => {
            tracing::warn!(partner = caller, %account, "reserve transfer refused: balance would pass the ledger's range");
            Err(GatewayError(crate::domain::ledger::out_of_range_error()))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// POST /transfer/webhook (§5.5, §7 rows 15–16)
// ---------------------------------------------------------------------------------------------

/// `POST /transfer/webhook`: a proof addressed to us, checked by the protocol's shared proof
/// checks ([`check_incoming_proof`]): well-formed (400 `INVALID_PROOF`), the issuer accepted
/// (400 `ISSUER_NOT_ACCEPTED`), the sender is the issuer (400 `INVALID_PROOF`), the signature
/// verifies with its key (400 `PROOF_SIGNATURE_INVALID`), `to.ocid` is us and the timestamp
/// not in the future (400 `INVALID_PROOF`), and the amount valid in its currency. Each
/// `(issuer, txid)` is processed once (a repeat is 200 "already processed"). When
/// `to.reference` names one of our user accounts it is credited (a top-up).
async fn transfer_webhook(
    State(state): State<AppState>,
    req: OcRequest,
) -> GatewayResult<Json<WebhookResponse>> {
    let now = state.now();
    let accepted = own_accepts(&state.config);
    let incoming = check_incoming_proof(
        &req.body,
        &ProofReceiver {
            own_ocid: state.config.ocid,
            own_name: "this gateway",
            accepted_issuers: &accepted,
            sender: req.caller.ocid,
            sender_key: &req.caller.public_key,
            now,
        },
    )?;
    let (currency, minor) = incoming.amount_minor()?;
    let proof = &incoming.proof;

    let envelope = incoming.envelope_json();
    if !state
        .store
        .record_incoming_proof(proof.issuer, &proof.txid, &envelope, now)
        .await?
    {
        return Ok(Json(WebhookResponse {
            message: Some("already processed".into()),
            ..WebhookResponse::accepted(proof.txid.clone())
        }));
    }

    // NOTE: the proof is recorded before the credit (two store calls). A crash in between
    // leaves the proof recorded but uncredited, never credited twice; the recorded proof is
    // the evidence an operator reconciles from.
    let target = match proof.to.reference.as_deref() {
        Some(reference) => state.store.account(reference).await?,
        None => None,
    };
    let message = match target {
        Some(account) if account.kind == "user" => {
            let source = format!("settlement:{}", proof.issuer);
            state
                .store
                .ensure_account(
                    &source,
                    "funding",
                    &format!("Settlement from OCID {}", proof.issuer),
                    now,
                )
                .await?;
            let transfers = [Transfer {
                from_account: source,
                to_account: account.id.clone(),
                currency: currency.code().to_string(),
                minor,
            }];
            let reference = format!("proof:{}:{}", proof.issuer, proof.txid);
            if state
                .store
                .apply_transfers(&reference, &transfers, now)
                .await?
                == crate::domain::ledger::LedgerOutcome::Applied
            {
                tracing::info!(txid = %proof.txid, issuer = proof.issuer, account = %account.id, "incoming proof credited");
                format!("credited to account {}", account.id)
            } else {
                tracing::error!(txid = %proof.txid, issuer = proof.issuer, "incoming proof could not be credited");
                "recorded; credit failed, queued for reconciliation".to_string()
            }
        }
        _ => {
            tracing::info!(txid = %proof.txid, issuer = proof.issuer, "incoming proof recorded (no account of ours named)");
            "recorded".to_string()
        }
    };
    Ok(Json(WebhookResponse {
        message: Some(message),
        ..WebhookResponse::accepted(proof.txid.clone())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencharge_protocol::types::PaymentRequestEvent;

    fn attached() -> AttachedOrder {
        AttachedOrder {
            order_json: "{}".into(),
            order_signature: "ab".repeat(65),
            order_hash: "cd".repeat(32),
            merchant_ocid: 500,
            merchant_name: Some("Cafe".into()),
            merchant_icon: None,
            order_id: "ord_1".into(),
            amount: "25.00".into(),
            amount_minor: 2500,
            currency: "USD".into(),
            urls_json: None,
        }
    }

    #[test]
    fn payment_request_event_is_a_payment_request_event_plus_extras() {
        let raw = json!({"id":"ord_1","ocid":500,"amount":"25.00","currency":"USD","createdAt":1,"expiresAt":2});
        let text = payment_request_event("sess", Flow::WalletQr, &attached(), &raw, 99);
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["type"], "payment_request");
        assert_eq!(value["flow"], "wallet_qr");
        assert_eq!(value["order"], raw);
        assert_eq!(value["expiresAt"], 99);
        assert_eq!(value["orderHash"], "cd".repeat(32));
        assert!(value.get("merchantIcon").is_none());
        let typed: PaymentRequestEvent = serde_json::from_str(&text).unwrap();
        assert_eq!(typed.session_id, "sess");
        assert_eq!(typed.merchant_ocid, 500);
        assert_eq!(typed.merchant_name.as_deref(), Some("Cafe"));
    }

    #[test]
    fn money_checks() {
        let config = GatewayConfig::default();
        let order = |amount: &str, currency: &str| -> Order {
            serde_json::from_value(json!({
                "id": "o", "ocid": 1, "amount": amount, "currency": currency, "createdAt": 1
            }))
            .unwrap()
        };
        assert_eq!(
            check_order_money(&config, &order("25.00", "USD")).unwrap(),
            2500
        );
        assert_eq!(
            check_order_money(&config, &order("15000", "UGX")).unwrap(),
            15000
        );
        for (amount, currency) in [
            ("1.234", "USD"),
            ("-1", "USD"),
            ("1e3", "USD"),
            ("5", "JPY"),
            ("5", "usd"),
        ] {
            let err = check_order_money(&config, &order(amount, currency)).unwrap_err();
            assert_eq!(err.0.code, ErrorCode::InvalidRequest, "{amount} {currency}");
            assert_eq!(err.0.status, 400);
        }
    }
}
