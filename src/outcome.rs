//! Honest outcomes: resolving confirm and decline decisions whose answer was lost. Each attempt
//! marks its outbox entry as possibly sent before it goes out and clears the mark only when the
//! request surely never reached the gateway (or the gateway answered that it changed nothing).
//! A decision that stays marked is reported as `WalletError::OutcomePending`, and a background
//! task on the core's runtime asks the gateway for the session's status (then sends the
//! decision again with its idempotency key while the gateway has not decided) until the outcome
//! is final, with backoff, woken early by the event stream's payment statuses; it stores the
//! receipt and tells the event stream's listener once.

use std::sync::Arc;
use std::time::Duration;

use opencharge_protocol::app;
use rand_core::{OsRng, RngCore};
use reqwest::Method;

use crate::client::{Reach, Retries, Retry};
use crate::db::{Decision, DecisionKind};
use crate::engine::{is_transient, parse_answer, status_update, Engine};
use crate::error::{Result, WalletError};
use crate::events::{tell, WalletListener};
use crate::keystore::DeviceKey;
use crate::model::{PaymentStatus, PaymentStatusUpdate, Receipt};

/// First wait before the background task asks the gateway; doubled after each try.
const FIRST_CHECK: Duration = Duration::from_secs(1);
/// Longest wait between two tries of the background task.
const LONGEST_CHECK: Duration = Duration::from_secs(30);

/// Where the resolution of one lost answer stands after a try.
enum Progress {
    /// The outcome is final and stored (or another path finished the decision).
    Done,
    /// Still unknown: try again later.
    Waiting,
}

impl Engine {
    /// Sends a decision's request with retries (same body, so the same idempotency key),
    /// keeping the outbox entry's "maybe sent" mark exact: set before each attempt, cleared
    /// when the attempt surely did not reach the gateway (no connection, or an error envelope
    /// saying nothing changed) and no earlier attempt may have.
    pub(crate) async fn transmit(
        &self,
        key: &Arc<DeviceKey>,
        session_id: &str,
        path: &str,
        body: &[u8],
    ) -> Result<Vec<u8>> {
        let mut retries = Retries::new(Retry::Idempotent);
        loop {
            let marked_before = self.db.begin_attempt(session_id)?;
            let error = match self
                .client
                .attempt(key, Method::POST, path, Some(body))
                .await
            {
                Ok(answer) => return Ok(answer),
                Err((error, reach)) => {
                    let answered = matches!(error, WalletError::Gateway { .. });
                    if (reach == Reach::NotSent || answered) && !marked_before {
                        self.db.undo_attempt(session_id)?;
                    }
                    error
                }
            };
            if !retries.again(&error).await {
                return Err(error);
            }
            tracing::debug!(session_id, error = %error, "retrying a decision");
        }
    }

    /// The error for a decision that failed in a way that may be temporary (it stays in the
    /// outbox): `OutcomePending` (and a background resolution) when an attempt may have
    /// reached the gateway, else the failure itself, saying that the decision was not sent
    /// and is sent again automatically.
    pub(crate) fn pending_or_saved(
        &self,
        decision: &Decision,
        error: WalletError,
    ) -> Result<Receipt> {
        let id = &decision.session_id;
        let what = match decision.kind {
            DecisionKind::Confirm => "payment",
            DecisionKind::Decline => "decline",
        };
        let maybe_sent = self.db.decision(id)?.is_some_and(|d| d.maybe_sent);
        if maybe_sent {
            tracing::info!(session_id = %id, error = %error, "decision sent, answer lost; resolving");
            self.resolve_later(id);
            return Err(WalletError::OutcomePending {
                prompt_id: id.clone(),
                reason: format!(
                    "the {what} was sent but its answer was lost ({error}); it is saved and \
                     will not be sent twice: the outcome is reported when the gateway tells it"
                ),
            });
        }
        Err(match error {
            WalletError::Network { reason } => WalletError::Network {
                reason: format!(
                    "{reason}; the {what} was not sent: it is saved and sent automatically \
                     when the gateway can be reached (or call syncOutbox)"
                ),
            },
            other => other,
        })
    }

    /// Makes `listener` (the running event stream's) the one told about outcomes the core
    /// resolves.
    pub(crate) fn set_listener(&self, listener: Arc<dyn WalletListener>) {
        if let Ok(mut slot) = self.listener.lock() {
            *slot = Some(listener);
        }
    }

    /// Forgets `listener` when it is still the current one (its stream ended).
    pub(crate) fn clear_listener(&self, listener: &Arc<dyn WalletListener>) {
        if let Ok(mut slot) = self.listener.lock() {
            if slot.as_ref().is_some_and(|l| Arc::ptr_eq(l, listener)) {
                *slot = None;
            }
        }
    }

