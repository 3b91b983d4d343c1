//! The payment-session state machine: which transitions exist, when a session is expired, and
//! what claiming, attaching a checkout and declining do to a session (pure functions).
//!
//! ```text
//! pending ──claim──▶ order_received ──settle──▶ paid
//!    │                    │  └──────decline────▶ declined
//!    └──────expiry────────┴─────────expiry─────▶ expired
//! ```
//! Checkout and scanned merchant sessions are born `order_received`.

use crate::store::{AttachedOrder, ClaimOutcome, Flow, Session, SessionStatus, SettleOutcome};

/// Event kind appended when a prompt appears (order claimed, checkout opened).
pub const EVENT_PAYMENT_REQUEST: &str = "payment_request";
/// Event kind appended when a prompt is resolved (paid, declined).
pub const EVENT_PAYMENT_STATUS: &str = "payment_status";

/// The statuses that expire when their time is up (the unresolved ones).
pub const EXPIRABLE: [SessionStatus; 2] = [SessionStatus::Pending, SessionStatus::OrderReceived];

/// Is `from → to` a transition of the state machine?
pub fn can_transition(from: SessionStatus, to: SessionStatus) -> bool {
    use SessionStatus::*;
    matches!(
        (from, to),
        (Pending, OrderReceived)
            | (Pending, Expired)
            | (OrderReceived, Paid)
            | (OrderReceived, Declined)
            | (OrderReceived, Expired)
    )
}

/// Is this status final (no transition leaves it)?
pub fn is_final(status: SessionStatus) -> bool {
    matches!(
        status,
        SessionStatus::Paid | SessionStatus::Declined | SessionStatus::Expired
    )
}

/// Is the session past its expiry, either marked `expired` or unresolved with
/// `expires_at <= now` (expiry is exclusive: at `expires_at` it is expired)?
pub fn is_expired(s: &Session, now: i64) -> bool {
    s.status == SessionStatus::Expired || (EXPIRABLE.contains(&s.status) && s.expires_at <= now)
}

/// What to do with a claim, an attach or a decline request.
#[allow(clippy::large_enum_variant)] // built once per request; boxing buys nothing
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<T> {
    /// Write this new session (conditional on the state it was read in).
    Write(Session),
    /// Answer this without writing.
    Answer(T),
}

/// Claim of a wallet QR session by a merchant's order: only an unexpired `pending` wallet QR
/// session can be claimed; other flows are not found.
pub fn decide_claim(
    stored: Option<&Session>,
    order: &AttachedOrder,
    submitted_by: u64,
    now: i64,
) -> Decision<ClaimOutcome> {
    let s = match stored {
        Some(s) if s.flow == Flow::WalletQr => s,
        _ => return Decision::Answer(ClaimOutcome::NotFound),
    };
    if s.status == SessionStatus::Pending && !is_expired(s, now) {
        return Decision::Write(s.clone().with_order(order.clone(), submitted_by));
    }
    if is_expired(s, now) {
        Decision::Answer(ClaimOutcome::Expired)
    } else {
        Decision::Answer(ClaimOutcome::Used)
    }
}

/// A wallet opens a checkout session: an unexpired `order_received` checkout with no account
/// is bound to `account_id`; the account that holds it may re-open it (idempotent, whatever
/// the status); anyone else finds it used. Other flows are not found.
pub fn decide_attach(
    stored: Option<&Session>,
    account_id: &str,
    now: i64,
) -> Decision<ClaimOutcome> {
    let s = match stored {
        Some(s) if s.flow == Flow::Checkout => s,
        _ => return Decision::Answer(ClaimOutcome::NotFound),
    };
    if is_expired(s, now) {
        return Decision::Answer(ClaimOutcome::Expired);
    }
    if s.status == SessionStatus::OrderReceived && s.account_id.is_none() {
        let mut attached = s.clone();
        attached.account_id = Some(account_id.to_owned());
        return Decision::Write(attached);
    }
    if s.account_id.as_deref() == Some(account_id) {
        Decision::Answer(ClaimOutcome::Claimed(s.clone()))
    } else {
        Decision::Answer(ClaimOutcome::Used)
    }
}

/// The user declines a prompt: only the owner, only an unexpired `order_received` session. A
/// declined session answers `Declined` again (idempotent retry), a paid one `AlreadyPaid`.
pub fn decide_decline(
    stored: Option<&Session>,
    account_id: &str,
    reason: &str,
    now: i64,
) -> Decision<SettleOutcome> {
    let Some(s) = stored else {
        return Decision::Answer(SettleOutcome::NotFound);
    };
    if s.account_id.as_deref() != Some(account_id) {
        return Decision::Answer(SettleOutcome::Forbidden);
    }
    match s.status {
        SessionStatus::Declined => Decision::Answer(SettleOutcome::Declined(s.clone())),
        SessionStatus::Paid => Decision::Answer(SettleOutcome::AlreadyPaid(s.clone())),
        SessionStatus::OrderReceived if s.expires_at > now => {
            let mut declined = s.clone();
            declined.status = SessionStatus::Declined;
            declined.decline_reason = Some(reason.to_owned());
            Decision::Write(declined)
        }
        SessionStatus::OrderReceived => {
            Decision::Answer(SettleOutcome::InvalidState(SessionStatus::Expired))
        }
        other => Decision::Answer(SettleOutcome::InvalidState(other)),
    }
}
