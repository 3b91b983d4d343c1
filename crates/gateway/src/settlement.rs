//! Settlement: choosing how an order can be paid to its merchant (directly, through a partner
//! gateway holding our reserve, or through a settlement provider common to us and the
//! merchant's gateway) and committing a confirmed payment as ONE store transaction with its
//! signed proof, its proof webhook and its `payment_status` event (the third-party path runs
//! as a durable job: [`crate::third_party`]).
//!
//! The app API's confirm handler verifies the device's consent and then calls
//! [`confirm_payment`]; the Opencharge endpoints call [`find_path`] to reject orders nobody can
//! settle (`SETTLEMENT_NOT_SUPPORTED`) before the user is ever prompted.

use opencharge_protocol::app;
use opencharge_protocol::error_code::{ApiError, ErrorCode};
use opencharge_protocol::keys::VerifyOptions;
use opencharge_protocol::money::Amount;
use opencharge_protocol::signing::{sign_object, verify_proof};
use opencharge_protocol::types::{
    capability, Order, Proof, ProofParty, SignedProof, TransferCreateRequest, TransferOrderRef,
    TransferParty,
};
use rand_core::RngCore;
use serde_json::Value;

use crate::domain::settlement::payment_transfer;
use crate::error::{GatewayError, GatewayResult};
use crate::resolver::Party;
use crate::state::AppState;
use crate::store::{Flow, Session, SessionStatus, SettleOutcome, Settlement};

/// How an order is settled with its merchant (protocol notes §5.6, strategies 1, 2 and 3).
// One short-lived value per payment: boxing the partner would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum SettlementPath {
    /// Our own OCID is accepted: we credit the merchant's account with us and sign the proof.
    Direct,
    /// A configured partner gateway is accepted: it debits our reserve with it, credits the
    /// merchant, signs the proof and webhooks the merchant.
    PartnerReserve {
        /// The partner, resolved and verified through the OCID directory.
        partner: Party,
    },
    /// Neither: the merchant's gateway (a Merchant Gateway offering `payment.create` and
    /// `payment.settle`, possibly the merchant itself) accepts proofs of a provider where we
    /// hold a reserve. Paid by the job of [`crate::third_party`].
    ThirdParty {
        /// The Merchant Gateway, resolved and verified.
        merchant_gateway: Party,
        /// The first configured partner the Merchant Gateway's metadata accepts (the job
        /// picks again from the Merchant Gateway's `/payment/create` answer).
        provider: Party,
    },
}

/// `n` random bytes from the OS generator, as lowercase hex (`2n` characters).
pub(crate) fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand_core::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The webhook URL of a party: `<endpoint>/transfer/webhook`.
pub(crate) fn webhook_url(endpoint: &str) -> String {
    format!("{}/transfer/webhook", endpoint.trim_end_matches('/'))
}

