//! The gateway's storage contract: every durable fact (the gateway's own identity, accounts,
//! ledger, devices, nonces, payment sessions, events, webhook queue, push tokens and the push
//! queue, processed proofs) goes through the [`Store`] trait,
//! so handlers never see SQL; [`sqlite`] (one process, the embedded default) and [`postgres`]
//! (many instances on one database) implement it.
//!
//! The trait is persistence only (load, conditional update, append, one atomic settlement
//! write); the session and payment rules that decide what to write live in [`crate::domain`].
//!
//! Money in storage is integer minor units of the currency (exact, no floats); the order's
//! original amount string is kept verbatim for proofs.

pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use opencharge_peer::auth::NonceUse;
pub use opencharge_peer::identity::{Identity, IdentityCheck};
pub use opencharge_protocol::app::{PushEnvironment, PushKind, PushProvider};

/// A storage failure that is not a business outcome (I/O, corruption, a bug).
#[derive(Debug, Clone, thiserror::Error)]
#[error("storage: {0}")]
pub struct StoreError(pub String);

/// Shorthand for storage results.
pub type StoreResult<T> = Result<T, StoreError>;

/// A ledger account. Users, merchants paid by direct settlement, partner reserves and the
/// dev-funding source are all accounts; `kind` says which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Opaque id, e.g. `acct_<hex>`; merchant accounts are `ocid:<n>`.
    pub id: String,
    /// `user`, `merchant`, `partner_reserve` or `funding`.
    pub kind: String,
    /// Display name.
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// One currency balance of an account, in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// ISO 4217 code.
    pub currency: String,
    /// Integer minor units (cents for USD).
    pub minor: i64,
}

/// A device bound to an account by its public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// `dev_` + the first 32 hex of SHA-256 of the 128-hex public key.
    pub device_id: String,
    /// The owning account.
    pub account_id: String,
    /// 128-hex public key.
    pub public_key: String,
    /// `active` or `rotated` (a rotated key no longer authenticates) or `revoked`.
    pub status: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// Outcome of consuming an enrollment code to register a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterOutcome {
    /// Registered now.
    Registered(Device),
    /// This exact key was already registered with this code (idempotent retry).
    AlreadyRegistered(Device),
    /// No such code, or already used by another key, or expired.
    InvalidEnrollment,
}

/// A session's flow and status are the app API's own types: the gateway stores, serves and
/// announces them under one set of names.
pub use opencharge_protocol::app::{Flow, SessionStatus};

/// The order attached to a session, as received (raw JSON kept for signatures).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedOrder {
    /// The merchant order JSON exactly as received.
    pub order_json: String,
    /// The merchant's signature over it.
    pub order_signature: String,
    /// SHA-256 hex of the order's canonical form (what consents bind).
    pub order_hash: String,
    /// Merchant OCID (`order.ocid`, equal to the verified signer).
    pub merchant_ocid: u64,
    /// Merchant display name from verified metadata, when known.
    pub merchant_name: Option<String>,
    /// Merchant icon URL from verified metadata, when known.
    pub merchant_icon: Option<String>,
    /// `order.id`.
    pub order_id: String,
    /// The order's amount string, verbatim.
    pub amount: String,
    /// Amount in minor units of `currency`.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// The unsigned `urls` object as received (hints only), JSON.
    pub urls_json: Option<String>,
}

/// A payment session: a wallet QR session, a scanned merchant order or a checkout session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Session id (wallet QR: 32 hex; checkout: `cs_` + 32 hex; scan: `sc_` + 32 hex).
    pub id: String,
    /// Flow.
    pub flow: Flow,
    /// Status.
    pub status: SessionStatus,
    /// The paying account, once known (checkout sessions get it when a wallet opens them).
    pub account_id: Option<String>,
    /// Unix seconds after which the session cannot take an order or a confirmation.
    pub expires_at: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unguessable token of the status URL given to the merchant.
    pub status_token: String,
    /// The order, once attached.
    pub order: Option<AttachedOrder>,
    /// OCID that delivered the order: the merchant (wallet QR) or the Merchant Gateway (checkout).
    pub submitted_by: Option<u64>,
    /// Transaction id once paid.
    pub txid: Option<String>,
    /// Unix seconds once paid.
    pub paid_at: Option<i64>,
    /// `{proof, signature}` JSON once paid.
    pub proof_json: Option<String>,
    /// Decline reason, when declined.
    pub decline_reason: Option<String>,
}

