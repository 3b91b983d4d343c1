//! Third-party settlement, the Merchant Gateway side (protocol notes §4.2, §5.6 strategy 3):
//! the merchant is its own Merchant Gateway. A payer's gateway creates a pending payment
//! (`POST /payment/create`), has a settlement provider that both accept transfer the money to
//! us with `to.reference` = the pending txid, and hands us that provider's proof
//! (`POST /payment/settle`); we check it, complete the payment, mark the order it pays as paid
//! with our own signed proof as the merchant's receipt, and answer with that proof.
//! `GET /verify/{txid}` lets the creator reconcile. The provider may also deliver its proof
//! to `POST /transfer/webhook` ([`crate::webhook`] hands it to [`settle_from_webhook`]); the
//! two may arrive in either order and complete the payment once.
//!
//! `POST /payment/create` (signed), checks in order, each a typed enveloped error:
//!
//! | check | error |
//! |---|---|
//! | body is a `PaymentCreateRequest`; amount a positive decimal valid in its ISO 4217 currency; `reference`, `memo`, `order.id` 1–256 characters without control characters | 400 `INVALID_REQUEST` |
//! | `expiresAt` (when given) after now and at most 24 h ahead | 400 `INVALID_REQUEST` |
//! | `to` is this merchant | 400 `MERCHANT_NOT_REGISTERED` |
//! | the currency is one the merchant settles | 400 `INVALID_REQUEST` (`supportedCurrencies`) |
//! | third-party settlement is on (some settlement provider configured) | 400 `SETTLEMENT_NOT_SUPPORTED` |
//! | the same caller already created a payment with this `reference`: the same terms give that payment back (200, whatever its status); other terms | 400 `INVALID_REQUEST` (`field: reference`) |
//! | `order.id` names one of our orders | 404 `ORDER_NOT_FOUND` |
//! | that order is pending and not expired | 400 `INVALID_STATE` (paid, cancelled), 400 `ORDER_EXPIRED` |
//! | currency, then amount (numerically) equal to the order's | 400 `CURRENCY_MISMATCH`, `AMOUNT_MISMATCH` |
//!
//! `POST /payment/settle` (signed by the payment's creator), checks in order:
//!
//! | check | error |
//! |---|---|
//! | body is `{txid, proof: {...}, signature}` with a well-formed proof | 400 `INVALID_REQUEST` |
//! | the payment exists and this caller created it | 404 `PAYMENT_NOT_FOUND` |
//! | completed: by this provider proof (issuer, txid) → 200 with the stored answer; by another | 400 `INVALID_STATE` |
//! | not expired (stored status, or `expiresAt` passed) | 400 `PAYMENT_EXPIRED` |
//! | the proof's issuer is one of the payment's settlement providers | 400 `ISSUER_NOT_ACCEPTED` |
//! | the signature verifies with the issuer's verified metadata key (the sender is the payer, not the issuer) | 400 `PROOF_SIGNATURE_INVALID` (502 `METADATA_UNAVAILABLE` when the key cannot be fetched) |
//! | `to.ocid` is us, `proof.timestamp` at most 300 s ahead, `to.reference` is the txid | 400 `INVALID_PROOF` |
//! | `proof.timestamp` not before `createdAt − 300` | 400 `INVALID_PROOF` |
//! | currency, then amount (a valid amount of the currency, numerically equal) | 400 `CURRENCY_MISMATCH`, `INVALID_PROOF`, `AMOUNT_MISMATCH` |
//! | the provider's (issuer, txid) never paid another payment or an order | 409 `PROOF_ALREADY_PROCESSED` |
//!
//! `GET /verify/{txid}` (signed; only the creator sees its payment, anyone else gets the
//! unknown-txid answer): `completed` → `{status, txid, proof, signature}` (our proof);
//! pending → `{status:"pending", txid, amount, currency, createdAt, expiresAt}`; expired →
//! `{status:"expired", txid}`; unknown → 404 `TXID_NOT_FOUND`.

