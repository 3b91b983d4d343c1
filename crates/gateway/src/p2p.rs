//! Paying a person: settling a confirmed `transfer` session (internally when the recipient's
//! user OCID is ours, else through the recipient gateway's `/transfer/create`, which holds our
//! reserve) and crediting an incoming `/transfer/create` addressed to one of our user OCIDs.
//! Both sides record the recipient's `received` receipt and its `payment_status` event in the
//! transaction that credits the money (`docs/protocol-decisions.md`, "Paying a person").

use opencharge_protocol::app;
use opencharge_protocol::error_code::{ApiError, ErrorCode};
use opencharge_protocol::money::{Amount, Currency};
use opencharge_protocol::signing::{object_hash, sign_object};
use opencharge_protocol::types::{
    capability, Proof, ProofParty, SignedProof, TransferCreateRequest, TransferParty,
};
use serde_json::{json, Value};

use crate::domain::session::EVENT_PAYMENT_STATUS;
use crate::domain::settlement::{self as rules, payment_transfer, SettleDecision};
use crate::error::{GatewayError, GatewayResult};
use crate::resolver::Party;
use crate::settlement::{check_signed_proof, payment_status_event, random_hex};
use crate::state::AppState;
use crate::store::{
    AttachedOrder, Flow, NewEvent, NewReceipt, PlanOutcome, Session, SessionStatus, SettleOutcome,
    Settlement, Transfer, TransferOnce, TransferOutcome,
};

/// How long a transfer prompt can be confirmed, seconds (the order's `expiresAt - createdAt`).
pub const TRANSFER_TTL_SECS: i64 = 300;

/// How often a settlement whose session changed under it is decided again.
const MAX_ROUNDS: usize = 8;

/// The recipient block of a `transfer` session, kept in its `urls_json` column (a transfer has
/// no merchant URLs): `{ocid, name, gateway, gatewayName}`.
pub fn stored_recipient(order: &AttachedOrder) -> Option<app::Recipient> {
    serde_json::from_str(order.urls_json.as_deref()?).ok()
}

/// The signed order of a transfer and its stored form, as `POST /app/transfers` builds it:
/// `{"id":"p2p_<32 hex>","ocid":<recipient>,"amount","currency","memo"?,"createdAt",
/// "expiresAt"}` signed with OUR key (the wallet verifies it against our metadata).
pub fn transfer_order(
    state: &AppState,
    recipient: &app::Recipient,
    amount: &Amount,
    amount_minor: i64,
    currency: &Currency,
    memo: Option<&str>,
    now: i64,
) -> GatewayResult<(Value, AttachedOrder)> {
    let id = format!("p2p_{}", random_hex(16));
    let mut order = json!({
        "id": id,
        "ocid": recipient.ocid,
        "amount": amount.as_str(),
        "currency": currency.code(),
        "createdAt": now,
        "expiresAt": now.saturating_add(TRANSFER_TTL_SECS),
    });
    if let (Some(map), Some(memo)) = (order.as_object_mut(), memo) {
        map.insert("memo".into(), Value::from(memo));
    }
    let attached = signed_order(
        state,
        &order,
        id,
        recipient.ocid,
        recipient.name.clone(),
        amount,
        amount_minor,
        currency,
        Some(crate::api::wire::to_json_text(recipient)?),
    )?;
    Ok((order, attached))
}

/// Signs `order` with our key and wraps it as a stored order.
#[allow(clippy::too_many_arguments)]
fn signed_order(
    state: &AppState,
    order: &Value,
    order_id: String,
    counterparty: u64,
    counterparty_name: Option<String>,
    amount: &Amount,
    amount_minor: i64,
    currency: &Currency,
    urls_json: Option<String>,
) -> GatewayResult<AttachedOrder> {
    let signature = sign_object(&state.key, order)
        .map_err(|e| GatewayError::internal(format!("signing the transfer order: {e}")))?;
    let order_hash = object_hash(order)
        .map_err(|e| GatewayError::internal(format!("hashing the transfer order: {e}")))?;
    Ok(AttachedOrder {
        order_json: order.to_string(),
        order_signature: signature,
        order_hash,
        merchant_ocid: counterparty,
        merchant_name: counterparty_name,
        merchant_icon: None,
        order_id,
        amount: amount.as_str().to_string(),
        amount_minor,
        currency: currency.code().to_string(),
        urls_json,
    })
}

