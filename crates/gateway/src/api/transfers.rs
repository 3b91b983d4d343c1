//! Paying a person through the wallet app API (`docs/app-api.md` §3.8, §3.16–§3.17):
//! `GET /app/receive` (the account's own user OCID and receive QR, allocated on the first
//! call), `POST /app/transfers` (a prompt to pay a user OCID here or at a partner gateway) and
//! the person view of a scanned end-user OCID QR or person URI (used by `POST /app/scan`).
//! Confirming and declining a transfer prompt are the ordinary session calls.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use opencharge_protocol::app;
use opencharge_protocol::error_code::ErrorCode;
use opencharge_protocol::money::{minor_units_of, Amount, Currency};
use opencharge_protocol::qr::{self, EndUserOcidQr};

use crate::api::app::parse_request;
use crate::api::wire::to_json_text;
use crate::auth::DeviceRequest;
use crate::error::{GatewayError, GatewayResult};
use crate::p2p::{display_name, transfer_order, transfer_partner, TRANSFER_TTL_SECS};
use crate::settlement::random_hex;
use crate::state::AppState;
use crate::store::{Flow, Session, UserOcidAllocation};

/// The person-to-person routes (relative to the base path).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/app/receive", get(receive))
        .route("/app/transfers", post(create_transfer))
}

/// `GET /app/receive`: the account's user OCID (allocated from `user_ocids` on the first call,
/// the same afterwards), our OCID, the account's name and the receive QR text. 409
/// `CAPABILITY_NOT_SUPPORTED` when this gateway issues no user OCIDs or its block is used up.
async fn receive(
    State(state): State<AppState>,
    req: DeviceRequest,
) -> GatewayResult<Json<app::ReceiveResponse>> {
    let range = state.config.user_ocids.ok_or_else(|| {
        GatewayError::new(
            ErrorCode::CapabilityNotSupported,
            "this gateway issues no user OCIDs; set user_ocids",
        )
        .with_status(409)
    })?;
    let account_id = &req.device.account_id;
    let ocid = match state
        .store
        .allocate_user_ocid(account_id, range, state.now())
        .await?
    {
        UserOcidAllocation::Ocid(ocid) => ocid,
        UserOcidAllocation::Exhausted => {
            tracing::error!(
                first = range.first,
                last = range.last,
                "the user OCID block is used up"
            );
            return Err(GatewayError::new(
                ErrorCode::CapabilityNotSupported,
                format!(
                    "this gateway has no user OCID left to give (block {}..={} used up); \
                     the operator must configure a larger user_ocids block",
                    range.first, range.last
                ),
            )
            .with_status(409));
        }
    };
    let gateway = state.config.ocid;
    let qr = EndUserOcidQr::new(ocid, gateway)
        .map_err(|e| GatewayError::internal(format!("cannot build the receive QR: {e}")))?;
    let name = match state.store.account(account_id).await? {
        Some(account) => display_name(&account.name),
        None => None,
    };
    Ok(Json(app::ReceiveResponse {
        ocid,
        gateway,
        name,
        qr: qr.to_json_string(),
    }))
}

/// Who a user OCID at `gateway` is, as far as this gateway can tell: `(recipient account when
/// it is ours, recipient name, gateway name)`. 404 `ACCOUNT_NOT_FOUND` for an OCID of ours that
/// no account holds, 400 `UNKNOWN_OCID` for a gateway the directory does not know.
async fn identify(
    state: &AppState,
    ocid: u64,
    gateway: u64,
) -> GatewayResult<(Option<String>, Option<String>, Option<String>)> {
    if gateway == state.config.ocid {
        let account_id = state.store.user_ocid_account(ocid).await?.ok_or_else(|| {
            GatewayError::new(
                ErrorCode::AccountNotFound,
                format!(
                    "no user of this gateway holds OCID {ocid}; ask the recipient for their receive code again"
                ),
            )
            .with_status(404)
        })?;
        let name = match state.store.account(&account_id).await? {
            Some(account) => display_name(&account.name),
            None => None,
        };
        return Ok((Some(account_id), name, display_name(&state.config.name)));
    }
    let party = state.resolver.resolve(gateway).await.map_err(|e| {
        let e = GatewayError::from(e);
        if e.0.status == 401 {
            // The recipient's gateway is unknown to the directory: not an auth failure here.
            GatewayError::new(
                ErrorCode::UnknownOcid,
                format!(
                    "the recipient's payment gateway {gateway} is not in the OCID directory: {}",
                    e.0.message
                ),
            )
            .with_status(400)
        } else {
            e
        }
    })?;
    Ok((None, None, display_name(&party.name)))
}