use axum::extract::{Path, State};
use axum::Json;
use opencharge_protocol::error_code::ErrorCode;
use opencharge_protocol::money::{Amount, Currency};
use opencharge_protocol::proof::{
    check_incoming_proof, ExpectedPayment, IncomingProof, ProofReceiver, PROOF_FUTURE_SKEW_SECS,
};
use opencharge_protocol::signing::sign_object;
use opencharge_protocol::types::{
    OrderStatus, PaymentCreateRequest, PaymentCreateResponse, PaymentSettleRequest,
    PaymentSettleResponse, PaymentSettlementTerms, PaymentStatus, Proof, ProofParty, SignedProof,
    VerifyResponse, VerifyStatus, WebhookResponse,
};
use rand_core::RngCore;
use serde_json::{json, Value};

use crate::auth::OcRequest;
use crate::config::{is_display_text, MAX_ORDER_TTL_SECS, MAX_TEXT_CHARS};
use crate::error::{HttpError, HttpResult};
use crate::payment_store::{
    CompleteOutcome, Completion, CreateOutcome, NewPayment, PaymentState, ProofUse, StoredPayment,
};
use crate::resolver::ResolveError;
use crate::state::{public_status, AppState};
use crate::store::ProofOutcome;

/// A fresh payment txid: `mgp_` followed by 32 lowercase hex characters (128 random bits).
pub fn new_payment_txid() -> String {
    let mut bytes = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut bytes);
    format!("mgp_{}", hex::encode(bytes))
}

/// The first 80 characters of untrusted text, for messages (callers `{:?}`-escape it).
fn preview(s: &str) -> String {
    s.chars().take(80).collect()
}

fn invalid_field(field: &str, message: impl Into<String>) -> HttpError {
    HttpError::invalid(message).with_details(json!({ "field": field }))
}

fn check_text(field: &str, value: Option<&str>) -> HttpResult<()> {
    match value {
        Some(text) if !is_display_text(text) => Err(invalid_field(
            field,
            format!("{field} must be 1..={MAX_TEXT_CHARS} characters without control characters"),
        )),
        _ => Ok(()),
    }
}

/// The answer of `/payment/create` for a stored payment.
fn create_answer(payment: &StoredPayment, now: i64) -> PaymentCreateResponse {
    PaymentCreateResponse {
        status: match payment.state_at(now) {
            PaymentState::PendingSettlement => PaymentStatus::PendingSettlement,
            PaymentState::Completed => PaymentStatus::Completed,
            PaymentState::Expired => PaymentStatus::Expired,
        },
        txid: payment.txid.clone(),
        amount: payment.amount.clone(),
        currency: payment.currency.clone(),
        expires_at: payment.expires_at,
        settlement: PaymentSettlementTerms {
            accepts: payment.accepts.clone(),
        },
    }
}