impl Session {
    /// A new `pending` session with no order yet (nothing submitted, paid or declined).
    pub fn pending(
        id: String,
        flow: Flow,
        account_id: Option<String>,
        created_at: i64,
        expires_at: i64,
        status_token: String,
    ) -> Session {
        Session {
            id,
            flow,
            status: SessionStatus::Pending,
            account_id,
            expires_at,
            created_at,
            status_token,
            order: None,
            submitted_by: None,
            txid: None,
            paid_at: None,
            proof_json: None,
            decline_reason: None,
        }
    }

    /// This session with `order`, delivered by OCID `submitted_by`, attached: now
    /// `order_received` (how scanned merchant orders and checkout sessions are born).
    pub fn with_order(self, order: AttachedOrder, submitted_by: u64) -> Session {
        Session {
            status: SessionStatus::OrderReceived,
            order: Some(order),
            submitted_by: Some(submitted_by),
            ..self
        }
    }
}

/// Result of [`crate::domain::claim_session`] (a merchant's order claims a wallet QR session)
/// and [`crate::domain::attach_checkout`] (a wallet opens a checkout session).
#[allow(clippy::large_enum_variant)] // returned once per request; boxing buys nothing
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// This request won the session.
    Claimed(Session),
    /// No session with that id.
    NotFound,
    /// The session expired.
    Expired,
    /// Another order already claimed it (or it is no longer pending).
    Used,
    /// The claiming request's nonce was used before: nothing claimed.
    NonceReused,
}

/// An event for an account's devices (the durable log behind the SSE stream).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Strictly increasing id (the SSE `id:` and `Last-Event-ID`).
    pub id: i64,
    /// Account it belongs to.
    pub account_id: String,
    /// `payment_request` or `payment_status`.
    pub kind: String,
    /// JSON payload.
    pub payload_json: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// A ledger movement: `minor` moves from `from_account` to `to_account` in `currency`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// Debited account.
    pub from_account: String,
    /// Credited account.
    pub to_account: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Positive minor units.
    pub minor: i64,
}

/// An outbound webhook (a signed proof to deliver).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    /// Queue id.
    pub id: i64,
    /// The proof's txid (unique: one delivery per proof).
    pub txid: String,
    /// Target OCID (merchant or Merchant Gateway).
    pub target_ocid: u64,
    /// Full URL of the target's `/transfer/webhook`.
    pub url: String,
    /// The exact JSON body `{proof, signature}`.
    pub body: String,
    /// `pending`, `delivered`, `rejected` (receiver said so; final) or `failed` (gave up).
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// Unix seconds of the next attempt.
    pub next_attempt_at: i64,
    /// Last error, for operators.
    pub last_error: Option<String>,
}

/// Everything a confirmed payment changes, committed in ONE transaction by
/// [`crate::domain::settle_payment`] (through [`Store::apply_settlement`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// Session being paid (must be `order_received`, owned by `account_id`, not expired).
    pub session_id: String,
    /// The paying account.
    pub account_id: String,
    /// Idempotency key of the confirm request (a retry with the same key returns the first result).
    pub idempotency_key: String,
    /// The device-signed consent JSON, kept as evidence.
    pub consent_json: String,
    /// The ledger movements (user → merchant, or user → partner reserve clearing).
    pub transfers: Vec<Transfer>,
    /// New txid.
    pub txid: String,
    /// `{proof, signature}` JSON.
    pub proof_json: String,
    /// Webhook to enqueue (url, target ocid) for the proof, if any.
    pub webhook: Option<(String, u64)>,
    /// Event payload JSON to append for the account (`payment_status` paid).
    pub event_json: String,
    /// Unix seconds.
    pub now: i64,
}