/// A non-empty account name, for display.
pub fn display_name(name: &str) -> Option<String> {
    Some(name.trim())
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}

/// The recipient's receipt for a payment of `amount` `currency` (memo inside `order`), credited
/// to `account_id` under `txid` with `proof_json`, from `sender` (`sender_name` when known).
#[allow(clippy::too_many_arguments)]
fn receipt(
    receipt_id: &str,
    account_id: &str,
    order: AttachedOrder,
    sender: u64,
    txid: &str,
    proof_json: &str,
    now: i64,
) -> NewReceipt {
    let mut session = Session::pending(
        receipt_id.to_string(),
        Flow::Received,
        Some(account_id.to_string()),
        now,
        now,
        random_hex(16),
    )
    .with_order(order, sender);
    session.status = SessionStatus::Paid;
    session.txid = Some(txid.to_string());
    session.paid_at = Some(now);
    session.proof_json = Some(proof_json.to_string());
    NewReceipt {
        session,
        event: NewEvent {
            account_id: account_id.to_string(),
            kind: EVENT_PAYMENT_STATUS.to_string(),
            payload_json: payment_status_event(
                receipt_id,
                app::SessionStatus::Paid,
                Some(txid),
                Some(now),
            ),
            now,
        },
    }
}

/// A new receipt id: `rc_` + 32 hex.
fn receipt_id() -> String {
    format!("rc_{}", random_hex(16))
}

/// Pays a confirmed `transfer` session exactly once (called by
/// [`crate::settlement::confirm_payment`] after the consent checks).
///
/// * **Internal** (the recipient's gateway is us): one transaction debits the sender, credits
///   the recipient's account, marks the session paid with our proof `{txid, issuer: us, from:
///   {ocid: us, reference: <sender account>}, to: {ocid: <recipient>, reference: <receipt id>},
///   amount, currency, memo?, timestamp}`, and writes the recipient's receipt and event.
/// * **External** (a partner holding our reserve): its `/transfer/create` with `from.reference`
///   = the session id (its idempotency key: a retried confirm gets the first proof back and
///   is never paid twice), then one transaction debits the sender to
///   `reserve-clearing:<gateway>` with the partner's proof, as the partner-reserve path.
pub async fn confirm_transfer(
    state: &AppState,
    session: &Session,
    account_id: &str,
    idempotency_key: &str,
    consent_json: &str,
) -> GatewayResult<SettleOutcome> {
    let Some(fresh) = state.store.session(&session.id).await? else {
        return Ok(SettleOutcome::NotFound);
    };
    if fresh.account_id.as_deref() != Some(account_id) {
        return Ok(SettleOutcome::Forbidden);
    }
    if fresh.status == SessionStatus::Paid {
        return Ok(SettleOutcome::AlreadyPaid(fresh));
    }
    if fresh.status != SessionStatus::OrderReceived {
        return Ok(SettleOutcome::InvalidState(fresh.status));
    }
    let now = state.now();
    if fresh.expires_at <= now {
        return Ok(SettleOutcome::InvalidState(SessionStatus::Expired));
    }
    let attached = fresh.order.as_ref().ok_or_else(|| {
        GatewayError::new(ErrorCode::InvalidState, "the session has no order to pay")
    })?;
    let recipient = stored_recipient(attached).ok_or_else(|| {
        GatewayError::internal(format!("transfer {} lost its recipient", fresh.id))
    })?;
    let outcome = if recipient.gateway == state.config.ocid {
        internal(
            state,
            &fresh,
            attached,
            &recipient,
            account_id,
            idempotency_key,
            consent_json,
            now,
        )
        .await?
    } else {
        external(
            state,
            &fresh,
            attached,
            &recipient,
            account_id,
            idempotency_key,
            consent_json,
            now,
        )
        .await?
    };
    if let SettleOutcome::Paid(paid) = &outcome {
        state.hub.notify(account_id);
        state.metrics.payment_completed(Flow::Transfer);
        tracing::info!(session = %paid.id, txid = ?paid.txid, to = recipient.ocid, gateway = recipient.gateway, "transfer to a person settled");
    }
    Ok(outcome)
}