/// `POST /payment/create` (see the module documentation for the checks).
pub(crate) async fn payment_create(
    State(state): State<AppState>,
    req: OcRequest,
) -> HttpResult<Json<PaymentCreateResponse>> {
    let now = state.now();
    let body: PaymentCreateRequest = req.json()?;
    let currency = Currency::parse(&body.currency)
        .map_err(|e| invalid_field("currency", format!("currency: {e}")))?;
    let amount =
        Amount::parse(&body.amount).map_err(|e| invalid_field("amount", format!("amount: {e}")))?;
    amount
        .check_currency(&currency)
        .map_err(|e| invalid_field("amount", format!("amount: {e}")))?;
    check_text("reference", body.reference.as_deref())?;
    check_text("memo", body.memo.as_deref())?;
    let order_id = body.order.as_ref().map(|o| o.id.as_str());
    check_text("order.id", order_id)?;
    let max_ttl = MAX_ORDER_TTL_SECS as i64;
    let expires_at = match body.expires_at {
        None => now.saturating_add(state.config.payment_ttl_secs as i64),
        Some(at) if at <= now => {
            return Err(invalid_field(
                "expiresAt",
                format!("expiresAt {at} is not in the future (now {now}); omit it for the default of one hour"),
            ))
        }
        Some(at) if at - now > max_ttl => {
            return Err(invalid_field(
                "expiresAt",
                format!("expiresAt {at} is more than {max_ttl} s ahead (now {now})"),
            ))
        }
        Some(at) => at,
    };
    let own = state.config.ocid;
    if body.to != own {
        return Err(HttpError::new(
            ErrorCode::MerchantNotRegistered,
            format!(
                "merchant {} is not registered with this Merchant Gateway: it settles only for itself ({own})",
                body.to
            ),
        )
        .with_details(json!({"field": "to", "merchant": body.to})));
    }
    if !state.config.currencies.iter().any(|c| c == currency.code()) {
        return Err(invalid_field(
            "currency",
            format!(
                "currency {} is not settled by this merchant",
                currency.code()
            ),
        )
        .with_details(json!({
            "field": "currency",
            "supportedCurrencies": state.config.currencies,
        })));
    }
    let providers = state.config.payment_providers();
    if providers.is_empty() {
        return Err(HttpError::new(
            ErrorCode::SettlementNotSupported,
            "this merchant accepts no third-party settlement provider; pay it directly",
        ));
    }
    let caller = req.caller.ocid;
    // The same reference again: that payment, whatever has happened to it since.
    if let Some(reference) = &body.reference {
        if let Some(existing) = state.store.payment_by_reference(caller, reference)? {
            return replayed_create(&existing, &body, &amount, now).map(Json);
        }
    }
    if let Some(order_id) = order_id {
        check_order(&state, order_id, &currency, &amount, now)?;
    }
    let txid = new_payment_txid();
    let outcome = state.store.create_payment(&NewPayment {
        txid: &txid,
        creator: caller,
        reference: body.reference.as_deref(),
        merchant: own,
        amount: &body.amount,
        currency: currency.code(),
        memo: body.memo.as_deref(),
        order_id,
        accepts: providers,
        created_at: now,
        expires_at,
    })?;
    match outcome {
        CreateOutcome::Created(payment) => {
            tracing::info!(txid = %payment.txid, caller, amount = %payment.amount, currency = %payment.currency, order = ?payment.order_id, "third-party payment created");
            Ok(Json(create_answer(&payment, now)))
        }
        // A concurrent create with the same reference won.
        CreateOutcome::Existing(existing) => {
            replayed_create(&existing, &body, &amount, now).map(Json)
        }
    }
}

/// The answer to a create that repeats a reference: the stored payment when the terms are the
/// same (`to`, currency, amount numerically, order), else 400 naming the reference.
fn replayed_create(
    existing: &StoredPayment,
    body: &PaymentCreateRequest,
    amount: &Amount,
    now: i64,
) -> HttpResult<PaymentCreateResponse> {
    let same_amount = Amount::parse(&existing.amount).is_ok_and(|a| &a == amount);
    let same = existing.merchant == body.to
        && existing.currency == body.currency
        && same_amount
        && existing.order_id.as_deref() == body.order.as_ref().map(|o| o.id.as_str());
    if !same {
        return Err(invalid_field(
            "reference",
            format!(
                "reference {:?} was already used for payment {} with other terms; use a new reference for a new payment",
                preview(existing.reference.as_deref().unwrap_or_default()),
                existing.txid
            ),
        )
        .with_details(json!({"field": "reference", "txid": existing.txid})));
    }
    Ok(create_answer(existing, now))
}