/// Result of [`crate::domain::settle_payment`] and [`crate::domain::decline_session`].
#[allow(clippy::large_enum_variant)] // returned once per request; boxing buys nothing
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettleOutcome {
    /// Paid now.
    Paid(Session),
    /// Same idempotency key seen before (or the session is already paid by this account):
    /// the stored session, nothing changed.
    AlreadyPaid(Session),
    /// Not enough balance in the debited account: nothing changed.
    InsufficientFunds,
    /// A balance (the merchant's, normally) would pass the ledger's range: nothing changed.
    /// Carries the account.
    BalanceOutOfRange(String),
    /// Session unknown.
    NotFound,
    /// Session belongs to another account.
    Forbidden,
    /// Session not payable (declined, expired, pending without order).
    InvalidState(SessionStatus),
    /// [`crate::domain::decline_session`] only: declined now, or already declined by this account
    /// (idempotent retry); the stored session.
    Declined(Session),
}

/// What one [`Store::purge`] batch deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeCounts {
    /// Old never-paid expired sessions deleted.
    pub sessions: u64,
    /// Nonces past their lifetime deleted.
    pub nonces: u64,
}

/// An account's open wallet QR sessions ([`Store::open_wallet_sessions`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenSessions {
    /// How many are open.
    pub count: u64,
    /// The earliest expiry among them (Unix seconds); `None` when none is open.
    pub earliest_expiry: Option<i64>,
}