/// Finds a settlement path for an order of merchant `merchant` that accepts `accepts` in
/// `currency`, from configuration and verified metadata only (no side effects: it runs
/// before the user is prompted).
///
/// * [`SettlementPath::Direct`] when our OCID is in `accepts`. An empty slice is treated like
///   an order without `accepts` (no restriction) and also gives `Direct`.
/// * Otherwise the first configured partner (`config.partners`, in order) that is in
///   `accepts`, resolves through the directory, offers `transfer.create` and settles
///   `currency`: [`SettlementPath::PartnerReserve`].
/// * Otherwise [`SettlementPath::ThirdParty`]: the first candidate Merchant Gateway (each OCID
///   of `accepts` in order, then `merchant` itself) whose metadata offers `payment.create` and
///   `payment.settle` and publishes an endpoint, with the first configured partner that the
///   candidate's `settlement.accepts` lists and that offers `transfer.create` and settles
///   `currency` ([`find_provider`]).
/// * `None` when nothing applies (the caller answers `SETTLEMENT_NOT_SUPPORTED`).
pub async fn find_path_to(
    state: &AppState,
    merchant: Option<u64>,
    accepts: &[u64],
    currency: &str,
) -> Option<SettlementPath> {
    let own = state.config.ocid;
    if accepts.is_empty() || accepts.contains(&own) {
        return Some(SettlementPath::Direct);
    }
    for partner in &state.config.partners {
        if !accepts.contains(&partner.ocid) {
            continue;
        }
        match usable_partner(state, partner.ocid, currency).await {
            Some(party) => return Some(SettlementPath::PartnerReserve { partner: party }),
            None => continue,
        }
    }
    let mut candidates: Vec<u64> = accepts.to_vec();
    candidates.extend(merchant);
    let mut seen = std::collections::HashSet::new();
    for candidate in candidates {
        if candidate == own || !seen.insert(candidate) {
            continue;
        }
        let Ok(gateway) = state.resolver.resolve(candidate).await else {
            tracing::debug!(candidate, "candidate Merchant Gateway cannot be resolved");
            continue;
        };
        let offers = |c: &str| gateway.capabilities.iter().any(|x| x == c);
        if !offers(capability::PAYMENT_CREATE)
            || !offers(capability::PAYMENT_SETTLE)
            || gateway.endpoint.is_none()
        {
            continue;
        }
        if let Some(provider) = find_provider(state, &gateway.accepts, currency).await {
            return Some(SettlementPath::ThirdParty {
                merchant_gateway: gateway,
                provider,
            });
        }
        tracing::debug!(
            candidate,
            "Merchant Gateway accepts no settlement provider of ours for this currency"
        );
    }
    None
}

/// The first configured partner (where we hold a reserve) listed in `accepted` that resolves,
/// offers `transfer.create`, settles `currency` and publishes an endpoint.
pub async fn find_provider(state: &AppState, accepted: &[u64], currency: &str) -> Option<Party> {
    for partner in &state.config.partners {
        if !accepted.contains(&partner.ocid) {
            continue;
        }
        if let Some(party) = usable_partner(state, partner.ocid, currency).await {
            return Some(party);
        }
    }
    None
}

/// A partner resolved through the directory, if it offers `transfer.create`, settles
/// `currency` and publishes an endpoint.
async fn usable_partner(state: &AppState, ocid: u64, currency: &str) -> Option<Party> {
    let party = match state.resolver.resolve(ocid).await {
        Ok(party) => party,
        Err(e) => {
            tracing::warn!(partner = ocid, error = %e, "partner cannot be resolved; skipping it");
            return None;
        }
    };
    let can_transfer = party
        .capabilities
        .iter()
        .any(|c| c == capability::TRANSFER_CREATE);
    let settles_currency = party.currencies.iter().any(|c| c == currency);
    if can_transfer && settles_currency && party.endpoint.is_some() {
        return Some(party);
    }
    tracing::debug!(
        partner = ocid,
        can_transfer,
        settles_currency,
        "partner does not fit this order"
    );
    None
}

/// [`find_path_to`] without a merchant to try as its own Merchant Gateway.
pub async fn find_path(
    state: &AppState,
    accepts: &[u64],
    currency: &str,
) -> Option<SettlementPath> {
    find_path_to(state, None, accepts, currency).await
}

/// [`find_path_to`] for an order (its merchant is `order.ocid`): an absent `accepts` means
/// "no restriction" (direct).
pub async fn find_path_for_order(state: &AppState, order: &Order) -> Option<SettlementPath> {
    find_path_to(
        state,
        Some(order.ocid),
        order.accepts.as_deref().unwrap_or(&[]),
        &order.currency,
    )
    .await
}

/// The `payment_status` event payload for an account's devices, as JSON text:
/// `{"type":"payment_status","sessionId","status","txid"?,"paidAt"?}`
/// ([`app::PaymentStatusEvent`]).
pub fn payment_status_event(
    session_id: &str,
    status: app::SessionStatus,
    txid: Option<&str>,
    paid_at: Option<i64>,
) -> String {
    let event = app::PaymentStatusEvent {
        txid: txid.map(str::to_string),
        paid_at,
        ..app::PaymentStatusEvent::new(session_id, status)
    };
    // Strings and integers only: serialising cannot fail.
    serde_json::to_string(&event).unwrap_or_default()
}