/// The person answer of a scanned end-user OCID QR or person URI (`POST /app/scan`).
pub(crate) async fn person_view(
    state: &AppState,
    ocid: u64,
    gateway: u64,
    uri: Option<&qr::OcidUri>,
) -> GatewayResult<app::PersonView> {
    let (_, name, gateway_name) = identify(state, ocid, gateway).await?;
    Ok(app::PersonView {
        ocid,
        gateway,
        gateway_name,
        name,
        amount: uri.and_then(|u| u.amount()).map(|a| a.as_str().to_string()),
        currency: uri.and_then(|u| u.currency()).map(|c| c.code().to_string()),
        memo: uri.and_then(|u| u.memo()).map(str::to_string),
    })
}

/// `POST /app/transfers {to: {ocid, gateway}, amount, currency, memo?}`: a `transfer`
/// session for the account with its order signed by us, its `payment_request` event, and
/// its prompt. 400 `INVALID_REQUEST` (amount, currency, memo, paying oneself), 404
/// `ACCOUNT_NOT_FOUND` (our gateway, no such user), 400 `UNKNOWN_OCID` (gateway not in the
/// directory), 400 `SETTLEMENT_NOT_SUPPORTED` (neither us nor a partner settling it).
async fn create_transfer(
    State(state): State<AppState>,
    req: DeviceRequest,
) -> GatewayResult<Json<app::TransferResponse>> {
    let (_, body): (_, app::TransferRequest) = parse_request(&req.body)?;
    let currency = Currency::parse(&body.currency)
        .map_err(|e| GatewayError::invalid(format!("currency: {e}")))?;
    if !state.config.currencies.iter().any(|c| c == currency.code()) {
        return Err(GatewayError::invalid(format!(
            "currency {} is not settled by this gateway (it settles {})",
            currency.code(),
            state.config.currencies.join(", ")
        )));
    }
    let amount = Amount::parse(&body.amount).map_err(|e| {
        GatewayError::invalid(format!(
            "amount: {e}; give a positive decimal string such as \"5.00\""
        ))
    })?;
    let minor = minor_units_of(&amount, &currency)
        .ok()
        .and_then(|m| i64::try_from(m).ok())
        .filter(|m| *m > 0)
        .ok_or_else(|| {
            GatewayError::invalid(format!(
                "amount {} is not payable in {} (at most {} decimals, more than zero)",
                amount.as_str(),
                currency.code(),
                currency.minor_units()
            ))
        })?;
    if let Some(memo) = &body.memo {
        qr::check_memo(memo).map_err(|e| GatewayError::invalid(e.to_string()))?;
    }
    let account_id = req.device.account_id.clone();
    let (to_account, name, gateway_name) = identify(&state, body.to.ocid, body.to.gateway).await?;
    if to_account.as_deref() == Some(account_id.as_str()) {
        return Err(GatewayError::invalid(
            "this is your own OCID: you cannot pay yourself",
        ));
    }
    if to_account.is_none()
        && transfer_partner(&state, body.to.gateway, currency.code())
            .await?
            .is_none()
    {
        return Err(GatewayError::new(
            ErrorCode::SettlementNotSupported,
            format!(
                "this gateway cannot send {} to people at gateway {}: it holds no reserve there \
                 that settles it",
                currency.code(),
                body.to.gateway
            ),
        ));
    }
    let recipient = app::Recipient {
        ocid: body.to.ocid,
        name,
        gateway: body.to.gateway,
        gateway_name,
    };
    let now = state.now();
    let (raw, attached) = transfer_order(
        &state,
        &recipient,
        &amount,
        minor,
        &currency,
        body.memo.as_deref(),
        now,
    )?;
    let expires_at = now.saturating_add(TRANSFER_TTL_SECS);
    let id = random_hex(16);
    let session = Session::pending(
        id.clone(),
        Flow::Transfer,
        Some(account_id.clone()),
        now,
        expires_at,
        random_hex(16),
    )
    .with_order(attached, state.config.ocid);
    let order = session
        .order
        .as_ref()
        .ok_or_else(|| GatewayError::internal("transfer session without its order"))?;
    let prompt =
        crate::api::opencharge::payment_request_prompt(&id, Flow::Transfer, order, raw, expires_at);
    state.store.create_session(&session).await?;
    state
        .store
        .append_event(&account_id, "payment_request", &to_json_text(&prompt)?, now)
        .await?;
    state.hub.notify(&account_id);
    tracing::info!(session = %id, to = recipient.ocid, gateway = recipient.gateway, "transfer prompt created");
    Ok(Json(app::TransferResponse { prompt }))
}