/// The storage contract. All methods are atomic on their own.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ---- identity (see `crate::identity`) ----
    /// Binds the database to the gateway's `identity`: the first call records it
    /// ([`IdentityCheck::Recorded`]); later calls compare it with the current recorded
    /// identity (the newest rotation) and answer [`IdentityCheck::Matches`] or
    /// [`IdentityCheck::Mismatch`] with the recorded one (nothing written).
    async fn bind_identity(&self, identity: &Identity, now: i64) -> StoreResult<IdentityCheck>;
    /// Records an on-purpose key rotation from `old` to `new_public_key` (same OCID), in one
    /// transaction, only if `old` is the current identity ([`IdentityCheck::Matches`]) or none
    /// is recorded yet ([`IdentityCheck::Recorded`]: `old` is recorded first). Another current
    /// identity is [`IdentityCheck::Mismatch`] and nothing is written.
    async fn rotate_identity(
        &self,
        old: &Identity,
        new_public_key: &str,
        now: i64,
    ) -> StoreResult<IdentityCheck>;

    // ---- accounts and ledger ----
    /// Creates an account.
    async fn create_account(&self, kind: &str, name: &str, now: i64) -> StoreResult<Account>;
    /// Creates the account with this exact id if missing (merchant `ocid:<n>`, reserves), returns it.
    async fn ensure_account(
        &self,
        id: &str,
        kind: &str,
        name: &str,
        now: i64,
    ) -> StoreResult<Account>;
    /// Looks an account up.
    async fn account(&self, id: &str) -> StoreResult<Option<Account>>;
    /// All balances of an account.
    async fn balances(&self, account_id: &str) -> StoreResult<Vec<Balance>>;
    /// Applies transfers in one transaction. Nothing changes unless the outcome is
    /// `Applied`: `InsufficientFunds` if any debited account other than kind `funding` would
    /// go negative (reported first), `BalanceOutOfRange` if a balance would leave the `i64`
    /// range. `reference` names the movement.
    async fn apply_transfers(
        &self,
        reference: &str,
        transfers: &[Transfer],
        now: i64,
    ) -> StoreResult<crate::domain::ledger::LedgerOutcome>;

    // ---- devices ----
    /// Stores an enrollment code hash for an account (valid until `expires_at`).
    async fn create_enrollment(
        &self,
        account_id: &str,
        code_hash: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<()>;
    /// Consumes an enrollment code and registers the device, atomically.
    async fn register_device(
        &self,
        code_hash: &str,
        device_id: &str,
        public_key: &str,
        now: i64,
    ) -> StoreResult<RegisterOutcome>;
    /// Looks a device up by id.
    async fn device(&self, device_id: &str) -> StoreResult<Option<Device>>;
    /// Replaces an active device key by a new one on the same account, atomically; `false` if
    /// the old device is not active.
    async fn rotate_device(
        &self,
        old_device_id: &str,
        new_device_id: &str,
        new_public_key: &str,
        now: i64,
    ) -> StoreResult<bool>;

    // ---- replay protection ----
    /// Records `(scope, nonce)` until `expires_at`; `false` if it is already recorded and
    /// unexpired (a replay). Purges expired rows opportunistically.
    async fn use_nonce(
        &self,
        scope: &str,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool>;

    // ---- sessions ----
    /// Inserts a new session.
    async fn create_session(&self, session: &Session) -> StoreResult<()>;
    /// Looks a session up by id.
    async fn session(&self, id: &str) -> StoreResult<Option<Session>>;
    /// Looks a session up by its status token.
    async fn session_by_status_token(&self, token: &str) -> StoreResult<Option<Session>>;
    /// Compare-and-set of one session: writes the mutable fields of `update.session` (status,
    /// account, order, submitter, txid, paid time, proof, decline reason) only if the stored
    /// row still has `expected_status` and `expected_account`, and appends `update.event` in
    /// the same transaction, with `update.nonce` recorded in that transaction too.
    /// [`UpdateOutcome::Refused`]: the row is missing or changed since it was read (nothing
    /// written); the caller reloads and decides again. [`UpdateOutcome::NonceReused`]: the
    /// nonce was used before (nothing written). The rules that choose the new state live in
    /// [`crate::domain`].
    async fn update_session_if(&self, update: &SessionUpdate) -> StoreResult<UpdateOutcome>;
    /// Marks unpaid sessions past expiry `expired`; returns how many.
    async fn expire_sessions(&self, now: i64) -> StoreResult<u64>;
    /// One bounded purge batch: deletes at most `limit` sessions that are `expired`, were
    /// never paid (no txid, payment time, proof or consent) and expired at or before
    /// `expired_before`, and at most `limit` nonces whose lifetime ended at or before `now`.
    /// Paid and declined sessions, and the ledger, are never touched.
    async fn purge(&self, expired_before: i64, now: i64, limit: u32) -> StoreResult<PurgeCounts>;
    /// The account's open wallet QR sessions (`pending` or `order_received`, expiring after
    /// `now`) created after `created_after`: how many, and the earliest expiry.
    async fn open_wallet_sessions(
        &self,
        account_id: &str,
        created_after: i64,
        now: i64,
    ) -> StoreResult<OpenSessions>;
    /// Prompts waiting for `account_id` (`order_received`, unexpired), oldest first.
    async fn pending_prompts(&self, account_id: &str, now: i64) -> StoreResult<Vec<Session>>;
    /// The account's sessions that carry an order, newest first, at most `limit`, optionally
    /// only those created before `before` (unix seconds) for paging.
    async fn history(
        &self,
        account_id: &str,
        limit: u32,
        before: Option<i64>,
    ) -> StoreResult<Vec<Session>>;

    // ---- payment ----
    /// The account and session a `settle` idempotency key was first used for, if any.
    async fn settle_key(&self, key: &str) -> StoreResult<Option<SettleKey>>;
    /// The one transaction of a confirmed payment, as decided by [`crate::domain`]: the
    /// session → paid (only if it is still `order_received` and owned by the payer), the
    /// ledger transfers (funds checked), the webhook, the event and the idempotency key. All
    /// or nothing.
    async fn apply_settlement(&self, plan: &SettlementPlan) -> StoreResult<PlanOutcome>;

    // ---- events ----
    /// Appends an event for an account and, in the same transaction, queues its push
    /// wake-ups (`payment_request` and `payment_status` events: one per active device of the
    /// account with a push token, collapsed into the device's pending one); returns it. Events
    /// appended with a session update or a settlement queue their wake-ups the same way.
    async fn append_event(
        &self,
        account_id: &str,
        kind: &str,
        payload_json: &str,
        now: i64,
    ) -> StoreResult<Event>;
    /// Events of an account with id > `after_id`, oldest first, at most `limit`.
    async fn events_after(
        &self,
        account_id: &str,
        after_id: i64,
        limit: u32,
    ) -> StoreResult<Vec<Event>>;

    // ---- outbound webhooks ----
    /// Enqueues a webhook unless one with the same txid exists; returns the row.
    async fn enqueue_webhook(
        &self,
        txid: &str,
        target_ocid: u64,
        url: &str,
        body: &str,
        now: i64,
    ) -> StoreResult<Webhook>;
    /// Claims pending webhooks due at `now` whose lease is free (none, or ended at or before
    /// `now`), oldest first, at most `limit`, and sets their lease to `lease_until`, atomically:
    /// no other claim (from this or another instance) returns them before the lease ends. An
    /// instance killed while delivering leaves its rows to the others once the lease is over.
    async fn claim_webhooks(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> StoreResult<Vec<Webhook>>;
    /// Records an attempt: new status, attempts + 1, next attempt time, last error; clears the
    /// row's lease.
    async fn record_webhook_attempt(
        &self,
        id: i64,
        status: &str,
        next_attempt_at: i64,
        last_error: Option<&str>,
    ) -> StoreResult<()>;
    /// The webhook of a txid.
    async fn webhook_by_txid(&self, txid: &str) -> StoreResult<Option<Webhook>>;

    // ---- push wake-ups ----
    /// Stores `token` as the push token of `device_id` (replacing the device's earlier one); a
    /// row holding the same provider and token for ANOTHER device is deleted first (the token
    /// moved: a reinstalled or re-enrolled phone must not get the old device's wake-ups), and
    /// the old device's pending wake-up to it is dropped (`failed`). The device's own pending
    /// wake-up is re-addressed to the new token. Returns what is stored.
    async fn set_push_token(
        &self,
        device_id: &str,
        provider: PushProvider,
        token: &str,
        environment: PushEnvironment,
        now: i64,
    ) -> StoreResult<PushToken>;
    /// Removes the push token of `device_id` and drops (`failed`) its pending wake-up;
    /// `false` if it had none.
    async fn clear_push_token(&self, device_id: &str) -> StoreResult<bool>;
    /// The push token of `device_id`, if any.
    async fn push_token(&self, device_id: &str) -> StoreResult<Option<PushToken>>;
    /// Claims pending wake-ups due at `now` whose lease is free (none, or ended at or before
    /// `now`), oldest first, at most `limit`, and sets their lease to `lease_until`, atomically
    /// (as [`Store::claim_webhooks`]). A pending wake-up of a device that is no longer active
    /// (rotated, revoked) is marked `failed` instead of returned.
    async fn claim_pushes(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> StoreResult<Vec<QueuedPush>>;
    /// Records the outcome of one send attempt of queue row `attempt.id`, only if the row is
    /// still pending with `attempt.event_id`: `Ok(true)`. If a newer event collapsed into the
    /// row meanwhile, a `pending` (retry) outcome still applies its backoff and any other
    /// outcome leaves the row pending and due at `attempt.now`, so the newer wake-up is sent:
    /// `Ok(false)`, as for a row that is gone or no longer pending (nothing written). Either
    /// way a pending row's lease is cleared.
    async fn record_push_attempt(&self, attempt: &PushAttempt) -> StoreResult<bool>;
    /// A token the provider reported dead: deletes it (whichever device holds it) and marks
    /// its pending wake-ups `dead`; `false` if no device held it.
    async fn drop_push_token(&self, provider: PushProvider, token: &str) -> StoreResult<bool>;

    // ---- incoming proofs and transfers ----
    /// Records an incoming proof `(issuer, txid)`; `false` if already processed.
    async fn record_incoming_proof(
        &self,
        issuer: u64,
        txid: &str,
        proof_json: &str,
        now: i64,
    ) -> StoreResult<bool>;
    /// One transaction for an incoming `/transfer/create`: if `idempotency_key` was seen, returns
    /// `Replayed(stored result)` and changes nothing; otherwise applies `transfers` (funds
    /// checked as in [`Store::apply_transfers`]), enqueues `webhook` if given, stores
    /// `result_json` under the key and returns `Applied(result_json)`.
    async fn apply_transfer_once(&self, once: &TransferOnce) -> StoreResult<TransferOutcome>;

    // ---- paying a person (user OCIDs, `received` receipts) ----
    /// The user OCID of `account_id`: the one it holds, else the lowest free OCID of `range`
    /// (above every OCID of the block given so far), recorded for it now. Race-safe: of two
    /// first calls for one account both get the same OCID, and no OCID is given to two
    /// accounts. [`UserOcidAllocation::Exhausted`] when the block has no free OCID left
    /// (nothing written).
    async fn allocate_user_ocid(
        &self,
        account_id: &str,
        range: UserOcidRange,
        now: i64,
    ) -> StoreResult<UserOcidAllocation>;
    /// The account holding user OCID `ocid`, if any.
    async fn user_ocid_account(&self, ocid: u64) -> StoreResult<Option<String>>;
    /// The user OCID of `account_id`, if it was given one.
    async fn account_user_ocid(&self, account_id: &str) -> StoreResult<Option<u64>>;
    /// [`Store::apply_settlement`] of an internal transfer to a person: in the same
    /// transaction, and only when the plan is applied, the recipient's `received` receipt
    /// (`receipt.session`, inserted) and its `payment_status` event (with its push wake-ups).
    async fn apply_settlement_with_receipt(
        &self,
        plan: &SettlementPlan,
        receipt: &NewReceipt,
    ) -> StoreResult<PlanOutcome>;
    /// [`Store::apply_transfer_once`] of an incoming transfer to one of our users: in the same
    /// transaction, and only when applied now (never on a replay), the recipient's `received`
    /// receipt and its `payment_status` event.
    async fn apply_transfer_once_with_receipt(
        &self,
        once: &TransferOnce,
        receipt: &NewReceipt,
    ) -> StoreResult<TransferOutcome>;

    // ---- operations (`/readyz`, `/metrics`) ----
    /// Proves the database takes writes now: takes the write lock (an IMMEDIATE transaction),
    /// writes a probe row and rolls it back, waiting at most `wait` for another writer's lock.
    /// Changes nothing; an error says what failed (locked, read-only, disk full, ...).
    async fn check_writable(&self, wait: std::time::Duration) -> StoreResult<()>;
    /// Sizes of the queues and tables an operator watches, read now (see [`OpsCounts`]).
    async fn ops_counts(&self) -> StoreResult<OpsCounts>;

    // ---- signals (many instances) ----
    /// What other processes wrote that this process must react to (see [`StoreSignal`]), or
    /// `None` when every write comes through this process (SQLite: the hub is woken
    /// in-process). Each call is a new receiver. A receiver that lags behind by more than the
    /// channel holds gets `RecvError::Lagged`: treat it as [`StoreSignal::Resync`].
    fn signals(&self) -> Option<tokio::sync::broadcast::Receiver<StoreSignal>> {
        None
    }
}

/// A change written through the database, possibly by another instance, announced to every
/// store on that database ([`Store::signals`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSignal {
    /// An event was appended for this account: wake its streams.
    Event {
        /// The account of the event.
        account_id: String,
    },
    /// A webhook was queued: wake the webhook worker.
    Webhook,
    /// A push wake-up was queued: wake the push worker.
    Push,
    /// Signals may have been missed (the listening connection was re-established, or a
    /// receiver lagged): wake every stream and worker.
    Resync,
}

/// What [`Store::ops_counts`] reports (the scrape-time gauges of `/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpsCounts {
    /// Webhook deliveries still `pending` (due now or waiting for a retry).
    pub pending_webhooks: u64,
    /// Push wake-ups still `pending` (due now or waiting for a retry).
    pub pending_pushes: u64,
    /// Rows in the nonce store (replay protection), expired ones not yet purged included.
    pub nonces: u64,
}

/// A device's registered push token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushToken {
    /// The device it belongs to.
    pub device_id: String,
    /// FCM or APNs.
    pub provider: PushProvider,
    /// The provider's token.
    pub token: String,
    /// APNs host to use (FCM: always production).
    pub environment: PushEnvironment,
    /// Unix seconds of the registration.
    pub updated_at: i64,
}

