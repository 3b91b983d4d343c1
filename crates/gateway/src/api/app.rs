//! The wallet app API (`/app/...`, documented in `docs/app-api.md`): device registration and
//! key rotation, wallet QR sessions, prompts, device-signed confirm and decline, scanning
//! merchant QR codes and checkout links, history, receipts and balances. Every body is a
//! type of [`opencharge_protocol::app`], the contract the wallet core parses with.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use opencharge_peer::client::{same_endpoint, url_under_endpoint};
use opencharge_protocol::app::{self, KnownFields};
use opencharge_protocol::error_code::{ApiError, ErrorCode};
use opencharge_protocol::keys::{sha256_hex, PublicKey, VerifyOptions};
use opencharge_protocol::money::{format_amount, Currency};
use opencharge_protocol::qr::{self, QrPayload, WalletSessionQr};
use opencharge_protocol::signing::verify_object;
use opencharge_protocol::types::Order;
use opencharge_protocol::ProtocolError;
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::api::wire::to_json_text;
use crate::auth::DeviceRequest;
use crate::error::{GatewayError, GatewayResult};
use crate::resolver::Party;
use crate::settlement::random_hex;
use crate::state::AppState;
use crate::store::{
    Balance, ClaimOutcome, Flow, RegisterOutcome, Session, SessionStatus, SettleOutcome,
};

/// A typed error `details` object as the JSON value [`GatewayError::with_details`] takes.
fn details<T: Serialize>(value: T) -> Value {
    serde_json::to_value(value).unwrap_or_default()
}

/// Allowed distance between a signed timestamp (registration, consent) and the server clock.
pub const SIGNED_TIMESTAMP_WINDOW_SECS: i64 = 300;

/// Domain-separation prefix of the device registration message.
pub const REGISTRATION_PREFIX: &str = "opencharge-device-registration";

/// Domain-separation prefix of the key rotation message.
pub const ROTATION_PREFIX: &str = "opencharge-device-rotation";

/// Default and largest page size of `GET /app/history`.
const HISTORY_DEFAULT_LIMIT: u32 = 50;
const HISTORY_MAX_LIMIT: u32 = 200;

/// Largest `skip` a history cursor may carry (receipts created within one second).
const HISTORY_MAX_SKIP: u32 = 10_000;

/// Longest decline reason accepted, characters.
const MAX_REASON_CHARS: usize = 500;

/// Most line items accepted in `POST /app/inventory/order`, and inventory items returned.
const MAX_ITEMS: usize = 500;

/// The wallet app routes (relative to the base path).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/app/devices", post(register_device))
        .route("/app/devices/rotate", post(rotate_device))
        .route("/app/sessions", post(create_session))
        .route("/app/sessions/{id}/confirm", post(confirm))
        .route("/app/sessions/{id}/decline", post(decline))
        .route("/app/prompts", get(prompts))
        .route("/app/prompts/{id}", get(one_prompt))
        .route("/app/scan", post(scan))
        .route("/app/inventory/order", post(inventory_order))
        .route("/app/checkout/{id}", post(open_checkout))
        .route("/app/history", get(history))
        .route("/app/payments/{id}", get(payment))
        .route("/app/balance", get(balance))
}

// ---------------------------------------------------------------------------------------------
// Shared helpers (also used by `api::dev` and `api::events`)

/// Parses a JSON request body with the strict reader (a repeated key is refused); an empty
/// body counts as `{}`. Errors are 400 `INVALID_REQUEST` naming the field or the key.
pub(crate) fn parse_json_body<T: DeserializeOwned>(body: &[u8]) -> GatewayResult<T> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    Ok(opencharge_peer::auth::parse_json(body)?)
}

/// Parses an app-API request body (empty = `{}`) that must be a JSON object into `T`, and
/// also returns it as a raw [`Value`] (signatures are checked over what was received).
fn parse_object<T: DeserializeOwned>(body: &[u8]) -> GatewayResult<(Value, T)> {
    let raw: Value = parse_json_body(body)?;
    if !raw.is_object() {
        return Err(GatewayError::invalid(
            "invalid JSON body: the body must be a JSON object",
        ));
    }
    // Parsed from the bytes, not from `raw`, so a repeated key is refused as before.
    let typed = parse_json_body(body)?;
    Ok((raw, typed))
}

/// [`parse_object`] for a body that refuses unknown fields (doc §1): 400 `INVALID_REQUEST`
/// naming the first unknown field.
pub(crate) fn parse_request<T: DeserializeOwned + KnownFields>(
    body: &[u8],
) -> GatewayResult<(Value, T)> {
    let (raw, typed) = parse_object::<T>(body)?;
    if let Some(field) = T::unknown_field(&raw) {
        return Err(GatewayError::invalid(format!(
            "invalid JSON body: unknown field `{field}`"
        )));
    }
    Ok((raw, typed))
}

/// `[{currency, amount}]` for every configured currency plus any other held, sorted by code,
/// with amounts as decimal strings in the currency's minor digits.
pub(crate) fn balances_json(currencies: &[String], balances: &[Balance]) -> Vec<app::BalanceEntry> {
    let mut codes: Vec<String> = currencies.to_vec();
    for b in balances {
        if !codes.contains(&b.currency) {
            codes.push(b.currency.clone());
        }
    }
    codes.sort();
    codes.dedup();
    codes
        .iter()
        .filter_map(|code| {
            let currency = Currency::parse(code).ok()?;
            let minor = balances
                .iter()
                .filter(|b| b.currency == *code)
                .map(|b| i128::from(b.minor))
                .sum::<i128>();
            Some(app::BalanceEntry {
                currency: code.clone(),
                amount: minor_to_decimal_string(minor, &currency),
            })
        })
        .collect()
}

