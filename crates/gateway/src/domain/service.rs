//! The session and payment operations the API calls: read the stored state, let the rules of
//! [`super::session`] and [`super::settlement`] decide, write with one conditional store call,
//! and decide again if another request changed the session in between.

use crate::store::{
    AttachedOrder, ClaimOutcome, JobState, NewEvent, NonceUse, PlanOutcome, SessionStatus,
    SessionUpdate, SettleOutcome, Settlement, Store, StoreError, StoreResult, UpdateOutcome,
};

use super::session::{self, Decision, EVENT_PAYMENT_REQUEST, EVENT_PAYMENT_STATUS};
use super::settlement::{self, SettleDecision};

/// How often an operation re-reads and decides again after losing a race. Sessions only move
/// forward (at most three transitions), so a few rounds always settle the answer.
const MAX_ROUNDS: usize = 8;

/// The error when a session keeps changing under an operation (a bug or a broken backend).
fn unstable(id: &str) -> StoreError {
    StoreError(format!("session {id} kept changing"))
}

/// Whether an update without a nonce was written (`NonceReused` cannot happen without one).
fn applied(outcome: UpdateOutcome, id: &str) -> StoreResult<bool> {
    match outcome {
        UpdateOutcome::Applied => Ok(true),
        UpdateOutcome::Refused => Ok(false),
        UpdateOutcome::NonceReused => Err(StoreError(format!(
            "session {id}: the store reported a reused nonce for an update that carried none"
        ))),
    }
}

/// Attaches `order` to an unexpired `pending` wallet QR session and appends the
/// `payment_request` event for its account, atomically: concurrent claims have exactly one
/// winner, the others get `Used`. The merchant request's `nonce`, when given, is recorded in
/// the claim's transaction: a nonce used before claims nothing (`NonceReused`).
pub async fn claim_session<S: Store + ?Sized>(
    store: &S,
    id: &str,
    order: &AttachedOrder,
    submitted_by: u64,
    event_json: &str,
    nonce: Option<&NonceUse>,
    now: i64,
) -> StoreResult<ClaimOutcome> {
    for _ in 0..MAX_ROUNDS {
        let stored = store.session(id).await?;
        let claimed = match session::decide_claim(stored.as_ref(), order, submitted_by, now) {
            Decision::Answer(outcome) => return Ok(outcome),
            Decision::Write(claimed) => claimed,
        };
        let account_id = claimed
            .account_id
            .clone()
            .ok_or_else(|| StoreError(format!("wallet QR session {id} has no account")))?;
        let update = SessionUpdate {
            expected_account: Some(account_id.clone()),
            expected_status: SessionStatus::Pending,
            event: Some(NewEvent {
                account_id,
                kind: EVENT_PAYMENT_REQUEST.to_owned(),
                payload_json: event_json.to_owned(),
                now,
            }),
            session: claimed,
            nonce: nonce.cloned(),
        };
        match store.update_session_if(&update).await? {
            UpdateOutcome::Applied => return Ok(ClaimOutcome::Claimed(update.session)),
            UpdateOutcome::NonceReused => return Ok(ClaimOutcome::NonceReused),
            UpdateOutcome::Refused => {}
        }
    }
    Err(unstable(id))
}

/// Binds an open checkout session (no account yet, `order_received`, unexpired) to
/// `account_id` and appends the `payment_request` event; a re-open by the same account
/// returns the session without a second event.
pub async fn attach_checkout<S: Store + ?Sized>(
    store: &S,
    id: &str,
    account_id: &str,
    event_json: &str,
    now: i64,
) -> StoreResult<ClaimOutcome> {
    for _ in 0..MAX_ROUNDS {
        let stored = store.session(id).await?;
        let attached = match session::decide_attach(stored.as_ref(), account_id, now) {
            Decision::Answer(outcome) => return Ok(outcome),
            Decision::Write(attached) => attached,
        };
        let update = SessionUpdate {
            session: attached,
            expected_status: SessionStatus::OrderReceived,
            expected_account: None,
            event: Some(NewEvent {
                account_id: account_id.to_owned(),
                kind: EVENT_PAYMENT_REQUEST.to_owned(),
                payload_json: event_json.to_owned(),
                now,
            }),
            nonce: None,
        };
        if applied(store.update_session_if(&update).await?, id)? {
            return Ok(ClaimOutcome::Claimed(update.session));
        }
    }
    Err(unstable(id))
}

/// Marks an `order_received` session of `account_id` declined and appends the
/// `payment_status` event; a retry answers `Declined` again without a second event. A session
/// whose third-party settlement is under way or done (a job that is active or paid: the user
/// confirmed first) is not declined: `InvalidState(order_received)` or the paid state.
pub async fn decline_session<S: Store + ?Sized>(
    store: &S,
    id: &str,
    account_id: &str,
    reason: &str,
    event_json: &str,
    now: i64,
) -> StoreResult<SettleOutcome> {
    if let Some(job) = store.third_party_job(id).await? {
        let stored = store.session(id).await?;
        let owned = stored
            .as_ref()
            .is_some_and(|s| s.account_id.as_deref() == Some(account_id));
        if owned && (job.state.is_active() || job.state == JobState::Paid) {
            return Ok(SettleOutcome::InvalidState(match stored {
                Some(s) if s.status == SessionStatus::Paid => SessionStatus::Paid,
                _ => SessionStatus::OrderReceived,
            }));
        }
    }
    for _ in 0..MAX_ROUNDS {
        let stored = store.session(id).await?;
        let declined = match session::decide_decline(stored.as_ref(), account_id, reason, now) {
            Decision::Answer(outcome) => return Ok(outcome),
            Decision::Write(declined) => declined,
        };
        let update = SessionUpdate {
            session: declined,
            expected_status: SessionStatus::OrderReceived,
            expected_account: Some(account_id.to_owned()),
            event: Some(NewEvent {
                account_id: account_id.to_owned(),
                kind: EVENT_PAYMENT_STATUS.to_owned(),
                payload_json: event_json.to_owned(),
                now,
            }),
            nonce: None,
        };
        if applied(store.update_session_if(&update).await?, id)? {
            return Ok(SettleOutcome::Declined(update.session));
        }
    }
    Err(unstable(id))
}

/// Pays a session exactly once: a retry with the same idempotency key (same account and
/// session) or a second key on a paid session returns `AlreadyPaid` and changes nothing;
/// otherwise the whole plan (ledger, session → paid, webhook, event, key) is committed in one
/// store transaction, or nothing is (`InsufficientFunds`).
pub async fn settle_payment<S: Store + ?Sized>(
    store: &S,
    s: &Settlement,
) -> StoreResult<SettleOutcome> {
    for _ in 0..MAX_ROUNDS {
        let seen = store.settle_key(&s.idempotency_key).await?;
        let stored = store.session(&s.session_id).await?;
        if stored.is_none() && settlement::key_matches(seen.as_ref(), &s.account_id, &s.session_id)
        {
            return Err(StoreError(format!("session {} vanished", s.session_id)));
        }
        let current = match settlement::decide(seen.as_ref(), stored.as_ref(), &s.account_id, s.now)
        {
            SettleDecision::Answer(outcome) => return Ok(outcome),
            SettleDecision::Pay(current) => current,
        };
        match store
            .apply_settlement(&settlement::plan(&current, s))
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
    Err(unstable(&s.session_id))
}
