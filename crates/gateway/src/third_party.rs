//! Third-party settlement, the payer side (protocol notes §5.6 strategy 3): paying a merchant
//! whose gateway accepts neither our proofs nor a reserve with us, through a settlement
//! provider both accept. One durable job per session ([`crate::store::ThirdPartyJob`]):
//!
//! 1. one store transaction holds the payer's money (payer → [`HOLD_ACCOUNT`]) and creates
//!    the job, leased to the confirm request that runs it;
//! 2. `POST <MG>/payment/create` `{to: merchant, amount, currency, reference: <session id>,
//!    order}` → the pending txid and the providers the Merchant Gateway accepts; we pick the
//!    first one that is a configured partner (where we hold a reserve);
//! 3. `POST <provider>/transfer/create` `{from: {ocid: us, reference: "tp:<session id>"}, to:
//!    {ocid: MG, reference: <pending txid>}, amount, currency}` → the provider's proof;
//! 4. `POST <MG>/payment/settle` `{txid, proof, signature}` → the Merchant Gateway's proof to
//!    the merchant, verified with the MG's key;
//! 5. one store transaction: hold → `reserve-clearing:<provider>`, the session paid with the
//!    MG's proof as its receipt, the `payment_status` event (no webhook of ours: the MG
//!    notifies the merchant).
//!
//! Every answer is stored before the next step, and every remote call is idempotent by its
//! reference (the session id at the MG, `tp:<session id>` at the provider, the txid at the
//! settle), so a crash between two steps resumes from the stored state without paying twice.
//! A step that fails for a reason that may pass (network, 5xx, 401, 408, 429) leaves the job
//! for the worker ([`run_worker`], leased claims like the webhook queue) and the confirm
//! answers 503 `SETTLEMENT_PENDING`; a definite refusal (another 4xx, an unusable answer), an
//! expired pending payment or `third_party_max_attempts` failures end the job: one
//! transaction refunds the hold, declines (or expires) the session and keeps the job as the
//! operators' reconciliation record (`failed_reconcile` when money may have moved at the
//! provider).

use std::future::Future;
use std::time::Duration;

use futures_util::future::join_all;
use opencharge_protocol::app;
use opencharge_protocol::error_code::{ApiError, ErrorCode};
use opencharge_protocol::types::{
    Order, PaymentCreateRequest, PaymentCreateResponse, PaymentSettleRequest,
    PaymentSettleResponse, PaymentStatus, TransferCreateRequest, TransferOrderRef, TransferParty,
};
use reqwest::Method;
use serde_json::{json, Value};

use crate::error::{GatewayError, GatewayResult};
use crate::resolver::Party;
use crate::settlement::{check_signed_proof, find_provider, payment_status_event, same_amount};
use crate::state::AppState;
use crate::store::{
    AttachedOrder, JobFailed, JobFinish, JobPaid, JobState, JobStep, NewEvent, NewThirdPartyJob,
    Session, SessionStatus, SettleOutcome, StartOutcome, ThirdPartyJob,
};

/// The account holding payers' money while their third-party jobs run.
pub const HOLD_ACCOUNT: &str = "hold:third-party";
/// Most jobs the worker takes in one pass.
pub const BATCH_SIZE: u32 = 16;
/// The code of the confirm answer while a job's outcome is not known yet (HTTP 503).
pub const SETTLEMENT_PENDING: &str = "SETTLEMENT_PENDING";
/// The code of a job given up after `third_party_max_attempts` failures.
pub const SETTLEMENT_FAILED: &str = "SETTLEMENT_FAILED";
/// Longest wait between two attempts, seconds.
const MAX_BACKOFF_SECS: i64 = 300;
/// Longest `last_error` text stored.
const MAX_ERROR_LEN: usize = 500;