/// The order a payment names must be ours, pending, and for the same currency and amount.
fn check_order(
    state: &AppState,
    order_id: &str,
    currency: &Currency,
    amount: &Amount,
    now: i64,
) -> HttpResult<()> {
    let stored = state.store.order(order_id)?.ok_or_else(|| {
        HttpError::new(
            ErrorCode::OrderNotFound,
            format!("no order {:?} at this merchant", preview(order_id)),
        )
        .with_details(json!({"field": "order.id"}))
    })?;
    match public_status(&stored, now) {
        OrderStatus::Pending => {}
        OrderStatus::Expired => {
            return Err(HttpError::new(
                ErrorCode::OrderExpired,
                format!("order {order_id} expired at {}", stored.expires_at),
            )
            .with_details(json!({"expiresAt": stored.expires_at})))
        }
        status @ (OrderStatus::Paid | OrderStatus::Cancelled) => {
            return Err(HttpError::new(
                ErrorCode::InvalidState,
                format!("order {order_id} cannot be paid: it is {}", status.as_str()),
            )
            .with_details(json!({"status": status})))
        }
    }
    if stored.currency != currency.code() {
        return Err(HttpError::new(
            ErrorCode::CurrencyMismatch,
            format!(
                "order {order_id} is priced in {}, not {}",
                stored.currency,
                currency.code()
            ),
        )
        .with_details(json!({"expected": stored.currency, "received": currency.code()})));
    }
    let due = Amount::parse(&stored.amount)
        .map_err(|e| HttpError::internal(format!("stored amount of {order_id}: {e}")))?;
    if &due != amount {
        return Err(HttpError::new(
            ErrorCode::AmountMismatch,
            format!(
                "order {order_id} is for {} {}, not {}",
                stored.amount,
                stored.currency,
                amount.as_str()
            ),
        )
        .with_details(json!({"expected": stored.amount, "received": amount.as_str()})));
    }
    Ok(())
}

/// `POST /payment/settle` (see the module documentation for the checks).
pub(crate) async fn payment_settle(
    State(state): State<AppState>,
    req: OcRequest,
) -> HttpResult<Json<PaymentSettleResponse>> {
    let now = state.now();
    // 1. Body.
    let body: PaymentSettleRequest = req.json()?;
    if !body.proof.is_object() {
        return Err(invalid_field("proof", "proof must be a JSON object"));
    }
    let proof: Proof = serde_json::from_value(body.proof.clone())
        .map_err(|e| invalid_field("proof", format!("malformed proof: {e}")))?;
    // 2. Ours, and created by this caller (others' payments are not revealed).
    let payment = state
        .store
        .payment(&body.txid)?
        .filter(|p| p.creator == req.caller.ocid)
        .ok_or_else(|| payment_not_found(&body.txid))?;
    // 3. Completed: the same provider proof gets the stored answer again.
    if payment.state == PaymentState::Completed {
        return replayed_settle(&payment, proof.issuer, &proof.txid).map(Json);
    }
    // 4. Expired.
    if payment.state_at(now) == PaymentState::Expired {
        state.store.expire_payment(&payment.txid, now)?;
        return Err(payment_expired(&payment));
    }
    // 5. The issuer is one of the payment's providers (before fetching its key).
    if !payment.accepts.contains(&proof.issuer) {
        return Err(issuer_not_accepted(proof.issuer, &payment.accepts));
    }
    // 6–8. Signature with the issuer's key, addressed to us, not from the future: the shared
    //      proof checks, with the issuer in the sender's place (the payer hands it over).
    let issuer = state
        .resolver
        .resolve(proof.issuer)
        .await
        .map_err(|e| issuer_unresolved(proof.issuer, e))?;
    let incoming = check_incoming_proof(
        &req.body,
        &ProofReceiver {
            own_ocid: state.config.ocid,
            own_name: "this Merchant Gateway",
            accepted_issuers: &payment.accepts,
            sender: proof.issuer,
            sender_key: &issuer.public_key,
            now,
        },
    )?;
    // 9–. Reference, time window, money, single use; then complete.
    let settled = finish(&state, &incoming, &payment, now)?;
    Ok(Json(settled))
}

/// A proof arrived on `/transfer/webhook` whose `to.reference` is our pending payment
/// `payment`; checks 1–6 of [`crate::webhook`] passed. The provider's proof completes the
/// payment as `/payment/settle` would; a replay is `accepted` again.
pub(crate) fn settle_from_webhook(
    state: &AppState,
    incoming: &IncomingProof,
    payment: &StoredPayment,
    now: i64,
) -> HttpResult<WebhookResponse> {
    let proof = &incoming.proof;
    if !payment.accepts.contains(&proof.issuer) {
        return Err(issuer_not_accepted(proof.issuer, &payment.accepts));
    }
    if payment.state == PaymentState::Completed {
        replayed_settle(payment, proof.issuer, &proof.txid)?;
        return Ok(WebhookResponse {
            message: Some("already processed".into()),
            ..WebhookResponse::accepted(proof.txid.clone())
        });
    }
    if payment.state_at(now) == PaymentState::Expired {
        state.store.expire_payment(&payment.txid, now)?;
        tracing::warn!(payment = %payment.txid, issuer = proof.issuer, txid = %proof.txid, "provider proof for an expired payment refused: review the provider's transfer for refund");
        return Err(payment_expired(payment));
    }
    finish(state, incoming, payment, now)?;
    Ok(WebhookResponse {
        message: Some(format!("payment {} completed", payment.txid)),
        ..WebhookResponse::accepted(proof.txid.clone())
    })
}