/// State of a [`QueuedPush`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PushStatus {
    /// Waiting to be sent (or to be retried).
    Pending,
    /// The provider accepted it.
    Sent,
    /// The provider reported the token dead; the token was deleted.
    Dead,
    /// Given up: too old, provider not configured, refused for good, or retries used up.
    Failed,
}

impl PushStatus {
    /// The stored name (`pending`, `sent`, `dead`, `failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            PushStatus::Pending => "pending",
            PushStatus::Sent => "sent",
            PushStatus::Dead => "dead",
            PushStatus::Failed => "failed",
        }
    }

    /// Parses a stored name; `None` for anything else.
    pub fn parse(name: &str) -> Option<PushStatus> {
        match name {
            "pending" => Some(PushStatus::Pending),
            "sent" => Some(PushStatus::Sent),
            "dead" => Some(PushStatus::Dead),
            "failed" => Some(PushStatus::Failed),
            _ => None,
        }
    }
}

/// One row of the push queue: a wake-up for one device, addressed to the token the device had
/// when it was queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedPush {
    /// Queue id.
    pub id: i64,
    /// The device woken up.
    pub device_id: String,
    /// FCM or APNs.
    pub provider: PushProvider,
    /// The provider's token.
    pub token: String,
    /// APNs host to use.
    pub environment: PushEnvironment,
    /// What the wake-up is about.
    pub kind: PushKind,
    /// The session (prompt) id.
    pub session_id: String,
    /// The id of the newest event the wake-up stands for (a newer event replaces it).
    pub event_id: i64,
    /// `pending`, `sent`, `dead` or `failed`.
    pub status: PushStatus,
    /// Attempts made.
    pub attempts: i64,
    /// Unix seconds of the next attempt.
    pub next_attempt_at: i64,
    /// Last error, for operators.
    pub last_error: Option<String>,
    /// Unix seconds of the event the wake-up stands for (its age decides "too old").
    pub created_at: i64,
    /// Unix seconds when the provider accepted it.
    pub sent_at: Option<i64>,
}