    /// Tells the running event stream's listener about a payment status, once per session
    /// and status (the stream's own `payment_status` event for the same status is not told
    /// again). Without a running stream nothing is told or noted: the stream tells it when it
    /// starts and replays the event.
    pub(crate) fn announce(&self, update: PaymentStatusUpdate) -> Result<()> {
        let listener = self.listener.lock().ok().and_then(|l| l.clone());
        let Some(listener) = listener else {
            return Ok(());
        };
        if self.db.mark_told(&update.session_id, update.status)? {
            tell(listener.as_ref(), "on_payment_status", |l| {
                l.on_payment_status(update)
            });
        }
        Ok(())
    }

    /// Starts the background resolution of a lost answer, unless one runs for this session.
    pub(crate) fn resolve_later(&self, session_id: &str) {
        if self.low_memory {
            // No task may outlive the call: the decision stays in the outbox and the next
            // drain (open of the app, `handlePush`, `syncOutbox`) resolves it.
            tracing::info!(session_id, "lost answer left for the next outbox drain");
            return;
        }
        let Ok(mut resolving) = self.resolving.lock() else {
            return;
        };
        if !resolving.insert(session_id.to_string()) {
            return;
        }
        drop(resolving);
        let runtime = match crate::runtime::runtime(false) {
            Ok(runtime) => runtime,
            Err(e) => {
                tracing::error!(error = %e, "cannot start the resolution of a lost answer");
                return;
            }
        };
        let engine = self.me.clone();
        let wake = Arc::clone(&self.resolve_now);
        let id = session_id.to_string();
        runtime.spawn(async move {
            let mut wait = FIRST_CHECK;
            loop {
                let jitter = Duration::from_millis(u64::from(OsRng.next_u32() % 250));
                // The event stream's payment status (or the wait) triggers the next try.
                let early = wake.notified();
                tokio::select! {
                    _ = tokio::time::sleep(wait + jitter) => {}
                    _ = early => {}
                }
                // A closed or dropped wallet ends the task.
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                match engine.resolve_once(&id).await {
                    Ok(Progress::Done) => break,
                    Ok(Progress::Waiting) => {}
                    Err(WalletError::Cancelled) => break,
                    Err(e) if !is_transient(&e) => {
                        // A definite refusal of the status query: the decision stays in the
                        // outbox, sent again on the next drain (open, reconnect, push).
                        tracing::error!(session_id = %id, error = %e, "cannot resolve a lost answer now");
                        break;
                    }
                    Err(e) => {
                        tracing::info!(session_id = %id, error = %e, "outcome still unknown")
                    }
                }
                wait = (wait * 2).min(LONGEST_CHECK);
            }
            if let Some(engine) = engine.upgrade() {
                if let Ok(mut resolving) = engine.resolving.lock() {
                    resolving.remove(&id);
                }
            }
        });
    }

    /// One try at resolving a lost answer: asks the gateway for the session's status; a final
    /// status finishes the decision with the gateway's receipt; an undecided session gets the
    /// decision again (same idempotency key).
    async fn resolve_once(&self, id: &str) -> Result<Progress> {
        let _guard = self.decisions.lock().await;
        let Some(decision) = self.db.decision(id)? else {
            // Finished meanwhile (a second confirm, an outbox drain), which told the app.
            return Ok(Progress::Done);
        };
        let Some((prompt, _)) = self.db.prompt(id)? else {
            self.db.remove_decision(id)?;
            return Ok(Progress::Done);
        };
        let key = self.registered_key()?;
        let path = format!("/app/payments/{id}");
        let answer = self
            .client
            .attempt(&key, Method::GET, &path, None)
            .await
            .map_err(|(e, _)| e)?;
        let status: app::Receipt = parse_answer(answer, &path)?;
        if PaymentStatus::from(status.status) != PaymentStatus::Pending {
            let mut receipt = self.receipt_from_gateway(&status).await?;
            if receipt.decline_reason.is_none() {
                receipt.decline_reason = decision.reason.clone();
            }
            self.db.finish_decision(&receipt)?;
            tracing::info!(session_id = %id, status = receipt.status.as_str(), "lost answer resolved");
            self.announce(status_update(&receipt))?;
            return Ok(Progress::Done);
        }
        // The gateway has not decided: the decision did not take effect (yet). Send it again.
        match self.send(&decision, &prompt).await {
            Ok(_) => Ok(Progress::Done),
            Err(WalletError::OutcomePending { .. }) => Ok(Progress::Waiting),
            Err(e) if self.db.decision(id)?.is_some() => Err(e),
            // Refused for good: `send` removed it and told the app.
            Err(_) => Ok(Progress::Done),
        }
    }
}
