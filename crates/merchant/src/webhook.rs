//! `POST /transfer/webhook`: proofs of payment arrive here, signed by the gateway that issued
//! them, and are checked as protocol notes §5.5 says before an order is marked paid.
//!
//! After request authentication ([`crate::auth::OcRequest`]) the checks run in this order,
//! each with its own error (all 400 unless noted):
//!
//! | # | check | error |
//! |---|---|---|
//! | 1 | body is `{proof: {...}, signature: "..."}` with a well-formed proof | `INVALID_PROOF` |
//! | 2 | `proof.issuer` is in the merchant's `accepts` | `ISSUER_NOT_ACCEPTED` |
//! | 3 | the authenticated sender (`X-OC-ID`) is the issuer | `INVALID_PROOF` |
//! | 4 | the signature verifies over the raw proof with the issuer's metadata key | `PROOF_SIGNATURE_INVALID` |
//! | 5 | `proof.to.ocid` is this merchant | `INVALID_PROOF` |
//! | 6 | `proof.timestamp` is not more than 300 s in the future | `INVALID_PROOF` |
//! | 7 | `proof.to.reference` names one of our orders | `INVALID_PROOF` (absent), `ORDER_NOT_FOUND` |
//! | 8 | the issuer is in that order's signed `accepts` | `ISSUER_NOT_ACCEPTED` |
//! | 9 | currency equal; amount a valid amount of that currency (no more fraction digits than it has), then numerically equal (`"15.0" == "15.00"`) | `CURRENCY_MISMATCH`, `INVALID_PROOF`, `AMOUNT_MISMATCH` |
//! | 10 | dedupe on (issuer, txid) | replay for the same order: 200 `accepted` ("already processed"), nothing counted again; txid already used for another order: 409 `PROOF_ALREADY_PROCESSED` |
//!
//! An accepted proof marks its order paid (waking [`crate::RunningMerchant::wait_paid`]). A
//! valid proof for an order that is expired or cancelled still marks it paid: the money has
//! moved, and refusing the proof would not return it. A second, different txid for an order
//! that is already paid is recorded as an extra payment to refund and answered `accepted`;
//! the order keeps its first txid.

use axum::extract::State;
use axum::Json;
use opencharge_protocol::error_code::ErrorCode;
use opencharge_protocol::keys::VerifyOptions;
use opencharge_protocol::money::{Amount, Currency};
use opencharge_protocol::signing::verify_proof;
use opencharge_protocol::types::{Order, Proof, WebhookResponse};
use serde_json::{json, Value};

use crate::auth::OcRequest;
use crate::error::{HttpError, HttpResult};
use crate::state::AppState;
use crate::store::{ProofInsert, ProofOutcome, StoredStatus};

/// How far in the future a proof's `timestamp` may be (clock skew), seconds.
pub const PROOF_FUTURE_SKEW_SECS: i64 = 300;

fn invalid_proof(message: impl Into<String>) -> HttpError {
    HttpError::new(ErrorCode::InvalidProof, message)
}

fn issuer_not_accepted(issuer: u64, accepted: &[u64], scope: &str) -> HttpError {
    HttpError::new(
        ErrorCode::IssuerNotAccepted,
        format!("Proof issuer OCID {issuer} is not in accepted settlement sources{scope}"),
    )
    .with_details(json!({"providedIssuer": issuer, "acceptedIssuers": accepted}))
}

