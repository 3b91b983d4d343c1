//! Settlement rules: when a confirmed payment is refused (unknown session, another account's
//! session, wrong state, expired), when it is a retry (same idempotency key, or already paid),
//! what a payment debits and credits, and the plan the store commits in one transaction.

use crate::store::{
    AttachedOrder, NewEvent, NewWebhook, Session, SessionStatus, SettleKey, SettleOutcome,
    Settlement, SettlementPlan, Transfer,
};

use super::session::EVENT_PAYMENT_STATUS;

/// What to do with a settlement request.
#[allow(clippy::large_enum_variant)] // built once per request; boxing buys nothing
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettleDecision {
    /// Pay: commit the plan built from this (`order_received`) session.
    Pay(Session),
    /// Answer this without writing.
    Answer(SettleOutcome),
}

/// Does a recorded idempotency key belong to this very payment (same account, same session)?
/// A key recorded for another account or session is ignored, never trusted.
pub fn key_matches(seen: Option<&SettleKey>, account_id: &str, session_id: &str) -> bool {
    matches!(
        seen,
        Some(SettleKey { account_id: Some(a), session_id: Some(s) })
            if a == account_id && s == session_id
    )
}

/// Decides a settlement from the stored state: a retry with the same key returns the stored
/// session as `AlreadyPaid`; then unknown → `NotFound`, another account's → `Forbidden`,
/// paid → `AlreadyPaid`, `order_received` past expiry → `InvalidState(Expired)`, any other
/// status → `InvalidState(status)`; an unexpired `order_received` session is paid.
pub fn decide(
    seen: Option<&SettleKey>,
    stored: Option<&Session>,
    account_id: &str,
    now: i64,
) -> SettleDecision {
    let Some(s) = stored else {
        return SettleDecision::Answer(SettleOutcome::NotFound);
    };
    if key_matches(seen, account_id, &s.id) {
        return SettleDecision::Answer(SettleOutcome::AlreadyPaid(s.clone()));
    }
    if s.account_id.as_deref() != Some(account_id) {
        return SettleDecision::Answer(SettleOutcome::Forbidden);
    }
    match s.status {
        SessionStatus::Paid => SettleDecision::Answer(SettleOutcome::AlreadyPaid(s.clone())),
        SessionStatus::OrderReceived if s.expires_at > now => SettleDecision::Pay(s.clone()),
        SessionStatus::OrderReceived => {
            SettleDecision::Answer(SettleOutcome::InvalidState(SessionStatus::Expired))
        }
        other => SettleDecision::Answer(SettleOutcome::InvalidState(other)),
    }
}

/// What a payment moves: the order's amount, in the order's currency, from the payer to the
/// credited account (the merchant, the Merchant Gateway or a partner's reserve clearing).
pub fn payment_transfer(payer: &str, credited: &str, order: &AttachedOrder) -> Transfer {
    Transfer {
        from_account: payer.to_owned(),
        to_account: credited.to_owned(),
        currency: order.currency.clone(),
        minor: order.amount_minor,
    }
}

/// The session once paid: status `paid`, the txid, the paid time and the proof.
pub fn paid(session: &Session, txid: &str, proof_json: &str, now: i64) -> Session {
    let mut paid = session.clone();
    paid.status = SessionStatus::Paid;
    paid.txid = Some(txid.to_owned());
    paid.paid_at = Some(now);
    paid.proof_json = Some(proof_json.to_owned());
    paid
}

/// The one write of a payment decided by [`decide`]: session → paid, the transfers under the
/// txid, the proof webhook, the `payment_status` event and the idempotency key.
pub fn plan(current: &Session, s: &Settlement) -> SettlementPlan {
    SettlementPlan {
        paid: paid(current, &s.txid, &s.proof_json, s.now),
        payer: s.account_id.clone(),
        consent_json: s.consent_json.clone(),
        reference: s.txid.clone(),
        transfers: s.transfers.clone(),
        webhook: s.webhook.as_ref().map(|(url, ocid)| NewWebhook {
            txid: s.txid.clone(),
            target_ocid: *ocid,
            url: url.clone(),
            body: s.proof_json.clone(),
        }),
        event: NewEvent {
            account_id: s.account_id.clone(),
            kind: EVENT_PAYMENT_STATUS.to_owned(),
            payload_json: s.event_json.clone(),
            now: s.now,
        },
        idempotency_key: s.idempotency_key.clone(),
        now: s.now,
    }
}