/// The internal transfer: both accounts are ours.
#[allow(clippy::too_many_arguments)]
async fn internal(
    state: &AppState,
    session: &Session,
    attached: &AttachedOrder,
    recipient: &app::Recipient,
    account_id: &str,
    idempotency_key: &str,
    consent_json: &str,
    now: i64,
) -> GatewayResult<SettleOutcome> {
    let to_account = state
        .store
        .user_ocid_account(recipient.ocid)
        .await?
        .ok_or_else(|| {
            GatewayError::new(
                ErrorCode::AccountNotFound,
                format!(
                    "no account of this gateway holds user OCID {}",
                    recipient.ocid
                ),
            )
            .with_status(404)
        })?;
    let own = state.config.ocid;
    let order: Value = serde_json::from_str(&attached.order_json)
        .map_err(|e| GatewayError::internal(format!("stored transfer order unreadable: {e}")))?;
    let memo = order
        .get("memo")
        .and_then(Value::as_str)
        .map(str::to_string);
    let txid = format!("tx_{}", random_hex(16));
    let receipt_id = receipt_id();
    let proof = Proof {
        txid: txid.clone(),
        issuer: own,
        from: ProofParty::new(own, Some(account_id.to_string())),
        to: ProofParty::new(recipient.ocid, Some(receipt_id.clone())),
        amount: attached.amount.clone(),
        currency: attached.currency.clone(),
        timestamp: now,
        memo,
        extra: serde_json::Map::new(),
    };
    let signature = sign_object(&state.key, &proof)
        .map_err(|e| GatewayError::internal(format!("signing proof: {e}")))?;
    let proof_json = crate::api::wire::to_json_text(&SignedProof { proof, signature })?;
    // The recipient sees the sender's user OCID when the sender has one, else ours.
    let sender = state
        .store
        .account_user_ocid(account_id)
        .await?
        .unwrap_or(own);
    let sender_name = match state.store.account(account_id).await? {
        Some(a) => display_name(&a.name),
        None => None,
    };
    let receipt_order = AttachedOrder {
        merchant_ocid: sender,
        merchant_name: sender_name,
        urls_json: None,
        ..attached.clone()
    };
    let receipt = receipt(
        &receipt_id,
        &to_account,
        receipt_order,
        sender,
        &txid,
        &proof_json,
        now,
    );
    let settlement = Settlement {
        session_id: session.id.clone(),
        account_id: account_id.to_string(),
        idempotency_key: idempotency_key.to_string(),
        consent_json: consent_json.to_string(),
        transfers: vec![payment_transfer(account_id, &to_account, attached)],
        event_json: payment_status_event(
            &session.id,
            app::SessionStatus::Paid,
            Some(&txid),
            Some(now),
        ),
        txid,
        proof_json,
        webhook: None,
        now,
    };
    let outcome = settle_with_receipt(state, &settlement, &receipt).await?;
    if matches!(outcome, SettleOutcome::Paid(_)) {
        state.hub.notify(&to_account);
    }
    Ok(outcome)
}

/// [`crate::domain::settle_payment`] with the recipient's receipt in the same transaction.
async fn settle_with_receipt(
    state: &AppState,
    s: &Settlement,
    receipt: &NewReceipt,
) -> GatewayResult<SettleOutcome> {
    let store = state.store.as_ref();
    for _ in 0..MAX_ROUNDS {
        let seen = store.settle_key(&s.idempotency_key).await?;
        let stored = store.session(&s.session_id).await?;
        let current = match rules::decide(seen.as_ref(), stored.as_ref(), &s.account_id, s.now) {
            SettleDecision::Answer(outcome) => return Ok(outcome),
            SettleDecision::Pay(current) => current,
        };
        match store
            .apply_settlement_with_receipt(&rules::plan(&current, s), receipt)
            .await?
        {
            PlanOutcome::Applied(paid) => return Ok(SettleOutcome::Paid(paid)),
            PlanOutcome::InsufficientFunds => return Ok(SettleOutcome::InsufficientFunds),
            PlanOutcome::BalanceOutOfRange(account) => {
                return Ok(SettleOutcome::BalanceOutOfRange(account))
            }
            PlanOutcome::Conflict => {}
        }
    }
    Err(GatewayError::internal(format!(
        "session {} kept changing during its settlement",
        s.session_id
    )))
}