/// Pays a session the user has consented to, exactly once.
///
/// Called by the app API after it has verified the device-signed consent. Builds the proof and
/// commits everything in the single [`crate::domain::settle_payment`] transaction
/// (idempotency check, state and ownership check, balance check, ledger, session → paid,
/// webhook, event). Returns the store's outcome; business refusals (`InsufficientFunds`,
/// `Forbidden`, ...) are outcomes, not errors. Errors are: no order on the session (400
/// `INVALID_STATE`), no settlement path (400 `SETTLEMENT_NOT_SUPPORTED`), a webhook target
/// whose metadata cannot be resolved (502 `METADATA_UNAVAILABLE`), a failing partner (502 with
/// the partner's code), and storage failures (500).
///
/// * **Direct**: user → `ocid:<merchant>` (checkout: → `ocid:<Merchant Gateway>`, which the
///   seed says to credit), our proof `{txid, issuer: us, from: {ocid: us, reference:
///   account_id}, to: {ocid: merchant, reference: order.id}, amount (verbatim), currency,
///   timestamp}`, webhook to the merchant's `/transfer/webhook` (checkout: to the Merchant
///   Gateway that created the session, protocol notes §7 row 14).
/// * **Partner reserve**: the partner's `/transfer/create` is called first; only a 200 with a
///   proof that verifies is committed, as user → `reserve-clearing:<partner>` with the
///   partner's proof and no webhook of ours (the partner webhooks the merchant).
/// * **Third party**: the durable job of [`crate::third_party`] (hold, `/payment/create`, the
///   provider's `/transfer/create`, `/payment/settle`, final transaction). A session that has
///   a job is always answered by its job (resumed when due), whatever the paths are now;
///   while its outcome is unknown the error is 503 `SETTLEMENT_PENDING`, and a job that ended
///   refused answers 409 with the refusing party's code.
pub async fn confirm_payment(
    state: &AppState,
    session: &Session,
    account_id: &str,
    idempotency_key: &str,
    consent_json: &str,
) -> GatewayResult<SettleOutcome> {
    if session.flow == Flow::Transfer {
        return crate::p2p::confirm_transfer(
            state,
            session,
            account_id,
            idempotency_key,
            consent_json,
        )
        .await;
    }
    // Answer from the stored state when the session cannot be paid by this request, so a
    // retry of an already-paid confirmation never reaches a partner or a resolver. The store
    // repeats these checks inside the settlement transaction, which is what decides.
    let Some(fresh) = state.store.session(&session.id).await? else {
        return Ok(SettleOutcome::NotFound);
    };
    if fresh.account_id.as_deref() != Some(account_id) {
        return Ok(SettleOutcome::Forbidden);
    }
    if fresh.status == SessionStatus::Paid {
        return Ok(SettleOutcome::AlreadyPaid(fresh));
    }
    // A session with a third-party job is that job's, whatever the paths are now.
    if state.store.third_party_job(&fresh.id).await?.is_some() {
        return crate::third_party::resume_confirm(state, &fresh.id).await;
    }
    if fresh.status != SessionStatus::OrderReceived {
        return Ok(SettleOutcome::InvalidState(fresh.status));
    }
    let attached = fresh.order.as_ref().ok_or_else(|| {
        GatewayError::new(ErrorCode::InvalidState, "the session has no order to pay")
    })?;
    let order: Order = serde_json::from_str(&attached.order_json).map_err(|e| {
        GatewayError::internal(format!("stored order of {} unreadable: {e}", fresh.id))
    })?;
    let path = find_path_for_order(state, &order).await.ok_or_else(|| {
        GatewayError::new(
            ErrorCode::SettlementNotSupported,
            "no settlement path to the merchant for this order",
        )
    })?;

    let now = state.now();
    let via_partner = matches!(path, SettlementPath::PartnerReserve { .. });
    let settlement = match path {
        SettlementPath::Direct => {
            direct_settlement(
                state,
                &fresh,
                attached,
                account_id,
                idempotency_key,
                consent_json,
                now,
            )
            .await?
        }
        SettlementPath::ThirdParty {
            merchant_gateway, ..
        } => {
            let confirm = crate::third_party::Confirm {
                session: &fresh,
                order: &order,
                attached,
                merchant_gateway: &merchant_gateway,
                account_id,
                idempotency_key,
                consent_json,
            };
            return crate::third_party::start_confirm(state, confirm).await;
        }
        SettlementPath::PartnerReserve { partner } => {
            if fresh.expires_at <= now {
                return Ok(SettleOutcome::InvalidState(SessionStatus::Expired));
            }
            // Check the balance before the partner moves real money. The store checks again
            // inside the transaction; see `partner_settlement` for the remaining window.
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
            partner_settlement(
                state,
                &fresh,
                &order,
                attached,
                &partner,
                account_id,
                idempotency_key,
                consent_json,
                now,
            )
            .await?
        }
    };

    let outcome = crate::domain::settle_payment(state.store.as_ref(), &settlement).await?;
    match &outcome {
        SettleOutcome::Paid(_) => {
            state.hub.notify(account_id);
            state.wake_webhooks();
            state.metrics.payment_completed(session.flow);
            tracing::info!(session = %session.id, txid = %settlement.txid, "payment settled");
        }
        SettleOutcome::InsufficientFunds | SettleOutcome::BalanceOutOfRange(_) if via_partner => {
            // Only reachable when two payments of the same account raced past the balance
            // pre-check: the partner has paid the merchant from our reserve but the user
            // cannot be debited. Operators must reconcile this transfer.
            tracing::error!(
                session = %session.id,
                txid = %settlement.txid,
                "partner transfer completed but the user could not be debited: reconcile"
            );
        }
        _ => {}
    }
    Ok(outcome)
}

