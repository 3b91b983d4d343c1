//! Dev-only endpoints that create and fund accounts and issue enrollment codes for the demo and
//! the tests. Mounted only when `config.dev_mode` is on; they have NO authentication and must
//! never be enabled in production (anyone who can reach them can mint money).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use opencharge_protocol::error_code::ErrorCode;
use opencharge_protocol::keys::sha256_hex;
use opencharge_protocol::money::{minor_units_of, Amount, Currency};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::app::{balances_json, parse_json_body};
use crate::domain::ledger::LedgerOutcome;
use crate::error::{GatewayError, GatewayResult};
use crate::settlement::random_hex;
use crate::state::AppState;
use crate::store::Transfer;

/// Lifetime of an enrollment code, seconds (24 h).
pub const ENROLLMENT_TTL_SECS: i64 = 24 * 60 * 60;

/// Id of the dev funding source (kind `funding`, allowed to go negative).
pub const DEV_FUNDING_ACCOUNT: &str = "funding:dev";

/// Longest account name accepted, characters.
const MAX_NAME_CHARS: usize = 100;

/// The dev routes (relative to the base path). Mount only when `config.dev_mode` is on.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dev/accounts", post(create_account))
        .route("/dev/accounts/{id}/fund", post(fund_account))
        .route("/dev/accounts/{id}/enrollments", post(new_enrollment))
        .route("/dev/reserves/{ocid}/fund", post(fund_reserve))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateAccountBody {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FundBody {
    currency: String,
    amount: String,
}

/// `POST /dev/accounts {name}` → `{accountId, name, enrollmentCode, enrollmentExpiresAt}`.
async fn create_account(State(state): State<AppState>, body: Bytes) -> GatewayResult<Json<Value>> {
    let body: CreateAccountBody = parse_json_body(&body)?;
    let name = body.name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(GatewayError::invalid(format!(
            "name must be 1..={MAX_NAME_CHARS} characters without control characters"
        )));
    }
    let now = state.now();
    let account = state.store.create_account("user", name, now).await?;
    let (code, expires_at) = issue_enrollment(&state, &account.id, now).await?;
    Ok(Json(json!({
        "accountId": account.id,
        "name": account.name,
        "enrollmentCode": code,
        "enrollmentExpiresAt": expires_at,
    })))
}

/// `POST /dev/accounts/{id}/enrollments` → `{accountId, enrollmentCode, enrollmentExpiresAt}`.
async fn new_enrollment(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> GatewayResult<Json<Value>> {
    let account = user_account(&state, &id).await?;
    let (code, expires_at) = issue_enrollment(&state, &account, state.now()).await?;
    Ok(Json(json!({
        "accountId": account,
        "enrollmentCode": code,
        "enrollmentExpiresAt": expires_at,
    })))
}

/// `POST /dev/accounts/{id}/fund {currency, amount}` → `{accountId, balances}`.
async fn fund_account(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> GatewayResult<Json<Value>> {
    let account = user_account(&state, &id).await?;
    fund(&state, &account, &body).await
}

/// `POST /dev/reserves/{ocid}/fund {currency, amount}` → `{accountId, balances}`: funds the
/// reserve account `reserve:<ocid>` a partner gateway holds here.
async fn fund_reserve(
    State(state): State<AppState>,
    Path(ocid): Path<String>,
    body: Bytes,
) -> GatewayResult<Json<Value>> {
    let ocid: u64 = ocid
        .parse()
        .map_err(|_| GatewayError::invalid("ocid must be a decimal integer"))?;
    let id = format!("reserve:{ocid}");
    state
        .store
        .ensure_account(
            &id,
            "partner_reserve",
            &format!("Reserve of OCID {ocid}"),
            state.now(),
        )
        .await?;
    fund(&state, &id, &body).await
}

/// Creates a fresh enrollment code for `account_id`; stores only its SHA-256.
async fn issue_enrollment(
    state: &AppState,
    account_id: &str,
    now: i64,
) -> GatewayResult<(String, i64)> {
    let code = random_hex(16);
    let expires_at = now.saturating_add(ENROLLMENT_TTL_SECS);
    state
        .store
        .create_enrollment(account_id, &sha256_hex(code.as_bytes()), expires_at, now)
        .await?;
    Ok((code, expires_at))
}

/// The id of an existing `user` account, or 404 `ACCOUNT_NOT_FOUND`.
async fn user_account(state: &AppState, id: &str) -> GatewayResult<String> {
    match state.store.account(id).await? {
        Some(account) if account.kind == "user" => Ok(account.id),
        _ => Err(GatewayError::new(
            ErrorCode::AccountNotFound,
            format!("no user account {id:?}"),
        )
        .with_status(404)),
    }
}

/// Moves the requested amount from the dev funding source to `account_id`.
async fn fund(state: &AppState, account_id: &str, body: &[u8]) -> GatewayResult<Json<Value>> {
    let body: FundBody = parse_json_body(body)?;
    let currency = Currency::parse(&body.currency)
        .map_err(|e| GatewayError::invalid(format!("currency: {e}")))?;
    if !state.config.currencies.iter().any(|c| c == currency.code()) {
        return Err(GatewayError::invalid(format!(
            "currency {} is not one this gateway settles ({})",
            currency.code(),
            state.config.currencies.join(", ")
        )));
    }
    let amount =
        Amount::parse(&body.amount).map_err(|e| GatewayError::invalid(format!("amount: {e}")))?;
    let minor = minor_units_of(&amount, &currency)
        .ok()
        .and_then(|m| i64::try_from(m).ok())
        .ok_or_else(|| {
            GatewayError::invalid(format!(
                "amount {} is not a valid {} amount that fits the ledger",
                amount.as_str(),
                currency.code()
            ))
        })?;
    let now = state.now();
    state
        .store
        .ensure_account(DEV_FUNDING_ACCOUNT, "funding", "Dev funding", now)
        .await?;
    let reference = format!("devfund_{}", random_hex(16));
    let applied = state
        .store
        .apply_transfers(
            &reference,
            &[Transfer {
                from_account: DEV_FUNDING_ACCOUNT.to_string(),
                to_account: account_id.to_string(),
                currency: currency.code().to_string(),
                minor,
            }],
            now,
        )
        .await?;
    match applied {
        LedgerOutcome::Applied => {}
        LedgerOutcome::BalanceOutOfRange(_) => {
            return Err(GatewayError(crate::domain::ledger::out_of_range_error()))
        }
        LedgerOutcome::InsufficientFunds => {
            return Err(GatewayError::internal("dev funding transfer was refused"))
        }
    }
    let balances = state.store.balances(account_id).await?;
    Ok(Json(json!({
        "accountId": account_id,
        "balances": balances_json(&state.config.currencies, &balances),
    })))
}