/// A confirmed session whose path is [`crate::settlement::SettlementPath::ThirdParty`].
pub struct Confirm<'a> {
    /// The session (as just read: `order_received`, the payer's).
    pub session: &'a Session,
    /// Its order, parsed.
    pub order: &'a Order,
    /// Its order as stored.
    pub attached: &'a AttachedOrder,
    /// The Merchant Gateway chosen by the path.
    pub merchant_gateway: &'a Party,
    /// The paying account.
    pub account_id: &'a str,
    /// The confirm's idempotency key.
    pub idempotency_key: &'a str,
    /// The consent evidence.
    pub consent_json: &'a str,
}

/// Why a step did not go through.
#[derive(Debug)]
enum StepError {
    /// May pass: try again later (same references, so never twice).
    Retry(String),
    /// Will not pass: end the job.
    Refused(Refusal),
}

/// A definite end of a job.
#[derive(Debug)]
struct Refusal {
    /// The code the app gets (the refusing party's, or ours).
    code: ErrorCode,
    /// What happened, for the app and the reconciliation record.
    message: String,
    /// What the session becomes (`declined`, or `expired` for an expired payment).
    status: SessionStatus,
    /// Whether money may have moved at the provider (the record is `failed_reconcile`).
    moved: bool,
    /// The party that refused, when another one.
    party: Option<u64>,
}

/// Starts the job of a confirmed session and runs it inline (see the module comment).
/// Answers like [`crate::settlement::confirm_payment`]: `Paid` when every step went through,
/// `InsufficientFunds` (nothing held), `InvalidState` for a session no longer payable, the
/// `SETTLEMENT_PENDING` error while the outcome is not known, the refusing party's code
/// (HTTP 409) when the job ended refunded.
pub async fn start_confirm(state: &AppState, c: Confirm<'_>) -> GatewayResult<SettleOutcome> {
    let now = state.now();
    if c.session.expires_at <= now {
        return Ok(SettleOutcome::InvalidState(SessionStatus::Expired));
    }
    state
        .store
        .ensure_account(
            HOLD_ACCOUNT,
            "partner_reserve",
            "Third-party settlement holds",
            now,
        )
        .await?;
    let job = NewThirdPartyJob {
        session_id: c.session.id.clone(),
        account_id: c.account_id.to_owned(),
        hold_account: HOLD_ACCOUNT.to_owned(),
        merchant_gateway: c.merchant_gateway.ocid,
        currency: c.attached.currency.clone(),
        minor: c.attached.amount_minor,
        idempotency_key: c.idempotency_key.to_owned(),
        consent_json: c.consent_json.to_owned(),
        lease_until: now.saturating_add(state.config.queue_lease_secs()),
        now,
    };
    match state.store.start_third_party(&job).await? {
        StartOutcome::Started(job) => {
            tracing::info!(
                session = %job.session_id,
                merchant_gateway = job.merchant_gateway,
                order = %c.order.id,
                "third-party settlement started: payer's money held"
            );
            drive(state, job).await
        }
        StartOutcome::Existing(_) => resume_confirm(state, &c.session.id).await,
        StartOutcome::InsufficientFunds => Ok(SettleOutcome::InsufficientFunds),
        StartOutcome::Conflict => {
            // Changed since it was read: answer from the stored state.
            let Some(s) = state.store.session(&c.session.id).await? else {
                return Ok(SettleOutcome::NotFound);
            };
            Ok(match s.status {
                SessionStatus::Paid => SettleOutcome::AlreadyPaid(s),
                SessionStatus::OrderReceived => SettleOutcome::InvalidState(SessionStatus::Expired),
                other => SettleOutcome::InvalidState(other),
            })
        }
    }
}