/// Builds the direct-settlement transaction: our proof, the ledger move and the webhook.
async fn direct_settlement(
    state: &AppState,
    session: &Session,
    attached: &crate::store::AttachedOrder,
    account_id: &str,
    idempotency_key: &str,
    consent_json: &str,
    now: i64,
) -> GatewayResult<Settlement> {
    // Checkout: the proof goes to the Merchant Gateway that created the session and the MG is
    // the party we owe (seed 000: "credit the merchant gateway account"). Other flows: the
    // merchant itself.
    let payee_ocid = match session.flow {
        Flow::Checkout => session.submitted_by.unwrap_or(attached.merchant_ocid),
        Flow::WalletQr | Flow::MerchantQr | Flow::Transfer | Flow::Received => {
            attached.merchant_ocid
        }
    };
    let payee = state.resolver.resolve(payee_ocid).await.map_err(|e| {
        GatewayError::new(
            ErrorCode::MetadataUnavailable,
            format!("cannot resolve the proof recipient {payee_ocid}: {e}"),
        )
    })?;
    let payee_account = format!("ocid:{payee_ocid}");
    state
        .store
        .ensure_account(&payee_account, "merchant", &payee.name, now)
        .await?;

    let own = state.config.ocid;
    let txid = format!("tx_{}", random_hex(16));
    let proof = Proof {
        txid: txid.clone(),
        issuer: own,
        from: ProofParty::new(own, Some(account_id.to_string())),
        to: ProofParty::new(attached.merchant_ocid, Some(attached.order_id.clone())),
        amount: attached.amount.clone(),
        currency: attached.currency.clone(),
        timestamp: now,
        memo: None,
        extra: serde_json::Map::new(),
    };
    let signature = sign_object(&state.key, &proof)
        .map_err(|e| GatewayError::internal(format!("signing proof: {e}")))?;
    let proof_json = crate::api::wire::to_json_text(&SignedProof { proof, signature })?;
    let webhook = match &payee.endpoint {
        Some(endpoint) => Some((webhook_url(endpoint), payee_ocid)),
        None => {
            tracing::warn!(
                payee = payee_ocid,
                "proof recipient publishes no endpoint; no webhook"
            );
            None
        }
    };
    Ok(Settlement {
        session_id: session.id.clone(),
        account_id: account_id.to_string(),
        idempotency_key: idempotency_key.to_string(),
        consent_json: consent_json.to_string(),
        transfers: vec![payment_transfer(account_id, &payee_account, attached)],
        event_json: payment_status_event(
            &session.id,
            app::SessionStatus::Paid,
            Some(&txid),
            Some(now),
        ),
        txid,
        proof_json,
        webhook,
        now,
    })
}

