//! The push worker: sends the queued wake-ups (`push_queue`, filled in the transaction of each
//! `payment_request` and `payment_status` event) through the device's provider and records
//! every outcome.
//!
//! It is woken as soon as events are committed ([`crate::hub::EventHub::notify`] wakes it,
//! since an event's wake-ups are queued in the event's transaction) and runs at least every
//! `worker_interval_ms` (retries, rows queued by another process). One pass takes up to
//! [`BATCH_SIZE`] due wake-ups and sends them concurrently:
//!
//! | situation or provider answer | row becomes |
//! |---|---|
//! | older than `push.max_age_secs` | `failed` ("too old"), not sent |
//! | no sender for the provider (`[push.fcm]` / `[push.apns]` missing) | `failed` ("push.<provider> not configured") |
//! | [`SendOutcome::Sent`] | `sent` |
//! | [`SendOutcome::Retry`] | `pending`, next attempt at now + the larger of `push.retry_secs[attempts]` and the provider's `Retry-After`; `failed` after the last delay |
//! | [`SendOutcome::DeadToken`] | `dead`; the token is deleted |
//! | [`SendOutcome::Fail`] | `failed` |
//!
//! Outcomes are recorded conditionally on the event the row stood for when it was sent: if a
//! newer event collapsed into the row meanwhile, the row stays pending and is sent again for
//! the newer event. Every outcome is logged (provider, device, kind, session, event, outcome,
//! reason) and counted in [`PushCounters`]. Passes of one gateway never overlap, so a row is
//! never in flight twice.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::future::join_all;

use super::{PushTarget, SendOutcome, WakeUp};
use crate::state::AppState;
use crate::store::{PushAttempt, PushStatus, QueuedPush};

/// Most wake-ups taken from the queue in one pass.
pub const BATCH_SIZE: u32 = 32;
/// Shortest worker interval honoured, milliseconds (guards against a zero interval).
pub const MIN_INTERVAL_MS: u64 = 10;
/// Longest `last_error` text stored.
const MAX_ERROR_LEN: usize = 500;

/// What the push worker did since the gateway started (for tests and metrics).
#[derive(Debug, Default)]
pub struct PushCounters {
    sent: AtomicU64,
    retried: AtomicU64,
    dead: AtomicU64,
    failed: AtomicU64,
}

impl PushCounters {
    /// Wake-ups the provider accepted.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Attempts refused for now and scheduled again.
    pub fn retried(&self) -> u64 {
        self.retried.load(Ordering::Relaxed)
    }

    /// Wake-ups to tokens the provider reported dead (each such token was deleted).
    pub fn dead(&self) -> u64 {
        self.dead.load(Ordering::Relaxed)
    }

    /// Wake-ups given up: too old, provider not configured, refused for good, retries used up.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    fn count(&self, status: PushStatus) {
        let counter = match status {
            PushStatus::Sent => &self.sent,
            PushStatus::Pending => &self.retried,
            PushStatus::Dead => &self.dead,
            PushStatus::Failed => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs until `shutdown` completes: a pass after every wake-up from the event hub (several
/// wake-ups that arrive during a pass make one more pass) and at least every
/// `config.worker_interval_ms`. A pass in progress is abandoned at shutdown (a wake-up sent
/// but not yet recorded is sent again after a restart; apps handle a wake-up twice safely).
pub async fn run_worker(state: AppState, shutdown: impl Future<Output = ()> + Send) {
    let interval_ms = state.config.worker_interval_ms.max(MIN_INTERVAL_MS);
    let mut ticker = tokio::time::interval(Duration::from_millis(interval_ms));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let wake = state.hub.push_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            // One stored permit at most: wake-ups during a pass fold into one more pass.
            () = wake.notified() => {}
            _ = ticker.tick() => {}
        }
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            () = run_pass(&state) => {}
        }
    }
    tracing::debug!("push worker stopped");
}

/// Runs one pass now: sends every due wake-up (up to [`BATCH_SIZE`]) and records the
/// outcomes (tests and tools). Waits for a pass already running.
pub async fn deliver_now(state: &AppState) {
    run_pass(state).await;
}

async fn run_pass(state: &AppState) {
    let _one_pass_at_a_time = state.push_pass.lock().await;
    let now = state.now();
    let lease_until = now.saturating_add(state.config.queue_lease_secs());
    let due = match state.store.claim_pushes(now, lease_until, BATCH_SIZE).await {
        Ok(due) => due,
        Err(e) => {
            tracing::error!(error = %e, "reading the push queue failed");
            return;
        }
    };
    join_all(due.into_iter().map(|push| deliver(state, push))).await;
}