/// Formats integer minor units as a decimal string with the currency's digits (`1250` USD →
/// `"12.50"`).
fn minor_to_decimal_string(minor: i128, currency: &Currency) -> String {
    match Decimal::try_from_i128_with_scale(minor, currency.minor_units()) {
        Ok(value) => format_amount(value, currency),
        Err(_) => "0".to_string(),
    }
}

/// Checks a signed timestamp against the clock (±[`SIGNED_TIMESTAMP_WINDOW_SECS`]).
fn within_window(timestamp: i64, now: i64) -> bool {
    timestamp
        .checked_sub(now)
        .is_some_and(|d| d.abs() <= SIGNED_TIMESTAMP_WINDOW_SECS)
}

/// `true` if `s` is 1..=128 characters of `[A-Za-z0-9_-]`.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `true` if `s` is exactly 128 lowercase hex characters.
fn is_public_key_hex(s: &str) -> bool {
    s.len() == 128 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The device id of a 128-hex public key: `dev_` + the first 32 hex of SHA-256 of the hex text.
pub fn device_id_for(public_key_hex: &str) -> String {
    let digest = sha256_hex(public_key_hex.as_bytes());
    format!("dev_{}", digest.get(..32).unwrap_or(&digest))
}

/// The message a device signs to prove possession of its key at registration.
pub fn registration_message(public_key_hex: &str, enrollment_code: &str, timestamp: i64) -> String {
    format!("{REGISTRATION_PREFIX}\n{public_key_hex}\n{enrollment_code}\n{timestamp}")
}

/// The message the NEW key signs when a device rotates its key.
pub fn rotation_message(old_device_id: &str, new_public_key_hex: &str) -> String {
    format!("{ROTATION_PREFIX}\n{old_device_id}\n{new_public_key_hex}")
}

/// Loads a session and checks it belongs to `account_id` (404 / 403 otherwise).
async fn owned_session(state: &AppState, id: &str, account_id: &str) -> GatewayResult<Session> {
    let session = state.store.session(id).await?.ok_or_else(|| {
        GatewayError::new(ErrorCode::SessionNotFound, format!("no session {id:?}"))
    })?;
    match session.account_id.as_deref() {
        Some(owner) if owner == account_id => Ok(session),
        None if session.flow == Flow::Checkout => Err(GatewayError::new(
            ErrorCode::Forbidden,
            "this checkout session is not opened by your account; open it with POST /app/checkout/{id} first",
        )),
        _ => Err(GatewayError::new(
            ErrorCode::Forbidden,
            "this session belongs to another account",
        )),
    }
}

/// The status a client should see: an unpaid session past its expiry is `expired` even before
/// the background worker has marked it.
fn effective_status(session: &Session, now: i64) -> SessionStatus {
    match session.status {
        SessionStatus::Pending | SessionStatus::OrderReceived if session.expires_at <= now => {
            SessionStatus::Expired
        }
        other => other,
    }
}

/// Reads a redirect URL out of a stored `urls` object: `success`/`completed` after payment,
/// `cancel`/`cancelled` after a decline or expiry. Only checkout sessions get redirects.
fn redirect_url(session: &Session, paid: bool) -> Option<String> {
    if session.flow != Flow::Checkout {
        return None;
    }
    let urls: Value = serde_json::from_str(session.order.as_ref()?.urls_json.as_deref()?).ok()?;
    let keys: [&str; 2] = if paid {
        ["success", "completed"]
    } else {
        ["cancel", "cancelled"]
    };
    keys.iter()
        .find_map(|k| urls.get(*k).and_then(Value::as_str))
        .map(str::to_string)
}

/// The prompt object (the `payment_request` event payload) of a session with an order.
fn prompt_of(session: &Session) -> GatewayResult<app::Prompt> {
    let order = session
        .order
        .as_ref()
        .ok_or_else(|| GatewayError::internal(format!("session {} has no order", session.id)))?;
    let raw: Value = serde_json::from_str(&order.order_json).map_err(GatewayError::internal)?;
    Ok(crate::api::opencharge::payment_request_prompt(
        &session.id,
        session.flow,
        order,
        raw,
        session.expires_at,
    ))
}

/// A receipt: what the app shows in history and payment details.
fn receipt_of(session: &Session, now: i64) -> app::Receipt {
    let order = session.order.as_ref();
    app::Receipt {
        session_id: session.id.clone(),
        flow: session.flow,
        status: effective_status(session, now),
        merchant_ocid: order.map(|o| o.merchant_ocid),
        merchant_name: order.map(|o| o.merchant_name.clone()),
        order_id: order.map(|o| o.order_id.clone()),
        amount: order.map(|o| o.amount.clone()),
        currency: order.map(|o| o.currency.clone()),
        order: order.and_then(|o| serde_json::from_str(&o.order_json).ok()),
        created_at: session.created_at,
        expires_at: session.expires_at,
        paid_at: session.paid_at,
        txid: session.txid.clone(),
        proof: session
            .proof_json
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok()),
        decline_reason: session.decline_reason.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Devices

/// `POST /app/devices` (not device-signed): binds a device key to the enrollment code's account.
async fn register_device(
    State(state): State<AppState>,
    body: Bytes,
) -> GatewayResult<Json<app::DeviceResponse>> {
    let (_, body): (_, app::RegisterDeviceRequest) = parse_request(&body)?;
    if !is_public_key_hex(&body.public_key) {
        return Err(GatewayError::invalid(
            "publicKey must be 128 lowercase hex characters (X||Y of the secp256k1 point, no 04 prefix)",
        ));
    }
    if !is_token(&body.enrollment_code) {
        return Err(GatewayError::invalid(
            "enrollmentCode must be 1..=128 characters of [A-Za-z0-9_-]",
        ));
    }
    let key = PublicKey::from_hex(&body.public_key)
        .map_err(|e| GatewayError::invalid(format!("publicKey: {e}")))?;
    let now = state.now();
    if !within_window(body.timestamp, now) {
        return Err(GatewayError::auth(
            ErrorCode::TimestampExpired,
            format!(
                "timestamp {} is more than 300 s from server time {now}",
                body.timestamp
            ),
        ));
    }
    let message = registration_message(&body.public_key, &body.enrollment_code, body.timestamp);
    key.verify_message(message.as_bytes(), &body.signature, VerifyOptions::STRICT)
        .map_err(|e| {
            GatewayError::auth(
                ErrorCode::InvalidSignature,
                format!("registration signature does not prove possession of publicKey: {e}"),
            )
        })?;
    let device_id = device_id_for(&body.public_key);
    let code_hash = sha256_hex(body.enrollment_code.as_bytes());
    match state
        .store
        .register_device(&code_hash, &device_id, &body.public_key, now)
        .await?
    {
        RegisterOutcome::Registered(d) | RegisterOutcome::AlreadyRegistered(d) => {
            Ok(Json(app::DeviceResponse {
                device_id: d.device_id,
                account_id: d.account_id,
            }))
        }
        RegisterOutcome::InvalidEnrollment => Err(GatewayError::new(
            ErrorCode::Other("ENROLLMENT_INVALID".into()),
            "enrollment code is unknown, expired, or already used by another key",
        )
        .with_status(401)),
    }
}

/// `POST /app/devices/rotate` (signed by the OLD key): replaces the device key.
async fn rotate_device(
    State(state): State<AppState>,
    req: DeviceRequest,
) -> GatewayResult<Json<app::DeviceResponse>> {
    let (_, body): (_, app::RotateDeviceRequest) = parse_request(&req.body)?;
    if !is_public_key_hex(&body.new_public_key) {
        return Err(GatewayError::invalid(
            "newPublicKey must be 128 lowercase hex characters",
        ));
    }
    if body.new_public_key == req.device.public_key {
        return Err(GatewayError::invalid("newPublicKey is the current key"));
    }
    let key = PublicKey::from_hex(&body.new_public_key)
        .map_err(|e| GatewayError::invalid(format!("newPublicKey: {e}")))?;
    let message = rotation_message(&req.device.device_id, &body.new_public_key);
    key.verify_message(
        message.as_bytes(),
        &body.new_key_signature,
        VerifyOptions::STRICT,
    )
    .map_err(|e| {
        GatewayError::new(
            ErrorCode::InvalidSignature,
            format!("newKeySignature does not verify with newPublicKey: {e}"),
        )
    })?;
    let new_id = device_id_for(&body.new_public_key);
    let rotated = state
        .store
        .rotate_device(
            &req.device.device_id,
            &new_id,
            &body.new_public_key,
            state.now(),
        )
        .await?;
    if !rotated {
        return Err(GatewayError::new(
            ErrorCode::InvalidState,
            "rotation refused: the new key is already registered, or this device is no longer active",
        )
        .with_status(409));
    }
    Ok(Json(app::DeviceResponse {
        device_id: new_id,
        account_id: req.device.account_id,
    }))
}

// ---------------------------------------------------------------------------------------------
// Sessions and prompts

/// `POST /app/sessions`: a fresh wallet QR session for the merchant to scan.
async fn create_session(
    State(state): State<AppState>,
    req: DeviceRequest,
) -> GatewayResult<Response> {
    let (_, app::CreateSessionRequest {}) = parse_object(&req.body)?;
    let now = state.now();
    if let Some(refusal) =
        crate::limits::open_session_refusal(&state, &req.device.account_id, now).await?
    {
        return Ok(refusal);
    }
    let expires_at = now.saturating_add(state.config.session_ttl_secs);
    let id = random_hex(16);
    let qr = WalletSessionQr::new(state.config.ocid, &state.endpoint, &id, expires_at)
        .map_err(|e| GatewayError::internal(format!("cannot build the session QR: {e}")))?;
    let session = Session::pending(
        id.clone(),
        Flow::WalletQr,
        Some(req.device.account_id.clone()),
        now,
        expires_at,
        random_hex(16),
    );
    state.store.create_session(&session).await?;
    Ok(Json(app::CreateSessionResponse {
        session_id: id,
        qr_payload: app::WalletSessionQrPayload {
            ocid: qr.ocid(),
            order: qr.order_url().to_string(),
            expires_at: qr.expires_at(),
        },
        qr_text: qr.to_json_string(),
        expires_at,
    })
    .into_response())
}

/// `GET /app/prompts`: orders waiting for this account's decision, oldest first.
async fn prompts(
    State(state): State<AppState>,
    req: DeviceRequest,
) -> GatewayResult<Json<app::PromptsResponse>> {
    let sessions = state
        .store
        .pending_prompts(&req.device.account_id, state.now())
        .await?;
    let prompts = sessions
        .iter()
        .map(prompt_of)
        .collect::<GatewayResult<Vec<app::Prompt>>>()?;
    Ok(Json(app::PromptsResponse { prompts }))
}

/// `GET /app/prompts/{id}`: one pending prompt of this account (what a push wake-up names).
/// "No such id", "another account's" and "no longer pending" are the same 404
/// `SESSION_NOT_FOUND`, so nothing about other sessions leaks.
async fn one_prompt(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: DeviceRequest,
) -> GatewayResult<Json<app::Prompt>> {
    let not_found = || GatewayError::new(ErrorCode::SessionNotFound, format!("no prompt {id:?}"));
    let session = state.store.session(&id).await?.ok_or_else(not_found)?;
    let pending =
        session.status == SessionStatus::OrderReceived && session.expires_at > state.now();
    if session.account_id.as_deref() != Some(req.device.account_id.as_str())
        || session.order.is_none()
        || !pending
    {
        return Err(not_found());
    }
    Ok(Json(prompt_of(&session)?))
}

/// A consent field that does not match the stored session: 400 `INVALID_REQUEST`.
fn mismatch(field: &str, expected: impl Into<Value>, got: impl Into<Value>) -> GatewayError {
    let (expected, got) = (expected.into(), got.into());
    GatewayError::invalid(format!(
        "consent.{field} does not match the session (expected {expected}, got {got})"
    ))
    .with_details(details(app::ConsentMismatchDetails {
        field: field.to_string(),
        expected,
        got,
    }))
}

/// What the settlement stores as the evidence of the user's consent.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConsentEvidence<'a> {
    consent: &'a Value,
    device_id: &'a str,
    signature: &'a str,
}

/// `POST /app/sessions/{id}/confirm`: verifies the device-signed consent and pays.
async fn confirm(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: DeviceRequest,
) -> GatewayResult<Json<app::ConfirmResponse>> {
    let (raw, body): (Value, app::ConfirmRequest) = parse_request(&req.body)?;
    // The signature covers the consent exactly as received.
    let raw_consent = raw.get("consent").cloned().unwrap_or_default();
    if !is_token(&body.idempotency_key) {
        return Err(GatewayError::invalid(
            "idempotencyKey must be 1..=128 characters of [A-Za-z0-9_-]",
        ));
    }
    let consent = &body.consent;
    if consent.session_id != id {
        return Err(mismatch(
            "sessionId",
            id.as_str(),
            consent.session_id.as_str(),
        ));
    }
    if consent.device_id != req.device.device_id {
        return Err(mismatch(
            "deviceId",
            req.device.device_id.as_str(),
            consent.device_id.as_str(),
        ));
    }
    let key = PublicKey::from_hex(&req.device.public_key).map_err(GatewayError::internal)?;
    verify_object(&key, &raw_consent, &body.signature, VerifyOptions::STRICT).map_err(|e| {
        GatewayError::new(
            ErrorCode::InvalidSignature,
            format!("consent signature does not verify with the device key: {e}"),
        )
    })?;
    let now = state.now();
    if !within_window(consent.timestamp, now) {
        return Err(GatewayError::invalid(format!(
            "consent.timestamp {} is more than 300 s from server time {now}; sign a fresh consent",
            consent.timestamp
        ))
        .with_details(details(app::ConsentTimestampDetails {
            field: "timestamp".into(),
            server_time: now,
        })));
    }
    let account_id = req.device.account_id.clone();
    let session = owned_session(&state, &id, &account_id).await?;
    let Some(order) = session.order.as_ref() else {
        return Err(GatewayError::new(
            ErrorCode::InvalidState,
            "no order has been attached to this session yet",
        )
        .with_status(409)
        .with_details(details(app::StateDetails {
            status: app::SessionStatus::Pending,
            redirect_url: None,
        })));
    };
    if consent.order_hash != order.order_hash {
        return Err(mismatch(
            "orderHash",
            order.order_hash.as_str(),
            consent.order_hash.as_str(),
        ));
    }
    if consent.amount != order.amount {
        return Err(mismatch(
            "amount",
            order.amount.as_str(),
            consent.amount.as_str(),
        ));
    }
    if consent.currency != order.currency {
        return Err(mismatch(
            "currency",
            order.currency.as_str(),
            consent.currency.as_str(),
        ));
    }
    if consent.merchant_ocid != order.merchant_ocid {
        return Err(mismatch(
            "merchantOcid",
            order.merchant_ocid,
            consent.merchant_ocid,
        ));
    }
    let evidence = to_json_text(&ConsentEvidence {
        consent: &raw_consent,
        device_id: &req.device.device_id,
        signature: &body.signature,
    })?;
    let outcome = crate::settlement::confirm_payment(
        &state,
        &session,
        &account_id,
        &body.idempotency_key,
        &evidence,
    )
    .await?;
    match outcome {
        SettleOutcome::Paid(s) | SettleOutcome::AlreadyPaid(s) => Ok(Json(paid_response(&s)?)),
        SettleOutcome::InsufficientFunds => Err(GatewayError::new(
            ErrorCode::InsufficientFunds,
            format!(
                "insufficient {} balance for {} {}",
                order.currency, order.amount, order.currency
            ),
        )),
        SettleOutcome::BalanceOutOfRange(account) => {
            tracing::warn!(session = %id, %account, "payment refused: balance would pass the ledger's range");
            Err(GatewayError(crate::domain::ledger::out_of_range_error()))
        }
        SettleOutcome::NotFound => Err(GatewayError::new(
            ErrorCode::SessionNotFound,
            format!("no session {id:?}"),
        )),
        SettleOutcome::Forbidden => Err(GatewayError::new(
            ErrorCode::Forbidden,
            "this session belongs to another account",
        )),
        SettleOutcome::InvalidState(status) | SettleOutcome::Declined(Session { status, .. }) => {
            Err(invalid_state(status, &session))
        }
    }
}

/// 409 `INVALID_STATE` for a session that cannot be paid (or declined) any more.
fn invalid_state(status: SessionStatus, session: &Session) -> GatewayError {
    let message = match status {
        SessionStatus::Declined => "the payment was declined; it can no longer be confirmed",
        SessionStatus::Expired => "the session expired before it was confirmed",
        SessionStatus::Pending => "no order has been attached to this session yet",
        SessionStatus::Paid => "the session is already paid",
        SessionStatus::OrderReceived => "the session is not in a state that allows this",
    };
    GatewayError::new(ErrorCode::InvalidState, message)
        .with_status(409)
        .with_details(details(app::StateDetails {
            status,
            redirect_url: redirect_url(session, false),
        }))
}

/// `{status:"paid", sessionId, txid, paidAt, proof, redirectUrl?}` of a paid session.
fn paid_response(session: &Session) -> GatewayResult<app::ConfirmResponse> {
    let incomplete =
        || GatewayError::internal(format!("paid session {} lacks its payment", session.id));
    let proof = session
        .proof_json
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok())
        .ok_or_else(incomplete)?;
    Ok(app::ConfirmResponse {
        status: app::SessionStatus::Paid,
        session_id: session.id.clone(),
        txid: session.txid.clone().ok_or_else(incomplete)?,
        paid_at: session.paid_at.ok_or_else(incomplete)?,
        proof,
        redirect_url: redirect_url(session, true),
    })
}