/// A confirm (retry) of a session that has a job: a paid job answers `AlreadyPaid`, a failed
/// one the session's state; an active job due now is claimed and run inline, else (another
/// runner holds it, or its next attempt is later) the `SETTLEMENT_PENDING` error.
pub async fn resume_confirm(state: &AppState, session_id: &str) -> GatewayResult<SettleOutcome> {
    let Some(job) = state.store.third_party_job(session_id).await? else {
        return Ok(SettleOutcome::NotFound);
    };
    if job.state.is_active() {
        let now = state.now();
        if job.next_attempt_at > now {
            return Err(pending(&job, job.next_attempt_at - now));
        }
        let lease = now.saturating_add(state.config.queue_lease_secs());
        if let Some(claimed) = state
            .store
            .claim_third_party_job(session_id, now, lease)
            .await?
        {
            return drive(state, claimed).await;
        }
        let Some(job) = state.store.third_party_job(session_id).await? else {
            return Ok(SettleOutcome::NotFound);
        };
        if job.state.is_active() {
            return Err(pending(&job, 1));
        }
        return final_answer(state, &job).await;
    }
    final_answer(state, &job).await
}

/// The answer for a job in a final state: the paid session, or the session's state.
async fn final_answer(state: &AppState, job: &ThirdPartyJob) -> GatewayResult<SettleOutcome> {
    let Some(session) = state.store.session(&job.session_id).await? else {
        return Ok(SettleOutcome::NotFound);
    };
    Ok(match session.status {
        SessionStatus::Paid => SettleOutcome::AlreadyPaid(session),
        SessionStatus::OrderReceived => SettleOutcome::InvalidState(SessionStatus::Declined),
        other => SettleOutcome::InvalidState(other),
    })
}

/// 503 `SETTLEMENT_PENDING`: the payment is under way and its outcome is not known yet; it
/// ends paid or refunded without the app doing anything (`details.retryAfter` seconds).
fn pending(job: &ThirdPartyJob, retry_after: i64) -> GatewayError {
    GatewayError(
        ApiError::new(
            ErrorCode::Other(SETTLEMENT_PENDING.into()),
            format!(
                "the payment is being settled through the merchant's gateway {} and its outcome \
                 is not known yet; nothing more is needed: it completes, or the held amount is \
                 returned, automatically (watch the payment_status event or GET \
                 /app/payments/{})",
                job.merchant_gateway, job.session_id
            ),
        )
        .with_status(503)
        .with_details(json!({
            "status": "order_received",
            "retryAfter": retry_after.clamp(1, MAX_BACKOFF_SECS),
        })),
    )
}

/// Runs a claimed job from its stored state until it is paid, fails for good, or a step must
/// be retried later.
async fn drive(state: &AppState, mut job: ThirdPartyJob) -> GatewayResult<SettleOutcome> {
    loop {
        let step = match job.state {
            JobState::Held => create_payment(state, &job).await,
            JobState::Created => transfer(state, &job).await,
            JobState::Transferred => return settle(state, &job).await,
            _ => return final_answer(state, &job).await,
        };
        match step {
            Ok(step) => {
                let recorded = state.store.record_third_party_step(&step).await?;
                let Some(stored) = state.store.third_party_job(&job.session_id).await? else {
                    return Ok(SettleOutcome::NotFound);
                };
                if !recorded {
                    // Another runner moved the job meanwhile (our lease ran out): its state
                    // decides.
                    return if stored.state.is_active() {
                        Err(pending(&stored, 1))
                    } else {
                        final_answer(state, &stored).await
                    };
                }
                job = stored;
            }
            Err(StepError::Retry(reason)) => return retry_later(state, &job, reason).await,
            Err(StepError::Refused(refusal)) => return give_up(state, &job, refusal).await,
        }
    }
}

/// The stored session and its order (a job's session always has one).
async fn session_and_order(
    state: &AppState,
    job: &ThirdPartyJob,
) -> Result<(Session, AttachedOrder), StepError> {
    let session = state
        .store
        .session(&job.session_id)
        .await
        .map_err(|e| StepError::Retry(e.to_string()))?
        .ok_or_else(|| refused_here(format!("session {} vanished", job.session_id), false))?;
    let attached = session
        .order
        .clone()
        .ok_or_else(|| refused_here("the session has no order".into(), false))?;
    Ok((session, attached))
}

/// A refusal decided here (not by another party).
fn refused_here(message: String, moved: bool) -> StepError {
    StepError::Refused(Refusal {
        code: ErrorCode::SettlementNotSupported,
        message,
        status: SessionStatus::Declined,
        moved,
        party: None,
    })
}