/// Input of [`Store::record_push_attempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushAttempt {
    /// Queue id.
    pub id: i64,
    /// The event id that was sent: the outcome applies only while the row still has it.
    pub event_id: i64,
    /// New status (`pending` to retry).
    pub status: PushStatus,
    /// Unix seconds of the next attempt (for `pending`).
    pub next_attempt_at: i64,
    /// What went wrong, if anything.
    pub last_error: Option<String>,
    /// Unix seconds (the `sent_at` of a sent wake-up).
    pub now: i64,
}

/// Input of [`Store::apply_transfer_once`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferOnce {
    /// Idempotency key, e.g. `transfer:<caller ocid>:<from.reference>`.
    pub idempotency_key: String,
    /// Ledger reference (the new txid).
    pub reference: String,
    /// Ledger movements.
    pub transfers: Vec<Transfer>,
    /// The `{proof, signature}` response JSON to store and return.
    pub result_json: String,
    /// Webhook to enqueue: (txid, target ocid, url, body).
    pub webhook: Option<(String, u64, String, String)>,
    /// Unix seconds.
    pub now: i64,
}

/// Result of [`Store::apply_transfer_once`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferOutcome {
    /// Applied now; the stored result.
    Applied(String),
    /// Seen before; the first result, nothing changed.
    Replayed(String),
    /// A debited account lacks funds; nothing changed.
    InsufficientFunds,
    /// A balance would pass the ledger's range; nothing changed. Carries the account.
    BalanceOutOfRange(String),
}