/// The partner gateway `gateway`, when it is a configured partner (we hold a reserve there)
/// that resolves, offers `transfer.create`, publishes an endpoint and settles `currency`.
pub async fn transfer_partner(
    state: &AppState,
    gateway: u64,
    currency: &str,
) -> GatewayResult<Option<Party>> {
    if !state.config.partners.iter().any(|p| p.ocid == gateway) {
        return Ok(None);
    }
    let party = match state.resolver.resolve(gateway).await {
        Ok(party) => party,
        Err(e) => {
            tracing::warn!(gateway, error = %e, "recipient gateway cannot be resolved");
            return Ok(None);
        }
    };
    let fits = party
        .capabilities
        .iter()
        .any(|c| c == capability::TRANSFER_CREATE)
        && party.currencies.iter().any(|c| c == currency)
        && party.endpoint.is_some();
    Ok(fits.then_some(party))
}

/// The external transfer: the recipient's gateway pays from our reserve there.
#[allow(clippy::too_many_arguments)]
async fn external(
    state: &AppState,
    session: &Session,
    attached: &AttachedOrder,
    recipient: &app::Recipient,
    account_id: &str,
    idempotency_key: &str,
    consent_json: &str,
    now: i64,
) -> GatewayResult<SettleOutcome> {
    let partner = transfer_partner(state, recipient.gateway, &attached.currency)
        .await?
        .ok_or_else(|| {
            GatewayError::new(
                ErrorCode::SettlementNotSupported,
                format!(
                    "gateway {} no longer settles {} transfers with this gateway",
                    recipient.gateway, attached.currency
                ),
            )
        })?;
    // Check the balance before the partner moves real money; the store checks again inside
    // the transaction (as the partner-reserve path).
    let balance = state
        .store
        .balances(account_id)
        .await?
        .into_iter()
        .find(|b| b.currency == attached.currency)
        .map(|b| b.minor)
        .unwrap_or(0);
    if balance < attached.amount_minor {
        return Ok(SettleOutcome::InsufficientFunds);
    }
    let order: Value = serde_json::from_str(&attached.order_json)
        .map_err(|e| GatewayError::internal(format!("stored transfer order unreadable: {e}")))?;
    let request = TransferCreateRequest {
        from: TransferParty {
            ocid: state.config.ocid,
            reference: Some(session.id.clone()),
        },
        to: TransferParty {
            ocid: recipient.ocid,
            reference: None,
        },
        amount: attached.amount.clone(),
        currency: attached.currency.clone(),
        memo: order
            .get("memo")
            .and_then(Value::as_str)
            .map(str::to_string),
        order: None,
    };
    let (proof, signature, txid) = remote_transfer(state, &partner, &request, attached).await?;
    let clearing = format!("reserve-clearing:{}", partner.ocid);
    state
        .store
        .ensure_account(
            &clearing,
            "partner_reserve",
            &format!("Reserve clearing at {}", partner.name),
            now,
        )
        .await?;
    let settlement = Settlement {
        session_id: session.id.clone(),
        account_id: account_id.to_string(),
        idempotency_key: idempotency_key.to_string(),
        consent_json: consent_json.to_string(),
        transfers: vec![payment_transfer(account_id, &clearing, attached)],
        event_json: payment_status_event(
            &session.id,
            app::SessionStatus::Paid,
            Some(&txid),
            Some(now),
        ),
        proof_json: crate::api::wire::to_json_text(&app::ProofEnvelope { proof, signature })?,
        txid: txid.clone(),
        webhook: None,
        now,
    };
    let outcome = crate::domain::settle_payment(state.store.as_ref(), &settlement).await?;
    if matches!(
        outcome,
        SettleOutcome::InsufficientFunds | SettleOutcome::BalanceOutOfRange(_)
    ) {
        // Only when two payments of the account raced past the balance check: the partner
        // paid the recipient from our reserve but the sender cannot be debited.
        tracing::error!(session = %session.id, %txid, "transfer paid by the partner but the sender could not be debited: reconcile");
    }
    Ok(outcome)
}