/// Resolves a party and its endpoint; a failure may pass (directory, network).
async fn endpoint_of(state: &AppState, ocid: u64) -> Result<(Party, String), StepError> {
    let party = state
        .resolver
        .resolve(ocid)
        .await
        .map_err(|e| StepError::Retry(format!("cannot resolve {ocid}: {e}")))?;
    let endpoint = party
        .endpoint
        .clone()
        .ok_or_else(|| StepError::Retry(format!("{ocid} publishes no endpoint")))?;
    Ok((party, endpoint.trim_end_matches('/').to_owned()))
}

/// A signed call to `party`; a non-200 answer is classified: 401, 408, 429 and 5xx may
/// pass, other statuses are the party's refusal (`moved` says whether money may have moved
/// at the provider when it refuses). The 200 answer's signature must verify with the party's
/// key.
async fn call(
    state: &AppState,
    party: &Party,
    url: &str,
    body: &impl serde::Serialize,
    moved: bool,
) -> Result<Value, StepError> {
    let bytes = serde_json::to_vec(body)
        .map_err(|e| refused_here(format!("serialising a request: {e}"), moved))?;
    let response = crate::client::signed_request(state, Method::POST, url, &bytes)
        .await
        .map_err(|e| StepError::Retry(format!("{url}: {e}")))?;
    let status = response.status;
    if status != 200 {
        let err = ApiError::from_response(status, &response.body);
        let reason = format!("{url} answered {status} {}: {}", err.code, err.message);
        if status >= 500 || matches!(status, 401 | 408 | 429) {
            return Err(StepError::Retry(reason));
        }
        let expired = err.code == ErrorCode::PaymentExpired;
        return Err(StepError::Refused(Refusal {
            code: err.code,
            message: format!("{} refused the payment: {}", party.ocid, err.message),
            status: if expired {
                SessionStatus::Expired
            } else {
                SessionStatus::Declined
            },
            moved,
            party: Some(party.ocid),
        }));
    }
    match response.verify_signature(party.ocid, &party.public_key, state.now()) {
        Ok(true) => {}
        Ok(false) => {
            return Err(StepError::Retry(format!(
                "{url} answered without a response signature"
            )))
        }
        Err(e) => {
            return Err(StepError::Retry(format!(
                "{url}: the answer's signature does not verify: {e}"
            )))
        }
    }
    serde_json::from_slice(&response.body)
        .map_err(|e| StepError::Retry(format!("{url} answered something that is not JSON: {e}")))
}

/// The order's `urls.order` list (hints passed on to the Merchant Gateway).
fn order_urls(attached: &AttachedOrder) -> Vec<String> {
    attached
        .urls_json
        .as_deref()
        .and_then(|u| serde_json::from_str::<Value>(u).ok())
        .and_then(|u| u.get("order").cloned())
        .and_then(|o| serde_json::from_value::<Vec<String>>(o).ok())
        .unwrap_or_default()
}

