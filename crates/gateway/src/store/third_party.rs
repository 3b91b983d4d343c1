//! The storage types of third-party settlement (protocol notes §5.6 strategy 3): the durable
//! job of one session paid through a common settlement provider, its states, and the inputs
//! and outcomes of the job operations of [`super::Store`]. The runner is
//! [`crate::third_party`].

use super::{NewEvent, Session, SessionStatus};

/// Where a [`ThirdPartyJob`] stands. `held`, `created` and `transferred` are active (a runner
/// may take the next step); `paid`, `failed` and `failed_reconcile` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// The payer's money is on the hold account; nothing asked yet.
    Held,
    /// The Merchant Gateway answered `POST /payment/create`: the pending txid is stored.
    Created,
    /// The provider answered `POST /transfer/create`: its proof is stored.
    Transferred,
    /// The Merchant Gateway's proof is stored, the hold went to the provider's clearing
    /// account and the session is paid.
    Paid,
    /// Given up before any money could have moved at the provider; the hold was refunded.
    Failed,
    /// Given up after the provider may have moved money (its `/transfer/create` answered or
    /// may have); the hold was refunded and operators must reconcile with the provider and
    /// the Merchant Gateway (`docs/operating.md`).
    FailedReconcile,
}

impl JobState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Held => "held",
            JobState::Created => "created",
            JobState::Transferred => "transferred",
            JobState::Paid => "paid",
            JobState::Failed => "failed",
            JobState::FailedReconcile => "failed_reconcile",
        }
    }

    /// Parses a stored name; `None` for anything else.
    pub fn parse(name: &str) -> Option<JobState> {
        Some(match name {
            "held" => JobState::Held,
            "created" => JobState::Created,
            "transferred" => JobState::Transferred,
            "paid" => JobState::Paid,
            "failed" => JobState::Failed,
            "failed_reconcile" => JobState::FailedReconcile,
            _ => return None,
        })
    }

    /// Whether a runner may still take a step (`held`, `created`, `transferred`).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            JobState::Held | JobState::Created | JobState::Transferred
        )
    }
}

/// One session paid through a common settlement provider: the job row, which is also the
/// operators' reconciliation record once it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThirdPartyJob {
    /// The session being paid (one job per session).
    pub session_id: String,
    /// The paying account.
    pub account_id: String,
    /// The account holding the payer's money while the job runs.
    pub hold_account: String,
    /// The Merchant Gateway's OCID.
    pub merchant_gateway: u64,
    /// The settlement provider's OCID, once chosen from the Merchant Gateway's answer.
    pub provider: Option<u64>,
    /// Where the job stands.
    pub state: JobState,
    /// ISO 4217 code.
    pub currency: String,
    /// The held amount in minor units.
    pub minor: i64,
    /// The confirm request's idempotency key (recorded as a settle key once paid).
    pub idempotency_key: String,
    /// The device-signed consent evidence, written to the session once paid.
    pub consent_json: String,
    /// The Merchant Gateway's pending txid (`created` and later).
    pub pending_txid: Option<String>,
    /// When the pending payment expires at the Merchant Gateway (Unix seconds).
    pub pending_expires_at: Option<i64>,
    /// The provider's `{proof, signature}` JSON (`transferred` and later).
    pub provider_proof: Option<String>,
    /// The Merchant Gateway's `{proof, signature}` JSON (`paid`).
    pub mg_proof: Option<String>,
    /// Failed attempts so far.
    pub attempts: i64,
    /// Unix seconds of the next attempt by the worker.
    pub next_attempt_at: i64,
    /// The last failure, for operators.
    pub last_error: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last change.
    pub updated_at: i64,
}

/// Input of [`super::Store::start_third_party`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewThirdPartyJob {
    /// The session (must be `order_received`, the payer's and unexpired).
    pub session_id: String,
    /// The paying account.
    pub account_id: String,
    /// The hold account (must exist).
    pub hold_account: String,
    /// The Merchant Gateway's OCID.
    pub merchant_gateway: u64,
    /// ISO 4217 code.
    pub currency: String,
    /// Minor units to hold (positive).
    pub minor: i64,
    /// The confirm's idempotency key.
    pub idempotency_key: String,
    /// The consent evidence.
    pub consent_json: String,
    /// The lease the starting request holds while it runs the steps inline.
    pub lease_until: i64,
    /// Unix seconds.
    pub now: i64,
}

/// Result of [`super::Store::start_third_party`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    /// Held now and the job created (leased to the caller until `lease_until`).
    Started(ThirdPartyJob),
    /// The session already has a job: nothing held again; the stored job (not claimed).
    Existing(ThirdPartyJob),
    /// The payer's balance is too low: nothing changed.
    InsufficientFunds,
    /// The session is missing, not `order_received`, expired or not the payer's: nothing
    /// changed; reload and decide again.
    Conflict,
}

/// Input of [`super::Store::record_third_party_step`]: a step's answer, stored before the
/// next step runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStep {
    /// The job's session.
    pub session_id: String,
    /// The state the stored job must still have.
    pub expected: JobState,
    /// The new (active) state.
    pub state: JobState,
    /// The chosen provider (kept when `None`).
    pub provider: Option<u64>,
    /// The pending txid (kept when `None`).
    pub pending_txid: Option<String>,
    /// The pending payment's expiry (kept when `None`).
    pub pending_expires_at: Option<i64>,
    /// The provider's proof JSON (kept when `None`).
    pub provider_proof: Option<String>,
    /// Unix seconds.
    pub now: i64,
}

/// Input of [`super::Store::finish_third_party_paid`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPaid {
    /// The job's session (the job must be `transferred`).
    pub session_id: String,
    /// The Merchant Gateway's txid: the session's txid and the ledger reference.
    pub txid: String,
    /// The Merchant Gateway's `{proof, signature}` JSON: the session's receipt proof.
    pub mg_proof: String,
    /// The account credited from the hold (the provider's `reserve-clearing:<ocid>`; must
    /// exist).
    pub clearing_account: String,
    /// The `payment_status` event for the payer.
    pub event: NewEvent,
    /// Unix seconds.
    pub now: i64,
}

/// Input of [`super::Store::finish_third_party_failed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFailed {
    /// The job's session (the job must be active).
    pub session_id: String,
    /// [`JobState::Failed`] or [`JobState::FailedReconcile`].
    pub state: JobState,
    /// What the session becomes if it is still unpaid and unresolved (`order_received` or
    /// `expired`): [`SessionStatus::Declined`] or [`SessionStatus::Expired`].
    pub session_status: SessionStatus,
    /// Why (the job's `last_error` and the session's decline reason).
    pub reason: String,
    /// The `payment_status` event, appended only when the session changed.
    pub event: NewEvent,
    /// Unix seconds.
    pub now: i64,
}

/// Result of [`super::Store::finish_third_party_paid`] and
/// [`super::Store::finish_third_party_failed`].
#[allow(clippy::large_enum_variant)] // returned once per job; boxing buys nothing
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobFinish {
    /// Finished now; the stored session.
    Finished(Session),
    /// The job is missing or not in the state the finish needs: nothing written.
    Conflict,
}