/// Pays through a partner's `/transfer/create`, then builds the transaction that records it.
///
/// Crash safety: the partner call happens BEFORE our commit. If we crash (or the commit fails)
/// after the partner has answered, the session is still `order_received`; the next confirm of
/// the session calls the partner again with the same `from.reference` (the session id), and
/// the partner's idempotency (`transfer:<our ocid>:<session id>`) returns the first proof
/// without debiting our reserve twice, so the retry commits exactly one payment. If the user
/// never retries, the partner has paid the merchant while our user is not debited: the
/// reserve statement shows a transfer with no paid session, which operators reconcile.
#[allow(clippy::too_many_arguments)]
async fn partner_settlement(
    state: &AppState,
    session: &Session,
    order: &Order,
    attached: &crate::store::AttachedOrder,
    partner: &Party,
    account_id: &str,
    idempotency_key: &str,
    consent_json: &str,
    now: i64,
) -> GatewayResult<Settlement> {
    let endpoint = partner.endpoint.as_deref().ok_or_else(|| {
        partner_unavailable(format!("partner {} publishes no endpoint", partner.ocid))
    })?;
    let url = format!("{}/transfer/create", endpoint.trim_end_matches('/'));
    let order_urls: Vec<String> = attached
        .urls_json
        .as_deref()
        .and_then(|u| serde_json::from_str::<Value>(u).ok())
        .and_then(|u| u.get("order").cloned())
        .and_then(|o| serde_json::from_value::<Vec<String>>(o).ok())
        .unwrap_or_default();
    let request = TransferCreateRequest {
        from: TransferParty {
            ocid: state.config.ocid,
            reference: Some(session.id.clone()),
        },
        to: TransferParty {
            ocid: attached.merchant_ocid,
            reference: Some(attached.order_id.clone()),
        },
        amount: attached.amount.clone(),
        currency: attached.currency.clone(),
        memo: None,
        order: Some(TransferOrderRef {
            id: order.id.clone(),
            urls: order_urls,
        }),
    };
    let request_bytes = serde_json::to_vec(&request)
        .map_err(|e| GatewayError::internal(format!("serialising transfer request: {e}")))?;
    let (status, body) = crate::client::signed_post_json(state, &url, &request_bytes)
        .await
        .map_err(|e| {
            partner_unavailable(format!(
                "partner {} /transfer/create failed: {e}",
                partner.ocid
            ))
        })?;
    if status != 200 {
        let err = ApiError::from_response(status, &body);
        tracing::warn!(partner = partner.ocid, status, code = %err.code, "partner refused the transfer");
        return Err(GatewayError(
            ApiError::new(
                err.code.clone(),
                format!(
                    "partner {} refused the transfer: {}",
                    partner.ocid, err.message
                ),
            )
            .with_status(502),
        ));
    }

    let signed: Value = serde_json::from_slice(&body)
        .map_err(|e| invalid_partner_proof(partner.ocid, format!("not JSON: {e}")))?;
    let checked = check_signed_proof(&signed, partner, attached.merchant_ocid, None, attached)
        .map_err(|reason| invalid_partner_proof(partner.ocid, reason))?;

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
    Ok(Settlement {
        session_id: session.id.clone(),
        account_id: account_id.to_string(),
        idempotency_key: idempotency_key.to_string(),
        consent_json: consent_json.to_string(),
        transfers: vec![payment_transfer(account_id, &clearing, attached)],
        event_json: payment_status_event(
            &session.id,
            app::SessionStatus::Paid,
            Some(&checked.txid),
            Some(now),
        ),
        proof_json: checked.envelope_json()?,
        txid: checked.txid,
        webhook: None,
        now,
    })
}