/// Step 2: `POST /payment/create` at the Merchant Gateway, and the provider choice.
async fn create_payment(state: &AppState, job: &ThirdPartyJob) -> Result<JobStep, StepError> {
    let (_, attached) = session_and_order(state, job).await?;
    let (gateway, endpoint) = endpoint_of(state, job.merchant_gateway).await?;
    let request = PaymentCreateRequest {
        to: attached.merchant_ocid,
        amount: attached.amount.clone(),
        currency: attached.currency.clone(),
        reference: Some(job.session_id.clone()),
        memo: None,
        expires_at: None,
        order: Some(TransferOrderRef {
            id: attached.order_id.clone(),
            urls: order_urls(&attached),
        }),
    };
    let url = format!("{endpoint}/payment/create");
    let answer = call(state, &gateway, &url, &request, false).await?;
    let created: PaymentCreateResponse = serde_json::from_value(answer).map_err(|e| {
        StepError::Retry(format!(
            "{url}: the answer is not a payment/create answer: {e}"
        ))
    })?;
    let bad = |what: String| {
        StepError::Refused(Refusal {
            code: ErrorCode::InvalidState,
            message: format!(
                "the merchant's gateway {} answered a payment that does not match: {what}",
                gateway.ocid
            ),
            status: SessionStatus::Declined,
            moved: false,
            party: Some(gateway.ocid),
        })
    };
    if created.txid.is_empty() {
        return Err(bad("no txid".into()));
    }
    if !same_amount(&created.amount, &attached.amount) || created.currency != attached.currency {
        return Err(bad(format!(
            "{} {} instead of {} {}",
            created.amount, created.currency, attached.amount, attached.currency
        )));
    }
    if !matches!(
        created.status,
        PaymentStatus::PendingSettlement | PaymentStatus::Completed
    ) {
        return Err(StepError::Refused(Refusal {
            code: ErrorCode::PaymentExpired,
            message: format!(
                "the merchant's gateway {} reports the payment {:?}",
                gateway.ocid, created.status
            ),
            status: SessionStatus::Expired,
            moved: false,
            party: Some(gateway.ocid),
        }));
    }
    let provider = find_provider(state, &created.settlement.accepts, &attached.currency)
        .await
        .ok_or_else(|| {
            refused_here(
                format!(
                    "the merchant's gateway {} accepts settlement providers {:?}, none of which \
                     holds a reserve of ours for {}",
                    gateway.ocid, created.settlement.accepts, attached.currency
                ),
                false,
            )
        })?;
    tracing::info!(
        session = %job.session_id,
        txid = %created.txid,
        provider = provider.ocid,
        "third-party settlement: pending payment created"
    );
    Ok(JobStep {
        session_id: job.session_id.clone(),
        expected: JobState::Held,
        state: JobState::Created,
        provider: Some(provider.ocid),
        pending_txid: Some(created.txid),
        pending_expires_at: Some(created.expires_at),
        provider_proof: None,
        now: state.now(),
    })
}

/// Step 3: `POST /transfer/create` at the provider, addressed to the Merchant Gateway with
/// the pending txid as reference.
async fn transfer(state: &AppState, job: &ThirdPartyJob) -> Result<JobStep, StepError> {
    let (_, attached) = session_and_order(state, job).await?;
    let (Some(provider_ocid), Some(txid)) = (job.provider, job.pending_txid.clone()) else {
        return Err(refused_here(
            "a created job lacks its provider or txid".into(),
            false,
        ));
    };
    let now = state.now();
    if job.pending_expires_at.is_some_and(|at| at <= now) {
        // An earlier attempt's answer may have been lost after the provider moved money.
        return Err(StepError::Refused(Refusal {
            code: ErrorCode::PaymentExpired,
            message: format!(
                "the pending payment {txid} at the merchant's gateway {} expired before it \
                 could be settled",
                job.merchant_gateway
            ),
            status: SessionStatus::Expired,
            moved: job.attempts > 0,
            party: Some(job.merchant_gateway),
        }));
    }
    let (provider, endpoint) = endpoint_of(state, provider_ocid).await?;
    let request = TransferCreateRequest {
        from: TransferParty {
            ocid: state.config.ocid,
            reference: Some(format!("tp:{}", job.session_id)),
        },
        to: TransferParty {
            ocid: job.merchant_gateway,
            reference: Some(txid.clone()),
        },
        amount: attached.amount.clone(),
        currency: attached.currency.clone(),
        memo: None,
        order: None,
    };
    let url = format!("{endpoint}/transfer/create");
    let answer = call(state, &provider, &url, &request, false).await?;
    let signed = checked_proof(
        &answer,
        &provider,
        job.merchant_gateway,
        Some(&txid),
        &attached,
    )
    .map_err(|reason| {
        StepError::Refused(Refusal {
            code: ErrorCode::InvalidProof,
            message: format!("the provider {provider_ocid} returned an unusable proof: {reason}"),
            status: SessionStatus::Declined,
            moved: true,
            party: Some(provider_ocid),
        })
    })?;
    tracing::info!(session = %job.session_id, %txid, provider = provider_ocid, "third-party settlement: provider transferred");
    Ok(JobStep {
        session_id: job.session_id.clone(),
        expected: JobState::Created,
        state: JobState::Transferred,
        provider: None,
        pending_txid: None,
        pending_expires_at: None,
        provider_proof: Some(signed),
        now,
    })
}