/// The checks after the signature, then the completion, shared by `/payment/settle` and the
/// webhook: `to.reference` is the payment's txid, the timestamp not before the payment's
/// creation (less the skew), currency and amount; then our own proof is signed and the
/// payment completed once.
fn finish(
    state: &AppState,
    incoming: &IncomingProof,
    payment: &StoredPayment,
    now: i64,
) -> HttpResult<PaymentSettleResponse> {
    let proof = &incoming.proof;
    if proof.to.reference.as_deref() != Some(payment.txid.as_str()) {
        return Err(HttpError::new(
            ErrorCode::InvalidProof,
            format!(
                "proof.to.reference must be the pending payment's txid {}, got {:?}",
                payment.txid,
                proof.to.reference.as_deref().map(preview)
            ),
        )
        .with_details(json!({"field": "proof.to.reference", "expected": payment.txid})));
    }
    let earliest = payment.created_at.saturating_sub(PROOF_FUTURE_SKEW_SECS);
    if proof.timestamp < earliest {
        return Err(HttpError::new(
            ErrorCode::InvalidProof,
            format!(
                "proof timestamp {} is before the payment was created ({}): it cannot be this payment's transfer",
                proof.timestamp, payment.created_at
            ),
        )
        .with_details(json!({"field": "proof.timestamp", "earliest": earliest})));
    }
    let currency = Currency::parse(&payment.currency)
        .map_err(|e| HttpError::internal(format!("stored currency of {}: {e}", payment.txid)))?;
    let due = Amount::parse(&payment.amount)
        .map_err(|e| HttpError::internal(format!("stored amount of {}: {e}", payment.txid)))?;
    incoming.check_pays(&ExpectedPayment {
        accepts: Some(&payment.accepts),
        currency: &currency,
        amount: &due,
    })?;

    // Our own proof to the merchant: the provider's payer, the order (or the reference).
    let own_proof = Proof {
        txid: payment.txid.clone(),
        issuer: state.config.ocid,
        from: proof.from.clone(),
        to: ProofParty::new(
            payment.merchant,
            payment
                .order_id
                .clone()
                .or_else(|| payment.reference.clone()),
        ),
        amount: payment.amount.clone(),
        currency: payment.currency.clone(),
        timestamp: now,
        memo: None,
        extra: serde_json::Map::new(),
    };
    let own_value = serde_json::to_value(&own_proof).map_err(HttpError::internal)?;
    let signature = sign_object(&state.key, &own_value).map_err(HttpError::internal)?;
    let own_envelope = json!({"proof": own_value, "signature": signature}).to_string();
    let provider_envelope = incoming.envelope_json();
    let outcome = state.store.complete_payment(&Completion {
        txid: &payment.txid,
        provider_issuer: proof.issuer,
        provider_txid: &proof.txid,
        provider_envelope: &provider_envelope,
        own_envelope: &own_envelope,
        own_ocid: state.config.ocid,
        now,
    })?;
    match outcome {
        CompleteOutcome::Completed { payment, order } => {
            match (&order, &payment.order_id) {
                (Some(ProofOutcome::ExtraPayment { first_txid }), Some(order_id)) => {
                    tracing::warn!(payment = %payment.txid, order = %order_id, %first_txid, "third-party payment for an order already paid: recorded for refund");
                }
                (
                    Some(
                        other @ (ProofOutcome::TxidUsedForOrder(_)
                        | ProofOutcome::TxidUsedForPayment(_)
                        | ProofOutcome::OrderNotFound
                        | ProofOutcome::Replay),
                    ),
                    _,
                ) => {
                    tracing::error!(payment = %payment.txid, outcome = ?other, "recording the payment against its order did not mark it paid");
                }
                _ => {}
            }
            tracing::info!(payment = %payment.txid, issuer = proof.issuer, provider_txid = %proof.txid, order = ?payment.order_id, "third-party payment completed");
            state.paid.notify_waiters();
            stored_answer(&payment)
        }
        CompleteOutcome::AlreadyCompleted(done) => {
            replayed_settle(&done, proof.issuer, &proof.txid)
        }
        CompleteOutcome::Expired(payment) => Err(payment_expired(&payment)),
        CompleteOutcome::ProofUsed(used) => Err(proof_used(proof.issuer, &proof.txid, &used)),
        CompleteOutcome::NotFound => Err(payment_not_found(&payment.txid)),
    }
}