/// Another party's signed `{proof, signature}` answer, checked by [`check_signed_proof`].
#[derive(Debug, Clone)]
pub(crate) struct CheckedProof {
    /// The proof exactly as the issuer signed it.
    pub(crate) proof: Value,
    /// The issuer's signature over it.
    pub(crate) signature: String,
    /// The proof's (non-empty) txid.
    pub(crate) txid: String,
}

impl CheckedProof {
    /// The `{proof, signature}` JSON text a receipt stores.
    pub(crate) fn envelope_json(&self) -> GatewayResult<String> {
        crate::api::wire::to_json_text(&app::ProofEnvelope {
            proof: self.proof.clone(),
            signature: self.signature.clone(),
        })
    }
}

/// Checks a `{proof, signature}` answer of a partner, a recipient's gateway, a settlement
/// provider or a Merchant Gateway: signed by `issuer` with its verified key, paying `to` (and
/// `to.reference` = `reference` when given) the order's amount (compared numerically) in its
/// currency, with a txid. The reason it is unusable otherwise, for the caller's error.
pub(crate) fn check_signed_proof(
    answer: &Value,
    issuer: &Party,
    to: u64,
    reference: Option<&str>,
    attached: &crate::store::AttachedOrder,
) -> Result<CheckedProof, String> {
    let (Some(proof), Some(signature)) = (
        answer.get("proof"),
        answer.get("signature").and_then(Value::as_str),
    ) else {
        return Err("missing proof or signature".into());
    };
    verify_proof(
        proof,
        signature,
        issuer.ocid,
        &issuer.public_key,
        VerifyOptions::STRICT,
    )
    .map_err(|e| format!("does not verify: {e}"))?;
    let paid_to = proof.pointer("/to/ocid").and_then(Value::as_u64);
    if paid_to != Some(to) {
        return Err(format!("pays OCID {paid_to:?}, not {to}"));
    }
    if let Some(reference) = reference {
        let got = proof.pointer("/to/reference").and_then(Value::as_str);
        if got != Some(reference) {
            return Err(format!("to.reference {got:?} is not {reference}"));
        }
    }
    let currency = proof.get("currency").and_then(Value::as_str);
    if currency != Some(attached.currency.as_str()) {
        return Err(format!(
            "currency {currency:?} is not the order's {}",
            attached.currency
        ));
    }
    let amount = proof
        .get("amount")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !same_amount(amount, &attached.amount) {
        return Err(format!(
            "amount {amount:?} is not the order's {}",
            attached.amount
        ));
    }
    let txid = proof
        .get("txid")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| "missing txid".to_string())?;
    Ok(CheckedProof {
        proof: proof.clone(),
        signature: signature.to_owned(),
        txid: txid.to_owned(),
    })
}

/// Whether two decimal amount texts are the same number (`"5"` and `"5.00"` are).
pub(crate) fn same_amount(a: &str, b: &str) -> bool {
    matches!((Amount::parse(a), Amount::parse(b)), (Ok(a), Ok(b)) if a == b)
}

fn partner_unavailable(message: String) -> GatewayError {
    tracing::warn!(%message, "partner settlement unavailable");
    GatewayError(
        ApiError::new(ErrorCode::Other("PARTNER_UNAVAILABLE".into()), message).with_status(502),
    )
}