/// `POST /app/sessions/{id}/decline`: the user refuses the order.
async fn decline(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: DeviceRequest,
) -> GatewayResult<Json<app::DeclineResponse>> {
    let (_, body): (_, app::DeclineRequest) = parse_request(&req.body)?;
    let reason = body.reason.unwrap_or_default();
    if reason.chars().count() > MAX_REASON_CHARS || reason.chars().any(char::is_control) {
        return Err(GatewayError::invalid(format!(
            "reason must be at most {MAX_REASON_CHARS} characters without control characters"
        )));
    }
    let account_id = req.device.account_id.clone();
    let session = owned_session(&state, &id, &account_id).await?;
    let event = app::PaymentStatusEvent {
        reason: Some(reason.clone()).filter(|r| !r.is_empty()),
        redirect_url: redirect_url(&session, false),
        ..app::PaymentStatusEvent::new(session.id.clone(), app::SessionStatus::Declined)
    };
    let outcome = crate::domain::decline_session(
        state.store.as_ref(),
        &id,
        &account_id,
        &reason,
        &to_json_text(&event)?,
        state.now(),
    )
    .await?;
    match outcome {
        SettleOutcome::Declined(s) => {
            state.hub.notify(&account_id);
            Ok(Json(app::DeclineResponse {
                status: app::SessionStatus::Declined,
                redirect_url: redirect_url(&s, false),
                session_id: s.id,
            }))
        }
        SettleOutcome::AlreadyPaid(_) | SettleOutcome::Paid(_) => Err(GatewayError::new(
            ErrorCode::InvalidState,
            "the session is already paid; it cannot be declined",
        )
        .with_status(409)
        .with_details(details(app::StateDetails {
            status: app::SessionStatus::Paid,
            redirect_url: None,
        }))),
        SettleOutcome::InvalidState(status) => Err(invalid_state(status, &session)),
        SettleOutcome::NotFound => Err(GatewayError::new(
            ErrorCode::SessionNotFound,
            format!("no session {id:?}"),
        )),
        SettleOutcome::Forbidden => Err(GatewayError::new(
            ErrorCode::Forbidden,
            "this session belongs to another account",
        )),
        SettleOutcome::InsufficientFunds | SettleOutcome::BalanceOutOfRange(_) => {
            Err(GatewayError::internal("decline returned a ledger outcome"))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Scanning, inventory and checkout

/// 422 `CAPABILITY_NOT_SUPPORTED` for a scanned payload the wallet cannot pay.
fn unsupported(kind: &str, reason: &str) -> GatewayError {
    GatewayError::new(ErrorCode::CapabilityNotSupported, reason)
        .with_status(422)
        .with_details(details(app::KindDetails {
            kind: kind.to_string(),
        }))
}

/// `POST /app/scan {text}`: turns a scanned QR text or link into a prompt, an inventory or a
/// person to pay (an end-user OCID QR or a person URI).
async fn scan(
    State(state): State<AppState>,
    req: DeviceRequest,
) -> GatewayResult<Json<app::ScanResponse>> {
    let (_, body): (_, app::ScanRequest) = parse_request(&req.body)?;
    let now = state.now();
    let payload = qr::parse_payload(&body.text, now).map_err(|e| match e {
        ProtocolError::Expired(m) => GatewayError::new(
            ErrorCode::OrderExpired,
            format!("the scanned code has expired: {m}"),
        ),
        other => GatewayError::invalid(format!("not a payable Opencharge code: {other}")),
    })?;
    let account_id = req.device.account_id.clone();
    match payload {
        QrPayload::MerchantOrder(q) => {
            let merchant = Merchant::resolve(&state, q.ocid()).await?;
            merchant.check_url(q.order_url(), "order")?;
            let signed = fetch_json(&state, q.order_url(), None).await?;
            let prompt =
                create_scanned_session(&state, &merchant, &signed, Some(q.order_id()), &account_id)
                    .await?;
            Ok(Json(app::ScanResponse::Prompt { prompt }))
        }
        QrPayload::Inventory(q) => {
            let merchant = Merchant::resolve(&state, q.ocid()).await?;
            merchant.check_url(q.inventory_url(), "inventory")?;
            let inventory = fetch_json(&state, q.inventory_url(), None).await?;
            if let Some(ocid) = inventory.get("ocid") {
                if ocid.as_u64() != Some(q.ocid()) {
                    return Err(GatewayError::invalid(format!(
                        "the inventory names OCID {ocid}, not the scanned merchant {}",
                        q.ocid()
                    )));
                }
            }
            let items = match inventory.get("items") {
                // Passed through as received; an item without a string `id` cannot be
                // ordered and is dropped.
                Some(Value::Array(items)) if items.len() <= MAX_ITEMS => items
                    .iter()
                    .filter_map(|i| serde_json::from_value::<app::InventoryItem>(i.clone()).ok())
                    .collect(),
                _ => {
                    return Err(GatewayError::new(
                        ErrorCode::VerificationError,
                        format!(
                        "the merchant's inventory has no valid items list (at most {MAX_ITEMS})"
                    ),
                    )
                    .with_status(502))
                }
            };
            Ok(Json(app::ScanResponse::Inventory(app::InventoryView {
                merchant_ocid: q.ocid(),
                merchant_name: Some(merchant.party.name.clone()),
                merchant_icon: merchant.party.icon.clone(),
                inventory_url: q.inventory_url().to_string(),
                currency: inventory
                    .get("currency")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                items,
            })))
        }
        QrPayload::Checkout(link) => {
            if !same_endpoint(link.endpoint(), &state.endpoint) {
                return Err(unsupported(
                    "checkout",
                    "this checkout link belongs to another payment gateway; open it in that gateway's page or app",
                ));
            }
            let prompt = attach_checkout(&state, link.session_id(), &account_id).await?;
            Ok(Json(app::ScanResponse::Prompt { prompt }))
        }
        QrPayload::WalletSession(_) => Err(unsupported(
            "wallet_session",
            "this is a wallet's payment QR: scanning another wallet's session QR is for merchants",
        )),
        QrPayload::OcidUri(uri) => match uri.gateway() {
            Some(gateway) => {
                let person =
                    super::transfers::person_view(&state, uri.ocid(), gateway, Some(&uri)).await?;
                Ok(Json(app::ScanResponse::Person { person }))
            }
            None => Err(unsupported(
                "ocid_uri",
                "bare OCID payments carry no signed order; ask the merchant for an order QR",
            )),
        },
        QrPayload::EndUserOcid(q) => {
            let person = super::transfers::person_view(&state, q.ocid(), q.gateway(), None).await?;
            Ok(Json(app::ScanResponse::Person { person }))
        }
    }
}

/// `POST /app/inventory/order`: asks the merchant to price the chosen items into a signed order.
async fn inventory_order(
    State(state): State<AppState>,
    req: DeviceRequest,
) -> GatewayResult<Json<app::Prompt>> {
    let (_, body): (_, app::InventoryOrderRequest) = parse_request(&req.body)?;
    if body.items.is_empty() || body.items.len() > MAX_ITEMS {
        return Err(GatewayError::invalid(format!(
            "items must hold 1..={MAX_ITEMS} lines"
        )));
    }
    for (i, line) in body.items.iter().enumerate() {
        if line.id.is_empty() || line.id.len() > 128 || line.id.chars().any(char::is_control) {
            return Err(GatewayError::invalid(format!(
                "items[{i}].id must be 1..=128 characters"
            )));
        }
        if line.quantity == 0 || line.quantity > 1_000_000 {
            return Err(GatewayError::invalid(format!(
                "items[{i}].quantity must be 1..=1000000"
            )));
        }
    }
    if let Some(c) = &body.currency {
        Currency::parse(c).map_err(|e| GatewayError::invalid(format!("currency: {e}")))?;
    }
    let merchant = Merchant::resolve(&state, body.merchant_ocid).await?;
    merchant.check_url(&body.inventory_url, "inventory")?;
    let url = format!("{}/orders/create", merchant.endpoint);
    let request = to_json_text(&app::MerchantOrderCreateRequest {
        ocid: body.merchant_ocid,
        items: body.items,
        currency: body.currency,
    })?;
    let signed = fetch_json(&state, &url, Some(&request)).await?;
    let prompt =
        create_scanned_session(&state, &merchant, &signed, None, &req.device.account_id).await?;
    Ok(Json(prompt))
}

/// `POST /app/checkout/{id}`: binds a hosted checkout session to this account; the prompt.
async fn open_checkout(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: DeviceRequest,
) -> GatewayResult<Json<app::Prompt>> {
    let prompt = attach_checkout(&state, &id, &req.device.account_id).await?;
    Ok(Json(prompt))
}

/// Attaches checkout session `id` to `account_id` (idempotent for the same account).
async fn attach_checkout(
    state: &AppState,
    id: &str,
    account_id: &str,
) -> GatewayResult<app::Prompt> {
    let not_found = || {
        GatewayError::new(
            ErrorCode::SessionNotFound,
            format!("no checkout session {id:?}"),
        )
    };
    let session = state.store.session(id).await?.ok_or_else(not_found)?;
    if session.flow != Flow::Checkout || session.order.is_none() {
        return Err(not_found());
    }
    let event = prompt_of(&session)?;
    match crate::domain::attach_checkout(
        state.store.as_ref(),
        id,
        account_id,
        &to_json_text(&event)?,
        state.now(),
    )
    .await?
    {
        ClaimOutcome::Claimed(s) => {
            state.hub.notify(account_id);
            prompt_of(&s)
        }
        ClaimOutcome::Used => Err(GatewayError::new(
            ErrorCode::SessionUsed,
            "this checkout session was already opened by another account",
        )),
        ClaimOutcome::Expired => Err(GatewayError::new(
            ErrorCode::SessionExpired,
            "this checkout session has expired",
        )
        .with_details(details(app::RedirectDetails {
            redirect_url: redirect_url(&session, false),
        }))),
        ClaimOutcome::NotFound => Err(not_found()),
        // Opening a checkout records its nonce in the request's extractor, not in the claim.
        ClaimOutcome::NonceReused => Err(GatewayError::internal(
            "attaching a checkout reported a reused nonce it was not given",
        )),
    }
}

/// A merchant resolved through the OCID directory: its verified party and endpoint.
struct Merchant {
    party: Party,
    endpoint: String,
}

impl Merchant {
    /// Resolves `ocid` through the directory (400 `UNKNOWN_OCID`, 502 `METADATA_UNAVAILABLE`);
    /// 400 when the party publishes no endpoint.
    async fn resolve(state: &AppState, ocid: u64) -> GatewayResult<Merchant> {
        let party = state.resolver.resolve(ocid).await.map_err(|e| {
            let e = GatewayError::from(e);
            if e.0.status == 401 {
                // Not a request-auth failure here: the scanned code names an unknown merchant.
                GatewayError::new(ErrorCode::UnknownOcid, e.0.message).with_status(400)
            } else {
                e
            }
        })?;
        let endpoint = party
            .endpoint
            .as_deref()
            .map(|e| e.trim_end_matches('/').to_string())
            .ok_or_else(|| {
                GatewayError::invalid(format!("OCID {ocid} publishes no endpoint: not a merchant"))
            })?;
        Ok(Merchant { party, endpoint })
    }

    /// 400 unless `url` lies under the merchant's published endpoint.
    fn check_url(&self, url: &str, what: &str) -> GatewayResult<()> {
        if url_under_endpoint(url, &self.endpoint) {
            Ok(())
        } else {
            Err(GatewayError::invalid(format!(
                "the {what} URL {url:?} is not under merchant {}'s published endpoint {:?}",
                self.party.ocid, self.endpoint
            )))
        }
    }
}

/// GETs (or, with a body, POSTs) a merchant URL signed with the gateway key and parses the
/// JSON answer. A merchant's Opencharge error is passed on with its code and 4xx status
/// (`ORDER_NOT_FOUND`, `ORDER_EXPIRED`, `INVALID_ITEM`, ...); an unreachable merchant, a 5xx
/// or a non-JSON answer is 502 `MERCHANT_UNAVAILABLE`.
async fn fetch_json(state: &AppState, url: &str, body: Option<&str>) -> GatewayResult<Value> {
    let unavailable = |m: String| {
        GatewayError::new(ErrorCode::Other("MERCHANT_UNAVAILABLE".into()), m).with_status(502)
    };
    let result = match body {
        None => crate::client::signed_get(state, url).await,
        Some(b) => crate::client::signed_post_json(state, url, b.as_bytes()).await,
    };
    let (status, bytes) = result.map_err(|e| match e {
        crate::client::ClientError::InvalidUrl(m) => {
            GatewayError::invalid(format!("merchant URL not allowed: {m}"))
        }
        other => unavailable(format!("cannot reach the merchant: {other}")),
    })?;
    if matches!(status, 400 | 404 | 409 | 410 | 422) {
        let merchant_error = ApiError::from_response(status, &bytes);
        return Err(GatewayError::new(
            merchant_error.code,
            format!("the merchant refused: {}", merchant_error.message),
        )
        .with_status(status)
        .with_details(details(app::MerchantStatusDetails {
            merchant_status: status,
        })));
    }
    if !(200..300).contains(&status) {
        return Err(unavailable(format!("the merchant answered HTTP {status}")));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| unavailable(format!("the merchant's answer is not JSON: {e}")))
}

/// Verifies a merchant's `{order, signature, urls}` with the seed endpoint's checks
/// ([`crate::api::opencharge::verify_order_for_payment`]), then stores a `merchant_qr` session
/// for `account_id` with its `payment_request` event. Returns the prompt.
async fn create_scanned_session(
    state: &AppState,
    merchant: &Merchant,
    signed: &Value,
    expected_order_id: Option<&str>,
    account_id: &str,
) -> GatewayResult<app::Prompt> {
    let bad = |m: &str| {
        GatewayError::new(ErrorCode::Other("MERCHANT_UNAVAILABLE".into()), m).with_status(502)
    };
    let raw_order = signed
        .get("order")
        .filter(|o| o.is_object())
        .cloned()
        .ok_or_else(|| bad("the merchant's answer has no order object"))?;
    let signature = signed
        .get("signature")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("the merchant's answer has no order signature"))?;
    let order: Order = serde_json::from_value(raw_order.clone())
        .map_err(|e| GatewayError::invalid(format!("the merchant's order is malformed: {e}")))?;
    if let Some(expected) = expected_order_id {
        if order.id != expected {
            return Err(GatewayError::invalid(format!(
                "the merchant returned order {:?} for the scanned order {expected:?}",
                order.id
            )));
        }
    }
    let urls_json = signed
        .get("urls")
        .filter(|u| u.is_object())
        .map(Value::to_string);
    let attached = crate::api::opencharge::verify_order_for_payment(
        state,
        &raw_order,
        &order,
        signature,
        &merchant.party,
        expected_order_id.is_some(),
        urls_json,
    )
    .await?;
    let now = state.now();
    let session_ttl_end = now.saturating_add(state.config.session_ttl_secs);
    let expires_at = order
        .expires_at
        .map_or(session_ttl_end, |e| e.min(session_ttl_end));
    let id = format!("sc_{}", random_hex(16));
    let session = Session::pending(
        id.clone(),
        Flow::MerchantQr,
        Some(account_id.to_string()),
        now,
        expires_at,
        random_hex(16),
    )
    .with_order(attached, merchant.party.ocid);
    let prompt = prompt_of(&session)?;
    state.store.create_session(&session).await?;
    state
        .store
        .append_event(account_id, "payment_request", &to_json_text(&prompt)?, now)
        .await?;
    state.hub.notify(account_id);
    Ok(prompt)
}

// ---------------------------------------------------------------------------------------------
// History, receipts, balance

/// Reads the query parameters `names` (each at most once); anything else is 400
/// `INVALID_REQUEST`, in the Opencharge envelope.
pub(crate) fn query_params(
    raw: Option<&str>,
    names: &[&str],
) -> GatewayResult<std::collections::HashMap<String, String>> {
    let mut out = std::collections::HashMap::new();
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        if !names.contains(&key.as_ref()) {
            return Err(GatewayError::invalid(format!(
                "unknown query parameter {key:?} (allowed: {})",
                names.join(", ")
            )));
        }
        if out.insert(key.to_string(), value.to_string()).is_some() {
            return Err(GatewayError::invalid(format!(
                "query parameter {key:?} given twice"
            )));
        }
    }
    Ok(out)
}

/// Parses a history cursor `"<createdAt>.<skip>"`: the next page holds receipts created at or
/// before `createdAt`, after skipping the first `skip` receipts created exactly then (those
/// were on earlier pages). Paging by second alone would lose receipts that share a second.
fn parse_history_cursor(text: &str) -> GatewayResult<(i64, u32)> {
    let bad = || GatewayError::invalid("cursor must be a nextCursor value from an earlier page");
    let (at, skip) = text.split_once('.').ok_or_else(bad)?;
    let at: i64 = at.parse().map_err(|_| bad())?;
    let skip: u32 = skip.parse().map_err(|_| bad())?;
    if skip > HISTORY_MAX_SKIP {
        return Err(bad());
    }
    Ok((at, skip))
}

/// `GET /app/history?limit=&cursor=` (or `&before=`): receipts, newest first, paged.
async fn history(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    req: DeviceRequest,
) -> GatewayResult<Json<app::HistoryResponse>> {
    let query = query_params(raw.as_deref(), &["limit", "before", "cursor"])?;
    let limit = match query.get("limit").map(String::as_str) {
        None | Some("") => HISTORY_DEFAULT_LIMIT,
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=HISTORY_MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                GatewayError::invalid(format!("limit must be 1..={HISTORY_MAX_LIMIT}"))
            })?,
    };
    // (exclusive upper bound on createdAt, receipts to skip at the top of the result)
    let (before, skip) = match (query.get("cursor"), query.get("before")) {
        (Some(_), Some(_)) => {
            return Err(GatewayError::invalid(
                "give either cursor or before, not both",
            ))
        }
        (Some(cursor), None) => {
            let (at, skip) = parse_history_cursor(cursor)?;
            (Some(at.saturating_add(1)), skip)
        }
        (None, Some(b)) => (
            Some(
                b.parse::<i64>()
                    .map_err(|_| GatewayError::invalid("before must be unix seconds"))?,
            ),
            0,
        ),
        (None, None) => (None, 0),
    };
    let fetch = limit.saturating_add(skip);
    let sessions = state
        .store
        .history(&req.device.account_id, fetch, before)
        .await?;
    let skip = usize::try_from(skip).unwrap_or(usize::MAX);
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = sessions.len() == usize::try_from(fetch).unwrap_or(usize::MAX);
    let end = sessions.len().min(skip.saturating_add(limit));
    let page = sessions.get(skip..end).unwrap_or(&[]);
    let next_cursor = match page.last() {
        Some(last) if more => {
            let same_second = sessions[..end]
                .iter()
                .filter(|s| s.created_at == last.created_at)
                .count();
            Some(format!("{}.{same_second}", last.created_at))
        }
        _ => None,
    };
    let now = state.now();
    Ok(Json(app::HistoryResponse {
        receipts: page.iter().map(|s| receipt_of(s, now)).collect(),
        next_cursor,
    }))
}

/// `GET /app/payments/{id}`: one receipt of this account.
async fn payment(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: DeviceRequest,
) -> GatewayResult<Json<app::Receipt>> {
    let session = owned_session(&state, &id, &req.device.account_id).await?;
    Ok(Json(receipt_of(&session, state.now())))
}

/// `GET /app/balance`: `{accountId, balances:[{currency, amount}]}`.
async fn balance(
    State(state): State<AppState>,
    req: DeviceRequest,
) -> GatewayResult<Json<app::BalanceResponse>> {
    let balances = state.store.balances(&req.device.account_id).await?;
    Ok(Json(app::BalanceResponse {
        balances: balances_json(&state.config.currencies, &balances),
        account_id: req.device.account_id,
    }))
}