/// Step 4 and 5: `POST /payment/settle` with the provider's proof, then the final
/// transaction with the Merchant Gateway's verified proof.
async fn settle(state: &AppState, job: &ThirdPartyJob) -> GatewayResult<SettleOutcome> {
    match settle_step(state, job).await {
        Ok(paid) => {
            let session_id = job.session_id.clone();
            match state.store.finish_third_party_paid(&paid).await? {
                JobFinish::Finished(session) => {
                    state.hub.notify(&job.account_id);
                    state.metrics.payment_completed(session.flow);
                    tracing::info!(session = %session_id, txid = %paid.txid, "payment settled through a third party");
                    Ok(SettleOutcome::Paid(session))
                }
                JobFinish::Conflict => {
                    let stored = state.store.third_party_job(&session_id).await?;
                    match stored {
                        Some(j) if j.state.is_active() => Err(pending(&j, 1)),
                        Some(j) => final_answer(state, &j).await,
                        None => Ok(SettleOutcome::NotFound),
                    }
                }
            }
        }
        Err(StepError::Retry(reason)) => retry_later(state, job, reason).await,
        Err(StepError::Refused(refusal)) => give_up(state, job, refusal).await,
    }
}

/// `POST /payment/settle` and the checks of its answer; builds the final transaction.
async fn settle_step(state: &AppState, job: &ThirdPartyJob) -> Result<JobPaid, StepError> {
    let (session, attached) = session_and_order(state, job).await?;
    let (Some(provider_ocid), Some(txid), Some(provider_proof)) = (
        job.provider,
        job.pending_txid.clone(),
        job.provider_proof.as_deref(),
    ) else {
        return Err(refused_here(
            "a transferred job lacks its provider, txid or proof".into(),
            true,
        ));
    };
    let provider_signed: Value = serde_json::from_str(provider_proof)
        .map_err(|e| refused_here(format!("stored provider proof unreadable: {e}"), true))?;
    let (gateway, endpoint) = endpoint_of(state, job.merchant_gateway).await?;
    let request = PaymentSettleRequest {
        txid: txid.clone(),
        proof: provider_signed.get("proof").cloned().unwrap_or_default(),
        signature: provider_signed
            .get("signature")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    };
    let url = format!("{endpoint}/payment/settle");
    let answer = call(state, &gateway, &url, &request, true).await?;
    let settled: PaymentSettleResponse = serde_json::from_value(answer.clone()).map_err(|e| {
        StepError::Retry(format!(
            "{url}: the answer is not a payment/settle answer: {e}"
        ))
    })?;
    let unusable = |reason: String| {
        StepError::Refused(Refusal {
            code: ErrorCode::InvalidProof,
            message: format!(
                "the merchant's gateway {} returned an unusable proof: {reason}",
                gateway.ocid
            ),
            status: SessionStatus::Declined,
            moved: true,
            party: Some(gateway.ocid),
        })
    };
    if settled.status != PaymentStatus::Completed || settled.txid != txid {
        return Err(unusable(format!(
            "status {:?} for txid {}, expected completed for {txid}",
            settled.status, settled.txid
        )));
    }
    let mg_proof = checked_proof(&answer, &gateway, attached.merchant_ocid, None, &attached)
        .map_err(unusable)?;
    let proof_txid = answer
        .pointer("/proof/txid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if proof_txid != txid {
        // One id names the payment for the payer, the merchant and /verify.
        return Err(unusable(format!(
            "its proof's txid {proof_txid} is not the payment's {txid}"
        )));
    }
    let now = state.now();
    let clearing = format!("reserve-clearing:{provider_ocid}");
    let provider_name = state
        .resolver
        .resolve(provider_ocid)
        .await
        .map(|p| p.name)
        .unwrap_or_else(|_| provider_ocid.to_string());
    state
        .store
        .ensure_account(
            &clearing,
            "partner_reserve",
            &format!("Reserve clearing at {provider_name}"),
            now,
        )
        .await
        .map_err(|e| StepError::Retry(e.to_string()))?;
    Ok(JobPaid {
        session_id: session.id.clone(),
        event: NewEvent {
            account_id: job.account_id.clone(),
            kind: crate::domain::session::EVENT_PAYMENT_STATUS.to_owned(),
            payload_json: payment_status_event(
                &session.id,
                app::SessionStatus::Paid,
                Some(&proof_txid),
                Some(now),
            ),
            now,
        },
        txid: proof_txid,
        mg_proof,
        clearing_account: clearing,
        now,
    })
}