/// The answer for a completed payment asked again: the stored answer when it was completed
/// by the provider proof (issuer, txid), else 400 `INVALID_STATE`.
fn replayed_settle(
    payment: &StoredPayment,
    issuer: u64,
    provider_txid: &str,
) -> HttpResult<PaymentSettleResponse> {
    if payment.provider_issuer == Some(issuer)
        && payment.provider_txid.as_deref() == Some(provider_txid)
    {
        return stored_answer(payment);
    }
    Err(HttpError::new(
        ErrorCode::InvalidState,
        format!(
            "payment {} is already completed by another settlement proof",
            payment.txid
        ),
    )
    .with_details(json!({"status": "completed", "txid": payment.txid})))
}

/// Our stored proof of a completed payment, as `/payment/settle` answers it.
fn stored_answer(payment: &StoredPayment) -> HttpResult<PaymentSettleResponse> {
    let own = own_proof(payment)?;
    Ok(PaymentSettleResponse {
        status: PaymentStatus::Completed,
        txid: payment.txid.clone(),
        proof: own.0,
        signature: own.1,
    })
}

/// Our stored `{proof, signature}` of a completed payment.
fn own_proof(payment: &StoredPayment) -> HttpResult<(Value, String)> {
    let text = payment.proof_json.as_deref().ok_or_else(|| {
        HttpError::internal(format!("completed payment {} has no proof", payment.txid))
    })?;
    let mut envelope: Value = serde_json::from_str(text)
        .map_err(|e| HttpError::internal(format!("stored proof of {}: {e}", payment.txid)))?;
    let signature = envelope["signature"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| HttpError::internal(format!("stored proof of {}", payment.txid)))?;
    Ok((envelope["proof"].take(), signature))
}

/// `GET /verify/{txid}`: a payment's state, for its creator only.
pub(crate) async fn verify_txid(
    State(state): State<AppState>,
    Path(txid): Path<String>,
    req: OcRequest,
) -> HttpResult<Json<VerifyResponse>> {
    let now = state.now();
    let payment = state
        .store
        .payment(&txid)?
        .filter(|p| p.creator == req.caller.ocid)
        .ok_or_else(|| {
            HttpError::new(
                ErrorCode::TxidNotFound,
                format!(
                    "no transaction {:?} of yours at this Merchant Gateway",
                    preview(&txid)
                ),
            )
        })?;
    let empty = VerifyResponse {
        status: VerifyStatus::Expired,
        txid: Some(payment.txid.clone()),
        proof: None,
        signature: None,
        amount: None,
        currency: None,
        created_at: None,
        expires_at: None,
    };
    Ok(Json(match payment.state_at(now) {
        PaymentState::Completed => {
            let (proof, signature) = own_proof(&payment)?;
            VerifyResponse {
                status: VerifyStatus::Completed,
                proof: Some(proof),
                signature: Some(signature),
                ..empty
            }
        }
        PaymentState::PendingSettlement => VerifyResponse {
            status: VerifyStatus::Pending,
            amount: Some(payment.amount.clone()),
            currency: Some(payment.currency.clone()),
            created_at: Some(payment.created_at),
            expires_at: Some(payment.expires_at),
            ..empty
        },
        PaymentState::Expired => empty,
    }))
}