/// Sends one wake-up (unless it is too old or its provider is not configured) and records
/// the outcome.
async fn deliver(state: &AppState, push: QueuedPush) {
    let max_age = state.config.push.max_age_secs;
    let age = state.now().saturating_sub(push.created_at);
    let outcome = if age > max_age {
        SendOutcome::Fail {
            reason: format!("too old: {age} s after its event (push.max_age_secs = {max_age})"),
        }
    } else if let Some(sender) = state.push.sender(push.provider) {
        let target = PushTarget {
            device_id: push.device_id.clone(),
            token: push.token.clone(),
            environment: push.environment,
        };
        let wake = WakeUp {
            kind: push.kind,
            session_id: push.session_id.clone(),
            event_id: push.event_id,
        };
        sender.send(&target, &wake).await
    } else {
        SendOutcome::Fail {
            reason: format!("push.{} not configured", push.provider.as_str()),
        }
    };
    record(state, &push, outcome).await;
}

/// The row's new status, next attempt time and error for an outcome, at `now`.
fn decide(
    push: &QueuedPush,
    outcome: &SendOutcome,
    retry_secs: &[i64],
    now: i64,
) -> (PushStatus, i64, Option<String>) {
    match outcome {
        SendOutcome::Sent => (PushStatus::Sent, now, None),
        SendOutcome::Retry { after, reason } => {
            let delay = usize::try_from(push.attempts)
                .ok()
                .and_then(|i| retry_secs.get(i))
                .copied();
            match delay {
                Some(delay) => {
                    let asked = after.map_or(0, |a| {
                        let secs = a.as_secs().saturating_add(u64::from(a.subsec_nanos() > 0));
                        i64::try_from(secs).unwrap_or(i64::MAX)
                    });
                    let next = now.saturating_add(delay.max(asked));
                    (PushStatus::Pending, next, Some(reason.clone()))
                }
                None => (
                    PushStatus::Failed,
                    now,
                    Some(format!(
                        "giving up after {} attempts: {reason}",
                        push.attempts.saturating_add(1)
                    )),
                ),
            }
        }
        SendOutcome::DeadToken { reason } => (PushStatus::Dead, now, Some(reason.clone())),
        SendOutcome::Fail { reason } => (PushStatus::Failed, now, Some(reason.clone())),
    }
}

async fn record(state: &AppState, push: &QueuedPush, outcome: SendOutcome) {
    let now = state.now();
    let (status, next_attempt_at, error) =
        decide(push, &outcome, &state.config.push.retry_secs, now);
    let error = error.map(|e| truncate(&e, MAX_ERROR_LEN));
    state.push_counters.count(status);
    let outcome_name = match status {
        PushStatus::Pending => "retry",
        other => other.as_str(),
    };
    let reason = error.as_deref().unwrap_or("");
    match status {
        PushStatus::Sent => tracing::info!(
            provider = push.provider.as_str(), device_id = %push.device_id, kind = push.kind.as_str(),
            session_id = %push.session_id, event_id = push.event_id, outcome = outcome_name,
            "push wake-up sent"
        ),
        PushStatus::Pending => tracing::warn!(
            provider = push.provider.as_str(), device_id = %push.device_id, kind = push.kind.as_str(),
            session_id = %push.session_id, event_id = push.event_id, outcome = outcome_name,
            reason, next_attempt_at, "push wake-up refused for now; will retry"
        ),
        PushStatus::Dead | PushStatus::Failed => tracing::warn!(
            provider = push.provider.as_str(), device_id = %push.device_id, kind = push.kind.as_str(),
            session_id = %push.session_id, event_id = push.event_id, outcome = outcome_name,
            reason, "push wake-up not sent"
        ),
    }
    let attempt = PushAttempt {
        id: push.id,
        event_id: push.event_id,
        status,
        next_attempt_at,
        last_error: error,
        now,
    };
    match state.store.record_push_attempt(&attempt).await {
        Ok(true) => {}
        Ok(false) => tracing::debug!(
            device_id = %push.device_id, event_id = push.event_id,
            "a newer event replaced this wake-up while it was sent; the newer one goes next"
        ),
        Err(e) => tracing::error!(error = %e, id = push.id, "recording a push attempt failed"),
    }
    if status == PushStatus::Dead {
        match state
            .store
            .drop_push_token(push.provider, &push.token)
            .await
        {
            Ok(_) => tracing::info!(
                provider = push.provider.as_str(), device_id = %push.device_id,
                "dead push token deleted"
            ),
            Err(e) => tracing::error!(error = %e, "deleting a dead push token failed"),
        }
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests;