/// [`check_signed_proof`], as the `{proof, signature}` JSON text a job stores.
fn checked_proof(
    answer: &Value,
    issuer: &Party,
    to: u64,
    reference: Option<&str>,
    attached: &AttachedOrder,
) -> Result<String, String> {
    check_signed_proof(answer, issuer, to, reference, attached)?
        .envelope_json()
        .map_err(|e| format!("{e:?}"))
}

/// A step failed for a reason that may pass: count the attempt and schedule the next one,
/// or give up after `third_party_max_attempts`.
async fn retry_later(
    state: &AppState,
    job: &ThirdPartyJob,
    reason: String,
) -> GatewayResult<SettleOutcome> {
    let reason: String = reason.chars().take(MAX_ERROR_LEN).collect();
    let attempts = job.attempts.saturating_add(1);
    if attempts >= i64::from(state.config.third_party_max_attempts) {
        let message = format!(
            "the payment could not be settled through the merchant's gateway {} after \
             {attempts} attempts (last: {reason}); the held amount was returned",
            job.merchant_gateway
        );
        return give_up(
            state,
            job,
            Refusal {
                code: ErrorCode::Other(SETTLEMENT_FAILED.into()),
                message,
                status: SessionStatus::Declined,
                // Past the hold, a provider call may have gone through unseen.
                moved: job.state != JobState::Held,
                party: None,
            },
        )
        .await;
    }
    let delay = backoff(job.attempts);
    let now = state.now();
    tracing::warn!(session = %job.session_id, attempts, state = job.state.as_str(), %reason, "third-party settlement step failed; retrying later");
    state
        .store
        .record_third_party_retry(&job.session_id, now.saturating_add(delay), &reason, now)
        .await?;
    Err(pending(job, delay))
}

/// The wait after `attempts` earlier failures: 1 s, 2 s, 4 s, ... at most 5 minutes.
fn backoff(attempts: i64) -> i64 {
    let exponent = u32::try_from(attempts.clamp(0, 16)).unwrap_or(16);
    2i64.saturating_pow(exponent).min(MAX_BACKOFF_SECS)
}