/// A payment as the library reports it ([`crate::RunningMerchant::payment`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    /// `mgp_` + 32 hex.
    pub txid: String,
    /// Who created it (the payer's gateway).
    pub creator: u64,
    /// The creator's reference.
    pub reference: Option<String>,
    /// The amount, as the creator sent it.
    pub amount: String,
    /// ISO 4217 code.
    pub currency: String,
    /// The order it pays, if any.
    pub order_id: Option<String>,
    /// The settlement providers whose proofs may settle it.
    pub accepts: Vec<u64>,
    /// `pending_settlement`, `completed` or `expired` (a pending payment past `expiresAt`).
    pub status: PaymentStatus,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// The provider's proof that settled it, as received.
    pub provider_proof: Option<SignedProof>,
    /// Our own proof to the merchant.
    pub proof: Option<SignedProof>,
    /// When it was completed.
    pub completed_at: Option<i64>,
}

impl PaymentRecord {
    /// The record of a stored payment at `now`.
    pub(crate) fn of(
        payment: &StoredPayment,
        now: i64,
    ) -> Result<PaymentRecord, crate::MerchantError> {
        let parse = |text: &Option<String>| -> Result<Option<SignedProof>, crate::MerchantError> {
            text.as_deref()
                .map(|t| {
                    serde_json::from_str(t).map_err(|e| {
                        crate::MerchantError::Store(format!(
                            "stored proof of {}: {e}",
                            payment.txid
                        ))
                    })
                })
                .transpose()
        };
        Ok(PaymentRecord {
            txid: payment.txid.clone(),
            creator: payment.creator,
            reference: payment.reference.clone(),
            amount: payment.amount.clone(),
            currency: payment.currency.clone(),
            order_id: payment.order_id.clone(),
            accepts: payment.accepts.clone(),
            status: create_answer(payment, now).status,
            created_at: payment.created_at,
            expires_at: payment.expires_at,
            provider_proof: parse(&payment.provider_proof_json)?,
            proof: parse(&payment.proof_json)?,
            completed_at: payment.completed_at,
        })
    }
}

fn payment_not_found(txid: &str) -> HttpError {
    HttpError::new(
        ErrorCode::PaymentNotFound,
        format!(
            "no pending payment {:?} of yours at this Merchant Gateway; create one with POST /payment/create",
            preview(txid)
        ),
    )
}

fn payment_expired(payment: &StoredPayment) -> HttpError {
    HttpError::new(
        ErrorCode::PaymentExpired,
        format!(
            "payment {} expired at {}; create a new payment",
            payment.txid, payment.expires_at
        ),
    )
    .with_details(json!({"txid": payment.txid, "expiresAt": payment.expires_at}))
}

fn issuer_not_accepted(issuer: u64, accepts: &[u64]) -> HttpError {
    HttpError::new(
        ErrorCode::IssuerNotAccepted,
        format!("proof issuer OCID {issuer} is not a settlement provider of this payment"),
    )
    .with_details(json!({"providedIssuer": issuer, "acceptedIssuers": accepts}))
}

/// The issuer's key cannot be had: unknown to our directory (its signature cannot be
/// checked: 400 `PROOF_SIGNATURE_INVALID`), or its metadata unavailable (502, retry later).
fn issuer_unresolved(issuer: u64, e: ResolveError) -> HttpError {
    match e {
        ResolveError::Unknown(_) => HttpError::new(
            ErrorCode::ProofSignatureInvalid,
            format!("proof issuer OCID {issuer} is not in this merchant's directory: its signature cannot be checked"),
        ),
        other => HttpError(other.to_api_error()),
    }
}

fn proof_used(issuer: u64, provider_txid: &str, used: &ProofUse) -> HttpError {
    let (what, details) = match used {
        ProofUse::Order(id) => (format!("order {id}"), json!({"orderId": id})),
        ProofUse::Payment(txid) => (format!("payment {txid}"), json!({"paymentTxid": txid})),
    };
    HttpError::new(
        ErrorCode::ProofAlreadyProcessed,
        format!(
            "txid {:?} of issuer {issuer} was already used for {what}",
            preview(provider_txid)
        ),
    )
    .with_details(json!({"txid": provider_txid, "usedFor": details}))
}