/// `POST /transfer/webhook` (see the module documentation for the checks).
pub(crate) async fn transfer_webhook(
    State(state): State<AppState>,
    req: OcRequest,
) -> HttpResult<Json<WebhookResponse>> {
    // 1. Shape.
    let raw: Value = serde_json::from_slice(&req.body)
        .map_err(|e| invalid_proof(format!("body is not valid JSON: {e}")))?;
    let (Some(raw_proof), Some(signature)) = (
        raw.get("proof").filter(|p| p.is_object()),
        raw.get("signature").and_then(Value::as_str),
    ) else {
        return Err(invalid_proof(
            "body must be {\"proof\": {...}, \"signature\": \"...\"}",
        ));
    };
    let proof: Proof = serde_json::from_value(raw_proof.clone())
        .map_err(|e| invalid_proof(format!("malformed proof: {e}")))?;

    // 2. Issuer accepted.
    let accepted = &state.config.accepts;
    if !accepted.contains(&proof.issuer) {
        return Err(issuer_not_accepted(proof.issuer, accepted, ""));
    }
    // 3. The sender is the issuer.
    let sender = &req.caller;
    if sender.ocid != proof.issuer {
        return Err(invalid_proof(format!(
            "sender {} is not the proof issuer {}",
            sender.ocid, proof.issuer
        )));
    }
    // 4. Signature with the issuer's metadata key (the sender's verified key), over the proof
    //    exactly as received.
    verify_proof(
        raw_proof,
        signature,
        proof.issuer,
        &sender.public_key,
        VerifyOptions::STRICT,
    )
    .map_err(|e| {
        HttpError::new(
            ErrorCode::ProofSignatureInvalid,
            format!(
                "proof signature does not verify with the key of OCID {}: {e}",
                proof.issuer
            ),
        )
    })?;
    // 5. Addressed to us.
    let own = state.config.ocid;
    if proof.to.ocid != own {
        return Err(invalid_proof(format!(
            "proof pays OCID {}, not this merchant ({own})",
            proof.to.ocid
        ))
        .with_details(json!({"field": "proof.to.ocid"})));
    }
    // 6. Not from the future.
    let now = state.now();
    if proof.timestamp > now.saturating_add(PROOF_FUTURE_SKEW_SECS) {
        return Err(invalid_proof(format!(
            "proof timestamp {} is in the future (now {now})",
            proof.timestamp
        )));
    }
    // 7. One of our orders.
    let reference = proof
        .to
        .reference
        .as_deref()
        .ok_or_else(|| invalid_proof("proof.to.reference must name the order paid"))?;
    let stored = state.store.order(reference)?.ok_or_else(|| {
        HttpError::new(
            ErrorCode::OrderNotFound,
            format!("no order {:?} at this merchant", preview(reference)),
        )
        .with_status(400)
    })?;
    let order: Order = serde_json::from_str(&stored.order_json)
        .map_err(|e| HttpError::internal(format!("stored order {}: {e}", stored.id)))?;
    // 8. The order's own signed accepts.
    if let Some(order_accepts) = order.accepts.as_ref().filter(|a| !a.is_empty()) {
        if !order_accepts.contains(&proof.issuer) {
            return Err(issuer_not_accepted(
                proof.issuer,
                order_accepts,
                " of this order",
            ));
        }
    }
    // 9. Currency, then amount (numerically).
    if proof.currency != stored.currency {
        return Err(HttpError::new(
            ErrorCode::CurrencyMismatch,
            format!(
                "proof currency {:?} is not the order's {}",
                preview(&proof.currency),
                stored.currency
            ),
        )
        .with_details(json!({"expected": stored.currency, "received": proof.currency})));
    }
    let paid =
        Amount::parse(&proof.amount).map_err(|e| invalid_proof(format!("proof amount: {e}")))?;
    let currency = Currency::parse(&stored.currency)
        .map_err(|e| HttpError::internal(format!("stored currency of {}: {e}", stored.id)))?;
    paid.check_currency(&currency)
        .map_err(|e| invalid_proof(format!("proof amount: {e}")))?;
    let due = Amount::parse(&stored.amount)
        .map_err(|e| HttpError::internal(format!("stored amount of {}: {e}", stored.id)))?;
    if paid != due {
        return Err(HttpError::new(
            ErrorCode::AmountMismatch,
            format!(
                "proof amount {} {} is not the order's {} {}",
                paid.as_str(),
                proof.currency,
                stored.amount,
                stored.currency
            ),
        )
        .with_details(json!({"expected": stored.amount, "received": proof.amount})));
    }

    // 10. Dedupe and record, atomically.
    let envelope = json!({"proof": raw_proof, "signature": signature}).to_string();
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
        ..WebhookResponse::accepted(proof.txid)
    }))
}

/// The first 80 characters of untrusted text, for messages (callers `{:?}`-escape it).
fn preview(s: &str) -> String {
    s.chars().take(80).collect()
}
