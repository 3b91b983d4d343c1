//! `POST /transfer/webhook`: proofs of payment arrive here, signed by the gateway that issued
//! them, and are checked as protocol notes §5.5 says before an order is marked paid.
//!
//! After request authentication ([`crate::auth::OcRequest`]) the checks run in this order,
//! each with its own error (all 400 unless noted). Checks 1–6, 8 and 9 are the protocol's
//! shared proof checks ([`opencharge_protocol::proof`]); 7 and 10 need the merchant's store:
//!
//! | # | check | error |
//! |---|---|---|
//! | 1 | body is `{proof: {...}, signature: "..."}` with a well-formed proof | `INVALID_PROOF` |
//! | 2 | `proof.issuer` is in the merchant's `accepts` or its settlement providers (the metadata's `settlement.accepts`) | `ISSUER_NOT_ACCEPTED` |
//! | 3 | the authenticated sender (`X-OC-ID`) is the issuer | `INVALID_PROOF` |
//! | 4 | the signature verifies over the raw proof with the issuer's metadata key | `PROOF_SIGNATURE_INVALID` |
//! | 5 | `proof.to.ocid` is this merchant | `INVALID_PROOF` |
//! | 6 | `proof.timestamp` is not more than 300 s in the future | `INVALID_PROOF` |
//! | 7 | `proof.to.reference` names one of our third-party payments (its txid: the proof settles it, see below), else one of our orders, whose issuer must be in `accepts` | `INVALID_PROOF` (absent), `ORDER_NOT_FOUND`, `ISSUER_NOT_ACCEPTED` |
//! | 8 | the issuer is in that order's signed `accepts` | `ISSUER_NOT_ACCEPTED` |
//! | 9 | currency equal; amount a valid amount of that currency (no more fraction digits than it has), then numerically equal (`"15.0" == "15.00"`) | `CURRENCY_MISMATCH`, `INVALID_PROOF`, `AMOUNT_MISMATCH` |
//! | 10 | dedupe on (issuer, txid) | replay for the same order: 200 `accepted` ("already processed"), nothing counted again; txid already used for another order or a third-party payment: 409 `PROOF_ALREADY_PROCESSED` |
//!
//! A settlement provider's proof for a pending third-party payment (`to.reference` = its
//! `mgp_` txid) completes that payment exactly as `POST /payment/settle` does
//! ([`crate::payments`]): issuer one of the payment's providers (`ISSUER_NOT_ACCEPTED`), not
//! completed by another proof (`INVALID_STATE`; the same proof again is `accepted`, "already
//! processed"), not expired (`PAYMENT_EXPIRED`), timestamp not before its creation less 300 s,
//! currency and amount, single use (409). The sender must still be the issuer.
//!
//! An accepted proof marks its order paid (waking [`crate::RunningMerchant::wait_paid`]). A
//! valid proof for an order that is expired or cancelled still marks it paid: the money has
//! moved, and refusing the proof would not return it. A second, different txid for an order
//! that is already paid is recorded as an extra payment to refund and answered `accepted`;
//! the order keeps its first txid.

use axum::extract::State;
use axum::Json;
use opencharge_protocol::error_code::ErrorCode;
use opencharge_protocol::money::{Amount, Currency};
use opencharge_protocol::proof::{
    check_incoming_proof, ExpectedPayment, ProofReceiver, ProofRejection,
};
use opencharge_protocol::types::{Order, WebhookResponse};
use serde_json::json;

use crate::auth::OcRequest;
use crate::error::{HttpError, HttpResult};
use crate::payments::settle_from_webhook;
use crate::state::AppState;
use crate::store::{ProofInsert, ProofOutcome, StoredStatus};

pub use opencharge_protocol::proof::PROOF_FUTURE_SKEW_SECS;