/// Calls the partner's `/transfer/create` and checks its proof: issued and signed by the
/// partner, paying the recipient the session's amount and currency. Returns (proof,
/// signature, txid).
async fn remote_transfer(
    state: &AppState,
    partner: &Party,
    request: &TransferCreateRequest,
    attached: &AttachedOrder,
) -> GatewayResult<(Value, String, String)> {
    let endpoint = partner.endpoint.as_deref().unwrap_or_default();
    let url = format!("{}/transfer/create", endpoint.trim_end_matches('/'));
    let bytes = serde_json::to_vec(request)
        .map_err(|e| GatewayError::internal(format!("serialising transfer request: {e}")))?;
    let (status, body) = crate::client::signed_post_json(state, &url, &bytes)
        .await
        .map_err(|e| {
            GatewayError(
                ApiError::new(
                    ErrorCode::Other("PARTNER_UNAVAILABLE".into()),
                    format!(
                        "the recipient's gateway {} cannot be reached ({e}); nothing was paid, try again",
                        partner.ocid
                    ),
                )
                .with_status(502),
            )
        })?;
    if status != 200 {
        let err = ApiError::from_response(status, &body);
        tracing::warn!(partner = partner.ocid, status, code = %err.code, "recipient gateway refused the transfer");
        return Err(GatewayError(
            ApiError::new(
                err.code.clone(),
                format!(
                    "the recipient's gateway {} refused the transfer: {}",
                    partner.ocid, err.message
                ),
            )
            .with_status(502),
        ));
    }
    let bad = |reason: String| {
        tracing::error!(partner = partner.ocid, %reason, "recipient gateway returned an unusable proof");
        GatewayError(
            ApiError::new(
                ErrorCode::InvalidProof,
                format!(
                    "the recipient's gateway {} returned an unusable proof: {reason}",
                    partner.ocid
                ),
            )
            .with_status(502),
        )
    };
    let signed: Value = serde_json::from_slice(&body).map_err(|e| bad(format!("not JSON: {e}")))?;
    let checked = check_signed_proof(&signed, partner, attached.merchant_ocid, None, attached)
        .map_err(bad)?;
    Ok((checked.proof, checked.signature, checked.txid))
}

/// An incoming `/transfer/create` whose `to.ocid` is in our user OCID block, already checked
/// for caller, reference, currency, amount and reserve by the handler.
pub struct IncomingTransfer<'a> {
    /// The calling gateway (its reserve is debited).
    pub caller: &'a Party,
    /// `from.reference`: with the caller, the idempotency key.
    pub from_reference: &'a str,
    /// The recipient's user OCID.
    pub to: u64,
    /// The amount, verbatim.
    pub amount: &'a Amount,
    /// In minor units of `currency`.
    pub minor: i64,
    /// The currency.
    pub currency: &'a Currency,
    /// The sender's memo.
    pub memo: Option<&'a str>,
}