/// Ends a job for good: refund, session declined or expired, reconciliation record, log and
/// metric; answers the refusing party's code (HTTP 409).
async fn give_up(
    state: &AppState,
    job: &ThirdPartyJob,
    refusal: Refusal,
) -> GatewayResult<SettleOutcome> {
    let final_state = if refusal.moved {
        JobState::FailedReconcile
    } else {
        JobState::Failed
    };
    let now = state.now();
    let reason: String = format!("{}: {}", refusal.code, refusal.message)
        .chars()
        .take(MAX_ERROR_LEN)
        .collect();
    let app_status = if refusal.status == SessionStatus::Expired {
        app::SessionStatus::Expired
    } else {
        app::SessionStatus::Declined
    };
    let failed = JobFailed {
        session_id: job.session_id.clone(),
        state: final_state,
        session_status: refusal.status,
        reason: reason.clone(),
        event: NewEvent {
            account_id: job.account_id.clone(),
            kind: crate::domain::session::EVENT_PAYMENT_STATUS.to_owned(),
            payload_json: payment_status_event(&job.session_id, app_status, None, None),
            now,
        },
        now,
    };
    match state.store.finish_third_party_failed(&failed).await? {
        JobFinish::Finished(_) => {}
        JobFinish::Conflict => {
            // Another runner finished it meanwhile: its outcome stands.
            return match state.store.third_party_job(&job.session_id).await? {
                Some(j) if j.state.is_active() => Err(pending(&j, 1)),
                Some(j) => final_answer(state, &j).await,
                None => Ok(SettleOutcome::NotFound),
            };
        }
    }
    state.hub.notify(&job.account_id);
    state.metrics.third_party_failed(final_state.as_str());
    if refusal.moved {
        tracing::error!(
            session = %job.session_id,
            merchant_gateway = job.merchant_gateway,
            provider = ?job.provider,
            txid = ?job.pending_txid,
            %reason,
            "third-party settlement failed after the provider may have moved money; the payer \
             was refunded: reconcile (state failed_reconcile)"
        );
    } else {
        tracing::warn!(session = %job.session_id, merchant_gateway = job.merchant_gateway, %reason, "third-party settlement failed; the payer was refunded");
    }
    let mut details = json!({"status": app_status});
    if let Some(party) = refusal.party {
        details["party"] = json!(party);
    }
    Err(GatewayError(
        ApiError::new(
            refusal.code,
            format!(
                "{}; nothing was debited (the held amount is back in the balance)",
                refusal.message
            ),
        )
        .with_status(409)
        .with_details(details),
    ))
}

/// Runs until `shutdown` completes: every `config.worker_interval_ms`, but at most once a second,
/// claims the due jobs (leased, so instances never run one job at once) and runs them.
pub async fn run_worker(state: AppState, shutdown: impl Future<Output = ()> + Send) {
    let interval_ms = state.config.worker_interval_ms.max(1000);
    let mut ticker = tokio::time::interval(Duration::from_millis(interval_ms));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            _ = ticker.tick() => {}
        }
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            _ = run_due(&state) => {}
        }
    }
    tracing::debug!("third-party settlement worker stopped");
}

/// Claims and runs every due job (up to [`BATCH_SIZE`]) once; returns how many it ran (the
/// worker's pass; tests and tools call it directly).
pub async fn run_due(state: &AppState) -> usize {
    let now = state.now();
    let lease = now.saturating_add(state.config.queue_lease_secs());
    let due = match state
        .store
        .claim_third_party_jobs(now, lease, BATCH_SIZE)
        .await
    {
        Ok(due) => due,
        Err(e) => {
            tracing::error!(error = %e, "reading the third-party settlement jobs failed");
            return 0;
        }
    };
    let count = due.len();
    let outcomes = join_all(due.into_iter().map(|job| {
        let session_id = job.session_id.clone();
        async move { (session_id, drive(state, job).await) }
    }))
    .await;
    for (session_id, outcome) in outcomes {
        match outcome {
            Ok(SettleOutcome::Paid(_)) => {
                tracing::info!(session = %session_id, "resumed third-party settlement paid")
            }
            Ok(other) => tracing::debug!(session = %session_id, ?other, "third-party job done"),
            Err(e) => {
                tracing::debug!(session = %session_id, code = %e.0.code, "third-party job not finished: {}", e.0.message)
            }
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(backoff(0), 1);
        assert_eq!(backoff(1), 2);
        assert_eq!(backoff(3), 8);
        assert_eq!(backoff(8), 256);
        assert_eq!(backoff(9), 300);
        assert_eq!(backoff(1000), 300);
        assert_eq!(backoff(-3), 1);
    }

    #[test]
    fn amounts_compare_as_numbers() {
        assert!(same_amount("5.00", "5"));
        assert!(same_amount("12.30", "12.3"));
        assert!(!same_amount("12.31", "12.3"));
        assert!(!same_amount("x", "x"));
    }
}