fn invalid_partner_proof(partner: u64, reason: String) -> GatewayError {
    tracing::error!(partner, %reason, "partner returned an unusable proof");
    GatewayError(
        ApiError::new(
            ErrorCode::InvalidProof,
            format!("partner {partner} returned an unusable proof: {reason}"),
        )
        .with_status(502),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn party(ocid: u64, key: &opencharge_protocol::keys::PrivateKey) -> Party {
        Party {
            ocid,
            name: format!("Party {ocid}"),
            icon: None,
            public_key: key.public_key(),
            endpoint: None,
            capabilities: vec![],
            currencies: vec!["USD".into()],
            accepts: vec![],
        }
    }

    fn attached(to: u64, amount: &str) -> crate::store::AttachedOrder {
        crate::store::AttachedOrder {
            order_json: "{}".into(),
            order_signature: String::new(),
            order_hash: String::new(),
            merchant_ocid: to,
            merchant_name: None,
            merchant_icon: None,
            order_id: "ord_1".into(),
            amount: amount.into(),
            amount_minor: 500,
            currency: "USD".into(),
            urls_json: None,
        }
    }

    fn signed(key: &opencharge_protocol::keys::PrivateKey, proof: Value) -> Value {
        let signature = sign_object(key, &proof).unwrap();
        json!({"proof": proof, "signature": signature})
    }

    #[test]
    fn a_signed_proof_must_be_the_issuers_and_pay_what_was_asked() {
        use opencharge_protocol::keys::PrivateKey;
        let key = PrivateKey::generate();
        let issuer = party(210, &key);
        let order = attached(500, "5.00");
        let good = json!({"txid": "tx_1", "issuer": 210, "from": {"ocid": 200},
            "to": {"ocid": 500, "reference": "mgp_1"}, "amount": "5", "currency": "USD",
            "timestamp": 1});
        let checked = check_signed_proof(
            &signed(&key, good.clone()),
            &issuer,
            500,
            Some("mgp_1"),
            &order,
        )
        .unwrap();
        assert_eq!((checked.txid.as_str(), &checked.proof), ("tx_1", &good));
        assert!(checked.envelope_json().unwrap().contains("\"signature\""));

        let other_key = PrivateKey::generate();
        let with = |field: &str, value: Value| {
            let mut p = good.clone();
            p[field] = value;
            p
        };
        for (answer, reference, needle) in [
            (signed(&other_key, good.clone()), None, "does not verify"),
            (json!({"proof": good}), None, "missing proof or signature"),
            (
                signed(&key, with("to", json!({"ocid": 501}))),
                None,
                "pays OCID",
            ),
            (signed(&key, good.clone()), Some("mgp_2"), "to.reference"),
            (
                signed(&key, with("currency", json!("EUR"))),
                None,
                "currency",
            ),
            (signed(&key, with("amount", json!("5.01"))), None, "amount"),
            (signed(&key, with("amount", json!(5))), None, "amount"),
            (signed(&key, with("txid", json!(""))), None, "missing txid"),
        ] {
            let e = check_signed_proof(&answer, &issuer, 500, reference, &order).unwrap_err();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }

    #[test]
    fn status_event_shape() {
        let e: Value = serde_json::from_str(&payment_status_event(
            "s1",
            app::SessionStatus::Paid,
            Some("tx_1"),
            Some(7),
        ))
        .unwrap();
        assert_eq!(
            e,
            json!({"type":"payment_status","sessionId":"s1","status":"paid","txid":"tx_1","paidAt":7})
        );
        let d: Value = serde_json::from_str(&payment_status_event(
            "s1",
            app::SessionStatus::Declined,
            None,
            None,
        ))
        .unwrap();
        assert_eq!(
            d,
            json!({"type":"payment_status","sessionId":"s1","status":"declined"})
        );
    }

    #[test]
    fn random_hex_is_hex_and_unique() {
        let a = random_hex(16);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, random_hex(16));
    }
}