/// `POST /transfer/webhook` (see the module documentation for the checks).
pub(crate) async fn transfer_webhook(
    State(state): State<AppState>,
    req: OcRequest,
) -> HttpResult<Json<WebhookResponse>> {
    // 1-6. Shape, issuer accepted, sender is the issuer, signature, addressed to us, not
    //      from the future: the protocol's shared proof checks.
    let now = state.now();
    let incoming = check_incoming_proof(
        &req.body,
        &ProofReceiver {
            own_ocid: state.config.ocid,
            own_name: "this merchant",
            accepted_issuers: &state.config.published_accepts(),
            sender: req.caller.ocid,
            sender_key: &req.caller.public_key,
            now,
        },
    )?;
    let proof = &incoming.proof;
    // 7. One of our third-party payments (its txid), else one of our orders.
    let reference = incoming.reference()?;
    if let Some(payment) = state.store.payment(reference)? {
        return settle_from_webhook(&state, &incoming, &payment, now).map(Json);
    }
    if !state.config.accepts.contains(&proof.issuer) {
        return Err(ProofRejection::IssuerNotAccepted {
            issuer: proof.issuer,
            accepted: state.config.accepts.clone(),
            by_order: false,
        }
        .into());
    }
    let stored = state.store.order(reference)?.ok_or_else(|| {
        HttpError::new(
            ErrorCode::OrderNotFound,
            format!("no order {:?} at this merchant", preview(reference)),
        )
        .with_status(400)
    })?;
    let order: Order = serde_json::from_str(&stored.order_json)
        .map_err(|e| HttpError::internal(format!("stored order {}: {e}", stored.id)))?;
    // 8-9. The order's own signed accepts, then currency, then amount (numerically).
    let currency = Currency::parse(&stored.currency)
        .map_err(|e| HttpError::internal(format!("stored currency of {}: {e}", stored.id)))?;
    let due = Amount::parse(&stored.amount)
        .map_err(|e| HttpError::internal(format!("stored amount of {}: {e}", stored.id)))?;
    incoming.check_pays(&ExpectedPayment {
        accepts: order.accepts.as_deref(),
        currency: &currency,
        amount: &due,
    })?;

    // 10. Dedupe and record, atomically.
    let envelope = incoming.envelope_json();
    let outcome = state.store.record_proof(&ProofInsert {
        issuer: proof.issuer,
        txid: &proof.txid,
        order_id: &stored.id,
        envelope_json: &envelope,
        paid_at: proof.timestamp,
        now,
    })?;
    let message = match outcome {
        ProofOutcome::Paid => {
            if stored.status != StoredStatus::Pending || now > stored.expires_at {
                tracing::warn!(order = %stored.id, txid = %proof.txid, "proof for an expired or cancelled order: marked paid, review for refund");
            }
            tracing::info!(order = %stored.id, txid = %proof.txid, issuer = proof.issuer, "order paid");
            state.paid.notify_waiters();
            "order paid".to_string()
        }
        ProofOutcome::Replay => {
            tracing::info!(order = %stored.id, txid = %proof.txid, "proof replayed; already processed");
            "already processed".to_string()
        }
        ProofOutcome::ExtraPayment { first_txid } => {
            tracing::warn!(order = %stored.id, txid = %proof.txid, %first_txid, "second payment for a paid order: recorded for refund");
            format!("order was already paid by {first_txid}; this payment is recorded for refund")
        }
        ProofOutcome::TxidUsedForOrder(other) => {
            return Err(HttpError::new(
                ErrorCode::ProofAlreadyProcessed,
                format!(
                    "txid {:?} of issuer {} was already used for another order",
                    preview(&proof.txid),
                    proof.issuer
                ),
            )
            .with_details(json!({"txid": proof.txid, "orderId": other})));
        }
        ProofOutcome::TxidUsedForPayment(payment) => {
            return Err(HttpError::new(
                ErrorCode::ProofAlreadyProcessed,
                format!(
                    "txid {:?} of issuer {} already settled third-party payment {payment}",
                    preview(&proof.txid),
                    proof.issuer
                ),
            )
            .with_details(json!({"txid": proof.txid, "paymentTxid": payment})));
        }
        ProofOutcome::OrderNotFound => {
            return Err(HttpError::new(
                ErrorCode::OrderNotFound,
                format!("no order {:?} at this merchant", preview(reference)),
            )
            .with_status(400));
        }
    };
    Ok(Json(WebhookResponse {
        message: Some(message),
        ..WebhookResponse::accepted(proof.txid.clone())
    }))
}

/// The first 80 characters of untrusted text, for messages (callers `{:?}`-escape it).
fn preview(s: &str) -> String {
    s.chars().take(80).collect()
}