/// The block of user OCIDs the gateway allocates from (`GatewayConfig::user_ocids`).
pub use crate::config::UserOcidRange;

/// Result of [`Store::allocate_user_ocid`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserOcidAllocation {
    /// The account's user OCID (held before, or allocated now).
    Ocid(u64),
    /// The block has no free OCID left: nothing written.
    Exhausted,
}

/// A person's incoming payment, recorded in the transaction that credits it: the recipient's
/// receipt (a session of flow `received`, status `paid`, with the amount, currency, memo (in
/// its order), txid, proof and the sender as `merchant_ocid`) and its `payment_status` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReceipt {
    /// The receipt row to insert.
    pub session: Session,
    /// The recipient's `payment_status` event.
    pub event: NewEvent,
}

/// An event to append in the same transaction as a session change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Account it belongs to.
    pub account_id: String,
    /// `payment_request` or `payment_status`.
    pub kind: String,
    /// JSON payload.
    pub payload_json: String,
    /// Unix seconds.
    pub now: i64,
}

/// Input of [`Store::update_session_if`]: the new session and the state it must replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUpdate {
    /// The session as it is to be stored (matched by `id`; `flow`, `expires_at`,
    /// `created_at` and `status_token` never change and are not written).
    pub session: Session,
    /// The status the stored row must still have.
    pub expected_status: SessionStatus,
    /// The account the stored row must still have (`None`: still unbound).
    pub expected_account: Option<String>,
    /// Event appended if, and only if, the update is written.
    pub event: Option<NewEvent>,
    /// The request's nonce, recorded in the same transaction (one commit for both); a nonce
    /// used before refuses the whole update.
    pub nonce: Option<NonceUse>,
}