/// Credits one of our users from the caller's reserve (`reserve:<caller>`) and records the
/// recipient's receipt and event, all in one transaction; a replay of the same
/// `(caller, from.reference)` returns the first `{proof, signature}` and records nothing.
/// Unknown user OCID in our block: 400 `ACCOUNT_NOT_FOUND`. Returns the answer's JSON text.
pub async fn credit_user(state: &AppState, t: &IncomingTransfer<'_>) -> GatewayResult<String> {
    let caller = t.caller.ocid;
    let idempotency_key = format!("transfer:{caller}:{}", t.from_reference);
    let Some(account) = state.store.user_ocid_account(t.to).await? else {
        return Err(GatewayError::new(
            ErrorCode::AccountNotFound,
            format!(
                "no account of this gateway holds user OCID {}; check the recipient's OCID",
                t.to
            ),
        ));
    };
    let now = state.now();
    let own = state.config.ocid;
    let txid = format!("tx_{}", random_hex(16));
    let receipt_id = receipt_id();
    let proof = Proof {
        txid: txid.clone(),
        issuer: own,
        from: ProofParty::new(caller, Some(t.from_reference.to_string())),
        to: ProofParty::new(t.to, Some(receipt_id.clone())),
        amount: t.amount.as_str().to_string(),
        currency: t.currency.code().to_string(),
        timestamp: now,
        memo: t.memo.map(str::to_string),
        extra: serde_json::Map::new(),
    };
    let signature = sign_object(&state.key, &proof)
        .map_err(|e| GatewayError::internal(format!("signing proof: {e}")))?;
    let result_json = crate::api::wire::to_json_text(&SignedProof { proof, signature })?;
    // The receipt's order: what was received, signed by us (the memo travels in it).
    let mut order = json!({
        "id": receipt_id,
        "ocid": t.to,
        "amount": t.amount.as_str(),
        "currency": t.currency.code(),
        "createdAt": now,
    });
    if let (Some(map), Some(memo)) = (order.as_object_mut(), t.memo) {
        map.insert("memo".into(), Value::from(memo));
    }
    let receipt_order = signed_order(
        state,
        &order,
        receipt_id.clone(),
        caller,
        display_name(&t.caller.name),
        t.amount,
        t.minor,
        t.currency,
        None,
    )?;
    let receipt = receipt(
        &receipt_id,
        &account,
        receipt_order,
        caller,
        &txid,
        &result_json,
        now,
    );
    let once = TransferOnce {
        idempotency_key,
        reference: txid.clone(),
        transfers: vec![Transfer {
            from_account: format!("reserve:{caller}"),
            to_account: account.clone(),
            currency: t.currency.code().to_string(),
            minor: t.minor,
        }],
        result_json,
        webhook: None,
        now,
    };
    match state
        .store
        .apply_transfer_once_with_receipt(&once, &receipt)
        .await?
    {
        TransferOutcome::Applied(result) => {
            state.hub.notify(&account);
            tracing::info!(%txid, partner = caller, to = t.to, "transfer to a user received");
            Ok(result)
        }
        TransferOutcome::Replayed(result) => {
            tracing::info!(partner = caller, reference = %t.from_reference, "transfer to a user replayed");
            Ok(result)
        }
        TransferOutcome::InsufficientFunds => Err(GatewayError::new(
            ErrorCode::InsufficientFunds,
            format!(
                "the reserve of OCID {caller} cannot cover {} {}",
                t.amount.as_str(),
                t.currency.code()
            ),
        )),
        TransferOutcome::BalanceOutOfRange(account) => {
            tracing::warn!(partner = caller, %account, "transfer to a user refused: balance would pass the ledger's range");
            Err(GatewayError(crate::domain::ledger::out_of_range_error()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attached(to: u64, amount: &str) -> AttachedOrder {
        AttachedOrder {
            order_json: "{}".into(),
            order_signature: String::new(),
            order_hash: String::new(),
            merchant_ocid: to,
            merchant_name: None,
            merchant_icon: None,
            order_id: "p2p_1".into(),
            amount: amount.into(),
            amount_minor: 500,
            currency: "USD".into(),
            urls_json: Some(
                r#"{"ocid":201001,"name":null,"gateway":201,"gatewayName":"B"}"#.into(),
            ),
        }
    }

    #[test]
    fn the_recipient_is_read_back_from_the_stored_order() {
        let r = stored_recipient(&attached(201001, "5.00")).unwrap();
        assert_eq!(
            (r.ocid, r.gateway, r.gateway_name.as_deref()),
            (201001, 201, Some("B"))
        );
        let mut none = attached(1, "1");
        none.urls_json = None;
        assert_eq!(stored_recipient(&none), None);
        assert_eq!(display_name("  "), None);
        assert_eq!(display_name(" Ann "), Some("Ann".into()));
    }
}