/// What [`Store::update_session_if`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Written, with its event and nonce.
    Applied,
    /// The stored row is missing or no longer as expected: nothing written.
    Refused,
    /// The update's nonce was used before: nothing written.
    NonceReused,
}

/// What a `settle` idempotency key was first used for (see [`Store::settle_key`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettleKey {
    /// The paying account, when recorded.
    pub account_id: Option<String>,
    /// The paid session, when recorded.
    pub session_id: Option<String>,
}

/// A webhook to enqueue with a settlement (deduplicated on `txid`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    /// The proof's txid.
    pub txid: String,
    /// Target OCID.
    pub target_ocid: u64,
    /// Full URL of the target's `/transfer/webhook`.
    pub url: String,
    /// The exact JSON body.
    pub body: String,
}

/// Input of [`Store::apply_settlement`], built by [`crate::domain::settlement::plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementPlan {
    /// The session as it is to be stored: `paid`, with txid, paid time and proof.
    pub paid: Session,
    /// The paying account: the stored session must still belong to it.
    pub payer: String,
    /// The device-signed consent JSON, kept as evidence.
    pub consent_json: String,
    /// Ledger reference of the movements (the txid).
    pub reference: String,
    /// The ledger movements.
    pub transfers: Vec<Transfer>,
    /// Webhook to enqueue, if any.
    pub webhook: Option<NewWebhook>,
    /// The `payment_status` event for the payer.
    pub event: NewEvent,
    /// Idempotency key recorded for the payer and the session.
    pub idempotency_key: String,
    /// Unix seconds.
    pub now: i64,
}

/// Result of [`Store::apply_settlement`].
#[allow(clippy::large_enum_variant)] // returned once per request; boxing buys nothing
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanOutcome {
    /// Written; the stored session.
    Applied(Session),
    /// A debited account lacks funds; nothing written.
    InsufficientFunds,
    /// A balance would pass the ledger's range; nothing written. Carries the account.
    BalanceOutOfRange(String),
    /// The session is missing, no longer `order_received` or no longer the payer's: nothing
    /// written; reload and decide again.
    Conflict,
}
